#include "keystore/keyspec.h"

#include <string.h>

/* AWS KMS developer guide, "Key spec reference". */
static const kms_key_spec_info specs[] = {
    {"SYMMETRIC_DEFAULT", KMS_HSM_AES_256, "ENCRYPT_DECRYPT", {"ENCRYPT_DECRYPT"}, NULL, {NULL}},
    {"HMAC_224", KMS_HSM_HMAC_224, "GENERATE_VERIFY_MAC", {"GENERATE_VERIFY_MAC"}, "HMAC_SHA_224",
     {NULL}},
    {"HMAC_256", KMS_HSM_HMAC_256, "GENERATE_VERIFY_MAC", {"GENERATE_VERIFY_MAC"}, "HMAC_SHA_256",
     {NULL}},
    {"HMAC_384", KMS_HSM_HMAC_384, "GENERATE_VERIFY_MAC", {"GENERATE_VERIFY_MAC"}, "HMAC_SHA_384",
     {NULL}},
    {"HMAC_512", KMS_HSM_HMAC_512, "GENERATE_VERIFY_MAC", {"GENERATE_VERIFY_MAC"}, "HMAC_SHA_512",
     {NULL}},
#define RSA_SIGS                                                                                   \
    {"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512", "RSASSA_PKCS1_V1_5_SHA_256",  \
     "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512", NULL}
    {"RSA_2048", KMS_HSM_RSA_2048, NULL, {"SIGN_VERIFY"}, NULL, RSA_SIGS},
    {"RSA_3072", KMS_HSM_RSA_3072, NULL, {"SIGN_VERIFY"}, NULL, RSA_SIGS},
    {"RSA_4096", KMS_HSM_RSA_4096, NULL, {"SIGN_VERIFY"}, NULL, RSA_SIGS},
#undef RSA_SIGS
    {"ECC_NIST_P256", KMS_HSM_EC_P256, "SIGN_VERIFY", {"SIGN_VERIFY"}, NULL, {"ECDSA_SHA_256"}},
    {"ECC_NIST_P384", KMS_HSM_EC_P384, "SIGN_VERIFY", {"SIGN_VERIFY"}, NULL, {"ECDSA_SHA_384"}},
};

static const char *const spec_names[] = {
    "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512", "RSA_2048",
    "RSA_3072",          "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", NULL,
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
