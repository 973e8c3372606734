/* The key store: customer master keys as HSM objects (material) plus SQLite rows (metadata).
 * It names HSM objects, resolves key references, enforces key states and usages, and seals and
 * opens ciphertext blobs. It knows nothing of callers, policies or audit: the service layer
 * authorises between resolving a key and using it. */
#ifndef KMS_KEYSTORE_KEYSTORE_H
#define KMS_KEYSTORE_KEYSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "hsm/hsm.h"
#include "keystore/blob.h"
#include "keystore/keyspec.h"
#include "kms/kms.h"
#include "store/store.h"
#include "util/buf.h"

#define KMS_ARN_MAX 320
#define KMS_LABEL_MAX 64

typedef struct kms_keystore {
    kms_hsm *hsm;
    kms_store *store;
    const char *region;
    const char *account_id;
} kms_keystore;

/* arn:aws:kms:REGION:ACCOUNT:key/KEY_ID */
void kms_keystore_key_arn(const kms_keystore *ks, const char *key_id, char out[KMS_ARN_MAX]);
/* arn:aws:kms:REGION:ACCOUNT:alias/NAME (alias_name includes "alias/") */
void kms_keystore_alias_arn(const kms_keystore *ks, const char *alias_name, char out[KMS_ARN_MAX]);
/* The HSM label of key material version `version` of key_id: "kms:KEY_ID:vN". */
void kms_keystore_label(const char *key_id, uint32_t version, char out[KMS_LABEL_MAX]);

/* Resolves a key id, key ARN and, if allow_alias, an alias name or alias ARN to its key.
 * NotFoundException for anything that names no key of this KMS. */
int kms_keystore_resolve(const kms_keystore *ks, const char *ref, bool allow_alias,
                         kms_key_record *out) __attribute__((warn_unused_result));

/* May the key be used cryptographically for `usage` now? DisabledException,
 * KMSInvalidStateException (pending deletion), InvalidKeyUsageException. */
int kms_keystore_check_usable(const kms_keystore *ks, const kms_key_record *rec, const char *usage)
    __attribute__((warn_unused_result));

/* Creates a key: material in the HSM first, then its metadata (the key policy document with
 * it, stored as given); if the metadata cannot be written the material is destroyed again.
 * Fills *out. */
int kms_keystore_create(const kms_keystore *ks, const kms_key_spec_info *spec, const char *usage,
                        const char *description, const char *policy, kms_key_record *out)
    __attribute__((warn_unused_result));

/* Encrypts under the key's current material version; appends the blob to *blob. */
int kms_keystore_seal(const kms_keystore *ks, const kms_key_record *rec, const uint8_t *pt,
                      size_t pt_len, const kms_encryption_context *ctx, kms_buf *blob)
    __attribute__((warn_unused_result));

/* Decrypts a parsed blob whose key is rec (the caller checked that they match); appends the
 * plaintext to *pt (a secure buffer). InvalidCiphertextException if anything, context
 * included, does not authenticate. */
int kms_keystore_open(const kms_keystore *ks, const kms_key_record *rec, const kms_blob *blob,
                      const kms_encryption_context *ctx, kms_buf *pt)
    __attribute__((warn_unused_result));

#endif
