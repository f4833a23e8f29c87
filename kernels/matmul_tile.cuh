// kernels/matmul_tile.cuh: a bf16 matrix product on tensor cores, built from ldmatrix + mma.sync
// (kernels/ptx.cuh). It shows the pattern the GPU trainer's hand-written products use, kept clear
// rather than fast (no cp.async pipeline, no double buffering, no swizzle):
//   C[M,N] (f32, row-major) = A[M,K] (bf16, row-major) * B[N,K]^T (bf16, row-major)
// i.e. "TN", like a linear layer y = x W^T with x = A and W = B. Any M, N, K >= 1 (edges are
// zero-filled in shared memory and masked on store).
//
// Tiling: a block of 128 threads (4 warps) computes a 64x64 tile of C; the warps sit 2x2, each
// owning 32x32 = 2 (m16) x 4 (n8) mma tiles. The K loop stages a 64x32 slice of A and of B in
// shared memory (rows padded to 40 elements = 80 bytes: 16-byte aligned for ldmatrix, and
// consecutive rows land on different banks), then walks it 16 at a time:
//   A fragment of an m16 tile: ldmatrix.x4; lanes 0-15 give rows 0-15 at column k, lanes 16-31
//     the same rows at column k+8, so the four 8x8 matrices are exactly a0a1, a2a3, a4a5, a6a7.
//   B fragments of two n8 tiles: ldmatrix.x4 on B's rows (n) at columns k and k+8: a row of B
//     holds consecutive k for one n, which is the "col" layout mma wants (b0b1, b2b3) as is.
#pragma once
#include <cstdint>
#include "dev/simt/cuda_compat.h"
#include "kernels/ptx.cuh"

constexpr int MATMUL_TILE_BM = 64;       // rows of C per block
constexpr int MATMUL_TILE_BN = 64;       // columns of C per block
constexpr int MATMUL_TILE_BK = 32;       // K per shared-memory stage
constexpr int MATMUL_TILE_LDS = 32 + 8;  // shared row stride in elements (padded)
constexpr int MATMUL_TILE_THREADS = 128;

// Copies row `row`, columns col..col+7 of the rows x cols bf16 matrix src into dst (shared),
// writing zeros for whatever lies outside the matrix.
__device__ __forceinline__ void matmul_tile_load8(__nv_bfloat16* dst, const __nv_bfloat16* src,
                                                  int row, int rows, int col, int cols) {
    const __nv_bfloat16* p = src + (size_t)row * cols + col;
    if (row < rows && col + 8 <= cols && reinterpret_cast<uintptr_t>(p) % 16 == 0) {   // whole, aligned
        *reinterpret_cast<int4*>(dst) = *reinterpret_cast<const int4*>(p);
        return;
    }
    for (int j = 0; j < 8; j++)
        dst[j] = (row < rows && col + j < cols) ? p[j] : __float2bfloat16(0.0f);
}

// grid (ceil(N/64), ceil(M/64)), block 128 threads.
__global__ void matmul_tile_bf16_kernel(float* C, const __nv_bfloat16* A, const __nv_bfloat16* B,
                                        int M, int N, int K) {
    __shared__ __align__(16) __nv_bfloat16 As[MATMUL_TILE_BM * MATMUL_TILE_LDS];
    __shared__ __align__(16) __nv_bfloat16 Bs[MATMUL_TILE_BN * MATMUL_TILE_LDS];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int warp_m = (warp / 2) * 32, warp_n = (warp % 2) * 32;   // warp's corner in the tile
    const int m0 = blockIdx.y * MATMUL_TILE_BM, n0 = blockIdx.x * MATMUL_TILE_BN;

    float acc[2][4][4] = {};   // [m16 tile][n8 tile][c0..c3]
    for (int k0 = 0; k0 < K; k0 += MATMUL_TILE_BK) {
        // stage A[m0:m0+64, k0:k0+32] and B[n0:n0+64, k0:k0+32]: 256 chunks of 8 each
        for (int chunk = threadIdx.x; chunk < MATMUL_TILE_BM * MATMUL_TILE_BK / 8; chunk += blockDim.x) {
            int r = chunk / (MATMUL_TILE_BK / 8), c = chunk % (MATMUL_TILE_BK / 8) * 8;
            matmul_tile_load8(&As[r * MATMUL_TILE_LDS + c], A, m0 + r, M, k0 + c, K);
            matmul_tile_load8(&Bs[r * MATMUL_TILE_LDS + c], B, n0 + r, N, k0 + c, K);
        }
        __syncthreads();
        for (int kk = 0; kk < MATMUL_TILE_BK; kk += 16) {
            uint32_t a[2][4], b[4][2];
            for (int mi = 0; mi < 2; mi++) {
                int r = warp_m + mi * 16 + lane % 16, c = kk + (lane / 16) * 8;
                ldmatrix_x4(a[mi], &As[r * MATMUL_TILE_LDS + c]);
            }
            for (int ni = 0; ni < 4; ni += 2) {
                // matrices: (tile ni, k), (tile ni, k+8), (tile ni+1, k), (tile ni+1, k+8)
                int r = warp_n + (ni + lane / 16) * 8 + lane % 8, c = kk + (lane / 8 % 2) * 8;
                uint32_t regs[4];
                ldmatrix_x4(regs, &Bs[r * MATMUL_TILE_LDS + c]);
                b[ni][0] = regs[0]; b[ni][1] = regs[1];
                b[ni + 1][0] = regs[2]; b[ni + 1][1] = regs[3];
            }
            for (int mi = 0; mi < 2; mi++)
                for (int ni = 0; ni < 4; ni++)
                    mma_m16n8k16_bf16(acc[mi][ni], a[mi], b[ni], acc[mi][ni]);
        }
        __syncthreads();   // before the next stage overwrites the tiles
    }
    // c_i of an m16n8 tile sits at row lane/4 + 8*(i/2), column 2*(lane%4) + i%2
    for (int mi = 0; mi < 2; mi++)
        for (int ni = 0; ni < 4; ni++)
            for (int i = 0; i < 4; i++) {
                int row = m0 + warp_m + mi * 16 + lane / 4 + 8 * (i / 2);
                int col = n0 + warp_n + ni * 8 + 2 * (lane % 4) + i % 2;
                if (row < M && col < N) C[(size_t)row * N + col] = acc[mi][ni][i];
            }
}

// C = A B^T on `stream`; all three are device pointers. Launch errors are left for the caller's
// cudaGetLastError check.
inline void matmul_tile_bf16(float* C, const __nv_bfloat16* A, const __nv_bfloat16* B, int M, int N, int K,
                             cudaStream_t stream) {
    dim3 grid((N + MATMUL_TILE_BN - 1) / MATMUL_TILE_BN, (M + MATMUL_TILE_BM - 1) / MATMUL_TILE_BM);
    matmul_tile_bf16_kernel<<<grid, MATMUL_TILE_THREADS, 0, stream>>>(C, A, B, M, N, K);
}
