#!/usr/bin/env bash
# Envelope encryption throughput, the figures of the README: `kmsctl encrypt` and `kmsctl
# decrypt` of a 1 GiB file on tmpfs to /dev/null under a CMK, against `openssl speed -evp
# aes-256-gcm` (one core, 16 KiB blocks) and `age` encrypting the same file, measured in the same
# run; and the peak RSS of kmsctl decrypt.
#
#   scripts/bench-envelope.sh              # 1024 MiB, best of 3 runs each
#   SIZE_MIB=256 RUNS=1 scripts/bench-envelope.sh
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${SIZE_MIB:-1024}
runs=${RUNS:-3}
scripts/setup.sh build >/dev/null
command -v age >/dev/null 2>&1 || {
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y -q age >/dev/null 2>&1 || echo "bench: age not installable; its figure is skipped" >&2
}
kmsctl=$PWD/build/kmsctl
dir=$(mktemp -d /dev/shm/kms-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$dir/plain"
"$kmsctl" --home "$dir/home" init >/dev/null
key=$("$kmsctl" --home "$dir/home" create-key --output text --query KeyMetadata.KeyId)
bytes=$((size_mib * 1024 * 1024))

# best_of CMD...: the fastest of $runs wall-clock times, in seconds.
best_of() {
  local best="" t
  for _ in $(seq "$runs"); do
    local start=$EPOCHREALTIME
    "$@" >/dev/null 2>/dev/null
    t=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.3f", b - a}')
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; fi
  done
  echo "$best"
}
gbps() { awk -v b="$bytes" -v t="$1" 'BEGIN{ if (t <= 0) t = 0.001; printf "%.2f", b / t / 1e9 }'; }

openssl_kbs=$(openssl speed -elapsed -seconds 3 -bytes 16384 -evp aes-256-gcm 2>/dev/null |
  awk '/^AES-256-GCM/ {sub("k", "", $2); print $2}')
openssl_gbps=$(awk -v k="$openssl_kbs" 'BEGIN{printf "%.2f", k * 1000 / 1e9}')

"$kmsctl" --home "$dir/home" encrypt --key-id "$key" -i "$dir/plain" -o "$dir/plain.kms" --quiet
enc_t=$(best_of "$kmsctl" --home "$dir/home" encrypt --key-id "$key" -i "$dir/plain" -o /dev/null --quiet)
dec_t=$(best_of "$kmsctl" --home "$dir/home" decrypt --key-id "$key" -i "$dir/plain.kms" -o /dev/null --quiet)
/usr/bin/time -f %M -o "$dir/rss" "$kmsctl" --home "$dir/home" decrypt --key-id "$key" \
  -i "$dir/plain.kms" -o /dev/null --quiet >/dev/null 2>/dev/null
rss_kib=$(tail -n 1 "$dir/rss")

age_t="" age_gbps="n/a"
if command -v age >/dev/null 2>&1; then
  age-keygen -o "$dir/age.key" 2>/dev/null
  recipient=$(age-keygen -y "$dir/age.key")
  age_t=$(best_of age -r "$recipient" -o /dev/null "$dir/plain")
  age_gbps=$(gbps "$age_t")
fi

enc_gbps=$(gbps "$enc_t")
dec_gbps=$(gbps "$dec_t")
pct() { awk -v a="$1" -v b="$openssl_gbps" 'BEGIN{printf "%.0f", 100 * a / b}'; }
echo "size: ${size_mib} MiB on tmpfs, best of $runs, $(nproc) cores"
echo "openssl speed -evp aes-256-gcm (1 core, 16 KiB): ${openssl_gbps} GB/s"
echo "kmsctl encrypt -> /dev/null: ${enc_t} s, ${enc_gbps} GB/s ($(pct "$enc_gbps")% of openssl)"
echo "kmsctl decrypt -> /dev/null: ${dec_t} s, ${dec_gbps} GB/s ($(pct "$dec_gbps")% of openssl)"
if [ -n "$age_t" ]; then
  echo "age -r (X25519) -> /dev/null: ${age_t} s, ${age_gbps} GB/s; kmsctl encrypt is $(awk -v a="$age_t" -v b="$enc_t" 'BEGIN{printf "%.1f", a / b}')x faster"
fi
echo "kmsctl decrypt peak RSS: $((rss_kib / 1024)) MiB"
printf '{"size_mib":%s,"openssl_gbps":%s,"encrypt_gbps":%s,"decrypt_gbps":%s,"age_gbps":"%s","decrypt_peak_rss_kib":%s}\n' \
  "$size_mib" "$openssl_gbps" "$enc_gbps" "$dec_gbps" "$age_gbps" "$rss_kib"
