/*
 * mma.h — a host stand-in for nvcuda::wmma (16×16×16, fp16/bf16 in, fp32 accumulator),
 * found before the toolkit's <mma.h> because this directory comes first on the include
 * path of test_attention_host.
 *
 * Only the documented semantics are modelled, so a kernel that passes here is right by
 * the API's contract rather than by one GPU's register layout:
 *   - load/store abort on a pointer that is not 256-bit aligned or an ldm that is not a
 *     multiple of 16 bytes (both undefined behaviour on the device);
 *   - matrix_a/matrix_b fragments: every lane reads the whole 16×16 tile from memory at
 *     the moment it calls load (stricter than the device, where a lane reads a part, so a
 *     missing barrier before a load is more likely to show);
 *   - accumulator: each lane owns 8 of the 256 elements (a one-to-one mapping, as on the
 *     device) and loads, stores, fills and computes only those; the rest of its fragment
 *     is NaN, so code that relied on another lane's elements would produce NaN;
 *   - every op is collective: the runtime checks that all 32 lanes of a warp performed
 *     the same sequence of ops with the same pointers at each warp/block barrier and at
 *     the end of the block (a wmma op under a divergent branch is undefined on the device).
 * Fragment elements (x[], num_elements) are deliberately absent: their lane layout is
 * unspecified, and a kernel touching them should not compile here.
 */
#ifndef RR_TEST_HOST_MMA_H
#define RR_TEST_HOST_MMA_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace nvcuda
{
namespace wmma
{

struct matrix_a {
};
struct matrix_b {
};
struct accumulator {
};
struct row_major {
};
struct col_major {
};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the stand-in models 16x16x16 only");
    float v_[16][16];
};

} // namespace wmma
} // namespace nvcuda

/* Implemented in runtime.cpp: the calling lane's index, and the per-lane op signature that
 * the barriers compare across a warp. */
int rr_host_lane();
void rr_host_wmma_op(int kind, const void *p, unsigned ldm, int layout);

namespace nvcuda
{
namespace wmma
{
namespace detail
{

inline float to_f32(__half v)
{
    return __half2float(v);
}
inline float to_f32(__nv_bfloat16 v)
{
    return __bfloat162float(v);
}
inline float to_f32(float v)
{
    return v;
}

inline void check_operand(const char *op, const void *p, unsigned ldm, size_t elem)
{
    if ((uintptr_t)p % 32 != 0) {
        fprintf(stderr, "wmma %s: pointer %p is not 256-bit aligned\n", op, p);
        abort();
    }
    if ((ldm * elem) % 16 != 0) {
        fprintf(stderr, "wmma %s: ldm %u (%zu-byte elements) is not a multiple of 16 bytes\n", op,
                ldm, elem);
        abort();
    }
}

/* Accumulator element e (row-major index in the 16×16 tile) belongs to lane e / 8: the
 * calling lane owns row `row`, columns col … col+7. */
struct owned {
    int row, col;
    owned() : row(rr_host_lane() / 2), col(rr_host_lane() % 2 * 8) {}
};

inline void fill_nan(float (&v)[16][16])
{
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            v[i][j] = NAN;
}

} // namespace detail

template <typename T>
void load_matrix_sync(fragment<matrix_a, 16, 16, 16, T, row_major> &f, const T *p, unsigned ldm)
{
    rr_host_wmma_op(1, p, ldm, 0);
    detail::check_operand("load_matrix_sync(matrix_a)", p, ldm, sizeof(T));
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 16; k++)
            f.v_[i][k] = detail::to_f32(p[i * ldm + k]);
}

template <typename T>
void load_matrix_sync(fragment<matrix_a, 16, 16, 16, T, col_major> &f, const T *p, unsigned ldm)
{
    rr_host_wmma_op(2, p, ldm, 0);
    detail::check_operand("load_matrix_sync(matrix_a)", p, ldm, sizeof(T));
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 16; k++)
            f.v_[i][k] = detail::to_f32(p[k * ldm + i]);
}

template <typename T>
void load_matrix_sync(fragment<matrix_b, 16, 16, 16, T, row_major> &f, const T *p, unsigned ldm)
{
    rr_host_wmma_op(3, p, ldm, 0);
    detail::check_operand("load_matrix_sync(matrix_b)", p, ldm, sizeof(T));
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 16; n++)
            f.v_[k][n] = detail::to_f32(p[k * ldm + n]);
}

template <typename T>
void load_matrix_sync(fragment<matrix_b, 16, 16, 16, T, col_major> &f, const T *p, unsigned ldm)
{
    rr_host_wmma_op(4, p, ldm, 0);
    detail::check_operand("load_matrix_sync(matrix_b)", p, ldm, sizeof(T));
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 16; n++)
            f.v_[k][n] = detail::to_f32(p[n * ldm + k]);
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p,
                             unsigned ldm, layout_t l)
{
    rr_host_wmma_op(5, p, ldm, l);
    detail::check_operand("load_matrix_sync(accumulator)", p, ldm, sizeof(float));
    const detail::owned o;
    detail::fill_nan(f.v_);
    for (int j = o.col; j < o.col + 8; j++)
        f.v_[o.row][j] = l == mem_row_major ? p[o.row * ldm + j] : p[j * ldm + o.row];
}

inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f,
                              unsigned ldm, layout_t l)
{
    rr_host_wmma_op(6, p, ldm, l);
    detail::check_operand("store_matrix_sync", p, ldm, sizeof(float));
    const detail::owned o;
    for (int j = o.col; j < o.col + 8; j++)
        (l == mem_row_major ? p[o.row * ldm + j] : p[j * ldm + o.row]) = f.v_[o.row][j];
}

inline void fill_fragment(fragment<accumulator, 16, 16, 16, float> &f, float v)
{
    rr_host_wmma_op(7, nullptr, 0, 0);
    const detail::owned o;
    detail::fill_nan(f.v_);
    for (int j = o.col; j < o.col + 8; j++)
        f.v_[o.row][j] = v;
}

/* d = a·b + c on this lane's accumulator elements (fp32 products and sums, which is what
 * the tensor cores compute up to summation order). */
template <typename A, typename B>
void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const A &a, const B &b,
              const fragment<accumulator, 16, 16, 16, float> &c)
{
    rr_host_wmma_op(8, nullptr, 0, 0);
    const detail::owned o;
    float r[8];
    for (int j = 0; j < 8; j++) {
        float s = c.v_[o.row][o.col + j];
        for (int k = 0; k < 16; k++)
            s += a.v_[o.row][k] * b.v_[k][o.col + j];
        r[j] = s;
    }
    detail::fill_nan(d.v_); /* d may be c */
    for (int j = 0; j < 8; j++)
        d.v_[o.row][o.col + j] = r[j];
}

} // namespace wmma
} // namespace nvcuda

#endif /* RR_TEST_HOST_MMA_H */
