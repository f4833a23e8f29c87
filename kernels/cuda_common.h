// kernels/cuda_common.h: the one header every kernel source includes to get CUDA. Under nvcc it
// is the real runtime (cuda_runtime.h, cuda_bf16.h); under g++ it is the CPU execution layer of
// dev/simt (simt.h, cuda_runtime_cpu.h, bf16.h), which runs the same kernels on the CPU for tests.
//   DYNAMIC_SHARED(T, name)   dynamic shared memory, in both builds
//   SIMT_CPU                  1 under the emulator, 0 under nvcc
//   CUDA_CHECK(call)          a runtime call that must succeed: on failure prints file:line, the
//                             error's name and description, and exits
//   floatX                    the type of parameters and activations on the GPU: __nv_bfloat16,
//                             or float when built with -DENABLE_FP32 (`make PRECISION=FP32`);
//                             master weights, optimizer moments and every reduction stay fp32
#pragma once
#include <cstdio>
#include <cstdlib>

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#define SIMT_CPU 0
// All kernels share one extern array (16-byte aligned); each views it as its own type.
#define DYNAMIC_SHARED(T, name)                                                                  \
    extern __shared__ __align__(16) unsigned char simt_dynamic_smem_[];                        \
    T* name = reinterpret_cast<T*>(simt_dynamic_smem_)
#else
#include "dev/simt/simt.h"
#include "dev/simt/cuda_runtime_cpu.h"
#if __has_include("dev/simt/bf16.h")
#include "dev/simt/bf16.h"
#endif
#define DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(simt::dynamic_shared_memory())
#endif

#define CUDA_CHECK(call)                                                                         \
    do {                                                                                         \
        cudaError_t cuda_check_err_ = (call);                                                    \
        if (cuda_check_err_ != cudaSuccess) {                                                    \
            fprintf(stderr, "%s:%d: CUDA error %s: %s\n", __FILE__, __LINE__,                   \
                    cudaGetErrorName(cuda_check_err_), cudaGetErrorString(cuda_check_err_));      \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

#if defined(ENABLE_FP32)
typedef float floatX;
#define PRECISION_NAME "fp32"
#else
typedef __nv_bfloat16 floatX;
#define PRECISION_NAME "bf16"
#endif
