// dev/simt/test_cp_async.cu: tests the cp.async wrappers of kernels/ptx.cuh (cp_async_16,
// cp_async_commit_group, cp_async_wait_group<N>) and the emulation's strictness: a copy must not be
// visible in shared memory before the issuing thread's wait_group completes its group, nor to other
// threads before the barrier after that wait. Every thread order on the CPU; the same source built
// with nvcc runs the correct kernels on a GPU (dev/gpu_check.sh) against the same expectations.
//   correct:        copy, commit, wait_group 0, __syncthreads, each thread reads another's chunk
//   no wait:        the same without the wait: the data read is not the source (NaN here)
//   no barrier:     wait but no __syncthreads before reading another thread's chunk: wrong somewhere
//   group counts:   two groups, wait_group 1 completes the older only, wait_group 0 the newer;
//                   a copy never committed is not completed by wait_group 0 (the PTX ISA's rule)
//   diagnose_*:     (CPU layer only) misaligned source or destination, a shared-memory source, a
//                   global-memory destination, a source past its allocation's end: each aborts
//                   naming the line
#include <string>

#include "dev/simt/kernel_test.h"
#include "kernels/ptx.cuh"

[[maybe_unused]] static const char* const kThisFile = "dev/simt/test_cp_async.cu";
constexpr int kThreads = 64;  // each thread copies one 16-byte chunk (4 floats)

enum CopyMode { COPY_CORRECT, COPY_NO_WAIT, COPY_NO_BARRIER };

// out[4*i .. 4*i+3] = src chunk (i + 1) % kThreads, read from shared memory after a cp.async of it
// by thread (i + 1) % kThreads. Dynamic shared memory: kThreads * 4 floats.
__global__ void copy_ring_kernel(float* out, const float* src, int mode) {
    DYNAMIC_SHARED(float, buffer);
    const int i = threadIdx.x;
    cp_async_16(&buffer[4 * i], &src[4 * i]);
    cp_async_commit_group();
    if (mode != COPY_NO_WAIT) cp_async_wait_group<0>();
    if (mode != COPY_NO_BARRIER) __syncthreads();
    const int from = (i + 1) % kThreads;
    for (int j = 0; j < 4; j++) out[4 * i + j] = buffer[4 * from + j];
}

// Group counting, one thread per chunk pair: older = chunk A, newer = chunk B, never committed = C.
// out[0..3]: A after wait_group 1; out[4..7]: B after wait_group 1 (still pending: NaN here);
// out[8..11]: B after wait_group 0; out[12..15]: C after wait_group 0 (never committed: NaN here);
// out[16..19]: C after a final commit and wait_group 0.
__global__ void group_count_kernel(float* out, const float* src) {
    __shared__ __align__(16) float a[4], b[4], c[4];
    cp_async_16(a, src);
    cp_async_commit_group();
    cp_async_16(b, src + 4);
    cp_async_commit_group();
    cp_async_wait_group<1>();
    for (int j = 0; j < 4; j++) out[j] = a[j];
    for (int j = 0; j < 4; j++) out[4 + j] = b[j];
    cp_async_16(c, src + 8);
    cp_async_wait_group<0>();
    for (int j = 0; j < 4; j++) out[8 + j] = b[j];
    for (int j = 0; j < 4; j++) out[12 + j] = c[j];
    cp_async_commit_group();
    cp_async_wait_group<0>();
    for (int j = 0; j < 4; j++) out[16 + j] = c[j];
}

[[maybe_unused]] constexpr int kMisalignedLine = __LINE__ + 3;
__global__ void misaligned_kernel(const float* src, int offset) {
    __shared__ __align__(16) float tile[16];
    cp_async_16(&tile[offset], &src[4]);  // offset 2: 8 bytes past a 16-byte boundary
    cp_async_commit_group();
    cp_async_wait_group<0>();
}

[[maybe_unused]] constexpr int kSharedSourceLine = __LINE__ + 5;
__global__ void shared_source_kernel() {
    __shared__ __align__(16) float from[4], to[4];
    from[threadIdx.x % 4] = 1.0f;
    __syncthreads();
    cp_async_16(to, from);  // the source must be global memory
    cp_async_commit_group();
    cp_async_wait_group<0>();
}

[[maybe_unused]] constexpr int kGlobalDestinationLine = __LINE__ + 2;
__global__ void global_destination_kernel(float* dst, const float* src) {
    cp_async_16(dst, src);  // the destination must be shared memory
    cp_async_commit_group();
    cp_async_wait_group<0>();
}

static std::vector<float> random_floats(size_t n, std::mt19937_64& rng) {
    std::vector<float> v(n);
    fill_uniform(v, -1.0f, 1.0f, rng);
    return v;
}

// The ring kernel in one mode; how many of the kThreads * 4 outputs equal their source value.
static int run_ring(CopyMode mode, std::mt19937_64& rng) {
    const std::vector<float> src = random_floats(4 * kThreads, rng);
    DeviceBuffer<float> d_src(src.size()), d_out(src.size());
    d_src.upload(src);
    copy_ring_kernel<<<1, kThreads, 4 * kThreads * sizeof(float)>>>(d_out.ptr, d_src.ptr, (int)mode);
    CUDA_CHECK(cudaGetLastError());
    const std::vector<float> out = d_out.download();
    int right = 0;
    for (int i = 0; i < kThreads; i++)
        for (int j = 0; j < 4; j++) right += out[4 * i + j] == src[4 * ((i + 1) % kThreads) + j];
    return right;
}

static bool same(const float* got, const float* want) {
    for (int j = 0; j < 4; j++)
        if (got[j] != want[j]) return false;
    return true;
}
[[maybe_unused]] static bool all_nan(const float* got) {
    for (int j = 0; j < 4; j++)
        if (got[j] == got[j]) return false;
    return true;
}

#if SIMT_CPU
#include "dev/simt/aborts_with.h"

static std::string at(int line) { return std::string(kThisFile) + ":" + std::to_string(line); }
static float* device_floats(int n) {
    float* d;
    CUDA_CHECK(cudaMalloc(&d, n * sizeof(float)));
    CUDA_CHECK(cudaMemset(d, 0, n * sizeof(float)));
    return d;
}
static void launch_misaligned_destination() { misaligned_kernel<<<1, 32>>>(device_floats(16), 2); }
static void launch_misaligned_source() {
    float* src = device_floats(16);
    misaligned_kernel<<<1, 32>>>(src + 1, 0);
}
static void launch_shared_source() { shared_source_kernel<<<1, 32>>>(); }
static void launch_global_destination() { global_destination_kernel<<<1, 32>>>(device_floats(4), device_floats(4)); }
static void launch_source_past_end() { misaligned_kernel<<<1, 32>>>(device_floats(6), 0); }  // bytes 16..31 of 24

static void diagnose(const char* name, void (*fn)(), std::initializer_list<std::string> needles) {
    std::string message;
    const bool ok = aborts_with(fn, needles, &message);
    test_report(ok, name, "the child did not abort with the expected message:\n%s", message.c_str());
}
#endif

int main() {
    std::mt19937_64 rng(test_seed());
    for_each_thread_order([&](const char* order) {
        const std::string o = std::string(" order=") + order;
        const int all = 4 * kThreads;
        int right = run_ring(COPY_CORRECT, rng);
        test_report(right == all, ("cp.async copy, wait_group 0, barrier: every thread reads the data" + o).c_str(),
                    "%d of %d values right", right, all);
#if SIMT_CPU
        // on a GPU these two races may happen to give the right data; the emulator never does
        right = run_ring(COPY_NO_WAIT, rng);
        test_report(right == 0, ("cp.async without wait_group: nothing is visible" + o).c_str(),
                    "%d of %d values already visible", right, all);
        right = run_ring(COPY_NO_BARRIER, rng);
        test_report(right < all, ("cp.async without the barrier after the wait: another thread's chunk wrong" + o).c_str(),
                    "all %d values right", all);
#endif

        const std::vector<float> src = random_floats(12, rng);
        DeviceBuffer<float> d_src(src.size()), d_out(20);
        d_src.upload(src);
        group_count_kernel<<<1, 1>>>(d_out.ptr, d_src.ptr);
        CUDA_CHECK(cudaGetLastError());
        const std::vector<float> out = d_out.download();
        test_report(same(&out[0], &src[0]), ("cp.async wait_group 1 completes the older group" + o).c_str());
        test_report(same(&out[8], &src[4]), ("cp.async wait_group 0 completes the newer group" + o).c_str());
        test_report(same(&out[16], &src[8]), ("cp.async commit then wait_group 0 completes the last copy" + o).c_str());
#if SIMT_CPU
        test_report(all_nan(&out[4]), ("cp.async wait_group 1 leaves the newest group pending" + o).c_str(),
                    "the newest group's data is visible");
        test_report(all_nan(&out[12]), ("cp.async wait_group 0 leaves an uncommitted copy pending" + o).c_str(),
                    "an uncommitted copy's data is visible");
#endif
    });
#if SIMT_CPU
    diagnose("diagnose cp.async to a misaligned shared address", launch_misaligned_destination,
             {"cp.async.cg.shared.global", "not 16-byte aligned", at(kMisalignedLine)});
    diagnose("diagnose cp.async from a misaligned global address", launch_misaligned_source,
             {"cp.async.cg.shared.global", "not 16-byte aligned", at(kMisalignedLine)});
    diagnose("diagnose cp.async from shared memory", launch_shared_source,
             {"not inside a cudaMalloc allocation", at(kSharedSourceLine)});
    diagnose("diagnose cp.async into global memory", launch_global_destination,
             {"not inside the block's shared memory", at(kGlobalDestinationLine)});
    diagnose("diagnose cp.async reading past the end of an allocation", launch_source_past_end,
             {"run past the allocation's end", at(kMisalignedLine)});
#else
    test_skip("cp.async emulation strictness and diagnostics", "checks of the CPU execution layer");
#endif
    return test_exit();
}
