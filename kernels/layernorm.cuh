// kernels/layernorm.cuh: LayerNorm forward (plain, and fused with the residual add) and backward.
// Activations and parameters floatX; statistics, arithmetic and parameter gradients fp32.
//   forward:  out = (x - mean) * rstd * weight + bias, rstd = 1 / sqrt(var + eps), with mean and
//             rstd saved per row (eps is the model config's layernorm_eps, 1e-5 for GPT-2)
//   fused:    residual = a + b (rounded to floatX: what later layers and the backward read), then
//             out = LayerNorm(residual)
//   backward: dinp += rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dout*weight
//             (dinp is the residual stream's gradient: accumulated, rounded to floatX once)
//             dweight += sum over rows of dout * norm, dbias += sum over rows of dout (fp32)
// Rows are handled one warp each; the parameter gradients are column sums over all rows in
// kernels/reduce.cuh's two stages (a grid over column blocks and row chunks, fp32 partials in the
// caller's scratch, then a fixed-order sum), without atomics: results are deterministic. Kernels
// first, then the launchers.
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

// dweight[c] += sum_n dout[n,c] * norm[n,c] and dbias[c] += sum_n dout[n,c], in kernels/reduce.cuh's
// two deterministic stages. This is stage 1: block (x, k) of the grid (column blocks, row chunks)
// sums the rows of chunk k for its COLUMN_SUM_WIDTH * pack columns into partials[k][c] (dweight's)
// and partials[chunks + k][c] (dbias'); add_column_partials adds the chunks.
// Block (COLUMN_SUM_WIDTH, COLUMN_SUM_ROW_LANES): thread (x, y) takes rows y, y + ROW_LANES, ...
template <int pack>
__global__ void layernorm_backward_params_kernel(float* __restrict__ partials,
                                                 const floatX* __restrict__ dout,
                                                 const floatX* __restrict__ inp,
                                                 const float* __restrict__ mean,
                                                 const float* __restrict__ rstd, int N, int C,
                                                 int chunk_rows) {
    const int c = (blockIdx.x * COLUMN_SUM_WIDTH + threadIdx.x) * pack;  // this thread's first column
    const int row_end = min(N, (int)(blockIdx.y + 1) * chunk_rows);
    float dw[pack] = {}, db[pack] = {};
    if (c < C) {
        for (int n = blockIdx.y * chunk_rows + threadIdx.y; n < row_end; n += COLUMN_SUM_ROW_LANES) {
            const FloatXPack<pack> dy = load_pack<pack>(dout + (size_t)n * C + c);
            const FloatXPack<pack> x = load_pack<pack>(inp + (size_t)n * C + c);
            const float m = mean[n], s = rstd[n];
            for (int j = 0; j < pack; j++) {
                dw[j] += (float)dy.v[j] * (((float)x.v[j] - m) * s);
                db[j] += (float)dy.v[j];
            }
        }
    }
    write_column_partials<pack>(partials, dw, C);
    write_column_partials<pack>(partials + (size_t)gridDim.y * C, db, C);
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

// The scratch (floats) that layernorm_backward needs for C channels, any N.
inline size_t layernorm_backward_scratch_floats(int C) { return column_partials_floats(C, 2); }

// Accumulates (+=) into dinp (N, C), dweight (C,), dbias (C,), given dout (N, C), the forward's
// inp (N, C), weight (C,), and its saved mean, rstd (N,). scratch: layernorm_backward_scratch_floats(C).
inline void layernorm_backward(floatX* dinp, float* dweight, float* dbias, float* scratch,
                               const floatX* dout, const floatX* inp, const floatX* weight,
                               const float* mean, const float* rstd, int N, int C,
                               cudaStream_t stream) {
    if (N == 0) return;
    const int grid = (N + LAYERNORM_ROWS_PER_BLOCK - 1) / LAYERNORM_ROWS_PER_BLOCK;
    layernorm_backward_input_kernel<<<grid, 32 * LAYERNORM_ROWS_PER_BLOCK, 0, stream>>>(
        dinp, dout, inp, weight, mean, rstd, N, C);
    const ColumnChunks p = column_chunks(N, C, column_pack(C, dout, inp));
    const dim3 params_grid((unsigned)p.column_blocks, (unsigned)p.chunks);
    const dim3 params_block(COLUMN_SUM_WIDTH, COLUMN_SUM_ROW_LANES);
    if (p.pack == COLUMN_PACK)
        layernorm_backward_params_kernel<COLUMN_PACK><<<params_grid, params_block, 0, stream>>>(
            scratch, dout, inp, mean, rstd, N, C, p.chunk_rows);
    else
        layernorm_backward_params_kernel<1><<<params_grid, params_block, 0, stream>>>(
            scratch, dout, inp, mean, rstd, N, C, p.chunk_rows);
    add_column_partials(dweight, dbias, scratch, 2, p, C, stream);
}
