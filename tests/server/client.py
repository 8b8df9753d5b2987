"""client.py — a minimal rerankd client: ranks documents for a query over gRPC and prints
the answer (rerank.v1.Reranker/Rerank). Stubs are generated from proto/ with grpcio-tools on
first use into --gen-dir.

    .venv/bin/python tests/server/client.py --addr 127.0.0.1:50051 --query "how do cats purr" \\
        "Cats purr with their larynx." "Tides follow the moon." "Purring also soothes cats."
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rrtest  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:50051")
    ap.add_argument("--query", required=True)
    ap.add_argument("--top-n", type=int, default=0)
    ap.add_argument("--gen-dir", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "client-gen"))
    ap.add_argument("documents", nargs="+")
    args = ap.parse_args()
    rrtest.gen_stubs(os.path.dirname(os.path.dirname(HERE)), args.gen_dir)
    import grpc
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
    with grpc.insecure_channel(args.addr) as ch:
        r = pbg.RerankerStub(ch).Rerank(pb.RerankRequest(
            query=args.query, top_n=args.top_n, return_documents=True,
            documents=[pb.Document(text=d, id=str(i)) for i, d in enumerate(args.documents)]), timeout=30)
    print("query: %s" % args.query)
    print("%4s  %5s  %10s  %8s  %s" % ("rank", "index", "logit", "sigmoid", "document"))
    for rank, x in enumerate(r.results, 1):
        print("%4d  %5d  %10.5f  %8.5f  %s" % (rank, x.index, x.logit, x.score, x.document[:70]))
    s = r.stats
    print("tokens %d; tokenization %.2f ms, queue %.2f ms, inference %.2f ms, total %.2f ms" % (
        s.total_tokens, s.tokenization_ns / 1e6, s.queue_ns / 1e6, s.inference_ns / 1e6, s.total_ns / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
