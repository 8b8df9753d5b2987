"""test_edge.py — rerankd's edge as a hostile client meets it: the real server on loopback,
driven over gRPC (rerank.v1 and tei.v1), raw protobuf bytes, HTTP and raw sockets.

Every section is a defect a hostile-client review found (issue 9, section 2), with checks
that failed on the server before the request front was built and pass after it:
  top_n       top_n >= 2^31 or a negative varint crashed the server (signed compare);
              any top_n above the documents now means "all of them"
  nul         U+0000 inside a string silently cut the text ("a\\0b" scored as "a"); texts now
              keep their length and score as Hugging Face scores them (its normalizer drops
              U+0000: HF tokenizers encodes "cats\\0purr" as "catspurr"), echoed exactly
  utf8        invalid UTF-8 in Document.id (and other echoed strings) was accepted and
              echoed, breaking standard protobuf clients; now INVALID_ARGUMENT naming it
  tei_stream  TEI's RerankStream scored every text against the first message's query; now
              each message is its own pair (query, text, truncate), as TEI does
  tei_status  too many texts answered RESOURCE_EXHAUSTED (retried by retry policies) where
              TEI answers INVALID_ARGUMENT; metadata.compute_chars counted bytes and the query
              once, where TEI counts code points and the query once per text
  same        one bad input gets one class on rerank.v1, tei.v1 and HTTP (README "Errors")
  memory      a message --max-docs refuses was decoded whole first (16 x 4 MB of empty
              documents: ~1 GB peak); now counted on the wire and refused for its bytes
  http_idle   64 idle TCP connections starved every HTTP route, /health included
  cancel      a client that went away still had its request computed (HTTP), and the
              gRPC cancel checks could not fail (CANCELLED is raised by the client library
              itself); both now assert, on the server's own counters, that the request was
              dropped before compute
  deadline    HTTP requests had no deadline; x-request-timeout / --http-timeout now bound them
  cpus        --threads 0 took every online CPU, not the ones the process may use

With --valgrind the sections that need no timing or memory measurement run with the server
under memcheck (any error or definite/indirect leak fails). Exit: 0 passed, 1 failed, 77
skipped.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrtest  # noqa: E402

check = rrtest.check
SCALE = 1
DOCS = ["Cats purr by rapidly twitching the muscles of the larynx.",
        "Tides are caused by the gravitational pull of the moon.",
        "Sourdough bread needs a starter of wild yeast.",
        "Ünïcödé — naïve café, 東京, emoji 🐱."]
LONG = " ".join(["tide moon sea"] * 170)  # ~512 tokens: the engine's slowest pair


# ---- raw protobuf -------------------------------------------------------------------------

def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def fbytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def fvarint(num, v):
    return varint(num << 3) + varint(v)


def rerank_request(query, docs, top_n=None, ids=None):
    """RerankRequest bytes: query = 1, documents = 2 (Document: text = 1, id = 2), top_n = 3."""
    out = fbytes(1, query)
    for i, d in enumerate(docs):
        out += fbytes(2, fbytes(1, d) + (fbytes(2, ids[i]) if ids else b""))
    if top_n is not None:
        out += fvarint(3, top_n)
    return out


def f32(x):
    import struct
    return struct.unpack("f", struct.pack("f", x))[0]


class Suite:
    def __init__(self, args, pb, pbg, tei, teig):
        self.args, self.pb, self.pbg, self.tei, self.teig = args, pb, pbg, tei, teig
        self.vg = rrtest.valgrind_cmd() if args.valgrind else None

    def server(self, extra=(), valgrind=True):
        return rrtest.Server(self.args.rerankd, self.args.tiny_model, ["--http-port", "0"] + list(extra),
                             valgrind=self.vg if valgrind else None,
                             ready_timeout=300.0 if self.vg else 60.0)

    def stop(self, srv, what):
        rc = srv.stop(timeout=120 * SCALE)
        check("%s: exits 0 on SIGTERM%s" % (what, " (valgrind clean)" if self.vg else ""), rc == 0,
              "rc=%s\n%s" % (rc, srv.log_text()[-3000:]))

    def ref(self, query, docs):
        return rrtest.cli_logits(self.args.cli, self.args.tiny_model, query, docs)

    def channel(self, srv):
        import grpc
        opts = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        return grpc.insecure_channel(srv.addr, options=opts)

    def raw(self, ch, path):
        return ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)

    def code(self, fn):
        """(status code name, details) of a call; ("OK", result) when it succeeds."""
        import grpc
        try:
            return "OK", fn()
        except grpc.RpcError as e:
            return e.code().name, e.details() or ""

    def post(self, srv, path, body, headers=None, timeout=60):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=timeout * SCALE)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        c.request("POST", path, body=data, headers=dict({"Content-Type": "application/json"}, **(headers or {})))
        r = c.getresponse()
        text = r.read()
        c.close()
        try:
            js = json.loads(text)
        except ValueError:
            js = None
        return r.status, js

    def alive(self, srv, stub, what):
        """The 'server then serves the next request correctly' check after a bad input."""
        ref = self.ref("how do cats purr", DOCS)
        st, r = self.code(lambda: stub.Rerank(self.pb.RerankRequest(
            query="how do cats purr", documents=[self.pb.Document(text=d) for d in DOCS]), timeout=60 * SCALE))
        ok = st == "OK" and all(f32(x.logit) == ref[x.index] for x in r.results) and len(r.results) == len(DOCS)
        check("%s: the next request is served correctly" % what, ok, "%s %s" % (st, r))

    # ---- top_n ---------------------------------------------------------------------------
    def top_n(self, srv):
        ch = self.channel(srv)
        stub = self.pbg.RerankerStub(ch)
        rerank = self.raw(ch, "/rerank.v1.Reranker/Rerank")
        docs = [d.encode() for d in DOCS]
        ref = self.ref("q", DOCS)
        order = sorted(range(len(DOCS)), key=lambda i: (-ref[i], i))
        for top, want in ((2 ** 31, 4), (2 ** 31 - 1, 4), (2 ** 32 - 1, 4), (-1, 4), (-(2 ** 31), 4),
                          (5, 4), (4, 4), (3, 3), (1, 1), (0, 4)):
            st, r = self.code(lambda: rerank(rerank_request(b"q", docs, top), timeout=30 * SCALE))
            got = [x.index for x in self.pb.RerankResponse.FromString(r).results] if st == "OK" else r
            check("top_n %d (as varint) → the best %d, in order" % (top, want), got == order[:want],
                  "%s %s" % (st, got))
        # The stream's final ranking, through the open message's top_n (field 2).
        open_msg = fbytes(1, fbytes(1, b"q") + fvarint(2, 2 ** 31))
        batch = fbytes(2, b"".join(fbytes(1, fbytes(1, d)) for d in docs))
        stream = ch.stream_stream("/rerank.v1.Reranker/RerankStream", request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
        st, out = self.code(lambda: list(stream(iter([open_msg, batch]), timeout=30 * SCALE)))
        fin = self.pb.RerankStreamResponse.FromString(out[-1]).final if st == "OK" and out else None
        check("stream open.top_n 2^31 → the final ranking has every document",
              fin is not None and [x.index for x in fin.results] == order, "%s %s" % (st, fin))
        for top in (2 ** 31, 2 ** 62, 1e300):
            st, js = self.post(srv, "/v1/rerank", {"query": "q", "documents": DOCS, "top_n": top})
            check("http /v1/rerank top_n %g → every document" % top,
                  st == 200 and [x["index"] for x in js["results"]] == order, "%s %s" % (st, js))
        self.alive(srv, stub, "top_n")
        ch.close()

    # ---- U+0000 --------------------------------------------------------------------------
    def nul(self, srv):
        pb, tei = self.pb, self.tei
        ch = self.channel(srv)
        stub = self.pbg.RerankerStub(ch)
        docs = ["cats\x00purr", "Tides\x00 follow the moon.", "\x00", "plain text"]
        # HF's BertNormalizer drops U+0000 (clean_text): these are the texts it tokenizes.
        hf = ["catspurr", "Tides follow the moon.", "", "plain text"]
        ref = self.ref("how do cats purr", hf)
        ref_cli = self.ref("how do cats purr", docs)  # the CLI reads JSONL "\u0000" as a character
        check("CLI: a text with U+0000 scores as HF's normalized text", ref_cli == ref, "%s %s" % (ref_cli, ref))
        ids = ["id\x00%d" % i for i in range(len(docs))]
        st, r = self.code(lambda: stub.Rerank(pb.RerankRequest(
            query="how do\x00 cats purr", documents=[pb.Document(text=d, id=ids[i]) for i, d in enumerate(docs)],
            return_documents=True), timeout=30 * SCALE))
        ok = st == "OK" and len(r.results) == 4 and all(f32(x.logit) == ref[x.index] for x in r.results)
        check("rerank.v1: U+0000 in query and texts scores as HF scores the text (not a prefix)", ok,
              "%s %s vs %s" % (st, [(x.index, x.logit) for x in r.results] if st == "OK" else r, ref))
        check("rerank.v1: texts and ids with U+0000 echoed exactly",
              st == "OK" and all(x.document == docs[x.index] and x.id == ids[x.index] for x in r.results))
        tstub = self.teig.RerankStub(ch)
        st, r = self.code(lambda: tstub.Rerank(tei.RerankRequest(
            query="how do cats purr", texts=docs, truncate=True, raw_scores=True, return_text=True), timeout=30 * SCALE))
        check("tei.v1: U+0000 scored whole and echoed", st == "OK" and all(
            f32(x.score) == ref[x.index] and x.text == docs[x.index] for x in r.ranks), "%s %s" % (st, r))
        st, js = self.post(srv, "/rerank", {"query": "how do cats purr", "texts": docs, "raw_scores": True,
                                            "return_text": True})
        check("http: \"\\u0000\" in a text scored whole and echoed", st == 200 and all(
            f32(e["score"]) == ref[e["index"]] and e["text"] == docs[e["index"]] for e in js), "%s %s" % (st, js))
        st, js = self.post(srv, "/v2/rerank", {"query": "how do cats purr", "return_documents": True,
                                               "documents": [{"text": d} for d in docs]})
        check("http Cohere shape: \"\\u0000\" in document objects echoed", st == 200 and all(
            e["document"]["text"] == docs[e["index"]] for e in js["results"]), "%s %s" % (st, js))
        ch.close()

    # ---- UTF-8 in every string ---------------------------------------------------------------
    def utf8(self, srv):
        import health_pb2 as hp
        pb, tei = self.pb, self.tei
        ch = self.channel(srv)
        stub = self.pbg.RerankerStub(ch)
        rerank = self.raw(ch, "/rerank.v1.Reranker/Rerank")
        bad = b"\xff\xfe\xc3("
        cases = [
            ("Document.id", "/rerank.v1.Reranker/Rerank",
             rerank_request(b"q", [b"fine", b"also fine"], ids=[b"ok", bad]), "documents[1].id"),
            ("query", "/rerank.v1.Reranker/Rerank", rerank_request(bad, [b"fine"]), "query"),
            ("a text", "/rerank.v1.Reranker/Rerank", rerank_request(b"q", [b"fine", bad]), "documents[1]"),
            ("tei texts", "/tei.v1.Rerank/Rerank",
             tei.RerankRequest(query="q", texts=["fine", "BAD!"], truncate=True).SerializeToString().replace(
                 b"BAD!", bad), "texts[1]"),
            ("tei query", "/tei.v1.Rerank/Rerank",
             tei.RerankRequest(query="BAD!", texts=["fine"]).SerializeToString().replace(b"BAD!", bad), "query"),
            ("health service", "/grpc.health.v1.Health/Check",
             hp.HealthCheckRequest(service="BAD!").SerializeToString().replace(b"BAD!", bad), "UTF-8"),
        ]
        for what, path, blob, needle in cases:
            st, msg = self.code(lambda: self.raw(ch, path)(blob, timeout=30 * SCALE))
            check("invalid UTF-8 in %s → INVALID_ARGUMENT naming %s" % (what, needle),
                  st == "INVALID_ARGUMENT" and needle in msg, "%s %r" % (st, msg))
        # A stream batch whose document id is not UTF-8.
        stream = ch.stream_stream("/rerank.v1.Reranker/RerankStream", request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
        msgs = [fbytes(1, fbytes(1, b"q")), fbytes(2, fbytes(1, fbytes(1, b"t") + fbytes(2, bad)))]
        st, msg = self.code(lambda: list(stream(iter(msgs), timeout=30 * SCALE)))
        check("invalid UTF-8 in a stream document id → INVALID_ARGUMENT", st == "INVALID_ARGUMENT" and
              "documents[0].id" in msg, "%s %r" % (st, msg))
        # The reflection request's host is echoed in every answer.
        refl = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                request_serializer=lambda b: b, response_deserializer=lambda b: b)
        st, msg = self.code(lambda: list(refl(iter([fbytes(1, bad) + fbytes(7, b"")]), timeout=30 * SCALE)))
        check("invalid UTF-8 in a reflection host → INVALID_ARGUMENT", st == "INVALID_ARGUMENT", "%s %r" % (st, msg))
        st, r = self.code(lambda: rerank(rerank_request(b"q", [b"fine"], ids=["ünï".encode()]), timeout=30 * SCALE))
        check("a valid non-ASCII id is echoed", st == "OK" and
              pb.RerankResponse.FromString(r).results[0].id == "ünï", "%s" % st)
        self.alive(srv, stub, "invalid UTF-8")
        ch.close()

    # ---- TEI RerankStream: every message its own pair ---------------------------------------
    def tei_stream(self, srv):
        tei = self.tei
        ch = self.channel(srv)
        tstub = self.teig.RerankStub(ch)
        pairs = [("how do cats purr", DOCS[0]), ("what causes tides", DOCS[1]), ("how do cats purr", DOCS[2]),
                 ("bread", DOCS[2]), ("what causes tides", LONG)]
        want = [self.ref(q, [d])[0] for q, d in pairs]

        def msgs(extra_first=None, trunc_last=True):
            for i, (q, d) in enumerate(pairs):
                yield tei.RerankStreamRequest(query=q, text=d, truncate=trunc_last or i < len(pairs) - 1,
                                              raw_scores=(i == 0), return_text=(i == 0))
        st, r = self.code(lambda: tstub.RerankStream(msgs(), timeout=60 * SCALE))
        ok = st == "OK" and sorted(x.index for x in r.ranks) == list(range(len(pairs))) and all(
            f32(x.score) == want[x.index] for x in r.ranks)
        check("tei RerankStream: each message scored with its own query (raw scores = the CLI's logits)",
              ok, "%s %s vs %s" % (st, [(x.index, x.score) for x in r.ranks] if st == "OK" else r, want))
        check("tei RerankStream: raw_scores and return_text come from the first message",
              st == "OK" and all(x.text == pairs[x.index][1] for x in r.ranks))
        check("tei RerankStream: ranks sorted by score",
              st == "OK" and [x.score for x in r.ranks] == sorted((x.score for x in r.ranks), reverse=True))
        st, msg = self.code(lambda: tstub.RerankStream(msgs(trunc_last=False), timeout=60 * SCALE))
        check("tei RerankStream: a message's own truncate=false refuses its over-long pair, naming it",
              st == "INVALID_ARGUMENT" and "texts[4]" in msg, "%s %r" % (st, msg))
        st, msg = self.code(lambda: tstub.RerankStream(iter([tei.RerankStreamRequest(query="q", text="a"),
                                                             tei.RerankStreamRequest(query="", text="b")]),
                                                       timeout=30 * SCALE))
        check("tei RerankStream: an empty query in message 1 → INVALID_ARGUMENT naming it",
              st == "INVALID_ARGUMENT" and "message 1" in msg, "%s %r" % (st, msg))
        ch.close()

    # ---- TEI status codes and metadata ------------------------------------------------------
    def tei_status(self, srv, max_docs):
        tei = self.tei
        ch = self.channel(srv)
        tstub = self.teig.RerankStub(ch)
        st, msg = self.code(lambda: tstub.Rerank(tei.RerankRequest(query="q", texts=["a"] * (max_docs + 1)),
                                                 timeout=30 * SCALE))
        check("tei: too many texts → INVALID_ARGUMENT (TEI's Validation), not RESOURCE_EXHAUSTED",
              st == "INVALID_ARGUMENT" and "--max-docs" in msg, "%s %r" % (st, msg))
        st, msg = self.code(lambda: tstub.RerankStream(
            (tei.RerankStreamRequest(query="q", text="a") for _ in range(max_docs + 1)), timeout=30 * SCALE))
        check("tei stream: too many texts → INVALID_ARGUMENT", st == "INVALID_ARGUMENT", "%s %r" % (st, msg))
        st, msg = self.code(lambda: tstub.Rerank(tei.RerankRequest(query="q", texts=[]), timeout=30 * SCALE))
        check("tei: no texts → INVALID_ARGUMENT (TEI's Empty)", st == "INVALID_ARGUMENT", "%s %r" % (st, msg))
        q, texts = "héllo wörld", ["ü", "abc", "日本", ""]
        st, r = self.code(lambda: tstub.Rerank(tei.RerankRequest(query=q, texts=texts, truncate=True),
                                               timeout=30 * SCALE))
        chars = sum(len(q) + len(t) for t in texts)
        check("tei metadata.compute_chars: code points, the query once per text (%d)" % chars,
              st == "OK" and r.metadata.compute_chars == chars, "%s %s" % (st, r.metadata if st == "OK" else r))
        st, r = self.code(lambda: tstub.RerankStream(iter(tei.RerankStreamRequest(query=q, text=t, truncate=True)
                                                          for t in texts), timeout=30 * SCALE))
        check("tei stream metadata.compute_chars likewise", st == "OK" and r.metadata.compute_chars == chars,
              "%s" % st)
        ch.close()

    # ---- one input, one class, every protocol ------------------------------------------------
    def same(self, srv, max_docs):
        pb, tei = self.pb, self.tei
        ch = self.channel(srv)
        stub, tstub = self.pbg.RerankerStub(ch), self.teig.RerankStub(ch)
        many = ["a"] * (max_docs + 1)
        cases = [  # what, query, texts, truncate, gRPC code, HTTP TEI / Cohere status, message
            ("empty query", "", ["a"], True, "INVALID_ARGUMENT", 422, "query is empty"),
            ("no documents", "q", [], True, "INVALID_ARGUMENT", 400, "is empty"),
            ("too many documents", "q", many, True, "INVALID_ARGUMENT", 413, "over the limit of %d" % max_docs),
            ("an over-long pair, truncation off", "q", ["a", LONG + " " + LONG], False, "INVALID_ARGUMENT", 413,
             "[1]: the pair is"),
        ]
        for what, q, texts, trunc, code, http, needle in cases:
            got = []
            got.append(self.code(lambda: stub.Rerank(pb.RerankRequest(
                query=q, documents=[pb.Document(text=t) for t in texts],
                truncation=pb.Truncation(disabled=not trunc)), timeout=30 * SCALE)))
            got.append(self.code(lambda: tstub.Rerank(tei.RerankRequest(query=q, texts=texts, truncate=trunc),
                                                      timeout=30 * SCALE)))
            st, js = self.post(srv, "/rerank", {"query": q, "texts": texts, "truncate": trunc})
            got.append((st, js.get("error", "") if isinstance(js, dict) else js))
            if trunc:
                st, js = self.post(srv, "/v1/rerank", {"query": q, "documents": texts})
                got.append((st, js.get("error", "") if isinstance(js, dict) else js))
            ok = got[0][0] == code and got[1][0] == code and all(g[0] == http for g in got[2:]) and \
                all(needle in g[1] for g in got)
            check("%s: %s on rerank.v1 and tei.v1, %d on HTTP, one message" % (what, code, http), ok, str(got))
        ch.close()

    # ---- memory before limits ----------------------------------------------------------------
    def memory(self):
        import grpc
        srv = self.server(valgrind=False)
        try:
            n = (4 * 1024 * 1024 - 64) // 2
            blob = fbytes(1, b"q") + b"\x12\x00" * n  # ~2.1 million empty documents, under 4 MiB
            bomb = fbytes(1, b"q") + fbytes(2, fbytes(1, b"t")) + b"\x78\x00" * n  # unknown field 15, 2M times
            ch = self.channel(srv)
            rerank = self.raw(ch, "/rerank.v1.Reranker/Rerank")
            rerank(rerank_request(b"q", [b"warm up"]), timeout=30)

            def burst(call, msg, n, needle):
                """n concurrent calls: each one's (code, whether its message has needle)."""
                out = []
                for f in [call.future(msg, timeout=120) for _ in range(n)]:
                    try:
                        f.result()
                        out.append("OK")
                    except grpc.RpcError as e:
                        out.append((e.code().name, needle in (e.details() or "")))
                return out
            hwm0, rss0 = srv.status_kib("VmHWM"), srv.status_kib("VmRSS")
            codes = burst(rerank, blob, 16, "--max-docs")
            hwm1 = srv.status_kib("VmHWM")
            check("16 concurrent 4 MB messages of empty documents: all INVALID_ARGUMENT naming --max-docs",
                  all(c == ("INVALID_ARGUMENT", True) for c in codes), str(codes[:3]))
            check("... peak RSS growth under 100 MB (%.1f MB)" % ((hwm1 - hwm0) / 1024.0),
                  hwm1 - hwm0 < 100 * 1024, "%d → %d KiB" % (hwm0, hwm1))
            codes = burst(rerank, bomb, 4, "to decode")
            time.sleep(0.5)  # the calls end (and the heap is trimmed) just after their status
            hwm2, rss2 = srv.status_kib("VmHWM"), srv.status_kib("VmRSS")
            check("4 concurrent messages of 2 million unknown fields: INVALID_ARGUMENT (decoding over its "
                  "budget)", all(c == ("INVALID_ARGUMENT", True) for c in codes), str(codes[:3]))
            check("... peak RSS growth under 100 MB (%.1f MB), %.1f MB (under 32) left after" %
                  ((hwm2 - hwm0) / 1024.0, (rss2 - rss0) / 1024.0), hwm2 - hwm0 < 100 * 1024 and
                  rss2 - rss0 < 32 * 1024, "%d → %d KiB peak, %d → %d KiB now" % (hwm0, hwm2, rss0, rss2))
            # HTTP: 4 MB bodies of empty strings, refused by the scan before jansson parses them.
            body = b'{"query":"q","texts":[' + b",".join([b'""'] * ((4 * 1024 * 1024 - 64) // 3)) + b"]}"
            out = []

            def post_big():
                out.append(self.post(srv, "/rerank", body, timeout=120))
            ts = [threading.Thread(target=post_big) for _ in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            hwm3 = srv.status_kib("VmHWM")
            check("http: 8 concurrent 4 MB bodies of empty texts → 413 before parsing, peak RSS growth "
                  "under 100 MB (%.1f MB)" % ((hwm3 - hwm0) / 1024.0),
                  [o[0] for o in out] == [413] * 8 and hwm3 - hwm0 < 100 * 1024,
                  "%s %d → %d KiB" % ([(o[0], o[1]) for o in out][:2], hwm0, hwm3))
            self.alive(srv, self.pbg.RerankerStub(ch), "memory")
            ch.close()
        finally:
            self.stop(srv, "memory server")

    # ---- idle and slow HTTP connections -------------------------------------------------------
    def http_idle(self):
        srv = self.server(valgrind=False)
        socks = []
        try:
            for _ in range(1000):
                s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)
                socks.append(s)
            check("1000 TCP connections to the HTTP port accepted", len(socks) == 1000)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                st, _, body = rrtest.http_get(srv.http_port, "/health", timeout=10)
                times.append((time.perf_counter() - t0) * 1000)
                if st != 200:
                    times.append(1e9)
            check("1000 idle TCP connections open: /health answers in < 100 ms (max %.1f ms of 5)" % max(times),
                  max(times) < 100, str(times))
            st, _, body = rrtest.http_get(srv.http_port, "/metrics", timeout=10)
            check("... and /metrics answers", st == 200 and "rerankd_ready 1" in body)
            st, js = self.post(srv, "/rerank", {"query": "q", "texts": DOCS})
            check("... and /rerank answers", st == 200 and len(js) == len(DOCS), str(st))
        finally:
            for s in socks:
                s.close()
            self.stop(srv, "idle-connections server")
        srv = self.server(["--http-max-connections-per-ip", "20", "--http-idle-timeout", "1"], valgrind=False)
        socks = []
        try:
            for _ in range(30):
                s = socket.socket()
                s.bind(("127.0.0.2", 0))
                s.settimeout(5)
                s.connect(("127.0.0.1", srv.http_port))
                socks.append(s)
            time.sleep(0.3)
            closed = 0
            for s in socks[20:]:
                try:
                    closed += s.recv(1) == b""
                except OSError:
                    closed += 1
            check("--http-max-connections-per-ip 20: connections 21-30 from one address are closed (%d)" % closed,
                  closed == 10)
            st, _, _ = rrtest.http_get(srv.http_port, "/health", timeout=10)
            check("... while /health from another address answers", st == 200)
            s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)
            t0 = time.time()
            try:
                gone = s.recv(1) == b""
            except OSError:
                gone = True
            dt = time.time() - t0
            s.close()
            check("--http-idle-timeout 1: a connection that sends nothing is closed (after %.1f s)" % dt,
                  gone and dt < 5, "%s %.1f" % (gone, dt))
        finally:
            for s in socks:
                s.close()
            self.stop(srv, "per-address limit server")

    # ---- clients that go away; deadlines -------------------------------------------------------
    def busy(self, srv, n=600):
        """Occupies the engine: a request of n ~512-token pairs on another thread."""
        import grpc
        ch = self.channel(srv)
        stub = self.pbg.RerankerStub(ch)
        fut = stub.Rerank.future(self.pb.RerankRequest(query="q", documents=[self.pb.Document(text=LONG)] * n),
                                 timeout=600)
        time.sleep(0.3)  # tokenized and in the engine

        def wait():
            try:
                fut.result()
                return "OK"
            except grpc.RpcError as e:
                return e.code().name
            finally:
                ch.close()
        return wait

    def cancel(self):
        # Admission off: this section cancels work queued behind the busy request, and on a
        # slow build (ASan: the busy request takes over a minute) admission would refuse that
        # work at once for its 60 s deadline, before the client could cancel it.
        srv = self.server(["--threads", "1", "--max-docs", "2000", "--admission-control", "off"],
                          valgrind=False)
        try:
            s0 = rrtest.scrape(srv.http_port)[0]
            pairs0 = rrtest.val(s0, "rerankd_pairs_total")
            # HTTP: a client sends a request and hangs up while the engine is busy.
            done = self.busy(srv)
            sock = socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)
            body = json.dumps({"query": "q", "texts": DOCS}).encode()
            sock.sendall(b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            time.sleep(0.2)
            sock.close()
            # gRPC: a call cancelled by its client while queued, and a client process that dies.
            ch = self.channel(srv)
            stub = self.pbg.RerankerStub(ch)
            fut = stub.Rerank.future(self.pb.RerankRequest(query="q", documents=[self.pb.Document(text=d)
                                                                                for d in DOCS]), timeout=60)
            time.sleep(0.2)
            fut.cancel()
            code = ("import sys,time,grpc; sys.path.insert(0,%r); from rerank.v1 import rerank_pb2 as pb, "
                    "rerank_pb2_grpc as g; s=g.RerankerStub(grpc.insecure_channel(%r)); "
                    "f=s.Rerank.future(pb.RerankRequest(query='q', documents=[pb.Document(text='x')]*3)); "
                    "time.sleep(0.3); import os; os._exit(0)") % (self.args.gen_dir, srv.addr)
            subprocess.run([sys.executable, "-c", code], timeout=60)
            busy_code = done()
            time.sleep(0.5)
            s1 = rrtest.scrape(srv.http_port)[0]
            cancelled = rrtest.val(s1, "rerankd_requests_total", outcome="cancelled") - \
                rrtest.val(s0, "rerankd_requests_total", outcome="cancelled")
            pairs = rrtest.val(s1, "rerankd_pairs_total") - pairs0
            check("an HTTP client that hangs up, a cancelled gRPC call and a dead client process: 3 requests "
                  "dropped before compute (cancelled %d; pairs scored %d = the busy request's 600)" %
                  (cancelled, pairs), busy_code == "OK" and cancelled == 3 and pairs == 600,
                  "busy %s" % busy_code)
            # A stream cancelled with a batch pending: the server ends it CANCELLED, the batch unscored.
            done = self.busy(srv)
            stop = threading.Event()

            def gen():
                yield self.pb.RerankStreamRequest(open=self.pb.StreamOpen(query="q"))
                yield self.pb.RerankStreamRequest(batch=self.pb.StreamBatch(
                    documents=[self.pb.Document(text=d) for d in DOCS]))
                stop.wait(30)
            call = stub.RerankStream(gen(), timeout=60)
            time.sleep(0.3)
            call.cancel()
            stop.set()
            busy_code = done()
            time.sleep(0.5)
            s2 = rrtest.scrape(srv.http_port)[0]
            m = "/rerank.v1.Reranker/RerankStream"
            check("a stream cancelled by its client: the server ends it CANCELLED and scores nothing of it",
                  busy_code == "OK" and rrtest.val(s2, "rerankd_grpc_requests_total", method=m, code="CANCELLED") ==
                  rrtest.val(s1, "rerankd_grpc_requests_total", method=m, code="CANCELLED") + 1 and
                  rrtest.val(s2, "rerankd_pairs_total") - rrtest.val(s1, "rerankd_pairs_total") == 600,
                  "busy %s" % busy_code)
            ch.close()
        finally:
            self.stop(srv, "cancel server")

    def cpus(self):
        """--threads 0 (the default) follows the CPUs the process may use, not the machine's:
        under `taskset -c <one CPU>` the engine runs one thread (rr_cpu_count reads the
        affinity mask and the cgroup quota; tests/util covers the cgroup files). The server
        runs with --device auto, as the images do: a CPU-only build must pick the CPU without a
        word about CUDA (a CUDA build without a device may say why it fell back)."""
        import shutil
        if not shutil.which("taskset"):
            print("skip cpus: no taskset")
            return
        cpu = sorted(os.sched_getaffinity(0))[0]
        srv = rrtest.Server(self.args.rerankd, self.args.tiny_model, ["--http-port", "0", "--threads", "0",
                                                                        "--device", "auto"],
                            valgrind=["taskset", "-c", str(cpu)])
        try:
            st, _, body = rrtest.http_get(srv.http_port, "/info")
            device = json.loads(body).get("device", "") if st == 200 else body
            check("--threads 0 under taskset -c %d: the engine runs 1 thread (%s)" % (cpu, device),
                  st == 200 and device.startswith("cpu (1 thread"), device)
            log = srv.log_text()
            check("--device auto in a CPU-only build logs no CUDA warning",
                  "this build has no CUDA engine" not in log, log[-300:])
        finally:
            self.stop(srv, "taskset server")

    def deadline(self):
        srv = self.server(["--threads", "1"], valgrind=False)
        try:
            done = self.busy(srv)
            st, js = self.post(srv, "/rerank", {"query": "q", "texts": DOCS}, headers={"x-request-timeout": "0.05"})
            check("http x-request-timeout 0.05 while the engine is busy → 503 Timeout",
                  st == 503 and js.get("error_type") == "Timeout", "%s %s" % (st, js))
            st, js = self.post(srv, "/rerank", {"query": "q", "texts": DOCS}, headers={"x-request-timeout": "soon"})
            check("http x-request-timeout that is not a number → 422", st == 422, "%s %s" % (st, js))
            done()
        finally:
            self.stop(srv, "deadline server")
        srv = self.server(["--threads", "1", "--http-timeout", "0.05"], valgrind=False)
        try:
            done = self.busy(srv)
            st, js = self.post(srv, "/rerank", {"query": "q", "texts": DOCS})
            check("--http-timeout 0.05 while the engine is busy → 503 Timeout",
                  st == 503 and js.get("error_type") == "Timeout", "%s %s" % (st, js))
            done()
            st, js = self.post(srv, "/rerank", {"query": "q", "texts": DOCS})
            check("... and 200 once it is idle", st == 200, "%s %s" % (st, js))
        finally:
            self.stop(srv, "--http-timeout server")


def run_section(name, fn):
    """Runs one section; an exception (a server that died, a socket that timed out) is a
    failed check, not the end of the suite."""
    import traceback
    t0 = time.time()
    try:
        fn()
    except Exception:  # noqa: BLE001
        check("%s: ran to the end" % name, False, traceback.format_exc()[-1500:])
    print("-- %s: %.0f s" % (name, time.time() - t0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--tiny-model", required=True)
    ap.add_argument("--valgrind", action="store_true")
    ap.add_argument("--sanitized", action="store_true",
                    help="the server is an ASan build: its RSS is ASan's (quarantine, shadow), "
                         "so the memory section is skipped")
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.tiny_model, "config.json")):
        print("test_edge: skipped: model %s missing (run scripts/make_models.py)" % args.tiny_model)
        return 77
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
        import prometheus_client  # noqa: F401
    except ImportError as e:
        print("test_edge: skipped: %s (create .venv with scripts/setup.sh)" % e)
        return 77
    if args.valgrind:
        global SCALE
        SCALE = 10
        rrtest.pin_isa_for_valgrind()
    rrtest.gen_stubs(args.source_dir, args.gen_dir)
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
    from tei.v1 import tei_pb2 as tei, tei_pb2_grpc as teig
    s = Suite(args, pb, pbg, tei, teig)
    max_docs = 8
    srv = s.server(["--max-docs", str(max_docs)])
    try:
        for name, fn in (("top_n", lambda: s.top_n(srv)), ("U+0000", lambda: s.nul(srv)),
                         ("UTF-8", lambda: s.utf8(srv)), ("tei stream", lambda: s.tei_stream(srv)),
                         ("tei status", lambda: s.tei_status(srv, max_docs)),
                         ("same answer", lambda: s.same(srv, max_docs))):
            run_section(name, fn)
    finally:
        s.stop(srv, "hostile-input server")
    if not args.valgrind:  # timing and memory: measured without memcheck
        sections = [("http idle", s.http_idle), ("cancel", s.cancel), ("deadline", s.deadline),
                    ("cpus", s.cpus)]
        if args.sanitized:
            print("skip memory: an ASan server's resident memory is ASan's quarantine and shadow")
        else:
            sections.insert(0, ("memory", s.memory))
        for name, fn in sections:
            run_section(name, fn)
    return rrtest.summary("test_edge")


if __name__ == "__main__":
    sys.exit(main())
