// dev/cuda/matmul.cu: tests kernels/matmul.cuh (cuBLASLt matmuls with bias and GELU epilogues, the
// fp32 dweight accumulation, the dbias kernel) against the CPU reference matmul in double, on fresh
// random inputs with shapes that are multiples of nothing. With an argument on a GPU it benchmarks:
// `./dev/cuda/matmul 1` times forward and backward at GPT-2 124M shapes and prints TFLOP/s.
// make test builds it twice: floatX = bf16 (dev/cuda/matmul) and floatX = fp32 (-DENABLE_FP32,
// dev/cuda/matmul_fp32); with g++ the products run in dev/simt/cublaslt_cpu.h, with nvcc in cuBLASLt.
#include <algorithm>
#include <cstring>
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/matmul.cuh"
#include "kernels/gelu_math.h"
#include "cpu/matmul.h"   // the CPU reference: cpu::matmul_forward / cpu::matmul_backward<double>

// Tolerances, as max |got - want| / (|want| + floor) per array.
// fp32 build: fp32 accumulation over k <= 300 terms of size <= 1: a few 1e-7 (any summation order).
// bf16 build: the inputs are bf16 and the reference uses those same values, so the only large
// error is rounding the output to bf16 (8 significand bits: at most 2^-8 = 3.9e-3 relative), plus
// fp32 accumulation; GELU output may be rounded twice (if the GPU rounds the pre-activation first)
// and gelu' <= 1.13, hence twice that. dweight and dbias are fp32 sums of exact bf16 products in
// both builds: fp32-tight. The floor keeps near-zero outputs (cancellation) from dividing by ~0.
#if defined(ENABLE_FP32)
static const double TOL_OUT = 1e-5, TOL_GELU = 1e-5, FLOOR_OUT = 1.0;
#else
static const double TOL_OUT = 5e-3, TOL_GELU = 1e-2, FLOOR_OUT = 1e-2;
#endif
static const double TOL_GRAD = 1e-5, FLOOR_GRAD = 1.0;

// Random floatX values and the same values in double.
struct Values {
    std::vector<floatX> x;
    std::vector<double> d;
    Values(size_t n, float lo, float hi, std::mt19937_64& rng) : x(n), d(n) {
        std::vector<float> f(n);
        fill_uniform(f, lo, hi, rng);
        for (size_t i = 0; i < n; i++) {
            x[i] = (floatX)f[i];
            d[i] = (double)(float)x[i];
        }
    }
};
static std::vector<float> as_float(const std::vector<floatX>& v) {
    std::vector<float> f(v.size());
    for (size_t i = 0; i < v.size(); i++) f[i] = (float)v[i];
    return f;
}

static void report(const char* what, int N, int IC, int OC, const char* order, double err, double tol) {
    char name[200];
    snprintf(name, sizeof name, "matmul %s %s N=%d IC=%d OC=%d order=%s", PRECISION_NAME, what, N,
             IC, OC, order);
    test_report(err <= tol, name, "max relative error %.3g > %.3g", err, tol);
}

// Forward with and without bias, with the GELU epilogue (bias or not). inp_offset rows of padding
// before inp make its pointer only as aligned as a row (IC * sizeof(floatX) bytes).
static void test_forward(const char* order, int N, int IC, int OC, bool with_bias, bool with_gelu,
                         int inp_offset, std::mt19937_64& rng) {
    Values inp((size_t)(N + inp_offset) * IC, -1, 1, rng), w((size_t)OC * IC, -1, 1, rng), b(OC, -1, 1, rng);
    DeviceBuffer<floatX> d_inp(inp.x.size()), d_w(w.x.size()), d_b(OC), d_out((size_t)N * OC), d_pre((size_t)N * OC);
    d_inp.upload(inp.x); d_w.upload(w.x); d_b.upload(b.x);
    matmul_forward(d_out.ptr, d_inp.ptr + (size_t)inp_offset * IC, d_w.ptr, with_bias ? d_b.ptr : nullptr,
                   N, IC, OC, nullptr, with_gelu ? d_pre.ptr : nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());

    std::vector<double> pre((size_t)N * OC), out((size_t)N * OC);
    cpu::matmul_forward(pre.data(), inp.d.data() + (size_t)inp_offset * IC, w.d.data(),
                   with_bias ? b.d.data() : (const double*)nullptr, N, IC, OC);
    for (size_t i = 0; i < pre.size(); i++) out[i] = with_gelu ? gelu_forward_scalar(pre[i]) : pre[i];

    char what[100];
    snprintf(what, sizeof what, "forward%s%s%s", with_bias ? " bias" : "", with_gelu ? " gelu" : "",
             inp_offset ? " inp-offset" : "");
    const double tol = with_gelu ? TOL_GELU : TOL_OUT;
    report(what, N, IC, OC, order, max_rel_error(as_float(d_out.download()).data(), out.data(), out.size(), FLOOR_OUT), tol);
    if (with_gelu) {
        snprintf(what, sizeof what, "forward%s gelu pre_gelu", with_bias ? " bias" : "");
        report(what, N, IC, OC, order, max_rel_error(as_float(d_pre.download()).data(), pre.data(), pre.size(), FLOOR_OUT), TOL_OUT);
    }
}

// The cached plan for a shape must take each call's bias: two biases, same shape, both checked.
static void test_forward_two_biases(const char* order, std::mt19937_64& rng) {
    const int N = 9, IC = 13, OC = 24;
    Values inp((size_t)N * IC, -1, 1, rng), w((size_t)OC * IC, -1, 1, rng);
    Values b1(OC, -1, 1, rng), b2(OC, 2, 3, rng);
    DeviceBuffer<floatX> d_inp(inp.x.size()), d_w(w.x.size()), d_b1(OC), d_b2(OC), d_out1((size_t)N * OC),
        d_out2((size_t)N * OC), d_pre1((size_t)N * OC), d_pre2((size_t)N * OC);
    d_inp.upload(inp.x); d_w.upload(w.x); d_b1.upload(b1.x); d_b2.upload(b2.x);
    matmul_forward(d_out1.ptr, d_inp.ptr, d_w.ptr, d_b1.ptr, N, IC, OC, nullptr, d_pre1.ptr);
    matmul_forward(d_out2.ptr, d_inp.ptr, d_w.ptr, d_b2.ptr, N, IC, OC, nullptr, d_pre2.ptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> pre1((size_t)N * OC), pre2((size_t)N * OC);
    cpu::matmul_forward(pre1.data(), inp.d.data(), w.d.data(), b1.d.data(), N, IC, OC);
    cpu::matmul_forward(pre2.data(), inp.d.data(), w.d.data(), b2.d.data(), N, IC, OC);
    const double e1 = max_rel_error(as_float(d_pre1.download()).data(), pre1.data(), pre1.size(), FLOOR_OUT);
    const double e2 = max_rel_error(as_float(d_pre2.download()).data(), pre2.data(), pre2.size(), FLOOR_OUT);
    report("cached plan, second bias and aux pointers", N, IC, OC, order, std::max(e1, e2), TOL_OUT);
}

// Backward into non-zero dweight and dbias; dinp and dbias optional. Run twice from the same
// starting gradients: the results must be bit-identical (no order-dependent atomics).
static void test_backward(const char* order, int N, int IC, int OC, bool with_dinp, bool with_dbias,
                          std::mt19937_64& rng) {
    Values dout((size_t)N * OC, -1, 1, rng), inp((size_t)N * IC, -1, 1, rng), w((size_t)OC * IC, -1, 1, rng);
    std::vector<float> dw0((size_t)OC * IC), db0(OC);
    fill_uniform(dw0, -1, 1, rng);
    fill_uniform(db0, -1, 1, rng);
    DeviceBuffer<floatX> d_dout(dout.x.size()), d_inp(inp.x.size()), d_w(w.x.size()), d_dinp((size_t)N * IC);
    // the dbias scratch starts as NaN: a partial read but never written would show in dbias
    DeviceBuffer<float> d_dw(dw0.size()), d_db(OC), d_scratch(matmul_dbias_scratch_floats(OC));
    d_dout.upload(dout.x); d_inp.upload(inp.x); d_w.upload(w.x);
    d_scratch.upload(std::vector<float>(d_scratch.n, NAN));
    std::vector<float> got_dw[2], got_db[2];
    for (int run = 0; run < 2; run++) {
        d_dw.upload(dw0); d_db.upload(db0);
        matmul_backward(with_dinp ? d_dinp.ptr : nullptr, d_dw.ptr, with_dbias ? d_db.ptr : nullptr,
                        d_scratch.ptr, d_dout.ptr, d_inp.ptr, d_w.ptr, N, IC, OC, nullptr);
        CUDA_CHECK(cudaDeviceSynchronize());
        got_dw[run] = d_dw.download();
        got_db[run] = d_db.download();
    }

    std::vector<double> dinp((size_t)N * IC), dw(dw0.begin(), dw0.end()), db(db0.begin(), db0.end());
    auto what = [&](const char* check) {
        static char text[120];
        snprintf(text, sizeof text, "backward%s%s %s", with_dinp ? "" : " (no dinp)",
                 with_dbias ? "" : " (no dbias)", check);
        return text;
    };
    cpu::matmul_backward(dinp.data(), dw.data(), db.data(), dout.d.data(), inp.d.data(), w.d.data(), N, IC, OC);
    if (with_dinp)
        report(what("dinp"), N, IC, OC, order, max_rel_error(as_float(d_dinp.download()).data(), dinp.data(), dinp.size(), FLOOR_OUT), TOL_OUT);
    // dweight's k = N terms are summed one after another (the fp32 build's cuBLASLt stand-in): the
    // rounding error grows with k, so past the k <= 300 of TOL_GRAD the bound grows in proportion.
    // dbias (our two-stage column sum, short runs of rows) keeps TOL_GRAD at every N.
    const double tol_dweight = TOL_GRAD * std::max(1.0, N / 300.0);
    report(what("dweight, accumulated"), N, IC, OC, order, max_rel_error(got_dw[0].data(), dw.data(), dw.size(), FLOOR_GRAD), tol_dweight);
    if (with_dbias) {
        report(what("dbias, accumulated"), N, IC, OC, order, max_rel_error(got_db[0].data(), db.data(), db.size(), FLOOR_GRAD), TOL_GRAD);
    } else {
        // no dbias asked for: the buffer is untouched
        report(what("leaves dbias alone"), N, IC, OC, order,
               memcmp(got_db[0].data(), db0.data(), OC * sizeof(float)) == 0 ? 0.0 : 1.0, 0.0);
    }
    const bool same = got_dw[0] == got_dw[1] && got_db[0] == got_db[1];
    report(what("twice: bit-identical"), N, IC, OC, order, same ? 0.0 : 1.0, 0.0);
}

// dbias over many rows: kernels/reduce.cuh's column sums cut the rows into chunks (column_chunks);
// shapes with several chunks, the last one short, through both load widths. The chunk size and
// count printed are the launcher's own.
static void test_dbias_chunks(const char* order, std::mt19937_64& rng) {
    struct Shape { int N, IC, OC; };
    // OC = 768: 16-byte loads (bf16 and fp32), 64-row chunks; OC = 513: one column per load, 66-row
    // chunks (more than the minimum); N = 64: one chunk
    const Shape shapes[] = {{1000, 3, 768}, {2100, 2, 513}, {64, 5, 40}};
    for (const Shape& s : shapes) {
        const ColumnChunks p = column_chunks(s.N, s.OC, column_pack(s.OC, nullptr));
        if (strcmp(order, "forward") == 0 || strcmp(order, "gpu") == 0)
            printf("dbias N=%d OC=%d: %d-column loads, grid %d x %d, chunks of %d rows (the last %d)\n", s.N,
                   s.OC, p.pack, p.column_blocks, p.chunks, p.chunk_rows, s.N - (p.chunks - 1) * p.chunk_rows);
        test_backward(order, s.N, s.IC, s.OC, false, true, rng);
    }
}

// ----------------------------------------------------------------------------------------------
// Benchmark (GPU only): forward and backward at GPT-2 124M shapes, N = B*T = 8192 tokens.
static void benchmark(int version) {
    struct Shape { const char* name; int IC, OC; bool gelu, bias; };
    const Shape shapes[] = {{"qkv", 768, 2304, false, true}, {"attn proj", 768, 768, false, true},
                            {"fc + gelu", 768, 3072, true, true}, {"fc proj", 3072, 768, false, true},
                            {"lm head", 768, 50304, false, false}};
    const int N = 8192;
    std::mt19937_64 rng(1);
    printf("matmul version %d, %s, N = %d\n", version, PRECISION_NAME, N);
    for (const Shape& s : shapes) {
        Values inp((size_t)N * s.IC, -1, 1, rng), w((size_t)s.OC * s.IC, -1, 1, rng), b(s.OC, -1, 1, rng);
        Values dout((size_t)N * s.OC, -1, 1, rng);
        DeviceBuffer<floatX> d_inp(inp.x.size()), d_w(w.x.size()), d_b(s.OC), d_out((size_t)N * s.OC),
            d_pre((size_t)N * s.OC), d_dout(dout.x.size()), d_dinp(inp.x.size());
        DeviceBuffer<float> d_dw(w.x.size()), d_db(s.OC), d_scratch(matmul_dbias_scratch_floats(s.OC));
        d_inp.upload(inp.x); d_w.upload(w.x); d_b.upload(b.x); d_dout.upload(dout.x);
        CUDA_CHECK(cudaMemset(d_dw.ptr, 0, d_dw.n * sizeof(float)));
        CUDA_CHECK(cudaMemset(d_db.ptr, 0, d_db.n * sizeof(float)));
        const double flops = 2.0 * N * s.IC * s.OC;
        const double fwd = benchmark_ms([&] {
            matmul_forward(d_out.ptr, d_inp.ptr, d_w.ptr, s.bias ? d_b.ptr : nullptr, N, s.IC, s.OC,
                           nullptr, s.gelu ? d_pre.ptr : nullptr);
        });
        const double bwd = benchmark_ms([&] {
            matmul_backward(d_dinp.ptr, d_dw.ptr, s.bias ? d_db.ptr : nullptr, d_scratch.ptr, d_dout.ptr,
                            d_inp.ptr, d_w.ptr, N, s.IC, s.OC, nullptr);
        });
        printf("%-10s IC=%-5d OC=%-6d forward %7.3f ms %6.1f TFLOP/s   backward %7.3f ms %6.1f TFLOP/s\n",
               s.name, s.IC, s.OC, fwd, flops / fwd * 1e-9, bwd, 2 * flops / bwd * 1e-9);
    }
}

int main(int argc, char** argv) {
    const int version = benchmark_version(argc, argv, 1);   // version 1: cuBLASLt, the only one
    matmul_setup();
    if (version) {
        benchmark(version);
        matmul_teardown();
        return 0;
    }
    std::mt19937_64 rng(test_seed());
    for_each_thread_order([&](const char* order) {
        test_forward(order, 37, 45, 83, false, false, 0, rng);
        test_forward(order, 37, 45, 83, true, false, 0, rng);
        test_forward(order, 37, 45, 83, true, false, 1, rng);   // inp 90 (bf16) or 180 bytes aligned
        test_forward(order, 37, 45, 80, true, true, 0, rng);    // GELU: OC a multiple of 8
        test_forward(order, 37, 45, 80, false, true, 0, rng);
        test_forward_two_biases(order, rng);
        test_backward(order, 37, 45, 83, true, true, rng);
        test_backward(order, 300, 19, 40, true, true, rng);    // more rows than the dbias row lanes
        test_backward(order, 37, 45, 83, true, false, rng);    // the LM head's form: no dbias
        test_backward(order, 37, 45, 83, false, true, rng);    // no dinp (e.g. the first layer's input)
        test_dbias_chunks(order, rng);
    });
    matmul_teardown();
    return test_exit();
}
