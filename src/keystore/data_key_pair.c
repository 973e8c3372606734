/* Data key pairs (AWS KMS API reference, GenerateDataKeyPair): an RSA or EC key pair made for
 * the caller to use outside the KMS. Unlike a CMK it is not kept: the private key is returned
 * (as PKCS #8 PrivateKeyInfo, DER) and sealed under a symmetric CMK by the caller of this
 * module. It is made by OpenSSL in this process, with its random generator.
 *
 * The private key is encoded here, not by OpenSSL: OpenSSL 3's encoders (EVP_PKEY2PKCS8,
 * i2d_PrivateKey, OSSL_ENCODER) pass the DER through buffers they free without wiping, which
 * left copies of every private key in freed heap memory. Its components are read instead as
 * numbers (EVP_PKEY_get_bn_param, which leaves no copy behind; BN_clear_free), written into
 * locked memory, and the DER (RFC 5208 PrivateKeyInfo around RFC 8017 RSAPrivateKey or RFC
 * 5915 ECPrivateKey) is built from them in locked memory. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/keystore.h"
#include "util/secmem.h"

/* The DER of the curves' OIDs (RFC 5480 2.1.1.1, SEC 2). */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const uint8_t oid_secp256k1[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
/* id-ecPublicKey (RFC 5480); rsaEncryption with its NULL parameters (RFC 8017 A.1). */
static const uint8_t alg_ec[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t alg_rsa[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                  0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};

typedef struct pair_spec {
    const char *name;   /* KeyPairSpec */
    unsigned bits;      /* RSA */
    const char *group;  /* EC: OpenSSL's group name */
    const uint8_t *oid; /* EC: the curve's OID, DER */
    size_t oid_len;
    size_t field_len; /* EC: bytes of the private scalar */
} pair_spec;

/* "Key spec reference": the asymmetric key specs, less SM2 (China Regions only). */
static const pair_spec pair_specs[] = {
    {"RSA_2048", 2048, NULL, NULL, 0, 0},
    {"RSA_3072", 3072, NULL, NULL, 0, 0},
    {"RSA_4096", 4096, NULL, NULL, 0, 0},
    {"ECC_NIST_P256", 0, "P-256", oid_p256, sizeof oid_p256, 32},
    {"ECC_NIST_P384", 0, "P-384", oid_p384, sizeof oid_p384, 48},
    {"ECC_NIST_P521", 0, "P-521", oid_p521, sizeof oid_p521, 66},
    {"ECC_SECG_P256K1", 0, "secp256k1", oid_secp256k1, sizeof oid_secp256k1, 32},
};

static const pair_spec *find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof pair_specs / sizeof pair_specs[0]; i++) {
        if (strcmp(pair_specs[i].name, name) == 0) {
            return &pair_specs[i];
        }
    }
    return NULL;
}

bool kms_keystore_data_key_pair_spec_valid(const char *spec)
{
    return find(spec) != NULL;
}

/* ---- DER in locked memory -------------------------------------------------------------------- */

/* A number of the private key: big-endian bytes in locked memory. */
typedef struct part {
    uint8_t *b;
    size_t n;
} part;

#define RSA_PARTS 8

static void parts_clean_up(part *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kms_secure_free(p[i].b);
        p[i] = (part){NULL, 0};
    }
}

/* The key's number `param`, at least pad bytes long (left-padded with zeros). */
static int part_of(EVP_PKEY *pk, const char *param, size_t pad, part *out)
{
    BIGNUM *bn = NULL;
    *out = (part){NULL, 0};
    KMS_ENSURE(EVP_PKEY_get_bn_param(pk, param, &bn) == 1, KMS_ERR_INTERNAL,
               "could not read the %s of the data key pair", param);
    size_t n = (size_t)BN_num_bytes(bn);
    n = n > pad ? n : pad;
    n = n > 0 ? n : 1;
    out->b = kms_secure_alloc(n);
    if (out->b == NULL || BN_bn2binpad(bn, out->b, (int)n) != (int)n) {
        BN_clear_free(bn);
        kms_secure_free(out->b);
        out->b = NULL;
        return kms_raise(KMS_ERR_INTERNAL, "could not read the %s of the data key pair", param);
    }
    BN_clear_free(bn);
    out->n = n;
    return 0;
}

/* The size of a TLV whose content is n bytes. */
static size_t tlv(size_t n)
{
    size_t len = 1;
    for (size_t m = n; n >= 128 && m > 0; m >>= 8) {
        len++;
    }
    return 1 + len + n;
}

/* The content of the INTEGER of a non-negative big-endian number: no leading zero bytes but
 * one before a high bit (X.690 8.3). */
static size_t int_skip(const part *x)
{
    size_t i = 0;
    while (i + 1 < x->n && x->b[i] == 0) {
        i++;
    }
    return i;
}

static size_t int_len(const part *x)
{
    size_t i = int_skip(x);
    return x->n - i + ((x->b[i] & 0x80) != 0);
}

/* A writer into out[cap] (the caller sized it exactly). */
typedef struct der {
    uint8_t *out;
    size_t at;
} der;

static void put(der *d, const void *p, size_t n)
{
    memcpy(d->out + d->at, p, n);
    d->at += n;
}

static void put_head(der *d, uint8_t tag, size_t n)
{
    uint8_t h[2 + sizeof(size_t)];
    size_t k = 0, bytes = tlv(n) - n - 2;
    h[k++] = tag;
    if (bytes == 0) {
        h[k++] = (uint8_t)n;
    } else {
        h[k++] = (uint8_t)(0x80 | bytes);
        for (size_t i = bytes; i > 0; i--) {
            h[k++] = (uint8_t)(n >> (8 * (i - 1)));
        }
    }
    put(d, h, k);
}

static void put_int(der *d, const part *x)
{
    size_t i = int_skip(x);
    put_head(d, 0x02, int_len(x));
    if ((x->b[i] & 0x80) != 0) {
        put(d, "", 1);
    }
    put(d, x->b + i, x->n - i);
}

static void put_small_int(der *d, uint8_t v)
{
    const uint8_t i[] = {0x02, 0x01, v};
    put(d, i, sizeof i);
}

/* PrivateKeyInfo (RFC 5208 5) around the key of `inner` bytes that write_key writes. */
typedef void (*write_key_fn)(der *d, const void *arg);

static int private_key_info(const uint8_t *alg, size_t alg_len, const uint8_t *params,
                            size_t params_len, size_t inner, write_key_fn write_key,
                            const void *arg, kms_data_key_pair *out)
{
    size_t alg_id = alg_len + params_len;
    size_t content = 3 + tlv(alg_id) + tlv(inner);
    size_t total = tlv(content);
    der d = {kms_secure_alloc(total), 0};
    if (d.out == NULL) {
        return -1;
    }
    put_head(&d, 0x30, content);
    put_small_int(&d, 0);
    put_head(&d, 0x30, alg_id);
    put(&d, alg, alg_len);
    if (params_len > 0) {
        put(&d, params, params_len);
    }
    put_head(&d, 0x04, inner);
    write_key(&d, arg);
    if (d.at != total) {
        kms_secure_free(d.out);
        return kms_raise(KMS_ERR_INTERNAL, "the private key of the data key pair is malformed");
    }
    out->private_key = d.out;
    out->private_key_len = total;
    return 0;
}

/* RSAPrivateKey (RFC 8017 A.1.2): version 0, n, e, d, p, q, dP, dQ, qInv. */
static size_t rsa_content(const part *p)
{
    size_t content = 3;
    for (size_t i = 0; i < RSA_PARTS; i++) {
        content += tlv(int_len(&p[i]));
    }
    return content;
}

static void write_rsa(der *d, const void *arg)
{
    const part *p = arg;
    put_head(d, 0x30, rsa_content(p));
    put_small_int(d, 0);
    for (size_t i = 0; i < RSA_PARTS; i++) {
        put_int(d, &p[i]);
    }
}

static int private_rsa(EVP_PKEY *pk, kms_data_key_pair *out)
{
    static const char *const names[RSA_PARTS] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    part p[RSA_PARTS] = {{NULL, 0}};
    int r = -1;
    for (size_t i = 0; i < RSA_PARTS; i++) {
        if (part_of(pk, names[i], 0, &p[i]) != 0) {
            goto out;
        }
    }
    r = private_key_info(alg_rsa, sizeof alg_rsa, NULL, 0, tlv(rsa_content(p)), write_rsa, p, out);
out:
    parts_clean_up(p, RSA_PARTS);
    return r;
}

/* ECPrivateKey (RFC 5915 3): version 1, the private scalar (the field's length), and the public
 * point as [1] BIT STRING; the curve is named in the AlgorithmIdentifier. */
typedef struct ec_key {
    part d;
    const uint8_t *point;
    size_t point_len;
} ec_key;

static size_t ec_content(const ec_key *k)
{
    return 3 + tlv(k->d.n) + tlv(tlv(1 + k->point_len));
}

static void write_ec(der *d, const void *arg)
{
    const ec_key *k = arg;
    put_head(d, 0x30, ec_content(k));
    put_small_int(d, 1);
    put_head(d, 0x04, k->d.n);
    put(d, k->d.b, k->d.n);
    put_head(d, 0xa1, tlv(1 + k->point_len));
    put_head(d, 0x03, 1 + k->point_len);
    put(d, "", 1); /* no unused bits */
    put(d, k->point, k->point_len);
}

static int private_ec(EVP_PKEY *pk, const pair_spec *spec, kms_data_key_pair *out)
{
    uint8_t point[1 + 2 * 66];
    ec_key k = {{NULL, 0}, point, 0};
    KMS_ENSURE(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                               sizeof point, &k.point_len) == 1,
               KMS_ERR_INTERNAL, "could not read the public point of the data key pair");
    KMS_GUARD(part_of(pk, OSSL_PKEY_PARAM_PRIV_KEY, spec->field_len, &k.d));
    int r = private_key_info(alg_ec, sizeof alg_ec, spec->oid, spec->oid_len, tlv(ec_content(&k)),
                             write_ec, &k, out);
    parts_clean_up(&k.d, 1);
    return r;
}

static int public_der(EVP_PKEY *pk, kms_data_key_pair *out)
{
    int n = i2d_PUBKEY(pk, NULL);
    KMS_ENSURE(n > 0, KMS_ERR_INTERNAL, "could not encode the public key of the data key pair");
    out->public_key = malloc((size_t)n);
    KMS_ENSURE(out->public_key != NULL, KMS_ERR_INTERNAL, "out of memory");
    unsigned char *p = out->public_key;
    KMS_ENSURE(i2d_PUBKEY(pk, &p) == n, KMS_ERR_INTERNAL,
               "could not encode the public key of the data key pair");
    out->public_key_len = (size_t)n;
    return 0;
}

int kms_keystore_data_key_pair(const char *spec_name, kms_data_key_pair *out)
{
    int r = -1;
    EVP_PKEY *pk = NULL;
    memset(out, 0, sizeof *out);
    const pair_spec *spec = find(spec_name);
    KMS_ENSURE(spec != NULL, KMS_ERR_VALIDATION, "KeyPairSpec %s is not supported", spec_name);
    if (spec->group != NULL) {
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", spec->group);
    } else {
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)spec->bits);
    }
    if (pk == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "could not generate a %s key pair", spec_name);
        goto out;
    }
    if ((spec->group != NULL ? private_ec(pk, spec, out) : private_rsa(pk, out)) != 0 ||
        public_der(pk, out) != 0) {
        goto out;
    }
    r = 0;
out:
    EVP_PKEY_free(pk);
    if (r != 0) {
        kms_data_key_pair_clean_up(out);
    }
    return r;
}

void kms_data_key_pair_clean_up(kms_data_key_pair *p)
{
    kms_secure_free(p->private_key);
    free(p->public_key);
    memset(p, 0, sizeof *p);
}
