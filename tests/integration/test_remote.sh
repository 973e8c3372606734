#!/usr/bin/env bash
# kmsctl and libkms as clients of kmsd (--endpoint-url): key operations and the envelope file
# tools over HTTPS with SigV4, files written remotely read locally on the home and the reverse
# (the envelope library's KMS keyring through the remote client), the events recorded with the
# network's source address, errors mapped back from the server's {"__type", "message"}, the
# commands that need the home refused, a wrong CA bundle, throttling retried then given up after
# the standard retry mode's 3 attempts, a stopped server's KMSNetworkException after the
# retries, and kmsbench's remote mode.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KMSD=${KMSD:-$(dirname "$KMSCTL")/kmsd}
KMSBENCH=${KMSBENCH:-$(dirname "$KMSCTL")/kmsbench}
[ -x "$KMSD" ] || fail "kmsd is not built ($KMSD)"

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; _on_exit' EXIT


init_home
# A tiny CreateAlias quota (one request per 10 s) to see throttling; nothing else is limited.
"$PY" - "$HOME_DIR/config.json" <<'PY'
import json, os, sys
p = sys.argv[1]
c = json.load(open(p))
c.setdefault("server", {})["throttle"] = {"CreateAlias request rate": 0.1}
open(p + ".t", "w").write(json.dumps(c, indent=2))
os.chmod(p + ".t", 0o600)
os.replace(p + ".t", p)
PY
start_kmsd kmsd "$HOME_DIR" --no-scheduler
CA="$HOME_DIR/kmsd-ca.pem"
URL="https://127.0.0.1:$PORT"
# The client side: the home's credentials file (its default profile, the admin), nothing else.
REMOTE=("$KMSCTL" --home "$HOME_DIR" --endpoint-url "$URL" --ca-bundle "$CA")
remote() { "${REMOTE[@]}" "$@"; }
unset AWS_REGION AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_PROFILE || true

# ---- Key operations over the wire ---------------------------------------------------------------
KEY=$(remote create-key --description "made remotely" --output text --query KeyMetadata.KeyId)
assert_match "$KEY" '^[0-9a-f-]{36}$' "create-key through --endpoint-url"
assert_eq "$(kms describe-key --key-id "$KEY" --output text --query KeyMetadata.Description)" \
    "made remotely" "the key is in the server's home"
CT=$(remote kms-encrypt --key-id "$KEY" --plaintext aGVsbG8gcmVtb3Rl --output text --query CiphertextBlob)
printf %s "$CT" | base64 -d >"$TMP/ct.bin"
assert_eq "$(remote kms-decrypt --ciphertext-blob "fileb://$TMP/ct.bin" --output text --query Plaintext)" \
    "aGVsbG8gcmVtb3Rl" "kms-encrypt and kms-decrypt round trip remotely"
assert_eq "$(kms kms-decrypt --ciphertext-blob "fileb://$TMP/ct.bin" --output text --query Plaintext)" \
    "aGVsbG8gcmVtb3Rl" "a remote ciphertext decrypts on the home"
OUT=$(KMS_ENDPOINT_URL=$URL KMS_CA_BUNDLE=$CA "$KMSCTL" --home "$HOME_DIR" generate-data-key \
    --key-id "$KEY" --key-spec AES_256 --output text --query KeyId)
assert_match "$OUT" "key/$KEY\$" "KMS_ENDPOINT_URL and KMS_CA_BUNDLE in the environment"
OUT=$(AWS_CA_BUNDLE=$CA "$KMSCTL" --home "$HOME_DIR" --endpoint-url "$URL" list-keys --output text)
assert_contains "$OUT" "$KEY" "AWS_CA_BUNDLE too"
OUT=$(remote acm list-certificates)
assert_contains "$OUT" "CertificateSummaryList" "acm (CertificateManager target) remotely"
remote create-alias --alias-name alias/remote-app --target-key-id "$KEY"
ok "create-alias remotely"

# ---- Envelope files across remote and local ------------------------------------------------------
head -c 300000 /dev/urandom >"$TMP/data"
remote encrypt --key-id alias/remote-app -i "$TMP/data" -o "$TMP/data.r.enc"
kms decrypt --discovery -i "$TMP/data.r.enc" -o "$TMP/data.r.dec"
assert_files_equal "$TMP/data" "$TMP/data.r.dec" "encrypt remotely, decrypt on the home"
kms encrypt --key-id "$KEY" -i "$TMP/data" -o "$TMP/data.l.enc"
remote decrypt --key-id "$KEY" -i "$TMP/data.l.enc" -o "$TMP/data.l.dec"
assert_files_equal "$TMP/data" "$TMP/data.l.dec" "encrypt on the home, decrypt remotely"
printf 'x' | dd of="$TMP/data.l.enc" bs=1 seek=2000 conv=notrunc 2>/dev/null
expect_error InvalidCiphertextException 254 remote decrypt --key-id "$KEY" -i "$TMP/data.l.enc" -o "$TMP/bad.dec"
[ ! -e "$TMP/bad.dec" ] && ok "a tampered file leaves no output remotely" || fail "output left"

# ---- What the server recorded ---------------------------------------------------------------------
OUT=$(remote lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=CreateKey)
assert_contains "$OUT" 'sourceIPAddress\":\"127.0.0.1\"' "lookup-events remotely: the record names the peer"
assert_contains "$OUT" "kmsctl/" "and kmsctl's user agent"

# ---- STS over the query protocol --------------------------------------------------------------
rc=0
remote get-caller-identity >"$TMP/gci.out" 2>"$TMP/gci.err" || rc=$?
{
    assert_eq "$rc" 0 "get-caller-identity remotely (STS query protocol): $(cat "$TMP/gci.err")"
    assert_contains "$(cat "$TMP/gci.out")" ":user/admin" "it names the profile's user"
    SESSION=$(remote get-session-token --duration-seconds 900)
    assert_match "$SESSION" '"Expiration": "20[0-9]{2}-[0-9-]+T[0-9:]+\+00:00"' "get-session-token remotely: Expiration in ISO 8601, as the aws CLI prints it"
    kms assume-role --role-arn arn:aws:iam::000000000000:role/nope --role-session-name xy \
        >/dev/null 2>"$TMP/ar.err" || true
    LOCAL_TYPE=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["__type"])' "$TMP/ar.err")
    expect_error "$LOCAL_TYPE" 254 remote assume-role --role-arn arn:aws:iam::000000000000:role/nope \
        --role-session-name xy
    ok "an STS error comes back as the home gives it ($LOCAL_TYPE)"
}

# ---- Errors mapped back, and what stays on the server's machine --------------------------------
expect_error NotFoundException 254 remote describe-key --key-id alias/nope
assert_contains "$ERR_MSG" "alias/nope" "the server's message is kept"
ADMIN=$(sed -n 's/^aws_access_key_id *= *//p' "$HOME_DIR/credentials" | head -1)
# The environment's credentials come before the home's default profile.
expect_error InvalidSignatureException 254 env KMS_ACCESS_KEY_ID="$ADMIN" \
    KMS_SECRET_ACCESS_KEY=wrongwrongwrong "${REMOTE[@]}" list-keys
expect_error UnrecognizedClientException 254 env AWS_ACCESS_KEY_ID=AKIAUNKNOWNUNKNOWN00 \
    AWS_SECRET_ACCESS_KEY=x "${REMOTE[@]}" list-keys
for c in validate-logs advisor run-scheduler get-audit-anchor; do
    expect_error UnsupportedOperationException 254 remote $c
    assert_contains "$ERR_MSG" "server's machine" "$c says where it runs"
done
expect_error UnsupportedOperationException 254 remote list-users
assert_contains "$ERR_MSG" "not available over --endpoint-url" "IAM (query protocol) says so"
expect_error KMSNetworkException 254 "$KMSCTL" --home "$HOME_DIR" --endpoint-url "$URL" \
    --ca-bundle /etc/ssl/certs/ca-certificates.crt list-keys
assert_contains "$ERR_MSG" "--ca-bundle" "an untrusted server: the message says to trust its CA"
expect_error ValidationException 254 "$KMSCTL" --home "$HOME_DIR" --endpoint-url "http://127.0.0.1:$PORT" list-keys

# ---- Throttling: retried as the standard mode does, then ThrottlingException ----------------------
# The bucket (1 request, refilled in 10 s) was emptied by create-alias above; the 3 attempts fit
# in the 3 s the backoff waits at most, so all are refused.
rc=0
remote create-alias --alias-name alias/second --target-key-id "$KEY" >"$TMP/thr.out" 2>"$TMP/thr.err" || rc=$?
assert_eq "$rc" 254 "CreateAlias over its quota fails"
{
    assert_contains "$(cat "$TMP/thr.err")" '"ThrottlingException"' "a throttled request fails with ThrottlingException"
    assert_contains "$(cat "$TMP/thr.err")" "Rate exceeded" "in AWS's words"
    N=$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=CreateAlias |
        "$PY" -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin)["Events"] if json.loads(e["CloudTrailEvent"]).get("errorCode") == "ThrottlingException"))')
    assert_eq "$N" "3" "the server saw 3 attempts of the throttled request"
    sleep 10
    remote create-alias --alias-name alias/second --target-key-id "$KEY"
    ok "once the bucket refilled, the same request goes through"
}

# ---- kmsbench's remote mode -------------------------------------------------------------------------
[ -x "$KMSBENCH" ] || fail "kmsbench is not built ($KMSBENCH)"
{
    OUT=$("$KMSBENCH" --endpoint-url "$URL" --ca-bundle "$CA" --home "$HOME_DIR" --operation Encrypt \
        --connections 2 --seconds 0.5)
    assert_match "$OUT" '"connections": 2, .*"ops_per_sec": [0-9]+, "p50_ms": [0-9.]+, "p99_ms": [0-9.]+' \
        "kmsbench --endpoint-url reports ops/s and p50/p99"
}

# ---- A stopped server --------------------------------------------------------------------------------
kill -TERM "$PID"
wait "$PID" || true
expect_error KMSNetworkException 254 remote kms-encrypt --key-id "$KEY" --plaintext aGk=
assert_contains "$ERR_MSG" "$URL (3 attempts)" "after the standard mode's 3 attempts, naming the endpoint"
