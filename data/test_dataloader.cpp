// Tests of the dataloader and packer (data/dataloader.h) on random in-memory pair sets: the step
// stream (epochs, shuffle, resume, ranks), the packing (placement, FFD, padding), and every token's
// metadata and the attention mask, checked against docs/DESIGN.md §1.2/§1.3 written out independently
// of write_unit. Also prints the padding fraction of FFD vs no packing on a realistic length mix.
// Set TEST_SEED=<n> to replay a run (the seed is printed).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include "data/dataloader.h"
#include "dev/test_util.h"

static std::mt19937_64 rng;
static int rand_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }  // [lo, hi]

// A length in [1, max], with extra weight on 1 (the edge case of one-token parts).
static int rand_len(int max) { return rand_int(0, 6) == 0 ? 1 : rand_int(1, max); }

static std::vector<int32_t> rand_tokens(int n) {
    std::vector<int32_t> t(n);
    for (int& x : t) x = rand_int(0, 50256);
    return t;
}

static PairSet random_set(int n, int maxP, int maxResp) {
    PairSet s;
    for (int i = 0; i < n; i++)
        s.add(rand_tokens(rand_len(maxP)), rand_tokens(rand_len(maxResp)), rand_tokens(rand_len(maxResp)));
    return s;
}

// The "realistic" mix of the brief: P ~ U(20,230), C,R ~ U(5,100).
static PairSet realistic_set(int n) {
    PairSet s;
    for (int i = 0; i < n; i++)
        s.add(rand_tokens(rand_int(20, 230)), rand_tokens(rand_int(5, 100)), rand_tokens(rand_int(5, 100)));
    return s;
}

static LoaderConfig make_cfg(int B, int T, int N, Layout layout, bool packing, bool shuffle, uint64_t seed,
                             int rank = 0, int world = 1, bool skip = false) {
    LoaderConfig c;
    c.B = B; c.T = T; c.pairs_per_step = N; c.layout = layout; c.packing = packing; c.shuffle = shuffle;
    c.seed = seed; c.rank = rank; c.world = world; c.skip_overlong = skip;
    return c;
}

static bool same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); i++) {
        const Batch &x = a[i], &y = b[i];
        if (x.B != y.B || x.T != y.T || x.tokens != y.tokens || x.pos != y.pos || x.target != y.target ||
            x.end != y.end || x.slot != y.slot || x.side != y.side || x.row_len != y.row_len ||
            x.pair_ids != y.pair_ids)
            return false;
    }
    return true;
}

// The whole stream of pair indices at positions [0, n_positions), gathered from every rank's
// step_pairs, rank after rank.
static std::vector<int64_t> stream_of(const PairSet& set, LoaderConfig cfg, long n_positions) {
    std::vector<int64_t> stream;
    for (long step = 0; (long)stream.size() < n_positions; step++)
        for (int r = 0; r < cfg.world; r++) {
            DataLoader dl;
            std::string err;
            cfg.rank = r;
            if (!dl.init(&set, cfg, &err)) { printf("init failed: %s\n", err.c_str()); exit(1); }
            std::vector<int64_t> ids = dl.step_pairs(step);
            stream.insert(stream.end(), ids.begin(), ids.end());
        }
    stream.resize(n_positions);
    return stream;
}

static bool is_permutation_of_n(const int64_t* v, int64_t n) {
    std::vector<int> seen(n, 0);
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] >= n || seen[v[i]]) return false;
        seen[v[i]] = 1;
    }
    return true;
}

// ----------------------------------------------------------------------------
// Stream: epochs, shuffle, determinism, resume, ranks

static void test_stream() {
    PairSet set = random_set(37, 10, 10);
    const int n = 37;
    uint64_t seed = rng();
    LoaderConfig cfg = make_cfg(4, 64, 8, LAYOUT_SHARED, true, true, seed, 0, 3);

    std::vector<int64_t> st = stream_of(set, cfg, 4L * n);
    bool ok = true;
    for (int e = 0; e < 4; e++) ok = ok && is_permutation_of_n(&st[(size_t)e * n], n);
    test_report(ok, "stream_epoch_is_permutation", "an epoch of the stream (N=8, 3 ranks, n=37) is not a permutation");

    bool differ = false;
    for (int i = 0; i < n; i++) differ |= st[i] != st[n + i];
    test_report(differ, "stream_epochs_differ", "epoch 0 and epoch 1 have the same order");

    LoaderConfig cfg2 = cfg;
    cfg2.seed = seed + 1;
    std::vector<int64_t> st2 = stream_of(set, cfg2, n);
    differ = false;
    for (int i = 0; i < n; i++) differ |= st[i] != st2[i];
    test_report(differ, "stream_seeds_differ", "seeds %llu and %llu give the same epoch 0", (unsigned long long)seed,
                (unsigned long long)seed + 1);

    LoaderConfig plain = cfg;
    plain.shuffle = false;
    std::vector<int64_t> id = stream_of(set, plain, 3L * n);
    ok = true;
    for (long i = 0; i < 3L * n; i++) ok = ok && id[i] == i % n;
    test_report(ok, "stream_identity_without_shuffle", "shuffle=false does not give dataset order epoch after epoch");

    // a pair set smaller than a step: the step spans several epochs, each still a permutation
    PairSet tiny = random_set(3, 5, 5);
    std::vector<int64_t> ts = stream_of(tiny, make_cfg(4, 64, 8, LAYOUT_SHARED, true, true, seed), 12);
    ok = true;
    for (int e = 0; e < 4; e++) ok = ok && is_permutation_of_n(&ts[(size_t)e * 3], 3);
    test_report(ok, "stream_small_set_spans_epochs", "3 pairs with N=8: an epoch is not a permutation");

    // rank slices: disjoint, contiguous, covering the step, sizes within one of each other
    ok = true;
    std::string why;
    for (int world : {1, 2, 3, 5, 8, 16}) {
        LoaderConfig one = make_cfg(4, 64, 16, LAYOUT_SHARED, true, true, seed);
        DataLoader whole;
        std::string err;
        whole.init(&set, one, &err);
        for (long step : {0L, 1L, 5L, 17L}) {
            std::vector<int64_t> all = whole.step_pairs(step), cat;
            size_t mn = 1 << 30, mx = 0;
            for (int r = 0; r < world; r++) {
                DataLoader dl;
                LoaderConfig c = one;
                c.rank = r; c.world = world;
                if (!dl.init(&set, c, &err)) { ok = false; why = err; break; }
                std::vector<int64_t> ids = dl.step_pairs(step);
                mn = std::min(mn, ids.size()); mx = std::max(mx, ids.size());
                cat.insert(cat.end(), ids.begin(), ids.end());
            }
            if (cat != all) { ok = false; why = "world " + std::to_string(world) + ": slices do not concatenate to the step"; }
            if (mx - mn > 1) { ok = false; why = "world " + std::to_string(world) + ": unbalanced slices"; }
        }
    }
    test_report(ok, "rank_slices_disjoint_covering", "%s", why.c_str());

    // every pair exactly once per epoch through the batches themselves (all ranks, all steps)
    PairSet set48 = random_set(48, 12, 12);
    ok = true;
    for (Layout layout : {LAYOUT_SHARED, LAYOUT_BASELINE})
        for (int epoch = 0; epoch < 2; epoch++) {
            std::vector<int> count(48, 0);
            for (int r = 0; r < 3; r++) {
                DataLoader dl;
                std::string err;
                dl.init(&set48, make_cfg(4, 40, 8, layout, true, true, seed, r, 3), &err);
                std::vector<Batch> bs;
                for (long step = epoch * 6; step < epoch * 6 + 6; step++) {
                    if (!dl.step_batches(step, &bs, &err)) { ok = false; why = err; }
                    for (const Batch& b : bs)
                        for (int64_t id : b.pair_ids) count[id]++;
                }
            }
            for (int c : count) ok = ok && c == 1;
        }
    test_report(ok, "batches_every_pair_once_per_epoch", "a pair appears other than once in an epoch's batches");

    // determinism and resume: a second loader, and steps asked for out of order
    for (Layout layout : {LAYOUT_SHARED, LAYOUT_BASELINE}) {
        LoaderConfig c = make_cfg(3, 48, 10, layout, true, true, seed, 1, 2);
        DataLoader a, b, r;
        std::string err;
        a.init(&set, c, &err); b.init(&set, c, &err); r.init(&set, c, &err);
        std::vector<std::vector<Batch>> in_order(12);
        bool det = true, res = true;
        for (long s = 0; s < 12; s++) {
            std::vector<Batch> x;
            a.step_batches(s, &in_order[s], &err);
            b.step_batches(s, &x, &err);
            det = det && same_batches(in_order[s], x);
        }
        for (long s : {9L, 3L, 11L, 0L, 7L, 7L}) {
            std::vector<Batch> x;
            r.step_batches(s, &x, &err);
            res = res && same_batches(in_order[s], x);
        }
        const char* L = layout == LAYOUT_SHARED ? "shared" : "baseline";
        test_report(det, (std::string("deterministic_rerun_") + L).c_str(), "two loaders gave different batches");
        test_report(res, (std::string("resume_out_of_order_") + L).c_str(), "a step asked for out of order differs");
    }

    // progress for logs
    DataLoader dl;
    std::string err;
    dl.init(&set, make_cfg(4, 64, 8, LAYOUT_SHARED, true, true, seed), &err);
    test_report(dl.epoch_of(4) == 0 && dl.epoch_of(5) == 1 && dl.epoch_of(10) == 2 &&
                    std::abs(dl.epoch_progress(5) - 40.0 / 37) < 1e-12,
                "epoch_of_and_progress", "epoch_of(4,5,10)=%d,%d,%d", dl.epoch_of(4), dl.epoch_of(5), dl.epoch_of(10));
}

// ----------------------------------------------------------------------------
// Batch contents against docs/DESIGN.md §1.2/§1.3, written out here independently of write_unit

struct CheckCounts { long rows = 0, mask_rows = 0; };

// Checks batches of one step (pairs `ids` in step order, all of which should be in) against the
// packer's placement records. Each failed aspect sets its flag and the first reason.
struct BatchChecks {
    bool placement = true, metadata = true, mask = true, scored = true, slots_order = true;
    std::string why;
    void fail(bool* flag, const std::string& msg) { if (*flag && why.empty()) why = msg; *flag = false; }
};

static void check_step(const PairSet& set, int B, int T, Layout layout, const std::vector<int64_t>& ids,
                       const std::vector<Batch>& batches, const std::vector<UnitPlacement>& places,
                       BatchChecks* ck, CheckCounts* counts) {
    const int U = layout == LAYOUT_SHARED ? 1 : 2;
    // every pair's units (keyed by micro-batch and slot: a step that straddles an epoch boundary
    // may hold the same pair twice): right count, one micro-batch, its slot names it, lengths
    std::map<std::pair<int, int>, std::vector<const UnitPlacement*>> by_slot;
    for (const UnitPlacement& p : places) {
        if (p.batch < 0 || p.batch >= (int)batches.size() || p.row < 0 || p.row >= B) {
            ck->fail(&ck->placement, "placement out of range"); return;
        }
        by_slot[{p.batch, p.slot}].push_back(&p);
    }
    std::multiset<int64_t> want(ids.begin(), ids.end()), got;
    size_t n_slots = 0;
    for (const Batch& b : batches) { got.insert(b.pair_ids.begin(), b.pair_ids.end()); n_slots += b.n_slots(); }
    if (want != got) ck->fail(&ck->placement, "the batches' pair_ids are not the step's pairs");
    if (by_slot.size() != n_slots) ck->fail(&ck->placement, "a slot without placed units");
    for (auto& kv : by_slot) {
        const Batch& b = batches[kv.first.first];
        int slot = kv.first.second;
        if (slot < 0 || slot >= b.n_slots()) { ck->fail(&ck->placement, "slot out of range"); continue; }
        if ((int)kv.second.size() != U) { ck->fail(&ck->placement, "pair with wrong number of units"); continue; }
        if (U == 2 && kv.second[0]->unit == kv.second[1]->unit) ck->fail(&ck->placement, "baseline pair without both units");
        const PairRef& pr = set.pairs[b.pair_ids[slot]];
        for (const UnitPlacement* p : kv.second) {
            int want_len = layout == LAYOUT_SHARED ? pr.P + pr.C + 1 + pr.R : (p->unit == 0 ? pr.P + pr.C : pr.P + pr.R);
            if (p->pair != b.pair_ids[slot]) ck->fail(&ck->placement, "slot does not name the pair");
            if (p->len != want_len) ck->fail(&ck->placement, "unit length does not match P, C, R");
            if (p->start < 0 || p->start + p->len > T) ck->fail(&ck->placement, "a unit crosses the row end");
        }
    }
    // slots in step order within every micro-batch: pair_ids is a subsequence of the step's list
    for (const Batch& b : batches) {
        size_t at = 0;
        for (int64_t id : b.pair_ids) {
            while (at < ids.size() && ids[at] != id) at++;
            if (at == ids.size()) { ck->fail(&ck->slots_order, "slots not in step order"); break; }
            at++;
        }
    }
    for (size_t bi = 0; bi < batches.size(); bi++) {
        const Batch& b = batches[bi];
        if (b.B != B || b.T != T) { ck->fail(&ck->placement, "batch shape is not B x T"); return; }
        for (int row = 0; row < B; row++) {
            // this row's units, back to back from column 0
            std::vector<const UnitPlacement*> units;
            for (const UnitPlacement& p : places)
                if (p.batch == (int)bi && p.row == row) units.push_back(&p);
            std::sort(units.begin(), units.end(), [](auto a, auto c) { return a->start < c->start; });
            int col = 0;
            for (const UnitPlacement* p : units) {
                if (p->start != col) ck->fail(&ck->placement, "units in a row overlap or leave a gap");
                col = p->start + p->len;
            }
            if (b.row_len[row] != col) ck->fail(&ck->placement, "row_len is not the end of the row's last unit");
            // expected per-token values, and for the mask: unit index, unit start, P, C per column
            std::vector<int> e_tok(T, 0), e_pos(T, 0), e_tgt(T, -1), e_slot(T, -1), e_side(T, SIDE_NONE);
            std::vector<int> uidx(T, -1), ustart(T, 0), uP(T, 0), uC(T, 0);
            for (size_t ui = 0; ui < units.size(); ui++) {
                const UnitPlacement* p = units[ui];
                const PairRef& pr = set.pairs[p->pair];
                const int32_t *pp = set.prompt(p->pair), *cc = set.chosen(p->pair), *rr = set.rejected(p->pair);
                int P = pr.P, C = pr.C, R = pr.R;
                for (int t = 0; t < p->len && p->start + t < T; t++) {
                    int i = p->start + t;
                    uidx[i] = (int)ui; ustart[i] = p->start; uP[i] = P; uC[i] = C;
                    int tok, pos, tgt = -1, side = SIDE_NONE;
                    if (layout == LAYOUT_SHARED) {
                        if (t < P)            { tok = pp[t]; pos = t; if (t == P - 1) { tgt = cc[0]; side = SIDE_CHOSEN; } }
                        else if (t < P + C)   { int j = t - P; tok = cc[j]; pos = P + j;
                                                if (j + 1 < C) { tgt = cc[j + 1]; side = SIDE_CHOSEN; } }
                        else if (t == P + C)  { tok = pp[P - 1]; pos = P - 1; tgt = rr[0]; side = SIDE_REJECTED; }
                        else                  { int j = t - P - C - 1; tok = rr[j]; pos = P + j;
                                                if (j + 1 < R) { tgt = rr[j + 1]; side = SIDE_REJECTED; } }
                    } else {
                        const int32_t* resp = p->unit == 0 ? cc : rr;
                        int N = p->unit == 0 ? C : R;
                        int s = p->unit == 0 ? SIDE_CHOSEN : SIDE_REJECTED;
                        if (t < P) { tok = pp[t]; pos = t; if (t == P - 1) { tgt = resp[0]; side = s; } }
                        else       { int j = t - P; tok = resp[j]; pos = P + j; if (j + 1 < N) { tgt = resp[j + 1]; side = s; } }
                    }
                    e_tok[i] = tok; e_pos[i] = pos; e_tgt[i] = tgt; e_side[i] = side;
                    e_slot[i] = tgt >= 0 ? p->slot : -1;
                }
            }
            size_t o = (size_t)row * T;
            for (int i = 0; i < T; i++) {
                if (b.tokens[o + i] != e_tok[i] || b.pos[o + i] != e_pos[i] || b.target[o + i] != e_tgt[i] ||
                    b.slot[o + i] != e_slot[i] || b.side[o + i] != e_side[i]) {
                    ck->fail(&ck->metadata, "batch " + std::to_string(bi) + " row " + std::to_string(row) + " col " +
                                                std::to_string(i) + ": token/pos/target/slot/side differ from the table");
                    break;
                }
                if (uidx[i] < 0 && b.end[o + i] != i + 1) { ck->fail(&ck->metadata, "padding end is not own index + 1"); break; }
            }
            // the mask: end[]-rule vs the explicit rule, for every (q, k)
            for (int q = 0; q < T; q++)
                for (int k = 0; k < T; k++) {
                    bool expl;
                    if (uidx[q] < 0 || uidx[k] < 0) expl = q == k;  // padding sees (and is seen by) only itself
                    else {
                        int s = ustart[k], P = uP[k], C = uC[k];
                        bool rejected_query = layout == LAYOUT_SHARED && q - s >= P + C;
                        bool hidden_key = k - s >= P - 1 && k - s < P + C;
                        expl = uidx[q] == uidx[k] && k <= q && !(layout == LAYOUT_SHARED && rejected_query && hidden_key);
                    }
                    bool got_vis = k <= q && q < b.end[o + k];
                    if (expl != got_vis && ck->mask) {
                        char buf[160];
                        snprintf(buf, sizeof buf, "batch %zu row %d: q=%d k=%d end[k]=%d explicit=%d", bi, row, q, k,
                                 b.end[o + k], (int)expl);
                        ck->fail(&ck->mask, buf);
                    }
                }
            counts->rows++;
            if (b.row_len[row] > 0) counts->mask_rows++;
        }
        // scored tokens: per slot, chosen targets are exactly c[0..C) in order and rejected r[0..R)
        std::vector<std::vector<int32_t>> ch(b.n_slots()), rj(b.n_slots());
        for (size_t i = 0; i < (size_t)B * T; i++) {
            if (b.target[i] < 0) continue;
            int s = b.slot[i];
            if (s < 0 || s >= b.n_slots()) { ck->fail(&ck->scored, "scored token with bad slot"); continue; }
            (b.side[i] == SIDE_CHOSEN ? ch[s] : rj[s]).push_back(b.target[i]);
        }
        for (int s = 0; s < b.n_slots(); s++) {
            int64_t id = b.pair_ids[s];
            const PairRef& pr = set.pairs[id];
            std::vector<int32_t> wc(set.chosen(id), set.chosen(id) + pr.C), wr(set.rejected(id), set.rejected(id) + pr.R);
            if ((int)ch[s].size() != pr.C || (int)rj[s].size() != pr.R)
                ck->fail(&ck->scored, "pair " + std::to_string(id) + ": " + std::to_string(ch[s].size()) + " chosen / " +
                                          std::to_string(rj[s].size()) + " rejected targets, want C=" +
                                          std::to_string(pr.C) + " R=" + std::to_string(pr.R));
            else if (ch[s] != wc || rj[s] != wr)
                ck->fail(&ck->scored, "pair " + std::to_string(id) + ": targets are not the response tokens in order");
        }
    }
}

static void test_layouts() {
    for (Layout layout : {LAYOUT_SHARED, LAYOUT_BASELINE})
        for (bool packing : {true, false}) {
            BatchChecks ck;
            CheckCounts counts;
            for (int trial = 0; trial < 100; trial++) {
                int T = rand_int(24, 96), B = rand_int(layout == LAYOUT_BASELINE && !packing ? 2 : 1, 6);
                int maxP = rand_int(1, (T - 1) / 3), maxResp = rand_int(1, (T - 1) / 3);  // shared: P + C + 1 + R <= T
                if (layout == LAYOUT_BASELINE && B == 1) maxP = maxResp = std::max(1, T / 4);  // both units share the row
                PairSet set = random_set(rand_int(20, 60), maxP, maxResp);
                int world = rand_int(1, 3);
                LoaderConfig cfg = make_cfg(B, T, rand_int(world, 24), layout, packing, true, rng(), rand_int(0, world - 1), world);
                DataLoader dl;
                std::string err;
                if (!dl.init(&set, cfg, &err)) { ck.fail(&ck.placement, "init: " + err); break; }
                std::vector<Batch> bs;
                for (long step : {0L, (long)rand_int(1, 50)}) {
                    if (!dl.step_batches(step, &bs, &err)) { ck.fail(&ck.placement, err); break; }
                    check_step(set, B, T, layout, dl.step_pairs(step), bs, dl.last_placements, &ck, &counts);
                }
            }
            std::string tag = std::string(layout == LAYOUT_SHARED ? "shared" : "baseline") + (packing ? "_packed" : "_unpacked");
            const char* why = ck.why.c_str();
            test_report(ck.placement, ("placement_" + tag).c_str(), "%s", why);
            test_report(ck.slots_order, ("slots_in_step_order_" + tag).c_str(), "%s", why);
            test_report(ck.metadata, ("metadata_table_" + tag).c_str(), "%s", why);
            test_report(ck.mask, ("mask_explicit_rule_" + tag).c_str(), "%s", why);
            test_report(ck.scored, ("scored_tokens_" + tag).c_str(), "%s", why);
            test_report(counts.mask_rows >= 200, ("mask_rows_checked_" + tag).c_str(), "only %ld rows with units checked", counts.mask_rows);
            printf("  %s: %ld rows checked (%ld with units), every (q, k)\n", tag.c_str(), counts.rows, counts.mask_rows);
        }
}

// ----------------------------------------------------------------------------
// Packing: hand examples of FFD, packed vs unpacked, token counts

static void test_packing() {
    std::string err;
    // shared units of lengths 4, 7, 5, 6 (P=1, C=1, R=len-3) in step order, T=11, B=1:
    // FFD takes 7, 6, 5, 4: 7 -> mb0, 6 -> mb1, 5 -> mb1 (after 6), 4 -> mb0 (after 7)
    {
        PairSet s;
        for (int len : {4, 7, 5, 6}) s.add(rand_tokens(1), rand_tokens(1), rand_tokens(len - 3));
        std::vector<int64_t> ids = {0, 1, 2, 3};
        std::vector<Batch> bs;
        std::vector<UnitPlacement> pl;
        int sk = 0;
        bool ok = pack_pairs(s, ids.data(), 4, {1, 11, LAYOUT_SHARED, true, false}, &bs, &pl, &sk, &err);
        ok = ok && bs.size() == 2 && bs[0].pair_ids == std::vector<int64_t>({0, 1}) &&
             bs[1].pair_ids == std::vector<int64_t>({2, 3});
        std::map<int64_t, int> start;
        for (auto& p : pl) start[p.pair] = p.start;
        ok = ok && start[1] == 0 && start[0] == 7 && start[3] == 0 && start[2] == 6;
        test_report(ok, "ffd_hand_example_shared", "expected mb0 = {pair1@0, pair0@7}, mb1 = {pair3@0, pair2@6}");
    }
    // baseline, B=2, T=10: pair 0 units (6, 3), pair 1 units (5, 5). FFD takes pair 1 (total 10)
    // first: both units into row 0; then pair 0: 6 (longer first) -> row 1, 3 -> row 1 at 6.
    {
        PairSet s;
        s.add(rand_tokens(2), rand_tokens(4), rand_tokens(1));
        s.add(rand_tokens(1), rand_tokens(4), rand_tokens(4));
        std::vector<int64_t> ids = {0, 1};
        std::vector<Batch> bs;
        std::vector<UnitPlacement> pl;
        int sk = 0;
        bool ok = pack_pairs(s, ids.data(), 2, {2, 10, LAYOUT_BASELINE, true, false}, &bs, &pl, &sk, &err);
        ok = ok && bs.size() == 1 && bs[0].pair_ids == std::vector<int64_t>({0, 1}) && pl.size() == 4;
        for (auto& p : pl) {
            int want_row = p.pair == 1 ? 0 : 1;
            int want_start = p.pair == 1 ? (p.unit == 0 ? 0 : 5) : (p.unit == 0 ? 0 : 6);
            ok = ok && p.row == want_row && p.start == want_start;
        }
        test_report(ok, "ffd_hand_example_baseline", "expected row0 = pair1 units @0,@5; row1 = pair0 units @0,@6");
    }
    // baseline, B=2, T=10: pair 0 units (2, 3), pair 1 units (6, 8). The longer unit goes first:
    // pair 1: 8 -> row 0, 6 -> row 1; pair 0: 3 -> row 1 at 6, 2 -> row 0 at 8: one micro-batch
    // (placing the chosen unit first would need two).
    {
        PairSet s;
        s.add(rand_tokens(1), rand_tokens(1), rand_tokens(2));
        s.add(rand_tokens(1), rand_tokens(5), rand_tokens(7));
        std::vector<int64_t> ids = {0, 1};
        std::vector<Batch> bs;
        std::vector<UnitPlacement> pl;
        int sk = 0;
        bool ok = pack_pairs(s, ids.data(), 2, {2, 10, LAYOUT_BASELINE, true, false}, &bs, &pl, &sk, &err);
        ok = ok && bs.size() == 1 && pl.size() == 4;
        for (auto& p : pl) {
            int want_row = p.pair == 1 ? (p.unit == 0 ? 1 : 0) : (p.unit == 0 ? 0 : 1);
            int want_start = p.pair == 1 ? 0 : (p.unit == 0 ? 8 : 6);
            ok = ok && p.row == want_row && p.start == want_start;
        }
        test_report(ok, "ffd_longer_unit_first_baseline", "expected one micro-batch: row0 = pair1.rejected@0, pair0.chosen@8; "
                    "row1 = pair1.chosen@0, pair0.rejected@6");
    }
    // packed never needs more micro-batches than unpacked; real tokens follow the layout formulas
    bool fewer = true, counts_ok = true;
    std::string why;
    for (int trial = 0; trial < 60; trial++) {
        PairSet set = random_set(200, rand_int(1, 60), rand_int(1, 40));
        int T = 256, B = rand_int(2, 8), N = rand_int(8, 128);
        uint64_t seed = rng();
        for (Layout layout : {LAYOUT_SHARED, LAYOUT_BASELINE}) {
            DataLoader on, off;
            on.init(&set, make_cfg(B, T, N, layout, true, true, seed), &err);
            off.init(&set, make_cfg(B, T, N, layout, false, true, seed), &err);
            std::vector<Batch> a, b;
            long step = rand_int(0, 20);
            on.step_batches(step, &a, &err);
            off.step_batches(step, &b, &err);
            if (a.size() > b.size()) { fewer = false; why = "packed used more micro-batches"; }
            long want = 0;
            for (int64_t id : on.step_pairs(step)) {
                const PairRef& pr = set.pairs[id];
                want += layout == LAYOUT_SHARED ? pr.P + pr.C + 1 + pr.R : 2 * pr.P + pr.C + pr.R;
            }
            if (on.last_real_tokens != want || off.last_real_tokens != want ||
                on.last_padded_tokens != (long)a.size() * B * T - want)
                counts_ok = false;
        }
    }
    test_report(fewer, "packing_no_more_microbatches", "%s", why.c_str());
    test_report(counts_ok, "real_tokens_match_layout", "real tokens differ from sum(P+C+1+R) / sum(2P+C+R)");
}

// ----------------------------------------------------------------------------
// Over-long pairs, configuration errors, evaluation batches

static void test_errors() {
    std::string err;
    uint64_t seed = rng();
    // pair 5 is too long for the shared layout at T=40 (P+C+1+R = 41) but fits the baseline (21, 30)
    PairSet set;
    for (int i = 0; i < 12; i++) {
        if (i == 5) set.add(rand_tokens(11), rand_tokens(10), rand_tokens(19));
        else set.add(rand_tokens(rand_len(6)), rand_tokens(rand_len(6)), rand_tokens(rand_len(6)));
    }
    DataLoader dl;
    bool ok = !dl.init(&set, make_cfg(4, 40, 4, LAYOUT_SHARED, true, true, seed), &err);
    ok = ok && err.find("pair 5") != std::string::npos && err.find("P=11") != std::string::npos &&
         err.find("C=10") != std::string::npos && err.find("R=19") != std::string::npos &&
         err.find("T=40") != std::string::npos && err.find("--max-len <= 40") != std::string::npos &&
         err.find("data/prepare_dpo") != std::string::npos;
    test_report(ok, "overlong_error_message", "got: %s", err.c_str());
    printf("  message: %s\n", err.c_str());
    err.clear();
    test_report(dl.init(&set, make_cfg(4, 40, 4, LAYOUT_BASELINE, true, true, seed), &err), "overlong_fits_baseline",
                "baseline units of 21 and 30 tokens fit T=40: %s", err.c_str());
    // baseline with a single row: both units must share it
    ok = !dl.init(&set, make_cfg(1, 40, 4, LAYOUT_BASELINE, true, true, seed), &err) && err.find("pair 5") != std::string::npos;
    test_report(ok, "overlong_baseline_single_row", "got: %s", err.c_str());

    // skip policy: counts, and skipped pairs never reach a batch
    {
        PairSet s = random_set(60, 30, 30);
        int T = 60, want_over = 0;
        for (size_t i = 0; i < s.size(); i++) want_over += s.pairs[i].P + s.pairs[i].C + 1 + s.pairs[i].R > T;
        DataLoader sk;
        bool okk = sk.init(&s, make_cfg(3, T, 10, LAYOUT_SHARED, true, true, seed, 0, 1, true), &err);
        okk = okk && sk.n_overlong == want_over && want_over > 0;
        std::vector<Batch> bs;
        bool never = true, sums = true;
        for (long step = 0; step < 6 && okk; step++) {  // one epoch: 6 steps of 10 pairs
            okk = sk.step_batches(step, &bs, &err);
            int in = 0;
            for (auto& b : bs)
                for (int64_t id : b.pair_ids) {
                    in++;
                    const PairRef& pr = s.pairs[id];
                    never = never && pr.P + pr.C + 1 + pr.R <= T;
                }
            sums = sums && in == sk.last_pairs && sk.last_pairs + sk.last_skipped == 10;
        }
        // with 3 ranks: the ranks' packed pairs add up to step_pairs_used, which every rank knows
        bool global = true;
        for (long step = 0; step < 12; step++) {
            int total = 0, told = -1;
            for (int r = 0; r < 3; r++) {
                DataLoader rk;
                rk.init(&s, make_cfg(3, T, 10, LAYOUT_SHARED, true, true, seed, r, 3, true), &err);
                rk.step_batches(step, &bs, &err);
                total += rk.last_pairs;
                if (told >= 0 && rk.step_pairs_used(step) != told) global = false;
                told = rk.step_pairs_used(step);
            }
            global = global && total == told;
        }
        test_report(global, "overlong_skip_step_pairs_used", "ranks' packed pairs do not add up to step_pairs_used");
        test_report(okk && sk.skipped_total == want_over, "overlong_skip_counted",
                    "skipped %ld over one epoch, want %d (%s)", sk.skipped_total, want_over, err.c_str());
        test_report(never && sums, "overlong_skip_never_in_batches", "an over-long pair was packed, or counts do not add up");
    }

    // configuration errors
    PairSet s = random_set(10, 5, 5);
    ok = !dl.init(&s, make_cfg(1, 64, 4, LAYOUT_BASELINE, false, true, seed), &err) && err.find("B >= 2") != std::string::npos;
    test_report(ok, "error_baseline_unpacked_needs_two_rows", "got: %s", err.c_str());
    ok = !dl.init(&s, make_cfg(4, 64, 2, LAYOUT_SHARED, true, true, seed, 0, 4), &err) && err.find("pairs_per_step") != std::string::npos;
    test_report(ok, "error_fewer_pairs_than_ranks", "got: %s", err.c_str());
    ok = !dl.init(&s, make_cfg(4, 64, 8, LAYOUT_SHARED, true, true, seed, 4, 4), &err);
    test_report(ok, "error_rank_out_of_range", "accepted rank 4 of 4");
    ok = !dl.init(&s, make_cfg(0, 64, 8, LAYOUT_SHARED, true, true, seed), &err);
    test_report(ok, "error_zero_rows", "accepted B=0");
    PairSet empty;
    ok = !dl.init(&empty, make_cfg(4, 64, 8, LAYOUT_SHARED, true, true, seed), &err) && err.find("empty") != std::string::npos;
    test_report(ok, "error_empty_set", "got: %s", err.c_str());
    PairSet hole = random_set(3, 5, 5);
    hole.add(rand_tokens(3), {}, rand_tokens(2));
    ok = !dl.init(&hole, make_cfg(4, 64, 2, LAYOUT_SHARED, true, true, seed), &err) && err.find("pair 3") != std::string::npos;
    test_report(ok, "error_empty_response", "got: %s", err.c_str());

    // evaluation: every pair exactly once (more pairs than one packing chunk); dataset order unpacked
    PairSet ev = random_set(kEvalChunk * 2 + 77, 40, 40);
    for (Layout layout : {LAYOUT_SHARED, LAYOUT_BASELINE})
        for (bool packing : {true, false}) {
            std::vector<Batch> bs;
            err.clear();
            bool okk = eval_batches(ev, 4, 128, layout, packing, &bs, &err);
            std::vector<int> count(ev.size(), 0);
            std::vector<int64_t> cat;
            for (auto& b : bs) for (int64_t id : b.pair_ids) { count[id]++; cat.push_back(id); }
            for (int c : count) okk = okk && c == 1;
            if (!packing) for (size_t i = 0; i < cat.size(); i++) okk = okk && cat[i] == (int64_t)i;
            std::string name = std::string("eval_every_pair_once_") + (layout == LAYOUT_SHARED ? "shared" : "baseline") +
                               (packing ? "_packed" : "_unpacked");
            test_report(okk, name.c_str(), "%s", err.c_str());
        }
}

// ----------------------------------------------------------------------------
// Speed, and padding on a realistic length mix (numbers for data/LOADER.md)

static void test_speed_and_padding() {
    PairSet set = realistic_set(4096);
    std::string err;
    const int B = 8, T = 512;
    for (Layout layout : {LAYOUT_SHARED, LAYOUT_BASELINE}) {
        double pad[2] = {0, 0}, mbs[2] = {0, 0};
        const int steps = 64, N = 64;
        for (int packing = 0; packing < 2; packing++) {
            DataLoader dl;
            dl.init(&set, make_cfg(B, T, N, layout, packing, true, 1234), &err);
            long real = 0, padded = 0;
            std::vector<Batch> bs;
            for (long s = 0; s < steps; s++) {
                dl.step_batches(s, &bs, &err);
                real += dl.last_real_tokens; padded += dl.last_padded_tokens;
                mbs[packing] += bs.size();
            }
            pad[packing] = (double)padded / (real + padded);
            mbs[packing] /= steps;
        }
        const char* L = layout == LAYOUT_SHARED ? "shared" : "baseline";
        printf("  padding %s (B=%d T=%d N=%d, P~U(20,230) C,R~U(5,100), %d steps): no packing %.1f%% (%.1f micro-batches/step), "
               "FFD %.1f%% (%.1f micro-batches/step)\n", L, B, T, N, steps, 100 * pad[0], mbs[0], 100 * pad[1], mbs[1]);
        test_report(pad[1] < pad[0], (std::string("ffd_pads_less_") + L).c_str(), "FFD %.3f vs none %.3f", pad[1], pad[0]);
    }
    // speed: a step of 512 pairs, packed
    for (Layout layout : {LAYOUT_SHARED, LAYOUT_BASELINE}) {
        DataLoader dl;
        dl.init(&set, make_cfg(B, T, 512, layout, true, true, 99), &err);
        std::vector<Batch> bs;
        dl.step_batches(0, &bs, &err);  // warm up allocations
        auto t0 = std::chrono::steady_clock::now();
        const int reps = 10;
        for (int i = 1; i <= reps; i++) dl.step_batches(i, &bs, &err);
        double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps;
        const char* L = layout == LAYOUT_SHARED ? "shared" : "baseline";
        printf("  speed %s: %.0f us per step of 512 pairs (%.2f us/pair, %zu micro-batches)\n", L, us, us / 512, bs.size());
        test_report(us / 512 < 100.0, (std::string("packing_speed_") + L).c_str(), "%.1f us per pair", us / 512);
    }
}

int main() {
    const char* env = getenv("TEST_SEED");
    uint64_t seed = env ? strtoull(env, nullptr, 10) : std::random_device{}();
    printf("test_dataloader: TEST_SEED=%llu\n", (unsigned long long)seed);
    rng.seed(seed);
    test_stream();
    test_layouts();
    test_packing();
    test_errors();
    test_speed_and_padding();
    return test_exit();
}
