// Encoder: token + position embeddings of packed tokens (CPU reference).
//   out[N,C] = wte[tok[n]] + wpe[pos[n]]   with explicit position ids (a prefix-shared row
//   restarts the positions of its rejected response), wte [Vp,C], wpe [maxT,C].
#pragma once
#include <cstddef>
#include "cpu/parallel.h"

namespace cpu {

template <typename Real>
void encoder_forward(Real* out, const int* tok, const int* pos, const Real* wte, const Real* wpe,
                     int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const Real* te = wte + (size_t)tok[n] * C;
        const Real* pe = wpe + (size_t)pos[n] * C;
        Real* x = out + (size_t)n * C;
        for (int i = 0; i < C; i++) x[i] = te[i] + pe[i];
    }
}

// dwte[tok[n]] += dout[n], dwpe[pos[n]] += dout[n]. Serial, in token order: tokens and positions
// repeat, and a fixed order keeps the sums deterministic.
template <typename Real>
void encoder_backward(Real* dwte, Real* dwpe, const Real* dout, const int* tok, const int* pos,
                      int N, int C) {
    for (int n = 0; n < N; n++) {
        Real* dte = dwte + (size_t)tok[n] * C;
        Real* dpe = dwpe + (size_t)pos[n] * C;
        const Real* d = dout + (size_t)n * C;
        for (int i = 0; i < C; i++) { dte[i] += d[i]; dpe[i] += d[i]; }
    }
}

}  // namespace cpu
