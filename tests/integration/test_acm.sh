#!/usr/bin/env bash
# Managed certificates (kmsctl acm) checked by outside tools: openssl verifies every chain and
# opens exported keys with the passphrase only; pkcs11-tool shows HSM-held keys sensitive and
# never extractable; the scheduler renews under libfaketime on the right day (not the day
# before) with a new key, a new serial and the same ARN, recorded as an AwsServiceEvent; expiry
# warnings; refusals write nothing.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v pkcs11-tool >/dev/null || { fail "pkcs11-tool (opensc) is not installed"; exit 1; }
faketime_required
# at OFFSET ARGS...: kmsctl on the home with the clock moved by OFFSET ("+305d").
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
n_certs() { kms acm list-certificates | count CertificateSummaryList; }

printf '{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"ACM Test Root","Organization":"Example"}}' >"$W/ca.json"
CA=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$W/ca.json" --query CertificateAuthorityArn --output text)
kms acm-pca get-certificate-authority-certificate --certificate-authority-arn "$CA" \
    --query Certificate --output text >"$W/root.pem"

# ---- request, HSM-held key ---------------------------------------------------------------------
HSM=$(kms acm request-certificate --domain-name app.internal \
    --subject-alternative-names api.app.internal --key-algorithm EC_prime256v1 \
    --certificate-authority-arn "$CA" --query CertificateArn --output text)
assert_match "$HSM" "^arn:aws:acm:us-east-1:$ACCOUNT:certificate/[0-9a-f-]{36}\$" \
    "RequestCertificate answers the certificate's ARN"
HSM_ID=${HSM##*/}
D=$(kms acm describe-certificate --certificate-arn "$HSM")
assert_eq "$(json_get Certificate.Status <<<"$D")" ISSUED "DescribeCertificate: Status ISSUED"
assert_eq "$(json_get Certificate.Type <<<"$D")" PRIVATE "Type PRIVATE"
assert_eq "$(json_get Certificate.DomainName <<<"$D")" app.internal "DomainName"
assert_eq "$(json_get Certificate.SubjectAlternativeNames <<<"$D")" \
    '["app.internal","api.app.internal"]' "SubjectAlternativeNames, DomainName first"
assert_eq "$(json_get Certificate.KeyAlgorithm <<<"$D")" EC_prime256v1 "KeyAlgorithm"
assert_eq "$(json_get Certificate.RenewalEligibility <<<"$D")" ELIGIBLE "RenewalEligibility"
assert_eq "$(json_get Certificate.InUseBy <<<"$D")" '[]' "InUseBy empty"
assert_eq "$(json_get Certificate.CertificateAuthorityArn <<<"$D")" "$CA" "CertificateAuthorityArn"
assert_eq "$(json_get Certificate.Options.Export <<<"$D")" DISABLED "an HSM-held key: Export DISABLED"
assert_eq "$(json_get Certificate.RenewalSummary <<<"$D")" '<missing>' "no RenewalSummary before a renewal"
assert_eq "$(json_get Certificate.Subject <<<"$D")" "CN=app.internal" "Subject"
assert_eq "$(json_get Certificate.Issuer <<<"$D")" "CN=ACM Test Root,O=Example" "Issuer"
assert_eq "$(json_get Certificate.SignatureAlgorithm <<<"$D")" SHA256WITHECDSA "SignatureAlgorithm"
assert_eq "$(json_get Certificate.KeyUsages <<<"$D")" '[{"Name":"DIGITAL_SIGNATURE"}]' "KeyUsages"
assert_eq "$(json_get Certificate.ExtendedKeyUsages <<<"$D")" \
    '[{"Name":"TLS_WEB_SERVER_AUTHENTICATION","OID":"1.3.6.1.5.5.7.3.1"},{"Name":"TLS_WEB_CLIENT_AUTHENTICATION","OID":"1.3.6.1.5.5.7.3.2"}]' \
    "ExtendedKeyUsages"
kms acm get-certificate --certificate-arn "$HSM" --query Certificate --output text >"$W/hsm.pem"
kms acm get-certificate --certificate-arn "$HSM" --query CertificateChain --output text >"$W/hsm-chain.pem"
assert_eq "$(openssl verify -CAfile "$W/root.pem" -untrusted "$W/hsm-chain.pem" "$W/hsm.pem" 2>&1)" \
    "$W/hsm.pem: OK" "openssl verify -CAfile root.pem: the chain holds"
SERIAL=$(openssl x509 -in "$W/hsm.pem" -noout -serial | sed 's/serial=//' | tr A-F a-f | sed 's/../&:/g; s/:$//')
assert_eq "$(json_get Certificate.Serial <<<"$D")" "$SERIAL" "Serial as openssl reads it"
NA=$(epoch "$(json_get Certificate.NotAfter <<<"$D")")
assert_eq "$(date -u -d "@$NA" '+%b %e %H:%M:%S %Y GMT' | sed 's/  / /')" \
    "$(openssl x509 -in "$W/hsm.pem" -noout -enddate | sed 's/notAfter=//; s/  / /')" "NotAfter as openssl reads it"
TEXT=$(openssl x509 -in "$W/hsm.pem" -noout -text)
assert_contains "$TEXT" "DNS:app.internal, DNS:api.app.internal" "the names in subjectAltName"
assert_contains "$TEXT" "TLS Web Server Authentication, TLS Web Client Authentication" \
    "extKeyUsage serverAuth and clientAuth"

export SOFTHSM2_CONF="$HOME_DIR/hsm/softhsm2.conf"
PIN=$(head -n1 "$HOME_DIR/pin")
p11_list() {
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label kms --login --pin "$PIN" --list-objects \
        2>/dev/null
}
# acm_keys PREFIX: "LABEL|ACCESS" of each private key whose label starts with PREFIX
acm_keys() {
    p11_list | "$PY" -c '
import sys
objs, cur = [], None
for line in sys.stdin:
    line = line.rstrip("\n")
    if line and not line[0].isspace():
        cur = {"header": line, "label": "", "access": ""}
        objs.append(cur)
    elif cur is not None and ":" in line:
        k, _, v = line.strip().partition(":")
        if k.strip().lower() in ("label", "access"):
            cur[k.strip().lower()] = v.strip()
for o in objs:
    if o["header"].startswith("Private Key Object") and o["label"].startswith(sys.argv[1]):
        print(o["label"] + "|" + o["access"])
' "$1"
}
KEYS=$(acm_keys "acm:$HSM_ID.")
assert_eq "$(wc -l <<<"$KEYS")" 1 "one HSM private key for the certificate"
ACCESS=${KEYS#*|}
for flag in "sensitive" "always sensitive" "never extractable"; do
    assert_contains "$ACCESS" "$flag" "the certificate's HSM key is '$flag'"
done
assert_not_contains "$(sed 's/never extractable//' <<<"$ACCESS")" "extractable" \
    "the certificate's HSM key is not extractable"
printf 'correct horse battery' >"$W/pass"
expect_error ValidationException 254 kms acm export-certificate --certificate-arn "$HSM" \
    --passphrase "fileb://$W/pass"
assert_contains "$ERR_MSG" "HSM" "an HSM-held key is never exported"

# ---- request, exportable key, and its export ---------------------------------------------------
EXP=$(kms acm request-certificate --domain-name exp.internal --key-algorithm RSA_2048 \
    --options Export=ENABLED --certificate-authority-arn "$CA" --query CertificateArn --output text)
assert_eq "$(kms acm describe-certificate --certificate-arn "$EXP" --query Certificate.Options.Export --output text)" \
    ENABLED "Export=ENABLED: Options.Export ENABLED"
assert_eq "$(acm_keys "acm:${EXP##*/}")" "" "an exportable key is not in the HSM"
kms acm export-certificate --certificate-arn "$EXP" --passphrase "fileb://$W/pass" >"$W/export.json"
json_get PrivateKey <"$W/export.json" >"$W/exp.key"
json_get Certificate <"$W/export.json" >"$W/exp.pem"
json_get CertificateChain <"$W/export.json" >"$W/exp-chain.pem"
assert_eq "$(head -n1 "$W/exp.key")" "-----BEGIN ENCRYPTED PRIVATE KEY-----" \
    "ExportCertificate: encrypted PKCS#8 PEM"
openssl pkey -in "$W/exp.key" -passin "file:$W/pass" -pubout -out "$W/exp-key.pub" 2>/dev/null &&
    ok "openssl pkey -passin opens the exported key" || fail "the exported key does not open"
openssl x509 -in "$W/exp.pem" -noout -pubkey >"$W/exp-cert.pub"
assert_files_equal "$W/exp-key.pub" "$W/exp-cert.pub" "the exported key is the certificate's"
printf 'wrong horse' >"$W/wrong"
openssl pkey -in "$W/exp.key" -passin "file:$W/wrong" -noout 2>/dev/null &&
    fail "a wrong passphrase opens the key" || ok "a wrong passphrase does not open the key"
openssl pkey -in "$W/exp.key" -passin pass: -noout </dev/null 2>/dev/null &&
    fail "no passphrase opens the key" || ok "no passphrase does not open the key"
assert_eq "$(openssl verify -CAfile "$W/root.pem" -untrusted "$W/exp-chain.pem" "$W/exp.pem" 2>&1)" \
    "$W/exp.pem: OK" "the exported certificate verifies with its chain"
expect_usage_error "passphrase" kms acm export-certificate --certificate-arn "$EXP"
printf 'abc' >"$W/short"
expect_error ValidationException 254 kms acm export-certificate --certificate-arn "$EXP" \
    --passphrase "fileb://$W/short"
# Neither the key nor the passphrase reaches the audit trail.
if grep -rqs -e "ENCRYPTED PRIVATE KEY" -e "$(base64 <"$W/pass")" "$HOME_DIR/audit"; then
    fail "the audit trail holds the exported key or the passphrase"
else
    ok "the audit trail holds neither the exported key nor the passphrase"
fi
EV=$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=ExportCertificate \
    --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p)
assert_eq "$(json_get eventSource <<<"$EV")" acm.amazonaws.com "ExportCertificate is audited from acm.amazonaws.com"
assert_eq "$(json_get 'resources[0].type' <<<"$EV")" "AWS::CertificateManager::Certificate" \
    "the record names the certificate"

# ---- bad input: ACM's exceptions, nothing written ----------------------------------------------
N0=$(n_certs)
K0=$(acm_keys "acm:" | wc -l)
expect_error ValidationException 254 kms acm request-certificate --domain-name x.internal \
    --key-algorithm EC_secp256k1 --certificate-authority-arn "$CA"
expect_error ValidationException 254 kms acm request-certificate --domain-name 'bad_name!' \
    --certificate-authority-arn "$CA"
expect_error InvalidArnException 254 kms acm request-certificate --domain-name x.internal \
    --certificate-authority-arn "arn:aws:acm-pca:us-east-1:$ACCOUNT:nothing"
expect_error InvalidArnException 254 kms acm describe-certificate \
    --certificate-arn "arn:aws:acm:us-east-1:$ACCOUNT:certificate/nope"
expect_error ResourceNotFoundException 254 kms acm describe-certificate \
    --certificate-arn "arn:aws:acm:us-east-1:$ACCOUNT:certificate/00000000-0000-4000-8000-000000000000"
kms acm-pca update-certificate-authority --certificate-authority-arn "$CA" --status DISABLED
expect_error ValidationException 254 kms acm request-certificate --domain-name x.internal \
    --certificate-authority-arn "$CA"
assert_contains "$ERR_MSG" "DISABLED" "a CA that is not ACTIVE issues nothing"
kms acm-pca update-certificate-authority --certificate-authority-arn "$CA" --status ACTIVE
assert_eq "$(n_certs)" "$N0" "refused requests record no certificate"
assert_eq "$(acm_keys "acm:" | wc -l)" "$K0" "refused requests leave no key in the HSM"

# ---- import and reimport -----------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/out.key" \
    -subj /CN=outside.example -days 30 -out "$W/out.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/out2.key" \
    -subj /CN=outside.example -days 200 -out "$W/out2.pem" 2>/dev/null
N0=$(n_certs)
expect_error ValidationException 254 kms acm import-certificate --certificate "fileb://$W/out.pem" \
    --private-key "fileb://$W/out2.key"
assert_contains "$ERR_MSG" "does not match" "a key that is not the certificate's is refused"
assert_eq "$(n_certs)" "$N0" "the refused import wrote nothing"
IMP=$(kms acm import-certificate --certificate "fileb://$W/out.pem" --private-key "fileb://$W/out.key" \
    --certificate-chain "fileb://$W/out.pem" --query CertificateArn --output text)
D=$(kms acm describe-certificate --certificate-arn "$IMP")
assert_eq "$(json_get Certificate.Type <<<"$D")" IMPORTED "ImportCertificate: Type IMPORTED"
assert_eq "$(json_get Certificate.RenewalEligibility <<<"$D")" INELIGIBLE "an imported certificate is not renewed"
assert_eq "$(json_get Certificate.DomainName <<<"$D")" outside.example "its DomainName"
NA1=$(json_get Certificate.NotAfter <<<"$D")
expect_error ValidationException 254 kms acm import-certificate --certificate-arn "$IMP" \
    --certificate "fileb://$W/out2.pem" --private-key "fileb://$W/out.key"
assert_eq "$(kms acm describe-certificate --certificate-arn "$IMP" --query Certificate.NotAfter --output text)" \
    "$NA1" "a refused reimport leaves the certificate as it was"
assert_eq "$(kms acm import-certificate --certificate-arn "$IMP" --certificate "fileb://$W/out2.pem" \
    --private-key "fileb://$W/out2.key" --query CertificateArn --output text)" "$IMP" "reimport keeps the ARN"
NA2=$(kms acm describe-certificate --certificate-arn "$IMP" --query Certificate.NotAfter --output text)
[ "$(epoch "$NA2")" -gt "$(epoch "$NA1")" ] && ok "reimport: the new certificate's NotAfter" || fail "reimport: NotAfter $NA2 <= $NA1"
kms acm get-certificate --certificate-arn "$IMP" --query Certificate --output text >"$W/imp.pem"
assert_eq "$(openssl x509 -in "$W/imp.pem" -noout -fingerprint)" \
    "$(openssl x509 -in "$W/out2.pem" -noout -fingerprint)" "GetCertificate serves the reimported certificate"
expect_error ValidationException 254 kms acm export-certificate --certificate-arn "$IMP" \
    --passphrase "fileb://$W/pass"
expect_error ValidationException 254 kms acm import-certificate --certificate-arn "$HSM" \
    --certificate "fileb://$W/out.pem" --private-key "fileb://$W/out.key"

# ---- tags, lists -------------------------------------------------------------------------------
kms acm add-tags-to-certificate --certificate-arn "$HSM" \
    --tags '[{"Key":"team","Value":"web"},{"Key":"env","Value":"prod"}]'
assert_eq "$(kms acm list-tags-for-certificate --certificate-arn "$HSM" | json_get Tags)" \
    '[{"Key":"env","Value":"prod"},{"Key":"team","Value":"web"}]' "AddTagsToCertificate, ListTagsForCertificate"
kms acm remove-tags-from-certificate --certificate-arn "$HSM" --tags '[{"Key":"team"}]'
assert_eq "$(kms acm list-tags-for-certificate --certificate-arn "$HSM" | json_get Tags)" \
    '[{"Key":"env","Value":"prod"}]' "RemoveTagsFromCertificate"
expect_error InvalidTagException 254 kms acm add-tags-to-certificate --certificate-arn "$HSM" \
    --tags '[{"Key":"aws:x","Value":"y"}]'

assert_eq "$(n_certs)" 3 "ListCertificates: every certificate"
assert_eq "$(kms acm list-certificates --includes '{"keyTypes":["RSA_2048"]}' \
    --query 'CertificateSummaryList[0].CertificateArn' --output text)" "$EXP" "Includes.keyTypes filters"
assert_eq "$(kms acm list-certificates --includes '{"keyTypes":["RSA_2048"]}' \
    --query 'CertificateSummaryList[0].ExportOption' --output text)" ENABLED "ExportOption of an exportable key"
assert_eq "$(kms acm list-certificates --certificate-statuses EXPIRED | count CertificateSummaryList)" 0 \
    "CertificateStatuses filters"
assert_eq "$(kms acm list-certificates --expiring-within-days 45 | count CertificateSummaryList)" 0 \
    "--expiring-within-days 45: none"
assert_eq "$(kms acm list-certificates --expiring-within-days 250 --query 'CertificateSummaryList[0].CertificateArn' --output text)" \
    "$IMP" "--expiring-within-days 250: the reimported certificate of 200 days"
assert_eq "$(kms acm list-certificates --expiring-within-days 250 | count CertificateSummaryList)" 1 \
    "--expiring-within-days 250: only it"
assert_eq "$(kms acm list-certificates --expiring-within-days 400 | count CertificateSummaryList)" 3 \
    "--expiring-within-days 400: all three"
OUT=$(kms acm list-certificates --no-paginate --max-items 2)
assert_eq "$(count CertificateSummaryList <<<"$OUT")" 2 "MaxItems"
assert_eq "$(kms acm list-certificates --next-token "$(json_get NextToken <<<"$OUT")" | count CertificateSummaryList)" 1 \
    "NextToken pages"

# ---- deletion, refused while in use ------------------------------------------------------------
# The TLS helper marks the certificates it serves (kms_acm_service_in_use); here the row says so.
"$PY" - "$HOME_DIR/kms.db" "${IMP##*/}" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE acm_certificates SET in_use_by = '[\"example-server\"]' WHERE cert_id = ?", (sys.argv[2],))
db.commit()
PY
assert_eq "$(kms acm describe-certificate --certificate-arn "$IMP" | json_get Certificate.InUseBy)" \
    '["example-server"]' "InUseBy names the user"
expect_error ResourceInUseException 254 kms acm delete-certificate --certificate-arn "$IMP"
"$PY" - "$HOME_DIR/kms.db" "${IMP##*/}" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE acm_certificates SET in_use_by = '[]' WHERE cert_id = ?", (sys.argv[2],))
db.commit()
PY
kms acm delete-certificate --certificate-arn "$IMP"
expect_error ResourceNotFoundException 254 kms acm describe-certificate --certificate-arn "$IMP"

# ---- expiry warnings ---------------------------------------------------------------------------
# A certificate issued directly by the CA (acm-pca IssueCertificate), valid 30 days.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/short.key" \
    -subj /CN=short.internal -addext subjectAltName=DNS:short.internal -out "$W/short.csr" 2>/dev/null
SHORT=$(kms acm-pca issue-certificate --certificate-authority-arn "$CA" --csr "fileb://$W/short.csr" \
    --signing-algorithm SHA256WITHECDSA --validity Value=30,Type=DAYS --query CertificateArn --output text)
# Configurable: warnings from 10 days out say nothing of it yet.
"$PY" - "$HOME_DIR/config.json" 10 <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["certificate_expiry_warning_days"] = int(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"))
PY
OUT=$(kms run-scheduler --once)
assert_eq "$(count ExpiryWarnings <<<"$OUT")" 0 "certificate_expiry_warning_days 10: no warning 30 days out"
"$PY" - "$HOME_DIR/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
del c["certificate_expiry_warning_days"]
json.dump(c, open(sys.argv[1], "w"))
PY
OUT=$(kms run-scheduler --once)
assert_eq "$(count ExpiryWarnings <<<"$OUT")" 1 "45 days by default: one warning"
assert_eq "$(json_get 'ExpiryWarnings[0].CertificateArn' <<<"$OUT")" "$SHORT" \
    "for the certificate the CA issued directly"
assert_eq "$(json_get 'ExpiryWarnings[0].DaysToExpiry' <<<"$OUT")" 30 "30 days before it expires (a part of a day counts)"
OUT=$(kms run-scheduler --once)
assert_eq "$(count ExpiryWarnings <<<"$OUT")" 0 "one warning per certificate and day"
OUT=$(at +1d run-scheduler --once)
assert_eq "$(count ExpiryWarnings <<<"$OUT")" 1 "the next day, another"
EV=$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=CertificateApproachingExpiration \
    --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p)
assert_eq "$(json_get eventType <<<"$EV")" AwsServiceEvent "a warning is an AwsServiceEvent"
assert_eq "$(json_get eventSource <<<"$EV")" acm.amazonaws.com "from acm.amazonaws.com"
assert_eq "$(json_get serviceEventDetails.certificateArn <<<"$EV")" "$SHORT" "naming the certificate"

# ---- managed renewal under libfaketime ---------------------------------------------------------
# Valid 365 days (from an hour before the request): due 60 days before NotAfter.
OUT=$(at +304d run-scheduler --once)
assert_eq "$(count CertificateRenewals <<<"$OUT")" 0 "the day before it is due: no renewal"
OUT=$(at +305d run-scheduler --once)
assert_eq "$(count CertificateRenewals <<<"$OUT")" 2 "60 days before NotAfter: both requested certificates renewed"
assert_eq "$(count Errors <<<"$OUT")" 0 "without errors"
OUT=$(at +305d run-scheduler --once)
assert_eq "$(count CertificateRenewals <<<"$OUT")" 0 "a second run renews nothing"
OUT=$(at +330d run-scheduler --once)
assert_eq "$(count ExpiryWarnings <<<"$OUT")" 0 \
    "35 days before the first certificates expire: renewed, they warn no more (nor as the CA's)"
D=$(at +305d acm describe-certificate --certificate-arn "$HSM")
assert_eq "$(json_get Certificate.CertificateArn <<<"$D")" "$HSM" "same ARN"
assert_eq "$(json_get Certificate.RenewalSummary.RenewalStatus <<<"$D")" SUCCESS "RenewalSummary SUCCESS"
at +305d acm get-certificate --certificate-arn "$HSM" --query Certificate --output text >"$W/renewed.pem"
assert_ne "$(openssl x509 -in "$W/renewed.pem" -noout -serial)" "$(openssl x509 -in "$W/hsm.pem" -noout -serial)" \
    "a new serial"
assert_ne "$(openssl x509 -in "$W/renewed.pem" -noout -pubkey)" "$(openssl x509 -in "$W/hsm.pem" -noout -pubkey)" \
    "a new key"
assert_eq "$(at +305d acm describe-certificate --certificate-arn "$HSM" --query Certificate.Serial --output text | tr -d :)" \
    "$(openssl x509 -in "$W/renewed.pem" -noout -serial | sed 's/serial=//' | tr A-F a-f)" \
    "DescribeCertificate shows the new serial"
faketime -f +305d openssl verify -CAfile "$W/root.pem" "$W/renewed.pem" >/dev/null 2>&1 &&
    ok "the renewed certificate verifies" || fail "the renewed certificate does not verify"
assert_eq "$(acm_keys "acm:$HSM_ID." | wc -l)" 2 "the new HSM key beside the previous one"
EV=$(at +305d lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=RenewCertificate \
    --max-items 5 | "$PY" -c '
import json, sys
for e in json.load(sys.stdin)["Events"]:
    r = json.loads(e["CloudTrailEvent"])
    if r["eventType"] == "AwsServiceEvent" and r["resources"][0]["ARN"] == sys.argv[1]:
        print(json.dumps(r)); break
' "$HSM")
assert_eq "$(json_get eventSource <<<"$EV")" acm.amazonaws.com "the renewal is recorded from acm.amazonaws.com"
assert_eq "$(json_get userIdentity.invokedBy <<<"$EV")" acm.amazonaws.com "invoked by the service"
assert_eq "$(json_get serviceEventDetails.renewalType <<<"$EV")" MANAGED "a managed renewal"
assert_eq "$(json_get serviceEventDetails.serial <<<"$EV")" \
    "$(openssl x509 -in "$W/renewed.pem" -noout -serial | sed 's/serial=//' | tr A-F a-f)" "naming the new serial"

# A renewal that fails (the CA disabled) is retried and shows in RenewalSummary.
kms acm-pca update-certificate-authority --certificate-authority-arn "$CA" --status DISABLED
RC=0
OUT=$(at +610d run-scheduler --once) || RC=$?
assert_eq "$RC" 254 "the CA disabled: run-scheduler reports a failure"
assert_eq "$(count CertificateRenewals <<<"$OUT")" 0 "the CA disabled: no renewal"
assert_eq "$(json_get 'Errors[0].Action' <<<"$OUT")" RenewCertificate "the failure is reported"
D=$(at +610d acm describe-certificate --certificate-arn "$HSM")
assert_eq "$(json_get Certificate.RenewalSummary.RenewalStatus <<<"$D")" FAILED "RenewalSummary FAILED"
assert_contains "$(json_get Certificate.RenewalSummary.RenewalStatusReason <<<"$D")" DISABLED "with the reason"
kms acm-pca update-certificate-authority --certificate-authority-arn "$CA" --status ACTIVE
OUT=$(at +611d run-scheduler --once)
assert_eq "$(count CertificateRenewals <<<"$OUT")" 2 "retried at the next run, it succeeds"
assert_eq "$(at +611d acm describe-certificate --certificate-arn "$HSM" --query Certificate.RenewalSummary.RenewalStatus --output text)" \
    SUCCESS "RenewalSummary SUCCESS again"
assert_eq "$(acm_keys "acm:$HSM_ID." | wc -l)" 2 "the key two renewals back is destroyed"

# RenewCertificate at once.
S1=$(kms acm describe-certificate --certificate-arn "$EXP" --query Certificate.Serial --output text)
kms acm renew-certificate --certificate-arn "$EXP"
assert_ne "$(kms acm describe-certificate --certificate-arn "$EXP" --query Certificate.Serial --output text)" "$S1" \
    "RenewCertificate: a new serial at once"

# Revoked by its CA (acm-pca RevokeCertificate of its serial): REVOKED, and never renewed.
S2=$(kms acm describe-certificate --certificate-arn "$EXP" --query Certificate.Serial --output text)
kms acm-pca revoke-certificate --certificate-authority-arn "$CA" --certificate-serial "$S2" \
    --revocation-reason KEY_COMPROMISE
D=$(kms acm describe-certificate --certificate-arn "$EXP")
assert_eq "$(json_get Certificate.Status <<<"$D")" REVOKED "revoked by its CA: Status REVOKED"
assert_eq "$(json_get Certificate.RevocationReason <<<"$D")" KEY_COMPROMISE "RevocationReason"
assert_eq "$(kms acm list-certificates --certificate-statuses REVOKED --query 'CertificateSummaryList[0].CertificateArn' --output text)" \
    "$EXP" "ListCertificates --certificate-statuses REVOKED"
expect_error ValidationException 254 kms acm renew-certificate --certificate-arn "$EXP"

# Never beyond the CA: ten days before the root expires, a certificate valid ten days at most.
LATE=$(at +3640d acm request-certificate --domain-name late.internal --certificate-authority-arn "$CA" \
    --query CertificateArn --output text)
CA_NA=$(kms acm-pca describe-certificate-authority --certificate-authority-arn "$CA" \
    --query CertificateAuthority.NotAfter --output text)
LATE_NA=$(at +3640d acm describe-certificate --certificate-arn "$LATE" --query Certificate.NotAfter --output text)
[ "$(epoch "$LATE_NA")" -le "$(epoch "$CA_NA")" ] && ok "a certificate never outlives its CA" ||
    fail "NotAfter $LATE_NA beyond the CA's $CA_NA"

# Every key algorithm with its key in the HSM: the CSR signed there, the chain verified.
for alg in RSA_2048 RSA_3072 EC_secp384r1; do
    name=$(tr '_A-Z' '-a-z' <<<"$alg").internal
    A=$(kms acm request-certificate --domain-name "$name" --key-algorithm "$alg" \
        --certificate-authority-arn "$CA" --query CertificateArn --output text)
    kms acm get-certificate --certificate-arn "$A" --query Certificate --output text >"$W/alg.pem"
    assert_eq "$(openssl verify -CAfile "$W/root.pem" "$W/alg.pem" 2>&1)" "$W/alg.pem: OK" \
        "$alg, key in the HSM: openssl verifies the certificate"
    assert_eq "$(acm_keys "acm:${A##*/}." | wc -l)" 1 "$alg: its key is in the HSM"
done

# ---- policies ----------------------------------------------------------------------------------
kms create-user --user-name requester >/dev/null
kms put-user-policy --user-name requester --policy-name acm --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"acm:*","Resource":"*"}]}'
KEYS_OUT=$(kms create-access-key --user-name requester)
as_requester() {
    KMS_ACCESS_KEY_ID=$(json_get AccessKey.AccessKeyId <<<"$KEYS_OUT") \
        KMS_SECRET_ACCESS_KEY=$(json_get AccessKey.SecretAccessKey <<<"$KEYS_OUT") \
        "$KMSCTL" --home "$HOME_DIR" "$@"
}
N0=$(n_certs)
expect_error AccessDeniedException 254 as_requester acm request-certificate \
    --domain-name denied.internal --certificate-authority-arn "$CA"
assert_contains "$ERR_MSG" "acm-pca:IssueCertificate" \
    "RequestCertificate also needs acm-pca:IssueCertificate on the CA, as with AWS"
assert_eq "$(n_certs)" "$N0" "a denied request writes nothing"
kms put-user-policy --user-name requester --policy-name pca --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"acm-pca:IssueCertificate\",\"Resource\":\"$CA\"},{\"Effect\":\"Deny\",\"Action\":\"acm:ExportCertificate\",\"Resource\":\"*\"}]}"
MINE=$(as_requester acm request-certificate --domain-name mine.internal --options Export=ENABLED \
    --certificate-authority-arn "$CA" --query CertificateArn --output text)
assert_match "$MINE" "^arn:aws:acm:" "with acm-pca:IssueCertificate on the CA, the request succeeds"
expect_error AccessDeniedException 254 as_requester acm export-certificate --certificate-arn "$MINE" \
    --passphrase "fileb://$W/pass"
assert_contains "$ERR_MSG" "acm:ExportCertificate" "acm:ExportCertificate may be denied by policy"

# ---- the command line --------------------------------------------------------------------------
assert_eq "$(kms kms list-keys | json_get Keys)" "$(kms list-keys | json_get Keys)" \
    "kmsctl kms list-keys is kmsctl list-keys"
KID=$(kms kms create-key --description grouped --query KeyMetadata.KeyId --output text)
CT=$(kms kms encrypt --key-id "$KID" --plaintext aGVsbG8= --query CiphertextBlob --output text)
assert_eq "$(kms kms decrypt --ciphertext-blob "$CT" --query Plaintext --output text)" aGVsbG8= \
    "kmsctl kms encrypt / decrypt are AWS KMS's Encrypt and Decrypt, as with aws"
assert_contains "$(kms acm request-certificate --help)" "kmsctl acm request-certificate --domain-name" \
    "acm request-certificate --help shows an example"
assert_contains "$(kms --help)" "Managed certificates (aws acm)" "kmsctl --help lists the acm group"
expect_usage_error "unknown command 'acm': it needs one of its commands: acm request-certificate" kms acm
expect_usage_error "Did you mean: acm request-certificate?" kms acm request-certifcate
