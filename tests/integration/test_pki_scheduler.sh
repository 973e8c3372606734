#!/usr/bin/env bash
# The scheduler's private CA work under libfaketime (never sleeping): each CA's CRL reissued
# once half of its validity has passed, and a DELETED CA deleted for good when its restore
# window ends (its HSM key destroyed), each recorded as an AwsServiceEvent.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

faketime_required
at() { # at OFFSET ARGS...: kmsctl with the clock moved by OFFSET ("+2d")
    local off=$1
    shift
    at_time "$off" "$KMSCTL" --home "$HOME_DIR" "$@"
}
count() { "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)[sys.argv[1]]))' "$1"; }
hsm_labels() {
    SOFTHSM2_CONF="$HOME_DIR/hsm/softhsm2.conf" pkcs11-tool --module "$SOFTHSM_MODULE" \
        --token-label kms --login --pin "$(head -n1 "$HOME_DIR/pin")" --list-objects 2>/dev/null |
        sed -n 's/^ *label: *//p'
}
crl_field() { openssl crl -inform DER -in "$1" -noout "$2" | cut -d= -f2; }

init_home
W="$TMP/w"
mkdir "$W"
printf '{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"Sched Root"}}' >"$W/ca.json"
printf '{"CrlConfiguration":{"Enabled":true,"ExpirationInDays":2}}' >"$W/rev.json"
CA=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$W/ca.json" --revocation-configuration "file://$W/rev.json" \
    --query CertificateAuthorityArn --output text)
CA_ID=${CA##*/}
CRL="$HOME_DIR/crl/$CA_ID.crl"
kms acm-pca get-certificate-authority-certificate --certificate-authority-arn "$CA" \
    --query Certificate --output text >"$W/ca.pem"
NOCRL=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$W/ca.json" --query CertificateAuthorityArn --output text)
assert_eq "$(crl_field "$CRL" -crlnumber)" "0x01" "the first CRL at creation"

# ---- CRLs: reissued when half of their validity (2 days) has passed ---------------------------
out=$(kms run-scheduler --once)
assert_eq "$(count CrlsReissued <<<"$out")" 0 "a fresh CRL is not reissued"
out=$(at +23h run-scheduler --once)
assert_eq "$(count CrlsReissued <<<"$out")" 0 "nor before half of its validity"
out=$(at +25h run-scheduler --once)
assert_eq "$(count CrlsReissued <<<"$out")" 1 "after half of its validity (a day of two), it is reissued"
assert_eq "$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["CrlsReissued"][0]["CertificateAuthorityArn"])' <<<"$out")" \
    "$CA" "the CA with CRLs, not the one without"
assert_eq "$(crl_field "$CRL" -crlnumber)" "0x02" "the reissued CRL has the next number"
LU=$(date -d "$(crl_field "$CRL" -lastupdate)" +%s)
NU=$(date -d "$(crl_field "$CRL" -nextupdate)" +%s)
NOW=$(date +%s)
if [ "$LU" -ge $((NOW + 24 * 3600)) ] && [ "$LU" -le $((NOW + 26 * 3600)) ]; then
    ok "its thisUpdate is the scheduler's (moved) time"
else fail "thisUpdate $LU is not a day after $NOW"; fi
assert_eq "$((NU - LU))" "$((2 * 86400))" "and nextUpdate ExpirationInDays after it"
assert_contains "$(openssl crl -inform DER -in "$CRL" -CAfile "$W/ca.pem" -noout -verify 2>&1)" "verify OK" \
    "openssl crl -verify: the reissued CRL is signed by the CA"
out=$(at +25h run-scheduler --once)
assert_eq "$(count CrlsReissued <<<"$out")" 0 "a second run at the same time reissues nothing"
out=$(at +50h run-scheduler --once)
assert_eq "$(count CrlsReissued <<<"$out")" 1 "half of the new CRL's validity later, again"
rm "$CRL"
out=$(kms run-scheduler --once)
assert_eq "$(count CrlsReissued <<<"$out")" 1 "a missing CRL is published again"
[ -f "$CRL" ] && ok "the CRL file is back" || fail "no CRL file"
# (text prints each page with --query applied, then the NextToken line queried too: aws's "None")
ev=$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=GenerateCRL \
    --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p)
assert_eq "$(json_get eventSource <<<"$ev")/$(json_get eventType <<<"$ev")" \
    "acm-pca.amazonaws.com/AwsServiceEvent" "each reissue is recorded: GenerateCRL, an AwsServiceEvent"
assert_eq "$(json_get 'resources.0.ARN' <<<"$ev" 2>/dev/null || "$PY" -c 'import json,sys; print(json.load(sys.stdin)["resources"][0]["ARN"])' <<<"$ev")" \
    "$CA" "naming the CA"

# ---- a DELETED CA: deleted for good when its restore window ends --------------------------------
kms acm-pca update-certificate-authority --certificate-authority-arn "$CA" --status DISABLED
kms acm-pca delete-certificate-authority --certificate-authority-arn "$CA" --permanent-deletion-time-in-days 7
assert_eq "$(hsm_labels | grep -c "^pca:$CA_ID" || true)" "2" "the CA's key pair is in the HSM while restorable"
out=$(at +6d run-scheduler --once)
assert_eq "$(count CertificateAuthoritiesDeleted <<<"$out")" 0 "nothing is deleted within the window"
assert_eq "$(count CrlsReissued <<<"$out")" 0 "a DELETED CA's CRL is not reissued"
out=$(at +8d run-scheduler --once)
assert_eq "$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["CertificateAuthoritiesDeleted"][0]["CertificateAuthorityArn"])' <<<"$out")" \
    "$CA" "the window ended: the CA is deleted for good"
assert_eq "$(hsm_labels | grep -c "^pca:$CA_ID" || true)" "0" "its key is destroyed in the HSM"
expect_error ResourceNotFoundException 254 kms acm-pca describe-certificate-authority --certificate-authority-arn "$CA"
expect_error ResourceNotFoundException 254 at +8d acm-pca restore-certificate-authority --certificate-authority-arn "$CA"
assert_not_contains "$(kms acm-pca list-certificate-authorities)" "$CA_ID" "it is no longer listed"
out=$(at +9d run-scheduler --once)
assert_eq "$(count CertificateAuthoritiesDeleted <<<"$out")" 0 "a second run deletes nothing more"
assert_eq "$(count Errors <<<"$out")" 0 "and reports no error"
ev=$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=DeleteCertificateAuthority \
    --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p)
assert_eq "$(json_get eventName <<<"$ev")/$(json_get eventType <<<"$ev")" \
    "DeleteCertificateAuthority/AwsServiceEvent" "the permanent deletion is recorded as an AwsServiceEvent"
assert_contains "$ev" '"permanentDeletion":true' "with permanentDeletion in its serviceEventDetails"
# A CA restored within its window is left alone.
kms acm-pca update-certificate-authority --certificate-authority-arn "$NOCRL" --status DISABLED
kms acm-pca delete-certificate-authority --certificate-authority-arn "$NOCRL" --permanent-deletion-time-in-days 7
kms acm-pca restore-certificate-authority --certificate-authority-arn "$NOCRL"
out=$(at +8d run-scheduler --once)
assert_eq "$(count CertificateAuthoritiesDeleted <<<"$out")" 0 "a restored CA is not deleted"
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$NOCRL" \
    --query CertificateAuthority.Status --output text)" DISABLED "it is DISABLED as restored"

# ---- one CA whose CRL cannot be read stops nobody: listed under Errors, its CRL reissued -------
mk() { kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$W/ca.json" --revocation-configuration "file://$W/rev.json" \
    --query CertificateAuthorityArn --output text; }
BAD=$(mk)
GOOD=$(mk)
# BAD's CRL file grows beyond what is read back (64 MiB): a sparse file will do.
truncate -s 65M "$HOME_DIR/crl/${BAD##*/}.crl"
rc=0
out=$(at +25h run-scheduler --once 2>"$W/err") || rc=$?
reissued() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for x in d[sys.argv[2]] if x["CertificateAuthorityArn"]==sys.argv[1]))' "$1" "${2:-CrlsReissued}"; }
assert_eq "$(reissued "$GOOD" <<<"$out")" 1 "another CA's CRL is reissued although one CA's file is bad (rc=$rc)"
assert_eq "$(reissued "$BAD" Errors <<<"$out")" 1 "the bad CA is listed under Errors"
assert_contains "$out" "larger than" "with the reason"
assert_eq "$(reissued "$BAD" <<<"$out")" 1 "and its CRL is reissued, as due"
assert_eq "$(openssl crl -inform DER -in "$HOME_DIR/crl/${BAD##*/}.crl" -noout -crlnumber | cut -d= -f2)" "0x02" \
    "the unreadable file is replaced by the next CRL"
