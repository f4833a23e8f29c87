// dev/cuda/softmax.cu: the row softmax (kernels/softmax.cuh), checked and benchmarked.
//   ./dev/cuda/softmax      checks it against a plain double-precision loop on fresh random rows,
//                           including logits large enough to overflow exp() without the max shift
//   ./dev/cuda/softmax 1    (GPU only) times version 1 on 1024 rows of GPT-2's 50257 logits:
//                           ms and GB/s
// Version 1: one block per row, block-wide max and sum. Builds with g++ on the CPU execution
// layer (every thread order, and under ASan) and with nvcc.
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/softmax.cuh"

static void test_softmax(const char* order, int N, int V, float scale, std::mt19937_64& rng) {
    std::vector<float> x((size_t)N * V);
    fill_uniform(x, -scale, scale, rng);
    DeviceBuffer<float> d_x(x.size()), d_out(x.size());
    d_x.upload(x);
    softmax_forward(d_out.ptr, d_x.ptr, N, V, nullptr);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> out = d_out.download();
    std::vector<double> want(x.size());
    for (int n = 0; n < N; n++) {
        const float* row = &x[(size_t)n * V];
        double m = row[0], sum = 0.0;
        for (int v = 0; v < V; v++) m = row[v] > m ? row[v] : m;
        for (int v = 0; v < V; v++) sum += std::exp((double)row[v] - m);
        for (int v = 0; v < V; v++) want[(size_t)n * V + v] = std::exp((double)row[v] - m) / sum;
    }
    // fp32: exp of (x - max) rounded to float, and a float sum of up to V terms
    const double tol = 2e-6 + 1e-7 * scale;
    const double err = max_rel_error(out.data(), want.data(), out.size(), 1e-30);
    char name[128];
    snprintf(name, sizeof name, "softmax_forward N=%d V=%d scale=%g order=%s", N, V, scale, order);
    test_report(err <= tol, name, "max relative error %.3g > %.3g", err, tol);
}

static void benchmark(int version) {
    const int N = 1024, V = 50257;
    std::mt19937_64 rng(1);
    std::vector<float> x((size_t)N * V);
    fill_uniform(x, -5.0f, 5.0f, rng);
    DeviceBuffer<float> d_x(x.size()), d_out(x.size());
    d_x.upload(x);
    const double ms = benchmark_ms([&] { softmax_forward(d_out.ptr, d_x.ptr, N, V, nullptr); });
    const double gb = 2.0 * N * V * sizeof(float) / 1e9;  // the least traffic: read once, write once
    printf("softmax version %d, N=%d V=%d: %.4f ms (%.0f GB/s)\n", version, N, V, ms, gb / (ms * 1e-3));
}

int main(int argc, char** argv) {
    if (const int version = benchmark_version(argc, argv, 1)) {
        benchmark(version);
        return 0;
    }
    std::mt19937_64 rng(test_seed());
    for_each_thread_order([&](const char* order) {
        test_softmax(order, 3, 50257, 5.0f, rng);   // GPT-2 vocabulary, 1024-thread blocks
        test_softmax(order, 7, 100, 100.0f, rng);   // exp(100) overflows fp32 without the shift
        test_softmax(order, 5, 33, 1.0f, rng);      // 64 threads, second warp mostly idle
        test_softmax(order, 2, 1, 3.0f, rng);       // one element: exactly 1
    });
    return test_exit();
}
