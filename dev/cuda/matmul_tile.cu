// dev/cuda/matmul_tile.cu: the bf16 GEMM tile kernels (kernels/matmul_tile.cuh), checked and
// benchmarked.
//   ./dev/cuda/matmul_tile      checks C = A B^T (tn) and C = A B (nn), bf16 in, fp32 out, for
//                               tile multiples and ragged edges, against a double loop on fresh
//                               random inputs
//   ./dev/cuda/matmul_tile 1    (GPU only) times version 1, tn and nn, at M = 8192 (B*T),
//                               N = 3072, K = 768 (GPT-2 124M's MLP up-projection): ms and TFLOP/s
// Version 1: 64x64 tiles of 4 warps, ldmatrix + mma.sync, one shared-memory stage (no pipeline).
// Builds with g++ on the CPU execution layer (every thread order, and under ASan) and with nvcc.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/matmul_tile.cuh"

static std::mt19937_64 rng;
static float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
static int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

// ------------------------------------------------------------------------------------------------
// GEMM tile kernels against a double loop: |err| <= K u sum_k |a b| (fp32 accumulation), times 2.
// b_kn: B stored [K,N] (matmul_tile_bf16_nn), else [N,K] (matmul_tile_bf16_tn).
static double gemm_error(int M, int N, int K, bool b_kn) {
    std::vector<__nv_bfloat16> A((size_t)M * K), B((size_t)N * K);
    for (auto& x : A) x = __float2bfloat16(uniform(-1, 1));
    for (auto& x : B) x = __float2bfloat16(uniform(-1, 1));
    DeviceBuffer<__nv_bfloat16> dA(A.size()), dB(B.size());
    DeviceBuffer<float> dC((size_t)M * N);
    dA.upload(A); dB.upload(B);
    if (b_kn) matmul_tile_bf16_nn(dC.ptr, dA.ptr, dB.ptr, M, N, K, 0);
    else matmul_tile_bf16_tn(dC.ptr, dA.ptr, dB.ptr, M, N, K, 0);
    CUDA_CHECK(cudaGetLastError());
    std::vector<float> C = dC.download();
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                float b = b_kn ? (float)B[(size_t)k * N + n] : (float)B[(size_t)n * K + k];
                double t = (double)(float)A[(size_t)m * K + k] * (double)b;
                ref += t; mag += fabs(t);
            }
            double err = fabs(C[(size_t)m * N + n] - ref) / (2 * K * 0x1p-24 * mag + 1e-30);
            if (!(err <= worst)) worst = err;
        }
    return worst;
}

static void test_gemm(const char* order) {
    struct Shape { int M, N, K; };
    std::vector<Shape> tiles = {{64, 64, 32}, {128, 64, 64}, {64, 192, 96}};
    for (int i = 0; i < 2; i++) tiles.push_back({64 * uniform_int(1, 3), 64 * uniform_int(1, 3), 32 * uniform_int(1, 4)});
    std::vector<Shape> ragged = {{1, 1, 1}, {17, 9, 5}, {65, 63, 33}, {3, 130, 70}};
    for (int i = 0; i < 2; i++) ragged.push_back({uniform_int(1, 150), uniform_int(1, 150), uniform_int(1, 100)});
    char name[96];
    for (int b_kn = 0; b_kn < 2; b_kn++)
        for (int pass = 0; pass < 2; pass++) {
            const std::vector<Shape>& shapes = pass == 0 ? tiles : ragged;
            double worst = 0;
            Shape at{0, 0, 0};
            for (const Shape& s : shapes) {
                double e = gemm_error(s.M, s.N, s.K, b_kn);
                if (!(e <= worst)) { worst = e; at = s; }
            }
            snprintf(name, sizeof name, "matmul_tile_bf16_%s_%s_%s", b_kn ? "nn" : "tn",
                     pass == 0 ? "tile_multiples" : "ragged_edges", order);
            test_report(worst <= 1.0, name, "error %.3g times the bound at M=%d N=%d K=%d", worst, at.M, at.N, at.K);
        }
}

static void benchmark(int version) {
    const int M = 8192, N = 3072, K = 768;
    rng.seed(1);
    std::vector<__nv_bfloat16> A((size_t)M * K), B((size_t)N * K);
    for (auto& x : A) x = __float2bfloat16(uniform(-1, 1));
    for (auto& x : B) x = __float2bfloat16(uniform(-1, 1));
    DeviceBuffer<__nv_bfloat16> dA(A.size()), dB(B.size());
    DeviceBuffer<float> dC((size_t)M * N);
    dA.upload(A); dB.upload(B);
    const double tn_ms = benchmark_ms([&] { matmul_tile_bf16_tn(dC.ptr, dA.ptr, dB.ptr, M, N, K, 0); });
    const double nn_ms = benchmark_ms([&] { matmul_tile_bf16_nn(dC.ptr, dA.ptr, dB.ptr, M, N, K, 0); });
    const double tflop = 2.0 * M * N * K / 1e12;
    printf("matmul_tile version %d, M=%d N=%d K=%d: tn %.4f ms (%.1f TFLOP/s), nn %.4f ms (%.1f TFLOP/s)\n",
           version, M, N, K, tn_ms, tflop / (tn_ms * 1e-3), nn_ms, tflop / (nn_ms * 1e-3));
}

int main(int argc, char** argv) {
    if (const int version = benchmark_version(argc, argv, 1)) {
        benchmark(version);
        return 0;
    }
    rng.seed(test_seed());
    for_each_thread_order([](const char* order) { test_gemm(order); });
    return test_exit();
}
