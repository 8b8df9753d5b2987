#!/usr/bin/env bash
# run.sh — 3 rerankd replicas behind client-side round_robin and behind HAProxy, against 1
# replica; then one replica SIGKILLed mid-run and restarted (bench/replicas/replicas.py says
# what is measured). About 3 minutes, bounded by `timeout`. Needs a Release build
# (BUILD_DIR, default build/), .venv and models/ (scripts/setup.sh); haproxy (Debian package)
# for the HAProxy rows, which are left out without it.
#   bench/replicas/run.sh [extra replicas.py args, e.g. --seconds 30 --conc 8]
# Prints the Markdown tables; the raw numbers go to bench/out/replicas.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
MODEL=${MODEL:-models/minilm-l6-bert}
[ -x "$BUILD_DIR/rerankd" ] || { echo "replicas: no $BUILD_DIR/rerankd (build first)"; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "replicas: no $MODEL (scripts/setup.sh)"; exit 1; }
command -v haproxy >/dev/null || echo "replicas: haproxy not installed: client round_robin rows only"
mkdir -p bench/out
exec timeout 600 .venv/bin/python bench/replicas/replicas.py --rerankd "$BUILD_DIR/rerankd" --model "$MODEL" \
    --gen-dir "$BUILD_DIR/bench-gen" --json bench/out/replicas.json "$@"
