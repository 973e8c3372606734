#!/usr/bin/env bash
# Key lifecycle through kmsctl: init, create-key (every key spec), describe-key by every kind of
# key reference, list-keys paging, descriptions, enable/disable, scheduled deletion, aliases.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- init --------------------------------------------------------------------------------------
init_home
out=$(cat "$TMP/init.json")
assert_eq "$(json_get Home <<<"$out")" "$HOME_DIR" "init prints the home"
ACCOUNT=$(json_get AccountId <<<"$out")
assert_match "$ACCOUNT" '^[0-9]{12}$' "init prints a 12-digit AccountId"
assert_eq "$(json_get Region <<<"$out")" "us-east-1" "init prints the default region"

for f in config.json pin so-pin kms.db hsm/softhsm2.conf; do
    if [ -f "$HOME_DIR/$f" ]; then ok "init created $f"; else fail "init did not create $f"; fi
done
if [ -d "$HOME_DIR/hsm/tokens" ] && [ -n "$(ls -A "$HOME_DIR/hsm/tokens")" ]; then
    ok "init created a token under hsm/tokens"
else
    fail "hsm/tokens is missing or empty"
fi
assert_eq "$(stat -c %a "$HOME_DIR/pin")" 600 "pin is mode 0600"
assert_eq "$(stat -c %a "$HOME_DIR/so-pin")" 600 "so-pin is mode 0600"
cfg=$(cat "$HOME_DIR/config.json")
assert_eq "$(json_get account_id <<<"$cfg")" "$ACCOUNT" "config.json account_id"
assert_eq "$(json_get region <<<"$cfg")" "us-east-1" "config.json region"
assert_eq "$(json_get pkcs11_module <<<"$cfg")" "$SOFTHSM_MODULE" "config.json pkcs11_module"
assert_eq "$(json_get token_label <<<"$cfg")" "kms" "config.json token_label"
assert_eq "$(json_get pin_source <<<"$cfg")" "file:pin" "config.json pin_source"
assert_eq "$(json_get softhsm_conf <<<"$cfg")" "hsm/softhsm2.conf" "config.json softhsm_conf"
assert_match "$(head -n1 "$HOME_DIR/pin")" '^.{4,}$' "the pin file holds a PIN"

# A second init refuses and changes nothing, whatever its options.
before=$(home_digest "$HOME_DIR")
expect_error AlreadyExistsException 254 kms init
assert_home_unchanged "$before" "$HOME_DIR" "init on an existing home changes nothing"
expect_error AlreadyExistsException 254 kms init --region eu-west-1 --account-id 111122223333
assert_home_unchanged "$before" "$HOME_DIR" "init with other options changes nothing either"

# init with explicit region and account id: they show in the key ARNs.
H2="$TMP/home2"
init_home "$H2" --region eu-west-1 --account-id 111122223333
out=$(cat "$TMP/init.json")
assert_eq "$(json_get AccountId <<<"$out")" "111122223333" "init --account-id"
assert_eq "$(json_get Region <<<"$out")" "eu-west-1" "init --region"
arn=$(kms_at "$H2" create-key --output text --query KeyMetadata.Arn)
assert_match "$arn" '^arn:aws:kms:eu-west-1:111122223333:key/[0-9a-f-]{36}$' "ARN of home2's key"
expect_error ValidationException 254 kms_at "$TMP/home3" init --account-id 12345
if [ -e "$TMP/home3" ]; then fail "failed init left $TMP/home3 behind"; else ok "failed init leaves nothing"; fi

# ---- create-key: every key spec ----------------------------------------------------------------
declare -A KEY
NOW=$(date +%s)
check_key() { # check_key ID SPEC USAGE ALGORITHM_MEMBER ALGORITHMS_JSON DESCRIPTION
    local md
    md=$(kms describe-key --key-id "$1" --query KeyMetadata)
    assert_eq "$(json_get KeyId <<<"$md")" "$1" "$2: KeyId"
    assert_eq "$(json_get Arn <<<"$md")" "arn:aws:kms:us-east-1:$ACCOUNT:key/$1" "$2: Arn"
    assert_eq "$(json_get AWSAccountId <<<"$md")" "$ACCOUNT" "$2: AWSAccountId"
    assert_eq "$(json_get KeySpec <<<"$md")" "$2" "$2: KeySpec"
    assert_eq "$(json_get CustomerMasterKeySpec <<<"$md")" "$2" "$2: CustomerMasterKeySpec"
    assert_eq "$(json_get KeyUsage <<<"$md")" "$3" "$2: KeyUsage"
    assert_eq "$(json_get KeyState <<<"$md")" "Enabled" "$2: KeyState"
    assert_eq "$(json_get Enabled <<<"$md")" "true" "$2: Enabled"
    assert_eq "$(json_get Origin <<<"$md")" "AWS_KMS" "$2: Origin"
    assert_eq "$(json_get KeyManager <<<"$md")" "CUSTOMER" "$2: KeyManager"
    assert_eq "$(json_get Description <<<"$md")" "$6" "$2: Description"
    assert_eq "$(json_get "$4" <<<"$md")" "$5" "$2: $4"
    local cd raw
    raw=$(json_get CreationDate <<<"$md")
    assert_match "$raw" '^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\.[0-9]{6})?\+00:00$' \
        "$2: CreationDate in ISO 8601 with an offset, as the aws CLI v2 prints it"
    cd=$(epoch "$raw")
    if [[ "$cd" =~ ^[0-9]+(\.[0-9]+)?$ ]] && [ "${cd%.*}" -ge $((NOW - 5)) ] \
        && [ "${cd%.*}" -le $(($(date +%s) + 5)) ]; then
        ok "$2: CreationDate is now"
    else
        fail "$2: CreationDate $cd is not about $NOW"
    fi
}

out=$(kms create-key --description "the symmetric key")
SYM=$(json_get KeyMetadata.KeyId <<<"$out")
assert_match "$SYM" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' \
    "create-key gives a UUIDv4 key id"
assert_eq "$(json_get KeyMetadata.KeySpec <<<"$out")" "SYMMETRIC_DEFAULT" "create-key default spec"
check_key "$SYM" SYMMETRIC_DEFAULT ENCRYPT_DECRYPT EncryptionAlgorithms '["SYMMETRIC_DEFAULT"]' \
    "the symmetric key"
SYM2=$(create_key SYMMETRIC_DEFAULT ENCRYPT_DECRYPT)
check_key "$SYM2" SYMMETRIC_DEFAULT ENCRYPT_DECRYPT EncryptionAlgorithms '["SYMMETRIC_DEFAULT"]' ""

for bits in 224 256 384 512; do
    KEY[HMAC_$bits]=$(create_key "HMAC_$bits" GENERATE_VERIFY_MAC)
    check_key "${KEY[HMAC_$bits]}" "HMAC_$bits" GENERATE_VERIFY_MAC MacAlgorithms \
        "[\"HMAC_SHA_$bits\"]" ""
done
RSA_ALGS='["RSASSA_PKCS1_V1_5_SHA_256","RSASSA_PKCS1_V1_5_SHA_384","RSASSA_PKCS1_V1_5_SHA_512","RSASSA_PSS_SHA_256","RSASSA_PSS_SHA_384","RSASSA_PSS_SHA_512"]'
for spec in RSA_2048 RSA_3072 RSA_4096; do
    KEY[$spec]=$(create_key "$spec" SIGN_VERIFY)
    md=$(kms describe-key --key-id "${KEY[$spec]}" --query KeyMetadata)
    algs=$(json_get SigningAlgorithms <<<"$md" | "$PY" -c 'import json,sys; print(json.dumps(sorted(json.load(sys.stdin)),separators=(",",":")))')
    assert_eq "$algs" "$RSA_ALGS" "$spec: SigningAlgorithms"
    assert_eq "$(json_get KeySpec <<<"$md")" "$spec" "$spec: KeySpec"
    assert_eq "$(json_get KeyUsage <<<"$md")" "SIGN_VERIFY" "$spec: KeyUsage"
    assert_eq "$(json_get KeyState <<<"$md")" "Enabled" "$spec: KeyState"
done
KEY[ECC_NIST_P256]=$(create_key ECC_NIST_P256 SIGN_VERIFY)
check_key "${KEY[ECC_NIST_P256]}" ECC_NIST_P256 SIGN_VERIFY SigningAlgorithms '["ECDSA_SHA_256"]' ""
KEY[ECC_NIST_P384]=$(create_key ECC_NIST_P384 SIGN_VERIFY)
check_key "${KEY[ECC_NIST_P384]}" ECC_NIST_P384 SIGN_VERIFY SigningAlgorithms '["ECDSA_SHA_384"]' ""

# Incompatible or unknown specs and usages are refused.
expect_error ValidationException 254 kms create-key --key-spec HMAC_256 --key-usage ENCRYPT_DECRYPT
expect_error ValidationException 254 kms create-key --key-spec ECC_NIST_P256 --key-usage ENCRYPT_DECRYPT
expect_error ValidationException 254 kms create-key --key-spec SYMMETRIC_DEFAULT --key-usage SIGN_VERIFY
expect_error ValidationException 254 kms create-key --key-spec RSA_1024 --key-usage SIGN_VERIFY
expect_error UnsupportedOperationException 254 kms create-key --multi-region
NKEYS=12  # SYM, SYM2, 4 HMAC, 3 RSA, 2 ECC ... counted below
ALL_IDS=$(printf '%s\n' "$SYM" "$SYM2" "${KEY[@]}" | sort)
NKEYS=$(wc -l <<<"$ALL_IDS")
assert_eq "$NKEYS" 11 "eleven keys created"

# ---- describe-key by id, ARN, alias, alias ARN -------------------------------------------------
kms create-alias --alias-name alias/app --target-key-id "$SYM" >"$TMP/out"
assert_eq "$(cat "$TMP/out")" "" "create-alias prints nothing"
for ref in "$SYM" "arn:aws:kms:us-east-1:$ACCOUNT:key/$SYM" alias/app \
    "arn:aws:kms:us-east-1:$ACCOUNT:alias/app"; do
    assert_eq "$(kms describe-key --key-id "$ref" --output text --query KeyMetadata.KeyId)" "$SYM" \
        "describe-key --key-id $ref"
done
expect_error NotFoundException 254 kms describe-key --key-id alias/nope
expect_error NotFoundException 254 kms describe-key --key-id 00000000-0000-4000-8000-000000000000
# Another account's key ARN: no key policy of that account allows us (AWS's answer too); another
# region's: no such key here.
expect_error AccessDeniedException 254 kms describe-key \
    --key-id "arn:aws:kms:us-east-1:000000000000:key/$SYM"
expect_error NotFoundException 254 kms describe-key \
    --key-id "arn:aws:kms:eu-north-9:$(kms describe-key --key-id "$SYM" --output text --query KeyMetadata.AWSAccountId):key/$SYM"

# ---- list-keys and paging ----------------------------------------------------------------------
listed=$(kms list-keys | "$PY" -c '
import json,sys
d = json.load(sys.stdin)
assert "Truncated" not in d, d  # every page, merged, as the aws CLI prints them
assert "NextMarker" not in d, d
for k in d["Keys"]:
    assert k["KeyArn"].endswith(":key/" + k["KeyId"]), k
    print(k["KeyId"])' | sort)
assert_eq "$listed" "$ALL_IDS" "list-keys lists exactly the created keys"

paged=""
marker=""
pages=0
while :; do
    if [ -n "$marker" ]; then
        page=$(kms list-keys --limit 3 --marker "$marker")
    else
        page=$(kms list-keys --no-paginate --limit 3)
    fi
    pages=$((pages + 1))
    n=$(json_get Keys <<<"$page" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
    ids=$(json_get Keys <<<"$page" | "$PY" -c 'import json,sys; [print(k["KeyId"]) for k in json.load(sys.stdin)]')
    paged+="$ids"$'\n'
    if [ "$(json_get Truncated <<<"$page")" = true ]; then
        [ "$n" -eq 3 ] || fail "page $pages is truncated but has $n keys"
        marker=$(json_get NextMarker <<<"$page")
        [ "$marker" != "<missing>" ] || { fail "truncated page without NextMarker"; break; }
    else
        assert_eq "$(json_get NextMarker <<<"$page")" "<missing>" "last page has no NextMarker"
        assert_eq "$n" 2 "last page holds the remaining 2 keys"
        break
    fi
    [ "$pages" -le 10 ] || { fail "list-keys paging does not end"; break; }
done
assert_eq "$pages" 4 "11 keys in pages of 3 make 4 pages"
assert_eq "$(sed '/^$/d' <<<"$paged" | sort)" "$ALL_IDS" "pages together list every key once"
assert_eq "$(sed '/^$/d' <<<"$paged" | sort | uniq -d)" "" "no key listed on two pages"
assert_eq "$(kms list-keys --limit 1 --output text --query 'Keys[0].KeyId')" \
    "$(head -n1 <<<"$paged")" "--limit 1 gives the first key"
expect_error InvalidMarkerException 254 kms list-keys --marker not-a-marker
expect_error ValidationException 254 kms list-keys --limit 0
expect_error ValidationException 254 kms list-keys --limit 1001

# ---- update-key-description --------------------------------------------------------------------
kms update-key-description --key-id alias/app --description "second description" >"$TMP/out"
assert_eq "$(cat "$TMP/out")" "" "update-key-description prints nothing"
assert_eq "$(kms describe-key --key-id "$SYM" --output text --query KeyMetadata.Description)" \
    "second description" "description updated"
kms update-key-description --key-id "$SYM" --description "" >/dev/null
assert_eq "$(kms describe-key --key-id "$SYM" --query KeyMetadata.Description)" '""' \
    "description may be emptied"
long=$(head -c 8192 /dev/zero | tr '\0' d)
kms update-key-description --key-id "$SYM" --description "$long" >/dev/null
assert_eq "$(kms describe-key --key-id "$SYM" --output text --query KeyMetadata.Description)" \
    "$long" "8192-character description"
expect_error ValidationException 254 kms update-key-description --key-id "$SYM" \
    --description "${long}d"

# ---- disable / enable --------------------------------------------------------------------------
kms disable-key --key-id "$SYM2" >"$TMP/out"
assert_eq "$(cat "$TMP/out")" "" "disable-key prints nothing"
md=$(kms describe-key --key-id "$SYM2" --query KeyMetadata)
assert_eq "$(json_get KeyState <<<"$md")" Disabled "disabled key: KeyState"
assert_eq "$(json_get Enabled <<<"$md")" false "disabled key: Enabled"
kms enable-key --key-id "$SYM2" >/dev/null
md=$(kms describe-key --key-id "$SYM2" --query KeyMetadata)
assert_eq "$(json_get KeyState <<<"$md")" Enabled "enabled again: KeyState"
assert_eq "$(json_get Enabled <<<"$md")" true "enabled again: Enabled"
expect_error NotFoundException 254 kms disable-key --key-id 00000000-0000-4000-8000-000000000000

# ---- schedule-key-deletion / cancel-key-deletion -----------------------------------------------
t0=$(date +%s)
out=$(kms schedule-key-deletion --key-id "$SYM2")
t1=$(date +%s)
assert_eq "$(json_get KeyId <<<"$out")" "arn:aws:kms:us-east-1:$ACCOUNT:key/$SYM2" \
    "schedule-key-deletion gives the key ARN"
assert_eq "$(json_get KeyState <<<"$out")" PendingDeletion "schedule-key-deletion: KeyState"
assert_eq "$(json_get PendingWindowInDays <<<"$out")" 30 "default pending window is 30 days"
dd=$(epoch "$(json_get DeletionDate <<<"$out")")
if [ "$dd" -ge $((t0 + 30 * 86400)) ] && [ "$dd" -le $((t1 + 30 * 86400 + 1)) ]; then
    ok "DeletionDate is 30 days ahead"
else
    fail "DeletionDate $dd is not 30 days after $t0"
fi
md=$(kms describe-key --key-id "$SYM2" --query KeyMetadata)
assert_eq "$(json_get KeyState <<<"$md")" PendingDeletion "describe: PendingDeletion"
assert_eq "$(json_get Enabled <<<"$md")" false "describe: a key pending deletion is not Enabled"
assert_eq "$(json_get DeletionDate <<<"$md")" "$(json_get DeletionDate <<<"$out")" \
    "describe shows the DeletionDate"
expect_error KMSInvalidStateException 254 kms enable-key --key-id "$SYM2"
expect_error KMSInvalidStateException 254 kms schedule-key-deletion --key-id "$SYM2"

out=$(kms cancel-key-deletion --key-id "$SYM2")
assert_eq "$(json_get KeyId <<<"$out")" "arn:aws:kms:us-east-1:$ACCOUNT:key/$SYM2" \
    "cancel-key-deletion gives the key ARN"
md=$(kms describe-key --key-id "$SYM2" --query KeyMetadata)
assert_eq "$(json_get KeyState <<<"$md")" Disabled "cancelled deletion leaves the key Disabled"
assert_eq "$(json_get Enabled <<<"$md")" false "cancelled deletion: Enabled false"
assert_eq "$(json_get DeletionDate <<<"$md")" "<missing>" "cancelled deletion: no DeletionDate"
expect_error KMSInvalidStateException 254 kms cancel-key-deletion --key-id "$SYM2"
kms enable-key --key-id "$SYM2" >/dev/null
assert_eq "$(kms describe-key --key-id "$SYM2" --output text --query KeyMetadata.KeyState)" \
    Enabled "enable after cancel"

t0=$(date +%s)
out=$(kms schedule-key-deletion --key-id "${KEY[HMAC_224]}" --pending-window-in-days 7)
assert_eq "$(json_get PendingWindowInDays <<<"$out")" 7 "--pending-window-in-days 7"
dd=$(epoch "$(json_get DeletionDate <<<"$out")")
if [ "$dd" -ge $((t0 + 7 * 86400)) ] && [ "$dd" -le $(($(date +%s) + 7 * 86400 + 1)) ]; then
    ok "DeletionDate is 7 days ahead"
else
    fail "DeletionDate $dd is not 7 days after $t0"
fi
kms cancel-key-deletion --key-id "${KEY[HMAC_224]}" >/dev/null
for days in 6 31 0; do
    expect_error ValidationException 254 kms schedule-key-deletion --key-id "$SYM2" \
        --pending-window-in-days "$days"
done
assert_eq "$(kms describe-key --key-id "$SYM2" --output text --query KeyMetadata.KeyState)" \
    Enabled "a refused schedule-key-deletion leaves the key Enabled"

# ---- aliases -----------------------------------------------------------------------------------
expect_error AlreadyExistsException 254 kms create-alias --alias-name alias/app --target-key-id "$SYM2"
expect_error InvalidAliasNameException 254 kms create-alias --alias-name alias/aws/x --target-key-id "$SYM"
expect_error InvalidAliasNameException 254 kms create-alias --alias-name app2 --target-key-id "$SYM"
expect_error ValidationException 254 kms create-alias --alias-name 'alias/bad name' --target-key-id "$SYM"
expect_error NotFoundException 254 kms create-alias --alias-name alias/x \
    --target-key-id 00000000-0000-4000-8000-000000000000
kms create-alias --alias-name alias/mac --target-key-id "${KEY[HMAC_256]}" >/dev/null

aliases=$(kms list-aliases | "$PY" -c '
import json,sys
d = json.load(sys.stdin)
assert "Truncated" not in d, d
for a in sorted(d["Aliases"], key=lambda a: a["AliasName"]):
    print(a["AliasName"], a["AliasArn"], a["TargetKeyId"])')
assert_eq "$aliases" "alias/app arn:aws:kms:us-east-1:$ACCOUNT:alias/app $SYM
alias/mac arn:aws:kms:us-east-1:$ACCOUNT:alias/mac ${KEY[HMAC_256]}" "list-aliases"
assert_eq "$(kms list-aliases --key-id "${KEY[HMAC_256]}" --output text --query 'Aliases[0].AliasName')" \
    alias/mac "list-aliases --key-id"
assert_eq "$(kms list-aliases --key-id "$SYM2" --query Aliases)" "[]" \
    "list-aliases of a key without aliases"
page=$(kms list-aliases --no-paginate --limit 1)
assert_eq "$(json_get Truncated <<<"$page")" true "list-aliases --limit 1 is truncated"
page2=$(kms list-aliases --limit 1 --marker "$(json_get NextMarker <<<"$page")")
assert_eq "$(json_get Aliases[0].AliasName <<<"$page")$(json_get Aliases[0].AliasName <<<"$page2")" \
    "alias/appalias/mac" "list-aliases pages"
assert_eq "$(json_get Truncated <<<"$page2")" false "list-aliases last page"

kms update-alias --alias-name alias/app --target-key-id "$SYM2" >"$TMP/out"
assert_eq "$(cat "$TMP/out")" "" "update-alias prints nothing"
assert_eq "$(kms describe-key --key-id alias/app --output text --query KeyMetadata.KeyId)" "$SYM2" \
    "update-alias moves the alias"
expect_error ValidationException 254 kms update-alias --alias-name alias/app \
    --target-key-id "${KEY[HMAC_256]}"
assert_eq "$(kms describe-key --key-id alias/app --output text --query KeyMetadata.KeyId)" "$SYM2" \
    "a refused update-alias leaves the alias"
expect_error NotFoundException 254 kms update-alias --alias-name alias/nope --target-key-id "$SYM"

kms delete-alias --alias-name alias/app >"$TMP/out"
assert_eq "$(cat "$TMP/out")" "" "delete-alias prints nothing"
expect_error NotFoundException 254 kms describe-key --key-id alias/app
expect_error NotFoundException 254 kms delete-alias --alias-name alias/app
assert_eq "$(kms describe-key --key-id "$SYM2" --output text --query KeyMetadata.KeyState)" Enabled \
    "deleting an alias leaves its key"
assert_eq "$(kms list-aliases --output text --query 'Aliases[0].AliasName')" alias/mac \
    "list-aliases after delete"
assert_eq "$(kms list-aliases --query Aliases | json_get '[1]')" "<missing>" \
    "only one alias left"
# the name is free again
kms create-alias --alias-name alias/app --target-key-id "$SYM" >/dev/null
assert_eq "$(kms describe-key --key-id alias/app --output text --query KeyMetadata.KeyId)" "$SYM" \
    "a deleted alias name can be reused"

# ---- a home made under a permissive umask still passes its own StrictModes checks (issue 15) ----
LAX="$TMP/lax-home"
(umask 002 && init_home "$LAX")
for p in "$LAX" "$LAX/config.json" "$LAX/credentials" "$LAX/pin" "$LAX/hsm" "$LAX/hsm/tokens" \
    "$LAX/audit"; do
    assert_eq "$(( 0$(stat -c %a "$p") & 022 ))" 0 "init under umask 002: $p is writable by its owner only"
done
(umask 002 && kms_at "$LAX" list-keys >/dev/null) && ok "  ... and the home opens" ||
    fail "a home made under umask 002 does not open: $(kms_at "$LAX" list-keys 2>&1 | head -c 300)"
assert_match "$(json_get home_id <"$LAX/config.json")" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-' \
    "init writes a random home id into config.json"
