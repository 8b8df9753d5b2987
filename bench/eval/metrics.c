/*
 * metrics.c — see metrics.h.
 */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_trec(const void *a, const void *b)
{
    const ev_doc *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return -strcmp(x->docid, y->docid);
}

void ev_sort_trec(ev_doc *d, int n)
{
    if (n > 0) qsort(d, (size_t)n, sizeof *d, cmp_trec); /* d may be NULL when empty */
}

static int cmp_int_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

double ev_ndcg_at(const ev_doc *d, int n, int *ideal, int n_ideal, int k)
{
    double dcg = 0, idcg = 0;
    if (n_ideal > 0)
        qsort(ideal, (size_t)n_ideal, sizeof *ideal,
              cmp_int_desc); /* ideal may be NULL when empty */
    for (int i = 0; i < n && i < k; i++)
        if (d[i].rel > 0) dcg += d[i].rel / log2(i + 2.0);
    for (int i = 0; i < n_ideal && i < k; i++)
        if (ideal[i] > 0) idcg += ideal[i] / log2(i + 2.0);
    return idcg > 0 ? dcg / idcg : 0;
}

double ev_rr_at(const ev_doc *d, int n, int k)
{
    for (int i = 0; i < n && i < k; i++)
        if (d[i].rel > 0) return 1.0 / (i + 1);
    return 0;
}

double ev_recall_at(const ev_doc *d, int n, int n_relevant, int k)
{
    int hit = 0;
    if (n_relevant <= 0) return 0;
    for (int i = 0; i < n && i < k; i++)
        hit += d[i].rel > 0;
    return (double)hit / n_relevant;
}
