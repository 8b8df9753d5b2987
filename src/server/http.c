/*
 * http.c — rerankd's HTTP listener (libmicrohttpd, one internal polling thread):
 * POST /rerank, /v1/rerank, /v2/rerank — the JSON reranking API (http_rerank.c);
 * GET /metrics (Prometheus, metrics.c), GET /health (200 "SERVING" or 503 "NOT_SERVING":
 * the same status grpc.health.v1 reports, for probes that speak only HTTP), GET /info (the
 * model and limits as JSON, shaped like TEI's /info). HEAD is accepted wherever GET is;
 * other methods get 405, unknown paths 404.
 *
 * It starts before the model loads (so probes see 503 "loading", like the gRPC health
 * service) and stops after the scheduler, whose shutdown answers suspended reranking
 * requests with 503. Plain HTTP: serve it inside the cluster or behind the fleet's TLS
 * proxy (TEI and Triton do not serve TLS on HTTP either); gRPC has TLS in-process.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "server.h"
#include "util/util.h"

/* owned: 0 = static text, 1 = ours to free (rr_free), 2 = borrowed (libmicrohttpd copies). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type,
                             char *body, size_t len, int owned)
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
    return reply(conn, code, "text/plain; charset=utf-8", (char *)msg, strlen(msg), 0);
}

static char *info_json(rr_server *srv, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ready = atomic_load(&srv->ready);
    cJSON_AddStringToObject(o, "model_id", srv->cfg.model_dir);
    cJSON_AddStringToObject(o, "model_type", "reranker");
    cJSON_AddStringToObject(o, "architecture", ready ? srv->info->arch_name : "");
    cJSON_AddStringToObject(o, "device", ready ? srv->device_desc : "");
    cJSON_AddNumberToObject(o, "max_input_length", ready ? srv->info->max_length : 0);
    cJSON_AddNumberToObject(o, "max_batch_tokens", srv->cfg.max_batch_tokens);
    cJSON_AddNumberToObject(o, "max_client_batch_size", srv->cfg.max_docs);
    cJSON_AddNumberToObject(o, "max_concurrent_requests", srv->cfg.max_in_flight);
    cJSON_AddBoolToObject(o, "ready", ready);
    cJSON_AddStringToObject(o, "version", RR_SERVER_VERSION);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return NULL;
    /* Into our allocator: the response frees with rr_free. */
    char *out = rr_strdup(s);
    cJSON_free(s);
    if (out) *len = strlen(out);
    return out;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    rr_server *srv = cls;
    int route = rr_http_rerank_route(url);
    if (route >= 0 && strcmp(method, MHD_HTTP_METHOD_POST) == 0)
        return (enum MHD_Result)rr_http_rerank(srv, conn, route, upload_data, upload_data_size,
                                               con_cls);
    if (route >= 0) return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "POST a JSON body here\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        if (*upload_data_size) { /* discard a body; answer once it has been read */
            *upload_data_size = 0;
            return MHD_YES;
        }
        return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served here\n");
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        pthread_mutex_lock(&srv->metrics_mu);
        const char *body = rr_metrics_render(srv, &len);
        enum MHD_Result ret =
            body ? reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                         (char *)body, len, 2)
                 : text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        pthread_mutex_unlock(&srv->metrics_mu);
        return ret;
    }
    if (strcmp(url, "/health") == 0) {
        pthread_mutex_lock(&srv->health_mu);
        int serving = srv->health == RR_HEALTH_SERVING;
        pthread_mutex_unlock(&srv->health_mu);
        return serving ? text(conn, MHD_HTTP_OK, "SERVING\n")
                       : text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "NOT_SERVING\n");
    }
    if (strcmp(url, "/info") == 0) {
        size_t len = 0;
        char *body = info_json(srv, &len);
        if (!body) return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return reply(conn, MHD_HTTP_OK, "application/json", body, len, 1);
    }
    return text(conn, MHD_HTTP_NOT_FOUND,
                "not found: rerankd serves POST /rerank, /v1/rerank, /v2/rerank and GET /metrics, "
                "/health, /info here\n");
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    rr_http_rerank_free(*con_cls); /* NULL for the GET routes */
    *con_cls = NULL;
}

int rr_http_start(rr_server *srv)
{
    const rr_config *cfg = &srv->cfg;
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    errno = 0;
    srv->http = MHD_start_daemon(flags, 0, NULL, NULL, handle, srv, MHD_OPTION_SOCK_ADDR,
                                 ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                 MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    int saved = errno;
    freeaddrinfo(ai);
    if (!srv->http) {
        fprintf(stderr, "rerankd: cannot serve HTTP on %s port %d: %s\n", cfg->host, cfg->http_port,
                saved ? strerror(saved) : "libmicrohttpd refused to start");
        return 0;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->http, MHD_DAEMON_INFO_BIND_PORT);
    srv->http_port = di ? di->port : cfg->http_port;
    return 1;
}

void rr_http_stop(rr_server *srv)
{
    if (srv->http) MHD_stop_daemon(srv->http);
    srv->http = NULL;
}
