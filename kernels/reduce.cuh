// kernels/reduce.cuh: sum reductions (fp32). Warp and block helpers that other kernels use,
// a kernel that sums an array chunk by chunk (one block per chunk), and a deterministic global
// sum of squares (for the gradient norm): per-block partials, then one block adds them up.
// Blocks are 1-D with a multiple of 32 threads (at most 1024). Kernels first, then launchers.
#pragma once
#include <cassert>
#include <cstddef>
#include "kernels/cuda_common.h"

// Sum of v over the 32 lanes of the warp; every lane gets the result.
__device__ __forceinline__ float warp_reduce_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Maximum of v over the 32 lanes of the warp; every lane gets the result.
__device__ __forceinline__ float warp_reduce_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum of v over all threads of the (1-D) block; every thread gets the result. Every thread of
// the block must call it (it has barriers); back-to-back calls are safe.
__device__ inline float block_reduce_sum(float v) {
    __shared__ float warp_sums[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
    v = warp_reduce_sum(v);
    __syncthreads();  // a previous call may still be reading warp_sums
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    return warp_reduce_sum(lane < num_warps ? warp_sums[lane] : 0.0f);
}

// Maximum of v over all threads of the (1-D) block; every thread gets the result.
__device__ inline float block_reduce_max(float v) {
    __shared__ float warp_maxes[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
    v = warp_reduce_max(v);
    __syncthreads();
    if (lane == 0) warp_maxes[warp] = v;
    __syncthreads();
    return warp_reduce_max(lane < num_warps ? warp_maxes[lane] : -INFINITY);
}

// out[b] = sum of inp[b*chunk .. min((b+1)*chunk, N)), one block per chunk.
// inp (N,), out (ceil(N/chunk),)
__global__ void block_sum_kernel(float* __restrict__ out, const float* __restrict__ inp, size_t N,
                                 size_t chunk) {
    const size_t begin = (size_t)blockIdx.x * chunk;
    const size_t end = begin + chunk < N ? begin + chunk : N;
    float sum = 0.0f;
    for (size_t i = begin + threadIdx.x; i < end; i += blockDim.x) sum += inp[i];
    sum = block_reduce_sum(sum);
    if (threadIdx.x == 0) out[blockIdx.x] = sum;
}

// partials[b] = sum of inp[i]^2 over the i that block b visits in a grid-stride loop.
// inp (N,), partials (gridDim.x,)
__global__ void sum_squares_partial_kernel(float* __restrict__ partials,
                                           const float* __restrict__ inp, size_t N) {
    float sum = 0.0f;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < N; i += stride) {
        const float x = inp[i];
        sum += x * x;
    }
    sum = block_reduce_sum(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// out[0] = (accumulate ? out[0] : 0) + sum of partials[0..count), by one block.
__global__ void sum_partials_kernel(float* __restrict__ out, const float* __restrict__ partials,
                                    int count, bool accumulate) {
    float sum = 0.0f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = block_reduce_sum(sum);
    if (threadIdx.x == 0) out[0] = accumulate ? out[0] + sum : sum;
}

// ----------------------------------------------------------------------------------------------
// Launchers.

// Number of blocks (and so of partials) that global_sum_squares uses.
constexpr int SUM_SQUARES_BLOCKS = 264;  // two per SM of an H100

// out[b] = sum of inp over chunk b (see block_sum_kernel); block_size a multiple of 32.
inline void block_sums(float* out, const float* inp, size_t N, size_t chunk, int block_size,
                       cudaStream_t stream) {
    assert(chunk > 0 && block_size % 32 == 0 && block_size <= 1024);
    const unsigned grid = (unsigned)((N + chunk - 1) / chunk);
    if (grid == 0) return;
    block_sum_kernel<<<grid, block_size, 0, stream>>>(out, inp, N, chunk);
}

// out[0] = (accumulate ? out[0] : 0) + sum of inp[i]^2 over N elements; deterministic.
// partials: scratch of SUM_SQUARES_BLOCKS floats.
inline void global_sum_squares(float* out, float* partials, const float* inp, size_t N,
                               bool accumulate, cudaStream_t stream) {
    sum_squares_partial_kernel<<<SUM_SQUARES_BLOCKS, 512, 0, stream>>>(partials, inp, N);
    sum_partials_kernel<<<1, 1024, 0, stream>>>(out, partials, SUM_SQUARES_BLOCKS, accumulate);
}
