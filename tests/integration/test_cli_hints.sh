#!/usr/bin/env bash
# Errors that point to the right command (issue 18, CLI conventions): an option of the direct KMS
# operation given to its envelope twin names the kms- command; a KMS ciphertext blob given to
# decrypt, and an envelope message given to kms-decrypt, each name the other command; a .json file
# named without file:// is refused with the file:// form; init makes the directories above a new
# home (mode 0700).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_home
W="$TMP/w"
mkdir "$W"
K=$(create_key SYMMETRIC_DEFAULT)
printf 'hello' >"$W/msg"

# ---- the envelope commands and their kms- twins -------------------------------------------------
expect_usage_error "unknown option --plaintext: \`kmsctl encrypt\` works on files" \
    kms encrypt --key-id "$K" --plaintext "fileb://$W/msg"
assert_contains "$ERR_OUT" "the direct KMS operation Encrypt (at most 4 KiB) is \`kmsctl kms-encrypt --plaintext ...\`" \
    "and names kms-encrypt"
expect_usage_error "is \`kmsctl kms-decrypt --ciphertext-blob ...\`" \
    kms decrypt --ciphertext-blob "fileb://$W/msg"
expect_usage_error "is \`kmsctl kms-re-encrypt --destination-encryption-context ...\`" \
    kms re-encrypt -i "$W/msg" -o "$W/x" --destination-encryption-context a=b
expect_usage_error "unknown option --bogus" kms encrypt --key-id "$K" --bogus 1
assert_not_contains "$ERR_OUT" "kms-encrypt" "an option the twin lacks gets no such hint"

# ---- each kind of ciphertext given to the other command -----------------------------------------
kms kms-encrypt --key-id "$K" --plaintext "fileb://$W/msg" --output text --query CiphertextBlob |
    base64 -d >"$W/blob"
kms encrypt --key-id "$K" -i "$W/msg" -o "$W/envelope"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$K" -i "$W/blob" -o "$W/out"
assert_contains "$ERR_MSG" "$W/blob looks like a KMS ciphertext blob" "decrypt given a KMS blob says what it is"
assert_contains "$ERR_MSG" "\`kmsctl kms-decrypt --ciphertext-blob fileb://$W/blob\`" "and names kms-decrypt"
[ ! -e "$W/out" ] && ok "and writes no output"
expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/envelope"
assert_contains "$ERR_MSG" "it is an envelope message" "kms-decrypt given an envelope message says what it is"
assert_contains "$ERR_MSG" "\`kmsctl decrypt -i FILE -o OUT\`" "and names decrypt"
head -c 100 /dev/urandom | tr '\001\002' '\003\003' >"$W/noise"
expect_error InvalidCiphertextException 254 kms kms-decrypt --ciphertext-blob "fileb://$W/noise"
assert_not_contains "$ERR_MSG" "kmsctl decrypt" "random bytes name no other command"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$K" -i "$W/noise" -o "$W/out"
assert_not_contains "$ERR_MSG" "kms-decrypt" "nor to decrypt"
kms decrypt --key-id "$K" -i "$W/envelope" -o "$W/round" && assert_files_equal "$W/round" "$W/msg" \
    "the right command still decrypts"

# ---- a .json file named without file:// ---------------------------------------------------------
echo '{"Version": "2012-10-17", "Statement": []}' >"$W/key-policy.json"
cd "$W"
expect_usage_error "argument --policy: 'key-policy.json' is taken as the value itself; to read the file, write --policy file://key-policy.json" \
    kms put-key-policy --key-id "$K" --policy key-policy.json
expect_error MalformedPolicyDocumentException 254 kms put-key-policy --key-id "$K" --policy missing.json
cd - >/dev/null
assert_not_contains "$ERR_MSG" "file://" "a name that is no file goes to the service as written"

# ---- init makes the directories above the home ----------------------------------------------------
kms_at "$TMP/a/b/c/home" init >/dev/null && ok "init makes the missing parents of a home"
assert_eq "$(stat -c %a "$TMP/a" "$TMP/a/b" "$TMP/a/b/c" | tr '\n' ' ')" "700 700 700 " "each with mode 0700"
kms_at "$TMP/a/b/c/home" create-key >/dev/null && ok "and the home works"
mkdir "$TMP/kept"
expect_error KMSHomeException 254 "$KMSCTL" --home "$TMP/kept/m/n/home" init --pkcs11-module /nonexistent.so
[ ! -e "$TMP/kept/m" ] && [ -d "$TMP/kept" ] && ok "a refused init removes the parents it made, and only those" ||
    fail "a refused init left $(ls -A "$TMP/kept")"
expect_error KMSHomeException 254 "$KMSCTL" --home /proc/no-such-dir/home init
assert_contains "$ERR_MSG" "cannot create the directories above /proc/no-such-dir/home" \
    "a parent that cannot be made is named"


# ---- the service's name in front, as with aws -----------------------------------------------------
assert_eq "$(kms iam get-user --query User.UserName --output text)" "$(kms get-user --query User.UserName --output text)" \
    "kmsctl iam get-user is get-user"
assert_eq "$(kms sts get-caller-identity --query Arn --output text)" "$(kms get-caller-identity --query Arn --output text)" \
    "kmsctl sts get-caller-identity is get-caller-identity"
kms cloudtrail lookup-events --max-items 1 >/dev/null && ok "kmsctl cloudtrail lookup-events"
kms organizations create-policy --help | head -n 1 | grep -q "usage: kmsctl org-create-policy" &&
    ok "kmsctl organizations create-policy is org-create-policy" || fail "organizations create-policy"
expect_usage_error "unknown command 'iam create-key'" kms iam create-key
expect_usage_error "unknown command 'sts list-keys'" kms sts list-keys

# ---- --lookup-attributes in the aws CLI's JSON list form ------------------------------------------
assert_eq "$(kms lookup-events --lookup-attributes '[{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}]' \
    --max-items 1 --query 'Events[0].EventName' --output text | sed -n 1p)" CreateKey "--lookup-attributes as a JSON list"
assert_eq "$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=CreateKey \
    --max-items 1 --query 'Events[0].EventName' --output text | sed -n 1p)" CreateKey "and in the shorthand"
expect_usage_error "item 1 of the list is not an object of strings" kms lookup-events --lookup-attributes '[1]'
expect_error ValidationException 254 kms lookup-events --lookup-attributes \
    '[{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}, {"AttributeKey": "Username", "AttributeValue": "x"}]'
expect_usage_error "expected KEY=VALUE" kms kms-encrypt --key-id "$K" --plaintext aGk= \
    --encryption-context '[{"a": "b"}]'

# ---- --generate-cli-skeleton and --cli-input-json -------------------------------------------------
SK=$(kms create-key --generate-cli-skeleton)
assert_eq "$("$PY" -c 'import json,sys; print(" ".join(json.load(sys.stdin)))' <<<"$SK")" \
    "Description KeySpec KeyUsage Origin MultiRegion Policy BypassPolicyLockoutSafetyCheck Tags" \
    "--generate-cli-skeleton prints create-key's members"
N=$(kms list-keys | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["Keys"]))')
kms kms-encrypt --generate-cli-skeleton >/dev/null && ok "and needs none of the required options"
assert_eq "$(kms list-keys | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["Keys"]))')" "$N" "and runs nothing"
echo '{"Description": "from json", "KeyUsage": "ENCRYPT_DECRYPT"}' >"$W/in.json"
assert_eq "$(kms create-key --cli-input-json "file://$W/in.json" --query KeyMetadata.Description --output text)" \
    "from json" "--cli-input-json file:// gives the members"
assert_eq "$(kms create-key --cli-input-json "file://$W/in.json" --description cmdline \
    --query KeyMetadata.Description --output text)" cmdline "an option on the command line wins"
expect_usage_error "argument --cli-input-json: unknown parameter \"Bogus\"" kms create-key --cli-input-json '{"Bogus": 1}'
expect_usage_error "the following arguments are required: --plaintext" kms kms-encrypt --cli-input-json "{\"KeyId\": \"$K\"}"
assert_eq "$(kms kms-encrypt --cli-input-json "{\"KeyId\": \"$K\", \"Plaintext\": \"aGk=\"}" --query KeyId --output text)" \
    "$(kms describe-key --key-id "$K" --query KeyMetadata.Arn --output text)" "a required member may come from the JSON"

# ---- a session's key without its token says so ----------------------------------------------------
ST=$(kms get-session-token)
S_ID=$(json_get Credentials.AccessKeyId <<<"$ST")
S_SECRET=$(json_get Credentials.SecretAccessKey <<<"$ST")
without_token() { KMS_ACCESS_KEY_ID="$S_ID" KMS_SECRET_ACCESS_KEY="$S_SECRET" "$KMSCTL" --home "$HOME_DIR" "$@"; }
expect_error UnrecognizedClientException 254 without_token list-keys
assert_contains "$ERR_MSG" "its session token is missing" "an ASIA key without its token: the token is missing, not expired"

# ---- the aws CLI's credential variables -----------------------------------------------------------
kms create-user --user-name carol >/dev/null
CAROL=$(kms create-access-key --user-name carol)
C_ID=$(json_get AccessKey.AccessKeyId <<<"$CAROL")
C_SECRET=$(json_get AccessKey.SecretAccessKey <<<"$CAROL")
ADMIN_ARN=$(kms get-caller-identity --query Arn --output text)
as_aws_carol() { env -u KMS_ACCESS_KEY_ID -u KMS_PROFILE AWS_ACCESS_KEY_ID="$C_ID" AWS_SECRET_ACCESS_KEY="$C_SECRET" "$@"; }
assert_eq "$(as_aws_carol "$KMSCTL" --home "$HOME_DIR" get-caller-identity --query Arn --output text)" \
    "${ADMIN_ARN%/*}/carol" "AWS_ACCESS_KEY_ID names the identity when no KMS_ variable does (as with aws)"
DEF_ID=$(awk -F' *= *' '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1=="aws_access_key_id"{print $2}' "$HOME_DIR/credentials")
DEF_SECRET=$(awk -F' *= *' '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1=="aws_secret_access_key"{print $2}' "$HOME_DIR/credentials")
both() { AWS_ACCESS_KEY_ID="$C_ID" AWS_SECRET_ACCESS_KEY="$C_SECRET" KMS_ACCESS_KEY_ID="$DEF_ID" KMS_SECRET_ACCESS_KEY="$DEF_SECRET" "$@"; }
OUT=$(both "$KMSCTL" --home "$HOME_DIR" get-caller-identity --query Arn --output text 2>"$TMP/warn")
assert_eq "$OUT" "$ADMIN_ARN" "KMS_ACCESS_KEY_ID comes before AWS_ACCESS_KEY_ID"
assert_contains "$(cat "$TMP/warn")" "kmsctl: warning: AWS_ACCESS_KEY_ID is set and ignored: KMS_ACCESS_KEY_ID names the identity" \
    "and the ignored variable is named on stderr"
OUT=$(AWS_ACCESS_KEY_ID="$C_ID" AWS_SECRET_ACCESS_KEY="$C_SECRET" "$KMSCTL" --home "$HOME_DIR" --profile default \
    get-caller-identity --query Arn --output text 2>"$TMP/warn")
assert_eq "$OUT" "$ADMIN_ARN" "--profile comes before both"
assert_eq "$(cat "$TMP/warn")" "" "without a warning (as aws)"
stranger() { env -u KMS_ACCESS_KEY_ID -u KMS_PROFILE AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=not-here "$@"; }
expect_error UnrecognizedClientException 254 stranger "$KMSCTL" --home "$HOME_DIR" list-keys
assert_contains "$ERR_MSG" "the identity came from the AWS_ variables" \
    "an AWS key this home does not know fails closed, saying where it came from"
printf '[carol]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$C_ID" "$C_SECRET" >>"$HOME_DIR/credentials"
assert_eq "$(env -u KMS_ACCESS_KEY_ID -u KMS_PROFILE AWS_PROFILE=carol "$KMSCTL" --home "$HOME_DIR" get-caller-identity \
    --query Arn --output text)" "${ADMIN_ARN%/*}/carol" "AWS_PROFILE names the profile when no KMS_ variable does"

# ---- the library's words are for any caller; kmsctl adds its own ----------------------------------
expect_error KMSHomeException 254 "$KMSCTL" --home "$TMP/not-a-home" list-keys
LIB_PART=${ERR_MSG%% With kmsctl:*}
assert_not_contains "$LIB_PART" "--home" "the library's message names no kmsctl option"
assert_contains "$LIB_PART" "kms_home_init" "it names what a C program calls"
assert_contains "$ERR_MSG" "With kmsctl: --home DIR, or KMS_HOME." "and kmsctl adds its own option"

# ---- the aws CLI's shorthand for nested structures --------------------------------------------------
CAROL_ARN=$(kms get-user --user-name carol --query User.Arn --output text)
G=$(kms create-grant --key-id "$K" --grantee-principal "$CAROL_ARN" --operations Decrypt \
    --constraints 'EncryptionContextSubset={app=orders,n=123}' --query GrantId --output text)
assert_eq "$(kms list-grants --key-id "$K" --grant-id "$G" | "$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["Grants"][0]["Constraints"], sort_keys=True))')" \
    '{"EncryptionContextSubset": {"app": "orders", "n": "123"}}' \
    "--constraints EncryptionContextSubset={app=orders,n=123}: a structure, its context values text"
expect_usage_error "shorthand: a brace is not closed" kms create-grant --key-id "$K" --grantee-principal "$CAROL_ARN" \
    --operations Decrypt --constraints 'EncryptionContextSubset={app=orders'
expect_usage_error "shorthand: expected KEY=VALUE" kms create-grant --key-id "$K" --grantee-principal "$CAROL_ARN" \
    --operations Decrypt --constraints 'EncryptionContextSubset={app}'

# ---- what belongs to AWS services: no policy allows it --------------------------------------------
expect_error AccessDenied 254 kms create-role --role-name slr --path /aws-service-role/ \
    --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"kms.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
assert_contains "$ERR_MSG" "belongs to an AWS service" "a service-linked role path is refused to the administrator too, saying why"
assert_eq "$(kms get-policy --policy-arn arn:aws:iam::aws:policy/AdministratorAccess --query Policy.PolicyName --output text)" \
    AdministratorAccess "an AWS managed policy is readable"
