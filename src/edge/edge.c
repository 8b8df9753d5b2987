/*
 * edge.c — life of the neutral server state (contract in edge.h): init and free, health,
 * and the admission gate the front passes through before it touches the scheduler.
 */
#define _POSIX_C_SOURCE 200809L
#include "edge/edge.h"

#include <string.h>
#include <time.h>

#include "util/util.h"

void rr_edge_init(rr_server *srv, const rr_config *cfg)
{
    memset(srv, 0, sizeof *srv);
    srv->cfg = *cfg;
    srv->tls_mode = "off";
    srv->health = RR_HEALTH_NOT_SERVING;
    pthread_mutex_init(&srv->health_mu, NULL);
    pthread_mutex_init(&srv->metrics_mu, NULL);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    srv->boot_unix = (double)wall.tv_sec + wall.tv_nsec * 1e-9;
}

void rr_edge_free(rr_server *srv)
{
    rr_free(srv->metrics_buf);
    srv->metrics_buf = NULL;
    srv->metrics_cap = 0;
    pthread_mutex_destroy(&srv->health_mu);
    pthread_mutex_destroy(&srv->metrics_mu);
    rr_auth_free(&srv->auth);
}

rr_health rr_health_get(rr_server *srv)
{
    pthread_mutex_lock(&srv->health_mu);
    rr_health h = srv->health;
    pthread_mutex_unlock(&srv->health_mu);
    return h;
}

void rr_health_set(rr_server *srv, rr_health h)
{
    pthread_mutex_lock(&srv->health_mu);
    int changed = srv->health != h;
    srv->health = h;
    pthread_mutex_unlock(&srv->health_mu);
    /* Outside the lock: the listener takes its own (call) locks. */
    if (changed && srv->on_health) srv->on_health(srv->on_health_ctx, h);
}

void rr_edge_close_gate(rr_server *srv)
{
    atomic_store(&srv->gate_closed, 1);
    while (atomic_load(&srv->admitting)) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}
