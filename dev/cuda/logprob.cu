// dev/cuda/logprob.cu: checks kernels/logprob.cuh against the CPU reference of the LM head
// (cpu/logprob.h: log-prob of the target, mean logit, dlogits = dlogp * (onehot - softmax)) in
// double, and on a GPU benchmarks it.
//   ./dev/cuda/logprob      the checks: random logits in ±30, V not a multiple of the block,
//                           V = 50257 once; gather_rows and scatter_add_rows
//   ./dev/cuda/logprob 1    (GPU) time and GB/s of the forward and backward at V = 50257
// Builds in the precision of floatX: bf16 by default, fp32 with -DENABLE_FP32 (dev/cuda/logprob_fp32).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/logprob.cuh"
#include "cpu/logprob.h"

// Forward: the reference reads the same floatX logits, so in both builds the error is the
// kernel's fp32 arithmetic: exp and log to a few ulps and sums of up to 50257 terms in a tree of
// per-thread runs (~50 terms) then 1024 partials, i.e. ~1e-6 relative. lse and logp (of size up
// to ~40) are checked to 1e-5 * (1 + |want|); the mean logit, a sum with cancellation, to 1e-6 of
// the largest |logit|.
// Backward: every entry of a row is at most |dlogp[m]|, so errors are measured in units of it.
// The softmax exp(x - lse) inherits lse's fp32 rounding (an ulp of lse ~ 40 is 4e-6), so fp32
// entries are good to ~1e-6 of |dlogp| (measured up to 9.3e-7): 2e-5; bf16 adds one rounding of
// each entry to 8 significant bits (at most 2^-8 = 3.9e-3 of it, measured 3.7e-3): 6e-3. Padded
// columns must be exactly 0.
static const double kTolForward = 1e-5, kTolMean = 1e-6;
#if defined(ENABLE_FP32)
static const double kTolBackward = 2e-5;
#else
static const double kTolBackward = 6e-3;
#endif

static std::vector<floatX> to_floatX(const std::vector<float>& v) {
    std::vector<floatX> out(v.size());
    for (size_t i = 0; i < v.size(); i++) out[i] = (floatX)v[i];
    return out;
}

// The reference: cpu::logprob_forward/backward (cpu/logprob.h) in double. They take the LM head's
// input and weights (logits = inp · wte^T): with inp the M×M identity and wte[v][m] = logits[m][v]
// they form exactly the floatX logits the kernels read. lse = logit[target] - logp.
static void reference_logprob(const std::vector<floatX>& logits, const std::vector<int>& targets,
                              const std::vector<float>& dlogp, int M, int V, int Vp, std::vector<double>* lse,
                              std::vector<double>* logp, std::vector<double>* mean, std::vector<double>* dlogits) {
    std::vector<double> inp((size_t)M * M, 0.0), wte((size_t)V * M), probs((size_t)M * V), dinp((size_t)M * M),
        dwte((size_t)V * M, 0.0), dlogp_d(dlogp.begin(), dlogp.end());
    for (int m = 0; m < M; m++) {
        inp[(size_t)m * M + m] = 1.0;
        for (int v = 0; v < V; v++) wte[(size_t)v * M + m] = (float)logits[(size_t)m * Vp + v];
    }
    lse->resize(M); logp->resize(M); mean->resize(M); dlogits->resize((size_t)M * V);
    cpu::logprob_forward(probs.data(), logp->data(), mean->data(), inp.data(), wte.data(), targets.data(), M, M, V);
    for (int m = 0; m < M; m++) (*lse)[m] = (float)logits[(size_t)m * Vp + targets[m]] - (*logp)[m];
    cpu::logprob_backward(dinp.data(), dwte.data(), dlogits->data(), dlogp_d.data(), probs.data(), inp.data(),
                          wte.data(), targets.data(), M, M, V);
}

static void test_logprob(const char* order, int M, int V, int Vp, std::mt19937_64& rng) {
    std::vector<float> logits_f((size_t)M * Vp), dlogp(M);
    fill_uniform(logits_f, -30.0f, 30.0f, rng);
    fill_uniform(dlogp, -1.0f, 1.0f, rng);
    for (float& d : dlogp) d += d < 0.0f ? -0.1f : 0.1f;  // |dlogp| >= 0.1: errors are measured in its units
    const std::vector<floatX> logits = to_floatX(logits_f);
    std::vector<int> targets(M);
    std::uniform_int_distribution<int> pick(0, V - 1);
    for (int m = 0; m < M; m++) targets[m] = pick(rng);
    targets[0] = V - 1;             // the last real column
    if (M > 1) targets[1] = 0;

    DeviceBuffer<floatX> d_logits(logits.size());
    DeviceBuffer<float> d_logp(M), d_lse(M), d_mean(M), d_dlogp(M);
    DeviceBuffer<int> d_targets(M);
    d_logits.upload(logits);
    d_dlogp.upload(dlogp);
    d_targets.upload(targets);
    logprob_forward(d_logp.ptr, d_lse.ptr, d_mean.ptr, d_logits.ptr, d_targets.ptr, M, V, Vp, nullptr);
    logprob_backward(d_logits.ptr, d_dlogp.ptr, d_lse.ptr, d_targets.ptr, M, V, Vp, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> logp = d_logp.download(), lse = d_lse.download(), mean = d_mean.download();
    const std::vector<floatX> dlogits = d_logits.download();

    std::vector<double> want_lse, want_logp, want_mean, want_dlogits;
    reference_logprob(logits, targets, dlogp, M, V, Vp, &want_lse, &want_logp, &want_mean, &want_dlogits);
    double err_lse = 0.0, err_logp = 0.0, err_mean = 0.0, err_back = 0.0;
    int nonzero_padding = 0;
    auto worse = [](double& worst, double e) { worst = e == e ? std::max(worst, e) : INFINITY; };
    for (int m = 0; m < M; m++) {
        double zabs = 0.0;  // the row's largest |logit|
        for (int v = 0; v < V; v++) zabs = std::max(zabs, std::fabs((double)(float)logits[(size_t)m * Vp + v]));
        worse(err_lse, std::fabs(lse[m] - want_lse[m]) / (1.0 + std::fabs(want_lse[m])));
        worse(err_logp, std::fabs(logp[m] - want_logp[m]) / (1.0 + std::fabs(want_logp[m])));
        worse(err_mean, std::fabs(mean[m] - want_mean[m]) / zabs);
        for (int v = 0; v < V; v++)
            worse(err_back, std::fabs((float)dlogits[(size_t)m * Vp + v] - want_dlogits[(size_t)m * V + v]) /
                                std::fabs(dlogp[m]));
        for (int v = V; v < Vp; v++) nonzero_padding += (float)dlogits[(size_t)m * Vp + v] != 0.0f;
    }
    char tag[160];
    snprintf(tag, sizeof tag, "M=%d V=%d Vp=%d %s order=%s", M, V, Vp, PRECISION_NAME, order);
    const std::string s(tag);
    test_report(err_lse <= kTolForward, ("logprob_forward lse " + s).c_str(), "error %.3g > %.3g", err_lse, kTolForward);
    test_report(err_logp <= kTolForward, ("logprob_forward logp " + s).c_str(), "error %.3g > %.3g", err_logp, kTolForward);
    test_report(err_mean <= kTolMean, ("logprob_forward mean_logit " + s).c_str(), "error %.3g > %.3g", err_mean, kTolMean);
    test_report(err_back <= kTolBackward, ("logprob_backward dlogits " + s).c_str(), "error %.3g > %.3g", err_back,
                kTolBackward);
    test_report(nonzero_padding == 0, ("logprob_backward padded columns zero " + s).c_str(),
                "%d padded entries are not 0", nonzero_padding);
}

// gather_rows then scatter_add_rows of M distinct rows of an [N,C] array.
static void test_gather_scatter(const char* order, int N, int M, int C, std::mt19937_64& rng) {
    std::vector<float> base_f((size_t)N * C), add_f((size_t)M * C);
    fill_uniform(base_f, -2.0f, 2.0f, rng);
    fill_uniform(add_f, -2.0f, 2.0f, rng);
    const std::vector<floatX> base = to_floatX(base_f), add = to_floatX(add_f);
    std::vector<int> rows(N);
    for (int i = 0; i < N; i++) rows[i] = i;
    std::shuffle(rows.begin(), rows.end(), rng);
    const std::vector<int> index(rows.begin(), rows.begin() + M);

    DeviceBuffer<floatX> d_base(base.size()), d_add(add.size()), d_gathered((size_t)M * C);
    DeviceBuffer<int> d_index(M);
    d_base.upload(base);
    d_add.upload(add);
    d_index.upload(index);
    gather_rows(d_gathered.ptr, d_base.ptr, d_index.ptr, M, C, nullptr);
    scatter_add_rows(d_base.ptr, d_add.ptr, d_index.ptr, M, C, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<floatX> gathered = d_gathered.download(), summed = d_base.download();

    bool gather_ok = true;
    for (int m = 0; m < M; m++)
        gather_ok = gather_ok && memcmp(&gathered[(size_t)m * C], &base[(size_t)index[m] * C], sizeof(floatX) * C) == 0;
    // scattered rows: the exact sum rounded once to floatX (half an ulp: 2^-8 relative for bf16's
    // 8 significant bits, 2^-24 for fp32); other rows untouched, bit for bit
#if defined(ENABLE_FP32)
    const double half_ulp = std::ldexp(1.0, -24);
#else
    const double half_ulp = std::ldexp(1.0, -8);
#endif
    std::vector<int> scattered_from(N, -1);
    for (int m = 0; m < M; m++) scattered_from[index[m]] = m;
    double worst = 0.0;
    bool untouched_ok = true;
    for (int n = 0; n < N; n++) {
        if (scattered_from[n] < 0) {
            untouched_ok = untouched_ok && memcmp(&summed[(size_t)n * C], &base[(size_t)n * C], sizeof(floatX) * C) == 0;
            continue;
        }
        for (int i = 0; i < C; i++) {
            const double want = (double)(float)base[(size_t)n * C + i] + (float)add[(size_t)scattered_from[n] * C + i];
            const double e = std::fabs((float)summed[(size_t)n * C + i] - want) / std::max(std::fabs(want), 1e-30);
            worst = e == e ? std::max(worst, e) : INFINITY;
        }
    }
    char tag[160];
    snprintf(tag, sizeof tag, "N=%d M=%d C=%d %s order=%s", N, M, C, PRECISION_NAME, order);
    const std::string s(tag);
    test_report(gather_ok, ("gather_rows " + s).c_str(), "a gathered row differs from its source");
    test_report(worst <= half_ulp && untouched_ok, ("scatter_add_rows " + s).c_str(),
                "relative error %.3g (> %.3g) or an unindexed row changed", worst, half_ulp);
}

static void run_checks() {
    std::mt19937_64 rng(test_seed());
    for_each_thread_order([&](const char* order) {
        test_logprob(order, 2, 50257, 50304, rng);  // GPT-2's vocabulary, padded to a multiple of 128
        test_logprob(order, 13, 1000, 1024, rng);   // V not a multiple of the 1024-thread block
        test_logprob(order, 5, 100, 128, rng);      // 128-thread blocks, 28 padded columns
        test_logprob(order, 4, 33, 33, rng);        // no padding; the second warp mostly idle
        test_logprob(order, 3, 1, 8, rng);          // one real column: logp = 0, dlogits = 0
        test_gather_scatter(order, 40, 17, 96, rng);
        test_gather_scatter(order, 9, 9, 1100, rng);  // every row; C over one block
    });
}

// ----------------------------------------------------------------------------------------------
// Benchmark (GPU only): M scored tokens of GPT-2's vocabulary.
static void benchmark(int version) {
    const int M = 4096, V = 50257, Vp = 50304;
    std::mt19937_64 rng(1234);
    std::vector<float> logits_f((size_t)M * Vp), dlogp(M);
    fill_uniform(logits_f, -10.0f, 10.0f, rng);
    fill_uniform(dlogp, -1.0f, 1.0f, rng);
    std::vector<int> targets(M);
    for (int m = 0; m < M; m++) targets[m] = (int)(rng() % V);
    DeviceBuffer<floatX> d_logits(logits_f.size());
    DeviceBuffer<float> d_logp(M), d_lse(M), d_mean(M), d_dlogp(M);
    DeviceBuffer<int> d_targets(M);
    d_logits.upload(to_floatX(logits_f));
    d_dlogp.upload(dlogp);
    d_targets.upload(targets);
    const double fwd_ms = benchmark_ms([&] {
        logprob_forward(d_logp.ptr, d_lse.ptr, d_mean.ptr, d_logits.ptr, d_targets.ptr, M, V, Vp, nullptr);
    });
    // the backward overwrites the logits: time it on the same buffer (values do not matter)
    const double bwd_ms = benchmark_ms([&] {
        logprob_backward(d_logits.ptr, d_dlogp.ptr, d_lse.ptr, d_targets.ptr, M, V, Vp, nullptr);
    });
    const double row_bytes = (double)M * Vp * sizeof(floatX);
    printf("logprob version %d %s M=%d V=%d: forward %.3f ms %.0f GB/s (reads logits), backward %.3f ms "
           "%.0f GB/s (reads and writes them)\n",
           version, PRECISION_NAME, M, V, fwd_ms, row_bytes / fwd_ms * 1e-6, bwd_ms, 2 * row_bytes / bwd_ms * 1e-6);
}

int main(int argc, char** argv) {
    if (const int version = benchmark_version(argc, argv, 1)) {
        benchmark(version);
        return 0;
    }
    run_checks();
    return test_exit();
}
