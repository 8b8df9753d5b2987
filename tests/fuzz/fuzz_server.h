/*
 * fuzz_server.h — the server the request-front fuzzers admit into: an rr_server with the
 * tiny test model, a CPU engine and a real scheduler (requests are acquired and given back,
 * never scored), ready. Skips the target when the model is absent.
 */
#ifndef RR_FUZZ_SERVER_H
#define RR_FUZZ_SERVER_H

#include "edge/edge.h"
#include "fuzz.h"

static inline void fuzz_tiny_server(rr_server *srv, const char *target, int max_docs)
{
    rr_config cfg = {.model_dir = RR_MODELS_DIR "/tiny-bert-random",
                     .max_docs = max_docs,
                     .max_in_flight = 4,
                     .tokenizer_workers = 1,
                     .max_message_bytes = 4 << 20,
                     .max_chunks_per_doc = 8,
                     .max_chunks_per_request = 64};
    rr_edge_init(srv, &cfg);
    rr_error err = {0};
    rr_status s = rr_model_load(cfg.model_dir, &srv->model, &err);
    if (s == RR_E_IO) fuzz_skip(target, err.msg);
    FUZZ_CHECK(s == RR_OK, "loading the tiny model: %s", err.msg);
    srv->info = rr_model_get_info(srv->model);
    rr_engine_opts eo = {.device = -1, .n_threads = 1};
    FUZZ_CHECK(rr_engine_init(srv->model, &eo, &srv->engine, &err) == RR_OK, "%s", err.msg);
    rr_sched_opts so = {.max_in_flight = 4, .tokenizer_workers = 1, .max_chunks = 8};
    FUZZ_CHECK(rr_sched_init(srv->model, srv->engine, &so, &srv->sched, &err) == RR_OK, "%s",
               err.msg);
    atomic_store(&srv->ready, 1);
}

#endif /* RR_FUZZ_SERVER_H */
