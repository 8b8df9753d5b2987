#!/usr/bin/env bash
# setup-oracle.sh — creates .venv-oracle, the Hugging Face reference (torch CPU, transformers,
# sentence-transformers, tokenizers) that writes tests/golden/ and drives the Python peers in
# bench/. CI never needs it. Idempotent: an existing venv that already imports everything
# is reused (it may have been made by hand); it is (re)installed only when an import fails
# or scripts/requirements-oracle.txt changed since the last install by this script.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-oracle
REQ=scripts/requirements-oracle.txt
PROBE='import torch, transformers, sentence_transformers, tokenizers, safetensors, numpy'
# make_golden_xlmr.py's converter check needs these two.
PROBE="$PROBE; import sentencepiece, google.protobuf"

up_to_date() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" -c "$PROBE" 2>/dev/null || return 1
    # A stamp from this script must match; a hand-made venv without a stamp is accepted.
    [ ! -f "$VENV/.requirements.txt" ] || cmp -s "$REQ" "$VENV/.requirements.txt"
}

if up_to_date; then
    echo "setup-oracle: $VENV is ready"
else
    echo "setup-oracle: installing $VENV from $REQ (torch and its CUDA wheels: several GB)"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -r "$REQ"
    "$VENV/bin/python" -c "$PROBE"
    cp "$REQ" "$VENV/.requirements.txt"
fi
"$VENV/bin/python" -c 'import torch, transformers, sentence_transformers, tokenizers
print("setup-oracle: torch", torch.__version__, "transformers", transformers.__version__,
      "sentence-transformers", sentence_transformers.__version__, "tokenizers", tokenizers.__version__)'
