#!/usr/bin/env bash
# IAM's answers as the aws CLI v2 sees them through kmsd: the query protocol's codes of botocore's
# iam model ("MalformedPolicyDocument", "NoSuchEntity", "EntityAlreadyExists", "DeleteConflict")
# with their HTTP statuses, IAM's words first in the message; KMS's operations keep KMS's names.
# The same documents through kmsctl answer the same codes.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KMSD=${KMSD:-$(dirname "$KMSCTL")/kmsd}
[ -x "$KMSD" ] || { fail "kmsd not built ($KMSD)"; exit 1; }
AWS=/usr/bin/aws
[ -x "$AWS" ] || { fail "the aws CLI v2 is not installed (Debian package awscli)"; exit 1; }

PIDS=()
# stop_kmsd PID: SIGTERM, then its exit status in STOPPED
stop_kmsd() {
    kill -TERM "$1"
    STOPPED=0
    wait "$1" || STOPPED=$?
}
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; _on_exit' EXIT

init_home
start_kmsd iam "$HOME_DIR"
CA_PEM="$HOME_DIR/kmsd-ca.pem"
ACCT=$(json_get AccountId <"$TMP/init.json")
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1 AWS_CA_BUNDLE="$CA_PEM"
AWS_ACCESS_KEY_ID=$(awk -F' *= *' '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1=="aws_access_key_id"{print $2}' "$HOME_DIR/credentials")
AWS_SECRET_ACCESS_KEY=$(awk -F' *= *' '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1=="aws_secret_access_key"{print $2}' "$HOME_DIR/credentials")
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=""
awsk() { "$AWS" --endpoint-url "https://127.0.0.1:$PORT" "$@"; }
# aws_error WANT_PREFIX WHAT ARGS...: the CLI fails and prints WANT_PREFIX (its error line)
aws_error() {
    local want=$1 what=$2 out
    shift 2
    out=$(awsk "$@" 2>&1 >/dev/null) && { fail "$what: the call succeeded"; return 0; }
    assert_contains "$out" "$want" "$what"
}

printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}' >"$TMP/good.json"
printf '{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}' >"$TMP/noversion.json"
printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam:us-east-1:%s:user/x"}]}' "$ACCT" >"$TMP/region.json"
printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:b:s3:::x"}]}' >"$TMP/partition.json"
printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::%s:bogus/x"}]}' "$ACCT" >"$TMP/bogus.json"
printf '{"Version": "2012-10-17", "Statement": [' >"$TMP/syntax.json"

# ---- Malformed documents: IAM's code and words ----------------------------------------------------
aws_error "An error occurred (MalformedPolicyDocument) when calling the CreatePolicy operation: Policy document must be version 2012-10-17 or greater." \
    "aws iam create-policy without Version: MalformedPolicyDocument, IAM's words" \
    iam create-policy --policy-name NoVersion --policy-document "file://$TMP/noversion.json"
aws_error "An error occurred (MalformedPolicyDocument) when calling the CreatePolicy operation: Syntax errors in policy." \
    "a document that is not JSON: Syntax errors in policy." \
    iam create-policy --policy-name Syntax --policy-document "file://$TMP/syntax.json"
aws_error "An error occurred (MalformedPolicyDocument) when calling the CreatePolicy operation: Resource arn:aws:iam:us-east-1:$ACCT:user/x can not contain region information." \
    "an IAM resource with a region" \
    iam create-policy --policy-name Region --policy-document "file://$TMP/region.json"
aws_error "An error occurred (MalformedPolicyDocument) when calling the CreatePolicy operation: Partition \"b\" is not valid for resource \"arn:b:s3:::x\"." \
    "an unknown partition" \
    iam create-policy --policy-name Partition --policy-document "file://$TMP/partition.json"
aws_error "An error occurred (MalformedPolicyDocument) when calling the CreatePolicy operation: IAM resource path must either be \"*\" or start with user/" \
    "an IAM resource of no IAM type" \
    iam create-policy --policy-name Bogus --policy-document "file://$TMP/bogus.json"

# ---- IAM's other codes ------------------------------------------------------------------------------
ARN=$(awsk iam create-policy --policy-name Good --policy-document "file://$TMP/good.json" \
    --query Policy.Arn --output text 2>"$TMP/aws.err" || true)
assert_eq "$ARN" "arn:aws:iam::$ACCT:policy/Good" "aws iam create-policy of a valid document $(head -c 300 "$TMP/aws.err")"
D=$(awsk iam get-policy --policy-arn "$ARN" --query Policy.CreateDate --output text 2>&1 || true)
assert_match "$D" '^20[0-9]{2}-' "CreateDate reaches the CLI as a time"
aws_error "An error occurred (EntityAlreadyExists) when calling the CreatePolicy operation" \
    "the same policy again: EntityAlreadyExists" \
    iam create-policy --policy-name Good --policy-document "file://$TMP/good.json"
aws_error "An error occurred (NoSuchEntity) when calling the GetPolicy operation" \
    "a policy that does not exist: NoSuchEntity" \
    iam get-policy --policy-arn "arn:aws:iam::$ACCT:policy/NoVersion"
awsk iam create-user --user-name carol >/dev/null 2>"$TMP/aws.err" || fail "aws iam create-user: $(cat "$TMP/aws.err")"
aws_error "An error occurred (EntityAlreadyExists) when calling the CreateUser operation: User with name carol already exists." \
    "aws iam create-user twice: EntityAlreadyExists" iam create-user --user-name carol
aws_error "An error occurred (MalformedPolicyDocument) when calling the PutUserPolicy operation" \
    "aws iam put-user-policy with a bad document" \
    iam put-user-policy --user-name carol --policy-name p --policy-document "file://$TMP/partition.json"
awsk iam put-user-policy --user-name carol --policy-name p --policy-document "file://$TMP/noversion.json" \
    2>"$TMP/aws.err" && ok "an inline policy without Version is accepted, as IAM accepts it" ||
    fail "put-user-policy without Version: $(cat "$TMP/aws.err")"
aws_error "An error occurred (DeleteConflict) when calling the DeleteUser operation" \
    "deleting a user with an inline policy: DeleteConflict" iam delete-user --user-name carol
aws_error "An error occurred (NoSuchEntity) when calling the GetUser operation: The user with name nobody cannot be found." \
    "aws iam get-user of nobody: NoSuchEntity" iam get-user --user-name nobody

# ---- HTTP statuses of botocore's iam model ------------------------------------------------------------
awsk iam get-user --user-name nobody --debug >/dev/null 2>"$TMP/debug.err" || true
assert_match "$(grep -o 'Response headers: .*' "$TMP/debug.err" | head -1)$(grep -oE '"POST / HTTP/1.1" [0-9]+' "$TMP/debug.err" | head -1)" \
    '404' "NoSuchEntity is HTTP 404"

# ---- KMS keeps KMS's names --------------------------------------------------------------------------
KEY=$(awsk kms create-key --query KeyMetadata.KeyId --output text 2>"$TMP/aws.err" || true)
aws_error "An error occurred (MalformedPolicyDocumentException) when calling the PutKeyPolicy operation" \
    "aws kms put-key-policy with a bad document: MalformedPolicyDocumentException" \
    kms put-key-policy --key-id "$KEY" --policy-name default --policy "file://$TMP/partition.json"

# ---- kmsctl answers the same codes --------------------------------------------------------------------
expect_error MalformedPolicyDocument 254 kms create-policy --policy-name NoVersion \
    --policy-document "file://$TMP/noversion.json"
assert_contains "$ERR_MSG" "Policy document must be version 2012-10-17 or greater." "kmsctl: IAM's words first"
expect_error NoSuchEntity 254 kms get-user --user-name nobody
expect_error MalformedPolicyDocumentException 254 kms put-key-policy --key-id "$KEY" \
    --policy "file://$TMP/partition.json"

stop_kmsd "$PID"
assert_eq "$STOPPED" "0" "kmsd stops"
