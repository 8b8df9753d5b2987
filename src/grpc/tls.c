/*
 * tls.c — TLS (and mutual TLS) for rerankd's gRPC port, with certificate rotation.
 *
 * --tls-cert/--tls-key name PEM files (the chain and its private key); --tls-client-ca adds
 * a CA bundle, and then every client must present a certificate that it signs (mTLS). The
 * files are read through a gRPC certificate-config fetcher, which the core calls at start
 * and again before each new connection's handshake: when one of the files changed (size,
 * mtime or inode — an atomic rename by cert-manager or a kubelet secret update counts),
 * all three are re-read and new connections use them; existing connections keep theirs.
 * A rotation that leaves a file unreadable keeps the previous certificates and logs why.
 *
 * Start-up validates what gRPC does not check until the first handshake: each file is
 * readable, under 1 MiB, and holds a PEM block of the right kind, so `rerankd` fails at
 * once with a message naming the file instead of refusing every client later.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "grpc/wing.h"
#include "util/util.h"

#define TLS_MAX_FILE (1 << 20)

typedef struct tls_file {
    const char *path;
    const char *what;   /* for messages: "certificate chain", ... */
    const char *marker; /* a substring every valid file of this kind holds */
    struct stat st;     /* of the version last loaded */
} tls_file;

struct rr_tls {
    tls_file f[3]; /* cert, key, client CA (path NULL when no mTLS) */
    pthread_mutex_t mu;
    int loads;
};

/* Reads a whole file into a NUL-terminated buffer (rr_free); NULL with err filled. */
static char *read_pem(tls_file *f, struct stat *st, rr_error *err)
{
    FILE *fp = fopen(f->path, "rb");
    if (!fp) {
        rr_set_error(err, RR_E_IO, "%s %s: %s", f->what, f->path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    if (fstat(fileno(fp), st) != 0 || !S_ISREG(st->st_mode)) {
        rr_set_error(err, RR_E_IO, "%s %s: not a regular file", f->what, f->path);
        goto fail;
    }
    if (st->st_size <= 0 || st->st_size > TLS_MAX_FILE) {
        rr_set_error(err, RR_E_FORMAT, "%s %s: %lld bytes (expected 1 byte ... 1 MiB of PEM)",
                     f->what, f->path, (long long)st->st_size);
        goto fail;
    }
    size_t n = (size_t)st->st_size;
    if (!(buf = rr_malloc(n + 1))) {
        rr_set_error(err, RR_E_NOMEM, "%s %s: out of memory", f->what, f->path);
        goto fail;
    }
    if (fread(buf, 1, n, fp) != n) {
        rr_set_error(err, RR_E_IO, "%s %s: short read", f->what, f->path);
        goto fail;
    }
    buf[n] = '\0';
    if (strlen(buf) != n || !strstr(buf, f->marker)) {
        rr_set_error(err, RR_E_FORMAT, "%s %s: no PEM block containing \"%s\"", f->what, f->path,
                     f->marker);
        goto fail;
    }
    fclose(fp);
    return buf;
fail:
    rr_free(buf);
    fclose(fp);
    return NULL;
}

/* Reads the files into a new gRPC config; NULL with err filled. Updates the stats. */
static grpc_ssl_server_certificate_config *load(rr_tls *t, rr_error *err)
{
    char *pem[3] = {NULL, NULL, NULL};
    struct stat st[3];
    memset(st, 0, sizeof st);
    grpc_ssl_server_certificate_config *cfg = NULL;
    for (int i = 0; i < 3; i++)
        if (t->f[i].path && !(pem[i] = read_pem(&t->f[i], &st[i], err))) goto out;
    grpc_ssl_pem_key_cert_pair pair = {.private_key = pem[1], .cert_chain = pem[0]};
    /* 1.51 asserts non-NULL roots in a fetched config (ssl_security_connector.cc:366) even
     * when no client certificate is requested; they are only used to verify client
     * certificates, so without mTLS the server's own chain stands in, unused. */
    cfg =
        grpc_ssl_server_certificate_config_create(pem[2] ? pem[2] : pem[0], &pair, 1); /* copies */
    if (!cfg) {
        rr_set_error(err, RR_E_NOMEM, "TLS: cannot create the certificate config");
        goto out;
    }
    for (int i = 0; i < 3; i++)
        t->f[i].st = st[i];
    t->loads++;
out:
    for (int i = 0; i < 3; i++) {
        if (pem[i]) memset(pem[i], 0, strlen(pem[i])); /* the key does not linger on the heap */
        rr_free(pem[i]);
    }
    return cfg;
}

static int changed(const tls_file *f)
{
    struct stat st;
    if (!f->path) return 0;
    if (stat(f->path, &st) != 0) return 1; /* let load() report it */
    return st.st_ino != f->st.st_ino || st.st_dev != f->st.st_dev || st.st_size != f->st.st_size ||
           st.st_mtim.tv_sec != f->st.st_mtim.tv_sec || st.st_mtim.tv_nsec != f->st.st_mtim.tv_nsec;
}

/* The fetcher: called by the core at start and before each new handshake, on its threads. */
static grpc_ssl_certificate_config_reload_status fetch(void *user,
                                                       grpc_ssl_server_certificate_config **config)
{
    rr_tls *t = user;
    grpc_ssl_certificate_config_reload_status s = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    pthread_mutex_lock(&t->mu);
    if (t->loads == 0 || changed(&t->f[0]) || changed(&t->f[1]) || changed(&t->f[2])) {
        rr_error err = {0};
        grpc_ssl_server_certificate_config *cfg = load(t, &err);
        if (cfg) {
            *config = cfg;
            s = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
            if (t->loads > 1)
                fprintf(stderr, "rerankd: TLS certificates reloaded from %s\n", t->f[0].path);
        } else {
            fprintf(stderr, "rerankd: TLS reload failed, keeping the previous certificates: %s\n",
                    err.msg);
            s = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return s;
}

rr_tls *rr_tls_init(const char *cert, const char *key, const char *client_ca, rr_error *err)
{
    if (!cert || !key) {
        rr_set_error(err, RR_E_INVALID, "TLS needs both --tls-cert and --tls-key");
        return NULL;
    }
    rr_tls *t = rr_calloc(1, sizeof *t);
    if (!t) {
        rr_set_error(err, RR_E_NOMEM, "out of memory");
        return NULL;
    }
    t->f[0] =
        (tls_file){.path = cert, .what = "--tls-cert", .marker = "-----BEGIN CERTIFICATE-----"};
    t->f[1] = (tls_file){.path = key, .what = "--tls-key", .marker = "PRIVATE KEY-----"};
    t->f[2] = (tls_file){
        .path = client_ca, .what = "--tls-client-ca", .marker = "-----BEGIN CERTIFICATE-----"};
    pthread_mutex_init(&t->mu, NULL);
    /* Validate now, so a bad file stops start-up; the fetcher's first call re-reads them. */
    grpc_ssl_server_certificate_config *cfg = load(t, err);
    if (!cfg) {
        rr_tls_free(t);
        return NULL;
    }
    grpc_ssl_server_certificate_config_destroy(cfg);
    t->loads = 0;
    return t;
}

grpc_server_credentials *rr_tls_credentials(rr_tls *t)
{
    grpc_ssl_client_certificate_request_type req =
        t->f[2].path ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    grpc_ssl_server_credentials_options *o =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(req, fetch, t);
    return o ? grpc_ssl_server_credentials_create_with_options(o) : NULL;
}

void rr_tls_free(rr_tls *t)
{
    if (!t) return;
    pthread_mutex_destroy(&t->mu);
    rr_free(t);
}
