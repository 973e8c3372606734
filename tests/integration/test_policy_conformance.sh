#!/usr/bin/env bash
# Policy evaluation through the gate and kmsctl (issue 18, policy evaluation categories 3 and 4;
# the cases themselves are tests/unit/policy_cases/*.json, run by test_policy):
# - an action that takes no resource ARN (kms:CreateKey, kms:ListKeys, iam:ListUsers) is allowed
#   by a statement for it whatever its Resource says, and denied by such a Deny; an action that
#   takes a key ARN is still matched against Resource;
# - the simulator accepts an anonymous caller.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_home
W="$TMP/w"
mkdir "$W"
ACCOUNT=$(kms get-caller-identity --query Account --output text)
K=$(create_key SYMMETRIC_DEFAULT)
kms create-user --user-name carol >/dev/null
out=$(kms create-access-key --user-name carol)
CAK=$(json_get AccessKey.AccessKeyId <<<"$out")
CSK=$(json_get AccessKey.SecretAccessKey <<<"$out")
carol() { KMS_ACCESS_KEY_ID=$CAK KMS_SECRET_ACCESS_KEY=$CSK "$KMSCTL" --home "$HOME_DIR" "$@"; }

# ---- actions without a resource ARN: the Resource element does not restrict them -----------------
cat >"$W/scoped.json" <<JSON
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["kms:CreateKey", "kms:ListKeys", "kms:Decrypt", "iam:ListUsers"],
   "Resource": "arn:aws:kms:us-east-1:$ACCOUNT:key/no-such-key"}]}
JSON
kms put-user-policy --user-name carol --policy-name scoped --policy-document "file://$W/scoped.json"
out=$(carol create-key --description by-carol)
assert_match "$(json_get KeyMetadata.KeyId <<<"$out")" '^[0-9a-f-]{36}$' \
    "CreateKey allowed by a statement whose Resource names a key"
carol list-keys >/dev/null && ok "ListKeys allowed by the same statement"
carol list-users >/dev/null && ok "iam:ListUsers allowed by a statement whose Resource names a key"
blob=$(kms kms-encrypt --key-id "$K" --plaintext fileb://<(printf hi) --output text --query CiphertextBlob)
expect_error AccessDeniedException 254 carol kms-decrypt --ciphertext-blob fileb://<(base64 -d <<<"$blob")
assert_contains "$ERR_MSG" "kms:Decrypt" "Decrypt takes a key ARN: the statement for another key does not allow it"

# A wildcard action scoped to some resource reaches no account-wide action (hostile review: "kms:*"
# on one key must not allow CreateKey, nor "iam:*" on one user the password policy).
cat >"$W/wild.json" <<JSON
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["kms:*", "iam:*"],
   "Resource": ["arn:aws:kms:us-east-1:$ACCOUNT:key/no-such-key", "arn:aws:iam::$ACCOUNT:user/carol"]}]}
JSON
kms put-user-policy --user-name carol --policy-name scoped --policy-document "file://$W/wild.json"
expect_error AccessDeniedException 254 carol create-key
expect_error AccessDeniedException 254 carol generate-random --number-of-bytes 8
expect_error AccessDenied 254 carol update-account-password-policy --minimum-password-length 6
expect_error AccessDenied 254 carol list-users
cat >"$W/deny-one.json" <<JSON
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
  {"Effect": "Deny", "Action": "kms:ListKeys", "Resource": "arn:aws:kms:us-east-1:$ACCOUNT:key/no-such-key"}]}
JSON
kms put-user-policy --user-name carol --policy-name scoped --policy-document "file://$W/deny-one.json"
expect_error AccessDeniedException 254 carol list-keys
assert_contains "$ERR_MSG" "explicit deny" "a Deny for ListKeys applies whatever its Resource names"
carol describe-key --key-id "$K" >/dev/null && ok "and the Allow still covers the rest"

# ---- the simulator and the anonymous principal -----------------------------------------------------
cat >"$W/anon.json" <<JSON
{"principal": "anonymous", "action": "kms:Decrypt",
 "resource": "arn:aws:kms:us-east-1:$ACCOUNT:key/k1",
 "resourcePolicy": {"Version": "2012-10-17", "Statement": [
   {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]},
 "serviceControlPolicies": [[{"Version": "2012-10-17", "Statement": [
   {"Effect": "Deny", "Action": "*", "Resource": "*"}]}]]}
JSON
out=$(kms simulate-custom-policy --input "$W/anon.json")
assert_eq "$(json_get EvalDecision <<<"$out")" allowed \
    "simulate-custom-policy: an anonymous caller allowed by Principal *, SCPs not applied"
sed 's/"Principal": "\*"/"Principal": {"AWS": "'"$ACCOUNT"'"}/' "$W/anon.json" >"$W/anon2.json"
out=$(kms simulate-custom-policy --input "$W/anon2.json")
assert_eq "$(json_get EvalDecision <<<"$out")" implicitDeny "an account principal does not name an anonymous caller"

