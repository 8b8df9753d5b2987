/*
 * fuzz.h — what the libFuzzer targets of tests/fuzz share: a check that aborts (so libFuzzer
 * keeps the input as a crash), the "skipped" convention, splitting one input into several
 * files, checking a failed load's error, and an independent UTF-8 validator.
 *
 * Targets are built only with -DRERANK_FUZZ=ON (clang). Each defines LLVMFuzzerTestOneInput
 * (and LLVMFuzzerInitialize when it loads something once); see tests/fuzz/README.md.
 */
#ifndef RR_FUZZ_H
#define RR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rerank.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test. assert() is compiled out in RelWithDebInfo, so this
 * is its own macro; abort() makes libFuzzer save the input as a crash. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FUZZ_CHECK failed %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A target that cannot run here (a test model absent) prints this and exits 0: ctest shows
 * it as skipped (SKIP_REGULAR_EXPRESSION), scripts/fuzz.sh as SKIP. Not 77: that is
 * libFuzzer's own exit code for a finding. */
static inline void fuzz_skip(const char *target, const char *why)
{
    printf("%s: skipped: %s\n", target, why);
    fflush(stdout);
    exit(0);
}

/* Targets that take several files read them from one input, split at RR_FUZZ_SEP (two 0xFF
 * bytes: never valid UTF-8, so never inside a valid JSON or vocab.txt file). Writes up to
 * `max` parts; returns how many the input has (at least 1). Parts point into `data`. */
#define RR_FUZZ_SEP "\xff\xff"

typedef struct fuzz_part {
    const char *p;
    size_t n;
} fuzz_part;

static inline int fuzz_split(const uint8_t *data, size_t size, fuzz_part *parts, int max)
{
    const char *s = (const char *)data, *end = s + size;
    int n = 0;
    for (;;) {
        const char *q = s;
        while (q + 1 < end && !(q[0] == '\xff' && q[1] == '\xff'))
            q++;
        if (q + 1 >= end) q = end;
        if (n == max - 1) q = end; /* the last part takes the rest */
        parts[n].p = s;
        parts[n].n = (size_t)(q - s);
        n++;
        if (q == end) return n;
        s = q + 2;
    }
}

/* A failed call's rr_error: status recorded, a message, and one of the statuses a loader may
 * return for bad input. */
static inline void fuzz_check_error(const char *what, rr_status s, const rr_error *err)
{
    FUZZ_CHECK(s == RR_E_FORMAT || s == RR_E_UNSUPPORTED || s == RR_E_NOMEM,
               "%s: unexpected status %s (%s)", what, rr_status_name(s), err->msg);
    FUZZ_CHECK(err->status == s, "%s: err.status %s but returned %s", what,
               rr_status_name(err->status), rr_status_name(s));
    FUZZ_CHECK(err->msg[0] != '\0', "%s: %s with an empty message", what, rr_status_name(s));
    FUZZ_CHECK(memchr(err->msg, '\0', sizeof err->msg) != NULL, "%s: message not terminated", what);
}

/* Strict UTF-8 (Unicode Table 3-7: no overlong forms, no surrogates, nothing above
 * U+10FFFF), written from the table independently of src/tokenizer/utf8.c so the tokenizer
 * fuzzer can check that RR_E_UTF8 is returned exactly for invalid input. */
static inline int fuzz_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */
        if (c <= 0x7F) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
        } else if (c == 0xE0) {
            k = 2;
            lo = 0xA0;
        } else if (c == 0xED) {
            k = 2;
            hi = 0x9F;
        } else if (c >= 0xE1 && c <= 0xEF) {
            k = 2;
        } else if (c == 0xF0) {
            k = 3;
            lo = 0x90;
        } else if (c == 0xF4) {
            k = 3;
            hi = 0x8F;
        } else if (c >= 0xF1 && c <= 0xF3) {
            k = 3;
        } else {
            return 0;
        }
        if (n - i <= k) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xBF) return 0;
        i += k + 1;
    }
    return 1;
}

/* Encodes text[0..len) whole and checks what must hold for any tokenizer and any bytes:
 * RR_OK exactly when the text is valid UTF-8 (else RR_E_UTF8 with nothing written), at most
 * one token per byte for WordPiece (a bounded few per byte for Unigram), every id
 * below the vocabulary size. Returns n_total, or -1 for invalid UTF-8; *ids_out (freed by
 * the caller with free) receives the ids when not NULL. */
static inline int fuzz_encode_checked(const rr_tokenizer *t, const char *text, size_t len,
                                      int32_t **ids_out)
{
    int valid = fuzz_utf8_valid((const uint8_t *)text, len);
    int n = -1;
    int32_t guard[4] = {-7, -7, -7, -7};
    rr_status s = rr_tokenizer_encode(t, text, len, 0, guard, 4, &n);
    if (ids_out) *ids_out = NULL;
    FUZZ_CHECK(s == RR_OK || s == RR_E_UTF8, "encode returned %s", rr_status_name(s));
    FUZZ_CHECK((s == RR_OK) == valid, "encode returned %s for %s UTF-8 (%zu bytes)",
               rr_status_name(s), valid ? "valid" : "invalid", len);
    if (s != RR_OK) {
        for (int i = 0; i < 4; i++)
            FUZZ_CHECK(guard[i] == -7, "RR_E_UTF8 but ids[%d] written", i);
        return -1;
    }
    /* WordPiece: a token needs a byte of its own. Unigram: the charsmap grows a character to
     * at most its longest replacement (18 characters for U+FDFA) and Metaspace adds a ▁ per
     * word, so the bound is loose (rr_unigram_encode counts in a long and refuses past
     * INT32_MAX) */
    size_t bound = t->kind == RR_TOK_WORDPIECE ? len : 64 * len + 1;
    FUZZ_CHECK(n >= 0 && (size_t)n <= bound, "n_total %d for %zu bytes", n, len);
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    FUZZ_CHECK(ids != NULL, "malloc");
    int n2 = -1;
    s = rr_tokenizer_encode(t, text, len, 0, ids, n, &n2);
    FUZZ_CHECK(s == RR_OK && n2 == n, "second encode: %s, n_total %d then %d", rr_status_name(s), n,
               n2);
    int vocab = rr_tokenizer_vocab_size(t);
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < vocab, "id %d at %d outside [0, %d)", (int)ids[i], i,
                   vocab);
    for (int i = 0; i < 4 && i < n; i++)
        FUZZ_CHECK(guard[i] == ids[i], "capped encode differs at %d", i);
    if (ids_out)
        *ids_out = ids;
    else
        free(ids);
    return n;
}

#endif /* RR_FUZZ_H */
