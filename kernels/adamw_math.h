// kernels/adamw_math.h: the AdamW update of one parameter (decoupled weight decay, bias-corrected
// moments), shared by the CPU trainer and the GPU kernel (kernels/adamw.cuh); no CUDA here.
// beta1_correction = 1 - beta1^t, beta2_correction = 1 - beta2^t.
#pragma once
#include <cmath>
#include "kernels/host_device.h"

HOST_DEVICE inline void adamw_update_scalar(float* param, float* m, float* v, float grad,
                                            float lr, float beta1, float beta2, float eps,
                                            float weight_decay, float beta1_correction,
                                            float beta2_correction) {
    float mt = beta1 * *m + (1.0f - beta1) * grad;
    float vt = beta2 * *v + (1.0f - beta2) * grad * grad;
    *m = mt;
    *v = vt;
    float m_hat = mt / beta1_correction;
    float v_hat = vt / beta2_correction;
    *param -= lr * (m_hat / (sqrtf(v_hat) + eps) + weight_decay * *param);
}
