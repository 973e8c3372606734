/* Servers whose certificate and key come from memory: the way the certificate manager's
 * certificates reach the TLS helper (the public API will take a kms_client and a certificate's
 * ARN). The key is an EVP_PKEY: one held in the HSM (kms_tls_hsm_pkey_new), or one the caller
 * decoded from the PKCS#8 DER it holds. Hot reload works as for files (kms_tls_server_reload). */
#ifndef KMS_TLS_TLS_SERVER_H
#define KMS_TLS_TLS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "kms/tls.h"

/* opts as for kms_tls_server_new, without cert_chain_file and key_file (ValidationException if
 * given); chain_pem: the certificate then the chain to send, PEM (leaf first), copied; pkey: the
 * server takes its own reference. The key must match the certificate (ValidationException).
 * The context is made in kms_tls_hsm_libctx(), where HSM-held keys sign. */
kms_tls_server *kms_tls_server_new_with_key(const kms_tls_options *opts, const char *chain_pem,
                                            size_t chain_pem_len, EVP_PKEY *pkey)
    __attribute__((warn_unused_result));

/* Replaces the chain and key (a renewal's new certificate and key) as kms_tls_server_reload
 * does: new handshakes use them at once, connections already open keep theirs; on failure the
 * current context stays. Works on a server made from files too (it then serves from memory;
 * kms_tls_server_reload with files switches back). */
int kms_tls_server_reload_with_key(kms_tls_server *server, const char *chain_pem,
                                   size_t chain_pem_len, EVP_PKEY *pkey)
    __attribute__((warn_unused_result));

/* A private key from PKCS#8 DER (PrivateKeyInfo, unencrypted: an exportable managed
 * certificate's key once the caller unsealed it), made in kms_tls_hsm_libctx() for
 * kms_tls_server_new_with_key. The caller wipes der. ValidationException if it is not one. */
EVP_PKEY *kms_tls_pkey_from_pkcs8(const uint8_t *der, size_t der_len)
    __attribute__((warn_unused_result));

/* A managed certificate's server (tls_managed.c): the server owns mg from here on, refreshes it
 * before each new connection and frees it with itself. */
typedef struct kms_tls_managed kms_tls_managed;
void kms_tls_server_managed_attach(kms_tls_server *server, kms_tls_managed *mg);
kms_tls_managed *kms_tls_server_managed(const kms_tls_server *server);

/* Tests: the clock the server's CMK ticket keys count periods by (NULL: kms_now). */
void kms_tls_server_ticket_clock_set(kms_tls_server *server, int64_t (*now)(void));

#endif
