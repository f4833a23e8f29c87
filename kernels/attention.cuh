// kernels/attention.cuh: multi-head attention over packed, prefix-shared rows (version 1: simple,
// correct, deterministic; the tensor-core kernel is issue 12).
//
// Shapes: B rows of T tokens, C channels, NH heads of hs = C / NH (hs <= 128).
//   qkv[B,T,3C]  q at [0,C), k at [C,2C), v at [2C,3C) of each token; head h is the slice h*hs..
//   end[B*T]     the mask (kernels/attention_mask.h): key k of a row is visible to query q of the
//                same row iff k <= q < end[k]; padding has end[k] = k + 1 (it sees only itself)
//   out[B,T,C]   softmax(q·k / sqrt(hs)) · v over the visible keys
//   lse[B,NH,T]  fp32 log-sum-exp of each query's scaled scores (-inf if it sees no key)
//
// Flash-style: nothing of size T×T exists, in global or shared memory. A block takes a tile of
// ATTN_WARPS queries (one per warp) of one (row, head) and walks the keys in tiles of ATTN_TILE
// (one key per lane) held in shared memory, keeping an online softmax (running max m, running sum
// l, output accumulator) in fp32. Key tiles that no query of the block can see (attention_tile_class
// from the tile's min and max end[]) are skipped before they are loaded.
//
// Backward, from the saved lse (p = exp(s - lse), D_q = dout_q · out_q):
//   dv_k = sum_q p_qk dout_q      ds_qk = p_qk (dout_q · v_k - D_q)
//   dq_q = scale sum_k ds_qk k_k  dk_k = scale sum_q ds_qk q_q
// in two kernels, each summing in a fixed order (no atomics, so bit-identical from run to run):
// one parallel over queries (dq), one parallel over keys (dk, dv), whose queries are the contiguous
// range [k, end[k]) of each key. dqkv is overwritten.
// Kernels first, then the launchers.
#pragma once
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include "kernels/cuda_common.h"
#include "kernels/attention_mask.h"
#include "kernels/reduce.cuh"

constexpr int ATTN_TILE = 32;     // keys (forward, dq) or queries (dk/dv) per shared tile: one per lane
constexpr int ATTN_WARPS = 8;     // queries (forward, dq) or keys (dk/dv) per block: one per warp
constexpr int ATTN_MAX_HS = 128;  // each lane keeps hs / 32 <= 4 accumulators
constexpr int ATTN_ACC = ATTN_MAX_HS / 32;
constexpr unsigned ATTN_FULL_MASK = 0xffffffffu;

// Smallest and largest end[] of the keys [k0, k1) of one tile (held in shared memory).
__device__ inline void attention_end_range(const int* end_tile, int n, int* end_min, int* end_max) {
    int lo = INT_MAX, hi = INT_MIN;
    for (int j = 0; j < n; j++) {
        lo = min(lo, end_tile[j]);
        hi = max(hi, end_tile[j]);
    }
    *end_min = lo;
    *end_max = hi;
}

// grid (ceil(T / ATTN_WARPS), NH, B), ATTN_WARPS warps. Warp w owns query q0 + w.
// Dynamic shared memory: k_tile[ATTN_TILE][hs+1] (padded: lane j reads row j), v_tile[ATTN_TILE][hs],
// q_rows[ATTN_WARPS][hs] (scaled by 1/sqrt(hs)), end_tile[ATTN_TILE].
__global__ void attention_forward_kernel(floatX* __restrict__ out, float* __restrict__ lse,
                                         const floatX* __restrict__ qkv, const int* __restrict__ end,
                                         int T, int NH, int C) {
    DYNAMIC_SHARED(float, smem);
    const int hs = C / NH, ks = hs + 1, h = blockIdx.y, b = blockIdx.z;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int q0 = blockIdx.x * ATTN_WARPS, q1 = min(q0 + ATTN_WARPS, T);
    const int q = q0 + warp;
    const bool active = q < T;
    float* k_tile = smem;
    float* v_tile = k_tile + ATTN_TILE * ks;
    float* q_row = v_tile + ATTN_TILE * hs + warp * hs;
    int* end_tile = reinterpret_cast<int*>(v_tile + ATTN_TILE * hs + ATTN_WARPS * hs);
    const size_t C3 = (size_t)3 * C;
    const floatX* row = qkv + (size_t)b * T * C3;
    const int* row_end = end + (size_t)b * T;
    const float scale = 1.0f / sqrtf((float)hs);

    if (active)
        for (int d = lane; d < hs; d += 32) q_row[d] = (float)row[q * C3 + h * hs + d] * scale;
    float m = -INFINITY, l = 0.0f, acc[ATTN_ACC] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int k0 = 0; k0 < q1; k0 += ATTN_TILE) {
        const int k1 = min(k0 + ATTN_TILE, T), n = k1 - k0;
        __syncthreads();  // every warp is done with the previous tile
        if ((int)threadIdx.x < n) end_tile[threadIdx.x] = row_end[k0 + threadIdx.x];
        __syncthreads();
        int end_min, end_max;
        attention_end_range(end_tile, n, &end_min, &end_max);
        if (attention_tile_class(q0, q1, k0, k1, end_min, end_max) == TILE_SKIP) continue;
        for (int i = threadIdx.x; i < n * hs; i += blockDim.x) {
            const int j = i / hs, d = i % hs;
            const floatX* kv = row + (k0 + j) * C3 + C + h * hs + d;
            k_tile[j * ks + d] = (float)kv[0];
            v_tile[j * hs + d] = (float)kv[C];
        }
        __syncthreads();
        if (!active) continue;
        // lane j scores key k0 + j
        float s = -INFINITY;
        if (lane < n && attention_visible(q, k0 + lane, end_tile[lane])) {
            s = 0.0f;
            for (int d = 0; d < hs; d++) s += q_row[d] * k_tile[lane * ks + d];
        }
        const float tile_max = warp_reduce_max(s);
        if (tile_max == -INFINITY) continue;  // this query sees nothing here: no -inf - -inf
        const float m_new = fmaxf(m, tile_max);
        const float p = s == -INFINITY ? 0.0f : expf(s - m_new);
        const float alpha = expf(m - m_new);  // 0 while m is still -inf
        l = l * alpha + warp_reduce_sum(p);
        for (int a = 0; a < ATTN_ACC; a++) acc[a] *= alpha;
        for (int j = 0; j < n; j++) {
            const float pj = __shfl_sync(ATTN_FULL_MASK, p, j);
            for (int a = 0; a < ATTN_ACC; a++) {
                const int d = lane + 32 * a;
                if (d < hs) acc[a] += pj * v_tile[j * hs + d];
            }
        }
        m = m_new;
    }
    if (!active) return;  // no barrier follows
    const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
    floatX* o = out + ((size_t)b * T + q) * C + h * hs;
    for (int a = 0; a < ATTN_ACC; a++) {
        const int d = lane + 32 * a;
        if (d < hs) o[d] = (floatX)(acc[a] * inv_l);
    }
    if (lane == 0) lse[((size_t)b * NH + h) * T + q] = l > 0.0f ? m + logf(l) : -INFINITY;
}

// dq. grid (ceil(T / ATTN_WARPS), NH, B), ATTN_WARPS warps; warp w owns query q0 + w and walks the
// key tiles as the forward does. Dynamic shared memory: k_tile and v_tile [ATTN_TILE][hs+1],
// q_rows and dout_rows [ATTN_WARPS][hs], end_tile[ATTN_TILE].
__global__ void attention_backward_dq_kernel(floatX* __restrict__ dqkv, const floatX* __restrict__ dout,
                                             const floatX* __restrict__ qkv, const floatX* __restrict__ out,
                                             const float* __restrict__ lse, const int* __restrict__ end,
                                             int T, int NH, int C) {
    DYNAMIC_SHARED(float, smem);
    const int hs = C / NH, ks = hs + 1, h = blockIdx.y, b = blockIdx.z;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int q0 = blockIdx.x * ATTN_WARPS, q1 = min(q0 + ATTN_WARPS, T);
    const int q = q0 + warp;
    const bool active = q < T;
    float* k_tile = smem;
    float* v_tile = k_tile + ATTN_TILE * ks;
    float* q_row = v_tile + ATTN_TILE * ks + warp * hs;
    float* dout_row = v_tile + ATTN_TILE * ks + ATTN_WARPS * hs + warp * hs;
    int* end_tile = reinterpret_cast<int*>(v_tile + ATTN_TILE * ks + 2 * ATTN_WARPS * hs);
    const size_t C3 = (size_t)3 * C;
    const floatX* row = qkv + (size_t)b * T * C3;
    const int* row_end = end + (size_t)b * T;
    const float scale = 1.0f / sqrtf((float)hs);

    float D = 0.0f, lse_q = 0.0f;
    if (active) {
        const size_t tok = ((size_t)b * T + q) * C + h * hs;
        for (int d = lane; d < hs; d += 32) {
            q_row[d] = (float)row[q * C3 + h * hs + d] * scale;
            dout_row[d] = (float)dout[tok + d];
            D += dout_row[d] * (float)out[tok + d];
        }
        D = warp_reduce_sum(D);
        lse_q = lse[((size_t)b * NH + h) * T + q];
    }
    float acc[ATTN_ACC] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int k0 = 0; k0 < q1; k0 += ATTN_TILE) {
        const int k1 = min(k0 + ATTN_TILE, T), n = k1 - k0;
        __syncthreads();
        if ((int)threadIdx.x < n) end_tile[threadIdx.x] = row_end[k0 + threadIdx.x];
        __syncthreads();
        int end_min, end_max;
        attention_end_range(end_tile, n, &end_min, &end_max);
        if (attention_tile_class(q0, q1, k0, k1, end_min, end_max) == TILE_SKIP) continue;
        for (int i = threadIdx.x; i < n * hs; i += blockDim.x) {
            const int j = i / hs, d = i % hs;
            const floatX* kv = row + (k0 + j) * C3 + C + h * hs + d;
            k_tile[j * ks + d] = (float)kv[0];
            v_tile[j * ks + d] = (float)kv[C];
        }
        __syncthreads();
        if (!active) continue;
        float ds = 0.0f;
        const bool visible = lane < n && attention_visible(q, k0 + lane, end_tile[lane]);
        if (__any_sync(ATTN_FULL_MASK, visible) == 0) continue;
        if (visible) {
            float s = 0.0f, dp = 0.0f;
            for (int d = 0; d < hs; d++) {
                s += q_row[d] * k_tile[lane * ks + d];
                dp += dout_row[d] * v_tile[lane * ks + d];
            }
            ds = expf(s - lse_q) * (dp - D);
        }
        for (int j = 0; j < n; j++) {
            const float dsj = __shfl_sync(ATTN_FULL_MASK, ds, j);
            for (int a = 0; a < ATTN_ACC; a++) {
                const int d = lane + 32 * a;
                if (d < hs) acc[a] += dsj * k_tile[j * ks + d];
            }
        }
    }
    if (!active) return;
    floatX* dq = dqkv + ((size_t)b * T + q) * C3 + h * hs;
    for (int a = 0; a < ATTN_ACC; a++) {
        const int d = lane + 32 * a;
        if (d < hs) dq[d] = (floatX)(acc[a] * scale);
    }
}

// dk, dv. grid (ceil(T / ATTN_WARPS), NH, B), ATTN_WARPS warps; warp w owns key k = kb0 + w. The
// queries that see any key of the block lie in [kb0, max end[]), walked in tiles of ATTN_TILE
// (lane j takes query qt0 + j). Dynamic shared memory: q_tile (scaled) and dout_tile
// [ATTN_TILE][hs+1], k_rows and v_rows [ATTN_WARPS][hs], lse_tile and D_tile [ATTN_TILE].
__global__ void attention_backward_dkv_kernel(floatX* __restrict__ dqkv, const floatX* __restrict__ dout,
                                              const floatX* __restrict__ qkv, const floatX* __restrict__ out,
                                              const float* __restrict__ lse, const int* __restrict__ end,
                                              int T, int NH, int C) {
    DYNAMIC_SHARED(float, smem);
    const int hs = C / NH, ks = hs + 1, h = blockIdx.y, b = blockIdx.z;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int kb0 = blockIdx.x * ATTN_WARPS, kb1 = min(kb0 + ATTN_WARPS, T);
    const int k = kb0 + warp;
    const bool active = k < T;
    float* q_tile = smem;
    float* dout_tile = q_tile + ATTN_TILE * ks;
    float* k_row = dout_tile + ATTN_TILE * ks + warp * hs;
    float* v_row = dout_tile + ATTN_TILE * ks + ATTN_WARPS * hs + warp * hs;
    float* lse_tile = dout_tile + ATTN_TILE * ks + 2 * ATTN_WARPS * hs;
    float* D_tile = lse_tile + ATTN_TILE;
    const size_t C3 = (size_t)3 * C;
    const floatX* row = qkv + (size_t)b * T * C3;
    const int* row_end = end + (size_t)b * T;
    const float* row_lse = lse + ((size_t)b * NH + h) * T;
    const float scale = 1.0f / sqrtf((float)hs);

    // the block's keys: their end[] range bounds the queries to visit
    int end_min = INT_MAX, end_max = INT_MIN;
    for (int j = kb0; j < kb1; j++) {
        end_min = min(end_min, row_end[j]);
        end_max = max(end_max, row_end[j]);
    }
    const int end_k = active ? row_end[k] : 0;
    if (active)
        for (int d = lane; d < hs; d += 32) {
            k_row[d] = (float)row[k * C3 + C + h * hs + d];
            v_row[d] = (float)row[k * C3 + 2 * C + h * hs + d];
        }
    float dk[ATTN_ACC] = {0.0f, 0.0f, 0.0f, 0.0f}, dv[ATTN_ACC] = {0.0f, 0.0f, 0.0f, 0.0f};
    const int q_stop = min(end_max, T);
    for (int qt0 = kb0; qt0 < q_stop; qt0 += ATTN_TILE) {
        const int qt1 = min(qt0 + ATTN_TILE, T), n = qt1 - qt0;
        if (attention_tile_class(qt0, qt1, kb0, kb1, end_min, end_max) == TILE_SKIP) continue;
        __syncthreads();  // every warp is done with the previous tile
        for (int i = threadIdx.x; i < n * hs; i += blockDim.x) {
            const int j = i / hs, d = i % hs;
            q_tile[j * ks + d] = (float)row[(qt0 + j) * C3 + h * hs + d] * scale;
            dout_tile[j * ks + d] = (float)dout[((size_t)b * T + qt0 + j) * C + h * hs + d];
        }
        if ((int)threadIdx.x < n) lse_tile[threadIdx.x] = row_lse[qt0 + threadIdx.x];
        __syncthreads();
        // D_q = dout_q · out_q of the tile's queries, warp w taking queries w, w + ATTN_WARPS, ...
        for (int j = warp; j < n; j += ATTN_WARPS) {
            const floatX* o = out + ((size_t)b * T + qt0 + j) * C + h * hs;
            float D = 0.0f;
            for (int d = lane; d < hs; d += 32) D += dout_tile[j * ks + d] * (float)o[d];
            D = warp_reduce_sum(D);
            if (lane == 0) D_tile[j] = D;
        }
        __syncthreads();
        if (!active) continue;
        const int q = qt0 + lane;
        const bool visible = lane < n && attention_visible(q, k, end_k);
        if (__any_sync(ATTN_FULL_MASK, visible) == 0) continue;
        float p = 0.0f, ds = 0.0f;
        if (visible) {
            float s = 0.0f, dp = 0.0f;
            for (int d = 0; d < hs; d++) {
                s += q_tile[lane * ks + d] * k_row[d];
                dp += dout_tile[lane * ks + d] * v_row[d];
            }
            p = expf(s - lse_tile[lane]);
            ds = p * (dp - D_tile[lane]);
        }
        for (int j = 0; j < n; j++) {
            const float pj = __shfl_sync(ATTN_FULL_MASK, p, j);
            const float dsj = __shfl_sync(ATTN_FULL_MASK, ds, j);
            for (int a = 0; a < ATTN_ACC; a++) {
                const int d = lane + 32 * a;
                if (d < hs) {
                    dv[a] += pj * dout_tile[j * ks + d];
                    dk[a] += dsj * q_tile[j * ks + d];  // q_tile holds scale * q
                }
            }
        }
    }
    if (!active) return;
    floatX* dkey = dqkv + ((size_t)b * T + k) * C3 + C + h * hs;
    for (int a = 0; a < ATTN_ACC; a++) {
        const int d = lane + 32 * a;
        if (d < hs) {
            dkey[d] = (floatX)dk[a];
            dkey[C + d] = (floatX)dv[a];
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Launchers

// hs = C / NH must divide C exactly and be at most ATTN_MAX_HS.
inline int attention_head_size(int C, int NH, const char* who) {
    if (NH <= 0 || C % NH != 0 || C / NH > ATTN_MAX_HS) {
        fprintf(stderr, "%s:%d: %s: C=%d, NH=%d: the head size C/NH must be a whole number <= %d\n",
                __FILE__, __LINE__, who, C, NH, ATTN_MAX_HS);
        exit(1);
    }
    return C / NH;
}

// out[B,T,C], lse[B,NH,T] from qkv[B,T,3C] and the mask end[B*T].
inline void attention_forward(floatX* out, float* lse, const floatX* qkv, const int* end, int B,
                              int T, int NH, int C, cudaStream_t stream) {
    const int hs = attention_head_size(C, NH, "attention_forward");
    if (B == 0 || T == 0) return;
    const dim3 grid((T + ATTN_WARPS - 1) / ATTN_WARPS, NH, B);
    const size_t smem = sizeof(float) * (ATTN_TILE * (hs + 1) + ATTN_TILE * hs + ATTN_WARPS * hs) +
                        sizeof(int) * ATTN_TILE;
    attention_forward_kernel<<<grid, 32 * ATTN_WARPS, smem, stream>>>(out, lse, qkv, end, T, NH, C);
    CUDA_CHECK(cudaGetLastError());
}

// dqkv[B,T,3C] (overwritten) from dout[B,T,C], the forward's qkv, out and lse, and the mask.
inline void attention_backward(floatX* dqkv, const floatX* dout, const floatX* qkv, const floatX* out,
                               const float* lse, const int* end, int B, int T, int NH, int C,
                               cudaStream_t stream) {
    const int hs = attention_head_size(C, NH, "attention_backward");
    if (B == 0 || T == 0) return;
    const dim3 grid((T + ATTN_WARPS - 1) / ATTN_WARPS, NH, B);
    const size_t smem_dq = sizeof(float) * (2 * ATTN_TILE * (hs + 1) + 2 * ATTN_WARPS * hs) +
                           sizeof(int) * ATTN_TILE;
    attention_backward_dq_kernel<<<grid, 32 * ATTN_WARPS, smem_dq, stream>>>(dqkv, dout, qkv, out, lse,
                                                                            end, T, NH, C);
    CUDA_CHECK(cudaGetLastError());
    const size_t smem_dkv = sizeof(float) * (2 * ATTN_TILE * (hs + 1) + 2 * ATTN_WARPS * hs + 2 * ATTN_TILE);
    attention_backward_dkv_kernel<<<grid, 32 * ATTN_WARPS, smem_dkv, stream>>>(dqkv, dout, qkv, out, lse,
                                                                              end, T, NH, C);
    CUDA_CHECK(cudaGetLastError());
}
