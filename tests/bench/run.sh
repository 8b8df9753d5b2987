#!/bin/sh
# run.sh — ctest entry of the bench tests: runs a Python test script with the project's .venv
# interpreter, or reports "skipped" (exit 77) when that venv is missing.
# Usage: run.sh PYTHON SCRIPT ARGS...
py="$1"
shift
if [ ! -x "$py" ]; then
    echo "bench test: skipped: $py not found (scripts/setup.sh creates .venv)"
    exit 77
fi
exec "$py" "$@"
