/* What the kms-hsm provider's key manager (tls_hsm_keymgmt.c) and signature operations
 * (tls_hsm_signature.c) share. */
#ifndef KMS_TLS_TLS_HSM_PROVIDER_H
#define KMS_TLS_TLS_HSM_PROVIDER_H

#include <stdbool.h>

#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include "keystore/keystore.h"

#define KMS_TLS_HSM_PROVIDER "kms-hsm"
/* The import parameter (an OSSL_PARAM_OCTET_PTR to a kms_tls_hsm_ref) that makes a key object
 * refer to a key store pair: only this process's code can pass a pointer, so no configuration
 * or file can name one. */
#define KMS_TLS_HSM_PARAM_REF "kms-hsm-ref"

typedef struct kms_tls_hsm_ref {
    const kms_keystore *ks;
    const char *key_name;
    const char *key_spec;
    EVP_PKEY *pub; /* borrowed: the import takes its own reference */
} kms_tls_hsm_ref;

/* A key object of the provider: a reference to the key store's pair (ks NULL for a public key
 * alone, as OpenSSL makes when it compares a certificate's key with ours), and the public half
 * as an EVP_PKEY of the default provider, which answers every question about the public key. */
typedef struct kms_tls_hsm_key {
    bool ec;
    const kms_keystore *ks;
    char *key_name;
    char *key_spec;
    EVP_PKEY *pub;
} kms_tls_hsm_key;

/* The signature operations: ECDSA for EC keys, RSA (PKCS#1 v1.5 and PSS) for RSA keys. */
extern const OSSL_DISPATCH kms_tls_hsm_ecdsa_functions[];
extern const OSSL_DISPATCH kms_tls_hsm_rsa_sig_functions[];

/* The library context the provider runs in (set before the provider is loaded). */
OSSL_LIB_CTX *kms_tls_hsm_provider_libctx(void);

/* Counts one signature made in the HSM. */
void kms_tls_hsm_count_sign(void);

#endif
