// dev/simt/cuda_runtime_cpu.h: CPU stand-ins for the CUDA runtime calls the project uses, so
// host code (launchers, tests, later the GPU trainer) runs unchanged under the emulator.
// "Device" memory is host memory (filled with 0xFF bytes, NaN as float, when allocated, as a
// GPU's would hold garbage); streams and events are in-order no-ops (an event records host time);
// the one device is a plausible sm_90 (H100-like) GPU. g++ only; see kernels/cuda_common.h.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>

#include "dev/simt/simt.h"

enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorNotReady = 600,
};
typedef enum cudaError cudaError_t;

inline const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorMemoryAllocation: return "out of memory";
        case cudaErrorInvalidConfiguration: return "invalid configuration argument";
        case cudaErrorInvalidDevice: return "invalid device ordinal";
        case cudaErrorNotReady: return "device not ready";
    }
    return "unknown error";
}
inline const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
        case cudaSuccess: return "cudaSuccess";
        case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
        case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
        case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
        case cudaErrorNotReady: return "cudaErrorNotReady";
    }
    return "cudaErrorUnknown";
}

// Returns the error of the last failed launch and clears it (as CUDA does).
inline cudaError_t cudaGetLastError() {
    cudaError_t e = (cudaError_t)simt::g_last_launch_error;
    simt::g_last_launch_error = 0;
    return e;
}
inline cudaError_t cudaPeekAtLastError() { return (cudaError_t)simt::g_last_launch_error; }

// ----------------------------------------------------------------------------------------------
// Memory.
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

namespace simt {
// The live cudaMalloc allocations, so that stand-ins for libraries (dev/simt/nccl_cpu.h) can check
// that a pointer is device memory and that count elements fit behind it: ~start address -> size in
// bytes (as asked, without the padding). The addresses are stored complemented so that
// LeakSanitizer does not take this table for a reference to a leaked buffer. Like the rest of the
// runtime: one host thread at a time.
inline std::map<uintptr_t, size_t>& device_allocations() {
    static std::map<uintptr_t, size_t> allocations;
    return allocations;
}
inline uintptr_t disguised(const void* p) { return ~(uintptr_t)p; }
// The number of bytes from p to the end of the cudaMalloc allocation that holds p, or -1 if p is
// not inside a live cudaMalloc allocation (host memory, freed memory, cudaMallocHost memory).
inline long long device_bytes_from(const void* p) {
    const auto& allocations = device_allocations();
    auto it = allocations.lower_bound(disguised(p));  // the highest start at or below p
    if (it == allocations.end()) return -1;
    const uintptr_t start = ~it->first, end = start + it->second, at = (uintptr_t)p;
    return at < end ? (long long)(end - at) : -1;
}
// a GPU allocation is 256-byte aligned; the padding up to the next multiple of 256 is filled
// too (a read one past the end gives NaN) and, under ASan, poisoned (the read is reported)
inline void* allocate_poisoned(size_t bytes) {
    const size_t rounded = (bytes + 255) / 256 * 256;
    void* p = aligned_alloc(256, rounded);
    if (!p) return nullptr;
    memset(p, 0xFF, rounded);
    asan_poison((char*)p + bytes, rounded - bytes);
    return p;
}
}  // namespace simt

inline cudaError_t cudaMalloc(void** ptr, size_t bytes) {
    if (!ptr) return cudaErrorInvalidValue;
    *ptr = nullptr;
    if (bytes == 0) return cudaSuccess;
    void* p = simt::allocate_poisoned(bytes);
    if (!p) return cudaErrorMemoryAllocation;
    simt::device_allocations()[simt::disguised(p)] = bytes;
    *ptr = p;
    return cudaSuccess;
}
template <class T> inline cudaError_t cudaMalloc(T** ptr, size_t bytes) {
    return cudaMalloc((void**)ptr, bytes);
}
inline cudaError_t cudaFree(void* ptr) {
    simt::device_allocations().erase(simt::disguised(ptr));
    free(ptr);
    return cudaSuccess;
}
// Pinned host memory: poisoned like device memory, but not a device allocation.
inline cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
    if (!ptr) return cudaErrorInvalidValue;
    *ptr = nullptr;
    if (bytes == 0) return cudaSuccess;
    *ptr = simt::allocate_poisoned(bytes);
    return *ptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
template <class T> inline cudaError_t cudaMallocHost(T** ptr, size_t bytes) {
    return cudaMallocHost((void**)ptr, bytes);
}
inline cudaError_t cudaFreeHost(void* ptr) { free(ptr); return cudaSuccess; }

inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
    if (bytes && (!dst || !src)) return cudaErrorInvalidValue;
    memmove(dst, src, bytes);
    return cudaSuccess;
}
inline cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
    if (bytes && !dst) return cudaErrorInvalidValue;
    memset(dst, value, bytes);
    return cudaSuccess;
}
// symbol: a __constant__ or __device__ variable (a host global here).
template <class T>
inline cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, size_t bytes, size_t offset = 0,
                                      cudaMemcpyKind = cudaMemcpyHostToDevice) {
    if (offset + bytes > sizeof(T)) return cudaErrorInvalidValue;
    memcpy((char*)&symbol + offset, src, bytes);
    return cudaSuccess;
}
template <class T>
inline cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t bytes, size_t offset = 0,
                                        cudaMemcpyKind = cudaMemcpyDeviceToHost) {
    if (offset + bytes > sizeof(T)) return cudaErrorInvalidValue;
    memcpy(dst, (const char*)&symbol + offset, bytes);
    return cudaSuccess;
}

inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
    *free_bytes = 64ull << 30;
    *total_bytes = 80ull << 30;
    return cudaSuccess;
}

// ----------------------------------------------------------------------------------------------
// Streams and events: work runs at once, in order, on the calling thread.
struct CUstream_st { int unused; };
struct CUevent_st { double ms; };  // host time when recorded
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventDisableTiming 0x02

inline cudaError_t cudaStreamCreate(cudaStream_t* s) { *s = new CUstream_st{0}; return cudaSuccess; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { return cudaStreamCreate(s); }
inline cudaError_t cudaStreamDestroy(cudaStream_t s) { delete s; return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned = 0) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t = nullptr) {
    return cudaMemcpy(dst, src, bytes, kind);
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t = nullptr) {
    return cudaMemset(dst, value, bytes);
}

inline double simt_host_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) { *e = new CUevent_st{0.0}; return cudaSuccess; }
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
inline cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
    e->ms = simt_host_ms();
    return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    *ms = (float)(end->ms - start->ms);
    return cudaSuccess;
}

// ----------------------------------------------------------------------------------------------
// The device: one H100-like sm_90 GPU.
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    size_t sharedMemPerBlockOptin;
    size_t sharedMemPerMultiprocessor;
    int regsPerBlock;
    int warpSize;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int maxThreadsPerMultiProcessor;
    int multiProcessorCount;
    int major;
    int minor;
    int l2CacheSize;
    int memoryBusWidth;
};

inline cudaError_t cudaGetDeviceCount(int* count) { *count = 1; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
inline cudaError_t cudaGetDevice(int* device) { *device = 0; return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
    if (device != 0) return cudaErrorInvalidDevice;
    memset(prop, 0, sizeof(*prop));
    snprintf(prop->name, sizeof prop->name, "simt CPU emulator (sm_%d)", simt::g_arch);
    prop->totalGlobalMem = 80ull << 30;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->sharedMemPerBlockOptin = simt::max_dynamic_shared_optin(simt::g_arch);
    prop->sharedMemPerMultiprocessor = 228 * 1024;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024; prop->maxThreadsDim[1] = 1024; prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647; prop->maxGridSize[1] = 65535; prop->maxGridSize[2] = 65535;
    prop->maxThreadsPerMultiProcessor = 2048;
    prop->multiProcessorCount = 132;
    prop->major = simt::g_arch / 10;
    prop->minor = simt::g_arch % 10;
    prop->l2CacheSize = 50 * 1024 * 1024;
    prop->memoryBusWidth = 5120;
    return cudaSuccess;
}

enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
    cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};
// MaxDynamicSharedMemorySize: the kernel's launches may ask for up to `value` bytes of dynamic
// shared memory (above the default 48 KiB); more than the architecture allows is an error.
template <class F> inline cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value) {
    if (!kernel) return cudaErrorInvalidValue;
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || (size_t)value > simt::max_dynamic_shared_optin(simt::g_arch))
            return cudaErrorInvalidValue;
        simt::g_max_dynamic_shared[(const void*)kernel] = (size_t)value;
        return cudaSuccess;
    }
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout)
        return value >= -1 && value <= 100 ? cudaSuccess : cudaErrorInvalidValue;
    return cudaErrorInvalidValue;
}
