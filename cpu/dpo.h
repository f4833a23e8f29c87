// From per-token log-probs to the DPO loss of a micro-batch and back: sums the scored tokens of
// each pair into logp(chosen), logp(rejected), evaluates the loss of every pair
// (kernels/dpo_loss_math.h) and turns d loss / d logp(pair) into d loss / d logp(token) for the
// model's backward (the per-pair results go to common/metrics.h).
#pragma once
#include <vector>

#include "cpu/dpo_loss.h"
#include "cpu/gpt2.h"

namespace cpu {

// Per-slot sums over the scored tokens of the model's last forward.
template <typename Real>
std::vector<PairLogps> gather_pair_logps(const GPT2<Real>& model, int n_slots) {
    return gather_pair_logps(model.logp.data(), model.logit_mean.data(), model.scored_slot.data(),
                             model.scored_side.data(), model.M(), n_slots);
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
    std::vector<Real> dlogp(model.M());
    std::vector<PairResult> res =
        dpo_pair_losses(gather_pair_logps(model, b.n_slots()), ref_chosen, ref_rejected, spec, scale,
                        model.scored_slot.data(), model.scored_side.data(), model.M(), dlogp.data());
    model.backward(dlogp.data());
    return res;
}

}  // namespace cpu
