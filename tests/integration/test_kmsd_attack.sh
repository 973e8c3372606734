#!/usr/bin/env bash
# kmsd attacked from the network (issue 17, "What bad input gets"): request smuggling shapes
# (Content-Length with Transfer-Encoding, chunk sizes, header folding), absurd methods, URIs and
# headers, pipelining, X-Amz-Target and Content-Type games, the STS query protocol's form, /health
# and /metrics (X-Forwarded-For does not count), the plain-HTTP listener (nothing but CRLs and
# OCSP, no path traversal), plain HTTP on the TLS port, TLS 1.0/1.1 and renegotiation refused,
# the first start's files, and kmsd's stderr not growing per request.
# A check commented out with "# FINDING N:" fails today; its fix lies in a file being rewritten
# (http.c, handler.c): the integrator applies the fix and enables the check.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KMSD=${KMSD:-$(dirname "$KMSCTL")/kmsd}
[ -x "$KMSD" ] || { fail "kmsd not built ($KMSD)"; exit 1; }
ATTACK="$(dirname "${BASH_SOURCE[0]}")/kmsd_attack.py"

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; _on_exit' EXIT

tls_raw() { "$PY" "$ATTACK" raw "$PORT" "$CA_PEM" "${1:-3}"; }   # stdin: the request bytes
http_raw() { "$PY" "$ATTACK" raw "$HPORT" - 3; }
# The status lines of a raw answer (one per response, wherever it starts)
statuses() { grep -ao 'HTTP/1\.[01] [0-9][0-9][0-9]' || true; }
JSON_HEADERS=$'X-Amz-Target: TrentService.ListKeys\r\nContent-Type: application/x-amz-json-1.1\r\n'
HEALTH=$'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'

init_home
set_server "$HOME_DIR" '{"header_timeout_seconds": 3, "body_timeout_seconds": 2, "idle_timeout_seconds": 5}'
start_kmsd first "$HOME_DIR"
CA_PEM="$HOME_DIR/kmsd-ca.pem"

# ---- The first start's files ---------------------------------------------------------------------
assert_eq "$(stat -c %a "$HOME_DIR/config.json")" "600" "first start: config.json stays mode 0600"
assert_eq "$(stat -c %a "$HOME_DIR/kmsd.lock")" "600" "kmsd.lock is mode 0600"
assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$CA_PEM")" "1" "kmsd-ca.pem holds one certificate"
assert_not_contains "$(cat "$CA_PEM")" "PRIVATE" "and no private key"
assert_eq "$(find "$HOME_DIR" -maxdepth 1 -name '*tmp*' | wc -l)" "0" "no temporary file is left in the home"
assert_not_contains "$(cat "$HOME_DIR/config.json")" "$(head -n1 "$HOME_DIR/pin")" "config.json holds no PIN"
ERR_SIZE=$(stat -c %s "$TMP/first.err")

# ---- Malformed HTTP ----------------------------------------------------------------------------
R=$(printf 'POST / HTTP/1.1\r\nHost: x\r\n%sContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s' "$JSON_HEADERS" "$HEALTH" | tls_raw)
assert_eq "$(statuses <<<"$R" | tr '\n' ' ')" "HTTP/1.1 400 " "Content-Length with Transfer-Encoding: one 400, nothing smuggled"
assert_contains "$R" "<EOF>" "and the connection closed"
# (FINDING 1, fixed) two Content-Length headers with different values were taken as the first,
# and the rest of the body served as a pipelined request (request smuggling behind a proxy that
# takes the last): more than one Content-Length gets 400 with Connection: close, on both listeners.
R=$(printf 'POST / HTTP/1.1\r\nHost: x\r\n%sContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}%s' "$JSON_HEADERS" "$HEALTH" | tls_raw)
assert_eq "$(statuses <<<"$R" | tr '\n' ' ')" "HTTP/1.1 400 " "two Content-Lengths: one 400, nothing smuggled"
assert_contains "$R" "<EOF>" "and the connection closed"
R=$(printf 'POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\ncontent-length: 4\r\n\r\njunkGET /crl/x.crl HTTP/1.1\r\nHost: x\r\n\r\n' | http_raw)
assert_eq "$(statuses <<<"$R" | tr '\n' ' ')" "HTTP/1.1 400 " "plain HTTP, two Content-Lengths (even equal): one 400, nothing smuggled"
assert_contains "$R" "<EOF>" "and the connection closed"
R=$(printf 'POST / HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{}\r\n0\r\n\r\n' "$JSON_HEADERS" | tls_raw)
assert_match "$R" "^HTTP/1.1 (400|413)" "a chunk of 2^64-1 bytes: refused"
assert_contains "$R" "<EOF>" "and the connection closed"
R=$(printf 'POST / HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\n-1\r\n{}\r\n0\r\n\r\n' "$JSON_HEADERS" | tls_raw)
assert_match "$R" "^HTTP/1.1 (400|413)" "a negative chunk size: refused"
R=$(printf 'POST / HTTP/1.1\r\nHost: x\r\n%sContent-Length: -1\r\n\r\n{}' "$JSON_HEADERS" | tls_raw)
assert_match "$R" "^HTTP/1.1 400" "a negative Content-Length: 400"
R=$(printf 'POST / HTTP/1.1\r\nHost: x\r\n%sContent-Length: 99999999999999999999999\r\n\r\n{}' "$JSON_HEADERS" | tls_raw)
assert_match "$R" "^HTTP/1.1 (400|413)" "a Content-Length beyond 64 bits: refused"
R=$(printf 'POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.\r\n ListKeys\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}' | tls_raw)
assert_contains "$R" '"__type":"UnknownOperationException"' "a folded X-Amz-Target does not reach an operation"
R=$(printf 'BREW / HTTP/1.1\r\nHost: x\r\n\r\n' | tls_raw)
assert_match "$R" "^HTTP/1.1 (405|501)" "an absurd method: 405/501"
R=$({ printf 'GET /'; head -c 100000 /dev/zero | tr '\0' a; printf ' HTTP/1.1\r\nHost: x\r\n\r\n'; } | tls_raw)
# Refused, then closed: the answer may be lost to the reset of a close with unread input.
assert_match "$R" "^(HTTP/1.1 (400|414) .*<EOF>|<EOF>|<ERROR .*>)$" "a 100 KB request line: refused and closed"
R=$({ printf 'POST / HTTP/1.1\r\nHost: x\r\n%sX-A: ' "$JSON_HEADERS"; head -c 20000 /dev/zero | tr '\0' a; printf '\r\nContent-Length: 2\r\n\r\n{}'; } | tls_raw)
assert_match "$R" "^(HTTP/1.1 (400|431) .*<EOF>|<EOF>|<ERROR .*>)$" "20 KB of headers: refused and closed"
R=$({ printf 'POST / HTTP/1.1\r\nHost: x\r\n%s' "$JSON_HEADERS"; for i in $(seq 200); do printf 'X-%d: a\r\n' "$i"; done; printf 'Content-Length: 2\r\n\r\n{}'; } | tls_raw)
assert_match "$R" "^HTTP/1.1 400" "200 headers: 400"
assert_contains "$R" "<EOF>" "and the connection closed"
R=$(printf 'GET /health\r\n\r\n' | tls_raw)
assert_match "$R" "^HTTP/1.1 400" "an HTTP/0.9 request line: 400"
R=$(printf 'POST / HTTP/1.0\r\n%sContent-Length: 2\r\n\r\n{}' "$JSON_HEADERS" | tls_raw)
assert_match "$R" '^HTTP/1.[01] 400' "HTTP/1.0: answered"
assert_contains "$R" '"__type":"MissingAuthenticationTokenException"' "as AWS answers an unsigned request"
assert_contains "$R" "<EOF>" "and closed (no keep-alive asked)"
R=$({ for _ in $(seq 50); do printf '%s' "$HEALTH"; done; printf 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'; } | tls_raw 10)
assert_eq "$(statuses <<<"$R" | grep -c 'HTTP/1.1 200')" "51" "51 requests pipelined in one write: 51 answers"
R=$(printf 'POST / HTTP/1.1\r\nHost: x\r\n%sContent-Length: 3\r\nConnection: close\r\n\r\n{\0}' "$JSON_HEADERS" | tls_raw)
assert_match "$R" '"__type":"(SerializationException|MissingAuthenticationTokenException)"' "a NUL in a JSON body: refused by name"
R=$(printf 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n' | "$PY" "$ATTACK" raw "$PORT" - 5)
assert_eq "$R" "<EOF>" "plain HTTP on the TLS port: closed without an answer"

# ---- X-Amz-Target and Content-Type games -------------------------------------------------------
for t in TrentService.acm:ListCertificates TrentService.acm-pca:ListCertificateAuthorities \
    trentservice.ListKeys TrentServiceX.ListKeys TrentService. TrentService.LookupEvents \
    TrentService.cloudtrail:LookupEvents TrentService.AssumeRole TrentService.sts:AssumeRole \
    CertificateManager.Encrypt ACMPrivateCA.ListKeys 'TrentService.ListKeys x' \
    'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEventsX' .ListKeys ListKeys; do
    R=$(printf 'POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: %s\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}' "$t" | tls_raw)
    assert_contains "$R" '"__type":"UnknownOperationException"' "X-Amz-Target \"$t\": UnknownOperationException"
done
for ct in application/x-amz-json-1.0 application/json application/x-amz-json-1.1x text/plain ''; do
    R=$(printf 'POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Type: %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}' "$ct" | tls_raw)
    assert_match "$R" '^HTTP/1.1 400' "Content-Type \"$ct\": 400"
done

# ---- The query protocol's form -----------------------------------------------------------------
query() { # query BODY [URL_QUERY]: an unsigned form POST, raw answer
    printf 'POST /%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
        "${2:-}" "${#1}" "$1" | tls_raw
}
R=$(query 'Version=2011-06-15' '?Action=AssumeRole')
assert_contains "$R" "<Code>InvalidAction</Code>" "Action in the URL's query is not taken: InvalidAction"
R=$(query 'Action=GetCallerIdentity&Action=AssumeRole&Version=2011-06-15')
assert_contains "$R" "<Code>InvalidParameterValue</Code>" "a repeated Action: InvalidParameterValue"
R=$(query 'Action=GetSessionToken&Version=2011-06-15&DurationSeconds=99999999999999999999')
assert_contains "$R" "<Code>InvalidParameterValue</Code>" "DurationSeconds of 20 digits: InvalidParameterValue"
R=$(query 'Action=GetSessionToken&Version=2011-06-15&DurationSeconds=-1')
assert_contains "$R" "<Code>InvalidParameterValue</Code>" "a negative DurationSeconds: InvalidParameterValue"
R=$(query 'Action=%00&Version=2011-06-15')
assert_contains "$R" "<Code>InvalidParameterValue</Code>" "a NUL in a parameter: InvalidParameterValue"
R=$(query 'Action=%ZZ')
assert_contains "$R" "<Code>InvalidParameterValue</Code>" "a bad escape: InvalidParameterValue"
R=$(query 'Action=<x>&Version=2011-06-15')
assert_contains "$R" "Could not find operation &lt;x&gt;" "the Action quoted back is XML-escaped"
R=$(query 'Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Target=TrentService.ListKeys')
assert_contains "$R" "<Code>InvalidParameterValue</Code>" "a KMS target smuggled in the form: refused"
R=$(query "$(head -c 200000 /dev/zero | tr '\0' a)")
assert_match "$R" "^HTTP/1.1 400" "a 200 KB form: 400"
# (FINDING 5, fixed) an unsigned query-protocol request answers, as STS does,
# MissingAuthenticationToken with HTTP 403 (handler.c's sts_errors[]).
R=$(query 'Action=GetCallerIdentity&Version=2011-06-15')
assert_contains "$R" "<Code>MissingAuthenticationToken</Code>" "an unsigned STS request: MissingAuthenticationToken"
assert_match "$R" "^HTTP/1.1 403" "with HTTP 403"

# ---- /health and /metrics ----------------------------------------------------------------------
H=$(curl -sS --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/health")
assert_eq "$("$PY" -c 'import json,sys; print(sorted(json.load(sys.stdin)))' <<<"$H")" "['Region', 'Status']" "/health says Status and Region, nothing more"
H=$(curl -sS -i --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/health")
assert_not_contains "$(tr '[:upper:]' '[:lower:]' <<<"$H")" "server:" "no Server header naming the software"

# ---- The plain-HTTP listener -----------------------------------------------------------------------
for p in /health /metrics / /crl/../../config.json /crl/..%2f..%2fconfig.json '/crl/..%2fpin%00.crl' \
    /crl/%2e%2e%2fkms.db.crl "/crl/x'%20OR%201=1--.crl" /crl/ /ocsp; do
    C=$(curl -sS -o /dev/null -w '%{http_code}' --path-as-is --max-time 20 "http://127.0.0.1:$HPORT$p" || true)
    assert_match "$C" "^(400|404|405)$" "plain HTTP GET $p: refused ($C)"
done
C=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 "http://127.0.0.1:$HPORT/" \
    -H "X-Amz-Target: TrentService.ListKeys" -H "Content-Type: application/x-amz-json-1.1" --data-binary '{}' || true)
assert_eq "$C" "404" "plain HTTP: the API is not served"
R=$({ printf 'GET /ocsp/'; head -c 100000 /dev/zero | tr '\0' A; printf ' HTTP/1.1\r\nHost: x\r\n\r\n'; } | http_raw)
assert_match "$R" "^(HTTP/1.1 (400|414) .*<EOF>|<EOF>|<ERROR .*>)$" "a 100 KB OCSP GET path: refused and closed"
curl -sS --max-time 20 -o "$TMP/junk.der" "http://127.0.0.1:$HPORT/ocsp" --data-binary 'junk' || true
assert_eq "$(od -An -tx1 "$TMP/junk.der" | tr -d ' \n')" "30030a0101" "junk POSTed to /ocsp: OCSP malformedRequest"
curl -sS --max-time 20 -o "$TMP/junk.der" "http://127.0.0.1:$HPORT/ocsp/AAAA" || true
assert_eq "$(od -An -tx1 "$TMP/junk.der" | tr -d ' \n')" "30030a0101" "junk in an OCSP GET: malformedRequest"
# (FINDING 2, fixed) the plain-HTTP listener has the TLS side's deadline and connection count:
# a client sending a byte a second is cut at the header deadline (evhttp's own timeout is one of
# inactivity, which it never trips).
SECS=$("$PY" "$ATTACK" slow "$HPORT" 20)
if [ "$SECS" -le 8 ]; then ok "plain HTTP: a byte a second is cut at the header deadline ($SECS s)"
else fail "plain HTTP: a client sending a byte a second was still connected after $SECS s"; fi

# ---- TLS ---------------------------------------------------------------------------------------
for v in tls1 tls1_1; do
    OUT=$(timeout 20 openssl s_client "-$v" -connect "127.0.0.1:$PORT" -CAfile "$CA_PEM" </dev/null 2>&1 || true)
    assert_contains "$OUT" "Cipher is (NONE)" "a $v client is refused"
done
OUT=$( (printf 'R\n'; sleep 2) | timeout 20 openssl s_client -tls1_2 -connect "127.0.0.1:$PORT" -CAfile "$CA_PEM" 2>&1 || true)
assert_contains "$OUT" "no renegotiation" "a client's renegotiation (TLS 1.2) is refused"
OUT=$(timeout 20 openssl s_client -tls1_2 -cipher 'aNULL:eNULL:EXPORT:RC4:3DES:DES' -connect "127.0.0.1:$PORT" </dev/null 2>&1 || true)
assert_contains "$OUT" "Cipher is (NONE)" "null, export, RC4 and DES suites are refused"

# ---- Throttle and logs -----------------------------------------------------------------------------
# kmsd's own stderr does not grow per request: 100 refused requests later it is as it was.
for _ in $(seq 100); do printf '%s' "$HEALTH"; done | tls_raw 5 >/dev/null
for _ in $(seq 20); do printf 'GARBAGE\r\n\r\n' | tls_raw 2 >/dev/null; done
assert_eq "$(stat -c %s "$TMP/first.err")" "$ERR_SIZE" "kmsd's stderr does not grow per request"
export AWS_CA_BUNDLE="$CA_PEM"
AK=$(awk -F' *= *' '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1=="aws_access_key_id"{print $2}' "$HOME_DIR/credentials")
SK=$(awk -F' *= *' '/^\[default\]/{p=1;next} /^\[/{p=0} p && $1=="aws_secret_access_key"{print $2}' "$HOME_DIR/credentials")
signed() { # signed SECRET: ListKeys signed by curl --aws-sigv4 with access key AK; prints "CODE SECONDS"
    curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/" \
        --aws-sigv4 "aws:amz:us-east-1:kms" --user "$AK:$1" \
        -H "X-Amz-Target: TrentService.ListKeys" -H "Content-Type: application/x-amz-json-1.1" \
        --data-binary '{}' 2>/dev/null || true
}
if [[ "$(signed "$SK")" == 200* ]]; then
    for _ in $(seq 6); do signed wrongwrongwrongwrongwrongwrongwrongwrong1 >/dev/null; done
    R=$(signed wrongwrongwrongwrongwrongwrongwrongwrong1)
    assert_match "$R" '^400 ([1-9]|[1-9][0-9])\.' "after 6 wrong signatures, the next failure from that address is delayed ($R)"
    # (FINDING 3, fixed) only failures are delayed: a client with a wrong secret does not slow
    # every client sharing its address (all of loopback, a NAT, a load balancer, an IPv6 /64).
    R=$(signed "$SK")
    assert_match "$R" '^200 0\.' "while it lasts, a correctly signed request from that address is answered at once ($R)"
fi

# ---- The metrics policy: X-Forwarded-For does not count ---------------------------------------------
set_server "$HOME_DIR" '{"metrics_allow": ["192.0.2.0/24"]}'
kill -HUP "$PID"
sleep 1.5
C=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$CA_PEM" "https://127.0.0.1:$PORT/metrics" \
    -H "X-Forwarded-For: 192.0.2.1" -H "X-Real-IP: 192.0.2.1" -H "Forwarded: for=192.0.2.1" || true)
assert_eq "$C" "403" "/metrics: an allowed address in X-Forwarded-For / Forwarded does not open it"

# ---- Connections held on the plain-HTTP port -------------------------------------------------------
# (FINDING 4, fixed) connections to the plain-HTTP port were not counted against max_connections, so a
# client holding open-files-limit of them leaves kmsd without descriptors: HTTPS accepts fail,
# and libevent's listener, still readable, logs "[warn] Error from accept() call: Too many open
# files" in a busy loop (290 MB of stderr in seconds, one core at 100%). Fix in http.c: FINDING 2's
# count (plain connections refused past max_connections), and evconnlistener_set_error_cb on every
# listener (bind_dup: evconnlistener_new then evhttp_bind_listener) whose callback, on EMFILE /
# ENFILE, disables the listener for a second (evconnlistener_disable + a one-shot timer that
# evconnlistener_enable's it) and logs once; also event_set_log_callback to rate-limit libevent's
# warnings. kmsd runs here with 1200 descriptors (ulimit -Hn), and 1300 connections are held.
# (Another kmsd on the same home, as several may serve one; stopped by its pid.)
HOLD_PORT=$(free_port); HOLD_HPORT=$(free_port)
( ulimit -n 1200; exec "$KMSD" --home "$HOME_DIR" --listen "127.0.0.1:$HOLD_PORT" \
    --http-listen "127.0.0.1:$HOLD_HPORT" --no-scheduler >"$TMP/hold.out" 2>"$TMP/hold.err" ) &
HOLD_PID=$!; PIDS+=("$HOLD_PID")
for _ in $(seq 300); do grep -q "listening on https" "$TMP/hold.out" 2>/dev/null && break; sleep 0.1; done
# Held past their deadline (header 3 s + body 2 s), kmsd has cut them: HTTPS answers.
S=$("$PY" "$ATTACK" hold "$HOLD_HPORT" 1300 "$HOLD_PORT" "$CA_PEM" 7)
assert_eq "$S" "HTTP/1.1 200 OK" "with 1300 plain-HTTP connections held past their deadline, HTTPS answers"
assert_match "$(stat -c %s "$TMP/hold.err")" '^[0-9]{1,5}$' "and kmsd's stderr stays small"
kill "$HOLD_PID"

# (FINDING 6, lowered) the default max_connections is also bounded by a quarter of the physical
# memory / max_body_bytes, logged at start.
MEM_KB=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)
if [ "${MEM_KB:-0}" -gt 0 ] && [ "$MEM_KB" -lt $((700 * 1024 * 1024)) ]; then
    assert_contains "$(cat "$TMP/first.err")" "by the memory bound" "the default max_connections is bounded by memory, and says so"
fi
# FINDING 6 (no check: it needs gigabytes): every connection may hold a whole body of
# max_body_bytes (3 MiB) in memory until its deadline (header + body timeouts, 40 s by default),
# and max_connections is 65536: 100 connections each sending 3 MiB - 1 bytes added 180 MB to
# kmsd's RSS, unauthenticated. Fix in http.c / config.c: bound the bytes buffered over all
# connections (an atomic budget, e.g. 256 MiB, checked in tls_bev's read side or from evhttp's
# input buffer callbacks; past it, new connections are shut as over max_connections), or
# default max_connections so that max_connections x max_body_bytes fits the machine.
