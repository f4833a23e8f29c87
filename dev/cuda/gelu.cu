// dev/cuda/gelu.cu: tests kernels/gelu.cuh (GELU forward, and backward in place over dout as the
// trainer may call it) against kernels/gelu_math.h's scalar functions in double, on fresh random
// inputs. With an argument on a GPU it benchmarks: `./dev/cuda/gelu 1` prints time and GB/s at the
// GPT-2 124M MLP size. make test builds it for floatX = bf16 and fp32 (dev/cuda/gelu_fp32).
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/gelu.cuh"

// Max |got - want| / (|want| + floor).
// fp32 build: fp32 evaluation of the formula (expf and a few operations): a few 1e-7 relative.
// bf16 build: the inputs are bf16 and the reference uses the same values; the result is rounded
// once to bf16 (8 significand bits: at most 2^-8 = 3.9e-3 relative).
// The floors: gelu is near 0 for x << 0 (relative accuracy holds there, floor 1e-3 in fp32); gelu'
// crosses 0 near x = -0.75 as the difference of two terms of size ~0.2, so its fp32 error is
// absolute, ~1e-8 (floor 1e-2 for the backward).
#if defined(ENABLE_FP32)
static const double TOL = 1e-5, FLOOR_FWD = 1e-3, FLOOR_BWD = 1e-2;
#else
static const double TOL = 5e-3, FLOOR_FWD = 1e-2, FLOOR_BWD = 1e-2;
#endif

static void random_floatX(std::vector<floatX>& x, std::vector<double>& d, float lo, float hi,
                          std::mt19937_64& rng) {
    std::vector<float> f(x.size());
    fill_uniform(f, lo, hi, rng);
    for (size_t i = 0; i < f.size(); i++) {
        x[i] = (floatX)f[i];
        d[i] = (double)(float)x[i];
    }
}
static std::vector<float> as_float(const std::vector<floatX>& v) {
    std::vector<float> f(v.size());
    for (size_t i = 0; i < v.size(); i++) f[i] = (float)v[i];
    return f;
}

static void test_gelu(const char* order, size_t n, std::mt19937_64& rng) {
    std::vector<floatX> x(n), dy(n);
    std::vector<double> xd(n), dyd(n);
    random_floatX(x, xd, -6, 6, rng);   // both tails and the bend around 0
    random_floatX(dy, dyd, -1, 1, rng);
    DeviceBuffer<floatX> d_x(n), d_out(n), d_dy(n);
    d_x.upload(x); d_dy.upload(dy);
    gelu_forward(d_out.ptr, d_x.ptr, n, nullptr);
    gelu_backward(d_dy.ptr, d_dy.ptr, d_x.ptr, n, nullptr);   // in place: dinp aliases dout
    CUDA_CHECK(cudaDeviceSynchronize());

    std::vector<double> out(n), dx(n);
    for (size_t i = 0; i < n; i++) {
        out[i] = gelu_forward_scalar(xd[i]);
        dx[i] = dyd[i] * gelu_grad_scalar(xd[i]);
    }
    char name[160];
    const double e_fwd = max_rel_error(as_float(d_out.download()).data(), out.data(), n, FLOOR_FWD);
    snprintf(name, sizeof name, "gelu %s forward n=%zu order=%s", PRECISION_NAME, n, order);
    test_report(e_fwd <= TOL, name, "max relative error %.3g > %.3g", e_fwd, TOL);
    const double e_bwd = max_rel_error(as_float(d_dy.download()).data(), dx.data(), n, FLOOR_BWD);
    snprintf(name, sizeof name, "gelu %s backward in place n=%zu order=%s", PRECISION_NAME, n, order);
    test_report(e_bwd <= TOL, name, "max relative error %.3g > %.3g", e_bwd, TOL);
}

// Forward and backward (not in place) at the 124M model's MLP size (4C) for B*T = 8192 tokens.
static void benchmark(int version) {
    const size_t n = (size_t)8192 * 3072;
    std::mt19937_64 rng(1);
    std::vector<floatX> x(n), dy(n);
    std::vector<double> xd(n), dyd(n);
    random_floatX(x, xd, -6, 6, rng);
    random_floatX(dy, dyd, -1, 1, rng);
    DeviceBuffer<floatX> d_x(n), d_out(n), d_dy(n), d_dx(n);
    d_x.upload(x); d_dy.upload(dy);
    const double fwd = benchmark_ms([&] { gelu_forward(d_out.ptr, d_x.ptr, n, nullptr); }, 50);
    const double bwd = benchmark_ms([&] { gelu_backward(d_dx.ptr, d_dy.ptr, d_x.ptr, n, nullptr); }, 50);
    // forward reads x, writes out; backward reads dout and x, writes dinp
    const double bytes = (double)n * sizeof(floatX);
    printf("gelu version %d %s n=%zu: forward %.3f ms %.0f GB/s, backward %.3f ms %.0f GB/s\n", version,
           PRECISION_NAME, n, fwd, 2 * bytes / fwd * 1e-6, bwd, 3 * bytes / bwd * 1e-6);
}

int main(int argc, char** argv) {
    if (const int version = benchmark_version(argc, argv, 1)) {
        benchmark(version);
        return 0;
    }
    std::mt19937_64 rng(test_seed());
    for_each_thread_order([&](const char* order) {
        test_gelu(order, 1037, rng);   // not a multiple of the 256-thread block
        test_gelu(order, 1, rng);
    });
    return test_exit();
}
