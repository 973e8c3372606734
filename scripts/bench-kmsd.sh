#!/usr/bin/env bash
# kmsd's figures (issue 17), everything in one run on this machine, load generator included:
#   1. remote Encrypt and GenerateDataKey through kmsd (kmsbench --endpoint-url: libkms's remote
#      client, SigV4, HTTPS keep-alive) at 1, 16 and 64 connections, each followed by in-process
#      kmsbench on the same home with as many threads (--in-process-too), for a home on tmpfs
#      (/dev/shm) and one on disk (/var/tmp); for the disk home also in-process at 32 threads;
#   2. TLS handshakes per second against kmsd (its certificate's key in the HSM) and against
#      `openssl s_server` with a P-256 key in a file, full (-new) and resumed (-reuse, TLS 1.2),
#      one `openssl s_time` client.
# The throttle is turned off in the benchmark homes (AWS's default quotas would cap the rates).
#   usage: scripts/bench-kmsd.sh [BUILD_DIR [SECONDS]]   (a Release tree: default build, 5 s)
# Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
secs=${2:-5}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kms-bench-kmsd.XXXXXX")
shm=$(mktemp -d /dev/shm/kms-bench-kmsd.XXXXXX)
disk=$(mktemp -d /var/tmp/kms-bench-kmsd.XXXXXX)
pids=()
cleanup() {
    local pid
    [ -f "$tmp/kmsd.pids" ] && while read -r pid; do pids+=("$pid"); done <"$tmp/kmsd.pids"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp" "$shm" "$disk"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    return 1
}

# serve HOME: starts kmsd on a free port, prints the port. It runs in a command substitution's
# subshell, so the server's pid goes to a file the cleanup reads.
serve() {
    local home=$1 p
    "$build/kmsctl" --home "$home" init >/dev/null
    python3 - "$home/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c.setdefault("server", {})["throttle"] = {"Enabled": False}
json.dump(c, open(p, "w"), indent=2)
EOF
    p=$(port)
    "$build/kmsd" --home "$home" --listen "127.0.0.1:$p" --http-listen off --no-scheduler \
        >"$tmp/kmsd-$p.log" 2>&1 &
    echo $! >>"$tmp/kmsd.pids"
    wait_port "$p"
    echo "$p"
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for where in shm disk; do
    home=${!where}/home
    p=$(serve "$home")
    for op in Encrypt GenerateDataKey; do
        echo "# $op, home on $where: remote (connections) then in-process (threads)"
        "$build/kmsbench" --endpoint-url "https://127.0.0.1:$p" --ca-bundle "$home/kmsd-ca.pem" \
            --home "$home" --in-process-too --operation "$op" --seconds "$secs"
    done
    if [ "$where" = disk ]; then
        echo "# Encrypt, home on disk: in-process at 32 threads (durable, group commit)"
        "$build/kmsbench" --home "$home" --operation Encrypt --threads 32 --seconds "$secs"
    fi
done

echo "# TLS handshakes per second, one openssl s_time client, $secs s each"
kp=$(sed -n 's/.*listening on https:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp"/kmsd-*.log | head -1)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/k.pem" \
    -out "$tmp/c.pem" -subj /CN=localhost -days 2 2>/dev/null
sp=$(port)
openssl s_server -quiet -accept "$sp" -cert "$tmp/c.pem" -key "$tmp/k.pem" -www >/dev/null 2>&1 &
pids+=($!)
wait_port "$sp"
real_rate() { # PORT MODE VERSION: connections per real second
    openssl s_time -connect "127.0.0.1:$1" "$2" "$3" -time "$secs" 2>/dev/null |
        sed -n 's/^\([0-9]*\) connections in \([0-9]*\) real seconds.*/\1 \2/p' | head -1 |
        awk '{ if ($2 > 0) printf "%.0f", $1 / $2 }'
}
for mode in -new -reuse; do
    ver=-tls1_3
    [ "$mode" = -reuse ] && ver=-tls1_2
    k=$(real_rate "$kp" "$mode" "$ver")
    o=$(real_rate "$sp" "$mode" "$ver")
    echo "{\"handshakes\": \"${mode#-}\", \"version\": \"${ver#-}\", \"kmsd_per_sec\": ${k:-0}, \"s_server_per_sec\": ${o:-0}}"
done
