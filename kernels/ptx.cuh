// kernels/ptx.cuh: the project's only inline PTX: small wrappers around the tensor-core instructions
// mma.sync (m16n8k16, bf16 inputs, f32 accumulate) and ldmatrix (8x8 b16 matrices, x1/x2/x4, plain
// and .trans), and the sm_80 asynchronous copy cp.async (16 bytes global -> shared, commit_group,
// wait_group N). Each wrapper has three branches:
//   device code (__CUDA_ARCH__)   the real instruction;
//   nvcc's host pass (__CUDACC__) nothing: the body is never run on the host, it only has to parse;
//   the CPU build (g++)           a warp collective of the SIMT layer (dev/simt) that moves the
//                                 values as the PTX ISA documents (see dev/simt/TENSOR.md).
// In the CPU build each wrapper also takes its caller's file and line (defaulted), so the layer's
// diagnostics (lanes missing, misaligned rows) point at the kernel, not at this header.
// Fragment layouts, from the PTX ISA, section "Matrix Fragments for mma.m16n8k16 with floating
// point type" (groupID = lane >> 2, tig = lane % 4; in each .b32 register the lower-numbered
// element is in the low 16 bits):
//   A (16x16, row-major, 4 regs = a0..a7):  a_i at row groupID + 8*((i>>1)&1), col 2*tig + (i&1) + 8*(i>>2)
//   B (16x8 = KxN, "col", 2 regs = b0..b3): b_i at row(k) 2*tig + (i&1) + 8*(i>>1), col(n) groupID
//   C, D (16x8 f32, 4 regs = c0..c3):       c_i at row groupID + 8*(i>>1), col 2*tig + (i&1)
// and section "Warp-level matrix load instruction: ldmatrix": lanes 8m..8m+7 give the addresses of
// the 8 rows of matrix m (16 bytes each, 16-byte aligned); register m of lane l receives row l/4,
// columns 2*(l%4) and 2*(l%4)+1 of matrix m (.trans: of its transpose).
// And section "Data Movement and Conversion Instructions: cp.async" (and cp.async.commit_group,
// cp.async.wait_group): cp.async starts a copy that completes at some later time; commit_group puts
// every copy the thread issued since its last commit into a new group (an empty group if none);
// wait_group N waits until at most the N most recent groups of the thread are pending, every older
// group complete. Only the waiting thread is guaranteed to see the data: other threads of the block
// after a barrier that follows the wait.
#pragma once
#include <cstdint>
#include <cstring>
#include "kernels/cuda_common.h"

#if defined(__CUDACC__)
#define PTX_CALLER
#define PTX_CALLER_ONLY
#else
#define PTX_CALLER , const char* caller_file = __builtin_FILE(), int caller_line = __builtin_LINE()
#define PTX_CALLER_ONLY const char* caller_file = __builtin_FILE(), int caller_line = __builtin_LINE()
#endif

#if !defined(__CUDACC__)
// ----------------------------------------------------------------------------------------------
// CPU emulation: each wrapper posts its operands in a full-warp rendezvous of the SIMT layer
// (simt::warp_collective, the engine behind simt::warp_allgather, called directly so that
// diagnostics name the instruction, and lanes in different instructions never meet: the layer's
// deadlock report names both), then every lane computes its own result registers from the whole
// warp's operands.
namespace ptx_emulation {

static inline float bf16_bits_to_float(uint32_t bits16) {
    uint32_t u = bits16 << 16; float f; memcpy(&f, &u, 4); return f;
}

struct MmaOperands { uint32_t a[4]; uint32_t b[2]; float c[4]; };

// D = A * B + C for the whole warp; this lane's four D values go to d.
// Products of two bf16 values are exact in fp32; they are added to C one by one in k order in
// fp32 with round-to-nearest. The hardware's internal order and rounding of the sum may differ
// (dev/cuda/probes/probe_mma measures it on a GPU).
static inline void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
                                     const char* file, int line) {
    MmaOperands mine, all[32];
    for (int i = 0; i < 4; i++) { mine.a[i] = a[i]; mine.c[i] = c[i]; }
    for (int i = 0; i < 2; i++) mine.b[i] = b[i];
    simt::warp_collective(0xFFFFFFFFu, &mine, all, sizeof(MmaOperands), simt::Site{file, line, "mma.m16n8k16"});

    float A[16][16], B[16][8], C[16][8];   // B[k][n]
    for (int lane = 0; lane < 32; lane++) {
        int group = lane >> 2, tig = lane & 3;
        for (int i = 0; i < 8; i++) {
            uint32_t bits = all[lane].a[i >> 1] >> (16 * (i & 1)) & 0xFFFFu;
            A[group + 8 * ((i >> 1) & 1)][2 * tig + (i & 1) + 8 * (i >> 2)] = bf16_bits_to_float(bits);
        }
        for (int i = 0; i < 4; i++) {
            uint32_t bits = all[lane].b[i >> 1] >> (16 * (i & 1)) & 0xFFFFu;
            B[2 * tig + (i & 1) + 8 * (i >> 1)][group] = bf16_bits_to_float(bits);
            C[group + 8 * (i >> 1)][2 * tig + (i & 1)] = all[lane].c[i];
        }
    }
    int lane = (int)simt::lane_id(), group = lane >> 2, tig = lane & 3;
    for (int i = 0; i < 4; i++) {
        int row = group + 8 * (i >> 1), col = 2 * tig + (i & 1);
        float sum = C[row][col];
        for (int k = 0; k < 16; k++) sum += A[row][k] * B[k][col];
        d[i] = sum;
    }
}

// ldmatrix.m8n8.x{num}{.trans}.b16: every lane posts its row address; lanes 0..8*num-1 must give
// 16-byte aligned rows, the other lanes' addresses are ignored (as on sm_80 and later).
static inline void ldmatrix(int num, bool trans, uint32_t* r, const void* row_address,
                            const char* file, int line) {
    static const char* names[2][5] = {{"", "ldmatrix.x1", "ldmatrix.x2", "", "ldmatrix.x4"},
                                      {"", "ldmatrix.x1.trans", "ldmatrix.x2.trans", "", "ldmatrix.x4.trans"}};
    simt::Site site{file, line, names[trans][num]};
    const void* rows[32];
    simt::warp_collective(0xFFFFFFFFu, &row_address, rows, sizeof(const void*), site);
    int lane = (int)simt::lane_id();
    if (lane < 8 * num && (row_address == nullptr || reinterpret_cast<uintptr_t>(row_address) % 16 != 0))
        simt::fail_at(site, false, "%s: lane %d gives row address %p, which is not 16-byte aligned; each "
                      "row of an 8x8 b16 matrix must start on a 16-byte boundary in shared memory",
                      site.what, lane, row_address);
    for (int m = 0; m < num; m++) {
        uint16_t lo, hi;
        if (!trans) {   // row lane/4 of matrix m, columns 2*(lane%4) and the next
            const uint16_t* row = static_cast<const uint16_t*>(rows[8 * m + lane / 4]);
            lo = row[2 * (lane % 4)];
            hi = row[2 * (lane % 4) + 1];
        } else {        // the same position of the transpose: rows 2*(lane%4) and the next, column lane/4
            lo = static_cast<const uint16_t*>(rows[8 * m + 2 * (lane % 4)])[lane / 4];
            hi = static_cast<const uint16_t*>(rows[8 * m + 2 * (lane % 4) + 1])[lane / 4];
        }
        r[m] = (uint32_t)lo | (uint32_t)hi << 16;
    }
}

// cp.async, deferred: the issuing thread records the copy (its 16 source bytes, read now) in its
// list of uncommitted copies and fills the destination with 0xFF bytes (NaN), which stay until the
// thread's wait_group completes the copy's group. So a kernel that reads a tile before its wait,
// or another thread's part before the barrier after the waits, reads NaN, as the GPU may give it
// stale data. The source must be global memory (inside a cudaMalloc allocation), the destination
// the block's shared memory, both 16-byte aligned; anything else aborts naming the caller's line.
static inline simt::Thread& cp_async_thread(const simt::Site& site) {
    if (!simt::g_engine.current)
        simt::fail_at(site, false, "%s called outside a kernel", site.what);
    return *simt::g_engine.current;
}

static inline void cp_async_16(void* dst, const void* src, const char* file, int line) {
    simt::Site site{file, line, "cp.async.cg.shared.global"};
    simt::Thread& t = cp_async_thread(site);
    if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || reinterpret_cast<uintptr_t>(src) % 16 != 0)
        simt::fail_at(site, false, "%s: destination %p or source %p is not 16-byte aligned; a 16-byte "
                      "copy needs both addresses aligned to 16 bytes", site.what, dst, src);
    if (!simt::is_shared_range(dst, 16))
        simt::fail_at(site, false, "%s: destination %p is not inside the block's shared memory",
                      site.what, dst);
    if (simt::device_bytes_from(src) < 16)  // the runtime stand-in's table of cudaMalloc allocations
        simt::fail_at(site, false, "%s: source %p is not inside a cudaMalloc allocation (global "
                      "memory), or its 16 bytes run past the allocation's end", site.what, src);
    simt::AsyncCopy copy;
    copy.dst = dst;
    memcpy(copy.data, src, 16);
    memset(dst, 0xFF, 16);
    t.async_uncommitted.push_back(copy);
}

static inline void cp_async_commit_group(const char* file, int line) {
    simt::Thread& t = cp_async_thread(simt::Site{file, line, "cp.async.commit_group"});
    t.async_groups.push_back(std::move(t.async_uncommitted));
    t.async_uncommitted.clear();
}

// Completes every committed group but the n most recent ones (copies not yet committed stay pending).
static inline void cp_async_wait_group(int n, const char* file, int line) {
    simt::Thread& t = cp_async_thread(simt::Site{file, line, "cp.async.wait_group"});
    const size_t keep = (size_t)n, groups = t.async_groups.size();
    if (groups <= keep) return;
    for (size_t g = 0; g < groups - keep; g++)
        for (const simt::AsyncCopy& copy : t.async_groups[g]) memcpy(copy.dst, copy.data, 16);
    t.async_groups.erase(t.async_groups.begin(), t.async_groups.begin() + (groups - keep));
}

} // namespace ptx_emulation
#endif

// ----------------------------------------------------------------------------------------------
// D (16x8 f32) = A (16x16 bf16, row-major) * B (16x8 bf16, "col": stored n-major, k contiguous)
//              + C (16x8 f32); mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32.
// Every lane of the warp must call it together (full warp, no divergence).
__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                  const float c[4] PTX_CALLER) {
#if defined(__CUDA_ARCH__)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),
                   "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif defined(__CUDACC__)
    // nvcc host pass: device-only, never executed here.
#else
    ptx_emulation::mma_m16n8k16_bf16(d, a, b, c, caller_file, caller_line);
#endif
}

// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{,.trans}.shared.b16: loads 1, 2 or 4 8x8 matrices of 16-bit
// elements from shared memory. row_address: this lane's row (lanes 8m..8m+7 give matrix m's rows).
#if defined(__CUDA_ARCH__)
#define PTX_SHARED_ADDRESS(p) static_cast<uint32_t>(__cvta_generic_to_shared(p))
#endif

__device__ __forceinline__ void ldmatrix_x1(uint32_t r[1], const void* row_address PTX_CALLER) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0]) : "r"(PTX_SHARED_ADDRESS(row_address)) : "memory");
#elif defined(__CUDACC__)
#else
    ptx_emulation::ldmatrix(1, false, r, row_address, caller_file, caller_line);
#endif
}

__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const void* row_address PTX_CALLER) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(PTX_SHARED_ADDRESS(row_address)) : "memory");
#elif defined(__CUDACC__)
#else
    ptx_emulation::ldmatrix(2, false, r, row_address, caller_file, caller_line);
#endif
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* row_address PTX_CALLER) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(PTX_SHARED_ADDRESS(row_address)) : "memory");
#elif defined(__CUDACC__)
#else
    ptx_emulation::ldmatrix(4, false, r, row_address, caller_file, caller_line);
#endif
}

__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t r[1], const void* row_address PTX_CALLER) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0]) : "r"(PTX_SHARED_ADDRESS(row_address)) : "memory");
#elif defined(__CUDACC__)
#else
    ptx_emulation::ldmatrix(1, true, r, row_address, caller_file, caller_line);
#endif
}

__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const void* row_address PTX_CALLER) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(PTX_SHARED_ADDRESS(row_address)) : "memory");
#elif defined(__CUDACC__)
#else
    ptx_emulation::ldmatrix(2, true, r, row_address, caller_file, caller_line);
#endif
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* row_address PTX_CALLER) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(PTX_SHARED_ADDRESS(row_address)) : "memory");
#elif defined(__CUDACC__)
#else
    ptx_emulation::ldmatrix(4, true, r, row_address, caller_file, caller_line);
#endif
}

// ----------------------------------------------------------------------------------------------
// cp.async.cg.shared.global [dst], [src], 16: starts copying 16 bytes from global memory (src) to
// shared memory (dst), both 16-byte aligned, without passing through registers (.cg: cached in L2
// only). The data may be read only after the thread's cp_async_wait_group that completes its group,
// and by other threads only after a __syncthreads that follows those waits.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src PTX_CALLER) {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n"
                 :: "r"(PTX_SHARED_ADDRESS(dst)), "l"(src) : "memory");
#elif defined(__CUDACC__)
#else
    ptx_emulation::cp_async_16(dst, src, caller_file, caller_line);
#endif
}

// cp.async.commit_group: the copies this thread issued since its last commit become one group.
__device__ __forceinline__ void cp_async_commit_group(PTX_CALLER_ONLY) {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#elif defined(__CUDACC__)
#else
    ptx_emulation::cp_async_commit_group(caller_file, caller_line);
#endif
}

// cp.async.wait_group N: waits until at most the N most recent groups of this thread are pending
// (N = 0: all committed groups complete). N is an immediate in PTX, hence the template argument.
template <int N>
__device__ __forceinline__ void cp_async_wait_group(PTX_CALLER_ONLY) {
    static_assert(N >= 0, "cp.async.wait_group takes a count >= 0");
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory");
#elif defined(__CUDACC__)
#else
    ptx_emulation::cp_async_wait_group(N, caller_file, caller_line);
#endif
}
