#!/usr/bin/env bash
# Issue 15, items 1 and 13: records this product did not write are never signed, listed or taken
# as its own, and commands leave the open segment open.
#  - Someone who can write HOME/audit but has no PIN plants records chained correctly to the last
#    one: in a new segment after the last sealed one (the issue's attack), or appended to the
#    open segment. The next writer moves them to torn/, records AuditLogRepaired (reason
#    "unacknowledged"), and neither its digest nor lookup-events holds them; validate-logs
#    reports them before that writer runs.
#  - A record of the open segment changed in place: sealing refuses to sign it.
#  - A thousand commands leave one segment and no digest; the scheduler seals once the period has
#    passed, and only then.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AUDIT="$HOME_DIR/audit"
init_home
KEY=$(kms create-key --description victim --query KeyMetadata.KeyId --output text)
kms list-keys >/dev/null

# forge FILE ACCOUNT KEY EVENTID: appends to FILE (created if need be) a DeleteKey record by
# another user, chained to the last record of the trail (the chain is public: SHA-256 of the
# previous line).
forge() {
    "$PY" - "$AUDIT" "$1" "$2" "$3" "$4" <<'PY'
import glob, os, sys
sys.path.insert(0, os.environ["KMS_SOURCE_DIR"] + "/tests/integration")
from forge import lines, planted, records, sequence
audit, target, account, key, eid = sys.argv[1:]
last = None
for seg in sorted(glob.glob(audit + "/segments/*.jsonl")):
    last = (lines(records(seg)) or [last])[-1]
line = planted(account, key, eid, last) + b"\n"
data = records(target) if os.path.exists(target) else b""
open(target, "wb").write(data + line)
os.chmod(target, 0o600)
print(sequence(line))
PY
}
ACCOUNT=$(json_get account_id <"$HOME_DIR/config.json")
# unacked_problems: the validate-logs problems of kind "unacknowledged"
unacked_problems() { "$PY" -c 'import json,sys; print(len([p for p in json.load(sys.stdin)["Problems"] if p["Kind"]=="unacknowledged"]))'; }
lists_forged() {
    kms lookup-events --lookup-attributes "AttributeKey=EventId,AttributeValue=$1" --query Events |
        "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

# ---- attack 1: a new segment after the last sealed one ------------------------------------------
kms seal-audit-log >/dev/null
NEXT=$(( $(json_get lastSequence <"$(ls "$AUDIT"/digests/*.json | tail -1)") + 1 ))
SEG=$(printf '%s/segments/%020d.jsonl' "$AUDIT" "$NEXT")
rm -f "$SEG" # an empty open segment a later process made, if any
EID1=11111111-1111-4111-8111-111111111111
SEQ1=$(forge "$SEG" "$ACCOUNT" "$KEY" "$EID1")
rc=0
kms validate-logs >"$TMP/v.json" || rc=$?
assert_eq "$rc:$(unacked_problems <"$TMP/v.json")" "254:1" \
    "validate-logs reports the planted record as unacknowledged before any writer runs"
kms describe-key --key-id "$KEY" >/dev/null # an ordinary call: the writer takes over the segment
assert_eq "$(lists_forged "$EID1")" "0" "lookup-events does not list the planted DeleteKey"
kms seal-audit-log >/dev/null
DG=$(ls "$AUDIT"/digests/*.json | tail -1)
if grep -q -F "\"eventID\":\"$EID1\"" "$AUDIT/$(json_get 'logFiles[0].file' <"$DG")"; then
    fail "the planted record was signed in $(json_get 'logFiles[0].file' <"$DG")"
else
    ok "the digest the next seal wrote does not cover the planted record"
fi
grep -l -F "$EID1" "$AUDIT"/torn/* >/dev/null 2>&1 && ok "the planted bytes are kept in torn/" ||
    fail "the planted record is not in torn/: $(ls "$AUDIT/torn" 2>&1)"
REPAIR=$(kms lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=AuditLogRepaired \
    --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p)
assert_eq "$(json_get serviceEventDetails.reason <<<"$REPAIR")" "unacknowledged" \
    "an AuditLogRepaired record says the bytes were not acknowledged"
assert_eq "$(json_get auditChain.sequence <<<"$REPAIR")" "$SEQ1" \
    "the repair record takes the sequence the planted record claimed"
kms validate-logs >"$TMP/v.json" && ok "the trail validates after the repair" ||
    fail "validate-logs after the repair: $(head -c 800 "$TMP/v.json")"

# ---- attack 2: records appended to the open segment ---------------------------------------------
kms list-keys >/dev/null
OPEN=$(ls "$AUDIT"/segments/*.jsonl | tail -1)
EID2=22222222-2222-4222-8222-222222222222
forge "$OPEN" "$ACCOUNT" "$KEY" "$EID2" >/dev/null
rc=0
kms validate-logs >"$TMP/v.json" || rc=$?
assert_eq "$rc:$(unacked_problems <"$TMP/v.json")" "254:1" "validate-logs reports the appended record"
assert_eq "$(lists_forged "$EID2")" "0" "lookup-events does not list the appended DeleteKey"
kms seal-audit-log >/dev/null
DG=$(ls "$AUDIT"/digests/*.json | tail -1)
if grep -q -F "\"eventID\":\"$EID2\"" "$AUDIT/$(json_get 'logFiles[0].file' <"$DG")"; then
    fail "the appended record was signed"
else
    ok "the appended record is not in the sealed segment"
fi
kms validate-logs >"$TMP/v.json" && ok "the trail validates" || fail "$(head -c 800 "$TMP/v.json")"

# ---- a record of the open segment changed in place: never signed -------------------------------
kms list-keys >/dev/null
kms list-keys >/dev/null
OPEN=$(ls "$AUDIT"/segments/*.jsonl | tail -1)
cp "$OPEN" "$TMP/open.orig"
"$PY" - "$OPEN" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
i = b.index(b'"eventName":"') + 14; b[i] ^= 0x01
open(p, "wb").write(bytes(b))
PY
expect_error KMSAuditLogException 254 kms seal-audit-log
assert_contains "$ERR_MSG" "validate-logs" "a segment whose records were changed is refused, not signed"
[ ! -e "$AUDIT/digests/$(basename "$OPEN" .jsonl).json" ] && assert_eq "$(stat -c %a "$OPEN")" "600" \
    "no digest was written and the segment stays open"
cp "$TMP/open.orig" "$OPEN"
kms seal-audit-log >/dev/null && ok "restored, it seals" || fail "the restored segment does not seal"

# ---- the review's attacks, each on a home of its own ---------------------------------------------
# last_segment DIR: the newest segment of DIR's trail
last_segment() { ls "$1"/audit/segments/*.jsonl | tail -1; }
# A record rewritten and the lines after it re-chained, the acknowledged last line kept: the
# chain breaks at that line, so lookups refuse the trail instead of listing the forgery, and
# validate-logs names the record.
H2="$TMP/h2"
init_home "$H2"
for _ in 1 2 3 4; do kms_at "$H2" list-keys >/dev/null; done
"$PY" - "$(last_segment "$H2")" <<'PY'
import hashlib, sys
seg = sys.argv[1]
data = open(seg, "rb").read()
data = data[:data.find(b"\0")] if b"\0" in data else data
lines = data.split(b"\n")[:-1]
j = max(i for i, l in enumerate(lines[:-2]) if b'"eventName":"ListKeys"' in l)
lines[j] = lines[j].replace(b'"eventName":"ListKeys"', b'"eventName":"DeleteKey"')
for i in range(j + 1, len(lines) - 1):  # re-chain up to the last (acknowledged) line
    h = hashlib.sha256(lines[i - 1]).hexdigest().encode()
    k = lines[i].rindex(b'"previousHash":"') + len(b'"previousHash":"')
    lines[i] = lines[i][:k] + h + lines[i][k + 64:]
open(seg, "wb").write(b"\n".join(lines) + b"\n")
PY
expect_error KMSAuditLogException 254 kms_at "$H2" lookup-events --lookup-attributes \
    AttributeKey=EventName,AttributeValue=DeleteKey
assert_contains "$ERR_MSG" "validate-logs" "lookups refuse a chain rewritten before its acknowledged line"
rc=0
kms_at "$H2" validate-logs >"$TMP/v.json" || rc=$?
assert_eq "$rc:$(json_get Valid <"$TMP/v.json")" "254:false" "validate-logs reports the rewritten record"
expect_error KMSAuditLogException 254 kms_at "$H2" seal-audit-log
assert_contains "$ERR_MSG" "validate-logs" "and sealing refuses to sign it"
[ ! -e "$AUDIT/index.db" ] && [ -f "$HOME_DIR/audit-index.db" ] &&
    ok "the lookup index lives outside HOME/audit (HOME/audit-index.db)" ||
    fail "index: $(ls "$HOME_DIR" "$AUDIT")"

# The open segment deleted: the anchor says records were written to it, so the writer refuses
# instead of numbering new records in their place.
H3="$TMP/h3"
init_home "$H3"
kms_at "$H3" seal-audit-log >/dev/null
kms_at "$H3" create-key --description gone >/dev/null
rm -f "$(last_segment "$H3")"
expect_error KMSAuditLogException 254 kms_at "$H3" list-keys
assert_contains "$ERR_MSG" "is missing, but the HSM anchor says" "a deleted open segment is refused"

# torn/ replaced by a symlink: the planted bytes are kept nowhere else; the writer refuses.
H4="$TMP/h4"
init_home "$H4"
kms_at "$H4" list-keys >/dev/null
mkdir "$TMP/elsewhere"
rm -rf "$H4/audit/torn"
ln -s "$TMP/elsewhere" "$H4/audit/torn"
printf '#!/bin/sh\necho planted\n' >>"$(last_segment "$H4")"
rc=0
kms_at "$H4" list-keys >/dev/null 2>"$TMP/e" || rc=$?
assert_eq "$rc:$(ls "$TMP/elsewhere" | wc -l)" "254:0" "torn/ as a symlink: refused, nothing written through it"

# A copy of record 1 appended after the acknowledged one: moved aside, not a refusal.
H5="$TMP/h5"
init_home "$H5"
kms_at "$H5" list-keys >/dev/null
"$PY" - "$(last_segment "$H5")" <<'PY'
import sys
seg = sys.argv[1]
data = open(seg, "rb").read()
data = data[:data.find(b"\0")] if b"\0" in data else data
open(seg, "wb").write(data + data.split(b"\n")[0] + b"\n")
PY
kms_at "$H5" list-keys >/dev/null && ok "a planted copy of record 1 is moved aside" ||
    fail "a planted copy of record 1 stops the trail"
kms_at "$H5" validate-logs >/dev/null && ok "and the trail validates" || fail "the trail does not validate"
# A copy of the anchored (last acknowledged) line itself, which verifies: moved aside too.
"$PY" - "$(last_segment "$H5")" <<'PY'
import sys
seg = sys.argv[1]
data = open(seg, "rb").read()
data = data[:data.find(b"\0")] if b"\0" in data else data
open(seg, "wb").write(data + data.split(b"\n")[-2] + b"\n")
PY
kms_at "$H5" list-keys >/dev/null && ok "a planted copy of the anchored line is moved aside" ||
    fail "a planted copy of the anchored line stops the trail"
kms_at "$H5" validate-logs >/dev/null && ok "and the trail validates" || fail "the trail does not validate"
assert_eq "$(ls "$H5/audit/torn" | wc -l)" "2" "both copies are kept in torn/"

# ---- item 13: commands leave the segment open; the period and the scheduler seal ----------------
N0=$(ls "$AUDIT"/digests/*.json | wc -l)
S0=$(ls "$AUDIT"/segments/*.jsonl | wc -l)
for i in $(seq 1 60); do kms describe-key --key-id "$KEY" >/dev/null; done
assert_eq "$(ls "$AUDIT"/digests/*.json | wc -l):$(ls "$AUDIT"/segments/*.jsonl | wc -l)" "$N0:$((S0 + 1))" \
    "60 commands write no digest and one segment"
kms validate-logs >"$TMP/v.json"
assert_eq "$(json_get UnsignedTail.Records <"$TMP/v.json")" "60" "validate-logs counts the 60 unsigned records"
kms run-scheduler --once >"$TMP/sched.json"
assert_eq "$(json_get AuditLogSealed <"$TMP/sched.json")" "false" "the scheduler does not seal before the period"
if command -v faketime >/dev/null; then
    env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        faketime -f '+2h' "$KMSCTL" --home "$HOME_DIR" run-scheduler --once >"$TMP/sched.json"
    assert_eq "$(json_get AuditLogSealed <"$TMP/sched.json")" "true" "the scheduler seals once the period has passed"
    assert_eq "$(ls "$AUDIT"/digests/*.json | wc -l)" "$((N0 + 1))" "one digest for the 60 commands"
    kms validate-logs >"$TMP/v.json" && ok "the trail validates" || fail "$(head -c 800 "$TMP/v.json")"
    assert_eq "$(json_get UnsignedTail.Records <"$TMP/v.json")" "0" "nothing unsigned after the scheduler's seal"
fi
