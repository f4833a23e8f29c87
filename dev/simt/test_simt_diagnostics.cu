// dev/simt/test_simt_diagnostics.cu: deliberately broken kernels, one per diagnostic of the CPU
// execution layer (dev/simt): __syncthreads reached from different lines or after threads
// returned, a full-mask shuffle after some lanes returned, a deadlock, lanes passing different
// masks, a fiber stack overflow, and (ASan build) an out-of-bounds write. Each runs in a forked
// child, since the diagnostic aborts; the test checks that the child died and that its message
// names this file and the offending line. A correct kernel in a child is the control; the NaN
// poison of dynamic shared memory is checked too.
// Under nvcc the kernels compile (the nvcc check of `make test`) and every check is skipped.
#include <string>

#include "dev/simt/kernel_test.h"
#include "kernels/reduce.cuh"

static const char* const kThisFile = "dev/simt/test_simt_diagnostics.cu";

constexpr int kDivergentLineA = __LINE__ + 4;
__global__ void divergent_barrier_kernel(float* out) {
    if (threadIdx.x < 16) {
        out[threadIdx.x] = 1.0f;
        __syncthreads();
    } else {
        __syncthreads();
    }
}
constexpr int kDivergentLineB = kDivergentLineA + 2;

constexpr int kEarlyReturnBarrierLine = __LINE__ + 5;
__global__ void barrier_after_return_kernel(float* out, int n) {
    const int i = threadIdx.x;
    if (i >= n) return;  // threads n.. leave, yet the barrier below waits for the whole block
    out[i] *= 2.0f;
    __syncthreads();
    out[i] += out[(i + 1) % n];
}

constexpr int kShuffleLine = __LINE__ + 5;
__global__ void shuffle_after_return_kernel(float* out) {
    float v = out[threadIdx.x];
    // the upper half of the warp leaves, but the shuffle still names it
    if (threadIdx.x >= 16) return;
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

constexpr int kDeadlockShuffleLine = __LINE__ + 4;
__global__ void deadlock_kernel(float* out) {
    float v = out[threadIdx.x];
    if (threadIdx.x < 16) {
        v += __shfl_xor_sync(0xffffffffu, v, 1);  // lanes 16-31 never come: they wait below
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = v;
}
constexpr int kDeadlockBarrierLine = kDeadlockShuffleLine + 2;

constexpr int kMaskLine = __LINE__ + 4;
__global__ void mismatched_masks_kernel(float* out) {
    float v = out[threadIdx.x];
    const unsigned mask = threadIdx.x < 16 ? 0xffffffffu : 0xffff0000u;  // should be one mask
    v += __shfl_xor_sync(mask, v, 1);
    out[threadIdx.x] = v;
}

// A 256 KiB local array does not fit a 64 KiB fiber stack.
__global__ void stack_overflow_kernel(float* out) {
    volatile float big[65536];
    for (int i = 0; i < 65536; i++) big[i] = (float)i;
    out[threadIdx.x] = big[threadIdx.x * 7];
}

// Dynamic shared memory starts as 0xFF bytes: NaN as float.
__global__ void read_uninitialised_smem_kernel(float* out) {
    DYNAMIC_SHARED(float, buffer);
    out[threadIdx.x] = buffer[threadIdx.x];
}

constexpr int kOutOfBoundsLine = __LINE__ + 2;
__global__ void out_of_bounds_kernel(float* out, int n) {
    out[threadIdx.x + n - 1] = 1.0f;  // threads 1.. write past the end
}

// A correct kernel: the block sum of reduce.cuh.
__global__ void correct_kernel(float* out, const float* inp) {
    const float s = block_reduce_sum(inp[threadIdx.x]);
    if (threadIdx.x == 0) out[0] = s;
}

#if SIMT_CPU
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

struct ChildResult {
    bool aborted;       // died from SIGABRT (the layer's diagnostics) or exited non-zero (ASan)
    bool clean;         // exited with status 0
    std::string error;  // what it wrote to stderr
};

// Runs fn in a forked child with stderr captured.
static ChildResult run_in_child(void (*fn)()) {
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); exit(1); }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(1); }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn();
        fflush(stderr);
        _exit(0);
    }
    close(fds[1]);
    ChildResult r;
    char buf[4096];
    ssize_t got;
    while ((got = read(fds[0], buf, sizeof buf)) > 0) r.error.append(buf, (size_t)got);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    r.aborted = (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) ||
                (WIFEXITED(status) && WEXITSTATUS(status) != 0);
    r.clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return r;
}

static std::string at(int line) { return std::string(kThisFile) + ":" + std::to_string(line); }

static void check(const char* name, const ChildResult& r, std::initializer_list<std::string> needles) {
    bool ok = r.aborted;
    std::string missing;
    for (const std::string& s : needles)
        if (r.error.find(s) == std::string::npos) { ok = false; missing = s; }
    test_report(ok, name, "%s; missing \"%s\" in its message:\n%s",
                r.aborted ? "child aborted" : "child did NOT abort (or died another way)", missing.c_str(), r.error.c_str());
}

static float* device_floats(int n) {
    std::vector<float> host(n);
    for (int i = 0; i < n; i++) host[i] = (float)i;
    float* d;
    CUDA_CHECK(cudaMalloc(&d, n * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(d, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

static void launch_divergent() { divergent_barrier_kernel<<<1, 64>>>(device_floats(64)); }
static void launch_shuffle_after_return() { shuffle_after_return_kernel<<<2, 32>>>(device_floats(32)); }
[[maybe_unused]] static void launch_stack_overflow() { stack_overflow_kernel<<<1, 32>>>(device_floats(32)); }
static void launch_barrier_after_return() { barrier_after_return_kernel<<<1, 64>>>(device_floats(64), 40); }
static void launch_mismatched_masks() { mismatched_masks_kernel<<<1, 32>>>(device_floats(32)); }
static void launch_deadlock() { deadlock_kernel<<<1, 64>>>(device_floats(64)); }
[[maybe_unused]] static void launch_out_of_bounds() { out_of_bounds_kernel<<<1, 32>>>(device_floats(100), 100); }
static void launch_correct() {
    float* out = device_floats(1);
    correct_kernel<<<1, 256>>>(out, device_floats(256));
    float got;
    CUDA_CHECK(cudaMemcpy(&got, out, sizeof got, cudaMemcpyDeviceToHost));
    if (got != 255.0f * 256.0f / 2.0f) abort();
}
#endif

int main() {
#if SIMT_CPU
    for_each_thread_order([&](const char* order) {
        std::string o = std::string(" order=") + order;
        {
            ChildResult r = run_in_child(launch_correct);
            test_report(r.clean && r.error.empty(), ("diagnostics control: correct kernel runs clean" + o).c_str(),
                        "child aborted:\n%s", r.error.c_str());
        }
        check(("diagnose __syncthreads from different lines" + o).c_str(), run_in_child(launch_divergent),
              {"__syncthreads reached from different lines", at(kDivergentLineA), at(kDivergentLineB),
               "divergent_barrier_kernel"});
        check(("diagnose __syncthreads after threads returned" + o).c_str(),
              run_in_child(launch_barrier_after_return),
              {"returned", "__syncthreads", "no early return before a barrier",
               at(kEarlyReturnBarrierLine), "barrier_after_return_kernel"});
        check(("diagnose full-mask shuffle after lanes returned" + o).c_str(),
              run_in_child(launch_shuffle_after_return),
              {"returned", "__shfl_xor_sync", at(kShuffleLine), "shuffle_after_return_kernel"});
        check(("diagnose deadlock" + o).c_str(), run_in_child(launch_deadlock),
              {"deadlock", "threads 0-15: wait in __shfl_xor_sync", at(kDeadlockShuffleLine),
               "wait in __syncthreads at " + at(kDeadlockBarrierLine)});
        // lanes 16-31 meet among themselves and return; the full-mask shuffle then names them
        check(("diagnose lanes that pass different masks" + o).c_str(),
              run_in_child(launch_mismatched_masks),
              {"returned", "__shfl_xor_sync with mask 0xffffffff", at(kMaskLine)});
    });
#if !defined(__SANITIZE_ADDRESS__)
    check("diagnose a fiber stack overflow", run_in_child(launch_stack_overflow),
          {"overflowed its 64 KiB fiber stack", "stack_overflow_kernel", kThisFile});
#endif
    for_each_thread_order([&](const char* order) {
        float* d = device_floats(32);
        read_uninitialised_smem_kernel<<<1, 32, 32 * sizeof(float)>>>(d);
        float got[32];
        CUDA_CHECK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
        bool all_nan = true;
        for (float g : got) all_nan = all_nan && g != g;
        test_report(all_nan, (std::string("uninitialised dynamic shared memory reads as NaN order=") + order).c_str());
        CUDA_CHECK(cudaFree(d));
    });
#if defined(__SANITIZE_ADDRESS__)
    check("ASan reports an out-of-bounds write in a kernel", run_in_child(launch_out_of_bounds),
          {"ERROR: AddressSanitizer", "WRITE of size 4", at(kOutOfBoundsLine)});
#else
    test_skip("ASan reports an out-of-bounds write in a kernel", "runs in the _asan build");
#endif
#else
    test_skip("simt diagnostics", "they are checks of the CPU execution layer; nothing to run on a GPU");
#endif
    return test_exit();
}
