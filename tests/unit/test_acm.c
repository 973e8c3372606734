/* Unit tests of the managed certificates (src/pki/acm.h) against a fresh SoftHSM2 token and
 * metadata database: requests with the key in the HSM and sealed, checked with OpenSSL; export,
 * renewal, import and reimport, deletion while in use, tags, expiry; the exact error of each
 * refusal, and that a refused request writes nothing. */
#include "testutil.h"

#include <openssl/bio.h>
#include <sodium.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"
#include "pki/acm.h"
#include "pki/pki_internal.h"
#include "service/acm_service.h"
#include "util/util.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "kms-acm-test"
#define PIN "1234-user-pin"
#define REGION "eu-west-3"
#define ACCOUNT "111122223333"
#define DAY 86400

typedef struct fixture {
    char *dir;
    kms_keystore ks;
    kms_pki_ca ec;
    char ec_arn[KMS_ARN_MAX];
    kms_key_record seal;
} fixture;

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(kms_util_init(), 0);
    fx->dir = kms_test_tmpdir();
    kms_test_token(fx->dir, TOKEN, PIN);
    kms_hsm_config cfg = {
        .module_path = MODULE,
        .token_label = TOKEN,
        .pin = (const uint8_t *)PIN,
        .pin_len = strlen(PIN),
    };
    fx->ks.hsm = kms_hsm_open(&cfg);
    if (fx->ks.hsm == NULL) {
        fail_msg("hsm open: %s", kms_last_error_message());
    }
    char *db = kms_path_join(fx->dir, "kms.db");
    assert_non_null(db);
    fx->ks.store = kms_store_open(db, true);
    free(db);
    if (fx->ks.store == NULL) {
        fail_msg("store open: %s", kms_last_error_message());
    }
    fx->ks.region = REGION;
    fx->ks.account_id = ACCOUNT;
    json_t *conf =
        json_pack("{s:s, s:s, s:{s:s}}", "KeyAlgorithm", "EC_prime256v1", "SigningAlgorithm",
                  "SHA256WITHECDSA", "Subject", "CommonName", "Test Root");
    kms_pki_ca_params p = {"ROOT", NULL, conf, NULL, kms_now()};
    if (kms_pki_ca_create(&fx->ks, &p, &fx->ec) != 0) {
        fail_msg("create CA: %s", kms_last_error_message());
    }
    json_decref(conf);
    kms_pki_ca_arn(&fx->ks, fx->ec.ca_id, fx->ec_arn);
    if (kms_keystore_create(&fx->ks, kms_key_spec_find("SYMMETRIC_DEFAULT"), "ENCRYPT_DECRYPT",
                            "acm", "{}", &fx->seal) != 0) {
        fail_msg("create key: %s", kms_last_error_message());
    }
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    kms_pki_ca_clean_up(&fx->ec);
    kms_key_record_clean_up(&fx->seal);
    kms_store_close(fx->ks.store);
    kms_hsm_close(fx->ks.hsm);
    kms_test_rmrf(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* ---- Helpers ----------------------------------------------------------------------------------
 */

static X509 *parse_der(const uint8_t *der, size_t len)
{
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    return x;
}

static void request(fixture *fx, const char *alg, bool exportable, kms_acm_cert *out)
{
    json_t *sans = json_pack("[s]", "api.app.internal");
    kms_acm_request_params p = {.domain_name = "app.internal",
                                .sans = sans,
                                .key_algorithm = alg,
                                .ca_arn = fx->ec_arn,
                                .exportable = exportable,
                                .seal_with = &fx->seal,
                                .now = kms_now()};
    if (kms_acm_request(&fx->ks, &p, out) != 0) {
        fail_msg("request: %s", kms_last_error_message());
    }
    json_decref(sans);
}

static int count_one(void *arg, const kms_acm_cert *c)
{
    (void)c;
    (*(size_t *)arg)++;
    return 0;
}

static size_t count(fixture *fx)
{
    size_t n = 0;
    assert_int_equal(kms_acm_list(&fx->ks, "", count_one, &n), 0);
    return n;
}

/* The certificate verifies under the CA, and names DNS:app.internal and DNS:api.app.internal. */
static void check_issued(fixture *fx, const kms_acm_cert *c)
{
    X509 *x = parse_der(c->certificate, c->certificate_len);
    X509 *ca = parse_der(fx->ec.certificate, fx->ec.certificate_len);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(ca)), 1);
    assert_int_equal(X509_check_host(x, "app.internal", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "api.app.internal", 0, 0, NULL), 1);
    assert_string_equal(c->status, "ISSUED");
    assert_true(c->not_after - c->not_before >= (int64_t)KMS_ACM_VALIDITY_DAYS * DAY);
    X509_free(ca);
    X509_free(x);
}

/* ---- Requests ---------------------------------------------------------------------------------
 */

static void test_request_hsm(void **state)
{
    fixture *fx = *state;
    kms_acm_cert c, got;
    kms_hsm_key_attrs attrs;
    request(fx, "EC_prime256v1", false, &c);
    check_issued(fx, &c);
    assert_string_equal(c.key_storage, "HSM");
    assert_null(c.sealed_key);
    assert_string_equal(c.type, "PRIVATE");
    assert_string_equal(c.renewal_eligibility, "ELIGIBLE");
    assert_string_equal(c.sans, "[\"app.internal\",\"api.app.internal\"]");
    /* The key in the HSM: sensitive, never extractable. */
    assert_int_equal(kms_keystore_cert_key_attributes(&fx->ks, c.key_name, &attrs), 0);
    assert_true(attrs.sensitive);
    assert_false(attrs.extractable);
    assert_true(attrs.never_extractable);
    /* Read back as stored. */
    assert_int_equal(kms_acm_get(&fx->ks, c.cert_id, &got), 0);
    assert_string_equal(got.serial, c.serial);
    assert_string_equal(got.ca_arn, fx->ec_arn);
    assert_int_equal(got.generation, 1);
    /* Its key cannot be exported, nor opened. */
    char *pem = NULL;
    assert_int_equal(kms_acm_export_key(&fx->ks, &got, (const uint8_t *)"secret", 6, &pem), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_null(pem);
    kms_acm_cert_clean_up(&got);
    kms_acm_cert_clean_up(&c);
}

static void test_request_exportable(void **state)
{
    fixture *fx = *state;
    kms_acm_cert c;
    kms_buf der;
    char *pem = NULL;
    request(fx, "RSA_2048", true, &c);
    check_issued(fx, &c);
    assert_string_equal(c.key_storage, "SEALED");
    assert_non_null(c.sealed_key);
    /* The sealed key is the certificate's. */
    kms_buf_init(&der, true);
    assert_int_equal(kms_acm_key_open(&fx->ks, &c, &der), 0);
    const unsigned char *p = der.data;
    EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, (long)der.len);
    X509 *x = parse_der(c.certificate, c.certificate_len);
    assert_non_null(k);
    assert_int_equal(X509_check_private_key(x, k), 1);
    EVP_PKEY_free(k);
    kms_buf_clean_up(&der);
    /* Exported: encrypted PKCS#8 that opens with the passphrase only. */
    assert_int_equal(kms_acm_export_key(&fx->ks, &c, (const uint8_t *)"correct horse", 13, &pem),
                     0);
    assert_non_null(strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    BIO *b = BIO_new_mem_buf(pem, -1);
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"correct horse");
    assert_non_null(k);
    assert_int_equal(X509_check_private_key(x, k), 1);
    EVP_PKEY_free(k);
    BIO_free(b);
    b = BIO_new_mem_buf(pem, -1);
    assert_null(PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"wrong horse"));
    BIO_free(b);
    free(pem);
    /* A passphrase of fewer than 4 bytes is refused. */
    assert_int_equal(kms_acm_export_key(&fx->ks, &c, (const uint8_t *)"abc", 3, &pem), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    /* Nor more than 128, nor #, $, % or a character that cannot be typed (ACM's rule). */
    char long_pass[129];
    memset(long_pass, 'a', sizeof long_pass);
    assert_int_equal(kms_acm_export_key(&fx->ks, &c, (const uint8_t *)long_pass, 129, &pem), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_int_equal(kms_acm_export_key(&fx->ks, &c, (const uint8_t *)long_pass, 128, &pem), 0);
    free(pem);
    static const char *const bad[] = {"pass#word", "pa$$word", "100%pass", "pass\nword"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            kms_acm_export_key(&fx->ks, &c, (const uint8_t *)bad[i], strlen(bad[i]), &pem), -1);
        assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
        assert_null(pem);
    }
    assert_int_equal(kms_acm_export_key(&fx->ks, &c, (const uint8_t *)"pass\0word", 9, &pem), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    X509_free(x);
    kms_acm_cert_clean_up(&c);
}

/* A sealed key opens for its own certificate only: bound to the certificate's id and account
 * (the row's, not the key store's), a blob moved to another row or account does not open. */
static void test_sealed_key_binding(void **state)
{
    fixture *fx = *state;
    kms_acm_cert a, b;
    kms_buf der;
    request(fx, "EC_prime256v1", true, &a);
    request(fx, "EC_prime256v1", true, &b);
    kms_buf_init(&der, true);
    uint8_t *own = b.sealed_key;
    size_t own_len = b.sealed_key_len;
    b.sealed_key = a.sealed_key;
    b.sealed_key_len = a.sealed_key_len;
    assert_int_equal(kms_acm_key_open(&fx->ks, &b, &der), -1);
    b.sealed_key = own;
    b.sealed_key_len = own_len;
    /* The same row under another account. */
    snprintf(a.account_id, sizeof a.account_id, "444455556666");
    assert_int_equal(kms_acm_key_open(&fx->ks, &a, &der), -1);
    assert_int_equal(der.len, 0);
    assert_int_equal(kms_acm_key_open(&fx->ks, &b, &der), 0);
    kms_buf_clean_up(&der);
    kms_acm_cert_clean_up(&a);
    kms_acm_cert_clean_up(&b);
}

/* Each refusal raises ACM's error and writes nothing. */
/* Beyond ACM: a private certificate for localhost may also name single-label hosts and IP
 * address literals, which become iPAddress names (a server reached as https://127.0.0.1). */
static void test_request_ip_sans(void **state)
{
    fixture *fx = *state;
    kms_acm_cert c;
    json_t *sans = json_pack("[ssss]", "127.0.0.1", "::1", "myhost", "localhost");
    kms_acm_request_params p = {.domain_name = "localhost",
                                .sans = sans,
                                .key_algorithm = "EC_prime256v1",
                                .ca_arn = fx->ec_arn,
                                .now = kms_now()};
    if (kms_acm_request(&fx->ks, &p, &c) != 0) {
        fail_msg("request: %s", kms_last_error_message());
    }
    X509 *x = parse_der(c.certificate, c.certificate_len);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "myhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.2", 0), 0);
    X509_free(x);
    kms_acm_cert_clean_up(&c);
    json_decref(sans);
    /* Still refused: a single-label DomainName other than localhost, an address as DomainName,
     * a malformed address or a bare wildcard among the names. */
    p.sans = NULL;
    p.domain_name = "myhost";
    assert_int_equal(kms_acm_request(&fx->ks, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    p.domain_name = "127.0.0.1";
    assert_int_equal(kms_acm_request(&fx->ks, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    p.domain_name = "localhost";
    static const char *const bad[] = {"127.0.0.256", "::1::2", "*", "bad_name"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sans = json_pack("[s]", bad[i]);
        p.sans = sans;
        assert_int_equal(kms_acm_request(&fx->ks, &p, &c), -1);
        assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
        json_decref(sans);
    }
}

static void test_request_refused(void **state)
{
    fixture *fx = *state;
    kms_acm_cert c;
    size_t before = count(fx);
    kms_acm_request_params p = {.domain_name = "app.internal",
                                .key_algorithm = "EC_secp521r1",
                                .ca_arn = fx->ec_arn,
                                .now = kms_now()};
    assert_int_equal(kms_acm_request(&fx->ks, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    p.key_algorithm = "EC_prime256v1";
    p.domain_name = "bad_name.internal";
    assert_int_equal(kms_acm_request(&fx->ks, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    p.domain_name = "*";
    assert_int_equal(kms_acm_request(&fx->ks, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    p.domain_name = "app.internal";
    p.ca_arn = "arn:aws:acm-pca:eu-west-3:111122223333:nothing";
    assert_int_equal(kms_acm_request(&fx->ks, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_INVALID_ARN);
    /* Eleven names. */
    json_t *sans = json_array();
    for (int i = 0; i < 10; i++) {
        char n[32];
        snprintf(n, sizeof n, "n%d.app.internal", i);
        assert_int_equal(json_array_append_new(sans, json_string(n)), 0);
    }
    p.ca_arn = fx->ec_arn;
    p.sans = sans;
    assert_int_equal(kms_acm_request(&fx->ks, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_LIMIT_EXCEEDED);
    json_decref(sans);
    p.sans = NULL;
    /* The CA disabled. */
    assert_int_equal(kms_pki_ca_set_status(&fx->ks, &fx->ec, "DISABLED", kms_now()), 0);
    assert_int_equal(kms_acm_request(&fx->ks, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_non_null(strstr(kms_last_error_message(), "DISABLED"));
    kms_pki_ca disabled;
    assert_int_equal(kms_pki_ca_get(&fx->ks, fx->ec.ca_id, &disabled), 0);
    assert_int_equal(kms_pki_ca_set_status(&fx->ks, &disabled, "ACTIVE", kms_now()), 0);
    kms_pki_ca_clean_up(&disabled);
    assert_int_equal(count(fx), before);
}

/* The same IdempotencyToken within an hour answers the same certificate; later, a new one. */
static void test_request_idempotent(void **state)
{
    fixture *fx = *state;
    kms_acm_cert a, b, c;
    int64_t now = kms_now();
    kms_acm_request_params p = {.domain_name = "idem.internal",
                                .key_algorithm = "EC_prime256v1",
                                .ca_arn = fx->ec_arn,
                                .idempotency_token = "retry-1",
                                .now = now};
    assert_int_equal(kms_acm_request(&fx->ks, &p, &a), 0);
    size_t n = count(fx);
    p.now = now + 3000;
    assert_int_equal(kms_acm_request(&fx->ks, &p, &b), 0);
    assert_string_equal(b.cert_id, a.cert_id);
    assert_int_equal(count(fx), n);
    kms_acm_cert_clean_up(&b);
    /* The token is the requester's: another caller of the account with the same token gets a
     * certificate of its own, not the first caller's. */
    p.requester = "arn:aws:iam::111122223333:user/other";
    assert_int_equal(kms_acm_request(&fx->ks, &p, &b), 0);
    assert_string_not_equal(b.cert_id, a.cert_id);
    assert_int_equal(count(fx), n + 1);
    p.requester = NULL;
    p.now = now + 3700;
    assert_int_equal(kms_acm_request(&fx->ks, &p, &c), 0);
    assert_string_not_equal(c.cert_id, a.cert_id);
    assert_int_equal(count(fx), n + 2);
    kms_acm_cert_clean_up(&a);
    kms_acm_cert_clean_up(&b);
    kms_acm_cert_clean_up(&c);
}

static void test_arn(void **state)
{
    fixture *fx = *state;
    char id[37], arn[KMS_ARN_MAX];
    kms_acm_arn(&fx->ks, "12345678-1234-1234-1234-123456789012", arn);
    assert_string_equal(arn, "arn:aws:acm:eu-west-3:111122223333:certificate/"
                             "12345678-1234-1234-1234-123456789012");
    assert_int_equal(kms_acm_arn_parse(&fx->ks, arn, id), 0);
    assert_string_equal(id, "12345678-1234-1234-1234-123456789012");
    assert_int_equal(kms_acm_arn_parse(&fx->ks,
                                       "arn:aws:acm:us-east-1:111122223333:certificate/"
                                       "12345678-1234-1234-1234-123456789012",
                                       id),
                     -1);
    assert_int_equal(kms_last_error(), KMS_ERR_INVALID_ARN);
    kms_acm_cert c;
    assert_int_equal(kms_acm_get(&fx->ks, "12345678-1234-1234-1234-123456789012", &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_RESOURCE_NOT_FOUND);
}

/* ---- Renewal ----------------------------------------------------------------------------------
 */

static void spki(const kms_acm_cert *c, unsigned char **der, int *len)
{
    X509 *x = parse_der(c->certificate, c->certificate_len);
    *der = NULL;
    *len = i2d_PUBKEY(X509_get0_pubkey(x), der);
    assert_true(*len > 0);
    X509_free(x);
}

static int count_revoked(void *arg, const char *serial, int64_t revoked_at, const char *reason)
{
    (void)serial;
    (void)revoked_at;
    assert_string_equal(reason, "SUPERSEDED");
    (*(size_t *)arg)++;
    return 0;
}

static void test_renew(void **state)
{
    fixture *fx = *state;
    kms_acm_cert c, r1, r2;
    kms_hsm_key_attrs attrs;
    unsigned char *k0 = NULL, *k1 = NULL;
    int l0 = 0, l1 = 0;
    request(fx, "EC_prime256v1", false, &c);
    assert_int_equal(kms_acm_renew(&fx->ks, &c, NULL, kms_now()), 0);
    assert_int_equal(kms_acm_get(&fx->ks, c.cert_id, &r1), 0);
    check_issued(fx, &r1);
    assert_int_equal(r1.generation, 2);
    assert_string_not_equal(r1.serial, c.serial);
    assert_string_not_equal(r1.key_name, c.key_name);
    assert_string_equal(r1.renewal_status, "SUCCESS");
    spki(&c, &k0, &l0);
    spki(&r1, &k1, &l1);
    assert_false(l0 == l1 && memcmp(k0, k1, (size_t)l0) == 0);
    /* The previous key stays for handshakes begun before the renewal. */
    assert_int_equal(kms_keystore_cert_key_attributes(&fx->ks, c.key_name, &attrs), 0);
    /* A renewal from a stale copy loses: another renewal got there first. What the CA issued
     * for it is revoked, and its key destroyed. */
    size_t keys = 0;
    assert_int_equal(kms_pki_db_revoked_list(&fx->ks, fx->ec.ca_id, count_revoked, &keys), 0);
    size_t revoked = keys;
    assert_int_equal(kms_acm_renew(&fx->ks, &c, NULL, kms_now()), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_REQUEST_IN_PROGRESS);
    keys = 0;
    assert_int_equal(kms_pki_db_revoked_list(&fx->ks, fx->ec.ca_id, count_revoked, &keys), 0);
    assert_int_equal(keys, revoked + 1);
    assert_int_equal(kms_acm_renew(&fx->ks, &r1, NULL, kms_now()), 0);
    assert_int_equal(kms_acm_get(&fx->ks, c.cert_id, &r2), 0);
    assert_int_equal(r2.generation, 3);
    /* Two generations back: destroyed. */
    assert_int_equal(kms_keystore_cert_key_attributes(&fx->ks, c.key_name, &attrs), -1);
    OPENSSL_free(k0);
    OPENSSL_free(k1);
    kms_acm_cert_clean_up(&r2);
    kms_acm_cert_clean_up(&r1);
    kms_acm_cert_clean_up(&c);
}

static void test_renew_at(void **state)
{
    (void)state;
    kms_acm_cert c;
    memset(&c, 0, sizeof c);
    c.not_before = 1000;
    c.not_after = 1000 + 365 * DAY;
    assert_int_equal(kms_acm_renew_at(&c), 1000 + 305 * DAY);
    c.not_after = 1000 + 90 * DAY; /* shorter than 180 days: two thirds of its lifetime */
    assert_int_equal(kms_acm_renew_at(&c), 1000 + 60 * DAY);
    c.not_after = 1000 + 180 * DAY;
    assert_int_equal(kms_acm_renew_at(&c), 1000 + 120 * DAY);
}

/* ---- Import -----------------------------------------------------------------------------------
 */

static char *pem_of(int (*write)(BIO *, void *), void *obj)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    assert_int_equal(write(b, obj), 1);
    long n = BIO_get_mem_data(b, &data);
    char *out = strndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

static int write_cert(BIO *b, void *x)
{
    return PEM_write_bio_X509(b, x);
}

static int write_key(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

/* A self-signed certificate of X.509 version `version` for name, valid from `from` seconds from
 * now for days, and its key (PEM). */
static void outside_cert_at(const char *name, long from, int days, long version, char **cert,
                            char **key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    X509_set_version(x, version);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)name, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), from + (long)days * DAY);
    X509_set_pubkey(x, k);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    *cert = pem_of(write_cert, x);
    *key = pem_of(write_key, k);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void outside_cert(const char *name, int days, char **cert, char **key)
{
    outside_cert_at(name, -60, days, X509_VERSION_3, cert, key);
}

/* ACM's prerequisites: valid now (not before NotBefore), X.509 version 3, a key of at most
 * 5,120 bytes; each refused with nothing written. */
static void test_import_prerequisites(void **state)
{
    fixture *fx = *state;
    char *cert = NULL, *key = NULL;
    kms_acm_cert c;
    size_t before = count(fx);
    outside_cert_at("later.example", DAY, 30, X509_VERSION_3, &cert, &key);
    kms_acm_import_params p = {(const uint8_t *)cert,
                               strlen(cert),
                               (const uint8_t *)key,
                               strlen(key),
                               NULL,
                               0,
                               &fx->seal,
                               kms_now()};
    assert_int_equal(kms_acm_import(&fx->ks, NULL, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    free(cert);
    free(key);
    outside_cert_at("v1.example", -60, 30, X509_VERSION_1, &cert, &key);
    p.certificate = (const uint8_t *)cert;
    p.certificate_len = strlen(cert);
    p.private_key = (const uint8_t *)key;
    p.private_key_len = strlen(key);
    assert_int_equal(kms_acm_import(&fx->ks, NULL, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    free(cert);
    free(key);
    /* A key padded past 5,120 bytes (PEM text around it is still a key to OpenSSL). */
    outside_cert("big.example", 30, &cert, &key);
    char *padded = calloc(1, 6000);
    assert_non_null(padded);
    memset(padded, ' ', 5200);
    padded[5199] = '\n';
    memcpy(padded + 5200, key, strlen(key));
    p.certificate = (const uint8_t *)cert;
    p.certificate_len = strlen(cert);
    p.private_key = (const uint8_t *)padded;
    p.private_key_len = strlen(padded);
    assert_int_equal(kms_acm_import(&fx->ks, NULL, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_int_equal(count(fx), before);
    free(padded);
    free(cert);
    free(key);
}

static void test_import(void **state)
{
    fixture *fx = *state;
    char *cert = NULL, *key = NULL, *cert2 = NULL, *key2 = NULL;
    kms_acm_cert c, again, got;
    outside_cert("outside.example", 30, &cert, &key);
    outside_cert("outside.example", 60, &cert2, &key2);
    size_t before = count(fx);
    kms_acm_import_params p = {(const uint8_t *)cert,
                               strlen(cert),
                               (const uint8_t *)key2,
                               strlen(key2),
                               NULL,
                               0,
                               &fx->seal,
                               kms_now()};
    /* Another key than the certificate's: refused, nothing written. */
    assert_int_equal(kms_acm_import(&fx->ks, NULL, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_int_equal(count(fx), before);
    p.private_key = (const uint8_t *)key;
    p.private_key_len = strlen(key);
    assert_int_equal(kms_acm_import(&fx->ks, NULL, &p, &c), 0);
    assert_int_equal(count(fx), before + 1);
    assert_string_equal(c.type, "IMPORTED");
    assert_string_equal(c.domain_name, "outside.example");
    assert_string_equal(c.key_algorithm, "EC_prime256v1");
    assert_string_equal(c.renewal_eligibility, "INELIGIBLE");
    assert_string_equal(c.serial, "2a");
    /* Imported certificates are not renewed. */
    assert_int_equal(kms_acm_renew(&fx->ks, &c, &fx->seal, kms_now()), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    /* Reimport: same id, the new certificate; a mismatched pair leaves the old one. */
    p.certificate = (const uint8_t *)cert2;
    p.certificate_len = strlen(cert2);
    p.private_key = (const uint8_t *)key;
    p.private_key_len = strlen(key);
    assert_int_equal(kms_acm_import(&fx->ks, &c, &p, &again), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_int_equal(kms_acm_get(&fx->ks, c.cert_id, &got), 0);
    assert_int_equal(got.generation, 1);
    assert_int_equal(got.not_after, c.not_after);
    kms_acm_cert_clean_up(&got);
    p.private_key = (const uint8_t *)key2;
    p.private_key_len = strlen(key2);
    assert_int_equal(kms_acm_import(&fx->ks, &c, &p, &again), 0);
    assert_string_equal(again.cert_id, c.cert_id);
    assert_int_equal(kms_acm_get(&fx->ks, c.cert_id, &got), 0);
    assert_int_equal(got.generation, 2);
    assert_true(got.not_after > c.not_after);
    /* Expiry: the certificate of 30 days no longer, that of 60 days within 61 days. */
    kms_acm_cert_clean_up(&got);
    kms_acm_cert_clean_up(&again);
    kms_acm_cert_clean_up(&c);
    free(cert);
    free(key);
    free(cert2);
    free(key2);
}

/* CertificateChain: certificates only, each the issuer of the one before; what is stored is the
 * certificates alone (a private key pasted into the chain is refused, never stored). */
static void test_import_chain(void **state)
{
    fixture *fx = *state;
    char *cert = NULL, *key = NULL, *other = NULL, *other_key = NULL;
    kms_acm_cert c, got;
    outside_cert("chain.example", 30, &cert, &key);
    outside_cert("unrelated.example", 30, &other, &other_key);
    size_t before = count(fx);
    char *with_key = kms_strdup_printf("%s%s", cert, key);
    char *noise = kms_strdup_printf("junk before\n%sjunk after\n", cert);
    kms_acm_import_params p = {(const uint8_t *)cert,
                               strlen(cert),
                               (const uint8_t *)key,
                               strlen(key),
                               (const uint8_t *)other,
                               strlen(other),
                               &fx->seal,
                               kms_now()};
    /* A chain that does not chain to the certificate. */
    assert_int_equal(kms_acm_import(&fx->ks, NULL, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    /* A private key among the chain's certificates. */
    p.chain = (const uint8_t *)with_key;
    p.chain_len = strlen(with_key);
    assert_int_equal(kms_acm_import(&fx->ks, NULL, &p, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_int_equal(count(fx), before);
    /* The self-signed certificate as its own chain: kept, the text around it is not. */
    p.chain = (const uint8_t *)noise;
    p.chain_len = strlen(noise);
    assert_int_equal(kms_acm_import(&fx->ks, NULL, &p, &c), 0);
    assert_int_equal(kms_acm_get(&fx->ks, c.cert_id, &got), 0);
    assert_int_equal(got.chain_len, strlen(cert));
    assert_memory_equal(got.chain, cert, strlen(cert));
    kms_acm_cert_clean_up(&got);
    kms_acm_cert_clean_up(&c);
    free(with_key);
    free(noise);
    free(cert);
    free(key);
    free(other);
    free(other_key);
}

static void test_reimport_private_refused(void **state)
{
    fixture *fx = *state;
    char *cert = NULL, *key = NULL;
    kms_acm_cert c, again;
    outside_cert("x.example", 30, &cert, &key);
    request(fx, "EC_prime256v1", false, &c);
    kms_acm_import_params p = {(const uint8_t *)cert,
                               strlen(cert),
                               (const uint8_t *)key,
                               strlen(key),
                               NULL,
                               0,
                               &fx->seal,
                               kms_now()};
    assert_int_equal(kms_acm_import(&fx->ks, &c, &p, &again), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    kms_acm_cert_clean_up(&c);
    free(cert);
    free(key);
}

/* ---- Use, deletion, tags, expiry --------------------------------------------------------------
 */

static void test_delete_in_use(void **state)
{
    fixture *fx = *state;
    kms_acm_cert c, got;
    kms_hsm_key_attrs attrs;
    request(fx, "EC_prime256v1", false, &c);
    assert_int_equal(kms_acm_in_use(&fx->ks, c.cert_id, "kmsd:443", true), 0);
    assert_int_equal(kms_acm_in_use(&fx->ks, c.cert_id, "kmsd:443", true), 0);
    assert_int_equal(kms_acm_get(&fx->ks, c.cert_id, &got), 0);
    assert_string_equal(got.in_use_by, "[\"kmsd:443\"]");
    assert_int_equal(kms_acm_delete(&fx->ks, &got), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_RESOURCE_IN_USE);
    kms_acm_cert_clean_up(&got);
    /* A stale copy that says "not in use" is refused too: the row decides. */
    assert_int_equal(kms_acm_delete(&fx->ks, &c), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_RESOURCE_IN_USE);
    assert_int_equal(kms_acm_in_use(&fx->ks, c.cert_id, "kmsd:443", false), 0);
    assert_int_equal(kms_acm_get(&fx->ks, c.cert_id, &got), 0);
    assert_int_equal(kms_acm_delete(&fx->ks, &got), 0);
    kms_acm_cert_clean_up(&got);
    assert_int_equal(kms_acm_get(&fx->ks, c.cert_id, &got), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_RESOURCE_NOT_FOUND);
    assert_int_equal(kms_keystore_cert_key_attributes(&fx->ks, c.key_name, &attrs), -1);
    kms_acm_cert_clean_up(&c);
}

/* A DeleteCertificate that read the row before a renewal finished: the keys destroyed are the
 * row's when it goes (the renewal's new one included), none is left behind in the HSM. */
static void test_delete_after_renewal(void **state)
{
    fixture *fx = *state;
    kms_acm_cert stale, now, gone;
    request(fx, "EC_prime256v1", false, &stale);
    assert_int_equal(kms_acm_renew(&fx->ks, &stale, NULL, kms_now()), 0);
    assert_int_equal(kms_acm_get(&fx->ks, stale.cert_id, &now), 0);
    assert_string_not_equal(now.key_name, stale.key_name);
    assert_int_equal(kms_acm_delete(&fx->ks, &stale), 0);
    assert_int_equal(kms_acm_get(&fx->ks, stale.cert_id, &gone), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_RESOURCE_NOT_FOUND);
    kms_hsm_key_attrs attrs;
    assert_int_equal(kms_keystore_cert_key_attributes(&fx->ks, now.key_name, &attrs), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_NOT_FOUND);
    assert_int_equal(kms_keystore_cert_key_attributes(&fx->ks, now.prev_key_name, &attrs), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_NOT_FOUND);
    kms_acm_cert_clean_up(&now);
    kms_acm_cert_clean_up(&stale);
}

static void test_tags(void **state)
{
    fixture *fx = *state;
    kms_acm_cert c;
    json_t *tags = NULL;
    request(fx, "EC_prime256v1", false, &c);
    json_t *add = json_pack("[{s:s, s:s}, {s:s, s:s}]", "Key", "team", "Value", "web", "Key", "env",
                            "Value", "prod");
    if (kms_acm_tags_add(&fx->ks, c.cert_id, add) != 0) {
        fail_msg("add: %s", kms_last_error_message());
    }
    assert_int_equal(kms_acm_tags_list(&fx->ks, c.cert_id, &tags), 0);
    char *text = json_dumps(tags, JSON_COMPACT);
    assert_string_equal(text, "[{\"Key\":\"env\",\"Value\":\"prod\"},{\"Key\":\"team\","
                              "\"Value\":\"web\"}]");
    free(text);
    json_decref(tags);
    json_t *rm = json_pack("[{s:s}]", "Key", "team");
    if (kms_acm_tags_remove(&fx->ks, c.cert_id, rm) != 0) {
        fail_msg("remove: %s", kms_last_error_message());
    }
    assert_int_equal(kms_acm_tags_list(&fx->ks, c.cert_id, &tags), 0);
    assert_int_equal(json_array_size(tags), 1);
    json_decref(tags);
    json_t *bad = json_pack("[{s:s, s:s}]", "Key", "aws:x", "Value", "y");
    assert_int_equal(kms_acm_tags_add(&fx->ks, c.cert_id, bad), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_INVALID_TAG);
    json_decref(bad);
    json_decref(rm);
    json_decref(add);
    kms_acm_cert_clean_up(&c);
}

static int expiring_one(void *arg, const char *arn, int64_t not_after, const char *source)
{
    (void)not_after;
    json_t *list = arg;
    assert_int_equal(
        json_array_append_new(list, json_pack("{s:s, s:s}", "arn", arn, "source", source)), 0);
    return 0;
}

static void test_expiring(void **state)
{
    fixture *fx = *state;
    kms_acm_cert c;
    char arn[KMS_ARN_MAX];
    request(fx, "EC_prime256v1", false, &c);
    kms_acm_arn(&fx->ks, c.cert_id, arn);
    json_t *list = json_array();
    /* 45 days out: not yet. */
    assert_int_equal(kms_acm_expiring(&fx->ks, kms_now(), kms_now() + 45 * DAY, expiring_one, list),
                     0);
    for (size_t i = 0; i < json_array_size(list); i++) {
        assert_string_not_equal(json_string_value(json_object_get(json_array_get(list, i), "arn")),
                                arn);
    }
    json_array_clear(list);
    /* 330 days later, 45 days out: it. */
    int64_t later = kms_now() + 330 * DAY;
    assert_int_equal(kms_acm_expiring(&fx->ks, later, later + 45 * DAY, expiring_one, list), 0);
    bool acm = false, pca = false;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *e = json_array_get(list, i);
        acm = acm || strcmp(json_string_value(json_object_get(e, "arn")), arn) == 0;
        pca = pca || strcmp(json_string_value(json_object_get(e, "source")), "acm-pca") == 0;
    }
    assert_true(acm);
    /* The CA issued those certificates for the requests: they warn as managed ones only. */
    assert_false(pca);
    json_decref(list);
    /* One warning per certificate and day. */
    assert_int_equal(kms_acm_warning_claim(&fx->ks, arn, 100), 1);
    assert_int_equal(kms_acm_warning_claim(&fx->ks, arn, 100), 0);
    assert_int_equal(kms_acm_warning_claim(&fx->ks, arn, 101), 1);
    kms_acm_cert_clean_up(&c);
}

/* ---- Through the service: kms_call and the TLS helper's calls ----------------------------------
 */

static char *svc_tmp;
static kms_client *svc;
static char svc_ca[KMS_ARN_MAX];

static kms_error call_error(const char *op, const char *req)
{
    char *resp = NULL;
    assert_int_equal(kms_call(svc, op, req, &resp), -1);
    return kms_last_error();
}

static int svc_setup(void **state)
{
    (void)state;
    svc_tmp = kms_test_tmpdir();
    if ((svc = kms_test_home_open(svc_tmp)) == NULL) {
        return -1;
    }
    kms_test_root_ca(svc, "Service Root", 0, svc_ca, sizeof svc_ca);
    return 0;
}

static int svc_teardown(void **state)
{
    (void)state;
    kms_client_free(svc);
    kms_test_rmrf(svc_tmp);
    free(svc_tmp);
    return 0;
}

static void svc_request(bool exportable, char arn[KMS_ARN_MAX])
{
    json_t *r =
        kms_test_call(svc, "acm:RequestCertificate",
                      "{\"DomainName\": \"svc.internal\", \"KeyAlgorithm\": \"EC_prime256v1\", "
                      "\"CertificateAuthorityArn\": \"%s\"%s}",
                      svc_ca, exportable ? ", \"Options\": {\"Export\": \"ENABLED\"}" : "");
    snprintf(arn, KMS_ARN_MAX, "%s", json_string_value(json_object_get(r, "CertificateArn")));
    json_decref(r);
}

/* The leaf of a PEM chain. */
static X509 *leaf_of(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    assert_non_null(x);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    assert_non_null(ca); /* the chain follows the leaf */
    assert_int_equal(X509_verify(x, X509_get0_pubkey(ca)), 1);
    X509_free(ca);
    BIO_free(b);
    return x;
}

/* The TLS helper's road to an HSM-held key: the chain, and a handshake-like signature of a
 * digest made in the HSM that the certificate's public key verifies. */
static void test_service_material_hsm(void **state)
{
    (void)state;
    char arn[KMS_ARN_MAX];
    kms_acm_material m;
    svc_request(false, arn);
    assert_int_equal(kms_acm_service_material(svc, arn, &m), 0);
    assert_true(m.hsm);
    assert_null(m.pkcs8);
    assert_string_equal(m.key_spec, "ECC_NIST_P256");
    assert_int_equal(m.generation, 1);
    X509 *x = leaf_of(m.chain_pem);
    uint8_t digest[32];
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    randombytes_buf(digest, sizeof digest);
    assert_int_equal(kms_keystore_cert_key_sign_digest(&svc->keystore, m.key_name, m.key_spec,
                                                       "ECDSA_SHA_256", digest, sizeof digest, &sig,
                                                       &sig_len),
                     0);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(x), NULL);
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof digest), 1);
    EVP_PKEY_CTX_free(ctx);
    free(sig);
    X509_free(x);
    kms_acm_material_clean_up(&m);
    /* Renewed: the next generation. */
    json_decref(kms_test_call(svc, "acm:RenewCertificate", "{\"CertificateArn\": \"%s\"}", arn));
    int64_t gen = 0;
    assert_int_equal(kms_acm_service_generation(svc, arn, &gen), 0);
    assert_int_equal(gen, 2);
    /* Not a certificate of this home. */
    assert_int_equal(
        kms_acm_service_material(svc, "arn:aws:acm:us-east-1:000000000000:certificate/x", &m), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_INVALID_ARN);
    assert_null(m.chain_pem);
}

static void test_service_material_sealed(void **state)
{
    (void)state;
    char arn[KMS_ARN_MAX];
    kms_acm_material m;
    svc_request(true, arn);
    assert_int_equal(kms_acm_service_material(svc, arn, &m), 0);
    assert_false(m.hsm);
    assert_non_null(m.pkcs8);
    const unsigned char *p = m.pkcs8;
    EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, (long)m.pkcs8_len);
    X509 *x = leaf_of(m.chain_pem);
    assert_non_null(k);
    assert_int_equal(X509_check_private_key(x, k), 1);
    EVP_PKEY_free(k);
    X509_free(x);
    kms_acm_material_clean_up(&m);
    /* Sealed under the AWS managed key alias/aws/acm, made on first use. */
    json_t *d = kms_test_call(svc, "DescribeKey", "{\"KeyId\": \"alias/aws/acm\"}");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d, "KeyMetadata"), "KeyState")),
        "Enabled");
    json_decref(d);
}

static void test_service_in_use(void **state)
{
    (void)state;
    char arn[KMS_ARN_MAX], req[KMS_ARN_MAX + 64];
    svc_request(false, arn);
    snprintf(req, sizeof req, "{\"CertificateArn\": \"%s\"}", arn);
    assert_int_equal(kms_acm_service_in_use(svc, arn, "", true), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_int_equal(kms_acm_service_in_use(svc, arn, "example-server:8443", true), 0);
    json_t *d = kms_test_call(svc, "acm:DescribeCertificate", "%s", req);
    char *in_use =
        json_dumps(json_object_get(json_object_get(d, "Certificate"), "InUseBy"), JSON_COMPACT);
    assert_string_equal(in_use, "[\"example-server:8443\"]");
    free(in_use);
    json_decref(d);
    assert_int_equal(call_error("acm:DeleteCertificate", req), KMS_ERR_RESOURCE_IN_USE);
    assert_int_equal(kms_acm_service_in_use(svc, arn, "example-server:8443", false), 0);
    json_decref(kms_test_call(svc, "acm:DeleteCertificate", "%s", req));
    assert_int_equal(call_error("acm:DescribeCertificate", req), KMS_ERR_RESOURCE_NOT_FOUND);
}

/* Tags that would be refused refuse the request before anything is made. */
static void test_service_request_bad_tags(void **state)
{
    (void)state;
    char req[KMS_ARN_MAX + 256];
    json_t *l = kms_test_call(svc, "acm:ListCertificates", "{}");
    size_t before = json_array_size(json_object_get(l, "CertificateSummaryList"));
    json_decref(l);
    snprintf(req, sizeof req,
             "{\"DomainName\": \"t.internal\", \"CertificateAuthorityArn\": \"%s\", "
             "\"Tags\": [{\"Key\": \"aws:reserved\", \"Value\": \"x\"}]}",
             svc_ca);
    assert_int_equal(call_error("acm:RequestCertificate", req), KMS_ERR_INVALID_TAG);
    l = kms_test_call(svc, "acm:ListCertificates", "{}");
    assert_int_equal(json_array_size(json_object_get(l, "CertificateSummaryList")), before);
    json_decref(l);
}

/* The audit trail never holds an exported key or its passphrase (audit_trail.c secret_member):
 * "Y29ycmVjdCBob3JzZQ==" is base64 of "correct horse". */
static void test_service_export_not_audited(void **state)
{
    (void)state;
    char arn[KMS_ARN_MAX];
    svc_request(true, arn);
    json_t *r = kms_test_call(
        svc, "acm:ExportCertificate",
        "{\"CertificateArn\": \"%s\", \"Passphrase\": \"Y29ycmVjdCBob3JzZQ==\"}", arn);
    assert_non_null(strstr(json_string_value(json_object_get(r, "PrivateKey")),
                           "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    json_decref(r);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "grep -rqs -e 'ENCRYPTED PRIVATE KEY' -e 'Y29ycmVjdCBob3JzZQ' '%s/home/audit'",
             svc_tmp);
    assert_int_not_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -rqs 'ExportCertificate' '%s/home/audit'", svc_tmp);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_hsm),
        cmocka_unit_test(test_request_exportable),
        cmocka_unit_test(test_sealed_key_binding),
        cmocka_unit_test(test_request_refused),
        cmocka_unit_test(test_request_ip_sans),
        cmocka_unit_test(test_request_idempotent),
        cmocka_unit_test(test_arn),
        cmocka_unit_test(test_renew),
        cmocka_unit_test(test_renew_at),
        cmocka_unit_test(test_import),
        cmocka_unit_test(test_import_chain),
        cmocka_unit_test(test_import_prerequisites),
        cmocka_unit_test(test_reimport_private_refused),
        cmocka_unit_test(test_delete_in_use),
        cmocka_unit_test(test_delete_after_renewal),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_expiring),
    };
    const struct CMUnitTest service_tests[] = {
        cmocka_unit_test(test_service_material_hsm),
        cmocka_unit_test(test_service_material_sealed),
        cmocka_unit_test(test_service_in_use),
        cmocka_unit_test(test_service_export_not_audited),
        cmocka_unit_test(test_service_request_bad_tags),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return failed + cmocka_run_group_tests(service_tests, svc_setup, svc_teardown);
}
