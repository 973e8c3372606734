#include "hsm/hsm_pubkey.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "util/buf.h"

/* i2d_PUBKEY into a malloc'd buffer (OpenSSL's allocation is not ours to hand out). */
static int spki_der(EVP_PKEY *pkey, uint8_t **spki, size_t *spki_len)
{
    int r = -1;
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pkey, &der);
    if (n <= 0) {
        kms_raise(KMS_ERR_INTERNAL, "cannot DER-encode the public key (i2d_PUBKEY)");
        goto out;
    }
    *spki = malloc((size_t)n);
    if (*spki == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory encoding a public key");
        goto out;
    }
    memcpy(*spki, der, (size_t)n);
    *spki_len = (size_t)n;
    r = 0;
out:
    OPENSSL_free(der);
    return r;
}

static int pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, uint8_t **spki, size_t *spki_len)
{
    int r = -1;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        kms_raise(KMS_ERR_HSM,
                  "the %s public key read from the HSM is not valid "
                  "(EVP_PKEY_fromdata)",
                  type);
        goto out;
    }
    if (spki_der(pkey, spki, spki_len) != 0) {
        goto out;
    }
    r = 0;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return r;
}

int kms_hsm_spki_rsa(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len, uint8_t **spki,
                     size_t *spki_len)
{
    int r = -1;
    BIGNUM *bn_n = BN_bin2bn(n, (int)n_len, NULL);
    BIGNUM *bn_e = BN_bin2bn(e, (int)e_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bn_n == NULL || bn_e == NULL || bld == NULL ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory building an RSA public key");
        goto out;
    }
    if (pkey_from_params("RSA", bld, spki, spki_len) != 0) {
        goto out;
    }
    r = 0;
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return r;
}

/* The uncompressed point 04||X||Y inside CKA_EC_POINT. */
static int ec_point_unwrap(const uint8_t *p, size_t n, size_t field_len, const uint8_t **pt)
{
    size_t want = 1 + 2 * field_len;
    if (n == want && p[0] == 0x04) {
        *pt = p; /* bare point */
        return 0;
    }
    /* DER OCTET STRING: tag 0x04, short or one-byte long form length (X.690 8.1.3). */
    kms_reader rd;
    uint8_t tag = 0;
    uint8_t len = 0;
    kms_reader_init(&rd, p, n);
    if (kms_reader_u8(&rd, &tag) != 0 || tag != 0x04 || kms_reader_u8(&rd, &len) != 0) {
        goto bad;
    }
    size_t body = len;
    if (len == 0x81) {
        if (kms_reader_u8(&rd, &len) != 0 || len < 0x80) {
            goto bad;
        }
        body = len;
    } else if (len > 0x80) {
        goto bad;
    }
    if (body != want || rd.left != body || kms_reader_bytes(&rd, body, pt) != 0 ||
        (*pt)[0] != 0x04) {
        goto bad;
    }
    return 0;
bad:
    return kms_raise(KMS_ERR_HSM,
                     "the HSM returned a CKA_EC_POINT that is not an uncompressed "
                     "point of %zu bytes",
                     want);
}

int kms_hsm_spki_ec(const char *group, size_t field_len, const uint8_t *ec_point,
                    size_t ec_point_len, uint8_t **spki, size_t *spki_len)
{
    int r = -1;
    const uint8_t *pt = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    if (ec_point_unwrap(ec_point, ec_point_len, field_len, &pt) != 0) {
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * field_len)) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory building an EC public key");
        goto out;
    }
    if (pkey_from_params("EC", bld, spki, spki_len) != 0) {
        goto out;
    }
    r = 0;
out:
    OSSL_PARAM_BLD_free(bld);
    return r;
}

int kms_hsm_ecdsa_der(const uint8_t *rs, size_t rs_len, uint8_t **sig, size_t *sig_len)
{
    int r = -1;
    ECDSA_SIG *es = NULL;
    BIGNUM *br = NULL;
    BIGNUM *bs = NULL;
    unsigned char *der = NULL;
    if (rs_len == 0 || rs_len % 2 != 0) {
        kms_raise(KMS_ERR_HSM, "the HSM returned an ECDSA signature of odd length %zu", rs_len);
        goto out;
    }
    size_t half = rs_len / 2;
    es = ECDSA_SIG_new();
    br = BN_bin2bn(rs, (int)half, NULL);
    bs = BN_bin2bn(rs + half, (int)half, NULL);
    if (es == NULL || br == NULL || bs == NULL || !ECDSA_SIG_set0(es, br, bs)) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory encoding an ECDSA signature");
        goto out;
    }
    br = NULL; /* owned by es now */
    bs = NULL;
    int n = i2d_ECDSA_SIG(es, &der);
    if (n <= 0) {
        kms_raise(KMS_ERR_INTERNAL, "cannot DER-encode an ECDSA signature (i2d_ECDSA_SIG)");
        goto out;
    }
    *sig = malloc((size_t)n);
    if (*sig == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory encoding an ECDSA signature");
        goto out;
    }
    memcpy(*sig, der, (size_t)n);
    *sig_len = (size_t)n;
    r = 0;
out:
    OPENSSL_free(der);
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(es);
    return r;
}
