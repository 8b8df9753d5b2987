#!/usr/bin/env bash
# fuzz.sh — builds the libFuzzer targets (build-fuzz: clang, ASan + UBSan, RERANK_FUZZ) and
# runs each for a fixed time, two at a time. Usage:
#
#     bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default 60 s, every target)
#
# Each target starts from a scratch copy of its committed seeds (tests/fuzz/corpus/<target>,
# never written to) in build-fuzz/fuzz-work/<target>/corpus, with its dictionary
# (tests/fuzz/<target>.dict) when there is one, -rss_limit_mb=2048 and -timeout=10. Inputs
# that crash, leak, time out or fail a sanitizer check are kept in build-fuzz/crashes/<target>/;
# the full log is build-fuzz/fuzz-work/<target>.log. Ends with one line per target
# (executions, CPU seconds, final cov / ft, corpus, PASS / FAIL / SKIP) and exits non-zero when any
# target failed. Installs clang and the sanitizer runtimes with apt-get when missing (like
# scripts/setup.sh); needs the Debian packages and models/ of scripts/setup.sh.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

SECS=${1:-60}
[ $# -gt 0 ] && shift
case "$SECS" in '' | *[!0-9]*) echo "fuzz: SECONDS_PER_TARGET must be a number, got '$SECS'" >&2; exit 2 ;; esac
BUILD=build-fuzz
JOBS=2

# --- toolchain -----------------------------------------------------------------------------
APT_PKGS=(clang libclang-rt-14-dev libomp-dev)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "fuzz: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null ||
        { echo "fuzz: apt-get failed" >&2; exit 1; }
fi
CLANG=$(command -v clang || command -v clang-14) || { echo "fuzz: clang not found" >&2; exit 1; }

# --- build ---------------------------------------------------------------------------------
mkdir -p "$BUILD"
echo "== building $BUILD (clang, libFuzzer + ASan + UBSan)"
# No -Werror: a new clang-only warning elsewhere must not stop fuzzing (the gcc CI builds
# use -Werror); the warnings are counted below instead.
if ! { CC=$CLANG cmake -S . -B "$BUILD" -DRERANK_FUZZ=ON -DRERANK_CUDA=OFF -DRERANK_WERROR=OFF \
           -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/build.log" 2>&1 &&
       cmake --build "$BUILD" -j"$JOBS" --target fuzz >>"$BUILD/build.log" 2>&1; }; then
    tail -n 60 "$BUILD/build.log"
    echo "fuzz: build failed (log: $BUILD/build.log)"
    exit 1
fi
n_warn=$(grep -c 'warning: ' "$BUILD/build.log" || true)
[ "$n_warn" -eq 0 ] || echo "fuzz: $n_warn compiler warning(s), see $BUILD/build.log"

# name <TAB> executable, written by tests/fuzz/CMakeLists.txt
declare -A EXE
ALL=()
while IFS=$'\t' read -r name exe; do
    [ -n "$name" ] || continue
    EXE[$name]=$exe
    ALL+=("$name")
done <"$BUILD/tests/fuzz/targets.txt"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
    [ -n "${EXE[$t]:-}" ] || { echo "fuzz: unknown target '$t' (have: ${ALL[*]})" >&2; exit 2; }
done

# --- run -----------------------------------------------------------------------------------
WORK=$BUILD/fuzz-work
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() { # target — writes $WORK/<target>.log and $WORK/<target>.rc
    local t=$1
    local corpus=$WORK/$t/corpus crashes=$BUILD/crashes/$t
    rm -rf "${WORK:?}/$t" "$WORK/$t.log" "$WORK/$t.rc"
    mkdir -p "$corpus" "$crashes"
    touch "$WORK/$t.start" # crash inputs of earlier runs stay, but only newer ones count
    [ -d "tests/fuzz/corpus/$t" ] && cp -R "tests/fuzz/corpus/$t/." "$corpus/"
    local args=(-max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
                -artifact_prefix="$crashes/")
    [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
    # a hang that -timeout misses (stuck outside an input) must not stall CI; bash's `time`
    # records the CPU seconds the target used (user + system), which the summary reports:
    # on a shared machine they are what a campaign's length really is.
    local TIMEFORMAT='%U %S'
    { time timeout -k 10 $((SECS + 120)) "${EXE[$t]}" "${args[@]}" "$corpus" >"$WORK/$t.log" 2>&1
      echo $? >"$WORK/$t.rc"; } 2>"$WORK/$t.cpu"
}

mkdir -p "$WORK"
echo "== fuzzing ${#TARGETS[@]} target(s), ${SECS} s each, $JOBS at a time"
for t in "${TARGETS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    echo "   start $t"
    run_one "$t" &
done
wait

# --- summary -------------------------------------------------------------------------------
rc=0
printf '%-22s %12s %8s %7s %8s %16s  %s\n' target executions "cpu s" cov ft corpus result
for t in "${TARGETS[@]}"; do
    log=$WORK/$t.log
    code=$(cat "$WORK/$t.rc" 2>/dev/null || echo 1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
    cpu=$(awk '{printf "%.0f", $1 + $2}' "$WORK/$t.cpu" 2>/dev/null)
    n_crash=$(find "$BUILD/crashes/$t" -type f -newer "$WORK/$t.start" 2>/dev/null | wc -l)
    if grep -q 'skipped:' "$log" && [ "$code" -eq 0 ]; then
        result=SKIP
    elif [ "$code" -eq 0 ] && [ "$n_crash" -eq 0 ]; then
        result=PASS
    else
        result="FAIL (exit $code, $n_crash input(s) in $BUILD/crashes/$t, log $log)"
        rc=1
    fi
    printf '%-22s %12s %8s %7s %8s %16s  %s\n' "$t" "${execs:--}" "${cpu:--}" "${cov:--}" \
        "${ft:--}" "${corp:--}" "$result"
done
if [ $rc -ne 0 ]; then
    echo "fuzz: FAILED — the reports:"
    for t in "${TARGETS[@]}"; do
        grep -hE -m3 'ERROR: |runtime error|FUZZ_CHECK failed' "$WORK/$t.log" 2>/dev/null | sed "s/^/  $t: /"
    done
fi
exit $rc
