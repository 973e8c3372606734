/* The service's own keys in the HSM (internal_keys.h): the HSM handle, the key that seals IAM
 * secrets, the audit digest key and the audit anchor. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "service/internal_keys.h"
#include "util/secmem.h"
#include "util/util.h"

/* ---- The HSM handle ------------------------------------------------------------------------- */

kms_hsm *kms_internal_keys_hsm_open(const char *module_path, const char *token_label,
                                    const uint8_t *pin, size_t pin_len, unsigned pool_size,
                                    const char *lock_path)
{
    kms_hsm_config hc = {
        .module_path = module_path,
        .token_label = token_label,
        .pin = pin,
        .pin_len = pin_len,
        .pool_size = pool_size,
        .open_lock_path = lock_path,
    };
    return kms_hsm_open(&hc);
}

void kms_internal_keys_hsm_close(kms_hsm *hsm)
{
    kms_hsm_close(hsm);
}

int kms_internal_keys_init_token(const char *module_path, const char *token_label,
                                 const uint8_t *so_pin, size_t so_pin_len, const uint8_t *pin,
                                 size_t pin_len)
{
    return kms_hsm_init_token(module_path, token_label, so_pin, so_pin_len, pin, pin_len);
}

/* ---- The IAM sealing key: secrets sealed under a key that never leaves the HSM -------------- */

int kms_internal_keys_sealer_create(kms_hsm *hsm)
{
    return kms_hsm_generate_key(hsm, KMS_HSM_AES_256, KMS_SEALER_LABEL, NULL, NULL);
}

static int seal(void *arg, const char *purpose, const uint8_t *pt, size_t n, uint8_t **ct,
                size_t *ct_len)
{
    kms_hsm *hsm = arg;
    size_t total = KMS_HSM_GCM_IV_LEN + n + KMS_HSM_GCM_TAG_LEN;
    *ct = NULL;
    *ct_len = 0;
    uint8_t *out = malloc(total);
    KMS_ENSURE(out != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (kms_hsm_random(hsm, out, KMS_HSM_GCM_IV_LEN) != 0 ||
        kms_hsm_aes_gcm_encrypt(hsm, KMS_SEALER_LABEL, out, (const uint8_t *)purpose,
                                strlen(purpose), pt, n, out + KMS_HSM_GCM_IV_LEN,
                                out + KMS_HSM_GCM_IV_LEN + n) != 0) {
        free(out);
        return -1;
    }
    *ct = out;
    *ct_len = total;
    return 0;
}

static int open_sealed(void *arg, const char *purpose, const uint8_t *ct, size_t n, uint8_t **pt,
                       size_t *pt_len)
{
    kms_hsm *hsm = arg;
    *pt = NULL;
    *pt_len = 0;
    KMS_ENSURE(n >= KMS_HSM_GCM_IV_LEN + KMS_HSM_GCM_TAG_LEN, KMS_ERR_INVALID_CIPHERTEXT,
               "a sealed secret is truncated");
    size_t len = n - KMS_HSM_GCM_IV_LEN - KMS_HSM_GCM_TAG_LEN;
    /* One spare byte so that callers may treat the secret as a string. */
    uint8_t *out = kms_secure_alloc(len + 1);
    if (out == NULL) {
        return -1;
    }
    if (kms_hsm_aes_gcm_decrypt(hsm, KMS_SEALER_LABEL, ct, (const uint8_t *)purpose,
                                strlen(purpose), ct + KMS_HSM_GCM_IV_LEN, len,
                                ct + KMS_HSM_GCM_IV_LEN + len, out) != 0) {
        kms_secure_free(out);
        return -1;
    }
    out[len] = '\0';
    *pt = out;
    *pt_len = len;
    return 0;
}

kms_iam_sealer kms_internal_keys_sealer(kms_hsm *hsm)
{
    kms_iam_sealer s = {seal, open_sealed, hsm};
    return s;
}

/* ---- The audit digest key and anchor -------------------------------------------------------- */

int kms_internal_keys_audit_key_create(kms_hsm *hsm, uint8_t **spki, size_t *spki_len)
{
    return kms_hsm_generate_key(hsm, KMS_HSM_EC_P256, KMS_AUDIT_KEY_LABEL, spki, spki_len);
}

int kms_internal_keys_audit_public_key(kms_hsm *hsm, uint8_t **spki, size_t *spki_len)
{
    return kms_hsm_public_key(hsm, KMS_HSM_EC_P256, KMS_AUDIT_KEY_LABEL, spki, spki_len);
}

int kms_internal_keys_audit_sign(kms_hsm *hsm, const uint8_t digest[32], uint8_t **sig,
                                 size_t *sig_len)
{
    return kms_hsm_sign_digest(hsm, KMS_AUDIT_KEY_LABEL, KMS_HSM_ECDSA_SHA256, digest, 32, sig,
                               sig_len);
}

int kms_internal_keys_audit_ack_create(kms_hsm *hsm)
{
    uint8_t *key = kms_secure_alloc(KMS_AUDIT_ACK_KEY_LEN);
    KMS_ENSURE(key != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = kms_hsm_random(hsm, key, KMS_AUDIT_ACK_KEY_LEN);
    if (r == 0) {
        r = kms_hsm_data_set(hsm, KMS_AUDIT_ACK_LABEL, key, KMS_AUDIT_ACK_KEY_LEN);
    }
    kms_secure_free(key);
    return r;
}

int kms_internal_keys_audit_ack_key(kms_hsm *hsm, uint8_t *key)
{
    uint8_t *value = NULL;
    size_t len = 0;
    KMS_GUARD(kms_hsm_data_get(hsm, KMS_AUDIT_ACK_LABEL, &value, &len));
    int r = len == KMS_AUDIT_ACK_KEY_LEN
                ? 0
                : kms_raise(KMS_ERR_INTERNAL,
                            "the token's audit ack key (%s) is %zu bytes, not %d: restore the "
                            "token from a backup",
                            KMS_AUDIT_ACK_LABEL, len, KMS_AUDIT_ACK_KEY_LEN);
    if (r == 0) {
        memcpy(key, value, KMS_AUDIT_ACK_KEY_LEN);
    }
    sodium_memzero(value, len);
    free(value);
    return r;
}

int kms_internal_keys_anchor_get(kms_hsm *hsm, uint8_t **value, size_t *len)
{
    return kms_hsm_data_get(hsm, KMS_AUDIT_ANCHOR_LABEL, value, len);
}

int kms_internal_keys_anchor_set(kms_hsm *hsm, const char *text)
{
    return kms_hsm_data_set(hsm, KMS_AUDIT_ANCHOR_LABEL, (const uint8_t *)text, strlen(text));
}

/* ---- The home's identity -------------------------------------------------------------------- */

int kms_internal_keys_home_id_get(kms_hsm *hsm, uint8_t **value, size_t *len)
{
    return kms_hsm_data_get(hsm, KMS_HOME_ID_LABEL, value, len);
}

int kms_internal_keys_home_id_set(kms_hsm *hsm, const char *home_id)
{
    return kms_hsm_data_set(hsm, KMS_HOME_ID_LABEL, (const uint8_t *)home_id, strlen(home_id));
}
