/* The session pool of a kms_hsm, PKCS#11 errors, and finding key objects by label. */
#include "hsm/hsm.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#include "hsm/hsm_internal.h"
#include "util/util.h"

/* ---- Errors ------------------------------------------------------------------------------- */

/* Raises the error for a failed PKCS#11 call on key `label`. */
int kms_hsm_raise_rv(CK_RV rv, const char *call, const char *label)
{
    switch (rv) {
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
        return kms_raise(KMS_ERR_INVALID_KEY_USAGE,
                         "key material '%s' cannot be used for this "
                         "operation (%s: %s)",
                         label, call, kms_hsm_ckr_name(rv));
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
        return kms_raise(KMS_ERR_NOT_FOUND, "key material '%s' disappeared from the HSM (%s: %s)",
                         label, call, kms_hsm_ckr_name(rv));
    default:
        return kms_raise(KMS_ERR_HSM, "%s failed for key material '%s': %s (0x%lx)", call, label,
                         kms_hsm_ckr_name(rv), (unsigned long)rv);
    }
}

int kms_hsm_check_label(const char *label)
{
    size_t n = label != NULL ? strlen(label) : 0;
    KMS_ENSURE(n > 0 && n <= MAX_KEY_LABEL, KMS_ERR_VALIDATION, "key label must be 1 to %d bytes",
               MAX_KEY_LABEL);
    return 0;
}

/* Did C_Decrypt refuse the ciphertext itself (tag or padding), rather than fail? PKCS#11 v2.40
 * modules answer CKR_ENCRYPTED_DATA_INVALID (some CKR_ENCRYPTED_DATA_LEN_RANGE); SoftHSM 2.6.1
 * answers CKR_GENERAL_ERROR from C_Decrypt for any decryption its OpenSSL refuses (measured). */
bool kms_hsm_ciphertext_refused(CK_RV rv, const char *call)
{
    return rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
           (strcmp(call, "C_Decrypt") == 0 &&
            (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED));
}

/* ---- Session pool ----------------------------------------------------------------------- */

/* A new session for the pool, or CK_INVALID_HANDLE if the module gives none. */
static CK_SESSION_HANDLE session_open(kms_hsm *h)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    if (h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) !=
        CKR_OK) {
        return CK_INVALID_HANDLE;
    }
    return s;
}

CK_SESSION_HANDLE kms_hsm_session_borrow(kms_hsm *h)
{
    pthread_mutex_lock(&h->pool_lock);
    if (h->nidle == 0 && h->nopen < h->pool_size) {
        /* Room for one more: opened outside the lock (the module may take its time). A module
         * that refuses leaves the borrower waiting for one of the sessions already open (there
         * is at least one: the pool keeps its first from open to close). */
        h->nopen++;
        pthread_mutex_unlock(&h->pool_lock);
        CK_SESSION_HANDLE s = session_open(h);
        if (s != CK_INVALID_HANDLE) {
            return s;
        }
        pthread_mutex_lock(&h->pool_lock);
        h->nopen--;
    }
    if (h->nidle == 0) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (h->nidle == 0) {
            pthread_cond_wait(&h->pool_cond, &h->pool_lock);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        h->pool_wait_ns +=
            (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000 + t1.tv_nsec - t0.tv_nsec);
    }
    CK_SESSION_HANDLE s = h->idle[--h->nidle];
    pthread_mutex_unlock(&h->pool_lock);
    return s;
}

/* Whether a session may still have an operation active, or be gone, after rv. PKCS#11 v2.40
 * 5.2: a call returning anything but CKR_OK or CKR_BUFFER_TOO_SMALL ends the operation; we never
 * pass short buffers, so this is insurance against modules that do not follow the rule. */
static bool session_suspect(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_DATA_LEN_RANGE:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_ATTRIBUTE_SENSITIVE:
    case CKR_ATTRIBUTE_TYPE_INVALID:
        return false;
    default:
        return true;
    }
}

/* Returns s to the pool. A suspect session is replaced by a fresh one (opened before the old one
 * closes, so the application's login, which ends with its last session, is kept). */
void kms_hsm_session_return(kms_hsm *h, CK_SESSION_HANDLE s, CK_RV last_rv)
{
    if (session_suspect(last_rv)) {
        CK_SESSION_HANDLE fresh = session_open(h);
        if (fresh != CK_INVALID_HANDLE) {
            (void)h->f->C_CloseSession(s);
            s = fresh;
        }
    }
    pthread_mutex_lock(&h->pool_lock);
    h->idle[h->nidle++] = s;
    pthread_cond_signal(&h->pool_cond);
    pthread_mutex_unlock(&h->pool_lock);
}

void kms_hsm_pool_stats(kms_hsm *h, size_t *open, size_t *in_use, size_t *max, uint64_t *wait_ns)
{
    *open = *in_use = *max = 0;
    *wait_ns = 0;
    if (h == NULL) {
        return;
    }
    pthread_mutex_lock(&h->pool_lock);
    /* A suspect session is replaced by a fresh one before it closes: nopen stays true. */
    *open = h->nopen;
    *in_use = h->nopen - h->nidle;
    *max = h->pool_size;
    *wait_ns = h->pool_wait_ns;
    pthread_mutex_unlock(&h->pool_lock);
}

/* ---- Object lookup ------------------------------------------------------------------------ */

#define MAX_OBJECTS_PER_LABEL 16

/* Every object labelled `label` (up to max). */
int kms_hsm_find_objects(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *objs,
                         CK_ULONG max, CK_ULONG *count)
{
    CK_ATTRIBUTE tmpl[] = {
        {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
    };
    *count = 0;
    CK_RV rv = h->f->C_FindObjectsInit(s, tmpl, 1);
    if (rv != CKR_OK) {
        return kms_hsm_raise_rv(rv, "C_FindObjectsInit", label);
    }
    rv = h->f->C_FindObjects(s, objs, max, count);
    CK_RV rv_final = h->f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) {
        return kms_hsm_raise_rv(rv, "C_FindObjects", label);
    }
    if (rv_final != CKR_OK) {
        return kms_hsm_raise_rv(rv_final, "C_FindObjectsFinal", label);
    }
    return 0;
}

/* The secret or private key object labelled `label`, found in the token (no cache). */
int kms_hsm_find_key(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_HANDLE objs[MAX_OBJECTS_PER_LABEL];
    CK_ULONG n = 0;
    KMS_GUARD(kms_hsm_find_objects(h, s, label, objs, MAX_OBJECTS_PER_LABEL, &n));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_OBJECT_CLASS cls = 0;
        CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof cls};
        if (h->f->C_GetAttributeValue(s, objs[i], &a, 1) != CKR_OK) {
            continue;
        }
        if (cls == CKO_SECRET_KEY || cls == CKO_PRIVATE_KEY) {
            *key = objs[i];
            return 0;
        }
    }
    return kms_raise(KMS_ERR_NOT_FOUND, "no key material labelled '%s' in token '%s'", label,
                     h->token_label);
}

/* An operation on the key object: returns the PKCS#11 result and names the failed call. */
typedef CK_RV (*kms_hsm_key_op)(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *ctx,
                                const char **call);

/* Runs op on a pooled session with the key labelled `label`: from the cache, else found in the
 * token. A stale cached handle is dropped and the key found once more. Returns 0 with *rv the
 * result of op (the caller maps it to an error), or -1 if the key could not be found. */
int kms_hsm_with_key(kms_hsm *h, const char *label, kms_hsm_key_op op, void *ctx, CK_RV *rv,
                     const char **call)
{
    int r = -1;
    CK_RV last = CKR_OK;
    CK_SESSION_HANDLE s = kms_hsm_session_borrow(h);
    CK_OBJECT_HANDLE key;
    bool cached = kms_hsm_cache_get(h, label, &key);
    if (!cached) {
        if (kms_hsm_find_key(h, s, label, &key) != 0) {
            goto out;
        }
        kms_hsm_cache_put(h, label, key);
    }
    last = op(h, s, key, ctx, call);
    if (cached && (last == CKR_OBJECT_HANDLE_INVALID || last == CKR_KEY_HANDLE_INVALID)) {
        kms_hsm_cache_drop(h, label);
        if (kms_hsm_find_key(h, s, label, &key) != 0) {
            last = CKR_OK;
            goto out;
        }
        kms_hsm_cache_put(h, label, key);
        last = op(h, s, key, ctx, call);
    }
    *rv = last;
    r = 0;
out:
    kms_hsm_session_return(h, s, last);
    return r;
}
