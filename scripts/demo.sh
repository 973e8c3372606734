#!/usr/bin/env bash
# The main job, end to end: set up, build, create a KMS home on a fresh SoftHSM token, create a
# key, encrypt and decrypt a sample with it and show the result.
#   scripts/demo.sh            (uses ./demo-home; remove it to start again)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
kmsctl=build/kmsctl
home=${KMS_HOME:-$PWD/demo-home}

if [ ! -f "$home/config.json" ]; then
  echo "== kmsctl init: a KMS home in $home"
  $kmsctl --home "$home" init
fi
echo "== kmsctl create-key"
key=$($kmsctl --home "$home" create-key --description "demo key" --output text --query KeyMetadata.KeyId)
$kmsctl --home "$home" describe-key --key-id "$key"

sample=$(mktemp)
trap 'rm -f "$sample" "$sample.enc" "$sample.out"' EXIT
printf 'Hello from your own KMS, %s\n' "$(date -u +%FT%TZ)" > "$sample"
echo "== kmsctl kms-encrypt (encryption context purpose=demo)"
$kmsctl --home "$home" kms-encrypt --key-id "$key" --plaintext "fileb://$sample" \
  --encryption-context purpose=demo --output text --query CiphertextBlob | base64 -d > "$sample.enc"
echo "ciphertext blob: $(wc -c < "$sample.enc") bytes, starts $(head -c 16 "$sample.enc" | od -An -tx1 | tr -d ' \n')"
echo "== kmsctl kms-decrypt"
$kmsctl --home "$home" kms-decrypt --ciphertext-blob "fileb://$sample.enc" \
  --encryption-context purpose=demo --output text --query Plaintext | base64 -d > "$sample.out"
echo "decrypted: $(cat "$sample.out")"
cmp -s "$sample" "$sample.out" && echo "round trip OK: the decrypted text equals the sample"
echo "== a wrong encryption context is refused:"
if $kmsctl --home "$home" kms-decrypt --ciphertext-blob "fileb://$sample.enc" \
     --encryption-context purpose=other >/dev/null; then
  echo "unexpected: decrypt with the wrong context succeeded" >&2
  exit 1
fi
