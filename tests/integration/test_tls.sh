#!/usr/bin/env bash
# The TLS helper, checked by tools nobody here wrote: the example server (examples/tls_server.c,
# built against the installed libkms as an application would build it) probed with
# `openssl s_client`, `curl` and, when installed, testssl.sh; the example client against it.
# Certificates are made with `openssl req`/`x509`, the CRL with `openssl ca`.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- build the examples against the installed libkms -------------------------------------------
build_examples tls_server tls_client
libdir=$EXAMPLE_LIBDIR

# ---- a throwaway PKI ---------------------------------------------------------------------------
P="$TMP/pki"
mkdir -p "$P"
ossl() { openssl "$@" 2>>"$TMP/openssl.log"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/ca.key" \
    -out "$P/ca.pem" -subj "/CN=kms test CA" -days 2 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
# leaf NAME SERIAL SUBJECT EXT: NAME.key, NAME.crt and NAME.chain (leaf, then the CA)
leaf() {
    ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/$1.key" \
        -out "$P/$1.csr" -subj "$3"
    printf '%b' "$4" >"$P/$1.ext"
    ossl x509 -req -in "$P/$1.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -set_serial "$2" -days 2 \
        -extfile "$P/$1.ext" -out "$P/$1.crt"
    cat "$P/$1.crt" "$P/ca.pem" >"$P/$1.chain"
}
SRV_EXT='subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n'
CLI_EXT='subjectAltName=DNS:client.test\nextendedKeyUsage=clientAuth\nbasicConstraints=critical,CA:FALSE\n'
leaf server 0x1001 /CN=localhost "$SRV_EXT"
leaf renewed 0x1002 /CN=localhost "$SRV_EXT"
leaf dnsonly 0x1003 /CN=localhost 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n'
leaf client 0x2001 "/CN=app client" "$CLI_EXT"
leaf revoked 0x2002 "/CN=revoked client" "$CLI_EXT"
cat >"$P/ca.cnf" <<EOF
[ca]
default_ca = test_ca
[test_ca]
database = $P/index.txt
crlnumber = $P/crlnumber
default_md = sha256
default_crl_days = 1
EOF
: >"$P/index.txt"
echo 01 >"$P/crlnumber"
ossl ca -config "$P/ca.cnf" -keyfile "$P/ca.key" -cert "$P/ca.pem" -revoke "$P/revoked.crt"
ossl ca -config "$P/ca.cnf" -keyfile "$P/ca.key" -cert "$P/ca.pem" -gencrl -out "$P/crl.pem"
cp "$P/server.chain" "$P/live.chain"
cp "$P/server.key" "$P/live.key"

# ---- servers -----------------------------------------------------------------------------------
PIDS=()
stop_servers() {
    local rc=$?
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    return $rc
}
trap 'stop_servers; _on_exit' EXIT
# start_server NAME CERT KEY [OPTIONS...]: sets PORT_<NAME>; the test stops if it does not listen
start_server() {
    local name=$1 cert=$2 key=$3 port
    shift 3
    port=$(free_port)
    LD_LIBRARY_PATH="$libdir" "$TMP/tls_server" "$@" "$port" "$cert" "$key" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PIDS+=($!)
    for _ in $(seq 50); do
        grep -q listening "$TMP/$name.out" 2>/dev/null && break
        sleep 0.1
    done
    if ! grep -q listening "$TMP/$name.out"; then
        fail "the example server $name does not start: $(cat "$TMP/$name.err")"
        exit 1
    fi
    printf -v "PORT_$name" '%s' "$port"
}
start_server main "$P/live.chain" "$P/live.key" -a h2,http/1.1
start_server mtls "$P/dnsonly.chain" "$P/dnsonly.key" -c "$P/ca.pem" -r "$P/crl.pem"
# shellcheck disable=SC2154  # set by start_server
MAIN=$PORT_main MTLS=$PORT_mtls

# probe PORT ARGS...: s_client's output (the greeting is in it when the connection worked)
probe() {
    local port=$1
    shift
    timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
        -CAfile "$P/ca.pem" -verify_return_error -ign_eof "$@" </dev/null 2>&1 || true
}
accepted() { assert_contains "$(probe "$@")" "hello over TLS" "accepted: s_client ${*:2}"; }
refused() { assert_not_contains "$(probe "$@")" "hello over TLS" "refused: s_client ${*:2}"; }

# ---- versions, suites, groups, ALPN ------------------------------------------------------------
# SECLEVEL=0 lets s_client itself offer what Debian's OpenSSL would not: the refusal is the server's.
accepted "$MAIN" -tls1_2 # first: the refusals below come from a server that is up
refused "$MAIN" -tls1 -cipher 'ALL:@SECLEVEL=0'
refused "$MAIN" -tls1_1 -cipher 'ALL:@SECLEVEL=0'
refused "$MAIN" -tls1_2 -cipher 'AES128-SHA:@SECLEVEL=0'
refused "$MAIN" -tls1_2 -cipher 'AES128-GCM-SHA256'
refused "$MAIN" -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA256'
accepted "$MAIN" -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305
out=$(probe "$MAIN" -tls1_3)
assert_contains "$out" "hello over TLS" "TLS 1.3 accepted"
assert_contains "$out" "Verify return code: 0 (ok)" "s_client verifies the chain the server sends"
assert_contains "$(probe "$MAIN" -tls1_3 -groups P-384)" "Server Temp Key: ECDH, secp384r1" \
    "group P-384 offered"
accepted "$MAIN" -tls1_3 -groups X25519
refused "$MAIN" -tls1_3 -groups P-521
refused "$MAIN" -tls1_2 -groups P-521
assert_contains "$(probe "$MAIN" -alpn http/1.1)" "ALPN protocol: http/1.1" "ALPN http/1.1"
assert_contains "$(probe "$MAIN" -alpn foo,h2)" "ALPN protocol: h2" "ALPN: the server's pick"
refused "$MAIN" -alpn smtp

# ---- curl: the host name is verified -----------------------------------------------------------
url="https://localhost:$MAIN/"
assert_eq "$(curl -sS --http1.1 --http0.9 --cacert "$P/ca.pem" "$url")" "hello over TLS" \
    "curl --cacert: hello over TLS"
if curl -sS --http1.1 --http0.9 "$url" >/dev/null 2>"$TMP/curl.err"; then
    fail "curl without the CA connected"
else
    ok "curl without the CA refuses the server"
fi
if curl -sS --http1.1 --http0.9 --cacert "$P/ca.pem" --resolve "other.test:$MAIN:127.0.0.1" \
    "https://other.test:$MAIN/" >/dev/null 2>"$TMP/curl.err"; then
    fail "curl accepted a certificate for another name"
else
    assert_contains "$(cat "$TMP/curl.err")" "other.test" "curl: a wrong host name is refused"
fi

# ---- the example client, and a hot reload ------------------------------------------------------
client() { LD_LIBRARY_PATH="$libdir" "$TMP/tls_client" "$@"; }
assert_eq "$(client -a http/1.1 localhost "$MAIN" "$P/ca.pem" 2>"$TMP/client.err")" \
    "hello over TLS" "example client: hello over TLS"
assert_contains "$(cat "$TMP/client.err")" "serial=1001" "example client sees serial 1001"
assert_contains "$(cat "$TMP/client.err")" "alpn=http/1.1" "example client: ALPN http/1.1"
cp "$P/renewed.chain" "$P/live.chain"
cp "$P/renewed.key" "$P/live.key"
kill -HUP "${PIDS[0]}"
for _ in $(seq 50); do
    grep -q reloaded "$TMP/main.err" && break
    sleep 0.1
done
client localhost "$MAIN" "$P/ca.pem" >/dev/null 2>"$TMP/client.err"
assert_contains "$(cat "$TMP/client.err")" "serial=1002" "after SIGHUP: the renewed certificate"
assert_contains "$(probe "$MAIN" -tls1_3)" "hello over TLS" "the same server still answers"

# ---- mutual TLS --------------------------------------------------------------------------------
accepted "$MTLS" -cert "$P/client.crt" -key "$P/client.key"
refused "$MTLS"
refused "$MTLS" -tls1_2
refused "$MTLS" -cert "$P/revoked.crt" -key "$P/revoked.key"
refused "$MTLS" -tls1_2 -cert "$P/revoked.crt" -key "$P/revoked.key"
assert_contains "$(cat "$TMP/mtls.err")" "client CN=app client" "the server saw the client's subject"
assert_eq "$(client -c "$P/client.crt" -k "$P/client.key" localhost "$MTLS" "$P/ca.pem" 2>/dev/null)" \
    "hello over TLS" "example client with a client certificate"
# That server's certificate names localhost only: 127.0.0.1 is not its name.
if client -c "$P/client.crt" -k "$P/client.key" 127.0.0.1 "$MTLS" "$P/ca.pem" >/dev/null \
    2>"$TMP/client.err"; then
    fail "example client accepted a certificate without the address it connected to"
else
    assert_contains "$(cat "$TMP/client.err")" "IP address mismatch" "example client: name checked"
fi

# ---- testssl.sh (apt-get install testssl.sh): no finding above LOW -----------------------------
testssl=$(command -v testssl || command -v testssl.sh || true)
if [ -z "$testssl" ]; then
    echo "testssl.sh is not installed: its checks are skipped"
else
    timeout 300 "$testssl" --protocols --std --fs --quiet --color 0 --warnings off \
        --jsonfile "$TMP/testssl.json" "127.0.0.1:$MAIN" >"$TMP/testssl.out" 2>&1 || true
    findings=$("$PY" - "$TMP/testssl.json" <<'EOF'
import json, sys
bad = [f"{x['id']} {x['severity']}: {x['finding']}" for x in json.load(open(sys.argv[1]))
       if x.get("severity") in ("MEDIUM", "HIGH", "CRITICAL", "WARN")]
print("\n".join(bad) if bad else "none")
EOF
    )
    assert_eq "$findings" "none" "testssl.sh: no finding at MEDIUM or above"
    out=$(cat "$TMP/testssl.out")
    assert_match "$out" "TLS 1.1 +not offered" "testssl.sh: TLS 1.1 not offered"
    assert_match "$out" "Obsolete CBC ciphers.*not offered" "testssl.sh: no CBC suite"
fi
