"""test_xlmr.py — rerankd serving XLM-RoBERTa cross-encoders (bge-reranker-* layout) on every
API, against the golden files of tests/golden/make_golden_xlmr.py (transformers fp32):

- models/xlmr-small, default tokenizer pipeline (transformers >= 5, what CrossEncoder runs):
  every golden query's documents through rerank.v1 Rerank and RerankStream, tei.v1 Rerank
  (raw scores), and HTTP /rerank, /v1/rerank and /v2/rerank; each logit within 1e-4 of
  `logit_transformers` (else `logit`), the same logit on every path (gRPC exactly; HTTP as
  printed, %.9g), the ranking of each API the golden ranking, relevance_score = sigmoid;
- the same folder with --tokenizer-pipeline file (the tokenizer.json as written, as TEI runs
  it): the pairs where the two pipelines tokenize differently score the file's `logit`;
- models/xlmr-long: Info says XLMRobertaForSequenceClassification and max_length 8192;
  the golden pairs past 512 tokens (up to 8192, cut longest_first) score within 1e-4;
  a literal <pad> in a text shifts the positions after it as in transformers (RR_TEST_QUICK,
  the sanitizer build: documents up to 3000 characters only).

Exit: 0 passed, 1 failed, 77 skipped.
"""
import argparse
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrtest  # noqa: E402

check = rrtest.check
TOL = 1e-4


def post(port, path, body):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method="POST",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def load_golden(path):
    """{qid: (query, [(doc, logit_file, logit_transformers)])} in file order. The golden empty
    query is left out: every API refuses an empty query (test_golden scores that pair)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if not r["query"]:
                continue
            q = out.setdefault(r["qid"], (r["query"], []))
            q[1].append((r["doc"], r["logit"], r.get("logit_transformers", r["logit"])))
    return out


class Suite:
    def __init__(self, args):
        self.args = args
        import grpc
        from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
        from tei.v1 import tei_pb2 as tei, tei_pb2_grpc as teig
        self.grpc, self.pb, self.pbg, self.tei, self.teig = grpc, pb, pbg, tei, teig

    def server(self, model, env=None, extra=()):
        return rrtest.Server(self.args.rerankd, model, ["--http-port", "0"] + list(extra), env=env)

    def grpc_logits(self, addr, query, docs, all_paths=True):
        pb, pbg = self.pb, self.pbg
        ch = self.grpc.insecure_channel(addr, options=[("grpc.max_receive_message_length", 64 << 20),
                                                       ("grpc.max_send_message_length", 64 << 20)])
        try:
            st = pbg.RerankerStub(ch)
            r = st.Rerank(pb.RerankRequest(query=query, documents=[pb.Document(text=d) for d in docs]),
                          timeout=300)
            unary = {x.index: x.logit for x in r.results}
            order = [x.index for x in r.results]
            if not all_paths:
                return unary, order, None, None

            def msgs():
                yield pb.RerankStreamRequest(open=pb.StreamOpen(query=query))
                yield pb.RerankStreamRequest(batch=pb.StreamBatch(documents=[pb.Document(text=d) for d in docs]))
            stream = {}
            for m in st.RerankStream(msgs(), timeout=300):
                if m.HasField("batch"):
                    for x in m.batch.results:
                        stream[x.index] = x.logit
            t = self.teig.RerankStub(ch).Rerank(self.tei.RerankRequest(query=query, texts=docs, raw_scores=True, truncate=True),
                                                timeout=300)
            tei = {x.index: x.score for x in t.ranks}
            return unary, order, stream, tei
        finally:
            ch.close()

    def small(self):
        golden = load_golden(os.path.join(self.args.source_dir, "tests/golden/xlmr-small/pairs.jsonl"))
        srv = self.server(os.path.join(self.args.models, "xlmr-small"))
        worst, worst_http, n, n_rank = 0.0, 0.0, 0, 0
        same_grpc, same_http, sig_ok = True, True, True
        try:
            for qid, (query, rows) in golden.items():
                docs = [d for d, _, _ in rows]
                want = [tf for _, _, tf in rows]
                unary, order, stream, tei = self.grpc_logits(srv.addr, query, docs)
                for i, w in enumerate(want):
                    worst = max(worst, abs(unary[i] - w))
                    n += 1
                same_grpc &= unary == stream and unary == tei
                # ranking: golden order, ties within 2·TOL are free
                ok = all(want[a] >= want[b] - 2 * TOL for a, b in zip(order, order[1:]))
                n_rank += ok
                st1, js1 = post(srv.http_port, "/rerank", {"query": query, "texts": docs, "raw_scores": True, "truncate": True})
                st2, js2 = post(srv.http_port, "/v1/rerank", {"query": query, "documents": docs})
                st3, js3 = post(srv.http_port, "/v2/rerank", {"query": query, "documents": docs})
                if st1 != 200 or st2 != 200 or st3 != 200:
                    check("HTTP answers 200 (qid %s)" % qid, False, "%s %s %s %r" % (st1, st2, st3, js1))
                    continue
                http = {x["index"]: x["score"] for x in js1}
                for i in range(len(docs)):
                    worst_http = max(worst_http, abs(http[i] - unary[i]))
                for js in (js2, js3):
                    for x in js["results"]:
                        s = 1.0 / (1.0 + math.exp(-unary[x["index"]]))
                        sig_ok &= abs(x["relevance_score"] - s) <= 1e-6
                same_http &= [x["index"] for x in js2["results"]] == order == [x["index"] for x in js3["results"]]
        finally:
            check("xlmr-small: server exits 0", srv.stop() == 0)
        print("xlmr-small: %d pairs in %d queries, max |logit - transformers| = %.3g, HTTP vs gRPC %.3g"
              % (n, len(golden), worst, worst_http))
        check("xlmr-small: every logit within 1e-4 of transformers fp32 (%d pairs)" % n, n > 30 and worst <= TOL,
              "%.3g" % worst)
        check("xlmr-small: the golden ranking on every query", n_rank == len(golden), "%d/%d" % (n_rank, len(golden)))
        check("xlmr-small: Rerank, RerankStream and tei.v1 give the same logits exactly", same_grpc)
        check("xlmr-small: HTTP /rerank prints the gRPC logits (%.9g)", worst_http <= 1e-6 * 10, "%.3g" % worst_http)
        check("xlmr-small: /v1 and /v2 rank as gRPC, relevance_score = sigmoid(logit)", same_http and sig_ok)

    def file_pipeline(self):
        golden = load_golden(os.path.join(self.args.source_dir, "tests/golden/xlmr-small/pairs.jsonl"))
        differ = [(q, d, lf, lt) for q, rows in golden.values() for d, lf, lt in rows if lf != lt]
        srv = self.server(os.path.join(self.args.models, "xlmr-small"), extra=["--tokenizer-pipeline", "file"])
        try:
            worst, n_dist = 0.0, 0
            for q, d, lf, lt in differ:
                unary, _, _, _ = self.grpc_logits(srv.addr, q, [d], all_paths=False)
                worst = max(worst, abs(unary[0] - lf))
                n_dist += abs(lf - lt) > 2 * TOL
        finally:
            srv.stop()
        print("file pipeline: %d pairs tokenized differently, %d of them scored apart; max |logit - file| = %.3g"
              % (len(differ), n_dist, worst))
        check("--tokenizer-pipeline file: the pairs tokenized differently score the file's logit",
              len(differ) > 0 and n_dist > 0 and worst <= TOL, "%d pairs, %.3g" % (len(differ), worst))

    def long(self):
        golden = load_golden(os.path.join(self.args.source_dir, "tests/golden/xlmr-long/pairs.jsonl"))
        srv = self.server(os.path.join(self.args.models, "xlmr-long"))
        try:
            ch = self.grpc.insecure_channel(srv.addr)
            info = self.pbg.RerankerStub(ch).Info(self.pb.InfoRequest(), timeout=30)
            ch.close()
            check("xlmr-long: Info names the architecture and max_length 8192",
                  info.architecture == "XLMRobertaForSequenceClassification" and info.max_length == 8192,
                  "%s %d" % (info.architecture, info.max_length))
            worst, n, n_long, pad = 0.0, 0, 0, False
            t0 = time.time()
            quick = os.environ.get("RR_TEST_QUICK", "0") not in ("", "0")
            for query, rows in golden.values():
                if quick:  # the sanitizer build: pairs up to ~1000 tokens (as test_golden)
                    rows = [r for r in rows if len(r[0]) <= 3000]
                    if not rows:
                        continue
                docs = [d for d, _, _ in rows]
                unary, _, _, _ = self.grpc_logits(srv.addr, query, docs, all_paths=False)
                for i, (d, _, lt) in enumerate(rows):
                    worst = max(worst, abs(unary[i] - lt))
                    n += 1
                    n_long += len(d) > 3000
                    pad |= "<pad>" in d or "<pad>" in query
        finally:
            check("xlmr-long: server exits 0", srv.stop() == 0)
        print("xlmr-long: %d pairs (%d long documents) in %.0f s, max |logit - transformers| = %.3g"
              % (n, n_long, time.time() - t0, worst))
        check("xlmr-long: every logit within 1e-4, long documents and literal <pad> included",
              n > 30 and (n_long > 0 or quick) and pad and worst <= TOL,
              "%d %d %s %.3g" % (n, n_long, pad, worst))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--models", required=True)
    args = ap.parse_args()
    for m in ("xlmr-small", "xlmr-long"):
        if not os.path.isfile(os.path.join(args.models, m, "config.json")):
            print("test_xlmr: skipped: model %s missing (run scripts/make_models.py)" % m)
            return 77
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError as e:
        print("test_xlmr: skipped: %s (create .venv with scripts/setup.sh)" % e)
        return 77
    rrtest.gen_stubs(args.source_dir, args.gen_dir)
    s = Suite(args)
    for name, fn in (("xlmr-small on every API", s.small), ("file pipeline", s.file_pipeline),
                     ("xlmr-long", s.long)):
        t0 = time.time()
        fn()
        print("-- %s: %.0f s" % (name, time.time() - t0))
    return rrtest.summary("test_xlmr")


if __name__ == "__main__":
    sys.exit(main())
