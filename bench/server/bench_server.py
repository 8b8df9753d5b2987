"""bench_server.py — rerankd's own overhead: latency of a gRPC Rerank round trip at K
documents on the CPU engine, against the same work (tokenize + pack + forward through
rr_score_query) called in-process by bench_inproc. Validates before timing: the server's
logits must match the in-process ones (same batch composition, same thread count).

    .venv/bin/python bench/server/bench_server.py --build build [--model models/minilm-l6-bert]
        [--k 1 100] [--iters 200] [--iters-large 20] [--threads 2]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
import rrtest  # noqa: E402

WORDS = ("the tide moon ocean cat purr language program memory server latency rank query "
         "document model token batch engine kernel thread network river mountain city history "
         "science music energy light water garden market signal").split()


def passages(n, words=60, seed=7):
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(WORDS) for _ in range(words)).capitalize() + "." for _ in range(n)]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "minilm-l6-bert"))
    ap.add_argument("--k", type=int, nargs="+", default=[1, 100])
    ap.add_argument("--iters", type=int, default=200, help="timed calls at K=1")
    ap.add_argument("--iters-large", type=int, default=20, help="timed calls at K > 1 (seconds each on a CPU)")
    ap.add_argument("--threads", type=int, default=0, help="CPU engine threads (0 = all)")
    args = ap.parse_args()

    rrtest.gen_stubs(ROOT, os.path.join(args.build, "bench-gen"))
    import grpc
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg

    query = "how does the moon move the ocean tide"
    docs = passages(max(args.k))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(docs) + "\n")
        docs_file = f.name
    srv = rrtest.Server(os.path.join(args.build, "src", "server", "rerankd"), args.model,
                        ["--threads", str(args.threads)] if args.threads else [])
    # rrtest.Server pins --threads 1 unless overridden; the in-process side uses the same count.
    threads = args.threads if args.threads else 1
    ch = grpc.insecure_channel(srv.addr)
    stub = pbg.RerankerStub(ch)
    rows = []
    try:
        for k in args.k:
            iters = args.iters if k == 1 else args.iters_large
            print("K=%d: %d calls in-process, then %d over gRPC ..." % (k, iters, iters), file=sys.stderr, flush=True)
            req = pb.RerankRequest(query=query, documents=[pb.Document(text=d) for d in docs[:k]])
            inproc = json.loads(subprocess.run(
                [os.path.join(args.build, "bench", "server", "bench_inproc"), args.model, query, docs_file,
                 str(k), str(iters), str(threads)], capture_output=True, text=True, check=True).stdout)
            r = stub.Rerank(req, timeout=60)
            bad = [x.index for x in r.results if x.logit != inproc["logits"][x.index]
                   and abs(x.logit - inproc["logits"][x.index]) > 1e-6]
            if bad:
                print("validation FAILED at K=%d: documents %s differ" % (k, bad[:5]))
                return 1
            for _ in range(3):
                stub.Rerank(req, timeout=60)
            lat, srv_ms = [], []
            for _ in range(iters):
                t0 = time.perf_counter()
                r = stub.Rerank(req, timeout=60)
                lat.append((time.perf_counter() - t0) * 1e3)
                srv_ms.append(r.stats.total_ns / 1e6)
            rows.append((k, iters, pct(lat, 0.5), pct(lat, 0.99), pct(srv_ms, 0.5), inproc["p50_ms"], inproc["p99_ms"]))
    finally:
        ch.close()
        srv.stop()
        os.unlink(docs_file)
    print("model %s, CPU engine, %d thread(s), 60-word passages" % (os.path.basename(args.model), threads))
    print("%5s  %5s  %12s  %12s  %14s  %12s  %12s  %14s" % ("K", "calls", "gRPC p50 ms", "gRPC p99 ms", "server p50 ms",
                                                       "inproc p50", "inproc p99", "overhead p50"))
    for k, n, p50, p99, s50, i50, i99 in rows:
        print("%5d  %5d  %12.3f  %12.3f  %14.3f  %12.3f  %12.3f  %14.3f" % (k, n, p50, p99, s50, i50, i99, p50 - i50))
    return 0


if __name__ == "__main__":
    sys.exit(main())
