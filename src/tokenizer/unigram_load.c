/*
 * unigram_load.c — the Unigram half of tokenizer.json (spec §6): the model's vocabulary as a
 * byte trie with scores, the Precompiled charsmap, the normalizers that follow it and the
 * Metaspace pre-tokenizer. tokenizer_load.c calls rr_unigram_load for a "Unigram" model and
 * keeps the parts both pipelines share (added tokens, the post-processor, the id table).
 *
 * Accepted shapes are the ones Hugging Face's converters write for XLM-RoBERTa and other
 * SentencePiece models (bge-reranker-*, mMiniLM): normalizer null, Precompiled, or a
 * Sequence of Precompiled (first) then Strip / Replace (a string, or the one regex " {2,}");
 * pre_tokenizer Metaspace with replacement "▁", or Sequence[WhitespaceSplit, Metaspace].
 * Anything else is refused with RR_E_UNSUPPORTED by name rather than tokenized differently.
 * Malformed files (a charsmap that does not decode, a score that is not a number, unk_id out
 * of range) are RR_E_FORMAT.
 */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_impl.h"
#include "util/util.h"

#define RR_METASPACE "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK */

static const char *type_of(const cJSON *obj)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int bool_of(const cJSON *obj, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

/* --- the vocabulary trie ---------------------------------------------------------------- */

/* The edge from `node` by code point cp, created (child new, id -1) when absent; the same
 * probe sequence as rr_trie_edge_find. */
static rr_trie_edge *trie_add(rr_unigram *u, uint32_t node, uint32_t cp)
{
    const uint64_t key = (uint64_t)node << 21 | cp;
    for (uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & u->edge_mask;;
         i = (i + 1) & u->edge_mask) {
        rr_trie_edge *e = &u->edges[i];
        if (e->key == key) return e;
        if (e->key == 0) {
            e->key = key;
            e->child = u->n_nodes++;
            e->id = -1;
            return e;
        }
    }
}

/* Decodes the (valid UTF-8) character at *p and advances past it. */
static uint32_t next_cp(const unsigned char **p)
{
    uint32_t c = rr_utf8_at(*p, 0);
    *p += rr_utf8_len(**p);
    return c;
}

/* The id of a whole piece, or -1. */
static int32_t trie_find(const rr_unigram *u, const char *piece)
{
    const unsigned char *p = (const unsigned char *)piece;
    const rr_trie_edge *e = NULL;
    uint32_t node = 1;
    while (*p) {
        e = rr_trie_edge_find(u, node, next_cp(&p));
        if (!e) return -1;
        node = e->child;
    }
    return e ? e->id : -1;
}

static rr_status load_vocab(const cJSON *vocab, const char *path, rr_unigram *u, rr_error *err)
{
    int n = cJSON_GetArraySize(vocab);
    size_t bytes = 0;
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, vocab)
    {
        const cJSON *piece = cJSON_GetArrayItem(e, 0), *score = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(piece) ||
            !cJSON_IsNumber(score) || !isfinite(score->valuedouble))
            return rr_set_error(err, RR_E_FORMAT,
                                "%s: model.vocab[%d] is not a [piece, finite score] pair", path, i);
        const char *ps = piece->valuestring;
        if (rr_utf8_check(ps, strlen(ps)) != strlen(ps))
            return rr_set_error(err, RR_E_FORMAT, "%s: model.vocab[%d] is not UTF-8", path, i);
        bytes += strlen(ps);
        i++;
    }
    /* node indices stay far below 2^43, the room an edge key leaves them */
    if (n < 1 || bytes + 2 >= (1u << 30))
        return rr_set_error(err, RR_E_UNSUPPORTED, "%s: model.vocab has %d pieces of %zu bytes",
                            path, n, bytes);
    size_t cap = 64;
    while (cap < 2 * bytes)
        cap *= 2;
    u->edges = rr_calloc(cap, sizeof *u->edges);
    u->scores = rr_malloc((size_t)n * sizeof *u->scores);
    if (!u->edges || !u->scores)
        return rr_set_error(err, RR_E_NOMEM, "out of memory for the Unigram vocabulary");
    u->edge_mask = (uint32_t)(cap - 1);
    u->n_nodes = 2;
    u->n_pieces = n;
    i = 0;
    cJSON_ArrayForEach(e, vocab)
    {
        const char *s = cJSON_GetArrayItem(e, 0)->valuestring;
        double sc = cJSON_GetArrayItem(e, 1)->valuedouble;
        u->scores[i] = sc;
        /* HF's trie never yields the empty piece; a later duplicate wins (token_to_ids) */
        uint32_t node = 1;
        rr_trie_edge *edge = NULL;
        for (const unsigned char *p = (const unsigned char *)s; *p;) {
            edge = trie_add(u, node, next_cp(&p));
            node = edge->child;
        }
        if (edge) edge->id = i;
        i++;
    }
    return RR_OK;
}

/* --- scores as Hugging Face reads them --------------------------------------------------- */

/* HF tokenizers parses tokenizer.json with serde_json's default number parser, which is not
 * correctly rounded: the digits go into a u64 (digits past its range are dropped), that
 * integer is rounded to a double, then divided (or multiplied) by a double power of ten —
 * two roundings. For the 17-digit scores SentencePiece models carry, about one in six then
 * differs from strtod's value by an ulp (717 of 4002 in our test vocabulary), and near-tie
 * Viterbi paths (runs of "=" in Python's docs) resolve differently. So the scores are read
 * again from the raw text with serde_json's algorithm (de.rs: parse_integer, parse_decimal,
 * parse_exponent, f64_from_parts). */

static double pow10_tab[309];
static int pow10_ready;

static void pow10_init(void)
{
    if (pow10_ready) return;
    for (int i = 0; i <= 308; i++) {
        char b[16];
        snprintf(b, sizeof b, "1e%d", i);
        pow10_tab[i] = strtod(b, NULL); /* correctly rounded, as Rust's literals are */
    }
    pow10_ready = 1;
}

static double from_parts(int positive, uint64_t significand, long exponent)
{
    double f = (double)significand;
    for (;;) {
        long a = exponent < 0 ? -exponent : exponent;
        if (a <= 308) {
            if (exponent >= 0)
                f *= pow10_tab[a];
            else
                f /= pow10_tab[a];
            break;
        }
        if (f == 0.0) break;
        if (exponent >= 0) return positive ? INFINITY : -INFINITY; /* refused by the caller */
        f /= 1e308;
        exponent += 308;
    }
    return positive ? f : -f;
}

#define U64_OVERFLOW(a, d)                                                                         \
    ((a) >= UINT64_MAX / 10 && ((a) > UINT64_MAX / 10 || (d) > UINT64_MAX % 10))

/* One JSON number at s (valid JSON: cJSON parsed the file) as serde_json reads it into an
 * f64; *end is set past it. */
static double serde_f64(const char *s, const char **end)
{
    int positive = 1;
    if (*s == '-') {
        positive = 0;
        s++;
    }
    uint64_t sig = 0;
    long exp = 0;
    int overflowed = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (overflowed || U64_OVERFLOW(sig, d)) {
            overflowed = 1; /* parse_long_integer: further digits only scale */
            exp++;
        } else {
            sig = sig * 10 + d;
        }
    }
    int is_float = 0;
    if (*s == '.') {
        is_float = 1;
        s++;
        for (; *s >= '0' && *s <= '9'; s++) {
            unsigned d = (unsigned)(*s - '0');
            if (overflowed || U64_OVERFLOW(sig, d)) {
                overflowed = 1; /* parse_decimal_overflow: the rest is ignored */
                continue;
            }
            sig = sig * 10 + d;
            exp--;
        }
    }
    if (*s == 'e' || *s == 'E') {
        is_float = 1;
        s++;
        int pos_exp = 1;
        if (*s == '+' || *s == '-') pos_exp = *s++ == '+';
        long e = 0;
        int big = 0;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (e > 100000000)
                big = 1; /* serde: exponent overflow, ±inf or ±0 */
            else
                e = e * 10 + (*s - '0');
        }
        while (*s >= '0' && *s <= '9')
            s++;
        *end = s;
        if (big)
            return pos_exp && sig ? (positive ? INFINITY : -INFINITY) : (positive ? 0.0 : -0.0);
        exp = pos_exp ? exp + e : exp - e;
    }
    *end = s;
    if (!is_float && !overflowed) {
        /* an integer: u64 / i64, converted exactly where it fits (as_f64 of serde Number) */
        return positive ? (double)sig : -(double)sig;
    }
    return from_parts(positive, sig, exp);
}

/* Raw-text walk of a valid JSON document that collects root.model.vocab[i][1] as serde
 * reads them. Returns the number collected, or -1 when the shape is not as expected. */
typedef struct raw_walk {
    const char *p, *end;
    double *out;
    long n, cap;
} raw_walk;

static void rw_ws(raw_walk *w)
{
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r'))
        w->p++;
}

/* Skips a string; returns 1 when its raw contents equal key (NULL: 0). */
static int rw_string(raw_walk *w, const char *key)
{
    const char *b = ++w->p;
    while (w->p < w->end && *w->p != '"')
        w->p += *w->p == '\\' ? 2 : 1;
    size_t n = (size_t)(w->p - b);
    w->p++;
    return key && strlen(key) == n && memcmp(b, key, n) == 0;
}

/* Roles: 0 the root, 1 root.model, 2 model.vocab, 3 one [piece, score] entry, 4 its score,
 * 5 anything else. */
static int rw_value(raw_walk *w, int role, int depth);

static int rw_container(raw_walk *w, int role, int depth)
{
    if (depth > 2000) return -1;
    char open = *w->p++, close = open == '{' ? '}' : ']';
    rw_ws(w);
    if (w->p < w->end && *w->p == close) {
        w->p++;
        return 0;
    }
    for (int idx = 0; w->p < w->end; idx++) {
        rw_ws(w);
        int child = 5;
        if (open == '{') {
            static const char *const want[] = {"model", "vocab"};
            int hit = role <= 1 ? rw_string(w, want[role]) : rw_string(w, NULL);
            if (hit) child = role + 1;
            rw_ws(w);
            w->p++; /* ':' */
            rw_ws(w);
        } else if (role == 2) {
            child = 3;
        } else if (role == 3 && idx == 1) {
            child = 4;
        }
        if (rw_value(w, child, depth + 1) < 0) return -1;
        rw_ws(w);
        if (w->p < w->end && *w->p == ',') {
            w->p++;
            continue;
        }
        w->p++; /* the closing bracket */
        return 0;
    }
    return -1;
}

static int rw_value(raw_walk *w, int role, int depth)
{
    if (w->p >= w->end) return -1;
    char c = *w->p;
    if (c == '{' || c == '[') return rw_container(w, role, depth);
    if (c == '"') {
        rw_string(w, NULL);
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        const char *e;
        double v = serde_f64(w->p, &e);
        w->p = e;
        if (role == 4) {
            if (w->n >= w->cap) return -1;
            w->out[w->n++] = v;
        }
        return 0;
    }
    while (w->p < w->end && *w->p >= 'a' && *w->p <= 'z') /* true, false, null */
        w->p++;
    return 0;
}

/* --- Precompiled ------------------------------------------------------------------------ */

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 with optional '=' padding (what serde writes for the charsmap). Returns the
 * decoded length, or -1 when s is not base64. out holds at least 3 * (n / 4) + 3 bytes. */
static long b64_decode(const char *s, size_t n, uint8_t *out)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1) return -1;
    long o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

static rr_status load_precompiled(const cJSON *norm, const char *path, rr_unigram *u, rr_error *err)
{
    const cJSON *cm = cJSON_GetObjectItemCaseSensitive(norm, "precompiled_charsmap");
    if (cJSON_IsNull(cm) || !cm) return RR_OK; /* HF: no charsmap, no normalization */
    if (!cJSON_IsString(cm))
        return rr_set_error(err, RR_E_FORMAT, "%s: precompiled_charsmap is not a string", path);
    if (u->cm_units)
        return rr_set_error(err, RR_E_UNSUPPORTED, "%s: more than one Precompiled normalizer",
                            path);
    size_t n = strlen(cm->valuestring);
    uint8_t *blob = rr_malloc(3 * (n / 4) + 4);
    if (!blob) return rr_set_error(err, RR_E_NOMEM, "out of memory for the charsmap");
    long len = b64_decode(cm->valuestring, n, blob);
    rr_status s = RR_OK;
    uint32_t trie_bytes = 0;
    if (len >= 4) memcpy(&trie_bytes, blob, 4); /* little-endian, as written */
    if (len < 4 || trie_bytes % 4 != 0 || trie_bytes < 4 || (size_t)trie_bytes > (size_t)len - 4) {
        s = rr_set_error(err, RR_E_FORMAT,
                         "%s: precompiled_charsmap is not a SentencePiece charsmap (base64 of a "
                         "u32 trie size, the trie, the replacements)",
                         path);
        goto done;
    }
    u->cm_n_units = trie_bytes / 4;
    u->cm_pool_len = (uint32_t)((size_t)len - 4 - trie_bytes);
    u->cm_units = rr_malloc(trie_bytes);
    u->cm_pool = rr_malloc((size_t)u->cm_pool_len + 1);
    if (!u->cm_units || !u->cm_pool) {
        s = rr_set_error(err, RR_E_NOMEM, "out of memory for the charsmap");
        goto done;
    }
    memcpy(u->cm_units, blob + 4, trie_bytes);
    memcpy(u->cm_pool, blob + 4 + trie_bytes, u->cm_pool_len);
    u->cm_pool[u->cm_pool_len] = 0;
    /* HF keeps the replacements as one Rust String: invalid UTF-8 fails the load there too */
    if (rr_utf8_check(u->cm_pool, u->cm_pool_len) != u->cm_pool_len) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: precompiled_charsmap replacements are not UTF-8",
                         path);
        goto done;
    }
    for (int c = 0; c < 128; c++) {
        unsigned char b = (unsigned char)c;
        size_t rl = 0;
        const char *r = rr_cm_lookup(u, &b, 1, &rl);
        u->cm_ascii[c] = r ? (int32_t)(r - u->cm_pool) : -1;
    }
    for (uint32_t i = 0, cur = 0; i <= u->cm_pool_len; i++) {
        if (i == u->cm_pool_len || u->cm_pool[i] == 0) {
            if (cur > u->cm_max_rep) u->cm_max_rep = cur;
            cur = 0;
        } else {
            cur++;
        }
    }
done:
    rr_free(blob);
    return s;
}

/* --- normalizers ------------------------------------------------------------------------ */

/* Appends bytes to the tokenizer's string pool (owned by the builder at this point, so the
 * caller hands a callback). */
typedef long (*pool_add_fn)(void *ctx, const char *s, size_t len);

static rr_status load_one_normalizer(const cJSON *n, int first, const char *path, rr_unigram *u,
                                     pool_add_fn add, void *ctx, rr_error *err)
{
    const char *type = type_of(n);
    if (!type) return rr_set_error(err, RR_E_FORMAT, "%s: a normalizer has no type", path);
    if (strcmp(type, "Precompiled") == 0) {
        /* the charsmap sees the raw text; after another step it would see that step's output,
         * which no converter writes */
        if (!first)
            return rr_set_error(err, RR_E_UNSUPPORTED,
                                "%s: Precompiled is supported only as the first normalizer", path);
        return load_precompiled(n, path, u, err);
    }
    if (u->n_norm >= (int)(sizeof u->norm / sizeof u->norm[0]))
        return rr_set_error(err, RR_E_UNSUPPORTED, "%s: more than %d normalizers", path,
                            (int)(sizeof u->norm / sizeof u->norm[0]));
    struct rr_norm_step *st = &u->norm[u->n_norm];
    memset(st, 0, sizeof *st);
    if (strcmp(type, "Strip") == 0) {
        st->kind = RR_NORM_STRIP;
        st->strip_left = (uint8_t)bool_of(n, "strip_left", 0);
        st->strip_right = (uint8_t)bool_of(n, "strip_right", 0);
        u->n_norm++;
        return RR_OK;
    }
    if (strcmp(type, "Replace") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(n, "content");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
        if (!cJSON_IsString(content) || (!cJSON_IsString(re) && !cJSON_IsString(str)))
            return rr_set_error(err, RR_E_FORMAT, "%s: Replace needs pattern and content", path);
        if (cJSON_IsString(re)) {
            if (strcmp(re->valuestring, " {2,}") != 0)
                return rr_set_error(err, RR_E_UNSUPPORTED,
                                    "%s: Replace regex \"%.100s\" is not supported (only \" "
                                    "{2,}\")",
                                    path, re->valuestring);
            st->kind = RR_NORM_REPLACE_SPACES;
        } else {
            if (str->valuestring[0] == 0)
                return rr_set_error(err, RR_E_UNSUPPORTED, "%s: Replace of the empty string", path);
            st->kind = RR_NORM_REPLACE_STR;
            long off = add(ctx, str->valuestring, strlen(str->valuestring));
            if (off < 0) return rr_set_error(err, RR_E_NOMEM, "out of memory");
            st->pat_off = (uint32_t)off;
            st->pat_len = (uint32_t)strlen(str->valuestring);
        }
        long off = add(ctx, content->valuestring, strlen(content->valuestring));
        if (off < 0) return rr_set_error(err, RR_E_NOMEM, "out of memory");
        st->rep_off = (uint32_t)off;
        st->rep_len = (uint32_t)strlen(content->valuestring);
        u->n_norm++;
        return RR_OK;
    }
    return rr_set_error(err, RR_E_UNSUPPORTED,
                        "%s: normalizer '%.100s' is not supported with a Unigram model "
                        "(Precompiled, Strip, Replace)",
                        path, type);
}

static rr_status load_normalizer(const cJSON *n, const char *path, rr_unigram *u, pool_add_fn add,
                                 void *ctx, rr_error *err)
{
    if (!n || cJSON_IsNull(n)) return RR_OK;
    const char *type = type_of(n);
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list))
            return rr_set_error(err, RR_E_FORMAT, "%s: normalizer Sequence has no list", path);
        const cJSON *e;
        int i = 0;
        cJSON_ArrayForEach(e, list)
        {
            const char *et = type_of(e);
            if (et && strcmp(et, "Sequence") == 0)
                return rr_set_error(err, RR_E_UNSUPPORTED, "%s: nested normalizer Sequence", path);
            rr_status s = load_one_normalizer(e, i == 0, path, u, add, ctx, err);
            if (s) return s;
            i++;
        }
        return RR_OK;
    }
    return load_one_normalizer(n, 1, path, u, add, ctx, err);
}

/* --- pre-tokenizer ---------------------------------------------------------------------- */

static rr_status load_metaspace(const cJSON *p, const char *path, rr_unigram *u, rr_error *err)
{
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(p, "replacement");
    if (rep && (!cJSON_IsString(rep) || strcmp(rep->valuestring, RR_METASPACE) != 0))
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "%s: Metaspace replacement must be \"\xe2\x96\x81\" (U+2581)", path);
    const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(p, "prepend_scheme");
    if (cJSON_IsString(scheme)) {
        if (strcmp(scheme->valuestring, "always") == 0)
            u->prepend = RR_PREPEND_ALWAYS;
        else if (strcmp(scheme->valuestring, "first") == 0)
            u->prepend = RR_PREPEND_FIRST;
        else if (strcmp(scheme->valuestring, "never") == 0)
            u->prepend = RR_PREPEND_NEVER;
        else
            return rr_set_error(err, RR_E_FORMAT, "%s: Metaspace prepend_scheme '%.50s'", path,
                                scheme->valuestring);
    } else {
        /* the legacy field: add_prefix_space true (the default) is "always" */
        u->prepend = bool_of(p, "add_prefix_space", 1) ? RR_PREPEND_ALWAYS : RR_PREPEND_NEVER;
    }
    u->split = bool_of(p, "split", 1);
    return RR_OK;
}

static rr_status load_pre_tokenizer(const cJSON *p, const char *path, rr_unigram *u, rr_error *err)
{
    const char *type = type_of(p);
    if (type && strcmp(type, "Metaspace") == 0) return load_metaspace(p, path, u, err);
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        const cJSON *a = cJSON_GetArrayItem(list, 0), *b = cJSON_GetArrayItem(list, 1);
        if (cJSON_IsArray(list) && cJSON_GetArraySize(list) == 2 && type_of(a) &&
            strcmp(type_of(a), "WhitespaceSplit") == 0 && type_of(b) &&
            strcmp(type_of(b), "Metaspace") == 0) {
            u->whitespace_split = 1;
            return load_metaspace(b, path, u, err);
        }
    }
    return rr_set_error(err, RR_E_UNSUPPORTED,
                        "%s: pre_tokenizer '%.100s' is not supported with a Unigram model "
                        "(Metaspace, or Sequence[WhitespaceSplit, Metaspace])",
                        path, type ? type : "null");
}

/* --- entry point ------------------------------------------------------------------------ */

rr_status rr_unigram_load(const cJSON *root, const char *text, size_t len, const char *path,
                          rr_tokenizer *t, long (*add)(void *ctx, const char *s, size_t len),
                          void *ctx, rr_error *err)
{
    rr_unigram *u = &t->uni;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsArray(vocab))
        return rr_set_error(err, RR_E_FORMAT, "%s: model.vocab is not a list of [piece, score]",
                            path);
    rr_status s = load_vocab(vocab, path, u, err);
    if (s) return s;
    /* The file's pipeline: the scores again, as the tokenizers library's serde_json reads
     * them (see serde_f64). transformers >= 5 reads them with Python's json (correctly
     * rounded, as cJSON), so its near-ties resolve like strtod's values. */
    if (!u->transformers) {
        pow10_init();
        raw_walk w = {text, text + len, u->scores, 0, u->n_pieces};
        if (rw_value(&w, 0, 0) < 0 || w.n != u->n_pieces)
            return rr_set_error(err, RR_E_FORMAT, "%s: model.vocab scores could not be re-read",
                                path);
    }
    double min_score = INFINITY;
    for (int32_t i = 0; i < u->n_pieces; i++) {
        if (!isfinite(u->scores[i]))
            return rr_set_error(err, RR_E_FORMAT, "%s: model.vocab[%d] score is out of range", path,
                                (int)i);
        if (u->scores[i] < min_score) min_score = u->scores[i];
    }
    u->unk_score = min_score - 10.0;
    for (uint32_t c = 0; c < 128; c++) {
        const rr_trie_edge *e = rr_trie_edge_find(u, 1, c);
        u->root_ascii[c] = e ? *e : (rr_trie_edge){0, 0, -1};
    }

    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_id");
    if (!cJSON_IsNumber(unk) || unk->valuedouble < 0 || unk->valuedouble >= u->n_pieces ||
        unk->valuedouble != (double)(int32_t)unk->valuedouble)
        return rr_set_error(err, RR_E_FORMAT, "%s: model.unk_id must be an index into model.vocab",
                            path);
    t->unk_id = (int32_t)unk->valuedouble;

    u->byte_fallback = bool_of(model, "byte_fallback", 0);
    if (u->byte_fallback) {
        /* HF looks the <0xXX> pieces up by string; all 256 exist in byte-fallback models */
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            u->byte_id[b] = trie_find(u, name);
        }
    }

    s = load_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), path, u, add, ctx,
                        err);
    if (s) return s;
    s = load_pre_tokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), path, u, err);
    if (s || !u->transformers) return s;
    /* transformers >= 5 (XLMRobertaTokenizer.__init__): the charsmap only, then
     * WhitespaceSplit + Metaspace("▁", always unless add_prefix_space is false) — the file's
     * Strip / Replace and pre-tokenizer are replaced, not added to. The caller sets prepend
     * from tokenizer_config's add_prefix_space. */
    u->n_norm = 0;
    u->whitespace_split = 1;
    u->split = 1;
    return RR_OK;
}

void rr_unigram_free(rr_unigram *u)
{
    rr_free(u->edges);
    rr_free(u->scores);
    rr_free(u->cm_units);
    rr_free(u->cm_pool);
}
