// dev/cuda/test_mma.cu: tests the tensor-core wrappers of kernels/ptx.cuh and the GEMM tile kernel
// of kernels/matmul_tile.cuh against plain loops on fresh random inputs. The same source runs on
// the CPU through the SIMT layer (forward and reverse thread order) and, built with nvcc, on a GPU
// (dev/gpu_check.sh), where it checks the hardware against the same references.
//   mma_m16n8k16:   operands placed in registers by the PTX ISA's fragment tables, vs double loop
//   ldmatrix_*:     x1/x2/x4, plain and .trans, rows at scattered shared-memory addresses, vs the
//                   documented element-to-lane placement computed on the host
//   matmul_tile_*:  C = A B^T for tile multiples and ragged edges, vs a double loop
#include "dev/simt/cuda_compat.h"
#include "kernels/ptx.cuh"
#include "kernels/matmul_tile.cuh"
#include "dev/test_util.h"
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CUDA_OK(call) cuda_ok((call), #call, __FILE__, __LINE__)
static void cuda_ok(cudaError_t e, const char* what, const char* file, int line) {
    if (e == cudaSuccess) return;
    fprintf(stderr, "%s:%d: %s failed: %s\n", file, line, what, cudaGetErrorString(e));
    exit(1);
}

static uint64_t rng_state;
static uint64_t next_u64() {   // splitmix64
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)((next_u64() >> 40) * 0x1p-24); }
static int uniform_int(int lo, int hi) { return lo + (int)(next_u64() % (uint64_t)(hi - lo + 1)); }

template <class T> static T* to_device(const std::vector<T>& h) {
    T* d = nullptr;
    CUDA_OK(cudaMalloc(&d, h.size() * sizeof(T)));
    CUDA_OK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}
template <class T> static std::vector<T> to_host(const T* d, size_t n) {
    std::vector<T> h(n);
    CUDA_OK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

__host__ __device__ inline uint32_t pack_bf16x2(__nv_bfloat16 lo, __nv_bfloat16 hi) {
    return (uint32_t)__bfloat16_as_ushort(lo) | (uint32_t)__bfloat16_as_ushort(hi) << 16;
}

// ------------------------------------------------------------------------------------------------
// mma: one warp per block, one 16x8x16 problem per block.
//   A: [problems][16][16] row-major, B: [problems][8][16] (n-major, k contiguous), C, D: [problems][16][8]
__global__ void mma_kernel(float* D, const __nv_bfloat16* A, const __nv_bfloat16* B, const float* C) {
    int lane = threadIdx.x, group = lane / 4, tig = lane % 4;
    A += blockIdx.x * 256; B += blockIdx.x * 128; C += blockIdx.x * 128; D += blockIdx.x * 128;
    uint32_t a[4], b[2];
    float c[4], d[4];
    // register r of A: rows group (r even) or group+8 (r odd), columns 2*tig (+8 for r >= 2)
    for (int r = 0; r < 4; r++) {
        const __nv_bfloat16* p = A + (group + 8 * (r % 2)) * 16 + 2 * tig + 8 * (r / 2);
        a[r] = pack_bf16x2(p[0], p[1]);
    }
    // register r of B: column (n) group, rows (k) 2*tig + 8*r and the next
    for (int r = 0; r < 2; r++) {
        const __nv_bfloat16* p = B + group * 16 + 2 * tig + 8 * r;
        b[r] = pack_bf16x2(p[0], p[1]);
    }
    for (int i = 0; i < 4; i++) c[i] = C[(group + 8 * (i / 2)) * 8 + 2 * tig + i % 2];
    mma_m16n8k16_bf16(d, a, b, c);
    for (int i = 0; i < 4; i++) D[(group + 8 * (i / 2)) * 8 + 2 * tig + i % 2] = d[i];
}

static void test_mma(const char* name) {
    const int problems = 24;
    std::vector<__nv_bfloat16> A(problems * 256), B(problems * 128);
    std::vector<float> C(problems * 128);
    for (auto& x : A) x = __float2bfloat16(uniform(-2, 2));
    for (auto& x : B) x = __float2bfloat16(uniform(-2, 2));
    for (auto& x : C) x = uniform(-4, 4);
    __nv_bfloat16 *dA = to_device(A), *dB = to_device(B);
    float* dC = to_device(C);
    float* dD = nullptr;
    CUDA_OK(cudaMalloc(&dD, C.size() * sizeof(float)));
    mma_kernel<<<problems, 32>>>(dD, dA, dB, dC);
    CUDA_OK(cudaGetLastError());
    std::vector<float> D = to_host(dD, C.size());
    // D = C + A B with B[k][n] = B_stored[n][k]; fp32 accumulation of 17 terms: |err| <= 17 u sum|terms|
    double worst = 0;
    for (int p = 0; p < problems; p++)
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 8; n++) {
                double ref = C[p * 128 + m * 8 + n], mag = fabs(ref);
                for (int k = 0; k < 16; k++) {
                    double t = (double)(float)A[p * 256 + m * 16 + k] * (double)(float)B[p * 128 + n * 16 + k];
                    ref += t; mag += fabs(t);
                }
                double err = fabs(D[p * 128 + m * 8 + n] - ref) / (mag * 17 * 0x1p-24);
                if (!(err <= worst)) worst = err;   // NaN counts as worst
            }
    test_report(worst <= 1.0, name, "error %.3g times the fp32 accumulation bound", worst);
    cudaFree(dA); cudaFree(dB); cudaFree(dC); cudaFree(dD);
}

// ------------------------------------------------------------------------------------------------
// ldmatrix: a 32-row x 40-column bf16 tile in shared memory; lane l gives the row address
// (row_of_lane[l], col_of_lane[l]); out[l][m] is register m of lane l.
constexpr int LDM_ROWS = 32, LDM_STRIDE = 40;

template <int NUM, bool TRANS>
__global__ void ldmatrix_kernel(uint32_t* out, const __nv_bfloat16* tile, const int* row_of_lane,
                                const int* col_of_lane) {
    __shared__ __align__(16) __nv_bfloat16 s[LDM_ROWS * LDM_STRIDE];
    int lane = threadIdx.x;
    for (int i = lane; i < LDM_ROWS * LDM_STRIDE; i += 32) s[i] = tile[i];
    __syncthreads();
    const __nv_bfloat16* p = &s[row_of_lane[lane] * LDM_STRIDE + col_of_lane[lane]];
    uint32_t r[4];
    if (NUM == 1 && !TRANS) ldmatrix_x1(r, p);
    if (NUM == 2 && !TRANS) ldmatrix_x2(r, p);
    if (NUM == 4 && !TRANS) ldmatrix_x4(r, p);
    if (NUM == 1 && TRANS) ldmatrix_x1_trans(r, p);
    if (NUM == 2 && TRANS) ldmatrix_x2_trans(r, p);
    if (NUM == 4 && TRANS) ldmatrix_x4_trans(r, p);
    for (int m = 0; m < NUM; m++) out[lane * NUM + m] = r[m];
}

template <int NUM, bool TRANS>
static void test_ldmatrix(const char* name) {
    // distinct bit patterns (ldmatrix moves bits), so a misplaced element cannot pass by accident
    std::vector<__nv_bfloat16> tile(LDM_ROWS * LDM_STRIDE);
    int offset = uniform_int(0, 65535);
    for (size_t i = 0; i < tile.size(); i++) tile[i] = __ushort_as_bfloat16((unsigned short)(offset + i));
    // rows in a random order at random 8-column offsets; lanes past 8*NUM point elsewhere
    // (ignored by the instruction, so given a valid but different address)
    std::vector<int> rows(32), cols(32);
    for (int i = 0; i < 32; i++) rows[i] = i;
    for (int i = 31; i > 0; i--) std::swap(rows[i], rows[uniform_int(0, i)]);
    for (int i = 0; i < 32; i++) cols[i] = 8 * uniform_int(0, 3);
    __nv_bfloat16* dtile = to_device(tile);
    int *drows = to_device(rows), *dcols = to_device(cols);
    uint32_t* dout = nullptr;
    CUDA_OK(cudaMalloc(&dout, 32 * NUM * sizeof(uint32_t)));
    ldmatrix_kernel<NUM, TRANS><<<1, 32>>>(dout, dtile, drows, dcols);
    CUDA_OK(cudaGetLastError());
    std::vector<uint32_t> out = to_host(dout, 32 * NUM);
    // matrix m's row j is at (rows[8m+j], cols[8m+j]); lane l receives element (l/4, 2(l%4)) and the
    // next column of matrix m, or of its transpose with .trans
    auto element = [&](int m, int row, int col) { return tile[rows[8 * m + row] * LDM_STRIDE + cols[8 * m + row] + col]; };
    int bad = 0;
    uint32_t got = 0, want = 0;
    for (int l = 0; l < 32; l++)
        for (int m = 0; m < NUM; m++) {
            int i = l / 4, j = 2 * (l % 4);
            uint32_t expect = TRANS ? pack_bf16x2(element(m, j, i), element(m, j + 1, i))
                                    : pack_bf16x2(element(m, i, j), element(m, i, j + 1));
            if (out[l * NUM + m] != expect && bad++ == 0) { got = out[l * NUM + m]; want = expect; }
        }
    test_report(bad == 0, name, "%d of %d registers wrong, first 0x%08x instead of 0x%08x", bad, 32 * NUM, got, want);
    cudaFree(dtile); cudaFree(drows); cudaFree(dcols); cudaFree(dout);
}

// ------------------------------------------------------------------------------------------------
// GEMM tile kernel against a double loop: |err| <= K u sum_k |a b| (fp32 accumulation), times 2.
static double gemm_error(int M, int N, int K) {
    std::vector<__nv_bfloat16> A((size_t)M * K), B((size_t)N * K);
    for (auto& x : A) x = __float2bfloat16(uniform(-1, 1));
    for (auto& x : B) x = __float2bfloat16(uniform(-1, 1));
    __nv_bfloat16 *dA = to_device(A), *dB = to_device(B);
    float* dC = nullptr;
    CUDA_OK(cudaMalloc(&dC, (size_t)M * N * sizeof(float)));
    matmul_tile_bf16(dC, dA, dB, M, N, K, 0);
    CUDA_OK(cudaGetLastError());
    std::vector<float> C = to_host(dC, (size_t)M * N);
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double t = (double)(float)A[(size_t)m * K + k] * (double)(float)B[(size_t)n * K + k];
                ref += t; mag += fabs(t);
            }
            double err = fabs(C[(size_t)m * N + n] - ref) / (2 * K * 0x1p-24 * mag + 1e-30);
            if (!(err <= worst)) worst = err;
        }
    cudaFree(dA); cudaFree(dB); cudaFree(dC);
    return worst;
}

static void test_gemm(const char* order) {
    struct Shape { int M, N, K; };
    std::vector<Shape> tiles = {{64, 64, 32}, {128, 64, 64}, {64, 192, 96}};
    for (int i = 0; i < 2; i++) tiles.push_back({64 * uniform_int(1, 3), 64 * uniform_int(1, 3), 32 * uniform_int(1, 4)});
    std::vector<Shape> ragged = {{1, 1, 1}, {17, 9, 5}, {65, 63, 33}, {3, 130, 70}};
    for (int i = 0; i < 2; i++) ragged.push_back({uniform_int(1, 150), uniform_int(1, 150), uniform_int(1, 100)});
    char name[96];
    for (int pass = 0; pass < 2; pass++) {
        const std::vector<Shape>& shapes = pass == 0 ? tiles : ragged;
        double worst = 0;
        Shape at{0, 0, 0};
        for (const Shape& s : shapes) {
            double e = gemm_error(s.M, s.N, s.K);
            if (!(e <= worst)) { worst = e; at = s; }
        }
        snprintf(name, sizeof name, "matmul_tile_bf16_%s%s", pass == 0 ? "tile_multiples" : "ragged_edges", order);
        test_report(worst <= 1.0, name, "error %.3g times the bound at M=%d N=%d K=%d", worst, at.M, at.N, at.K);
    }
}

int main() {
    rng_state = (uint64_t)std::chrono::high_resolution_clock::now().time_since_epoch().count();
    printf("seed %" PRIu64 "\n", rng_state);
#if SIMT_CPU
    const int orders = 2;   // the CPU layer runs the threads forward, then in reverse
#else
    const int orders = 1;
#endif
    for (int o = 0; o < orders; o++) {
#if SIMT_CPU
        simt::set_reverse(o == 1);
#endif
        const char* order = o == 0 ? "" : "_reverse";
        char name[64];
        snprintf(name, sizeof name, "mma_m16n8k16_bf16%s", order); test_mma(name);
        snprintf(name, sizeof name, "ldmatrix_x1%s", order); test_ldmatrix<1, false>(name);
        snprintf(name, sizeof name, "ldmatrix_x2%s", order); test_ldmatrix<2, false>(name);
        snprintf(name, sizeof name, "ldmatrix_x4%s", order); test_ldmatrix<4, false>(name);
        snprintf(name, sizeof name, "ldmatrix_x1_trans%s", order); test_ldmatrix<1, true>(name);
        snprintf(name, sizeof name, "ldmatrix_x2_trans%s", order); test_ldmatrix<2, true>(name);
        snprintf(name, sizeof name, "ldmatrix_x4_trans%s", order); test_ldmatrix<4, true>(name);
        test_gemm(order);
    }
    return test_exit();
}
