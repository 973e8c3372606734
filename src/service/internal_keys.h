/* The service's own keys in the HSM, and the HSM handle they live behind: the key that seals
 * IAM secrets, the key that signs audit digests and the audit trail's rollback anchor. This is
 * the one place in src/service that calls src/hsm; customer keys are reached only through
 * src/keystore. Private to src/service. */
#ifndef KMS_SERVICE_INTERNAL_KEYS_H
#define KMS_SERVICE_INTERNAL_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "hsm/hsm.h"
#include "iam/iam.h"

/* The HSM key that seals IAM secrets (secret access keys, MFA seeds): AES-256 generated in the
 * HSM at init, never extractable. */
#define KMS_SEALER_LABEL "kms-internal:iam-secrets"
/* The HSM key that signs audit digests (ECDSA P-256, non-extractable). */
#define KMS_AUDIT_KEY_LABEL "kms-internal:audit-digest"
/* The key that acknowledges audit records (src/audit/audit.h "A record line"): 32 random bytes
 * in a private CKO_DATA object, readable only with the PIN. The writer keeps a copy in locked
 * memory and computes the HMAC itself: an HSM call per batch (SoftHSM re-checks the key's file
 * at every C_SignInit) cost a quarter of Encrypt's rate. */
#define KMS_AUDIT_ACK_LABEL "kms-internal:audit-ack"
#define KMS_AUDIT_ACK_KEY_LEN 32
/* The audit trail's rollback anchor: a private CKO_DATA object (src/audit/audit.h "The anchor"). */
#define KMS_AUDIT_ANCHOR_LABEL "kms-internal:audit-anchor"
/* The id of the home the token belongs to (config.json "home_id"): a private CKO_DATA object. */
#define KMS_HOME_ID_LABEL "kms-internal:home-id"

/* ---- The HSM handle ------------------------------------------------------------------------- */

/* Opens the token `token_label` of the PKCS#11 module and logs in with pin (borrowed); pool_size
 * 0 means the default; lock_path as kms_hsm_config.open_lock_path. NULL on error. */
kms_hsm *kms_internal_keys_hsm_open(const char *module_path, const char *token_label,
                                    const uint8_t *pin, size_t pin_len, unsigned pool_size,
                                    const char *lock_path) __attribute__((warn_unused_result));
void kms_internal_keys_hsm_close(kms_hsm *hsm);
/* A new token for a new home (kms_hsm_init_token). */
int kms_internal_keys_init_token(const char *module_path, const char *token_label,
                                 const uint8_t *so_pin, size_t so_pin_len, const uint8_t *pin,
                                 size_t pin_len) __attribute__((warn_unused_result));

/* ---- The IAM sealing key -------------------------------------------------------------------- */

int kms_internal_keys_sealer_create(kms_hsm *hsm) __attribute__((warn_unused_result));
/* A sealer over that key: AES-256-GCM with a random IV, the purpose as associated data;
 * ciphertext = IV || ct || tag. */
kms_iam_sealer kms_internal_keys_sealer(kms_hsm *hsm);

/* ---- The audit digest key and anchor -------------------------------------------------------- */

/* Generates the digest key; *spki receives its public half (DER SubjectPublicKeyInfo,
 * malloc'd). */
int kms_internal_keys_audit_key_create(kms_hsm *hsm, uint8_t **spki, size_t *spki_len)
    __attribute__((warn_unused_result));
/* The digest key's public half (malloc'd). NotFoundException if the token holds no such key. */
int kms_internal_keys_audit_public_key(kms_hsm *hsm, uint8_t **spki, size_t *spki_len)
    __attribute__((warn_unused_result));
/* ECDSA P-256 over a SHA-256 digest; *sig (malloc'd) DER-encoded. */
int kms_internal_keys_audit_sign(kms_hsm *hsm, const uint8_t digest[32], uint8_t **sig,
                                 size_t *sig_len) __attribute__((warn_unused_result));
/* Makes the key that acknowledges audit records (random bytes from the HSM) and stores it. */
int kms_internal_keys_audit_ack_create(kms_hsm *hsm) __attribute__((warn_unused_result));
/* Copies that key into key (KMS_AUDIT_ACK_KEY_LEN bytes, the caller's locked memory).
 * NotFoundException if the token holds none; KMSInternalException if it is not 32 bytes. */
int kms_internal_keys_audit_ack_key(kms_hsm *hsm, uint8_t *key) __attribute__((warn_unused_result));
/* The anchor's value: *value malloc'd with a NUL after its *len bytes. NotFoundException when
 * the token holds none yet. */
int kms_internal_keys_anchor_get(kms_hsm *hsm, uint8_t **value, size_t *len)
    __attribute__((warn_unused_result));
int kms_internal_keys_anchor_set(kms_hsm *hsm, const char *text)
    __attribute__((warn_unused_result));

/* ---- The home's identity -------------------------------------------------------------------- */

/* The home id stored in the token (*value malloc'd, NUL after its *len bytes). NotFoundException
 * when the token holds none. */
int kms_internal_keys_home_id_get(kms_hsm *hsm, uint8_t **value, size_t *len)
    __attribute__((warn_unused_result));
int kms_internal_keys_home_id_set(kms_hsm *hsm, const char *home_id)
    __attribute__((warn_unused_result));

#endif
