#!/usr/bin/env bash
# tokenizers.sh — both tokenizers rerankd runs against Hugging Face's `tokenizers` (Rust), one
# thread, on the same texts, validated before timed (token counts and an FNV-1a hash of every
# line's ids must match; bench/cpu/peer.py and rr-bench-cpu `tokenize`):
#   WordPiece  models/minilm-l6-bert (BERT, ms-marco MiniLM layout)
#   Unigram    models/xlmr-small     (XLM-R, bge-reranker layout; the tokenizer.json pipeline,
#                                     RERANK_TOKENIZER_PIPELINE=file, which is what the Rust
#                                     library runs)
# on two inputs: ~1 MB of English prose (tests/golden/corpus.py prose) and the 708
# multilingual texts of tests/golden/xlmr_tokens.jsonl (CJK, Thai, Arabic, Hindi, Cyrillic,
# emoji, combining marks, compatibility characters; one line each). Each cell is run ROUNDS
# times alternating ours and HF, and the best of REPEATS passes of each run is kept (shared
# machines drift). Writes bench/results/tokenizers-<YYYY-MM-DD>.md.
# Needs .venv-oracle (scripts/setup-oracle.sh) and models/ (scripts/make_models.py).
# Env: BUILD_DIR (default build-bench), REPEATS (5), ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD_DIR=${BUILD_DIR:-build-bench}
REPEATS=${REPEATS:-5}
ROUNDS=${ROUNDS:-3}
PY=.venv-oracle/bin/python
OUT=bench/out/tok
RESULT=bench/results/tokenizers-$(date -u +%F).md
export TOKENIZERS_PARALLELISM=false RERANK_TOKENIZER_PIPELINE=file

[ -x "$PY" ] || { echo "tokenizers.sh: $PY missing; run scripts/setup-oracle.sh" >&2; exit 1; }
for m in minilm-l6-bert xlmr-small; do
    [ -d "models/$m" ] || { echo "tokenizers.sh: models/$m missing; run scripts/make_models.py" >&2; exit 1; }
done
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2 --target rr-bench-cpu >/dev/null
BENCH="$BUILD_DIR/bench/cpu/rr-bench-cpu"

mkdir -p "$OUT" bench/results
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
"$PY" tests/golden/corpus.py prose --bytes 1000000 >"$OUT/prose.txt"
"$PY" - "$OUT/multilingual.txt" <<'PYEOF'
import json, sys
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for line in open("tests/golden/xlmr_tokens.jsonl", encoding="utf-8"):
        t = json.loads(line)["text"]
        # one text per line: line breaks inside a text become spaces, empty texts are left out
        t = " ".join(t.splitlines())
        if t.strip():
            out.write(t + "\n")
PYEOF

field() { sed -n "s/.*[ ]$2=\([^ ]*\).*/\1/p" <<<"$1" | tail -1; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a > b) ? a : b }'; }
rows=""
for m in minilm-l6-bert xlmr-small; do
    for input in prose multilingual; do
        ours="" hf="" bytes="" toks=""
        for r in $(seq "$ROUNDS"); do
            h=$("$PY" bench/cpu/peer.py tokenize "models/$m" "$OUT/$input.txt" "$OUT/$m-$input.ref" \
                --repeats "$REPEATS" | grep '^RESULT' | tail -1)
            o=$("$BENCH" tokenize "models/$m" "$OUT/$input.txt" "$OUT/$m-$input.ref" "$REPEATS" |
                grep '^RESULT' | tail -1)
            hf=$(best "$(field "$h" mb_s)" "$hf")
            ours=$(best "$(field "$o" mb_s)" "$ours")
            bytes=$(field "$o" bytes)
            toks=$(field "$o" tokens)
        done
        ratio=$(awk -v a="$ours" -v b="$hf" 'BEGIN { printf "%.1f", a / b }')
        rows+="| $m | $input ($bytes bytes, $toks tokens) | $ours | $hf | ${ratio}× |"$'\n'
        echo "$m $input: ours $ours MB/s, HF $hf MB/s, ${ratio}×" >&2
    done
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
versions=$("$PY" -c 'import tokenizers, platform
print(f"tokenizers {tokenizers.__version__}, Python {platform.python_version()}")')
{
    echo "# Tokenizers, single thread, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- Machine: $cpu, $(nproc) online CPUs; load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- rerankd: commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include || echo ' (+ local changes)'); Hugging Face: $versions"
    echo "- Best of $REPEATS passes per run, best of $ROUNDS runs alternating ours and HF; every line's ids validated equal first"
    echo "- HF: the faster of an encode() loop and encode_batch() on one thread (TOKENIZERS_PARALLELISM=false)"
    echo
    echo "| tokenizer | input | rerankd MB/s | HF tokenizers MB/s | ours / HF |"
    echo "|---|---|---|---|---|"
    printf '%s' "$rows"
} >"$RESULT"
cat "$RESULT"
echo "tokenizers.sh: wrote $RESULT"
