#!/usr/bin/env bash
# quickstart.sh — the README's first command: installs what is needed (scripts/setup.sh),
# builds, prepares the default test model and runs the main job on it: ranks the sample
# passages in samples/ for the sample query.
#
# The default model (models/minilm-l6-bert) is the real all-MiniLM-L6-v2 encoder with a
# SEEDED, UNTRAINED classification head: its scores are exact (tests compare them with
# Hugging Face) but its ranking is not a trained reranker's. For real rankings point
# --model at a trained cross-encoder folder (README: "Using a real model").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MODEL=${MODEL:-models/minilm-l6-bert}
echo
echo "== rerank score on $MODEL (seeded head: exact scores, NOT a trained ranking)"
build/rerank score --model "$MODEL" --query "$(cat samples/query.txt)" --docs samples/passages.txt
