#!/usr/bin/env bash
# GPU check: correctness first, then speed, on a machine with an NVIDIA GPU.
# Every step has its own time limit, and its output goes to a log of its own
# in OUT_DIR, so a run with little machine time comes back with whatever
# finished. Nothing here is needed without a GPU: the tests cover the device
# code paths on the emulated GPU.
#
# Usage: scripts/gpu-check.sh [OUT_DIR]      (default: gpu-check-out)
#   TESSERA_BIN   the tessera binary (default: target/release/tessera)
#   DEVICE        cuda (default), or emulated for a dry run of this script
#                 without a GPU (tiny sizes; needs TESSERA_EMU_LIB)
#   QUICK=1       the speed steps at small sizes only
#
# Steps (each "ok", "FAILED (status N)" or "TIMED OUT" in OUT_DIR/summary):
#   correctness: sort --verify (every key type, sample and merge, 1/2/4
#   ranks, keys generated on the device and on the host from a file),
#   matmul --verify (f32 and f64, Tessera and cuBLAS, 1/2/4 ranks), bench
#   sort (device result equal to the CPU's), compute-sanitizer memcheck on a
#   small sort and matmul where it is installed;
#   speed: bench copy, bench gemm, bench sort, sort and matmul end to end at
#   1/2/4 ranks (--json, for BENCHMARKS.md).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${1:-gpu-check-out}
TESSERA=${TESSERA_BIN:-$ROOT/target/release/tessera}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT_DIR"
SUMMARY=$OUT_DIR/summary
: >"$SUMMARY"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
if [[ -d /usr/local/cuda/lib64 ]]; then
    export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

if [[ $DEVICE == emulated ]]; then
    SORT_N=3001 MAT_N=96 BIG_SORT=20000 BIG_MAT=128 COPY_MIB=1 CHECK_SORT=4096 RANKS=(1 2) QUICK=1
else
    SORT_N=2000003 MAT_N=1500 BIG_SORT=200000000 BIG_MAT=8192 COPY_MIB=64,1024 CHECK_SORT=1048576 RANKS=(1 2 4)
    if [[ ${QUICK:-0} == 1 ]]; then BIG_SORT=20000000 BIG_MAT=4096 COPY_MIB=64; fi
fi

# step NAME LIMIT ARGS...: runs ARGS with a time limit, logs, records.
step() {
    local name=$1 limit=$2 rc=0 t0
    shift 2
    t0=$(date +%s.%N)
    timeout -k 5 "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1 || rc=$?
    local took
    took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    case $rc in
        0) echo "$name: ok ($took s)" ;;
        124 | 137) echo "$name: TIMED OUT after $limit s" ;;
        *) echo "$name: FAILED (status $rc, $took s; see $name.log)" ;;
    esac | tee -a "$SUMMARY"
}

# job NAME LIMIT RANKS ARGS...: a tessera job of RANKS ranks as a step.
job() {
    local name=$1 limit=$2 n=$3
    shift 3
    step "$name" "$limit" "$TESSERA" run -n "$n" -- "$TESSERA" "$@"
}

"$TESSERA" info --json >"$OUT_DIR/info.json" 2>&1 || true

# --- correctness --------------------------------------------------------------
for p in "${RANKS[@]}"; do
    for t in u32 u64 i32 i64 f32 f64; do
        job "sort-verify-$t-p$p" 120 "$p" sort --n "$SORT_N" --dtype "$t" --dist normal \
            --device "$DEVICE" --verify
    done
    job "sort-verify-merge-p$p" 120 "$p" sort --n "$SORT_N" --algo merge --dist few \
        --device "$DEVICE" --verify
    for d in f32 f64; do
        for g in tessera cublas; do
            [[ $DEVICE == emulated && $g == cublas ]] && continue
            job "matmul-verify-$d-$g-p$p" 120 "$p" matmul --m "$MAT_N" --k "$MAT_N" \
                --n "$MAT_N" --dtype "$d" --gemm-backend "$g" --device "$DEVICE" --verify --repeat 1
        done
    done
done
# Keys from a file: the host path of the GPU sort.
job sort-file-out 120 2 sort --n "$SORT_N" --dtype f64 --device "$DEVICE" --out "$OUT_DIR/keys.npy"
job sort-file-in 120 2 sort --input "$OUT_DIR/keys.npy" --device "$DEVICE" --verify
rm -f "$OUT_DIR/keys.npy"
job bench-sort-matches 180 1 bench sort --device "$DEVICE" --dtype u64 --n "$CHECK_SORT"
if [[ $DEVICE != emulated ]] && command -v compute-sanitizer >/dev/null; then
    step sanitizer-sort 300 compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$TESSERA" sort --n 100000 --dtype f32 --device "$DEVICE" --verify
    step sanitizer-matmul 300 compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$TESSERA" matmul --m 300 --k 200 --n 100 --device "$DEVICE" --verify --repeat 1
fi

# --- speed ---------------------------------------------------------------------
job bench-copy 120 1 bench copy --device "$DEVICE" --mib "$COPY_MIB"
for d in f32 f64; do
    job "bench-gemm-$d" 180 1 bench gemm --device "$DEVICE" --dtype "$d" --n "$BIG_MAT"
done
job bench-sort-u32 180 1 bench sort --device "$DEVICE" --dtype u32 --n "$BIG_SORT"
for p in "${RANKS[@]}"; do
    job "sort-speed-p$p" 180 "$p" sort --n "$BIG_SORT" --device "$DEVICE" --json
    job "matmul-speed-p$p" 180 "$p" matmul --m "$BIG_MAT" --k "$BIG_MAT" --n "$BIG_MAT" \
        --dtype f32 --device "$DEVICE" --repeat 3 --json
done

echo "gpu-check: $(grep -c ': ok' "$SUMMARY") ok, $(grep -vc ': ok' "$SUMMARY") not; logs in $OUT_DIR"
! grep -q -v ': ok' "$SUMMARY"
