#!/usr/bin/env bash
# The main demo: sets up, then runs on as many ranks as this machine has
# cores (at least 2): what every rank runs on, an all-reduce over all ranks
# checked against its closed form, a verified distributed matrix multiply
# and sort, then the runtime's self-test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh

ranks=$(nproc 2>/dev/null || echo 2)
((ranks < 2)) && ranks=2
tessera=target/release/tessera

echo
echo "== tessera info on $ranks ranks"
"$tessera" run -n "$ranks" info
echo
echo "== all-reduce of 1,000,000 u64 per rank over $ranks ranks"
"$tessera" run -n "$ranks" target/release/examples/allreduce 1000000
echo
echo "== distributed matrix multiply (SUMMA), 2048 x 2048 x 2048 f64, on $ranks ranks"
"$tessera" run -n "$ranks" matmul --m 2048 --k 2048 --n 2048 --verify
echo
echo "== distributed sort (sample sort) of 50,000,000 u32 keys on $ranks ranks"
"$tessera" run -n "$ranks" sort --n 50000000 --dtype u32 --verify
echo
echo "== self-test of every collective on $ranks ranks"
"$tessera" run -n "$ranks" selftest
