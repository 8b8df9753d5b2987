#!/usr/bin/env python3
"""test_long.py — long documents through the real server (README "Long documents"), on
rerank.v1 (unary and stream), HTTP /rerank (TEI shape), /v1/rerank and /v2/rerank (Cohere):

  - a ~5,000-token document chunked: its logit is the best of Hugging Face's window logits
    (tests/golden/minilm-l6-bert/windows.jsonl, within 1e-4), and the winning window (index,
    token and character spans, windows scored / possible) is HF's; the same logit bits and
    window on every path; `first` and `mean` likewise; with max_chunks_per_doc 64 every
    window is scored (possible == scored); max_tokens_per_doc 1500 as HF's;
  - a chunked document's score does not depend on its neighbours (bitwise);
  - truncate (the default) gives the ordinary pair's logit (`rerank score`), no window;
  - --long-documents chunk makes chunking the default; a request may still truncate;
  - Cohere: max_chunks_per_doc alone chunks; rank_fields ranks on "name: value" lines and
    echoes the object; the answer has id and meta; /v2/rerank too;
  - limits and bad options: max_chunks_per_doc over --max-chunks-per-doc, documents ×
    windows over --max-chunks-per-request, an unknown mode / rule, max_length 3 with chunking,
    a negative max_tokens_per_doc — each refused with the same class on gRPC and HTTP.
With --valgrind (ctest server_long_valgrind) the server runs under memcheck on the tiny
test model, and only the model-independent sections run (invariance, the stream, rank_fields,
the limits): any memcheck error or leak fails it.
Skips (77) without the model, the golden file or the .venv.
"""
import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrtest  # noqa: E402
from rrtest import check  # noqa: E402


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


class Suite:
    def __init__(self, args, pb, pbg):
        self.args, self.pb, self.pbg = args, pb, pbg
        with open(os.path.join(args.source_dir, "tests/golden/minilm-l6-bert/windows.jsonl")) as f:
            self.gold = {c["name"]: c for c in map(json.loads, f)}

    def server(self, extra=()):
        vg = rrtest.valgrind_cmd() if self.args.valgrind else None
        return rrtest.Server(self.args.rerankd, self.args.model,
                             ["--http-port", "0", "--max-chunks-per-doc", "64",
                              "--max-chunks-per-request", "200"] + list(extra),
                             valgrind=vg, ready_timeout=600.0 if vg else 120.0)

    def post(self, srv, path, body):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=300)
        c.request("POST", path, body=json.dumps(body).encode(),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        text = r.read()
        c.close()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text

    def code(self, fn):
        import grpc
        try:
            return "OK", fn()
        except grpc.RpcError as e:
            return e.code().name, e.details() or ""

    def grpc_rerank(self, srv, query, docs, **kw):
        import grpc
        ch = grpc.insecure_channel(srv.addr, options=[("grpc.max_receive_message_length", 64 << 20)])
        stub = self.pbg.RerankerStub(ch)
        req = self.pb.RerankRequest(query=query, documents=[self.pb.Document(text=d) for d in docs],
                                    **kw)
        st, r = self.code(lambda: stub.Rerank(req, timeout=300))
        ch.close()
        return st, r

    @staticmethod
    def best(case, rule="max"):
        lg = [w["logit"] for w in case["windows"]]
        b = max(range(len(lg)), key=lambda k: (lg[k], -k))
        val = {"max": lg[b], "first": lg[0], "mean": sum(lg) / len(lg)}[rule]
        return b, val

    def window_ok(self, what, win, case, b):
        w = case["windows"][b]
        got = (win["index"], win["token_start"], win["token_end"], win["char_start"], win["char_end"],
               win["scored"], win["possible"])
        want = (b, w["tok_start"], w["tok_end"], w["char_start"], w["char_end"], len(case["windows"]),
                case["n_possible"])
        return check("%s: the winning window is HF's (index, tokens, characters, scored, possible)"
                     % what, got == want, "%s vs %s" % (got, want))

    def golden(self, srv):
        pb = self.pb
        # an ASan server is ~10x slower: the 12-window run is the only one it skips
        for name, mc in (("5k_default", 10),) + ((("5k_all_windows", 64),) if not self.args.sanitized else ()):
            case = self.gold[name]
            q, d = case["query"], case["doc"]
            b, want = self.best(case)
            st, r = self.grpc_rerank(srv, q, [d], chunking=pb.Chunking(
                mode=pb.LONG_DOCUMENTS_CHUNK, max_chunks_per_doc=mc))
            ok = st == "OK" and len(r.results) == 1
            check("%s gRPC: answered" % name, ok, st)
            if not ok:
                continue
            res = r.results[0]
            check("%s gRPC: logit %.7g within 1e-4 of HF's best window %.7g" % (name, res.logit, want),
                  abs(res.logit - want) <= 1e-4)
            w = res.window
            self.window_ok("%s gRPC" % name, {"index": w.index, "token_start": w.token_start,
                                              "token_end": w.token_end, "char_start": w.char_start,
                                              "char_end": w.char_end, "scored": w.scored,
                                              "possible": w.possible}, case, b)
            if name == "5k_default":
                check("5k: the document is cut at 10 of %d windows" % case["n_possible"],
                      w.scored == 10 and w.possible == case["n_possible"] > 10)
                text = d[w.char_start:w.char_end]
                check("5k: the window's characters are a passage of the document (%d chars)" % len(text),
                      len(text) > 1000 and text in d)
            # the same on HTTP, both shapes; and on the Cohere routes by max_chunks_per_doc alone
            for path, body in (("/rerank", {"query": q, "texts": [d], "long_documents": "chunk",
                                            "max_chunks_per_doc": mc, "raw_scores": True}),
                               ("/v1/rerank", {"query": q, "documents": [d], "max_chunks_per_doc": mc}),
                               ("/v2/rerank", {"query": q, "documents": [d], "long_documents": "chunk",
                                               "max_chunks_per_doc": mc})):
                st, js = self.post(srv, path, body)
                if not check("%s HTTP %s: 200" % (name, path), st == 200, "%s %s" % (st, js)):
                    continue
                item = js[0] if path == "/rerank" else js["results"][0]
                score = item["score"] if path == "/rerank" else item["relevance_score"]
                want_score = res.logit if path == "/rerank" else res.score
                check("%s HTTP %s: the gRPC answer's score" % (name, path),
                      f32(score) == f32(want_score), "%r vs %r" % (score, want_score))
                self.window_ok("%s HTTP %s" % (name, path), item["window"], case, b)
                if path != "/rerank":
                    check("%s %s: Cohere id and meta" % (name, path),
                          isinstance(js.get("id"), str) and
                          js["meta"]["api_version"]["version"] == path[2])
        # first and mean
        case = self.gold["5k_default"]
        for rule, enum in (("first", pb.CHUNK_SCORE_FIRST), ("mean", pb.CHUNK_SCORE_MEAN)):
            _, want = self.best(case, rule)
            st, r = self.grpc_rerank(srv, case["query"], [case["doc"]], chunking=pb.Chunking(
                mode=pb.LONG_DOCUMENTS_CHUNK, max_chunks_per_doc=10, score=enum))
            check("5k %s: within 1e-4 of HF's (%.7g)" % (rule, want),
                  st == "OK" and abs(r.results[0].logit - want) <= 1e-4, "%s %s" % (st, r))
            st2, js = self.post(srv, "/rerank", {"query": case["query"], "texts": [case["doc"]],
                                                 "long_documents": "chunk", "chunk_score": rule,
                                                 "max_chunks_per_doc": 10, "raw_scores": True})
            check("5k %s: HTTP gives the same bits" % rule,
                  st == "OK" and st2 == 200 and f32(js[0]["score"]) == r.results[0].logit)
        # max_tokens_per_doc
        case = self.gold["5k_max_doc_tokens"]
        b, want = self.best(case)
        st, r = self.grpc_rerank(srv, case["query"], [case["doc"]], max_tokens_per_doc=1500,
                                 chunking=pb.Chunking(mode=pb.LONG_DOCUMENTS_CHUNK, max_chunks_per_doc=10))
        check("max_tokens_per_doc 1500: HF's best window of the first 1500 tokens",
              st == "OK" and abs(r.results[0].logit - want) <= 1e-4 and
              r.results[0].window.possible == case["n_possible"], "%s %s" % (st, r))
        st2, js = self.post(srv, "/v2/rerank", {"query": case["query"], "documents": [case["doc"]],
                                                "max_tokens_per_doc": 1500, "max_chunks_per_doc": 10})
        check("max_tokens_per_doc 1500: the same on /v2/rerank",
              st == "OK" and st2 == 200 and
              f32(js["results"][0]["relevance_score"]) == r.results[0].score)

    def invariance(self, srv):
        pb = self.pb
        case = self.gold["5k_default"]
        # under valgrind ~1,000 tokens (a few windows), not 5,000: memcheck is ~50x slower
        q, d = case["query"], case["doc"][:4000] if self.args.valgrind else case["doc"]
        ch = pb.Chunking(mode=pb.LONG_DOCUMENTS_CHUNK, max_chunks_per_doc=10)
        st, alone = self.grpc_rerank(srv, q, [d], chunking=ch)
        others = ["a short document", self.gold["long_query"]["doc"][:len(d)], d[:3000], "another one"]
        st2, mixed = self.grpc_rerank(srv, q, others[:2] + [d] + others[2:], chunking=ch)
        got = [x for x in mixed.results if x.index == 2] if st2 == "OK" else []
        check("a chunked document's logit is the same alone and among others (bitwise)",
              st == st2 == "OK" and got and got[0].logit == alone.results[0].logit and
              got[0].window == alone.results[0].window)
        # truncate (the default): the ordinary pair, no window
        st, r = self.grpc_rerank(srv, q, [d])
        ref = rrtest.cli_logits(self.args.cli, self.args.model, q, [d])
        check("truncate (default): the ordinary truncated pair's logit, no window",
              st == "OK" and f32(r.results[0].logit) == ref[0] and not r.results[0].HasField("window"),
              "%s %s %s" % (st, r, ref))
        # a stream with chunking: windows in the batch answers and the final ranking
        import grpc
        chn = grpc.insecure_channel(srv.addr)
        stub = self.pbg.RerankerStub(chn)
        msgs = [pb.RerankStreamRequest(open=pb.StreamOpen(query=q, chunking=ch)),
                pb.RerankStreamRequest(batch=pb.StreamBatch(documents=[pb.Document(text="short"),
                                                                       pb.Document(text=d)]))]
        resp = list(stub.RerankStream(iter(msgs), timeout=300))
        ok = len(resp) == 2 and resp[0].HasField("batch") and resp[1].HasField("final")
        check("stream: one batch answer and the final ranking", ok, str(resp)[:500])
        if ok:
            bw = resp[0].batch.results[1]
            fw = [x for x in resp[1].final.results if x.index == 1][0]
            check("stream: the long document's window and logit as unary, in both answers",
                  bw.logit == alone.results[0].logit and bw.window == alone.results[0].window and
                  fw.window == bw.window and fw.logit == bw.logit)
        chn.close()

    def cohere_fields(self, srv):
        docs = [{"title": "Berlin", "text": "Berlin has about 3.8 million inhabitants.", "year": "2024"},
                {"text": "Paris is the capital of France.", "title": "Paris"},
                "a plain string document"]
        q = "How many people live in Berlin?"
        st, js = self.post(srv, "/v1/rerank", {"query": q, "documents": docs,
                                               "rank_fields": ["title", "text"],
                                               "return_documents": True})
        ok = check("rank_fields: 200", st == 200, "%s %s" % (st, js))
        joined = ["title: Berlin\ntext: Berlin has about 3.8 million inhabitants.",
                  "title: Paris\ntext: Paris is the capital of France.", "a plain string document"]
        st2, js2 = self.post(srv, "/v1/rerank", {"query": q, "documents": joined})
        if ok and st2 == 200:
            a = {x["index"]: x["relevance_score"] for x in js["results"]}
            b = {x["index"]: x["relevance_score"] for x in js2["results"]}
            check("rank_fields: scored as the \"name: value\" lines in the fields' order", a == b,
                  "%s vs %s" % (a, b))
            echo = {x["index"]: x["document"] for x in js["results"]}
            check("rank_fields: object documents are echoed as sent",
                  echo[0] == docs[0] and echo[1] == docs[1] and echo[2] == {"text": docs[2]}, echo)
        st, js = self.post(srv, "/v1/rerank", {"query": q, "documents": [{"title": 5}],
                                               "rank_fields": ["title"]})
        check("rank_fields: a non-string field is 422 naming it",
              st == 422 and "documents[0].title" in js.get("error", ""), "%s %s" % (st, js))
        st, js = self.post(srv, "/v1/rerank", {"query": q, "documents": docs, "rank_fields": "title"})
        check("rank_fields: not an array is 422", st == 422, "%s %s" % (st, js))

    def limits(self, srv):
        pb = self.pb
        d = self.gold["5k_default"]["doc"]
        cases = [
            ("max_chunks_per_doc over --max-chunks-per-doc",
             dict(chunking=pb.Chunking(mode=pb.LONG_DOCUMENTS_CHUNK, max_chunks_per_doc=65)), [d],
             {"long_documents": "chunk", "max_chunks_per_doc": 65}, "INVALID_ARGUMENT", 422,
             "--max-chunks-per-doc"),
            ("documents x windows over --max-chunks-per-request",
             dict(chunking=pb.Chunking(mode=pb.LONG_DOCUMENTS_CHUNK, max_chunks_per_doc=50)), [d] * 5,
             {"long_documents": "chunk", "max_chunks_per_doc": 50}, "INVALID_ARGUMENT", 413,
             "--max-chunks-per-request"),
            ("chunking with max_length 3",
             dict(chunking=pb.Chunking(mode=pb.LONG_DOCUMENTS_CHUNK), truncation=pb.Truncation(max_length=3)),
             [d], None, "INVALID_ARGUMENT", None, "max_length 4"),
        ]
        for what, kw, docs, body, gcode, hcode, needle in cases:
            st, r = self.grpc_rerank(srv, "q", docs, **kw)
            check("%s: gRPC %s naming it" % (what, gcode), st == gcode and needle in r, "%s %s" % (st, r))
            if body is not None:
                hst, js = self.post(srv, "/rerank", dict({"query": "q", "texts": docs}, **body))
                check("%s: HTTP %d naming it" % (what, hcode), hst == hcode and needle in js.get("error", ""),
                      "%s %s" % (hst, js))
        raw = self.grpc_raw(srv)
        # Chunking.mode 7 and score 9 on the wire (unknown enum values reach the server as is)
        for field, val, needle in ((1, 7, "chunking.mode 7"), (4, 9, "chunking.score 9")):
            chunking = bytes([field << 3, val])
            msg = b"\x0a\x01q" + b"\x12\x03\x0a\x01d" + bytes([0x32, len(chunking)]) + chunking
            st, r = self.code(lambda: raw(msg, timeout=60))
            check("%s on the wire: INVALID_ARGUMENT naming it" % needle,
                  st == "INVALID_ARGUMENT" and needle in r, "%s %s" % (st, r))
        for body, needle in (({"long_documents": "split"}, "long_documents"),
                             ({"chunk_score": "median", "long_documents": "chunk"}, "chunk_score"),
                             ({"max_tokens_per_doc": -1}, "max_tokens_per_doc"),
                             ({"max_chunks_per_doc": 0}, "max_chunks_per_doc"),
                             ({"chunk_overlap": 1.5}, "chunk_overlap")):
            hst, js = self.post(srv, "/v1/rerank", dict({"query": "q", "documents": ["d"]}, **body))
            check("HTTP %s: 422 naming %s" % (json.dumps(body), needle),
                  hst == 422 and needle in js.get("error", ""), "%s %s" % (hst, js))

    def grpc_raw(self, srv):
        import grpc
        ch = grpc.insecure_channel(srv.addr)
        return ch.unary_unary("/rerank.v1.Reranker/Rerank", request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)

    def chunk_default(self):
        pb = self.pb
        case = self.gold["5k_default"]
        srv = self.server(["--long-documents", "chunk"])
        try:
            _, want = self.best(case)
            st, r = self.grpc_rerank(srv, case["query"], [case["doc"]],
                                     chunking=self.pb.Chunking(max_chunks_per_doc=10))
            check("--long-documents chunk: chunked by default",
                  st == "OK" and abs(r.results[0].logit - want) <= 1e-4 and r.results[0].HasField("window"))
            st, r = self.grpc_rerank(srv, case["query"], [case["doc"]],
                                     chunking=pb.Chunking(mode=pb.LONG_DOCUMENTS_TRUNCATE))
            check("--long-documents chunk: a request may still truncate",
                  st == "OK" and not r.results[0].HasField("window"))
            import grpc
            ch = grpc.insecure_channel(srv.addr)
            info = self.pbg.RerankerStub(ch).Info(pb.InfoRequest(), timeout=30)
            check("Info: long_documents chunk, the limits",
                  info.long_documents == "chunk" and info.max_chunks_per_doc == 64 and
                  info.max_chunks_per_request == 200, str(info))
            ch.close()
        finally:
            rc = srv.stop(timeout=120)
            check("--long-documents chunk server exits 0", rc == 0, srv.log_text()[-2000:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--valgrind", action="store_true")
    ap.add_argument("--sanitized", action="store_true", help="an ASan server: skip the slowest runs")
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        print("test_long: skipped: model %s missing (run scripts/make_models.py)" % args.model)
        return 77
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError as e:
        print("test_long: skipped: %s (create .venv with scripts/setup.sh)" % e)
        return 77
    if args.valgrind:
        rrtest.pin_isa_for_valgrind()
    rrtest.gen_stubs(args.source_dir, args.gen_dir)
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
    s = Suite(args, pb, pbg)
    srv = s.server()
    try:
        sections = (s.invariance, s.cohere_fields, s.limits)
        for fn in sections if args.valgrind else (s.golden,) + sections:
            fn(srv)
    finally:
        rc = srv.stop(timeout=600 if args.valgrind else 120)
        check("server exits 0 on SIGTERM%s" % (" (valgrind clean)" if args.valgrind else ""), rc == 0,
              srv.log_text()[-3000:])
    if not args.valgrind and not args.sanitized:
        s.chunk_default()
    return rrtest.summary("test_long")


if __name__ == "__main__":
    sys.exit(main())
