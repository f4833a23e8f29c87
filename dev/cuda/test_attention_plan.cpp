// dev/cuda/test_attention_plan.cpp: checks the host side of dev/cuda/attention's benchmark suite
// (dev/cuda/attention_plan.h), which runs on any machine: for packer masks of HH-like random
// pairs and of the synthetic grid, tile sizes that divide T and that do not,
//   - visible pairs against a direct count over every (q, k) and, for the synthetic groups, against
//     the closed form of the layout (chosen side causal over P + C; the rejected side: its copy of
//     the last prompt token and R tokens see the P - 1 earlier prompt tokens and themselves);
//   - the tile classes against a brute force that counts the visible pairs of each tile;
//   - the groups: the same pairs in both layouts, their real tokens sum(P+C+1+R) and sum(2P+C+R);
//   - the mask files read back; a bad mask rejected with a message;
//   - dev/cuda/README.md's worked example (its end[] and tile counts).
#include <cstdlib>
#include <random>

#include "dev/cuda/attention_plan.h"
#include "dev/cuda/expect_exit.h"
#include "dev/test_util.h"

// Visible pairs and tile classes straight from attention_visible over every (q, k).
static void brute_force(const BenchCase& c, int tile, long long* visible, long long tiles[3]) {
    *visible = 0;
    tiles[0] = tiles[1] = tiles[2] = 0;
    const int nt = (c.T + tile - 1) / tile;
    for (int r = 0; r < c.B; r++) {
        const int32_t* end = &c.end[(size_t)r * c.T];
        for (int q = 0; q < c.row_len[r]; q++)
            for (int k = 0; k < c.row_len[r]; k++) *visible += attention_visible(q, k, end[k]);
        for (int qt = 0; qt < nt; qt++)
            for (int kt = 0; kt <= qt; kt++) {
                const int q0 = qt * tile, q1 = std::min(c.T, q0 + tile), k0 = kt * tile, k1 = std::min(c.T, k0 + tile);
                long seen = 0;
                for (int q = q0; q < q1; q++)
                    for (int k = k0; k < k1; k++) seen += attention_visible(q, k, end[k]);
                tiles[seen == 0 ? TILE_SKIP : seen == (long)(q1 - q0) * (k1 - k0) ? TILE_FULL : TILE_PARTIAL]++;
            }
    }
}

static void check_case(const BenchCase& c, int tile) {
    long long visible = 0, tiles[3];
    brute_force(c, tile, &visible, tiles);
    char name[160];
    snprintf(name, sizeof name, "plan %s B=%d T=%d tile=%d", c.name().c_str(), c.B, c.T, tile);
    test_report(c.visible == visible, (std::string(name) + " visible pairs").c_str(), "plan %lld, direct count %lld",
                c.visible, visible);
    test_report(c.tile == tile && c.tiles[0] == tiles[0] && c.tiles[1] == tiles[1] && c.tiles[2] == tiles[2],
                (std::string(name) + " tile classes").c_str(),
                "plan skip/full/partial %lld/%lld/%lld, brute force %lld/%lld/%lld", c.tiles[0], c.tiles[1], c.tiles[2],
                tiles[0], tiles[1], tiles[2]);
}

// The synthetic group's visible pairs from the layout's definition, per pair (row or two rows).
static void check_synthetic_closed_form(const std::vector<BenchCase>& g) {
    const int P = g[0].P, C = P / g[0].ratio, R = C - 1;
    const long long chosen = (long long)(P + C) * (P + C + 1) / 2;
    const long long shared = chosen + (long long)(R + 1) * (P - 1) + (long long)(R + 1) * (R + 2) / 2;
    const long long unshared = chosen + (long long)(P + R) * (P + R + 1) / 2;
    const long long rows = g[0].B;
    test_report(g[0].layout == LAYOUT_SHARED && g[1].layout == LAYOUT_BASELINE && g[1].B == 2 * rows &&
                    g[0].T == P + 2 * C && g[1].T == P + C && g[0].visible == rows * shared &&
                    g[1].visible == rows * unshared,
                ("plan " + g[0].group + " closed form").c_str(),
                "B %d/%d, T %d/%d, visible %lld/%lld, expected B %lld/%lld T %d/%d visible %lld/%lld", g[0].B, g[1].B,
                g[0].T, g[1].T, g[0].visible, g[1].visible, rows, 2 * rows, P + 2 * C, P + C, rows * shared,
                rows * unshared);
}

static PairSet hh_like_pairs(int n, std::mt19937_64& rng) {
    std::uniform_int_distribution<int> prompt(1, 300), resp(1, 150);
    PairSet set;
    for (int i = 0; i < n; i++)
        set.add(std::vector<int32_t>(prompt(rng), 1), std::vector<int32_t>(resp(rng), 2),
                std::vector<int32_t>(resp(rng), 3));
    return set;
}

static void check_hh_group(const PairSet& set, int T, long tokens, int tile) {
    std::vector<BenchCase> g;
    plan_hh_group(set, T, tokens, tile, &g);
    long long pairs = 0, want_shared = 0, want_unshared = 0;
    for (size_t i = 0; i < set.size() && want_shared < tokens; i++) {
        const PairRef& p = set.pairs[i];
        if (p.P + p.C + 1 + p.R > T) continue;
        pairs++;
        want_shared += p.P + p.C + 1 + p.R;
        want_unshared += 2 * p.P + p.C + p.R;
    }
    test_report(g.size() == 2 && g[0].pairs == pairs && g[1].pairs == pairs && g[0].real_tokens() == want_shared &&
                    g[1].real_tokens() == want_unshared && plan_twin(g, 0) == 1,
                ("plan " + g[0].group + " same pairs in both layouts").c_str(),
                "pairs %d/%d tokens %ld/%ld, expected %lld pairs, %lld/%lld tokens", g[0].pairs, g[1].pairs,
                g[0].real_tokens(), g[1].real_tokens(), pairs, want_shared, want_unshared);
    for (const BenchCase& c : g) check_case(c, tile);
}

static std::vector<char> read_file(const std::string& path) {
    std::vector<char> data;
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return data;
    char buf[65536];
    for (size_t got; (got = fread(buf, 1, sizeof buf, f)) > 0;) data.insert(data.end(), buf, buf + got);
    fclose(f);
    return data;
}

static void check_mask_files(const std::vector<BenchCase>& cases) {
    char tmpl[] = "/tmp/test_attention_plan.XXXXXX";
    if (!mkdtemp(tmpl)) {
        test_report(false, "plan mask files", "mkdtemp failed");
        return;
    }
    const std::string dir = std::string(tmpl) + "/masks";
    plan_write_masks(cases, dir);
    const std::vector<char> index = read_file(dir + "/cases.tsv");
    const std::string text(index.begin(), index.end());
    int bad = 0;
    std::string first;
    size_t lines = 0;
    for (char ch : text) lines += ch == '\n';
    for (const BenchCase& c : cases) {
        const std::vector<char> bin = read_file(dir + "/" + c.name() + ".end.i32");
        char line[256];
        snprintf(line, sizeof line, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%ld\t%lld\t%d\t%lld\t%lld\t%lld\t%s.end.i32\n",
                 c.group.c_str(), c.suite.c_str(), c.layout_name(), c.P, c.ratio, c.pairs, c.B, c.T, c.real_tokens(),
                 c.visible, c.tile, c.tiles[0], c.tiles[1], c.tiles[2], c.name().c_str());
        const bool ok = bin.size() == c.end.size() * 4 && memcmp(bin.data(), c.end.data(), bin.size()) == 0 &&
                        text.find(line) != std::string::npos;
        if (!ok && bad++ == 0) first = c.name();
    }
    test_report(bad == 0 && lines == cases.size() + 1, "plan mask files read back",
                "%d cases differ (first %s), %zu lines in cases.tsv for %zu cases", bad, first.c_str(), lines,
                cases.size());
    const std::string rm = "rm -rf '" + std::string(tmpl) + "'";
    if (system(rm.c_str()) != 0) fprintf(stderr, "could not remove %s\n", tmpl);
}

// dev/cuda/README.md's worked example: one row of T = 24 with shared units (P, C, R) = (5, 3, 3)
// and (3, 2, 2) and 4 padding tokens, tiles of 4: the end[] it draws, and 12 skipped, 2 full and
// 7 partial tiles on or below the diagonal.
static void check_readme_example() {
    Batch b;
    b.reset(1, 24);
    std::vector<int32_t> tok(8, 1);
    write_unit(b, LAYOUT_SHARED, 0, 0, 0, 0, PairTokens{tok.data(), 5, tok.data(), 3, tok.data(), 3});
    write_unit(b, LAYOUT_SHARED, 0, 0, 12, 1, PairTokens{tok.data(), 3, tok.data(), 2, tok.data(), 2});
    b.pair_ids = {0, 1};
    const BenchCase c = plan_finish(plan_case_from_batch(b, 4), "readme", "syn", LAYOUT_SHARED, 4);
    const std::vector<int32_t> drawn = {12, 12, 12, 12, 8,  8,  8,  8,  12, 12, 12, 12,
                                        20, 20, 17, 17, 17, 20, 20, 20, 21, 22, 23, 24};
    test_report(c.end == drawn && c.tiles[TILE_SKIP] == 12 && c.tiles[TILE_FULL] == 2 && c.tiles[TILE_PARTIAL] == 7,
                "plan dev/cuda/README.md worked example", "skip/full/partial %lld/%lld/%lld, end[] %s the drawing",
                c.tiles[0], c.tiles[1], c.tiles[2], c.end == drawn ? "as in" : "differs from");
    check_case(c, 4);
}

int main() {
    std::mt19937_64 rng(20261201);
    std::vector<BenchCase> all;
    check_readme_example();
    // the synthetic grid's shapes scaled down, with tiles that divide T (16) and that do not (24)
    for (int tile : {16, 24})
        for (int ratio : {1, 2, 4, 8}) {
            std::vector<BenchCase> g;
            plan_synthetic_group(64, ratio, 1000, tile, &g);
            check_synthetic_closed_form(g);
            for (const BenchCase& c : g) check_case(c, tile);
            if (tile == 16) all.insert(all.end(), g.begin(), g.end());
        }
    // one real size of the grid, with the kernel's tiles of 64
    {
        std::vector<BenchCase> g;
        plan_synthetic_group(256, 4, 2000, 64, &g);
        check_synthetic_closed_form(g);
        for (const BenchCase& c : g) check_case(c, 64);
    }
    // HH-like pairs packed by the packer; T = 500 leaves pairs out (units up to 601 tokens)
    const PairSet set = hh_like_pairs(200, rng);
    check_hh_group(set, 1024, 8000, 64);
    check_hh_group(set, 500, 6000, 48);
    plan_hh_group(set, 512, 3000, 32, &all);
    check_mask_files(all);

    // a mask the kernels cannot take is refused with a message naming the case and the key
    expect_exit_message("plan rejects end[k] <= k", "row 0 key 3 has end 3", [&] {
        BenchCase c = all[0];
        c.end[3] = 3;
        plan_finish(c, c.group, "syn", c.layout, 16);
    });
    expect_exit_message("plan rejects end[k] > T", "outside", [&] {
        BenchCase c = all[0];
        c.end[0] = c.T + 1;
        plan_finish(c, c.group, "syn", c.layout, 16);
    });
    return test_exit();
}
