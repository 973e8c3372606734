#include "hsm/hsm_module.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define LOGIN_MAC_LEN crypto_generichash_BYTES

/* Which PIN logged the application in to a token (a keyed hash, never the PIN). */
typedef struct login_record {
    CK_SLOT_ID slot;
    uint8_t mac[LOGIN_MAC_LEN];
} login_record;

struct kms_hsm_module {
    kms_hsm_module *next;
    char *path;
    void *dl;
    CK_FUNCTION_LIST *f;
    unsigned refs;
    bool finalize; /* we called C_Initialize, so the last user calls C_Finalize */
    uint8_t mac_key[crypto_generichash_KEYBYTES];
    login_record *logins;
    size_t nlogins;
};

/* Guards the list and every entry's refs and login records. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static kms_hsm_module *registry;

const char *kms_hsm_ckr_name(CK_RV rv)
{
    /* PKCS#11 v2.40 base specification, section 5.1: return values. */
    static const struct {
        CK_RV rv;
        const char *name;
    } names[] = {
#define CKR_NAME(x) {x, #x}
        CKR_NAME(CKR_OK),
        CKR_NAME(CKR_CANCEL),
        CKR_NAME(CKR_HOST_MEMORY),
        CKR_NAME(CKR_SLOT_ID_INVALID),
        CKR_NAME(CKR_GENERAL_ERROR),
        CKR_NAME(CKR_FUNCTION_FAILED),
        CKR_NAME(CKR_ARGUMENTS_BAD),
        CKR_NAME(CKR_CANT_LOCK),
        CKR_NAME(CKR_ATTRIBUTE_READ_ONLY),
        CKR_NAME(CKR_ATTRIBUTE_SENSITIVE),
        CKR_NAME(CKR_ATTRIBUTE_TYPE_INVALID),
        CKR_NAME(CKR_ATTRIBUTE_VALUE_INVALID),
        CKR_NAME(CKR_DATA_INVALID),
        CKR_NAME(CKR_DATA_LEN_RANGE),
        CKR_NAME(CKR_DEVICE_ERROR),
        CKR_NAME(CKR_DEVICE_MEMORY),
        CKR_NAME(CKR_DEVICE_REMOVED),
        CKR_NAME(CKR_ENCRYPTED_DATA_INVALID),
        CKR_NAME(CKR_ENCRYPTED_DATA_LEN_RANGE),
        CKR_NAME(CKR_FUNCTION_CANCELED),
        CKR_NAME(CKR_FUNCTION_NOT_SUPPORTED),
        CKR_NAME(CKR_KEY_HANDLE_INVALID),
        CKR_NAME(CKR_KEY_SIZE_RANGE),
        CKR_NAME(CKR_KEY_TYPE_INCONSISTENT),
        CKR_NAME(CKR_KEY_FUNCTION_NOT_PERMITTED),
        CKR_NAME(CKR_KEY_NOT_WRAPPABLE),
        CKR_NAME(CKR_KEY_UNEXTRACTABLE),
        CKR_NAME(CKR_MECHANISM_INVALID),
        CKR_NAME(CKR_MECHANISM_PARAM_INVALID),
        CKR_NAME(CKR_OBJECT_HANDLE_INVALID),
        CKR_NAME(CKR_OPERATION_ACTIVE),
        CKR_NAME(CKR_OPERATION_NOT_INITIALIZED),
        CKR_NAME(CKR_PIN_INCORRECT),
        CKR_NAME(CKR_PIN_INVALID),
        CKR_NAME(CKR_PIN_LEN_RANGE),
        CKR_NAME(CKR_PIN_EXPIRED),
        CKR_NAME(CKR_PIN_LOCKED),
        CKR_NAME(CKR_SESSION_CLOSED),
        CKR_NAME(CKR_SESSION_COUNT),
        CKR_NAME(CKR_SESSION_HANDLE_INVALID),
        CKR_NAME(CKR_SESSION_READ_ONLY),
        CKR_NAME(CKR_SESSION_EXISTS),
        CKR_NAME(CKR_SESSION_READ_ONLY_EXISTS),
        CKR_NAME(CKR_SESSION_READ_WRITE_SO_EXISTS),
        CKR_NAME(CKR_SIGNATURE_INVALID),
        CKR_NAME(CKR_SIGNATURE_LEN_RANGE),
        CKR_NAME(CKR_TEMPLATE_INCOMPLETE),
        CKR_NAME(CKR_TEMPLATE_INCONSISTENT),
        CKR_NAME(CKR_TOKEN_NOT_PRESENT),
        CKR_NAME(CKR_TOKEN_NOT_RECOGNIZED),
        CKR_NAME(CKR_TOKEN_WRITE_PROTECTED),
        CKR_NAME(CKR_USER_ALREADY_LOGGED_IN),
        CKR_NAME(CKR_USER_NOT_LOGGED_IN),
        CKR_NAME(CKR_USER_PIN_NOT_INITIALIZED),
        CKR_NAME(CKR_USER_TYPE_INVALID),
        CKR_NAME(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
        CKR_NAME(CKR_USER_TOO_MANY_TYPES),
        CKR_NAME(CKR_DOMAIN_PARAMS_INVALID),
        CKR_NAME(CKR_CURVE_NOT_SUPPORTED),
        CKR_NAME(CKR_BUFFER_TOO_SMALL),
        CKR_NAME(CKR_RANDOM_SEED_NOT_SUPPORTED),
        CKR_NAME(CKR_RANDOM_NO_RNG),
        CKR_NAME(CKR_CRYPTOKI_NOT_INITIALIZED),
        CKR_NAME(CKR_CRYPTOKI_ALREADY_INITIALIZED),
        CKR_NAME(CKR_MUTEX_BAD),
        CKR_NAME(CKR_MUTEX_NOT_LOCKED),
#undef CKR_NAME
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].rv == rv) {
            return names[i].name;
        }
    }
    return "CKR_(unknown)";
}

static void module_unload(kms_hsm_module *m)
{
    if (m->finalize) {
        (void)m->f->C_Finalize(NULL);
    }
    if (m->dl != NULL) {
        dlclose(m->dl);
    }
    free(m->logins);
    sodium_memzero(m->mac_key, sizeof m->mac_key);
    free(m->path);
    free(m);
}

/* Called with registry_lock held. */
static int module_load(const char *path, kms_hsm_module **out)
{
    int r = -1;
    kms_hsm_module *m = calloc(1, sizeof *m);
    if (m == NULL || (m->path = strdup(path)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory loading PKCS#11 module '%s'", path);
        goto out;
    }
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        const char *why = dlerror();
        kms_raise(KMS_ERR_HSM,
                  "cannot load PKCS#11 module '%s': %s; check the pkcs11_module "
                  "setting of the KMS home",
                  path, why != NULL ? why : "unknown error");
        goto out;
    }
    CK_C_GetFunctionList get_list = NULL;
    /* POSIX dlsym returns a data pointer; this is the sanctioned way to turn it into a function
     * pointer. */
    *(void **)&get_list = dlsym(m->dl, "C_GetFunctionList");
    if (get_list == NULL) {
        kms_raise(KMS_ERR_HSM, "'%s' is not a PKCS#11 module: no C_GetFunctionList", path);
        goto out;
    }
    CK_RV rv = get_list(&m->f);
    if (rv != CKR_OK || m->f == NULL) {
        kms_raise(KMS_ERR_HSM, "C_GetFunctionList of '%s' failed: %s (0x%lx)", path,
                  kms_hsm_ckr_name(rv), (unsigned long)rv);
        goto out;
    }
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    rv = m->f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        kms_raise(KMS_ERR_HSM,
                  "C_Initialize of PKCS#11 module '%s' failed: %s (0x%lx); for "
                  "SoftHSM2 check that SOFTHSM2_CONF names a readable configuration",
                  path, kms_hsm_ckr_name(rv), (unsigned long)rv);
        goto out;
    }
    /* Someone else in the process initialised it: they finalise it, not us. */
    m->finalize = rv == CKR_OK;
    randombytes_buf(m->mac_key, sizeof m->mac_key);
    m->refs = 1;
    *out = m;
    m = NULL;
    r = 0;
out:
    if (m != NULL) {
        m->finalize = false;
        module_unload(m);
    }
    return r;
}

int kms_hsm_module_acquire(const char *path, kms_hsm_module **out)
{
    int r = -1;
    *out = NULL;
    if (sodium_init() < 0) {
        return kms_raise(KMS_ERR_INTERNAL, "libsodium failed to initialise");
    }
    pthread_mutex_lock(&registry_lock);
    for (kms_hsm_module *m = registry; m != NULL; m = m->next) {
        if (strcmp(m->path, path) == 0) {
            m->refs++;
            *out = m;
            r = 0;
            goto out;
        }
    }
    kms_hsm_module *m = NULL;
    if (module_load(path, &m) != 0) {
        goto out;
    }
    m->next = registry;
    registry = m;
    *out = m;
    r = 0;
out:
    pthread_mutex_unlock(&registry_lock);
    return r;
}

void kms_hsm_module_release(kms_hsm_module *m)
{
    if (m == NULL) {
        return;
    }
    pthread_mutex_lock(&registry_lock);
    if (--m->refs == 0) {
        for (kms_hsm_module **pp = &registry; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == m) {
                *pp = m->next;
                break;
            }
        }
        module_unload(m);
    }
    pthread_mutex_unlock(&registry_lock);
}

CK_FUNCTION_LIST *kms_hsm_module_functions(const kms_hsm_module *m)
{
    return m->f;
}

const char *kms_hsm_module_path(const kms_hsm_module *m)
{
    return m->path;
}

int kms_hsm_label_pad(const char *label, CK_UTF8CHAR out[KMS_HSM_LABEL_LEN])
{
    size_t n = label != NULL ? strlen(label) : 0;
    KMS_ENSURE(n > 0 && n <= KMS_HSM_LABEL_LEN, KMS_ERR_VALIDATION,
               "token label must be 1 to %d bytes", KMS_HSM_LABEL_LEN);
    memset(out, ' ', KMS_HSM_LABEL_LEN);
    memcpy(out, label, n);
    return 0;
}

int kms_hsm_module_find_token(kms_hsm_module *m, const char *label, bool *found, CK_SLOT_ID *slot)
{
    int r = -1;
    CK_SLOT_ID *slots = NULL;
    CK_UTF8CHAR want[KMS_HSM_LABEL_LEN];
    *found = false;
    if (kms_hsm_label_pad(label, want) != 0) {
        goto out;
    }
    CK_ULONG n = 0;
    CK_RV rv;
    /* The slot list may grow between the two calls (SoftHSM adds a slot after C_InitToken). */
    do {
        rv = m->f->C_GetSlotList(CK_TRUE, NULL, &n);
        if (rv != CKR_OK) {
            break;
        }
        free(slots);
        slots = calloc(n + 1, sizeof *slots);
        if (slots == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory listing PKCS#11 slots");
            goto out;
        }
        rv = m->f->C_GetSlotList(CK_TRUE, slots, &n);
    } while (rv == CKR_BUFFER_TOO_SMALL);
    if (rv != CKR_OK) {
        kms_raise(KMS_ERR_HSM, "C_GetSlotList of '%s' failed: %s (0x%lx)", m->path,
                  kms_hsm_ckr_name(rv), (unsigned long)rv);
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (m->f->C_GetTokenInfo(slots[i], &info) != CKR_OK) {
            continue; /* token removed meanwhile or unreadable: not ours */
        }
        if ((info.flags & CKF_TOKEN_INITIALIZED) != 0 &&
            memcmp(info.label, want, KMS_HSM_LABEL_LEN) == 0) {
            *found = true;
            *slot = slots[i];
            break;
        }
    }
    r = 0;
out:
    free(slots);
    return r;
}

static login_record *login_find(kms_hsm_module *m, CK_SLOT_ID slot)
{
    for (size_t i = 0; i < m->nlogins; i++) {
        if (m->logins[i].slot == slot) {
            return &m->logins[i];
        }
    }
    return NULL;
}

int kms_hsm_module_login(kms_hsm_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE s, const char *label,
                         const uint8_t *pin, size_t pin_len)
{
    int r = -1;
    uint8_t mac[LOGIN_MAC_LEN];
    pthread_mutex_lock(&registry_lock);
    crypto_generichash(mac, sizeof mac, pin, pin_len, m->mac_key, sizeof m->mac_key);
    CK_RV rv = m->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pin_len);
    login_record *rec = login_find(m, slot);
    if (rv == CKR_USER_ALREADY_LOGGED_IN) {
        /* Login is per application: another handle logged in. The PIN must be the same. */
        if (rec != NULL && sodium_memcmp(rec->mac, mac, sizeof mac) != 0) {
            rv = CKR_PIN_INCORRECT;
        } else {
            rv = CKR_OK;
        }
    } else if (rv == CKR_OK) {
        if (rec == NULL) {
            login_record *grown = realloc(m->logins, (m->nlogins + 1) * sizeof *grown);
            if (grown == NULL) {
                kms_raise(KMS_ERR_INTERNAL, "out of memory recording a PKCS#11 login");
                goto out;
            }
            m->logins = grown;
            rec = &m->logins[m->nlogins++];
            rec->slot = slot;
        }
        memcpy(rec->mac, mac, sizeof mac);
    }
    switch (rv) {
    case CKR_OK:
        r = 0;
        break;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_INVALID:
        kms_raise(KMS_ERR_HSM,
                  "the HSM refused the PIN for token '%s' (C_Login: %s); check that "
                  "the PIN source of the KMS home (pin file or environment variable) holds the "
                  "token's user PIN",
                  label, kms_hsm_ckr_name(rv));
        break;
    case CKR_PIN_LOCKED:
        kms_raise(KMS_ERR_HSM,
                  "the user PIN of token '%s' is locked (C_Login: %s); the security "
                  "officer must reset it",
                  label, kms_hsm_ckr_name(rv));
        break;
    case CKR_USER_PIN_NOT_INITIALIZED:
        kms_raise(KMS_ERR_HSM,
                  "token '%s' has no user PIN yet (C_Login: %s); initialise it with "
                  "`kmsctl init`",
                  label, kms_hsm_ckr_name(rv));
        break;
    default:
        kms_raise(KMS_ERR_HSM, "C_Login to token '%s' failed: %s (0x%lx)", label,
                  kms_hsm_ckr_name(rv), (unsigned long)rv);
        break;
    }
out:
    pthread_mutex_unlock(&registry_lock);
    sodium_memzero(mac, sizeof mac);
    return r;
}
