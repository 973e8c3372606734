#!/usr/bin/env bash
# Key rotation and deletion windows, driven through kmsctl with time moved by libfaketime (never
# by sleeping): automatic rotation, a missed schedule, on-demand rotation and its limit,
# usage-based rotation, deletion windows, crashes in the middle of a rotation and of a deletion,
# schedulers running side by side, SIGTERM, and the AwsServiceEvent records of it all.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

faketime_required
# at OFFSET ARGS...: kmsctl on the home with the clock moved by OFFSET ("+91d", as faketime -f).
at() {
    local off=$1
    shift
    at_time "$off" "$KMSCTL" --home "$HOME_DIR" "$@"
}
DAY=86400

# blob_version BASE64: the key material version a KMS ciphertext blob names (bytes 17-20).
blob_version() {
    "$PY" -c 'import base64,sys; b=base64.b64decode(sys.argv[1]); print(int.from_bytes(b[17:21],"big"))' "$1"
}
# esdk_versions FILE KEY_ID: the material versions of every KMS blob of KEY_ID in an ESDK
# message's encrypted data keys, space-separated.
esdk_versions() {
    "$PY" - "$1" "$2" <<'PY'
import sys, uuid
data = open(sys.argv[1], "rb").read()
needle = b"\x01" + uuid.UUID(sys.argv[2]).bytes
found, i = [], data.find(needle)
while i >= 0:
    found.append(str(int.from_bytes(data[i + 17:i + 21], "big")))
    i = data.find(needle, i + 1)
print(" ".join(found))
PY
}
# count MEMBER < JSON: the length of a list member
count() { "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)[sys.argv[1]]))' "$1"; }
# hsm_labels: the labels of the token's objects, one per line
hsm_labels() {
    SOFTHSM2_CONF="$HOME_DIR/hsm/softhsm2.conf" pkcs11-tool --module "$SOFTHSM_MODULE" \
        --token-label kms --login --pin "$(head -n1 "$HOME_DIR/pin")" --list-objects 2>/dev/null |
        sed -n 's/^ *label: *//p'
}

init_home
NOW=$(date +%s)
KEY=$(create_key SYMMETRIC_DEFAULT)
echo hello >"$TMP/plain"

# ---- what bad input gets ----------------------------------------------------------------------
expect_error ValidationException 254 kms enable-key-rotation --key-id "$KEY" \
    --rotation-period-in-days 89
expect_error ValidationException 254 kms enable-key-rotation --key-id "$KEY" \
    --rotation-period-in-days 2561
EC=$(create_key ECC_NIST_P256 SIGN_VERIFY)
HMAC=$(create_key HMAC_256)
RSA=$(create_key RSA_2048 ENCRYPT_DECRYPT)
for k in "$EC" "$HMAC" "$RSA"; do
    expect_error UnsupportedOperationException 254 kms enable-key-rotation --key-id "$k"
    expect_error UnsupportedOperationException 254 kms rotate-key-on-demand --key-id "$k"
done
expect_error UnsupportedOperationException 254 kms get-key-rotation-status --key-id "$EC"
expect_error NotFoundException 254 kms enable-key-rotation \
    --key-id 11111111-2222-3333-4444-555555555555
kms create-alias --alias-name alias/main --target-key-id "$KEY"
expect_error ValidationException 254 kms enable-key-rotation --key-id alias/main
assert_match "$ERR_MSG" "key id or key ARN" "rotation takes a key id or ARN, not an alias"
DIS=$(create_key SYMMETRIC_DEFAULT)
kms disable-key --key-id "$DIS"
expect_error DisabledException 254 kms enable-key-rotation --key-id "$DIS"
expect_error DisabledException 254 kms rotate-key-on-demand --key-id "$DIS"
expect_error KMSHomeException 254 "$KMSCTL" --home "$TMP/no-home" run-scheduler --once
assert_contains "$ERR_MSG" "kmsctl init" "a missing home says how to make one"
expect_usage_error "--interval" kms run-scheduler --interval 0

status=$(kms get-key-rotation-status --key-id "$KEY")
assert_eq "$(json_get KeyRotationEnabled <<<"$status")" "false" "rotation is off by default"

# ---- automatic rotation -------------------------------------------------------------------------
kms enable-key-rotation --key-id "$KEY" --rotation-period-in-days 90
status=$(kms get-key-rotation-status --key-id "$KEY")
assert_eq "$(json_get KeyRotationEnabled <<<"$status")" "true" "rotation is on"
assert_eq "$(json_get RotationPeriodInDays <<<"$status")" "90" "with the period given"
next=$(epoch "$(json_get NextRotationDate <<<"$status")")
if [ $((next - NOW - 90 * DAY)) -ge 0 ] && [ $((next - NOW - 90 * DAY)) -lt 120 ]; then
    ok "NextRotationDate is 90 days from now"
else
    fail "NextRotationDate $next is not 90 days after $NOW"
fi
assert_eq "$(json_get KeyId <<<"$status")" \
    "$(kms describe-key --key-id "$KEY" --query KeyMetadata.Arn --output text)" \
    "GetKeyRotationStatus names the key by ARN"
# Changing the period moves the date by the difference, as AWS does.
kms enable-key-rotation --key-id "$KEY" --rotation-period-in-days 100
assert_eq "$(epoch "$(kms get-key-rotation-status --key-id "$KEY" --query NextRotationDate --output text)")" \
    "$((next + 10 * DAY))" "a longer period moves the next rotation by the difference"
kms enable-key-rotation --key-id "$KEY" --rotation-period-in-days 90

CT1=$(kms kms-encrypt --key-id "$KEY" --plaintext fileb://"$TMP/plain" --query CiphertextBlob \
    --output text)
assert_eq "$(blob_version "$CT1")" "1" "before any rotation the key encrypts with version 1"
kms encrypt --key-id "$KEY" -i "$TMP/plain" -o "$TMP/msg1.esdk" --quiet
assert_eq "$(esdk_versions "$TMP/msg1.esdk" "$KEY")" "1" "the envelope message's data key is under v1"

out=$(at +89d run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "0" "nothing rotates before the period ends"
out=$(at +91d run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "1" "the period ended: one rotation"
assert_eq "$(json_get 'Rotations[0].KeyId' <<<"$out")" "$KEY" "of the key"
assert_eq "$(json_get 'Rotations[0].Version' <<<"$out")" "2" "to version 2"
assert_eq "$(json_get 'Rotations[0].RotationType' <<<"$out")" "AUTOMATIC" "an automatic one"
assert_eq "$(json_get 'Rotations[0].Reason' <<<"$out")" "SCHEDULE" "because of the schedule"
out=$(at +91d run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "0" "a second run for the same due date does nothing"

CT2=$(kms kms-encrypt --key-id "$KEY" --plaintext fileb://"$TMP/plain" --query CiphertextBlob \
    --output text)
assert_eq "$(blob_version "$CT2")" "2" "new encryptions use the new version"
assert_eq "$(kms kms-decrypt --ciphertext-blob "$CT1" --query Plaintext --output text)" \
    "$(b64file "$TMP/plain")" "data encrypted before the rotation still decrypts"
kms decrypt --key-id "$KEY" -i "$TMP/msg1.esdk" -o "$TMP/msg1.out" --quiet
assert_files_equal "$TMP/msg1.out" "$TMP/plain" "an envelope message from before still decrypts"
assert_eq "$(kms describe-key --key-id "$KEY" --query KeyMetadata.Arn --output text)" \
    "arn:aws:kms:us-east-1:$(json_get AccountId <"$TMP/init.json"):key/$KEY" "the ARN stays"
assert_eq "$(kms list-aliases --key-id "$KEY" --query 'Aliases[0].AliasName' --output text)" \
    "alias/main" "the alias stays"

# Exactly one more rotation one period later.
out=$(at +180d run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "0" "not yet: the next date is a period after the rotation"
out=$(at +182d run-scheduler --once)
assert_eq "$(json_get 'Rotations[0].Version' <<<"$out")" "3" "one period later: version 3"
assert_eq "$(count Rotations <<<"$out")" "1" "exactly one more rotation"

# A machine off for years catches up once, not once per missed period.
out=$(at +1000d run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "1" "a missed schedule catches up with one rotation"
assert_eq "$(json_get 'Rotations[0].Version' <<<"$out")" "4" "version 4"
nd=$(json_get NextDueDate <<<"$out")
want=$(date -u -d "@$((NOW + 1090 * DAY))" +%Y-%m-%d)
assert_eq "${nd%%T*}" "$want" "the next date is one period after the catch-up"
out=$(at +1001d run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "0" "and the day after, nothing"

rot=$(kms list-key-rotations --key-id "$KEY")
assert_eq "$(count Rotations <<<"$rot")" "3" "ListKeyRotations lists the three rotations"
assert_eq "$(json_get 'Rotations[0].RotationType' <<<"$rot")" "AUTOMATIC" "as AUTOMATIC"
page=$(kms list-key-rotations --key-id "$KEY" --limit 2)
assert_eq "$(json_get Truncated <<<"$page")" "true" "ListKeyRotations pages"
page2=$(kms list-key-rotations --key-id "$KEY" --limit 2 --marker "$(json_get NextMarker <<<"$page")")
assert_eq "$(count Rotations <<<"$page2")" "1" "the second page holds the rest"
expect_error InvalidMarkerException 254 kms list-key-rotations --key-id "$KEY" --marker x

# Moving data to the newest version: ReEncrypt and re-encrypt.
CT3=$(kms kms-re-encrypt --ciphertext-blob "$CT1" --destination-key-id "$KEY" \
    --query CiphertextBlob --output text)
assert_eq "$(blob_version "$CT3")" "4" "kms-re-encrypt moves a ciphertext to the newest version"
assert_eq "$(kms kms-decrypt --ciphertext-blob "$CT3" --query Plaintext --output text)" \
    "$(b64file "$TMP/plain")" "and it decrypts"
kms re-encrypt --key-id "$KEY" -i "$TMP/msg1.esdk" -o "$TMP/msg2.esdk" --quiet
assert_eq "$(esdk_versions "$TMP/msg2.esdk" "$KEY")" "4" \
    "re-encrypt without a destination wraps the data key under the newest version"
kms decrypt --key-id "$KEY" -i "$TMP/msg2.esdk" -o "$TMP/msg2.out" --quiet
assert_files_equal "$TMP/msg2.out" "$TMP/plain" "the re-encrypted message decrypts"

# Disabling stops rotation; the versions stay.
kms disable-key-rotation --key-id "$KEY"
assert_eq "$(kms get-key-rotation-status --key-id "$KEY" --query KeyRotationEnabled)" "false" \
    "DisableKeyRotation turns it off"
out=$(at +3000d run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "0" "a key whose rotation is off does not rotate"

# ---- on demand ----------------------------------------------------------------------------------
OD=$(create_key SYMMETRIC_DEFAULT)
CTOD=$(kms kms-encrypt --key-id "$OD" --plaintext fileb://"$TMP/plain" --query CiphertextBlob \
    --output text)
assert_eq "$(kms rotate-key-on-demand --key-id "$OD" --query KeyId --output text)" "$OD" \
    "RotateKeyOnDemand answers with the key id"
for _ in 2 3 4 5 6 7 8 9 10; do kms rotate-key-on-demand --key-id "$OD" >/dev/null; done
expect_error LimitExceededException 254 kms rotate-key-on-demand --key-id "$OD"
rot=$(kms list-key-rotations --key-id "$OD")
assert_eq "$(count Rotations <<<"$rot")" "10" "ten on-demand rotations"
assert_eq "$(json_get 'Rotations[9].RotationType' <<<"$rot")" "ON_DEMAND" "listed as ON_DEMAND"
assert_eq "$(kms kms-decrypt --ciphertext-blob "$CTOD" --query Plaintext --output text)" \
    "$(b64file "$TMP/plain")" "version 1 still decrypts after ten rotations"
# On-demand rotations leave the automatic schedule alone.
kms enable-key-rotation --key-id "$OD"
before=$(kms get-key-rotation-status --key-id "$OD" --query NextRotationDate)
expect_error LimitExceededException 254 kms rotate-key-on-demand --key-id "$OD"
assert_eq "$(kms get-key-rotation-status --key-id "$OD" --query NextRotationDate)" "$before" \
    "the schedule is unchanged"
kms disable-key-rotation --key-id "$OD"

# ---- a crash in the middle of a rotation ------------------------------------------------------
CR=$(create_key SYMMETRIC_DEFAULT)
CTCR=$(kms kms-encrypt --key-id "$CR" --plaintext fileb://"$TMP/plain" --query CiphertextBlob \
    --output text)
rc=0
KMS_FAULT=rotation-after-hsm kms rotate-key-on-demand --key-id "$CR" >/dev/null 2>&1 || rc=$?
assert_eq "$rc" "137" "the process died (SIGKILL) between the HSM and the metadata"
status=$(kms get-key-rotation-status --key-id "$CR")
assert_ne "$(json_get OnDemandRotationStartDate <<<"$status")" "<missing>" \
    "GetKeyRotationStatus shows the on-demand rotation under way"
CTX=$(kms kms-encrypt --key-id "$CR" --plaintext fileb://"$TMP/plain" --query CiphertextBlob \
    --output text)
assert_eq "$(blob_version "$CTX")" "1" "the key still works, with the old version"
assert_eq "$(kms kms-decrypt --ciphertext-blob "$CTCR" --query Plaintext --output text)" \
    "$(b64file "$TMP/plain")" "and decrypts"
expect_error ConflictException 254 kms rotate-key-on-demand --key-id "$CR"
assert_eq "$(hsm_labels | grep -c "^kms:$CR:v2\$")" "1" "the crash left the new material in the HSM"
out=$(kms run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "0" "a fresh claim is not taken over at once"
out=$(at +11m run-scheduler --once)
assert_eq "$(json_get 'Rotations[0].KeyId' <<<"$out")" "$CR" "ten minutes later the scheduler finishes it"
assert_eq "$(json_get 'Rotations[0].Reason' <<<"$out")" "RESUMED" "as a resumed rotation"
assert_eq "$(json_get 'Rotations[0].RotationType' <<<"$out")" "ON_DEMAND" "still on demand"
# Taking over makes the next version (v3), never the abandoned one, and clears what the crash
# left under v2.
assert_eq "$(json_get 'Rotations[0].Version' <<<"$out")" "3" "as a version nobody claimed before"
assert_eq "$(hsm_labels | grep -c "^kms:$CR:v" || true)" "2" "with v1 and v3 in the HSM"
assert_eq "$(hsm_labels | grep -c "^kms:$CR:v2\$" || true)" "0" \
    "and the abandoned v2 material cleared away"
CTX=$(kms kms-encrypt --key-id "$CR" --plaintext fileb://"$TMP/plain" --query CiphertextBlob \
    --output text)
assert_eq "$(blob_version "$CTX")" "3" "now the key encrypts with version 3"
assert_eq "$(kms kms-decrypt --ciphertext-blob "$CTCR" --query Plaintext --output text)" \
    "$(b64file "$TMP/plain")" "and version 1 still decrypts"

# The same for an automatic rotation killed inside the scheduler.
CA=$(create_key SYMMETRIC_DEFAULT)
kms enable-key-rotation --key-id "$CA" --rotation-period-in-days 90
rc=0
KMS_FAULT=rotation-after-hsm at +4000d run-scheduler --once >/dev/null 2>&1 || rc=$?
assert_eq "$rc" "137" "a scheduler killed in the middle of a rotation"
CTX=$(kms kms-encrypt --key-id "$CA" --plaintext fileb://"$TMP/plain" --query CiphertextBlob \
    --output text)
assert_eq "$(blob_version "$CTX")" "1" "leaves the key on its old version"
out=$(at +4000d run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "0" "the next run leaves the fresh claim alone"
out=$(at +4001d run-scheduler --once)
assert_eq "$(json_get 'Rotations[0].KeyId' <<<"$out")" "$CA" "a later run finishes the rotation"
assert_eq "$(count Rotations <<<"$out")" "1" "once"
assert_eq "$(json_get 'Rotations[0].Version' <<<"$out")" "3" "to version 3 (v2 was abandoned)"

# A claimant that only stalled (a suspended machine) and goes on after its claim was taken
# over: it must not touch the material the new claimant made and committed. Stop it right after
# its claim, let a scheduler take over eleven minutes later and encrypt under the new version,
# then let it go on.
ST=$(create_key SYMMETRIC_DEFAULT)
CTST1=$(kms kms-encrypt --key-id "$ST" --plaintext fileb://"$TMP/plain" --query CiphertextBlob \
    --output text)
KMS_FAULT=rotation-after-claim:stop "$KMSCTL" --home "$HOME_DIR" rotate-key-on-demand \
    --key-id "$ST" >"$TMP/stalled.out" 2>"$TMP/stalled.err" &
stalled=$!
state=""
for _ in $(seq 1 600); do
    state=$(awk '{print $3}' "/proc/$stalled/stat" 2>/dev/null || echo gone)
    [ "$state" = T ] || [ "$state" = gone ] && break
    sleep 0.05
done
assert_eq "$state" "T" "a claimant stalls right after its claim"
out=$(at +11m run-scheduler --once)
assert_eq "$(json_get 'Rotations[0].KeyId' <<<"$out")" "$ST" "a scheduler takes its claim over"
assert_eq "$(json_get 'Rotations[0].Version' <<<"$out")" "3" "making version 3, not the claimed 2"
CTST3=$(kms kms-encrypt --key-id "$ST" --plaintext fileb://"$TMP/plain" --query CiphertextBlob \
    --output text)
assert_eq "$(blob_version "$CTST3")" "3" "data is encrypted under version 3"
kill -CONT "$stalled"
rc=0
wait "$stalled" || rc=$?
assert_eq "$rc" "254" "the stalled claimant goes on and fails"
assert_contains "$(cat "$TMP/stalled.err")" "taken over" "saying its rotation was taken over"
assert_eq "$(kms kms-decrypt --ciphertext-blob "$CTST3" --query Plaintext --output text)" \
    "$(b64file "$TMP/plain")" "data under version 3 still decrypts"
assert_eq "$(kms kms-decrypt --ciphertext-blob "$CTST1" --query Plaintext --output text)" \
    "$(b64file "$TMP/plain")" "and under version 1"
assert_eq "$(hsm_labels | grep "^kms:$ST:v" | sort | tr '\n' ' ')" "kms:$ST:v1 kms:$ST:v3 " \
    "the stalled claimant's own v2 material is gone, v1 and v3 are whole"
assert_eq "$(kms list-key-rotations --key-id "$ST" | count Rotations)" "1" "one rotation listed"

# ---- schedulers side by side --------------------------------------------------------------------
PAR=$(create_key SYMMETRIC_DEFAULT)
kms enable-key-rotation --key-id "$PAR" --rotation-period-in-days 90
for i in 1 2 3; do at +5000d run-scheduler --once >"$TMP/par$i.json" 2>"$TMP/par$i.err" & done
wait
total=0
for i in 1 2 3; do
    assert_eq "$(head -c 2000 "$TMP/par$i.err")" "" "scheduler $i of 3 at once reports no error"
    n=$("$PY" -c 'import json,sys; print(sum(1 for r in json.load(open(sys.argv[1]))["Rotations"] if r["KeyId"] == sys.argv[2]))' "$TMP/par$i.json" "$PAR")
    total=$((total + n))
done
assert_eq "$total" "1" "three schedulers at once rotate the key once"
assert_eq "$(kms list-key-rotations --key-id "$PAR" | count Rotations)" "1" "one version was made"

# ---- deletion windows ---------------------------------------------------------------------------
DEL=$(create_key SYMMETRIC_DEFAULT)
kms create-alias --alias-name alias/doomed --target-key-id "$DEL"
kms rotate-key-on-demand --key-id "$DEL" >/dev/null
CTD=$(kms kms-encrypt --key-id "$DEL" --plaintext fileb://"$TMP/plain" --query CiphertextBlob \
    --output text)
kms schedule-key-deletion --key-id "$DEL" --pending-window-in-days 7 >/dev/null
assert_eq "$(kms get-key-rotation-status --key-id "$DEL" --query KeyRotationEnabled)" "false" \
    "a key pending deletion shows rotation off"
expect_error KMSInvalidStateException 254 kms kms-decrypt --ciphertext-blob "$CTD"
assert_contains "$ERR_MSG" "pending deletion" "using a key pending deletion is refused"
ev=$(kms lookup-events --lookup-attributes "AttributeKey=ResourceName,AttributeValue=$DEL" \
    --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p)
assert_eq "$(json_get eventName <<<"$ev")" "Decrypt" "the refused use is recorded"
assert_eq "$(json_get errorCode <<<"$ev")" "KMSInvalidStateException" \
    "with the error that tells someone still needs the key"
out=$(at +6d run-scheduler --once)
assert_eq "$(count Deletions <<<"$out")" "0" "nothing is deleted before the window ends"
assert_eq "$(hsm_labels | grep -c "^kms:$DEL:")" "2" "both versions are in the HSM before"
expect_error KMSInvalidStateException 254 at +8d cancel-key-deletion --key-id "$DEL"
assert_contains "$ERR_MSG" "has ended" "a deletion cannot be cancelled after its window"
out=$(at +8d run-scheduler --once)
assert_eq "$(json_get 'Deletions[0].KeyId' <<<"$out")" "$DEL" "the window ended: the key is deleted"
assert_eq "$(hsm_labels | grep -c "^kms:$DEL:" || true)" "0" "its material is destroyed in the HSM"
assert_not_contains "$(kms list-aliases)" "alias/doomed" "its alias is gone"
expect_error NotFoundException 254 kms describe-key --key-id "$DEL"
assert_contains "$ERR_MSG" "was deleted at" "DescribeKey says it was deleted"
expect_error NotFoundException 254 kms kms-decrypt --ciphertext-blob "$CTD"
assert_contains "$ERR_MSG" "nothing encrypted under it can be decrypted" \
    "its ciphertexts fail with a clear error"
expect_error NotFoundException 254 kms describe-key --key-id alias/doomed
out=$(at +9d run-scheduler --once)
assert_eq "$(count Deletions <<<"$out")" "0" "a second run deletes nothing more"

# A crash between the HSM and the metadata: the next run finishes the deletion.
DC=$(create_key SYMMETRIC_DEFAULT)
kms schedule-key-deletion --key-id "$DC" --pending-window-in-days 7 >/dev/null
rc=0
KMS_FAULT=deletion-after-hsm at +8d run-scheduler --once >/dev/null 2>&1 || rc=$?
assert_eq "$rc" "137" "a scheduler killed in the middle of a deletion"
assert_eq "$(kms describe-key --key-id "$DC" --query KeyMetadata.KeyState --output text)" \
    "PendingDeletion" "leaves the key pending deletion"
out=$(at +8d run-scheduler --once)
assert_eq "$(json_get 'Deletions[0].KeyId' <<<"$out")" "$DC" "the next run finishes the deletion"

# ---- the audit trail: service events -------------------------------------------------------------
ev=$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=RotateKey \
    --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p)
assert_eq "$(json_get eventType <<<"$ev")" "AwsServiceEvent" "a scheduled rotation is an AwsServiceEvent"
# AWS KMS Developer Guide, CloudTrail "RotateKey": the account's, invoked by "AWS Internal", from
# "AWS Internal", no requestID.
assert_eq "$(json_get userIdentity.type <<<"$ev")" "<missing>" "no userIdentity.type, as AWS"
assert_eq "$(json_get userIdentity.invokedBy <<<"$ev")" "AWS Internal" "invoked by AWS Internal"
assert_match "$(json_get userIdentity.accountId <<<"$ev")" '^[0-9]{12}$' "the account's"
assert_eq "$(json_get sourceIPAddress <<<"$ev")" "AWS Internal" "sourceIPAddress AWS Internal"
assert_eq "$(json_get userAgent <<<"$ev")" "AWS Internal" "userAgent AWS Internal"
assert_eq "$(json_get requestID <<<"$ev")" "<missing>" "a service event has no requestID"
assert_eq "$(json_get eventVersion <<<"$ev")" "1.11" "eventVersion 1.11"
assert_eq "$(json_get 'resources[0].type' <<<"$ev")" "AWS::KMS::Key" "naming the key"
assert_eq "$(json_get serviceEventDetails.rotationType <<<"$ev")" "AUTOMATIC" \
    "and what was done, in serviceEventDetails as CloudTrail's"
assert_eq "$(json_get serviceEventDetails.keyOrigin <<<"$ev")" "AWS_KMS" "with the key's origin"
rk=$(json_get serviceEventDetails.keyId <<<"$ev")
assert_match "$(json_get 'resources[0].ARN' <<<"$ev")" ":key/$rk\$" "serviceEventDetails.keyId: the key"
prev=$(json_get serviceEventDetails.previousKeyMaterialId <<<"$ev")
cur=$(json_get serviceEventDetails.currentKeyMaterialId <<<"$ev")
assert_match "$prev" '^[0-9a-f]{64}$' "previousKeyMaterialId: 64 hex digits"
assert_match "$cur" '^[0-9a-f]{64}$' "currentKeyMaterialId: 64 hex digits"
[ "$prev" != "$cur" ] && ok "previous and current key material ids differ" ||
    fail "previousKeyMaterialId = currentKeyMaterialId ($cur)"
# An on-demand rotation is recorded twice, as in AWS: the caller's RotateKeyOnDemand call, then
# the service's RotateKey event of the new material, one per rotation.
"$PY" - "$OD" <<PY >"$TMP/od-events"
import json, subprocess, sys
out = subprocess.run(["$KMSCTL", "--home", "$HOME_DIR", "lookup-events", "--lookup-attributes",
                      "AttributeKey=ResourceName,AttributeValue=" + sys.argv[1],
                      "--max-items", "50"], check=True, capture_output=True, text=True).stdout
import hashlib
def version_of(arn, material_id):
    # audit_trail.c "Key material ids": SHA-256 of the key ARN and the material version.
    for v in range(1, 64):
        text = "kms-key-material-id:v1\n%s\n%d" % (arn, v)
        if hashlib.sha256(text.encode()).hexdigest() == material_id:
            return v
    return "?"
for e in reversed(json.loads(out)["Events"]):
    r = json.loads(e["CloudTrailEvent"])
    if r["eventName"] in ("RotateKeyOnDemand", "RotateKey"):
        d = r.get("serviceEventDetails") or {}
        cur = "-"
        if "currentKeyMaterialId" in d:
            cur = version_of(r["resources"][0]["ARN"], d["currentKeyMaterialId"])
        print(r["eventName"], r["eventType"], r.get("errorCode", "-"), d.get("rotationType", "-"),
              cur)
PY
expected=""
for v in 2 3 4 5 6 7 8 9 10 11; do
    expected+="RotateKeyOnDemand AwsApiCall - - -"$'\n'"RotateKey AwsServiceEvent - ON_DEMAND $v"$'\n'
done
expected+="RotateKeyOnDemand AwsApiCall LimitExceededException - -"$'\n'
expected+="RotateKeyOnDemand AwsApiCall LimitExceededException - -"
assert_eq "$(cat "$TMP/od-events")" "$expected" \
    "each on-demand rotation: the call's record, then a RotateKey service event (ON_DEMAND)"
n=$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=DeleteKey |
    count Events)
assert_eq "$n" "2" "two DeleteKey service events"
ev=$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=DeleteKey \
    --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p)
dk=$(json_get serviceEventDetails.keyId <<<"$ev")
assert_match "$(json_get 'resources[0].ARN' <<<"$ev")" ":key/$dk\$" \
    "DeleteKey: serviceEventDetails.keyId names the key, as AWS"
assert_eq "$(json_get eventType <<<"$ev")/$(json_get userIdentity.invokedBy <<<"$ev")/$(json_get requestID <<<"$ev")" \
    "AwsServiceEvent/AWS Internal/<missing>" "DeleteKey: a service event of AWS Internal, no requestID"

# Authorised as the service: no credentials are needed (or used).
SCHED=$(create_key SYMMETRIC_DEFAULT)
kms enable-key-rotation --key-id "$SCHED"
mv "$HOME_DIR/credentials" "$TMP/credentials.aside"
out=$(at +6000d run-scheduler --once)
mv "$TMP/credentials.aside" "$HOME_DIR/credentials"
assert_eq "$("$PY" -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin)["Rotations"] if r["KeyId"] == sys.argv[1]))' "$SCHED" <<<"$out")" \
    "1" "the scheduler runs without any user's credentials"

# ---- usage-based rotation (a small limit in a home of its own) ------------------------------------
U="$TMP/usage-home"
init_home "$U"
"$PY" - "$U/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["rotation_usage_limit"] = 5
json.dump(c, open(sys.argv[1], "w"))
PY
UK=$(kms_at "$U" create-key --output text --query KeyMetadata.KeyId)
for _ in 1 2 3 4; do kms_at "$U" kms-encrypt --key-id "$UK" --plaintext aGk= >/dev/null; done
out=$(kms_at "$U" run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "0" "four encryptions: below the limit of five"
kms_at "$U" generate-data-key --key-id "$UK" --key-spec AES_256 >/dev/null
out=$(kms_at "$U" run-scheduler --once)
assert_eq "$(json_get 'Rotations[0].Reason' <<<"$out")" "USAGE" "the fifth use makes it due by usage"
assert_eq "$(json_get 'Rotations[0].Version' <<<"$out")" "2" "version 2"
out=$(kms_at "$U" run-scheduler --once)
assert_eq "$(count Rotations <<<"$out")" "0" "the new version starts counting from zero"
"$PY" - "$U/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["rotation_usage_limit"] = 0
json.dump(c, open(sys.argv[1], "w"))
PY
expect_error KMSHomeException 254 kms_at "$U" run-scheduler --once
assert_contains "$ERR_MSG" "rotation_usage_limit" "a bad limit in config.json is named"
"$PY" - "$U/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
del c["rotation_usage_limit"]
json.dump(c, open(sys.argv[1], "w"))
PY

# The hard stop: a version that encrypted 2^32 times (AES-GCM's bound for random IVs) refuses.
HS=$(kms_at "$U" create-key --output text --query KeyMetadata.KeyId)
"$PY" - "$U/kms.db" "$HS" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE key_versions SET encryptions = ? WHERE key_id = ?", (2**32 - 1, sys.argv[2]))
db.commit()
PY
kms_at "$U" kms-encrypt --key-id "$HS" --plaintext aGk= >/dev/null && ok "encryption 2^32 is allowed"
expect_error KMSInvalidStateException 254 kms_at "$U" kms-encrypt --key-id "$HS" --plaintext aGk=
assert_contains "$ERR_MSG" "2^32" "encryption 2^32 + 1 is refused, saying why"
assert_contains "$ERR_MSG" "rotate-key-on-demand" "and what to do"
kms_at "$U" rotate-key-on-demand --key-id "$HS" >/dev/null
kms_at "$U" kms-encrypt --key-id "$HS" --plaintext aGk= >/dev/null && ok "after a rotation it encrypts again"

# ---- the foreground scheduler stops cleanly on SIGTERM ---------------------------------------------
"$KMSCTL" --home "$HOME_DIR" run-scheduler --interval 3600 >"$TMP/fg.out" 2>"$TMP/fg.err" &
pid=$!
for _ in $(seq 1 300); do
    grep -q NextDueDate "$TMP/fg.out" 2>/dev/null && break
    sleep 0.1
done
grep -q NextDueDate "$TMP/fg.out" && ok "the foreground scheduler ran once at start"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
assert_eq "$rc" "0" "and exits 0 on SIGTERM"
assert_contains "$(cat "$TMP/fg.err")" "stopped by SIGTERM" "saying why it stopped"

# ---- the trail still validates -------------------------------------------------------------------
assert_eq "$(kms validate-logs --query Valid 2>/dev/null)" "true" "validate-logs: the trail is valid"
