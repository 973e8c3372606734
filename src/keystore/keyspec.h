/* The key specs, usages and algorithms of AWS KMS that this key store supports, as one table. */
#ifndef KMS_KEYSTORE_KEYSPEC_H
#define KMS_KEYSTORE_KEYSPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "hsm/hsm.h"

typedef struct kms_sig_alg_info {
    const char *name; /* AWS SigningAlgorithmSpec */
    kms_hsm_sig_alg hsm;
    const char *digest; /* OpenSSL digest name */
    size_t digest_len;
    bool pss;
    bool ecdsa;
} kms_sig_alg_info;

/* AWS EncryptionAlgorithmSpec of asymmetric keys: RSAES-OAEP, MGF1 with the same hash. */
typedef struct kms_enc_alg_info {
    const char *name;
    bool sha256;        /* else SHA-1 */
    const char *digest; /* OpenSSL digest name */
    size_t digest_len;
} kms_enc_alg_info;

typedef struct kms_key_spec_info {
    const char *name;             /* AWS KeySpec */
    kms_hsm_key_type hsm;         /* the HSM key type; see kms_key_spec_hsm_type */
    kms_hsm_key_type hsm_decrypt; /* RSA with KeyUsage ENCRYPT_DECRYPT: a decrypt-only key */
    const char *default_usage;    /* NULL: KeyUsage must be given */
    const char *usages[3];        /* allowed KeyUsage values */
    const char *mac_algorithm;    /* HMAC keys */
    const char *sig_algorithms[7];
    const char *enc_algorithms[3]; /* with KeyUsage ENCRYPT_DECRYPT */
} kms_key_spec_info;

const kms_key_spec_info *kms_key_spec_find(const char *name);
/* The KeySpec names, NULL-terminated. */
const char *const *kms_key_spec_names(void);
const kms_sig_alg_info *kms_sig_alg_find(const char *name);
bool kms_key_spec_allows_usage(const kms_key_spec_info *spec, const char *usage);
bool kms_key_spec_allows_sig_alg(const kms_key_spec_info *spec, const char *alg);
bool kms_key_spec_allows_enc_alg(const kms_key_spec_info *spec, const char *alg);
/* The HSM key type for a key of spec with `usage` (an RSA key decrypts or signs, never both). */
kms_hsm_key_type kms_key_spec_hsm_type(const kms_key_spec_info *spec, const char *usage);
/* Whether keys of spec with `usage` encrypt with RSAES-OAEP (asymmetric ENCRYPT_DECRYPT). */
bool kms_key_spec_is_rsa_encryption(const kms_key_spec_info *spec, const char *usage);
/* An ECC_NIST_* key with KeyUsage KEY_AGREEMENT (ECDH). */
bool kms_key_spec_is_key_agreement(const kms_key_spec_info *spec, const char *usage);
const kms_enc_alg_info *kms_enc_alg_find(const char *name);

#endif
