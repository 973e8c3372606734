#include "testutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "hsm/hsm.h"
#include "kms/kms.h"
#include "util/util.h"

char *kms_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/kmstest.XXXXXX", base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

void kms_test_rmrf(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

char *kms_test_source_path(const char *rel)
{
    const char *src = getenv("KMS_SOURCE_DIR");
    assert_non_null(src);
    size_t n = strlen(src) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", src, rel);
    return p;
}

int kms_test_token(const char *dir, const char *label, const char *pin)
{
    char *script = kms_test_source_path("hsm/create-token.sh");
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "bash '%s' '%s' >/dev/null", script, dir);
    free(script);
    assert_int_equal(system(cmd), 0);
    char conf[4200];
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
    assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
    int rc = kms_hsm_init_token("/usr/lib/softhsm/libsofthsm2.so", label,
                                (const uint8_t *)"so-pin-for-tests", 16, (const uint8_t *)pin,
                                strlen(pin));
    if (rc != 0) {
        fail_msg("token init failed: %s", kms_last_error_message());
    }
    return 0;
}

/* ---- TLS in memory ---------------------------------------------------------------------------*/
static bool tls_step_ok(SSL *ssl, int rc)
{
    if (rc == 1) {
        return true;
    }
    int e = SSL_get_error(ssl, rc);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

int kms_test_tls_handshake(SSL *c, SSL *s, int *reason)
{
    BIO *bc = NULL;
    BIO *bs = NULL;
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (int i = 0; i < 50; i++) {
        int rc = SSL_do_handshake(c);
        int rs = SSL_do_handshake(s);
        if (rc == 1 && rs == 1) {
            return 0;
        }
        if (!tls_step_ok(c, rc) || !tls_step_ok(s, rs)) {
            if (reason != NULL) {
                *reason = ERR_GET_REASON(ERR_peek_error());
            }
            ERR_clear_error();
            return -1;
        }
    }
    return -1;
}

void kms_test_tls_exchange(SSL *c, SSL *s)
{
    char buf[16] = {0};
    assert_int_equal(SSL_write(c, "ping", 4), 4);
    assert_int_equal(SSL_read(s, buf, sizeof buf), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(SSL_write(s, "pong", 4), 4);
    assert_int_equal(SSL_read(c, buf, sizeof buf), 4);
    assert_memory_equal(buf, "pong", 4);
}

/* ---- Homes and calls through the service -------------------------------------------------------
 */
kms_client *kms_test_home_open(const char *dir)
{
    char *home = kms_path_join(dir, "home");
    kms_client *c = NULL;
    if (home != NULL && kms_home_init(home, NULL) == 0) {
        kms_client_options o = {.home = home};
        c = kms_client_open(&o);
    }
    if (c == NULL) {
        fprintf(stderr, "home %s: %s\n", home != NULL ? home : dir, kms_last_error_message());
    }
    free(home);
    return c;
}

json_t *kms_test_call(kms_client *c, const char *op, const char *fmt, ...)
{
    char req[4096];
    char *resp = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(req, sizeof req, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof req);
    if (kms_call(c, op, req, &resp) != 0) {
        fail_msg("%s: %s", op, kms_last_error_message());
    }
    json_t *j = json_loads(resp, 0, NULL);
    kms_string_free(resp);
    assert_non_null(j);
    return j;
}

void kms_test_root_ca(kms_client *c, const char *cn, int crls, char *arn, size_t arn_size)
{
    json_t *r = kms_test_call(
        c, "acm-pca:CreateCertificateAuthority",
        "{\"CertificateAuthorityType\": \"ROOT\", \"CertificateAuthorityConfiguration\": "
        "{\"KeyAlgorithm\": \"EC_prime256v1\", \"SigningAlgorithm\": \"SHA256WITHECDSA\", "
        "\"Subject\": {\"CommonName\": \"%s\"}}%s}",
        cn,
        crls ? ", \"RevocationConfiguration\": {\"CrlConfiguration\": {\"Enabled\": true, "
               "\"ExpirationInDays\": 7}}"
             : "");
    const char *a = json_string_value(json_object_get(r, "CertificateAuthorityArn"));
    assert_non_null(a);
    snprintf(arn, arn_size, "%s", a);
    json_decref(r);
}
