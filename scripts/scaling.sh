#!/usr/bin/env bash
# Example scaling sweeps: a strong-scaling matrix multiply and a weak-scaling
# sort, at 1, 2, 4, ... ranks up to this machine's cores (one thread per
# rank), 3 runs each. Each writes scaling.csv, scaling.json and
# scaling.svg/.png under scaling-out/ and prints the table and the fit.
#
#   scripts/scaling.sh              # matmul n = 2048, sort 5M keys per rank
#   N=1024 KEYS=1000000 scripts/scaling.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh

tessera=target/release/tessera
cores=$(nproc 2>/dev/null || echo 2)
ranks=1
p=2
while ((p <= cores)); do
    ranks="$ranks,$p"
    p=$((p * 2))
done
# One oversubscribed point, marked in the outputs and left out of the fit.
ranks="$ranks,$((cores + 1))"

echo
echo "== strong scaling: matmul n = ${N:-2048}, ranks $ranks"
"$tessera" scaling --workload matmul --mode strong --ranks "$ranks" --n "${N:-2048}" \
    --repeat 3 --out scaling-out/matmul-strong
echo
echo "== weak scaling: sort, ${KEYS:-5000000} keys per rank, ranks $ranks"
"$tessera" scaling --workload sort --mode weak --ranks "$ranks" --n "${KEYS:-5000000}" \
    --repeat 3 --out scaling-out/sort-weak
echo
echo "Open the .svg files in a browser; scaling.json has the points and the fit."
