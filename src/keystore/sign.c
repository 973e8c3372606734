/* Signatures and MACs under customer keys: Sign and GenerateMac in the HSM, Verify with the
 * key's public half (a public operation: OpenSSL does it), VerifyMac by recomputing the MAC in
 * the HSM and comparing in constant time. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <string.h>

#include "keystore/keystore.h"

/* Checks SigningAlgorithm and MessageType against the key and digests the message. */
static int sign_digest(const kms_keystore *ks, const kms_key_record *rec, const uint8_t *msg,
                       size_t msg_len, const char *message_type, const char *algorithm,
                       const kms_sig_alg_info **alg, uint8_t digest[EVP_MAX_MD_SIZE])
{
    char arn[KMS_ARN_MAX];
    const kms_key_spec_info *spec = kms_key_spec_find(rec->key_spec);
    kms_keystore_key_arn(ks, rec->key_id, arn);
    *alg = kms_sig_alg_find(algorithm);
    KMS_ENSURE(*alg != NULL, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'signingAlgorithm' failed to satisfy "
               "constraint: Member must satisfy enum value set: [RSASSA_PSS_SHA_256, "
               "RSASSA_PSS_SHA_384, RSASSA_PSS_SHA_512, RSASSA_PKCS1_V1_5_SHA_256, "
               "RSASSA_PKCS1_V1_5_SHA_384, RSASSA_PKCS1_V1_5_SHA_512, ECDSA_SHA_256, "
               "ECDSA_SHA_384, ECDSA_SHA_512]",
               algorithm);
    KMS_ENSURE(spec != NULL && kms_key_spec_allows_sig_alg(spec, algorithm),
               KMS_ERR_INVALID_KEY_USAGE,
               "Algorithm %s is incompatible with key spec %s of %s (see its SigningAlgorithms "
               "in `kmsctl describe-key`)",
               algorithm, rec->key_spec, arn);
    const char *type = message_type ? message_type : "RAW";
    if (strcmp(type, "DIGEST") == 0) {
        KMS_ENSURE(msg_len == (*alg)->digest_len, KMS_ERR_VALIDATION,
                   "Digest is invalid length for algorithm %s: %zu bytes, %zu expected", algorithm,
                   msg_len, (*alg)->digest_len);
        memcpy(digest, msg, msg_len);
        return 0;
    }
    KMS_ENSURE(strcmp(type, "RAW") == 0, KMS_ERR_VALIDATION,
               "MessageType must be RAW or DIGEST, not '%s'", type);
    unsigned int n = 0;
    KMS_ENSURE(EVP_Digest(msg, msg_len, digest, &n, EVP_get_digestbyname((*alg)->digest), NULL) ==
                       1 &&
                   n == (*alg)->digest_len,
               KMS_ERR_INTERNAL, "cannot compute the %s digest", (*alg)->digest);
    return 0;
}

int kms_keystore_sign(const kms_keystore *ks, const kms_key_record *rec, const uint8_t *msg,
                      size_t msg_len, const char *message_type, const char *algorithm,
                      uint8_t **sig, size_t *sig_len)
{
    const kms_sig_alg_info *alg = NULL;
    uint8_t digest[EVP_MAX_MD_SIZE];
    char label[KMS_LABEL_MAX];
    *sig = NULL;
    *sig_len = 0;
    KMS_GUARD(kms_keystore_check_usable(ks, rec, "SIGN_VERIFY"));
    KMS_GUARD(sign_digest(ks, rec, msg, msg_len, message_type, algorithm, &alg, digest));
    kms_keystore_label(rec->key_id, rec->current_version, label);
    return kms_hsm_sign_digest(ks->hsm, label, alg->hsm, digest, alg->digest_len, sig, sig_len);
}

/* Verifies sig over digest with the key's public half. */
static int verify_with_public_key(const kms_key_record *rec, const kms_sig_alg_info *alg,
                                  const uint8_t *digest, const uint8_t *sig, size_t sig_len)
{
    int r = -1;
    const uint8_t *p = rec->public_key;
    EVP_PKEY *pkey = p != NULL ? d2i_PUBKEY(NULL, &p, (long)rec->public_key_len) : NULL;
    EVP_PKEY_CTX *pctx = pkey ? EVP_PKEY_CTX_new(pkey, NULL) : NULL;
    const EVP_MD *md = EVP_get_digestbyname(alg->digest);
    if (pctx == NULL || md == NULL || EVP_PKEY_verify_init(pctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(pctx, md) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot load the public key of %s", rec->key_id);
        goto out;
    }
    if (!alg->ecdsa &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, alg->pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) !=
             1 ||
         (alg->pss && (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, (int)alg->digest_len) != 1 ||
                       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1)))) {
        kms_raise(KMS_ERR_INTERNAL, "cannot set up RSA verification");
        goto out;
    }
    if (EVP_PKEY_verify(pctx, sig, sig_len, digest, alg->digest_len) != 1) {
        kms_raise(KMS_ERR_INVALID_SIGNATURE,
                  "the signature does not verify with %s and %s over this message", rec->key_id,
                  alg->name);
        goto out;
    }
    r = 0;
out:
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(pkey);
    return r;
}

int kms_keystore_verify(const kms_keystore *ks, const kms_key_record *rec, const uint8_t *msg,
                        size_t msg_len, const char *message_type, const char *algorithm,
                        const uint8_t *sig, size_t sig_len)
{
    const kms_sig_alg_info *alg = NULL;
    uint8_t digest[EVP_MAX_MD_SIZE];
    KMS_GUARD(kms_keystore_check_usable(ks, rec, "SIGN_VERIFY"));
    KMS_GUARD(sign_digest(ks, rec, msg, msg_len, message_type, algorithm, &alg, digest));
    return verify_with_public_key(rec, alg, digest, sig, sig_len);
}

/* ---- MACs ------------------------------------------------------------------------------------ */

/* HMAC of msg under the key's current version, once the key and algorithm fit together. */
static int hmac(const kms_keystore *ks, const kms_key_record *rec, const char *algorithm,
                const uint8_t *msg, size_t msg_len, uint8_t mac[KMS_MAC_MAX], size_t *mac_len)
{
    char arn[KMS_ARN_MAX];
    char label[KMS_LABEL_MAX];
    const kms_key_spec_info *spec = kms_key_spec_find(rec->key_spec);
    *mac_len = 0;
    KMS_GUARD(kms_keystore_check_usable(ks, rec, "GENERATE_VERIFY_MAC"));
    kms_keystore_key_arn(ks, rec->key_id, arn);
    KMS_ENSURE(
        spec != NULL && spec->mac_algorithm != NULL && strcmp(spec->mac_algorithm, algorithm) == 0,
        KMS_ERR_INVALID_KEY_USAGE, "MacAlgorithm %s is not valid for %s (a %s key: use %s)",
        algorithm, arn, rec->key_spec, spec && spec->mac_algorithm ? spec->mac_algorithm : "none");
    kms_keystore_label(rec->key_id, rec->current_version, label);
    return kms_hsm_hmac(ks->hsm, label, spec->hsm, msg, msg_len, mac, mac_len);
}

int kms_keystore_mac_generate(const kms_keystore *ks, const kms_key_record *rec,
                              const char *algorithm, const uint8_t *msg, size_t msg_len,
                              uint8_t mac[KMS_MAC_MAX], size_t *mac_len)
{
    int r = hmac(ks, rec, algorithm, msg, msg_len, mac, mac_len);
    if (r != 0) {
        sodium_memzero(mac, KMS_MAC_MAX);
        *mac_len = 0;
    }
    return r;
}

int kms_keystore_mac_verify(const kms_keystore *ks, const kms_key_record *rec,
                            const char *algorithm, const uint8_t *msg, size_t msg_len,
                            const uint8_t *expected, size_t expected_len)
{
    int r = -1;
    uint8_t mac[KMS_MAC_MAX];
    size_t mac_len = 0;
    char arn[KMS_ARN_MAX];
    if (hmac(ks, rec, algorithm, msg, msg_len, mac, &mac_len) != 0) {
        goto out;
    }
    if (expected_len != mac_len || CRYPTO_memcmp(expected, mac, mac_len) != 0) {
        kms_keystore_key_arn(ks, rec->key_id, arn);
        kms_raise(KMS_ERR_INVALID_MAC, "the MAC does not verify with %s over this message", arn);
        goto out;
    }
    r = 0;
out:
    sodium_memzero(mac, sizeof mac);
    return r;
}
