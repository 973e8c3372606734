/* The primitives the envelope module calls, each a thin wrapper over OpenSSL 3 (style: use the
 * libraries for what they do well): AES-GCM with a reusable context, HKDF, ECDSA with the
 * compressed public keys the ESDK stores, and RSA key wrapping. The Wycheproof tests
 * (tests/unit/test_primitives.c) call exactly these functions. */
#ifndef KMS_ENVELOPE_CRYPTO_H
#define KMS_ENVELOPE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "kms/envelope.h"
#include "util/buf.h"

/* AES-GCM with 12-byte IVs and 16-byte tags, key 16, 24 or 32 bytes. One context per thread:
 * the key schedule is computed once in _init, each seal/open only sets the IV. */
typedef struct kms_gcm {
    EVP_CIPHER_CTX *ctx;
    bool encrypt;
} kms_gcm;

int kms_gcm_init(kms_gcm *g, const uint8_t *key, size_t key_len, bool encrypt)
    __attribute__((warn_unused_result));
void kms_gcm_clean_up(kms_gcm *g);
/* out may equal in. */
int kms_gcm_seal(kms_gcm *g, const uint8_t iv[12], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
    __attribute__((warn_unused_result));
/* Returns -1 with InvalidCiphertextException when the tag does not verify; out then holds
 * unauthenticated bytes, which the caller must wipe and never release. */
int kms_gcm_open(kms_gcm *g, const uint8_t iv[12], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, size_t len, uint8_t *out, const uint8_t tag[16])
    __attribute__((warn_unused_result));

/* HKDF (RFC 5869) with md "SHA256", "SHA384" or "SHA512". salt may be NULL (= hash-length
 * zeros). */
int kms_hkdf(const char *md, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
             size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
    __attribute__((warn_unused_result));

/* ECDSA for the signed suites. curve "P-256" or "P-384"; md "SHA256" or "SHA384". */
int kms_ecdsa_keygen(const char *curve, EVP_PKEY **key) __attribute__((warn_unused_result));
/* The SEC 1 compressed point of key's public half. */
int kms_ecdsa_public_compressed(EVP_PKEY *key, kms_buf *out) __attribute__((warn_unused_result));
/* A public key from a SEC 1 point (compressed or not). NULL with InvalidCiphertextException. */
EVP_PKEY *kms_ecdsa_public_from_point(const char *curve, const uint8_t *point, size_t len);
/* Signs a digest; out receives the DER ECDSA-Sig-Value. */
int kms_ecdsa_sign_digest(EVP_PKEY *key, const char *md, const uint8_t *digest, size_t digest_len,
                          kms_buf *out) __attribute__((warn_unused_result));
/* 0 when sig (DER) verifies; -1 with InvalidCiphertextException otherwise. */
int kms_ecdsa_verify_digest(EVP_PKEY *key, const char *md, const uint8_t *digest, size_t digest_len,
                            const uint8_t *sig, size_t sig_len) __attribute__((warn_unused_result));

/* RSA key wrapping for the raw RSA keyring. unwrap returns -1 with InvalidCiphertextException
 * (and nothing in out) when the padding does not check; out is kms_secure_alloc'ed. */
int kms_rsa_wrap(EVP_PKEY *key, kms_rsa_padding padding, const uint8_t *in, size_t len,
                 kms_buf *out) __attribute__((warn_unused_result));
int kms_rsa_unwrap(EVP_PKEY *key, kms_rsa_padding padding, const uint8_t *in, size_t len,
                   uint8_t **out, size_t *out_len) __attribute__((warn_unused_result));

/* Raises KMSInternalException with OpenSSL's reason appended; returns -1. */
int kms_openssl_raise(const char *what);

#endif
