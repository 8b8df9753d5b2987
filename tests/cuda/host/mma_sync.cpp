/*
 * mma_sync.cpp — host stand-ins for mma.sync.m16n8k16 (f32 += f16/bf16 · f16/bf16) and
 * ldmatrix.m8n8.x4(.trans).b16 (see mma_sync.h and cuda/mma.cuh).
 *
 * Each stand-in gathers the 32 lanes' operands with one rr_host_warp_exchange (warp-
 * synchronous like the instruction; not a memory fence), rebuilds the whole tile from the
 * PTX ISA's fragment tables below, and returns this lane's own result fragment. The tables
 * are written once, per element, straight from the ISA's formulas (groupID = lane >> 2,
 * threadID_in_group = lane % 4); test_mma_host checks them against a plain matrix product
 * with fragments built from an independent transcription.
 */
#include "mma_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cuda_host.h"

namespace
{

/* Exchange tags: lanes of one warp at the same exchange must run the same instruction. */
enum : uint32_t { kTagMma = 0x6d6d6131u, kTagLdm = 0x6c646d34u, kTagLdmT = 0x6c646d54u };

int lane()
{
    return (int)(threadIdx.x % 32);
}

void check_tags(const uint32_t *tags, size_t stride_words, const char *what)
{
    for (int l = 1; l < 32; l++)
        if (tags[l * stride_words] != tags[0]) {
            fprintf(stderr,
                    "%s: block (%u, %u) warp %u: lane %d and lane 0 executed different warp-wide "
                    "instructions (divergence)\n",
                    what, blockIdx.x, blockIdx.y, threadIdx.x / 32, l);
            abort();
        }
}

/* fp16 bits → float through a table (the toolkit's host __half2float is a bit-by-bit routine
 * and the stand-ins decode tens of millions of elements per test run); bf16 is a shift. */
float half_bits_to_f32(uint16_t h, bool bf16)
{
    if (bf16) {
        const uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (uint32_t i = 0; i < 65536; i++) {
            __half_raw r;
            r.x = (unsigned short)i;
            t[i] = __half2float(__half(r));
        }
        return t;
    }();
    return table[h];
}

/* Element i (0 … 7) of lane l's A fragment: register i / 2, half i % 2. */
void a_pos(int l, int i, int *row, int *col)
{
    const int g = l >> 2, t = l % 4;
    *row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
    *col = i < 4 ? t * 2 + (i & 1) : t * 2 + (i & 1) + 8;
}

/* Element i (0 … 3) of lane l's B fragment (row = k, col = n). */
void b_pos(int l, int i, int *row, int *col)
{
    const int g = l >> 2, t = l % 4;
    *row = i < 2 ? t * 2 + (i & 1) : t * 2 + (i & 1) + 8;
    *col = g;
}

/* Element i (0 … 3) of lane l's C/D fragment. */
void c_pos(int l, int i, int *row, int *col)
{
    const int g = l >> 2, t = l % 4;
    *row = i < 2 ? g : g + 8;
    *col = t * 2 + (i & 1);
}

/* The tables above inverted once: which (lane, element) holds A[row][col] and B[k][n]. A
 * lane then decodes only the two A rows and the B columns its own D elements need. */
struct where {
    uint8_t lane, elem;
};
struct layout {
    where a[16][16], b[16][8];
    layout()
    {
        int r, c;
        for (int l = 0; l < 32; l++) {
            for (int i = 0; i < 8; i++)
                a_pos(l, i, &r, &c), a[r][c] = {(uint8_t)l, (uint8_t)i};
            for (int i = 0; i < 4; i++)
                b_pos(l, i, &r, &c), b[r][c] = {(uint8_t)l, (uint8_t)i};
        }
    }
};

const layout &tables()
{
    static const layout t;
    return t;
}

constexpr int kMaxN = 8;
constexpr int kMmaWords = 1 + 4 + 2 * kMaxN; /* tag, A, the n B fragments */

struct ldm_in {
    uint32_t tag;
    int32_t stride;
    const unsigned char *row;
};

uint16_t half_of(uint32_t reg, int h)
{
    return (uint16_t)(reg >> (16 * h));
}

} // namespace

void rr_host_mma_16816_n(float *d, const uint32_t a[4], const uint32_t *b, int n, bool bf16)
{
    if (n < 1 || n > kMaxN) abort();
    /* C and D never travel: a lane's D elements are exactly its C elements (same table). */
    uint32_t words[kMmaWords], all[32 * kMmaWords];
    const int nw = 5 + 2 * n;
    words[0] = kTagMma + (uint32_t)bf16 + 2u * (uint32_t)n;
    memcpy(words + 1, a, 16);
    memcpy(words + 5, b, 8 * (size_t)n);
    rr_host_warp_exchange(words, 4 * (size_t)nw, all);
    check_tags(all, (size_t)nw, "mma.sync");

    const layout &t = tables();
    const int me = lane();
    int r0, n0, r1, n1;
    c_pos(me, 0, &r0, &n0); /* D elements 0, 1: row r0, cols n0, n0 + 1; 2, 3: row r1 */
    c_pos(me, 2, &r1, &n1);
    float A[2][16];
    for (int k = 0; k < 16; k++)
        for (int h = 0; h < 2; h++) {
            const where w = t.a[h ? r1 : r0][k];
            A[h][k] =
                half_bits_to_f32(half_of(all[w.lane * nw + 1 + w.elem / 2], w.elem % 2), bf16);
        }
    for (int i = 0; i < n; i++) {
        float B[2][16];
        for (int k = 0; k < 16; k++)
            for (int c = 0; c < 2; c++) {
                const where w = t.b[k][n0 + c];
                B[c][k] = half_bits_to_f32(
                    half_of(all[w.lane * nw + 5 + 2 * i + w.elem / 2], w.elem % 2), bf16);
            }
        for (int e = 0; e < 4; e++) {
            float s = d[4 * i + e];
            for (int k = 0; k < 16; k++)
                s += A[e / 2][k] * B[e % 2][k]; /* exact product (≤ 22 significand bits) */
            d[4 * i + e] = s;
        }
    }
}

void rr_host_ldmatrix_x4_n(uint32_t *r, const void *row, int stride, int n, bool trans)
{
    for (int i = 0; i < n; i++)
        if ((uintptr_t)((const unsigned char *)row + (ptrdiff_t)i * stride) % 16 != 0) {
            fprintf(stderr,
                    "ldmatrix: block (%u, %u) thread %u: row address %p is not 16-byte aligned\n",
                    blockIdx.x, blockIdx.y, threadIdx.x,
                    (const void *)((const unsigned char *)row + (ptrdiff_t)i * stride));
            abort();
        }
    ldm_in mine, all[32];
    mine.tag = (trans ? kTagLdmT : kTagLdm) + 2u * (uint32_t)n;
    mine.stride = stride;
    mine.row = (const unsigned char *)row;
    rr_host_warp_exchange(&mine, sizeof mine, all);
    check_tags(&all[0].tag, sizeof(ldm_in) / 4, "ldmatrix");

    const int l = lane();
    for (int i = 0; i < n; i++)
        for (int m = 0; m < 4; m++) {
            uint16_t e[2];
            for (int h = 0; h < 2; h++) {
                /* Element (row, col) of matrix m is at byte 2·col of the row lane 8m + row names.
                 */
                const int mr = trans ? 2 * (l % 4) + h : l / 4;
                const int mc = trans ? l / 4 : 2 * (l % 4) + h;
                const ldm_in &src = all[8 * m + mr];
                memcpy(&e[h], src.row + (ptrdiff_t)i * src.stride + 2 * mc, 2);
            }
            r[4 * i + m] = (uint32_t)e[0] | (uint32_t)e[1] << 16;
        }
}
