// dev/cuda/layernorm.cu: the LayerNorm kernels (kernels/layernorm.cuh), checked and benchmarked.
//   ./dev/cuda/layernorm      checks forward, the fused residual forward and the backward (into
//                             dinp, dweight, dbias, accumulating) against cpu/layernorm.h in
//                             double on fresh random inputs; its backward is itself checked
//                             against central finite differences first
//   ./dev/cuda/layernorm 1    (GPU only) times version 1, forward and backward, at GPT-2 124M's
//                             shape (B*T = 8192 rows of C = 768)
// Builds with g++ on the CPU execution layer (both thread orders, ASan, -DENABLE_FP32) and nvcc.
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/layernorm.h"
#include "dev/simt/kernel_test.h"
#include "kernels/layernorm.cuh"

// The reference (cpu/layernorm.h) in double. Forward: out (N, C), mean (N,), rstd (N,).
static void ref_forward(std::vector<double>& out, std::vector<double>& mean,
                        std::vector<double>& rstd, const std::vector<double>& x,
                        const std::vector<double>& w, const std::vector<double>& b, int N, int C,
                        float eps) {
    cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, eps);
}

// Backward; adds into dx, dw, db.
static void ref_backward(std::vector<double>& dx, std::vector<double>& dw, std::vector<double>& db,
                         const std::vector<double>& dy, const std::vector<double>& x,
                         const std::vector<double>& w, const std::vector<double>& mean,
                         const std::vector<double>& rstd, int N, int C) {
    cpu::layernorm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), mean.data(),
                            rstd.data(), N, C);
}

template <typename T> static std::vector<double> to_double(const std::vector<T>& v) {
    std::vector<double> d(v.size());
    for (size_t i = 0; i < v.size(); i++) d[i] = (double)(float)v[i];
    return d;
}

// Fresh uniform values, rounded to floatX (the kernels' inputs; the reference sees the same).
static std::vector<floatX> random_floatX(size_t n, float lo, float hi, std::mt19937_64& rng) {
    std::vector<float> f(n);
    fill_uniform(f, lo, hi, rng);
    std::vector<floatX> x(n);
    for (size_t i = 0; i < n; i++) x[i] = (floatX)f[i];
    return x;
}

// The reference backward against central differences of L = sum(out * dy), in double.
static void test_reference_gradient(std::mt19937_64& rng) {
    const int N = 3, C = 7;
    std::vector<float> xf(N * C), wf(C), bf(C), dyf(N * C);
    fill_uniform(xf, -2, 2, rng); fill_uniform(wf, 0.5, 1.5, rng);
    fill_uniform(bf, -1, 1, rng); fill_uniform(dyf, -1, 1, rng);
    std::vector<double> x = to_double(xf), w = to_double(wf), b = to_double(bf), dy = to_double(dyf);
    std::vector<double> out(N * C), mean(N), rstd(N), dx(N * C, 0.0), dw(C, 0.0), db(C, 0.0);
    auto loss = [&]() {
        ref_forward(out, mean, rstd, x, w, b, N, C, 1e-5f);
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

static void report(const char* what, int N, int C, float eps, const char* order, double err, double tol) {
    char name[200];
    snprintf(name, sizeof name, "layernorm %s N=%d C=%d eps=%g order=%s", what, N, C, eps, order);
    test_report(err <= tol, name, "max relative error %.3g > %.3g", err, tol);
}

// Tolerances. fp32 build: fp32 arithmetic over rows of C values, a few 1e-7 per operation.
// bf16 build: the same fp32 arithmetic, then each floatX output (out, residual, dinp) is rounded
// once to bf16: half an ulp of 8 significand bits, at most 2^-8 relative (just above a power of
// two); allowed 2^-7. The statistics and the fp32 parameter gradients see only exact bf16 -> fp32
// conversions: fp32 tolerances.
static const bool FP32_BUILD = std::is_same<floatX, float>::value;
static const double TOL_OUT = FP32_BUILD ? 1e-5 : std::ldexp(1.0, -7);
static const double TOL_DINP = FP32_BUILD ? 2e-5 : std::ldexp(1.0, -7);

static void test_layernorm(const char* order, int N, int C, float eps, std::mt19937_64& rng) {
    // a + b is the residual stream; row offsets so that the mean matters
    std::vector<floatX> a = random_floatX((size_t)N * C, -2, 2, rng);
    std::vector<floatX> b = random_floatX((size_t)N * C, -1, 1, rng);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) a[(size_t)n * C + c] = (floatX)((float)a[(size_t)n * C + c] + (float)(n % 5) * 3.0f - 6.0f);
    const std::vector<floatX> w = random_floatX(C, 0.5, 1.5, rng), bias = random_floatX(C, -1, 1, rng);
    const std::vector<floatX> dy = random_floatX((size_t)N * C, -1, 1, rng);
    // the gradients accumulate into whatever is there
    const std::vector<floatX> dx0 = random_floatX((size_t)N * C, -1, 1, rng);
    std::vector<float> dw0(C), db0(C);
    fill_uniform(dw0, -1, 1, rng); fill_uniform(db0, -1, 1, rng);
    // the residual as the kernel must store it: a + b in fp32, rounded once to floatX
    std::vector<floatX> x((size_t)N * C);
    for (size_t i = 0; i < x.size(); i++) x[i] = (floatX)((float)a[i] + (float)b[i]);

    DeviceBuffer<floatX> d_a(a.size()), d_b(b.size()), d_x(x.size()), d_w(C), d_bias(C);
    DeviceBuffer<floatX> d_out(x.size()), d_res(x.size()), d_out2(x.size()), d_dy(x.size()), d_dx(x.size());
    DeviceBuffer<float> d_mean(N), d_rstd(N), d_mean2(N), d_rstd2(N), d_dw(C), d_db(C);
    DeviceBuffer<float> d_scratch(layernorm_backward_scratch_floats(C));
    d_a.upload(a); d_b.upload(b); d_x.upload(x); d_w.upload(w); d_bias.upload(bias); d_dy.upload(dy);
    d_dx.upload(dx0); d_dw.upload(dw0); d_db.upload(db0);
    // the scratch starts as NaN: a partial read but never written would show in dweight or dbias
    d_scratch.upload(std::vector<float>(d_scratch.n, NAN));
    layernorm_forward(d_out.ptr, d_mean.ptr, d_rstd.ptr, d_x.ptr, d_w.ptr, d_bias.ptr, N, C, eps, nullptr);
    fused_residual_layernorm_forward(d_res.ptr, d_out2.ptr, d_mean2.ptr, d_rstd2.ptr, d_a.ptr, d_b.ptr,
                                     d_w.ptr, d_bias.ptr, N, C, eps, nullptr);
    layernorm_backward(d_dx.ptr, d_dw.ptr, d_db.ptr, d_scratch.ptr, d_dy.ptr, d_x.ptr, d_w.ptr, d_mean.ptr,
                       d_rstd.ptr, N, C, nullptr);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> got_dw = d_dw.download(), got_db = d_db.download();
    // again from the same starting gradients: the parameter sums must be bit-identical
    d_dx.upload(dx0); d_dw.upload(dw0); d_db.upload(db0);
    layernorm_backward(d_dx.ptr, d_dw.ptr, d_db.ptr, d_scratch.ptr, d_dy.ptr, d_x.ptr, d_w.ptr, d_mean.ptr,
                       d_rstd.ptr, N, C, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    report("backward dweight, dbias twice: bit-identical", N, C, eps, order,
           got_dw == d_dw.download() && got_db == d_db.download() ? 0.0 : 1.0, 0.0);

    std::vector<double> out(x.size()), mean(N), rstd(N);
    std::vector<double> dx = to_double(dx0), dw = to_double(dw0), db = to_double(db0);
    ref_forward(out, mean, rstd, to_double(x), to_double(w), to_double(bias), N, C, eps);
    ref_backward(dx, dw, db, to_double(dy), to_double(x), to_double(w), mean, rstd, N, C);
    std::vector<double> sum_ab(x.size());
    for (size_t i = 0; i < x.size(); i++) sum_ab[i] = (double)(float)a[i] + (double)(float)b[i];

    auto err = [](const DeviceBuffer<floatX>& got, const std::vector<double>& want, double floor) {
        const std::vector<double> g = to_double(got.download());
        std::vector<float> gf(g.begin(), g.end());
        return max_rel_error(gf.data(), want.data(), want.size(), floor);
    };
    report("forward out", N, C, eps, order, err(d_out, out, 1.0), TOL_OUT);
    report("forward mean", N, C, eps, order, max_rel_error(d_mean.download().data(), mean.data(), N, 1.0), 1e-6);
    report("forward rstd", N, C, eps, order, max_rel_error(d_rstd.download().data(), rstd.data(), N, 1e-3), 1e-5);
    report("fused residual = a + b", N, C, eps, order, err(d_res, sum_ab, 1e-6), FP32_BUILD ? 1.2e-7 : TOL_OUT);
    report("fused out", N, C, eps, order, err(d_out2, out, 1.0), TOL_OUT);
    report("fused mean", N, C, eps, order, max_rel_error(d_mean2.download().data(), mean.data(), N, 1.0), 1e-6);
    report("fused rstd", N, C, eps, order, max_rel_error(d_rstd2.download().data(), rstd.data(), N, 1e-3), 1e-5);
    report("backward dinp", N, C, eps, order, err(d_dx, dx, 1.0), TOL_DINP);
    report("backward dweight", N, C, eps, order, max_rel_error(got_dw.data(), dw.data(), C, 1.0), 2e-5 * std::sqrt((double)N));
    report("backward dbias", N, C, eps, order, max_rel_error(got_db.data(), db.data(), C, 1.0), 2e-5 * std::sqrt((double)N));
}

// The parameter gradients over many rows: kernels/reduce.cuh's column sums cut the rows into chunks
// (column_chunks); shapes with several chunks, the last one short, through both load widths. The
// cut printed is the launcher's own.
static void test_layernorm_param_chunks(const char* order, std::mt19937_64& rng) {
    struct Shape { int N, C; };
    // C = 768: 16-byte loads (bf16 and fp32), 64-row chunks; C = 513: one column per load, 66-row
    // chunks (more than the minimum)
    const Shape shapes[] = {{1000, 768}, {2100, 513}};
    for (const Shape& s : shapes) {
        const ColumnChunks p = column_chunks(s.N, s.C, column_pack(s.C, nullptr, nullptr));
        if (strcmp(order, "forward") == 0 || strcmp(order, "gpu") == 0)
            printf("layernorm params N=%d C=%d: %d-column loads, grid %d x %d, chunks of %d rows (the last %d)\n",
                   s.N, s.C, p.pack, p.column_blocks, p.chunks, p.chunk_rows, s.N - (p.chunks - 1) * p.chunk_rows);
        test_layernorm(order, s.N, s.C, 1e-5f, rng);
    }
}

// Version 1 at GPT-2 124M's shape: forward, fused forward, backward, each timed alone.
static void benchmark(int version) {
    const int N = 8 * 1024, C = 768;
    std::mt19937_64 rng(1);
    const std::vector<floatX> x = random_floatX((size_t)N * C, -2, 2, rng);
    const std::vector<floatX> w = random_floatX(C, 0.5, 1.5, rng), b = random_floatX(C, -1, 1, rng);
    DeviceBuffer<floatX> d_x(x.size()), d_x2(x.size()), d_w(C), d_b(C), d_out(x.size()), d_res(x.size());
    DeviceBuffer<floatX> d_dy(x.size()), d_dx(x.size());
    DeviceBuffer<float> d_mean(N), d_rstd(N), d_dw(C), d_db(C), d_scratch(layernorm_backward_scratch_floats(C));
    d_x.upload(x); d_x2.upload(x); d_w.upload(w); d_b.upload(b); d_dy.upload(x); d_dx.upload(x);
    CUDA_CHECK(cudaMemset(d_dw.ptr, 0, C * sizeof(float)));
    CUDA_CHECK(cudaMemset(d_db.ptr, 0, C * sizeof(float)));
    const double fwd_ms = benchmark_ms([&] {
        layernorm_forward(d_out.ptr, d_mean.ptr, d_rstd.ptr, d_x.ptr, d_w.ptr, d_b.ptr, N, C, 1e-5f, nullptr);
    });
    const double fused_ms = benchmark_ms([&] {
        fused_residual_layernorm_forward(d_res.ptr, d_out.ptr, d_mean.ptr, d_rstd.ptr, d_x.ptr, d_x2.ptr,
                                         d_w.ptr, d_b.ptr, N, C, 1e-5f, nullptr);
    });
    const double bwd_ms = benchmark_ms([&] {
        layernorm_backward(d_dx.ptr, d_dw.ptr, d_db.ptr, d_scratch.ptr, d_dy.ptr, d_x.ptr, d_w.ptr, d_mean.ptr,
                           d_rstd.ptr, N, C, nullptr);
    });
    // the least traffic each pass needs, in N*C floatX: forward reads x, writes out (2); fused
    // reads a, b, writes residual, out (4); backward reads dout, x, reads and writes dinp, and the
    // parameter pass reads dout and x again (6)
    const double unit = (double)N * C * sizeof(floatX) / 1e9;
    printf("layernorm version %d (%s), N=%d C=%d: forward %.4f ms (%.0f GB/s), fused residual "
           "forward %.4f ms (%.0f GB/s), backward %.4f ms (%.0f GB/s)\n",
           version, PRECISION_NAME, N, C, fwd_ms, 2 * unit / (fwd_ms * 1e-3), fused_ms,
           4 * unit / (fused_ms * 1e-3), bwd_ms, 6 * unit / (bwd_ms * 1e-3));
}

int main(int argc, char** argv) {
    if (const int version = benchmark_version(argc, argv, 1)) {
        benchmark(version);
        return 0;
    }
    std::mt19937_64 rng(test_seed());
    printf("precision %s\n", PRECISION_NAME);
    test_reference_gradient(rng);
    for_each_thread_order([&](const char* order) {
        test_layernorm(order, 37, 768, 1e-5f, rng);  // N not a multiple of the 8 rows per block
        test_layernorm(order, 8, 50, 1e-5f, rng);    // C not a multiple of 32
        test_layernorm(order, 300, 97, 1e-5f, rng);
        test_layernorm(order, 1, 1, 1e-5f, rng);     // normalised value 0: out = bias
        test_layernorm(order, 16, 64, 0.5f, rng);    // an eps that moves rstd by ~20%: it is used
        test_layernorm_param_chunks(order, rng);
    });
    return test_exit();
}
