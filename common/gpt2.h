// The GPT-2 model on the CPU: forward and backward of every layer over one micro-batch whose rows
// may hold prefix-shared units, baseline units or several packed units (data/batch.h).
// This is the executable specification the GPU kernels are tested against, and the CPU trainer.
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
#include <cblas.h>
#include <omp.h>
#include <sys/mman.h>

#include "common/model_config.h"
#include "common/model_init.h"
#include "data/batch.h"
#include "kernels/gelu.cuh"

// Loops with less work than this run on one thread: a parallel region costs microseconds, and
// far more on a busy machine, which would dominate a small model.
static const size_t PARALLEL_MIN_WORK = 1 << 16;

// ----------------------------------------------------------------------------------------------
// matmul: out[N,OC] = inp[N,IC] · weight[OC,IC]^T + bias[OC]   (bias may be null)

template <typename T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, int N, int IC, int OC) {
#pragma omp parallel for schedule(static) if ((size_t)N * IC * OC >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const T* x = inp + (size_t)n * IC;
        for (int o = 0; o < OC; o++) {
            const T* w = weight + (size_t)o * IC;
            T s = bias ? bias[o] : (T)0;
            for (int i = 0; i < IC; i++) s += x[i] * w[i];
            out[(size_t)n * OC + o] = s;
        }
    }
}

inline void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                           int N, int IC, int OC) {
    if (bias) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, OC * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, weight, IC,
                bias ? 1.0f : 0.0f, out, OC);
}

// dinp[N,IC] = dout · weight (overwritten; skipped when dinp is null),
// dweight[OC,IC] += dout^T · inp, dbias[OC] += column sums of dout (skipped when null)
template <typename T>
void matmul_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                     int N, int IC, int OC) {
    if (dinp) {
#pragma omp parallel for schedule(static) if ((size_t)N * IC * OC >= PARALLEL_MIN_WORK)
        for (int n = 0; n < N; n++) {
            T* dx = dinp + (size_t)n * IC;
            for (int i = 0; i < IC; i++) dx[i] = 0;
            for (int o = 0; o < OC; o++) {
                T d = dout[(size_t)n * OC + o];
                const T* w = weight + (size_t)o * IC;
                for (int i = 0; i < IC; i++) dx[i] += d * w[i];
            }
        }
    }
#pragma omp parallel for schedule(static) if ((size_t)N * IC * OC >= PARALLEL_MIN_WORK)
    for (int o = 0; o < OC; o++) {
        T* dw = dweight + (size_t)o * IC;
        T db = 0;
        for (int n = 0; n < N; n++) {
            T d = dout[(size_t)n * OC + o];
            const T* x = inp + (size_t)n * IC;
            for (int i = 0; i < IC; i++) dw[i] += d * x[i];
            db += d;
        }
        if (dbias) dbias[o] += db;
    }
}

inline void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                            const float* inp, const float* weight, int N, int IC, int OC) {
    if (dinp) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, weight,
                    IC, 0.0f, dinp, IC);
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f,
                dweight, IC);
    if (dbias) {
        // column sums, walking dout row by row (contiguous) over one block of columns per task
        const int block = 64;
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= PARALLEL_MIN_WORK)
        for (int o0 = 0; o0 < OC; o0 += block) {
            const int o1 = std::min(OC, o0 + block);
            float s[block] = {0};
            for (int n = 0; n < N; n++) {
                const float* d = dout + (size_t)n * OC;
                for (int o = o0; o < o1; o++) s[o - o0] += d[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += s[o - o0];
        }
    }
}

// ----------------------------------------------------------------------------------------------
// LayerNorm over the last dimension: out[N,C] = (x - mean) * rstd * weight + bias

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* weight, const T* bias,
                       int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const T* x = inp + (size_t)n * C;
        T m = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        T v = 0;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        v /= C;
        T s = (T)1 / std::sqrt(v + (T)eps);
        T* o = out + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * weight[i] + bias[i];
        mean[n] = m;
        rstd[n] = s;
    }
}

// dinp[N,C] += ..., dweight[C] += ..., dbias[C] += ...
template <typename T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp,
                        const T* weight, const T* mean, const T* rstd, int N, int C) {
    int nthreads = omp_get_max_threads();
    std::vector<T> partial((size_t)nthreads * 2 * C, (T)0);  // per thread: dweight, dbias
#pragma omp parallel if ((size_t)N * C >= PARALLEL_MIN_WORK)
    {
        T* pw = partial.data() + (size_t)omp_get_thread_num() * 2 * C;
        T* pb = pw + C;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const T* x = inp + (size_t)n * C;
            const T* dy = dout + (size_t)n * C;
            T* dx = dinp + (size_t)n * C;
            T m = mean[n], s = rstd[n];
            T dnorm_mean = 0, dnorm_norm_mean = 0;
            for (int i = 0; i < C; i++) {
                T norm = (x[i] - m) * s;
                T dnorm = weight[i] * dy[i];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * norm;
            }
            dnorm_mean /= C;
            dnorm_norm_mean /= C;
            for (int i = 0; i < C; i++) {
                T norm = (x[i] - m) * s;
                T dnorm = weight[i] * dy[i];
                dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
                pw[i] += norm * dy[i];
                pb[i] += dy[i];
            }
        }
    }
    for (int t = 0; t < nthreads; t++) {
        const T* pw = partial.data() + (size_t)t * 2 * C;
        for (int i = 0; i < C; i++) {
            dweight[i] += pw[i];
            dbias[i] += pw[C + i];
        }
    }
}

// ----------------------------------------------------------------------------------------------
// The rows of a micro-batch with padding removed: row r's tokens are [off[r], off[r+1]) of the
// packed token arrays. For every packed token q: lo[q] = the first key (row-local) it can see,
// end[q] = the row-local end of its visibility as a key (k <= q < end[k], DESIGN.md §1.3), and
// att_off[q] = where its attention probabilities start (keys lo[q]..q, one per key).
struct PackedRows {
    std::vector<int> off;       // [rows + 1]
    std::vector<int> row_of;    // [N] row of each packed token
    std::vector<int> col;       // [N] column in its row
    std::vector<int> end, lo;   // [N]
    std::vector<size_t> att_off;  // [N + 1]
    int N = 0;

    void build(const Batch& b) {
        off.assign(b.B + 1, 0);
        for (int r = 0; r < b.B; r++) off[r + 1] = off[r] + b.row_len[r];
        N = off[b.B];
        row_of.resize(N); col.resize(N); end.resize(N); lo.resize(N); att_off.resize(N + 1);
        for (int r = 0; r < b.B; r++) {
            const int32_t* e = &b.end[(size_t)r * b.T];
            // the smallest visible key min{k : e[k] > t} never decreases with t, so one scan per row
            // (the query always sees itself, which stops it)
            int first = 0;
            for (int t = 0; t < b.row_len[r]; t++) {
                int q = off[r] + t;
                row_of[q] = r; col[q] = t; end[q] = e[t];
                while (e[first] <= t) first++;
                lo[q] = first;
            }
        }
        att_off[0] = 0;
        for (int q = 0; q < N; q++) att_off[q + 1] = att_off[q] + (size_t)(col[q] - lo[q] + 1);
    }
};

// Attention over packed rows. qkv[N,3C] holds q, k, v per token (heads interleaved as in GPT-2);
// out[N,C]; att[NH, att_off[N]] the softmax probabilities (0 for invisible keys in [lo, q]).
template <typename T>
void attention_forward(T* out, T* att, const T* qkv, const PackedRows& rows, int NH, int C) {
    const int hs = C / NH, N = rows.N, C3 = 3 * C;
    const T scale = (T)1 / std::sqrt((T)hs);
    const size_t att_stride = rows.att_off[N];
#pragma omp parallel for collapse(2) schedule(dynamic, 8) if (att_stride * C >= PARALLEL_MIN_WORK)
    for (int q = 0; q < N; q++) {
        for (int h = 0; h < NH; h++) {
            const int base = q - rows.col[q];  // packed index of the row's column 0
            const T* qv = qkv + (size_t)q * C3 + h * hs;
            T* a = att + h * att_stride + rows.att_off[q];
            const int k0 = rows.lo[q], k1 = rows.col[q];
            T maxv = -INFINITY;
            for (int k = k0; k <= k1; k++) {
                if (rows.end[base + k] <= k1) { a[k - k0] = -INFINITY; continue; }
                const T* kv = qkv + (size_t)(base + k) * C3 + C + h * hs;
                T s = 0;
                for (int i = 0; i < hs; i++) s += qv[i] * kv[i];
                s *= scale;
                a[k - k0] = s;
                if (s > maxv) maxv = s;
            }
            T sum = 0;
            for (int k = k0; k <= k1; k++) {
                T e = (a[k - k0] == -INFINITY) ? (T)0 : std::exp(a[k - k0] - maxv);
                a[k - k0] = e;
                sum += e;
            }
            T inv = (T)1 / sum;
            T* o = out + (size_t)q * C + h * hs;
            for (int i = 0; i < hs; i++) o[i] = 0;
            for (int k = k0; k <= k1; k++) {
                T p = a[k - k0] * inv;
                a[k - k0] = p;
                if (p == (T)0) continue;
                const T* vv = qkv + (size_t)(base + k) * C3 + 2 * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] += p * vv[i];
            }
        }
    }
}

// dqkv[N,3C] (overwritten) from dout[N,C]. Parallel over (row, head): each writes only its own
// row's keys and values of its own head.
template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att,
                        const PackedRows& rows, int NH, int C) {
    const int hs = C / NH, N = rows.N, C3 = 3 * C, R = (int)rows.off.size() - 1;
    const T scale = (T)1 / std::sqrt((T)hs);
    const size_t att_stride = rows.att_off[N];
    memset(dqkv, 0, sizeof(T) * (size_t)N * C3);
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (att_stride * C >= PARALLEL_MIN_WORK)
    for (int r = 0; r < R; r++) {
        for (int h = 0; h < NH; h++) {
            std::vector<T> datt;
            for (int q = rows.off[r]; q < rows.off[r + 1]; q++) {
                const int base = rows.off[r];
                const int k0 = rows.lo[q], k1 = rows.col[q];
                const T* a = att + h * att_stride + rows.att_off[q];
                const T* dq_out = dout + (size_t)q * C + h * hs;
                datt.assign(k1 - k0 + 1, (T)0);
                T dot = 0;  // sum_k a_k * datt_k
                for (int k = k0; k <= k1; k++) {
                    if (a[k - k0] == (T)0) continue;
                    const T* vv = qkv + (size_t)(base + k) * C3 + 2 * C + h * hs;
                    T* dv = dqkv + (size_t)(base + k) * C3 + 2 * C + h * hs;
                    T d = 0;
                    for (int i = 0; i < hs; i++) {
                        d += dq_out[i] * vv[i];
                        dv[i] += a[k - k0] * dq_out[i];
                    }
                    datt[k - k0] = d;
                    dot += a[k - k0] * d;
                }
                const T* qv = qkv + (size_t)q * C3 + h * hs;
                T* dqv = dqkv + (size_t)q * C3 + h * hs;
                for (int k = k0; k <= k1; k++) {
                    if (a[k - k0] == (T)0) continue;
                    T dpre = a[k - k0] * (datt[k - k0] - dot) * scale;
                    const T* kv = qkv + (size_t)(base + k) * C3 + C + h * hs;
                    T* dkv = dqkv + (size_t)(base + k) * C3 + C + h * hs;
                    for (int i = 0; i < hs; i++) {
                        dqv[i] += dpre * kv[i];
                        dkv[i] += dpre * qv[i];
                    }
                }
            }
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Activation storage, sized once for the largest micro-batch (B*T tokens) and not initialised:
// a page of it is faulted in when a micro-batch first reaches it, and never again. Large buffers
// ask for transparent huge pages (2 MiB), so that first touch costs one fault per 2 MiB rather
// than per 4 KiB. (Growing std::vectors to each micro-batch's size instead re-faulted gigabytes
// whenever a micro-batch was larger than all before it: seconds per step for GPT-2 124M.)
template <typename T>
struct ActivationBuffer {
    struct Free { void operator()(T* p) const { free(p); } };
    std::unique_ptr<T, Free> mem;
    size_t capacity = 0;
    void reserve(size_t n) {
        if (n <= capacity) return;
        const size_t huge = (size_t)2 << 20;
        size_t bytes = (n * sizeof(T) + huge - 1) / huge * huge;
        void* p = aligned_alloc(huge, bytes);  // not initialised: untouched pages cost nothing
        if (!p) {
            fprintf(stderr, "error: out of memory allocating %.1f MiB of activations; lower --micro-rows or --seq-len\n",
                    bytes / 1048576.0);
            exit(1);
        }
        madvise(p, bytes, MADV_HUGEPAGE);  // a hint: without transparent huge pages nothing changes
        mem.reset((T*)p);
        capacity = n;
    }
    T* data() { return mem.get(); }
    const T* data() const { return mem.get(); }
    T& operator[](size_t i) { return mem.get()[i]; }
    const T& operator[](size_t i) const { return mem.get()[i]; }
};

template <typename T>
struct GPT2 {
    ModelConfig cfg;
    std::vector<T> params, grads;  // [num_parameters]
    T* param[NUM_PARAM_TENSORS];
    T* grad[NUM_PARAM_TENSORS];

    // activations of the last forward (sizes follow N, M of that micro-batch)
    PackedRows rows;
    std::vector<int> tok, pos;                  // [N]
    std::vector<int> scored, target;            // [M] packed index and target of scored tokens
    std::vector<int> scored_slot;               // [M] pair slot in the batch
    std::vector<int8_t> scored_side;            // [M] SIDE_CHOSEN / SIDE_REJECTED
    ActivationBuffer<T> encoded;                // [N,C]
    struct Layer {
        ActivationBuffer<T> ln1, ln1_mean, ln1_rstd, qkv, att, atty, res2, ln2, ln2_mean, ln2_rstd,
            fch, fch_gelu, res3;
    };
    std::vector<Layer> layers;
    ActivationBuffer<T> lnf, lnf_mean, lnf_rstd;  // [N,C], [N], [N]
    ActivationBuffer<T> lnf_scored, probs;        // [M,C], [M,V]
    std::vector<T> logp;                        // [M] log-prob of each scored token's target
    std::vector<T> logit_mean;                  // [M] mean logit over the vocabulary
    // backward scratch
    ActivationBuffer<T> dres, dbuf_c, dbuf_3c, dbuf_4c, dbuf_4c2, dlnf_scored, dlogits;

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
        params.assign(num_parameters(c), (T)0);
        grads.assign(params.size(), (T)0);
        size_t sizes[NUM_PARAM_TENSORS], o = 0;
        param_sizes(c, sizes);
        for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
            param[i] = params.data() + o;
            grad[i] = grads.data() + o;
            o += sizes[i];
        }
        layers.resize(c.num_layers);
    }

    // GPT-2's initialisation (common/model_init.h)
    void init_random(const ModelConfig& c, uint64_t seed) {
        setup(c);
        gpt2_init_params(c, seed, params.data());
    }

    void zero_grad() { std::fill(grads.begin(), grads.end(), (T)0); }

    int M() const { return (int)scored.size(); }

    // Forward over a micro-batch: fills logp[m] for every scored token m.
    void forward(const Batch& b) {
        const int C = cfg.channels, NH = cfg.num_heads, V = cfg.vocab_size, L = cfg.num_layers;
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

        // token + position embeddings
        encoded.reserve(cap * C);
#pragma omp parallel for schedule(static) if ((size_t)N * C >= PARALLEL_MIN_WORK)
        for (int q = 0; q < N; q++) {
            const T* te = param[0] + (size_t)tok[q] * C;
            const T* pe = param[1] + (size_t)pos[q] * C;
            T* x = &encoded[(size_t)q * C];
            for (int i = 0; i < C; i++) x[i] = te[i] + pe[i];
        }

        const T* x = encoded.data();
        for (int l = 0; l < L; l++) {
            Layer& a = layers[l];
            a.ln1.reserve(cap * C); a.ln1_mean.reserve(cap); a.ln1_rstd.reserve(cap);
            a.qkv.reserve(cap * 3 * C); a.att.reserve(att_cap);
            a.atty.reserve(cap * C); a.res2.reserve(cap * C);
            a.ln2.reserve(cap * C); a.ln2_mean.reserve(cap); a.ln2_rstd.reserve(cap);
            a.fch.reserve(cap * 4 * C); a.fch_gelu.reserve(cap * 4 * C);
            a.res3.reserve(cap * C);
            layernorm_forward(a.ln1.data(), a.ln1_mean.data(), a.ln1_rstd.data(), x,
                              lp(2, l, C), lp(3, l, C), N, C, cfg.layernorm_eps);
            matmul_forward(a.qkv.data(), a.ln1.data(), lp(4, l, 3 * C * C), lp(5, l, 3 * C), N, C, 3 * C);
            attention_forward(a.atty.data(), a.att.data(), a.qkv.data(), rows, NH, C);
            matmul_forward(a.res2.data(), a.atty.data(), lp(6, l, C * C), lp(7, l, C), N, C, C);
            add_inplace(a.res2.data(), x, (size_t)N * C);
            layernorm_forward(a.ln2.data(), a.ln2_mean.data(), a.ln2_rstd.data(), a.res2.data(),
                              lp(8, l, C), lp(9, l, C), N, C, cfg.layernorm_eps);
            matmul_forward(a.fch.data(), a.ln2.data(), lp(10, l, 4 * C * C), lp(11, l, 4 * C), N, C, 4 * C);
            const size_t n4 = (size_t)N * 4 * C;
#pragma omp parallel for schedule(static) if (n4 >= PARALLEL_MIN_WORK)
            for (size_t i = 0; i < n4; i++) a.fch_gelu[i] = gelu_forward_scalar(a.fch[i]);
            matmul_forward(a.res3.data(), a.fch_gelu.data(), lp(12, l, 4 * C * C), lp(13, l, C), N, 4 * C, C);
            add_inplace(a.res3.data(), a.res2.data(), (size_t)N * C);
            x = a.res3.data();
        }
        lnf.reserve(cap * C); lnf_mean.reserve(cap); lnf_rstd.reserve(cap);
        layernorm_forward(lnf.data(), lnf_mean.data(), lnf_rstd.data(), x, param[14], param[15],
                          N, C, cfg.layernorm_eps);

        // LM head (tied to wte) on the scored tokens only; padded vocabulary rows are never used
        lnf_scored.reserve(cap * C);
        for (int m = 0; m < M; m++)
            memcpy(&lnf_scored[(size_t)m * C], &lnf[(size_t)scored[m] * C], sizeof(T) * C);
        probs.reserve(cap * V);
        logp.resize(M); logit_mean.resize(M);
        if (M == 0) return;
        matmul_forward(probs.data(), lnf_scored.data(), param[0], (const T*)nullptr, M, C, V);
#pragma omp parallel for schedule(static) if ((size_t)M * V >= PARALLEL_MIN_WORK)
        for (int m = 0; m < M; m++) {
            T* z = &probs[(size_t)m * V];
            T maxv = z[0], total = 0;
            for (int v = 0; v < V; v++) { maxv = std::max(maxv, z[v]); total += z[v]; }
            const T target_logit = z[target[m]];
            T sum = 0;
            for (int v = 0; v < V; v++) { z[v] = std::exp(z[v] - maxv); sum += z[v]; }
            logp[m] = target_logit - maxv - std::log(sum);
            logit_mean[m] = total / V;
            const T inv = (T)1 / sum;
            for (int v = 0; v < V; v++) z[v] *= inv;
        }
    }

    // Backward from dlogp[M] (d loss / d logp of each scored token); accumulates into grads.
    void backward(const T* dlogp) {
        const int C = cfg.channels, NH = cfg.num_heads, V = cfg.vocab_size, L = cfg.num_layers;
        const int N = rows.N, M = (int)scored.size();
        const size_t cap = encoded.capacity / C;  // tokens the forward reserved for
        dres.reserve(cap * C); dbuf_c.reserve(cap * C); dbuf_3c.reserve(cap * 3 * C);
        dbuf_4c.reserve(cap * 4 * C); dbuf_4c2.reserve(cap * 4 * C);
        std::fill_n(dres.data(), (size_t)N * C, (T)0);

        // d logits = dlogp * (onehot(target) - probs), in place over probs' copy
        if (M > 0) {
            dlogits.reserve(cap * V);
#pragma omp parallel for schedule(static) if ((size_t)M * V >= PARALLEL_MIN_WORK)
            for (int m = 0; m < M; m++) {
                const T* p = &probs[(size_t)m * V];
                T* d = &dlogits[(size_t)m * V];
                for (int v = 0; v < V; v++) d[v] = -dlogp[m] * p[v];
                d[target[m]] += dlogp[m];
            }
            dlnf_scored.reserve(cap * C);
            matmul_backward(dlnf_scored.data(), grad[0], (T*)nullptr, dlogits.data(),
                            lnf_scored.data(), param[0], M, C, V);
        }
        // scatter into the final LayerNorm's output gradient, then through it
        std::fill_n(dbuf_c.data(), (size_t)N * C, (T)0);
        for (int m = 0; m < M; m++) {
            T* d = &dbuf_c[(size_t)scored[m] * C];
            const T* s = &dlnf_scored[(size_t)m * C];
            for (int i = 0; i < C; i++) d[i] += s[i];
        }
        const T* x_last = L > 0 ? layers[L - 1].res3.data() : encoded.data();
        layernorm_backward(dres.data(), grad[14], grad[15], dbuf_c.data(), x_last, param[14],
                           lnf_mean.data(), lnf_rstd.data(), N, C);

        for (int l = L - 1; l >= 0; l--) {
            Layer& a = layers[l];
            const T* x_in = l > 0 ? layers[l - 1].res3.data() : encoded.data();
            // MLP: res3 = res2 + fcproj(gelu(fc(ln2(res2))))
            matmul_backward(dbuf_4c.data(), lg(12, l, 4 * C * C), lg(13, l, C), dres.data(),
                            a.fch_gelu.data(), lp(12, l, 4 * C * C), N, 4 * C, C);
            const size_t n4 = (size_t)N * 4 * C;
#pragma omp parallel for schedule(static) if (n4 >= PARALLEL_MIN_WORK)
            for (size_t i = 0; i < n4; i++) dbuf_4c2[i] = dbuf_4c[i] * gelu_grad_scalar(a.fch[i]);
            matmul_backward(dbuf_c.data(), lg(10, l, 4 * C * C), lg(11, l, 4 * C), dbuf_4c2.data(),
                            a.ln2.data(), lp(10, l, 4 * C * C), N, C, 4 * C);
            layernorm_backward(dres.data(), lg(8, l, C), lg(9, l, C), dbuf_c.data(), a.res2.data(),
                               lp(8, l, C), a.ln2_mean.data(), a.ln2_rstd.data(), N, C);
            // attention: res2 = x_in + attproj(attn(qkv(ln1(x_in))))
            matmul_backward(dbuf_c.data(), lg(6, l, C * C), lg(7, l, C), dres.data(), a.atty.data(),
                            lp(6, l, C * C), N, C, C);
            attention_backward(dbuf_3c.data(), dbuf_c.data(), a.qkv.data(), a.att.data(), rows, NH, C);
            matmul_backward(dbuf_c.data(), lg(4, l, 3 * C * C), lg(5, l, 3 * C), dbuf_3c.data(),
                            a.ln1.data(), lp(4, l, 3 * C * C), N, C, 3 * C);
            layernorm_backward(dres.data(), lg(2, l, C), lg(3, l, C), dbuf_c.data(), x_in,
                               lp(2, l, C), a.ln1_mean.data(), a.ln1_rstd.data(), N, C);
        }
        // embeddings (serial: tokens and positions repeat)
        for (int q = 0; q < N; q++) {
            T* dte = grad[0] + (size_t)tok[q] * C;
            T* dpe = grad[1] + (size_t)pos[q] * C;
            const T* d = &dres[(size_t)q * C];
            for (int i = 0; i < C; i++) { dte[i] += d[i]; dpe[i] += d[i]; }
        }
    }

  private:
    // layer l's slice of tensor i, whose per-layer size is n
    T* lp(int i, int l, size_t n) { return param[i] + (size_t)l * n; }
    T* lg(int i, int l, size_t n) { return grad[i] + (size_t)l * n; }
    static void add_inplace(T* y, const T* x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_WORK)
        for (size_t i = 0; i < n; i++) y[i] += x[i];
    }
};
