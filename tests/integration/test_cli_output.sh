#!/usr/bin/env bash
# kmsctl's --output text, table, yaml and yaml-stream against the aws CLI v2 itself (issue 18, CLI
# conventions): the same home answers kmsctl directly and aws through kmsd, and the two outputs
# must be byte for byte the same. The IAM commands, which kmsd does not serve, are compared with
# the aws CLI's own formatters (awscli.formatter, Debian's awscli) run on kmsctl's JSON.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KMSD=${KMSD:-$(dirname "$KMSCTL")/kmsd}
[ -x "$KMSD" ] || { fail "kmsd not built ($KMSD)"; exit 1; }
AWS=/usr/bin/aws
[ -x "$AWS" ] || { fail "the aws CLI v2 is not installed (Debian package awscli)"; exit 1; }
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; _on_exit' EXIT

init_home
start_kmsd out "$HOME_DIR" --no-scheduler
cred() { awk -F' *= *' -v k="$1" '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1==k{print $2}' "$HOME_DIR/credentials"; }
AWS_ACCESS_KEY_ID=$(cred aws_access_key_id)
AWS_SECRET_ACCESS_KEY=$(cred aws_secret_access_key)
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1 AWS_CA_BUNDLE="$HOME_DIR/kmsd-ca.pem"
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=""
awsk() { "$AWS" --endpoint-url "https://127.0.0.1:$PORT" "$@"; }
# The NextToken of --max-items is opaque (each CLI encodes its own): compared as a placeholder.
tokens() { sed -E $'s/(NEXTTOKEN\t|"NextToken": ")[A-Za-z0-9+/=]{20,}/\\1TOKEN/'; }
# same_as_aws MESSAGE ARGS...: kmsctl ARGS and aws ARGS print the same
same_as_aws() {
    local msg=$1
    shift
    local mine theirs
    mine=$(kms "$@" 2>&1 | tokens || true)
    theirs=$(awsk "$@" 2>&1 | tokens || true)
    if [ "$mine" == "$theirs" ] && [ -n "$mine" ]; then
        ok "$msg"
    else
        fail "$msg: kmsctl and aws differ: $(diff <(echo "$mine") <(echo "$theirs") | head -c 1500 || true)"
    fi
}
# awscli_format FORMAT TITLE: the aws CLI's own formatter on the JSON on stdin (color off, not a
# terminal: 80 columns, as kmsctl's output in a pipe)
awscli_format() {
    /usr/bin/python3 -c '
import json, sys
from awscli.formatter import get_formatter
class Args: query = None; color = sys.argv[3] if len(sys.argv) > 3 else "off"
get_formatter(sys.argv[1], Args())(sys.argv[2], json.load(sys.stdin), sys.stdout)' "$@"
}
# same_as_awscli MESSAGE FORMAT TITLE [COLOR] -- ARGS...: kmsctl ARGS --output FORMAT prints what
# aws's own formatter prints for kmsctl's JSON. For describe-key: Debian's aws CLI (2.9) predates
# members the service now answers (CurrentKeyMaterialId), which its parser drops.
same_as_awscli() {
    local msg=$1 format=$2 title=$3 color=off
    shift 3
    if [ "$1" != "--" ]; then color=$1; shift; fi
    shift
    local mine theirs
    if [ "$color" == on ]; then
        mine=$(kms "$@" --output "$format" --color on)
    else
        mine=$(kms "$@" --output "$format")
    fi
    theirs=$(kms "$@" --output json | awscli_format "$format" "$title" "$color")
    if [ "$mine" == "$theirs" ] && [ -n "$mine" ]; then
        ok "$msg"
    else
        fail "$msg: kmsctl and awscli's formatter differ: $(diff <(echo "$mine") <(echo "$theirs") | head -c 1500 || true)"
    fi
}

# ---- A home with a few keys, aliases and odd strings ----------------------------------------------
K1=$(kms create-key --description one --query KeyMetadata.KeyId --output text)
K2=$(kms create-key --description 'yes: no #1, a description long enough to be folded by the YAML emitter at eighty columns' --query KeyMetadata.KeyId --output text)
K3=$(kms create-key --description 12 --query KeyMetadata.KeyId --output text)
kms create-key --description 'null' >/dev/null
kms create-key --description 'true' >/dev/null
kms create-alias --alias-name alias/one --target-key-id "$K1"
kms create-alias --alias-name alias/two --target-key-id "$K2"
printf 'hello' >"$TMP/pt"

# ---- --output text ----------------------------------------------------------------------------------
TEXT=$(kms list-keys --output text)
assert_eq "$(cut -f1 <<<"$TEXT" | sort -u)" "KEYS" "list-keys --output text: every line a KEYS line (no Truncated flag)"
assert_eq "$(wc -l <<<"$TEXT")" 5 "one line per key"
assert_not_contains "$(kms list-keys --output text --page-size 2)" "False" "no Truncated flag with several pages either"
N=0
for k in $(kms list-keys --output text | cut -f3); do kms describe-key --key-id "$k" >/dev/null && N=$((N + 1)); done
assert_eq "$N" 5 "for k in \$(kmsctl list-keys --output text | cut -f3) walks every key"
same_as_aws "list-keys --output text" kms list-keys --output text
same_as_aws "list-keys --page-size 2 --output text" kms list-keys --page-size 2 --output text
same_as_aws "text prints each page with --query applied to it (--page-size 2 --query Keys[0])" kms list-keys --page-size 2 --query 'Keys[0]' --output text
same_as_aws "list-keys --max-items 3 --output text ends with a NEXTTOKEN line" kms list-keys --max-items 3 --output text
same_as_awscli "describe-key --output text" text DescribeKey -- describe-key --key-id "$K1"
same_as_aws "list-aliases --output text" kms list-aliases --output text
same_as_aws "encrypt --query KeyId --output text" kms encrypt --key-id "$K1" --plaintext fileb://"$TMP/pt" --query KeyId --output text
kms iam create-user --user-name bob >/dev/null
kms iam create-group --group-name devs >/dev/null
assert_eq "$(kms iam list-users --output text)" "$(kms iam list-users | awscli_format text ListUsers)" "iam list-users --output text as awscli's text formatter prints it"
assert_match "$(kms iam list-users --output text | tail -n 1)" $'^USERS\tarn:aws:iam::[0-9]{12}:user/bob\t' "USERS lines, the scalars in sorted key order (Arn first)"
assert_eq "$(kms iam get-group --group-name devs --output text)" "$(kms iam get-group --group-name devs | awscli_format text GetGroup)" "iam get-group --output text"

# ---- --output table -----------------------------------------------------------------------------------
same_as_aws "list-keys --output table" kms list-keys --output table
same_as_awscli "describe-key --output table (one-row sections turned into name | value rows past 80 columns)" table DescribeKey -- describe-key --key-id "$K2"
same_as_aws "list-aliases --output table" kms list-aliases --output table
same_as_aws "describe-key --query KeyMetadata.KeyId --output table (a scalar: the title alone)" kms describe-key --key-id "$K1" --query KeyMetadata.KeyId --output table
same_as_aws "list-keys --max-items 2 --output json" kms list-keys --max-items 2 --output json
same_as_aws "list-keys --output table --color on (colorama's codes)" kms list-keys --output table --color on
same_as_awscli "describe-key --output table --color on" table DescribeKey on -- describe-key --key-id "$K1"
same_as_aws "describe-key --query KeyMetadata.Enabled --output table" kms describe-key --key-id "$K1" --query KeyMetadata.Enabled --output table
assert_eq "$(kms describe-key --key-id "$K1" --query KeyMetadata.MultiRegion --output table)" "" "a false value prints nothing in table (awscli tests its truth)"
assert_eq "$(kms iam list-users --output table)" "$(kms iam list-users | awscli_format table ListUsers)" "iam list-users --output table"
assert_match "$(kms iam list-users --output table | sed -n 2p)" '^\| +ListUsers +\|$' "the title row names the operation"

# ---- --output yaml and yaml-stream ----------------------------------------------------------------------
same_as_awscli "describe-key --output yaml (sorted keys, quoted numbers and dates, folded text)" yaml DescribeKey -- describe-key --key-id "$K2"
same_as_awscli "describe-key --output yaml: a description '12' is quoted" yaml DescribeKey -- describe-key --key-id "$K3"
same_as_aws "list-keys --output yaml" kms list-keys --output yaml
same_as_aws "list-aliases --output yaml" kms list-aliases --output yaml
kms iam tag-user --user-name bob --tags Key=on,Value=true Key=n,Value=2026-12-08 Key=x,Value=010
assert_eq "$(kms iam list-user-tags --user-name bob --output yaml)" "$(kms iam list-user-tags --user-name bob | awscli_format yaml ListUserTags)" "list-user-tags --output yaml ('true', '2026-12-08', '010' quoted; on plain)"
assert_contains "$(kms iam list-user-tags --user-name bob --output yaml)" "  Value: 'true'" "a string that reads as a boolean is quoted"
assert_eq "$(kms iam list-user-tags --user-name bob --output table)" "$(kms iam list-user-tags --user-name bob | awscli_format table ListUserTags)" "list-user-tags --output table"
assert_eq "$(kms iam list-user-tags --user-name bob --output text)" "$(kms iam list-user-tags --user-name bob | awscli_format text ListUserTags)" "list-user-tags --output text"
same_as_aws "a scalar in yaml is printed as JSON" kms describe-key --key-id "$K1" --query KeyMetadata.KeyId --output yaml
same_as_aws "list-keys --output yaml-stream --page-size 2 (each page, as the service answered it)" kms list-keys --output yaml-stream --page-size 2
same_as_awscli "describe-key --output yaml-stream" yaml-stream DescribeKey -- describe-key --key-id "$K1"
assert_eq "$(kms iam list-users --output yaml)" "$(kms iam list-users | awscli_format yaml ListUsers)" "iam list-users --output yaml"
assert_eq "$(kms enable-key --key-id "$K1" --output yaml)" "" "an empty response prints nothing in yaml"
assert_eq "$(kms enable-key --key-id "$K1" --output table)" "" "nor in table"
expect_usage_error "invalid choice 'xml' (choose from json, text, table, yaml, yaml-stream)" kms list-keys --output xml

# ---- IAM policy documents as JSON objects (botocore's json_decode_policies) -----------------------
cat >"$TMP/trust.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/a%20b"}}}]}
JSON
cat >"$TMP/policy.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}]}
JSON
# is_document JSON_PATH FILE: the member at JSON_PATH of stdin is FILE's JSON object (not a string)
is_document() {
    "$PY" -c '
import json, sys
v = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    v = v[int(part)] if part.isdigit() else v[part]
sys.exit(0 if isinstance(v, dict) and v == json.load(open(sys.argv[2])) else 1)' "$@"
}
kms iam create-role --role-name reader --assume-role-policy-document "file://$TMP/trust.json" >"$TMP/role.json"
is_document Role.AssumeRolePolicyDocument "$TMP/trust.json" <"$TMP/role.json" && ok "create-role prints AssumeRolePolicyDocument as an object" || fail "create-role: $(cat "$TMP/role.json")"
kms iam get-role --role-name reader | is_document Role.AssumeRolePolicyDocument "$TMP/trust.json" && ok "get-role: AssumeRolePolicyDocument an object, %20 kept" || fail "get-role: $(kms iam get-role --role-name reader)"
kms iam list-roles | is_document Roles.0.AssumeRolePolicyDocument "$TMP/trust.json" && ok "list-roles: the trust policies are objects" || fail "list-roles"
assert_eq "$(kms iam get-role --role-name reader --query Role.AssumeRolePolicyDocument.Statement[0].Action --output text)" "sts:AssumeRole" "--query walks into the document"
kms iam put-role-policy --role-name reader --policy-name read --policy-document "file://$TMP/policy.json"
kms iam get-role-policy --role-name reader --policy-name read | is_document PolicyDocument "$TMP/policy.json" && ok "get-role-policy: PolicyDocument an object" || fail "get-role-policy"
kms iam put-user-policy --user-name bob --policy-name read --policy-document "file://$TMP/policy.json"
kms iam get-user-policy --user-name bob --policy-name read | is_document PolicyDocument "$TMP/policy.json" && ok "get-user-policy: PolicyDocument an object" || fail "get-user-policy"
kms iam put-group-policy --group-name devs --policy-name read --policy-document "file://$TMP/policy.json"
kms iam get-group-policy --group-name devs --policy-name read | is_document PolicyDocument "$TMP/policy.json" && ok "get-group-policy: PolicyDocument an object" || fail "get-group-policy"
PARN=$(kms iam create-policy --policy-name read --policy-document "file://$TMP/policy.json" --query Policy.Arn --output text)
kms iam get-policy-version --policy-arn "$PARN" --version-id v1 | is_document PolicyVersion.Document "$TMP/policy.json" && ok "get-policy-version: Document an object" || fail "get-policy-version"
assert_eq "$(kms iam get-role-policy --role-name reader --policy-name read --output text)" \
    "$(kms iam get-role-policy --role-name reader --policy-name read | awscli_format text GetRolePolicy)" "get-role-policy --output text: the document's own lines (POLICYDOCUMENT, STATEMENT)"

# ---- kmsctl configure (list, get, set; asking on a terminal only) -----------------------------------
AK=$(cred aws_access_key_id)
SK=$(cred aws_secret_access_key)
L=$(AWS_DEFAULT_REGION= kms configure list)
assert_eq "$(sed -n 1p <<<"$L")" "      Name                    Value             Type    Location" "configure list: aws configure list's header"
assert_eq "$(sed -n 3p <<<"$L")" "   profile                <not set>             None    None" "no profile named: <not set>"
assert_eq "$(sed -n 4p <<<"$L")" "access_key     ****************${AK: -4} shared-credentials-file    " "the access key masked as ****************ABCD"
assert_eq "$(sed -n 5p <<<"$L")" "secret_key     ****************${SK: -4} shared-credentials-file    " "the secret key masked too"
assert_not_contains "$L" "$SK" "configure list never prints the secret"
assert_match "$(sed -n 6p <<<"$L")" "^    region                us-east-1             home    .*/config.json$" "the region: the home's own, from config.json"
kms configure set region eu-west-1
kms configure set output text --profile dev
kms configure set profile.dev.region ap-south-1
assert_eq "$(stat -c %a "$HOME_DIR/credentials")" "600" "the credentials file stays 0600"
assert_eq "$(find "$HOME_DIR" -maxdepth 1 -name 'credentials.*' | wc -l)" "0" "no temporary file is left beside it (written atomically)"
assert_eq "$(kms configure get region)" "eu-west-1" "configure get region"
assert_eq "$(kms configure get aws_access_key_id)" "$AK" "configure get aws_access_key_id: the keys are still there"
assert_eq "$(kms --profile dev configure get output)" "text" "configure get output --profile dev"
assert_eq "$(kms configure get profile.dev.region)" "ap-south-1" "configure get profile.dev.region"
RC=0; OUT=$(kms configure get output) || RC=$?
assert_eq "$RC:$OUT" "1:" "an unset name: nothing printed, exit status 1 (as aws configure get)"
assert_match "$(AWS_DEFAULT_REGION= kms --profile dev configure list | sed -n 6p)" "^    region               ap-south-1      config-file    .*/credentials$" "configure list: the profile's region and its file"
kms configure set output text
assert_eq "$(kms list-keys | cut -f1 | sort -u)" "KEYS" "the profile's output is the default --output"
assert_eq "$(kms list-keys --output json | head -c 1)" "{" "--output wins over it"
assert_eq "$(AWS_DEFAULT_OUTPUT=yaml kms list-keys | sed -n 1p)" "Keys:" "AWS_DEFAULT_OUTPUT wins over the profile's"
kms configure set output json
expect_usage_error "output is one of json, text, table, yaml, yaml-stream" kms configure set output xml
expect_usage_error "is not NAME, default.NAME or profile.PROFILE.NAME" kms configure set 'bad name' x
expect_usage_error "on a terminal only" kms configure </dev/null
# On a terminal: the four questions with the current values, an empty answer keeps one.
"$PY" - "$KMSCTL" "$HOME_DIR" >"$TMP/pty.out" <<'PY'
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--home", sys.argv[2], "--profile", "asked", "configure"])
out = b""
for answer in [b"AKIAASKED0000000WXYZ", b"asked-secret-1234", b"", b"table"]:
    while not out.rstrip().endswith(b":"):
        out += os.read(fd, 1024)
    os.write(fd, answer + b"\n")
    out += b"|"
try:
    while True:
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        out += chunk
except OSError:
    pass
os.waitpid(pid, 0)
print(out.decode())
PY
assert_contains "$(cat "$TMP/pty.out")" "AWS Access Key ID [None]:" "configure asks for the access key on a terminal"
assert_contains "$(cat "$TMP/pty.out")" "Default output format [None]:" "and the output format"
assert_eq "$(kms --profile asked configure get aws_access_key_id)" "AKIAASKED0000000WXYZ" "the answers are saved in the profile"
assert_eq "$(kms --profile asked configure get output)" "table" "the output format too"
RC=0; kms --profile asked configure get region >/dev/null || RC=$?
assert_eq "$RC" "1" "an empty answer sets nothing"
assert_contains "$(kms --profile asked configure list)" "****************WXYZ" "configure list masks the new key"
assert_match "$(kms configure list | sed -n 6p)" "^    region                us-east-1              env    AWS_DEFAULT_REGION$" "AWS_DEFAULT_REGION comes before the profile's region"

# ---- simulate-custom-policy with IAM's options and answer ---------------------------------------------
# The aws CLI's own example (awscli/examples/iam/simulate-custom-policy.rst), output compared whole.
DYNAMO='{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}'
same_json() { "$PY" -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1]) == json.loads(sys.argv[2]) else 1)' "$1" "$2"; }
OUT=$(kms simulate-custom-policy --policy-input-list "$DYNAMO" --action-names dynamodb:CreateBackup \
    --context-entries "ContextKeyName='aws:CurrentTime',ContextKeyValues='2019-04-25T11:00:00Z',ContextKeyType=date")
same_json "$OUT" '{"EvaluationResults": [{"EvalActionName": "dynamodb:CreateBackup", "EvalResourceName": "*", "EvalDecision": "allowed",
    "MatchedStatements": [{"SourcePolicyId": "PolicyInputList.1", "StartPosition": {"Line": 1, "Column": 38}, "EndPosition": {"Line": 1, "Column": 167}}],
    "MissingContextValues": []}]}' && ok "simulate-custom-policy: the aws CLI's documented example, output for output" || fail "simulate-custom-policy example: $OUT"
OUT=$(kms simulate-custom-policy --policy-input-list "$DYNAMO" --action-names dynamodb:CreateBackup \
    --context-entries "ContextKeyName='aws:CurrentTime',ContextKeyValues='2014-04-25T11:00:00Z',ContextKeyType=date")
same_json "$OUT" '{"EvaluationResults": [{"EvalActionName": "dynamodb:CreateBackup", "EvalResourceName": "*", "EvalDecision": "implicitDeny", "MatchedStatements": [], "MissingContextValues": []}]}' &&
    ok "and its second example: implicitDeny, no statement" || fail "second example: $OUT"
assert_eq "$(kms simulate-custom-policy --policy-input-list "$DYNAMO" --action-names dynamodb:CreateBackup --query 'EvaluationResults[0].MissingContextValues[0]' --output text)" \
    "aws:CurrentTime" "without the context entry: MissingContextValues names aws:CurrentTime"
assert_eq "$(kms simulate-custom-policy --policy-input-list "$DYNAMO" --action-names dynamodb:CreateBackup \
    --context-entries '[{"ContextKeyName": "aws:CurrentTime", "ContextKeyValues": ["2019-04-25T11:00:00Z"], "ContextKeyType": "date"}]' \
    --query 'EvaluationResults[0].EvalDecision' --output text)" "allowed" "--context-entries as a JSON list"
cat >"$TMP/allow.json" <<'JSON'
{
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "All", "Effect": "Allow", "Action": "kms:*", "Resource": "*"}
    ]
}
JSON
cat >"$TMP/deny.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}]}
JSON
cat >"$TMP/boundary.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}]}
JSON
OUT=$(kms simulate-custom-policy --policy-input-list "file://$TMP/allow.json" "file://$TMP/deny.json" --action-names kms:Encrypt kms:Decrypt kms:Sign \
    --permissions-boundary-policy-input-list "file://$TMP/boundary.json")
assert_eq "$(json_get 'EvaluationResults[0].EvalDecision' <<<"$OUT")" allowed "several documents from file://: Encrypt allowed"
assert_eq "$(json_get 'EvaluationResults[0].MatchedStatements[0].SourcePolicyId' <<<"$OUT")" "PolicyInputList.1" "by PolicyInputList.1"
assert_eq "$(json_get 'EvaluationResults[0].MatchedStatements[0].StartPosition' <<<"$OUT")" '{"Column":10,"Line":4}' "its statement starts on line 4 of the file"
assert_eq "$(json_get 'EvaluationResults[1].EvalDecision' <<<"$OUT")" explicitDeny "Decrypt: explicitDeny"
assert_eq "$(json_get 'EvaluationResults[1].MatchedStatements' <<<"$OUT" | grep -o SourcePolicyId | wc -l):$(json_get 'EvaluationResults[1].MatchedStatements[0].SourcePolicyId' <<<"$OUT")" "1:PolicyInputList.2" "by the second document's deny, the only statement listed (IAM)"
assert_eq "$(json_get 'EvaluationResults[2].EvalDecision' <<<"$OUT")" implicitDeny "Sign: outside the permissions boundary, implicitDeny"
assert_eq "$(json_get 'EvaluationResults[2].PermissionsBoundaryDecisionDetail' <<<"$OUT")" '{"AllowedByPermissionsBoundary":false}' "PermissionsBoundaryDecisionDetail says so"
assert_eq "$(json_get 'EvaluationResults[0].PermissionsBoundaryDecisionDetail' <<<"$OUT")" '{"AllowedByPermissionsBoundary":true}' "and allows Encrypt"
assert_eq "$(json_get IsTruncated <<<"$OUT")" "<missing>" "the listing is printed whole (no IsTruncated, as the CLI's paginator)"
ACCOUNT_ID=$(json_get AccountId <"$TMP/init.json")
cat >"$TMP/bucket.json" <<JSON
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$ACCOUNT_ID:user/alice"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}]}
JSON
ALICE="arn:aws:iam::$ACCOUNT_ID:user/alice"
OUT=$(kms simulate-custom-policy --policy-input-list '[]' --action-names s3:GetObject --resource-arns arn:aws:s3:::bucket/key \
    --resource-policy "file://$TMP/bucket.json" --caller-arn "$ALICE")
assert_eq "$(json_get 'EvaluationResults[0].EvalDecision' <<<"$OUT")" allowed "a resource policy naming the caller allows it in its own account"
assert_eq "$(json_get 'EvaluationResults[0].MatchedStatements[0].SourcePolicyId' <<<"$OUT")" ResourcePolicy "by ResourcePolicy"
assert_eq "$(json_get 'EvaluationResults[0].MatchedStatements[0].SourcePolicyType' <<<"$OUT")" resource "of type resource"
assert_eq "$(json_get 'EvaluationResults[0].ResourceSpecificResults[0].EvalResourceDecision' <<<"$OUT")" allowed "ResourceSpecificResults for a named resource"
assert_eq "$(json_get 'EvaluationResults[0].EvalDecisionDetails' <<<"$OUT")" '{}' "EvalDecisionDetails present and empty in one account"
OUT=$(kms simulate-custom-policy --policy-input-list '[]' --action-names s3:GetObject --resource-arns arn:aws:s3:::bucket/key \
    --resource-policy "file://$TMP/bucket.json" --caller-arn "$ALICE" --resource-owner arn:aws:iam::111122223333:root)
assert_eq "$(json_get 'EvaluationResults[0].EvalDecision' <<<"$OUT")" implicitDeny "--resource-owner another account: the caller's own policies must allow too"
RC=0; kms simulate-custom-policy --policy-input-list '[]' --action-names s3:GetObject --resource-policy "file://$TMP/bucket.json" 2>"$TMP/err" || RC=$?
assert_eq "$RC" 254 "--resource-policy without --caller-arn fails"
assert_match "$(cat "$TMP/err")" '"__type": "InvalidInput(Exception)?".*CallerArn is required with ResourcePolicy' "with IAM's rule (InvalidInput)"
expect_usage_error "--policy-input-list, --action-names (or --input FILE)" kms simulate-custom-policy --action-names kms:Decrypt
OUT=$(kms simulate-principal-policy --policy-source-arn "arn:aws:iam::$ACCOUNT_ID:user/bob" --action-names kms:Decrypt \
    --context-entries ContextKeyName=aws:SourceIp,ContextKeyValues=10.0.0.1,ContextKeyType=ip)
assert_eq "$(json_get 'EvaluationResults[0].MatchedStatements[0].SourcePolicyId' <<<"$OUT")" user/bob/inline/read "simulate-principal-policy: the policy that matched"
assert_eq "$(json_get 'EvaluationResults[0].MatchedStatements[0].StartPosition.Line' <<<"$OUT")" 1 "with its statement's position"
assert_eq "$(json_get 'EvaluationResults[0].MissingContextValues' <<<"$OUT")" '[]' "and MissingContextValues"

# ---- Lists of structures in the shorthand, several arguments ----------------------------------------
kms iam tag-user --user-name bob --tags Key=team,Value=12 Key=env,Value=true '{"Key": "j", "Value": "x"}'
assert_eq "$(kms iam list-user-tags --user-name bob --query 'Tags[0].Value' --output json)" '"true"' "--tags Key=a,Value=b Key=c,Value=d ...: several structures, values kept as text"
assert_contains "$(kms iam list-user-tags --user-name bob --output text)" $'TAGS\tteam\t12' "Value=12 stays the text 12"
assert_contains "$(kms iam list-user-tags --user-name bob --output text)" $'TAGS\tj\tx' "a JSON object among them"
kms iam tag-user --user-name bob --tags '[{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": "v2"}]'
assert_contains "$(kms iam list-user-tags --user-name bob --output text)" $'TAGS\tk2\tv2' "or one JSON list"
expect_usage_error "expected Key=KEY,Value=VALUE" kms iam tag-user --user-name bob --tags Key=a
