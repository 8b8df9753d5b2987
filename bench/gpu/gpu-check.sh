#!/usr/bin/env bash
# gpu-check.sh — the one-shot device check of the CUDA engine (issue 4), for an H200 box
# with the CUDA toolkit, CMake and PyTorch + transformers but no network and none of our
# Debian libraries. Run from the repository root through the device tool, carrying
# .cache/gpu-carry (made here by bench/gpu/pack-debs.sh); see bench/gpu/README.md.
#
# The box gives one run of at most 540 s, so everything hangs off one deadline
# (GPU_CHECK_DEADLINE_S, default 500 s after the start; worst case past it: 10 s of a step's
# `timeout -k 10`, 20 s of table, 5 s for tee = 535 s): each step's `timeout` is the smaller
# of its own cap and the time left, a step that cannot do anything useful in what is left is
# skipped (and counted as a failure), and the steps run cheapest-and-most-valuable first, so
# a hang in never-run kernels costs one step, not the data set:
#   1. device probe: GPU, driver, nvcc, cuBLAS header/library, tools, kernel (`uname -r`);
#   2. unpack the carried Debian prefix (deps.tar.xz) into /tmp/rr-debroot and the test
#      models; if the toolkit has no cuBLAS, look for the pip wheel's (best effort);
#   3. configure against the prefix for sm_90 with the ptxas report on, and build only what
#      runs here: test_cuda_kernels, test_cuda_model, bench_gpu;
#   4. bench_gpu --smoke without the sanitizer (cap 40 s): three forwards vs the CPU engine,
#      the hang/fault probe;
#   5. bench_gpu: validation against the CPU engine (a miss is reported, the timing still
#      runs) and latency per K;
#   6. torch_bench.py: PyTorch + transformers fp16 (eager and sdpa) on the same ids;
#   7. the gpu-labelled tests, `ctest -V` so passing tests' numbers reach ctest.log;
#   8. compute-sanitizer memcheck (the kernel tests' quick set, then the smoke run) with
#      what is left (cap 150 s);
#   9. from an EXIT trap, whatever happened: one Markdown table, $OUT/gpu-check.md.
# $OUT gets at most 8 files: gpu-check.md, gpu-check.log, ptxas.txt, rerank.tsv, torch.tsv,
# ctest.log, memcheck.log, and build.log only when the build fails.
# Exit status: 0 when every step passed, 1 otherwise (the table is written either way).
# GPU_CHECK_BUILD_ONLY=1 stops after step 3: the dry run that works without a GPU.
# GPU_CHECK_DEADLINE_S (default 500) and GPU_CHECK_CUBLAS_WHEEL (see the cuBLAS block) are the
# other knobs.
# shellcheck disable=SC2317  # write_table and finish run from the EXIT trap
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
OUT=${OUT:-$ROOT/bench/out}
mkdir -p "$OUT"
T0=$(date +%s)
DEADLINE=$((T0 + ${GPU_CHECK_DEADLINE_S:-500}))
# python3 (torch, the table) runs with the original LD_LIBRARY_PATH so it keeps its own
# libraries (the original may hold the driver's folder, so it is kept, not unset); offline,
# so transformers never waits on a connection the box cannot make.
PY_ENV=(env "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
        PYTHONUNBUFFERED=1)
# tee ignores TERM/INT: if the device tool stops the run, tee must outlive the trap that
# writes the table (a dead tee would also kill this shell with SIGPIPE on its next echo).
exec > >(trap '' TERM INT HUP; exec tee "$OUT/gpu-check.log") 2>&1
TEE_PID=$!
STATUS=0
SUMMARY=()
step() { echo; echo "=== [$(($(date +%s) - T0))s, $(left)s left] $*"; }
note() { SUMMARY+=("$1"); echo "--> $1"; }
bad() { note "FAILED: $1"; STATUS=1; }
# Seconds to the deadline (may be negative).
left() { echo $((DEADLINE - $(date +%s))); }
# lim N: the smaller of N and the time left, at least 1 (an argument for `timeout`).
lim() { local l; l=$(left); if [ "$l" -lt "$1" ]; then echo $((l > 1 ? l : 1)); else echo "$1"; fi; }
# have N NAME: true when at least N seconds are left; otherwise NAME is reported as skipped.
have() { [ "$(left)" -ge "$1" ] && return 0; bad "$2: skipped, out of time ($(left)s left)"; return 1; }
# timed_out RC: the exit status of `timeout` when it had to stop the command.
timed_out() { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; }

CARRY=$ROOT/.cache/gpu-carry
WORK=/tmp/rr-gpu-check
R=/tmp/rr-debroot
BUILD=build-gpu
BIN_BENCH=$BUILD/bench/gpu/bench_gpu
MODELS=$WORK/models
rm -rf "$WORK" && mkdir -p "$WORK"
export PATH=/usr/local/cuda/bin:$PATH

# The table: a function run from the EXIT trap, so it exists after a configure or build
# failure, an early exit or a signal too. It reads only files (summary, TSVs, step outputs,
# ctest.log) and survives missing, empty or half-written ones.
write_table() {
    printf '%s\n' "${SUMMARY[@]}" >"$WORK/summary.txt"
    local elapsed=$(($(date +%s) - T0))
    "${PY_ENV[@]}" timeout 20 python3 - "$WORK" "$OUT" "$elapsed" "$STATUS" \
        "$(uname -r)" "${GPU_CHECK_BUILD_ONLY:-}" <<'PY' && return
import os, re, sys, subprocess
work, out, elapsed, status, kernel, build_only = sys.argv[1:7]
L = []

def read(path):
    try:
        return open(path, errors="replace").read()
    except OSError:
        return ""

def tsv(name):
    """Rows of a TSV as dicts; [] when missing or header-only; short rows (a kill mid-write)
    are skipped."""
    rows = [l.rstrip("\n").split("\t") for l in read(os.path.join(work, name)).splitlines()
            if l.strip()]
    if len(rows) < 2:
        return []
    return [dict(zip(rows[0], r)) for r in rows[1:] if len(r) == len(rows[0])]

def num(r, key):
    try:
        return float(r[key])
    except (KeyError, TypeError, ValueError):
        return None

def cell(v, f="{:.3f}"):
    return f.format(v) if v is not None else "—"

try:
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10).stdout.strip() or "unknown GPU"
    except (OSError, subprocess.SubprocessError):
        gpu = "unknown GPU (no nvidia-smi)"
    L += [f"## rerankd CUDA engine — device check on {gpu}", "",
          f"Kernel `{kernel}`; {elapsed} s; exit status {status}"
          + (" (GPU_CHECK_BUILD_ONLY: build only, nothing ran on a device)" if build_only else "")
          + ".", ""]
    rr = {}
    for r in tsv("rerank.tsv"):
        k = num(r, "K")
        if k is not None:
            rr[int(k)] = r
    tt = tsv("torch.tsv")
    peak = next((num(r, "median_ms") for r in tt if r.get("impl") == "peak_bf16_tflops"), None)
    th = {(r.get("impl"), r.get("K")): num(r, "median_ms") for r in tt
          if r.get("impl") != "peak_bf16_tflops"}
    target = {1: "≤ 0.15", 10: "—", 100: "≤ 0.6", 1000: "≤ 6"}
    peak_txt = f"{peak:.0f} TFLOP/s" if peak else "not measured"
    L += ["MiniLM-L6 cross-encoder (fp16 weights), one query (16 tokens) against K passages "
          "(80–120 tokens), identical token ids for every engine. rerank: host wall clock around "
          "the synchronous rr_engine_forward (copies included), median (p90) after 20 warm-ups. "
          "PyTorch: transformers fp16, one padded batch, copies in and out included, median. "
          "TFLOP/s: full-encoder model FLOPs / median; peak = measured bf16 matmul " + peak_txt
          + ". — = not measured (see Checks).",
          "",
          "| K | tokens | rerank fp16 ms (p90) | target ms | TFLOP/s | % of peak | torch eager ms "
          "| torch sdpa ms | × vs eager | × vs sdpa |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for k in (1, 10, 100, 1000):
        r = rr.get(k, {})
        e, s = th.get(("eager", str(k))), th.get(("sdpa", str(k)))
        med, tf = num(r, "median_ms"), num(r, "TFLOPs")
        L.append(f"| {k} | {r.get('n_tok', '—')} | {cell(med)} ({r.get('p90_ms', '—')}) | "
                 f"{target[k]} | {cell(tf, '{:.1f}')} | "
                 f"{cell(tf / peak * 100 if tf and peak else None, '{:.1f}')} | {cell(e)} | "
                 f"{cell(s)} | {cell(e / med if e and med else None, '{:.1f}')} | "
                 f"{cell(s / med if s and med else None, '{:.1f}')} |")
except Exception as x:  # keep what is there; the checks below still matter
    L.append(f"(table writer error: {type(x).__name__}: {x})")
try:
    L += ["", "Checks:", ""]
    L += [f"- {l.strip()}" for l in read(os.path.join(work, "summary.txt")).splitlines()
          if l.strip()]
    for name, what in (("smoke.out", "smoke"), ("bench.out", "bench_gpu"),
                       ("torch.out", "torch_bench")):
        L += [f"- {what}: {l[2:].strip()}" for l in read(os.path.join(work, name)).splitlines()
              if l.startswith("# ")]
    # ctest -V prefixes each test's output with "N: ".
    ct = read(os.path.join(out, "ctest.log"))
    L += [f"- ctest: {m.strip()}" for m in re.findall(
        r"^(?:\d+: )?\s*(\d+/\d+ Test +#\d+: .*|\S+: \d+ pairs .*|max \|.*|batch invariance.*|"
        r"graph buckets.*|\S+: top-10.*|\S+: not loaded.*)$", ct, re.M)]
except Exception as x:
    L.append(f"(table writer error: {type(x).__name__}: {x})")
open(os.path.join(out, "gpu-check.md"), "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
    # No python3 (or it failed): the summary alone, so there is still a table file.
    { echo "## rerankd CUDA engine — device check (table writer failed; summary only)"
      echo; echo "Kernel \`$(uname -r)\`; exit status $STATUS."; echo
      printf -- '- %s\n' "${SUMMARY[@]}"; } >"$OUT/gpu-check.md"
    cat "$OUT/gpu-check.md"
}

finish() {
    trap - EXIT
    step "table"
    write_table
    echo "=== done in $(($(date +%s) - T0))s, status $STATUS"
    # Let tee drain so gpu-check.log is complete: close our ends of its pipe and wait for it,
    # bounded (a stray process still holding the pipe must not stall the run).
    exec >&- 2>&-
    (sleep 5; kill -KILL "$TEE_PID" 2>/dev/null) &
    local watchdog=$!
    wait "$TEE_PID" 2>/dev/null
    kill "$watchdog" 2>/dev/null
    exit "$STATUS"
}
trap finish EXIT
trap 'bad "stopped by a signal"; exit 1' TERM INT HUP

step "device"
timeout -k 5 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv ||
    echo "nvidia-smi: not found or failed"
echo "kernel: $(uname -r)"
if NVCC=$(command -v nvcc); then
    nvcc --version | tail -2
    CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
else
    bad "no nvcc in PATH or /usr/local/cuda/bin: no CUDA engine can be built"
    exit 1
fi
echo "toolkit: $CUDA_HOME"
ls -l /usr/local/cuda/include/cublas_v2.h /usr/local/cuda/lib*/libcublas.so* 2>&1
for t in compute-sanitizer cmake ctest ninja python3; do
    echo "$t: $(command -v "$t" || echo 'not found')"
done
cmake --version | head -1
if [ ! -f "$CARRY/deps.tar.xz" ] || [ ! -f "$CARRY/models.tar.xz" ]; then
    bad "no $CARRY (run bench/gpu/pack-debs.sh here and carry .cache/gpu-carry)"
    exit 1
fi

step "unpack the Debian prefix and the test models"
rm -rf "$R" && mkdir -p "$R"
if ! timeout -k 10 "$(lim 60)" tar -xJf "$CARRY/deps.tar.xz" -C "$R"; then
    bad "unpack deps.tar.xz"
    exit 1
fi
LIBDIR=$R/usr/lib/x86_64-linux-gnu
# For the prefix's protoc/protoc-c/pkgconf at build time; our binaries find the prefix through
# their build-tree RPATH.
export LD_LIBRARY_PATH=$LIBDIR:$LIBDIR/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_LIBDIR=$LIBDIR/pkgconfig:$R/usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$R
# The fp16 test model and a d_head-64 variant of it (same weights, 6 heads of 64).
mkdir -p "$MODELS/minilm-l6-bert-h6"
timeout -k 10 "$(lim 90)" tar -xJf "$CARRY/models.tar.xz" -C "$MODELS" ||
    { bad "unpack models.tar.xz"; exit 1; }
for f in "$MODELS/minilm-l6-bert"/*; do
    [ "$(basename "$f")" = config.json ] || ln -s "$f" "$MODELS/minilm-l6-bert-h6/"
done
"${PY_ENV[@]}" python3 - "$MODELS/minilm-l6-bert/config.json" "$MODELS/minilm-l6-bert-h6/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["num_attention_heads"] = c["hidden_size"] // 64
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY

# cuBLAS: FindCUDAToolkit makes CUDA::cublas from the toolkit's own libcublas and headers. An
# image whose toolkit lacks them (torch brings cuBLAS as a pip wheel) would fail at generate
# time, so fall back to the wheel's include/ and lib/: CUDA_cublas(Lt)_LIBRARY preset in the
# cache skip the search, and -I reaches kernels.h's #include <cublas_v2.h>. Best effort.
# GPU_CHECK_CUBLAS_WHEEL=1 takes the wheel path even when the toolkit has cuBLAS (how the
# fallback was dry-run here, and a way out if the toolkit's cuBLAS turns out broken).
CUBLAS_ARGS=()
toolkit_has_cublas() {
    local h
    for h in "$CUDA_HOME"/include/cublas_v2.h "$CUDA_HOME"/targets/*/include/cublas_v2.h; do
        [ -e "$h" ] && return 0
    done
    return 1
}
if [ -z "${GPU_CHECK_CUBLAS_WHEEL:-}" ] && toolkit_has_cublas; then
    echo "cuBLAS: the toolkit's ($CUDA_HOME)"
else
    echo "cuBLAS: no cublas_v2.h under $CUDA_HOME (or GPU_CHECK_CUBLAS_WHEEL set);" \
         "looking for a pip wheel (nvidia-cublas*)"
    mapfile -t WHEEL < <("${PY_ENV[@]}" timeout 30 python3 - <<'PY'
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
inc = lib = lt = ""
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "*"))):
        h, libs = os.path.join(d, "include", "cublas_v2.h"), os.path.join(d, "lib")
        if not inc and os.path.exists(h):
            inc = os.path.dirname(h)
        lib = lib or next(iter(sorted(glob.glob(os.path.join(libs, "libcublas.so*")))), "")
        lt = lt or next(iter(sorted(glob.glob(os.path.join(libs, "libcublasLt.so*")))), "")
print(inc); print(lib); print(lt)
PY
)
    if [ -n "${WHEEL[0]:-}" ] && [ -n "${WHEEL[1]:-}" ]; then
        CUBLAS_ARGS=("-DCUDA_cublas_LIBRARY=${WHEEL[1]}" "-DCMAKE_C_FLAGS=-I${WHEEL[0]}"
                     "-DCMAKE_CUDA_FLAGS=-I${WHEEL[0]}")
        [ -n "${WHEEL[2]:-}" ] && CUBLAS_ARGS+=("-DCUDA_cublasLt_LIBRARY=${WHEEL[2]}")
        # libcublas finds libcublasLt beside it only through the loader's path.
        LD_LIBRARY_PATH=$(dirname "${WHEEL[1]}"):$LD_LIBRARY_PATH
        note "cuBLAS: pip wheel fallback (${WHEEL[0]}, ${WHEEL[1]}, ${WHEEL[2]:-no cublasLt})"
    else
        bad "cuBLAS: none in the toolkit nor in a pip wheel (configure will fail)"
    fi
fi

step "configure"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
timeout -k 10 "$(lim 90)" cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_FIND_ROOT_PATH="$R" \
    -DPKG_CONFIG_EXECUTABLE="$R/usr/bin/pkgconf" \
    -DOPENBLAS_LIBRARY="$LIBDIR/openblas-pthread/libopenblas.so" \
    -DRR_MODELS_DIR="$MODELS" -DRERANK_PTXAS_VERBOSE=ON "${CUBLAS_ARGS[@]}" 2>&1 |
    tee "$WORK/configure.log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
    bad "configure (rc $rc; see gpu-check.log)"
    exit 1
elif ! grep -q "rerankd: CUDA engine ON" "$WORK/configure.log"; then
    bad "configure: the CUDA engine is off (nvcc not usable?)"
    exit 1
fi

step "build: test_cuda_kernels test_cuda_model bench_gpu"
# Only what runs here: the server, CLI and CPU tests would add build time and link-time
# dependencies (gnutls through microhttpd) that the carried prefix leaves to the box.
timeout -k 10 "$(lim 240)" cmake --build "$BUILD" -j "$(nproc)" \
    --target test_cuda_kernels test_cuda_model bench_gpu >"$WORK/build.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
    note "build: ok (sm_90, Release; test_cuda_kernels test_cuda_model bench_gpu)"
else
    # The first error is often far above the tail with -j16: the whole log when small,
    # else every error with its context.
    if [ "$(wc -c <"$WORK/build.log")" -le 2000000 ]; then
        cp "$WORK/build.log" "$OUT/build.log"
    else
        grep -n -m 40 -B 3 -A 10 -E "error|Error|undefined reference" "$WORK/build.log" >"$OUT/build.log"
    fi
    tail -40 "$WORK/build.log"
    if timed_out "$rc"; then bad "build: timed out (build.log)"; else bad "build (rc $rc; build.log)"; fi
    exit 1
fi
grep -A3 "Compiling entry function '_Z[0-9]*[a-z_]*_kernel" "$WORK/build.log" >"$OUT/ptxas.txt" || true
echo "ptxas report of our kernels: $OUT/ptxas.txt ($(grep -c 'Compiling entry' "$OUT/ptxas.txt") entries)"
if [ -n "${GPU_CHECK_BUILD_ONLY:-}" ]; then
    echo "GPU_CHECK_BUILD_ONLY: stopping after the build (dry run)"
    exit
fi

step "smoke: bench_gpu --smoke (K = 1, 10, 100 vs the CPU engine; hang/fault probe)"
SMOKE_HUNG=
if have 15 "smoke"; then
    timeout -k 10 "$(lim 40)" "$BIN_BENCH" "$MODELS/minilm-l6-bert" "$WORK" --smoke 2>&1 |
        tee "$WORK/smoke.out"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then note "smoke: ok"
    elif timed_out "$rc"; then SMOKE_HUNG=1; bad "smoke: timed out (hang?)"
    else bad "smoke (rc $rc)"; fi
fi

step "benchmark: rerank fp16 (validation, then latency per K)"
# After a hung smoke the timing would most likely hang too: a shorter cap, still enough for
# inputs.jsonl (torch_bench needs it) and any K that does finish.
if have 20 "bench_gpu"; then
    timeout -k 10 "$(lim "$([ -n "$SMOKE_HUNG" ] && echo 60 || echo 120)")" \
        "$BIN_BENCH" "$MODELS/minilm-l6-bert" "$WORK" 2>&1 | tee "$WORK/bench.out"
    rc=${PIPESTATUS[0]}
    [ -f "$WORK/rerank.tsv" ] && cp "$WORK/rerank.tsv" "$OUT/"
    if [ "$rc" -eq 0 ]; then note "bench_gpu: ok"
    elif timed_out "$rc"; then bad "bench_gpu: timed out (rows of the finished K are kept)"
    else bad "bench_gpu (rc $rc: see its # lines)"; fi
fi

step "benchmark: PyTorch + transformers fp16"
if [ ! -f "$WORK/inputs.jsonl" ]; then
    bad "torch_bench: no inputs.jsonl (bench_gpu did not get that far)"
elif have 20 "torch_bench"; then
    timeout -k 10 "$(lim 120)" "${PY_ENV[@]}" python3 bench/gpu/torch_bench.py \
        "$MODELS/minilm-l6-bert" "$WORK" 2>&1 | tee "$WORK/torch.out"
    rc=${PIPESTATUS[0]}
    [ -f "$WORK/torch.tsv" ] && cp "$WORK/torch.tsv" "$OUT/"
    if [ "$rc" -eq 0 ]; then note "torch_bench: ok"
    elif timed_out "$rc"; then bad "torch_bench: timed out"
    else bad "torch_bench (rc $rc)"; fi
fi

step "gpu tests (ctest -L gpu -V)"
# -V: a passing test's output (max |cuda - cpu|, top-10, batch invariance, graph buckets) is
# the accuracy result, and only -V puts it in ctest.log. A skipped test (exit 77: no device,
# model not loaded) is a failure here, not a pass. Per-test timeouts sum to below the outer
# one, so ctest stops a hung test itself and no test binary outlives the step. Only the two
# carried models count: minilm-l6-electra and tiny-bert-random are not carried, and their
# "not loaded" lines are expected.
if have 30 "gpu tests"; then
    CT=$(lim 150)
    (cd "$BUILD" && timeout -k 10 "$CT" ctest -L gpu -V --timeout $(((CT - 10) / 2))) \
        >"$OUT/ctest.log" 2>&1
    rc=$?
    SKIP_RE="Skipped|Not Run|minilm-l6-bert(-h6)?: not loaded|No tests were found"
    grep -E "Test +#|max \||top-10|invariance|graph buckets|tests passed|$SKIP_RE" \
        "$OUT/ctest.log" | head -60
    if [ "$rc" -eq 0 ] && ! grep -qE "$SKIP_RE" "$OUT/ctest.log"; then
        note "gpu tests: passed"
    elif [ "$rc" -eq 0 ]; then
        bad "gpu tests: skipped or not run (see ctest.log)"
    else
        bad "gpu tests (rc $rc; see ctest.log)"
    fi
fi

step "compute-sanitizer memcheck"
# Last: the slowest step and the one a gVisor runtime refuses ("Device not supported"), which
# is reported as such, not as a kernel failure.
if ! command -v compute-sanitizer >/dev/null; then
    note "memcheck: not available (no compute-sanitizer)"
elif have 30 "memcheck"; then
    MC=(compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20)
    {
        # The kernel tests get half of what is left (all of it after a hung smoke, whose run
        # under the sanitizer would only hang slower).
        HALF=$(lim 150)
        [ -z "$SMOKE_HUNG" ] && HALF=$((HALF / 2))
        RR_TEST_QUICK=1 timeout -k 10 "$HALF" "${MC[@]}" "$BUILD/tests/cuda/test_cuda_kernels"
        echo "rc=$?"
        if [ -z "$SMOKE_HUNG" ]; then
            timeout -k 10 "$(lim 150)" "${MC[@]}" "$BIN_BENCH" "$MODELS/minilm-l6-bert" "$WORK" --smoke
            echo "rc=$?"
        fi
    } >"$OUT/memcheck.log" 2>&1
    grep -E "ERROR SUMMARY|rc=|validation|not supported" "$OUT/memcheck.log"
    n_runs=$([ -z "$SMOKE_HUNG" ] && echo 2 || echo 1)
    if grep -qiE "device not supported|device is not supported" "$OUT/memcheck.log"; then
        note "memcheck: not available on this runtime (kernel $(uname -r); see memcheck.log)"
    elif [ "$(grep -c '^rc=0$' "$OUT/memcheck.log")" = "$n_runs" ]; then
        note "memcheck: clean ($(grep 'ERROR SUMMARY' "$OUT/memcheck.log" | tr '\n' ' '))"
    else
        bad "memcheck (see memcheck.log)"
    fi
fi
exit
