#!/usr/bin/env bash
# Tags of keys (TagResource, UntagResource, ListResourceTags, CreateKey --tags) and
# attribute-based access control as in AWS's "ABAC for AWS KMS": aws:ResourceTag/K against
# ${aws:PrincipalTag/K}, kms:ResourceAliases, kms:RequestAlias, aws:RequestTag/K and aws:TagKeys.
# Every refusal is asserted exactly, and a refused request changes nothing.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

json_len() { "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
tags_of() { kms list-resource-tags --key-id "$1" | json_get Tags; }
newest_event() {
    kms lookup-events --lookup-attributes "AttributeKey=EventName,AttributeValue=$1" \
        --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p
}

init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")

declare -A KEY_ID SECRET
new_user() {
    local name=$1 out
    shift
    kms create-user --user-name "$name" "$@" >/dev/null
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

# ---- tags: shapes --------------------------------------------------------------------------
KA=$(kms create-key --description alpha --tags TagKey=Project,TagValue=Alpha \
    --query KeyMetadata.KeyId --output text)
KB=$(kms create-key --description beta --query KeyMetadata.KeyId --output text)
KA_ARN="arn:aws:kms:us-east-1:$ACCOUNT:key/$KA"
assert_eq "$(tags_of "$KA")" '[{"TagKey":"Project","TagValue":"Alpha"}]' "create-key --tags tags the key"
assert_eq "$(tags_of "$KB")" '[]' "a key without tags lists none"
assert_eq "$(kms tag-resource --key-id "$KB" --tags TagKey=Project,TagValue=Beta \
    TagKey=project,TagValue= 'TagKey=Cost Center,TagValue=8 0/4:3=2+1-@_.')" "" \
    "tag-resource prints nothing"
assert_eq "$(tags_of "$KB")" \
    '[{"TagKey":"Cost Center","TagValue":"8 0/4:3=2+1-@_."},{"TagKey":"Project","TagValue":"Beta"},{"TagKey":"project","TagValue":""}]' \
    "tag keys are case-sensitive; spaces and _ . : / = + - @ are allowed; values may be empty"
kms tag-resource --key-id "$KA_ARN" --tags TagKey=Project,TagValue=Alpha >/dev/null
assert_eq "$(tags_of "$KA")" '[{"TagKey":"Project","TagValue":"Alpha"}]' \
    "a key ARN works, and tagging again with the same value changes nothing"
kms tag-resource --key-id "$KB" --tags '{"TagKey": "Été", "TagValue": "über ünd"}' >/dev/null
assert_eq "$(kms list-resource-tags --key-id "$KB" --query 'Tags[3].TagValue' --output text)" \
    "über ünd" "Unicode letters are allowed"
kms untag-resource --key-id "$KB" --tag-keys project Été Missing >/dev/null
assert_eq "$(kms list-resource-tags --key-id "$KB" | json_get Tags | json_len)" 2 \
    "untag-resource removes the named tags (a missing one is no error)"
page=$(kms list-resource-tags --key-id "$KB" --limit 1 --no-paginate)
assert_eq "$(json_get Truncated <<<"$page")" "true" "--limit 1 truncates"
assert_eq "$(json_get NextMarker <<<"$page")" "Cost Center" "NextMarker is the last tag key"
page=$(kms list-resource-tags --key-id "$KB" --limit 1 --marker "Cost Center" --no-paginate)
assert_eq "$(json_get 'Tags[0].TagKey' <<<"$page")" "Project" "the marker continues after it"
assert_eq "$(json_get Truncated <<<"$page")" "false" "the last page is not truncated"

# ---- tags: every refusal, nothing changed ----------------------------------------------------
before=$(tags_of "$KB")
refuse() { # refuse NAME CMD...: the exception, and KB's tags as they were
    local name=$1
    shift
    expect_error "$name" 254 "$@"
    assert_eq "$(tags_of "$KB")" "$before" "... and the tags are unchanged"
}
refuse TagException kms tag-resource --key-id "$KB" --tags TagKey=aws:owner,TagValue=x
assert_contains "$ERR_MSG" "aws:owner" "the message names the reserved key"
refuse TagException kms tag-resource --key-id "$KB" --tags TagKey=AWS:owner,TagValue=x
refuse TagException kms tag-resource --key-id "$KB" --tags 'TagKey=a#b,TagValue=x'
refuse TagException kms tag-resource --key-id "$KB" --tags 'TagKey=ok,TagValue=a;b'
refuse TagException kms tag-resource --key-id "$KB" --tags TagKey=New,TagValue=1 \
    TagKey=New,TagValue=2
refuse TagException kms untag-resource --key-id "$KB" --tag-keys aws:cloudformation
long_key=$(printf 'k%.0s' $(seq 129))
long_value=$(printf 'v%.0s' $(seq 257))
refuse ValidationException kms tag-resource --key-id "$KB" --tags "TagKey=$long_key,TagValue=x"
assert_contains "$ERR_MSG" "tags.1.member.tagKey" "the message names the member"
refuse ValidationException kms tag-resource --key-id "$KB" --tags "TagKey=x,TagValue=$long_value"
refuse ValidationException kms tag-resource --cli-input-json \
    "{\"KeyId\": \"$KB\", \"Tags\": [{\"TagKey\": \"x\"}]}"
assert_contains "$ERR_MSG" "tags.1.member.tagValue" "a tag without TagValue is refused"
kms tag-resource --key-id "$KB" --tags "TagKey=$(printf 'k%.0s' $(seq 128)),TagValue=$(printf 'v%.0s' $(seq 256))" >/dev/null &&
    ok "a 128-character key and a 256-character value are accepted"
kms untag-resource --key-id "$KB" --tag-keys "$(printf 'k%.0s' $(seq 128))" >/dev/null
many=()
for i in $(seq 1 49); do many+=("TagKey=k$i,TagValue=v"); done
refuse LimitExceededException kms tag-resource --key-id "$KB" --tags "${many[@]}"
kms tag-resource --key-id "$KB" --tags "${many[@]:0:48}" >/dev/null
assert_eq "$(kms list-resource-tags --key-id "$KB" | json_get Tags | json_len)" 50 \
    "50 tags fit (every page merged)"
kms untag-resource --key-id "$KB" --tag-keys $(seq -f 'k%g' 1 48) >/dev/null
refuse NotFoundException kms tag-resource --key-id 11111111-2222-4333-8444-555555555555 \
    --tags TagKey=a,TagValue=b
refuse NotFoundException kms list-resource-tags --key-id 11111111-2222-4333-8444-555555555555
refuse InvalidArnException kms tag-resource \
    --key-id "arn:aws:kms:us-east-1:$ACCOUNT:alias/x" --tags TagKey=a,TagValue=b
refuse InvalidArnException kms untag-resource --key-id "arn:aws:iam::$ACCOUNT:user/x" \
    --tag-keys a
refuse ValidationException kms list-resource-tags --key-id "$KB" --limit 51
refuse ValidationException kms list-resource-tags --key-id "$KB" --limit 0
refuse InvalidMarkerException kms list-resource-tags --key-id "$KB" --marker 'aws:x' --no-paginate
expect_usage_error "TagKey=KEY,TagValue=VALUE" kms tag-resource --key-id "$KB" \
    --tags Key=a,Value=b
nkeys=$(kms list-keys | json_get Keys | json_len)
expect_error TagException 254 kms create-key --tags TagKey=aws:x,TagValue=y
expect_error LimitExceededException 254 kms create-key --tags "${many[@]}" TagKey=a,TagValue=b \
    TagKey=c,TagValue=d
assert_eq "$(kms list-keys | json_get Keys | json_len)" "$nkeys" "a refused create-key makes no key"

# Key states: a key pending deletion is not tagged or untagged, its tags still list.
KD=$(kms create-key --tags TagKey=Project,TagValue=Gone --query KeyMetadata.KeyId --output text)
kms schedule-key-deletion --key-id "$KD" --pending-window-in-days 7 >/dev/null
expect_error KMSInvalidStateException 254 kms tag-resource --key-id "$KD" --tags TagKey=a,TagValue=b
assert_eq "$ERR_MSG" "arn:aws:kms:us-east-1:$ACCOUNT:key/$KD is pending deletion." \
    "AWS's message for a key pending deletion"
expect_error KMSInvalidStateException 254 kms untag-resource --key-id "$KD" --tag-keys Project
assert_eq "$(tags_of "$KD")" '[{"TagKey":"Project","TagValue":"Gone"}]' \
    "a key pending deletion keeps its tags and lists them"

# ---- audit records ---------------------------------------------------------------------------
kms tag-resource --key-id "$KA" --tags TagKey=Owner,TagValue=ops >/dev/null
EV=$(newest_event TagResource)
assert_eq "$(json_get requestParameters <<<"$EV")" \
    "{\"keyId\":\"$KA\",\"tags\":[{\"tagKey\":\"Owner\",\"tagValue\":\"ops\"}]}" \
    "TagResource: requestParameters keyId and tags as CloudTrail writes them"
assert_eq "$(json_get resources <<<"$EV")" \
    "[{\"ARN\":\"$KA_ARN\",\"accountId\":\"$ACCOUNT\",\"type\":\"AWS::KMS::Key\"}]" \
    "TagResource: the key in resources"
assert_eq "$(json_get readOnly <<<"$EV")" "false" "TagResource is not read-only"
assert_eq "$(json_get responseElements <<<"$EV")" "<missing>" "TagResource: no responseElements"
kms untag-resource --key-id "$KA" --tag-keys Owner >/dev/null
EV=$(newest_event UntagResource)
assert_eq "$(json_get requestParameters <<<"$EV")" "{\"keyId\":\"$KA\",\"tagKeys\":[\"Owner\"]}" \
    "UntagResource: requestParameters keyId and tagKeys"
assert_eq "$(json_get "resources[0].ARN" <<<"$EV")" "$KA_ARN" "UntagResource: the key in resources"
kms list-resource-tags --key-id "$KA" >/dev/null
EV=$(newest_event ListResourceTags)
assert_eq "$(json_get requestParameters <<<"$EV")" "{\"keyId\":\"$KA\"}" \
    "ListResourceTags: requestParameters keyId"
assert_eq "$(json_get readOnly <<<"$EV")" "true" "ListResourceTags is read-only"
assert_eq "$(json_get "resources[0].ARN" <<<"$EV")" "$KA_ARN" "ListResourceTags: the key in resources"
expect_error TagException 254 kms tag-resource --key-id "$KA" --tags TagKey=aws:x,TagValue=y
EV=$(newest_event TagResource)
assert_eq "$(json_get errorCode <<<"$EV")" "TagException" "a refused TagResource is recorded"

# ---- ABAC: aws:ResourceTag against ${aws:PrincipalTag} ------------------------------------------
new_user alice --tags Key=Project,Value=Alpha
kms put-user-policy --user-name alice --policy-name abac --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/Project":"${aws:PrincipalTag/Project}"}}}]}' \
    >/dev/null
kms tag-resource --key-id "$KB" --tags TagKey=Project,TagValue=Beta >/dev/null
CT_A=$(kms kms-encrypt --key-id "$KA" --plaintext aGVsbG8= --output text --query CiphertextBlob)
CT_B=$(kms kms-encrypt --key-id "$KB" --plaintext aGVsbG8= --output text --query CiphertextBlob)
assert_eq "$(as_user alice kms-decrypt --ciphertext-blob "$CT_A" --output text --query Plaintext)" \
    "aGVsbG8=" "alice decrypts under the key tagged with her project"
expect_error AccessDeniedException 254 as_user alice kms-decrypt --ciphertext-blob "$CT_B"
assert_contains "$ERR_MSG" "kms:Decrypt on resource: arn:aws:kms:us-east-1:$ACCOUNT:key/$KB" \
    "the refusal names the action and the other key"
kms untag-resource --key-id "$KA" --tag-keys Project >/dev/null
expect_error AccessDeniedException 254 as_user alice kms-decrypt --ciphertext-blob "$CT_A"
assert_contains "$ERR_MSG" "because no identity-based policy allows the kms:Decrypt action" \
    "untagging takes her access away at once"
kms tag-resource --key-id "$KB" --tags TagKey=Project,TagValue=Alpha >/dev/null
as_user alice kms-decrypt --ciphertext-blob "$CT_B" >/dev/null &&
    ok "retagging the other key gives her access to it at once"
kms tag-resource --key-id "$KA" --tags TagKey=Project,TagValue=Alpha >/dev/null
kms tag-resource --key-id "$KB" --tags TagKey=Project,TagValue=Beta >/dev/null

# ---- ABAC: kms:ResourceAliases and kms:RequestAlias -----------------------------------------------
new_user bob
kms put-user-policy --user-name bob --policy-name aliases --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/finance-*"}}}]}' \
    >/dev/null
kms create-alias --alias-name alias/finance-payroll --target-key-id "$KA" >/dev/null
kms create-alias --alias-name alias/other --target-key-id "$KA" >/dev/null
kms create-alias --alias-name alias/marketing --target-key-id "$KB" >/dev/null
as_user bob kms-encrypt --key-id "$KA" --plaintext aGVsbG8= >/dev/null &&
    ok "bob encrypts under a key one of whose aliases is alias/finance-*"
expect_error AccessDeniedException 254 as_user bob kms-encrypt --key-id "$KB" --plaintext aGVsbG8=
kms delete-alias --alias-name alias/finance-payroll >/dev/null
expect_error AccessDeniedException 254 as_user bob kms-encrypt --key-id "$KA" --plaintext aGVsbG8=
assert_contains "$ERR_MSG" "kms:Encrypt" "deleting the alias takes bob's access away at once"
kms create-alias --alias-name alias/finance-payroll --target-key-id "$KA" >/dev/null

new_user carol
kms put-user-policy --user-name carol --policy-name request-alias --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:DescribeKey"],"Resource":"*","Condition":{"StringEquals":{"kms:RequestAlias":"alias/finance-payroll"}}}]}' \
    >/dev/null
as_user carol kms-encrypt --key-id alias/finance-payroll --plaintext aGVsbG8= >/dev/null &&
    ok "carol encrypts when she names the key by alias/finance-payroll"
as_user carol describe-key --key-id "arn:aws:kms:us-east-1:$ACCOUNT:alias/finance-payroll" \
    >/dev/null && ok "an alias ARN is the alias too"
expect_error AccessDeniedException 254 as_user carol kms-encrypt --key-id "$KA" --plaintext aGVsbG8=
expect_error AccessDeniedException 254 as_user carol kms-encrypt --key-id alias/other \
    --plaintext aGVsbG8=

# ---- ABAC: aws:RequestTag and aws:TagKeys on the tagging operations ---------------------------
new_user dave
kms put-user-policy --user-name dave --policy-name tagging --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:TagResource","kms:UntagResource","kms:ListResourceTags"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["Project","Stage"]}}},{"Effect":"Deny","Action":"kms:TagResource","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/Project":"Secret"}}},{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/Project":"Alpha"}}}]}' \
    >/dev/null
before=$(tags_of "$KB")
as_user dave tag-resource --key-id "$KB" --tags TagKey=Stage,TagValue=dev >/dev/null &&
    ok "dave tags with an allowed tag key"
expect_error AccessDeniedException 254 as_user dave tag-resource --key-id "$KB" \
    --tags TagKey=Owner,TagValue=dave
expect_error AccessDeniedException 254 as_user dave tag-resource --key-id "$KB" \
    --tags TagKey=Project,TagValue=Secret
assert_contains "$ERR_MSG" "with an explicit deny in an identity-based policy" \
    "aws:RequestTag/Project=Secret meets the explicit deny"
expect_error AccessDeniedException 254 as_user dave untag-resource --key-id "$KB" \
    --tag-keys Project 'Cost Center'
as_user dave untag-resource --key-id "$KB" --tag-keys Stage >/dev/null &&
    ok "dave untags an allowed tag key"
assert_eq "$(tags_of "$KB")" "$before" "dave's refused requests changed nothing"
as_user dave create-key --tags TagKey=Project,TagValue=Alpha >/dev/null &&
    ok "dave creates a key with the tag his policy requires"
expect_error AccessDeniedException 254 as_user dave create-key --tags TagKey=Project,TagValue=Beta
expect_error AccessDeniedException 254 as_user dave create-key
