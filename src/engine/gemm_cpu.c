/*
 * gemm_cpu.c — packed-weight GEMM for the CPU engine (contract and layout in gemm_cpu.h).
 *
 * Kernels. A micro-tile is MR rows × NR columns of accumulators held in registers; for each
 * k the weights' NR values are loaded once and each row's x[r, k] is broadcast against them.
 *   - AVX-512 f32: 12 rows × 32 columns (2 panels) = 24 zmm accumulators.
 *   - AVX2 f32: 6 rows × 16 columns (1 panel) = 12 ymm accumulators.
 *   - AVX512-BF16: 12 × 32, VDPBF16PS on k pairs.
 *   - int8: AVX512-VNNI 12 × 32 with VPDPBUSD on k quads (u8 activations with a zero point,
 *     removed with the weights' column sums); AVX2 6 × 16 on k pairs with
 *     VPMADDWD (16-bit, exact); generic C. Integer sums are exact, so all three agree.
 * Work is split into (row tile, column group) items: 96 rows (a multiple of 12 and of 6)
 * × 128 columns; a thread walks one item panel by panel so the panel (n_in × 16 values,
 * 24–96 KiB in f32) stays in L1/L2 across the tile's rows.
 *
 * Why these and not a library. Against OpenBLAS 0.3.21 (one sgemm per sequence and 128-column
 * slice, as batch invariance needed, weights re-packed every call): rr-bench-cpu, 64 pairs of
 * ~118 tokens, 2 threads, interleaved: 54.4 / 62.8 → 68.2 / 70.1 pairs/s. perf then puts the
 * AVX-512 f32 kernel at ~240 GFLOP/s on the 2 Zen 4 cores — about their FMA peak (32 flops a
 * cycle each at ~3.7 GHz), so packing A or blocking k would buy little. oneDNN's matmul
 * (libdnnl-dev 2.6) also pre-packs, but picks its kernels and blocking by M, so a row's rounding
 * would depend on its batch again. Whole-engine figures against ONNX Runtime:
 * bench/results/cpu-peers-*.md.
 */
#include "engine/gemm_cpu.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define PANEL 16

/* The elementwise helpers (activation rounding, tile stores) are cloned for AVX2 and AVX-512
 * so their loops vectorize (nearbyintf inlines to a rounding instruction there). Each element
 * is the same IEEE operations in every clone, and the file is built with -ffp-contract=off, so
 * every clone writes the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define RR_QCLONES __attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
#else
#define RR_QCLONES
#endif

#define ROW_TILE 96
#define COL_GROUP 128 /* columns per work item: 8 panels */

/* --- capabilities ------------------------------------------------------------------------- */

const char *rr_cpu_isa_name(rr_cpu_isa isa)
{
    return isa == RR_ISA_AVX512 ? "avx512" : isa == RR_ISA_AVX2 ? "avx2" : "generic";
}

static rr_cpu_caps caps_once;
static pthread_once_t caps_done = PTHREAD_ONCE_INIT;

static void caps_init(void)
{
    rr_cpu_caps c = {RR_ISA_GENERIC, 0, 0};
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) c.isa = RR_ISA_AVX2;
    /* x86-64-v4's set: the attention and LayerNorm kernels of ops_cpu.c are built for it */
    if (c.isa == RR_ISA_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd")) {
        c.isa = RR_ISA_AVX512;
        c.vnni = __builtin_cpu_supports("avx512vnni");
        c.bf16 = __builtin_cpu_supports("avx512bf16");
    }
    const char *cap = getenv("RERANK_CPU_ISA");
    if (cap && strcmp(cap, "avx2") == 0 && c.isa > RR_ISA_AVX2)
        c = (rr_cpu_caps){RR_ISA_AVX2, 0, 0};
    if (cap && strcmp(cap, "generic") == 0) c = (rr_cpu_caps){RR_ISA_GENERIC, 0, 0};
    caps_once = c;
}

/* pthread_once: the ops ask on every row, from every OpenMP thread. */
rr_cpu_caps rr_cpu_caps_get(void)
{
    pthread_once(&caps_done, caps_init);
    return caps_once;
}

/* --- packing ---------------------------------------------------------------------------- */

static int group_of(rr_dtype dt)
{
    return dt == RR_DTYPE_BF16 ? 2 : dt == RR_DTYPE_INT8 ? 4 : 1;
}

/* f32 → bf16, round to nearest even (NaN kept quiet). The one rounding every path uses. */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

rr_status rr_pack_weights(const float *w, int n_out, int n_in, rr_dtype dt, rr_packed *out,
                          rr_error *err)
{
    memset(out, 0, sizeof *out);
    if (dt != RR_DTYPE_F32 && dt != RR_DTYPE_BF16 && dt != RR_DTYPE_INT8)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "no CPU weight layout for dtype %d (f32, bf16 and int8 have one)",
                            (int)dt);
    const int g = group_of(dt);
    out->n_out = n_out;
    out->n_in = n_in;
    out->n_panels = (n_out + PANEL - 1) / PANEL;
    out->k_pad = (n_in + g - 1) / g * g;
    out->dt = dt;
    const size_t n_vals = (size_t)out->n_panels * PANEL * (size_t)out->k_pad;
    const size_t esz = dt == RR_DTYPE_F32 ? 4 : dt == RR_DTYPE_BF16 ? 2 : 1;
    out->data = rr_malloc_aligned(64, n_vals * esz);
    if (!out->data) goto nomem;
    memset(out->data, 0, n_vals * esz);
    const size_t panel_vals = (size_t)PANEL * out->k_pad;

    if (dt == RR_DTYPE_INT8) {
        const size_t nc = (size_t)out->n_panels * PANEL;
        out->scale = rr_malloc_aligned(64, nc * sizeof(float));
        out->colsum = rr_malloc_aligned(64, nc * sizeof(int32_t));
        if (!out->scale || !out->colsum) goto nomem;
        memset(out->scale, 0, nc * sizeof(float));
        memset(out->colsum, 0, nc * sizeof(int32_t));
    }
    for (int c = 0; c < n_out; c++) {
        const float *wr = w + (size_t)c * n_in;
        const size_t base = (size_t)(c / PANEL) * panel_vals;
        const int col = c % PANEL;
        float inv = 0.0f;
        if (dt == RR_DTYPE_INT8) {
            float amax = 0.0f;
            for (int k = 0; k < n_in; k++)
                amax = fmaxf(amax, fabsf(wr[k]));
            out->scale[c] = amax / 127.0f;
            inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        }
        int32_t sum = 0;
        for (int k = 0; k < n_in; k++) {
            const size_t at = base + (size_t)(k / g) * PANEL * g + (size_t)col * g + k % g;
            if (dt == RR_DTYPE_F32) {
                ((float *)out->data)[at] = wr[k];
            } else if (dt == RR_DTYPE_BF16) {
                ((uint16_t *)out->data)[at] = to_bf16(wr[k]);
            } else {
                int q = (int)nearbyintf(wr[k] * inv);
                q = q > 127 ? 127 : q < -127 ? -127 : q;
                ((int8_t *)out->data)[at] = (int8_t)q;
                sum += q;
            }
        }
        if (dt == RR_DTYPE_INT8) out->colsum[c] = sum;
    }
    return RR_OK;
nomem:
    rr_packed_free(out);
    return rr_set_error(err, RR_E_NOMEM, "out of memory packing a %d × %d weight", n_out, n_in);
}

void rr_packed_free(rr_packed *p)
{
    if (!p) return;
    rr_free(p->data);
    rr_free(p->scale);
    rr_free(p->colsum);
    memset(p, 0, sizeof *p);
}

size_t rr_gemm_scratch_bytes(rr_dtype dt, int m, int n_in)
{
    if (dt == RR_DTYPE_F32) return 0;
    const size_t g = (size_t)group_of(dt), k_pad = ((size_t)n_in + g - 1) / g * g;
    const size_t esz = dt == RR_DTYPE_BF16 ? 2 : 1;
    /* rows padded to 64 bytes; then m per-row scales and m zero points */
    const size_t row = (k_pad * esz + 63) / 64 * 64;
    return row * (size_t)m + (size_t)m * (sizeof(float) + sizeof(int32_t)) + 64;
}

/* --- f32 kernels -------------------------------------------------------------------------- */

/* One tile for the generic path (and the reference of the tests): the same FMA chain. */
static void tile_f32_generic(const float *x, size_t ldx, int mr, const float *p, int K,
                             float *t /* [mr][PANEL] */)
{
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < PANEL; j++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++)
                acc = fmaf(x[(size_t)r * ldx + k], p[(size_t)k * PANEL + j], acc);
            t[r * PANEL + j] = acc;
        }
}

#define TGT_AVX2 __attribute__((target("avx2,fma")))
#define TGT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* AVX2: MR (≤ 6) rows × one panel (2 ymm). t gets [MR][16]. */
INLINE TGT_AVX2 void tile_f32_avx2(const float *x, size_t ldx, const int MR, const float *p, int K,
                                   float *t)
{
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const __m256 b0 = _mm256_load_ps(p + (size_t)k * PANEL);
        const __m256 b1 = _mm256_load_ps(p + (size_t)k * PANEL + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            const __m256 a = _mm256_broadcast_ss(x + (size_t)r * ldx + k);
            acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_ps(t + r * PANEL, acc[r][0]);
        _mm256_storeu_ps(t + r * PANEL + 8, acc[r][1]);
    }
}

/* AVX-512: MR (≤ 12) rows × NV (1 or 2) panels. t gets [MR][32]. */
INLINE TGT_AVX512 void tile_f32_avx512(const float *x, size_t ldx, const int MR, const int NV,
                                       const float *p0, const float *p1, int K, float *t)
{
    __m512 acc[12][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        const __m512 b0 = _mm512_load_ps(p0 + (size_t)k * PANEL);
        const __m512 b1 = NV > 1 ? _mm512_load_ps(p1 + (size_t)k * PANEL) : b0;
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            const __m512 a = _mm512_set1_ps(x[(size_t)r * ldx + k]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            if (NV > 1) acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_ps(t + r * 32, acc[r][0]);
        if (NV > 1) _mm512_storeu_ps(t + r * 32 + 16, acc[r][1]);
    }
}

/* The switch makes MR a constant in each inlined copy, so the accumulators live in
 * registers; a generic MR would spill them. */
static TGT_AVX2 void tile_f32_avx2_any(const float *x, size_t ldx, int mr, const float *p, int K,
                                       float *t)
{
    switch (mr) {
    case 6:
        tile_f32_avx2(x, ldx, 6, p, K, t);
        break;
    case 5:
        tile_f32_avx2(x, ldx, 5, p, K, t);
        break;
    case 4:
        tile_f32_avx2(x, ldx, 4, p, K, t);
        break;
    case 3:
        tile_f32_avx2(x, ldx, 3, p, K, t);
        break;
    case 2:
        tile_f32_avx2(x, ldx, 2, p, K, t);
        break;
    default:
        tile_f32_avx2(x, ldx, 1, p, K, t);
        break;
    }
}

static TGT_AVX512 void tile_f32_avx512_any(const float *x, size_t ldx, int mr, int nv,
                                           const float *p0, const float *p1, int K, float *t)
{
#define F512(n)                                                                                    \
    (nv > 1 ? tile_f32_avx512(x, ldx, n, 2, p0, p1, K, t)                                          \
            : tile_f32_avx512(x, ldx, n, 1, p0, p0, K, t))
    switch (mr) {
    case 12:
        F512(12);
        break;
    case 11:
        F512(11);
        break;
    case 10:
        F512(10);
        break;
    case 9:
        F512(9);
        break;
    case 8:
        F512(8);
        break;
    case 7:
        F512(7);
        break;
    case 6:
        F512(6);
        break;
    case 5:
        F512(5);
        break;
    case 4:
        F512(4);
        break;
    case 3:
        F512(3);
        break;
    case 2:
        F512(2);
        break;
    default:
        F512(1);
        break;
    }
#undef F512
}

/* --- bf16 kernel (AVX512-BF16) -------------------------------------------------------------- */

#define TGT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* xb: the rows' bf16 pairs (row stride ldk pairs, as uint32); p0/p1: panels [k/2][16][2]. */
INLINE TGT_BF16 void tile_bf16(const uint32_t *xb, size_t ldk, const int MR, const int NV,
                               const uint32_t *p0, const uint32_t *p1, int K2, float *t)
{
    __m512 acc[12][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < K2; k++) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512(p0 + (size_t)k * PANEL);
        const __m512bh b1 = NV > 1 ? (__m512bh)_mm512_load_si512(p1 + (size_t)k * PANEL) : b0;
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)xb[(size_t)r * ldk + k]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            if (NV > 1) acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_ps(t + r * 32, acc[r][0]);
        if (NV > 1) _mm512_storeu_ps(t + r * 32 + 16, acc[r][1]);
    }
}

static TGT_BF16 void tile_bf16_any(const uint32_t *xb, size_t ldk, int mr, int nv,
                                   const uint32_t *p0, const uint32_t *p1, int K2, float *t)
{
#define B512(n)                                                                                    \
    (nv > 1 ? tile_bf16(xb, ldk, n, 2, p0, p1, K2, t) : tile_bf16(xb, ldk, n, 1, p0, p0, K2, t))
    switch (mr) {
    case 12:
        B512(12);
        break;
    case 11:
        B512(11);
        break;
    case 10:
        B512(10);
        break;
    case 9:
        B512(9);
        break;
    case 8:
        B512(8);
        break;
    case 7:
        B512(7);
        break;
    case 6:
        B512(6);
        break;
    case 5:
        B512(5);
        break;
    case 4:
        B512(4);
        break;
    case 3:
        B512(3);
        break;
    case 2:
        B512(2);
        break;
    default:
        B512(1);
        break;
    }
#undef B512
}

/* --- int8 kernels --------------------------------------------------------------------------- */

/* Activations: per row, asymmetric u8 (VPDPBUSD takes unsigned × signed): q = round(x/s) + zp
 * with s = (max − min)/255; the weights' column sums times zp take the zero point back out. */

static void tile_i8_generic(const uint8_t *xq, size_t ldq, int mr, const int8_t *p, int K4,
                            int32_t *t)
{
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < PANEL; j++) {
            int32_t acc = 0;
            for (int k = 0; k < K4 * 4; k++)
                acc += (int32_t)xq[(size_t)r * ldq + k] *
                       p[(size_t)(k / 4) * PANEL * 4 + j * 4 + k % 4];
            t[r * PANEL + j] = acc;
        }
}

/* AVX2: one panel, MR ≤ 6 rows. A k quad of a column is 4 bytes; sign-extended to 16 bits,
 * VPMADDWD sums pairs into 32 bits exactly, and two of those per quad. */
INLINE TGT_AVX2 void tile_i8_avx2(const uint8_t *xq, size_t ldq, const int MR, const int8_t *p,
                                  int K4, int32_t *t)
{
    __m256i acc[6][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int k = 0; k < K4; k++) {
        /* 16 columns × 4 bytes = 64 bytes: columns 0–7 and 8–15. */
        const __m256i w0 = _mm256_load_si256((const __m256i *)(p + (size_t)k * 64));
        const __m256i w1 = _mm256_load_si256((const __m256i *)(p + (size_t)k * 64 + 32));
        /* Per 32-bit lane (one column's quad): low pair and high pair as 16-bit. */
        const __m256i w0lo = _mm256_srai_epi16(_mm256_slli_epi16(w0, 8), 8);
        const __m256i w0hi = _mm256_srai_epi16(w0, 8);
        const __m256i w1lo = _mm256_srai_epi16(_mm256_slli_epi16(w1, 8), 8);
        const __m256i w1hi = _mm256_srai_epi16(w1, 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            uint32_t quad;
            memcpy(&quad, xq + (size_t)r * ldq + (size_t)k * 4, 4);
            /* bytes b0 b1 b2 b3 → 16-bit lanes (b0, b2) and (b1, b3) to match w?lo / w?hi */
            const int32_t even = (int32_t)((quad & 0xffu) | ((quad >> 16 & 0xffu) << 16));
            const int32_t odd = (int32_t)((quad >> 8 & 0xffu) | ((quad >> 24) << 16));
            const __m256i ae = _mm256_set1_epi32(even), ao = _mm256_set1_epi32(odd);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(ae, w0lo));
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(ao, w0hi));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(ae, w1lo));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(ao, w1hi));
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_si256((__m256i *)(t + r * PANEL), acc[r][0]);
        _mm256_storeu_si256((__m256i *)(t + r * PANEL + 8), acc[r][1]);
    }
}

static TGT_AVX2 void tile_i8_avx2_any(const uint8_t *xq, size_t ldq, int mr, const int8_t *p,
                                      int K4, int32_t *t)
{
    switch (mr) {
    case 6:
        tile_i8_avx2(xq, ldq, 6, p, K4, t);
        break;
    case 5:
        tile_i8_avx2(xq, ldq, 5, p, K4, t);
        break;
    case 4:
        tile_i8_avx2(xq, ldq, 4, p, K4, t);
        break;
    case 3:
        tile_i8_avx2(xq, ldq, 3, p, K4, t);
        break;
    case 2:
        tile_i8_avx2(xq, ldq, 2, p, K4, t);
        break;
    default:
        tile_i8_avx2(xq, ldq, 1, p, K4, t);
        break;
    }
}

#define TGT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

INLINE TGT_VNNI void tile_vnni(const uint8_t *xq, size_t ldq, const int MR, const int NV,
                               const int8_t *p0, const int8_t *p1, int K4, int32_t *t)
{
    __m512i acc[12][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (int k = 0; k < K4; k++) {
        const __m512i b0 = _mm512_load_si512(p0 + (size_t)k * 64);
        const __m512i b1 = NV > 1 ? _mm512_load_si512(p1 + (size_t)k * 64) : b0;
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            int32_t quad;
            memcpy(&quad, xq + (size_t)r * ldq + (size_t)k * 4, 4);
            const __m512i a = _mm512_set1_epi32(quad);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, b0);
            if (NV > 1) acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], a, b1);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_si512(t + r * 32, acc[r][0]);
        if (NV > 1) _mm512_storeu_si512(t + r * 32 + 16, acc[r][1]);
    }
}

static TGT_VNNI void tile_vnni_any(const uint8_t *xq, size_t ldq, int mr, int nv, const int8_t *p0,
                                   const int8_t *p1, int K4, int32_t *t)
{
#define V512(n)                                                                                    \
    (nv > 1 ? tile_vnni(xq, ldq, n, 2, p0, p1, K4, t) : tile_vnni(xq, ldq, n, 1, p0, p0, K4, t))
    switch (mr) {
    case 12:
        V512(12);
        break;
    case 11:
        V512(11);
        break;
    case 10:
        V512(10);
        break;
    case 9:
        V512(9);
        break;
    case 8:
        V512(8);
        break;
    case 7:
        V512(7);
        break;
    case 6:
        V512(6);
        break;
    case 5:
        V512(5);
        break;
    case 4:
        V512(4);
        break;
    case 3:
        V512(3);
        break;
    case 2:
        V512(2);
        break;
    default:
        V512(1);
        break;
    }
#undef V512
}

/* --- activations for the reduced paths -------------------------------------------------------- */

static size_t act_row_bytes(rr_dtype dt, int k_pad)
{
    const size_t esz = dt == RR_DTYPE_BF16 ? 2 : 1;
    return ((size_t)k_pad * esz + 63) / 64 * 64;
}

/* One row as asymmetric u8: [min, max] (always spanning 0) onto 0 … 255 with an integer zero
 * point, so a GELU output (≥ −0.17) gets all 8 bits, not the 7 of symmetric int8. */
RR_QCLONES static void quant_row_u8(const float *xr, int n, float *scale, int32_t *zp_out,
                                    uint8_t *dst)
{
    float lo = 0.0f, hi = 0.0f;
    for (int k = 0; k < n; k++) {
        lo = xr[k] < lo ? xr[k] : lo;
        hi = xr[k] > hi ? xr[k] : hi;
    }
    const float sc = (hi - lo) / 255.0f, inv = sc > 0.0f ? 1.0f / sc : 0.0f;
    int zp = (int)nearbyintf(-lo * inv);
    zp = zp < 0 ? 0 : zp > 255 ? 255 : zp;
    *scale = sc;
    *zp_out = zp;
    for (int k = 0; k < n; k++) {
        int q = (int)nearbyintf(xr[k] * inv) + zp;
        dst[k] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
    }
}

/* Rounds rows [r0, r1) of x into the scratch (bf16, or u8 with a zero point; padded) and, for
 * int8, their scales and zero points after the rows. */
static void prepare_rows(const float *x, size_t ldx, int r0, int r1, const rr_packed *w,
                         uint8_t *scratch, int m)
{
    const size_t row = act_row_bytes(w->dt, w->k_pad);
    float *scales = (float *)(void *)(scratch + row * (size_t)m);
    int32_t *zps = (int32_t *)(scales + m);
    for (int r = r0; r < r1; r++) {
        const float *xr = x + (size_t)r * ldx;
        uint8_t *dst = scratch + row * (size_t)r;
        if (w->dt == RR_DTYPE_BF16) {
            uint16_t *b = (uint16_t *)(void *)dst;
            for (int k = 0; k < w->n_in; k++)
                b[k] = to_bf16(xr[k]);
            for (int k = w->n_in; k < w->k_pad; k++)
                b[k] = 0;
        } else {
            quant_row_u8(xr, w->n_in, &scales[r], &zps[r], dst);
            const int zp = zps[r];
            /* padding: the zero point means 0, and the padded weights are 0 anyway */
            for (int k = w->n_in; k < w->k_pad; k++)
                dst[k] = (uint8_t)zp;
        }
    }
}

/* --- the driver ------------------------------------------------------------------------------- */

/* Stores a tile's accumulators (t: [mr][tw] f32) into y with the bias, columns c0.. < n_out.
 * Cloned like quant_row_u8: elementwise IEEE operations, the same bits in every clone. */
RR_QCLONES static void store_f32(const float *t, int tw, int mr, int c0, int nc, const float *bias,
                                 float *y, size_t ldy)
{
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nc; j++)
            y[(size_t)r * ldy + c0 + j] = t[r * tw + j] + (bias ? bias[c0 + j] : 0.0f);
}

/* int8: y = (acc − zp·Σw)·(sx·sw) + bias, in one order on every path (cloned, as above). */
RR_QCLONES static void store_i8(const int32_t *t, int tw, int mr, const float *sx,
                                const int32_t *zp, int c0, int nc, const rr_packed *w,
                                const float *bias, float *y, size_t ldy)
{
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nc; j++) {
            const int32_t v = t[r * tw + j] - zp[r] * w->colsum[c0 + j];
            y[(size_t)r * ldy + c0 + j] =
                (float)v * (sx[r] * w->scale[c0 + j]) + (bias ? bias[c0 + j] : 0.0f);
        }
}

/* One work item: rows [r0, r1) × panels [pa, pb). */
static void run_item(const float *x, size_t ldx, const rr_packed *w, const float *bias, float *y,
                     size_t ldy, const uint8_t *scratch, int m, int r0, int r1, int pa, int pb,
                     rr_cpu_caps caps)
{
    float tf[12 * 32] __attribute__((aligned(64)));
    int32_t ti[12 * 32] __attribute__((aligned(64)));
    const size_t panel_vals = (size_t)PANEL * w->k_pad;
    const int wide = caps.isa == RR_ISA_AVX512 && w->dt != RR_DTYPE_INT8                ? 1
                     : caps.isa == RR_ISA_AVX512 && caps.vnni && w->dt == RR_DTYPE_INT8 ? 1
                                                                                        : 0;
    const int MR = wide ? 12 : 6, step = wide ? 2 : 1;
    const size_t row = w->dt == RR_DTYPE_F32 ? 0 : act_row_bytes(w->dt, w->k_pad);
    const float *sx_all =
        w->dt == RR_DTYPE_INT8 ? (const float *)(const void *)(scratch + row * (size_t)m) : NULL;
    const int32_t *zp_all = sx_all ? (const int32_t *)(const void *)(sx_all + m) : NULL;

    for (int p = pa; p < pb; p += step) {
        const int nv = wide && p + 1 < pb ? 2 : 1;
        const int c0 = p * PANEL;
        int nc = nv * PANEL;
        if (c0 + nc > w->n_out) nc = w->n_out - c0;
        for (int r = r0; r < r1; r += MR) {
            const int mr = r1 - r < MR ? r1 - r : MR;
            if (w->dt == RR_DTYPE_F32) {
                const float *pp = (const float *)w->data + (size_t)p * panel_vals;
                const float *xr = x + (size_t)r * ldx;
                if (caps.isa == RR_ISA_AVX512) {
                    tile_f32_avx512_any(xr, ldx, mr, nv, pp, pp + panel_vals, w->n_in, tf);
                    store_f32(tf, 32, mr, c0, nc, bias, y + (size_t)r * ldy, ldy);
                } else if (caps.isa == RR_ISA_AVX2) {
                    tile_f32_avx2_any(xr, ldx, mr, pp, w->n_in, tf);
                    store_f32(tf, PANEL, mr, c0, nc, bias, y + (size_t)r * ldy, ldy);
                } else {
                    tile_f32_generic(xr, ldx, mr, pp, w->n_in, tf);
                    store_f32(tf, PANEL, mr, c0, nc, bias, y + (size_t)r * ldy, ldy);
                }
            } else if (w->dt == RR_DTYPE_BF16) {
                const uint32_t *pp = (const uint32_t *)w->data + (size_t)p * panel_vals / 2;
                const uint32_t *xb = (const uint32_t *)(const void *)(scratch + row * (size_t)r);
                tile_bf16_any(xb, row / 4, mr, nv, pp, pp + panel_vals / 2, w->k_pad / 2, tf);
                store_f32(tf, 32, mr, c0, nc, bias, y + (size_t)r * ldy, ldy);
            } else {
                const int8_t *pp = (const int8_t *)w->data + (size_t)p * panel_vals;
                const uint8_t *xq = scratch + row * (size_t)r;
                if (wide) {
                    tile_vnni_any(xq, row, mr, nv, pp, pp + panel_vals, w->k_pad / 4, ti);
                    store_i8(ti, 32, mr, sx_all + r, zp_all + r, c0, nc, w, bias,
                             y + (size_t)r * ldy, ldy);
                } else if (caps.isa >= RR_ISA_AVX2) {
                    tile_i8_avx2_any(xq, row, mr, pp, w->k_pad / 4, ti);
                    store_i8(ti, PANEL, mr, sx_all + r, zp_all + r, c0, nc, w, bias,
                             y + (size_t)r * ldy, ldy);
                } else {
                    tile_i8_generic(xq, row, mr, pp, w->k_pad / 4, ti);
                    store_i8(ti, PANEL, mr, sx_all + r, zp_all + r, c0, nc, w, bias,
                             y + (size_t)r * ldy, ldy);
                }
            }
        }
    }
}

void rr_gemm_packed(const float *x, size_t ldx, int m, const rr_packed *w, const float *bias,
                    float *y, size_t ldy, void *scratch, int n_threads)
{
    rr_gemm_packed_caps(x, ldx, m, w, bias, y, ldy, scratch, n_threads, rr_cpu_caps_get());
}

void rr_gemm_packed_caps(const float *x, size_t ldx, int m, const rr_packed *w, const float *bias,
                         float *y, size_t ldy, void *scratch, int n_threads, rr_cpu_caps caps)
{
    if (m <= 0) return;
    uint8_t *s = scratch;
    if (n_threads < 1) n_threads = 1;
    if (w->dt != RR_DTYPE_F32) {
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (int r = 0; r < m; r += 16)
            prepare_rows(x, ldx, r, r + 16 < m ? r + 16 : m, w, s, m);
    }
    const int n_rt = (m + ROW_TILE - 1) / ROW_TILE;
    const int pg = COL_GROUP / PANEL, n_cg = (w->n_panels + pg - 1) / pg;
#pragma omp parallel for collapse(2) num_threads(n_threads) schedule(dynamic, 1)
    for (int i = 0; i < n_rt; i++)
        for (int j = 0; j < n_cg; j++) {
            const int r0 = i * ROW_TILE, r1 = r0 + ROW_TILE < m ? r0 + ROW_TILE : m;
            const int pa = j * pg, pb = pa + pg < w->n_panels ? pa + pg : w->n_panels;
            run_item(x, ldx, w, bias, y, ldy, s, m, r0, r1, pa, pb, caps);
        }
}
