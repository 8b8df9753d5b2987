#!/usr/bin/env bash
# run.sh — the CPU benchmark: librerank (rr-bench-cpu) against Hugging Face (peer.py) on the
# same inputs, validated before timed. Usage: bench/cpu/run.sh [N_THREADS] (default: nproc).
#
# Inputs come from the golden corpus (tests/golden/corpus.py): ~1 MB of English prose (the
# Python docs, one passage a line) for the tokenizers, and 512 pairs of ~16-token queries ×
# ~100-token passages for the engines. Prints a Markdown table with ratios (ours / HF) and
# writes it, with the machine described, to bench/results/cpu-<YYYY-MM-DD>.md.
# Needs: .venv-oracle (scripts/setup-oracle.sh), models/ (scripts/make_models.py).
# Env: MODEL (default models/minilm-l6-bert), BUILD_DIR (default build-bench), REPEATS (5),
# N_PAIRS (512).
# The end-to-end comparison with ONNX Runtime (fused fp32, int8) and PyTorch — text in,
# logits out, per request, interleaved rounds — is bench/cpu/compare.py (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

N_THREADS=${1:-$(nproc)}
MODEL=${MODEL:-models/minilm-l6-bert}
BUILD_DIR=${BUILD_DIR:-build-bench}
REPEATS=${REPEATS:-5}
N_PAIRS=${N_PAIRS:-512}
PY=.venv-oracle/bin/python
OUT=bench/out/cpu
RESULT=bench/results/cpu-$(date -u +%F).md

[ -x "$PY" ] || { echo "run.sh: $PY missing; run scripts/setup-oracle.sh" >&2; exit 1; }
[ -d "$MODEL" ] || { echo "run.sh: $MODEL missing; run scripts/make_models.py" >&2; exit 1; }
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2 --target rr-bench-cpu >/dev/null
BENCH="$BUILD_DIR/bench/cpu/rr-bench-cpu"

mkdir -p "$OUT" bench/results
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
"$PY" tests/golden/corpus.py prose --bytes 1000000 >"$OUT/prose.txt"
"$PY" tests/golden/corpus.py pairs --n "$N_PAIRS" >"$OUT/pairs-in.jsonl"

# Each side prints a final "RESULT kind key=value ..." line; field NAME prints one value.
field() { sed -n "s/.*[ ]$2=\([^ ]*\).*/\1/p" <<<"$1" | tail -1; }
run() { echo "+ $*" >&2; "$@" | tee -a /dev/stderr | grep '^RESULT' | tail -1; }

hf_tok=$(run "$PY" bench/cpu/peer.py tokenize "$MODEL" "$OUT/prose.txt" "$OUT/prose.ref" \
    --repeats "$REPEATS")
rr_tok=$(run "$BENCH" tokenize "$MODEL" "$OUT/prose.txt" "$OUT/prose.ref" "$REPEATS")
hf_eng=$(run "$PY" bench/cpu/peer.py engine "$MODEL" "$OUT/pairs-in.jsonl" "$OUT/pairs.jsonl" \
    "$N_THREADS" --repeats "$REPEATS")
rr_eng=$(run "$BENCH" engine "$MODEL" "$OUT/pairs.jsonl" "$N_THREADS" "$REPEATS")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
tok_ratio=$(ratio "$(field "$rr_tok" mb_s)" "$(field "$hf_tok" mb_s)")
eng_ratio=$(ratio "$(field "$rr_eng" pairs_s)" "$(field "$hf_eng" pairs_s)")
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "met" : "NOT met") }'; }

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
versions=$("$PY" -c 'import torch, transformers, tokenizers, platform
print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
      f"tokenizers {tokenizers.__version__}, Python {platform.python_version()}")')

{
    echo "# CPU benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- Machine: $cpu, $(nproc) online CPUs; $(uname -sr)"
    echo "- Load average (1/5/15 min) at start: $load_start, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    awk -v l="${load_start%% *}" -v n="$(nproc)" 'BEGIN { if (l > 0.5 * n)
        print "  **The machine was shared with other jobs: the numbers are indicative only.**" }'
    echo "- rerankd: commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include || echo ' (+ local changes)'),"
    echo "  $(cc --version | head -1), OpenBLAS $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo '?')"
    echo "- Hugging Face: $versions"
    echo "- Model: $MODEL; best of $REPEATS timed passes after a warm-up (median in brackets)"
    echo "- Tokenizer input: $(field "$rr_tok" bytes) bytes, $(field "$rr_tok" tokens) tokens,"
    echo "  $(wc -l <"$OUT/prose.txt") lines, single thread; HF's faster of encode() loop /"
    echo "  encode_batch() was $(field "$hf_tok" method)"
    echo "- Engine input: $(field "$rr_eng" pairs) pairs, $(field "$rr_eng" tokens) tokens,"
    echo "  batches of 32; HF pads each batch to its longest pair (as CrossEncoder), rerankd packs"
    echo "  them unpadded; only the forward pass is timed on both sides"
    echo
    echo "| benchmark | rerankd | Hugging Face | ours / HF | target |"
    echo "|---|---|---|---|---|"
    printf '| tokenizer, 1 thread | %s MB/s (%s tok/s) [%s s] | %s MB/s (%s tok/s) [%s s] | %s× | ≥ 2× (%s) |\n' \
        "$(field "$rr_tok" mb_s)" "$(field "$rr_tok" tok_s)" "$(field "$rr_tok" median_s)" \
        "$(field "$hf_tok" mb_s)" "$(field "$hf_tok" tok_s)" "$(field "$hf_tok" median_s)" \
        "$tok_ratio" "$(verdict "$tok_ratio" 2)"
    printf '| engine fp32, %s threads | %s pairs/s [%s s] | %s pairs/s [%s s] | %s× | ≥ 1.0× (%s) |\n' \
        "$N_THREADS" "$(field "$rr_eng" pairs_s)" "$(field "$rr_eng" median_s)" \
        "$(field "$hf_eng" pairs_s)" "$(field "$hf_eng" median_s)" "$eng_ratio" \
        "$(verdict "$eng_ratio" 1)"
} >"$RESULT.tmp"
mv "$RESULT.tmp" "$RESULT"
echo
cat "$RESULT"
echo
echo "run.sh: wrote $RESULT"
