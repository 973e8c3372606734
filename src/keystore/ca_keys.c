/* The private keys of the certificate manager (src/pki): those of certificate authorities,
 * labelled "pca:CA_ID", and those of managed certificates held in the HSM, labelled
 * "acm:KEY_NAME". Both are HSM key pairs generated like a CMK's (sensitive, never extractable,
 * sign only) but no KMS keys: no row in the keys table, so that kms:Sign, ListKeys and the key
 * policies never reach them; src/pki keeps their metadata and calls here for every signature. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "keystore/keystore.h"

void kms_keystore_ca_label(const char *ca_id, char out[KMS_LABEL_MAX])
{
    snprintf(out, KMS_LABEL_MAX, "pca:%s", ca_id);
}

void kms_keystore_cert_key_label(const char *key_name, char out[KMS_LABEL_MAX])
{
    snprintf(out, KMS_LABEL_MAX, "acm:%s", key_name);
}

/* A KMS key spec that can hold a CA's or a certificate's key: the asymmetric signing ones. */
static int pair_spec(const char *key_spec, const kms_key_spec_info **out)
{
    *out = kms_key_spec_find(key_spec);
    KMS_ENSURE(*out != NULL && kms_key_spec_allows_usage(*out, "SIGN_VERIFY") &&
                   (*out)->sig_algorithms[0] != NULL,
               KMS_ERR_INVALID_ARGS, "a certificate's key cannot be of key spec %s", key_spec);
    return 0;
}

static int pair_create(const kms_keystore *ks, const char *label, const char *key_spec,
                       uint8_t **spki, size_t *spki_len)
{
    const kms_key_spec_info *spec = NULL;
    *spki = NULL;
    *spki_len = 0;
    KMS_GUARD(pair_spec(key_spec, &spec));
    return kms_hsm_generate_key(ks->hsm, kms_key_spec_hsm_type(spec, "SIGN_VERIFY"), label, spki,
                                spki_len);
}

/* The algorithm, if it is of the key's family (ECDSA for EC keys, RSA for RSA keys): a key may
 * pair any of its family's hashes with it, as X.509 and TLS 1.2 let it (a P-256 key signing
 * with SHA-384); pss says whether RSASSA-PSS is allowed. */
static int family_alg(const char *key_spec, const char *algorithm, bool pss,
                      const kms_sig_alg_info **out)
{
    const kms_key_spec_info *spec = NULL;
    const kms_sig_alg_info *alg = kms_sig_alg_find(algorithm);
    const kms_sig_alg_info *first = NULL;
    *out = NULL;
    KMS_GUARD(pair_spec(key_spec, &spec));
    first = kms_sig_alg_find(spec->sig_algorithms[0]);
    KMS_ENSURE(alg != NULL && first != NULL && alg->ecdsa == first->ecdsa && (pss || !alg->pss),
               KMS_ERR_INVALID_ARGS, "signing algorithm %s does not fit a key of spec %s",
               algorithm, key_spec);
    *out = alg;
    return 0;
}

int kms_keystore_ca_key_create(const kms_keystore *ks, const char *ca_id, const char *key_spec,
                               uint8_t **spki, size_t *spki_len)
{
    char label[KMS_LABEL_MAX];
    kms_keystore_ca_label(ca_id, label);
    return pair_create(ks, label, key_spec, spki, spki_len);
}

int kms_keystore_ca_key_sign(const kms_keystore *ks, const char *ca_id, const char *key_spec,
                             const char *algorithm, const uint8_t *msg, size_t msg_len,
                             uint8_t **sig, size_t *sig_len)
{
    const kms_sig_alg_info *alg = NULL;
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char label[KMS_LABEL_MAX];
    *sig = NULL;
    *sig_len = 0;
    /* AWS Private CA lets a P-256 CA sign with SHA384WITHECDSA; PSS is not one of its signing
     * algorithms. */
    KMS_GUARD(family_alg(key_spec, algorithm, false, &alg));
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

/* ---- Keys of managed certificates ------------------------------------------------------------*/

int kms_keystore_cert_key_create(const kms_keystore *ks, const char *key_name, const char *key_spec,
                                 uint8_t **spki, size_t *spki_len)
{
    char label[KMS_LABEL_MAX];
    kms_keystore_cert_key_label(key_name, label);
    return pair_create(ks, label, key_spec, spki, spki_len);
}

int kms_keystore_cert_key_sign_digest(const kms_keystore *ks, const char *key_name,
                                      const char *key_spec, const char *algorithm,
                                      const uint8_t *digest, size_t digest_len, uint8_t **sig,
                                      size_t *sig_len)
{
    const kms_sig_alg_info *alg = NULL;
    char label[KMS_LABEL_MAX];
    *sig = NULL;
    *sig_len = 0;
    KMS_GUARD(family_alg(key_spec, algorithm, true, &alg));
    KMS_ENSURE(digest_len == alg->digest_len, KMS_ERR_INVALID_ARGS,
               "a %s digest has %zu bytes, not %zu", alg->digest, alg->digest_len, digest_len);
    kms_keystore_cert_key_label(key_name, label);
    return kms_hsm_sign_digest(ks->hsm, label, alg->hsm, digest, digest_len, sig, sig_len);
}

int kms_keystore_cert_key_destroy(const kms_keystore *ks, const char *key_name)
{
    char label[KMS_LABEL_MAX];
    kms_keystore_cert_key_label(key_name, label);
    return kms_hsm_destroy_key(ks->hsm, label);
}

int kms_keystore_cert_key_attributes(const kms_keystore *ks, const char *key_name,
                                     kms_hsm_key_attrs *out)
{
    char label[KMS_LABEL_MAX];
    kms_keystore_cert_key_label(key_name, label);
    return kms_hsm_key_attributes(ks->hsm, label, out);
}
