/* The private keys of certificate authorities (src/pki): HSM key pairs generated like a CMK's
 * (sensitive, never extractable, sign only), labelled "pca:CA_ID". They are no KMS keys: no row
 * in the keys table, so that kms:Sign, ListKeys and the key policies never reach them; src/pki
 * keeps the CA's metadata and calls here for every signature the CA makes. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "keystore/keystore.h"

void kms_keystore_ca_label(const char *ca_id, char out[KMS_LABEL_MAX])
{
    snprintf(out, KMS_LABEL_MAX, "pca:%s", ca_id);
}

/* A KMS key spec that can hold a CA key: the asymmetric signing ones. */
static int ca_spec(const char *key_spec, const kms_key_spec_info **out)
{
    *out = kms_key_spec_find(key_spec);
    KMS_ENSURE(*out != NULL && kms_key_spec_allows_usage(*out, "SIGN_VERIFY") &&
                   (*out)->sig_algorithms[0] != NULL,
               KMS_ERR_INVALID_ARGS, "a CA key cannot be of key spec %s", key_spec);
    return 0;
}

int kms_keystore_ca_key_create(const kms_keystore *ks, const char *ca_id, const char *key_spec,
                               uint8_t **spki, size_t *spki_len)
{
    const kms_key_spec_info *spec = NULL;
    char label[KMS_LABEL_MAX];
    *spki = NULL;
    *spki_len = 0;
    KMS_GUARD(ca_spec(key_spec, &spec));
    kms_keystore_ca_label(ca_id, label);
    return kms_hsm_generate_key(ks->hsm, kms_key_spec_hsm_type(spec, "SIGN_VERIFY"), label, spki,
                                spki_len);
}

int kms_keystore_ca_key_sign(const kms_keystore *ks, const char *ca_id, const char *key_spec,
                             const char *algorithm, const uint8_t *msg, size_t msg_len,
                             uint8_t **sig, size_t *sig_len)
{
    const kms_key_spec_info *spec = NULL;
    const kms_sig_alg_info *alg = kms_sig_alg_find(algorithm);
    const kms_sig_alg_info *first = NULL;
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char label[KMS_LABEL_MAX];
    *sig = NULL;
    *sig_len = 0;
    KMS_GUARD(ca_spec(key_spec, &spec));
    first = kms_sig_alg_find(spec->sig_algorithms[0]);
    /* A CA may pair any of its family's hashes with its key (AWS Private CA lets a P-256 CA sign
     * with SHA384WITHECDSA), so the family is checked, not the KMS key spec's list. PSS is not a
     * Private CA signing algorithm. */
    KMS_ENSURE(alg != NULL && first != NULL && alg->ecdsa == first->ecdsa && !alg->pss,
               KMS_ERR_INVALID_ARGS, "signing algorithm %s does not fit a CA key of spec %s",
               algorithm, key_spec);
    KMS_ENSURE(EVP_Digest(msg, msg_len, digest, &n, EVP_get_digestbyname(alg->digest), NULL) == 1 &&
                   n == alg->digest_len,
               KMS_ERR_INTERNAL, "cannot compute the %s digest", alg->digest);
    kms_keystore_ca_label(ca_id, label);
    return kms_hsm_sign_digest(ks->hsm, label, alg->hsm, digest, n, sig, sig_len);
}

int kms_keystore_ca_key_destroy(const kms_keystore *ks, const char *ca_id)
{
    char label[KMS_LABEL_MAX];
    kms_keystore_ca_label(ca_id, label);
    return kms_hsm_destroy_key(ks->hsm, label);
}

int kms_keystore_ca_key_attributes(const kms_keystore *ks, const char *ca_id,
                                   kms_hsm_key_attrs *out)
{
    char label[KMS_LABEL_MAX];
    kms_keystore_ca_label(ca_id, label);
    return kms_hsm_key_attributes(ks->hsm, label, out);
}
