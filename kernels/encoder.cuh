// kernels/encoder.cuh: token + position embedding on the GPU, forward and a deterministic
// backward.
//   forward:  out[n, :] = wte[tokens[n], :] + wpe[pos[n], :]   (explicit position ids: a packed
//             row restarts them per unit, a prefix-shared unit restarts them for the rejected side)
//   backward: dwte[v, :] += sum of dout[n, :] over the n with tokens[n] = v
//             dwpe[p, :] += sum of dout[n, :] over the n with pos[n] = p          (fp32 gradients)
// The backward plan (built on the host per micro-batch by encoder_backward_plan, uploaded as one
// int array): the distinct token ids of the micro-batch, and for each the rows n that carry it in
// increasing order; the same for the distinct positions. One block per distinct id adds its rows
// in that fixed order, each thread owning a set of channels, then adds the sum into the gradient
// row it alone writes: no atomics, bit-identical from run to run. (A token repeated very often,
// e.g. padding, makes its block longer than the others; fine at micro-batch sizes.)
// Shapes: tokens, pos (N,); out, dout (N, C) floatX; wte (Vp, C), wpe (maxT, C) floatX;
// dwte (Vp, C), dwpe (maxT, C) fp32. Kernels first, then the host plan and the launchers.
#pragma once
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/cuda_common.h"

// One thread per output element; the sum in fp32, rounded once to floatX.
__global__ void encoder_forward_kernel(floatX* __restrict__ out, const int* __restrict__ tokens,
                                       const int* __restrict__ pos,
                                       const floatX* __restrict__ wte,
                                       const floatX* __restrict__ wpe, int N, int C) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)N * C) return;
    const size_t n = idx / C, c = idx % C;
    out[idx] = (floatX)((float)wte[(size_t)tokens[n] * C + c] + (float)wpe[(size_t)pos[n] * C + c]);
}

// Block g: dweight[ids[g], c] += sum over i in [offsets[g], offsets[g+1]) of dout[rows[i], c],
// in that order, for the channels c of this thread. Grid: the number of distinct ids.
__global__ void encoder_backward_kernel(float* __restrict__ dweight,
                                        const floatX* __restrict__ dout,
                                        const int* __restrict__ ids,
                                        const int* __restrict__ offsets,
                                        const int* __restrict__ rows, int C) {
    const int g = blockIdx.x;
    const int begin = offsets[g], end = offsets[g + 1];
    float* dw = dweight + (size_t)ids[g] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float sum = 0.0f;
        for (int i = begin; i < end; i++) sum += (float)dout[(size_t)rows[i] * C + c];
        dw[c] += sum;
    }
}

// ----------------------------------------------------------------------------------------------
// Host plan and launchers.

// The backward plan of one micro-batch. `data` is uploaded as is; its layout, in ints:
//   token ids (token_groups) | token offsets (token_groups + 1) | token rows (N)
//   | position ids (pos_groups) | position offsets (pos_groups + 1) | position rows (N)
struct EncoderBackwardPlan {
    int N = 0, token_groups = 0, pos_groups = 0;
    std::vector<int> data;
};

// Appends, for the values keys[0..N), the distinct values in increasing order, the offsets of
// their row lists and the row lists (rows of one value in increasing order); returns the number
// of distinct values.
inline int encoder_append_groups(std::vector<int>& data, const int* keys, int N) {
    std::vector<int> rows(N);
    for (int n = 0; n < N; n++) rows[n] = n;
    std::stable_sort(rows.begin(), rows.end(), [&](int a, int b) { return keys[a] < keys[b]; });
    std::vector<int> ids, offsets;
    for (int i = 0; i < N; i++) {
        if (i == 0 || keys[rows[i]] != keys[rows[i - 1]]) {
            ids.push_back(keys[rows[i]]);
            offsets.push_back(i);
        }
    }
    offsets.push_back(N);
    data.insert(data.end(), ids.begin(), ids.end());
    data.insert(data.end(), offsets.begin(), offsets.end());
    data.insert(data.end(), rows.begin(), rows.end());
    return (int)ids.size();
}

// Builds the plan from the micro-batch's tokens and position ids (host, N each). A token outside
// [0, Vp) or a position outside [0, max_T) is an error naming the token.
inline EncoderBackwardPlan encoder_backward_plan(const int* tokens, const int* pos, int N, int Vp,
                                                 int max_T) {
    for (int n = 0; n < N; n++) {
        if (tokens[n] < 0 || tokens[n] >= Vp || pos[n] < 0 || pos[n] >= max_T) {
            fprintf(stderr, "%s:%d: encoder_backward_plan: token %d has id %d and position %d; ids "
                    "must lie in [0, %d) and positions in [0, %d) (the model's padded vocabulary "
                    "and context length): check the batch\n",
                    __FILE__, __LINE__, n, tokens[n], pos[n], Vp, max_T);
            exit(1);
        }
    }
    EncoderBackwardPlan plan;
    plan.N = N;
    plan.data.reserve(4 * (size_t)N + 2);
    plan.token_groups = encoder_append_groups(plan.data, tokens, N);
    plan.pos_groups = encoder_append_groups(plan.data, pos, N);
    return plan;
}

// out (N, C) = wte[tokens] + wpe[pos]; tokens, pos (N,) on the device.
inline void encoder_forward(floatX* out, const int* tokens, const int* pos, const floatX* wte,
                            const floatX* wpe, int N, int C, cudaStream_t stream) {
    const size_t total = (size_t)N * C;
    if (total == 0) return;
    const int block = 256;
    encoder_forward_kernel<<<(unsigned)((total + block - 1) / block), block, 0, stream>>>(
        out, tokens, pos, wte, wpe, N, C);
}

// dwte (Vp, C) and dwpe (maxT, C) += the embedding gradients of dout (N, C). plan: the host plan
// of this micro-batch (for its sizes); plan_data: its `data` uploaded to the device.
inline void encoder_backward(float* dwte, float* dwpe, const floatX* dout,
                             const EncoderBackwardPlan& plan, const int* plan_data, int C,
                             cudaStream_t stream) {
    if (plan.N == 0 || C == 0) return;
    const int block = 256;
    const int* token_ids = plan_data;
    const int* token_offsets = token_ids + plan.token_groups;
    const int* token_rows = token_offsets + plan.token_groups + 1;
    const int* pos_ids = token_rows + plan.N;
    const int* pos_offsets = pos_ids + plan.pos_groups;
    const int* pos_rows = pos_offsets + plan.pos_groups + 1;
    encoder_backward_kernel<<<plan.token_groups, block, 0, stream>>>(dwte, dout, token_ids,
                                                                     token_offsets, token_rows, C);
    encoder_backward_kernel<<<plan.pos_groups, block, 0, stream>>>(dwpe, dout, pos_ids,
                                                                   pos_offsets, pos_rows, C);
}
