/*
 * score.c — scoring helpers of librerank: rr_score_query (one query against n_docs passages,
 * for the CLI, tests and benchmarks), rr_sigmoid and rr_rank.
 *
 * rr_score_query encodes the query once and each passage once through rr_pair_encode (the
 * scheduler's own pair builder, so both paths fail with the same messages), and packs the
 * pairs greedily, in input order, into batches of at most the engine's max_batch_tokens, so
 * each batch's logits land directly at their documents' positions. With opts->chunk each
 * document's windows (rr_doc_windows) are packed the same way, their logits gathered per
 * document and combined (rr_chunk_combine) at the end. Unlike the server path this
 * allocates its buffers per call (and frees them on every exit).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/* Scores the pending batch into logits[first ...]. */
static rr_status flush(rr_engine *e, int n_seq, const int32_t *tokens, const int32_t *types,
                       const int32_t *cu, float *logits, int first, rr_error *err)
{
    if (n_seq == 0) return RR_OK;
    rr_batch b = {
        .n_seq = n_seq, .n_tok = cu[n_seq], .tokens = tokens, .type_ids = types, .cu_seqlens = cu};
    rr_status s = rr_engine_forward(e, &b, logits + first);
    if (s != RR_OK)
        return rr_set_error(err, s, "engine forward failed (%s) on documents %d..%d",
                            rr_status_name(s), first, first + n_seq - 1);
    return RR_OK;
}

/* The chunked path of rr_score_query (options already checked and defaulted). */
static rr_status score_chunked(rr_engine *e, const rr_tokenizer *tok, const rr_side *q,
                               const char *const *docs, const size_t *doc_lens, int n_docs,
                               const rr_pair_opts *o, float *logits, rr_error *err)
{
    const int ml = o->max_length, mc = o->max_chunks, cap = rr_engine_max_batch_tokens(e);
    const int dcap = rr_chunk_doc_cap(rr_tokenizer_pair_specials(tok), o);
    rr_status s = RR_OK;
    if (ml > cap)
        return rr_set_error(err, RR_E_INVALID, "max_length %d is over the batch budget %d", ml,
                            cap);
    /* dbuf [dcap], window pairs and types [mc * ml each], batch tokens/types [cap], cu
     * [cap + 1], then the windows, their logits per document, the batch's owners */
    size_t n_int = (size_t)dcap + 2 * (size_t)mc * ml + 3 * (size_t)cap + 1;
    int32_t *buf = rr_malloc(n_int * sizeof *buf);
    rr_window *win = rr_malloc((size_t)mc * sizeof *win);
    float *wlog = rr_malloc((size_t)n_docs * mc * sizeof *wlog);
    float *blog = rr_malloc((size_t)cap * sizeof *blog);
    int *nwin = rr_calloc((size_t)n_docs, sizeof *nwin);
    long *owner = rr_malloc((size_t)cap * sizeof *owner); /* doc * mc + window, per sequence */
    if (!buf || !win || !wlog || !blog || !nwin || !owner) {
        s = rr_set_error(err, RR_E_NOMEM, "out of memory scoring %d documents in windows", n_docs);
        goto done;
    }
    int32_t *dbuf = buf, *wids = dbuf + dcap, *wtypes = wids + (size_t)mc * ml;
    int32_t *tokens = wtypes + (size_t)mc * ml, *types = tokens + cap, *cu = types + cap;
    int n_seq = 0;
    cu[0] = 0;
    for (int i = 0; i <= n_docs; i++) {
        rr_chunk_plan plan = {0};
        if (i < n_docs) {
            if (!docs[i] && doc_lens[i]) {
                s = rr_set_error(err, RR_E_INVALID, "documents[%d] is NULL", i);
                goto done;
            }
            s = rr_doc_windows(tok, q, docs[i] ? docs[i] : "", doc_lens[i], o, "documents", i, dbuf,
                               NULL, dcap, wids, wtypes, win, &plan, err);
            if (s != RR_OK) goto done;
            nwin[i] = plan.n_windows;
        }
        for (int k = 0; k <= plan.n_windows; k++) {
            int last = i == n_docs; /* the final pass only flushes */
            int len = k < plan.n_windows ? win[k].len : 0;
            if (n_seq && (last || cu[n_seq] + len > cap)) {
                rr_batch b = {.n_seq = n_seq,
                              .n_tok = cu[n_seq],
                              .tokens = tokens,
                              .type_ids = types,
                              .cu_seqlens = cu};
                if ((s = rr_engine_forward(e, &b, blog)) != RR_OK) {
                    s = rr_set_error(err, s, "engine forward failed (%s) on %d windows",
                                     rr_status_name(s), n_seq);
                    goto done;
                }
                for (int j = 0; j < n_seq; j++)
                    wlog[owner[j]] = blog[j];
                n_seq = 0;
            }
            if (k == plan.n_windows || last) break;
            memcpy(tokens + cu[n_seq], wids + win[k].off, (size_t)len * sizeof *tokens);
            memcpy(types + cu[n_seq], wtypes + win[k].off, (size_t)len * sizeof *types);
            owner[n_seq] = (long)i * mc + k;
            cu[n_seq + 1] = cu[n_seq] + len;
            n_seq++;
        }
    }
    for (int i = 0; i < n_docs; i++) {
        int best;
        logits[i] = rr_chunk_combine(wlog + (size_t)i * mc, nwin[i], o->chunk_score, &best);
    }
done:
    rr_free(buf);
    rr_free(win);
    rr_free(wlog);
    rr_free(blog);
    rr_free(nwin);
    rr_free(owner);
    return s;
}

rr_status rr_score_query(rr_engine *e, const rr_model *m, const char *query, size_t query_len,
                         const char *const *docs, const size_t *doc_lens, int n_docs,
                         const rr_score_opts *opts, float *logits, rr_error *err)
{
    rr_pair_opts o = {.max_length = 0, .truncate = 1, .keep_last = 0};
    int32_t *buf = NULL;
    rr_status s = RR_OK;

    if (!e || !m || !logits || (!query && query_len))
        return rr_set_error(err, RR_E_INVALID, "rr_score_query: NULL engine, model or output");
    if (n_docs <= 0) return rr_set_error(err, RR_E_INVALID, "no documents");
    if (!docs || !doc_lens)
        return rr_set_error(err, RR_E_INVALID, "rr_score_query: NULL documents");
    if (opts) o = *opts;

    const rr_model_info *in = rr_model_get_info(m);
    const rr_tokenizer *tok = rr_model_tokenizer(m);
    if (in->n_labels != 1)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "rr_score_query needs a model with one label (this one has %d)",
                            in->n_labels);
    int asked = o.max_length;
    if (!o.max_length) o.max_length = in->max_length;
    const int sp = rr_tokenizer_pair_specials(tok);
    if (o.max_length < sp || o.max_length > in->max_length)
        return rr_set_error(err, RR_E_INVALID, "max_length %d is outside %d..%d", asked, sp,
                            in->max_length);
    o.keep_last = o.keep_last ? 1 : 0;
    const int ml = o.max_length, cap = rr_engine_max_batch_tokens(e);
    if (o.chunk) {
        if (o.max_chunks < 1) o.max_chunks = 1;
        int32_t *qb = rr_malloc((size_t)ml * sizeof *qb);
        if (!qb) return rr_set_error(err, RR_E_NOMEM, "out of memory for the query");
        rr_side qs;
        s = rr_query_encode(tok, query ? query : "", query_len, &o, qb, &qs, err);
        if (s == RR_OK) s = score_chunked(e, tok, &qs, docs, doc_lens, n_docs, &o, logits, err);
        rr_free(qb);
        return s;
    }

    /* One allocation: q, d, pair ids/types [ml each], batch tokens/types [cap], cu [cap+1]. */
    buf = rr_malloc(((size_t)ml * 4 + (size_t)cap * 3 + 1) * sizeof *buf);
    if (!buf) return rr_set_error(err, RR_E_NOMEM, "out of memory scoring %d documents", n_docs);
    int32_t *qbuf = buf, *d = qbuf + ml, *pair = d + ml, *pair_types = pair + ml;
    int32_t *tokens = pair_types + ml, *types = tokens + cap, *cu = types + cap;

    rr_side q;
    if ((s = rr_query_encode(tok, query ? query : "", query_len, &o, qbuf, &q, err)) != RR_OK)
        goto done;
    int n_seq = 0, first = 0;
    cu[0] = 0;
    for (int i = 0; i < n_docs; i++) {
        if (!docs[i] && doc_lens[i]) {
            s = rr_set_error(err, RR_E_INVALID, "documents[%d] is NULL", i);
            goto done;
        }
        int len = 0;
        s = rr_pair_encode(tok, &q, docs[i] ? docs[i] : "", doc_lens[i], &o, "documents", i, d,
                           pair, pair_types, &len, err);
        if (s != RR_OK) goto done;
        if (cu[n_seq] + len > cap) {
            if ((s = flush(e, n_seq, tokens, types, cu, logits, first, err)) != RR_OK) goto done;
            first += n_seq;
            n_seq = 0;
        }
        memcpy(tokens + cu[n_seq], pair, (size_t)len * sizeof *pair);
        memcpy(types + cu[n_seq], pair_types, (size_t)len * sizeof *pair_types);
        cu[n_seq + 1] = cu[n_seq] + len;
        n_seq++;
    }
    s = flush(e, n_seq, tokens, types, cu, logits, first, err);
done:
    rr_free(buf);
    return s;
}

float rr_sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* Best first; NaN after every number; ties (and NaNs among themselves) by input order. */
static int ranked_cmp(const void *a, const void *b)
{
    const rr_ranked *x = a, *y = b;
    int xn = isnan(x->logit), yn = isnan(y->logit);
    if (xn != yn) return xn - yn;
    if (!xn && x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

void rr_rank(const float *logits, int n, rr_ranked *out)
{
    for (int i = 0; i < n; i++)
        out[i] = (rr_ranked){logits[i], i};
    qsort(out, (size_t)n, sizeof *out, ranked_cmp);
}
