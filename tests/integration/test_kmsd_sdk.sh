#!/usr/bin/env bash
# kmsd with the AWS SDK for JavaScript v3 (@aws-sdk/client-kms) and the AWS Encryption SDK for
# JavaScript (KMS keyring, provider "aws-kms", our key ARNs) pointed at it: the SDK side is
# tests/interop/kmsd_sdk.mjs (CreateKey, Encrypt, Decrypt, GenerateDataKey, Sign/Verify,
# CreateAlias/ListAliases, ScheduleKeyDeletion and the refusals a client must see); then an
# Encryption SDK message made through kmsd is decrypted through kmsd, and when kmsctl has
# --endpoint-url, kmsctl and the SDK decrypt each other's messages.
#
# The SDKs are installed as test_interop_js.sh installs them (npm ci of tests/interop into
# $KMS_BUILD_DIR/interop, shared with it); without node >= 18 and npm, or when the install
# fails, the test prints SKIPPED and exits 77.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# node >= 18, npm and the SDKs in $ESDK_NODE_PREFIX, or SKIPPED (before lib.sh, whose exit
# trap would turn a skip into a failure).
. "$HERE/interop_lib.sh"
[ -f "$ESDK_NODE_PREFIX/node_modules/@aws-sdk/client-kms/package.json" ] ||
    skip "@aws-sdk/client-kms is not in $ESDK_NODE_PREFIX"

. "$HERE/lib.sh"

KMSD=${KMSD:-$(dirname "$KMSCTL")/kmsd}
[ -x "$KMSD" ] || { fail "kmsd not built ($KMSD)"; exit 1; }
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; _on_exit' EXIT

init_home
PORT=$(free_port)
"$KMSD" --home "$HOME_DIR" --listen "127.0.0.1:$PORT" --http-listen off --no-scheduler \
    >"$TMP/kmsd.out" 2>"$TMP/kmsd.err" &
PID=$!
PIDS+=("$PID")
for _ in $(seq 300); do
    grep -q "listening on https" "$TMP/kmsd.out" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening on https" "$TMP/kmsd.out" || { fail "kmsd does not start: $(cat "$TMP/kmsd.err")"; exit 1; }

export KMSD_ENDPOINT="https://127.0.0.1:$PORT" KMSD_CA_BUNDLE="$HOME_DIR/kmsd-ca.pem"
export AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
AWS_ACCESS_KEY_ID=$(awk -F' *= *' '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1=="aws_access_key_id"{print $2}' "$HOME_DIR/credentials")
AWS_SECRET_ACCESS_KEY=$(awk -F' *= *' '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1=="aws_secret_access_key"{print $2}' "$HOME_DIR/credentials")
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
sdk() { node "$INTEROP_SRC/kmsd_sdk.mjs" "$@"; }

# ---- The AWS SDK for JavaScript v3 --------------------------------------------------------------
OUT=$(sdk kms-suite 2>&1 || true)
while IFS= read -r line; do
    case "$line" in
    ok\ *) ok "SDK: ${line#ok }" ;;
    FAIL\ *) fail "SDK: ${line#FAIL }" ;;
    esac
done <<<"$OUT"
[[ "$OUT" == *"ok "* ]] || fail "the SDK suite ran no check: $OUT"

# ---- The Encryption SDK's KMS keyring through kmsd ----------------------------------------------
KEY=$(kms create-key --description esdk-through-kmsd --query KeyMetadata.Arn --output text)
head -c 100000 /dev/urandom >"$TMP/plain"
sdk esdk-encrypt --key-id "$KEY" -i "$TMP/plain" -o "$TMP/sdk.msg" --encryption-context purpose=kmsd \
    2>"$TMP/last.err" && ok "ESDK (JS) encrypts with a CMK of kmsd" || fail "ESDK encrypt: $(cat "$TMP/last.err")"
sdk esdk-decrypt --key-id "$KEY" -i "$TMP/sdk.msg" -o "$TMP/sdk.back" --encryption-context purpose=kmsd \
    2>"$TMP/last.err" || true
assert_files_equal "$TMP/sdk.back" "$TMP/plain" "and decrypts through kmsd"
kms decrypt --key-id "$KEY" -i "$TMP/sdk.msg" -o "$TMP/local.back" 2>"$TMP/last.err" || true
assert_files_equal "$TMP/local.back" "$TMP/plain" "kmsctl (on the home) decrypts what the SDK wrote through kmsd"
HELP=$("$KMSCTL" --help 2>&1 || true) # not piped into grep -q, which may cut kmsctl short
if [[ "$HELP" == *--endpoint-url* ]]; then
    R() { "$KMSCTL" --endpoint-url "$KMSD_ENDPOINT" --ca-bundle "$KMSD_CA_BUNDLE" "$@"; }
    R decrypt --key-id "$KEY" -i "$TMP/sdk.msg" -o "$TMP/remote.back" 2>"$TMP/last.err" || true
    assert_files_equal "$TMP/remote.back" "$TMP/plain" "kmsctl --endpoint-url decrypts what the SDK wrote"
    R encrypt --key-id "$KEY" -i "$TMP/plain" -o "$TMP/kmsctl.msg" --encryption-context purpose=kmsd \
        2>"$TMP/last.err" || true
    sdk esdk-decrypt --key-id "$KEY" -i "$TMP/kmsctl.msg" -o "$TMP/kmsctl.back" \
        --encryption-context purpose=kmsd 2>"$TMP/last.err" || true
    assert_files_equal "$TMP/kmsctl.back" "$TMP/plain" "the SDK decrypts what kmsctl --endpoint-url wrote"
fi
kill -TERM "$PID"
RC=0
wait "$PID" || RC=$?
assert_eq "$RC" "0" "kmsd exits 0"
assert_eq "$(kms validate-logs | json_get Valid)" "true" "the trail is valid"
