/*
 * test_batch_invariance.c — a pair's logit must not depend on its batch: 64 pairs of mixed
 * lengths (1 … 512 tokens, random ids, [CLS] first, type ids 0 then 1; for xlmr-long also 513,
 * 1000 and 2049 tokens with random <pad> ids among them) scored each alone, all together, and
 * all together in reverse order.
 *
 * Bitwise: each output of the CPU engine's GEMMs (gemm_cpu.h) is one chain over k in order,
 * whatever the rows around it, and every other op works row by row, so a pair's arithmetic
 * is the same alone, in any batch, at any position — and with any thread count. (Batch-wide
 * OpenBLAS calls were not invariant: rows rounded differently depending on M and position,
 * ~1e-5 on a logit.) Checked here for f32, int8 and bf16 (where the CPU has AVX512-BF16; the
 * refusal is checked elsewhere): alone == in the batch == in the reversed batch == the batch
 * on a 1-thread engine, bit for bit (under RR_TEST_QUICK int8 and bf16 on tiny-bert-random
 * only). CTest also runs it with RERANK_CPU_ISA=avx2.
 *
 * Also: the engine front rejects malformed batches with RR_E_INVALID. Skips (77) without a
 * test model.
 */
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "util/util.h"

#define N_PAIRS 64

static uint64_t rng = 77;

static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void invariance(const char *dir, rr_dtype dt)
{
    rr_model *m = NULL;
    rr_engine *e = NULL;
    rr_error err = {0};
    CHECK_MSG(rr_model_load(dir, &m, &err) == RR_OK, "%s", err.msg);
    if (!m) return;
    const rr_model_info *in = rr_model_get_info(m);
    int len[N_PAIRS], cu[N_PAIRS + 1], cu_rev[N_PAIRS + 1];
    static const int pick[] = {1, 2, 3, 7, 16, 17, 31, 64, 100, 129, 255, 512};
    /* XLM-R's long positions: sequences past 512 keys take attention's scratch path */
    static const int pick_long[] = {1, 2, 3, 7, 16, 17, 513, 1000, 2049, 129, 255, 512};
    const int xlmr = in->arch == RR_ARCH_XLMR;
    cu[0] = 0;
    for (int i = 0; i < N_PAIRS; i++) {
        len[i] = i < 12 ? (in->max_seq > 512 ? pick_long : pick)[i] : 1 + (int)(next_u32() % 200);
        if (len[i] > in->max_seq) len[i] = in->max_seq;
        cu[i + 1] = cu[i] + len[i];
    }
    int n_tok = cu[N_PAIRS];
    rr_engine_opts o = {.device = -1, .max_batch_tokens = n_tok, .n_threads = 3, .dtype = dt};
    rr_status st = rr_engine_init(m, &o, &e, &err);
    if (dt == RR_DTYPE_BF16 && st == RR_E_UNSUPPORTED) {
        /* no AVX512-BF16 here: the refusal must say so */
        CHECK_MSG(strstr(err.msg, "AVX512-BF16") != NULL, "bf16 refusal: %s", err.msg);
        printf("%s: bf16 skipped (%s)\n", in->arch_name, err.msg);
        rr_model_free(m);
        return;
    }
    CHECK_MSG(st == RR_OK, "%s", err.msg);
    if (!e) {
        rr_model_free(m);
        return;
    }
    int32_t *tok = rr_malloc(n_tok * sizeof *tok), *ty = rr_malloc(n_tok * sizeof *ty);
    int32_t *tok_r = rr_malloc(n_tok * sizeof *tok), *ty_r = rr_malloc(n_tok * sizeof *ty);
    for (int i = 0; i < N_PAIRS; i++) {
        for (int t = 0; t < len[i]; t++) {
            /* XLM-R: any id of its small test vocabulary, <pad> (1) included, whose
             * positions are counted per sequence; one token type */
            tok[cu[i] + t] = xlmr ? (t == 0 ? 0 : 1 + (int32_t)(next_u32() % (in->vocab_size - 1)))
                                  : (t == 0 ? 101 : 1000 + (int32_t)(next_u32() % 20000));
            ty[cu[i] + t] = !xlmr && t > len[i] / 3 ? 1 : 0;
        }
    }
    cu_rev[0] = 0;
    for (int k = 0; k < N_PAIRS; k++) {
        int i = N_PAIRS - 1 - k;
        memcpy(tok_r + cu_rev[k], tok + cu[i], len[i] * sizeof *tok);
        memcpy(ty_r + cu_rev[k], ty + cu[i], len[i] * sizeof *ty);
        cu_rev[k + 1] = cu_rev[k] + len[i];
    }
    float alone[N_PAIRS], all[N_PAIRS], rev[N_PAIRS];
    for (int i = 0; i < N_PAIRS; i++) {
        int32_t c1[2] = {0, len[i]};
        rr_batch b = {.n_seq = 1,
                      .n_tok = len[i],
                      .tokens = tok + cu[i],
                      .type_ids = ty + cu[i],
                      .cu_seqlens = c1};
        CHECK(rr_engine_forward(e, &b, &alone[i]) == RR_OK);
    }
    rr_batch b = {
        .n_seq = N_PAIRS, .n_tok = n_tok, .tokens = tok, .type_ids = ty, .cu_seqlens = cu};
    CHECK(rr_engine_forward(e, &b, all) == RR_OK);
    rr_batch br = {
        .n_seq = N_PAIRS, .n_tok = n_tok, .tokens = tok_r, .type_ids = ty_r, .cu_seqlens = cu_rev};
    CHECK(rr_engine_forward(e, &br, rev) == RR_OK);
    double worst = 0.0;
    int differ = 0;
    for (int i = 0; i < N_PAIRS; i++) {
        float r = rev[N_PAIRS - 1 - i];
        double d1 = fabs((double)alone[i] - all[i]), d2 = fabs((double)alone[i] - r);
        if (d1 > worst) worst = d1;
        if (d2 > worst) worst = d2;
        differ += memcmp(&alone[i], &all[i], sizeof(float)) != 0 ||
                  memcmp(&alone[i], &r, sizeof(float)) != 0;
    }
    CHECK_MSG(differ == 0, "%s: %d of %d pairs not bitwise equal alone vs batched (max %.3g)", dir,
              differ, N_PAIRS, worst);
    {
        /* The same batch on a 1-thread engine: thread count must not change a bit. */
        rr_engine *e1 = NULL;
        rr_engine_opts o1 = {.device = -1, .max_batch_tokens = n_tok, .n_threads = 1, .dtype = dt};
        float one[N_PAIRS];
        CHECK(rr_engine_init(m, &o1, &e1, NULL) == RR_OK);
        CHECK(e1 && rr_engine_forward(e1, &b, one) == RR_OK);
        CHECK_MSG(e1 && memcmp(one, all, sizeof all) == 0,
                  "%s: 1-thread engine differs from the multi-threaded one", dir);
        rr_engine_free(e1);
    }
    printf("%s %s [%s]: %d pairs (%d tokens), alone vs batch vs reversed batch: max |diff| = "
           "%.3g (%d pairs not bitwise equal)\n",
           in->arch_name, rr_dtype_name(dt), rr_engine_describe(e), N_PAIRS, n_tok, worst, differ);
    rr_free(tok);
    rr_free(ty);
    rr_free(tok_r);
    rr_free(ty_r);
    rr_engine_free(e);
    rr_model_free(m);
}

static void expect_invalid(rr_engine *e, const char *what, int n_seq, int n_tok, const int32_t *tok,
                           const int32_t *ty, const int32_t *cu)
{
    float lg[8];
    rr_batch b = {.n_seq = n_seq, .n_tok = n_tok, .tokens = tok, .type_ids = ty, .cu_seqlens = cu};
    rr_status s = rr_engine_forward(e, &b, lg);
    CHECK_MSG(s == RR_E_INVALID, "%s: got %s", what, rr_status_name(s));
}

static void validation(const char *dir)
{
    rr_model *m = NULL;
    rr_engine *e = NULL;
    if (rr_model_load(dir, &m, NULL) != RR_OK) return;
    const rr_model_info *in = rr_model_get_info(m);
    rr_engine_opts o = {.device = -1, .max_batch_tokens = in->max_position, .n_threads = 1};
    rr_error err = {0};
    CHECK(rr_engine_init(m, &o, &e, NULL) == RR_OK);

    int32_t tok[4] = {101, 2000, 102, 102}, ty[4] = {0, 0, 1, 1}, cu[3] = {0, 2, 4};
    float lg[2];
    rr_batch ok = {.n_seq = 2, .n_tok = 4, .tokens = tok, .type_ids = ty, .cu_seqlens = cu};
    CHECK(rr_engine_forward(e, &ok, lg) == RR_OK);

    int32_t bad_tok[4] = {101, in->vocab_size, 102, 102}, neg_tok[4] = {101, -1, 102, 102};
    int32_t bad_ty[4] = {0, 0, in->type_vocab_size, 1};
    int32_t empty[3] = {0, 0, 4}, shrink[3] = {0, 3, 2}, bad0[3] = {1, 2, 4},
            short_end[3] = {0, 2, 3};
    expect_invalid(e, "token id = vocab_size", 2, 4, bad_tok, ty, cu);
    expect_invalid(e, "negative token id", 2, 4, neg_tok, ty, cu);
    expect_invalid(e, "type id = type_vocab_size", 2, 4, tok, bad_ty, cu);
    expect_invalid(e, "empty sequence", 2, 4, tok, ty, empty);
    expect_invalid(e, "non-monotone cu_seqlens", 2, 4, tok, ty, shrink);
    expect_invalid(e, "cu_seqlens[0] != 0", 2, 4, tok, ty, bad0);
    expect_invalid(e, "cu_seqlens[n_seq] != n_tok", 2, 4, tok, ty, short_end);
    expect_invalid(e, "n_seq = 0", 0, 4, tok, ty, cu);
    expect_invalid(e, "NULL tokens", 2, 4, NULL, ty, cu);
    expect_invalid(e, "empty batch with NULL arrays", 0, 0, NULL, NULL, NULL);
    {
        int n = in->max_position + 1;
        int32_t *big = rr_calloc(n, sizeof *big), *bty = rr_calloc(n, sizeof *bty);
        int32_t c1[2] = {0, n}, c2[3] = {0, 1, n};
        expect_invalid(e, "n_tok > max_batch_tokens", 2, n, big, bty, c2);
        expect_invalid(e, "sequence over max_position", 1, n, big, bty, c1);
        rr_free(big);
        rr_free(bty);
    }
    CHECK_MSG(rr_engine_forward(e, NULL, lg) == RR_E_INVALID, "NULL batch");
    CHECK_MSG(rr_engine_forward(e, &ok, NULL) == RR_E_INVALID, "NULL logits");

    rr_engine *e2 = NULL;
    rr_engine_opts small = {.device = -1, .max_batch_tokens = in->max_position - 1};
    CHECK(rr_engine_init(m, &small, &e2, &err) == RR_E_INVALID && e2 == NULL);
    CHECK(strstr(err.msg, "max_batch_tokens") != NULL);
    rr_engine_opts gpu = {.device = 9999};
    rr_status s = rr_engine_init(m, &gpu, &e2, &err);
    CHECK_MSG(s == RR_E_DEVICE && e2 == NULL, "device 9999: %s %s", rr_status_name(s), err.msg);
    CHECK_MSG(strncmp(rr_engine_describe(e), "cpu (1 thread, fp32, ", 21) == 0, "describe: %s",
              rr_engine_describe(e));
    rr_engine_opts f16 = {.device = -1, .dtype = RR_DTYPE_F16};
    s = rr_engine_init(m, &f16, &e2, &err);
    CHECK_MSG(s == RR_E_UNSUPPORTED && e2 == NULL && strstr(err.msg, "f16"), "cpu f16: %s %s",
              rr_status_name(s), err.msg);
    rr_engine_opts bad = {.device = -1, .dtype = (rr_dtype)77};
    CHECK(rr_engine_init(m, &bad, &e2, &err) == RR_E_INVALID && e2 == NULL);
    printf("validation: bad batches rejected; cuda:9999, cpu f16 and an unknown dtype refused\n");
    rr_engine_free(e2);
    rr_engine_free(e);
    rr_model_free(m);
}

int main(void)
{
    /* The ELECTRA encoder is the BERT one; tiny-bert-random adds d_head 64 cheaply; xlmr-long
     * adds XLM-R positions and sequences past 512 tokens. */
    static const char *const names[] = {"minilm-l6-bert", "tiny-bert-random", "xlmr-long"};
    const char *q = getenv("RR_TEST_QUICK");
    const int quick = q && *q && strcmp(q, "0") != 0;
    int ran = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char dir[1024];
        struct stat sb;
        snprintf(dir, sizeof dir, "%s/%s", RR_MODELS_DIR, names[i]);
        if (stat(dir, &sb) != 0) continue;
        invariance(dir, RR_DTYPE_F32);
        /* The reduced precisions round per row, the same code on every model: under
         * RR_TEST_QUICK (the sanitizer build) one model checks them. */
        if (!quick || strcmp(names[i], "tiny-bert-random") == 0) {
            invariance(dir, RR_DTYPE_INT8);
            invariance(dir, RR_DTYPE_BF16);
        }
        if (!ran) validation(dir);
        ran++;
    }
    if (!ran) return test_skip("test_batch_invariance", "no test model (scripts/make_models.py)");
    return test_summary("test_batch_invariance");
}
