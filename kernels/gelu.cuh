// kernels/gelu.cuh: GELU forward and backward on the GPU, one element per thread, for the places no
// cuBLASLt epilogue covers (kernels/matmul.cuh fuses the forward into the MLP's first matmul when
// asked). The per-element math is kernels/gelu_math.h, the same functions the CPU reference uses,
// evaluated in fp32 whatever floatX is.
//   gelu_forward:  out[n] = gelu(inp[n])
//   gelu_backward: dinp[n] = dout[n] * gelu'(pre_gelu[n])   (overwritten; dinp may alias dout)
#pragma once
#include <cstddef>

#include "kernels/cuda_common.h"
#include "kernels/gelu_math.h"

static const int GELU_BLOCK = 256;

__global__ void gelu_forward_kernel(floatX* out, const floatX* inp, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = (floatX)gelu_forward_scalar((float)inp[i]);
}

__global__ void gelu_backward_kernel(floatX* dinp, const floatX* dout, const floatX* pre_gelu, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dinp[i] = (floatX)((float)dout[i] * gelu_grad_scalar((float)pre_gelu[i]));
}

// ----------------------------------------------------------------------------------------------
// launchers

inline void gelu_forward(floatX* out, const floatX* inp, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    const unsigned grid = (unsigned)((n + GELU_BLOCK - 1) / GELU_BLOCK);
    gelu_forward_kernel<<<grid, GELU_BLOCK, 0, stream>>>(out, inp, n);
    CUDA_CHECK(cudaGetLastError());
}

inline void gelu_backward(floatX* dinp, const floatX* dout, const floatX* pre_gelu, size_t n,
                          cudaStream_t stream) {
    if (n == 0) return;
    const unsigned grid = (unsigned)((n + GELU_BLOCK - 1) / GELU_BLOCK);
    gelu_backward_kernel<<<grid, GELU_BLOCK, 0, stream>>>(dinp, dout, pre_gelu, n);
    CUDA_CHECK(cudaGetLastError());
}
