#!/usr/bin/env bash
# The private CA through kmsctl, checked by tools nobody here wrote: openssl makes the CSRs,
# verifies every certificate against the CA's and reads each extension per template;
# pkcs11-tool shows the CA key in the token, sensitive and never extractable; IAM policies deny
# acm-pca:IssueCertificate; every call leaves an audit record from acm-pca.amazonaws.com.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v pkcs11-tool >/dev/null || { fail "pkcs11-tool (opensc) is not installed"; exit 1; }

init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
W="$TMP/w"
mkdir "$W"
TPL=arn:aws:acm-pca:::template
ca_count() { "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["CertificateAuthorities"]))'; }

# ---- CAs: one per key algorithm ----------------------------------------------------------------
# new_ca KEY_ALG SIG_ALG CN: prints the CA's ARN; its certificate lands in $W/CN.pem
new_ca() {
    printf '{"KeyAlgorithm":"%s","SigningAlgorithm":"%s","Subject":{"CommonName":"%s","Organization":"Example","Country":"FR"}}' \
        "$1" "$2" "$3" >"$W/$3.json"
    local arn
    arn=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
        --certificate-authority-configuration "file://$W/$3.json" \
        --query CertificateAuthorityArn --output text)
    kms acm-pca get-certificate-authority-certificate --certificate-authority-arn "$arn" \
        --query Certificate --output text >"$W/$3.pem"
    echo "$arn"
}
EC=$(new_ca EC_prime256v1 SHA256WITHECDSA ec-root)
assert_match "$EC" "^arn:aws:acm-pca:us-east-1:$ACCOUNT:certificate-authority/[0-9a-f-]{36}\$" \
    "CreateCertificateAuthority answers the CA's ARN"
EC_ID=${EC##*/}
P384=$(new_ca EC_secp384r1 SHA384WITHECDSA p384-root)
RSA=$(new_ca RSA_2048 SHA256WITHRSA rsa-root)
RSA4096=$(new_ca RSA_4096 SHA512WITHRSA rsa4096-root)

for ca in ec-root p384-root rsa-root rsa4096-root; do
    openssl verify -CAfile "$W/$ca.pem" "$W/$ca.pem" >/dev/null 2>&1 &&
        ok "$ca: openssl verifies its self-signed certificate" || fail "$ca: openssl verify fails"
    text=$(openssl x509 -in "$W/$ca.pem" -noout -text)
    assert_match "$text" "Basic Constraints: critical"$'\n'" +CA:TRUE" "$ca: basicConstraints critical CA:TRUE"
    assert_match "$text" "Key Usage: critical"$'\n'" +Digital Signature, Certificate Sign, CRL Sign" \
        "$ca: keyUsage critical keyCertSign, cRLSign"
    assert_eq "$(openssl x509 -in "$W/$ca.pem" -noout -subject)" \
        "subject=C = FR, O = Example, CN = $ca" "$ca: the subject of the configuration"
done
assert_contains "$(openssl x509 -in "$W/p384-root.pem" -noout -text)" "ecdsa-with-SHA384" \
    "the P-384 CA signs with ecdsa-with-SHA384"
assert_contains "$(openssl x509 -in "$W/rsa4096-root.pem" -noout -text)" "Public-Key: (4096 bit)" \
    "the RSA_4096 CA has a 4096-bit key"
assert_contains "$(openssl x509 -in "$W/rsa4096-root.pem" -noout -text)" \
    "sha512WithRSAEncryption" "the RSA_4096 CA signs with sha512WithRSAEncryption"

OUT=$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$EC")
assert_eq "$(json_get CertificateAuthority.Status <<<"$OUT")" ACTIVE "a ROOT CA is ACTIVE at once"
assert_eq "$(json_get CertificateAuthority.Type <<<"$OUT")" ROOT "DescribeCertificateAuthority: Type"
assert_eq "$(json_get CertificateAuthority.CertificateAuthorityConfiguration.KeyAlgorithm <<<"$OUT")" \
    EC_prime256v1 "DescribeCertificateAuthority: the configuration"
SERIAL=$(openssl x509 -in "$W/ec-root.pem" -noout -serial | sed 's/serial=//' | tr A-F a-f)
assert_eq "$(json_get CertificateAuthority.Serial <<<"$OUT")" "$SERIAL" \
    "DescribeCertificateAuthority: the serial of the CA's certificate"
N=$(kms acm-pca list-certificate-authorities | ca_count)
assert_eq "$N" 4 "ListCertificateAuthorities lists the four CAs"
OUT=$(kms acm-pca list-certificate-authorities --no-paginate --max-results 3)
TOKEN=$(json_get NextToken <<<"$OUT")
N=$(kms acm-pca list-certificate-authorities --next-token "$TOKEN" | ca_count)
assert_eq "$N" 1 "ListCertificateAuthorities pages with NextToken"

# ---- the CA key is in the token, sensitive and never extractable -------------------------------
export SOFTHSM2_CONF="$HOME_DIR/hsm/softhsm2.conf"
PIN=$(head -n1 "$HOME_DIR/pin")
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label kms --login --pin "$PIN" --list-objects \
    >"$W/objects.txt" 2>/dev/null
# pkcs11_object LABEL CLASS: "HEADER|ACCESS|USAGE" of the one object of that class and label
pkcs11_object() {
    "$PY" - "$W/objects.txt" "$1" "$2" <<'PY'
import sys
objs, cur = [], None
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    line = line.rstrip("\n")
    if line and not line[0].isspace():
        cur = {"header": line, "label": "", "access": "", "usage": ""}
        objs.append(cur)
    elif cur is not None and ":" in line:
        k, _, v = line.strip().partition(":")
        if k.strip().lower() in ("label", "access", "usage"):
            cur[k.strip().lower()] = v.strip()
found = [o for o in objs if o["label"] == sys.argv[2] and o["header"].startswith(sys.argv[3])]
print("|".join([found[0]["header"], found[0]["access"], found[0]["usage"]]) if len(found) == 1
      else "<%d objects>" % len(found))
PY
}
OBJ=$(pkcs11_object "pca:$EC_ID" "Private Key Object")
assert_contains "$OBJ" "Private Key Object; EC" "the EC CA's private key is an object of the token"
ACCESS=$(cut -d'|' -f2 <<<"$OBJ")
for flag in "sensitive" "always sensitive" "never extractable"; do
    assert_contains "$ACCESS" "$flag" "the CA's private key is '$flag'"
done
assert_not_contains "$(sed 's/never extractable//' <<<"$ACCESS")" "extractable" \
    "the CA's private key is not extractable"
assert_contains "$(cut -d'|' -f3 <<<"$OBJ")" "sign" "the CA's private key signs"
assert_contains "$(pkcs11_object "pca:${RSA##*/}" "Private Key Object")" "Private Key Object; RSA" \
    "the RSA CA's private key is an object of the token"

# ---- issuing, per template ---------------------------------------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/app.key" \
    -subj /CN=app.internal -addext "subjectAltName=DNS:app.internal,DNS:www.app.internal,IP:10.0.0.7" \
    -out "$W/app.csr" 2>/dev/null
# Names that are no host names are refused in subjectAltName (the CA/Browser Forum's rules).
for bad in "DNS:*" "DNS:*.com" "DNS:a b.example" "DNS:-bad.example" "DNS:bad..example"; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/bad.key" \
        -subj /CN=bad -addext "subjectAltName=$bad" -out "$W/bad.csr" 2>/dev/null
    expect_error InvalidArgsException 254 kms acm-pca issue-certificate \
        --certificate-authority-arn "$EC" --csr "fileb://$W/bad.csr" --signing-algorithm SHA256WITHECDSA \
        --validity Value=30,Type=DAYS --template-arn "$TPL/EndEntityServerAuthCertificate/V1"
done
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/wild.key" \
    -subj /CN=wild -addext "subjectAltName=DNS:*.app.internal" -out "$W/wild.csr" 2>/dev/null
kms acm-pca issue-certificate --certificate-authority-arn "$EC" --csr "fileb://$W/wild.csr" \
    --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS \
    --template-arn "$TPL/EndEntityServerAuthCertificate/V1" >/dev/null &&
    ok "a wildcard as the whole left-most label above two labels is issued" ||
    fail "*.app.internal was refused"

# A subject that is the CA's own (the leaf would look self-issued), and an EC key with explicit
# curve parameters (RFC 5480: named curves only), are refused.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/same.key" \
    -subj "$(openssl x509 -in "$W/ec-root.pem" -noout -subject -nameopt compat | sed 's/^subject=//')" \
    -out "$W/same.csr" 2>/dev/null
expect_error InvalidArgsException 254 kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
    --csr "fileb://$W/same.csr" --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS \
    --template-arn "$TPL/EndEntityCertificate/V1"
assert_contains "$ERR_MSG" "the CA's own" "a CSR with the CA's own subject is refused"
openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout -out "$W/explicit.key" 2>/dev/null
openssl req -new -key "$W/explicit.key" -subj /CN=explicit -out "$W/explicit.csr" 2>/dev/null
expect_error MalformedCSRException 254 kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
    --csr "fileb://$W/explicit.csr" --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS \
    --template-arn "$TPL/EndEntityCertificate/V1"
assert_contains "$ERR_MSG" "explicit curve parameters" "an EC key with explicit parameters is refused"

# issue CA_ARN CA_PEM TEMPLATE SIG_ALG NAME [CSR]: issues, writes $W/NAME.pem, checks the chain
issue() {
    local arn cert
    arn=$(kms acm-pca issue-certificate --certificate-authority-arn "$1" --csr "fileb://${6:-$W/app.csr}" \
        --signing-algorithm "$4" --validity Value=30,Type=DAYS --template-arn "$TPL/$3/V1" \
        --query CertificateArn --output text)
    kms acm-pca get-certificate --certificate-authority-arn "$1" --certificate-arn "$arn" \
        --query Certificate --output text >"$W/$5.pem"
    kms acm-pca get-certificate --certificate-authority-arn "$1" --certificate-arn "$arn" \
        --query CertificateChain --output text >"$W/$5.chain.pem"
    if openssl verify -CAfile "$2" "$W/$5.pem" >/dev/null 2>&1; then
        ok "$5: openssl verify -CAfile the CA's certificate"
    else fail "$5: openssl verify fails: $(openssl verify -CAfile "$2" "$W/$5.pem" 2>&1)"; fi
    assert_files_equal "$W/$5.chain.pem" "$2" "$5: GetCertificate's chain is the CA's certificate"
    echo "$arn" >"$W/$5.arn"
}
issue "$EC" "$W/ec-root.pem" EndEntityCertificate SHA256WITHECDSA ee
issue "$EC" "$W/ec-root.pem" EndEntityServerAuthCertificate SHA256WITHECDSA server
issue "$EC" "$W/ec-root.pem" EndEntityClientAuthCertificate SHA256WITHECDSA client
issue "$EC" "$W/ec-root.pem" CodeSigningCertificate SHA256WITHECDSA codesign
issue "$EC" "$W/ec-root.pem" SubordinateCACertificate_PathLen0 SHA256WITHECDSA sub
issue "$P384" "$W/p384-root.pem" EndEntityServerAuthCertificate SHA384WITHECDSA server384
issue "$RSA" "$W/rsa-root.pem" EndEntityServerAuthCertificate SHA256WITHRSA server-rsa
openssl req -new -newkey rsa:2048 -nodes -keyout "$W/rsa.key" -subj /CN=rsa.internal \
    -addext subjectAltName=DNS:rsa.internal -out "$W/rsa.csr" 2>/dev/null
issue "$RSA4096" "$W/rsa4096-root.pem" EndEntityClientAuthCertificate SHA512WITHRSA client-rsa "$W/rsa.csr"

ext() { openssl x509 -in "$W/$1.pem" -noout -ext "$2" 2>/dev/null | sed -n '2,$p' | sed 's/^ *//'; }
assert_eq "$(ext ee extendedKeyUsage)" "TLS Web Server Authentication, TLS Web Client Authentication" \
    "EndEntityCertificate: EKU serverAuth, clientAuth"
assert_eq "$(ext server extendedKeyUsage)" "TLS Web Server Authentication" \
    "EndEntityServerAuthCertificate: EKU serverAuth"
assert_eq "$(ext client extendedKeyUsage)" "TLS Web Client Authentication" \
    "EndEntityClientAuthCertificate: EKU clientAuth"
assert_eq "$(ext codesign extendedKeyUsage)" "Code Signing" "CodeSigningCertificate: EKU codeSigning"
assert_eq "$(ext sub extendedKeyUsage)" "" "SubordinateCACertificate_PathLen0: no EKU"
assert_eq "$(ext sub basicConstraints)" "CA:TRUE, pathlen:0" \
    "SubordinateCACertificate_PathLen0: CA:TRUE, pathlen:0"
assert_contains "$(openssl x509 -in "$W/sub.pem" -noout -ext basicConstraints)" "critical" \
    "SubordinateCACertificate_PathLen0: basicConstraints critical"
assert_eq "$(ext sub keyUsage)" "Digital Signature, Certificate Sign, CRL Sign" \
    "SubordinateCACertificate_PathLen0: keyUsage keyCertSign, cRLSign"
for c in ee server client codesign; do
    assert_eq "$(ext $c basicConstraints)" "CA:FALSE" "$c: basicConstraints CA:FALSE"
    assert_eq "$(ext $c keyUsage)" "Digital Signature" "$c: keyUsage digitalSignature (an EC key)"
    assert_eq "$(ext $c subjectAltName)" "DNS:app.internal, DNS:www.app.internal, IP Address:10.0.0.7" \
        "$c: subjectAltName from the CSR"
    assert_eq "$(openssl x509 -in "$W/$c.pem" -noout -subject)" "subject=CN = app.internal" \
        "$c: subject from the CSR"
done
assert_eq "$(ext client-rsa keyUsage)" "Digital Signature, Key Encipherment" \
    "an RSA subject key also gets keyEncipherment"
CA_SKI=$(ext ec-root subjectKeyIdentifier)
assert_match "$CA_SKI" '^([0-9A-F]{2}:){19}[0-9A-F]{2}$' "the CA's subjectKeyIdentifier"
for c in ee server client codesign sub; do
    ski=$(ext $c subjectKeyIdentifier)
    # RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey (for P-256, its last 65 bytes).
    want=$(openssl x509 -in "$W/$c.pem" -noout -pubkey | openssl pkey -pubin -outform DER |
        "$PY" -c 'import hashlib,sys; print(":".join("%02X" % b for b in hashlib.sha1(sys.stdin.buffer.read()[-65:]).digest()))')
    assert_eq "$ski" "$want" "$c: subjectKeyIdentifier is the SHA-1 of its public key"
    assert_match "$ski" '^([0-9A-F]{2}:){19}[0-9A-F]{2}$' "$c: a subjectKeyIdentifier"
    assert_contains "$(ext $c authorityKeyIdentifier)" "$CA_SKI" \
        "$c: authorityKeyIdentifier is the CA's subjectKeyIdentifier"
    serial=$(openssl x509 -in "$W/$c.pem" -noout -serial | sed 's/serial=//')
    octets=$(( (${#serial} + 1) / 2 ))
    if [ "$octets" -ge 1 ] && [ "$octets" -le 20 ] && [[ "$serial" =~ ^[0-7] ]]; then
        ok "$c: serial $serial is positive and $octets octets"
    else fail "$c: serial $serial is negative or longer than 20 octets"; fi
    assert_eq "$(tr A-F a-f <<<"$serial")" "$(sed 's|.*/certificate/||' "$W/$c.arn")" \
        "$c: the certificate ARN ends with its serial"
done
assert_ne "$(openssl x509 -in "$W/ee.pem" -noout -serial)" \
    "$(openssl x509 -in "$W/server.pem" -noout -serial)" "serials are random: two differ"
NB=$(date -d "$(openssl x509 -in "$W/server.pem" -noout -startdate | cut -d= -f2)" +%s)
NA=$(date -d "$(openssl x509 -in "$W/server.pem" -noout -enddate | cut -d= -f2)" +%s)
assert_eq "$((NA - NB))" "$((30 * 86400 + 3600))" \
    "Validity 30 DAYS from now, notBefore backdated one hour as AWS does"

# The subordinate CA certificate chains: a leaf signed by its key verifies with -untrusted.
# The subordinate CA certificate (key app.key) signs a leaf with openssl alone: the chain
# root -> sub -> leaf verifies; an end-entity certificate (CA:FALSE) cannot stand in for it.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/leaf.key" \
    -subj /CN=leaf -out "$W/leaf.csr" 2>/dev/null
openssl x509 -req -in "$W/leaf.csr" -CA "$W/sub.pem" -CAkey "$W/app.key" -set_serial 7 -days 1 \
    -out "$W/leaf.pem" 2>/dev/null
openssl x509 -req -in "$W/leaf.csr" -CA "$W/ee.pem" -CAkey "$W/app.key" -set_serial 8 -days 1 \
    -out "$W/leaf-ee.pem" 2>/dev/null
if openssl verify -CAfile "$W/ec-root.pem" -untrusted "$W/sub.pem" "$W/leaf.pem" >/dev/null 2>&1; then
    ok "openssl verify -CAfile root -untrusted sub leaf"
else fail "root -> sub -> leaf does not verify: $(openssl verify -CAfile "$W/ec-root.pem" -untrusted "$W/sub.pem" "$W/leaf.pem" 2>&1)"; fi
if openssl verify -CAfile "$W/ec-root.pem" -untrusted "$W/ee.pem" "$W/leaf-ee.pem" >/dev/null 2>&1; then
    fail "a leaf signed by an end-entity certificate verifies"
else ok "an end-entity certificate (CA:FALSE) signs no verifiable leaf"; fi

# ---- refusals ---------------------------------------------------------------------------------
"$PY" - "$W/app.csr" "$W/broken.csr" <<'PY'
import base64, sys
lines = open(sys.argv[1]).read().split("\n")
body = base64.b64decode("".join(l for l in lines if l and not l.startswith("-----")))
body = body[:-1] + bytes([body[-1] ^ 1])  # the last byte of the signature
b64 = base64.b64encode(body).decode()
open(sys.argv[2], "w").write("-----BEGIN CERTIFICATE REQUEST-----\n" +
    "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) + "\n-----END CERTIFICATE REQUEST-----\n")
PY
# (openssl 3.0's req -verify exits 0 either way: its words tell.)
assert_contains "$(openssl req -in "$W/broken.csr" -noout -verify 2>&1)" "verify failure" \
    "openssl refuses the broken CSR's signature too"
assert_contains "$(openssl req -in "$W/app.csr" -noout -verify 2>&1)" "verify OK" \
    "openssl verifies the unbroken CSR"
expect_error MalformedCSRException 254 kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
    --csr "fileb://$W/broken.csr" --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS
printf 'not a csr' >"$W/garbage.csr"
expect_error MalformedCSRException 254 kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
    --csr "fileb://$W/garbage.csr" --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" \
    -subj /CN=wants-ca -addext basicConstraints=critical,CA:TRUE -out "$W/ca-true.csr" 2>/dev/null
expect_error InvalidArgsException 254 kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
    --csr "fileb://$W/ca-true.csr" --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS \
    --template-arn "$TPL/EndEntityCertificate/V1"
# A validity beyond the CA's (10 years) is refused, as AWS refuses it.
expect_error ValidationException 254 kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA256WITHECDSA --validity Value=11,Type=YEARS \
    --template-arn "$TPL/EndEntityClientAuthCertificate/V1"
assert_contains "$ERR_MSG" "exceeds the certificate authority validity" "the refusal says why"
expect_error ValidationException 254 kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA256WITHECDSA --validity Value=367,Type=DAYS \
    --template-arn "$TPL/EndEntityServerAuthCertificate/V1"
expect_error InvalidArgsException 254 kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS \
    --template-arn "$TPL/NoSuchTemplate/V1"
expect_error InvalidArgsException 254 kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA256WITHRSA --validity Value=30,Type=DAYS
expect_error InvalidArnException 254 kms acm-pca describe-certificate-authority \
    --certificate-authority-arn "arn:aws:kms:us-east-1:$ACCOUNT:key/$EC_ID"
expect_error ResourceNotFoundException 254 kms acm-pca describe-certificate-authority \
    --certificate-authority-arn "arn:aws:acm-pca:us-east-1:$ACCOUNT:certificate-authority/00000000-0000-4000-8000-000000000000"
expect_error ResourceNotFoundException 254 kms acm-pca get-certificate --certificate-authority-arn "$EC" \
    --certificate-arn "$EC/certificate/7f"
printf '{"KeyAlgorithm":"EC_secp256k1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"x"}}' >"$W/k1.json"
expect_error InvalidArgsException 254 kms acm-pca create-certificate-authority \
    --certificate-authority-type ROOT --certificate-authority-configuration "file://$W/k1.json"
expect_usage_error "argument --validity" kms acm-pca issue-certificate --certificate-authority-arn "$EC" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA256WITHECDSA --validity Value=ten,Type=DAYS
N=$(kms acm-pca list-certificate-authorities | ca_count)
assert_eq "$N" 4 "refused CreateCertificateAuthority calls left no CA"

# ---- UpdateCertificateAuthority: a DISABLED CA issues nothing ------------------------------------
kms acm-pca update-certificate-authority --certificate-authority-arn "$RSA" --status DISABLED
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$RSA" \
    --query CertificateAuthority.Status --output text)" DISABLED "UpdateCertificateAuthority disables"
expect_error InvalidStateException 254 kms acm-pca issue-certificate --certificate-authority-arn "$RSA" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA256WITHRSA --validity Value=30,Type=DAYS
expect_error InvalidArgsException 254 kms acm-pca update-certificate-authority \
    --certificate-authority-arn "$RSA" --status PAUSED
kms acm-pca update-certificate-authority --certificate-authority-arn "$RSA" --status ACTIVE
kms acm-pca issue-certificate --certificate-authority-arn "$RSA" --csr "fileb://$W/app.csr" \
    --signing-algorithm SHA256WITHRSA --validity Value=30,Type=DAYS >/dev/null &&
    ok "enabled again, it issues" || fail "the re-enabled CA does not issue"

# ---- DeleteCertificateAuthority and RestoreCertificateAuthority --------------------------------
DOOMED=$(new_ca EC_prime256v1 SHA256WITHECDSA doomed)
expect_error InvalidStateException 254 kms acm-pca delete-certificate-authority \
    --certificate-authority-arn "$DOOMED"
assert_contains "$ERR_MSG" "disable it first" "an ACTIVE CA is disabled before it is deleted"
kms acm-pca update-certificate-authority --certificate-authority-arn "$DOOMED" --status DISABLED
expect_error ValidationException 254 kms acm-pca delete-certificate-authority \
    --certificate-authority-arn "$DOOMED" --permanent-deletion-time-in-days 6
BEFORE=$(date +%s)
kms acm-pca delete-certificate-authority --certificate-authority-arn "$DOOMED" \
    --permanent-deletion-time-in-days 7
OUT=$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$DOOMED")
assert_eq "$(json_get CertificateAuthority.Status <<<"$OUT")" DELETED "DeleteCertificateAuthority: DELETED"
UNTIL=$(epoch "$(json_get CertificateAuthority.RestorableUntil <<<"$OUT")")
if [ "$UNTIL" -ge $((BEFORE + 7 * 86400)) ] && [ "$UNTIL" -le $(($(date +%s) + 7 * 86400)) ]; then
    ok "RestorableUntil is 7 days away"
else fail "RestorableUntil $UNTIL is not 7 days after $BEFORE"; fi
expect_error InvalidStateException 254 kms acm-pca issue-certificate --certificate-authority-arn "$DOOMED" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS
expect_error InvalidStateException 254 kms acm-pca delete-certificate-authority \
    --certificate-authority-arn "$DOOMED"
kms acm-pca restore-certificate-authority --certificate-authority-arn "$DOOMED"
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$DOOMED" \
    --query CertificateAuthority.Status --output text)" DISABLED "RestoreCertificateAuthority: DISABLED"
expect_error InvalidStateException 254 kms acm-pca restore-certificate-authority \
    --certificate-authority-arn "$DOOMED"
PENDING=$(kms acm-pca create-certificate-authority --certificate-authority-type SUBORDINATE \
    --certificate-authority-configuration "file://$W/doomed.json" --query CertificateAuthorityArn --output text)
kms acm-pca delete-certificate-authority --certificate-authority-arn "$PENDING"
kms acm-pca restore-certificate-authority --certificate-authority-arn "$PENDING"
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$PENDING" \
    --query CertificateAuthority.Status --output text)" PENDING_CERTIFICATE \
    "a CA deleted before its certificate is restored waiting for it"

# ---- revocation and the CRL ---------------------------------------------------------------------
SERIAL=$(openssl x509 -in "$W/client.pem" -noout -serial | cut -d= -f2)
kms acm-pca revoke-certificate --certificate-authority-arn "$EC" --certificate-serial "$SERIAL" \
    --revocation-reason KEY_COMPROMISE
CRL="$HOME_DIR/crl/$EC_ID.crl"
[ -f "$CRL" ] && ok "a revocation writes the CA's CRL under the home" || fail "no $CRL"
out=$(openssl crl -inform DER -in "$CRL" -CAfile "$W/ec-root.pem" -noout -verify 2>&1)
assert_contains "$out" "verify OK" "openssl crl -verify: the CRL is signed by the CA's key"
text=$(openssl crl -inform DER -in "$CRL" -noout -text)
assert_contains "$text" "Serial Number: $SERIAL" "the CRL lists the revoked serial"
assert_contains "$text" "Key Compromise" "with its reason"
assert_match "$text" "CRL Number: "$'\n'" +1" "CRL number 1"
assert_contains "$(openssl crl -inform DER -in "$CRL" -noout -ext authorityKeyIdentifier 2>/dev/null ||
    sed -n '/Authority Key Identifier/,+1p' <<<"$text")" "$CA_SKI" "the CRL names the CA's key identifier"
openssl crl -inform DER -in "$CRL" -out "$W/crl.pem"
if openssl verify -crl_check -CRLfile "$W/crl.pem" -CAfile "$W/ec-root.pem" "$W/client.pem" >/dev/null 2>&1; then
    fail "openssl verify -crl_check accepts the revoked certificate"
else ok "openssl verify -crl_check refuses the revoked certificate"; fi
assert_contains "$(openssl verify -crl_check -CRLfile "$W/crl.pem" -CAfile "$W/ec-root.pem" "$W/client.pem" 2>&1 || true)" \
    "certificate revoked" "because it is revoked"
openssl verify -crl_check -CRLfile "$W/crl.pem" -CAfile "$W/ec-root.pem" "$W/server.pem" >/dev/null 2>&1 &&
    ok "openssl verify -crl_check accepts a certificate that is not revoked" ||
    fail "a certificate that is not revoked fails -crl_check"
expect_error RequestAlreadyProcessedException 254 kms acm-pca revoke-certificate \
    --certificate-authority-arn "$EC" --certificate-serial "$SERIAL" --revocation-reason SUPERSEDED
expect_error ResourceNotFoundException 254 kms acm-pca revoke-certificate \
    --certificate-authority-arn "$P384" --certificate-serial "$SERIAL" --revocation-reason SUPERSEDED
expect_error InvalidArgsException 254 kms acm-pca revoke-certificate \
    --certificate-authority-arn "$EC" --certificate-serial "$SERIAL" --revocation-reason BORED
SERIAL2=$(openssl x509 -in "$W/ee.pem" -noout -serial | cut -d= -f2)
kms acm-pca revoke-certificate --certificate-authority-arn "$EC" --certificate-serial "$SERIAL2" \
    --revocation-reason SUPERSEDED
text=$(openssl crl -inform DER -in "$CRL" -noout -text)
# (the refused second revocation of $SERIAL republished it too: a revocation whose CRL failed to
# publish reaches the CRL on its retry)
assert_match "$text" "CRL Number: "$'\n'" +3" "each revocation reissues the CRL with the next number"
assert_contains "$text" "Serial Number: $SERIAL2" "the new CRL lists the new revocation"
assert_contains "$text" "Serial Number: $SERIAL" "and the old one"

# ---- a CA that publishes CRLs: first CRL at creation, CRL distribution point, expiration -------
printf '{"CrlConfiguration":{"Enabled":true,"ExpirationInDays":3,"CustomCname":"crl.example.internal"}}' >"$W/rev.json"
CRLCA=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$W/ec-root.json" \
    --revocation-configuration "file://$W/rev.json" --query CertificateAuthorityArn --output text)
CRLCA_ID=${CRLCA##*/}
kms acm-pca get-certificate-authority-certificate --certificate-authority-arn "$CRLCA" \
    --query Certificate --output text >"$W/crlca.pem"
[ -f "$HOME_DIR/crl/$CRLCA_ID.crl" ] && ok "a CA with CRLs enabled publishes its first CRL at creation" ||
    fail "no first CRL for $CRLCA_ID"
assert_contains "$(openssl crl -inform DER -in "$HOME_DIR/crl/$CRLCA_ID.crl" -CAfile "$W/crlca.pem" -noout -verify 2>&1)" \
    "verify OK" "openssl crl -verify: the first CRL"
assert_contains "$(openssl crl -inform DER -in "$HOME_DIR/crl/$CRLCA_ID.crl" -noout -text)" \
    "No Revoked Certificates" "the first CRL lists nothing"
LU=$(date -d "$(openssl crl -inform DER -in "$HOME_DIR/crl/$CRLCA_ID.crl" -noout -lastupdate | cut -d= -f2)" +%s)
NU=$(date -d "$(openssl crl -inform DER -in "$HOME_DIR/crl/$CRLCA_ID.crl" -noout -nextupdate | cut -d= -f2)" +%s)
assert_eq "$((NU - LU))" "$((3 * 86400))" "nextUpdate is ExpirationInDays after thisUpdate"
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$CRLCA" \
    --query CertificateAuthority.RevocationConfiguration.CrlConfiguration.CustomCname --output text)" \
    crl.example.internal "DescribeCertificateAuthority shows the RevocationConfiguration"
issue "$CRLCA" "$W/crlca.pem" EndEntityServerAuthCertificate SHA256WITHECDSA with-cdp
assert_eq "$(ext with-cdp crlDistributionPoints | grep URI | sed 's/^ *//')" \
    "URI:http://crl.example.internal/crl/$CRLCA_ID.crl" "issued certificates name the CRL distribution point"
printf '{"CrlConfiguration":{"Enabled":true,"CustomCname":"crl.example.internal","CrlDistributionPointExtensionConfiguration":{"OmitExtension":true}}}' >"$W/rev-omit.json"
kms acm-pca update-certificate-authority --certificate-authority-arn "$CRLCA" \
    --revocation-configuration "file://$W/rev-omit.json"
issue "$CRLCA" "$W/crlca.pem" EndEntityServerAuthCertificate SHA256WITHECDSA without-cdp
assert_eq "$(ext without-cdp crlDistributionPoints)" "" "OmitExtension leaves the extension out"
# The same in the aws CLI's shorthand: true and a number become JSON's, nested braces structures.
kms acm-pca update-certificate-authority --certificate-authority-arn "$CRLCA" --revocation-configuration \
    'CrlConfiguration={Enabled=true,ExpirationInDays=5,CustomCname=crl.example.internal,CrlDistributionPointExtensionConfiguration={OmitExtension=true}}'
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$CRLCA" \
    --query CertificateAuthority.RevocationConfiguration.CrlConfiguration.ExpirationInDays)" 5 \
    "--revocation-configuration in shorthand: ExpirationInDays=5 is the number 5"
assert_eq "$(ext ee crlDistributionPoints)" "" "a CA without CRLs names no distribution point"
printf '{"CrlConfiguration":{"Enabled":true,"S3BucketName":"my-bucket"}}' >"$W/rev-s3.json"
expect_error InvalidArgsException 254 kms acm-pca update-certificate-authority \
    --certificate-authority-arn "$CRLCA" --revocation-configuration "file://$W/rev-s3.json"
expect_error InvalidArgsException 254 kms acm-pca create-certificate-authority \
    --certificate-authority-type ROOT --certificate-authority-configuration "file://$W/ec-root.json" \
    --revocation-configuration '{"OcspConfiguration":{"Enabled":true,"OcspCustomCname":"https://ocsp.example"}}'

# ---- SUBORDINATE CAs: signed by a CA of this home, or by an outside root ------------------------
printf '{"KeyAlgorithm":"EC_secp384r1","SigningAlgorithm":"SHA384WITHECDSA","Subject":{"CommonName":"Issuing CA","Organization":"Example"}}' >"$W/sub-ca.json"
# new_sub: a SUBORDINATE CA's ARN; its CSR lands in $W/NAME.csr
new_sub() {
    local arn
    arn=$(kms acm-pca create-certificate-authority --certificate-authority-type SUBORDINATE \
        --certificate-authority-configuration "file://$W/sub-ca.json" \
        --query CertificateAuthorityArn --output text)
    kms acm-pca get-certificate-authority-csr --certificate-authority-arn "$arn" --query Csr \
        --output text >"$W/$1.csr"
    echo "$arn"
}
SUB=$(new_sub sub-ca)
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$SUB" \
    --query CertificateAuthority.Status --output text)" PENDING_CERTIFICATE \
    "a SUBORDINATE CA waits for its certificate"
assert_contains "$(openssl req -in "$W/sub-ca.csr" -noout -verify 2>&1)" "verify OK" \
    "openssl verifies the subordinate CA's CSR (signed in the HSM)"
assert_eq "$(openssl req -in "$W/sub-ca.csr" -noout -subject)" "subject=O = Example, CN = Issuing CA" \
    "the CSR carries the configured subject"
expect_error InvalidStateException 254 kms acm-pca issue-certificate --certificate-authority-arn "$SUB" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA384WITHECDSA --validity Value=30,Type=DAYS
SUB_CERT=$(kms acm-pca issue-certificate --certificate-authority-arn "$EC" --csr "fileb://$W/sub-ca.csr" \
    --signing-algorithm SHA256WITHECDSA --validity Value=5,Type=YEARS \
    --template-arn "$TPL/SubordinateCACertificate_PathLen0/V1" --query CertificateArn --output text)
kms acm-pca get-certificate --certificate-authority-arn "$EC" --certificate-arn "$SUB_CERT" \
    --query Certificate --output text >"$W/sub-ca.pem"
expect_error InvalidRequestException 254 kms acm-pca import-certificate-authority-certificate \
    --certificate-authority-arn "$SUB" --certificate "fileb://$W/sub-ca.pem" \
    --certificate-chain "fileb://$W/rsa-root.pem"
expect_error CertificateMismatchException 254 kms acm-pca import-certificate-authority-certificate \
    --certificate-authority-arn "$SUB" --certificate "fileb://$W/server.pem" \
    --certificate-chain "fileb://$W/ec-root.pem"
kms acm-pca import-certificate-authority-certificate --certificate-authority-arn "$SUB" \
    --certificate "fileb://$W/sub-ca.pem" --certificate-chain "fileb://$W/ec-root.pem"
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$SUB" \
    --query CertificateAuthority.Status --output text)" ACTIVE "the imported certificate makes it ACTIVE"
LEAF=$(kms acm-pca issue-certificate --certificate-authority-arn "$SUB" --csr "fileb://$W/app.csr" \
    --signing-algorithm SHA384WITHECDSA --validity Value=30,Type=DAYS \
    --template-arn "$TPL/EndEntityServerAuthCertificate/V1" --query CertificateArn --output text)
kms acm-pca get-certificate --certificate-authority-arn "$SUB" --certificate-arn "$LEAF" \
    --query Certificate --output text >"$W/via-sub.pem"
kms acm-pca get-certificate --certificate-authority-arn "$SUB" --certificate-arn "$LEAF" \
    --query CertificateChain --output text >"$W/via-sub.chain.pem"
if openssl verify -CAfile "$W/ec-root.pem" -untrusted "$W/sub-ca.pem" "$W/via-sub.pem" >/dev/null 2>&1; then
    ok "openssl verify -CAfile root.pem -untrusted sub.pem leaf.pem"
else fail "root -> subordinate CA -> leaf does not verify"; fi
# (--output text adds a newline after each PEM's own: blank lines are left out of the comparison)
assert_eq "$(grep -v '^$' "$W/via-sub.chain.pem")" "$(cat "$W/sub-ca.pem" "$W/ec-root.pem" | grep -v '^$')" \
    "GetCertificate's chain: the subordinate CA, then the root"
assert_eq "$(openssl x509 -in "$W/via-sub.pem" -noout -issuer)" "issuer=O = Example, CN = Issuing CA" \
    "the leaf is issued by the subordinate CA"
# Its own certificate says pathlen:0: it issues no CA certificate (RFC 5280 4.2.1.9).
expect_error InvalidArgsException 254 kms acm-pca issue-certificate --certificate-authority-arn "$SUB" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA384WITHECDSA --validity Value=30,Type=DAYS \
    --template-arn "$TPL/SubordinateCACertificate_PathLen0/V1"
assert_contains "$ERR_MSG" "pathlen:0" "a pathlen:0 subordinate CA refuses to issue a CA certificate"

# An outside root (openssl alone) signs the second subordinate CA's CSR.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/outside.key" \
    -subj "/CN=Outside Root" -days 3650 -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -out "$W/outside.pem" 2>/dev/null
SUB2=$(new_sub sub2)
# Not a CA certificate to install: basicConstraints not critical; no subjectKeyIdentifier (its
# CRLs and the certificates it issues name it by that).
printf 'basicConstraints=CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n' >"$W/noncrit.ext"
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n' >"$W/noski.ext"
for bad in noncrit:InvalidRequestException noski:MalformedCertificateException; do
    error=${bad#*:}
    bad=${bad%%:*}
    openssl x509 -req -in "$W/sub2.csr" -CA "$W/outside.pem" -CAkey "$W/outside.key" -set_serial 4243 \
        -days 365 -extfile "$W/$bad.ext" -out "$W/sub2-$bad.pem" 2>/dev/null
    expect_error "$error" 254 kms acm-pca import-certificate-authority-certificate \
        --certificate-authority-arn "$SUB2" --certificate "fileb://$W/sub2-$bad.pem" \
        --certificate-chain "fileb://$W/outside.pem"
done
assert_eq "$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$SUB2" \
    --query CertificateAuthority.Status --output text)" PENDING_CERTIFICATE \
    "a refused import leaves the CA waiting for its certificate"
openssl x509 -req -in "$W/sub2.csr" -CA "$W/outside.pem" -CAkey "$W/outside.key" -set_serial 4242 \
    -days 365 -copy_extensions copyall -out "$W/sub2.pem" 2>/dev/null
kms acm-pca import-certificate-authority-certificate --certificate-authority-arn "$SUB2" \
    --certificate "fileb://$W/sub2.pem" --certificate-chain "fileb://$W/outside.pem"
ok "a certificate from an outside root is imported"
LEAF=$(kms acm-pca issue-certificate --certificate-authority-arn "$SUB2" --csr "fileb://$W/app.csr" \
    --signing-algorithm SHA384WITHECDSA --validity Value=30,Type=DAYS --query CertificateArn --output text)
kms acm-pca get-certificate --certificate-authority-arn "$SUB2" --certificate-arn "$LEAF" \
    --query Certificate --output text >"$W/outside-leaf.pem"
if openssl verify -CAfile "$W/outside.pem" -untrusted "$W/sub2.pem" "$W/outside-leaf.pem" >/dev/null 2>&1; then
    ok "a leaf of the outside-rooted subordinate CA verifies up to the outside root"
else fail "outside root -> sub2 -> leaf does not verify"; fi
expect_error ValidationException 254 kms acm-pca issue-certificate --certificate-authority-arn "$SUB2" \
    --csr "fileb://$W/app.csr" --signing-algorithm SHA384WITHECDSA --validity Value=2,Type=YEARS \
    --template-arn "$TPL/EndEntityClientAuthCertificate/V1"

# ---- policies ----------------------------------------------------------------------------------
kms create-user --user-name issuer >/dev/null
kms put-user-policy --user-name issuer --policy-name pca --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"acm-pca:*\",\"Resource\":\"*\"},{\"Effect\":\"Deny\",\"Action\":\"acm-pca:IssueCertificate\",\"Resource\":\"$EC\"}]}"
OUT=$(kms create-access-key --user-name issuer)
as_issuer() {
    KMS_ACCESS_KEY_ID=$(json_get AccessKey.AccessKeyId <<<"$OUT") \
        KMS_SECRET_ACCESS_KEY=$(json_get AccessKey.SecretAccessKey <<<"$OUT") \
        "$KMSCTL" --home "$HOME_DIR" "$@"
}
expect_error AccessDeniedException 254 as_issuer acm-pca issue-certificate \
    --certificate-authority-arn "$EC" --csr "fileb://$W/app.csr" \
    --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS
assert_contains "$ERR_MSG" "acm-pca:IssueCertificate" "the denial names the action"
as_issuer acm-pca issue-certificate --certificate-authority-arn "$P384" --csr "fileb://$W/app.csr" \
    --signing-algorithm SHA384WITHECDSA --validity Value=30,Type=DAYS >/dev/null &&
    ok "the same user issues from a CA its policy does not deny" ||
    fail "the user cannot issue from the P-384 CA"
as_issuer acm-pca describe-certificate-authority --certificate-authority-arn "$EC" >/dev/null &&
    ok "the deny is for IssueCertificate only" || fail "describe denied"
kms create-user --user-name nobody >/dev/null
OUT=$(kms create-access-key --user-name nobody)
expect_error AccessDeniedException 254 as_issuer acm-pca create-certificate-authority \
    --certificate-authority-type ROOT --certificate-authority-configuration "file://$W/ec-root.json"

# ---- audit -------------------------------------------------------------------------------------
# every acm-pca record, page by page
EV=$("$PY" - "$KMSCTL" "$HOME_DIR" <<'PY'
import json, subprocess, sys
events, token = [], None
while True:
    cmd = [sys.argv[1], "--home", sys.argv[2], "lookup-events", "--lookup-attributes",
           "AttributeKey=EventSource,AttributeValue=acm-pca.amazonaws.com", "--max-results", "50",
           "--no-paginate"]
    if token:
        cmd += ["--next-token", token]
    page = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
    events += page["Events"]
    token = page.get("NextToken")
    if not token:
        break
print(json.dumps({"Events": events}))
PY
)
names=$("$PY" -c 'import json,sys; print(" ".join(sorted({e["EventName"] for e in json.load(sys.stdin)["Events"]})))' <<<"$EV")
assert_eq "$names" "CreateCertificateAuthority DeleteCertificateAuthority DescribeCertificateAuthority GetCertificate GetCertificateAuthorityCertificate GetCertificateAuthorityCsr ImportCertificateAuthorityCertificate IssueCertificate ListCertificateAuthorities RestoreCertificateAuthority RevokeCertificate UpdateCertificateAuthority" \
    "every acm-pca operation is recorded with eventSource acm-pca.amazonaws.com"
DENIED=$("$PY" -c '
import json, sys
for e in json.load(sys.stdin)["Events"]:
    r = json.loads(e["CloudTrailEvent"])
    if r["eventName"] == "IssueCertificate" and r.get("errorCode") == "AccessDeniedException":
        print(r["eventSource"], r["userIdentity"]["userName"]); break
' <<<"$EV")
assert_eq "$DENIED" "acm-pca.amazonaws.com issuer" "the denied IssueCertificate is recorded"
RES=$("$PY" -c '
import json, sys
for e in json.load(sys.stdin)["Events"]:
    r = json.loads(e["CloudTrailEvent"])
    if r["eventName"] == "IssueCertificate":
        print(r["resources"][0]["type"], r["resources"][0]["ARN"].split(":")[2]); break
' <<<"$EV")
assert_eq "$RES" "AWS::ACMPCA::CertificateAuthority acm-pca" "an IssueCertificate record names its CA as its resource"
N=$("$PY" -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin)["Events"] if e["EventName"] == "IssueCertificate"))' <<<"$EV")
[ "$N" -ge 13 ] && ok "each IssueCertificate call leaves a record ($N)" || fail "only $N IssueCertificate records"

# ---- the command line --------------------------------------------------------------------------
assert_contains "$(kms acm-pca issue-certificate --help)" "kmsctl acm-pca issue-certificate --certificate-authority-arn" \
    "acm-pca issue-certificate --help shows an example"
assert_contains "$(kms help acm-pca get-certificate)" "acm-pca:GetCertificate" \
    "kmsctl help acm-pca get-certificate"
assert_contains "$("$KMSCTL" --help)" "Private certificate authorities (aws acm-pca)" \
    "kmsctl --help lists the acm-pca commands"
expect_usage_error "unknown command 'acm-pca'" kms acm-pca

# ---- concurrent revocations: every published CRL lists every revocation made before it ---------
# (publication is serialised per CA under HOME/crl/CA_ID.lock; before, an older CRL could replace
# a newer one, dropping a revocation)
printf '{"CrlConfiguration":{"Enabled":true,"ExpirationInDays":7}}' >"$W/rev-race.json"
RACE=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$W/ec-root.json" \
    --revocation-configuration "file://$W/rev-race.json" --query CertificateAuthorityArn --output text)
RACE_CRL="$HOME_DIR/crl/${RACE##*/}.crl"
ROUNDS=${PKI_CRL_RACE_ROUNDS:-12}
serials=()
for i in $(seq $((2 * ROUNDS))); do
    arn=$(kms acm-pca issue-certificate --certificate-authority-arn "$RACE" --csr "fileb://$W/app.csr" \
        --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS --query CertificateArn --output text)
    serials+=("${arn##*/}")
done
race_revoke() { kms acm-pca revoke-certificate --certificate-authority-arn "$RACE" --certificate-serial "$1" \
    --revocation-reason KEY_COMPROMISE; }
lost=0
for r in $(seq 0 $((ROUNDS - 1))); do
    race_revoke "${serials[$((2 * r))]}" &
    p1=$!
    race_revoke "${serials[$((2 * r + 1))]}" &
    p2=$!
    wait $p1
    wait $p2
    n=$(openssl crl -inform DER -in "$RACE_CRL" -noout -text | grep -c 'Serial Number:' || true)
    [ "$n" -ne $((2 * r + 2)) ] && lost=$((lost + 1))
done
assert_eq "$lost" 0 "two revocations at once, $ROUNDS times: every CRL lists every revocation before it"
assert_eq "$(openssl crl -inform DER -in "$RACE_CRL" -noout -crlnumber | cut -d= -f2)" \
    "0x$(printf '%X' $((2 * ROUNDS + 1)))" "one CRL number per publication, the highest one published"
