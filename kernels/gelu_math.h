// kernels/gelu_math.h: GELU, tanh approximation (GPT-2's "gelu_new"): the per-element forward and
// its derivative, shared by the CPU reference and the GPU kernels (kernels/gelu.cuh). Plain C++
// apart from kernels/host_device.h, so CPU code includes it without CUDA.
//   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
// Since 0.5 (1 + tanh(u)) = sigmoid(2u), it is computed as x * sigmoid(2u): one exp instead of a
// tanh, which is several times cheaper and the same function.
#pragma once
#include <cmath>
#include "kernels/host_device.h"

// exp in the precision of its argument
HOST_DEVICE inline float exp_of(float x) { return expf(x); }
HOST_DEVICE inline double exp_of(double x) { return exp(x); }

// sigmoid(2u) for GELU's inner u(x)
template <typename T>
HOST_DEVICE inline T gelu_gate(T x) {
    const T two_k = (T)1.5957691216057308;  // 2 sqrt(2/pi)
    T two_u = two_k * (x + (T)0.044715 * x * x * x);
    return (T)1 / ((T)1 + exp_of(-two_u));
}

template <typename T>
HOST_DEVICE inline T gelu_forward_scalar(T x) {
    return x * gelu_gate(x);
}

// d gelu / dx = s + x s (1 - s) d(2u)/dx,  s = sigmoid(2u)
template <typename T>
HOST_DEVICE inline T gelu_grad_scalar(T x) {
    const T two_k = (T)1.5957691216057308;
    T s = gelu_gate(x);
    return s + x * s * ((T)1 - s) * two_k * ((T)1 + (T)3 * (T)0.044715 * x * x);
}
