#!/usr/bin/env bash
# Key policies (default, custom, lockout safety check, explicit deny), grants (constraints,
# retire, revoke, tokens), and sign-in with a password and MFA, through kmsctl as different
# principals.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

json_len() { "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
assert_eq "$(json_get UserName <"$TMP/init.json")" "admin" "init names the admin user"
assert_eq "$(stat -c %a "$HOME_DIR/credentials")" 600 "the credentials file is 0600"
if grep -q '^\[default\]' "$HOME_DIR/credentials" &&
    grep -q '^aws_access_key_id = AKIA' "$HOME_DIR/credentials"; then
    ok "init saved the admin's access key as the default profile"
else
    fail "no default profile with an AKIA key in $HOME_DIR/credentials"
fi
ADMIN_ARN="arn:aws:iam::$ACCOUNT:user/admin"
assert_eq "$(kms get-caller-identity --output text --query Arn)" "$ADMIN_ARN" \
    "the default profile is the admin user"
# The root user has no access keys.
assert_eq "$(kms list-access-keys --user-name admin --query 'AccessKeyMetadata' | json_len)" 1 \
    "admin has one access key"

# as_user NAME CMD...: run kmsctl with NAME's access key (created on first use).
declare -A KEY_ID SECRET
new_user() {
    local name=$1 out
    kms create-user --user-name "$name" >/dev/null
    out=$(kms create-access-key --user-name "$name")
    KEY_ID[$name]=$(json_get AccessKey.AccessKeyId <<<"$out")
    SECRET[$name]=$(json_get AccessKey.SecretAccessKey <<<"$out")
}
as_user() {
    local name=$1
    shift
    KMS_ACCESS_KEY_ID=${KEY_ID[$name]} KMS_SECRET_ACCESS_KEY=${SECRET[$name]} \
        "$KMSCTL" --home "$HOME_DIR" "$@"
}

new_user carol
KEY=$(kms create-key --description k1 --output text --query KeyMetadata.KeyId)
KEY_ARN="arn:aws:kms:us-east-1:$ACCOUNT:key/$KEY"

# ---- the default key policy -----------------------------------------------------------------
policy=$(kms get-key-policy --key-id "$KEY" --output text --query Policy)
assert_contains "$policy" "arn:aws:iam::$ACCOUNT:root" "the default key policy names the account"
assert_contains "$policy" '"kms:*"' "the default key policy allows kms:* to the account"
assert_eq "$(kms list-key-policies --key-id "$KEY" | json_get PolicyNames)" '["default"]' \
    "one key policy, named default"
expect_error NotFoundException 254 kms get-key-policy --key-id "$KEY" --policy-name other

# carol has no IAM policy: the default key policy delegates to IAM, which allows nothing.
expect_error AccessDeniedException 254 as_user carol kms-encrypt --key-id "$KEY" \
    --plaintext aGVsbG8=
assert_contains "$ERR_MSG" "arn:aws:iam::$ACCOUNT:user/carol" "the refusal names carol"
assert_contains "$ERR_MSG" "kms:Encrypt" "the refusal names the action"
assert_contains "$ERR_MSG" "$KEY_ARN" "the refusal names the key"

# ---- grants ------------------------------------------------------------------------------------
grant=$(kms create-grant --key-id "$KEY" --grantee-principal "arn:aws:iam::$ACCOUNT:user/carol" \
    --operations Encrypt Decrypt RetireGrant \
    --constraints '{"EncryptionContextSubset": {"tenant": "acme"}}' --name carol-acme)
GRANT_ID=$(json_get GrantId <<<"$grant")
GRANT_TOKEN=$(json_get GrantToken <<<"$grant")
assert_match "$GRANT_ID" '^[0-9a-f]{64}$' "CreateGrant returns a 64-hex GrantId"
assert_ne "$GRANT_TOKEN" "<missing>" "CreateGrant returns a GrantToken"

ct=$(as_user carol kms-encrypt --key-id "$KEY" --plaintext aGVsbG8= \
    --encryption-context tenant=acme,app=x --output text --query CiphertextBlob)
assert_ne "$ct" "" "the grant lets carol encrypt with tenant=acme"
expect_error AccessDeniedException 254 as_user carol kms-encrypt --key-id "$KEY" \
    --plaintext aGVsbG8= --encryption-context tenant=other
expect_error AccessDeniedException 254 as_user carol kms-encrypt --key-id "$KEY" \
    --plaintext aGVsbG8=
pt=$(as_user carol kms-decrypt --ciphertext-blob "$ct" --encryption-context tenant=acme,app=x \
    --output text --query Plaintext)
assert_eq "$pt" "aGVsbG8=" "the grant lets carol decrypt with the context"
expect_error AccessDeniedException 254 as_user carol describe-key --key-id "$KEY"
as_user carol kms-encrypt --key-id "$KEY" --plaintext aGVsbG8= --encryption-context tenant=acme \
    --grant-tokens "$GRANT_TOKEN" >/dev/null && ok "a request may carry the grant token"
expect_error InvalidGrantTokenException 254 kms describe-key --key-id "$KEY" \
    --grant-tokens not-a-token

grants=$(kms list-grants --key-id "$KEY")
assert_eq "$(json_get Grants[0].GrantId <<<"$grants")" "$GRANT_ID" "list-grants shows the grant"
assert_eq "$(json_get Grants[0].Name <<<"$grants")" "carol-acme" "the grant's name"
assert_eq "$(json_get Grants[0].Constraints <<<"$grants")" \
    '{"EncryptionContextSubset":{"tenant":"acme"}}' "the grant's constraints"
assert_eq "$(json_get Grants[0].IssuingAccount <<<"$grants")" "arn:aws:iam::$ACCOUNT:root" \
    "the issuing account"

expect_error ValidationException 254 kms create-grant --key-id "$KEY" \
    --grantee-principal "arn:aws:iam::$ACCOUNT:user/carol" --operations Fly
expect_error ValidationException 254 kms create-grant --key-id "$KEY" \
    --grantee-principal "arn:aws:iam::$ACCOUNT:user/carol" --operations Sign \
    --constraints '{"EncryptionContextEquals": {"a": "b"}}'
expect_error ValidationException 254 kms create-grant --key-id "$KEY" \
    --grantee-principal carol --operations Decrypt

# carol retires her own grant (it allows RetireGrant); then she is refused again.
as_user carol retire-grant --grant-token "$GRANT_TOKEN" >/dev/null && ok "carol retires the grant"
expect_error AccessDeniedException 254 as_user carol kms-encrypt --key-id "$KEY" \
    --plaintext aGVsbG8= --encryption-context tenant=acme
assert_eq "$(kms list-grants --key-id "$KEY" --query Grants | json_len)" 0 "no grant is left"

# A grant without RetireGrant: carol may not retire it, the admin revokes it.
grant=$(kms create-grant --key-id "$KEY" --grantee-principal "arn:aws:iam::$ACCOUNT:user/carol" \
    --operations Encrypt)
GRANT_ID=$(json_get GrantId <<<"$grant")
as_user carol kms-encrypt --key-id "$KEY" --plaintext aGVsbG8= >/dev/null &&
    ok "an unconstrained grant allows any context"
expect_error AccessDeniedException 254 as_user carol retire-grant --key-id "$KEY" \
    --grant-id "$GRANT_ID"
expect_error InvalidGrantIdException 254 kms revoke-grant --key-id "$KEY" --grant-id "$(printf 'a%.0s' {1..64})"
kms revoke-grant --key-id "$KEY" --grant-id "$GRANT_ID" >/dev/null && ok "admin revokes the grant"
expect_error AccessDeniedException 254 as_user carol kms-encrypt --key-id "$KEY" \
    --plaintext aGVsbG8=

# ---- custom key policies ------------------------------------------------------------------------
cat >"$TMP/carol-only.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "$ADMIN_ARN"},
   "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"], "Resource": "*"},
  {"Sid": "Carol", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:user/carol"},
   "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}]}
EOF
KEY2=$(kms create-key --policy "file://$TMP/carol-only.json" --output text \
    --query KeyMetadata.KeyId)
as_user carol kms-encrypt --key-id "$KEY2" --plaintext aGVsbG8= >/dev/null &&
    ok "a key policy naming carol lets her encrypt without any IAM policy"
expect_error AccessDeniedException 254 kms kms-encrypt --key-id "$KEY2" --plaintext aGVsbG8=
assert_contains "$ERR_MSG" "no resource-based policy allows" \
    "without the account statement the admin's IAM policy does not count"
kms describe-key --key-id "$KEY2" >/dev/null && ok "the key policy lets the admin describe it"

# The lockout safety check: a policy that would stop the admin from changing it is refused.
cat >"$TMP/lockout.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:user/carol"},
   "Action": "kms:*", "Resource": "*"}]}
EOF
before=$(kms get-key-policy --key-id "$KEY2" --output text --query Policy)
expect_error MalformedPolicyDocumentException 254 kms put-key-policy --key-id "$KEY2" \
    --policy "file://$TMP/lockout.json"
assert_contains "$ERR_MSG" "will not allow you to update the key policy" "the lockout message"
assert_eq "$(kms get-key-policy --key-id "$KEY2" --output text --query Policy)" "$before" \
    "the refused policy changed nothing"
n_keys=$(kms list-keys --query Keys | json_len)
expect_error MalformedPolicyDocumentException 254 kms create-key --policy "file://$TMP/lockout.json"
expect_error MalformedPolicyDocumentException 254 kms create-key \
    --policy '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*"}]}'
assert_contains "$ERR_MSG" "Principal" "a key policy statement without a Principal is named"
expect_error MalformedPolicyDocumentException 254 kms create-key \
    --policy '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Effect":"Deny"}}'
assert_eq "$(kms list-keys --query Keys | json_len)" "$n_keys" "refused create-keys created nothing"

# An explicit deny in the key policy beats the admin's AdministratorAccess.
cat >"$TMP/deny.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:root"},
   "Action": "kms:*", "Resource": "*"},
  {"Sid": "NoDecrypt", "Effect": "Deny", "Principal": {"AWS": "*"},
   "Action": "kms:Decrypt", "Resource": "*"}]}
EOF
kms put-key-policy --key-id "$KEY" --policy "file://$TMP/deny.json" >/dev/null &&
    ok "put-key-policy with a deny statement"
ct=$(kms kms-encrypt --key-id "$KEY" --plaintext aGVsbG8= --output text --query CiphertextBlob)
expect_error AccessDeniedException 254 kms kms-decrypt --ciphertext-blob "$ct"
assert_contains "$ERR_MSG" "explicit deny in a resource-based policy" "the deny is named"
kms put-key-policy --key-id "$KEY" --policy "file://$TMP/deny.json" \
    --bypass-policy-lockout-safety-check >/dev/null && ok "bypass flag accepted"

# ---- sign-in with a password and MFA ---------------------------------------------------------
expect_error PasswordPolicyViolation 254 kms create-login-profile --user-name carol \
    --password short
kms create-login-profile --user-name carol --password 'Correct-Horse-9-Battery' >/dev/null &&
    ok "a login profile that obeys the password policy"
if grep -a -q 'Correct-Horse-9-Battery' "$HOME_DIR/kms.db"*; then
    fail "the password is in the database in plaintext"
else
    ok "the password is not stored in plaintext"
fi
expect_error AccessDeniedException 254 env KMS_PASSWORD=wrong-password "$KMSCTL" \
    --home "$HOME_DIR" sign-in --user-name carol
out=$(KMS_PASSWORD='Correct-Horse-9-Battery' kms sign-in --user-name carol --save-profile carol)
assert_eq "$(json_get Profile <<<"$out")" "carol" "sign-in saves the session as a profile"
assert_eq "$(kms --profile carol get-caller-identity --output text --query Arn)" \
    "arn:aws:iam::$ACCOUNT:user/carol" "the signed-in session acts as carol"
if grep -A3 '^\[carol\]' "$HOME_DIR/credentials" | grep -q '^aws_session_token = '; then
    ok "the saved profile holds a session token"
else
    fail "no session token in the carol profile"
fi

# MFA: enrol a virtual device with two consecutive codes (RFC 6238, computed here).
totp() { # totp BASE32STRINGSEED STEP_OFFSET
    "$PY" - "$1" "$2" <<'PY'
import base64, hmac, hashlib, struct, sys, time
# Base32StringSeed is a blob in the AWS API: base64 of the base32 text.
b32 = base64.b64decode(sys.argv[1]).decode()
seed = base64.b32decode(b32 + "=" * (-len(b32) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
h = hmac.new(seed, struct.pack(">Q", step), hashlib.sha1).digest()
o = h[-1] & 15
print("%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY
}
mfa=$(kms create-virtual-mfa-device --virtual-mfa-device-name carol-phone)
SERIAL=$(json_get VirtualMFADevice.SerialNumber <<<"$mfa")
SEED=$(json_get VirtualMFADevice.Base32StringSeed <<<"$mfa")
assert_match "$SERIAL" "^arn:aws:iam::$ACCOUNT:mfa/carol-phone\$" "the device's serial number"
kms enable-mfa-device --user-name carol --serial-number "$SERIAL" \
    --authentication-code1 "$(totp "$SEED" -1)" --authentication-code2 "$(totp "$SEED" 0)" \
    >/dev/null && ok "enable-mfa-device with two consecutive codes"
expect_error AccessDeniedException 254 env KMS_PASSWORD='Correct-Horse-9-Battery' "$KMSCTL" \
    --home "$HOME_DIR" sign-in --user-name carol
assert_contains "$ERR_MSG" "MFA" "sign-in without a code asks for the MFA code"
expect_error InvalidAuthenticationCodeException 254 env KMS_PASSWORD='Correct-Horse-9-Battery' \
    "$KMSCTL" --home "$HOME_DIR" sign-in --user-name carol --token-code 000000
# Policies that require MFA: carol may describe keys only in an MFA session.
kms put-user-policy --user-name carol --policy-name mfa-describe --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:DescribeKey","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}' \
    >/dev/null
expect_error AccessDeniedException 254 as_user carol describe-key --key-id "$KEY"
# Enrolment used the codes of the previous and the current step; the next step's code is within
# the accepted window (one step either side) and not used yet.
KMS_PASSWORD='Correct-Horse-9-Battery' kms sign-in --user-name carol --save-profile carol \
    --token-code "$(totp "$SEED" 1)" >/dev/null && ok "sign-in with password and MFA code"
kms --profile carol describe-key --key-id "$KEY" >/dev/null &&
    ok "an MFA session satisfies aws:MultiFactorAuthPresent"

# ---- sessions expire (time moved by libfaketime, not by sleeping) ----------------------------
sess=$(kms get-session-token --duration-seconds 900)
S_ID=$(json_get Credentials.AccessKeyId <<<"$sess")
S_SECRET=$(json_get Credentials.SecretAccessKey <<<"$sess")
S_TOKEN=$(json_get Credentials.SessionToken <<<"$sess")
assert_match "$S_ID" '^ASIA' "GetSessionToken gives a temporary ASIA key"
as_session() {
    KMS_ACCESS_KEY_ID=$S_ID KMS_SECRET_ACCESS_KEY=$S_SECRET KMS_SESSION_TOKEN=$S_TOKEN "$@"
}
assert_eq "$(as_session "$KMSCTL" --home "$HOME_DIR" get-caller-identity --output text \
    --query Arn)" "$ADMIN_ARN" "the session acts as the admin"
as_session "$KMSCTL" --home "$HOME_DIR" describe-key --key-id "$KEY" >/dev/null &&
    ok "the session is allowed what the admin is"
# libfaketime is preloaded before the ASan runtime of a sanitizer build: tell ASan that is fine.
expect_error ExpiredTokenException 254 as_session \
    env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" faketime -f "+16m" "$KMSCTL" \
    --home "$HOME_DIR" describe-key --key-id "$KEY"
expect_error ExpiredTokenException 254 env KMS_ACCESS_KEY_ID="$S_ID" \
    KMS_SECRET_ACCESS_KEY="$S_SECRET" KMS_SESSION_TOKEN="${S_TOKEN%?}x" "$KMSCTL" \
    --home "$HOME_DIR" describe-key --key-id "$KEY"


# ---- regressions found in review -----------------------------------------------------------
# A role's trust policy is required: an identity policy allowing sts:AssumeRole is not enough.
new_user mallory
kms put-user-policy --user-name mallory --policy-name assume --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"},{"Effect":"Allow","Action":"iam:AttachUserPolicy","Resource":"*","Condition":{"ArnNotEquals":{"iam:PolicyARN":"arn:aws:iam::aws:policy/AdministratorAccess"}}}]}' \
    >/dev/null
kms create-role --role-name AdminRole --assume-role-policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::$ACCOUNT:user/carol\"},\"Action\":\"sts:AssumeRole\"}]}" \
    >/dev/null
expect_error AccessDenied 254 as_user mallory assume-role \
    --role-arn "arn:aws:iam::$ACCOUNT:role/AdminRole" --role-session-name pwn
# iam:PolicyARN is in the request context: the ArnNotEquals condition holds it back.
expect_error AccessDenied 254 as_user mallory attach-user-policy --user-name mallory \
    --policy-arn arn:aws:iam::aws:policy/AdministratorAccess
assert_eq "$(kms list-attached-user-policies --user-name mallory | json_get AttachedPolicies)" \
    "[]" "nothing was attached"

# A grant with CreateGrant lets its grantee pass on only what it holds.
grant=$(kms create-grant --key-id "$KEY" --grantee-principal "arn:aws:iam::$ACCOUNT:user/carol" \
    --operations Decrypt CreateGrant)
expect_error AccessDeniedException 254 as_user carol create-grant --key-id "$KEY" \
    --grantee-principal "arn:aws:iam::$ACCOUNT:user/carol" --operations Encrypt Decrypt
as_user carol create-grant --key-id "$KEY" \
    --grantee-principal "arn:aws:iam::$ACCOUNT:user/mallory" --operations Decrypt >/dev/null &&
    ok "carol passes on Decrypt, which her grant holds"
expect_error AccessDeniedException 254 as_user carol kms-encrypt --key-id "$KEY" \
    --plaintext aGVsbG8=

# UpdateAlias needs permission on the alias's current key too.
KEY3=$(kms create-key --output text --query KeyMetadata.KeyId)
KEY4=$(kms create-key --output text --query KeyMetadata.KeyId)
kms create-alias --alias-name alias/prod --target-key-id "$KEY4" >/dev/null
kms put-user-policy --user-name mallory --policy-name alias --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:UpdateAlias\",\"Resource\":[\"arn:aws:kms:us-east-1:$ACCOUNT:alias/prod\",\"arn:aws:kms:us-east-1:$ACCOUNT:key/$KEY3\"]}]}" \
    >/dev/null
expect_error AccessDeniedException 254 as_user mallory update-alias --alias-name alias/prod \
    --target-key-id "$KEY3"
assert_eq "$(kms list-aliases --key-id "$KEY4" | json_get 'Aliases[0].AliasName')" "alias/prod" \
    "the alias still points at its key"

# A grant names one principal: wildcards there could never match, and AWS refuses them
# (ValidationException); nothing is stored.
grants_before=$(kms list-grants --key-id "$KEY" | json_get Grants)
for p in "arn:aws:iam::$ACCOUNT:user/*" '*' '?' "arn:aws:iam::$ACCOUNT:user/car?l" \
    '*.amazonaws.com'; do
    expect_error ValidationException 254 kms create-grant --key-id "$KEY" \
        --grantee-principal "$p" --operations Decrypt
    assert_contains "$ERR_MSG" "may not contain wildcards" "GranteePrincipal '$p': the message says why"
done
for p in "arn:aws:iam::$ACCOUNT:role/*" '*' '?'; do
    expect_error ValidationException 254 kms create-grant --key-id "$KEY" \
        --grantee-principal "arn:aws:iam::$ACCOUNT:user/carol" --retiring-principal "$p" \
        --operations Decrypt
    assert_contains "$ERR_MSG" "RetiringPrincipal" "RetiringPrincipal '$p': the message names it"
    assert_contains "$ERR_MSG" "may not contain wildcards" "RetiringPrincipal '$p': and says why"
done
assert_eq "$(kms list-grants --key-id "$KEY" | json_get Grants)" "$grants_before" \
    "no grant was stored for a wildcard principal"

# ---- a deleted principal's name is not a key (issue 15, item 4) -------------------------------
# Key policies, grants and trust policies that name erin's ARN name her unique id once she is
# deleted (as AWS shows it), so a new erin inherits none of it.
ERIN_ARN="arn:aws:iam::$ACCOUNT:user/erin"
new_user erin
ERIN_ID=$(kms get-user --user-name erin --output text --query User.UserId)
assert_match "$ERIN_ID" '^AIDA[A-Z0-9]{17}$' "erin has an AIDA unique id"
KP_KEY=$(kms create-key --description erin-policy --output text --query KeyMetadata.KeyId)
GR_KEY=$(kms create-key --description erin-grant --output text --query KeyMetadata.KeyId)
cat >"$TMP/erin.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:root"},
   "Action": "kms:*", "Resource": "*"},
  {"Sid": "Erin", "Effect": "Allow",
   "Principal": {"AWS": ["arn:aws:iam::$ACCOUNT:user/carol", "$ERIN_ARN"]},
   "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}]}
EOF
kms put-key-policy --key-id "$KP_KEY" --policy "file://$TMP/erin.json" >/dev/null
kms create-grant --key-id "$GR_KEY" --grantee-principal "$ERIN_ARN" \
    --retiring-principal "$ERIN_ARN" --operations Encrypt >/dev/null
cat >"$TMP/erin-trust.json" <<EOF
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"AWS": "$ERIN_ARN"}, "Action": "sts:AssumeRole"}]}
EOF
kms create-role --role-name ErinRole --assume-role-policy-document "file://$TMP/erin-trust.json" \
    >/dev/null
as_user erin kms-encrypt --key-id "$KP_KEY" --plaintext aGVsbG8= >/dev/null &&
    ok "erin encrypts through the key policy"
as_user erin kms-encrypt --key-id "$GR_KEY" --plaintext aGVsbG8= >/dev/null &&
    ok "erin encrypts through the grant"
as_user erin assume-role --role-arn "arn:aws:iam::$ACCOUNT:role/ErinRole" \
    --role-session-name e1 >/dev/null && ok "erin assumes the role that trusts her"

# A deletion that fails (erin still has an access key) has already bound her name to her id;
# that changes nothing for erin herself.
expect_error DeleteConflict 254 kms delete-user --user-name erin
as_user erin kms-encrypt --key-id "$KP_KEY" --plaintext aGVsbG8= >/dev/null &&
    ok "after a failed deletion erin still encrypts through the key policy (her id)"
as_user erin kms-encrypt --key-id "$GR_KEY" --plaintext aGVsbG8= >/dev/null &&
    ok "and through the grant (her id)"
as_user erin assume-role --role-arn "arn:aws:iam::$ACCOUNT:role/ErinRole" \
    --role-session-name e0 >/dev/null && ok "and still assumes the role that trusts her"

kms delete-access-key --user-name erin --access-key-id "${KEY_ID[erin]}" >/dev/null
kms delete-user --user-name erin >/dev/null && ok "erin deleted"
policy=$(kms get-key-policy --key-id "$KP_KEY" --output text --query Policy)
assert_contains "$policy" "\"$ERIN_ID\"" "GetKeyPolicy shows erin's unique id in her place"
assert_not_contains "$policy" "$ERIN_ARN" "and no longer her ARN"
assert_contains "$policy" "arn:aws:iam::$ACCOUNT:user/carol" "carol, still there, keeps her ARN"
grants=$(kms list-grants --key-id "$GR_KEY")
assert_eq "$(json_get 'Grants[0].GranteePrincipal' <<<"$grants")" "$ERIN_ID" \
    "ListGrants shows the unique id as the grantee"
assert_eq "$(json_get 'Grants[0].RetiringPrincipal' <<<"$grants")" "$ERIN_ID" \
    "and as the retiring principal"
trust=$(kms get-role --role-name ErinRole --output text --query Role.AssumeRolePolicyDocument)
assert_contains "$trust" "$ERIN_ID" "the trust policy names the unique id"

new_user erin
assert_ne "$(kms get-user --user-name erin --output text --query User.UserId)" "$ERIN_ID" \
    "the new erin has a new unique id"
expect_error AccessDeniedException 254 as_user erin kms-encrypt --key-id "$KP_KEY" \
    --plaintext aGVsbG8=
expect_error AccessDeniedException 254 as_user erin kms-encrypt --key-id "$GR_KEY" \
    --plaintext aGVsbG8=
expect_error AccessDenied 254 as_user erin assume-role \
    --role-arn "arn:aws:iam::$ACCOUNT:role/ErinRole" --role-session-name e2
# The re-saved policy (with the id) is a valid key policy, as AWS's GetKeyPolicy output is.
printf '%s' "$policy" >"$TMP/erin-saved.json"
kms put-key-policy --key-id "$KP_KEY" --policy "file://$TMP/erin-saved.json" >/dev/null &&
    ok "a policy naming a unique id can be put back"
expect_error AccessDeniedException 254 as_user erin kms-encrypt --key-id "$KP_KEY" \
    --plaintext aGVsbG8=

# A role deleted and re-created: a trust policy naming the old role lets no session of the new
# one chain into it.
cat >"$TMP/hop-trust.json" <<EOF
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:user/carol"}, "Action": "sts:AssumeRole"}]}
EOF
HOP_ARN="arn:aws:iam::$ACCOUNT:role/Hop"
kms create-role --role-name Hop --assume-role-policy-document "file://$TMP/hop-trust.json" >/dev/null
HOP_ID=$(kms get-role --role-name Hop --output text --query Role.RoleId)
cat >"$TMP/chain-trust.json" <<EOF
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"AWS": "$HOP_ARN"}, "Action": "sts:AssumeRole"}]}
EOF
kms create-role --role-name Chain --assume-role-policy-document "file://$TMP/chain-trust.json" \
    >/dev/null
kms put-role-policy --role-name Hop --policy-name chain --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\",\"Resource\":\"*\"}]}" \
    >/dev/null
# as_session FILE CMD...: run kmsctl with the temporary credentials of an assume-role answer
# kept in FILE (not on the command line, which expect_error prints).
as_session() {
    local creds
    creds=$(cat "$1")
    shift
    KMS_ACCESS_KEY_ID=$(json_get Credentials.AccessKeyId <<<"$creds") \
        KMS_SECRET_ACCESS_KEY=$(json_get Credentials.SecretAccessKey <<<"$creds") \
        KMS_SESSION_TOKEN=$(json_get Credentials.SessionToken <<<"$creds") \
        "$KMSCTL" --home "$HOME_DIR" "$@"
}
as_user carol assume-role --role-arn "$HOP_ARN" --role-session-name h1 >"$TMP/hop.json"
as_session "$TMP/hop.json" assume-role --role-arn "arn:aws:iam::$ACCOUNT:role/Chain" \
    --role-session-name c1 >/dev/null && ok "a Hop session assumes Chain, which trusts Hop"
kms delete-role-policy --role-name Hop --policy-name chain >/dev/null
kms delete-role --role-name Hop >/dev/null && ok "Hop deleted"
trust=$(kms get-role --role-name Chain --output json --query Role.AssumeRolePolicyDocument)
assert_contains "$trust" "\"$HOP_ID\"" "Chain's trust policy names the old Hop's unique id"
kms create-role --role-name Hop --assume-role-policy-document "file://$TMP/hop-trust.json" >/dev/null
kms put-role-policy --role-name Hop --policy-name chain --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\",\"Resource\":\"*\"}]}" \
    >/dev/null
as_user carol assume-role --role-arn "$HOP_ARN" --role-session-name h2 >"$TMP/hop.json"
expect_error AccessDenied 254 as_session "$TMP/hop.json" assume-role \
    --role-arn "arn:aws:iam::$ACCOUNT:role/Chain" --role-session-name c2

# A key policy naming a user or role of this account that does not exist is refused, as AWS
# refuses it ("invalid principals"): the name would otherwise bind to whoever is created later.
sed "s|$ERIN_ID|arn:aws:iam::$ACCOUNT:user/nobody|" "$TMP/erin-saved.json" >"$TMP/nobody.json"
expect_error MalformedPolicyDocumentException 254 kms put-key-policy --key-id "$KP_KEY" \
    --policy "file://$TMP/nobody.json"
assert_contains "$ERR_MSG" "invalid principals" "the refusal says why"
assert_contains "$ERR_MSG" "user/nobody" "and names the principal"
sed "s|$ERIN_ID|arn:aws:iam::$ACCOUNT:role/NoSuchRole|" "$TMP/erin-saved.json" >"$TMP/nobody.json"
expect_error MalformedPolicyDocumentException 254 kms create-key --policy "file://$TMP/nobody.json"
sed "s|$ERIN_ID|arn:aws:iam::$ACCOUNT:user/erin|" "$TMP/erin-saved.json" >"$TMP/nobody.json"
kms put-key-policy --key-id "$KP_KEY" --policy "file://$TMP/nobody.json" >/dev/null &&
    ok "a policy naming the existing (new) erin is accepted"
as_user erin kms-encrypt --key-id "$KP_KEY" --plaintext aGVsbG8= >/dev/null &&
    ok "and the new erin, named anew, encrypts"
expect_error NoSuchEntity 254 kms delete-user --user-name nobody
expect_error NoSuchEntity 254 kms delete-role --role-name NoSuchRole

# ---- the same when the policy spells the ARN with JSON escapes ("user\/gina", "\u0067") --------
# (a search of the raw text would miss these; every policy is parsed)
new_user gina
GINA_ID=$(kms get-user --user-name gina --output text --query User.UserId)
ESC_KEY=$(kms create-key --description gina-policy --output text --query KeyMetadata.KeyId)
cat >"$TMP/gina.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:root"},
   "Action": "kms:*", "Resource": "*"},
  {"Sid": "Gina", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:user\/\u0067ina"},
   "Action": "kms:Encrypt", "Resource": "*"}]}
EOF
kms put-key-policy --key-id "$ESC_KEY" --policy "file://$TMP/gina.json" >/dev/null
as_user gina kms-encrypt --key-id "$ESC_KEY" --plaintext aGVsbG8= >/dev/null &&
    ok "gina encrypts through a policy that escapes her ARN"
kms delete-access-key --user-name gina --access-key-id "${KEY_ID[gina]}" >/dev/null
kms delete-user --user-name gina >/dev/null
assert_contains "$(kms get-key-policy --key-id "$ESC_KEY" --output text --query Policy)" \
    "\"$GINA_ID\"" "the escaped ARN is replaced by gina's unique id too"
new_user gina
expect_error AccessDeniedException 254 as_user gina kms-encrypt --key-id "$ESC_KEY" \
    --plaintext aGVsbG8=
