// kernels/attention.cuh: multi-head attention over packed, prefix-shared rows.
//   version 1  simple, correct, deterministic; any head size <= 128, bf16 or fp32; forward and
//              backward. The reference of the numbered versions.
//   version 2  tensor cores (mma.sync m16n8k16 + ldmatrix, kernels/ptx.cuh), bf16, head size 64
//              or 128, tiles of 64 queries x 64 keys classified skip / full / partial from the
//              per-key-tile min and max of end[] (a small kernel, attention_end_bounds); forward
//              and a two-pass deterministic backward. Same lse as version 1.
//   version 3  version 2 with the tile loads double-buffered by cp.async (sm_80+): the next
//              non-skipped tile is copied while the current one is computed; its dk/dv pass reads
//              K and V from shared memory (no register spills at hs 128); its backward computes
//              D = dout · out once, in a pass of its own. Same results as version 2.
//   version 4  (Hopper sm_90a, forward only, hs 64) version 2's forward on warpgroup MMA (wgmma);
//              at the end of the file, not used by the launchers until a GPU has measured it.
// attention_forward / attention_backward pick version 3 in the bf16 build for hs 64 or 128,
// version 1 otherwise.
//
// Shapes: B rows of T tokens, C channels, NH heads of hs = C / NH (hs <= 128).
//   qkv[B,T,3C]  q at [0,C), k at [C,2C), v at [2C,3C) of each token; head h is the slice h*hs..
//   end[B*T]     the mask (kernels/attention_mask.h): key k of a row is visible to query q of the
//                same row iff k <= q < end[k]; padding has end[k] = k + 1 (it sees only itself)
//   out[B,T,C]   softmax(q·k / sqrt(hs)) · v over the visible keys
//   lse[B,NH,T]  fp32 log-sum-exp of each query's scaled scores (-inf if it sees no key)
//
// Version 1, flash-style: nothing of size T×T exists, in global or shared memory. A block takes a
// tile of ATTN_WARPS queries (one per warp) of one (row, head) and walks the keys in tiles of
// ATTN_TILE (one key per lane) held in shared memory, keeping an online softmax (running max m,
// running sum l, output accumulator) in fp32. Key tiles that no query of the block can see
// (attention_tile_class from the tile's min and max end[]) are skipped before they are loaded.
//
// Backward, from the saved lse (p = exp(s - lse), D_q = dout_q · out_q):
//   dv_k = sum_q p_qk dout_q      ds_qk = p_qk (dout_q · v_k - D_q)
//   dq_q = scale sum_k ds_qk k_k  dk_k = scale sum_q ds_qk q_q
// in two kernels, each summing in a fixed order (no atomics, so bit-identical from run to run):
// one parallel over queries (dq), one parallel over keys (dk, dv), whose queries are the contiguous
// range [k, end[k]) of each key. dqkv is overwritten.
//
// Version 2 (see dev/cuda/README.md for a worked example): a block of 4 warps takes 64 queries of
// one (row, head); warp w owns query rows 16w..16w+15 and keeps their Q as mma A fragments. For each
// key tile of 64 keys up to the diagonal: skip tiles are never loaded; otherwise K and V go to
// shared memory (bf16, rows padded by 8), S = Q K^T (16x64 per warp, fp32 registers), the scale,
// the mask element by element only on partial tiles (and a last tile cut by T), an online softmax
// in fp32 per row, then P (rounded to bf16) times V accumulates O in fp32. Its backward has the
// same two passes as version 1 on the same tiles: dq over query blocks, dk and dv over key tiles
// (each walking only the queries [k0, end_max) of its keys); dS and P enter the mma in bf16.
// Version 3's pipeline is described above its kernels. Every version 2/3 kernel starts from an
// Attention2Block (its row, head, tokens and this lane's rows).
// Kernels first, then the launchers.
#pragma once
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "kernels/cuda_common.h"
#include "kernels/attention_mask.h"
#include "kernels/ptx.cuh"
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
// Version 2: tile classification, then the tensor-core forward.

constexpr int ATTN2_TILE = 64;               // queries per block, keys per shared tile
constexpr int ATTN2_WARPS = ATTN2_TILE / 16; // each warp owns 16 query rows (one mma m16)

// end_min[b * tiles + t], end_max[...]: the smallest and largest end[] of key tile t (keys
// [64t, min(64t + 64, T))) of row b, tiles = ceil(T / 64). One warp per key tile.
// grid ceil(B * tiles / (blockDim.x / 32)), any multiple of 32 threads.
__global__ void attention_end_bounds_kernel(int* __restrict__ end_min, int* __restrict__ end_max,
                                            const int* __restrict__ end, int B, int T) {
    const int tiles = (T + ATTN2_TILE - 1) / ATTN2_TILE;
    const int tile = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (tile >= B * tiles) return;  // the whole warp; no barrier or shuffle follows
    const int b = tile / tiles, k0 = tile % tiles * ATTN2_TILE, k1 = min(k0 + ATTN2_TILE, T);
    int lo = INT_MAX, hi = INT_MIN;
    for (int k = k0 + lane; k < k1; k += 32) {
        const int e = end[(size_t)b * T + k];
        lo = min(lo, e);
        hi = max(hi, e);
    }
    for (int offset = 16; offset > 0; offset /= 2) {
        lo = min(lo, __shfl_xor_sync(ATTN_FULL_MASK, lo, offset));
        hi = max(hi, __shfl_xor_sync(ATTN_FULL_MASK, hi, offset));
    }
    if (lane == 0) {
        end_min[tile] = lo;
        end_max[tile] = hi;
    }
}

// Where a version 2 or 3 block works, from its grid position: grid (ceil(T / 64), NH, B), 128
// threads. The block takes head h of row b and the 64 tokens [t0, t1) of tile blockIdx.x: its
// queries in the forward and the dq pass, its keys in the dk/dv pass. Warp w owns 16 of them and
// this lane the two rows of an mma C fragment (g = lane / 4 and g + 8 of the warp's 16).
template <int HS>
struct Attention2Block {
    int b, h, T, NH, C;
    int warp, t0, t1, rows[2];
    size_t C3;            // qkv's token stride
    const floatX* q;      // head h of row b's token 0 in qkv[B,T,3C] (tokens C3 apart; K at q + C, V at q + 2C)
    const int* end;       // end[] of row b
    const int* end_min;   // row b's per-key-tile bounds (attention_end_bounds_kernel)
    const int* end_max;
    int end_lo, end_hi;   // those of the block's own tile (its keys' bounds in the dk/dv pass)

    __device__ Attention2Block(const floatX* qkv, const int* end_all, const int* end_min_all, const int* end_max_all,
                               int T_, int NH_, int C_)
        : b(blockIdx.z), h(blockIdx.y), T(T_), NH(NH_), C(C_), warp(threadIdx.x / 32),
          t0(blockIdx.x * ATTN2_TILE), t1(min(t0 + ATTN2_TILE, T_)),
          rows{t0 + warp * 16 + (int)threadIdx.x % 32 / 4, t0 + warp * 16 + (int)threadIdx.x % 32 / 4 + 8},
          C3((size_t)3 * C_), q(qkv + (size_t)b * T_ * C3 + h * HS), end(end_all + (size_t)b * T_) {
        const int tiles = (T + ATTN2_TILE - 1) / ATTN2_TILE;
        end_min = end_min_all + (size_t)b * tiles;
        end_max = end_max_all + (size_t)b * tiles;
        end_lo = end_min[blockIdx.x];
        end_hi = end_max[blockIdx.x];
    }
    // head h of row b's token 0 in a [B,T,C] tensor (out, dout: tokens C apart)
    __device__ const floatX* head(const floatX* x) const { return x + (size_t)b * T * C + h * HS; }
    // query 0 of (row b, head h) in a [B,NH,T] tensor (lse, D)
    __device__ const float* per_query(const float* x) const { return x + ((size_t)b * NH + h) * T; }
    // the class of key tile [k0, k0 + 64) for the block's queries (forward, dq)
    __device__ TileClass key_tile_class(int k0) const {
        const int t = k0 / ATTN2_TILE;
        return attention_tile_class(t0, t1, k0, min(k0 + ATTN2_TILE, T), end_min[t], end_max[t]);
    }
    // the class of query tile [qt0, qt0 + 64) for the block's keys (dk/dv)
    __device__ TileClass query_tile_class(int qt0) const {
        return attention_tile_class(qt0, min(qt0 + ATTN2_TILE, T), t0, t1, end_lo, end_hi);
    }
};

// Copies the HS-wide head slices of tokens [t0, t1) (src points at token 0's slice; tokens are
// `stride` elements apart) into rows 0.. of a [ATTN2_TILE][HS + 8] bf16 tile, zeros past t1.
// Every thread of the block takes 8-element chunks.
template <int HS>
__device__ inline void attention2_stage(__nv_bfloat16* dst, const floatX* src, int t0, int t1, size_t stride) {
    for (int chunk = threadIdx.x; chunk < ATTN2_TILE * HS / 8; chunk += blockDim.x) {
        const int r = chunk / (HS / 8), c = chunk % (HS / 8) * 8;
        __nv_bfloat16* d = dst + r * (HS + 8) + c;
        if (t0 + r < t1) {
            const floatX* s = src + (size_t)(t0 + r) * stride + c;
#if defined(ENABLE_FP32)
            for (int j = 0; j < 8; j++) d[j] = __float2bfloat16(s[j]);
#else
            *reinterpret_cast<int4*>(d) = *reinterpret_cast<const int4*>(s);  // 16-byte aligned: C % 8 == 0
#endif
        } else {
            for (int j = 0; j < 8; j++) d[j] = __float2bfloat16(0.0f);
        }
    }
}

// Two floats rounded to bf16 in one register, lo in the low half (an mma A fragment's pair).
__device__ inline uint32_t attention2_pack_bf16(float lo, float hi) {
    return (uint32_t)__bfloat16_as_ushort(__float2bfloat16(lo)) |
           (uint32_t)__bfloat16_as_ushort(__float2bfloat16(hi)) << 16;
}

// A fragments (HS/16 of them) of rows 16*warp.. 16*warp+15 of a staged [64][HS + 8] tile.
template <int HS>
__device__ inline void attention2_row_fragments(uint32_t frag[HS / 16][4], const __nv_bfloat16* tile, int warp) {
    const int lane = threadIdx.x % 32;
    for (int kk = 0; kk < HS / 16; kk++)
        ldmatrix_x4(frag[kk], &tile[(warp * 16 + lane % 16) * (HS + 8) + kk * 16 + lane / 16 * 8]);
}

// s[16][64] += A[16][16 dims kk*16..] · tile[64][same dims]^T (fp32): one 16-dim step of the
// product below. The tile is stored row by row ([64][HS + 8]), which is mma's B "col" layout: a
// plain ldmatrix.x4 gives the B fragments of two n8 tiles (rows n..n+15) at dims kk and kk+8.
template <int HS>
__device__ inline void attention2_times_tile_t_step(float s[ATTN2_TILE / 8][4], const uint32_t a[4],
                                                    const __nv_bfloat16* tile, int kk) {
    const int lane = threadIdx.x % 32;
    for (int n = 0; n < ATTN2_TILE / 8; n += 2) {
        uint32_t r[4];
        ldmatrix_x4(r, &tile[((n + lane / 16) * 8 + lane % 8) * (HS + 8) + kk * 16 + lane / 8 % 2 * 8]);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma_m16n8k16_bf16(s[n], a, b0, s[n]);
        mma_m16n8k16_bf16(s[n + 1], a, b1, s[n + 1]);
    }
}

// s[16][64] = A[16][HS] · tile[64][HS]^T (fp32, overwritten), A given as fragments.
template <int HS>
__device__ inline void attention2_times_tile_t(float s[ATTN2_TILE / 8][4], const uint32_t a[HS / 16][4],
                                               const __nv_bfloat16* tile) {
    for (int n = 0; n < ATTN2_TILE / 8; n++)
        for (int i = 0; i < 4; i++) s[n][i] = 0.0f;
    for (int kk = 0; kk < HS / 16; kk++) attention2_times_tile_t_step<HS>(s, a[kk], tile, kk);
}

// acc[16][HS] += P[16][64] · tile[64][HS] (fp32), P given in C-fragment layout (as the previous
// function leaves it) and rounded to bf16: the C fragments of n8 tiles 2kk and 2kk+1 are exactly
// the A fragment of P's 16x16 block kk. The tile is B as [K,N]: ldmatrix.x4.trans.
template <int HS>
__device__ inline void attention2_accumulate(float acc[HS / 8][4], const float p[ATTN2_TILE / 8][4],
                                             const __nv_bfloat16* tile) {
    const int lane = threadIdx.x % 32;
    for (int kk = 0; kk < ATTN2_TILE / 16; kk++) {
        const uint32_t a[4] = {attention2_pack_bf16(p[2 * kk][0], p[2 * kk][1]),
                               attention2_pack_bf16(p[2 * kk][2], p[2 * kk][3]),
                               attention2_pack_bf16(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                               attention2_pack_bf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
        for (int d = 0; d < HS / 8; d += 2) {
            uint32_t r[4];
            ldmatrix_x4_trans(r, &tile[(kk * 16 + lane / 8 % 2 * 8 + lane % 8) * (HS + 8) + (d + lane / 16) * 8]);
            const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
            mma_m16n8k16_bf16(acc[d], a, b0, acc[d]);
            mma_m16n8k16_bf16(acc[d + 1], a, b1, acc[d + 1]);
        }
    }
}

// The forward's softmax step on one key tile, S given (the warp's 16 query rows x 64 keys, in the
// accumulator fragment of mma.sync and wgmma alike; this lane: rows query[0], query[1]): S scaled,
// the mask if `masked` (keys [k0, k1), end_tile their end[]), then the online softmax update of
// m, l (this lane's share of the row sums) and O; S becomes P (unnormalised, in fp32).
template <int HS>
__device__ inline void attention2_softmax_tile(float s[ATTN2_TILE / 8][4], float o[HS / 8][4], float m[2], float l[2],
                                               const int* end_tile, int k0, int k1, bool masked, const int query[2]) {
    const int tig = threadIdx.x % 4;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int n = 0; n < ATTN2_TILE / 8; n++)
        for (int i = 0; i < 4; i++) {
            const int key = n * 8 + 2 * tig + i % 2;  // within the tile
            s[n][i] *= scale;
            if (masked && !(k0 + key < k1 && attention_visible(query[i / 2], k0 + key, end_tile[key])))
                s[n][i] = -INFINITY;
        }

    // online softmax, row by row; the four lanes of a quad share a row
    for (int r = 0; r < 2; r++) {
        float mx = m[r];
        for (int n = 0; n < ATTN2_TILE / 8; n++) mx = fmaxf(mx, fmaxf(s[n][2 * r], s[n][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(ATTN_FULL_MASK, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(ATTN_FULL_MASK, mx, 2));
        const float base = mx == -INFINITY ? 0.0f : mx;  // no key seen yet: no -inf - -inf
        const float alpha = expf(m[r] - base);            // 0 while m is -inf
        m[r] = mx;
        l[r] *= alpha;
        for (int n = 0; n < ATTN2_TILE / 8; n++)
            for (int j = 2 * r; j < 2 * r + 2; j++) {
                s[n][j] = expf(s[n][j] - base);  // masked: exp(-inf) = 0
                l[r] += s[n][j];
            }
        for (int d = 0; d < HS / 8; d++) {
            o[d][2 * r] *= alpha;
            o[d][2 * r + 1] *= alpha;
        }
    }
}

// One key tile of the forward for the warp's 16 query rows (this lane: rows query[0], query[1]),
// K and V of keys [k0, k1) staged in shared memory ([64][HS + 8], zero rows past k1), end_tile their
// end[]: S = Q K^T scaled, the mask if `masked`, the online softmax update of m, l (this lane's
// share of the row sums) and O, then O += P V.
template <int HS>
__device__ inline void attention2_forward_tile(float o[HS / 8][4], float m[2], float l[2], const uint32_t q_frag[HS / 16][4],
                                               const __nv_bfloat16* k_tile, const __nv_bfloat16* v_tile,
                                               const int* end_tile, int k0, int k1, bool masked, const int query[2]) {
    // S = Q K^T (16 queries x 64 keys per warp)
    float s[ATTN2_TILE / 8][4];
    attention2_times_tile_t<HS>(s, q_frag, k_tile);
    attention2_softmax_tile<HS>(s, o, m, l, end_tile, k0, k1, masked, query);
    attention2_accumulate<HS>(o, s, v_tile);  // O += P V
}

// The forward's end: each row's sum over its quad (the same order on every lane), out = O / l and
// lse = m + log l for the lane's rows (blk.rows) below T (-inf and 0 for a row that saw nothing).
template <int HS>
__device__ inline void attention2_forward_store(floatX* out, float* lse, float o[HS / 8][4], const float m[2], float l[2],
                                                const Attention2Block<HS>& blk) {
    const int tig = threadIdx.x % 4;
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(ATTN_FULL_MASK, l[r], 1);
        l[r] += __shfl_xor_sync(ATTN_FULL_MASK, l[r], 2);
        const int query = blk.rows[r];
        if (query >= blk.T) continue;
        const float inv_l = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        floatX* o_row = out + ((size_t)blk.b * blk.T + query) * blk.C + blk.h * HS;
        for (int d = 0; d < HS / 8; d++)
            for (int j = 0; j < 2; j++) o_row[d * 8 + 2 * tig + j] = (floatX)(o[d][2 * r + j] * inv_l);
        if (tig == 0)
            lse[((size_t)blk.b * blk.NH + blk.h) * blk.T + query] = l[r] > 0.0f ? m[r] + logf(l[r]) : -INFINITY;
    }
}

// grid (ceil(T / 64), NH, B), 128 threads (ATTN2_WARPS warps). end_min / end_max from
// attention_end_bounds_kernel. Fragment positions (kernels/ptx.cuh): lane holds rows g = lane/4
// and g + 8 of its warp's 16, and in each n8 tile the columns 2*(lane%4) and the next.
template <int HS>
__global__ void attention_forward2_kernel(floatX* __restrict__ out, float* __restrict__ lse,
                                          const floatX* __restrict__ qkv, const int* __restrict__ end,
                                          const int* __restrict__ end_min, const int* __restrict__ end_max,
                                          int T, int NH, int C) {
    constexpr int LD = HS + 8;  // padded rows: still 16-byte aligned, consecutive rows on other banks
    __shared__ __align__(16) __nv_bfloat16 k_tile[ATTN2_TILE * LD];
    __shared__ __align__(16) __nv_bfloat16 v_tile[ATTN2_TILE * LD];
    __shared__ int end_tile[ATTN2_TILE];
    const Attention2Block<HS> blk(qkv, end, end_min, end_max, T, NH, C);  // queries [t0, t1), this lane's rows

    // Q goes through k_tile into registers: A fragments of the warp's 16 rows, 16 dims at a time
    attention2_stage<HS>(k_tile, blk.q, blk.t0, blk.t1, blk.C3);
    __syncthreads();
    uint32_t q_frag[HS / 16][4];
    attention2_row_fragments<HS>(q_frag, k_tile, blk.warp);

    float o[HS / 8][4] = {};                          // O[16 rows][HS], n8 tiles of dims
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // per row; l is this lane's share
    for (int k0 = 0; k0 < blk.t1; k0 += ATTN2_TILE) {
        const int k1 = min(k0 + ATTN2_TILE, T);
        const TileClass cls = blk.key_tile_class(k0);
        if (cls == TILE_SKIP) continue;  // the same for the whole block: never loaded
        const bool masked = cls == TILE_PARTIAL || k1 - k0 < ATTN2_TILE;  // a cut tile has zero rows
        __syncthreads();  // every warp is done with the previous tile (and with Q's staging)
        attention2_stage<HS>(k_tile, blk.q + C, k0, k1, blk.C3);
        attention2_stage<HS>(v_tile, blk.q + 2 * C, k0, k1, blk.C3);
        if ((int)threadIdx.x < ATTN2_TILE)
            end_tile[threadIdx.x] = k0 + (int)threadIdx.x < k1 ? blk.end[k0 + threadIdx.x] : 0;
        __syncthreads();
        attention2_forward_tile<HS>(o, m, l, q_frag, k_tile, v_tile, end_tile, k0, k1, masked, blk.rows);
    }
    attention2_forward_store<HS>(out, lse, o, m, l, blk);
}

// One key tile of the dq pass for the warp's 16 query rows (this lane: query[0], query[1], their
// lse and D = dO · O), K and V of keys [k0, k1) staged as in the forward: S = Q K^T, dP = dO V^T,
// dS = P (dP - D) with P = exp(scale S - lse) (0 where masked), dQ += dS K.
template <int HS>
__device__ inline void attention2_dq_tile(float dq[HS / 8][4], const uint32_t q_frag[HS / 16][4],
                                          const uint32_t do_frag[HS / 16][4], const __nv_bfloat16* k_tile,
                                          const __nv_bfloat16* v_tile, const int* end_tile, int k0, int k1, bool masked,
                                          const int query[2], const float lse_row[2], const float D[2]) {
    const int tig = threadIdx.x % 4;
    const float scale = 1.0f / sqrtf((float)HS);
    float s[ATTN2_TILE / 8][4], dp[ATTN2_TILE / 8][4];
    attention2_times_tile_t<HS>(s, q_frag, k_tile);
    attention2_times_tile_t<HS>(dp, do_frag, v_tile);
    for (int n = 0; n < ATTN2_TILE / 8; n++)
        for (int i = 0; i < 4; i++) {
            const int key = n * 8 + 2 * tig + i % 2, r = i / 2;
            const bool visible =
                !masked || (k0 + key < k1 && attention_visible(query[r], k0 + key, end_tile[key]));
            s[n][i] = visible ? expf(s[n][i] * scale - lse_row[r]) * (dp[n][i] - D[r]) : 0.0f;  // dS
        }
    attention2_accumulate<HS>(dq, s, k_tile);  // dQ += dS K
}

// D = dO · O of one query's HS-wide head slice, in fp32, summed from dimension 0 up in 16-byte
// chunks: the one order in which versions 2 and 3 compute D (version 2 in its two passes, version
// 3 once in attention_backward3_D_kernel), so every pass of either version uses the same D.
template <int HS>
__device__ inline float attention2_dout_dot_out(const floatX* dout, const floatX* out) {
    constexpr int PER_CHUNK = 16 / sizeof(floatX);
    float D = 0.0f;
    for (int d0 = 0; d0 < HS; d0 += PER_CHUNK) {
        // 16-byte aligned: a head slice starts at a multiple of hs (64 or 128) elements
        const int4 a_chunk = *reinterpret_cast<const int4*>(dout + d0);
        const int4 o_chunk = *reinterpret_cast<const int4*>(out + d0);
        floatX a[PER_CHUNK], o[PER_CHUNK];
        memcpy(a, &a_chunk, sizeof a_chunk);
        memcpy(o, &o_chunk, sizeof o_chunk);
        for (int j = 0; j < PER_CHUNK; j++) D += (float)a[j] * (float)o[j];
    }
    return D;
}

// lse and D = dO · O of the lane's two query rows (each of the quad's four lanes computes both;
// rows past T get 0).
template <int HS>
__device__ inline void attention2_row_lse_D(float lse_row[2], float D[2], const floatX* dout, const floatX* out,
                                            const float* lse, const Attention2Block<HS>& blk) {
    for (int r = 0; r < 2; r++) {
        const int query = blk.rows[r];
        const size_t tok = (size_t)query * blk.C;
        D[r] = query < blk.T ? attention2_dout_dot_out<HS>(blk.head(dout) + tok, blk.head(out) + tok) : 0.0f;
        lse_row[r] = query < blk.T ? blk.per_query(lse)[query] : 0.0f;
    }
}

// dq = scale dQ of the lane's rows below T.
template <int HS>
__device__ inline void attention2_dq_store(floatX* dqkv, const float dq[HS / 8][4], const Attention2Block<HS>& blk) {
    const int tig = threadIdx.x % 4;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int r = 0; r < 2; r++) {
        const int query = blk.rows[r];
        if (query >= blk.T) continue;
        floatX* dq_row = dqkv + ((size_t)blk.b * blk.T + query) * blk.C3 + blk.h * HS;
        for (int d = 0; d < HS / 8; d++)
            for (int j = 0; j < 2; j++) dq_row[d * 8 + 2 * tig + j] = (floatX)(dq[d][2 * r + j] * scale);
    }
}

// Backward version 2, pass 1: dq. grid (ceil(T / 64), NH, B), 128 threads; the block's 64 queries
// walk the key tiles as the forward does (same classes, same skips). Per warp and key tile:
// S = Q K^T, dP = dO V^T, dS = P (dP - D) with P = exp(scale S - lse), dQ += dS K; dq = scale dQ.
template <int HS>
__global__ void attention_backward2_dq_kernel(floatX* __restrict__ dqkv, const floatX* __restrict__ dout,
                                              const floatX* __restrict__ qkv, const floatX* __restrict__ out,
                                              const float* __restrict__ lse, const int* __restrict__ end,
                                              const int* __restrict__ end_min, const int* __restrict__ end_max,
                                              int T, int NH, int C) {
    constexpr int LD = HS + 8;
    __shared__ __align__(16) __nv_bfloat16 k_tile[ATTN2_TILE * LD];
    __shared__ __align__(16) __nv_bfloat16 v_tile[ATTN2_TILE * LD];
    __shared__ int end_tile[ATTN2_TILE];
    const Attention2Block<HS> blk(qkv, end, end_min, end_max, T, NH, C);  // queries [t0, t1), this lane's rows

    // Q and dO of the warp's 16 rows as A fragments (staged through k_tile and v_tile)
    attention2_stage<HS>(k_tile, blk.q, blk.t0, blk.t1, blk.C3);
    attention2_stage<HS>(v_tile, blk.head(dout), blk.t0, blk.t1, C);
    __syncthreads();
    uint32_t q_frag[HS / 16][4], do_frag[HS / 16][4];
    attention2_row_fragments<HS>(q_frag, k_tile, blk.warp);
    attention2_row_fragments<HS>(do_frag, v_tile, blk.warp);
    float lse_row[2], D[2];
    attention2_row_lse_D<HS>(lse_row, D, dout, out, lse, blk);

    float dq[HS / 8][4] = {};
    for (int k0 = 0; k0 < blk.t1; k0 += ATTN2_TILE) {
        const int k1 = min(k0 + ATTN2_TILE, T);
        const TileClass cls = blk.key_tile_class(k0);
        if (cls == TILE_SKIP) continue;
        // keys past T (a cut tile) are zero rows: masked, since exp(-lse) of a zero score may overflow
        const bool masked = cls == TILE_PARTIAL || k1 - k0 < ATTN2_TILE;
        __syncthreads();
        attention2_stage<HS>(k_tile, blk.q + C, k0, k1, blk.C3);
        attention2_stage<HS>(v_tile, blk.q + 2 * C, k0, k1, blk.C3);
        if ((int)threadIdx.x < ATTN2_TILE)
            end_tile[threadIdx.x] = k0 + (int)threadIdx.x < k1 ? blk.end[k0 + threadIdx.x] : 0;
        __syncthreads();
        attention2_dq_tile<HS>(dq, q_frag, do_frag, k_tile, v_tile, end_tile, k0, k1, masked, blk.rows, lse_row, D);
    }
    attention2_dq_store<HS>(dqkv, dq, blk);
}

// The element-wise part of a dk/dv tile: from S^T and dP^T of the warp's 16 keys (this lane's rows
// key[0], key[1]) x 64 queries [qt0, qt1) (lse_tile, D_tile of the queries), P^T = exp(scale S^T -
// lse) (0 where masked) overwrites st and dS^T = P^T (dP^T - D) overwrites dpt.
template <int HS>
__device__ inline void attention2_dkv_probabilities(float st[ATTN2_TILE / 8][4], float dpt[ATTN2_TILE / 8][4], int qt0,
                                                    int qt1, bool masked, const int key[2], const int end_key[2],
                                                    const float* lse_tile, const float* D_tile) {
    const int tig = threadIdx.x % 4;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int n = 0; n < ATTN2_TILE / 8; n++)
        for (int i = 0; i < 4; i++) {
            const int c = n * 8 + 2 * tig + i % 2, r = i / 2;  // query column, key row
            const bool visible = !masked || (qt0 + c < qt1 && attention_visible(qt0 + c, key[r], end_key[r]));
            const float p = visible ? expf(st[n][i] * scale - lse_tile[c]) : 0.0f;
            st[n][i] = p;                              // P^T
            dpt[n][i] = p * (dpt[n][i] - D_tile[c]);  // dS^T
        }
}

// dk = scale dK and dv = dV of the lane's key rows (blk.rows) below T.
template <int HS>
__device__ inline void attention2_dkv_store(floatX* dqkv, const float dk[HS / 8][4], const float dv[HS / 8][4],
                                            const Attention2Block<HS>& blk) {
    const int tig = threadIdx.x % 4;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int r = 0; r < 2; r++) {
        const int key = blk.rows[r];
        if (key >= blk.T) continue;
        floatX* dkey = dqkv + ((size_t)blk.b * blk.T + key) * blk.C3 + blk.C + blk.h * HS;
        for (int d = 0; d < HS / 8; d++)
            for (int j = 0; j < 2; j++) {
                dkey[d * 8 + 2 * tig + j] = (floatX)(dk[d][2 * r + j] * scale);
                dkey[blk.C + d * 8 + 2 * tig + j] = (floatX)dv[d][2 * r + j];
            }
    }
}

// lse_tile[64] and D_tile[64] (D = dO · O) of the queries [qt0, qt1), 0 past qt1; threads 0..63.
// row_dout, row_out: head h of the row's token 0 (Attention2Block::head); row_lse: its query 0.
template <int HS>
__device__ inline void attention2_query_lse_D(float* lse_tile, float* D_tile, const floatX* row_dout,
                                              const floatX* row_out, const float* row_lse, int qt0, int qt1, int C) {
    if ((int)threadIdx.x >= ATTN2_TILE) return;
    const int q = qt0 + threadIdx.x;
    const size_t tok = (size_t)q * C;
    D_tile[threadIdx.x] = q < qt1 ? attention2_dout_dot_out<HS>(row_dout + tok, row_out + tok) : 0.0f;
    lse_tile[threadIdx.x] = q < qt1 ? row_lse[q] : 0.0f;
}

// Backward version 2, pass 2: dk, dv. grid (ceil(T / 64), NH, B), 128 threads; the block owns the
// 64 keys of one key tile (warp w: keys 16w..16w+15, K and V kept as A fragments) and walks the
// query tiles of [k0, end_max) (the contiguous range of queries that see any of its keys; tiles in
// it still classified). Per warp and query tile: S^T = K Q^T, dP^T = V dO^T, P^T = exp(scale S^T -
// lse), dS^T = P^T (dP^T - D), dV += P^T dO, dK += dS^T Q; dk = scale dK. Rows of keys past T (a
// last tile cut short) compute on zero rows and are not stored.
template <int HS>
__global__ void attention_backward2_dkv_kernel(floatX* __restrict__ dqkv, const floatX* __restrict__ dout,
                                               const floatX* __restrict__ qkv, const floatX* __restrict__ out,
                                               const float* __restrict__ lse, const int* __restrict__ end,
                                               const int* __restrict__ end_min, const int* __restrict__ end_max,
                                               int T, int NH, int C) {
    constexpr int LD = HS + 8;
    __shared__ __align__(16) __nv_bfloat16 q_tile[ATTN2_TILE * LD];
    __shared__ __align__(16) __nv_bfloat16 do_tile[ATTN2_TILE * LD];
    __shared__ float lse_tile[ATTN2_TILE], D_tile[ATTN2_TILE];
    const Attention2Block<HS> blk(qkv, end, end_min, end_max, T, NH, C);  // keys [t0, t1), this lane's rows
    const int k0 = blk.t0, k1 = blk.t1;
    const int end_key[2] = {blk.rows[0] < T ? blk.end[blk.rows[0]] : 0, blk.rows[1] < T ? blk.end[blk.rows[1]] : 0};

    attention2_stage<HS>(q_tile, blk.q + C, k0, k1, blk.C3);
    attention2_stage<HS>(do_tile, blk.q + 2 * C, k0, k1, blk.C3);
    __syncthreads();
    uint32_t k_frag[HS / 16][4], v_frag[HS / 16][4];
    attention2_row_fragments<HS>(k_frag, q_tile, blk.warp);
    attention2_row_fragments<HS>(v_frag, do_tile, blk.warp);

    float dk[HS / 8][4] = {}, dv[HS / 8][4] = {};
    const int q_stop = min(blk.end_hi, T);
    for (int qt0 = k0; qt0 < q_stop; qt0 += ATTN2_TILE) {
        const int qt1 = min(qt0 + ATTN2_TILE, T);
        const TileClass cls = blk.query_tile_class(qt0);
        if (cls == TILE_SKIP) continue;
        // query columns past T (a last tile cut short) have zero Q and dO, lse 0 and D 0: p = 1 but
        // every product with them is 0, so only partial tiles need the mask
        const bool masked = cls == TILE_PARTIAL;
        __syncthreads();
        attention2_stage<HS>(q_tile, blk.q, qt0, qt1, blk.C3);
        attention2_stage<HS>(do_tile, blk.head(dout), qt0, qt1, C);
        attention2_query_lse_D<HS>(lse_tile, D_tile, blk.head(dout), blk.head(out), blk.per_query(lse), qt0, qt1, C);
        __syncthreads();
        float st[ATTN2_TILE / 8][4], dpt[ATTN2_TILE / 8][4];
        attention2_times_tile_t<HS>(st, k_frag, q_tile);
        attention2_times_tile_t<HS>(dpt, v_frag, do_tile);
        attention2_dkv_probabilities<HS>(st, dpt, qt0, qt1, masked, blk.rows, end_key, lse_tile, D_tile);
        attention2_accumulate<HS>(dv, st, do_tile);  // dV += P^T dO
        attention2_accumulate<HS>(dk, dpt, q_tile);  // dK += dS^T Q
    }
    attention2_dkv_store<HS>(dqkv, dk, dv, blk);
}

// ----------------------------------------------------------------------------------------------
// Version 3: version 2's tiles, classes and arithmetic, with the tile loads pipelined by cp.async
// (sm_80 and later), and a dk/dv pass that keeps its K and V in shared memory instead of registers.
//
// The pipeline: each streamed tile (K and V in the forward and dq pass, Q and dO in the dk/dv pass)
// has two shared-memory stages. Before the loop the block issues the copies of its first tile that
// is not skipped into stage 0; then, for each such tile j, in stage s:
//     issue the copies of the next non-skipped tile into stage s^1, commit (one group per thread
//       per iteration, empty when there is no next tile, so the wait count is always the same);
//     cp.async.wait_group 1: this thread's copies of tile j are done (j+1's may still fly);
//     __syncthreads: everyone's are, so the block may read stage s;
//     compute tile j from stage s;
//     __syncthreads: every warp is done with stage s before the next iteration refills it.
// Skipped tiles are never issued. Rows past T are zero-filled by plain stores, and the small
// per-tile arrays (end[], lse, D) by plain loads, into the stage being filled: both are visible
// after the same barrier. Shared memory is dynamic (more than 48 KiB at hs = 128): the launchers
// opt in.
//
// dk/dv at hs = 128: version 2 keeps K and V of the block's keys as mma A fragments (2 x 32
// registers) beside the dK and dV accumulators (2 x 64) and S^T, dP^T (2 x 32): more than the 255
// registers a thread has, so nvcc spills. Version 3 reads K and V's A fragments from shared memory
// with ldmatrix, 16 dims at a time, as each product needs them.
//
// D = dO · O per query: version 2 computes it inside both backward passes, the dk/dv pass once per
// (key tile, query tile), from O and dO rows loaded for nothing else. Version 3 computes it once
// per backward (attention_backward3_D_kernel, a [B,NH,T] fp32 array: FlashAttention-2's
// preprocessing pass); its dk/dv pass loads 64 floats of it per query tile and never reads `out`,
// its dq pass loads its rows' D once. Both versions sum D in the same order
// (attention2_dout_dot_out), so their results stay bit-identical.

// The copies of the HS-wide head slices of tokens [t0, t1) (src points at token 0's slice, tokens
// `stride` elements apart) into rows 0.. of a [ATTN2_TILE][HS + 8] tile: cp.async per 16-byte chunk,
// zeros past t1 by plain stores. The caller commits and waits. The fp32 build (not a version 3
// configuration the launchers pick, but it must compile and run) converts with plain loads.
template <int HS>
__device__ inline void attention3_issue_stage(__nv_bfloat16* dst, const floatX* src, int t0, int t1, size_t stride) {
#if defined(ENABLE_FP32)
    attention2_stage<HS>(dst, src, t0, t1, stride);
#else
    for (int chunk = threadIdx.x; chunk < ATTN2_TILE * HS / 8; chunk += blockDim.x) {
        const int r = chunk / (HS / 8), c = chunk % (HS / 8) * 8;
        __nv_bfloat16* d = dst + r * (HS + 8) + c;
        if (t0 + r < t1) {
            cp_async_16(d, src + (size_t)(t0 + r) * stride + c);  // 16-byte aligned: C % 8 == 0
        } else {
            for (int j = 0; j < 8; j++) d[j] = __float2bfloat16(0.0f);
        }
    }
#endif
}

// The first key tile at or after k0 that the block's queries do not skip; blk.t1 or more if there
// is none.
template <int HS>
__device__ inline int attention3_next_key_tile(int k0, const Attention2Block<HS>& blk) {
    while (k0 < blk.t1 && blk.key_tile_class(k0) == TILE_SKIP) k0 += ATTN2_TILE;
    return k0;
}

// The first query tile at or after qt0, below q_stop, that sees a key of the block; q_stop or more
// if there is none.
template <int HS>
__device__ inline int attention3_next_query_tile(int qt0, int q_stop, const Attention2Block<HS>& blk) {
    while (qt0 < q_stop && blk.query_tile_class(qt0) == TILE_SKIP) qt0 += ATTN2_TILE;
    return qt0;
}

// K and V of the keys [k0, k0 + 64) (cut by T) into one stage (K at stage, V at stage + 64 (HS + 8)),
// their end[] into end_dst (0 past T).
template <int HS>
__device__ inline void attention3_issue_kv(__nv_bfloat16* stage, int* end_dst, const Attention2Block<HS>& blk, int k0) {
    const int k1 = min(k0 + ATTN2_TILE, blk.T);
    attention3_issue_stage<HS>(stage, blk.q + blk.C, k0, k1, blk.C3);
    attention3_issue_stage<HS>(stage + ATTN2_TILE * (HS + 8), blk.q + 2 * blk.C, k0, k1, blk.C3);
    if ((int)threadIdx.x < ATTN2_TILE)
        end_dst[threadIdx.x] = k0 + (int)threadIdx.x < k1 ? blk.end[k0 + threadIdx.x] : 0;
}

// Dynamic shared memory of the forward and the dq pass: K and V in two stages, end[] in two stages.
inline size_t attention3_kv_pass_smem(int hs) {
    return sizeof(__nv_bfloat16) * 4 * ATTN2_TILE * (hs + 8) + sizeof(int) * 2 * ATTN2_TILE;
}
// ... of the dk/dv pass: the block's K and V, Q and dO in two stages, lse and D in two stages.
inline size_t attention3_dkv_pass_smem(int hs) {
    return sizeof(__nv_bfloat16) * 6 * ATTN2_TILE * (hs + 8) + sizeof(float) * 4 * ATTN2_TILE;
}

// Forward version 3: as attention_forward2_kernel, K and V pipelined. grid (ceil(T / 64), NH, B),
// 128 threads, attention3_kv_pass_smem(HS) bytes of dynamic shared memory.
template <int HS>
__global__ void attention_forward3_kernel(floatX* __restrict__ out, float* __restrict__ lse,
                                          const floatX* __restrict__ qkv, const int* __restrict__ end,
                                          const int* __restrict__ end_min, const int* __restrict__ end_max,
                                          int T, int NH, int C) {
    constexpr int TILE = ATTN2_TILE * (HS + 8);
    DYNAMIC_SHARED(__nv_bfloat16, smem);  // stage s: K at smem + 2s TILE, V after it; then end[2][64]
    int* end_stage = reinterpret_cast<int*>(smem + 4 * TILE);
    const Attention2Block<HS> blk(qkv, end, end_min, end_max, T, NH, C);  // queries [t0, t1), this lane's rows

    // the first tile's copies fly while Q goes through stage 1 into registers
    int k0 = attention3_next_key_tile<HS>(0, blk);
    if (k0 < blk.t1) attention3_issue_kv<HS>(smem, end_stage, blk, k0);
    cp_async_commit_group();
    attention2_stage<HS>(smem + 2 * TILE, blk.q, blk.t0, blk.t1, blk.C3);
    __syncthreads();
    uint32_t q_frag[HS / 16][4];
    attention2_row_fragments<HS>(q_frag, smem + 2 * TILE, blk.warp);
    __syncthreads();  // stage 1 is free for the next tile

    float o[HS / 8][4] = {};
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    for (int stage = 0; k0 < blk.t1; stage ^= 1) {
        const int k1 = min(k0 + ATTN2_TILE, T);
        const int k_next = attention3_next_key_tile<HS>(k0 + ATTN2_TILE, blk);
        if (k_next < blk.t1)
            attention3_issue_kv<HS>(smem + 2 * (stage ^ 1) * TILE, end_stage + (stage ^ 1) * ATTN2_TILE, blk, k_next);
        cp_async_commit_group();
        cp_async_wait_group<1>();
        __syncthreads();
        const bool masked = blk.key_tile_class(k0) == TILE_PARTIAL || k1 - k0 < ATTN2_TILE;  // a cut tile has zero rows
        const __nv_bfloat16* k_tile = smem + 2 * stage * TILE;
        attention2_forward_tile<HS>(o, m, l, q_frag, k_tile, k_tile + TILE, end_stage + stage * ATTN2_TILE, k0, k1,
                                    masked, blk.rows);
        __syncthreads();
        k0 = k_next;
    }
    attention2_forward_store<HS>(out, lse, o, m, l, blk);
}

// The D pass of version 3's backward (FlashAttention-2's preprocessing): D[b,h,q] = dO · O of
// every query and head in fp32, computed once per backward and read by both passes (version 2
// recomputes it in each, the dk/dv pass once per query tile of every key tile). One thread per
// (b, h, q), q fastest (so D is written coalesced); each reads its two head slices in 16-byte
// chunks. grid ceil(B NH T / 256), 256 threads.
template <int HS>
__global__ void attention_backward3_D_kernel(float* __restrict__ D, const floatX* __restrict__ dout,
                                             const floatX* __restrict__ out, int B, int T, int NH, int C) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * NH * T) return;
    const int q = (int)(i % T), h = (int)(i / T % NH), b = (int)(i / T / NH);
    const size_t tok = ((size_t)b * T + q) * C + h * HS;
    D[i] = attention2_dout_dot_out<HS>(dout + tok, out + tok);
}

// lse and D of the lane's two query rows from the [B,NH,T] arrays (rows past T get 0).
template <int HS>
__device__ inline void attention3_row_lse_D(float lse_row[2], float D_row[2], const float* lse, const float* D,
                                            const Attention2Block<HS>& blk) {
    for (int r = 0; r < 2; r++) {
        const int query = blk.rows[r];
        lse_row[r] = query < blk.T ? blk.per_query(lse)[query] : 0.0f;
        D_row[r] = query < blk.T ? blk.per_query(D)[query] : 0.0f;
    }
}

// Backward version 3, pass 1: dq, as attention_backward2_dq_kernel with K and V pipelined and D
// from the D pass. Grid, threads and shared memory as the forward's. At hs = 64 the launch bound
// keeps it at <= 168 registers, 3 blocks of 128 threads per SM (nvcc chose 172 without it: 2).
template <int HS>
__global__ void __launch_bounds__(32 * ATTN2_WARPS, HS == 64 ? 3 : 1)
    attention_backward3_dq_kernel(floatX* __restrict__ dqkv, const floatX* __restrict__ dout,
                                  const floatX* __restrict__ qkv, const float* __restrict__ lse,
                                  const float* __restrict__ D, const int* __restrict__ end,
                                  const int* __restrict__ end_min, const int* __restrict__ end_max, int T, int NH,
                                  int C) {
    constexpr int TILE = ATTN2_TILE * (HS + 8);
    DYNAMIC_SHARED(__nv_bfloat16, smem);  // as in the forward
    int* end_stage = reinterpret_cast<int*>(smem + 4 * TILE);
    const Attention2Block<HS> blk(qkv, end, end_min, end_max, T, NH, C);  // queries [t0, t1), this lane's rows

    // the first tile's copies fly while Q and dO go through stage 1 into registers
    int k0 = attention3_next_key_tile<HS>(0, blk);
    if (k0 < blk.t1) attention3_issue_kv<HS>(smem, end_stage, blk, k0);
    cp_async_commit_group();
    attention2_stage<HS>(smem + 2 * TILE, blk.q, blk.t0, blk.t1, blk.C3);
    attention2_stage<HS>(smem + 3 * TILE, blk.head(dout), blk.t0, blk.t1, C);
    __syncthreads();
    uint32_t q_frag[HS / 16][4], do_frag[HS / 16][4];
    attention2_row_fragments<HS>(q_frag, smem + 2 * TILE, blk.warp);
    attention2_row_fragments<HS>(do_frag, smem + 3 * TILE, blk.warp);
    __syncthreads();  // stage 1 is free for the next tile
    float lse_row[2], D_row[2];
    attention3_row_lse_D<HS>(lse_row, D_row, lse, D, blk);

    float dq[HS / 8][4] = {};
    for (int stage = 0; k0 < blk.t1; stage ^= 1) {
        const int k1 = min(k0 + ATTN2_TILE, T);
        const int k_next = attention3_next_key_tile<HS>(k0 + ATTN2_TILE, blk);
        if (k_next < blk.t1)
            attention3_issue_kv<HS>(smem + 2 * (stage ^ 1) * TILE, end_stage + (stage ^ 1) * ATTN2_TILE, blk, k_next);
        cp_async_commit_group();
        cp_async_wait_group<1>();
        __syncthreads();
        // keys past T (a cut tile) are zero rows: masked, since exp(-lse) of a zero score may overflow
        const bool masked = blk.key_tile_class(k0) == TILE_PARTIAL || k1 - k0 < ATTN2_TILE;
        const __nv_bfloat16* k_tile = smem + 2 * stage * TILE;
        attention2_dq_tile<HS>(dq, q_frag, do_frag, k_tile, k_tile + TILE, end_stage + stage * ATTN2_TILE, k0, k1,
                               masked, blk.rows, lse_row, D_row);
        __syncthreads();
        k0 = k_next;
    }
    attention2_dq_store<HS>(dqkv, dq, blk);
}

// s[16][64] = A[16][HS] · tile[64][HS]^T with A rows 16*warp.. of a staged [64][HS + 8] tile in
// shared memory, its fragments loaded 16 dims at a time (not held in registers).
template <int HS>
__device__ inline void attention3_rows_times_tile_t(float s[ATTN2_TILE / 8][4], const __nv_bfloat16* a_tile, int warp,
                                                    const __nv_bfloat16* tile) {
    const int lane = threadIdx.x % 32;
    for (int n = 0; n < ATTN2_TILE / 8; n++)
        for (int i = 0; i < 4; i++) s[n][i] = 0.0f;
    for (int kk = 0; kk < HS / 16; kk++) {
        uint32_t a[4];
        ldmatrix_x4(a, &a_tile[(warp * 16 + lane % 16) * (HS + 8) + kk * 16 + lane / 16 * 8]);
        attention2_times_tile_t_step<HS>(s, a, tile, kk);
    }
}

// lse_tile[64] and D_tile[64] of the queries [qt0, qt1) (0 past qt1) from the rows row_lse and
// row_D of the [B,NH,T] arrays, by plain loads: threads 0..63 lse, threads 64..127 D.
__device__ inline void attention3_query_lse_D(float* lse_tile, float* D_tile, const float* row_lse, const float* row_D,
                                              int qt0, int qt1) {
    const int j = threadIdx.x % ATTN2_TILE;
    if ((int)threadIdx.x < ATTN2_TILE) lse_tile[j] = qt0 + j < qt1 ? row_lse[qt0 + j] : 0.0f;
    else if ((int)threadIdx.x < 2 * ATTN2_TILE) D_tile[j] = qt0 + j < qt1 ? row_D[qt0 + j] : 0.0f;
}

// Backward version 3, pass 2: dk, dv, as attention_backward2_dkv_kernel with Q, dO (and lse, D)
// pipelined over the query tiles of [k0, end_max), K and V read from shared memory, and D from the
// D pass (`out` is not read). grid (ceil(T / 64), NH, B), 128 threads, attention3_dkv_pass_smem(HS)
// bytes of dynamic shared memory.
template <int HS>
__global__ void attention_backward3_dkv_kernel(floatX* __restrict__ dqkv, const floatX* __restrict__ dout,
                                               const floatX* __restrict__ qkv, const float* __restrict__ lse,
                                               const float* __restrict__ D, const int* __restrict__ end,
                                               const int* __restrict__ end_min, const int* __restrict__ end_max,
                                               int T, int NH, int C) {
    constexpr int TILE = ATTN2_TILE * (HS + 8);
    // K, V of the block; stage s: Q at smem + (2 + 2s) TILE, dO after it; then lse[2][64], D[2][64]
    DYNAMIC_SHARED(__nv_bfloat16, smem);
    const __nv_bfloat16* k_keep = smem;
    const __nv_bfloat16* v_keep = smem + TILE;
    float* lse_stage = reinterpret_cast<float*>(smem + 6 * TILE);
    float* D_stage = lse_stage + 2 * ATTN2_TILE;
    const Attention2Block<HS> blk(qkv, end, end_min, end_max, T, NH, C);  // keys [t0, t1), this lane's rows
    const int end_key[2] = {blk.rows[0] < T ? blk.end[blk.rows[0]] : 0, blk.rows[1] < T ? blk.end[blk.rows[1]] : 0};
    // computed once, outside the loop: at hs = 128 this kernel is at nvcc's 255 registers, and
    // recomputing these in the loop made it spill (dev/cuda/README.md)
    const floatX* dout_head = blk.head(dout);
    const float* row_lse = blk.per_query(lse);
    const float* row_D = blk.per_query(D);
    // Q, dO, lse and D of the query tile [qt0, qt0 + 64) into stage s
    auto issue_queries = [&](int qt0, int s) {
        const int qt1 = min(qt0 + ATTN2_TILE, T);
        attention3_issue_stage<HS>(smem + (2 + 2 * s) * TILE, blk.q, qt0, qt1, blk.C3);
        attention3_issue_stage<HS>(smem + (3 + 2 * s) * TILE, dout_head, qt0, qt1, C);
        attention3_query_lse_D(lse_stage + s * ATTN2_TILE, D_stage + s * ATTN2_TILE, row_lse, row_D, qt0, qt1);
    };

    // the block's K and V join the first query tile's group
    const int q_stop = min(blk.end_hi, T);
    attention3_issue_stage<HS>(smem, blk.q + C, blk.t0, blk.t1, blk.C3);
    attention3_issue_stage<HS>(smem + TILE, blk.q + 2 * C, blk.t0, blk.t1, blk.C3);
    int qt0 = attention3_next_query_tile<HS>(blk.t0, q_stop, blk);
    if (qt0 < q_stop) issue_queries(qt0, 0);
    cp_async_commit_group();

    float dk[HS / 8][4] = {}, dv[HS / 8][4] = {};
    for (int stage = 0; qt0 < q_stop; stage ^= 1) {
        const int qt1 = min(qt0 + ATTN2_TILE, T);
        const int qt_next = attention3_next_query_tile<HS>(qt0 + ATTN2_TILE, q_stop, blk);
        if (qt_next < q_stop) issue_queries(qt_next, stage ^ 1);
        cp_async_commit_group();
        cp_async_wait_group<1>();
        __syncthreads();
        // query columns past T (a last tile cut short) have zero Q and dO, lse 0 and D 0: p = 1 but
        // every product with them is 0, so only partial tiles need the mask
        const bool masked = blk.query_tile_class(qt0) == TILE_PARTIAL;
        const __nv_bfloat16* q_tile = smem + (2 + 2 * stage) * TILE;
        const __nv_bfloat16* do_tile = q_tile + TILE;
        float st[ATTN2_TILE / 8][4], dpt[ATTN2_TILE / 8][4];
        attention3_rows_times_tile_t<HS>(st, k_keep, blk.warp, q_tile);    // S^T = K Q^T
        attention3_rows_times_tile_t<HS>(dpt, v_keep, blk.warp, do_tile);  // dP^T = V dO^T
        attention2_dkv_probabilities<HS>(st, dpt, qt0, qt1, masked, blk.rows, end_key, lse_stage + stage * ATTN2_TILE,
                                         D_stage + stage * ATTN2_TILE);
        attention2_accumulate<HS>(dv, st, do_tile);  // dV += P^T dO
        attention2_accumulate<HS>(dk, dpt, q_tile);  // dK += dS^T Q
        __syncthreads();
        qt0 = qt_next;
    }
    attention2_dkv_store<HS>(dqkv, dk, dv, blk);
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

// Version 1: out[B,T,C], lse[B,NH,T] from qkv[B,T,3C] and the mask end[B*T].
inline void attention_forward1(floatX* out, float* lse, const floatX* qkv, const int* end, int B,
                               int T, int NH, int C, cudaStream_t stream) {
    const int hs = attention_head_size(C, NH, "attention_forward1");
    if (B == 0 || T == 0) return;
    const dim3 grid((T + ATTN_WARPS - 1) / ATTN_WARPS, NH, B);
    const size_t smem = sizeof(float) * (ATTN_TILE * (hs + 1) + ATTN_TILE * hs + ATTN_WARPS * hs) +
                        sizeof(int) * ATTN_TILE;
    attention_forward_kernel<<<grid, 32 * ATTN_WARPS, smem, stream>>>(out, lse, qkv, end, T, NH, C);
    CUDA_CHECK(cudaGetLastError());
}

// Key tiles of 64 per row of T tokens (the length of end_min / end_max per row).
inline int attention_key_tiles(int T) { return (T + ATTN2_TILE - 1) / ATTN2_TILE; }

// The tile classifier's input, once per micro-batch: end_min[B * tiles], end_max[B * tiles]
// (tiles = attention_key_tiles(T)), the smallest and largest end[] of each 64-key tile.
inline void attention_end_bounds(int* end_min, int* end_max, const int* end, int B, int T, cudaStream_t stream) {
    const int n = B * attention_key_tiles(T), warps = 4;
    if (n == 0) return;
    attention_end_bounds_kernel<<<(n + warps - 1) / warps, 32 * warps, 0, stream>>>(end_min, end_max, end, B, T);
    CUDA_CHECK(cudaGetLastError());
}

// Whether version 2 takes this head size.
inline bool attention_forward2_supports(int hs) { return hs == 64 || hs == 128; }

// Version 2: as version 1, with end_min / end_max from attention_end_bounds on the same end[].
// Head size 64 or 128. Inputs are rounded to bf16 (a no-op in the bf16 build).
inline void attention_forward2(floatX* out, float* lse, const floatX* qkv, const int* end, const int* end_min,
                               const int* end_max, int B, int T, int NH, int C, cudaStream_t stream) {
    const int hs = attention_head_size(C, NH, "attention_forward2");
    if (!attention_forward2_supports(hs)) {
        fprintf(stderr, "%s:%d: attention_forward2: head size %d; version 2 takes 64 or 128 (use version 1)\n",
                __FILE__, __LINE__, hs);
        exit(1);
    }
    if (B == 0 || T == 0) return;
    const dim3 grid(attention_key_tiles(T), NH, B);
    if (hs == 64)
        attention_forward2_kernel<64><<<grid, 32 * ATTN2_WARPS, 0, stream>>>(out, lse, qkv, end, end_min, end_max, T, NH, C);
    else
        attention_forward2_kernel<128><<<grid, 32 * ATTN2_WARPS, 0, stream>>>(out, lse, qkv, end, end_min, end_max, T, NH, C);
    CUDA_CHECK(cudaGetLastError());
}

// Version 1: dqkv[B,T,3C] (overwritten) from dout[B,T,C], the forward's qkv, out and lse, and the mask.
inline void attention_backward1(floatX* dqkv, const floatX* dout, const floatX* qkv, const floatX* out,
                                const float* lse, const int* end, int B, int T, int NH, int C,
                                cudaStream_t stream) {
    const int hs = attention_head_size(C, NH, "attention_backward1");
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

// Version 2: as version 1, with end_min / end_max from attention_end_bounds; head size 64 or 128.
inline void attention_backward2(floatX* dqkv, const floatX* dout, const floatX* qkv, const floatX* out,
                                const float* lse, const int* end, const int* end_min, const int* end_max, int B,
                                int T, int NH, int C, cudaStream_t stream) {
    const int hs = attention_head_size(C, NH, "attention_backward2");
    if (!attention_forward2_supports(hs)) {
        fprintf(stderr, "%s:%d: attention_backward2: head size %d; version 2 takes 64 or 128 (use version 1)\n",
                __FILE__, __LINE__, hs);
        exit(1);
    }
    if (B == 0 || T == 0) return;
    const dim3 grid(attention_key_tiles(T), NH, B);
    if (hs == 64) {
        attention_backward2_dq_kernel<64><<<grid, 32 * ATTN2_WARPS, 0, stream>>>(dqkv, dout, qkv, out, lse, end,
                                                                               end_min, end_max, T, NH, C);
        attention_backward2_dkv_kernel<64><<<grid, 32 * ATTN2_WARPS, 0, stream>>>(dqkv, dout, qkv, out, lse, end,
                                                                                end_min, end_max, T, NH, C);
    } else {
        attention_backward2_dq_kernel<128><<<grid, 32 * ATTN2_WARPS, 0, stream>>>(dqkv, dout, qkv, out, lse, end,
                                                                                end_min, end_max, T, NH, C);
        attention_backward2_dkv_kernel<128><<<grid, 32 * ATTN2_WARPS, 0, stream>>>(dqkv, dout, qkv, out, lse, end,
                                                                                 end_min, end_max, T, NH, C);
    }
    CUDA_CHECK(cudaGetLastError());
}

// Version 3: as version 2 (the same arguments), the tile loads pipelined with cp.async (a GPU of
// sm_80 or later) and no register spills at head size 128. Head size 64 or 128.
inline void attention_forward3(floatX* out, float* lse, const floatX* qkv, const int* end, const int* end_min,
                               const int* end_max, int B, int T, int NH, int C, cudaStream_t stream) {
    const int hs = attention_head_size(C, NH, "attention_forward3");
    if (!attention_forward2_supports(hs)) {
        fprintf(stderr, "%s:%d: attention_forward3: head size %d; version 3 takes 64 or 128 (use version 1)\n",
                __FILE__, __LINE__, hs);
        exit(1);
    }
    if (B == 0 || T == 0) return;
    const dim3 grid(attention_key_tiles(T), NH, B);
    const size_t smem = attention3_kv_pass_smem(hs);
    if (hs == 64) {
        CUDA_CHECK(cudaFuncSetAttribute(attention_forward3_kernel<64>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        attention_forward3_kernel<64><<<grid, 32 * ATTN2_WARPS, smem, stream>>>(out, lse, qkv, end, end_min, end_max, T, NH, C);
    } else {
        CUDA_CHECK(cudaFuncSetAttribute(attention_forward3_kernel<128>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        attention_forward3_kernel<128><<<grid, 32 * ATTN2_WARPS, smem, stream>>>(out, lse, qkv, end, end_min, end_max, T, NH, C);
    }
    CUDA_CHECK(cudaGetLastError());
}

// Version 3's D pass: D[B,NH,T] (fp32, overwritten) = dout · out of each query and head, from
// dout[B,T,C] and out[B,T,C]. Head size 64 or 128.
inline void attention_backward3_D(float* D, const floatX* dout, const floatX* out, int B, int T, int NH, int C,
                                  cudaStream_t stream) {
    const int hs = attention_head_size(C, NH, "attention_backward3_D");
    if (!attention_forward2_supports(hs)) {
        fprintf(stderr, "%s:%d: attention_backward3_D: head size %d; the D pass takes 64 or 128\n", __FILE__,
                __LINE__, hs);
        exit(1);
    }
    const size_t queries = (size_t)B * NH * T;
    if (queries == 0) return;
    const int threads = 256, blocks = (int)((queries + threads - 1) / threads);
    if (hs == 64) attention_backward3_D_kernel<64><<<blocks, threads, 0, stream>>>(D, dout, out, B, T, NH, C);
    else attention_backward3_D_kernel<128><<<blocks, threads, 0, stream>>>(D, dout, out, B, T, NH, C);
    CUDA_CHECK(cudaGetLastError());
}

// D: [B,NH,T] fp32 scratch, overwritten (the D pass's output, read by the dq and dk/dv passes).
inline void attention_backward3(floatX* dqkv, float* D, const floatX* dout, const floatX* qkv, const floatX* out,
                                const float* lse, const int* end, const int* end_min, const int* end_max, int B,
                                int T, int NH, int C, cudaStream_t stream) {
    const int hs = attention_head_size(C, NH, "attention_backward3");
    if (!attention_forward2_supports(hs)) {
        fprintf(stderr, "%s:%d: attention_backward3: head size %d; version 3 takes 64 or 128 (use version 1)\n",
                __FILE__, __LINE__, hs);
        exit(1);
    }
    if (B == 0 || T == 0) return;
    attention_backward3_D(D, dout, out, B, T, NH, C, stream);
    const dim3 grid(attention_key_tiles(T), NH, B);
    const size_t smem_dq = attention3_kv_pass_smem(hs), smem_dkv = attention3_dkv_pass_smem(hs);
    const cudaFuncAttribute max_smem = cudaFuncAttributeMaxDynamicSharedMemorySize;
    if (hs == 64) {
        CUDA_CHECK(cudaFuncSetAttribute(attention_backward3_dq_kernel<64>, max_smem, (int)smem_dq));
        CUDA_CHECK(cudaFuncSetAttribute(attention_backward3_dkv_kernel<64>, max_smem, (int)smem_dkv));
        attention_backward3_dq_kernel<64><<<grid, 32 * ATTN2_WARPS, smem_dq, stream>>>(dqkv, dout, qkv, lse, D, end,
                                                                                     end_min, end_max, T, NH, C);
        attention_backward3_dkv_kernel<64><<<grid, 32 * ATTN2_WARPS, smem_dkv, stream>>>(dqkv, dout, qkv, lse, D, end,
                                                                                       end_min, end_max, T, NH, C);
    } else {
        CUDA_CHECK(cudaFuncSetAttribute(attention_backward3_dq_kernel<128>, max_smem, (int)smem_dq));
        CUDA_CHECK(cudaFuncSetAttribute(attention_backward3_dkv_kernel<128>, max_smem, (int)smem_dkv));
        attention_backward3_dq_kernel<128><<<grid, 32 * ATTN2_WARPS, smem_dq, stream>>>(dqkv, dout, qkv, lse, D, end,
                                                                                      end_min, end_max, T, NH, C);
        attention_backward3_dkv_kernel<128><<<grid, 32 * ATTN2_WARPS, smem_dkv, stream>>>(dqkv, dout, qkv, lse, D, end,
                                                                                        end_min, end_max, T, NH, C);
    }
    CUDA_CHECK(cudaGetLastError());
}

// Device memory behind attention_forward / attention_backward: end_min / end_max, and version
// 3's D [B,NH,T]. Each grown on demand (a cudaMalloc the first time a micro-batch is larger than
// any before), both freed by attention_teardown().
struct AttentionScratch {
    int* bounds = nullptr;  // end_min, then end_max
    size_t capacity = 0;    // ints per array
    float* D = nullptr;     // the backward's D
    size_t D_capacity = 0;  // floats
};
inline AttentionScratch& attention_scratch() {
    static AttentionScratch scratch;
    return scratch;
}
inline void attention_teardown() {
    AttentionScratch& s = attention_scratch();
    if (s.bounds) CUDA_CHECK(cudaFree(s.bounds));
    if (s.D) CUDA_CHECK(cudaFree(s.D));
    s = AttentionScratch{};
}

// Whether the launchers below take version 3 (tensor cores): the bf16 build, head size 64 or 128.
inline bool attention_use_tensor_cores(int B, int T, int NH, int C, const char* who) {
    const int hs = attention_head_size(C, NH, who);
#if defined(ENABLE_FP32)
    (void)hs;
    return false;  // versions 2 and 3 compute in bf16; the fp32 build keeps fp32
#else
    return B > 0 && T > 0 && attention_forward2_supports(hs);
#endif
}

// end_min / end_max of the micro-batch in the scratch memory (recomputed at each call: B*T ints,
// small against the attention). Returns end_min; end_max follows at + capacity.
inline int* attention_scratch_bounds(const int* end, int B, int T, cudaStream_t stream) {
    AttentionScratch& s = attention_scratch();
    const size_t n = (size_t)B * attention_key_tiles(T);
    if (n > s.capacity) {
        if (s.bounds) CUDA_CHECK(cudaFree(s.bounds));
        CUDA_CHECK(cudaMalloc(&s.bounds, 2 * n * sizeof(int)));
        s.capacity = n;
    }
    attention_end_bounds(s.bounds, s.bounds + s.capacity, end, B, T, stream);
    return s.bounds;
}

// Version 3's D [B,NH,T] in the scratch memory (overwritten by each backward).
inline float* attention_scratch_D(int B, int NH, int T) {
    AttentionScratch& s = attention_scratch();
    const size_t n = (size_t)B * NH * T;
    if (n > s.D_capacity) {
        if (s.D) CUDA_CHECK(cudaFree(s.D));
        CUDA_CHECK(cudaMalloc(&s.D, n * sizeof(float)));
        s.D_capacity = n;
    }
    return s.D;
}

// out[B,T,C], lse[B,NH,T] from qkv[B,T,3C] and the mask end[B*T] (version 3 or 1, see above).
inline void attention_forward(floatX* out, float* lse, const floatX* qkv, const int* end, int B,
                              int T, int NH, int C, cudaStream_t stream) {
    if (!attention_use_tensor_cores(B, T, NH, C, "attention_forward")) {
        attention_forward1(out, lse, qkv, end, B, T, NH, C, stream);
        return;
    }
    const int* bounds = attention_scratch_bounds(end, B, T, stream);
    attention_forward3(out, lse, qkv, end, bounds, bounds + attention_scratch().capacity, B, T, NH, C, stream);
}

// dqkv[B,T,3C] (overwritten) from dout[B,T,C], the forward's qkv, out and lse, and the mask.
inline void attention_backward(floatX* dqkv, const floatX* dout, const floatX* qkv, const floatX* out,
                               const float* lse, const int* end, int B, int T, int NH, int C,
                               cudaStream_t stream) {
    if (!attention_use_tensor_cores(B, T, NH, C, "attention_backward")) {
        attention_backward1(dqkv, dout, qkv, out, lse, end, B, T, NH, C, stream);
        return;
    }
    const int* bounds = attention_scratch_bounds(end, B, T, stream);
    attention_backward3(dqkv, attention_scratch_D(B, NH, T), dout, qkv, out, lse, end, bounds,
                        bounds + attention_scratch().capacity, B, T, NH, C, stream);
}

// ----------------------------------------------------------------------------------------------
// Version 4 (Hopper, sm_90a; forward only, head size 64): version 2's tiles, classes and online
// softmax with both products on warpgroup MMA (kernels/ptx.cuh, dev/simt/TENSOR.md "Warpgroup
// MMA"). A block is one warpgroup (128 threads) and 64 queries; warp w owns query rows
// 16w..16w+15 as in version 2 (a wgmma accumulator's rows: the same fragment as mma.sync's C).
// Q, K and V tiles are staged in shared memory as 64 rows of 128 bytes (hs 64 in bf16) with the
// 128-byte swizzle (row r's 16-byte chunk c at chunk c XOR r % 8), each tile 1024-byte aligned:
//   S = Q K^T   wgmma, A = Q and B = K both K-major (the tile rows), 4 steps of 16 dims: the
//               descriptor's start moves 32 bytes along the swizzled rows; SBO 1024 (8 rows)
//   O += P V    wgmma, A = P from registers (S's accumulators rounded to bf16: the C fragments of
//               keys 16kk..16kk+15 are the A fragment of step kk), B = V N-major (dims
//               contiguous in a row), 4 steps of 16 keys: 2048 bytes each
// Each product is issued, committed and waited for at once (no overlap of the two yet), and the
// tiles are loaded as in version 2 (no cp.async). Not used by the launchers the trainer calls
// until a GPU has measured it. The same lse and outputs as version 2 up to the tensor cores' sums.
constexpr int ATTN4_HS = 64;
constexpr uint32_t ATTN4_TILE_BYTES = ATTN2_TILE * ATTN4_HS * 2;  // 64 rows of 128 bytes

// Copies the head slices (64 dims) of tokens [t0, t1) into rows 0.. of a 128B-swizzled tile
// (1024-byte aligned), zeros past t1. Every thread of the block takes 16-byte chunks.
__device__ inline void attention4_stage(unsigned char* tile, const floatX* src, int t0, int t1, size_t stride) {
    for (int chunk = threadIdx.x; chunk < ATTN2_TILE * 8; chunk += blockDim.x) {
        const int r = chunk / 8, c = chunk % 8;
        __nv_bfloat16* d = reinterpret_cast<__nv_bfloat16*>(tile + r * 128 + (c ^ (r % 8)) * 16);
        if (t0 + r < t1) {
            const floatX* s = src + (size_t)(t0 + r) * stride + c * 8;
#if defined(ENABLE_FP32)
            for (int j = 0; j < 8; j++) d[j] = __float2bfloat16(s[j]);
#else
            *reinterpret_cast<int4*>(d) = *reinterpret_cast<const int4*>(s);  // 16-byte aligned: C % 8 == 0
#endif
        } else {
            for (int j = 0; j < 8; j++) d[j] = __float2bfloat16(0.0f);
        }
    }
}

__global__ void attention4_available_kernel(int* out) { *out = wgmma_available() ? 1 : 0; }

// grid (ceil(T / 64), NH, B), 128 threads (one warpgroup). Dynamic shared memory
// attention4_smem(): q, k and v tiles (ATTN4_TILE_BYTES each, 1024-byte aligned), end_tile[64].
__global__ void __launch_bounds__(128) attention_forward4_kernel(floatX* __restrict__ out, float* __restrict__ lse,
                                          const floatX* __restrict__ qkv, const int* __restrict__ end,
                                          const int* __restrict__ end_min, const int* __restrict__ end_max,
                                          int T, int NH, int C) {
    constexpr int HS = ATTN4_HS;
    DYNAMIC_SHARED(unsigned char, smem);
    unsigned char* q_tile = reinterpret_cast<unsigned char*>(((uintptr_t)smem + 1023) & ~(uintptr_t)1023);
    unsigned char* k_tile = q_tile + ATTN4_TILE_BYTES;
    unsigned char* v_tile = k_tile + ATTN4_TILE_BYTES;
    int* end_tile = reinterpret_cast<int*>(v_tile + ATTN4_TILE_BYTES);
    const Attention2Block<HS> blk(qkv, end, end_min, end_max, T, NH, C);  // this thread's rows: blk.rows

    attention4_stage(q_tile, blk.q, blk.t0, blk.t1, blk.C3);  // published by the first tile's fence
    uint64_t q_desc[4], k_desc[4], v_desc[4];            // step kk of each product
    for (int kk = 0; kk < 4; kk++) {
        q_desc[kk] = wgmma_descriptor(q_tile + 32 * kk, 16, 1024, WgmmaSwizzle::B128);
        k_desc[kk] = wgmma_descriptor(k_tile + 32 * kk, 16, 1024, WgmmaSwizzle::B128);
        v_desc[kk] = wgmma_descriptor(v_tile + 2048 * kk, 16, 1024, WgmmaSwizzle::B128);
    }

    float o[HS / 8][4] = {};                          // O[16 rows][64 dims] of the warp, n8 tiles
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // per row; l is this thread's share
    float* o_acc = &o[0][0];
    for (int k0 = 0; k0 < blk.t1; k0 += ATTN2_TILE) {
        const int k1 = min(k0 + ATTN2_TILE, T);
        const TileClass cls = blk.key_tile_class(k0);
        if (cls == TILE_SKIP) continue;  // the same for the whole block: never loaded
        const bool masked = cls == TILE_PARTIAL || k1 - k0 < ATTN2_TILE;  // a cut tile has zero rows
        __syncthreads();  // every thread waited for the previous tile's wgmma: its tiles may be overwritten
        attention4_stage(k_tile, blk.q + C, k0, k1, blk.C3);
        attention4_stage(v_tile, blk.q + 2 * C, k0, k1, blk.C3);
        if ((int)threadIdx.x < ATTN2_TILE)
            end_tile[threadIdx.x] = k0 + (int)threadIdx.x < k1 ? blk.end[k0 + threadIdx.x] : 0;
        fence_proxy_async();  // this thread's tile writes, visible to wgmma
        __syncthreads();

        // S = Q K^T (64 queries x 64 keys; this thread: rows blk.rows[], keys 8n + 2 tig + {0, 1})
        float s[ATTN2_TILE / 8][4];
        wgmma_fence();
        for (int kk = 0; kk < 4; kk++) wgmma_m64n64k16_bf16_ss<0, 0>(&s[0][0], q_desc[kk], k_desc[kk], kk > 0);
        wgmma_commit_group();
        wgmma_wait_group<0>();
        wgmma_fence_operand(reinterpret_cast<float(&)[32]>(s));
        attention2_softmax_tile<HS>(s, o, m, l, end_tile, k0, k1, masked, blk.rows);
        // O += P V, P rounded to bf16: the A fragment of keys 16kk.. is S's n8 tiles 2kk and 2kk+1
        uint32_t p[4][4];
        for (int kk = 0; kk < 4; kk++) {
            p[kk][0] = attention2_pack_bf16(s[2 * kk][0], s[2 * kk][1]);
            p[kk][1] = attention2_pack_bf16(s[2 * kk][2], s[2 * kk][3]);
            p[kk][2] = attention2_pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            p[kk][3] = attention2_pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
        }
        wgmma_fence_operand(reinterpret_cast<float(&)[32]>(o));
        for (int kk = 0; kk < 4; kk++) wgmma_fence_operand(p[kk]);
        wgmma_fence();
        for (int kk = 0; kk < 4; kk++) wgmma_m64n64k16_bf16_rs<1>(o_acc, p[kk], v_desc[kk], 1);
        wgmma_commit_group();
        wgmma_wait_group<0>();
        wgmma_fence_operand(reinterpret_cast<float(&)[32]>(o));
        for (int kk = 0; kk < 4; kk++) wgmma_fence_operand(p[kk]);
    }
    attention2_forward_store<HS>(out, lse, o, m, l, blk);
}

inline size_t attention4_smem() { return 3 * ATTN4_TILE_BYTES + ATTN2_TILE * sizeof(int) + 1024; }

// Whether version 4 runs here: the kernels were built for sm_90a (a Hopper GPU), or on the CPU
// emulation. Asked of the device once.
inline bool attention_forward4_available() {
    static int available = -1;
    if (available < 0) {
        int* flag;
        CUDA_CHECK(cudaMalloc(&flag, sizeof(int)));
        attention4_available_kernel<<<1, 1>>>(flag);
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaMemcpy(&available, flag, sizeof(int), cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaFree(flag));
    }
    return available == 1;
}

// Version 4: as attention_forward2 (the same arguments), head size 64, on a build for sm_90a.
inline void attention_forward4(floatX* out, float* lse, const floatX* qkv, const int* end, const int* end_min,
                               const int* end_max, int B, int T, int NH, int C, cudaStream_t stream) {
    const int hs = attention_head_size(C, NH, "attention_forward4");
    if (hs != ATTN4_HS || !attention_forward4_available()) {
        fprintf(stderr, "%s:%d: attention_forward4: head size %d%s; version 4 takes 64 on a Hopper build "
                "(nvcc -arch=sm_90a)\n", __FILE__, __LINE__, hs,
                attention_forward4_available() ? "" : ", and this build has no wgmma");
        exit(1);
    }
    const dim3 grid((T + ATTN2_TILE - 1) / ATTN2_TILE, NH, B);
    attention_forward4_kernel<<<grid, 128, attention4_smem(), stream>>>(out, lse, qkv, end, end_min, end_max, T, NH, C);
    CUDA_CHECK(cudaGetLastError());
}
