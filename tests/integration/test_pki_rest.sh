#!/usr/bin/env bash
# The rest of the private CA (issue 16): CAs per account, EC_secp521r1, the APIPassthrough
# templates, allowed name patterns and name constraints, the audit report; checked with openssl.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
W="$TMP/w"
mkdir "$W"
TPL=arn:aws:acm-pca:::template
ca_count() { "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["CertificateAuthorities"]))'; }
# new_ca KEY_ALG SIG_ALG CN [KMSCTL-WRAPPER]: prints the CA's ARN; its certificate lands in $W/CN.pem
new_ca() {
    local run=${4:-kms} arn
    printf '{"KeyAlgorithm":"%s","SigningAlgorithm":"%s","Subject":{"CommonName":"%s","Organization":"Example"}}' \
        "$1" "$2" "$3" >"$W/$3.json"
    arn=$($run acm-pca create-certificate-authority --certificate-authority-type ROOT \
        --certificate-authority-configuration "file://$W/$3.json" \
        --query CertificateAuthorityArn --output text)
    $run acm-pca get-certificate-authority-certificate --certificate-authority-arn "$arn" \
        --query Certificate --output text >"$W/$3.pem"
    echo "$arn"
}
csr() { # csr NAME SUBJ [-addext ...]: an EC P-256 key and CSR in $W/NAME.{key,csr}
    local name=$1 subj=$2
    shift 2
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$name.key" \
        -subj "$subj" "$@" -out "$W/$name.csr" 2>/dev/null
}
csr app /CN=app.internal -addext "subjectAltName=DNS:app.internal"

# ---- accounts: a CA belongs to the account of the caller who created it ------------------------
out=$(kms create-account --email pki@example.com --account-name Pki)
MEMBER=$(json_get CreateAccountStatus.AccountId <<<"$out")
creds=$(kms assume-role --role-arn "arn:aws:iam::$MEMBER:role/OrganizationAccountAccessRole" \
    --role-session-name pki)
M_AK=$(json_get Credentials.AccessKeyId <<<"$creds")
M_SK=$(json_get Credentials.SecretAccessKey <<<"$creds")
M_TOK=$(json_get Credentials.SessionToken <<<"$creds")
member() { KMS_ACCESS_KEY_ID=$M_AK KMS_SECRET_ACCESS_KEY=$M_SK KMS_SESSION_TOKEN=$M_TOK "$KMSCTL" --home "$HOME_DIR" "$@"; }
MGMT_CA=$(new_ca EC_prime256v1 SHA256WITHECDSA mgmt-root)
MEMBER_CA=$(new_ca EC_prime256v1 SHA256WITHECDSA member-root member)
assert_match "$MEMBER_CA" "^arn:aws:acm-pca:us-east-1:$MEMBER:certificate-authority/" \
    "a member account's CA carries the member account in its ARN"
assert_eq "$(member acm-pca describe-certificate-authority --certificate-authority-arn "$MEMBER_CA" \
    --query CertificateAuthority.OwnerAccount --output text)" "$MEMBER" "OwnerAccount is the creator's account"
# Another account's ARN: the gate refuses it (no resource policy shares a CA across accounts,
# as AWS refuses it without a RAM share), whether that CA exists or not.
expect_error AccessDeniedException 254 member acm-pca describe-certificate-authority \
    --certificate-authority-arn "$MGMT_CA"
expect_error AccessDeniedException 254 kms acm-pca describe-certificate-authority \
    --certificate-authority-arn "$MEMBER_CA"
expect_error AccessDeniedException 254 member acm-pca issue-certificate \
    --certificate-authority-arn "$MGMT_CA" --csr "fileb://$W/app.csr" \
    --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS
# The management account's CA id under the member's account is no CA of the member's either.
expect_error ResourceNotFoundException 254 member acm-pca describe-certificate-authority \
    --certificate-authority-arn "arn:aws:acm-pca:us-east-1:$MEMBER:certificate-authority/${MGMT_CA##*/}"
assert_eq "$(member acm-pca list-certificate-authorities | ca_count)" 1 "the member lists its own CA only"
assert_not_contains "$(member acm-pca list-certificate-authorities)" "${MGMT_CA##*/}" \
    "the member does not list the management account's CA"
assert_not_contains "$(kms acm-pca list-certificate-authorities)" "${MEMBER_CA##*/}" \
    "the management account does not list the member's CA"
M_CERT=$(member acm-pca issue-certificate --certificate-authority-arn "$MEMBER_CA" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS \
    --query CertificateArn --output text)
assert_match "$M_CERT" "^$MEMBER_CA/certificate/[0-9a-f]+\$" "the member's CA issues, its ARN in the member account"
expect_error AccessDeniedException 254 kms acm-pca get-certificate \
    --certificate-authority-arn "$MEMBER_CA" --certificate-arn "$M_CERT"
# Its own account's ARN with the other account's CA id: no such CA in this account.
expect_error ResourceNotFoundException 254 kms acm-pca describe-certificate-authority \
    --certificate-authority-arn "arn:aws:acm-pca:us-east-1:$ACCOUNT:certificate-authority/${MEMBER_CA##*/}"
expect_error ResourceNotFoundException 254 kms acm-pca issue-certificate \
    --certificate-authority-arn "arn:aws:acm-pca:us-east-1:$ACCOUNT:certificate-authority/${MEMBER_CA##*/}" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS


# ---- ECC_NIST_P521 (AWS KMS's key spec, ECDSA_SHA_512) and EC_secp521r1 CAs ----------------------
P521_KEY=$(kms create-key --key-spec ECC_NIST_P521 --key-usage SIGN_VERIFY --query KeyMetadata.KeyId --output text)
kms get-public-key --key-id "$P521_KEY" >"$W/p521.json"
assert_eq "$(json_get SigningAlgorithms <"$W/p521.json")" '["ECDSA_SHA_512"]' "ECC_NIST_P521: SigningAlgorithms"
json_get PublicKey <"$W/p521.json" | base64 -d | openssl pkey -pubin -inform DER -out "$W/p521-pub.pem"
assert_contains "$(openssl pkey -pubin -in "$W/p521-pub.pem" -noout -text)" "ASN1 OID: secp521r1" \
    "ECC_NIST_P521: the public key is on secp521r1"
printf 'a message for P-521' >"$W/msg"
kms sign --key-id "$P521_KEY" --signing-algorithm ECDSA_SHA_512 --message "fileb://$W/msg" \
    --output text --query Signature | base64 -d >"$W/p521.sig"
if openssl dgst -sha512 -verify "$W/p521-pub.pem" -signature "$W/p521.sig" "$W/msg" >/dev/null 2>&1; then
    ok "openssl verifies an ECDSA_SHA_512 signature of an ECC_NIST_P521 key"
else fail "openssl does not verify the P-521 signature"; fi
assert_eq "$(kms verify --key-id "$P521_KEY" --signing-algorithm ECDSA_SHA_512 --message "fileb://$W/msg" \
    --signature "fileb://$W/p521.sig" --query SignatureValid --output text)" True "kms verify: P-521"
expect_error InvalidKeyUsageException 254 kms sign --key-id "$P521_KEY" --signing-algorithm ECDSA_SHA_384 \
    --message "fileb://$W/msg"

P521_CA=$(new_ca EC_secp521r1 SHA512WITHECDSA p521-root)
text=$(openssl x509 -in "$W/p521-root.pem" -noout -text)
assert_contains "$text" "ASN1 OID: secp521r1" "EC_secp521r1: the CA key is on secp521r1"
assert_contains "$text" "ecdsa-with-SHA512" "SHA512WITHECDSA: the CA signs with ecdsa-with-SHA512"
openssl verify -CAfile "$W/p521-root.pem" "$W/p521-root.pem" >/dev/null 2>&1 &&
    ok "openssl verifies the P-521 CA's self-signed certificate" || fail "P-521 root does not verify"
out=$(kms acm-pca issue-certificate --certificate-authority-arn "$P521_CA" --csr "fileb://$W/app.csr" \
    --signing-algorithm SHA512WITHECDSA --validity Value=30,Type=DAYS --query CertificateArn --output text)
kms acm-pca get-certificate --certificate-authority-arn "$P521_CA" --certificate-arn "$out" \
    --query Certificate --output text >"$W/p521-leaf.pem"
if openssl verify -CAfile "$W/p521-root.pem" "$W/p521-leaf.pem" >/dev/null 2>&1; then
    ok "openssl verifies a leaf signed by the P-521 CA"
else fail "P-521 leaf: $(openssl verify -CAfile "$W/p521-root.pem" "$W/p521-leaf.pem" 2>&1)"; fi

# ---- APIPassthrough templates: custom extensions with their critical flag, and the rest ---------
EC=$(new_ca EC_prime256v1 SHA256WITHECDSA pass-root)
# pass NAME TEMPLATE JSON: issue with ApiPassthrough JSON; the certificate lands in $W/NAME.pem
pass() {
    local arn
    arn=$(kms acm-pca issue-certificate --certificate-authority-arn "$EC" --csr "fileb://$W/app.csr" \
        --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS \
        --template-arn "$TPL/$2/V1" --api-passthrough "$3" --query CertificateArn --output text)
    kms acm-pca get-certificate --certificate-authority-arn "$EC" --certificate-arn "$arn" \
        --query Certificate --output text >"$W/$1.pem"
}
CUSTOM='{"ObjectIdentifier": "1.3.6.1.4.1.55555.1", "Value": "DAVoZWxsbw==", "Critical": true},
  {"ObjectIdentifier": "1.3.6.1.4.1.55555.2", "Value": "AgEF"}'
for t in EndEntityCertificate EndEntityServerAuthCertificate EndEntityClientAuthCertificate \
    CodeSigningCertificate SubordinateCACertificate_PathLen0; do
    pass "pt-$t" "${t}_APIPassthrough" "{\"Extensions\": {\"CustomExtensions\": [$CUSTOM]}}"
    text=$(openssl x509 -in "$W/pt-$t.pem" -noout -text)
    assert_match "$text" "1\.3\.6\.1\.4\.1\.55555\.1: critical"$'\n'" +\.\.hello" \
        "${t}_APIPassthrough: the custom OID, critical, with its value"
    assert_match "$text" "1\.3\.6\.1\.4\.1\.55555\.2: *"$'\n' \
        "${t}_APIPassthrough: the second custom OID, not critical"
    assert_not_contains "$text" "55555.2: critical" "${t}_APIPassthrough: Critical absent is false"
    # openssl verify refuses an unknown critical extension (RFC 5280 4.2): the flag is real.
    assert_contains "$(openssl verify -CAfile "$W/pass-root.pem" "$W/pt-$t.pem" 2>&1 || true)" \
        "unhandled critical extension" "${t}_APIPassthrough: openssl sees the critical flag"
done
# Python's asn1 view, independent of openssl's text: the extension's OID, critical flag and value.
openssl x509 -in "$W/pt-EndEntityCertificate.pem" -outform DER -out "$W/pt.der"
assert_contains "$(openssl asn1parse -inform DER -in "$W/pt.der" | grep -A2 '1.3.6.1.4.1.55555.1')" \
    "BOOLEAN           :255" "asn1parse: the custom extension's critical BOOLEAN is TRUE"

pass pt-full EndEntityServerAuthCertificate_APIPassthrough '{"Subject": {"CommonName": "api.internal", "Organization": "Api"},
  "Extensions": {"SubjectAlternativeNames": [{"DnsName": "api.internal"}, {"IpAddress": "10.1.2.3"}, {"Rfc822Name": "ops@example.com"}],
  "CertificatePolicies": [{"CertPolicyId": "2.23.140.1.2.1", "PolicyQualifiers": [{"PolicyQualifierId": "CPS", "Qualifier": {"CpsUri": "https://cps.example.com"}}]}],
  "ExtendedKeyUsage": [{"ExtendedKeyUsageType": "CODE_SIGNING"}],
  "KeyUsage": {"DigitalSignature": true, "KeyAgreement": true}}}'
ext() { openssl x509 -in "$W/$1.pem" -noout -ext "$2" 2>/dev/null | sed -n '2,$p' | sed 's/^ *//'; }
assert_eq "$(openssl x509 -in "$W/pt-full.pem" -noout -subject)" "subject=O = Api, CN = api.internal" \
    "ApiPassthrough's Subject replaces the CSR's"
assert_eq "$(ext pt-full subjectAltName)" "DNS:api.internal, IP Address:10.1.2.3, email:ops@example.com" \
    "ApiPassthrough's SubjectAlternativeNames replace the CSR's"
assert_contains "$(ext pt-full certificatePolicies)" "Policy: 2.23.140.1.2.1" "CertificatePolicies"
assert_contains "$(ext pt-full certificatePolicies)" "CPS: https://cps.example.com" "CertificatePolicies: the CPS"
assert_eq "$(ext pt-full extendedKeyUsage)" "TLS Web Server Authentication" \
    "the template's extendedKeyUsage wins over the ApiPassthrough's (AWS's order of operations)"
assert_eq "$(ext pt-full keyUsage)" "Digital Signature" "and so does its keyUsage"
openssl verify -CAfile "$W/pass-root.pem" "$W/pt-full.pem" >/dev/null 2>&1 &&
    ok "openssl verifies the ApiPassthrough certificate" || fail "pt-full does not verify"
pass pt-sub SubordinateCACertificate_PathLen0_APIPassthrough \
    '{"Extensions": {"ExtendedKeyUsage": [{"ExtendedKeyUsageType": "SERVER_AUTH"}, {"ExtendedKeyUsageObjectIdentifier": "1.3.6.1.4.1.55555.9"}]}}'
assert_eq "$(ext pt-sub extendedKeyUsage)" "TLS Web Server Authentication, 1.3.6.1.4.1.55555.9" \
    "a template without extendedKeyUsage takes the ApiPassthrough's"

# Refusals: nothing is issued.
N0=$("$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM pca_certificates").fetchone()[0])' "$HOME_DIR/kms.db")
refuse() { # refuse EXCEPTION TEMPLATE JSON
    expect_error "$1" 254 kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
        --csr "fileb://$W/app.csr" --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS \
        --template-arn "$TPL/$2/V1" --api-passthrough "$3"
}
refuse InvalidArgsException EndEntityCertificate \
    '{"Extensions": {"CustomExtensions": [{"ObjectIdentifier": "1.3.6.1.4.1.55555.1", "Value": "AgEF"}]}}'
assert_contains "$ERR_MSG" "_APIPassthrough templates only" "a base template takes no ApiPassthrough"
refuse InvalidArgsException EndEntityCertificate_APIPassthrough \
    '{"Extensions": {"CustomExtensions": [{"ObjectIdentifier": "2.5.29.19", "Value": "MAYBAf8CAQA=", "Critical": true}]}}'
assert_contains "$ERR_MSG" "Basic Constraints" "a custom basicConstraints is refused"
for oid in 2.5.29.15 2.5.29.37 2.5.29.14 2.5.29.35 2.5.29.17 2.5.29.32 2.5.29.31; do
    refuse InvalidArgsException EndEntityCertificate_APIPassthrough \
        "{\"Extensions\": {\"CustomExtensions\": [{\"ObjectIdentifier\": \"$oid\", \"Value\": \"AgEF\"}]}}"
done
refuse InvalidArgsException EndEntityCertificate_APIPassthrough \
    '{"Extensions": {"CustomExtensions": [{"ObjectIdentifier": "1.2.3.4", "Value": "AgEF"}, {"ObjectIdentifier": "1.2.3.4", "Value": "AgEF"}]}}'
assert_contains "$ERR_MSG" "twice" "one OID twice is refused"
refuse InvalidArgsException EndEntityCertificate_APIPassthrough \
    '{"Extensions": {"CustomExtensions": [{"ObjectIdentifier": "1.2.3.4", "Value": "AgEFBQ=="}]}}'
assert_contains "$ERR_MSG" "not one DER value" "a value that is not one DER value is refused"
refuse ValidationException EndEntityCertificate_APIPassthrough \
    '{"Extensions": {"CustomExtensions": [{"ObjectIdentifier": "1.2.x", "Value": "AgEF"}]}}'
refuse ValidationException EndEntityCertificate_APIPassthrough \
    '{"Extensions": {"CustomExtensions": [{"ObjectIdentifier": "1.2.3", "Value": "AgEF", "Critical": "yes"}]}}'
refuse ValidationException EndEntityCertificate_APIPassthrough '{"Extensions": {"Colour": "red"}}'
refuse InvalidArgsException EndEntityCertificate_APIPassthrough \
    '{"Extensions": {"SubjectAlternativeNames": [{"DnsName": "bad..example"}]}}'
refuse InvalidArgsException EndEntityCertificate_APIPassthrough \
    '{"Extensions": {"SubjectAlternativeNames": [{"DirectoryName": {"CommonName": "x"}}]}}'
MANY=$("$PY" -c 'import json; print(json.dumps({"Extensions": {"CustomExtensions": [{"ObjectIdentifier": "1.2.3.%d" % i, "Value": "AgEF"} for i in range(151)]}}))')
refuse ValidationException EndEntityCertificate_APIPassthrough "$MANY"
assert_contains "$ERR_MSG" "1 to 150" "at most 150 custom extensions, as AWS allows"
N1=$("$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM pca_certificates").fetchone()[0])' "$HOME_DIR/kms.db")
assert_eq "$N1" "$N0" "refused ApiPassthrough requests issued nothing"

# ---- AllowedNamePatterns (beyond AWS): names outside refused; name constraints in sub CAs --------
printf '{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"Names Root"},"AllowedNamePatterns":["*.internal","app.example.com"]}' >"$W/names.json"
NAMES=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$W/names.json" --query CertificateAuthorityArn --output text)
kms acm-pca get-certificate-authority-certificate --certificate-authority-arn "$NAMES" \
    --query Certificate --output text >"$W/names-root.pem"
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$NAMES" \
    --query 'CertificateAuthority.CertificateAuthorityConfiguration.AllowedNamePatterns' --output json | tr -d ' \n')" \
    '["*.internal","app.example.com"]' "DescribeCertificateAuthority shows the AllowedNamePatterns"
for bad in '[]' '["*"]' '["bad..example"]' '["*.*.internal"]' '[7]' '"x.internal"'; do
    printf '{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"x"},"AllowedNamePatterns":%s}' "$bad" >"$W/badnames.json"
    expect_error InvalidArgsException 254 kms acm-pca create-certificate-authority \
        --certificate-authority-type ROOT --certificate-authority-configuration "file://$W/badnames.json"
done
count_certs() { "$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM pca_certificates").fetchone()[0])' "$HOME_DIR/kms.db"; }
nissue() { # nissue CSR [TEMPLATE [API]]: issue from the names CA
    local extra=()
    [ -n "${3:-}" ] && extra=(--api-passthrough "$3")
    kms acm-pca issue-certificate --certificate-authority-arn "$NAMES" --csr "fileb://$W/$1.csr" \
        --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS \
        --template-arn "$TPL/${2:-EndEntityServerAuthCertificate}/V1" "${extra[@]}" --query CertificateArn --output text
}
csr in1 /CN=svc.internal -addext "subjectAltName=DNS:svc.internal,DNS:*.svc.internal,DNS:a.b.internal"
csr in2 /CN=app.example.com
csr out1 /CN=svc.internal -addext "subjectAltName=DNS:svc.internal,DNS:evil.example"
csr out2 /CN=www.app.example.com
csr out3 /CN=svc.internal -addext "subjectAltName=DNS:svc.internal,IP:10.0.0.1"
csr out4 /CN=internal
nissue in1 >/dev/null && ok "names below *.internal are issued" || fail "*.internal names refused"
nissue in2 >/dev/null && ok "app.example.com (a CN without SAN) is issued" || fail "app.example.com refused"
BEFORE=$(count_certs)
for c in out1 out2 out3; do
    expect_error InvalidArgsException 254 nissue $c
done
assert_contains "$ERR_MSG" "DNS names only" "an IP address is refused by a CA with AllowedNamePatterns"
expect_error InvalidArgsException 254 nissue out2
assert_contains "$ERR_MSG" "'www.app.example.com'" "the refusal names the name outside the patterns"
csr plain /CN=plain.internal
expect_error InvalidArgsException 254 nissue plain EndEntityServerAuthCertificate_APIPassthrough \
    '{"Extensions": {"SubjectAlternativeNames": [{"DnsName": "outside.example"}]}}'
assert_eq "$(count_certs)" "$BEFORE" "names outside the patterns: nothing issued"
# Every common name is checked: without a dot (hostname checkers fall back to it all the same)
# and in any string type (a BMPString is converted to UTF-8 first).
csr out5 /CN=localhost
cat >"$W/bmp.cnf" <<'CNF'
[req]
distinguished_name = dn
string_mask = MASK:0x800
prompt = no
[dn]
CN = evil.example.com
CNF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/bmp.key" \
    -config "$W/bmp.cnf" -out "$W/bmp.csr" 2>/dev/null
assert_contains "$(openssl req -in "$W/bmp.csr" -noout -text -nameopt show_type)" "BMPSTRING" "a CSR with a BMPString CN"
for c in out4 out5 bmp; do
    expect_error InvalidArgsException 254 nissue $c
done
assert_contains "$ERR_MSG" "'evil.example.com'" "the BMPString CN is checked as UTF-8"
assert_eq "$(count_certs)" "$BEFORE" "dotless and BMPString common names outside the patterns: nothing issued"

# A subordinate CA certificate from it carries the patterns as critical name constraints.
csr subn "/CN=sub.internal"
SUBN=$(nissue subn SubordinateCACertificate_PathLen0)
kms acm-pca get-certificate --certificate-authority-arn "$NAMES" --certificate-arn "$SUBN" \
    --query Certificate --output text >"$W/subn.pem"
nc=$(openssl x509 -in "$W/subn.pem" -noout -ext nameConstraints)
assert_contains "$nc" "Name Constraints: critical" "the sub CA's nameConstraints are critical"
assert_match "$nc" "Permitted:"$'\n'" +DNS:internal"$'\n'" +DNS:app.example.com" \
    "permitted dNSName subtrees: internal, app.example.com"
assert_contains "$nc" "Excluded:" "IP addresses are excluded"
sign_leaf() { # sign_leaf NAME SAN: a leaf signed by the sub CA's key with openssl alone
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$1.key" \
        -subj "/CN=$1" -out "$W/$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\n' "$2" >"$W/$1.ext"
    openssl x509 -req -in "$W/$1.csr" -CA "$W/subn.pem" -CAkey "$W/subn.key" -set_serial 9 -days 1 \
        -extfile "$W/$1.ext" -out "$W/$1.pem" 2>/dev/null
}
sign_leaf leaf-in DNS:leaf.internal
sign_leaf leaf-out DNS:leaf.other.example
sign_leaf leaf-ip IP:10.9.9.9
sign_leaf leaf-email email:ceo@evil.example
sign_leaf leaf-uri URI:spiffe://evil.example/admin
if openssl verify -CAfile "$W/names-root.pem" -untrusted "$W/subn.pem" "$W/leaf-in.pem" >/dev/null 2>&1; then
    ok "a leaf inside the constraints verifies under the constrained sub CA"
else fail "leaf.internal: $(openssl verify -CAfile "$W/names-root.pem" -untrusted "$W/subn.pem" "$W/leaf-in.pem" 2>&1)"; fi
for l in leaf-out leaf-ip leaf-email leaf-uri; do
    out=$(openssl verify -CAfile "$W/names-root.pem" -untrusted "$W/subn.pem" "$W/$l.pem" 2>&1 || true)
    assert_contains "$out" "subtree violation" "$l: openssl verify fails: $(tail -1 <<<"$out")"
done
for l in leaf-out leaf-email leaf-uri; do
    assert_contains "$(openssl verify -CAfile "$W/names-root.pem" -untrusted "$W/subn.pem" "$W/$l.pem" 2>&1 || true)" \
        "permitted subtree violation" "$l outside the constraints: permitted subtree violation"
done
assert_match "$nc" "email:.invalid" "e-mail addresses permitted only below .invalid"
assert_match "$nc" "URI:.invalid" "URIs permitted only below .invalid"
# A custom nameConstraints beside the CA's own is a repeat, refused.
expect_error InvalidArgsException 254 nissue subn SubordinateCACertificate_PathLen0_APIPassthrough \
    '{"Extensions": {"CustomExtensions": [{"ObjectIdentifier": "2.5.29.30", "Value": "MAA=", "Critical": true}]}}'

# ---- CreateCertificateAuthorityAuditReport: JSON and CSV, from the records and the trail -------
RCA=$(new_ca EC_prime256v1 SHA256WITHECDSA report-root)
kms create-user --user-name reporter >/dev/null
kms put-user-policy --user-name reporter --policy-name pca --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"}]}'
KEYS=$(kms create-access-key --user-name reporter)
as_reporter() {
    KMS_ACCESS_KEY_ID=$(json_get AccessKey.AccessKeyId <<<"$KEYS") \
        KMS_SECRET_ACCESS_KEY=$(json_get AccessKey.SecretAccessKey <<<"$KEYS") "$KMSCTL" --home "$HOME_DIR" "$@"
}
ADMIN_ARN=$(kms get-caller-identity --query Arn --output text)
REPORTER_ARN=$(as_reporter get-caller-identity --query Arn --output text)
C1=$(kms acm-pca issue-certificate --certificate-authority-arn "$RCA" --csr "fileb://$W/app.csr" \
    --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS --query CertificateArn --output text)
csr r2 "/CN=two.internal/O=Comma, Inc" -addext "subjectAltName=DNS:two.internal"
C2=$(as_reporter acm-pca issue-certificate --certificate-authority-arn "$RCA" --csr "fileb://$W/r2.csr" \
    --signing-algorithm SHA256WITHECDSA --validity Value=10,Type=DAYS \
    --template-arn "$TPL/EndEntityClientAuthCertificate/V1" --query CertificateArn --output text)
S2=${C2##*/}
as_reporter acm-pca revoke-certificate --certificate-authority-arn "$RCA" \
    --certificate-serial "$(tr a-f A-F <<<"$S2" | sed 's/../&:/g; s/:$//')" --revocation-reason SUPERSEDED
out=$(kms acm-pca create-certificate-authority-audit-report --certificate-authority-arn "$RCA" \
    --audit-report-response-format JSON --s3-bucket-name my-bucket)
RID=$(json_get AuditReportId <<<"$out")
KEY=$(json_get S3Key <<<"$out")
assert_eq "$KEY" "audit-report/${RCA##*/}/$RID.json" "S3Key: audit-report/CA_ID/REPORT_ID.json, below the home"
[ "$(stat -c %a "$HOME_DIR/$KEY")" = 600 ] && ok "the report is written under the home, 0600" || fail "no report at $HOME_DIR/$KEY"
"$PY" - "$HOME_DIR/$KEY" "$C1" "$C2" "$ACCOUNT" "$ADMIN_ARN" "$REPORTER_ARN" "$W/app.csr" <<'PY' >"$W/report-check.txt"
import json, sys
rows = json.load(open(sys.argv[1]))
c1, c2, account, admin, reporter = sys.argv[2:7]
by = {r["certificateArn"]: r for r in rows}
want = ["awsAccountId", "requestedByServicePrincipal", "certificateArn", "serial", "subject",
        "notBefore", "notAfter", "issuedAt", "revokedAt", "revocationReason", "templateArn",
        "issuedBy", "revokedBy"]
print("count", len(rows))
print("fields", list(rows[0]) == want)
r1, r2 = by[c1], by[c2]
print("r1", r1["awsAccountId"] == account, r1["issuedBy"] == admin, r1["revokedAt"] == "",
      r1["templateArn"] == "arn:aws:acm-pca:::template/EndEntityCertificate/V1", r1["subject"])
print("r2", r2["issuedBy"] == reporter, r2["revokedBy"] == reporter, r2["revocationReason"],
      r2["revokedAt"] != "", r2["subject"], r2["templateArn"].split("/")[1])
print("serial", r2["serial"].replace(":", "") == c2.rsplit("/", 1)[1], r2["serial"][2] == ":")
print("times", r2["notBefore"].endswith("+0000"), len(r2["notAfter"]) == 24)
PY
assert_eq "$(sed -n 1p "$W/report-check.txt")" "count 2" "the JSON report lists both certificates"
assert_eq "$(sed -n 2p "$W/report-check.txt")" "fields True" "with AWS's fields in AWS's order, then issuedBy, revokedBy"
assert_eq "$(sed -n 3p "$W/report-check.txt")" "r1 True True True True CN=app.internal" \
    "an issued certificate: account, issuer (from the trail), no revocation, template, subject"
assert_eq "$(sed -n 4p "$W/report-check.txt")" 'r2 True True SUPERSEDED True O=Comma\, Inc,CN=two.internal EndEntityClientAuthCertificate' \
    "a revoked one: who issued and revoked it (the trail), the reason, its RFC 2253 subject"
assert_eq "$(sed -n 5p "$W/report-check.txt")" "serial True True" "serials as aa:bb:..."
assert_eq "$(sed -n 6p "$W/report-check.txt")" "times True True" "times as AWS writes them"
out=$(kms acm-pca describe-certificate-authority-audit-report --certificate-authority-arn "$RCA" --audit-report-id "$RID")
assert_eq "$(json_get AuditReportStatus <<<"$out")/$(json_get S3Key <<<"$out")/$(json_get S3BucketName <<<"$out")" \
    "SUCCESS/$KEY/my-bucket" "DescribeCertificateAuthorityAuditReport"
out=$(kms acm-pca create-certificate-authority-audit-report --certificate-authority-arn "$RCA" \
    --audit-report-response-format CSV)
KEY=$(json_get S3Key <<<"$out")
"$PY" - "$HOME_DIR/$KEY" "$C2" "$REPORTER_ARN" <<'PY' >"$W/csv-check.txt"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
print(",".join(rows[0]))
print(len(rows) - 1)
r = {row[2]: dict(zip(rows[0], row)) for row in rows[1:]}[sys.argv[2]]
print(r["subject"], r["revocationReason"], r["revokedBy"] == sys.argv[3])
PY
assert_eq "$(sed -n 1p "$W/csv-check.txt")" \
    "awsAccountId,requestedByServicePrincipal,certificateArn,serial,subject,notBefore,notAfter,issuedAt,revokedAt,revocationReason,templateArn,issuedBy,revokedBy" \
    "the CSV header is AWS's, then ours"
assert_eq "$(sed -n 2p "$W/csv-check.txt")" 2 "the CSV report lists both certificates"
assert_eq "$(sed -n 3p "$W/csv-check.txt")" 'O=Comma\, Inc,CN=two.internal SUPERSEDED True' \
    "a subject with commas is quoted (RFC 4180) and reads back whole"
expect_error ValidationException 254 kms acm-pca create-certificate-authority-audit-report \
    --certificate-authority-arn "$RCA" --audit-report-response-format XML
expect_error ResourceNotFoundException 254 kms acm-pca describe-certificate-authority-audit-report \
    --certificate-authority-arn "$RCA" --audit-report-id 00000000-0000-4000-8000-000000000000
expect_error AccessDeniedException 254 member acm-pca create-certificate-authority-audit-report \
    --certificate-authority-arn "$RCA" --audit-report-response-format JSON
assert_contains "$(kms acm-pca create-certificate-authority-audit-report --help)" \
    "kmsctl acm-pca create-certificate-authority-audit-report --certificate-authority-arn" \
    "create-certificate-authority-audit-report --help shows an example"
assert_contains "$(kms acm-pca describe-certificate-authority-audit-report --help)" \
    "--audit-report-id" "describe-certificate-authority-audit-report --help"
