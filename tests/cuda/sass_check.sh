#!/usr/bin/env bash
# sass_check.sh — checks the machine code (SASS) of the built CUDA kernels, per kernel and
# per architecture, for properties that no CPU test can see and that a GPU run would only
# show as lost speed:
#   - no local memory: cuobjdump's resource usage reports LOCAL:0 and STACK:0 (what ptxas
#     -v calls stack frame / spills) and the SASS has no LDL/STL;
#   - tensor cores in attention: every attention kernel has HMMA (sm_80…sm_90 spell both
#     wmma and mma.sync so; HGMMA, sm_90's warpgroup MMA, counts too);
#   - 16-byte accesses in the memory-bound kernels: every instance of the vector paths of
#     LayerNorm, embedding+LN and bias+GELU/bias has a 128-bit global load and store
#     (LDG.E.128 / STG.E.128 with any modifiers), the head's dense kernel a 128-bit load,
#     and none of them a 16- or 8-bit global access (one scalar element access left in a
#     vector path — e.g. a load the compiler could not prove aligned — fails).
# It prints one table row per (kernel, arch), also into $SASS_CHECK_TABLE when set (ctest
# sets it to tests/cuda/sass_check.txt of the build; scripts/test.sh shows that file in the
# CI log, since ctest shows a passing test's output only with -V).
#
# Usage: sass_check.sh <librerank_cuda.a or .o/.cubin …>
# Exit: 0 all hold, 1 a check failed, 77 skipped (no library — the CUDA engine is not built,
# as in the sanitizer build — or no cuobjdump/nvdisasm). The tools come from NVIDIA's PyPI
# wheels nvidia-cuda-cuobjdump / nvidia-cuda-nvdisasm, which scripts/setup.sh installs into
# .venv (the toolkit here ships neither); $CUDA_HOME/bin and PATH are searched first.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ $# -lt 1 ] || [ -z "$1" ] || [ ! -f "$1" ]; then
    echo "skipped: no CUDA kernel library given (the CUDA engine is not built here)"
    exit 77
fi

# cuobjdump runs nvdisasm for -sass; both must be found, in the same places.
tool_dirs=()
for t in cuobjdump nvdisasm; do
    p=$(command -v "$t" 2>/dev/null) && tool_dirs+=("$(dirname "$p")")
done
for d in "${CUDA_HOME:-/usr/local/cuda}/bin" "$root"/.venv/lib/python3*/site-packages/nvidia/cu*/bin; do
    [ -d "$d" ] && tool_dirs+=("$d")
done
cuobjdump="" nvdisasm=""
for d in "${tool_dirs[@]}"; do
    [ -z "$cuobjdump" ] && [ -x "$d/cuobjdump" ] && cuobjdump=$d/cuobjdump
    [ -z "$nvdisasm" ] && [ -x "$d/nvdisasm" ] && nvdisasm=$d/nvdisasm
done
if [ -z "$cuobjdump" ] || [ -z "$nvdisasm" ]; then
    echo "skipped: cuobjdump or nvdisasm not found (PATH, \$CUDA_HOME/bin, .venv: scripts/setup.sh installs them)"
    exit 77
fi
export PATH="$(dirname "$nvdisasm"):$PATH" NVDISASM_PATH="$(dirname "$nvdisasm")"
demangle=cat
command -v c++filt >/dev/null 2>&1 && demangle=c++filt

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! "$cuobjdump" -res-usage "$@" >"$tmp/res.txt" 2>"$tmp/err.txt" ||
    ! "$cuobjdump" -sass "$@" >"$tmp/sass.txt" 2>>"$tmp/err.txt"; then
    echo "FAIL: cuobjdump failed on $*:"
    cat "$tmp/err.txt"
    exit 1
fi

# Resource usage: arch <tab> mangled name <tab> REG <tab> STACK <tab> LOCAL.
awk '
    /arch = sm_/ { arch = $3 }
    /^[ \t]*Function / { fn = $2; sub(/:$/, "", fn) }
    /REG:[0-9]+/ {
        reg = stack = local = "?"
        for (i = 1; i <= NF; i++) {
            split($i, kv, ":")
            if (kv[1] == "REG") reg = kv[2]
            if (kv[1] == "STACK") stack = kv[2]
            if (kv[1] == "LOCAL") local = kv[2]
        }
        print arch "\t" fn "\t" reg "\t" stack "\t" local
    }' "$tmp/res.txt" | sort -u >"$tmp/res.tsv"

# SASS counts: arch <tab> mangled name <tab> LDL+STL <tab> HMMA <tab> LDG.128 <tab> STG.128
# <tab> 8/16-bit LDG+STG.
awk '
    function flush() { if (fn != "") print arch "\t" fn "\t" loc "\t" mma "\t" ld "\t" st "\t" nar }
    /code for sm_/ { flush(); fn = ""; arch = $3 }
    /^[ \t]*Function : / { flush(); fn = $3; loc = mma = ld = st = nar = 0 }
    fn != "" && /[ \t](LDG|STG)(\.[A-Z0-9_]+)*\.[US](8|16)[ .\t]/ { nar++ }
    fn != "" && /[ \t](LDL|STL)(\.[A-Z0-9_]+)*[ \t]/ { loc++ }
    fn != "" && /[ \t]H(G)?MMA\./ { mma++ }
    fn != "" && /[ \t]LDG(\.[A-Z0-9_]+)*\.128[ .\t]/ { ld++ }
    fn != "" && /[ \t]STG(\.[A-Z0-9_]+)*\.128[ .\t]/ { st++ }
    END { flush() }' "$tmp/sass.txt" | sort -u >"$tmp/sass.tsv"

if [ ! -s "$tmp/res.tsv" ] || [ ! -s "$tmp/sass.tsv" ]; then
    echo "FAIL: no kernel found in $* (cuobjdump output not understood)"
    exit 1
fi

join -t "$(printf '\t')" -a 1 -a 2 -e "?" -o 0,1.2,1.3,1.4,2.2,2.3,2.4,2.5,2.6 \
    <(awk -F'\t' '{print $1 "|" $2 "\t" $3 "\t" $4 "\t" $5}' "$tmp/res.tsv" | sort -t "$(printf '\t')" -k1,1) \
    <(awk -F'\t' '{print $1 "|" $2 "\t" $3 "\t" $4 "\t" $5 "\t" $6 "\t" $7}' "$tmp/sass.tsv" | sort -t "$(printf '\t')" -k1,1) \
    >"$tmp/joined.tsv"
cut -f1 "$tmp/joined.tsv" | cut -d'|' -f2 | "$demangle" >"$tmp/names.txt"
paste "$tmp/joined.tsv" "$tmp/names.txt" >"$tmp/all.tsv"

# Columns of all.tsv: 1 arch|mangled, 2 reg, 3 stack, 4 local, 5 LDL/STL, 6 HMMA, 7 LDG.128,
# 8 STG.128, 9 8/16-bit LDG+STG, 10 demangled ("?" where one dump lacks the kernel).
awk -F'\t' '
    function base(n,   b) {
        b = n
        sub(/^void /, "", b)
        sub(/\(.*$/, "", b)
        return b
    }
    function stem(n,   s) {
        s = base(n)
        sub(/<.*$/, "", s)
        return s
    }
    function bad(msg) { problems = problems "\n  " msg; nbad++ }
    {
        split($1, key, "|")
        arch = key[1]; name = base($10); s = stem($10)
        archs[arch] = 1
        reg = $2; stack = $3; local = $4; ls = $5; mma = $6; ld = $7; st = $8; nar = $9
        need = ""
        if (reg == "?" || ls == "?") bad(arch " " name ": missing from one of the two dumps")
        if (stack != "0" || local != "0" || ls != "0")
            bad(arch " " name ": local memory (STACK " stack ", LOCAL " local ", LDL/STL " ls ")")
        if (s ~ /(attention|attn)[a-z0-9_]*_kernel$/) {
            seen[arch "|attention"] = 1; need = "HMMA"
            if (mma + 0 < 1) bad(arch " " name ": no HMMA (tensor cores unused)")
        }
        if (s == "embed_ln_vec_kernel" || s == "bias_residual_ln_vec_kernel" || s == "bias_act_vec_kernel") {
            seen[arch "|" s] = 1; need = "LDG/STG.128, no 8/16b"
            if (ld + 0 < 1 || st + 0 < 1) bad(arch " " name ": no 128-bit global load and store")
            if (nar != "0") bad(arch " " name ": " nar " 8/16-bit global accesses in a vector path")
        }
        if (s == "head_dense_kernel" && name ~ /, true>$/) {
            seen[arch "|" s] = 1; need = "LDG.128, no 8/16b"
            if (ld + 0 < 1) bad(arch " " name ": no 128-bit global load")
            if (nar != "0") bad(arch " " name ": " nar " 8/16-bit global accesses in a vector path")
        }
        row[NR] = sprintf("%-52s %-6s %4s %5s %5s %7s %5s %7s %7s %6s  %s", name, arch, reg,
                          stack, local, ls, mma, ld, st, nar, need)
    }
    END {
        printf "%-52s %-6s %4s %5s %5s %7s %5s %7s %7s %6s  %s\n", "kernel", "arch", "regs",
               "stack", "local", "LDL/STL", "HMMA", "LDG.128", "STG.128", "8/16b", "asserted"
        for (i = 1; i <= NR; i++) print row[i]
        split("attention embed_ln_vec_kernel bias_residual_ln_vec_kernel bias_act_vec_kernel head_dense_kernel", req, " ")
        for (a in archs)
            for (i in req)
                if (!((a "|" req[i]) in seen)) bad(a ": no " req[i] " kernel found (renamed? then update tests/cuda/sass_check.sh)")
        n = 0
        for (a in archs) n++
        if (nbad) {
            printf "FAIL: %d problem(s):%s\n", nbad, problems
            exit 1
        }
        printf "ok: %d kernel instances on %d architecture(s): no local memory; HMMA in attention; 128-bit and no 8/16-bit accesses in the vector paths\n", NR, n
    }' "$tmp/all.tsv" | tee "${SASS_CHECK_TABLE:-/dev/null}"
exit "${PIPESTATUS[0]}"
