#!/usr/bin/env bash
# The main job, end to end: set up, build, create a KMS home on a fresh SoftHSM token, create a
# key (a CMK), envelope-encrypt a file of a few MB under it with an encryption context, decrypt
# it, and see a wrong context refused; then, briefly, the direct KMS Encrypt of a short string.
#   scripts/demo.sh            (uses ./demo-home; remove it to start again)
#   DEMO_MB=50 scripts/demo.sh (a larger file)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
kmsctl=build/kmsctl
home=${KMS_HOME:-$PWD/demo-home}
mb=${DEMO_MB:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
k() { "$kmsctl" --home "$home" "$@"; }
size() { stat -c %s "$1"; }

if [ ! -f "$home/config.json" ]; then
  echo "== kmsctl init: a KMS home in $home"
  k init
fi
echo "== kmsctl create-key: a customer master key, kept in the HSM"
key=$(k create-key --description "demo key" --output text --query KeyMetadata.KeyId)
k describe-key --key-id "$key" --output text --query KeyMetadata.Arn

echo
echo "== kmsctl encrypt: a ${mb} MB file, envelope-encrypted under the key"
head -c "${mb}M" /dev/urandom > "$work/data.bin"
start=$(date +%s%N)
k encrypt --key-id "$key" --encryption-context purpose=demo,team=storage \
  --in-file "$work/data.bin" --out-file "$work/data.bin.enc"
end=$(date +%s%N)
printf 'plaintext %s bytes -> message %s bytes (AWS Encryption SDK format) in %d ms\n' \
  "$(size "$work/data.bin")" "$(size "$work/data.bin.enc")" $(((end - start) / 1000000))
echo "one HSM call wrapped the message's data key; the frames never reach the HSM"

echo
echo "== kmsctl decrypt, with the encryption context it was written with"
k decrypt --key-id "$key" --encryption-context purpose=demo \
  --in-file "$work/data.bin.enc" --out-file "$work/data.out" --metadata-output "$work/meta.json"
printf 'message %s bytes -> plaintext %s bytes\n' "$(size "$work/data.bin.enc")" \
  "$(size "$work/data.out")"
cmp "$work/data.bin" "$work/data.out"
echo "round trip OK: the decrypted file equals the original (cmp)"
echo "what the message says of itself (--metadata-output):"
sed 's/^/  /' "$work/meta.json"

echo
echo "== a wrong encryption context is refused, and no output file is left behind:"
if k decrypt --key-id "$key" --encryption-context purpose=other \
     --in-file "$work/data.bin.enc" --out-file "$work/wrong.out" 2> "$work/err"; then
  echo "unexpected: decrypt with the wrong context succeeded" >&2
  exit 1
fi
sed 's/^/  /' "$work/err"
if [ -e "$work/wrong.out" ]; then
  echo "unexpected: a failed decrypt left $work/wrong.out" >&2
  exit 1
fi
echo "  (the output file wrong.out was never created)"

echo
echo "== kmsctl kms-encrypt / kms-decrypt: KMS Encrypt of a short string (at most 4 KB)"
printf 'Hello from your own KMS, %s\n' "$(date -u +%FT%TZ)" > "$work/sample"
k kms-encrypt --key-id "$key" --plaintext "fileb://$work/sample" \
  --encryption-context purpose=demo --output text --query CiphertextBlob | base64 -d > "$work/sample.enc"
echo "ciphertext blob: $(size "$work/sample.enc") bytes"
k kms-decrypt --ciphertext-blob "fileb://$work/sample.enc" --encryption-context purpose=demo \
  --output text --query Plaintext | base64 -d > "$work/sample.out"
echo "decrypted: $(cat "$work/sample.out")"
cmp "$work/sample" "$work/sample.out"
echo "round trip OK"
