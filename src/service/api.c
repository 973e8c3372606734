/* The typed calls of include/kms/kms.h: the same cores and the same gate as kms_call, without
 * JSON on the hot path. Every call runs kms_gate_end whatever happened before it (the audit
 * record is written for failures too), and hands its outputs to the caller only once that
 * succeeded: they are cleared on entry and stay cleared on any failure. */
#include <stdlib.h>
#include <string.h>

#include "remote/remote.h"
#include "service/client.h"
#include "service/ops.h"
#include "service/ops_crypto.h"
#include "util/util.h"

int kms_encrypt(kms_client *client, const char *key_id, const uint8_t *plaintext,
                size_t plaintext_len, const kms_encryption_context *context, uint8_t **blob,
                size_t *blob_len)
{
    int r = -1;
    kms_request rq;
    kms_buf b;
    if (client != NULL && client->remote != NULL) {
        return kms_remote_encrypt(client->remote, key_id, plaintext, plaintext_len, context, blob,
                                  blob_len);
    }
    kms_buf_init(&b, false);
    *blob = NULL;
    if (blob_len != NULL) {
        *blob_len = 0;
    }
    if ((r = kms_gate_begin(&rq, client, "Encrypt")) == 0) {
        r = kms_ops_crypto_encrypt_core(&rq, key_id, "kms:Encrypt", plaintext, plaintext_len,
                                        context, &b, NULL);
    }
    if ((r = kms_gate_end(&rq, r)) != 0) {
        goto out;
    }
    *blob = kms_buf_detach(&b, blob_len);
    r = 0;
out:
    kms_buf_clean_up(&b);
    return r;
}

int kms_decrypt(kms_client *client, const char *key_id, const uint8_t *blob, size_t blob_len,
                const kms_encryption_context *context, uint8_t **plaintext, size_t *plaintext_len,
                char **key_arn)
{
    int r = -1;
    kms_request rq;
    kms_buf pt;
    char arn[KMS_ARN_MAX];
    char *arn_copy = NULL;
    if (client != NULL && client->remote != NULL) {
        return kms_remote_decrypt(client->remote, key_id, blob, blob_len, context, plaintext,
                                  plaintext_len, key_arn);
    }
    kms_buf_init(&pt, true);
    *plaintext = NULL;
    if (plaintext_len != NULL) {
        *plaintext_len = 0;
    }
    if (key_arn != NULL) {
        *key_arn = NULL;
    }
    if ((r = kms_gate_begin(&rq, client, "Decrypt")) == 0) {
        r = kms_ops_crypto_decrypt_core(&rq, key_id, "kms:Decrypt", blob, blob_len, context, &pt,
                                        arn);
    }
    if (r == 0 && key_arn != NULL && (arn_copy = strdup(arn)) == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    if ((r = kms_gate_end(&rq, r)) != 0) {
        goto out;
    }
    *plaintext = kms_buf_detach(&pt, plaintext_len);
    if (key_arn != NULL) {
        *key_arn = arn_copy;
        arn_copy = NULL;
    }
    r = 0;
out:
    free(arn_copy);
    kms_buf_clean_up(&pt); /* wipes */
    return r;
}

int kms_generate_data_key(kms_client *client, const char *key_id, size_t key_bytes,
                          const kms_encryption_context *context, uint8_t **plaintext,
                          uint8_t **blob, size_t *blob_len)
{
    int r = -1;
    kms_request rq;
    kms_buf b;
    uint8_t *dk = NULL;
    if (client != NULL && client->remote != NULL) {
        return kms_remote_generate_data_key(client->remote, key_id, key_bytes, context, plaintext,
                                            blob, blob_len);
    }
    kms_buf_init(&b, false);
    if (plaintext != NULL) {
        *plaintext = NULL;
    }
    *blob = NULL;
    if (blob_len != NULL) {
        *blob_len = 0;
    }
    const char *op = plaintext ? "GenerateDataKey" : "GenerateDataKeyWithoutPlaintext";
    if ((r = kms_gate_begin(&rq, client, op)) == 0) {
        r = kms_ops_crypto_generate_data_key_core(
            &rq, key_id, plaintext ? "kms:GenerateDataKey" : "kms:GenerateDataKeyWithoutPlaintext",
            key_bytes, context, plaintext ? &dk : NULL, &b, NULL);
    }
    if ((r = kms_gate_end(&rq, r)) != 0) {
        goto out;
    }
    *blob = kms_buf_detach(&b, blob_len);
    if (plaintext != NULL) {
        *plaintext = dk;
        dk = NULL;
    }
    r = 0;
out:
    kms_secret_free(dk, key_bytes);
    kms_buf_clean_up(&b);
    return r;
}

int kms_sign(kms_client *client, const char *key_id, const uint8_t *message, size_t message_len,
             const char *message_type, const char *algorithm, uint8_t **signature,
             size_t *signature_len)
{
    int r = -1;
    kms_request rq;
    uint8_t *sig = NULL;
    size_t n = 0;
    if (client != NULL && client->remote != NULL) {
        return kms_remote_sign(client->remote, key_id, message, message_len, message_type,
                               algorithm, signature, signature_len);
    }
    *signature = NULL;
    *signature_len = 0;
    if ((r = kms_gate_begin(&rq, client, "Sign")) == 0) {
        r = kms_ops_crypto_sign_core(&rq, key_id, message, message_len, message_type, algorithm,
                                     &sig, &n, NULL);
    }
    if ((r = kms_gate_end(&rq, r)) != 0) {
        goto out;
    }
    *signature = sig;
    *signature_len = n;
    sig = NULL;
    r = 0;
out:
    kms_buffer_free(sig);
    return r;
}
