/*
 * peers.c — the peers' side of the comparison, read from bench/peers/peers.py's JSON: for
 * each peer (sentence-transformers, transformers), its raw latencies per K on the same
 * requests, as measurement points, and its logits of pool[0] of each K for validation.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int rb_peers_read(const char *path, const rb_inputs *in, rb_peers *out)
{
    char *text = rb_slurp(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    memset(out, 0, sizeof *out);
    if (!root) {
        fprintf(stderr, "rerank-bench: --peers %s: unreadable or not JSON\n", path);
        return -1;
    }
    const cJSON *arr = cJSON_GetObjectItem(root, "peers"), *pe;
    const cJSON *mach = cJSON_GetObjectItem(root, "environment");
    if (cJSON_IsString(mach)) snprintf(out->machine, sizeof out->machine, "%s", mach->valuestring);
    cJSON_ArrayForEach(pe, arr)
    {
        if (out->n == MAX_PEERS) break;
        rb_peer *p = &out->p[out->n++];
        const cJSON *nm = cJSON_GetObjectItem(pe, "name"), *ds = cJSON_GetObjectItem(pe, "desc");
        const cJSON *ks = cJSON_GetObjectItem(pe, "per_k"), *kv;
        snprintf(p->name, sizeof p->name, "%s", cJSON_IsString(nm) ? nm->valuestring : "?");
        snprintf(p->desc, sizeof p->desc, "%s", cJSON_IsString(ds) ? ds->valuestring : "");
        p->by_k = calloc((size_t)in->n_k, sizeof *p->by_k);
        p->logits0 = calloc((size_t)in->n_k, sizeof *p->logits0);
        if (!p->by_k || !p->logits0) return -1;
        for (int ki = 0; ki < in->n_k; ki++)
            p->by_k[ki].k = -1;
        cJSON_ArrayForEach(kv, ks)
        {
            int k = cJSON_GetObjectItem(kv, "k")->valueint, ki;
            for (ki = 0; ki < in->n_k && in->per_k[ki].k != k; ki++) {
            }
            if (ki == in->n_k) continue;
            const cJSON *lat = cJSON_GetObjectItem(kv, "latency_s"),
                        *lg = cJSON_GetObjectItem(kv, "logits0"), *x;
            rb_point *pt = &p->by_k[ki];
            if (rb_point_init(pt, "peer", k, cJSON_GetArraySize(lat))) return -1;
            cJSON_ArrayForEach(x, lat)
            {
                pt->lat[pt->n++] = x->valuedouble;
                pt->wall_s += x->valuedouble;
                pt->pairs += k;
                pt->tokens += in->per_k[ki]
                                  .pool[(in->per_k[ki].warmup + pt->n - 1) % in->per_k[ki].n_pool]
                                  .tokens;
            }
            pt->clients = 1;
            rb_point_finish(pt);
            if (cJSON_GetArraySize(lg) == k) {
                p->logits0[ki] = malloc((size_t)k * sizeof(float));
                if (!p->logits0[ki]) return -1;
                int i = 0;
                cJSON_ArrayForEach(x, lg) p->logits0[ki][i++] = (float)x->valuedouble;
            }
        }
    }
    cJSON_Delete(root);
    return 0;
}

void rb_peers_free(rb_peers *ps, int n_k)
{
    for (int i = 0; i < ps->n; i++) {
        for (int ki = 0; ki < n_k; ki++) {
            if (ps->p[i].by_k && ps->p[i].by_k[ki].k >= 0) rb_point_free(&ps->p[i].by_k[ki]);
            if (ps->p[i].logits0) free(ps->p[i].logits0[ki]);
        }
        free(ps->p[i].by_k);
        free(ps->p[i].logits0);
    }
}

int rb_peers_find(const rb_peers *ps, const char *name)
{
    int found = -1;
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].name, name) == 0) found = i;
    return found;
}
