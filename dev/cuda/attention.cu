// dev/cuda/attention.cu: checks kernels/attention.cuh against the CPU reference attention in
// double (cpu/attention.h over cpu::PackedRows), and on a GPU benchmarks it.
//   ./dev/cuda/attention      the checks: the tile classifier against a brute-force classification;
//                             version 3's D pass against a dot product in double;
//                             forward out and lse, backward dq, dk, dv, of version 1 and (bf16
//                             build) versions 2 and 3 (and version 4's forward, with version 3's
//                             backward) and the launchers the trainer calls,
//                             bitwise repeatability (and, under dev/simt, version 3 bit-identical
//                             to version 2), on masks from the real packer and adversarial ones
//                             (every thread order under dev/simt)
//   ./dev/cuda/attention N    (GPU) time and TFLOP/s of version N (1 to 4) on packed rows at T = 1024,
//                             and the fraction of 64x64 tiles skipped / full / partial
// Builds in the precision of floatX: bf16 by default, fp32 with -DENABLE_FP32 (dev/cuda/attention_fp32).
// Benchmark modes in full (N = 0: the launchers the trainer calls; --suite: issue 12's suite, whose
// --plan-only times nothing and runs without a GPU): see "Benchmark" below.
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/attention.cuh"
#include "cpu/attention.h"
#include "data/dataloader.h"

// Errors are measured against the largest magnitude of the reference tensor (a score of 1 is an
// error as large as the tensor's biggest entry), so that near-zero entries of a sum with
// cancellation do not dominate.
// fp32: inputs are exact in both; the kernel's fp32 dot products and softmax sums of <= 64 terms
//   (2^-24 each) stay below 1e-6 (measured): 1e-5 leaves room without hiding a wrong term (a wrong key or a
//   missing scale is an O(1) error).
// bf16: the reference uses the same bf16-rounded inputs, so the error is the rounding of each
//   output to bf16 (8 significant bits: at most 2^-8 = 3.9e-3 of the entry) plus, in the
//   backward, the bf16 forward output that enters D_q = dout·out (again up to 2^-8 per term);
//   measured up to 4.6e-3: 1.5e-2.
#if defined(ENABLE_FP32)
static const double kTol = 1e-5;
#else
static const double kTol = 1.5e-2;
#endif
// lse is written in fp32 from fp32 sums in both builds (the inputs are the same rounded values).
static const double kTolLse = 2e-5;
// Version 2 rounds P (and in the backward dS) to bf16 before the mma (2^-9 relative per term, the
// softmax sums kept in fp32) on top of the outputs' rounding: measured up to 3.0e-3 on out and
// 6.1e-3 on dq, dk, dv (version 1: 2.0e-3 and 7.1e-3); the same 1.5e-2 bounds it.

// The forward and backward of the given version: 1, 2 or 3 (the classifier's kernel first), or 0:
// the launchers the trainer calls (version 3 where it applies, else 1).
static void forward_version(int version, floatX* out, float* lse, const floatX* qkv, const int* end, int B, int T,
                            int NH, int C) {
    if (version == 0) {
        attention_forward(out, lse, qkv, end, B, T, NH, C, nullptr);
    } else if (version == 1) {
        attention_forward1(out, lse, qkv, end, B, T, NH, C, nullptr);
    } else {
        const size_t n = (size_t)B * attention_key_tiles(T);
        DeviceBuffer<int> end_min(n), end_max(n);
        attention_end_bounds(end_min.ptr, end_max.ptr, end, B, T, nullptr);
        if (version == 2) attention_forward2(out, lse, qkv, end, end_min.ptr, end_max.ptr, B, T, NH, C, nullptr);
        else if (version == 3) attention_forward3(out, lse, qkv, end, end_min.ptr, end_max.ptr, B, T, NH, C, nullptr);
        else attention_forward4(out, lse, qkv, end, end_min.ptr, end_max.ptr, B, T, NH, C, nullptr);
        CUDA_CHECK(cudaDeviceSynchronize());
    }
}
// (version 4 has only a forward: its backward here is version 3's, fed version 4's out and lse)
static void backward_version(int version, floatX* dqkv, const floatX* dout, const floatX* qkv, const floatX* out,
                             const float* lse, const int* end, int B, int T, int NH, int C) {
    if (version == 0) {
        attention_backward(dqkv, dout, qkv, out, lse, end, B, T, NH, C, nullptr);
    } else if (version == 1) {
        attention_backward1(dqkv, dout, qkv, out, lse, end, B, T, NH, C, nullptr);
    } else {
        const size_t n = (size_t)B * attention_key_tiles(T);
        DeviceBuffer<int> end_min(n), end_max(n);
        DeviceBuffer<float> D((size_t)B * NH * T);  // version 3's D pass writes it
        attention_end_bounds(end_min.ptr, end_max.ptr, end, B, T, nullptr);
        if (version == 2)
            attention_backward2(dqkv, dout, qkv, out, lse, end, end_min.ptr, end_max.ptr, B, T, NH, C, nullptr);
        else
            attention_backward3(dqkv, D.ptr, dout, qkv, out, lse, end, end_min.ptr, end_max.ptr, B, T, NH, C, nullptr);
        CUDA_CHECK(cudaDeviceSynchronize());
    }
}

static std::vector<floatX> to_floatX(const std::vector<float>& v) {
    std::vector<floatX> out(v.size());
    for (size_t i = 0; i < v.size(); i++) out[i] = (floatX)v[i];
    return out;
}

// A set of pairs with the given (P, C, R) lengths; token ids are irrelevant to attention.
static PairSet make_pairs(const std::vector<std::array<int, 3>>& lens) {
    PairSet set;
    for (const auto& l : lens)
        set.add(std::vector<int32_t>(l[0], 7), std::vector<int32_t>(l[1], 8), std::vector<int32_t>(l[2], 9));
    return set;
}

// The first micro-batch that pack_pairs makes of all pairs of `set`.
static Batch pack_first(const PairSet& set, int B, int T, Layout layout, bool packing) {
    std::vector<int64_t> ids(set.size());
    for (size_t i = 0; i < ids.size(); i++) ids[i] = (int64_t)i;
    std::vector<Batch> batches;
    std::string err;
    int skipped = 0;
    if (!pack_pairs(set, ids.data(), (int)ids.size(), PackSpec{B, T, layout, packing, true}, &batches, nullptr,
                    &skipped, &err) || batches.empty()) {
        fprintf(stderr, "%s:%d: pack_pairs: %s\n", __FILE__, __LINE__, err.c_str());
        exit(1);
    }
    return batches[0];
}

// Random pairs, each fitting a row of T tokens in the given layout.
static PairSet random_pairs(int n, int T, Layout layout, std::mt19937_64& rng) {
    std::vector<std::array<int, 3>> lens;
    std::uniform_int_distribution<int> len(1, std::max(1, T / 3 - 1));
    while ((int)lens.size() < n) {
        int P = len(rng), C = len(rng), R = len(rng);
        int need = layout == LAYOUT_SHARED ? shared_unit_len(P, C, R) : P + std::max(C, R);
        if (need <= T) lens.push_back({P, C, R});
    }
    return make_pairs(lens);
}

// Largest |got - want| over the largest |want|; NaN in got counts as infinite.
static double scaled_error(const std::vector<double>& got, const std::vector<double>& want) {
    double worst = 0.0, scale = 1e-30;
    for (double w : want) scale = std::max(scale, std::fabs(w));
    for (size_t i = 0; i < got.size(); i++) {
        double e = std::fabs(got[i] - want[i]);
        if (!(e == e)) return INFINITY;
        worst = std::max(worst, e);
    }
    return worst / scale;
}

static void report(double err, double tol, const std::string& name) {
    test_report(err <= tol, name.c_str(), "error %.3g > tolerance %.3g", err, tol);
}

// One case: random qkv and dout over the whole [B,T] grid (padding included), the kernels, and the
// reference over the real tokens.
static void check_case(int version, const char* order, const char* label, const Batch& batch, int NH, int C,
                       std::mt19937_64& rng) {
    const int B = batch.B, T = batch.T, hs = C / NH;
    const size_t BT = (size_t)B * T;
    std::vector<float> qkv_f(BT * 3 * C), dout_f(BT * C);
    fill_uniform(qkv_f, -2.0f, 2.0f, rng);
    fill_uniform(dout_f, -1.0f, 1.0f, rng);
    const std::vector<floatX> qkv = to_floatX(qkv_f), dout = to_floatX(dout_f);

    DeviceBuffer<floatX> d_qkv(qkv.size()), d_out(BT * C), d_dout(dout.size()), d_dqkv(qkv.size());
    DeviceBuffer<float> d_lse((size_t)B * NH * T);
    DeviceBuffer<int> d_end(BT);
    d_qkv.upload(qkv);
    d_dout.upload(dout);
    d_end.upload(std::vector<int>(batch.end.begin(), batch.end.end()));
    forward_version(version, d_out.ptr, d_lse.ptr, d_qkv.ptr, d_end.ptr, B, T, NH, C);
    backward_version(version, d_dqkv.ptr, d_dout.ptr, d_qkv.ptr, d_out.ptr, d_lse.ptr, d_end.ptr, B, T, NH, C);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<floatX> out = d_out.download(), dqkv = d_dqkv.download();
    const std::vector<float> lse = d_lse.download();
    // the backward again, for bit-identical results
    std::vector<floatX> dqkv_first = dqkv;
    backward_version(version, d_dqkv.ptr, d_dout.ptr, d_qkv.ptr, d_out.ptr, d_lse.ptr, d_end.ptr, B, T, NH, C);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<floatX> dqkv_again = d_dqkv.download();
    // and the forward again
    forward_version(version, d_out.ptr, d_lse.ptr, d_qkv.ptr, d_end.ptr, B, T, NH, C);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<floatX> out_again = d_out.download();
    const std::vector<float> lse_again = d_lse.download();

    // reference: the real tokens packed back to back, in double
    cpu::PackedRows rows;
    rows.build(batch);
    const int N = rows.N;
    std::vector<double> r_qkv((size_t)N * 3 * C), r_dout((size_t)N * C), r_out((size_t)N * C),
        r_att((size_t)NH * rows.att_off[N]), r_dqkv((size_t)N * 3 * C), r_lse((size_t)N * NH);
    auto grid_index = [&](int p) { return (size_t)rows.row_of[p] * T + rows.col[p]; };
    for (int p = 0; p < N; p++) {
        const size_t g = grid_index(p);
        for (int i = 0; i < 3 * C; i++) r_qkv[(size_t)p * 3 * C + i] = (float)qkv[g * 3 * C + i];
        for (int i = 0; i < C; i++) r_dout[(size_t)p * C + i] = (float)dout[g * C + i];
    }
    cpu::attention_forward(r_out.data(), r_att.data(), r_qkv.data(), rows, NH, C);
    cpu::attention_backward(r_dqkv.data(), r_dout.data(), r_qkv.data(), r_att.data(), rows, NH, C);
    // lse in double, straight from the visibility rule
    for (int p = 0; p < N; p++)
        for (int h = 0; h < NH; h++) {
            const int base = p - rows.col[p];
            double m = -INFINITY, sum = 0.0;
            std::vector<double> s;
            for (int k = 0; k <= rows.col[p]; k++) {
                if (!attention_visible(rows.col[p], k, rows.end[base + k])) continue;
                double dot = 0.0;
                for (int i = 0; i < hs; i++)
                    dot += r_qkv[(size_t)p * 3 * C + h * hs + i] * r_qkv[(size_t)(base + k) * 3 * C + C + h * hs + i];
                s.push_back(dot / std::sqrt((double)hs));
                m = std::max(m, s.back());
            }
            for (double x : s) sum += std::exp(x - m);
            r_lse[(size_t)p * NH + h] = m + std::log(sum);
        }

    // kernel results of the real tokens in the reference's order; padding must be finite
    std::vector<double> g_out((size_t)N * C), g_lse((size_t)N * NH), g_dq((size_t)N * C), g_dk((size_t)N * C),
        g_dv((size_t)N * C), w_dq((size_t)N * C), w_dk((size_t)N * C), w_dv((size_t)N * C);
    for (int p = 0; p < N; p++) {
        const size_t g = grid_index(p);
        for (int i = 0; i < C; i++) {
            g_out[(size_t)p * C + i] = (float)out[g * C + i];
            g_dq[(size_t)p * C + i] = (float)dqkv[g * 3 * C + i];
            g_dk[(size_t)p * C + i] = (float)dqkv[g * 3 * C + C + i];
            g_dv[(size_t)p * C + i] = (float)dqkv[g * 3 * C + 2 * C + i];
            w_dq[(size_t)p * C + i] = r_dqkv[(size_t)p * 3 * C + i];
            w_dk[(size_t)p * C + i] = r_dqkv[(size_t)p * 3 * C + C + i];
            w_dv[(size_t)p * C + i] = r_dqkv[(size_t)p * 3 * C + 2 * C + i];
        }
        for (int h = 0; h < NH; h++) g_lse[(size_t)p * NH + h] = lse[((size_t)rows.row_of[p] * NH + h) * T + rows.col[p]];
    }
    double lse_err = 0.0;
    for (size_t i = 0; i < g_lse.size(); i++) {
        double e = std::fabs(g_lse[i] - r_lse[i]) / (std::fabs(r_lse[i]) + 1.0);
        lse_err = e == e ? std::max(lse_err, e) : INFINITY;
    }
    int bad_padding = 0, n_padding = 0;
    for (int r = 0; r < B; r++)
        for (int t = batch.row_len[r]; t < T; t++) {
            const size_t g = (size_t)r * T + t;
            n_padding++;
            bool ok = true;
            for (int i = 0; i < C; i++) ok = ok && std::isfinite((float)out[g * C + i]);
            for (int i = 0; i < 3 * C; i++) ok = ok && std::isfinite((float)dqkv[g * 3 * C + i]);
            for (int h = 0; h < NH; h++) ok = ok && std::isfinite(lse[((size_t)r * NH + h) * T + t]);
            bad_padding += !ok;
        }

    char head[256];
    snprintf(head, sizeof head, "attention v%d %s B=%d T=%d NH=%d hs=%d N=%d %s order=%s", version, label, B,
             T, NH, hs, N, PRECISION_NAME, order);
    const std::string name(head);
    report(scaled_error(g_out, r_out), kTol, "forward out " + name);
    report(lse_err, kTolLse, "forward lse " + name);
    report(scaled_error(g_dq, w_dq), kTol, "backward dq " + name);
    report(scaled_error(g_dk, w_dk), kTol, "backward dk " + name);
    report(scaled_error(g_dv, w_dv), kTol, "backward dv " + name);
    test_report(bad_padding == 0, ("padding finite " + name).c_str(), "%d of %d padding tokens have a NaN or Inf",
                bad_padding, n_padding);
    test_report(memcmp(dqkv_first.data(), dqkv_again.data(), dqkv_again.size() * sizeof(floatX)) == 0,
                ("backward bitwise repeatable " + name).c_str(), "two runs of the backward differ");
    test_report(memcmp(out.data(), out_again.data(), out.size() * sizeof(floatX)) == 0 &&
                    memcmp(lse.data(), lse_again.data(), lse.size() * sizeof(float)) == 0,
                ("forward bitwise repeatable " + name).c_str(), "two runs of the forward differ");
}

// Versions 2 and 3 on the same inputs: version 3 moves the same bytes into shared memory (by
// cp.async) and runs the same per-tile code in the same order, so under the emulator out, lse and
// dqkv must be bit-identical. (On a GPU nvcc may schedule the two kernels' arithmetic differently,
// e.g. contract other multiply-adds; there each version is checked against the reference only.)
[[maybe_unused]] static void check_versions_2_3_same_bits(const char* order, const char* label, const Batch& batch, int NH, int C,
                                         std::mt19937_64& rng) {
    const int B = batch.B, T = batch.T;
    const size_t BT = (size_t)B * T;
    std::vector<float> qkv_f(BT * 3 * C), dout_f(BT * C);
    fill_uniform(qkv_f, -2.0f, 2.0f, rng);
    fill_uniform(dout_f, -1.0f, 1.0f, rng);
    DeviceBuffer<floatX> d_qkv(qkv_f.size()), d_out(BT * C), d_dout(dout_f.size()), d_dqkv(qkv_f.size());
    DeviceBuffer<float> d_lse((size_t)B * NH * T);
    DeviceBuffer<int> d_end(BT);
    d_qkv.upload(to_floatX(qkv_f));
    d_dout.upload(to_floatX(dout_f));
    d_end.upload(std::vector<int>(batch.end.begin(), batch.end.end()));
    std::vector<floatX> out[2], dqkv[2];
    std::vector<float> lse[2];
    for (int i = 0; i < 2; i++) {
        forward_version(2 + i, d_out.ptr, d_lse.ptr, d_qkv.ptr, d_end.ptr, B, T, NH, C);
        backward_version(2 + i, d_dqkv.ptr, d_dout.ptr, d_qkv.ptr, d_out.ptr, d_lse.ptr, d_end.ptr, B, T, NH, C);
        CUDA_CHECK(cudaDeviceSynchronize());
        out[i] = d_out.download();
        lse[i] = d_lse.download();
        dqkv[i] = d_dqkv.download();
    }
    char name[256];
    snprintf(name, sizeof name, "attention v3 bit-identical to v2 %s B=%d T=%d NH=%d hs=%d order=%s", label, B, T, NH,
             C / NH, order);
    test_report(memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(floatX)) == 0 &&
                    memcmp(lse[0].data(), lse[1].data(), lse[0].size() * sizeof(float)) == 0 &&
                    memcmp(dqkv[0].data(), dqkv[1].data(), dqkv[0].size() * sizeof(floatX)) == 0,
                name, "out, lse or dqkv differ");
}

// Version 3's D pass alone: D[b,h,q] = dout · out of every (row, head, query), padding included,
// against the dot product in double. An fp32 sum of n terms in any order is within n·2^-24 of the
// sum of their magnitudes (the bf16 build's products are exact in fp32; the fp32 build's add one
// rounding each, hence hs + 1), so the bound is exact error analysis, not a measured margin; a wrong
// layout or a missing term is an error of the size of a term. B·NH·T is not a multiple of the 256
// threads of a block, so the last block's threads past the end are tested too.
static void check_D_pass(const char* order, int B, int T, int NH, int C, std::mt19937_64& rng) {
    const int hs = C / NH;
    const size_t BT = (size_t)B * T;
    std::vector<float> dout_f(BT * C), out_f(BT * C);
    fill_uniform(dout_f, -1.0f, 1.0f, rng);
    fill_uniform(out_f, -2.0f, 2.0f, rng);
    const std::vector<floatX> dout = to_floatX(dout_f), out = to_floatX(out_f);
    DeviceBuffer<floatX> d_dout(dout.size()), d_out(out.size());
    DeviceBuffer<float> d_D((size_t)B * NH * T);
    d_dout.upload(dout);
    d_out.upload(out);
    attention_backward3_D(d_D.ptr, d_dout.ptr, d_out.ptr, B, T, NH, C, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> D = d_D.download();
    int wrong = 0;
    char first[160] = "";
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int q = 0; q < T; q++) {
                const size_t tok = ((size_t)b * T + q) * C + h * hs;
                double want = 0.0, magnitude = 0.0;
                for (int d = 0; d < hs; d++) {
                    const double term = (double)(float)dout[tok + d] * (double)(float)out[tok + d];
                    want += term;
                    magnitude += std::fabs(term);
                }
                const double got = D[((size_t)b * NH + h) * T + q], bound = (hs + 1) * std::ldexp(magnitude, -24);
                if (!(std::fabs(got - want) <= bound) && wrong++ == 0)
                    snprintf(first, sizeof first, "b=%d h=%d q=%d: D %.9g, dot in double %.9g (bound %.3g)", b, h, q,
                             got, want, bound);
            }
    char name[160];
    snprintf(name, sizeof name, "attention v3 D pass B=%d T=%d NH=%d hs=%d %s order=%s", B, T, NH, hs, PRECISION_NAME,
             order);
    test_report(wrong == 0, name, "%d of %d entries off; first: %s", wrong, B * NH * T, first);
}

// A batch written unit by unit: row r gets shared units of the given lengths (each split as
// P = len/3, C = len/3 - 1, R = the rest, so P + C + 1 + R = len); rows not listed stay padding.
static Batch units_batch(int B, int T, const std::vector<std::vector<int>>& unit_lens) {
    Batch b;
    b.reset(B, T);
    std::vector<int32_t> tok(T, 5);
    int slot = 0;
    for (int r = 0; r < (int)unit_lens.size(); r++) {
        int start = 0;
        for (int len : unit_lens[r]) {
            const int P = std::max(1, len / 3), C = std::max(1, len / 3 - 1), R = len - P - C - 1;
            if (R < 1 || start + len > T) {
                fprintf(stderr, "%s:%d: unit of %d tokens does not split or fit\n", __FILE__, __LINE__, len);
                exit(1);
            }
            write_unit(b, LAYOUT_SHARED, 0, r, start, slot++, PairTokens{tok.data(), P, tok.data(), C, tok.data(), R});
            start += len;
        }
    }
    return b;
}

// The tile classifier alone: attention_end_bounds on the device, then attention_tile_class of every
// (64-query, 64-key) tile of every row, against a brute force that applies attention_visible to
// each (q, k) of the tile. With aligned tiles of equal size the classification is exact (a tile
// below the diagonal holds (q0, k) for every k; the diagonal tile (k0, k0), and (k0, k0 + 1) when
// it has two keys), so the two must agree everywhere, not just conservatively.
static void check_tile_classes(const char* order, const char* label, const Batch& batch) {
    const int B = batch.B, T = batch.T, tiles = attention_key_tiles(T);
    DeviceBuffer<int> d_end((size_t)B * T), d_min((size_t)B * tiles), d_max((size_t)B * tiles);
    d_end.upload(std::vector<int>(batch.end.begin(), batch.end.end()));
    attention_end_bounds(d_min.ptr, d_max.ptr, d_end.ptr, B, T, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<int> end_min = d_min.download(), end_max = d_max.download();
    int wrong = 0, count[3] = {0, 0, 0};
    char first[160] = "";
    for (int b = 0; b < B; b++)
        for (int qt = 0; qt < tiles; qt++)
            for (int kt = 0; kt < tiles; kt++) {
                const int q0 = qt * ATTN2_TILE, q1 = std::min(q0 + ATTN2_TILE, T);
                const int k0 = kt * ATTN2_TILE, k1 = std::min(k0 + ATTN2_TILE, T);
                int seen = 0;
                for (int q = q0; q < q1; q++)
                    for (int k = k0; k < k1; k++) seen += attention_visible(q, k, batch.end[(size_t)b * T + k]);
                const TileClass want = seen == 0 ? TILE_SKIP : seen == (q1 - q0) * (k1 - k0) ? TILE_FULL : TILE_PARTIAL;
                const TileClass got = attention_tile_class(q0, q1, k0, k1, end_min[b * tiles + kt], end_max[b * tiles + kt]);
                count[want]++;
                if (got != want && wrong++ == 0)
                    snprintf(first, sizeof first, "row %d query tile %d key tile %d: class %d, brute force %d", b, qt, kt,
                             (int)got, (int)want);
            }
    char name[256];
    snprintf(name, sizeof name, "tile classifier %s B=%d T=%d (%d skip, %d full, %d partial) order=%s", label, B, T,
             count[TILE_SKIP], count[TILE_FULL], count[TILE_PARTIAL], order);
    test_report(wrong == 0, name, "%d tiles misclassified; first: %s", wrong, first);
}

// Random column intervals (no packer structure): the keys of each 64-key tile get ends at or just
// above a random tile edge +-1 (so the tile's min end[] falls on, one before or one past a query
// tile's edge: the boundary of skip and full), a few of them anywhere up to T; end[k] > k always.
static Batch random_ends_batch(int B, int T, std::mt19937_64& rng) {
    Batch b;
    b.reset(B, T);
    const int tiles = attention_key_tiles(T);
    for (int r = 0; r < B; r++)
        for (int kt = 0; kt < tiles; kt++) {
            const int edge = ATTN2_TILE * (kt + 1 + (int)(rng() % (tiles - kt))) + (int)(rng() % 3) - 1;
            for (int k = kt * ATTN2_TILE; k < std::min(T, (kt + 1) * ATTN2_TILE); k++) {
                const int e = rng() % 4 == 0 ? edge + (int)(rng() % 70) : edge;
                b.end[(size_t)r * T + k] = std::max(k + 1, std::min(T, e));
            }
        }
    return b;
}

// Rows in which key tile 0 (keys 0..63) is visible to every later query (end = T), and every other
// key only to the queries up to the end of its own 64-key tile: a query block sees tile 0, skips
// every tile between, and sees its diagonal tile. Not a packer layout; every end[k] > k.
[[maybe_unused]] static Batch skip_after_first_batch(int B, int T) {
    Batch b;
    b.reset(B, T);
    for (int r = 0; r < B; r++) {
        b.row_len[r] = T;  // every token real (the reference checks them all)
        for (int k = 0; k < T; k++)
            b.end[(size_t)r * T + k] = k < ATTN2_TILE ? T : std::min(T, (k / ATTN2_TILE + 1) * ATTN2_TILE);
    }
    return b;
}

static void run_checks() {
    std::mt19937_64 rng(test_seed());
    for_each_thread_order([&](const char* order) {
        // the tile classifier: the real packer, adversarial units, random column intervals
        check_tile_classes(order, "packer shared packed", pack_first(random_pairs(40, 300, LAYOUT_SHARED, rng), 4, 300, LAYOUT_SHARED, true));
        check_tile_classes(order, "packer baseline packed", pack_first(random_pairs(30, 256, LAYOUT_BASELINE, rng), 3, 256, LAYOUT_BASELINE, true));
        check_tile_classes(order, "packer shared unpacked", pack_first(random_pairs(3, 200, LAYOUT_SHARED, rng), 3, 200, LAYOUT_SHARED, false));
        check_tile_classes(order, "P=C=R=1", pack_first(make_pairs(std::vector<std::array<int, 3>>(60, {1, 1, 1})), 2, 130, LAYOUT_SHARED, true));
        check_tile_classes(order, "tile edges", units_batch(4, 193, {{64, 64, 64}, {65, 63, 65}, {64, 129}, {}}));
        check_tile_classes(order, "random ends", random_ends_batch(8, 321, rng));

        // version 1 (any head size)
        check_case(1, order, "packer shared packed", pack_first(random_pairs(8, 64, LAYOUT_SHARED, rng), 3, 64, LAYOUT_SHARED, true),
                   4, 32, rng);
        check_case(1, order, "packer shared unpacked", pack_first(random_pairs(3, 48, LAYOUT_SHARED, rng), 3, 48, LAYOUT_SHARED, false),
                   4, 64, rng);
        check_case(1, order, "packer baseline packed", pack_first(random_pairs(6, 64, LAYOUT_BASELINE, rng), 2, 64, LAYOUT_BASELINE, true),
                   1, 64, rng);
        check_case(1, order, "packer baseline unpacked", pack_first(random_pairs(2, 40, LAYOUT_BASELINE, rng), 4, 40, LAYOUT_BASELINE, false),
                   4, 32, rng);
        // adversarial: many P=C=R=1 units (4 tokens each) in rows of T not a multiple of any tile
        check_case(1, order, "P=C=R=1", pack_first(make_pairs(std::vector<std::array<int, 3>>(20, {1, 1, 1})), 2, 37, LAYOUT_SHARED, true),
                   2, 16, rng);
        // units ending exactly on the key tile's edge (32) and one past it, on a query block's edge
        // (8, 16) and one past it; a row of padding only
        check_case(1, order, "tile edges", units_batch(4, 64, {{32, 32}, {33, 31}, {8, 9, 16, 7}, {}}), 4, 32, rng);
        // T not a multiple of either tile, one head of 64 and one of 128 (the GPT-2 and Llama sizes)
        check_case(1, order, "hs=64 T=45", units_batch(2, 45, {{13, 20, 12}, {40}}), 1, 64, rng);
        check_case(1, order, "hs=128 T=19", units_batch(1, 19, {{5, 14}}), 1, 128, rng);

        // version 3's D pass (it compiles and runs in both builds)
        check_D_pass(order, 2, 130, 3, 192, rng);
        check_D_pass(order, 1, 45, 2, 256, rng);

        // versions 2 and 3 (bf16, head size 64 or 128, tiles of 64; 3 pipelines the loads)
#if defined(ENABLE_FP32)
        test_skip(("attention v2 v3 order=" + std::string(order)).c_str(), "versions 2 and 3 compute in bf16: tested in the bf16 build");
#else
        for (int version : {2, 3}) {
        check_case(version, order, "packer shared packed", pack_first(random_pairs(10, 128, LAYOUT_SHARED, rng), 2, 128, LAYOUT_SHARED, true),
                   2, 128, rng);
        check_case(version, order, "packer shared unpacked", pack_first(random_pairs(3, 100, LAYOUT_SHARED, rng), 3, 100, LAYOUT_SHARED, false),
                   1, 128, rng);
        check_case(version, order, "packer baseline packed", pack_first(random_pairs(8, 128, LAYOUT_BASELINE, rng), 2, 128, LAYOUT_BASELINE, true),
                   2, 128, rng);
        check_case(version, order, "packer baseline unpacked", pack_first(random_pairs(2, 80, LAYOUT_BASELINE, rng), 2, 80, LAYOUT_BASELINE, false),
                   1, 64, rng);
        check_case(version, order, "P=C=R=1", pack_first(make_pairs(std::vector<std::array<int, 3>>(34, {1, 1, 1})), 2, 70, LAYOUT_SHARED, true),
                   2, 128, rng);
        // units ending on the 64-key tile's edge and one past it; row 0's second unit (queries
        // 64..127) sees nothing in key tile 0 (skipped); a last tile cut by T = 130; a padding row
        check_case(version, order, "tile edges", units_batch(4, 130, {{64, 64}, {65, 63}, {64, 66}, {}}), 1, 64, rng);
        check_case(version, order, "hs=128 tile edges", units_batch(2, 130, {{64, 66}, {65, 65}}), 1, 128, rng);
        // one long unit: its prompt fills key tiles that later query tiles see whole (full tiles);
        // T = 3*64 + 1 leaves a last tile of one key, classified full, whose 63 zero rows must be masked
        check_case(version, order, "long unit", units_batch(1, 193, {{193}}), 1, 64, rng);
        check_case(version, order, "hs=128 T=19", units_batch(1, 19, {{5, 14}}), 2, 256, rng);
        // the pipeline's edges: each query block sees key tile 0 whole, then skips every tile up to
        // its diagonal (the prefetch finds its next tile several tiles on, or none); key tile 0's
        // queries are every tile of the row, the others' only their own; T = 5*64 + 7 leaves a last
        // prefetch of 7 rows
        check_case(version, order, "skips after the first tile", skip_after_first_batch(2, 327), 2, 128, rng);
        check_case(version, order, "hs=128 skips after the first tile", skip_after_first_batch(1, 200), 1, 128, rng);
        }
#if SIMT_CPU
        check_versions_2_3_same_bits(order, "packer shared packed",
                                     pack_first(random_pairs(12, 200, LAYOUT_SHARED, rng), 2, 200, LAYOUT_SHARED, true), 2, 128, rng);
        check_versions_2_3_same_bits(order, "hs=128 tile edges", units_batch(2, 130, {{64, 66}, {65, 65}}), 2, 256, rng);
#endif
        // version 4 (Hopper wgmma, forward only, head size 64; its backward is version 3's): the
        // shapes above with hs 64; skipped on a GPU build without wgmma (not sm_90a)
        if (attention_forward4_available()) {
            check_case(4, order, "packer shared packed", pack_first(random_pairs(10, 128, LAYOUT_SHARED, rng), 2, 128, LAYOUT_SHARED, true),
                       2, 128, rng);
            check_case(4, order, "packer baseline unpacked", pack_first(random_pairs(2, 80, LAYOUT_BASELINE, rng), 2, 80, LAYOUT_BASELINE, false),
                       1, 64, rng);
            check_case(4, order, "tile edges", units_batch(4, 130, {{64, 64}, {65, 63}, {64, 66}, {}}), 1, 64, rng);
            check_case(4, order, "long unit", units_batch(1, 193, {{193}}), 1, 64, rng);
            check_case(4, order, "skips after the first tile", skip_after_first_batch(2, 327), 2, 128, rng);
        } else {
            test_skip(("attention v4 order=" + std::string(order)).c_str(), "version 4 needs wgmma: a build for sm_90a");
        }
        // the launchers the trainer calls (version 3 here, end_min / end_max and D in their scratch
        // memory), then a larger micro-batch: both scratch arrays grow
        check_case(0, order, "launchers", pack_first(random_pairs(6, 96, LAYOUT_SHARED, rng), 2, 96, LAYOUT_SHARED, true),
                   2, 128, rng);
        check_case(0, order, "launchers larger batch",
                   pack_first(random_pairs(12, 160, LAYOUT_SHARED, rng), 3, 160, LAYOUT_SHARED, true), 2, 128, rng);
#endif
    });
    attention_teardown();
}

// ----------------------------------------------------------------------------------------------
// Benchmark. Timing needs a GPU; the plan (masks, visible pairs, tile classes: host code in
// dev/cuda/attention_plan.h) is computed anywhere, so --plan-only runs under the CPU emulation too.
//   ./dev/cuda/attention N     version N (0: the launchers train_dpo calls, 1, 2, 3, 4) on one case:
//                              HH-like random pairs packed into 8 shared rows of T = 1024
//   ./dev/cuda/attention N --suite [--hh PAIRS.bin] [--only all|hh|syn] [--tokens N]
//                              [--masks DIR] [--tsv FILE] [--budget SECONDS] [--plan-only]
//        the suite: HH-RLHF pairs (a pair file from data/prepare_dpo) packed at T = 1024, 2048,
//        4096 and the synthetic grid (prompt 256..4096 x ratio 1..8), each in the shared and the
//        unshared layout, about --tokens (32768) real shared tokens per case, head sizes 64
//        (12 heads) and 128 (8 heads); forward, backward and both. Prints the plan table and a
//        table of times; --tsv writes one line per measurement (the format
//        dev/cuda/attention_torch.py writes too), --masks the mask files of every case.
//        --budget: no case starts after that many seconds (the rest is listed as not run).
// Time: median of cudaEvent-timed runs after two warm-up runs. TFLOP/s counts only visible (q, k)
// pairs of real tokens: forward 4*hs FLOPs per pair and head (q.k and p.v), backward 2.5 times
// that (FlashAttention's convention: the recomputed q.k, dout.v, dq, dk, dv), both 3.5 times.
#include <chrono>

#include "dev/cuda/attention_plan.h"
#include "data/pairfile.h"

struct BenchOptions {
    int version = 2;
    bool suite = false, plan_only = false;
    std::string hh, only = "all", masks, tsv;
    long tokens = 32768;
    double budget_s = 0.0;  // 0: none
};

static void bench_usage(const char* prog) {
    fprintf(stderr,
            "usage: %s                 run the checks\n"
            "       %s N               benchmark version N (0 launchers, 1, 2, 3, 4) on one case (GPU)\n"
            "       %s N --suite [--hh PAIRS.bin] [--only all|hh|syn] [--tokens N] [--masks DIR]\n"
            "                [--tsv FILE] [--budget SECONDS] [--plan-only]\n",
            prog, prog, prog);
    exit(2);
}

static BenchOptions parse_bench_options(int argc, char** argv) {
    BenchOptions o;
    char* rest = nullptr;
    o.version = (int)strtol(argv[1], &rest, 10);
    if (*rest != '\0' || o.version < 0) {
        fprintf(stderr, "%s: '%s' is not a version number\n", argv[0], argv[1]);
        bench_usage(argv[0]);
    }
    for (int i = 2; i < argc; i++) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: %s needs a value\n", argv[0], a.c_str());
                bench_usage(argv[0]);
            }
            return argv[++i];
        };
        if (a == "--suite") o.suite = true;
        else if (a == "--plan-only") o.plan_only = true;
        else if (a == "--hh") o.hh = value();
        else if (a == "--only") o.only = value();
        else if (a == "--masks") o.masks = value();
        else if (a == "--tsv") o.tsv = value();
        else if (a == "--tokens") o.tokens = atol(value().c_str());
        else if (a == "--budget") o.budget_s = atof(value().c_str());
        else {
            fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], a.c_str());
            bench_usage(argv[0]);
        }
    }
    if (o.only != "all" && o.only != "hh" && o.only != "syn") {
        fprintf(stderr, "%s: --only takes all, hh or syn, not '%s'\n", argv[0], o.only.c_str());
        bench_usage(argv[0]);
    }
    if (o.tokens < 1) {
        fprintf(stderr, "%s: --tokens must be a positive number of tokens\n", argv[0]);
        bench_usage(argv[0]);
    }
    if (!o.suite && (o.plan_only || !o.hh.empty() || !o.masks.empty() || !o.tsv.empty())) {
        fprintf(stderr, "%s: --hh, --masks, --tsv and --plan-only belong to --suite\n", argv[0]);
        bench_usage(argv[0]);
    }
    if (o.suite && o.only == "hh" && o.hh.empty()) {
        fprintf(stderr, "%s: --only hh needs --hh PAIRS.bin (data/prepare_dpo of data/hh-rlhf/harmless-base-test.jsonl.gz)\n",
                argv[0]);
        exit(2);
    }
    return o;
}

// The quick case of `./dev/cuda/attention N`: prompts and responses of random lengths like
// HH-RLHF's (prompt 16..400, responses 8..200 tokens), packed into 8 shared rows of 1024.
static std::vector<BenchCase> quick_case() {
    std::mt19937_64 rng(1234);
    std::uniform_int_distribution<int> prompt_len(16, 400), resp_len(8, 200);
    std::vector<std::array<int, 3>> lens;
    for (int i = 0; i < 64; i++) lens.push_back({prompt_len(rng), resp_len(rng), resp_len(rng)});
    BenchCase c = plan_case_from_batch(pack_first(make_pairs(lens), 8, 1024, LAYOUT_SHARED, true), ATTN2_TILE);
    return {plan_finish(c, "hhlike-T1024", "quick", LAYOUT_SHARED, ATTN2_TILE)};
}

#if !SIMT_CPU
static const char* kPassNames[3] = {"fwd", "bwd", "both"};
static const double kPassFlopFactor[3] = {4.0, 10.0, 14.0};  // FLOPs per visible pair, head and head dim

static void bench_forward(int version, floatX* out, float* lse, const floatX* qkv, const int* end, int* end_min,
                          int* end_max, int B, int T, int NH, int C) {
    if (version == 0) {
        attention_forward(out, lse, qkv, end, B, T, NH, C, nullptr);
    } else if (version == 1) {
        attention_forward1(out, lse, qkv, end, B, T, NH, C, nullptr);
    } else {  // the classifier's kernel counts: the trainer's launcher runs it at each call
        attention_end_bounds(end_min, end_max, end, B, T, nullptr);
        if (version == 2) attention_forward2(out, lse, qkv, end, end_min, end_max, B, T, NH, C, nullptr);
        else if (version == 3) attention_forward3(out, lse, qkv, end, end_min, end_max, B, T, NH, C, nullptr);
        else attention_forward4(out, lse, qkv, end, end_min, end_max, B, T, NH, C, nullptr);
    }
}
static void bench_backward(int version, floatX* dqkv, float* D, const floatX* dout, const floatX* qkv,
                           const floatX* out, const float* lse, const int* end, int* end_min, int* end_max, int B,
                           int T, int NH, int C) {
    if (version == 0) {
        attention_backward(dqkv, dout, qkv, out, lse, end, B, T, NH, C, nullptr);
    } else if (version == 1) {
        attention_backward1(dqkv, dout, qkv, out, lse, end, B, T, NH, C, nullptr);
    } else {
        attention_end_bounds(end_min, end_max, end, B, T, nullptr);
        if (version == 2) attention_backward2(dqkv, dout, qkv, out, lse, end, end_min, end_max, B, T, NH, C, nullptr);
        else attention_backward3(dqkv, D, dout, qkv, out, lse, end, end_min, end_max, B, T, NH, C, nullptr);
    }
}

// Median milliseconds of run(), timed with events one run at a time after two warm-up runs: at
// least 5 runs, more while the total stays under ~150 ms, at most 25.
template <class Run> static double median_ms(Run run) {
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    for (int i = 0; i < 2; i++) run();
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> ms;
    double total = 0.0;
    while (ms.size() < 5 || (ms.size() < 25 && total < 150.0)) {
        CUDA_CHECK(cudaEventRecord(start));
        run();
        CUDA_CHECK(cudaEventRecord(stop));
        CUDA_CHECK(cudaEventSynchronize(stop));
        float t = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
        ms.push_back(t);
        total += t;
    }
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

// Times every case at head sizes 64 and 128: the plan's order, cut when the budget is spent.
static void bench_time_cases(const BenchOptions& o, const std::vector<BenchCase>& cases, FILE* tsv,
                             std::chrono::steady_clock::time_point started) {
#if defined(ENABLE_FP32)
    if (o.version >= 2) {
        fprintf(stderr, "versions 2 and 3 compute in bf16: run the bf16 build (dev/cuda/attention)\n");
        exit(1);
    }
#endif
    if (o.version > 4) {
        fprintf(stderr, "versions: 0 (the launchers), 1 (simple), 2 (tensor cores, bf16, head size 64 or 128), "
                        "3 (2 with cp.async pipelining), 4 (Hopper wgmma forward, head size 64; backward 3's)\n");
        exit(1);
    }
    if (o.version == 4 && !attention_forward4_available()) {
        fprintf(stderr, "version 4 needs wgmma: build for sm_90a (nvcc -arch=sm_90a) and run on a Hopper GPU\n");
        exit(1);
    }
    const int head_sizes[2] = {64, 128}, heads[2] = {12, 8};  // C = 768 (GPT-2 small) and 1024
    size_t max_bt = 0, max_tiles = 0;
    for (const BenchCase& c : cases) {
        max_bt = std::max(max_bt, (size_t)c.B * c.T);
        max_tiles = std::max(max_tiles, (size_t)c.B * attention_key_tiles(c.T));
    }
    const size_t max_c = 1024;
    // random inputs, the same for every case: a block of 2^24 uniform values repeated over the buffers
    std::vector<floatX> block((size_t)1 << 24);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (floatX& x : block) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x = (floatX)((float)(s >> 40) / (float)(1ull << 24) * 2.0f - 1.0f);
    }
    DeviceBuffer<floatX> d_qkv(max_bt * 3 * max_c), d_out(max_bt * max_c), d_dout(max_bt * max_c),
        d_dqkv(max_bt * 3 * max_c);
    DeviceBuffer<float> d_lse(max_bt * 12), d_D(max_bt * 12);  // [B,NH,T], NH <= 12
    DeviceBuffer<int> d_end(max_bt), d_min(max_tiles), d_max(max_tiles);
    for (DeviceBuffer<floatX>* buf : {&d_qkv, &d_dout})
        for (size_t at = 0; at < buf->n; at += block.size())
            CUDA_CHECK(cudaMemcpy(buf->ptr + at, block.data(), std::min(block.size(), buf->n - at) * sizeof(floatX),
                                  cudaMemcpyHostToDevice));
    printf("\n%-16s %-8s %4s %3s %5s %6s | %9s %9s %9s | %7s %7s %7s\n", "group", "layout", "hs", "NH", "B", "T",
           "fwd ms", "bwd ms", "both ms", "fwd TF", "bwd TF", "both TF");
    size_t done = 0;
    for (; done < cases.size(); done++) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (o.budget_s > 0 && elapsed > o.budget_s) break;
        const BenchCase& c = cases[done];
        CUDA_CHECK(cudaMemcpy(d_end.ptr, c.end.data(), c.end.size() * sizeof(int), cudaMemcpyHostToDevice));
        for (int h = 0; h < 2; h++) {
            const int hs = head_sizes[h], NH = heads[h], C = NH * hs, B = c.B, T = c.T;
            if (o.version == 4 && hs != ATTN4_HS) continue;  // version 4: head size 64 only
            double ms[3];
            ms[0] = median_ms([&] {
                bench_forward(o.version, d_out.ptr, d_lse.ptr, d_qkv.ptr, d_end.ptr, d_min.ptr, d_max.ptr, B, T, NH, C);
            });
            ms[1] = median_ms([&] {
                bench_backward(o.version, d_dqkv.ptr, d_D.ptr, d_dout.ptr, d_qkv.ptr, d_out.ptr, d_lse.ptr, d_end.ptr,
                               d_min.ptr, d_max.ptr, B, T, NH, C);
            });
            ms[2] = median_ms([&] {
                bench_forward(o.version, d_out.ptr, d_lse.ptr, d_qkv.ptr, d_end.ptr, d_min.ptr, d_max.ptr, B, T, NH, C);
                bench_backward(o.version, d_dqkv.ptr, d_D.ptr, d_dout.ptr, d_qkv.ptr, d_out.ptr, d_lse.ptr, d_end.ptr,
                               d_min.ptr, d_max.ptr, B, T, NH, C);
            });
            double tflops[3];
            for (int p = 0; p < 3; p++) tflops[p] = kPassFlopFactor[p] * hs * NH * (double)c.visible / ms[p] * 1e-9;
            printf("%-16s %-8s %4d %3d %5d %6d | %9.4f %9.4f %9.4f | %7.1f %7.1f %7.1f\n", c.group.c_str(),
                   c.layout_name(), hs, NH, B, T, ms[0], ms[1], ms[2], tflops[0], tflops[1], tflops[2]);
            fflush(stdout);
            if (tsv)
                for (int p = 0; p < 3; p++)
                    fprintf(tsv, "ours\tversion %d %s\t%s\t%s\t%d\t%d\t%s\t%.6f\t%.3f\t%lld\tok\n", o.version,
                            PRECISION_NAME, c.group.c_str(), c.layout_name(), hs, NH, kPassNames[p], ms[p], tflops[p],
                            c.visible);
            if (tsv) fflush(tsv);  // a run cut short by a timeout keeps what it measured
        }
    }
    if (done < cases.size()) {
        printf("budget of %.0f s reached: %zu of %zu cases not run (from %s on)\n", o.budget_s, cases.size() - done,
               cases.size(), cases[done].name().c_str());
        if (tsv) fprintf(tsv, "# ours: budget of %.0f s reached, %zu of %zu cases not run\n", o.budget_s,
                         cases.size() - done, cases.size());
    }
}
#endif

static void benchmark(int argc, char** argv) {
    const auto started = std::chrono::steady_clock::now();
    const BenchOptions o = parse_bench_options(argc, argv);
    std::vector<BenchCase> cases;
    if (o.suite) {
        PairSet hh;
        if (!o.hh.empty()) {
            std::string err;
            if (!load_pair_file(o.hh, &hh, &err)) {
                fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.c_str());
                exit(1);
            }
        }
        cases = plan_suite(o.hh.empty() ? nullptr : &hh, o.only, o.tokens, ATTN2_TILE);
        if (o.hh.empty() && o.only == "all") printf("no --hh pair file: the HH-RLHF cases are left out\n");
        if (!o.masks.empty()) plan_write_masks(cases, o.masks);
    } else {
        cases = quick_case();
    }
    printf("attention benchmark plan: tiles of %d x %d on or below the diagonal; visible (q, k) pairs of real "
           "tokens; ideal = visible pairs unshared / shared\n", ATTN2_TILE, ATTN2_TILE);
    plan_print_table(cases, stdout);
    if (!o.masks.empty()) printf("mask files: %s/cases.tsv\n", o.masks.c_str());
    if (o.plan_only) return;
#if SIMT_CPU
    (void)started;
    printf("timing (./dev/cuda/attention %d) needs a GPU: build with nvcc (--plan-only runs here)\n", o.version);
#else
    FILE* tsv = nullptr;
    if (!o.tsv.empty()) {
        tsv = fopen(o.tsv.c_str(), "w");
        if (!tsv) {
            fprintf(stderr, "%s:%d: cannot write %s: %s\n", __FILE__, __LINE__, o.tsv.c_str(), strerror(errno));
            exit(1);
        }
        fprintf(tsv, "impl\tdetail\tgroup\tlayout\ths\tNH\tpass\tms\ttflops\tvisible_pairs\tnote\n");
    }
    bench_time_cases(o, cases, tsv, started);
    if (tsv && fclose(tsv) != 0) {
        fprintf(stderr, "%s:%d: cannot write %s: %s\n", __FILE__, __LINE__, o.tsv.c_str(), strerror(errno));
        exit(1);
    }
#endif
}

int main(int argc, char** argv) {
    if (argc > 1) {
        benchmark(argc, argv);
        return 0;
    }
    run_checks();
    return test_exit();
}
