#include "hsm/hsm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>
#include <sodium.h>

#include "hsm/hsm_module.h"
#include "hsm/hsm_oaep.h"
#include "hsm/hsm_pubkey.h"
#include "util/util.h"

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

    /* Session pool: idle sessions on a stack; borrowers wait on pool_cond. */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    CK_SESSION_HANDLE *idle;
    size_t nidle;
    size_t pool_size;

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

static const CK_BBOOL yes = CK_TRUE;
static const CK_BBOOL no = CK_FALSE;

/* ---- Errors ------------------------------------------------------------------------------- */

/* Raises the error for a failed PKCS#11 call on key `label`. */
static int raise_rv(CK_RV rv, const char *call, const char *label)
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

static int check_label(const char *label)
{
    size_t n = label != NULL ? strlen(label) : 0;
    KMS_ENSURE(n > 0 && n <= MAX_KEY_LABEL, KMS_ERR_VALIDATION, "key label must be 1 to %d bytes",
               MAX_KEY_LABEL);
    return 0;
}

/* ---- Session pool ----------------------------------------------------------------------- */

static CK_SESSION_HANDLE session_borrow(kms_hsm *h)
{
    pthread_mutex_lock(&h->pool_lock);
    while (h->nidle == 0) {
        pthread_cond_wait(&h->pool_cond, &h->pool_lock);
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
static void session_return(kms_hsm *h, CK_SESSION_HANDLE s, CK_RV last_rv)
{
    if (session_suspect(last_rv)) {
        CK_SESSION_HANDLE fresh;
        if (h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &fresh) ==
            CKR_OK) {
            (void)h->f->C_CloseSession(s);
            s = fresh;
        }
    }
    pthread_mutex_lock(&h->pool_lock);
    h->idle[h->nidle++] = s;
    pthread_cond_signal(&h->pool_cond);
    pthread_mutex_unlock(&h->pool_lock);
}

/* ---- Object handle cache ------------------------------------------------------------------ */

/* Index of label in the cache, or where it would go. */
static size_t cache_pos(const kms_hsm *h, const char *label, bool *hit)
{
    size_t lo = 0;
    size_t hi = h->ncache;
    *hit = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(h->cache[mid].label, label);
        if (c == 0) {
            *hit = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool cache_get(kms_hsm *h, const char *label, CK_OBJECT_HANDLE *handle)
{
    bool hit;
    pthread_rwlock_rdlock(&h->cache_lock);
    size_t i = cache_pos(h, label, &hit);
    if (hit) {
        *handle = h->cache[i].handle;
    }
    pthread_rwlock_unlock(&h->cache_lock);
    return hit;
}

/* Best effort: a cache that cannot grow only costs a C_FindObjects next time. */
static void cache_put(kms_hsm *h, const char *label, CK_OBJECT_HANDLE handle)
{
    bool hit;
    pthread_rwlock_wrlock(&h->cache_lock);
    size_t i = cache_pos(h, label, &hit);
    if (hit) {
        h->cache[i].handle = handle;
        goto out;
    }
    if (h->ncache == h->cache_cap) {
        size_t cap = h->cache_cap != 0 ? h->cache_cap * 2 : 64;
        cache_entry *grown = realloc(h->cache, cap * sizeof *grown);
        if (grown == NULL) {
            goto out;
        }
        h->cache = grown;
        h->cache_cap = cap;
    }
    char *copy = strdup(label);
    if (copy == NULL) {
        goto out;
    }
    memmove(&h->cache[i + 1], &h->cache[i], (h->ncache - i) * sizeof h->cache[0]);
    h->cache[i].label = copy;
    h->cache[i].handle = handle;
    h->ncache++;
out:
    pthread_rwlock_unlock(&h->cache_lock);
}

static void cache_drop(kms_hsm *h, const char *label)
{
    bool hit;
    pthread_rwlock_wrlock(&h->cache_lock);
    size_t i = cache_pos(h, label, &hit);
    if (hit) {
        free(h->cache[i].label);
        memmove(&h->cache[i], &h->cache[i + 1], (h->ncache - i - 1) * sizeof h->cache[0]);
        h->ncache--;
    }
    pthread_rwlock_unlock(&h->cache_lock);
}

/* ---- Object lookup ------------------------------------------------------------------------ */

#define MAX_OBJECTS_PER_LABEL 16

/* Every object labelled `label` (up to max). */
static int find_objects(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *objs,
                        CK_ULONG max, CK_ULONG *count)
{
    CK_ATTRIBUTE tmpl[] = {
        {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
    };
    *count = 0;
    CK_RV rv = h->f->C_FindObjectsInit(s, tmpl, 1);
    if (rv != CKR_OK) {
        return raise_rv(rv, "C_FindObjectsInit", label);
    }
    rv = h->f->C_FindObjects(s, objs, max, count);
    CK_RV rv_final = h->f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) {
        return raise_rv(rv, "C_FindObjects", label);
    }
    if (rv_final != CKR_OK) {
        return raise_rv(rv_final, "C_FindObjectsFinal", label);
    }
    return 0;
}

/* The secret or private key object labelled `label`, found in the token (no cache). */
static int find_key(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_HANDLE objs[MAX_OBJECTS_PER_LABEL];
    CK_ULONG n = 0;
    KMS_GUARD(find_objects(h, s, label, objs, MAX_OBJECTS_PER_LABEL, &n));
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
typedef CK_RV (*key_op)(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *ctx,
                        const char **call);

/* Runs op on a pooled session with the key labelled `label`: from the cache, else found in the
 * token. A stale cached handle is dropped and the key found once more. Returns 0 with *rv the
 * result of op (the caller maps it to an error), or -1 if the key could not be found. */
static int with_key(kms_hsm *h, const char *label, key_op op, void *ctx, CK_RV *rv,
                    const char **call)
{
    int r = -1;
    CK_RV last = CKR_OK;
    CK_SESSION_HANDLE s = session_borrow(h);
    CK_OBJECT_HANDLE key;
    bool cached = cache_get(h, label, &key);
    if (!cached) {
        if (find_key(h, s, label, &key) != 0) {
            goto out;
        }
        cache_put(h, label, key);
    }
    last = op(h, s, key, ctx, call);
    if (cached && (last == CKR_OBJECT_HANDLE_INVALID || last == CKR_KEY_HANDLE_INVALID)) {
        cache_drop(h, label);
        if (find_key(h, s, label, &key) != 0) {
            last = CKR_OK;
            goto out;
        }
        cache_put(h, label, key);
        last = op(h, s, key, ctx, call);
    }
    *rv = last;
    r = 0;
out:
    session_return(h, s, last);
    return r;
}

/* ---- Open, close, init token ---------------------------------------------------------------- */

static int token_not_found(kms_hsm_module *m, const char *label)
{
    return kms_raise(KMS_ERR_HSM,
                     "no token labelled '%s' in PKCS#11 module '%s'; check the "
                     "token_label setting (and SOFTHSM2_CONF for SoftHSM2), or create the "
                     "token with `kmsctl init`",
                     label, kms_hsm_module_path(m));
}

void kms_hsm_close(kms_hsm *hsm)
{
    if (hsm == NULL) {
        return;
    }
    /* Closing the application's last session on the token also logs it out (PKCS#11 v2.40
     * 5.6); an explicit C_Logout would log out other handles on the same token too. */
    for (size_t i = 0; i < hsm->nidle; i++) {
        (void)hsm->f->C_CloseSession(hsm->idle[i]);
    }
    for (size_t i = 0; i < hsm->ncache; i++) {
        free(hsm->cache[i].label);
    }
    free(hsm->cache);
    free(hsm->idle);
    free(hsm->token_label);
    pthread_mutex_destroy(&hsm->gen_lock);
    pthread_mutex_destroy(&hsm->data_lock);
    pthread_rwlock_destroy(&hsm->cache_lock);
    pthread_cond_destroy(&hsm->pool_cond);
    pthread_mutex_destroy(&hsm->pool_lock);
    kms_hsm_module_release(hsm->mod);
    free(hsm);
}

static kms_hsm *hsm_new(void)
{
    kms_hsm *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return NULL;
    }
    pthread_mutex_init(&h->pool_lock, NULL);
    pthread_cond_init(&h->pool_cond, NULL);
    pthread_rwlock_init(&h->cache_lock, NULL);
    pthread_mutex_init(&h->gen_lock, NULL);
    pthread_mutex_init(&h->data_lock, NULL);
    return h;
}

static int open_sessions(kms_hsm *h, const kms_hsm_config *cfg)
{
    for (size_t i = 0; i < h->pool_size; i++) {
        CK_SESSION_HANDLE s;
        CK_RV rv =
            h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
        if (rv != CKR_OK) {
            return kms_raise(KMS_ERR_HSM, "C_OpenSession on token '%s' failed: %s (0x%lx)",
                             h->token_label, kms_hsm_ckr_name(rv), (unsigned long)rv);
        }
        h->idle[h->nidle++] = s;
        if (i == 0) {
            KMS_GUARD(
                kms_hsm_module_login(h->mod, h->slot, s, h->token_label, cfg->pin, cfg->pin_len));
        }
    }
    return 0;
}

kms_hsm *kms_hsm_open(const kms_hsm_config *cfg)
{
    kms_hsm *h = NULL;
    kms_hsm *ret = NULL;
    int lock_fd = -1;
    if (cfg == NULL || cfg->module_path == NULL || cfg->token_label == NULL || cfg->pin == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "HSM configuration needs a module path, token label and "
                                      "PIN");
        goto out;
    }
    if (cfg->pool_size > MAX_POOL_SIZE) {
        kms_raise(KMS_ERR_VALIDATION, "HSM session pool size %u is above %d", cfg->pool_size,
                  MAX_POOL_SIZE);
        goto out;
    }
    if (kms_util_init() != 0) {
        goto out;
    }
    h = hsm_new();
    if (h == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory opening the HSM");
        goto out;
    }
    h->pool_size = cfg->pool_size != 0 ? cfg->pool_size : DEFAULT_POOL_SIZE;
    h->idle = calloc(h->pool_size, sizeof *h->idle);
    h->token_label = strdup(cfg->token_label);
    if (h->idle == NULL || h->token_label == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory opening the HSM");
        goto out;
    }
    if (cfg->open_lock_path != NULL && kms_file_lock(cfg->open_lock_path, true, &lock_fd) != 0) {
        goto out;
    }
    bool found = false;
    /* SoftHSM2 reads its token files once, at C_Initialize; another process rewriting them at
     * that moment (its login: a process that does not take open_lock_path, such as
     * pkcs11-tool) can make the token look absent. Initialise afresh a few times before
     * concluding that it is. */
    for (int attempt = 0; attempt < 6 && !found; attempt++) {
        if (attempt > 0) {
            kms_hsm_module_release(h->mod);
            h->mod = NULL;
            struct timespec pause = {0, 10000000L * attempt};
            nanosleep(&pause, NULL);
        }
        if (kms_hsm_module_acquire(cfg->module_path, &h->mod) != 0) {
            goto out;
        }
        h->f = kms_hsm_module_functions(h->mod);
        if (kms_hsm_module_find_token(h->mod, cfg->token_label, &found, &h->slot) != 0) {
            goto out;
        }
    }
    if (!found) {
        token_not_found(h->mod, cfg->token_label);
        goto out;
    }
    if (open_sessions(h, cfg) != 0) {
        goto out;
    }
    ret = h;
    h = NULL;
out:
    kms_hsm_close(h);
    if (lock_fd >= 0) {
        close(lock_fd);
    }
    return ret;
}

static int init_pin(CK_FUNCTION_LIST *f, CK_SLOT_ID slot, const char *label, const uint8_t *so_pin,
                    size_t so_pin_len, const uint8_t *pin, size_t pin_len)
{
    int r = -1;
    CK_SESSION_HANDLE s;
    bool logged_in = false;
    const char *call = "C_OpenSession";
    CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        goto fail;
    }
    call = "C_Login(CKU_SO)";
    rv = f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)so_pin_len);
    if (rv != CKR_OK) {
        goto close;
    }
    logged_in = true;
    call = "C_InitPIN";
    rv = f->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pin_len);
    if (rv != CKR_OK) {
        goto close;
    }
    r = 0;
close:
    if (logged_in) {
        (void)f->C_Logout(s);
    }
    (void)f->C_CloseSession(s);
fail:
    if (r != 0) {
        kms_raise(KMS_ERR_HSM, "%s on new token '%s' failed: %s (0x%lx)", call, label,
                  kms_hsm_ckr_name(rv), (unsigned long)rv);
    }
    return r;
}

/* The first slot with a token present that is not initialised. */
static int free_slot(CK_FUNCTION_LIST *f, const char *path, CK_SLOT_ID *slot)
{
    int r = -1;
    CK_ULONG n = 0;
    CK_SLOT_ID *slots = NULL;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv == CKR_OK) {
        slots = calloc(n + 1, sizeof *slots);
        if (slots == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory listing PKCS#11 slots");
            goto out;
        }
        rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    }
    if (rv != CKR_OK) {
        kms_raise(KMS_ERR_HSM, "C_GetSlotList of '%s' failed: %s (0x%lx)", path,
                  kms_hsm_ckr_name(rv), (unsigned long)rv);
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (f->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
            (info.flags & CKF_TOKEN_INITIALIZED) == 0) {
            *slot = slots[i];
            r = 0;
            goto out;
        }
    }
    kms_raise(KMS_ERR_HSM, "PKCS#11 module '%s' has no free slot for a new token", path);
out:
    free(slots);
    return r;
}

int kms_hsm_init_token(const char *module_path, const char *token_label, const uint8_t *so_pin,
                       size_t so_pin_len, const uint8_t *pin, size_t pin_len)
{
    int r = -1;
    kms_hsm_module *m = NULL;
    CK_UTF8CHAR padded[KMS_HSM_LABEL_LEN];
    if (module_path == NULL || so_pin == NULL || pin == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "token initialisation needs a module path, SO PIN and PIN");
        goto out;
    }
    if (kms_hsm_label_pad(token_label, padded) != 0 || kms_util_init() != 0 ||
        kms_hsm_module_acquire(module_path, &m) != 0) {
        goto out;
    }
    CK_FUNCTION_LIST *f = kms_hsm_module_functions(m);
    bool found = false;
    CK_SLOT_ID slot;
    if (kms_hsm_module_find_token(m, token_label, &found, &slot) != 0) {
        goto out;
    }
    if (found) {
        kms_raise(KMS_ERR_ALREADY_EXISTS,
                  "a token labelled '%s' already exists in PKCS#11 "
                  "module '%s'",
                  token_label, module_path);
        goto out;
    }
    if (free_slot(f, module_path, &slot) != 0) {
        goto out;
    }
    CK_RV rv = f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)so_pin_len, padded);
    if (rv != CKR_OK) {
        kms_raise(KMS_ERR_HSM, "C_InitToken of token '%s' in slot %lu failed: %s (0x%lx)",
                  token_label, (unsigned long)slot, kms_hsm_ckr_name(rv), (unsigned long)rv);
        goto out;
    }
    /* SoftHSM renumbers its slots after C_InitToken: find the new token by its label. */
    if (kms_hsm_module_find_token(m, token_label, &found, &slot) != 0) {
        goto out;
    }
    if (!found) {
        token_not_found(m, token_label);
        goto out;
    }
    if (init_pin(f, slot, token_label, so_pin, so_pin_len, pin, pin_len) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_hsm_module_release(m);
    return r;
}

/* ---- Key generation -------------------------------------------------------------------------- */

typedef struct key_spec {
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
} key_spec;

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

static const key_spec key_specs[] = {
    {KMS_HSM_AES_256, SPEC_AES, 32, NULL, 0, NULL, 0, 0, 0, false},
    {KMS_HSM_HMAC_224, SPEC_HMAC, 28, NULL, 0, NULL, 0, CKM_SHA224_HMAC, 28, false},
    {KMS_HSM_HMAC_256, SPEC_HMAC, 32, NULL, 0, NULL, 0, CKM_SHA256_HMAC, 32, false},
    {KMS_HSM_HMAC_384, SPEC_HMAC, 48, NULL, 0, NULL, 0, CKM_SHA384_HMAC, 48, false},
    {KMS_HSM_HMAC_512, SPEC_HMAC, 64, NULL, 0, NULL, 0, CKM_SHA512_HMAC, 64, false},
    {KMS_HSM_RSA_2048, SPEC_RSA, 2048, NULL, 0, NULL, 0, 0, 0, false},
    {KMS_HSM_RSA_3072, SPEC_RSA, 3072, NULL, 0, NULL, 0, 0, 0, false},
    {KMS_HSM_RSA_4096, SPEC_RSA, 4096, NULL, 0, NULL, 0, 0, 0, false},
    {KMS_HSM_EC_P256, SPEC_EC, 0, oid_p256, sizeof oid_p256, "prime256v1", 32, 0, 0, false},
    {KMS_HSM_EC_P384, SPEC_EC, 0, oid_p384, sizeof oid_p384, "secp384r1", 48, 0, 0, false},
    {KMS_HSM_RSA_2048_DECRYPT, SPEC_RSA, 2048, NULL, 0, NULL, 0, 0, 0, true},
    {KMS_HSM_RSA_3072_DECRYPT, SPEC_RSA, 3072, NULL, 0, NULL, 0, 0, 0, true},
    {KMS_HSM_RSA_4096_DECRYPT, SPEC_RSA, 4096, NULL, 0, NULL, 0, 0, 0, true},
};

static const key_spec *spec_of(kms_hsm_key_type type)
{
    for (size_t i = 0; i < sizeof key_specs / sizeof key_specs[0]; i++) {
        if (key_specs[i].type == type) {
            return &key_specs[i];
        }
    }
    return NULL;
}

#define ATTR(t, p, n)                                                                              \
    {                                                                                              \
        (t), (void *)(p), (CK_ULONG)(n)                                                            \
    }
#define ATTR_BOOL(t, v) ATTR((t), &(v), sizeof(CK_BBOOL))
#define NATTR(a) ((CK_ULONG)(sizeof(a) / sizeof((a)[0])))

static CK_RV generate_secret(kms_hsm *h, CK_SESSION_HANDLE s, const key_spec *sp, const char *label,
                             CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    bool aes = sp->kind == SPEC_AES;
    CK_KEY_TYPE kt = aes ? CKK_AES : CKK_GENERIC_SECRET;
    CK_ULONG len = sp->bits_or_len;
    size_t ll = strlen(label);
    /* AES keys encrypt and decrypt only; HMAC keys sign and verify only. */
    const CK_BBOOL *crypt = aes ? &yes : &no;
    const CK_BBOOL *mac = aes ? &no : &yes;
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_KEY_TYPE, &kt, sizeof kt),
        ATTR(CKA_VALUE_LEN, &len, sizeof len),
        ATTR_BOOL(CKA_TOKEN, yes),
        ATTR_BOOL(CKA_PRIVATE, yes),
        ATTR_BOOL(CKA_SENSITIVE, yes),
        ATTR_BOOL(CKA_EXTRACTABLE, no),
        ATTR(CKA_ENCRYPT, crypt, sizeof(CK_BBOOL)),
        ATTR(CKA_DECRYPT, crypt, sizeof(CK_BBOOL)),
        ATTR(CKA_SIGN, mac, sizeof(CK_BBOOL)),
        ATTR(CKA_VERIFY, mac, sizeof(CK_BBOOL)),
        ATTR_BOOL(CKA_WRAP, no),
        ATTR_BOOL(CKA_UNWRAP, no),
        ATTR_BOOL(CKA_DERIVE, no),
        ATTR(CKA_LABEL, label, ll),
        ATTR(CKA_ID, label, ll),
    };
    CK_MECHANISM mech = {aes ? CKM_AES_KEY_GEN : CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    return h->f->C_GenerateKey(s, &mech, tmpl, NATTR(tmpl), key);
}

static CK_RV generate_pair(kms_hsm *h, CK_SESSION_HANDLE s, const key_spec *sp, const char *label,
                           CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    static const uint8_t f4[] = {0x01, 0x00, 0x01}; /* public exponent 65537 */
    CK_ULONG bits = sp->bits_or_len;
    size_t ll = strlen(label);
    bool rsa = sp->kind == SPEC_RSA;
    /* Least privilege: a key pair either signs and verifies or decrypts and encrypts. */
    const CK_BBOOL *sign = sp->decrypt ? &no : &yes;
    const CK_BBOOL *crypt = sp->decrypt ? &yes : &no;
    CK_ATTRIBUTE pub_tmpl[] = {
        ATTR_BOOL(CKA_TOKEN, yes),
        ATTR_BOOL(CKA_PRIVATE, no),
        ATTR(CKA_VERIFY, sign, sizeof(CK_BBOOL)),
        ATTR(CKA_ENCRYPT, crypt, sizeof(CK_BBOOL)),
        ATTR_BOOL(CKA_WRAP, no),
        ATTR(CKA_LABEL, label, ll),
        ATTR(CKA_ID, label, ll),
        /* the last two differ by kind */
        rsa ? (CK_ATTRIBUTE)ATTR(CKA_MODULUS_BITS, &bits, sizeof bits)
            : (CK_ATTRIBUTE)ATTR(CKA_EC_PARAMS, sp->ec_params, sp->ec_params_len),
        ATTR(CKA_PUBLIC_EXPONENT, f4, sizeof f4),
    };
    CK_ATTRIBUTE priv_tmpl[] = {
        ATTR_BOOL(CKA_TOKEN, yes),
        ATTR_BOOL(CKA_PRIVATE, yes),
        ATTR_BOOL(CKA_SENSITIVE, yes),
        ATTR_BOOL(CKA_EXTRACTABLE, no),
        ATTR(CKA_SIGN, sign, sizeof(CK_BBOOL)),
        ATTR(CKA_DECRYPT, crypt, sizeof(CK_BBOOL)),
        ATTR_BOOL(CKA_UNWRAP, no),
        ATTR_BOOL(CKA_DERIVE, no),
        ATTR(CKA_LABEL, label, ll),
        ATTR(CKA_ID, label, ll),
    };
    CK_MECHANISM mech = {rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG npub = NATTR(pub_tmpl) - (rsa ? 0 : 1);
    return h->f->C_GenerateKeyPair(s, &mech, pub_tmpl, npub, priv_tmpl, NATTR(priv_tmpl), pub,
                                   priv);
}

/* Reads one variable-length attribute into a malloc'd buffer. */
static int read_attr(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE t,
                     const char *label, uint8_t **out, size_t *len)
{
    CK_ATTRIBUTE a = {t, NULL, 0};
    CK_RV rv = h->f->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0) {
        return raise_rv(rv != CKR_OK ? rv : CKR_ATTRIBUTE_TYPE_INVALID,
                        "C_GetAttributeValue(public key)", label);
    }
    a.pValue = malloc(a.ulValueLen);
    if (a.pValue == NULL) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory reading a public key");
    }
    rv = h->f->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return raise_rv(rv, "C_GetAttributeValue(public key)", label);
    }
    *out = a.pValue;
    *len = a.ulValueLen;
    return 0;
}

static int public_spki(kms_hsm *h, CK_SESSION_HANDLE s, const key_spec *sp, CK_OBJECT_HANDLE pub,
                       const char *label, uint8_t **spki, size_t *spki_len)
{
    int r = -1;
    uint8_t *a = NULL;
    uint8_t *b = NULL;
    size_t a_len = 0;
    size_t b_len = 0;
    if (sp->kind == SPEC_RSA) {
        if (read_attr(h, s, pub, CKA_MODULUS, label, &a, &a_len) != 0 ||
            read_attr(h, s, pub, CKA_PUBLIC_EXPONENT, label, &b, &b_len) != 0 ||
            kms_hsm_spki_rsa(a, a_len, b, b_len, spki, spki_len) != 0) {
            goto out;
        }
    } else {
        if (read_attr(h, s, pub, CKA_EC_POINT, label, &a, &a_len) != 0 ||
            kms_hsm_spki_ec(sp->group, sp->field_len, a, a_len, spki, spki_len) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    free(a);
    free(b);
    return r;
}

static int generate_locked(kms_hsm *h, CK_SESSION_HANDLE s, const key_spec *sp, const char *label,
                           uint8_t **spki, size_t *spki_len, CK_RV *rv)
{
    int r = -1;
    CK_OBJECT_HANDLE objs[MAX_OBJECTS_PER_LABEL];
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    if (find_objects(h, s, label, objs, MAX_OBJECTS_PER_LABEL, &n) != 0) {
        goto out;
    }
    if (n != 0) {
        kms_raise(KMS_ERR_ALREADY_EXISTS,
                  "key material labelled '%s' already exists in token "
                  "'%s'",
                  label, h->token_label);
        goto out;
    }
    if (sp->kind == SPEC_AES || sp->kind == SPEC_HMAC) {
        *rv = generate_secret(h, s, sp, label, &key);
    } else {
        *rv = generate_pair(h, s, sp, label, &pub, &key);
    }
    if (*rv != CKR_OK) {
        raise_rv(*rv,
                 sp->kind == SPEC_AES || sp->kind == SPEC_HMAC ? "C_GenerateKey"
                                                               : "C_GenerateKeyPair",
                 label);
        goto out;
    }
    if (pub != CK_INVALID_HANDLE && spki != NULL &&
        public_spki(h, s, sp, pub, label, spki, spki_len) != 0) {
        goto out;
    }
    cache_put(h, label, key);
    r = 0;
out:
    if (r != 0) {
        /* Atomic: nothing of a failed generation stays in the token. */
        if (key != CK_INVALID_HANDLE) {
            (void)h->f->C_DestroyObject(s, key);
        }
        if (pub != CK_INVALID_HANDLE) {
            (void)h->f->C_DestroyObject(s, pub);
        }
    }
    return r;
}

int kms_hsm_generate_key(kms_hsm *hsm, kms_hsm_key_type type, const char *label, uint8_t **spki,
                         size_t *spki_len)
{
    const key_spec *sp = spec_of(type);
    if (spki != NULL) {
        *spki = NULL;
    }
    if (spki_len != NULL) {
        *spki_len = 0;
    }
    KMS_ENSURE(sp != NULL, KMS_ERR_VALIDATION, "unknown HSM key type %d", (int)type);
    KMS_GUARD(check_label(label));
    KMS_ENSURE(spki == NULL || spki_len != NULL, KMS_ERR_VALIDATION, "spki_len is required");
    KMS_ENSURE(spki != NULL || sp->kind == SPEC_AES || sp->kind == SPEC_HMAC, KMS_ERR_VALIDATION,
               "an asymmetric key needs somewhere to return its public key");
    CK_RV rv = CKR_OK;
    pthread_mutex_lock(&hsm->gen_lock);
    CK_SESSION_HANDLE s = session_borrow(hsm);
    int r = generate_locked(hsm, s, sp, label, spki, spki_len, &rv);
    session_return(hsm, s, rv);
    pthread_mutex_unlock(&hsm->gen_lock);
    return r;
}

int kms_hsm_public_key(kms_hsm *hsm, kms_hsm_key_type type, const char *label, uint8_t **spki,
                       size_t *spki_len)
{
    const key_spec *sp = spec_of(type);
    KMS_ENSURE(sp != NULL && (sp->kind == SPEC_RSA || sp->kind == SPEC_EC), KMS_ERR_VALIDATION,
               "HSM key type %d has no public key", (int)type);
    KMS_GUARD(check_label(label));
    int r = -1;
    CK_OBJECT_HANDLE objs[MAX_OBJECTS_PER_LABEL];
    CK_ULONG n = 0;
    CK_SESSION_HANDLE s = session_borrow(hsm);
    if (find_objects(hsm, s, label, objs, MAX_OBJECTS_PER_LABEL, &n) != 0) {
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_OBJECT_CLASS cls = 0;
        CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof cls};
        if (hsm->f->C_GetAttributeValue(s, objs[i], &a, 1) == CKR_OK && cls == CKO_PUBLIC_KEY) {
            r = public_spki(hsm, s, sp, objs[i], label, spki, spki_len);
            goto out;
        }
    }
    kms_raise(KMS_ERR_NOT_FOUND, "no public key labelled '%s' in token '%s'", label,
              hsm->token_label);
out:
    session_return(hsm, s, CKR_OK);
    return r;
}

int kms_hsm_destroy_key(kms_hsm *hsm, const char *label)
{
    KMS_GUARD(check_label(label));
    int r = -1;
    CK_RV rv = CKR_OK;
    CK_OBJECT_HANDLE objs[MAX_OBJECTS_PER_LABEL];
    CK_ULONG n = 0;
    pthread_mutex_lock(&hsm->gen_lock);
    CK_SESSION_HANDLE s = session_borrow(hsm);
    cache_drop(hsm, label);
    bool any = false;
    do {
        if (find_objects(hsm, s, label, objs, MAX_OBJECTS_PER_LABEL, &n) != 0) {
            goto out;
        }
        any = any || n != 0;
        for (CK_ULONG i = 0; i < n && rv == CKR_OK; i++) {
            CK_RV one = hsm->f->C_DestroyObject(s, objs[i]);
            if (one != CKR_OK && one != CKR_OBJECT_HANDLE_INVALID) {
                rv = one;
            }
        }
        /* A full batch may mean more objects carry the label. */
    } while (n == MAX_OBJECTS_PER_LABEL && rv == CKR_OK);
    if (!any) {
        kms_raise(KMS_ERR_NOT_FOUND, "no key material labelled '%s' in token '%s'", label,
                  hsm->token_label);
        goto out;
    }
    if (rv != CKR_OK) {
        raise_rv(rv, "C_DestroyObject", label);
        goto out;
    }
    r = 0;
out:
    session_return(hsm, s, rv);
    pthread_mutex_unlock(&hsm->gen_lock);
    return r;
}

/* ---- AES-GCM --------------------------------------------------------------------------------- */

typedef struct gcm_ctx {
    CK_GCM_PARAMS params;
    const uint8_t *in;
    CK_ULONG in_len;
    uint8_t *out;
    CK_ULONG out_len; /* room in, bytes written out */
    bool encrypt;
} gcm_ctx;

static CK_RV gcm_op(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *vctx,
                    const char **call)
{
    gcm_ctx *c = vctx;
    CK_MECHANISM mech = {CKM_AES_GCM, &c->params, sizeof c->params};
    CK_ULONG room = c->out_len;
    CK_RV rv;
    if (c->encrypt) {
        *call = "C_EncryptInit";
        rv = h->f->C_EncryptInit(s, &mech, key);
        if (rv == CKR_OK) {
            *call = "C_Encrypt";
            rv = h->f->C_Encrypt(s, (CK_BYTE_PTR)c->in, c->in_len, c->out, &room);
        }
    } else {
        *call = "C_DecryptInit";
        rv = h->f->C_DecryptInit(s, &mech, key);
        if (rv == CKR_OK) {
            *call = "C_Decrypt";
            rv = h->f->C_Decrypt(s, (CK_BYTE_PTR)c->in, c->in_len, c->out, &room);
        }
    }
    c->out_len = rv == CKR_OK ? room : 0;
    return rv;
}

static void gcm_params(CK_GCM_PARAMS *p, const uint8_t *iv, const uint8_t *aad, size_t aad_len)
{
    static const uint8_t empty[1];
    memset(p, 0, sizeof *p);
    p->pIv = (CK_BYTE_PTR)iv;
    p->ulIvLen = KMS_HSM_GCM_IV_LEN;
    p->ulIvBits = KMS_HSM_GCM_IV_LEN * 8;
    p->pAAD = (CK_BYTE_PTR)(aad_len != 0 ? aad : empty);
    p->ulAADLen = (CK_ULONG)aad_len;
    p->ulTagBits = KMS_HSM_GCM_TAG_LEN * 8;
}

/* Scratch space: on the stack when small, else on the heap. Always wiped when released. */
typedef struct scratch {
    uint8_t stack[STACK_SCRATCH];
    uint8_t *p;
    size_t n;
} scratch;

static int scratch_get(scratch *sc, size_t n)
{
    sc->n = n;
    sc->p = n <= sizeof sc->stack ? sc->stack : malloc(n);
    KMS_ENSURE(sc->p != NULL, KMS_ERR_INTERNAL, "out of memory (%zu bytes of scratch)", n);
    return 0;
}

static void scratch_release(scratch *sc)
{
    if (sc->p != NULL) {
        sodium_memzero(sc->p, sc->n);
        if (sc->p != sc->stack) {
            free(sc->p);
        }
        sc->p = NULL;
    }
}

int kms_hsm_aes_gcm_encrypt(kms_hsm *hsm, const char *label, const uint8_t iv[KMS_HSM_GCM_IV_LEN],
                            const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                            uint8_t *ct, uint8_t tag[KMS_HSM_GCM_TAG_LEN])
{
    int r = -1;
    scratch out = {.p = NULL};
    static const uint8_t empty[1];
    KMS_GUARD(check_label(label));
    KMS_ENSURE(iv != NULL && tag != NULL && (pt != NULL || pt_len == 0) &&
                   (ct != NULL || pt_len == 0) && (aad != NULL || aad_len == 0),
               KMS_ERR_VALIDATION, "AES-GCM encrypt: missing buffer");
    KMS_ENSURE(pt_len <= SIZE_MAX / 2, KMS_ERR_VALIDATION, "AES-GCM encrypt: input too long");
    /* PKCS#11 returns ct||tag in one buffer; room for a block more than needed, so that no
     * module ever answers CKR_BUFFER_TOO_SMALL (which would leave the operation active). */
    if (scratch_get(&out, pt_len + 2 * KMS_HSM_GCM_TAG_LEN) != 0) {
        goto out;
    }
    gcm_ctx c = {.in = pt_len != 0 ? pt : empty,
                 .in_len = (CK_ULONG)pt_len,
                 .out = out.p,
                 .out_len = (CK_ULONG)out.n,
                 .encrypt = true};
    gcm_params(&c.params, iv, aad, aad_len);
    CK_RV rv;
    const char *call = "C_EncryptInit";
    if (with_key(hsm, label, gcm_op, &c, &rv, &call) != 0) {
        goto out;
    }
    if (rv != CKR_OK) {
        raise_rv(rv, call, label);
        goto out;
    }
    if (c.out_len != pt_len + KMS_HSM_GCM_TAG_LEN) {
        kms_raise(KMS_ERR_HSM,
                  "C_Encrypt with key material '%s' returned %lu bytes for %zu "
                  "bytes of plaintext",
                  label, (unsigned long)c.out_len, pt_len);
        goto out;
    }
    if (pt_len != 0) {
        memcpy(ct, out.p, pt_len);
    }
    memcpy(tag, out.p + pt_len, KMS_HSM_GCM_TAG_LEN);
    r = 0;
out:
    scratch_release(&out);
    return r;
}

/* Did C_Decrypt refuse the ciphertext itself (tag or padding), rather than fail? PKCS#11 v2.40
 * modules answer CKR_ENCRYPTED_DATA_INVALID (some CKR_ENCRYPTED_DATA_LEN_RANGE); SoftHSM 2.6.1
 * answers CKR_GENERAL_ERROR from C_Decrypt for any decryption its OpenSSL refuses (measured). */
static bool ciphertext_refused(CK_RV rv, const char *call)
{
    return rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
           (strcmp(call, "C_Decrypt") == 0 &&
            (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED));
}

int kms_hsm_aes_gcm_decrypt(kms_hsm *hsm, const char *label, const uint8_t iv[KMS_HSM_GCM_IV_LEN],
                            const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                            const uint8_t tag[KMS_HSM_GCM_TAG_LEN], uint8_t *pt)
{
    int r = -1;
    scratch in = {.p = NULL};
    scratch out = {.p = NULL};
    KMS_GUARD(check_label(label));
    KMS_ENSURE(iv != NULL && tag != NULL && (ct != NULL || ct_len == 0) &&
                   (pt != NULL || ct_len == 0) && (aad != NULL || aad_len == 0),
               KMS_ERR_VALIDATION, "AES-GCM decrypt: missing buffer");
    KMS_ENSURE(ct_len <= SIZE_MAX / 2, KMS_ERR_VALIDATION, "AES-GCM decrypt: input too long");
    /* The plaintext goes to scratch first and reaches pt only once the tag verified. */
    if (scratch_get(&in, ct_len + KMS_HSM_GCM_TAG_LEN) != 0 ||
        scratch_get(&out, ct_len + 2 * KMS_HSM_GCM_TAG_LEN) != 0) {
        goto out;
    }
    if (ct_len != 0) {
        memcpy(in.p, ct, ct_len);
    }
    memcpy(in.p + ct_len, tag, KMS_HSM_GCM_TAG_LEN);
    gcm_ctx c = {.in = in.p,
                 .in_len = (CK_ULONG)in.n,
                 .out = out.p,
                 .out_len = (CK_ULONG)out.n,
                 .encrypt = false};
    gcm_params(&c.params, iv, aad, aad_len);
    CK_RV rv;
    const char *call = "C_DecryptInit";
    if (with_key(hsm, label, gcm_op, &c, &rv, &call) != 0) {
        goto out;
    }
    /* A tag that does not verify: SoftHSM 2.6.1 answers CKR_GENERAL_ERROR from C_Decrypt
     * (measured; its GCM decryptFinal failure is not mapped to anything more precise); PKCS#11
     * v2.40 modules answer CKR_ENCRYPTED_DATA_INVALID, some CKR_ENCRYPTED_DATA_LEN_RANGE. */
    if (ciphertext_refused(rv, call)) {
        kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                  "the ciphertext does not verify under key material "
                  "'%s' (tag, IV or additional data do not match; %s)",
                  label, kms_hsm_ckr_name(rv));
        goto out;
    }
    if (rv != CKR_OK) {
        raise_rv(rv, call, label);
        goto out;
    }
    if (c.out_len != ct_len) {
        kms_raise(KMS_ERR_HSM,
                  "C_Decrypt with key material '%s' returned %lu bytes for %zu "
                  "bytes of ciphertext",
                  label, (unsigned long)c.out_len, ct_len);
        goto out;
    }
    if (ct_len != 0) {
        memcpy(pt, out.p, ct_len);
    }
    r = 0;
out:
    scratch_release(&out);
    scratch_release(&in);
    return r;
}

/* ---- RSAES-OAEP --------------------------------------------------------------------------- */

/* Room for the output of any RSA decryption we do (RSA-4096: 512 bytes), so that no module
 * answers CKR_BUFFER_TOO_SMALL for a ciphertext of the wrong length. */
#define MAX_RSA_LEN 512

typedef struct oaep_ctx {
    CK_RSA_PKCS_OAEP_PARAMS params;
    const uint8_t *in;
    CK_ULONG in_len;
    uint8_t *out;
    CK_ULONG out_len; /* room in, bytes written out */
    bool raw;         /* decrypted with CKM_RSA_X_509: out holds the encoded message */
} oaep_ctx;

static CK_RV oaep_op(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *vctx,
                     const char **call)
{
    oaep_ctx *c = vctx;
    CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &c->params, sizeof c->params};
    CK_ULONG room = c->out_len;
    c->raw = false;
    *call = "C_DecryptInit";
    CK_RV rv = h->f->C_DecryptInit(s, &mech, key);
    if (rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD) {
        /* SoftHSM 2.6.1 MechParamCheckRSAPKCSOAEP: hashAlg must be CKM_SHA_1 (measured:
         * CKR_ARGUMENTS_BAD for SHA-256). Raw RSA in the token, padding checked here. */
        CK_MECHANISM raw = {CKM_RSA_X_509, NULL, 0};
        *call = "C_DecryptInit(CKM_RSA_X_509)";
        rv = h->f->C_DecryptInit(s, &raw, key);
        c->raw = rv == CKR_OK;
    }
    if (rv == CKR_OK) {
        *call = "C_Decrypt";
        rv = h->f->C_Decrypt(s, (CK_BYTE_PTR)c->in, c->in_len, c->out, &room);
    }
    c->out_len = rv == CKR_OK ? room : 0;
    return rv;
}

static int raise_bad_rsa_ciphertext(const char *label, const char *why)
{
    return kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                     "the RSA ciphertext does not decrypt under key material '%s' (%s)", label,
                     why);
}

int kms_hsm_rsa_oaep_decrypt(kms_hsm *hsm, const char *label, bool sha256, const uint8_t *ct,
                             size_t ct_len, uint8_t *pt, size_t *pt_len)
{
    int r = -1;
    scratch out = {.p = NULL};
    scratch dec = {.p = NULL};
    KMS_GUARD(check_label(label));
    KMS_ENSURE(ct != NULL && pt != NULL && pt_len != NULL, KMS_ERR_VALIDATION,
               "RSA-OAEP decrypt: missing buffer");
    *pt_len = 0;
    /* No RSA modulus we generate is longer; the token would refuse the length anyway. */
    if (ct_len == 0 || ct_len > MAX_RSA_LEN) {
        return raise_bad_rsa_ciphertext(label, "wrong length");
    }
    if (scratch_get(&out, MAX_RSA_LEN) != 0 || scratch_get(&dec, MAX_RSA_LEN) != 0) {
        goto out;
    }
    oaep_ctx c = {.params = {sha256 ? CKM_SHA256 : CKM_SHA_1,
                             sha256 ? CKG_MGF1_SHA256 : CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0},
                  .in = ct,
                  .in_len = (CK_ULONG)ct_len,
                  .out = out.p,
                  .out_len = (CK_ULONG)out.n};
    CK_RV rv;
    const char *call = "C_DecryptInit";
    if (with_key(hsm, label, oaep_op, &c, &rv, &call) != 0) {
        goto out;
    }
    /* Bad padding: CKR_ENCRYPTED_DATA_INVALID (PKCS#11 v2.40); SoftHSM 2.6.1 answers
     * CKR_GENERAL_ERROR from C_Decrypt for any decryption its OpenSSL refuses. */
    if (ciphertext_refused(rv, call)) {
        raise_bad_rsa_ciphertext(label, kms_hsm_ckr_name(rv));
        goto out;
    }
    if (rv != CKR_OK) {
        raise_rv(rv, call, label);
        goto out;
    }
    const uint8_t *plain = out.p;
    size_t n = c.out_len;
    if (c.raw) {
        /* The encoded message is as long as the modulus, which the token checked against
         * ct_len (CKR_ENCRYPTED_DATA_LEN_RANGE otherwise). */
        if (c.out_len != ct_len || kms_hsm_oaep_decode(sha256, out.p, ct_len, dec.p, &n) != 0) {
            raise_bad_rsa_ciphertext(label, "OAEP padding check failed");
            goto out;
        }
        plain = dec.p;
    }
    if (n > ct_len) {
        kms_raise(KMS_ERR_HSM, "C_Decrypt with key material '%s' returned %zu bytes for %zu bytes "
                  "of ciphertext", label, n, ct_len);
        goto out;
    }
    memcpy(pt, plain, n);
    *pt_len = n;
    r = 0;
out:
    scratch_release(&dec);
    scratch_release(&out);
    return r;
}

/* ---- Signatures and MACs ----------------------------------------------------------------- */

/* RFC 8017 section 9.2, note 1: DER of DigestInfo up to the digest bytes. */
static const uint8_t di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t di_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};
#define DIGEST_INFO_PREFIX_LEN 19

typedef struct sig_spec {
    kms_hsm_sig_alg alg;
    CK_MECHANISM_TYPE mech;
    size_t digest_len;
    CK_MECHANISM_TYPE hash;     /* PSS */
    CK_RSA_PKCS_MGF_TYPE mgf;   /* PSS */
    const uint8_t *digest_info; /* PKCS#1 v1.5 */
    const char *name;
} sig_spec;

static const sig_spec sig_specs[] = {
    {KMS_HSM_RSA_PSS_SHA256, CKM_RSA_PKCS_PSS, 32, CKM_SHA256, CKG_MGF1_SHA256, NULL,
     "RSASSA_PSS_SHA_256"},
    {KMS_HSM_RSA_PSS_SHA384, CKM_RSA_PKCS_PSS, 48, CKM_SHA384, CKG_MGF1_SHA384, NULL,
     "RSASSA_PSS_SHA_384"},
    {KMS_HSM_RSA_PSS_SHA512, CKM_RSA_PKCS_PSS, 64, CKM_SHA512, CKG_MGF1_SHA512, NULL,
     "RSASSA_PSS_SHA_512"},
    {KMS_HSM_RSA_PKCS1_SHA256, CKM_RSA_PKCS, 32, 0, 0, di_sha256, "RSASSA_PKCS1_V1_5_SHA_256"},
    {KMS_HSM_RSA_PKCS1_SHA384, CKM_RSA_PKCS, 48, 0, 0, di_sha384, "RSASSA_PKCS1_V1_5_SHA_384"},
    {KMS_HSM_RSA_PKCS1_SHA512, CKM_RSA_PKCS, 64, 0, 0, di_sha512, "RSASSA_PKCS1_V1_5_SHA_512"},
    {KMS_HSM_ECDSA_SHA256, CKM_ECDSA, 32, 0, 0, NULL, "ECDSA_SHA_256"},
    {KMS_HSM_ECDSA_SHA384, CKM_ECDSA, 48, 0, 0, NULL, "ECDSA_SHA_384"},
};

typedef struct sign_ctx {
    CK_MECHANISM mech;
    const uint8_t *data;
    CK_ULONG data_len;
    uint8_t *out;
    CK_ULONG out_len; /* room in, bytes written out */
} sign_ctx;

static CK_RV sign_op(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *vctx,
                     const char **call)
{
    sign_ctx *c = vctx;
    CK_ULONG room = c->out_len;
    *call = "C_SignInit";
    CK_RV rv = h->f->C_SignInit(s, &c->mech, key);
    if (rv == CKR_OK) {
        *call = "C_Sign";
        rv = h->f->C_Sign(s, (CK_BYTE_PTR)c->data, c->data_len, c->out, &room);
    }
    c->out_len = rv == CKR_OK ? room : 0;
    return rv;
}

int kms_hsm_sign_digest(kms_hsm *hsm, const char *label, kms_hsm_sig_alg alg, const uint8_t *digest,
                        size_t digest_len, uint8_t **sig, size_t *sig_len)
{
    int r = -1;
    const sig_spec *sp = NULL;
    uint8_t data[DIGEST_INFO_PREFIX_LEN + 64];
    uint8_t out[MAX_SIG_LEN];
    KMS_GUARD(check_label(label));
    KMS_ENSURE(digest != NULL && sig != NULL && sig_len != NULL, KMS_ERR_VALIDATION,
               "sign: missing buffer");
    *sig = NULL;
    *sig_len = 0;
    for (size_t i = 0; i < sizeof sig_specs / sizeof sig_specs[0]; i++) {
        if (sig_specs[i].alg == alg) {
            sp = &sig_specs[i];
        }
    }
    KMS_ENSURE(sp != NULL, KMS_ERR_VALIDATION, "unknown signing algorithm %d", (int)alg);
    KMS_ENSURE(digest_len == sp->digest_len, KMS_ERR_VALIDATION,
               "%s signs a %zu-byte digest, not %zu bytes", sp->name, sp->digest_len, digest_len);
    CK_RSA_PKCS_PSS_PARAMS pss = {sp->hash, sp->mgf, (CK_ULONG)sp->digest_len};
    sign_ctx c = {.mech = {sp->mech, NULL, 0}, .out = out, .out_len = sizeof out};
    if (sp->mech == CKM_RSA_PKCS_PSS) {
        c.mech.pParameter = &pss;
        c.mech.ulParameterLen = sizeof pss;
    }
    size_t n = 0;
    if (sp->digest_info != NULL) {
        memcpy(data, sp->digest_info, DIGEST_INFO_PREFIX_LEN);
        n = DIGEST_INFO_PREFIX_LEN;
    }
    memcpy(data + n, digest, digest_len);
    c.data = data;
    c.data_len = (CK_ULONG)(n + digest_len);
    CK_RV rv;
    const char *call = "C_SignInit";
    if (with_key(hsm, label, sign_op, &c, &rv, &call) != 0) {
        goto out;
    }
    if (rv != CKR_OK) {
        raise_rv(rv, call, label);
        goto out;
    }
    if (sp->mech == CKM_ECDSA) {
        if (kms_hsm_ecdsa_der(out, c.out_len, sig, sig_len) != 0) {
            goto out;
        }
    } else {
        *sig = malloc(c.out_len);
        if (*sig == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory returning a signature");
            goto out;
        }
        memcpy(*sig, out, c.out_len);
        *sig_len = c.out_len;
    }
    r = 0;
out:
    return r;
}

int kms_hsm_hmac(kms_hsm *hsm, const char *label, kms_hsm_key_type type, const uint8_t *msg,
                 size_t msg_len, uint8_t mac[64], size_t *mac_len)
{
    static const uint8_t empty[1];
    const key_spec *sp = spec_of(type);
    KMS_GUARD(check_label(label));
    KMS_ENSURE(sp != NULL && sp->kind == SPEC_HMAC, KMS_ERR_VALIDATION,
               "HMAC needs an HMAC key type, not %d", (int)type);
    KMS_ENSURE(mac != NULL && mac_len != NULL && (msg != NULL || msg_len == 0), KMS_ERR_VALIDATION,
               "HMAC: missing buffer");
    uint8_t out[64];
    sign_ctx c = {.mech = {sp->hmac_mech, NULL, 0},
                  .data = msg_len != 0 ? msg : empty,
                  .data_len = (CK_ULONG)msg_len,
                  .out = out,
                  .out_len = sizeof out};
    CK_RV rv;
    const char *call = "C_SignInit";
    KMS_GUARD(with_key(hsm, label, sign_op, &c, &rv, &call));
    if (rv != CKR_OK) {
        return raise_rv(rv, call, label);
    }
    KMS_ENSURE(c.out_len == sp->mac_len, KMS_ERR_HSM,
               "C_Sign (HMAC) with key material '%s' returned %lu bytes, not %zu", label,
               (unsigned long)c.out_len, sp->mac_len);
    memcpy(mac, out, c.out_len);
    *mac_len = c.out_len;
    return 0;
}

/* ---- Random, attributes ------------------------------------------------------------------------
 */

int kms_hsm_random(kms_hsm *hsm, uint8_t *buf, size_t n)
{
    KMS_ENSURE(buf != NULL || n == 0, KMS_ERR_VALIDATION, "random: missing buffer");
    if (n == 0) {
        return 0;
    }
    CK_SESSION_HANDLE s = session_borrow(hsm);
    CK_RV rv = hsm->f->C_GenerateRandom(s, buf, (CK_ULONG)n);
    session_return(hsm, s, rv);
    KMS_ENSURE(rv == CKR_OK, KMS_ERR_HSM, "C_GenerateRandom on token '%s' failed: %s (0x%lx)",
               hsm->token_label, kms_hsm_ckr_name(rv), (unsigned long)rv);
    return 0;
}

static CK_RV attrs_op(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *vctx,
                      const char **call)
{
    CK_BBOOL *v = vctx;
    CK_ATTRIBUTE a[] = {
        {CKA_TOKEN, &v[0], sizeof v[0]},
        {CKA_SENSITIVE, &v[1], sizeof v[1]},
        {CKA_EXTRACTABLE, &v[2], sizeof v[2]},
        {CKA_ALWAYS_SENSITIVE, &v[3], sizeof v[3]},
        {CKA_NEVER_EXTRACTABLE, &v[4], sizeof v[4]},
    };
    *call = "C_GetAttributeValue";
    return h->f->C_GetAttributeValue(s, key, a, NATTR(a));
}

int kms_hsm_key_attributes(kms_hsm *hsm, const char *label, kms_hsm_key_attrs *out)
{
    KMS_GUARD(check_label(label));
    KMS_ENSURE(out != NULL, KMS_ERR_VALIDATION, "key attributes: missing output");
    CK_BBOOL v[5] = {0};
    CK_RV rv;
    const char *call = "C_GetAttributeValue";
    KMS_GUARD(with_key(hsm, label, attrs_op, v, &rv, &call));
    if (rv != CKR_OK) {
        return raise_rv(rv, call, label);
    }
    out->token = v[0] == CK_TRUE;
    out->sensitive = v[1] == CK_TRUE;
    out->extractable = v[2] == CK_TRUE;
    out->always_sensitive = v[3] == CK_TRUE;
    out->never_extractable = v[4] == CK_TRUE;
    return 0;
}

/* ---- Data objects ------------------------------------------------------------------------------
 */

#define DATA_APPLICATION "kms"

static int raise_data_rv(kms_hsm *h, CK_RV rv, const char *call, const char *label)
{
    return kms_raise(KMS_ERR_HSM, "%s failed for the data object '%s' in token '%s': %s (0x%lx)",
                     call, label, h->token_label, kms_hsm_ckr_name(rv), (unsigned long)rv);
}

/* The CKO_DATA objects labelled `label` (up to max). *rv: the last PKCS#11 result. */
static int find_data(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *objs,
                     CK_ULONG max, CK_ULONG *count, CK_RV *rv)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_LABEL, label, strlen(label)),
    };
    *count = 0;
    *rv = h->f->C_FindObjectsInit(s, tmpl, NATTR(tmpl));
    if (*rv != CKR_OK) {
        return raise_data_rv(h, *rv, "C_FindObjectsInit", label);
    }
    *rv = h->f->C_FindObjects(s, objs, max, count);
    CK_RV rv_final = h->f->C_FindObjectsFinal(s);
    if (*rv != CKR_OK) {
        return raise_data_rv(h, *rv, "C_FindObjects", label);
    }
    *rv = rv_final;
    if (rv_final != CKR_OK) {
        return raise_data_rv(h, rv_final, "C_FindObjectsFinal", label);
    }
    return 0;
}

/* CKA_VALUE of obj, malloc'd with a NUL after its bytes (an empty value is a valid one). */
static int read_value(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, const char *label,
                      uint8_t **value, size_t *len, CK_RV *rv)
{
    CK_ATTRIBUTE a = {CKA_VALUE, NULL, 0};
    *rv = h->f->C_GetAttributeValue(s, obj, &a, 1);
    if (*rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        return raise_data_rv(h, *rv != CKR_OK ? *rv : CKR_ATTRIBUTE_SENSITIVE,
                             "C_GetAttributeValue(CKA_VALUE)", label);
    }
    uint8_t *p = malloc(a.ulValueLen + 1);
    if (p == NULL) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory reading the data object '%s'", label);
    }
    a.pValue = p;
    *rv = a.ulValueLen > 0 ? h->f->C_GetAttributeValue(s, obj, &a, 1) : CKR_OK;
    if (*rv != CKR_OK) {
        free(p);
        return raise_data_rv(h, *rv, "C_GetAttributeValue(CKA_VALUE)", label);
    }
    p[a.ulValueLen] = '\0';
    *value = p;
    *len = a.ulValueLen;
    return 0;
}

int kms_hsm_data_get(kms_hsm *hsm, const char *label, uint8_t **value, size_t *len)
{
    KMS_ENSURE(value != NULL && len != NULL, KMS_ERR_VALIDATION, "data object: missing output");
    *value = NULL;
    *len = 0;
    KMS_GUARD(check_label(label));
    int r = -1;
    CK_RV rv = CKR_OK;
    CK_OBJECT_HANDLE objs[2];
    CK_ULONG n = 0;
    pthread_mutex_lock(&hsm->data_lock);
    CK_SESSION_HANDLE s = session_borrow(hsm);
    if (find_data(hsm, s, label, objs, NATTR(objs), &n, &rv) != 0) {
        goto out;
    }
    if (n == 0) {
        kms_raise(KMS_ERR_NOT_FOUND, "no data object labelled '%s' in token '%s'", label,
                  hsm->token_label);
        goto out;
    }
    if (n > 1) {
        /* Which one is current cannot be told: refuse rather than guess. */
        kms_raise(KMS_ERR_HSM,
                  "token '%s' holds several data objects labelled '%s' (an update was "
                  "interrupted): remove the stale one with the token's tools",
                  hsm->token_label, label);
        goto out;
    }
    r = read_value(hsm, s, objs[0], label, value, len, &rv);
out:
    session_return(hsm, s, rv);
    pthread_mutex_unlock(&hsm->data_lock);
    return r;
}

/* Whether a module's answer to C_SetAttributeValue(CKA_VALUE) means it does not change values
 * in place (as opposed to a failure worth reporting). */
static bool value_change_refused(CK_RV rv)
{
    return rv == CKR_ATTRIBUTE_READ_ONLY || rv == CKR_ACTION_PROHIBITED ||
           rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_TEMPLATE_INCONSISTENT;
}

static CK_RV create_data(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, const void *value,
                         size_t len)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR_BOOL(CKA_TOKEN, yes),
        ATTR_BOOL(CKA_PRIVATE, yes),
        ATTR_BOOL(CKA_MODIFIABLE, yes),
        ATTR(CKA_LABEL, label, strlen(label)),
        ATTR(CKA_APPLICATION, DATA_APPLICATION, sizeof DATA_APPLICATION - 1),
        ATTR(CKA_VALUE, value, len),
    };
    return h->f->C_CreateObject(s, tmpl, NATTR(tmpl), &obj);
}

static int data_set_locked(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, const void *value,
                           size_t len, CK_RV *rv)
{
    CK_OBJECT_HANDLE objs[MAX_OBJECTS_PER_LABEL];
    CK_ULONG n = 0;
    KMS_GUARD(find_data(h, s, label, objs, MAX_OBJECTS_PER_LABEL, &n, rv));
    if (n == 1) {
        CK_ATTRIBUTE a = ATTR(CKA_VALUE, value, len);
        *rv = h->f->C_SetAttributeValue(s, objs[0], &a, 1);
        if (*rv == CKR_OK) {
            return 0;
        }
        if (!value_change_refused(*rv)) {
            return raise_data_rv(h, *rv, "C_SetAttributeValue(CKA_VALUE)", label);
        }
    }
    /* None yet, or the module does not change values (or an interrupted replacement left
     * several): the new object first, then the old ones go. */
    *rv = create_data(h, s, label, value, len);
    if (*rv != CKR_OK) {
        return raise_data_rv(h, *rv, "C_CreateObject", label);
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_RV one = h->f->C_DestroyObject(s, objs[i]);
        if (one != CKR_OK && one != CKR_OBJECT_HANDLE_INVALID) {
            *rv = one;
            return raise_data_rv(h, one, "C_DestroyObject (the value before)", label);
        }
    }
    return 0;
}

int kms_hsm_data_set(kms_hsm *hsm, const char *label, const uint8_t *value, size_t len)
{
    static const uint8_t empty = 0;
    KMS_GUARD(check_label(label));
    KMS_ENSURE(value != NULL || len == 0, KMS_ERR_VALIDATION, "data object: missing value");
    CK_RV rv = CKR_OK;
    pthread_mutex_lock(&hsm->data_lock);
    CK_SESSION_HANDLE s = session_borrow(hsm);
    int r = data_set_locked(hsm, s, label, len > 0 ? (const void *)value : &empty, len, &rv);
    session_return(hsm, s, rv);
    pthread_mutex_unlock(&hsm->data_lock);
    return r;
}
