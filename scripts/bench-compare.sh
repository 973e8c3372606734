#!/usr/bin/env bash
# Compares two kmsbench binaries (before and after a change) in the same run: each operation and
# thread count runs ROUNDS times, alternating the two, each on a fresh temporary home on tmpfs
# (/dev/shm) so that the disk's flush floor does not hide the code's cost. Prints the median
# ops/s of each and the ratio new/old.
#   usage: scripts/bench-compare.sh OLD_KMSBENCH NEW_KMSBENCH [ROUNDS (3)] [SECONDS (3)]
#   e.g.:  git worktree add /tmp/old REV && cmake -S /tmp/old -B /tmp/old/b -DKMS_BUILD_TESTS=OFF
#          && cmake --build /tmp/old/b -j2 && scripts/bench-compare.sh /tmp/old/b/kmsbench build/kmsbench
set -euo pipefail
old=${1:?usage: scripts/bench-compare.sh OLD_KMSBENCH NEW_KMSBENCH [ROUNDS] [SECONDS]}
new=${2:?usage: scripts/bench-compare.sh OLD_KMSBENCH NEW_KMSBENCH [ROUNDS] [SECONDS]}
rounds=${3:-3}
seconds=${4:-3}
for b in "$old" "$new"; do
    [ -x "$b" ] || { echo "bench-compare: $b is not an executable kmsbench" >&2; exit 2; }
done
tmp=/dev/shm
[ -d "$tmp" ] && [ -w "$tmp" ] || tmp=${TMPDIR:-/tmp}

# ops_per_sec BINARY OPERATION THREADS
ops_per_sec() {
    TMPDIR=$tmp "$1" --operation "$2" --threads "$3" --seconds "$seconds" |
        sed -nE 's/.*"ops_per_sec": ([0-9]+).*/\1/p' | tail -n 1
}
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

printf '%-16s %7s %12s %12s %7s\n' operation threads old new new/old
for spec in Encrypt:1 Encrypt:2 Decrypt:1 Decrypt:2 GenerateDataKey:1 GenerateDataKey:2 \
    Sign:1 Sign:2 PolicyEvaluate:1; do
    op=${spec%%:*}
    threads=${spec##*:}
    o=() n=()
    for ((i = 0; i < rounds; i++)); do
        o+=("$(ops_per_sec "$old" "$op" "$threads")")
        n+=("$(ops_per_sec "$new" "$op" "$threads")")
    done
    mo=$(printf '%s\n' "${o[@]}" | median)
    mn=$(printf '%s\n' "${n[@]}" | median)
    ratio=$(awk -v a="$mo" -v b="$mn" 'BEGIN {printf "%.3f", (a > 0 ? b / a : 0)}')
    printf '%-16s %7s %12s %12s %7s   (old %s; new %s)\n' "$op" "$threads" "$mo" "$mn" "$ratio" \
        "${o[*]}" "${n[*]}"
done
