// dev/cuda/probes/probe_wgmma.cu: runs every warpgroup MMA case of dev/simt/wgmma_cases.h (A from
// registers or K-/M-major shared memory, B K-/N-major, all four swizzling modes, 4 k-steps into one
// accumulator, 2 warpgroups) on fixed inputs and prints every accumulator register as bits, one per
// line: "wgmma_<case> <warpgroup> <thread> <register> 0x..". Built with nvcc for sm_90a it shows
// what a Hopper GPU computes, built for the CPU layer what the emulation computes;
// dev/gpu_check.sh compares the two bit for bit. The inputs are small multiples of 1/4 (products
// multiples of 1/16, every partial sum below 2^15), so every sum is exact in fp32 whatever the
// tensor cores' order and rounding: any difference is a layout (fragment, descriptor, swizzle) the
// emulation gets wrong. Without wgmma (a build for another target) it says so and exits 1.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "dev/simt/kernel_test.h"
#include "dev/simt/wgmma_cases.h"
#include "kernels/ptx.cuh"

__global__ void probe_wgmma_available_kernel(int* out) { *out = wgmma_available() ? 1 : 0; }

static uint64_t rng = 0x5EED0F00DULL;   // fixed: both builds must see the same inputs
static uint32_t next_u32() { rng = rng * 6364136223846793005ULL + 1442695040888963407ULL; return (uint32_t)(rng >> 32); }
// k/4 for k in -8..8: exact in bf16
static uint16_t small_bf16() { return __bfloat16_as_ushort(__float2bfloat16((float)((int)(next_u32() % 17) - 8) / 4.0f)); }

int main() {
    DeviceBuffer<int> available(1);
    probe_wgmma_available_kernel<<<1, 1>>>(available.ptr);
    CUDA_CHECK(cudaGetLastError());
    if (available.download()[0] == 0) {
        fprintf(stderr, "probe_wgmma: built without wgmma; build it for sm_90a (nvcc -arch=sm_90a)\n");
        return 1;
    }
    for (const WgmmaCase& c : wgmma_cases()) {
        WgmmaData data;
        data.A.resize(WGMMA_GROUPS * 64 * WGMMA_K);
        data.B.resize(WGMMA_GROUPS * WGMMA_K * 64);
        data.C.resize(WGMMA_GROUPS * 64 * 64);
        for (auto& x : data.A) x = small_bf16();
        for (auto& x : data.B) x = small_bf16();
        for (auto& x : data.C) x = (float)((int)(next_u32() % 65) - 32);
        WgmmaDeviceCase run(c, data);
        const size_t shared = wgmma_shared_bytes(c);
        CUDA_CHECK(cudaFuncSetAttribute(wgmma_case_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared));
        wgmma_case_kernel<<<1, WGMMA_THREADS, shared>>>(run.out.ptr, run.c.ptr, run.a_image.ptr, run.b_image.ptr,
                                                        run.fragments.ptr, c);
        CUDA_CHECK(cudaGetLastError());
        const std::vector<float> out = run.out.download();
        const std::string name = "wgmma_" + wgmma_case_name(c);
        for (int g = 0; g < WGMMA_GROUPS; g++)
            for (int thread = 0; thread < 128; thread++)
                for (int i = 0; i < 32; i++) {
                    uint32_t bits;
                    memcpy(&bits, &out[(g * 128 + thread) * 32 + i], 4);
                    printf("%s %d %d %d 0x%08x\n", name.c_str(), g, thread, i, bits);
                }
    }
    return 0;
}
