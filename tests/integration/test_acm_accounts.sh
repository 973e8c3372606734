#!/usr/bin/env bash
# Managed certificates per account (as the private CA's, test_pki_rest.sh): a certificate belongs
# to the account of the caller who requested or imported it; another account's ARN is refused by
# the gate, another account's id under the caller's account is not found; a member requests from
# its own CA; the scheduler renews the certificates of every account.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

faketime_required
at() {
    local off=$1
    shift
    at_time "$off" "$KMSCTL" --home "$HOME_DIR" "$@"
}

init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
W="$TMP/w"
mkdir "$W"
count() { "$PY" -c 'import json,sys; print(len(json.load(sys.stdin).get(sys.argv[1]) or []))' "$1"; }
new_ca() { # new_ca CN [KMSCTL-WRAPPER]: prints the CA's ARN
    local run=${2:-kms}
    printf '{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"%s"}}' \
        "$1" >"$W/$1.json"
    $run acm-pca create-certificate-authority --certificate-authority-type ROOT \
        --certificate-authority-configuration "file://$W/$1.json" \
        --query CertificateAuthorityArn --output text
}

out=$(kms create-account --email acm@example.com --account-name Acm)
MEMBER=$(json_get CreateAccountStatus.AccountId <<<"$out")
creds=$(kms assume-role --role-arn "arn:aws:iam::$MEMBER:role/OrganizationAccountAccessRole" \
    --role-session-name acm)
M_AK=$(json_get Credentials.AccessKeyId <<<"$creds")
M_SK=$(json_get Credentials.SecretAccessKey <<<"$creds")
M_TOK=$(json_get Credentials.SessionToken <<<"$creds")
member() { KMS_ACCESS_KEY_ID=$M_AK KMS_SECRET_ACCESS_KEY=$M_SK KMS_SESSION_TOKEN=$M_TOK "$KMSCTL" --home "$HOME_DIR" "$@"; }

MGMT_CA=$(new_ca mgmt-root)
MEMBER_CA=$(new_ca member-root member)
MGMT=$(kms acm request-certificate --domain-name mgmt.internal --key-algorithm EC_prime256v1 \
    --certificate-authority-arn "$MGMT_CA" --query CertificateArn --output text)
MCERT=$(member acm request-certificate --domain-name member.internal --key-algorithm EC_prime256v1 \
    --certificate-authority-arn "$MEMBER_CA" --query CertificateArn --output text)
assert_match "$MCERT" "^arn:aws:acm:us-east-1:$MEMBER:certificate/[0-9a-f-]{36}\$" \
    "a member's certificate carries the member account in its ARN"
assert_eq "$(member acm describe-certificate --certificate-arn "$MCERT" \
    --query Certificate.CertificateAuthorityArn --output text)" "$MEMBER_CA" "issued by the member's own CA"
expect_error AccessDeniedException 254 member acm request-certificate --domain-name x.internal \
    --certificate-authority-arn "$MGMT_CA"
expect_error ResourceNotFoundException 254 member acm request-certificate --domain-name x.internal \
    --certificate-authority-arn "arn:aws:acm-pca:us-east-1:$MEMBER:certificate-authority/${MGMT_CA##*/}"

# another account's ARN: the gate; another account's id under one's own: not found
for op in describe-certificate get-certificate delete-certificate renew-certificate list-tags-for-certificate; do
    expect_error AccessDeniedException 254 member acm $op --certificate-arn "$MGMT"
    expect_error ResourceNotFoundException 254 member acm $op \
        --certificate-arn "arn:aws:acm:us-east-1:$MEMBER:certificate/${MGMT##*/}"
    expect_error AccessDeniedException 254 kms acm $op --certificate-arn "$MCERT"
    expect_error ResourceNotFoundException 254 kms acm $op \
        --certificate-arn "arn:aws:acm:us-east-1:$ACCOUNT:certificate/${MCERT##*/}"
done
expect_error ResourceNotFoundException 254 member acm export-certificate --passphrase "$(printf 'pass' | base64)" \
    --certificate-arn "arn:aws:acm:us-east-1:$MEMBER:certificate/${MGMT##*/}"
expect_error ResourceNotFoundException 254 member acm add-tags-to-certificate --tags '[{"Key":"k","Value":"v"}]' \
    --certificate-arn "arn:aws:acm:us-east-1:$MEMBER:certificate/${MGMT##*/}"
assert_eq "$(member acm list-certificates | count CertificateSummaryList)" 1 "the member lists its own certificate only"
assert_contains "$(member acm list-certificates)" "$MCERT" "its own"
assert_eq "$(kms acm list-certificates | count CertificateSummaryList)" 1 "the management account lists its own only"
assert_not_contains "$(kms acm list-certificates)" "${MCERT##*/}" "not the member's"
member acm add-tags-to-certificate --certificate-arn "$MCERT" --tags '[{"Key":"team","Value":"m"}]'
assert_contains "$(member acm list-tags-for-certificate --certificate-arn "$MCERT")" '"team"' "the member tags its own"

# keys of another account are never sealed under the home account's alias/aws/acm
expect_error UnsupportedOperationException 254 member acm request-certificate --domain-name e.internal \
    --certificate-authority-arn "$MEMBER_CA" --options Export=ENABLED
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/out.key" \
    -subj /CN=outside.example -days 30 -out "$W/out.pem" 2>/dev/null
expect_error UnsupportedOperationException 254 member acm import-certificate \
    --certificate "fileb://$W/out.pem" --private-key "fileb://$W/out.key"
assert_eq "$(member acm list-certificates | count CertificateSummaryList)" 1 "the refusals made nothing"
assert_not_contains "$(kms list-aliases)" "alias/aws/acm" "nor a managed key of the home's account for them"

# the scheduler renews every account's certificates
OUT=$(at +305d run-scheduler --once)
assert_eq "$(count CertificateRenewals <<<"$OUT")" 2 "both accounts' certificates renewed"
assert_contains "$OUT" "$MCERT" "the member's among them, under its own ARN"
assert_eq "$(count Errors <<<"$OUT")" 0 "without errors"
member acm delete-certificate --certificate-arn "$MCERT"
assert_eq "$(member acm list-certificates | count CertificateSummaryList)" 0 "the member deletes its own"
assert_eq "$(kms acm list-certificates | count CertificateSummaryList)" 1 "the management account's stays"
