// kernels/matmul.cuh: the matrix products of the GPU trainer, through cuBLASLt, and the bias
// gradient kernel.
//   matmul_forward:  out[N,OC] = inp[N,IC] · weight[OC,IC]^T + bias[OC]        (bias may be null)
//                    with pre_gelu: pre_gelu = inp · weight^T + bias, out = gelu(pre_gelu), fused
//                    in cuBLASLt's GELU epilogue (tanh form, as kernels/gelu_math.h; OC a multiple
//                    of 8, cuBLASLt's rule for the aux matrix)
//   matmul_backward: dinp[N,IC] = dout[N,OC] · weight[OC,IC]   (overwritten; skipped if null)
//                    dweight[OC,IC] += dout^T · inp             (fp32, accumulated)
//                    dbias[OC] += column sums of dout          (fp32, accumulated; skipped if null;
//                    scratch: matmul_dbias_scratch_floats(OC) floats, see kernels/reduce.cuh)
// Precision: inputs and outputs floatX (bf16, or fp32 with ENABLE_FP32), accumulation fp32
// (CUBLAS_COMPUTE_32F: true fp32 in the fp32 build, no TF32); dweight is a bf16 x bf16 product into
// fp32 C/D with beta = 1. dbias is a deterministic two-stage column sum of our own (cuBLASLt's
// BGRADB epilogue overwrites, it cannot accumulate).
//
// Call matmul_setup() once before any matmul and matmul_teardown() at the end: one cuBLASLt handle,
// one 32 MiB workspace, and a plan per problem (descriptor, layouts, algorithm from the heuristic)
// built on first use and cached; per call only the bias and aux pointers are set. The heuristic is
// told the pointers' real alignment (cuBLASLt otherwise assumes 256 bytes) and allows split-k only
// with fp32 partial sums reduced in the workspace: every reduction fp32, deterministic. Every matmul
// shares the workspace, so issue them on one stream. Every cuBLASLt call is checked (CUBLAS_CHECK:
// file:line and the status). Under g++ (dev/simt) cuBLASLt is dev/simt/cublaslt_cpu.h, a CPU
// stand-in that checks every argument.
//
// Row-major data, column-major cuBLASLt. A row-major R x C array (row stride C) read column-major
// is its transpose: C rows, R columns, ld = C. So each product is computed transposed, on the arrays
// as they are, and cuBLASLt's D is the transpose of our row-major output:
//   forward   out^T (OC x N)  = op(A) op(B), A = weight as (IC x OC, ld IC), transa T -> weight (OC x IC)
//                                            B = inp    as (IC x N,  ld IC), transb N -> inp^T  (IC x N)
//             m = OC, n = N, k = IC; the bias has one value per row of D = per output channel.
//   dinp      dinp^T (IC x N) = op(A) op(B), A = weight as (IC x OC, ld IC), transa N -> weight^T
//                                            B = dout   as (OC x N,  ld OC), transb N -> dout^T
//             m = IC, n = N, k = OC.
//   dweight   dweight^T (IC x OC) += op(A) op(B), A = inp  as (IC x N, ld IC), transa N -> inp^T
//                                                 B = dout as (OC x N, ld OC), transb T -> dout (N x OC)
//             m = IC, n = OC, k = N, beta = 1 with C = D = dweight (fp32).
#pragma once
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "kernels/cuda_common.h"
#include "kernels/reduce.cuh"
#if defined(__CUDACC__)
#include <cublasLt.h>
#else
#include "dev/simt/cublaslt_cpu.h"
#endif

#define CUBLAS_CHECK(call)                                                                       \
    do {                                                                                         \
        cublasStatus_t cublas_check_status_ = (call);                                            \
        if (cublas_check_status_ != CUBLAS_STATUS_SUCCESS) {                                     \
            fprintf(stderr, "%s:%d: cuBLASLt error %s (%d): %s\n", __FILE__, __LINE__,          \
                    cublasLtGetStatusName(cublas_check_status_), (int)cublas_check_status_,      \
                    cublasLtGetStatusString(cublas_check_status_));                              \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

#if defined(ENABLE_FP32)
static const cudaDataType MATMUL_FLOATX_TYPE = CUDA_R_32F;
#else
static const cudaDataType MATMUL_FLOATX_TYPE = CUDA_R_16BF;
#endif

// ----------------------------------------------------------------------------------------------
// dbias[o] += sum over n of dout[n, o], in kernels/reduce.cuh's two deterministic stages. This is
// stage 1: block (x, k) of the grid (column blocks, row chunks) sums the rows of chunk k for its
// COLUMN_SUM_WIDTH * pack columns into partials[k][o]; add_column_partials adds the chunks.
template <int pack>
__global__ void matmul_dbias_partials_kernel(float* __restrict__ partials,
                                             const floatX* __restrict__ dout, int N, int OC,
                                             int chunk_rows) {
    const int o = (blockIdx.x * COLUMN_SUM_WIDTH + threadIdx.x) * pack;  // this thread's first column
    const int row_end = min(N, (int)(blockIdx.y + 1) * chunk_rows);
    float sum[pack] = {};
    if (o < OC) {
        for (int n = blockIdx.y * chunk_rows + threadIdx.y; n < row_end; n += COLUMN_SUM_ROW_LANES) {
            const FloatXPack<pack> dy = load_pack<pack>(dout + (size_t)n * OC + o);
            for (int j = 0; j < pack; j++) sum[j] += (float)dy.v[j];
        }
    }
    write_column_partials<pack>(partials, sum, OC);
}

// ----------------------------------------------------------------------------------------------
// cuBLASLt state: the handle, the workspace, and the cached plans.

static const size_t MATMUL_WORKSPACE_BYTES = 32u << 20;   // cuBLAS's recommendation for Hopper

struct MatmulPlan {
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, d;   // C uses D's layout (C == D)
    cublasLtMatmulAlgo_t algo;
};
// m, n, k, transa, transb, A/B type, D type, epilogue, alignments of A, B, D, bias, aux
typedef std::array<int64_t, 13> MatmulPlanKey;

struct MatmulState {
    cublasLtHandle_t handle = nullptr;
    void* workspace = nullptr;
    std::map<MatmulPlanKey, MatmulPlan> plans;
};
inline MatmulState& matmul_state() {
    static MatmulState state;
    return state;
}

// The alignment a pointer offers, up to cuBLASLt's default assumption of 256 bytes; the heuristic
// is told it, so that no algorithm needing more is chosen.
inline uint32_t matmul_alignment(const void* p) {
    uint32_t align = 1;
    while (align < 256 && (uintptr_t)p % (2 * align) == 0) align *= 2;
    return align;
}

inline void matmul_setup() {
    MatmulState& s = matmul_state();
    if (s.handle) {
        fprintf(stderr, "%s:%d: matmul_setup called twice (call matmul_teardown first)\n", __FILE__, __LINE__);
        exit(1);
    }
    CUBLAS_CHECK(cublasLtCreate(&s.handle));
    CUDA_CHECK(cudaMalloc(&s.workspace, MATMUL_WORKSPACE_BYTES));
}

inline void matmul_teardown() {
    MatmulState& s = matmul_state();
    for (auto& entry : s.plans) {
        MatmulPlan& p = entry.second;
        CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p.a));
        CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p.b));
        CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p.d));
        CUBLAS_CHECK(cublasLtMatmulDescDestroy(p.desc));
    }
    s.plans.clear();
    if (s.workspace) CUDA_CHECK(cudaFree(s.workspace));
    s.workspace = nullptr;
    if (s.handle) CUBLAS_CHECK(cublasLtDestroy(s.handle));
    s.handle = nullptr;
}

// D (m x n, column-major, ld m, type d_type) = op(A) op(B) + beta D, then the epilogue: + bias (one
// per row of D) when bias is non-null; with aux non-null, aux = that value (ld m) and D = gelu of it.
// A is (m x k) or, with transa, stored (k x m); B is (k x n) or, with transb, stored (n x k); dense.
inline void matmul_cublaslt(void* d, cudaDataType d_type, const floatX* a, const floatX* b, int m,
                            int n, int k, bool transa, bool transb, float beta, const floatX* bias,
                            floatX* aux, cudaStream_t stream) {
    MatmulState& s = matmul_state();
    if (!s.handle) {
        fprintf(stderr, "%s:%d: matmul called before matmul_setup()\n", __FILE__, __LINE__);
        exit(1);
    }
    const cublasLtEpilogue_t epilogue =
        aux ? (bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX)
            : (bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    const uint32_t align_a = matmul_alignment(a), align_b = matmul_alignment(b),
                   align_d = matmul_alignment(d);
    const MatmulPlanKey key = {m, n, k, transa, transb, (int64_t)MATMUL_FLOATX_TYPE, (int64_t)d_type,
                               (int64_t)epilogue, align_a, align_b, align_d,
                               bias ? matmul_alignment(bias) : 0, aux ? matmul_alignment(aux) : 0};
    auto found = s.plans.find(key);
    if (found == s.plans.end()) {
        MatmulPlan p;
        CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        const cublasOperation_t op_a = transa ? CUBLAS_OP_T : CUBLAS_OP_N;
        const cublasOperation_t op_b = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
        if (bias) {
            const int32_t bias_type = MATMUL_FLOATX_TYPE;
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
        }
        if (aux) {
            const int64_t aux_ld = m;
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)));
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)));
        }
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, MATMUL_FLOATX_TYPE, transa ? k : m, transa ? m : k, transa ? k : m));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, MATMUL_FLOATX_TYPE, transb ? n : k, transb ? k : n, transb ? n : k));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, d_type, m, n, m));

        cublasLtMatmulPreference_t pref;
        CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        const uint64_t workspace_bytes = MATMUL_WORKSPACE_BYTES;
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes, sizeof(workspace_bytes)));
        // split-k only with fp32 partial sums in the workspace (not in a bf16 output buffer)
        const uint32_t reductions = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reductions, sizeof(reductions)));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof(align_a)));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof(align_b)));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_d, sizeof(align_d)));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_d, sizeof(align_d)));
        cublasLtMatmulHeuristicResult_t result;
        int returned = 0;
        CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(s.handle, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &returned));
        CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
        if (returned == 0) {
            fprintf(stderr, "%s:%d: cuBLASLt has no algorithm for m=%d n=%d k=%d transa=%d transb=%d "
                    "epilogue %d (alignments A %u, B %u, D %u bytes)\n", __FILE__, __LINE__, m, n, k,
                    (int)transa, (int)transb, (int)epilogue, align_a, align_b, align_d);
            exit(1);
        }
        p.algo = result.algo;
        found = s.plans.emplace(key, p).first;
    } else {
        // same problem, same alignments: only the epilogue's pointers change
        if (bias) CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(found->second.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
        if (aux) CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(found->second.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)));
    }
    const MatmulPlan& p = found->second;
    const float alpha = 1.0f;
    CUBLAS_CHECK(cublasLtMatmul(s.handle, p.desc, &alpha, a, p.a, b, p.b, &beta, d, p.d, d, p.d,
                                &p.algo, s.workspace, MATMUL_WORKSPACE_BYTES, stream));
}

// ----------------------------------------------------------------------------------------------
// launchers

inline void matmul_forward(floatX* out, const floatX* inp, const floatX* weight, const floatX* bias,
                           int N, int IC, int OC, cudaStream_t stream, floatX* pre_gelu = nullptr) {
    if (N == 0) return;   // no rows (cuBLASLt takes no empty matrices)
    if (pre_gelu && OC % 8 != 0) {
        fprintf(stderr, "%s:%d: matmul_forward with GELU: OC = %d must be a multiple of 8 (cuBLASLt's "
                "aux matrix); call it without pre_gelu and use gelu_forward\n", __FILE__, __LINE__, OC);
        exit(1);
    }
    matmul_cublaslt(out, MATMUL_FLOATX_TYPE, weight, inp, OC, N, IC, true, false, 0.0f, bias, pre_gelu,
                    stream);
}

// The scratch (floats) that matmul_backward's dbias needs for OC output channels, any N.
inline size_t matmul_dbias_scratch_floats(int OC) { return column_partials_floats(OC, 1); }

// scratch: matmul_dbias_scratch_floats(OC) floats when dbias is non-null (else unused; may be null).
inline void matmul_backward(floatX* dinp, float* dweight, float* dbias, float* scratch,
                            const floatX* dout, const floatX* inp, const floatX* weight, int N,
                            int IC, int OC, cudaStream_t stream) {
    if (N == 0) return;   // no rows: nothing to add
    if (dinp)
        matmul_cublaslt(dinp, MATMUL_FLOATX_TYPE, weight, dout, IC, N, OC, false, false, 0.0f, nullptr,
                        nullptr, stream);
    matmul_cublaslt(dweight, CUDA_R_32F, inp, dout, IC, OC, N, false, true, 1.0f, nullptr, nullptr,
                    stream);
    if (dbias) {
        const ColumnChunks p = column_chunks(N, OC, column_pack(OC, dout));
        const dim3 grid((unsigned)p.column_blocks, (unsigned)p.chunks);
        const dim3 block(COLUMN_SUM_WIDTH, COLUMN_SUM_ROW_LANES);
        if (p.pack == COLUMN_PACK)
            matmul_dbias_partials_kernel<COLUMN_PACK><<<grid, block, 0, stream>>>(scratch, dout, N, OC, p.chunk_rows);
        else
            matmul_dbias_partials_kernel<1><<<grid, block, 0, stream>>>(scratch, dout, N, OC, p.chunk_rows);
        CUDA_CHECK(cudaGetLastError());
        add_column_partials(dbias, nullptr, scratch, 1, p, OC, stream);
        CUDA_CHECK(cudaGetLastError());
    }
}
