// dev/simt/cublaslt_cpu.h: a CPU stand-in for exactly the part of cuBLASLt that kernels/matmul.cuh
// (and through it the GPU trainer) uses, so that code runs under the dev/simt emulator with g++.
// kernels/matmul.cuh includes it instead of <cublasLt.h> when not compiled by nvcc. g++ only.
//
// Same names, types and enum values as the toolkit's headers; descriptors are plain structs.
// Implemented:
//   handle; matmul descriptor (compute CUBLAS_COMPUTE_32F, scale CUDA_R_32F; attributes TRANSA,
//   TRANSB (N or T), EPILOGUE, BIAS_POINTER, BIAS_DATA_TYPE, EPILOGUE_AUX_POINTER, EPILOGUE_AUX_LD,
//   COMPUTE_TYPE, SCALE_TYPE); matrix layouts (CUDA_R_16BF or CUDA_R_32F, column-major, one
//   batch); preference (MAX_WORKSPACE_BYTES, MIN_ALIGNMENT_A/B/C/D_BYTES, REDUCTION_SCHEME_MASK);
//   the heuristic (one algorithm, without split-k, so any reduction mask admits it; it needs all of
//   the preference's workspace: the most any algorithm may ask); and
//   cublasLtMatmul: D = alpha op(A) op(B) + beta C, then the epilogue
//     DEFAULT, BIAS (+ bias[row] of D), GELU_AUX (aux = x, D = gelu(x)), GELU_AUX_BIAS (both),
//   with A/B in bf16 and C/D in bf16 or fp32, or everything fp32. Each element is a dot product in
//   fp32, in order over k, from the inputs converted to float; C is not read when beta == 0 (as in
//   cuBLAS); results are rounded once to the output type (aux and D). GELU is kernels/gelu_math.h's
//   tanh form, as cuBLASLt's. Deterministic (one thread per output column).
// Every call checks its arguments (handles made by the matching Create, layouts against the
// transposes, ld >= rows, types, epilogue needs, aux ld a multiple of 8 and >= rows, pointers
// non-null and as aligned as the algorithm was chosen for, the algorithm chosen for this problem,
// the workspace as large as it asked for, C == D only with equal layouts). A call it does not
// implement or that is wrong returns CUBLAS_STATUS_NOT_SUPPORTED or CUBLAS_STATUS_INVALID_VALUE
// after printing what and why to stderr (cublaslt_cpu::last_error() keeps the text); the caller's
// status check (CUBLAS_CHECK in kernels/matmul.cuh) then exits naming its file:line. It never guesses.
// Extents are not checked here (device memory is plain host memory): the loops touch exactly the
// elements cuBLASLt would, so the _asan builds catch a matrix that overruns its allocation.
#pragma once
#if defined(__CUDACC__)
#error "dev/simt/cublaslt_cpu.h is the g++ stand-in; nvcc builds include <cublasLt.h>"
#endif
#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dev/simt/bf16.h"
#include "dev/simt/cuda_runtime_cpu.h"
#include "kernels/gelu_math.h"

// ----------------------------------------------------------------------------------------------
// Types and constants (values as in library_types.h, cublas_api.h, cublasLt.h)

typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16,
} cublasStatus_t;

typedef enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 } cudaDataType_t;
typedef cudaDataType_t cudaDataType;

typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;

typedef enum {
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
    CUBLAS_COMPUTE_64F = 70,
} cublasComputeType_t;

typedef enum { CUBLASLT_ORDER_COL = 0, CUBLASLT_ORDER_ROW = 1 } cublasLtOrder_t;

typedef enum {
    CUBLASLT_MATMUL_DESC_COMPUTE_TYPE = 0,
    CUBLASLT_MATMUL_DESC_SCALE_TYPE = 1,
    CUBLASLT_MATMUL_DESC_POINTER_MODE = 2,
    CUBLASLT_MATMUL_DESC_TRANSA = 3,
    CUBLASLT_MATMUL_DESC_TRANSB = 4,
    CUBLASLT_MATMUL_DESC_TRANSC = 5,
    CUBLASLT_MATMUL_DESC_FILL_MODE = 6,
    CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
    CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,
    CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE = 10,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER = 11,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD = 12,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE = 13,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE = 22,
    CUBLASLT_MATMUL_DESC_FAST_ACCUM = 25,
    CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26,
} cublasLtMatmulDescAttributes_t;

typedef enum {
    CUBLASLT_MATRIX_LAYOUT_TYPE = 0,
    CUBLASLT_MATRIX_LAYOUT_ORDER = 1,
    CUBLASLT_MATRIX_LAYOUT_ROWS = 2,
    CUBLASLT_MATRIX_LAYOUT_COLS = 3,
    CUBLASLT_MATRIX_LAYOUT_LD = 4,
    CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,
    CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6,
} cublasLtMatrixLayoutAttribute_t;

typedef enum {
    CUBLASLT_MATMUL_PREF_SEARCH_MODE = 0,
    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
    CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK = 3,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8,
} cublasLtMatmulPreferenceAttributes_t;

typedef enum {
    CUBLASLT_REDUCTION_SCHEME_NONE = 0,
    CUBLASLT_REDUCTION_SCHEME_INPLACE = 1,
    CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE = 2,
    CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE = 4,
    CUBLASLT_REDUCTION_SCHEME_MASK = 0x7,
} cublasLtReductionScheme_t;

typedef enum {
    CUBLASLT_EPILOGUE_DEFAULT = 1,
    CUBLASLT_EPILOGUE_RELU = 2,
    CUBLASLT_EPILOGUE_RELU_AUX = (CUBLASLT_EPILOGUE_RELU | 128),
    CUBLASLT_EPILOGUE_BIAS = 4,
    CUBLASLT_EPILOGUE_RELU_BIAS = (CUBLASLT_EPILOGUE_RELU | CUBLASLT_EPILOGUE_BIAS),
    CUBLASLT_EPILOGUE_RELU_AUX_BIAS = (CUBLASLT_EPILOGUE_RELU_AUX | CUBLASLT_EPILOGUE_BIAS),
    CUBLASLT_EPILOGUE_DRELU = 8 | 128,
    CUBLASLT_EPILOGUE_DRELU_BGRAD = CUBLASLT_EPILOGUE_DRELU | 16,
    CUBLASLT_EPILOGUE_GELU = 32,
    CUBLASLT_EPILOGUE_GELU_AUX = (CUBLASLT_EPILOGUE_GELU | 128),
    CUBLASLT_EPILOGUE_GELU_BIAS = (CUBLASLT_EPILOGUE_GELU | CUBLASLT_EPILOGUE_BIAS),
    CUBLASLT_EPILOGUE_GELU_AUX_BIAS = (CUBLASLT_EPILOGUE_GELU_AUX | CUBLASLT_EPILOGUE_BIAS),
    CUBLASLT_EPILOGUE_DGELU = 64 | 128,
    CUBLASLT_EPILOGUE_DGELU_BGRAD = CUBLASLT_EPILOGUE_DGELU | 16,
    CUBLASLT_EPILOGUE_BGRADA = 256,
    CUBLASLT_EPILOGUE_BGRADB = 512,
} cublasLtEpilogue_t;

namespace cublaslt_cpu {
// Each object starts with a tag saying what it is, so a wrong, stale or uninitialised handle is
// reported rather than used.
enum Tag : uint32_t { TAG_HANDLE = 0x4C544831, TAG_DESC = 0x4C544432, TAG_LAYOUT = 0x4C544C33,
                      TAG_PREF = 0x4C545034, TAG_ALGO = 0x4C544135, TAG_DEAD = 0xDEADDEAD };
struct Context { uint32_t tag; };
struct MatmulDesc {
    uint32_t tag;
    int32_t compute_type, scale_type;
    int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
    uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void* bias = nullptr;
    int32_t bias_type = -1;   // -1: the type of D
    void* aux = nullptr;
    int64_t aux_ld = 0;
};
struct Layout {
    uint32_t tag;
    int32_t type;
    int32_t order = CUBLASLT_ORDER_COL;
    uint64_t rows, cols;
    int64_t ld;
};
struct Preference {
    uint32_t tag;
    uint64_t max_workspace = 0;
    uint32_t reduction_mask = CUBLASLT_REDUCTION_SCHEME_MASK;   // this algorithm never splits k: NONE
    uint32_t min_align[4] = {256, 256, 256, 256};   // A, B, C, D (bytes), cuBLASLt's defaults
};
} // namespace cublaslt_cpu

typedef cublaslt_cpu::Context* cublasLtHandle_t;
typedef cublaslt_cpu::MatmulDesc* cublasLtMatmulDesc_t;
typedef cublaslt_cpu::Layout* cublasLtMatrixLayout_t;
typedef cublaslt_cpu::Preference* cublasLtMatmulPreference_t;
typedef struct { uint64_t data[8]; } cublasLtMatmulAlgo_t;
typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;

inline const char* cublasLtGetStatusName(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}
inline const char* cublasLtGetStatusString(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "success";
        case CUBLAS_STATUS_INVALID_VALUE: return "an invalid value was used as an argument";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
        default: return "an error the CPU stand-in never returns";
    }
}

namespace cublaslt_cpu {

inline std::string& last_error() { static std::string text; return text; }
// Tests that provoke errors on purpose silence the stderr message (last_error() still has it).
inline bool& quiet() { static bool q = false; return q; }

inline cublasStatus_t fail(cublasStatus_t status, const char* function, const char* fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    last_error() = std::string(function) + ": " + msg;
    if (!quiet())
        fprintf(stderr, "cuBLASLt CPU stand-in (dev/simt/cublaslt_cpu.h): %s\n", last_error().c_str());
    return status;
}

inline const char* type_name(int32_t t) {
    switch (t) {
        case CUDA_R_32F: return "CUDA_R_32F";
        case CUDA_R_16F: return "CUDA_R_16F";
        case CUDA_R_16BF: return "CUDA_R_16BF";
    }
    return "an unknown cudaDataType";
}
inline size_t type_size(int32_t t) { return t == CUDA_R_32F ? 4 : 2; }
inline const char* op_name(int32_t op) {
    return op == CUBLAS_OP_N ? "N" : op == CUBLAS_OP_T ? "T" : op == CUBLAS_OP_C ? "C" : "?";
}
inline const char* epilogue_name(uint32_t e) {
    switch (e) {
        case CUBLASLT_EPILOGUE_DEFAULT: return "DEFAULT";
        case CUBLASLT_EPILOGUE_RELU: return "RELU";
        case CUBLASLT_EPILOGUE_RELU_AUX: return "RELU_AUX";
        case CUBLASLT_EPILOGUE_BIAS: return "BIAS";
        case CUBLASLT_EPILOGUE_RELU_BIAS: return "RELU_BIAS";
        case CUBLASLT_EPILOGUE_RELU_AUX_BIAS: return "RELU_AUX_BIAS";
        case CUBLASLT_EPILOGUE_DRELU: return "DRELU";
        case CUBLASLT_EPILOGUE_DRELU_BGRAD: return "DRELU_BGRAD";
        case CUBLASLT_EPILOGUE_GELU: return "GELU";
        case CUBLASLT_EPILOGUE_GELU_AUX: return "GELU_AUX";
        case CUBLASLT_EPILOGUE_GELU_BIAS: return "GELU_BIAS";
        case CUBLASLT_EPILOGUE_GELU_AUX_BIAS: return "GELU_AUX_BIAS";
        case CUBLASLT_EPILOGUE_DGELU: return "DGELU";
        case CUBLASLT_EPILOGUE_DGELU_BGRAD: return "DGELU_BGRAD";
        case CUBLASLT_EPILOGUE_BGRADA: return "BGRADA";
        case CUBLASLT_EPILOGUE_BGRADB: return "BGRADB";
    }
    return "unknown";
}
inline bool epilogue_has_bias(uint32_t e) {
    return e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
}
inline bool epilogue_has_gelu_aux(uint32_t e) {
    return e == CUBLASLT_EPILOGUE_GELU_AUX || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
}
// Largest power of two (up to 256) dividing the address: the alignment a pointer offers.
inline uint32_t alignment_of(const void* p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t align = 1;
    while (align < 256 && a % (2 * align) == 0) align *= 2;
    return align;
}

// Copies an attribute value of exactly sizeof(T) bytes, as cuBLASLt insists.
template <class T>
cublasStatus_t set_value(T& field, const void* buf, size_t size, const char* function, const char* attr) {
    if (!buf) return fail(CUBLAS_STATUS_INVALID_VALUE, function, "%s: buf is null", attr);
    if (size != sizeof(T))
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "%s takes %zu bytes, got %zu", attr,
                    sizeof(T), size);
    memcpy(&field, buf, sizeof(T));
    return CUBLAS_STATUS_SUCCESS;
}

// The problem a descriptor and four layouts describe: D (m x n) = op(A) (m x k) op(B) (k x n).
struct Problem { uint64_t m, n, k; };

inline cublasStatus_t check_layout(const char* function, const char* name, const Layout* l) {
    if (!l || l->tag != TAG_LAYOUT)
        return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                    "layout of %s is null or not made by cublasLtMatrixLayoutCreate (destroyed?)", name);
    if (l->type != CUDA_R_32F && l->type != CUDA_R_16BF)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function,
                    "layout of %s: type %s (%d) not implemented (CUDA_R_16BF and CUDA_R_32F are)",
                    name, type_name(l->type), l->type);
    if (l->order != CUBLASLT_ORDER_COL)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function,
                    "layout of %s: order %d not implemented (only CUBLASLT_ORDER_COL)", name, l->order);
    if (l->rows == 0 || l->cols == 0)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function,
                    "layout of %s is %llux%llu: empty matrices are not implemented (skip the call)",
                    name, (unsigned long long)l->rows, (unsigned long long)l->cols);
    if (l->ld < (int64_t)l->rows)
        return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                    "layout of %s: ld %lld < rows %llu (column-major: ld is at least the row count)",
                    name, (long long)l->ld, (unsigned long long)l->rows);
    return CUBLAS_STATUS_SUCCESS;
}

// Everything the heuristic and the matmul can check without the data pointers of A, B, C, D.
inline cublasStatus_t check_problem(const char* function, const MatmulDesc* desc, const Layout* a,
                                    const Layout* b, const Layout* c, const Layout* d, Problem& p) {
    if (!desc || desc->tag != TAG_DESC)
        return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                    "matmul descriptor is null or not made by cublasLtMatmulDescCreate (destroyed?)");
    cublasStatus_t s;
    if ((s = check_layout(function, "A", a)) || (s = check_layout(function, "B", b)) ||
        (s = check_layout(function, "C", c)) || (s = check_layout(function, "D", d)))
        return s;
    if (desc->compute_type != CUBLAS_COMPUTE_32F)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function,
                    "compute type %d not implemented (only CUBLAS_COMPUTE_32F: no TF32, 16-bit or "
                    "pedantic modes)", desc->compute_type);
    if (desc->scale_type != CUDA_R_32F)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function,
                    "scale type %s not implemented (only CUDA_R_32F)", type_name(desc->scale_type));
    for (int32_t op : {desc->transa, desc->transb})
        if (op != CUBLAS_OP_N && op != CUBLAS_OP_T)
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, function,
                        "transpose %d not implemented (CUBLAS_OP_N and CUBLAS_OP_T are)", op);
    const bool ta = desc->transa == CUBLAS_OP_T, tb = desc->transb == CUBLAS_OP_T;
    const uint64_t m = ta ? a->cols : a->rows, ka = ta ? a->rows : a->cols;
    const uint64_t kb = tb ? b->cols : b->rows, n = tb ? b->rows : b->cols;
    if (ka != kb)
        return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                    "op(A) is %llux%llu (A %llux%llu, transa %s) but op(B) is %llux%llu (B %llux%llu, "
                    "transb %s): the inner dimensions differ",
                    (unsigned long long)m, (unsigned long long)ka, (unsigned long long)a->rows,
                    (unsigned long long)a->cols, op_name(desc->transa), (unsigned long long)kb,
                    (unsigned long long)n, (unsigned long long)b->rows, (unsigned long long)b->cols,
                    op_name(desc->transb));
    if (d->rows != m || d->cols != n)
        return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                    "D is %llux%llu but op(A) op(B) is %llux%llu", (unsigned long long)d->rows,
                    (unsigned long long)d->cols, (unsigned long long)m, (unsigned long long)n);
    if (c->rows != d->rows || c->cols != d->cols || c->type != d->type)
        return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                    "C (%llux%llu %s) and D (%llux%llu %s) differ in shape or type",
                    (unsigned long long)c->rows, (unsigned long long)c->cols, type_name(c->type),
                    (unsigned long long)d->rows, (unsigned long long)d->cols, type_name(d->type));
    if (a->type != b->type || (a->type == CUDA_R_32F && d->type != CUDA_R_32F))
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function,
                    "types A %s, B %s, C/D %s not implemented (A/B bf16 with C/D bf16 or fp32, or "
                    "all fp32)", type_name(a->type), type_name(b->type), type_name(d->type));
    const uint32_t e = desc->epilogue;
    if (e != CUBLASLT_EPILOGUE_DEFAULT && !epilogue_has_bias(e) && !epilogue_has_gelu_aux(e))
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function,
                    "epilogue %s (%u) not implemented (DEFAULT, BIAS, GELU_AUX, GELU_AUX_BIAS are)",
                    epilogue_name(e), e);
    if (epilogue_has_bias(e)) {
        if (!desc->bias)
            return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                        "epilogue %s needs CUBLASLT_MATMUL_DESC_BIAS_POINTER (%llu elements, the rows "
                        "of D)", epilogue_name(e), (unsigned long long)m);
        if (desc->bias_type != -1 && desc->bias_type != d->type)
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, function,
                        "bias type %s with D %s not implemented (the bias has D's type)",
                        type_name(desc->bias_type), type_name(d->type));
    } else if (desc->bias) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                    "a bias pointer is set but epilogue %s adds no bias (set an epilogue with BIAS, "
                    "or set the pointer to null)", epilogue_name(e));
    }
    if (epilogue_has_gelu_aux(e)) {
        if (!desc->aux)
            return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                        "epilogue %s needs CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER", epilogue_name(e));
        if (desc->aux_ld < (int64_t)m || desc->aux_ld % 8 != 0)
            return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                        "aux ld %lld: cuBLASLt needs a multiple of 8 that is at least the rows of D "
                        "(%llu)", (long long)desc->aux_ld, (unsigned long long)m);
    } else if (desc->aux) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function,
                    "an aux pointer is set but epilogue %s writes no aux (set a GELU_AUX epilogue, "
                    "or set the pointer to null)", epilogue_name(e));
    }
    p = {m, n, ka};
    return CUBLAS_STATUS_SUCCESS;
}

// What the heuristic promised, kept in the algorithm (cublasLtMatmulAlgo_t::data).
enum AlgoField { ALGO_TAG, ALGO_M, ALGO_N, ALGO_K, ALGO_EPILOGUE, ALGO_WORKSPACE, ALGO_ALIGN_ABCD,
                 ALGO_ALIGN_BIAS_AUX };

inline float load(int32_t type, const void* base, size_t index) {
    if (type == CUDA_R_32F) return ((const float*)base)[index];
    return (float)((const __nv_bfloat16*)base)[index];
}
inline void store(int32_t type, void* base, size_t index, float value) {
    if (type == CUDA_R_32F) ((float*)base)[index] = value;
    else ((__nv_bfloat16*)base)[index] = __float2bfloat16(value);
}

} // namespace cublaslt_cpu

// ----------------------------------------------------------------------------------------------
// The API

inline cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
    if (!handle) return cublaslt_cpu::fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtCreate", "handle is null");
    *handle = new cublaslt_cpu::Context{cublaslt_cpu::TAG_HANDLE};
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
    if (!handle || handle->tag != cublaslt_cpu::TAG_HANDLE)
        return cublaslt_cpu::fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasLtDestroy", "not a live handle");
    handle->tag = cublaslt_cpu::TAG_DEAD;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute,
                                               cudaDataType_t scale) {
    if (!desc) return cublaslt_cpu::fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescCreate", "desc is null");
    *desc = new cublaslt_cpu::MatmulDesc{cublaslt_cpu::TAG_DESC, (int32_t)compute, (int32_t)scale};
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    if (!desc || desc->tag != cublaslt_cpu::TAG_DESC)
        return cublaslt_cpu::fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescDestroy", "not a live descriptor");
    desc->tag = cublaslt_cpu::TAG_DEAD;
    delete desc;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                                     cublasLtMatmulDescAttributes_t attr,
                                                     const void* buf, size_t size) {
    using namespace cublaslt_cpu;
    const char* fn = "cublasLtMatmulDescSetAttribute";
    if (!desc || desc->tag != TAG_DESC) return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "not a live descriptor");
    switch (attr) {
        case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return set_value(desc->compute_type, buf, size, fn, "COMPUTE_TYPE");
        case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return set_value(desc->scale_type, buf, size, fn, "SCALE_TYPE");
        case CUBLASLT_MATMUL_DESC_TRANSA: return set_value(desc->transa, buf, size, fn, "TRANSA");
        case CUBLASLT_MATMUL_DESC_TRANSB: return set_value(desc->transb, buf, size, fn, "TRANSB");
        case CUBLASLT_MATMUL_DESC_EPILOGUE: return set_value(desc->epilogue, buf, size, fn, "EPILOGUE");
        case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return set_value(desc->bias, buf, size, fn, "BIAS_POINTER");
        case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return set_value(desc->bias_type, buf, size, fn, "BIAS_DATA_TYPE");
        case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return set_value(desc->aux, buf, size, fn, "EPILOGUE_AUX_POINTER");
        case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return set_value(desc->aux_ld, buf, size, fn, "EPILOGUE_AUX_LD");
        default:
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "attribute %d not implemented by the stand-in",
                        (int)attr);
    }
}

inline cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type,
                                                 uint64_t rows, uint64_t cols, int64_t ld) {
    if (!layout) return cublaslt_cpu::fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatrixLayoutCreate", "layout is null");
    *layout = new cublaslt_cpu::Layout{cublaslt_cpu::TAG_LAYOUT, (int32_t)type, CUBLASLT_ORDER_COL, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    if (!layout || layout->tag != cublaslt_cpu::TAG_LAYOUT)
        return cublaslt_cpu::fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatrixLayoutDestroy", "not a live layout");
    layout->tag = cublaslt_cpu::TAG_DEAD;
    delete layout;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout,
                                                       cublasLtMatrixLayoutAttribute_t attr,
                                                       const void* buf, size_t size) {
    using namespace cublaslt_cpu;
    const char* fn = "cublasLtMatrixLayoutSetAttribute";
    if (!layout || layout->tag != TAG_LAYOUT) return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "not a live layout");
    switch (attr) {
        case CUBLASLT_MATRIX_LAYOUT_TYPE: {
            uint32_t t;
            cublasStatus_t s = set_value(t, buf, size, fn, "TYPE");
            if (s == CUBLAS_STATUS_SUCCESS) layout->type = (int32_t)t;
            return s;
        }
        case CUBLASLT_MATRIX_LAYOUT_ORDER: return set_value(layout->order, buf, size, fn, "ORDER");
        case CUBLASLT_MATRIX_LAYOUT_ROWS: return set_value(layout->rows, buf, size, fn, "ROWS");
        case CUBLASLT_MATRIX_LAYOUT_COLS: return set_value(layout->cols, buf, size, fn, "COLS");
        case CUBLASLT_MATRIX_LAYOUT_LD: return set_value(layout->ld, buf, size, fn, "LD");
        case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: {
            int32_t count;
            cublasStatus_t s = set_value(count, buf, size, fn, "BATCH_COUNT");
            if (s == CUBLAS_STATUS_SUCCESS && count != 1)
                return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn,
                            "BATCH_COUNT %d not implemented (one matrix per call)", count);
            return s;
        }
        default:
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "attribute %d not implemented by the stand-in",
                        (int)attr);
    }
}

inline cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
    if (!pref) return cublaslt_cpu::fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceCreate", "pref is null");
    *pref = new cublaslt_cpu::Preference{cublaslt_cpu::TAG_PREF};
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    if (!pref || pref->tag != cublaslt_cpu::TAG_PREF)
        return cublaslt_cpu::fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceDestroy", "not a live preference");
    pref->tag = cublaslt_cpu::TAG_DEAD;
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                           cublasLtMatmulPreferenceAttributes_t attr,
                                                           const void* buf, size_t size) {
    using namespace cublaslt_cpu;
    const char* fn = "cublasLtMatmulPreferenceSetAttribute";
    if (!pref || pref->tag != TAG_PREF) return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "not a live preference");
    switch (attr) {
        case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return set_value(pref->max_workspace, buf, size, fn, "MAX_WORKSPACE_BYTES");
        case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK: {
            cublasStatus_t s = set_value(pref->reduction_mask, buf, size, fn, "REDUCTION_SCHEME_MASK");
            if (s == CUBLAS_STATUS_SUCCESS && (pref->reduction_mask & ~(uint32_t)CUBLASLT_REDUCTION_SCHEME_MASK))
                return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "REDUCTION_SCHEME_MASK %#x has unknown bits",
                            pref->reduction_mask);
            return s;
        }
        case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: return set_value(pref->min_align[0], buf, size, fn, "MIN_ALIGNMENT_A_BYTES");
        case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: return set_value(pref->min_align[1], buf, size, fn, "MIN_ALIGNMENT_B_BYTES");
        case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: return set_value(pref->min_align[2], buf, size, fn, "MIN_ALIGNMENT_C_BYTES");
        case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return set_value(pref->min_align[3], buf, size, fn, "MIN_ALIGNMENT_D_BYTES");
        default:
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "attribute %d not implemented by the stand-in",
                        (int)attr);
    }
}

// One algorithm, valid for exactly this problem, epilogue and the alignments the preference
// promised; it needs all of the workspace the preference allows.
inline cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                                     cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                     cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                                     cublasLtMatmulPreference_t pref, int requested,
                                                     cublasLtMatmulHeuristicResult_t results[],
                                                     int* returned) {
    using namespace cublaslt_cpu;
    const char* fn = "cublasLtMatmulAlgoGetHeuristic";
    if (!handle || handle->tag != TAG_HANDLE)
        return fail(CUBLAS_STATUS_NOT_INITIALIZED, fn, "handle is null or not made by cublasLtCreate");
    if (!pref || pref->tag != TAG_PREF)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "preference is null or not made by cublasLtMatmulPreferenceCreate");
    if (requested < 1 || !results || !returned)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "needs requestedAlgoCount >= 1 and result pointers");
    *returned = 0;
    Problem p;
    cublasStatus_t s = check_problem(fn, desc, a, b, c, d, p);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    for (int i = 0; i < 4; i++)
        if (pref->min_align[i] == 0 || (pref->min_align[i] & (pref->min_align[i] - 1)))
            return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "MIN_ALIGNMENT_%c_BYTES %u is not a power of two",
                        "ABCD"[i], pref->min_align[i]);
    cublasLtMatmulHeuristicResult_t r;
    memset(&r, 0, sizeof r);
    r.algo.data[ALGO_TAG] = TAG_ALGO;
    r.algo.data[ALGO_M] = p.m;
    r.algo.data[ALGO_N] = p.n;
    r.algo.data[ALGO_K] = p.k;
    r.algo.data[ALGO_EPILOGUE] = desc->epilogue;
    r.algo.data[ALGO_WORKSPACE] = pref->max_workspace;
    r.algo.data[ALGO_ALIGN_ABCD] = (uint64_t)pref->min_align[0] | (uint64_t)pref->min_align[1] << 16 |
                                   (uint64_t)pref->min_align[2] << 32 | (uint64_t)pref->min_align[3] << 48;
    // cuBLASLt picks kernels by the bias and aux pointers' alignment at this point
    r.algo.data[ALGO_ALIGN_BIAS_AUX] = (uint64_t)(desc->bias ? alignment_of(desc->bias) : 1) |
                                       (uint64_t)(desc->aux ? alignment_of(desc->aux) : 1) << 16;
    r.workspaceSize = pref->max_workspace;
    r.state = CUBLAS_STATUS_SUCCESS;
    r.wavesCount = 1.0f;
    results[0] = r;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                     const void* alpha, const void* A, cublasLtMatrixLayout_t a,
                                     const void* B, cublasLtMatrixLayout_t b, const void* beta,
                                     const void* C, cublasLtMatrixLayout_t c, void* D,
                                     cublasLtMatrixLayout_t d, const cublasLtMatmulAlgo_t* algo,
                                     void* workspace, size_t workspace_bytes, cudaStream_t stream) {
    using namespace cublaslt_cpu;
    const char* fn = "cublasLtMatmul";
    if (!handle || handle->tag != TAG_HANDLE)
        return fail(CUBLAS_STATUS_NOT_INITIALIZED, fn, "handle is null or not made by cublasLtCreate");
    Problem p;
    cublasStatus_t s = check_problem(fn, desc, a, b, c, d, p);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (!algo || algo->data[ALGO_TAG] != TAG_ALGO)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn,
                    "algo is null or not from cublasLtMatmulAlgoGetHeuristic (the stand-in needs one)");
    if (algo->data[ALGO_M] != p.m || algo->data[ALGO_N] != p.n || algo->data[ALGO_K] != p.k ||
        algo->data[ALGO_EPILOGUE] != desc->epilogue)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn,
                    "algo was chosen for m=%llu n=%llu k=%llu epilogue %s, this call is m=%llu n=%llu "
                    "k=%llu epilogue %s: ask the heuristic for this problem",
                    (unsigned long long)algo->data[ALGO_M], (unsigned long long)algo->data[ALGO_N],
                    (unsigned long long)algo->data[ALGO_K], epilogue_name((uint32_t)algo->data[ALGO_EPILOGUE]),
                    (unsigned long long)p.m, (unsigned long long)p.n, (unsigned long long)p.k,
                    epilogue_name(desc->epilogue));
    if (!alpha || !beta) return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "alpha or beta is null");
    const void* ptrs[4] = {A, B, C, D};
    const Layout* layouts[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        if (!ptrs[i]) return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "%c is null", "ABCD"[i]);
        const uint32_t promised = (uint32_t)(algo->data[ALGO_ALIGN_ABCD] >> (16 * i) & 0xFFFF);
        const uint32_t need = std::max<uint32_t>(promised, (uint32_t)type_size(layouts[i]->type));
        if (alignment_of(ptrs[i]) < need)
            return fail(CUBLAS_STATUS_INVALID_VALUE, fn,
                        "%c = %p is %u-byte aligned, but the algorithm was chosen for %u-byte alignment "
                        "(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_%c_BYTES, default 256)",
                        "ABCD"[i], ptrs[i], alignment_of(ptrs[i]), need, "ABCD"[i]);
    }
    if (C == D && (c->ld != d->ld))
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn,
                    "C == D (in place) with different layouts (ld %lld and %lld): use one layout",
                    (long long)c->ld, (long long)d->ld);
    const uint32_t bias_align = (uint32_t)(algo->data[ALGO_ALIGN_BIAS_AUX] & 0xFFFF);
    const uint32_t aux_align = (uint32_t)(algo->data[ALGO_ALIGN_BIAS_AUX] >> 16 & 0xFFFF);
    const size_t elem = type_size(d->type);
    if (desc->bias && alignment_of(desc->bias) < std::max<uint32_t>(bias_align, elem))
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn,
                    "bias %p is %u-byte aligned, less than when the algorithm was chosen (%u)",
                    desc->bias, alignment_of(desc->bias), bias_align);
    if (desc->aux && alignment_of(desc->aux) < std::max<uint32_t>(aux_align, elem))
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn,
                    "aux %p is %u-byte aligned, less than when the algorithm was chosen (%u)",
                    desc->aux, alignment_of(desc->aux), aux_align);
    if (workspace_bytes < algo->data[ALGO_WORKSPACE] || (algo->data[ALGO_WORKSPACE] && !workspace))
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn,
                    "workspace %p of %zu bytes, but the algorithm asked for %llu", workspace,
                    workspace_bytes, (unsigned long long)algo->data[ALGO_WORKSPACE]);

    // D = alpha op(A) op(B) + beta C (+ bias) (GELU, aux), column-major with each layout's ld.
    const float alpha_f = *(const float*)alpha, beta_f = *(const float*)beta;
    const uint64_t m = p.m, n = p.n, k = p.k;
    const bool ta = desc->transa == CUBLAS_OP_T, tb = desc->transb == CUBLAS_OP_T;
    // op(A) as m rows of k floats, op(B) as n columns of k floats: contiguous dot products
    std::vector<float> opa(m * k), opb(n * k);
    for (uint64_t i = 0; i < m; i++)
        for (uint64_t q = 0; q < k; q++)
            opa[i * k + q] = load(a->type, A, ta ? i * a->ld + q : q * a->ld + i);
    for (uint64_t j = 0; j < n; j++)
        for (uint64_t q = 0; q < k; q++)
            opb[j * k + q] = load(b->type, B, tb ? q * b->ld + j : j * b->ld + q);
    const uint32_t e = desc->epilogue;
    const bool has_bias = epilogue_has_bias(e), has_gelu = epilogue_has_gelu_aux(e);
#pragma omp parallel for schedule(static) if (m * n * k >= (1u << 18))
    for (int64_t j = 0; j < (int64_t)n; j++) {
        for (uint64_t i = 0; i < m; i++) {
            const float* x = &opa[i * k];
            const float* y = &opb[j * k];
            float acc = 0.0f;
            for (uint64_t q = 0; q < k; q++) acc += x[q] * y[q];
            float v = alpha_f * acc;
            if (beta_f != 0.0f) v += beta_f * load(c->type, C, j * c->ld + i);
            if (has_bias) v += load(d->type, desc->bias, i);
            if (has_gelu) {
                store(d->type, desc->aux, j * desc->aux_ld + i, v);
                v = gelu_forward_scalar(v);
            }
            store(d->type, D, j * d->ld + i, v);
        }
    }
    (void)stream;   // in order with everything else: the emulator runs each call to completion
    return CUBLAS_STATUS_SUCCESS;
}
