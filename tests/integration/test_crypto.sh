#!/usr/bin/env bash
# Cryptographic operations through kmsctl: kms-encrypt/decrypt/re-encrypt, data keys, random,
# sign/verify (checked independently with openssl), get-public-key, generate-mac/verify-mac.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
arn_of() { echo "arn:aws:kms:us-east-1:$ACCOUNT:key/$1"; }
W="$TMP/w"
mkdir "$W"

A=$(create_key SYMMETRIC_DEFAULT)
B=$(create_key SYMMETRIC_DEFAULT)
HMAC256=$(create_key HMAC_256 GENERATE_VERIFY_MAC)
HMAC512=$(create_key HMAC_512 GENERATE_VERIFY_MAC)
RSA=$(create_key RSA_2048 SIGN_VERIFY)
EC256=$(create_key ECC_NIST_P256 SIGN_VERIFY)
EC384=$(create_key ECC_NIST_P384 SIGN_VERIFY)
kms create-alias --alias-name alias/a --target-key-id "$A" >/dev/null

# ---- kms-encrypt / kms-decrypt -----------------------------------------------------------------
head -c 1000 /dev/urandom >"$W/pt"
out=$(kms kms-encrypt --key-id "$A" --plaintext "fileb://$W/pt" --encryption-context k=v)
assert_eq "$(json_get KeyId <<<"$out")" "$(arn_of "$A")" "kms-encrypt: KeyId is the key ARN"
assert_eq "$(json_get EncryptionAlgorithm <<<"$out")" SYMMETRIC_DEFAULT "kms-encrypt: algorithm"
json_get CiphertextBlob <<<"$out" | base64 -d >"$W/ct"
ctlen=$(stat -c %s "$W/ct")
if [ "$ctlen" -gt 1000 ] && [ "$ctlen" -le 6144 ]; then
    ok "ciphertext blob is longer than the plaintext ($ctlen bytes)"
else
    fail "ciphertext blob has $ctlen bytes"
fi
if "$PY" -c 'import sys; sys.exit(open(sys.argv[1],"rb").read()[:64] in open(sys.argv[2],"rb").read())' \
    "$W/pt" "$W/ct"; then
    ok "ciphertext does not contain the plaintext"
else
    fail "ciphertext contains the plaintext"
fi
kms kms-encrypt --key-id "$A" --plaintext "fileb://$W/pt" --encryption-context k=v \
    --output text --query CiphertextBlob | base64 -d >"$W/ct2"
if cmp -s "$W/ct" "$W/ct2"; then fail "two encryptions give the same blob"; else ok "encryption is randomised"; fi

out=$(kms kms-decrypt --ciphertext-blob "fileb://$W/ct" --encryption-context k=v)
json_get Plaintext <<<"$out" | base64 -d >"$W/pt.out"
assert_files_equal "$W/pt.out" "$W/pt" "kms-decrypt gives back the plaintext bytes"
assert_eq "$(json_get KeyId <<<"$out")" "$(arn_of "$A")" "kms-decrypt: KeyId"
assert_eq "$(json_get EncryptionAlgorithm <<<"$out")" SYMMETRIC_DEFAULT "kms-decrypt: algorithm"
kms kms-decrypt --ciphertext-blob "fileb://$W/ct2" --encryption-context '{"k":"v"}' \
    --key-id alias/a --output text --query Plaintext | base64 -d >"$W/pt.out"
assert_files_equal "$W/pt.out" "$W/pt" "kms-decrypt with JSON context and --key-id alias"
# base64 input instead of fileb://
kms kms-decrypt --ciphertext-blob "$(b64file "$W/ct")" --encryption-context k=v \
    --output text --query Plaintext | base64 -d >"$W/pt.out"
assert_files_equal "$W/pt.out" "$W/pt" "kms-decrypt of a base64 argument"
# context given through file://
echo '{"k": "v"}' >"$W/ctx.json"
kms kms-decrypt --ciphertext-blob "fileb://$W/ct" --encryption-context "file://$W/ctx.json" \
    --output text --query Plaintext | base64 -d >"$W/pt.out"
assert_files_equal "$W/pt.out" "$W/pt" "kms-decrypt with file:// context"

expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/ct" \
    --encryption-context k=w
expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/ct" \
    --encryption-context K=v
expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/ct"
expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/ct" \
    --encryption-context k=v,k2=v2
expect_error IncorrectKeyException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/ct" \
    --encryption-context k=v --key-id "$B"

# multi-pair context: order does not matter
printf 'short secret' >"$W/small"
kms kms-encrypt --key-id "$A" --plaintext "fileb://$W/small" --encryption-context a=1,b=2 \
    --output text --query CiphertextBlob | base64 -d >"$W/ct.ab"
assert_eq "$(kms kms-decrypt --ciphertext-blob "fileb://$W/ct.ab" --encryption-context '{"b":"2","a":"1"}' \
    --output text --query Plaintext | base64 -d)" "short secret" "context order does not matter"

# disabled and pending-deletion keys
kms disable-key --key-id "$A"
expect_error DisabledException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/ct" --encryption-context k=v
expect_error DisabledException 254 kms kms-encrypt --key-id "$A" --plaintext "fileb://$W/pt"
kms enable-key --key-id "$A"
kms schedule-key-deletion --key-id "$A" --pending-window-in-days 7 >/dev/null
expect_error KMSInvalidStateException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/ct" \
    --encryption-context k=v
expect_error KMSInvalidStateException 254 kms kms-encrypt --key-id "$A" --plaintext "fileb://$W/pt"
expect_error KMSInvalidStateException 254 kms generate-data-key --key-id "$A" --key-spec AES_256
kms cancel-key-deletion --key-id "$A" >/dev/null
kms enable-key --key-id "$A"
assert_eq "$(kms kms-decrypt --ciphertext-blob "fileb://$W/ct" --encryption-context k=v \
    --output text --query Plaintext | base64 -d | sha256sum)" "$(sha256sum <"$W/pt")" \
    "decrypts again after cancel + enable"

# wrong key usage
expect_error InvalidKeyUsageException 254 kms kms-encrypt --key-id "$HMAC256" --plaintext "fileb://$W/small"
expect_error InvalidKeyUsageException 254 kms kms-encrypt --key-id "$RSA" --plaintext "fileb://$W/small"
expect_error InvalidKeyUsageException 254 kms generate-data-key --key-id "$HMAC256" --key-spec AES_256

# size limits
head -c 4096 /dev/urandom >"$W/p4096"
kms kms-encrypt --key-id "$A" --plaintext "fileb://$W/p4096" --output text --query CiphertextBlob \
    | base64 -d >"$W/c4096"
kms kms-decrypt --ciphertext-blob "fileb://$W/c4096" --output text --query Plaintext \
    | base64 -d >"$W/p4096.out"
assert_files_equal "$W/p4096.out" "$W/p4096" "4096-byte plaintext round trip"
head -c 4097 /dev/urandom >"$W/p4097"
expect_error ValidationException 254 kms kms-encrypt --key-id "$A" --plaintext "fileb://$W/p4097"
: >"$W/empty"
expect_error ValidationException 254 kms kms-encrypt --key-id "$A" --plaintext "fileb://$W/empty"

# ---- kms-re-encrypt ----------------------------------------------------------------------------
out=$(kms kms-re-encrypt --ciphertext-blob "fileb://$W/ct" --source-encryption-context k=v \
    --destination-key-id "$B" --destination-encryption-context dest=yes)
assert_eq "$(json_get SourceKeyId <<<"$out")" "$(arn_of "$A")" "re-encrypt: SourceKeyId"
assert_eq "$(json_get KeyId <<<"$out")" "$(arn_of "$B")" "re-encrypt: KeyId is the destination"
json_get CiphertextBlob <<<"$out" | base64 -d >"$W/ct.b"
out=$(kms kms-decrypt --ciphertext-blob "fileb://$W/ct.b" --encryption-context dest=yes)
assert_eq "$(json_get KeyId <<<"$out")" "$(arn_of "$B")" "re-encrypted blob is under B"
json_get Plaintext <<<"$out" | base64 -d >"$W/pt.out"
assert_files_equal "$W/pt.out" "$W/pt" "re-encrypted blob decrypts to the plaintext"
expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/ct.b" \
    --encryption-context k=v
expect_error IncorrectKeyException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/ct.b" \
    --encryption-context dest=yes --key-id "$A"
expect_error InvalidCiphertextException 254 kms kms-re-encrypt --ciphertext-blob "fileb://$W/ct" \
    --source-encryption-context k=wrong --destination-key-id "$B"
expect_error IncorrectKeyException 254 kms kms-re-encrypt --ciphertext-blob "fileb://$W/ct" \
    --source-encryption-context k=v --source-key-id "$B" --destination-key-id "$B"
expect_error InvalidKeyUsageException 254 kms kms-re-encrypt --ciphertext-blob "fileb://$W/ct" \
    --source-encryption-context k=v --destination-key-id "$HMAC256"

# ---- data keys ---------------------------------------------------------------------------------
out=$(kms generate-data-key --key-id alias/a --key-spec AES_256 --encryption-context app=x)
assert_eq "$(json_get KeyId <<<"$out")" "$(arn_of "$A")" "generate-data-key: KeyId"
json_get Plaintext <<<"$out" | base64 -d >"$W/dk"
assert_eq "$(stat -c %s "$W/dk")" 32 "AES_256 data key has 32 bytes"
json_get CiphertextBlob <<<"$out" | base64 -d >"$W/dk.ct"
kms kms-decrypt --ciphertext-blob "fileb://$W/dk.ct" --encryption-context app=x \
    --output text --query Plaintext | base64 -d >"$W/dk.out"
assert_files_equal "$W/dk.out" "$W/dk" "data key blob decrypts to the data key"
expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/dk.ct"
dk2=$(kms generate-data-key --key-id "$A" --key-spec AES_256 --output text --query Plaintext)
assert_ne "$dk2" "$(b64file "$W/dk")" "two data keys differ"
assert_eq "$(kms generate-data-key --key-id "$A" --key-spec AES_128 --output text --query Plaintext \
    | base64 -d | wc -c)" 16 "AES_128 data key has 16 bytes"
assert_eq "$(kms generate-data-key --key-id "$A" --number-of-bytes 1024 --output text --query Plaintext \
    | base64 -d | wc -c)" 1024 "--number-of-bytes 1024"
assert_eq "$(kms generate-data-key --key-id "$A" --number-of-bytes 1 --output text --query Plaintext \
    | base64 -d | wc -c)" 1 "--number-of-bytes 1"
expect_error ValidationException 254 kms generate-data-key --key-id "$A" --number-of-bytes 1025
expect_error ValidationException 254 kms generate-data-key --key-id "$A" --number-of-bytes 0
expect_error ValidationException 254 kms generate-data-key --key-id "$A"
expect_error ValidationException 254 kms generate-data-key --key-id "$A" --key-spec AES_256 --number-of-bytes 32
expect_error ValidationException 254 kms generate-data-key --key-id "$A" --key-spec AES_512

out=$(kms generate-data-key-without-plaintext --key-id "$A" --key-spec AES_256)
assert_eq "$(json_get Plaintext <<<"$out")" "<missing>" "without-plaintext has no Plaintext"
assert_eq "$(json_get KeyId <<<"$out")" "$(arn_of "$A")" "without-plaintext: KeyId"
json_get CiphertextBlob <<<"$out" | base64 -d >"$W/dkw.ct"
assert_eq "$(kms kms-decrypt --ciphertext-blob "fileb://$W/dkw.ct" --output text --query Plaintext \
    | base64 -d | wc -c)" 32 "without-plaintext blob decrypts to a 32-byte key"
expect_error ValidationException 254 kms generate-data-key-without-plaintext --key-id "$A" \
    --number-of-bytes 1025

# ---- generate-random ---------------------------------------------------------------------------
r1=$(kms generate-random --number-of-bytes 32 --output text --query Plaintext)
r2=$(kms generate-random --number-of-bytes 32 --output text --query Plaintext)
assert_eq "$(base64 -d <<<"$r1" | wc -c)" 32 "generate-random 32 gives 32 bytes"
assert_ne "$r1" "$r2" "two random draws differ"
assert_eq "$(kms generate-random --number-of-bytes 1024 --output text --query Plaintext | base64 -d | wc -c)" \
    1024 "generate-random 1024"
expect_error ValidationException 254 kms generate-random --number-of-bytes 1025
expect_error ValidationException 254 kms generate-random --number-of-bytes 0

# ---- sign / verify -----------------------------------------------------------------------------
printf 'the message to sign\n' >"$W/msg"
printf 'the message to sign!' >"$W/msg.other"
sign() { # sign KEY ALG OUTFILE [MESSAGE_FILE [TYPE]]
    kms sign --key-id "$1" --signing-algorithm "$2" --message "fileb://${4:-$W/msg}" \
        --message-type "${5:-RAW}" --output text --query Signature | base64 -d >"$3"
}
verify_ok() { # verify_ok KEY ALG SIGFILE [MESSAGE_FILE [TYPE]]
    local out
    out=$(kms verify --key-id "$1" --signing-algorithm "$2" --message "fileb://${4:-$W/msg}" \
        --message-type "${5:-RAW}" --signature "fileb://$3")
    assert_eq "$(json_get SignatureValid <<<"$out")/$(json_get SigningAlgorithm <<<"$out")/$(json_get KeyId <<<"$out")" \
        "true/$2/$(arn_of "$1")" "verify $2 ${5:-RAW}"
}

kms get-public-key --key-id "$RSA" >"$W/rsa.json"
assert_eq "$(json_get KeySpec <"$W/rsa.json")" RSA_2048 "get-public-key: KeySpec"
assert_eq "$(json_get KeyUsage <"$W/rsa.json")" SIGN_VERIFY "get-public-key: KeyUsage"
assert_eq "$(json_get KeyId <"$W/rsa.json")" "$(arn_of "$RSA")" "get-public-key: KeyId"
json_get PublicKey <"$W/rsa.json" | base64 -d >"$W/rsa.der"
if openssl pkey -pubin -inform DER -in "$W/rsa.der" -noout -text >"$W/rsa.txt" 2>&1; then
    ok "openssl reads the RSA public key"
else
    fail "openssl cannot read the RSA public key: $(cat "$W/rsa.txt")"
fi
assert_contains "$(cat "$W/rsa.txt")" "Public-Key: (2048 bit)" "RSA public key has 2048 bits"
assert_contains "$(cat "$W/rsa.txt")" "Exponent: 65537" "RSA public exponent 65537"
openssl pkey -pubin -inform DER -in "$W/rsa.der" -out "$W/rsa.pem"

for bits in 256 384 512; do
    for scheme in PKCS1_V1_5 PSS; do
        alg="RSASSA_${scheme}_SHA_$bits"
        sign "$RSA" "$alg" "$W/sig"
        assert_eq "$(stat -c %s "$W/sig")" 256 "$alg signature has 256 bytes"
        verify_ok "$RSA" "$alg" "$W/sig"
        expect_error KMSInvalidSignatureException 254 kms verify --key-id "$RSA" \
            --signing-algorithm "$alg" --message "fileb://$W/msg.other" --signature "fileb://$W/sig"
        opts=()
        if [ "$scheme" = PSS ]; then
            opts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1)
        fi
        if openssl dgst "-sha$bits" -verify "$W/rsa.pem" "${opts[@]}" -signature "$W/sig" \
            "$W/msg" >"$W/ossl.out" 2>&1; then
            ok "openssl verifies $alg (RAW)"
        else
            fail "openssl does not verify $alg: $(cat "$W/ossl.out")"
        fi
        # the same message given as its digest
        openssl dgst "-sha$bits" -binary "$W/msg" >"$W/digest"
        sign "$RSA" "$alg" "$W/sig.d" "$W/digest" DIGEST
        verify_ok "$RSA" "$alg" "$W/sig.d" "$W/msg" RAW
        if [ "$scheme" = PKCS1_V1_5 ]; then
            # PKCS#1 v1.5 is deterministic: RAW and DIGEST signatures are the same bytes
            assert_files_equal "$W/sig.d" "$W/sig" "$alg: DIGEST and RAW signatures are identical"
        fi
    done
done
# a PSS signature is not a PKCS#1 v1.5 signature
sign "$RSA" RSASSA_PSS_SHA_256 "$W/sig.pss"
expect_error KMSInvalidSignatureException 254 kms verify --key-id "$RSA" \
    --signing-algorithm RSASSA_PKCS1_V1_5_SHA_256 --message "fileb://$W/msg" --signature "fileb://$W/sig.pss"
# a tampered signature
"$PY" -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[100]^=1; open(sys.argv[2],"wb").write(b)' \
    "$W/sig.pss" "$W/sig.bad"
expect_error KMSInvalidSignatureException 254 kms verify --key-id "$RSA" \
    --signing-algorithm RSASSA_PSS_SHA_256 --message "fileb://$W/msg" --signature "fileb://$W/sig.bad"

for spec in 256 384; do
    if [ "$spec" = 256 ]; then key=$EC256; curve=prime256v1; else key=$EC384; curve=secp384r1; fi
    alg="ECDSA_SHA_$spec"
    kms get-public-key --key-id "$key" >"$W/ec.json"
    assert_eq "$(json_get SigningAlgorithms <"$W/ec.json")" "[\"$alg\"]" "P-$spec: SigningAlgorithms"
    json_get PublicKey <"$W/ec.json" | base64 -d >"$W/ec.der"
    if openssl pkey -pubin -inform DER -in "$W/ec.der" -noout -text >"$W/ec.txt" 2>&1; then
        ok "openssl reads the P-$spec public key"
    else
        fail "openssl cannot read the P-$spec public key: $(cat "$W/ec.txt")"
    fi
    assert_contains "$(cat "$W/ec.txt")" "ASN1 OID: $curve" "P-$spec public key curve"
    openssl pkey -pubin -inform DER -in "$W/ec.der" -out "$W/ec.pem"
    sign "$key" "$alg" "$W/sig"
    verify_ok "$key" "$alg" "$W/sig"
    if openssl asn1parse -inform DER -in "$W/sig" >"$W/asn1.txt" 2>&1 \
        && [ "$(grep -c 'INTEGER' "$W/asn1.txt")" = 2 ]; then
        ok "$alg signature is a DER SEQUENCE of two INTEGERs"
    else
        fail "$alg signature is not DER: $(cat "$W/asn1.txt")"
    fi
    if openssl dgst "-sha$spec" -verify "$W/ec.pem" -signature "$W/sig" "$W/msg" >"$W/ossl.out" 2>&1; then
        ok "openssl verifies $alg (RAW)"
    else
        fail "openssl does not verify $alg: $(cat "$W/ossl.out")"
    fi
    openssl dgst "-sha$spec" -binary "$W/msg" >"$W/digest"
    sign "$key" "$alg" "$W/sig.d" "$W/digest" DIGEST
    if openssl dgst "-sha$spec" -verify "$W/ec.pem" -signature "$W/sig.d" "$W/msg" >"$W/ossl.out" 2>&1; then
        ok "openssl verifies $alg (DIGEST)"
    else
        fail "openssl does not verify $alg DIGEST: $(cat "$W/ossl.out")"
    fi
    expect_error KMSInvalidSignatureException 254 kms verify --key-id "$key" --signing-algorithm "$alg" \
        --message "fileb://$W/msg.other" --signature "fileb://$W/sig"
    expect_error ValidationException 254 kms sign --key-id "$key" --signing-algorithm "$alg" \
        --message "fileb://$W/msg" --message-type DIGEST
done
expect_error InvalidKeyUsageException 254 kms sign --key-id "$EC256" --signing-algorithm ECDSA_SHA_384 \
    --message "fileb://$W/msg"
expect_error InvalidKeyUsageException 254 kms sign --key-id "$EC256" --signing-algorithm RSASSA_PSS_SHA_256 \
    --message "fileb://$W/msg"
expect_error InvalidKeyUsageException 254 kms sign --key-id "$A" --signing-algorithm ECDSA_SHA_256 \
    --message "fileb://$W/msg"
expect_error UnsupportedOperationException 254 kms get-public-key --key-id "$A"
expect_error ValidationException 254 kms sign --key-id "$EC256" --signing-algorithm ECDSA_SHA_256 \
    --message "fileb://$W/p4097"
kms disable-key --key-id "$EC256"
expect_error DisabledException 254 kms sign --key-id "$EC256" --signing-algorithm ECDSA_SHA_256 \
    --message "fileb://$W/msg"
kms enable-key --key-id "$EC256"

# ---- generate-mac / verify-mac -----------------------------------------------------------------
out=$(kms generate-mac --key-id "$HMAC256" --message "fileb://$W/msg" --mac-algorithm HMAC_SHA_256)
assert_eq "$(json_get KeyId <<<"$out")" "$(arn_of "$HMAC256")" "generate-mac: KeyId"
assert_eq "$(json_get MacAlgorithm <<<"$out")" HMAC_SHA_256 "generate-mac: MacAlgorithm"
json_get Mac <<<"$out" | base64 -d >"$W/mac"
assert_eq "$(stat -c %s "$W/mac")" 32 "HMAC_SHA_256 gives 32 bytes"
assert_eq "$(kms generate-mac --key-id "$HMAC256" --message "fileb://$W/msg" --mac-algorithm HMAC_SHA_256 \
    --output text --query Mac)" "$(b64file "$W/mac")" "HMAC is deterministic"
assert_ne "$(kms generate-mac --key-id "$HMAC256" --message "fileb://$W/msg.other" --mac-algorithm HMAC_SHA_256 \
    --output text --query Mac)" "$(b64file "$W/mac")" "another message, another MAC"
out=$(kms verify-mac --key-id "$HMAC256" --message "fileb://$W/msg" --mac-algorithm HMAC_SHA_256 \
    --mac "fileb://$W/mac")
assert_eq "$(json_get MacValid <<<"$out")/$(json_get MacAlgorithm <<<"$out")/$(json_get KeyId <<<"$out")" \
    "true/HMAC_SHA_256/$(arn_of "$HMAC256")" "verify-mac accepts the MAC"
"$PY" -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[0]^=0x80; open(sys.argv[2],"wb").write(b)' \
    "$W/mac" "$W/mac.bad"
expect_error KMSInvalidMacException 254 kms verify-mac --key-id "$HMAC256" --message "fileb://$W/msg" \
    --mac-algorithm HMAC_SHA_256 --mac "fileb://$W/mac.bad"
head -c 31 "$W/mac" >"$W/mac.short"
expect_error KMSInvalidMacException 254 kms verify-mac --key-id "$HMAC256" --message "fileb://$W/msg" \
    --mac-algorithm HMAC_SHA_256 --mac "fileb://$W/mac.short"
expect_error KMSInvalidMacException 254 kms verify-mac --key-id "$HMAC256" --message "fileb://$W/msg.other" \
    --mac-algorithm HMAC_SHA_256 --mac "fileb://$W/mac"
HMAC256B=$(create_key HMAC_256 GENERATE_VERIFY_MAC)
expect_error KMSInvalidMacException 254 kms verify-mac --key-id "$HMAC256B" --message "fileb://$W/msg" \
    --mac-algorithm HMAC_SHA_256 --mac "fileb://$W/mac"
expect_error InvalidKeyUsageException 254 kms generate-mac --key-id "$HMAC256" --message "fileb://$W/msg" \
    --mac-algorithm HMAC_SHA_512
expect_error InvalidKeyUsageException 254 kms generate-mac --key-id "$A" --message "fileb://$W/msg" \
    --mac-algorithm HMAC_SHA_256
mac512=$(kms generate-mac --key-id "$HMAC512" --message "fileb://$W/msg" --mac-algorithm HMAC_SHA_512 \
    --output text --query Mac)
assert_eq "$(base64 -d <<<"$mac512" | wc -c)" 64 "HMAC_SHA_512 gives 64 bytes"
assert_eq "$(kms verify-mac --key-id "$HMAC512" --message "fileb://$W/msg" --mac-algorithm HMAC_SHA_512 \
    --mac "$mac512" --output text --query MacValid)" True "verify-mac HMAC_SHA_512 (text output)"
