#!/usr/bin/env bash
# Bad input: every failure gives one clear JSON error (or a usage error, exit 252), nothing on
# stdout, and leaves the KMS home as it was. Broken homes (no database, garbage database, no
# token, wrong PIN, PIN file readable by others, missing home) are made on copies of a home.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_home
W="$TMP/w"
mkdir "$W"
SYM=$(create_key SYMMETRIC_DEFAULT)
HMAC=$(create_key HMAC_256 GENERATE_VERIFY_MAC)
EC=$(create_key ECC_NIST_P256 SIGN_VERIFY)
kms create-alias --alias-name alias/sym --target-key-id "$SYM" >/dev/null
printf 'bad input test plaintext' >"$W/pt"
kms kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/pt" --output text --query CiphertextBlob \
    | base64 -d >"$W/ct"
# sanity: the good blob decrypts
assert_eq "$(kms kms-decrypt --ciphertext-blob "fileb://$W/ct" --output text --query Plaintext | base64 -d)" \
    "bad input test plaintext" "the reference blob decrypts"
CTLEN=$(stat -c %s "$W/ct")

# err_unchanged NAME EXITCODE CMD...: expect_error, and the home is unchanged afterwards
err_unchanged() {
    local before
    before=$(home_digest "$HOME_DIR")
    expect_error "$@"
    assert_home_unchanged "$before" "$HOME_DIR" "  ... and the home is unchanged"
}
usage_unchanged() {
    local before
    before=$(home_digest "$HOME_DIR")
    expect_usage_error "$@"
    assert_home_unchanged "$before" "$HOME_DIR" "  ... and the home is unchanged"
}

# ---- unknown keys ------------------------------------------------------------------------------
NOKEY=00000000-0000-4000-8000-000000000000
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
for ref in "$NOKEY" "arn:aws:kms:us-east-1:$ACCOUNT:key/$NOKEY" alias/none \
    "arn:aws:kms:us-east-1:$ACCOUNT:alias/none" not-a-key-id; do
    err_unchanged NotFoundException 254 kms describe-key --key-id "$ref"
done
err_unchanged NotFoundException 254 kms kms-encrypt --key-id "$NOKEY" --plaintext "fileb://$W/pt"
err_unchanged NotFoundException 254 kms kms-decrypt --key-id "$NOKEY" --ciphertext-blob "fileb://$W/ct"
err_unchanged NotFoundException 254 kms generate-data-key --key-id "$NOKEY" --key-spec AES_256
err_unchanged NotFoundException 254 kms sign --key-id "$NOKEY" --message "fileb://$W/pt" \
    --signing-algorithm ECDSA_SHA_256
err_unchanged NotFoundException 254 kms generate-mac --key-id "$NOKEY" --message "fileb://$W/pt" \
    --mac-algorithm HMAC_SHA_256
err_unchanged NotFoundException 254 kms get-public-key --key-id "$NOKEY"
err_unchanged NotFoundException 254 kms disable-key --key-id "$NOKEY"
err_unchanged NotFoundException 254 kms schedule-key-deletion --key-id "$NOKEY"
err_unchanged NotFoundException 254 kms update-key-description --key-id "$NOKEY" --description x
err_unchanged NotFoundException 254 kms create-alias --alias-name alias/new --target-key-id "$NOKEY"
err_unchanged NotFoundException 254 kms delete-alias --alias-name alias/none
assert_contains "$(kms list-aliases --output text --query Aliases)" "alias/sym" "alias/sym still there"
assert_eq "$(kms list-aliases --query Aliases | json_get '[1]')" "<missing>" "no alias was added"

# ---- malformed ciphertext blobs ----------------------------------------------------------------
# mutate OUT PYTHON_EXPR_ON_b: b is a bytearray of the good blob
mutate() {
    "$PY" -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); exec(sys.argv[3]); open(sys.argv[2],"wb").write(b)' \
        "$W/ct" "$1" "$2"
}
bad_blob() { # bad_blob DESCRIPTION FILE
    echo "# $1"
    err_unchanged InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$2"
}
for n in 1 16 20 33 48 $((CTLEN - 1)); do
    head -c "$n" "$W/ct" >"$W/bad"
    bad_blob "truncated to $n bytes" "$W/bad"
done
for pos in 0 1 16 17 20 21 32 33 $((CTLEN - 17)) $((CTLEN - 1)); do
    for bit in 0 7; do
        mutate "$W/bad" "b[$pos] ^= 1 << $bit"
        bad_blob "bit $bit of byte $pos flipped" "$W/bad"
    done
done
for v in 0 2 255; do
    mutate "$W/bad" "b[0] = $v"
    bad_blob "version byte $v" "$W/bad"
done
mutate "$W/bad" "b += b'x'"
bad_blob "a byte appended" "$W/bad"
for n in 8 "$CTLEN" 200 6144; do
    head -c "$n" /dev/urandom >"$W/bad"
    bad_blob "$n random bytes" "$W/bad"
done
mutate "$W/bad" "import os; b[21:] = os.urandom(len(b) - 21)"
bad_blob "good header, random body" "$W/bad"
# a well-formed blob of another home's key
H2="$TMP/home2"
init_home "$H2"
k2=$(kms_at "$H2" create-key --output text --query KeyMetadata.KeyId)
kms_at "$H2" kms-encrypt --key-id "$k2" --plaintext "fileb://$W/pt" --output text --query CiphertextBlob \
    | base64 -d >"$W/ct.other"
bad_blob "blob of another home" "$W/ct.other"
# an empty blob: the tool may call it a ValidationException (length 0 is out of range)
: >"$W/empty"
before=$(home_digest "$HOME_DIR")
rc=0
kms kms-decrypt --ciphertext-blob "fileb://$W/empty" >"$W/out" 2>"$W/err" || rc=$?
assert_eq "$rc" 254 "empty blob: exit 254"
t=$(json_get __type <"$W/err" 2>/dev/null || echo "not JSON: $(cat "$W/err")")
case "$t" in
    InvalidCiphertextException | ValidationException) ok "empty blob: $t" ;;
    *) fail "empty blob: $t" ;;
esac
assert_eq "$(cat "$W/out")" "" "empty blob: nothing on stdout"
assert_home_unchanged "$before" "$HOME_DIR" "empty blob: home unchanged"
head -c 6145 /dev/urandom >"$W/bad"
err_unchanged ValidationException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/bad"
# the limit is 6144 bytes (as the message for an empty blob says): say so, not a base64 length
assert_contains "$ERR_MSG" "6144" "  ... the message gives the 6144-byte limit"
# malformed blobs through re-encrypt too
mutate "$W/bad" "b[-1] ^= 1"
err_unchanged InvalidCiphertextException 254 kms kms-re-encrypt --ciphertext-blob "fileb://$W/bad" \
    --destination-key-id "$SYM"

# ---- invalid parameters ------------------------------------------------------------------------
err_unchanged ValidationException 254 kms create-key --key-spec AES_999
assert_eq "$(kms list-keys --query Keys | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" 3 \
    "a refused create-key adds no key"
err_unchanged ValidationException 254 kms create-key --key-usage ENCRYPT_EVERYTHING
# an origin AWS knows but this KMS does not support, and one that is no origin at all
err_unchanged UnsupportedOperationException 254 kms create-key --origin EXTERNAL
err_unchanged ValidationException 254 kms create-key --origin EXTERNAL_THING
err_unchanged ValidationException 254 kms generate-data-key --key-id "$SYM" --key-spec AES_1
err_unchanged ValidationException 254 kms generate-random --number-of-bytes -1
err_unchanged ValidationException 254 kms sign --key-id "$EC" --message "fileb://$W/pt" \
    --signing-algorithm ECDSA_SHA_999
err_unchanged ValidationException 254 kms generate-mac --key-id "$HMAC" --message "fileb://$W/pt" \
    --mac-algorithm HMAC_MD5
err_unchanged ValidationException 254 kms describe-key --key-id ""
usage_unchanged "not valid base64" kms kms-encrypt --key-id "$SYM" --plaintext '!!not base64!!'
usage_unchanged "not valid base64" kms kms-decrypt --ciphertext-blob 'AAAA*'
usage_unchanged "not valid base64" kms verify-mac --key-id "$HMAC" --message "fileb://$W/pt" \
    --mac-algorithm HMAC_SHA_256 --mac '@@'
usage_unchanged "unknown option --bogus" kms describe-key --key-id "$SYM" --bogus
usage_unchanged "unknown option" kms list-keys --key-spec RSA_2048
usage_unchanged "unknown command" kms frobnicate
usage_unchanged "required" kms describe-key
usage_unchanged "--key-id" kms describe-key --key-id
usage_unchanged "--limit" kms list-keys --limit ten
usage_unchanged "--number-of-bytes" kms generate-random --number-of-bytes 99999999999999999999
usage_unchanged "--output" kms --output xml list-keys
usage_unchanged "--encryption-context" kms kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/pt" \
    --encryption-context novalue
usage_unchanged "--encryption-context" kms kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/pt" \
    --encryption-context '{"k": 1}'
usage_unchanged "No such file" kms kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/does-not-exist"
head -c 70000 /dev/zero >"$W/big"
usage_unchanged "64 KiB" kms kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/big"

# ---- broken homes, on copies -------------------------------------------------------------------
C="$TMP/copies"
mkdir "$C"
n=0
new_copy() { n=$((n + 1)); COPY="$C/h$n"; copy_home "$HOME_DIR" "$COPY"; }
# a copy works as it is
new_copy
assert_eq "$(kms_at "$COPY" kms-decrypt --ciphertext-blob "fileb://$W/ct" --output text --query Plaintext \
    | base64 -d)" "bad input test plaintext" "a copied home works"

# A refused command still records the use of the access key that signed it (at most once a
# minute, as AWS's last-used date: "the last request made with that key"); that is no change
# of the home. Two minutes on, the refused command is sure to write it: the comparison of the
# home leaves those columns out (lib.sh, home_db_rows) and still sees any other row change.
faketime_required
key_last_used() {
    "$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
        "select last_used_date from iam_access_keys").fetchall())' "$1/kms.db"
}
new_copy
used=$(key_last_used "$COPY")
before=$(home_digest "$COPY")
head -c 6145 /dev/urandom >"$W/bad"
expect_error ValidationException 254 at_time +2m "$KMSCTL" --home "$COPY" kms-decrypt \
    --ciphertext-blob "fileb://$W/bad"
assert_home_unchanged "$before" "$COPY" "  ... a minute after the last use, the home is unchanged"
assert_not_contains "$(key_last_used "$COPY")" "$used" "  ... though the key's last-used date moved"
"$PY" -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(
    "update keys set description = description || ?", ("x",)); c.commit()' "$COPY/kms.db"
if [ "$(home_digest "$COPY")" != "$before" ]; then ok "a changed key row is a changed home"; else
    fail "a changed key row went unseen"; fi

# missing database
new_copy
rm "$COPY/kms.db"
before=$(home_digest "$COPY")
for cmd in "describe-key --key-id $SYM" "list-keys" "create-key" \
    "kms-encrypt --key-id $SYM --plaintext fileb://$W/pt"; do
    # shellcheck disable=SC2086
    expect_error KMSHomeException 254 kms_at "$COPY" $cmd
    assert_contains "$ERR_MSG" "kmsctl init" "  ... the message points at kmsctl init"
    assert_home_unchanged "$before" "$COPY" "  ... no database is created"
done
if [ -e "$COPY/kms.db" ]; then fail "kms.db was re-created"; else ok "kms.db is still missing"; fi

# corrupt database: garbage
new_copy
head -c 40960 /dev/urandom >"$COPY/kms.db"
sum=$(sha256sum <"$COPY/kms.db")
before=$(home_digest "$COPY")
for cmd in "describe-key --key-id $SYM" "list-keys" "create-key" \
    "kms-decrypt --ciphertext-blob fileb://$W/ct"; do
    # shellcheck disable=SC2086
    expect_error KMSHomeException 254 kms_at "$COPY" $cmd
    assert_home_unchanged "$before" "$COPY" "  ... the home is unchanged"
done
assert_eq "$(sha256sum <"$COPY/kms.db")" "$sum" "the garbage database is left as it was"
# corrupt database: an empty file, and a truncated one
new_copy
: >"$COPY/kms.db"
before=$(home_digest "$COPY")
expect_error KMSHomeException 254 kms_at "$COPY" describe-key --key-id "$SYM"
assert_home_unchanged "$before" "$COPY" "  ... the empty database stays empty"
new_copy
head -c "$(($(stat -c %s "$HOME_DIR/kms.db") / 2))" "$HOME_DIR/kms.db" >"$COPY/kms.db"
before=$(home_digest "$COPY")
expect_error KMSHomeException 254 kms_at "$COPY" list-keys
assert_home_unchanged "$before" "$COPY" "  ... the truncated database is unchanged"

# corrupt config.json
new_copy
echo '{"region": ' >"$COPY/config.json"
before=$(home_digest "$COPY")
expect_error KMSHomeException 254 kms_at "$COPY" describe-key --key-id "$SYM"
assert_home_unchanged "$before" "$COPY" "  ... the home is unchanged"

# missing token
new_copy
rm -rf "$COPY"/hsm/tokens/*
before=$(home_digest "$COPY")
for cmd in "kms-encrypt --key-id $SYM --plaintext fileb://$W/pt" \
    "kms-decrypt --ciphertext-blob fileb://$W/ct" "create-key" "generate-random --number-of-bytes 8" \
    "sign --key-id $EC --message fileb://$W/pt --signing-algorithm ECDSA_SHA_256"; do
    # shellcheck disable=SC2086
    expect_error KMSHsmException 254 kms_at "$COPY" $cmd
    assert_home_unchanged "$before" "$COPY" "  ... the home is unchanged"
done
assert_eq "$(sqlite3 "$COPY/kms.db" 'select count(*) from keys' 2>/dev/null \
    || "$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from keys").fetchone()[0])' "$COPY/kms.db")" \
    3 "create-key without a token adds no key row"

# wrong PIN
new_copy
REAL_PIN=$(head -n1 "$COPY/pin")
WRONG_PIN="wrongpin-$RANDOM$RANDOM"
printf '%s\n' "$WRONG_PIN" >"$COPY/pin"
chmod 600 "$COPY/pin"
before=$(home_digest "$COPY")
for cmd in "kms-encrypt --key-id $SYM --plaintext fileb://$W/pt" "create-key" \
    "kms-decrypt --ciphertext-blob fileb://$W/ct"; do
    # shellcheck disable=SC2086
    expect_error KMSHsmException 254 kms_at "$COPY" $cmd
    assert_not_contains "$ERR_OUT" "$WRONG_PIN" "  ... the message does not show the PIN given"
    assert_not_contains "$ERR_OUT" "$REAL_PIN" "  ... nor the token's PIN"
    assert_home_unchanged "$before" "$COPY" "  ... the home is unchanged"
done
# the real PIN still works after failed logins (no lock-out by a few tries)
printf '%s\n' "$REAL_PIN" >"$COPY/pin"
assert_eq "$(kms_at "$COPY" kms-decrypt --ciphertext-blob "fileb://$W/ct" --output text --query Plaintext \
    | base64 -d)" "bad input test plaintext" "the right PIN works again"

# PIN file readable by others
new_copy
chmod 644 "$COPY/pin"
before=$(home_digest "$COPY")
expect_error KMSHsmException 254 kms_at "$COPY" kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/pt"
assert_not_contains "$ERR_OUT" "$(head -n1 "$COPY/pin")" "  ... the message does not show the PIN"
assert_contains "$ERR_MSG" "chmod 600" "  ... the message says how to fix it"
assert_home_unchanged "$before" "$COPY" "  ... the pin file keeps mode 0644 and the home is unchanged"
chmod 640 "$COPY/pin"
expect_error KMSHsmException 254 kms_at "$COPY" generate-random --number-of-bytes 8

# PIN file missing or empty
new_copy
rm "$COPY/pin"
before=$(home_digest "$COPY")
expect_error KMSHsmException 254 kms_at "$COPY" kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/pt"
# (kmsctl's message is "cannot read the HSM PIN: " + the reason from reading the file)
assert_contains "$ERR_MSG" "cannot open $COPY/pin: No such file or directory" \
    "  ... the message gives the file and the reason"
assert_eq "$(grep -o 'cannot read the HSM PIN' <<<"$ERR_MSG" | wc -l)" 1 \
    "  ... the message is not garbled (prefix once)"
assert_home_unchanged "$before" "$COPY" "  ... no pin file is created"
new_copy
: >"$COPY/pin"
expect_error KMSHsmException 254 kms_at "$COPY" kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/pt"

# --home pointing at a missing folder, an empty folder, a file
MISSING="$TMP/missing/home"
for cmd in "describe-key --key-id $SYM" "list-keys" "create-key" \
    "kms-encrypt --key-id $SYM --plaintext fileb://$W/pt"; do
    # shellcheck disable=SC2086
    expect_error KMSHomeException 254 kms_at "$MISSING" $cmd
    assert_contains "$ERR_MSG" "kmsctl init" "  ... the message points at kmsctl init"
done
if [ -e "$TMP/missing" ]; then fail "--home of a missing folder created it"; else ok "the missing home is not created"; fi
mkdir "$TMP/emptyhome"
expect_error KMSHomeException 254 kms_at "$TMP/emptyhome" list-keys
assert_eq "$(ls -A "$TMP/emptyhome")" "" "an empty folder stays empty"
touch "$TMP/afile"
expect_error KMSHomeException 254 kms_at "$TMP/afile" list-keys
# KMS_HOME (lib.sh points it at a missing folder) is used without --home
expect_error KMSHomeException 254 "$KMSCTL" list-keys
assert_contains "$ERR_MSG" "$KMS_HOME" "  ... the message names \$KMS_HOME's folder"
if [ -e "$KMS_HOME" ]; then fail "\$KMS_HOME was created"; else ok "\$KMS_HOME is not created"; fi

# after all this, the original home still works and holds the same keys
assert_eq "$(kms list-keys --query Keys | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" 3 \
    "the home still has 3 keys"
assert_eq "$(kms kms-decrypt --ciphertext-blob "fileb://$W/ct" --output text --query Plaintext | base64 -d)" \
    "bad input test plaintext" "the home still decrypts"
