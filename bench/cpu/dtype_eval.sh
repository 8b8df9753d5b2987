#!/usr/bin/env bash
# dtype_eval.sh — what --dtype int8 / bf16 cost in ranking quality, measured with rerank-eval:
# for each precision a rerankd (CPU, MODEL) reranks the top K of a first-stage run of a
# collection, and the reranked runs are compared with f32's: nDCG@10 and MRR@10 of each
# (against the qrels), and per query Kendall τ-b and top-10 agreement with f32's order.
#
#   bench/cpu/dtype_eval.sh [MODEL] [DATA_DIR] [K]
#
# Defaults: models/minilm-l6-bert, tests/bench/data (the committed 8-query test collection:
# 60 Python-reference passages, graded qrels, run-deep.trec), K 100. Another collection: a
# folder with queries.tsv, corpus.jsonl, qrels.txt and a run (RUN=file). The default model's
# head is seeded, not trained, so its nDCG says nothing about reranking quality; the
# agreement with f32 is what this measures. bf16 rows appear only on CPUs with AVX512-BF16.
# Needs a build (BUILD_DIR, default build) with rerankd and rerank-eval.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-models/minilm-l6-bert}
DATA=${2:-tests/bench/data}
K=${3:-100}
RUN=${RUN:-$DATA/run-deep.trec}
BUILD_DIR=${BUILD_DIR:-build}
OUT=bench/out/dtype-eval
mkdir -p "$OUT"

for dt in f32 bf16 int8; do
    log="$OUT/rerankd-$dt.log"
    "$BUILD_DIR/rerankd" --model "$MODEL" --device cpu --dtype "$dt" --port 0 >"$log" 2>&1 &
    pid=$!
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$log")
        [ -n "$port" ] || ! kill -0 "$pid" 2>/dev/null && break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "dtype_eval: $dt: rerankd did not start: $(tail -1 "$log")"
        continue
    fi
    "$BUILD_DIR/bench/eval/rerank-eval" --run "$RUN" --qrels "$DATA/qrels.txt" --queries "$DATA/queries.tsv" \
        --corpus "$DATA/corpus.jsonl" --target "127.0.0.1:$port" --k "$K" \
        --out-run "$OUT/run-$dt.trec" --json "$OUT/eval-$dt.json" >/dev/null
    kill "$pid"
    wait "$pid" || true
done

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]

def run(path):
    q = {}
    for line in open(path):
        qid, _, doc, _, score, _ = line.split()
        q.setdefault(qid, {})[doc] = float(score)
    return q

def tau(a, b):
    keys = sorted(a)
    c = d = ta = tb = 0
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            x = a[keys[i]] - a[keys[j]]
            y = b[keys[i]] - b[keys[j]]
            if x == 0 and y == 0:
                continue
            if x == 0:
                ta += 1
            elif y == 0:
                tb += 1
            elif (x > 0) == (y > 0):
                c += 1
            else:
                d += 1
    den = ((c + d + ta) * (c + d + tb)) ** 0.5
    return (c - d) / den if den else 1.0

def top(a, k=10):
    return set(sorted(a, key=lambda x: -a[x])[:k])

ref = run(os.path.join(out, "run-f32.trec"))
print("| dtype | nDCG@10 | MRR@10 | mean Kendall τ-b vs f32 | min τ | top-10 agreement vs f32 | max |Δlogit| vs f32 |")
print("|---|---|---|---|---|---|---|")
for dt in ("f32", "bf16", "int8"):
    p = os.path.join(out, "run-%s.trec" % dt)
    if not os.path.exists(p):
        print("| %s | not available on this CPU | | | | | |" % dt)
        continue
    r = run(p)
    e = json.load(open(os.path.join(out, "eval-%s.json" % dt)))
    taus = [tau(r[q], ref[q]) for q in ref]
    agree = [len(top(r[q]) & top(ref[q])) / min(10, len(ref[q])) for q in ref]
    dmax = max(abs(r[q][d] - ref[q][d]) for q in ref for d in ref[q])
    print("| %s | %.4f | %.4f | %.4f | %.3f | %.3f | %.4f |" % (
        dt, e["after"]["ndcg_cut_10"], e["after"]["recip_rank_10"], sum(taus) / len(taus),
        min(taus), sum(agree) / len(agree), dmax))
PY
