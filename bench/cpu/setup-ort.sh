#!/usr/bin/env bash
# setup-ort.sh — the ONNX Runtime peer of the CPU benchmark (bench/cpu/ort_peer.py): makes
# .venv-ort (onnxruntime, onnx, numpy, tokenizers from PyPI; no torch) and, from
# MODEL (default models/minilm-l6-bert), the three graphs ort_peer.py runs, cached in
# bench/out/ort/<model name>/:
#   model.onnx        torch.onnx.export of the HF model (opset 17, dynamic batch and sequence)
#   fused.onnx        onnxruntime.transformers.optimizer.optimize_model(model_type="bert"):
#                     attention, LayerNorm, GELU and bias fusions (what ORT users deploy)
#   int8.onnx         quantize_dynamic(fused.onnx, weight_type=QInt8): int8 weights,
#                     activations quantized per call
#   int8pc.onnx       the same with per_channel=True (per output channel, as rerankd's int8)
# The export runs in .venv-oracle (scripts/setup-oracle.sh), the only venv with torch: PyPI
# has no CPU-only torch wheel, and the one in .venv-oracle is enough. Re-running reuses the
# venv and rebuilds a graph only when it is missing. CI never runs this (.ci/run and
# scripts/test.sh need neither torch nor onnxruntime).
set -euo pipefail
cd "$(dirname "$0")/../.."

MODEL=${MODEL:-models/minilm-l6-bert}
VENV=.venv-ort
OUT=bench/out/ort/$(basename "$MODEL")
ORACLE=.venv-oracle/bin/python

[ -x "$ORACLE" ] || { echo "setup-ort.sh: $ORACLE missing; run scripts/setup-oracle.sh" >&2; exit 1; }
[ -d "$MODEL" ] || { echo "setup-ort.sh: $MODEL missing; run scripts/make_models.py" >&2; exit 1; }

# The same interpreter as .venv-oracle: the export borrows .venv-ort's `onnx` (a compiled
# extension) into .venv-oracle, and the driver cuts its workloads from corpus.py, whose text
# depends on the Python version.
if [ ! -x "$VENV/bin/python" ]; then
    "$ORACLE" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
fi
# The optimizer (onnxruntime.transformers) imports onnx and, for its fusions, sympy+packaging.
"$VENV/bin/pip" install -q onnxruntime onnx numpy tokenizers packaging sympy coloredlogs

mkdir -p "$OUT"
PYTHONPATH= "$ORACLE" bench/cpu/ort_export.py export "$MODEL" "$OUT/model.onnx"
"$VENV/bin/python" bench/cpu/ort_export.py optimize "$MODEL" "$OUT"
echo "setup-ort.sh: $VENV ready; graphs in $OUT: $(cd "$OUT" && ls *.onnx | tr '\n' ' ')"
