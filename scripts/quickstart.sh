#!/usr/bin/env bash
# quickstart.sh — the README's first command: installs what is needed (scripts/setup.sh),
# builds, prepares the default test model, then runs the main job: starts rerankd on it,
# ranks the sample passages in samples/ for the sample query over gRPC with a real client
# (tests/server/client.py, grpcio), and stops the server with SIGTERM.
#
# The default model (models/minilm-l6-bert) is the real all-MiniLM-L6-v2 encoder with a
# SEEDED, UNTRAINED classification head: its scores are exact (tests compare them with
# Hugging Face) but its ranking is not a trained reranker's. For real rankings point
# MODEL=... at a trained cross-encoder folder (README: "Using a real model").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MODEL=${MODEL:-models/minilm-l6-bert}

tmp=$(mktemp -d)
build/rerankd --model "$MODEL" --host 127.0.0.1 --port 0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 600); do
    grep -q '^READY' "$tmp/out" && break
    kill -0 $pid 2>/dev/null || { cat "$tmp/err" >&2; exit 1; }
    sleep 0.1
done
port=$(sed -n 's/^READY \([0-9]*\).*/\1/p' "$tmp/out")
[ -n "$port" ] || { echo "quickstart: rerankd did not become ready" >&2; cat "$tmp/err" >&2; exit 1; }

echo
echo "== rerankd on $MODEL, 127.0.0.1:$port — one Rerank call over gRPC"
echo "   (seeded head: exact scores, NOT a trained reranker's ranking)"
mapfile -t docs <samples/passages.txt
.venv/bin/python tests/server/client.py --addr "127.0.0.1:$port" --gen-dir build/client-gen \
    --query "$(cat samples/query.txt)" "${docs[@]}"
kill -TERM $pid
wait $pid && echo "rerankd stopped cleanly (SIGTERM, exit 0)"
trap 'rm -rf "$tmp"' EXIT
