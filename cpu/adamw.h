// The optimizer step of the CPU trainer: global gradient norm (for clipping) and AdamW over the
// flat parameter buffer, one element at a time with kernels/adamw_math.h's update (the GPU kernel
// uses the same). Weight decay applies to the tensors param_tensor_decays names. fp32 only.
//   params, grads, m, v: [num_parameters(cfg)] in the layout of common/model_config.h
#pragma once
#include <cmath>
#include <cstddef>
#include "common/model_config.h"
#include "cpu/parallel.h"
#include "kernels/adamw_math.h"

namespace cpu {

struct AdamWSettings {
    float lr = 1e-4f;
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float weight_decay = 0.0f;  // for the tensors that decay
};

// sqrt(sum of grads[i]^2), summed in double
inline double global_grad_norm(const float* grads, size_t n) {
    double sumsq = 0;
#pragma omp parallel for reduction(+ : sumsq) schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++) sumsq += (double)grads[i] * grads[i];
    return std::sqrt(sumsq);
}

// Step t (1, 2, ...) of AdamW over n parameters, with the gradient grads[i] * grad_scale (the
// clipping factor) and weight decay only if `decays`.
inline void adamw_update(float* params, float* m, float* v, const float* grads, size_t n,
                         float grad_scale, const AdamWSettings& s, bool decays, long t) {
    const float wd = decays ? s.weight_decay : 0.0f;
    const float bc1 = 1.0f - std::pow(s.beta1, (float)t);
    const float bc2 = 1.0f - std::pow(s.beta2, (float)t);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        adamw_update_scalar(&params[i], &m[i], &v[i], grads[i] * grad_scale, s.lr, s.beta1, s.beta2,
                            s.eps, wd, bc1, bc2);
}

// Step t of AdamW over every tensor of the model.
inline void adamw_update_model(const ModelConfig& cfg, float* params, float* m, float* v,
                               const float* grads, float grad_scale, const AdamWSettings& s, long t) {
    size_t sizes[NUM_PARAM_TENSORS], off = 0;
    param_sizes(cfg, sizes);
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        adamw_update(params + off, m + off, v + off, grads + off, sizes[i], grad_scale, s,
                     param_tensor_decays(i), t);
        off += sizes[i];
    }
}

}  // namespace cpu
