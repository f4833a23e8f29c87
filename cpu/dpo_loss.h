// The DPO loss of a micro-batch from its scored tokens' log-probs (CPU reference, no model):
// per-slot sums of the chosen and rejected log-probs, the loss of every pair (pair_loss of
// kernels/dpo_loss_math.h, in Real) and each scored token's backward coefficient. cpu/dpo.h runs
// it between the model's forward and backward; the GPU kernel (kernels/dpo_loss.cuh) is tested
// against it. Shapes: logp, logit_mean, slot, side, dlogp [M]; ref_chosen, ref_rejected [S].
#pragma once
#include <cstdint>
#include <vector>

#include "common/metrics.h"
#include "data/batch.h"
#include "kernels/dpo_loss_math.h"

namespace cpu {

// Per-slot sums over M scored tokens: logp, logit_mean, slot, side [M].
template <typename Real>
std::vector<PairLogps> gather_pair_logps(const Real* logp, const Real* logit_mean, const int* slot,
                                         const int8_t* side, int M, int n_slots) {
    std::vector<PairLogps> out(n_slots);
    for (int m = 0; m < M; m++) {
        PairLogps& p = out[slot[m]];
        if (side[m] == SIDE_CHOSEN) {
            p.chosen += (double)logp[m]; p.n_chosen++;
            p.logit_chosen += (double)logit_mean[m];
        } else {
            p.rejected += (double)logp[m]; p.n_rejected++;
            p.logit_rejected += (double)logit_mean[m];
        }
    }
    return out;
}

// The loss of every pair from its sums (pair_loss in Real), and dlogp[M], the backward
// coefficient of each scored token: scale * d loss / d logp of its pair side (slot, side [M]).
// ref_chosen/ref_rejected are indexed by slot. Returns the per-pair results (loss unscaled).
template <typename Real>
std::vector<PairResult> dpo_pair_losses(const std::vector<PairLogps>& lp,
                                        const std::vector<double>& ref_chosen,
                                        const std::vector<double>& ref_rejected,
                                        const LossSpec& spec, double scale, const int* slot,
                                        const int8_t* side, int M, Real* dlogp) {
    const int S = (int)lp.size();
    std::vector<PairResult> res(S);
    std::vector<Real> dchosen(S), drejected(S);
    for (int s = 0; s < S; s++) {
        res[s].policy = lp[s];
        res[s].ref_chosen = ref_chosen[s];
        res[s].ref_rejected = ref_rejected[s];
        Real dc, dr;
        Real loss = pair_loss<Real>(spec, (Real)lp[s].chosen, (Real)lp[s].rejected,
                                    (Real)ref_chosen[s], (Real)ref_rejected[s], lp[s].n_chosen,
                                    lp[s].n_rejected, &dc, &dr);
        res[s].loss = (double)loss;
        dchosen[s] = dc * (Real)scale;
        drejected[s] = dr * (Real)scale;
    }
    for (int m = 0; m < M; m++)
        dlogp[m] = side[m] == SIDE_CHOSEN ? dchosen[slot[m]] : drejected[slot[m]];
    return res;
}

}  // namespace cpu
