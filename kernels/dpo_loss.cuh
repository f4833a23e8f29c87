// kernels/dpo_loss.cuh: the DPO loss of a micro-batch on the GPU, forward and backward in one
// kernel. From the M scored tokens' log-probs (and mean logits, for the logged metrics) it sums
// each pair's chosen and rejected log-probs, evaluates the loss of the pair with
// kernels/dpo_loss_math.h's pair_loss (the CPU trainer's function, every loss type and mix), and
// writes the per-token backward coefficient dlogp[m] = scale * d loss(pair) / d logp(pair side).
//
// The pair plan (built on the host by dpo_pair_plan from the scored tokens' slot[M] and side[M],
// the Batch's metadata of the tokens with target >= 0): for pair s, the indices (into the M scored
// tokens) of its chosen tokens are tokens[offsets[2s] .. offsets[2s+1]) and of its rejected
// tokens tokens[offsets[2s+1] .. offsets[2s+2]), each list in increasing index order. The scored
// tokens may come in any order; each pair side is summed in a fixed order (lanes stride the list,
// then a fixed butterfly), in double, so results are deterministic and the float rounding of the
// sums happens once, where pair_loss<float> takes them (as in the CPU trainer).
//
// One warp per pair: S warps. Shapes: logp, mean_logit, dlogp (M,); offsets (2S+1,); tokens (M,);
// ref_chosen, ref_rejected, results (S,). Kernels first, then the host plan and the launcher.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/cuda_common.h"
#include "kernels/dpo_loss_math.h"

// What the host needs about one pair after the loss: the policy sums behind the metrics (the
// fields of PairResult's PairLogps), the unscaled loss, and the pair's scaled coefficients.
struct DpoPairResult {
    double chosen, rejected;              // sums of the scored tokens' log-probs
    double logit_chosen, logit_rejected;  // sums over the scored tokens of the mean logit
    int n_chosen, n_rejected;             // scored tokens of each response
    float loss;                           // the pair's loss, unscaled
    float dchosen, drejected;             // scale * d loss / d logp(chosen), (rejected)
};

constexpr int DPO_LOSS_WARPS_PER_BLOCK = 4;

// Sum over the 32 lanes of the warp, in double; every lane gets the result.
__device__ inline double warp_sum_double(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// One warp per pair s (no block barrier: warps past S leave at once).
__global__ void dpo_loss_kernel(DpoPairResult* __restrict__ results, float* __restrict__ dlogp,
                                const float* __restrict__ logp,
                                const float* __restrict__ mean_logit,
                                const int* __restrict__ offsets, const int* __restrict__ tokens,
                                const float* __restrict__ ref_chosen,
                                const float* __restrict__ ref_rejected, LossSpec spec, int S,
                                float scale) {
    const int lane = threadIdx.x % 32;
    const int s = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (s >= S) return;
    double logp_sum[2], logit_sum[2];
    int count[2];
    for (int side = 0; side < 2; side++) {  // 0 chosen, 1 rejected
        const int begin = offsets[2 * s + side], end = offsets[2 * s + side + 1];
        double lp = 0.0, lg = 0.0;
        for (int i = begin + lane; i < end; i += 32) {
            const int m = tokens[i];
            lp += (double)logp[m];
            lg += (double)mean_logit[m];
        }
        logp_sum[side] = warp_sum_double(lp);
        logit_sum[side] = warp_sum_double(lg);
        count[side] = end - begin;
    }
    float dc, dr;
    const float loss = pair_loss<float>(spec, (float)logp_sum[0], (float)logp_sum[1], ref_chosen[s],
                                        ref_rejected[s], count[0], count[1], &dc, &dr);
    dc *= scale;
    dr *= scale;
    if (lane == 0) {
        DpoPairResult r;
        r.chosen = logp_sum[0];
        r.rejected = logp_sum[1];
        r.logit_chosen = logit_sum[0];
        r.logit_rejected = logit_sum[1];
        r.n_chosen = count[0];
        r.n_rejected = count[1];
        r.loss = loss;
        r.dchosen = dc;
        r.drejected = dr;
        results[s] = r;
    }
    for (int side = 0; side < 2; side++) {
        const float d = side == 0 ? dc : dr;
        for (int i = offsets[2 * s + side] + lane; i < offsets[2 * s + side + 1]; i += 32)
            dlogp[tokens[i]] = d;
    }
}

// ----------------------------------------------------------------------------------------------
// Host plan and launcher.

// The pair plan of a micro-batch (see the top of this file), in host memory; upload both arrays.
struct DpoPairPlan {
    std::vector<int> offsets;  // (2S+1,)
    std::vector<int> tokens;   // (M,)
};

// Builds the plan from the scored tokens' slot (0..S-1) and side (SIDE_CHOSEN = 1 or
// SIDE_REJECTED = 2, data/batch.h), M entries each. Every pair must have at least one scored token
// on each side (pair_loss divides by the counts); anything else is an error naming the token.
inline DpoPairPlan dpo_pair_plan(const int32_t* slot, const int8_t* side, int M, int S) {
    DpoPairPlan plan;
    plan.offsets.assign(2 * S + 1, 0);
    for (int m = 0; m < M; m++) {
        if (slot[m] < 0 || slot[m] >= S || (side[m] != 1 && side[m] != 2)) {
            fprintf(stderr, "%s:%d: dpo_pair_plan: scored token %d has slot %d and side %d; every "
                    "scored token needs a slot in [0, %d) and side 1 (chosen) or 2 (rejected): "
                    "check the batch's target/slot/side metadata\n",
                    __FILE__, __LINE__, m, slot[m], (int)side[m], S);
            exit(1);
        }
        plan.offsets[2 * slot[m] + side[m]]++;  // counts, shifted by one for the prefix sum
    }
    for (int k = 0; k < 2 * S; k++) {
        if (plan.offsets[k + 1] == 0) {
            fprintf(stderr, "%s:%d: dpo_pair_plan: pair slot %d has no scored %s token; every "
                    "pair needs at least one on each side\n",
                    __FILE__, __LINE__, k / 2, k % 2 == 0 ? "chosen" : "rejected");
            exit(1);
        }
        plan.offsets[k + 1] += plan.offsets[k];
    }
    std::vector<int> next(plan.offsets.begin(), plan.offsets.end() - 1);
    plan.tokens.resize(M);
    for (int m = 0; m < M; m++) plan.tokens[next[2 * slot[m] + side[m] - 1]++] = m;
    return plan;
}

// Loss, per-pair results and dlogp (overwritten, all M entries) of one micro-batch of S pairs.
// logp, mean_logit (M,): per scored token (logprob_forward); offsets (2S+1,), tokens (M,): the
// uploaded dpo_pair_plan; ref_chosen, ref_rejected (S,): the reference model's sums per pair
// slot; scale: the factor of every pair's loss in the step (1 / pairs of the step).
// results (S,): copy back for the metrics (loss unscaled).
inline void dpo_loss_forward_backward(DpoPairResult* results, float* dlogp, const float* logp,
                                      const float* mean_logit, const int* offsets,
                                      const int* tokens, const float* ref_chosen,
                                      const float* ref_rejected, const LossSpec& spec, int S,
                                      float scale, cudaStream_t stream) {
    if (S == 0) return;
    const int grid = (S + DPO_LOSS_WARPS_PER_BLOCK - 1) / DPO_LOSS_WARPS_PER_BLOCK;
    dpo_loss_kernel<<<grid, 32 * DPO_LOSS_WARPS_PER_BLOCK, 0, stream>>>(
        results, dlogp, logp, mean_logit, offsets, tokens, ref_chosen, ref_rejected, spec, S, scale);
}
