#!/usr/bin/env bash
# Envelope encryption of files through kmsctl encrypt / decrypt / re-encrypt (AWS Encryption SDK
# messages): round trips over sizes, suites and frame lengths, KMS, raw AES, raw RSA and
# multi-keyrings, encryption context, pipes, and the negative cases: every single-bit flip,
# every truncation at a frame boundary, reordered frames, garbage and empty input must fail
# and leave no output file behind.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_home
ACCOUNT=$(json_get AccountId <"$TMP/init.json")
arn_of() { echo "arn:aws:kms:us-east-1:$ACCOUNT:key/$1"; }
W="$TMP/w"
mkdir "$W"

A=$(create_key SYMMETRIC_DEFAULT)
B=$(create_key SYMMETRIC_DEFAULT)
C=$(create_key SYMMETRIC_DEFAULT)
kms create-alias --alias-name alias/a --target-key-id "$A" >/dev/null

# kmsctl without a KMS home (KMS_HOME names a directory that does not exist, see lib.sh).
nohome() { "$KMSCTL" "$@"; }

# ---- message surgery helpers (python) ----------------------------------------------------------
# esdk.py layout FILE: prints "header_end frame_start:frame_end ... footer_start total" of a
# framed v2 message (data-format/message-header.md, message-body.md, message-footer.md).
cat >"$W/esdk.py" <<'PY'
import os, struct, subprocess, sys

def u16(d, p): return struct.unpack(">H", d[p:p + 2])[0]
def u32(d, p): return struct.unpack(">I", d[p:p + 4])[0]

def layout(d):
    assert d[0] == 2, "not a v2 message"
    p = 1 + 2 + 32
    p += 2 + u16(d, p)                       # encryption context (AAD)
    n = u16(d, p); p += 2
    for _ in range(n):                       # encrypted data keys
        for _ in range(3):
            p += 2 + u16(d, p)
    assert d[p] == 2, "not framed"
    frame_len = u32(d, p + 1)
    p += 1 + 4 + 32 + 16                     # content type, frame length, commit key, tag
    header_end = p
    frames = []
    while True:
        if u32(d, p) == 0xFFFFFFFF:
            end = p + 4 + 4 + 12 + 4 + u32(d, p + 20) + 16
            frames.append((p, end, True))
            p = end
            break
        end = p + 4 + 12 + frame_len + 16
        frames.append((p, end, False))
        p = end
    return header_end, frames, p, len(d)

def run_all(kmsctl_args, variants, workdir):
    """Decrypts every (name, bytes) variant; returns the names that did not fail cleanly."""
    bad = []
    src = os.path.join(workdir, "in.bin")
    outdir = os.path.join(workdir, "out")
    os.makedirs(outdir, exist_ok=True)
    for name, data in variants:
        with open(src, "wb") as f:
            f.write(data)
        p = subprocess.run(kmsctl_args + ["-i", src, "-o", os.path.join(outdir, "pt")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        left = os.listdir(outdir)
        err = p.stderr.decode("utf-8", "replace")
        if p.returncode != 254 or left or p.stdout or not err.startswith('{"__type": '):
            bad.append("%s (rc %d, left %s, stderr %s)" % (name, p.returncode, left, err[:120]))
            for x in left:
                os.unlink(os.path.join(outdir, x))
    return bad

def flips(d, stride=1):
    """Single-bit flips: every header byte, the fields of every frame, every footer byte (with
    stride > 1: every stride-th header and footer byte, the fields of the first two and the last
    two frames)."""
    header_end, frames, footer, total = layout(d)
    pos = set(range(0, header_end, stride)) | {header_end - 1}
    if stride > 1:
        frames = frames[:2] + frames[-2:]
    for start, end, final in frames:
        fields = [start, start + 3, start + 4, start + 15, start + 16, (start + end) // 2,
                  end - 17, end - 16, end - 1]
        if final:
            fields += list(range(start, start + 24))
        pos.update(x for x in fields if start <= x < end)
    pos.update(range(footer, total, stride))
    out = []
    for i in sorted(pos):
        v = bytearray(d)
        v[i] ^= 1 << (i % 8)
        out.append(("flip byte %d bit %d" % (i, i % 8), bytes(v)))
    return out

def truncations(d):
    header_end, frames, footer, total = layout(d)
    cuts = {0, 1, 2, 3, 35, 36, header_end - 17, header_end - 1, header_end, header_end + 1,
            total - 1}
    for start, end, _ in frames:
        cuts.update({start, start + 4, start + 16, end - 16, end - 1, end})
    cuts.update(range(footer, total, 7))
    cuts.discard(total)  # the whole message
    return [("truncated to %d of %d" % (n, total), d[:n]) for n in sorted(cuts)]

def reorders(d):
    header_end, frames, footer, total = layout(d)
    h, tail = d[:header_end], d[footer:]
    fr = [d[s:e] for s, e, _ in frames]
    assert len(fr) >= 5, "need at least 5 frames"
    return [
        ("frame 2 duplicated", h + b"".join(fr[:2] + [fr[1]] + fr[2:]) + tail),
        ("frames 2 and 3 swapped", h + b"".join([fr[0], fr[2], fr[1]] + fr[3:]) + tail),
        ("frame 3 dropped", h + b"".join(fr[:2] + fr[3:]) + tail),
        ("first frame moved last before the final", h + b"".join(fr[1:-1] + [fr[0], fr[-1]]) + tail),
        ("final frame dropped", h + b"".join(fr[:-1]) + tail),
        ("final frame duplicated", h + b"".join(fr + [fr[-1]]) + tail),
        ("a byte appended", d + b"\0"),
        ("the message twice", d + d),
    ]

if __name__ == "__main__":
    mode, msg, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
    d = open(msg, "rb").read()
    if mode == "layout":
        header_end, frames, footer, total = layout(d)
        print(header_end, len(frames), footer, total)
        sys.exit(0)
    variants = {"flips": flips, "some-flips": lambda d: flips(d, 5), "truncations": truncations,
                "reorders": reorders}[mode](d)
    bad = run_all(sys.argv[4:], variants, workdir)
    print(len(variants))
    for b in bad:
        print(b)
PY
esdk() { "$PY" "$W/esdk.py" "$@"; }

# surgery MODE MESSAGE WHAT KMSCTL-ARGS...: kmsctl ARGS -i VARIANT -o FILE must fail with 254 for
# every variant and leave no file.
surgery() {
    local mode=$1 msg=$2 what=$3 out n
    shift 3
    rm -rf "$W/surgery"
    mkdir "$W/surgery"
    out=$(esdk "$mode" "$msg" "$W/surgery" "$KMSCTL" "$@")
    n=$(head -1 <<<"$out")
    if [ "$(wc -l <<<"$out")" -eq 1 ] && [ "$n" -gt 0 ]; then
        ok "$what: all $n variants fail (254) and leave no output"
    else
        fail "$what: $(($(wc -l <<<"$out") - 1)) of $n variants did not fail cleanly: $(sed -n '2,6p' <<<"$out" | tr '\n' ';')"
    fi
}

# no_output DIR MESSAGE: DIR holds no file (not even a temporary one)
no_output() {
    local left
    left=$(find "$1" -mindepth 1 -printf '%f ')
    if [ -z "$left" ]; then ok "$2"; else fail "$2: left $left"; fi
}

# ---- round trips with a CMK: sizes x suites x frame lengths -------------------------------------
for size in 0 1 4095 4096 4097 3145728; do
    head -c "$size" /dev/urandom >"$W/pt.$size"
done
for suite in default 0x0578; do
    for frame in 4096 1000; do
        fails=""
        for size in 0 1 4095 4096 4097 3145728; do
            args=(--key-id "$A" --frame-length "$frame")
            [ "$suite" = default ] || args+=(--algorithm-suite "$suite")
            rm -f "$W/ct" "$W/out"
            kms encrypt "${args[@]}" -i "$W/pt.$size" -o "$W/ct"
            kms decrypt --key-id "$A" -i "$W/ct" -o "$W/out" --metadata-output "$W/md.json"
            cmp -s "$W/out" "$W/pt.$size" || fails+=" $size"
        done
        want=$([ "$suite" = default ] && echo 0x0478 || echo 0x0578)
        assert_eq "$fails" "" "round trip, suite $want, frame $frame, sizes 0 1 4095 4096 4097 3MiB"
        md=$(cat "$W/md.json")
        assert_eq "$(json_get AlgorithmSuite <<<"$md")/$(json_get FrameLength <<<"$md")/$(json_get MessageFormatVersion <<<"$md")" \
            "$want/$frame/2" "metadata: suite $want, frame $frame, version 2"
    done
done
assert_eq "$(json_get KeyProviderId <"$W/md.json")" aws-kms "metadata: KeyProviderId"
assert_eq "$(json_get KeyProviderInfo <"$W/md.json")" "$(arn_of "$A")" "metadata: KeyProviderInfo is the key ARN"
assert_eq "$("$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["EncryptionContext"]["aws-crypto-public-key"]))' <"$W/md.json")" 68 \
    "metadata: a signed message's context holds its public key (compressed P-384 point, base64)"
# One worker, a plaintext that is no multiple of anything.
head -c 1234567 /dev/urandom >"$W/pt.odd"
kms encrypt --key-id "$A" --threads 1 --frame-length 65536 -i "$W/pt.odd" -o "$W/ct"
kms decrypt --key-id alias/a --threads 3 -i "$W/ct" -o "$W/out"
assert_files_equal "$W/out" "$W/pt.odd" "round trip with --threads 1 / 3 and decrypt by alias"
if cmp -s <(head -c 64 "$W/pt.odd") <(head -c 64 "$W/ct"); then fail "ciphertext starts like the plaintext"; else ok "ciphertext is not the plaintext"; fi

# ---- two CMKs, strict and discovery decrypt ----------------------------------------------------
PT="$W/pt.4097"
kms encrypt --key-id "$A" --key-id "$B" -i "$PT" -o "$W/ab.ct"
for k in "$A" "$B"; do
    kms decrypt --key-id "$k" -i "$W/ab.ct" -o "$W/out" --metadata-output "$W/md.json"
    assert_files_equal "$W/out" "$PT" "two CMKs: decrypt with only --key-id ${k:0:8}"
    assert_eq "$(json_get KeyProviderInfo <"$W/md.json")" "$(arn_of "$k")" "two CMKs: the key used was ${k:0:8}"
done
kms decrypt --discovery -i "$W/ab.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "two CMKs: decrypt with --discovery"
kms encrypt --key-id "$A" "$B" -i "$PT" -o "$W/ab2.ct"
kms decrypt --key-id "$B" -i "$W/ab2.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "--key-id A B (one option, two values) wraps for both"
rm -f "$W/out"
expect_error NotFoundException 254 kms decrypt --key-id "$C" -i "$W/ab.ct" -o "$W/out"
if [ -e "$W/out" ]; then fail "strict decrypt with a wrong key left an output"; else ok "strict decrypt with a wrong key leaves no output"; fi
expect_error LimitExceededException 254 kms decrypt --key-id "$A" --max-encrypted-data-keys 1 -i "$W/ab.ct" -o "$W/out"
kms decrypt --key-id "$A" --max-encrypted-data-keys 2 -i "$W/ab.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "--max-encrypted-data-keys 2 accepts two"
# ---- many encrypted data keys: refused before any KMS call (issue 15 item 6) --------------------
# Records of the trail: all of them (lines of the segments), or those of one event name since
# this section began (one page of lookup-events is enough once the fix is in).
records() { cat "$HOME_DIR"/audit/segments/*.jsonl | grep -c '"eventName"' || true; }
SINCE=$(($(date +%s) - 1))
events_named() {
    kms lookup-events --lookup-attributes "AttributeKey=EventName,AttributeValue=$1" \
        --start-time "$SINCE" --max-items 50 |
        "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["Events"]))'
}
# junk_edks IN OUT N ARN: IN's header with N junk encrypted data keys of ARN in place of its own
# (data-format/message-header.md, version 2); the header tag no longer matches, but the count of
# keys is read first.
cat >"$W/junk_edks.py" <<'PY'
import os, struct, sys
src, dst, n, arn = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
d = open(src, "rb").read()
u16 = lambda p: struct.unpack(">H", d[p:p + 2])[0]
assert d[0] == 2
p = 1 + 2 + 32
p += 2 + u16(p)
start, count = p, u16(p)
p += 2
for _ in range(count):
    for _ in range(3):
        p += 2 + u16(p)
edk = b"".join(struct.pack(">H", len(x)) + x for x in (b"aws-kms", arn, os.urandom(150)))
open(dst, "wb").write(d[:start] + struct.pack(">H", n) + edk * n + d[p:])
PY
kms encrypt --key-id "$A" -i "$PT" -o "$W/a.ct"
"$PY" "$W/junk_edks.py" "$W/a.ct" "$W/junk3000.ct" 3000 "$(arn_of "$A")"
n_dec=$(events_named Decrypt)
n_all=$(records)
rm -f "$W/out"
expect_error LimitExceededException 254 kms decrypt --key-id "$A" -i "$W/junk3000.ct" -o "$W/out"
n_all=$(($(records) - n_all))
assert_eq "$ERR_MSG" "the message has 3000 encrypted data keys, more than the maximum of 10: refused before trying any (raise max_encrypted_data_keys, kmsctl: --max-encrypted-data-keys, only for messages you expect to have that many)" \
    "3000 junk encrypted data keys: refused by the default limit with the exact message"
assert_eq "$n_all" "1" "3000 junk encrypted data keys: one audit record (the keyring's DescribeKey)"
assert_eq "$(events_named Decrypt)" "$n_dec" "3000 junk encrypted data keys: no KMS Decrypt call"
if [ -e "$W/out" ]; then fail "the refused message left an output"; else ok "the refused message leaves no output"; fi
expect_error LimitExceededException 254 kms decrypt --discovery -i "$W/junk3000.ct" -o "$W/out"
assert_eq "$(events_named Decrypt)" "$n_dec" "discovery: 3000 junk encrypted data keys, no KMS Decrypt call"
expect_error LimitExceededException 254 kms decrypt --key-id "$A" --max-encrypted-data-keys 2999 -i "$W/junk3000.ct" -o "$W/out"
assert_contains "$ERR_MSG" "more than the maximum of 2999" "--max-encrypted-data-keys sets the limit"
# Ten is the default: eleven keys are refused both ways, unless the limit is raised.
K11=()
for _ in 1 2 3 4 5 6 7 8 9 10 11; do K11+=(--key-id "$A"); done
expect_error LimitExceededException 254 kms encrypt "${K11[@]}" -i "$PT" -o "$W/k11.ct"
assert_contains "$ERR_MSG" "11 encrypted data keys exceed the maximum of 10" "encrypt refuses 11 encrypted data keys by default"
kms encrypt "${K11[@]}" --max-encrypted-data-keys 11 -i "$PT" -o "$W/k11.ct"
expect_error LimitExceededException 254 kms decrypt --key-id "$A" -i "$W/k11.ct" -o "$W/out"
kms decrypt --key-id "$A" --max-encrypted-data-keys 11 -i "$W/k11.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "--max-encrypted-data-keys 11 decrypts eleven"
# The first data key that decrypts is used, and no later one is tried: a message wrapped by B, A
# and C with B disabled takes exactly two Decrypt calls (B refused, A), not three.
kms encrypt --key-id "$B" --key-id "$A" --key-id "$C" -i "$PT" -o "$W/bac.ct"
kms disable-key --key-id "$B"
n_dec=$(events_named Decrypt)
kms decrypt --key-id "$A" "$B" "$C" -i "$W/bac.ct" -o "$W/out" --metadata-output "$W/md.json"
assert_files_equal "$W/out" "$PT" "B disabled: the message decrypts with A"
assert_eq "$(json_get KeyProviderInfo <"$W/md.json")" "$(arn_of "$A")" "B disabled: A's data key was used"
assert_eq "$(($(events_named Decrypt) - n_dec))" "2" "B disabled: two Decrypt calls (B refused, A), C not tried"
kms enable-key --key-id "$B"
n_dec=$(events_named Decrypt)
kms decrypt --key-id "$A" "$B" "$C" -i "$W/bac.ct" -o "$W/out"
assert_eq "$(($(events_named Decrypt) - n_dec))" "1" "one Decrypt call when the first data key decrypts"

kms disable-key --key-id "$A"
expect_error DisabledException 254 kms decrypt --key-id "$A" -i "$W/ab.ct" -o "$W/out2"
kms decrypt --discovery -i "$W/ab.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "discovery falls back to the other key when one is disabled"
kms enable-key --key-id "$A"

# ---- pipes and special outputs -----------------------------------------------------------------
# Two kmsctl on one home at the same moment can fail to find the SoftHSM token (a known issue of
# the HSM layer, not of envelope encryption), so the KMS pipes have cat on the other end.
# shellcheck disable=SC2002  # the cats are the point: stdin and stdout are pipes
cat "$W/pt.3145728" | kms encrypt --key-id "$A" | cat >"$W/pipe.ct"
# shellcheck disable=SC2002
cat "$W/pipe.ct" | kms decrypt --key-id "$A" | cat >"$W/out"
assert_files_equal "$W/out" "$W/pt.3145728" "stdin -> stdout through pipes both ways (3 MiB)"
kms encrypt --key-id "$A" -i - -o - <"$PT" >"$W/pipe.ct"
kms decrypt --key-id "$A" -i - -o "$W/out" <"$W/pipe.ct"
assert_files_equal "$W/out" "$PT" "-i - / -o - are stdin / stdout"
head -c 32 /dev/urandom >"$W/pipe.key"
nohome encrypt --wrapping-key-file "$W/pipe.key" --key-namespace p --key-name k <"$W/pt.3145728" \
    | nohome decrypt --wrapping-key-file "$W/pipe.key" --key-namespace p --key-name k >"$W/out"
assert_files_equal "$W/out" "$W/pt.3145728" "encrypt | decrypt in one pipe (raw AES, 3 MiB)"
kms decrypt --key-id "$A" -i "$W/ab.ct" -o /dev/null
ok "decrypt to /dev/null"
if [ -c /dev/null ]; then ok "/dev/null is still a character device"; else fail "/dev/null was replaced"; fi
kms encrypt --key-id "$A" -i "$PT" -o /dev/null
ok "encrypt to /dev/null"
# A failed decrypt does not touch an existing output file.
echo "keep me" >"$W/existing"
head -c 3000 /dev/urandom >"$W/garbage"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$A" -i "$W/garbage" -o "$W/existing"
assert_eq "$(cat "$W/existing")" "keep me" "a failed decrypt leaves an existing output file alone"
mkdir "$W/gd"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$A" -i "$W/garbage" -o "$W/gd/out"
no_output "$W/gd" "garbage input leaves no output"
: >"$W/empty"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$A" -i "$W/empty" -o "$W/gd/out"
no_output "$W/gd" "empty input leaves no output"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$A" <"$W/empty"
expect_error ValidationException 254 kms decrypt --key-id "$A" -i "$W/no-such-file" -o "$W/gd/out"
expect_error ValidationException 254 kms encrypt --key-id "$A" -i "$PT" -o "$W/gd"
no_output "$W/gd" "an output that is a directory is refused"

# ---- progress bar: only on a terminal, for big inputs, not with --quiet -------------------------
# stderr_on_tty ARGS...: runs kmsctl ARGS with stderr on a pseudo-terminal (stdin inherited);
# prints the exit code and what reached the terminal, as a Python bytes literal.
stderr_on_tty() {
    "$PY" -c '
import os, pty, subprocess, sys
m, s = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=s)
os.close(s)
seen = b""
while True:
    try:
        d = os.read(m, 65536)
    except OSError:
        break
    if not d:
        break
    seen += d
print(p.wait(), repr(seen))
' "$@"
}
head -c $((9 * 1024 * 1024)) /dev/zero >"$W/pt.9m"
head -c 32 /dev/urandom >"$W/bar.key"
bar=(encrypt --wrapping-key-file "$W/bar.key" --key-namespace p --key-name k --threads 1)
out=$(stderr_on_tty "$KMSCTL" "${bar[@]}" -i "$W/pt.9m" -o /dev/null </dev/null)
assert_contains "$out" '\r[#' "a 9 MiB input on a terminal shows a progress bar"
assert_contains "$out" ' MiB / 9.0 MiB' "the bar shows bytes done of the total"
assert_match "$out" '^0 b.*\\r\\x1b\[K.$' "the bar is cleared at the end"
# shellcheck disable=SC2002  # stdin must be a pipe
out=$(cat "$PT" | stderr_on_tty "$KMSCTL" "${bar[@]}" -o /dev/null)
assert_match "$out" "^0 b'.r[0-9.]+ KiB" "input of unknown size (a pipe): progress without a total"
out=$(stderr_on_tty "$KMSCTL" "${bar[@]}" --quiet -i "$W/pt.9m" -o /dev/null </dev/null)
assert_eq "$out" "0 b''" "--quiet: no progress bar"
out=$(stderr_on_tty "$KMSCTL" "${bar[@]}" -i "$PT" -o /dev/null </dev/null)
assert_eq "$out" "0 b''" "a small input file: no progress bar"
out=$("$KMSCTL" "${bar[@]}" -i "$W/pt.9m" -o /dev/null 2>&1)
assert_eq "$out" "" "stderr not a terminal: no progress bar"

# ---- encryption context ------------------------------------------------------------------------
kms encrypt --key-id "$A" --encryption-context purpose=test --encryption-context user=alice \
    -i "$PT" -o "$W/ec.ct"
kms decrypt --key-id "$A" --encryption-context purpose=test -i "$W/ec.ct" -o "$W/out" \
    --metadata-output "$W/md.json"
assert_files_equal "$W/out" "$PT" "context: decrypt with a subset of the pairs"
assert_eq "$(json_get EncryptionContext <"$W/md.json")" '{"purpose":"test","user":"alice"}' \
    "metadata: the stored encryption context"
kms decrypt --key-id "$A" --encryption-context purpose=test,user=alice -i "$W/ec.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "context: shorthand k=v,k2=v2"
kms decrypt --key-id "$A" --encryption-context '{"user":"alice"}' -i "$W/ec.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "context: JSON"
mkdir "$W/ec"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$A" --encryption-context purpose=prod -i "$W/ec.ct" -o "$W/ec/out"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$A" --encryption-context extra=1 -i "$W/ec.ct" -o "$W/ec/out"
no_output "$W/ec" "a wrong encryption context leaves no output"
expect_usage_error "given twice" kms decrypt --key-id "$A" --encryption-context a=1 --encryption-context a=2 -i "$W/ec.ct"
# Required but unstored keys: decrypt must supply them.
kms encrypt --key-id "$A" --encryption-context purpose=test --encryption-context tenant=unstored-tenant-value-51c9 \
    --required-encryption-context-keys tenant -i "$PT" -o "$W/req.ct"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$A" -i "$W/req.ct" -o "$W/ec/out"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$A" --encryption-context tenant=t2 -i "$W/req.ct" -o "$W/ec/out"
no_output "$W/ec" "a missing required context pair leaves no output"
kms decrypt --key-id "$A" --encryption-context tenant=unstored-tenant-value-51c9 -i "$W/req.ct" -o "$W/out" --metadata-output "$W/md.json"
assert_files_equal "$W/out" "$PT" "context: required key supplied at decrypt"
if grep -q unstored-tenant-value-51c9 "$W/req.ct"; then fail "the unstored context value is in the message"; else ok "the unstored context value is not in the message"; fi

# ---- commitment policy -------------------------------------------------------------------------
kms encrypt --key-id "$A" --algorithm-suite 0x0178 --commitment-policy FORBID_ENCRYPT_ALLOW_DECRYPT \
    -i "$PT" -o "$W/v1.ct"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$A" -i "$W/v1.ct" -o "$W/ec/out"
no_output "$W/ec" "an uncommitted suite is refused under the default policy"
kms decrypt --key-id "$A" --commitment-policy REQUIRE_ENCRYPT_ALLOW_DECRYPT -i "$W/v1.ct" -o "$W/out" \
    --metadata-output "$W/md.json"
assert_files_equal "$W/out" "$PT" "REQUIRE_ENCRYPT_ALLOW_DECRYPT decrypts a v1 message"
assert_eq "$(json_get MessageFormatVersion <"$W/md.json")/$(json_get AlgorithmSuite <"$W/md.json")" 1/0x0178 "metadata of a v1 message"

# ---- raw keyrings, no KMS home -----------------------------------------------------------------
for n in 16 24 32; do
    head -c "$n" /dev/urandom >"$W/aes$n.key"
    nohome encrypt --wrapping-key-file "$W/aes$n.key" --key-namespace app --key-name "k$n" \
        -i "$PT" -o "$W/raw.ct"
    nohome decrypt --wrapping-key-file "$W/aes$n.key" --key-namespace app --key-name "k$n" \
        -i "$W/raw.ct" -o "$W/out" --metadata-output "$W/md.json"
    assert_files_equal "$W/out" "$PT" "raw AES-$((n * 8)) round trip without a KMS home"
done
assert_eq "$(json_get KeyProviderId <"$W/md.json")/$(json_get KeyProviderInfo <"$W/md.json")" app/k32 \
    "metadata: raw AES key namespace and name"
mkdir "$W/raw"
expect_error NotFoundException 254 nohome decrypt --wrapping-key-file "$W/aes32.key" --key-namespace app --key-name other -i "$W/raw.ct" -o "$W/raw/out"
expect_error InvalidCiphertextException 254 nohome decrypt --wrapping-key-file "$W/aes16.key" --key-namespace app --key-name k32 -i "$W/raw.ct" -o "$W/raw/out"
no_output "$W/raw" "a wrong raw key leaves no output"
head -c 20 /dev/urandom >"$W/aes20.key"
expect_usage_error "16, 24 or 32" nohome encrypt --wrapping-key-file "$W/aes20.key" --key-namespace app --key-name k -i "$PT"
expect_usage_error "needs all of" nohome encrypt --wrapping-key-file "$W/aes32.key" --key-name k -i "$PT"

if command -v openssl >/dev/null 2>&1; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/rsa.pem" 2>/dev/null
    openssl pkey -in "$W/rsa.pem" -pubout -out "$W/rsa.pub" 2>/dev/null
    for pad in RSA_OAEP_SHA256 RSA_PKCS1 RSA_OAEP_SHA1; do
        nohome encrypt --wrapping-key-file "$W/rsa.pub" --key-namespace app --key-name rsa \
            --wrapping-algorithm "$pad" -i "$PT" -o "$W/rsa.ct"
        nohome decrypt --wrapping-key-file "$W/rsa.pem" --key-namespace app --key-name rsa \
            --wrapping-algorithm "$pad" -i "$W/rsa.ct" -o "$W/out"
        assert_files_equal "$W/out" "$PT" "raw RSA $pad round trip (public key encrypts) without a home"
    done
    expect_usage_error "--wrapping-algorithm" nohome decrypt --wrapping-key-file "$W/rsa.pem" --key-namespace app --key-name rsa -i "$W/rsa.ct"
    expect_usage_error "unknown wrapping algorithm" nohome decrypt --wrapping-key-file "$W/rsa.pem" --key-namespace app --key-name rsa --wrapping-algorithm RSA_OAEP_MD5 -i "$W/rsa.ct"
    rc=0
    nohome decrypt --wrapping-key-file "$W/rsa.pem" --key-namespace app --key-name rsa \
        --wrapping-algorithm RSA_OAEP_SHA512 -i "$W/rsa.ct" -o "$W/raw/out" 2>/dev/null || rc=$?
    assert_eq "$rc" 254 "raw RSA with the wrong padding fails"
    no_output "$W/raw" "raw RSA with the wrong padding leaves no output"
else
    fail "openssl is needed for the raw RSA cases"
fi

# ---- multi-keyring: a CMK and a raw key --------------------------------------------------------
kms encrypt --key-id "$A" --wrapping-key-file "$W/aes32.key" --key-namespace app --key-name k32 \
    -i "$PT" -o "$W/multi.ct"
nohome decrypt --wrapping-key-file "$W/aes32.key" --key-namespace app --key-name k32 -i "$W/multi.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "CMK + raw AES: decrypt with the raw key alone, no home"
kms decrypt --key-id "$A" -i "$W/multi.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "CMK + raw AES: decrypt with the CMK alone"
kms decrypt --key-id "$C" --wrapping-key-file "$W/aes32.key" --key-namespace app --key-name k32 -i "$W/multi.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "decrypt with a wrong CMK plus the right raw key"

# ---- usage errors ------------------------------------------------------------------------------
expect_usage_error "give --key-id" nohome encrypt -i "$PT"
expect_usage_error "exclude each other" kms decrypt --discovery --key-id "$A" -i "$W/ab.ct"
expect_usage_error "unknown algorithm suite" kms encrypt --key-id "$A" --algorithm-suite 0x9999 -i "$PT"
expect_usage_error "--frame-length" kms encrypt --key-id "$A" --frame-length 0 -i "$PT"
expect_usage_error "unknown commitment policy" kms decrypt --key-id "$A" --commitment-policy NONE -i "$W/ab.ct"
expect_usage_error "--in-file: expected one argument" kms encrypt --key-id "$A" -i
expect_usage_error "--destination-key-id" kms re-encrypt --discovery -i "$W/ab.ct"
expect_usage_error "-o/--out-file" kms encrypt --key-id "$A" -i "$PT" --output "$W/x.ct"
expect_usage_error "standard output" kms decrypt --key-id "$A" -i "$W/ab.ct" --metadata-output -
for c in encrypt decrypt re-encrypt; do
    h=$("$KMSCTL" "$c" --help)
    assert_contains "$h" "Example:" "$c --help has an example"
done
expect_error KMSHomeException 254 nohome decrypt --key-id "$A" -i "$W/ab.ct" -o "$W/out"

# ---- tampering: every bit flip, truncation and reordering fails, leaving nothing ---------------
head -c 10200 /dev/urandom >"$W/pt.10k"
for suite in 0x0478 0x0578; do
    kms encrypt --key-id "$A" --algorithm-suite "$suite" --frame-length 1000 -i "$W/pt.10k" -o "$W/t.$suite"
    read -r hdr nframes footer total <<<"$(esdk layout "$W/t.$suite" "$W")"
    assert_eq "$nframes" 11 "$suite: a 10200-byte message in 1000-byte frames has 11 frames (header $hdr, footer at $footer of $total)"
    kms decrypt --key-id "$A" -i "$W/t.$suite" -o "$W/out"
    assert_files_equal "$W/out" "$W/pt.10k" "$suite: the untouched message decrypts"
    surgery flips "$W/t.$suite" "$suite: single-bit flips (header, EDK, frames, final frame, footer)" \
        --home "$HOME_DIR" decrypt --key-id "$A"
    surgery truncations "$W/t.$suite" "$suite: truncations (each frame boundary and more)" \
        --home "$HOME_DIR" decrypt --key-id "$A"
    surgery reorders "$W/t.$suite" "$suite: duplicated, swapped, dropped frames, trailing bytes" \
        --home "$HOME_DIR" decrypt --key-id "$A"
done
# A raw-AES message too (its EDK carries the IV and tag in the provider info).
nohome encrypt --wrapping-key-file "$W/aes32.key" --key-namespace app --key-name k32 \
    --frame-length 1000 -i "$W/pt.10k" -o "$W/t.raw"
surgery some-flips "$W/t.raw" "raw AES message: single-bit flips" \
    decrypt --wrapping-key-file "$W/aes32.key" --key-namespace app --key-name k32

# ---- re-encrypt ----------------------------------------------------------------------------------
# The library decrypts (verifying everything) and encrypts again under a fresh data key and
# message id: rewriting only the header would reuse the header tag's GCM key and zero IV.
# body_of FILE: the body of a message (after the header, before a footer)
body_of() {
    local hdr nframes footer total
    read -r hdr nframes footer total <<<"$(esdk layout "$1" "$W")"
    tail -c +$((hdr + 1)) "$1" | head -c $((footer - hdr))
}
for suite in 0x0478 0x0578; do
    kms encrypt --key-id "$A" --algorithm-suite "$suite" --frame-length 1000 \
        --encryption-context purpose=move -i "$W/pt.10k" -o "$W/src.ct"
    kms decrypt --key-id "$A" -i "$W/src.ct" -o /dev/null --metadata-output "$W/src.json"
    kms re-encrypt --key-id "$A" --destination-key-id "$B" --encryption-context purpose=move \
        -i "$W/src.ct" -o "$W/dst.ct"
    kms decrypt --key-id "$B" -i "$W/dst.ct" -o "$W/out" --metadata-output "$W/md.json"
    assert_files_equal "$W/out" "$W/pt.10k" "$suite re-encrypt A -> B: decrypts with only B"
    assert_eq "$(json_get AlgorithmSuite <"$W/md.json")/$(json_get FrameLength <"$W/md.json")/$(json_get EncryptionContext.purpose <"$W/md.json")" \
        "$suite/1000/move" "$suite re-encrypt keeps the kind of suite, the frame length and the context"
    assert_ne "$(json_get MessageId <"$W/md.json")" "$(json_get MessageId <"$W/src.json")" \
        "$suite re-encrypt: a fresh message id"
    rm -rf "$W/re" && mkdir "$W/re"
    expect_error NotFoundException 254 kms decrypt --key-id "$A" -i "$W/dst.ct" -o "$W/re/out"
    no_output "$W/re" "$suite re-encrypt: the source key no longer decrypts"
    if cmp -s <(body_of "$W/src.ct") <(body_of "$W/dst.ct"); then
        fail "$suite re-encrypt: the body was copied (same data key and message id)"
    else
        ok "$suite re-encrypt: the body is encrypted anew"
    fi
    surgery some-flips "$W/dst.ct" "$suite re-encrypted message: single-bit flips" \
        --home "$HOME_DIR" decrypt --key-id "$B"
    # Every frame of the source is verified on the way: a broken source gives no output.
    surgery some-flips "$W/src.ct" "$suite re-encrypt of a message with a flipped bit" \
        --home "$HOME_DIR" re-encrypt --key-id "$A" --destination-key-id "$B"
    [ "$suite" = 0x0578 ] || continue
    surgery truncations "$W/src.ct" "$suite re-encrypt of a truncated message" \
        --home "$HOME_DIR" re-encrypt --key-id "$A" --destination-key-id "$B"
    surgery reorders "$W/src.ct" "$suite re-encrypt of a message with reordered frames" \
        --home "$HOME_DIR" re-encrypt --key-id "$A" --destination-key-id "$B"
done
kms re-encrypt --discovery --destination-key-id "$C" --destination-key-id "$B" \
    --algorithm-suite 0x0578 -i "$W/ab.ct" -o "$W/dst2.ct"
kms decrypt --key-id "$C" -i "$W/dst2.ct" -o "$W/out" --metadata-output "$W/md.json"
assert_files_equal "$W/out" "$PT" "re-encrypt from discovery to two keys: decrypt with C"
assert_eq "$(json_get AlgorithmSuite <"$W/md.json")" 0x0578 "re-encrypt --algorithm-suite picks the new suite"
kms decrypt --key-id "$B" -i "$W/dst2.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "re-encrypt from discovery to two keys: decrypt with B"
kms re-encrypt --wrapping-key-file "$W/aes32.key" --key-namespace app --key-name k32 \
    --destination-key-id "$A" <"$W/t.raw" >"$W/fromraw.ct"
kms decrypt --key-id "$A" -i "$W/fromraw.ct" -o "$W/out"
assert_files_equal "$W/out" "$W/pt.10k" "re-encrypt a raw-AES message to a CMK through pipes"
# A legacy (uncommitted, v1) message comes out committed.
kms re-encrypt --key-id "$A" --destination-key-id "$B" --commitment-policy REQUIRE_ENCRYPT_ALLOW_DECRYPT \
    -i "$W/v1.ct" -o "$W/fromv1.ct"
kms decrypt --key-id "$B" -i "$W/fromv1.ct" -o "$W/out" --metadata-output "$W/md.json"
assert_files_equal "$W/out" "$PT" "re-encrypt of a v1 message decrypts under the default policy"
assert_eq "$(json_get MessageFormatVersion <"$W/md.json")/$(json_get AlgorithmSuite <"$W/md.json")" 2/0x0478 \
    "re-encrypt upgrades a v1 message to a committing suite"
# Required-but-unstored pairs must be given and stay unstored.
kms re-encrypt --key-id "$A" --destination-key-id "$B" --encryption-context tenant=unstored-tenant-value-51c9 \
    -i "$W/req.ct" -o "$W/fromreq.ct"
if grep -q unstored-tenant-value-51c9 "$W/fromreq.ct"; then fail "re-encrypt stored the unstored context value"; else ok "re-encrypt keeps the required pair unstored"; fi
rm -rf "$W/re" && mkdir "$W/re"
expect_error InvalidCiphertextException 254 kms decrypt --key-id "$B" -i "$W/fromreq.ct" -o "$W/re/out"
kms decrypt --key-id "$B" --encryption-context tenant=unstored-tenant-value-51c9 -i "$W/fromreq.ct" -o "$W/out"
assert_files_equal "$W/out" "$PT" "re-encrypted message with a required pair decrypts with it"
expect_error InvalidCiphertextException 254 kms re-encrypt --key-id "$A" --destination-key-id "$B" -i "$W/req.ct" -o "$W/re/out"
expect_error NotFoundException 254 kms re-encrypt --key-id "$C" --destination-key-id "$B" -i "$W/src.ct" -o "$W/re/out"
expect_error InvalidCiphertextException 254 kms re-encrypt --key-id "$A" --destination-key-id "$B" --encryption-context purpose=other -i "$W/src.ct" -o "$W/re/out"
no_output "$W/re" "a failed re-encrypt leaves no output"
