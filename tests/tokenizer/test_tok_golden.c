/*
 * test_tok_golden.c — the tokenizer against the HF fast tokenizer, through golden files
 * written by tests/golden/make_golden.py:
 *   - tests/golden/tokens.jsonl: every text must encode to exactly `ids` (no special tokens);
 *     each text is also encoded with a small cap both ways and checked against the full ids;
 *   - tests/golden/minilm-l6-{bert,electra}/pairs.jsonl: every (query, doc) rebuilt through
 *     rr_tokenizer_encode + rr_pair_build (max_length 512, truncation on) must give exactly
 *     input_ids and token_type_ids.
 * The tokens.jsonl check runs twice: with the model folder (tokenizer.json) and with a
 * temporary folder holding only its vocab.txt + tokenizer_config.json (the path transformers
 * takes when tokenizer.json is missing), which must give the same ids.
 * Skips (77) when the model folder or the fixtures are absent. RR_TOK_MODEL and
 * RR_TOK_GOLDEN_DIR override the folders (for debugging against another tokenizer).
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rerank.h"
#include "test.h"
#include "golden_jsonl.h"

#define MAX_IDS (1 << 22)
#define STR_CAP (64u << 20)

static char *sbuf, *sbuf2;
static int32_t *got, *want, *part, *pair_ids, *pair_types, *qbuf, *dbuf;

static void print_diff(const char *what, int line, const int32_t *a, int na, const int32_t *b,
                       int nb)
{
    int i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    fprintf(stderr, "  %s line %d: got %d ids, want %d; first difference at %d (got %d, want %d)\n",
            what, line, na, nb, i, i < na ? a[i] : -1, i < nb ? b[i] : -1);
}

static void check_tokens(const rr_tokenizer *t, const char *path, const char *label)
{
    size_t len = 0;
    char *buf = slurp(path, &len);
    int n_lines = 0, n_ok = 0, n_cap_ok = 0;
    char *line = buf;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *o = cJSON_Parse(line);
        long tl = json_string(line, "text", sbuf, STR_CAP);
        int nw = json_ids(cJSON_GetObjectItemCaseSensitive(o, "ids"), want, MAX_IDS);
        CHECK_MSG(o && tl >= 0 && nw >= 0, "%s line %d malformed", path, n_lines + 1);
        if (o && tl >= 0 && nw >= 0) {
            const char *s = sbuf;
            size_t slen = (size_t)tl;
            int ng = -1;
            rr_status st = rr_tokenizer_encode(t, s, slen, 0, got, MAX_IDS, &ng);
            int ok = st == RR_OK && ng == nw && memcmp(got, want, sizeof *got * (size_t)nw) == 0;
            n_ok += ok;
            if (!ok && test_n_fail < 20) {
                fprintf(stderr, "FAIL tokens line %d: %.200s\n", n_lines + 1, s);
                print_diff("tokens", n_lines + 1, got, ng, want, nw);
            }
            if (!ok) test_n_fail++;
            /* cap = 5, both directions, must be a window of the full encoding */
            int nf = -1, nl2 = -1;
            int c = 5;
            rr_tokenizer_encode(t, s, slen, 0, part, c, &nf);
            int k = nw < c ? nw : c;
            int ok1 = nf == nw && memcmp(part, want, sizeof *part * (size_t)k) == 0;
            rr_tokenizer_encode(t, s, slen, 1, part, c, &nl2);
            int ok2 = nl2 == nw && memcmp(part, want + (nw - k), sizeof *part * (size_t)k) == 0;
            n_cap_ok += ok1 && ok2;
            if (!(ok1 && ok2) && test_n_fail < 20)
                fprintf(stderr, "FAIL cap=5 window mismatch at line %d\n", n_lines + 1);
            if (!(ok1 && ok2)) test_n_fail++;
        }
        cJSON_Delete(o);
        n_lines++;
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    printf("tokens.jsonl (%s): %d/%d texts exact (%.2f%%), %d/%d cap windows exact\n", label, n_ok,
           n_lines, n_lines ? 100.0 * n_ok / n_lines : 0.0, n_cap_ok, n_lines);
    CHECK(n_lines > 0 && n_ok == n_lines);
}

static void check_pairs(const rr_tokenizer *t, const char *path)
{
    size_t len = 0;
    char *buf = slurp(path, &len);
    int n_lines = 0, n_ok = 0;
    const int max_length = 512;
    char *line = buf;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *o = cJSON_Parse(line);
        long ql = json_string(line, "query", sbuf, STR_CAP);
        long dl = json_string(line, "doc", sbuf2, STR_CAP);
        int ni = json_ids(cJSON_GetObjectItemCaseSensitive(o, "input_ids"), want, MAX_IDS);
        int nt = json_ids(cJSON_GetObjectItemCaseSensitive(o, "token_type_ids"), part, MAX_IDS);
        CHECK_MSG(ql >= 0 && dl >= 0 && ni >= 0 && nt == ni, "%s line %d malformed", path,
                  n_lines + 1);
        if (ql >= 0 && dl >= 0 && ni >= 0 && nt == ni) {
            int qn = 0, dn = 0;
            rr_status s1 = rr_tokenizer_encode(t, sbuf, (size_t)ql, 0, qbuf, max_length, &qn);
            rr_status s2 = rr_tokenizer_encode(t, sbuf2, (size_t)dl, 0, dbuf, max_length, &dn);
            int np = -1;
            if (s1 == RR_OK && s2 == RR_OK)
                np = rr_pair_build(t, qbuf, qn < max_length ? qn : max_length, qn, dbuf,
                                   dn < max_length ? dn : max_length, dn, max_length, 1, 0,
                                   pair_ids, pair_types);
            int ok = np == ni && memcmp(pair_ids, want, sizeof *want * (size_t)ni) == 0 &&
                     memcmp(pair_types, part, sizeof *part * (size_t)ni) == 0;
            n_ok += ok;
            if (!ok) {
                test_n_fail++;
                if (test_n_fail < 20) {
                    int qp = (int)(ql < 80 ? ql : 80), dp = (int)(dl < 80 ? dl : 80);
                    fprintf(
                        stderr,
                        "FAIL pairs line %d: query '%.*s' (%ld bytes), doc '%.*s' (%ld bytes)\n",
                        n_lines + 1, qp, sbuf, ql, dp, sbuf2, dl);
                    print_diff("pairs", n_lines + 1, pair_ids, np, want, ni);
                }
            }
        }
        cJSON_Delete(o);
        n_lines++;
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    printf("%s: %d/%d pairs exact (%.2f%%)\n", path, n_ok, n_lines,
           n_lines ? 100.0 * n_ok / n_lines : 0.0);
    CHECK(n_lines > 0 && n_ok == n_lines);
}

static int readable(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static int copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    size_t len = 0;
    char *buf = slurp(a, &len);
    FILE *f = buf ? fopen(b, "wb") : NULL;
    int ok = f && fwrite(buf, 1, len, f) == len;
    if (f) ok = fclose(f) == 0 && ok;
    free(buf);
    return ok;
}

/* The model's tokenizer loaded from a temporary folder with only vocab.txt and
 * tokenizer_config.json; NULL (after a failed CHECK) when that cannot be set up. */
static rr_tokenizer *load_vocab_txt_only(const char *mdir)
{
    char dir[64] = "/tmp/rr_tok_vocabXXXXXX", path[128];
    rr_tokenizer *t = NULL;
    rr_error err = {0};
    if (!mkdtemp(dir)) return NULL;
    int ok = copy_file(mdir, dir, "vocab.txt") && copy_file(mdir, dir, "tokenizer_config.json");
    CHECK_MSG(ok, "copy vocab.txt + tokenizer_config.json of %s", mdir);
    if (ok) {
        rr_status s = rr_tokenizer_load(dir, &t, &err);
        CHECK_MSG(s == RR_OK, "load vocab.txt folder: %s", err.msg);
    }
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    remove(path);
    remove(dir);
    return t;
}

int main(void)
{
    const char *model = getenv("RR_TOK_MODEL");
    const char *golden = getenv("RR_TOK_GOLDEN_DIR");
    char mdir[4096], tokens[4096], pairs[4096];
    snprintf(mdir, sizeof mdir, "%s", model ? model : RR_MODELS_DIR "/minilm-l6-bert");
    snprintf(tokens, sizeof tokens, "%s/tokens.jsonl",
             golden ? golden : RR_SOURCE_DIR "/tests/golden");
    snprintf(pairs, sizeof pairs, "%s/minilm-l6-bert/pairs.jsonl",
             golden ? golden : RR_SOURCE_DIR "/tests/golden");
    if (!readable(tokens) && !readable(pairs))
        return test_skip("test_tok_golden", "no tests/golden/tokens.jsonl or pairs.jsonl yet");

    rr_tokenizer *t = NULL;
    rr_error err = {0};
    rr_status s = rr_tokenizer_load(mdir, &t, &err);
    if (s == RR_E_IO) return test_skip("test_tok_golden", err.msg);
    CHECK_MSG(s == RR_OK, "load %s: %s", mdir, err.msg);
    if (s != RR_OK) return test_summary("test_tok_golden");

    sbuf = malloc(STR_CAP);
    sbuf2 = malloc(STR_CAP);
    got = malloc(sizeof *got * MAX_IDS);
    want = malloc(sizeof *want * MAX_IDS);
    part = malloc(sizeof *part * MAX_IDS);
    pair_ids = malloc(sizeof *pair_ids * 512);
    pair_types = malloc(sizeof *pair_types * 512);
    qbuf = malloc(sizeof *qbuf * 512);
    dbuf = malloc(sizeof *dbuf * 512);
    if (readable(tokens)) {
        check_tokens(t, tokens, "tokenizer.json");
        rr_tokenizer *tv = load_vocab_txt_only(mdir);
        if (tv) check_tokens(tv, tokens, "vocab.txt + tokenizer_config.json");
        rr_tokenizer_free(tv);
    } else
        printf("tokens.jsonl absent: skipped that part\n");
    if (readable(pairs))
        check_pairs(t, pairs);
    else
        printf("pairs.jsonl absent: skipped that part\n");
    /* the ELECTRA model's own tokenizer files and pairs, when present (not overridable) */
    if (!model && !golden) {
        const char *edir = RR_MODELS_DIR "/minilm-l6-electra";
        const char *epairs = RR_SOURCE_DIR "/tests/golden/minilm-l6-electra/pairs.jsonl";
        rr_tokenizer *te = NULL;
        if (readable(epairs) && rr_tokenizer_load(edir, &te, &err) == RR_OK)
            check_pairs(te, epairs);
        else
            printf("minilm-l6-electra model or pairs.jsonl absent: skipped that part\n");
        rr_tokenizer_free(te);
    }
    free(sbuf);
    free(sbuf2);
    free(got);
    free(want);
    free(part);
    free(pair_ids);
    free(pair_types);
    free(qbuf);
    free(dbuf);
    rr_tokenizer_free(t);
    return test_summary("test_tok_golden");
}
