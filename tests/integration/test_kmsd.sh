#!/usr/bin/env bash
# kmsd, the HTTPS server, checked with clients nobody here wrote: openssl s_client and curl
# verify its first-start certificate against HOME/kmsd-ca.pem (IP SAN 127.0.0.1, key in the HSM);
# /health, /metrics (loopback only, then closed by a SIGHUP'd metrics_allow); AWS's refusals
# (UnknownOperationException, an unsigned request) with x-amzn-RequestId; an oversized body gets
# 413 and Connection: close; a slow client is cut at the header deadline; many idle connections
# do not keep a new client out; clients that vanish mid-response do not stop a worker; a renewed
# certificate is served; two kmsd on one fresh home make one CA and serve together; SIGTERM exits
# 0 with the trail sealed and valid. With the network service in libkms (kms_call_network): the
# aws CLI v2 against it (create-key, encrypt, decrypt, list-aliases).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KMSD=${KMSD:-$(dirname "$KMSCTL")/kmsd}
[ -x "$KMSD" ] || { fail "kmsd not built ($KMSD)"; exit 1; }
CLIENTS="$(dirname "${BASH_SOURCE[0]}")/kmsd_clients.py"
# The aws CLI v2 of Debian (a pyenv shim may carry v1 first on PATH).
AWS=/usr/bin/aws
[ -x "$AWS" ] || { fail "the aws CLI v2 is not installed (Debian package awscli)"; exit 1; }

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; _on_exit' EXIT

# stop_kmsd PID: SIGTERM, then its exit status in STOPPED (not in $(...): wait needs this shell)
stop_kmsd() {
    kill -TERM "$1"
    STOPPED=0
    wait "$1" || STOPPED=$?
}
api() { # api TARGET BODY [CURL ARGS...]: POST / with headers, -i output
    local target=$1 body=$2
    shift 2
    curl -sS -i --max-time 20 --cacert "$HOME_DIR/kmsd-ca.pem" "https://127.0.0.1:$PORT/" \
        -H "X-Amz-Target: $target" -H "Content-Type: application/x-amz-json-1.1" \
        --data-binary "$body" "$@" 2>&1 || true
}
# The service side (kms_call_network) is part of libkms: every group below runs.
network_service() { true; }

init_home
# max_connections set: its default is bounded by memory / max_body_bytes (below 10,000 on small machines)
set_server "$HOME_DIR" '{"header_timeout_seconds": 3, "body_timeout_seconds": 2, "idle_timeout_seconds": 5, "drain_seconds": 5, "max_connections": 65536}'

# ---- First start: the CA and the server's certificate -------------------------------------------
start_kmsd first "$HOME_DIR"
CA_PEM="$HOME_DIR/kmsd-ca.pem"
[ -s "$CA_PEM" ] && ok "first start writes kmsd-ca.pem" || fail "no $CA_PEM"
assert_contains "$(cat "$TMP/first.out")" "--ca-bundle $CA_PEM" "first start says how to trust the CA"
CERT_ARN=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["server"]["certificate_arn"])' "$HOME_DIR/config.json")
CA_ARN=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["server"]["ca_arn"])' "$HOME_DIR/config.json")
assert_match "$CERT_ARN" '^arn:aws:acm:' "config.json's server section names the certificate"
assert_match "$CA_ARN" '^arn:aws:acm-pca:' "and its CA"
OUT=$(timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CA_PEM" -verify_return_error \
    -verify_ip 127.0.0.1 </dev/null 2>&1 || true)
assert_contains "$OUT" "Verify return code: 0 (ok)" "s_client verifies the server against kmsd-ca.pem (IP 127.0.0.1)"
TEXT=$(timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CA_PEM" </dev/null 2>/dev/null |
    openssl x509 -noout -text 2>/dev/null || true)
assert_contains "$TEXT" "IP Address:127.0.0.1" "the certificate names IP 127.0.0.1"
assert_contains "$TEXT" "IP Address:0:0:0:0:0:0:0:1" "and ::1"
assert_contains "$TEXT" "DNS:localhost" "and localhost"
ID=${CERT_ARN##*/}
PIN=$(head -n1 "$HOME_DIR/pin")
OBJ=$(SOFTHSM2_CONF="$HOME_DIR/hsm/softhsm2.conf" pkcs11-tool --module "$SOFTHSM_MODULE" --token-label kms \
    --login --pin "$PIN" --list-objects --type privkey 2>/dev/null |
    awk -v l="label:      acm:$ID." 'index($0, l) {p=1} p && /Access:/ {print; p=0}')
assert_contains "$OBJ" "never extractable" "the server's key is in the HSM, never extractable"

# ---- Endpoints besides the API --------------------------------------------------------------------
H=$(curl -sS --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/health")
assert_eq "$(json_get Status <<<"$H")" "ok" "GET /health answers ok"
# A response leaves in one TLS record (head and body together): openssl s_client -msg shows each
# record it receives; application data is inner content type 0x17.
R=$( (printf 'GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n'; sleep 1) |
    timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CA_PEM" -msg -ign_eof -quiet 2>&1 || true)
assert_contains "$R" '{"Status":"ok"' "s_client reads /health"
assert_eq "$(grep -A1 '<<< TLS 1.3, InnerContent' <<<"$R" | grep -c '^    17$')" 1 "and the response came in one TLS record"
assert_eq "$(json_get Region <<<"$H")" "us-east-1" "and the region"
M=$(curl -sS --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/metrics")
assert_contains "$M" "kmsd_connections " "GET /metrics from loopback: the connection gauge"
assert_match "$M" "kmsd_certificate_expiry_seconds\\{certificate_arn=\"$CERT_ARN\"\\} 31[0-9]{6}" "and the time to the certificate's expiry (about 365 days)"
P=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 "http://127.0.0.1:$HPORT/health" || true)
assert_eq "$P" "404" "plain HTTP serves nothing but CRLs and OCSP"

# ---- Revocation for relying parties, on plain HTTP ------------------------------------------------
printf '{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"Relying CA"}}' >"$TMP/rca.json"
printf '{"CrlConfiguration":{"Enabled":true,"ExpirationInDays":3,"CustomCname":"127.0.0.1:%s"},"OcspConfiguration":{"Enabled":true,"OcspCustomCname":"127.0.0.1:%s"}}' \
    "$HPORT" "$HPORT" >"$TMP/rrev.json"
RCA=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$TMP/rca.json" \
    --revocation-configuration "file://$TMP/rrev.json" --query CertificateAuthorityArn --output text)
kms acm-pca get-certificate-authority-certificate --certificate-authority-arn "$RCA" \
    --query Certificate --output text >"$TMP/rca.pem"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/app.key" \
    -subj /CN=app.internal -addext "subjectAltName=DNS:app.internal" -out "$TMP/app.csr" 2>/dev/null
for n in good revoked; do
    A=$(kms acm-pca issue-certificate --certificate-authority-arn "$RCA" --csr "fileb://$TMP/app.csr" \
        --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS --query CertificateArn --output text)
    kms acm-pca get-certificate --certificate-authority-arn "$RCA" --certificate-arn "$A" \
        --query Certificate --output text >"$TMP/$n.pem"
done
kms acm-pca revoke-certificate --certificate-authority-arn "$RCA" \
    --certificate-serial "$(openssl x509 -in "$TMP/revoked.pem" -noout -serial | cut -d= -f2)" \
    --revocation-reason KEY_COMPROMISE >/dev/null
OCSP_URL=$(openssl x509 -in "$TMP/good.pem" -noout -ocsp_uri)
assert_eq "$OCSP_URL" "http://127.0.0.1:$HPORT/ocsp" "the certificates name kmsd's OCSP responder"
O=$(openssl ocsp -issuer "$TMP/rca.pem" -cert "$TMP/good.pem" -cert "$TMP/revoked.pem" -url "$OCSP_URL" \
    -CAfile "$TMP/rca.pem" -timeout 20 2>&1 || true)
assert_contains "$O" "Response verify OK" "openssl ocsp (POST): the response verifies"
assert_contains "$O" "good.pem: good" "the good certificate: good"
assert_contains "$O" "revoked.pem: revoked" "and the revoked one: revoked (every certificate answered)"
openssl ocsp -issuer "$TMP/rca.pem" -cert "$TMP/good.pem" -reqout "$TMP/req.der" >/dev/null 2>&1
ENC=$("$PY" -c 'import base64,sys,urllib.parse; print(urllib.parse.quote(base64.b64encode(open(sys.argv[1],"rb").read()).decode(), safe=""))' "$TMP/req.der")
curl -sS --max-time 20 -o "$TMP/resp.der" "http://127.0.0.1:$HPORT/ocsp/$ENC" || true
O=$(openssl ocsp -respin "$TMP/resp.der" -reqin "$TMP/req.der" -VAfile "$TMP/rca.pem" -resp_text 2>&1 || true)
assert_contains "$O" "Response verify OK" "OCSP over GET (RFC 6960 A.1): the response verifies"
assert_contains "$O" "Cert Status: good" "and answers good"
CRL_URL=$(openssl x509 -in "$TMP/good.pem" -noout -ext crlDistributionPoints | sed -n 's/.*URI://p' | head -n1)
assert_match "$CRL_URL" "^http://127.0.0.1:$HPORT/crl/[0-9a-f-]+\\.crl$" "the certificates name kmsd's CRL URL"
CT=$(curl -sS --max-time 20 -o "$TMP/ca.crl" -w '%{content_type}' "$CRL_URL" || true)
assert_eq "$CT" "application/pkix-crl" "GET the CRL: application/pkix-crl"
C=$(openssl crl -inform DER -in "$TMP/ca.crl" -CAfile "$TMP/rca.pem" -noout -text 2>&1 || true)
assert_contains "$C" "verify OK" "openssl crl verifies it under the CA"
assert_contains "$C" "Key Compromise" "and it lists the revoked certificate"
P=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 "http://127.0.0.1:$HPORT/crl/00000000-0000-0000-0000-000000000000.crl" || true)
assert_eq "$P" "404" "an unknown CA's CRL: 404"

# ---- Refusals --------------------------------------------------------------------------------------
R=$(api TrentService.NoSuchOperation '{}')
assert_contains "$R" "HTTP/1.1 400" "an unknown target: 400"
assert_contains "$R" '"__type":"UnknownOperationException"' "UnknownOperationException"
assert_match "$R" $'x-amzn-RequestId: [0-9a-f-]{36}\r' "with x-amzn-RequestId"
R=$(curl -sS -i --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/" -H "X-Amz-Target: TrentService.Encrypt" \
    -H "Content-Type: text/plain" --data-binary '{}' || true)
assert_contains "$R" "HTTP/1.1 400" "a wrong Content-Type: 400"
R=$(curl -sS -i --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/" -X PUT || true)
assert_match "$R" "HTTP/1.1 (405|501)" "a method other than GET and POST is refused"
head -c 4000000 /dev/zero | tr '\0' 'a' >"$TMP/big"
R=$(api TrentService.Encrypt "@$TMP/big")
assert_contains "$R" "HTTP/1.1 413" "a body over max_body_bytes: 413"
assert_match "$(tr 'A-Z' 'a-z' <<<"$R")" "connection: close" "and Connection: close"
R=$(printf 'GARBAGE\r\n\r\n' | "$PY" "$CLIENTS" raw "$PORT" "$CA_PEM")
assert_match "$R" "^HTTP/1.1 400" "a malformed request line: 400"
if network_service; then
    R=$(api TrentService.ListKeys '{}')
    assert_contains "$R" "HTTP/1.1 400" "an unsigned request: 400"
    assert_match "$R" '"__type":"(IncompleteSignatureException|MissingAuthenticationTokenException)"' \
        "IncompleteSignature/MissingAuthenticationToken as AWS answers"
    assert_match "$R" $'x-amzn-RequestId: [0-9a-f-]{36}\r' "with x-amzn-RequestId"
fi

# ---- Slow, idle and vanishing clients ------------------------------------------------------------
SECS=$("$PY" "$CLIENTS" slow "$PORT")
if [ "$SECS" -ge 3 ] && [ "$SECS" -le 8 ]; then ok "a client sending a byte a second is cut at the header deadline ($SECS s)"
else fail "the slow client was cut after $SECS s (header and body timeouts: 5 s)"; fi
# The issue's 10,000 idle connections when the open-files limit allows them (each side needs one
# descriptor per connection), else 2,000.
HARD=$(ulimit -Hn)
if [ "$HARD" = unlimited ] || [ "$HARD" -ge 11000 ]; then N_IDLE=${KMSD_TEST_IDLE:-10000}; else N_IDLE=${KMSD_TEST_IDLE:-2000}; fi
OUT=$("$PY" "$CLIENTS" idle "$PORT" "$N_IDLE" "$CA_PEM" 7)
assert_eq "$(head -n1 <<<"$OUT")" "HTTP/1.1 200 OK" "with $N_IDLE idle connections open, a new client is served"
assert_eq "$(tail -n1 <<<"$OUT")" "0" "and the idle ones are closed at the deadline"
assert_eq "$("$PY" "$CLIENTS" vanish "$PORT" "$CA_PEM")" "done" "clients vanish in the middle of responses"
H=$(curl -sS --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/health")
assert_eq "$(json_get Status <<<"$H")" "ok" "and the workers still serve"

# ---- SIGHUP: configuration and certificate ------------------------------------------------------
served_serial() {
    timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CA_PEM" </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | sed 's/serial=//' | tr A-F a-f
}
BEFORE=$(served_serial)
kms acm renew-certificate --certificate-arn "$CERT_ARN" >/dev/null
set_server "$HOME_DIR" '{"metrics_allow": ["192.0.2.0/24"]}'
kill -HUP "$PID"
sleep 1.5
AFTER=$(served_serial)
assert_ne "$AFTER" "$BEFORE" "after a renewal and SIGHUP the server serves the new certificate"
WANT=$(kms acm describe-certificate --certificate-arn "$CERT_ARN" --query Certificate.Serial --output text | tr -d : | tr A-F a-f)
assert_eq "$AFTER" "$WANT" "the renewed certificate's serial"
P=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/metrics" || true)
assert_eq "$P" "403" "SIGHUP took up metrics_allow: /metrics refused to loopback"
# Another certificate named in config.json: served after SIGHUP.
NEW_ARN=$(kms acm request-certificate --domain-name localhost --subject-alternative-names 127.0.0.1 \
    --key-algorithm EC_prime256v1 --certificate-authority-arn "$CA_ARN" --query CertificateArn --output text)
set_server "$HOME_DIR" "{\"metrics_allow\": [\"127.0.0.1/32\"], \"certificate_arn\": \"$NEW_ARN\"}"
kill -HUP "$PID"
sleep 1
WANT=$(kms acm describe-certificate --certificate-arn "$NEW_ARN" --query Certificate.Serial --output text | tr -d : | tr A-F a-f)
assert_eq "$(served_serial)" "$WANT" "SIGHUP: another certificate_arn is served"

# ---- Signed requests: curl's SigV4, then the aws CLI (need kms_call_network in libkms) -----------
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1 AWS_CA_BUNDLE="$CA_PEM"
AWS_ACCESS_KEY_ID=$(awk -F' *= *' '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1=="aws_access_key_id"{print $2}' "$HOME_DIR/credentials")
AWS_SECRET_ACCESS_KEY=$(awk -F' *= *' '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1=="aws_secret_access_key"{print $2}' "$HOME_DIR/credentials")
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=""
signed() { # signed PORT OPERATION BODY: a SigV4-signed POST (curl --aws-sigv4), -i output
    curl -sS -i --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$1/" \
        --aws-sigv4 "aws:amz:us-east-1:kms" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "X-Amz-Target: TrentService.$2" -H "Content-Type: application/x-amz-json-1.1" \
        --data-binary "$3" 2>&1 || true
}
request_id() { tr -d '\r' | sed -n 's/^x-amzn-RequestId: //p'; }
if network_service; then
    R=$(signed "$PORT" ListKeys '{}')
    assert_contains "$R" "HTTP/1.1 200" "a request signed by curl --aws-sigv4: 200"
    RID=$(request_id <<<"$R")
    grep -rqs "\"requestID\":\"$RID\"" "$HOME_DIR/audit" && ok "x-amzn-RequestId is the audit record's requestID" ||
        fail "no audit record has requestID $RID"
    R=$(signed "$PORT" ListKeys '{"Limit": "many"}')
    assert_contains "$R" "HTTP/1.1 400" "bad input to a signed request: 400"
    assert_contains "$R" '"__type":"ValidationException"' "ValidationException"
    R=$(signed "$PORT" ListKeys '{not json')
    assert_match "$R" '"__type":"(SerializationException|ValidationException)"' "a body that is not JSON: refused by name"
    AK=$AWS_ACCESS_KEY_ID
    AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
    R=$(signed "$PORT" ListKeys '{}')
    assert_contains "$R" '"__type":"UnrecognizedClientException"' "an unknown access key: UnrecognizedClientException"
    AWS_ACCESS_KEY_ID=$AK
    SK=$AWS_SECRET_ACCESS_KEY
    AWS_SECRET_ACCESS_KEY=wrongwrongwrongwrongwrongwrongwrongwrong1
    R=$(signed "$PORT" ListKeys '{}')
    assert_contains "$R" "HTTP/1.1 400" "a wrong signature: 400"
    assert_contains "$R" '"__type":"InvalidSignatureException"' "InvalidSignatureException"
    AWS_SECRET_ACCESS_KEY=$SK
fi
if network_service; then
    awsk() { "$AWS" --endpoint-url "https://127.0.0.1:$PORT" "$@"; }
    KEY=$(awsk kms create-key --description via-aws --query KeyMetadata.KeyId --output text 2>"$TMP/aws.err" || true)
    assert_match "$KEY" '^[0-9a-f-]{36}$' "aws kms create-key through kmsd $(head -c 300 "$TMP/aws.err")"
    printf 'hello kmsd' >"$TMP/plain"
    awsk kms encrypt --key-id "$KEY" --plaintext "fileb://$TMP/plain" --query CiphertextBlob --output text \
        2>"$TMP/aws.err" | base64 -d >"$TMP/ct" || true
    awsk kms decrypt --ciphertext-blob "fileb://$TMP/ct" --query Plaintext --output text 2>>"$TMP/aws.err" |
        base64 -d >"$TMP/back" || true
    assert_files_equal "$TMP/back" "$TMP/plain" "aws kms encrypt / decrypt round trip $(head -c 300 "$TMP/aws.err")"
    awsk kms create-alias --alias-name alias/via-aws --target-key-id "$KEY" 2>"$TMP/aws.err" || true
    assert_contains "$(awsk kms list-aliases --output json 2>&1 || true)" "alias/via-aws" "aws kms list-aliases"
    D=$(awsk kms describe-key --key-id "$KEY" --output json 2>&1 || true)
    assert_match "$(json_get KeyMetadata.CreationDate <<<"$D")" '^20[0-9]{2}-' "CreationDate (an epoch number) parsed by the CLI"
    assert_eq "$(kms describe-key --key-id "$KEY" --query KeyMetadata.CreationDate --output text)" \
        "$(json_get KeyMetadata.CreationDate <<<"$D")" "kmsctl prints the timestamp exactly as the aws CLI v2 does"
    E=$(awsk kms describe-key --key-id alias/none 2>&1 || true)
    assert_contains "$E" "NotFoundException" "an AWS error reaches the CLI by name"
    ID=$(awsk sts get-caller-identity --query Account --output text 2>&1 || true)
    assert_eq "$ID" "$(json_get AccountId <"$TMP/init.json")" "aws sts get-caller-identity (query protocol)"
    R=$(awsk sts get-session-token --duration-seconds 900 --output json 2>&1 || true)
    assert_match "$(json_get Credentials.AccessKeyId <<<"$R")" '^ASIA' "aws sts get-session-token"
    ACCT=$(json_get AccountId <"$TMP/init.json")
    printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"sts:AssumeRole"}]}' \
        "$ACCT" >"$TMP/trust.json"
    kms create-role --role-name ViaAws --assume-role-policy-document "file://$TMP/trust.json" >/dev/null
    R=$(awsk sts assume-role --role-arn "arn:aws:iam::$ACCT:role/ViaAws" --role-session-name cli \
        --output json 2>&1 || true)
    assert_match "$(json_get Credentials.AccessKeyId <<<"$R")" '^ASIA' "aws sts assume-role"
    WHO=$(AWS_ACCESS_KEY_ID=$(json_get Credentials.AccessKeyId <<<"$R") \
        AWS_SECRET_ACCESS_KEY=$(json_get Credentials.SecretAccessKey <<<"$R") \
        AWS_SESSION_TOKEN=$(json_get Credentials.SessionToken <<<"$R") \
        awsk sts get-caller-identity --query Arn --output text 2>&1 || true)
    assert_eq "$WHO" "arn:aws:sts::$ACCT:assumed-role/ViaAws/cli" "the assumed role's session signs with X-Amz-Security-Token"
    RID=$(api TrentService.ListKeys '{}' | tr -d '\r' | sed -n 's/^x-amzn-RequestId: //p')
    [ -n "$RID" ] && ok "x-amzn-RequestId on every answer" || fail "no x-amzn-RequestId"
    DK=$(awsk kms generate-data-key --key-id "$KEY" --key-spec AES_256 --output json 2>&1 || true)
    assert_eq "$(json_get Plaintext <<<"$DK" | base64 -d | wc -c)" "32" "aws kms generate-data-key"
    SIGN=$(awsk kms create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY --query KeyMetadata.KeyId --output text 2>&1 || true)
    SIG=$(awsk kms sign --key-id "$SIGN" --message "fileb://$TMP/plain" --message-type RAW \
        --signing-algorithm ECDSA_SHA_256 --query Signature --output text 2>&1 || true)
    printf '%s' "$SIG" | base64 -d >"$TMP/sig" 2>/dev/null || true
    V=$(awsk kms verify --key-id "$SIGN" --message "fileb://$TMP/plain" --message-type RAW \
        --signing-algorithm ECDSA_SHA_256 --signature "fileb://$TMP/sig" --query SignatureValid --output text 2>&1 || true)
    assert_eq "$V" "True" "aws kms sign / verify"
    S=$(awsk kms schedule-key-deletion --key-id "$SIGN" --pending-window-in-days 7 --query KeyState --output text 2>&1 || true)
    assert_eq "$S" "PendingDeletion" "aws kms schedule-key-deletion"
    L=$(awsk cloudtrail lookup-events --max-results 5 --output json 2>&1 || true)
    assert_contains "$L" '"EventName"' "aws cloudtrail lookup-events"
    printf '{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"Via aws"}}' >"$TMP/ca.json"
    PCA=$(awsk acm-pca create-certificate-authority --certificate-authority-type ROOT \
        --certificate-authority-configuration "file://$TMP/ca.json" --query CertificateAuthorityArn --output text 2>&1 || true)
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/leaf.key" \
        -subj /CN=leaf.internal -out "$TMP/leaf.csr" 2>/dev/null
    CERT=$(awsk acm-pca issue-certificate --certificate-authority-arn "$PCA" --csr "fileb://$TMP/leaf.csr" \
        --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS --query CertificateArn --output text 2>&1 || true)
    assert_match "$CERT" '^arn:aws:acm-pca:.*/certificate/' "aws acm-pca issue-certificate"
fi

if network_service; then
    Q=$(curl -sS -i --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/" \
        --aws-sigv4 "aws:amz:us-east-1:sts" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "Content-Type: application/x-www-form-urlencoded" \
        --data-binary 'Action=GetCallerIdentity&Version=2011-06-15' 2>&1 || true)
    assert_contains "$Q" "<GetCallerIdentityResponse" "the query protocol answers STS in XML"
    Q=$(curl -sS -i --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/" \
        -H "Content-Type: application/x-www-form-urlencoded" --data-binary 'Action=NoSuchThing&Version=2011-06-15' 2>&1 || true)
    assert_contains "$Q" "<Code>InvalidAction</Code>" "an unknown query Action: InvalidAction"
    set_server "$HOME_DIR" '{"metrics_allow": ["127.0.0.0/8"]}'
    kill -HUP "$PID"
    sleep 1
    M=$(curl -sS --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/metrics")
    assert_match "$M" 'kmsd_requests_total\{operation="ListKeys",outcome="Success"\} [1-9]' "/metrics counts requests by operation and outcome"
    assert_contains "$M" "kmsd_request_duration_seconds_bucket" "and latency histograms"
    assert_contains "$M" "kmsd_throttle_limit{quota=" "and every throttle limit"
    assert_contains "$M" "kms_hsm_sessions{state=" "and the HSM session pool"
    assert_contains "$M" "kms_audit_flush_records_count" "and the audit flush sizes"
    assert_not_contains "$M" 'kms_audit_flush_records_bucket{le="0"}' "with no bucket made of the +Inf entry"
    assert_match "$M" 'kms_audit_sync_seconds_total [0-9.]+' "and the time in fdatasync"
    assert_match "$M" 'kms_wait_seconds_total\{on="audit_append"\} [0-9]+\.[0-9]*[1-9]' "and the time requests waited for their audit record"
    assert_contains "$M" 'kms_wait_seconds_total{on="hsm_session"}' "and for an HSM session"
    if command -v promtool >/dev/null; then
        printf '%s\n' "$M" | promtool check metrics >/dev/null 2>"$TMP/promtool.err" &&
            ok "promtool accepts /metrics" || fail "promtool: $(head -c 500 "$TMP/promtool.err")"
    fi
fi

# ---- Two kmsd on one home ------------------------------------------------------------------------
FIRST_PORT=$PORT
FIRST_PID=$PID
start_kmsd second "$HOME_DIR" --no-scheduler
SECOND_PORT=$PORT
for i in 1 2 3; do
    for p in "$FIRST_PORT" "$SECOND_PORT"; do
        PORT=$p
        if network_service; then
            R=$(signed "$p" GenerateRandom '{"NumberOfBytes": 16}')
            assert_contains "$R" "HTTP/1.1 200" "signed request $i on port $p served"
        else
            R=$(api TrentService.ListKeys '{}')
            assert_match "$R" $'x-amzn-RequestId: [0-9a-f-]{36}\r' "request $i on port $p answered"
        fi
    done
done
stop_kmsd "$PID"; assert_eq "$STOPPED" "0" "the second kmsd exits 0 on SIGTERM"
stop_kmsd "$FIRST_PID"; assert_eq "$STOPPED" "0" "the first kmsd exits 0 on SIGTERM"
assert_contains "$(cat "$TMP/first.err")" "audit trail sealed" "and seals the audit trail"
V=$(kms validate-logs)
assert_eq "$(json_get Valid <<<"$V")" "true" "kmsctl validate-logs: the trail both wrote is valid"

# ---- Throttling and the authentication slow-down -------------------------------------------------
if network_service; then
    # drain_seconds above the slow-down's delay of the in-flight request below (8 s by then)
    set_server "$HOME_DIR" '{"throttle": {"PerAccessKey": 2}, "drain_seconds": 15}'
    # Two call threads: the vanishing clients below wait in the queue for one.
    start_kmsd throttled "$HOME_DIR" --no-scheduler --call-threads 2
    THROTTLED=0
    for i in 1 2 3 4 5 6; do
        R=$(signed "$PORT" ListKeys '{}')
        [[ "$R" == *'"__type":"ThrottlingException","message":"Rate exceeded"'* ]] && THROTTLED=$((THROTTLED + 1))
    done
    [ "$THROTTLED" -ge 1 ] && ok "past PerAccessKey: ThrottlingException \"Rate exceeded\" ($THROTTLED of 6)" ||
        fail "6 requests at once under PerAccessKey 2: none throttled"
    SK=$AWS_SECRET_ACCESS_KEY
    AWS_SECRET_ACCESS_KEY=wrongwrongwrongwrongwrongwrongwrongwrong1
    for i in 1 2 3 4 5 6; do signed "$PORT" ListKeys '{}' >/dev/null; done
    T0=$(date +%s.%N)
    signed "$PORT" ListKeys '{}' >/dev/null
    T1=$(date +%s.%N)
    SLOW=$("$PY" -c "print(int(($T1 - $T0) >= 0.9))")
    assert_eq "$SLOW" "1" "after repeated authentication failures, answers to the address are delayed"
    H=$(curl -sS --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/health")
    assert_eq "$(json_get Status <<<"$H")" "ok" "while the worker serves others"
    # Clients that send a request and vanish while its call is queued, under way, or its answer
    # held back by the slow-down: the answers are dropped, kmsd goes on serving.
    assert_eq "$("$PY" "$CLIENTS" vanish_api "$PORT" "$CA_PEM" 20)" "done" "20 clients send a request and vanish before the answer"
    H=$(curl -sS --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/health")
    assert_eq "$(json_get Status <<<"$H")" "ok" "kmsd serves on after clients vanished with calls in flight"
    # SIGTERM while an answer is in flight (held back a second or more): it still arrives.
    signed "$PORT" ListKeys '{}' >"$TMP/inflight.out" &
    CLIENT=$!
    sleep 1 # the request is in (a connection that has not sent one yet is closed at once)
    stop_kmsd "$PID"
    wait "$CLIENT" || true
    AWS_SECRET_ACCESS_KEY=$SK
    assert_eq "$STOPPED" "0" "SIGTERM during a request: kmsd exits 0"
    assert_contains "$(cat "$TMP/inflight.out")" '"__type":"InvalidSignatureException"' \
        "after the in-flight request got its answer"
fi

# ---- The call threads ---------------------------------------------------------------------------------
if network_service; then
    set_server "$HOME_DIR" '{"throttle": {"Enabled": false}, "drain_seconds": 5}'
    start_kmsd pool "$HOME_DIR" --no-scheduler
    assert_eq "$("$PY" "$CLIENTS" burst "$PORT" "$CA_PEM" 64)" "64 64" "64 requests at once from 64 connections: all answered 200, 64 distinct request ids"
    M=$(curl -sS --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/metrics")
    assert_match "$M" $'kmsd_call_threads 64\n' "/metrics: the call threads (64 by default)"
    assert_match "$M" $'kmsd_call_threads_busy [0-9]+\n' "how many are busy"
    assert_match "$M" $'kmsd_call_queue_depth [0-9]+\n' "and the call queue's depth"
    # SIGTERM in the middle of a 64-connection burst: the calls under way are answered, kmsd exits
    # 0 within drain_seconds.
    "$PY" "$CLIENTS" burst "$PORT" "$CA_PEM" 64 100 >"$TMP/burst.out" &
    BURST=$!
    sleep 1.5
    T0=$(date +%s.%N)
    stop_kmsd "$PID"
    T1=$(date +%s.%N)
    wait "$BURST" || true
    assert_eq "$STOPPED" "0" "SIGTERM during a 64-connection burst: kmsd exits 0"
    assert_eq "$("$PY" -c "print(int($T1 - $T0 <= 6))")" "1" "within drain_seconds (5 s; took $("$PY" -c "print(round($T1 - $T0, 1))") s)"
    assert_match "$(cat "$TMP/burst.out")" '^[1-9][0-9]* ' "and the burst's requests were answered until then"
    # One call thread, 16 places in the queue: past that, ThrottlingException at once.
    start_kmsd pool1 "$HOME_DIR" --no-scheduler --call-threads 1
    B=$("$PY" "$CLIENTS" burst "$PORT" "$CA_PEM" 64)
    OKS=${B%% *}
    [ "$OKS" -ge 1 ] && [ "$OKS" -lt 64 ] && ok "one call thread, 64 requests at once: $OKS answered, the rest refused" ||
        fail "one call thread, 64 requests at once: $B"
    R=$(signed "$PORT" ListKeys '{}')
    assert_contains "$R" "HTTP/1.1 200" "and it serves on"
    stop_kmsd "$PID"; assert_eq "$STOPPED" "0" "and stops on SIGTERM"
fi

# ---- The scheduler inside kmsd ---------------------------------------------------------------------
if command -v faketime >/dev/null; then
    faketime_required
    RK=$(kms create-key --query KeyMetadata.KeyId --output text)
    kms enable-key-rotation --key-id "$RK" --rotation-period-in-days 90
    SPORT=$(free_port)
    # env, not the at_time function: $! must be kmsd itself, not a subshell around it
    env "$FT_ENV" LD_PRELOAD="$FT_LIB" FAKETIME=+91d FAKETIME_DONT_RESET=1 "$KMSD" --home "$HOME_DIR" \
        --listen "127.0.0.1:$SPORT" --http-listen off >"$TMP/sched.out" 2>"$TMP/sched.err" &
    SPID=$!
    PIDS+=("$SPID")
    N=0
    for _ in $(seq 100); do
        N=$(kms list-key-rotations --key-id "$RK" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["Rotations"]))')
        [ "$N" -ge 1 ] && break
        sleep 0.2
    done
    assert_eq "$N" "1" "kmsd's scheduler rotated the key whose period ended (91 days on)"
    stop_kmsd "$SPID"
    assert_eq "$STOPPED" "0" "and stops on SIGTERM"
    OUT=$(at_time +91d "$KMSCTL" --home "$HOME_DIR" run-scheduler --once)
    assert_eq "$("$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["Rotations"]))' <<<"$OUT")" "0" \
        "another scheduler finds it done (the claims)"
fi

# ---- Two kmsd started at once on a fresh home make one CA ----------------------------------------
H2="$TMP/home2"
init_home "$H2"
PA=$(free_port)
PB=$(free_port)
"$KMSD" --home "$H2" --listen "127.0.0.1:$PA" --http-listen off --no-scheduler >"$TMP/a.out" 2>"$TMP/a.err" &
A=$!
"$KMSD" --home "$H2" --listen "127.0.0.1:$PB" --http-listen off --no-scheduler >"$TMP/b.out" 2>"$TMP/b.err" &
B=$!
PIDS+=("$A" "$B")
for _ in $(seq 300); do
    grep -q "listening on https" "$TMP/a.out" && grep -q "listening on https" "$TMP/b.out" && break
    sleep 0.1
done
grep -q "listening on https" "$TMP/a.out" && grep -q "listening on https" "$TMP/b.out" &&
    ok "two kmsd started at once on a fresh home both serve" ||
    fail "both kmsd should start: $(cat "$TMP/a.err" "$TMP/b.err")"
N=$(kms_at "$H2" acm-pca list-certificate-authorities | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["CertificateAuthorities"]))')
assert_eq "$N" "1" "and make one CA between them"
stop_kmsd "$A"; assert_eq "$STOPPED" "0" "both stop"
stop_kmsd "$B"; assert_eq "$STOPPED" "0" "both stop (the other)"
