#!/usr/bin/env python3
"""test_bench_server.py — rerank-eval and rerank-bench against a real rerankd (tiny model).

1. rerank-eval reranks the committed test collection (tests/bench/data) through the server:
   its "before" and "after" metrics must equal pytrec_eval's on the input run and on the
   reranked run it writes (to 1e-6); Recall@K must not change (reranking permutes the top
   K); the written scores must be the logits `rerank score` (rr_score_query) gives for the
   same query and documents, and the written order must follow them.
2. rerank-bench drives the same server (unary, stream, a closed-loop sweep, an open loop) and
   the engine in-process on a small configuration: it must exit 0 after validating the sides
   against each other, and its JSON report must hold every phase with the planned request
   counts and no errors.
3. The peers path: requests written with --dump-inputs and read back with --inputs, a peers
   file whose "transformers" logits come from `rerank score` (an independent process; its
   wall times stand in for the peer's latencies): the report must validate against it and
   carry the peer's numbers and ratios; with one logit of that file perturbed, rerank-bench
   must refuse to report (non-zero exit, no report).
Needs .venv (grpc not used here: both tools are C clients) and models/tiny-bert-random.
Exit 0 pass, 1 fail, 77 skipped.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOL = 1e-6
failures, passes = [], 0


def check(cond, msg):
    global passes
    if cond:
        passes += 1
    else:
        failures.append(msg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--rerank-eval", required=True)
    ap.add_argument("--rerank-bench", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    if not os.path.isdir(args.model):
        print("bench_server: skipped: %s missing (scripts/make_models.py builds it)" % args.model)
        return 77
    try:
        import pytrec_eval
    except ImportError:
        print("bench_server: skipped: pytrec_eval not installed in this venv")
        return 77
    sys.path.insert(0, os.path.join(args.source_dir, "tests", "server"))
    sys.path.insert(0, HERE)
    import rrtest
    from test_eval_metrics import cut, read_qrels, read_run, reference

    data = os.path.join(HERE, "data")
    qrels_path, run_path = os.path.join(data, "qrels.txt"), os.path.join(data, "run.trec")
    k = 20
    server = rrtest.Server(args.rerankd, args.model)
    tmp = tempfile.mkdtemp(prefix="bench-test-")
    try:
        # 1. rerank-eval through the server
        out_run, out_json = os.path.join(tmp, "reranked.trec"), os.path.join(tmp, "eval.json")
        p = subprocess.run([args.rerank_eval, "--run", run_path, "--qrels", qrels_path,
                            "--queries", os.path.join(data, "queries.tsv"),
                            "--corpus", os.path.join(data, "corpus.jsonl"), "--target", server.addr,
                            "--k", str(k), "--out-run", out_run, "--json", out_json,
                            "--md", os.path.join(tmp, "eval.md")], capture_output=True, text=True)
        check(p.returncode == 0, "rerank-eval exit %d: %s" % (p.returncode, p.stderr))
        if p.returncode == 0:
            qrels = read_qrels(qrels_path)
            res = json.load(open(out_json))
            ref_before = reference(pytrec_eval, qrels, read_run(run_path), k)
            reranked = read_run(out_run)
            ref_after = reference(pytrec_eval, qrels, reranked, k)
            check(set(res["per_query"]) == set(ref_before), "evaluated queries differ")
            for q, v in res["per_query"].items():
                for m, x in ref_before.get(q, {}).items():
                    check(abs(v["before"][m] - x) <= TOL, "before %s %s %r vs %r" % (q, m, v["before"][m], x))
                for m, x in ref_after.get(q, {}).items():
                    check(abs(v["after"][m] - x) <= TOL, "after %s %s %r vs %r" % (q, m, v["after"][m], x))
                rk = "recall_%d" % k
                check(abs(v["after"][rk] - v["before"][rk]) <= TOL, "Recall@K changed for %s" % q)
                check(v["latency_s"] > 0 and v["documents"] == len(reranked[q]),
                      "latency/documents of %s" % q)
            # scores = rr_score_query's logits for the same texts, order follows them
            queries = dict(line.rstrip("\n").split("\t", 1) for line in open(os.path.join(data, "queries.tsv")))
            corpus = {}
            for line in open(os.path.join(data, "corpus.jsonl")):
                d = json.loads(line)
                corpus[d["_id"]] = (d["title"] + " " + d["text"]) if d["title"] else d["text"]
            first = cut(read_run(run_path), k)
            for q in ("q1", "q4"):
                docids = list(first[q])
                logits = rrtest.cli_logits(args.cli, args.model, queries[q], [corpus[d] for d in docids])
                for d, x in zip(docids, logits):
                    got = reranked[q][d]
                    check(abs(got - x) <= 1e-4 * max(1.0, abs(x)), "%s %s logit %r vs rerank score %r" % (q, d, got, x))
                lines = [ln.split() for ln in open(out_run) if ln.startswith(q + " ")]
                scores = [float(ln[4]) for ln in lines]
                check(scores == sorted(scores, reverse=True), "%s: written order not by logit" % q)
                check([int(ln[3]) for ln in lines] == list(range(1, len(lines) + 1)), "%s: ranks" % q)

        # 2. rerank-bench: every phase, small
        text = os.path.join(tmp, "text.txt")
        with open(text, "w") as f:
            for line in open(os.path.join(data, "corpus.jsonl")):
                f.write(json.loads(line)["text"] + "\n")
        out_dir = os.path.join(tmp, "bench")
        ks = [1, 5, 20]
        p = subprocess.run([args.rerank_bench, "--target", server.addr, "--inproc", "--threads", "1",
                            "--model", args.model, "--text", text, "--source", "test corpus",
                            "--k", ",".join(map(str, ks)), "--pairs-per-k", "20", "--min-requests", "2",
                            "--max-requests", "4", "--concurrency", "1,3", "--sweep-k", "5",
                            "--sweep-seconds", "0.5", "--warmup", "0.2", "--rate", "20",
                            "--open-seconds", "1", "--stream-batch", "4", "--out", out_dir,
                            "--no-progress"], capture_output=True, text=True, timeout=600)
        check(p.returncode == 0, "rerank-bench exit %d: %s" % (p.returncode, p.stderr[-2000:]))
        if p.returncode == 0:
            rep = json.load(open(os.path.join(out_dir, "report.json")))
            check(rep["validation"]["max_rel_diff"] <= rep["validation"]["tolerance"], "validation")
            check([e["k"] for e in rep["latency_by_k"]] == ks, "K values")
            for e in rep["latency_by_k"]:
                n_req = min(4, max(2, -(-20 // e["k"])))
                for side in ("grpc_unary", "grpc_stream", "inproc"):
                    s = e.get(side, {})
                    check(s.get("requests") == n_req and s.get("errors") == 0,
                          "K=%d %s: %r requests (want %d), %r errors" % (e["k"], side, s.get("requests"), n_req, s.get("errors")))
                    check(s.get("latency_s", {}).get("p50", 0) > 0, "K=%d %s p50" % (e["k"], side))
                u = e.get("grpc_unary", {})
                check(u.get("server_stages_s", {}).get("inference", {}).get("p50", 0) > 0,
                      "K=%d server stages" % e["k"])
                check(u.get("tokens_per_s", 0) > u.get("pairs_per_s", 0) > 0, "K=%d rates" % e["k"])
            check([c["clients"] for c in rep["concurrency"]] == [1, 3], "concurrency points")
            for c in rep["concurrency"]:
                check(c["requests"] > 0 and c["errors"] == 0, "closed loop %d clients" % c["clients"])
            ol = rep.get("open_loop", {})
            check(ol.get("offered_rate") == 20 and ol.get("requests", 0) > 0 and ol.get("errors") == 0,
                  "open loop %r" % ol)
            check(os.path.getsize(os.path.join(out_dir, "report.md")) > 0, "report.md")
            if shutil.which("gnuplot"):
                for png in ("latency_k.png", "concurrency.png"):
                    check(os.path.exists(os.path.join(out_dir, png)), png)
        # 3. --dump-inputs / --inputs and a peers file
        inputs = os.path.join(tmp, "inputs.json")
        p = subprocess.run([args.rerank_bench, "--model", args.model, "--text", text, "--k", "1,5",
                            "--pairs-per-k", "4", "--min-requests", "2", "--max-requests", "2",
                            "--dump-inputs", inputs], capture_output=True, text=True)
        check(p.returncode == 0, "--dump-inputs exit %d: %s" % (p.returncode, p.stderr))
        if p.returncode == 0:
            req = json.load(open(inputs))
            peer = {"name": "transformers", "desc": "stand-in: rerank score CLI", "per_k": []}
            for kin in req["per_k"]:
                lat, logits0 = [], None
                for i in range(kin["warmup"] + kin["n_requests"]):
                    q = kin["pool"][i % len(kin["pool"])]
                    t0 = time.perf_counter()
                    logits = rrtest.cli_logits(args.cli, args.model, q["query"], q["docs"])
                    if i >= kin["warmup"]:
                        lat.append(time.perf_counter() - t0)
                    if i == 0:
                        logits0 = logits
                peer["per_k"].append({"k": kin["k"], "latency_s": lat, "logits0": logits0})
            peers = os.path.join(tmp, "peers.json")
            json.dump({"environment": "test", "peers": [peer]}, open(peers, "w"))
            base = [args.rerank_bench, "--target", server.addr, "--inputs", inputs, "--peers", peers,
                    "--concurrency", "0", "--rate", "0", "--no-progress"]
            out_p = os.path.join(tmp, "bench-peers")
            p = subprocess.run(base + ["--out", out_p], capture_output=True, text=True)
            check(p.returncode == 0, "--peers run exit %d: %s" % (p.returncode, p.stderr[-2000:]))
            if p.returncode == 0:
                rep = json.load(open(os.path.join(out_p, "report.json")))
                check(rep["validation"]["reference"].startswith("transformers"), "validation reference")
                for e, kin in zip(rep["latency_by_k"], req["per_k"]):
                    t = e.get("transformers", {})
                    check(t.get("requests") == kin["n_requests"], "peer requests at K=%d" % e["k"])
                    check(e["grpc_unary"]["requests"] == kin["n_requests"], "unary requests at K=%d" % e["k"])
                md = open(os.path.join(out_p, "report.md")).read()
                check("transformers / gRPC unary" in md, "ratio column in report.md")
            peer["per_k"][-1]["logits0"][-1] += 0.01
            json.dump({"environment": "test", "peers": [peer]}, open(peers, "w"))
            out_bad = os.path.join(tmp, "bench-bad")
            p = subprocess.run(base + ["--out", out_bad], capture_output=True, text=True)
            check(p.returncode != 0 and "validation failed" in p.stderr, "perturbed logit accepted: %s" % p.stderr[-500:])
            check(not os.path.exists(os.path.join(out_bad, "report.json")), "report written after failed validation")
    finally:
        code = server.stop()
        check(code == 0, "rerankd exit status %r" % code)
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures[:20]:
        print("FAIL " + f)
    print("bench_server: %d passed, %d failed" % (passes, len(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
