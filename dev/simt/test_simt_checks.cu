// dev/simt/test_simt_checks.cu: the emulator's guards that a GPU does not give, each shown to work
// on a broken or racy kernel (issue 9):
//   thread orders  a race that forward and reverse order both hide shows up in the random order;
//                  a kernel launched outside for_each_thread_order fails the test
//   one past       a read or write one element past a cudaMalloc buffer or past the dynamic shared
//                  memory, for every size of 1..300 floats: NaN without ASan, reported under ASan
//   shared limit   more than 48 KiB of dynamic shared memory needs cudaFuncSetAttribute, and the
//                  attribute is capped at the architecture's maximum, as the CUDA runtime does
//   CUDA overloads min/max of mixed integer types and doubles, atomicOr/And/Xor/Inc/Dec/CAS/Exch
//   leaks          (ASan) leaked device memory is a failed check with its own message, and the
//                  test's other lines survive
//   static shared  a __shared__ array holds NaN at the start of every block, not the last block's
// The ASan checks run this program again as a child (/proc/self/exe --child=...) with the
// options they need and read its output. Under nvcc the shared-memory limits, min/max and atomics
// run on the GPU (the same expectations); the rest is about the emulator and is skipped.
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "dev/simt/kernel_test.h"

#if SIMT_CPU
#include <sys/wait.h>
#include <unistd.h>
#endif

// ------------------------------------------------------------------------------------------------
// A race that neither fixed order shows: in each block of 4 threads, thread 0 compares the flags
// of threads 1 and 2 with no barrier between their writes and its read. After the barrier the
// last thread to arrive goes on first, then the others in the round's order: forward runs
// 3, 0, 1, 2 and reverse 0, 3, 2, 1, so thread 0 reads before both writes either way; only an
// order with thread 0 between threads 1 and 2 sees the flags differ. (Undefined on a GPU.)
__global__ void flags_race_kernel(int* differ) {
    __shared__ int flag[4];
    flag[threadIdx.x] = 0;
    __syncthreads();
    if (threadIdx.x > 0) flag[threadIdx.x] = 1;
    else differ[blockIdx.x] = flag[1] != flag[2];  // missing __syncthreads() before this read
}

__global__ void read_one_kernel(float* out, const float* in, int index) { out[0] = in[index]; }
__global__ void write_one_kernel(float* buffer, int index) { buffer[index] = 1.0f; }
// reads (or writes) element `index` of n floats of dynamic shared memory, having filled the n
__global__ void shared_past_end_kernel(float* out, int n, int index, int write) {
    DYNAMIC_SHARED(float, buffer);
    for (int i = 0; i < n; i++) buffer[i] = 2.0f;
    if (write) buffer[index] = 1.0f;
    else out[0] = buffer[index];
}

template <int Which> __global__ void big_shared_kernel(int* out, int n) {
    DYNAMIC_SHARED(int, buffer);
    for (int i = threadIdx.x; i < n; i += blockDim.x) buffer[i] = i;
    __syncthreads();
    if (threadIdx.x == 0) out[0] = buffer[n - 1] + Which;
}

// ------------------------------------------------------------------------------------------------
// min/max and atomics: each result is written out as 64 bits and checked on the host.
constexpr int kMinMaxResults = 12;
__global__ void min_max_kernel(unsigned long long* out, double* out_fp, int minus_one, long minus_five) {
    static_assert(std::is_same<decltype(min(minus_one, 1u)), unsigned>::value, "min(int, unsigned)");
    static_assert(std::is_same<decltype(max(2l, 3ul)), unsigned long>::value, "max(long, unsigned long)");
    static_assert(std::is_same<decltype(min(1.0f, 2.0)), double>::value, "min(float, double)");
    const size_t a = 7, b = 3;
    out[0] = min(minus_one, 1u);                    // compared as unsigned: 1
    out[1] = max(minus_one, 1u);                    // 0xffffffff
    out[2] = min(minus_five, 3ul);                  // as unsigned long: 3
    out[3] = max(a, b);                             // size_t: 7
    out[4] = min((long long)minus_one, 5ull);       // as unsigned long long: 5
    out[5] = max(-2ll, (long long)minus_five);      // -2
    out[6] = min(minus_one, -7);                    // -7
    out[7] = max(4u, 9u);                           // 9
    out[8] = max(minus_five, -9l);                  // -5
    out[9] = min(a, (size_t)minus_one);             // 7
    out_fp[0] = min(2.5, 1.5f);                     // double 1.5
    out_fp[1] = max(0.1f, 0.2);                     // the double 0.2 (not the float)
    out_fp[2] = min(nanf(""), 1.0f);                // NaN loses: 1
    out_fp[3] = max(-1.0, -2.0);                    // -1
}

constexpr int kAtomicResults = 16;
// one thread runs a fixed sequence (old values and final values checked), then every thread of
// the block takes part in the shared counters. word: [0] the bit operations, [1] one bit per lane,
// [2] atomicInc, [3] atomicDec (global memory: atomics on local memory are undefined on a GPU)
__global__ void atomics_kernel(unsigned long long* out, unsigned* word, unsigned* counter,
                               int* cas_sum, unsigned short* half_word, float* f, unsigned long long* wide) {
    if (threadIdx.x == 0) {
        out[0] = atomicOr(word, 0xF0u);      // old 0x0F -> 0xFF
        out[1] = atomicAnd(word, 0x3Cu);     // old 0xFF -> 0x3C
        out[2] = atomicXor(word, 0xFFu);     // old 0x3C -> 0xC3
        out[3] = *word;
        unsigned* inc = word + 2;            // starts at 0
        out[4] = atomicInc(inc, 2);          // 0 -> 1
        out[5] = atomicInc(inc, 2);          // 1 -> 2
        out[6] = atomicInc(inc, 2);          // 2 -> 0 (reached the limit)
        out[7] = *inc;
        unsigned* dec = word + 3;            // starts at 0
        out[8] = atomicDec(dec, 5);          // 0 -> 5 (wraps to the limit)
        out[9] = *dec;
        out[10] = atomicCAS(half_word, (unsigned short)7, (unsigned short)9);   // old 7 -> 9
        out[11] = atomicCAS(half_word, (unsigned short)7, (unsigned short)1);   // no swap: 9
        out[12] = atomicCAS(wide, 0, 1);     // int literals convert, as under nvcc: old 0 -> 1
        out[13] = (unsigned long long)atomicExch(f, 0);   // old 2.5 as an integer (2) -> 0
        out[14] = atomicMax(wide, 40ull);    // 1 -> 40
        out[15] = *wide;
    }
    __syncthreads();
    atomicOr(word + 1, 1u << (threadIdx.x % 32));
    atomicInc(counter, 99);                  // 256 increments modulo 100 -> 56
    int seen = *cas_sum, wanted;
    do {                                     // an add built from compare-and-swap
        wanted = seen + (int)threadIdx.x;
    } while ((seen = atomicCAS(cas_sum, seen, wanted)) != wanted - (int)threadIdx.x);
}

#if SIMT_CPU
// ------------------------------------------------------------------------------------------------
// Child runs of this program.

// Runs this program with `mode` and extra environment; its stdout and stderr and exit status.
struct Child { std::string out, err; int status = -1; };
static Child run_self(const char* mode, const char* env) {
    Child c;
    std::string command = std::string(env) + " /proc/" + std::to_string(getpid()) + "/exe " + mode +
                          " 2>build/cpu/test_simt_checks.child_err";
    fflush(stdout);
    FILE* p = popen(command.c_str(), "r");
    if (!p) return c;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) c.out.append(buf, got);
    c.status = pclose(p);
    if (FILE* f = fopen("build/cpu/test_simt_checks.child_err", "r")) {
        while ((got = fread(buf, 1, sizeof buf, f)) > 0) c.err.append(buf, got);
        fclose(f);
    }
    return c;
}

// --child=one-past: every one-past access of every size, each after a marker line on stderr.
static void child_one_past() {
    float* d_out;
    CUDA_CHECK(cudaMalloc(&d_out, sizeof(float)));
    for (int n = 1; n <= 300; n++) {
        float* d;
        CUDA_CHECK(cudaMalloc(&d, n * sizeof(float)));
        fprintf(stderr, "@@ global read n=%d\n", n);
        read_one_kernel<<<1, 1>>>(d_out, d, n);
        fprintf(stderr, "@@ global write n=%d\n", n);
        write_one_kernel<<<1, 1>>>(d, n);
        fprintf(stderr, "@@ shared read n=%d\n", n);
        shared_past_end_kernel<<<1, 1, n * sizeof(float)>>>(d_out, n, n, 0);
        fprintf(stderr, "@@ shared write n=%d\n", n);
        shared_past_end_kernel<<<1, 1, n * sizeof(float)>>>(d_out, n, n, 1);
        CUDA_CHECK(cudaFree(d));
    }
    fprintf(stderr, "@@ end\n");
    CUDA_CHECK(cudaFree(d_out));
}

// --child=leak: a passing check, then device memory that is never freed.
__attribute__((noinline)) static void leak_device_memory() {
    for (int i = 0; i < 8; i++) {
        void* p = nullptr;
        CUDA_CHECK(cudaMalloc(&p, 1000));
        memset(&p, 0, sizeof p);  // the last pointer to it is gone
    }
}
static int child_leak() {
    test_report(true, "a check before the leak");
    leak_device_memory();
    return test_exit();
}

// --child=outside-orders: a launch outside for_each_thread_order.
static int child_outside_orders() {
    float* d;
    CUDA_CHECK(cudaMalloc(&d, sizeof(float)));
    write_one_kernel<<<1, 1>>>(d, 0);
    CUDA_CHECK(cudaFree(d));
    return test_exit();
}

static bool contains(const std::string& text, const char* needle) {
    return text.find(needle) != std::string::npos;
}

// ------------------------------------------------------------------------------------------------
// Checks that only make sense on the emulator.

static void test_thread_orders() {
    const int blocks = 64;
    DeviceBuffer<int> d_differ(blocks);
    int differ[3] = {0, 0, 0};
    const simt::Order orders[3] = {simt::Order::Forward, simt::Order::Reverse, simt::Order::Random};
    for (int o = 0; o < 3; o++) {
        in_thread_order(orders[o], test_seed(), [&] { flags_race_kernel<<<blocks, 4>>>(d_differ.ptr); });
        for (int v : d_differ.download()) differ[o] += v;
    }
    test_report(differ[0] == 0 && differ[1] == 0, "orders: forward and reverse both hide the flag race",
                "blocks that saw the flags differ: forward %d, reverse %d", differ[0], differ[1]);
    // each block puts thread 0 between threads 1 and 2 with probability ~1/3: 64 blocks all
    // missing it has odds ~(2/3)^64 ~ 1e-11
    test_report(differ[2] > 0, "orders: the random order exposes the flag race",
                "no block of %d saw the flags differ", blocks);
    const char* names[3];
    int calls = 0;
    for_each_thread_order([&](const char* order) { if (calls < 3) names[calls] = order; calls++; });
    test_report(calls == 3 && !strcmp(names[0], "forward") && !strcmp(names[1], "reverse") &&
                    !strcmp(names[2], "random"),
                "orders: for_each_thread_order runs forward, reverse, random", "%d calls", calls);
    Child c = run_self("--child=outside-orders", "");
    test_report(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 1 &&
                    contains(c.out, "FAIL every kernel launch ran in every thread order: 1 launch(es)"),
                "orders: a launch outside for_each_thread_order fails the test",
                "child exit status %d, output:\n%s", c.status, c.out.c_str());
}

#if !defined(__SANITIZE_ADDRESS__)
// Without ASan: the byte patterns past the end are the NaN fill.
static void test_one_past_fill(const char* order) {
    DeviceBuffer<float> d_out(1);
    int bad_global = 0, bad_shared = 0, first_global = 0, first_shared = 0;
    for (int n = 1; n <= 300; n++) {
        if (n % 64 != 0) {  // a multiple of 256 bytes has no padding: the next byte is not ours
            DeviceBuffer<float> d(n);
            read_one_kernel<<<1, 1>>>(d_out.ptr, d.ptr, n);
            const float got = d_out.download()[0];
            uint32_t bits;
            memcpy(&bits, &got, 4);
            if (bits != 0xFFFFFFFFu && !bad_global++) first_global = n;
        }
        shared_past_end_kernel<<<1, 1, n * sizeof(float)>>>(d_out.ptr, n, n, 0);
        const float got = d_out.download()[0];
        uint32_t bits;
        memcpy(&bits, &got, 4);
        if (bits != 0xFFFFFFFFu && !bad_shared++) first_shared = n;
    }
    test_report(bad_global == 0, (std::string("one past: cudaMalloc padding reads as NaN, n=1..300 order=") + order).c_str(),
                "%d sizes read something else, first n=%d", bad_global, first_global);
    test_report(bad_shared == 0, (std::string("one past: spare dynamic shared memory reads as NaN, n=1..300 order=") + order).c_str(),
                "%d sizes read something else, first n=%d", bad_shared, first_shared);
}

#endif  // !__SANITIZE_ADDRESS__

#if defined(__SANITIZE_ADDRESS__)
// Under ASan: every one-past access is reported (the child goes on after each report).
static void test_one_past_asan() {
    Child c = run_self("--child=one-past",
                       "ASAN_OPTIONS=halt_on_error=0:suppress_equal_pcs=0:symbolize=0:detect_leaks=0");
    const char* kinds[4] = {"global read", "global write", "shared read", "shared write"};
    int missed[4] = {0, 0, 0, 0}, first[4] = {0, 0, 0, 0};
    for (int k = 0; k < 4; k++)
        for (int n = 1; n <= 300; n++) {
            const std::string marker = std::string("@@ ") + kinds[k] + " n=" + std::to_string(n) + "\n";
            const size_t at = c.err.find(marker);
            const size_t next = at == std::string::npos ? at : c.err.find("@@ ", at + marker.size());
            const bool reported = next != std::string::npos &&
                                  c.err.substr(at, next - at).find("ERROR: AddressSanitizer") != std::string::npos;
            if (!reported && !missed[k]++) first[k] = n;
        }
    for (int k = 0; k < 4; k++) {
        std::string name = std::string("one past: ASan reports a one-past ") + kinds[k] + ", every n=1..300 floats";
        test_report(missed[k] == 0 && contains(c.err, "@@ end"), name.c_str(),
                    "%d sizes not reported, first n=%d (child exit status %d)", missed[k], first[k], c.status);
    }
}

static void test_leak_report() {
    Child c = run_self("--child=leak", "");
    test_report(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 1 &&
                    contains(c.out, "PASS a check before the leak") &&
                    contains(c.out, "FAIL no leaked memory (LeakSanitizer)") &&
                    contains(c.err, "detected memory leaks"),
                "leaks: leaked device memory is a failed check of its own; the other lines survive",
                "child exit status %d, stdout:\n%s", c.status, c.out.c_str());
}

#endif  // __SANITIZE_ADDRESS__

// A block's __shared__ array starts as NaN, whatever the previous block left there.
__global__ void static_shared_kernel(float* out) {
    __shared__ float values[64];
    if (blockIdx.x == 0) values[threadIdx.x] = 1.0f;  // block 1 never writes: reads garbage on a GPU
    __syncthreads();
    out[blockIdx.x * 64 + threadIdx.x] = values[threadIdx.x];
}
static void test_static_shared_fill(const char* order) {
    DeviceBuffer<float> d_out(128);
    static_shared_kernel<<<2, 64>>>(d_out.ptr);
    std::vector<float> out = d_out.download();
    int nan_second = 0;
    for (int i = 64; i < 128; i++) nan_second += out[i] != out[i];
    test_report(out[0] == 1.0f && nan_second == 64,
                (std::string("static shared: a block's __shared__ array starts as NaN order=") + order).c_str(),
                "block 0 read %g, block 1 read %d NaN of 64 (first %g)", out[0], nan_second, out[64]);
}
#endif  // SIMT_CPU

// ------------------------------------------------------------------------------------------------
// Checks for both builds (on a GPU they confirm the emulator's expectations).

static void test_shared_limits(const char* order) {
    std::string o = std::string(" order=") + order;
    DeviceBuffer<int> d_out(1);
    const int kib48 = 48 * 1024;
    CUDA_CHECK(cudaGetLastError());
    big_shared_kernel<0><<<1, 64, kib48>>>(d_out.ptr, kib48 / 4);
    const cudaError_t at_48 = cudaGetLastError();
    test_report(at_48 == cudaSuccess && d_out.download()[0] == kib48 / 4 - 1,
                ("shared limit: 48 KiB launches without an opt-in" + o).c_str(), "%s", cudaGetErrorString(at_48));
    big_shared_kernel<0><<<1, 64, kib48 + 4>>>(d_out.ptr, kib48 / 4 + 1);
    const cudaError_t over_48 = cudaGetLastError();
    test_report(over_48 == cudaErrorInvalidValue,
                ("shared limit: 48 KiB + 4 bytes without cudaFuncSetAttribute fails the launch" + o).c_str(),
                "got %s", cudaGetErrorString(over_48));
    const int want = 100 * 1024;
    const cudaError_t set = cudaFuncSetAttribute(big_shared_kernel<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, want);
    big_shared_kernel<1><<<1, 64, want>>>(d_out.ptr, want / 4);
    const cudaError_t with_opt_in = cudaGetLastError();
    test_report(set == cudaSuccess && with_opt_in == cudaSuccess && d_out.download()[0] == want / 4,
                ("shared limit: 100 KiB after cudaFuncSetAttribute(100 KiB)" + o).c_str(),
                "attribute: %s, launch: %s", cudaGetErrorString(set), cudaGetErrorString(with_opt_in));
    big_shared_kernel<1><<<1, 64, want + 4>>>(d_out.ptr, want / 4 + 1);
    const cudaError_t over_opt_in = cudaGetLastError();
    test_report(over_opt_in == cudaErrorInvalidValue,
                ("shared limit: more than the kernel's opt-in fails the launch" + o).c_str(), "got %s",
                cudaGetErrorString(over_opt_in));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    const cudaError_t too_big = cudaFuncSetAttribute(big_shared_kernel<2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                     (int)prop.sharedMemPerBlockOptin + 1);
    test_report(too_big == cudaErrorInvalidValue,
                ("shared limit: an opt-in above the device's sharedMemPerBlockOptin is refused" + o).c_str(),
                "got %s", cudaGetErrorString(too_big));
#if SIMT_CPU
    // the maximum follows the emulated architecture: sm_80 allows 163 KiB
    simt::set_arch(80);
    const cudaError_t sm80_over = cudaFuncSetAttribute(big_shared_kernel<2>, cudaFuncAttributeMaxDynamicSharedMemorySize, 164 * 1024);
    const cudaError_t sm80_max = cudaFuncSetAttribute(big_shared_kernel<2>, cudaFuncAttributeMaxDynamicSharedMemorySize, 163 * 1024);
    cudaDeviceProp prop80;
    CUDA_CHECK(cudaGetDeviceProperties(&prop80, 0));
    simt::set_arch(90);
    test_report(sm80_over == cudaErrorInvalidValue && sm80_max == cudaSuccess && prop80.major == 8 &&
                    prop80.sharedMemPerBlockOptin == 163 * 1024,
                ("shared limit: sm_80's maximum is 163 KiB" + o).c_str(), "164 KiB: %s, 163 KiB: %s, major %d",
                cudaGetErrorString(sm80_over), cudaGetErrorString(sm80_max), prop80.major);
#endif
}

static void test_min_max(const char* order) {
    DeviceBuffer<unsigned long long> d_out(kMinMaxResults);
    DeviceBuffer<double> d_fp(4);
    min_max_kernel<<<1, 1>>>(d_out.ptr, d_fp.ptr, -1, -5l);
    CUDA_CHECK(cudaGetLastError());
    const std::vector<unsigned long long> got = d_out.download();
    const std::vector<double> fp = d_fp.download();
    const unsigned long long want[10] = {1ull, 0xFFFFFFFFull, 3ull, 7ull, 5ull, (unsigned long long)-2ll,
                                         (unsigned long long)(long long)-7, 9ull, (unsigned long long)-5ll, 7ull};
    int bad = -1;
    for (int i = 0; i < 10 && bad < 0; i++)
        if (got[i] != want[i]) bad = i;
    test_report(bad < 0, (std::string("cuda overloads: integer min/max with CUDA's mixed-type rules order=") + order).c_str(),
                "result %d: got %llu, want %llu", bad, bad < 0 ? 0 : got[bad], bad < 0 ? 0 : want[bad]);
    test_report(fp[0] == 1.5 && fp[1] == 0.2 && fp[2] == 1.0 && fp[3] == -1.0,
                (std::string("cuda overloads: float/double min/max order=") + order).c_str(),
                "got %g %.17g %g %g", fp[0], fp[1], fp[2], fp[3]);
}

static void test_atomics(const char* order) {
    const int threads = 256;
    DeviceBuffer<unsigned long long> d_out(kAtomicResults), d_wide(1);
    DeviceBuffer<unsigned> d_word(4), d_counter(1);
    DeviceBuffer<int> d_sum(1);
    DeviceBuffer<unsigned short> d_half(1);
    DeviceBuffer<float> d_f(1);
    d_word.upload({0x0Fu, 0u, 0u, 0u}); d_counter.upload({0u}); d_sum.upload({5}); d_half.upload({7});
    d_f.upload({2.5f}); d_wide.upload({0ull});
    atomics_kernel<<<1, threads>>>(d_out.ptr, d_word.ptr, d_counter.ptr, d_sum.ptr, d_half.ptr, d_f.ptr, d_wide.ptr);
    CUDA_CHECK(cudaGetLastError());
    const std::vector<unsigned long long> got = d_out.download();
    const unsigned long long want[kAtomicResults] = {0x0F, 0xFF, 0x3C, 0xC3, 0, 1, 2, 0, 0, 5, 7, 9, 0, 2, 1, 40};
    int bad = -1;
    for (int i = 0; i < kAtomicResults && bad < 0; i++)
        if (got[i] != want[i]) bad = i;
    test_report(bad < 0, (std::string("cuda overloads: atomicOr/And/Xor/Inc/Dec/CAS(16, 64 bit)/Exch/Max old and new values order=") + order).c_str(),
                "result %d: got %llu, want %llu", bad, bad < 0 ? 0 : got[bad], bad < 0 ? 0 : want[bad]);
    const unsigned lanes = d_word.download()[1], counter = d_counter.download()[0];
    const int sum = d_sum.download()[0];
    test_report(lanes == 0xFFFFFFFFu && counter == threads % 100 && sum == 5 + threads * (threads - 1) / 2 &&
                    d_f.download()[0] == 0.0f,
                (std::string("cuda overloads: atomics from every thread of a block order=") + order).c_str(),
                "or: 0x%08x, inc: %u, CAS sum: %d", lanes, counter, sum);
}

int main(int argc, char** argv) {
#if SIMT_CPU
    if (argc == 2 && !strcmp(argv[1], "--child=one-past")) { child_one_past(); return 0; }
    if (argc == 2 && !strcmp(argv[1], "--child=leak")) return child_leak();
    if (argc == 2 && !strcmp(argv[1], "--child=outside-orders")) return child_outside_orders();
#endif
    (void)argc, (void)argv;
    for_each_thread_order([&](const char* order) {
        test_shared_limits(order);
        test_min_max(order);
        test_atomics(order);
#if SIMT_CPU
        test_static_shared_fill(order);
#if !defined(__SANITIZE_ADDRESS__)
        test_one_past_fill(order);
#endif
#endif
    });
#if SIMT_CPU
    test_thread_orders();
#if defined(__SANITIZE_ADDRESS__)
    test_one_past_asan();
    test_leak_report();
#else
    test_skip("one past: ASan reports", "runs in the _asan build");
    test_skip("leaks", "runs in the _asan build");
#endif
#else
    test_skip("emulator checks (orders, one past, leaks, static shared)", "they check the CPU execution layer");
#endif
    return test_exit();
}
