#!/usr/bin/env bash
# Processes opening the HSM token side by side.
#
# SoftHSM2 2.6.1 rewrites its token file (token.object) at every successful C_Login, and it
# writes the new contents through a stdio buffer that reaches the file only after it has
# released its lock: a process reading the file at that moment (its C_Initialize or its own
# C_Login) finds it empty and fails with CKR_GENERAL_ERROR or CKR_USER_PIN_NOT_INITIALIZED. So
# every kmsctl process holds an exclusive flock on HOME/hsm.lock from C_Initialize through
# C_Login. This test shows a process waiting for that lock (deterministically, by holding it),
# validate-logs waiting for a seal in the same way, a bad lock file refused, and groups of
# processes opening the token at once without an error.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_home
KID=$(create_key SYMMETRIC_DEFAULT)
LOCK="$HOME_DIR/hsm.lock"

[ -f "$LOCK" ] && ok "init creates HOME/hsm.lock" || fail "init creates HOME/hsm.lock"
assert_eq "$(stat -c %a "$LOCK")" "600" "the lock file is private"

# queued PID MODE: wait until PID is listed in /proc/locks as blocked on an flock (MODE WRITE for
# an exclusive, READ for a shared one: "N: -> FLOCK ADVISORY MODE PID ..."), and print yes; no
# if PID ends first. The loop only bounds the wait; it asserts nothing about time.
queued() {
    local pid=$1 mode=$2
    for _ in $(seq 1 600); do
        if grep -Eq "^[0-9]+: -> FLOCK +ADVISORY +$mode +$pid " /proc/locks; then
            echo yes
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo no
}

# ---- a process opening the token waits for the lock ---------------------------------------------
# Hold the lock ourselves, start kmsctl, and find it queued behind us.
exec {held}<>"$LOCK"
flock -x "$held"
"$KMSCTL" --home "$HOME_DIR" generate-data-key --key-id "$KID" --key-spec AES_256 \
    >"$TMP/waiter.out" 2>"$TMP/waiter.err" &
waiter=$!
assert_eq "$(queued "$waiter" WRITE)" "yes" \
    "a process opening the token waits while another holds HOME/hsm.lock"
assert_eq "$(kill -0 "$waiter" 2>/dev/null && echo running)" "running" \
    "and has not gone on without it"
flock -u "$held"
exec {held}>&-
rc=0
wait "$waiter" || rc=$?
assert_eq "$rc" "0" "once the lock is released it goes on (stderr: $(head -c 300 "$TMP/waiter.err"))"
assert_eq "$(json_get 'KeyId' <"$TMP/waiter.out")" \
    "$(kms describe-key --key-id "$KID" --query KeyMetadata.Arn --output text)" \
    "and makes its data key"

# ---- validate-logs reads the audit anchor between seals -----------------------------------------
# A seal moves the anchor (a new HSM data object, then the old one destroyed) under audit/LOCK;
# validate-logs takes a shared hold of it to read the anchor, so it never sees the move half done.
exec {held}<>"$HOME_DIR/audit/LOCK"
flock -x "$held"
"$KMSCTL" --home "$HOME_DIR" validate-logs >"$TMP/validate.out" 2>"$TMP/validate.err" &
waiter=$!
assert_eq "$(queued "$waiter" READ)" "yes" "validate-logs waits for a seal under way"
flock -u "$held"
exec {held}>&-
rc=0
wait "$waiter" || rc=$?
assert_eq "$rc" "0" "then validates (stderr: $(head -c 300 "$TMP/validate.err"))"
assert_eq "$(json_get Valid <"$TMP/validate.out")" "true" "and finds the trail valid"

# ---- a lock file that is not a plain file is refused, and nothing changes ----------------------
mv "$LOCK" "$TMP/lock.saved"
ln -s "$TMP/elsewhere" "$LOCK"
before=$(home_digest "$HOME_DIR")
expect_error KMSHomeException 254 kms generate-data-key --key-id "$KID" --key-spec AES_256
assert_contains "$ERR_MSG" "hsm.lock" "the error names the lock file"
assert_home_unchanged "$before" "$HOME_DIR" "a refused lock file changes nothing"
[ ! -e "$TMP/elsewhere" ] && ok "the symlink was not followed" || fail "the symlink was followed"
rm "$LOCK"
mkfifo -m 600 "$LOCK"
expect_error KMSHomeException 254 kms generate-data-key --key-id "$KID" --key-spec AES_256
assert_contains "$ERR_MSG" "not a regular file" "a FIFO in its place is refused at once"
rm "$LOCK"
mv "$TMP/lock.saved" "$LOCK"

# ---- many processes at once -------------------------------------------------------------------
# Each round starts four processes together, each of which initialises the module and logs in.
errors=0
for round in $(seq 1 8); do
    for i in 1 2 3 4; do
        "$KMSCTL" --home "$HOME_DIR" generate-data-key --key-id "$KID" --key-spec AES_256 \
            >/dev/null 2>"$TMP/par$round.$i.err" &
    done
    wait
    for i in 1 2 3 4; do
        if [ -s "$TMP/par$round.$i.err" ]; then
            errors=$((errors + 1))
            echo "round $round process $i: $(head -c 300 "$TMP/par$round.$i.err")" >&2
        fi
    done
done
assert_eq "$errors" "0" "32 processes opening the token four at a time all succeed"

