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

/* Per-process counts of encryptions per key version (rotation.c). */
typedef struct kms_usage kms_usage;

typedef struct kms_keystore {
    kms_hsm *hsm;
    kms_store *store;
    const char *region;
    const char *account_id;
    kms_usage *usage; /* NULL: encryptions are not counted */
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

/* ---- Rotation, usage and deletion (rotation.c) --------------------------------------------
 * Rotation adds material version current_version + 1 in the HSM; the key id, ARN, aliases and
 * policy stay. New encryptions use the newest version; blobs name their version, so every older
 * one keeps decrypting until the key is deleted. */

/* NIST SP 800-38D 8.3: invocations of AES-GCM with random 96-bit IVs under one key. */
#define KMS_GCM_INVOCATION_MAX (INT64_C(1) << 32)
/* Usage-based rotation: a version that counted this many encryptions is rotated by the
 * scheduler (config.json "rotation_usage_limit" sets another). */
#define KMS_ROTATION_USAGE_LIMIT (INT64_C(1) << 30)
/* A rotation claim older than this is taken to belong to a crashed process. */
#define KMS_ROTATION_STALE_SECONDS 600

kms_usage *kms_usage_new(void);
/* Gives back reservations this process did not use (clean shutdown), then frees. */
void kms_usage_free(kms_usage *u, kms_store *store);
/* Counts one encryption under key_id's version (before it runs). KMSInvalidStateException once
 * the version reached KMS_GCM_INVOCATION_MAX. */
int kms_usage_count(const kms_keystore *ks, const char *key_id, uint32_t version)
    __attribute__((warn_unused_result));

/* UnsupportedOperationException unless the key is a symmetric encryption key from AWS_KMS. */
int kms_keystore_check_rotatable(const kms_keystore *ks, const kms_key_record *rec)
    __attribute__((warn_unused_result));
/* Rotates key_id to cl->version: claims it (store.h), generates the material (destroying what a
 * crashed claimant left under the label first), commits. 0: rotated; 1: the claim was not won
 * (not due, not Enabled, another rotation under way or done, the on-demand limit); -1: error,
 * the claim given up. */
int kms_keystore_rotate(const kms_keystore *ks, const char *key_id, const kms_rotation_claim *cl)
    __attribute__((warn_unused_result));
/* The end of a deletion window: every material version destroyed in the HSM, then the metadata
 * (kms_store_key_delete). KMSInvalidStateException unless PendingDeletion and due at now. */
int kms_keystore_destroy(const kms_keystore *ks, const char *key_id, int64_t now)
    __attribute__((warn_unused_result));
/* Raises NotFoundException for a key id the store does not hold, saying when it was deleted if
 * it was. Returns -1. */
int kms_keystore_missing(const kms_keystore *ks, const char *key_id);

#endif