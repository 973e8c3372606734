"""Misbehaving clients for test_kmsd.sh (python3 standard library only).

  kmsd_clients.py slow PORT          sends a request's headers a byte a second; prints the
                                     seconds until the server closed the connection
  kmsd_clients.py idle PORT N CAFILE opens N TCP connections that send nothing, then makes one
                                     TLS request (GET /health) and prints its status line; then
                                     prints how many of the N are still open after waiting
  kmsd_clients.py vanish PORT CAFILE sends requests and closes at once, without reading
  kmsd_clients.py raw PORT CAFILE    sends stdin over TLS as is and prints the raw response
  kmsd_clients.py burst PORT CAFILE N [ROUNDS]
                                     N connections, opened first, then each sends ROUNDS
                                     (default 1) SigV4-signed GenerateRandom requests at once
                                     (credentials from AWS_ACCESS_KEY_ID and
                                     AWS_SECRET_ACCESS_KEY); prints the answers with status 200
                                     and the distinct x-amzn-RequestId values, "200s ids"
  kmsd_clients.py vanish_api PORT CAFILE N
                                     N connections each send a signed ListKeys (the same
                                     credentials) and close without reading the answer; prints
                                     "done"
"""
import datetime
import hashlib
import hmac
import http.client
import threading
import os
import resource
import socket
import ssl
import sys
import time


def tls_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


def slow(port):
    s = socket.create_connection(("127.0.0.1", port))
    start = time.time()
    # The TLS handshake is not even begun: the server must cut the connection all the same.
    try:
        for ch in b"POST / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 100:
            s.send(bytes([ch]))
            time.sleep(1)
            if time.time() - start > 60:
                break
    except OSError:
        pass
    try:
        s.settimeout(60)
        while s.recv(4096):
            pass
    except OSError:
        pass
    print("%d" % round(time.time() - start))


def idle(port, n, cafile):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    conns = []
    for _ in range(n):
        conns.append(socket.create_connection(("127.0.0.1", port)))
    ctx = tls_context(cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            t.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = t.recv(4096)
                if not chunk:
                    break
                data += chunk
    print(data.split(b"\r\n", 1)[0].decode())
    sys.stdout.flush()
    # The idle ones are cut at the header deadline: see how many the server closed.
    time.sleep(float(sys.argv[5]) if len(sys.argv) > 5 else 0)
    still = 0
    for c in conns:
        c.setblocking(False)
        try:
            if c.recv(1) == b"":
                continue
            still += 1
        except BlockingIOError:
            still += 1
        except OSError:
            pass
        c.close()
    print(still)


def vanish(port, cafile):
    ctx = tls_context(cafile)
    for _ in range(20):
        raw = socket.create_connection(("127.0.0.1", port))
        t = ctx.wrap_socket(raw, server_hostname="localhost")
        t.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # Gone without reading: the server writes to a closed connection.
        t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        t.close()
    print("done")


def raw(port, cafile):
    ctx = tls_context(cafile)
    data = sys.stdin.buffer.read()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as r:
        with ctx.wrap_socket(r, server_hostname="localhost") as t:
            t.sendall(data)
            out = b""
            try:
                while True:
                    chunk = t.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            except (OSError, ssl.SSLError):
                pass
    sys.stdout.write(out.decode("latin-1"))


def signed_headers(port, target, body):
    key = os.environ["AWS_ACCESS_KEY_ID"]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    now = datetime.datetime.now(datetime.timezone.utc)
    amzdate = now.strftime("%Y%m%dT%H%M%SZ")
    date = amzdate[:8]
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "host": "127.0.0.1:%d" % port,
        "x-amz-date": amzdate,
        "x-amz-target": target,
    }
    names = ";".join(sorted(headers))
    canonical = "\n".join(["POST", "/", "", "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)),
                           names, hashlib.sha256(body).hexdigest()])
    scope = "%s/us-east-1/kms/aws4_request" % date
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (date, "us-east-1", "kms", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        key, scope, names, sig)
    return headers


def burst(port, cafile, n, rounds):
    ctx = tls_context(cafile)
    conns = []
    for _ in range(n):
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
        c.connect()
        conns.append(c)
    start = threading.Barrier(n)
    lock = threading.Lock()
    oks = [0]
    ids = set()
    body = b'{"NumberOfBytes": 32}'

    def one(c):
        start.wait()
        for _ in range(rounds):
            try:
                c.request("POST", "/", body, signed_headers(port, "TrentService.GenerateRandom", body))
                r = c.getresponse()
                r.read()
            except (OSError, http.client.HTTPException):
                return
            with lock:
                oks[0] += r.status == 200
                ids.add(r.getheader("x-amzn-RequestId"))
            if r.getheader("Connection", "").lower() == "close":
                return

    threads = [threading.Thread(target=one, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids.discard(None)
    print("%d %d" % (oks[0], len(ids)))


def vanish_api(port, cafile, n):
    ctx = tls_context(cafile)
    socks = []
    for _ in range(n):
        raw = socket.create_connection(("127.0.0.1", port))
        socks.append(ctx.wrap_socket(raw, server_hostname="localhost"))
    body = b"{}"
    for t in socks:
        h = "".join("%s: %s\r\n" % kv for kv in signed_headers(port, "TrentService.ListKeys", body).items())
        t.sendall(("POST / HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (h, len(body))).encode() + body)
    time.sleep(0.3)  # the requests are in: their calls are queued or under way
    for t in socks:
        t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        t.close()
    print("done")


if __name__ == "__main__":
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "slow":
        slow(port)
    elif cmd == "idle":
        idle(port, int(sys.argv[3]), sys.argv[4])
    elif cmd == "vanish":
        vanish(port, sys.argv[3])
    elif cmd == "raw":
        raw(port, sys.argv[3])
    elif cmd == "burst":
        burst(port, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    elif cmd == "vanish_api":
        vanish_api(port, sys.argv[3], int(sys.argv[4]))
