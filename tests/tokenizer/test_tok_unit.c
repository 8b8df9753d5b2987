/*
 * test_tok_unit.c — tokenizer unit tests that need no model: longest_first truncation (HF's
 * own worked example + brute-force properties), rr_pair_build layout and type ids,
 * keep_last / cap windows, concurrent encodes, invalid UTF-8, the request path allocating nothing,
 * load errors (missing folder/files, bad JSON, non-WordPiece models) and allocation-failure
 * cleanup. Tokenizers are built in a temporary folder from a small synthetic vocabulary, written
 * both as vocab.txt and as tokenizer.json, which must tokenize identically.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rerank.h"
#include "test.h"
#include "tokenizer/tokenizer.h"
#include "util/util.h"

static const char *const vocab[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the",   "quick", "brown", "fox",
    "jump",  "##s",   "##ed",  "##ing", ",",      ".",     "'",     "-",     "a",
    "b",     "c",     "##a",   "##b",   "##c",    "e",     "i",     "o",     "u",
    "x",     "y",     "z",     "##x",   "##y",    "##z",   "中",    "文",    "$",
    "10",    "€",     "don",   "t",     "mail",   "naive", "ecole", "##ole", "ec",
};
#define N_VOCAB ((int)(sizeof vocab / sizeof vocab[0]))

/* Texts exercising every stage; tokenizer.json and vocab.txt must agree on all of them. */
static const char *const texts[] = {
    "The quick brown fox jumps, jumped; jumping.",
    "don't e-mail x[SEP]y [CLS]z [sep] [MASK][MASK]",
    "ÉCOLE naïve İ ΟΔΟΣ straße 中文10€ $10",
    "a\xe2\x80\x8b"
    "b a\xc2\xa0"
    "b a\x0c"
    "b a\xc2\x85"
    "b \xef\xbf\xbd"
    "z",
    "xyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzx"
    "yzxyzxyzxyzxy",
    "",
    "   ",
};
#define N_TEXTS ((int)(sizeof texts / sizeof texts[0]))

static char tmp_root[64];

static int write_file(const char *dir, const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(content, f);
    return fclose(f);
}

static void make_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp_root, name);
    if (mkdir(out, 0700) != 0) fprintf(stderr, "cannot create %s\n", out);
}

static void write_vocab_txt(const char *dir)
{
    static char buf[4096];
    size_t n = 0;
    for (int i = 0; i < N_VOCAB; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\n", vocab[i]);
    write_file(dir, "vocab.txt", buf);
}

/* A tokenizer.json as the HF library serializes a BERT tokenizer, with `model_type` and an
 * optional broken tail to make it invalid. */
static void write_tokenizer_json(const char *dir, const char *model_type, int broken)
{
    static char buf[16384];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n,
                          "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
                          "\"added_tokens\":[");
    for (int i = 0; i < 5; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "%s{\"id\":%d,\"content\":\"%s\",\"single_word\":false,"
                              "\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
                              "\"special\":true}",
                              i ? "," : "", i, vocab[i]);
    n += (size_t)snprintf(
        buf + n, sizeof buf - n,
        "],\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,"
        "\"handle_chinese_chars\":true,\"strip_accents\":null,\"lowercase\":true},"
        "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
        "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[],\"pair\":["
        "{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\","
        "\"type_id\":0}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}},{\"Sequence\":"
        "{\"id\":\"B\",\"type_id\":1}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":1}}],"
        "\"special_tokens\":{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[2],\"tokens\":[\"[CLS]\"]},"
        "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}},"
        "\"decoder\":null,\"model\":{\"type\":\"%s\",\"unk_token\":\"[UNK]\","
        "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100,\"vocab\":{",
        model_type);
    for (int i = 0; i < N_VOCAB; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"%s\":%d", i ? "," : "", vocab[i], i);
    n += (size_t)snprintf(buf + n, sizeof buf - n, broken ? "}}" : "}}}");
    write_file(dir, "tokenizer.json", buf);
}

static rr_tokenizer *load_ok(const char *dir)
{
    rr_tokenizer *t = NULL;
    rr_error err = {0};
    rr_status s = rr_tokenizer_load(dir, &t, &err);
    CHECK_MSG(s == RR_OK, "load %s: %s %s", dir, rr_status_name(s), err.msg);
    return t;
}

static void test_truncation_table(void)
{
    /* HF's worked example (spec §2.6), T = 512 - 3 = 509 */
    static const int rows[][4] = {{10, 600, 10, 499},   {600, 10, 499, 10},   {200, 400, 200, 309},
                                  {255, 300, 254, 255}, {300, 300, 254, 255}, {400, 300, 255, 254},
                                  {600, 700, 254, 255}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int a = -1, b = -1;
        rr_truncate_longest_first(rows[i][0], rows[i][1], 512, &a, &b);
        CHECK_MSG(a == rows[i][2] && b == rows[i][3], "(%d, %d) -> (%d, %d), want (%d, %d)",
                  rows[i][0], rows[i][1], a, b, rows[i][2], rows[i][3]);
    }
}

static void test_truncation_properties(void)
{
    int bad = 0;
    for (int m = 3; m <= 40; m++) {
        int budget = m - 3;
        for (int a = 0; a <= 45; a++) {
            for (int b = 0; b <= 45; b++) {
                int ka = -1, kb = -1, sa = -1, sb = -1;
                rr_truncate_longest_first(a, b, m, &ka, &kb);
                rr_truncate_longest_first(b, a, m, &sb, &sa);
                int ok = ka >= 0 && kb >= 0 && ka <= a && kb <= b; /* never grow */
                if (a + b <= budget)
                    ok = ok && ka == a && kb == b; /* fits: untouched */
                else
                    ok = ok && ka + kb == budget; /* the budget is used exactly */
                /* the longer side keeps at least as much as the shorter one */
                if (a + b > budget) ok = ok && (a > b ? ka >= kb : kb >= ka);
                /* swapping the inputs swaps the result, except that on a tie B is favoured */
                if (a != b) ok = ok && sa == ka && sb == kb;
                if (a == b && a + b > budget) ok = ok && kb - ka == budget % 2;
                /* a side no longer than half the budget is never cut */
                if (a <= budget / 2) ok = ok && ka == a;
                if (b <= budget / 2) ok = ok && kb == b;
                if (!ok && bad++ < 5)
                    fprintf(stderr, "FAIL truncation m=%d a=%d b=%d -> %d %d\n", m, a, b, ka, kb);
            }
        }
    }
    CHECK(bad == 0);
}

static void test_pair_build(const rr_tokenizer *t)
{
    int32_t q[6] = {10, 11, 12, 13, 14, 15}, d[9] = {20, 21, 22, 23, 24, 25, 26, 27, 28};
    int32_t ids[64], types[64];
    int32_t cls = rr_tokenizer_cls_id(t), sep = rr_tokenizer_sep_id(t);

    int n = rr_pair_build(t, q, 6, 6, d, 9, 9, 64, 0, 0, ids, types);
    CHECK(n == 6 + 9 + 3);
    int ok = n == 18 && ids[0] == cls && ids[7] == sep && ids[17] == sep;
    for (int i = 0; ok && i < 6; i++)
        ok = ids[1 + i] == q[i];
    for (int i = 0; ok && i < 9; i++)
        ok = ids[8 + i] == d[i];
    for (int i = 0; ok && i < 18; i++)
        ok = types[i] == (i >= 8);
    CHECK_MSG(ok, "pair layout [CLS] q [SEP] d [SEP] / types 0..0 1..1");

    /* too long without truncation */
    CHECK(rr_pair_build(t, q, 6, 6, d, 9, 9, 17, 0, 0, ids, types) == -1);
    CHECK(rr_pair_build(t, q, 6, 6, d, 9, 9, 2, 1, 0, ids, types) == -1);

    /* truncation to every length, both directions, against rr_truncate_longest_first */
    for (int m = 3; m <= 18; m++) {
        for (int keep_last = 0; keep_last <= 1; keep_last++) {
            int ka, kb;
            rr_truncate_longest_first(6, 9, m, &ka, &kb);
            n = rr_pair_build(t, q, 6, 6, d, 9, 9, m, 1, keep_last, ids, types);
            ok = n == ka + kb + 3 && n <= m && ids[0] == cls && ids[ka + 1] == sep &&
                 ids[n - 1] == sep;
            for (int i = 0; ok && i < ka; i++)
                ok = ids[1 + i] == q[keep_last ? 6 - ka + i : i];
            for (int i = 0; ok && i < kb; i++)
                ok = ids[ka + 2 + i] == d[keep_last ? 9 - kb + i : i];
            for (int i = 0; ok && i < n; i++)
                ok = types[i] == (i >= ka + 2);
            CHECK_MSG(ok, "truncated pair m=%d keep_last=%d", m, keep_last);
        }
    }
    /* only the surviving tokens stored (keep_last: the stored ones are the last) */
    n = rr_pair_build(t, q + 3, 3, 6, d + 5, 4, 9, 10, 1, 1, ids, types);
    CHECK(n == 10 && ids[1] == q[3] && ids[3] == q[5] && ids[5] == d[5] && ids[8] == d[8]);
    CHECK(rr_pair_build(t, q, 2, 6, d, 9, 9, 10, 1, 0, ids, types) == -1);

    /* empty segments */
    n = rr_pair_build(t, q, 0, 0, d, 0, 0, 3, 1, 0, ids, types);
    CHECK(n == 3 && ids[0] == cls && ids[1] == sep && ids[2] == sep && types[2] == 1);
}

static void test_windows(const rr_tokenizer *t)
{
    static char text[1 << 16];
    static int32_t full[1 << 16], part[64];
    size_t len = 0;
    for (int i = 0; len + 200 < sizeof text; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s ", texts[i % N_TEXTS]);
    int n_full = -1;
    CHECK(rr_tokenizer_encode(t, text, len, 0, full, 1 << 16, &n_full) == RR_OK);
    CHECK(n_full > 1000);
    for (int cap = 0; cap <= 7; cap++) {
        for (int keep_last = 0; keep_last <= 1; keep_last++) {
            int n = -1;
            for (int i = 0; i < 64; i++)
                part[i] = -7;
            CHECK(rr_tokenizer_encode(t, text, len, keep_last, part, cap, &n) == RR_OK);
            int k = cap < n_full ? cap : n_full;
            int ok = n == n_full && memcmp(part, keep_last ? full + n_full - k : full,
                                           sizeof *part * (size_t)k) == 0;
            for (int i = k; ok && i < 64; i++)
                ok = part[i] == -7; /* nothing past cap */
            CHECK_MSG(ok, "window cap=%d keep_last=%d", cap, keep_last);
        }
    }
    /* cap larger than the text: all tokens, both ways */
    int n = -1;
    CHECK(rr_tokenizer_encode(t, "the fox", 7, 1, part, 64, &n) == RR_OK && n == 2);
    int n2 = -1;
    rr_tokenizer_encode(t, "the fox", 7, 0, full, 64, &n2);
    CHECK(n2 == 2 && part[0] == full[0] && part[1] == full[1]);

    /* the request path allocates nothing */
    long before = rr_alloc_count();
    rr_tokenizer_encode(t, text, len, 1, part, 5, &n);
    rr_tokenizer_encode(t, texts[2], strlen(texts[2]), 0, part, 64, &n);
    CHECK(rr_alloc_count() == before);
}

/* A loaded tokenizer is shared by all threads: concurrent encodes of the same long text, with
 * different caps and directions, each equal their single-threaded result. */
typedef struct thread_job {
    const rr_tokenizer *t;
    const char *text;
    size_t len;
    const int32_t *full;
    int n_full;
    int ok;
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *j = arg;
    int32_t part[64];
    j->ok = 1;
    for (int round = 0; round < 50; round++) {
        int cap = 1 + round % 64, keep_last = round & 1, n = -1;
        int k = cap < j->n_full ? cap : j->n_full;
        rr_tokenizer_encode(j->t, j->text, j->len, keep_last, part, cap, &n);
        j->ok = j->ok && n == j->n_full &&
                memcmp(part, keep_last ? j->full + j->n_full - k : j->full,
                       sizeof *part * (size_t)k) == 0;
    }
    return NULL;
}

static void test_threads(const rr_tokenizer *t)
{
    static char text[1 << 15];
    static int32_t full[1 << 15];
    size_t len = 0;
    for (int i = 0; len + 200 < sizeof text; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s ", texts[(i * 3) % N_TEXTS]);
    int n_full = -1;
    rr_tokenizer_encode(t, text, len, 0, full, 1 << 15, &n_full);
    pthread_t th[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){t, text, len, full, n_full, 0};
        pthread_create(&th[i], NULL, thread_main, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(jobs[i].ok, "thread %d", i);
    }
}

static void test_utf8(const rr_tokenizer *t)
{
    static const char *const bad[] = {
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\x80",     /* overlong 3-byte */
        "\xe0\x9f\xbf",     /* overlong 3-byte (U+07FF) */
        "\xf0\x80\x80\x80", /* overlong 4-byte */
        "\xf0\x8f\xbf\xbf", /* overlong 4-byte (U+FFFF) */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xed\xbf\xbf",     /* surrogate U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80", /* invalid lead */
        "\xff",             /* invalid byte */
        "\x80",             /* stray continuation */
        "abc\xe2\x82",      /* truncated at the end */
        "\xe2\x82"
        "abc",          /* truncated in the middle */
        "\xf0\x9f\x98", /* truncated 4-byte */
        "ok \xc3",      /* truncated 2-byte */
    };
    int32_t ids[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int k = 0; k < 16; k++)
            ids[k] = -7;
        int n = -7;
        rr_status s = rr_tokenizer_encode(t, bad[i], strlen(bad[i]), 0, ids, 16, &n);
        int untouched = n == -7;
        for (int k = 0; k < 16; k++)
            untouched = untouched && ids[k] == -7;
        CHECK_MSG(s == RR_E_UTF8 && untouched, "bad UTF-8 #%zu: %s", i, rr_status_name(s));
    }
    /* valid edge cases: U+0000 (a character, deleted), U+10FFFF, U+FFFF, U+E000 */
    static const char ok_text[] = "a\0b \xf4\x8f\xbf\xbf \xef\xbf\xbf \xee\x80\x80";
    int n = -1;
    CHECK(rr_tokenizer_encode(t, ok_text, sizeof ok_text - 1, 0, ids, 16, &n) == RR_OK && n > 0);
}

/* vocab.txt (+ config) and tokenizer.json describing the same tokenizer give the same ids. */
static void test_same_ids(const rr_tokenizer *a, const rr_tokenizer *b)
{
    CHECK(rr_tokenizer_cls_id(a) == rr_tokenizer_cls_id(b));
    CHECK(rr_tokenizer_sep_id(a) == rr_tokenizer_sep_id(b));
    CHECK(rr_tokenizer_pad_id(a) == rr_tokenizer_pad_id(b));
    CHECK(rr_tokenizer_unk_id(a) == rr_tokenizer_unk_id(b));
    CHECK(rr_tokenizer_vocab_size(a) == rr_tokenizer_vocab_size(b));
    for (int i = 0; i < N_TEXTS; i++) {
        int32_t x[128], y[128];
        int nx = -1, ny = -2;
        rr_tokenizer_encode(a, texts[i], strlen(texts[i]), 0, x, 128, &nx);
        rr_tokenizer_encode(b, texts[i], strlen(texts[i]), 0, y, 128, &ny);
        CHECK_MSG(nx == ny && memcmp(x, y, sizeof *x * (size_t)(nx < 128 ? nx : 128)) == 0,
                  "text %d differs between vocab.txt and tokenizer.json", i);
    }
}

static void expect_error(const char *dir, rr_status want, const char *needle)
{
    rr_tokenizer *t = (rr_tokenizer *)&t;
    rr_error err = {0};
    rr_status s = rr_tokenizer_load(dir, &t, &err);
    CHECK_MSG(s == want && t == NULL && strstr(err.msg, needle) != NULL,
              "load %s: got %s '%s', want %s naming '%s'", dir, rr_status_name(s), err.msg,
              rr_status_name(want), needle);
    if (s == RR_OK) rr_tokenizer_free(t);
}

static void test_load_errors(void)
{
    char dir[256];
    char missing[300];
    snprintf(missing, sizeof missing, "%s/does-not-exist", tmp_root);
    expect_error(missing, RR_E_IO, "does-not-exist");

    make_dir(dir, sizeof dir, "empty");
    expect_error(dir, RR_E_IO, "vocab.txt");

    make_dir(dir, sizeof dir, "badjson");
    write_tokenizer_json(dir, "WordPiece", 1);
    expect_error(dir, RR_E_FORMAT, "tokenizer.json");

    make_dir(dir, sizeof dir, "bpe");
    write_tokenizer_json(dir, "BPE", 0);
    expect_error(dir, RR_E_UNSUPPORTED, "BPE");

    make_dir(dir, sizeof dir, "badconfig");
    write_vocab_txt(dir);
    write_file(dir, "tokenizer_config.json", "{\"do_lower_case\": tru");
    expect_error(dir, RR_E_FORMAT, "tokenizer_config.json");

    make_dir(dir, sizeof dir, "nounk");
    write_file(dir, "vocab.txt", "[CLS]\n[SEP]\nthe\n");
    expect_error(dir, RR_E_FORMAT, "[UNK]");
}

/* Every allocation of rr_tokenizer_load failing in turn: a clean RR_E_NOMEM each time (the
 * sanitizer / valgrind runs check that nothing leaks), then success. */
static void test_alloc_failures(const char *dir)
{
    int n_fail = 0;
    for (long k = 0; k < 10000; k++) {
        rr_tokenizer *t = NULL;
        rr_error err = {0};
        rr_alloc_fail_after(k);
        rr_status s = rr_tokenizer_load(dir, &t, &err);
        rr_alloc_fail_after(-1);
        if (s == RR_OK) {
            rr_tokenizer_free(t);
            break;
        }
        n_fail++;
        CHECK_MSG(s == RR_E_NOMEM && t == NULL, "failure at allocation %ld: %s (%s)", k,
                  rr_status_name(s), err.msg);
    }
    CHECK(n_fail > 0);
}

int main(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/rr_tok_unitXXXXXX");
    if (!mkdtemp(tmp_root)) return test_skip("test_tok_unit", "cannot create a temporary folder");

    test_truncation_table();
    test_truncation_properties();

    char dir_txt[256], dir_json[256];
    make_dir(dir_txt, sizeof dir_txt, "vocab_txt");
    write_vocab_txt(dir_txt);
    write_file(dir_txt, "tokenizer_config.json",
               "{\"do_lower_case\": true, \"model_max_length\": 512}");
    make_dir(dir_json, sizeof dir_json, "tokenizer_json");
    write_tokenizer_json(dir_json, "WordPiece", 0);
    write_file(dir_json, "tokenizer_config.json", "{\"model_max_length\": 1e30}");

    rr_tokenizer *tt = load_ok(dir_txt), *tj = load_ok(dir_json);
    if (tt && tj) {
        CHECK(rr_tokenizer_model_max_length(tt) == 512);
        CHECK(rr_tokenizer_model_max_length(tj) == 0);
        CHECK(rr_tokenizer_vocab_size(tj) == N_VOCAB);
        test_same_ids(tt, tj);
        test_pair_build(tj);
        test_windows(tj);
        test_utf8(tj);
        test_threads(tj);
    }
    rr_tokenizer_free(tt);
    rr_tokenizer_free(tj);

    test_load_errors();
    test_alloc_failures(dir_json);
    test_alloc_failures(dir_txt);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return test_summary("test_tok_unit");
}
