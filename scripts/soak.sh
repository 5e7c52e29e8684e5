#!/usr/bin/env bash
# Soak test: 10,000 mixed collectives (all-reduce, broadcast, all-gather,
# all-to-all, reduce-scatter, gather, scatter, scan, and non-blocking
# all-reduce and broadcast) of random sizes from 0 bytes to 16 MiB at 4
# ranks, every result checked on every rank (examples/soak.rs). Then checks
# that no request is left pending and that the resident set did not grow:
# at the end it may exceed its size after the warm-up (the first tenth of
# the operations) by at most one largest message, which the allocator may
# keep cached.
#
#   scripts/soak.sh [OPS] [RANKS]       (defaults: 10000 4)
#
# Uses the release build (scripts/setup.sh makes it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ops=${1:-10000}
ranks=${2:-4}
max_bytes=$((16 << 20))
tessera=target/release/tessera
soak=target/release/examples/soak
cargo build --release --locked --bins --examples

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
if ! timeout -k 10 900 "$tessera" run -n "$ranks" "$soak" --ops "$ops" --max-bytes "$max_bytes" >"$log" 2>&1; then
    cat "$log"
    echo "soak: FAILED (the job did not finish cleanly)"
    exit 1
fi
cat "$log"
line=$(grep '^soak: ops=' "$log" | tail -n 1)
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
warm=$(field rss_warm_kib)
end=$(field rss_end_kib)
pending=$(field pending)
early=$(field rss_early_peak_kib)
late=$(field rss_late_peak_kib)
slack=$((max_bytes / 1024))
if [[ -z $warm || -z $end || -z $pending || -z $early || -z $late ]]; then
    echo "soak: FAILED (no summary line)"
    exit 1
fi
if ((pending != 0)); then
    echo "soak: FAILED ($pending requests still pending at the end)"
    exit 1
fi
if ((end > warm + slack)); then
    echo "soak: FAILED (resident set grew from ${warm} KiB after the warm-up to ${end} KiB at the end, more than ${slack} KiB)"
    exit 1
fi
if ((late > early + 4096)); then
    echo "soak: FAILED (the resident set peaked at ${late} KiB in the last third of the run, above its earlier peak of ${early} KiB)"
    exit 1
fi
echo "soak: passed ($ops operations at $ranks ranks in $(($(date +%s) - start)) s; resident set ${warm} KiB after the warm-up, ${end} KiB at the end; no request pending)"
