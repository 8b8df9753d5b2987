/*
 * convert.cu — host-side helpers of the CUDA engine: fp32 ↔ fp16/bf16 conversion (used once
 * at create to upload the weights, and by the tests) and the attention tile list that the
 * engine builds while packing a batch. No kernels here.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels.h"

size_t rr_cuda_dtype_size(rr_dtype dt)
{
    return dt == RR_DTYPE_F32 ? 4 : 2;
}

void rr_cuda_from_f32(const float *src, void *dst, size_t n, rr_dtype dt)
{
    if (dt == RR_DTYPE_BF16) {
        __nv_bfloat16 *o = (__nv_bfloat16 *)dst;
        for (size_t i = 0; i < n; i++)
            o[i] = __float2bfloat16_rn(src[i]);
    } else if (dt == RR_DTYPE_F16) {
        __half *o = (__half *)dst;
        for (size_t i = 0; i < n; i++)
            o[i] = __float2half_rn(src[i]);
    } else {
        float *o = (float *)dst;
        for (size_t i = 0; i < n; i++)
            o[i] = src[i];
    }
}

void rr_cuda_to_f32(const void *src, float *dst, size_t n, rr_dtype dt)
{
    if (dt == RR_DTYPE_BF16) {
        const __nv_bfloat16 *s = (const __nv_bfloat16 *)src;
        for (size_t i = 0; i < n; i++)
            dst[i] = __bfloat162float(s[i]);
    } else if (dt == RR_DTYPE_F16) {
        const __half *s = (const __half *)src;
        for (size_t i = 0; i < n; i++)
            dst[i] = __half2float(s[i]);
    } else {
        const float *s = (const float *)src;
        for (size_t i = 0; i < n; i++)
            dst[i] = s[i];
    }
}

int rr_attention_tiles(const int32_t *cu_seqlens, int n_seq, int cls_only, rr_attn_tile *tiles,
                       int cap)
{
    int n = 0;
    for (int s = 0; s < n_seq; s++) {
        int begin = cu_seqlens[s], len = cu_seqlens[s + 1] - cu_seqlens[s];
        if (cls_only) {
            if (n >= cap) return -1;
            tiles[n++] = (rr_attn_tile){begin, len, begin, 1, s, 0};
            continue;
        }
        for (int q = 0; q < len; q += RR_ATTN_BQ) {
            if (n >= cap) return -1;
            int cnt = len - q < RR_ATTN_BQ ? len - q : RR_ATTN_BQ;
            tiles[n++] = (rr_attn_tile){begin, len, begin + q, cnt, begin + q, 0};
        }
    }
    return n;
}
