"""Raw clients for test_kmsd_attack.sh (python3 standard library only).

  kmsd_attack.py raw PORT CAFILE|- WAIT   sends stdin as is (over TLS unless CAFILE is "-") and
                                           prints the raw response, then <EOF> when the server
                                           closed, <TIMEOUT> when it kept the connection open
  kmsd_attack.py slow PORT SECONDS        plain TCP: a request's headers a byte a second; prints
                                           the seconds until the server closed (SECONDS at most)
  kmsd_attack.py hold PORT N TLSPORT CAFILE
                                           opens N plain TCP connections to PORT and holds them
                                           (a byte a second), then makes one TLS request to
                                           TLSPORT (GET /health) and prints its status line
"""
import resource
import socket
import ssl
import sys
import time


def connect(port, cafile, wait):
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    if cafile != "-":
        ctx = ssl.create_default_context(cafile=cafile)
        s = ctx.wrap_socket(s, server_hostname="localhost")
    return s


def raw(port, cafile, wait):
    data = sys.stdin.buffer.read()
    out = b""
    try:
        s = connect(port, cafile, wait)
        try:
            s.sendall(data)
        except (OSError, ssl.SSLError):
            pass  # the server may answer and close before reading all: read what it sent
        while True:
            chunk = s.recv(65536)
            if not chunk:
                out += b"<EOF>"
                break
            out += chunk
    except socket.timeout:
        out += b"<TIMEOUT>"
    except (OSError, ssl.SSLError) as e:
        out += b"<ERROR %s>" % str(e).encode()
    sys.stdout.write(out.decode("latin1"))


def slow(port, limit):
    s = socket.create_connection(("127.0.0.1", port))
    start = time.time()
    s.setblocking(False)
    closed = False
    for ch in b"GET /crl/x.crl HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 1000:
        if time.time() - start > limit:
            break
        try:
            s.send(bytes([ch]))
            if s.recv(4096) == b"":
                closed = True
                break
        except BlockingIOError:
            pass
        except OSError:
            closed = True
            break
        time.sleep(1)
    print("%d" % round(time.time() - start))


def hold(port, n, tls_port, cafile, wait=2.0):
    """n connections to port, held (idle) for wait seconds; then a TLS /health to tls_port."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = []
    try:
        for _ in range(n):
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    except OSError:
        pass
    time.sleep(wait)
    try:
        with connect(tls_port, cafile, 5) as t:
            t.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            print(t.recv(200).split(b"\r\n", 1)[0].decode())
    except (OSError, ssl.SSLError) as e:
        print("no answer: %s" % e)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "raw":
        raw(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
    elif mode == "slow":
        slow(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "hold":
        hold(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5],
             float(sys.argv[6]) if len(sys.argv) > 6 else 2.0)
