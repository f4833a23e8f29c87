// GPT-2's random initialisation of the flat parameter buffer (common/model_config.h), shared by
// the CPU model (cpu/gpt2.h) and the GPU trainer so that both start from bit-identical weights
// for a seed: N(0, 0.02), residual projections (attprojw, fcprojw) scaled by 1/sqrt(2L), zero
// biases, LayerNorm weights 1; padded vocabulary rows of wte stay 0. The normal draws come in
// buffer order: one SplitMix64 stream (common/rng.h) of two draws per value, value i of the six
// weight matrices laid end to end (wte, wpe, qkvw, attprojw, fcw, fcprojw) made from draws 2i and
// 2i + 1. The generator jumps to any draw at no cost, so threads fill chunks of that sequence at
// once, each from its own start: the same bits for any thread count (d48's 1.56B values take
// tens of seconds of one core). common/test_model_init.cpp checks this against the sequential loop.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "common/model_config.h"
#include "common/rng.h"

// n normal values of standard deviation sd at p: one tensor's part of the sequence.
template <typename Real>
struct NormalFill {
    Real* p;
    size_t n;
    double sd;
};

// Values [begin, end) of the fills laid end to end, from seed's stream.
template <typename Real>
void fill_normal_slice(const std::vector<NormalFill<Real>>& fills, uint64_t seed, size_t begin, size_t end) {
    Rng rng(seed);
    rng.skip(2 * begin);  // value i starts at draw 2i
    size_t first = 0;     // where this fill starts in the sequence
    for (const NormalFill<Real>& f : fills) {
        const size_t lo = std::max(begin, first), hi = std::min(end, first + f.n);
        for (size_t i = lo; i < hi; i++) f.p[i - first] = (Real)(f.sd * rng.normal());
        first += f.n;
    }
}

// params: [num_parameters(c)], zero on entry. threads: how many fill the normal values (0 = one
// per core); the weights do not depend on it.
template <typename Real>
void gpt2_init_params(const ModelConfig& c, uint64_t seed, Real* params, int threads = 0) {
    ParamTensors<Real> param(params, c);
    const size_t V = c.vocab_size, C = c.channels, L = c.num_layers, maxT = c.max_seq_len;
    const double resid_std = 0.02 / std::sqrt(2.0 * c.num_layers);
    const std::vector<NormalFill<Real>> fills = {
        {param.wte, V * C, 0.02},
        {param.wpe, maxT * C, 0.02},
        {param.qkvw, L * 3 * C * C, 0.02},
        {param.attprojw, L * C * C, resid_std},
        {param.fcw, L * 4 * C * C, 0.02},
        {param.fcprojw, L * C * 4 * C, resid_std}};
    size_t total = 0;
    for (const NormalFill<Real>& f : fills) total += f.n;
    if (threads <= 0) threads = (int)std::max(1u, std::thread::hardware_concurrency());
    // 16 chunks per thread, each taken by the next thread free: one that other work on the
    // machine slows down takes fewer
    const size_t chunk = std::max<size_t>(1, (total + 16 * threads - 1) / (16 * threads));
    std::atomic<size_t> next_chunk{0};
    auto fill_chunks = [&]() {
        for (size_t begin; (begin = next_chunk.fetch_add(chunk)) < total;)
            fill_normal_slice(fills, seed, begin, std::min(total, begin + chunk));
    };
    std::vector<std::thread> workers;
    for (int t = 1; t < threads; t++) workers.emplace_back(fill_chunks);
    fill_chunks();
    for (std::thread& w : workers) w.join();
    std::fill_n(param.ln1w, L * C, (Real)1);
    std::fill_n(param.ln2w, L * C, (Real)1);
    std::fill_n(param.lnfw, C, (Real)1);
}
