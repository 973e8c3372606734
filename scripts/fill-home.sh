#!/usr/bin/env bash
# Fills a KMS home with customer master keys, in one process: libkms (BUILD_DIR/libkms.so) loaded
# into python3 through ctypes, one kms_client, kms_call("CreateKey") N times from THREADS threads
# (ctypes releases the GIL around each call). Each key is a real CMK made through the gate
# (policy, audit record, material generated in the HSM), as `kmsctl create-key` makes one, at a
# fraction of the cost of N processes.
#   usage: scripts/fill-home.sh HOME N [THREADS (2)] [BUILD_DIR (build)]
#   e.g.:  build/kmsctl --home /dev/shm/h init && scripts/fill-home.sh /dev/shm/h 10000
# Prints progress on stderr every 1,000 keys and the rate at the end.
set -euo pipefail
home=${1:?usage: scripts/fill-home.sh HOME N [THREADS] [BUILD_DIR]}
count=${2:?usage: scripts/fill-home.sh HOME N [THREADS] [BUILD_DIR]}
threads=${3:-2}
build=${4:-build}
lib="$build/libkms.so"
[ -r "$lib" ] || { echo "fill-home: $lib not found (build first, or pass BUILD_DIR)" >&2; exit 2; }
[ -r "$home/config.json" ] || { echo "fill-home: $home is not a KMS home (kmsctl init)" >&2; exit 2; }
case $count$threads in *[!0-9]*) echo "fill-home: N and THREADS are whole numbers" >&2; exit 2 ;; esac

exec python3 - "$lib" "$home" "$count" "$threads" <<'PY'
import ctypes, sys, threading, time

lib_path, home, count, threads = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
lib = ctypes.CDLL(lib_path)

class Options(ctypes.Structure):  # kms_client_options (include/kms/kms.h)
    _fields_ = [("home", ctypes.c_char_p), ("profile", ctypes.c_char_p),
                ("user_agent", ctypes.c_char_p)]

lib.kms_client_open.restype = ctypes.c_void_p
lib.kms_client_open.argtypes = [ctypes.POINTER(Options)]
lib.kms_client_free.argtypes = [ctypes.c_void_p]
lib.kms_call.restype = ctypes.c_int
lib.kms_call.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                         ctypes.POINTER(ctypes.c_void_p)]
lib.kms_string_free.argtypes = [ctypes.c_void_p]
lib.kms_last_error_message.restype = ctypes.c_char_p

opts = Options(home, None, b"fill-home/1")
client = lib.kms_client_open(ctypes.byref(opts))
if not client:
    sys.exit("fill-home: %s" % lib.kms_last_error_message().decode())

lock = threading.Lock()
state = {"next": 0, "done": 0, "error": None}
request = b'{"Description": "fill-home"}'
t0 = time.monotonic()

def work():
    while True:
        with lock:
            if state["error"] or state["next"] >= count:
                return
            state["next"] += 1
        resp = ctypes.c_void_p()
        if lib.kms_call(client, b"CreateKey", request, ctypes.byref(resp)) != 0:
            with lock:
                state["error"] = lib.kms_last_error_message().decode()
            return
        lib.kms_string_free(resp)
        with lock:
            state["done"] += 1
            done = state["done"]
        if done % 1000 == 0:
            print("fill-home: %d keys, %.0f/s" % (done, done / (time.monotonic() - t0)),
                  file=sys.stderr, flush=True)

ts = [threading.Thread(target=work) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
lib.kms_client_free(client)
elapsed = time.monotonic() - t0
print("fill-home: %d keys created in %.1f s (%.0f/s)" % (state["done"], elapsed,
      state["done"] / elapsed if elapsed > 0 else 0), file=sys.stderr)
if state["error"]:
    sys.exit("fill-home: CreateKey: %s" % state["error"])
PY
