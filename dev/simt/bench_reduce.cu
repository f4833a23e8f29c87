// dev/simt/bench_reduce.cu: speed of the CPU execution layer on one core: reducing 1M floats
// with 256-thread blocks (kernels/reduce.cuh), as one block per 256 elements (1M fiber runs,
// the worst case), one block per 4096 elements, and the grid-stride sum of squares.
// Prints the median of 5 runs in CPU time of the calling thread (so other load on the machine
// does not count). Build: make dev/simt/bench_reduce; run: ./dev/simt/bench_reduce
#include <time.h>

#include <algorithm>
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/reduce.cuh"

static double cpu_ms() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

template <class F> static double median_ms(F run) {
    std::vector<double> ms;
    for (int rep = 0; rep < 5; rep++) {
        const double t0 = cpu_ms();
        run();
        CUDA_CHECK(cudaDeviceSynchronize());
        ms.push_back(cpu_ms() - t0);
    }
    std::sort(ms.begin(), ms.end());
    return ms[2];
}

int main() {
    const size_t N = 1 << 20;
    std::mt19937_64 rng(1);
    std::vector<float> x(N);
    fill_uniform(x, -1.0f, 1.0f, rng);
    DeviceBuffer<float> d_x(N), d_out(N / 256), d_partials(SUM_SQUARES_BLOCKS);
    d_x.upload(x);
    double ms = median_ms([&] { block_sums(d_out.ptr, d_x.ptr, N, 256, 256, nullptr); });
    printf("block_sums 1M floats, chunk 256 (4096 blocks x 256 threads): %7.1f ms (%.0f ns per thread)\n",
           ms, ms * 1e6 / N);
    ms = median_ms([&] { block_sums(d_out.ptr, d_x.ptr, N, 4096, 256, nullptr); });
    printf("block_sums 1M floats, chunk 4096 (256 blocks x 256 threads):  %7.1f ms\n", ms);
    ms = median_ms([&] { global_sum_squares(d_out.ptr, d_partials.ptr, d_x.ptr, N, false, nullptr); });
    printf("global_sum_squares 1M floats (%d blocks x 512 threads + 1 block): %7.1f ms\n",
           SUM_SQUARES_BLOCKS, ms);
    return 0;
}
