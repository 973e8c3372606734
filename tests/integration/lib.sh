# shellcheck shell=bash
# Shared helpers of the kmsctl integration tests. Source it first thing in each test_*.sh:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Environment (ctest sets these): KMSCTL (the kmsctl binary), KMS_SOURCE_DIR, KMS_BUILD_DIR.
# Each test runs on a fresh temporary directory ($TMP, removed on exit); the KMS home is
# $HOME_DIR = $TMP/home (init_home creates it). Assertions count passes and failures; a failed
# assertion does not stop the test, an unexpected failing command does (set -e). The last line
# of output is always "N passed, M failed"; the exit status is 0 only when M is 0.

set -Eeuo pipefail

: "${KMSCTL:?KMSCTL must name the kmsctl binary}"
[ -x "$KMSCTL" ] || { echo "KMSCTL=$KMSCTL is not executable" >&2; exit 1; }

export LC_ALL=C
# python3 (json, sqlite3) is the only helper language. A version manager's shim (pyenv) costs
# ~0.1 s a start; prefer the system interpreter when there is one.
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
# shellcheck disable=SC2034  # used by the tests that source this file
SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kms-it.XXXXXX")
HOME_DIR="$TMP/home"
# kmsctl must not pick up a home or credentials of the machine.
export KMS_HOME="$TMP/no-such-default-home"
unset KMS_PROFILE KMS_ACCESS_KEY_ID KMS_SECRET_ACCESS_KEY KMS_SESSION_TOKEN || true
# kmsctl reads the aws CLI's credential variables when no KMS_ one is set (as aws): a test acts as
# the home's default profile unless it says otherwise.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE || true

PASSED=0
FAILED=0
_ABORTED=""

_on_err() {
    local rc=$? line=${BASH_LINENO[0]} cmd=$BASH_COMMAND
    # Only the first (innermost) ERR report is useful; later ones repeat it up the call stack.
    if [ -z "$_ABORTED" ]; then
        _ABORTED="line $line: '$cmd' exited $rc"
        echo "ABORT: unexpected failure at ${BASH_SOURCE[1]:-?} $_ABORTED" >&2
        if [ -s "$TMP/last.err" ]; then
            echo "  its stderr: $(head -c 2000 "$TMP/last.err")" >&2
        fi
    fi
}

_on_exit() {
    local rc=$?
    if [ -n "$_ABORTED" ] || { [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; }; then
        FAILED=$((FAILED + 1))
    fi
    rm -rf "$TMP"
    echo "$PASSED passed, $FAILED failed"
    if [ "$FAILED" -ne 0 ]; then exit 1; fi
    exit 0
}
trap _on_err ERR
trap _on_exit EXIT

# ---- reporting ---------------------------------------------------------------------------------

ok()   { PASSED=$((PASSED + 1)); echo "ok - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*" >&2; }

# assert_eq ACTUAL EXPECTED MESSAGE
assert_eq() {
    if [ "$1" == "$2" ]; then ok "$3"; else fail "$3: expected '$2', got '$1'"; fi
}
# assert_ne ACTUAL UNEXPECTED MESSAGE
assert_ne() {
    if [ "$1" != "$2" ]; then ok "$3"; else fail "$3: got '$1', which it must not be"; fi
}
# assert_match ACTUAL EXTENDED_REGEX MESSAGE
assert_match() {
    if [[ "$1" =~ $2 ]]; then ok "$3"; else fail "$3: '$1' does not match /$2/"; fi
}
# assert_contains HAYSTACK NEEDLE MESSAGE
assert_contains() {
    if [[ "$1" == *"$2"* ]]; then ok "$3"; else fail "$3: '$1' does not contain '$2'"; fi
}
assert_not_contains() {
    if [[ "$1" != *"$2"* ]]; then ok "$3"; else fail "$3: '$1' contains '$2'"; fi
}
# assert_files_equal A B MESSAGE  (byte for byte)
assert_files_equal() {
    if cmp -s "$1" "$2"; then ok "$3"; else fail "$3: $1 and $2 differ"; fi
}

# ---- running kmsctl ----------------------------------------------------------------------------

# kms ARGS...: kmsctl on the test's home, as its default profile (without the AWS_ credential
# variables a test may export for the aws CLI, which kmsctl would read as aws does).
kms() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE "$KMSCTL" --home "$HOME_DIR" "$@"; }
# kms_at DIR ARGS...: kmsctl on another home
kms_at() { local h=$1; shift; env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE "$KMSCTL" --home "$h" "$@"; }

# json_get PATH < JSON: print one member (dotted path, [i] indexes). Strings print raw; other
# values (numbers, booleans, lists, objects) print as compact JSON with sorted keys; a missing
# (or null) member prints <missing>. jq when there is one (fast), else python3.
if command -v jq >/dev/null 2>&1; then
    json_get() {
        jq -c -S -r "try (.$1 | if . == null then \"<missing>\" else . end) catch \"<missing>\""
    }
else
    json_get() {
        "$PY" -c '
import json, re, sys
cur = json.load(sys.stdin)
for part in re.findall(r"[^.\[\]]+|\[\d+\]", sys.argv[1]):
    try:
        cur = cur[int(part[1:-1])] if part.startswith("[") else cur[part]
    except (KeyError, IndexError, TypeError):
        cur = None
        break
if cur is None:
    print("<missing>")
else:
    print(cur if isinstance(cur, str) else json.dumps(cur, separators=(",", ":"), sort_keys=True))
' "$1"
    }
fi
# json_valid < TEXT: succeed if stdin is one JSON value
json_valid() { "$PY" -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null; }

# expect_error NAME EXITCODE CMD...: run CMD; assert its exit code is EXITCODE, stdout is empty,
# and stderr is exactly one JSON object whose __type is NAME and whose message is not empty.
# Leaves stderr in $ERR_OUT and the message in $ERR_MSG for further checks.
ERR_OUT=""
ERR_MSG=""
expect_error() {
    local name=$1 want_rc=$2 rc=0 type
    shift 2
    "$@" >"$TMP/last.out" 2>"$TMP/last.err" || rc=$?
    ERR_OUT=$(cat "$TMP/last.err")
    ERR_MSG=""
    local what="'${*:1:3}...' fails with $name/$want_rc"
    if [ "$rc" -ne "$want_rc" ]; then
        fail "$what: exit code $rc (stderr: $(head -c 500 "$TMP/last.err"); stdout: $(head -c 200 "$TMP/last.out"))"
        return 0
    fi
    if [ -s "$TMP/last.out" ]; then
        fail "$what: stdout is not empty: $(head -c 200 "$TMP/last.out")"
        return 0
    fi
    if ! "$PY" - "$TMP/last.err" <<'PY' >"$TMP/last.type"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
if text.count("\n") > 1 or not text.endswith("\n"):
    sys.exit("not exactly one line")
doc = json.loads(text)
if not isinstance(doc, dict) or set(doc) != {"__type", "message"}:
    sys.exit("not {__type, message}")
if not isinstance(doc["message"], str) or not doc["message"]:
    sys.exit("empty message")
print(doc["__type"])
print(doc["message"])
PY
    then
        fail "$what: stderr is not one JSON line {__type, message}: $ERR_OUT"
        return 0
    fi
    type=$(sed -n 1p "$TMP/last.type")
    ERR_MSG=$(sed -n '2,$p' "$TMP/last.type")
    if [ "$type" != "$name" ]; then
        fail "$what: __type is $type (message: $ERR_MSG)"
        return 0
    fi
    ok "$what"
}

# expect_usage_error FRAGMENT CMD...: a command-line error: exit 252, nothing on stdout, a
# "kmsctl: error: ..." text on stderr containing FRAGMENT.
expect_usage_error() {
    local frag=$1 rc=0
    shift
    "$@" >"$TMP/last.out" 2>"$TMP/last.err" || rc=$?
    ERR_OUT=$(cat "$TMP/last.err")
    local what="'${*:1:3}...' is a usage error (252)"
    if [ "$rc" -ne 252 ]; then fail "$what: exit code $rc (stderr: $ERR_OUT)"; return 0; fi
    if [ -s "$TMP/last.out" ]; then fail "$what: stdout not empty"; return 0; fi
    if [[ "$ERR_OUT" != "kmsctl: error: "* || "$ERR_OUT" != *"$frag"* ]]; then
        fail "$what: stderr '$ERR_OUT' lacks 'kmsctl: error: ...$frag'"
        return 0
    fi
    ok "$what"
}

# ---- homes -------------------------------------------------------------------------------------

# init_home [DIR [INIT OPTIONS...]]: kmsctl init, asserting it succeeds.
init_home() {
    local dir=${1:-$HOME_DIR}
    [ $# -gt 0 ] && shift
    "$KMSCTL" --home "$dir" init "$@" >"$TMP/init.json"
}

# copy_home SRC DST: a working copy of an initialised home (the SoftHSM config holds the
# absolute path of the token directory, so point the copy's at the copy's tokens).
copy_home() {
    cp -a "$1" "$2"
    sed -i "s|^directories.tokendir *=.*|directories.tokendir = $2/hsm/tokens|" \
        "$2/hsm/softhsm2.conf"
    grep -q "^directories.tokendir = $2/hsm/tokens\$" "$2/hsm/softhsm2.conf"
}

# softhsm_data_object FILE: FILE (NAME.object, or the NAME.lock beside it) is a SoftHSM token
# object whose first attribute, CKA_CLASS, is CKO_DATA (after the attribute count: type 0, kind
# 2 = unsigned long, value 0, each 8 bytes big-endian).
softhsm_data_object() {
    local obj=${1%.lock}
    obj=${obj%.object}.object
    [ "$(od -An -tx1 -j8 -N24 "$obj" 2>/dev/null | tr -d ' \n')" = \
        "000000000000000000000000000000020000000000000000" ]
}

# home_digest DIR: one line per entry under DIR (path, type, mode, sha256 of files), sorted.
# Left out: the SQLite -wal/-shm files (they come and go with connections); the audit trail's
# index (audit-index.db: derived data that lookups bring up to date); the contents (not
# the presence) of SoftHSM's hsm/tokens/*/token.object, which SoftHSM itself rewrites on every
# C_Login (pkcs11-tool --login does the same) and on failed logins (PIN counters), and of its
# copy in hsm/token-backup/ that every open refreshes; and, like the
# audit trail itself (the trail records refused operations too), the token's one data object,
# the trail's anchor, which moves at every seal (SoftHSM replaces it by an object file of a new
# name), and with it the token's generation counter (hsm/tokens/*/generation, whose presence
# is kept). kms.db is compared by its rows (home_db_rows), not its bytes. The key objects
# (*.object) and everything else are compared byte for byte.
home_digest() {
    local dir=$1 keep
    keep=$(home_db_keep "$dir")
    (
        cd "$dir"
        # The audit trail records refused operations too (by design; test_audit.sh checks it).
        find . -mindepth 1 -path ./audit -prune -o ! -name 'kms.db-wal' ! -name 'kms.db-shm' \
            ! -name 'audit-index.db*' \
            -printf '%p %y %m\n' \
            | sort | while read -r p t m; do
                if [ "$t" = f ] && [[ "$p" == ./hsm/tokens/*/token.object ]]; then
                    echo "$p $t $m (rewritten by SoftHSM at login)"
                elif [ "$t" = f ] && [[ "$p" == ./hsm/token-backup/* ]]; then
                    echo "$p $t $m (the copy of token.object every open refreshes)"
                elif [ "$t" = f ] && [[ "$p" == ./hsm/tokens/*/generation ]]; then
                    echo "$p $t $m (counts the token's changes, the audit anchor's too)"
                elif [ "$t" = f ] && [[ "$p" == ./hsm/tokens/*/*.object || "$p" == ./hsm/tokens/*/*.lock ]] &&
                    softhsm_data_object "$p"; then
                    echo "./hsm/tokens/(audit anchor).${p##*.} $t $m (moves with the audit trail)"
                elif [ "$t" = f ] && [ "$p" = ./kms.db ]; then
                    echo "$p $t $m (rows) $(home_db_rows "$keep" | sha256sum | cut -c1-64)"
                elif [ "$t" = f ]; then
                    echo "$p $t $m $(sha256sum <"$p" | cut -c1-64)"
                else
                    echo "$p $t $m"
                fi
            done | sort
    )
}

# home_db_keep DIR: copies DIR's kms.db (with its -wal, if any) as it is now and prints where;
# home_digest reads the copy (opening the database where it lies could checkpoint its WAL) and
# a failed assert_home_unchanged compares it with the one before (home_db_explain).
home_db_keep() {
    local keep
    keep="$TMP/.home-db/$(printf '%s' "$1" | sha256sum | cut -c1-16)"
    rm -rf "$keep.prev"
    if [ -d "$keep" ]; then mv "$keep" "$keep.prev"; fi
    mkdir -p "$keep"
    cp -p "$1/kms.db" "$keep/" 2>/dev/null || true
    cp -p "$1/kms.db-wal" "$keep/" 2>/dev/null || true
    printf '%s\n' "$keep"
}

# home_db_rows COPY_DIR: the logical content of a kms.db copy: its SQL dump (schema and rows,
# the WAL's committed transactions included), read from a scratch copy. Its bytes are no
# measure: when SQLite checkpoints the WAL into kms.db depends on which connection closes last,
# and so on timing. Left out: iam_access_keys' last_used_date/_service/_region, which every
# request signed with the key sets, refused ones too (AWS: "the last request made with that
# key"), at most once a minute (iam_sts.c, LAST_USED_GRANULARITY): a refused command that came
# 60 s after the last write changed them. A file SQLite cannot read as a database with tables
# (garbage, empty, truncated: quick_check fails) is given by the sha256 of its bytes instead.
home_db_rows() {
    "$PY" - "$1" "$TMP" <<'PYEOF'
import hashlib, os, shutil, sqlite3, sys, tempfile
src, tmp = sys.argv[1], sys.argv[2]
def raw(why):
    with open(os.path.join(src, "kms.db"), "rb") as f:
        print("(%s) bytes %s" % (why, hashlib.sha256(f.read()).hexdigest()))
scratch = tempfile.mkdtemp(dir=tmp)
try:
    for name in ("kms.db", "kms.db-wal"):
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), scratch)
    con = sqlite3.connect(os.path.join(scratch, "kms.db"), isolation_level=None)
    try:
        check = con.execute("PRAGMA quick_check").fetchall()
        tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as e:
        check, tables = [(str(e),)], 0
    try:
        if check != [("ok",)] or tables == 0:
            raw("not a database with tables: %s" % check[0][0])
            sys.exit(0)
        cols = [r[1] for r in con.execute("PRAGMA table_info(iam_access_keys)")]
        if "last_used_date" in cols:
            con.execute("UPDATE iam_access_keys SET last_used_date = 0, "
                        "last_used_service = '', last_used_region = ''")
        lines = list(con.iterdump())
    except sqlite3.Error as e:  # (the comparison falls back on the bytes: strict, not blind)
        print("home_db_rows: cannot dump %s: %s" % (src, e), file=sys.stderr)
        raw("cannot dump: %s" % e)
    else:
        print("\n".join(lines))
    finally:
        con.close()
finally:
    shutil.rmtree(scratch)
PYEOF
}

# home_db_explain DIR: after a failed comparison of DIR (whose kms.db copies before and after
# home_digest kept), what differs in kms.db: its bytes and WAL (for the record), and the rows
# compared (a diff of the home_db_rows outputs, which name the tables)
home_db_explain() {
    local keep a b nbytes first
    keep="$TMP/.home-db/$(printf '%s' "$1" | sha256sum | cut -c1-16)"
    a="$keep.prev"
    b="$keep"
    if [ ! -f "$a/kms.db" ] || [ ! -f "$b/kms.db" ]; then
        return 0
    fi
    nbytes=$(cmp -l "$a/kms.db" "$b/kms.db" 2>&1 | wc -l) || true
    first=$(cmp "$a/kms.db" "$b/kms.db" 2>&1) || true
    echo "kms.db: $nbytes bytes differ ${first:+(${first##* differ: })};" \
        "size $(stat -c %s "$a/kms.db") -> $(stat -c %s "$b/kms.db");" \
        "WAL $(stat -c %s "$a/kms.db-wal" 2>/dev/null || echo none) ->" \
        "$(stat -c %s "$b/kms.db-wal" 2>/dev/null || echo none)"
    echo "kms.db rows compared (diff of home_db_rows before and after):"
    { diff <(home_db_rows "$a") <(home_db_rows "$b") || true; } | cut -c1-300 | head -40
}

# assert_home_unchanged DIGEST_BEFORE DIR MESSAGE
assert_home_unchanged() {
    local after
    after=$(home_digest "$2")
    if [ "$1" == "$after" ]; then
        ok "$3"
    else
        fail "$3: the home changed: $({ diff <(echo "$1") <(echo "$after") || true; } | head -20 | tr '\n' ' ')"
        home_db_explain "$2" | sed 's/^/#   /' >&2
    fi
}

# create_key SPEC [USAGE]: print the new key's id
create_key() {
    local spec=$1 usage=${2:-}
    if [ -n "$usage" ]; then
        kms create-key --key-spec "$spec" --key-usage "$usage" --output text \
            --query KeyMetadata.KeyId
    else
        kms create-key --key-spec "$spec" --output text --query KeyMetadata.KeyId
    fi
}

# b64file FILE: the base64 of FILE on one line
b64file() { base64 -w0 <"$1"; }

# build_examples PROG...: installs the build in $TMP/prefix and builds examples/PROG.c against
# the installed libkms as an application would (pkg-config), into $TMP/PROG; sets EXAMPLE_LIBDIR
# (run them with LD_LIBRARY_PATH="$EXAMPLE_LIBDIR"). The test stops if one does not build.
build_examples() {
    local prefix="$TMP/prefix" pcdir prog
    local extra=()
    cmake --install "$KMS_BUILD_DIR" --prefix "$prefix" >/dev/null
    pcdir=$(dirname "$(find "$prefix" -name libkms.pc | head -n 1)")
    EXAMPLE_LIBDIR=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir libkms)
    if grep -q '^KMS_SANITIZE:BOOL=ON' "$KMS_BUILD_DIR/CMakeCache.txt"; then
        extra=(-fsanitize=address,undefined)
    fi
    for prog in "$@"; do
        # shellcheck disable=SC2046  # pkg-config output is meant to split into words
        if cc -Wall -Werror "${extra[@]}" -o "$TMP/$prog" "$KMS_SOURCE_DIR/examples/$prog.c" \
            $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs libkms openssl); then
            ok "examples/$prog.c builds against the installed libkms"
        else
            fail "examples/$prog.c does not build"
            exit 1
        fi
    done
}

# free_port: a TCP port of 127.0.0.1 that nobody listens on now
# epoch TIMESTAMP: seconds since the epoch of a timestamp as kmsctl prints it (ISO 8601 with an
# offset, as the aws CLI v2; quotes of a JSON string are dropped).
epoch() { date -u -d "${1//\"/}" +%s; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# faketime_required: stops the test unless libfaketime is installed; then at_time OFFSET CMD...
# runs CMD with the clock moved by OFFSET ("+91d", as faketime -f). It preloads the library
# itself rather than running the faketime wrapper, which forks and would hide the exit code, and
# tells ASan that a library preloaded before its runtime is fine.
faketime_required() {
    command -v faketime >/dev/null || { fail "faketime (libfaketime) is not installed"; exit 1; }
    FT_ENV="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
    FT_LIB=$(find /usr/lib -path '*faketime/libfaketimeMT.so.1' -print -quit)
    [ -n "$FT_LIB" ] || { fail "libfaketimeMT.so.1 not found"; exit 1; }
}
at_time() {
    local off=$1
    shift
    env "$FT_ENV" LD_PRELOAD="$FT_LIB" FAKETIME="$off" FAKETIME_DONT_RESET=1 "$@"
}

# ---- kmsd (the test sets KMSD, TMP and PIDS=()) ---------------------------------------------------
# start_kmsd NAME HOME [ARGS...]: kmsd on free ports (PORT for HTTPS, HPORT for plain HTTP), its
# output in $TMP/NAME.out and .err; sets PID (also added to PIDS) once it listens, else fails.
start_kmsd() {
    local name=$1 home=$2
    shift 2
    PORT=$(free_port)
    HPORT=$(free_port)
    "$KMSD" --home "$home" --listen "127.0.0.1:$PORT" --http-listen "127.0.0.1:$HPORT" "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 300); do
        grep -q "listening on https" "$TMP/$name.out" 2>/dev/null && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "listening on https" "$TMP/$name.out" ||
        { fail "kmsd $name does not start: $(cat "$TMP/$name.err")"; exit 1; }
}
# set_server HOME JSON_OBJECT: merged into config.json's "server"
set_server() {
    "$PY" - "$1/config.json" "$2" <<'EOF'
import json, os, sys
p = sys.argv[1]
c = json.load(open(p))
c.setdefault("server", {}).update(json.loads(sys.argv[2]))
open(p + ".t", "w").write(json.dumps(c, indent=2))
os.chmod(p + ".t", 0o600)
os.replace(p + ".t", p)
EOF
}
