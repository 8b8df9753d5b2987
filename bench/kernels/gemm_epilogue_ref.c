/*
 * gemm_epilogue_ref.c — the CPU references of gemm_epilogue.cu: the same math in double
 * (dot products, bias, erf GELU, residual, LayerNorm with biased variance), so the tests
 * measure the kernel's error against the exact result of its rounded inputs.
 */
#include <math.h>

#include "gemm_epilogue.h"

static double dot(const float *a, const float *b, int n)
{
    double s = 0.0;
    for (int k = 0; k < n; k++)
        s += (double)a[k] * (double)b[k];
    return s;
}

void rr_gemm_bias_gelu_ref(const float *x, const float *w, const float *bias, int n_tok, int n_in,
                           int n_out, double *y)
{
    for (int t = 0; t < n_tok; t++)
        for (int c = 0; c < n_out; c++) {
            const double v = dot(x + (size_t)t * n_in, w + (size_t)c * n_in, n_in) + bias[c];
            y[(size_t)t * n_out + c] = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
        }
}

void rr_gemm_bias_residual_ln_ref(const float *x, const float *w, const float *bias,
                                  const float *residual, const float *gamma, const float *beta,
                                  float eps, int n_tok, int n_in, int n_out, double *y)
{
    for (int t = 0; t < n_tok; t++) {
        double *yr = y + (size_t)t * n_out;
        double mean = 0.0, var = 0.0;
        for (int c = 0; c < n_out; c++) {
            yr[c] = dot(x + (size_t)t * n_in, w + (size_t)c * n_in, n_in) + bias[c] +
                    residual[(size_t)t * n_out + c];
            mean += yr[c];
        }
        mean /= n_out;
        for (int c = 0; c < n_out; c++)
            var += (yr[c] - mean) * (yr[c] - mean);
        const double rstd = 1.0 / sqrt(var / n_out + eps);
        for (int c = 0; c < n_out; c++)
            yr[c] = (yr[c] - mean) * rstd * gamma[c] + beta[c];
    }
}
