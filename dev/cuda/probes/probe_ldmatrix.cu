// dev/cuda/probes/probe_ldmatrix.cu: runs each ldmatrix wrapper of kernels/ptx.cuh (x1, x2, x4, plain and
// .trans) on a fixed shared-memory tile with fixed scattered row addresses, and prints every lane's
// registers: "ldmatrix_<variant> <lane> <register> 0x..". The GPU build shows what the hardware
// loads, the CPU build what the emulation loads; dev/gpu_check.sh compares them (bit for bit).
#include "dev/simt/kernel_test.h"
#include "kernels/ptx.cuh"
#include <cstdint>
#include <cstdio>
#include <vector>

constexpr int ROWS = 32, STRIDE = 40;   // 80-byte rows: 16-byte aligned, not a power of two

// Runs variant v (0-2: x1, x2, x4; 3-5: the same with .trans); out[v][lane][0..3].
__global__ void probe_ldmatrix_kernel(uint32_t* out, const uint16_t* tile, const int* row_of_lane,
                                      const int* col_of_lane) {
    __shared__ __align__(16) uint16_t s[ROWS * STRIDE];
    int lane = threadIdx.x;
    for (int i = lane; i < ROWS * STRIDE; i += 32) s[i] = tile[i];
    __syncthreads();
    const uint16_t* p = &s[row_of_lane[lane] * STRIDE + col_of_lane[lane]];
    uint32_t r[6][4] = {};
    ldmatrix_x1(r[0], p);
    ldmatrix_x2(r[1], p);
    ldmatrix_x4(r[2], p);
    ldmatrix_x1_trans(r[3], p);
    ldmatrix_x2_trans(r[4], p);
    ldmatrix_x4_trans(r[5], p);
    for (int v = 0; v < 6; v++)
        for (int i = 0; i < 4; i++) out[(v * 32 + lane) * 4 + i] = r[v][i];
}

int main() {
    std::vector<uint16_t> tile(ROWS * STRIDE);
    for (size_t i = 0; i < tile.size(); i++) tile[i] = (uint16_t)(i * 40503u + 12345u);   // distinct
    std::vector<int> rows(32), cols(32);
    for (int i = 0; i < 32; i++) { rows[i] = (i * 13 + 7) % 32; cols[i] = 8 * ((i * 5 + 1) % 4); }
    DeviceBuffer<uint16_t> dtile(tile.size());
    DeviceBuffer<int> drows(32), dcols(32);
    DeviceBuffer<uint32_t> dout(6 * 32 * 4);
    dtile.upload(tile); drows.upload(rows); dcols.upload(cols);
    probe_ldmatrix_kernel<<<1, 32>>>(dout.ptr, dtile.ptr, drows.ptr, dcols.ptr);
    CUDA_CHECK(cudaGetLastError());
    std::vector<uint32_t> out = dout.download();
    const char* names[6] = {"x1", "x2", "x4", "x1_trans", "x2_trans", "x4_trans"};
    const int count[6] = {1, 2, 4, 1, 2, 4};
    for (int v = 0; v < 6; v++)
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < count[v]; i++)
                printf("ldmatrix_%s %d %d 0x%08x\n", names[v], lane, i, out[(v * 32 + lane) * 4 + i]);
    return 0;
}
