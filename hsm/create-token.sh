#!/usr/bin/env bash
# Creates the SoftHSM2 token directory and configuration of a KMS home:
#   DIR/tokens          (mode 0700)
#   DIR/softhsm2.conf   (from softhsm2.conf.in beside this script)
# and prints the path of the configuration. The token itself is initialised afterwards through
# PKCS#11 (kms_hsm_init_token), so that no PIN ever appears on a command line or in this script.
set -euo pipefail

usage() {
    cat <<USAGE
Usage: $(basename "$0") DIR

Creates DIR/tokens (mode 0700) and DIR/softhsm2.conf for SoftHSM2, then prints the path of
the configuration file. Point SOFTHSM2_CONF at that path before initialising a token.
Refuses to run if DIR/softhsm2.conf already exists. Never asks for or handles a PIN.
USAGE
}

die() {
    echo "create-token.sh: $*" >&2
    exit 1
}

if [[ $# -eq 1 && ( "$1" == "--help" || "$1" == "-h" ) ]]; then
    usage
    exit 0
fi
if [[ $# -ne 1 || -z "$1" || "$1" == -* ]]; then
    usage >&2
    exit 2
fi

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
template="$script_dir/softhsm2.conf.in"
[[ -r "$template" ]] || die "template $template not found or not readable"

umask 077
mkdir -p -- "$1" || die "cannot create directory $1"
dir=$(cd -- "$1" && pwd) || die "cannot enter directory $1"
conf="$dir/softhsm2.conf"
tokens="$dir/tokens"

if [[ -e "$conf" ]]; then
    die "$conf already exists; refusing to overwrite an existing SoftHSM2 configuration"
fi
case "$tokens" in
*'|'* | *'\'* | *'&'* | *$'\n'*) die "unsupported character in path $tokens" ;;
esac

mkdir -p -- "$tokens"
chmod 0700 -- "$tokens"

tmp=$(mktemp "$dir/.softhsm2.conf.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
sed -e "s|@TOKENDIR@|$tokens|g" -- "$template" >"$tmp"
chmod 0600 -- "$tmp"
# Refuse rather than replace a configuration that appeared meanwhile.
ln -- "$tmp" "$conf" 2>/dev/null || die "$conf already exists; refusing to overwrite it"
rm -f -- "$tmp"
trap - EXIT

echo "$conf"
