// dev/cuda/layernorm.cu: the LayerNorm kernels (kernels/layernorm.cuh), checked and benchmarked.
//   ./dev/cuda/layernorm        checks forward; backward into dinp, dweight, dbias (accumulating)
//                               against plain double-precision loops on fresh random inputs; the
//                               loops' backward is itself checked against central differences first
//   ./dev/cuda/layernorm 1      (GPU only) times kernel version 1, forward and backward, at
//                               GPT-2 124M's shape (N = B*T = 8*1024, C = 768): ms and GB/s
// Version 1: one warp per row (forward, backward to dinp), a column-per-thread reduction for the
// parameter gradients. Builds with g++ on the CPU execution layer (every thread order, and under
// ASan) and with nvcc.
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/layernorm.cuh"

// Reference forward in double: out (N, C), mean (N,), rstd (N,).
static void ref_forward(std::vector<double>& out, std::vector<double>& mean,
                        std::vector<double>& rstd, const std::vector<double>& x,
                        const std::vector<double>& w, const std::vector<double>& b, int N, int C,
                        double eps) {
    for (int n = 0; n < N; n++) {
        const double* row = &x[(size_t)n * C];
        double m = 0.0, var = 0.0;
        for (int c = 0; c < C; c++) m += row[c];
        m /= C;
        for (int c = 0; c < C; c++) var += (row[c] - m) * (row[c] - m);
        const double s = 1.0 / std::sqrt(var / C + eps);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (row[c] - m) * s * w[c] + b[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

// Reference backward in double; adds into dx, dw, db.
static void ref_backward(std::vector<double>& dx, std::vector<double>& dw, std::vector<double>& db,
                         const std::vector<double>& dy, const std::vector<double>& x,
                         const std::vector<double>& w, const std::vector<double>& mean,
                         const std::vector<double>& rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        double dnorm_mean = 0.0, dnorm_norm_mean = 0.0;
        for (int c = 0; c < C; c++) {
            const size_t i = (size_t)n * C + c;
            const double norm = (x[i] - mean[n]) * rstd[n];
            dnorm_mean += dy[i] * w[c] / C;
            dnorm_norm_mean += dy[i] * w[c] * norm / C;
            dw[c] += dy[i] * norm;
            db[c] += dy[i];
        }
        for (int c = 0; c < C; c++) {
            const size_t i = (size_t)n * C + c;
            const double norm = (x[i] - mean[n]) * rstd[n];
            dx[i] += (dy[i] * w[c] - dnorm_mean - norm * dnorm_norm_mean) * rstd[n];
        }
    }
}

static std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// The reference backward against central differences of L = sum(out * dy), in double.
static void test_reference_gradient(std::mt19937_64& rng) {
    const int N = 3, C = 7;
    std::vector<float> xf(N * C), wf(C), bf(C), dyf(N * C);
    fill_uniform(xf, -2, 2, rng); fill_uniform(wf, 0.5, 1.5, rng);
    fill_uniform(bf, -1, 1, rng); fill_uniform(dyf, -1, 1, rng);
    std::vector<double> x = to_double(xf), w = to_double(wf), b = to_double(bf), dy = to_double(dyf);
    std::vector<double> out(N * C), mean(N), rstd(N), dx(N * C, 0.0), dw(C, 0.0), db(C, 0.0);
    auto loss = [&]() {
        ref_forward(out, mean, rstd, x, w, b, N, C, 1e-5);
        double L = 0.0;
        for (int i = 0; i < N * C; i++) L += out[i] * dy[i];
        return L;
    };
    loss();
    ref_backward(dx, dw, db, dy, x, w, mean, rstd, N, C);
    double worst = 0.0;
    auto check = [&](std::vector<double>& param, const std::vector<double>& grad) {
        for (size_t i = 0; i < param.size(); i++) {
            const double keep = param[i], h = 1e-6;
            param[i] = keep + h; const double up = loss();
            param[i] = keep - h; const double down = loss();
            param[i] = keep;
            worst = std::max(worst, std::fabs((up - down) / (2 * h) - grad[i]));
        }
    };
    check(x, dx); check(w, dw); check(b, db);
    test_report(worst < 1e-6, "layernorm reference backward vs finite differences",
                "max abs difference %.3g", worst);
}

static void report(const char* what, int N, int C, float eps, const char* order, double err,
                   double tol) {
    char name[160];
    snprintf(name, sizeof name, "layernorm %s N=%d C=%d eps=%g order=%s", what, N, C, eps, order);
    test_report(err <= tol, name, "max relative error %.3g > %.3g", err, tol);
}

static void test_layernorm(const char* order, int N, int C, float eps, std::mt19937_64& rng) {
    std::vector<float> x((size_t)N * C), w(C), b(C), dy((size_t)N * C);
    fill_uniform(x, -2, 2, rng);
    for (int n = 0; n < N; n++)  // row offsets: the mean matters
        for (int c = 0; c < C; c++) x[(size_t)n * C + c] += (float)(n % 5) * 3.0f - 6.0f;
    fill_uniform(w, 0.5, 1.5, rng); fill_uniform(b, -1, 1, rng); fill_uniform(dy, -1, 1, rng);
    // the gradients accumulate into whatever is there
    std::vector<float> dx0((size_t)N * C), dw0(C), db0(C);
    fill_uniform(dx0, -1, 1, rng); fill_uniform(dw0, -1, 1, rng); fill_uniform(db0, -1, 1, rng);

    DeviceBuffer<float> d_x(x.size()), d_w(C), d_b(C), d_out(x.size()), d_mean(N), d_rstd(N);
    DeviceBuffer<float> d_dy(x.size()), d_dx(x.size()), d_dw(C), d_db(C);
    d_x.upload(x); d_w.upload(w); d_b.upload(b); d_dy.upload(dy);
    d_dx.upload(dx0); d_dw.upload(dw0); d_db.upload(db0);
    layernorm_forward(d_out.ptr, d_mean.ptr, d_rstd.ptr, d_x.ptr, d_w.ptr, d_b.ptr, N, C, eps, nullptr);
    layernorm_backward(d_dx.ptr, d_dw.ptr, d_db.ptr, d_dy.ptr, d_x.ptr, d_w.ptr, d_mean.ptr,
                       d_rstd.ptr, N, C, nullptr);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());

    std::vector<double> out(x.size()), mean(N), rstd(N);
    std::vector<double> dx = to_double(dx0), dw = to_double(dw0), db = to_double(db0);
    ref_forward(out, mean, rstd, to_double(x), to_double(w), to_double(b), N, C, eps);
    ref_backward(dx, dw, db, to_double(dy), to_double(x), to_double(w), mean, rstd, N, C);

    // fp32 over rows of C values: a few 1e-7 per operation; sums over N rows for the params
    report("forward out", N, C, eps, order, max_rel_error(d_out.download().data(), out.data(), out.size(), 1.0), 1e-5);
    report("forward mean", N, C, eps, order, max_rel_error(d_mean.download().data(), mean.data(), N, 1.0), 1e-6);
    report("forward rstd", N, C, eps, order, max_rel_error(d_rstd.download().data(), rstd.data(), N, 1e-3), 1e-5);
    report("backward dinp", N, C, eps, order, max_rel_error(d_dx.download().data(), dx.data(), dx.size(), 1.0), 2e-5);
    report("backward dweight", N, C, eps, order, max_rel_error(d_dw.download().data(), dw.data(), C, 1.0), 2e-5 * std::sqrt((double)N));
    report("backward dbias", N, C, eps, order, max_rel_error(d_db.download().data(), db.data(), C, 1.0), 2e-5 * std::sqrt((double)N));
}

// Version 1 at GPT-2 124M's shape: forward, then backward (both launchers), each timed alone.
static void benchmark(int version) {
    const int N = 8 * 1024, C = 768;
    std::mt19937_64 rng(1);
    std::vector<float> x((size_t)N * C), w(C), b(C);
    fill_uniform(x, -2, 2, rng); fill_uniform(w, 0.5, 1.5, rng); fill_uniform(b, -1, 1, rng);
    DeviceBuffer<float> d_x(x.size()), d_w(C), d_b(C), d_out(x.size()), d_mean(N), d_rstd(N);
    DeviceBuffer<float> d_dy(x.size()), d_dx(x.size()), d_dw(C), d_db(C);
    d_x.upload(x); d_w.upload(w); d_b.upload(b); d_dy.upload(x);
    d_dx.upload(x); d_dw.upload(w); d_db.upload(b);
    const double fwd_ms = benchmark_ms([&] {
        layernorm_forward(d_out.ptr, d_mean.ptr, d_rstd.ptr, d_x.ptr, d_w.ptr, d_b.ptr, N, C, 1e-5f, nullptr);
    });
    const double bwd_ms = benchmark_ms([&] {
        layernorm_backward(d_dx.ptr, d_dw.ptr, d_db.ptr, d_dy.ptr, d_x.ptr, d_w.ptr, d_mean.ptr,
                           d_rstd.ptr, N, C, nullptr);
    });
    // the least traffic each pass needs, in floats: forward reads x and writes out (N*C each);
    // backward reads dout and x, reads and writes dinp (4*N*C); parameters and statistics are small
    const double fwd_gb = 2.0 * N * C * sizeof(float) / 1e9, bwd_gb = 4.0 * N * C * sizeof(float) / 1e9;
    printf("layernorm version %d, N=%d C=%d: forward %.4f ms (%.0f GB/s), backward %.4f ms (%.0f GB/s)\n",
           version, N, C, fwd_ms, fwd_gb / (fwd_ms * 1e-3), bwd_ms, bwd_gb / (bwd_ms * 1e-3));
}

int main(int argc, char** argv) {
    if (const int version = benchmark_version(argc, argv, 1)) {
        benchmark(version);
        return 0;
    }
    std::mt19937_64 rng(test_seed());
    test_reference_gradient(rng);
    for_each_thread_order([&](const char* order) {
        test_layernorm(order, 37, 768, 1e-5f, rng);  // N not a multiple of the 8 rows per block
        test_layernorm(order, 8, 50, 1e-5f, rng);    // C not a multiple of 32
        test_layernorm(order, 300, 97, 1e-5f, rng);
        test_layernorm(order, 1, 1, 1e-5f, rng);     // normalised value 0: out = bias
        test_layernorm(order, 16, 64, 0.5f, rng);    // an eps that moves rstd by ~20%: it is used
    });
    return test_exit();
}
