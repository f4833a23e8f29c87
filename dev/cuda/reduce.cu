// dev/cuda/reduce.cu: the reductions (kernels/reduce.cuh), checked and benchmarked.
//   ./dev/cuda/reduce       checks per-chunk block sums and the global sum of squares against
//                           plain double-precision loops on fresh random inputs, and the cut of
//                           the two-stage column sums (their kernels: dev/cuda/matmul, layernorm)
//   ./dev/cuda/reduce 1     (GPU only) times version 1 of both over 124M floats (GPT-2's
//                           parameter count, as in the gradient norm): ms and GB/s
// Version 1: a warp-shuffle block sum; the global sum of squares in two deterministic passes.
// Builds with g++ on the CPU execution layer (every thread order, and under ASan) and with nvcc.
#include <algorithm>
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/reduce.cuh"

// |got - want| must stay within a few fp32 roundings of the sum of magnitudes.
static bool close_sum(double got, double want, double magnitude) {
    return std::fabs(got - want) <= 2e-6 * magnitude + 1e-6;
}

static void test_block_sums(const char* order, size_t N, size_t chunk, int block_size,
                            std::mt19937_64& rng) {
    std::vector<float> x(N);
    fill_uniform(x, -1.0f, 1.0f, rng);
    const size_t num_chunks = (N + chunk - 1) / chunk;
    DeviceBuffer<float> d_x(N), d_out(num_chunks);
    d_x.upload(x);
    block_sums(d_out.ptr, d_x.ptr, N, chunk, block_size, nullptr);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> out = d_out.download();
    size_t bad = num_chunks;
    for (size_t b = 0; b < num_chunks && bad == num_chunks; b++) {
        double want = 0.0, magnitude = 0.0;
        for (size_t i = b * chunk; i < std::min(N, (b + 1) * chunk); i++) {
            want += x[i];
            magnitude += std::fabs(x[i]);
        }
        if (!close_sum(out[b], want, magnitude)) bad = b;
    }
    char name[160];
    snprintf(name, sizeof name, "block_sums N=%zu chunk=%zu block=%d order=%s", N, chunk,
             block_size, order);
    if (bad == num_chunks) test_report(true, name);
    else test_report(false, name, "chunk %zu: got %.7g", bad, out[bad]);
}

static void test_global_sum_squares(const char* order, size_t N, bool accumulate,
                                    std::mt19937_64& rng) {
    std::vector<float> x(N);
    fill_uniform(x, -2.0f, 2.0f, rng);
    DeviceBuffer<float> d_x(N), d_partials(SUM_SQUARES_BLOCKS), d_out(1);
    d_x.upload(x);
    const float start = accumulate ? 123.25f : 0.0f;
    d_out.upload(std::vector<float>{accumulate ? start : -7.0f});  // -7: must be overwritten
    global_sum_squares(d_out.ptr, d_partials.ptr, d_x.ptr, N, accumulate, nullptr);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    const float got = d_out.download()[0];
    double want = start;
    for (float v : x) want += (double)v * v;
    char name[160];
    snprintf(name, sizeof name, "global_sum_squares N=%zu accumulate=%d order=%s", N,
             (int)accumulate, order);
    test_report(close_sum(got, want, want), name, "got %.9g, want %.9g", got, want);
}

// The cut of the two-stage column sums (column_chunks, host only): on many (N, C, load width), the
// column blocks cover the C columns and the chunks the N rows, no chunk empty or under the minimum
// (unless it is the only one), the grid within CUDA's limit, the partials within
// column_partials_floats; at GPT-2's shapes (N = 8 x 1024 tokens, d12 C = 768, d48 C = 1600) stage 1
// has at least one block per SM of a 132-SM GPU. The d12/d48 grids are printed.
static void test_column_chunks() {
    const int Ns[] = {1, 2, 63, 64, 65, 100, 1000, 4095, 8192, 12345, 65536, 1 << 20};
    const int Cs[] = {1, 8, 31, 32, 33, 40, 257, 513, 768, 1600, 2304, 3072, 4800, 6400, 50304};
    int cases = 0;
    char bad[200] = "";
    for (int N : Ns) {
        for (int C : Cs) {
            for (int pack : {1, COLUMN_PACK}) {
                if (C % pack != 0 || bad[0]) continue;
                const ColumnChunks p = column_chunks(N, C, pack);
                const int width = COLUMN_SUM_WIDTH * pack;
                const char* why = nullptr;
                if (p.pack != pack) why = "pack not kept";
                else if (p.column_blocks * width < C || (p.column_blocks - 1) * width >= C) why = "column blocks do not fit C";
                else if ((long)p.chunks * p.chunk_rows < N || (long)(p.chunks - 1) * p.chunk_rows >= N) why = "chunks do not fit N";
                else if (p.chunks > 1 && p.chunk_rows < COLUMN_SUM_MIN_ROWS) why = "chunk under the minimum rows";
                else if (p.chunks > 65535) why = "gridDim.y over 65535";
                else if ((size_t)p.chunks * C > column_partials_floats(C, 1)) why = "partials exceed the scratch";
                if (why) snprintf(bad, sizeof bad, "N=%d C=%d pack=%d: %s (grid %d x %d, %d rows per chunk)", N, C,
                                  pack, why, p.column_blocks, p.chunks, p.chunk_rows);
                cases++;
            }
        }
    }
    test_report(bad[0] == 0, "column_chunks: blocks and chunks cover (N, C), partials fit the scratch", "%s", bad);
    char fill[300] = "";
    for (int C : {768, 1600}) {
        for (int width : {C, 3 * C, 4 * C}) {  // LayerNorm and the C-wide biases; QKV; FC
            for (int pack : {1, COLUMN_PACK}) {
                const ColumnChunks p = column_chunks(8 * 1024, width, pack);
                printf("column sums N=8192 C=%d: %d-column loads, grid %d x %d = %d blocks, chunks of %d rows, "
                       "scratch %zu floats\n", width, pack, p.column_blocks, p.chunks, p.column_blocks * p.chunks,
                       p.chunk_rows, column_partials_floats(width, 1));
                if (p.column_blocks * p.chunks < 132 && !fill[0])
                    snprintf(fill, sizeof fill, "C=%d pack=%d: %d blocks", width, pack, p.column_blocks * p.chunks);
            }
        }
    }
    test_report(fill[0] == 0, "column_chunks: at least 132 blocks at N=8192, C in 768, 1600 (and 3C, 4C)", "%s", fill);
    printf("column_chunks: %d cuts checked\n", cases);
}

static void benchmark(int version) {
    const size_t N = 124439808, chunk = 1 << 20;  // GPT-2 124M's parameters; 1M-float chunks
    std::mt19937_64 rng(1);
    std::vector<float> x(N);
    fill_uniform(x, -1.0f, 1.0f, rng);
    DeviceBuffer<float> d_x(N), d_sums((N + chunk - 1) / chunk), d_partials(SUM_SQUARES_BLOCKS), d_out(1);
    d_x.upload(x);
    const double sums_ms = benchmark_ms([&] { block_sums(d_sums.ptr, d_x.ptr, N, chunk, 1024, nullptr); });
    const double squares_ms = benchmark_ms([&] {
        global_sum_squares(d_out.ptr, d_partials.ptr, d_x.ptr, N, false, nullptr);
    });
    const double gb = N * sizeof(float) / 1e9;  // each reads the input once
    printf("reduce version %d, N=%zu: block_sums (1M chunks, 1024 threads) %.4f ms (%.0f GB/s), "
           "global_sum_squares %.4f ms (%.0f GB/s)\n", version, N, sums_ms, gb / (sums_ms * 1e-3),
           squares_ms, gb / (squares_ms * 1e-3));
}

int main(int argc, char** argv) {
    if (const int version = benchmark_version(argc, argv, 1)) {
        benchmark(version);
        return 0;
    }
    std::mt19937_64 rng(test_seed());
    test_column_chunks();
    for_each_thread_order([&](const char* order) {
        test_block_sums(order, 100000, 4096, 256, rng);   // last chunk partial
        test_block_sums(order, 5000, 100, 128, rng);      // chunk smaller than the block
        test_block_sums(order, 33000, 1000, 1024, rng);   // 32 warps
        test_block_sums(order, 777, 777, 32, rng);        // one warp, one chunk
        test_global_sum_squares(order, (1 << 20) + 13, false, rng);
        test_global_sum_squares(order, 1000, true, rng);  // fewer elements than threads
    });
    return test_exit();
}
