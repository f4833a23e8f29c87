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
// And Hopper's warpgroup MMA (sm_90a only: the device branch needs __CUDA_ARCH_FEAT_SM90_ALL, i.e.
// nvcc -arch=sm_90a; other device targets trap if they reach it), from the PTX ISA's section
// "Asynchronous Warpgroup Level Matrix Multiply-Accumulate Instructions" (9.7.15 in PTX ISA 8.x):
// wgmma.mma_async m64n64k16 bf16 x bf16 -> f32 with A from shared memory or registers and B from
// shared memory, each matrix in shared memory given by a 64-bit matrix descriptor
// (wgmma_descriptor); wgmma.fence, wgmma.commit_group, wgmma.wait_group N; and fence.proxy.async,
// which wgmma's shared-memory reads (the async proxy) need after ordinary (generic proxy) writes.
// The layouts are in dev/simt/TENSOR.md ("Warpgroup MMA") with the sections they come from.
#pragma once
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>
#include "kernels/cuda_common.h"

// Swizzling mode of a wgmma matrix descriptor (bits 62-63; PTX ISA "Matrix Descriptor Format"):
// the 16-byte chunks of each 32/64/128-byte row of a swizzle atom are permuted (see TENSOR.md).
enum class WgmmaSwizzle : uint32_t { None = 0, B128 = 1, B64 = 2, B32 = 3 };

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

// ---- Warpgroup MMA. wgmma.mma_async is a warpgroup collective (simt::warpgroup_collective): each
// of the 128 threads posts its A registers (when A comes from registers), the two descriptors and
// scale-d; then each computes its own N/2 accumulators from the whole warpgroup's posts and the
// shared memory the descriptors point at, read through the async proxy's view of it
// (simt::fence_proxy_async). The operation is deferred like cp.async: its result waits in the
// thread's list of issued operations, the accumulator registers hold NaN (0xFFFFFFFF) meanwhile,
// and the wgmma.wait_group that completes its group writes the result. Errors abort naming the
// kernel's line: a descriptor field the emulation does not implement, an element outside shared
// memory, an element written without fence.proxy.async since, operands that differ between the
// threads of the warpgroup, no wgmma.fence before the operation, shared memory that changed before
// the wait completing an operation that read it.
struct WgmmaPost {
    uint64_t desc_a, desc_b;
    uint32_t a[4];
    int scale_d;
};

// A matrix descriptor's fields, decoded as the PTX ISA's "Matrix Descriptor Format" gives them:
// bits 0-13 start address, 16-29 leading dimension byte offset, 32-45 stride dimension byte offset
// (each encoded as (x & 0x3FFFF) >> 4), 49-51 matrix base offset, 62-63 swizzling mode; the other
// bits are unused.
struct WgmmaMatrix {
    uint32_t start, leading, stride;
    uint32_t swizzle_bytes;  // 0 (none), 32, 64 or 128
};

static inline WgmmaMatrix wgmma_decode(uint64_t desc, const char* which, const simt::Site& site) {
    const uint64_t fields = 0x3FFFull | 0x3FFFull << 16 | 0x3FFFull << 32 | 0x7ull << 49 | 0x3ull << 62;
    if (desc & ~fields)
        simt::fail_at(site, false, "%s: the %s descriptor 0x%016llx sets bits outside its fields (0-13, "
                      "16-29, 32-45, 49-51, 62-63)", site.what, which, (unsigned long long)desc);
    const unsigned base_offset = (unsigned)(desc >> 49 & 7);
    if (base_offset != 0)
        simt::fail_at(site, false, "%s: the %s descriptor has matrix base offset %u; the emulation "
                      "implements base offset 0 only (start each swizzle pattern on its 256/512/1024-byte "
                      "boundary)", site.what, which, base_offset);
    static const uint32_t swizzle_bytes[4] = {0, 128, 64, 32};
    return WgmmaMatrix{(uint32_t)(desc & 0x3FFF) << 4, (uint32_t)(desc >> 16 & 0x3FFF) << 4,
                       (uint32_t)(desc >> 32 & 0x3FFF) << 4, swizzle_bytes[desc >> 62]};
}

// The shared address of element (mn, k), k < 16, of a bf16 operand: mn is the row of A (m) or the
// column of B (n). The PTX ISA's canonical layouts ("Shared Memory Matrix Layout", "Canonical
// Layouts") for 16-bit elements (T = 8), offsets in bytes, W = the swizzle width in bytes:
//   K-major,  no swizzle  ((8,m),(T,2k)):((1T,SBO),(1,LBO))    8x16-byte core matrices
//   K-major,  W swizzle   ((8,m),(T,2k)):((W/16 T,SBO),(1,T))  rows of W bytes along k; LBO unused
//   MN-major, no swizzle  ((T,1,m),(8,k)):((1,T,SBO),(1T,LBO))
//   MN-major, W swizzle   ((T,W/16,m),(8,k)):((1,T,LBO),(W/16 T,SBO))  rows of W bytes along mn
// then the swizzle Swizzle<log2(W/16),4,3> on the byte address: bits 4.. of the address (its
// 16-byte chunk) XOR bits 7.. (as CuTe applies it to a shared-memory pointer: on the address
// itself, so a tile is written in the same pattern when its atoms start on a W*8-byte boundary).
static inline uint32_t wgmma_element_address(const WgmmaMatrix& m, bool mn_major, int mn, int k) {
    uint32_t offset;
    if (m.swizzle_bytes == 0) {
        offset = mn_major ? (mn % 8) * 2 + (mn / 8) * m.stride + (k % 8) * 16 + (k / 8) * m.leading
                          : (mn % 8) * 16 + (mn / 8) * m.stride + (k % 8) * 2 + (k / 8) * m.leading;
    } else {
        const uint32_t row_elements = m.swizzle_bytes / 2;
        offset = mn_major ? (mn % row_elements) * 2 + (mn / row_elements) * m.leading +
                                (k % 8) * m.swizzle_bytes + (k / 8) * m.stride
                          : (mn % 8) * m.swizzle_bytes + (mn / 8) * m.stride + k * 2;
    }
    uint32_t address = (m.start + offset) & simt::kSharedAddressMask;
    if (m.swizzle_bytes) address ^= (address >> 7 & (m.swizzle_bytes / 16 - 1)) << 4;
    return address;
}

static inline simt::Thread& running_thread(const simt::Site& site) {
    if (!simt::g_engine.current)
        simt::fail_at(site, false, "%s called outside a kernel", site.what);
    return *simt::g_engine.current;
}

// One bf16 element of a shared-memory operand, read through the async proxy's view; recorded in
// op so that the completing wait can check it did not change.
static inline float wgmma_read(const WgmmaMatrix& m, bool mn_major, int mn, int k, const char* which,
                               simt::WgmmaOp& op, const simt::Site& site) {
    const uint32_t address = wgmma_element_address(m, mn_major, mn, k);
    const unsigned char* view = nullptr;
    const unsigned char* p = simt::shared_pointer_at(address, 2, &view);
    if (!p)
        simt::fail_at(site, false, "%s: element (%d, %d) of %s is at shared address 0x%05x, outside the "
                      "block's shared memory (check the descriptor's start address, LBO and SBO)",
                      site.what, mn, k, which, address);
    uint16_t bits, written;
    memcpy(&bits, view, 2);
    memcpy(&written, p, 2);
    if (bits != written)
        simt::fail_at(site, false, "%s reads %s's element (%d, %d) at shared address 0x%05x, written by "
                      "ordinary stores with no fence.proxy.async since: wgmma reads shared memory through "
                      "the async proxy; each writing thread must call fence_proxy_async() before the "
                      "barrier that precedes the wgmma", site.what, which, mn, k, address);
    op.operands.push_back({reinterpret_cast<const uint16_t*>(p), bits});
    return bf16_bits_to_float(bits);
}

// D (64xN f32) = A (64x16 bf16) * B (16xN bf16) + (scale_d ? D : 0) for the warpgroup; d: this
// thread's N/2 accumulators. a_registers: this thread's 4 A registers, or nullptr for A in shared
// memory (desc_a, trans_a: M-major). trans_b: B is N-major. Fragment layouts (PTX ISA "Matrix
// Fragments for wgmma.mma_async.m64nNk16"), w = warp index in the warpgroup, g = lane >> 2,
// t = lane % 4: A element i (of 8) at row 16w + g + 8((i>>1)&1), column 2t + (i&1) + 8(i>>2);
// D element i (of N/2) at row 16w + g + 8((i>>1)&1), column 8(i>>2) + 2t + (i&1).
template <int N>
static inline void wgmma_bf16(float* d, const uint32_t* a_registers, uint64_t desc_a, uint64_t desc_b,
                              int scale_d, bool trans_a, bool trans_b, const char* file, int line) {
    simt::Site site{file, line, a_registers ? "wgmma.mma_async (A in registers)" : "wgmma.mma_async"};
    simt::Thread& t = running_thread(site);
    if (!t.wgmma_fenced)
        simt::fail_at(site, false, "%s without a wgmma.fence since the kernel started or since this "
                      "thread's last wgmma.wait_group that completed an operation: call wgmma_fence() "
                      "first (the PTX ISA requires it before the first wgmma.mma_async and between any "
                      "access to its registers and the wgmma.mma_async; the emulation cannot see register "
                      "accesses, so it asks for one after every completing wait)", site.what);
    WgmmaPost mine{desc_a, desc_b, {0, 0, 0, 0}, scale_d != 0};
    if (a_registers) memcpy(mine.a, a_registers, sizeof mine.a);
    const WgmmaPost* all = reinterpret_cast<const WgmmaPost*>(simt::warpgroup_collective(&mine, sizeof mine, site));
    for (int i = 1; i < 128; i++)
        if (all[i].desc_b != all[0].desc_b || (!a_registers && all[i].desc_a != all[0].desc_a) ||
            all[i].scale_d != all[0].scale_d)
            simt::fail_at(site, false, "%s: thread %d of the warpgroup gives other descriptors or scale-d "
                          "than its thread 0; the PTX ISA asks for the same matrix descriptors in every "
                          "warp of the warpgroup", site.what, i);
    const int in_group = (int)(&t - simt::g_engine.threads.data()) % 128;
    const int warp = in_group / 32, g = in_group % 32 / 4, tig = in_group % 4;
    simt::WgmmaOp op;
    op.accumulator = d;
    op.registers = N / 2;
    op.site = site;
    float A[2][16], B[N / 4][16];   // this thread's rows of A (16w + g, +8), its columns of B
    if (a_registers) {
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 16; k++) {
                const int i = (k & 1) + 2 * h + 4 * (k / 8);   // element i of the lane holding it
                const uint32_t reg = all[warp * 32 + 4 * g + (k % 8) / 2].a[i >> 1];
                A[h][k] = bf16_bits_to_float(reg >> (16 * (i & 1)) & 0xFFFFu);
            }
    } else {
        const WgmmaMatrix matrix = wgmma_decode(desc_a, "A", site);
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 16; k++) A[h][k] = wgmma_read(matrix, trans_a, 16 * warp + g + 8 * h, k, "A", op, site);
    }
    const WgmmaMatrix matrix_b = wgmma_decode(desc_b, "B", site);
    for (int j = 0; j < N / 4; j++)
        for (int k = 0; k < 16; k++)
            B[j][k] = wgmma_read(matrix_b, trans_b, 8 * (j / 2) + 2 * tig + j % 2, k, "B", op, site);
    // the accumulator's input: the result of the thread's latest pending operation on the same
    // registers (the PTX ISA orders accumulator accesses of same-shape wgmma without a wait), else
    // the registers themselves
    const float* input = d;
    auto overlaps = [&](const simt::WgmmaOp& o) { return o.accumulator < d + N / 2 && d < o.accumulator + o.registers; };
    const simt::WgmmaOp* latest = nullptr;
    for (const simt::WgmmaOp& o : t.wgmma_uncommitted) if (overlaps(o)) latest = &o;
    for (size_t gi = t.wgmma_groups.size(); !latest && gi-- > 0;)
        for (const simt::WgmmaOp& o : t.wgmma_groups[gi]) if (overlaps(o)) latest = &o;
    if (latest) {
        if (latest->accumulator != d || latest->registers != N / 2)
            simt::fail_at(site, false, "%s: its accumulator registers overlap those of a pending "
                          "wgmma.mma_async of another shape (%s:%d); wait for it first", site.what,
                          latest->site.file, latest->site.line);
        input = latest->result.data();
    }
    op.result.resize(N / 2);
    for (int i = 0; i < N / 2; i++) {
        const int h = (i >> 1) & 1, j = 2 * (i >> 2) + (i & 1);
        float sum = scale_d ? input[i] : 0.0f;
        for (int k = 0; k < 16; k++) sum += A[h][k] * B[j][k];
        op.result[i] = sum;
    }
    memset(d, 0xFF, sizeof(float) * (N / 2));
    t.wgmma_uncommitted.push_back(std::move(op));
}

static inline void wgmma_fence(const char* file, int line) {
    running_thread(simt::Site{file, line, "wgmma.fence"}).wgmma_fenced = true;
}

static inline void wgmma_commit_group(const char* file, int line) {
    simt::Thread& t = running_thread(simt::Site{file, line, "wgmma.commit_group"});
    t.wgmma_groups.push_back(std::move(t.wgmma_uncommitted));
    t.wgmma_uncommitted.clear();
}

// Completes every committed group but the n most recent: checks that the shared memory each
// operation read still holds what it read, then writes its result to its accumulator registers,
// unless a later operation still pending accumulates into them (they stay NaN until that one).
static inline void wgmma_wait_group(int n, const char* file, int line) {
    simt::Site site{file, line, "wgmma.wait_group"};
    simt::Thread& t = running_thread(site);
    const size_t keep = (size_t)n, groups = t.wgmma_groups.size();
    if (groups <= keep) return;
    const size_t done = groups - keep;
    for (size_t g = 0; g < done; g++)
        for (const simt::WgmmaOp& op : t.wgmma_groups[g]) {
            for (const auto& [p, bits] : op.operands) {
                uint16_t now;
                memcpy(&now, p, 2);
                if (now != bits)
                    simt::fail_at(site, false, "shared memory read by the wgmma.mma_async at %s:%d (shared "
                                  "address 0x%05x) was overwritten before the wgmma.wait_group that completes "
                                  "it; every warp of the warpgroup must wait for the operation (then a barrier) "
                                  "before its operands are written", op.site.file, op.site.line,
                                  simt::shared_address(p));
            }
            bool still_pending = false;
            for (size_t later = done; later < groups; later++)
                for (const simt::WgmmaOp& o : t.wgmma_groups[later]) still_pending |= o.accumulator == op.accumulator;
            for (const simt::WgmmaOp& o : t.wgmma_uncommitted) still_pending |= o.accumulator == op.accumulator;
            if (!still_pending) memcpy(op.accumulator, op.result.data(), sizeof(float) * op.registers);
        }
    t.wgmma_groups.erase(t.wgmma_groups.begin(), t.wgmma_groups.begin() + done);
    t.wgmma_fenced = false;
}

static inline uint32_t wgmma_shared_address(const void* p, uint32_t leading, uint32_t stride, const char* file, int line) {
    simt::Site site{file, line, "wgmma_descriptor"};
    if (!simt::is_shared_range(p, 16))
        simt::fail_at(site, false, "%s: %p is not inside the block's shared memory", site.what, p);
    if ((uintptr_t)p % 16 || leading % 16 || stride % 16)
        simt::fail_at(site, false, "%s: start %p, leading byte offset %u and stride byte offset %u must be "
                      "multiples of 16 (the descriptor drops their low 4 bits)", site.what, p, leading, stride);
    return simt::shared_address(p);
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

// ----------------------------------------------------------------------------------------------
// Warpgroup MMA (sm_90a). A warpgroup is 4 consecutive warps whose first warp index is a multiple
// of 4 (threads 128g .. 128g+127 of the block); every wgmma.mma_async is executed by all 128 of
// them with the same descriptors. The usual sequence, for each thread of the warpgroup:
//   write the operand tiles to shared memory; fence_proxy_async(); __syncthreads();
//   wgmma_fence();                        // before the first wgmma, and after touching its registers
//   wgmma_m64n64k16_bf16_*(...) x k;      // asynchronous: the accumulators are not yet valid
//   wgmma_commit_group(); wgmma_wait_group<0>(); wgmma_fence_operand(d);   // now they are
// and __syncthreads() before the shared memory a wgmma read is written again.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) || !defined(__CUDA_ARCH__)
#define PTX_HAS_WGMMA 1   // device code for sm_90a, the CPU emulation, and nvcc's host pass
#else
#define PTX_HAS_WGMMA 0   // other device targets: the wgmma wrappers trap
#endif

// Whether this build of the calling kernel has the wgmma instructions (false in device code for any
// target but sm_90a): a test asks a kernel, and skips on a GPU build without them.
__device__ __forceinline__ bool wgmma_available() { return PTX_HAS_WGMMA != 0; }

// The 64-bit matrix descriptor of a bf16 operand tile in shared memory (PTX ISA "Matrix Descriptor
// Format"): start address, leading and stride dimension byte offsets (LBO, SBO: multiples of 16),
// swizzling mode; base offset 0, so swizzled tiles must start their patterns on a 256 (32B),
// 512 (64B) or 1024 (128B) byte boundary. What LBO and SBO mean depends on the layout
// (dev/simt/TENSOR.md, "Warpgroup MMA").
__device__ __forceinline__ uint64_t wgmma_descriptor(const void* tile, uint32_t leading_byte_offset,
                                                     uint32_t stride_byte_offset, WgmmaSwizzle swizzle PTX_CALLER) {
#if defined(__CUDA_ARCH__)
    const uint32_t address = PTX_SHARED_ADDRESS(tile);
#elif defined(__CUDACC__)
    const uint32_t address = 0;   // nvcc host pass: never executed
#else
    const uint32_t address = ptx_emulation::wgmma_shared_address(tile, leading_byte_offset, stride_byte_offset,
                                                                 caller_file, caller_line);
#endif
    auto encode = [](uint32_t x) { return (uint64_t)((x & 0x3FFFFu) >> 4); };
    return encode(address) | encode(leading_byte_offset) << 16 | encode(stride_byte_offset) << 32 |
           (uint64_t)swizzle << 62;
}

// fence.proxy.async.shared::cta: makes this thread's earlier ordinary writes to shared memory
// visible to the async proxy, through which wgmma.mma_async reads its shared-memory operands.
__device__ __forceinline__ void fence_proxy_async(PTX_CALLER_ONLY) {
#if defined(__CUDA_ARCH__) && PTX_HAS_WGMMA
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#elif defined(__CUDA_ARCH__)
    __trap();
#elif defined(__CUDACC__)
#else
    ptx_emulation::running_thread(simt::Site{caller_file, caller_line, "fence.proxy.async"});
    simt::fence_proxy_async();
#endif
}

// wgmma.fence.sync.aligned: orders this thread's earlier accesses to registers (accumulators, A
// fragments) and shared memory before the wgmma.mma_async that follow.
__device__ __forceinline__ void wgmma_fence(PTX_CALLER_ONLY) {
#if defined(__CUDA_ARCH__) && PTX_HAS_WGMMA
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#elif defined(__CUDA_ARCH__)
    __trap();
#elif defined(__CUDACC__)
#else
    ptx_emulation::wgmma_fence(caller_file, caller_line);
#endif
}

// wgmma.commit_group.sync.aligned: the wgmma.mma_async this thread issued since its last commit
// become one wgmma-group (an empty one if none).
__device__ __forceinline__ void wgmma_commit_group(PTX_CALLER_ONLY) {
#if defined(__CUDA_ARCH__) && PTX_HAS_WGMMA
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#elif defined(__CUDA_ARCH__)
    __trap();
#elif defined(__CUDACC__)
#else
    ptx_emulation::wgmma_commit_group(caller_file, caller_line);
#endif
}

// wgmma.wait_group.sync.aligned N: waits until at most the N most recent wgmma-groups of this
// thread are pending; the accumulators (and A registers) of the completed ones may then be used,
// after wgmma_fence_operand on them.
template <int N>
__device__ __forceinline__ void wgmma_wait_group(PTX_CALLER_ONLY) {
    static_assert(N >= 0, "wgmma.wait_group takes a count >= 0");
#if defined(__CUDA_ARCH__) && PTX_HAS_WGMMA
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(N) : "memory");
#elif defined(__CUDA_ARCH__)
    __trap();
#elif defined(__CUDACC__)
#else
    ptx_emulation::wgmma_wait_group(N, caller_file, caller_line);
#endif
}

// Keeps the compiler from moving accesses to accumulator registers across the wgmma instructions
// (which do not name them, except wgmma.mma_async itself): call it on each accumulator array after
// wgmma_wait_group and before the first wgmma that uses registers written by other code. No
// instruction; nothing to do in the emulation.
template <int COUNT>
__device__ __forceinline__ void wgmma_fence_operand(float (&registers)[COUNT]) {
#if defined(__CUDA_ARCH__)
#pragma unroll
    for (int i = 0; i < COUNT; i++) asm volatile("" : "+f"(registers[i]) :: "memory");
#endif
}
// The same for A fragments in registers (they must stay unchanged until the wait).
template <int COUNT>
__device__ __forceinline__ void wgmma_fence_operand(uint32_t (&registers)[COUNT]) {
#if defined(__CUDA_ARCH__)
#pragma unroll
    for (int i = 0; i < COUNT; i++) asm volatile("" : "+r"(registers[i]) :: "memory");
#endif
}

#define PTX_WGMMA_D32 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
                      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define PTX_WGMMA_D32_OPERANDS(d)                                                                  \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
    "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),       \
    "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),     \
    "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),     \
    "+f"(d[29]), "+f"(d[30]), "+f"(d[31])

// D (64x64 f32) = A (64x16 bf16) * B (16x64 bf16) + (scale_d ? D : 0), both operands in shared
// memory: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 d, a-desc, b-desc, scale-d, 1, 1,
// TRANS_A, TRANS_B. TRANS_A 0: A is K-major (row-major 64x16), 1: M-major; TRANS_B 0: B is
// K-major (stored as 64 rows n of 16 k, like mma.sync's "col" B), 1: N-major. d: this thread's
// 32 accumulators (layout in TENSOR.md); asynchronous, see above.
template <int TRANS_A, int TRANS_B>
__device__ __forceinline__ void wgmma_m64n64k16_bf16_ss(float d[32], uint64_t desc_a, uint64_t desc_b,
                                                        int scale_d PTX_CALLER) {
    static_assert((TRANS_A == 0 || TRANS_A == 1) && (TRANS_B == 0 || TRANS_B == 1), "transpose flags are 0 or 1");
#if defined(__CUDA_ARCH__) && PTX_HAS_WGMMA
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " PTX_WGMMA_D32
                 ", %32, %33, p, 1, 1, %35, %36;\n}\n"
                 : PTX_WGMMA_D32_OPERANDS(d)
                 : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(TRANS_A), "n"(TRANS_B) : "memory");
#elif defined(__CUDA_ARCH__)
    __trap();
#elif defined(__CUDACC__)
#else
    ptx_emulation::wgmma_bf16<64>(d, nullptr, desc_a, desc_b, scale_d, TRANS_A, TRANS_B, caller_file, caller_line);
#endif
}

// The same with A from registers: a holds this thread's A fragment (4 registers, 8 bf16, in the
// layout of TENSOR.md: that of mma.m16n8k16's A, warp w of the warpgroup holding rows 16w..16w+15);
// wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 d, {a}, b-desc, scale-d, 1, 1, TRANS_B.
// The A registers, like the accumulators, must not change until the wait completes the operation.
template <int TRANS_B>
__device__ __forceinline__ void wgmma_m64n64k16_bf16_rs(float d[32], const uint32_t a[4], uint64_t desc_b,
                                                        int scale_d PTX_CALLER) {
    static_assert(TRANS_B == 0 || TRANS_B == 1, "the transpose flag is 0 or 1");
#if defined(__CUDA_ARCH__) && PTX_HAS_WGMMA
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " PTX_WGMMA_D32
                 ", {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
                 : PTX_WGMMA_D32_OPERANDS(d)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d), "n"(TRANS_B) : "memory");
#elif defined(__CUDA_ARCH__)
    __trap();
#elif defined(__CUDACC__)
#else
    ptx_emulation::wgmma_bf16<64>(d, a, 0, desc_b, scale_d, false, TRANS_B, caller_file, caller_line);
#endif
}
