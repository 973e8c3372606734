/* Opening and closing a kms_hsm (module, token, login, session pool), and initialising a new
 * token. */
#include "hsm/hsm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "hsm/hsm_internal.h"
#include "util/util.h"

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

/* The pool's first session, which logs the application in (PKCS#11 v2.40 5.6: a login holds
 * for every session of the application on the token); the others are opened when needed. */
static int open_first_session(kms_hsm *h, const kms_hsm_config *cfg)
{
    CK_SESSION_HANDLE s;
    CK_RV rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        return kms_raise(KMS_ERR_HSM, "C_OpenSession on token '%s' failed: %s (0x%lx)",
                         h->token_label, kms_hsm_ckr_name(rv), (unsigned long)rv);
    }
    h->idle[h->nidle++] = s;
    h->nopen = 1;
    return kms_hsm_module_login(h->mod, h->slot, s, h->token_label, cfg->pin, cfg->pin_len);
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
    if (open_first_session(h, cfg) != 0) {
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
