// dev/cuda/adamw.cu: the optimizer step (kernels/adamw.cuh), checked and benchmarked.
//   ./dev/cuda/adamw        checks: 3 steps of global norm + clipping + AdamW over two tensors
//                           (one with weight decay, one without) on fresh random fp32 gradients,
//                           against (a) the CPU trainer's own float update (adamw_update_scalar,
//                           same float operations) and (b) the same steps in double
//   ./dev/cuda/adamw 1      (GPU only) times version 1 over GPT-2 124M's parameter count
// Builds with g++ on the CPU execution layer (both thread orders, ASan, -DENABLE_FP32) and nvcc.
#include <algorithm>
#include <cstring>
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/adamw.cuh"

struct AdamSettings {
    float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.1f;
    float grad_clip = 1.0f;  // 0: no clipping
};

// The optimizer state of the flat parameter buffer, on the host in float or double.
template <typename Real> struct HostState {
    std::vector<Real> master, m, v;
};

// max |got - want| / max |want|: the error on the scale of the whole array
static double scaled_error(const std::vector<float>& got, const std::vector<double>& want) {
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < got.size(); i++) {
        const double e = std::fabs((double)got[i] - want[i]);
        if (!(e == e)) return INFINITY;
        worst = std::max(worst, e);
        scale = std::max(scale, std::fabs(want[i]));
    }
    return scale > 0 ? worst / scale : worst;
}

static double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0.0;
    for (size_t i = 0; i < a.size(); i++) {
        const double e = std::fabs((double)a[i] - b[i]);
        if (!(e == e)) return INFINITY;
        worst = std::max(worst, e);
    }
    return worst;
}

static bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

static void report(bool ok, const char* what, const char* config, const char* order,
                   const char* fmt, double value, double tol) {
    char name[200];
    snprintf(name, sizeof name, "adamw %s (%s) order=%s", what, config, order);
    test_report(ok, name, fmt, value, tol);
}

// Three steps over tensors of sizes n_decay (weight decay) and n_plain (none), flat in that order.
static void test_adamw(const char* order, const char* config, const AdamSettings& s,
                       float grad_range, size_t n_decay, size_t n_plain, bool rerun,
                       std::mt19937_64& rng) {
    const size_t n = n_decay + n_plain;
    const int steps = 3;
    std::vector<float> master0(n);
    fill_uniform(master0, -1, 1, rng);
    std::vector<std::vector<float>> grads(steps, std::vector<float>(n));
    for (auto& g : grads) fill_uniform(g, -grad_range, grad_range, rng);

    // GPU: the trainer's sequence, with the clip factor worked out on the host from the GPU norm
    DeviceBuffer<float> d_master(n), d_m(n), d_v(n), d_grads(n), d_norm2(1), d_partials(SUM_SQUARES_BLOCKS);
    DeviceBuffer<floatX> d_params(n);
    std::vector<float> gpu_clip(steps);
    std::vector<double> gpu_norm(steps);
    auto run_gpu = [&]() {
        d_master.upload(master0);
        d_m.upload(std::vector<float>(n, 0.0f));
        d_v.upload(std::vector<float>(n, 0.0f));
        for (int t = 1; t <= steps; t++) {
            d_grads.upload(grads[t - 1]);
            global_norm_squared(d_norm2.ptr, d_partials.ptr, d_grads.ptr, n, nullptr);
            const double norm = std::sqrt((double)d_norm2.download()[0]);
            const float clip = (s.grad_clip > 0 && norm > s.grad_clip) ? (float)(s.grad_clip / norm) : 1.0f;
            const float bc1 = 1.0f - std::pow(s.beta1, (float)t), bc2 = 1.0f - std::pow(s.beta2, (float)t);
            adamw_update(d_master.ptr, d_params.ptr, d_m.ptr, d_v.ptr, d_grads.ptr, n_decay, s.lr,
                         s.beta1, s.beta2, s.eps, s.weight_decay, bc1, bc2, clip, nullptr);
            adamw_update(d_master.ptr + n_decay, d_params.ptr + n_decay, d_m.ptr + n_decay,
                         d_v.ptr + n_decay, d_grads.ptr + n_decay, n_plain, s.lr, s.beta1, s.beta2,
                         s.eps, 0.0f, bc1, bc2, clip, nullptr);
            gpu_norm[t - 1] = norm;
            gpu_clip[t - 1] = clip;
        }
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaDeviceSynchronize());
    };
    run_gpu();
    const std::vector<float> master = d_master.download(), m = d_m.download(), v = d_v.download();
    const std::vector<floatX> params = d_params.download();

    // (a) the CPU trainer's float update with the GPU's clip factors
    HostState<float> f{master0, std::vector<float>(n, 0.0f), std::vector<float>(n, 0.0f)};
    // (b) everything in double: norm, clip, moments, update
    HostState<double> d{{master0.begin(), master0.end()}, std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
    double worst_norm = 0.0;
    for (int t = 1; t <= steps; t++) {
        const std::vector<float>& g = grads[t - 1];
        const float bc1 = 1.0f - std::pow(s.beta1, (float)t), bc2 = 1.0f - std::pow(s.beta2, (float)t);
        for (size_t i = 0; i < n; i++)
            adamw_update_scalar(&f.master[i], &f.m[i], &f.v[i], g[i] * gpu_clip[t - 1], s.lr, s.beta1,
                                s.beta2, s.eps, i < n_decay ? s.weight_decay : 0.0f, bc1, bc2);
        double sumsq = 0.0;
        for (size_t i = 0; i < n; i++) sumsq += (double)g[i] * g[i];
        const double norm = std::sqrt(sumsq);
        worst_norm = std::max(worst_norm, std::fabs(gpu_norm[t - 1] - norm) / norm);
        const double clip = (s.grad_clip > 0 && norm > s.grad_clip) ? s.grad_clip / norm : 1.0;
        const double b1 = s.beta1, b2 = s.beta2;
        const double dbc1 = 1.0 - std::pow(b1, t), dbc2 = 1.0 - std::pow(b2, t);
        for (size_t i = 0; i < n; i++) {
            const double gi = (double)g[i] * clip, wd = i < n_decay ? s.weight_decay : 0.0;
            d.m[i] = b1 * d.m[i] + (1.0 - b1) * gi;
            d.v[i] = b2 * d.v[i] + (1.0 - b2) * gi * gi;
            const double m_hat = d.m[i] / dbc1, v_hat = d.v[i] / dbc2;
            d.master[i] -= (double)s.lr * (m_hat / (std::sqrt(v_hat) + (double)s.eps) + wd * d.master[i]);
        }
    }

    // fp32 sum of n squares in a tree of partials: relative error ~ log2(n) * 6e-8
    report(worst_norm <= 1e-5, "global norm vs double", config, order,
           "relative error %.3g > %.3g", worst_norm, 1e-5);
#if SIMT_CPU
    // the emulator runs the kernel's float operations as the CPU trainer does: identical bits
    const bool same = bitwise_equal(master, f.master) && bitwise_equal(m, f.m) && bitwise_equal(v, f.v);
    report(same, "master, m, v bit-identical to the CPU float update", config, order,
           "max difference %.3g (tolerance %g)",
           std::max({max_abs_diff(master, f.master), max_abs_diff(m, f.m), max_abs_diff(v, f.v)}), 0.0);
#else
    // nvcc may contract a*b+c into one FMA: a rounding or two per operation, ~1e-7 relative
    std::vector<double> fm(f.master.begin(), f.master.end()), fmm(f.m.begin(), f.m.end()), fv(f.v.begin(), f.v.end());
    const double e = std::max({scaled_error(master, fm), scaled_error(m, fmm), scaled_error(v, fv)});
    report(e <= 1e-6, "master, m, v vs the CPU float update", config, order,
           "scaled error %.3g > %.3g", e, 1e-6);
#endif
    // float against double over 3 steps (and the clip factor from a float norm): a few roundings
    // of 6e-8 on each quantity, measured on the scale of the array
    const double e_master = scaled_error(master, d.master), e_m = scaled_error(m, d.m), e_v = scaled_error(v, d.v);
    report(e_master <= 1e-6, "master vs double", config, order, "scaled error %.3g > %.3g", e_master, 1e-6);
    report(e_m <= 1e-6, "m vs double", config, order, "scaled error %.3g > %.3g", e_m, 1e-6);
    report(e_v <= 1e-6, "v vs double", config, order, "scaled error %.3g > %.3g", e_v, 1e-6);
    // the floatX copy is the new master rounded once (round to nearest)
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        const floatX want = (floatX)master[i];
        if (memcmp(&want, &params[i], sizeof(floatX)) != 0) wrong++;
    }
    report(wrong == 0, "params = " PRECISION_NAME " copy of master", config, order,
           "%.0f of them differ (tolerance %g)", (double)wrong, 0.0);

    if (!rerun) return;
    // the whole sequence again from the same inputs: bit-identical (no order-dependent sums)
    run_gpu();
    const bool again = bitwise_equal(d_master.download(), master) && bitwise_equal(d_m.download(), m) &&
                       bitwise_equal(d_v.download(), v);
    report(again, "second run bit-identical", config, order, "max difference %.3g (tolerance %g)",
           max_abs_diff(d_master.download(), master), 0.0);
}

// Version 1 over GPT-2 124M's parameter count, one call for the whole buffer.
static void benchmark(int version) {
    const size_t n = 124475904;
    std::vector<float> x(n);
    std::mt19937_64 rng(1);
    fill_uniform(x, -1, 1, rng);
    DeviceBuffer<float> d_master(n), d_m(n), d_v(n), d_grads(n), d_norm2(1), d_partials(SUM_SQUARES_BLOCKS);
    DeviceBuffer<floatX> d_params(n);
    d_master.upload(x); d_grads.upload(x); d_m.upload(x); d_v.upload(std::vector<float>(n, 1.0f));
    const double adam_ms = benchmark_ms([&] {
        adamw_update(d_master.ptr, d_params.ptr, d_m.ptr, d_v.ptr, d_grads.ptr, n, 1e-4f, 0.9f,
                     0.999f, 1e-8f, 0.1f, 0.5f, 0.5f, 1.0f, nullptr);
    });
    const double norm_ms = benchmark_ms([&] {
        global_norm_squared(d_norm2.ptr, d_partials.ptr, d_grads.ptr, n, nullptr);
    });
    // least traffic: AdamW reads master, m, v, grads and writes master, m, v, params; the norm
    // reads grads once
    const double adam_gb = n * (7.0 * sizeof(float) + sizeof(floatX)) / 1e9, norm_gb = n * sizeof(float) / 1e9;
    printf("adamw version %d (%s), n=%zu: update %.4f ms (%.0f GB/s), global norm %.4f ms (%.0f GB/s)\n",
           version, PRECISION_NAME, n, adam_ms, adam_gb / (adam_ms * 1e-3), norm_ms,
           norm_gb / (norm_ms * 1e-3));
}

int main(int argc, char** argv) {
    if (const int version = benchmark_version(argc, argv, 1)) {
        benchmark(version);
        return 0;
    }
    std::mt19937_64 rng(test_seed());
    printf("precision %s\n", PRECISION_NAME);
    for_each_thread_order([&](const char* order) {
        // (the emulator's cost is mostly the norm's fixed 264 x 512 threads per launch)
        AdamSettings clipped;  // gradient norm ~ 85 > 1: the clip factor is used
        test_adamw(order, "clipped", clipped, 1.0f, 20001, 1537, true, rng);
        AdamSettings unclipped;  // norm ~ 600 below the threshold: factor 1; a tensor of size 1
        unclipped.grad_clip = 1e4f;
        unclipped.lr = 3e-2f;
        test_adamw(order, "below clip threshold", unclipped, 20.0f, 3000, 1, false, rng);
    });
    return test_exit();
}
