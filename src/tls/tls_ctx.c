/* The TLS helper's profile (Mozilla's server-side TLS guidelines 6.0) and client contexts. */
#include "tls/tls_ctx.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "util/error.h"

/* ---- Errors ----------------------------------------------------------------------------------*/
int kms_tls_raise_ssl(kms_error code, const char *what)
{
    char reason[256] = "no reason given";
    unsigned long e = ERR_peek_error();
    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof reason);
    }
    ERR_clear_error();
    return kms_raise(code, "%s: %s", what, reason);
}

/* ---- The profile (ssl-config.mozilla.org/guidelines/6.0.json) --------------------------------*/
/* intermediate "ciphers.openssl": TLS 1.2 suites, ECDHE with an AEAD only. */
static const char TLS12_CIPHERS[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
/* "ciphersuites", the same for both profiles. */
static const char TLS13_SUITES[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
/* "tls_curves". X25519MLKEM768 needs OpenSSL 3.5; an older library refuses the first list and
 * gets the second (asked at run time, so one binary takes it when the library has it). */
static const char GROUPS_PQ[] = "X25519MLKEM768:X25519:prime256v1:secp384r1";
static const char GROUPS[] = "X25519:prime256v1:secp384r1";

int kms_tls_ctx_apply_profile(SSL_CTX *ctx, kms_tls_profile profile)
{
    int min_version = TLS1_2_VERSION;
    if (profile == KMS_TLS_MODERN) {
        min_version = TLS1_3_VERSION;
    } else if (profile != KMS_TLS_INTERMEDIATE) {
        return kms_raise(KMS_ERR_VALIDATION, "unknown TLS profile %d", (int)profile);
    }
    if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        return kms_tls_raise_ssl(KMS_ERR_INTERNAL, "setting the TLS versions");
    }
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1) {
        return kms_tls_raise_ssl(KMS_ERR_INTERNAL, "setting the cipher suites");
    }
    if (SSL_CTX_set1_groups_list(ctx, GROUPS_PQ) != 1) {
        ERR_clear_error();
        if (SSL_CTX_set1_groups_list(ctx, GROUPS) != 1) {
            return kms_tls_raise_ssl(KMS_ERR_INTERNAL, "setting the key exchange groups");
        }
    }
    /* Level 2: 112-bit security, so no RSA or DH key under 2048 bits, no SHA-1 signatures. */
    SSL_CTX_set_security_level(ctx, 2);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_CLIENT_RENEGOTIATION | SSL_OP_LEGACY_SERVER_CONNECT);
    return 0;
}

/* ---- ALPN ------------------------------------------------------------------------------------*/
int kms_tls_alpn_encode(const char *list, uint8_t **wire, size_t *len)
{
    *wire = NULL;
    *len = 0;
    size_t n = strlen(list);
    KMS_ENSURE(n > 0, KMS_ERR_VALIDATION, "the ALPN list is empty");
    /* Each comma becomes a length byte, and one more goes in front: n + 1 bytes. */
    uint8_t *out = malloc(n + 1);
    KMS_ENSURE(out != NULL, KMS_ERR_INTERNAL, "out of memory");
    size_t w = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t plen = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (plen == 0 || plen > 255) {
            free(out);
            return kms_raise(KMS_ERR_VALIDATION,
                             "ALPN protocol names are 1 to 255 bytes, separated by commas");
        }
        out[w++] = (uint8_t)plen;
        memcpy(out + w, p, plen);
        w += plen;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    *wire = out;
    *len = w;
    return 0;
}

/* ---- Clients ---------------------------------------------------------------------------------*/
/* Hostname verification is always on: a connection whose expected name (or IP) was never set
 * fails at the leaf, as a mismatch, instead of accepting any name the CA vouched for. */
static int client_verify(int ok, X509_STORE_CTX *sctx)
{
    if (ok != 1 || X509_STORE_CTX_get_error_depth(sctx) != 0) {
        return ok;
    }
    SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl == NULL) {
        return 0;
    }
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    char *ip = X509_VERIFY_PARAM_get1_ip_asc(param);
    int named = X509_VERIFY_PARAM_get0_host(param, 0) != NULL || ip != NULL;
    OPENSSL_free(ip);
    if (!named) {
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_HOSTNAME_MISMATCH);
        return 0;
    }
    return 1;
}

int kms_tls_ctx_use_certificate(SSL_CTX *ctx, const char *cert_chain_file, const char *key_file)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_chain_file) != 1) {
        return kms_tls_raise_ssl(KMS_ERR_VALIDATION, "reading the certificate chain file");
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        return kms_tls_raise_ssl(KMS_ERR_VALIDATION, "reading the private key file");
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        return kms_tls_raise_ssl(KMS_ERR_VALIDATION, "the key does not match the certificate");
    }
    return 0;
}

SSL_CTX *kms_tls_client_ctx_new(const kms_tls_options *opts)
{
    kms_error_clear();
    static const kms_tls_options none = {0};
    if (opts == NULL) {
        opts = &none;
    }
    if ((opts->cert_chain_file == NULL) != (opts->key_file == NULL)) {
        kms_raise(KMS_ERR_VALIDATION, "a client certificate needs its key, and a key its "
                                      "certificate");
        return NULL;
    }
    /* Options of servers only: refused rather than ignored, so nobody believes a client checks
     * a CRL it never reads. */
    if (opts->crl_file != NULL || opts->client_auth != KMS_TLS_CLIENT_AUTH_NONE ||
        opts->client != NULL || opts->ticket_key_id != NULL) {
        kms_raise(KMS_ERR_VALIDATION,
                  "crl_file, client_auth and ticket keys are options of TLS servers");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        kms_tls_raise_ssl(KMS_ERR_INTERNAL, "SSL_CTX_new");
        return NULL;
    }
    uint8_t *alpn = NULL;
    size_t alpn_len = 0;
    int r = -1;
    if ((r = kms_tls_ctx_apply_profile(ctx, opts->profile)) != 0) {
        goto out;
    }
    r = -1;
    if (opts->ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, opts->ca_file, NULL) != 1) {
            kms_tls_raise_ssl(KMS_ERR_VALIDATION, "reading the CA file");
            goto out;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        kms_tls_raise_ssl(KMS_ERR_INTERNAL, "loading the system trust store");
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, client_verify);
    if (opts->cert_chain_file != NULL &&
        (r = kms_tls_ctx_use_certificate(ctx, opts->cert_chain_file, opts->key_file)) != 0) {
        goto out;
    }
    if (opts->alpn != NULL) {
        if ((r = kms_tls_alpn_encode(opts->alpn, &alpn, &alpn_len)) != 0) {
            goto out;
        }
        /* SSL_CTX_set_alpn_protos returns 0 on success. */
        if (SSL_CTX_set_alpn_protos(ctx, alpn, (unsigned)alpn_len) != 0) {
            r = kms_tls_raise_ssl(KMS_ERR_INTERNAL, "setting the ALPN list");
            goto out;
        }
    }
    if (opts->disable_session_tickets) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    r = 0;
out:
    free(alpn);
    if (r != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL *kms_tls_client_ssl_new(SSL_CTX *ctx, const char *host)
{
    kms_error_clear();
    if (ctx == NULL || host == NULL || host[0] == '\0') {
        kms_raise(KMS_ERR_VALIDATION, "a TLS client connection needs its context and host name");
        return NULL;
    }
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        kms_tls_raise_ssl(KMS_ERR_INTERNAL, "SSL_new");
        return NULL;
    }
    uint8_t addr[16];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    int ok = 0;
    if (is_ip) {
        /* RFC 6066 3: SNI carries host names only, never literal addresses. */
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    } else {
        ok = SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
        /* Wildcards only as a whole left-most label (*.example.com), never f*.example.com. */
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    if (!ok) {
        kms_tls_raise_ssl(KMS_ERR_VALIDATION, "setting the expected host name");
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}
