/*
 * gemm_cpu.h — the CPU engine's linear layers: weights packed once at load, then
 * y = x·wᵀ (+ bias) over any number of rows, in f32, bf16 or int8.
 *
 * Why our own kernel rather than OpenBLAS: sgemm re-packs the constant weights on every call
 * (~13 % of a K=10 forward, cpu-performance review), and its per-row rounding depends on how
 * many rows the call has, which forced one call per sequence to keep scores batch invariant.
 * Here every output element is one FMA chain over k = 0 … n_in−1 in order, starting from 0,
 * then + bias: a row's result is the same bits whatever the number of rows, the tile it
 * lands in, the thread count — and the same on the AVX-512, AVX2 and generic paths (FMA
 * rounds once, whatever the vector width). So one call covers the whole packed batch.
 *
 * Reduced precisions (opt-in, rr_engine_opts.dtype):
 *   - bf16: weights rounded to bf16 at load, activations rounded to bf16 per call, pairs
 *     multiplied and summed in f32 by VDPBF16PS (AVX512-BF16 only; refused elsewhere).
 *   - int8: weights quantized per output column (symmetric, scale = max|w|/127), activations
 *     per row on every call (asymmetric u8: scale (max − min)/255 and a zero point); integer
 *     dot products (VNNI, or
 *     AVX2's 16-bit multiply-add, or C) are exact, so every path gives the same bits.
 *
 * Layout. Output columns in panels of 16; a panel holds, for each group of g consecutive k
 * (g = 1 f32, 2 bf16, 4 int8), 16 × g values: [panel][k / g][16][g], k padded to a multiple
 * of g with zeros and columns past n_out zero.
 */
#ifndef RR_GEMM_CPU_H
#define RR_GEMM_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "rerank.h"

/* The instruction sets the kernels are written for, best first. */
typedef enum rr_cpu_isa {
    RR_ISA_GENERIC = 0, /* C with fmaf: any x86-64 (slow; the reference of the tests) */
    RR_ISA_AVX2 = 1,    /* AVX2 + FMA */
    RR_ISA_AVX512 = 2,  /* x86-64-v4: AVX-512 F/BW/VL/DQ/CD (+ VNNI for int8, BF16 for bf16) */
} rr_cpu_isa;

/* What this CPU runs: the best of rr_cpu_isa, and the two optional extensions. */
typedef struct rr_cpu_caps {
    rr_cpu_isa isa;
    int vnni; /* AVX512-VNNI */
    int bf16; /* AVX512-BF16 */
} rr_cpu_caps;

/* The CPU's capabilities, capped by RERANK_CPU_ISA (generic, avx2, avx512) when set — the
 * tests run every path on one machine that way. Computed once. */
rr_cpu_caps rr_cpu_caps_get(void);
const char *rr_cpu_isa_name(rr_cpu_isa isa);

typedef struct rr_packed {
    int n_out, n_in;
    int n_panels;    /* ceil(n_out / 16) */
    int k_pad;       /* n_in rounded up to the group size */
    rr_dtype dt;     /* F32, BF16 or INT8 */
    void *data;      /* the panels (layout above), 64-byte aligned */
    float *scale;    /* INT8: [n_panels * 16] per-column weight scales; else NULL */
    int32_t *colsum; /* INT8: [n_panels * 16] Σ_k q[c][k] (to remove the activations' zero point) */
} rr_packed;

/* Packs w[n_out, n_in] (row-major f32, the PyTorch Linear layout) as dt. RR_E_NOMEM, or
 * RR_E_UNSUPPORTED for a dtype the packer has no layout for. */
rr_status rr_pack_weights(const float *w, int n_out, int n_in, rr_dtype dt, rr_packed *out,
                          rr_error *err);
void rr_packed_free(rr_packed *p);

/* Bytes of scratch rr_gemm_packed needs for m rows of n_in inputs (the rounded activations
 * of bf16 and int8 and their per-row scales; 0 for f32). */
size_t rr_gemm_scratch_bytes(rr_dtype dt, int m, int n_in);

/* y[r, c] = Σ_k x[r, k]·w[c, k] (+ bias[c]) for r < m, c < n_out; x rows ldx floats apart,
 * y rows ldy apart. Runs on up to n_threads OpenMP threads; scratch as sized above (may be
 * NULL for f32). A row's result does not depend on m, n_threads or the ISA path. */
void rr_gemm_packed(const float *x, size_t ldx, int m, const rr_packed *w, const float *bias,
                    float *y, size_t ldy, void *scratch, int n_threads);

/* The same with the kernel paths of `caps` (≤ this CPU's): the tests run every path. */
void rr_gemm_packed_caps(const float *x, size_t ldx, int m, const rr_packed *w, const float *bias,
                         float *y, size_t ldy, void *scratch, int n_threads, rr_cpu_caps caps);

#endif /* RR_GEMM_CPU_H */
