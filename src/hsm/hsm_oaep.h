/* Private to src/hsm: EME-OAEP decoding (RFC 8017 7.1.2 steps 3a-3g) of a raw RSA decryption,
 * for modules that decrypt with CKM_RSA_X_509 but refuse the CKM_RSA_PKCS_OAEP parameters we
 * need (SoftHSM 2.6 accepts OAEP with SHA-1 only). */
#ifndef KMS_HSM_HSM_OAEP_H
#define KMS_HSM_HSM_OAEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* Decodes em (the k-byte encoded message, k the modulus length, leading zero byte included)
 * with SHA-1 or SHA-256 for the hash and MGF1 and an empty label. pt has room for em_len bytes.
 * Constant time in the padding: every failure is the same InvalidCiphertextException, and pt
 * is written only on success. */
int kms_hsm_oaep_decode(bool sha256, const uint8_t *em, size_t em_len, uint8_t *pt, size_t *pt_len)
    __attribute__((warn_unused_result));

#endif
