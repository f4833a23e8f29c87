// dev/cuda/matmul_fp32.cu: dev/cuda/matmul.cu built with floatX = float (ENABLE_FP32), so that
// `make test` checks both precisions whatever PRECISION the build uses.
#ifndef ENABLE_FP32
#define ENABLE_FP32 1
#endif
#include "dev/cuda/matmul.cu"
