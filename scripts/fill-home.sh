#!/usr/bin/env bash
# Fills a KMS home with customer master keys, in one process: libkms (BUILD_DIR/libkms.so) loaded
# into python3 through ctypes, one kms_client, kms_call("CreateKey") N times from THREADS threads
# (ctypes releases the GIL around each call). Each key is a real CMK made through the gate
# (policy, audit record, material generated in the HSM), as `kmsctl create-key` makes one, at a
# fraction of the cost of N processes.
#   usage: scripts/fill-home.sh HOME N [THREADS (2)] [BUILD_DIR (build)]
#          scripts/fill-home.sh --hsm-only HOME N
#   e.g.:  build/kmsctl --home /dev/shm/h init && scripts/fill-home.sh /dev/shm/h 10000
# Prints progress on stderr every 1,000 keys and the rate at the end.
#
# CreateKey itself costs time in proportion to the objects already in the token (SoftHSM2's
# C_FindObjects opens every object file), so filling takes about N^2: 10,000 keys take some
# 15 minutes. --hsm-only adds N AES-256 secret key objects with the attributes of a CMK's
# material (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not extractable; labels "fill:I") straight
# into the home's token through PKCS#11 (a small C program compiled here, the home's PIN from
# HOME/pin), without metadata: what SoftHSM2 reads and scans when a command opens the home is
# the same, and 100,000 take a minute.
set -euo pipefail
if [ "${1:-}" = --hsm-only ]; then
    home=${2:?usage: scripts/fill-home.sh --hsm-only HOME N}
    count=${3:?usage: scripts/fill-home.sh --hsm-only HOME N}
    case $count in *[!0-9]*) echo "fill-home: N is a whole number" >&2; exit 2 ;; esac
    [ -r "$home/pin" ] && [ -r "$home/hsm/softhsm2.conf" ] ||
        { echo "fill-home: $home has no pin file and SoftHSM2 configuration" >&2; exit 2; }
    module=$(sed -nE 's/.*"pkcs11_module": *"([^"]*)".*/\1/p' "$home/config.json")
    token=$(sed -nE 's/.*"token_label": *"([^"]*)".*/\1/p' "$home/config.json")
    tmp=$(mktemp -d)
    trap 'rm -rf -- "$tmp"' EXIT
    cat >"$tmp/fill.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <p11-kit/pkcs11.h>
int main(int argc, char **argv)
{
    const char *module = argv[1], *token = argv[2], *pin_file = argv[3];
    long n = atol(argv[4]);
    char pin[256] = "";
    FILE *pf = fopen(pin_file, "r");
    if (pf == NULL || fgets(pin, sizeof pin, pf) == NULL) {
        fprintf(stderr, "fill-home: cannot read %s\n", pin_file);
        return 1;
    }
    fclose(pf);
    pin[strcspn(pin, "\r\n")] = '\0';
    void *lib = dlopen(module, RTLD_NOW);
    CK_C_GetFunctionList gfl = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
    CK_FUNCTION_LIST *f = NULL;
    if (gfl == NULL || gfl(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK) {
        fprintf(stderr, "fill-home: cannot load %s\n", module);
        return 1;
    }
    CK_SLOT_ID slots[64];
    CK_ULONG ns = 64;
    CK_SLOT_ID slot = (CK_SLOT_ID)-1;
    if (f->C_GetSlotList(CK_TRUE, slots, &ns) != CKR_OK) {
        return 1;
    }
    for (CK_ULONG i = 0; i < ns; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK) {
            size_t l = strlen(token);
            if (l <= 32 && memcmp(ti.label, token, l) == 0 &&
                (l == 32 || ti.label[l] == ' ')) {
                slot = slots[i];
            }
        }
    }
    CK_SESSION_HANDLE s;
    if (slot == (CK_SLOT_ID)-1 ||
        f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK ||
        f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)) != CKR_OK) {
        fprintf(stderr, "fill-home: cannot log in to token %s\n", token);
        return 1;
    }
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    for (long i = 0; i < n; i++) {
        char label[64];
        int ll = snprintf(label, sizeof label, "fill:%ld:%d", i, rand());
        CK_ATTRIBUTE t[] = {
            {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
            {CKA_VALUE_LEN, &len, sizeof len}, {CKA_TOKEN, &yes, 1},
            {CKA_PRIVATE, &yes, 1}, {CKA_SENSITIVE, &yes, 1},
            {CKA_EXTRACTABLE, &no, 1}, {CKA_ENCRYPT, &yes, 1},
            {CKA_DECRYPT, &yes, 1}, {CKA_LABEL, label, (CK_ULONG)ll},
            {CKA_ID, label, (CK_ULONG)ll},
        };
        CK_OBJECT_HANDLE k;
        CK_RV rv = f->C_GenerateKey(s, &mech, t, sizeof t / sizeof t[0], &k);
        if (rv != CKR_OK) {
            fprintf(stderr, "fill-home: C_GenerateKey: 0x%lx\n", (unsigned long)rv);
            return 1;
        }
        if ((i + 1) % 10000 == 0) {
            fprintf(stderr, "fill-home: %ld key objects\n", i + 1);
        }
    }
    f->C_CloseSession(s);
    f->C_Finalize(NULL);
    return 0;
}
C
    cc -O2 -o "$tmp/fill" "$tmp/fill.c" $(pkg-config --cflags p11-kit-1) -ldl
    # Under HOME/hsm.lock, as every process of the home opens the token (kms_hsm_config).
    SOFTHSM2_CONF="$home/hsm/softhsm2.conf" flock "$home/hsm.lock" \
        "$tmp/fill" "$module" "$token" "$home/pin" "$count"
    echo "fill-home: $count key objects added to token $token of $home" >&2
    exit 0
fi
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
