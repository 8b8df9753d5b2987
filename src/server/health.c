/*
 * health.c — grpc.health.v1.Health: Check and Watch (guide §8). Every service rerankd
 * serves shares one status: NOT_SERVING while the model loads and while draining, SERVING
 * in between. "" (the whole server) follows the same status. Unknown service: Check →
 * NOT_FOUND; Watch → SERVICE_UNKNOWN and the stream stays open. Watchers sit in a list
 * (holding a reference) and get a message on every change.
 */
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "server.h"

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

static grpc_byte_buffer *status_message(int status)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = status;
    return rr_pack(&resp.base);
}

void rr_svc_health_check(rr_call *c)
{
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)rr_unpack(
        &grpc__health__v1__health_check_request__descriptor, c->payload, rr_call_arena(c));
    if (!req) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest");
        return;
    }
    if (!known(req->service)) {
        rr_call_finish(c, GRPC_STATUS_NOT_FOUND, "unknown service %s", req->service);
    } else {
        pthread_mutex_lock(&c->srv->health_mu);
        int h = c->srv->health;
        pthread_mutex_unlock(&c->srv->health_mu);
        rr_call_send(c, status_message(h));
        rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
    }
}

/* Watch: svc is non-NULL while the call is in the watcher list. */
static void watch_closed(rr_call *c)
{
    rr_server *srv = c->srv;
    pthread_mutex_lock(&srv->health_mu);
    int removed = 0;
    for (rr_call **pp = &srv->watchers; *pp; pp = &(*pp)->watch_next) {
        if (*pp == c) {
            *pp = c->watch_next;
            removed = 1;
            break;
        }
    }
    pthread_mutex_unlock(&srv->health_mu);
    if (removed) rr_call_unref(c); /* never the last reference: on_close holds one */
}

void rr_svc_health_watch(rr_call *c)
{
    rr_server *srv = c->srv;
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)rr_unpack(
        &grpc__health__v1__health_check_request__descriptor, c->payload, rr_call_arena(c));
    if (!req) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest");
        return;
    }
    int is_known = known(req->service);
    if (!is_known) {
        /* Stays open until the client goes away (or shutdown cancels it). */
        rr_call_send(c, status_message(GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN));
        return;
    }
    c->on_closed = watch_closed;
    pthread_mutex_lock(&srv->health_mu);
    rr_call_send(c, status_message(srv->health));
    rr_call_ref(c);
    c->watch_next = srv->watchers;
    srv->watchers = c;
    pthread_mutex_unlock(&srv->health_mu);
}

void rr_health_set(rr_server *srv, rr_health h)
{
    /* Lock order: a call's mu, then health_mu (as in rr_svc_health_watch / watch_closed).
     * Here we must not take call locks under health_mu: collect references first. At most
     * 256 watchers are notified of one change (a known limit; later ones keep the old
     * status until they re-watch). */
    rr_call *list[256];
    int n = 0;
    pthread_mutex_lock(&srv->health_mu);
    int changed = srv->health != h;
    srv->health = h;
    for (rr_call *w = srv->watchers; changed && w && n < 256; w = w->watch_next) {
        rr_call_ref(w);
        list[n++] = w;
    }
    pthread_mutex_unlock(&srv->health_mu);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&list[i]->mu);
        if (!list[i]->dead) rr_call_send(list[i], status_message(h));
        pthread_mutex_unlock(&list[i]->mu);
        rr_call_unref(list[i]);
    }
}
