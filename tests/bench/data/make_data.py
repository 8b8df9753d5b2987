#!/usr/bin/env python3
"""make_data.py — writes the small test collection of tests/bench (committed; rerun only to
change it): 60 passages of the Python Language Reference (tests/golden/corpus.py, stdlib
only) as a BEIR-style corpus.jsonl, 8 queries (queries.tsv), graded qrels (0-3) and two
first-stage runs with seeded random scores.

Built to exercise the metric definitions: tied scores (trec_eval breaks ties by docid,
descending), rank columns that disagree with the scores, unjudged retrieved documents,
relevant documents not retrieved, a query whose judgments are all 0, a query of the run
without judgments (not evaluated), a judged query absent from the run, runs deeper and
shallower than the cutoffs, and docids whose string order differs from their numeric order.
"""
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "golden"))
import corpus  # noqa: E402

rng = random.Random(7)
passages = [p for p in corpus.topic_passages() if 30 <= len(p.split()) <= 120][:60]
docids = ["d%d" % i for i in range(len(passages))]
with open(os.path.join(HERE, "corpus.jsonl"), "w") as f:
    for i, (d, p) in enumerate(zip(docids, passages)):
        words = p.split()
        f.write(json.dumps({"_id": d, "title": " ".join(words[:3]) if i % 3 == 0 else "",
                            "text": " ".join(words[3:] if i % 3 == 0 else words)}) + "\n")

queries = {}
qrels = []
for qi in range(8):
    qid = "q%d" % (qi + 1)
    src = rng.randrange(len(passages))
    words = passages[src].split()
    start = rng.randrange(max(1, len(words) - 10))
    queries[qid] = " ".join(words[start:start + rng.randint(5, 12)])
    if qid == "q7":
        continue  # in the run, not judged
    judged = rng.sample(range(len(passages)), 12)
    for j in judged:
        rel = 0 if qid == "q5" else rng.choice([0, 0, 1, 1, 2, 3])
        qrels.append((qid, docids[j], rel))
    if qid != "q5":
        qrels.append((qid, docids[src], 3))
qrels.append(("q9", "d1", 2))  # judged, never retrieved

with open(os.path.join(HERE, "queries.tsv"), "w") as f:
    for qid, text in queries.items():
        f.write("%s\t%s\n" % (qid, text))
with open(os.path.join(HERE, "qrels.txt"), "w") as f:
    seen = set()
    for qid, d, rel in qrels:
        if (qid, d) not in seen:
            seen.add((qid, d))
            f.write("%s 0 %s %d\n" % (qid, d, rel))


def write_run(name, depth_lo, depth_hi, tie_every):
    with open(os.path.join(HERE, name), "w") as f:
        for qid in queries:
            depth = rng.randint(depth_lo, depth_hi)
            docs = rng.sample(docids, depth)
            scores = [round(rng.uniform(0, 10), 2) for _ in docs]
            for i in range(0, depth, tie_every):
                scores[i] = 5.0  # ties across the list
            ranks = list(range(1, depth + 1))
            rng.shuffle(ranks)  # the rank column is ignored by trec_eval
            for d, s, r in zip(docs, scores, ranks):
                f.write("%s Q0 %s %d %s first-stage\n" % (qid, d, r, s))


write_run("run.trec", 8, 40, 4)
write_run("run-deep.trec", 40, 60, 3)
