#!/usr/bin/env bash
# The README, tested: every ```sh / ```bash block of README.md runs, in the order it appears, in
# one bash with `set -euo pipefail`, as a newcomer would paste them: on a fresh HOME (so ~/.kms,
# the README's KMS home, is new), in an empty working directory, with `build/` meaning the build
# under test. A block that fails fails the test, naming the block, its README line and first line.
#
# Conventions of README.md (what this test reads):
# - ```sh and ```bash blocks are commands and run; any other fence (```console, ```text, ```json,
#   ```c) is not shell and does not run;
# - a shell block that must not run has `<!-- not-tested: REASON -->` as the last non-blank line
#   before its fence. This test prints every such block and its reason. Keep them rare: the
#   commands that are the CI itself (scripts/test.sh), or that build the tree under test;
# - `build/...` and the word `build` as a command argument (`cmake --install build`) are the build
#   directory; nothing else is rewritten. Each fence line becomes a marker and every other
#   non-block line an empty line, so the generated script's line numbers are README.md's.
#
# Environment: HOME is a new directory (the README writes ~/.kms, ~/.local); KMS_HOME and every
# credential variable are unset. On this machine's own network: when it can (root, unshare), the
# blocks run in a network namespace of their own, so kmsd's fixed ports (8443, 8080) cannot meet
# another test's and a block that reaches outside the machine fails. The `aws` on PATH is
# Debian's CLI v2 (/usr/bin/aws) when there is one; on a sanitized build `cc` adds the sanitizer
# (libkms.so needs its runtime in the program). Every process a block leaves behind (kmsd) is
# stopped when the script ends: the blocks run in a session of their own, killed as a whole.
# README_NETNS=no runs the blocks on the machine's network; README=FILE tests another README;
# README_OUT=FILE keeps the blocks' whole output.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

README=${README:-$KMS_SOURCE_DIR/README.md}
[ -f "$README" ] || { fail "no README at $README"; exit 1; }
BUILD=$(cd "$(dirname "$KMSCTL")" && pwd)
[ -x "$BUILD/kmsd" ] || { fail "kmsd is not built in $BUILD"; exit 1; }

# ---- the script: README.md's shell blocks at their own line numbers -----------------------------
SCRIPT="$TMP/readme.sh"
BLOCKS="$TMP/readme.blocks" # one line a block: NUMBER<TAB>LINE<TAB>run|skip<TAB>FIRST LINE OR REASON
if "$PY" - "$README" "$BUILD" "$SCRIPT" "$BLOCKS" >"$TMP/untagged" <<'PY'
import re, shlex, sys
readme, build, script, listing = sys.argv[1:5]
lines = open(readme, encoding="utf-8").read().split("\n")
fence = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
skip_marker = re.compile(r"^\s*<!--\s*not-tested:\s*(.*?)\s*-->\s*$")
# build/ at the start of a word, and `build` alone as an argument (cmake --install build)
build_word = re.compile(r"(?<![\w./$~-])build(?=/|\s|$|\))")
out = [""] * len(lines)
blocks = []
untagged = []
i = 0
while i < len(lines):
    m = fence.match(lines[i])
    if not m:
        i += 1
        continue
    indent, ticks, lang = m.group(1), m.group(2), m.group(3).lower()
    start = i
    j = i + 1
    while j < len(lines) and not re.match(r"^\s*" + re.escape(ticks[0]) + r"{%d,}\s*$" % len(ticks), lines[j]):
        j += 1
    if j == len(lines):
        sys.exit("README.md line %d: a fence that never closes" % (start + 1))
    body = [l[len(indent):] if l.startswith(indent) else l for l in lines[start + 1:j]]
    if lang == "":
        untagged.append(start + 1)
    if lang in ("sh", "bash"):
        k = start - 1
        while k >= 0 and lines[k].strip() == "":
            k -= 1
        skip = skip_marker.match(lines[k]) if k >= 0 else None
        n = len(blocks) + 1
        first = next((l.strip() for l in body if l.strip()), "(empty)")
        first = first if len(first) <= 100 else first[:97] + "..."
        if skip:
            blocks.append((n, start + 1, "skip", skip.group(1) or "(no reason given)"))
        else:
            blocks.append((n, start + 1, "run", first))
            out[start] = "__readme_block %d %d" % (n, start + 1)
            for off, l in enumerate(body):
                out[start + 1 + off] = build_word.sub(build, l)
    i = j + 1
prologue = "set -Eeuo pipefail; . \"$READMELIB\";"
out[0] = prologue + (" " + out[0] if out[0] else "")
open(script, "w", encoding="utf-8").write("\n".join(out) + "\n")
with open(listing, "w", encoding="utf-8") as f:
    for b in blocks:
        f.write("%d\t%d\t%s\t%s\n" % b)
# A fence without a language could hide commands from this test: say which it is.
for n in untagged:
    print("README.md line %d: a fence without a language: ```sh or ```bash (run here), "
          "```console or ```text (output, not run)" % n)
sys.exit(1 if untagged else 0)
PY
then
    ok "every fence of README.md names its language"
else
    [ -s "$TMP/untagged" ] || { fail "the blocks of $README could not be read"; exit 1; }
    while read -r l; do fail "$l"; done <"$TMP/untagged"
fi
if grep -q "^[0-9]*	[0-9]*	run	" "$BLOCKS"; then
    ok "README.md: $(grep -c '	run	' "$BLOCKS") shell blocks to run, $(grep -c '	skip	' "$BLOCKS" || true) marked not-tested"
else
    fail "README.md has no shell block to run"
    exit 1
fi
while IFS=$'\t' read -r n line _ reason; do
    echo "skip - README block $n (README.md line $line) is marked not-tested: $reason"
done < <(grep '	skip	' "$BLOCKS" || true)

# The helpers the script sources: where each block starts, and what failed.
cat >"$TMP/readmelib.sh" <<'EOF'
__readme_block() { printf '%s %s\n' "$1" "$2" >"$READMESTATE"; }
trap 'echo "README.md line $LINENO: \`$BASH_COMMAND\` exited $?" >&2' ERR
EOF

# ---- the environment: a new HOME, the build's tools, no credentials ----------------------------
USERHOME="$TMP/user"
WORK="$USERHOME/work"
BIN="$TMP/bin"
mkdir -p "$WORK" "$BIN"
if [ -x /usr/bin/aws ]; then ln -s /usr/bin/aws "$BIN/aws"; fi
if grep -q '^KMS_SANITIZE:BOOL=ON' "$KMS_BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
    printf '#!/bin/sh\nexec %s -fsanitize=address,undefined "$@"\n' "$(command -v cc)" >"$BIN/cc"
    chmod +x "$BIN/cc"
fi
# a pyenv shim (if one is on PATH) finds its root through HOME: keep it
export PYENV_ROOT="${PYENV_ROOT:-$HOME/.pyenv}"
export HOME="$USERHOME" PATH="$BIN:$PATH" READMELIB="$TMP/readmelib.sh" READMESTATE="$TMP/readme.state"
unset KMS_HOME KMS_ENDPOINT_URL KMS_CA_BUNDLE AWS_CA_BUNDLE AWS_DEFAULT_REGION AWS_REGION \
    AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE KMS_PASSWORD || true
echo "0 0" >"$READMESTATE"

# A network namespace of its own (loopback only) when unshare can make one.
RUN=(bash "$SCRIPT")
if [ "${README_NETNS:-yes}" = yes ] && [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null &&
    command -v ip >/dev/null && unshare -rn ip link set lo up 2>/dev/null; then
    # shellcheck disable=SC2016  # $0 expands in the namespace's bash
    RUN=(unshare -rn bash -c 'ip link set lo up && exec bash "$0"' "$SCRIPT")
    echo "# the blocks run in a network namespace of their own (loopback only)"
else
    echo "# the blocks run on this machine's network (no network namespace: not root, or no unshare)"
fi

START=$(date +%s)
rc=0
(cd "$WORK" && exec setsid "${RUN[@]}") </dev/null >"$TMP/readme.out" 2>&1 &
SID=$!
# the blocks' session goes too if this test is stopped early (lib.sh's _on_exit keeps the status)
# shellcheck disable=SC2154  # rc_ is set by the trap itself
trap 'rc_=$?; kill -TERM -- "-$SID" 2>/dev/null || true; (exit $rc_); _on_exit' EXIT
wait "$SID" || rc=$?
kill -TERM -- "-$SID" 2>/dev/null || true # whatever a block left running (kmsd)
ELAPSED=$(($(date +%s) - START))

read -r FAILED_BLOCK _ <"$READMESTATE"
while IFS=$'\t' read -r n line what first; do
    [ "$what" = run ] || continue
    if [ "$rc" -eq 0 ] || [ "$n" -lt "$FAILED_BLOCK" ]; then
        ok "README block $n (README.md line $line): $first"
    elif [ "$n" -eq "$FAILED_BLOCK" ]; then
        fail "README block $n (README.md line $line) failed (exit $rc): $first"
    else
        echo "not run - README block $n (README.md line $line): $first"
    fi
done <"$BLOCKS"
if [ "$rc" -ne 0 ]; then
    echo "# the last 40 lines of the blocks' output:" >&2
    tail -n 40 "$TMP/readme.out" | sed 's/^/#   /' >&2
    [ "$FAILED_BLOCK" -ne 0 ] || fail "the README's script failed before its first block (exit $rc)"
fi
echo "# the README's blocks ran in ${ELAPSED} s"
# README_OUT=FILE keeps the blocks' whole output (stdout and stderr) for a look.
if [ -n "${README_OUT:-}" ]; then cp "$TMP/readme.out" "$README_OUT"; fi
