"""test_tsan.py — rerankd built with ThreadSanitizer (-DRERANK_TSAN=ON) under concurrent load
on every path at once: unary Rerank, RerankStream, TEI Rerank and RerankStream, HTTP /rerank
(with clients that hang up), health Watch, /metrics scrapes and cancelled calls, then
SIGTERM while the load is still running (the drain races the requests). Passes when every
answer was a success or an expected status, the server exits 0, and ThreadSanitizer reported
nothing (TSAN_OPTIONS exitcode=66; the report text is printed).

The engine runs on one thread: OpenBLAS and libgomp are not instrumented, so their own
threads would only show their internals. Exit: 0 passed, 1 failed, 77 skipped.
"""
import argparse
import json
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrtest  # noqa: E402

check = rrtest.check
DOCS = ["Cats purr by rapidly twitching the muscles of the larynx.",
        "Tides are caused by the gravitational pull of the moon.",
        "Sourdough bread needs a starter of wild yeast.", "Ünïcödé — naïve café, 東京, emoji 🐱."]
EXPECTED = {"OK", "CANCELLED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--tiny-model", required=True)
    ap.add_argument("--seconds", type=float, default=15)
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.tiny_model, "config.json")):
        print("test_tsan: skipped: model %s missing (run scripts/make_models.py)" % args.tiny_model)
        return 77
    try:
        import grpc
    except ImportError as e:
        print("test_tsan: skipped: %s (create .venv with scripts/setup.sh)" % e)
        return 77
    rrtest.gen_stubs(args.source_dir, args.gen_dir)
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
    from tei.v1 import tei_pb2 as tei, tei_pb2_grpc as teig
    import health_pb2 as hp
    import health_pb2_grpc as hpg
    # ignore_noninstrumented_modules: gRPC, protobuf-c, libmicrohttpd and OpenBLAS are not
    # instrumented; their own accesses (through intercepted memcpy, new/delete) are not ours to
    # judge, and their synchronization is invisible to TSan.
    env = {"TSAN_OPTIONS": "halt_on_error=0 exitcode=66 second_deadlock_stack=1 "
                           "ignore_noninstrumented_modules=1"}
    srv = rrtest.Server(args.rerankd, args.tiny_model,
                        ["--http-port", "0", "--tokenizer-workers", "2", "--max-in-flight", "16"],
                        ready_timeout=180, env=env)
    stop = threading.Event()
    draining = threading.Event()  # after SIGTERM refusals and closed connections are expected
    bad, counts, lock = [], {}, threading.Lock()

    def note(kind, code):
        with lock:
            counts[kind] = counts.get(kind, 0) + 1
            if code not in EXPECTED and code != 200 and code != 503 and code != 429:
                bad.append((kind, code))

    def code_of(fn):
        try:
            fn()
            return "OK"
        except grpc.RpcError as e:
            return e.code().name

    def unary(seed):
        rnd = random.Random(seed)
        with grpc.insecure_channel(srv.addr) as ch:
            stub = pbg.RerankerStub(ch)
            while not stop.is_set():
                docs = [pb.Document(text=rnd.choice(DOCS), id=str(i)) for i in range(rnd.randint(1, 8))]
                req = pb.RerankRequest(query="how do cats purr", documents=docs, top_n=rnd.randint(0, 9))
                if rnd.random() < 0.3:  # long documents in small windows (several pairs each)
                    req.chunking.mode = pb.LONG_DOCUMENTS_CHUNK
                    req.truncation.max_length = 12
                if rnd.random() < 0.2:  # a call cancelled while queued or scored
                    f = stub.Rerank.future(req, timeout=30)
                    time.sleep(rnd.random() * 0.01)
                    f.cancel()
                    note("unary-cancel", "CANCELLED")
                else:
                    note("unary", code_of(lambda: stub.Rerank(req, timeout=30)))

    def stream(seed):
        rnd = random.Random(seed)
        with grpc.insecure_channel(srv.addr) as ch:
            stub = pbg.RerankerStub(ch)
            while not stop.is_set():
                def gen():
                    yield pb.RerankStreamRequest(open=pb.StreamOpen(query="tides", top_n=2))
                    for _ in range(rnd.randint(1, 4)):
                        yield pb.RerankStreamRequest(batch=pb.StreamBatch(
                            documents=[pb.Document(text=d) for d in rnd.sample(DOCS, 3)]))
                note("stream", code_of(lambda: list(stub.RerankStream(gen(), timeout=30))))

    def tei_client(seed):
        rnd = random.Random(seed)
        with grpc.insecure_channel(srv.addr) as ch:
            stub = teig.RerankStub(ch)
            while not stop.is_set():
                if rnd.random() < 0.5:
                    note("tei", code_of(lambda: stub.Rerank(tei.RerankRequest(
                        query="q", texts=rnd.sample(DOCS, 2), truncate=True), timeout=30)))
                else:
                    msgs = [tei.RerankStreamRequest(query=rnd.choice(["a", "b"]), text=d, truncate=True)
                            for d in DOCS]
                    note("tei-stream", code_of(lambda: stub.RerankStream(iter(msgs), timeout=30)))

    def http(seed):
        import http.client
        rnd = random.Random(seed)
        while not stop.is_set():
            body = json.dumps({"query": "q", "texts": rnd.sample(DOCS, 3)}).encode()
            try:
                if rnd.random() < 0.2:  # a client that hangs up while its request waits
                    s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)
                    s.sendall(b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                    s.close()
                    note("http-hangup", 200)
                    continue
                c = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=30)
                c.request("POST", "/rerank", body=body)
                r = c.getresponse()
                r.read()
                c.close()
                note("http", r.status)
            except OSError as e:
                note("http", 503 if draining.is_set() else "connection error: %r" % e)

    def ops():
        with grpc.insecure_channel(srv.addr) as ch:
            watch = hpg.HealthStub(ch).Watch(hp.HealthCheckRequest(service=""), timeout=120)
            first = next(watch)
            note("watch", "OK" if first.status == hp.HealthCheckResponse.SERVING else first.status)
            while not stop.is_set():
                try:
                    rrtest.scrape(srv.http_port)
                    note("metrics", 200)
                except Exception:  # noqa: BLE001 (the listener stops at the end)
                    note("metrics", 503 if draining.is_set() else "scrape failed")
                time.sleep(0.05)
            watch.cancel()

    threads = [threading.Thread(target=f, args=a) for f, a in
               [(unary, (k,)) for k in range(4)] + [(stream, (10 + k,)) for k in range(2)] +
               [(tei_client, (20 + k,)) for k in range(2)] + [(http, (30 + k,)) for k in range(2)] + [(ops, ())]]
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    draining.set()
    rc = srv.stop(timeout=300)  # SIGTERM under load
    stop.set()
    for t in threads:
        t.join(60)
    log = srv.log_text()
    print("test_tsan: %s" % ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    check("load on every path: every answer a success or an expected status", not bad and
          counts.get("unary", 0) > 0 and counts.get("http", 0) > 0 and counts.get("stream", 0) > 0, str(bad[:5]))
    reports = log.count("WARNING: ThreadSanitizer")
    check("ThreadSanitizer: no report (%d)" % reports, reports == 0, log[log.find("WARNING: ThreadSanitizer"):][:6000])
    check("the server drains and exits 0 under load", rc == 0, "rc=%s\n%s" % (rc, log[-2000:]))
    return rrtest.summary("test_tsan")


if __name__ == "__main__":
    sys.exit(main())
