#!/usr/bin/env bash
# mutants.sh — mutation testing of the host-emulated kernel tests: each mutation below is a
# one-line sed edit of a copy of a kernel file; the driver rebuilds the named test against
# the mutated copy (only that translation unit recompiles, then a relink), runs it in its
# quick mode with a fixed seed, and requires it to FAIL. A mutant that survives, a pattern
# that no longer changes its file, or a mutant that does not compile fails the driver, so a
# kernel rewrite that silently disarms a mutation is noticed.
#
#     bash tests/cuda/host/mutants.sh <source-dir> <build-dir> [skip-reason] [id ...]
#
# ctest runs it as test_cuda_mutants (label "cuda"); a non-empty skip reason exits 77
# (sanitizer builds, or no host tests in this configuration). The build directory's
# tests/cuda/mutant/ holds the copies (tests/cuda/CMakeLists.txt: rr_cuda_host_mutant and
# the <test>_mutant executables, never built by "all"). It prints one markdown row per
# mutant, "id | file | what | test | first failure line", the table of cuda/README.md.
set -uo pipefail

SRC=${1:?source dir} BUILD=${2:?build dir} SKIP=${3:-}
shift 2
[ $# -gt 0 ] && shift
if [ -n "$SKIP" ]; then
    echo "test_cuda_mutants: skipped: $SKIP"
    exit 77
fi
ONLY=" $* "
MUT=$BUILD/tests/cuda/mutant
FILES="attention.cu embed_ln.cu gelu.cu head.cu layernorm.cu common.cuh"
JOBS=${RR_MUTANT_JOBS:-2}

# ---- the mutations ------------------------------------------------------------------------
# m <id> <file in cuda/> <test> <sed script> <what>
# Patterns match on code text (not line numbers), so a nearby edit does not move them; a
# rewrite of a kernel needs its rows re-pointed (the driver reports "pattern matches
# nothing"). Rows of one file stay together: each file switch costs a recompile.
IDS=() FILE=() TEST=() SED=() WHAT=()
m() { IDS+=("$1"); FILE+=("$2"); TEST+=("$3"); SED+=("$4"); WHAT+=("$5"); }

# attention.cu (test_attention_host)
m att-sync-q attention.cu test_attention_host \
    's/^    __syncthreads();$//' \
    '`__syncthreads()` after staging Q and zeroing O dropped'
m att-sync-consumed attention.cu test_attention_host \
    's|__syncthreads(); /\* previous key block fully consumed \*/||' \
    '`__syncthreads()` before staging the next K/V block dropped'
m att-sync-staged attention.cu test_attention_host \
    's/^        __syncthreads();$//' \
    '`__syncthreads()` after staging K/V dropped'
m att-syncwarp-s attention.cu test_attention_host \
    '/wmma::store_matrix_sync(s_w + j \* 16/{n;n;s/__syncwarp();//}' \
    '`__syncwarp()` after the S store (before the softmax reads S) dropped'
m att-syncwarp-pv attention.cu test_attention_host \
    '/orow\[c\] \*= alpha;/{n;s/__syncwarp();//}' \
    '`__syncwarp()` before P·V (after the P writes and the O rescale) dropped'
m att-mask-le attention.cu test_attention_host \
    's/const bool ok = kb + half \* 16 + c < tile.kv_len;/const bool ok = kb + half * 16 + c <= tile.kv_len;/' \
    'key mask `< kv_len` → `<= kv_len` (one padding key let in)'
m att-mask-lt1 attention.cu test_attention_host \
    's/const bool ok = kb + half \* 16 + c < tile.kv_len;/const bool ok = kb + half * 16 + c < tile.kv_len - 1;/' \
    'key mask `< kv_len` → `< kv_len - 1` (last key dropped)'
m att-ldm-k attention.cu test_attention_host \
    's/load_matrix_sync(kf, k_s + j \* 16 \* LDT + kk \* 16, LDT)/load_matrix_sync(kf, k_s + j * 16 * LDT + kk * 16, DH)/' \
    'K fragment load ldm `LDT` → `DH` (legal stride, wrong rows)'
m att-ldm-v attention.cu test_attention_host \
    's/load_matrix_sync(vf, v_s + kk \* 16 \* LDT + n \* 16, LDT)/load_matrix_sync(vf, v_s + kk * 16 * LDT + n * 16, DH)/' \
    'V fragment load ldm `LDT` → `DH`'
m att-ldm-o attention.cu test_attention_host \
    's/store_matrix_sync(o_w + n \* 16, oacc, LDO,/store_matrix_sync(o_w + n * 16, oacc, LDO + 8,/' \
    'O accumulator store ldm `LDO` → `LDO + 8`'
m att-kT attention.cu test_attention_host \
    's/T, wmma::col_major> kf;/T, wmma::row_major> kf;/' \
    'K operand `col_major` → `row_major` (S = Q·K instead of Q·Kᵀ)'
m att-vT attention.cu test_attention_host \
    's/T, wmma::row_major> vf;/T, wmma::col_major> vf;/' \
    'V operand `row_major` → `col_major` (P·Vᵀ)'
m att-qT attention.cu test_attention_host \
    's/wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qa/wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::col_major> qa/' \
    'Q operand `row_major` → `col_major`'
m att-max-pair attention.cu test_attention_host \
    's/mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));//' \
    'softmax max: the lane-pair shuffle step dropped'
m att-sum-pair attention.cu test_attention_host \
    's/sum += __shfl_xor_sync(0xffffffffu, sum, 1);//' \
    'softmax sum: the lane-pair shuffle step dropped'
m att-no-rescale attention.cu test_attention_host \
    's/orow\[c\] \*= alpha;/orow[c] *= 1.0f;/' \
    'O not rescaled by α when the running max grows'
m att-row-bound attention.cu test_attention_host \
    's/if (row >= tile.q_count) break;/if (row > tile.q_count) break;/' \
    'output row bound `>=` → `>` (one row past the tile written)'

# ---- the driver ---------------------------------------------------------------------------
fail=0
put() { # put <from> <to>: copy only when the content differs (keeps make's timestamps)
    cmp -s "$1" "$2" || cp "$1" "$2"
}
restore() {
    local k
    mkdir -p "$MUT"
    for k in $FILES; do put "$SRC/cuda/$k" "$MUT/$k"; done
}
build() { # build <test>: the mutant twin of the test, against the copies in $MUT
    cmake --build "$BUILD" --target "$1_mutant" -j "$JOBS" >"$MUT/build.log" 2>&1
}
run() { # run <test> <stdout> <stderr>
    RR_TEST_QUICK=1 RR_TEST_SEED=1 timeout 300 "$BUILD/tests/cuda/$1_mutant" >"$2" 2>"$3"
}
cleanup() { restore; }
trap cleanup EXIT

restore
declare -A tests_used
for i in "${!IDS[@]}"; do tests_used[${TEST[$i]}]=1; done
for t in "${!tests_used[@]}"; do
    if ! build "$t"; then
        echo "test_cuda_mutants: the unmutated ${t}_mutant does not build:" >&2
        tail -20 "$MUT/build.log" >&2
        exit 1
    fi
    if ! run "$t" "$MUT/out" "$MUT/err"; then
        echo "test_cuda_mutants: the unmutated $t fails, so no mutant can be judged:" >&2
        head -5 "$MUT/err" >&2
        exit 1
    fi
done

echo "| id | file | mutation | caught by | first failure (stderr) |"
echo "|---|---|---|---|---|"
start=$SECONDS ran=0
for i in "${!IDS[@]}"; do
    id=${IDS[$i]} f=${FILE[$i]} t=${TEST[$i]}
    [ "$ONLY" != "  " ] && [[ $ONLY != *" $id "* ]] && continue
    ran=$((ran + 1))
    restore
    sed -e "${SED[$i]}" "$SRC/cuda/$f" >"$MUT/$f.new"
    if cmp -s "$MUT/$f.new" "$SRC/cuda/$f"; then
        echo "| $id | $f | ${WHAT[$i]} | **pattern matches nothing: re-point it** | |"
        fail=1
        continue
    fi
    put "$MUT/$f.new" "$MUT/$f"
    if ! build "$t"; then
        echo "| $id | $f | ${WHAT[$i]} | **does not compile: fix the mutation** | |"
        tail -5 "$MUT/build.log" >&2
        fail=1
        continue
    fi
    t0=$SECONDS
    run "$t" "$MUT/out" "$MUT/err"
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "| $id | $f | ${WHAT[$i]} | **SURVIVED** $t | |"
        fail=1
        continue
    fi
    # The first line on stderr: a failed check (file:line, then its message without the
    # condition) or the abort message of the runtime or the wmma stand-in.
    first=$(grep -m1 -v '^\s*$' "$MUT/err" |
        sed 's|^FAIL [^ ]*/\([^/ ]*:[0-9]*\): [^:]*: |\1: |' | cut -c1-150 | sed 's/|/\\|/g')
    nf=$(grep -c '^FAIL' "$MUT/err")
    na=$(grep '^FAIL' "$MUT/err" | grep -c '\[asc\]')
    nd=$(grep '^FAIL' "$MUT/err" | grep -c '\[desc\]')
    case $rc in
    124) how="timeout" ;;
    134) how="abort" ;;
    1) how="$nf failed checks ($na asc, $nd desc)" ;;
    *) how="exit $rc" ;;
    esac
    echo "| $id | $f | ${WHAT[$i]} | $t: $how, $((SECONDS - t0)) s | \`$first\` |"
done
echo "test_cuda_mutants: $ran mutants in $((SECONDS - start)) s"
[ $fail -eq 0 ] && echo "test_cuda_mutants: every mutant was caught" ||
    echo "test_cuda_mutants: FAIL (see the bold rows)"
exit $fail
