/* HSM-held TLS keys: a small in-process OpenSSL 3 provider ("kms-hsm") whose EC (P-256, P-384)
 * and RSA keys are references to key pairs of the key store ("acm:KEY_NAME", see
 * kms_keystore_cert_key_create). Each handshake signature is hashed here and signed in the HSM
 * (kms_keystore_cert_key_sign_digest); the private key never exists in this process.
 *
 * The provider lives in a library context of its own (kms_tls_hsm_libctx), beside a "default"
 * provider, with "?provider=default" as its default property query: fetches that do not ask for
 * kms-hsm (key generation for ECDHE, ciphers, digests, the certificate's public key) get
 * OpenSSL's own implementations, and signatures with a kms-hsm key come to kms-hsm, because
 * OpenSSL falls back to the key's own provider when the key cannot be exported (its private half
 * never can). Loaded into the default context instead, its "EC" and "RSA" key managers would
 * compete with the default provider's for every fetch by name an application makes (an
 * EVP_PKEY_keygen of "EC" could land on ours, which generates nothing). An SSL_CTX that signs
 * with such a key is made in that context (SSL_CTX_new_ex). */
#ifndef KMS_TLS_TLS_HSM_H
#define KMS_TLS_TLS_HSM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keystore/keystore.h"

/* The library context holding the kms-hsm and default providers (made once, never freed);
 * NULL (with an error raised) if OpenSSL could not load them. */
OSSL_LIB_CTX *kms_tls_hsm_libctx(void);

/* A private key whose signatures are made by the key store's pair key_name (of key_spec:
 * ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, RSA_2048, RSA_3072, RSA_4096), whose public half is
 * spki (DER SubjectPublicKeyInfo, as kms_keystore_cert_key_create gave it). ks, key_name and
 * key_spec are copied by reference (ks) or value (the strings): the caller keeps ks open as long as
 * the key (and every SSL_CTX holding it) lives. Signing only: exporting the private half,
 * decrypting and key agreement are refused. Free with EVP_PKEY_free. One signature is made to check
 * the pair: NotFoundException if the key store has no such key, ValidationException if spki is not
 * its public half or does not fit key_spec. */
EVP_PKEY *kms_tls_hsm_pkey_new(const kms_keystore *ks, const char *key_name, const char *key_spec,
                               const uint8_t *spki, size_t spki_len)
    __attribute__((warn_unused_result));

/* Signatures the HSM made through kms-hsm keys since the process started (for benchmarks). */
uint64_t kms_tls_hsm_sign_count(void);

#endif
