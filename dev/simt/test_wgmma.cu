// dev/simt/test_wgmma.cu: tests the warpgroup MMA wrappers of kernels/ptx.cuh (wgmma.mma_async
// m64n64k16 bf16 -> f32, wgmma.fence / commit_group / wait_group, fence.proxy.async, the matrix
// descriptor) and the emulation's strictness. The same source runs on the CPU through the SIMT layer
// (every thread order) and, built with nvcc for sm_90a, on a Hopper GPU (dev/gpu_check.sh), where it
// checks the hardware against the same references; built for another target it skips.
//   layouts:     every case of dev/simt/wgmma_cases.h (A from registers / K-major / M-major shared
//                memory, B K-major / N-major, all four swizzling modes, 4 k-steps accumulated back
//                to back, with and without C), 2 warpgroups, vs a double matmul
//   async:       (CPU layer only) accumulators are NaN until the wait_group that completes them:
//                no wait, no commit, wait_group 1 with two groups, two groups on one accumulator
//   diagnose_*:  (CPU layer only) a missing fence.proxy.async, a missing wgmma.fence, operands
//                overwritten before the wait, a base offset, descriptors that differ between the
//                warps, a block smaller than a warpgroup: each aborts naming the line
#include <string>

#include "dev/simt/kernel_test.h"
#include "dev/simt/wgmma_cases.h"
#include "kernels/ptx.cuh"

[[maybe_unused]] static const char* const kThisFile = "dev/simt/test_wgmma.cu";

__global__ void wgmma_available_kernel(int* out) { *out = wgmma_available() ? 1 : 0; }

static uint16_t bf16_bits(float x) { return __bfloat16_as_ushort(__float2bfloat16(x)); }
static float bf16_value(uint16_t bits) { return __bfloat162float(__ushort_as_bfloat16(bits)); }

static WgmmaData random_data(std::mt19937_64& rng) {
    WgmmaData data;
    std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
    data.A.resize(WGMMA_GROUPS * 64 * WGMMA_K);
    data.B.resize(WGMMA_GROUPS * WGMMA_K * 64);
    data.C.resize(WGMMA_GROUPS * 64 * 64);
    for (auto& x : data.A) x = bf16_bits(uniform(rng));
    for (auto& x : data.B) x = bf16_bits(uniform(rng));
    for (auto& x : data.C) x = 2.0f * uniform(rng);
    return data;
}

// Worst error of the accumulators out (kernel layout) against (scale C) + A B in double, in units of
// the fp32 accumulation bound (K + 1) 2^-24 (|c| + sum |a b|), doubled for hardware that truncates;
// a misplaced element is off by O(1), hundreds of thousands of units. NaN counts as worst.
static double worst_error(const std::vector<float>& out, const WgmmaData& data, int k_total, bool with_c) {
    double worst = 0;
    for (int g = 0; g < WGMMA_GROUPS; g++)
        for (int thread = 0; thread < 128; thread++)
            for (int i = 0; i < 32; i++) {
                const int m = wgmma_d_row(thread, i), n = wgmma_d_col(thread, i);
                double ref = with_c ? data.C[(g * 64 + m) * 64 + n] : 0.0, mag = fabs(ref);
                for (int k = 0; k < k_total; k++) {
                    const double t = (double)bf16_value(data.A[(g * 64 + m) * WGMMA_K + k]) *
                                     bf16_value(data.B[(g * WGMMA_K + k) * 64 + n]);
                    ref += t;
                    mag += fabs(t);
                }
                const double err = fabs(out[(g * 128 + thread) * 32 + i] - ref) /
                                   (mag * 2 * (k_total + 1) * 0x1p-24 + 1e-30);
                if (!(err <= worst)) worst = err;
            }
    return worst;
}

static void test_layouts(const char* order, std::mt19937_64& rng) {
    for (const WgmmaCase& c : wgmma_cases()) {
        const WgmmaData data = random_data(rng);
        WgmmaDeviceCase run(c, data);
        const size_t shared = wgmma_shared_bytes(c);
        CUDA_CHECK(cudaFuncSetAttribute(wgmma_case_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared));
        wgmma_case_kernel<<<1, WGMMA_THREADS, shared>>>(run.out.ptr, run.c.ptr, run.a_image.ptr, run.b_image.ptr,
                                                        run.fragments.ptr, c);
        CUDA_CHECK(cudaGetLastError());
        const double worst = worst_error(run.out.download(), data, WGMMA_K, c.first_scale_d != 0);
        const std::string name = "wgmma m64n64k16 " + wgmma_case_name(c) + " order=" + order;
        test_report(worst <= 1.0, name.c_str(), "error %.3g times the fp32 accumulation bound", worst);
    }
}

// ------------------------------------------------------------------------------------------------
// One k-step (A 64x16, B 16x64, both K-major without swizzle, LBO 128, SBO 256) run by one
// warpgroup in a given mode; out[slot][thread][32] for 3 slots. The modes other than CORRECT, and
// the DIAG_ ones, are wrong on purpose (undefined on a GPU; the CPU layer only).
enum MiniMode {
    MINI_CORRECT,       // slot 0: D = C + A B after commit and wait_group 0
    MINI_NO_WAIT,       // slot 0: D read after the commit, without a wait
    MINI_NO_COMMIT,     // slot 0: D after a wait_group 0 with no commit
    MINI_TWO_GROUPS,    // D1 in group 1, D2 in group 2; slot 0: D1 and slot 1: D2 after wait_group 1,
                        // slot 2: D2 after wait_group 0
    MINI_SAME_TWICE,    // D += A B in group 1, D += A B again in group 2; slot 0: D after wait_group 1,
                        // slot 1: after wait_group 0 (C + 2 A B)
    DIAG_NO_PROXY_FENCE,
    DIAG_NO_WGMMA_FENCE,
    DIAG_OVERWRITE,
    DIAG_BASE_OFFSET,
    DIAG_DIFFERENT_DESCRIPTORS,
};
constexpr uint32_t MINI_TILE_BYTES = 2048;

__host__ __device__ inline WgmmaTile mini_tile() {
    WgmmaTile t;
    t.lbo = 128;
    t.sbo = 256;
    t.bytes = MINI_TILE_BYTES;
    return t;
}

[[maybe_unused]] constexpr int kMmaLine = __LINE__ + 26;
[[maybe_unused]] constexpr int kWaitLine = __LINE__ + 55;
__global__ void wgmma_mini_kernel(float* out, const float* c_in, const uint4* a_image, const uint4* b_image, int mode) {
    DYNAMIC_SHARED(unsigned char, raw);
    unsigned char* smem_a = reinterpret_cast<unsigned char*>(((uintptr_t)raw + 1023) & ~(uintptr_t)1023);
    unsigned char* smem_b = smem_a + MINI_TILE_BYTES;
    for (uint32_t i = threadIdx.x; i < MINI_TILE_BYTES / 16; i += blockDim.x) {
        reinterpret_cast<uint4*>(smem_a)[i] = a_image[i];
        reinterpret_cast<uint4*>(smem_b)[i] = b_image[i];
    }
    if (mode != DIAG_NO_PROXY_FENCE) fence_proxy_async();
    __syncthreads();
    const int thread = threadIdx.x % 128;
    const WgmmaTile t = mini_tile();
    const uint64_t desc_a = wgmma_descriptor(smem_a, t.lbo, t.sbo, t.swizzle);
    uint64_t desc_b = wgmma_descriptor(smem_b, t.lbo, t.sbo, t.swizzle);
    if (mode == DIAG_BASE_OFFSET) desc_b |= 1ull << 49;
    if (mode == DIAG_DIFFERENT_DESCRIPTORS && threadIdx.x / 32 == 1) desc_b += 1;   // 16 bytes further
    float d[32], d2[32];
    for (int i = 0; i < 32; i++) d[i] = d2[i] = c_in[thread * 32 + i];
    float* slot0 = out + thread * 32;
    float* slot1 = out + (128 + thread) * 32;
    float* slot2 = out + (256 + thread) * 32;
    wgmma_fence_operand(d);
    wgmma_fence_operand(d2);
    if (mode != DIAG_NO_WGMMA_FENCE) wgmma_fence();
    auto mma = [&](float* acc) { wgmma_m64n64k16_bf16_ss<0, 0>(acc, desc_a, desc_b, 1); };
    switch (mode) {
        case MINI_TWO_GROUPS:
            mma(d);
            wgmma_commit_group();
            mma(d2);
            wgmma_commit_group();
            wgmma_wait_group<1>();
            for (int i = 0; i < 32; i++) { slot0[i] = d[i]; slot1[i] = d2[i]; }
            wgmma_wait_group<0>();
            for (int i = 0; i < 32; i++) slot2[i] = d2[i];
            return;
        case MINI_SAME_TWICE:
            mma(d);
            wgmma_commit_group();
            mma(d);
            wgmma_commit_group();
            wgmma_wait_group<1>();
            for (int i = 0; i < 32; i++) slot0[i] = d[i];
            wgmma_wait_group<0>();
            for (int i = 0; i < 32; i++) slot1[i] = d[i];
            return;
        default:
            mma(d);
            if (mode != MINI_NO_COMMIT) wgmma_commit_group();
            if (mode == DIAG_OVERWRITE) {
                __syncthreads();
                if (threadIdx.x == 0) smem_b[0] ^= 1;   // B's element (0, 0), while the wgmma may read it
                __syncthreads();
            }
            if (mode != MINI_NO_WAIT) wgmma_wait_group<0>();
            wgmma_fence_operand(d);
            for (int i = 0; i < 32; i++) slot0[i] = d[i];
    }
}

struct MiniRun {
    WgmmaData data;
    std::vector<float> out;
};

static MiniRun run_mini(int mode, std::mt19937_64& rng, int threads = 128) {
    MiniRun r;
    std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
    r.data.A.resize(WGMMA_GROUPS * 64 * WGMMA_K);
    r.data.B.resize(WGMMA_GROUPS * WGMMA_K * 64);
    r.data.C.resize(WGMMA_GROUPS * 64 * 64);
    for (auto& x : r.data.A) x = bf16_bits(uniform(rng));
    for (auto& x : r.data.B) x = bf16_bits(uniform(rng));
    for (auto& x : r.data.C) x = 2.0f * uniform(rng);
    const WgmmaTile t = mini_tile();
    std::vector<uint16_t> a16(MINI_TILE_BYTES / 2, 0), b16(MINI_TILE_BYTES / 2, 0);
    for (int mn = 0; mn < 64; mn++)
        for (int k = 0; k < 16; k++) {
            a16[wgmma_tile_offset(t, mn, k) / 2] = r.data.A[mn * WGMMA_K + k];
            b16[wgmma_tile_offset(t, mn, k) / 2] = r.data.B[k * 64 + mn];
        }
    std::vector<uint4> a4(MINI_TILE_BYTES / 16), b4(MINI_TILE_BYTES / 16);
    memcpy(a4.data(), a16.data(), MINI_TILE_BYTES);
    memcpy(b4.data(), b16.data(), MINI_TILE_BYTES);
    std::vector<float> c(128 * 32);
    for (int thread = 0; thread < 128; thread++)
        for (int i = 0; i < 32; i++) c[thread * 32 + i] = r.data.C[wgmma_d_row(thread, i) * 64 + wgmma_d_col(thread, i)];
    DeviceBuffer<uint4> da(a4.size()), db(b4.size());
    DeviceBuffer<float> dc(c.size()), dout(3 * 128 * 32);
    da.upload(a4);
    db.upload(b4);
    dc.upload(c);
    wgmma_mini_kernel<<<1, threads, 2 * MINI_TILE_BYTES + 1024>>>(dout.ptr, dc.ptr, da.ptr, db.ptr, mode);
    CUDA_CHECK(cudaGetLastError());
    r.out = dout.download();
    return r;
}

// The error of slot s against C + times * A B (one k-step), as worst_error does it.
static double mini_error(const MiniRun& r, int slot, int times) {
    const float* slot_out = r.out.data() + slot * 128 * 32;
    double worst = 0;
    for (int thread = 0; thread < 128; thread++)
        for (int i = 0; i < 32; i++) {
            const int m = wgmma_d_row(thread, i), n = wgmma_d_col(thread, i);
            double ref = r.data.C[m * 64 + n], mag = fabs(ref);
            for (int k = 0; k < 16; k++) {
                const double p = (double)bf16_value(r.data.A[m * WGMMA_K + k]) * bf16_value(r.data.B[k * 64 + n]);
                ref += times * p;
                mag += times * fabs(p);
            }
            const double err = fabs(slot_out[thread * 32 + i] - ref) / (mag * 2 * (16 * times + 1) * 0x1p-24);
            if (!(err <= worst)) worst = err;
        }
    return worst;
}

[[maybe_unused]] static bool all_nan(const MiniRun& r, int slot) {
    for (int j = 0; j < 128 * 32; j++)
        if (r.out[slot * 128 * 32 + j] == r.out[slot * 128 * 32 + j]) return false;
    return true;
}

static void test_async(const char* order, std::mt19937_64& rng) {
    const std::string o = std::string(" order=") + order;
    MiniRun r = run_mini(MINI_CORRECT, rng);
    double e = mini_error(r, 0, 1);
    test_report(e <= 1.0, ("wgmma commit, wait_group 0: D = C + A B" + o).c_str(), "error %.3g bounds", e);
#if SIMT_CPU
    r = run_mini(MINI_NO_WAIT, rng);
    test_report(all_nan(r, 0), ("wgmma without wait_group: the accumulators are NaN" + o).c_str(),
                "an accumulator is visible before the wait");
    r = run_mini(MINI_NO_COMMIT, rng);
    test_report(all_nan(r, 0), ("wgmma never committed: wait_group 0 leaves it pending" + o).c_str(),
                "an uncommitted operation completed");
    r = run_mini(MINI_TWO_GROUPS, rng);
    e = mini_error(r, 0, 1);
    test_report(e <= 1.0, ("wgmma wait_group 1 completes the older group" + o).c_str(), "error %.3g bounds", e);
    test_report(all_nan(r, 1), ("wgmma wait_group 1 leaves the newest group pending" + o).c_str(),
                "the newest group's accumulators are visible");
    e = mini_error(r, 2, 1);
    test_report(e <= 1.0, ("wgmma wait_group 0 completes the newest group" + o).c_str(), "error %.3g bounds", e);
    r = run_mini(MINI_SAME_TWICE, rng);
    test_report(all_nan(r, 0), ("wgmma accumulator of two groups stays NaN until the second completes" + o).c_str(),
                "the first group's partial result is visible");
    e = mini_error(r, 1, 2);
    test_report(e <= 1.0, ("wgmma two groups into one accumulator: D = C + 2 A B" + o).c_str(), "error %.3g bounds", e);
#endif
}

#if SIMT_CPU
#include "dev/simt/aborts_with.h"

static std::string at(int line) { return std::string(kThisFile) + ":" + std::to_string(line); }
static std::mt19937_64 g_child_rng(1);
static void launch_no_proxy_fence() { run_mini(DIAG_NO_PROXY_FENCE, g_child_rng); }
static void launch_no_wgmma_fence() { run_mini(DIAG_NO_WGMMA_FENCE, g_child_rng); }
static void launch_overwrite() { run_mini(DIAG_OVERWRITE, g_child_rng); }
static void launch_base_offset() { run_mini(DIAG_BASE_OFFSET, g_child_rng); }
static void launch_different_descriptors() { run_mini(DIAG_DIFFERENT_DESCRIPTORS, g_child_rng); }
static void launch_small_block() { run_mini(MINI_CORRECT, g_child_rng, 64); }

static void diagnose(const char* name, void (*fn)(), std::initializer_list<std::string> needles) {
    std::string message;
    const bool ok = aborts_with(fn, needles, &message);
    test_report(ok, name, "the child did not abort with the expected message:\n%s", message.c_str());
}
#endif

int main() {
    std::mt19937_64 rng(test_seed());
#if !SIMT_CPU
    DeviceBuffer<int> available(1);
    wgmma_available_kernel<<<1, 1>>>(available.ptr);
    CUDA_CHECK(cudaGetLastError());
    if (available.download()[0] == 0) {
        test_skip("wgmma", "built for a target without wgmma (it needs sm_90a: nvcc -arch=sm_90a)");
        return test_exit();
    }
#endif
    for_each_thread_order([&](const char* order) {
        test_layouts(order, rng);
        test_async(order, rng);
    });
#if SIMT_CPU
    diagnose("diagnose wgmma reading shared memory written without fence.proxy.async", launch_no_proxy_fence,
             {"fence.proxy.async", at(kMmaLine)});
    diagnose("diagnose wgmma.mma_async without wgmma.fence", launch_no_wgmma_fence,
             {"without a wgmma.fence", at(kMmaLine)});
    diagnose("diagnose wgmma operands overwritten before wait_group", launch_overwrite,
             {"overwritten before the wgmma.wait_group", at(kMmaLine), at(kWaitLine)});
    diagnose("diagnose wgmma descriptor with a base offset", launch_base_offset,
             {"base offset 1", at(kMmaLine)});
    diagnose("diagnose wgmma descriptors that differ between warps", launch_different_descriptors,
             {"same matrix descriptors", at(kMmaLine)});
    diagnose("diagnose wgmma in a block smaller than a warpgroup", launch_small_block,
             {"whole warpgroup", at(kMmaLine)});
#else
    test_skip("wgmma emulation strictness and diagnostics", "checks of the CPU execution layer");
#endif
    return test_exit();
}
