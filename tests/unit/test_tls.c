/* The TLS helper: the profile refuses what Mozilla's intermediate 6.0 leaves out (each refusal
 * next to a plain OpenSSL server that accepts the same client, so the refusal is the helper's),
 * host names are always verified, ALPN, mutual TLS with a CRL, the verified peer's names, and a
 * hot reload. Throwaway certificates are made here with OpenSSL; handshakes run in memory over
 * a BIO pair, client and server stepped in turn. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "kms/tls.h"
#include "testutil.h"
#include "util/util.h"

/* ---- Throwaway PKI ---------------------------------------------------------------------------*/
static char *dir;
static EVP_PKEY *ca_key;
static X509 *ca_cert;

static char *path(const char *name)
{
    return kms_strdup_printf("%s/%s", dir, name);
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by the CA (or by itself when ca is true). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, long serial, bool ca, const char *san,
                       const char *eku)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"kms tests", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, ca ? name : X509_get_subject_name(ca_cert));
    X509_set_pubkey(cert, key);
    X509 *issuer = ca ? cert : ca_cert;
    add_ext(cert, issuer, NID_subject_key_identifier, "hash");
    if (ca) {
        add_ext(cert, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always");
        add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert, issuer, NID_ext_key_usage, eku);
        add_ext(cert, issuer, NID_subject_alt_name, san);
    }
    assert_true(X509_sign(cert, ca ? key : ca_key, EVP_sha256()) > 0);
    return cert;
}

static void write_pem(const char *name, X509 *cert, EVP_PKEY *key, X509_CRL *crl)
{
    char *p = path(name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    if (cert != NULL) {
        assert_int_equal(PEM_write_X509(f, cert), 1);
    }
    if (key != NULL) {
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    }
    if (crl != NULL) {
        assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
    }
    fclose(f);
    free(p);
}

/* A leaf: NAME.crt (the leaf, then the CA: the chain to send) and NAME.key. */
static void make_leaf(const char *name, bool rsa, const char *cn, long serial, const char *san,
                      const char *eku)
{
    EVP_PKEY *key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *cert = make_cert(key, cn, serial, false, san, eku);
    char *crt = kms_strdup_printf("%s.crt", name);
    char *k = kms_strdup_printf("%s.key", name);
    char *p = path(crt);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, cert), 1);
    assert_int_equal(PEM_write_X509(f, ca_cert), 1);
    fclose(f);
    write_pem(k, NULL, key, NULL);
    free(p);
    free(crt);
    free(k);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* The CA's CRL, revoking serial 66 (client "revoked"). */
static void make_crl(void)
{
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert));
    ASN1_TIME *t = X509_gmtime_adj(NULL, -60);
    X509_CRL_set1_lastUpdate(crl, t);
    X509_gmtime_adj(t, 86400);
    X509_CRL_set1_nextUpdate(crl, t);
    X509_REVOKED *rev = X509_REVOKED_new();
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    ASN1_INTEGER_set(serial, 66);
    X509_REVOKED_set_serialNumber(rev, serial);
    X509_gmtime_adj(t, -30);
    X509_REVOKED_set_revocationDate(rev, t);
    assert_int_equal(X509_CRL_add0_revoked(crl, rev), 1);
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
    write_pem("crl.pem", NULL, NULL, crl);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
}

static int group_setup(void **state)
{
    dir = kms_test_tmpdir();
    ca_key = EVP_EC_gen("P-256");
    assert_non_null(ca_key);
    ca_cert = make_cert(ca_key, "kms test CA", 1, true, NULL, NULL);
    write_pem("ca.pem", ca_cert, NULL, NULL);
    const char *server_eku = "serverAuth";
    make_leaf("server", false, "server.test", 11, "DNS:server.test,IP:127.0.0.1", server_eku);
    make_leaf("server2", false, "server.test", 12, "DNS:server.test", server_eku);
    make_leaf("rsa", true, "server.test", 13, "DNS:server.test", server_eku);
    make_leaf("client", false, "app client", 65,
              "DNS:client.test,URI:spiffe://kms/app,email:app@example.com", "clientAuth");
    make_leaf("revoked", false, "revoked client", 66, "DNS:revoked.test", "clientAuth");
    make_crl();
    return 0;
}

static int group_teardown(void **state)
{
    kms_test_rmrf(dir);
    free(dir);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    return 0;
}

/* The reason of the first error of the last failed handshake: the server's, when the server
 * refused the client's hello (the client reads the alert only in a later step). */
static int first_reason;

static kms_tls_server *server_new(const char *leaf, kms_tls_profile profile)
{
    char *crt = kms_strdup_printf("%s/%s.crt", dir, leaf);
    char *key = kms_strdup_printf("%s/%s.key", dir, leaf);
    kms_tls_options o = {.profile = profile, .cert_chain_file = crt, .key_file = key};
    kms_tls_server *srv = kms_tls_server_new(&o);
    assert_non_null(srv);
    free(crt);
    free(key);
    return srv;
}

static SSL_CTX *client_ctx(void)
{
    char *ca = path("ca.pem");
    kms_tls_options o = {.ca_file = ca};
    SSL_CTX *ctx = kms_tls_client_ctx_new(&o);
    assert_non_null(ctx);
    free(ca);
    return ctx;
}

/* A plain OpenSSL client or server with everything allowed down to TLS 1.0: the control. */
static SSL_CTX *plain_ctx(bool server, const char *leaf)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0"), 1);
    if (server) {
        char *crt = kms_strdup_printf("%s/%s.crt", dir, leaf);
        char *key = kms_strdup_printf("%s/%s.key", dir, leaf);
        assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, crt), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
        SSL_CTX_set_dh_auto(ctx, 1);
        free(crt);
        free(key);
    }
    return ctx;
}

/* Connects a client SSL (made by the caller) to srv; returns the handshake's result. */
static int connect_to(kms_tls_server *srv, SSL *c)
{
    SSL *s = kms_tls_server_ssl_new(srv);
    assert_non_null(s);
    int r = kms_test_tls_handshake(c, s, &first_reason);
    SSL_free(s);
    return r;
}

static long peer_serial(SSL *c)
{
    X509 *cert = SSL_get0_peer_certificate(c);
    assert_non_null(cert);
    return ASN1_INTEGER_get(X509_get0_serialNumber(cert));
}

/* ---- Protocol versions and suites ------------------------------------------------------------*/
static void tls13_by_default(void **state)
{
    kms_tls_server *srv = server_new("server", KMS_TLS_INTERMEDIATE);
    SSL_CTX *cctx = client_ctx();
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    assert_non_null(c);
    assert_int_equal(connect_to(srv, c), 0);
    assert_int_equal(SSL_version(c), TLS1_3_VERSION);
    assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
    kms_tls_peer peer;
    assert_int_equal(kms_tls_peer_get(c, &peer), 0);
    assert_string_equal(peer.subject, "CN=server.test,O=kms tests");
    assert_int_equal(peer.n_sans, 2);
    assert_string_equal(peer.sans[0], "DNS:server.test");
    assert_string_equal(peer.sans[1], "IP:127.0.0.1");
    kms_tls_peer_clean_up(&peer);
    SSL_free(c);
    /* By address: matched against the IP SAN. */
    c = kms_tls_client_ssl_new(cctx, "127.0.0.1");
    assert_non_null(c);
    assert_int_equal(connect_to(srv, c), 0);
    SSL_free(c);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
}

static void tls12_ecdhe_aead_only(void **state)
{
    kms_tls_server *srv = server_new("server", KMS_TLS_INTERMEDIATE);
    SSL_CTX *cctx = client_ctx();
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    assert_int_equal(SSL_set_max_proto_version(c, TLS1_2_VERSION), 1);
    assert_int_equal(connect_to(srv, c), 0);
    assert_int_equal(SSL_version(c), TLS1_2_VERSION);
    const char *suite = SSL_get_cipher_name(c);
    assert_true(strncmp(suite, "ECDHE-ECDSA-", 12) == 0);
    assert_true(strstr(suite, "GCM") != NULL || strstr(suite, "CHACHA20") != NULL);
    SSL_free(c);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
}

/* A client offering only `suite`, up to `max_version`: refused by the helper's server for
 * `reason`, accepted by the plain control server with the same certificate. */
static void refused_but_plain_accepts(const char *leaf, int max_version, const char *suite,
                                      int reason)
{
    SSL_CTX *cctx = plain_ctx(false, NULL);
    assert_int_equal(SSL_CTX_set_max_proto_version(cctx, max_version), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, suite), 1);
    SSL_CTX *plain = plain_ctx(true, leaf);
    SSL *c = SSL_new(cctx);
    SSL *s = SSL_new(plain);
    assert_int_equal(kms_test_tls_handshake(c, s, &first_reason), 0);
    SSL_free(c);
    SSL_free(s);
    kms_tls_server *srv = server_new(leaf, KMS_TLS_INTERMEDIATE);
    c = SSL_new(cctx);
    assert_int_equal(connect_to(srv, c), -1);
    assert_int_equal(first_reason, reason);
    SSL_free(c);
    kms_tls_server_free(srv);
    SSL_CTX_free(plain);
    SSL_CTX_free(cctx);
}

static void tls12_cbc_and_rsa_kx_refused(void **state)
{
    const int no_shared = SSL_R_NO_SHARED_CIPHER;
    refused_but_plain_accepts("rsa", TLS1_2_VERSION, "AES128-SHA:@SECLEVEL=0", no_shared);
    refused_but_plain_accepts("rsa", TLS1_2_VERSION, "AES128-GCM-SHA256:@SECLEVEL=0", no_shared);
    refused_but_plain_accepts("rsa", TLS1_2_VERSION, "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
                              no_shared);
    refused_but_plain_accepts("server", TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0",
                              no_shared);
    refused_but_plain_accepts("server", TLS1_2_VERSION, "ECDHE-ECDSA-AES256-SHA384:@SECLEVEL=0",
                              no_shared);
}

static void tls11_and_tls10_refused(void **state)
{
    /* Refused for the version itself (protocol_version), before the suites (there is no AEAD
     * suite before TLS 1.2, so these would fail on the suites too). */
    const int version = SSL_R_UNSUPPORTED_PROTOCOL;
    refused_but_plain_accepts("server", TLS1_1_VERSION, "ALL:@SECLEVEL=0", version);
    refused_but_plain_accepts("server", TLS1_VERSION, "ALL:@SECLEVEL=0", version);
}

static void modern_refuses_tls12(void **state)
{
    kms_tls_server *srv = server_new("server", KMS_TLS_MODERN);
    SSL_CTX *cctx = client_ctx();
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    assert_int_equal(SSL_set_max_proto_version(c, TLS1_2_VERSION), 1);
    assert_int_equal(connect_to(srv, c), -1);
    assert_int_equal(first_reason, SSL_R_UNSUPPORTED_PROTOCOL);
    SSL_free(c);
    c = kms_tls_client_ssl_new(cctx, "server.test");
    assert_int_equal(connect_to(srv, c), 0);
    assert_int_equal(SSL_version(c), TLS1_3_VERSION);
    SSL_free(c);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
}

/* ---- Host names ------------------------------------------------------------------------------*/
static void hostname_always_verified(void **state)
{
    kms_tls_server *srv = server_new("server", KMS_TLS_INTERMEDIATE);
    SSL_CTX *cctx = client_ctx();
    SSL *c = kms_tls_client_ssl_new(cctx, "other.test");
    assert_int_equal(connect_to(srv, c), -1);
    assert_int_equal(SSL_get_verify_result(c), X509_V_ERR_HOSTNAME_MISMATCH);
    SSL_free(c);
    /* An SSL made from the context without a name is refused too, not let through. */
    c = SSL_new(cctx);
    assert_int_equal(connect_to(srv, c), -1);
    assert_int_equal(SSL_get_verify_result(c), X509_V_ERR_HOSTNAME_MISMATCH);
    SSL_free(c);
    SSL_CTX_free(cctx);
    /* A client trusting the system store only does not trust the test CA. */
    cctx = kms_tls_client_ctx_new(NULL);
    assert_non_null(cctx);
    c = kms_tls_client_ssl_new(cctx, "server.test");
    assert_int_equal(connect_to(srv, c), -1);
    assert_int_not_equal(SSL_get_verify_result(c), X509_V_OK);
    SSL_free(c);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
}

/* ---- ALPN ------------------------------------------------------------------------------------*/
static void alpn_server_chooses(void **state)
{
    char *crt = path("server.crt");
    char *key = path("server.key");
    char *ca = path("ca.pem");
    kms_tls_options so = {.cert_chain_file = crt, .key_file = key, .alpn = "h2,http/1.1"};
    kms_tls_server *srv = kms_tls_server_new(&so);
    assert_non_null(srv);
    kms_tls_options co = {.ca_file = ca, .alpn = "http/1.1,h2"};
    SSL_CTX *cctx = kms_tls_client_ctx_new(&co);
    assert_non_null(cctx);
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    assert_int_equal(connect_to(srv, c), 0);
    const unsigned char *proto = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(c, &proto, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(proto, "h2", 2);
    SSL_free(c);
    SSL_CTX_free(cctx);
    /* No protocol in common: refused (no_application_protocol). */
    co.alpn = "smtp";
    cctx = kms_tls_client_ctx_new(&co);
    assert_non_null(cctx);
    c = kms_tls_client_ssl_new(cctx, "server.test");
    assert_int_equal(connect_to(srv, c), -1);
    SSL_free(c);
    SSL_CTX_free(cctx);
    /* Malformed lists. */
    co.alpn = "h2,,http/1.1";
    assert_null(kms_tls_client_ctx_new(&co));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    co.alpn = "";
    assert_null(kms_tls_client_ctx_new(&co));
    kms_tls_server_free(srv);
    free(crt);
    free(key);
    free(ca);
}

/* ---- Mutual TLS ------------------------------------------------------------------------------*/
static kms_tls_server *mtls_server(kms_tls_client_auth mode, bool crl)
{
    char *crt = path("server.crt");
    char *key = path("server.key");
    char *ca = path("ca.pem");
    char *crl_file = path("crl.pem");
    kms_tls_options o = {.cert_chain_file = crt,
                         .key_file = key,
                         .ca_file = ca,
                         .crl_file = crl ? crl_file : NULL,
                         .client_auth = mode};
    kms_tls_server *srv = kms_tls_server_new(&o);
    assert_non_null(srv);
    free(crt);
    free(key);
    free(ca);
    free(crl_file);
    return srv;
}

/* A client presenting NAME.crt (or nothing for NULL); the server side's handshake result, and
 * on success the server's view of the peer in *peer (when peer is not NULL). */
static int mtls_connect(kms_tls_server *srv, const char *name, kms_tls_peer *peer, int *peer_rc)
{
    char *ca = path("ca.pem");
    char *crt = name ? kms_strdup_printf("%s/%s.crt", dir, name) : NULL;
    char *key = name ? kms_strdup_printf("%s/%s.key", dir, name) : NULL;
    kms_tls_options o = {.ca_file = ca, .cert_chain_file = crt, .key_file = key};
    SSL_CTX *cctx = kms_tls_client_ctx_new(&o);
    assert_non_null(cctx);
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    SSL *s = kms_tls_server_ssl_new(srv);
    int r = kms_test_tls_handshake(c, s, &first_reason);
    if (r == 0) {
        kms_test_tls_exchange(
            c, s); /* TLS 1.3: the server's verdict on the client arrives after Finished */
        if (peer != NULL) {
            *peer_rc = kms_tls_peer_get(s, peer);
        }
    }
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(cctx);
    free(ca);
    free(crt);
    free(key);
    return r;
}

static void mtls_require(void **state)
{
    kms_tls_server *srv = mtls_server(KMS_TLS_CLIENT_AUTH_REQUIRE, false);
    assert_int_equal(mtls_connect(srv, NULL, NULL, NULL), -1);
    kms_tls_peer peer;
    int prc = -1;
    assert_int_equal(mtls_connect(srv, "client", &peer, &prc), 0);
    assert_int_equal(prc, 0);
    assert_string_equal(peer.subject, "CN=app client,O=kms tests");
    assert_int_equal(peer.n_sans, 3);
    assert_string_equal(peer.sans[0], "DNS:client.test");
    assert_string_equal(peer.sans[1], "URI:spiffe://kms/app");
    assert_string_equal(peer.sans[2], "email:app@example.com");
    kms_tls_peer_clean_up(&peer);
    /* A server certificate (serverAuth only) is no client certificate. */
    assert_int_equal(mtls_connect(srv, "server2", NULL, NULL), -1);
    kms_tls_server_free(srv);
}

static void mtls_request(void **state)
{
    kms_tls_server *srv = mtls_server(KMS_TLS_CLIENT_AUTH_REQUEST, false);
    kms_tls_peer peer;
    int prc = 0;
    assert_int_equal(mtls_connect(srv, NULL, &peer, &prc), 0);
    assert_int_equal(prc, -1);
    assert_int_equal(kms_last_error(), KMS_ERR_NOT_FOUND);
    assert_null(peer.subject);
    assert_int_equal(mtls_connect(srv, "client", &peer, &prc), 0);
    assert_int_equal(prc, 0);
    kms_tls_peer_clean_up(&peer);
    kms_tls_server_free(srv);
}

static void mtls_crl_refuses_revoked(void **state)
{
    /* Without the CRL the revoked certificate still verifies: the CRL is what refuses it. */
    kms_tls_server *srv = mtls_server(KMS_TLS_CLIENT_AUTH_REQUIRE, false);
    assert_int_equal(mtls_connect(srv, "revoked", NULL, NULL), 0);
    kms_tls_server_free(srv);
    srv = mtls_server(KMS_TLS_CLIENT_AUTH_REQUIRE, true);
    assert_int_equal(mtls_connect(srv, "revoked", NULL, NULL), -1);
    assert_int_equal(mtls_connect(srv, "client", NULL, NULL), 0);
    kms_tls_server_free(srv);
}

/* ---- Options ---------------------------------------------------------------------------------*/
static void server_options_checked(void **state)
{
    char *crt = path("server.crt");
    char *key = path("server.key");
    char *other_key = path("rsa.key");
    kms_tls_options o = {.cert_chain_file = crt};
    assert_null(kms_tls_server_new(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    o.key_file = other_key; /* not the certificate's key */
    assert_null(kms_tls_server_new(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    o.key_file = key;
    o.client_auth = KMS_TLS_CLIENT_AUTH_REQUIRE; /* without a CA file */
    assert_null(kms_tls_server_new(&o));
    o.client_auth = KMS_TLS_CLIENT_AUTH_NONE;
    o.crl_file = crt; /* a CRL without mutual TLS */
    assert_null(kms_tls_server_new(&o));
    o.crl_file = NULL;
    o.profile = (kms_tls_profile)7;
    assert_null(kms_tls_server_new(&o));
    /* A client: a certificate without its key, and server-only options. */
    kms_tls_options co = {.cert_chain_file = crt};
    assert_null(kms_tls_client_ctx_new(&co));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    co = (kms_tls_options){.crl_file = crt};
    assert_null(kms_tls_client_ctx_new(&co));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    co = (kms_tls_options){.client_auth = KMS_TLS_CLIENT_AUTH_REQUIRE};
    assert_null(kms_tls_client_ctx_new(&co));
    co = (kms_tls_options){.profile = KMS_TLS_MODERN};
    SSL_CTX *ctx = kms_tls_client_ctx_new(&co);
    assert_non_null(ctx);
    SSL_CTX_free(ctx);
    free(crt);
    free(key);
    free(other_key);
}

/* ---- Hot reload ------------------------------------------------------------------------------*/
static void reload_switches_new_handshakes_only(void **state)
{
    kms_tls_server *srv = server_new("server", KMS_TLS_INTERMEDIATE);
    SSL_CTX *cctx = client_ctx();
    /* A connection opened before the reload, with a session ticket kept for later. */
    SSL *old_c = kms_tls_client_ssl_new(cctx, "server.test");
    SSL *old_s = kms_tls_server_ssl_new(srv);
    assert_int_equal(kms_test_tls_handshake(old_c, old_s, &first_reason), 0);
    assert_int_equal(peer_serial(old_c), 11);
    kms_test_tls_exchange(old_c, old_s);
    SSL_SESSION *ticket = SSL_get1_session(old_c);
    assert_non_null(ticket);
    assert_true(SSL_SESSION_is_resumable(ticket));

    char *crt = path("server2.crt");
    char *key = path("server2.key");
    char *bad = path("rsa.key");
    /* A failed reload leaves the current certificate in use. */
    assert_int_equal(kms_tls_server_reload(srv, crt, bad), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    assert_int_equal(connect_to(srv, c), 0);
    assert_int_equal(peer_serial(c), 11);
    SSL_free(c);

    assert_int_equal(kms_tls_server_reload(srv, crt, key), 0);
    c = kms_tls_client_ssl_new(cctx, "server.test");
    assert_int_equal(connect_to(srv, c), 0);
    assert_int_equal(peer_serial(c), 12);
    SSL_free(c);
    /* The connection from before still works, on its old certificate. */
    kms_test_tls_exchange(old_c, old_s);
    assert_int_equal(peer_serial(old_c), 11);
    /* And its ticket resumes on the new context (the ticket keys came across). */
    c = kms_tls_client_ssl_new(cctx, "server.test");
    assert_int_equal(SSL_set_session(c, ticket), 1);
    assert_int_equal(connect_to(srv, c), 0);
    assert_int_equal(SSL_session_reused(c), 1);
    SSL_free(c);
    /* NULL, NULL reads the same files again; the context survives its server. */
    assert_int_equal(kms_tls_server_reload(srv, NULL, NULL), 0);
    SSL_CTX *ctx = kms_tls_server_ctx_get(srv);
    assert_non_null(ctx);
    kms_tls_server_free(srv);
    kms_test_tls_exchange(old_c, old_s);
    SSL_CTX_free(ctx);

    SSL_SESSION_free(ticket);
    SSL_free(old_c);
    SSL_free(old_s);
    SSL_CTX_free(cctx);
    free(crt);
    free(key);
    free(bad);
}

/* Reloads in one thread while the main thread makes connections: every handshake completes, on
 * one certificate or the other. */
static void *reloader(void *arg)
{
    kms_tls_server *srv = arg;
    char *crt[2] = {path("server.crt"), path("server2.crt")};
    char *key[2] = {path("server.key"), path("server2.key")};
    void *failed = NULL;
    for (int i = 0; i < 40 && failed == NULL; i++) {
        if (kms_tls_server_reload(srv, crt[i % 2], key[i % 2]) != 0) {
            failed = srv;
        }
    }
    for (int i = 0; i < 2; i++) {
        free(crt[i]);
        free(key[i]);
    }
    return failed;
}

static void reload_while_serving(void **state)
{
    kms_tls_server *srv = server_new("server", KMS_TLS_INTERMEDIATE);
    SSL_CTX *cctx = client_ctx();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reloader, srv), 0);
    for (int i = 0; i < 40; i++) {
        SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
        SSL *s = kms_tls_server_ssl_new(srv);
        assert_int_equal(kms_test_tls_handshake(c, s, &first_reason), 0);
        long serial = peer_serial(c);
        assert_true(serial == 11 || serial == 12);
        SSL_free(c);
        SSL_free(s);
    }
    void *failed = NULL;
    assert_int_equal(pthread_join(t, &failed), 0);
    assert_null(failed);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
}

static void tickets_can_be_disabled(void **state)
{
    char *crt = path("server.crt");
    char *key = path("server.key");
    kms_tls_options o = {.cert_chain_file = crt, .key_file = key, .disable_session_tickets = true};
    kms_tls_server *srv = kms_tls_server_new(&o);
    assert_non_null(srv);
    SSL_CTX *cctx = client_ctx();
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    SSL *s = kms_tls_server_ssl_new(srv);
    assert_int_equal(kms_test_tls_handshake(c, s, &first_reason), 0);
    kms_test_tls_exchange(c, s);
    SSL_SESSION *sess = SSL_get1_session(c);
    assert_false(SSL_SESSION_is_resumable(sess));
    SSL_SESSION_free(sess);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
    free(crt);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls13_by_default),
        cmocka_unit_test(tls12_ecdhe_aead_only),
        cmocka_unit_test(tls12_cbc_and_rsa_kx_refused),
        cmocka_unit_test(tls11_and_tls10_refused),
        cmocka_unit_test(modern_refuses_tls12),
        cmocka_unit_test(hostname_always_verified),
        cmocka_unit_test(alpn_server_chooses),
        cmocka_unit_test(mtls_require),
        cmocka_unit_test(mtls_request),
        cmocka_unit_test(mtls_crl_refuses_revoked),
        cmocka_unit_test(server_options_checked),
        cmocka_unit_test(reload_switches_new_handshakes_only),
        cmocka_unit_test(reload_while_serving),
        cmocka_unit_test(tickets_can_be_disabled),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
