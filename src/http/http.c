/*
 * http.c — rerankd's HTTP listener (libmicrohttpd): POST /rerank, /v1/rerank, /v2/rerank —
 * the JSON reranking API (rerank.c); GET /metrics (Prometheus, edge/metrics.c), GET /health
 * and GET /readyz (readiness: 200 "SERVING" or 503 "NOT_SERVING", the status grpc.health.v1
 * reports, for probes that speak only HTTP), GET /livez (liveness: 200 "alive" whenever this
 * listener answers, loading and draining included: a kubelet must not restart a pod that is
 * loading its model or finishing its work), GET /info (the model and limits as JSON, shaped
 * like TEI's /info), GET /openapi.json (the OpenAPI document of these routes, openapi.json
 * beside this file, embedded at build time; tests/server/test_deploy.py checks every answer
 * of the server against it). HEAD
 * is accepted wherever GET is; other methods get 405, unknown paths 404. With an API key
 * (edge/auth.h) the reranking routes answer 401 without `Authorization: Bearer <key>`, and
 * so do /metrics and /info with --api-key-protect-ops; the probes and /openapi.json are
 * always open.
 *
 * It starts before the model loads (so probes see 503 "loading", like the gRPC health
 * service) and stops after the scheduler, whose shutdown answers suspended reranking
 * requests with 503. Plain HTTP: serve it inside the cluster or behind the fleet's TLS
 * proxy (TEI and Triton do not serve TLS on HTTP either); gRPC has TLS in-process.
 *
 * Connections (see wing.h): epoll on a pool of HTTP_THREADS threads, a connection limit,
 * an optional per-address limit and an idle timeout. Suspended connections neither time
 * out nor are polled by libmicrohttpd, so a thread of our own (watch.c) epolls their
 * sockets for a peer that hung up and cancels its request.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/wing.h"
#include "util/strbuf.h"
#include "util/util.h"

/* The OpenAPI document (openapi.json, embedded by CMake through src/grpc/embed.cmake). */
extern const unsigned char rr_openapi_json[];
extern const size_t rr_openapi_json_len;

/* Polling threads: /health and /metrics answer while another thread renders. */
#define HTTP_THREADS 2
/* File descriptors kept for everything else (gRPC, the model, logs). */
#define FD_RESERVE 256

/* owned: 0 = static text, 1 = ours to free (rr_free), 2 = borrowed (libmicrohttpd copies). */
static int reply(struct MHD_Connection *conn, unsigned code, const char *type, char *body,
                 size_t len, int owned)
{
    struct MHD_Response *r =
        owned == 1 ? MHD_create_response_from_buffer_with_free_callback(len, body, rr_free)
                   : MHD_create_response_from_buffer(
                         len, body, owned == 2 ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (owned == 1) rr_free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned code, const char *msg)
{
    return (enum MHD_Result)reply(conn, code, "text/plain; charset=utf-8", (char *)msg, strlen(msg),
                                  0);
}

static char *info_json(rr_server *srv, size_t *len)
{
    rr_strbuf o = {0};
    int ready = atomic_load(&srv->ready);
    rr_strbuf_printf(&o, "{\"model_id\":");
    rr_json_put_string(&o, srv->cfg.model_dir, strlen(srv->cfg.model_dir));
    rr_strbuf_printf(&o, ",\"model_type\":\"reranker\",\"architecture\":");
    const char *arch = ready ? srv->info->arch_name : "";
    rr_json_put_string(&o, arch, strlen(arch));
    rr_strbuf_printf(&o, ",\"device\":");
    const char *dev = ready ? srv->device_desc : "";
    rr_json_put_string(&o, dev, strlen(dev));
    rr_strbuf_printf(
        &o,
        ",\"model_dtype\":\"%s\",\"max_input_length\":%d,\"max_batch_tokens\":%d,"
        "\"max_client_batch_size\":%d,\"max_concurrent_requests\":%d,"
        "\"ready\":%s,\"version\":\"%s\"}",
        ready ? rr_dtype_name(rr_engine_dtype(srv->engine)) : "", ready ? srv->info->max_length : 0,
        ready ? rr_engine_max_batch_tokens(srv->engine) : srv->cfg.max_batch_tokens,
        srv->cfg.max_docs, srv->cfg.max_in_flight, ready ? "true" : "false", RR_SERVER_VERSION);
    if (o.oom) {
        rr_free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    rr_http *h = cls;
    rr_server *srv = h->srv;
    int route = rr_http_rerank_route(url);
    if (route >= 0 && strcmp(method, MHD_HTTP_METHOD_POST) == 0)
        return (enum MHD_Result)rr_http_rerank(h, conn, route, upload_data, upload_data_size,
                                               con_cls);
    if (*upload_data_size) { /* discard a body; answer once it has been read */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (route >= 0) return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "POST a JSON body here\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served here\n");
    /* /health stays open for probes; /metrics and /info with --api-key-protect-ops. */
    if (h->srv->auth.protect_ops && (strcmp(url, "/metrics") == 0 || strcmp(url, "/info") == 0) &&
        !rr_http_authorized(h, conn))
        return (enum MHD_Result)reply(conn, MHD_HTTP_UNAUTHORIZED, "application/json",
                                      (char *)RR_HTTP_UNAUTHORIZED, sizeof RR_HTTP_UNAUTHORIZED - 1,
                                      0);
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        pthread_mutex_lock(&srv->metrics_mu);
        const char *body = rr_metrics_render(srv, &len);
        enum MHD_Result ret =
            body ? (enum MHD_Result)reply(conn, MHD_HTTP_OK,
                                          "text/plain; version=0.0.4; charset=utf-8", (char *)body,
                                          len, 2)
                 : text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        pthread_mutex_unlock(&srv->metrics_mu);
        return ret;
    }
    if (strcmp(url, "/livez") == 0) return text(conn, MHD_HTTP_OK, "alive\n");
    if (strcmp(url, "/health") == 0 || strcmp(url, "/readyz") == 0)
        return rr_health_get(srv) == RR_HEALTH_SERVING
                   ? text(conn, MHD_HTTP_OK, "SERVING\n")
                   : text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "NOT_SERVING\n");
    if (strcmp(url, "/info") == 0) {
        size_t len = 0;
        char *body = info_json(srv, &len);
        if (!body) return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return (enum MHD_Result)reply(conn, MHD_HTTP_OK, "application/json", body, len, 1);
    }
    if (strcmp(url, "/openapi.json") == 0)
        return (enum MHD_Result)reply(conn, MHD_HTTP_OK, "application/json",
                                      (char *)rr_openapi_json, rr_openapi_json_len, 0);
    return text(conn, MHD_HTTP_NOT_FOUND,
                "not found: rerankd serves POST /rerank, /v1/rerank, /v2/rerank and GET /livez, "
                "/readyz, /health, /metrics, /info, /openapi.json here\n");
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    rr_http_rerank_free(*con_cls); /* NULL for the GET routes */
    *con_cls = NULL;
}

/* ---- life --------------------------------------------------------------------------------- */

/* The connection limit this process can keep: the soft descriptor limit raised to the hard
 * one, less a reserve for everything else. */
static int fd_budget(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return want;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)want + FD_RESERVE) return want;
    long room = (long)rl.rlim_cur - FD_RESERVE;
    return room < 16 ? 16 : (int)room;
}

int rr_http_start(rr_server *srv, rr_http **out)
{
    const rr_config *cfg = &srv->cfg;
    rr_http *h = rr_calloc(1, sizeof *h);
    *out = h;
    if (!h) {
        fprintf(stderr, "rerankd: out of memory for the HTTP listener\n");
        return 0;
    }
    h->srv = srv;
    json_set_alloc_funcs(rr_malloc, rr_free); /* jansson through the allocation funnel */
    rr_http_rerank_init(h);
    int limit = fd_budget(cfg->http_max_connections);
    if (limit < cfg->http_max_connections)
        fprintf(stderr, "rerankd: --http-max-connections %d lowered to %d (open file limit)\n",
                cfg->http_max_connections, limit);
    if (!rr_http_watch_start(h, limit)) {
        fprintf(stderr, "rerankd: cannot start the HTTP disconnect watcher: %s\n", strerror(errno));
        return 0;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->http_port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int e = getaddrinfo(cfg->host, port, &hints, &ai);
    if (e != 0) {
        fprintf(stderr, "rerankd: --http-port: cannot resolve %s: %s\n", cfg->host,
                gai_strerror(e));
        return 0;
    }
    /* No MHD_USE_ERROR_LOG: its bind message names the port we pass (0, the address is in
     * MHD_OPTION_SOCK_ADDR); ours below names the real one. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    errno = 0;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)limit,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)cfg->http_max_connections_per_ip,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_idle_timeout,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    int saved = errno;
    freeaddrinfo(ai);
    if (!h->d) {
        fprintf(stderr, "rerankd: cannot serve HTTP on %s port %d: %s\n", cfg->host, cfg->http_port,
                saved ? strerror(saved) : "libmicrohttpd refused to start");
        return 0;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : cfg->http_port;
    rr_metrics_add(srv, rr_http_rerank_metrics, h);
    return 1;
}

void rr_http_stop(rr_http *h)
{
    if (!h) return;
    if (h->d) MHD_stop_daemon(h->d); /* every connection is gone after this */
    rr_http_watch_stop(h);
    rr_free(h);
}
