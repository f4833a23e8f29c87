// kernels/adamw.cuh: the optimizer step on the GPU. AdamW over fp32 master weights and moments,
// one thread per parameter with kernels/adamw_math.h's update (the CPU trainer's), and the floatX
// copy of the parameters that the forward reads; the global gradient norm for clipping.
//   global_norm_squared: out[0] = sum of grads[i]^2, deterministic (kernels/reduce.cuh: fixed
//                        per-block partials, then one block adds them in a fixed order)
//   adamw_update:        master, m, v updated in place with grads[i] * grad_scale; params = master
// How the trainer uses them (as train_dpo_cpu): norm^2 to the host, norm = sqrt, clip factor
// grad_scale = grad_clip / norm when norm > grad_clip (else 1), computed on the host in float;
// then adamw_update once per parameter tensor, with weight_decay = the run's weight decay for the
// tensors that decay (common/model_config.h's param_tensor_decays: the matrices) and 0 for the
// others. Kernels first, then launchers.
#pragma once
#include <cstddef>
#include "kernels/adamw_math.h"
#include "kernels/cuda_common.h"
#include "kernels/reduce.cuh"

// One AdamW step over n parameters (grid-stride loop). master, m, v, grads, params: (n,).
// params may alias master in the fp32 build (floatX = float): each element is read before written.
__global__ void adamw_kernel(float* master, floatX* params, float* __restrict__ m,
                             float* __restrict__ v, const float* __restrict__ grads, size_t n,
                             float lr, float beta1, float beta2, float eps, float weight_decay,
                             float beta1_correction, float beta2_correction, float grad_scale) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float p = master[i], mi = m[i], vi = v[i];
        adamw_update_scalar(&p, &mi, &vi, grads[i] * grad_scale, lr, beta1, beta2, eps,
                            weight_decay, beta1_correction, beta2_correction);
        master[i] = p;
        m[i] = mi;
        v[i] = vi;
        params[i] = (floatX)p;
    }
}

// ----------------------------------------------------------------------------------------------
// Launchers.

// out[0] = sum of grads[i]^2 over n elements (fp32, deterministic). partials: scratch of
// SUM_SQUARES_BLOCKS floats (kernels/reduce.cuh).
inline void global_norm_squared(float* out, float* partials, const float* grads, size_t n,
                                cudaStream_t stream) {
    global_sum_squares(out, partials, grads, n, false, stream);
}

// Step t of AdamW over one tensor of n parameters: beta1_correction = 1 - beta1^t and
// beta2_correction = 1 - beta2^t (computed by the caller in float, as the CPU trainer does),
// the gradient is grads[i] * grad_scale (the clipping factor), decay is decoupled
// (param -= lr * weight_decay * param). master, m, v: fp32 (n,), updated in place; params: the
// floatX copy (n,), overwritten with the rounded new master (round to nearest).
inline void adamw_update(float* master, floatX* params, float* m, float* v, const float* grads,
                         size_t n, float lr, float beta1, float beta2, float eps,
                         float weight_decay, float beta1_correction, float beta2_correction,
                         float grad_scale, cudaStream_t stream) {
    if (n == 0) return;
    const int block = 512;
    const size_t blocks_needed = (n + block - 1) / block;
    const unsigned grid = (unsigned)(blocks_needed < 65536 ? blocks_needed : 65536);
    adamw_kernel<<<grid, block, 0, stream>>>(master, params, m, v, grads, n, lr, beta1, beta2,
                                            eps, weight_decay, beta1_correction,
                                            beta2_correction, grad_scale);
}
