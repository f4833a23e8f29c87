// kernels/layernorm.cuh: LayerNorm forward (plain, and fused with the residual add) and backward.
// Activations and parameters floatX; statistics, arithmetic and parameter gradients fp32.
//   forward:  out = (x - mean) * rstd * weight + bias, rstd = 1 / sqrt(var + eps), with mean and
//             rstd saved per row (eps is the model config's layernorm_eps, 1e-5 for GPT-2)
//   fused:    residual = a + b (rounded to floatX: what later layers and the backward read), then
//             out = LayerNorm(residual)
//   backward: dinp += rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dout*weight
//             (dinp is the residual stream's gradient: accumulated, rounded to floatX once)
//             dweight += sum over rows of dout * norm, dbias += sum over rows of dout (fp32)
// Rows are handled one warp each; the parameter gradients are reduced per column without
// atomics, so results are deterministic. Kernels first, then the launchers.
#pragma once
#include "kernels/cuda_common.h"
#include "kernels/reduce.cuh"

constexpr int LAYERNORM_ROWS_PER_BLOCK = 8;  // one warp per row, 256-thread blocks

// Normalises the row x (C values) into y; lane 0 stores the row's mean and rstd.
// Called by all 32 lanes of a warp; lane l handles the columns l, l + 32, ...
__device__ inline void layernorm_row(floatX* __restrict__ y, float* __restrict__ mean,
                                     float* __restrict__ rstd, const floatX* x,
                                     const floatX* __restrict__ weight,
                                     const floatX* __restrict__ bias, int C, float eps, int lane) {
    float sum = 0.0f;
    for (int i = lane; i < C; i += 32) sum += (float)x[i];
    const float m = warp_reduce_sum(sum) / C;
    float sum_sq = 0.0f;  // two passes: no cancellation in E[x^2] - E[x]^2
    for (int i = lane; i < C; i += 32) {
        const float d = (float)x[i] - m;
        sum_sq += d * d;
    }
    const float s = rsqrtf(warp_reduce_sum(sum_sq) / C + eps);
    for (int i = lane; i < C; i += 32)
        y[i] = (floatX)(((float)x[i] - m) * s * (float)weight[i] + (float)bias[i]);
    if (lane == 0) {
        *mean = m;
        *rstd = s;
    }
}

// inp, out (N, C); weight, bias (C,); mean, rstd (N,). Block: 32 * LAYERNORM_ROWS_PER_BLOCK.
__global__ void layernorm_forward_kernel(floatX* __restrict__ out, float* __restrict__ mean,
                                         float* __restrict__ rstd, const floatX* __restrict__ inp,
                                         const floatX* __restrict__ weight,
                                         const floatX* __restrict__ bias, int N, int C,
                                         float eps) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= N) return;  // the whole warp leaves together; no barrier follows
    layernorm_row(out + (size_t)row * C, mean + row, rstd + row, inp + (size_t)row * C, weight,
                  bias, C, eps, lane);
}

// residual = a + b, then out = LayerNorm(residual). a, b, residual, out (N, C). Each lane reads
// back only the residual elements it wrote itself.
__global__ void fused_residual_layernorm_forward_kernel(
    floatX* __restrict__ residual, floatX* __restrict__ out, float* __restrict__ mean,
    float* __restrict__ rstd, const floatX* __restrict__ a, const floatX* __restrict__ b,
    const floatX* __restrict__ weight, const floatX* __restrict__ bias, int N, int C, float eps) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= N) return;
    floatX* r = residual + (size_t)row * C;
    for (int i = lane; i < C; i += 32)
        r[i] = (floatX)((float)a[(size_t)row * C + i] + (float)b[(size_t)row * C + i]);
    layernorm_row(out + (size_t)row * C, mean + row, rstd + row, r, weight, bias, C, eps, lane);
}

// dinp += gradient through the normalisation, one warp per row.
// dout, inp, dinp (N, C); weight (C,); mean, rstd (N,). Block: 32 * LAYERNORM_ROWS_PER_BLOCK.
__global__ void layernorm_backward_input_kernel(floatX* __restrict__ dinp,
                                                const floatX* __restrict__ dout,
                                                const floatX* __restrict__ inp,
                                                const floatX* __restrict__ weight,
                                                const float* __restrict__ mean,
                                                const float* __restrict__ rstd, int N, int C) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= N) return;
    const floatX* x = inp + (size_t)row * C;
    const floatX* dy = dout + (size_t)row * C;
    const float m = mean[row], s = rstd[row];
    float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
    for (int i = lane; i < C; i += 32) {
        const float norm = ((float)x[i] - m) * s;
        const float dnorm = (float)dy[i] * (float)weight[i];
        dnorm_sum += dnorm;
        dnorm_norm_sum += dnorm * norm;
    }
    const float dnorm_mean = warp_reduce_sum(dnorm_sum) / C;
    const float dnorm_norm_mean = warp_reduce_sum(dnorm_norm_sum) / C;
    floatX* dx = dinp + (size_t)row * C;
    for (int i = lane; i < C; i += 32) {
        const float norm = ((float)x[i] - m) * s;
        const float dnorm = (float)dy[i] * (float)weight[i];
        dx[i] = (floatX)((float)dx[i] + (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s);
    }
}

// dweight[c] += sum_n dout[n,c] * norm[n,c]; dbias[c] += sum_n dout[n,c].
// Block (32, LAYERNORM_ROWS_PER_BLOCK): x picks one of 32 columns, y strides over the rows;
// the y-partials meet in shared memory. Grid: ceil(C / 32).
__global__ void layernorm_backward_params_kernel(float* __restrict__ dweight,
                                                 float* __restrict__ dbias,
                                                 const floatX* __restrict__ dout,
                                                 const floatX* __restrict__ inp,
                                                 const float* __restrict__ mean,
                                                 const float* __restrict__ rstd, int N, int C) {
    __shared__ float dweight_part[LAYERNORM_ROWS_PER_BLOCK][32];
    __shared__ float dbias_part[LAYERNORM_ROWS_PER_BLOCK][32];
    const int c = blockIdx.x * 32 + threadIdx.x;
    float dw = 0.0f, db = 0.0f;
    if (c < C) {
        for (int n = threadIdx.y; n < N; n += blockDim.y) {
            const float dy = (float)dout[(size_t)n * C + c];
            dw += dy * ((float)inp[(size_t)n * C + c] - mean[n]) * rstd[n];
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
inline void layernorm_forward(floatX* out, float* mean, float* rstd, const floatX* inp,
                              const floatX* weight, const floatX* bias, int N, int C, float eps,
                              cudaStream_t stream) {
    if (N == 0) return;
    const int grid = (N + LAYERNORM_ROWS_PER_BLOCK - 1) / LAYERNORM_ROWS_PER_BLOCK;
    layernorm_forward_kernel<<<grid, 32 * LAYERNORM_ROWS_PER_BLOCK, 0, stream>>>(
        out, mean, rstd, inp, weight, bias, N, C, eps);
}

// residual (N, C) = a + b; out (N, C), mean, rstd (N,) = layernorm_forward of residual.
// residual must not alias a, b or out.
inline void fused_residual_layernorm_forward(floatX* residual, floatX* out, float* mean,
                                             float* rstd, const floatX* a, const floatX* b,
                                             const floatX* weight, const floatX* bias, int N,
                                             int C, float eps, cudaStream_t stream) {
    if (N == 0) return;
    const int grid = (N + LAYERNORM_ROWS_PER_BLOCK - 1) / LAYERNORM_ROWS_PER_BLOCK;
    fused_residual_layernorm_forward_kernel<<<grid, 32 * LAYERNORM_ROWS_PER_BLOCK, 0, stream>>>(
        residual, out, mean, rstd, a, b, weight, bias, N, C, eps);
}

// Accumulates (+=) into dinp (N, C), dweight (C,), dbias (C,), given dout (N, C), the forward's
// inp (N, C), weight (C,), and its saved mean, rstd (N,).
inline void layernorm_backward(floatX* dinp, float* dweight, float* dbias, const floatX* dout,
                               const floatX* inp, const floatX* weight, const float* mean,
                               const float* rstd, int N, int C, cudaStream_t stream) {
    if (N == 0) return;
    const int grid = (N + LAYERNORM_ROWS_PER_BLOCK - 1) / LAYERNORM_ROWS_PER_BLOCK;
    layernorm_backward_input_kernel<<<grid, 32 * LAYERNORM_ROWS_PER_BLOCK, 0, stream>>>(
        dinp, dout, inp, weight, mean, rstd, N, C);
    layernorm_backward_params_kernel<<<(C + 31) / 32, dim3(32, LAYERNORM_ROWS_PER_BLOCK), 0,
                                       stream>>>(dweight, dbias, dout, inp, mean, rstd, N, C);
}
