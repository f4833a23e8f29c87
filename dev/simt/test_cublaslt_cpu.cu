// dev/simt/test_cublaslt_cpu.cu: tests the cuBLASLt CPU stand-in (dev/simt/cublaslt_cpu.h) itself.
//   1. results: D = alpha op(A) op(B) + beta C with every transpose pair, leading dimensions larger
//      than the rows (padding holds NaN: never read, never written), beta = 0 over a NaN C (not
//      read), beta = 1 accumulation into fp32, out-of-place C, the BIAS, GELU_AUX and GELU_AUX_BIAS
//      epilogues; against plain double loops, bf16 and fp32 inputs.
//   2. errors: a wrong ld, mismatched dimensions, an unsupported epilogue, compute type, type mix or
//      batch count, a missing bias, a bad aux ld, an algorithm from another problem, a short
//      workspace, a pointer less aligned than promised, C == D with different layouts, a null
//      pointer, a wrongly sized attribute and an unknown reduction scheme each return the right
//      status and say what is wrong.
//   3. CUBLAS_CHECK (kernels/matmul.cuh) on a failing call exits naming this file and line.
// A kernel test (built through the launch rewriter: it includes kernels/matmul.cuh); the stand-in
// exists only for g++, so the nvcc build just reports SKIP.
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "dev/simt/kernel_test.h"
#include "kernels/matmul.cuh"

#if SIMT_CPU
static float get(cudaDataType t, const void* p, size_t i) {
    return t == CUDA_R_32F ? ((const float*)p)[i] : (float)((const __nv_bfloat16*)p)[i];
}
static void put(cudaDataType t, void* p, size_t i, float v) {
    if (t == CUDA_R_32F) ((float*)p)[i] = v;
    else ((__nv_bfloat16*)p)[i] = (__nv_bfloat16)v;
}
static size_t size_of(cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; }

// One matmul call, valid as built; error tests spoil one thing and call it.
struct Call {
    int m, n, k;
    bool ta, tb;
    cudaDataType ab, cd;
    int64_t lda, ldb, ldc, ldd, aux_ld;
    uint32_t epilogue;
    float alpha = 1.0f, beta = 0.0f;
    bool in_place;
    cublasLtHandle_t handle;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc, ld;
    cublasLtMatmulAlgo_t algo;
    static constexpr size_t workspace_bytes = 1 << 16;
    DeviceBuffer<unsigned char> a, b, c, d, bias, aux, workspace;

    Call(int m_, int n_, int k_, bool ta_, bool tb_, cudaDataType ab_, cudaDataType cd_, int pad,
         uint32_t epi, bool in_place_, std::mt19937_64& rng)
        : m(m_), n(n_), k(k_), ta(ta_), tb(tb_), ab(ab_), cd(cd_),
          lda((ta_ ? k_ : m_) + pad), ldb((tb_ ? n_ : k_) + pad), ldc(m_ + 2 * pad), ldd(m_ + pad),
          aux_ld(((m_ + pad) + 7) / 8 * 8), epilogue(epi), in_place(in_place_),
          a((size_t)lda * (ta_ ? m_ : k_) * size_of(ab_)), b((size_t)ldb * (tb_ ? k_ : n_) * size_of(ab_)),
          c((size_t)(in_place_ ? ldd : ldc) * n_ * size_of(cd_)), d((size_t)ldd * n_ * size_of(cd_)),
          bias(m_ * size_of(cd_)), aux((size_t)aux_ld * n_ * size_of(cd_)), workspace(workspace_bytes) {
        if (in_place) ldc = ldd;
        // random values everywhere, NaN in the padding (cudaMalloc's 0xFF bytes) and in C when beta = 0
        std::uniform_real_distribution<float> u(-1, 1);
        for (int64_t j = 0; j < (ta ? m : k); j++)
            for (int64_t i = 0; i < (ta ? k : m); i++) put(ab, a.ptr, j * lda + i, u(rng));
        for (int64_t j = 0; j < (tb ? k : n); j++)
            for (int64_t i = 0; i < (tb ? n : k); i++) put(ab, b.ptr, j * ldb + i, u(rng));
        for (int i = 0; i < m; i++) put(cd, bias.ptr, i, u(rng));
        CUBLAS_CHECK(cublasLtCreate(&handle));
        CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        const int32_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
        if (epilogue == CUBLASLT_EPILOGUE_BIAS || epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS)
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias.ptr, sizeof(void*)));
        if (epilogue == CUBLASLT_EPILOGUE_GELU_AUX || epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS) {
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux.ptr, sizeof(void*)));
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld));
        }
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, ab, ta ? k : m, ta ? m : k, lda));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, ab, tb ? n : k, tb ? k : n, ldb));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, cd, m, n, ldc));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ld, cd, m, n, ldd));
    }
    ~Call() {
        cublasLtMatrixLayoutDestroy(la); cublasLtMatrixLayoutDestroy(lb);
        cublasLtMatrixLayoutDestroy(lc); cublasLtMatrixLayoutDestroy(ld);
        cublasLtMatmulDescDestroy(desc);
        cublasLtDestroy(handle);
    }
    void set_c(float lo, float hi, std::mt19937_64& rng) {   // C's values (C is D when in place)
        std::uniform_real_distribution<float> u(lo, hi);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) put(cd, (in_place ? d : c).ptr, (size_t)j * ldc + i, u(rng));
    }
    cublasStatus_t heuristic() {
        cublasLtMatmulPreference_t pref;
        CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        const uint64_t bytes = workspace_bytes;
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &bytes, sizeof bytes));
        cublasLtMatmulHeuristicResult_t r;
        int returned = 0;
        cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, ld, pref, 1, &r, &returned);
        CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
        if (s == CUBLAS_STATUS_SUCCESS) algo = r.algo;
        return s;
    }
    cublasStatus_t matmul(size_t workspace_size = workspace_bytes) {
        return cublasLtMatmul(handle, desc, &alpha, a.ptr, la, b.ptr, lb, &beta,
                              in_place ? d.ptr : c.ptr, lc, d.ptr, ld, &algo, workspace.ptr,
                              workspace_size, nullptr);
    }
    cublasStatus_t run() {
        cublasStatus_t s = heuristic();
        return s != CUBLAS_STATUS_SUCCESS ? s : matmul();
    }
};

// 1. results against double loops
static void test_result(int m, int n, int k, bool ta, bool tb, cudaDataType ab, cudaDataType cd,
                        int pad, uint32_t epilogue, float alpha, float beta, bool in_place,
                        std::mt19937_64& rng) {
    Call call(m, n, k, ta, tb, ab, cd, pad, epilogue, in_place, rng);
    call.alpha = alpha;
    call.beta = beta;
    if (beta != 0.0f) call.set_c(-1, 1, rng);   // else C stays NaN: it must not be read
    std::vector<double> c_before((size_t)m * n);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++)
            c_before[(size_t)j * m + i] = beta != 0.0f ? get(cd, (in_place ? call.d : call.c).ptr, (size_t)j * call.ldc + i) : 0.0;
    const cublasStatus_t s = call.run();

    // Max |got - want| / (|want| + floor). fp32 output: fp32 accumulation over k <= 64 terms and C,
    // bias of size ~1 (absolute errors ~1e-6: floor 1); bf16 output: one rounding, at most 2^-8 =
    // 3.9e-3 relative, plus the fp32 part (floor 1e-2 for outputs near 0).
    const double tol = cd == CUDA_R_32F ? 1e-5 : 5e-3, floor = cd == CUDA_R_32F ? 1.0 : 1e-2;
    const bool has_bias = epilogue == CUBLASLT_EPILOGUE_BIAS || epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    const bool has_gelu = epilogue == CUBLASLT_EPILOGUE_GELU_AUX || epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    double worst = 0.0, worst_aux = 0.0;
    bool padding_kept = true;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            double acc = 0.0;
            for (int q = 0; q < k; q++) {
                const double x = get(ab, call.a.ptr, ta ? (size_t)i * call.lda + q : (size_t)q * call.lda + i);
                const double y = get(ab, call.b.ptr, tb ? (size_t)q * call.ldb + j : (size_t)j * call.ldb + q);
                acc += x * y;
            }
            double v = alpha * acc + beta * c_before[(size_t)j * m + i];
            if (has_bias) v += get(cd, call.bias.ptr, i);
            if (has_gelu) {
                const double got_aux = get(cd, call.aux.ptr, (size_t)j * call.aux_ld + i);
                worst_aux = std::max(worst_aux, std::fabs(got_aux - v) / (std::fabs(v) + floor));
                v = gelu_forward_scalar(v);
            }
            const double got = get(cd, call.d.ptr, (size_t)j * call.ldd + i);
            const double e = std::fabs(got - v) / (std::fabs(v) + floor);
            worst = e == e ? std::max(worst, e) : INFINITY;
        }
        for (int64_t i = m; i < call.ldd; i++)   // D's padding: still cudaMalloc's NaN bytes
            padding_kept &= std::isnan(get(cd, call.d.ptr, (size_t)j * call.ldd + i));
    }
    char name[200];
    snprintf(name, sizeof name, "stand-in %s%s A/B %s C/D %s m=%d n=%d k=%d pad=%d epilogue %s alpha=%g beta=%g%s",
             ta ? "T" : "N", tb ? "T" : "N", ab == CUDA_R_32F ? "fp32" : "bf16", cd == CUDA_R_32F ? "fp32" : "bf16",
             m, n, k, pad, cublaslt_cpu::epilogue_name(epilogue), alpha, beta, in_place ? "" : " out-of-place C");
    if (s != CUBLAS_STATUS_SUCCESS) {
        test_report(false, name, "status %s: %s", cublasLtGetStatusName(s), cublaslt_cpu::last_error().c_str());
        return;
    }
    test_report(worst <= tol && worst_aux <= tol && padding_kept, name,
                "max relative error D %.3g aux %.3g (tolerance %.3g), padding of D %s", worst, worst_aux,
                tol, padding_kept ? "kept" : "overwritten");
}

// 2. errors: a call spoiled one way must return `want` and say `says`
static void expect_error(const char* name, cublasStatus_t got, cublasStatus_t want, const char* says) {
    const std::string& msg = cublaslt_cpu::last_error();
    const bool ok = got == want && msg.find(says) != std::string::npos;
    test_report(ok, name, "status %s (want %s), message \"%s\" (want it to contain \"%s\")",
                cublasLtGetStatusName(got), cublasLtGetStatusName(want), msg.c_str(), says);
}

static void test_errors(std::mt19937_64& rng) {
    cublaslt_cpu::quiet() = true;
    auto make = [&](uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT) {
        return new Call(6, 5, 4, false, false, CUDA_R_16BF, CUDA_R_16BF, 0, epilogue, true, rng);
    };
    {
        Call* c = make();
        const int64_t bad = 3;   // A is 6 x 4: ld must be >= 6
        cublasLtMatrixLayoutSetAttribute(c->la, CUBLASLT_MATRIX_LAYOUT_LD, &bad, sizeof bad);
        expect_error("stand-in reports ld < rows", c->run(), CUBLAS_STATUS_INVALID_VALUE, "ld 3 < rows 6");
        delete c;
    }
    {
        Call* c = make();
        const uint64_t cols = 3;   // A is m x k = 6 x 4: make it 6 x 3, so op(A) and op(B) disagree on k
        cublasLtMatrixLayoutSetAttribute(c->la, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols);
        expect_error("stand-in reports mismatched inner dimensions", c->run(), CUBLAS_STATUS_INVALID_VALUE, "inner dimensions differ");
        delete c;
    }
    {
        Call* c = make();
        const int32_t t = CUBLAS_OP_T;   // op(A) becomes 4 x 6: k = 6 against B's 4
        cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
        expect_error("stand-in reports a wrong transpose", c->run(), CUBLAS_STATUS_INVALID_VALUE, "inner dimensions differ");
        delete c;
    }
    {
        Call* c = make();
        const uint64_t cols = 7;
        cublasLtMatrixLayoutSetAttribute(c->ld, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols);
        expect_error("stand-in reports D of the wrong shape", c->run(), CUBLAS_STATUS_INVALID_VALUE, "D is 6x7 but op(A) op(B) is 6x5");
        delete c;
    }
    for (uint32_t e : {(uint32_t)CUBLASLT_EPILOGUE_BGRADB, (uint32_t)CUBLASLT_EPILOGUE_RELU, (uint32_t)CUBLASLT_EPILOGUE_DGELU}) {
        Call* c = make();
        cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e);
        char name[100], says[100];
        snprintf(name, sizeof name, "stand-in reports unsupported epilogue %s", cublaslt_cpu::epilogue_name(e));
        snprintf(says, sizeof says, "epilogue %s", cublaslt_cpu::epilogue_name(e));
        expect_error(name, c->run(), CUBLAS_STATUS_NOT_SUPPORTED, says);
        delete c;
    }
    {
        Call* c = make();
        const int32_t tf32 = CUBLAS_COMPUTE_32F_FAST_TF32;
        cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, &tf32, sizeof tf32);
        expect_error("stand-in reports an unimplemented compute type", c->run(), CUBLAS_STATUS_NOT_SUPPORTED, "compute type 77");
        delete c;
    }
    {
        Call* c = new Call(6, 5, 4, false, false, CUDA_R_32F, CUDA_R_16BF, 0, CUBLASLT_EPILOGUE_DEFAULT, true, rng);
        expect_error("stand-in reports fp32 A/B with bf16 D", c->run(), CUBLAS_STATUS_NOT_SUPPORTED, "not implemented");
        delete c;
    }
    {
        Call* c = make();
        const int32_t batches = 2;
        expect_error("stand-in reports a batch count",
                     cublasLtMatrixLayoutSetAttribute(c->la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batches, sizeof batches),
                     CUBLAS_STATUS_NOT_SUPPORTED, "BATCH_COUNT 2");
        delete c;
    }
    {
        Call* c = make(CUBLASLT_EPILOGUE_DEFAULT);
        const uint32_t bias_epilogue = CUBLASLT_EPILOGUE_BIAS;   // the bias pointer never set
        cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &bias_epilogue, sizeof bias_epilogue);
        expect_error("stand-in reports BIAS without a bias pointer", c->run(), CUBLAS_STATUS_INVALID_VALUE, "needs CUBLASLT_MATMUL_DESC_BIAS_POINTER");
        delete c;
    }
    {
        Call* c = make(CUBLASLT_EPILOGUE_GELU_AUX_BIAS);
        const int64_t aux_ld = 12;   // >= 6 rows but not a multiple of 8
        cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld);
        expect_error("stand-in reports an aux ld that is not a multiple of 8", c->run(), CUBLAS_STATUS_INVALID_VALUE, "aux ld 12");
        delete c;
    }
    {
        Call* c = make();
        c->heuristic();
        const uint64_t cols = 3;   // same descriptor, D and B now 3 columns: the algo was for n = 5
        cublasLtMatrixLayoutSetAttribute(c->lb, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols);
        cublasLtMatrixLayoutSetAttribute(c->lc, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols);
        cublasLtMatrixLayoutSetAttribute(c->ld, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols);
        expect_error("stand-in reports an algorithm chosen for another problem", c->matmul(), CUBLAS_STATUS_INVALID_VALUE, "algo was chosen for m=6 n=5");
        delete c;
    }
    {
        Call* c = make();
        c->heuristic();
        expect_error("stand-in reports a workspace smaller than the algorithm asked for", c->matmul(1024), CUBLAS_STATUS_INVALID_VALUE, "asked for 65536");
        delete c;
    }
    {
        Call* c = make();
        c->heuristic();
        c->a.ptr += 2;   // the heuristic assumed 256-byte alignment (the default preference)
        const cublasStatus_t s = c->matmul();
        c->a.ptr -= 2;
        expect_error("stand-in reports A less aligned than the algorithm was chosen for", s, CUBLAS_STATUS_INVALID_VALUE, "A = ");
        delete c;
    }
    {
        Call* c = make();
        const int64_t ldc = 8;   // C == D in place, but C's layout says ld 8 and D's 6
        cublasLtMatrixLayoutSetAttribute(c->lc, CUBLASLT_MATRIX_LAYOUT_LD, &ldc, sizeof ldc);
        expect_error("stand-in reports C == D with different layouts", c->run(), CUBLAS_STATUS_INVALID_VALUE, "in place");
        delete c;
    }
    {
        Call* c = make();
        c->heuristic();
        unsigned char* keep = c->b.ptr;
        c->b.ptr = nullptr;
        const cublasStatus_t s = c->matmul();
        c->b.ptr = keep;
        expect_error("stand-in reports a null B", s, CUBLAS_STATUS_INVALID_VALUE, "B is null");
        delete c;
    }
    {
        Call* c = make();
        const int64_t wrong_size = CUBLAS_OP_T;   // TRANSA is an int32_t
        expect_error("stand-in reports an attribute of the wrong size",
                     cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_TRANSA, &wrong_size, sizeof wrong_size),
                     CUBLAS_STATUS_INVALID_VALUE, "TRANSA takes 4 bytes, got 8");
        delete c;
    }
    {
        cublasLtMatmulPreference_t pref;
        cublasLtMatmulPreferenceCreate(&pref);
        const uint32_t mask = 0x10;
        expect_error("stand-in reports an unknown reduction scheme bit",
                     cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof mask),
                     CUBLAS_STATUS_INVALID_VALUE, "unknown bits");
        cublasLtMatmulPreferenceDestroy(pref);
    }
    cublaslt_cpu::quiet() = false;
}

// 3. CUBLAS_CHECK on a failing call: the child exits 1 and its stderr names this file and line.
static const int FAILING_CHECK_LINE = __LINE__ + 2;
static void failing_check(Call& c) {
    CUBLAS_CHECK(c.matmul(0));   // a workspace smaller than the algorithm asked for
}

static void test_check_macro(std::mt19937_64& rng) {
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); exit(1); }
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        Call c(6, 5, 4, false, false, CUDA_R_16BF, CUDA_R_16BF, 0, CUBLASLT_EPILOGUE_DEFAULT, true, rng);
        c.heuristic();
        failing_check(c);
        _exit(0);
    }
    close(fds[1]);
    std::string text;
    char buf[1024];
    ssize_t got;
    while ((got = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, (size_t)got);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    char where[200];
    snprintf(where, sizeof where, "dev/simt/test_cublaslt_cpu.cu:%d: cuBLASLt error CUBLAS_STATUS_INVALID_VALUE", FAILING_CHECK_LINE);
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 1 && text.find(where) != std::string::npos &&
                    text.find("cublasLtMatmul: workspace") != std::string::npos;
    test_report(ok, "CUBLAS_CHECK exits naming the caller's file:line and the stand-in says why",
                "exit status %d, stderr:\n%s(wanted \"%s\")", status, text.c_str(), where);
}

int main() {
    std::mt19937_64 rng(test_seed());
    for (bool ta : {false, true})
        for (bool tb : {false, true}) {
            test_result(7, 5, 9, ta, tb, CUDA_R_16BF, CUDA_R_16BF, 0, CUBLASLT_EPILOGUE_DEFAULT, 1.0f, 0.0f, true, rng);
            test_result(7, 5, 9, ta, tb, CUDA_R_32F, CUDA_R_32F, 3, CUBLASLT_EPILOGUE_DEFAULT, 0.5f, 0.0f, true, rng);
        }
    test_result(13, 6, 40, false, true, CUDA_R_16BF, CUDA_R_32F, 2, CUBLASLT_EPILOGUE_DEFAULT, 1.0f, 1.0f, true, rng);
    test_result(13, 6, 40, true, false, CUDA_R_32F, CUDA_R_32F, 1, CUBLASLT_EPILOGUE_DEFAULT, 1.0f, -2.0f, false, rng);
    test_result(11, 9, 64, true, false, CUDA_R_16BF, CUDA_R_16BF, 0, CUBLASLT_EPILOGUE_BIAS, 1.0f, 0.0f, true, rng);
    test_result(11, 9, 64, true, false, CUDA_R_16BF, CUDA_R_16BF, 5, CUBLASLT_EPILOGUE_GELU_AUX_BIAS, 1.0f, 0.0f, true, rng);
    test_result(11, 9, 64, true, false, CUDA_R_32F, CUDA_R_32F, 0, CUBLASLT_EPILOGUE_GELU_AUX, 1.0f, 0.0f, true, rng);
    test_errors(rng);
    test_check_macro(rng);
    return test_exit();
}
#else
int main() {
    test_skip("cuBLASLt CPU stand-in", "the stand-in is for g++ builds; nvcc builds use cuBLASLt");
    return test_exit();
}
#endif
