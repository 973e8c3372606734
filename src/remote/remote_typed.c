/* The typed calls of include/kms/kms.h on a remote client: the request built as AWS KMS JSON,
 * sent through kms_remote_call, the response's members decoded. Plaintexts and data keys are
 * base64 in the JSON texts, which are wiped; decoded, they live in locked memory. Outputs are
 * cleared on entry and stay cleared on failure. */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "remote/remote_internal.h"
#include "service/request.h"
#include "util/util.h"

/* Longest binary member of a response taken (a ciphertext blob is at most 6 KiB). */
#define BLOB_MAX (1u << 20)

/* Wipes and frees a JSON text that may hold a secret. */
static void text_free(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
    }
    free(s);
}

static void json_free(json_t *v)
{
    kms_request_json_wipe(v);
    json_decref(v);
}

/* Adds {"EncryptionContext": {...}} when ctx has entries. */
static int context_set(json_t *req, const kms_encryption_context *ctx)
{
    if (ctx == NULL || ctx->count == 0) {
        return 0;
    }
    json_t *o = json_object();
    KMS_ENSURE(o != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < ctx->count; i++) {
        if (ctx->entries[i].key == NULL || ctx->entries[i].value == NULL ||
            json_object_set_new(o, ctx->entries[i].key, json_string(ctx->entries[i].value)) != 0) {
            json_decref(o);
            return kms_raise(KMS_ERR_VALIDATION,
                             "an encryption context entry is missing or not UTF-8");
        }
    }
    KMS_ENSURE(json_object_set_new(req, "EncryptionContext", o) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

static int string_set(json_t *req, const char *name, const char *value)
{
    if (value == NULL) {
        return 0;
    }
    KMS_ENSURE(json_object_set_new(req, name, json_string(value)) == 0, KMS_ERR_VALIDATION,
               "%s is not UTF-8", name);
    return 0;
}

static int int_set(json_t *req, const char *name, json_int_t value)
{
    KMS_ENSURE(json_object_set_new(req, name, json_integer(value)) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

/* Sends req (wiped and freed here) as operation; *resp the parsed response. */
static int exchange(struct kms_remote *r, const char *operation, json_t *req, json_t **resp)
{
    int rc = -1;
    char *body = NULL;
    char *text = NULL;
    *resp = NULL;
    if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_remote_call(r, operation, body, &text) != 0) {
        goto out;
    }
    *resp = json_loads(text, 0, NULL);
    if (!json_is_object(*resp)) {
        json_free(*resp);
        *resp = NULL;
        kms_raise(KMS_ERR_INTERNAL, "%s: the server's response is not a JSON object", operation);
        goto out;
    }
    rc = 0;
out:
    json_free(req);
    text_free(body);
    text_free(text);
    return rc;
}

int kms_remote_encrypt(struct kms_remote *r, const char *key_id, const uint8_t *plaintext,
                       size_t plaintext_len, const kms_encryption_context *context, uint8_t **blob,
                       size_t *blob_len)
{
    int rc = -1;
    json_t *resp = NULL;
    size_t n = 0;
    *blob = NULL;
    if (blob_len != NULL) {
        *blob_len = 0;
    }
    json_t *req = json_object();
    if (req == NULL || string_set(req, "KeyId", key_id) != 0 ||
        kms_request_json_set_blob(req, "Plaintext", plaintext, plaintext_len) != 0 ||
        context_set(req, context) != 0) {
        bool none = req == NULL;
        json_free(req);
        return none ? kms_raise(KMS_ERR_INTERNAL, "out of memory") : -1;
    }
    if ((rc = exchange(r, "Encrypt", req, &resp)) != 0) {
        goto out;
    }
    if ((rc = kms_request_blob(resp, "CiphertextBlob", true, 1, BLOB_MAX, false, blob, &n)) != 0) {
        goto out;
    }
    if (blob_len != NULL) {
        *blob_len = n;
    }
out:
    json_free(resp);
    return rc;
}

int kms_remote_decrypt(struct kms_remote *r, const char *key_id, const uint8_t *blob,
                       size_t blob_len, const kms_encryption_context *context, uint8_t **plaintext,
                       size_t *plaintext_len, char **key_arn)
{
    int rc = -1;
    json_t *resp = NULL;
    uint8_t *pt = NULL;
    size_t n = 0;
    const char *arn = NULL;
    *plaintext = NULL;
    if (plaintext_len != NULL) {
        *plaintext_len = 0;
    }
    if (key_arn != NULL) {
        *key_arn = NULL;
    }
    json_t *req = json_object();
    if (req == NULL || string_set(req, "KeyId", key_id) != 0 ||
        kms_request_json_set_blob(req, "CiphertextBlob", blob, blob_len) != 0 ||
        context_set(req, context) != 0) {
        bool none = req == NULL;
        json_free(req);
        return none ? kms_raise(KMS_ERR_INTERNAL, "out of memory") : -1;
    }
    if ((rc = exchange(r, "Decrypt", req, &resp)) != 0) {
        goto out;
    }
    if ((rc = kms_request_blob(resp, "Plaintext", true, 0, BLOB_MAX, true, &pt, &n)) != 0 ||
        (rc = kms_request_string(resp, "KeyId", key_arn != NULL, 1, 2048, &arn)) != 0) {
        goto out;
    }
    if (key_arn != NULL && (*key_arn = strdup(arn)) == NULL) {
        rc = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    *plaintext = pt;
    pt = NULL;
    if (plaintext_len != NULL) {
        *plaintext_len = n;
    }
out:
    kms_secret_free(pt, n);
    json_free(resp);
    return rc;
}

int kms_remote_generate_data_key(struct kms_remote *r, const char *key_id, size_t key_bytes,
                                 const kms_encryption_context *context, uint8_t **plaintext,
                                 uint8_t **blob, size_t *blob_len)
{
    int rc = -1;
    json_t *resp = NULL;
    uint8_t *dk = NULL, *b = NULL;
    size_t dk_len = 0, n = 0;
    if (plaintext != NULL) {
        *plaintext = NULL;
    }
    *blob = NULL;
    if (blob_len != NULL) {
        *blob_len = 0;
    }
    json_t *req = json_object();
    if (req == NULL || string_set(req, "KeyId", key_id) != 0 ||
        int_set(req, "NumberOfBytes", (json_int_t)key_bytes) != 0 ||
        context_set(req, context) != 0) {
        bool none = req == NULL;
        json_free(req);
        return none ? kms_raise(KMS_ERR_INTERNAL, "out of memory") : -1;
    }
    const char *op = plaintext != NULL ? "GenerateDataKey" : "GenerateDataKeyWithoutPlaintext";
    if ((rc = exchange(r, op, req, &resp)) != 0) {
        goto out;
    }
    if ((rc = kms_request_blob(resp, "CiphertextBlob", true, 1, BLOB_MAX, false, &b, &n)) != 0) {
        goto out;
    }
    if (plaintext != NULL && (rc = kms_request_blob(resp, "Plaintext", true, key_bytes, key_bytes,
                                                    true, &dk, &dk_len)) != 0) {
        goto out;
    }
    *blob = b;
    b = NULL;
    if (blob_len != NULL) {
        *blob_len = n;
    }
    if (plaintext != NULL) {
        *plaintext = dk;
        dk = NULL;
    }
out:
    kms_secret_free(dk, dk_len);
    free(b);
    json_free(resp);
    return rc;
}

int kms_remote_sign(struct kms_remote *r, const char *key_id, const uint8_t *message,
                    size_t message_len, const char *message_type, const char *algorithm,
                    uint8_t **signature, size_t *signature_len)
{
    int rc = -1;
    json_t *resp = NULL;
    *signature = NULL;
    *signature_len = 0;
    json_t *req = json_object();
    if (req == NULL || string_set(req, "KeyId", key_id) != 0 ||
        kms_request_json_set_blob(req, "Message", message, message_len) != 0 ||
        string_set(req, "MessageType", message_type) != 0 ||
        string_set(req, "SigningAlgorithm", algorithm) != 0) {
        bool none = req == NULL;
        json_free(req);
        return none ? kms_raise(KMS_ERR_INTERNAL, "out of memory") : -1;
    }
    if ((rc = exchange(r, "Sign", req, &resp)) != 0) {
        goto out;
    }
    rc = kms_request_blob(resp, "Signature", true, 1, BLOB_MAX, false, signature, signature_len);
out:
    json_free(resp);
    return rc;
}
