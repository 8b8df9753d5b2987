/*
 * score.c — rr_score_query (one query against n_docs passages, for the CLI, tests and
 * benchmarks) and rr_sigmoid.
 *
 * The query is tokenized once, each passage once; pairs are assembled with rr_pair_build and
 * packed greedily, in input order, into batches of at most the engine's max_batch_tokens, so
 * each batch's logits land directly at their documents' positions. Unlike the server path
 * this allocates its buffers per call (and frees them on every exit).
 */
#include <math.h>
#include <string.h>

#include "engine/engine_cpu.h"
#include "util/util.h"

/* Scores the pending batch into logits[first ...]. */
static rr_status flush(rr_engine *e, int n_seq, const int32_t *tokens, const int32_t *types,
                       const int32_t *cu, float *logits, int first, rr_error *err)
{
    if (n_seq == 0) return RR_OK;
    rr_batch b = {.n_seq = n_seq, .n_tok = cu[n_seq], .tokens = tokens, .type_ids = types,
                  .cu_seqlens = cu};
    rr_status s = rr_engine_forward(e, &b, logits + first);
    if (s != RR_OK)
        return rr_set_error(err, s, "engine forward failed (%s) on documents %d..%d",
                            rr_status_name(s), first, first + n_seq - 1);
    return RR_OK;
}

rr_status rr_score_query(rr_engine *e, const rr_model *m, const char *query, size_t query_len,
                         const char *const *docs, const size_t *doc_lens, int n_docs,
                         const rr_score_opts *opts, float *logits, rr_error *err)
{
    rr_score_opts o = {.max_length = 0, .truncate = 1, .keep_last = 0};
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
    int ml = o.max_length ? o.max_length : in->max_length;
    if (ml < 3 || ml > in->max_length)
        return rr_set_error(err, RR_E_INVALID, "max_length %d is outside 3..%d", o.max_length,
                            in->max_length);
    const int cap = rr_engine_max_batch_tokens(e);
    const int keep_last = o.keep_last ? 1 : 0;

    /* One allocation: q, d, pair ids/types [ml each], batch tokens/types [cap], cu [cap+1]. */
    buf = rr_malloc(((size_t)ml * 4 + (size_t)cap * 3 + 1) * sizeof *buf);
    if (!buf) return rr_set_error(err, RR_E_NOMEM, "out of memory scoring %d documents", n_docs);
    int32_t *q = buf, *d = q + ml, *pair = d + ml, *pair_types = pair + ml;
    int32_t *tokens = pair_types + ml, *types = tokens + cap, *cu = types + cap;

    int q_total = 0, d_total = 0;
    if (rr_tokenizer_encode(tok, query ? query : "", query_len, keep_last, q, ml, &q_total) !=
        RR_OK) {
        s = rr_set_error(err, RR_E_UTF8, "the query is not valid UTF-8");
        goto done;
    }
    int q_stored = q_total < ml ? q_total : ml;

    int n_seq = 0, first = 0;
    cu[0] = 0;
    for (int i = 0; i < n_docs; i++) {
        if (!docs[i] && doc_lens[i]) {
            s = rr_set_error(err, RR_E_INVALID, "document %d is NULL", i);
            goto done;
        }
        if (rr_tokenizer_encode(tok, docs[i] ? docs[i] : "", doc_lens[i], keep_last, d, ml,
                                &d_total) != RR_OK) {
            s = rr_set_error(err, RR_E_UTF8, "document %d is not valid UTF-8", i);
            goto done;
        }
        int d_stored = d_total < ml ? d_total : ml;
        int len = rr_pair_build(tok, q, q_stored, q_total, d, d_stored, d_total, ml, o.truncate,
                                keep_last, pair, pair_types);
        if (len < 0) {
            s = rr_set_error(err, RR_E_TOO_LONG,
                             "document %d: the pair is %lld tokens, over max_length %d "
                             "(truncation is off)",
                             i, (long long)q_total + d_total + 3, ml);
            goto done;
        }
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
