#!/usr/bin/env bash
# kmsctl advisor (issue 15): a fresh home has no findings and exits 0; a deliberately weak home
# makes every check fire (exit 1), and running the Fix each finding prints clears it; the text
# output, --help, and a run that changes nothing in the home. Time moved by libfaketime.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v faketime >/dev/null || { fail "faketime (libfaketime) is not installed"; exit 1; }
FT_ENV="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
FT_LIB=$(find /usr/lib -path '*faketime/libfaketimeMT.so.1' -print -quit)
[ -n "$FT_LIB" ] || { fail "libfaketimeMT.so.1 not found"; exit 1; }

# The Fix commands say `kmsctl ...`: eval them with this kmsctl on this home.
kmsctl() { "$KMSCTL" --home "$HOME_DIR" "$@"; }

# advise [OFFSET]: the advisor's JSON in $TMP/adv.json, its exit status in $ADV_RC.
ADV_RC=0
advise() {
    ADV_RC=0
    if [ -n "${1:-}" ]; then
        env "$FT_ENV" LD_PRELOAD="$FT_LIB" FAKETIME="$1" FAKETIME_DONT_RESET=1 \
            "$KMSCTL" --home "$HOME_DIR" advisor >"$TMP/adv.json" 2>"$TMP/last.err" || ADV_RC=$?
    else
        kms advisor >"$TMP/adv.json" 2>"$TMP/last.err" || ADV_RC=$?
    fi
}
# checks: the Check names found, sorted and unique, one line.
checks() { "$PY" -c 'import json,sys; print(" ".join(sorted({f["Check"] for f in json.load(open(sys.argv[1]))["Findings"]})))' "$TMP/adv.json"; }
# findings_tsv: Check TAB Resource TAB Fix, one finding a line.
findings_tsv() {
    "$PY" -c '
import json, sys
for f in json.load(open(sys.argv[1]))["Findings"]:
    print("\t".join([f["Check"], f["Resource"], f["Fix"]]))' "$TMP/adv.json"
}
# has_finding CHECK RESOURCE: the last report lists that finding.
has_finding() { findings_tsv | cut -f1,2 | grep -qxF "$1	$2"; }

# ---- 1. a fresh home ---------------------------------------------------------------------------
init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
advise
assert_eq "$ADV_RC" 0 "a fresh home: the advisor exits 0"
assert_eq "$(json_get Summary.Gating <"$TMP/adv.json")" 0 "a fresh home: no finding at warning or above"
assert_eq "$(json_get Findings <"$TMP/adv.json")" "[]" "a fresh home: no finding at all"
assert_eq "$(json_get Summary.Complete <"$TMP/adv.json")" true "a fresh home: every check ran"

# ---- 3. --help, text output ------------------------------------------------------------------
help=$(kms advisor --help)
assert_contains "$help" "kmsctl advisor --output text" "advisor --help shows an example"
assert_contains "$help" "Key.PolicyPublic" "advisor --help lists the checks"
assert_contains "$("$KMSCTL" --help)" "  advisor " "kmsctl --help lists the advisor under its own heading"

# ---- 2. a deliberately weak home -------------------------------------------------------------
ROOT_PW='Root-Passw0rd!xyz'
W="$TMP/weak"
mkdir -p "$W"
# Root: a password (init --root-password-file), no MFA, an access key, used today.
rm -rf "$HOME_DIR"
printf '%s' "$ROOT_PW" >"$W/root.pw"
init_home "$HOME_DIR" --root-password-file "$W/root.pw"
KMS_PASSWORD="$ROOT_PW" kms sign-in --save-profile root >/dev/null
ROOT_AK=$(kms --profile root create-access-key --output text --query AccessKey.AccessKeyId)
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
ROOT_ARN="arn:aws:iam::$ACCOUNT:root"
U="arn:aws:iam::$ACCOUNT:user"
# Users: carol signs in without MFA; dave has AdministratorAccess and an inline policy of his
# own; frank has two active keys; the Ops group has AdministratorAccess too.
printf 'Carol-Passw0rd!xyz' >"$W/carol.pw"
for u in carol dave frank erin; do kms create-user --user-name "$u" >/dev/null; done
kms create-login-profile --user-name carol --password "file://$W/carol.pw" >/dev/null
kms attach-user-policy --user-name dave --policy-arn arn:aws:iam::aws:policy/AdministratorAccess
printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Describe*","Resource":"*"}]}' >"$W/describe.json"
kms put-user-policy --user-name dave --policy-name describe --policy-document "file://$W/describe.json"
kms create-access-key --user-name frank >/dev/null
kms create-access-key --user-name frank >/dev/null
kms create-group --group-name Ops >/dev/null
kms attach-group-policy --group-name Ops --policy-arn arn:aws:iam::aws:policy/AdministratorAccess
# A password policy weaker than init's.
kms update-account-password-policy --minimum-password-length 8
# Keys: one without rotation; one whose policy lets everyone in; a grant to erin, then erin
# deleted; one scheduled for deletion with an alias and still called; one disabled and still
# called.
K_PLAIN=$(create_key SYMMETRIC_DEFAULT)
K_OPEN=$(create_key SYMMETRIC_DEFAULT)
kms enable-key-rotation --key-id "$K_OPEN"
printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}' >"$W/open.json"
kms put-key-policy --key-id "$K_OPEN" --policy-name default --policy "file://$W/open.json"
K_GRANT=$(create_key SYMMETRIC_DEFAULT)
kms enable-key-rotation --key-id "$K_GRANT"
GRANT_ID=$(kms create-grant --key-id "$K_GRANT" --grantee-principal "$U/erin" --operations Decrypt \
    --output text --query GrantId)
kms delete-user --user-name erin
GHOST_GRANT=$(kms create-grant --key-id "$K_GRANT" --grantee-principal "$U/ghost" --operations Decrypt \
    --output text --query GrantId)
K_DOOMED=$(create_key SYMMETRIC_DEFAULT)
kms create-alias --alias-name alias/doomed --target-key-id "$K_DOOMED"
kms schedule-key-deletion --key-id "$K_DOOMED" --pending-window-in-days 7 >/dev/null
# Pending deletion without aliases or grants: called since (a finding), or not (none).
K_CALLED=$(create_key SYMMETRIC_DEFAULT)
kms schedule-key-deletion --key-id "$K_CALLED" --pending-window-in-days 7 >/dev/null
expect_error KMSInvalidStateException 254 kms kms-encrypt --key-id "$K_CALLED" --plaintext aGVsbG8=
K_QUIET=$(create_key SYMMETRIC_DEFAULT)
kms schedule-key-deletion --key-id "$K_QUIET" --pending-window-in-days 7 >/dev/null
K_OFF=$(create_key SYMMETRIC_DEFAULT)
kms enable-key-rotation --key-id "$K_OFF"
kms disable-key --key-id "$K_OFF"
expect_error DisabledException 254 kms kms-encrypt --key-id "$K_OFF" --plaintext aGVsbG8=
KEY="arn:aws:kms:us-east-1:$ACCOUNT:key"

# The advisor changes nothing: the home (home_digest) and the trail's segments and digests,
# byte for byte. (The trail's index.db is derived data that a lookup may bring up to date.)
trail_digest() { (cd "$HOME_DIR/audit" && find segments digests -type f | sort | xargs -r sha256sum); }
BEFORE=$(home_digest "$HOME_DIR")
TRAIL_BEFORE=$(trail_digest)
advise
assert_home_unchanged "$BEFORE" "$HOME_DIR" "the advisor changes nothing in the home"
assert_eq "$(trail_digest)" "$TRAIL_BEFORE" "the advisor writes no audit record"

assert_eq "$ADV_RC" 1 "a weak home: the advisor exits 1"
found=$(checks)
for c in Root.AccessKeys Root.NoMFA Root.RecentlyUsed IAM.ConsoleWithoutMFA IAM.TwoActiveKeys \
    IAM.DirectPolicy IAM.AdminOutsideAdmins IAM.PasswordPolicyWeak Key.RotationDisabled \
    Key.PolicyPublic Key.GrantToDeletedPrincipal Key.PendingDeletionInUse Key.DisabledInUse; do
    assert_contains " $found " " $c " "a weak home: $c fires"
done
has_finding Root.AccessKeys "$ROOT_ARN" && ok "Root.AccessKeys names the root user" ||
    fail "Root.AccessKeys: $(findings_tsv | grep Root.AccessKeys)"
assert_contains "$(findings_tsv | grep '^Root.AccessKeys')" "$ROOT_AK" "Root.AccessKeys's fix names root's key"
has_finding IAM.ConsoleWithoutMFA "$U/carol" && ok "IAM.ConsoleWithoutMFA names carol" || fail "no carol finding"
has_finding IAM.AdminOutsideAdmins "$U/dave" && ok "IAM.AdminOutsideAdmins names dave" || fail "no dave finding"
has_finding IAM.AdminOutsideAdmins "arn:aws:iam::$ACCOUNT:group/Ops" && ok "IAM.AdminOutsideAdmins names the group Ops" ||
    fail "no Ops finding"
assert_eq "$(findings_tsv | grep -c '^IAM.DirectPolicy	')" 2 "IAM.DirectPolicy: dave's attached and inline policies"
has_finding IAM.TwoActiveKeys "$U/frank" && ok "IAM.TwoActiveKeys names frank" || fail "no frank finding"
has_finding Key.RotationDisabled "$KEY/$K_PLAIN" && ok "Key.RotationDisabled names the key" || fail "no rotation finding"
has_finding Key.PolicyPublic "$KEY/$K_OPEN" && ok "Key.PolicyPublic names the open key" || fail "no open-policy finding"
assert_contains "$(findings_tsv | grep '^Key.GrantToDeletedPrincipal')" "$GRANT_ID" "Key.GrantToDeletedPrincipal names erin's grant"
has_finding Key.PendingDeletionInUse "$KEY/$K_DOOMED" && ok "Key.PendingDeletionInUse names the key" || fail "no deletion finding"
has_finding Key.PendingDeletionInUse "$KEY/$K_CALLED" && ok "Key.PendingDeletionInUse: a key called since" ||
    fail "no finding for the pending key called since"
assert_contains "$(findings_tsv | grep "^Key.PendingDeletionInUse	$KEY/$K_CALLED")" "cancel-key-deletion --key-id $K_CALLED" \
    "its fix cancels the deletion"
has_finding Key.PendingDeletionInUse "$KEY/$K_QUIET" && fail "a pending deletion nobody uses is a finding" ||
    ok "a pending deletion nobody uses, without aliases or grants, is no finding"
assert_contains "$(findings_tsv | grep '^Key.GrantToDeletedPrincipal')" "$GHOST_GRANT" "Key.GrantToDeletedPrincipal names the grant to a user that never existed"
has_finding Key.DisabledInUse "$KEY/$K_OFF" && ok "Key.DisabledInUse names the disabled key" || fail "no disabled finding"
# Only those keys: enabled keys with rotation and a default policy are fine.
assert_eq "$(findings_tsv | grep -c "^Key.RotationDisabled	")" 1 "Key.RotationDisabled: only the key without rotation"
# The same key disabled, but never called since: nothing.
K_IDLE=$(create_key SYMMETRIC_DEFAULT)
kms disable-key --key-id "$K_IDLE"
advise
has_finding Key.DisabledInUse "$KEY/$K_IDLE" && fail "a disabled key nobody calls is a finding" ||
    ok "a disabled key nobody calls is no finding"

# Text output: one readable block per finding, then the summary.
rc=0
kms advisor --output text >"$TMP/adv.txt" || rc=$?
assert_eq "$rc" 1 "--output text exits 1 too"
text=$(cat "$TMP/adv.txt")
assert_match "$text" "CRITICAL  Key.PolicyPublic"$'\n'"  Resource: $KEY/$K_OPEN"$'\n'"  Why: " "text: a block per finding"
assert_contains "$text" "  Fix:      kmsctl enable-key-rotation --key-id $K_PLAIN" "text: the fix"
assert_match "$(tail -1 "$TMP/adv.txt")" '^[0-9]+ critical, [0-9]+ high, [0-9]+ warning, [0-9]+ info$' "text: the summary line"

# (one Fix may clear two findings: detaching dave's AdministratorAccess clears IAM.DirectPolicy
# and IAM.AdminOutsideAdmins)
TO_FIX=$(findings_tsv | grep -v '^Root.RecentlyUsed	' | cut -f3 | sort -u | wc -l)
# Each finding's Fix clears it. Root's fixes run as the root user (its sign-in's profile).
# Root.RecentlyUsed has no fix that clears it (past calls stay in the trail): it goes once
# root is unused for 30 days, checked below with the clock moved.
fixed=0
for _ in $(seq 1 40); do
    advise
    line=$(findings_tsv | grep -v '^Root.RecentlyUsed	' | head -1 || true)
    [ -n "$line" ] || break
    IFS=$'\t' read -r check res fix <<<"$line"
    if [[ "$check" == Root.* ]]; then
        KMS_PROFILE=root eval "$fix" >/dev/null 2>"$TMP/last.err" || fail "$check fix '$fix' failed: $(cat "$TMP/last.err")"
    else
        eval "$fix" >/dev/null 2>"$TMP/last.err" || fail "$check fix '$fix' failed: $(cat "$TMP/last.err")"
    fi
    advise
    if findings_tsv | grep -qxF "$line"; then
        fail "$check on $res is still there after its fix: $fix"
        break
    fi
    ok "the fix of $check ($res) clears it: $fix"
    fixed=$((fixed + 1))
done
[ "$fixed" -ge "$TO_FIX" ] && ok "$fixed findings fixed one by one" || fail "only $fixed of $TO_FIX findings fixed"
assert_eq "$(checks)" "Root.RecentlyUsed" "after the fixes only Root.RecentlyUsed is left"

# ---- Audit.DigestOverdue: records older than the digest period that no digest signs ------------
# Commands leave their records in the open segment; two hours on (the period is one), nothing
# sealed them.
advise +2h
has_finding Audit.DigestOverdue "$HOME_DIR/audit" && ok "two hours on, Audit.DigestOverdue fires" ||
    fail "no Audit.DigestOverdue two hours on: $(findings_tsv)"
FIX=$(findings_tsv | awk -F'\t' '$1 == "Audit.DigestOverdue" { print $3 }')
assert_eq "$FIX" "kmsctl seal-audit-log" "its fix seals the open segment"
eval "$FIX" >/dev/null
advise +2h
assert_eq "$(checks)" "Root.RecentlyUsed" "and its fix clears Audit.DigestOverdue"
kms list-keys >/dev/null
advise +2h
has_finding Audit.DigestOverdue "$HOME_DIR/audit" && ok "a new record, two hours old, is overdue again" ||
    fail "no Audit.DigestOverdue for a new record"
env "$FT_ENV" LD_PRELOAD="$FT_LIB" FAKETIME=+2h FAKETIME_DONT_RESET=1 \
    "$KMSCTL" --home "$HOME_DIR" run-scheduler --once >"$TMP/sched.json"
assert_eq "$(json_get AuditLogSealed <"$TMP/sched.json")" "true" "the scheduler, two hours on, seals it"
advise +2h
assert_eq "$(checks)" "Root.RecentlyUsed" "and Audit.DigestOverdue is gone"
advise +31d
assert_eq "$ADV_RC" 0 "31 days later (root unused since): exit 0"
assert_eq "$(json_get Findings <"$TMP/adv.json")" "[]" "31 days later: no finding"

# ---- stale credentials: the clock 100 days on ---------------------------------------------------
advise +100d
assert_eq "$ADV_RC" 1 "100 days later: the advisor exits 1"
found=$(checks)
for c in IAM.AccessKeyOld IAM.AccessKeyUnused IAM.UserInactive; do
    assert_contains " $found " " $c " "100 days later: $c fires"
done
has_finding IAM.UserInactive "$U/frank" && ok "IAM.UserInactive names frank" || fail "frank not inactive"
has_finding IAM.AccessKeyOld "$U/admin" && ok "IAM.AccessKeyOld names admin's key" || fail "admin's key not old"
# frank's and admin's keys: one fix (deactivate) clears each user's three findings.
# The fixes run today (the admin's key is used by them); admin's own last, as they take away
# the key the fixes run with.
fixed=0
for _ in $(seq 1 20); do
    advise +100d
    line=$(findings_tsv | grep -v "	$U/admin	" | head -1 || true)
    [ -n "$line" ] || line=$(findings_tsv | head -1 || true)
    [ -n "$line" ] || break
    IFS=$'\t' read -r check res fix <<<"$line"
    eval "$fix" >/dev/null 2>"$TMP/last.err" || fail "$check fix '$fix' failed: $(cat "$TMP/last.err")"
    advise +100d
    if findings_tsv | grep -qxF "$line"; then
        fail "$check on $res is still there after its fix: $fix"
        break
    fi
    ok "the fix of $check ($res) clears it: $fix"
    fixed=$((fixed + 1))
done
[ "$fixed" -ge 2 ] && ok "$fixed stale keys deactivated" || fail "only $fixed fixed"
assert_eq "$ADV_RC" 0 "100 days later, after the fixes: exit 0"

# ---- files: StrictModes, reported instead of refused -------------------------------------------
chmod g+w "$HOME_DIR/config.json" "$HOME_DIR/kms.db"
chmod g+r "$HOME_DIR/pin"
advise
assert_eq "$ADV_RC" 1 "config.json writable by the group: exit 1"
has_finding Home.Permissions "$HOME_DIR/config.json" && ok "Home.Permissions names config.json" ||
    fail "no config.json finding: $(findings_tsv)"
assert_eq "$(json_get Summary.Complete <"$TMP/adv.json")" false "the other checks are skipped"
assert_contains "$(checks)" "Advisor.ChecksSkipped" "the report says they were skipped"

# config.json first (the rest is named by it), then kms.db and the PIN file.
SEEN=""
for _ in 1 2 3 4 5; do
    line=$(findings_tsv | grep '^Home.Permissions	' | head -1 || true)
    [ -n "$line" ] || break
    SEEN="$SEEN$line"$'\n'
    IFS=$'\t' read -r check res fix <<<"$line"
    eval "$fix"
    advise
    findings_tsv | grep -qxF "$line" && fail "$res still reported after '$fix'" ||
        ok "the fix of Home.Permissions ($res) clears it: $fix"
done
assert_contains "$SEEN" "	$HOME_DIR/kms.db	chmod go-w $HOME_DIR/kms.db" "kms.db writable by the group was reported"
assert_contains "$SEEN" "	$HOME_DIR/pin	chmod 600 $HOME_DIR/pin" "the PIN file readable by the group was reported"
assert_eq "$(json_get Summary.Complete <"$TMP/adv.json")" true "the files fixed: every check runs again"
assert_eq "$(checks)" "Root.RecentlyUsed" "the files fixed: only root's use of today is left"
assert_eq "$(stat -c %a "$HOME_DIR/config.json")" 600 "the fix made config.json 0600 again"

# A copied home whose SoftHSM2 configuration still names the original's token (home_check.c).
cp -a "$HOME_DIR" "$TMP/copied"
rc=0
kms_at "$TMP/copied" advisor >"$TMP/adv.json" 2>"$TMP/last.err" || rc=$?
assert_eq "$rc" 1 "a copied home still on the original's token: exit 1"
line=$(findings_tsv | grep "^Home.Permissions	$TMP/copied/hsm/tokens	" || true)
assert_contains "$line" "sed -i" "Home.Permissions names the token directory and the sed that fixes it"
fix=$(cut -f3 <<<"$line")
eval "${fix:-false}"
rc=0
kms_at "$TMP/copied" advisor >"$TMP/adv.json" 2>"$TMP/last.err" || rc=$?
assert_eq "$(json_get Summary.Complete <"$TMP/adv.json")" true "after the sed the copy is opened and checked"
rm -rf "$TMP/copied"

# ---- the audit trail: tampered, short of space ---------------------------------------------------
copy_home "$HOME_DIR" "$TMP/copy"
seg=$(ls "$TMP/copy/audit/segments/"*.jsonl | head -1)
chmod u+w "$seg"
sed -i '1s/"CreateGroup"/"DeleteGroup"/' "$seg"
chmod u-w "$seg"
rc=0
kms_at "$TMP/copy" advisor >"$TMP/adv.json" 2>"$TMP/last.err" || rc=$?
assert_eq "$rc" 1 "a tampered trail: exit 1"
has_finding Audit.TrailInvalid "$TMP/copy/audit" && ok "Audit.TrailInvalid fires" || fail "no Audit.TrailInvalid: $(findings_tsv)"
assert_eq "$(findings_tsv | grep '^Audit.TrailInvalid' | cut -f3)" "kmsctl validate-logs" "its fix shows the problems"
# A 64 MiB file system (under 1 GiB free), in a mount namespace of its own.
if unshare -m true 2>/dev/null; then
    rc=0
    unshare -m bash -c '
        set -e
        mkdir -p "$1/small"
        mount -t tmpfs -o size=64m tmpfs "$1/small"
        cp -a "$2" "$1/small/home"
        sed -i "s|^directories.tokendir *=.*|directories.tokendir = $1/small/home/hsm/tokens|" \
            "$1/small/home/hsm/softhsm2.conf"
        "$3" --home "$1/small/home" advisor >"$1/adv.json"' _ "$TMP" "$HOME_DIR" "$KMSCTL" || rc=$?
    assert_eq "$rc" 1 "a home on a small file system: exit 1"
    has_finding Audit.LowDiskSpace "$TMP/small/home/audit" && ok "Audit.LowDiskSpace fires" ||
        fail "no Audit.LowDiskSpace: $(findings_tsv)"
else
    echo "# skipped: Audit.LowDiskSpace (no mount namespace here)"
fi

# ---- certificates expiring within the warning window ---------------------------------------------
# On a home of their own: the one above has had its credentials rotated away by the fixes.
MAIN_HOME=$HOME_DIR
HOME_DIR="$TMP/certs"
init_home "$HOME_DIR"
printf '{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"Advisor Root"}}' >"$TMP/ca.json"
CA=$(kms acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$TMP/ca.json" --query CertificateAuthorityArn --output text)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/leaf.key" \
    -subj /CN=soon.internal -out "$TMP/leaf.csr" 2>/dev/null
SOON=$(kms acm-pca issue-certificate --certificate-authority-arn "$CA" --csr "fileb://$TMP/leaf.csr" \
    --signing-algorithm SHA256WITHECDSA --validity Value=10,Type=DAYS --query CertificateArn --output text)
LATER=$(kms acm request-certificate --domain-name later.internal --certificate-authority-arn "$CA" \
    --query CertificateArn --output text)
# severity_of CHECK RESOURCE: the Severity of that finding in the last report
severity_of() {
    "$PY" -c '
import json, sys
print(" ".join(f["Severity"] for f in json.load(open(sys.argv[1]))["Findings"]
               if f["Check"] == sys.argv[2] and f["Resource"] == sys.argv[3]))' "$TMP/adv.json" "$1" "$2"
}
advise
assert_eq "$(severity_of Certificate.Expiring "$SOON")" warning \
    "Certificate.Expiring: an issued certificate 10 days from expiry is a warning"
has_finding Certificate.Expiring "$LATER" && fail "a certificate a year from expiry is a finding" ||
    ok "a certificate a year from expiry is no finding"
advise +4d
assert_eq "$(severity_of Certificate.Expiring "$SOON")" high "6 days from expiry: high"
advise +330d
assert_eq "$(severity_of Certificate.Expiring "$LATER")" warning \
    "a managed certificate 35 days from expiry (not renewed: no scheduler ran) is a warning"
assert_eq "$(findings_tsv | grep "^Certificate.Expiring	$LATER" | cut -f3)" \
    "kmsctl acm renew-certificate --certificate-arn $LATER" "its fix renews it"
has_finding Certificate.Expiring "$SOON" && fail "an expired certificate is listed as expiring" ||
    ok "an expired certificate is no longer listed as expiring"
HOME_DIR=$MAIN_HOME

# ---- errors ------------------------------------------------------------------------------------
expect_error KMSHomeException 254 kms_at "$TMP/nothing-here" advisor
