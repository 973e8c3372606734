#!/usr/bin/env bash
# scripts/check-conventions.sh passes on the tree as committed, and fails, naming the place, when
# each of its rules is broken once: format, a private include from kmsctl, a global symbol
# without kms_, a control-flow macro, an error chain, a file over 800 lines.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHECK="$KMS_SOURCE_DIR/scripts/check-conventions.sh"
for lib in libkms_internal.a libkms.a libkms.so; do
    [ -f "$KMS_BUILD_DIR/$lib" ] || { echo "missing $KMS_BUILD_DIR/$lib: build first" >&2; exit 1; }
done

# fresh_tree: a copy of the tracked sources in $TMP/tree and of the libraries in $TMP/build.
fresh_tree() {
    rm -rf "$TMP/tree" "$TMP/build"
    mkdir -p "$TMP/tree" "$TMP/build"
    (cd "$KMS_SOURCE_DIR" && git ls-files -z -- src include tools tests examples scripts .clang-format |
        xargs -0 cp --parents -t "$TMP/tree")
    cp "$KMS_BUILD_DIR"/libkms_internal.a "$KMS_BUILD_DIR"/libkms.a "$TMP/build/"
    cp -L "$KMS_BUILD_DIR"/libkms.so "$TMP/build/"
}
# run_check: runs the copy's script; sets OUT and RC.
run_check() {
    RC=0
    OUT=$(cd "$TMP/tree" && bash scripts/check-conventions.sh "$TMP/build" 2>&1) || RC=$?
}
# expect_broken RULE NEEDLE: the check failed and reported RULE naming NEEDLE, a finding the
# unbroken copy ($CLEAN_OUT) did not have.
expect_broken() {
    local re="conventions: $1: [^"$'\n'"]*$2"
    assert_eq "$RC" 1 "$1 broken: the check exits 1"
    assert_match "$OUT" "$re" "$1 broken: the finding names $2"
    assert_ne "$([[ "$CLEAN_OUT" =~ $re ]] && echo before || echo new)" before \
        "$1 broken: the finding is new"
}

fresh_tree
# The copy is outside git: the script then lists the files itself.
rm -f "$TMP/tree/.git"
run_check
CLEAN_OUT=$OUT
assert_eq "$RC" 0 "the committed tree follows the conventions"
assert_contains "$OUT" "conventions: 0 problems" "and says so"
[ "$RC" -eq 0 ] || echo "$OUT" | head -20 >&2

# format
printf 'int  kms_misformatted (void) { return 0 ; }\n' >>"$TMP/tree/src/util/util.c"
run_check
expect_broken format "src/util/util.c"

# layers: kmsctl reaching into src/
fresh_tree
sed -i '0,/#include "kmsctl.h"/s//#include "kmsctl.h"\n#include "util\/util.h"/' "$TMP/tree/tools/kmsctl/main.c"
run_check
expect_broken layers 'tools/kmsctl/main.c:[0-9]+ includes "util/util.h"'

# symbols: a global function without the prefix in the library
fresh_tree
printf 'int helper_without_prefix(void);\nint helper_without_prefix(void) { return 1; }\n' >"$TMP/bad.c"
cc -c -o "$TMP/bad.o" "$TMP/bad.c"
ar q "$TMP/build/libkms_internal.a" "$TMP/bad.o" 2>/dev/null
run_check
expect_broken symbols "helper_without_prefix"

# macros: control flow hidden in a macro outside util/error.h
fresh_tree
printf '#define CHECK_OR_RETURN(x)                                                               \\\n    if (!(x))                                                                                  \\\n    return -1\n' >>"$TMP/tree/src/envelope/crypto.h"
run_check
expect_broken macros "src/envelope/crypto.h: line [0-9]+ defines CHECK_OR_RETURN"

# chains: r = r != 0 ? r : f()
fresh_tree
printf 'static int chain_demo(int r)\n{\n    r = r != 0 ? r : kms_chain_step();\n    return r;\n}\n' >"$TMP/chain.c"
cat "$TMP/chain.c" >>"$TMP/tree/src/util/util.c"
run_check
expect_broken chains "src/util/util.c:[0-9]+:"

# size: a file over 800 lines
fresh_tree
f="$TMP/tree/src/util/buf.c"
while [ "$(wc -l <"$f")" -le 800 ]; do printf '/* padding */\n' >>"$f"; done
run_check
expect_broken size "src/util/buf.c has 80[0-9] lines"
