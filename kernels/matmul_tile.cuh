// kernels/matmul_tile.cuh: a bf16 matrix product on tensor cores, built from ldmatrix + mma.sync
// (kernels/ptx.cuh). It shows the pattern the GPU trainer's hand-written products use, kept clear
// rather than fast (no cp.async pipeline, no double buffering, no swizzle):
//   matmul_tile_bf16_tn:  C[M,N] = A[M,K] * B[N,K]^T   (a linear layer y = x W^T, W stored [N,K])
//   matmul_tile_bf16_nn:  C[M,N] = A[M,K] * B[K,N]     (e.g. dx = dy W in the backward pass)
// A and B are bf16, row-major; C is f32, row-major, overwritten. Any M, N, K >= 1 (edges are
// zero-filled in shared memory and masked on store).
//
// Tiling: a block of 128 threads (4 warps) computes a 64x64 tile of C; the warps sit 2x2, each
// owning 32x32 = 2 (m16) x 4 (n8) mma tiles. The K loop stages a 64x32 slice of A and the matching
// slice of B in shared memory (rows padded by 8 elements: still 16-byte aligned for ldmatrix, and
// consecutive rows start on different banks), then walks it 16 at a time:
//   A fragment of an m16 tile: ldmatrix.x4; lanes 0-15 give rows 0-15 at column k, lanes 16-31
//     the same rows at column k+8, so the four 8x8 matrices are exactly a0a1, a2a3, a4a5, a6a7.
//   B fragments of two n8 tiles, one ldmatrix.x4 (matrices: tile n at k, at k+8; tile n+8 at k,
//     at k+8). mma wants B "col" (each register two consecutive k of one n):
//     B stored [N,K]: a row of B is exactly that, so the plain ldmatrix gives it;
//     B stored [K,N]: rows are k, so ldmatrix.trans transposes each 8x8 matrix into place.
#pragma once
#include <cstdint>
#include "kernels/cuda_common.h"
#include "kernels/ptx.cuh"

constexpr int MATMUL_TILE_BM = 64;       // rows of C per block
constexpr int MATMUL_TILE_BN = 64;       // columns of C per block
constexpr int MATMUL_TILE_BK = 32;       // K per shared-memory stage
constexpr int MATMUL_TILE_THREADS = 128;
constexpr int MATMUL_TILE_LDK = MATMUL_TILE_BK + 8;   // stride of a [64][32] stage (A; B as [N,K])
constexpr int MATMUL_TILE_LDN = MATMUL_TILE_BN + 8;   // stride of a [32][64] stage (B as [K,N])

enum class MatmulTileB { NK, KN };   // how B is stored: [N,K] (C = A B^T) or [K,N] (C = A B)

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
template <MatmulTileB LAYOUT>
__global__ void matmul_tile_bf16_kernel(float* C, const __nv_bfloat16* A, const __nv_bfloat16* B,
                                        int M, int N, int K) {
    __shared__ __align__(16) __nv_bfloat16 As[MATMUL_TILE_BM * MATMUL_TILE_LDK];
    __shared__ __align__(16) __nv_bfloat16 Bs[LAYOUT == MatmulTileB::NK ? MATMUL_TILE_BN * MATMUL_TILE_LDK
                                                                        : MATMUL_TILE_BK * MATMUL_TILE_LDN];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int warp_m = (warp / 2) * 32, warp_n = (warp % 2) * 32;   // warp's corner in the tile
    const int m0 = blockIdx.y * MATMUL_TILE_BM, n0 = blockIdx.x * MATMUL_TILE_BN;

    float acc[2][4][4] = {};   // [m16 tile][n8 tile][c0..c3]
    for (int k0 = 0; k0 < K; k0 += MATMUL_TILE_BK) {
        // stage A[m0:+64, k0:+32] and B[n0:+64, k0:+32] (or B[k0:+32, n0:+64]): 256 chunks of 8 each
        for (int chunk = threadIdx.x; chunk < MATMUL_TILE_BM * MATMUL_TILE_BK / 8; chunk += blockDim.x) {
            int r = chunk / (MATMUL_TILE_BK / 8), c = chunk % (MATMUL_TILE_BK / 8) * 8;
            matmul_tile_load8(&As[r * MATMUL_TILE_LDK + c], A, m0 + r, M, k0 + c, K);
            if constexpr (LAYOUT == MatmulTileB::NK) {
                matmul_tile_load8(&Bs[r * MATMUL_TILE_LDK + c], B, n0 + r, N, k0 + c, K);
            } else {
                int kr = chunk / (MATMUL_TILE_BN / 8), nc = chunk % (MATMUL_TILE_BN / 8) * 8;
                matmul_tile_load8(&Bs[kr * MATMUL_TILE_LDN + nc], B, k0 + kr, K, n0 + nc, N);
            }
        }
        __syncthreads();
        for (int kk = 0; kk < MATMUL_TILE_BK; kk += 16) {
            uint32_t a[2][4], b[4][2];
            for (int mi = 0; mi < 2; mi++) {
                int r = warp_m + mi * 16 + lane % 16, c = kk + (lane / 16) * 8;
                ldmatrix_x4(a[mi], &As[r * MATMUL_TILE_LDK + c]);
            }
            for (int ni = 0; ni < 4; ni += 2) {
                // lane's row of matrix lane/8: n tile ni + lane/16, k half (lane/8)%2, row lane%8
                int n = warp_n + (ni + lane / 16) * 8, k = kk + (lane / 8 % 2) * 8;
                uint32_t regs[4];
                if constexpr (LAYOUT == MatmulTileB::NK)
                    ldmatrix_x4(regs, &Bs[(n + lane % 8) * MATMUL_TILE_LDK + k]);
                else
                    ldmatrix_x4_trans(regs, &Bs[(k + lane % 8) * MATMUL_TILE_LDN + n]);
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

// The launchers: all pointers are device pointers; launch errors are left for the caller's
// cudaGetLastError check.
template <MatmulTileB LAYOUT>
inline void matmul_tile_bf16(float* C, const __nv_bfloat16* A, const __nv_bfloat16* B, int M, int N, int K,
                             cudaStream_t stream) {
    dim3 grid((N + MATMUL_TILE_BN - 1) / MATMUL_TILE_BN, (M + MATMUL_TILE_BM - 1) / MATMUL_TILE_BM);
    matmul_tile_bf16_kernel<LAYOUT><<<grid, MATMUL_TILE_THREADS, 0, stream>>>(C, A, B, M, N, K);
}
// C[M,N] = A[M,K] B[N,K]^T
inline void matmul_tile_bf16_tn(float* C, const __nv_bfloat16* A, const __nv_bfloat16* B, int M, int N, int K,
                                cudaStream_t stream) {
    matmul_tile_bf16<MatmulTileB::NK>(C, A, B, M, N, K, stream);
}
// C[M,N] = A[M,K] B[K,N]
inline void matmul_tile_bf16_nn(float* C, const __nv_bfloat16* A, const __nv_bfloat16* B, int M, int N, int K,
                                cudaStream_t stream) {
    matmul_tile_bf16<MatmulTileB::KN>(C, A, B, M, N, K, stream);
}
