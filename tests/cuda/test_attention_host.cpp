/*
 * test_attention_host.cpp — the attention kernel of cuda/attention.cu, its real source,
 * executed on the CPU against rr_attention_cpu, so CI checks the kernel without a GPU.
 *
 * The build turns cuda/attention.cu into a host translation unit (host/gen_host.cmake
 * rewrites only the <<< >>> launch) and compiles it with g++ against host/: stand-ins of
 * mma.sync and ldmatrix (mma_sync.cpp, checked by test_mma_host) built from the PTX ISA's
 * fragment tables, which abort on misaligned row addresses or divergent lanes, and a
 * runtime that runs every block as 128 fibers, one at a time in a fixed order, switching
 * only at barriers, shuffles and warp-wide instructions (see those files). Every case runs
 * twice, threads ascending and descending, so a missing barrier reads stale shared memory
 * in one order or the other, deterministically. This checks what the kernel's source
 * decides: indexing, masking of
 * partial tiles and key blocks, fragment layouts, alignment, barrier placement, the tile
 * list and graph-bucket grids, the online softmax. It says nothing about GPU timing or the
 * device's rounding (ex2.approx, tensor-core summation order); test_cuda_kernels does that
 * on a device.
 *
 * Method as in test_cuda_kernels: inputs drawn in fp32 and rounded to fp16/bf16, the
 * reference fed the same rounded q/k/v + bias, same tolerances. Added here: ctx starts as
 * all-ones bit patterns (NaN in both types), so a row the kernel fails to write is
 * non-finite, and 64 guard rows before and after ctx must stay untouched; the grid always
 * has 5 tiles more than the list, as a CUDA graph bucket launches it; the all-rows cases of
 * length 65 run without QKV bias (the kernel's NULL-bias path).
 * Shapes: lengths 1, 7, 15, 16, 17, 31, 32, 33, 64, 65, 100, 512 (edges of the 8-key and
 * 16-row fragments, 64-key blocks and 64-row tiles) and packs {3,130,1,64,77,200,33}, {1,1,1},
 * {120,119,121}; d_head 32 and 64 with 2 heads; fp16 and bf16; all rows and [CLS] only;
 * and XLM-R lengths with d_head 64: 1000 and {2049, 7} all rows, 8192 [CLS] only.
 * RR_TEST_QUICK=1 (the sanitizer build) keeps 1, 17, 65 and the first and last packs, which
 * between them still cross every fragment, key-block and tile edge.
 * The seed is printed; RR_TEST_SEED=<n> reruns a failure, RR_HOST_ORDER=asc|desc one order.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vector>

#include "cuda_host.h"
#include "kernels.h"
#include "test.h"
extern "C" {
#include "engine/ops.h"
}

namespace
{

constexpr int kGuardRows = 64;
constexpr uint16_t kSentinel = 0xffff; /* NaN as fp16 and as bf16 */
constexpr int kHeads = 2;              /* > 1, so the head offsets are exercised */

struct tol {
    float atol, rtol;
};
/* Same bounds as test_cuda_kernels' tol_attn: fp16, bf16. */
constexpr tol kTol[2] = {{4e-3f, 4e-3f}, {3e-2f, 1.6e-2f}};

uint64_t rng;

float frand(float lo, float hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (float)((rng >> 11) * (1.0 / 9007199254740992.0));
}

/* x ← x rounded to dt and back, as the device holds it. */
void round_to(std::vector<float> &x, rr_dtype dt)
{
    std::vector<uint16_t> tmp(x.size());
    rr_cuda_from_f32(x.data(), tmp.data(), x.size(), dt);
    rr_cuda_to_f32(tmp.data(), x.data(), x.size(), dt);
}

const char *order_name()
{
    return rr_host_get_order() == RR_HOST_ORDER_DESCENDING ? "desc" : "asc";
}

void run_case(const std::vector<int> &lens, int dh, rr_dtype dt, int cls, bool with_bias)
{
    const int n_seq = (int)lens.size(), d = kHeads * dh;
    std::vector<int32_t> cu(n_seq + 1, 0);
    for (int s = 0; s < n_seq; s++)
        cu[s + 1] = cu[s] + lens[s];
    const int n_tok = cu[n_seq], n_out = cls ? n_seq : n_tok;
    const size_t nq = (size_t)n_tok * 3 * d, n_ctx = (size_t)n_out * d;

    std::vector<float> qkv(nq), bias(3 * d, 0.0f);
    for (float &v : qkv)
        v = frand(-1, 1);
    if (with_bias)
        for (float &v : bias)
            v = frand(-0.5f, 0.5f);
    round_to(qkv, dt);
    std::vector<uint16_t> qkv_dev(nq);
    rr_cuda_from_f32(qkv.data(), qkv_dev.data(), nq, dt);
    /* The kernel adds the bias in fp32 and rounds to dt: so does the reference's input. */
    for (size_t i = 0; i < nq; i++)
        qkv[i] += bias[i % (3 * d)];
    round_to(qkv, dt);

    std::vector<rr_attn_tile> tiles(n_tok + n_seq);
    const int32_t n_tiles = rr_attention_tiles(cu.data(), n_seq, cls, tiles.data(), n_tok + n_seq);
    std::vector<int32_t> q_rows(cu.begin(), cu.end() - 1);
    std::vector<float> ref(n_ctx);
    rr_attention_cpu(qkv.data(), cu.data(), n_seq, kHeads, dh, cls ? q_rows.data() : NULL,
                     ref.data(), 1, NULL, 0);

    std::vector<uint16_t> ctx(n_ctx + 2 * (size_t)kGuardRows * d, kSentinel);
    uint16_t *out = ctx.data() + (size_t)kGuardRows * d;
    const cudaError_t e =
        rr_attention_cuda(qkv_dev.data(), with_bias ? bias.data() : NULL, tiles.data(), &n_tiles,
                          n_tiles + 5, kHeads, dh, out, dt, 0);
    int guard_hits = 0;
    for (size_t i = 0; i < (size_t)kGuardRows * d; i++)
        guard_hits += (ctx[i] != kSentinel) + (out[n_ctx + i] != kSentinel);

    std::vector<float> got(n_ctx);
    rr_cuda_to_f32(out, got.data(), n_ctx, dt);
    const tol t = kTol[dt == RR_DTYPE_BF16];
    double worst = 0, worst_excess = -1;
    size_t at = 0, non_finite = 0;
    for (size_t i = 0; i < n_ctx; i++) {
        if (!isfinite(got[i])) {
            non_finite++;
            continue;
        }
        const double diff = fabs((double)got[i] - ref[i]);
        const double excess = diff - (t.atol + t.rtol * fabs(ref[i]));
        if (diff > worst) worst = diff;
        if (excess > worst_excess) worst_excess = excess, at = i;
    }

    char list[64] = "", what[128];
    for (int s = 0; s < n_seq; s++) {
        const size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%d", s ? "," : "", lens[s]);
    }
    snprintf(what, sizeof what, "attention %s %dx%d lens={%s}%s%s [%s]",
             dt == RR_DTYPE_BF16 ? "bf16" : "fp16", kHeads, dh, list, cls ? " cls-only" : "",
             with_bias ? "" : " no-bias", order_name());
    CHECK_MSG(
        n_tiles > 0 && e == cudaSuccess && non_finite == 0 && guard_hits == 0 && worst_excess <= 0,
        "%s: %d tiles, status %d, %zu non-finite, %d guard elements written, max |diff| "
        "%.3g; worst element %zu: kernel %.6g cpu %.6g (atol %g rtol %g)",
        what, n_tiles, (int)e, non_finite, guard_hits, worst, at, got[at], ref[at], t.atol, t.rtol);
    printf("  %-64s max|diff| %.3g\n", what, worst);
}

/* The launcher's preconditions: rejected before any block runs. */
void test_preconditions()
{
    uint16_t buf[64] = {0};
    const rr_attn_tile tile = {0, 1, 0, 1, 0, 0};
    const int32_t one = 1;
    CHECK(rr_attention_cuda(buf, NULL, &tile, &one, 1, 1, 48, buf + 32, RR_DTYPE_F16, 0) ==
          cudaErrorInvalidValue);
    CHECK(rr_attention_cuda(buf, NULL, &tile, &one, 0, 1, 32, buf + 32, RR_DTYPE_F16, 0) ==
          cudaErrorInvalidValue);
    CHECK(rr_attention_cuda(buf, NULL, &tile, &one, 1, 1, 32, buf, RR_DTYPE_F16, 0) ==
          cudaErrorInvalidValue);
    CHECK(rr_attention_cuda(buf, NULL, &tile, &one, 1, 1, 32, buf + 32, RR_DTYPE_F32, 0) ==
          cudaErrorInvalidValue);
}

} // namespace

int main()
{
    const bool quick = getenv("RR_TEST_QUICK") != NULL && strcmp(getenv("RR_TEST_QUICK"), "0");
    const char *env = getenv("RR_TEST_SEED");
    const uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    rng = seed * 2654435761u + 88172645463325252ull;
    printf("test_attention_host: seed %llu (RR_TEST_SEED to repeat)%s\n", (unsigned long long)seed,
           quick ? ", quick" : "");

    test_preconditions();
    /* Every case under both run orders of the block's threads (cuda_host.h), so a read of a
     * lower or a higher thread's shared-memory data without a barrier fails either way;
     * RR_HOST_ORDER=asc or desc runs one (to reproduce a failure). */
    std::vector<unsigned> orders = {RR_HOST_ORDER_ASCENDING, RR_HOST_ORDER_DESCENDING};
    if (getenv("RR_HOST_ORDER")) orders = {rr_host_get_order()};
    const std::vector<std::vector<int>> all = {{1},
                                               {7},
                                               {15},
                                               {16},
                                               {17},
                                               {31},
                                               {32},
                                               {33},
                                               {64},
                                               {65},
                                               {100},
                                               {512},
                                               {3, 130, 1, 64, 77, 200, 33},
                                               {1, 1, 1},
                                               {120, 119, 121}};
    /* Quick: one length per edge class and the packs that mix them. */
    const std::vector<std::vector<int>> few = {
        {1}, {17}, {65}, {3, 130, 1, 64, 77, 200, 33}, {120, 119, 121}};
    for (unsigned order : orders) {
        rr_host_set_order(order);
        for (rr_dtype dt : {RR_DTYPE_F16, RR_DTYPE_BF16})
            for (int dh : {32, 64})
                for (const auto &lens : quick ? few : all)
                    for (int cls = 0; cls < 2; cls++)
                        run_case(lens, dh, dt, cls,
                                 !(cls == 0 && lens.size() == 1 && lens[0] == 65));
        /* XLM-R positions (bge-reranker-v2-m3: 8192 tokens, d_head 64): past BERT's 512, all
         * rows up to 2049 and the [CLS]-only last layer at 8192 (all rows there would take
         * minutes in this emulation). */
        if (!quick)
            for (rr_dtype dt : {RR_DTYPE_F16, RR_DTYPE_BF16}) {
                run_case({1000}, 64, dt, 0, true);
                run_case({2049, 7}, 64, dt, 0, true);
                run_case({8192}, 64, dt, 1, true);
            }
    }
    return test_summary("test_attention_host");
}
