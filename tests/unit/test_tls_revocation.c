/* The TLS helper under mutual TLS with a CRL (issue 16, from its hostile review): a client whose
 * certificate was revoked cannot resume a session after the server reloaded the CRL, and a
 * client under a revoked issuing CA is refused (every certificate of the chain is checked). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "kms/tls.h"

static char dir[] = "/tmp/kms-tls-revocation.XXXXXX";
static EVP_PKEY *ca_key, *inter_key;
static X509 *ca_cert, *inter_cert;

static char *path(const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
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

/* key's certificate from issuer (NULL: self-signed), CA or leaf. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, long serial, X509 *issuer, EVP_PKEY *ikey,
                       bool ca, const char *eku)
{
    X509 *cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(cert, key);
    X509 *is = issuer ? issuer : cert;
    add_ext(cert, is, NID_subject_key_identifier, "hash");
    if (issuer != NULL) {
        add_ext(cert, is, NID_authority_key_identifier, "keyid:always");
    }
    if (ca) {
        add_ext(cert, is, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert, is, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(cert, is, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert, is, NID_ext_key_usage, eku);
        add_ext(cert, is, NID_subject_alt_name, "DNS:server.test");
    }
    assert_true(X509_sign(cert, ikey ? ikey : key, EVP_sha256()) > 0);
    return cert;
}

static void write_certs(const char *name, X509 *a, X509 *b, X509 *c, EVP_PKEY *key)
{
    char *p = path(name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    X509 *all[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        if (all[i] != NULL) {
            assert_int_equal(PEM_write_X509(f, all[i]), 1);
        }
    }
    if (key != NULL) {
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    }
    fclose(f);
    free(p);
}

static X509_CRL *crl_of(X509 *issuer, EVP_PKEY *ikey, long revoked)
{
    X509_CRL *crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
    ASN1_TIME *t = X509_gmtime_adj(NULL, -60);
    X509_CRL_set1_lastUpdate(crl, t);
    X509_gmtime_adj(t, 86400);
    X509_CRL_set1_nextUpdate(crl, t);
    if (revoked > 0) {
        X509_REVOKED *rev = X509_REVOKED_new();
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        ASN1_INTEGER_set(sn, revoked);
        X509_REVOKED_set_serialNumber(rev, sn);
        X509_gmtime_adj(t, -3630);
        X509_REVOKED_set_revocationDate(rev, t);
        X509_CRL_add0_revoked(crl, rev);
        ASN1_INTEGER_free(sn);
    }
    ASN1_TIME_free(t);
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, ikey, EVP_sha256()) > 0);
    return crl;
}

static void write_crls(const char *name, X509_CRL *a, X509_CRL *b)
{
    char *p = path(name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509_CRL(f, a), 1);
    if (b != NULL) {
        assert_int_equal(PEM_write_X509_CRL(f, b), 1);
    }
    fclose(f);
    free(p);
    X509_CRL_free(a);
    X509_CRL_free(b);
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    ca_key = EVP_EC_gen("P-256");
    inter_key = EVP_EC_gen("P-256");
    EVP_PKEY *sk = EVP_EC_gen("P-256"), *ck = EVP_EC_gen("P-256"), *ik = EVP_EC_gen("P-256");
    ca_cert = make_cert(ca_key, "review root", 1, NULL, NULL, true, NULL);
    inter_cert = make_cert(inter_key, "review issuing CA", 2, ca_cert, ca_key, true, NULL);
    X509 *server = make_cert(sk, "server.test", 10, ca_cert, ca_key, false, "serverAuth");
    X509 *client = make_cert(ck, "client", 65, ca_cert, ca_key, false, "clientAuth");
    X509 *iclient =
        make_cert(ik, "client via issuing CA", 70, inter_cert, inter_key, false, "clientAuth");
    write_certs("ca.pem", ca_cert, NULL, NULL, NULL);
    write_certs("server.crt", server, ca_cert, NULL, NULL);
    write_certs("server.key", NULL, NULL, NULL, sk);
    write_certs("client.crt", client, ca_cert, NULL, NULL);
    write_certs("client.key", NULL, NULL, NULL, ck);
    write_certs("iclient.crt", iclient, inter_cert, NULL, NULL);
    write_certs("iclient.key", NULL, NULL, NULL, ik);
    X509_free(server);
    X509_free(client);
    X509_free(iclient);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
    EVP_PKEY_free(ik);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    X509_free(ca_cert);
    X509_free(inter_cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(inter_key);
    return 0;
}

static bool step_ok(SSL *ssl, int rc)
{
    if (rc == 1) {
        return true;
    }
    int e = SSL_get_error(ssl, rc);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Handshake over a BIO pair, then one message each way (TLS 1.3: the ticket and the server's
 * verdict on the client arrive after Finished). 0: both sides done and data flowed. */
static int connect_pair(SSL *c, SSL *s)
{
    BIO *bc = NULL, *bs = NULL;
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    int done = 0;
    for (int i = 0; i < 50 && !done; i++) {
        int rc = SSL_do_handshake(c);
        int rs = SSL_do_handshake(s);
        if (!step_ok(c, rc) || !step_ok(s, rs)) {
            ERR_clear_error();
            return -1;
        }
        done = rc == 1 && rs == 1;
    }
    char buf[8];
    if (!done || SSL_write(c, "ping", 4) != 4 || SSL_read(s, buf, sizeof buf) != 4 ||
        SSL_write(s, "pong", 4) != 4 || SSL_read(c, buf, sizeof buf) != 4) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static kms_tls_server *mtls_server(void)
{
    char *crt = path("server.crt"), *key = path("server.key"), *ca = path("ca.pem");
    char *crl = path("crl.pem");
    kms_tls_options o = {.cert_chain_file = crt,
                         .key_file = key,
                         .ca_file = ca,
                         .crl_file = crl,
                         .client_auth = KMS_TLS_CLIENT_AUTH_REQUIRE};
    kms_tls_server *srv = kms_tls_server_new(&o);
    assert_non_null(srv);
    free(crt);
    free(key);
    free(ca);
    free(crl);
    return srv;
}

static SSL_CTX *client_ctx(const char *name)
{
    char *ca = path("ca.pem"), *crt = NULL, *key = NULL;
    assert_true(asprintf(&crt, "%s/%s.crt", dir, name) > 0);
    assert_true(asprintf(&key, "%s/%s.key", dir, name) > 0);
    kms_tls_options o = {.ca_file = ca, .cert_chain_file = crt, .key_file = key};
    SSL_CTX *ctx = kms_tls_client_ctx_new(&o);
    assert_non_null(ctx);
    free(ca);
    free(crt);
    free(key);
    return ctx;
}

/* 1. The client's certificate is revoked, the CRL reissued and the server reloaded: its old
 * session ticket must not let it back in (the ticket keys survive the reload, and a resumed
 * session is never checked against the CRL again). */
static void revoked_client_cannot_resume(void **state)
{
    (void)state;
    write_crls("crl.pem", crl_of(ca_cert, ca_key, 0), NULL); /* nothing revoked yet */
    kms_tls_server *srv = mtls_server();
    SSL_CTX *cctx = client_ctx("client");
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    SSL *s = kms_tls_server_ssl_new(srv);
    assert_int_equal(connect_pair(c, s), 0);
    SSL_SESSION *ticket = SSL_get1_session(c);
    assert_true(SSL_SESSION_is_resumable(ticket));
    SSL_shutdown(c); /* a clean close: SSL_free would otherwise mark the session not resumable */
    SSL_free(c);
    SSL_free(s);

    /* Control: the ticket resumes while the client is in good standing. */
    c = kms_tls_client_ssl_new(cctx, "server.test");
    s = kms_tls_server_ssl_new(srv);
    assert_int_equal(SSL_set_session(c, ticket), 1);
    assert_int_equal(connect_pair(c, s), 0);
    assert_int_equal(SSL_session_reused(c), 1);
    SSL_shutdown(c);
    SSL_free(c);
    SSL_free(s);

    write_crls("crl.pem", crl_of(ca_cert, ca_key, 65), NULL); /* the client is revoked */
    assert_int_equal(kms_tls_server_reload(srv, NULL, NULL), 0);
    c = kms_tls_client_ssl_new(cctx, "server.test");
    s = kms_tls_server_ssl_new(srv);
    assert_int_equal(connect_pair(c, s), -1); /* a full handshake is refused: the CRL works */
    SSL_free(c);
    SSL_free(s);

    c = kms_tls_client_ssl_new(cctx, "server.test");
    s = kms_tls_server_ssl_new(srv);
    assert_int_equal(SSL_set_session(c, ticket), 1);
    int r = connect_pair(c, s);
    kms_tls_peer peer;
    int prc = r == 0 ? kms_tls_peer_get(s, &peer) : -1;
    print_message("resume: handshake %d, reused %d, peer %d\n", r, SSL_session_reused(c), prc);
    if (prc == 0) {
        print_error("resumed=%d, peer=%s: the revoked client is in\n", SSL_session_reused(s),
                    peer.subject);
        kms_tls_peer_clean_up(&peer);
    }
    assert_int_not_equal(prc, 0); /* secure: refused, or at least no verified peer */
    SSL_free(c);
    SSL_free(s);
    SSL_SESSION_free(ticket);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
}

/* 2. The issuing CA itself is revoked by the root's CRL (in the CRL file): its clients must be
 * refused (RFC 5280 6.3 checks every certificate of the path, X509_V_FLAG_CRL_CHECK_ALL). */
static void client_of_revoked_issuing_ca_refused(void **state)
{
    (void)state;
    write_crls("crl.pem", crl_of(ca_cert, ca_key, 2), crl_of(inter_cert, inter_key, 0));
    kms_tls_server *srv = mtls_server();
    SSL_CTX *cctx = client_ctx("iclient");
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    SSL *s = kms_tls_server_ssl_new(srv);
    int r = connect_pair(c, s);
    if (r == 0) {
        print_error("a client under a revoked issuing CA got in\n");
    }
    assert_int_equal(r, -1);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(revoked_client_cannot_resume),
        cmocka_unit_test(client_of_revoked_issuing_ca_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
