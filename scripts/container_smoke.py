"""container_smoke.py — the checks scripts/container-smoke.sh runs against a rerankd
container it has started: gRPC health (every service name), rerank.v1 Rerank, the TEI
service, HTTP /rerank and /info (the engine's thread count under the container's CPU
limit), the log (no CUDA warning from a CPU image), then SIGTERM with requests in flight:
those finish OK, the container logs "draining" and exits 0.

Runs from the repository's .venv (grpcio, grpcio-tools); stubs are generated with
tests/server/rrtest.py. Prints `ok`/`FAIL` lines and a summary; exit 0 when all passed.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
import rrtest  # noqa: E402
from rrtest import check  # noqa: E402

DOCS = ["Cats purr by vibrating the muscles of the larynx.", "Tides follow the moon.",
        "Purring also helps cats heal and calm down."]
QUERY = "how do cats purr"


def post(port, path, body, timeout=30):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--container", required=True, help="name, for podman kill/wait/logs")
    ap.add_argument("--podman", default="podman")
    ap.add_argument("--expect-threads", type=int, default=0, help="engine threads /info must report")
    ap.add_argument("--expect-device", default="cpu", help="prefix of /info's device")
    ap.add_argument("--cuda-warning-ok", action="store_true", help="a CUDA image may say why it fell back")
    ap.add_argument("--grace", default="10.0", help="the grace period the container was given, as logged")
    ap.add_argument("--gen-dir", required=True)
    args = ap.parse_args()
    rrtest.gen_stubs(ROOT, args.gen_dir)
    import grpc
    import health_pb2 as hp
    import health_pb2_grpc as hg
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
    from tei.v1 import tei_pb2 as tei, tei_pb2_grpc as teig

    addr = "127.0.0.1:%d" % args.grpc_port
    ch = grpc.insecure_channel(addr)
    health = hg.HealthStub(ch)
    t0, status = time.time(), None
    while time.time() - t0 < 120:  # the model loads after the listeners start
        try:
            status = health.Check(hp.HealthCheckRequest(service=""), timeout=2).status
            if status == hp.HealthCheckResponse.SERVING:
                break
        except grpc.RpcError:
            pass
        time.sleep(0.3)
    check("grpc health \"\" SERVING within 120 s (%.1f s)" % (time.time() - t0),
          status == hp.HealthCheckResponse.SERVING, str(status))
    for svc in ("rerank.v1.Reranker", "tei.v1.Rerank"):
        st = health.Check(hp.HealthCheckRequest(service=svc), timeout=5).status
        check("grpc health %s SERVING" % svc, st == hp.HealthCheckResponse.SERVING, str(st))

    r = pbg.RerankerStub(ch).Rerank(pb.RerankRequest(query=QUERY, documents=[pb.Document(text=d) for d in DOCS]),
                                    timeout=30)
    order = [x.index for x in r.results]
    check("rerank.v1 Rerank: 3 results, scores in (0, 1) best first (%s)" % ["%.4f" % x.score for x in r.results],
          sorted(order) == [0, 1, 2] and all(0 < x.score < 1 for x in r.results) and
          all(a.score >= b.score for a, b in zip(r.results, r.results[1:])), str(order))
    t = teig.RerankStub(ch).Rerank(tei.RerankRequest(query=QUERY, texts=DOCS, return_text=True), timeout=30)
    check("tei.v1 Rerank: same order as rerank.v1, texts returned",
          [x.index for x in t.ranks] == order and all(x.text == DOCS[x.index] for x in t.ranks),
          str([x.index for x in t.ranks]))

    st, js = post(args.http_port, "/rerank", {"query": QUERY, "texts": DOCS})
    check("HTTP POST /rerank: 200, same order", st == 200 and [x["index"] for x in js] == order, str(js))
    st, _, body = rrtest.http_get(args.http_port, "/health")
    check("HTTP /health 200", st == 200, body)
    st, _, body = rrtest.http_get(args.http_port, "/info")
    device = json.loads(body).get("device", "") if st == 200 else body
    want = args.expect_device
    if args.expect_threads:
        want += " (%d thread" % args.expect_threads
    check("HTTP /info device %r starts with %r (--threads default under the container's CPU limit)"
          % (device, want), device.startswith(want), device)

    logs = subprocess.run([args.podman, "logs", args.container], capture_output=True, text=True)
    logs = logs.stdout + logs.stderr
    if not args.cuda_warning_ok:
        check("log: no word about CUDA (CPU image)", "cuda" not in logs.lower(),
              [line for line in logs.splitlines() if "cuda" in line.lower()])
    else:
        why = [line for line in logs.splitlines() if "using the CPU" in line]
        check("log: the CUDA image without a GPU says why it runs on the CPU (%s)" % (why[:1] or "nothing"), why)

    # Drain: requests in flight when SIGTERM arrives finish OK; then the process exits 0.
    stub = pbg.RerankerStub(ch)
    big = [pb.Document(text=" ".join(["word%d" % (i * 7 + j) for j in range(40)])) for i in range(16)]
    codes, lock = [], threading.Lock()

    def one():
        try:
            stub.Rerank(pb.RerankRequest(query=QUERY, documents=big), timeout=60)
            c = "OK"
        except grpc.RpcError as e:
            c = e.code().name
        with lock:
            codes.append(c)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for th in threads:
        th.start()
    time.sleep(0.3)
    t_term = time.time()
    subprocess.run([args.podman, "kill", "--signal", "TERM", args.container], check=True, capture_output=True)
    for th in threads:
        th.join(90)
    ch.close()
    rc = subprocess.run([args.podman, "wait", args.container], capture_output=True, text=True).stdout.strip()
    t_exit = time.time() - t_term
    logs = subprocess.run([args.podman, "logs", args.container], capture_output=True, text=True)
    logs = logs.stdout + logs.stderr
    check("SIGTERM with 4 requests in flight: all answered OK (%s)" % codes, codes == ["OK"] * 4, str(codes))
    check("SIGTERM: 'draining' logged (grace %s s from RERANKD_GRACE_SECONDS), nothing cancelled, exit code 0, "
          "stopped in %.1f s" % (args.grace, t_exit),
          "draining (grace %s s)" % args.grace in logs and "cancelling" not in logs and rc == "0",
          "exit %r; log tail %r" % (rc, logs[-400:]))
    return rrtest.summary("container_smoke")


if __name__ == "__main__":
    sys.exit(main())
