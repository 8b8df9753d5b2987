#!/usr/bin/env python3
"""test_cli.py — end-to-end tests of the `rerank` tool against the golden files.

Runs the real binary as a user would: `rerank tokenize` must print exactly the Hugging Face
ids of tests/golden/, `rerank score --json` must print the golden logits (within 1e-4) in
stable descending order, and every kind of bad input must give a clear message on stderr
and the documented exit code (2 bad usage/input, 1 model failure). Standard library only.
Usage: test_cli.py RERANK_BINARY REPO_DIR MODELS_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", file=sys.stderr)


def run(args, stdin=None):
    p = subprocess.run([RERANK] + args, input=stdin, capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def main():
    global RERANK
    RERANK, repo, models = sys.argv[1], sys.argv[2], sys.argv[3]
    model = os.path.join(models, "minilm-l6-bert")
    pairs_path = os.path.join(repo, "tests/golden/minilm-l6-bert/pairs.jsonl")
    tokens_path = os.path.join(repo, "tests/golden/tokens.jsonl")
    if not os.path.isdir(model) or not os.path.exists(pairs_path):
        print("test_cli: skipped: models/minilm-l6-bert or golden pairs missing "
              "(run scripts/make_models.py)")
        return SKIP
    pairs = [json.loads(line) for line in open(pairs_path, encoding="utf-8")]
    by_q = {}
    for p in pairs:
        by_q.setdefault(p["qid"], []).append(p)

    tmp = tempfile.mkdtemp(prefix="rr-cli-")
    # Documents containing a newline can't travel one per line; JSONL carries them.
    n_groups = 0
    max_diff = 0.0
    for qid, group in sorted(by_q.items())[:5]:
        query = group[0]["query"]
        docs = os.path.join(tmp, f"q{qid}.jsonl")
        with open(docs, "w", encoding="utf-8") as f:
            for i, p in enumerate(group):
                f.write(json.dumps({"text": p["doc"], "id": f"d{i}"}) + "\n")
        rc, out, err = run(["tokenize", "--model", model, "--query", query, "--docs", docs])
        check(rc == 0, f"tokenize qid {qid}: rc {rc} {err}")
        lines = [json.loads(x) for x in out.splitlines()]
        check(len(lines) == len(group), f"tokenize qid {qid}: {len(lines)} lines")
        for got, p in zip(lines, group):
            check(got["input_ids"] == p["input_ids"], f"tokenize qid {qid} ids differ")
            check(got["token_type_ids"] == p["token_type_ids"], f"tokenize qid {qid} types differ")

        rc, out, err = run(["score", "--model", model, "--query", query, "--docs", docs, "--json"])
        check(rc == 0, f"score qid {qid}: rc {rc} {err}")
        res = json.loads(out)["results"]
        check(len(res) == len(group), f"score qid {qid}: {len(res)} results")
        for r in res:
            gold = group[r["index"]]["logit"]
            max_diff = max(max_diff, abs(r["logit"] - gold))
            check(r["id"] == f"d{r['index']}", "id echoed")
            check(abs(r["score"] - 1 / (1 + 2.718281828459045 ** -r["logit"])) < 1e-6, "sigmoid")
        keys = [(-r["logit"], r["index"]) for r in res]
        check(keys == sorted(keys), f"score qid {qid}: not stable descending")
        rc, out, _ = run(["score", "--model", model, "--query", query, "--docs", docs,
                          "--json", "--top-n", "3"])
        top = json.loads(out)["results"]
        check(rc == 0 and [r["index"] for r in top] == [r["index"] for r in res[:3]], "top-n 3")
        n_groups += 1
    check(max_diff <= 1e-4, f"CLI logits vs HF: max |diff| {max_diff:.3g} > 1e-4")

    # Plain-text documents and the text table.
    plain = os.path.join(tmp, "plain.txt")
    with open(plain, "w", encoding="utf-8") as f:
        f.write("Berlin is a city.\n\nParis is a city too.\n")
    rc, out, err = run(["score", "--model", model, "--query", "berlin", "--docs", plain])
    check(rc == 0 and "rank" in out and "Paris is a city too." in out, f"table output: {err}")
    rc, out, _ = run(["score", "--model", model, "--query", "berlin", "--json"],
                     stdin=b"one\ntwo\n")
    check(rc == 0 and len(json.loads(out)["results"]) == 2, "documents from stdin, blank skipped")

    # Single-sequence tokenize: [CLS] text [SEP] around the golden ids.
    toks = [json.loads(line) for line in open(tokens_path, encoding="utf-8")]
    short = [t for t in toks if 0 < len(t["ids"]) < 100 and "\n" not in t["text"]
             and "\r" not in t["text"] and t["text"].strip() and not t["text"].startswith("{")][:200]
    docs = os.path.join(tmp, "single.txt")
    with open(docs, "w", encoding="utf-8") as f:
        f.write("".join(t["text"] + "\n" for t in short))
    rc, out, err = run(["tokenize", "--model", model, "--docs", docs])
    got = [json.loads(x)["input_ids"] for x in out.splitlines()]
    check(rc == 0 and len(got) == len(short), f"single tokenize: rc {rc} {err}")
    check(all(g == [101] + t["ids"] + [102] for g, t in zip(got, short)),
          "single-sequence ids == [CLS] + HF ids + [SEP]")

    # Errors: message on stderr, documented exit code, nothing on stdout.
    rc, out, err = run(["score", "--model", model, "--query", "q"], stdin=b"")
    check(rc == 2 and "no documents" in err and out == "", f"empty docs: {rc} {err}")
    rc, out, err = run(["score", "--model", model, "--query", "q"], stdin=b"ok\nbad \xff\xfe\n")
    check(rc == 2 and "UTF-8" in err and "1" in err, f"invalid UTF-8 names the doc: {rc} {err}")
    rc, out, err = run(["score", "--model", os.path.join(tmp, "nope"), "--query", "q"],
                       stdin=b"a\n")
    check(rc == 1 and "nope" in err, f"missing model: {rc} {err}")
    rc, out, err = run(["score", "--model", model, "--query", "q", "--bogus"], stdin=b"a\n")
    check(rc == 2 and "--bogus" in err, f"unknown option: {rc} {err}")
    rc, out, err = run(["score", "--model", model], stdin=b"a\n")
    check(rc == 2 and "--query" in err, f"missing query: {rc} {err}")
    rc, out, err = run(["score", "--model", model, "--query", "q", "--max-length", "4096"],
                       stdin=b"a\n")
    check(rc == 2 and "512" in err, f"max-length over the model: {rc} {err}")
    rc, out, err = run(["score", "--model", model, "--query", "q", "--docs", docs + ".missing"])
    check(rc == 2 and "cannot open" in err, f"missing docs file: {rc} {err}")
    rc, out, err = run(["score", "--model", model, "--query", "q", "--no-truncate"],
                       stdin=b"short\n" + b"word " * 600 + b"\n")
    check(rc == 2 and "1" in err and out == "", f"--no-truncate over-long doc: {rc} {err}")
    rc, out, err = run(["score", "--model", model, "--query", "q"], stdin=b'{"txt": 1}\n')
    check(rc == 2 and "text" in err, f"JSONL without text: {rc} {err}")
    rc, out, err = run(["score", "--model", model, "--query", "q", "--device", "tpu"],
                       stdin=b"a\n")
    check(rc == 2 and "tpu" in err, f"bad device: {rc} {err}")

    # --chunk: the 5k-token golden document (tests/golden/minilm-l6-bert/windows.jsonl) gets
    # HF's best window logit (first 10 windows), and its first / mean by --chunk-score
    wpath = os.path.join(repo, "tests/golden/minilm-l6-bert/windows.jsonl")
    case = [json.loads(line) for line in open(wpath, encoding="utf-8")][0]
    lg = [w["logit"] for w in case["windows"]]
    docs = os.path.join(tmp, "long.jsonl")
    with open(docs, "w", encoding="utf-8") as f:
        f.write(json.dumps({"text": case["doc"]}) + "\n")
    for rule, want in (("max", max(lg)), ("first", lg[0]), ("mean", sum(lg) / len(lg))):
        rc, out, err = run(["score", "--model", model, "--query", case["query"], "--docs", docs,
                            "--json", "--chunk", "--chunk-score", rule])
        got = json.loads(out)["results"][0]["logit"] if rc == 0 else None
        check(rc == 0 and abs(got - want) <= 1e-4, f"--chunk --chunk-score {rule}: {got} vs HF {want}")
    rc, out, err = run(["score", "--model", model, "--query", "q", "--chunk-score", "median"],
                       stdin=b"a\n")
    check(rc == 2 and "median" in err, f"bad --chunk-score: {rc} {err}")

    print(f"test_cli: {n_groups} query groups, max |logit - HF| = {max_diff:.3g}")
    print(f"test_cli: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
