/* Sealing IAM secrets under a key that never leaves the HSM. */
#include <stdlib.h>
#include <string.h>

#include "service/credentials.h"
#include "util/secmem.h"
#include "util/util.h"

int kms_sealer_key_create(kms_hsm *hsm)
{
    return kms_hsm_generate_key(hsm, KMS_HSM_AES_256, KMS_SEALER_LABEL, NULL, NULL);
}

static int seal(void *arg, const char *purpose, const uint8_t *pt, size_t n, uint8_t **ct,
                size_t *ct_len)
{
    kms_hsm *hsm = arg;
    size_t total = KMS_HSM_GCM_IV_LEN + n + KMS_HSM_GCM_TAG_LEN;
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

kms_iam_sealer kms_hsm_sealer(kms_hsm *hsm)
{
    kms_iam_sealer s = {seal, open_sealed, hsm};
    return s;
}
