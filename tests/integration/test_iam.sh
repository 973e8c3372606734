#!/usr/bin/env bash
# IAM, STS and Organizations end to end through kmsctl: users and groups whose policies decide
# what each may do with a KMS key, explicit denies with conditions, key policies that leave IAM
# out, access keys (inactive, wrong secret), roles and sessions, permissions boundaries, service
# control policies in a member account, the policy simulators, malformed policies refused before
# anything is written, and the --help of every IAM/STS/Organizations command.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- setup: the admin of `kmsctl init` ---------------------------------------------------------
init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
assert_match "$ACCOUNT" '^[0-9]{12}$' "init prints the account id"
if grep -q '^\[default\]' "$HOME_DIR/credentials" && grep -q '^aws_access_key_id' "$HOME_DIR/credentials"; then
    ok "init saved the admin's access key as the default profile"
else
    fail "HOME/credentials has no default profile"
fi
assert_eq "$(stat -c %a "$HOME_DIR/credentials")" 600 "credentials is mode 0600"
out=$(kms get-caller-identity)
assert_eq "$(json_get Arn <<<"$out")" "arn:aws:iam::$ACCOUNT:user/admin" "the default profile is admin"
assert_eq "$(json_get Account <<<"$out")" "$ACCOUNT" "get-caller-identity Account"

P="$TMP/policies"
mkdir -p "$P"
# policy FILE EFFECT ACTIONS_JSON [CONDITION_JSON]: a one-statement identity policy
policy() {
    local cond=""
    [ -n "${4:-}" ] && cond=", \"Condition\": $4"
    printf '{"Version": "2012-10-17", "Statement": [{"Effect": "%s", "Action": %s, "Resource": "*"%s}]}\n' \
        "$2" "$3" "$cond" >"$1"
}
policy "$P/readers.json" Allow '["kms:Decrypt", "kms:DescribeKey"]'
policy "$P/writers.json" Allow '["kms:Encrypt", "kms:GenerateDataKey"]'

# ---- users and groups --------------------------------------------------------------------------
kms create-group --group-name Readers >/dev/null
kms put-group-policy --group-name Readers --policy-name read --policy-document "file://$P/readers.json"
kms create-group --group-name Writers >/dev/null
kms put-group-policy --group-name Writers --policy-name write --policy-document "file://$P/writers.json"
for u in alice bob carol; do
    out=$(kms create-user --user-name "$u")
    assert_eq "$(json_get User.Arn <<<"$out")" "arn:aws:iam::$ACCOUNT:user/$u" "create-user $u"
done
kms add-user-to-group --group-name Readers --user-name alice
kms add-user-to-group --group-name Writers --user-name bob
expect_error EntityAlreadyExists 254 kms create-user --user-name alice
expect_error NoSuchEntity 254 kms get-user --user-name nobody
out=$(kms get-group --group-name Readers)
assert_eq "$(json_get 'Users[0].UserName' <<<"$out")" alice "get-group lists alice in Readers"
out=$(kms list-groups-for-user --user-name bob)
assert_eq "$(json_get 'Groups[0].GroupName' <<<"$out")" Writers "list-groups-for-user bob"
out=$(kms get-group-policy --group-name Readers --policy-name read)
assert_contains "$(json_get PolicyDocument <<<"$out")" "kms:Decrypt" "get-group-policy gives the document back"

declare -A AK SK
# make_key USER: a new access key of USER, remembered in AK/SK
make_key() {
    local out
    out=$(kms create-access-key --user-name "$1")
    AK[$1]=$(json_get AccessKey.AccessKeyId <<<"$out")
    SK[$1]=$(json_get AccessKey.SecretAccessKey <<<"$out")
    assert_match "${AK[$1]}" '^AKIA[A-Z0-9]{16}$' "create-access-key $1: AccessKeyId"
    assert_match "${SK[$1]}" '^.{40}$' "create-access-key $1: SecretAccessKey"
    assert_eq "$(json_get AccessKey.Status <<<"$out")" Active "create-access-key $1: Active"
}
# as USER ARGS...: kmsctl with USER's access key in the environment
as() {
    local u=$1
    shift
    KMS_ACCESS_KEY_ID=${AK[$u]} KMS_SECRET_ACCESS_KEY=${SK[$u]} "$KMSCTL" --home "$HOME_DIR" "$@"
}
for u in alice bob carol; do make_key "$u"; done
out=$(kms list-access-keys --user-name alice)
assert_eq "$(json_get 'AccessKeyMetadata[0].AccessKeyId' <<<"$out")" "${AK[alice]}" "list-access-keys"
assert_not_contains "$out" "${SK[alice]}" "list-access-keys never shows the secret"
# Listing one's own keys is an action like any other: policies decide.
expect_error AccessDenied 254 as alice list-access-keys
out=$(as alice get-caller-identity)
assert_eq "$(json_get Arn <<<"$out")" "arn:aws:iam::$ACCOUNT:user/alice" "alice's get-caller-identity"
assert_match "$(json_get UserId <<<"$out")" '^AIDA' "alice's UserId"

# ---- the decisions of IAM policies -------------------------------------------------------------
KEY=$(create_key SYMMETRIC_DEFAULT)
KEY_ARN="arn:aws:kms:us-east-1:$ACCOUNT:key/$KEY"
PT=$(printf 'hello, iam' | base64 -w0)

CT=$(as bob kms-encrypt --key-id "$KEY" --plaintext "$PT" --output text --query CiphertextBlob)
assert_match "$CT" '^[A-Za-z0-9+/=]{40,}$' "bob (Writers) encrypts"
expect_error AccessDeniedException 254 as bob kms-decrypt --ciphertext-blob "$CT"
assert_contains "$ERR_MSG" "arn:aws:iam::$ACCOUNT:user/bob" "the refusal names bob's ARN"
assert_contains "$ERR_MSG" "kms:Decrypt" "the refusal names kms:Decrypt"
out=$(as alice kms-decrypt --ciphertext-blob "$CT" --output text --query Plaintext)
assert_eq "$out" "$PT" "alice (Readers) decrypts bob's ciphertext"
expect_error AccessDeniedException 254 as alice kms-encrypt --key-id "$KEY" --plaintext "$PT"
assert_contains "$ERR_MSG" "kms:Encrypt" "alice's encrypt refusal names kms:Encrypt"
out=$(as alice describe-key --key-id "$KEY" --query KeyMetadata.KeyId --output text)
assert_eq "$out" "$KEY" "alice may describe the key"

# An explicit deny with a condition on the encryption context refuses only that tenant.
policy "$P/deny-tenant.json" Deny '"kms:Encrypt"' '{"StringEquals": {"kms:EncryptionContext:tenant": "blocked"}}'
kms put-user-policy --user-name bob --policy-name deny-blocked --policy-document "file://$P/deny-tenant.json"
expect_error AccessDeniedException 254 as bob kms-encrypt --key-id "$KEY" --plaintext "$PT" \
    --encryption-context tenant=blocked
assert_contains "$ERR_MSG" "explicit deny" "the tenant refusal is an explicit deny"
out=$(as bob kms-encrypt --key-id "$KEY" --plaintext "$PT" --encryption-context tenant=acme \
    --output text --query KeyId)
assert_eq "$out" "$KEY_ARN" "bob still encrypts for another tenant"
as bob kms-encrypt --key-id "$KEY" --plaintext "$PT" >/dev/null && ok "bob still encrypts without a context"

# A user without policies is refused everything.
for args in "kms-encrypt --key-id $KEY --plaintext $PT" "kms-decrypt --ciphertext-blob $CT" \
    "describe-key --key-id $KEY" "list-keys" "create-key"; do
    # shellcheck disable=SC2086  # word splitting wanted
    expect_error AccessDeniedException 254 as carol $args
done
# IAM's query protocol names it AccessDenied (AWS's "Common errors"), KMS AccessDeniedException.
for args in "list-users" "get-user --user-name alice" "create-user --user-name mallory"; do
    # shellcheck disable=SC2086  # word splitting wanted
    expect_error AccessDenied 254 as carol $args
done
expect_error NoSuchEntity 254 kms get-user --user-name mallory
as carol get-caller-identity >/dev/null && ok "get-caller-identity needs no permission"

# ---- a key policy without the account's root statement makes IAM policies irrelevant -----------
if kms put-key-policy --help >/dev/null 2>&1; then
    KEY2=$(create_key SYMMETRIC_DEFAULT)
    cat >"$P/key2.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:user/admin"},
   "Action": "kms:*", "Resource": "*"},
  {"Sid": "AliceEncrypts", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:user/alice"},
   "Action": ["kms:Encrypt", "kms:DescribeKey"], "Resource": "*"}]}
EOF
    kms put-key-policy --key-id "$KEY2" --policy-name default --policy "file://$P/key2.json"
    ok "put-key-policy without the root statement"
    expect_error AccessDeniedException 254 as bob kms-encrypt --key-id "$KEY2" --plaintext "$PT"
    assert_contains "$ERR_MSG" "kms:Encrypt" "bob's IAM allow does not count on key2"
    CT2=$(as alice kms-encrypt --key-id "$KEY2" --plaintext "$PT" --output text --query CiphertextBlob)
    assert_match "$CT2" '^[A-Za-z0-9+/=]{40,}$' "alice encrypts under key2: the key policy alone allows"
    expect_error AccessDeniedException 254 as alice kms-decrypt --ciphertext-blob "$CT2"
    assert_contains "$ERR_MSG" "kms:Decrypt" "alice's IAM allow of Decrypt does not count on key2"
else
    fail "put-key-policy is not available: the key policy assertions did not run"
fi

# ---- access keys: inactive, wrong secret ---------------------------------------------------------
kms update-access-key --user-name alice --access-key-id "${AK[alice]}" --status Inactive
expect_error InvalidClientTokenId 254 as alice get-caller-identity
expect_error UnrecognizedClientException 254 as alice kms-decrypt --ciphertext-blob "$CT"
kms update-access-key --user-name alice --access-key-id "${AK[alice]}" --status Active
as alice get-caller-identity >/dev/null && ok "an access key made Active again works"
expect_error SignatureDoesNotMatch 254 env KMS_ACCESS_KEY_ID="${AK[alice]}" \
    KMS_SECRET_ACCESS_KEY="wrongwrongwrongwrongwrongwrongwrongwrong" \
    "$KMSCTL" --home "$HOME_DIR" get-caller-identity
expect_error InvalidClientTokenId 254 env KMS_ACCESS_KEY_ID=AKIAAAAAAAAAAAAAAAAA \
    KMS_SECRET_ACCESS_KEY="${SK[alice]}" "$KMSCTL" --home "$HOME_DIR" get-caller-identity
out=$(kms get-access-key-last-used --access-key-id "${AK[alice]}")
assert_eq "$(json_get UserName <<<"$out")" alice "get-access-key-last-used names alice"

# ---- roles and sessions -------------------------------------------------------------------------
cat >"$P/trust.json" <<EOF
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:user/alice"}, "Action": "sts:AssumeRole"}]}
EOF
policy "$P/encrypt.json" Allow '["kms:Encrypt", "kms:DescribeKey"]'
out=$(kms create-role --role-name Encryptor --assume-role-policy-document "file://$P/trust.json")
ROLE_ARN="arn:aws:iam::$ACCOUNT:role/Encryptor"
assert_eq "$(json_get Role.Arn <<<"$out")" "$ROLE_ARN" "create-role"
kms put-role-policy --role-name Encryptor --policy-name encrypt --policy-document "file://$P/encrypt.json"

creds=$(as alice assume-role --role-arn "$ROLE_ARN" --role-session-name alice-s1)
S_AK=$(json_get Credentials.AccessKeyId <<<"$creds")
S_SK=$(json_get Credentials.SecretAccessKey <<<"$creds")
S_TOK=$(json_get Credentials.SessionToken <<<"$creds")
assert_match "$S_AK" '^ASIA' "assume-role gives an ASIA access key"
assert_eq "$(json_get AssumedRoleUser.Arn <<<"$creds")" \
    "arn:aws:sts::$ACCOUNT:assumed-role/Encryptor/alice-s1" "AssumedRoleUser.Arn"
session() { KMS_ACCESS_KEY_ID=$S_AK KMS_SECRET_ACCESS_KEY=$S_SK KMS_SESSION_TOKEN=$S_TOK "$KMSCTL" --home "$HOME_DIR" "$@"; }
out=$(session get-caller-identity)
assert_eq "$(json_get Arn <<<"$out")" "arn:aws:sts::$ACCOUNT:assumed-role/Encryptor/alice-s1" \
    "the session's get-caller-identity is the assumed-role ARN"
out=$(session kms-encrypt --key-id "$KEY" --plaintext "$PT" --output text --query KeyId)
assert_eq "$out" "$KEY_ARN" "the role's policy applies: the session encrypts"
expect_error AccessDeniedException 254 session kms-decrypt --ciphertext-blob "$CT"
assert_contains "$ERR_MSG" "assumed-role/Encryptor/alice-s1" "alice's own policies do not apply to the session"
expect_error ExpiredToken 254 env KMS_ACCESS_KEY_ID="$S_AK" KMS_SECRET_ACCESS_KEY="$S_SK" \
    KMS_SESSION_TOKEN="not-the-token" "$KMSCTL" --home "$HOME_DIR" get-caller-identity
expect_error AccessDenied 254 as bob assume-role --role-arn "$ROLE_ARN" --role-session-name bob-s1
assert_contains "$ERR_MSG" "sts:AssumeRole" "bob's refusal names sts:AssumeRole"
expect_error AccessDenied 254 as alice assume-role \
    --role-arn "arn:aws:iam::$ACCOUNT:role/NoSuchRole" --role-session-name s2
# A session policy narrows the session to what both allow.
policy "$P/describe-only.json" Allow '"kms:DescribeKey"'
creds=$(as alice assume-role --role-arn "$ROLE_ARN" --role-session-name narrow --policy "file://$P/describe-only.json")
S_AK=$(json_get Credentials.AccessKeyId <<<"$creds")
S_SK=$(json_get Credentials.SecretAccessKey <<<"$creds")
S_TOK=$(json_get Credentials.SessionToken <<<"$creds")
session describe-key --key-id "$KEY" >/dev/null && ok "the narrowed session describes the key"
expect_error AccessDeniedException 254 session kms-encrypt --key-id "$KEY" --plaintext "$PT"
assert_contains "$ERR_MSG" "session policy" "the session policy refuses encrypt"
# GetSessionToken: alice's own permissions in a session.
creds=$(as alice get-session-token --duration-seconds 900)
S_AK=$(json_get Credentials.AccessKeyId <<<"$creds")
S_SK=$(json_get Credentials.SecretAccessKey <<<"$creds")
S_TOK=$(json_get Credentials.SessionToken <<<"$creds")
out=$(session kms-decrypt --ciphertext-blob "$CT" --output text --query Plaintext)
assert_eq "$out" "$PT" "a get-session-token session has alice's permissions"

# ---- permissions boundaries ---------------------------------------------------------------------
out=$(kms create-policy --policy-name DescribeOnly --policy-document "file://$P/describe-only.json")
BOUNDARY="arn:aws:iam::$ACCOUNT:policy/DescribeOnly"
assert_eq "$(json_get Policy.Arn <<<"$out")" "$BOUNDARY" "create-policy"
assert_eq "$(json_get Policy.DefaultVersionId <<<"$out")" v1 "create-policy: v1 is the default"
kms put-user-permissions-boundary --user-name alice --permissions-boundary "$BOUNDARY"
expect_error AccessDeniedException 254 as alice kms-decrypt --ciphertext-blob "$CT"
assert_contains "$ERR_MSG" "permissions boundary" "the boundary refuses what it does not allow"
as alice describe-key --key-id "$KEY" >/dev/null && ok "the boundary lets through what both allow"
kms delete-user-permissions-boundary --user-name alice
out=$(as alice kms-decrypt --ciphertext-blob "$CT" --output text --query Plaintext)
assert_eq "$out" "$PT" "without the boundary alice decrypts again"
# A managed policy attached to carol gives her what it says.
kms attach-user-policy --user-name carol --policy-arn "$BOUNDARY"
as carol describe-key --key-id "$KEY" >/dev/null && ok "attach-user-policy gives carol DescribeKey"
out=$(kms list-attached-user-policies --user-name carol)
assert_eq "$(json_get 'AttachedPolicies[0].PolicyArn' <<<"$out")" "$BOUNDARY" "list-attached-user-policies"
expect_error DeleteConflict 254 kms delete-policy --policy-arn "$BOUNDARY"
kms detach-user-policy --user-name carol --policy-arn "$BOUNDARY"
expect_error AccessDeniedException 254 as carol describe-key --key-id "$KEY"

# ---- the policy simulators ----------------------------------------------------------------------
READERS_DOC=$(cat "$P/readers.json")
cat >"$P/sim.json" <<EOF
{"principal": "arn:aws:iam::$ACCOUNT:user/alice", "action": "kms:Decrypt", "resource": "$KEY_ARN",
 "identityPolicies": [$READERS_DOC]}
EOF
out=$(kms simulate-custom-policy --input "$P/sim.json")
assert_eq "$(json_get EvalDecision <<<"$out")" allowed "simulate-custom-policy on a file: allowed"
out=$(sed 's/"action": "kms:Decrypt"/"action": "kms:Encrypt"/' "$P/sim.json" | kms simulate-custom-policy --input -)
assert_eq "$(json_get EvalDecision <<<"$out")" implicitDeny "simulate-custom-policy on stdin: implicitDeny"
expect_error ValidationError 254 kms simulate-custom-policy --input - <<<'{"principal": "x", "bogus": 1}'

out=$(kms simulate-principal-policy --policy-source-arn "arn:aws:iam::$ACCOUNT:user/alice" \
    --action-names kms:Decrypt kms:Encrypt)
assert_eq "$(json_get 'EvaluationResults[0].EvalDecision' <<<"$out")" allowed "simulate-principal-policy: alice may decrypt"
assert_eq "$(json_get 'EvaluationResults[1].EvalDecision' <<<"$out")" implicitDeny "simulate-principal-policy: alice may not encrypt"
assert_eq "$(json_get 'EvaluationResults[0].EvalResourceName' <<<"$out")" "*" "the default resource is *"
assert_contains "$(json_get 'EvaluationResults[0].MatchedStatements' <<<"$out")" "group/Readers" \
    "the matched statement is the Readers group's policy"
assert_eq "$(json_get IsTruncated <<<"$out")" "<missing>" "IsTruncated, a paging member, left out as the aws CLI does"
out=$(kms simulate-principal-policy --policy-source-arn "arn:aws:iam::$ACCOUNT:user/bob" \
    --action-names kms:Encrypt --resource-arns "$KEY_ARN" \
    --context-entries '[{"ContextKeyName": "kms:EncryptionContext:tenant", "ContextKeyValues": ["blocked"], "ContextKeyType": "string"}]')
assert_eq "$(json_get 'EvaluationResults[0].EvalDecision' <<<"$out")" explicitDeny "simulate-principal-policy sees bob's conditional deny"
out=$(kms simulate-principal-policy --policy-source-arn "$ROLE_ARN" --action-names kms:Encrypt kms:Decrypt)
assert_eq "$(json_get 'EvaluationResults[0].EvalDecision' <<<"$out")" allowed "simulate-principal-policy of a role: encrypt"
assert_eq "$(json_get 'EvaluationResults[1].EvalDecision' <<<"$out")" implicitDeny "simulate-principal-policy of a role: decrypt"
if [ -n "${KEY2:-}" ]; then
    # Key ARNs of this home bring in their key policy: on key2 only the key policy counts.
    KEY2_ARN="arn:aws:kms:us-east-1:$ACCOUNT:key/$KEY2"
    out=$(kms simulate-principal-policy --policy-source-arn "arn:aws:iam::$ACCOUNT:user/alice" \
        --action-names kms:Encrypt kms:Decrypt --resource-arns "$KEY2_ARN")
    assert_eq "$(json_get 'EvaluationResults[0].EvalDecision' <<<"$out")" allowed \
        "simulate-principal-policy on key2: the key policy allows alice to encrypt"
    assert_contains "$(json_get 'EvaluationResults[0].MatchedStatements' <<<"$out")" '"resource"' \
        "the matched statement is the key policy's"
    assert_eq "$(json_get 'EvaluationResults[1].EvalDecision' <<<"$out")" implicitDeny \
        "simulate-principal-policy on key2: alice's IAM allow of decrypt does not count"
fi
expect_error AccessDenied 254 as carol simulate-principal-policy \
    --policy-source-arn "arn:aws:iam::$ACCOUNT:user/alice" --action-names kms:Decrypt

# ---- malformed policies are refused before anything is written ----------------------------------
policy "$P/bad-op.json" Allow '"kms:Decrypt"' '{"StringEqual": {"kms:EncryptionContext:x": "y"}}'
policy "$P/bad-effect.json" Maybe '"kms:Decrypt"'
expect_error MalformedPolicyDocument 254 kms put-user-policy --user-name alice \
    --policy-name bad --policy-document "file://$P/bad-op.json"
assert_contains "$ERR_MSG" "StringEqual" "the message names the unknown operator"
assert_contains "$ERR_MSG" "Condition" "the message names the Condition element"
out=$(kms list-user-policies --user-name alice)
assert_eq "$(json_get PolicyNames <<<"$out")" "[]" "no inline policy was written"
expect_error MalformedPolicyDocument 254 kms put-group-policy --group-name Readers \
    --policy-name bad --policy-document "file://$P/bad-effect.json"
assert_contains "$ERR_MSG" "Effect" "the message names Effect"
expect_error NoSuchEntity 254 kms get-group-policy --group-name Readers --policy-name bad
expect_error MalformedPolicyDocument 254 kms create-policy --policy-name Bad \
    --policy-document "file://$P/bad-op.json"
expect_error NoSuchEntity 254 kms get-policy --policy-arn "arn:aws:iam::$ACCOUNT:policy/Bad"
# A trust policy needs a Principal; an identity policy must not have one.
expect_error MalformedPolicyDocument 254 kms create-role --role-name BadTrust \
    --assume-role-policy-document "file://$P/describe-only.json"
assert_contains "$ERR_MSG" "Principal" "the trust policy refusal names Principal"
expect_error NoSuchEntity 254 kms get-role --role-name BadTrust
expect_error MalformedPolicyDocument 254 kms put-role-policy --role-name Encryptor \
    --policy-name bad --policy-document "file://$P/trust.json"
assert_contains "${ERR_MSG,,}" "principal" "the identity policy refusal names the principal"
expect_error MalformedPolicyDocument 254 kms update-assume-role-policy --role-name Encryptor \
    --policy-document "file://$P/bad-op.json"
out=$(kms get-role --role-name Encryptor --query Role.AssumeRolePolicyDocument --output text)
assert_contains "$out" "user/alice" "the trust policy was not replaced"
expect_error MalformedPolicyDocument 254 as alice assume-role --role-arn "$ROLE_ARN" \
    --role-session-name bad --policy "file://$P/bad-op.json"
expect_error MalformedPolicyDocument 254 kms create-policy-version --policy-arn "$BOUNDARY" \
    --policy-document "file://$P/bad-effect.json" --set-as-default
# IAM's validation (IAM User Guide, "IAM JSON policy elements: Version", "Amazon Resource Names
# (ARNs)"): a managed policy needs 2012-10-17; IAM resources have no region and one of IAM's
# types; partitions are AWS's. IAM's words come first. What IAM accepts is accepted.
printf '{"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}\n' >"$P/old.json"
printf '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam:us-east-1:%s:user/alice"}]}\n' "$ACCOUNT" >"$P/region.json"
printf '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::%s:bogus/x"}]}\n' "$ACCOUNT" >"$P/bogus.json"
printf '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:b:s3:::x"}]}\n' >"$P/partition.json"
printf '{"Version": "2012-10-17", "Statement": [{"Sid": "Odd_But_Fine", "Effect": "Allow", "Action": ["s3:GetObject", null], "Resource": "arn:aws:fdsasf", "Condition": {"StringEquals": {}}}]}\n' >"$P/odd.json"
expect_error MalformedPolicyDocument 254 kms create-policy --policy-name Old --policy-document "file://$P/old.json"
assert_match "$ERR_MSG" '^Policy document must be version 2012-10-17 or greater\.' "a managed policy without Version: IAM's words"
kms put-user-policy --user-name alice --policy-name old --policy-document "file://$P/old.json" &&
    ok "an inline policy without Version is accepted" || fail "an inline policy without Version is refused"
kms delete-user-policy --user-name alice --policy-name old
expect_error MalformedPolicyDocument 254 kms create-policy --policy-name Region --policy-document "file://$P/region.json"
assert_match "$ERR_MSG" "^Resource arn:aws:iam:us-east-1:$ACCOUNT:user/alice can not contain region information\\." "an IAM resource with a region"
expect_error MalformedPolicyDocument 254 kms put-user-policy --user-name alice --policy-name b \
    --policy-document "file://$P/bogus.json"
assert_match "$ERR_MSG" '^IAM resource path must either be "\*" or start with user/' "an IAM resource of no IAM type"
expect_error MalformedPolicyDocument 254 kms create-policy --policy-name Part --policy-document "file://$P/partition.json"
assert_match "$ERR_MSG" '^Partition "b" is not valid for resource "arn:b:s3:::x"\.' "an unknown partition"
ODD=$(kms create-policy --policy-name Odd --policy-document "file://$P/odd.json" --query Policy.Arn --output text) &&
    ok "underscores in a Sid, a null in Action, arn:aws:fdsasf, an empty condition block: accepted" ||
    fail "a document IAM accepts is refused"
kms delete-policy --policy-arn "$ODD"
out=$(kms list-policy-versions --policy-arn "$BOUNDARY")
assert_eq "$(json_get 'Versions[1]' <<<"$out")" "<missing>" "no policy version was written"
echo 'not json' >"$P/garbage.json"
expect_error MalformedPolicyDocument 254 kms put-user-policy --user-name alice \
    --policy-name garbage --policy-document "file://$P/garbage.json"

# ---- passwords and MFA -------------------------------------------------------------------------
PW1='Correct-Horse-Battery-9'
PW2='Another-Staple-Of-Zebra-7'
printf '%s' "$PW1" >"$P/pw1"
printf '%s' "$PW2" >"$P/pw2"
printf 'short' >"$P/pw-short"
expect_error PasswordPolicyViolation 254 kms create-login-profile --user-name alice \
    --password "file://$P/pw-short"
out=$(kms create-login-profile --user-name alice --password "file://$P/pw1")
assert_eq "$(json_get LoginProfile.UserName <<<"$out")" alice "create-login-profile"
out=$(kms get-account-password-policy)
assert_eq "$(json_get PasswordPolicy.MinimumPasswordLength <<<"$out")" 14 "init set the password policy"
# alice changes her own password once a policy allows it.
policy "$P/self-pw.json" Allow '"iam:ChangePassword"'
kms put-user-policy --user-name alice --policy-name self-pw --policy-document "file://$P/self-pw.json"
expect_error AccessDenied 254 as alice change-password --old-password "file://$P/pw2" \
    --new-password "file://$P/pw1"
as alice change-password --old-password "file://$P/pw1" --new-password "file://$P/pw2" &&
    ok "alice changes her own password"
expect_error AccessDenied 254 as bob change-password --old-password "file://$P/pw1" \
    --new-password "file://$P/pw2"

out=$(kms create-virtual-mfa-device --virtual-mfa-device-name alice --outfile "$P/alice.seed" \
    --bootstrap-method Base32StringSeed)
SERIAL=$(json_get VirtualMFADevice.SerialNumber <<<"$out")
assert_eq "$SERIAL" "arn:aws:iam::$ACCOUNT:mfa/alice" "create-virtual-mfa-device: SerialNumber"
assert_eq "$(json_get VirtualMFADevice.Base32StringSeed <<<"$out")" "<missing>" "--outfile keeps the seed off stdout"
assert_eq "$(stat -c %a "$P/alice.seed")" 600 "the seed file is 0600"
# totp SEED_FILE STEP_OFFSET: the RFC 6238 code (SHA-1, 6 digits, 30 s)
totp() {
    "$PY" - "$1" "$2" <<'PY'
import base64, hashlib, hmac, struct, sys, time
seed = open(sys.argv[1]).read().strip()
key = base64.b32decode(seed + "=" * (-len(seed) % 8), casefold=True)
step = int(time.time()) // 30 + int(sys.argv[2])
mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000))
PY
}
expect_error InvalidAuthenticationCode 254 kms enable-mfa-device --user-name alice \
    --serial-number "$SERIAL" --authentication-code1 000000 --authentication-code2 000001
kms enable-mfa-device --user-name alice --serial-number "$SERIAL" \
    --authentication-code1 "$(totp "$P/alice.seed" -1)" --authentication-code2 "$(totp "$P/alice.seed" 0)"
out=$(kms list-mfa-devices --user-name alice)
assert_eq "$(json_get 'MFADevices[0].SerialNumber' <<<"$out")" "$SERIAL" "enable-mfa-device assigns it"
expect_error DeleteConflict 254 kms delete-virtual-mfa-device --serial-number "$SERIAL"
kms deactivate-mfa-device --user-name alice --serial-number "$SERIAL"
kms delete-virtual-mfa-device --serial-number "$SERIAL"
out=$(kms list-virtual-mfa-devices)
assert_eq "$(json_get VirtualMFADevices <<<"$out")" "[]" "delete-virtual-mfa-device"

# ---- Organizations: an SCP restricts a member account, never the management account -----------
out=$(kms describe-organization)
assert_eq "$(json_get Organization.MasterAccountId <<<"$out")" "$ACCOUNT" "init made this the management account"
ROOT_ID=$(kms list-roots --output text --query 'Roots[0].Id')
assert_match "$ROOT_ID" '^r-[0-9a-z]{4,32}$' "list-roots"
out=$(kms create-account --email dev@example.com --account-name Dev)
assert_eq "$(json_get CreateAccountStatus.State <<<"$out")" SUCCEEDED "create-account succeeds"
MEMBER=$(json_get CreateAccountStatus.AccountId <<<"$out")
assert_match "$MEMBER" '^[0-9]{12}$' "create-account gives an account id"
out=$(kms list-parents --child-id "$MEMBER")
assert_eq "$(json_get 'Parents[0].Id' <<<"$out")" "$ROOT_ID" "the new account is under the root"

creds=$(kms assume-role --role-arn "arn:aws:iam::$MEMBER:role/OrganizationAccountAccessRole" \
    --role-session-name admin-in-dev)
M_AK=$(json_get Credentials.AccessKeyId <<<"$creds")
M_SK=$(json_get Credentials.SecretAccessKey <<<"$creds")
M_TOK=$(json_get Credentials.SessionToken <<<"$creds")
member() { KMS_ACCESS_KEY_ID=$M_AK KMS_SECRET_ACCESS_KEY=$M_SK KMS_SESSION_TOKEN=$M_TOK "$KMSCTL" --home "$HOME_DIR" "$@"; }
out=$(member get-caller-identity)
assert_eq "$(json_get Account <<<"$out")" "$MEMBER" "the member session acts in the member account"
out=$(member create-user --user-name dev1)
assert_eq "$(json_get User.Arn <<<"$out")" "arn:aws:iam::$MEMBER:user/dev1" "the member account's admin creates a user"
expect_error AccessDeniedException 254 member create-organizational-unit --parent-id "$ROOT_ID" --name X

# Issue 15 item 4 across accounts: a member account's role trusting a user of the management
# account is bound to that user's unique id once the user is deleted, as AWS shows it.
kms create-user --user-name xacct >/dev/null
XACCT_ID=$(kms get-user --user-name xacct --output text --query User.UserId)
cat >"$P/xacct-trust.json" <<EOF
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:user/xacct"}, "Action": "sts:AssumeRole"}]}
EOF
member create-role --role-name FromMgmt --assume-role-policy-document "file://$P/xacct-trust.json" >/dev/null
kms delete-user --user-name xacct
trust=$(member get-role --role-name FromMgmt --query Role.AssumeRolePolicyDocument)
assert_contains "$trust" "$XACCT_ID" "another account's trust policy names the deleted user's unique id"
assert_not_contains "$trust" "user/xacct" "and no longer the ARN a re-created user would have"

cat >"$P/scp.json" <<'EOF'
{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:CreateUser", "Resource": "*"}]}
EOF
out=$(kms org-create-policy --name DenyCreateUser --type SERVICE_CONTROL_POLICY \
    --description "no new users" --content "file://$P/scp.json")
SCP_ID=$(json_get Policy.PolicySummary.Id <<<"$out")
assert_match "$SCP_ID" '^p-[0-9a-z]{8,}$' "org-create-policy"
kms attach-policy --policy-id "$SCP_ID" --target-id "$MEMBER"
expect_error AccessDenied 254 member create-user --user-name dev2
assert_contains "$ERR_MSG" "service control policy" "the member account is refused by the SCP"
member list-users >/dev/null && ok "the SCP refuses only what it denies"
kms attach-policy --policy-id "$SCP_ID" --target-id "$ACCOUNT"
kms create-user --user-name dave >/dev/null && ok "SCPs do not restrict the management account"
kms detach-policy --policy-id "$SCP_ID" --target-id "$ACCOUNT"
out=$(kms list-policies-for-target --target-id "$MEMBER" --filter SERVICE_CONTROL_POLICY)
assert_contains "$out" "$SCP_ID" "list-policies-for-target"
kms detach-policy --policy-id "$SCP_ID" --target-id "$MEMBER"
member create-user --user-name dev2 >/dev/null && ok "detach-policy lifts the SCP"
# The same through an OU.
OU_ID=$(kms create-organizational-unit --parent-id "$ROOT_ID" --name Workloads \
    --output text --query OrganizationalUnit.Id)
assert_match "$OU_ID" '^ou-' "create-organizational-unit"
kms move-account --account-id "$MEMBER" --source-parent-id "$ROOT_ID" --destination-parent-id "$OU_ID"
kms attach-policy --policy-id "$SCP_ID" --target-id "$OU_ID"
expect_error AccessDenied 254 member create-user --user-name dev3
assert_contains "$ERR_MSG" "service control policy" "an SCP on the OU applies to the account in it"
out=$(kms list-targets-for-policy --policy-id "$SCP_ID")
assert_contains "$out" "$OU_ID" "list-targets-for-policy"
expect_error PolicyInUseException 254 kms org-delete-policy --policy-id "$SCP_ID"
expect_error MalformedPolicyDocumentException 254 kms org-create-policy --name Bad \
    --type SERVICE_CONTROL_POLICY --description bad --content "file://$P/bad-op.json"
out=$(kms org-list-policies --filter SERVICE_CONTROL_POLICY)
assert_not_contains "$out" '"Bad"' "the malformed SCP was not created"

# ---- --help of every IAM, STS and Organizations command -----------------------------------------
cmds=$("$KMSCTL" --help | awk '/^Identities, credentials and organizations/ {on = 1; next}
    on && /^$/ {on = 0} on && /^  [a-z]/ {print $1}')
n=0
bad=""
for c in $cmds; do
    n=$((n + 1))
    rc=0
    help=$("$KMSCTL" "$c" --help 2>&1) || rc=$?
    if [ "$rc" -ne 0 ] || [[ "$help" != *"kmsctl $c"* ]] || [[ "$help" != *[Ee]xample* ]]; then
        bad="$bad $c"
    fi
done
if [ "$n" -ge 100 ]; then ok "kmsctl --help lists $n IAM/STS/Organizations commands"; else fail "only $n IAM commands listed"; fi
assert_eq "$bad" "" "--help of every IAM/STS/Organizations command exits 0 and shows an example"

# ---- sign-in does not replace a profile that holds a long-term access key (issue 15 item 5) -----
# profile_of NAME: the lines of profile NAME in HOME/credentials
profile_of() { awk -v p="[$1]" '/^\[/ {on = ($0 == p)} on' "$HOME_DIR/credentials"; }
ADMIN_AK=$(profile_of default | sed -n 's/^aws_access_key_id = //p')
assert_match "$ADMIN_AK" '^AKIA' "the default profile holds the admin's long-term access key"
kms create-user --user-name signer >/dev/null
kms create-login-profile --user-name signer --password 'Correct-Horse-9-Battery' >/dev/null
signer_in() { KMS_PASSWORD='Correct-Horse-9-Battery' kms sign-in --user-name signer "$@"; }
before=$(sha256sum <"$HOME_DIR/credentials")
expect_error AlreadyExistsException 254 signer_in --save-profile default
assert_contains "$ERR_MSG" "profile 'default'" "the refusal names the profile"
assert_contains "$ERR_MSG" "$ADMIN_AK" "the refusal names the access key id that would be lost"
assert_contains "$ERR_MSG" "--force" "the refusal says --force replaces it"
assert_contains "$ERR_MSG" "--save-profile" "the refusal says another profile name avoids it"
assert_not_contains "$ERR_MSG" "$(profile_of default | sed -n 's/^aws_secret_access_key = //p')" \
    "the refusal does not show the secret"
assert_eq "$(sha256sum <"$HOME_DIR/credentials")" "$before" "the refused sign-in left the credentials file as it was"
assert_eq "$(kms get-caller-identity --output text --query Arn)" "arn:aws:iam::$ACCOUNT:user/admin" \
    "the default profile still acts as the admin"
# A profile of temporary credentials (a session token) is replaced, as before.
signer_in --save-profile signer-session >/dev/null
first=$(profile_of signer-session | sed -n 's/^aws_access_key_id = //p')
assert_match "$first" '^ASIA' "sign-in saves temporary credentials"
signer_in --save-profile signer-session >/dev/null && ok "a profile of temporary credentials is replaced"
assert_ne "$(profile_of signer-session | sed -n 's/^aws_access_key_id = //p')" "$first" \
    "the session profile holds the new session"
# A long-term key of another user's profile: refused, then replaced with --force.
out=$(kms create-access-key --user-name signer)
SIGNER_AK=$(json_get AccessKey.AccessKeyId <<<"$out")
printf '[signer-key]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$SIGNER_AK" \
    "$(json_get AccessKey.SecretAccessKey <<<"$out")" >>"$HOME_DIR/credentials"
expect_error AlreadyExistsException 254 signer_in --save-profile signer-key
assert_contains "$ERR_MSG" "profile 'signer-key'" "the refusal names the other profile"
assert_contains "$ERR_MSG" "$SIGNER_AK" "the refusal names that profile's access key id"
assert_eq "$(kms --profile signer-key get-caller-identity --output text --query Arn)" \
    "arn:aws:iam::$ACCOUNT:user/signer" "the refused profile still holds its long-term key"
signer_in --save-profile signer-key --force >/dev/null && ok "--force replaces a long-term key's profile"
assert_match "$(profile_of signer-key | sed -n 's/^aws_access_key_id = //p')" '^ASIA' \
    "--force: the profile now holds the session"
assert_contains "$(profile_of signer-key)" "aws_session_token = " "--force: with its session token"
assert_eq "$(profile_of default | sed -n 's/^aws_access_key_id = //p')" "$ADMIN_AK" \
    "--force on one profile leaves the others alone"

# ---- the credential report ---------------------------------------------------------------------
expect_error ReportNotPresent 254 kms get-credential-report
expect_error AccessDenied 254 as carol generate-credential-report
out=$(kms generate-credential-report)
assert_eq "$(json_get State <<<"$out")" COMPLETE "generate-credential-report is COMPLETE at once"
kms get-credential-report --output text --query Content | base64 -d >"$TMP/report.csv"
assert_eq "$(kms get-credential-report --output text --query ReportFormat)" text/csv \
    "get-credential-report ReportFormat"
users=$(kms list-users --output json | "$PY" -c 'import json,sys
print(" ".join(sorted(u["UserName"] for u in json.load(sys.stdin)["Users"])))')
rows=$("$PY" - "$TMP/report.csv" "$ACCOUNT" <<'PY'
import csv, sys
with open(sys.argv[1], newline="") as f:
    rows = list(csv.DictReader(f))
assert rows[0]["user"] == "<root_account>", rows[0]
assert rows[0]["arn"] == "arn:aws:iam::%s:root" % sys.argv[2], rows[0]
assert all(len(r) == 22 and None not in r for r in rows), "every row has the 22 columns"
print(" ".join(sorted(r["user"] for r in rows[1:])))
PY
)
assert_eq "$rows" "$users" "the credential report parses as CSV and has a row per user, root first"
alice=$(grep '^alice,' "$TMP/report.csv" | cut -d, -f9,10,14)
assert_match "$alice" '^true,[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\+00:00,false$' \
    "alice's row: one active access key and no second one"
# Another process reads what this one generated; the report is audited like every call.
out=$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=GenerateCredentialReport)
assert_contains "$out" '"GenerateCredentialReport"' "generate-credential-report is in the trail"
