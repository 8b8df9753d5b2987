/*
 * metrics.h — the ranking metrics of rerank-eval, defined as trec_eval (and so pytrec_eval)
 * defines them, which tests/bench checks to 1e-6:
 *
 *   - a ranking is the run's documents sorted by score, descending, ties broken by document
 *     id in descending strcmp order (trec_eval's rule; the run's own rank column is ignored);
 *   - relevant means a qrels judgment ≥ 1; unjudged documents count as 0;
 *   - nDCG@k: gain = the judgment itself (linear, trec_eval's default, not 2^rel − 1),
 *     discount log2(1 + rank); the ideal ranking sorts all of the query's positive
 *     judgments; 0 when the query has none;
 *   - RR@k (MRR@k averaged): 1 / rank of the first relevant document within the top k, else 0
 *     (pytrec_eval's recip_rank on the ranking cut at k);
 *   - Recall@k: relevant documents in the top k / relevant documents judged; 0 when none.
 */
#ifndef RB_METRICS_H
#define RB_METRICS_H

typedef struct ev_doc {
    const char *docid;
    double score;
    int rel; /* the query's judgment of this document, 0 when unjudged */
} ev_doc;

/* Sorts d[0..n) into trec_eval's order (score desc, then docid desc). */
void ev_sort_trec(ev_doc *d, int n);

/* Metrics of a ranking already in trec order. ideal[0..n_ideal) are the query's positive
 * judgments in any order (sorted in place). */
double ev_ndcg_at(const ev_doc *d, int n, int *ideal, int n_ideal, int k);
double ev_rr_at(const ev_doc *d, int n, int k);
double ev_recall_at(const ev_doc *d, int n, int n_relevant, int k);

#endif /* RB_METRICS_H */
