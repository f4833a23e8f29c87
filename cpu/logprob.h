// The LM head over the scored tokens and their log-probabilities (CPU reference). Only tokens
// with a target go through it: a prompt token needs no logits. The head is tied to wte.
//   inp [M,C] the final LayerNorm's output at the M scored tokens, wte [Vp,C] (rows >= V unused),
//   target [M], probs [M,V] (the logits, then their softmax), logp [M], logit_mean [M].
//   logits[m] = inp[m] · wte[0:V]^T
//   logp[m] = logits[m][target[m]] - log sum_v exp(logits[m][v])     (log-softmax at the target)
//   logit_mean[m] = mean over v of logits[m][v]                      (TRL's logits/* metrics)
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include "cpu/matmul.h"
#include "cpu/parallel.h"

namespace cpu {

template <typename Real>
void logprob_forward(Real* probs, Real* logp, Real* logit_mean, const Real* inp, const Real* wte,
                     const int* target, int M, int C, int V) {
    if (M == 0) return;
    matmul_forward(probs, inp, wte, (const Real*)nullptr, M, C, V);
#pragma omp parallel for schedule(static) if ((size_t)M * V >= PARALLEL_MIN_WORK)
    for (int m = 0; m < M; m++) {
        Real* z = probs + (size_t)m * V;
        Real maxv = z[0], total = 0;
        for (int v = 0; v < V; v++) { maxv = std::max(maxv, z[v]); total += z[v]; }
        const Real target_logit = z[target[m]];
        Real sum = 0;
        for (int v = 0; v < V; v++) { z[v] = std::exp(z[v] - maxv); sum += z[v]; }
        logp[m] = target_logit - maxv - std::log(sum);
        logit_mean[m] = total / V;
        const Real inv = (Real)1 / sum;
        for (int v = 0; v < V; v++) z[v] *= inv;
    }
}

// From dlogp[M] (d loss / d logp[m]):
//   dlogits[M,V] = dlogp[m] * (onehot(target[m]) - probs[m])   (scratch, overwritten)
//   dinp[M,C] = dlogits · wte[0:V]  (overwritten),  dwte[0:V] += dlogits^T · inp
template <typename Real>
void logprob_backward(Real* dinp, Real* dwte, Real* dlogits, const Real* dlogp, const Real* probs,
                      const Real* inp, const Real* wte, const int* target, int M, int C, int V) {
    if (M == 0) return;
#pragma omp parallel for schedule(static) if ((size_t)M * V >= PARALLEL_MIN_WORK)
    for (int m = 0; m < M; m++) {
        const Real* p = probs + (size_t)m * V;
        Real* d = dlogits + (size_t)m * V;
        for (int v = 0; v < V; v++) d[v] = -dlogp[m] * p[v];
        d[target[m]] += dlogp[m];
    }
    matmul_backward(dinp, dwte, (Real*)nullptr, dlogits, inp, wte, M, C, V);
}

}  // namespace cpu
