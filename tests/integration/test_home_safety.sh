#!/usr/bin/env bash
# A home's files are trusted only when they are the caller's own (issue 15 point 3, OpenSSH's
# StrictModes), and a copied home never uses the original's token (point 2).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ME=$(id -u)
# Everything of a home, with owners, modes, sizes and times: a refused open changes nothing.
snapshot() { find "$1" -printf '%p %y %m %u %s %T@\n' | sort; }
assert_same() {
    local after
    after=$(snapshot "$2")
    if [ "$1" == "$after" ]; then ok "$3"; else
        fail "$3: $({ diff <(echo "$1") <(echo "$after") || true; } | head -10 | tr '\n' ' ')"
    fi
}

init_home
H=$HOME_DIR
assert_eq "$(kms list-keys --query Keys --output json)" "[]" "a fresh home opens"
KEY=$(kms create-key --query KeyMetadata.KeyId --output text)
kms lookup-events --max-items 1 >/dev/null # the trail's index, outside the trail
TOKEN_SUBDIR=hsm/tokens/$(ls "$H/hsm/tokens" | head -1)

# ---- SoftHSM2's token file, emptied by a login that was killed ----------------------------------
# SoftHSM2 rewrites token.object in place at every login; a kill in between leaves it empty. The
# copy the last open made puts it back, and the home's keys stay usable.
TOKEN_FILE=$H/$TOKEN_SUBDIR/token.object
BACKUP=$H/hsm/token-backup/$(basename "$TOKEN_SUBDIR")
[ -s "$BACKUP" ] && ok "an open keeps a copy of the token file in hsm/token-backup" ||
    fail "no copy of the token file: $(ls -la "$H/hsm" 2>&1)"
: >"$TOKEN_FILE"
assert_eq "$(kms describe-key --key-id "$KEY" --query KeyMetadata.KeyId --output text)" "$KEY" \
    "an emptied token file is put back from the copy: the key is still there"
[ -s "$TOKEN_FILE" ] && ok "the token file is whole again" || fail "the token file is still empty"

# ---- StrictModes: group-writable or foreign-owned files are refused -----------------------------
for entry in "" config.json credentials pin hsm hsm/softhsm2.conf hsm/tokens audit kms.db \
    audit/segments audit/digests audit-index.db "$TOKEN_SUBDIR" hsm/token-backup; do
    p=$H${entry:+/$entry}
    mode=$(stat -c %a "$p")
    chmod g+w "$p"
    newmode=$(printf '%04o' "0$(stat -c %a "$p")")
    before=$(snapshot "$H")
    expect_error KMSHomeException 254 kms describe-key --key-id "$KEY"
    assert_eq "$ERR_MSG" "$p is writable by group or others (mode $newmode), who could change what this KMS home trusts; run \`chmod go-w $p\`" \
        "  ... a group-writable ${entry:-home directory} is refused, saying the chmod that fixes it"
    assert_same "$before" "$H" "  ... and nothing in the home changes"
    chmod "$mode" "$p"

    chown nobody "$p"
    before=$(snapshot "$H")
    expect_error KMSHomeException 254 kms describe-key --key-id "$KEY"
    assert_eq "$ERR_MSG" "$p is owned by uid $(id -u nobody), not by this user (uid $ME), who would trust what it holds; if it is yours, run \`chown $ME $p\`, else use a KMS home of your own" \
        "  ... a ${entry:-home directory} owned by nobody is refused, saying the chown that fixes it"
    assert_same "$before" "$H" "  ... and nothing in the home changes"
    chown "$ME" "$p"
done
assert_eq "$(kms describe-key --key-id "$KEY" --query KeyMetadata.KeyId --output text)" "$KEY" \
    "the home opens again once the modes are fixed"

# ---- pkcs11_module: an absolute path to a trusted file -----------------------------------------
set_module() {
    "$PY" - "$H/config.json" "$1" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["pkcs11_module"] = sys.argv[2]
open(sys.argv[1], "w").write(json.dumps(cfg, indent=2))
PY
}
set_module libsofthsm2.so
before=$(snapshot "$H")
expect_error KMSHomeException 254 kms describe-key --key-id "$KEY"
assert_contains "$ERR_MSG" "pkcs11_module in $H/config.json must be an absolute path, not \"libsofthsm2.so\"" \
    "  ... a relative pkcs11_module is refused"
assert_same "$before" "$H" "  ... and nothing in the home changes"

mkdir -m 700 "$TMP/mods"
cp "$(readlink -f "$SOFTHSM_MODULE")" "$TMP/mods/evil.so"
chmod 666 "$TMP/mods/evil.so"
set_module "$TMP/mods/evil.so"
expect_error KMSHomeException 254 kms describe-key --key-id "$KEY"
assert_eq "$ERR_MSG" "pkcs11_module in $H/config.json: $TMP/mods/evil.so is writable by group or others (mode 0666); run \`chmod go-w $TMP/mods/evil.so\` if it is to be trusted" \
    "  ... a world-writable module is refused"
chmod 644 "$TMP/mods/evil.so"
chown nobody "$TMP/mods/evil.so"
expect_error KMSHomeException 254 kms describe-key --key-id "$KEY"
assert_contains "$ERR_MSG" "$TMP/mods/evil.so is owned by uid $(id -u nobody), neither root nor this user" \
    "  ... a module owned by another user is refused"
chown "$ME" "$TMP/mods/evil.so"
ln -s "$TMP/mods/evil.so" "$TMP/mods/link.so"
chmod 777 "$TMP/mods"
set_module "$TMP/mods/link.so"
expect_error KMSHomeException 254 kms describe-key --key-id "$KEY"
assert_contains "$ERR_MSG" "$TMP/mods is writable by group or others (mode 0777)" \
    "  ... a module (behind a symlink) in a world-writable directory is refused"
set_module "$SOFTHSM_MODULE"
assert_eq "$(kms describe-key --key-id "$KEY" --query KeyMetadata.KeyId --output text)" "$KEY" \
    "the system's module (a symlink to a root-owned file) is accepted"
expect_error KMSHomeException 254 "$KMSCTL" --home "$TMP/h-rel" init --pkcs11-module libsofthsm2.so
[ ! -e "$TMP/h-rel" ] && ok "  ... init refuses a relative module and creates nothing" ||
    fail "init with a relative module created $TMP/h-rel"

# ---- a copied home: refused until it names its own token ----------------------------------------
COPY="$TMP/copy"
cp -a "$H" "$COPY"
orig_tokens=$(snapshot "$H/hsm/tokens")
orig_home=$(snapshot "$H")
expect_error KMSHomeException 254 kms_at "$COPY" create-key
assert_contains "$ERR_MSG" "$COPY/hsm/softhsm2.conf names the token directory $H/hsm/tokens, outside this home $COPY" \
    "  ... a copied home is refused: its token directory is the original's"
assert_contains "$ERR_MSG" "sed -i 's|^directories.tokendir = .*|directories.tokendir = $COPY/hsm/tokens|' $COPY/hsm/softhsm2.conf" \
    "  ... the message says how to move a home"
assert_same "$orig_home" "$H" "  ... the original home (its token too) is untouched"
# the command the message gives makes the copy a home of its own
cmd=$(sed -n 's/.*run `\(sed -i .*\)`.*/\1/p' <<<"$ERR_MSG")
eval "$cmd"
CKEY=$(kms_at "$COPY" create-key --query KeyMetadata.KeyId --output text)
assert_match "$CKEY" '^[0-9a-f-]{36}$' "the copy works after the fix its message gives"
assert_same "$orig_tokens" "$H/hsm/tokens" "  ... and its operations never touch the original's token"
assert_eq "$(kms describe-key --key-id "$KEY" --query KeyMetadata.KeyId --output text)" "$KEY" \
    "the original still works"
expect_error NotFoundException 254 kms describe-key --key-id "$CKEY"

# ---- the token's home id ------------------------------------------------------------------------
H2="$TMP/other"
init_home "$H2"
id1=$(json_get home_id <"$H/config.json")
id2=$(json_get home_id <"$H2/config.json")
assert_match "$id1" '^[0-9a-f-]{36}$' "init writes a home id into config.json"
assert_ne "$id1" "$id2" "  ... a different one for each home"
# H2 given H's token (and PIN): its open is refused, whatever the PIN
rm -rf "$H2/hsm/tokens"
cp -a "$H/hsm/tokens" "$H2/hsm/tokens"
cp -a "$H/pin" "$H2/pin"
expect_error KMSHomeException 254 kms_at "$H2" list-keys
assert_contains "$ERR_MSG" "belongs to another KMS home (id $id1), not to $H2 (id $id2)" \
    "  ... a home whose token holds another home's id is refused"
# init on a token that already belongs to a home (any module but SoftHSM's default is used as it
# is: here SoftHSM's own library, pointed at H's token)
before=$(snapshot "$H/hsm/tokens" | grep -v '/token.object ')
expect_error KMSHomeException 254 env SOFTHSM2_CONF="$H/hsm/softhsm2.conf" \
    "$KMSCTL" --home "$TMP/h3" init --pkcs11-module "$(readlink -f "$SOFTHSM_MODULE")" --pin-file "$H/pin"
assert_contains "$ERR_MSG" "already belongs to the KMS home with id $id1" \
    "init refuses a token that belongs to another home"
[ ! -e "$TMP/h3" ] && ok "  ... and creates no home" || fail "init left $TMP/h3"
assert_eq "$(snapshot "$H/hsm/tokens" | grep -v '/token.object ' | grep -c .)" "$(grep -c . <<<"$before")" \
    "  ... and adds no object to that token"
assert_eq "$(kms describe-key --key-id "$KEY" --query KeyMetadata.KeyId --output text)" "$KEY" \
    "the original still works"
