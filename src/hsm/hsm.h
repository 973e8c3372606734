/* PKCS#11 access to the HSM that holds the CMK material (SoftHSM2 here, any PKCS#11 HSM in
 * production). This module knows PKCS#11 and nothing of policies, accounts or audit.
 *
 * Key material is generated inside the token and never leaves it: secret and private objects are
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true and CKA_EXTRACTABLE false. Each object carries the
 * caller's label as CKA_LABEL and CKA_ID, so one label names one key material version.
 *
 * A kms_hsm is thread-safe: it keeps a pool of logged-in sessions; each call borrows one. */
#ifndef KMS_HSM_HSM_H
#define KMS_HSM_HSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct kms_hsm kms_hsm;

typedef struct kms_hsm_config {
    const char *module_path; /* e.g. /usr/lib/softhsm/libsofthsm2.so */
    const char *token_label; /* the token to use */
    const uint8_t *pin;      /* borrowed; the caller wipes it */
    size_t pin_len;
    /* Sessions the pool may open (one at open, more as concurrent callers need them); 0 means
     * 8. A caller beyond that many at once waits for a session. */
    unsigned pool_size;
    /* A file every process opening this token holds an exclusive flock on from C_Initialize
     * through C_Login, or NULL for none. SoftHSM2 rewrites its token file at every successful
     * login without keeping other processes' readers out, so a process opening the token while
     * another logs in can read it torn: C_Login then fails (CKR_GENERAL_ERROR,
     * CKR_USER_PIN_NOT_INITIALIZED) or the token looks absent. */
    const char *open_lock_path;
} kms_hsm_config;

/* Loads the module (dlopen), C_Initialize with CKF_OS_LOCKING_OK, finds the token by label,
 * logs in as CKU_USER and opens the session pool. Errors (KMS_ERR_HSM) name the problem: module
 * not loadable, no token with that label, PIN refused. */
kms_hsm *kms_hsm_open(const kms_hsm_config *cfg) __attribute__((warn_unused_result));
void kms_hsm_close(kms_hsm *hsm);
/* The session pool now, for a server's metrics: sessions open, borrowed by an operation, the
 * most the pool may open, and the nanoseconds borrowers have waited for a session in all.
 * Thread-safe. */
void kms_hsm_pool_stats(kms_hsm *hsm, size_t *open, size_t *in_use, size_t *max, uint64_t *wait_ns);

/* Initialises a new token on the first free slot of the module (C_InitToken with so_pin and
 * token_label, then C_InitPIN with pin), so that no PIN ever appears on a command line. For
 * SoftHSM2 the caller points SOFTHSM2_CONF at the KMS home's config first (hsm/create-token.sh
 * writes it). AlreadyExistsException if a token with that label exists. */
int kms_hsm_init_token(const char *module_path, const char *token_label, const uint8_t *so_pin,
                       size_t so_pin_len, const uint8_t *pin, size_t pin_len)
    __attribute__((warn_unused_result));

typedef enum kms_hsm_key_type {
    KMS_HSM_AES_256,
    KMS_HSM_HMAC_224,
    KMS_HSM_HMAC_256,
    KMS_HSM_HMAC_384,
    KMS_HSM_HMAC_512,
    KMS_HSM_RSA_2048,
    KMS_HSM_RSA_3072,
    KMS_HSM_RSA_4096,
    KMS_HSM_EC_P256,
    KMS_HSM_EC_P384,
    KMS_HSM_EC_P521,
    KMS_HSM_RSA_2048_DECRYPT,
    KMS_HSM_RSA_3072_DECRYPT,
    KMS_HSM_RSA_4096_DECRYPT,
    KMS_HSM_EC_SECP256K1, /* secp256k1 (SEC 2), signing */
    /* EC keys for key agreement: the private key derives (ECDH), never signs. */
    KMS_HSM_EC_P256_DERIVE,
    KMS_HSM_EC_P384_DERIVE,
    KMS_HSM_EC_P521_DERIVE,
} kms_hsm_key_type;

/* Generates a key of `type` labelled `label` inside the token. Least privilege: a private key
 * of KMS_HSM_RSA_NNNN or KMS_HSM_EC_* signs only (CKA_SIGN true, CKA_DECRYPT false); one of
 * KMS_HSM_RSA_NNNN_DECRYPT decrypts only (CKA_DECRYPT true, CKA_SIGN false). For RSA and EC
 * keys *spki receives the public key as DER SubjectPublicKeyInfo (malloc'd), else *spki is NULL.
 * spki may be NULL for symmetric types. AlreadyExistsException if objects with the label exist. */
int kms_hsm_generate_key(kms_hsm *hsm, kms_hsm_key_type type, const char *label, uint8_t **spki,
                         size_t *spki_len) __attribute__((warn_unused_result));

/* The public key of the pair labelled `label` (generated as `type`), as DER
 * SubjectPublicKeyInfo (malloc'd). NotFoundException if the token holds no public key object
 * with that label. */
int kms_hsm_public_key(kms_hsm *hsm, kms_hsm_key_type type, const char *label, uint8_t **spki,
                       size_t *spki_len) __attribute__((warn_unused_result));

/* Destroys every object labelled `label`. NotFoundException if there is none. */
int kms_hsm_destroy_key(kms_hsm *hsm, const char *label) __attribute__((warn_unused_result));

#define KMS_HSM_GCM_IV_LEN 12
#define KMS_HSM_GCM_TAG_LEN 16

/* AES-256-GCM under the secret key `label`, 96-bit IV from the caller, 128-bit tag.
 * ct has room for pt_len bytes. */
int kms_hsm_aes_gcm_encrypt(kms_hsm *hsm, const char *label, const uint8_t iv[KMS_HSM_GCM_IV_LEN],
                            const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                            uint8_t *ct, uint8_t tag[KMS_HSM_GCM_TAG_LEN])
    __attribute__((warn_unused_result));
/* pt has room for ct_len bytes. A tag that does not verify gives InvalidCiphertextException and
 * writes nothing to pt. */
int kms_hsm_aes_gcm_decrypt(kms_hsm *hsm, const char *label, const uint8_t iv[KMS_HSM_GCM_IV_LEN],
                            const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                            const uint8_t tag[KMS_HSM_GCM_TAG_LEN], uint8_t *pt)
    __attribute__((warn_unused_result));

/* RSAES-OAEP decryption (RFC 8017 7.1.2, empty label) with the private key `label` of a
 * KMS_HSM_RSA_*_DECRYPT type: SHA-1 or SHA-256 for both the hash and MGF1, as AWS KMS's
 * RSAES_OAEP_SHA_1 and RSAES_OAEP_SHA_256. pt has room for ct_len bytes; *pt_len receives the
 * plaintext length. A ciphertext that does not decrypt gives InvalidCiphertextException and
 * writes nothing to pt. Uses CKM_RSA_PKCS_OAEP; a module that refuses the OAEP parameters
 * (SoftHSM 2.6 knows SHA-1 only) decrypts with CKM_RSA_X_509 and the padding is checked here,
 * in constant time. */
int kms_hsm_rsa_oaep_decrypt(kms_hsm *hsm, const char *label, bool sha256, const uint8_t *ct,
                             size_t ct_len, uint8_t *pt, size_t *pt_len)
    __attribute__((warn_unused_result));

typedef enum kms_hsm_sig_alg {
    KMS_HSM_RSA_PSS_SHA256,
    KMS_HSM_RSA_PSS_SHA384,
    KMS_HSM_RSA_PSS_SHA512,
    KMS_HSM_RSA_PKCS1_SHA256,
    KMS_HSM_RSA_PKCS1_SHA384,
    KMS_HSM_RSA_PKCS1_SHA512,
    KMS_HSM_ECDSA_SHA256,
    KMS_HSM_ECDSA_SHA384,
    KMS_HSM_ECDSA_SHA512,
} kms_hsm_sig_alg;

/* Signs a message digest (the caller hashes RAW messages first) with the private key `label`.
 * PSS uses MGF1 with the same hash and a salt as long as the digest (as AWS KMS does); PKCS#1
 * v1.5 wraps the digest in its DigestInfo. *sig (malloc'd) is the raw RSA signature, or for
 * ECDSA the DER-encoded ECDSA-Sig-Value (converted from PKCS#11's r||s), as AWS KMS returns. */
int kms_hsm_sign_digest(kms_hsm *hsm, const char *label, kms_hsm_sig_alg alg, const uint8_t *digest,
                        size_t digest_len, uint8_t **sig, size_t *sig_len)
    __attribute__((warn_unused_result));

/* HMAC of msg with the generic secret `label`; `type` (KMS_HSM_HMAC_*) picks the hash.
 * mac has room for 64 bytes; *mac_len receives the length. */
/* The OpenSSL group name of an EC key type ("prime256v1", "secp384r1", ...), NULL for others. */
const char *kms_hsm_key_group(kms_hsm_key_type type);
/* ECDH (PKCS #11 CKM_ECDH1_DERIVE, no KDF) of the private key labelled `label` (a *_DERIVE
 * type) with the peer's public point (uncompressed, 04||X||Y, on the key's curve): the shared
 * secret, the X coordinate (SEC 1 3.3.1), into *secret (kms_secure_alloc'd, field length).
 * The HSM makes it as a session object it lets go of once read, and destroys. */
int kms_hsm_ecdh_derive(kms_hsm *hsm, const char *label, kms_hsm_key_type type,
                        const uint8_t *peer_point, size_t peer_len, uint8_t **secret,
                        size_t *secret_len) __attribute__((warn_unused_result));
int kms_hsm_hmac(kms_hsm *hsm, const char *label, kms_hsm_key_type type, const uint8_t *msg,
                 size_t msg_len, uint8_t mac[64], size_t *mac_len)
    __attribute__((warn_unused_result));

/* Random bytes from the token's generator (C_GenerateRandom). */
int kms_hsm_random(kms_hsm *hsm, uint8_t *buf, size_t n) __attribute__((warn_unused_result));

/* What the token says of the secret or private object `label`: evidence for tests and audits
 * that the material is sensitive and cannot be extracted. */
typedef struct kms_hsm_key_attrs {
    bool token;
    bool sensitive;
    bool extractable;
    bool always_sensitive;
    bool never_extractable;
} kms_hsm_key_attrs;
int kms_hsm_key_attributes(kms_hsm *hsm, const char *label, kms_hsm_key_attrs *out)
    __attribute__((warn_unused_result));

/* ---- Data objects ----------------------------------------------------------------------------
 * Small values that are not secret but that only a holder of the PIN may change (the audit
 * trail's rollback anchor): one CKO_DATA object per label, CKA_TOKEN and CKA_PRIVATE true (so
 * reading or changing it needs the login), CKA_MODIFIABLE true, CKA_APPLICATION "kms",
 * CKA_LABEL `label`. Objects of other classes with the same label are not looked at. */

/* The value of the data object `label`: *value malloc'd (*len bytes, and a NUL after them that
 * *len does not count), the caller frees it. NotFoundException if the token holds no data object
 * with that label; KMS_ERR_HSM if it holds more than one (an update was interrupted, see
 * kms_hsm_data_set: a person removes the stale one). */
int kms_hsm_data_get(kms_hsm *hsm, const char *label, uint8_t **value, size_t *len)
    __attribute__((warn_unused_result));
/* Sets the data object `label` to value[0..len): creates it if the token has none, else changes
 * its CKA_VALUE with C_SetAttributeValue. A module that refuses to change a value in place
 * (SoftHSM2 does: PKCS#11 does not say a data object's CKA_VALUE is modifiable) gets a new object
 * with the new value first and the old one destroyed after, so that a crash in between never
 * leaves the label without a value (kms_hsm_data_get then reports two). Serialised with
 * kms_hsm_data_get in this handle; callers in several processes serialise among themselves (the
 * audit trail sets and reads its anchor under its LOCK). */
int kms_hsm_data_set(kms_hsm *hsm, const char *label, const uint8_t *value, size_t len)
    __attribute__((warn_unused_result));

#endif
