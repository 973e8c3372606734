#include "keystore/blob.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

int kms_blob_parse(const uint8_t *p, size_t n, kms_blob *out)
{
    kms_reader r;
    uint8_t version = 0;
    uint8_t id[16];
    memset(out, 0, sizeof *out);
    KMS_ENSURE(n <= KMS_MAX_BLOB, KMS_ERR_VALIDATION,
               "CiphertextBlob is %zu bytes; at most %d are allowed", n, KMS_MAX_BLOB);
    kms_reader_init(&r, p, n);
    KMS_ENSURE(kms_reader_u8(&r, &version) == 0, KMS_ERR_INVALID_CIPHERTEXT,
               "the ciphertext is empty");
    KMS_ENSURE(version == KMS_BLOB_VERSION, KMS_ERR_INVALID_CIPHERTEXT,
               "the ciphertext has format version %u; this KMS reads version %u (is it a KMS "
               "ciphertext blob?)",
               version, KMS_BLOB_VERSION);
    KMS_ENSURE(n >= KMS_BLOB_OVERHEAD, KMS_ERR_INVALID_CIPHERTEXT,
               "the ciphertext is truncated: %zu bytes, at least %d expected", n,
               KMS_BLOB_OVERHEAD);
    KMS_ENSURE(kms_reader_copy(&r, id, sizeof id) == 0 &&
                   kms_reader_be32(&r, &out->key_version) == 0 &&
                   kms_reader_bytes(&r, KMS_BLOB_IV_LEN, &out->iv) == 0,
               KMS_ERR_INVALID_CIPHERTEXT, "the ciphertext is truncated");
    KMS_ENSURE(out->key_version >= 1, KMS_ERR_INVALID_CIPHERTEXT,
               "the ciphertext names key material version 0, which never exists");
    out->header = p;
    out->ciphertext_len = r.left - KMS_BLOB_TAG_LEN;
    KMS_ENSURE(kms_reader_bytes(&r, out->ciphertext_len, &out->ciphertext) == 0 &&
                   kms_reader_bytes(&r, KMS_BLOB_TAG_LEN, &out->tag) == 0 && r.left == 0,
               KMS_ERR_INVALID_CIPHERTEXT, "the ciphertext is malformed");
    kms_uuid_from_bytes(id, out->key_id);
    return 0;
}

int kms_blob_write_header(kms_buf *out, const char *key_id, uint32_t key_version)
{
    uint8_t id[16];
    KMS_ENSURE(kms_uuid_to_bytes(key_id, id) == 0, KMS_ERR_INTERNAL, "bad key id");
    KMS_GUARD(kms_buf_append_u8(out, KMS_BLOB_VERSION));
    KMS_GUARD(kms_buf_append(out, id, sizeof id));
    KMS_GUARD(kms_buf_append_be32(out, key_version));
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const kms_context_entry *x = *(const kms_context_entry *const *)a;
    const kms_context_entry *y = *(const kms_context_entry *const *)b;
    return strcmp(x->key, y->key); /* strcmp orders by unsigned bytes */
}

int kms_blob_context_canonical(const kms_encryption_context *ctx, kms_buf *out)
{
    int r = -1;
    size_t count = ctx ? ctx->count : 0;
    const kms_context_entry **sorted = NULL;
    KMS_ENSURE(count <= UINT16_MAX, KMS_ERR_VALIDATION,
               "the encryption context has too many pairs");
    KMS_GUARD(kms_buf_append_be16(out, (uint16_t)count));
    if (count == 0) {
        return 0;
    }
    sorted = calloc(count, sizeof *sorted);
    KMS_ENSURE(sorted != NULL, KMS_ERR_INTERNAL, "out of memory");
    size_t total = 2;
    for (size_t i = 0; i < count; i++) {
        const kms_context_entry *e = &ctx->entries[i];
        if (e->key == NULL || e->value == NULL || e->key[0] == '\0') {
            kms_raise(KMS_ERR_VALIDATION, "encryption context keys must be non-empty strings");
            goto out;
        }
        size_t kl = strlen(e->key);
        size_t vl = strlen(e->value);
        total += 4 + kl + vl;
        if (kl > UINT16_MAX || vl > UINT16_MAX || total > KMS_MAX_CONTEXT_BYTES) {
            kms_raise(KMS_ERR_VALIDATION, "the encryption context is larger than %d bytes",
                      KMS_MAX_CONTEXT_BYTES);
            goto out;
        }
        sorted[i] = e;
    }
    qsort(sorted, count, sizeof *sorted, entry_cmp);
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
            kms_raise(KMS_ERR_VALIDATION, "the encryption context has the key '%s' twice",
                      sorted[i]->key);
            goto out;
        }
        size_t kl = strlen(sorted[i]->key);
        size_t vl = strlen(sorted[i]->value);
        if (kms_buf_append_be16(out, (uint16_t)kl) != 0 ||
            kms_buf_append(out, sorted[i]->key, kl) != 0 ||
            kms_buf_append_be16(out, (uint16_t)vl) != 0 ||
            kms_buf_append(out, sorted[i]->value, vl) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    free(sorted);
    return r;
}
