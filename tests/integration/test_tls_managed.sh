#!/usr/bin/env bash
# The example server serving a managed certificate by ARN (tls_server -A), checked by tools
# nobody here wrote: openssl s_client and curl verify it against the home's root CA; the key
# stays in the HSM (pkcs11-tool: sensitive, never extractable); DeleteCertificate is refused
# while the server runs; the scheduler renews under libfaketime and a client connecting to the
# running server afterwards sees the new serial, with no restart; session tickets from a CMK
# resume across a server restart.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

faketime_required

build_examples tls_server
init_home
W="$TMP/w"
mkdir "$W"
printf '{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"Managed TLS Root"}}' >"$W/ca.json"
CA=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$W/ca.json" --query CertificateAuthorityArn --output text)
kms acm-pca get-certificate-authority-certificate --certificate-authority-arn "$CA" \
    --query Certificate --output text >"$W/root.pem"
ARN=$(kms acm request-certificate --domain-name app.internal --key-algorithm EC_prime256v1 \
    --certificate-authority-arn "$CA" --query CertificateArn --output text)
assert_match "$ARN" '^arn:aws:acm:' "a managed certificate for app.internal"
TICKETS=$(kms create-key --key-spec HMAC_256 --key-usage GENERATE_VERIFY_MAC --query KeyMetadata.KeyId --output text)

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; _on_exit' EXIT
# start NAME: the example server of the certificate, tickets from the CMK; sets PORT and PID
start() {
    PORT=$(free_port)
    LD_LIBRARY_PATH="$EXAMPLE_LIBDIR" "$TMP/tls_server" -H "$HOME_DIR" -A "$ARN" -t "$TICKETS" \
        "$PORT" >"$TMP/$1.out" 2>"$TMP/$1.err" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 100); do
        grep -q listening "$TMP/$1.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q listening "$TMP/$1.out" || { fail "the example server does not start: $(cat "$TMP/$1.err")"; exit 1; }
}
# probe [OFFSET] ARGS...: s_client to the server, verifying against the root (at OFFSET days)
probe() {
    local off=+0d
    if [ $# -gt 0 ] && [[ $1 == +* ]]; then off=$1; shift; fi
    at_time "$off" timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -servername app.internal \
        -verify_hostname app.internal -CAfile "$W/root.pem" -verify_return_error -ign_eof "$@" \
        </dev/null 2>&1 || true
}
served_serial() { probe "$@" -showcerts | openssl x509 -noout -serial 2>/dev/null | sed 's/serial=//' | tr A-F a-f; }
described_serial() {
    at_time "${1:-+0d}" "$KMSCTL" --home "$HOME_DIR" acm describe-certificate --certificate-arn "$ARN" \
        --query Certificate.Serial --output text | tr -d :
}

start first
OUT=$(probe)
assert_contains "$OUT" "hello over TLS" "s_client verifies the managed certificate against the root"
assert_contains "$OUT" "Verify return code: 0 (ok)" "the chain and the name verify"
assert_eq "$(served_serial)" "$(described_serial)" "the server serves the certificate's current serial"
BODY=$(curl -sS --http0.9 --max-time 20 --resolve "app.internal:$PORT:127.0.0.1" --cacert "$W/root.pem" "https://app.internal:$PORT/" 2>&1 || true)
assert_contains "$BODY" "hello over TLS" "curl --cacert root.pem succeeds"
curl -sS --http0.9 --max-time 20 --resolve "app.internal:$PORT:127.0.0.1" "https://app.internal:$PORT/" >/dev/null 2>&1 &&
    fail "curl without the CA accepted the server" || ok "curl without the CA refuses"

# The key: in the HSM, sensitive and never extractable.
ID=${ARN##*/}
export SOFTHSM2_CONF="$HOME_DIR/hsm/softhsm2.conf"
PIN=$(head -n1 "$HOME_DIR/pin")
OBJ=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label kms --login --pin "$PIN" --list-objects \
    --type privkey 2>/dev/null | awk -v l="label:      acm:$ID." 'index($0, l) {p=1} p && /Access:/ {print; p=0}')
assert_contains "$OBJ" "sensitive" "pkcs11-tool: the served key is sensitive"
assert_contains "$OBJ" "never extractable" "pkcs11-tool: and never extractable"

D=$(kms acm describe-certificate --certificate-arn "$ARN")
assert_eq "$(json_get Certificate.InUseBy <<<"$D")" "[\"kms-tls-server:$(hostname):$PID:1\"]" "InUseBy names the server"
expect_error ResourceInUseException 254 kms acm delete-certificate --certificate-arn "$ARN"

# ---- renewal under libfaketime, the server running -------------------------------------------
BEFORE=$(served_serial)
REPORT=$(at_time +305d "$KMSCTL" --home "$HOME_DIR" run-scheduler --once)
assert_contains "$REPORT" "$ARN" "the scheduler renews the certificate 60 days before it expires"
AFTER=$(described_serial +305d)
assert_ne "$AFTER" "$BEFORE" "a new serial"
sleep 1.2 # the server looks at the certificate at most once a second
assert_eq "$(served_serial +305d)" "$AFTER" "a client connecting after the renewal gets the new serial"
kill -0 "$PID" 2>/dev/null && ok "with no restart" || fail "the server stopped"
assert_contains "$(probe +305d)" "Verify return code: 0 (ok)" "the renewed certificate verifies"

# ---- session tickets from the CMK: a restart keeps resumption -----------------------------------
probe +305d -tls1_2 -sess_out "$W/session.pem" >/dev/null
kill "$PID"
wait "$PID" 2>/dev/null || true
start second
OUT=$(probe +305d -tls1_2 -sess_in "$W/session.pem")
assert_contains "$OUT" "Reused, TLSv1.2" "a ticket of the first server resumes on the second"


# ---- servers killed outright leave their InUseBy names; DeleteCertificate drops them -----------
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
assert_contains "$(kms acm describe-certificate --certificate-arn "$ARN" --query Certificate.InUseBy --output text)" \
    "kms-tls-server:" "a killed server's name stays in InUseBy"
kms acm delete-certificate --certificate-arn "$ARN" >/dev/null 2>&1 &&
    ok "DeleteCertificate succeeds once the servers' processes are gone" ||
    fail "DeleteCertificate refused with only gone servers in InUseBy"
