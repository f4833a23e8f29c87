// The one threshold every OpenMP loop of the CPU reference shares. Only cpu/ includes OpenMP.
#pragma once
#include <cstddef>
#include <omp.h>

namespace cpu {

// Loops with less work than this run on one thread: a parallel region costs microseconds, and
// far more on a busy machine, which would dominate a small model.
static const size_t PARALLEL_MIN_WORK = 1 << 16;

}  // namespace cpu
