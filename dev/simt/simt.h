// dev/simt/simt.h: the core of the CPU execution layer for CUDA kernels (g++ only).
// Every CUDA thread of a block is a fiber (Boost.Context) with its own small stack; blocks run
// one after another on the calling OS thread. Each round visits the ready fibers of a block in
// an order (forward, reverse, or a seeded random permutation drawn again at every round and
// barrier: simt::set_order, or SIMT_ORDER=forward|reverse|random:<seed>); a fiber runs until it
// blocks and then hands control straight to the next ready one. __syncthreads and
// the warp collectives park a fiber until every thread they wait for has arrived; the last one
// to arrive computes the result for all. Misuse that is undefined on a GPU (barriers reached
// from different lines, shuffles naming lanes that returned, deadlock) aborts with a message
// that names the kernel's file and line.
// Single-threaded by design: launch kernels from one OS thread at a time (checked).
// Kernel sources include kernels/cuda_common.h, not this file. Link with -lboost_context.
#pragma once
#if defined(__CUDACC__)
#error "dev/simt/simt.h is the CPU emulator; under nvcc include kernels/cuda_common.h instead"
#endif

#include <boost/context/fiber.hpp>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <math.h>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#define SIMT_CPU 1

// ----------------------------------------------------------------------------------------------
// CUDA keywords under g++.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __constant__  // a host global; set it with cudaMemcpyToSymbol as on a GPU
// A __shared__ variable becomes a function-local static: blocks run one after another and all
// threads of a block see the one static, so it is per-block storage. The launch rewrite puts
// SIMT_SHARED_POISON(name) after each such declaration in a function: the first thread of a block
// to pass it fills the variable with 0xFF bytes (NaN), so values left by the previous block are
// not seen (an uninitialised read shows as NaN, as for dynamic shared memory).
#define __shared__ static
#define SIMT_SHARED_POISON(name) simt::poison_static_shared(&(name), sizeof(name))

// ----------------------------------------------------------------------------------------------
// Vector types (same sizes and alignments as CUDA's).
struct __align__(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(16) double2 { double x, y; };
struct __align__(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned x, y; };
struct uint3 { unsigned x, y, z; };
struct __align__(16) uint4 { unsigned x, y, z, w; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

// Thread indices of the running fiber; the scheduler sets them before resuming it.
inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;
constexpr int warpSize = 32;

namespace simt {

// Where a thread waits: the call site of the barrier or collective, and its name.
struct Site {
    const char* file = nullptr;
    int line = 0;
    const char* what = "";
};

enum class Wait { Running, Barrier, Warp, Warpgroup, Done };

// The order in which a round visits the ready threads of a block. Random draws a new permutation
// (from a seeded generator) at the start of every round and at every barrier.
enum class Order { Forward, Reverse, Random };

// An execution context: a kernel thread's fiber or the scheduler (the launching OS thread).
struct Context {
    boost::context::fiber fiber;   // its continuation while it is suspended
    const void* stack_bottom = nullptr;  // lowest address of its stack (for ASan)
    size_t stack_size = 0;
    void* asan_fake_stack = nullptr;
};

// One 16-byte cp.async copy (kernels/ptx.cuh) issued by a thread and not yet waited for: its
// source bytes (read at issue) and where they land when a cp.async.wait_group completes it.
struct AsyncCopy {
    void* dst;
    unsigned char data[16];
};

// One wgmma.mma_async (kernels/ptx.cuh) as seen by one thread, issued and not yet waited for: its
// accumulator registers, the values they receive when a wgmma.wait_group completes it, and the
// shared-memory elements it read (address and bits), which must still hold those bits then.
struct WgmmaOp {
    float* accumulator = nullptr;
    int registers = 0;
    std::vector<float> result;
    std::vector<std::pair<const uint16_t*, uint16_t>> operands;
    Site site;
};

struct Thread {
    Context context;
    uint3 idx;
    Wait wait = Wait::Running;
    Site site;
    unsigned warp_mask = 0;        // the mask it passed, while it waits in a warp collective
    bool predicate = false;        // its __syncthreads_count/and/or operand
    bool ready = false;
    // cp.async copies issued and not yet committed, then the committed groups, oldest first
    std::vector<AsyncCopy> async_uncommitted;
    std::vector<std::vector<AsyncCopy>> async_groups;
    // wgmma.mma_async operations issued and not yet committed, then the committed groups, oldest
    // first; and whether a wgmma.fence came since the start or the last completing wait_group
    std::vector<WgmmaOp> wgmma_uncommitted;
    std::vector<std::vector<WgmmaOp>> wgmma_groups;
    bool wgmma_fenced = false;
};

// One warp collective in progress: the lanes that posted so far and where their data lives.
struct WarpMeet {
    unsigned mask = 0;     // lanes taking part
    unsigned arrived = 0;  // lanes that posted
    size_t bytes = 0;
    bool select = false;   // each lane receives one lane's value (src) instead of all 32
    Site site;
    const void* mine[32];
    void* all[32];         // where each lane receives (32*bytes, or bytes when select)
    int src[32];           // select: the lane whose value each lane receives (-1: poison)
};

// A warpgroup collective in progress (kernels/ptx.cuh's wgmma.mma_async): the threads of the
// warpgroup (4 consecutive warps, the first one's index a multiple of 4) that posted so far.
struct WarpgroupMeet {
    unsigned arrived = 0;  // how many of the 128 threads posted
    size_t bytes = 0;
    Site site;
    const void* mine[128];
    std::vector<unsigned char> all;  // the 128 posted values, once all arrived
};

// A warp's open collectives (several at once when divergent branches use disjoint masks).
struct Warp {
    unsigned returned = 0;  // lanes that returned from the kernel
    std::vector<WarpMeet> open;
};

// A fiber stack: mmap'd, with a PROT_NONE guard page below it so an overflow faults at once.
struct Stack {
    void* base = nullptr;  // start of the mapping (the guard page)
    size_t mapped = 0;
};

#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kStackBytes = 512 * 1024;  // ASan's redzones make frames several times larger
#else
constexpr size_t kStackBytes = 64 * 1024;
#endif

// Hands a prepared stack to boost::context::fiber; the pool owns the memory. The top of the
// stack of thread i is lowered by (i % 64) cache lines: otherwise the hot top lines of all the
// stacks (same offset in same-sized mappings) compete for the same few cache sets.
struct PoolStackAllocator {
    Stack* stack;
    unsigned colour;  // 0..63
    boost::context::stack_context allocate() {
        boost::context::stack_context sc;
        sc.size = stack->mapped - (size_t)sysconf(_SC_PAGESIZE) - colour * 64;
        sc.sp = (char*)stack->base + stack->mapped - colour * 64;  // stacks grow down
        return sc;
    }
    void deallocate(boost::context::stack_context&) {}
};

struct Engine {
    // launch-wide
    Site launch_site;             // file:line and name of the launch statement
    void (*body)(void*) = nullptr;
    void* body_ctx = nullptr;
    bool launch_over = false;
    Order order = Order::Forward;
    std::vector<unsigned> permutation;  // Random: the visiting order of this round
    std::vector<unsigned> rank;         // Random: each thread's place in it
    std::vector<Stack> stacks;    // reused across launches
    std::vector<Thread> threads;  // one per thread of a block, reused across blocks
    unsigned nthreads = 0;
    std::vector<unsigned char> dynamic_smem_storage;
    unsigned char* dynamic_smem = nullptr;
    size_t dynamic_smem_bytes = 0;
    // block-wide
    unsigned live = 0;            // threads that have not returned
    unsigned barrier_arrived = 0;
    unsigned barrier_count = 0;   // threads whose predicate held at the last barrier
    std::vector<Warp> warps;
    std::vector<WarpgroupMeet> warpgroups;
    std::vector<unsigned char> gather;  // scratch for a warp collective's gathered data
    struct SharedRange { const void* p; size_t bytes; };
    std::vector<SharedRange> static_shared_filled;  // __shared__ statics poisoned in this block
    // The async proxy's view of the block's shared memory (what wgmma.mma_async reads): a copy of
    // the dynamic shared memory and of each static in static_shared_filled, 0xFF bytes at the
    // block's start, brought up to date only by fence.proxy.async (simt::fence_proxy_async).
    std::vector<unsigned char> async_view_dynamic;
    std::vector<std::vector<unsigned char>> async_view_static;
    // the running thread, the scheduler, and the context that made the latest switch
    Thread* current = nullptr;
    Context scheduler;
    Context* switched_from = nullptr;
};

inline Engine g_engine;
inline int g_order_override = -1;           // -1: follow SIMT_ORDER; else an Order
inline uint64_t g_order_rng = 0;            // state of the Random order's generator (splitmix64)
inline int g_last_launch_error = 0;         // a cudaError_t value, read by cudaGetLastError
inline std::atomic<int> g_launch_in_progress{0};
inline unsigned long g_launch_count = 0;    // launches so far (kernel_test.h checks their orders)

// The emulated GPU's compute capability (major*10 + minor), sm_90 unless set_arch says otherwise,
// and the per-architecture maximum of dynamic shared memory a block may opt in to.
inline int g_arch = 90;
inline size_t max_dynamic_shared_optin(int arch) {
    switch (arch) {
        case 70: return 96 * 1024;
        case 75: return 64 * 1024;
        case 80: case 87: return 163 * 1024;
        case 86: case 89: case 120: return 99 * 1024;
        case 90: case 100: return 227 * 1024;
    }
    return 0;
}
// Emulates sm_<arch> (70, 75, 80, 86, 87, 89, 90, 100, 120); false for another value.
inline bool set_arch(int arch) {
    if (max_dynamic_shared_optin(arch) == 0) return false;
    g_arch = arch;
    return true;
}
// Without an opt-in a block gets at most 48 KiB of dynamic shared memory (on every architecture);
// cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, n) records n here.
constexpr size_t kDefaultMaxDynamicShared = 48 * 1024;
inline std::unordered_map<const void*, size_t> g_max_dynamic_shared;

// Sets the order of every later launch's rounds, overriding the SIMT_ORDER environment variable;
// seed starts the Random order's generator (the same seed and launches give the same schedule).
inline void set_order(Order order, uint64_t seed = 0) {
    g_order_override = (int)order;
    g_order_rng = seed;
}

inline uint64_t next_random() {  // splitmix64
    uint64_t z = (g_order_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

inline unsigned linear_thread_index(uint3 t) {
    return t.x + blockDim.x * (t.y + blockDim.y * t.z);
}
// Lane of the calling thread within its warp (linear thread index % 32).
inline unsigned lane_id() { return linear_thread_index(threadIdx) % 32; }

// Fills a static __shared__ variable with 0xFF bytes the first time a thread of the running block
// reaches its declaration (see SIMT_SHARED_POISON); later threads of the block find it filled.
inline void poison_static_shared(void* p, size_t bytes) {
    std::vector<Engine::SharedRange>& filled = g_engine.static_shared_filled;
    for (const Engine::SharedRange& q : filled)
        if (q.p == p) return;
    filled.push_back({p, bytes});
    memset(p, 0xFF, bytes);
    g_engine.async_view_static.emplace_back(bytes, (unsigned char)0xFF);
}

// Dynamic shared memory of the running block (poisoned with 0xFF bytes before each block).
inline void* dynamic_shared_memory() { return g_engine.dynamic_smem; }

// Whether [p, p + bytes) lies inside the running block's shared memory: its dynamic shared memory,
// or a static __shared__ variable a thread of the block has reached (see SIMT_SHARED_POISON).
inline bool is_shared_range(const void* p, size_t bytes) {
    const Engine& E = g_engine;
    auto inside = [&](const void* base, size_t size) {
        const uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
        return a >= b && a + bytes <= b + size;
    };
    if (E.dynamic_smem && inside(E.dynamic_smem, E.dynamic_smem_bytes)) return true;
    for (const Engine::SharedRange& r : E.static_shared_filled)
        if (inside(r.p, r.bytes)) return true;
    return false;
}

// The shared state space's address of a pointer into the block's shared memory, as
// __cvta_generic_to_shared gives it on a GPU: here the pointer's low 18 bits (the bits a wgmma
// matrix descriptor keeps), so an address is aligned to 2^k (k <= 18) exactly when the pointer is.
constexpr uint32_t kSharedAddressMask = 0x3FFFF;
inline uint32_t shared_address(const void* p) { return (uint32_t)((uintptr_t)p & kSharedAddressMask); }

// The pointer into the block's shared memory whose shared address is `address` and which has
// `bytes` bytes of shared memory from there; nullptr if none does. *async_view receives the same
// bytes in the async proxy's view (Engine::async_view_dynamic / _static).
inline unsigned char* shared_pointer_at(uint32_t address, size_t bytes, const unsigned char** async_view) {
    Engine& E = g_engine;
    auto find = [&](unsigned char* base, size_t size, const unsigned char* view) -> unsigned char* {
        const size_t offset = (address - shared_address(base)) & kSharedAddressMask;
        if (offset + bytes > size) return nullptr;
        *async_view = view + offset;
        return base + offset;
    };
    if (E.dynamic_smem)
        if (unsigned char* p = find(E.dynamic_smem, E.dynamic_smem_bytes, E.async_view_dynamic.data())) return p;
    for (size_t i = 0; i < E.static_shared_filled.size(); i++) {
        const Engine::SharedRange& r = E.static_shared_filled[i];
        if (unsigned char* p = find((unsigned char*)r.p, r.bytes, E.async_view_static[i].data())) return p;
    }
    return nullptr;
}

// fence.proxy.async: the async proxy's view of shared memory catches up with every write made so
// far (by any thread: the layer cannot tell which thread wrote what, so a fence by one thread
// also publishes the writes other threads made before it).
inline void fence_proxy_async() {
    Engine& E = g_engine;
    if (E.dynamic_smem_bytes) memcpy(E.async_view_dynamic.data(), E.dynamic_smem, E.dynamic_smem_bytes);
    for (size_t i = 0; i < E.static_shared_filled.size(); i++)
        memcpy(E.async_view_static[i].data(), E.static_shared_filled[i].p, E.static_shared_filled[i].bytes);
}

// ----------------------------------------------------------------------------------------------
// Diagnostics.

// Prints "threads a-b: <wait> at file:line" lines, grouping consecutive threads that wait alike.
inline void describe_threads(FILE* out, bool only_waiting_at_barrier) {
    Engine& E = g_engine;
    auto same = [](const Thread& a, const Thread& b) {
        if (a.wait != b.wait) return false;
        if (a.wait == Wait::Done || a.wait == Wait::Running) return true;
        return a.site.line == b.site.line && strcmp(a.site.file, b.site.file) == 0 &&
               strcmp(a.site.what, b.site.what) == 0 && a.warp_mask == b.warp_mask;
    };
    for (unsigned i = 0; i < E.nthreads;) {
        const Thread& t = E.threads[i];
        unsigned j = i + 1;
        while (j < E.nthreads && same(E.threads[j], t)) j++;
        if (!only_waiting_at_barrier || t.wait == Wait::Barrier) {
            if (j - i == 1) fprintf(out, "  thread %u", i);
            else fprintf(out, "  threads %u-%u", i, j - 1);
            switch (t.wait) {
                case Wait::Done: fprintf(out, ": returned\n"); break;
                case Wait::Running: fprintf(out, ": not waiting (running, or not yet resumed)\n"); break;
                case Wait::Barrier:
                    fprintf(out, ": wait in %s at %s:%d\n", t.site.what, t.site.file, t.site.line);
                    break;
                case Wait::Warp:
                    fprintf(out, ": wait in %s (mask 0x%08x) at %s:%d\n", t.site.what, t.warp_mask,
                            t.site.file, t.site.line);
                    break;
                case Wait::Warpgroup:
                    fprintf(out, ": wait in %s (warpgroup %u) at %s:%d\n", t.site.what, i / 128,
                            t.site.file, t.site.line);
                    break;
            }
        }
        i = j;
    }
}

// Prints "simt: error at file:line: <message>", the block and launch, and aborts.
[[noreturn]] inline void fail_at(Site site, bool list_threads, const char* fmt, ...) {
    Engine& E = g_engine;
    fflush(stdout);
    fprintf(stderr, "simt: error at %s:%d: ", site.file ? site.file : "?", site.line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  in block (%u,%u,%u) of kernel %s launched at %s:%d\n", blockIdx.x,
            blockIdx.y, blockIdx.z, E.launch_site.what, E.launch_site.file, E.launch_site.line);
    if (list_threads) describe_threads(stderr, false);
    fflush(stderr);
    abort();
}

// ----------------------------------------------------------------------------------------------
// Fiber switching (with the AddressSanitizer annotations that keep ASan aware of stack changes).

// Marks bytes as not addressable (ASan reports any access) or addressable again; no-ops
// without ASan.
inline void asan_poison(const void* p, size_t bytes) {
#if defined(__SANITIZE_ADDRESS__)
    ASAN_POISON_MEMORY_REGION(p, bytes);
#endif
    (void)p, (void)bytes;
}
inline void asan_unpoison(const void* p, size_t bytes) {
#if defined(__SANITIZE_ADDRESS__)
    ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#endif
    (void)p, (void)bytes;
}

inline void asan_start_switch(void** fake_stack_save, const void* bottom, size_t size) {
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#endif
}
inline void asan_finish_switch(void* fake_stack_save, const void** old_bottom, size_t* old_size) {
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(fake_stack_save, old_bottom, old_size);
#endif
}

// Suspends `from` (the running context) and resumes `to`. When someone later resumes `from`,
// the continuation of that someone is stored in its own Context (it set switched_from).
inline void switch_context(Context& from, Context& to) {
    Engine& E = g_engine;
    E.switched_from = &from;
    asan_start_switch(&from.asan_fake_stack, to.stack_bottom, to.stack_size);
    boost::context::fiber resumer = std::move(to.fiber).resume();
    const void* bottom = nullptr;
    size_t size = 0;
    asan_finish_switch(from.asan_fake_stack, &bottom, &size);
    if (E.switched_from == &E.scheduler) {  // learn the launching thread's stack (for ASan)
        E.scheduler.stack_bottom = bottom;
        E.scheduler.stack_size = size;
    }
    E.switched_from->fiber = std::move(resumer);
}

// The next thread to run in this round after thread `after` (nullptr: from the round's start),
// in the launch's order (forward, reverse or this round's permutation); nullptr when none is ready.
inline Thread* next_ready(const Thread* after) {
    Engine& E = g_engine;
    Thread* threads = E.threads.data();
    const long n = (long)E.nthreads;
    if (E.order == Order::Random) {
        for (long k = after ? E.rank[after - threads] + 1 : 0; k < n; k++)
            if (threads[E.permutation[k]].ready) return &threads[E.permutation[k]];
    } else if (E.order == Order::Forward) {
        for (long k = after ? after - threads + 1 : 0; k < n; k++)
            if (threads[k].ready) return &threads[k];
    } else {
        for (long k = after ? after - threads - 1 : n - 1; k >= 0; k--)
            if (threads[k].ready) return &threads[k];
    }
    return nullptr;
}

// Random order: a new permutation of the block's threads (Fisher-Yates).
inline void shuffle_order() {
    Engine& E = g_engine;
    if (E.order != Order::Random) return;
    for (unsigned i = E.nthreads - 1; i > 0; i--) {
        const unsigned j = (unsigned)(next_random() % (i + 1));
        std::swap(E.permutation[i], E.permutation[j]);
    }
    for (unsigned k = 0; k < E.nthreads; k++) E.rank[E.permutation[k]] = k;
}

// Makes thread t the running one (its indices, its context), switching from `from`.
inline void run_thread(Context& from, Thread& t) {
    Engine& E = g_engine;
    t.ready = false;
    E.current = &t;
    threadIdx = t.idx;
    switch_context(from, t.context);
}

// The running thread waits until someone marks it ready: control passes straight to the next
// ready thread of the round, or back to the scheduler, which starts a new round.
inline void park() {
    Engine& E = g_engine;
    Thread* t = E.current;
    if (Thread* next = next_ready(t)) run_thread(t->context, *next);
    else switch_context(t->context, E.scheduler);
}

// ----------------------------------------------------------------------------------------------
// __syncthreads.

// Lets every thread waiting at the barrier go on, after checking they all came from one line.
// (Every thread of the block is there: returning before a barrier is diagnosed.)
inline void release_barrier() {
    Engine& E = g_engine;
    const Thread* first = nullptr;
    for (unsigned i = 0; i < E.nthreads; i++) {
        const Thread& t = E.threads[i];
        if (t.wait != Wait::Barrier) continue;
        if (!first) { first = &t; continue; }
        if (t.site.line != first->site.line ||
            (t.site.file != first->site.file && strcmp(t.site.file, first->site.file) != 0)) {
            fflush(stdout);
            fprintf(stderr,
                    "simt: error at %s:%d: __syncthreads reached from different lines by threads of "
                    "one block (also %s:%d); every thread must pass the same barrier\n"
                    "  in block (%u,%u,%u) of kernel %s launched at %s:%d\n",
                    first->site.file, first->site.line, t.site.file, t.site.line, blockIdx.x,
                    blockIdx.y, blockIdx.z, E.launch_site.what, E.launch_site.file,
                    E.launch_site.line);
            describe_threads(stderr, true);
            fflush(stderr);
            abort();
        }
    }
    E.barrier_count = 0;
    for (unsigned i = 0; i < E.nthreads; i++) {
        Thread& t = E.threads[i];
        if (t.wait != Wait::Barrier) continue;
        E.barrier_count += t.predicate;
        t.wait = Wait::Running;
        if (&t != E.current) t.ready = true;
    }
    E.barrier_arrived = 0;
    shuffle_order();  // the threads leave the barrier in a new order
}

// __syncthreads; returns how many of the threads passing it had a true predicate (read at once
// on resuming, before the next barrier can complete and overwrite it).
inline int syncthreads(const char* file, int line, int predicate = 0) {
    Engine& E = g_engine;
    Thread* t = E.current;
    t->wait = Wait::Barrier;
    t->site = Site{file, line, "__syncthreads"};
    t->predicate = predicate != 0;
    if (E.live < E.nthreads)
        fail_at(t->site, true,
                "__syncthreads reached after %u thread(s) of the block returned; every thread "
                "must reach every barrier (no early return before a barrier)",
                E.nthreads - E.live);
    E.barrier_arrived++;
    if (E.barrier_arrived == E.live) release_barrier();
    else park();
    return (int)E.barrier_count;
}

// ----------------------------------------------------------------------------------------------
// Warp collectives.

// Copies every posting lane's value to every posting lane, then lets the waiting lanes go on.
inline void complete_meet(unsigned warp, size_t index) {
    Engine& E = g_engine;
    WarpMeet& m = E.warps[warp].open[index];
    size_t b = m.bytes;
    if (m.select) {
        for (unsigned i = 0; i < 32; i++) {
            if (!(m.mask >> i & 1)) continue;
            const int s = m.src[i];
            if (s >= 0 && (m.mask >> s & 1)) {
                if (b == 4) memcpy(m.all[i], m.mine[s], 4);
                else memcpy(m.all[i], m.mine[s], b);
            } else {
                memset(m.all[i], 0xFF, b);
            }
        }
    } else if (b > 0) {
        if (E.gather.size() < 32 * b) E.gather.resize(32 * b);
        unsigned char* g = E.gather.data();
        for (unsigned j = 0; j < 32; j++)
            if (m.mask >> j & 1) memcpy(g + j * b, m.mine[j], b);
        for (unsigned i = 0; i < 32; i++) {
            if (!(m.mask >> i & 1)) continue;
            if (m.mask == 0xffffffffu) { memcpy(m.all[i], g, 32 * b); continue; }
            for (unsigned j = 0; j < 32; j++)
                if (m.mask >> j & 1) memcpy((unsigned char*)m.all[i] + j * b, g + j * b, b);
        }
    }
    for (unsigned i = 0; i < 32; i++) {
        if (!(m.mask >> i & 1)) continue;
        Thread& t = E.threads[warp * 32 + i];
        t.wait = Wait::Running;
        if (&t != E.current) t.ready = true;
    }
    std::vector<WarpMeet>& open = E.warps[warp].open;
    if (index + 1 != open.size()) open[index] = open.back();
    open.pop_back();
}

// The rendezvous behind every warp collective; site.what names the intrinsic for diagnostics.
// Each lane named in mask posts `bytes` at `mine`; when all have posted, `all` receives the 32
// values (lane i's at offset i*bytes; lanes outside the mask untouched) or, when src_lane >= -1
// (a shuffle), just the value of lane src_lane (0xFF bytes for -1 or a lane outside the mask).
inline void warp_collective(unsigned mask, const void* mine, void* all, size_t bytes, Site site,
                            int src_lane = -2) {
    Engine& E = g_engine;
    Thread* t = E.current;
    unsigned linear = (unsigned)(t - E.threads.data());
    unsigned warp = linear / 32, lane = linear % 32;
    if (!(mask >> lane & 1))
        fail_at(site, false, "%s called by lane %u with mask 0x%08x, which does not name it",
                site.what, lane, mask);
    unsigned existing = E.nthreads - warp * 32 >= 32 ? 0xffffffffu
                                                     : (1u << (E.nthreads - warp * 32)) - 1;
    if (mask & ~existing)
        fail_at(site, false,
                "%s with mask 0x%08x names lanes that do not exist: warp %u has only %u threads "
                "(blockDim %ux%ux%u)",
                site.what, mask, warp, __builtin_popcount(existing), blockDim.x, blockDim.y,
                blockDim.z);
    Warp& w = E.warps[warp];
    unsigned exited = mask & w.returned;
    if (exited)
        fail_at(site, true,
                "%s with mask 0x%08x names lanes that already returned (lanes 0x%08x of warp %u); "
                "no early return before a collective that names the lane",
                site.what, mask, exited, warp);
    const bool select = src_lane >= -1;
    // join the open collective of this kind and mask that awaits this lane, or open a new one
    // (lanes whose masks disagree never meet: that shows up as a deadlock, masks listed)
    size_t index = 0;
    for (; index < w.open.size(); index++) {
        const WarpMeet& o = w.open[index];
        if (o.mask == mask && !(o.arrived >> lane & 1) && o.bytes == bytes && o.select == select &&
            (o.site.what == site.what || strcmp(o.site.what, site.what) == 0))
            break;
    }
    if (index == w.open.size()) {
        w.open.emplace_back();
        WarpMeet& m = w.open.back();
        m.mask = mask;
        m.arrived = 0;
        m.bytes = bytes;
        m.select = select;
        m.site = site;
    }
    WarpMeet& m = w.open[index];
    m.mine[lane] = mine;
    m.all[lane] = all;
    m.src[lane] = src_lane;
    m.arrived |= 1u << lane;
    t->wait = Wait::Warp;
    t->site = site;
    t->warp_mask = mask;
    if (m.arrived == m.mask) complete_meet(warp, index);
    else park();
}

// The rendezvous of a warpgroup: the 128 threads 128*g .. 128*g+127 of the block (warps 4g..4g+3)
// each post `bytes` at `mine`; when all have, every one gets back the 128 values (thread i's at
// offset i*bytes of the warpgroup), valid until the warpgroup's next collective completes (which
// cannot happen before every thread has left this one). Every thread must come from the same
// instruction (site.what) on the same line; the warpgroup must be complete and none of its
// threads returned.
inline const unsigned char* warpgroup_collective(const void* mine, size_t bytes, Site site) {
    Engine& E = g_engine;
    Thread* t = E.current;
    const unsigned linear = (unsigned)(t - E.threads.data()), group = linear / 128;
    if (E.nthreads < 128 * (group + 1))
        fail_at(site, false,
                "%s needs a whole warpgroup (4 warps, 128 threads): thread %u is in warpgroup %u, "
                "but the block has only %u threads (blockDim %ux%ux%u); make the block size a "
                "multiple of 128", site.what, linear, group, E.nthreads, blockDim.x, blockDim.y, blockDim.z);
    for (unsigned w = 4 * group; w < 4 * group + 4; w++)
        if (E.warps[w].returned)
            fail_at(site, true, "%s in warpgroup %u, but lanes 0x%08x of its warp %u already returned; "
                    "every thread of the warpgroup must execute it", site.what, group, E.warps[w].returned, w);
    WarpgroupMeet& m = E.warpgroups[group];
    if (m.arrived == 0) {
        m.site = site;
        m.bytes = bytes;
    } else if (m.site.line != site.line || strcmp(m.site.file, site.file) != 0 ||
               strcmp(m.site.what, site.what) != 0 || m.bytes != bytes) {
        fail_at(site, true, "threads of warpgroup %u in different instructions: %s here and %s at %s:%d; "
                "every thread of a warpgroup must execute the same .aligned instruction", group,
                site.what, m.site.what, m.site.file, m.site.line);
    }
    m.mine[linear % 128] = mine;
    m.arrived++;
    t->wait = Wait::Warpgroup;
    t->site = site;
    if (m.arrived == 128) {
        m.all.resize(128 * bytes);
        for (unsigned i = 0; i < 128; i++) memcpy(m.all.data() + i * bytes, m.mine[i], bytes);
        m.arrived = 0;
        for (unsigned i = 128 * group; i < 128 * group + 128; i++) {
            Thread& u = E.threads[i];
            u.wait = Wait::Running;
            if (&u != t) u.ready = true;
        }
    } else {
        park();
    }
    return m.all.data();
}

// Warp rendezvous: every lane named in `mask` calls this with its own `bytes`-sized value; it
// returns when all of them have posted, and `all` then holds 32*bytes (lane i's value at offset
// i*bytes; entries of lanes outside the mask are left untouched). file/line name the call site.
inline void warp_allgather(unsigned mask, const void* mine, void* all, size_t bytes,
                           const char* file, int line) {
    warp_collective(mask, mine, all, bytes, Site{file, line, "warp_allgather"});
}

enum class Shfl { Idx, Up, Down, Xor };

inline int width_arg(int width = 32) { return width; }
inline unsigned mask_arg(unsigned mask = 0xffffffffu) { return mask; }

// __shfl_*_sync: the value of the source lane CUDA's rules give (own value where they say so).
// A source lane outside the mask gives 0xFF bytes (NaN for floats): undefined on a GPU.
template <class T>
T shuffle(Shfl mode, unsigned mask, T var, int arg, int width, const char* what, const char* file,
          int line) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 16,
                  "shuffle a trivially copyable value of at most 16 bytes");
    Site site{file, line, what};
    if (width < 1 || width > 32 || (width & (width - 1)))
        fail_at(site, false, "%s width %d is not a power of two in 1..32", what, width);
    const int lane = (int)lane_id();
    const int base = lane & ~(width - 1), in_group = lane & (width - 1);
    int src = lane;
    switch (mode) {
        case Shfl::Idx: src = base + (arg & (width - 1)); break;
        case Shfl::Up: src = in_group - arg < 0 ? lane : lane - arg; break;
        case Shfl::Down: src = in_group + arg >= width ? lane : lane + arg; break;
        case Shfl::Xor: src = lane ^ arg; if (src >= base + width) src = lane; break;
    }
    if (src < 0 || src > 31) src = -1;
    T result;
    warp_collective(mask, &var, &result, sizeof(T), site, src);
    return result;
}

inline unsigned ballot(unsigned mask, int predicate, const char* what, const char* file, int line) {
    int mine = predicate != 0, all[32];
    warp_collective(mask, &mine, all, sizeof(int), Site{file, line, what});
    unsigned result = 0;
    for (unsigned j = 0; j < 32; j++)
        if ((mask >> j & 1) && all[j]) result |= 1u << j;
    return result;
}

inline bool all_sync(unsigned mask, int predicate, const char* file, int line) {
    return ballot(mask, predicate, "__all_sync", file, line) == mask;
}

inline void syncwarp(unsigned mask, const char* file, int line) {
    warp_collective(mask, nullptr, nullptr, 0, Site{file, line, "__syncwarp"});
}

// ----------------------------------------------------------------------------------------------
// Thread exit and the scheduler.

// Called when a thread returns from the kernel: no barrier may be waiting for it, and no warp
// collective its lanes wait in may name it.
inline void thread_exit() {
    Engine& E = g_engine;
    Thread* t = E.current;
    unsigned linear = (unsigned)(t - E.threads.data());
    t->wait = Wait::Done;
    E.live--;
    Warp& w = E.warps[linear / 32];
    w.returned |= 1u << (linear % 32);
    for (const WarpMeet& m : w.open)
        if (m.mask >> (linear % 32) & 1)
            fail_at(m.site, true,
                    "lane %u of warp %u returned while other lanes wait in %s with mask 0x%08x, "
                    "which names it; no early return before a collective that names the lane",
                    linear % 32, linear / 32, m.site.what, m.mask);
    if (linear / 128 < E.warpgroups.size() && E.warpgroups[linear / 128].arrived > 0) {
        const WarpgroupMeet& m = E.warpgroups[linear / 128];
        fail_at(m.site, true,
                "thread %u returned while other threads of its warpgroup %u wait in %s; every thread "
                "of the warpgroup must execute it", linear, linear / 128, m.site.what);
    }
    if (E.barrier_arrived > 0) {
        const Thread* waiting = E.threads.data();
        while (waiting->wait != Wait::Barrier) waiting++;
        fail_at(waiting->site, true,
                "thread %u returned while other threads wait at __syncthreads; every thread must "
                "reach every barrier (no early return before a barrier)",
                linear);
    }
}

inline boost::context::fiber thread_main(boost::context::fiber&& resumer) {
    Engine& E = g_engine;
    const void* bottom = nullptr;
    size_t size = 0;
    asan_finish_switch(nullptr, &bottom, &size);
    if (E.switched_from == &E.scheduler) {
        E.scheduler.stack_bottom = bottom;
        E.scheduler.stack_size = size;
    }
    E.switched_from->fiber = std::move(resumer);
    while (!E.launch_over) {
        E.body(E.body_ctx);
        thread_exit();
        park();  // until the next block starts (or the launch ends)
    }
    // the launch is over: this fiber ends and control returns to the scheduler
    Context& self = E.current->context;
    E.switched_from = &self;
    asan_start_switch(nullptr, E.scheduler.stack_bottom, E.scheduler.stack_size);
    return std::move(E.scheduler.fiber);
}

[[noreturn]] inline void deadlock() {
    Engine& E = g_engine;
    fflush(stdout);
    fprintf(stderr,
            "simt: error: deadlock: no thread of the block can go on; each waits as listed\n"
            "  in block (%u,%u,%u) of kernel %s launched at %s:%d\n",
            blockIdx.x, blockIdx.y, blockIdx.z, E.launch_site.what, E.launch_site.file,
            E.launch_site.line);
    describe_threads(stderr, false);
    fflush(stderr);
    abort();
}

inline void run_block() {
    Engine& E = g_engine;
    unsigned n = E.nthreads;
    E.live = n;
    E.barrier_arrived = 0;
    E.static_shared_filled.clear();
    for (Warp& w : E.warps) {
        w.returned = 0;
        w.open.clear();
    }
    for (WarpgroupMeet& m : E.warpgroups) m.arrived = 0;
    E.async_view_dynamic.assign(E.dynamic_smem_bytes, (unsigned char)0xFF);
    E.async_view_static.clear();
    for (Thread& t : E.threads) {
        t.wait = Wait::Running;
        t.ready = true;
        // copies a thread of the previous block never waited for die with its shared memory
        t.async_uncommitted.clear();
        t.async_groups.clear();
        t.wgmma_uncommitted.clear();
        t.wgmma_groups.clear();
        t.wgmma_fenced = false;
    }
    if (E.dynamic_smem_bytes) memset(E.dynamic_smem, 0xFF, E.dynamic_smem_bytes);
    while (E.live > 0) {  // one round: the ready threads run in order, each handing on
        shuffle_order();
        Thread* first = next_ready(nullptr);
        if (!first) deadlock();
        run_thread(E.scheduler, *first);
    }
    E.current = nullptr;
}

// SIGSEGV handler: a fault in a fiber stack's guard page is a kernel thread overflowing its
// stack; say so (which thread, which launch) instead of dying silently. Other faults go on to
// the default action. (Not installed under ASan, which reports stack overflows itself.)
inline void on_segv(int, siginfo_t* info, void*) {
    Engine& E = g_engine;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (const Stack& st : E.stacks) {
        const char* a = (const char*)info->si_addr;
        if (a >= (const char*)st.base && a < (const char*)st.base + page && E.current) {
            fprintf(stderr,
                    "simt: error: thread (%u,%u,%u) of block (%u,%u,%u) overflowed its %zu KiB "
                    "fiber stack (large local arrays or deep recursion in the kernel)\n"
                    "  in kernel %s launched at %s:%d\n",
                    threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y, blockIdx.z,
                    kStackBytes / 1024, E.launch_site.what, E.launch_site.file,
                    E.launch_site.line);
            abort();
        }
    }
    signal(SIGSEGV, SIG_DFL);  // not ours: fault again, with the default action
}

inline void install_overflow_handler() {
#if !defined(__SANITIZE_ADDRESS__)
    static bool installed = false;
    if (installed) return;
    installed = true;
    static std::vector<char> alternate_stack(64 * 1024);  // the handler cannot run on the full one
    stack_t ss{};
    ss.ss_sp = alternate_stack.data();
    ss.ss_size = alternate_stack.size();
    sigaltstack(&ss, nullptr);
    struct sigaction sa{};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
#endif
}

inline void ensure_stacks(unsigned n) {
    Engine& E = g_engine;
    install_overflow_handler();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    while (E.stacks.size() < n) {
        Stack s;
        s.mapped = kStackBytes + page;
        s.base = mmap(nullptr, s.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s.base == MAP_FAILED) {
            fprintf(stderr, "simt: error: mmap of a %zu-byte fiber stack failed\n", s.mapped);
            abort();
        }
        mprotect(s.base, page, PROT_NONE);  // guard page below the stack
        E.stacks.push_back(s);
    }
}

// Runs body(ctx) as every thread of every block of the grid. Returns a cudaError_t value.
// max_dynamic_smem: what the kernel may ask for (48 KiB, or its cudaFuncSetAttribute opt-in).
inline int run_grid(Site launch_site, dim3 grid, dim3 block, size_t dynamic_smem,
                    size_t max_dynamic_smem, void (*body)(void*), void* ctx) {
    unsigned long long nthreads = (unsigned long long)block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 ||
        grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
        return 9;  // cudaErrorInvalidConfiguration
    if (dynamic_smem > max_dynamic_smem) return 1;  // cudaErrorInvalidValue, as on a GPU
    if (g_launch_in_progress.exchange(1)) {
        fprintf(stderr, "simt: error: kernel %s launched at %s:%d while another launch runs "
                        "(from a kernel, or from a second OS thread); the emulator is "
                        "single-threaded\n", launch_site.what, launch_site.file, launch_site.line);
        abort();
    }
    Engine& E = g_engine;
    E.launch_site = launch_site;
    E.body = body;
    E.body_ctx = ctx;
    E.launch_over = false;
    if (g_order_override >= 0) {
        E.order = (Order)g_order_override;
    } else {  // SIMT_ORDER=forward|reverse|random[:seed]; read once
        static const Order from_env = [] {
            const char* env = getenv("SIMT_ORDER");
            if (!env || strcmp(env, "forward") == 0) return Order::Forward;
            if (strcmp(env, "reverse") == 0) return Order::Reverse;
            if (strncmp(env, "random", 6) == 0) {
                g_order_rng = env[6] == ':' ? strtoull(env + 7, nullptr, 10) : 0;
                return Order::Random;
            }
            fprintf(stderr, "simt: error: SIMT_ORDER=%s; use forward, reverse or random:<seed>\n", env);
            exit(2);
        }();
        E.order = from_env;
    }
    E.nthreads = (unsigned)nthreads;
    E.permutation.resize(E.nthreads);
    E.rank.resize(E.nthreads);
    for (unsigned i = 0; i < E.nthreads; i++) E.permutation[i] = E.rank[i] = i;
    E.dynamic_smem_bytes = dynamic_smem;
    std::vector<unsigned char>& storage = E.dynamic_smem_storage;
    asan_unpoison(storage.data(), storage.size());  // the vector may copy it as it grows
    if (storage.size() < dynamic_smem + 128) storage.resize(dynamic_smem + 128);
    E.dynamic_smem = (unsigned char*)(((uintptr_t)storage.data() + 127) & ~(uintptr_t)127);
    // the bytes around the block's dynamic shared memory: NaN fill, and under ASan poisoned, so
    // a read or write past the end (or before the start) is reported (sizes not a multiple of
    // 8 bytes too: ASan tracks the last partial granule)
    unsigned char* spare = E.dynamic_smem + dynamic_smem;
    unsigned char* storage_end = storage.data() + storage.size();
    memset(spare, 0xFF, (size_t)(storage_end - spare));
    asan_poison(storage.data(), (size_t)(E.dynamic_smem - storage.data()));
    asan_poison(spare, (size_t)(storage_end - spare));
    blockDim = block;
    gridDim = grid;
    E.warps.resize((E.nthreads + 31) / 32);
    E.warpgroups.resize((E.nthreads + 127) / 128);
    ensure_stacks(E.nthreads);
    E.threads.clear();
    E.threads.resize(E.nthreads);
    for (unsigned i = 0; i < E.nthreads; i++) {
        Thread& t = E.threads[i];
        t.idx = uint3{i % block.x, i / block.x % block.y, i / (block.x * block.y)};
        PoolStackAllocator alloc{&E.stacks[i], i % 64};
        boost::context::stack_context sc = alloc.allocate();
        t.context.stack_bottom = (char*)sc.sp - sc.size;
        t.context.stack_size = sc.size;
        t.context.fiber = boost::context::fiber(std::allocator_arg, std::move(alloc), thread_main);
    }
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx = uint3{x, y, z};
                run_block();
            }
    E.launch_over = true;
    for (Thread& t : E.threads) run_thread(E.scheduler, t);  // each fiber leaves thread_main
    E.current = nullptr;
    E.threads.clear();
    g_launch_in_progress = 0;
    return 0;
}

// Launches kernel<<<grid, block, dynamic_smem>>>(args...) on the CPU and returns when it is done.
// The arguments are converted to the kernel's parameter types once, as CUDA does. The rewrite
// tool turns each <<<>>> launch into launch_at with the launch's file, line and kernel name.
template <class... Params, class... Args>
void launch_at(const char* file, int line, const char* name, dim3 grid, dim3 block,
               size_t dynamic_smem, void (*kernel)(Params...), Args&&... args) {
    static_assert(sizeof...(Params) == sizeof...(Args), "wrong number of kernel arguments");
    struct Call {
        void (*kernel)(Params...);
        std::tuple<std::decay_t<Params>...> params;
    } call{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
    auto body = [](void* ctx) {
        Call* c = (Call*)ctx;
        std::apply(c->kernel, c->params);
    };
    g_launch_count++;
    const auto opt_in = g_max_dynamic_shared.find((const void*)kernel);
    const size_t max_dynamic_smem =
        opt_in == g_max_dynamic_shared.end() ? kDefaultMaxDynamicShared : opt_in->second;
    int err = run_grid(Site{file, line, name}, grid, block, dynamic_smem, max_dynamic_smem, body,
                       &call);
    if (err) g_last_launch_error = err;
}

template <class... Params, class... Args>
void launch(dim3 grid, dim3 block, size_t dynamic_smem, void (*kernel)(Params...), Args&&... args) {
    launch_at("?", 0, "(simt::launch)", grid, block, dynamic_smem, kernel,
              std::forward<Args>(args)...);
}

}  // namespace simt

// ----------------------------------------------------------------------------------------------
// Barriers and warp intrinsics (macros, so that diagnostics name the caller's file and line).
#define __syncthreads() simt::syncthreads(__FILE__, __LINE__)
#define __syncthreads_count(pred) simt::syncthreads(__FILE__, __LINE__, pred)
#define __syncthreads_and(pred) (simt::syncthreads(__FILE__, __LINE__, !(pred)) == 0)
#define __syncthreads_or(pred) (simt::syncthreads(__FILE__, __LINE__, pred) != 0)
#define __syncwarp(...) simt::syncwarp(simt::mask_arg(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_sync(mask, var, src, ...)                                                         \
    simt::shuffle(simt::Shfl::Idx, mask, var, src, simt::width_arg(__VA_ARGS__), "__shfl_sync",   \
                  __FILE__, __LINE__)
#define __shfl_up_sync(mask, var, delta, ...)                                                    \
    simt::shuffle(simt::Shfl::Up, mask, var, delta, simt::width_arg(__VA_ARGS__),                \
                  "__shfl_up_sync", __FILE__, __LINE__)
#define __shfl_down_sync(mask, var, delta, ...)                                                  \
    simt::shuffle(simt::Shfl::Down, mask, var, delta, simt::width_arg(__VA_ARGS__),              \
                  "__shfl_down_sync", __FILE__, __LINE__)
#define __shfl_xor_sync(mask, var, lane_mask, ...)                                               \
    simt::shuffle(simt::Shfl::Xor, mask, var, lane_mask, simt::width_arg(__VA_ARGS__),           \
                  "__shfl_xor_sync", __FILE__, __LINE__)
#define __ballot_sync(mask, pred) simt::ballot(mask, pred, "__ballot_sync", __FILE__, __LINE__)
#define __any_sync(mask, pred) (simt::ballot(mask, pred, "__any_sync", __FILE__, __LINE__) != 0)
#define __all_sync(mask, pred) simt::all_sync(mask, pred, __FILE__, __LINE__)

// Memory fences order nothing here: fibers switch only at barriers and collectives.
inline void __threadfence() {}
inline void __threadfence_block() {}

// ----------------------------------------------------------------------------------------------
// Device math and bit intrinsics (host libm versions; fast-math variants are exact here).
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline int __float2int_rn(float x) { return (int)lrintf(x); }
inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
inline unsigned __float_as_uint(float x) { unsigned i; memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; memcpy(&x, &i, 4); return x; }
inline float __uint_as_float(unsigned i) { float x; memcpy(&x, &i, 4); return x; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
// min/max with CUDA's overload set (crt/math_functions.hpp), so that a call compiles here exactly
// when it compiles under nvcc: same-type pairs of int, unsigned, long, unsigned long, long long,
// unsigned long long, float, double; a signed and an unsigned integer of one width compare as
// unsigned (min(-1, 1u) is 1u); float with double gives double. Other mixes (size_t with int)
// are ambiguous under nvcc and here.
#define SIMT_MIN_MAX(R, A, B)                                                                     \
    inline R min(A a, B b) { return (R)a < (R)b ? (R)a : (R)b; }                                 \
    inline R max(A a, B b) { return (R)a > (R)b ? (R)a : (R)b; }
SIMT_MIN_MAX(int, int, int)
SIMT_MIN_MAX(unsigned, unsigned, unsigned)
SIMT_MIN_MAX(unsigned, int, unsigned)
SIMT_MIN_MAX(unsigned, unsigned, int)
SIMT_MIN_MAX(long, long, long)
SIMT_MIN_MAX(unsigned long, unsigned long, unsigned long)
SIMT_MIN_MAX(unsigned long, long, unsigned long)
SIMT_MIN_MAX(unsigned long, unsigned long, long)
SIMT_MIN_MAX(long long, long long, long long)
SIMT_MIN_MAX(unsigned long long, unsigned long long, unsigned long long)
SIMT_MIN_MAX(unsigned long long, long long, unsigned long long)
SIMT_MIN_MAX(unsigned long long, unsigned long long, long long)
#undef SIMT_MIN_MAX
inline float min(float a, float b) { return fminf(a, b); }  // NaN loses, as in fminf
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }

// Cache-hinted loads and stores are plain accesses.
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldlu(const T* p) { return *p; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stwb(T* p, T v) { *p = v; }

// Atomics: fibers never switch inside one, so a plain read-modify-write is atomic here.
template <class T> inline T simt_atomic_add(T* p, T v) { T old = *p; *p = old + v; return old; }
inline int atomicAdd(int* p, int v) { return simt_atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return simt_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return simt_atomic_add(p, v); }
inline float atomicAdd(float* p, float v) { return simt_atomic_add(p, v); }
inline double atomicAdd(double* p, double v) { return simt_atomic_add(p, v); }
inline int atomicSub(int* p, int v) { return simt_atomic_add(p, -v); }
inline unsigned atomicSub(unsigned* p, unsigned v) { return simt_atomic_add(p, 0u - v); }
// The rest with CUDA's overloads (plain functions, so arguments convert as they do under nvcc).
#define SIMT_ATOMIC(T, name, update) inline T name(T* p, T v) { T old = *p; *p = (update); return old; }
#define SIMT_ATOMIC_INTEGER(T)                                                                   \
    SIMT_ATOMIC(T, atomicMax, v > old ? v : old)                                                 \
    SIMT_ATOMIC(T, atomicMin, v < old ? v : old)                                                 \
    SIMT_ATOMIC(T, atomicAnd, old & v)                                                           \
    SIMT_ATOMIC(T, atomicOr, old | v)                                                            \
    SIMT_ATOMIC(T, atomicXor, old ^ v)                                                           \
    SIMT_ATOMIC(T, atomicExch, v)                                                                \
    inline T atomicCAS(T* p, T compare, T v) { T old = *p; if (old == compare) *p = v; return old; }
SIMT_ATOMIC_INTEGER(int)
SIMT_ATOMIC_INTEGER(unsigned)
SIMT_ATOMIC_INTEGER(unsigned long long)
SIMT_ATOMIC(long long, atomicMax, v > old ? v : old)
SIMT_ATOMIC(long long, atomicMin, v < old ? v : old)
SIMT_ATOMIC(float, atomicExch, v)
#undef SIMT_ATOMIC_INTEGER
#undef SIMT_ATOMIC
inline unsigned short atomicCAS(unsigned short* p, unsigned short compare, unsigned short v) {
    unsigned short old = *p;  // 16-bit CAS: sm_70 and later
    if (old == compare) *p = v;
    return old;
}
// atomicInc: old >= limit ? 0 : old + 1. atomicDec: old == 0 || old > limit ? limit : old - 1.
inline unsigned atomicInc(unsigned* p, unsigned limit) {
    unsigned old = *p;
    *p = old >= limit ? 0u : old + 1u;
    return old;
}
inline unsigned atomicDec(unsigned* p, unsigned limit) {
    unsigned old = *p;
    *p = (old == 0u || old > limit) ? limit : old - 1u;
    return old;
}
