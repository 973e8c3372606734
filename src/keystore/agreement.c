/* Key agreement with a KEY_AGREEMENT key (KMS API reference, DeriveSharedSecret): the peer's
 * public key is read by OpenSSL, checked to be a point on the key's curve, and the ECDH itself
 * happens in the HSM (kms_hsm_ecdh_derive). */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

#include "keystore/keystore.h"

/* 04||X||Y of the largest curve, P-521. */
#define MAX_POINT (1 + 2 * 66)

/* The peer's public key (DER SubjectPublicKeyInfo) as an uncompressed point on group. */
static int peer_point(const uint8_t *spki, size_t len, const char *group, const char *arn,
                      uint8_t point[MAX_POINT], size_t *point_len)
{
    int r = -1;
    const unsigned char *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);
    char name[64] = "";
    size_t name_len = 0;
    if (pk == NULL || p != spki + len) {
        kms_raise(KMS_ERR_VALIDATION,
                  "PublicKey is not a DER-encoded SubjectPublicKeyInfo (RFC 5280) public key");
        goto out;
    }
    if (!EVP_PKEY_is_a(pk, "EC") ||
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name,
                                       &name_len) != 1 ||
        strcmp(name, group) != 0) {
        kms_raise(KMS_ERR_VALIDATION,
                  "PublicKey must be an elliptic curve public key on the curve of %s (%s)", arn,
                  group);
        goto out;
    }
    if (EVP_PKEY_set_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       "uncompressed") != 1 ||
        EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, MAX_POINT,
                                        point_len) != 1) {
        kms_raise(KMS_ERR_VALIDATION, "PublicKey's point could not be read");
        goto out;
    }
    r = 0;
out:
    EVP_PKEY_free(pk);
    return r;
}

int kms_keystore_derive_shared_secret(const kms_keystore *ks, const kms_key_record *rec,
                                      const uint8_t *peer_spki, size_t peer_len, uint8_t **secret,
                                      size_t *secret_len)
{
    char arn[KMS_ARN_MAX], label[KMS_LABEL_MAX];
    uint8_t point[MAX_POINT];
    size_t point_len = 0;
    *secret = NULL;
    *secret_len = 0;
    kms_keystore_key_arn(ks, rec->key_id, arn);
    const kms_key_spec_info *spec = kms_key_spec_find(rec->key_spec);
    KMS_ENSURE(kms_key_spec_is_key_agreement(spec, rec->key_usage), KMS_ERR_INVALID_KEY_USAGE,
               "%s key usage is %s which is not valid for this operation (it needs "
               "KEY_AGREEMENT).",
               arn, rec->key_usage);
    kms_hsm_key_type type = kms_key_spec_hsm_type(spec, rec->key_usage);
    const char *group = kms_hsm_key_group(type);
    KMS_ENSURE(group != NULL, KMS_ERR_INTERNAL, "no curve for %s", rec->key_spec);
    KMS_GUARD(peer_point(peer_spki, peer_len, group, arn, point, &point_len));
    kms_keystore_label(rec->key_id, rec->current_version, label);
    return kms_hsm_ecdh_derive(ks->hsm, label, type, point, point_len, secret, secret_len);
}
