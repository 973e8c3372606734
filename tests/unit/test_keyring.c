/* Keyrings through their vtable (src/envelope/esdk.h): raw AES (with the ESDK's own raw AES
 * vectors as known answers), raw RSA with every padding, the KMS keyring against a fresh KMS home
 * (strict, discovery, disabled keys) and the multi-keyring. Every failure asserts its code. */
#include <jansson.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope/esdk.h"
#include "kms/envelope.h"
#include "kms/kms.h"
#include "util/util.h"
#include "testutil.h"
#include "vectors.h"

static char *tmp;
static char *home;
static kms_client *client;

/* PEM texts of two RSA-2048 keys (the second only as "another key"), a 1024-bit one and an EC
 * key, generated once per run. */
static char *rsa_pkcs8, *rsa_trad, *rsa_spki, *rsa_pkcs1_pub, *rsa_encrypted;
static char *rsa2_pkcs8, *rsa1024_pkcs8, *ec_pkcs8;

/* CMKs: a, b (also as alias/kr-b), c (unrelated) and d (disabled by a test). */
static char a_arn[256], b_arn[256], c_arn[256], d_arn[256];

static const uint8_t KEY_A[32] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
                                  0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
                                  0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20};
static const uint8_t KEY_B[32] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
                                  0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5,
                                  0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf};

static const kms_rsa_padding PADDINGS[] = {KMS_RSA_PKCS1, KMS_RSA_OAEP_SHA1, KMS_RSA_OAEP_SHA256,
                                           KMS_RSA_OAEP_SHA384, KMS_RSA_OAEP_SHA512};

/* ---- Helpers ----------------------------------------------------------------------------------*/

#define must_keyring(expr) must_keyring_((expr), #expr)
static kms_keyring *must_keyring_(kms_keyring *kr, const char *what)
{
    if (kr == NULL) {
        fail_msg("%s: %s: %s", what, kms_error_name(kms_last_error()), kms_last_error_message());
    }
    return kr;
}

/* Asserts that a constructor failed with code. */
#define assert_new_fails(code, expr)                                                               \
    do {                                                                                           \
        kms_keyring *kr_ = (expr);                                                                 \
        if (kr_ != NULL) {                                                                         \
            kms_keyring_free(kr_);                                                                 \
            fail_msg("%s succeeded, expected %s", #expr, kms_error_name(code));                    \
        }                                                                                          \
        if (kms_last_error() != (code)) {                                                          \
            fail_msg("%s failed with %s (%s), expected %s", #expr,                                 \
                     kms_error_name(kms_last_error()), kms_last_error_message(),                   \
                     kms_error_name(code));                                                        \
        }                                                                                          \
    } while (0)

static void ec_fill(kms_ec *ec, const char *const *kv, size_t pairs)
{
    kms_ec_init(ec);
    for (size_t i = 0; i < pairs; i++) {
        assert_int_equal(kms_ec_put(ec, kv[2 * i], kv[2 * i + 1]), 0);
    }
}

/* The context most tests use: two pairs, given out of order. */
static void ec_std(kms_ec *ec)
{
    static const char *const kv[] = {"purpose", "test", "aaa", "first"};
    ec_fill(ec, kv, 2);
}

static size_t suite_key_len(uint16_t suite)
{
    const kms_esdk_suite *s = kms_esdk_suite_get(suite);
    assert_non_null(s);
    return s->key_len;
}

/* Encryption materials for suite and ec; preset (suite key length bytes) is the data key the
 * materials already hold, or NULL. */
static void enc_init(kms_materials *m, uint16_t suite, const kms_ec *ec, const uint8_t *preset)
{
    assert_int_equal(kms_materials_init(m, kms_esdk_suite_get(suite), ec), 0);
    if (preset != NULL) {
        memcpy(m->data_key, preset, suite_key_len(suite));
        m->has_data_key = true;
    }
}

/* OnEncrypt that must succeed. */
static void wrap(const kms_keyring *kr, kms_materials *m)
{
    if (kr->vt->on_encrypt(kr, m) != 0) {
        fail_msg("%s on_encrypt: %s: %s", kr->vt->name, kms_error_name(kms_last_error()),
                 kms_last_error_message());
    }
    assert_true(m->has_data_key);
    assert_true(m->edks.n > 0);
}

/* OnEncrypt that must fail with code and leave fresh materials without a data key. */
static void wrap_fails(kms_error code, const kms_keyring *kr, uint16_t suite, const kms_ec *ec)
{
    kms_materials m;
    enc_init(&m, suite, ec, NULL);
    int rc = kr->vt->on_encrypt(kr, &m);
    if (rc == 0) {
        fail_msg("%s on_encrypt succeeded, expected %s", kr->vt->name, kms_error_name(code));
    }
    if (kms_last_error() != code) {
        fail_msg("%s on_encrypt failed with %s (%s), expected %s", kr->vt->name,
                 kms_error_name(kms_last_error()), kms_last_error_message(), kms_error_name(code));
    }
    kms_materials_clean_up(&m);
}

/* OnDecrypt on fresh materials. On success the data key must equal expect (when given) and
 * *used (when given) receives the index of the EDK used; on failure the materials must be
 * untouched. Returns on_decrypt's result with its error kept. */
static int unwrap(const kms_keyring *kr, uint16_t suite, const kms_ec *ec, const kms_edk_list *edks,
                  const uint8_t *expect, size_t *used)
{
    kms_materials m;
    assert_int_equal(kms_materials_init(&m, kms_esdk_suite_get(suite), ec), 0);
    int rc = kr->vt->on_decrypt(kr, &m, edks);
    if (rc == 0) {
        assert_true(m.has_data_key);
        assert_non_null(m.used_edk);
        assert_true(m.used_edk >= edks->v && m.used_edk < edks->v + edks->n);
        if (expect != NULL) {
            assert_memory_equal(m.data_key, expect, suite_key_len(suite));
        }
        if (used != NULL) {
            *used = (size_t)(m.used_edk - edks->v);
        }
    } else {
        assert_false(m.has_data_key);
        assert_null(m.used_edk);
    }
    kms_error code = kms_last_error();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", kms_last_error_message());
    kms_materials_clean_up(&m);
    if (rc != 0) {
        kms_raise(code, "%s", msg); /* keep the error for the caller's assertion */
    }
    return rc;
}

#define assert_unwraps(kr, suite, ec, edks, expect, used)                                          \
    do {                                                                                           \
        if (unwrap((kr), (suite), (ec), (edks), (expect), (used)) != 0) {                          \
            fail_msg("%s on_decrypt: %s: %s", (kr)->vt->name, kms_error_name(kms_last_error()),    \
                     kms_last_error_message());                                                    \
        }                                                                                          \
    } while (0)

#define assert_unwrap_fails(code, kr, suite, ec, edks)                                             \
    do {                                                                                           \
        if (unwrap((kr), (suite), (ec), (edks), NULL, NULL) == 0) {                                \
            fail_msg("%s on_decrypt succeeded, expected %s", (kr)->vt->name,                       \
                     kms_error_name(code));                                                        \
        }                                                                                          \
        if (kms_last_error() != (code)) {                                                          \
            fail_msg("%s on_decrypt failed with %s (%s), expected %s", (kr)->vt->name,             \
                     kms_error_name(kms_last_error()), kms_last_error_message(),                   \
                     kms_error_name(code));                                                        \
        }                                                                                          \
    } while (0)

/* A deep copy of one EDK list (so that a test can tamper with it). */
static void edks_copy(kms_edk_list *dst, const kms_edk_list *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->n; i++) {
        const kms_edk *e = &src->v[i];
        assert_int_equal(kms_edk_list_add(dst, e->provider_id, e->provider_id_len, e->provider_info,
                                          e->provider_info_len, e->ciphertext, e->ciphertext_len),
                         0);
    }
}

static void assert_bytes_str(const uint8_t *p, size_t n, const char *s)
{
    assert_int_equal(n, strlen(s));
    assert_memory_equal(p, s, n);
}

/* ---- Fixture: a KMS home, CMKs and RSA keys ---------------------------------------------------*/

static json_t *call_json(const char *op, json_t *req)
{
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_non_null(body);
    char *resp = NULL;
    if (kms_call(client, op, body, &resp) != 0) {
        fail_msg("%s: %s: %s", op, kms_error_name(kms_last_error()), kms_last_error_message());
    }
    free(body);
    json_t *j = json_loads(resp, 0, NULL);
    assert_non_null(j);
    kms_string_free(resp);
    return j;
}

/* CreateKey with req (taken); the key's ARN into arn. */
static void create_key(json_t *req, char arn[256])
{
    json_t *j = call_json("CreateKey", req);
    const char *a = json_string_value(json_object_get(json_object_get(j, "KeyMetadata"), "Arn"));
    assert_non_null(a);
    snprintf(arn, 256, "%s", a);
    json_decref(j);
}

static char *pem_of(BIO *bio)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    assert_true(n > 0);
    char *s = strndup(p, (size_t)n);
    assert_non_null(s);
    BIO_free(bio);
    return s;
}

static char *pem_private(EVP_PKEY *key, bool traditional)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    int ok = traditional ? PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(ok, 1);
    return pem_of(bio);
}

static char *pem_public(EVP_PKEY *key, bool pkcs1)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    if (pkcs1) {
        OSSL_ENCODER_CTX *ctx =
            OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", NULL);
        assert_non_null(ctx);
        assert_int_equal(OSSL_ENCODER_to_bio(ctx, bio), 1);
        OSSL_ENCODER_CTX_free(ctx);
    } else {
        assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
    }
    return pem_of(bio);
}

static int setup(void **state)
{
    tmp = kms_test_tmpdir();
    home = kms_path_join(tmp, "home");
    if (kms_home_init(home, NULL) != 0) {
        fprintf(stderr, "init: %s\n", kms_last_error_message());
        return -1;
    }
    kms_client_options o = {.home = home};
    client = kms_client_open(&o);
    if (client == NULL) {
        fprintf(stderr, "open: %s\n", kms_last_error_message());
        return -1;
    }
    create_key(json_pack("{s:s}", "Description", "keyring a"), a_arn);
    create_key(json_pack("{s:s}", "Description", "keyring b"), b_arn);
    create_key(json_pack("{s:s}", "Description", "keyring c"), c_arn);
    create_key(json_pack("{s:s}", "Description", "keyring d"), d_arn);
    json_decref(call_json(
        "CreateAlias", json_pack("{s:s, s:s}", "AliasName", "alias/kr-b", "TargetKeyId", b_arn)));

    EVP_PKEY *rsa = EVP_RSA_gen(2048), *rsa2 = EVP_RSA_gen(2048), *small = EVP_RSA_gen(1024);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    assert_true(rsa != NULL && rsa2 != NULL && small != NULL && ec != NULL);
    rsa_pkcs8 = pem_private(rsa, false);
    rsa_trad = pem_private(rsa, true);
    rsa_spki = pem_public(rsa, false);
    rsa_pkcs1_pub = pem_public(rsa, true);
    rsa2_pkcs8 = pem_private(rsa2, false);
    rsa1024_pkcs8 = pem_private(small, false);
    ec_pkcs8 = pem_private(ec, false);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(
        PEM_write_bio_PKCS8PrivateKey(bio, rsa, EVP_aes_256_cbc(), "secret", 6, NULL, NULL), 1);
    rsa_encrypted = pem_of(bio);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa2);
    EVP_PKEY_free(small);
    EVP_PKEY_free(ec);
    return 0;
}

static int teardown(void **state)
{
    kms_client_free(client);
    kms_test_rmrf(tmp);
    free(home);
    free(tmp);
    free(rsa_pkcs8);
    free(rsa_trad);
    free(rsa_spki);
    free(rsa_pkcs1_pub);
    free(rsa_encrypted);
    free(rsa2_pkcs8);
    free(rsa1024_pkcs8);
    free(ec_pkcs8);
    return 0;
}

/* ---- Raw AES ----------------------------------------------------------------------------------*/

/* raw-aes-keyring.md Key Provider Information and Ciphertext, and the round trip, for each
 * wrapping key size and both message format versions. */
static void test_raw_aes_round_trip(void **state)
{
    static const uint16_t suites[] = {KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
                                      KMS_SUITE_AES_128_GCM_IV12_TAG16_NO_KDF};
    static const size_t sizes[] = {16, 24, 32};
    kms_ec ec;
    ec_std(&ec);
    for (size_t s = 0; s < 2; s++) {
        size_t key_len = suite_key_len(suites[s]);
        for (size_t z = 0; z < 3; z++) {
            kms_keyring *kr =
                must_keyring(kms_keyring_raw_aes_new("my-ns", "my-key", KEY_A, sizes[z]));
            kms_keyring *again =
                must_keyring(kms_keyring_raw_aes_new("my-ns", "my-key", KEY_A, sizes[z]));
            kms_materials m, m2;
            enc_init(&m, suites[s], &ec, NULL);
            wrap(kr, &m);
            assert_int_equal(m.edks.n, 1);
            const kms_edk *e = &m.edks.v[0];
            assert_bytes_str(e->provider_id, e->provider_id_len, "my-ns");
            assert_int_equal(e->provider_info_len, 6 + 4 + 4 + 12);
            assert_memory_equal(e->provider_info, "my-key", 6);
            assert_memory_equal(e->provider_info + 6, "\x00\x00\x00\x80\x00\x00\x00\x0c", 8);
            assert_int_equal(e->ciphertext_len, key_len + 16);
            assert_unwraps(kr, suites[s], &ec, &m.edks, m.data_key, NULL);
            assert_unwraps(again, suites[s], &ec, &m.edks, m.data_key, NULL);
            /* A fresh IV and data key per wrap. */
            enc_init(&m2, suites[s], &ec, NULL);
            wrap(kr, &m2);
            assert_memory_not_equal(m.edks.v[0].provider_info + 14, m2.edks.v[0].provider_info + 14,
                                    12);
            assert_memory_not_equal(m.data_key, m2.data_key, key_len);
            kms_materials_clean_up(&m);
            kms_materials_clean_up(&m2);
            kms_keyring_free(kr);
            kms_keyring_free(again);
        }
    }
    kms_ec_clean_up(&ec);
}

static void test_raw_aes_existing_key_and_empty_context(void **state)
{
    kms_ec empty;
    kms_ec_init(&empty);
    kms_keyring *kr = must_keyring(kms_keyring_raw_aes_new("ns", "k", KEY_A, 32));
    kms_materials m;
    enc_init(&m, KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY, &empty, KEY_B);
    wrap(kr, &m);
    assert_memory_equal(m.data_key, KEY_B, 32); /* wrapped, not replaced */
    assert_unwraps(kr, KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY, &empty, &m.edks, KEY_B, NULL);
    /* An empty context is not the same AAD as any pair. */
    kms_ec one;
    static const char *const kv[] = {"a", ""};
    ec_fill(&one, kv, 1);
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, kr,
                        KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY, &one, &m.edks);
    kms_materials_clean_up(&m);
    kms_keyring_free(kr);
    kms_ec_clean_up(&empty);
    kms_ec_clean_up(&one);
}

static void test_raw_aes_failures(void **state)
{
    const uint16_t suite = KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY;
    kms_ec ec, other_value, extra;
    ec_std(&ec);
    static const char *const kv1[] = {"purpose", "other", "aaa", "first"};
    static const char *const kv2[] = {"purpose", "test", "aaa", "first", "z", "1"};
    ec_fill(&other_value, kv1, 2);
    ec_fill(&extra, kv2, 3);
    kms_keyring *kr = must_keyring(kms_keyring_raw_aes_new("ns", "key", KEY_A, 32));
    kms_keyring *other_name = must_keyring(kms_keyring_raw_aes_new("ns", "key2", KEY_A, 32));
    kms_keyring *prefix_name = must_keyring(kms_keyring_raw_aes_new("ns", "ke", KEY_A, 32));
    kms_keyring *other_ns = must_keyring(kms_keyring_raw_aes_new("ns2", "key", KEY_A, 32));
    kms_keyring *other_bytes = must_keyring(kms_keyring_raw_aes_new("ns", "key", KEY_B, 32));
    kms_keyring *shorter = must_keyring(kms_keyring_raw_aes_new("ns", "key", KEY_A, 16));
    kms_materials m;
    enc_init(&m, suite, &ec, NULL);
    wrap(kr, &m);

    assert_unwrap_fails(KMS_ERR_NOT_FOUND, other_name, suite, &ec, &m.edks);
    assert_unwrap_fails(KMS_ERR_NOT_FOUND, prefix_name, suite, &ec, &m.edks);
    assert_unwrap_fails(KMS_ERR_NOT_FOUND, other_ns, suite, &ec, &m.edks);
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, other_bytes, suite, &ec, &m.edks);
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, shorter, suite, &ec, &m.edks);
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, kr, suite, &other_value, &m.edks);
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, kr, suite, &extra, &m.edks);
    /* The data key is 32 bytes; a 16-byte suite cannot use it. */
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, kr, KMS_SUITE_AES_128_GCM_IV12_TAG16_NO_KDF,
                        &ec, &m.edks);

    /* Tampering: encrypted key, tag, IV each fail authentication; a provider info that does not
     * parse as ours (tag length, IV length, truncated) is not ours. */
    struct {
        bool info;
        size_t at;
        kms_error code;
    } cases[] = {
        {false, 0, KMS_ERR_INVALID_CIPHERTEXT},
        {false, 31, KMS_ERR_INVALID_CIPHERTEXT},
        {false, 47, KMS_ERR_INVALID_CIPHERTEXT},
        {true, 3 + 8 + 5, KMS_ERR_INVALID_CIPHERTEXT},
        {true, 3 + 3, KMS_ERR_NOT_FOUND},
        {true, 3 + 7, KMS_ERR_NOT_FOUND},
        {true, 0, KMS_ERR_NOT_FOUND},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kms_edk_list t;
        edks_copy(&t, &m.edks);
        uint8_t *p = cases[i].info ? t.v[0].provider_info : t.v[0].ciphertext;
        p[cases[i].at] ^= 0x01;
        assert_unwrap_fails(cases[i].code, kr, suite, &ec, &t);
        kms_edk_list_clean_up(&t);
    }
    kms_edk_list t;
    edks_copy(&t, &m.edks);
    t.v[0].provider_info_len--;
    assert_unwrap_fails(KMS_ERR_NOT_FOUND, kr, suite, &ec, &t);
    t.v[0].provider_info_len++;
    t.v[0].ciphertext_len--;
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, kr, suite, &ec, &t);
    t.v[0].ciphertext_len++;
    /* A bad EDK before a good one: the good one still wins. */
    t.v[0].ciphertext[0] ^= 0x01;
    assert_int_equal(kms_edk_list_add(&t, m.edks.v[0].provider_id, m.edks.v[0].provider_id_len,
                                      m.edks.v[0].provider_info, m.edks.v[0].provider_info_len,
                                      m.edks.v[0].ciphertext, m.edks.v[0].ciphertext_len),
                     0);
    size_t used = 99;
    assert_unwraps(kr, suite, &ec, &t, m.data_key, &used);
    assert_int_equal(used, 1);
    kms_edk_list_clean_up(&t);

    /* Materials that already hold a data key are refused, not overwritten. */
    kms_materials d;
    enc_init(&d, suite, &ec, KEY_B);
    assert_int_equal(kr->vt->on_decrypt(kr, &d, &m.edks), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_memory_equal(d.data_key, KEY_B, 32);
    kms_materials_clean_up(&d);

    kms_materials_clean_up(&m);
    kms_keyring_free(kr);
    kms_keyring_free(other_name);
    kms_keyring_free(prefix_name);
    kms_keyring_free(other_ns);
    kms_keyring_free(other_bytes);
    kms_keyring_free(shorter);
    kms_ec_clean_up(&ec);
    kms_ec_clean_up(&other_value);
    kms_ec_clean_up(&extra);
}

static void test_raw_aes_new_errors(void **state)
{
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_aes_new("aws-kms", "k", KEY_A, 32));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_aes_new("ns", "k", KEY_A, 20));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_aes_new("ns", "k", KEY_A, 0));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_aes_new("ns", "k", NULL, 32));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_aes_new(NULL, "k", KEY_A, 32));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_aes_new("ns", NULL, KEY_A, 32));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_aes_new("", "k", KEY_A, 32));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_aes_new("ns", "", KEY_A, 32));
    /* Only the exact reserved id is refused. */
    kms_keyring_free(must_keyring(kms_keyring_raw_aes_new("aws-kms-not", "k", KEY_A, 32)));
    kms_keyring_free(NULL);
}

/* Known answers: the ESDK's raw AES-256 decrypt vectors (vectors/esdk). The wrapped data key of
 * each message must authenticate under the vector's wrapping key with the message's full
 * encryption context as AAD (stored pairs plus, for the required-encryption-context CMM, the
 * pairs only the caller supplies); for committing suites the data key must also give the
 * header's commitment. */
static void test_raw_aes_esdk_vectors(void **state)
{
    json_t *manifest = kms_test_vectors_json("esdk/manifest.json");
    json_t *keys = kms_test_vectors_json("esdk/keys.json");
    char *dir = kms_test_vectors_dir();
    const char *name = NULL;
    json_t *t = NULL;
    size_t count = 0;
    json_object_foreach(json_object_get(manifest, "tests"), name, t)
    {
        json_t *mk = json_array_get(json_object_get(t, "master-keys"), 0);
        assert_string_equal(kms_test_json_str(mk, "type"), "raw");
        assert_string_equal(kms_test_json_str(mk, "encryption-algorithm"), "aes");
        json_t *key = json_object_get(json_object_get(keys, "keys"), kms_test_json_str(mk, "key"));
        uint8_t *material = NULL;
        size_t material_len = 0;
        assert_int_equal(kms_base64_decode(kms_test_json_str(key, "material"), "material", false,
                                           &material, &material_len),
                         0);
        kms_keyring *kr = must_keyring(kms_keyring_raw_aes_new(kms_test_json_str(mk, "provider-id"),
                                                               kms_test_json_str(key, "key-id"),
                                                               material, material_len));
        kms_keyring *wrong = must_keyring(kms_keyring_raw_aes_new(
            kms_test_json_str(mk, "provider-id"), "another-key", material, material_len));

        const char *ct_rel = kms_test_json_str(t, "ciphertext");
        assert_int_equal(strncmp(ct_rel, "file://", 7), 0);
        char *esdk = kms_path_join(dir, "esdk");
        char *path = kms_path_join(esdk, ct_rel + 7);
        char *msg = NULL;
        size_t msg_len = 0;
        assert_int_equal(kms_file_read(path, 1 << 20, &msg, &msg_len), 0);
        kms_esdk_header h;
        kms_esdk_header_init(&h);
        if (kms_esdk_header_parse((const uint8_t *)msg, msg_len, &h) != 0) {
            fail_msg("%s: header: %s", name, kms_last_error_message());
        }
        /* The full context: the stored pairs plus the manifest's. */
        kms_ec full;
        assert_int_equal(kms_ec_copy(&full, &h.stored_ec), 0);
        const char *k = NULL;
        json_t *v = NULL;
        json_object_foreach(json_object_get(t, "encryption-context"), k, v)
        {
            if (kms_ec_get(&full, k) == NULL) {
                assert_int_equal(kms_ec_put(&full, k, json_string_value(v)), 0);
            }
        }
        kms_materials m;
        assert_int_equal(kms_materials_init(&m, h.suite, &full), 0);
        if (kr->vt->on_decrypt(kr, &m, &h.edks) != 0) {
            fail_msg("%s: %s", name, kms_last_error_message());
        }
        if (h.suite->commit) {
            kms_esdk_keys dk;
            assert_int_equal(kms_esdk_derive(h.suite, m.data_key, h.message_id, &dk), 0);
            assert_memory_equal(dk.commit, h.suite_data, KMS_ESDK_COMMIT_LEN);
        }
        kms_materials_clean_up(&m);
        assert_unwrap_fails(KMS_ERR_NOT_FOUND, wrong, h.suite->id, &full, &h.edks);
        /* Without the caller-supplied pairs the AAD differs. */
        if (full.n != h.stored_ec.n) {
            assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, kr, h.suite->id, &h.stored_ec, &h.edks);
        }
        kms_ec_clean_up(&full);
        kms_esdk_header_clean_up(&h);
        free(msg);
        free(path);
        free(esdk);
        free(material);
        kms_keyring_free(kr);
        kms_keyring_free(wrong);
        count++;
    }
    assert_int_equal(count, 8);
    free(dir);
    json_decref(manifest);
    json_decref(keys);
}

/* ---- Raw RSA ----------------------------------------------------------------------------------*/

static void test_raw_rsa_paddings(void **state)
{
    static const uint16_t suites[] = {KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
                                      KMS_SUITE_AES_128_GCM_IV12_TAG16_NO_KDF};
    kms_ec ec;
    ec_std(&ec);
    for (size_t p = 0; p < 5; p++) {
        const char *pems[] = {rsa_pkcs8, rsa_trad, rsa_spki, rsa_pkcs1_pub};
        kms_keyring *priv = must_keyring(kms_keyring_raw_rsa_new("rsa-ns", "rsa-key", rsa_pkcs8,
                                                                 strlen(rsa_pkcs8), PADDINGS[p]));
        for (size_t s = 0; s < 2; s++) {
            for (size_t k = 0; k < 4; k++) {
                kms_keyring *kr = must_keyring(kms_keyring_raw_rsa_new(
                    "rsa-ns", "rsa-key", pems[k], strlen(pems[k]), PADDINGS[p]));
                kms_materials m;
                enc_init(&m, suites[s], &ec, NULL);
                wrap(kr, &m);
                assert_int_equal(m.edks.n, 1);
                assert_bytes_str(m.edks.v[0].provider_id, m.edks.v[0].provider_id_len, "rsa-ns");
                assert_bytes_str(m.edks.v[0].provider_info, m.edks.v[0].provider_info_len,
                                 "rsa-key");
                assert_int_equal(m.edks.v[0].ciphertext_len, 256);
                assert_unwraps(priv, suites[s], &ec, &m.edks, m.data_key, NULL);
                if (k >= 2) {
                    /* raw-rsa-keyring.md OnDecrypt: no private key, no decrypt. */
                    assert_unwrap_fails(KMS_ERR_VALIDATION, kr, suites[s], &ec, &m.edks);
                } else {
                    assert_unwraps(kr, suites[s], &ec, &m.edks, m.data_key, NULL);
                }
                kms_materials_clean_up(&m);
                kms_keyring_free(kr);
            }
        }
        kms_keyring_free(priv);
    }
    kms_ec_clean_up(&ec);
}

static void test_raw_rsa_failures(void **state)
{
    const uint16_t suite = KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY;
    kms_ec ec;
    ec_std(&ec);
    kms_keyring *oaep256 = must_keyring(
        kms_keyring_raw_rsa_new("ns", "key", rsa_pkcs8, strlen(rsa_pkcs8), KMS_RSA_OAEP_SHA256));
    kms_keyring *oaep1 = must_keyring(
        kms_keyring_raw_rsa_new("ns", "key", rsa_pkcs8, strlen(rsa_pkcs8), KMS_RSA_OAEP_SHA1));
    kms_keyring *pkcs1 = must_keyring(
        kms_keyring_raw_rsa_new("ns", "key", rsa_pkcs8, strlen(rsa_pkcs8), KMS_RSA_PKCS1));
    kms_keyring *other_key = must_keyring(
        kms_keyring_raw_rsa_new("ns", "key", rsa2_pkcs8, strlen(rsa2_pkcs8), KMS_RSA_OAEP_SHA256));
    kms_keyring *other_name = must_keyring(
        kms_keyring_raw_rsa_new("ns", "key2", rsa_pkcs8, strlen(rsa_pkcs8), KMS_RSA_OAEP_SHA256));
    kms_keyring *other_ns = must_keyring(
        kms_keyring_raw_rsa_new("ns2", "key", rsa_pkcs8, strlen(rsa_pkcs8), KMS_RSA_OAEP_SHA256));
    kms_materials m, p;
    enc_init(&m, suite, &ec, NULL);
    wrap(oaep256, &m);
    enc_init(&p, suite, &ec, NULL);
    wrap(pkcs1, &p);
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, oaep1, suite, &ec, &m.edks);
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, other_key, suite, &ec, &m.edks);
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, oaep256, suite, &ec, &p.edks);
    assert_unwrap_fails(KMS_ERR_NOT_FOUND, other_name, suite, &ec, &m.edks);
    assert_unwrap_fails(KMS_ERR_NOT_FOUND, other_ns, suite, &ec, &m.edks);
    /* A 32-byte data key does not fit a 16-byte suite. */
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, oaep256,
                        KMS_SUITE_AES_128_GCM_IV12_TAG16_NO_KDF, &ec, &m.edks);
    kms_edk_list t;
    edks_copy(&t, &m.edks);
    t.v[0].ciphertext[100] ^= 0x40;
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, oaep256, suite, &ec, &t);
    kms_edk_list_clean_up(&t);
    /* RSA does not bind the context (raw-rsa-keyring.md): another context still unwraps. */
    kms_ec empty;
    kms_ec_init(&empty);
    assert_unwraps(oaep256, suite, &empty, &m.edks, m.data_key, NULL);
    kms_materials_clean_up(&m);
    kms_materials_clean_up(&p);
    kms_keyring_free(oaep256);
    kms_keyring_free(oaep1);
    kms_keyring_free(pkcs1);
    kms_keyring_free(other_key);
    kms_keyring_free(other_name);
    kms_keyring_free(other_ns);
    kms_ec_clean_up(&ec);
}

static void test_raw_rsa_new_errors(void **state)
{
    const kms_rsa_padding oaep = KMS_RSA_OAEP_SHA256;
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_rsa_new("ns", "k", rsa1024_pkcs8,
                                                                 strlen(rsa1024_pkcs8), oaep));
    assert_new_fails(KMS_ERR_VALIDATION,
                     kms_keyring_raw_rsa_new("ns", "k", ec_pkcs8, strlen(ec_pkcs8), oaep));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_rsa_new("ns", "k", rsa_encrypted,
                                                                 strlen(rsa_encrypted), oaep));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_rsa_new("ns", "k", "garbage", 7, oaep));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_raw_rsa_new("ns", "k", NULL, 0, oaep));
    /* A PEM cut short is not a key. */
    assert_new_fails(KMS_ERR_VALIDATION,
                     kms_keyring_raw_rsa_new("ns", "k", rsa_pkcs8, strlen(rsa_pkcs8) / 2, oaep));
    assert_new_fails(KMS_ERR_VALIDATION,
                     kms_keyring_raw_rsa_new("aws-kms", "k", rsa_pkcs8, strlen(rsa_pkcs8), oaep));
    assert_new_fails(KMS_ERR_VALIDATION,
                     kms_keyring_raw_rsa_new("ns", "", rsa_pkcs8, strlen(rsa_pkcs8), oaep));
    assert_new_fails(
        KMS_ERR_VALIDATION,
        kms_keyring_raw_rsa_new("ns", "k", rsa_pkcs8, strlen(rsa_pkcs8), (kms_rsa_padding)5));
}

/* ---- KMS keyring ------------------------------------------------------------------------------*/

static kms_keyring *kms_kr(const char *id1, const char *id2)
{
    const char *ids[] = {id1, id2};
    return must_keyring(kms_keyring_kms_new(client, ids, id2 != NULL ? 2 : 1));
}

/* The part after "key/" (the key id). */
static const char *key_id_of(const char *arn)
{
    const char *p = strstr(arn, ":key/");
    assert_non_null(p);
    return p + 5;
}

static void test_kms_round_trip(void **state)
{
    static const uint16_t suites[] = {KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
                                      KMS_SUITE_AES_128_GCM_IV12_TAG16_NO_KDF};
    kms_ec ec;
    ec_std(&ec);
    /* Key a by key id, b by alias: both resolve to ARNs. */
    kms_keyring *ab = kms_kr(key_id_of(a_arn), "alias/kr-b");
    kms_keyring *b_only = kms_kr(b_arn, NULL);
    kms_keyring *c_only = kms_kr(c_arn, NULL);
    kms_keyring *disc = must_keyring(kms_keyring_kms_discovery_new(client));
    for (size_t s = 0; s < 2; s++) {
        kms_materials m;
        enc_init(&m, suites[s], &ec, NULL);
        wrap(ab, &m);
        assert_int_equal(m.edks.n, 2);
        assert_bytes_str(m.edks.v[0].provider_id, m.edks.v[0].provider_id_len, "aws-kms");
        assert_bytes_str(m.edks.v[0].provider_info, m.edks.v[0].provider_info_len, a_arn);
        assert_bytes_str(m.edks.v[1].provider_id, m.edks.v[1].provider_id_len, "aws-kms");
        assert_bytes_str(m.edks.v[1].provider_info, m.edks.v[1].provider_info_len, b_arn);
        size_t used = 99;
        assert_unwraps(ab, suites[s], &ec, &m.edks, m.data_key, &used);
        assert_int_equal(used, 0);
        assert_unwraps(b_only, suites[s], &ec, &m.edks, m.data_key, &used);
        assert_int_equal(used, 1);
        assert_unwraps(disc, suites[s], &ec, &m.edks, m.data_key, &used);
        assert_int_equal(used, 0);
        assert_unwrap_fails(KMS_ERR_NOT_FOUND, c_only, suites[s], &ec, &m.edks);
        kms_materials_clean_up(&m);
    }
    /* Materials that already hold a data key (re-encrypt): Encrypt, not GenerateDataKey. */
    kms_materials m;
    enc_init(&m, KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY, &ec, KEY_B);
    wrap(b_only, &m);
    assert_int_equal(m.edks.n, 1);
    assert_memory_equal(m.data_key, KEY_B, 32);
    assert_unwraps(disc, KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY, &ec, &m.edks, KEY_B, NULL);
    kms_materials_clean_up(&m);
    kms_keyring_free(ab);
    kms_keyring_free(b_only);
    kms_keyring_free(c_only);
    kms_keyring_free(disc);
    kms_ec_clean_up(&ec);
}

static void test_kms_failures(void **state)
{
    const uint16_t suite = KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY;
    kms_ec ec, other;
    ec_std(&ec);
    static const char *const kv[] = {"purpose", "other"};
    ec_fill(&other, kv, 1);
    kms_keyring *a = kms_kr(a_arn, NULL);
    kms_keyring *c = kms_kr(c_arn, NULL);
    kms_keyring *disc = must_keyring(kms_keyring_kms_discovery_new(client));
    kms_materials m;
    enc_init(&m, suite, &ec, NULL);
    wrap(a, &m);
    /* The context is bound by KMS. */
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, a, suite, &other, &m.edks);
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, disc, suite, &other, &m.edks);
    /* A tampered blob. */
    kms_edk_list t;
    edks_copy(&t, &m.edks);
    t.v[0].ciphertext[t.v[0].ciphertext_len - 1] ^= 0x01;
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, a, suite, &ec, &t);
    kms_edk_list_clean_up(&t);
    /* An EDK that claims key c but holds a blob of key a: Decrypt names c, KMS refuses. */
    edks_copy(&t, &m.edks);
    free(t.v[0].provider_info);
    t.v[0].provider_info = (uint8_t *)strdup(c_arn);
    t.v[0].provider_info_len = strlen(c_arn);
    assert_unwrap_fails(KMS_ERR_INCORRECT_KEY, c, suite, &ec, &t);
    assert_unwrap_fails(KMS_ERR_INCORRECT_KEY, disc, suite, &ec, &t);
    kms_edk_list_clean_up(&t);
    /* Provider infos that are not key ARNs are not tried by discovery; another provider id is
     * not KMS's. */
    static const char *const bad_infos[] = {
        "not-an-arn", "arn:aws:kms:us-east-1:111122223333:alias/x",
        "arn:aws:s3:us-east-1:111122223333:key/x", "arn:aws:kms::111122223333:key/x",
        "arn:aws:kms:us-east-1:111122223333:key/"};
    for (size_t i = 0; i < sizeof bad_infos / sizeof bad_infos[0]; i++) {
        kms_edk_list b = {0};
        assert_int_equal(kms_edk_list_add(&b, "aws-kms", 7, bad_infos[i], strlen(bad_infos[i]),
                                          m.edks.v[0].ciphertext, m.edks.v[0].ciphertext_len),
                         0);
        assert_unwrap_fails(KMS_ERR_NOT_FOUND, disc, suite, &ec, &b);
        kms_edk_list_clean_up(&b);
    }
    edks_copy(&t, &m.edks);
    t.v[0].provider_id[0] = 'b';
    assert_unwrap_fails(KMS_ERR_NOT_FOUND, a, suite, &ec, &t);
    assert_unwrap_fails(KMS_ERR_NOT_FOUND, disc, suite, &ec, &t);
    kms_edk_list_clean_up(&t);
    /* A foreign but well-formed ARN is tried, and KMS does not know it. */
    kms_edk_list f = {0};
    const char *foreign =
        "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-4333-8444-555555555555";
    assert_int_equal(kms_edk_list_add(&f, "aws-kms", 7, foreign, strlen(foreign),
                                      m.edks.v[0].ciphertext, m.edks.v[0].ciphertext_len),
                     0);
    assert_unwrap_fails(KMS_ERR_NOT_FOUND, disc, suite, &ec, &f);
    assert_non_null(strstr(kms_last_error_message(), "tried 1"));
    kms_edk_list_clean_up(&f);
    /* The 32-byte data key does not fit a 16-byte suite. */
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, a, KMS_SUITE_AES_128_GCM_IV12_TAG16_NO_KDF, &ec,
                        &m.edks);
    /* Discovery cannot encrypt. */
    wrap_fails(KMS_ERR_VALIDATION, disc, suite, &ec);
    kms_materials_clean_up(&m);
    kms_keyring_free(a);
    kms_keyring_free(c);
    kms_keyring_free(disc);
    kms_ec_clean_up(&ec);
    kms_ec_clean_up(&other);
}

static void test_kms_disabled_key(void **state)
{
    const uint16_t suite = KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY;
    kms_ec ec;
    ec_std(&ec);
    kms_keyring *d = kms_kr(d_arn, NULL);
    kms_keyring *ad = kms_kr(a_arn, d_arn);
    kms_keyring *disc = must_keyring(kms_keyring_kms_discovery_new(client));
    kms_materials m;
    enc_init(&m, suite, &ec, NULL);
    wrap(d, &m);
    json_decref(call_json("DisableKey", json_pack("{s:s}", "KeyId", d_arn)));
    assert_unwrap_fails(KMS_ERR_DISABLED, d, suite, &ec, &m.edks);
    assert_unwrap_fails(KMS_ERR_DISABLED, disc, suite, &ec, &m.edks);
    wrap_fails(KMS_ERR_DISABLED, d, suite, &ec);
    /* a generates, d fails to encrypt: the whole OnEncrypt fails and leaves no trace. */
    kms_materials f;
    enc_init(&f, suite, &ec, NULL);
    assert_int_equal(ad->vt->on_encrypt(ad, &f), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_DISABLED);
    assert_false(f.has_data_key);
    assert_int_equal(f.edks.n, 0);
    kms_materials_clean_up(&f);
    /* A disabled key can still be named in a keyring (DescribeKey works). */
    kms_keyring_free(kms_kr(d_arn, NULL));
    json_decref(call_json("EnableKey", json_pack("{s:s}", "KeyId", d_arn)));
    assert_unwraps(d, suite, &ec, &m.edks, m.data_key, NULL);
    kms_materials_clean_up(&m);
    kms_keyring_free(d);
    kms_keyring_free(ad);
    kms_keyring_free(disc);
    kms_ec_clean_up(&ec);
}

static void test_kms_new_errors(void **state)
{
    const char *unknown[] = {"11111111-2222-4333-8444-555555555555"};
    const char *alias[] = {"alias/nothing"};
    const char *empty[] = {""};
    const char *null_id[] = {NULL};
    const char *mixed[] = {a_arn, "11111111-2222-4333-8444-555555555555"};
    assert_new_fails(KMS_ERR_NOT_FOUND, kms_keyring_kms_new(client, unknown, 1));
    assert_new_fails(KMS_ERR_NOT_FOUND, kms_keyring_kms_new(client, alias, 1));
    assert_new_fails(KMS_ERR_NOT_FOUND, kms_keyring_kms_new(client, mixed, 2));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_kms_new(client, empty, 1));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_kms_new(client, null_id, 1));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_kms_new(client, mixed, 0));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_kms_new(client, NULL, 1));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_kms_new(NULL, mixed, 1));
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_kms_discovery_new(NULL));
    /* Asymmetric and HMAC keys cannot make data keys. */
    char rsa_arn[256], hmac_arn[256];
    create_key(json_pack("{s:s, s:s}", "KeySpec", "RSA_2048", "KeyUsage", "ENCRYPT_DECRYPT"),
               rsa_arn);
    create_key(json_pack("{s:s, s:s}", "KeySpec", "HMAC_256", "KeyUsage", "GENERATE_VERIFY_MAC"),
               hmac_arn);
    const char *rsa[] = {rsa_arn};
    const char *hmac[] = {hmac_arn};
    assert_new_fails(KMS_ERR_INVALID_KEY_USAGE, kms_keyring_kms_new(client, rsa, 1));
    assert_new_fails(KMS_ERR_INVALID_KEY_USAGE, kms_keyring_kms_new(client, hmac, 1));
}

/* ---- Many encrypted data keys (issue 15 item 6) -----------------------------------------------*/

/* KMS Decrypt calls in the trail since the test began (LookupEvents from `since`, epoch
 * seconds; the tests stay within one page). */
static size_t decrypt_calls(const char *since)
{
    json_t *j = call_json("cloudtrail:LookupEvents",
                          json_pack("{s:[{s:s, s:s}], s:s, s:i}", "LookupAttributes",
                                    "AttributeKey", "EventName", "AttributeValue", "Decrypt",
                                    "StartTime", since, "MaxResults", 50));
    size_t n = json_array_size(json_object_get(j, "Events"));
    json_decref(j);
    assert_true(n < 50);
    return n;
}

/* Now minus a second, as LookupEvents' StartTime. */
static void window_start(char out[32])
{
    snprintf(out, 32, "%lld", (long long)time(NULL) - 1);
}

/* Adds n junk EDKs naming arn (provider "aws-kms", a blob KMS cannot decrypt) to l. */
static void add_junk(kms_edk_list *l, const char *arn, size_t n)
{
    uint8_t blob[150];
    memset(blob, 0x5a, sizeof blob);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(kms_edk_list_add(l, "aws-kms", 7, arn, strlen(arn), blob, sizeof blob), 0);
    }
}

/* A keyring that has an inner keyring wrap the data key, then puts `junk` junk EDKs of key a
 * before the inner keyring's: how a crafted message looks, with an authentic header. */
typedef struct junk_keyring {
    kms_keyring base;
    const kms_keyring *inner;
    size_t junk;
} junk_keyring;

static int junk_on_encrypt(const kms_keyring *kr, kms_materials *m)
{
    const junk_keyring *k = (const junk_keyring *)kr;
    kms_edk_list l = {0};
    if (k->inner->vt->on_encrypt(k->inner, m) != 0) {
        return -1;
    }
    add_junk(&l, a_arn, k->junk);
    for (size_t i = 0; i < m->edks.n; i++) {
        const kms_edk *e = &m->edks.v[i];
        assert_int_equal(kms_edk_list_add(&l, e->provider_id, e->provider_id_len, e->provider_info,
                                          e->provider_info_len, e->ciphertext, e->ciphertext_len),
                         0);
    }
    kms_edk_list_clean_up(&m->edks);
    m->edks = l;
    return 0;
}

static const kms_keyring_vtable JUNK_VT = {.name = "junk", .on_encrypt = junk_on_encrypt};

/* The KMS keyring stops at the first EDK that decrypts: junk, good, good takes two Decrypt
 * calls (the junk one refused, the first good one), strict and discovery alike. */
static void test_kms_first_that_decrypts(void **state)
{
    const uint16_t suite = KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY;
    kms_ec ec;
    ec_std(&ec);
    kms_keyring *a = kms_kr(a_arn, NULL);
    kms_keyring *disc = must_keyring(kms_keyring_kms_discovery_new(client));
    kms_materials m;
    enc_init(&m, suite, &ec, NULL);
    wrap(a, &m);
    kms_edk_list l = {0};
    add_junk(&l, a_arn, 1);
    for (size_t i = 0; i < 2; i++) {
        const kms_edk *e = &m.edks.v[0];
        assert_int_equal(kms_edk_list_add(&l, e->provider_id, e->provider_id_len, e->provider_info,
                                          e->provider_info_len, e->ciphertext, e->ciphertext_len),
                         0);
    }
    const kms_keyring *rings[] = {a, disc};
    char since[32];
    window_start(since);
    for (size_t r = 0; r < 2; r++) {
        size_t before = decrypt_calls(since), used = 99;
        assert_unwraps(rings[r], suite, &ec, &l, m.data_key, &used);
        assert_int_equal(used, 1);
        assert_int_equal(decrypt_calls(since) - before, 2);
    }
    kms_edk_list_clean_up(&l);
    kms_materials_clean_up(&m);
    kms_keyring_free(a);
    kms_keyring_free(disc);
    kms_ec_clean_up(&ec);
}

/* Whole messages through the KMS keyring: one junk EDK before the good one decrypts with two
 * Decrypt calls; 3,000 junk EDKs are refused by the default limit before any call. */
static void test_kms_message_edk_limit(void **state)
{
    static const uint8_t pt[] = "many keys";
    kms_keyring *a = kms_kr(a_arn, NULL);
    junk_keyring one = {.base.vt = &JUNK_VT, .inner = a, .junk = 1};
    junk_keyring many = {.base.vt = &JUNK_VT, .inner = a, .junk = 3000};
    kms_envelope_options eo = {.keyring = &one.base};
    kms_envelope_options d = {.keyring = a};
    uint8_t *msg = NULL, *out = NULL;
    size_t msg_len = 0, out_len = 0;
    kms_envelope_info info;
    memset(&info, 0, sizeof info);
    char since[32];
    window_start(since);

    assert_int_equal(kms_envelope_encrypt(&eo, pt, sizeof pt, &msg, &msg_len), 0);
    size_t before = decrypt_calls(since);
    assert_int_equal(kms_envelope_decrypt(&d, msg, msg_len, &out, &out_len, &info), 0);
    assert_int_equal(decrypt_calls(since) - before, 2);
    assert_memory_equal(out, pt, sizeof pt);
    assert_string_equal(info.key_provider_info, a_arn);
    kms_envelope_info_clean_up(&info);
    kms_secret_free(out, out_len);
    kms_buffer_free(msg);

    eo.keyring = &many.base;
    eo.max_encrypted_data_keys = UINT16_MAX;
    assert_int_equal(kms_envelope_encrypt(&eo, pt, sizeof pt, &msg, &msg_len), 0);
    before = decrypt_calls(since);
    out = NULL;
    assert_kms_error(kms_envelope_decrypt(&d, msg, msg_len, &out, &out_len, NULL),
                     KMS_ERR_LIMIT_EXCEEDED);
    assert_string_equal(kms_last_error_message(),
                        "the message has 3001 encrypted data keys, more than the maximum of 10: "
                        "refused before trying any (raise max_encrypted_data_keys, kmsctl: "
                        "--max-encrypted-data-keys, only for messages you expect to have that "
                        "many)");
    d.max_encrypted_data_keys = 3000;
    assert_kms_error(kms_envelope_decrypt(&d, msg, msg_len, &out, &out_len, NULL),
                     KMS_ERR_LIMIT_EXCEEDED);
    assert_null(out);
    assert_int_equal(decrypt_calls(since) - before, 0);
    kms_buffer_free(msg);
    kms_keyring_free(a);
}

/* ---- Multi-keyring ----------------------------------------------------------------------------*/

static void test_multi_encrypt_decrypt(void **state)
{
    const uint16_t suite = KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY;
    kms_ec ec;
    ec_std(&ec);
    kms_keyring *kids[] = {
        must_keyring(
            kms_keyring_raw_rsa_new("rsa", "r", rsa_spki, strlen(rsa_spki), KMS_RSA_OAEP_SHA256)),
        must_keyring(kms_keyring_raw_aes_new("aes", "two", KEY_B, 32)),
        kms_kr(b_arn, NULL),
    };
    kms_keyring *multi = must_keyring(kms_keyring_multi_new(
        must_keyring(kms_keyring_raw_aes_new("aes", "one", KEY_A, 32)), kids, 3));
    kms_materials m;
    enc_init(&m, suite, &ec, NULL);
    wrap(multi, &m);
    assert_int_equal(m.edks.n, 4);
    assert_bytes_str(m.edks.v[0].provider_id, m.edks.v[0].provider_id_len, "aes");
    assert_memory_equal(m.edks.v[0].provider_info, "one", 3);
    assert_bytes_str(m.edks.v[1].provider_id, m.edks.v[1].provider_id_len, "rsa");
    assert_bytes_str(m.edks.v[2].provider_id, m.edks.v[2].provider_id_len, "aes");
    assert_memory_equal(m.edks.v[2].provider_info, "two", 3);
    assert_bytes_str(m.edks.v[3].provider_id, m.edks.v[3].provider_id_len, "aws-kms");

    /* Every member alone unwraps the same data key from its own EDK. */
    kms_keyring *one = must_keyring(kms_keyring_raw_aes_new("aes", "one", KEY_A, 32));
    kms_keyring *two = must_keyring(kms_keyring_raw_aes_new("aes", "two", KEY_B, 32));
    kms_keyring *rsa = must_keyring(
        kms_keyring_raw_rsa_new("rsa", "r", rsa_pkcs8, strlen(rsa_pkcs8), KMS_RSA_OAEP_SHA256));
    kms_keyring *disc = must_keyring(kms_keyring_kms_discovery_new(client));
    size_t used = 99;
    assert_unwraps(one, suite, &ec, &m.edks, m.data_key, &used);
    assert_int_equal(used, 0);
    assert_unwraps(rsa, suite, &ec, &m.edks, m.data_key, &used);
    assert_int_equal(used, 1);
    assert_unwraps(two, suite, &ec, &m.edks, m.data_key, &used);
    assert_int_equal(used, 2);
    assert_unwraps(disc, suite, &ec, &m.edks, m.data_key, &used);
    assert_int_equal(used, 3);
    /* The multi-keyring: the generator first. */
    assert_unwraps(multi, suite, &ec, &m.edks, m.data_key, &used);
    assert_int_equal(used, 0);
    /* Without the generator's EDK, the first child that can decrypt wins; the public-only RSA
     * child fails on the way (not NotFound) but a later child succeeds. */
    kms_edk_list t;
    edks_copy(&t, &m.edks);
    t.v[0].provider_id[0] = 'x';
    assert_unwraps(multi, suite, &ec, &t, m.data_key, &used);
    assert_int_equal(used, 2);
    t.v[2].provider_id[0] = 'x';
    assert_unwraps(multi, suite, &ec, &t, m.data_key, &used);
    assert_int_equal(used, 3);
    kms_edk_list_clean_up(&t);
    /* Materials that already hold a key come back untouched. */
    kms_materials d;
    enc_init(&d, suite, &ec, KEY_B);
    assert_int_equal(multi->vt->on_decrypt(multi, &d, &m.edks), 0);
    assert_memory_equal(d.data_key, KEY_B, 32);
    kms_materials_clean_up(&d);
    kms_materials_clean_up(&m);
    kms_keyring_free(multi);
    kms_keyring_free(one);
    kms_keyring_free(two);
    kms_keyring_free(rsa);
    kms_keyring_free(disc);
    kms_ec_clean_up(&ec);
}

static void test_multi_without_generator(void **state)
{
    const uint16_t suite = KMS_SUITE_AES_128_GCM_IV12_TAG16_NO_KDF;
    kms_ec ec;
    ec_std(&ec);
    kms_keyring *kids[] = {must_keyring(kms_keyring_raw_aes_new("aes", "one", KEY_A, 16))};
    kms_keyring *multi = must_keyring(kms_keyring_multi_new(NULL, kids, 1));
    /* No generator and no data key: nothing can make one. */
    wrap_fails(KMS_ERR_VALIDATION, multi, suite, &ec);
    /* With a data key (re-encrypt) the children wrap it. */
    kms_materials m;
    enc_init(&m, suite, &ec, KEY_B);
    wrap(multi, &m);
    assert_int_equal(m.edks.n, 1);
    assert_unwraps(multi, suite, &ec, &m.edks, KEY_B, NULL);
    kms_materials_clean_up(&m);
    /* A generator handed a data key wraps it too (re-encrypt to a generator + children). */
    kms_keyring *kids2[] = {must_keyring(kms_keyring_raw_aes_new("aes", "two", KEY_B, 16))};
    kms_keyring *gen = must_keyring(kms_keyring_multi_new(
        must_keyring(kms_keyring_raw_aes_new("aes", "one", KEY_A, 16)), kids2, 1));
    enc_init(&m, suite, &ec, KEY_A);
    wrap(gen, &m);
    assert_int_equal(m.edks.n, 2);
    assert_memory_equal(m.data_key, KEY_A, 16);
    assert_unwraps(multi, suite, &ec, &m.edks, KEY_A, NULL);
    kms_materials_clean_up(&m);
    kms_keyring_free(multi);
    kms_keyring_free(gen);
    kms_ec_clean_up(&ec);
}

static void test_multi_errors(void **state)
{
    const uint16_t suite = KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY;
    kms_ec ec;
    ec_std(&ec);
    kms_materials m;
    enc_init(&m, suite, &ec, NULL);
    kms_keyring *src = must_keyring(kms_keyring_raw_aes_new("aes", "one", KEY_A, 32));
    wrap(src, &m);
    kms_keyring_free(src);

    /* No member has an EDK: NotFound. */
    kms_keyring *none_kids[] = {must_keyring(kms_keyring_raw_aes_new("aes", "zzz", KEY_A, 32))};
    kms_keyring *none = must_keyring(kms_keyring_multi_new(
        must_keyring(kms_keyring_raw_aes_new("other", "one", KEY_A, 32)), none_kids, 1));
    assert_unwrap_fails(KMS_ERR_NOT_FOUND, none, suite, &ec, &m.edks);
    /* One member's EDK does not authenticate: that error wins over NotFound, in either order. */
    kms_keyring *bad1[] = {must_keyring(kms_keyring_raw_aes_new("aes", "zzz", KEY_A, 32))};
    kms_keyring *bad_first = must_keyring(kms_keyring_multi_new(
        must_keyring(kms_keyring_raw_aes_new("aes", "one", KEY_B, 32)), bad1, 1));
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, bad_first, suite, &ec, &m.edks);
    kms_keyring *bad2[] = {must_keyring(kms_keyring_raw_aes_new("aes", "one", KEY_B, 32))};
    kms_keyring *bad_last = must_keyring(kms_keyring_multi_new(
        must_keyring(kms_keyring_raw_aes_new("aes", "zzz", KEY_A, 32)), bad2, 1));
    assert_unwrap_fails(KMS_ERR_INVALID_CIPHERTEXT, bad_last, suite, &ec, &m.edks);
    /* A public-only RSA member cannot decrypt. */
    kms_keyring *pub[] = {must_keyring(
        kms_keyring_raw_rsa_new("rsa", "r", rsa_spki, strlen(rsa_spki), KMS_RSA_OAEP_SHA256))};
    kms_keyring *pub_only = must_keyring(kms_keyring_multi_new(NULL, pub, 1));
    assert_unwrap_fails(KMS_ERR_VALIDATION, pub_only, suite, &ec, &m.edks);
    /* A failing child fails the OnEncrypt with its own code. */
    kms_keyring *disc_kids[] = {must_keyring(kms_keyring_kms_discovery_new(client))};
    kms_keyring *with_disc = must_keyring(kms_keyring_multi_new(
        must_keyring(kms_keyring_raw_aes_new("aes", "one", KEY_A, 32)), disc_kids, 1));
    wrap_fails(KMS_ERR_VALIDATION, with_disc, suite, &ec);
    kms_keyring *disc_gen = must_keyring(
        kms_keyring_multi_new(must_keyring(kms_keyring_kms_discovery_new(client)), NULL, 0));
    wrap_fails(KMS_ERR_VALIDATION, disc_gen, suite, &ec);
    /* ... but the discovery generator decrypts. */
    kms_keyring *kms_src = kms_kr(a_arn, NULL);
    kms_materials k;
    enc_init(&k, suite, &ec, NULL);
    wrap(kms_src, &k);
    assert_unwraps(disc_gen, suite, &ec, &k.edks, k.data_key, NULL);
    kms_materials_clean_up(&k);

    /* Construction: something to hold, no NULL children; ownership is taken also on failure
     * (the sanitizer build checks nothing leaks). */
    assert_new_fails(KMS_ERR_VALIDATION, kms_keyring_multi_new(NULL, NULL, 0));
    kms_keyring *holes[] = {must_keyring(kms_keyring_raw_aes_new("aes", "one", KEY_A, 32)), NULL};
    assert_new_fails(KMS_ERR_VALIDATION,
                     kms_keyring_multi_new(
                         must_keyring(kms_keyring_raw_aes_new("aes", "g", KEY_A, 32)), holes, 2));
    assert_new_fails(KMS_ERR_VALIDATION,
                     kms_keyring_multi_new(
                         must_keyring(kms_keyring_raw_aes_new("aes", "g", KEY_A, 32)), NULL, 2));
    /* Nested multi-keyrings. */
    kms_keyring *inner_kids[] = {must_keyring(kms_keyring_raw_aes_new("aes", "one", KEY_A, 32))};
    kms_keyring *outer_kids[] = {must_keyring(kms_keyring_multi_new(NULL, inner_kids, 1))};
    kms_keyring *outer = must_keyring(kms_keyring_multi_new(NULL, outer_kids, 1));
    assert_unwraps(outer, suite, &ec, &m.edks, m.data_key, NULL);

    kms_materials_clean_up(&m);
    kms_keyring_free(none);
    kms_keyring_free(bad_first);
    kms_keyring_free(bad_last);
    kms_keyring_free(pub_only);
    kms_keyring_free(with_disc);
    kms_keyring_free(disc_gen);
    kms_keyring_free(kms_src);
    kms_keyring_free(outer);
    kms_ec_clean_up(&ec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_aes_round_trip),
        cmocka_unit_test(test_raw_aes_existing_key_and_empty_context),
        cmocka_unit_test(test_raw_aes_failures),
        cmocka_unit_test(test_raw_aes_new_errors),
        cmocka_unit_test(test_raw_aes_esdk_vectors),
        cmocka_unit_test(test_raw_rsa_paddings),
        cmocka_unit_test(test_raw_rsa_failures),
        cmocka_unit_test(test_raw_rsa_new_errors),
        cmocka_unit_test(test_kms_round_trip),
        cmocka_unit_test(test_kms_failures),
        cmocka_unit_test(test_kms_disabled_key),
        cmocka_unit_test(test_kms_new_errors),
        cmocka_unit_test(test_kms_first_that_decrypts),
        cmocka_unit_test(test_kms_message_edk_limit),
        cmocka_unit_test(test_multi_encrypt_decrypt),
        cmocka_unit_test(test_multi_without_generator),
        cmocka_unit_test(test_multi_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
