/*
 * client.c — see client.h. One channel, one completion queue (for_next), a fixed array of
 * call slots. Each slot carries three tags, one per kind of batch in flight:
 *
 *   unary   one batch [SEND_INITIAL_METADATA, SEND_MESSAGE, SEND_CLOSE_FROM_CLIENT,
 *           RECV_INITIAL_METADATA, RECV_MESSAGE, RECV_STATUS_ON_CLIENT] (tag t_status);
 *   stream  [SEND_INITIAL_METADATA, RECV_INITIAL_METADATA, RECV_STATUS_ON_CLIENT] (t_status),
 *           then one SEND_MESSAGE at a time (t_send; the last carries SEND_CLOSE_FROM_CLIENT)
 *           and one RECV_MESSAGE at a time (t_recv) until the server's end of stream.
 *
 * C-core allows one outstanding batch per op kind, so one tag per kind is enough; a slot is
 * finished when its count of outstanding batches drops to zero. Reference notes followed:
 * /work/shared/reference/grpc-c-core.md (memset every op: `reserved` must be NULL; a failed
 * start_batch is fatal for its call; grpc_raw_byte_buffer_create adds its own slice ref).
 * A client program, not librerank: it allocates with plain malloc.
 */
#define _POSIX_C_SOURCE 200809L
#include "client.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rerank/v1/rerank.pb-c.h"

enum { TAG_STATUS, TAG_SEND, TAG_RECV };

struct rb_slot;
typedef struct rb_tag {
    struct rb_slot *slot;
    int kind;
} rb_tag;

typedef struct rb_slot {
    rb_client *cli;
    struct rb_slot *next_free;
    grpc_call *call;
    const rb_request *req;
    int next_msg; /* index of the next message to send */
    int pending;  /* batches in flight */
    int failed;   /* a client-side failure, message already in reply.msg */
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array md_init, md_trail;
    grpc_status_code status;
    grpc_slice details;
    rb_tag t_status, t_send, t_recv;
    rb_reply reply;
    float *logits; /* [cli->max_docs] */
    double t_start;
    rb_done_fn fn;
    void *user;
} rb_slot;

struct rb_client {
    grpc_channel *channel;
    grpc_completion_queue *cq;
    rb_slot *slots;
    rb_slot *free_list;
    int max_calls, max_docs, in_flight;
    double timeout_s;
};

double rb_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static gpr_timespec deadline_in(double seconds)
{
    if (seconds < 0) seconds = 0;
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_nanos((int64_t)(seconds * 1e9), GPR_TIMESPAN));
}

/* ----------------------------------------------------------------------------------------
 * Requests
 */

/* The server's C messages carry strings as bytes (src/grpc/proto_c_variant.cmake). */
static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static int pack_into(const ProtobufCMessage *m, grpc_slice *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    *out = grpc_slice_malloc(n);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(*out));
    return 0;
}

int rb_request_init(rb_request *r, const char *query, const char *const *docs, int n_docs,
                    int streaming, int stream_batch)
{
    Rerank__V1__Document *dv = NULL;
    Rerank__V1__Document **dp = NULL;
    memset(r, 0, sizeof *r);
    if (stream_batch < 1) stream_batch = n_docs > 0 ? n_docs : 1;
    r->streaming = streaming;
    r->n_docs = n_docs;
    r->n_msgs = streaming ? 1 + (n_docs + stream_batch - 1) / stream_batch : 1;
    r->msgs = calloc((size_t)r->n_msgs, sizeof *r->msgs);
    dv = calloc((size_t)(n_docs > 0 ? n_docs : 1), sizeof *dv);
    dp = calloc((size_t)(n_docs > 0 ? n_docs : 1), sizeof *dp);
    if (!r->msgs || !dv || !dp) goto fail;
    for (int i = 0; i < n_docs; i++) {
        rerank__v1__document__init(&dv[i]);
        dv[i].text = bin(docs[i]);
        dp[i] = &dv[i];
    }
    if (!streaming) {
        Rerank__V1__RerankRequest q = RERANK__V1__RERANK_REQUEST__INIT;
        q.query = bin(query);
        q.n_documents = (size_t)n_docs;
        q.documents = dp;
        pack_into(&q.base, &r->msgs[0]);
    } else {
        Rerank__V1__StreamOpen open = RERANK__V1__STREAM_OPEN__INIT;
        Rerank__V1__RerankStreamRequest m = RERANK__V1__RERANK_STREAM_REQUEST__INIT;
        open.query = bin(query);
        m.kind_case = RERANK__V1__RERANK_STREAM_REQUEST__KIND_OPEN;
        m.open = &open;
        pack_into(&m.base, &r->msgs[0]);
        for (int b = 1, i = 0; b < r->n_msgs; b++, i += stream_batch) {
            Rerank__V1__StreamBatch batch = RERANK__V1__STREAM_BATCH__INIT;
            batch.n_documents = (size_t)(n_docs - i < stream_batch ? n_docs - i : stream_batch);
            batch.documents = dp + i;
            m.kind_case = RERANK__V1__RERANK_STREAM_REQUEST__KIND_BATCH;
            m.batch = &batch;
            pack_into(&m.base, &r->msgs[b]);
        }
    }
    free(dv);
    free(dp);
    return 0;
fail:
    free(dv);
    free(dp);
    free(r->msgs);
    memset(r, 0, sizeof *r);
    return -1;
}

void rb_request_free(rb_request *r)
{
    if (!r || !r->msgs) return;
    for (int i = 0; i < r->n_msgs; i++)
        grpc_slice_unref(r->msgs[i]);
    free(r->msgs);
    memset(r, 0, sizeof *r);
}

/* ----------------------------------------------------------------------------------------
 * Client and slots
 */

rb_client *rb_client_init(const char *target, int max_calls, int max_docs, double timeout_s)
{
    rb_client *c = calloc(1, sizeof *c);
    grpc_channel_credentials *creds = NULL;
    if (!c) return NULL;
    grpc_init();
    c->max_calls = max_calls;
    c->max_docs = max_docs;
    c->timeout_s = timeout_s;
    grpc_arg args[2];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = 256 << 20;
    args[1].type = GRPC_ARG_STRING;
    args[1].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[1].value.string = (char *)"rerank-bench";
    grpc_channel_args ca = {2, args};
    creds = grpc_insecure_credentials_create();
    c->channel = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    c->cq = grpc_completion_queue_create_for_next(NULL);
    c->slots = calloc((size_t)max_calls, sizeof *c->slots);
    if (!c->channel || !c->cq || !c->slots) goto fail;
    for (int i = max_calls - 1; i >= 0; i--) {
        rb_slot *s = &c->slots[i];
        s->cli = c;
        s->logits = malloc((size_t)(max_docs > 0 ? max_docs : 1) * sizeof *s->logits);
        if (!s->logits) goto fail;
        s->t_status = (rb_tag){s, TAG_STATUS};
        s->t_send = (rb_tag){s, TAG_SEND};
        s->t_recv = (rb_tag){s, TAG_RECV};
        s->next_free = c->free_list;
        c->free_list = s;
    }
    return c;
fail:
    rb_client_free(c);
    return NULL;
}

void rb_client_free(rb_client *c)
{
    if (!c) return;
    /* Cancel whatever is still running and drain, so every call is unref'd. */
    if (c->slots) rb_client_cancel_all(c);
    double end = rb_now_s() + 10.0;
    while (c->in_flight > 0 && rb_now_s() < end)
        rb_client_poll(c, end);
    if (c->cq) {
        grpc_completion_queue_shutdown(c->cq);
        while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(c->cq);
    }
    if (c->channel) grpc_channel_destroy(c->channel);
    if (c->slots)
        for (int i = 0; i < c->max_calls; i++)
            free(c->slots[i].logits);
    free(c->slots);
    free(c);
    grpc_shutdown();
}

int rb_client_in_flight(const rb_client *c)
{
    return c->in_flight;
}

void rb_client_cancel_all(rb_client *c)
{
    for (int i = 0; i < c->max_calls; i++)
        if (c->slots[i].call) grpc_call_cancel(c->slots[i].call, NULL);
}

static int start_batch(rb_slot *s, const grpc_op *ops, size_t n, rb_tag *tag)
{
    grpc_call_error e = grpc_call_start_batch(s->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        if (!s->failed)
            snprintf(s->reply.msg, sizeof s->reply.msg, "grpc_call_start_batch: %s",
                     grpc_call_error_to_string(e));
        s->failed = 1;
        grpc_call_cancel(s->call, NULL);
        return -1;
    }
    s->pending++;
    return 0;
}

static void add_stats(rb_stats *acc, const Rerank__V1__Stats *st)
{
    if (!st) return;
    acc->tokenization_ns += st->tokenization_ns;
    acc->queue_ns += st->queue_ns;
    acc->inference_ns += st->inference_ns;
    acc->total_ns += st->total_ns;
    acc->query_tokens = st->query_tokens;
    acc->total_tokens += st->total_tokens;
}

static void take_results(rb_slot *s, Rerank__V1__RerankResult **res, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t idx = res[i]->index;
        if ((int)idx >= s->req->n_docs) {
            snprintf(s->reply.msg, sizeof s->reply.msg, "result index %u out of range (%d docs)",
                     idx, s->req->n_docs);
            s->failed = 1;
            continue;
        }
        s->logits[idx] = res[i]->logit;
        s->reply.n_scored++;
    }
}

/* Unpacks the message in s->recv_bb into the reply; frees the buffer. */
static void take_message(rb_slot *s)
{
    grpc_byte_buffer_reader rd;
    grpc_slice all;
    if (!grpc_byte_buffer_reader_init(&rd, s->recv_bb)) {
        snprintf(s->reply.msg, sizeof s->reply.msg, "unreadable response byte buffer");
        s->failed = 1;
        goto done;
    }
    all = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    if (s->reply.first_s == 0) s->reply.first_s = rb_now_s() - s->t_start;
    if (!s->req->streaming) {
        Rerank__V1__RerankResponse *m = rerank__v1__rerank_response__unpack(
            NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        if (!m) {
            snprintf(s->reply.msg, sizeof s->reply.msg, "malformed RerankResponse");
            s->failed = 1;
        } else {
            take_results(s, m->results, m->n_results);
            add_stats(&s->reply.stats, m->stats);
            rerank__v1__rerank_response__free_unpacked(m, NULL);
        }
    } else {
        Rerank__V1__RerankStreamResponse *m = rerank__v1__rerank_stream_response__unpack(
            NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        if (!m) {
            snprintf(s->reply.msg, sizeof s->reply.msg, "malformed RerankStreamResponse");
            s->failed = 1;
        } else {
            /* Scores come from the batches; the final ranking repeats them sorted. */
            if (m->kind_case == RERANK__V1__RERANK_STREAM_RESPONSE__KIND_BATCH) {
                take_results(s, m->batch->results, m->batch->n_results);
                add_stats(&s->reply.stats, m->batch->stats);
            }
            rerank__v1__rerank_stream_response__free_unpacked(m, NULL);
        }
    }
    grpc_slice_unref(all);
done:
    grpc_byte_buffer_destroy(s->recv_bb);
    s->recv_bb = NULL;
}

int rb_client_start(rb_client *c, const rb_request *req, double t_start, long cookie, rb_done_fn fn,
                    void *user, char *err, size_t err_cap)
{
    rb_slot *s = c->free_list;
    grpc_op ops[6];
    if (!s) return 0;
    if (req->n_docs > c->max_docs) {
        snprintf(err, err_cap, "request of %d documents over the client's %d", req->n_docs,
                 c->max_docs);
        return -1;
    }
    c->free_list = s->next_free;
    s->req = req;
    s->next_msg = 0;
    s->pending = 0;
    s->failed = 0;
    s->send_bb = s->recv_bb = NULL;
    s->status = GRPC_STATUS_UNKNOWN;
    s->details = grpc_empty_slice();
    grpc_metadata_array_init(&s->md_init);
    grpc_metadata_array_init(&s->md_trail);
    memset(&s->reply, 0, sizeof s->reply);
    for (int i = 0; i < req->n_docs; i++)
        s->logits[i] = NAN;
    s->reply.n_docs = req->n_docs;
    s->reply.logits = s->logits;
    s->reply.t_start = t_start;
    s->reply.cookie = cookie;
    s->t_start = t_start;
    s->fn = fn;
    s->user = user;

    grpc_slice method = grpc_slice_from_static_string(
        req->streaming ? "/rerank.v1.Reranker/RerankStream" : "/rerank.v1.Reranker/Rerank");
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                     gpr_time_from_millis((int64_t)(c->timeout_s * 1000), GPR_TIMESPAN));
    s->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, method,
                                       NULL, deadline, NULL);
    if (!s->call) {
        snprintf(err, err_cap, "grpc_channel_create_call failed");
        goto fail;
    }
    c->in_flight++;
    memset(ops, 0, sizeof ops);
    s->send_bb = grpc_raw_byte_buffer_create((grpc_slice *)&req->msgs[0], 1);
    if (!req->streaming) {
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = s->send_bb;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_init;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &s->recv_bb;
        ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[5].data.recv_status_on_client.trailing_metadata = &s->md_trail;
        ops[5].data.recv_status_on_client.status = &s->status;
        ops[5].data.recv_status_on_client.status_details = &s->details;
        s->next_msg = 1;
        start_batch(s, ops, 6, &s->t_status);
    } else {
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->md_init;
        ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[2].data.recv_status_on_client.trailing_metadata = &s->md_trail;
        ops[2].data.recv_status_on_client.status = &s->status;
        ops[2].data.recv_status_on_client.status_details = &s->details;
        if (start_batch(s, ops, 3, &s->t_status) == 0) {
            memset(ops, 0, sizeof ops);
            ops[0].op = GRPC_OP_SEND_MESSAGE;
            ops[0].data.send_message.send_message = s->send_bb;
            ops[1].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
            s->next_msg = 1;
            if (start_batch(s, ops, req->n_msgs == 1 ? 2 : 1, &s->t_send) == 0) {
                memset(ops, 0, sizeof ops);
                ops[0].op = GRPC_OP_RECV_MESSAGE;
                ops[0].data.recv_message.recv_message = &s->recv_bb;
                start_batch(s, ops, 1, &s->t_recv);
            }
        }
    }
    /* A call whose first batch could not start has nothing in flight: finish it here. */
    if (s->pending == 0) {
        snprintf(err, err_cap, "%s", s->reply.msg);
        grpc_call_unref(s->call);
        s->call = NULL;
        c->in_flight--;
        goto fail;
    }
    return 1;
fail:
    if (s->send_bb) grpc_byte_buffer_destroy(s->send_bb);
    s->send_bb = NULL;
    grpc_metadata_array_destroy(&s->md_init);
    grpc_metadata_array_destroy(&s->md_trail);
    s->next_free = c->free_list;
    c->free_list = s;
    return -1;
}

static void finish(rb_slot *s)
{
    rb_client *c = s->cli;
    s->reply.latency_s = rb_now_s() - s->t_start;
    if (s->failed && s->status == GRPC_STATUS_OK) s->status = GRPC_STATUS_INTERNAL;
    s->reply.status = (int)s->status;
    if (!s->failed && s->status != GRPC_STATUS_OK) {
        size_t n = GRPC_SLICE_LENGTH(s->details);
        if (n >= sizeof s->reply.msg) n = sizeof s->reply.msg - 1;
        memcpy(s->reply.msg, GRPC_SLICE_START_PTR(s->details), n);
        s->reply.msg[n] = 0;
    }
    grpc_slice_unref(s->details);
    grpc_metadata_array_destroy(&s->md_init);
    grpc_metadata_array_destroy(&s->md_trail);
    if (s->send_bb) grpc_byte_buffer_destroy(s->send_bb);
    if (s->recv_bb) grpc_byte_buffer_destroy(s->recv_bb);
    s->send_bb = s->recv_bb = NULL;
    grpc_call_unref(s->call);
    s->call = NULL;
    c->in_flight--;
    if (s->fn) s->fn(s->user, &s->reply);
    s->next_free = c->free_list;
    c->free_list = s;
}

int rb_client_poll(rb_client *c, double deadline_s)
{
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(c->cq, deadline_in(deadline_s - rb_now_s()), NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) return 0;
        if (ev.type == GRPC_QUEUE_SHUTDOWN) return -1;
        rb_tag *t = ev.tag;
        rb_slot *s = t->slot;
        grpc_op op;
        s->pending--;
        switch (t->kind) {
        case TAG_STATUS:
            if (!s->req->streaming && ev.success && s->recv_bb) take_message(s);
            break;
        case TAG_SEND:
            grpc_byte_buffer_destroy(s->send_bb);
            s->send_bb = NULL;
            if (ev.success && !s->failed && s->next_msg < s->req->n_msgs) {
                int last = s->next_msg == s->req->n_msgs - 1;
                grpc_op ops[2];
                memset(ops, 0, sizeof ops);
                s->send_bb =
                    grpc_raw_byte_buffer_create((grpc_slice *)&s->req->msgs[s->next_msg], 1);
                ops[0].op = GRPC_OP_SEND_MESSAGE;
                ops[0].data.send_message.send_message = s->send_bb;
                ops[1].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
                s->next_msg++;
                start_batch(s, ops, last ? 2 : 1, &s->t_send);
            }
            break;
        case TAG_RECV:
            if (ev.success && s->recv_bb) {
                take_message(s);
                memset(&op, 0, sizeof op);
                op.op = GRPC_OP_RECV_MESSAGE;
                op.data.recv_message.recv_message = &s->recv_bb;
                start_batch(s, &op, 1, &s->t_recv);
            }
            break;
        }
        if (s->pending == 0) {
            finish(s);
            return 1;
        }
        if (rb_now_s() >= deadline_s) return 0;
    }
}

/* ----------------------------------------------------------------------------------------
 * Info (blocking, on a private pluck queue so it never mixes with benchmark calls)
 */

static void copy_str(char *dst, size_t cap, ProtobufCBinaryData src)
{
    snprintf(dst, cap, "%.*s", (int)src.len, src.data ? (const char *)src.data : "");
}

int rb_client_info(rb_client *c, rb_info *out, double timeout_s, char *err, size_t err_cap)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    Rerank__V1__InfoRequest rq = RERANK__V1__INFO_REQUEST__INIT;
    grpc_slice req_slice;
    grpc_byte_buffer *send_bb, *recv_bb = NULL;
    grpc_metadata_array md_init, md_trail;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    int rc = -1;
    int tag_v;
    void *tag = &tag_v;
    pack_into(&rq.base, &req_slice);
    send_bb = grpc_raw_byte_buffer_create(&req_slice, 1);
    grpc_slice_unref(req_slice);
    grpc_metadata_array_init(&md_init);
    grpc_metadata_array_init(&md_trail);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                     gpr_time_from_millis((int64_t)(timeout_s * 1000), GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(
        c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
        grpc_slice_from_static_string("/rerank.v1.Reranker/Info"), NULL, deadline, NULL);
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_init;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &md_trail;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (!call || grpc_call_start_batch(call, ops, 6, tag, NULL) != GRPC_CALL_OK) {
        snprintf(err, err_cap, "Info: could not start the call");
        goto done;
    }
    grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (status != GRPC_STATUS_OK || !recv_bb) {
        snprintf(err, err_cap, "Info: status %d: %.*s", (int)status,
                 (int)GRPC_SLICE_LENGTH(details), (const char *)GRPC_SLICE_START_PTR(details));
        goto done;
    }
    {
        grpc_byte_buffer_reader rd;
        grpc_byte_buffer_reader_init(&rd, recv_bb);
        grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        Rerank__V1__InfoResponse *m = rerank__v1__info_response__unpack(
            NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        grpc_slice_unref(all);
        if (!m) {
            snprintf(err, err_cap, "Info: malformed InfoResponse");
            goto done;
        }
        memset(out, 0, sizeof *out);
        copy_str(out->version, sizeof out->version, m->version);
        copy_str(out->model_id, sizeof out->model_id, m->model_id);
        copy_str(out->architecture, sizeof out->architecture, m->architecture);
        copy_str(out->dtype, sizeof out->dtype, m->dtype);
        copy_str(out->device, sizeof out->device, m->device);
        copy_str(out->weights_dtype, sizeof out->weights_dtype, m->weights_dtype);
        out->max_length = m->max_length;
        out->max_batch_tokens = m->max_batch_tokens;
        out->max_documents = m->max_documents;
        out->max_message_bytes = m->max_message_bytes;
        out->max_in_flight = m->max_in_flight;
        out->tokenizer_workers = m->tokenizer_workers;
        rerank__v1__info_response__free_unpacked(m, NULL);
        rc = 0;
    }
done:
    if (call) grpc_call_unref(call);
    grpc_byte_buffer_destroy(send_bb);
    if (recv_bb) grpc_byte_buffer_destroy(recv_bb);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&md_init);
    grpc_metadata_array_destroy(&md_trail);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    return rc;
}
