// dev/cuda/gelu_fp32.cu: dev/cuda/gelu.cu built with floatX = float (ENABLE_FP32), so that
// `make test` checks both precisions whatever PRECISION the build uses.
#ifndef ENABLE_FP32
#define ENABLE_FP32 1
#endif
#include "dev/cuda/gelu.cu"
