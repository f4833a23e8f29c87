// Residual connection (CPU reference): out[n] = a[n] + b[n] over n elements ([N,C] flattened).
// out may be a (the in-place add of the transformer blocks). Its backward is the identity: the
// gradient flows to both inputs unchanged, so there is no residual_backward.
#pragma once
#include <cstddef>
#include "cpu/parallel.h"

namespace cpu {

template <typename Real>
void residual_forward(Real* out, const Real* a, const Real* b, size_t n) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

}  // namespace cpu
