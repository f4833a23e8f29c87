// dev/cuda/encoder.cu: the embedding layer (kernels/encoder.cuh), checked and benchmarked.
//   ./dev/cuda/encoder      checks forward and the deterministic backward (accumulating into
//                           random gradients) against plain double loops, on random tokens with
//                           many repeats and position ids that restart as in packed rows; the
//                           plan builder's errors on out-of-range ids
//   ./dev/cuda/encoder 1    (GPU only) times version 1 at GPT-2 124M's shape, B=8, T=1024
// Builds with g++ on the CPU execution layer (both thread orders, ASan, -DENABLE_FP32) and nvcc.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "dev/cuda/expect_exit.h"
#include "dev/simt/kernel_test.h"
#include "kernels/encoder.cuh"

static std::vector<floatX> random_floatX(size_t n, float lo, float hi, std::mt19937_64& rng) {
    std::vector<float> f(n);
    fill_uniform(f, lo, hi, rng);
    std::vector<floatX> x(n);
    for (size_t i = 0; i < n; i++) x[i] = (floatX)f[i];
    return x;
}

// Tokens in [0, V) (with a few ids much more frequent, as padding or common words) and position
// ids that run 0, 1, 2, ... and restart at random points, as units packed into rows do.
static void random_batch(std::vector<int>& tokens, std::vector<int>& pos, int N, int V, int max_T,
                         std::mt19937_64& rng) {
    std::uniform_int_distribution<int> any(0, V - 1), coin(0, 9), restart(0, max_T - 1);
    tokens.resize(N);
    pos.resize(N);
    int p = 0;
    for (int n = 0; n < N; n++) {
        tokens[n] = coin(rng) < 3 ? any(rng) % 3 : any(rng);
        if (p >= max_T || coin(rng) == 0) p = coin(rng) < 5 ? 0 : restart(rng);
        pos[n] = p++;
    }
}

static void test_encoder(const char* order, int N, int C, int V, int Vp, int max_T,
                         std::mt19937_64& rng) {
    std::vector<int> tokens, pos;
    random_batch(tokens, pos, N, V, max_T, rng);
    const std::vector<floatX> wte = random_floatX((size_t)Vp * C, -1, 1, rng);
    const std::vector<floatX> wpe = random_floatX((size_t)max_T * C, -1, 1, rng);
    const std::vector<floatX> dout = random_floatX((size_t)N * C, -1, 1, rng);
    std::vector<float> dwte0((size_t)Vp * C), dwpe0((size_t)max_T * C);  // the sums add to these
    fill_uniform(dwte0, -1, 1, rng);
    fill_uniform(dwpe0, -1, 1, rng);

    const EncoderBackwardPlan plan = encoder_backward_plan(tokens.data(), pos.data(), N, Vp, max_T);
    DeviceBuffer<int> d_tokens(N), d_pos(N), d_plan(plan.data.size());
    DeviceBuffer<floatX> d_wte(wte.size()), d_wpe(wpe.size()), d_out((size_t)N * C), d_dout(dout.size());
    DeviceBuffer<float> d_dwte(dwte0.size()), d_dwpe(dwpe0.size());
    d_tokens.upload(tokens); d_pos.upload(pos); d_plan.upload(plan.data);
    d_wte.upload(wte); d_wpe.upload(wpe); d_dout.upload(dout);
    auto run = [&]() {
        d_dwte.upload(dwte0);
        d_dwpe.upload(dwpe0);
        encoder_forward(d_out.ptr, d_tokens.ptr, d_pos.ptr, d_wte.ptr, d_wpe.ptr, N, C, nullptr);
        encoder_backward(d_dwte.ptr, d_dwpe.ptr, d_dout.ptr, plan, d_plan.ptr, C, nullptr);
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaDeviceSynchronize());
    };
    run();
    const std::vector<floatX> out = d_out.download();
    const std::vector<float> dwte = d_dwte.download(), dwpe = d_dwpe.download();

    // forward in double: the sum of two floatX values, rounded once to floatX on the GPU:
    // relative error at most half an ulp, 2^-8 in bf16 (8 significand bits), 2^-24 in fp32;
    // allowed twice that
    const double fwd_tol = std::is_same<floatX, float>::value ? std::ldexp(1.0, -23) : std::ldexp(1.0, -7);
    double fwd_err = 0.0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            const double want = (double)(float)wte[(size_t)tokens[n] * C + c] + (double)(float)wpe[(size_t)pos[n] * C + c];
            const double got = (double)(float)out[(size_t)n * C + c];
            const double e = std::fabs(got - want) / (std::fabs(want) + 1e-6);
            fwd_err = (e == e) ? std::max(fwd_err, e) : INFINITY;
        }

    // backward in double, with the error bound of an fp32 sum of k + 1 terms (the k rows, then
    // the existing gradient): (k + 1) * 2^-24 * (sum of |terms|); rows no token uses untouched
    auto check_backward = [&](const std::vector<float>& got, const std::vector<float>& start,
                              const std::vector<int>& keys, int rows_of_table) {
        std::vector<double> sum(start.begin(), start.end()), abs_sum(start.size());
        std::vector<int> count(rows_of_table, 0);
        for (size_t i = 0; i < start.size(); i++) abs_sum[i] = std::fabs(start[i]);
        for (int n = 0; n < N; n++) {
            count[keys[n]]++;
            for (int c = 0; c < C; c++) {
                const double d = (double)(float)dout[(size_t)n * C + c];
                sum[(size_t)keys[n] * C + c] += d;
                abs_sum[(size_t)keys[n] * C + c] += std::fabs(d);
            }
        }
        double worst = 0.0;  // error / bound; at most 1
        for (int r = 0; r < rows_of_table; r++)
            for (int c = 0; c < C; c++) {
                const size_t i = (size_t)r * C + c;
                const double e = std::fabs((double)got[i] - sum[i]);
                const double bound = (count[r] + 1) * std::ldexp(1.0, -24) * abs_sum[i];
                const double ratio = count[r] == 0 ? (got[i] == start[i] ? 0.0 : INFINITY)
                                                   : (e == 0.0 ? 0.0 : e / bound);
                worst = (ratio == ratio) ? std::max(worst, ratio) : INFINITY;
            }
        return worst;
    };
    const double dwte_err = check_backward(dwte, dwte0, tokens, Vp);
    const double dwpe_err = check_backward(dwpe, dwpe0, pos, max_T);

    run();  // again from the same inputs: the backward has no order-dependent sums
    const bool same = d_dwte.download() == dwte && d_dwpe.download() == dwpe;

    char name[200];
    auto name_of = [&](const char* what) {
        snprintf(name, sizeof name, "encoder %s N=%d C=%d V=%d max_T=%d order=%s", what, N, C, V, max_T, order);
        return name;
    };
    test_report(fwd_err <= fwd_tol, name_of("forward"), "relative error %.3g > %.3g", fwd_err, fwd_tol);
    test_report(dwte_err <= 1.0, name_of("backward dwte"), "error %.3g times the fp32 summation bound", dwte_err);
    test_report(dwpe_err <= 1.0, name_of("backward dwpe"), "error %.3g times the fp32 summation bound", dwpe_err);
    test_report(same, name_of("backward bit-identical on a second run"), "dwte or dwpe differ");
}

// Version 1 at GPT-2 124M's shape: B*T = 8*1024 tokens, C = 768, Vp = 50304, max_T = 1024.
static void benchmark(int version) {
    const int N = 8 * 1024, C = 768, V = 50257, Vp = 50304, max_T = 1024;
    std::mt19937_64 rng(1);
    std::vector<int> tokens, pos;
    random_batch(tokens, pos, N, V, max_T, rng);
    const EncoderBackwardPlan plan = encoder_backward_plan(tokens.data(), pos.data(), N, Vp, max_T);
    DeviceBuffer<int> d_tokens(N), d_pos(N), d_plan(plan.data.size());
    DeviceBuffer<floatX> d_wte((size_t)Vp * C), d_wpe((size_t)max_T * C), d_out((size_t)N * C);
    DeviceBuffer<float> d_dwte((size_t)Vp * C), d_dwpe((size_t)max_T * C);
    d_tokens.upload(tokens); d_pos.upload(pos); d_plan.upload(plan.data);
    d_wte.upload(random_floatX((size_t)Vp * C, -1, 1, rng));
    d_wpe.upload(random_floatX((size_t)max_T * C, -1, 1, rng));
    CUDA_CHECK(cudaMemset(d_dwte.ptr, 0, d_dwte.n * sizeof(float)));
    CUDA_CHECK(cudaMemset(d_dwpe.ptr, 0, d_dwpe.n * sizeof(float)));
    const double fwd_ms = benchmark_ms([&] {
        encoder_forward(d_out.ptr, d_tokens.ptr, d_pos.ptr, d_wte.ptr, d_wpe.ptr, N, C, nullptr);
    });
    const double bwd_ms = benchmark_ms([&] {
        encoder_backward(d_dwte.ptr, d_dwpe.ptr, d_out.ptr, plan, d_plan.ptr, C, nullptr);
    });
    // least traffic: forward reads two embedding rows and writes one per token; backward reads
    // dout twice (once per table) and reads and writes one fp32 row per distinct id
    const double fwd_gb = 3.0 * N * C * sizeof(floatX) / 1e9;
    const double bwd_gb = (2.0 * N * C * sizeof(floatX) + 2.0 * (plan.token_groups + plan.pos_groups) * C * sizeof(float)) / 1e9;
    printf("encoder version %d (%s), N=%d C=%d: forward %.4f ms (%.0f GB/s), backward %.4f ms "
           "(%.0f GB/s; %d distinct tokens, %d distinct positions)\n",
           version, PRECISION_NAME, N, C, fwd_ms, fwd_gb / (fwd_ms * 1e-3), bwd_ms,
           bwd_gb / (bwd_ms * 1e-3), plan.token_groups, plan.pos_groups);
}

int main(int argc, char** argv) {
    if (const int version = benchmark_version(argc, argv, 1)) {
        benchmark(version);
        return 0;
    }
    std::mt19937_64 rng(test_seed());
    printf("precision %s\n", PRECISION_NAME);
    for_each_thread_order([&](const char* order) {
        test_encoder(order, 64, 96, 13, 16, 20, rng);       // few ids: long groups
        test_encoder(order, 300, 768, 1000, 1024, 256, rng);
        test_encoder(order, 37, 33, 5, 5, 40, rng);         // C not a multiple of 32
        test_encoder(order, 1, 1, 1, 1, 1, rng);
    });
    const std::vector<int> bad_token = {0, 3, 7}, bad_pos = {0, 1, 5}, ok_pos = {0, 1, 2};
    expect_exit_message("encoder_backward_plan error: token id out of range",
                        "token 2 has id 7 and position 2",
                        [&] { encoder_backward_plan(bad_token.data(), ok_pos.data(), 3, 7, 4); });
    expect_exit_message("encoder_backward_plan error: position out of range",
                        "token 2 has id 2 and position 5",
                        [&] { encoder_backward_plan(ok_pos.data(), bad_pos.data(), 3, 7, 4); });
    return test_exit();
}
