// dev/cuda/attention.cu: checks kernels/attention.cuh against the CPU reference attention in
// double (cpu/attention.h over cpu::PackedRows), and on a GPU benchmarks it.
//   ./dev/cuda/attention      the checks: forward out and lse, backward dq, dk, dv, bitwise
//                             repeatability of the backward, on masks from the real packer and
//                             adversarial ones (both thread orders under dev/simt)
//   ./dev/cuda/attention 1    (GPU) time and TFLOP/s of version 1 on packed rows at T = 1024
// Builds in the precision of floatX: bf16 by default, fp32 with -DENABLE_FP32 (dev/cuda/attention_fp32).
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
    if (!pack_pairs(set, ids.data(), (int)ids.size(), {B, T, layout, packing, true}, &batches, nullptr,
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
static void check_case(const char* order, const char* label, const Batch& batch, int NH, int C,
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
    attention_forward(d_out.ptr, d_lse.ptr, d_qkv.ptr, d_end.ptr, B, T, NH, C, nullptr);
    attention_backward(d_dqkv.ptr, d_dout.ptr, d_qkv.ptr, d_out.ptr, d_lse.ptr, d_end.ptr, B, T, NH, C,
                       nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<floatX> out = d_out.download(), dqkv = d_dqkv.download();
    const std::vector<float> lse = d_lse.download();
    // the backward again, for bit-identical results
    std::vector<floatX> dqkv_first = dqkv;
    attention_backward(d_dqkv.ptr, d_dout.ptr, d_qkv.ptr, d_out.ptr, d_lse.ptr, d_end.ptr, B, T, NH, C,
                       nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<floatX> dqkv_again = d_dqkv.download();

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
    snprintf(head, sizeof head, "attention %s B=%d T=%d NH=%d hs=%d N=%d %s order=%s", label, B, T, NH,
             hs, N, PRECISION_NAME, order);
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
            write_unit(b, LAYOUT_SHARED, 0, r, start, slot++, {tok.data(), P, tok.data(), C, tok.data(), R});
            start += len;
        }
    }
    return b;
}

static void run_checks() {
    std::mt19937_64 rng(test_seed());
    for_each_thread_order([&](const char* order) {
        // the real packer on random pairs: both layouts, packing on and off
        check_case(order, "packer shared packed", pack_first(random_pairs(8, 64, LAYOUT_SHARED, rng), 3, 64, LAYOUT_SHARED, true),
                   4, 32, rng);
        check_case(order, "packer shared unpacked", pack_first(random_pairs(3, 48, LAYOUT_SHARED, rng), 3, 48, LAYOUT_SHARED, false),
                   4, 64, rng);
        check_case(order, "packer baseline packed", pack_first(random_pairs(6, 64, LAYOUT_BASELINE, rng), 2, 64, LAYOUT_BASELINE, true),
                   1, 64, rng);
        check_case(order, "packer baseline unpacked", pack_first(random_pairs(2, 40, LAYOUT_BASELINE, rng), 4, 40, LAYOUT_BASELINE, false),
                   4, 32, rng);
        // adversarial: many P=C=R=1 units (4 tokens each) in rows of T not a multiple of any tile
        check_case(order, "P=C=R=1", pack_first(make_pairs(std::vector<std::array<int, 3>>(20, {1, 1, 1})), 2, 37, LAYOUT_SHARED, true),
                   2, 16, rng);
        // units ending exactly on the key tile's edge (32) and one past it, on a query block's edge
        // (8, 16) and one past it; a row of padding only
        check_case(order, "tile edges", units_batch(4, 64, {{32, 32}, {33, 31}, {8, 9, 16, 7}, {}}), 4, 32, rng);
        // T not a multiple of either tile, one head of 64 and one of 128 (the GPT-2 and Llama sizes)
        check_case(order, "hs=64 T=45", units_batch(2, 45, {{13, 20, 12}, {40}}), 1, 64, rng);
        check_case(order, "hs=128 T=19", units_batch(1, 19, {{5, 14}}), 1, 128, rng);
    });
}

// ----------------------------------------------------------------------------------------------
// Benchmark (GPU only): packed shared-layout rows at T = 1024, prompts and responses of random
// lengths like HH-RLHF's (prompt 16..400, responses 8..200 tokens).

static void benchmark(int version) {
#if SIMT_CPU
    printf("the benchmark (./dev/cuda/attention %d) needs a GPU: build with nvcc\n", version);
#else
    if (version != 1) { fprintf(stderr, "only version 1 exists\n"); exit(1); }
    const int B = 8, T = 1024;
    std::mt19937_64 rng(1234);
    std::uniform_int_distribution<int> prompt_len(16, 400), resp_len(8, 200);
    std::vector<std::array<int, 3>> lens;
    for (int i = 0; i < 64; i++) lens.push_back({prompt_len(rng), resp_len(rng), resp_len(rng)});
    const Batch batch = pack_first(make_pairs(lens), B, T, LAYOUT_SHARED, true);
    long long visible = 0;  // (q, k) pairs with k visible to q, real tokens and padding alike
    for (int r = 0; r < B; r++)
        for (int q = 0; q < T; q++)
            for (int k = 0; k <= q; k++) visible += attention_visible(q, k, batch.end[(size_t)r * T + k]);
    printf("B=%d T=%d, %ld real tokens, %.1f%% of the causal (q, k) pairs visible\n", B, T, batch.real_tokens(),
           100.0 * visible / (B * (double)T * (T + 1) / 2));
    for (int hs : {64, 128}) {
        const int NH = 12, C = NH * hs;
        const size_t BT = (size_t)B * T;
        std::vector<float> qkv_f(BT * 3 * C), dout_f(BT * C);
        fill_uniform(qkv_f, -1.0f, 1.0f, rng);
        fill_uniform(dout_f, -1.0f, 1.0f, rng);
        DeviceBuffer<floatX> d_qkv(qkv_f.size()), d_out(BT * C), d_dout(dout_f.size()), d_dqkv(qkv_f.size());
        DeviceBuffer<float> d_lse((size_t)B * NH * T);
        DeviceBuffer<int> d_end(BT);
        d_qkv.upload(to_floatX(qkv_f));
        d_dout.upload(to_floatX(dout_f));
        d_end.upload(std::vector<int>(batch.end.begin(), batch.end.end()));
        cudaEvent_t start, stop;
        CUDA_CHECK(cudaEventCreate(&start));
        CUDA_CHECK(cudaEventCreate(&stop));
        const int reps = 20;
        float fwd_ms = 0.0f, bwd_ms = 0.0f;
        for (int pass = 0; pass < 2; pass++) {  // the first pass warms up
            CUDA_CHECK(cudaEventRecord(start));
            for (int i = 0; i < reps; i++)
                attention_forward(d_out.ptr, d_lse.ptr, d_qkv.ptr, d_end.ptr, B, T, NH, C, nullptr);
            CUDA_CHECK(cudaEventRecord(stop));
            CUDA_CHECK(cudaEventSynchronize(stop));
            CUDA_CHECK(cudaEventElapsedTime(&fwd_ms, start, stop));
            CUDA_CHECK(cudaEventRecord(start));
            for (int i = 0; i < reps; i++)
                attention_backward(d_dqkv.ptr, d_dout.ptr, d_qkv.ptr, d_out.ptr, d_lse.ptr, d_end.ptr, B, T, NH,
                                   C, nullptr);
            CUDA_CHECK(cudaEventRecord(stop));
            CUDA_CHECK(cudaEventSynchronize(stop));
            CUDA_CHECK(cudaEventElapsedTime(&bwd_ms, start, stop));
        }
        fwd_ms /= reps;
        bwd_ms /= reps;
        // matmul FLOPs per visible (q, k) pair and head: forward q·k and p·v (2·2·hs); backward
        // recomputes q·k and does dout·v, dq, dk, dv (5·2·hs)
        const double fwd_flop = 4.0 * hs * NH * visible, bwd_flop = 10.0 * hs * NH * visible;
        printf("version %d %s hs=%d NH=%d: forward %.3f ms %.2f TFLOP/s, backward %.3f ms %.2f TFLOP/s\n",
               version, PRECISION_NAME, hs, NH, fwd_ms, fwd_flop / fwd_ms * 1e-9, bwd_ms, bwd_flop / bwd_ms * 1e-9);
        CUDA_CHECK(cudaEventDestroy(start));
        CUDA_CHECK(cudaEventDestroy(stop));
    }
#endif
}

int main(int argc, char** argv) {
    if (argc > 1) {
        benchmark(atoi(argv[1]));
        return 0;
    }
    run_checks();
    return test_exit();
}
