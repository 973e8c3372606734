#!/usr/bin/env bash
# Evidence that key material lives in the HSM only: the token's objects (read with pkcs11-tool,
# independently of kmsctl) are sensitive and never extractable, their values cannot be read, and
# neither the metadata database nor any other file of the home holds data keys or plaintexts.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v pkcs11-tool >/dev/null || { fail "pkcs11-tool (opensc) is not installed"; exit 1; }

init_home
W="$TMP/w"
mkdir "$W"
export SOFTHSM2_CONF="$HOME_DIR/hsm/softhsm2.conf"
PIN=$(head -n1 "$HOME_DIR/pin")
p11() { pkcs11-tool --module "$SOFTHSM_MODULE" --token-label kms "$@"; }

SYM=$(create_key SYMMETRIC_DEFAULT)
HMAC=$(create_key HMAC_256 GENERATE_VERIFY_MAC)
RSA=$(create_key RSA_2048 SIGN_VERIFY)
EC=$(create_key ECC_NIST_P256 SIGN_VERIFY)

# ---- the token's objects -----------------------------------------------------------------------
# The customer keys in token kms, the home's own objects in token internal-kms (config.json
# internal_token_label), the home id in both.
p11 --login --pin "$PIN" --list-objects >"$W/keys.txt" 2>"$W/objects.err"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label internal-kms --login --pin "$PIN" \
    --list-objects >"$W/internal.txt" 2>>"$W/objects.err"
assert_eq "$(grep -cE "label: +'?kms-internal:" "$W/keys.txt")" 1 \
    "token kms holds the customer keys and, of the home's own objects, the home id only"
assert_eq "$(grep -cE "label: +'?kms:" "$W/internal.txt")" 0 \
    "token internal-kms holds none of the customer keys"
cat "$W/keys.txt" "$W/internal.txt" >"$W/objects.txt"
# One line per object: CLASS<TAB>HEADER<TAB>LABEL<TAB>ACCESS<TAB>USAGE. pkcs11-tool prints
#   Secret Key Object; AES length 32
#     label:      kms:ID:v1
#     Usage:      encrypt, decrypt
#     Access:     sensitive, always sensitive, never extractable, local
# and for a data object (its flags go in the ACCESS column, its label without the quotes)
#   Data object 3
#     label:          'kms-internal:audit-anchor'
#     flags:           modifiable private
"$PY" - "$W/objects.txt" >"$W/objects.tsv" <<'PY'
import sys
objs, cur = [], None
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    line = line.rstrip("\n")
    if line and not line[0].isspace() and (" Object" in line or line.startswith("Data object")):
        cur = {"header": line, "label": "", "access": "", "usage": ""}
        objs.append(cur)
    elif cur is not None and ":" in line:
        k, _, v = line.strip().partition(":")
        k = {"flags": "access"}.get(k.strip().lower(), k.strip().lower())
        if k in ("label", "access", "usage"):
            cur[k] = v.strip().strip("'")
for o in objs:
    cls = "Data object" if o["header"].startswith("Data object") else o["header"].split(";")[0].strip()
    print("\t".join([cls, o["header"], o["label"], o["access"], o["usage"]]))
PY
labels=$(cut -f3 "$W/objects.tsv" | sort | uniq -c | awk '{print $2" x"$1}')
assert_eq "$labels" "$(printf '%s\n' "kms:$EC:v1 x2" "kms:$HMAC:v1 x1" "kms:$RSA:v1 x2" "kms:$SYM:v1 x1" \
    "kms-internal:iam-secrets x1" "kms-internal:audit-digest x2" "kms-internal:audit-anchor x1" \
    "kms-internal:audit-ack x1" "kms-internal:home-id x2" | sort)" \
    "the tokens hold exactly the objects of the four keys (one secret key each, two per key pair), the key sealing IAM secrets, the audit digest key pair, the audit trail's ack key, the audit trail's anchor and the home's id (in each)"

# obj CLASS LABEL FIELD: a field of the one object of that class and label
obj() {
    local n
    n=$(awk -F'\t' -v c="$1" -v l="$2" '$1 == c && $3 == l' "$W/objects.tsv" | wc -l)
    [ "$n" -eq 1 ] || { echo "<$n objects>"; return 0; }
    awk -F'\t' -v c="$1" -v l="$2" -v f="$3" '$1 == c && $3 == l {print $f}' "$W/objects.tsv"
}
# has_flag "a, b, c" FLAG: FLAG is one of the comma-separated items
has_flag() { tr ',' '\n' <<<"$1" | sed 's/^ *//; s/ *$//' | grep -qx "$2"; }

check_secret_object() { # CLASS ID|LABEL WHAT
    local access label="kms:$2:v1"
    [[ "$2" == kms-internal:* ]] && label=$2
    access=$(obj "$1" "$label" 4)
    for flag in "sensitive" "always sensitive" "never extractable" "local"; do
        if has_flag "$access" "$flag"; then ok "$3: access has '$flag'"; else
            fail "$3: access '$access' lacks '$flag'"; fi
    done
    if has_flag "$access" "extractable"; then fail "$3: access '$access' says extractable"; else
        ok "$3: not extractable"; fi
}
check_secret_object "Secret Key Object" "$SYM" "SYMMETRIC_DEFAULT key"
check_secret_object "Secret Key Object" "$HMAC" "HMAC_256 key"
check_secret_object "Private Key Object" "$RSA" "RSA_2048 private key"
check_secret_object "Private Key Object" "$EC" "ECC_NIST_P256 private key"
check_secret_object "Secret Key Object" "kms-internal:iam-secrets" "the key sealing IAM secrets"
check_secret_object "Private Key Object" "kms-internal:audit-digest" "the key signing audit digests"
# The key acknowledging audit records is read by the writer (after login) into locked memory.
ACK_FLAGS=$(obj "Data object" "kms-internal:audit-ack" 4)
[[ " $ACK_FLAGS " == *" private "* ]] &&
    ok "the audit ack key is a private data object (readable only after login)" ||
    fail "the audit ack key's flags: '$ACK_FLAGS'"
# The audit trail's anchor is no secret, but only a holder of the PIN may read or move it.
ANCHOR_FLAGS=$(obj "Data object" "kms-internal:audit-anchor" 4)
[[ " $ANCHOR_FLAGS " == *" private "* ]] &&
    ok "the audit anchor is a private data object (read and changed only after login)" ||
    fail "the audit anchor's flags: '$ANCHOR_FLAGS'"

assert_eq "$(obj "Secret Key Object" "kms:$SYM:v1" 2)" "Secret Key Object; AES length 32" \
    "SYMMETRIC_DEFAULT is a 256-bit AES key in the token"
assert_eq "$(obj "Secret Key Object" "kms:$SYM:v1" 5)" "encrypt, decrypt" \
    "the AES key only encrypts and decrypts (no wrap, unwrap, derive, sign)"
assert_eq "$(obj "Secret Key Object" "kms:$HMAC:v1" 2)" "Secret Key Object; Generic secret length 32" \
    "HMAC_256 is a 32-byte generic secret in the token"
hmac_usage=$(obj "Secret Key Object" "kms:$HMAC:v1" 5)
for u in encrypt decrypt wrap unwrap derive; do
    if has_flag "$hmac_usage" "$u"; then fail "HMAC key usage '$hmac_usage' has $u"; else
        ok "HMAC key cannot $u"; fi
done
assert_eq "$(obj "Private Key Object" "kms:$RSA:v1" 5)" "sign" "the RSA private key only signs (no decrypt)"
assert_eq "$(obj "Private Key Object" "kms:$EC:v1" 5)" "sign" "the EC private key only signs (no derive)"
assert_eq "$(obj "Public Key Object" "kms:$RSA:v1" 2)" "Public Key Object; RSA 2048 bits" "RSA public key object"
assert_match "$(obj "Public Key Object" "kms:$EC:v1" 2)" "^Public Key Object; EC +EC_POINT 256 bits$" \
    "EC public key object"

# The key objects are private objects: without login they are not even listed.
p11 --list-objects >"$W/public.txt" 2>&1 || true
if grep -Eq "^(Secret|Private) Key Object" "$W/public.txt"; then
    fail "secret or private key objects are visible without login: $(cat "$W/public.txt")"
else
    ok "no secret or private key object is visible without login"
fi

# The values cannot be read out.
for id in "$SYM" "$HMAC"; do
    rc=0
    p11 --login --pin "$PIN" --read-object --type secrkey --label "kms:$id:v1" \
        -o "$W/value.bin" >"$W/read.out" 2>"$W/read.err" || rc=$?
    assert_ne "$rc" 0 "pkcs11-tool --read-object of secret key kms:$id:v1 fails"
    if [ -s "$W/value.bin" ] || [ -s "$W/read.out" ]; then
        fail "reading kms:$id:v1 gave bytes"
    else
        ok "reading kms:$id:v1 gives no key bytes"
    fi
    assert_contains "$(cat "$W/read.err")" "CKR_ATTRIBUTE_SENSITIVE" "  ... the HSM says the value is sensitive"
    rm -f "$W/value.bin"
    # without -o, nothing reaches stdout either
    rc=0
    p11 --login --pin "$PIN" --read-object --type secrkey --label "kms:$id:v1" >"$W/read.out" 2>/dev/null || rc=$?
    assert_eq "$rc:$(stat -c %s "$W/read.out")" "1:0" "  ... and writes nothing to stdout"
done

# The public keys in the token are the ones kmsctl hands out.
for id in "$RSA" "$EC"; do
    p11 --login --pin "$PIN" --read-object --type pubkey --label "kms:$id:v1" -o "$W/pub.der" >/dev/null 2>&1
    kms get-public-key --key-id "$id" --output text --query PublicKey | base64 -d >"$W/kms-pub.der"
    assert_files_equal "$W/kms-pub.der" "$W/pub.der" "get-public-key of $id is the token's public key"
done

# ---- nothing secret outside the HSM ------------------------------------------------------------
: >"$W/secrets.list"
for i in 1 2 3 4 5; do
    kms generate-data-key --key-id "$SYM" --key-spec AES_256 --output text --query Plaintext >>"$W/secrets.list"
done
kms generate-data-key --key-id "$SYM" --number-of-bytes 1024 --encryption-context use=test \
    --output text --query Plaintext >>"$W/secrets.list"
kms generate-data-key --key-id "$SYM" --key-spec AES_128 --output text --query Plaintext >>"$W/secrets.list"
for i in 1 2 3; do
    head -c 64 /dev/urandom >"$W/pt$i"
    kms kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/pt$i" --encryption-context n="$i" \
        --output text --query CiphertextBlob | base64 -d >"$W/ct$i"
    { b64file "$W/pt$i"; echo; } >>"$W/secrets.list"
done
printf 'PLAINTEXT-MARKER-%s-never-stored' "$RANDOM$RANDOM" >"$W/pt-marker"
kms kms-encrypt --key-id "$SYM" --plaintext "fileb://$W/pt-marker" --output text --query CiphertextBlob \
    | base64 -d >"$W/ct-marker"
{ b64file "$W/pt-marker"; echo; } >>"$W/secrets.list"
# re-encrypt and decrypt pass plaintexts through the service too
kms kms-re-encrypt --ciphertext-blob "fileb://$W/ct1" --source-encryption-context n=1 \
    --destination-key-id "$SYM" >/dev/null
kms kms-decrypt --ciphertext-blob "fileb://$W/ct2" --encryption-context n=2 \
    --output text --query Plaintext >"$W/dec2"
assert_eq "$(cat "$W/dec2")" "$(b64file "$W/pt2")" "decrypt works (sanity)"
kms generate-mac --key-id "$HMAC" --message "fileb://$W/pt3" --mac-algorithm HMAC_SHA_256 >/dev/null
kms sign --key-id "$EC" --message "fileb://$W/pt-marker" --signing-algorithm ECDSA_SHA_256 >/dev/null
assert_eq "$(wc -l <"$W/secrets.list")" 11 "eleven secrets to look for"

# scan FILE...: every secret of secrets.list, as raw bytes, base64 or hex, in none of the files
scan() {
    "$PY" - "$W/secrets.list" "$@" <<'PY'
import base64, binascii, sys
secrets = [base64.b64decode(l.strip()) for l in open(sys.argv[1]) if l.strip()]
found = 0
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    low = data.lower()
    for i, s in enumerate(secrets):
        for form, needle, hay in (("raw", s, data), ("base64", base64.b64encode(s), data),
                                  ("hex", binascii.hexlify(s), low)):
            # a 16-byte window is enough to call it a leak
            probe = needle[:16] if form == "raw" else needle[:24]
            if probe in hay:
                print(f"secret #{i} ({len(s)} bytes) found as {form} in {path}")
                found += 1
sys.exit(1 if found else 0)
PY
}
db_files=("$HOME_DIR/kms.db")
[ -f "$HOME_DIR/kms.db-wal" ] && db_files+=("$HOME_DIR/kms.db-wal")
if out=$(scan "${db_files[@]}"); then
    ok "no data key or plaintext in ${db_files[*]##*/}"
else
    fail "key material in the database: $out"
fi
mapfile -t all_files < <(find "$HOME_DIR" -type f)
if out=$(scan "${all_files[@]}"); then
    ok "no data key or plaintext in any of the ${#all_files[@]} files of the home"
else
    fail "key material in the home: $out"
fi

# Only keys.public_key holds BLOB data, and only for the asymmetric keys.
"$PY" - "$HOME_DIR/kms.db" >"$W/blobs.txt" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
    for col in db.execute(f'pragma table_info("{table}")'):
        name = col[1]
        n = db.execute(f'select count(*) from "{table}" where typeof("{name}") = \'blob\' '
                       f'and length("{name}") > 0').fetchone()[0]
        if n:
            print(f"{table}.{name} {n}")
PY
assert_eq "$(sort "$W/blobs.txt")" "$(printf '%s\n' "iam_access_keys.secret_sealed 1" "keys.public_key 2")" \
    "the only BLOB data is keys.public_key, of the two asymmetric keys, and the admin's sealed secret access key"
for id in "$RSA" "$EC"; do
    "$PY" -c '
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
row = db.execute("select public_key from keys where key_id = ?", (sys.argv[2],)).fetchone()
open(sys.argv[3], "wb").write(row[0] if row and row[0] else b"")' "$HOME_DIR/kms.db" "$id" "$W/db-pub.der"
    kms get-public-key --key-id "$id" --output text --query PublicKey | base64 -d >"$W/kms-pub.der"
    assert_files_equal "$W/db-pub.der" "$W/kms-pub.der" "keys.public_key of $id is its public key"
done
# and no long text value looks like key material either (base64 or hex of 16+ bytes), other than
# the ids, ARNs and descriptions the metadata needs
"$PY" - "$HOME_DIR/kms.db" >"$W/texts.txt" <<'PY'
import re, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
    cols = [c[1] for c in db.execute(f'pragma table_info("{table}")')]
    for row in db.execute(f'select * from "{table}"'):
        for c, v in zip(cols, row):
            if isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9+/=]{24,}|[0-9a-fA-F]{32,}", v):
                print(f"{table}.{c}: {v[:40]}")
PY
assert_eq "$(cat "$W/texts.txt")" "" "no text column holds base64 or hex blobs"
