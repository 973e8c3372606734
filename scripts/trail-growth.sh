#!/usr/bin/env bash
# How the audit trail grows with short-lived commands (issue 15, item 13): a fresh home, N
# `kmsctl describe-key` runs, then the trail's files counted and measured, and the time per
# command. Prints one JSON line.
#   usage: scripts/trail-growth.sh [KMSCTL (build/kmsctl)] [N (1000)]
set -euo pipefail
kmsctl=${1:-build/kmsctl}
n=${2:-1000}
[ -x "$kmsctl" ] || { echo "trail-growth: $kmsctl is not an executable kmsctl" >&2; exit 2; }
home=$(mktemp -d "${TMPDIR:-/tmp}/kms-growth.XXXXXX")
trap 'rm -rf "$home"' EXIT
"$kmsctl" --home "$home/h" init >/dev/null
key=$("$kmsctl" --home "$home/h" create-key --query KeyMetadata.KeyId --output text)
start=$(date +%s%N)
for ((i = 0; i < n; i++)); do
    "$kmsctl" --home "$home/h" describe-key --key-id "$key" >/dev/null
done
end=$(date +%s%N)
audit="$home/h/audit"
segments=$(find "$audit/segments" -type f | wc -l)
digests=$(find "$audit/digests" -name '*.json' | wc -l)
# Bytes of records (an open segment's preallocated zeros are not counted) and on disk.
record_bytes=$(cat "$audit"/segments/* | tr -d '\0' | wc -c)
disk_kib=$(du -sk "$audit" | cut -f1)
printf '{"commands": %d, "segments": %d, "digests": %d, "record_bytes": %d, "disk_kib": %d, "ms_per_command": %.1f}\n' \
    "$n" "$segments" "$digests" "$record_bytes" "$disk_kib" "$(awk -v a="$start" -v b="$end" -v n="$n" 'BEGIN {print (b - a) / 1e6 / n}')"
