/* The typed calls of include/kms/kms.h: the same cores and the same gate as kms_call, without
 * JSON on the hot path. */
#include <string.h>

#include "service/ops.h"
#include "service/ops_crypto.h"
#include "util/util.h"

int kms_encrypt(kms_client *client, const char *key_id, const uint8_t *plaintext,
                size_t plaintext_len, const kms_encryption_context *context, uint8_t **blob,
                size_t *blob_len)
{
    kms_request rq;
    kms_buf b;
    kms_buf_init(&b, false);
    int rc = kms_gate_begin(&rq, client, "Encrypt");
    if (rc == 0) {
        rc = kms_ops_crypto_encrypt_core(&rq, key_id, "kms:Encrypt", plaintext, plaintext_len,
                                         context, &b, NULL);
    }
    rc = kms_gate_end(&rq, rc);
    if (rc == 0) {
        *blob = kms_buf_detach(&b, blob_len);
    }
    kms_buf_clean_up(&b);
    return rc;
}

int kms_decrypt(kms_client *client, const char *key_id, const uint8_t *blob, size_t blob_len,
                const kms_encryption_context *context, uint8_t **plaintext, size_t *plaintext_len,
                char **key_arn)
{
    kms_request rq;
    kms_buf pt;
    char arn[KMS_ARN_MAX];
    kms_buf_init(&pt, true);
    int rc = kms_gate_begin(&rq, client, "Decrypt");
    if (rc == 0) {
        rc = kms_ops_crypto_decrypt_core(&rq, key_id, "kms:Decrypt", blob, blob_len, context, &pt,
                                         arn);
    }
    if (rc == 0 && key_arn != NULL && (*key_arn = strdup(arn)) == NULL) {
        rc = kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    rc = kms_gate_end(&rq, rc);
    if (rc == 0) {
        *plaintext = kms_buf_detach(&pt, plaintext_len);
    }
    kms_buf_clean_up(&pt);
    return rc;
}

int kms_generate_data_key(kms_client *client, const char *key_id, size_t key_bytes,
                          const kms_encryption_context *context, uint8_t **plaintext,
                          uint8_t **blob, size_t *blob_len)
{
    kms_request rq;
    kms_buf b;
    uint8_t *dk = NULL;
    kms_buf_init(&b, false);
    const char *op = plaintext ? "GenerateDataKey" : "GenerateDataKeyWithoutPlaintext";
    int rc = kms_gate_begin(&rq, client, op);
    if (rc == 0) {
        rc = kms_ops_crypto_generate_data_key_core(
            &rq, key_id, plaintext ? "kms:GenerateDataKey" : "kms:GenerateDataKeyWithoutPlaintext",
            key_bytes, context, plaintext ? &dk : NULL, &b, NULL);
    }
    rc = kms_gate_end(&rq, rc);
    if (rc == 0) {
        *blob = kms_buf_detach(&b, blob_len);
        if (plaintext != NULL) {
            *plaintext = dk;
            dk = NULL;
        }
    }
    kms_secret_free(dk, key_bytes);
    kms_buf_clean_up(&b);
    return rc;
}

int kms_sign(kms_client *client, const char *key_id, const uint8_t *message, size_t message_len,
             const char *message_type, const char *algorithm, uint8_t **signature,
             size_t *signature_len)
{
    kms_request rq;
    uint8_t *sig = NULL;
    size_t n = 0;
    int rc = kms_gate_begin(&rq, client, "Sign");
    if (rc == 0) {
        rc = kms_ops_crypto_sign_core(&rq, key_id, message, message_len, message_type, algorithm,
                                      &sig, &n, NULL);
    }
    rc = kms_gate_end(&rq, rc);
    if (rc == 0) {
        *signature = sig;
        *signature_len = n;
        sig = NULL;
    }
    kms_buffer_free(sig);
    return rc;
}
