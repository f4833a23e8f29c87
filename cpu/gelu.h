// GELU over arrays (CPU reference), element by element with kernels/gelu_math.h's scalar functions
// (the tanh approximation, as GPT-2). n elements, e.g. [N,4C] flattened.
#pragma once
#include <cstddef>
#include "cpu/parallel.h"
#include "kernels/gelu_math.h"

namespace cpu {

// out[i] = gelu(inp[i])
template <typename Real>
void gelu_forward(Real* out, const Real* inp, size_t n) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++) out[i] = gelu_forward_scalar(inp[i]);
}

// dinp[i] = dout[i] * gelu'(inp[i])   (overwritten, not accumulated)
template <typename Real>
void gelu_backward(Real* dinp, const Real* inp, const Real* dout, size_t n) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * gelu_grad_scalar(inp[i]);
}

}  // namespace cpu
