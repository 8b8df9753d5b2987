/*
 * fake_cublas.cpp — cuBLAS and cuBLASLt for the host: the handle calls and the GEMMs that
 * cuda/linear.cu and the tests use, defined with the toolkit's declarations (cublas_v2.h,
 * cublasLt.h) and computed by a column-major reference, so the engine's GEMM mapping runs
 * unchanged on the CPU. libcublas / libcublasLt are not linked.
 *
 * The reference (gemm_ref): D = alpha·op(A)·op(B) + beta·C (+ bias per row of D) with
 * column-major operands as BLAS defines them; every element's sum runs in fp32 in k order
 * (no split-K, no reassociation), then the epilogue in fp32, then ONE rounding to D's type.
 * So a result depends only on its own row and column, never on M: batch invariance holds
 * exactly here, whatever the device does. fp16, bf16 and fp32 operands; compute type
 * CUBLAS_COMPUTE_32F (and its _FAST_ variants, computed the same way); alpha/beta fp32 on
 * the host (pointer mode host), read at the call as cuBLAS does — a graph captured with
 * them keeps those values.
 *
 * What is checked, as cuBLAS checks it (a wrong transpose or leading dimension of the
 * caller is caught here, not as a silent wrong answer):
 *   - m, n, k ≥ 0 and lda ≥ max(1, rows of A as stored), likewise ldb, ldc, else
 *     CUBLAS_STATUS_INVALID_VALUE; unsupported type combinations CUBLAS_STATUS_NOT_SUPPORTED;
 *   - each operand's extent (ld·(cols−1) + rows elements) lies inside one live device
 *     allocation (fake_cudart's registry), else abort naming the operand — with exact-size
 *     allocations this is the out-of-bounds check a device gets from compute-sanitizer;
 *   - the workspace given to cublasSetWorkspace lies inside a device allocation; SetStream
 *     resets it to the library's default, as cuBLAS does;
 *   - Lt: layouts agree with the transposes (op(A) m×k, op(B) k×n, C and D m×n), ld ≥ rows,
 *     column order and no batching (else INVALID_VALUE / NOT_SUPPORTED); the bias pointer of
 *     a BIAS epilogue covers m elements; the workspace covers its size; an algo not set up
 *     by cublasLtMatmulAlgoInit or a heuristic is refused.
 * The work goes onto the handle's stream (cuBLAS) or the call's stream (Lt) through the
 * fake runtime, so it is ordered with kernels and copies and recorded by a capture.
 * Not modelled: the device's summation order and split-K (algo attributes are recorded and
 * returned, not obeyed), tensor-core rounding of inputs, other epilogues, device pointer
 * mode.
 */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <vector>

#include "fake_cuda.h"

struct cublasContext {
    cudaStream_t stream = nullptr;
    void *ws = nullptr;
    size_t ws_bytes = 0;
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

struct cublasLtContext {
    int unused = 0;
};

namespace
{

size_t type_size(cudaDataType t)
{
    switch (t) {
    case CUDA_R_16F:
    case CUDA_R_16BF:
        return 2;
    case CUDA_R_32F:
        return 4;
    default:
        return 0;
    }
}

float load(const void *p, size_t i, cudaDataType t)
{
    switch (t) {
    case CUDA_R_16F:
        return __half2float(((const __half *)p)[i]);
    case CUDA_R_16BF:
        return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    default:
        return ((const float *)p)[i];
    }
}

void store(void *p, size_t i, cudaDataType t, float v)
{
    switch (t) {
    case CUDA_R_16F:
        ((__half *)p)[i] = __float2half_rn(v);
        break;
    case CUDA_R_16BF:
        ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
        break;
    default:
        ((float *)p)[i] = v;
    }
}

/* One GEMM, fully described by value: what a capture records. */
struct Gemm {
    bool ta, tb;
    int m, n, k;
    float alpha, beta;
    const void *A, *B, *C;
    void *D;
    cudaDataType at, bt, ct, dt;
    long lda, ldb, ldc, ldd;
    const void *bias; /* m elements of bias_t, or NULL */
    cudaDataType bias_t;
};

void gemm_ref(const Gemm &g)
{
    const int m = g.m, n = g.n, k = g.k;
    /* op(A) column by column (Aw[l·m + i] = op(A)(i, l)), op(B) likewise (Bw[j·k + l]),
     * widened to fp32 once, so the inner loop runs over i with unit stride. */
    std::vector<float> Aw((size_t)m * k), Bw((size_t)k * n), acc((size_t)m * 4);
    for (int l = 0; l < k; l++)
        for (int i = 0; i < m; i++)
            Aw[(size_t)l * m + i] =
                load(g.A, g.ta ? (size_t)i * g.lda + l : (size_t)l * g.lda + i, g.at);
    for (int j = 0; j < n; j++)
        for (int l = 0; l < k; l++)
            Bw[(size_t)j * k + l] =
                load(g.B, g.tb ? (size_t)l * g.ldb + j : (size_t)j * g.ldb + l, g.bt);
    for (int j0 = 0; j0 < n; j0 += 4) {
        const int nj = n - j0 < 4 ? n - j0 : 4;
        float *a0 = acc.data(), *a1 = a0 + m, *a2 = a1 + m, *a3 = a2 + m;
        for (size_t i = 0; i < (size_t)m * 4; i++)
            acc[i] = 0.0f;
        for (int l = 0; l < k; l++) {
            const float *a = &Aw[(size_t)l * m];
            const float b0 = Bw[(size_t)j0 * k + l];
            const float b1 = nj > 1 ? Bw[(size_t)(j0 + 1) * k + l] : 0.0f;
            const float b2 = nj > 2 ? Bw[(size_t)(j0 + 2) * k + l] : 0.0f;
            const float b3 = nj > 3 ? Bw[(size_t)(j0 + 3) * k + l] : 0.0f;
            for (int i = 0; i < m; i++) {
                const float x = a[i];
                a0[i] += x * b0;
                a1[i] += x * b1;
                a2[i] += x * b2;
                a3[i] += x * b3;
            }
        }
        for (int jj = 0; jj < nj; jj++) {
            const int j = j0 + jj;
            for (int i = 0; i < m; i++) {
                float v = g.alpha * acc[(size_t)jj * m + i];
                /* beta == 0: C is not read (it may hold anything, NaN included). */
                if (g.beta != 0.0f) v += g.beta * load(g.C, (size_t)j * g.ldc + i, g.ct);
                if (g.bias) v += load(g.bias, (size_t)i, g.bias_t);
                store(g.D, (size_t)j * g.ldd + i, g.dt, v);
            }
        }
    }
}

/* Extent of a column-major rows × cols matrix with leading dimension ld, in bytes. */
size_t extent(long rows, long cols, long ld, cudaDataType t)
{
    if (rows == 0 || cols == 0) return 0;
    return ((size_t)ld * (size_t)(cols - 1) + (size_t)rows) * type_size(t);
}

/* Checks the operands' memory and queues the GEMM on `stream`. */
cublasStatus_t submit(const Gemm &g, cudaStream_t stream, const char *what)
{
    if (g.m == 0 || g.n == 0) return CUBLAS_STATUS_SUCCESS;
    char name[96];
    if (g.k > 0 && g.alpha != 0.0f) {
        snprintf(name, sizeof name, "%s: A (%s %d x %d, ld %ld)", what, g.ta ? "k x m" : "m x k",
                 g.ta ? g.k : g.m, g.ta ? g.m : g.k, g.lda);
        rr_fake_require_device(g.A, extent(g.ta ? g.k : g.m, g.ta ? g.m : g.k, g.lda, g.at), name);
        snprintf(name, sizeof name, "%s: B (%s %d x %d, ld %ld)", what, g.tb ? "n x k" : "k x n",
                 g.tb ? g.n : g.k, g.tb ? g.k : g.n, g.ldb);
        rr_fake_require_device(g.B, extent(g.tb ? g.n : g.k, g.tb ? g.k : g.n, g.ldb, g.bt), name);
    }
    if (g.beta != 0.0f) {
        snprintf(name, sizeof name, "%s: C (m x n %d x %d, ld %ld)", what, g.m, g.n, g.ldc);
        rr_fake_require_device(g.C, extent(g.m, g.n, g.ldc, g.ct), name);
    }
    snprintf(name, sizeof name, "%s: D (m x n %d x %d, ld %ld)", what, g.m, g.n, g.ldd);
    rr_fake_require_device(g.D, extent(g.m, g.n, g.ldd, g.dt), name);
    if (g.bias) {
        snprintf(name, sizeof name, "%s: bias (%d elements)", what, g.m);
        rr_fake_require_device(g.bias, (size_t)g.m * type_size(g.bias_t), name);
    }
    if (rr_fake_enqueue(stream, [g] { gemm_ref(g); }) != cudaSuccess)
        return CUBLAS_STATUS_EXECUTION_FAILED;
    return CUBLAS_STATUS_SUCCESS;
}

/* The type combinations of cublasGemmEx's table for CUBLAS_COMPUTE_32F that we model. */
bool types_ok(cudaDataType a, cudaDataType b, cudaDataType c)
{
    if (a != b) return false;
    if (a == CUDA_R_32F) return c == CUDA_R_32F;
    if (a == CUDA_R_16F || a == CUDA_R_16BF) return c == a || c == CUDA_R_32F;
    return false;
}

bool compute_ok(cublasComputeType_t c)
{
    return c == CUBLAS_COMPUTE_32F || c == CUBLAS_COMPUTE_32F_FAST_16F ||
           c == CUBLAS_COMPUTE_32F_FAST_16BF || c == CUBLAS_COMPUTE_32F_FAST_TF32;
}

const char *status_string(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS:
        return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
        return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
        return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
        return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
        return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
        return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
        return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
        return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
        return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
        return "CUBLAS_STATUS_LICENSE_ERROR";
    default:
        return "<unknown>";
    }
}

/* ---- cuBLASLt descriptors --------------------------------------------------------------- */

struct LtDesc {
    cublasComputeType_t compute;
    cudaDataType_t scale;
    int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N, pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void *bias = nullptr;
    int32_t bias_type = -1; /* -1: D's type */
};

struct LtLayout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
    int32_t order = CUBLASLT_ORDER_COL, batch = 1;
};

struct LtPref {
    uint64_t max_ws = 0;
};

/* cublasLtMatmulAlgo_t is the caller's struct of 8 words: ours hold a tag and the config. */
constexpr uint64_t kAlgoTag = 0x72726c7466616b65ull; /* "rrltfake" */
enum { A_TAG, A_ID, A_TILE, A_SPLITK, A_REDUCTION, A_SWIZZLE, A_CUSTOM, A_STAGES };

template <typename V> cublasStatus_t put(const void *buf, size_t size, V *out)
{
    if (!buf || size != sizeof(V)) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(out, buf, sizeof(V));
    return CUBLAS_STATUS_SUCCESS;
}

template <typename V> cublasStatus_t get(void *buf, size_t size, size_t *written, const V &v)
{
    if (written) *written = sizeof(V);
    if (size == 0 && written) return CUBLAS_STATUS_SUCCESS; /* size query */
    if (!buf || size < sizeof(V)) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(buf, &v, sizeof(V));
    return CUBLAS_STATUS_SUCCESS;
}

/* The Lt problem as a Gemm, or a status saying why it is refused. */
cublasStatus_t lt_shape(const LtDesc *d, const LtLayout *a, const LtLayout *b, const LtLayout *c,
                        const LtLayout *dd, Gemm *g)
{
    if (!d || !a || !b || !c || !dd) return CUBLAS_STATUS_INVALID_VALUE;
    for (const LtLayout *l : {a, b, c, dd}) {
        if (l->order != CUBLASLT_ORDER_COL || l->batch != 1) return CUBLAS_STATUS_NOT_SUPPORTED;
        if (l->ld < (int64_t)(l->rows ? l->rows : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    }
    const bool ta = d->transa != CUBLAS_OP_N, tb = d->transb != CUBLAS_OP_N;
    const uint64_t m = dd->rows, n = dd->cols, k = ta ? a->rows : a->cols;
    if ((ta ? a->cols : a->rows) != m || (tb ? b->rows : b->cols) != n ||
        (tb ? b->cols : b->rows) != k || c->rows != m || c->cols != n)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!compute_ok(d->compute) || d->scale != CUDA_R_32F ||
        !types_ok(a->type, b->type, dd->type) || c->type != dd->type ||
        d->pointer_mode != CUBLASLT_POINTER_MODE_HOST)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && d->epilogue != CUBLASLT_EPILOGUE_BIAS)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const cudaDataType bt = d->bias_type < 0 ? dd->type : (cudaDataType)d->bias_type;
    if (d->epilogue == CUBLASLT_EPILOGUE_BIAS && bt != CUDA_R_32F && bt != dd->type)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    *g = Gemm{ta,       tb,          (int)m,      (int)n,      (int)k,       1.0f,    0.0f,
              nullptr,  nullptr,     nullptr,     nullptr,     a->type,      b->type, c->type,
              dd->type, (long)a->ld, (long)b->ld, (long)c->ld, (long)dd->ld, nullptr, bt};
    return CUBLAS_STATUS_SUCCESS;
}

void init_algo(cublasLtMatmulAlgo_t *algo, int id)
{
    memset(algo, 0, sizeof *algo);
    algo->data[A_TAG] = kAlgoTag;
    algo->data[A_ID] = (uint64_t)id;
    algo->data[A_SPLITK] = 1;
}

} // namespace

extern "C" {

/* ---- cuBLAS -------------------------------------------------------------------------- */

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    h->ws = nullptr, h->ws_bytes = 0; /* cuBLAS: SetStream resets the workspace */
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t *s)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    *s = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes) rr_fake_require_device(ws, bytes, "cublasSetWorkspace");
    h->ws = ws, h->ws_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    *mode = h->math;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s)
{
    return status_string(s);
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t transa, cublasOperation_t transb,
                            int m, int n, int k, const void *alpha, const void *A,
                            cudaDataType Atype, int lda, const void *B, cudaDataType Btype, int ldb,
                            const void *beta, void *C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
    (void)algo;
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    if (m < 0 || n < 0 || k < 0 || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    const int ra = ta ? k : m, rb = tb ? n : k;
    if (lda < (ra > 1 ? ra : 1) || ldb < (rb > 1 ? rb : 1) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!compute_ok(compute) || !types_ok(Atype, Btype, Ctype)) return CUBLAS_STATUS_NOT_SUPPORTED;
    Gemm g{ta,
           tb,
           m,
           n,
           k,
           *(const float *)alpha,
           *(const float *)beta,
           A,
           B,
           C,
           C,
           Atype,
           Btype,
           Ctype,
           Ctype,
           lda,
           ldb,
           ldc,
           ldc,
           nullptr,
           CUDA_R_32F};
    return submit(g, h->stream, "cublasGemmEx");
}

/* ---- cuBLASLt ------------------------------------------------------------------------ */

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
    *h = new cublasLtContext;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasLtGetStatusString(cublasStatus_t s)
{
    return status_string(s);
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute,
                                        cudaDataType_t scale)
{
    LtDesc *x = new LtDesc;
    x->compute = compute, x->scale = scale;
    *d = (cublasLtMatmulDesc_t)x;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d)
{
    delete (LtDesc *)d;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attr, const void *buf,
                                              size_t size)
{
    LtDesc *d = (LtDesc *)desc;
    if (!d) return CUBLAS_STATUS_NOT_INITIALIZED;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE:
        return put(buf, size, (int32_t *)&d->compute);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
        return put(buf, size, (int32_t *)&d->scale);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE:
        return put(buf, size, &d->pointer_mode);
    case CUBLASLT_MATMUL_DESC_TRANSA:
        return put(buf, size, &d->transa);
    case CUBLASLT_MATMUL_DESC_TRANSB:
        return put(buf, size, &d->transb);
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        return put(buf, size, &d->epilogue);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        return put(buf, size, &d->bias);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        return put(buf, size, &d->bias_type);
    default:
        return CUBLAS_STATUS_NOT_SUPPORTED; /* not modelled: refuse, do not ignore */
    }
}

cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attr, void *buf,
                                              size_t size, size_t *written)
{
    const LtDesc *d = (const LtDesc *)desc;
    if (!d) return CUBLAS_STATUS_NOT_INITIALIZED;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE:
        return get(buf, size, written, (int32_t)d->compute);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
        return get(buf, size, written, (int32_t)d->scale);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE:
        return get(buf, size, written, d->pointer_mode);
    case CUBLASLT_MATMUL_DESC_TRANSA:
        return get(buf, size, written, d->transa);
    case CUBLASLT_MATMUL_DESC_TRANSB:
        return get(buf, size, written, d->transb);
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        return get(buf, size, written, d->epilogue);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        return get(buf, size, written, d->bias);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        return get(buf, size, written, d->bias_type);
    default:
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld)
{
    *l = (cublasLtMatrixLayout_t) new LtLayout{type, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l)
{
    delete (LtLayout *)l;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout,
                                                cublasLtMatrixLayoutAttribute_t attr,
                                                const void *buf, size_t size)
{
    LtLayout *l = (LtLayout *)layout;
    if (!l) return CUBLAS_STATUS_NOT_INITIALIZED;
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE:
        return put(buf, size, (uint32_t *)&l->type);
    case CUBLASLT_MATRIX_LAYOUT_ORDER:
        return put(buf, size, &l->order);
    case CUBLASLT_MATRIX_LAYOUT_ROWS:
        return put(buf, size, &l->rows);
    case CUBLASLT_MATRIX_LAYOUT_COLS:
        return put(buf, size, &l->cols);
    case CUBLASLT_MATRIX_LAYOUT_LD:
        return put(buf, size, &l->ld);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT:
        return put(buf, size, &l->batch);
    default:
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p)
{
    *p = (cublasLtMatmulPreference_t) new LtPref;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p)
{
    delete (LtPref *)p;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void *buf, size_t size)
{
    LtPref *p = (LtPref *)pref;
    if (!p) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) return put(buf, size, &p->max_ws);
    return CUBLAS_STATUS_NOT_SUPPORTED;
}

cublasStatus_t cublasLtMatmulAlgoInit(cublasLtHandle_t h, cublasComputeType_t compute,
                                      cudaDataType_t scale, cudaDataType_t at, cudaDataType_t bt,
                                      cudaDataType_t ct, cudaDataType_t dt, int id,
                                      cublasLtMatmulAlgo_t *algo)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!algo || id < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (!compute_ok(compute) || scale != CUDA_R_32F || !types_ok(at, bt, dt) || ct != dt)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    init_algo(algo, id);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoConfigSetAttribute(cublasLtMatmulAlgo_t *algo,
                                                    cublasLtMatmulAlgoConfigAttributes_t attr,
                                                    const void *buf, size_t size)
{
    if (!algo || algo->data[A_TAG] != kAlgoTag) return CUBLAS_STATUS_INVALID_VALUE;
    uint32_t v32;
    uint16_t v16;
    cublasStatus_t st;
    switch (attr) {
    case CUBLASLT_ALGO_CONFIG_ID:
        return CUBLAS_STATUS_INVALID_VALUE; /* read-only */
    case CUBLASLT_ALGO_CONFIG_TILE_ID:
    case CUBLASLT_ALGO_CONFIG_SPLITK_NUM:
    case CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME:
    case CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING:
    case CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION:
    case CUBLASLT_ALGO_CONFIG_STAGES_ID:
        st = put(buf, size, &v32);
        if (st == CUBLAS_STATUS_SUCCESS)
            algo->data[A_TILE + (attr - CUBLASLT_ALGO_CONFIG_TILE_ID)] = v32;
        return st;
    case CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID:
    case CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID:
        return put(buf, size, &v16); /* accepted */
    default:
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}

cublasStatus_t cublasLtMatmulAlgoConfigGetAttribute(const cublasLtMatmulAlgo_t *algo,
                                                    cublasLtMatmulAlgoConfigAttributes_t attr,
                                                    void *buf, size_t size, size_t *written)
{
    if (!algo || algo->data[A_TAG] != kAlgoTag) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_ALGO_CONFIG_ID:
        return get(buf, size, written, (int32_t)algo->data[A_ID]);
    case CUBLASLT_ALGO_CONFIG_TILE_ID:
    case CUBLASLT_ALGO_CONFIG_SPLITK_NUM:
    case CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME:
    case CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING:
    case CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION:
    case CUBLASLT_ALGO_CONFIG_STAGES_ID:
        return get(buf, size, written,
                   (uint32_t)algo->data[A_TILE + (attr - CUBLASLT_ALGO_CONFIG_TILE_ID)]);
    case CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID:
    case CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID:
        return get(buf, size, written, (uint16_t)0);
    default:
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}

cublasStatus_t cublasLtMatmulAlgoCheck(cublasLtHandle_t h, cublasLtMatmulDesc_t desc,
                                       cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                       cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                       const cublasLtMatmulAlgo_t *algo,
                                       cublasLtMatmulHeuristicResult_t *result)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!algo || algo->data[A_TAG] != kAlgoTag || !result) return CUBLAS_STATUS_INVALID_VALUE;
    Gemm g;
    cublasStatus_t st = lt_shape((const LtDesc *)desc, (const LtLayout *)a, (const LtLayout *)b,
                                 (const LtLayout *)c, (const LtLayout *)d, &g);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    const cublasLtMatmulAlgo_t copy = *algo; /* algo may point into result */
    memset(result, 0, sizeof *result);
    result->algo = copy;
    result->workspaceSize = 0;
    result->state = CUBLAS_STATUS_SUCCESS;
    result->wavesCount = 1.0f;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int *count)
{
    (void)pref;
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (requested < 1 || !results || !count) return CUBLAS_STATUS_INVALID_VALUE;
    *count = 0;
    Gemm g;
    cublasStatus_t st = lt_shape((const LtDesc *)desc, (const LtLayout *)a, (const LtLayout *)b,
                                 (const LtLayout *)c, (const LtLayout *)d, &g);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    memset(&results[0], 0, sizeof results[0]);
    init_algo(&results[0].algo, 0);
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *count = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t a, const void *B,
                              cublasLtMatrixLayout_t b, const void *beta, const void *C,
                              cublasLtMatrixLayout_t c, void *D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes,
                              cudaStream_t stream)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    if (algo && algo->data[A_TAG] != kAlgoTag) return CUBLAS_STATUS_INVALID_VALUE;
    Gemm g;
    const LtDesc *ds = (const LtDesc *)desc;
    cublasStatus_t st = lt_shape(ds, (const LtLayout *)a, (const LtLayout *)b, (const LtLayout *)c,
                                 (const LtLayout *)d, &g);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (ws_bytes) rr_fake_require_device(ws, ws_bytes, "cublasLtMatmul: workspace");
    g.alpha = *(const float *)alpha, g.beta = *(const float *)beta;
    g.A = A, g.B = B, g.C = C, g.D = D;
    if (ds->epilogue == CUBLASLT_EPILOGUE_BIAS) {
        if (!ds->bias) return CUBLAS_STATUS_INVALID_VALUE;
        g.bias = ds->bias;
    }
    return submit(g, stream, "cublasLtMatmul");
}

} /* extern "C" */
