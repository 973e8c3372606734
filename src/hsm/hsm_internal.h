/* Private to src/hsm: the kms_hsm handle and what its files share (the session pool, the handle
 * cache, finding key objects, PKCS#11 errors, the key types' details). */
#ifndef KMS_HSM_HSM_INTERNAL_H
#define KMS_HSM_HSM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "hsm/hsm.h"
#include "hsm/hsm_module.h"
#include "util/error.h"

/* Sessions a handle may open when the configuration gives no number. Sessions are opened as
 * callers need them (one at open, so a command-line process opens one). More than 8 is not
 * faster on a small machine: at 32 threads on 2 cores, 64 sessions let every caller into
 * SoftHSM2 at once, where they queue on its own locks less fairly than on the pool (HsmEncrypt
 * 7% slower, p99 16 ms instead of 4 ms; GenerateDataKey the same within noise). */
#define DEFAULT_POOL_SIZE 8
#define MAX_POOL_SIZE 256
#define MAX_KEY_LABEL 255
/* Scratch buffers up to this size live on the stack (the hot path: wrapping data keys). */
#define STACK_SCRATCH 1024
/* Large enough for any signature we make: RSA-4096 is 512 bytes, ECDSA P-384 r||s 96. */
#define MAX_SIG_LEN 512

typedef struct cache_entry {
    char *label;
    CK_OBJECT_HANDLE handle;
} cache_entry;

struct kms_hsm {
    kms_hsm_module *mod;
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    char *token_label;

    /* Session pool: idle sessions on a stack (room for pool_size); a borrower finding none opens
     * one more while fewer than pool_size are open, else waits on pool_cond. */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    CK_SESSION_HANDLE *idle;
    size_t nidle;
    size_t nopen; /* sessions open: idle or borrowed (at least one from open to close) */
    size_t pool_size;
    uint64_t pool_wait_ns; /* borrowers' time waiting for a session, summed (under pool_lock) */

    /* label -> handle of the secret or private key object, sorted by label. */
    pthread_rwlock_t cache_lock;
    cache_entry *cache;
    size_t ncache;
    size_t cache_cap;

    /* Serialises generate and destroy, so that "label exists?" and "create it" are one step for
     * this handle. */
    pthread_mutex_t gen_lock;
    /* Serialises reads and updates of data objects, so that a reader in this handle never sees
     * the two objects of a replacement (kms_hsm_data_set). */
    pthread_mutex_t data_lock;
};

/* ---- Errors (hsm_session.c) ---------------------------------------------------------------- */

/* Raises the error for a failed PKCS#11 call on key `label`. Returns -1. */
int kms_hsm_raise_rv(CK_RV rv, const char *call, const char *label);
/* ValidationException unless label is 1 to MAX_KEY_LABEL bytes. */
int kms_hsm_check_label(const char *label) __attribute__((warn_unused_result));

/* Did C_Decrypt refuse the ciphertext itself (tag or padding), rather than fail? */
bool kms_hsm_ciphertext_refused(CK_RV rv, const char *call);

/* ---- Session pool (hsm_session.c) ----------------------------------------------------------- */

/* A logged-in session of the pool: an idle one, else a new one while fewer than pool_size are
 * open, else the first one given back. */
CK_SESSION_HANDLE kms_hsm_session_borrow(kms_hsm *h);
/* Gives s back; last_rv is the result of its last call (a suspect session is replaced). */
void kms_hsm_session_return(kms_hsm *h, CK_SESSION_HANDLE s, CK_RV last_rv);

/* ---- Object handle cache (hsm_cache.c) ------------------------------------------------------ */

bool kms_hsm_cache_get(kms_hsm *h, const char *label, CK_OBJECT_HANDLE *handle);
void kms_hsm_cache_put(kms_hsm *h, const char *label, CK_OBJECT_HANDLE handle);
void kms_hsm_cache_drop(kms_hsm *h, const char *label);

/* ---- Object lookup (hsm_session.c) ---------------------------------------------------------- */

#define MAX_OBJECTS_PER_LABEL 16

/* Every object labelled `label` (up to max). */
int kms_hsm_find_objects(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *objs,
                         CK_ULONG max, CK_ULONG *count) __attribute__((warn_unused_result));
/* The secret or private key object labelled `label`, found in the token (no cache). */
int kms_hsm_find_key(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *key)
    __attribute__((warn_unused_result));
/* An operation on the key object: returns the PKCS#11 result and names the failed call. */
typedef CK_RV (*kms_hsm_key_op)(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *ctx,
                                const char **call);
/* Runs op on a pooled session with the key labelled `label`: from the cache, else found in the
 * token. A stale cached handle is dropped and the key found once more. Returns 0 with *rv the
 * result of op (the caller maps it to an error), or -1 if the key could not be found. */
int kms_hsm_with_key(kms_hsm *h, const char *label, kms_hsm_key_op op, void *ctx, CK_RV *rv,
                     const char **call) __attribute__((warn_unused_result));

/* ---- Key types (hsm_keys.c) ----------------------------------------------------------------- */

typedef struct kms_hsm_key_spec {
    kms_hsm_key_type type;
    enum { SPEC_AES, SPEC_HMAC, SPEC_RSA, SPEC_EC } kind;
    CK_ULONG bits_or_len;     /* AES/HMAC: CKA_VALUE_LEN bytes; RSA: modulus bits */
    const uint8_t *ec_params; /* DER OID of the named curve (RFC 5480 2.1.1.1) */
    CK_ULONG ec_params_len;
    const char *group; /* OpenSSL group name */
    size_t field_len;  /* EC field element bytes */
    CK_MECHANISM_TYPE hmac_mech;
    size_t mac_len;
    bool decrypt; /* RSA: the private key decrypts instead of signing */
    bool derive;  /* EC: the private key derives (ECDH) instead of signing */
} kms_hsm_key_spec;

/* The details of a key type, or NULL. */
const kms_hsm_key_spec *kms_hsm_key_spec_of(kms_hsm_key_type type);

#define ATTR(t, p, n)                                                                              \
    {                                                                                              \
        (t), (void *)(p), (CK_ULONG)(n)                                                            \
    }
#define ATTR_BOOL(t, v) ATTR((t), &(v), sizeof(CK_BBOOL))
#define NATTR(a) ((CK_ULONG)(sizeof(a) / sizeof((a)[0])))

/* ---- Scratch space (hsm_gcm.c) ------------------------------------------------------------ */

/* Scratch space: on the stack when small, else on the heap. Always wiped when released. */
typedef struct kms_hsm_scratch {
    uint8_t stack[STACK_SCRATCH];
    uint8_t *p;
    size_t n;
} kms_hsm_scratch;
int kms_hsm_scratch_get(kms_hsm_scratch *sc, size_t n) __attribute__((warn_unused_result));
void kms_hsm_scratch_release(kms_hsm_scratch *sc);

#endif
