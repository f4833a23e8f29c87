// dev/cuda/attention_plan.h: the host side of dev/cuda/attention's benchmark suite, no CUDA in it:
// the masks of the benchmark cases (built by the real packer), their visible (q, k) pairs, the
// classes of the kernel's tiles (kernels/attention_mask.h), the readable plan table, and the mask
// files that dev/cuda/attention_torch.py reads so that PyTorch runs exactly the same masks.
// Tested by dev/cuda/test_attention_plan (against direct counts) on the CPU.
//
// Cases come in groups of two, the same pairs in two layouts:
//   shared     the prefix-shared unit [ p | c | p(P-1)' | r ] of every pair (data/batch.h)
//   unshared   the baseline: [ p | c ] and [ p | r ], two plain causal units
//   hh-T<T>          HH-RLHF pairs in file order, packed (first-fit-decreasing) into rows of T
//   syn-P<P>-r<r>    the seed paper's synthetic grid: one pair per row, prompt P, completions
//                    C = P/r and R = P/r - 1 (so the shared row is exactly T = P + 2P/r; the two
//                    unshared rows are P + P/r, the rejected one with a padding token)
// Mask files (DIR/cases.tsv and one DIR/<group>-<layout>.end.i32 per case, little-endian int32,
// B*T entries, row-major) hold everything PyTorch needs: end[], B, T and the counts to check.
#pragma once
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "data/dataloader.h"
#include "kernels/attention_mask.h"

struct BenchCase {
    std::string group;             // "hh-T1024", "syn-P1024-r2": a case and its twin in the other layout
    std::string suite;             // "hh" or "syn"
    Layout layout = LAYOUT_SHARED;
    int P = 0, ratio = 0;          // the synthetic grid's prompt length and ratio (0 for hh)
    int pairs = 0;
    int B = 0, T = 0;              // rows, tokens per row
    std::vector<int32_t> end;      // [B*T] the mask (padding: end[k] = k + 1)
    std::vector<int32_t> row_len;  // [B] real tokens of each row (the rest is padding)
    long long visible = 0;         // (q, k) pairs of real tokens with k visible to q
    long long tiles[3] = {0, 0, 0};  // tiles on or below the diagonal by TileClass
    int tile = 0;                  // the tile size they were counted for

    const char* layout_name() const { return layout == LAYOUT_SHARED ? "shared" : "unshared"; }
    std::string name() const { return group + "-" + layout_name(); }
    long real_tokens() const { long n = 0; for (int r : row_len) n += r; return n; }
    long long tile_total() const { return tiles[0] + tiles[1] + tiles[2]; }
};

// Checks that end[] is a mask of the form the kernels take (k < end[k] <= T) and that row_len
// fits; exits naming the case and the first bad key otherwise.
static inline void plan_check_mask(const BenchCase& c) {
    for (int r = 0; r < c.B; r++) {
        if (c.row_len[r] < 0 || c.row_len[r] > c.T) {
            fprintf(stderr, "%s:%d: case %s: row %d has %d tokens, T = %d\n", __FILE__, __LINE__, c.name().c_str(),
                    r, c.row_len[r], c.T);
            exit(1);
        }
        for (int k = 0; k < c.T; k++) {
            const int32_t e = c.end[(size_t)r * c.T + k];
            if (e <= k || e > c.T) {
                fprintf(stderr, "%s:%d: case %s: row %d key %d has end %d, outside (%d, %d]\n", __FILE__, __LINE__,
                        c.name().c_str(), r, k, e, k, c.T);
                exit(1);
            }
        }
    }
}

// Visible (q, k) pairs of the real tokens: key k is seen by the queries [k, end[k]), and a real
// key's end never passes its row's real tokens, so each real key adds end[k] - k.
static inline long long plan_visible_pairs(const BenchCase& c) {
    long long n = 0;
    for (int r = 0; r < c.B; r++)
        for (int k = 0; k < c.row_len[r]; k++) n += c.end[(size_t)r * c.T + k] - k;
    return n;
}

// Tiles of `tile` queries x `tile` keys on or below the diagonal (query tile >= key tile: the
// others are skipped by any causal kernel), by class, each classified from its key block's min
// and max end[] exactly as the kernel does (attention_tile_class). Padding included: the kernel
// runs over the whole [B, T] grid.
static inline void plan_count_tiles(BenchCase* c, int tile) {
    const int tiles = (c->T + tile - 1) / tile;
    c->tile = tile;
    c->tiles[0] = c->tiles[1] = c->tiles[2] = 0;
    for (int r = 0; r < c->B; r++)
        for (int kt = 0; kt < tiles; kt++) {
            const int k0 = kt * tile, k1 = std::min(k0 + tile, c->T);
            const int32_t* e = &c->end[(size_t)r * c->T];
            const int32_t lo = *std::min_element(e + k0, e + k1), hi = *std::max_element(e + k0, e + k1);
            for (int qt = kt; qt < tiles; qt++)
                c->tiles[attention_tile_class(qt * tile, std::min(qt * tile + tile, c->T), k0, k1, lo, hi)]++;
        }
}

// The case from a packed micro-batch, without the rows the packer left empty.
static inline BenchCase plan_case_from_batch(const Batch& b, int tile) {
    BenchCase c;
    c.T = b.T;
    for (int r = 0; r < b.B; r++) {
        if (b.row_len[r] == 0) continue;
        c.end.insert(c.end.end(), b.end.begin() + (size_t)r * b.T, b.end.begin() + (size_t)(r + 1) * b.T);
        c.row_len.push_back(b.row_len[r]);
        c.B++;
    }
    c.pairs = b.n_slots();
    return c;
}

// Packs pairs ids into ONE micro-batch of as few rows as the packer needs (rows of T tokens,
// packing on); every pair must fit a row.
static inline Batch plan_pack_one(const PairSet& set, const std::vector<int64_t>& ids, int T, Layout layout,
                                  bool packing, int min_rows) {
    long tokens = 0;
    for (int64_t i : ids) {
        const PairRef& p = set.pairs[i];
        tokens += layout == LAYOUT_SHARED ? shared_unit_len(p.P, p.C, p.R) : 2 * p.P + p.C + p.R;
    }
    for (int B = std::max(min_rows, (int)((tokens + T - 1) / T));; B++) {
        std::vector<Batch> batches;
        std::string err;
        int skipped = 0;
        if (!pack_pairs(set, ids.data(), (int)ids.size(), PackSpec{B, T, layout, packing, false}, &batches, nullptr,
                        &skipped, &err)) {
            fprintf(stderr, "%s:%d: pack_pairs: %s\n", __FILE__, __LINE__, err.c_str());
            exit(1);
        }
        if (batches.size() == 1) return batches[0];
    }
}

static inline BenchCase plan_finish(BenchCase c, const std::string& group, const char* suite, Layout layout,
                                    int tile) {
    c.group = group;
    c.suite = suite;
    c.layout = layout;
    plan_check_mask(c);
    c.visible = plan_visible_pairs(c);
    plan_count_tiles(&c, tile);
    return c;
}

// The hh-T<T> group: the pairs of `set` in file order whose shared unit fits a row of T, until
// their shared units hold at least `tokens` tokens (or the set runs out), packed in both layouts.
static inline void plan_hh_group(const PairSet& set, int T, long tokens, int tile, std::vector<BenchCase>* out) {
    std::vector<int64_t> ids;
    long have = 0;
    for (size_t i = 0; i < set.size() && have < tokens; i++) {
        const PairRef& p = set.pairs[i];
        if (p.P < 1 || p.C < 1 || p.R < 1 || shared_unit_len(p.P, p.C, p.R) > T) continue;
        ids.push_back((int64_t)i);
        have += shared_unit_len(p.P, p.C, p.R);
    }
    if (ids.empty()) {
        fprintf(stderr, "%s:%d: no pair of the HH-RLHF pair file fits a row of T = %d\n", __FILE__, __LINE__, T);
        exit(1);
    }
    const std::string group = "hh-T" + std::to_string(T);
    for (Layout layout : {LAYOUT_SHARED, LAYOUT_BASELINE})
        out->push_back(plan_finish(plan_case_from_batch(plan_pack_one(set, ids, T, layout, true, 1), tile), group,
                                   "hh", layout, tile));
}

// The syn-P<P>-r<ratio> group: B identical pairs (prompt P, chosen P/ratio, rejected P/ratio - 1),
// one per row in the shared layout (T = P + 2P/ratio), two rows each in the unshared one
// (T = P + P/ratio), B = tokens / (shared T) rounded, at least 1. Token ids do not matter.
static inline void plan_synthetic_group(int P, int ratio, long tokens, int tile, std::vector<BenchCase>* out) {
    const int C = P / ratio, R = C - 1;
    if (P < 1 || ratio < 1 || C < 2) {
        fprintf(stderr, "%s:%d: synthetic case P=%d ratio=%d needs P/ratio >= 2\n", __FILE__, __LINE__, P, ratio);
        exit(1);
    }
    const int T_shared = shared_unit_len(P, C, R), rows = std::max(1, (int)((tokens + T_shared / 2) / T_shared));
    PairSet set;
    std::vector<int64_t> ids;
    for (int i = 0; i < rows; i++) {
        set.add(std::vector<int32_t>(P, 11), std::vector<int32_t>(C, 12), std::vector<int32_t>(R, 13));
        ids.push_back(i);
    }
    const std::string group = "syn-P" + std::to_string(P) + "-r" + std::to_string(ratio);
    out->push_back(plan_finish(plan_case_from_batch(plan_pack_one(set, ids, T_shared, LAYOUT_SHARED, false, rows), tile),
                               group, "syn", LAYOUT_SHARED, tile));
    out->push_back(plan_finish(plan_case_from_batch(plan_pack_one(set, ids, P + C, LAYOUT_BASELINE, false, 2 * rows), tile),
                               group, "syn", LAYOUT_BASELINE, tile));
    for (size_t i = out->size() - 2; i < out->size(); i++) {
        (*out)[i].P = P;
        (*out)[i].ratio = ratio;
    }
}

// The whole suite in the order it is run (and cut when over its time budget): hh at T = 1024,
// 2048, 4096 (skipped when no pair file is given), then the synthetic grid with the prefixes the
// issue's target names (>= 1024) first.
static inline std::vector<BenchCase> plan_suite(const PairSet* hh, const std::string& which, long tokens, int tile) {
    std::vector<BenchCase> cases;
    if (hh && (which == "all" || which == "hh"))
        for (int T : {1024, 2048, 4096}) plan_hh_group(*hh, T, tokens, tile, &cases);
    if (which == "all" || which == "syn")
        for (int P : {1024, 2048, 4096, 256, 512})
            for (int ratio : {1, 2, 4, 8}) plan_synthetic_group(P, ratio, tokens, tile, &cases);
    return cases;
}

// The twin of case i (same group, other layout), or -1.
static inline int plan_twin(const std::vector<BenchCase>& cases, size_t i) {
    for (size_t j = 0; j < cases.size(); j++)
        if (j != i && cases[j].group == cases[i].group && cases[j].layout != cases[i].layout) return (int)j;
    return -1;
}

// Ideal speedup of the shared layout over the unshared one: the ratio of their visible pairs
// (attention work is quadratic: this is what skipping every invisible tile would give).
static inline double plan_ideal_speedup(const BenchCase& shared, const BenchCase& unshared) {
    return shared.visible > 0 ? (double)unshared.visible / (double)shared.visible : 0.0;
}

static inline void plan_print_table(const std::vector<BenchCase>& cases, FILE* f) {
    fprintf(f, "%-16s %-8s %5s %4s %6s %7s %14s %6s %6s %6s %6s\n", "group", "layout", "pairs", "B", "T", "tokens",
            "visible pairs", "skip%", "full%", "part%", "ideal");
    for (size_t i = 0; i < cases.size(); i++) {
        const BenchCase& c = cases[i];
        const double n = (double)std::max(1LL, c.tile_total());
        const int twin = plan_twin(cases, i);
        char ideal[32] = "";
        if (c.layout == LAYOUT_SHARED && twin >= 0)
            snprintf(ideal, sizeof ideal, "%.3f", plan_ideal_speedup(c, cases[twin]));
        fprintf(f, "%-16s %-8s %5d %4d %6d %7ld %14lld %6.1f %6.1f %6.1f %6s\n", c.group.c_str(), c.layout_name(),
                c.pairs, c.B, c.T, c.real_tokens(), c.visible, 100.0 * c.tiles[TILE_SKIP] / n,
                100.0 * c.tiles[TILE_FULL] / n, 100.0 * c.tiles[TILE_PARTIAL] / n, ideal);
    }
}

// Writes DIR/cases.tsv and DIR/<case>.end.i32 (DIR is created if missing). Exits on any error.
static inline void plan_write_masks(const std::vector<BenchCase>& cases, const std::string& dir) {
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s:%d: cannot create %s: %s\n", __FILE__, __LINE__, dir.c_str(), strerror(errno));
        exit(1);
    }
    const std::string index = dir + "/cases.tsv";
    FILE* tsv = fopen(index.c_str(), "w");
    if (!tsv) {
        fprintf(stderr, "%s:%d: cannot write %s: %s\n", __FILE__, __LINE__, index.c_str(), strerror(errno));
        exit(1);
    }
    fprintf(tsv, "group\tsuite\tlayout\tP\tratio\tpairs\tB\tT\treal_tokens\tvisible_pairs\ttile\t"
                 "tiles_skip\ttiles_full\ttiles_partial\tend_file\n");
    for (const BenchCase& c : cases) {
        const std::string file = c.name() + ".end.i32", path = dir + "/" + file;
        FILE* f = fopen(path.c_str(), "wb");
        const size_t n = c.end.size();
        if (!f || fwrite(c.end.data(), sizeof(int32_t), n, f) != n || fclose(f) != 0) {
            fprintf(stderr, "%s:%d: cannot write %s: %s\n", __FILE__, __LINE__, path.c_str(), strerror(errno));
            exit(1);
        }
        fprintf(tsv, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%ld\t%lld\t%d\t%lld\t%lld\t%lld\t%s\n", c.group.c_str(),
                c.suite.c_str(), c.layout_name(), c.P, c.ratio, c.pairs, c.B, c.T, c.real_tokens(), c.visible, c.tile,
                c.tiles[TILE_SKIP], c.tiles[TILE_FULL], c.tiles[TILE_PARTIAL], file.c_str());
    }
    if (fclose(tsv) != 0) {
        fprintf(stderr, "%s:%d: cannot write %s: %s\n", __FILE__, __LINE__, index.c_str(), strerror(errno));
        exit(1);
    }
}
