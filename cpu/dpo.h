// From per-token log-probs to the DPO loss of a micro-batch and back: sums the scored tokens of
// each pair into logp(chosen), logp(rejected), evaluates the loss of every pair
// (kernels/dpo_loss_math.h) and turns d loss / d logp(pair) into d loss / d logp(token) for the
// model's backward (the per-pair results go to common/metrics.h).
#pragma once
#include <vector>

#include "common/metrics.h"
#include "cpu/gpt2.h"
#include "kernels/dpo_loss_math.h"

namespace cpu {

// Per-slot sums over the scored tokens of the model's last forward.
template <typename Real>
std::vector<PairLogps> gather_pair_logps(const GPT2<Real>& model, int n_slots) {
    std::vector<PairLogps> out(n_slots);
    for (int m = 0; m < model.M(); m++) {
        PairLogps& p = out[model.scored_slot[m]];
        if (model.scored_side[m] == SIDE_CHOSEN) {
            p.chosen += (double)model.logp[m]; p.n_chosen++;
            p.logit_chosen += (double)model.logit_mean[m];
        } else {
            p.rejected += (double)model.logp[m]; p.n_rejected++;
            p.logit_rejected += (double)model.logit_mean[m];
        }
    }
    return out;
}

// Forward + loss + backward of one micro-batch. ref_chosen/ref_rejected are indexed by slot.
// Every pair's loss is multiplied by `scale` (1 / pairs of the global batch) before the
// backward, so the gradients accumulated over micro-batches are those of the batch mean.
// Returns the per-pair results (loss unscaled).
template <typename Real>
std::vector<PairResult> dpo_forward_backward(GPT2<Real>& model, const Batch& b,
                                             const std::vector<double>& ref_chosen,
                                             const std::vector<double>& ref_rejected,
                                             const LossSpec& spec, double scale) {
    model.forward(b);
    const int S = b.n_slots();
    std::vector<PairLogps> lp = gather_pair_logps(model, S);
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
    std::vector<Real> dlogp(model.M());
    for (int m = 0; m < model.M(); m++) {
        int s = model.scored_slot[m];
        dlogp[m] = model.scored_side[m] == SIDE_CHOSEN ? dchosen[s] : drejected[s];
    }
    model.backward(dlogp.data());
    return res;
}

}  // namespace cpu
