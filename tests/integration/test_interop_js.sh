#!/usr/bin/env bash
# Interoperability of kmsctl encrypt/decrypt with the AWS Encryption SDK for JavaScript
# (@aws-crypto/client-node, pinned by tests/interop/package-lock.json, driven by
# tests/interop/esdk.mjs). Raw AES (256, 128) and raw RSA-3072 (OAEP-SHA256, PKCS#1 v1.5, and
# the other OAEP hashes once) wrapping keys; empty, 1, 4095, 4096, 4097 bytes and 3 MiB; the
# default suite, 0x0478 and 0x0578; messages made by the SDK decrypted by kmsctl and the other
# way round, compared byte for byte; the headers kmsctl writes checked through the SDK's parser;
# tampered messages and wrong keys rejected each way, leaving no output file.
#
# The SDK is installed with `npm ci` into $KMS_BUILD_DIR/interop (not in the source tree), once
# per lock file. Without node (>= 18) and npm, or when the install fails, the test prints
# SKIPPED and exits 77: it is never reported as passed without having run.
#
# INTEROP_KMSCTL=PROG runs PROG in place of $KMSCTL (to try the test with a stand-in).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# node >= 18, npm and the SDKs in $ESDK_NODE_PREFIX, or SKIPPED (before lib.sh, whose exit
# trap would turn a skip into a failure).
. "$HERE/interop_lib.sh"
ESDK_VERSION=$(node -p 'require(process.argv[1]).version' \
    "$ESDK_NODE_PREFIX/node_modules/@aws-crypto/client-node/package.json")
echo "# AWS Encryption SDK for JavaScript $ESDK_VERSION on node $(node --version)"

if [ -n "${INTEROP_KMSCTL:-}" ]; then
    KMSCTL=$INTEROP_KMSCTL
    export KMSCTL
fi
. "$HERE/lib.sh"

js() { node "$INTEROP_SRC/esdk.mjs" "$@"; }
# kmsctl's encrypt/decrypt work on raw keyrings without a KMS home.
kmsctl() { "$KMSCTL" "$@"; }

W="$TMP/w"
NEG="$TMP/neg" # the only files here are the outputs of failing commands: there must be none
mkdir "$W" "$NEG"

# ---- keys, contexts, plaintexts ----------------------------------------------------------------

head -c 32 /dev/urandom >"$W/aes256.key"
head -c 16 /dev/urandom >"$W/aes128.key"
head -c 32 /dev/urandom >"$W/other.key"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$W/rsa.pem" 2>"$TMP/last.err"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$W/rsa-other.pem" \
    2>"$TMP/last.err"

NS="kms-interop"
# shellcheck disable=SC2034  # the K_* arrays are used through namerefs
{
K_AES256=(--wrapping-key-file "$W/aes256.key" --key-namespace "$NS" --key-name aes256-wrapping-key)
K_AES128=(--wrapping-key-file "$W/aes128.key" --key-namespace "$NS" --key-name aes128-wrapping-key)
K_RSA_OAEP256=(--wrapping-key-file "$W/rsa.pem" --key-namespace "$NS" --key-name rsa-3072
    --wrapping-algorithm RSA_OAEP_SHA256)
K_RSA_PKCS1=(--wrapping-key-file "$W/rsa.pem" --key-namespace "$NS" --key-name rsa-3072
    --wrapping-algorithm RSA_PKCS1)
K_RSA_OAEP1=(--wrapping-key-file "$W/rsa.pem" --key-namespace "$NS" --key-name rsa-3072
    --wrapping-algorithm RSA_OAEP_SHA1)
K_RSA_OAEP384=(--wrapping-key-file "$W/rsa.pem" --key-namespace "$NS" --key-name rsa-3072
    --wrapping-algorithm RSA_OAEP_SHA384)
K_RSA_OAEP512=(--wrapping-key-file "$W/rsa.pem" --key-namespace "$NS" --key-name rsa-3072
    --wrapping-algorithm RSA_OAEP_SHA512)
}
# Several pairs, one value with a space, one key and value beyond ASCII (the context is sorted
# and serialised as UTF-8 on both sides).
CTX=(--encryption-context purpose=interop --encryption-context "dept=key management"
    --encryption-context "région=Île-de-France")

SIZES=(0 1 4095 4096 4097 3145728)
for n in "${SIZES[@]}"; do
    head -c "$n" /dev/urandom >"$W/pt.$n"
done

# ---- helpers -----------------------------------------------------------------------------------

# run_ok WHAT CMD...: run CMD; on failure record WHAT as failed (with its stderr) and return 1.
run_ok() {
    local what=$1 rc=0
    shift
    "$@" >"$TMP/last.out" 2>"$TMP/last.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$what: exit $rc: $(head -c 600 "$TMP/last.err" | tr '\n' ' ')"
        return 1
    fi
}

# expect_rejected WHAT USAGE_RC OUT CMD...: CMD must fail (but not with USAGE_RC, which would
# mean the options are wrong rather than the message), say why on stderr, and leave neither OUT
# nor any other file in $NEG.
expect_rejected() {
    local what=$1 usage_rc=$2 out=$3 rc=0 before after
    shift 3
    before=$(ls -A "$NEG")
    "$@" >"$TMP/last.out" 2>"$TMP/last.err" || rc=$?
    after=$(ls -A "$NEG")
    if [ "$rc" -eq 0 ]; then
        fail "$what: succeeded"
    elif [ "$rc" -eq "$usage_rc" ]; then
        fail "$what: a usage error (exit $rc): $(head -c 400 "$TMP/last.err" | tr '\n' ' ')"
    elif [ -e "$out" ]; then
        fail "$what: exit $rc but $out exists"
    elif [ "$before" != "$after" ]; then
        fail "$what: exit $rc but left files: $(echo "$after" | tr '\n' ' ')"
    elif [ ! -s "$TMP/last.err" ]; then
        fail "$what: exit $rc without a message on stderr"
    else
        ok "$what (exit $rc)"
    fi
    rm -f "$out"
}

# flip_byte FILE OFFSET: xor one byte with 0x01 (a negative OFFSET counts from the end)
flip_byte() {
    "$PY" - "$1" "$2" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
data = bytearray(open(path, "rb").read())
data[off] ^= 0x01
open(path, "wb").write(data)
PY
}

hex_of() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# suite_args TOOL SUITE: the suite option of js or kmsctl, nothing for "default"
suite_args() {
    if [ "$2" = default ]; then return 0; fi
    if [ "$1" = js ]; then echo "--suite $2"; else echo "--algorithm-suite $2"; fi
}

# js_to_kmsctl LABEL KEYARRAY SIZE SUITE [FRAME]: the SDK encrypts, kmsctl decrypts.
js_to_kmsctl() {
    local label=$1 size=$3 suite=$4 frame=${5:-} f
    local -n key=$2
    f="$W/js.$label.$size.$suite${frame:+.f$frame}"
    local extra=()
    # shellcheck disable=SC2207
    extra=($(suite_args js "$suite"))
    [ -n "$frame" ] && extra+=(--frame-length "$frame")
    local what="JS encrypt -> kmsctl decrypt: $label, $size bytes, suite $suite${frame:+, frame $frame}"
    run_ok "$what (JS encrypt)" js encrypt -i "$W/pt.$size" -o "$f.enc" "${key[@]}" "${CTX[@]}" \
        "${extra[@]}" || return 0
    run_ok "$what (kmsctl decrypt)" kmsctl decrypt -i "$f.enc" -o "$f.out" "${key[@]}" \
        "${CTX[@]}" || return 0
    assert_files_equal "$f.out" "$W/pt.$size" "$what"
    rm -f "$f.out"
}

# kmsctl_to_js LABEL KEYARRAY SIZE SUITE [FRAME]: kmsctl encrypts, the SDK decrypts and parses
# the header (left in $f.hdr.json for checks).
LAST_HDR=""
kmsctl_to_js() {
    local label=$1 size=$3 suite=$4 frame=${5:-} f
    local -n key=$2
    f="$W/kms.$label.$size.$suite${frame:+.f$frame}"
    local extra=()
    # shellcheck disable=SC2207
    extra=($(suite_args kmsctl "$suite"))
    [ -n "$frame" ] && extra+=(--frame-length "$frame")
    local what="kmsctl encrypt -> JS decrypt: $label, $size bytes, suite $suite${frame:+, frame $frame}"
    LAST_HDR=""
    run_ok "$what (kmsctl encrypt)" kmsctl encrypt -i "$W/pt.$size" -o "$f.enc" "${key[@]}" \
        "${CTX[@]}" "${extra[@]}" || return 0
    run_ok "$what (JS decrypt)" js decrypt -i "$f.enc" -o "$f.out" "${key[@]}" "${CTX[@]}" \
        --header-out "$f.hdr.json" || return 0
    assert_files_equal "$f.out" "$W/pt.$size" "$what"
    LAST_HDR="$f.hdr.json"
    if [ "$suite" != default ]; then
        assert_eq "$(json_get suiteId <"$f.hdr.json")" "$suite" "  ... the message has suite $suite"
    fi
    if [ -n "$frame" ]; then
        assert_eq "$(json_get frameLength <"$f.hdr.json")" "$frame" "  ... and frame length $frame"
    fi
    rm -f "$f.out"
}

# ---- the JS side works on its own --------------------------------------------------------------

for key in K_AES256 K_AES128 K_RSA_OAEP256 K_RSA_PKCS1; do
    declare -n k=$key
    what="JS -> JS round trip, $key"
    if run_ok "$what (encrypt)" js encrypt -i "$W/pt.4097" -o "$W/self.enc" "${k[@]}" "${CTX[@]}" &&
        run_ok "$what (decrypt)" js decrypt -i "$W/self.enc" -o "$W/self.out" "${k[@]}" "${CTX[@]}"; then
        assert_files_equal "$W/self.out" "$W/pt.4097" "$what"
    fi
    unset -n k
done
expect_rejected "JS decrypt refuses a context pair the message lacks" 2 "$NEG/self.out" \
    js decrypt -i "$W/self.enc" -o "$NEG/self.out" "${K_RSA_PKCS1[@]}" --encryption-context purpose=other
rm -f "$W/self.enc" "$W/self.out"

# ---- round trips -------------------------------------------------------------------------------

for key in K_AES256 K_AES128 K_RSA_OAEP256 K_RSA_PKCS1; do
    label=${key#K_}
    for suite in default 0x0478 0x0578; do
        for size in "${SIZES[@]}"; do
            js_to_kmsctl "$label" "$key" "$size" "$suite"
            kmsctl_to_js "$label" "$key" "$size" "$suite"
        done
        # What kmsctl writes into the header, seen by the SDK's parser (LAST_HDR: 3 MiB).
        if [ -n "$LAST_HDR" ]; then
            hdr=$LAST_HDR
            assert_eq "$(json_get version <"$hdr")" 2 "  ... $label/$suite: a version 2 message"
            assert_match "$(json_get suiteId <"$hdr")" '^0x0[45]78$' \
                "  ... $label/$suite: a committing suite"
            assert_eq "$(json_get 'encryptionContext.purpose' <"$hdr")" interop \
                "  ... $label/$suite: the context is in the header"
            assert_eq "$(json_get 'encryptedDataKeys[0].providerId' <"$hdr")" "$NS" \
                "  ... $label/$suite: the provider id is the key namespace"
            info=$(json_get 'encryptedDataKeys[0].providerInfoHex' <"$hdr")
            case $label in
            AES*)
                # ESDK raw-aes-keyring.md: key name, tag length in bits (128), IV length (12), IV
                name=${label,,}-wrapping-key
                assert_match "$info" "^$(hex_of "$name")000000800000000c[0-9a-f]{24}\$" \
                    "  ... $label/$suite: raw AES provider info is name + 128 + 12 + IV"
                ;;
            RSA*)
                assert_eq "$info" "$(hex_of rsa-3072)" \
                    "  ... $label/$suite: raw RSA provider info is the key name"
                ;;
            esac
        fi
    done
done

# The other OAEP hashes, once each way.
for key in K_RSA_OAEP1 K_RSA_OAEP384 K_RSA_OAEP512; do
    js_to_kmsctl "${key#K_}" "$key" 4097 default
    kmsctl_to_js "${key#K_}" "$key" 4097 default
done

# Frame lengths other than the default, both ways: one-byte frames, a plaintext that is an exact
# multiple of the frame (an empty final frame or not, both sides must agree), large frames.
for spec in 4097:1 4096:4096 4096:1024 4097:4097 3145728:65536 3145728:1000000 1:4096; do
    size=${spec%%:*}
    frame=${spec##*:}
    js_to_kmsctl AES256 K_AES256 "$size" 0x0478 "$frame"
    kmsctl_to_js AES256 K_AES256 "$size" 0x0478 "$frame"
    js_to_kmsctl AES256 K_AES256 "$size" 0x0578 "$frame"
    kmsctl_to_js AES256 K_AES256 "$size" 0x0578 "$frame"
done

# ---- negative cases ----------------------------------------------------------------------------

for key in K_AES256 K_RSA_OAEP256; do
    label=${key#K_}
    declare -n k=$key
    case $label in
    AES*) wrong_key=(--wrapping-key-file "$W/other.key" "${k[@]:2}") ;;
    RSA*) wrong_key=(--wrapping-key-file "$W/rsa-other.pem" "${k[@]:2}") ;;
    esac
    wrong_name=("${k[@]}")
    wrong_name[5]=no-such-key
    for suite in 0x0478 0x0578; do
        for size in 4097 3145728; do
            # Messages of the SDK that kmsctl must refuse.
            src="$W/js.$label.$size.$suite.enc"
            [ -f "$src" ] || { fail "no SDK message $src to tamper with"; continue; }
            what="kmsctl decrypt of an SDK message ($label, $suite, $size bytes)"
            expect_rejected "$what with the wrong key name" 252 "$NEG/out" \
                kmsctl decrypt -i "$src" -o "$NEG/out" "${wrong_name[@]}" "${CTX[@]}"
            expect_rejected "$what with the wrong key" 252 "$NEG/out" \
                kmsctl decrypt -i "$src" -o "$NEG/out" "${wrong_key[@]}" "${CTX[@]}"
            expect_rejected "$what with a wrong context value" 252 "$NEG/out" \
                kmsctl decrypt -i "$src" -o "$NEG/out" "${k[@]}" --encryption-context purpose=other
            for off in 40 $((size / 2 + 600)) -1; do
                cp "$src" "$W/bad.enc"
                flip_byte "$W/bad.enc" "$off"
                expect_rejected "$what with byte $off flipped" 252 "$NEG/out" \
                    kmsctl decrypt -i "$W/bad.enc" -o "$NEG/out" "${k[@]}" "${CTX[@]}"
            done
            head -c $((size / 2)) "$src" >"$W/bad.enc"
            expect_rejected "$what cut in half" 252 "$NEG/out" \
                kmsctl decrypt -i "$W/bad.enc" -o "$NEG/out" "${k[@]}" "${CTX[@]}"

            # Messages of kmsctl that the SDK must refuse.
            src="$W/kms.$label.$size.$suite.enc"
            [ -f "$src" ] || { fail "no kmsctl message $src to tamper with"; continue; }
            what="JS decrypt of a kmsctl message ($label, $suite, $size bytes)"
            expect_rejected "$what with the wrong key name" 2 "$NEG/out" \
                js decrypt -i "$src" -o "$NEG/out" "${wrong_name[@]}" "${CTX[@]}"
            expect_rejected "$what with the wrong key" 2 "$NEG/out" \
                js decrypt -i "$src" -o "$NEG/out" "${wrong_key[@]}" "${CTX[@]}"
            for off in 40 $((size / 2 + 600)) -1; do
                cp "$src" "$W/bad.enc"
                flip_byte "$W/bad.enc" "$off"
                expect_rejected "$what with byte $off flipped" 2 "$NEG/out" \
                    js decrypt -i "$W/bad.enc" -o "$NEG/out" "${k[@]}" "${CTX[@]}"
            done
            head -c $((size / 2)) "$src" >"$W/bad.enc"
            expect_rejected "$what cut in half" 2 "$NEG/out" \
                js decrypt -i "$W/bad.enc" -o "$NEG/out" "${k[@]}" "${CTX[@]}"
        done
    done
    unset -n k
done
rm -f "$W/bad.enc"

# ---- The official ESDK vectors: both implementations read them the same ------------------------
# The plaintext file shipped with the vectors matches only the required-encryption-context ones
# (tests/unit/test_envelope.c checks those against it); for the default-CMM ones the unit test
# pins the bytes the SDK gets. Here the SDK and kmsctl decrypt the default-CMM vectors and must
# give the same bytes (the SDK's decrypt cannot take a required context with a raw keyring).
VEC=${KMS_VECTORS_DIR:-$KMS_SOURCE_DIR/../shared/vectors}
if [ -f "$VEC/esdk/manifest.json" ]; then
    "$PY" -c 'import base64,json,sys; k=json.load(open(sys.argv[1]))["keys"]["aes-256"]; sys.stdout.buffer.write(base64.b64decode(k["material"]))' \
        "$VEC/esdk/keys.json" >"$W/vector.key"
    for ct in "$VEC"/esdk/ciphertexts/*cmm_Default*; do
        name=$(basename "$ct")
        vk=(--wrapping-key-file "$W/vector.key" --key-namespace aws-raw-vectors-persistant
            --key-name aes-256 --commitment-policy REQUIRE_ENCRYPT_ALLOW_DECRYPT
            --encryption-context key1=val1 --encryption-context key2=val2)
        if js decrypt -i "$ct" -o "$W/vec.js" "${vk[@]}" >/dev/null 2>&1 &&
            kmsctl decrypt -i "$ct" -o "$W/vec.kms" "${vk[@]}" 2>/dev/null; then
            assert_files_equal "$W/vec.js" "$W/vec.kms" "vector $name: kmsctl and the SDK agree"
        else
            fail "vector $name: one implementation did not decrypt it"
        fi
    done
else
    echo "SKIPPED: vector agreement (no vectors at $VEC)"
fi
