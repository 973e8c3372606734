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
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kms/kms.h"
#include "kms/tls.h"
#include "testutil.h"
#include "tls/tls_hsm.h"
#include "tls/tls_managed.h"
#include "tls/tls_server.h"
#include "util/util.h"

static char *dir;
static char *ca_file;
static kms_client *svc;
static char ca_arn[256];

/* kms_call that must succeed; the parsed response. */
static json_t *call(const char *op, const char *fmt, ...)
{
    char req[4096];
    char *resp = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req, sizeof req, fmt, ap);
    va_end(ap);
    if (kms_call(svc, op, req, &resp) != 0) {
        fail_msg("%s: %s", op, kms_last_error_message());
    }
    json_t *j = json_loads(resp, 0, NULL);
    kms_string_free(resp);
    assert_non_null(j);
    return j;
}

static int group_setup(void **state)
{
    (void)state;
    dir = kms_test_tmpdir();
    char *home = kms_path_join(dir, "home");
    if (kms_home_init(home, NULL) != 0) {
        fprintf(stderr, "init: %s\n", kms_last_error_message());
        return -1;
    }
    kms_client_options o = {.home = home};
    svc = kms_client_open(&o);
    free(home);
    if (svc == NULL) {
        fprintf(stderr, "open: %s\n", kms_last_error_message());
        return -1;
    }
    json_t *r = call("acm-pca:CreateCertificateAuthority",
                     "{\"CertificateAuthorityType\": \"ROOT\", "
                     "\"CertificateAuthorityConfiguration\": {\"KeyAlgorithm\": \"EC_prime256v1\", "
                     "\"SigningAlgorithm\": \"SHA256WITHECDSA\", \"Subject\": {\"CommonName\": "
                     "\"Managed TLS Root\"}}}");
    snprintf(ca_arn, sizeof ca_arn, "%s",
             json_string_value(json_object_get(r, "CertificateAuthorityArn")));
    json_decref(r);
    r = call("acm-pca:GetCertificateAuthorityCertificate", "{\"CertificateAuthorityArn\": \"%s\"}",
             ca_arn);
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
    json_t *r = call("acm:RequestCertificate",
                     "{\"DomainName\": \"app.internal\", \"KeyAlgorithm\": \"EC_prime256v1\", "
                     "\"CertificateAuthorityArn\": \"%s\"%s}",
                     ca_arn, exportable ? ", \"Options\": {\"Export\": \"ENABLED\"}" : "");
    snprintf(arn, 256, "%s", json_string_value(json_object_get(r, "CertificateArn")));
    json_decref(r);
}

/* The serial DescribeCertificate shows ("0a:1b:..."), as an ASN1_INTEGER. */
static ASN1_INTEGER *described_serial(const char *arn)
{
    json_t *r = call("acm:DescribeCertificate", "{\"CertificateArn\": \"%s\"}", arn);
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
    json_t *r = call("acm:DescribeCertificate", "{\"CertificateArn\": \"%s\"}", arn);
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
    assert_int_equal(kms_test_tls_handshake(out->c, out->s), 0);
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
    json_decref(call("acm:RenewCertificate", "{\"CertificateArn\": \"%s\"}", arn));
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
    char name[48];
    snprintf(name, sizeof name, "kms-tls-server:%ld", (long)getpid());
    assert_true(in_use_by(arn, name));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(served_from_the_hsm_and_renewed),
        cmocka_unit_test(served_from_a_sealed_key),
        cmocka_unit_test(bad_options_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
