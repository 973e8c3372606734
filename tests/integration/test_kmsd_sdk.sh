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
: "${KMS_SOURCE_DIR:=$(cd "$HERE/../.." && pwd)}"
: "${KMS_BUILD_DIR:?KMS_BUILD_DIR must name the build directory}"
INTEROP_SRC="$KMS_SOURCE_DIR/tests/interop"
export ESDK_NODE_PREFIX="$KMS_BUILD_DIR/interop"

# ---- node and the SDKs (before lib.sh: its exit trap would turn a skip into a failure) ---------

skip() {
    echo "SKIPPED: $*"
    exit 77
}

command -v node >/dev/null 2>&1 || skip "node is not installed (Debian package nodejs)"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (Debian package npm)"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$NODE_MAJOR" -ge 18 ] 2>/dev/null || skip "node $(node --version 2>/dev/null) is older than 18"
# install_sdk: $ESDK_NODE_PREFIX holds node_modules installed from the current lock file, or
# fail. A new install goes to a staging directory renamed into place, so a failed or interrupted
# one never looks complete.
install_sdk() {
    local stage log
    if [ -f "$ESDK_NODE_PREFIX/.installed" ] &&
        cmp -s "$ESDK_NODE_PREFIX/package-lock.json" "$INTEROP_SRC/package-lock.json" &&
        cmp -s "$ESDK_NODE_PREFIX/package.json" "$INTEROP_SRC/package.json" &&
        [ -f "$ESDK_NODE_PREFIX/node_modules/@aws-crypto/client-node/package.json" ]; then
        return 0
    fi
    stage=$(mktemp -d "$KMS_BUILD_DIR/interop.new.XXXXXX")
    log="$stage.log"
    cp "$INTEROP_SRC/package.json" "$INTEROP_SRC/package-lock.json" "$stage/"
    if ! (cd "$stage" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error \
        --fetch-retries=1 --fetch-timeout=60000) >"$log" 2>&1; then
        echo "npm ci in $stage failed:" >&2
        tail -n 20 "$log" >&2
        rm -rf "$stage" "$log"
        return 1
    fi
    touch "$stage/.installed"
    rm -rf "$ESDK_NODE_PREFIX" "$log"
    mv "$stage" "$ESDK_NODE_PREFIX"
}

mkdir -p "$KMS_BUILD_DIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$KMS_BUILD_DIR/interop.lock"
    flock 9
fi
install_sdk || skip "could not install @aws-crypto/client-node into $ESDK_NODE_PREFIX"
if command -v flock >/dev/null 2>&1; then exec 9>&-; fi
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
