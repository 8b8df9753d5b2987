/*
 * client.h — the asynchronous gRPC client of rerank-bench and rerank-eval: rerank.v1 calls
 * (unary Rerank and bidi RerankStream) on gRPC C-core 1.51 with protobuf-c messages, many
 * calls in flight on one channel and one completion queue, driven by one thread.
 *
 * A request is packed once (rb_request) and sent by any number of calls. rb_client_start
 * starts a call in a free slot; rb_client_poll waits for one completion-queue event and,
 * when a call ends, hands its rb_reply to the caller's callback. Latency is measured from
 * the start time the caller gives (the intended start in open-loop mode, so queueing in the
 * client is counted: no coordinated omission) to the end of the call.
 */
#ifndef RB_CLIENT_H
#define RB_CLIENT_H

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>

/* Per-stage times and token counts from the server's rerank.v1.Stats (summed over the
 * batches of a stream). */
typedef struct rb_stats {
    uint64_t tokenization_ns;
    uint64_t queue_ns;
    uint64_t inference_ns;
    uint64_t total_ns;
    uint64_t query_tokens;
    uint64_t total_tokens;
} rb_stats;

/* One packed request: unary (one RerankRequest) or streaming (StreamOpen, then StreamBatch
 * messages of at most stream_batch documents). Immutable once built. */
typedef struct rb_request {
    int streaming;
    int n_docs;
    int n_msgs;
    grpc_slice *msgs;
} rb_request;

/* Returns 0 on success, -1 on allocation failure. docs[i] are NUL-terminated UTF-8. */
int rb_request_init(rb_request *r, const char *query, const char *const *docs, int n_docs,
                    int streaming, int stream_batch);
void rb_request_free(rb_request *r);

/* What a finished call reports. logits[i] is the logit of document i of the request (valid
 * for the n_scored documents the server returned; NaN for the others). */
typedef struct rb_reply {
    int status;    /* grpc_status_code; 0 = OK */
    char msg[256]; /* status details, or the client-side failure */
    rb_stats stats;
    int n_docs;   /* documents in the request */
    int n_scored; /* results received */
    const float *logits;
    double latency_s; /* end of call - start time given to rb_client_start */
    double first_s;   /* first response message - start time (streams: first batch) */
    double t_start;   /* as given to rb_client_start */
    long cookie;      /* as given to rb_client_start */
} rb_reply;

typedef void (*rb_done_fn)(void *user, const rb_reply *r);

typedef struct rb_client rb_client;

/* Connects lazily to target ("host:port"); max_calls slots, each able to hold max_docs
 * logits; every call gets a deadline of timeout_s. Returns NULL on failure. Calls
 * grpc_init (rb_client_free calls grpc_shutdown). */
rb_client *rb_client_init(const char *target, int max_calls, int max_docs, double timeout_s);
void rb_client_free(rb_client *c);

/* Starts a call of req. t_start is the start time (rb_now_s clock) its latency counts
 * from; cookie is echoed in the reply. Returns 1 when started, 0 when every slot is busy, -1 on a
 * gRPC error (message in err). fn(user, reply) runs inside rb_client_poll when the call ends. */
int rb_client_start(rb_client *c, const rb_request *req, double t_start, long cookie, rb_done_fn fn,
                    void *user, char *err, size_t err_cap);

/* Handles completion-queue events until one call has ended or the clock reaches
 * deadline_s. Returns the number of calls that ended (0 or 1). */
int rb_client_poll(rb_client *c, double deadline_s);
int rb_client_in_flight(const rb_client *c);

/* Cancels every call in flight (their replies still arrive, with status CANCELLED). */
void rb_client_cancel_all(rb_client *c);

/* rerank.v1.Reranker/Info, blocking. Fields are copied into the caller's buffers. */
typedef struct rb_info {
    char version[64];
    char model_id[256];
    char architecture[96];
    char dtype[32];
    char device[160];
    char weights_dtype[32];
    unsigned max_length, max_batch_tokens, max_documents, max_message_bytes, max_in_flight,
        tokenizer_workers;
} rb_info;
int rb_client_info(rb_client *c, rb_info *out, double timeout_s, char *err, size_t err_cap);

/* Monotonic clock in seconds. */
double rb_now_s(void);

#endif /* RB_CLIENT_H */
