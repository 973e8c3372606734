/* The cryptographic operations' cores (ops_crypto.c), shared by kms_call and the typed API
 * (api.c). Private to src/service. */
#ifndef KMS_SERVICE_OPS_CRYPTO_H
#define KMS_SERVICE_OPS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "service/gate.h"
#include "util/buf.h"

/* Each resolves the key, authorises `action` on it, checks its state and usage, and does the
 * work. arn, when not NULL, receives the key's ARN. */
int kms_ops_crypto_encrypt_core(kms_request *rq, const char *key_ref, const char *action,
                                const uint8_t *pt, size_t pt_len, const kms_encryption_context *ctx,
                                kms_buf *blob, char arn[KMS_ARN_MAX])
    __attribute__((warn_unused_result));
/* key_ref may be NULL (the blob names its key). pt is a secure buffer. */
int kms_ops_crypto_decrypt_core(kms_request *rq, const char *key_ref, const char *action,
                                const uint8_t *blob, size_t blob_len,
                                const kms_encryption_context *ctx, kms_buf *pt,
                                char arn[KMS_ARN_MAX]) __attribute__((warn_unused_result));
/* The key a data key (or a data key pair's private key) is sealed under: resolves key_ref,
 * authorises action, checks state and usage, and refuses an asymmetric key
 * (InvalidKeyUsageException). The caller cleans up *rec. */
int kms_ops_crypto_data_key_cmk(kms_request *rq, const char *key_ref, const char *action,
                                const kms_encryption_context *ctx, kms_key_record *rec,
                                char arn[KMS_ARN_MAX]) __attribute__((warn_unused_result));
/* plaintext may be NULL (WithoutPlaintext); else it receives a sodium_malloc'd key. */
int kms_ops_crypto_generate_data_key_core(kms_request *rq, const char *key_ref, const char *action,
                                          size_t key_bytes, const kms_encryption_context *ctx,
                                          uint8_t **plaintext, kms_buf *blob, char arn[KMS_ARN_MAX])
    __attribute__((warn_unused_result));
int kms_ops_crypto_sign_core(kms_request *rq, const char *key_ref, const uint8_t *msg,
                             size_t msg_len, const char *message_type, const char *algorithm,
                             uint8_t **sig, size_t *sig_len, char arn[KMS_ARN_MAX])
    __attribute__((warn_unused_result));

#endif
