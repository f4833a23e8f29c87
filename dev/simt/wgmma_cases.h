// dev/simt/wgmma_cases.h: the warpgroup MMA problems shared by dev/simt/test_wgmma.cu (results
// against a double matmul) and dev/cuda/probes/probe_wgmma.cu (results printed as bits, GPU
// against emulation). A problem: D (64x64 f32) = C + sum over k-steps s of A_s (64x16) B_s (16x64),
// 4 steps (K = 64) issued back to back into the same accumulators, by each of 2 warpgroups with
// its own data. A comes from registers or from shared memory K-major or M-major, B from shared
// memory K-major or N-major, each tile in one swizzling mode with its own LBO and SBO.
// The host places every element in the tile image from the PTX ISA's description of the layouts
// (Table "Various combinations of swizzling mode, leading dimension and swizzle-atom layout" and
// the LBO/SBO definitions, "Shared Memory Matrix Layout"), written here as atoms and core matrices,
// independently of the emulation's canonical-layout formulas in kernels/ptx.cuh.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/ptx.cuh"

constexpr int WGMMA_GROUPS = 2;              // warpgroups per block, one problem each
constexpr int WGMMA_THREADS = 128 * WGMMA_GROUPS;
constexpr int WGMMA_STEPS = 4;               // k-steps of 16: K = 64
constexpr int WGMMA_K = 16 * WGMMA_STEPS;

enum WgmmaOperand { OPERAND_REGISTERS, OPERAND_K_MAJOR, OPERAND_MN_MAJOR };

// How one operand (64 rows mn by WGMMA_K columns k) lies in shared memory.
struct WgmmaTile {
    bool mn_major = false;
    WgmmaSwizzle swizzle = WgmmaSwizzle::None;
    uint32_t lbo = 0, sbo = 0;  // the descriptor's leading / stride dimension byte offsets
    uint32_t bytes = 0;         // the tile's size, a multiple of 1024
    uint32_t step[WGMMA_STEPS] = {};  // where k-step s starts (the descriptor's start address)
};

struct WgmmaCase {
    int a_operand;
    WgmmaTile a, b;
    int first_scale_d;  // scale-d of step 0: 0 ignores C
};

inline uint32_t swizzle_width(WgmmaSwizzle s) {
    return s == WgmmaSwizzle::B128 ? 128 : s == WgmmaSwizzle::B64 ? 64 : s == WgmmaSwizzle::B32 ? 32 : 0;
}

// Byte offset of element (mn, k) in the tile, before swizzling.
//   no swizzle: core matrices of 8 rows of 16 bytes; K-major rows run along k (8 k of one mn),
//     MN-major rows along mn (8 mn of one k); the core matrix (mn/8, k/8) starts at
//     (mn/8) SBO + (k/8) LBO.
//   W-byte swizzle: atoms of 8 rows of W bytes (1024, 512 or 256 bytes, aligned to their size).
//     K-major: a row is W/2 k of one mn; atoms along mn SBO apart, and (not described by the
//     descriptor: each k-step's start address selects it) along k 8 SBO apart.
//     MN-major: a row is W/2 mn of one k; atoms along mn LBO apart, along k SBO apart.
inline uint32_t wgmma_tile_offset(const WgmmaTile& t, int mn, int k) {
    const uint32_t W = swizzle_width(t.swizzle);
    if (W == 0) {
        const uint32_t inside = t.mn_major ? (k % 8) * 16 + (mn % 8) * 2 : (mn % 8) * 16 + (k % 8) * 2;
        return (mn / 8) * t.sbo + (k / 8) * t.lbo + inside;
    }
    if (!t.mn_major) {
        const uint32_t per_row = W / 2, atom_column = k / per_row;
        return atom_column * 8 * t.sbo + (mn / 8) * t.sbo + (mn % 8) * W + (k % per_row) * 2;
    }
    const uint32_t per_row = W / 2;
    return (mn / per_row) * t.lbo + (k / 8) * t.sbo + (k % 8) * W + (mn % per_row) * 2;
}

// Where the swizzle moves a byte offset (in an atom aligned to 8 W bytes): row r of the atom keeps
// its W bytes, its 16-byte chunk c goes to chunk c XOR (r / (128 / W)) % (W / 16) (the figures of
// "Shared Memory Matrix Layout": the pattern changes every row at 128B, every 2 rows at 64B, every
// 4 rows at 32B, over 8, 4 and 2 chunks).
inline uint32_t wgmma_swizzled(const WgmmaTile& t, uint32_t offset) {
    const uint32_t W = swizzle_width(t.swizzle);
    if (W == 0) return offset;
    const uint32_t row = offset % (8 * W) / W, chunk = offset % W / 16;
    const uint32_t moved = chunk ^ (row / (128 / W)) % (W / 16);
    return offset - chunk * 16 + moved * 16;
}

// The tile layouts used: LBO and SBO with gaps where the layout uses them (so that a decoder
// mixing them up reads wrong elements).
inline WgmmaTile wgmma_tile(bool mn_major, WgmmaSwizzle swizzle) {
    WgmmaTile t;
    t.mn_major = mn_major;
    t.swizzle = swizzle;
    const uint32_t W = swizzle_width(swizzle);
    if (W == 0) {
        t.sbo = 144;                       // 8 core matrices along mn, 16 bytes apart
        t.lbo = 8 * 144 + 32;              // 8 along k
        t.bytes = 10 * 1024;
    } else if (!mn_major) {
        t.lbo = 16;                        // unused ("assumed 1")
        t.sbo = 16 * W;                    // an atom-sized gap between atoms along mn
        t.bytes = (WGMMA_K / (W / 2)) * 8 * t.sbo;
    } else {
        t.lbo = 16 * W;                    // atoms along mn, a gap between them
        t.sbo = (128 / W) * t.lbo;         // then the next 8 k
        t.bytes = (WGMMA_K / 8) * t.sbo;
    }
    for (int s = 0; s < WGMMA_STEPS; s++) t.step[s] = wgmma_tile_offset(t, 0, 16 * s);
    return t;
}

inline std::string wgmma_case_name(const WgmmaCase& c) {
    static const char* swizzles[4] = {"none", "128B", "64B", "32B"};
    std::string a = c.a_operand == OPERAND_REGISTERS ? "A_registers"
                    : std::string(c.a_operand == OPERAND_K_MAJOR ? "A_K-major_" : "A_M-major_") +
                          swizzles[(int)c.a.swizzle];
    return a + "_B_" + (c.b.mn_major ? "N-major_" : "K-major_") + swizzles[(int)c.b.swizzle] +
           (c.first_scale_d ? "_plus_C" : "");
}

// Every combination the wrappers offer: A from registers, K-major or M-major shared memory; B
// K-major or N-major; every swizzling mode for B, and for A the next mode (so that A and B differ).
inline std::vector<WgmmaCase> wgmma_cases() {
    const WgmmaSwizzle modes[4] = {WgmmaSwizzle::None, WgmmaSwizzle::B32, WgmmaSwizzle::B64, WgmmaSwizzle::B128};
    std::vector<WgmmaCase> cases;
    for (int m = 0; m < 4; m++)
        for (int a = OPERAND_REGISTERS; a <= OPERAND_MN_MAJOR; a++)
            for (int b_mn = 0; b_mn < 2; b_mn++) {
                WgmmaCase c;
                c.a_operand = a;
                c.a = wgmma_tile(a == OPERAND_MN_MAJOR, modes[(m + 1) % 4]);
                if (a == OPERAND_REGISTERS) c.a.bytes = 0;
                c.b = wgmma_tile(b_mn == 1, modes[m]);
                c.first_scale_d = (int)(cases.size() % 2);
                cases.push_back(c);
            }
    return cases;
}

// Host data of one problem per warpgroup, as bf16 bits: A[g][m][k], B[g][k][n], C[g][m][n].
struct WgmmaData {
    std::vector<uint16_t> A, B;
    std::vector<float> C;
};

// The shared-memory images of A and B (WGMMA_GROUPS tiles each, one after the other) and the A
// fragments for registers: fragments[((g * STEPS + s) * 128 + thread) * 4 + r], from the PTX ISA's
// "Matrix Fragments for wgmma.mma_async.m64nNk16": thread (warp w, lane l) holds in register r
// the elements i = 2r (low half) and 2r + 1 of rows 16w + l/4 + 8((i>>1)&1), columns
// 2(l%4) + (i&1) + 8(i>>2) of the 64x16 block of step s.
inline void wgmma_images(const WgmmaCase& c, const WgmmaData& data, std::vector<uint16_t>& a_image,
                         std::vector<uint16_t>& b_image, std::vector<uint32_t>& fragments) {
    a_image.assign(WGMMA_GROUPS * c.a.bytes / 2, 0);
    b_image.assign(WGMMA_GROUPS * c.b.bytes / 2, 0);
    fragments.assign(WGMMA_GROUPS * WGMMA_STEPS * 128 * 4, 0);
    for (int g = 0; g < WGMMA_GROUPS; g++)
        for (int mn = 0; mn < 64; mn++)
            for (int k = 0; k < WGMMA_K; k++) {
                if (c.a_operand != OPERAND_REGISTERS)
                    a_image[(g * c.a.bytes + wgmma_swizzled(c.a, wgmma_tile_offset(c.a, mn, k))) / 2] =
                        data.A[(g * 64 + mn) * WGMMA_K + k];
                b_image[(g * c.b.bytes + wgmma_swizzled(c.b, wgmma_tile_offset(c.b, mn, k))) / 2] =
                    data.B[(g * WGMMA_K + k) * 64 + mn];
            }
    for (int g = 0; g < WGMMA_GROUPS; g++)
        for (int s = 0; s < WGMMA_STEPS; s++)
            for (int thread = 0; thread < 128; thread++)
                for (int i = 0; i < 8; i++) {
                    const int w = thread / 32, l = thread % 32;
                    const int row = 16 * w + l / 4 + 8 * ((i >> 1) & 1), col = 2 * (l % 4) + (i & 1) + 8 * (i >> 2);
                    const uint32_t bits = data.A[(g * 64 + row) * WGMMA_K + 16 * s + col];
                    fragments[((g * WGMMA_STEPS + s) * 128 + thread) * 4 + i / 2] |= bits << (16 * (i % 2));
                }
}

// Dynamic shared memory the kernel needs for a case (images, and 1024 bytes to align them).
inline size_t wgmma_shared_bytes(const WgmmaCase& c) { return WGMMA_GROUPS * (c.a.bytes + c.b.bytes) + 1024; }

// The accumulator element i (of 32) of thread `thread` of a warpgroup: row and column of D ("Matrix
// Fragments for wgmma.mma_async.m64nNk16", accumulator D).
inline int wgmma_d_row(int thread, int i) { return 16 * (thread / 32) + thread % 32 / 4 + 8 * ((i >> 1) & 1); }
inline int wgmma_d_col(int thread, int i) { return 8 * (i >> 2) + 2 * (thread % 4) + (i & 1); }

template <int TRANS_A, int TRANS_B>
__device__ void wgmma_case_steps(float (&d)[32], const uint64_t (&desc_a)[WGMMA_STEPS],
                                 const uint64_t (&desc_b)[WGMMA_STEPS], uint32_t (&a)[WGMMA_STEPS][4],
                                 bool a_in_registers, int first_scale_d) {
    for (int s = 0; s < WGMMA_STEPS; s++) {
        const int scale_d = s == 0 ? first_scale_d : 1;
        if (a_in_registers) wgmma_m64n64k16_bf16_rs<TRANS_B>(d, a[s], desc_b[s], scale_d);
        else wgmma_m64n64k16_bf16_ss<TRANS_A, TRANS_B>(d, desc_a[s], desc_b[s], scale_d);
    }
}

// One block of WGMMA_THREADS threads: copies the images into shared memory (1024-byte aligned),
// then warpgroup g computes its problem. out[(g * 128 + thread) * 32 + i] = accumulator i;
// c_in the same layout; a_fragments as made by wgmma_images.
__global__ void wgmma_case_kernel(float* out, const float* c_in, const uint4* a_image, const uint4* b_image,
                                  const uint32_t* a_fragments, WgmmaCase c) {
    DYNAMIC_SHARED(unsigned char, raw);
    unsigned char* smem_a = reinterpret_cast<unsigned char*>(((uintptr_t)raw + 1023) & ~(uintptr_t)1023);
    unsigned char* smem_b = smem_a + WGMMA_GROUPS * c.a.bytes;
    for (uint32_t i = threadIdx.x; i < WGMMA_GROUPS * c.a.bytes / 16; i += blockDim.x)
        reinterpret_cast<uint4*>(smem_a)[i] = a_image[i];
    for (uint32_t i = threadIdx.x; i < WGMMA_GROUPS * c.b.bytes / 16; i += blockDim.x)
        reinterpret_cast<uint4*>(smem_b)[i] = b_image[i];
    fence_proxy_async();
    __syncthreads();
    const int g = threadIdx.x / 128, thread = threadIdx.x % 128;
    const bool a_in_registers = c.a_operand == OPERAND_REGISTERS;
    uint64_t desc_a[WGMMA_STEPS] = {}, desc_b[WGMMA_STEPS];
    uint32_t a[WGMMA_STEPS][4] = {};
    for (int s = 0; s < WGMMA_STEPS; s++) {
        desc_b[s] = wgmma_descriptor(smem_b + g * c.b.bytes + c.b.step[s], c.b.lbo, c.b.sbo, c.b.swizzle);
        if (!a_in_registers)
            desc_a[s] = wgmma_descriptor(smem_a + g * c.a.bytes + c.a.step[s], c.a.lbo, c.a.sbo, c.a.swizzle);
        else
            for (int r = 0; r < 4; r++) a[s][r] = a_fragments[((g * WGMMA_STEPS + s) * 128 + thread) * 4 + r];
    }
    float d[32];
    for (int i = 0; i < 32; i++) d[i] = c_in[(g * 128 + thread) * 32 + i];
    wgmma_fence_operand(d);
    for (int s = 0; s < WGMMA_STEPS; s++) wgmma_fence_operand(a[s]);
    wgmma_fence();
    const bool a_mn = c.a.mn_major, b_mn = c.b.mn_major;
    if (!a_mn && !b_mn) wgmma_case_steps<0, 0>(d, desc_a, desc_b, a, a_in_registers, c.first_scale_d);
    if (!a_mn && b_mn) wgmma_case_steps<0, 1>(d, desc_a, desc_b, a, a_in_registers, c.first_scale_d);
    if (a_mn && !b_mn) wgmma_case_steps<1, 0>(d, desc_a, desc_b, a, a_in_registers, c.first_scale_d);
    if (a_mn && b_mn) wgmma_case_steps<1, 1>(d, desc_a, desc_b, a, a_in_registers, c.first_scale_d);
    wgmma_commit_group();
    wgmma_wait_group<0>();
    wgmma_fence_operand(d);
    for (int s = 0; s < WGMMA_STEPS; s++) wgmma_fence_operand(a[s]);
    for (int i = 0; i < 32; i++) out[(g * 128 + thread) * 32 + i] = d[i];
}

// Runs one case on the device (or the emulation): the 2 x 128 x 32 accumulators.
// (The launch is in the including .cu file: the CPU build rewrites launches there.)
struct WgmmaDeviceCase {
    DeviceBuffer<float> out, c;
    DeviceBuffer<uint4> a_image, b_image;
    DeviceBuffer<uint32_t> fragments;
    WgmmaDeviceCase(const WgmmaCase& cs, const WgmmaData& data)
        : out(WGMMA_THREADS * 32), c(WGMMA_THREADS * 32), a_image(cs.a.bytes ? WGMMA_GROUPS * cs.a.bytes / 16 : 1),
          b_image(WGMMA_GROUPS * cs.b.bytes / 16), fragments(WGMMA_GROUPS * WGMMA_STEPS * 128 * 4) {
        std::vector<uint16_t> a16, b16;
        std::vector<uint32_t> frag;
        wgmma_images(cs, data, a16, b16, frag);
        std::vector<uint4> a4(a_image.n), b4(b_image.n);
        memcpy(a4.data(), a16.data(), a16.size() * 2);
        memcpy(b4.data(), b16.data(), b16.size() * 2);
        a_image.upload(a4);
        b_image.upload(b4);
        fragments.upload(frag);
        std::vector<float> c_fragments(WGMMA_THREADS * 32);
        for (int g = 0; g < WGMMA_GROUPS; g++)
            for (int thread = 0; thread < 128; thread++)
                for (int i = 0; i < 32; i++)
                    c_fragments[(g * 128 + thread) * 32 + i] =
                        data.C[(g * 64 + wgmma_d_row(thread, i)) * 64 + wgmma_d_col(thread, i)];
        c.upload(c_fragments);
    }
};
