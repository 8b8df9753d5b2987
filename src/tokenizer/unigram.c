/*
 * unigram.c — rr_tokenizer_encode for SentencePiece Unigram tokenizers (XLM-RoBERTa,
 * bge-reranker-*): Hugging Face tokenizers' pipeline for one text, exactly (spec §6):
 *
 *   raw UTF-8 ──added tokens (leftmost-longest; lstrip / rstrip swallow whitespace)──▶ pieces
 *   piece ──Precompiled charsmap, per extended grapheme cluster──▶ ──Strip / Replace──▶
 *         ──Metaspace (' ' → ▁, prepend ▁, split before each ▁)──▶ words
 *   word ──Viterbi over every vocabulary piece that is a prefix at each character──▶ ids
 *
 * HF's quirks kept on purpose: a grapheme cluster shorter than 6 bytes that starts with a
 * charsmap key is replaced whole by the first (shortest) key's replacement (fullwidth A +
 * combining acute becomes "A"); every vocabulary entry, <s> and </s> included, is in the
 * lattice; a candidate replaces a lattice node only when strictly better (ties keep the
 * earlier); consecutive unknown characters fuse into one <unk>. Scores are doubles, summed in
 * HF's order, so near-ties resolve as in Rust.
 *
 * Memory: a piece is normalized into a buffer and each word gets a lattice, in a per-thread
 * workspace that grows to the largest piece seen and is then reused: after the first texts of
 * a thread, encoding allocates nothing. (The WordPiece path streams with no buffer at all;
 * a Viterbi cannot emit before its word ends, and a word of CJK text has no spaces.)
 * Grapheme clusters come from utf8proc (Unicode 13 in Debian 12's 2.6; HF's
 * unicode-segmentation is newer): a cluster that only a newer rule joins is segmented
 * differently, which changes ids only where the charsmap has a multi-character key starting
 * inside such a cluster of under 6 bytes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tokenizer_impl.h"
#include "util/util.h"

/* --- per-thread workspace ---------------------------------------------------------------- */

typedef struct uni_ws {
    char *a, *b;      /* the normalized piece, double-buffered through the steps */
    int32_t *sa, *sb; /* offsets: raw [start, end) of each byte of a / b */
    size_t cap;       /* bytes in a and b */
    size_t scap;      /* bytes of a and b that sa and sb cover (2 int32 each) */
    char *w;          /* the current word (+ RR_KEY_SLACK for rr_vocab_lookup) */
    int32_t *wsrc;    /* its bytes' sources, 2 per byte */
    size_t wcap;
    double *best; /* lattice, one node per byte position of the word + 1 */
    int32_t *from, *tid;
    size_t lcap;
} uni_ws;

static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;

static void ws_free(void *p)
{
    uni_ws *w = p;
    if (!w) return;
    rr_free(w->a);
    rr_free(w->b);
    rr_free(w->sa);
    rr_free(w->sb);
    rr_free(w->w);
    rr_free(w->wsrc);
    rr_free(w->best);
    rr_free(w->from);
    rr_free(w->tid);
    rr_free(w);
}

static void ws_key_make(void)
{
    pthread_key_create(&ws_key, ws_free);
}

static uni_ws *ws_get(void)
{
    pthread_once(&ws_once, ws_key_make);
    uni_ws *w = pthread_getspecific(ws_key);
    if (!w) {
        w = rr_calloc(1, sizeof *w);
        if (w && pthread_setspecific(ws_key, w) != 0) {
            rr_free(w);
            w = NULL;
        }
    }
    return w;
}

/* Grows the piece buffers to hold n bytes (and their sources, for offsets). 0 on success. */
static int ws_piece(uni_ws *w, size_t n, int offs)
{
    if (n > w->cap) {
        size_t c = rr_grow_cap(w->cap, n, 4096);
        if (!rr_realloc_array(&w->a, c + RR_KEY_SLACK, 1) ||
            !rr_realloc_array(&w->b, c + RR_KEY_SLACK, 1))
            return -1;
        w->cap = c;
    }
    if (offs && n > w->scap) {
        size_t c = rr_grow_cap(w->scap, n, 4096);
        if (!rr_realloc_array(&w->sa, 2 * c, sizeof(int32_t)) ||
            !rr_realloc_array(&w->sb, 2 * c, sizeof(int32_t)))
            return -1;
        w->scap = c;
    }
    return 0;
}

static int ws_word(uni_ws *w, size_t n)
{
    if (n <= w->wcap) return 0;
    size_t c = rr_grow_cap(w->wcap, n, 1024);
    if (!rr_realloc_array(&w->w, c + RR_KEY_SLACK, 1) ||
        !rr_realloc_array(&w->wsrc, 2 * c, sizeof(int32_t)) ||
        !rr_realloc_array(&w->best, c + 1, sizeof(double)) ||
        !rr_realloc_array(&w->from, c + 1, sizeof(int32_t)) ||
        !rr_realloc_array(&w->tid, c + 1, sizeof(int32_t)))
        return -1;
    w->wcap = c;
    return 0;
}

/* --- output ------------------------------------------------------------------------------ */

typedef struct uni_out {
    int32_t *ids, *offs;
    int cap, keep_last, ring;
    long n;
} uni_out;

static void put(uni_out *o, int32_t id, int32_t start, int32_t end)
{
    if (o->keep_last) {
        if (o->cap > 0) {
            o->ids[o->ring] = id;
            if (++o->ring == o->cap) o->ring = 0;
        }
    } else if (o->n < o->cap) {
        o->ids[o->n] = id;
        if (o->offs) {
            o->offs[2 * o->n] = start;
            o->offs[2 * o->n + 1] = end;
        }
    }
    o->n++;
}

/* --- characters -------------------------------------------------------------------------- */

/* Rust's char::is_whitespace (the White_Space property). */
static inline int is_ws(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || rr_is_ws_nonascii(c);
}

/* --- Precompiled ------------------------------------------------------------------------- */

/* Offsets of the charsmap's output, as HF's NormalizedString::transform aligns them. HF
 * describes its output as (char, change) pairs: a replacement of k characters by m gives m
 * pairs of change 0, then the last m - k of them change 1 (inserted: aligned with the
 * character before), or the last pair of the whole list — the previous cluster's when m is 0
 * — change m - k (it swallows that many characters after its own). transform then walks the
 * original characters with one cursor: a pair of change <= 0 takes the character under the
 * cursor and moves it 1 - change characters on. So "e" + U+0301 made "é" covers only "e",
 * and characters deleted at the start of a piece (a leading U+200B) are never skipped: the
 * rest of the piece is aligned one character late, as in HF. */
typedef struct pc_marks {
    int32_t *change; /* at the first byte of each output character */
    long last;       /* first byte of the last output character, -1 before any */
} pc_marks;

static void pc_replace(pc_marks *m, size_t out0, size_t out1, const char *outb, int old_count)
{
    int new_count = 0;
    for (size_t k = out0; k < out1; k += (size_t)rr_utf8_len((unsigned char)outb[k])) {
        m->change[k] = 0;
        m->last = (long)k;
        new_count++;
    }
    int diff = new_count - old_count;
    if (diff > 0) {
        /* the last diff characters of the replacement are insertions */
        int seen = 0;
        for (size_t k = out0; k < out1; k += (size_t)rr_utf8_len((unsigned char)outb[k]))
            if (seen++ >= new_count - diff) m->change[k] = 1;
    } else if (diff < 0 && m->last >= 0) {
        m->change[m->last] += diff;
    }
}

static void pc_align(const unsigned char *text, size_t p0, size_t p1, const char *out, size_t n,
                     const int32_t *change, int32_t *src)
{
    size_t idx = p0;
    for (size_t k = 0; k < n;) {
        size_t cl = (size_t)rr_utf8_len((unsigned char)out[k]);
        int32_t s0, s1;
        if (change[k] > 0) {
            size_t b = idx;
            if (b > p0) {
                b--;
                while (b > p0 && (text[b] & 0xC0) == 0x80)
                    b--;
            }
            s0 = (int32_t)b;
            s1 = (int32_t)(idx > p0 ? idx : p0);
        } else if (idx < p1) {
            s0 = (int32_t)idx;
            idx += (size_t)rr_utf8_len(text[idx]);
            s1 = (int32_t)idx;
            for (int32_t d = change[k]; d < 0 && idx < p1; d++)
                idx += (size_t)rr_utf8_len(text[idx]);
        } else {
            s0 = s1 = (int32_t)p1;
        }
        for (size_t b = 0; b < cl; b++) {
            src[2 * (k + b)] = s0;
            src[2 * (k + b) + 1] = s1;
        }
        k += cl;
    }
}

/* Normalizes raw text[p0, p1) with the charsmap into w->a; returns its length. */
static size_t precompiled(const rr_unigram *u, const unsigned char *text, size_t p0, size_t p1,
                          uni_ws *w, int offs)
{
    char *out = w->a;
    pc_marks m = {offs ? w->sb : NULL, -1};
    size_t n = 0, i = p0;
    utf8proc_int32_t state = 0;
    while (i < p1) {
        /* An ASCII character followed by ASCII (not CR LF) is a cluster of its own, and
         * utf8proc's state after it is what a fresh start computes (0), so the grapheme rules
         * and the trie are skipped for it. */
        unsigned c = text[i];
        if (c < 0x80 &&
            (i + 1 >= p1 || (text[i + 1] < 0x80 && !(c == '\r' && text[i + 1] == '\n')))) {
            int32_t r = u->cm_ascii[c];
            size_t rl = r >= 0 ? strlen(u->cm_pool + r) : 1;
            memcpy(out + n, r >= 0 ? u->cm_pool + r : (const char *)text + i, rl);
            if (offs) pc_replace(&m, n, n + rl, out, 1);
            n += rl;
            state = 0;
            i++;
            continue;
        }
        /* the extended grapheme cluster starting at i */
        size_t j = i + (size_t)rr_utf8_len(text[i]);
        uint32_t c1 = rr_utf8_at(text, i);
        int n_chars = 1;
        while (j < p1) {
            uint32_t c2 = rr_utf8_at(text, j);
            if (utf8proc_grapheme_break_stateful((utf8proc_int32_t)c1, (utf8proc_int32_t)c2,
                                                 &state))
                break;
            c1 = c2;
            j += (size_t)rr_utf8_len(text[j]);
            n_chars++;
        }
        size_t rl = 0;
        const char *r = NULL;
        if (j - i < 6) r = rr_cm_lookup(u, text + i, j - i, &rl);
        if (r) {
            memcpy(out + n, r, rl);
            if (offs) pc_replace(&m, n, n + rl, out, n_chars);
            n += rl;
        } else {
            for (size_t k = i; k < j;) {
                size_t cl = (size_t)rr_utf8_len(text[k]);
                r = rr_cm_lookup(u, text + k, cl, &rl);
                if (!r) {
                    r = (const char *)text + k;
                    rl = cl;
                }
                memcpy(out + n, r, rl);
                if (offs) pc_replace(&m, n, n + rl, out, 1);
                n += rl;
                k += cl;
            }
        }
        i = j;
    }
    if (offs) pc_align(text, p0, p1, out, n, m.change, w->sa);
    return n;
}

/* --- Strip / Replace --------------------------------------------------------------------- */

/* One step from w->a[0, n) into w->b, then swapped into w->a; returns the new length. */
static size_t norm_step(const rr_tokenizer *t, const struct rr_norm_step *st, uni_ws *w, size_t n,
                        int offs)
{
    const char *in = w->a;
    char *out = w->b;
    const int32_t *si = offs ? w->sa : NULL;
    int32_t *so = offs ? w->sb : NULL;
    size_t m = 0;
    if (st->kind == RR_NORM_STRIP) {
        size_t b = 0, e = n;
        if (st->strip_left)
            while (b < e && is_ws(rr_utf8_at((const unsigned char *)in, b)))
                b += (size_t)rr_utf8_len((unsigned char)in[b]);
        if (st->strip_right)
            while (e > b) {
                size_t k = e - 1;
                while (k > b && ((unsigned char)in[k] & 0xC0) == 0x80)
                    k--;
                if (!is_ws(rr_utf8_at((const unsigned char *)in, k))) break;
                e = k;
            }
        memcpy(out, in + b, e - b);
        if (so) memcpy(so, si + 2 * b, 2 * (e - b) * sizeof(int32_t));
        m = e - b;
    } else {
        const char *rep = t->pool + st->rep_off;
        const char *pat = t->pool + st->pat_off;
        for (size_t i = 0; i < n;) {
            size_t run = 0;
            if (st->kind == RR_NORM_REPLACE_SPACES) {
                while (i + run < n && in[i + run] == ' ')
                    run++;
                if (run < 2) run = 0;
            } else if (n - i >= st->pat_len && memcmp(in + i, pat, st->pat_len) == 0) {
                run = st->pat_len;
            }
            if (run) {
                /* HF's NormalizedString::replace inserts the content after removing the match,
                 * so every inserted character takes the alignment of the match's last
                 * character */
                size_t last = i + run - 1;
                while (last > i && ((unsigned char)in[last] & 0xC0) == 0x80)
                    last--;
                put_bytes(out, so, &m, rep, st->rep_len, si ? si[2 * last] : 0,
                          si ? si[2 * last + 1] : 0);
                i += run;
            } else {
                size_t cl = (size_t)rr_utf8_len((unsigned char)in[i]);
                memcpy(out + m, in + i, cl);
                if (so) memcpy(so + 2 * m, si + 2 * i, 2 * cl * sizeof(int32_t));
                m += cl;
                i += cl;
            }
        }
    }
    char *tb = w->a;
    w->a = w->b;
    w->b = tb;
    int32_t *ts = w->sa;
    w->sa = w->sb;
    w->sb = ts;
    return m;
}

/* Bytes the step's output may take for n bytes of input. */
static size_t step_bound(const struct rr_norm_step *st, size_t n)
{
    if (st->kind == RR_NORM_STRIP) return n;
    size_t per = st->kind == RR_NORM_REPLACE_SPACES ? 2 : st->pat_len;
    return n + (n / per + 1) * st->rep_len;
}

/* --- Viterbi ----------------------------------------------------------------------------- */

/* Emits the tokens of a fused run of unknown characters w[a, b): the vocabulary entry of that
 * string if there is one (HF looks the fused string up), else its <0xXX> bytes under
 * byte_fallback, else <unk>. */
static void put_unk(const rr_tokenizer *t, uni_ws *w, uni_out *o, int32_t a, int32_t b)
{
    const rr_unigram *u = &t->uni;
    int32_t s0 = w->wsrc[2 * a], s1 = w->wsrc[2 * (b - 1) + 1];
    int32_t id = b - a <= 4 * RR_TOK_MAX_WORD_CHARS ? rr_vocab_lookup(t, w->w + a, b - a, 0) : -1;
    if (id >= 0) {
        put(o, id, s0, s1);
        return;
    }
    if (u->byte_fallback) {
        int all = 1;
        for (int32_t k = a; k < b; k++)
            all &= u->byte_id[(unsigned char)w->w[k]] >= 0;
        if (all) {
            for (int32_t k = a; k < b; k++)
                put(o, u->byte_id[(unsigned char)w->w[k]], s0, s1);
            return;
        }
    }
    put(o, t->unk_id, s0, s1);
}

/* HF's encode_optimized over the word w->w[0, n), then its tokens in order. */
static void viterbi(const rr_tokenizer *t, uni_ws *w, int32_t n, uni_out *o)
{
    const rr_unigram *u = &t->uni;
    const unsigned char *s = (const unsigned char *)w->w;
    double *best = w->best;
    int32_t *from = w->from, *tid = w->tid;
    for (int32_t i = 0; i <= n; i++)
        from[i] = -1;
    best[0] = 0.0;
    for (int32_t i = 0; i < n;) {
        const double here = best[i];
        const int32_t mb = rr_utf8_len(s[i]);
        int single = 0;
        uint32_t node = 1;
        for (int32_t j = i; j < n;) {
            const int32_t cl = rr_utf8_len(s[j]);
            const uint32_t cp = rr_utf8_at(s, (size_t)j);
            const rr_trie_edge *e = NULL;
            if (node == 1 && cp < 128) {
                e = &u->root_ascii[cp];
                if (e->key == 0) break;
            } else {
                e = rr_trie_edge_find(u, node, cp);
                if (!e) break;
            }
            node = e->child;
            j += cl;
            const int32_t id = e->id;
            if (id >= 0) {
                double cand = here + u->scores[id];
                if (from[j] < 0 || cand > best[j]) {
                    best[j] = cand;
                    from[j] = i;
                    tid[j] = id;
                }
                if (j - i == mb) single = 1;
            }
        }
        if (!single) {
            double cand = here + u->unk_score;
            if (from[i + mb] < 0 || cand > best[i + mb]) {
                best[i + mb] = cand;
                from[i + mb] = i;
                tid[i + mb] = t->unk_id; /* fused below */
            }
        }
        i += mb;
    }
    /* Backtrack, turning from[] into forward links along the best path: from[j] becomes the
     * end of the token after the one ending at j, and `end` the end of the first token. */
    int32_t cur = n, end = -1;
    while (cur > 0) {
        int32_t st = from[cur];
        from[cur] = end;
        end = cur;
        cur = st;
    }
    int32_t a = 0;
    while (end > 0) {
        int32_t id = tid[end];
        if (id == t->unk_id) {
            /* fuse the run of unknown nodes (HF: any node with the unk id, the <unk> piece
             * itself included) */
            int32_t b = end, after = from[end];
            while (after > 0 && tid[after] == t->unk_id) {
                b = after;
                after = from[after];
            }
            put_unk(t, w, o, a, b);
            a = b;
            end = after;
            continue;
        }
        put(o, id, w->wsrc[2 * a], w->wsrc[2 * (end - 1) + 1]);
        a = end;
        end = from[end];
    }
}

/* --- Metaspace --------------------------------------------------------------------------- */

/* Appends one character of a sub-piece to the word, ' ' as ▁. */
static inline void word_char(uni_ws *w, int32_t *wn, const char *p, size_t cl, const int32_t *src)
{
    if (cl == 1 && *p == ' ') {
        memcpy(w->w + *wn, "\xe2\x96\x81", 3);
        cl = 3;
    } else {
        memcpy(w->w + *wn, p, cl);
    }
    if (src) /* offsets only: without them the sources are never read */
        for (size_t k = 0; k < cl; k++) {
            w->wsrc[2 * (*wn + (int32_t)k)] = src[0];
            w->wsrc[2 * (*wn + (int32_t)k) + 1] = src[1];
        }
    *wn += (int32_t)cl;
}

static inline int is_meta(const char *p, size_t left)
{
    return (left >= 1 && *p == ' ') || (left >= 3 && memcmp(p, "\xe2\x96\x81", 3) == 0);
}

/* Metaspace over one sub-piece in[a, b) (sources src, or NULL), then the Viterbi per word. */
static int metaspace(const rr_tokenizer *t, uni_ws *w, size_t a, size_t b, int prepend_ok,
                     uni_out *o)
{
    const rr_unigram *u = &t->uni;
    const char *in = w->a;
    const int32_t *src = o->offs ? w->sa : NULL;
    if (a >= b) return 0;
    /* a word is at most the sub-piece with every ' ' widened to ▁, plus a prepended ▁ */
    if (ws_word(w, 3 * (b - a) + 3)) return -1;
    int prepend = !is_meta(in + a, b - a) && (u->prepend == RR_PREPEND_ALWAYS ||
                                              (u->prepend == RR_PREPEND_FIRST && prepend_ok));
    int32_t wn = 0;
    if (prepend) {
        /* the inserted ▁ is aligned with the character it precedes, as in HF */
        int32_t s[2] = {src ? src[2 * a] : 0, src ? src[2 * a + 1] : 0};
        word_char(w, &wn, " ", 1, src ? s : NULL);
    }
    for (size_t i = a; i < b;) {
        size_t cl = (size_t)rr_utf8_len((unsigned char)in[i]);
        if (u->split && wn > 0 && is_meta(in + i, b - i)) {
            viterbi(t, w, wn, o);
            wn = 0;
        }
        word_char(w, &wn, in + i, cl, src ? src + 2 * i : NULL);
        i += cl;
    }
    if (wn > 0) viterbi(t, w, wn, o);
    return 0;
}

/* One piece of raw text (between added tokens): normalize, pre-tokenize, Viterbi. */
static int piece(const rr_tokenizer *t, const unsigned char *text, size_t p0, size_t p1, uni_ws *w,
                 int offs, uni_out *o)
{
    const rr_unigram *u = &t->uni;
    if (p0 >= p1) return 0;
    size_t raw = p1 - p0;
    size_t n;
    if (u->cm_units) {
        /* a character becomes at most its longest replacement (or itself) */
        size_t grow = u->cm_max_rep > 4 ? u->cm_max_rep : 4;
        if (ws_piece(w, raw * grow, offs)) return -1;
        n = precompiled(u, text, p0, p1, w, offs);
    } else {
        if (ws_piece(w, raw, offs)) return -1;
        memcpy(w->a, text + p0, raw);
        if (offs)
            for (size_t i = p0; i < p1;) {
                size_t cl = (size_t)rr_utf8_len(text[i]);
                for (size_t k = 0; k < cl; k++) {
                    w->sa[2 * (i - p0 + k)] = (int32_t)i;
                    w->sa[2 * (i - p0 + k) + 1] = (int32_t)(i + cl);
                }
                i += cl;
            }
        n = raw;
    }
    for (int k = 0; k < u->n_norm; k++) {
        if (ws_piece(w, step_bound(&u->norm[k], n), offs)) return -1;
        n = norm_step(t, &u->norm[k], w, n, offs);
    }
    if (!u->whitespace_split) return metaspace(t, w, 0, n, p0 == 0, o);
    /* WhitespaceSplit first: each run of non-whitespace is a sub-piece of its own */
    int first = 1;
    for (size_t i = 0; i < n;) {
        while (i < n && is_ws(rr_utf8_at((const unsigned char *)w->a, i)))
            i += (size_t)rr_utf8_len((unsigned char)w->a[i]);
        size_t b = i;
        while (b < n && !is_ws(rr_utf8_at((const unsigned char *)w->a, b)))
            b += (size_t)rr_utf8_len((unsigned char)w->a[b]);
        if (b > i && metaspace(t, w, i, b, p0 == 0 && first && i == 0, o)) return -1;
        first = 0;
        i = b;
    }
    return 0;
}

/* --- added tokens ------------------------------------------------------------------------ */

rr_status rr_unigram_encode(const rr_tokenizer *t, const char *text, size_t len, int keep_last,
                            int32_t *ids, int32_t *offsets, int cap, int *n_total)
{
    const unsigned char *s = (const unsigned char *)text;
    int offs = offsets != NULL;
    uni_ws *w = ws_get();
    if (!w) return RR_E_NOMEM;
    uni_out o = {ids, offsets, cap, keep_last, 0, 0};
    size_t start = 0; /* the current piece starts here */
    for (size_t i = 0; i < len;) {
        const rr_added_token *a =
            t->added_first[s[i]] ? rr_match_added(t, text + i, len - i) : NULL;
        if (!a) {
            i += (size_t)rr_utf8_len(s[i]);
            continue;
        }
        size_t b = i, e = i + a->len;
        if (a->lstrip)
            while (b > start) {
                size_t k = b - 1;
                while (k > start && (s[k] & 0xC0) == 0x80)
                    k--;
                if (!is_ws(rr_utf8_at(s, k))) break;
                b = k;
            }
        if (a->rstrip)
            while (e < len && is_ws(rr_utf8_at(s, e)))
                e += (size_t)rr_utf8_len(s[e]);
        if (piece(t, s, start, b, w, offs, &o)) return RR_E_NOMEM;
        put(&o, a->id, (int32_t)b, (int32_t)e); /* HF: the split, stripped whitespace included */
        start = i = e;
    }
    if (piece(t, s, start, len, w, offs, &o)) return RR_E_NOMEM;

    if (keep_last && o.n > cap) rr_ring_unroll(ids, cap, o.ring);
    if (o.n > INT32_MAX) return RR_E_TOO_LONG;
    *n_total = (int)o.n;
    return RR_OK;
}
