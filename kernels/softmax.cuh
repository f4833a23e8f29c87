// kernels/softmax.cuh: row softmax forward (fp32), numerically stable: out = exp(x - max) / sum.
// One block per row; the row is read three times (max, sum, write), coalesced.
// Kernels first, then the launcher.
#pragma once
#include <cassert>
#include "kernels/cuda_common.h"
#include "kernels/reduce.cuh"

// inp, out (N, V); one block per row, 1-D blocks of a multiple of 32 threads.
__global__ void softmax_forward_kernel(float* __restrict__ out, const float* __restrict__ inp,
                                       int V) {
    const float* x = inp + (size_t)blockIdx.x * V;
    float* y = out + (size_t)blockIdx.x * V;
    float row_max = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) row_max = fmaxf(row_max, x[i]);
    row_max = block_reduce_max(row_max);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(x[i] - row_max);
    sum = block_reduce_sum(sum);
    const float inv_sum = 1.0f / sum;
    for (int i = threadIdx.x; i < V; i += blockDim.x) y[i] = expf(x[i] - row_max) * inv_sum;
}

// out[n, :] = softmax(inp[n, :]) for each of the N rows of length V.
inline void softmax_forward(float* out, const float* inp, int N, int V, cudaStream_t stream) {
    assert(V > 0);
    if (N == 0) return;
    const int block_size = V >= 1024 ? 1024 : (V + 31) / 32 * 32;
    softmax_forward_kernel<<<N, block_size, 0, stream>>>(out, inp, V);
}
