/*
 * methods.c — the one table of the gRPC methods rerankd serves: path, whether the core
 * reads the request message before publishing the call, how many requests stay armed, and
 * the handler, and whether the API key is asked (the scoring services; health and reflection
 * stay open for probes and tools). Registration (server.c), arming and dispatch (call.c) and the
 * metrics' method labels all read this table and nothing else.
 */
#include "grpc/wing.h"

const rr_method_def rr_methods[RR_M_COUNT + 1] = {
    [RR_M_RERANK] = {"/rerank.v1.Reranker/Rerank", 1, 8, rr_svc_rerank, 1},
    [RR_M_RERANK_STREAM] = {"/rerank.v1.Reranker/RerankStream", 0, 4, rr_svc_rerank_stream, 1},
    [RR_M_INFO] = {"/rerank.v1.Reranker/Info", 1, 1, rr_svc_info, 1},
    [RR_M_TEI_RERANK] = {"/tei.v1.Rerank/Rerank", 1, 4, rr_svc_tei_rerank, 1},
    [RR_M_TEI_RERANK_STREAM] = {"/tei.v1.Rerank/RerankStream", 0, 2, rr_svc_tei_rerank_stream, 1},
    [RR_M_TEI_INFO] = {"/tei.v1.Info/Info", 1, 1, rr_svc_tei_info, 1},
    [RR_M_HEALTH_CHECK] = {"/grpc.health.v1.Health/Check", 1, 2, rr_svc_health_check, 0},
    [RR_M_HEALTH_WATCH] = {"/grpc.health.v1.Health/Watch", 1, 1, rr_svc_health_watch, 0},
    [RR_M_REFLECT_V1] = {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", 0, 1,
                         rr_svc_reflect, 0},
    [RR_M_REFLECT_V1ALPHA] = {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", 0,
                              1, rr_svc_reflect, 0},
    [RR_M_GENERIC] = {"unknown", 0, 2, rr_svc_unimplemented, 0},
};
