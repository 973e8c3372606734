#!/usr/bin/env bash
# Issue 15, item 1, after the second review: tampering that the first forgery tests did not try
# (the reviews' reproductions, each on a home of its own). Each asserts the secure behaviour:
# planted lines are never kept, signed or listed, and a trail that cannot be repaired is refused.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# planted_not_kept: after a command, the writer has refused the open segment or moved the planted
# record $EID aside (to torn/), and lookup-events lists no event of that id.
planted_not_kept() {
    local seg rc=0 kept n
    seg=$(ls "$AUDIT"/segments/*.jsonl | tail -1)
    kms lookup-events --lookup-attributes "AttributeKey=EventId,AttributeValue=$EID" \
        --query Events >"$TMP/ev.json" 2>"$TMP/ev.err" || rc=$?
    kept=$(tr -d '\0' <"$seg" | grep -c -F "\"eventID\":\"$EID\"" || true)
    if [ "$rc" -ne 0 ] || { [ "$kept" = 0 ] && [ -n "$(ls "$AUDIT/torn" 2>/dev/null)" ]; }; then
        ok "the writer refuses the tampered segment or moves the planted lines aside (rc $rc)"
    else
        fail "the writer kept the planted record in the open segment, unrecorded, and went on writing"
    fi
    n=$("$PY" -c 'import json,sys
try: print(len(json.load(open(sys.argv[1]))))
except Exception: print(0)' "$TMP/ev.json")
    assert_eq "$n" "0" "lookup-events does not list the planted record (rc $rc)"
}

# ---- A copy of the anchored record appended after planted lines -----------------------------
# Planted lines, then a copy of the anchored (acknowledged) line: the copy verifies but does not
# link, so the writer moves everything after its chain aside; lookup-events lists none of it.
HOME_DIR="$TMP/case1"
AUDIT="$HOME_DIR/audit"
init_home
KEY=$(kms create-key --description victim --query KeyMetadata.KeyId --output text)
kms list-keys >/dev/null # closes: the HSM anchor names the last record
ACCOUNT=$(json_get account_id <"$HOME_DIR/config.json")
EID=33333333-3333-4333-8333-333333333333
"$PY" - "$AUDIT" "$ACCOUNT" "$KEY" "$EID" <<'PY'
import glob, os, sys
sys.path.insert(0, os.environ["KMS_SOURCE_DIR"] + "/tests/integration")
from forge import lines, planted, record, records, stopper
audit, account, key, eid = sys.argv[1:]
seg = sorted(glob.glob(audit + "/segments/*.jsonl"))[-1]
data = records(seg)
last = lines(data)[-1]  # the anchored, acknowledged record
forged = planted(account, key, eid, last, "ScheduleKeyDeletion")
open(seg, "wb").write(data + forged + b"\n" + stopper(forged) + b"\n" + last + b"\n")
PY
planted_not_kept

# ---- Lines planted before the anchored record -----------------------------------------------
# Lines planted before the anchored record: the chain to the anchored record breaks, so the
# writer refuses the trail (it cannot cut them out of the middle) and nothing is listed.
HOME_DIR="$TMP/case2"
AUDIT="$HOME_DIR/audit"
init_home
KEY=$(kms create-key --description victim --query KeyMetadata.KeyId --output text)
kms list-keys >/dev/null # closes: the HSM anchor names the last record
ACCOUNT=$(json_get account_id <"$HOME_DIR/config.json")
EID=33333333-3333-4333-8333-333333333333
"$PY" - "$AUDIT" "$ACCOUNT" "$KEY" "$EID" <<'PY'
import glob, os, sys
sys.path.insert(0, os.environ["KMS_SOURCE_DIR"] + "/tests/integration")
from forge import lines, planted, record, records, stopper
audit, account, key, eid = sys.argv[1:]
seg = sorted(glob.glob(audit + "/segments/*.jsonl"))[-1]
ls = lines(records(seg))
k = 2  # plant after the 2nd record, far before the anchored one
forged = planted(account, key, eid, ls[k - 1], "ScheduleKeyDeletion")
open(seg, "wb").write(b"\n".join(ls[:k] + [forged, stopper(forged)] + ls[k:]) + b"\n")
PY
planted_not_kept

# ---- The index built while planted lines are there (the advisor) ----------------------------
# The advisor reads the trail (and builds the index) while planted lines are still there, before
# any writer ran: nothing unacknowledged is indexed, reported or listed, then or later.
HOME_DIR="$TMP/case3"
AUDIT="$HOME_DIR/audit"
init_home
KEY=$(kms create-key --description victim --query KeyMetadata.KeyId --output text)
kms list-keys >/dev/null
kms disable-key --key-id "$KEY" >/dev/null
ACCOUNT=$(json_get account_id <"$HOME_DIR/config.json")
EID=22222222-2222-4222-8222-222222222222
"$PY" - "$AUDIT" "$ACCOUNT" "$KEY" "$EID" <<'PY'
import glob, os, sys
sys.path.insert(0, os.environ["KMS_SOURCE_DIR"] + "/tests/integration")
from forge import lines, planted, record, records, stopper
audit, account, key, eid = sys.argv[1:]
seg = sorted(glob.glob(audit + "/segments/*.jsonl"))[-1]
data = records(seg)
acked = [l for l in lines(data) if b'"ack":"' in l][0]  # any acknowledged line: its ack verifies
forged = planted(account, key, eid, lines(data)[-1], "Encrypt", errorCode="DisabledException")
# links to the forged record, but is no record a scanner accepts
open(seg, "wb").write(data + forged + b"\n" + stopper(forged) + b"\n" + acked + b"\n")
PY
# The advisor reads the index without opening the writer (no repair runs first).
kms advisor >"$TMP/adv.json" 2>/dev/null || true
assert_eq "$(grep -c Key.DisabledInUse "$TMP/adv.json" || true)" "0" \
    "the advisor does not report Key.DisabledInUse from the unacknowledged record"
assert_eq "$("$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from events where event_id=?",(sys.argv[2],)).fetchone()[0])' "$HOME_DIR/audit-index.db" "$EID")" "0" \
    "the index holds no row for the unacknowledged record"
rc=0
kms lookup-events --lookup-attributes "AttributeKey=EventId,AttributeValue=$EID" \
    --query Events >"$TMP/ev.json" 2>"$TMP/ev.err" || rc=$?
n=$("$PY" -c 'import json,sys
try: print(len(json.load(open(sys.argv[1]))))
except Exception: print(0)' "$TMP/ev.json")
assert_eq "$n" "0" "lookup-events (after the writer moved the lines aside) does not list the record (rc $rc: $(head -c 300 "$TMP/ev.err"))"
rc=0
kms usage-report >"$TMP/ur.json" 2>/dev/null || rc=$?
assert_eq "$(grep -c mallory "$TMP/ur.json" || true)" "0" "usage-report does not count mallory (rc $rc)"

# ---- Lines appended to an indexed sealed segment --------------------------------------------
# Lines appended to a sealed segment the index already covers, linked to its last record:
# no ack pins them and segments follow, so lookups are refused rather than listing them.
HOME_DIR="$TMP/case4"
AUDIT="$HOME_DIR/audit"
init_home
KEY=$(kms create-key --description victim --query KeyMetadata.KeyId --output text)
kms seal-audit-log >/dev/null
kms list-keys >/dev/null
kms lookup-events --max-items 1 >/dev/null # the index is caught up
kms list-keys >/dev/null
kms list-keys >/dev/null # the anchor moves past the numbers planted below
SEALED=$(ls "$AUDIT"/segments/*.jsonl | head -1)
ACCOUNT=$(json_get account_id <"$HOME_DIR/config.json")
EID=66666666-6666-4666-8666-666666666666
# The chain state the index stopped at (an attacker can equally compute it from the trail).
read -r L H < <("$PY" -c 'import sqlite3,sys
print(*sqlite3.connect(sys.argv[1]).execute("select last_sequence,last_hash from progress order by segment desc limit 1").fetchone())' "$HOME_DIR/audit-index.db")
chmod 600 "$SEALED"
"$PY" - "$SEALED" "$L" "$H" "$ACCOUNT" "$KEY" "$EID" <<'PY'
import glob, os, sys
sys.path.insert(0, os.environ["KMS_SOURCE_DIR"] + "/tests/integration")
from forge import lines, planted, record, records, stopper
seg, l, h, account, key, eid = sys.argv[1:]
forged = record(account, key, eid, int(l) + 1, h, "PutKeyPolicy")
open(seg, "ab").write(forged + b"\n" + stopper(forged) + b"\n")
PY
chmod 400 "$SEALED"
rc=0
kms lookup-events --lookup-attributes "AttributeKey=EventId,AttributeValue=$EID" \
    --query Events >"$TMP/ev.json" 2>"$TMP/ev.err" || rc=$?
n=$("$PY" -c 'import json,sys
try: print(len(json.load(open(sys.argv[1]))))
except Exception: print(0)' "$TMP/ev.json")
assert_eq "$n" "0" "lookup-events does not list a record appended to a sealed segment (rc $rc)"

# ---- An unsigned digest below the anchored record -------------------------------------------
# A forged digest (not signed by the HSM key) covering a planted record, below the anchored
# record: the writer refuses the trail, and no signed digest ever chains to the forgery.
HOME_DIR="$TMP/case5"
AUDIT="$HOME_DIR/audit"
init_home
KEY=$(kms create-key --description victim --query KeyMetadata.KeyId --output text)
kms list-keys >/dev/null
kms list-keys >/dev/null
ACCOUNT=$(json_get account_id <"$HOME_DIR/config.json")
M=$("$PY" - "$AUDIT" "$ACCOUNT" <<'PY'
import glob, hashlib, json, os, sys
audit, account = sys.argv[1:]
seg = sorted(glob.glob(audit + "/segments/*.jsonl"))[-1]
d = open(seg, "rb").read(); e = d.find(b"\0"); d = d if e < 0 else d[:e]
lines = d.rstrip(b"\n").split(b"\n")
m = len(lines) - 2                      # forged digest covers records 1..m; m+1..n stay "open"
rec_m = lines[m - 1]
seq_m = json.loads(rec_m)["auditChain"]["sequence"]
planted = json.dumps({"eventVersion": "1.08", "eventTime": "2026-12-01T00:00:00Z",
    "eventSource": "kms.amazonaws.com", "eventName": "DisableKeyRotation",
    "userIdentity": {"type": "IAMUser", "userName": "mallory"}, "eventID": "planted",
    "auditChain": {"sequence": seq_m + 1, "previousHash": hashlib.sha256(rec_m).hexdigest()}},
    separators=(",", ":")).encode()
sealed = b"\n".join(lines[:m]) + b"\n" + planted + b"\n"
dg = {"awsAccountId": account, "digestStartTime": "2026-12-01T00:00:00Z",
      "digestEndTime": "2026-12-01T00:00:01Z",
      "digestFile": "digests/%020d.json" % seq_m, "lastSequence": seq_m, "firstSequence": 1,
      "lastRecordHash": hashlib.sha256(rec_m).hexdigest(),
      "logFiles": [{"file": os.path.relpath(seg, audit),
                    "hashValue": hashlib.sha256(sealed).hexdigest()}]}
open(audit + "/digests/%020d.json" % seq_m, "w").write(json.dumps(dg))
open(audit + "/digests/%020d.json.sig" % seq_m, "wb").write(b"0" * 70)   # not a signature
open(audit + "/segments/%020d.jsonl" % (seq_m + 1), "wb").write(b"\n".join(lines[m:]) + b"\n")
os.chmod(audit + "/segments/%020d.jsonl" % (seq_m + 1), 0o600)
open(seg, "wb").write(sealed)
os.chmod(seg, 0o400)
print(seq_m)
PY
)
FORGED=$(printf 'digests/%020d.json' "$M")
rc=0
kms list-keys >/dev/null 2>"$TMP/err" || rc=$?
assert_ne "$rc" "0" "the writer refuses a trail whose newest digest is not signed by the HSM key"
kms seal-audit-log >/dev/null 2>&1 || true
NEWEST=$(ls "$AUDIT"/digests/*.json | tail -1)
assert_ne "$(json_get previousDigestFile <"$NEWEST")" "$FORGED" \
    "no HSM-signed digest chains to the forged $FORGED"
