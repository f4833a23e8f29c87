// kernels/layernorm.cuh: LayerNorm forward and backward (fp32).
//   forward:  out = (x - mean) * rstd * weight + bias, rstd = 1 / sqrt(var + eps), with mean and
//             rstd saved per row (eps is the model config's layernorm_eps, 1e-5 for GPT-2)
//   backward: dinp += rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dout*weight
//             dweight += sum over rows of dout * norm, dbias += sum over rows of dout
// Rows are handled one warp each; the parameter gradients are reduced per column without
// atomics, so results are deterministic. Kernels first, then the launchers.
#pragma once
#include "kernels/cuda_common.h"
#include "kernels/reduce.cuh"

constexpr int LAYERNORM_ROWS_PER_BLOCK = 8;  // one warp per row, 256-thread blocks

// inp, out (N, C); weight, bias (C,); mean, rstd (N,). Block: 32 * LAYERNORM_ROWS_PER_BLOCK.
__global__ void layernorm_forward_kernel(float* __restrict__ out, float* __restrict__ mean,
                                         float* __restrict__ rstd, const float* __restrict__ inp,
                                         const float* __restrict__ weight,
                                         const float* __restrict__ bias, int N, int C,
                                         float eps) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= N) return;  // the whole warp leaves together; no barrier follows
    const float* x = inp + (size_t)row * C;
    float sum = 0.0f;
    for (int i = lane; i < C; i += 32) sum += x[i];
    const float m = warp_reduce_sum(sum) / C;
    float sum_sq = 0.0f;  // two passes: no cancellation in E[x^2] - E[x]^2
    for (int i = lane; i < C; i += 32) {
        const float d = x[i] - m;
        sum_sq += d * d;
    }
    const float s = rsqrtf(warp_reduce_sum(sum_sq) / C + eps);
    float* y = out + (size_t)row * C;
    for (int i = lane; i < C; i += 32) y[i] = (x[i] - m) * s * weight[i] + bias[i];
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = s;
    }
}

// dinp += gradient through the normalisation, one warp per row.
// dout, inp, dinp (N, C); weight (C,); mean, rstd (N,). Block: 32 * LAYERNORM_ROWS_PER_BLOCK.
__global__ void layernorm_backward_input_kernel(float* __restrict__ dinp,
                                                const float* __restrict__ dout,
                                                const float* __restrict__ inp,
                                                const float* __restrict__ weight,
                                                const float* __restrict__ mean,
                                                const float* __restrict__ rstd, int N, int C) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= N) return;
    const float* x = inp + (size_t)row * C;
    const float* dy = dout + (size_t)row * C;
    const float m = mean[row], s = rstd[row];
    float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
    for (int i = lane; i < C; i += 32) {
        const float norm = (x[i] - m) * s;
        const float dnorm = dy[i] * weight[i];
        dnorm_sum += dnorm;
        dnorm_norm_sum += dnorm * norm;
    }
    const float dnorm_mean = warp_reduce_sum(dnorm_sum) / C;
    const float dnorm_norm_mean = warp_reduce_sum(dnorm_norm_sum) / C;
    float* dx = dinp + (size_t)row * C;
    for (int i = lane; i < C; i += 32) {
        const float norm = (x[i] - m) * s;
        const float dnorm = dy[i] * weight[i];
        dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
}

// dweight[c] += sum_n dout[n,c] * norm[n,c]; dbias[c] += sum_n dout[n,c].
// Block (32, LAYERNORM_ROWS_PER_BLOCK): x picks one of 32 columns, y strides over the rows;
// the y-partials meet in shared memory. Grid: ceil(C / 32).
__global__ void layernorm_backward_params_kernel(float* __restrict__ dweight,
                                                 float* __restrict__ dbias,
                                                 const float* __restrict__ dout,
                                                 const float* __restrict__ inp,
                                                 const float* __restrict__ mean,
                                                 const float* __restrict__ rstd, int N, int C) {
    __shared__ float dweight_part[LAYERNORM_ROWS_PER_BLOCK][32];
    __shared__ float dbias_part[LAYERNORM_ROWS_PER_BLOCK][32];
    const int c = blockIdx.x * 32 + threadIdx.x;
    float dw = 0.0f, db = 0.0f;
    if (c < C) {
        for (int n = threadIdx.y; n < N; n += blockDim.y) {
            const float dy = dout[(size_t)n * C + c];
            dw += dy * (inp[(size_t)n * C + c] - mean[n]) * rstd[n];
            db += dy;
        }
    }
    dweight_part[threadIdx.y][threadIdx.x] = dw;
    dbias_part[threadIdx.y][threadIdx.x] = db;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int y = 1; y < (int)blockDim.y; y++) {
            dw += dweight_part[y][threadIdx.x];
            db += dbias_part[y][threadIdx.x];
        }
        dweight[c] += dw;
        dbias[c] += db;
    }
}

// ----------------------------------------------------------------------------------------------
// Launchers.

// out (N, C), mean (N,), rstd (N,) from inp (N, C), weight (C,), bias (C,); eps inside the sqrt.
inline void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                              const float* weight, const float* bias, int N, int C, float eps,
                              cudaStream_t stream) {
    if (N == 0) return;
    const int grid = (N + LAYERNORM_ROWS_PER_BLOCK - 1) / LAYERNORM_ROWS_PER_BLOCK;
    layernorm_forward_kernel<<<grid, 32 * LAYERNORM_ROWS_PER_BLOCK, 0, stream>>>(
        out, mean, rstd, inp, weight, bias, N, C, eps);
}

// Accumulates (+=) into dinp (N, C), dweight (C,), dbias (C,), given dout (N, C), the forward's
// inp (N, C), weight (C,), and its saved mean, rstd (N,).
inline void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, const float* mean,
                               const float* rstd, int N, int C, cudaStream_t stream) {
    if (N == 0) return;
    const int grid = (N + LAYERNORM_ROWS_PER_BLOCK - 1) / LAYERNORM_ROWS_PER_BLOCK;
    layernorm_backward_input_kernel<<<grid, 32 * LAYERNORM_ROWS_PER_BLOCK, 0, stream>>>(
        dinp, dout, inp, weight, mean, rstd, N, C);
    layernorm_backward_params_kernel<<<(C + 31) / 32, dim3(32, LAYERNORM_ROWS_PER_BLOCK), 0,
                                       stream>>>(dweight, dbias, dout, inp, mean, rstd, N, C);
}
