#!/usr/bin/env bash
# The audit trail through kmsctl: one CloudTrail record per operation (allowed and denied, as
# several principals) checked field by field; no secret in any file of the trail; lookup-events
# and usage-report; digests verified by openssl alone; validate-logs on tampered copies (a flipped
# byte, a deleted record, a deleted or swapped segment, a truncation, a forged digest, garbage);
# the HSM anchor against a rollback of the trail's tail; fail-closed on a missing, read-only or
# full log directory; kill -9 in a burst.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

json_len() { "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# first_event_named NAME < lookup-events output: the CloudTrailEvent of the first event NAME.
first_event_named() {
    "$PY" -c 'import json,sys; print([e for e in json.load(sys.stdin)["Events"] if e["EventName"]==sys.argv[1]][0]["CloudTrailEvent"])' "$1"
}
# newest_event FILTER_KEY FILTER_VALUE: the CloudTrailEvent of the newest matching record.
newest_event() {
    kms lookup-events --lookup-attributes "AttributeKey=$1,AttributeValue=$2" --max-items 1 \
        --query 'Events[0].CloudTrailEvent' --output text
}
AUDIT="$HOME_DIR/audit"
# "null" when the record has member $1 and it is null (json_get says <missing> for both).
member_is_null() {
    "$PY" -c 'import json, sys
d = json.load(sys.stdin)
print("null" if sys.argv[1] in d and d[sys.argv[1]] is None else "not null")' "$1"
}

init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
[ -d "$AUDIT/segments" ] && [ -d "$AUDIT/digests" ] && ok "init creates the audit trail" ||
    fail "init made no $AUDIT/segments and digests"

# ---- principals: admin (IAMUser), a user with only Decrypt, a role session -------------------
ADMIN_KEY=$(grep -m1 aws_access_key_id "$HOME_DIR/credentials" | sed 's/.*= *//')
KEY=$(kms create-key --description audited --query KeyMetadata.KeyId --output text)
KEY_ARN="arn:aws:kms:us-east-1:$ACCOUNT:key/$KEY"
kms create-alias --alias-name alias/audited --target-key-id "$KEY"
PLAINTEXT="the-plaintext-that-must-never-be-logged-$RANDOM$RANDOM"
PT_B64=$(printf %s "$PLAINTEXT" | base64 -w0)
BLOB=$(kms kms-encrypt --key-id alias/audited --plaintext "$PT_B64" \
    --encryption-context purpose=audit-test --query CiphertextBlob --output text)
DATA_KEY=$(kms generate-data-key --key-id "$KEY" --key-spec AES_256 --query Plaintext --output text)

kms create-user --user-name bob >/dev/null
kms put-user-policy --user-name bob --policy-name decrypt-only --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}'
OUT=$(kms create-access-key --user-name bob)
BOB_ID=$(json_get AccessKey.AccessKeyId <<<"$OUT")
BOB_SECRET=$(json_get AccessKey.SecretAccessKey <<<"$OUT")
as_bob() { KMS_ACCESS_KEY_ID=$BOB_ID KMS_SECRET_ACCESS_KEY=$BOB_SECRET "$KMSCTL" --home "$HOME_DIR" "$@"; }
PASSWORD="Audit-Pa55word-$RANDOM-never-logged"
kms create-login-profile --user-name bob --password "$PASSWORD" >/dev/null
as_bob kms-decrypt --ciphertext-blob "$BLOB" --encryption-context purpose=audit-test >/dev/null
expect_error AccessDeniedException 254 as_bob kms-encrypt --key-id "$KEY" --plaintext "$PT_B64"

kms create-role --role-name auditor --assume-role-policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::$ACCOUNT:root\"},\"Action\":\"sts:AssumeRole\"}]}" >/dev/null
kms attach-role-policy --role-name auditor --policy-arn arn:aws:iam::aws:policy/AdministratorAccess
OUT=$(kms assume-role --role-arn "arn:aws:iam::$ACCOUNT:role/auditor" --role-session-name night-shift)
ROLE_ID=$(json_get Credentials.AccessKeyId <<<"$OUT")
ROLE_SECRET=$(json_get Credentials.SecretAccessKey <<<"$OUT")
ROLE_TOKEN=$(json_get Credentials.SessionToken <<<"$OUT")
as_role() {
    KMS_ACCESS_KEY_ID=$ROLE_ID KMS_SECRET_ACCESS_KEY=$ROLE_SECRET KMS_SESSION_TOKEN=$ROLE_TOKEN \
        "$KMSCTL" --home "$HOME_DIR" "$@"
}
as_role describe-key --key-id alias/audited >/dev/null

# ---- records, field by field ---------------------------------------------------------------
EV=$(newest_event EventName CreateKey)
assert_eq "$(json_get eventVersion <<<"$EV")" "1.11" "eventVersion (CloudTrail's current)"
assert_eq "$(json_get eventSource <<<"$EV")" "kms.amazonaws.com" "CreateKey: eventSource"
assert_eq "$(json_get userIdentity.type <<<"$EV")" "IAMUser" "CreateKey: userIdentity.type"
assert_eq "$(json_get userIdentity.arn <<<"$EV")" "arn:aws:iam::$ACCOUNT:user/admin" "CreateKey: arn"
assert_eq "$(json_get userIdentity.accountId <<<"$EV")" "$ACCOUNT" "CreateKey: accountId"
assert_eq "$(json_get userIdentity.userName <<<"$EV")" "admin" "CreateKey: userName"
assert_eq "$(json_get userIdentity.accessKeyId <<<"$EV")" "$ADMIN_KEY" "CreateKey: accessKeyId"
assert_match "$(json_get userIdentity.principalId <<<"$EV")" '^AIDA' "CreateKey: principalId"
assert_match "$(json_get eventTime <<<"$EV")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' \
    "eventTime is ISO 8601 UTC"
assert_eq "$(json_get awsRegion <<<"$EV")" "us-east-1" "awsRegion"
assert_eq "$(json_get sourceIPAddress <<<"$EV")" "127.0.0.1" "sourceIPAddress"
assert_match "$(json_get userAgent <<<"$EV")" '^kmsctl/' "userAgent"
assert_eq "$(json_get requestParameters.description <<<"$EV")" "audited" "CreateKey: requestParameters"
assert_eq "$(json_get responseElements.keyMetadata.keyId <<<"$EV")" "$KEY" "CreateKey: responseElements"
assert_eq "$(json_get resources[0].ARN <<<"$EV")" "$KEY_ARN" "CreateKey: resources ARN"
assert_eq "$(json_get resources[0].type <<<"$EV")" "AWS::KMS::Key" "CreateKey: resources type"
assert_eq "$(json_get readOnly <<<"$EV")" "false" "CreateKey: readOnly false"
assert_eq "$(json_get eventType <<<"$EV")" "AwsApiCall" "eventType"
assert_eq "$(json_get managementEvent <<<"$EV")" "true" "managementEvent"
assert_eq "$(json_get eventCategory <<<"$EV")" "Management" "eventCategory"
assert_eq "$(json_get recipientAccountId <<<"$EV")" "$ACCOUNT" "recipientAccountId"
assert_match "$(json_get eventID <<<"$EV")" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "eventID is a UUID"
assert_match "$(json_get requestID <<<"$EV")" '^[0-9a-f-]{36}$' "requestID"
assert_eq "$(json_get errorCode <<<"$EV")" "<missing>" "no errorCode on success"

EV=$(newest_event EventName Encrypt)
assert_eq "$(json_get errorCode <<<"$EV")" "AccessDeniedException" "the denied Encrypt is recorded"
assert_contains "$(json_get errorMessage <<<"$EV")" "not authorized" "with AWS's refusal message"
assert_eq "$(json_get userIdentity.userName <<<"$EV")" "bob" "denied Encrypt: the caller"
assert_eq "$(json_get userIdentity.accessKeyId <<<"$EV")" "$BOB_ID" "denied Encrypt: bob's key"
assert_eq "$(json_get resources[0].ARN <<<"$EV")" "$KEY_ARN" "denied Encrypt: the key"
assert_eq "$(json_get readOnly <<<"$EV")" "true" "Encrypt is readOnly"
assert_eq "$(json_get responseElements <<<"$EV")" "<missing>" "no responseElements on failure"

EV=$(kms lookup-events --lookup-attributes AttributeKey=Username,AttributeValue=admin \
    --max-items 50 | first_event_named Encrypt)
assert_eq "$(json_get requestParameters.keyId <<<"$EV")" "alias/audited" "Encrypt: keyId as given"
assert_eq "$(json_get requestParameters.encryptionContext.purpose <<<"$EV")" "audit-test" \
    "Encrypt: encryptionContext"
assert_eq "$(json_get requestParameters.plaintext <<<"$EV")" "<missing>" "Encrypt: no plaintext"

EV=$(newest_event EventName Decrypt)
assert_eq "$(json_get userIdentity.userName <<<"$EV")" "bob" "Decrypt by bob"
assert_eq "$(json_get errorCode <<<"$EV")" "<missing>" "bob's Decrypt succeeded"
assert_eq "$(json_get resources[0].ARN <<<"$EV")" "$KEY_ARN" "Decrypt: the key from the blob"

EV=$(newest_event EventName DescribeKey)
assert_eq "$(json_get userIdentity.type <<<"$EV")" "AssumedRole" "role session: type"
assert_eq "$(json_get userIdentity.arn <<<"$EV")" \
    "arn:aws:sts::$ACCOUNT:assumed-role/auditor/night-shift" "role session: arn"
assert_eq "$(json_get userIdentity.accessKeyId <<<"$EV")" "$ROLE_ID" "role session: accessKeyId"
assert_eq "$(json_get userIdentity.sessionContext.sessionIssuer.arn <<<"$EV")" \
    "arn:aws:iam::$ACCOUNT:role/auditor" "role session: sessionIssuer"
assert_eq "$(json_get userIdentity.sessionContext.attributes.mfaAuthenticated <<<"$EV")" "false" \
    "role session: mfaAuthenticated"
assert_eq "$(json_get readOnly <<<"$EV")" "true" "DescribeKey is readOnly"

EV=$(newest_event EventName CreateUser)
assert_eq "$(json_get eventSource <<<"$EV")" "iam.amazonaws.com" "CreateUser: iam eventSource"
assert_eq "$(json_get requestParameters.userName <<<"$EV")" "bob" "CreateUser: userName"
EV=$(newest_event EventName CreateAccessKey)
assert_eq "$(json_get responseElements.accessKey.accessKeyId <<<"$EV")" "$BOB_ID" \
    "CreateAccessKey: the key id is recorded"
assert_eq "$(json_get responseElements.accessKey.secretAccessKey <<<"$EV")" "<missing>" \
    "CreateAccessKey: the secret is not"
EV=$(newest_event EventName AssumeRole)
assert_eq "$(json_get eventSource <<<"$EV")" "sts.amazonaws.com" "AssumeRole: sts eventSource"
assert_eq "$(json_get requestParameters.roleSessionName <<<"$EV")" "night-shift" "AssumeRole: session"

# Sign-in, failed and successful: signin.amazonaws.com ConsoleLogin, the name that tried.
rc=0
KMS_PASSWORD=wrong-password kms sign-in --user-name bob >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 254 "a wrong password fails sign-in"
EV=$(newest_event EventName ConsoleLogin)
assert_eq "$(json_get eventSource <<<"$EV")" "signin.amazonaws.com" "ConsoleLogin: eventSource"
assert_eq "$(json_get userIdentity.userName <<<"$EV")" "bob" "failed ConsoleLogin: who tried"
assert_eq "$(json_get userIdentity.accessKeyId <<<"$EV")" "<missing>" \
    "failed ConsoleLogin: no access key (not the admin's profile)"
assert_eq "$(json_get errorCode <<<"$EV")" "AccessDeniedException" "failed ConsoleLogin: the error"
# CloudTrail User Guide, "AWS Management Console sign-in events", field by field.
assert_eq "$(json_get eventType <<<"$EV")" "AwsConsoleSignIn" "failed ConsoleLogin: eventType"
assert_eq "$(json_get responseElements.ConsoleLogin <<<"$EV")" "Failure" "ConsoleLogin: Failure"
assert_eq "$(member_is_null requestParameters <<<"$EV")" "null" "ConsoleLogin: requestParameters null"
assert_eq "$(json_get additionalEventData.MFAUsed <<<"$EV")" "No" "ConsoleLogin: MFAUsed"
assert_eq "$(json_get additionalEventData.MobileVersion <<<"$EV")" "No" "ConsoleLogin: MobileVersion"
assert_eq "$(json_get requestID <<<"$EV")" "<missing>" "ConsoleLogin: no requestID"
KMS_PASSWORD=$PASSWORD kms sign-in --user-name bob >/dev/null
EV=$(newest_event EventName ConsoleLogin)
assert_eq "$(json_get responseElements.ConsoleLogin <<<"$EV")" "Success" "ConsoleLogin: Success"
assert_eq "$(json_get eventType <<<"$EV")" "AwsConsoleSignIn" "successful ConsoleLogin: eventType"
assert_eq "$(json_get additionalEventData.LoginTo <<<"$EV")" "kmsctl --profile signin" \
    "ConsoleLogin: LoginTo, the profile the session went to"
assert_eq "$(json_get errorCode <<<"$EV")" "<missing>" "successful ConsoleLogin: no error"
# A call made with the sign-in's session says so; one made with access keys does not.
"$KMSCTL" --home "$HOME_DIR" --profile signin list-aliases >/dev/null 2>&1 || true # bob may not
EV=$(newest_event EventName ListAliases)
assert_eq "$(json_get sessionCredentialFromConsole <<<"$EV")" "true" \
    "a call with the sign-in session: sessionCredentialFromConsole"
kms list-aliases >/dev/null
EV=$(newest_event EventName ListAliases)
assert_eq "$(json_get sessionCredentialFromConsole <<<"$EV")" "<missing>" \
    "a call with access keys: no sessionCredentialFromConsole"

# Lookup filters and paging.
N=$(kms lookup-events --lookup-attributes AttributeKey=ResourceName,AttributeValue="$KEY" \
    --query Events | json_len)
assert_match "$N" '^[0-9]+$' "lookup by ResourceName (key id) answers"
[ "$N" -ge 5 ] && ok "lookup by ResourceName finds the key's $N events" || fail "only $N events for the key"
assert_eq "$(kms lookup-events --lookup-attributes AttributeKey=AccessKeyId,AttributeValue="$BOB_ID" \
    --query 'Events[0].Username' --output text)" "bob" "lookup by AccessKeyId"
assert_eq "$(kms lookup-events --lookup-attributes AttributeKey=EventSource,AttributeValue=sts.amazonaws.com \
    --query 'Events[0].EventName' --output text)" "AssumeRole" "lookup by EventSource"
P1=$(kms lookup-events --no-paginate --max-results 3)
TOKEN=$(json_get NextToken <<<"$P1")
assert_ne "$TOKEN" "<missing>" "a page of 3 has a NextToken"
P2=$(kms lookup-events --max-results 3 --next-token "$TOKEN")
T1=$(json_get 'Events[2].EventTime' <<<"$P1")
T2=$(json_get 'Events[0].EventTime' <<<"$P2")
[[ "$T2" < "$T1" || "$T2" == "$T1" ]] && ok "the next page is older (newest first)" ||
    fail "page 2 starts at $T2, after page 1's end $T1"
assert_ne "$(json_get 'Events[0].EventId' <<<"$P2")" "$(json_get 'Events[2].EventId' <<<"$P1")" \
    "pages do not repeat events"
expect_error ValidationException 254 kms lookup-events --lookup-attributes AttributeKey=Colour,AttributeValue=red
FUTURE=$(kms lookup-events --start-time 2099-01-01T00:00:00Z --query Events | json_len)
assert_eq "$FUTURE" "0" "a time range in the future holds nothing"

# Usage report.
REPORT=$(kms usage-report)
assert_eq "$(json_get 'Keys[0].KeyArn' <<<"$REPORT")" "$KEY_ARN" "usage-report: the key"
ENC_ERR=$("$PY" -c '
import json,sys
r=json.load(sys.stdin)
k=[k for k in r["Keys"] if k["KeyArn"]==sys.argv[1]][0]
print(",".join("%s=%d/%d"%(o["EventName"],o["Requests"],o["Errors"]) for o in k["Operations"] if o["EventName"] in ("Encrypt","Decrypt")))' "$KEY_ARN" <<<"$REPORT")
assert_contains "$ENC_ERR" "Encrypt=2/1" "usage-report: Encrypt 2 requests, 1 error"
assert_contains "$ENC_ERR" "Decrypt=1/0" "usage-report: Decrypt 1 request"

# ---- no secret anywhere in the trail ----------------------------------------------------------
PIN=$(cat "$HOME_DIR"/hsm/pin 2>/dev/null || true)
ADMIN_SECRET=$(grep -m1 aws_secret_access_key "$HOME_DIR/credentials" | sed 's/.*= *//')
leaks=""
for s in "$PLAINTEXT" "$PT_B64" "$DATA_KEY" "$BOB_SECRET" "$ROLE_SECRET" "$ROLE_TOKEN" \
    "$PASSWORD" "$ADMIN_SECRET" ${PIN:+"$PIN"}; do
    if grep -r -a -q -F -- "$s" "$AUDIT"; then leaks="$leaks ${s:0:12}..."; fi
done
assert_eq "$leaks" "" "no plaintext, data key, secret key, session token, password or PIN in $AUDIT"

# ---- the open segment: commands append and leave it open (issue 15, item 13) -------------------
# Every command so far appended to one open segment and wrote no digest (the period is an hour).
assert_eq "$(find "$AUDIT/digests" -name '*.json' | wc -l)" "0" "no command sealed: no digest yet"
assert_eq "$(find "$AUDIT/segments" -name '*.jsonl' | wc -l)" "1" "all records in one open segment"
NREC=$(tr -d '\0' <"$AUDIT/segments/00000000000000000001.jsonl" | grep -c .)
kms validate-logs >"$TMP/v.json" && ok "validate-logs passes on the unsealed trail" ||
    fail "validate-logs: $(cat "$TMP/v.json")"
assert_eq "$(json_get UnsignedTail.Records <"$TMP/v.json")" "$NREC" "UnsignedTail counts the $NREC records"
[ "$(json_get UnsignedTail.Bytes <"$TMP/v.json")" -gt 1000 ] && ok "UnsignedTail gives their bytes" ||
    fail "UnsignedTail.Bytes: $(json_get UnsignedTail.Bytes <"$TMP/v.json")"
[ -n "$(json_get UnsignedTail.OldestEventTime <"$TMP/v.json")" ] && ok "and the oldest unsigned event's time" ||
    fail "no UnsignedTail.OldestEventTime"
assert_eq "$(json_get Anchor.AcknowledgedSequence <"$TMP/v.json")" "$NREC" \
    "the HSM anchor acknowledges the last record written"
kms seal-audit-log >"$TMP/seal.json"
assert_eq "$(json_get Sealed <"$TMP/seal.json")" "true" "seal-audit-log seals the open segment"
assert_eq "$(json_get Sequence <"$TMP/seal.json")" "$NREC" "its anchor is the last record"
assert_eq "$(kms seal-audit-log --query Sealed --output text)" "False" "nothing left to seal"
assert_contains "$("$KMSCTL" seal-audit-log --help)" "kmsctl seal-audit-log" "seal-audit-log --help has an example"
kms list-keys >/dev/null
kms seal-audit-log >/dev/null # a second digest, chained to the first

# ---- digests: validate-logs and the outside check with openssl alone ---------------------------
kms validate-logs >"$TMP/v.json" && ok "validate-logs passes on the untouched trail" ||
    fail "validate-logs: $(cat "$TMP/v.json")"
assert_eq "$(json_get Valid <"$TMP/v.json")" "true" "the report says Valid"
assert_eq "$(json_get Anchor.File <"$TMP/v.json")" "$(cd "$AUDIT" && ls digests/*.json | tail -1)" \
    "the HSM anchor names the newest digest"
assert_eq "$(json_get Anchor.Found <"$TMP/v.json")" "true" "and the trail reaches it"
assert_eq "$(json_get UnsignedTail.Records <"$TMP/v.json")" "0" "no unsigned record after the seal"
kms get-audit-public-key --outfile "$TMP/audit-key.pem"
cmp -s "$TMP/audit-key.pem" "$AUDIT/digest-public-key.pem" && ok "the exported key is the home's copy" ||
    fail "get-audit-public-key differs from $AUDIT/digest-public-key.pem"
DIGEST=$(ls "$AUDIT"/digests/*.json | tail -1)
assert_eq "$(openssl dgst -sha256 -verify "$TMP/audit-key.pem" -signature "$DIGEST.sig" "$DIGEST")" \
    "Verified OK" "openssl verifies a digest signature"
SEG=$(json_get 'logFiles[0].file' <"$DIGEST")
assert_eq "$(sha256sum "$AUDIT/$SEG" | cut -d' ' -f1)" "$(json_get 'logFiles[0].hashValue' <"$DIGEST")" \
    "sha256sum matches the digest's hash of its log file"
PREV=$(ls "$AUDIT"/digests/*.json | tail -2 | head -1)
assert_eq "$(json_get previousDigestSignature <"$DIGEST")" "$(od -An -tx1 "$PREV.sig" | tr -d ' \n')" \
    "previousDigestSignature is the hex of the previous digest's signature (od)"
assert_eq "$(json_get previousDigestHashValue <"$DIGEST")" "$(sha256sum "$PREV" | cut -d' ' -f1)" \
    "previousDigestHashValue is sha256sum of the previous digest"
cp "$DIGEST" "$TMP/forged.json"
sed -i 's/"hashValue":"[0-9a-f]*"/"hashValue":"'"$(printf 'f%.0s' {1..64})"'"/' "$TMP/forged.json"
cmp -s "$DIGEST" "$TMP/forged.json" && fail "the edit changed nothing" || true
if openssl dgst -sha256 -verify "$TMP/audit-key.pem" -signature "$DIGEST.sig" "$TMP/forged.json" >/dev/null 2>&1; then
    fail "openssl accepted an edited digest"
else
    ok "openssl refuses an edited digest"
fi

# ---- tampering: each on a copy, each must fail and name the place -----------------------------
# A segment of many records: one process (kmsbench) making many calls.
"$KMS_BUILD_DIR/kmsbench" --home "$HOME_DIR" --operation Encrypt --threads 2 --seconds 1 >/dev/null
kms seal-audit-log >/dev/null
kms list-keys >/dev/null
kms seal-audit-log >/dev/null # one more sealed segment
cp -a "$AUDIT" "$TMP/audit.orig"
restore() { rm -rf "$AUDIT"; cp -a "$TMP/audit.orig" "$AUDIT"; }
# tampered WHAT FRAGMENT: validate-logs must exit 254 and its report must mention FRAGMENT.
tampered() {
    local rc=0
    kms validate-logs >"$TMP/v.json" 2>"$TMP/v.err" || rc=$?
    if [ "$rc" -eq 254 ] && grep -q -F -- "$2" "$TMP/v.json" && [ "$(json_get Valid <"$TMP/v.json")" = false ]; then
        ok "validate-logs catches: $1"
    else
        fail "validate-logs on '$1': exit $rc, report lacks '$2': $(head -c 600 "$TMP/v.json")"
    fi
    restore
}
mapfile -t SEGS < <(cd "$AUDIT" && ls segments/*.jsonl)
S1=${SEGS[1]}
S2=${SEGS[2]}
chmod u+w "$AUDIT/$S1" "$AUDIT/$S2"
# a flipped byte inside a record
"$PY" - "$AUDIT/$S1" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
i = b.index(b'"eventName":"') + 14; b[i] ^= 0x01
open(p, "wb").write(bytes(b))
PY
tampered "a flipped byte" "$S1"
chmod u+w "$AUDIT/$S1"
# a deleted record: the first line of a segment with several
MANY=$(for s in "${SEGS[@]}"; do echo "$(wc -l <"$AUDIT/$s") $s"; done | sort -n | tail -1 | cut -d' ' -f2)
chmod u+w "$AUDIT/$MANY"
sed -i '2d' "$AUDIT/$MANY"
tampered "a deleted record" "$MANY"
rm "$AUDIT/$S1"
tampered "a deleted segment" "$S1"
mv "$AUDIT/$S1" "$TMP/swap" && mv "$AUDIT/$S2" "$AUDIT/$S1" && mv "$TMP/swap" "$AUDIT/$S2"
tampered "two swapped segments" "$S1"
chmod u+w "$AUDIT/$S2"
truncate -s -40 "$AUDIT/$S2"
tampered "a truncated segment" "$S2"
D1=$(cd "$AUDIT" && ls digests/*.json | head -2 | tail -1)
"$PY" - "$AUDIT/$D1" <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p)); d["logFiles"][0]["hashValue"] = "0" * 64
open(p, "w").write(json.dumps(d, separators=(",", ":")))
PY
openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/other.pem" 2>/dev/null
openssl dgst -sha256 -sign "$TMP/other.pem" -out "$AUDIT/$D1.sig" "$AUDIT/$D1"
tampered "a digest forged without the HSM key" "$D1"
rm "$AUDIT/$D1" "$AUDIT/$D1.sig"
tampered "a deleted digest" "$D1"
DN=$(cd "$AUDIT" && ls digests/*.json | tail -1)
rm "$AUDIT/$DN" "$AUDIT/$DN.sig"
# Its segment is sealed without a digest, and the HSM anchor names the deleted digest: the writer
# refuses to go on (and never signs that segment again).
expect_error KMSAuditLogException 254 kms list-keys
assert_contains "$ERR_MSG" "HSM anchor says $DN" "the error says why"
tampered "the newest digest deleted" "listed by no digest"
head -c 3000 /dev/urandom >"$AUDIT/segments/99999999999999999999.jsonl"
printf 'not json at all' >"$AUDIT/digests/garbage.json"
tampered "garbage files" "garbage.json"

# ---- a rollback of the tail: the HSM anchor ---------------------------------------------------
# The newest digest and the segment it covers deleted: what remains chains and verifies on its
# own; only the anchor in the token (which moves only with the PIN) shows that more was written.
audit_listing() { (cd "$AUDIT" && find . -printf '%p %y %m %s\n' | sort && find . -type f -exec sha256sum {} + | sort); }
DN=$(cd "$AUDIT" && ls digests/*.json | tail -1)
SN=$(json_get 'logFiles[0].file' <"$AUDIT/$DN")
[ "$(ls "$AUDIT"/digests/*.json | wc -l)" -ge 2 ] && [ -f "$AUDIT/$SN" ] &&
    ok "the trail has several digests; the newest covers $SN" || fail "no digest to roll back"
rm -f "$AUDIT/$DN" "$AUDIT/$DN.sig" "$AUDIT/$SN"
BEFORE=$(audit_listing)
rc=0
kms validate-logs >"$TMP/v.json" 2>"$TMP/v.err" || rc=$?
assert_eq "$rc" 254 "validate-logs fails on a trail whose newest digest and segment were deleted"
assert_eq "$(json_get Valid <"$TMP/v.json")" "false" "the report says Valid false"
assert_eq "$(json_get Anchor.File <"$TMP/v.json")" "$DN" "the report's Anchor names the deleted digest"
assert_eq "$(json_get Anchor.Found <"$TMP/v.json")" "false" "and says it was not found"
assert_eq "$("$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(len([p for p in r["Problems"] if p["Kind"] == "missing" and p["File"] == sys.argv[2]]))' \
    "$TMP/v.json" "$DN")" "1" "a problem of kind missing names $DN"
expect_error KMSAuditLogException 254 kms list-keys
assert_contains "$ERR_MSG" "the HSM anchor says $DN" "the refusal names the anchored digest"
assert_contains "$ERR_MSG" "deleted or rolled back" "the refusal says what happened"
assert_contains "$ERR_MSG" "validate-logs" "the refusal says what to do"
assert_eq "$(audit_listing)" "$BEFORE" "the refused operation added no record and changed no file"
restore
kms list-keys >/dev/null && ok "the trail restored from the backup is accepted again" ||
    fail "the restored trail is refused"

# ---- fail closed --------------------------------------------------------------------------------
KEYS_BEFORE=$(kms list-keys --query Keys | json_len)
mv "$AUDIT" "$TMP/audit.away"
expect_error KMSAuditLogException 254 kms create-key --description must-not-exist
assert_contains "$ERR_MSG" "missing" "the error says the log directory is missing"
mv "$TMP/audit.away" "$AUDIT"
assert_eq "$(kms list-keys --query Keys | json_len)" "$KEYS_BEFORE" \
    "no key was created while the log was missing"

# A full disk (a write that fails half-way) is tested in tests/unit/test_audit.c (write_failure:
# RLIMIT_FSIZE in a child): here the metadata database would fail first.

# Read-only: as an unprivileged user (root ignores permissions).
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    cp -a "$HOME_DIR" "$TMP/ro-home"
    sed -i "s|^directories.tokendir *=.*|directories.tokendir = $TMP/ro-home/hsm/tokens|" "$TMP/ro-home/hsm/softhsm2.conf"
    chmod 755 "$TMP"
    chown -R nobody "$TMP/ro-home"
    chmod 500 "$TMP/ro-home/audit" "$TMP/ro-home/audit/segments"
    rc=0
    setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/nonexistent \
        "$KMSCTL" --home "$TMP/ro-home" list-keys >"$TMP/ro.out" 2>"$TMP/ro.err" || rc=$?
    assert_eq "$rc" 254 "a read-only log directory fails the operation"
    assert_contains "$(cat "$TMP/ro.err")" "KMSAuditLogException" "with the audit error (stdout: $(head -c 300 "$TMP/ro.out"))"
fi

# ---- kill -9 in the middle of a burst -----------------------------------------------------------
# One process, 4 threads (group commit); it prints a call's tag once the call returned, i.e. once
# its record was durable. (Killing kmsctl processes instead would also kill SoftHSM while it
# rewrites its token files at login, which breaks the token, not the trail.)
BURST="$KMS_BUILD_DIR/tests/audit_burst"
for round in 1 2; do
    "$BURST" "$HOME_DIR" "$KEY" 4 >"$TMP/acked" 2>"$TMP/burst.err" &
    PID=$!
    sleep 2
    kill -9 "$PID"
    wait "$PID" 2>/dev/null || true
    ACKED=$(grep -c . "$TMP/acked" || true)
    [ "$ACKED" -gt 0 ] && ok "round $round: the burst acknowledged $ACKED calls before kill -9" ||
        fail "round $round: no call acknowledged ($(head -c 300 "$TMP/burst.err"))"
    "$PY" - "$TMP/acked" "$AUDIT/segments" >"$TMP/lost" <<'PY'
import json, os, sys
acked = open(sys.argv[1]).read().split("\n")[:-1]  # whole lines only
seen = set()
for name in os.listdir(sys.argv[2]):
    with open(os.path.join(sys.argv[2], name), "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                continue
            rec = json.loads(line)
            ctx = (rec.get("requestParameters") or {}).get("encryptionContext") or {}
            if "burst" in ctx and rec.get("userAgent") == "audit_burst":
                seen.add(ctx["burst"])
for tag in acked:
    if tag not in seen:
        print(tag)
PY
    assert_eq "$(head -5 "$TMP/lost")" "" "round $round: no acknowledged record is lost"
    kms list-keys >/dev/null # the next writer finishes what the kill interrupted
    kms validate-logs >"$TMP/v.json" && ok "round $round: the trail validates after kill -9" ||
        fail "round $round, after kill -9: $(head -c 800 "$TMP/v.json")"
done

# ---- the digest period (time moved by libfaketime) ----------------------------------------------
if command -v faketime >/dev/null; then
    "$PY" - "$HOME_DIR/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["audit_digest_period_seconds"] = 60
open(p, "w").write(json.dumps(c))
PY
    if [ -x "$KMS_BUILD_DIR/kmsbench" ]; then
        BEFORE=$(ls "$AUDIT"/digests/*.json | wc -l)
        env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
            faketime -f '+0 x100' "$KMS_BUILD_DIR/kmsbench" --home "$HOME_DIR" \
            --operation GenerateDataKey --threads 1 --seconds 300 >/dev/null
        AFTER=$(ls "$AUDIT"/digests/*.json | wc -l)
        [ $((AFTER - BEFORE)) -ge 4 ] && ok "a long run writes a digest each period ($((AFTER - BEFORE)))" ||
            fail "only $((AFTER - BEFORE)) digests in 300 fake seconds with a 60 s period"
        kms validate-logs >"$TMP/v.json" && ok "the trail validates after periodic digests" ||
            fail "$(head -c 600 "$TMP/v.json")"
    fi
fi

# ---- --help of the audit commands ---------------------------------------------------------------
for c in lookup-events usage-report validate-logs get-audit-public-key; do
    help=$("$KMSCTL" "$c" --help)
    [[ "$help" == *"kmsctl $c"* && "$help" == *[Ee]xample* ]] && ok "$c --help has an example" ||
        fail "$c --help: $help"
done
assert_contains "$("$KMSCTL" --help)" "The audit trail (aws cloudtrail):" "kmsctl --help lists the audit commands"

# ---- an anchor kept off the machine (get-audit-anchor, validate-logs --expect-anchor) ---------
RB="$TMP/rollback-home"
init_home "$RB"
kms_at "$RB" list-keys >/dev/null # a record: the anchor acknowledges it, sealed or not
kms_at "$RB" get-audit-anchor >"$TMP/anchor.json"
A1=$(json_get Anchor <"$TMP/anchor.json")
N1=$(json_get Sequence <"$TMP/anchor.json")
assert_eq "$A1" "$N1:$(json_get Hash <"$TMP/anchor.json")" "get-audit-anchor: Anchor is Sequence:Hash"
assert_eq "$(json_get DigestFile <"$TMP/anchor.json")" "" "no digest yet: the anchor names the last record"
kms_at "$RB" seal-audit-log >"$TMP/anchor.json"
assert_eq "$(json_get Anchor <"$TMP/anchor.json")" "$A1" "sealing writes no record: the anchor stays"
DF="$RB/audit/$(json_get DigestFile <"$TMP/anchor.json")"
assert_eq "$(json_get lastSequence <"$DF"):$(json_get lastRecordHash <"$DF")" "$A1" \
    "the digest seal-audit-log wrote ends at the anchored record"
# record_hash DIR N: the chain hash (SHA-256 of the line) of record N in DIR's segments
record_hash() {
    "$PY" - "$1" "$2" <<'PY'
import glob, hashlib, json, sys
for seg in sorted(glob.glob(sys.argv[1] + "/audit/segments/*.jsonl")):
    for line in open(seg, "rb").read().split(b"\n"):
        line = line.rstrip(b"\0")
        if line and json.loads(line)["auditChain"]["sequence"] == int(sys.argv[2]):
            print(hashlib.sha256(line).hexdigest())
PY
}
assert_eq "$N1:$(record_hash "$RB" "$N1")" "$A1" "the anchor printed matches the trail's record"
kms_at "$RB" validate-logs --expect-anchor "$A1" >"$TMP/v.json" &&
    ok "validate-logs --expect-anchor with the current anchor: valid" ||
    fail "--expect-anchor $A1: $(head -c 800 "$TMP/v.json")"
assert_eq "$(json_get ExpectedAnchor.Found <"$TMP/v.json")" "true" "the expected anchor is found"
assert_eq "$(kms_at "$RB" get-audit-anchor --output text --query Anchor)" "$A1" \
    "get-audit-anchor writes no record of its own (the anchor stays)"

# Roll back the whole home: an older copy of both HOME/audit and the token directory.
mkdir "$TMP/rb-copy"
cp -a "$RB/audit" "$RB/hsm" "$TMP/rb-copy/"
for i in 1 2 3; do kms_at "$RB" list-keys >/dev/null; done
A2=$(kms_at "$RB" get-audit-anchor --output text --query Anchor)
N2=${A2%%:*}
[ "$N2" -gt "$N1" ] && ok "the anchor moves on with the trail ($N1 -> $N2)" ||
    fail "the anchor did not move: $A1 -> $A2"
rm -rf "$RB/audit" "$RB/hsm"
cp -a "$TMP/rb-copy/audit" "$TMP/rb-copy/hsm" "$RB/"
kms_at "$RB" validate-logs >"$TMP/v.json" &&
    ok "after restoring trail and token together, plain validate-logs says valid (the documented limit)" ||
    fail "plain validate-logs after the rollback: $(head -c 800 "$TMP/v.json")"
assert_eq "$(kms_at "$RB" get-audit-anchor --output text --query Anchor)" "$A1" \
    "the restored token holds the older anchor"
# validate_expecting ANCHOR FRAGMENT MESSAGE: validate-logs --expect-anchor fails (254, Valid
# false, AuditLogInvalid) with a problem whose message holds FRAGMENT
validate_expecting() {
    local rc=0
    kms_at "$RB" validate-logs --expect-anchor "$1" >"$TMP/v.json" 2>"$TMP/v.err" || rc=$?
    assert_eq "$rc:$(json_get Valid <"$TMP/v.json"):$(json_get ExpectedAnchor.Found <"$TMP/v.json")" \
        "254:false:false" "$3: exit 254, not valid, anchor not found"
    assert_contains "$(cat "$TMP/v.err")" "AuditLogInvalid" "$3: the error says the trail is invalid"
    assert_contains "$(json_get Problems <"$TMP/v.json")" "$2" "$3: the problem says so"
}
validate_expecting "$A2" "the trail ends before the expected anchor" \
    "--expect-anchor with the newer anchor reports the rollback"
kms_at "$RB" validate-logs --expect-anchor "$A1" >"$TMP/v.json" &&
    ok "the older anchor is still in the restored trail" || fail "$(head -c 800 "$TMP/v.json")"
# Carrying on from the restored copy writes other records under the same numbers.
for i in 1 2 3 4; do kms_at "$RB" list-keys >/dev/null; done
validate_expecting "$A2" "record $N2 does not match the expected anchor" \
    "--expect-anchor after the rolled-back trail went on"
kms_at "$RB" validate-logs >/dev/null && ok "plain validate-logs still says valid" ||
    fail "plain validate-logs after going on from the rollback"

# A malformed --expect-anchor is a usage error.
H64=$(printf '%064d' 7)
for bad in "" "abc" "12" "12:" "12:abc" "0:$H64" "012:$H64" "12:${H64}0" "12:${H64%?}g" \
    "12 $H64" "-1:$H64"; do
    expect_usage_error "--expect-anchor" kms_at "$RB" validate-logs --expect-anchor "$bad"
done
for c in get-audit-anchor validate-logs; do
    help=$("$KMSCTL" "$c" --help)
    [[ "$help" == *"kmsctl $c"* && "$help" == *"--expect-anchor"* && "$help" == *Example* ]] &&
        ok "$c --help has an example with --expect-anchor" || fail "$c --help: $help"
done

# ---- issue 15 item 8: init's own IAM setup is the first records of the trail -------------------
FH="$TMP/firsts"
printf 'Root-Sign-In-Pass-123!' >"$TMP/root-pw"
init_home "$FH" --root-password-file "$TMP/root-pw"
SECRET=$(grep '^aws_secret_access_key' "$FH/credentials" | head -1 | sed 's/^[^=]*= *//')
[ -n "$SECRET" ] && ok "init saved the admin's secret" || fail "no secret in $FH/credentials"
kms_at "$FH" lookup-events >"$TMP/firsts.json"
firsts=$("$PY" - "$FH/audit/segments" "$TMP/firsts.json" <<'PYEOF'
import glob, json, os, sys
recs = []
for seg in sorted(glob.glob(os.path.join(sys.argv[1], "*.jsonl"))):
    recs += [json.loads(l.strip("\0")) for l in open(seg) if l.strip("\0").strip()]
listed = [json.loads(e["CloudTrailEvent"]) for e in json.load(open(sys.argv[2]))["Events"]]
listed.reverse()  # lookup-events lists the newest first
def line(r):
    u = r["userIdentity"]
    return "%s %s %s %s %s %s" % (r["eventSource"], r["eventName"], u["type"], u["arn"] ==
        "arn:aws:iam::%s:root" % r["recipientAccountId"], r["readOnly"], r.get("errorCode"))
print("|".join(line(r) for r in recs[:7]))
print("|".join(line(r) for r in listed[:7]))
PYEOF
)
want="iam.amazonaws.com CreateGroup Root True False None|iam.amazonaws.com AttachGroupPolicy Root True False None|iam.amazonaws.com CreateUser Root True False None|iam.amazonaws.com AddUserToGroup Root True False None|iam.amazonaws.com CreateAccessKey Root True False None|iam.amazonaws.com UpdateAccountPasswordPolicy Root True False None|iam.amazonaws.com CreateLoginProfile Root True False None"
assert_eq "$(sed -n 1p <<<"$firsts")" "$want" "init's IAM setup: the first records of the segments, in order, as root"
assert_eq "$(sed -n 2p <<<"$firsts")" "$want" "init's IAM setup: the first records lookup-events lists"
trail=$(cat "$FH"/audit/segments/*.jsonl)
assert_contains "$trail" "\"accessKeyId\":\"$(grep '^aws_access_key_id' "$FH/credentials" | head -1 | sed 's/^[^=]*= *//')\"" \
    "CreateAccessKey names the admin's access key id"
assert_not_contains "$trail" "$SECRET" "the admin's secret access key is not in the trail"
assert_not_contains "$trail" "Root-Sign-In-Pass-123" "the root password is not in the trail"
kms_at "$FH" validate-logs >"$TMP/firsts-v.json" &&
    assert_eq "$(json_get Valid <"$TMP/firsts-v.json")" "true" "validate-logs: the new trail is valid" ||
    fail "validate-logs after init: $(head -c 800 "$TMP/firsts-v.json")"
