// dev/cuda/probes/probe_mma.cu: runs mma_m16n8k16_bf16 (kernels/ptx.cuh) on fixed pseudo-random register
// contents and prints every lane's four results as bits, one per line: "mma_case<k> <lane> <i> 0x..".
// Built with nvcc it shows what the tensor cores compute; built for the CPU layer, what the
// emulation computes; dev/gpu_check.sh runs both and compares them with dev/cuda/probes/probe_compare.
// The cases are chosen to expose the hardware's accumulation order and rounding:
//   0 ordinary values   1 exponents over 2^-40..2^40   2 a large C with small products
//   3 every row of D is 2^24 + 14 x 1 - 2^24 (k order): 0 if summed in k order in fp32, 14 exactly
//   4 subnormal bf16 inputs and C   5 Inf, NaN and -0 operands   6 random bit patterns
//   7 sums near the top of the fp32 range (some overflow to Inf)
#include "dev/simt/kernel_test.h"
#include "kernels/ptx.cuh"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

constexpr int CASES = 8;

__global__ void probe_mma_kernel(float* d, const uint32_t* a, const uint32_t* b, const float* c) {
    int lane = threadIdx.x, base = blockIdx.x * 32 + lane;
    uint32_t ar[4], br[2];
    float cr[4], dr[4];
    for (int i = 0; i < 4; i++) { ar[i] = a[base * 4 + i]; cr[i] = c[base * 4 + i]; }
    for (int i = 0; i < 2; i++) br[i] = b[base * 2 + i];
    mma_m16n8k16_bf16(dr, ar, br, cr);
    for (int i = 0; i < 4; i++) d[base * 4 + i] = dr[i];
}

static uint64_t rng = 0x5EED0F00DULL;   // fixed: both builds must see the same inputs
static uint32_t next_u32() { rng = rng * 6364136223846793005ULL + 1442695040888963407ULL; return (uint32_t)(rng >> 32); }

static uint16_t bf16_with_exponent(int exponent) {   // random sign and mantissa, given unbiased exponent
    uint32_t r = next_u32();
    return (uint16_t)((r & 0x8000u) | (uint32_t)(exponent + 127) << 7 | (r & 0x7Fu));
}
static float float_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static float float_with_exponent(int exponent) {
    uint32_t r = next_u32();
    return float_from_bits((r & 0x80000000u) | (uint32_t)(exponent + 127) << 23 | (r & 0x7FFFFFu));
}

// One bf16 element of case k; k_index is its position along K (0..15), which case 3 uses.
static uint16_t operand(int k, bool is_a, int k_index) {
    switch (k) {
        case 0: return bf16_with_exponent(-(int)(next_u32() % 4));
        case 1: return bf16_with_exponent((int)(next_u32() % 41) - 20);
        case 2: return bf16_with_exponent(-6 - (int)(next_u32() % 4));
        case 3: if (k_index == 0) return 0x4580;                      // 2^12 (A and B)
                if (k_index == 15) return is_a ? 0xC580 : 0x4580;     // A: -2^12
                return 0x3F80;                                        // 1
        case 4: return (uint16_t)((next_u32() & 0x807Fu) | (next_u32() % 3 == 0 ? 0x3F80u : 0));   // subnormal or ~1
        case 5: { const uint16_t s[] = {0x7F80, 0xFF80, 0x7FC0, 0x8000, 0x3F80, 0x0000, 0x4000, 0xBF80};
                  return next_u32() % 8 == 0 ? s[next_u32() % 8] : bf16_with_exponent(0); }
        case 6: return (uint16_t)next_u32();
        default: return bf16_with_exponent(60 + (int)(next_u32() % 4));   // products near 2^120..2^126
    }
}
static float accumulator(int k) {
    switch (k) {
        case 0: return float_with_exponent(-(int)(next_u32() % 4));
        case 1: return float_with_exponent((int)(next_u32() % 81) - 40);
        case 2: return float_with_exponent(20);
        case 3: return 0.0f;
        case 4: return float_from_bits(next_u32() & 0x807FFFFFu);   // subnormal
        case 5: return next_u32() % 8 == 0 ? float_from_bits(0x7F800000u) : 1.0f;
        case 6: return float_from_bits(next_u32());
        default: return float_with_exponent(127);
    }
}

int main() {
    std::vector<uint32_t> a(CASES * 32 * 4), b(CASES * 32 * 2);
    std::vector<float> c(CASES * 32 * 4), d(CASES * 32 * 4);
    // K positions from the fragment layout: A register r, half h of lane l holds column
    // 2*(l%4) + h + 8*(r/2); B register r, half h holds row 2*(l%4) + h + 8*r.
    for (int k = 0; k < CASES; k++)
        for (int lane = 0; lane < 32; lane++) {
            int t = lane % 4, base = k * 32 + lane;
            for (int r = 0; r < 4; r++)
                a[base * 4 + r] = operand(k, true, 2 * t + 8 * (r / 2)) |
                                  (uint32_t)operand(k, true, 2 * t + 1 + 8 * (r / 2)) << 16;
            for (int r = 0; r < 2; r++)
                b[base * 2 + r] = operand(k, false, 2 * t + 8 * r) | (uint32_t)operand(k, false, 2 * t + 1 + 8 * r) << 16;
            for (int i = 0; i < 4; i++) c[base * 4 + i] = accumulator(k);
        }
    DeviceBuffer<uint32_t> da(a.size()), db(b.size());
    DeviceBuffer<float> dc(c.size()), dd(d.size());
    da.upload(a); db.upload(b); dc.upload(c);
    probe_mma_kernel<<<CASES, 32>>>(dd.ptr, da.ptr, db.ptr, dc.ptr);
    CUDA_CHECK(cudaGetLastError());
    d = dd.download();
    for (int k = 0; k < CASES; k++)
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < 4; i++) {
                uint32_t bits;
                memcpy(&bits, &d[(k * 32 + lane) * 4 + i], 4);
                printf("mma_case%d %d %d 0x%08x\n", k, lane, i, bits);
            }
    return 0;
}
