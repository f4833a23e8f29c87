// The dataloader and packer: which preference pairs each training step uses, which of them each
// data-parallel rank gets, and how a rank's pairs are packed into micro-batches of B rows x T
// tokens (data/batch.h). See data/LOADER.md.
//
// - The pairs form an infinite stream of per-epoch permutations of the dataset; step s uses stream
//   positions [s*N, (s+1)*N), N = pairs_per_step. Epoch e's order is a Fisher-Yates shuffle driven
//   by splitmix64 seeded from (seed, e), so any step can be produced directly from its number
//   (resume needs no other state) and the order is the same with every compiler and library.
// - Rank r of n gets the contiguous slice [r*N/n, (r+1)*N/n) of its step's pairs.
// - All units of a pair go into the same micro-batch (the pair's DPO loss needs both responses).
//   Packing on: first-fit-decreasing by the pair's total unit length. Packing off: one unit per row.
// - A pair whose units cannot fit a row is an error (default) or skipped and counted (skip_overlong).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>
#include "common/rng.h"
#include "data/batch.h"
#include "data/pairs.h"

// ----------------------------------------------------------------------------
// Deterministic shuffle

// Epoch `epoch`'s order of a dataset of n pairs: perm[position within the epoch] = dataset index.
// Identity without shuffle; otherwise Fisher-Yates with splitmix64 seeded from (seed, epoch).
static inline void epoch_permutation(int64_t n, uint64_t seed, int64_t epoch, bool shuffle,
                                     std::vector<int64_t>* perm) {
    perm->resize(n);
    for (int64_t i = 0; i < n; i++) (*perm)[i] = i;
    if (!shuffle) return;
    uint64_t state = seed;
    state = splitmix64_next(&state) ^ ((uint64_t)epoch * 0xD1B54A32D192ED03ull);
    for (int64_t i = n - 1; i > 0; i--) {
        // uniform j in [0, i]: the high 64 bits of a 64x64-bit product (no modulo bias to speak of)
        uint64_t j = (uint64_t)(((unsigned __int128)splitmix64_next(&state) * (uint64_t)(i + 1)) >> 64);
        std::swap((*perm)[i], (*perm)[j]);
    }
}

// ----------------------------------------------------------------------------
// Packing a list of pairs into micro-batches

// Where one unit of a pair went; the packer's record of its decisions (tests check batches against it).
struct UnitPlacement {
    int batch, row, start, len;  // micro-batch, row, first column, length in tokens
    int unit;                    // 0: the shared unit or the baseline chosen unit; 1: baseline rejected unit
    int slot;                    // index of the pair in that micro-batch's pair_ids
    int64_t pair;                // dataset index
};

// Checks that pair i has every part non-empty and lies inside the token array.
static inline bool check_pair(const PairSet& set, int64_t i, std::string* err) {
    const PairRef& pr = set.pairs[i];
    if (pr.P < 1 || pr.C < 1 || pr.R < 1) {
        *err = "pair " + std::to_string(i) + " has an empty prompt, chosen or rejected response (P=" + std::to_string(pr.P) +
               " C=" + std::to_string(pr.C) + " R=" + std::to_string(pr.R) + "); every part needs at least one token";
        return false;
    }
    if (pr.offset < 0 || pr.offset + (int64_t)pr.P + pr.C + pr.R > (int64_t)set.tokens.size()) {
        *err = "pair " + std::to_string(i) + " points past the end of the token array";
        return false;
    }
    return true;
}

// Whether the units of pair i can go into one (empty) micro-batch of B rows x T tokens.
static inline bool pair_fits(const PairSet& set, int64_t i, int B, int T, Layout layout) {
    const PairRef& pr = set.pairs[i];
    int L0 = unit_len(layout, 0, pr.P, pr.C, pr.R);
    if (layout == LAYOUT_SHARED) return L0 <= T;
    int L1 = unit_len(layout, 1, pr.P, pr.C, pr.R);
    if (L0 > T || L1 > T) return false;
    return B >= 2 || L0 + L1 <= T;  // with a single row both baseline units must share it
}

static inline std::string overlong_message(const PairSet& set, int64_t i, int B, int T, Layout layout) {
    const PairRef& pr = set.pairs[i];
    char buf[512];
    if (layout == LAYOUT_SHARED)
        snprintf(buf, sizeof buf,
                 "pair %lld (prompt P=%d, chosen C=%d, rejected R=%d tokens) needs a shared unit of "
                 "P+C+1+R=%d tokens, longer than a row (T=%d)",
                 (long long)i, pr.P, pr.C, pr.R, shared_unit_len(pr.P, pr.C, pr.R), T);
    else
        snprintf(buf, sizeof buf,
                 "pair %lld (prompt P=%d, chosen C=%d, rejected R=%d tokens) needs baseline units of "
                 "P+C=%d and P+R=%d tokens, which do not fit %d row(s) of T=%d",
                 (long long)i, pr.P, pr.C, pr.R, pr.P + pr.C, pr.P + pr.R, B, T);
    return std::string(buf) + ": re-run data/prepare_dpo with --max-len <= " + std::to_string(T) +
           ", raise T, or choose the skip policy for over-long pairs";
}

// The shape and rules of packing: micro-batches of B rows x T tokens, the layout, whether units
// share rows (packing), and whether a pair that cannot fit is skipped and counted or an error.
struct PackSpec {
    int B, T;
    Layout layout;
    bool packing;
    bool skip_overlong;
};

// Packs the pairs ids[0..n) (dataset indices, in step order) into micro-batches of spec.B rows x
// spec.T tokens, written to *out (resized; existing Batch buffers are reused). Pairs that do not fit are
// skipped and counted in *n_skipped when skip_overlong, else an error. If `placements` is given it
// receives one record per unit written. Deterministic: each micro-batch lists its pairs (slots) in
// step order.
static inline bool pack_pairs(const PairSet& set, const int64_t* ids, int n, const PackSpec& spec,
                              std::vector<Batch>* out, std::vector<UnitPlacement>* placements,
                              int* n_skipped, std::string* err) {
    const int B = spec.B, T = spec.T;
    const Layout layout = spec.layout;
    const bool packing = spec.packing, skip_overlong = spec.skip_overlong;
    const int U = units_per_pair(layout);
    if (B < 1 || T < 1) { *err = "micro-batch shape B=" + std::to_string(B) + " T=" + std::to_string(T) + " must be >= 1"; return false; }
    if (!packing && layout == LAYOUT_BASELINE && B < 2) {
        *err = "the baseline layout without packing puts a pair's two units in two rows: it needs B >= 2 (got B=1); use B >= 2, packing, or the shared layout";
        return false;
    }
    // the pairs that fit, as positions into ids[] (step order)
    std::vector<int> keep;
    keep.reserve(n);
    int skipped = 0;
    for (int k = 0; k < n; k++) {
        if (!check_pair(set, ids[k], err)) return false;
        if (pair_fits(set, ids[k], B, T, layout)) { keep.push_back(k); continue; }
        if (!skip_overlong) { *err = overlong_message(set, ids[k], B, T, layout); return false; }
        skipped++;
    }
    if (n_skipped) *n_skipped = skipped;
    int n_keep = (int)keep.size();

    // placement of every unit of every kept pair: place[j*U + u] for keep[j]
    std::vector<UnitPlacement> place((size_t)n_keep * U);
    auto lens_of = [&](int j, int* L) {
        const PairRef& pr = set.pairs[ids[keep[j]]];
        for (int u = 0; u < U; u++) L[u] = unit_len(layout, u, pr.P, pr.C, pr.R);
    };
    int n_batches = 0;
    if (!packing) {
        int pairs_per_batch = B / U;  // baseline: rows 2i and 2i+1 hold pair i's two units
        for (int j = 0; j < n_keep; j++) {
            int L[2];
            lens_of(j, L);
            for (int u = 0; u < U; u++) {
                UnitPlacement& p = place[(size_t)j * U + u];
                p.batch = j / pairs_per_batch;
                p.row = (j % pairs_per_batch) * U + u;
                p.start = 0; p.len = L[u];
            }
        }
        n_batches = (n_keep + pairs_per_batch - 1) / pairs_per_batch;
    } else {
        // first-fit-decreasing: pairs by total unit length, longest first (ties in step order)
        std::vector<int> order(n_keep), total(n_keep);
        for (int j = 0; j < n_keep; j++) {
            int L[2];
            lens_of(j, L);
            total[j] = U == 1 ? L[0] : L[0] + L[1];
            order[j] = j;
        }
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return total[a] > total[b]; });
        std::vector<int> row_used;  // [n_batches*B] tokens used in each row so far
        for (int j : order) {
            int L[2];
            lens_of(j, L);
            // place the longer unit first: then first-fit finds a spot for both whenever one exists
            int first = (U == 2 && L[1] > L[0]) ? 1 : 0;
            int row_of[2] = {-1, -1};
            int b = 0;
            for (;; b++) {
                if (b == n_batches) { n_batches++; row_used.resize((size_t)n_batches * B, 0); }
                int* used = &row_used[(size_t)b * B];
                bool ok = true;
                for (int v = 0; v < U && ok; v++) {
                    int u = v == 0 ? first : 1 - first;
                    row_of[u] = -1;
                    for (int r = 0; r < B; r++) {
                        int extra = (v == 1 && r == row_of[first]) ? L[first] : 0;  // tentatively placed
                        if (used[r] + extra + L[u] <= T) { row_of[u] = r; break; }
                    }
                    ok = row_of[u] >= 0;
                }
                if (ok) break;
            }
            int* used = &row_used[(size_t)b * B];
            for (int v = 0; v < U; v++) {
                int u = v == 0 ? first : 1 - first;
                UnitPlacement& p = place[(size_t)j * U + u];
                p.batch = b; p.row = row_of[u]; p.start = used[row_of[u]]; p.len = L[u];
                used[row_of[u]] += L[u];
            }
        }
    }

    // slots: in each micro-batch, the pairs in step order (j runs in step order)
    out->resize(n_batches);
    for (Batch& batch : *out) batch.reset(B, T);
    for (int j = 0; j < n_keep; j++) {
        Batch& batch = (*out)[place[(size_t)j * U].batch];
        int slot = batch.n_slots();
        int64_t id = ids[keep[j]];
        batch.pair_ids.push_back(id);
        for (int u = 0; u < U; u++) {
            UnitPlacement& p = place[(size_t)j * U + u];
            p.unit = u; p.slot = slot; p.pair = id;
            write_unit(batch, layout, u, p.row, p.start, slot, set.tokens_of(id));
        }
    }
    if (placements) *placements = std::move(place);
    return true;
}

// ----------------------------------------------------------------------------
// The training dataloader

struct LoaderConfig {
    int B, T;                     // micro-batch rows, tokens per row
    int pairs_per_step;           // N: pairs of one optimizer step, over all ranks
    Layout layout;
    bool packing;                 // first-fit-decreasing packing of units into rows (else one unit per row)
    bool shuffle;                 // per-epoch shuffle (else dataset order)
    uint64_t seed;
    int rank = 0, world = 1;      // data-parallel rank and number of ranks
    bool skip_overlong = false;   // skip (and count) pairs that do not fit a row, instead of an error

    PackSpec pack_spec() const { return {B, T, layout, packing, skip_overlong}; }
};

struct DataLoader {
    const PairSet* set = nullptr;
    LoaderConfig cfg{};
    int64_t n_overlong = 0;       // pairs of the dataset that do not fit a micro-batch (found by init)

    // statistics of the last step_batches call
    int last_pairs = 0;           // pairs packed (this rank)
    int last_skipped = 0;         // over-long pairs skipped (this rank)
    long last_real_tokens = 0;    // tokens of units
    long last_padded_tokens = 0;  // B*T*micro-batches - real tokens
    long skipped_total = 0;       // over-long pairs skipped by all step_batches calls so far
    std::vector<UnitPlacement> last_placements;  // the packer's record of the last step

    bool init(const PairSet* pair_set, const LoaderConfig& config, std::string* err) {
        set = pair_set; cfg = config;
        cached_epoch[0] = cached_epoch[1] = -1;
        last_pairs = last_skipped = 0; last_real_tokens = last_padded_tokens = 0; skipped_total = 0;
        auto fail = [&](const std::string& msg) { *err = "dataloader: " + msg; return false; };
        if (!set) return fail("no pair set");
        if (set->size() == 0) return fail("the pair set is empty");
        if (cfg.B < 1 || cfg.T < 1)
            return fail("micro-batch shape B=" + std::to_string(cfg.B) + " T=" + std::to_string(cfg.T) + " must be >= 1");
        if (cfg.world < 1 || cfg.rank < 0 || cfg.rank >= cfg.world)
            return fail("rank " + std::to_string(cfg.rank) + " of world " + std::to_string(cfg.world) + " is out of range");
        if (cfg.pairs_per_step < cfg.world)
            return fail("pairs_per_step=" + std::to_string(cfg.pairs_per_step) + " is smaller than the number of ranks (" +
                        std::to_string(cfg.world) + "): every rank needs at least one pair per step");
        if (!cfg.packing && cfg.layout == LAYOUT_BASELINE && cfg.B < 2)
            return fail("the baseline layout without packing puts a pair's two units in two rows: it needs B >= 2 (got B=1)");
        n_overlong = 0;
        int64_t first_overlong = -1;
        for (size_t i = 0; i < set->size(); i++) {
            std::string why;
            if (!check_pair(*set, (int64_t)i, &why)) return fail(why);
            if (!pair_fits(*set, (int64_t)i, cfg.B, cfg.T, cfg.layout)) {
                if (first_overlong < 0) first_overlong = (int64_t)i;
                n_overlong++;
            }
        }
        if (n_overlong > 0 && !cfg.skip_overlong) return fail(overlong_message(*set, first_overlong, cfg.B, cfg.T, cfg.layout));
        if (n_overlong == (int64_t)set->size()) return fail("every pair is longer than a row (T=" + std::to_string(cfg.T) + ")");
        return true;
    }

    // Dataset index of the pair at position `position` of the infinite stream.
    int64_t pair_at(int64_t position) const {
        int64_t n = (int64_t)set->size();
        int64_t epoch = position / n, i = position % n;
        if (!cfg.shuffle) return i;
        // two cached epochs: a step may straddle an epoch boundary
        for (int c = 0; c < 2; c++)
            if (cached_epoch[c] == epoch) { last_used = c; return cached_perm[c][i]; }
        int c = 1 - last_used;
        epoch_permutation(n, cfg.seed, epoch, true, &cached_perm[c]);
        cached_epoch[c] = epoch; last_used = c;
        return cached_perm[c][i];
    }

    // Dataset indices of this rank's pairs of step `step`, in step order (before any skipping).
    std::vector<int64_t> step_pairs(long step) const {
        int64_t N = cfg.pairs_per_step;
        int64_t lo = N * cfg.rank / cfg.world, hi = N * (cfg.rank + 1) / cfg.world;
        std::vector<int64_t> ids;
        ids.reserve(hi - lo);
        for (int64_t k = lo; k < hi; k++) ids.push_back(pair_at((int64_t)step * N + k));
        return ids;
    }

    // Pairs the whole step (all ranks) packs, i.e. N minus the over-long ones skipped: what the
    // trainer divides the summed per-pair loss by. Needs no communication between ranks.
    int step_pairs_used(long step) const {
        int used = 0;
        for (int64_t k = 0; k < cfg.pairs_per_step; k++)
            used += pair_fits(*set, pair_at((int64_t)step * cfg.pairs_per_step + k), cfg.B, cfg.T, cfg.layout);
        return used;
    }

    // The micro-batches of step `step` for this rank. Deterministic given (set, cfg, step).
    bool step_batches(long step, std::vector<Batch>* batches, std::string* err) {
        std::vector<int64_t> ids = step_pairs(step);
        int skipped = 0;
        if (!pack_pairs(*set, ids.data(), (int)ids.size(), cfg.pack_spec(), batches, &last_placements, &skipped,
                        err)) {
            *err = "dataloader: step " + std::to_string(step) + ": " + *err;
            return false;
        }
        last_skipped = skipped;
        skipped_total += skipped;
        last_pairs = (int)ids.size() - skipped;
        last_real_tokens = 0;
        for (const Batch& b : *batches) last_real_tokens += b.real_tokens();
        last_padded_tokens = (long)batches->size() * cfg.B * cfg.T - last_real_tokens;
        return true;
    }

    double padding_fraction() const {
        long all = last_real_tokens + last_padded_tokens;
        return all ? (double)last_padded_tokens / all : 0.0;
    }
    int epoch_of(long step) const { return (int)((int64_t)step * cfg.pairs_per_step / (int64_t)set->size()); }
    double epoch_progress(long step) const { return (double)step * cfg.pairs_per_step / (double)set->size(); }

  private:
    mutable std::vector<int64_t> cached_perm[2];
    mutable int64_t cached_epoch[2] = {-1, -1};
    mutable int last_used = 0;
};

// ----------------------------------------------------------------------------
// Evaluation: every pair of the set exactly once, in dataset order, no shuffle, the same packing
// rules. Pairs are packed in consecutive chunks of kEvalChunk (so memory and packing cost stay
// linear in the set size); micro-batches follow chunk order.
static const int kEvalChunk = 512;

static inline bool eval_batches(const PairSet& set, int B, int T, Layout layout, bool packing,
                                std::vector<Batch>* out, std::string* err,
                                bool skip_overlong = false, long* n_skipped = nullptr) {
    out->clear();
    if (n_skipped) *n_skipped = 0;
    std::vector<int64_t> ids;
    std::vector<Batch> chunk;
    for (size_t lo = 0; lo < set.size(); lo += kEvalChunk) {
        size_t hi = std::min(set.size(), lo + kEvalChunk);
        ids.clear();
        for (size_t i = lo; i < hi; i++) ids.push_back((int64_t)i);
        int skipped = 0;
        if (!pack_pairs(set, ids.data(), (int)ids.size(), {B, T, layout, packing, skip_overlong}, &chunk,
                        nullptr, &skipped, err)) {
            *err = "eval batches: " + *err;
            return false;
        }
        if (n_skipped) *n_skipped += skipped;
        for (Batch& b : chunk) out->push_back(std::move(b));
    }
    return true;
}
