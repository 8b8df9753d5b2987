/*
 * test_gemm_epilogue_host.cpp — bench/kernels/gemm_epilogue.cu (GEMM + bias + erf GELU; GEMM +
 * bias + residual + LayerNorm), its real source executed on the CPU through the host block
 * runtime and wmma stand-in of tests/cuda/host/, against the double references of
 * bench/kernels/gemm_epilogue_ref.c.
 *
 * Like test_attention_host, this checks what the source decides (tiling, masking of tail rows
 * and columns, fragment layouts and alignment, barrier placement, the LayerNorm reductions),
 * not device rounding or speed. Inputs are drawn in fp32 and rounded to fp16/bf16; the
 * reference sees the same rounded values.
 *
 * Tolerance, per element, from where the kernel may differ from the exact result of its
 * inputs: one unit in the last place of the output type at |ref| (the final rounding is half
 * of that; the other half absorbs an fp32 error that moves a value across a rounding
 * boundary), plus the fp32 accumulation bound K·2⁻²⁴·S with S = Σ|x·w| + |bias| (+ |residual|),
 * times 1.2 for GELU's slope, and for LayerNorm times rstd·|γ| (×2 for the mean), plus
 * 2⁻²⁰·|ref − β| for the fp32 statistics and an approximate rsqrt on the device.
 * ulp: fp16 2^(e−10) (2⁻²⁴ below 2⁻¹⁴), bf16 2^(e−7), e = floor(log2 |ref|).
 * Also checked: outputs start as all-ones bit patterns (NaN in both types), so a missed
 * element is non-finite; 32 guard rows before and after y stay untouched (no write past
 * n_tok); bitwise batch invariance: the first M rows of a call on M + 37 rows (and of a call
 * on fewer rows) equal those of the M-row call; the launchers' preconditions.
 * Shapes: M 1, 15, 17, 64, 129 × (K 384, 64) × N 384, 1536 (GELU only) and 208 (an odd
 * multiple of 16), fp16 and bf16; LayerNorm also at N 1024 (the widest row). RR_TEST_QUICK=1
 * (the sanitizer build) keeps M 1, 17, 129 and K 64 (K 384 only at N 1536), about half the
 * time. The seed is printed; RR_TEST_SEED=<n> reruns a failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vector>

#include "gemm_epilogue.h"
#include "kernels.h"
#include "test.h"

namespace
{

constexpr int kGuardRows = 32;
constexpr uint16_t kSentinel = 0xffff; /* NaN as fp16 and as bf16 */
constexpr float kEps = 1e-12f;         /* BERT's LayerNorm eps */

uint64_t rng;

float frand(float lo, float hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (float)((rng >> 11) * (1.0 / 9007199254740992.0));
}

std::vector<float> rand_vec(size_t n, float lo, float hi)
{
    std::vector<float> v(n);
    for (float &x : v)
        x = frand(lo, hi);
    return v;
}

/* x rounded to dt: the device copy (bits) and its fp32 value (in place). */
std::vector<uint16_t> to_dev(std::vector<float> &x, rr_dtype dt)
{
    std::vector<uint16_t> bits(x.size());
    rr_cuda_from_f32(x.data(), bits.data(), x.size(), dt);
    rr_cuda_to_f32(bits.data(), x.data(), x.size(), dt);
    return bits;
}

double ulp(double v, rr_dtype dt)
{
    const double a = fabs(v);
    if (dt == RR_DTYPE_F16) {
        if (a < ldexp(1.0, -14)) return ldexp(1.0, -24);
        return ldexp(1.0, (int)floor(log2(a)) - 10);
    }
    if (a == 0.0) return ldexp(1.0, -133);
    return ldexp(1.0, (int)floor(log2(a)) - 7);
}

struct inputs {
    int m, k, n;
    std::vector<float> x, w, bias, res, gamma, beta;
    std::vector<uint16_t> xd, wd, resd;
};

/* m rows; rows of a smaller inputs with the same seed are a prefix (x and residual are
 * drawn last, row by row). */
inputs make_inputs(int m, int k, int n, rr_dtype dt, uint64_t seed)
{
    rng = seed;
    inputs in{m, k, n, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    const float ws = 2.0f / sqrtf((float)k); /* dot products of order 1 */
    in.w = rand_vec((size_t)n * k, -ws, ws);
    in.bias = rand_vec(n, -0.5f, 0.5f);
    in.gamma = rand_vec(n, 0.5f, 1.5f);
    in.beta = rand_vec(n, -0.5f, 0.5f);
    in.x.resize((size_t)m * k);
    in.res.resize((size_t)m * n);
    for (int t = 0; t < m; t++) {
        for (int c = 0; c < k; c++)
            in.x[(size_t)t * k + c] = frand(-1.0f, 1.0f);
        for (int c = 0; c < n; c++)
            in.res[(size_t)t * n + c] = frand(-2.0f, 2.0f);
    }
    in.wd = to_dev(in.w, dt);
    in.xd = to_dev(in.x, dt);
    in.resd = to_dev(in.res, dt);
    return in;
}

/* Runs the kernel into a guarded buffer; returns the m·n output bits (empty on a launch
 * error) and counts guard elements written. */
std::vector<uint16_t> run(const inputs &in, bool ln, rr_dtype dt, cudaError_t *err, int *guard_hits)
{
    const size_t ny = (size_t)in.m * in.n, ng = (size_t)kGuardRows * in.n;
    std::vector<uint16_t> buf(ny + 2 * ng, kSentinel);
    uint16_t *y = buf.data() + ng;
    *err = ln ? rr_gemm_bias_residual_ln_cuda(in.xd.data(), in.wd.data(), in.bias.data(),
                                              in.resd.data(), in.gamma.data(), in.beta.data(), kEps,
                                              in.m, in.k, in.n, y, dt, 0)
              : rr_gemm_bias_gelu_cuda(in.xd.data(), in.wd.data(), in.bias.data(), in.m, in.k, in.n,
                                       y, dt, 0);
    *guard_hits = 0;
    for (size_t i = 0; i < ng; i++)
        *guard_hits += (buf[i] != kSentinel) + (y[ny + i] != kSentinel);
    return std::vector<uint16_t>(y, y + ny);
}

void run_case(int m, int k, int n, rr_dtype dt, bool ln, bool invariance)
{
    const uint64_t seed = rng;
    inputs in = make_inputs(m, k, n, dt, seed);
    cudaError_t e;
    int guard_hits;
    const std::vector<uint16_t> bits = run(in, ln, dt, &e, &guard_hits);
    std::vector<float> got(bits.size());
    rr_cuda_to_f32(bits.data(), got.data(), bits.size(), dt);

    std::vector<double> ref((size_t)m * n);
    if (ln)
        rr_gemm_bias_residual_ln_ref(in.x.data(), in.w.data(), in.bias.data(), in.res.data(),
                                     in.gamma.data(), in.beta.data(), kEps, m, k, n, ref.data());
    else
        rr_gemm_bias_gelu_ref(in.x.data(), in.w.data(), in.bias.data(), m, k, n, ref.data());

    double worst = 0, worst_excess = -1, at_tol = 0;
    size_t at = 0, non_finite = 0;
    std::vector<double> s(n), pre(n);
    for (int t = 0; t < m; t++) {
        /* S per column and, for LayerNorm, the row's exact rstd. */
        double mean = 0, var = 0, smax = 0;
        for (int c = 0; c < n; c++) {
            double a = fabs(in.bias[c]), v = in.bias[c];
            for (int q = 0; q < k; q++) {
                const double p = (double)in.x[(size_t)t * k + q] * in.w[(size_t)c * k + q];
                a += fabs(p);
                v += p;
            }
            if (ln) a += fabs(in.res[(size_t)t * n + c]), v += in.res[(size_t)t * n + c];
            s[c] = a, pre[c] = v, mean += v, smax = fmax(smax, a);
        }
        mean /= n;
        for (int c = 0; c < n; c++)
            var += (pre[c] - mean) * (pre[c] - mean);
        const double rstd = 1.0 / sqrt(var / n + kEps);
        const double acc = ldexp((double)k, -24);
        for (int c = 0; c < n; c++) {
            const size_t i = (size_t)t * n + c;
            if (!isfinite(got[i])) {
                non_finite++;
                continue;
            }
            double tol = ulp(ref[i], dt);
            if (ln)
                tol += acc * 2 * smax * rstd * fabs(in.gamma[c]) +
                       ldexp(fabs(ref[i] - in.beta[c]), -20);
            else
                tol += 1.2 * acc * s[c];
            const double diff = fabs((double)got[i] - ref[i]);
            if (diff > worst) worst = diff;
            if (diff - tol > worst_excess) worst_excess = diff - tol, at = i, at_tol = tol;
        }
    }

    char what[128];
    snprintf(what, sizeof what, "%s %s M=%d K=%d N=%d", ln ? "bias+res+LN" : "bias+GELU",
             dt == RR_DTYPE_BF16 ? "bf16" : "fp16", m, k, n);
    CHECK_MSG(e == cudaSuccess && non_finite == 0 && guard_hits == 0 && worst_excess <= 0,
              "%s: status %d, %zu non-finite, %d guard elements written, max |diff| %.3g; worst "
              "element (%zu, %zu): kernel %.6g ref %.6g (tol %.3g)",
              what, (int)e, non_finite, guard_hits, worst, at / n, at % n,
              non_finite ? 0.0 : got[at], ref[at], at_tol);

    if (invariance) {
        /* The same first rows inside a larger and a smaller call: bitwise equal. */
        for (int m2 : {m + 37, (m + 1) / 2}) {
            if (m2 == m) continue;
            const inputs in2 = make_inputs(m2, k, n, dt, seed);
            int gh2;
            const std::vector<uint16_t> bits2 = run(in2, ln, dt, &e, &gh2);
            const int common = m < m2 ? m : m2;
            const bool same =
                e == cudaSuccess && gh2 == 0 &&
                memcmp(bits.data(), bits2.data(), (size_t)common * n * sizeof(uint16_t)) == 0;
            CHECK_MSG(same, "%s: rows 0..%d differ from a call on %d rows (status %d)", what,
                      common - 1, m2, (int)e);
        }
    }
    printf("  %-44s max|diff| %.3g\n", what, worst);
    rng = seed * 6364136223846793005ull + 1442695040888963407ull;
}

/* The launchers' preconditions: rejected before any block runs. */
void test_preconditions()
{
    alignas(16) static uint16_t x[64 * 32], w[64 * 32], y[64 * 64], r[64 * 64];
    static float b[64], g[64], be[64];
    const rr_dtype h = RR_DTYPE_F16;
    CHECK(rr_gemm_bias_gelu_cuda(x, w, b, 2, 32, 32, y, h, 0) == cudaSuccess);
    CHECK(rr_gemm_bias_gelu_cuda(x, w, b, 2, 48, 32, y, h, 0) == cudaErrorInvalidValue);
    CHECK(rr_gemm_bias_gelu_cuda(x, w, b, 2, 32, 40, y, h, 0) == cudaErrorInvalidValue);
    CHECK(rr_gemm_bias_gelu_cuda(x, w, b, 0, 32, 32, y, h, 0) == cudaErrorInvalidValue);
    CHECK(rr_gemm_bias_gelu_cuda(x, w, b, 2, 32, 32, y + 1, h, 0) == cudaErrorInvalidValue);
    CHECK(rr_gemm_bias_gelu_cuda(x, w, b, 2, 32, 32, x, h, 0) == cudaErrorInvalidValue);
    CHECK(rr_gemm_bias_gelu_cuda(x, w, b, 2, 32, 32, y, RR_DTYPE_F32, 0) == cudaErrorInvalidValue);
    CHECK(rr_gemm_bias_residual_ln_cuda(x, w, b, r, g, be, kEps, 2, 32, 32, y, h, 0) ==
          cudaSuccess);
    CHECK(rr_gemm_bias_residual_ln_cuda(x, w, b, r, g, be, kEps, 2, 32, 1040, y, h, 0) ==
          cudaErrorInvalidValue);
    CHECK(rr_gemm_bias_residual_ln_cuda(x, w, b, r, g, be, kEps, 2, 32, 32, w, h, 0) ==
          cudaErrorInvalidValue);
    CHECK(rr_gemm_bias_residual_ln_cuda(x, w, b, NULL, g, be, kEps, 2, 32, 32, y, h, 0) ==
          cudaErrorInvalidValue);
}

} // namespace

int main()
{
    const bool quick = getenv("RR_TEST_QUICK") != NULL && strcmp(getenv("RR_TEST_QUICK"), "0");
    const char *env = getenv("RR_TEST_SEED");
    const uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    printf("test_gemm_epilogue_host: seed %llu (RR_TEST_SEED to repeat)%s\n",
           (unsigned long long)seed, quick ? ", quick" : "");
    test_preconditions();
    rng = seed * 2654435761u + 88172645463325252ull;

    const std::vector<int> ms =
        quick ? std::vector<int>{1, 17, 129} : std::vector<int>{1, 15, 17, 64, 129};
    for (rr_dtype dt : {RR_DTYPE_F16, RR_DTYPE_BF16}) {
        for (int m : ms)
            for (int k : {384, 64}) {
                if (quick && k == 384) continue; /* K 384 stays in the FFN1-width case */
                /* Invariance once per M and type (larger calls cost the most here). */
                run_case(m, k, 384, dt, false, k == 64);
                run_case(m, k, 208, dt, false, false);
                run_case(m, k, 384, dt, true, k == 64);
                run_case(m, k, 208, dt, true, false);
            }
        /* The FFN1 width (12 column tiles) and the widest LayerNorm row (NF 16). */
        run_case(17, 384, 1536, dt, false, false);
        run_case(129, 64, 1536, dt, false, true);
        run_case(17, 64, 1024, dt, true, true);
    }
    return test_summary("test_gemm_epilogue_host");
}
