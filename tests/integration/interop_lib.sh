# shellcheck shell=bash
# Sourced by the tests that drive kmsd or kmsctl from node (test_interop_js.sh, test_kmsd_sdk.sh),
# before lib.sh (its exit trap would turn a skip into a failure), with HERE set to this directory:
# checks for node >= 18 and npm, and installs the SDKs with `npm ci` of tests/interop into
# $KMS_BUILD_DIR/interop ($ESDK_NODE_PREFIX), once per lock file, under a lock shared by the
# tests. Without node or npm, or when the install fails, it prints SKIPPED and exits 77.

: "${KMS_SOURCE_DIR:=$(cd "$HERE/../.." && pwd)}"
: "${KMS_BUILD_DIR:?KMS_BUILD_DIR must name the build directory}"
INTEROP_SRC="$KMS_SOURCE_DIR/tests/interop"
export ESDK_NODE_PREFIX="$KMS_BUILD_DIR/interop"

skip() {
    echo "SKIPPED: $*"
    exit 77
}

command -v node >/dev/null 2>&1 || skip "node is not installed (Debian package nodejs)"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (Debian package npm)"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$NODE_MAJOR" -ge 18 ] 2>/dev/null || skip "node $(node --version 2>/dev/null) is older than 18"

# install_sdk: $ESDK_NODE_PREFIX holds node_modules installed from the current lock file, or
# fail. A new install goes to a staging directory renamed into place, so a failed or interrupted
# one never looks complete.
install_sdk() {
    local stage log
    if [ -f "$ESDK_NODE_PREFIX/.installed" ] &&
        cmp -s "$ESDK_NODE_PREFIX/package-lock.json" "$INTEROP_SRC/package-lock.json" &&
        cmp -s "$ESDK_NODE_PREFIX/package.json" "$INTEROP_SRC/package.json" &&
        [ -f "$ESDK_NODE_PREFIX/node_modules/@aws-crypto/client-node/package.json" ]; then
        return 0
    fi
    stage=$(mktemp -d "$KMS_BUILD_DIR/interop.new.XXXXXX")
    log="$stage.log"
    cp "$INTEROP_SRC/package.json" "$INTEROP_SRC/package-lock.json" "$stage/"
    if ! (cd "$stage" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error \
        --fetch-retries=1 --fetch-timeout=60000) >"$log" 2>&1; then
        echo "npm ci in $stage failed:" >&2
        tail -n 20 "$log" >&2
        rm -rf "$stage" "$log"
        return 1
    fi
    touch "$stage/.installed"
    rm -rf "$ESDK_NODE_PREFIX" "$log"
    mv "$stage" "$ESDK_NODE_PREFIX"
}

mkdir -p "$KMS_BUILD_DIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$KMS_BUILD_DIR/interop.lock"
    flock 9
fi
install_sdk || skip "could not install @aws-crypto/client-node into $ESDK_NODE_PREFIX"
if command -v flock >/dev/null 2>&1; then exec 9>&-; fi
