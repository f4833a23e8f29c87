// kernels/reduce.cuh: sum reductions (fp32). Warp and block helpers that other kernels use,
// a kernel that sums an array chunk by chunk (one block per chunk), a deterministic global
// sum of squares (for the gradient norm): per-block partials, then one block adds them up; and
// the two-stage column sums of the parameter gradients (below). Blocks are 1-D with a multiple
// of 32 threads (at most 1024), except the column sums' (32, COLUMN_SUM_ROW_LANES).
//
// Column sums: out[c] += sum over n of f(n, c) for an (N, C) array, N = B*T tokens (a bias's
// gradient, a LayerNorm's dweight and dbias). One block per 32 columns walking all N rows would
// use 24 blocks at C = 768 on a GPU of 132 SMs; instead:
//   stage 1  the layer's kernel, grid (column blocks, row chunks): block (x, k) sums the rows of
//            chunk k for its columns (thread (lane, y): rows y, y + ROW_LANES, ... of the chunk)
//            and ends with write_column_partials: partials[k][c] (fp32 scratch, chunks x C)
//   stage 2  add_column_partials: out[c] += partials[0][c] + partials[1][c] + ... in that order
// The chunks (column_chunks) depend only on N, C and the load width, never on the GPU or the run,
// and nothing is added with atomics: every run gives the same bits. A thread loads COLUMN_PACK
// consecutive floatX of a row at once (16 bytes) when C and the pointers allow it, else one.
// Kernels first, then launchers.
#pragma once
#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include "kernels/cuda_common.h"

// Sum of v over the 32 lanes of the warp; every lane gets the result.
__device__ __forceinline__ float warp_reduce_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Maximum of v over the 32 lanes of the warp; every lane gets the result.
__device__ __forceinline__ float warp_reduce_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum of v over all threads of the (1-D) block; every thread gets the result. Every thread of
// the block must call it (it has barriers); back-to-back calls are safe.
__device__ inline float block_reduce_sum(float v) {
    __shared__ float warp_sums[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
    v = warp_reduce_sum(v);
    __syncthreads();  // a previous call may still be reading warp_sums
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    return warp_reduce_sum(lane < num_warps ? warp_sums[lane] : 0.0f);
}

// Maximum of v over all threads of the (1-D) block; every thread gets the result.
__device__ inline float block_reduce_max(float v) {
    __shared__ float warp_maxes[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
    v = warp_reduce_max(v);
    __syncthreads();
    if (lane == 0) warp_maxes[warp] = v;
    __syncthreads();
    return warp_reduce_max(lane < num_warps ? warp_maxes[lane] : -INFINITY);
}

// out[b] = sum of inp[b*chunk .. min((b+1)*chunk, N)), one block per chunk.
// inp (N,), out (ceil(N/chunk),)
__global__ void block_sum_kernel(float* __restrict__ out, const float* __restrict__ inp, size_t N,
                                 size_t chunk) {
    const size_t begin = (size_t)blockIdx.x * chunk;
    const size_t end = begin + chunk < N ? begin + chunk : N;
    float sum = 0.0f;
    for (size_t i = begin + threadIdx.x; i < end; i += blockDim.x) sum += inp[i];
    sum = block_reduce_sum(sum);
    if (threadIdx.x == 0) out[blockIdx.x] = sum;
}

// partials[b] = sum of inp[i]^2 over the i that block b visits in a grid-stride loop.
// inp (N,), partials (gridDim.x,)
__global__ void sum_squares_partial_kernel(float* __restrict__ partials,
                                           const float* __restrict__ inp, size_t N) {
    float sum = 0.0f;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < N; i += stride) {
        const float x = inp[i];
        sum += x * x;
    }
    sum = block_reduce_sum(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// out[0] = (accumulate ? out[0] : 0) + sum of partials[0..count), by one block.
__global__ void sum_partials_kernel(float* __restrict__ out, const float* __restrict__ partials,
                                    int count, bool accumulate) {
    float sum = 0.0f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = block_reduce_sum(sum);
    if (threadIdx.x == 0) out[0] = accumulate ? out[0] + sum : sum;
}

// Column sums (see the top of this file). Block (COLUMN_SUM_WIDTH, COLUMN_SUM_ROW_LANES).
constexpr int COLUMN_SUM_WIDTH = 32;      // column groups per block: one per lane
constexpr int COLUMN_SUM_ROW_LANES = 8;   // warps per block, each a row lane: 256 threads
constexpr int COLUMN_PACK = 16 / (int)sizeof(floatX);  // floatX per 16-byte load: 8 bf16, 4 fp32

// `pack` consecutive floatX of a row, loaded at once (one 16-byte load for COLUMN_PACK).
template <int pack> struct alignas(pack * sizeof(floatX)) FloatXPack {
    floatX v[pack];
};
template <int pack> __device__ inline FloatXPack<pack> load_pack(const floatX* p) {
    return *reinterpret_cast<const FloatXPack<pack>*>(p);
}

// The end of a stage-1 block, called by all its threads: `sum` holds thread (lane, y)'s sums of
// the columns col0 + lane * pack + j (j < pack), col0 = blockIdx.x * COLUMN_SUM_WIDTH * pack;
// the block adds its row lanes' sums in the order y = 0, 1, ... and writes
// partials[blockIdx.y * C + c] for its columns c < C. Back-to-back calls are safe.
template <int pack>
__device__ inline void write_column_partials(float* __restrict__ partials, const float (&sum)[pack],
                                             int C) {
    static_assert(COLUMN_SUM_WIDTH * pack <= COLUMN_SUM_WIDTH * COLUMN_SUM_ROW_LANES,
                  "one thread per column of the block in the final sum");
    __shared__ float lane_sums[COLUMN_SUM_ROW_LANES][COLUMN_SUM_WIDTH * pack];
    __syncthreads();  // a previous call may still be reading lane_sums
    for (int j = 0; j < pack; j++) lane_sums[threadIdx.y][threadIdx.x * pack + j] = sum[j];
    __syncthreads();
    const int t = threadIdx.y * COLUMN_SUM_WIDTH + threadIdx.x;  // the block's column t
    const int c = blockIdx.x * COLUMN_SUM_WIDTH * pack + t;
    if (t < COLUMN_SUM_WIDTH * pack && c < C) {
        float total = 0.0f;
        for (int y = 0; y < COLUMN_SUM_ROW_LANES; y++) total += lane_sums[y][t];
        partials[(size_t)blockIdx.y * C + c] = total;
    }
}

// Stage 2: out[c] += partials[0 * C + c] + partials[1 * C + c] + ... + partials[(chunks-1) * C + c],
// in that order, one thread per column. blockIdx.y = 1 does the same for out_b from the next
// chunks * C partials (two sums of one layer in one launch; out_b unused when gridDim.y = 1).
__global__ void add_column_partials_kernel(float* __restrict__ out_a, float* __restrict__ out_b,
                                           const float* __restrict__ partials, int chunks, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float* out = blockIdx.y == 0 ? out_a : out_b;
    const float* p = partials + (size_t)blockIdx.y * chunks * C + c;
    float sum = 0.0f;
    for (int k = 0; k < chunks; k++) sum += p[(size_t)k * C];
    out[c] += sum;
}

// ----------------------------------------------------------------------------------------------
// Launchers.

// Number of blocks (and so of partials) that global_sum_squares uses.
constexpr int SUM_SQUARES_BLOCKS = 264;  // two per SM of an H100

// out[b] = sum of inp over chunk b (see block_sum_kernel); block_size a multiple of 32.
inline void block_sums(float* out, const float* inp, size_t N, size_t chunk, int block_size,
                       cudaStream_t stream) {
    assert(chunk > 0 && block_size % 32 == 0 && block_size <= 1024);
    const unsigned grid = (unsigned)((N + chunk - 1) / chunk);
    if (grid == 0) return;
    block_sum_kernel<<<grid, block_size, 0, stream>>>(out, inp, N, chunk);
}

// out[0] = (accumulate ? out[0] : 0) + sum of inp[i]^2 over N elements; deterministic.
// partials: scratch of SUM_SQUARES_BLOCKS floats.
inline void global_sum_squares(float* out, float* partials, const float* inp, size_t N,
                               bool accumulate, cudaStream_t stream) {
    sum_squares_partial_kernel<<<SUM_SQUARES_BLOCKS, 512, 0, stream>>>(partials, inp, N);
    sum_partials_kernel<<<1, 1024, 0, stream>>>(out, partials, SUM_SQUARES_BLOCKS, accumulate);
}

// Stage 1's grid fills the GPU: about this many blocks of 256 threads (4 per SM of a 132-SM
// H100 / H200, half of each SM's threads), never chunks of fewer than COLUMN_SUM_MIN_ROWS rows
// (so the partials, 4 bytes per column and chunk, stay under 1/32 of the bytes the chunk reads).
constexpr int COLUMN_SUM_TARGET_BLOCKS = 528;
constexpr int COLUMN_SUM_MIN_ROWS = 64;

// How a column sum over (N, C) is cut: stage 1's grid is (column_blocks, chunks), chunk k holds
// rows [k * chunk_rows, min(N, (k + 1) * chunk_rows)), each thread loads `pack` columns at once.
struct ColumnChunks {
    int pack = 1, column_blocks = 0, chunks = 0, chunk_rows = 0;
};

// The most chunks a sum over C columns with loads of `pack` may take (for any N).
inline int column_max_chunks(int C, int pack) {
    const int column_blocks = (C + COLUMN_SUM_WIDTH * pack - 1) / (COLUMN_SUM_WIDTH * pack);
    return std::max(1, (COLUMN_SUM_TARGET_BLOCKS + column_blocks - 1) / column_blocks);
}

// The cut for N >= 1 rows of C >= 1 columns; `pack` is COLUMN_PACK or 1 (column_pack).
inline ColumnChunks column_chunks(int N, int C, int pack) {
    assert(N >= 1 && C >= 1 && (pack == 1 || C % pack == 0));
    ColumnChunks p;
    p.pack = pack;
    p.column_blocks = (C + COLUMN_SUM_WIDTH * pack - 1) / (COLUMN_SUM_WIDTH * pack);
    const int max_chunks = column_max_chunks(C, pack);
    p.chunk_rows = std::max((N + max_chunks - 1) / max_chunks, COLUMN_SUM_MIN_ROWS);
    p.chunks = (N + p.chunk_rows - 1) / p.chunk_rows;
    return p;
}

// COLUMN_PACK when C is a multiple of it and every row pointer (a, and b unless null) is 16-byte
// aligned (then so is every row: C * sizeof(floatX) is a multiple of 16), else 1.
inline int column_pack(int C, const void* a, const void* b = nullptr) {
    const bool aligned = (uintptr_t)a % 16 == 0 && (b == nullptr || (uintptr_t)b % 16 == 0);
    return C % COLUMN_PACK == 0 && aligned ? COLUMN_PACK : 1;
}

// Floats of scratch that `arrays` column sums of C columns need (stage 1's partials), for any N
// and either load width.
inline size_t column_partials_floats(int C, int arrays) {
    const int chunks = std::max(column_max_chunks(C, 1), column_max_chunks(C, COLUMN_PACK));
    return (size_t)arrays * chunks * C;
}

// Stage 2 of `arrays` (1 or 2) column sums cut as p: out_a (and out_b) += the partials.
inline void add_column_partials(float* out_a, float* out_b, const float* partials, int arrays,
                                const ColumnChunks& p, int C, cudaStream_t stream) {
    const int block = 256;
    const dim3 grid((unsigned)((C + block - 1) / block), (unsigned)arrays);
    add_column_partials_kernel<<<grid, block, 0, stream>>>(out_a, out_b, partials, p.chunks, C);
}
