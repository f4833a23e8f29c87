// dev/simt/kernel_test.h: helpers for kernel tests that build both ways: with g++ on the CPU
// execution layer (dev/simt) and with nvcc for a real GPU (dev/gpu_check.sh).
//   CUDA_CHECK(call)           (kernels/cuda_common.h) exit with file:line if a runtime call fails
//   for_each_thread_order(f)   f("forward") then f("reverse") on the CPU (the emulator's thread
//                              order each round); once, f("gpu"), on a GPU
//   fill_uniform(v, lo, hi, rng) / max_rel_error(...)   fresh random inputs and comparisons
//   DeviceBuffer<T>            a device array with upload/download
//   benchmark_version(argc, argv, versions) / benchmark_ms(f)   the benchmark mode of a
//                              dev/cuda/<layer> program (`./dev/cuda/layernorm 1`), GPU only
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "kernels/cuda_common.h"
#include "dev/test_util.h"

template <class F> void for_each_thread_order(F body) {
#if SIMT_CPU
    simt::set_reverse(false);
    body("forward");
    simt::set_reverse(true);
    body("reverse");
    simt::set_reverse(false);
#else
    body("gpu");
#endif
}

// A random seed per run (so inputs are fresh), printed so a failure can be replayed with
// KERNEL_TEST_SEED=<seed>.
inline uint64_t test_seed() {
    static uint64_t seed = [] {
        const char* env = getenv("KERNEL_TEST_SEED");
        uint64_t s = env ? strtoull(env, nullptr, 10) : std::random_device{}();
        printf("seed %llu (KERNEL_TEST_SEED to replay)\n", (unsigned long long)s);
        return s;
    }();
    return seed;
}

inline void fill_uniform(std::vector<float>& v, float lo, float hi, std::mt19937_64& rng) {
    std::uniform_real_distribution<float> d(lo, hi);
    for (float& x : v) x = d(rng);
}

// Largest |got - want| / (|want| + abs_floor) over the arrays; NaN in `got` counts as infinite.
inline double max_rel_error(const float* got, const double* want, size_t n, double abs_floor) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = std::fabs((double)got[i] - want[i]) / (std::fabs(want[i]) + abs_floor);
        if (!(e == e)) return INFINITY;
        if (e > worst) worst = e;
    }
    return worst;
}

template <class T> struct DeviceBuffer {
    T* ptr = nullptr;
    size_t n = 0;
    explicit DeviceBuffer(size_t count) : n(count) { CUDA_CHECK(cudaMalloc(&ptr, n * sizeof(T))); }
    ~DeviceBuffer() { cudaFree(ptr); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    void upload(const std::vector<T>& host) {
        CUDA_CHECK(cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice));
    }
    std::vector<T> download() const {
        std::vector<T> host(n);
        CUDA_CHECK(cudaMemcpy(host.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
        return host;
    }
};

// The benchmark mode of a dev/cuda/<layer> program: `./dev/cuda/<layer> <version>` times kernel
// version <version> (1..versions); with no argument the program runs its checks (returns 0).
// On the CPU layer timings mean nothing, so asking for a version exits with a message.
inline int benchmark_version(int argc, char** argv, int versions) {
    if (argc < 2) return 0;
    char* end = nullptr;
    const long v = strtol(argv[1], &end, 10);
    if (argc > 2 || *end != '\0' || v < 1 || v > versions) {
        fprintf(stderr, "usage: %s [version]  (no argument: run the checks; version 1..%d: "
                "benchmark that kernel version on a GPU)\n", argv[0], versions);
        exit(2);
    }
#if SIMT_CPU
    fprintf(stderr, "%s: benchmark mode needs a GPU (this is the CPU emulation build); run it "
            "without arguments for the checks\n", argv[0]);
    exit(2);
#endif
    return (int)v;
}

// Mean milliseconds per call of f() (which launches kernels), over `repeats` calls after
// 3 warm-up calls, timed with CUDA events on the default stream.
template <class F> double benchmark_ms(F f, int repeats = 20) {
    for (int i = 0; i < 3; i++) f();
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    CUDA_CHECK(cudaEventRecord(start));
    for (int i = 0; i < repeats; i++) f();
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    CUDA_CHECK(cudaGetLastError());
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    return ms / repeats;
}
