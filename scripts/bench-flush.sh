#!/usr/bin/env bash
# The disk's flush floor: the time of one durable 4 KiB overwrite (O_DIRECT|O_DSYNC into space
# already written, so no file-system metadata changes), the least any durable record costs its
# caller on this disk. A caller that waits for its own record can therefore complete at most
# 1 / (flush + its own CPU time) operations per second, however records are batched.
#   bash scripts/bench-flush.sh [DIR] [WRITES]     (DIR default: $TMPDIR or /tmp; WRITES 5000)
set -euo pipefail
dir=${1:-${TMPDIR:-/tmp}}
n=${2:-5000}
f=$(mktemp -p "$dir" flush.XXXXXX)
trap 'rm -f "$f"' EXIT
dd if=/dev/zero of="$f" bs=4096 count="$n" conv=fsync status=none
start=$(date +%s%N)
dd if=/dev/zero of="$f" bs=4096 count="$n" oflag=direct,dsync conv=notrunc status=none
end=$(date +%s%N)
awk -v ns=$((end - start)) -v n="$n" -v d="$dir" \
    'BEGIN { printf "{\"dir\": \"%s\", \"writes\": %d, \"flush_us\": %.1f}\n", d, n, ns / n / 1000 }'
