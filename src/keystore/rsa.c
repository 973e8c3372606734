/* Asymmetric keys' public halves and RSAES-OAEP (RFC 8017 7.1) under ENCRYPT_DECRYPT RSA keys:
 * encryption with the public half (a public operation: OpenSSL does it, no HSM), decryption in
 * the HSM. */
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <string.h>

#include "keystore/keystore.h"

int kms_keystore_public_key(const kms_keystore *ks, const kms_key_record *rec, const uint8_t **der,
                            size_t *der_len)
{
    char arn[KMS_ARN_MAX];
    *der = NULL;
    *der_len = 0;
    kms_keystore_key_arn(ks, rec->key_id, arn);
    KMS_ENSURE(rec->public_key != NULL, KMS_ERR_UNSUPPORTED_OPERATION,
               "%s is a %s key, which has no public key (only asymmetric keys do)", arn,
               rec->key_spec);
    KMS_GUARD(kms_keystore_check_usable(ks, rec, rec->key_usage));
    *der = rec->public_key;
    *der_len = rec->public_key_len;
    return 0;
}

/* The key may encrypt with RSAES-OAEP now. */
static int check_rsa_usable(const kms_keystore *ks, const kms_key_record *rec, char *arn)
{
    KMS_GUARD(kms_keystore_check_usable(ks, rec, "ENCRYPT_DECRYPT"));
    kms_keystore_key_arn(ks, rec->key_id, arn);
    KMS_ENSURE(kms_key_spec_is_rsa_encryption(kms_key_spec_find(rec->key_spec), rec->key_usage),
               KMS_ERR_INVALID_KEY_USAGE, "%s is a %s key, which does not encrypt with RSAES-OAEP",
               arn, rec->key_spec);
    return 0;
}

static EVP_PKEY *public_key_of(const kms_key_record *rec)
{
    const uint8_t *p = rec->public_key;
    EVP_PKEY *pkey = p != NULL ? d2i_PUBKEY(NULL, &p, (long)rec->public_key_len) : NULL;
    if (pkey == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot load the public key of %s", rec->key_id);
    }
    return pkey;
}

int kms_keystore_rsa_encrypt(const kms_keystore *ks, const kms_key_record *rec,
                             const kms_enc_alg_info *alg, const uint8_t *pt, size_t pt_len,
                             kms_buf *ct)
{
    int r = -1;
    size_t n = 0;
    char arn[KMS_ARN_MAX];
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = EVP_get_digestbyname(alg->digest);
    KMS_GUARD(check_rsa_usable(ks, rec, arn));
    if ((pkey = public_key_of(rec)) == NULL) {
        goto out;
    }
    pctx = EVP_PKEY_CTX_new(pkey, NULL);
    /* RFC 8017 7.1.1: mLen <= k - 2hLen - 2 (RSA_2048: 214 bytes with SHA-1, 190 with SHA-256) */
    size_t k = (size_t)EVP_PKEY_get_size(pkey);
    size_t max = k > 2 * alg->digest_len + 2 ? k - 2 * alg->digest_len - 2 : 0;
    if (pt_len > max) {
        kms_raise(KMS_ERR_VALIDATION,
                  "Plaintext is %zu bytes; %s with %s (%s) encrypts at most %zu bytes", pt_len,
                  alg->name, arn, rec->key_spec, max);
        goto out;
    }
    if (pctx == NULL || md == NULL || EVP_PKEY_encrypt_init(pctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(pctx, md) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
        EVP_PKEY_encrypt(pctx, NULL, &n, pt, pt_len) != 1 || kms_buf_reserve(ct, n) != 0 ||
        EVP_PKEY_encrypt(pctx, ct->data + ct->len, &n, pt, pt_len) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot encrypt with %s and the public key of %s", alg->name,
                  arn);
        goto out;
    }
    ct->len += n;
    r = 0;
out:
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(pkey);
    return r;
}

int kms_keystore_rsa_decrypt(const kms_keystore *ks, const kms_key_record *rec,
                             const kms_enc_alg_info *alg, const uint8_t *ct, size_t ct_len,
                             kms_buf *pt)
{
    char arn[KMS_ARN_MAX];
    char label[KMS_LABEL_MAX];
    size_t n = 0;
    KMS_GUARD(check_rsa_usable(ks, rec, arn));
    KMS_GUARD(kms_buf_reserve(pt, ct_len));
    kms_keystore_label(rec->key_id, rec->current_version, label);
    if (kms_hsm_rsa_oaep_decrypt(ks->hsm, label, alg->sha256, ct, ct_len, pt->data + pt->len, &n) !=
        0) {
        if (kms_last_error() == KMS_ERR_INVALID_CIPHERTEXT) {
            kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                      "the ciphertext does not decrypt with %s and %s: it was altered, made "
                      "with another algorithm, or under another key",
                      arn, alg->name);
        }
        return -1;
    }
    pt->len += n;
    return 0;
}
