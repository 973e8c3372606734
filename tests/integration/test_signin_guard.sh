#!/usr/bin/env bash
# Sign-in guessing through kmsctl: an unknown user is answered as a wrong password is; five
# failed sign-ins of one user (wrong passwords or wrong MFA codes, known user or not) refuse the
# next ones with LimitExceededException until the window passes, saying when to try again;
# separate kmsctl processes share the counters; every refusal is in the audit trail; a success
# resets the counter. Time moved by libfaketime, never by sleeping; nothing asserted on time.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v faketime >/dev/null || { fail "faketime (libfaketime) is not installed"; exit 1; }

init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
PASSWORD='Correct-Horse-9-Battery'
# libfaketime is preloaded before the ASan runtime of a sanitizer build: tell ASan that is fine.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

# sign_in USER PASSWORD [OPTIONS...]: kmsctl sign-in (another process each time).
sign_in() {
    local user=$1 pw=$2
    shift 2
    env KMS_PASSWORD="$pw" "$KMSCTL" --home "$HOME_DIR" sign-in --user-name "$user" \
        --save-profile "s-$user" "$@"
}
# at OFFSET CMD...: CMD with the clock moved by OFFSET (faketime -f "+16m").
at() {
    local offset=$1
    shift
    faketime -f "$offset" "$@"
}
newest_login() {
    kms lookup-events --lookup-attributes "AttributeKey=EventName,AttributeValue=ConsoleLogin" \
        --max-items 1 --query 'Events[0].CloudTrailEvent' --output text | sed -n 1p
}
ISO='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'

for u in erin frank; do
    kms create-user --user-name "$u" >/dev/null
    kms create-login-profile --user-name "$u" --password "$PASSWORD" >/dev/null
done

# ---- an unknown user is answered as a wrong password ------------------------------------------
expect_error AccessDeniedException 254 sign_in erin wrong-password
WRONG=$ERR_MSG
expect_error AccessDeniedException 254 sign_in nobody wrong-password
assert_eq "$ERR_MSG" "$WRONG" "an unknown user gets the wrong password's message"

# ---- five failures lock the user out, the right password too ----------------------------------
for _ in 2 3 4 5; do
    expect_error AccessDeniedException 254 sign_in erin wrong-password
done
expect_error LimitExceededException 254 sign_in erin "$PASSWORD"
assert_match "$ERR_MSG" "^Too many failed sign-in attempts for user erin: sign-in is refused until $ISO\. Try again after that time\.\$" \
    "the refusal says when to try again (ISO 8601)"
UNTIL=$(grep -oE "$ISO" <<<"$ERR_MSG")
EV=$(newest_login)
assert_eq "$(json_get errorCode <<<"$EV")" "LimitExceededException" "the refusal is audited with its errorCode"
assert_eq "$(json_get userIdentity.userName <<<"$EV")" "erin" "the refusal's record names who tried"
assert_contains "$(json_get errorMessage <<<"$EV")" "$UNTIL" "the record says until when"
# Other users are not affected.
sign_in frank "$PASSWORD" >/dev/null && ok "another user still signs in"
# Still refused a minute before the window ends; signed in once it has passed.
expect_error LimitExceededException 254 at "+14m" env KMS_PASSWORD="$PASSWORD" "$KMSCTL" \
    --home "$HOME_DIR" sign-in --user-name erin --save-profile s-erin
at "+16m" env KMS_PASSWORD="$PASSWORD" "$KMSCTL" --home "$HOME_DIR" sign-in --user-name erin \
    --save-profile s-erin >/dev/null && ok "the window passed: sign-in works again"
# The success reset the counter: four failures now leave the fifth attempt its chance.
for _ in 1 2 3 4; do
    expect_error AccessDeniedException 254 sign_in erin wrong-password
done
sign_in erin "$PASSWORD" >/dev/null && ok "a success resets the user's failures"

# ---- an unknown user is locked out the same way -----------------------------------------------
for _ in 1 2 3 4 5; do
    expect_error AccessDeniedException 254 sign_in ghost wrong-password
done
expect_error LimitExceededException 254 sign_in ghost wrong-password
assert_match "$ERR_MSG" "^Too many failed sign-in attempts for user ghost: sign-in is refused until $ISO" \
    "an unknown user is throttled as a known one"

# ---- wrong MFA codes count ---------------------------------------------------------------------
totp() { # totp BASE32STRINGSEED STEP_OFFSET
    "$PY" - "$1" "$2" <<'PY'
import base64, hmac, hashlib, struct, sys, time
b32 = base64.b64decode(sys.argv[1]).decode()
seed = base64.b32decode(b32 + "=" * (-len(b32) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
h = hmac.new(seed, struct.pack(">Q", step), hashlib.sha1).digest()
o = h[-1] & 15
print("%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY
}
mfa=$(kms create-virtual-mfa-device --virtual-mfa-device-name frank-phone)
SERIAL=$(json_get VirtualMFADevice.SerialNumber <<<"$mfa")
SEED=$(json_get VirtualMFADevice.Base32StringSeed <<<"$mfa")
kms enable-mfa-device --user-name frank --serial-number "$SERIAL" \
    --authentication-code1 "$(totp "$SEED" -1)" --authentication-code2 "$(totp "$SEED" 0)" >/dev/null
# A code that none of the accepted steps has.
BAD=000000
while [[ " $(totp "$SEED" -1) $(totp "$SEED" 0) $(totp "$SEED" 1) $(totp "$SEED" 2) " == *" $BAD "* ]]; do
    BAD=$(printf '%06d' $((10#$BAD + 1)))
done
for _ in 1 2 3 4 5; do
    expect_error InvalidAuthenticationCodeException 254 sign_in frank "$PASSWORD" --token-code "$BAD"
done
expect_error LimitExceededException 254 sign_in frank "$PASSWORD" --token-code "$(totp "$SEED" 1)"
assert_match "$ERR_MSG" "^Too many failed sign-in attempts for user frank: " "five wrong MFA codes lock the user out"

# ---- the counters are in the database, not in a process -----------------------------------------
rows=$("$PY" - "$HOME_DIR/kms.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT count(*) FROM iam_signin_failures WHERE scope = 'user' AND failures >= 5").fetchone()[0])
PY
)
assert_eq "$rows" 2 "the database holds the counters of the locked users (ghost, frank)"
if grep -a -q -e "$PASSWORD" -e wrong-password "$HOME_DIR/kms.db"*; then
    fail "a tried password is in the database"
else
    ok "no tried password is stored"
fi

# ---- in-process, there is no source to limit: failures under many names lock nobody else out ----
# (every local caller would be "127.0.0.1": a per-source limit would let anyone lock every user
# of the home out with twenty guesses under made-up names)
for i in $(seq 1 21); do
    expect_error AccessDeniedException 254 sign_in "made-up-$i" wrong-password
done
sign_in erin "$PASSWORD" >/dev/null && ok "erin still signs in after 21 failures under other names"
