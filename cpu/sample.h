// Text generation on the CPU from a GPT-2 held in the project's flat float parameter buffer
// (common/model_config.h), one token at a time over a KV cache, so generating n tokens costs
// O(n) forwards of one token instead of O(n^2) tokens.
//
//   Sampler s(cfg, params, settings);
//   SampleResult r = s.generate(prompt_tokens);     // r.tokens: the new tokens (EOS included)
//
// Decoding: greedy (or temperature 0) takes the most likely token (the lowest id on a tie);
// otherwise the logits are divided by the temperature, cut to the top_k most likely tokens
// (0 = no cut), then to the smallest set of most likely tokens whose probability reaches top_p
// (1 = no cut), and a token is drawn from what is left with the seeded Rng (common/rng.h), so
// the same seed gives the same tokens. Generation stops at eos_token (-1: never), after
// max_new_tokens, or when the context (max_seq_len positions) is full.
//
// The per-token forward computes what cpu/gpt2.h's forward computes for one token, with the
// same GELU (kernels/gelu_math.h) and the same LayerNorm and attention arithmetic, but for a single
// row: no OpenMP regions (forking threads for one row costs more than the row), matrix-vector
// products through BLAS sgemv (several times faster than a one-row sgemm), and attention for
// one query against the cached keys and values.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>
#include <cblas.h>
#include "common/model_config.h"
#include "common/rng.h"
#include "kernels/gelu_math.h"

namespace cpu {

// out[OC] = weight[OC, IC] · inp[IC] + bias[OC] (bias may be null): matmul_forward for one token
static inline void matvec_forward(float* out, const float* inp, const float* weight, const float* bias, int IC,
                                  int OC) {
    if (bias) memcpy(out, bias, sizeof(float) * OC);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, IC, 1.0f, weight, IC, inp, 1, bias ? 1.0f : 0.0f, out, 1);
}

// out[C] = (x - mean) / sqrt(var + eps) * weight + bias: layernorm_forward for one token
static inline void layernorm_row(float* out, const float* x, const float* weight, const float* bias, int C, float eps) {
    float mean = 0, var = 0;
    for (int i = 0; i < C; i++) mean += x[i];
    mean /= C;
    for (int i = 0; i < C; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= C;
    float rstd = 1.0f / std::sqrt(var + eps);
    for (int i = 0; i < C; i++) out[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
}

struct SampleSettings {
    bool greedy = false;
    float temperature = 1.0f;  // 0 = greedy
    int top_k = 0;             // 0 = all tokens
    float top_p = 1.0f;        // 1 = all tokens
    int max_new_tokens = 64;
    uint64_t seed = 1337;
    int eos_token = 50256;     // generation stops after emitting it; -1 = never
};

// bad_prompt: empty, longer than max_seq_len, or a token id outside [0, vocab_size); nothing generated
enum class SampleStop { eos, max_new_tokens, context_full, bad_prompt };

struct SampleResult {
    std::vector<int> tokens;  // the generated tokens, not the prompt
    SampleStop stop = SampleStop::max_new_tokens;
};

struct Sampler {
    ModelConfig cfg;
    const float* params;  // [num_parameters(cfg)], not owned
    SampleSettings settings;
    Rng rng;
    int n_cached = 0;  // positions 0 .. n_cached-1 hold keys and values

    // caches and scratch: k, v [L, maxT, C]; x, ln, atty, proj [C]; qkv [3C]; fch, fch_gelu [4C];
    // att [maxT]; logits [V]
    std::vector<float> k_cache, v_cache, x, ln, qkv, att, atty, proj, fch, fch_gelu, logits;
    ParamTensors<const float> weights;  // named views of params

    Sampler(const ModelConfig& c, const float* p, const SampleSettings& s)
        : cfg(c), params(p), settings(s), rng(s.seed), weights(p, c) {
        size_t C = c.channels, L = c.num_layers, T = c.max_seq_len;
        k_cache.assign(L * T * C, 0.0f);
        v_cache.assign(L * T * C, 0.0f);
        x.resize(C); ln.resize(C); atty.resize(C); proj.resize(C); qkv.resize(3 * C);
        fch.resize(4 * C); fch_gelu.resize(4 * C); att.resize(T); logits.resize(c.vocab_size);
    }

    // Forgets the cached positions (the Rng keeps its state: reseed with rng = Rng(seed)).
    void reset() { n_cached = 0; }

    // Runs `token` at position n_cached and returns the logits [V] of the next token.
    const float* step(int token) {
        const int C = cfg.channels, NH = cfg.num_heads, hs = C / NH, V = cfg.vocab_size;
        const int t = n_cached;  // this token's position; the caller keeps t < max_seq_len
        const float eps = cfg.layernorm_eps;
        const float* wte = weights.wte + (size_t)token * C;
        const float* wpe = weights.wpe + (size_t)t * C;
        for (int i = 0; i < C; i++) x[i] = wte[i] + wpe[i];
        for (int l = 0; l < cfg.num_layers; l++) {
            const LayerParams<const float> w = weights.layer(l);
            layernorm_row(ln.data(), x.data(), w.ln1w, w.ln1b, C, eps);
            matvec_forward(qkv.data(), ln.data(), w.qkvw, w.qkvb, C, 3 * C);
            float* keys = &k_cache[((size_t)l * cfg.max_seq_len) * C];    // [maxT, C]
            float* values = &v_cache[((size_t)l * cfg.max_seq_len) * C];  // [maxT, C]
            std::copy(qkv.begin() + C, qkv.begin() + 2 * C, keys + (size_t)t * C);
            std::copy(qkv.begin() + 2 * C, qkv.end(), values + (size_t)t * C);
            attend(keys, values, t, NH, hs);
            matvec_forward(proj.data(), atty.data(), w.attprojw, w.attprojb, C, C);
            for (int i = 0; i < C; i++) x[i] += proj[i];
            layernorm_row(ln.data(), x.data(), w.ln2w, w.ln2b, C, eps);
            matvec_forward(fch.data(), ln.data(), w.fcw, w.fcb, C, 4 * C);
            for (int i = 0; i < 4 * C; i++) fch_gelu[i] = gelu_forward_scalar(fch[i]);
            matvec_forward(proj.data(), fch_gelu.data(), w.fcprojw, w.fcprojb, 4 * C, C);
            for (int i = 0; i < C; i++) x[i] += proj[i];
        }
        layernorm_row(ln.data(), x.data(), weights.lnfw, weights.lnfb, C, eps);
        matvec_forward(logits.data(), ln.data(), weights.wte, nullptr, C, V);  // tied LM head
        n_cached++;
        return logits.data();
    }

    // Picks the next token from logits [V] according to the settings.
    int choose(const float* z) {
        const int V = cfg.vocab_size;
        if (settings.greedy || settings.temperature <= 0.0f)
            return (int)(std::max_element(z, z + V) - z);  // first maximum: lowest id on a tie
        // candidates, most likely first (ties: lower id first)
        std::vector<int> ids(V);
        for (int v = 0; v < V; v++) ids[v] = v;
        auto more_likely = [&](int a, int b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
        int keep = (settings.top_k > 0 && settings.top_k < V) ? settings.top_k : V;
        if (keep < V || settings.top_p < 1.0f) {
            std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), more_likely);
            ids.resize(keep);
        }
        std::vector<double> prob(ids.size());
        double maxz = z[ids[0]], sum = 0;
        for (int id : ids) maxz = std::max(maxz, (double)z[id]);
        for (size_t i = 0; i < ids.size(); i++) sum += prob[i] = std::exp((z[ids[i]] - maxz) / settings.temperature);
        size_t n = ids.size();
        if (settings.top_p < 1.0f) {  // smallest most-likely prefix whose probability reaches top_p
            double cumulative = 0;
            for (n = 0; n < ids.size();) {
                cumulative += prob[n++] / sum;
                if (cumulative >= settings.top_p) break;
            }
            sum = 0;
            for (size_t i = 0; i < n; i++) sum += prob[i];
        }
        double u = rng.uniform() * sum, cumulative = 0;
        for (size_t i = 0; i < n; i++) {
            cumulative += prob[i];
            if (u < cumulative) return ids[i];
        }
        return ids[n - 1];  // u within rounding of the total
    }

    // Continues `prompt` (at least one token; at most max_seq_len) from an empty cache.
    SampleResult generate(const std::vector<int>& prompt) {
        SampleResult r;
        reset();
        bool ok = !prompt.empty() && (int)prompt.size() <= cfg.max_seq_len;
        for (int token : prompt) ok = ok && token >= 0 && token < cfg.vocab_size;
        if (!ok) {
            r.stop = SampleStop::bad_prompt;
            return r;
        }
        const float* z = nullptr;
        for (int token : prompt) z = step(token);
        while ((int)r.tokens.size() < settings.max_new_tokens) {
            int next = choose(z);
            r.tokens.push_back(next);
            if (next == settings.eos_token) { r.stop = SampleStop::eos; return r; }
            if ((int)r.tokens.size() == settings.max_new_tokens) break;
            if (n_cached == cfg.max_seq_len) { r.stop = SampleStop::context_full; return r; }
            z = step(next);
        }
        r.stop = SampleStop::max_new_tokens;
        return r;
    }

  private:
    // atty[C] = softmax(q k^T / sqrt(hs)) v per head, for the query at position t over keys 0..t
    void attend(const float* keys, const float* values, int t, int NH, int hs) {
        const int C = cfg.channels;
        const float scale = 1.0f / std::sqrt((float)hs);
        for (int h = 0; h < NH; h++) {
            const float* q = &qkv[(size_t)h * hs];
            float maxv = -INFINITY;
            for (int k = 0; k <= t; k++) {
                const float* kv = keys + (size_t)k * C + h * hs;
                float s = 0;
                for (int i = 0; i < hs; i++) s += q[i] * kv[i];
                s *= scale;
                att[k] = s;
                maxv = std::max(maxv, s);
            }
            float sum = 0;
            for (int k = 0; k <= t; k++) { att[k] = std::exp(att[k] - maxv); sum += att[k]; }
            float inv = 1.0f / sum;
            float* o = &atty[(size_t)h * hs];
            for (int i = 0; i < hs; i++) o[i] = 0;
            for (int k = 0; k <= t; k++) {
                float p = att[k] * inv;
                const float* vv = values + (size_t)k * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] += p * vv[i];
            }
        }
    }
};

// The greedy continuation of prompt: at most max_new_tokens, ending after eos_token (-1: none).
inline std::vector<int> greedy_continuation(const ModelConfig& cfg, const float* params, const std::vector<int>& prompt,
                                            int max_new_tokens, int eos_token) {
    SampleSettings ss;
    ss.greedy = true;
    ss.max_new_tokens = max_new_tokens;
    ss.eos_token = eos_token;
    Sampler sampler(cfg, params, ss);
    return sampler.generate(prompt).tokens;
}

}  // namespace cpu
