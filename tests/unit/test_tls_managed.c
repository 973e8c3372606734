/* Servers of managed certificates (src/tls/tls_managed.c): a TLS server made from a certificate
 * ARN of the home's certificate manager serves that certificate with its key in the HSM (or
 * unsealed), marks it in use, and picks up a renewal at the next connection a second later
 * while connections already open keep the old certificate. Handshakes run in memory (BIO
 * pairs) against a client context that trusts the home's root CA. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kms/kms.h"
#include "kms/tls.h"
#include "pki/acm.h"
#include "service/acm_service.h"
#include "testutil.h"
#include "tls/tls_hsm.h"
#include "tls/tls_managed.h"
#include "tls/tls_server.h"
#include "util/util.h"

static char *dir;
static char *ca_file;
static kms_client *svc;
static char ca_arn[256];

static int group_setup(void **state)
{
    (void)state;
    dir = kms_test_tmpdir();
    if ((svc = kms_test_home_open(dir)) == NULL) {
        return -1;
    }
    kms_test_root_ca(svc, "Managed TLS Root", 0, ca_arn, sizeof ca_arn);
    json_t *r;
    r = kms_test_call(svc, "acm-pca:GetCertificateAuthorityCertificate",
                      "{\"CertificateAuthorityArn\": \"%s\"}", ca_arn);
    ca_file = kms_path_join(dir, "ca.pem");
    FILE *f = fopen(ca_file, "w");
    assert_non_null(f);
    fputs(json_string_value(json_object_get(r, "Certificate")), f);
    fclose(f);
    json_decref(r);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kms_client_free(svc);
    kms_test_rmrf(dir);
    free(ca_file);
    free(dir);
    return 0;
}

static void request(bool exportable, char arn[256])
{
    json_t *r =
        kms_test_call(svc, "acm:RequestCertificate",
                      "{\"DomainName\": \"app.internal\", \"KeyAlgorithm\": \"EC_prime256v1\", "
                      "\"CertificateAuthorityArn\": \"%s\"%s}",
                      ca_arn, exportable ? ", \"Options\": {\"Export\": \"ENABLED\"}" : "");
    snprintf(arn, 256, "%s", json_string_value(json_object_get(r, "CertificateArn")));
    json_decref(r);
}

/* The serial DescribeCertificate shows ("0a:1b:..."), as an ASN1_INTEGER. */
static ASN1_INTEGER *described_serial(const char *arn)
{
    json_t *r = kms_test_call(svc, "acm:DescribeCertificate", "{\"CertificateArn\": \"%s\"}", arn);
    const char *s = json_string_value(json_object_get(json_object_get(r, "Certificate"), "Serial"));
    assert_non_null(s);
    char hex[128] = "";
    for (size_t i = 0, n = 0; s[i] != '\0' && n + 1 < sizeof hex; i++) {
        if (s[i] != ':') {
            hex[n++] = s[i];
            hex[n] = '\0';
        }
    }
    BIGNUM *bn = NULL;
    assert_true(BN_hex2bn(&bn, hex) > 0);
    ASN1_INTEGER *a = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    json_decref(r);
    return a;
}

static bool in_use_by(const char *arn, const char *name)
{
    json_t *r = kms_test_call(svc, "acm:DescribeCertificate", "{\"CertificateArn\": \"%s\"}", arn);
    json_t *list = json_object_get(json_object_get(r, "Certificate"), "InUseBy");
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        found = found || strcmp(json_string_value(v), name) == 0;
    }
    json_decref(r);
    return found;
}

static bool in_use_by_prefix(const char *arn, const char *prefix)
{
    json_t *r = kms_test_call(svc, "acm:DescribeCertificate", "{\"CertificateArn\": \"%s\"}", arn);
    json_t *list = json_object_get(json_object_get(r, "Certificate"), "InUseBy");
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        found = found || strncmp(json_string_value(v), prefix, strlen(prefix)) == 0;
    }
    json_decref(r);
    return found;
}

static int delete_certificate(const char *arn)
{
    char req[512];
    char *resp = NULL;
    snprintf(req, sizeof req, "{\"CertificateArn\": \"%s\"}", arn);
    int r = kms_call(svc, "acm:DeleteCertificate", req, &resp);
    kms_string_free(resp);
    return r;
}

/* Two servers of one certificate in one process: freeing one leaves the other's InUseBy. A
 * server killed outright leaves its name, which DeleteCertificate drops once its process is
 * gone; a live one's it keeps. */
static void in_use_by_each_server(void **state)
{
    (void)state;
    char arn[256];
    request(false, arn);
    kms_tls_options o = {.client = svc, .certificate_arn = arn};
    kms_tls_server *one = kms_tls_server_new(&o);
    kms_tls_server *two = kms_tls_server_new(&o);
    assert_non_null(one);
    assert_non_null(two);
    kms_tls_server_free(one);
    assert_int_equal(delete_certificate(arn), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_RESOURCE_IN_USE);
    kms_tls_server_free(two);
    /* A process that is gone, then one that lives (this one, a server it never made). */
    pid_t child = fork();
    if (child == 0) {
        _exit(0);
    }
    assert_true(child > 0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    char gone[KMS_ACM_IN_USE_NAME_MAX], live[KMS_ACM_IN_USE_NAME_MAX];
    kms_acm_tls_server_name(child, 1, gone);
    kms_acm_tls_server_name(getpid(), 999, live);
    assert_int_equal(kms_acm_service_in_use(svc, arn, gone, true), 0);
    assert_int_equal(kms_acm_service_in_use(svc, arn, live, true), 0);
    assert_int_equal(delete_certificate(arn), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_RESOURCE_IN_USE);
    assert_false(in_use_by(arn, gone));
    assert_true(in_use_by(arn, live));
    assert_int_equal(kms_acm_service_in_use(svc, arn, live, false), 0);
    assert_int_equal(delete_certificate(arn), 0);
}

/* A connection: client and server ends after a handshake to app.internal. */
typedef struct conn {
    SSL *c, *s;
} conn;

static void connect_to(kms_tls_server *srv, SSL_CTX *cctx, conn *out)
{
    out->c = kms_tls_client_ssl_new(cctx, "app.internal");
    out->s = kms_tls_server_ssl_new(srv);
    assert_non_null(out->c);
    assert_non_null(out->s);
    assert_int_equal(kms_test_tls_handshake(out->c, out->s, NULL), 0);
    kms_test_tls_exchange(out->c, out->s);
}

static void conn_close(conn *c)
{
    SSL_free(c->c);
    SSL_free(c->s);
}

static const ASN1_INTEGER *peer_serial(const conn *c)
{
    return X509_get0_serialNumber(SSL_get0_peer_certificate(c->c));
}

static SSL_CTX *client_ctx(void)
{
    kms_tls_options o = {.ca_file = ca_file};
    SSL_CTX *ctx = kms_tls_client_ctx_new(&o);
    assert_non_null(ctx);
    return ctx;
}

/* The key in the HSM: every handshake signs there; DeleteCertificate is refused while the server
 * lives; a renewal reaches new connections, not the one already open. */
static void served_from_the_hsm_and_renewed(void **state)
{
    (void)state;
    char arn[256];
    char *resp = NULL;
    conn first, old, renewed;
    request(false, arn);
    kms_tls_options o = {.client = svc, .certificate_arn = arn, .in_use_by = "test:443"};
    kms_tls_server *srv = kms_tls_server_new(&o);
    if (srv == NULL) {
        fail_msg("server: %s", kms_last_error_message());
    }
    SSL_CTX *cctx = client_ctx();
    uint64_t signs = kms_tls_hsm_sign_count();
    connect_to(srv, cctx, &first);
    assert_int_equal(kms_tls_hsm_sign_count() - signs, 1);
    ASN1_INTEGER *serial1 = described_serial(arn);
    assert_int_equal(ASN1_INTEGER_cmp(peer_serial(&first), serial1), 0);
    assert_true(in_use_by(arn, "test:443"));
    char req[512];
    snprintf(req, sizeof req, "{\"CertificateArn\": \"%s\"}", arn);
    assert_int_equal(kms_call(svc, "acm:DeleteCertificate", req, &resp), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_RESOURCE_IN_USE);

    connect_to(srv, cctx, &old);
    json_decref(kms_test_call(svc, "acm:RenewCertificate", "{\"CertificateArn\": \"%s\"}", arn));
    ASN1_INTEGER *serial2 = described_serial(arn);
    assert_int_not_equal(ASN1_INTEGER_cmp(serial1, serial2), 0);
    usleep(1100 * 1000); /* the server looks once a second */
    connect_to(srv, cctx, &renewed);
    assert_int_equal(ASN1_INTEGER_cmp(peer_serial(&renewed), serial2), 0);
    assert_int_equal(kms_tls_managed_generation(kms_tls_server_managed(srv)), 2);
    /* The connection made before the renewal goes on with its certificate. */
    kms_test_tls_exchange(old.c, old.s);
    assert_int_equal(ASN1_INTEGER_cmp(peer_serial(&old), serial1), 0);

    conn_close(&first);
    conn_close(&old);
    conn_close(&renewed);
    kms_tls_server_free(srv);
    assert_false(in_use_by(arn, "test:443"));
    assert_int_equal(kms_call(svc, "acm:DeleteCertificate", req, &resp), 0);
    kms_string_free(resp);
    ASN1_INTEGER_free(serial1);
    ASN1_INTEGER_free(serial2);
    SSL_CTX_free(cctx);
}

/* An exportable certificate's key is unsealed into memory: no HSM signature per handshake. */
static void served_from_a_sealed_key(void **state)
{
    (void)state;
    char arn[256];
    conn c;
    request(true, arn);
    kms_tls_options o = {.client = svc, .certificate_arn = arn};
    kms_tls_server *srv = kms_tls_server_new(&o);
    assert_non_null(srv);
    SSL_CTX *cctx = client_ctx();
    uint64_t signs = kms_tls_hsm_sign_count();
    connect_to(srv, cctx, &c);
    assert_int_equal(kms_tls_hsm_sign_count() - signs, 0);
    ASN1_INTEGER *serial = described_serial(arn);
    assert_int_equal(ASN1_INTEGER_cmp(peer_serial(&c), serial), 0);
    char name[KMS_ACM_IN_USE_NAME_MAX];
    kms_acm_tls_server_name(getpid(), 1, name);
    *strrchr(name, ':') = '\0'; /* "kms-tls-server:HOST:PID" then ":N" */
    assert_true(in_use_by_prefix(arn, name));
    conn_close(&c);
    kms_tls_server_free(srv);
    ASN1_INTEGER_free(serial);
    SSL_CTX_free(cctx);
}

/* Files beside an ARN, no client, an ARN the home does not have: refused, nothing marked. */
static void bad_options_refused(void **state)
{
    (void)state;
    char arn[256];
    request(false, arn);
    kms_tls_options both = {.client = svc, .certificate_arn = arn, .key_file = "k.pem"};
    assert_null(kms_tls_server_new(&both));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    kms_tls_options no_client = {.certificate_arn = arn};
    assert_null(kms_tls_server_new(&no_client));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    char missing[300];
    snprintf(missing, sizeof missing, "%.*s00000000-0000-4000-8000-000000000000",
             (int)(strrchr(arn, '/') + 1 - arn), arn);
    kms_tls_options nothing = {.client = svc, .certificate_arn = missing};
    assert_null(kms_tls_server_new(&nothing));
    assert_int_equal(kms_last_error(), KMS_ERR_RESOURCE_NOT_FOUND);
    assert_false(in_use_by(arn, "kms-tls-server"));
}

/* ---- CAs of the manager (ca_arn)
 * ---------------------------------------------------------------*/

/* A client certificate of the CA (EndEntityClientAuthCertificate) for a key made here: writes
 * DIR/NAME.pem (certificate) and DIR/NAME.key; *serial gets its serial as hex. */
static void client_certificate(const char *ca, const char *name, char serial[64])
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    assert_non_null(key);
    X509_REQ_set_version(req, 0);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                               (const unsigned char *)name, -1, -1, 0);
    X509_REQ_set_pubkey(req, key);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    char b64[4096];
    assert_true(EVP_EncodeBlock((unsigned char *)b64, der, n) > 0);
    OPENSSL_free(der);
    json_t *r = kms_test_call(
        svc, "acm-pca:IssueCertificate",
        "{\"CertificateAuthorityArn\": \"%s\", \"Csr\": \"%s\", \"SigningAlgorithm\": "
        "\"SHA256WITHECDSA\", \"TemplateArn\": "
        "\"arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1\", "
        "\"Validity\": {\"Value\": 30, \"Type\": \"DAYS\"}}",
        ca, b64);
    const char *cert_arn = json_string_value(json_object_get(r, "CertificateArn"));
    assert_non_null(cert_arn);
    snprintf(serial, 64, "%s", strrchr(cert_arn, '/') + 1);
    json_t *g = kms_test_call(svc, "acm-pca:GetCertificate",
                              "{\"CertificateAuthorityArn\": \"%s\", \"CertificateArn\": \"%s\"}",
                              ca, cert_arn);
    json_decref(r);
    char *path = kms_strdup_printf("%s/%s.pem", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(json_string_value(json_object_get(g, "Certificate")), f);
    fclose(f);
    free(path);
    path = kms_strdup_printf("%s/%s.key", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    free(path);
    json_decref(g);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

/* A client trusting the home's CA by ARN verifies the managed server; one trusting another CA
 * of the home does not. */
static void client_trusts_a_ca_by_arn(void **state)
{
    (void)state;
    char arn[256], other[256];
    conn c;
    request(false, arn);
    kms_test_root_ca(svc, "Another Root", false, other, sizeof other);
    kms_tls_options so = {.client = svc, .certificate_arn = arn};
    kms_tls_server *srv = kms_tls_server_new(&so);
    assert_non_null(srv);
    kms_tls_options co = {.client = svc, .ca_arn = ca_arn};
    SSL_CTX *cctx = kms_tls_client_ctx_new(&co);
    assert_non_null(cctx);
    connect_to(srv, cctx, &c);
    conn_close(&c);
    SSL_CTX_free(cctx);
    kms_tls_options wrong = {.client = svc, .ca_arn = other};
    cctx = kms_tls_client_ctx_new(&wrong);
    assert_non_null(cctx);
    c.c = kms_tls_client_ssl_new(cctx, "app.internal");
    c.s = kms_tls_server_ssl_new(srv);
    assert_int_equal(kms_test_tls_handshake(c.c, c.s, NULL), -1);
    assert_int_equal(SSL_get_verify_result(c.c), X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
    conn_close(&c);
    SSL_CTX_free(cctx);
    kms_tls_options no_client = {.ca_arn = ca_arn};
    assert_null(kms_tls_client_ctx_new(&no_client));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    kms_tls_server_free(srv);
}

/* Mutual TLS against a CA of the manager that publishes CRLs: a client certificate it issued
 * is let in; none, or one revoked since (the CRL reissued at once, taken up within a second by
 * the running server), is refused. */
static void mutual_tls_against_a_ca_by_arn(void **state)
{
    (void)state;
    char crl_ca[256], arn[256], serial[64];
    char *resp = NULL;
    conn c;
    kms_test_root_ca(svc, "Clients Root", true, crl_ca, sizeof crl_ca);
    request(false, arn);
    client_certificate(crl_ca, "client-one", serial);
    kms_tls_options so = {.client = svc,
                          .certificate_arn = arn,
                          .ca_arn = crl_ca,
                          .client_auth = KMS_TLS_CLIENT_AUTH_REQUIRE};
    kms_tls_server *srv = kms_tls_server_new(&so);
    if (srv == NULL) {
        fail_msg("server: %s", kms_last_error_message());
    }
    char *cert = kms_strdup_printf("%s/client-one.pem", dir);
    char *key = kms_strdup_printf("%s/client-one.key", dir);
    kms_tls_options with = {.ca_file = ca_file, .cert_chain_file = cert, .key_file = key};
    kms_tls_options without = {.ca_file = ca_file};
    SSL_CTX *cwith = kms_tls_client_ctx_new(&with);
    SSL_CTX *cwithout = kms_tls_client_ctx_new(&without);
    assert_non_null(cwith);
    assert_non_null(cwithout);
    connect_to(srv, cwith, &c);
    kms_tls_peer peer;
    assert_int_equal(kms_tls_peer_get(c.s, &peer), 0);
    assert_string_equal(peer.subject, "CN=client-one");
    kms_tls_peer_clean_up(&peer);
    conn_close(&c);
    /* No certificate: refused. TLS 1.3 clients learn it after their Finished. */
    c.c = kms_tls_client_ssl_new(cwithout, "app.internal");
    c.s = kms_tls_server_ssl_new(srv);
    assert_int_equal(kms_test_tls_handshake(c.c, c.s, NULL), -1);
    conn_close(&c);
    /* Revoked: the CA reissues its CRL; the server takes it up a second later. */
    char req[512];
    snprintf(req, sizeof req,
             "{\"CertificateAuthorityArn\": \"%s\", \"CertificateSerial\": \"%s\", "
             "\"RevocationReason\": \"KEY_COMPROMISE\"}",
             crl_ca, serial);
    assert_int_equal(kms_call(svc, "acm-pca:RevokeCertificate", req, &resp), 0);
    kms_string_free(resp);
    usleep(1100 * 1000);
    c.c = kms_tls_client_ssl_new(cwith, "app.internal");
    c.s = kms_tls_server_ssl_new(srv);
    assert_int_equal(kms_test_tls_handshake(c.c, c.s, NULL), -1);
    assert_int_equal(SSL_get_verify_result(c.s), X509_V_ERR_CERT_REVOKED);
    conn_close(&c);
    kms_tls_server_free(srv);
    /* A CRL the server cannot read: it does not start. */
    char *crl = kms_strdup_printf("%s/home/crl/%s.crl", dir, strrchr(crl_ca, '/') + 1);
    assert_int_equal(unlink(crl), 0);
    assert_null(kms_tls_server_new(&so));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    free(crl);
    free(cert);
    free(key);
    SSL_CTX_free(cwith);
    SSL_CTX_free(cwithout);
}

/* The clients' CA changes under a running server: CRLs enabled after it started are taken up; a
 * reissued CRL copied in with the old file's times (cp -p) is taken up too; a CRL that cannot be
 * read keeps the current context and is tried again ever later (1, 2, 4 s...), not each second. */
static void crl_changes_under_a_running_server(void **state)
{
    (void)state;
    char ca[256], arn[256], s1[64], s2[64];
    char *resp = NULL;
    char req[512];
    conn c;
    kms_test_root_ca(svc, "Later CRL Root", false, ca, sizeof ca);
    request(false, arn);
    client_certificate(ca, "client-two", s1);
    client_certificate(ca, "client-three", s2);
    kms_tls_options so = {.client = svc,
                          .certificate_arn = arn,
                          .ca_arn = ca,
                          .client_auth = KMS_TLS_CLIENT_AUTH_REQUIRE};
    kms_tls_server *srv = kms_tls_server_new(&so);
    assert_non_null(srv);
    char *cert2 = kms_strdup_printf("%s/client-two.pem", dir);
    char *key2 = kms_strdup_printf("%s/client-two.key", dir);
    char *cert3 = kms_strdup_printf("%s/client-three.pem", dir);
    char *key3 = kms_strdup_printf("%s/client-three.key", dir);
    kms_tls_options o2 = {.ca_file = ca_file, .cert_chain_file = cert2, .key_file = key2};
    kms_tls_options o3 = {.ca_file = ca_file, .cert_chain_file = cert3, .key_file = key3};
    SSL_CTX *c2 = kms_tls_client_ctx_new(&o2);
    SSL_CTX *c3 = kms_tls_client_ctx_new(&o3);
    assert_non_null(c2);
    assert_non_null(c3);
    snprintf(req, sizeof req,
             "{\"CertificateAuthorityArn\": \"%s\", \"CertificateSerial\": \"%s\", "
             "\"RevocationReason\": \"KEY_COMPROMISE\"}",
             ca, s1);
    assert_int_equal(kms_call(svc, "acm-pca:RevokeCertificate", req, &resp), 0);
    kms_string_free(resp);
    connect_to(srv, c2, &c); /* no CRL yet: nothing to check against */
    conn_close(&c);
    snprintf(req, sizeof req,
             "{\"CertificateAuthorityArn\": \"%s\", \"RevocationConfiguration\": "
             "{\"CrlConfiguration\": {\"Enabled\": true, \"ExpirationInDays\": 7}}}",
             ca);
    assert_int_equal(kms_call(svc, "acm-pca:UpdateCertificateAuthority", req, &resp), 0);
    kms_string_free(resp);
    char *report = NULL;
    assert_int_equal(kms_scheduler_run(svc, &report), 0); /* publishes a missing CRL */
    kms_string_free(report);
    char *crl = kms_strdup_printf("%s/home/crl/%s.crl", dir, strrchr(ca, '/') + 1);
    struct stat before;
    assert_int_equal(stat(crl, &before), 0);
    usleep(1100 * 1000);
    c.c = kms_tls_client_ssl_new(c2, "app.internal");
    c.s = kms_tls_server_ssl_new(srv);
    assert_int_equal(kms_test_tls_handshake(c.c, c.s, NULL), -1);
    assert_int_equal(SSL_get_verify_result(c.s), X509_V_ERR_CERT_REVOKED);
    conn_close(&c);
    connect_to(srv, c3, &c);
    conn_close(&c);

    /* The next CRL, given the times of the one before. */
    snprintf(req, sizeof req,
             "{\"CertificateAuthorityArn\": \"%s\", \"CertificateSerial\": \"%s\", "
             "\"RevocationReason\": \"SUPERSEDED\"}",
             ca, s2);
    assert_int_equal(kms_call(svc, "acm-pca:RevokeCertificate", req, &resp), 0);
    kms_string_free(resp);
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, crl, times, 0), 0);
    usleep(1100 * 1000);
    c.c = kms_tls_client_ssl_new(c3, "app.internal");
    c.s = kms_tls_server_ssl_new(srv);
    assert_int_equal(kms_test_tls_handshake(c.c, c.s, NULL), -1);
    assert_int_equal(SSL_get_verify_result(c.s), X509_V_ERR_CERT_REVOKED);
    conn_close(&c);

    /* No CRL to read: the reload fails, and the next look waits twice as long each time. */
    const kms_tls_managed *mg = kms_tls_server_managed(srv);
    assert_int_equal(kms_tls_managed_interval_ms(mg), 1000);
    assert_int_equal(unlink(crl), 0);
    usleep(1100 * 1000);
    SSL_free(kms_tls_server_ssl_new(srv));
    assert_int_equal(kms_tls_managed_interval_ms(mg), 2000);
    usleep(1100 * 1000);
    SSL_free(kms_tls_server_ssl_new(srv));
    assert_int_equal(kms_tls_managed_interval_ms(mg), 2000); /* not looked at yet */
    usleep(1000 * 1000);
    SSL_free(kms_tls_server_ssl_new(srv));
    assert_int_equal(kms_tls_managed_interval_ms(mg), 4000);

    kms_tls_server_free(srv);
    SSL_CTX_free(c2);
    SSL_CTX_free(c3);
    free(crl);
    free(cert2);
    free(key2);
    free(cert3);
    free(key3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(served_from_the_hsm_and_renewed),
        cmocka_unit_test(served_from_a_sealed_key),
        cmocka_unit_test(bad_options_refused),
        cmocka_unit_test(in_use_by_each_server),
        cmocka_unit_test(client_trusts_a_ca_by_arn),
        cmocka_unit_test(mutual_tls_against_a_ca_by_arn),
        cmocka_unit_test(crl_changes_under_a_running_server),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
