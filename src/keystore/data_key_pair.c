/* Data key pairs (AWS KMS API reference, GenerateDataKeyPair): an RSA or EC key pair made for
 * the caller to use outside the KMS. Unlike a CMK it is not kept: the private key is returned
 * (as PKCS #8 PrivateKeyInfo, DER) and sealed under a symmetric CMK by the caller of this
 * module. It is made by OpenSSL in this process, with its random generator; the DER of the
 * private key goes straight into locked memory, and OpenSSL wipes its own copies of private
 * key material when they are freed (BN_clear_free, the PKCS #8 structure's free callback). */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/keystore.h"
#include "util/secmem.h"

typedef struct pair_spec {
    const char *name;  /* KeyPairSpec */
    const char *type;  /* "RSA" or "EC" */
    unsigned bits;     /* RSA */
    const char *group; /* EC: OpenSSL's group name */
} pair_spec;

/* "Key spec reference": the asymmetric key specs, less SM2 (China Regions only). */
static const pair_spec pair_specs[] = {
    {"RSA_2048", "RSA", 2048, NULL},           {"RSA_3072", "RSA", 3072, NULL},
    {"RSA_4096", "RSA", 4096, NULL},           {"ECC_NIST_P256", "EC", 0, "P-256"},
    {"ECC_NIST_P384", "EC", 0, "P-384"},       {"ECC_NIST_P521", "EC", 0, "P-521"},
    {"ECC_SECG_P256K1", "EC", 0, "secp256k1"},
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

/* The private key as PKCS #8 DER in locked memory. */
static int private_der(EVP_PKEY *pk, kms_data_key_pair *out)
{
    int r = -1;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
    int n = p8 != NULL ? i2d_PKCS8_PRIV_KEY_INFO(p8, NULL) : -1;
    if (n <= 0) {
        kms_raise(KMS_ERR_INTERNAL, "could not encode the private key of the data key pair");
        goto out;
    }
    out->private_key = kms_secure_alloc((size_t)n);
    if (out->private_key == NULL) {
        goto out;
    }
    unsigned char *p = out->private_key;
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != n) {
        kms_raise(KMS_ERR_INTERNAL, "could not encode the private key of the data key pair");
        goto out;
    }
    out->private_key_len = (size_t)n;
    r = 0;
out:
    PKCS8_PRIV_KEY_INFO_free(p8);
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
    if (private_der(pk, out) != 0 || public_der(pk, out) != 0) {
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
