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

/* ---- Data key pairs (data_key_pair.c) ---------------------------------------------------------
 * A key pair for use outside the KMS: private_key is PKCS #8 PrivateKeyInfo DER in locked
 * memory (wiped by kms_data_key_pair_clean_up), public_key DER SubjectPublicKeyInfo. */
typedef struct kms_data_key_pair {
    uint8_t *private_key;
    size_t private_key_len;
    uint8_t *public_key;
    size_t public_key_len;
} kms_data_key_pair;

/* Whether spec is a KeyPairSpec this KMS makes (RSA_2048/3072/4096, ECC_NIST_P256/P384/P521,
 * ECC_SECG_P256K1). */
bool kms_keystore_data_key_pair_spec_valid(const char *spec);
/* Makes a key pair of spec; ValidationException for another spec. */
int kms_keystore_data_key_pair(const char *spec, kms_data_key_pair *out)
    __attribute__((warn_unused_result));
void kms_data_key_pair_clean_up(kms_data_key_pair *p);

/* ECDH of a KEY_AGREEMENT key with the peer's public key (DER SubjectPublicKeyInfo, on the
 * key's curve; else ValidationException) in the HSM: *secret (kms_secure_alloc'd) is the raw
 * shared secret. InvalidKeyUsageException for another key. */
int kms_keystore_derive_shared_secret(const kms_keystore *ks, const kms_key_record *rec,
                                      const uint8_t *peer_spki, size_t peer_len, uint8_t **secret,
                                      size_t *secret_len) __attribute__((warn_unused_result));

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

/* Random bytes from the HSM's generator (GenerateRandom, grant tokens). */
int kms_keystore_random(const kms_keystore *ks, uint8_t *buf, size_t n)
    __attribute__((warn_unused_result));

/* ---- Signatures and MACs (sign.c) ------------------------------------------------------------
 * Each verb checks that the key is usable for its usage (kms_keystore_check_usable) and that the
 * algorithm fits the key's spec (InvalidKeyUsageException), then works under the key's current
 * material version. */

/* MessageType "RAW" (NULL) or "DIGEST"; algorithm an AWS SigningAlgorithmSpec. *sig (malloc'd)
 * as AWS KMS returns it. */
int kms_keystore_sign(const kms_keystore *ks, const kms_key_record *rec, const uint8_t *msg,
                      size_t msg_len, const char *message_type, const char *algorithm,
                      uint8_t **sig, size_t *sig_len) __attribute__((warn_unused_result));
/* KMSInvalidSignatureException when sig does not verify. */
int kms_keystore_verify(const kms_keystore *ks, const kms_key_record *rec, const uint8_t *msg,
                        size_t msg_len, const char *message_type, const char *algorithm,
                        const uint8_t *sig, size_t sig_len) __attribute__((warn_unused_result));

#define KMS_MAC_MAX 64
/* HMAC with the key's MacAlgorithm (HMAC_SHA_256, ...); mac has room for KMS_MAC_MAX bytes. */
int kms_keystore_mac_generate(const kms_keystore *ks, const kms_key_record *rec,
                              const char *algorithm, const uint8_t *msg, size_t msg_len,
                              uint8_t mac[KMS_MAC_MAX], size_t *mac_len)
    __attribute__((warn_unused_result));
/* KMSInvalidMacException unless mac is the MAC of msg (compared in constant time). */
int kms_keystore_mac_verify(const kms_keystore *ks, const kms_key_record *rec,
                            const char *algorithm, const uint8_t *msg, size_t msg_len,
                            const uint8_t *mac, size_t mac_len) __attribute__((warn_unused_result));

/* ---- Public keys and RSAES-OAEP (rsa.c) ------------------------------------------------------ */

/* The public half of an asymmetric key (borrowed from rec), once the key is usable.
 * UnsupportedOperationException for a symmetric key. */
int kms_keystore_public_key(const kms_keystore *ks, const kms_key_record *rec, const uint8_t **der,
                            size_t *der_len) __attribute__((warn_unused_result));
/* RSAES-OAEP with the key's public half (an RSA ENCRYPT_DECRYPT key, else
 * InvalidKeyUsageException): appends the raw RSA ciphertext, as AWS KMS returns it, to *ct.
 * ValidationException when pt is too long for the key and algorithm. */
int kms_keystore_rsa_encrypt(const kms_keystore *ks, const kms_key_record *rec,
                             const kms_enc_alg_info *alg, const uint8_t *pt, size_t pt_len,
                             kms_buf *ct) __attribute__((warn_unused_result));
/* Decrypts in the HSM; appends the plaintext to *pt (a secure buffer). Nothing reaches *pt
 * unless the padding checks: InvalidCiphertextException. */
int kms_keystore_rsa_decrypt(const kms_keystore *ks, const kms_key_record *rec,
                             const kms_enc_alg_info *alg, const uint8_t *ct, size_t ct_len,
                             kms_buf *pt) __attribute__((warn_unused_result));

/* ---- Certificate authority keys (ca_keys.c) --------------------------------------------------
 * A CA's private key (src/pki): an HSM key pair labelled "pca:CA_ID", generated like a CMK's of
 * key_spec (ECC_NIST_P256, ECC_NIST_P384, RSA_2048/3072/4096: sensitive, never extractable, sign
 * only) but with no key record, so that no KMS operation reaches it. InvalidArgsException for a
 * spec or algorithm a CA key cannot have. */
void kms_keystore_ca_label(const char *ca_id, char out[KMS_LABEL_MAX]);
/* *spki (malloc'd): the public half as DER SubjectPublicKeyInfo. */
int kms_keystore_ca_key_create(const kms_keystore *ks, const char *ca_id, const char *key_spec,
                               uint8_t **spki, size_t *spki_len)
    __attribute__((warn_unused_result));
/* Signs msg (hashed here) with algorithm, an AWS KMS SigningAlgorithmSpec of the key's family
 * (ECDSA_SHA_256/384 for EC keys, RSASSA_PKCS1_V1_5_SHA_256/384/512 for RSA keys); *sig
 * (malloc'd) as kms_keystore_sign gives it (DER ECDSA-Sig-Value, or the raw RSA signature). */
int kms_keystore_ca_key_sign(const kms_keystore *ks, const char *ca_id, const char *key_spec,
                             const char *algorithm, const uint8_t *msg, size_t msg_len,
                             uint8_t **sig, size_t *sig_len) __attribute__((warn_unused_result));
int kms_keystore_ca_key_destroy(const kms_keystore *ks, const char *ca_id)
    __attribute__((warn_unused_result));
/* What the token says of the CA's private key (evidence for tests). */
int kms_keystore_ca_key_attributes(const kms_keystore *ks, const char *ca_id,
                                   kms_hsm_key_attrs *out) __attribute__((warn_unused_result));

/* ---- Keys of managed certificates (ca_keys.c) ------------------------------------------------
 * The private key of a certificate the manager keeps in the HSM (ACM's RequestCertificate): a
 * pair like a CA's, labelled "acm:KEY_NAME" (the caller names each key, e.g. one per renewal),
 * used only through the TLS helper's handshake signatures. */
void kms_keystore_cert_key_label(const char *key_name, char out[KMS_LABEL_MAX]);
int kms_keystore_cert_key_create(const kms_keystore *ks, const char *key_name, const char *key_spec,
                                 uint8_t **spki, size_t *spki_len)
    __attribute__((warn_unused_result));
/* Signs a digest the caller computed (a TLS handshake's): algorithm is an AWS KMS
 * SigningAlgorithmSpec of the key's family, RSASSA-PSS included (TLS 1.3 signs with it), whose
 * hash made the digest (digest_len must be its size). *sig (malloc'd): DER ECDSA-Sig-Value, or
 * the raw RSA signature. */
int kms_keystore_cert_key_sign_digest(const kms_keystore *ks, const char *key_name,
                                      const char *key_spec, const char *algorithm,
                                      const uint8_t *digest, size_t digest_len, uint8_t **sig,
                                      size_t *sig_len) __attribute__((warn_unused_result));
int kms_keystore_cert_key_destroy(const kms_keystore *ks, const char *key_name)
    __attribute__((warn_unused_result));
int kms_keystore_cert_key_attributes(const kms_keystore *ks, const char *key_name,
                                     kms_hsm_key_attrs *out) __attribute__((warn_unused_result));

/* ---- Key records (records.c) -----------------------------------------------------------------
 * The metadata of keys, as src/store keeps it (see store.h for each call's errors). */
typedef kms_store_key_cb kms_keystore_key_cb;
typedef kms_store_alias_cb kms_keystore_alias_cb;
typedef kms_store_rotation_cb kms_keystore_rotation_cb;
typedef kms_store_due_cb kms_keystore_due_cb;

/* NotFoundException if there is no such key (kms_keystore_resolve also takes ARNs and aliases). */
int kms_keystore_key_get(const kms_keystore *ks, const char *key_id, kms_key_record *out)
    __attribute__((warn_unused_result));
/* When key_id was deleted: NotFoundException if it never was. */
int kms_keystore_deleted_get(const kms_keystore *ks, const char *key_id, int64_t *when)
    __attribute__((warn_unused_result));
int kms_keystore_key_list(const kms_keystore *ks, const char *marker, size_t limit,
                          kms_keystore_key_cb cb, void *arg, bool *truncated)
    __attribute__((warn_unused_result));
int kms_keystore_set_description(const kms_keystore *ks, const char *key_id,
                                 const char *description) __attribute__((warn_unused_result));
int kms_keystore_set_state(const kms_keystore *ks, const char *key_id, const char *state,
                           int64_t deletion_date, int pending_window_days)
    __attribute__((warn_unused_result));
int kms_keystore_cancel_deletion(const kms_keystore *ks, const char *key_id, int64_t now)
    __attribute__((warn_unused_result));
int kms_keystore_policy_get(const kms_keystore *ks, const char *key_id, char **doc,
                            int64_t *version) __attribute__((warn_unused_result));
int kms_keystore_policy_put(const kms_keystore *ks, const char *key_id, const char *doc)
    __attribute__((warn_unused_result));
/* kms_store_key_policy_rewrite: every key policy, rewritten by fn where it says. */
int kms_keystore_policy_rewrite(const kms_keystore *ks, kms_store_policy_rewrite_fn fn, void *arg,
                                size_t *count) __attribute__((warn_unused_result));
int kms_keystore_alias_create(const kms_keystore *ks, const char *alias_name, const char *key_id,
                              int64_t now) __attribute__((warn_unused_result));
int kms_keystore_alias_update(const kms_keystore *ks, const char *alias_name, const char *key_id,
                              int64_t now) __attribute__((warn_unused_result));
int kms_keystore_alias_delete(const kms_keystore *ks, const char *alias_name)
    __attribute__((warn_unused_result));
int kms_keystore_alias_get(const kms_keystore *ks, const char *alias_name, kms_alias_record *out)
    __attribute__((warn_unused_result));
int kms_keystore_alias_list(const kms_keystore *ks, const char *key_id, const char *marker,
                            size_t limit, kms_keystore_alias_cb cb, void *arg, bool *truncated)
    __attribute__((warn_unused_result));
int kms_keystore_rotation_get(const kms_keystore *ks, const char *key_id, kms_key_rotation *out)
    __attribute__((warn_unused_result));
int kms_keystore_rotation_set(const kms_keystore *ks, const char *key_id, int period_days,
                              int64_t next_rotation) __attribute__((warn_unused_result));
int kms_keystore_rotation_list(const kms_keystore *ks, const char *key_id, uint32_t after,
                               size_t limit, kms_keystore_rotation_cb cb, void *arg,
                               bool *truncated) __attribute__((warn_unused_result));
int kms_keystore_due_list(const kms_keystore *ks, int64_t now, int64_t usage_limit,
                          int64_t stale_before, kms_keystore_due_cb cb, void *arg)
    __attribute__((warn_unused_result));
int kms_keystore_next_due(const kms_keystore *ks, int64_t now, int64_t *when)
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

kms_usage *kms_keystore_usage_new(void);
/* Gives back reservations this process did not use (clean shutdown), then frees. */
void kms_keystore_usage_free(kms_usage *u, kms_store *store);
/* Counts one encryption under key_id's version (before it runs). KMSInvalidStateException once
 * the version reached KMS_GCM_INVOCATION_MAX. */
int kms_keystore_usage_count(const kms_keystore *ks, const char *key_id, uint32_t version)
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