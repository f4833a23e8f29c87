// dev/simt/test_mma.cu: tests the tensor-core wrappers of kernels/ptx.cuh (the emulation's
// mma.sync and ldmatrix) against plain loops on fresh random inputs. The same source runs on the
// CPU through the SIMT layer (every thread order) and, built with nvcc, on a GPU
// (dev/gpu_check.sh), where it checks the hardware against the same references. The GEMM tile
// kernel built from them is checked by dev/cuda/matmul_tile.cu.
//   mma_m16n8k16:   operands placed in registers by the PTX ISA's fragment tables, vs double loop
//   ldmatrix_*:     x1/x2/x4, plain and .trans, rows at scattered shared-memory addresses, vs the
//                   documented element-to-lane placement computed on the host
//   diagnose_*:     (CPU layer only) deliberately broken kernels: a misaligned ldmatrix row, lanes
//                   of one warp in different tensor-core instructions; each must abort naming the line
#include "dev/simt/kernel_test.h"
#include "kernels/ptx.cuh"
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

static std::mt19937_64 rng;
static float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
static int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

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
    DeviceBuffer<__nv_bfloat16> dA(A.size()), dB(B.size());
    DeviceBuffer<float> dC(C.size()), dD(C.size());
    dA.upload(A); dB.upload(B); dC.upload(C);
    mma_kernel<<<problems, 32>>>(dD.ptr, dA.ptr, dB.ptr, dC.ptr);
    CUDA_CHECK(cudaGetLastError());
    std::vector<float> D = dD.download();
    // D = C + A B with B[k][n] = B_stored[n][k]; fp32 accumulation of 17 terms: |err| <= 17 u sum|terms|
    // with u = 2^-24, doubled for hardware that truncates (a misplaced element is off by O(1))
    double worst = 0;
    for (int p = 0; p < problems; p++)
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 8; n++) {
                double ref = C[p * 128 + m * 8 + n], mag = fabs(ref);
                for (int k = 0; k < 16; k++) {
                    double t = (double)(float)A[p * 256 + m * 16 + k] * (double)(float)B[p * 128 + n * 16 + k];
                    ref += t; mag += fabs(t);
                }
                double err = fabs(D[p * 128 + m * 8 + n] - ref) / (mag * 2 * 17 * 0x1p-24);
                if (!(err <= worst)) worst = err;   // NaN counts as worst
            }
    test_report(worst <= 1.0, name, "error %.3g times the fp32 accumulation bound", worst);
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
    DeviceBuffer<__nv_bfloat16> dtile(tile.size());
    DeviceBuffer<int> drows(32), dcols(32);
    DeviceBuffer<uint32_t> dout(32 * NUM);
    dtile.upload(tile); drows.upload(rows); dcols.upload(cols);
    ldmatrix_kernel<NUM, TRANS><<<1, 32>>>(dout.ptr, dtile.ptr, drows.ptr, dcols.ptr);
    CUDA_CHECK(cudaGetLastError());
    std::vector<uint32_t> out = dout.download();
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
}

// ------------------------------------------------------------------------------------------------
// Diagnostics of the emulation (CPU layer only; on a GPU these kernels are undefined behaviour).
[[maybe_unused]] constexpr int kMisalignedLine = __LINE__ + 6;
__global__ void misaligned_ldmatrix_kernel(uint32_t* out) {
    __shared__ __align__(16) __nv_bfloat16 s[16 * 16];
    for (int i = threadIdx.x; i < 256; i += 32) s[i] = __float2bfloat16(0.0f);
    __syncthreads();
    uint32_t r[1];
    ldmatrix_x1(r, &s[threadIdx.x % 8 * 16 + 4]);   // 8-byte offset: rows must be 16-byte aligned
    out[threadIdx.x] = r[0];
}
[[maybe_unused]] constexpr int kMixedLineX4 = __LINE__ + 7;
__global__ void mixed_ldmatrix_kernel(uint32_t* out) {
    __shared__ __align__(16) __nv_bfloat16 s[32 * 8];
    for (int i = threadIdx.x; i < 256; i += 32) s[i] = __float2bfloat16(0.0f);
    __syncthreads();
    uint32_t r[4] = {};
    if (threadIdx.x < 16) ldmatrix_x4(r, &s[threadIdx.x * 8]);   // half the warp loads four matrices,
    else ldmatrix_x2(r, &s[threadIdx.x * 8]);                      // the other half two
    out[threadIdx.x] = r[0];
}

#if SIMT_CPU
#include <string>
#include <sys/wait.h>
#include <unistd.h>

// Runs fn in a forked child; true if it died (the layer aborts) with every needle in its stderr.
static bool dies_saying(void (*fn)(), std::initializer_list<std::string> needles, std::string& said) {
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); exit(1); }
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) { close(fds[0]); dup2(fds[1], 2); fn(); _exit(0); }
    close(fds[1]);
    char buf[4096];
    ssize_t got;
    while ((got = read(fds[0], buf, sizeof buf)) > 0) said.append(buf, (size_t)got);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    bool died = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (const std::string& n : needles) died = died && said.find(n) != std::string::npos;
    return died;
}
static void launch_misaligned() { DeviceBuffer<uint32_t> out(32); misaligned_ldmatrix_kernel<<<1, 32>>>(out.ptr); }
static void launch_mixed() { DeviceBuffer<uint32_t> out(32); mixed_ldmatrix_kernel<<<1, 32>>>(out.ptr); }

static void test_diagnostics(const char* order) {
    std::string here = "dev/simt/test_mma.cu:", said, name;
    name = std::string("diagnose_ldmatrix_misaligned_row_") + order;
    bool ok = dies_saying(launch_misaligned, {"ldmatrix.x1", "16-byte", here + std::to_string(kMisalignedLine)}, said);
    test_report(ok, name.c_str(), "child did not abort with the expected message:\n%s", said.c_str());
    said.clear();
    name = std::string("diagnose_lanes_in_different_ldmatrix_") + order;
    ok = dies_saying(launch_mixed, {"ldmatrix.x4", "ldmatrix.x2", here + std::to_string(kMixedLineX4)}, said);
    test_report(ok, name.c_str(), "child did not abort with the expected message:\n%s", said.c_str());
}
#endif

int main() {
    rng.seed(test_seed());
    for_each_thread_order([](const char* order) {
        char name[96];
        snprintf(name, sizeof name, "mma_m16n8k16_bf16_%s", order); test_mma(name);
        snprintf(name, sizeof name, "ldmatrix_x1_%s", order); test_ldmatrix<1, false>(name);
        snprintf(name, sizeof name, "ldmatrix_x2_%s", order); test_ldmatrix<2, false>(name);
        snprintf(name, sizeof name, "ldmatrix_x4_%s", order); test_ldmatrix<4, false>(name);
        snprintf(name, sizeof name, "ldmatrix_x1_trans_%s", order); test_ldmatrix<1, true>(name);
        snprintf(name, sizeof name, "ldmatrix_x2_trans_%s", order); test_ldmatrix<2, true>(name);
        snprintf(name, sizeof name, "ldmatrix_x4_trans_%s", order); test_ldmatrix<4, true>(name);
#if SIMT_CPU
        test_diagnostics(order);
#endif
    });
    return test_exit();
}
