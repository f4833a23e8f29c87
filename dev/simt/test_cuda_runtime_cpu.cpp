// dev/simt/test_cuda_runtime_cpu.cpp: the CPU stand-ins for the CUDA runtime
// (dev/simt/cuda_runtime_cpu.h): allocation poison, copies and sets (plain and async), events
// timing host work, device properties, errors for a bad device and a bad launch configuration,
// the table of live allocations (simt::device_bytes_from).
#include <cmath>
#include <cstring>
#include <ctime>
#include <vector>

#include "kernels/cuda_common.h"
#include "dev/test_util.h"

__global__ void write_index_kernel(int* out) { out[threadIdx.x] = (int)threadIdx.x; }

int main() {
    float* d = nullptr;
    test_report(cudaMalloc(&d, 1000 * sizeof(float)) == cudaSuccess && d != nullptr, "cudaMalloc");
    bool poisoned = true;
    for (int i = 0; i < 1000; i++) poisoned = poisoned && std::isnan(d[i]);
    test_report(poisoned, "cudaMalloc memory starts as NaN (0xFF bytes)");

    std::vector<float> host(1000), back(1000, 0.0f);
    for (int i = 0; i < 1000; i++) host[i] = (float)i * 0.5f;
    cudaStream_t stream;
    cudaStreamCreate(&stream);
    cudaMemcpyAsync(d, host.data(), 1000 * sizeof(float), cudaMemcpyHostToDevice, stream);
    cudaMemcpy(back.data(), d, 1000 * sizeof(float), cudaMemcpyDeviceToHost);
    test_report(back == host, "cudaMemcpy(Async) round trip");
    cudaMemsetAsync(d, 0, 500 * sizeof(float), stream);
    cudaMemcpy(back.data(), d, 1000 * sizeof(float), cudaMemcpyDeviceToHost);
    test_report(back[0] == 0.0f && back[499] == 0.0f && back[500] == 250.0f, "cudaMemsetAsync");
    test_report(cudaMemcpy(nullptr, host.data(), 4, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
                "cudaMemcpy to null is an invalid value");

    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaEventRecord(start, stream);
    const clock_t until = clock() + CLOCKS_PER_SEC / 50;  // ~20 ms of host work
    while (clock() < until) {}
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    test_report(ms >= 15.0f && ms < 2000.0f, "events time host work", "measured %.2f ms for ~20 ms", ms);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);

    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, 0);
    test_report(prop.major == 9 && prop.minor == 0 && prop.warpSize == 32 &&
                prop.maxThreadsPerBlock == 1024 && prop.multiProcessorCount > 0 &&
                strlen(prop.name) > 0, "device properties: an sm_90 device");
    int count = 0, device = -1;
    cudaGetDeviceCount(&count);
    cudaGetDevice(&device);
    test_report(count == 1 && device == 0 && cudaSetDevice(0) == cudaSuccess, "one device, device 0");
    test_report(cudaSetDevice(1) == cudaErrorInvalidDevice, "cudaSetDevice(1) fails");

    int* d_int;
    cudaMalloc(&d_int, 64 * sizeof(int));
    simt::launch(dim3(1), dim3(0), 0, write_index_kernel, d_int);
    const cudaError_t err = cudaGetLastError();
    test_report(err == cudaErrorInvalidConfiguration &&
                strcmp(cudaGetErrorName(err), "cudaErrorInvalidConfiguration") == 0,
                "empty block: cudaErrorInvalidConfiguration", "got %s", cudaGetErrorName(err));
    simt::launch(dim3(1), dim3(64), 0, write_index_kernel, d_int);
    test_report(cudaGetLastError() == cudaSuccess && d_int[63] == 63, "good launch after a bad one");

    // the allocation table library stand-ins check buffers with: bytes from a pointer to the end
    // of its cudaMalloc allocation (as asked: the padding to 256 bytes is outside), -1 elsewhere
    char* bytes = nullptr;
    void* pinned = nullptr;
    cudaMalloc(&bytes, 100);
    cudaMallocHost(&pinned, 100);
    const long long at_start = simt::device_bytes_from(bytes), at_last = simt::device_bytes_from(bytes + 99),
                    past_end = simt::device_bytes_from(bytes + 100), in_host = simt::device_bytes_from(host.data()),
                    in_pinned = simt::device_bytes_from(pinned), in_other = simt::device_bytes_from(d + 999);
    cudaFree(bytes);
    cudaFreeHost(pinned);
    const long long freed = simt::device_bytes_from(bytes);
    test_report(at_start == 100 && at_last == 1 && past_end == -1 && in_host == -1 && in_pinned == -1 &&
                in_other == 4 && freed == -1, "simt::device_bytes_from",
                "start %lld, last byte %lld, one past %lld, host %lld, cudaMallocHost %lld, another buffer's "
                "last float %lld, freed %lld (expected 100, 1, -1, -1, -1, 4, -1)", at_start, at_last, past_end,
                in_host, in_pinned, in_other, freed);

    cudaFree(d_int);
    cudaFree(d);
    cudaStreamDestroy(stream);
    return test_exit();
}
