#!/bin/sh
# run.sh — ctest entry of the server tests: runs a Python test script with the project's
# .venv interpreter, or reports "skipped" (exit 77) when that venv or valgrind is missing.
# Usage: run.sh PYTHON SCRIPT ARGS...
py="$1"
shift
if [ ! -x "$py" ]; then
    echo "server test: skipped: $py not found (scripts/setup.sh creates .venv)"
    exit 77
fi
case " $* " in
*" --valgrind "*)
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "server test: skipped: valgrind not installed"
        exit 77
    fi
    ;;
esac
exec "$py" "$@"
