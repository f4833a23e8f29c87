// The per-token layout of one micro-batch: B rows of T tokens, each token with the metadata
// of docs/DESIGN.md §1.3 (position id, target, mask end, pair slot, side). Both trainers and every
// kernel read this, and only this, to know what attends to what and what is scored.
//
// Units (docs/DESIGN.md §1.2), for a pair with prompt p[0..P), chosen c[0..C), rejected r[0..R):
//   shared unit   [ p | c | p(P-1)' | r ]   length P + C + 1 + R
//   baseline      [ p | c ] and [ p | r ]  two plain causal units, lengths P + C and P + R
// Visibility of key k from query q in the same row:  k <= q < end[k].
#pragma once
#include <cstdint>
#include <vector>
#include "data/pairs.h"

enum Side : int8_t { SIDE_NONE = 0, SIDE_CHOSEN = 1, SIDE_REJECTED = 2 };
enum Layout : int { LAYOUT_SHARED = 0, LAYOUT_BASELINE = 1 };

struct Batch {
    int B = 0, T = 0;                 // rows, tokens per row
    std::vector<int32_t> tokens;      // [B*T] input token ids (padding: 0)
    std::vector<int32_t> pos;         // [B*T] position ids (padding: 0)
    std::vector<int32_t> target;      // [B*T] next-token target, -1 = none
    std::vector<int32_t> end;         // [B*T] first query (row index) that can no longer see this key
    std::vector<int32_t> slot;        // [B*T] pair slot of a scored token (index into pair_ids), -1 = none
    std::vector<int8_t>  side;        // [B*T] SIDE_CHOSEN / SIDE_REJECTED for scored tokens, else SIDE_NONE
    std::vector<int32_t> row_len;     // [B] tokens used in each row; the rest is padding
    std::vector<int64_t> pair_ids;    // [n_slots] dataset index of each pair in this micro-batch

    void reset(int rows, int row_tokens) {
        B = rows; T = row_tokens;
        size_t n = (size_t)B * T;
        tokens.assign(n, 0); pos.assign(n, 0); target.assign(n, -1); slot.assign(n, -1);
        side.assign(n, SIDE_NONE); row_len.assign(B, 0); pair_ids.clear();
        end.resize(n);
        for (size_t i = 0; i < n; i++) end[i] = (int32_t)(i % T) + 1;  // padding sees only itself
    }
    int n_slots() const { return (int)pair_ids.size(); }
    long real_tokens() const { long n = 0; for (int r : row_len) n += r; return n; }
};

// Lengths of the units a pair occupies in each layout.
static inline int shared_unit_len(int P, int C, int R) { return P + C + 1 + R; }
static inline int units_per_pair(Layout layout) { return layout == LAYOUT_SHARED ? 1 : 2; }
static inline int unit_len(Layout layout, int unit, int P, int C, int R) {
    if (layout == LAYOUT_SHARED) return shared_unit_len(P, C, R);
    return unit == 0 ? P + C : P + R;
}

// Writes one unit of `pair` (pair slot `slot` of the batch) at row `row`, starting at column
// `start` (the caller checked that it fits). `unit` is 0 (the shared unit, or the baseline chosen
// unit) or 1 (baseline rejected).
static inline void write_unit(Batch& b, Layout layout, int unit, int row, int start, int slot,
                              const PairTokens& pair) {
    const int32_t *p = pair.p, *c = pair.c, *r = pair.r;
    const int P = pair.P, C = pair.C, R = pair.R;
    int32_t* tok = &b.tokens[(size_t)row * b.T];
    int32_t* pos = &b.pos[(size_t)row * b.T];
    int32_t* tgt = &b.target[(size_t)row * b.T];
    int32_t* end = &b.end[(size_t)row * b.T];
    int32_t* slt = &b.slot[(size_t)row * b.T];
    int8_t*  sde = &b.side[(size_t)row * b.T];
    // the response this unit scores (baseline) or the first one (shared)
    const int32_t* resp = (layout == LAYOUT_BASELINE && unit == 1) ? r : c;
    int N = (layout == LAYOUT_BASELINE && unit == 1) ? R : C;
    int8_t first_side = (layout == LAYOUT_BASELINE && unit == 1) ? SIDE_REJECTED : SIDE_CHOSEN;
    int len = (layout == LAYOUT_SHARED) ? shared_unit_len(P, C, R) : P + N;
    int unit_end = start + len;
    // prompt, then the (first) response: plain causal within the unit
    for (int i = 0; i < P; i++) {
        int t = start + i;
        tok[t] = p[i]; pos[t] = i; end[t] = unit_end;
        if (i == P - 1) { tgt[t] = resp[0]; slt[t] = slot; sde[t] = first_side; }
    }
    for (int j = 0; j < N; j++) {
        int t = start + P + j;
        tok[t] = resp[j]; pos[t] = P + j; end[t] = unit_end;
        if (j + 1 < N) { tgt[t] = resp[j + 1]; slt[t] = slot; sde[t] = first_side; }
    }
    if (layout == LAYOUT_SHARED) {
        // the last prompt token and the chosen tokens are hidden from the rejected side
        for (int t = start + P - 1; t < start + P + C; t++) end[t] = start + P + C;
        int t = start + P + C;  // the copy of the last prompt token
        tok[t] = p[P - 1]; pos[t] = P - 1; end[t] = unit_end;
        tgt[t] = r[0]; slt[t] = slot; sde[t] = SIDE_REJECTED;
        for (int j = 0; j < R; j++) {
            int u = t + 1 + j;
            tok[u] = r[j]; pos[u] = P + j; end[u] = unit_end;
            if (j + 1 < R) { tgt[u] = r[j + 1]; slt[u] = slot; sde[u] = SIDE_REJECTED; }
        }
    }
    if (unit_end > b.row_len[row]) b.row_len[row] = unit_end;
}

// Explicit visibility rule of docs/DESIGN.md §1.3, for tests: same unit, causal, and not
// (query on the rejected side of a shared unit and key the real last prompt token or chosen).
static inline bool mask_visible(const Batch& b, int row, int q, int k) {
    return k <= q && q < b.end[(size_t)row * b.T + k];
}
