#!/usr/bin/env bash
# mutants.sh — mutation testing of the host-emulated kernel tests: each mutation below is a
# one-line sed edit of a copy of a kernel file; the driver rebuilds the named test against
# the mutated copy (only that translation unit recompiles, then a relink), runs it in its
# quick mode (or on the one op the mutation touches) with a fixed seed, in both run orders
# of the block runtime, and requires it to FAIL. A mutant that survives, a pattern
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
# m <id> <file in cuda/> <test> <environment> <sed script> <what>
# The environment selects the test's cases: RR_TEST_QUICK=1 its quick subset; RR_TEST_ONLY
# (test_cuda_kernels) one op, over all its shapes when a mutation needs a width that is not a
# multiple of 32. Patterns match on code text (not line numbers), so a nearby edit does not
# move them; a rewrite of a kernel needs its rows re-pointed (the driver reports "pattern
# matches nothing"). Rows of one file stay together: each file switch costs a recompile.
IDS=() FILE=() TEST=() ENVS=() SED=() WHAT=()
m() { IDS+=("$1"); FILE+=("$2"); TEST+=("$3"); ENVS+=("$4"); SED+=("$5"); WHAT+=("$6"); }
A=test_attention_host K=test_cuda_kernels_host Q="RR_TEST_QUICK=1"
BOTH_ORDERS=" $A " # tests that run every case in both orders themselves

# attention.cu (test_attention_host)
m att-sync-q attention.cu $A "$Q" \
    's/^    __syncthreads();$//' \
    '`__syncthreads()` after staging Q and zeroing O dropped'
m att-sync-consumed attention.cu $A "$Q" \
    's|__syncthreads(); /\* previous key block fully consumed \*/||' \
    '`__syncthreads()` before staging the next K/V block dropped'
m att-sync-staged attention.cu $A "$Q" \
    's/^        __syncthreads();$//' \
    '`__syncthreads()` after staging K/V dropped'
m att-syncwarp-s attention.cu $A "$Q" \
    '/wmma::store_matrix_sync(s_w + j \* 16/{n;n;s/__syncwarp();//}' \
    '`__syncwarp()` after the S store (before the softmax reads S) dropped'
m att-syncwarp-pv attention.cu $A "$Q" \
    '/orow\[c\] \*= alpha;/{n;s/__syncwarp();//}' \
    '`__syncwarp()` before P·V (after the P writes and the O rescale) dropped'
m att-mask-le attention.cu $A "$Q" \
    's/const bool ok = kb + half \* 16 + c < tile.kv_len;/const bool ok = kb + half * 16 + c <= tile.kv_len;/' \
    'key mask `< kv_len` → `<= kv_len` (one padding key let in)'
m att-mask-lt1 attention.cu $A "$Q" \
    's/const bool ok = kb + half \* 16 + c < tile.kv_len;/const bool ok = kb + half * 16 + c < tile.kv_len - 1;/' \
    'key mask `< kv_len` → `< kv_len - 1` (last key dropped)'
m att-ldm-k attention.cu $A "$Q" \
    's/load_matrix_sync(kf, k_s + j \* 16 \* LDT + kk \* 16, LDT)/load_matrix_sync(kf, k_s + j * 16 * LDT + kk * 16, DH)/' \
    'K fragment load ldm `LDT` → `DH` (legal stride, wrong rows)'
m att-ldm-v attention.cu $A "$Q" \
    's/load_matrix_sync(vf, v_s + kk \* 16 \* LDT + n \* 16, LDT)/load_matrix_sync(vf, v_s + kk * 16 * LDT + n * 16, DH)/' \
    'V fragment load ldm `LDT` → `DH`'
m att-ldm-o attention.cu $A "$Q" \
    's/store_matrix_sync(o_w + n \* 16, oacc, LDO,/store_matrix_sync(o_w + n * 16, oacc, LDO + 8,/' \
    'O accumulator store ldm `LDO` → `LDO + 8`'
m att-kT attention.cu $A "$Q" \
    's/T, wmma::col_major> kf;/T, wmma::row_major> kf;/' \
    'K operand `col_major` → `row_major` (S = Q·K instead of Q·Kᵀ)'
m att-vT attention.cu $A "$Q" \
    's/T, wmma::row_major> vf;/T, wmma::col_major> vf;/' \
    'V operand `row_major` → `col_major` (P·Vᵀ)'
m att-qT attention.cu $A "$Q" \
    's/wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qa/wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::col_major> qa/' \
    'Q operand `row_major` → `col_major`'
m att-max-pair attention.cu $A "$Q" \
    's/mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));//' \
    'softmax max: the lane-pair shuffle step dropped'
m att-sum-pair attention.cu $A "$Q" \
    's/sum += __shfl_xor_sync(0xffffffffu, sum, 1);//' \
    'softmax sum: the lane-pair shuffle step dropped'
m att-no-rescale attention.cu $A "$Q" \
    's/orow\[c\] \*= alpha;/orow[c] *= 1.0f;/' \
    'O not rescaled by α when the running max grows'
m att-row-bound attention.cu $A "$Q" \
    's/if (row >= tile.q_count) break;/if (row > tile.q_count) break;/' \
    'output row bound `>=` → `>` (one row past the tile written)'

# the LayerNorm core and warp reductions shared by embed_ln, bias_residual_ln and the head
m cmn-sum-step common.cuh $K "RR_TEST_QUICK=1 RR_TEST_ONLY=embed_ln" \
    '/rr_warp_sum(float v)/,/return v;/s/o > 0/o > 1/' \
    'warp sum: the last butterfly step (xor 1) dropped'
m cmn-var-uncentred common.cuh $K "RR_TEST_QUICK=1 RR_TEST_ONLY=embed_ln" \
    's/const float t = v\[i\] - mean;/const float t = v[i];/' \
    'LayerNorm variance not centred (E[x²] instead of E[(x−mean)²])'
m cmn-mean-bound common.cuh $K "RR_TEST_QUICK=1 RR_TEST_ONLY=embed_ln" \
    's/if (lane + 32 \* i < d) s += v\[i\];/if (lane + 32 * i < d - 1) s += v[i];/' \
    'LayerNorm mean: column bound `< d` → `< d - 1`'
m cmn-out-bound common.cuh $K "RR_TEST_ONLY=bias_residual_ln" \
    's/if (c < d) out_row\[c\]/if (c <= d) out_row[c]/' \
    'LayerNorm store: column bound `< d` → `<= d` (one element of the next row written)'
# layernorm.cu
m ln-col-bound layernorm.cu $K "RR_TEST_QUICK=1 RR_TEST_ONLY=bias_residual_ln" \
    's/v\[i\] = c < d ? rr_to_f32(xr\[c\]) + bias\[c\]/v[i] = c < d - 1 ? rr_to_f32(xr[c]) + bias[c]/' \
    'load: column bound `< d` → `< d - 1`'
m ln-bias-index layernorm.cu $K "RR_TEST_QUICK=1 RR_TEST_ONLY=bias_residual_ln" \
    's/rr_to_f32(xr\[c\]) + bias\[c\]/rr_to_f32(xr[c]) + bias[i]/' \
    'bias indexed by the register slot `i` instead of the column `c`'
# embed_ln.cu
m emb-col-bound embed_ln.cu $K "RR_TEST_QUICK=1 RR_TEST_ONLY=embed_ln" \
    's/v\[i\] = c < d ? rr_to_f32(w\[c\])/v[i] = c < d - 1 ? rr_to_f32(w[c])/' \
    'load: column bound `< d` → `< d - 1`'
m emb-pos-index embed_ln.cu $K "RR_TEST_QUICK=1 RR_TEST_ONLY=embed_ln" \
    's/pos + (size_t)k.pos \* d/pos + (size_t)k.token * d/' \
    'position table indexed by the token id'
# gelu.cu
m gelu-bias-dim gelu.cu $K "RR_TEST_QUICK=1 RR_TEST_ONLY=bias_gelu" \
    's|bias\[i % (size_t)d\]|bias[i / (size_t)d]|' \
    'bias indexed by the row (`i / d`) instead of the column (`i % d`)'
# head.cu
m head-sync-x head.cu $K "RR_TEST_QUICK=1 RR_TEST_ONLY=head" \
    '/xs\[c\] = rr_to_f32(x\[c\]);/{n;s/__syncthreads();//}' \
    '`__syncthreads()` after staging x in shared memory dropped'
m head-sync-h head.cu $K "RR_TEST_QUICK=1 RR_TEST_ONLY=head" \
    '/if (lane == 0) hs\[j\]/{n;n;s/__syncthreads();//}' \
    '`__syncthreads()` after the dense layer (before the classifier reads h) dropped'
m head-col-bound head.cu $K "RR_TEST_QUICK=1 RR_TEST_ONLY=head" \
    '0,/for (int k = lane; k < d; k += 32)/s//for (int k = lane; k < d - 1; k += 32)/' \
    'dense dot product: column bound `< d` → `< d - 1`'
m head-bias-dim head.cu $K "RR_TEST_QUICK=1 RR_TEST_ONLY=head" \
    's/acc = rr_warp_sum(acc) + dense_b\[j\];/acc = rr_warp_sum(acc) + dense_b[s];/' \
    'dense bias indexed by the sequence `s` instead of the output `j`'

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
# run <test> <environment>: exit status of the test; stderr in $MUT/err, the order that failed
# in $order. Tests that do not run both orders themselves run ascending, then descending.
run() {
    local orders="asc desc" o rc=0
    [[ $BOTH_ORDERS == *" $1 "* ]] && orders=both
    for o in $orders; do
        order=$o
        # shellcheck disable=SC2086 # the environment is a list of assignments
        if [ "$o" = both ]; then
            env -u RR_TEST_QUICK -u RR_HOST_ORDER RR_TEST_SEED=1 $2 \
                timeout 300 "$BUILD/tests/cuda/$1_mutant" >"$MUT/out" 2>"$MUT/err"
        else
            env -u RR_TEST_QUICK RR_HOST_ORDER=$o RR_TEST_SEED=1 $2 \
                timeout 300 "$BUILD/tests/cuda/$1_mutant" >"$MUT/out" 2>"$MUT/err"
        fi
        rc=$?
        [ $rc -ne 0 ] && return $rc
    done
    return 0
}
cleanup() { restore; }
trap cleanup EXIT

selected() { [ "$ONLY" = "  " ] || [[ $ONLY == *" $1 "* ]]; }

# Baseline: every (test, environment) pair in use passes on the unmutated kernels.
restore
declare -A built baseline
for i in "${!IDS[@]}"; do
    selected "${IDS[$i]}" || continue
    t=${TEST[$i]} key="${TEST[$i]} ${ENVS[$i]}"
    if [ -z "${built[$t]:-}" ]; then
        if ! build "$t"; then
            echo "test_cuda_mutants: the unmutated ${t}_mutant does not build:" >&2
            tail -20 "$MUT/build.log" >&2
            exit 1
        fi
        built[$t]=1
    fi
    [ -n "${baseline[$key]:-}" ] && continue
    if ! run "$t" "${ENVS[$i]}"; then
        echo "test_cuda_mutants: the unmutated $t ($order, ${ENVS[$i]}) fails, so no mutant" \
            "can be judged:" >&2
        head -5 "$MUT/err" >&2
        exit 1
    fi
    baseline[$key]=1
done

echo "| id | file | mutation | caught by | first failure (stderr) |"
echo "|---|---|---|---|---|"
start=$SECONDS ran=0
for i in "${!IDS[@]}"; do
    id=${IDS[$i]} f=${FILE[$i]} t=${TEST[$i]}
    selected "$id" || continue
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
    run "$t" "${ENVS[$i]}"
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "| $id | $f | ${WHAT[$i]} | **SURVIVED** $t (${ENVS[$i]}) | |"
        fail=1
        continue
    fi
    # The first line on stderr: a failed check (file:line, then its message without the
    # condition) or the abort message of the runtime or the wmma stand-in.
    first=$(grep -m1 -v '^\s*$' "$MUT/err" |
        sed 's|^FAIL [^ ]*/\([^/ ]*:[0-9]*\): [^:]*: |\1: |' | cut -c1-150 | sed 's/|/\\|/g')
    nf=$(grep -c '^FAIL' "$MUT/err")
    if [ "$order" = both ]; then
        na=$(grep '^FAIL' "$MUT/err" | grep -c '\[asc\]')
        nd=$(grep '^FAIL' "$MUT/err" | grep -c '\[desc\]')
        checks="$nf failed checks ($na asc, $nd desc)"
    else
        checks="$nf failed checks ($order)"
    fi
    case $rc in
    124) how="timeout ($order)" ;;
    134) how="abort ($order)" && [ "$nf" -gt 0 ] && how="$checks, then abort" ;;
    1) how=$checks ;;
    *) how="exit $rc ($order)" ;;
    esac
    echo "| $id | $f | ${WHAT[$i]} | $t: $how, $((SECONDS - t0)) s | \`$first\` |"
done
echo "test_cuda_mutants: $ran mutants in $((SECONDS - start)) s"
[ $fail -eq 0 ] && echo "test_cuda_mutants: every mutant was caught" ||
    echo "test_cuda_mutants: FAIL (see the bold rows)"
exit $fail
