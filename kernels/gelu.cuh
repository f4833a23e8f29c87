// GELU, tanh approximation (GPT-2's "gelu_new"): the per-element forward and its derivative,
// shared by the CPU reference and the GPU kernels.
//   gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
#pragma once
#include <cmath>
#include "kernels/host_device.h"

template <typename T>
HOST_DEVICE inline T gelu_forward_scalar(T x) {
    const T k = (T)0.7978845608028654;  // sqrt(2/pi)
    T u = k * (x + (T)0.044715 * x * x * x);
    return (T)0.5 * x * ((T)1 + tanh(u));
}

// d gelu / dx
template <typename T>
HOST_DEVICE inline T gelu_grad_scalar(T x) {
    const T k = (T)0.7978845608028654;
    T u = k * (x + (T)0.044715 * x * x * x);
    T th = tanh(u);
    T sech2 = (T)1 - th * th;
    return (T)0.5 * ((T)1 + th) + (T)0.5 * x * sech2 * k * ((T)1 + (T)3 * (T)0.044715 * x * x);
}
