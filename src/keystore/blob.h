/* The KMS ciphertext blob of Encrypt / GenerateDataKey / ReEncrypt (design.md "Formats"):
 *
 *   offset  size  field
 *   0       1     format version, 0x01
 *   1       16    key id (UUID, raw bytes)
 *   17      4     key material version (big-endian, from 1)
 *   21      12    AES-GCM IV
 *   33      n     ciphertext
 *   33+n    16    AES-GCM tag
 *
 * The AAD of the AES-GCM operation is the 21-byte header followed by the canonical form of the
 * encryption context, so both the header and the context are authenticated. */
#ifndef KMS_KEYSTORE_BLOB_H
#define KMS_KEYSTORE_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "kms/kms.h"
#include "util/buf.h"

#define KMS_BLOB_VERSION 0x01
#define KMS_BLOB_HEADER_LEN 21
#define KMS_BLOB_IV_LEN 12
#define KMS_BLOB_TAG_LEN 16
#define KMS_BLOB_OVERHEAD (KMS_BLOB_HEADER_LEN + KMS_BLOB_IV_LEN + KMS_BLOB_TAG_LEN)
/* AWS KMS: Encrypt takes up to 4096 bytes; a CiphertextBlob is at most 6144 bytes. */
#define KMS_MAX_PLAINTEXT 4096
#define KMS_MAX_BLOB 6144
/* The canonical context is bounded so that AAD stays small; AWS does not publish a limit. */
#define KMS_MAX_CONTEXT_BYTES 8192

/* A parsed blob: pointers borrow from the input buffer. */
typedef struct kms_blob {
    char key_id[37];
    uint32_t key_version;
    const uint8_t *header; /* KMS_BLOB_HEADER_LEN bytes */
    const uint8_t *iv;
    const uint8_t *ciphertext;
    size_t ciphertext_len;
    const uint8_t *tag;
} kms_blob;

/* InvalidCiphertextException naming what is wrong (too short, unknown version, ...). */
int kms_blob_parse(const uint8_t *p, size_t n, kms_blob *out) __attribute__((warn_unused_result));

/* Appends the header (version, key id, key version) to out. */
int kms_blob_write_header(kms_buf *out, const char *key_id, uint32_t key_version)
    __attribute__((warn_unused_result));

/* Checks an encryption context (non-empty keys, unique keys, bounded size): ValidationException.
 * Appends its canonical form to out: be16 count, then for each entry in ascending byte order of
 * the key: be16 key length, key, be16 value length, value (the AWS Encryption SDK's
 * serialisation of an encryption context). */
int kms_blob_context_canonical(const kms_encryption_context *ctx, kms_buf *out)
    __attribute__((warn_unused_result));

#endif
