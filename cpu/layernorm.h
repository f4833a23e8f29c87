// LayerNorm over the last dimension (CPU reference):
//   out[N,C] = (inp - mean) * rstd * weight[C] + bias[C],  rstd = 1 / sqrt(var + eps)
// mean[N] and rstd[N] are kept for the backward. eps comes from the model config.
#pragma once
#include <cmath>
#include <cstddef>
#include <vector>
#include "cpu/parallel.h"

namespace cpu {

template <typename Real>
void layernorm_forward(Real* out, Real* mean, Real* rstd, const Real* inp, const Real* weight,
                       const Real* bias, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const Real* x = inp + (size_t)n * C;
        Real m = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        Real v = 0;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        v /= C;
        Real s = (Real)1 / std::sqrt(v + (Real)eps);
        Real* o = out + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * weight[i] + bias[i];
        mean[n] = m;
        rstd[n] = s;
    }
}

// dinp[N,C] += d loss / d inp, dweight[C] += ..., dbias[C] += ... (all accumulated)
template <typename Real>
void layernorm_backward(Real* dinp, Real* dweight, Real* dbias, const Real* dout, const Real* inp,
                        const Real* weight, const Real* mean, const Real* rstd, int N, int C) {
    int nthreads = omp_get_max_threads();
    std::vector<Real> partial((size_t)nthreads * 2 * C, (Real)0);  // per thread: dweight, dbias
#pragma omp parallel if ((size_t)N * C >= PARALLEL_MIN_WORK)
    {
        Real* pw = partial.data() + (size_t)omp_get_thread_num() * 2 * C;
        Real* pb = pw + C;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const Real* x = inp + (size_t)n * C;
            const Real* dy = dout + (size_t)n * C;
            Real* dx = dinp + (size_t)n * C;
            Real m = mean[n], s = rstd[n];
            Real dnorm_mean = 0, dnorm_norm_mean = 0;
            for (int i = 0; i < C; i++) {
                Real norm = (x[i] - m) * s;
                Real dnorm = weight[i] * dy[i];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * norm;
            }
            dnorm_mean /= C;
            dnorm_norm_mean /= C;
            for (int i = 0; i < C; i++) {
                Real norm = (x[i] - m) * s;
                Real dnorm = weight[i] * dy[i];
                dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
                pw[i] += norm * dy[i];
                pb[i] += dy[i];
            }
        }
    }
    for (int t = 0; t < nthreads; t++) {
        const Real* pw = partial.data() + (size_t)t * 2 * C;
        for (int i = 0; i < C; i++) {
            dweight[i] += pw[i];
            dbias[i] += pw[C + i];
        }
    }
}

}  // namespace cpu
