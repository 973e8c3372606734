#!/usr/bin/env bash
# The rest of the KMS API (issue 19), the parts built so far: ECC_SECG_P256K1 signing keys, data
# key pairs (GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext), key agreement
# (KEY_AGREEMENT keys, DeriveSharedSecret), GetKeyLastUsage and DryRun. Every signature, key,
# private key and shared secret is checked by OpenSSL, not by the KMS itself.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_home
W="$TMP/w"
mkdir "$W"
printf 'a message to sign' >"$W/msg"

# ---- ECC_SECG_P256K1 (secp256k1, ECDSA_SHA_256) -------------------------------------------------
K1=$(create_key ECC_SECG_P256K1 SIGN_VERIFY)
kms get-public-key --key-id "$K1" >"$W/k1.json"
assert_eq "$(json_get SigningAlgorithms <"$W/k1.json")" '["ECDSA_SHA_256"]' "ECC_SECG_P256K1: SigningAlgorithms"
assert_eq "$(json_get KeySpec <"$W/k1.json")" ECC_SECG_P256K1 "ECC_SECG_P256K1: KeySpec"
json_get PublicKey <"$W/k1.json" | base64 -d >"$W/k1.der"
assert_contains "$(openssl pkey -pubin -inform DER -in "$W/k1.der" -text -noout)" "secp256k1" \
    "openssl reads the public key as a secp256k1 point"
kms sign --key-id "$K1" --signing-algorithm ECDSA_SHA_256 --message "fileb://$W/msg" \
    --output text --query Signature | base64 -d >"$W/k1.sig"
openssl pkey -pubin -inform DER -in "$W/k1.der" -out "$W/k1.pem"
openssl dgst -sha256 -verify "$W/k1.pem" -signature "$W/k1.sig" "$W/msg" >/dev/null &&
    ok "openssl verifies an ECDSA_SHA_256 signature of an ECC_SECG_P256K1 key"
assert_eq "$(kms verify --key-id "$K1" --signing-algorithm ECDSA_SHA_256 --message "fileb://$W/msg" \
    --signature "fileb://$W/k1.sig" --query SignatureValid --output text)" True "and the KMS verifies it too"
expect_error KMSInvalidSignatureException 254 kms verify --key-id "$K1" --signing-algorithm ECDSA_SHA_256 \
    --message "fileb://$W/k1.der" --signature "fileb://$W/k1.sig"
expect_error InvalidKeyUsageException 254 kms sign --key-id "$K1" --signing-algorithm ECDSA_SHA_384 \
    --message "fileb://$W/msg"
expect_error ValidationException 254 kms create-key --key-spec ECC_SECG_P256K1 --key-usage ENCRYPT_DECRYPT
assert_contains "$(kms describe-key --key-id "$K1" --query KeyMetadata.SigningAlgorithms --output text)" \
    ECDSA_SHA_256 "describe-key lists its signing algorithm"

# ---- data key pairs --------------------------------------------------------------------------------
SYM=$(create_key SYMMETRIC_DEFAULT)
for spec in RSA_2048 ECC_NIST_P256 ECC_NIST_P384 ECC_NIST_P521 ECC_SECG_P256K1; do
    kms generate-data-key-pair --key-id "$SYM" --key-pair-spec "$spec" \
        --encryption-context purpose=test >"$W/pair.json"
    assert_eq "$(json_get KeyPairSpec <"$W/pair.json")" "$spec" "$spec: KeyPairSpec"
    assert_match "$(json_get KeyId <"$W/pair.json")" "^arn:aws:kms:.*:key/$SYM\$" "$spec: KeyId is the key's ARN"
    json_get PrivateKeyPlaintext <"$W/pair.json" | base64 -d >"$W/priv.der"
    json_get PublicKey <"$W/pair.json" | base64 -d >"$W/pub.der"
    json_get PrivateKeyCiphertextBlob <"$W/pair.json" | base64 -d >"$W/priv.blob"
    openssl pkey -inform DER -in "$W/priv.der" -out "$W/priv.pem" 2>/dev/null &&
        ok "$spec: openssl opens the private key (PKCS #8 DER)"
    assert_contains "$(openssl pkey -inform DER -in "$W/priv.der" -check -noout 2>&1)" "Key is valid" \
        "$spec: openssl checks the private key's numbers (pkey -check)"
    openssl pkcs8 -nocrypt -topk8 -inform DER -in "$W/priv.der" -outform DER -out "$W/priv.re" &&
        assert_files_equal "$W/priv.re" "$W/priv.der" "$spec: the DER is OpenSSL's own encoding, byte for byte"
    assert_eq "$(openssl asn1parse -inform DER -in "$W/priv.der" | sed -n '2,3p' | awk '{print $NF}' | tr '\n' ' ')" \
        ":00 SEQUENCE " "$spec: it is a PrivateKeyInfo (version 0, then the AlgorithmIdentifier)"
    assert_eq "$(openssl pkey -in "$W/priv.pem" -pubout -outform DER | base64 -w0)" "$(base64 -w0 <"$W/pub.der")" \
        "$spec: PublicKey is the DER SubjectPublicKeyInfo of the private key"
    kms kms-decrypt --ciphertext-blob "fileb://$W/priv.blob" --encryption-context purpose=test \
        --output text --query Plaintext | base64 -d >"$W/priv.again"
    assert_files_equal "$W/priv.again" "$W/priv.der" "$spec: PrivateKeyCiphertextBlob decrypts to the private key"
done
case_sig() {
    openssl dgst -sha256 -sign "$W/priv.pem" -out "$W/pair.sig" "$W/msg" &&
        openssl dgst -sha256 -verify <(openssl pkey -pubin -inform DER -in "$W/pub.der") \
            -signature "$W/pair.sig" "$W/msg" >/dev/null
}
case_sig && ok "the last pair signs and verifies with openssl"
kms generate-data-key-pair --key-id "$SYM" --key-pair-spec RSA_2048 >"$W/a.json"
kms generate-data-key-pair --key-id "$SYM" --key-pair-spec RSA_2048 >"$W/b.json"
assert_ne "$(json_get PublicKey <"$W/a.json")" "$(json_get PublicKey <"$W/b.json")" "each call makes a new pair"
# The trail: a read, the pair spec recorded, no key material in the record (the last call).
kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=GenerateDataKeyPair \
    --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p >"$W/event.json"
assert_eq "$(json_get readOnly <"$W/event.json")" true "GenerateDataKeyPair is recorded as a read"
assert_eq "$(json_get requestParameters.keyPairSpec <"$W/event.json")" RSA_2048 "with its keyPairSpec"
assert_eq "$("$PY" -c 'import json,sys; e=json.load(sys.stdin); print("responseElements" in e, e["responseElements"])' <"$W/event.json")" \
    "True None" "and responseElements null"
assert_eq "$(json_get KeyMaterialId <"$W/b.json")" "$(kms describe-key --key-id "$SYM" --query KeyMetadata.CurrentKeyMaterialId --output text)" \
    "GenerateDataKeyPair answers the KeyMaterialId of the key's current material"
assert_eq "$(json_get additionalEventData.keyMaterialId <"$W/event.json")" "$(json_get KeyMaterialId <"$W/b.json")" \
    "and its record names the same keyMaterialId"
assert_not_contains "$(cat "$W/event.json")" "$(json_get PrivateKeyPlaintext <"$W/b.json" | head -c 40)" \
    "the private key is not in the record"
json_get PublicKey <"$W/a.json" | base64 -d | openssl pkey -pubin -inform DER -text -noout >"$W/rsa.txt"
assert_contains "$(cat "$W/rsa.txt")" "(2048 bit)" "RSA_2048 is a 2048-bit RSA key"

kms generate-data-key-pair-without-plaintext --key-id "$SYM" --key-pair-spec ECC_NIST_P256 >"$W/np.json"
assert_eq "$(json_get PrivateKeyPlaintext <"$W/np.json")" "<missing>" "WithoutPlaintext: no PrivateKeyPlaintext"
json_get PrivateKeyCiphertextBlob <"$W/np.json" | base64 -d >"$W/np.blob"
kms kms-decrypt --ciphertext-blob "fileb://$W/np.blob" --output text --query Plaintext | base64 -d >"$W/np.der"
assert_eq "$(openssl pkey -inform DER -in "$W/np.der" -pubout -outform DER | base64 -w0)" \
    "$(json_get PublicKey <"$W/np.json")" "WithoutPlaintext: the decrypted private key belongs to PublicKey"

# Refusals: each exact, and none makes anything.
HMAC=$(create_key HMAC_256 GENERATE_VERIFY_MAC)
before=$(home_digest "$HOME_DIR")
expect_error ValidationException 254 kms generate-data-key-pair --key-id "$SYM" --key-pair-spec RSA_1024
assert_contains "$ERR_MSG" "Member must satisfy enum value set: [RSA_2048" "an unknown KeyPairSpec names the valid ones"
expect_usage_error "--key-pair-spec" kms generate-data-key-pair --key-id "$SYM"
expect_error UnsupportedOperationException 254 kms generate-data-key-pair --key-id "$SYM" --key-pair-spec SM2
expect_error InvalidKeyUsageException 254 kms generate-data-key-pair --key-id "$K1" --key-pair-spec ECC_NIST_P256
expect_error NotFoundException 254 kms generate-data-key-pair --key-id alias/none --key-pair-spec ECC_NIST_P256
expect_error InvalidKeyUsageException 254 kms generate-data-key-pair --key-id "$HMAC" --key-pair-spec ECC_NIST_P256
assert_home_unchanged "$before" "$HOME_DIR" "the refused calls changed nothing"
kms disable-key --key-id "$SYM"
expect_error DisabledException 254 kms generate-data-key-pair-without-plaintext --key-id "$SYM" --key-pair-spec ECC_NIST_P256
kms enable-key --key-id "$SYM"


# ---- Key agreement: KEY_AGREEMENT keys and DeriveSharedSecret (ECDH in the HSM) -------------------
for curve in P256:P-256 P384:P-384 P521:P-521; do
    spec=ECC_NIST_${curve%%:*}
    AG=$(create_key "$spec" KEY_AGREEMENT)
    assert_eq "$(kms describe-key --key-id "$AG" --query KeyMetadata.KeyAgreementAlgorithms --output json | tr -d ' \n')" \
        '["ECDH"]' "$spec KEY_AGREEMENT: DescribeKey lists ECDH"
    kms get-public-key --key-id "$AG" >"$W/ag.json"
    assert_eq "$(json_get KeyAgreementAlgorithms <"$W/ag.json")" '["ECDH"]' "$spec: GetPublicKey lists ECDH"
    json_get PublicKey <"$W/ag.json" | base64 -d | openssl pkey -pubin -inform DER -out "$W/ag-pub.pem"
    openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${curve#*:}" -out "$W/peer.pem" 2>/dev/null
    openssl pkey -in "$W/peer.pem" -pubout -outform DER -out "$W/peer.der"
    kms derive-shared-secret --key-id "$AG" --key-agreement-algorithm ECDH --public-key "fileb://$W/peer.der" \
        >"$W/derived.json"
    openssl pkeyutl -derive -inkey "$W/peer.pem" -peerkey "$W/ag-pub.pem" -out "$W/openssl.secret"
    assert_eq "$(json_get SharedSecret <"$W/derived.json")" "$(base64 -w0 <"$W/openssl.secret")" \
        "$spec: DeriveSharedSecret equals the secret openssl derives from the other side"
    assert_eq "$(json_get KeyAgreementAlgorithm <"$W/derived.json")/$(json_get KeyOrigin <"$W/derived.json")" \
        ECDH/AWS_KMS "$spec: KeyAgreementAlgorithm and KeyOrigin"
done
expect_error InvalidKeyUsageException 254 kms sign --key-id "$AG" --signing-algorithm ECDSA_SHA_512 --message "fileb://$W/msg"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/p256.pem" 2>/dev/null
openssl pkey -in "$W/p256.pem" -pubout -outform DER -out "$W/p256.der"
expect_error ValidationException 254 kms derive-shared-secret --key-id "$AG" --key-agreement-algorithm ECDH \
    --public-key "fileb://$W/p256.der"
assert_contains "$ERR_MSG" "on the curve of" "a public key on another curve is refused"
expect_error ValidationException 254 kms derive-shared-secret --key-id "$AG" --key-agreement-algorithm ECDH \
    --public-key "fileb://$W/msg"
assert_contains "$ERR_MSG" "SubjectPublicKeyInfo" "a public key that is not DER SPKI is refused"
expect_error ValidationException 254 kms derive-shared-secret --key-id "$AG" --key-agreement-algorithm ECMQV \
    --public-key "fileb://$W/peer.der"
expect_error InvalidKeyUsageException 254 kms derive-shared-secret --key-id "$K1" --key-agreement-algorithm ECDH \
    --public-key "fileb://$W/peer.der"
expect_error ValidationException 254 kms create-key --key-spec ECC_SECG_P256K1 --key-usage KEY_AGREEMENT
expect_error ValidationException 254 kms create-key --key-spec RSA_2048 --key-usage KEY_AGREEMENT
expect_error DryRunOperationException 254 kms derive-shared-secret --key-id "$AG" --key-agreement-algorithm ECDH \
    --public-key "fileb://$W/peer.der" --dry-run
kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=DeriveSharedSecret --max-items 20 \
    --output json >"$W/ag-events.json"
assert_not_contains "$(cat "$W/ag-events.json")" "$(base64 -w0 <"$W/openssl.secret")" "the shared secret is in no record"
assert_eq "$("$PY" -c 'import json,sys; e=[json.loads(x["CloudTrailEvent"]) for x in json.load(sys.stdin)["Events"]]; print(sorted({(x["readOnly"], x.get("errorCode")) for x in e}, key=str))' <"$W/ag-events.json")" \
    "[(True, 'DryRunOperationException'), (True, 'InvalidKeyUsageException'), (True, 'ValidationException'), (True, None)]" \
    "DeriveSharedSecret is recorded as a read, refusals with their errorCode"

# ---- GetKeyLastUsage: from the audit trail ----------------------------------------------------------
LU=$(create_key SYMMETRIC_DEFAULT)
kms get-key-last-usage --key-id "$LU" >"$W/lu0.json"
assert_eq "$(json_get KeyLastUsage <"$W/lu0.json")" "<missing>" "a new key has no KeyLastUsage"
assert_eq "$(json_get TrackingStartDate <"$W/lu0.json")" "$(json_get KeyCreationDate <"$W/lu0.json")" \
    "tracking starts when a key newer than the trail was created"
assert_eq "$(json_get KeyId <"$W/lu0.json")" "$LU" "KeyId is the key's id"
kms kms-encrypt --key-id "$LU" --plaintext "fileb://$W/msg" --encryption-context a=b --output text \
    --query CiphertextBlob | base64 -d >"$W/lu.blob"
kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=Encrypt --max-items 1 \
    --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p >"$W/lu-enc.json"
kms describe-key --key-id "$LU" >/dev/null
expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/lu.blob" --encryption-context a=c
kms get-key-last-usage --key-id "$LU" >"$W/lu1.json"
assert_eq "$(json_get KeyLastUsage.Operation <"$W/lu1.json")" Encrypt \
    "the last successful cryptographic operation (not DescribeKey, not a failed Decrypt)"
assert_eq "$(json_get KeyLastUsage.CloudTrailEventId <"$W/lu1.json")" "$(json_get eventID <"$W/lu-enc.json")" \
    "CloudTrailEventId is the record's eventID"
assert_eq "$(json_get KeyLastUsage.KmsRequestId <"$W/lu1.json")" "$(json_get requestID <"$W/lu-enc.json")" \
    "KmsRequestId is the record's requestID"
assert_eq "$(epoch "$(json_get KeyLastUsage.Timestamp <"$W/lu1.json")")" "$(epoch "$(json_get eventTime <"$W/lu-enc.json")")" \
    "Timestamp is the record's eventTime"
kms kms-re-encrypt --ciphertext-blob "fileb://$W/lu.blob" --source-encryption-context a=b \
    --destination-key-id "$SYM" >/dev/null
assert_eq "$(kms get-key-last-usage --key-id "$LU" --query KeyLastUsage.Operation --output text)" ReEncrypt \
    "ReEncrypt counts for its source key"
assert_eq "$(kms get-key-last-usage --key-id "$SYM" --query KeyLastUsage.Operation --output text)" ReEncrypt \
    "and for its destination key"
assert_eq "$(kms get-key-last-usage --key-id "$K1" --query KeyLastUsage.Operation --output text)" Verify \
    "a signing key's last use"
expect_error ValidationException 254 kms get-key-last-usage --key-id alias/aws/none
assert_contains "$ERR_MSG" "alias names are not supported" "an alias is refused as AWS refuses it"
expect_error NotFoundException 254 kms get-key-last-usage --key-id 11111111-2222-3333-4444-555555555555

# ---- DryRun: authorised and checked, then DryRunOperationException, nothing done -------------------
dry() { expect_error DryRunOperationException 254 kms "$@" --dry-run; }
BLOB="$W/dry.blob"
kms kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/msg" --output text --query CiphertextBlob | base64 -d >"$BLOB"
MK=$(create_key HMAC_256 GENERATE_VERIFY_MAC)
kms sign --key-id "$K1" --signing-algorithm ECDSA_SHA_256 --message "fileb://$W/msg" --output text \
    --query Signature | base64 -d >"$W/dry.sig"
kms generate-mac --key-id "$MK" --mac-algorithm HMAC_SHA_256 --message "fileb://$W/msg" --output text \
    --query Mac | base64 -d >"$W/dry.mac"
GRANT=$(kms create-grant --key-id "$SYM" --grantee-principal "arn:aws:iam::111122223333:root" \
    --retiring-principal "$(kms get-caller-identity --query Arn --output text)" --operations Decrypt \
    --query GrantId --output text)
before=$(home_digest "$HOME_DIR")
dry kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/msg"
assert_eq "$ERR_MSG" "The request would have succeeded, but the DryRun option is set." "DryRun: AWS's message"
dry kms-decrypt --ciphertext-blob "fileb://$BLOB"
dry kms-re-encrypt --ciphertext-blob "fileb://$BLOB" --destination-key-id "$SYM"
dry generate-data-key --key-id "$SYM" --key-spec AES_256
dry generate-data-key-without-plaintext --key-id "$SYM" --number-of-bytes 16
dry generate-data-key-pair --key-id "$SYM" --key-pair-spec RSA_4096
dry generate-data-key-pair-without-plaintext --key-id "$SYM" --key-pair-spec ECC_NIST_P256
dry sign --key-id "$K1" --signing-algorithm ECDSA_SHA_256 --message "fileb://$W/msg"
dry verify --key-id "$K1" --signing-algorithm ECDSA_SHA_256 --message "fileb://$W/msg" --signature "fileb://$W/dry.sig"
dry generate-mac --key-id "$MK" --mac-algorithm HMAC_SHA_256 --message "fileb://$W/msg"
dry verify-mac --key-id "$MK" --mac-algorithm HMAC_SHA_256 --message "fileb://$W/msg" --mac "fileb://$W/dry.mac"
dry create-grant --key-id "$SYM" --grantee-principal "arn:aws:iam::111122223333:root" --operations Encrypt
dry revoke-grant --key-id "$SYM" --grant-id "$GRANT"
dry retire-grant --key-id "$SYM" --grant-id "$GRANT"
assert_eq "$(kms list-grants --key-id "$SYM" --output json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["Grants"]))')" \
    1 "the dry runs created, revoked and retired no grant"
assert_home_unchanged "$before" "$HOME_DIR" "the dry runs changed nothing"
# What would fail still fails, with its own exception: the checks come before the dry run.
expect_error ValidationException 254 kms generate-data-key-pair --key-id "$SYM" --key-pair-spec RSA_1 --dry-run
expect_error InvalidKeyUsageException 254 kms generate-data-key --key-id "$K1" --key-spec AES_256 --dry-run
expect_error NotFoundException 254 kms kms-encrypt --key-id alias/none --plaintext "fileb://$W/msg" --dry-run
kms disable-key --key-id "$MK"
expect_error DisabledException 254 kms generate-mac --key-id "$MK" --mac-algorithm HMAC_SHA_256 --message "fileb://$W/msg" --dry-run
kms enable-key --key-id "$MK"
expect_error InvalidKeyUsageException 254 kms kms-re-encrypt --ciphertext-blob "fileb://$BLOB" --destination-key-id "$K1" --dry-run
assert_contains "$ERR_MSG" "$K1" "a dry run of ReEncrypt checks its destination key too"
head -c 40 "$BLOB" >"$W/cut.blob"
expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/cut.blob" --dry-run
expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$BLOB" \
    --encryption-context wrong=context --dry-run
ok "a dry run of Decrypt checks the ciphertext and its context"
kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=CreateGrant --max-items 1 \
    --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p >"$W/dry-event.json"
assert_eq "$(json_get errorCode <"$W/dry-event.json")" DryRunOperationException "a dry run is recorded with its errorCode"
# Denied callers are denied, dry run or not.
kms create-user --user-name dora >/dev/null
out=$(kms create-access-key --user-name dora)
DAK=$(json_get AccessKey.AccessKeyId <<<"$out")
DSK=$(json_get AccessKey.SecretAccessKey <<<"$out")
expect_error AccessDeniedException 254 env KMS_ACCESS_KEY_ID="$DAK" KMS_SECRET_ACCESS_KEY="$DSK" \
    "$KMSCTL" --home "$HOME_DIR" kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/msg" --dry-run
# The data key pair through kmsd and the real aws CLI, and a dry run signed by curl.
KMSD=${KMSD:-$(dirname "$KMSCTL")/kmsd}
AWS=/usr/bin/aws
if [ -x "$KMSD" ] && [ -x "$AWS" ]; then
    PIDS=()
    trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; _on_exit' EXIT
    start_kmsd api "$HOME_DIR" --no-scheduler
    creds() { awk -F' *= *' -v k="$1" '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1==k{print $2}' "$HOME_DIR/credentials"; }
    awsk() {
        env AWS_ACCESS_KEY_ID="$(creds aws_access_key_id)" AWS_SECRET_ACCESS_KEY="$(creds aws_secret_access_key)" \
            AWS_DEFAULT_REGION=us-east-1 AWS_CA_BUNDLE="$HOME_DIR/kmsd-ca.pem" AWS_CONFIG_FILE=/dev/null \
            AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER="" "$AWS" --endpoint-url "https://127.0.0.1:$PORT" "$@"
    }
    awsk kms generate-data-key-pair --key-id "$SYM" --key-pair-spec ECC_SECG_P256K1 --output json >"$W/aws-pair.json" 2>"$W/aws.err"
    json_get PrivateKeyPlaintext <"$W/aws-pair.json" | base64 -d >"$W/aws-priv.der"
    assert_eq "$(openssl pkey -inform DER -in "$W/aws-priv.der" -pubout -outform DER 2>/dev/null | base64 -w0)" \
        "$(json_get PublicKey <"$W/aws-pair.json")" "aws kms generate-data-key-pair through kmsd: openssl opens the pair $(head -c 200 "$W/aws.err")"
    # Debian's aws CLI (2.9) predates DryRun; curl's SigV4 sends it.
    R=$(curl -sS -i --max-time 20 --cacert "$HOME_DIR/kmsd-ca.pem" "https://127.0.0.1:$PORT/" \
        --aws-sigv4 "aws:amz:us-east-1:kms" --user "$(creds aws_access_key_id):$(creds aws_secret_access_key)" \
        -H "X-Amz-Target: TrentService.GenerateDataKey" -H "Content-Type: application/x-amz-json-1.1" \
        --data-binary "{\"KeyId\": \"$SYM\", \"KeySpec\": \"AES_256\", \"DryRun\": true}" 2>&1 || true)
    assert_contains "$R" "HTTP/1.1 412" "DryRunOperationException is HTTP 412, as the KMS API reference says"
    assert_contains "$R" '"__type":"DryRunOperationException"' "and names the exception"
    kill -TERM "$PID"
    wait "$PID" || true # before the home is removed
fi
