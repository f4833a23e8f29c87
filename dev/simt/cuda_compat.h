// dev/simt/cuda_compat.h: the one header kernel sources include to get CUDA. Under nvcc it is
// the real runtime (cuda_runtime.h, cuda_bf16.h); under g++ it is the CPU execution layer
// (dev/simt/simt.h, dev/simt/cuda_runtime_cpu.h, dev/simt/bf16.h).
// Dynamic shared memory is declared with DYNAMIC_SHARED(T, name), which works in both builds.
// SIMT_CPU is 1 under the emulator, 0 under nvcc.
#pragma once

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
