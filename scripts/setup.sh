#!/usr/bin/env bash
# Installs the Debian packages the project needs (when missing) and builds it.
#   scripts/setup.sh [BUILD_DIR] [extra cmake options...]
# Packages: build tools, libsodium, OpenSSL 3, SQLite, jansson, cmocka, SoftHSM2 (the PKCS#11
# HSM), p11-kit (the PKCS#11 header), opensc (pkcs11-tool, used by the tests as an outside
# witness of the token), faketime, clang with libFuzzer (fuzzers), python3 (test helpers),
# clang-format-14 and binutils (scripts/check-conventions.sh: format, nm), libevent (kmsd's HTTP
# server), libyaml (kmsctl --output yaml), the aws CLI v2 (awscli: the conformance test of kmsd),
# prometheus (promtool checks kmsd's /metrics text) and python3-jmespath (the aws CLI's JMESPath
# library: the outside check of kmsctl's --query).
# Warnings are errors here (KMS_WERROR): this is the developers' and CI's build.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libsodium-dev libssl-dev libsqlite3-dev sqlite3
          libjansson-dev libcurl4-openssl-dev libcmocka-dev softhsm2 libp11-kit-dev opensc faketime
          clang libclang-rt-14-dev python3 openssl clang-format-14 binutils curl testssl.sh
          libevent-dev libyaml-dev awscli prometheus python3-jmespath)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs the AWS Encryption SDK for JavaScript in the interoperability test. Machines may
# carry their own build of node (with npm inside); only a machine without node gets Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi

build=${1:-build}
shift || true
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKMS_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
echo "setup: built in $build" >&2
