// Causal self-attention over packed rows with the one-integer-per-token mask (CPU reference):
// key k is visible to query q iff k <= q < end[k] (kernels/attention_mask.h), which covers
// causality, packed units and prefix sharing at once. Only the probabilities of keys lo[q]..q
// are stored, so memory follows the visible triangle, not T^2.
//   qkv [N, 3C] (q, k, v of each token, heads interleaved as GPT-2), out [N, C],
//   att [NH, att_off[N]] softmax probabilities; NH heads of hs = C / NH channels.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>
#include "cpu/parallel.h"
#include "data/batch.h"
#include "kernels/attention_mask.h"

namespace cpu {

// The rows of a micro-batch with padding removed: row r's tokens are [off[r], off[r+1]) of the
// packed token arrays. For every packed token q: lo[q] = the first key (row-local) it can see,
// end[q] = the row-local end of its visibility as a key (k <= q < end[k], docs/DESIGN.md §1.3),
// and att_off[q] = where its attention probabilities start (keys lo[q]..q, one per key).
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
template <typename Real>
void attention_forward(Real* out, Real* att, const Real* qkv, const PackedRows& rows, int NH, int C) {
    const int hs = C / NH, N = rows.N, C3 = 3 * C;
    const Real scale = (Real)1 / std::sqrt((Real)hs);
    const size_t att_stride = rows.att_off[N];
#pragma omp parallel for collapse(2) schedule(dynamic, 8) if (att_stride * C >= PARALLEL_MIN_WORK)
    for (int q = 0; q < N; q++) {
        for (int h = 0; h < NH; h++) {
            const int base = q - rows.col[q];  // packed index of the row's column 0
            const Real* qv = qkv + (size_t)q * C3 + h * hs;
            Real* a = att + h * att_stride + rows.att_off[q];
            const int k0 = rows.lo[q], k1 = rows.col[q];
            Real maxv = -INFINITY;
            for (int k = k0; k <= k1; k++) {
                if (!attention_visible(k1, k, rows.end[base + k])) { a[k - k0] = -INFINITY; continue; }
                const Real* kv = qkv + (size_t)(base + k) * C3 + C + h * hs;
                Real s = 0;
                for (int i = 0; i < hs; i++) s += qv[i] * kv[i];
                s *= scale;
                a[k - k0] = s;
                if (s > maxv) maxv = s;
            }
            Real sum = 0;
            for (int k = k0; k <= k1; k++) {
                Real e = (a[k - k0] == -INFINITY) ? (Real)0 : std::exp(a[k - k0] - maxv);
                a[k - k0] = e;
                sum += e;
            }
            Real inv = (Real)1 / sum;
            Real* o = out + (size_t)q * C + h * hs;
            for (int i = 0; i < hs; i++) o[i] = 0;
            for (int k = k0; k <= k1; k++) {
                Real p = a[k - k0] * inv;
                a[k - k0] = p;
                if (p == (Real)0) continue;
                const Real* vv = qkv + (size_t)(base + k) * C3 + 2 * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] += p * vv[i];
            }
        }
    }
}

// dqkv[N,3C] (overwritten) from dout[N,C]. Parallel over (row, head): each writes only its own
// row's keys and values of its own head.
template <typename Real>
void attention_backward(Real* dqkv, const Real* dout, const Real* qkv, const Real* att,
                        const PackedRows& rows, int NH, int C) {
    const int hs = C / NH, N = rows.N, C3 = 3 * C, R = (int)rows.off.size() - 1;
    const Real scale = (Real)1 / std::sqrt((Real)hs);
    const size_t att_stride = rows.att_off[N];
    memset(dqkv, 0, sizeof(Real) * (size_t)N * C3);
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (att_stride * C >= PARALLEL_MIN_WORK)
    for (int r = 0; r < R; r++) {
        for (int h = 0; h < NH; h++) {
            std::vector<Real> datt;
            for (int q = rows.off[r]; q < rows.off[r + 1]; q++) {
                const int base = rows.off[r];
                const int k0 = rows.lo[q], k1 = rows.col[q];
                const Real* a = att + h * att_stride + rows.att_off[q];
                const Real* dq_out = dout + (size_t)q * C + h * hs;
                datt.assign(k1 - k0 + 1, (Real)0);
                Real dot = 0;  // sum_k a_k * datt_k
                for (int k = k0; k <= k1; k++) {
                    if (a[k - k0] == (Real)0) continue;
                    const Real* vv = qkv + (size_t)(base + k) * C3 + 2 * C + h * hs;
                    Real* dv = dqkv + (size_t)(base + k) * C3 + 2 * C + h * hs;
                    Real d = 0;
                    for (int i = 0; i < hs; i++) {
                        d += dq_out[i] * vv[i];
                        dv[i] += a[k - k0] * dq_out[i];
                    }
                    datt[k - k0] = d;
                    dot += a[k - k0] * d;
                }
                const Real* qv = qkv + (size_t)q * C3 + h * hs;
                Real* dqv = dqkv + (size_t)q * C3 + h * hs;
                for (int k = k0; k <= k1; k++) {
                    if (a[k - k0] == (Real)0) continue;
                    Real dpre = a[k - k0] * (datt[k - k0] - dot) * scale;
                    const Real* kv = qkv + (size_t)(base + k) * C3 + C + h * hs;
                    Real* dkv = dqkv + (size_t)(base + k) * C3 + C + h * hs;
                    for (int i = 0; i < hs; i++) {
                        dqv[i] += dpre * kv[i];
                        dkv[i] += dpre * qv[i];
                    }
                }
            }
        }
    }
}

}  // namespace cpu
