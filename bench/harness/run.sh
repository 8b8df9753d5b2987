#!/usr/bin/env bash
# run.sh — the full benchmark sweep of issue 5: rerankd through gRPC (unary, stream, closed-
# loop concurrency sweep, open loop), the engine in-process, and the peers
# (sentence-transformers, transformers) on the same checkpoint and the same requests, in one
# run. Writes bench/results/<NAME>-<YYYY-MM-DD>.md (report + machine + command) and its PNG
# plots beside it (bench/results/<NAME>-<YYYY-MM-DD>-*.png).
#
# Usage: bench/harness/run.sh                 (CPU; sized to finish in < 10 min on 2 cores)
# Env (defaults in brackets):
#   MODEL [models/minilm-l6-bert]  BUILD_DIR [build-bench]  THREADS [nproc]  DEVICE [cpu]
#   KS [1,10,25,50,100,250,500,1000]  PAIRS_PER_K [200]  MIN_REQ [1]  MAX_REQ [10]
#   WARMUP_PAIRS [100]  STREAM_MAX_K [100]  HF_MAX_K [100]  VALIDATE_MAX_K [50]
#   CONC [1,2,4,8,16,32,64]  SWEEP_K [10]  SWEEP_S [3]  OPEN_S [8]  NAME [harness-cpu]
# Requests per K = PAIRS_PER_K / K within [MIN_REQ, MAX_REQ], after min(2, WARMUP_PAIRS / K)
# untimed ones. On 2 CPU cores (~20-40 pairs/s per side) one K = 1000 request takes ~30 s,
# so the defaults time K >= 250 once per side: raise MIN_REQ where time allows.
# DEVICE=cuda:0 runs the server on the GPU and the peers in fp16 (there: raise PAIRS_PER_K,
# MIN_REQ, STREAM_MAX_K and HF_MAX_K — the CPU defaults only exist to fit the time budget).
# Text: the golden corpus (tests/golden/corpus.py: the Python Language Reference and
# standard-library docstrings shipped inside CPython, offline).
# Needs: .venv-oracle (scripts/setup-oracle.sh), models/ (scripts/make_models.py), gnuplot.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODEL=${MODEL:-models/minilm-l6-bert}
BUILD_DIR=${BUILD_DIR:-build-bench}
THREADS=${THREADS:-$(nproc)}
DEVICE=${DEVICE:-cpu}
KS=${KS:-1,10,25,50,100,250,500,1000}
PAIRS_PER_K=${PAIRS_PER_K:-200}
MIN_REQ=${MIN_REQ:-1}
MAX_REQ=${MAX_REQ:-10}
WARMUP_PAIRS=${WARMUP_PAIRS:-100}
STREAM_MAX_K=${STREAM_MAX_K:-100}
HF_MAX_K=${HF_MAX_K:-100}
VALIDATE_MAX_K=${VALIDATE_MAX_K:-50}
CONC=${CONC:-1,2,4,8,16,32,64}
SWEEP_K=${SWEEP_K:-10}
SWEEP_S=${SWEEP_S:-3}
OPEN_S=${OPEN_S:-8}
NAME=${NAME:-harness-cpu}
PY=.venv-oracle/bin/python
OUT=bench/out/harness
STAMP=$(date -u +%F)
RESULT=bench/results/$NAME-$STAMP.md

[ -x "$PY" ] || { echo "run.sh: $PY missing; run scripts/setup-oracle.sh" >&2; exit 1; }
[ -d "$MODEL" ] || { echo "run.sh: $MODEL missing; run scripts/make_models.py" >&2; exit 1; }
t_start=$(date +%s)
echo "run.sh: building rerankd, rerank-bench, rerank-eval in $BUILD_DIR" >&2
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2 --target rerankd rerank-bench rerank-eval >/dev/null
BENCH="$BUILD_DIR/bench/harness/rerank-bench"
EVAL="$BUILD_DIR/bench/eval/rerank-eval"
RERANKD="$BUILD_DIR/rerankd"
mkdir -p "$OUT" bench/results

# 1. The requests, once, for every side
"$PY" tests/golden/corpus.py prose --bytes 1000000 >"$OUT/prose.txt"
SOURCE="Python documentation shipped inside CPython $("$PY" -c 'import platform; print(platform.python_version())') (tests/golden/corpus.py prose)"
"$BENCH" --model "$MODEL" --text "$OUT/prose.txt" --source "$SOURCE" --k "$KS" \
    --pairs-per-k "$PAIRS_PER_K" --min-requests "$MIN_REQ" --max-requests "$MAX_REQ" \
    --warmup-pairs "$WARMUP_PAIRS" --dump-inputs "$OUT/inputs.json"

# 2. Peers on the same requests (one process at a time: they would share the cores)
peer_device=cpu
case "$DEVICE" in cuda*) peer_device=$DEVICE ;; esac
t0=$(date +%s)
"$PY" bench/peers/peers.py "$OUT/inputs.json" "$MODEL" --out "$OUT/peers.json" \
    --device "$peer_device" --threads "$THREADS" --limit "transformers=$HF_MAX_K" \
    --logits-max-k "$VALIDATE_MAX_K"
t_peers=$(($(date +%s) - t0))

# 3. rerankd, then rerank-bench against it and in-process
"$RERANKD" --model "$MODEL" --device "$DEVICE" --host 127.0.0.1 --port 0 --threads "$THREADS" \
    >"$OUT/rerankd.out" 2>"$OUT/rerankd.log" &
srv=$!
trap 'kill $srv 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
    grep -q '^READY ' "$OUT/rerankd.out" 2>/dev/null && break
    kill -0 $srv 2>/dev/null || { cat "$OUT/rerankd.log" >&2; exit 1; }
    sleep 0.1
done
PORT=$(awk '/^READY /{print $2}' "$OUT/rerankd.out")
[ -n "$PORT" ] || { echo "run.sh: rerankd did not become ready" >&2; exit 1; }
t0=$(date +%s)
inproc_device=cpu
case "$DEVICE" in cuda*) inproc_device=$DEVICE ;; esac
"$BENCH" --target "127.0.0.1:$PORT" --inproc --device "$inproc_device" --threads "$THREADS" --model "$MODEL" \
    --inputs "$OUT/inputs.json" --peers "$OUT/peers.json" --stream-max-k "$STREAM_MAX_K" \
    --validate-max-k "$VALIDATE_MAX_K" \
    --concurrency "$CONC" --sweep-k "$SWEEP_K" --sweep-seconds "$SWEEP_S" \
    --open-seconds "$OPEN_S" --out "$OUT/report"
t_bench=$(($(date +%s) - t0))

# 4. rerank-eval on the committed test collection (a seeded head: the metric values say
#    nothing about reranking quality; the latency per query is real)
"$EVAL" --run tests/bench/data/run-deep.trec --qrels tests/bench/data/qrels.txt \
    --queries tests/bench/data/queries.tsv --corpus tests/bench/data/corpus.jsonl \
    --target "127.0.0.1:$PORT" --k 50 --md "$OUT/eval.md" >/dev/null
kill -TERM $srv
wait $srv || true
trap - EXIT
t_total=$(($(date +%s) - t_start))

cmd="bench/harness/run.sh"
for v in MODEL THREADS DEVICE KS PAIRS_PER_K MIN_REQ MAX_REQ WARMUP_PAIRS STREAM_MAX_K HF_MAX_K VALIDATE_MAX_K CONC SWEEP_K SWEEP_S OPEN_S; do
    def=$(sed -n "s/^$v=\${$v:-\(.*\)}\$/\1/p" "$0")
    [ "${!v}" = "$(eval echo "$def")" ] || cmd="$v=${!v} $cmd"
done
load=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo "<!-- written by bench/harness/run.sh; reproduce with: $cmd -->"
    sed -n '1p' "$OUT/report/report.md"
    echo
    echo "- Command: \`$cmd\` (commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include bench || echo ' + local changes'))"
    echo "- Wall time of the whole run: ${t_total} s (peers ${t_peers} s, rerank-bench ${t_bench} s, incl. builds and model loads); load average at the end: $load"
    echo "- Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) online CPUs, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr); $(cc --version | head -1)"
    echo "- Model: \`$MODEL\` — the real all-MiniLM-L6-v2 encoder with a seeded classifier head"
    echo "  (scripts/make_models.py): the cost of a cross-encoder such as ms-marco-MiniLM-L-6-v2,"
    echo "  not a trained reranker — the rerank-eval numbers below test the plumbing, not quality"
    sed -n '2,$p' "$OUT/report/report.md" | sed '/^# /d; /^Plots:/d; /^- Machine:/d'
    echo
    echo "## rerank-eval on tests/bench/data (run-deep.trec, top 50, seeded head)"
    echo
    cat "$OUT/eval.md"
    echo
    echo "## Plots"
    echo
    echo "![latency vs K]($NAME-$STAMP-latency_k.png)"
    echo "![throughput vs concurrency]($NAME-$STAMP-concurrency.png)"
} >"$RESULT.tmp"
mv "$RESULT.tmp" "$RESULT"
for p in latency_k concurrency; do
    [ -f "$OUT/report/$p.png" ] && cp "$OUT/report/$p.png" "bench/results/$NAME-$STAMP-$p.png"
done
cp "$OUT/report/report.json" "bench/results/$NAME-$STAMP.json"
echo "run.sh: wrote $RESULT (+ .json, .png) in ${t_total} s" >&2
