/*
 * test_tok_xlmr.c — the Unigram (XLM-RoBERTa) tokenizer against Hugging Face, through the
 * golden files of tests/golden/make_golden_xlmr.py and make_unigram_ties.py, under both
 * pipelines rerankd runs (src/tokenizer/tokenizer_load.c: unigram_pipeline):
 *   - transformers (the default): transformers >= 5's rebuilt XLMRobertaTokenizer, what
 *     sentence-transformers' CrossEncoder tokenizes with — `ids_transformers` where the
 *     golden line has it, else `ids`;
 *   - file (RERANK_TOKENIZER_PIPELINE=file): tokenizer.json as written, as the tokenizers
 *     library and TEI run it — `ids`, and `offsets` (code points) through
 *     rr_tokenizer_encode_offsets.
 * Checked:
 *   - xlmr_tokens.jsonl: every text's ids exactly; each text also capped at 7 tokens both
 *     ways (keep_last) equals the head / tail of the full ids;
 *   - xlmr_pair_tokens.jsonl: rr_tokenizer_encode + rr_pair_build (longest_first, the line's
 *     max_length) gives input_ids exactly, `<s> q </s> </s> d </s>`, type ids all 0;
 *   - unigram_ties.json: near-tie Viterbi paths that only serde_json's double rounding of
 *     the scores (file) or Python's correct rounding (transformers) resolve as HF does;
 *   - after one pass, encoding allocates nothing (the per-thread workspace is reused);
 *   - malformed Unigram files are refused with the class and a message naming the field;
 *   - added_tokens listings HF accepts: an empty token, a token listed twice (last flags win).
 * Skips (77) when models/xlmr-small or the golden files are absent.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rerank.h"
#include "test.h"
#include "golden_jsonl.h"
#include "tokenizer/tokenizer.h"
#include "util/util.h"

#define MAX_IDS (1 << 20)
#define STR_CAP (16u << 20)

static char *sbuf, *qtext;
static int32_t *got, *want, *offs, *part, *pair_ids, *pair_types, *qbuf, *dbuf;

static int readable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static rr_tokenizer *load_with(const char *dir, const char *pipeline)
{
    setenv("RERANK_TOKENIZER_PIPELINE", pipeline, 1);
    rr_tokenizer *t = NULL;
    rr_error err = {0};
    rr_status s = rr_tokenizer_load(dir, &t, &err);
    unsetenv("RERANK_TOKENIZER_PIPELINE");
    CHECK_MSG(s == RR_OK, "load %s (%s): %s", dir, pipeline, err.msg);
    return t;
}

/* Code-point offset of byte b in s. */
static int cp_at(const char *s, int b)
{
    int n = 0;
    for (int i = 0; i < b; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static void check_tokens(const rr_tokenizer *t, const char *path, int transformers)
{
    size_t len = 0;
    char *buf = slurp(path, &len);
    int n = 0, ok = 0, ok_off = 0, ok_cap = 0;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *o = cJSON_Parse(line);
        long tl = json_string(line, "text", sbuf, STR_CAP);
        const cJSON *tf = cJSON_GetObjectItemCaseSensitive(o, "ids_transformers");
        const cJSON *wid = transformers && tf ? tf : cJSON_GetObjectItemCaseSensitive(o, "ids");
        int nw = json_ids(wid, want, MAX_IDS);
        CHECK_MSG(o && tl >= 0 && nw >= 0, "%s line %d malformed", path, n + 1);
        if (o && tl >= 0 && nw >= 0) {
            int ng = -1;
            rr_status st =
                transformers
                    ? rr_tokenizer_encode(t, sbuf, (size_t)tl, 0, got, MAX_IDS, &ng)
                    : rr_tokenizer_encode_offsets(t, sbuf, (size_t)tl, got, offs, MAX_IDS, &ng);
            int good = st == RR_OK && ng == nw && memcmp(got, want, sizeof *got * (size_t)nw) == 0;
            ok += good;
            if (!good) {
                int i = 0;
                while (i < ng && i < nw && got[i] == want[i])
                    i++;
                fprintf(stderr, "  %s line %d (%s): got %d ids, want %d, first difference at %d\n",
                        path, n + 1, transformers ? "transformers" : "file", ng, nw, i);
            }
            /* offsets (file pipeline; the golden offsets are code points) */
            const cJSON *wo = cJSON_GetObjectItemCaseSensitive(o, "offsets");
            if (!transformers && good && cJSON_IsArray(wo) && cJSON_GetArraySize(wo) == nw) {
                int og = 1;
                for (int k = 0; og && k < nw; k++) {
                    const cJSON *p = cJSON_GetArrayItem(wo, k);
                    og = cp_at(sbuf, offs[2 * k]) == cJSON_GetArrayItem(p, 0)->valueint &&
                         cp_at(sbuf, offs[2 * k + 1]) == cJSON_GetArrayItem(p, 1)->valueint;
                }
                ok_off += og;
                if (!og) fprintf(stderr, "  %s line %d: offsets differ\n", path, n + 1);
            } else if (!transformers) {
                ok_off += good;
            }
            /* capped both ways: the head and the tail of the full ids */
            int nh = -1, ntl = -1;
            rr_status s1 = rr_tokenizer_encode(t, sbuf, (size_t)tl, 0, part, 7, &nh);
            int head = s1 == RR_OK && nh == nw &&
                       memcmp(part, want, sizeof *part * (size_t)(nw < 7 ? nw : 7)) == 0;
            rr_status s2 = rr_tokenizer_encode(t, sbuf, (size_t)tl, 1, part, 7, &ntl);
            int k = nw < 7 ? nw : 7;
            int tail =
                s2 == RR_OK && ntl == nw && memcmp(part, want + (nw - k), sizeof *part * k) == 0;
            ok_cap += head && tail;
        }
        cJSON_Delete(o);
        n++;
        line = nl ? nl + 1 : NULL;
    }
    printf("%s (%s): %d/%d texts exact, %d/%d capped both ways", path,
           transformers ? "transformers" : "file", ok, n, ok_cap, n);
    if (!transformers) printf(", offsets %d/%d", ok_off, n);
    printf("\n");
    CHECK_MSG(n > 0 && ok == n, "%d of %d texts differ", n - ok, n);
    CHECK_MSG(ok_cap == n, "%d capped encodings differ", n - ok_cap);
    if (!transformers) CHECK_MSG(ok_off == n, "%d texts' offsets differ", n - ok_off);
    free(buf);
}

static void check_pairs(const rr_tokenizer *small, const rr_tokenizer *lng, const char *path,
                        int transformers)
{
    size_t len = 0;
    char *buf = slurp(path, &len);
    int n = 0, ok = 0;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *o = cJSON_Parse(line);
        long ql = json_string(line, "query", qtext, STR_CAP);
        long dl = json_string(line, "doc", sbuf, STR_CAP);
        const cJSON *ml = cJSON_GetObjectItemCaseSensitive(o, "max_length");
        const cJSON *tf = cJSON_GetObjectItemCaseSensitive(o, "input_ids_transformers");
        const cJSON *wid =
            transformers && tf ? tf : cJSON_GetObjectItemCaseSensitive(o, "input_ids");
        int nw = json_ids(wid, want, MAX_IDS);
        int max_length = cJSON_IsNumber(ml) ? ml->valueint : 0;
        CHECK_MSG(o && ql >= 0 && dl >= 0 && nw > 0 && max_length >= 4, "%s line %d malformed",
                  path, n + 1);
        if (o && ql >= 0 && dl >= 0 && nw > 0 && max_length >= 4) {
            const rr_tokenizer *t = max_length > 512 ? lng : small;
            int qn = 0, dn = 0;
            rr_status s1 = rr_tokenizer_encode(t, qtext, (size_t)ql, 0, qbuf, max_length, &qn);
            rr_status s2 = rr_tokenizer_encode(t, sbuf, (size_t)dl, 0, dbuf, max_length, &dn);
            int np = -1;
            if (s1 == RR_OK && s2 == RR_OK)
                np = rr_pair_build(t, qbuf, qn < max_length ? qn : max_length, qn, dbuf,
                                   dn < max_length ? dn : max_length, dn, max_length, 1, 0,
                                   pair_ids, pair_types);
            int good = np == nw && memcmp(pair_ids, want, sizeof *want * (size_t)nw) == 0;
            for (int i = 0; good && i < np; i++)
                good = pair_types[i] == 0;
            ok += good;
            if (!good)
                fprintf(stderr, "  %s line %d (%s): pair of %d ids, want %d\n", path, n + 1,
                        transformers ? "transformers" : "file", np, nw);
        }
        cJSON_Delete(o);
        n++;
        line = nl ? nl + 1 : NULL;
    }
    printf("%s (%s): %d/%d pairs exact\n", path, transformers ? "transformers" : "file", ok, n);
    CHECK_MSG(n > 0 && ok == n, "%d of %d pairs differ", n - ok, n);
    free(buf);
}

/* unigram_ties.json: a tokenizer.json text and runs of "=" with both pipelines' ids. */
static void check_ties(const char *path)
{
    size_t len = 0;
    char *buf = slurp(path, &len);
    cJSON *root = cJSON_Parse(buf);
    const cJSON *tj = cJSON_GetObjectItemCaseSensitive(root, "tokenizer_json");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    CHECK_MSG(cJSON_IsString(tj) && cJSON_IsArray(cases), "%s malformed", path);
    for (int transformers = 0; transformers < 2 && cJSON_IsString(tj); transformers++) {
        setenv("RERANK_TOKENIZER_PIPELINE", transformers ? "transformers" : "file", 1);
        rr_tokenizer_texts f = {.tokenizer_json = tj->valuestring,
                                .tokenizer_json_len = strlen(tj->valuestring)};
        rr_tokenizer *t = NULL;
        rr_error err = {0};
        rr_status s = rr_tokenizer_load_texts("unigram_ties", &f, &t, &err);
        unsetenv("RERANK_TOKENIZER_PIPELINE");
        CHECK_MSG(s == RR_OK, "load unigram_ties: %s", err.msg);
        if (s != RR_OK) continue;
        int n = 0, ok = 0, n_differ = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cases)
        {
            const char *text = cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring;
            int nw = json_ids(
                cJSON_GetObjectItemCaseSensitive(c, transformers ? "ids_transformers" : "ids"),
                want, MAX_IDS);
            int no = json_ids(
                cJSON_GetObjectItemCaseSensitive(c, transformers ? "ids" : "ids_transformers"),
                part, MAX_IDS);
            n_differ += no != nw || memcmp(part, want, sizeof *want * (size_t)nw) != 0;
            int ng = -1;
            s = rr_tokenizer_encode(t, text, strlen(text), 0, got, MAX_IDS, &ng);
            ok += s == RR_OK && ng == nw && memcmp(got, want, sizeof *got * (size_t)nw) == 0;
            n++;
        }
        printf("unigram_ties.json (%s): %d/%d runs exact (%d where the pipelines differ)\n",
               transformers ? "transformers" : "file", ok, n, n_differ);
        CHECK_MSG(ok == n && n_differ > 0, "%d of %d tie runs differ", n - ok, n);
        rr_tokenizer_free(t);
    }
    cJSON_Delete(root);
    free(buf);
}

/* --- malformed files ------------------------------------------------------------------------ */

static const char *good_json =
    "{\"added_tokens\":[{\"id\":0,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
    "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false},"
    "{\"id\":5,\"content\":\"<mask>\",\"special\":true,\"normalized\":false,\"lstrip\":true}],"
    "\"normalizer\":NORM,"
    "\"pre_tokenizer\":PRE,"
    "\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",0]},"
    "\"model\":{\"type\":\"Unigram\",\"unk_id\":UNK,\"vocab\":VOCAB}}";

static char *make_json(const char *norm, const char *pre, const char *unk, const char *vocab)
{
    const char *keys[4] = {"NORM", "PRE", "UNK", "VOCAB"}, *vals[4] = {norm, pre, unk, vocab};
    char *s = strdup(good_json);
    for (int k = 0; k < 4; k++) {
        char *p = strstr(s, keys[k]);
        size_t kl = strlen(keys[k]), vl = strlen(vals[k]), sl = strlen(s);
        char *n = malloc(sl - kl + vl + 1);
        memcpy(n, s, (size_t)(p - s));
        memcpy(n + (p - s), vals[k], vl);
        strcpy(n + (p - s) + vl, p + kl);
        free(s);
        s = n;
    }
    return s;
}

#define VOCAB_OK                                                                                   \
    "[[\"<s>\",0.0],[\"<pad>\",0.0],[\"</s>\",0.0],[\"<unk>\",0.0],[\"\xe2\x96\x81\",-2.0],"       \
    "[\"<mask>\",0.0],[\"\xe2\x96\x81"                                                             \
    "a\",-3.0],[\"a\",-4.0],[\"b\",-4.5]]"
#define PRE_OK                                                                                     \
    "{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"prepend_scheme\":\"always\"}"

static void expect(const char *what, const char *norm, const char *pre, const char *unk,
                   const char *vocab, rr_status want_s, const char *needle)
{
    char *j = make_json(norm, pre, unk, vocab);
    rr_tokenizer_texts f = {.tokenizer_json = j, .tokenizer_json_len = strlen(j)};
    rr_tokenizer *t = NULL;
    rr_error err = {0};
    setenv("RERANK_TOKENIZER_PIPELINE", "file", 1);
    rr_status s = rr_tokenizer_load_texts("bad", &f, &t, &err);
    unsetenv("RERANK_TOKENIZER_PIPELINE");
    CHECK_MSG(s == want_s && (s != RR_OK || t) && (!needle || strstr(err.msg, needle)),
              "%s: got %s '%s', want %s naming '%s'", what, rr_status_name(s), err.msg,
              rr_status_name(want_s), needle ? needle : "");
    if (s == RR_OK && t) {
        /* a working file: "a <mask>b" → ▁a, <mask> (the space swallowed), ▁, b... */
        int32_t ids[16];
        int n = 0;
        CHECK(rr_tokenizer_encode(t, "a <mask>b", 9, 0, ids, 16, &n) == RR_OK);
        CHECK_MSG(n >= 2 && ids[0] == 6 && ids[1] == 5, "%s: ids %d %d (n %d)", what,
                  n > 0 ? ids[0] : -1, n > 1 ? ids[1] : -1, n);
        CHECK(rr_tokenizer_pair_specials(t) == 4);
    }
    rr_tokenizer_free(t);
    free(j);
}

/* The added_tokens listing of a good file replaced by `added`; "a <mask>b" must encode as
 * `want` (n_want ids), as HF tokenizers 0.23.3 encodes it (ids printed by hand from
 * Tokenizer.from_str on the same JSON). */
static void expect_added(const char *what, const char *added, const int32_t *want_ids, int n_want)
{
    char *g = make_json("null", PRE_OK, "3", VOCAB_OK);
    const char *rest = strstr(g, "\"normalizer\"");
    size_t n = strlen("{\"added_tokens\":") + strlen(added) + 1 + strlen(rest) + 1;
    char *j = malloc(n);
    snprintf(j, n, "{\"added_tokens\":%s,%s", added, rest);
    rr_tokenizer_texts f = {.tokenizer_json = j, .tokenizer_json_len = strlen(j)};
    rr_tokenizer *t = NULL;
    rr_error err = {0};
    setenv("RERANK_TOKENIZER_PIPELINE", "file", 1);
    rr_status s = rr_tokenizer_load_texts("added", &f, &t, &err);
    unsetenv("RERANK_TOKENIZER_PIPELINE");
    CHECK_MSG(s == RR_OK && t, "%s: %s '%s'", what, rr_status_name(s), err.msg);
    if (t) {
        int32_t ids[16];
        int got_n = 0;
        CHECK(rr_tokenizer_encode(t, "a <mask>b", 9, 0, ids, 16, &got_n) == RR_OK);
        int same = got_n == n_want;
        for (int i = 0; same && i < n_want; i++)
            same = ids[i] == want_ids[i];
        CHECK_MSG(same, "%s: %d ids, first %d %d %d", what, got_n, got_n > 0 ? ids[0] : -1,
                  got_n > 1 ? ids[1] : -1, got_n > 2 ? ids[2] : -1);
    }
    rr_tokenizer_free(t);
    free(j);
    free(g);
}

#define TOK_S "{\"id\":0,\"content\":\"<s>\",\"special\":true,\"normalized\":false}"
#define TOK_MASK(lstrip)                                                                           \
    "{\"id\":5,\"content\":\"<mask>\",\"special\":true,\"normalized\":false,\"lstrip\":" lstrip "}"

static void check_added_listings(void)
{
    /* The fuzzer's find: an empty first token made no entry, and the loader then pointed
     * before the start of an empty table (UBSan: offset applied to a null pointer). */
    static const int32_t swallowed[] = {6, 5, 4, 8}, kept[] = {6, 4, 5, 4, 8};
    expect_added("empty token first",
                 "[{\"id\":7,\"content\":\"\",\"special\":true}," TOK_S "," TOK_MASK("true") "]",
                 swallowed, 4);
    /* A token listed twice: HF applies the last listing's flags. */
    expect_added("repeated, lstrip last", "[" TOK_MASK("false") "," TOK_S "," TOK_MASK("true") "]",
                 swallowed, 4);
    expect_added("repeated, no lstrip last", "[" TOK_MASK("true") "," TOK_MASK("false") "]", kept,
                 5);
}

static void check_bad_files(void)
{
    expect("a good file", "null", PRE_OK, "3", VOCAB_OK, RR_OK, NULL);
    expect("charsmap not base64", "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"@@@@\"}",
           PRE_OK, "3", VOCAB_OK, RR_E_FORMAT, "precompiled_charsmap");
    /* trie size 0x100 but only 4 bytes follow */
    expect("charsmap trie past the end",
           "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"AAEAAAAAAAA=\"}", PRE_OK, "3",
           VOCAB_OK, RR_E_FORMAT, "precompiled_charsmap");
    /* a 4-byte trie, then a pool that is not UTF-8 (0xFF) */
    expect("charsmap pool not UTF-8",
           "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"BAAAAAAAAAD/AA==\"}", PRE_OK, "3",
           VOCAB_OK, RR_E_FORMAT, "UTF-8");
    expect("charsmap not a string", "{\"type\":\"Precompiled\",\"precompiled_charsmap\":7}", PRE_OK,
           "3", VOCAB_OK, RR_E_FORMAT, "precompiled_charsmap");
    expect("score a string", "null", PRE_OK, "3", "[[\"<s>\",\"x\"],[\"a\",-1.0]]", RR_E_FORMAT,
           "model.vocab[0]");
    expect("score missing", "null", PRE_OK, "3", "[[\"<s>\",0.0],[\"a\"]]", RR_E_FORMAT,
           "model.vocab[1]");
    expect("vocab not a list", "null", PRE_OK, "3", "{\"a\":1}", RR_E_FORMAT, "model.vocab");
    expect("empty vocab", "null", PRE_OK, "0", "[]", RR_E_UNSUPPORTED, "model.vocab");
    expect("unk_id out of range", "null", PRE_OK, "9", VOCAB_OK, RR_E_FORMAT, "unk_id");
    expect("unk_id negative", "null", PRE_OK, "-1", VOCAB_OK, RR_E_FORMAT, "unk_id");
    expect("unk_id fractional", "null", PRE_OK, "1.5", VOCAB_OK, RR_E_FORMAT, "unk_id");
    expect("unk_id missing", "null", PRE_OK, "null", VOCAB_OK, RR_E_FORMAT, "unk_id");
    expect("unknown normalizer", "{\"type\":\"NFKC\"}", PRE_OK, "3", VOCAB_OK, RR_E_UNSUPPORTED,
           "NFKC");
    expect("other regex",
           "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"}", PRE_OK,
           "3", VOCAB_OK, RR_E_UNSUPPORTED, "regex");
    expect("Precompiled second",
           "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Strip\",\"strip_right\":true},"
           "{\"type\":\"Precompiled\",\"precompiled_charsmap\":null}]}",
           PRE_OK, "3", VOCAB_OK, RR_E_UNSUPPORTED, "first normalizer");
    expect("other replacement", "null",
           "{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":\"always\"}", "3",
           VOCAB_OK, RR_E_UNSUPPORTED, "replacement");
    expect("bad prepend scheme", "null",
           "{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"prepend_scheme\":\"x\"}",
           "3", VOCAB_OK, RR_E_FORMAT, "prepend_scheme");
    expect("other pre-tokenizer", "null", "{\"type\":\"ByteLevel\"}", "3", VOCAB_OK,
           RR_E_UNSUPPORTED, "ByteLevel");
    expect("score overflow", "null", PRE_OK, "3", "[[\"<s>\",1e400],[\"a\",-1.0]]", RR_E_FORMAT,
           "model.vocab");
}

int main(void)
{
    char small[4096], lng[4096], tokens[4096], pairs[4096], ties[4096];
    snprintf(small, sizeof small, "%s/xlmr-small", RR_MODELS_DIR);
    snprintf(lng, sizeof lng, "%s/xlmr-long", RR_MODELS_DIR);
    snprintf(tokens, sizeof tokens, "%s/tests/golden/xlmr_tokens.jsonl", RR_SOURCE_DIR);
    snprintf(pairs, sizeof pairs, "%s/tests/golden/xlmr_pair_tokens.jsonl", RR_SOURCE_DIR);
    snprintf(ties, sizeof ties, "%s/tests/golden/unigram_ties.json", RR_SOURCE_DIR);

    sbuf = malloc(STR_CAP);
    qtext = malloc(STR_CAP);
    got = malloc(sizeof *got * MAX_IDS);
    want = malloc(sizeof *want * MAX_IDS);
    offs = malloc(2 * sizeof *offs * MAX_IDS);
    part = malloc(sizeof *part * MAX_IDS);
    pair_ids = malloc(sizeof *pair_ids * 8192);
    pair_types = malloc(sizeof *pair_types * 8192);
    qbuf = malloc(sizeof *qbuf * 8192);
    dbuf = malloc(sizeof *dbuf * 8192);

    check_bad_files();
    check_added_listings();
    if (readable(ties)) check_ties(ties);
    if (!readable(small) || !readable(lng) || !readable(tokens) || !readable(pairs)) {
        printf("models/xlmr-* or the xlmr golden files absent: the golden part is skipped\n");
        return test_n_fail ? test_summary("test_tok_xlmr")
                           : test_skip("test_tok_xlmr", "no models/xlmr-small yet");
    }
    for (int transformers = 1; transformers >= 0; transformers--) {
        const char *pl = transformers ? "transformers" : "file";
        rr_tokenizer *ts = load_with(small, pl), *tl = load_with(lng, pl);
        if (!ts || !tl) continue;
        check_tokens(ts, tokens, transformers);
        check_pairs(ts, tl, pairs, transformers);
        /* the workspace has grown to the largest text: another pass allocates nothing */
        int ng = 0;
        const char *text = "Grüße aus Berlin — 東京 ＡＢＣ ① e\xcc\x81 <mask> x  y ";
        rr_tokenizer_encode_offsets(ts, text, strlen(text), got, offs, MAX_IDS, &ng); /* warm */
        long before = rr_alloc_count();
        rr_tokenizer_encode(ts, text, strlen(text), 0, got, MAX_IDS, &ng);
        rr_tokenizer_encode_offsets(ts, text, strlen(text), got, offs, MAX_IDS, &ng);
        CHECK_MSG(rr_alloc_count() == before, "encoding allocated %ld times (%s)",
                  rr_alloc_count() - before, pl);
        rr_tokenizer_free(ts);
        rr_tokenizer_free(tl);
    }
    return test_summary("test_tok_xlmr");
}
