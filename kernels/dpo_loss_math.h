// kernels/dpo_loss_math.h: the preference loss of one pair and its derivatives with respect to
// the policy's log-probs, shared by the CPU reference and the GPU kernel (kernels/dpo_loss.cuh;
// no CUDA here; docs/DESIGN.md §1.1). Loss types use TRL's names:
//   h = beta * ((pc - rc) - (pr - rr))          pc, pr: policy logps of chosen / rejected (sums)
//   sigmoid: -(1-eps) log s(h) - eps log s(-h)  (eps = label smoothing; cDPO)
//   ipo:     (h'/beta - 1/(2 beta))^2           h' uses per-token averaged logps
//   hinge:   max(0, 1 - h)
//   sft:     -pc / nc                            NLL of the chosen response per token
// The total is the weighted sum over the enabled types. Written in terms of log-sigmoid so that
// |h| of hundreds neither overflows nor produces NaN.
#pragma once
#include <cmath>
#include "kernels/host_device.h"

enum LossType { LOSS_SIGMOID = 0, LOSS_IPO = 1, LOSS_HINGE = 2, LOSS_SFT = 3, NUM_LOSS_TYPES = 4 };

struct LossSpec {
    float weight[NUM_LOSS_TYPES] = {1.0f, 0.0f, 0.0f, 0.0f};  // sigmoid only = DPO
    float beta = 0.1f;
    float label_smoothing = 0.0f;
};

// log(sigmoid(x)) without overflow: -softplus(-x)
template <typename T>
HOST_DEVICE inline T log_sigmoid(T x) {
    return x >= (T)0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

template <typename T>
HOST_DEVICE inline T sigmoid(T x) {
    return x >= (T)0 ? (T)1 / ((T)1 + exp(-x)) : exp(x) / ((T)1 + exp(x));
}

// Loss of one pair and d loss / d pc, d loss / d pr. nc, nr: scored tokens of each response.
template <typename T>
HOST_DEVICE inline T pair_loss(const LossSpec& spec, T pc, T pr, T rc, T rr, int nc, int nr,
                               T* dpc, T* dpr) {
    const T beta = (T)spec.beta;
    T loss = 0, gc = 0, gr = 0;
    if (spec.weight[LOSS_SIGMOID] != 0.0f) {
        const T w = (T)spec.weight[LOSS_SIGMOID], eps = (T)spec.label_smoothing;
        T h = beta * ((pc - rc) - (pr - rr));
        loss += w * (-((T)1 - eps) * log_sigmoid(h) - eps * log_sigmoid(-h));
        T dh = -((T)1 - eps) * sigmoid(-h) + eps * sigmoid(h);  // d loss / d h
        gc += w * dh * beta;
        gr -= w * dh * beta;
    }
    if (spec.weight[LOSS_IPO] != 0.0f) {
        const T w = (T)spec.weight[LOSS_IPO];
        T u = (pc - rc) / (T)nc - (pr - rr) / (T)nr - (T)1 / ((T)2 * beta);
        loss += w * u * u;
        gc += w * (T)2 * u / (T)nc;
        gr -= w * (T)2 * u / (T)nr;
    }
    if (spec.weight[LOSS_HINGE] != 0.0f) {
        const T w = (T)spec.weight[LOSS_HINGE];
        T h = beta * ((pc - rc) - (pr - rr));
        if (h < (T)1) {
            loss += w * ((T)1 - h);
            gc -= w * beta;
            gr += w * beta;
        }
    }
    if (spec.weight[LOSS_SFT] != 0.0f) {
        const T w = (T)spec.weight[LOSS_SFT];
        loss += w * (-pc / (T)nc);
        gc -= w / (T)nc;
    }
    *dpc = gc;
    *dpr = gr;
    return loss;
}
