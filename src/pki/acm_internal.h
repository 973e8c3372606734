/* Shared by the acm files of src/pki only: sealing keys, reading certificates, the rows. */
#ifndef KMS_PKI_ACM_INTERNAL_H
#define KMS_PKI_ACM_INTERNAL_H

#include <openssl/x509.h>

#include "pki/acm.h"

/* The PKCS#8 DER of a key sealed for the certificate arn: a fresh 32-byte data key wrapped by
 * rec (kms_keystore_seal, encryption context {"aws:acm:arn": ARN}), the key under it with
 * XChaCha20-Poly1305 (the ARN as associated data). *blob malloc'd:
 * 0x01 || be16 wrapped length || wrapped data key || 24-byte nonce || ciphertext and tag. */
int kms_acm_seal(const kms_keystore *ks, const kms_key_record *rec, const char *arn,
                 const uint8_t *pkcs8, size_t len, uint8_t **blob, size_t *blob_len)
    __attribute__((warn_unused_result));
/* A key's PKCS#8 DER into a secure buffer. */
int kms_acm_pkcs8(EVP_PKEY *key, kms_buf *out) __attribute__((warn_unused_result));
/* The serial, NotBefore and NotAfter of x into c; c->certificate receives x's DER. */
int kms_acm_cert_fill(X509 *x, kms_acm_cert *c) __attribute__((warn_unused_result));

/* token (NULL: none) is recorded with the row, for kms_acm_db_token_find. */
int kms_acm_db_insert(const kms_keystore *ks, const kms_acm_cert *c, const char *token)
    __attribute__((warn_unused_result));
/* The id of the certificate of the account requested with token since `since`: 1 and cert_id
 * set, 0 none, -1 error. */
int kms_acm_db_token_find(const kms_keystore *ks, const char *token, int64_t since,
                          char cert_id[37]) __attribute__((warn_unused_result));
/* The certificate, key and validity columns of c replace the row's of generation
 * c->generation - 1 (RequestInProgressException if another renewal got there first). */
int kms_acm_db_replace(const kms_keystore *ks, const kms_acm_cert *c)
    __attribute__((warn_unused_result));

#endif
