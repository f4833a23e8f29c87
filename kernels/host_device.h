// Lets per-element math be written once for the CPU and the GPU: under nvcc the functions are
// __host__ __device__, under a plain C++ compiler the qualifiers vanish.
#pragma once
#if !defined(__CUDACC__)
#ifndef __host__
#define __host__
#endif
#ifndef __device__
#define __device__
#endif
#endif
#define HOST_DEVICE __host__ __device__
