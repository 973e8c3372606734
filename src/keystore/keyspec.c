#include "keystore/keyspec.h"

#include <string.h>

/* AWS KMS developer guide, "Key spec reference". */
static const kms_key_spec_info specs[] = {
    {"SYMMETRIC_DEFAULT",
     KMS_HSM_AES_256,
     KMS_HSM_AES_256,
     "ENCRYPT_DECRYPT",
     {"ENCRYPT_DECRYPT"},
     NULL,
     {NULL},
     {"SYMMETRIC_DEFAULT"}},
    {"HMAC_224",
     KMS_HSM_HMAC_224,
     KMS_HSM_HMAC_224,
     "GENERATE_VERIFY_MAC",
     {"GENERATE_VERIFY_MAC"},
     "HMAC_SHA_224",
     {NULL},
     {NULL}},
    {"HMAC_256",
     KMS_HSM_HMAC_256,
     KMS_HSM_HMAC_256,
     "GENERATE_VERIFY_MAC",
     {"GENERATE_VERIFY_MAC"},
     "HMAC_SHA_256",
     {NULL},
     {NULL}},
    {"HMAC_384",
     KMS_HSM_HMAC_384,
     KMS_HSM_HMAC_384,
     "GENERATE_VERIFY_MAC",
     {"GENERATE_VERIFY_MAC"},
     "HMAC_SHA_384",
     {NULL},
     {NULL}},
    {"HMAC_512",
     KMS_HSM_HMAC_512,
     KMS_HSM_HMAC_512,
     "GENERATE_VERIFY_MAC",
     {"GENERATE_VERIFY_MAC"},
     "HMAC_SHA_512",
     {NULL},
     {NULL}},
#define RSA_SIGS                                                                                   \
    {                                                                                              \
        "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",                          \
            "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512", \
            NULL                                                                                   \
    }
#define RSA_ENCS                                                                                   \
    {                                                                                              \
        "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", NULL                                             \
    }
    {"RSA_2048",
     KMS_HSM_RSA_2048,
     KMS_HSM_RSA_2048_DECRYPT,
     NULL,
     {"SIGN_VERIFY", "ENCRYPT_DECRYPT"},
     NULL,
     RSA_SIGS,
     RSA_ENCS},
    {"RSA_3072",
     KMS_HSM_RSA_3072,
     KMS_HSM_RSA_3072_DECRYPT,
     NULL,
     {"SIGN_VERIFY", "ENCRYPT_DECRYPT"},
     NULL,
     RSA_SIGS,
     RSA_ENCS},
    {"RSA_4096",
     KMS_HSM_RSA_4096,
     KMS_HSM_RSA_4096_DECRYPT,
     NULL,
     {"SIGN_VERIFY", "ENCRYPT_DECRYPT"},
     NULL,
     RSA_SIGS,
     RSA_ENCS},
#undef RSA_ENCS
#undef RSA_SIGS
    {"ECC_NIST_P256",
     KMS_HSM_EC_P256,
     KMS_HSM_EC_P256,
     "SIGN_VERIFY",
     {"SIGN_VERIFY", "KEY_AGREEMENT"},
     NULL,
     {"ECDSA_SHA_256"},
     {NULL}},
    {"ECC_NIST_P384",
     KMS_HSM_EC_P384,
     KMS_HSM_EC_P384,
     "SIGN_VERIFY",
     {"SIGN_VERIFY", "KEY_AGREEMENT"},
     NULL,
     {"ECDSA_SHA_384"},
     {NULL}},
    {"ECC_NIST_P521",
     KMS_HSM_EC_P521,
     KMS_HSM_EC_P521,
     "SIGN_VERIFY",
     {"SIGN_VERIFY", "KEY_AGREEMENT"},
     NULL,
     {"ECDSA_SHA_512"},
     {NULL}},
    /* "Key spec reference", ECC_SECG_P256K1: "signing and verification only", ECDSA_SHA_256. */
    {"ECC_SECG_P256K1",
     KMS_HSM_EC_SECP256K1,
     KMS_HSM_EC_SECP256K1,
     "SIGN_VERIFY",
     {"SIGN_VERIFY"},
     NULL,
     {"ECDSA_SHA_256"},
     {NULL}},
};

static const char *const spec_names[] = {
    "SYMMETRIC_DEFAULT", "HMAC_224",        "HMAC_256", "HMAC_384",      "HMAC_512",
    "RSA_2048",          "RSA_3072",        "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384",
    "ECC_NIST_P521",     "ECC_SECG_P256K1", NULL,
};

static const kms_sig_alg_info sig_algs[] = {
    {"RSASSA_PSS_SHA_256", KMS_HSM_RSA_PSS_SHA256, "SHA256", 32, true, false},
    {"RSASSA_PSS_SHA_384", KMS_HSM_RSA_PSS_SHA384, "SHA384", 48, true, false},
    {"RSASSA_PSS_SHA_512", KMS_HSM_RSA_PSS_SHA512, "SHA512", 64, true, false},
    {"RSASSA_PKCS1_V1_5_SHA_256", KMS_HSM_RSA_PKCS1_SHA256, "SHA256", 32, false, false},
    {"RSASSA_PKCS1_V1_5_SHA_384", KMS_HSM_RSA_PKCS1_SHA384, "SHA384", 48, false, false},
    {"RSASSA_PKCS1_V1_5_SHA_512", KMS_HSM_RSA_PKCS1_SHA512, "SHA512", 64, false, false},
    {"ECDSA_SHA_256", KMS_HSM_ECDSA_SHA256, "SHA256", 32, false, true},
    {"ECDSA_SHA_384", KMS_HSM_ECDSA_SHA384, "SHA384", 48, false, true},
    {"ECDSA_SHA_512", KMS_HSM_ECDSA_SHA512, "SHA512", 64, false, true},
};

/* AWS KMS developer guide, "RSA key specs for encryption and decryption". */
static const kms_enc_alg_info enc_algs[] = {
    {"RSAES_OAEP_SHA_1", false, "SHA1", 20},
    {"RSAES_OAEP_SHA_256", true, "SHA256", 32},
};

const kms_key_spec_info *kms_key_spec_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof specs / sizeof specs[0]; i++) {
        if (strcmp(specs[i].name, name) == 0) {
            return &specs[i];
        }
    }
    return NULL;
}

const char *const *kms_key_spec_names(void)
{
    return spec_names;
}

const kms_sig_alg_info *kms_sig_alg_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof sig_algs / sizeof sig_algs[0]; i++) {
        if (strcmp(sig_algs[i].name, name) == 0) {
            return &sig_algs[i];
        }
    }
    return NULL;
}

static bool in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n && list[i] != NULL; i++) {
        if (strcmp(list[i], s) == 0) {
            return true;
        }
    }
    return false;
}

bool kms_key_spec_allows_usage(const kms_key_spec_info *spec, const char *usage)
{
    return in_list(spec->usages, sizeof spec->usages / sizeof spec->usages[0], usage);
}

bool kms_key_spec_allows_sig_alg(const kms_key_spec_info *spec, const char *alg)
{
    return in_list(spec->sig_algorithms,
                   sizeof spec->sig_algorithms / sizeof spec->sig_algorithms[0], alg);
}

bool kms_key_spec_allows_enc_alg(const kms_key_spec_info *spec, const char *alg)
{
    return in_list(spec->enc_algorithms,
                   sizeof spec->enc_algorithms / sizeof spec->enc_algorithms[0], alg);
}

bool kms_key_spec_is_rsa_encryption(const kms_key_spec_info *spec, const char *usage)
{
    return spec != NULL && usage != NULL && spec->hsm_decrypt != spec->hsm &&
           strcmp(usage, "ENCRYPT_DECRYPT") == 0;
}

/* "Key spec reference", "SM2 and NIST ECC key specs for key agreement": the NIST curves, with
 * ECDH as their one KeyAgreementAlgorithm. */
bool kms_key_spec_is_key_agreement(const kms_key_spec_info *spec, const char *usage)
{
    return spec != NULL && usage != NULL && strcmp(usage, "KEY_AGREEMENT") == 0 &&
           kms_key_spec_allows_usage(spec, usage);
}

kms_hsm_key_type kms_key_spec_hsm_type(const kms_key_spec_info *spec, const char *usage)
{
    if (kms_key_spec_is_key_agreement(spec, usage)) {
        switch (spec->hsm) {
        case KMS_HSM_EC_P256:
            return KMS_HSM_EC_P256_DERIVE;
        case KMS_HSM_EC_P384:
            return KMS_HSM_EC_P384_DERIVE;
        default:
            return KMS_HSM_EC_P521_DERIVE;
        }
    }
    return kms_key_spec_is_rsa_encryption(spec, usage) ? spec->hsm_decrypt : spec->hsm;
}

const kms_enc_alg_info *kms_enc_alg_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof enc_algs / sizeof enc_algs[0]; i++) {
        if (strcmp(enc_algs[i].name, name) == 0) {
            return &enc_algs[i];
        }
    }
    return NULL;
}
