#!/usr/bin/env bash
# kmsctl refuses to write its outputs into the KMS home's own files (issue 15 item 9): encrypt,
# decrypt and re-encrypt -o (and decrypt --metadata-output, get-audit-public-key and
# create-virtual-mfa-device --outfile) into HOME/audit, HOME/hsm, HOME/kms.db and its -wal,
# -shm and -journal, directly, through `..`, through a symlinked directory and through a symlink
# to the file: a usage error naming the option, and nothing written, the trail included.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_home
W="$TMP/w"
mkdir "$W"
A=$(create_key SYMMETRIC_DEFAULT)
head -c 5000 /dev/urandom >"$W/pt"
kms encrypt --key-id "$A" -i "$W/pt" -o "$W/ct"

SEGMENT=$(cd "$HOME_DIR" && ls audit/segments/*.jsonl | head -n 1)
TOKEN_DIR=$(cd "$HOME_DIR" && ls -d hsm/tokens/* | head -n 1)
# Every file of the home, the trail and the token included, with its checksum: a refused
# command runs nothing, so it writes no audit record either.
whole_home() { (cd "$HOME_DIR" && find . -type f ! -name 'kms.db-shm' -print0 | sort -z | xargs -0 sha256sum); }
before=$(whole_home)

ln -s "$HOME_DIR/audit" "$W/audit-link"
ln -s "$HOME_DIR" "$W/home-link"
ln -s "$HOME_DIR/kms.db" "$W/db-link"
mkdir "$W/sub"
targets=(
    "$HOME_DIR/audit/segments/99999999999999999999.jsonl" # a planted segment
    "$HOME_DIR/$SEGMENT"                                  # the open segment replaced
    "$HOME_DIR/audit/x.ct"
    "$HOME_DIR/audit"
    "$HOME_DIR/hsm/x.ct"
    "$HOME_DIR/$TOKEN_DIR/x.object"
    "$HOME_DIR/hsm/softhsm2.conf"
    "$HOME_DIR/kms.db"
    "$HOME_DIR/kms.db-wal"
    "$HOME_DIR/kms.db-shm"
    "$HOME_DIR/kms.db-journal"
    "$HOME_DIR/config.json"
    "$HOME_DIR/credentials"
    "$W/sub/../home-link/kms.db"                          # .. and a symlinked home
    "$HOME_DIR/audit/segments/../../kms.db-wal"           # .. inside the home
    "$W/audit-link/segments/x.jsonl"                      # a symlinked directory
    "$W/home-link/hsm/x.ct"
    "$W/db-link"                                          # a symlink to the database
)
for t in "${targets[@]}"; do
    expect_usage_error "argument --out-file: '$t' resolves to" kms encrypt --key-id "$A" -i "$W/pt" -o "$t"
    assert_contains "$ERR_OUT" "KMS home" "encrypt -o $t: the message says it is the KMS home's"
    expect_usage_error "argument --out-file: '$t'" kms decrypt --key-id "$A" -i "$W/ct" -o "$t"
    expect_usage_error "argument --out-file: '$t'" kms re-encrypt --key-id "$A" -i "$W/ct" -o "$t"
done
# Raw wrapping keys need no home, but the home named (here the default, $KMS_HOME) is
# protected all the same.
head -c 32 /dev/urandom >"$W/aes.key"
RAW=(--wrapping-key-file "$W/aes.key" --key-namespace ns --key-name k)
expect_usage_error "argument --out-file: '$HOME_DIR/kms.db'" env KMS_HOME="$HOME_DIR" \
    "$KMSCTL" encrypt "${RAW[@]}" -i "$W/pt" -o "$HOME_DIR/kms.db"
expect_usage_error "argument --metadata-output: '$HOME_DIR/kms.db'" kms decrypt --key-id "$A" \
    -i "$W/ct" -o "$W/out" --metadata-output "$HOME_DIR/kms.db"
if [ -e "$W/out" ]; then fail "a refused decrypt wrote its plaintext"; else ok "a refused decrypt writes nothing"; fi
expect_usage_error "argument --metadata-output: '$W/audit-link/m.json'" kms decrypt --key-id "$A" \
    -i "$W/ct" -o "$W/out" --metadata-output "$W/audit-link/m.json"
expect_usage_error "argument --outfile: '$HOME_DIR/kms.db'" kms get-audit-public-key \
    --outfile "$HOME_DIR/kms.db"
expect_usage_error "argument --outfile: '$W/audit-link/seed'" kms create-virtual-mfa-device \
    --virtual-mfa-device-name phone --outfile "$W/audit-link/seed"
assert_eq "$(whole_home)" "$before" "the refused commands changed no file of the home, the trail included"
kms validate-logs >/dev/null && ok "the trail still validates"

# Outputs elsewhere, and the home's other names, are written as before.
expect_error ValidationException 254 kms decrypt --key-id "$A" -i "$W/ct" -o "$W/no-such-dir/../out"
kms decrypt --key-id "$A" -i "$W/ct" -o "$W/out"
assert_files_equal "$W/out" "$W/pt" "an output outside the home is written"
kms decrypt --key-id "$A" -i "$W/ct" -o "$HOME_DIR/auditing.txt"
assert_files_equal "$HOME_DIR/auditing.txt" "$W/pt" "a file of another name in the home is allowed"
kms encrypt --key-id "$A" -i "$W/pt" -o - >/dev/null && ok "standard output is allowed"

# A hard link is another name of the same file: an existing output with other links is refused,
# so the database cannot be overwritten in place through a name outside the home.
before=$(whole_home)
ln "$HOME_DIR/kms.db" "$W/db-hardlink"
expect_usage_error "argument --outfile: '$W/db-hardlink' has 2 hard links" kms get-audit-public-key \
    --outfile "$W/db-hardlink"
expect_usage_error "argument --metadata-output: '$W/db-hardlink' has 2 hard links" kms decrypt \
    --key-id "$A" -i "$W/ct" -o "$W/out2" --metadata-output "$W/db-hardlink"
rm -f "$W/db-hardlink"
assert_eq "$(whole_home)" "$before" "the hard link refusals changed no file of the home"
kms list-keys >/dev/null && ok "the database still opens"
