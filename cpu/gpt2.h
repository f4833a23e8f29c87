// The GPT-2 model on the CPU: forward and backward over one micro-batch whose rows may hold
// prefix-shared units, baseline units or several packed units (data/batch.h), as calls to the
// layers of cpu/ (one header per layer). This is the executable specification the GPU kernels
// are tested against, and the CPU trainer's model.
//
// Templated on the scalar type: float uses a BLAS for the matrix products (fast), double keeps
// plain loops (the gradient checks run in double). Shapes in comments:
//   N  = real tokens of the micro-batch (rows packed back to back, padding dropped)
//   M  = scored tokens (those with a target), C = channels, NH = heads, hs = C / NH,
//   V  = vocab size, Vp = padded vocab size, L = layers.
// Only scored tokens go through the LM head: a prompt token without a target needs no logits.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>
#include <sys/mman.h>

#include "common/model_config.h"
#include "common/model_init.h"
#include "cpu/attention.h"
#include "cpu/encoder.h"
#include "cpu/gelu.h"
#include "cpu/layernorm.h"
#include "cpu/logprob.h"
#include "cpu/matmul.h"
#include "cpu/residual.h"
#include "data/batch.h"

namespace cpu {

// Activation storage, sized once for the largest micro-batch (B*T tokens) and not initialised:
// a page of it is faulted in when a micro-batch first reaches it, and never again. Large buffers
// ask for transparent huge pages (2 MiB), so that first touch costs one fault per 2 MiB rather
// than per 4 KiB. (Growing std::vectors to each micro-batch's size instead re-faulted gigabytes
// whenever a micro-batch was larger than all before it: seconds per step for GPT-2 124M.)
template <typename Real>
struct ActivationBuffer {
    struct Free { void operator()(Real* p) const { free(p); } };
    std::unique_ptr<Real, Free> mem;
    size_t capacity = 0;
    void reserve(size_t n) {
        if (n <= capacity) return;
        const size_t huge = (size_t)2 << 20;
        size_t bytes = (n * sizeof(Real) + huge - 1) / huge * huge;
        void* p = aligned_alloc(huge, bytes);  // not initialised: untouched pages cost nothing
        if (!p) {
            fprintf(stderr, "error: out of memory allocating %.1f MiB of activations; lower --micro-rows or --seq-len\n",
                    bytes / 1048576.0);
            exit(1);
        }
        madvise(p, bytes, MADV_HUGEPAGE);  // a hint: without transparent huge pages nothing changes
        mem.reset((Real*)p);
        capacity = n;
    }
    Real* data() { return mem.get(); }
    const Real* data() const { return mem.get(); }
    Real& operator[](size_t i) { return mem.get()[i]; }
    const Real& operator[](size_t i) const { return mem.get()[i]; }
};

template <typename Real>
struct GPT2 {
    ModelConfig cfg;
    std::vector<Real> params, grads;  // [num_parameters]
    ParamTensors<Real> param, grad;   // named views of params and grads

    // activations of the last forward (sizes follow N, M of that micro-batch)
    PackedRows rows;
    std::vector<int> tok, pos;                  // [N]
    std::vector<int> scored, target;            // [M] packed index and target of scored tokens
    std::vector<int> scored_slot;               // [M] pair slot in the batch
    std::vector<int8_t> scored_side;            // [M] SIDE_CHOSEN / SIDE_REJECTED
    ActivationBuffer<Real> encoded;             // [N,C]
    struct Layer {
        ActivationBuffer<Real> ln1, ln1_mean, ln1_rstd, qkv, att, atty, res2, ln2, ln2_mean, ln2_rstd,
            fch, fch_gelu, res3;
    };
    std::vector<Layer> layers;
    ActivationBuffer<Real> lnf, lnf_mean, lnf_rstd;  // [N,C], [N], [N]
    ActivationBuffer<Real> lnf_scored, probs;        // [M,C], [M,V]
    std::vector<Real> logp;                          // [M] log-prob of each scored token's target
    std::vector<Real> logit_mean;                    // [M] mean logit over the vocabulary
    // backward scratch
    ActivationBuffer<Real> dres, dbuf_c, dbuf_3c, dbuf_4c, dbuf_4c2, dlnf_scored, dlogits;

    GPT2() = default;
    GPT2(const GPT2& o) { *this = o; }
    // copies the configuration, weights and gradients (not the activations)
    GPT2& operator=(const GPT2& o) {
        if (this == &o) return *this;
        setup(o.cfg);
        std::copy(o.params.begin(), o.params.end(), params.begin());
        std::copy(o.grads.begin(), o.grads.end(), grads.begin());
        return *this;
    }

    void setup(const ModelConfig& c) {
        cfg = c;
        params.assign(num_parameters(c), (Real)0);
        grads.assign(params.size(), (Real)0);
        param = ParamTensors<Real>(params.data(), c);
        grad = ParamTensors<Real>(grads.data(), c);
        layers.resize(c.num_layers);
    }

    // GPT-2's initialisation (common/model_init.h)
    void init_random(const ModelConfig& c, uint64_t seed) {
        setup(c);
        gpt2_init_params(c, seed, params.data());
    }

    void zero_grad() { std::fill(grads.begin(), grads.end(), (Real)0); }

    int M() const { return (int)scored.size(); }

    // Forward over a micro-batch: fills logp[m] for every scored token m.
    void forward(const Batch& b) {
        const int C = cfg.channels, NH = cfg.num_heads, V = cfg.vocab_size, L = cfg.num_layers;
        const float eps = cfg.layernorm_eps;
        rows.build(b);
        const int N = rows.N;
        tok.resize(N); pos.resize(N);
        scored.clear(); target.clear(); scored_slot.clear(); scored_side.clear();
        for (int q = 0; q < N; q++) {
            size_t bi = (size_t)rows.row_of[q] * b.T + rows.col[q];
            tok[q] = b.tokens[bi];
            pos[q] = b.pos[bi];
            if (b.target[bi] >= 0) {
                scored.push_back(q); target.push_back(b.target[bi]);
                scored_slot.push_back(b.slot[bi]); scored_side.push_back(b.side[bi]);
            }
        }
        const int M = (int)scored.size();
        // capacities for the largest micro-batch of this shape: every token of every row, each
        // row's attention at most T(T+1)/2 probabilities per head, every token scored
        const size_t cap = (size_t)b.B * b.T, att_cap = (size_t)b.B * b.T * (b.T + 1) / 2 * NH;

        encoded.reserve(cap * C);
        encoder_forward(encoded.data(), tok.data(), pos.data(), param.wte, param.wpe, N, C);

        const Real* x = encoded.data();
        for (int l = 0; l < L; l++) {
            Layer& a = layers[l];
            const LayerParams<Real> w = param.layer(l);
            a.ln1.reserve(cap * C); a.ln1_mean.reserve(cap); a.ln1_rstd.reserve(cap);
            a.qkv.reserve(cap * 3 * C); a.att.reserve(att_cap);
            a.atty.reserve(cap * C); a.res2.reserve(cap * C);
            a.ln2.reserve(cap * C); a.ln2_mean.reserve(cap); a.ln2_rstd.reserve(cap);
            a.fch.reserve(cap * 4 * C); a.fch_gelu.reserve(cap * 4 * C);
            a.res3.reserve(cap * C);
            layernorm_forward(a.ln1.data(), a.ln1_mean.data(), a.ln1_rstd.data(), x, w.ln1w, w.ln1b, N, C,
                              eps);
            matmul_forward(a.qkv.data(), a.ln1.data(), w.qkvw, w.qkvb, N, C, 3 * C);
            attention_forward(a.atty.data(), a.att.data(), a.qkv.data(), rows, NH, C);
            matmul_forward(a.res2.data(), a.atty.data(), w.attprojw, w.attprojb, N, C, C);
            residual_forward(a.res2.data(), a.res2.data(), x, (size_t)N * C);
            layernorm_forward(a.ln2.data(), a.ln2_mean.data(), a.ln2_rstd.data(), a.res2.data(), w.ln2w,
                              w.ln2b, N, C, eps);
            matmul_forward(a.fch.data(), a.ln2.data(), w.fcw, w.fcb, N, C, 4 * C);
            gelu_forward(a.fch_gelu.data(), a.fch.data(), (size_t)N * 4 * C);
            matmul_forward(a.res3.data(), a.fch_gelu.data(), w.fcprojw, w.fcprojb, N, 4 * C, C);
            residual_forward(a.res3.data(), a.res3.data(), a.res2.data(), (size_t)N * C);
            x = a.res3.data();
        }
        lnf.reserve(cap * C); lnf_mean.reserve(cap); lnf_rstd.reserve(cap);
        layernorm_forward(lnf.data(), lnf_mean.data(), lnf_rstd.data(), x, param.lnfw, param.lnfb, N, C, eps);

        // LM head (tied to wte) on the scored tokens only; padded vocabulary rows are never used
        lnf_scored.reserve(cap * C);
        for (int m = 0; m < M; m++)
            memcpy(&lnf_scored[(size_t)m * C], &lnf[(size_t)scored[m] * C], sizeof(Real) * C);
        probs.reserve(cap * V);
        logp.resize(M); logit_mean.resize(M);
        logprob_forward(probs.data(), logp.data(), logit_mean.data(), lnf_scored.data(), param.wte,
                        target.data(), M, C, V);
    }

    // Backward from dlogp[M] (d loss / d logp of each scored token); accumulates into grads.
    void backward(const Real* dlogp) {
        const int C = cfg.channels, NH = cfg.num_heads, V = cfg.vocab_size, L = cfg.num_layers;
        const int N = rows.N, M = (int)scored.size();
        const size_t cap = encoded.capacity / C;  // tokens the forward reserved for
        dres.reserve(cap * C); dbuf_c.reserve(cap * C); dbuf_3c.reserve(cap * 3 * C);
        dbuf_4c.reserve(cap * 4 * C); dbuf_4c2.reserve(cap * 4 * C);
        dlogits.reserve(cap * V); dlnf_scored.reserve(cap * C);
        std::fill_n(dres.data(), (size_t)N * C, (Real)0);

        logprob_backward(dlnf_scored.data(), grad.wte, dlogits.data(), dlogp, probs.data(),
                         lnf_scored.data(), param.wte, target.data(), M, C, V);
        // scatter into the final LayerNorm's output gradient, then through it
        std::fill_n(dbuf_c.data(), (size_t)N * C, (Real)0);
        for (int m = 0; m < M; m++) {
            Real* d = &dbuf_c[(size_t)scored[m] * C];
            const Real* s = &dlnf_scored[(size_t)m * C];
            for (int i = 0; i < C; i++) d[i] += s[i];
        }
        const Real* x_last = L > 0 ? layers[L - 1].res3.data() : encoded.data();
        layernorm_backward(dres.data(), grad.lnfw, grad.lnfb, dbuf_c.data(), x_last, param.lnfw,
                           lnf_mean.data(), lnf_rstd.data(), N, C);

        for (int l = L - 1; l >= 0; l--) {
            Layer& a = layers[l];
            const LayerParams<Real> w = param.layer(l), dw = grad.layer(l);
            const Real* x_in = l > 0 ? layers[l - 1].res3.data() : encoded.data();
            // MLP: res3 = res2 + fcproj(gelu(fc(ln2(res2))))
            matmul_backward(dbuf_4c.data(), dw.fcprojw, dw.fcprojb, dres.data(), a.fch_gelu.data(),
                            w.fcprojw, N, 4 * C, C);
            gelu_backward(dbuf_4c2.data(), a.fch.data(), dbuf_4c.data(), (size_t)N * 4 * C);
            matmul_backward(dbuf_c.data(), dw.fcw, dw.fcb, dbuf_4c2.data(), a.ln2.data(), w.fcw, N, C, 4 * C);
            layernorm_backward(dres.data(), dw.ln2w, dw.ln2b, dbuf_c.data(), a.res2.data(), w.ln2w,
                               a.ln2_mean.data(), a.ln2_rstd.data(), N, C);
            // attention: res2 = x_in + attproj(attn(qkv(ln1(x_in))))
            matmul_backward(dbuf_c.data(), dw.attprojw, dw.attprojb, dres.data(), a.atty.data(),
                            w.attprojw, N, C, C);
            attention_backward(dbuf_3c.data(), dbuf_c.data(), a.qkv.data(), a.att.data(), rows, NH, C);
            matmul_backward(dbuf_c.data(), dw.qkvw, dw.qkvb, dbuf_3c.data(), a.ln1.data(), w.qkvw, N, C,
                            3 * C);
            layernorm_backward(dres.data(), dw.ln1w, dw.ln1b, dbuf_c.data(), x_in, w.ln1w,
                               a.ln1_mean.data(), a.ln1_rstd.data(), N, C);
        }
        encoder_backward(grad.wte, grad.wpe, dres.data(), tok.data(), pos.data(), N, C);
    }
};

}  // namespace cpu
