// dev/simt/test_warp_intrinsics.cu: the warp intrinsics (__shfl*_sync with widths, ballot, any,
// all, __syncwarp, partial masks) in a 3-D block, the block votes (__syncthreads_count/and/or)
// and __constant__ memory, against values worked out on the host from the CUDA Programming
// Guide's rules. On the CPU this checks the emulation (both thread orders, ASan);
// on a GPU the same expectations check the hardware, so the two are compared through them.
#include <vector>

#include "dev/simt/kernel_test.h"

constexpr int kOps = 16;
constexpr int kUndefined = 0x7eadbeef;  // marks results the rules leave undefined

// out (grid, 64 threads, kOps): one int per lane and operation. Block (8, 4, 2): two warps.
__global__ void warp_intrinsics_kernel(int* out) {
    __shared__ int exchange[64];
    const int linear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const int lane = linear % 32;
    const int v = lane * 3 + 1 + 100 * (int)blockIdx.x + 1000 * (linear / 32);
    int* r = out + ((size_t)blockIdx.x * 64 + linear) * kOps;
    const unsigned full = 0xffffffffu;
    r[0] = __shfl_sync(full, v, 5);
    r[1] = __shfl_sync(full, v, lane + 1, 8);
    r[2] = __shfl_up_sync(full, v, 3);
    r[3] = __shfl_up_sync(full, v, 2, 16);
    r[4] = __shfl_down_sync(full, v, 4);
    r[5] = __shfl_down_sync(full, v, 1, 4);
    r[6] = __shfl_xor_sync(full, v, 7);
    r[7] = __shfl_xor_sync(full, v, 16, 16);
    r[8] = (int)__ballot_sync(full, lane % 3 == 0);
    r[9] = __any_sync(full, lane == 7);
    r[10] = __all_sync(full, lane < 40);
    r[11] = __all_sync(full, lane != 5);
    if (lane < 16) r[12] = __shfl_down_sync(0x0000ffffu, v, 2);  // lanes 14, 15: undefined
    else r[12] = __shfl_xor_sync(0xffff0000u, v, 1);
    exchange[linear] = v;
    __syncwarp();
    r[13] = exchange[(linear / 32) * 32 + 31 - lane];
    r[14] = __float_as_int(__shfl_xor_sync(full, 0.5f * (float)v, 3));
    const long long wide = (long long)v << 33;
    r[15] = (int)(__shfl_down_sync(full, wide, 1) >> 33);
}

__constant__ int kVoteModulus[1];

// out (5,): block votes over 96 threads.
__global__ void block_vote_kernel(int* out) {
    const int t = threadIdx.x;
    const int count = __syncthreads_count(t % kVoteModulus[0] == 0);
    const int all_true = __syncthreads_and(t < 1000);
    const int all_false = __syncthreads_and(t != 50);
    const int any_true = __syncthreads_or(t == 95);
    const int any_false = __syncthreads_or(t > 1000);
    if (t == 7) {
        out[0] = count; out[1] = all_true; out[2] = all_false; out[3] = any_true; out[4] = any_false;
    }
}

// The expected result of each operation for lane `lane` of a warp whose lane i holds value(i).
static int expected(int op, int lane, int block, int warp) {
    auto value = [&](int l) { return l * 3 + 1 + 100 * block + 1000 * warp; };
    switch (op) {
        case 0: return value(5);
        case 1: return value((lane / 8) * 8 + (lane + 1) % 8);
        case 2: return lane < 3 ? value(lane) : value(lane - 3);
        case 3: return lane % 16 < 2 ? value(lane) : value(lane - 2);
        case 4: return lane + 4 > 31 ? value(lane) : value(lane + 4);
        case 5: return lane % 4 == 3 ? value(lane) : value(lane + 1);
        case 6: return value(lane ^ 7);
        case 7: return lane < 16 ? value(lane) : value(lane - 16);  // earlier group: allowed
        case 8: { int m = 0; for (int l = 0; l < 32; l += 3) m |= 1 << l; return m; }
        case 9: return 1;
        case 10: return 1;
        case 11: return 0;
        case 12: return lane < 14 ? value(lane + 2) : lane < 16 ? kUndefined : value(lane ^ 1);
        case 13: return value(31 - lane);
        case 14: { float f = 0.5f * (float)value(lane ^ 3); int i; memcpy(&i, &f, 4); return i; }
        case 15: return lane == 31 ? value(lane) : value(lane + 1);
    }
    return kUndefined;
}

int main() {
    const int grid = 3;
    for_each_thread_order([&](const char* order) {
        DeviceBuffer<int> d_out((size_t)grid * 64 * kOps);
        warp_intrinsics_kernel<<<grid, dim3(8, 4, 2)>>>(d_out.ptr);
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<int> out = d_out.download();
        const char* names[kOps] = {"shfl idx", "shfl idx width 8", "shfl up", "shfl up width 16",
                                   "shfl down", "shfl down width 4", "shfl xor", "shfl xor width 16",
                                   "ballot", "any", "all (true)", "all (false)",
                                   "partial-mask shuffles", "syncwarp + shared exchange",
                                   "shfl float", "shfl 64-bit"};
        for (int op = 0; op < kOps; op++) {
            int bad_index = -1, got = 0, want = 0;
            for (int b = 0; b < grid && bad_index < 0; b++)
                for (int t = 0; t < 64 && bad_index < 0; t++) {
                    want = expected(op, t % 32, b, t / 32);
                    got = out[((size_t)b * 64 + t) * kOps + op];
#if SIMT_CPU
                    if (want == kUndefined) want = -1;  // the emulator's poison: 0xFF bytes
#else
                    if (want == kUndefined) continue;
#endif
                    if (got != want) bad_index = b * 64 + t;
                }
            char name[96];
            snprintf(name, sizeof name, "warp %s order=%s", names[op], order);
            test_report(bad_index < 0, name, "block %d thread %d: got %d, want %d",
                        bad_index / 64, bad_index % 64, got, want);
        }
        const int modulus = 3;
        CUDA_CHECK(cudaMemcpyToSymbol(kVoteModulus, &modulus, sizeof(int)));
        DeviceBuffer<int> d_votes(5);
        block_vote_kernel<<<1, 96>>>(d_votes.ptr);
        CUDA_CHECK(cudaGetLastError());
        std::vector<int> votes = d_votes.download();
        char name[96];
        snprintf(name, sizeof name, "block votes and __constant__ order=%s", order);
        test_report(votes == std::vector<int>{32, 1, 0, 1, 0}, name, "got %d %d %d %d %d",
                    votes[0], votes[1], votes[2], votes[3], votes[4]);
    });
    return test_exit();
}
