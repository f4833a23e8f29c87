// GPT-2's random initialisation of the flat parameter buffer (common/model_config.h), shared by
// the CPU model (cpu/gpt2.h) and the GPU trainer so that both start from bit-identical weights
// for a seed: N(0, 0.02), residual projections (attprojw, fcprojw) scaled by 1/sqrt(2L), zero
// biases, LayerNorm weights 1; padded vocabulary rows of wte stay 0. The normal draws come in
// buffer order.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/model_config.h"
#include "common/rng.h"

// params: [num_parameters(c)], zero on entry
template <typename Real>
void gpt2_init_params(const ModelConfig& c, uint64_t seed, Real* params) {
    ParamTensors<Real> param(params, c);
    Rng rng(seed);
    const size_t V = c.vocab_size, C = c.channels, L = c.num_layers, maxT = c.max_seq_len;
    const double resid_std = 0.02 / std::sqrt(2.0 * c.num_layers);
    auto normal = [&](Real* p, size_t n, double sd) {
        for (size_t j = 0; j < n; j++) p[j] = (Real)(sd * rng.normal());
    };
    normal(param.wte, V * C, 0.02);
    normal(param.wpe, maxT * C, 0.02);
    normal(param.qkvw, L * 3 * C * C, 0.02);
    normal(param.attprojw, L * C * C, resid_std);
    normal(param.fcw, L * 4 * C * C, 0.02);
    normal(param.fcprojw, L * C * 4 * C, resid_std);
    std::fill_n(param.ln1w, L * C, (Real)1);
    std::fill_n(param.ln2w, L * C, (Real)1);
    std::fill_n(param.lnfw, C, (Real)1);
}
