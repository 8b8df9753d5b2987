"""test_operations.py — integration tests of rerankd's operations surface, on the real server:

- HTTP listener (--http-port): /health, /info, 404/405, and /metrics parsed by the reference
  Prometheus parser (prometheus_client), with every counter checked against the calls the
  test made (OK and failed RPCs by code, scoring requests by outcome, pairs, tokens from the
  responses' stats, batches) and every histogram's invariants (cumulative buckets, +Inf ==
  _count);
- the allocation-free request path: rerankd_heap_allocations_total stays flat over warm
  rounds of unary, TEI, stream and health calls (1 and 4 clients);
- HTTP/JSON reranking: POST /rerank (TEI's shape; raw scores bit-identical to the CLI,
  sigmoid scores, texts verbatim, timing headers), /v1/rerank and /v2/rerank (Cohere/Jina
  shape, top_n, documents as strings or objects), every bad input answered 413/422 with a
  JSON error on the same keep-alive connection, 8 concurrent clients, the counters, and
  SIGTERM under load (correct answers, exit 0);
- loading: while the model is still loading (its config.json is a FIFO nobody writes yet),
  HTTP /health and POST /rerank are 503, grpc.health says NOT_SERVING, Rerank gets UNAVAILABLE and
  rerankd_ready is 0; a load failure then exits 1 naming the file;
- TLS (--tls-cert/--tls-key): scores bit-identical to the CLI over TLS; a plaintext client
  and a client trusting another CA are refused, and a good call follows; certificate
  rotation (files replaced by rename) is picked up by new connections without a restart;
- mutual TLS (--tls-client-ca): no client certificate or one from another CA is refused, a
  signed one is served;
- start-up errors: a missing key, a key that is not PEM, a certificate without its key,
  a key that does not match the certificate, an HTTP port in use — each exits non-zero with
  a message naming the cause.

Certificates are made at test time with the openssl CLI. Exit: 0 passed, 1 failed, 77 skipped.
--valgrind runs each server under memcheck (error or definite/indirect leak → exit 99 → fail).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrtest  # noqa: E402

SCALE = 1


check = rrtest.check


DOCS = ["Cats purr by rapidly twitching the muscles of the larynx.",
        "Tides are caused by the gravitational pull of the moon.",
        "Sourdough bread needs a starter of wild yeast.",
        "Ünïcödé — naïve café, 東京, emoji 🐱."]


def http_get(port, path, method="GET", timeout=10):
    return rrtest.http_get(port, path, method, timeout * SCALE)


scrape = rrtest.scrape
val = rrtest.val


class Certs:
    """Two CAs; server certificates for localhost/127.0.0.1 from each; a client cert from each."""

    def __init__(self, root):
        self.root = root
        for ca in ("ca1", "ca2"):
            self.run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                     "-subj", "/CN=rerankd test %s" % ca, "-keyout", self.p(ca + ".key"), "-out", self.p(ca + ".pem"))
            self.leaf(ca, "srv-" + ca, "localhost", server=True)
            self.leaf(ca, "cli-" + ca, "rerank client", server=False)

    def p(self, name):
        return os.path.join(self.root, name)

    def run(self, *args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)

    def leaf(self, ca, name, cn, server):
        self.run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + cn,
                 "-keyout", self.p(name + ".key"), "-out", self.p(name + ".csr"))
        ext = self.p(name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=%s\n" %
                    ("serverAuth" if server else "clientAuth"))
        self.run("x509", "-req", "-in", self.p(name + ".csr"), "-CA", self.p(ca + ".pem"), "-CAkey",
                 self.p(ca + ".key"), "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", self.p(name + ".pem"))

    def read(self, name):
        with open(self.p(name), "rb") as f:
            return f.read()


class Suite:
    def __init__(self, args, pb, pbg):
        self.args, self.pb, self.pbg = args, pb, pbg
        self.vg = rrtest.valgrind_cmd() if args.valgrind else None
        self.ready_timeout = 300.0 if args.valgrind else 60.0

    def server(self, extra):
        return rrtest.Server(self.args.rerankd, self.args.tiny_model, extra, valgrind=self.vg,
                             ready_timeout=self.ready_timeout)

    def stop(self, srv, what):
        rc = srv.stop(timeout=120 * SCALE)
        check("%s: exits 0 on SIGTERM%s" % (what, " (valgrind clean)" if self.vg else ""), rc == 0,
              "rc=%s\n%s" % (rc, srv.log_text()[-3000:]))

    def request(self, docs, query="how do cats purr"):
        return self.pb.RerankRequest(query=query, documents=[self.pb.Document(text=d) for d in docs])

    def rerank(self, ch, docs, query="how do cats purr"):
        return self.pbg.RerankerStub(ch).Rerank(self.request(docs, query), timeout=30 * SCALE)

    def code_of(self, fn):
        import grpc
        try:
            fn()
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    # ---- HTTP + metrics --------------------------------------------------------------------
    def http(self):
        import grpc
        srv = self.server(["--http-port", "0"])
        try:
            port = srv.http_port
            check("http: `HTTP <port>` printed before READY", port is not None and port > 0, str(port))
            st, ctype, body = http_get(port, "/health")
            check("http: /health 200 SERVING once ready", st == 200 and body == "SERVING\n", "%d %r" % (st, body))
            st, ctype, body = http_get(port, "/info")
            info = json.loads(body) if st == 200 else {}
            check("http: /info JSON (model_type reranker, max_input_length 512, ready)",
                  ctype == "application/json" and info.get("model_type") == "reranker" and
                  info.get("max_input_length") == 512 and info.get("ready") is True and
                  info.get("model_id") == self.args.tiny_model, "%d %s %r" % (st, ctype, body))
            st, _, _ = http_get(port, "/nope")
            check("http: unknown path → 404", st == 404, str(st))
            st, _, _ = http_get(port, "/metrics", method="POST")
            check("http: POST → 405", st == 405, str(st))
            st, _, body = http_get(port, "/health", method="HEAD")
            check("http: HEAD /health → 200, no body", st == 200 and body == "", "%d %r" % (st, body))

            s0, fams, ctype = scrape(port)
            check("metrics: content type text/plain; version=0.0.4", ctype.startswith("text/plain; version=0.0.4"),
                  str(ctype))
            ch = grpc.insecure_channel(srv.addr)
            tokens = 0
            for k in (1, 3, 4):
                tokens += self.rerank(ch, DOCS[:k]).stats.total_tokens
            empty = self.code_of(lambda: self.rerank(ch, []))
            check("metrics: an empty request fails INVALID_ARGUMENT", empty == grpc.StatusCode.INVALID_ARGUMENT, str(empty))
            # A stream: open + two batches + half-close.
            pb = self.pb

            def msgs():
                yield pb.RerankStreamRequest(open=pb.StreamOpen(query="tides"))
                yield pb.RerankStreamRequest(batch=pb.StreamBatch(documents=[pb.Document(text=d) for d in DOCS[:2]]))
                yield pb.RerankStreamRequest(batch=pb.StreamBatch(documents=[pb.Document(text=d) for d in DOCS[2:]]))
            out = list(self.pbg.RerankerStub(ch).RerankStream(msgs(), timeout=30 * SCALE))
            stream_tokens = sum(m.batch.stats.total_tokens for m in out if m.HasField("batch"))
            ch.close()
            time.sleep(0.3)  # the status of the last call is counted when its context is freed
            s1, fams, _ = scrape(port)
            d = lambda name, **lb: val(s1, name, **lb) - val(s0, name, **lb)  # noqa: E731
            rr = "/rerank.v1.Reranker/Rerank"
            rs = "/rerank.v1.Reranker/RerankStream"
            check("metrics: grpc_requests_total Rerank OK +3, INVALID_ARGUMENT +1, RerankStream OK +1",
                  d("rerankd_grpc_requests_total", method=rr, code="OK") == 3 and
                  d("rerankd_grpc_requests_total", method=rr, code="INVALID_ARGUMENT") == 1 and
                  d("rerankd_grpc_requests_total", method=rs, code="OK") == 1,
                  "%s %s %s" % (d("rerankd_grpc_requests_total", method=rr, code="OK"),
                                d("rerankd_grpc_requests_total", method=rr, code="INVALID_ARGUMENT"),
                                d("rerankd_grpc_requests_total", method=rs, code="OK")))
            check("metrics: handling_seconds count for Rerank +4",
                  d("rerankd_grpc_handling_seconds_count", method=rr) == 4,
                  str(d("rerankd_grpc_handling_seconds_count", method=rr)))
            check("metrics: requests_total{done} +5 (3 unary + 2 stream batches), failed +0",
                  d("rerankd_requests_total", outcome="done") == 5 and d("rerankd_requests_total", outcome="failed") == 0,
                  str(d("rerankd_requests_total", outcome="done")))
            check("metrics: pairs_total +12", d("rerankd_pairs_total") == 12, str(d("rerankd_pairs_total")))
            check("metrics: tokens_total equals the responses' total_tokens (%d)" % (tokens + stream_tokens),
                  d("rerankd_tokens_total") == tokens + stream_tokens, str(d("rerankd_tokens_total")))
            check("metrics: request_seconds/inference_seconds counts +5, batches ≥ 5 with ≥ 12 pairs",
                  d("rerankd_request_seconds_count") == 5 and d("rerankd_inference_seconds_count") == 5 and
                  d("rerankd_batch_pairs_count") >= 5 and d("rerankd_batch_pairs_sum") >= 12 and
                  d("rerankd_batch_tokens_sum") >= tokens + stream_tokens,
                  "%s %s %s" % (d("rerankd_request_seconds_count"), d("rerankd_batch_pairs_count"),
                                d("rerankd_batch_tokens_sum")))
            check("metrics: ready 1, serving 1, nothing queued or in flight",
                  val(s1, "rerankd_ready") == 1 and val(s1, "rerankd_serving") == 1 and
                  val(s1, "rerankd_requests_in_flight") == 0 and
                  val(s1, "rerankd_queued_requests", stage="engine") == 0, "")
            self.no_alloc(srv, port)
            bad = []
            for f in fams:
                if f.type != "histogram":
                    continue
                series = {}
                for s in f.samples:
                    key = frozenset((k, v) for k, v in s.labels.items() if k != "le")
                    series.setdefault(key, []).append(s)
                for key, ss in series.items():
                    buckets = [(float(s.labels["le"]), s.value) for s in ss if s.name.endswith("_bucket")]
                    count = [s.value for s in ss if s.name.endswith("_count")]
                    if not buckets or buckets[-1][0] != float("inf") or len(count) != 1:
                        bad.append((f.name, "shape"))
                        continue
                    vals = [v for _, v in buckets]
                    les = [le for le, _ in buckets]
                    if vals != sorted(vals) or les != sorted(les) or vals[-1] != count[0]:
                        bad.append((f.name, dict(key)))
            check("metrics: every histogram has cumulative buckets ending at +Inf == _count", not bad, str(bad[:3]))
        finally:
            if srv.proc.poll() is None:
                self.stop(srv, "http server")

    def workload(self, addr, threads):
        """Unary Rerank (K = 3, 4, 9, 12), TEI Rerank and health checks, 8 of each, then three
        RerankStreams of two batches — from `threads` client threads at once, each on its own
        channel."""
        import grpc
        from tei.v1 import tei_pb2 as tei, tei_pb2_grpc as teig
        import health_pb2 as hp
        import health_pb2_grpc as hpg
        pb = self.pb
        errors = []

        def one():
            ch = grpc.insecure_channel(addr)
            try:
                for i in range(8):
                    self.rerank(ch, DOCS[: 4 if i % 2 else 3] * (1 if i % 3 else 3))
                    teig.RerankStub(ch).Rerank(tei.RerankRequest(query="q", texts=DOCS, return_text=True),
                                               timeout=30 * SCALE)
                    hpg.HealthStub(ch).Check(hp.HealthCheckRequest(service=""), timeout=30 * SCALE)

                def msgs():
                    yield pb.RerankStreamRequest(open=pb.StreamOpen(query="tides", return_documents=True))
                    for k in (2, 4):
                        yield pb.RerankStreamRequest(batch=pb.StreamBatch(
                            documents=[pb.Document(text=d, id=str(j)) for j, d in enumerate(DOCS[:k])]))
                for _ in range(3):
                    list(self.pbg.RerankerStub(ch).RerankStream(msgs(), timeout=30 * SCALE))
            except grpc.RpcError as e:
                errors.append(e)
            finally:
                ch.close()
        ts = [threading.Thread(target=one) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return errors

    def no_alloc(self, srv, port):
        """The request path allocates nothing once warm: after three warm-up rounds of a
        workload (every pooled call context, stream state and arena has then seen its shape),
        two more rounds leave rerankd_heap_allocations_total where it was. Not under valgrind
        (memcheck is what that run is for; this one is slow there and checked by server_ops)."""
        if self.vg:
            print("skip no-allocation check under valgrind (server_ops checks it)")
            return
        for threads in (1, 4):
            errs = []
            for _ in range(3):
                errs += self.workload(srv.addr, threads)
            time.sleep(0.3)
            a = val(scrape(port)[0], "rerankd_heap_allocations_total")
            errs += self.workload(srv.addr, threads) + self.workload(srv.addr, threads)
            time.sleep(0.3)
            b = val(scrape(port)[0], "rerankd_heap_allocations_total")
            check("no allocation on the request path once warm (%d client thread%s): %d allocations over "
                  "2 rounds of unary, TEI, stream and health calls" % (threads, "s" if threads > 1 else "",
                                                                      b - a),
                  a > 0 and b == a and not errs, "%s → %s %s" % (a, b, errs[:1]))

    # ---- HTTP/JSON reranking ------------------------------------------------------------------
    def http_rerank(self):
        import http.client
        import struct
        f32 = lambda x: struct.unpack("f", struct.pack("f", x))[0]  # noqa: E731
        # The server's sigmoid is float arithmetic (rr_sigmoid): within a few float ulps of the
        # exact value, and its last bit depends on how the build contracts it (ASan differs).
        sig = lambda x: 1.0 / (1.0 + __import__("math").exp(-x))  # noqa: E731
        near = lambda a, b: abs(a - b) <= 4e-7 * max(abs(b), 1e-30)  # noqa: E731
        query = "how do cats purr"
        ref = rrtest.cli_logits(self.args.cli, self.args.tiny_model, query, DOCS)
        srv = self.server(["--http-port", "0", "--max-docs", "8", "--max-message-bytes", "4096"])
        port = srv.http_port
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60 * SCALE)

            def post(path, body, raw=False):
                data = body if raw else json.dumps(body).encode()
                conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                text = r.read().decode("utf-8", errors="replace")
                try:
                    js = json.loads(text)
                except ValueError:
                    js = None
                return r.status, js, dict((k.lower(), v) for k, v in r.getheaders())

            st, js, hd = post("/rerank", {"query": query, "texts": DOCS, "raw_scores": True, "return_text": True})
            ok = st == 200 and isinstance(js, list) and len(js) == len(DOCS)
            check("http /rerank (TEI shape): 200 and one entry per text", ok, "%s %s" % (st, js))
            if ok:
                check("http /rerank: raw_scores are the CLI's logits, bit for bit",
                      all(f32(e["score"]) == ref[e["index"]] for e in js), str(js))
                check("http /rerank: sorted by score, texts returned verbatim (Unicode included)",
                      [e["score"] for e in js] == sorted((e["score"] for e in js), reverse=True) and
                      all(e["text"] == DOCS[e["index"]] for e in js))
                check("http /rerank: timing and token headers",
                      all(h in hd for h in ("x-total-time", "x-inference-time", "x-queue-time",
                                            "x-tokenization-time", "x-compute-tokens")), str(hd))
            st, js, _ = post("/rerank", {"query": query, "texts": DOCS})
            check("http /rerank: default scores are sigmoid(logit) (to 4e-7 relative), no text",
                  st == 200 and all(near(e["score"], sig(ref[e["index"]])) and "text" not in e for e in js),
                  "%s %s" % (st, js))
            docs = [DOCS[0], {"text": DOCS[1]}, DOCS[3]]
            st, js, _ = post("/v1/rerank", {"model": "x", "query": query, "documents": docs, "top_n": 2,
                                            "return_documents": True})
            want = sorted(range(3), key=lambda i: -[ref[0], ref[1], ref[3]][i])[:2]
            check("http /v1/rerank (Cohere/Jina shape): top_n 2, relevance_score = sigmoid, documents",
                  st == 200 and [r["index"] for r in js["results"]] == want and
                  all(near(r["relevance_score"], sig([ref[0], ref[1], ref[3]][r["index"]])) and
                      r["document"]["text"] == [DOCS[0], DOCS[1], DOCS[3]][r["index"]] for r in js["results"]) and
                  js["usage"]["total_tokens"] > 0, "%s %s" % (st, js))
            st, js, _ = post("/v2/rerank", {"query": query, "documents": DOCS[:2]})
            check("http /v2/rerank: same shape, no documents by default",
                  st == 200 and len(js["results"]) == 2 and "document" not in js["results"][0], "%s %s" % (st, js))
            st, js, _ = post("/rerank", {"query": query, "documents": DOCS[:2]})
            check("http /rerank with \"documents\": read as the Cohere shape", st == 200 and "results" in js, str(js))
            bad = [
                ("empty texts", {"query": query, "texts": []}, 400),
                ("empty query", {"query": "", "texts": ["a"]}, 422),
                ("a text that is not a string", {"query": query, "texts": ["a", 3]}, 422),
                ("raw_scores not a boolean", {"query": query, "texts": ["a"], "raw_scores": "yes"}, 422),
                ("bad truncation_direction", {"query": query, "texts": ["a"], "truncation_direction": "up"}, 422),
                ("top_n 0", {"query": query, "documents": ["a"], "top_n": 0}, 422),
                ("9 texts over --max-docs 8", {"query": query, "texts": ["a"] * 9}, 413),
                ("an over-long pair with truncate false",
                 {"query": query, "texts": ["a", " ".join(["tide"] * 600)], "truncate": False}, 413),
            ]
            for what, body, code in bad:
                st, js, _ = post("/rerank", body)
                check("http /rerank: %s → %d with a JSON error" % (what, code),
                      st == code and isinstance(js, dict) and js.get("error") and js.get("error_type"),
                      "%s %s" % (st, js))
            for what, raw, code in (("malformed JSON", b"{\"query\": ", 400),
                                    ("a body over --max-message-bytes", b"{\"query\":\"" + b"a" * 5000 + b"\"}", 413),
                                    ("invalid UTF-8 in a text", b'{"query":"q","texts":["ok","\xff\xfe"]}', 400)):
                st, js, _ = post("/rerank", raw, raw=True)
                check("http /rerank: %s → %d" % (what, code), st == code and js and js.get("error"),
                      "%s %s" % (st, js))
            st, js, _ = post("/rerank", {"query": query, "texts": DOCS[:2]})
            check("http /rerank: a correct request after the bad ones, same connection", st == 200 and len(js) == 2,
                  "%s %s" % (st, js))
            conn.close()

            # Concurrent clients, each on its own keep-alive connection: every answer correct.
            errors = []

            def client(seed):
                rnd = __import__("random").Random(seed)
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120 * SCALE)
                for _ in range(5):
                    idx = rnd.sample(range(len(DOCS)), 3)
                    c.request("POST", "/rerank", body=json.dumps({"query": query, "texts": [DOCS[i] for i in idx],
                                                                  "raw_scores": True}))
                    r = c.getresponse()
                    js = json.loads(r.read())
                    if r.status != 200 or sorted(f32(e["score"]) for e in js) != sorted(ref[i] for i in idx):
                        errors.append((r.status, js))
                c.close()
            n_clients = 2 if self.vg else 8
            ts = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            check("http /rerank: %d concurrent keep-alive clients x 5 requests, every answer correct" % n_clients,
                  not errors, str(errors[:2]))
            s1, _, _ = scrape(port)
            got = [val(s1, "rerankd_http_requests_total", route=r, code=c)
                   for r, c in (("/rerank", "200"), ("/rerank", "400"), ("/rerank", "422"), ("/rerank", "413"),
                                ("/v1/rerank", "200"), ("/v2/rerank", "200"))]
            check("metrics: rerankd_http_requests_total counts them (/rerank 200: %d, 400: 3, 422: 5, "
                  "413: 3; /v1 200: 1, /v2 200: 1)" % (4 + 5 * n_clients),
                  got == [4 + 5 * n_clients, 3, 5, 3, 1, 1],
                  str(got))

            # SIGTERM while a client keeps sending: each answer is a correct 200 or a JSON
            # 503, or the connection closes; the server exits 0 (drain order in main.c).
            seen, bad = [], []

            def sender():
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60 * SCALE)
                for _ in range(200):
                    try:
                        c.request("POST", "/rerank", body=json.dumps({"query": query, "texts": DOCS, "raw_scores": True}))
                        r = c.getresponse()
                        js = json.loads(r.read())
                    except (OSError, http.client.HTTPException, ValueError):
                        break
                    seen.append(r.status)
                    if not ((r.status == 200 and all(f32(e["score"]) == ref[e["index"]] for e in js)) or
                            (r.status == 503 and js.get("error_type") == "Unhealthy")):
                        bad.append((r.status, js))
                c.close()
            t = threading.Thread(target=sender)
            t.start()
            time.sleep(0.5 * SCALE)
            rc = srv.stop(timeout=120 * SCALE)
            t.join()
            check("http /rerank: SIGTERM under load — answers correct (%d seen: %s), exit 0" %
                  (len(seen), sorted(set(seen))), rc == 0 and seen and not bad, "rc=%s %s" % (rc, bad[:2]))
        finally:
            if srv.proc.poll() is None:
                self.stop(srv, "http rerank server")

    # ---- loading -----------------------------------------------------------------------------
    def loading_raw(self, hp, hpg):
        import grpc
        d = tempfile.mkdtemp(prefix="rr-loading-")
        for f in os.listdir(self.args.tiny_model):
            if f != "config.json":
                os.symlink(os.path.abspath(os.path.join(self.args.tiny_model, f)), os.path.join(d, f))
        fifo = os.path.join(d, "config.json")
        os.mkfifo(fifo)
        cmd = (self.vg or []) + [self.args.rerankd, "--model", d, "--device", "cpu", "--host", "127.0.0.1",
                                 "--port", "0", "--http-port", "0", "--threads", "1"]
        log = tempfile.NamedTemporaryFile(prefix="rerankd-loading-", suffix=".log", delete=False)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        http_port = None
        deadline = time.time() + self.ready_timeout
        while time.time() < deadline and http_port is None:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("HTTP "):
                http_port = int(line.split()[1])
        if not check("loading: HTTP listener up before the model loads", http_port is not None):
            proc.kill()
            proc.wait()
            return
        # The gRPC port is only printed with READY; read it from the log line.
        grpc_port = None
        while time.time() < deadline and grpc_port is None:
            with open(log.name) as f:
                for ln in f:
                    if "listening on" in ln and "(port " in ln:
                        grpc_port = int(ln.split("(port ")[1].split(")")[0].split(",")[0])
            time.sleep(0.05)
        st, _, body = http_get(http_port, "/health")
        check("loading: /health 503 NOT_SERVING", st == 503 and body == "NOT_SERVING\n", "%d %r" % (st, body))
        st, _, body = http_get(http_port, "/readyz")
        check("loading: /readyz 503 NOT_SERVING", st == 503 and body == "NOT_SERVING\n", "%d %r" % (st, body))
        st, _, body = http_get(http_port, "/livez")
        check("loading: /livez 200 (a liveness probe must not restart a loading pod)", st == 200 and body == "alive\n",
              "%d %r" % (st, body))
        req = urllib.request.Request("http://127.0.0.1:%d/rerank" % http_port, method="POST",
                                     data=json.dumps({"query": "q", "texts": ["a"]}).encode())
        try:
            with urllib.request.urlopen(req, timeout=30 * SCALE) as r:
                st = r.status
        except urllib.error.HTTPError as e:
            st = e.code
        check("loading: POST /rerank → 503", st == 503, str(st))
        s, _, _ = scrape(http_port)
        check("loading: rerankd_ready 0", val(s, "rerankd_ready") == 0 and val(s, "rerankd_serving") == 0)
        ch = grpc.insecure_channel("127.0.0.1:%d" % grpc_port)
        try:
            h = hpg.HealthStub(ch).Check(hp.HealthCheckRequest(service=""), timeout=30 * SCALE).status
        except grpc.RpcError as e:
            h = e.code()
        check("loading: grpc.health Check → NOT_SERVING", h == hp.HealthCheckResponse.NOT_SERVING, str(h))
        code = self.code_of(lambda: self.rerank(ch, DOCS[:1]))
        check("loading: Rerank → UNAVAILABLE", code == grpc.StatusCode.UNAVAILABLE, str(code))
        ch.close()
        # Release the loader: open the FIFO for writing and close it at once (an empty read
        # that the config reader cannot use), so the load fails and the server exits.
        fd = os.open(fifo, os.O_WRONLY)
        os.close(fd)
        try:
            rc = proc.wait(timeout=120 * SCALE)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        with open(log.name, errors="replace") as f:
            text = f.read()
        check("loading: a failed load exits 1 naming config.json", rc == 1 and "config.json" in text,
              "rc=%s\n%s" % (rc, text[-2000:]))

    # ---- TLS ---------------------------------------------------------------------------------
    def tls(self, certs):
        import grpc
        ref = rrtest.cli_logits(self.args.cli, self.args.tiny_model, "how do cats purr", DOCS)
        live = tempfile.mkdtemp(prefix="rr-tls-live-")
        cert, key = os.path.join(live, "tls.crt"), os.path.join(live, "tls.key")
        for src, dst in ((certs.p("srv-ca1.pem"), cert), (certs.p("srv-ca1.key"), key)):
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        srv = self.server(["--tls-cert", cert, "--tls-key", key])
        port = srv.port
        try:
            def tls_channel(ca, client=None):
                kw = {}
                if client:
                    kw = {"private_key": certs.read(client + ".key"), "certificate_chain": certs.read(client + ".pem")}
                creds = grpc.ssl_channel_credentials(root_certificates=certs.read(ca), **kw)
                return grpc.secure_channel("localhost:%d" % port, creds)

            ch = tls_channel("ca1.pem")
            r = self.rerank(ch, DOCS)
            got = [None] * len(DOCS)
            for x in r.results:
                got[x.index] = x.logit
            check("tls: scores over TLS bit-identical to the CLI", got == ref, "%s vs %s" % (got, ref))
            ch.close()
            plain = grpc.insecure_channel("127.0.0.1:%d" % port)
            code = self.code_of(lambda: self.rerank(plain, DOCS[:1]))
            plain.close()
            check("tls: plaintext client refused (UNAVAILABLE)", code == grpc.StatusCode.UNAVAILABLE, str(code))
            other = tls_channel("ca2.pem")
            code = self.code_of(lambda: self.rerank(other, DOCS[:1]))
            other.close()
            check("tls: client trusting another CA refused (UNAVAILABLE)", code == grpc.StatusCode.UNAVAILABLE, str(code))
            ch = tls_channel("ca1.pem")
            check("tls: a good call after the refusals", len(self.rerank(ch, DOCS[:2]).results) == 2)
            # Rotation: a kubelet/cert-manager style replacement (write aside, rename over).
            for src, dst in ((certs.p("srv-ca2.pem"), cert), (certs.p("srv-ca2.key"), key)):
                with open(src, "rb") as f, open(dst + ".new", "wb") as g:
                    g.write(f.read())
                os.replace(dst + ".new", dst)
            check("tls: a connection opened before the rotation keeps working",
                  len(self.rerank(ch, DOCS[:1]).results) == 1)
            ch.close()
            new = tls_channel("ca2.pem")
            code = self.code_of(lambda: self.rerank(new, DOCS[:1]))
            new.close()
            check("tls: after rotation a new connection is served the new certificate", code == grpc.StatusCode.OK,
                  str(code))
            old = tls_channel("ca1.pem")
            code = self.code_of(lambda: self.rerank(old, DOCS[:1]))
            old.close()
            check("tls: after rotation the old CA no longer verifies", code == grpc.StatusCode.UNAVAILABLE, str(code))
            # A broken rotation (key not PEM) keeps the previous certificates.
            with open(key + ".new", "w") as g:
                g.write("not a key\n")
            os.replace(key + ".new", key)
            keep = tls_channel("ca2.pem")
            code = self.code_of(lambda: self.rerank(keep, DOCS[:1]))
            keep.close()
            check("tls: an unreadable rotation keeps the previous certificates", code == grpc.StatusCode.OK, str(code))
        finally:
            if srv.proc.poll() is None:
                self.stop(srv, "tls server")
        check("tls: the failed reload is logged", "TLS reload failed" in srv.log_text(), srv.log_text()[-1500:])

        srv = self.server(["--tls-cert", certs.p("srv-ca1.pem"), "--tls-key", certs.p("srv-ca1.key"),
                           "--tls-client-ca", certs.p("ca1.pem")])
        port = srv.port
        try:
            def mchannel(client):
                kw = {}
                if client:
                    kw = {"private_key": certs.read(client + ".key"), "certificate_chain": certs.read(client + ".pem")}
                return grpc.secure_channel("localhost:%d" % port,
                                           grpc.ssl_channel_credentials(root_certificates=certs.read("ca1.pem"), **kw))
            for client, want, what in ((None, grpc.StatusCode.UNAVAILABLE, "no client certificate refused"),
                                       ("cli-ca2", grpc.StatusCode.UNAVAILABLE, "client certificate from another CA refused"),
                                       ("cli-ca1", grpc.StatusCode.OK, "client certificate signed by the CA served")):
                ch = mchannel(client)
                code = self.code_of(lambda: self.rerank(ch, DOCS[:1]))
                ch.close()
                check("mtls: " + what, code == want, str(code))
        finally:
            if srv.proc.poll() is None:
                self.stop(srv, "mtls server")

    # ---- start-up errors ---------------------------------------------------------------------
    def startup_errors(self, certs):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        busy_port = busy.getsockname()[1]
        cases = [
            ("missing key file", ["--tls-cert", certs.p("srv-ca1.pem"), "--tls-key", certs.p("nope.key")],
             "nope.key"),
            ("key that is not PEM", ["--tls-cert", certs.p("srv-ca1.pem"), "--tls-key", certs.p("srv-ca1.ext")],
             "PRIVATE KEY"),
            ("certificate without --tls-key", ["--tls-cert", certs.p("srv-ca1.pem")], "--tls-key"),
            ("key not matching the certificate", ["--tls-cert", certs.p("srv-ca1.pem"), "--tls-key",
                                                  certs.p("srv-ca2.key")], "certificate and key are unusable"),
            ("HTTP port in use", ["--http-port", str(busy_port)], "cannot serve HTTP"),
        ]
        for what, extra, needle in cases:
            cmd = [self.args.rerankd, "--model", self.args.tiny_model, "--device", "cpu", "--host", "127.0.0.1",
                   "--port", "0"] + extra
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=120 * SCALE)
            check("start-up: %s → exit %d, message names it" % (what, p.returncode),
                  p.returncode != 0 and needle in p.stderr and "READY" not in p.stdout, p.stderr[-800:])
        busy.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--tiny-model", required=True)
    ap.add_argument("--valgrind", action="store_true")
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.tiny_model, "config.json")):
        print("test_operations: skipped: model %s missing (run scripts/make_models.py)" % args.tiny_model)
        return 77
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
        import prometheus_client  # noqa: F401
    except ImportError as e:
        print("test_operations: skipped: %s (create .venv with scripts/setup.sh)" % e)
        return 77
    if subprocess.run(["sh", "-c", "command -v openssl"], capture_output=True).returncode != 0:
        print("test_operations: skipped: no openssl CLI to make test certificates (scripts/setup.sh installs it)")
        return 77
    if args.valgrind:
        global SCALE
        SCALE = 10
        rrtest.pin_isa_for_valgrind()
    rrtest.gen_stubs(args.source_dir, args.gen_dir)
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
    import health_pb2 as hp
    import health_pb2_grpc as hpg
    s = Suite(args, pb, pbg)
    certs = Certs(tempfile.mkdtemp(prefix="rr-certs-"))
    for name, fn in (("http + metrics", s.http), ("http rerank", s.http_rerank),
                     ("loading", lambda: s.loading_raw(hp, hpg)),
                     ("tls", lambda: s.tls(certs)), ("start-up errors", lambda: s.startup_errors(certs))):
        t0 = time.time()
        fn()
        print("-- %s: %.0f s" % (name, time.time() - t0))
    return rrtest.summary("test_operations")


if __name__ == "__main__":
    sys.exit(main())
