#!/usr/bin/env bash
# Issue 20's figures in one run: durable audited GenerateDataKey (or --operation) at 1, 2, 8 and
# 32 threads, with the home on disk and on tmpfs, for one kmsbench or two (before and after),
# alternating the binaries at each step so that both see the same machine. Each cell is the
# median of ROUNDS runs; the group commit's figures (records per flush, fdatasync per flush, what
# an operation waited for) are those of the median run. The disk's flush floor (one durable 4 KiB
# overwrite, scripts/bench-flush.sh) is measured at the start and the end.
#   usage: scripts/bench-scale.sh NEW_KMSBENCH [OLD_KMSBENCH] [ROUNDS (3)] [SECONDS (3)]
#   env:   DISK_DIR (default /var/tmp), SHM_DIR (default /dev/shm), OPERATION (GenerateDataKey),
#          THREADS ("1 2 8 32")
# Prints a Markdown table; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
new=${1:?usage: scripts/bench-scale.sh NEW_KMSBENCH [OLD_KMSBENCH] [ROUNDS] [SECONDS]}
old=${2:-}
rounds=${3:-3}
seconds=${4:-3}
disk=${DISK_DIR:-/var/tmp}
shm=${SHM_DIR:-/dev/shm}
op=${OPERATION:-GenerateDataKey}
threads=${THREADS:-1 2 8 32}
for b in "$new" ${old:+"$old"}; do
    [ -x "$b" ] || { echo "bench-scale: $b is not an executable kmsbench" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run BINARY DIR THREADS OUT: ROUNDS runs, one JSON line each, into OUT
run() {
    TMPDIR=$2 "$1" --operation "$op" --threads "$3" --seconds "$seconds" >>"$4"
}

# cell FILE: "ops/s (p50 / p99 ms)[; records per flush, fdatasync us, audit wait us]" of the
# median run (by ops/s)
cell() {
    python3 - "$1" <<'EOF'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs.sort(key=lambda r: r["ops_per_sec"])
r = runs[(len(runs) - 1) // 2]
s = f'{r["ops_per_sec"]:,} ({r["p50_ms"]:.2f} / {r["p99_ms"]:.1f})'
if "records_per_flush" in r:
    f = r["records_per_flush"]
    s += f'; {f["mean"]:.1f} rec/flush (p50 ≤{f["p50_at_most"]}, p99 ≤{f["p99_at_most"]})'
    if r["sync_us_per_flush"] >= 1:
        s += f', fdatasync {r["sync_us_per_flush"]:.0f} µs'
    s += f', waits µs: record {r["wait_us_per_op"]["audit_record"]:.0f}, HSM session {r["wait_us_per_op"]["hsm_session"]:.0f}, db {r["wait_us_per_op"]["database"]:.0f}'
print(s)
EOF
}

echo "# $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
floor_start=$(bash scripts/bench-flush.sh "$disk" 2000)
echo "# flush floor at the start: $floor_start"
echo "# $op, kmsbench --seconds $seconds, median of $rounds; ops/s (p50 / p99 ms)"
echo
if [ -n "$old" ]; then
    echo "| home, threads | before | after | after / before |"
    echo "|---|---|---|---|"
else
    echo "| home, threads | ops/s (p50 / p99 ms); group commit |"
    echo "|---|---|"
fi
for where in disk tmpfs; do
    dir=$disk
    [ "$where" = tmpfs ] && dir=$shm
    for t in $threads; do
        : >"$tmp/new" && : >"$tmp/old"
        for ((i = 0; i < rounds; i++)); do
            [ -n "$old" ] && run "$old" "$dir" "$t" "$tmp/old"
            run "$new" "$dir" "$t" "$tmp/new"
        done
        cp "$tmp/new" "$tmp/$where-$t"
        if [ -n "$old" ]; then
            ratio=$(python3 - "$tmp/old" "$tmp/new" <<'EOF'
import json, statistics, sys
med = lambda p: statistics.median(json.loads(l)["ops_per_sec"] for l in open(p) if l.strip())
print(f"{med(sys.argv[2]) / med(sys.argv[1]):.2f}")
EOF
)
            echo "| $where, $t | $(cell "$tmp/old") | $(cell "$tmp/new") | $ratio |"
        else
            echo "| $where, $t | $(cell "$tmp/new") |"
        fi
    done
done
floor_end=$(bash scripts/bench-flush.sh "$disk" 2000)
echo
echo "# flush floor at the end: $floor_end"
# Two callers that each wait for their own record complete at most 2 / (CPU + flush) operations a
# second: CPU from the tmpfs figure at 1 thread, flush the mean of the two floors.
if [ -f "$tmp/tmpfs-1" ] && [ -f "$tmp/disk-2" ]; then
    python3 - "$tmp/tmpfs-1" "$tmp/disk-2" "$floor_start" "$floor_end" <<'EOF'
import json, statistics, sys
med = lambda p: statistics.median(json.loads(l)["ops_per_sec"] for l in open(p) if l.strip())
cpu = 1 / med(sys.argv[1])
flush = (json.loads(sys.argv[3])["flush_us"] + json.loads(sys.argv[4])["flush_us"]) / 2e6
bound = 2 / (cpu + flush)
got = med(sys.argv[2])
print(f"# 2 threads on disk: {got:,.0f}/s against 2 / (CPU {cpu * 1e6:.0f} us + flush "
      f"{flush * 1e6:.0f} us) = {bound:,.0f}/s: {got / bound:.2f} of the bound")
EOF
fi
