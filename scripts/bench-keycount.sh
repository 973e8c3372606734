#!/usr/bin/env bash
# What a kmsctl command costs as the keys in its home grow (issue 20, "Cost as the key count
# grows"): for each key count N, a home on tmpfs (/dev/shm) filled with N keys
# (scripts/fill-home.sh), then `kmsctl create-key`, `describe-key` and `kms-encrypt` each run
# ROUNDS times; prints the median wall time of each in milliseconds, and the number of SoftHSM2
# object files one describe-key opens (strace, when installed).
#   usage: scripts/bench-keycount.sh [--fill api|hsm] [--rounds R (5)] BUILD_DIR [N...]
#          (N: 1 1000 10000 by default)
#   --fill api   N real CMKs through kms_call("CreateKey") in one process (default; about N^2
#                time: 10,000 take some 15 minutes)
#   --fill hsm   one real CMK, then N key objects straight into the token
#                (fill-home.sh --hsm-only): what SoftHSM2 loads is the same, 100,000 in a minute
# Homes are kept in /dev/shm/kms-keycount/BUILD-FILL-N (BUILD: the build directory's name; its
# kmsctl init chose the token layout) and reused when already filled; before and after a change:
#   scripts/bench-keycount.sh /tmp/old-build 1 1000 && scripts/bench-keycount.sh build 1 1000
# Remove /dev/shm/kms-keycount afterwards.
set -euo pipefail
fill=api
rounds=5
while [ $# -gt 0 ]; do
    case $1 in
    --fill) fill=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    *) break ;;
    esac
done
build=${1:?usage: scripts/bench-keycount.sh [--fill api|hsm] [--rounds R] BUILD_DIR [N...]}
shift
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 1000 10000)
case $fill in api | hsm) ;; *) echo "bench-keycount: --fill api or hsm" >&2; exit 2 ;; esac
kmsctl=$(cd "$build" && pwd)/kmsctl
# Homes are made by the build measured: the token layout is chosen at init.
tag=$(basename "$(cd "$build" && pwd)")
[ -x "$kmsctl" ] || { echo "bench-keycount: $kmsctl not found" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
base=/dev/shm/kms-keycount
mkdir -p "$base"

key_id() { sed -nE 's/.*"KeyId": *"([^"]*)".*/\1/p' | head -n 1; }
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# ms COMMAND...: wall time of one run in milliseconds
ms() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $kmsctl; fill $fill"
printf '%8s %10s %12s %12s %12s %14s\n' keys objects create-key describe-key kms-encrypt \
    'files/describe'
for n in "${counts[@]}"; do
    home=$base/$tag-$fill-$n
    if [ ! -e "$home/.filled" ]; then
        rm -rf -- "$home"
        "$kmsctl" --home "$home" init >/dev/null
        if [ "$fill" = api ]; then
            "$here/fill-home.sh" "$home" "$n" 2 "$build" 2>/dev/null
        else
            "$kmsctl" --home "$home" create-key --description fill-home >/dev/null
            [ "$n" -le 1 ] || "$here/fill-home.sh" --hsm-only "$home" $((n - 1)) 2>/dev/null
        fi
        "$kmsctl" --home "$home" list-keys --limit 1 | key_id >"$home/.filled"
    fi
    key=$(cat "$home/.filled")
    objects=$(find "$home/hsm/tokens" -name '*.object' ! -name token.object | wc -l)
    c=() d=() e=()
    for ((i = 0; i < rounds; i++)); do
        c+=("$(ms "$kmsctl" --home "$home" create-key --description bench-keycount)")
        d+=("$(ms "$kmsctl" --home "$home" describe-key --key-id "$key")")
        e+=("$(ms "$kmsctl" --home "$home" kms-encrypt --key-id "$key" --plaintext aGVsbG8=)")
    done
    files=-
    if command -v strace >/dev/null; then
        files=$(strace -f -e trace=openat -o /dev/stdout "$kmsctl" --home "$home" describe-key \
            --key-id "$key" 2>/dev/null | grep -c '\.object"' || true)
    fi
    printf '%8s %10s %12s %12s %12s %14s\n' "$n" "$objects" \
        "$(printf '%s\n' "${c[@]}" | median)" "$(printf '%s\n' "${d[@]}" | median)" \
        "$(printf '%s\n' "${e[@]}" | median)" "$files"
done
