#!/usr/bin/env bash
# format.sh — the house formatting (.clang-format, clang-format 14 from Debian) on every C,
# C++ and CUDA source of the repository; tools own formatting (style.md habit 11).
#
#     bash scripts/format.sh           # rewrite the files in place
#     bash scripts/format.sh --check   # list the files that differ, exit 1 if any (CI)
#
# Generated files are left as their generator writes them (unicode_tables.c: the tokenizer
# tests compare it with tools/gen_unicode_tables.py's output).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
CF=$(command -v clang-format || command -v clang-format-14) || {
    echo "format: clang-format not found (apt-get install clang-format)" >&2
    exit 2
}
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cu' '*.cuh' '*.cpp' | grep -v '^src/tokenizer/unicode_tables\.c$')
if [ "${1:-}" = "--check" ]; then
    bad=()
    for f in "${files[@]}"; do
        "$CF" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done
    if [ ${#bad[@]} -gt 0 ]; then
        printf 'format: %s differs from clang-format (bash scripts/format.sh)\n' "${bad[@]}"
        exit 1
    fi
    echo "format: ${#files[@]} files formatted as .clang-format says"
    exit 0
fi
"$CF" -i "${files[@]}"
