/*
 * reflection.c — gRPC server reflection, served identically under grpc.reflection.v1 and
 * v1alpha (the messages are wire-identical, so v1's protobuf-c code decodes both; guide §9).
 * The data is the FileDescriptorSet protoc wrote at build time (--include_imports),
 * embedded by CMake as rr_descriptor_set[]. At start-up it is split into files, keeping
 * each file's original bytes to send back verbatim, and each is unpacked with the code
 * generated from google/protobuf/descriptor.proto to look up names.
 */
#include <stdio.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/wing.h"
#include "util/util.h"

extern const unsigned char rr_descriptor_set[];
extern const size_t rr_descriptor_set_len;

struct rr_refl_file {
    const uint8_t *data;
    size_t len;
    Google__Protobuf__FileDescriptorProto *fd;
};

/* Services listed by list_services: every service rerankd answers. */
static const char *const served[] = {
    "rerank.v1.Reranker",
    "tei.v1.Info",
    "tei.v1.Rerank",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
};
#define N_SERVED (sizeof served / sizeof served[0])

int rr_reflection_init(rr_grpc *srv)
{
    const uint8_t *p = rr_descriptor_set;
    size_t n = rr_descriptor_set_len, pos = 0;
    int count = 0;
    /* FileDescriptorSet { repeated FileDescriptorProto file = 1; }: key 0x0a, length, bytes. */
    for (int pass = 0; pass < 2; pass++) {
        pos = 0;
        count = 0;
        while (pos < n) {
            uint64_t key, len;
            if (!rr_wire_varint(p, n, &pos, &key) || key != 0x0a) return 0;
            if (!rr_wire_varint(p, n, &pos, &len) || len > n - pos) return 0;
            if (pass == 1) {
                rr_refl_file *f = &srv->files[count];
                f->data = p + pos;
                f->len = (size_t)len;
                f->fd = google__protobuf__file_descriptor_proto__unpack(NULL, f->len, f->data);
                if (!f->fd) return 0;
            }
            pos += (size_t)len;
            count++;
        }
        if (pass == 0) {
            srv->files = rr_calloc((size_t)count, sizeof *srv->files);
            if (!srv->files) return 0;
            srv->n_files = count;
        }
    }
    return 1;
}

void rr_reflection_free(rr_grpc *srv)
{
    for (int i = 0; i < srv->n_files; i++)
        if (srv->files[i].fd)
            google__protobuf__file_descriptor_proto__free_unpacked(srv->files[i].fd, NULL);
    rr_free(srv->files);
    srv->files = NULL;
    srv->n_files = 0;
}

/* Does `sym` equal prefix + "." + name (or name when prefix is empty)? */
static int names(const char *sym, const char *prefix, const char *name)
{
    size_t lp = strlen(prefix);
    if (lp == 0) return strcmp(sym, name) == 0;
    return strncmp(sym, prefix, lp) == 0 && sym[lp] == '.' && strcmp(sym + lp + 1, name) == 0;
}

static int in_message(const Google__Protobuf__DescriptorProto *m, const char *scope,
                      const char *sym)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s%s", scope, scope[0] ? "." : "", m->name);
    if (strcmp(sym, full) == 0) return 1;
    for (size_t i = 0; i < m->n_field; i++)
        if (names(sym, full, m->field[i]->name)) return 1;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (names(sym, full, m->enum_type[i]->name)) return 1;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (in_message(m->nested_type[i], full, sym)) return 1;
    return 0;
}

static int file_defines(const Google__Protobuf__FileDescriptorProto *fd, const char *sym)
{
    const char *pkg = fd->package ? fd->package : "";
    for (size_t i = 0; i < fd->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
        if (names(sym, pkg, s->name)) return 1;
        char full[512];
        snprintf(full, sizeof full, "%s%s%s", pkg, pkg[0] ? "." : "", s->name);
        for (size_t j = 0; j < s->n_method; j++)
            if (names(sym, full, s->method[j]->name)) return 1;
    }
    for (size_t i = 0; i < fd->n_message_type; i++)
        if (in_message(fd->message_type[i], pkg, sym)) return 1;
    for (size_t i = 0; i < fd->n_enum_type; i++) {
        const Google__Protobuf__EnumDescriptorProto *e = fd->enum_type[i];
        if (names(sym, pkg, e->name)) return 1;
        char full[512];
        snprintf(full, sizeof full, "%s%s%s", pkg, pkg[0] ? "." : "", e->name);
        for (size_t j = 0; j < e->n_value; j++)
            if (names(sym, full, e->value[j]->name)) return 1;
    }
    return 0;
}

static int find_file(const rr_grpc *srv, const char *name)
{
    for (int i = 0; i < srv->n_files; i++)
        if (strcmp(srv->files[i].fd->name, name) == 0) return i;
    return -1;
}

/* Marks file i and its transitive dependencies in `want`. */
static void with_deps(const rr_grpc *srv, int i, char *want)
{
    if (i < 0 || want[i]) return;
    want[i] = 1;
    for (size_t d = 0; d < srv->files[i].fd->n_dependency; d++)
        with_deps(srv, find_file(srv, srv->files[i].fd->dependency[d]), want);
}

static int message_type_known(const rr_grpc *srv, const char *sym)
{
    for (int i = 0; i < srv->n_files; i++) {
        const Google__Protobuf__FileDescriptorProto *fd = srv->files[i].fd;
        for (size_t m = 0; m < fd->n_message_type; m++)
            if (in_message(fd->message_type[m], fd->package ? fd->package : "", sym)) return 1;
    }
    return 0;
}

/* Builds and queues the answer to one request (under c->mu). */
static void answer(rr_call *c, Grpc__Reflection__V1__ServerReflectionRequest *req)
{
    rr_grpc *srv = c->g;
    Grpc__Reflection__V1__ServerReflectionResponse resp =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1__FileDescriptorResponse fdr =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ListServiceResponse lsr =
        GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1__ServiceResponse svc[N_SERVED];
    Grpc__Reflection__V1__ServiceResponse *svcp[N_SERVED];
    Grpc__Reflection__V1__ExtensionNumberResponse enr =
        GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
    Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    ProtobufCBinaryData blobs[64];
    char want[64] = {0};
    char msg[600] = "descriptor set has too many files";

    resp.valid_host = req->host;
    resp.original_request = req;
    int found = -1;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        for (size_t i = 0; i < N_SERVED; i++) {
            grpc__reflection__v1__service_response__init(&svc[i]);
            svc[i].name = (char *)served[i];
            svcp[i] = &svc[i];
        }
        lsr.n_service = N_SERVED;
        lsr.service = svcp;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &lsr;
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        found = find_file(srv, req->file_by_filename);
        if (found < 0) snprintf(msg, sizeof msg, "file %s not found", req->file_by_filename);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        for (int i = 0; i < srv->n_files && found < 0; i++)
            if (file_defines(srv->files[i].fd, req->file_containing_symbol)) found = i;
        if (found < 0)
            snprintf(msg, sizeof msg, "symbol %s not found", req->file_containing_symbol);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        if (message_type_known(srv, req->all_extension_numbers_of_type)) {
            enr.base_type_name = req->all_extension_numbers_of_type; /* proto3: none */
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
            resp.all_extension_numbers_response = &enr;
        } else {
            snprintf(msg, sizeof msg, "type %s not found", req->all_extension_numbers_of_type);
        }
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        snprintf(msg, sizeof msg, "no extensions are defined");
        break;
    default:
        er.error_code = GRPC_STATUS_UNIMPLEMENTED;
        er.error_message = "unsupported reflection request";
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &er;
        break;
    }
    if (found >= 0 && srv->n_files <= 64) {
        with_deps(srv, found, want);
        /* The requested file first, then its dependencies. */
        blobs[fdr.n_file_descriptor_proto].data = (uint8_t *)srv->files[found].data;
        blobs[fdr.n_file_descriptor_proto++].len = srv->files[found].len;
        for (int i = 0; i < srv->n_files; i++) {
            if (!want[i] || i == found) continue;
            blobs[fdr.n_file_descriptor_proto].data = (uint8_t *)srv->files[i].data;
            blobs[fdr.n_file_descriptor_proto++].len = srv->files[i].len;
        }
        fdr.file_descriptor_proto = blobs;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &fdr;
    } else if (resp.message_response_case ==
               GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET) {
        er.error_code = GRPC_STATUS_NOT_FOUND;
        er.error_message = msg;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &er;
    }
    rr_call_send(c, rr_pack(&resp.base));
}

static int utf8(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return rr_utf8_check(s, n) == n;
}

/* Ping-pong with a bound: at most 4 answers queued, then reading pauses until sends drain. */
static void reflect_recv(rr_call *c, int ok)
{
    if (!ok || !c->payload) {
        if (ok && !grpc_call_failed_before_recv_message(c->call)) {
            c->read_done = 1;
            rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
        } else {
            c->dead = 1; /* cancelled: a NULL message is not a half-close (fact 9) */
        }
        return;
    }
    rr_problem p;
    Grpc__Reflection__V1__ServerReflectionRequest *req =
        (Grpc__Reflection__V1__ServerReflectionRequest *)rr_decode(
            &grpc__reflection__v1__server_reflection_request__descriptor, c->payload,
            rr_call_arena(c), NULL, "ServerReflectionRequest", &p);
    if (!req) {
        rr_call_fail(c, &p);
        return;
    }
    /* Every string of the request is echoed (original_request, valid_host, messages). */
    const char *arg = NULL; /* the active string of the oneof (a union: read only that one) */
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        arg = req->file_by_filename;
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        arg = req->file_containing_symbol;
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        arg = req->all_extension_numbers_of_type;
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        arg = req->list_services;
        break;
    default:
        break;
    }
    if (!utf8(req->host) || !utf8(arg)) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
                       "a ServerReflectionRequest string is not valid UTF-8");
        return;
    }
    answer(c, req);
    rr_arena_reset(c->arena); /* the answer is packed: the request can go */
    if (c->out_n < 4)
        rr_call_recv(c);
    else
        c->recv_paused = 1;
}

static void reflect_sent(rr_call *c)
{
    if (c->recv_paused && c->out_n < 4) rr_call_recv(c);
}

void rr_svc_reflect(rr_call *c)
{
    c->on_recv = reflect_recv;
    c->on_sent = reflect_sent;
    rr_call_recv(c);
}
