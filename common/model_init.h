// GPT-2's random initialisation of the flat parameter buffer (common/model_config.h), shared by
// the CPU model and the GPU trainer so that both start from bit-identical weights for a seed:
// N(0, 0.02), residual projections (attprojw, fcprojw) scaled by 1/sqrt(2L), zero biases,
// LayerNorm weights 1; padded vocabulary rows of wte stay 0.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/model_config.h"
#include "common/rng.h"

// params: [num_parameters(c)], zero on entry
template <typename T>
void gpt2_init_params(const ModelConfig& c, uint64_t seed, T* params) {
    Rng rng(seed);
    size_t sizes[NUM_PARAM_TENSORS];
    param_sizes(c, sizes);
    const double resid_std = 0.02 / std::sqrt(2.0 * c.num_layers);
    T* p = params;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        if (i == 2 || i == 8 || i == 14) {        // ln1w, ln2w, lnfw
            std::fill(p, p + sizes[i], (T)1);
        } else if (param_tensor_decays(i)) {      // matrices
            double sd = (i == 6 || i == 12) ? resid_std : 0.02;
            size_t n = (i == 0) ? (size_t)c.vocab_size * c.channels : sizes[i];
            for (size_t j = 0; j < n; j++) p[j] = (T)(sd * rng.normal());
        }
        p += sizes[i];
    }
}
