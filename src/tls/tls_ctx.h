/* What the client and server halves of the TLS helper share: the protocol profile, ALPN lists,
 * and errors raised from OpenSSL's error queue. */
#ifndef KMS_TLS_TLS_CTX_H
#define KMS_TLS_TLS_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "kms/tls.h"

/* Sets the protocol versions, cipher suites, groups and options of the profile on ctx. */
int kms_tls_ctx_apply_profile(SSL_CTX *ctx, kms_tls_profile profile)
    __attribute__((warn_unused_result));

/* Loads the certificate chain (leaf first) and its private key from PEM files, and checks that
 * they match: ValidationException otherwise. */
int kms_tls_ctx_use_certificate(SSL_CTX *ctx, const char *cert_chain_file, const char *key_file)
    __attribute__((warn_unused_result));

/* "h2,http/1.1" -> the ALPN wire form (RFC 7301 3.1: one length byte before each protocol) in a
 * malloc'd buffer. Empty names, names over 255 bytes and an empty list: ValidationException. */
int kms_tls_alpn_encode(const char *list, uint8_t **wire, size_t *len)
    __attribute__((warn_unused_result));

/* Raises code with "what: <OpenSSL's first queued reason>" and empties OpenSSL's error queue;
 * returns -1. */
int kms_tls_raise_ssl(kms_error code, const char *what);

#endif
