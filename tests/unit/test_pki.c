/* Unit tests of src/pki against a fresh SoftHSM2 token and metadata database: CA creation with
 * its key in the HSM, issuance per template (checked field by field with OpenSSL), and the exact
 * error of each refusal. */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "kms/kms.h"
#include "pki/pki.h"
#include "util/util.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "kms-pki-test"
#define PIN "1234-user-pin"
#define REGION "eu-west-3"
#define ACCOUNT "111122223333"
#define TEMPLATE(name) "arn:aws:acm-pca:::template/" name "/V1"
#define DAY 86400

typedef struct fixture {
    char *dir;
    kms_keystore ks;
    kms_pki_ca ec;  /* EC_prime256v1, SHA256WITHECDSA */
    kms_pki_ca rsa; /* RSA_2048, SHA256WITHRSA */
} fixture;

static json_t *configuration(const char *key_alg, const char *sig_alg)
{
    json_t *c = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "KeyAlgorithm", key_alg,
                          "SigningAlgorithm", sig_alg, "Subject", "CommonName", "Test Root",
                          "Organization", "Example", "Country", "FR");
    assert_non_null(c);
    return c;
}

static int create_ca(fixture *fx, const char *key_alg, const char *sig_alg, kms_pki_ca *out)
{
    json_t *conf = configuration(key_alg, sig_alg);
    kms_pki_ca_params p = {"ROOT", NULL, conf, NULL, kms_now()};
    int r = kms_pki_ca_create(&fx->ks, &p, out);
    json_decref(conf);
    return r;
}

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
    if (create_ca(fx, "EC_prime256v1", "SHA256WITHECDSA", &fx->ec) != 0 ||
        create_ca(fx, "RSA_2048", "SHA256WITHRSA", &fx->rsa) != 0) {
        fail_msg("create CA: %s", kms_last_error_message());
    }
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    if (fx == NULL) {
        return 0;
    }
    kms_pki_ca_clean_up(&fx->ec);
    kms_pki_ca_clean_up(&fx->rsa);
    kms_store_close(fx->ks.store);
    kms_hsm_close(fx->ks.hsm);
    kms_test_rmrf(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* ---- Helpers -----------------------------------------------------------------------------------
 */

static X509 *parse_der(const uint8_t *der, size_t len)
{
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    assert_ptr_equal(p, der + len);
    return x;
}

static X509 *ca_cert(const kms_pki_ca *ca)
{
    return parse_der(ca->certificate, ca->certificate_len);
}

/* A PEM CSR for a fresh key (EC P-256 or RSA 2048) with subject CN=cn, the SAN text (openssl.cnf
 * syntax, NULL: none) and, if ca_true, basicConstraints CA:TRUE. *len receives its length. */
static char *make_csr(bool rsa, const char *cn, const char *san, bool ca_true, size_t *len)
{
    EVP_PKEY *key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    assert_non_null(key);
    assert_non_null(req);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    if (cn != NULL) {
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    }
    if (san != NULL) {
        sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san));
    }
    if (ca_true) {
        sk_X509_EXTENSION_push(exts,
                               X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "CA:TRUE"));
    }
    if (sk_X509_EXTENSION_num(exts) > 0) {
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    }
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *pem = strndup(data, (size_t)n);
    *len = (size_t)n;
    BIO_free(bio);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return pem;
}

static kms_pki_issue_params params(const char *csr, size_t len, const char *sig,
                                   const char *template_arn, const char *type, int64_t value)
{
    kms_pki_issue_params p = {(const uint8_t *)csr, len, sig, template_arn, type, value, kms_now()};
    return p;
}

/* Issues and returns the parsed certificate (the test fails if issuing does). */
static X509 *issue(fixture *fx, const kms_pki_ca *ca, const kms_pki_issue_params *p,
                   char serial[KMS_PKI_SERIAL_MAX])
{
    uint8_t *der = NULL;
    size_t len = 0;
    if (kms_pki_issue(&fx->ks, ca, p, serial) != 0) {
        fail_msg("issue: %s", kms_last_error_message());
    }
    assert_int_equal(kms_pki_cert_get(&fx->ks, ca->ca_id, serial, &der, &len), 0);
    X509 *x = parse_der(der, len);
    free(der);
    return x;
}

static bool has_eku(X509 *x, int nid)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    bool found = false;
    for (int i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku); i++) {
        found = found || OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == nid;
    }
    EXTENDED_KEY_USAGE_free(eku);
    return found;
}

static int eku_count(X509 *x)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    int n = eku != NULL ? sk_ASN1_OBJECT_num(eku) : 0;
    EXTENDED_KEY_USAGE_free(eku);
    return n;
}

/* ---- CAs ---------------------------------------------------------------------------------------
 */

static void root_certificate_is_self_signed_ca(void **state)
{
    fixture *fx = *state;
    const kms_pki_ca *cas[] = {&fx->ec, &fx->rsa};
    for (size_t i = 0; i < 2; i++) {
        X509 *x = ca_cert(cas[i]);
        assert_string_equal(cas[i]->status, "ACTIVE");
        assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
        assert_int_equal(X509_check_ca(x), 1);
        assert_true(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
        assert_true(X509_get_key_usage(x) & KU_CRL_SIGN);
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
        const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
        assert_non_null(ski);
        assert_non_null(aki);
        assert_int_equal(ASN1_OCTET_STRING_cmp(ski, aki), 0);
        assert_int_equal(X509_get_signature_nid(x),
                         i == 0 ? NID_ecdsa_with_SHA256 : NID_sha256WithRSAEncryption);
        assert_true(cas[i]->not_after - cas[i]->not_before >=
                    (int64_t)KMS_PKI_ROOT_VALIDITY_DAYS * DAY);
        X509_free(x);
    }
}

static void ca_key_is_in_the_hsm_and_not_extractable(void **state)
{
    fixture *fx = *state;
    kms_hsm_key_attrs a;
    assert_int_equal(kms_keystore_ca_key_attributes(&fx->ks, fx->ec.ca_id, &a), 0);
    assert_true(a.token);
    assert_true(a.sensitive);
    assert_false(a.extractable);
    assert_true(a.always_sensitive);
    assert_true(a.never_extractable);
}

/* A managed certificate's key: made in the HSM, never extractable, signs a digest the caller
 * computed (PSS included for RSA), refuses another family's algorithm and a wrong digest size. */
static void cert_key_signs_digests_in_the_hsm(void **state)
{
    fixture *fx = *state;
    uint8_t *spki = NULL, *sig = NULL;
    size_t spki_len = 0, sig_len = 0;
    uint8_t digest[32] = {7, 7, 7};
    kms_hsm_key_attrs a;
    assert_int_equal(
        kms_keystore_cert_key_create(&fx->ks, "cert-key-test.1", "ECC_NIST_P256", &spki, &spki_len),
        0);
    const uint8_t *p = spki;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
    assert_non_null(pub);
    assert_int_equal(kms_keystore_cert_key_sign_digest(&fx->ks, "cert-key-test.1", "ECC_NIST_P256",
                                                       "ECDSA_SHA_256", digest, sizeof digest, &sig,
                                                       &sig_len),
                     0);
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pub, NULL);
    assert_int_equal(EVP_PKEY_verify_init(v), 1);
    assert_int_equal(EVP_PKEY_verify(v, sig, sig_len, digest, sizeof digest), 1);
    EVP_PKEY_CTX_free(v);
    free(sig);
    sig = NULL;
    assert_kms_error(kms_keystore_cert_key_sign_digest(&fx->ks, "cert-key-test.1", "ECC_NIST_P256",
                                                       "RSASSA_PSS_SHA_256", digest, sizeof digest,
                                                       &sig, &sig_len),
                     KMS_ERR_INVALID_ARGS);
    assert_kms_error(kms_keystore_cert_key_sign_digest(&fx->ks, "cert-key-test.1", "ECC_NIST_P256",
                                                       "ECDSA_SHA_384", digest, sizeof digest, &sig,
                                                       &sig_len),
                     KMS_ERR_INVALID_ARGS);
    assert_null(sig);
    assert_int_equal(kms_keystore_cert_key_attributes(&fx->ks, "cert-key-test.1", &a), 0);
    assert_true(a.sensitive && !a.extractable && a.never_extractable);
    assert_int_equal(kms_keystore_cert_key_destroy(&fx->ks, "cert-key-test.1"), 0);
    assert_kms_error(kms_keystore_cert_key_attributes(&fx->ks, "cert-key-test.1", &a),
                     KMS_ERR_NOT_FOUND);
    EVP_PKEY_free(pub);
    free(spki);
}

static void p384_and_rsa3072_cas(void **state)
{
    fixture *fx = *state;
    kms_pki_ca ca;
    assert_int_equal(create_ca(fx, "EC_secp384r1", "SHA384WITHECDSA", &ca), 0);
    X509 *x = ca_cert(&ca);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA384);
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(x)), 384);
    X509_free(x);
    kms_pki_ca_clean_up(&ca);
    assert_int_equal(create_ca(fx, "RSA_3072", "SHA384WITHRSA", &ca), 0);
    x = ca_cert(&ca);
    assert_int_equal(X509_get_signature_nid(x), NID_sha384WithRSAEncryption);
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(x)), 3072);
    X509_free(x);
    kms_pki_ca_clean_up(&ca);
}

static int count_cb(void *arg, const kms_pki_ca *ca)
{
    (void)ca;
    (*(size_t *)arg)++;
    return 0;
}

static size_t ca_count(fixture *fx)
{
    size_t n = 0;
    bool truncated = true;
    assert_int_equal(kms_pki_ca_list(&fx->ks, "", 1000, count_cb, &n, &truncated), 0);
    assert_false(truncated);
    return n;
}

static void create_refusals_leave_nothing(void **state)
{
    fixture *fx = *state;
    kms_pki_ca ca;
    size_t before = ca_count(fx);
    assert_kms_error(create_ca(fx, "EC_secp256k1", "SHA256WITHECDSA", &ca), KMS_ERR_INVALID_ARGS);
    assert_kms_error(create_ca(fx, "DSA_1024", "SHA256WITHECDSA", &ca), KMS_ERR_INVALID_ARGS);
    assert_kms_error(create_ca(fx, "EC_prime256v1", "SHA256WITHRSA", &ca), KMS_ERR_INVALID_ARGS);
    assert_kms_error(create_ca(fx, "RSA_2048", "MD5WITHRSA", &ca), KMS_ERR_INVALID_ARGS);
    json_t *conf = configuration("EC_prime256v1", "SHA256WITHECDSA");
    json_object_set_new(json_object_get(conf, "Subject"), "Nickname", json_string("x"));
    kms_pki_ca_params p = {"ROOT", NULL, conf, NULL, kms_now()};
    assert_kms_error(kms_pki_ca_create(&fx->ks, &p, &ca), KMS_ERR_INVALID_ARGS);
    json_object_del(json_object_get(conf, "Subject"), "Nickname");
    json_object_set_new(json_object_get(conf, "Subject"), "Country", json_string("FRA"));
    assert_kms_error(kms_pki_ca_create(&fx->ks, &p, &ca), KMS_ERR_INVALID_ARGS);
    json_object_set_new(json_object_get(conf, "Subject"), "Country", json_string("FR"));
    p.type = "INTERMEDIATE";
    assert_kms_error(kms_pki_ca_create(&fx->ks, &p, &ca), KMS_ERR_INVALID_ARGS);
    p.type = "ROOT";
    p.usage_mode = "FOREVER";
    assert_kms_error(kms_pki_ca_create(&fx->ks, &p, &ca), KMS_ERR_INVALID_ARGS);
    p.usage_mode = "SHORT_LIVED_CERTIFICATE";
    assert_int_equal(kms_pki_ca_create(&fx->ks, &p, &ca), 0);
    assert_string_equal(ca.usage_mode, "SHORT_LIVED_CERTIFICATE");
    /* It issues for 7 days at most. */
    char serial[KMS_PKI_SERIAL_MAX];
    size_t len = 0;
    char *csr = make_csr(false, "short", NULL, false, &len);
    kms_pki_issue_params ip = params(csr, len, "SHA256WITHECDSA", NULL, "DAYS", 8);
    assert_kms_error(kms_pki_issue(&fx->ks, &ca, &ip, serial), KMS_ERR_VALIDATION);
    ip.validity_value = 7;
    assert_int_equal(kms_pki_issue(&fx->ks, &ca, &ip, serial), 0);
    free(csr);
    kms_pki_ca_clean_up(&ca);
    json_decref(conf);
    assert_int_equal(ca_count(fx), before + 1);
}

static void get_and_list(void **state)
{
    fixture *fx = *state;
    kms_pki_ca ca;
    assert_int_equal(kms_pki_ca_get(&fx->ks, fx->ec.ca_id, &ca), 0);
    assert_string_equal(ca.key_algorithm, "EC_prime256v1");
    assert_string_equal(ca.serial, fx->ec.serial);
    assert_int_equal(ca.certificate_len, fx->ec.certificate_len);
    assert_memory_equal(ca.certificate, fx->ec.certificate, ca.certificate_len);
    kms_pki_ca_clean_up(&ca);
    assert_kms_error(kms_pki_ca_get(&fx->ks, "00000000-0000-4000-8000-000000000000", &ca),
                     KMS_ERR_RESOURCE_NOT_FOUND);
    size_t n = 0;
    bool truncated = false;
    assert_int_equal(kms_pki_ca_list(&fx->ks, "", 1, count_cb, &n, &truncated), 0);
    assert_int_equal(n, 1);
    assert_true(truncated);
}

static void arns(void **state)
{
    fixture *fx = *state;
    char arn[KMS_ARN_MAX], id[37], serial[KMS_PKI_SERIAL_MAX];
    kms_pki_ca_arn(&fx->ks, fx->ec.ca_id, arn);
    assert_int_equal(kms_pki_arn_parse(&fx->ks, arn, id, NULL), 0);
    assert_string_equal(id, fx->ec.ca_id);
    assert_kms_error(kms_pki_arn_parse(&fx->ks, arn, id, serial), KMS_ERR_INVALID_ARN);
    kms_pki_cert_arn(&fx->ks, fx->ec.ca_id, "7f01", arn);
    assert_int_equal(kms_pki_arn_parse(&fx->ks, arn, id, serial), 0);
    assert_string_equal(serial, "7f01");
    assert_kms_error(kms_pki_arn_parse(&fx->ks, arn, id, NULL), KMS_ERR_INVALID_ARN);
    assert_kms_error(kms_pki_arn_parse(&fx->ks,
                                       "arn:aws:acm-pca:us-east-1:111122223333:certificate-"
                                       "authority/00000000-0000-4000-8000-000000000000",
                                       id, NULL),
                     KMS_ERR_INVALID_ARN);
    kms_pki_cert_arn(&fx->ks, fx->ec.ca_id, "7F01", arn);
    assert_kms_error(kms_pki_arn_parse(&fx->ks, arn, id, serial), KMS_ERR_INVALID_ARN);
}

/* ---- Issuing -----------------------------------------------------------------------------------
 */

static void issue_per_template(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *arn;
        int eku[2];
        int eku_n;
        bool ca;
    } cases[] = {
        {TEMPLATE("EndEntityCertificate"), {NID_server_auth, NID_client_auth}, 2, false},
        {TEMPLATE("EndEntityServerAuthCertificate"), {NID_server_auth, 0}, 1, false},
        {TEMPLATE("EndEntityClientAuthCertificate"), {NID_client_auth, 0}, 1, false},
        {TEMPLATE("CodeSigningCertificate"), {NID_code_sign, 0}, 1, false},
        {TEMPLATE("SubordinateCACertificate_PathLen0"), {0, 0}, 0, true},
    };
    X509 *cax = ca_cert(&fx->ec);
    size_t len = 0;
    char *csr = make_csr(false, "app.internal", "DNS:app.internal,IP:10.1.2.3", false, &len);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char serial[KMS_PKI_SERIAL_MAX];
        kms_pki_issue_params p = params(csr, len, "SHA256WITHECDSA", cases[i].arn, "DAYS", 30);
        X509 *x = issue(fx, &fx->ec, &p, serial);
        assert_int_equal(X509_verify(x, X509_get0_pubkey(cax)), 1);
        assert_int_equal(X509_check_issued(cax, x), X509_V_OK);
        assert_int_equal(X509_check_ca(x), cases[i].ca ? 1 : 0);
        BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
        assert_non_null(bc);
        assert_int_equal(bc->ca != 0, cases[i].ca);
        if (cases[i].ca) {
            assert_non_null(bc->pathlen);
            assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
            assert_true(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
        } else {
            assert_false(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
            assert_true(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
            assert_false(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT); /* an EC key */
        }
        BASIC_CONSTRAINTS_free(bc);
        assert_int_equal(eku_count(x), cases[i].eku_n);
        for (int e = 0; e < cases[i].eku_n; e++) {
            assert_true(has_eku(x, cases[i].eku[e]));
        }
        assert_int_equal(
            ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(cax)), 0);
        assert_non_null(X509_get0_subject_key_id(x));
        GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        assert_non_null(san);
        assert_int_equal(sk_GENERAL_NAME_num(san), 2);
        assert_int_equal(sk_GENERAL_NAME_value(san, 0)->type, GEN_DNS);
        assert_int_equal(sk_GENERAL_NAME_value(san, 1)->type, GEN_IPADD);
        GENERAL_NAMES_free(san);
        /* RFC 5280 4.1.2.2: positive, at most 20 octets; the serial text names it. */
        const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
        assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER);
        assert_true(ASN1_STRING_length(sn) >= 8 && ASN1_STRING_length(sn) <= 20);
        BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
        char *hex = BN_bn2hex(bn);
        assert_int_equal(strcasecmp(hex, serial), 0);
        OPENSSL_free(hex);
        BN_free(bn);
        int64_t span = 0;
        int days = 0, secs = 0;
        assert_int_equal(
            ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
        span = (int64_t)days * DAY + secs;
        assert_int_equal(span, 30 * DAY + KMS_PKI_BACKDATE_SECONDS);
        X509_free(x);
    }
    free(csr);
    X509_free(cax);
}

static void rsa_subject_key_and_rsa_ca(void **state)
{
    fixture *fx = *state;
    char serial[KMS_PKI_SERIAL_MAX];
    size_t len = 0;
    char *csr = make_csr(true, "rsa.internal", "DNS:rsa.internal", false, &len);
    kms_pki_issue_params p =
        params(csr, len, "SHA256WITHRSA", TEMPLATE("EndEntityServerAuthCertificate"), NULL, 0);
    X509 *x = issue(fx, &fx->rsa, &p, serial);
    X509 *cax = ca_cert(&fx->rsa);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(cax)), 1);
    assert_int_equal(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
    assert_true(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT);
    /* No Validity: the recommended 90 days. */
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)),
                     1);
    assert_int_equal((int64_t)days * DAY + secs,
                     (int64_t)KMS_PKI_DEFAULT_DAYS * DAY + KMS_PKI_BACKDATE_SECONDS);
    X509_free(cax);
    X509_free(x);
    /* An EC signing algorithm from an RSA CA. */
    p.signing_algorithm = "SHA256WITHECDSA";
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->rsa, &p, serial), KMS_ERR_INVALID_ARGS);
    free(csr);
}

static void serials_differ(void **state)
{
    fixture *fx = *state;
    char a[KMS_PKI_SERIAL_MAX], b[KMS_PKI_SERIAL_MAX];
    size_t len = 0;
    char *csr = make_csr(false, "x.internal", NULL, false, &len);
    kms_pki_issue_params p = params(csr, len, "SHA256WITHECDSA", NULL, "DAYS", 1);
    X509 *x = issue(fx, &fx->ec, &p, a);
    X509 *y = issue(fx, &fx->ec, &p, b);
    assert_string_not_equal(a, b);
    assert_int_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(y)) != 0,
                     1);
    X509_free(x);
    X509_free(y);
    free(csr);
}

static void bad_csrs_are_refused(void **state)
{
    fixture *fx = *state;
    char serial[KMS_PKI_SERIAL_MAX];
    size_t len = 0;
    char *csr = make_csr(false, "app.internal", "DNS:app.internal", false, &len);
    /* One bit of the signature flipped: decode, flip the last byte of the DER, encode. */
    BIO *in = BIO_new_mem_buf(csr, (int)len);
    X509_REQ *req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL);
    BIO_free(in);
    assert_non_null(req);
    unsigned char *der = NULL;
    int der_len = i2d_X509_REQ(req, &der);
    X509_REQ_free(req);
    assert_true(der_len > 0);
    der[der_len - 1] ^= 0x01;
    kms_pki_issue_params p =
        params((const char *)der, (size_t)der_len, "SHA256WITHECDSA", NULL, "DAYS", 1);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_MALFORMED_CSR);
    assert_string_equal(serial, "");
    der[der_len - 1] ^= 0x01;
    /* The unbroken DER is taken. */
    assert_int_equal(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), 0);
    /* The same checks, on their own (the fuzzer's entry point). */
    assert_int_equal(
        kms_pki_csr_check(der, (size_t)der_len, TEMPLATE("SubordinateCACertificate_PathLen0")), 0);
    der[der_len - 1] ^= 0x01;
    assert_kms_error(kms_pki_csr_check(der, (size_t)der_len, TEMPLATE("EndEntityCertificate")),
                     KMS_ERR_MALFORMED_CSR);
    OPENSSL_free(der);
    p = params("not a CSR", 9, "SHA256WITHECDSA", NULL, "DAYS", 1);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_MALFORMED_CSR);
    p = params(csr, KMS_PKI_CSR_MAX + 1, "SHA256WITHECDSA", NULL, "DAYS", 1);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_MALFORMED_CSR);
    free(csr);
    /* CA:TRUE from an end-entity template; taken by the subordinate CA template. */
    csr = make_csr(false, "sub", NULL, true, &len);
    p = params(csr, len, "SHA256WITHECDSA", TEMPLATE("EndEntityCertificate"), "DAYS", 1);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_INVALID_ARGS);
    p.template_arn = TEMPLATE("SubordinateCACertificate_PathLen0");
    assert_int_equal(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), 0);
    free(csr);
    /* An email address in the SAN. */
    csr = make_csr(false, "m", "email:a@example.com", false, &len);
    p = params(csr, len, "SHA256WITHECDSA", NULL, "DAYS", 1);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_INVALID_ARGS);
    free(csr);
}

static void validity_rules(void **state)
{
    fixture *fx = *state;
    char serial[KMS_PKI_SERIAL_MAX];
    size_t len = 0;
    char *csr = make_csr(false, "v.internal", "DNS:v.internal", false, &len);
    const char *client = TEMPLATE("EndEntityClientAuthCertificate");
    const char *server = TEMPLATE("EndEntityServerAuthCertificate");
    /* Beyond the CA's notAfter: refused, as AWS refuses it. */
    kms_pki_issue_params p = params(csr, len, "SHA256WITHECDSA", client, "YEARS", 11);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_VALIDATION);
    p = params(csr, len, "SHA256WITHECDSA", client, "ABSOLUTE", fx->ec.not_after + 1);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_VALIDATION);
    p = params(csr, len, "SHA256WITHECDSA", client, "ABSOLUTE", fx->ec.not_after);
    assert_int_equal(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), 0);
    /* Server certificates: at most 366 days. */
    p = params(csr, len, "SHA256WITHECDSA", server, "DAYS", 367);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_VALIDATION);
    p = params(csr, len, "SHA256WITHECDSA", server, "DAYS", 366);
    assert_int_equal(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), 0);
    p = params(csr, len, "SHA256WITHECDSA", client, "MONTHS", 13);
    assert_int_equal(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), 0);
    p = params(csr, len, "SHA256WITHECDSA", client, "END_DATE", 20300101000000);
    assert_int_equal(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), 0);
    p = params(csr, len, "SHA256WITHECDSA", client, "WEEKS", 2);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_INVALID_ARGS);
    p = params(csr, len, "SHA256WITHECDSA", client, "DAYS", 0);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_INVALID_ARGS);
    p = params(csr, len, "SHA256WITHECDSA", TEMPLATE("RootCACertificate"), "DAYS", 1);
    assert_kms_error(kms_pki_issue(&fx->ks, &fx->ec, &p, serial), KMS_ERR_INVALID_ARGS);
    /* Disabled through the store, it issues nothing; enabled again, it issues. */
    kms_pki_ca got;
    assert_kms_error(kms_pki_ca_set_status(&fx->ks, &fx->ec, "PAUSED", kms_now()),
                     KMS_ERR_INVALID_ARGS);
    assert_int_equal(kms_pki_ca_set_status(&fx->ks, &fx->ec, "DISABLED", kms_now()), 0);
    assert_int_equal(kms_pki_ca_get(&fx->ks, fx->ec.ca_id, &got), 0);
    assert_string_equal(got.status, "DISABLED");
    p = params(csr, len, "SHA256WITHECDSA", client, "DAYS", 1);
    assert_kms_error(kms_pki_issue(&fx->ks, &got, &p, serial), KMS_ERR_PCA_INVALID_STATE);
    assert_int_equal(kms_pki_ca_set_status(&fx->ks, &got, "ACTIVE", kms_now()), 0);
    kms_pki_ca_clean_up(&got);
    assert_int_equal(kms_pki_ca_get(&fx->ks, fx->ec.ca_id, &got), 0);
    assert_string_equal(got.status, "ACTIVE");
    assert_int_equal(kms_pki_issue(&fx->ks, &got, &p, serial), 0);
    kms_pki_ca_clean_up(&got);
    /* A CA that is not ACTIVE issues nothing. */
    kms_pki_ca copy = fx->ec;
    snprintf(copy.status, sizeof copy.status, "DISABLED");
    p = params(csr, len, "SHA256WITHECDSA", client, "DAYS", 1);
    assert_kms_error(kms_pki_issue(&fx->ks, &copy, &p, serial), KMS_ERR_PCA_INVALID_STATE);
    free(csr);
}

/* The signature comes from the HSM: without the CA's key there, nothing is issued. */
static void signatures_come_from_the_hsm(void **state)
{
    fixture *fx = *state;
    kms_pki_ca ca;
    char serial[KMS_PKI_SERIAL_MAX];
    size_t len = 0;
    uint8_t *der = NULL;
    assert_int_equal(create_ca(fx, "EC_prime256v1", "SHA256WITHECDSA", &ca), 0);
    assert_int_equal(kms_keystore_ca_key_destroy(&fx->ks, ca.ca_id), 0);
    char *csr = make_csr(false, "h.internal", NULL, false, &len);
    kms_pki_issue_params p = params(csr, len, "SHA256WITHECDSA", NULL, "DAYS", 1);
    assert_int_equal(kms_pki_issue(&fx->ks, &ca, &p, serial), -1);
    assert_string_equal(serial, "");
    assert_kms_error(kms_pki_cert_get(&fx->ks, ca.ca_id, "7f", &der, &len),
                     KMS_ERR_RESOURCE_NOT_FOUND);
    assert_null(der);
    free(csr);
    kms_pki_ca_clean_up(&ca);
}

/* ---- Revocation --------------------------------------------------------------------------------
 */

static X509_CRL *crl_of(fixture *fx, const kms_pki_ca *ca)
{
    uint8_t *der = NULL;
    size_t len = 0;
    if (kms_pki_crl(&fx->ks, ca, kms_now(), &der, &len) != 0) {
        fail_msg("crl: %s", kms_last_error_message());
    }
    const uint8_t *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(crl);
    assert_ptr_equal(p, der + len);
    free(der);
    return crl;
}

static int64_t crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(n);
    int64_t v = 0;
    assert_int_equal(ASN1_INTEGER_get_int64(&v, n), 1);
    ASN1_INTEGER_free(n);
    return v;
}

static void revoke_and_crl(void **state)
{
    fixture *fx = *state;
    const kms_pki_ca *cas[] = {&fx->ec, &fx->rsa};
    for (size_t i = 0; i < 2; i++) {
        const kms_pki_ca *ca = cas[i];
        char a[KMS_PKI_SERIAL_MAX], b[KMS_PKI_SERIAL_MAX];
        size_t len = 0;
        char *csr = make_csr(false, "r.internal", NULL, false, &len);
        const char *sig = i == 0 ? "SHA256WITHECDSA" : "SHA256WITHRSA";
        kms_pki_issue_params p = params(csr, len, sig, NULL, "DAYS", 1);
        X509 *xa = issue(fx, ca, &p, a);
        X509 *xb = issue(fx, ca, &p, b);
        X509 *cax = ca_cert(ca);
        X509_CRL *before = crl_of(fx, ca);
        assert_int_equal(X509_CRL_verify(before, X509_get0_pubkey(cax)), 1);
        X509_REVOKED *rev = NULL;
        assert_int_equal(X509_CRL_get0_by_cert(before, &rev, xa), 0);
        /* Revoke a, given as openssl prints serials (upper case, colons). */
        char printed[3 * KMS_PKI_SERIAL_MAX] = "";
        for (size_t k = 0; a[k] != '\0'; k += 2) {
            snprintf(printed + strlen(printed), sizeof printed - strlen(printed), "%s%c%c",
                     k ? ":" : "", a[k] - (a[k] >= 'a' ? 32 : 0),
                     a[k + 1] - (a[k + 1] >= 'a' ? 32 : 0));
        }
        assert_int_equal(kms_pki_revoke(&fx->ks, ca, printed, "KEY_COMPROMISE", kms_now()), 0);
        assert_kms_error(kms_pki_revoke(&fx->ks, ca, a, "KEY_COMPROMISE", kms_now()),
                         KMS_ERR_ALREADY_PROCESSED);
        assert_kms_error(kms_pki_revoke(&fx->ks, ca, b, "BORED", kms_now()), KMS_ERR_INVALID_ARGS);
        assert_kms_error(kms_pki_revoke(&fx->ks, ca, "7f", "SUPERSEDED", kms_now()),
                         KMS_ERR_RESOURCE_NOT_FOUND);
        assert_kms_error(kms_pki_revoke(&fx->ks, ca, "xyz", "SUPERSEDED", kms_now()),
                         KMS_ERR_INVALID_ARGS);
        /* The other CA did not issue b. */
        assert_kms_error(kms_pki_revoke(&fx->ks, cas[1 - i], b, "SUPERSEDED", kms_now()),
                         KMS_ERR_RESOURCE_NOT_FOUND);
        X509_CRL *after = crl_of(fx, ca);
        assert_int_equal(X509_CRL_verify(after, X509_get0_pubkey(cax)), 1);
        assert_int_equal(X509_CRL_get_signature_nid(after), X509_get_signature_nid(cax));
        assert_true(crl_number(after) > crl_number(before));
        assert_int_equal(X509_CRL_get_version(after), X509_CRL_VERSION_2);
        assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(after), X509_get_subject_name(cax)), 0);
        assert_int_equal(X509_CRL_get0_by_cert(after, &rev, xa), 1);
        ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
        assert_non_null(reason);
        assert_int_equal(ASN1_ENUMERATED_get(reason), CRL_REASON_KEY_COMPROMISE);
        ASN1_ENUMERATED_free(reason);
        assert_int_equal(X509_CRL_get0_by_cert(after, &rev, xb), 0);
        int days = 0, secs = 0;
        assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(after),
                                        X509_CRL_get0_nextUpdate(after)),
                         1);
        assert_int_equal(days, KMS_PKI_CRL_DAYS);
        /* UNSPECIFIED: listed without a reasonCode (RFC 5280 5.3.1). */
        assert_int_equal(kms_pki_revoke(&fx->ks, ca, b, "UNSPECIFIED", kms_now()), 0);
        X509_CRL *third = crl_of(fx, ca);
        assert_int_equal(X509_CRL_get0_by_cert(third, &rev, xb), 1);
        assert_null(X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL));
        assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(third)), 2);
        X509_CRL_free(third);
        X509_CRL_free(after);
        X509_CRL_free(before);
        X509_free(cax);
        X509_free(xa);
        X509_free(xb);
        free(csr);
    }
}

/* The cRLNumber of the CRL file at path. */
static int64_t crl_file_number(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(kms_file_read(path, 1 << 20, &data, &len), 0);
    const unsigned char *p = (const unsigned char *)data;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(crl);
    int64_t n = crl_number(crl);
    X509_CRL_free(crl);
    free(data);
    return n;
}

typedef struct publisher {
    fixture *fx;
    int r;
    atomic_bool done;
} publisher;

static void *publish_thread(void *arg)
{
    publisher *pb = arg;
    pb->r = kms_pki_crl_publish(&pb->fx->ks, &pb->fx->ec, pb->fx->dir, kms_now());
    atomic_store(&pb->done, true);
    return NULL;
}

/* Publication is serialised per CA (flock on HOME/crl/CA_ID.lock, from the CRL number to the
 * rename), and a published CRL with a higher number is never replaced by a lower one. */
static void crl_publication_in_order(void **state)
{
    fixture *fx = *state;
    char *path = kms_strdup_printf("%s/crl/%s.crl", fx->dir, fx->ec.ca_id);
    char *lock_path = kms_strdup_printf("%s/crl/%s.lock", fx->dir, fx->ec.ca_id);
    assert_int_equal(kms_pki_crl_publish(&fx->ks, &fx->ec, fx->dir, kms_now()), 0);
    int64_t first = crl_file_number(path);
    /* Another publisher holds the lock: this one waits for it, writing nothing meanwhile. */
    int fd = -1;
    assert_int_equal(kms_file_lock(lock_path, true, &fd), 0);
    publisher pb = {fx, -1, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, publish_thread, &pb), 0);
    usleep(500 * 1000);
    assert_false(atomic_load(&pb.done));
    assert_int_equal(crl_file_number(path), first);
    close(fd);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(pb.r, 0);
    assert_true(crl_file_number(path) > first);
    /* A file with a higher number (a CRL of any signer will do) is left as it is. */
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_CRL *crl = X509_CRL_new();
    ASN1_INTEGER *n = ASN1_INTEGER_new();
    ASN1_TIME *t0 = ASN1_TIME_set(NULL, (time_t)kms_now());
    assert_int_equal(ASN1_INTEGER_set_int64(n, 1000000), 1);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t0), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, t0), 1);
    assert_int_equal(X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, 0), 1);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    assert_true(len > 0);
    assert_int_equal(kms_file_write_atomic(path, der, (size_t)len, 0644), 0);
    assert_int_equal(kms_pki_crl_publish(&fx->ks, &fx->ec, fx->dir, kms_now()), 0);
    assert_int_equal(crl_file_number(path), 1000000);
    OPENSSL_free(der);
    ASN1_TIME_free(t0);
    ASN1_INTEGER_free(n);
    X509_CRL_free(crl);
    EVP_PKEY_free(key);
    free(lock_path);
    free(path);
}

/* ---- Subordinate CAs ---------------------------------------------------------------------------
 */

static void subordinate_ca(void **state)
{
    fixture *fx = *state;
    kms_pki_ca sub, got;
    char *csr = NULL;
    char serial[KMS_PKI_SERIAL_MAX];
    json_t *conf = configuration("EC_secp384r1", "SHA384WITHECDSA");
    kms_pki_ca_params cp = {"SUBORDINATE", NULL, conf, NULL, kms_now()};
    assert_int_equal(kms_pki_ca_create(&fx->ks, &cp, &sub), 0);
    json_decref(conf);
    assert_string_equal(sub.status, "PENDING_CERTIFICATE");
    assert_null(sub.certificate);
    /* Pending: it issues nothing; a ROOT CA has no CSR. */
    size_t len = 0;
    char *leaf_csr = make_csr(false, "leaf.internal", "DNS:leaf.internal", false, &len);
    kms_pki_issue_params lp = params(leaf_csr, len, "SHA384WITHECDSA", NULL, "DAYS", 10);
    assert_kms_error(kms_pki_issue(&fx->ks, &sub, &lp, serial), KMS_ERR_PCA_INVALID_STATE);
    assert_kms_error(kms_pki_ca_csr(&fx->ks, &fx->ec, &csr), KMS_ERR_PCA_INVALID_STATE);
    /* Its CSR: its subject and HSM key, CA:TRUE asked, signed in the HSM. */
    assert_int_equal(kms_pki_ca_csr(&fx->ks, &sub, &csr), 0);
    BIO *bio = BIO_new_mem_buf(csr, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(req);
    assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
    const uint8_t *p = sub.public_key;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)sub.public_key_len);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), pub), 1);
    X509_REQ_free(req);
    /* A certificate for another key is refused; the root's own one, which is no sub's, too. */
    size_t other_len = 0;
    char *other = make_csr(false, "other", NULL, true, &other_len);
    kms_pki_issue_params ip = params(other, other_len, "SHA256WITHECDSA",
                                     TEMPLATE("SubordinateCACertificate_PathLen0"), "YEARS", 2);
    uint8_t *der = NULL, *root_pem = NULL;
    size_t der_len = 0;
    char *root_text = NULL;
    assert_int_equal(kms_pki_issue(&fx->ks, &fx->ec, &ip, serial), 0);
    assert_int_equal(kms_pki_cert_get(&fx->ks, fx->ec.ca_id, serial, &der, &der_len), 0);
    assert_int_equal(kms_pki_pem(fx->ec.certificate, fx->ec.certificate_len, &root_text), 0);
    root_pem = (uint8_t *)root_text;
    assert_kms_error(
        kms_pki_ca_import(&fx->ks, &sub, der, der_len, root_pem, strlen(root_text), kms_now()),
        KMS_ERR_CERTIFICATE_MISMATCH);
    free(der);
    /* The root issues it from the sub's CSR; a chain that is not its issuer is refused. */
    ip = params(csr, strlen(csr), "SHA256WITHECDSA", TEMPLATE("SubordinateCACertificate_PathLen0"),
                "YEARS", 2);
    assert_int_equal(kms_pki_issue(&fx->ks, &fx->ec, &ip, serial), 0);
    assert_int_equal(kms_pki_cert_get(&fx->ks, fx->ec.ca_id, serial, &der, &der_len), 0);
    char *rsa_root = NULL;
    assert_int_equal(kms_pki_pem(fx->rsa.certificate, fx->rsa.certificate_len, &rsa_root), 0);
    assert_kms_error(kms_pki_ca_import(&fx->ks, &sub, der, der_len, (uint8_t *)rsa_root,
                                       strlen(rsa_root), kms_now()),
                     KMS_ERR_INVALID_REQUEST);
    assert_int_equal(
        kms_pki_ca_import(&fx->ks, &sub, der, der_len, root_pem, strlen(root_text), kms_now()), 0);
    assert_int_equal(kms_pki_ca_get(&fx->ks, sub.ca_id, &got), 0);
    assert_string_equal(got.status, "ACTIVE");
    assert_string_equal(got.serial, serial);
    assert_int_equal(got.chain_len, strlen(root_text));
    assert_memory_equal(got.chain, root_text, got.chain_len);
    /* Installed once only. */
    assert_kms_error(
        kms_pki_ca_import(&fx->ks, &got, der, der_len, root_pem, strlen(root_text), kms_now()),
        KMS_ERR_PCA_INVALID_STATE);
    /* Now it issues, within its own validity. */
    X509 *leaf = issue(fx, &got, &lp, serial);
    X509 *subx = ca_cert(&got);
    assert_int_equal(X509_verify(leaf, X509_get0_pubkey(subx)), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(subx)), 0);
    lp = params(leaf_csr, len, "SHA384WITHECDSA", TEMPLATE("EndEntityClientAuthCertificate"),
                "YEARS", 3);
    assert_kms_error(kms_pki_issue(&fx->ks, &got, &lp, serial), KMS_ERR_VALIDATION);
    X509_free(subx);
    X509_free(leaf);
    EVP_PKEY_free(pub);
    free(der);
    free(rsa_root);
    free(root_text);
    free(other);
    free(leaf_csr);
    free(csr);
    kms_pki_ca_clean_up(&got);
    kms_pki_ca_clean_up(&sub);
}

/* ---- Accounts, ApiPassthrough, allowed names, the scheduler's work (issue 16) -------------------
 */

static int count_cb2(void *arg, const kms_pki_ca *ca)
{
    (void)ca;
    (*(size_t *)arg)++;
    return 0;
}

/* A CA belongs to its creator's account: another account's view finds and lists none of it. */
static void accounts_are_separate(void **state)
{
    fixture *fx = *state;
    kms_keystore other;
    kms_pki_ca ca;
    char arn[KMS_ARN_MAX], id[37];
    size_t n = 0;
    bool truncated = true;
    kms_pki_keystore_as(&fx->ks, "444455556666", &other);
    assert_kms_error(kms_pki_ca_get(&other, fx->ec.ca_id, &ca), KMS_ERR_RESOURCE_NOT_FOUND);
    assert_int_equal(kms_pki_ca_list(&other, "", 1000, count_cb2, &n, &truncated), 0);
    assert_int_equal(n, 0);
    /* The other account's ARN parses (the lookup says it is not found), and names its account. */
    kms_pki_ca_arn(&other, fx->ec.ca_id, arn);
    assert_non_null(strstr(arn, ":444455556666:certificate-authority/"));
    assert_int_equal(kms_pki_arn_parse(&fx->ks, arn, id, NULL), 0);
    assert_kms_error(kms_pki_ca_get(&fx->ks, "00000000-0000-4000-8000-000000000000", &ca),
                     KMS_ERR_RESOURCE_NOT_FOUND);
    /* A CA made in the other account is its own. */
    json_t *conf = configuration("EC_prime256v1", "SHA256WITHECDSA");
    kms_pki_ca_params p = {"ROOT", NULL, conf, NULL, kms_now()};
    assert_int_equal(kms_pki_ca_create(&other, &p, &ca), 0);
    assert_string_equal(ca.account_id, "444455556666");
    kms_pki_ca got;
    assert_kms_error(kms_pki_ca_get(&fx->ks, ca.ca_id, &got), KMS_ERR_RESOURCE_NOT_FOUND);
    assert_int_equal(kms_pki_ca_get(&other, ca.ca_id, &got), 0);
    kms_pki_ca_clean_up(&got);
    kms_pki_ca_clean_up(&ca);
    json_decref(conf);
}

static int issue_api(fixture *fx, const kms_pki_ca *ca, const char *tpl, const char *api_json,
                     char serial[KMS_PKI_SERIAL_MAX])
{
    size_t len = 0;
    char *csr = make_csr(false, "api.internal", "DNS:api.internal", false, &len);
    kms_pki_issue_params p = params(csr, len, "SHA256WITHECDSA", tpl, "DAYS", 30);
    json_t *api = api_json != NULL ? json_loads(api_json, 0, NULL) : NULL;
    assert_true(api_json == NULL || api != NULL);
    int r = kms_pki_issue_with(&fx->ks, ca, &p, api, serial);
    json_decref(api);
    free(csr);
    return r;
}

static void api_passthrough(void **state)
{
    fixture *fx = *state;
    char serial[KMS_PKI_SERIAL_MAX];
    uint8_t *der = NULL;
    size_t len = 0;
    static const char custom[] = "{\"Extensions\": {\"CustomExtensions\": [{\"ObjectIdentifier\": "
                                 "\"1.3.6.1.4.1.55555.1\", \"Value\": \"DAVoZWxsbw==\", "
                                 "\"Critical\": true}]}}";
    assert_int_equal(
        issue_api(fx, &fx->ec, TEMPLATE("EndEntityCertificate_APIPassthrough"), custom, serial), 0);
    assert_int_equal(kms_pki_cert_get(&fx->ks, fx->ec.ca_id, serial, &der, &len), 0);
    X509 *x = parse_der(der, len);
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1);
    int at = X509_get_ext_by_OBJ(x, oid, -1);
    assert_true(at >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, at)), 1);
    ASN1_OBJECT_free(oid);
    X509_free(x);
    free(der);
    /* Refusals, each with its exact error, and nothing issued. */
    assert_kms_error(issue_api(fx, &fx->ec, TEMPLATE("EndEntityCertificate"), custom, serial),
                     KMS_ERR_INVALID_ARGS);
    assert_string_equal(serial, "");
    assert_kms_error(
        issue_api(fx, &fx->ec, TEMPLATE("EndEntityCertificate_APIPassthrough"),
                  "{\"Extensions\": {\"CustomExtensions\": [{\"ObjectIdentifier\": \"2.5.29.19\", "
                  "\"Value\": \"MAA=\"}]}}",
                  serial),
        KMS_ERR_INVALID_ARGS);
    assert_kms_error(issue_api(fx, &fx->ec, TEMPLATE("CodeSigningCertificate_APIPassthrough"),
                               "{\"Extensions\": {\"CustomExtensions\": []}}", serial),
                     KMS_ERR_VALIDATION);
    assert_kms_error(issue_api(fx, &fx->ec, TEMPLATE("CodeSigningCertificate_APIPassthrough"),
                               "{\"Subject\": {\"Nickname\": \"x\"}}", serial),
                     KMS_ERR_INVALID_ARGS);
    /* A Value that is no single DER value: a long-form length for 3 (04 81 03 ..), a SEQUENCE
     * whose content is no value (30 02 02 05), one holding a long-form length (30 04 02 81 01 05),
     * a BOOLEAN TRUE as 01 (DER: ff), two values (02 01 05 02 01 05). */
    static const char *const not_der[] = {"BIEDAgEF", "MAICBQ==", "MAQCgQEF", "AQEB", "AgEFAgEF"};
    for (size_t i = 0; i < sizeof not_der / sizeof not_der[0]; i++) {
        char *api =
            kms_strdup_printf("{\"Extensions\": {\"CustomExtensions\": [{\"ObjectIdentifier\": "
                              "\"1.3.6.1.4.1.55555.1\", \"Value\": \"%s\"}]}}",
                              not_der[i]);
        assert_kms_error(
            issue_api(fx, &fx->ec, TEMPLATE("EndEntityCertificate_APIPassthrough"), api, serial),
            KMS_ERR_INVALID_ARGS);
        free(api);
    }
    /* CertificatePolicies: one policy twice (RFC 5280 4.2.1.4), a CpsUri that is no IA5String. */
    assert_kms_error(issue_api(fx, &fx->ec, TEMPLATE("EndEntityCertificate_APIPassthrough"),
                               "{\"Extensions\": {\"CertificatePolicies\": [{\"CertPolicyId\": "
                               "\"1.2.3.4\"}, {\"CertPolicyId\": \"1.2.3.4\"}]}}",
                               serial),
                     KMS_ERR_INVALID_ARGS);
    assert_kms_error(
        issue_api(fx, &fx->ec, TEMPLATE("EndEntityCertificate_APIPassthrough"),
                  "{\"Extensions\": {\"CertificatePolicies\": [{\"CertPolicyId\": \"1.2.3.5\", "
                  "\"PolicyQualifiers\": [{\"PolicyQualifierId\": \"CPS\", \"Qualifier\": "
                  "{\"CpsUri\": \"https://\u00e9\u00e9.example/\"}}]}]}}",
                  serial),
        KMS_ERR_INVALID_ARGS);
    assert_string_equal(serial, "");
    assert_int_equal(
        issue_api(fx, &fx->ec, TEMPLATE("EndEntityCertificate_APIPassthrough"),
                  "{\"Extensions\": {\"CertificatePolicies\": [{\"CertPolicyId\": \"1.2.3.4\"}, "
                  "{\"CertPolicyId\": \"1.2.3.5\", \"PolicyQualifiers\": [{\"PolicyQualifierId\": "
                  "\"CPS\", \"Qualifier\": {\"CpsUri\": \"https://cps.example/%C3%A9\"}}]}], "
                  "\"CustomExtensions\": [{\"ObjectIdentifier\": \"1.3.6.1.4.1.55555.1\", "
                  "\"Value\": \"MAYBAf8CAQA=\"}]}}",
                  serial),
        0);
}

/* Issues (EndEntityCertificate) for a CSR whose only name is a CN of ASN.1 string type `type`
 * holding the n bytes of cn as they are (a BMPString in UTF-16BE). */
static int issue_cn(fixture *fx, const kms_pki_ca *ca, int type, const char *cn, int n,
                    char serial[KMS_PKI_SERIAL_MAX])
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    assert_non_null(key);
    assert_non_null(req);
    assert_int_equal(X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req), NID_commonName,
                                                type, (const unsigned char *)cn, n, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    kms_pki_issue_params p = params(data, (size_t)len, "SHA256WITHECDSA",
                                    TEMPLATE("EndEntityServerAuthCertificate"), "DAYS", 30);
    int r = kms_pki_issue(&fx->ks, ca, &p, serial);
    BIO_free(bio);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return r;
}

/* Whether the name constraints of x permit the subtree of that type and value. */
static bool permits(X509 *x, int type, const char *value)
{
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, NULL, NULL);
    bool found = false;
    for (int i = 0; nc != NULL && i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
        const GENERAL_NAME *g = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base;
        found = found ||
                (g->type == type && (type == GEN_EMAIL || type == GEN_URI || type == GEN_DNS) &&
                 strcmp((const char *)ASN1_STRING_get0_data(g->d.ia5), value) == 0);
    }
    NAME_CONSTRAINTS_free(nc);
    return found;
}

static void allowed_name_patterns(void **state)
{
    fixture *fx = *state;
    kms_pki_ca ca;
    char serial[KMS_PKI_SERIAL_MAX];
    json_t *conf = configuration("EC_prime256v1", "SHA256WITHECDSA");
    kms_pki_ca_params p = {"ROOT", NULL, conf, NULL, kms_now()};
    assert_int_equal(json_object_set_new(conf, "AllowedNamePatterns", json_pack("[s]", "*")), 0);
    assert_kms_error(kms_pki_ca_create(&fx->ks, &p, &ca), KMS_ERR_INVALID_ARGS);
    assert_int_equal(
        json_object_set_new(conf, "AllowedNamePatterns", json_pack("[s]", "*.internal")), 0);
    assert_int_equal(kms_pki_ca_create(&fx->ks, &p, &ca), 0);
    assert_int_equal(issue_api(fx, &ca, NULL, NULL, serial), 0);
    assert_kms_error(issue_api(fx, &ca, TEMPLATE("EndEntityCertificate_APIPassthrough"),
                               "{\"Extensions\": {\"SubjectAlternativeNames\": [{\"DnsName\": "
                               "\"www.example.com\"}]}}",
                               serial),
                     KMS_ERR_INVALID_ARGS);
    /* Every common name is checked: a BMPString one as UTF-8, a dotless one (hostname checkers
     * fall back to it without a DNS name). */
    static const char bmp_evil[] = "\0e\0v\0i\0l\0.\0e\0x\0a\0m\0p\0l\0e\0.\0c\0o\0m";
    static const char bmp_ok[] = "\0x\0.\0i\0n\0t\0e\0r\0n\0a\0l";
    static const char bmp_nul[] = "\0x\0.\0i\0n\0t\0e\0r\0n\0a\0l\0"; /* + U+0000 */
    assert_kms_error(issue_cn(fx, &ca, V_ASN1_BMPSTRING, bmp_evil, 32, serial),
                     KMS_ERR_INVALID_ARGS);
    assert_non_null(strstr(kms_last_error_message(), "'evil.example.com'"));
    assert_int_equal(issue_cn(fx, &ca, V_ASN1_BMPSTRING, bmp_ok, 20, serial), 0);
    /* A NUL inside (here the terminator, UTF-16) is no character of a host name. */
    assert_kms_error(issue_cn(fx, &ca, V_ASN1_BMPSTRING, bmp_nul, 22, serial),
                     KMS_ERR_INVALID_ARGS);
    assert_non_null(strstr(kms_last_error_message(), "no string of characters"));
    assert_kms_error(issue_cn(fx, &ca, V_ASN1_UTF8STRING, "localhost", 9, serial),
                     KMS_ERR_INVALID_ARGS);
    assert_kms_error(issue_cn(fx, &ca, V_ASN1_UTF8STRING, "internal", 8, serial),
                     KMS_ERR_INVALID_ARGS);
    assert_kms_error(issue_cn(fx, &ca, V_ASN1_UTF8STRING, "Some Service", 12, serial),
                     KMS_ERR_INVALID_ARGS);
    assert_kms_error(issue_cn(fx, &ca, V_ASN1_UTF8STRING, "evil.com\0.internal", 18, serial),
                     KMS_ERR_INVALID_ARGS);
    assert_int_equal(issue_cn(fx, &ca, V_ASN1_PRINTABLESTRING, "a.internal", 10, serial), 0);
    assert_int_equal(
        issue_api(fx, &ca, TEMPLATE("SubordinateCACertificate_PathLen0"), NULL, serial), 0);
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(kms_pki_cert_get(&fx->ks, ca.ca_id, serial, &der, &len), 0);
    X509 *x = parse_der(der, len);
    int at = X509_get_ext_by_NID(x, NID_name_constraints, -1);
    assert_true(at >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, at)), 1);
    assert_true(permits(x, GEN_DNS, "internal"));
    /* E-mail addresses and URIs too: only below the reserved .invalid, so none. */
    assert_true(permits(x, GEN_EMAIL, ".invalid"));
    assert_true(permits(x, GEN_URI, ".invalid"));
    X509_free(x);
    free(der);
    kms_pki_ca_clean_up(&ca);
    json_decref(conf);
}

/* The scheduler's two verbs with an injected now: a CRL due at half its validity; a DELETED CA
 * purged (key destroyed, not found after) only once its window has passed. */
static void crl_due_and_purge(void **state)
{
    fixture *fx = *state;
    kms_pki_ca ca, got;
    bool due = true;
    int64_t next = 0, now = kms_now();
    json_t *conf = configuration("EC_prime256v1", "SHA256WITHECDSA");
    json_t *rev =
        json_pack("{s:{s:b, s:i}}", "CrlConfiguration", "Enabled", 1, "ExpirationInDays", 2);
    kms_pki_ca_params p = {"ROOT", NULL, conf, rev, now};
    assert_int_equal(kms_pki_ca_create(&fx->ks, &p, &ca), 0);
    assert_int_equal(kms_pki_crl_due(&ca, fx->dir, now, &due, &next), 0);
    assert_true(due); /* none published yet */
    assert_int_equal(kms_pki_crl_publish(&fx->ks, &ca, fx->dir, now), 0);
    assert_int_equal(kms_pki_crl_due(&ca, fx->dir, now + DAY - 60, &due, &next), 0);
    assert_false(due);
    assert_true(next >= now + 2 * DAY - 1 && next <= now + 2 * DAY + 1);
    assert_int_equal(kms_pki_crl_due(&ca, fx->dir, now + DAY + 60, &due, &next), 0);
    assert_true(due);
    assert_int_equal(kms_pki_ca_set_status(&fx->ks, &ca, "DISABLED", now), 0);
    assert_int_equal(kms_pki_ca_get(&fx->ks, ca.ca_id, &got), 0);
    assert_int_equal(kms_pki_ca_delete(&fx->ks, &got, 7, now), 0);
    kms_pki_ca_clean_up(&got);
    assert_int_equal(kms_pki_ca_purge(&fx->ks, ca.ca_id, now + 6 * DAY), 1);
    assert_int_equal(kms_pki_ca_get(&fx->ks, ca.ca_id, &got), 0);
    assert_string_equal(got.status, "DELETED");
    kms_pki_ca_clean_up(&got);
    assert_int_equal(kms_pki_ca_purge(&fx->ks, ca.ca_id, now + 8 * DAY), 0);
    assert_kms_error(kms_pki_ca_get(&fx->ks, ca.ca_id, &got), KMS_ERR_RESOURCE_NOT_FOUND);
    kms_hsm_key_attrs attrs;
    assert_kms_error(kms_keystore_ca_key_attributes(&fx->ks, ca.ca_id, &attrs), KMS_ERR_NOT_FOUND);
    assert_int_equal(kms_pki_ca_purge(&fx->ks, ca.ca_id, now + 9 * DAY), 1);
    kms_pki_ca_clean_up(&ca);
    json_decref(rev);
    json_decref(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(root_certificate_is_self_signed_ca),
        cmocka_unit_test(ca_key_is_in_the_hsm_and_not_extractable),
        cmocka_unit_test(cert_key_signs_digests_in_the_hsm),
        cmocka_unit_test(p384_and_rsa3072_cas),
        cmocka_unit_test(create_refusals_leave_nothing),
        cmocka_unit_test(get_and_list),
        cmocka_unit_test(arns),
        cmocka_unit_test(issue_per_template),
        cmocka_unit_test(rsa_subject_key_and_rsa_ca),
        cmocka_unit_test(serials_differ),
        cmocka_unit_test(bad_csrs_are_refused),
        cmocka_unit_test(validity_rules),
        cmocka_unit_test(signatures_come_from_the_hsm),
        cmocka_unit_test(revoke_and_crl),
        cmocka_unit_test(crl_publication_in_order),
        cmocka_unit_test(subordinate_ca),
        cmocka_unit_test(accounts_are_separate),
        cmocka_unit_test(api_passthrough),
        cmocka_unit_test(allowed_name_patterns),
        cmocka_unit_test(crl_due_and_purge),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
