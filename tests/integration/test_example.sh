#!/usr/bin/env bash
# The example program (examples/envelope_file.c) built the way an application would build it:
# against an installed libkms through pkg-config, then run on a KMS home to envelope-encrypt a
# file under a CMK and decrypt it again (and by kmsctl, to show both read the same format).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PREFIX="$TMP/prefix"
cmake --install "$KMS_BUILD_DIR" --prefix "$PREFIX" >/dev/null
pcdir=$(dirname "$(find "$PREFIX" -name libkms.pc | head -n 1)")
libdir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir libkms)
# A sanitized build of libkms needs the sanitizer runtime in the program too.
extra=()
if grep -q '^KMS_SANITIZE:BOOL=ON' "$KMS_BUILD_DIR/CMakeCache.txt"; then
    extra=(-fsanitize=address,undefined)
fi
# shellcheck disable=SC2046  # pkg-config output is meant to split into words
if cc -Wall -Werror "${extra[@]}" -o "$TMP/envelope_file" "$KMS_SOURCE_DIR/examples/envelope_file.c" \
    $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs libkms); then
    ok "the example builds against the installed libkms with pkg-config"
else
    fail "the example does not build"
    exit 1
fi
example() { LD_LIBRARY_PATH="$libdir" KMS_HOME="$HOME_DIR" "$TMP/envelope_file" "$@"; }

init_home
KEY=$(create_key SYMMETRIC_DEFAULT)
kms create-alias --alias-name alias/example --target-key-id "$KEY" >/dev/null
head -c 300000 /dev/urandom >"$TMP/plain"

if example encrypt alias/example "$TMP/plain" "$TMP/plain.kms"; then
    ok "example: encrypt under alias/example"
else
    fail "example: encrypt"
fi
if example decrypt "$TMP/plain.kms" "$TMP/back"; then
    assert_files_equal "$TMP/plain" "$TMP/back" "example: decrypt gives the file back"
else
    fail "example: decrypt"
fi
if kms decrypt -i "$TMP/plain.kms" -o "$TMP/back2" --key-id alias/example \
    --encryption-context purpose=example; then
    assert_files_equal "$TMP/plain" "$TMP/back2" "kmsctl decrypts what the example wrote"
else
    fail "kmsctl decrypt of the example's file"
fi
# A file that is not a message: a clear error, non-zero exit, no output.
if example decrypt "$TMP/plain" "$TMP/none" 2>"$TMP/err"; then
    fail "example: garbage decrypted"
else
    assert_contains "$(cat "$TMP/err")" "InvalidCiphertextException" "example: garbage refused"
    [ -e "$TMP/none" ] && fail "example: output left behind" || ok "example: no output left"
fi
