// Matrix multiply of a linear layer (CPU reference), weights stored [out, in] as in llm.c:
//   out[N,OC] = inp[N,IC] · weight[OC,IC]^T + bias[OC]   (bias may be null)
// The generic template is plain loops (double: the gradient checks); the float overloads call a
// BLAS (sgemm), which is what the CPU trainer runs. Only cpu/ includes BLAS.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <cblas.h>
#include "cpu/parallel.h"

namespace cpu {

template <typename Real>
void matmul_forward(Real* out, const Real* inp, const Real* weight, const Real* bias, int N, int IC,
                    int OC) {
#pragma omp parallel for schedule(static) if ((size_t)N * IC * OC >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const Real* x = inp + (size_t)n * IC;
        for (int o = 0; o < OC; o++) {
            const Real* w = weight + (size_t)o * IC;
            Real s = bias ? bias[o] : (Real)0;
            for (int i = 0; i < IC; i++) s += x[i] * w[i];
            out[(size_t)n * OC + o] = s;
        }
    }
}

inline void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                           int N, int IC, int OC) {
    if (bias) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, OC * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, weight, IC,
                bias ? 1.0f : 0.0f, out, OC);
}

// dinp[N,IC] = dout · weight (overwritten; skipped when dinp is null),
// dweight[OC,IC] += dout^T · inp, dbias[OC] += column sums of dout (skipped when null)
template <typename Real>
void matmul_backward(Real* dinp, Real* dweight, Real* dbias, const Real* dout, const Real* inp,
                     const Real* weight, int N, int IC, int OC) {
    if (dinp) {
#pragma omp parallel for schedule(static) if ((size_t)N * IC * OC >= PARALLEL_MIN_WORK)
        for (int n = 0; n < N; n++) {
            Real* dx = dinp + (size_t)n * IC;
            for (int i = 0; i < IC; i++) dx[i] = 0;
            for (int o = 0; o < OC; o++) {
                Real d = dout[(size_t)n * OC + o];
                const Real* w = weight + (size_t)o * IC;
                for (int i = 0; i < IC; i++) dx[i] += d * w[i];
            }
        }
    }
#pragma omp parallel for schedule(static) if ((size_t)N * IC * OC >= PARALLEL_MIN_WORK)
    for (int o = 0; o < OC; o++) {
        Real* dw = dweight + (size_t)o * IC;
        Real db = 0;
        for (int n = 0; n < N; n++) {
            Real d = dout[(size_t)n * OC + o];
            const Real* x = inp + (size_t)n * IC;
            for (int i = 0; i < IC; i++) dw[i] += d * x[i];
            db += d;
        }
        if (dbias) dbias[o] += db;
    }
}

inline void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                            const float* inp, const float* weight, int N, int IC, int OC) {
    if (dinp) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, weight,
                    IC, 0.0f, dinp, IC);
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f,
                dweight, IC);
    if (dbias) {
        // column sums, walking dout row by row (contiguous) over one block of columns per task
        const int block = 64;
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= PARALLEL_MIN_WORK)
        for (int o0 = 0; o0 < OC; o0 += block) {
            const int o1 = std::min(OC, o0 + block);
            float s[block] = {0};
            for (int n = 0; n < N; n++) {
                const float* d = dout + (size_t)n * OC;
                for (int o = o0; o < o1; o++) s[o - o0] += d[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += s[o - o0];
        }
    }
}

}  // namespace cpu
