// kernels/logprob.cuh: the fused LM-head log-prob. Only the M scored tokens (target >= 0) go through
// the LM head: gather_rows picks their hidden states, matmul_forward makes logits[M,Vp], and
//   logprob_forward    per scored token m, in one pass over its row: the log-sum-exp over the V
//                      real columns, the target's log-prob logit[target] - lse, and the mean logit
//                      over V (the `logits/chosen|rejected` metric); no softmax is written
//   logprob_backward   dlogits = dlogp[m] * (onehot(target) - softmax), in place over the logits,
//                      recomputing the softmax from the saved lse; 0 in the padded columns >= V
//   scatter_add_rows   adds the scored rows' gradients back into the full [N,C] gradient
// Shapes: logits[M,Vp] floatX (columns >= V are padding and ignored), targets[M] in [0, V),
// logp/lse/mean_logit/dlogp[M] fp32. All math in fp32; one block per scored token (V = 50257 fits:
// each thread loops over its share of the columns). Deterministic: fixed reduction trees.
// Kernels first, then the launchers.
#pragma once
#include <cmath>
#include "kernels/cuda_common.h"
#include "kernels/reduce.cuh"

// One block per row m. Each thread keeps a running max and a sum of exp(x - max) over its
// columns (rescaled when the max grows) and a plain sum; then the block combines them.
__global__ void logprob_forward_kernel(float* __restrict__ logp, float* __restrict__ lse,
                                       float* __restrict__ mean_logit, const floatX* __restrict__ logits,
                                       const int* __restrict__ targets, int V, int Vp) {
    const int m = blockIdx.x;
    const floatX* row = logits + (size_t)m * Vp;
    float thread_max = -INFINITY, thread_sum = 0.0f, thread_total = 0.0f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float x = (float)row[v];
        if (x > thread_max) {
            thread_sum *= expf(thread_max - x);  // 0 on the first column (max was -inf)
            thread_max = x;
        }
        thread_sum += expf(x - thread_max);
        thread_total += x;
    }
    const float row_max = block_reduce_max(thread_max);
    // threads with no column (V < blockDim.x) have sum 0 and max -inf: they add nothing
    const float scaled = thread_sum == 0.0f ? 0.0f : thread_sum * expf(thread_max - row_max);
    const float row_sum = block_reduce_sum(scaled);
    const float row_total = block_reduce_sum(thread_total);
    if (threadIdx.x == 0) {
        const float row_lse = row_max + logf(row_sum);
        const int t = targets[m];
        lse[m] = row_lse;
        logp[m] = (t >= 0 && t < V) ? (float)row[t] - row_lse : NAN;  // a bad target shows as NaN
        mean_logit[m] = row_total / (float)V;
    }
}

// One block per row m: x <- dlogp[m] * ((v == target) - exp(x - lse[m])) for v < V, 0 for v >= V.
__global__ void logprob_backward_kernel(floatX* __restrict__ dlogits, const float* __restrict__ dlogp,
                                        const float* __restrict__ lse, const int* __restrict__ targets,
                                        int V, int Vp) {
    const int m = blockIdx.x;
    floatX* row = dlogits + (size_t)m * Vp;
    const float d = dlogp[m], row_lse = lse[m];
    const int t = targets[m];
    for (int v = threadIdx.x; v < Vp; v += blockDim.x) {
        float g = 0.0f;
        if (v < V) {
            const float p = expf((float)row[v] - row_lse);
            g = d * ((v == t ? 1.0f : 0.0f) - p);
        }
        row[v] = (floatX)g;
    }
}

// out[m, :] = inp[index[m], :]; grid (M), each block one row.
__global__ void gather_rows_kernel(floatX* __restrict__ out, const floatX* __restrict__ inp,
                                   const int* __restrict__ index, int C) {
    const int m = blockIdx.x;
    const floatX* src = inp + (size_t)index[m] * C;
    floatX* dst = out + (size_t)m * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) dst[i] = src[i];
}

// out[index[m], :] += inp[m, :] (in fp32, rounded once); the indices are distinct, so no two
// blocks touch the same row.
__global__ void scatter_add_rows_kernel(floatX* __restrict__ out, const floatX* __restrict__ inp,
                                        const int* __restrict__ index, int C) {
    const int m = blockIdx.x;
    const floatX* src = inp + (size_t)m * C;
    floatX* dst = out + (size_t)index[m] * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) dst[i] = (floatX)((float)dst[i] + (float)src[i]);
}

// ----------------------------------------------------------------------------------------------
// Launchers

// threads per block for rows of n columns: up to 1024, a multiple of 32
inline int logprob_block_size(int n) { return n >= 1024 ? 1024 : (n + 31) / 32 * 32; }

// logp[M], lse[M], mean_logit[M] from logits[M,Vp] and targets[M] (each in [0, V); a target
// outside gives logp NaN).
inline void logprob_forward(float* logp, float* lse, float* mean_logit, const floatX* logits,
                            const int* targets, int M, int V, int Vp, cudaStream_t stream) {
    if (V < 1 || Vp < V) {
        fprintf(stderr, "%s:%d: logprob_forward: V=%d, Vp=%d: need 1 <= V <= Vp\n", __FILE__, __LINE__, V, Vp);
        exit(1);
    }
    if (M == 0) return;
    logprob_forward_kernel<<<M, logprob_block_size(V), 0, stream>>>(logp, lse, mean_logit, logits, targets,
                                                                     V, Vp);
    CUDA_CHECK(cudaGetLastError());
}

// dlogits[M,Vp] (in place over the logits) = dlogp * (onehot(target) - softmax), 0 in columns >= V.
inline void logprob_backward(floatX* dlogits, const float* dlogp, const float* lse, const int* targets,
                             int M, int V, int Vp, cudaStream_t stream) {
    if (V < 1 || Vp < V) {
        fprintf(stderr, "%s:%d: logprob_backward: V=%d, Vp=%d: need 1 <= V <= Vp\n", __FILE__, __LINE__, V, Vp);
        exit(1);
    }
    if (M == 0) return;
    logprob_backward_kernel<<<M, logprob_block_size(Vp), 0, stream>>>(dlogits, dlogp, lse, targets, V, Vp);
    CUDA_CHECK(cudaGetLastError());
}

// out[M,C] = the rows index[M] of inp[N,C].
inline void gather_rows(floatX* out, const floatX* inp, const int* index, int M, int C, cudaStream_t stream) {
    if (M == 0 || C == 0) return;
    gather_rows_kernel<<<M, logprob_block_size(C), 0, stream>>>(out, inp, index, C);
    CUDA_CHECK(cudaGetLastError());
}

// out[index[m], :] += inp[m, :] for m < M; out[N,C], inp[M,C], index[M] distinct.
inline void scatter_add_rows(floatX* out, const floatX* inp, const int* index, int M, int C,
                             cudaStream_t stream) {
    if (M == 0 || C == 0) return;
    scatter_add_rows_kernel<<<M, logprob_block_size(C), 0, stream>>>(out, inp, index, C);
    CUDA_CHECK(cudaGetLastError());
}
