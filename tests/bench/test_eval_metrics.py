#!/usr/bin/env python3
"""test_eval_metrics.py — rerank-eval's metrics against pytrec_eval (trec_eval) to 1e-6.

Runs `rerank-eval --metrics-only` on the committed test collection (tests/bench/data: ties,
unjudged documents, an all-zero query, an unjudged query, runs shallower and deeper than
the cutoffs) for several K, and compares every query's nDCG@10, MRR@10 and Recall@K, and
the set of evaluated queries, with pytrec_eval's on the same run cut at K:
  nDCG@10  = ndcg_cut.10,  Recall@K = recall.K,  MRR@10 = recip_rank of the run cut at 10.
"Cut at K" keeps each query's K best documents in trec_eval's order (score descending, ties
by docid descending). Needs only .venv (pytrec-eval-terrier from scripts/requirements.txt).
Exit 0 pass, 1 fail, 77 skipped.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

TOL = 1e-6


def read_run(path):
    run = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                qid, _, docid, _, score, _ = line.split()
                run.setdefault(qid, {})[docid] = float(score)
    return run


def read_qrels(path):
    qrels = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                qid, _, docid, rel = line.split()
                qrels.setdefault(qid, {})[docid] = int(rel)
    return qrels


def cut(run, k):
    """Each query's k first documents in trec_eval's order."""
    out = {}
    for qid, docs in run.items():
        order = sorted(docs.items(), key=lambda kv: kv[0], reverse=True)   # docid descending
        order = sorted(order, key=lambda kv: kv[1], reverse=True)          # stable: score desc
        out[qid] = dict(order[:k])
    return out


def reference(pytrec_eval, qrels, run, k):
    """Per-query {ndcg_cut_10, recip_rank_10, recall_K} from pytrec_eval."""
    run_k = cut(run, k)
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.%d" % k})
    a = ev.evaluate(run_k)
    b = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut(run, min(k, 10)))
    return {q: {"ndcg_cut_10": a[q]["ndcg_cut_10"], "recip_rank_10": b[q]["recip_rank"],
                "recall_%d" % k: a[q]["recall_%d" % k]} for q in a}


def compare(ours, ref, label, fails):
    if set(ours) != set(ref):
        fails.append("%s: evaluated queries %s, pytrec_eval %s" % (label, sorted(ours), sorted(ref)))
        return 0
    n = 0
    for q in ref:
        for m, v in ref[q].items():
            got = ours[q].get(m)
            n += 1
            if got is None or abs(got - v) > TOL:
                fails.append("%s: query %s %s = %r, pytrec_eval %r" % (label, q, m, got, v))
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerank-eval", required=True)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    try:
        import pytrec_eval
    except ImportError:
        print("bench_eval_metrics: skipped: pytrec_eval not installed in this venv "
              "(scripts/setup.sh installs scripts/requirements.txt)")
        return 77
    qrels_path = os.path.join(args.data, "qrels.txt")
    qrels = read_qrels(qrels_path)
    fails, checked = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for run_name in ("run.trec", "run-deep.trec"):
            run_path = os.path.join(args.data, run_name)
            run = read_run(run_path)
            for k in (1, 5, 10, 20, 50, 100):
                out = os.path.join(tmp, "m.json")
                p = subprocess.run([args.rerank_eval, "--run", run_path, "--qrels", qrels_path,
                                    "--k", str(k), "--metrics-only", "--json", out],
                                   capture_output=True, text=True)
                label = "%s K=%d" % (run_name, k)
                if p.returncode != 0:
                    fails.append("%s: rerank-eval exit %d: %s" % (label, p.returncode, p.stderr))
                    continue
                with open(out) as f:
                    res = json.load(f)
                ours = {q: v["before"] for q, v in res["per_query"].items()}
                ref = reference(pytrec_eval, qrels, run, k)
                checked += compare(ours, ref, label, fails)
                # the means rerank-eval prints are over the same queries
                for m in ("ndcg_cut_10", "recip_rank_10", "recall_%d" % k):
                    mean = sum(r[m] for r in ref.values()) / len(ref)
                    checked += 1
                    if abs(res["before"][m] - mean) > TOL:
                        fails.append("%s: mean %s = %r, pytrec_eval %r" % (label, m, res["before"][m], mean))
    for f in fails[:20]:
        print("FAIL " + f)
    print("bench_eval_metrics: %d passed, %d failed" % (checked - len(fails), len(fails)))
    return 0 if not fails and checked > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
