#!/usr/bin/env bash
# Revocation for relying parties, as kmsd will serve it: the OCSP responder (kms_ocsp_respond,
# RFC 6960) and the published CRL (kms_crl_get), called through libkms by ocsp_respond and
# checked by `openssl ocsp` and `openssl crl`, tools nobody here wrote: the response verifies
# under the CA's certificate, answers every certificate of the request (good, revoked with its
# reason, unknown), echoes the nonce, takes SHA-1 and SHA-256 CertIDs, and a malformed request
# gets a malformedRequest response. OcspConfiguration writes the responder's URL into the
# certificates issued from then on.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${KMS_BUILD_DIR:?KMS_BUILD_DIR must name the build directory}"
RESPOND="$KMS_BUILD_DIR/tests/ocsp_respond"
[ -x "$RESPOND" ] || { fail "$RESPOND is not built"; exit 1; }

init_home
W="$TMP/w"
mkdir "$W"
TPL=arn:aws:acm-pca:::template
HOST=pki.example.internal:8080

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/app.key" \
    -subj /CN=app.internal -addext "subjectAltName=DNS:app.internal" -out "$W/app.csr" 2>/dev/null

# new_ca NAME KEY_ALG SIG_ALG [REVOCATION_JSON]: prints the CA's ARN; its certificate in $W/NAME.pem
new_ca() {
    printf '{"KeyAlgorithm":"%s","SigningAlgorithm":"%s","Subject":{"CommonName":"%s","Organization":"Example"}}' \
        "$2" "$3" "$1" >"$W/$1.json"
    local arn
    if [ -n "${4:-}" ]; then
        printf '%s' "$4" >"$W/$1.rev.json"
        arn=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
            --certificate-authority-configuration "file://$W/$1.json" \
            --revocation-configuration "file://$W/$1.rev.json" \
            --query CertificateAuthorityArn --output text)
    else
        arn=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
            --certificate-authority-configuration "file://$W/$1.json" \
            --query CertificateAuthorityArn --output text)
    fi
    kms acm-pca get-certificate-authority-certificate --certificate-authority-arn "$arn" \
        --query Certificate --output text >"$W/$1.pem"
    echo "$arn"
}
# issue CA_ARN SIG_ALG NAME: the certificate in $W/NAME.pem
issue() {
    local arn
    arn=$(kms acm-pca issue-certificate --certificate-authority-arn "$1" --csr "fileb://$W/app.csr" \
        --signing-algorithm "$2" --validity Value=30,Type=DAYS \
        --template-arn "$TPL/EndEntityCertificate/V1" --query CertificateArn --output text)
    kms acm-pca get-certificate --certificate-authority-arn "$1" --certificate-arn "$arn" \
        --query Certificate --output text >"$W/$3.pem"
}
serial() { openssl x509 -in "$W/$1.pem" -noout -serial | cut -d= -f2; }
aia() { openssl x509 -in "$W/$1.pem" -noout -ext authorityInfoAccess 2>/dev/null | sed -n '2,$p' | sed 's/^ *//'; }
# respond REQ RESP: kms_ocsp_respond
respond() { "$RESPOND" "$HOME_DIR" ocsp "$1" "$2"; }
# check RESP REQ ARGS...: openssl ocsp's verification and text of the response, with a status
# line per -cert given. openssl ocsp reads -reqin only when no -cert is given (it builds a request
# of its own from them, with a nonce of its own unless -no_nonce), so the nonce is checked apart:
# check_nonce RESP REQ CA_PEM: the request's nonce (OCSP_check_nonce) and the signature.
check() {
    local resp=$1
    shift 2
    openssl ocsp -respin "$resp" -no_nonce "$@" -resp_text 2>&1 || true
}
check_nonce() { openssl ocsp -respin "$1" -reqin "$2" -VAfile "$3" -resp_text 2>&1 || true; }

# ---- OcspConfiguration -------------------------------------------------------------------------
CRL_ONLY='{"CrlConfiguration":{"Enabled":true,"ExpirationInDays":3,"CustomCname":"'$HOST'"}}'
CA=$(new_ca ocsp-root EC_prime256v1 SHA256WITHECDSA "$CRL_ONLY")
CA_ID=${CA##*/}
issue "$CA" SHA256WITHECDSA before
assert_eq "$(aia before)" "" "a CA without OCSP writes no Authority Information Access"
for bad in '{"Enabled":"yes"}' '{"Enabled":true,"OcspCustomCname":"http://ocsp.example"}' \
    '{"Enabled":true,"OcspCustomCname":"ocsp.example/path"}' '{"Enabled":true,"OcspCustomCname":"ocsp.example:99999"}' \
    '{"Enabled":true,"Other":1}' '{"OcspCustomCname":"ocsp.example"}'; do
    expect_error InvalidArgsException 254 kms acm-pca update-certificate-authority \
        --certificate-authority-arn "$CA" --revocation-configuration "{\"OcspConfiguration\":$bad}"
done
printf '{"CrlConfiguration":{"Enabled":true,"ExpirationInDays":3,"CustomCname":"%s"},"OcspConfiguration":{"Enabled":true,"OcspCustomCname":"%s"}}' \
    "$HOST" "$HOST" >"$W/rev.json"
kms acm-pca update-certificate-authority --certificate-authority-arn "$CA" \
    --revocation-configuration "file://$W/rev.json"
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$CA" \
    --query CertificateAuthority.RevocationConfiguration.OcspConfiguration.OcspCustomCname --output text)" \
    "$HOST" "DescribeCertificateAuthority shows the OcspConfiguration"
for c in a b c; do issue "$CA" SHA256WITHECDSA "$c"; done
assert_eq "$(aia a)" "OCSP - URI:http://$HOST/ocsp" \
    "certificates issued once OCSP is enabled name the responder (Authority Information Access)"
assert_eq "$(openssl x509 -in "$W/a.pem" -noout -ext crlDistributionPoints | grep URI | sed 's/^ *//')" \
    "URI:http://$HOST/crl/$CA_ID.crl" "and the CRL at the same host (CustomCname host:port)"
assert_eq "$(openssl x509 -in "$W/a.pem" -noout -ocsp_uri)" "http://$HOST/ocsp" "openssl x509 -ocsp_uri"
kms acm-pca revoke-certificate --certificate-authority-arn "$CA" --certificate-serial "$(serial b)" \
    --revocation-reason KEY_COMPROMISE

# ---- every certificate of a request answered, signed by the CA, the nonce echoed -------------
openssl ocsp -issuer "$W/ocsp-root.pem" -cert "$W/a.pem" -cert "$W/b.pem" -cert "$W/c.pem" \
    -nonce -reqout "$W/req.der" >/dev/null 2>&1
respond "$W/req.der" "$W/resp.der"
out=$(check "$W/resp.der" "$W/req.der" -CAfile "$W/ocsp-root.pem" -issuer "$W/ocsp-root.pem" \
    -cert "$W/a.pem" -cert "$W/b.pem" -cert "$W/c.pem")
assert_contains "$out" "Response verify OK" "openssl ocsp verifies the response under the CA's certificate"
nonce_out=$(check_nonce "$W/resp.der" "$W/req.der" "$W/ocsp-root.pem")
assert_contains "$nonce_out" "Response verify OK" "openssl ocsp -reqin: the response verifies"
assert_not_contains "$(tr A-Z a-z <<<"$nonce_out" | grep -v "ocsp nonce:")" "nonce" \
    "openssl ocsp -reqin finds the request's nonce echoed (no warning, no error)"
assert_contains "$nonce_out" "OCSP Nonce" "the response carries the nonce extension"
assert_contains "$out" "$W/a.pem: good" "a: good"
assert_contains "$out" "$W/b.pem: revoked" "b: revoked"
assert_contains "$out" "Reason: keyCompromise" "b: with its reason"
assert_contains "$out" "$W/c.pem: good" "c: good (not only the first certificate is answered)"
assert_eq "$(grep -c "Cert Status:" <<<"$out")" 3 "three SingleResponses for three CertIDs"
SKI=$(openssl x509 -in "$W/ocsp-root.pem" -noout -ext subjectKeyIdentifier | sed -n 2p | tr -d ' :')
assert_contains "$out" "Responder Id: $SKI" "ResponderID by key: the CA key's SHA-1"
assert_not_contains "$out" "Certificate:" "no certificates in the response (the CA signs it)"
CRL_NEXT=$(openssl crl -inform DER -in "$HOME_DIR/crl/$CA_ID.crl" -noout -nextupdate | cut -d= -f2)
assert_contains "$out" "Next Update: $CRL_NEXT" "nextUpdate is the published CRL's"
assert_match "$out" "Revocation Time: [A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} 20[0-9]{2} GMT" "b: its revocation time"

# SHA-256 CertIDs (openssl ocsp: the digest option before -cert)
openssl ocsp -issuer "$W/ocsp-root.pem" -sha256 -cert "$W/a.pem" -cert "$W/b.pem" \
    -nonce -reqout "$W/req256.der" >/dev/null 2>&1
respond "$W/req256.der" "$W/resp256.der"
out=$(check "$W/resp256.der" "$W/req256.der" -CAfile "$W/ocsp-root.pem" -issuer "$W/ocsp-root.pem" \
    -sha256 -cert "$W/a.pem" -cert "$W/b.pem")
assert_contains "$out" "Hash Algorithm: sha256" "a request of SHA-256 CertIDs is answered in kind"
assert_contains "$out" "Response verify OK" "SHA-256 CertIDs: the response verifies"
nonce_out=$(check_nonce "$W/resp256.der" "$W/req256.der" "$W/ocsp-root.pem")
assert_not_contains "$(tr A-Z a-z <<<"$nonce_out" | grep -v "ocsp nonce:")" "nonce" \
    "SHA-256 CertIDs: the nonce echoed"
assert_contains "$out" "$W/a.pem: good" "SHA-256 CertIDs: a good"
assert_contains "$out" "$W/b.pem: revoked" "SHA-256 CertIDs: b revoked"

# Without a nonce, none is made up.
openssl ocsp -issuer "$W/ocsp-root.pem" -cert "$W/c.pem" -no_nonce -reqout "$W/req-nn.der" >/dev/null 2>&1
respond "$W/req-nn.der" "$W/resp-nn.der"
out=$(check "$W/resp-nn.der" "$W/req-nn.der" -CAfile "$W/ocsp-root.pem" -issuer "$W/ocsp-root.pem" -cert "$W/c.pem")
assert_contains "$out" "$W/c.pem: good" "a request without a nonce is answered"
assert_not_contains "$out" "OCSP Nonce" "and the response has no nonce"

# ---- other CAs ----------------------------------------------------------------------------------
# ocsp-two (an RSA key) answers OCSP too; plain (no OCSP) does not.
CA2=$(new_ca ocsp-two RSA_2048 SHA256WITHRSA '{"OcspConfiguration":{"Enabled":true}}')
PLAIN=$(new_ca plain RSA_2048 SHA256WITHRSA)
issue "$CA2" SHA256WITHRSA d
issue "$PLAIN" SHA256WITHRSA e
assert_eq "$(aia d)" "" "OCSP without OcspCustomCname: no URL written"
cat "$W/ocsp-root.pem" "$W/ocsp-two.pem" >"$W/both.pem"
openssl ocsp -issuer "$W/ocsp-root.pem" -cert "$W/a.pem" -issuer "$W/ocsp-two.pem" -cert "$W/d.pem" \
    -issuer "$W/plain.pem" -cert "$W/e.pem" -nonce -reqout "$W/req-mixed.der" >/dev/null 2>&1
respond "$W/req-mixed.der" "$W/resp-mixed.der"
out=$(check "$W/resp-mixed.der" "$W/req-mixed.der" -CAfile "$W/both.pem" -issuer "$W/ocsp-root.pem" \
    -cert "$W/a.pem" -issuer "$W/ocsp-two.pem" -cert "$W/d.pem" -issuer "$W/plain.pem" -cert "$W/e.pem")
assert_contains "$out" "Response verify OK" "mixed issuers: the response verifies"
assert_contains "$out" "$W/a.pem: good" "mixed issuers: the first CertID's CA signs and answers its own"
assert_contains "$out" "$W/d.pem: unknown" "mixed issuers: another CA's certificate is unknown"
assert_contains "$out" "$W/e.pem: unknown" "mixed issuers: a certificate of a CA without OCSP is unknown"
assert_contains "$out" "Responder Id: $SKI" "mixed issuers: one signer, the first CertID's CA"
openssl ocsp -issuer "$W/ocsp-two.pem" -cert "$W/d.pem" -issuer "$W/ocsp-root.pem" -cert "$W/b.pem" \
    -nonce -reqout "$W/req-two.der" >/dev/null 2>&1
respond "$W/req-two.der" "$W/resp-two.der"
out=$(check "$W/resp-two.der" "$W/req-two.der" -CAfile "$W/ocsp-two.pem" -issuer "$W/ocsp-two.pem" \
    -cert "$W/d.pem" -issuer "$W/ocsp-root.pem" -cert "$W/b.pem")
assert_contains "$out" "Response verify OK" "the other CA (RSA) signs when its certificate comes first"
assert_contains "$out" "$W/d.pem: good" "and answers for it"
assert_contains "$out" "$W/b.pem: unknown" "and not for the first CA's"
openssl ocsp -issuer "$W/plain.pem" -cert "$W/e.pem" -nonce -reqout "$W/req-plain.der" >/dev/null 2>&1
respond "$W/req-plain.der" "$W/resp-plain.der"
assert_contains "$(openssl ocsp -respin "$W/resp-plain.der" -resp_text -noverify 2>&1 || true)" \
    "unauthorized (6)" "a request no CA here answers: unauthorized"
# A serial the CA never issued: unknown.
openssl ocsp -issuer "$W/ocsp-root.pem" -serial 0x4242 -nonce -reqout "$W/req-never.der" >/dev/null 2>&1
respond "$W/req-never.der" "$W/resp-never.der"
assert_contains "$(openssl ocsp -respin "$W/resp-never.der" -reqin "$W/req-never.der" -CAfile "$W/ocsp-root.pem" \
    -issuer "$W/ocsp-root.pem" -serial 0x4242 -no_nonce -resp_text 2>&1 || true)" "0x4242: unknown" "a serial never issued: unknown"

# A DISABLED CA still answers (it still revokes); a DELETED one no more.
kms acm-pca update-certificate-authority --certificate-authority-arn "$CA2" --status DISABLED
respond "$W/req-two.der" "$W/resp-two.der"
assert_contains "$(check "$W/resp-two.der" "$W/req-two.der" -CAfile "$W/ocsp-two.pem" -issuer "$W/ocsp-two.pem" \
    -cert "$W/d.pem" -issuer "$W/ocsp-root.pem" -cert "$W/b.pem")" "$W/d.pem: good" "a DISABLED CA still answers"
kms acm-pca delete-certificate-authority --certificate-authority-arn "$CA2" --permanent-deletion-time-in-days 7
respond "$W/req-two.der" "$W/resp-two.der"
out=$(check "$W/resp-two.der" "$W/req-two.der" -CAfile "$W/ocsp-root.pem" -issuer "$W/ocsp-two.pem" \
    -cert "$W/d.pem" -issuer "$W/ocsp-root.pem" -cert "$W/b.pem")
assert_contains "$out" "$W/d.pem: unknown" "a DELETED CA answers no more: its certificates are unknown"
assert_contains "$out" "$W/b.pem: revoked" "and the next CertID's CA signs"

# ---- malformed requests -------------------------------------------------------------------------
head -c 300 /dev/urandom >"$W/junk.der"
respond "$W/junk.der" "$W/resp-junk.der"
assert_contains "$(openssl ocsp -respin "$W/resp-junk.der" -resp_text -noverify 2>&1 || true)" \
    "malformedrequest (1)" "a garbage request: a malformedRequest response, not an error"
: >"$W/empty.der"
respond "$W/empty.der" "$W/resp-empty.der"
assert_contains "$(openssl ocsp -respin "$W/resp-empty.der" -resp_text -noverify 2>&1 || true)" \
    "malformedrequest (1)" "an empty request: malformedRequest"
cat "$W/req.der" <(printf 'x') >"$W/trailing.der"
respond "$W/trailing.der" "$W/resp-trailing.der"
assert_contains "$(openssl ocsp -respin "$W/resp-trailing.der" -resp_text -noverify 2>&1 || true)" \
    "malformedrequest (1)" "a request with trailing bytes: malformedRequest"
args=()
for _ in $(seq 65); do args+=(-cert "$W/a.pem"); done
openssl ocsp -issuer "$W/ocsp-root.pem" "${args[@]}" -reqout "$W/req-65.der" >/dev/null 2>&1
respond "$W/req-65.der" "$W/resp-65.der"
assert_contains "$(openssl ocsp -respin "$W/resp-65.der" -resp_text -noverify 2>&1 || true)" \
    "malformedrequest (1)" "65 CertIDs (more than 64): malformedRequest"
openssl ocsp -issuer "$W/ocsp-root.pem" "${args[@]:2}" -nonce -reqout "$W/req-64.der" >/dev/null 2>&1
respond "$W/req-64.der" "$W/resp-64.der"
out=$(check_nonce "$W/resp-64.der" "$W/req-64.der" "$W/ocsp-root.pem")
assert_contains "$out" "Response verify OK" "64 CertIDs: the response verifies, nonce included"
assert_eq "$(grep -c "Cert Status: good" <<<"$out")" 64 "64 CertIDs: all answered"

# ---- the published CRL --------------------------------------------------------------------------
"$RESPOND" "$HOME_DIR" crl "$CA_ID" "$W/got.crl"
assert_files_equal "$W/got.crl" "$HOME_DIR/crl/$CA_ID.crl" "kms_crl_get: the published CRL, byte for byte"
assert_contains "$(openssl crl -inform DER -in "$W/got.crl" -CAfile "$W/ocsp-root.pem" -noout 2>&1)" \
    "verify OK" "openssl crl verifies it under the CA's certificate"
assert_contains "$(openssl crl -inform DER -in "$W/got.crl" -noout -text)" "Serial Number: $(serial b)" \
    "it lists the revoked certificate"
expect_error NotFoundException 1 "$RESPOND" "$HOME_DIR" crl "../$CA_ID" "$W/x.crl"
expect_error NotFoundException 1 "$RESPOND" "$HOME_DIR" crl "../x" "$W/x.crl"
expect_error NotFoundException 1 "$RESPOND" "$HOME_DIR" crl "${CA_ID^^}" "$W/x.crl"
expect_error NotFoundException 1 "$RESPOND" "$HOME_DIR" crl "${PLAIN##*/}" "$W/x.crl"
expect_error NotFoundException 1 "$RESPOND" "$HOME_DIR" crl "" "$W/x.crl"
