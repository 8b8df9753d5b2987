"""test_server.py — integration tests of rerankd: the real server on loopback, talked to by a
real client (grpcio + stubs generated from our protos by grpcio-tools at test time).

Covers the "Must show" list of issue 3: unary and streaming scores identical to `rerank score`
(the CLI on rr_score_query) for the same inputs; top_n, return_documents, ids, both scores;
the TEI-shaped client; health Check/Watch; reflection v1 + v1alpha and a client built only
from reflection; a bounded soak (streams + unary clients, start/end RSS); bad input (malformed
bytes, 10 MB message, 100,000 documents, invalid UTF-8, cancel mid-stream, 1 ms deadline,
client disconnect, unknown method, limits) each followed by a correct request; SIGTERM drain.
The edge as a hostile client meets it (overflowing top_n, U+0000, memory before limits,
server-side cancellation, ...) is test_edge.py.

Exit: 0 all passed, 1 a check failed, 77 skipped (no model). --valgrind runs the server under
memcheck through a shorter suite (tiny model only, short soak) and fails on any error/leak.
"""
import argparse
import asyncio
import math
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrtest  # noqa: E402



check = rrtest.check


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def f32(x):
    import struct
    return struct.unpack("f", struct.pack("f", x))[0]


QUERIES = ["how do cats purr", "what causes tides in the ocean", "best way to learn the C language"]
DOCS = [
    "Cats purr by rapidly twitching the muscles of the larynx while breathing.",
    "Tides are caused by the gravitational pull of the moon and the sun on the oceans.",
    "The C Programming Language by Kernighan and Ritchie is a classic introduction.",
    "Domestic cats also purr when they are stressed or injured, not only when content.",
    "Sourdough bread needs a starter of wild yeast and lactobacilli.",
    "Spring tides happen when the sun and moon align; neap tides when they are at right angles.",
    "",
    "Ünïcödé — naïve café, 東京, emoji 🐱 and Ελληνικά.",
    "Practice by writing small programs, reading good code and using a debugger and valgrind.",
    "The moon orbits the earth roughly every 27.3 days.",
    " ".join(["A very long passage about the sea and the tides and the moon."] * 60),
]
LONG_DOC = len(DOCS) - 1
# Over the model's 512 tokens; only used where the request must fail before any compute.
HUGE = " ".join(["tide"] * 1000)
# Timeouts and request sizes are multiplied / divided under valgrind (about 50x slower).
SCALE = 1


def close(a, b, tol):
    return abs(a - b) <= tol * max(1.0, abs(b))


class Suite:
    def __init__(self, args, pb, pbg, tei, teig):
        self.args, self.pb, self.pbg, self.tei, self.teig = args, pb, pbg, tei, teig
        self.tol = args.tol
        # Where the server's batch composition differs from the reference's (concurrent load,
        # the soak) a pair's logit moves in the last bits: the CPU engine's GEMMs are not
        # bit-invariant to the number of rows. Those comparisons use this tolerance.
        self.tol_mixed = args.tol_mixed
        self.cache = {}

    # ---- reference ---------------------------------------------------------------------
    def ref(self, model, query, docs, **kw):
        """CLI logits for exactly these documents (the engine packs them as the server does
        for a lone request, so the values are bit-identical; cached)."""
        key = (model, query, tuple(docs), tuple(sorted(kw.items())))
        if key not in self.cache:
            self.cache[key] = rrtest.cli_logits(self.args.cli, model, query, docs, **kw)
        return self.cache[key]

    def rerank(self, stub, query, docs, ids=None, **kw):
        pb = self.pb
        documents = [pb.Document(text=d, id=(ids[i] if ids else "")) for i, d in enumerate(docs)]
        return stub.Rerank(pb.RerankRequest(query=query, documents=documents, **kw), timeout=60 * SCALE)

    def correct_request(self, name, stub, model, expect):
        """The 'server then serves the next request correctly' check after a bad input."""
        q = QUERIES[0]
        ref = self.ref(model, q, DOCS[:5])
        try:
            r = self.rerank(stub, q, DOCS[:5])
            got = {x.index: x.logit for x in r.results}
            ok = len(got) == 5 and all(close(got[i], ref[i], self.tol) for i in range(5))
        except Exception as e:  # noqa: BLE001
            ok, got = False, repr(e)
        check("%s: next request correct" % name, ok, str(got))

    # ---- scores against the CLI -----------------------------------------------------
    def scores(self, addr, model, expect):
        import grpc
        pb = self.pb
        ch = grpc.insecure_channel(addr)
        stub = self.pbg.RerankerStub(ch)
        for q in QUERIES:
            ids = ["doc-%d" % i for i in range(len(DOCS))]
            r = self.rerank(stub, q, DOCS, ids=ids, return_documents=True)
            got = [x.index for x in r.results]
            check("unary[%s]: every document once" % q[:12], sorted(got) == list(range(len(DOCS))), str(got))
            bad = [(x.index, x.logit, expect[q][x.index]) for x in r.results
                   if not close(x.logit, expect[q][x.index], self.tol)]
            check("unary[%s]: logits identical to rerank score" % q[:12], not bad, str(bad[:3]))
            logits = [x.logit for x in r.results]
            check("unary[%s]: sorted by logit" % q[:12], logits == sorted(logits, reverse=True))
            check("unary[%s]: score = sigmoid(logit)" % q[:12],
                  all(abs(x.score - sigmoid(x.logit)) < 1e-6 for x in r.results))
            check("unary[%s]: ids and documents echoed" % q[:12],
                  all(x.id == ids[x.index] and x.document == DOCS[x.index] for x in r.results))
            check("unary[%s]: stats" % q[:12], r.stats.total_tokens > 0 and r.stats.query_tokens > 0 and
                  r.stats.inference_ns > 0 and r.stats.total_ns >= r.stats.inference_ns)
        q = QUERIES[1]
        r = self.rerank(stub, q, DOCS, top_n=3)
        order = sorted(range(len(DOCS)), key=lambda i: (-f32(expect[q][i]), i))[:3]
        check("top_n=3: the 3 best, in order", [x.index for x in r.results] == order,
              "%s vs %s" % ([x.index for x in r.results], order))
        check("return_documents off: no text", all(x.document == "" for x in r.results))
        # Truncation: a shorter max length matches the CLI with --max-length; off → error.
        ref128 = self.ref(model, q, DOCS, max_length=128)
        r = self.rerank(stub, q, DOCS, truncation=pb.Truncation(max_length=128))
        bad = [x.index for x in r.results if not close(x.logit, ref128[x.index], self.tol)]
        check("truncation.max_length=128 identical to rerank score --max-length 128", not bad, str(bad))
        try:
            self.rerank(stub, q, DOCS[:3] + [HUGE], truncation=pb.Truncation(disabled=True))
            check("truncation disabled: over-long → INVALID_ARGUMENT", False, "no error")
        except grpc.RpcError as e:
            check("truncation disabled: over-long → INVALID_ARGUMENT naming the index",
                  e.code() == grpc.StatusCode.INVALID_ARGUMENT and "documents[3]" in e.details(),
                  "%s %s" % (e.code(), e.details()))
        r = self.rerank(stub, q, [DOCS[LONG_DOC]], truncation=pb.Truncation(direction=pb.TRUNCATION_DIRECTION_LEFT))
        check("truncation direction LEFT accepted", len(r.results) == 1)

        # Streaming: batches of 4, 0 and the rest; per-batch scores, then the final top-n.
        def stream_reqs(query, batches, top_n):
            yield pb.RerankStreamRequest(open=pb.StreamOpen(query=query, top_n=top_n, return_documents=True))
            for b in batches:
                yield pb.RerankStreamRequest(batch=pb.StreamBatch(
                    documents=[pb.Document(text=DOCS[i], id="s%d" % i) for i in b]))
        for q in QUERIES[:2]:
            batches = [list(range(0, 4)), [], list(range(4, len(DOCS)))]
            out = list(stub.RerankStream(stream_reqs(q, batches, 5), timeout=60 * SCALE))
            kinds = [m.WhichOneof("kind") for m in out]
            check("stream[%s]: 3 batch answers then final" % q[:12], kinds == ["batch"] * 3 + ["final"], str(kinds))
            seen = [x for m in out if m.WhichOneof("kind") == "batch" for x in m.batch.results]
            bad = []
            for m, b in zip(out[:3], batches):
                ref = self.ref(model, q, [DOCS[i] for i in b]) if b else []
                bad += [(x.index, x.logit - ref[j]) for j, x in enumerate(m.batch.results)
                        if not close(x.logit, ref[j], self.tol)]
            check("stream[%s]: batch logits identical to rerank score on the same batch" % q[:12],
                  not bad and len(seen) == len(DOCS), str(bad))
            check("stream[%s]: batch results keep order and global index" % q[:12],
                  [x.index for x in seen] == list(range(len(DOCS))) and all(x.id == "s%d" % x.index for x in seen))
            fin = out[-1].final
            order = sorted(seen, key=lambda x: (-x.logit, x.index))[:5]
            order = [x.index for x in order]
            check("stream[%s]: final top 5 over all batches" % q[:12],
                  [x.index for x in fin.results] == order and fin.documents_seen == len(DOCS) and fin.batches_seen == 3,
                  "%s vs %s" % ([x.index for x in fin.results], order))
            check("stream[%s]: final carries documents and ids" % q[:12],
                  all(x.document == DOCS[x.index] and x.id == "s%d" % x.index for x in fin.results))
        # Two queries on one stream: a new open ends the first with its final ranking.
        def two():
            yield from stream_reqs(QUERIES[0], [[0, 1, 2]], 0)
            yield from stream_reqs(QUERIES[2], [[2, 8]], 0)
        out = list(stub.RerankStream(two(), timeout=60 * SCALE))
        kinds = [m.WhichOneof("kind") for m in out]
        ok = kinds == ["batch", "final", "batch", "final"]
        if ok:
            ref = self.ref(model, QUERIES[2], [DOCS[2], DOCS[8]])
            fin = out[3].final.results
            ok = sorted(x.index for x in fin) == [0, 1] and fin[0].logit >= fin[1].logit and \
                all(close(x.logit, ref[x.index], self.tol) for x in fin) and out[1].final.documents_seen == 3
        check("stream: a new open restarts the query", ok, str(kinds))

        # TEI-shaped client: same ranking, sigmoid scores, raw_scores = logits, texts.
        tstub = self.teig.RerankStub(ch)
        tei = self.tei
        for q in QUERIES:
            r = tstub.Rerank(tei.RerankRequest(query=q, texts=DOCS, truncate=True, return_text=True), timeout=60 * SCALE)
            order = sorted(range(len(DOCS)), key=lambda i: (-f32(expect[q][i]), i))
            check("tei[%s]: same ranking" % q[:12], [x.index for x in r.ranks] == order,
                  "%s vs %s" % ([x.index for x in r.ranks], order))
            check("tei[%s]: score = sigmoid(logit), text present" % q[:12],
                  all(abs(x.score - sigmoid(expect[q][x.index])) < 1e-6 and x.HasField("text") and
                      x.text == DOCS[x.index] for x in r.ranks))
            raw = tstub.Rerank(tei.RerankRequest(query=q, texts=DOCS, truncate=True, raw_scores=True), timeout=60 * SCALE)
            check("tei[%s]: raw_scores = logits, no text" % q[:12],
                  all(close(x.score, expect[q][x.index], self.tol) and not x.HasField("text") for x in raw.ranks))
            check("tei[%s]: metadata" % q[:12], r.metadata.compute_tokens > 0 and r.metadata.total_time_ns > 0)
        q = QUERIES[1]
        reqs = (tei.RerankStreamRequest(query=q, text=d, truncate=True, return_text=(i == 0)) for i, d in enumerate(DOCS))
        r = tstub.RerankStream(reqs, timeout=60 * SCALE)
        order = sorted(range(len(DOCS)), key=lambda i: (-f32(expect[q][i]), i))
        check("tei stream: same ranking after half-close", [x.index for x in r.ranks] == order)
        check("tei stream: first message's return_text honoured", all(x.text == DOCS[x.index] for x in r.ranks))
        try:
            tstub.Rerank(tei.RerankRequest(query=q, texts=[DOCS[0], HUGE], truncate=False), timeout=60 * SCALE)
            check("tei truncate=false: over-long → INVALID_ARGUMENT", False)
        except grpc.RpcError as e:
            check("tei truncate=false: over-long → INVALID_ARGUMENT", e.code() == grpc.StatusCode.INVALID_ARGUMENT,
                  str(e.code()))
        info = self.teig.InfoStub(ch).Info(tei.InfoRequest(), timeout=10 * SCALE)
        check("tei Info: reranker, limits", info.model_type == tei.MODEL_TYPE_RERANKER and info.max_input_length > 0 and
              info.max_batch_tokens > 0)
        info = stub.Info(pb.InfoRequest(), timeout=10 * SCALE)
        check("Info: architecture, max length, device, limits",
              info.architecture.endswith("ForSequenceClassification") and info.max_length > 0 and
              info.device.startswith("cpu") and info.max_documents == 1000 and info.max_batch_tokens == 16384)
        ch.close()

    # ---- health and reflection --------------------------------------------------------
    def health(self, addr):
        import grpc
        import health_pb2 as hp
        import health_pb2_grpc as hg
        ch = grpc.insecure_channel(addr)
        h = hg.HealthStub(ch)
        for svc in ["", "rerank.v1.Reranker", "tei.v1.Rerank", "tei.v1.Info"]:
            r = h.Check(hp.HealthCheckRequest(service=svc), timeout=10 * SCALE)
            check("health Check(%r) SERVING" % svc, r.status == hp.HealthCheckResponse.SERVING)
        try:
            h.Check(hp.HealthCheckRequest(service="nope"), timeout=10 * SCALE)
            check("health Check(unknown) NOT_FOUND", False)
        except grpc.RpcError as e:
            check("health Check(unknown) NOT_FOUND", e.code() == grpc.StatusCode.NOT_FOUND)
        w = h.Watch(hp.HealthCheckRequest(service="rerank.v1.Reranker"), timeout=2 * SCALE)
        first = next(w)
        check("health Watch: current status at once", first.status == hp.HealthCheckResponse.SERVING)
        w.cancel()
        w = h.Watch(hp.HealthCheckRequest(service="nope"), timeout=1 * SCALE)
        first = next(w)
        check("health Watch(unknown): SERVICE_UNKNOWN", first.status == hp.HealthCheckResponse.SERVICE_UNKNOWN)
        try:
            next(w)
            check("health Watch(unknown): stays open", False)
        except grpc.RpcError as e:
            check("health Watch(unknown): stays open", e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, str(e.code()))
        ch.close()

    def reflection(self, addr, expect):
        import grpc
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        ch = grpc.insecure_channel(addr)
        for ver in ("v1", "v1alpha"):
            rp = __import__("reflection_%s_pb2" % ver)
            rg = __import__("reflection_%s_pb2_grpc" % ver)
            stub = rg.ServerReflectionStub(ch)

            def ask(**kw):
                return list(stub.ServerReflectionInfo(iter([rp.ServerReflectionRequest(host="h", **kw)]), timeout=10 * SCALE))[0]
            r = ask(list_services="")
            names = sorted(s.name for s in r.list_services_response.service)
            check("reflection %s: list services" % ver,
                  {"rerank.v1.Reranker", "tei.v1.Rerank", "tei.v1.Info", "grpc.health.v1.Health",
                   "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= set(names),
                  str(names))
            check("reflection %s: echoes host and request" % ver,
                  r.valid_host == "h" and r.original_request.HasField("list_services"))
            r = ask(file_containing_symbol="rerank.v1.Reranker.Rerank")
            files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in r.file_descriptor_response.file_descriptor_proto]
            check("reflection %s: method symbol → rerank.proto" % ver,
                  files and files[0].name == "rerank/v1/rerank.proto", str([f.name for f in files]))
            r = ask(file_containing_symbol="tei.v1.Rank")
            files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in r.file_descriptor_response.file_descriptor_proto]
            check("reflection %s: message symbol → tei.proto" % ver, files and files[0].name == "tei/v1/tei.proto")
            r = ask(file_by_filename="grpc/health/v1/health.proto")
            check("reflection %s: file by name" % ver, len(r.file_descriptor_response.file_descriptor_proto) == 1)
            r = ask(file_containing_symbol="no.such.Symbol")
            check("reflection %s: unknown symbol → error NOT_FOUND, stream continues" % ver,
                  r.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0])
        # A client built only from reflection: fetch the file, build a pool, call Rerank.
        rp = __import__("reflection_v1_pb2")
        rg = __import__("reflection_v1_pb2_grpc")
        r = list(rg.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([rp.ServerReflectionRequest(file_containing_symbol="rerank.v1.Reranker")]), timeout=10 * SCALE))[0]
        pool = descriptor_pool.DescriptorPool()
        protos = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in r.file_descriptor_response.file_descriptor_proto]
        for fp in reversed(protos):
            pool.Add(fp)
        svc = pool.FindServiceByName("rerank.v1.Reranker")
        meth = svc.methods_by_name["Rerank"]
        Req = message_factory.GetMessageClass(meth.input_type)
        Resp = message_factory.GetMessageClass(meth.output_type)
        Doc = message_factory.GetMessageClass(pool.FindMessageTypeByName("rerank.v1.Document"))
        call = ch.unary_unary("/%s/%s" % (svc.full_name, meth.name), request_serializer=Req.SerializeToString,
                              response_deserializer=Resp.FromString)
        q = QUERIES[0]
        ref = self.ref(self.args.tiny_model, q, DOCS[:5])
        resp = call(Req(query=q, documents=[Doc(text=d) for d in DOCS[:5]]), timeout=30 * SCALE)
        ok = len(resp.results) == 5 and all(close(x.logit, ref[x.index], self.tol) for x in resp.results)
        check("reflection-only client calls Rerank, correct scores", ok)
        ch.close()

    # ---- bad input ----------------------------------------------------------------------
    def bad_input(self, addr, model, expect):
        import grpc
        pb = self.pb
        opts = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        ch = grpc.insecure_channel(addr, options=opts)
        stub = self.pbg.RerankerStub(ch)
        raw = ch.unary_unary("/rerank.v1.Reranker/Rerank", request_serializer=lambda b: b,
                             response_deserializer=lambda b: b)

        def expect_code(name, fn, code, needle=None):
            try:
                fn()
                check(name, False, "no error")
            except grpc.RpcError as e:
                ok = e.code() == code and (needle is None or needle in (e.details() or ""))
                check(name, ok, "%s %r" % (e.code(), e.details()))
            self.correct_request(name, stub, model, expect)

        expect_code("malformed protobuf → INVALID_ARGUMENT", lambda: raw(b"\xff\xff\xff\xff", timeout=10 * SCALE),
                    grpc.StatusCode.INVALID_ARGUMENT)
        expect_code("10 MB message → RESOURCE_EXHAUSTED",
                    lambda: self.rerank(stub, "q", ["x" * (10 << 20)]), grpc.StatusCode.RESOURCE_EXHAUSTED)
        # A limit the request can never meet is INVALID_ARGUMENT, as TEI answers it (retry
        # policies retry RESOURCE_EXHAUSTED).
        expect_code("100,000 documents → INVALID_ARGUMENT naming the limit",
                    lambda: self.rerank(stub, "q", ["d"] * 100000), grpc.StatusCode.INVALID_ARGUMENT, "--max-docs")
        # Invalid UTF-8 cannot be put in a Python str field: patch the serialized bytes.
        good = pb.RerankRequest(query="q", documents=[pb.Document(text="fine"), pb.Document(text="BAD!")])
        blob = good.SerializeToString().replace(b"BAD!", b"\xff\xfe\xc3(")
        expect_code("invalid UTF-8 → INVALID_ARGUMENT naming documents[1]", lambda: raw(blob, timeout=10 * SCALE),
                    grpc.StatusCode.INVALID_ARGUMENT, "documents[1]")
        expect_code("empty query → INVALID_ARGUMENT", lambda: self.rerank(stub, "", ["a"]),
                    grpc.StatusCode.INVALID_ARGUMENT, "query")
        expect_code("no documents → INVALID_ARGUMENT", lambda: self.rerank(stub, "q", []),
                    grpc.StatusCode.INVALID_ARGUMENT, "documents")
        expect_code("max_length over the model's → INVALID_ARGUMENT",
                    lambda: self.rerank(stub, "q", ["a"], truncation=pb.Truncation(max_length=100000)),
                    grpc.StatusCode.INVALID_ARGUMENT, "max_length")
        big = [DOCS[LONG_DOC]] * 200
        expect_code("1 ms deadline → DEADLINE_EXCEEDED",
                    lambda: stub.Rerank(pb.RerankRequest(query="q", documents=[pb.Document(text=d) for d in big]),
                                        timeout=0.001), grpc.StatusCode.DEADLINE_EXCEEDED)
        expect_code("unknown method → UNIMPLEMENTED",
                    lambda: ch.unary_unary("/rerank.v1.Reranker/Nope")(b"", timeout=10 * SCALE), grpc.StatusCode.UNIMPLEMENTED)
        expect_code("unknown service → UNIMPLEMENTED",
                    lambda: ch.unary_unary("/tei.v1.Embed/Embed")(b"", timeout=10 * SCALE), grpc.StatusCode.UNIMPLEMENTED)

        # Stream errors: batch before open; malformed message mid-stream.
        def only_batch():
            yield pb.RerankStreamRequest(batch=pb.StreamBatch(documents=[pb.Document(text="a")]))
        expect_code("stream: batch before open → INVALID_ARGUMENT", lambda: list(stub.RerankStream(only_batch(), timeout=10 * SCALE)),
                    grpc.StatusCode.INVALID_ARGUMENT, "open")
        raw_stream = ch.stream_stream("/rerank.v1.Reranker/RerankStream", request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)
        opener = pb.RerankStreamRequest(open=pb.StreamOpen(query="q")).SerializeToString()
        expect_code("stream: malformed second message → INVALID_ARGUMENT",
                    lambda: list(raw_stream(iter([opener, b"\xff\xff\xff"]), timeout=10 * SCALE)),
                    grpc.StatusCode.INVALID_ARGUMENT)

        # Cancel mid-stream: read the first answer, then cancel with a batch in flight; the
        # server must keep serving. (Whether it dropped the cancelled work before compute is
        # asserted on its own counters in test_edge.py: here the client library raises
        # CANCELLED by itself, so the call's code says nothing about the server.)
        def slow_gen(stop):
            yield pb.RerankStreamRequest(open=pb.StreamOpen(query="q"))
            for _ in range(50):
                if stop.is_set():
                    return
                yield pb.RerankStreamRequest(batch=pb.StreamBatch(documents=[pb.Document(text=d) for d in big[:50 // SCALE]]))
        stop = threading.Event()
        call = stub.RerankStream(slow_gen(stop), timeout=60 * SCALE)
        first = next(call)
        call.cancel()
        stop.set()
        check("cancel mid-stream: the first batch was answered before the cancel", first.WhichOneof("kind") == "batch")
        self.correct_request("cancel mid-stream", stub, model, expect)

        # Client disconnect: a separate process sends a large request and dies without waiting;
        # the server must keep serving (the drop itself: test_edge.py).
        code = ("import sys,time,grpc; sys.path.insert(0,%r); from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as g;"
                "s=g.RerankerStub(grpc.insecure_channel(%r)); f=s.Rerank.future(pb.RerankRequest(query='q',"
                "documents=[pb.Document(text=%r)]*%d)); time.sleep(0.2); import os; os._exit(0)") % (
                    self.args.gen_dir, addr, DOCS[LONG_DOC], 300 // SCALE)
        subprocess.run([sys.executable, "-c", code], timeout=60 * SCALE)
        self.correct_request("client disconnect", stub, model, expect)
        ch.close()

    def in_flight_limit(self, model):
        """A server with --max-in-flight 1: concurrent requests get RESOURCE_EXHAUSTED with a message."""
        import grpc
        pb = self.pb
        # Not under valgrind: a limit test (the servers under memcheck answer the same paths).
        srv = rrtest.Server(self.args.rerankd, model, ["--max-in-flight", "1"] + self.args.server_extra)
        try:
            ch = grpc.insecure_channel(srv.addr)
            stub = self.pbg.RerankerStub(ch)
            req = pb.RerankRequest(query="q", documents=[pb.Document(text=DOCS[LONG_DOC])] * 40)
            futs = [stub.Rerank.future(req, timeout=120) for _ in range(8)]
            codes = []
            for f in futs:
                try:
                    f.result()
                    codes.append("OK")
                except grpc.RpcError as e:
                    codes.append(e.code().name + ":" + ("--max-in-flight" in e.details()) * "msg")
            check("--max-in-flight 1: extra concurrent requests → RESOURCE_EXHAUSTED with a message",
                  "OK" in codes and "RESOURCE_EXHAUSTED:msg" in codes, str(codes))
            r = stub.Rerank(pb.RerankRequest(query="q", documents=[pb.Document(text="a")]), timeout=60 * SCALE)
            check("--max-in-flight 1: next request served", len(r.results) == 1)
            ch.close()
        finally:
            rc = srv.stop(timeout=120 * SCALE)
        check("--max-in-flight server exits 0", rc == 0, "rc=%s\n%s" % (rc, srv.log_text()[-3000:]))

    # ---- soak ---------------------------------------------------------------------------
    def soak(self, srv, expect_pool, n_streams, n_unary, seconds):
        import grpc
        pb = self.pb
        errors = []
        counts = {"unary": 0, "stream_batches": 0, "streams": 0}
        queries = list(expect_pool.keys())

        async def run():
            async with grpc.aio.insecure_channel(srv.addr) as ch:
                stub = self.pbg.RerankerStub(ch)
                t_end = time.time() + seconds

                async def unary(k):
                    rnd = random.Random(k)
                    while time.time() < t_end and counts["unary"] < 10 ** 6:
                        q = rnd.choice(queries)
                        idx = rnd.sample(range(len(DOCS)), rnd.randint(1, min(len(DOCS), len(DOCS) // SCALE + 1)))
                        try:
                            r = await stub.Rerank(pb.RerankRequest(query=q, documents=[
                                pb.Document(text=DOCS[i], id=str(i)) for i in idx]), timeout=60 * SCALE)
                            got = [(int(x.id), x.logit) for x in r.results]
                            wrong = [(i, lg, expect_pool[q][i]) for i, lg in got
                                     if not close(lg, expect_pool[q][i], self.tol_mixed)]
                            if len(got) != len(idx) or wrong:
                                errors.append("unary wrong result %d/%d %s" % (len(got), len(idx), wrong[:2]))
                            counts["unary"] += 1
                        except grpc.RpcError as e:
                            errors.append("unary %s %s" % (e.code(), e.details()))

                async def streamer(k):
                    rnd = random.Random(1000 + k)
                    while time.time() < t_end:
                        q = rnd.choice(queries)
                        batches = [rnd.sample(range(len(DOCS)), rnd.randint(1, 6 // SCALE + 1))
                                   for _ in range(rnd.randint(1, 4))]
                        call = stub.RerankStream(timeout=60 * SCALE)
                        try:
                            await call.write(pb.RerankStreamRequest(open=pb.StreamOpen(query=q, top_n=3)))
                            for b in batches:
                                await call.write(pb.RerankStreamRequest(batch=pb.StreamBatch(
                                    documents=[pb.Document(text=DOCS[i], id=str(i)) for i in b])))
                            await call.done_writing()
                            seen = []
                            async for m in call:
                                if m.WhichOneof("kind") == "batch":
                                    seen += [(int(x.id), x.logit) for x in m.batch.results]
                                    counts["stream_batches"] += 1
                                else:
                                    fin = [(int(x.id), x.logit) for x in m.final.results]
                            flat = [i for b in batches for i in b]
                            if [i for i, _ in seen] != flat or any(not close(lg, expect_pool[q][i], self.tol_mixed) for i, lg in seen):
                                errors.append("stream wrong batch result")
                            best = sorted(seen, key=lambda t: -t[1])[:3]
                            if [lg for _, lg in fin] != [lg for _, lg in best]:
                                errors.append("stream wrong final ranking")
                            counts["streams"] += 1
                        except grpc.RpcError as e:
                            errors.append("stream %s %s" % (e.code(), e.details()))

                await asyncio.gather(*[unary(k) for k in range(n_unary)], *[streamer(k) for k in range(n_streams)])

        rss0 = srv.rss_kib()
        t0 = time.time()
        asyncio.run(run())
        dt = time.time() - t0
        rss1 = srv.rss_kib()
        print("soak: %d streams + %d unary clients, %.1f s: %d unary calls, %d streams (%d batches), "
              "%d errors; RSS start %d KiB, end %d KiB" % (n_streams, n_unary, dt, counts["unary"], counts["streams"],
                                                         counts["stream_batches"], len(errors), rss0, rss1))
        check("soak: zero errors, every result correct", not errors and counts["unary"] > 0 and counts["streams"] > 0,
              str(errors[:5]))
        return rss0, rss1

    # ---- shutdown -----------------------------------------------------------------------
    def shutdown(self, srv):
        import grpc
        import health_pb2 as hp
        import health_pb2_grpc as hg
        pb = self.pb
        ch = grpc.insecure_channel(srv.addr)
        watch = hg.HealthStub(ch).Watch(hp.HealthCheckRequest(service=""), timeout=120 * SCALE)
        check("drain: Watch starts SERVING", next(watch).status == hp.HealthCheckResponse.SERVING)
        stop = threading.Event()

        def idle():
            yield pb.RerankStreamRequest(open=pb.StreamOpen(query="q"))
            stop.wait(120)
        stream = self.pbg.RerankerStub(ch).RerankStream(idle(), timeout=120 * SCALE)
        time.sleep(0.3)
        srv.proc.send_signal(15)
        try:
            st = next(watch).status
        except grpc.RpcError as e:
            st = e.code()
        check("drain: Watch sees NOT_SERVING on SIGTERM", st == hp.HealthCheckResponse.NOT_SERVING, str(st))
        try:
            list(stream)
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
        stop.set()
        check("drain: idle stream cancelled after the grace period", code == grpc.StatusCode.UNAVAILABLE, str(code))
        rc = srv.stop(timeout=120 * SCALE)
        log = srv.log_text()
        check("drain: exit 0, 0 live calls", rc == 0 and "stopped, 0 live calls" in log, "rc=%s\n%s" % (rc, log[-3000:]))
        ch.close()

    def valgrind_cmd(self):
        if not self.args.valgrind:
            return None
        return rrtest.valgrind_cmd()

    def ready_timeout(self):
        return 300.0 if self.args.valgrind else 60.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--cli", required=True, help="the rerank CLI (reference scores)")
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--tiny-model", required=True)
    ap.add_argument("--score-model", help="model whose scores are compared (default: the tiny one)")
    ap.add_argument("--soak-seconds", type=float, default=8.0)
    ap.add_argument("--soak-streams", type=int, default=64)
    ap.add_argument("--soak-unary", type=int, default=64)
    ap.add_argument("--tol", type=float, default=0.0, help="relative logit tolerance (0 = bit-identical)")
    ap.add_argument("--tol-mixed", type=float, default=0.0,
                    help="relative logit tolerance where batch composition differs from the "
                         "reference (0: the CPU engine is bitwise batch invariant)")
    ap.add_argument("--valgrind", action="store_true")
    ap.add_argument("--server-extra", nargs="*", default=[])
    args = ap.parse_args()

    for m in [args.tiny_model] + ([args.score_model] if args.score_model else []):
        if not os.path.isfile(os.path.join(m, "config.json")):
            print("test_server: skipped: model %s missing (run scripts/make_models.py)" % m)
            return 77
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError as e:
        print("test_server: skipped: %s (create .venv with scripts/setup.sh)" % e)
        return 77
    if args.valgrind:
        global SCALE
        SCALE = 10
        rrtest.pin_isa_for_valgrind()
        DOCS[LONG_DOC] = " ".join(["A long passage about the sea and the tides and the moon."] * 12)
    rrtest.gen_stubs(args.source_dir, args.gen_dir)
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
    from tei.v1 import tei_pb2 as tei, tei_pb2_grpc as teig
    s = Suite(args, pb, pbg, tei, teig)
    vg = s.valgrind_cmd()

    # Scores on the score model (minilm in CI; the tiny model under valgrind, on one server).
    t0 = time.time()
    score_model = args.score_model or args.tiny_model
    expect = {q: s.ref(score_model, q, DOCS) for q in QUERIES}
    srv = rrtest.Server(args.rerankd, score_model, args.server_extra, valgrind=vg, ready_timeout=s.ready_timeout())
    try:
        s.scores(srv.addr, score_model, expect)
        print("-- scores: %.0f s" % (time.time() - t0))
        if score_model != args.tiny_model:
            rc = srv.stop(timeout=120 * SCALE)
            check("score server exits 0 on SIGTERM", rc == 0, "rc=%s\n%s" % (rc, srv.log_text()[-3000:]))
            expect = {q: s.ref(args.tiny_model, q, DOCS) for q in QUERIES}
            srv = rrtest.Server(args.rerankd, args.tiny_model, args.server_extra, valgrind=vg,
                                ready_timeout=s.ready_timeout())
        # Everything else on the tiny model.
        for name, fn in (("health", lambda: s.health(srv.addr)),
                         ("reflection", lambda: s.reflection(srv.addr, expect)),
                         ("bad input", lambda: s.bad_input(srv.addr, args.tiny_model, expect)),
                         ("soak", lambda: args.soak_seconds > 0 and
                          s.soak(srv, expect, args.soak_streams, args.soak_unary, args.soak_seconds)),
                         ("drain", lambda: s.shutdown(srv))):
            t0 = time.time()
            fn()
            print("-- %s: %.0f s" % (name, time.time() - t0))
    finally:
        if srv.proc.poll() is None:
            srv.stop()
    s.in_flight_limit(args.tiny_model)
    return rrtest.summary("test_server")


if __name__ == "__main__":
    sys.exit(main())
