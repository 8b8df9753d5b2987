/*
 * health.c — grpc.health.v1.Health: Check and Watch (guide §8). Every service rerankd
 * serves shares one status: NOT_SERVING while the model loads and while draining, SERVING
 * in between. "" (the whole server) follows the same status. Unknown service: Check →
 * NOT_FOUND; Watch → SERVICE_UNKNOWN and the stream stays open. Watchers sit in a list
 * (holding a reference) and get a message on every change.
 */
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/wing.h"
#include "util/util.h"

static const char *const known_services[] = {
    "",
    "rerank.v1.Reranker",
    "tei.v1.Rerank",
    "tei.v1.Info",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
};

static int known(const char *name)
{
    for (size_t i = 0; i < sizeof known_services / sizeof known_services[0]; i++)
        if (strcmp(name, known_services[i]) == 0) return 1;
    return 0;
}

static Grpc__Health__V1__HealthCheckRequest *decode(rr_call *c)
{
    rr_problem p;
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)rr_decode(
        &grpc__health__v1__health_check_request__descriptor, c->payload, rr_call_arena(c), NULL,
        "HealthCheckRequest", &p);
    if (!req) {
        rr_call_fail(c, &p);
        return NULL;
    }
    size_t n = strlen(req->service);
    if (rr_utf8_check(req->service, n) != n) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "service is not valid UTF-8");
        return NULL;
    }
    return req;
}

static grpc_byte_buffer *status_message(int status)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = status;
    return rr_pack(&resp.base);
}

void rr_svc_health_check(rr_call *c)
{
    Grpc__Health__V1__HealthCheckRequest *req = decode(c);
    if (!req) return;
    if (!known(req->service)) {
        rr_call_finish(c, GRPC_STATUS_NOT_FOUND, "unknown service %s", req->service);
    } else {
        rr_call_send(c, status_message(rr_health_get(c->srv)));
        rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
    }
}

/* Watch: svc is non-NULL while the call is in the watcher list. */
static void watch_closed(rr_call *c)
{
    rr_grpc *g = c->g;
    pthread_mutex_lock(&g->watch_mu);
    int removed = 0;
    for (rr_call **pp = &g->watchers; *pp; pp = &(*pp)->watch_next) {
        if (*pp == c) {
            *pp = c->watch_next;
            removed = 1;
            break;
        }
    }
    pthread_mutex_unlock(&g->watch_mu);
    if (removed) rr_call_unref(c); /* never the last reference: on_close holds one */
}

void rr_svc_health_watch(rr_call *c)
{
    rr_grpc *g = c->g;
    Grpc__Health__V1__HealthCheckRequest *req = decode(c);
    if (!req) return;
    int is_known = known(req->service);
    if (!is_known) {
        /* Stays open until the client goes away (or shutdown cancels it). */
        rr_call_send(c,
                     status_message(
                         GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN));
        return;
    }
    c->on_closed = watch_closed;
    /* Under watch_mu, so a change cannot slip between the status read and the listing:
     * rr_grpc_health_changed lists the watchers under the same lock after the edge set the
     * new status. */
    pthread_mutex_lock(&g->watch_mu);
    rr_call_send(c, status_message(rr_health_get(c->srv)));
    rr_call_ref(c);
    c->watch_next = g->watchers;
    g->watchers = c;
    pthread_mutex_unlock(&g->watch_mu);
}

void rr_grpc_health_changed(void *ctx, rr_health h)
{
    /* Lock order: a call's mu, then watch_mu (as in rr_svc_health_watch / watch_closed).
     * Here we must not take call locks under watch_mu: collect references first. At most
     * 256 watchers are notified of one change (a known limit; later ones keep the old
     * status until they re-watch). */
    rr_grpc *g = ctx;
    rr_call *list[256];
    int n = 0;
    pthread_mutex_lock(&g->watch_mu);
    for (rr_call *w = g->watchers; w && n < 256; w = w->watch_next) {
        rr_call_ref(w);
        list[n++] = w;
    }
    pthread_mutex_unlock(&g->watch_mu);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&list[i]->mu);
        if (!list[i]->dead) rr_call_send(list[i], status_message(h));
        pthread_mutex_unlock(&list[i]->mu);
        rr_call_unref(list[i]);
    }
}
