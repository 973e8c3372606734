#!/usr/bin/env bash
# CloudTrail record shapes, field by field, from AWS's documented examples (AWS KMS Developer
# Guide, "Logging AWS KMS API calls with AWS CloudTrail": CreateKey, Encrypt, Decrypt,
# GenerateDataKey, ReEncrypt, ScheduleKeyDeletion, RotateKey; CloudTrail User Guide, "AWS
# Management Console sign-in events"): eventVersion 1.11, the request parameters AWS fills in,
# dates written as CloudTrail writes them, key material ids in the records and the responses,
# the RotateKey service event, ConsoleLogin Success and Failure.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# newest_event NAME: the newest record of event NAME.
newest_event() {
    kms lookup-events --lookup-attributes "AttributeKey=EventName,AttributeValue=$1" --max-items 1 \
        --query 'Events[0].CloudTrailEvent' --output text
}
# ct_date TEXT: epoch seconds of a date as CloudTrail writes it ("Aug 10, 2022, 10:38:27 PM",
# UTC), or "unparsed".
ct_date() {
    "$PY" -c 'import calendar, sys, time
try:
    print(calendar.timegm(time.strptime(sys.argv[1], "%b %d, %Y, %I:%M:%S %p")))
except ValueError:
    print("unparsed")' "$1"
}
# near A B SLACK: "near" when |A - B| <= SLACK.
near() { [ "$1" != unparsed ] && [ $(($1 > $2 ? $1 - $2 : $2 - $1)) -le "$3" ] && echo near || echo "far ($1 vs $2)"; }
# member_is_null NAME < RECORD: "null" when the record has member NAME and it is null.
member_is_null() {
    "$PY" -c 'import json, sys
d = json.load(sys.stdin)
print("null" if sys.argv[1] in d and d[sys.argv[1]] is None else "not null")' "$1"
}

init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
NOW=$(date -u +%s)

# ---- CreateKey: every parameter with its default; creationDate as CloudTrail writes it --------
OUT=$(kms create-key --description shapes)
KEY=$(json_get KeyMetadata.KeyId <<<"$OUT")
KEY_ARN=$(json_get KeyMetadata.Arn <<<"$OUT")
M1=$(json_get KeyMetadata.CurrentKeyMaterialId <<<"$OUT")
assert_match "$M1" '^[0-9a-f]{64}$' "CreateKey response: KeyMetadata.CurrentKeyMaterialId, 64 hex digits"
assert_eq "$(kms describe-key --key-id "$KEY" --query KeyMetadata.CurrentKeyMaterialId --output text)" \
    "$M1" "DescribeKey: the same CurrentKeyMaterialId"
EV=$(newest_event CreateKey)
assert_eq "$(json_get eventVersion <<<"$EV")" "1.11" "CreateKey: eventVersion 1.11"
assert_eq "$(json_get eventType <<<"$EV")" "AwsApiCall" "CreateKey: eventType"
assert_eq "$(json_get userIdentity.type <<<"$EV")" "IAMUser" "CreateKey: userIdentity.type"
assert_eq "$(json_get requestParameters.description <<<"$EV")" "shapes" "CreateKey: description as given"
assert_eq "$(json_get requestParameters.keySpec <<<"$EV")" "SYMMETRIC_DEFAULT" "CreateKey: keySpec filled in"
assert_eq "$(json_get requestParameters.customerMasterKeySpec <<<"$EV")" "SYMMETRIC_DEFAULT" \
    "CreateKey: customerMasterKeySpec filled in"
assert_eq "$(json_get requestParameters.keyUsage <<<"$EV")" "ENCRYPT_DECRYPT" "CreateKey: keyUsage filled in"
assert_eq "$(json_get requestParameters.origin <<<"$EV")" "AWS_KMS" "CreateKey: origin filled in"
assert_eq "$(json_get requestParameters.bypassPolicyLockoutSafetyCheck <<<"$EV")" "false" \
    "CreateKey: bypassPolicyLockoutSafetyCheck filled in"
assert_eq "$(json_get requestParameters.multiRegion <<<"$EV")" "false" "CreateKey: multiRegion filled in"
CD=$(json_get responseElements.keyMetadata.creationDate <<<"$EV")
assert_match "$CD" '^[A-Z][a-z]{2} [0-9]{1,2}, [0-9]{4}, [0-9]{1,2}:[0-9]{2}:[0-9]{2} [AP]M$' \
    "CreateKey: creationDate written as CloudTrail writes it ($CD)"
assert_eq "$(near "$(ct_date "$CD")" "$NOW" 300)" near "CreateKey: creationDate parses back to now"
assert_eq "$(json_get responseElements.keyMetadata.currentKeyMaterialId <<<"$EV")" "$M1" \
    "CreateKey: keyMetadata.currentKeyMaterialId in responseElements"
assert_match "$(json_get requestID <<<"$EV")" '^[0-9a-f-]{36}$' "CreateKey: requestID"

# ---- Encrypt: encryptionAlgorithm, additionalEventData.keyMaterialId ---------------------------
PT=$(printf 'shape' | base64 -w0)
BLOB1=$(kms kms-encrypt --key-id "$KEY" --plaintext "$PT" --encryption-context Department=Engineering \
    --query CiphertextBlob --output text)
EV=$(newest_event Encrypt)
assert_eq "$(json_get requestParameters.keyId <<<"$EV")" "$KEY" "Encrypt: keyId as given"
assert_eq "$(json_get requestParameters.encryptionAlgorithm <<<"$EV")" "SYMMETRIC_DEFAULT" \
    "Encrypt: encryptionAlgorithm filled in"
assert_eq "$(json_get requestParameters.encryptionContext.Department <<<"$EV")" "Engineering" \
    "Encrypt: encryptionContext"
assert_eq "$(json_get additionalEventData.keyMaterialId <<<"$EV")" "$M1" \
    "Encrypt: additionalEventData.keyMaterialId is the key's current material"
assert_eq "$(member_is_null responseElements <<<"$EV")" "null" "Encrypt: responseElements null"
assert_eq "$(json_get readOnly <<<"$EV")" "true" "Encrypt: readOnly"

# ---- Decrypt without KeyId: the key ARN and the algorithm, always -------------------------------
OUT=$(kms kms-decrypt --ciphertext-blob "$BLOB1" --encryption-context Department=Engineering)
assert_eq "$(json_get KeyMaterialId <<<"$OUT")" "$M1" "Decrypt response: KeyMaterialId"
EV=$(newest_event Decrypt)
assert_eq "$(json_get requestParameters.keyId <<<"$EV")" "$KEY_ARN" "Decrypt: keyId is the key ARN"
assert_eq "$(json_get requestParameters.encryptionAlgorithm <<<"$EV")" "SYMMETRIC_DEFAULT" \
    "Decrypt: encryptionAlgorithm, though the request had none"
assert_eq "$(json_get additionalEventData.keyMaterialId <<<"$EV")" "$M1" \
    "Decrypt: additionalEventData.keyMaterialId = the response's KeyMaterialId"
assert_eq "$(json_get requestParameters.ciphertextBlob <<<"$EV")" "<missing>" "Decrypt: no ciphertext"

# ---- GenerateDataKey ----------------------------------------------------------------------------
OUT=$(kms generate-data-key --key-id "$KEY" --key-spec AES_256)
assert_eq "$(json_get KeyMaterialId <<<"$OUT")" "$M1" "GenerateDataKey response: KeyMaterialId"
EV=$(newest_event GenerateDataKey)
assert_eq "$(json_get additionalEventData.keyMaterialId <<<"$EV")" "$M1" \
    "GenerateDataKey: additionalEventData.keyMaterialId"
assert_eq "$(json_get requestParameters.keySpec <<<"$EV")" "AES_256" "GenerateDataKey: keySpec"

# ---- RotateKey: a service event with the material ids before and after -----------------------
kms rotate-key-on-demand --key-id "$KEY" >/dev/null
M2=$(kms describe-key --key-id "$KEY" --query KeyMetadata.CurrentKeyMaterialId --output text)
assert_match "$M2" '^[0-9a-f]{64}$' "after a rotation: a CurrentKeyMaterialId"
assert_ne "$M2" "$M1" "after a rotation: a new CurrentKeyMaterialId"
EV=$(newest_event RotateKey)
assert_eq "$(json_get eventType <<<"$EV")" "AwsServiceEvent" "RotateKey: eventType AwsServiceEvent"
assert_eq "$(json_get userIdentity.invokedBy <<<"$EV")" "AWS Internal" "RotateKey: invokedBy"
assert_eq "$(json_get userIdentity.accountId <<<"$EV")" "$ACCOUNT" "RotateKey: the account"
assert_eq "$(json_get sourceIPAddress <<<"$EV")/$(json_get userAgent <<<"$EV")" \
    "AWS Internal/AWS Internal" "RotateKey: sourceIPAddress and userAgent"
assert_eq "$(json_get requestID <<<"$EV")" "<missing>" "RotateKey: no requestID"
assert_eq "$(member_is_null requestParameters <<<"$EV")" "null" "RotateKey: requestParameters null"
assert_eq "$(json_get serviceEventDetails.keyId <<<"$EV")" "$KEY" "RotateKey: serviceEventDetails.keyId"
assert_eq "$(json_get serviceEventDetails.rotationType <<<"$EV")" "ON_DEMAND" "RotateKey: rotationType"
assert_eq "$(json_get serviceEventDetails.keyOrigin <<<"$EV")" "AWS_KMS" "RotateKey: keyOrigin"
assert_eq "$(json_get serviceEventDetails.previousKeyMaterialId <<<"$EV")" "$M1" \
    "RotateKey: previousKeyMaterialId is the old material"
assert_eq "$(json_get serviceEventDetails.currentKeyMaterialId <<<"$EV")" "$M2" \
    "RotateKey: currentKeyMaterialId is DescribeKey's CurrentKeyMaterialId"

assert_eq "$(kms list-key-rotations --key-id "$KEY" --query 'Rotations[0].KeyMaterialId' --output text)" \
    "$M2" "ListKeyRotations: the rotation's KeyMaterialId"
# A ciphertext of the old material still names it; a new one names the new.
assert_eq "$(kms kms-decrypt --ciphertext-blob "$BLOB1" --encryption-context Department=Engineering \
    --query KeyMaterialId --output text)" "$M1" "Decrypt of an old ciphertext: the old KeyMaterialId"

# ---- ReEncrypt: source and destination material -------------------------------------------------
KEY2=$(kms create-key --description shapes-2 --query KeyMetadata.KeyId --output text)
N1=$(kms describe-key --key-id "$KEY2" --query KeyMetadata.CurrentKeyMaterialId --output text)
OUT=$(kms kms-re-encrypt --ciphertext-blob "$BLOB1" --source-encryption-context Department=Engineering \
    --destination-key-id "$KEY2")
assert_eq "$(json_get SourceKeyMaterialId <<<"$OUT")" "$M1" "ReEncrypt response: SourceKeyMaterialId"
assert_eq "$(json_get DestinationKeyMaterialId <<<"$OUT")" "$N1" \
    "ReEncrypt response: DestinationKeyMaterialId"
EV=$(newest_event ReEncrypt)
assert_eq "$(json_get additionalEventData.sourceKeyMaterialId <<<"$EV")" "$M1" \
    "ReEncrypt: additionalEventData.sourceKeyMaterialId"
assert_eq "$(json_get additionalEventData.destinationKeyMaterialId <<<"$EV")" "$N1" \
    "ReEncrypt: additionalEventData.destinationKeyMaterialId"
assert_eq "$(json_get requestParameters.destinationEncryptionAlgorithm <<<"$EV")" "SYMMETRIC_DEFAULT" \
    "ReEncrypt: destinationEncryptionAlgorithm filled in"

# ---- ScheduleKeyDeletion: deletionDate as CloudTrail writes it ----------------------------------
kms schedule-key-deletion --key-id "$KEY2" --pending-window-in-days 7 >/dev/null
EV=$(newest_event ScheduleKeyDeletion)
DD=$(json_get responseElements.deletionDate <<<"$EV")
assert_eq "$(near "$(ct_date "$DD")" $((NOW + 7 * 86400)) 86400)" near \
    "ScheduleKeyDeletion: deletionDate ($DD) parses back to a week from now"
assert_eq "$(json_get requestParameters.pendingWindowInDays <<<"$EV")" "7" \
    "ScheduleKeyDeletion: pendingWindowInDays"

# ---- AssumeRole: the credentials' expiration as CloudTrail writes it (no secret) ----------------
kms create-role --role-name shaper --assume-role-policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::$ACCOUNT:root\"},\"Action\":\"sts:AssumeRole\"}]}" >/dev/null
OUT=$(kms assume-role --role-arn "arn:aws:iam::$ACCOUNT:role/shaper" --role-session-name shapes \
    --duration-seconds 900)
EV=$(newest_event AssumeRole)
EX=$(json_get responseElements.credentials.expiration <<<"$EV")
assert_eq "$(near "$(ct_date "$EX")" $((NOW + 900)) 300)" near \
    "AssumeRole: credentials.expiration ($EX) parses back to 15 minutes from now"
assert_eq "$(json_get responseElements.credentials.accessKeyId <<<"$EV")" \
    "$(json_get Credentials.AccessKeyId <<<"$OUT")" "AssumeRole: the access key id is recorded"
assert_eq "$(json_get responseElements.credentials.secretAccessKey <<<"$EV")" "<missing>" \
    "AssumeRole: the secret is not"
CR=$(json_get responseElements.role.createDate <<<"$(newest_event CreateRole)")
assert_eq "$(near "$(ct_date "$CR")" "$NOW" 300)" near "CreateRole: role.createDate ($CR) as CloudTrail writes it"

# ---- ConsoleLogin: Failure, then Success --------------------------------------------------------
kms create-user --user-name dana >/dev/null
PASSWORD="Shapes-Pa55word-$RANDOM-never-logged"
kms create-login-profile --user-name dana --password "$PASSWORD" >/dev/null
rc=0
KMS_PASSWORD=wrong-password kms sign-in --user-name dana >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 254 "a wrong password fails sign-in"
EV=$(newest_event ConsoleLogin)
assert_eq "$(json_get eventSource <<<"$EV")" "signin.amazonaws.com" "ConsoleLogin: eventSource"
assert_eq "$(json_get eventType <<<"$EV")" "AwsConsoleSignIn" "ConsoleLogin Failure: eventType"
assert_eq "$(json_get responseElements.ConsoleLogin <<<"$EV")" "Failure" "ConsoleLogin: Failure"
assert_eq "$(member_is_null requestParameters <<<"$EV")" "null" "ConsoleLogin: requestParameters null"
assert_eq "$(json_get additionalEventData.MFAUsed <<<"$EV")/$(json_get additionalEventData.MobileVersion <<<"$EV")" \
    "No/No" "ConsoleLogin Failure: MFAUsed, MobileVersion"
assert_eq "$(json_get userIdentity.userName <<<"$EV")" "dana" "ConsoleLogin Failure: who tried"
! grep -rqF -- "$PASSWORD" "$HOME_DIR/audit" && ok "the password is in no record" ||
    fail "the password is in the trail"
KMS_PASSWORD=$PASSWORD kms sign-in --user-name dana >/dev/null
EV=$(newest_event ConsoleLogin)
assert_eq "$(json_get responseElements.ConsoleLogin <<<"$EV")" "Success" "ConsoleLogin: Success"
assert_eq "$(json_get eventType <<<"$EV")" "AwsConsoleSignIn" "ConsoleLogin Success: eventType"
assert_eq "$(json_get additionalEventData.LoginTo <<<"$EV")" "kmsctl --profile signin" "ConsoleLogin: LoginTo"
assert_eq "$(json_get requestID <<<"$EV")" "<missing>" "ConsoleLogin: no requestID"
"$KMSCTL" --home "$HOME_DIR" --profile signin list-keys >/dev/null 2>&1 || true # dana may not
EV=$(newest_event ListKeys)
assert_eq "$(json_get userIdentity.userName <<<"$EV")" "dana" "a call with the sign-in session"
assert_eq "$(json_get sessionCredentialFromConsole <<<"$EV")" "true" \
    "its record: sessionCredentialFromConsole true"

assert_eq "$(kms validate-logs --query Valid 2>/dev/null)" "true" "the trail with the new shapes validates"
