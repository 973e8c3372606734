/* Unit tests of src/hsm against a fresh SoftHSM2 token. */
#include "testutil.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "hsm/hsm.h"
#include "hsm/hsm_internal.h"
#include "kms/kms.h"
#include "util/secmem.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "kms-test"
#define PIN "1234-user-pin"

typedef struct fixture {
    char *dir;
    kms_hsm *hsm;
} fixture;

static kms_hsm_config config(const char *module, const char *token, const char *pin)
{
    kms_hsm_config cfg = {
        .module_path = module,
        .token_label = token,
        .pin = (const uint8_t *)pin,
        .pin_len = strlen(pin),
        .pool_size = 0,
    };
    return cfg;
}

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->dir = kms_test_tmpdir();
    kms_test_token(fx->dir, TOKEN, PIN);
    kms_hsm_config cfg = config(MODULE, TOKEN, PIN);
    fx->hsm = kms_hsm_open(&cfg);
    if (fx->hsm == NULL) {
        fail_msg("open: %s", kms_last_error_message());
    }
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    kms_hsm_close(fx->hsm);
    kms_test_rmrf(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static void gen(kms_hsm *h, kms_hsm_key_type type, const char *label, uint8_t **spki,
                size_t *spki_len)
{
    if (kms_hsm_generate_key(h, type, label, spki, spki_len) != 0) {
        fail_msg("generate %s: %s", label, kms_last_error_message());
    }
}

/* ---- Opening ---------------------------------------------------------------------------- */

static void test_open_wrong_pin(void **state)
{
    (void)state;
    /* Another handle is logged in to the token: the wrong PIN must still be refused. */
    kms_hsm_config cfg = config(MODULE, TOKEN, "0000-wrong-pin");
    assert_null(kms_hsm_open(&cfg));
    assert_int_equal(kms_last_error(), KMS_ERR_HSM);
    assert_non_null(strstr(kms_last_error_message(), "refused the PIN"));
    assert_null(strstr(kms_last_error_message(), "0000-wrong-pin"));
    cfg = config(MODULE, TOKEN, "1");
    assert_null(kms_hsm_open(&cfg));
    assert_int_equal(kms_last_error(), KMS_ERR_HSM);
}

static void test_open_second_handle(void **state)
{
    (void)state;
    kms_hsm_config cfg = config(MODULE, TOKEN, PIN);
    cfg.pool_size = 1;
    kms_hsm *h2 = kms_hsm_open(&cfg);
    assert_non_null(h2);
    uint8_t buf[32];
    assert_int_equal(kms_hsm_random(h2, buf, sizeof buf), 0);
    kms_hsm_close(h2);
}

static void test_open_unknown_token(void **state)
{
    (void)state;
    kms_hsm_config cfg = config(MODULE, "no-such-token", PIN);
    assert_null(kms_hsm_open(&cfg));
    assert_int_equal(kms_last_error(), KMS_ERR_HSM);
    assert_non_null(strstr(kms_last_error_message(), "no-such-token"));
    assert_non_null(strstr(kms_last_error_message(), "kmsctl init"));
}

static void test_open_bad_module(void **state)
{
    (void)state;
    kms_hsm_config cfg = config("/nonexistent/libnope.so", TOKEN, PIN);
    assert_null(kms_hsm_open(&cfg));
    assert_int_equal(kms_last_error(), KMS_ERR_HSM);
    assert_non_null(strstr(kms_last_error_message(), "/nonexistent/libnope.so"));
}

static void test_init_token_exists(void **state)
{
    (void)state;
    int rc = kms_hsm_init_token(MODULE, TOKEN, (const uint8_t *)"so-pin-x", 8, (const uint8_t *)PIN,
                                strlen(PIN));
    assert_kms_error(rc, KMS_ERR_ALREADY_EXISTS);
}

/* ---- Generation ----------------------------------------------------------------------------- */

static void check_spki(const uint8_t *spki, size_t len, int want_id, int want_bits,
                       const char *want_group)
{
    const unsigned char *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);
    assert_non_null(pk);
    assert_ptr_equal(p, spki + len);
    assert_true(EVP_PKEY_is_a(pk, want_id == EVP_PKEY_RSA ? "RSA" : "EC"));
    assert_int_equal(EVP_PKEY_get_bits(pk), want_bits);
    if (want_group != NULL) {
        char group[64];
        size_t glen = 0;
        assert_int_equal(EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                        sizeof group, &glen),
                         1);
        assert_string_equal(group, want_group);
    } else {
        BIGNUM *e = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
        assert_true(BN_is_word(e, 65537));
        BN_free(e);
    }
    EVP_PKEY_free(pk);
}

static void test_generate_all_types(void **state)
{
    fixture *fx = *state;
    static const struct {
        kms_hsm_key_type type;
        const char *label;
        int id;
        int bits;
        const char *group;
    } cases[] = {
        {KMS_HSM_AES_256, "gen-aes", 0, 0, NULL},
        {KMS_HSM_HMAC_224, "gen-hmac224", 0, 0, NULL},
        {KMS_HSM_HMAC_256, "gen-hmac256", 0, 0, NULL},
        {KMS_HSM_HMAC_384, "gen-hmac384", 0, 0, NULL},
        {KMS_HSM_HMAC_512, "gen-hmac512", 0, 0, NULL},
        {KMS_HSM_RSA_2048, "gen-rsa2048", EVP_PKEY_RSA, 2048, NULL},
        {KMS_HSM_RSA_3072, "gen-rsa3072", EVP_PKEY_RSA, 3072, NULL},
        {KMS_HSM_RSA_4096, "gen-rsa4096", EVP_PKEY_RSA, 4096, NULL},
        {KMS_HSM_EC_P256, "gen-p256", EVP_PKEY_EC, 256, "prime256v1"},
        {KMS_HSM_EC_P384, "gen-p384", EVP_PKEY_EC, 384, "secp384r1"},
        {KMS_HSM_EC_P521, "gen-p521", EVP_PKEY_EC, 521, "secp521r1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *spki = (uint8_t *)1;
        size_t spki_len = 1;
        gen(fx->hsm, cases[i].type, cases[i].label, &spki, &spki_len);
        if (cases[i].id == 0) {
            assert_null(spki);
            assert_int_equal(spki_len, 0);
        } else {
            assert_non_null(spki);
            check_spki(spki, spki_len, cases[i].id, cases[i].bits, cases[i].group);
        }
        free(spki);
    }
    /* Symmetric types accept a NULL spki; asymmetric ones need it. */
    assert_int_equal(kms_hsm_generate_key(fx->hsm, KMS_HSM_AES_256, "gen-aes-nospki", NULL, NULL),
                     0);
    assert_kms_error(kms_hsm_generate_key(fx->hsm, KMS_HSM_EC_P256, "gen-ec-nospki", NULL, NULL),
                     KMS_ERR_VALIDATION);
    assert_kms_error(kms_hsm_generate_key(fx->hsm, (kms_hsm_key_type)99, "gen-bad", NULL, NULL),
                     KMS_ERR_VALIDATION);
    assert_kms_error(kms_hsm_generate_key(fx->hsm, KMS_HSM_AES_256, "", NULL, NULL),
                     KMS_ERR_VALIDATION);
}

static void test_duplicate_label(void **state)
{
    fixture *fx = *state;
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    gen(fx->hsm, KMS_HSM_AES_256, "dup-aes", NULL, NULL);
    assert_kms_error(kms_hsm_generate_key(fx->hsm, KMS_HSM_AES_256, "dup-aes", NULL, NULL),
                     KMS_ERR_ALREADY_EXISTS);
    assert_kms_error(kms_hsm_generate_key(fx->hsm, KMS_HSM_EC_P256, "dup-aes", &spki, &spki_len),
                     KMS_ERR_ALREADY_EXISTS);
    assert_null(spki);
    gen(fx->hsm, KMS_HSM_EC_P256, "dup-ec", &spki, &spki_len);
    free(spki);
    spki = NULL;
    assert_kms_error(kms_hsm_generate_key(fx->hsm, KMS_HSM_HMAC_256, "dup-ec", NULL, NULL),
                     KMS_ERR_ALREADY_EXISTS);
    /* The refused generations left the originals intact. */
    assert_int_equal(kms_hsm_destroy_key(fx->hsm, "dup-ec"), 0);
    assert_int_equal(kms_hsm_destroy_key(fx->hsm, "dup-aes"), 0);
}

/* ---- AES-GCM ----------------------------------------------------------------------------------
 */

static void test_aes_gcm_round_trip(void **state)
{
    fixture *fx = *state;
    gen(fx->hsm, KMS_HSM_AES_256, "gcm", NULL, NULL);
    static const size_t sizes[] = {0, 1, 32, 1000, 5000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        uint8_t iv[KMS_HSM_GCM_IV_LEN] = {1, 2, 3};
        uint8_t aad[] = "encryption context";
        uint8_t *pt = malloc(n + 1);
        uint8_t *ct = malloc(n + 1);
        uint8_t *back = malloc(n + 1);
        uint8_t tag[KMS_HSM_GCM_TAG_LEN];
        assert_non_null(pt);
        assert_non_null(ct);
        assert_non_null(back);
        for (size_t i = 0; i < n; i++) {
            pt[i] = (uint8_t)(i * 7 + 1);
        }
        assert_int_equal(
            kms_hsm_aes_gcm_encrypt(fx->hsm, "gcm", iv, aad, sizeof aad, pt, n, ct, tag), 0);
        if (n >= 16) {
            assert_memory_not_equal(pt, ct, n);
        }
        assert_int_equal(
            kms_hsm_aes_gcm_decrypt(fx->hsm, "gcm", iv, aad, sizeof aad, ct, n, tag, back), 0);
        assert_memory_equal(pt, back, n);
        /* Without AAD too. */
        assert_int_equal(kms_hsm_aes_gcm_encrypt(fx->hsm, "gcm", iv, NULL, 0, pt, n, ct, tag), 0);
        assert_int_equal(kms_hsm_aes_gcm_decrypt(fx->hsm, "gcm", iv, NULL, 0, ct, n, tag, back), 0);
        assert_memory_equal(pt, back, n);
        free(pt);
        free(ct);
        free(back);
    }
}

static void expect_tamper_refused(kms_hsm *h, const uint8_t *iv, const uint8_t *aad, size_t aad_len,
                                  const uint8_t *ct, size_t n, const uint8_t *tag)
{
    uint8_t out[64];
    memset(out, 0xA5, sizeof out);
    assert_kms_error(kms_hsm_aes_gcm_decrypt(h, "gcm-tamper", iv, aad, aad_len, ct, n, tag, out),
                     KMS_ERR_INVALID_CIPHERTEXT);
    for (size_t i = 0; i < sizeof out; i++) {
        assert_int_equal(out[i], 0xA5); /* nothing written */
    }
}

static void test_aes_gcm_tampered(void **state)
{
    fixture *fx = *state;
    gen(fx->hsm, KMS_HSM_AES_256, "gcm-tamper", NULL, NULL);
    uint8_t iv[KMS_HSM_GCM_IV_LEN] = {9, 9, 9};
    uint8_t aad[] = "aad";
    uint8_t pt[32] = "a 32-byte data key, say........";
    uint8_t ct[32];
    uint8_t tag[KMS_HSM_GCM_TAG_LEN];
    assert_int_equal(
        kms_hsm_aes_gcm_encrypt(fx->hsm, "gcm-tamper", iv, aad, sizeof aad, pt, sizeof pt, ct, tag),
        0);
    ct[5] ^= 1;
    expect_tamper_refused(fx->hsm, iv, aad, sizeof aad, ct, sizeof ct, tag);
    ct[5] ^= 1;
    tag[15] ^= 0x80;
    expect_tamper_refused(fx->hsm, iv, aad, sizeof aad, ct, sizeof ct, tag);
    tag[15] ^= 0x80;
    aad[0] ^= 1;
    expect_tamper_refused(fx->hsm, iv, aad, sizeof aad, ct, sizeof ct, tag);
    expect_tamper_refused(fx->hsm, iv, NULL, 0, ct, sizeof ct, tag);
    aad[0] ^= 1;
    iv[11] ^= 1;
    expect_tamper_refused(fx->hsm, iv, aad, sizeof aad, ct, sizeof ct, tag);
    iv[11] ^= 1;
    expect_tamper_refused(fx->hsm, iv, aad, sizeof aad, ct, sizeof ct - 1, tag);
    /* The sessions are still usable afterwards, and the untouched input decrypts. */
    uint8_t back[32];
    assert_int_equal(kms_hsm_aes_gcm_decrypt(fx->hsm, "gcm-tamper", iv, aad, sizeof aad, ct,
                                             sizeof ct, tag, back),
                     0);
    assert_memory_equal(back, pt, sizeof pt);
}

static void test_wrong_key_usage(void **state)
{
    fixture *fx = *state;
    gen(fx->hsm, KMS_HSM_HMAC_256, "usage-hmac", NULL, NULL);
    gen(fx->hsm, KMS_HSM_AES_256, "usage-aes", NULL, NULL);
    uint8_t iv[KMS_HSM_GCM_IV_LEN] = {0};
    uint8_t pt[16] = {0};
    uint8_t ct[16];
    uint8_t tag[KMS_HSM_GCM_TAG_LEN];
    int rc = kms_hsm_aes_gcm_encrypt(fx->hsm, "usage-hmac", iv, NULL, 0, pt, sizeof pt, ct, tag);
    assert_kms_error(rc, KMS_ERR_INVALID_KEY_USAGE);
    uint8_t digest[32] = {0};
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    rc = kms_hsm_sign_digest(fx->hsm, "usage-aes", KMS_HSM_ECDSA_SHA256, digest, sizeof digest,
                             &sig, &sig_len);
    assert_kms_error(rc, KMS_ERR_INVALID_KEY_USAGE);
    uint8_t mac[64];
    size_t mac_len;
    rc = kms_hsm_hmac(fx->hsm, "usage-aes", KMS_HSM_HMAC_256, pt, sizeof pt, mac, &mac_len);
    assert_kms_error(rc, KMS_ERR_INVALID_KEY_USAGE);
    rc = kms_hsm_hmac(fx->hsm, "usage-hmac", KMS_HSM_AES_256, pt, sizeof pt, mac, &mac_len);
    assert_kms_error(rc, KMS_ERR_VALIDATION);
    /* The pool survived the failures. */
    assert_int_equal(
        kms_hsm_aes_gcm_encrypt(fx->hsm, "usage-aes", iv, NULL, 0, pt, sizeof pt, ct, tag), 0);
}

/* ---- Signatures -------------------------------------------------------------------------------
 */

static void verify_with_openssl(const uint8_t *spki, size_t spki_len, kms_hsm_sig_alg alg,
                                const EVP_MD *md, const uint8_t *digest, size_t digest_len,
                                const uint8_t *sig, size_t sig_len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
    assert_non_null(pk);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, md), 1);
    switch (alg) {
    case KMS_HSM_RSA_PSS_SHA256:
    case KMS_HSM_RSA_PSS_SHA384:
    case KMS_HSM_RSA_PSS_SHA512:
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), 1);
        /* salt exactly the digest length */
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)digest_len), 1);
        break;
    case KMS_HSM_RSA_PKCS1_SHA256:
    case KMS_HSM_RSA_PKCS1_SHA384:
    case KMS_HSM_RSA_PKCS1_SHA512:
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
        break;
    default:
        break;
    }
    assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len), 1);
    /* A different digest does not verify. */
    uint8_t other[64];
    memcpy(other, digest, digest_len);
    other[0] ^= 1;
    assert_int_not_equal(EVP_PKEY_verify(ctx, sig, sig_len, other, digest_len), 1);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
}

static void test_sign_verify(void **state)
{
    fixture *fx = *state;
    uint8_t *rsa_spki = NULL;
    uint8_t *p256_spki = NULL;
    uint8_t *p384_spki = NULL;
    uint8_t *p521_spki = NULL;
    size_t p521_len = 0;
    size_t rsa_len = 0;
    size_t p256_len = 0;
    size_t p384_len = 0;
    gen(fx->hsm, KMS_HSM_RSA_2048, "sig-rsa", &rsa_spki, &rsa_len);
    gen(fx->hsm, KMS_HSM_EC_P256, "sig-p256", &p256_spki, &p256_len);
    gen(fx->hsm, KMS_HSM_EC_P384, "sig-p384", &p384_spki, &p384_len);
    gen(fx->hsm, KMS_HSM_EC_P521, "sig-p521", &p521_spki, &p521_len);
    const struct {
        kms_hsm_sig_alg alg;
        const char *label;
        const uint8_t *spki;
        size_t spki_len;
        const EVP_MD *md;
        size_t fixed_sig_len;
    } cases[] = {
        {KMS_HSM_RSA_PSS_SHA256, "sig-rsa", rsa_spki, rsa_len, EVP_sha256(), 256},
        {KMS_HSM_RSA_PSS_SHA384, "sig-rsa", rsa_spki, rsa_len, EVP_sha384(), 256},
        {KMS_HSM_RSA_PSS_SHA512, "sig-rsa", rsa_spki, rsa_len, EVP_sha512(), 256},
        {KMS_HSM_RSA_PKCS1_SHA256, "sig-rsa", rsa_spki, rsa_len, EVP_sha256(), 256},
        {KMS_HSM_RSA_PKCS1_SHA384, "sig-rsa", rsa_spki, rsa_len, EVP_sha384(), 256},
        {KMS_HSM_RSA_PKCS1_SHA512, "sig-rsa", rsa_spki, rsa_len, EVP_sha512(), 256},
        {KMS_HSM_ECDSA_SHA256, "sig-p256", p256_spki, p256_len, EVP_sha256(), 0},
        {KMS_HSM_ECDSA_SHA384, "sig-p384", p384_spki, p384_len, EVP_sha384(), 0},
        /* P-521: r and s of 66 bytes each from the token, DER-encoded here. */
        {KMS_HSM_ECDSA_SHA512, "sig-p521", p521_spki, p521_len, EVP_sha512(), 0},
    };
    static const char msg[] = "the message AWS KMS would hash";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t digest[64];
        unsigned dlen = 0;
        assert_int_equal(EVP_Digest(msg, sizeof msg - 1, digest, &dlen, cases[i].md, NULL), 1);
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        if (kms_hsm_sign_digest(fx->hsm, cases[i].label, cases[i].alg, digest, dlen, &sig,
                                &sig_len) != 0) {
            fail_msg("sign alg %d: %s", (int)cases[i].alg, kms_last_error_message());
        }
        if (cases[i].fixed_sig_len != 0) {
            assert_int_equal(sig_len, cases[i].fixed_sig_len);
        } else {
            /* DER ECDSA-Sig-Value */
            const unsigned char *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
            assert_non_null(es);
            assert_ptr_equal(p, sig + sig_len);
            ECDSA_SIG_free(es);
        }
        verify_with_openssl(cases[i].spki, cases[i].spki_len, cases[i].alg, cases[i].md, digest,
                            dlen, sig, sig_len);
        free(sig);
        /* A digest of the wrong length is refused before the HSM sees it. */
        sig = NULL;
        assert_kms_error(kms_hsm_sign_digest(fx->hsm, cases[i].label, cases[i].alg, digest,
                                             dlen - 1, &sig, &sig_len),
                         KMS_ERR_VALIDATION);
        assert_null(sig);
    }
    free(rsa_spki);
    free(p256_spki);
    free(p384_spki);
    free(p521_spki);
}

/* ---- HMAC -------------------------------------------------------------------------------------
 */

/* RSAES-OAEP with OpenSSL and the public key, as the service's Encrypt does. */
static size_t oaep_encrypt(const uint8_t *spki, size_t spki_len, bool sha256, const uint8_t *pt,
                           size_t pt_len, uint8_t ct[512])
{
    const uint8_t *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
    assert_non_null(pk);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    const EVP_MD *md = sha256 ? EVP_sha256() : EVP_sha1();
    size_t n = 512;
    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), 1);
    assert_int_equal(EVP_PKEY_encrypt(ctx, ct, &n, pt, pt_len), 1);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return n;
}

/* A refused decryption leaves pt as it was. */
static void expect_oaep_refused(kms_hsm *h, const char *label, bool sha256, const uint8_t *ct,
                                size_t ct_len, kms_error code)
{
    uint8_t pt[512];
    memset(pt, 0xa5, sizeof pt);
    size_t pt_len = 99;
    assert_kms_error(kms_hsm_rsa_oaep_decrypt(h, label, sha256, ct, ct_len, pt, &pt_len), code);
    for (size_t i = 0; i < sizeof pt; i++) {
        assert_int_equal(pt[i], 0xa5);
    }
}

static void test_rsa_oaep_decrypt(void **state)
{
    fixture *fx = *state;
    uint8_t *spki = NULL;
    uint8_t *sig_spki = NULL;
    size_t spki_len = 0;
    size_t sig_spki_len = 0;
    gen(fx->hsm, KMS_HSM_RSA_2048_DECRYPT, "oaep-rsa", &spki, &spki_len);
    gen(fx->hsm, KMS_HSM_RSA_2048, "oaep-signer", &sig_spki, &sig_spki_len);
    static const uint8_t msg[] = "a data key of 32 bytes, or so..";
    for (int sha256 = 0; sha256 <= 1; sha256++) {
        uint8_t ct[512];
        uint8_t pt[512];
        size_t pt_len = 0;
        size_t ct_len = oaep_encrypt(spki, spki_len, sha256, msg, sizeof msg, ct);
        assert_int_equal(ct_len, 256);
        if (kms_hsm_rsa_oaep_decrypt(fx->hsm, "oaep-rsa", sha256, ct, ct_len, pt, &pt_len) != 0) {
            fail_msg("OAEP decrypt (sha256=%d): %s", sha256, kms_last_error_message());
        }
        assert_int_equal(pt_len, sizeof msg);
        assert_memory_equal(pt, msg, sizeof msg);
        /* the other hash, a flipped bit, a short ciphertext: InvalidCiphertextException */
        expect_oaep_refused(fx->hsm, "oaep-rsa", !sha256, ct, ct_len, KMS_ERR_INVALID_CIPHERTEXT);
        ct[100] ^= 0x10;
        expect_oaep_refused(fx->hsm, "oaep-rsa", sha256, ct, ct_len, KMS_ERR_INVALID_CIPHERTEXT);
        ct[100] ^= 0x10;
        expect_oaep_refused(fx->hsm, "oaep-rsa", sha256, ct, ct_len - 1,
                            KMS_ERR_INVALID_CIPHERTEXT);
        /* Least privilege: the signing key's private half refuses C_DecryptInit. */
        uint8_t sct[512];
        size_t sct_len = oaep_encrypt(sig_spki, sig_spki_len, sha256, msg, sizeof msg, sct);
        expect_oaep_refused(fx->hsm, "oaep-signer", sha256, sct, sct_len,
                            KMS_ERR_INVALID_KEY_USAGE);
        /* and still decrypts after all those failures (sessions were not left half-used) */
        assert_int_equal(
            kms_hsm_rsa_oaep_decrypt(fx->hsm, "oaep-rsa", sha256, ct, ct_len, pt, &pt_len), 0);
        assert_memory_equal(pt, msg, sizeof msg);
    }
    /* ... and the decryption key refuses C_SignInit. */
    uint8_t digest[32] = {0};
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    assert_kms_error(kms_hsm_sign_digest(fx->hsm, "oaep-rsa", KMS_HSM_RSA_PSS_SHA256, digest,
                                         sizeof digest, &sig, &sig_len),
                     KMS_ERR_INVALID_KEY_USAGE);
    assert_null(sig);
    /* An AES key is no RSA key; a missing label is NotFoundException. */
    gen(fx->hsm, KMS_HSM_AES_256, "oaep-aes", NULL, NULL);
    uint8_t ct[256] = {1};
    expect_oaep_refused(fx->hsm, "oaep-aes", true, ct, sizeof ct, KMS_ERR_INVALID_KEY_USAGE);
    expect_oaep_refused(fx->hsm, "oaep-none", true, ct, sizeof ct, KMS_ERR_NOT_FOUND);
    free(spki);
    free(sig_spki);
}

/* The token's own word on the private keys' usage attributes (least privilege). */
static void test_rsa_usage_attributes(void **state)
{
    fixture *fx = *state;
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    gen(fx->hsm, KMS_HSM_RSA_2048_DECRYPT, "usage-attr-dec", &spki, &spki_len);
    free(spki);
    gen(fx->hsm, KMS_HSM_RSA_2048, "usage-attr-sig", &spki, &spki_len);
    free(spki);
    gen(fx->hsm, KMS_HSM_EC_P256_DERIVE, "usage-attr-ecdh", &spki, &spki_len);
    free(spki);
    gen(fx->hsm, KMS_HSM_EC_P256, "usage-attr-ecdsa", &spki, &spki_len);
    free(spki);
    void *dl = dlopen(MODULE, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(dl);
    CK_C_GetFunctionList get_list = NULL;
    *(void **)&get_list = dlsym(dl, "C_GetFunctionList");
    assert_non_null(get_list);
    CK_FUNCTION_LIST *f = NULL;
    assert_int_equal(get_list(&f), CKR_OK);
    CK_RV rv = f->C_Initialize(NULL);
    assert_true(rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
    bool we_initialised = rv == CKR_OK;
    CK_SLOT_ID slots[16];
    CK_ULONG nslots = 16;
    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &nslots), CKR_OK);
    CK_UTF8CHAR want[32];
    memset(want, ' ', sizeof want);
    memcpy(want, TOKEN, strlen(TOKEN));
    CK_SLOT_ID slot = (CK_SLOT_ID)-1;
    for (CK_ULONG i = 0; i < nslots; i++) {
        CK_TOKEN_INFO info;
        if (f->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
            memcmp(info.label, want, sizeof want) == 0) {
            slot = slots[i];
        }
    }
    assert_int_not_equal(slot, (CK_SLOT_ID)-1);
    CK_SESSION_HANDLE s;
    assert_int_equal(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)PIN, strlen(PIN));
    assert_true(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
    static const struct {
        const char *label;
        CK_BBOOL decrypt;
        CK_BBOOL sign;
        CK_BBOOL derive;
    } cases[] = {
        {"usage-attr-dec", CK_TRUE, CK_FALSE, CK_FALSE},
        {"usage-attr-sig", CK_FALSE, CK_TRUE, CK_FALSE},
        /* a KEY_AGREEMENT key derives (ECDH) and nothing else; a signing key never derives */
        {"usage-attr-ecdh", CK_FALSE, CK_FALSE, CK_TRUE},
        {"usage-attr-ecdsa", CK_FALSE, CK_TRUE, CK_FALSE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE tmpl[] = {
            {CKA_CLASS, &cls, sizeof cls},
            {CKA_LABEL, (void *)cases[i].label, strlen(cases[i].label)},
        };
        CK_OBJECT_HANDLE obj;
        CK_ULONG n = 0;
        assert_int_equal(f->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
        assert_int_equal(f->C_FindObjects(s, &obj, 1, &n), CKR_OK);
        assert_int_equal(f->C_FindObjectsFinal(s), CKR_OK);
        assert_int_equal(n, 1);
        CK_BBOOL decrypt = 2;
        CK_BBOOL sign = 2;
        CK_BBOOL derive = 2;
        CK_ATTRIBUTE a[] = {
            {CKA_DECRYPT, &decrypt, sizeof decrypt},
            {CKA_SIGN, &sign, sizeof sign},
            {CKA_DERIVE, &derive, sizeof derive},
        };
        assert_int_equal(f->C_GetAttributeValue(s, obj, a, 3), CKR_OK);
        assert_int_equal(decrypt, cases[i].decrypt);
        assert_int_equal(sign, cases[i].sign);
        assert_int_equal(derive, cases[i].derive);
        if (!cases[i].sign && i >= 2) {
            CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
            assert_int_equal(f->C_SignInit(s, &mech, obj), CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        if (!cases[i].decrypt && i < 2) {
            CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
            CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
            assert_int_equal(f->C_DecryptInit(s, &mech, obj), CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
    }
    assert_int_equal(f->C_CloseSession(s), CKR_OK);
    if (we_initialised) {
        f->C_Finalize(NULL);
    }
    dlclose(dl);
}

/* ECDH in the HSM (KEY_AGREEMENT keys) gives the secret OpenSSL derives from the other side;
 * a signing key, a point of the wrong size and another curve's point are refused. */
static void test_ecdh(void **state)
{
    fixture *fx = *state;
    static const struct {
        kms_hsm_key_type type;
        const char *group;
        size_t len;
    } cases[] = {
        {KMS_HSM_EC_P256_DERIVE, "P-256", 32},
        {KMS_HSM_EC_P384_DERIVE, "P-384", 48},
        {KMS_HSM_EC_P521_DERIVE, "P-521", 66},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char label[32];
        snprintf(label, sizeof label, "ecdh-%zu", i);
        uint8_t *spki = NULL, *secret = NULL;
        size_t spki_len = 0, secret_len = 0;
        gen(fx->hsm, cases[i].type, label, &spki, &spki_len);
        const unsigned char *p = spki;
        EVP_PKEY *hsm_pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
        assert_non_null(hsm_pub);
        EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", cases[i].group);
        assert_non_null(peer);
        uint8_t point[1 + 2 * 66];
        size_t point_len = 0;
        assert_int_equal(EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                         point, sizeof point, &point_len),
                         1);
        assert_int_equal(kms_hsm_ecdh_derive(fx->hsm, label, cases[i].type, point, point_len,
                                             &secret, &secret_len),
                         0);
        assert_int_equal(secret_len, cases[i].len);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(peer, NULL);
        uint8_t want[66];
        size_t want_len = sizeof want;
        assert_non_null(ctx);
        assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
        assert_int_equal(EVP_PKEY_derive_set_peer(ctx, hsm_pub), 1);
        assert_int_equal(EVP_PKEY_derive(ctx, want, &want_len), 1);
        assert_int_equal(want_len, secret_len);
        assert_memory_equal(secret, want, want_len);
        kms_secure_free(secret);
        /* a point one byte short, a compressed-looking prefix */
        assert_int_equal(kms_hsm_ecdh_derive(fx->hsm, label, cases[i].type, point, point_len - 1,
                                             &secret, &secret_len),
                         -1);
        assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
        point[0] = 0x02;
        assert_int_equal(kms_hsm_ecdh_derive(fx->hsm, label, cases[i].type, point, point_len,
                                             &secret, &secret_len),
                         -1);
        assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
        assert_null(secret);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(peer);
        EVP_PKEY_free(hsm_pub);
        free(spki);
    }
    /* a signing key type is no key agreement key; a signing key's label derives nothing */
    uint8_t *spki = NULL, *secret = NULL;
    size_t spki_len = 0, secret_len = 0;
    gen(fx->hsm, KMS_HSM_EC_P256, "ecdh-sign", &spki, &spki_len);
    uint8_t point[65];
    memset(point, 0x11, sizeof point);
    point[0] = 0x04;
    assert_int_equal(kms_hsm_ecdh_derive(fx->hsm, "ecdh-sign", KMS_HSM_EC_P256, point, sizeof point,
                                         &secret, &secret_len),
                     -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    const unsigned char *p = spki;
    EVP_PKEY *own = d2i_PUBKEY(NULL, &p, (long)spki_len);
    size_t n = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(own, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                                     sizeof point, &n),
                     1);
    assert_int_equal(kms_hsm_ecdh_derive(fx->hsm, "ecdh-sign", KMS_HSM_EC_P256_DERIVE, point, n,
                                         &secret, &secret_len),
                     -1);
    assert_null(secret);
    EVP_PKEY_free(own);
    free(spki);
}

static void test_hmac(void **state)
{
    fixture *fx = *state;
    static const struct {
        kms_hsm_key_type type;
        size_t len;
    } cases[] = {
        {KMS_HSM_HMAC_224, 28},
        {KMS_HSM_HMAC_256, 32},
        {KMS_HSM_HMAC_384, 48},
        {KMS_HSM_HMAC_512, 64},
    };
    static const uint8_t msg[] = "message to authenticate";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char la[32];
        char lb[32];
        snprintf(la, sizeof la, "hmac-a-%zu", i);
        snprintf(lb, sizeof lb, "hmac-b-%zu", i);
        gen(fx->hsm, cases[i].type, la, NULL, NULL);
        gen(fx->hsm, cases[i].type, lb, NULL, NULL);
        uint8_t m1[64];
        uint8_t m2[64];
        uint8_t m3[64];
        size_t n1 = 0;
        size_t n2 = 0;
        size_t n3 = 0;
        assert_int_equal(kms_hsm_hmac(fx->hsm, la, cases[i].type, msg, sizeof msg, m1, &n1), 0);
        assert_int_equal(kms_hsm_hmac(fx->hsm, la, cases[i].type, msg, sizeof msg, m2, &n2), 0);
        assert_int_equal(kms_hsm_hmac(fx->hsm, lb, cases[i].type, msg, sizeof msg, m3, &n3), 0);
        assert_int_equal(n1, cases[i].len);
        assert_int_equal(n2, cases[i].len);
        assert_int_equal(n3, cases[i].len);
        assert_memory_equal(m1, m2, n1);
        assert_memory_not_equal(m1, m3, n1);
        /* Another message, another MAC; the empty message works. */
        assert_int_equal(kms_hsm_hmac(fx->hsm, la, cases[i].type, msg, sizeof msg - 1, m2, &n2), 0);
        assert_memory_not_equal(m1, m2, n1);
        assert_int_equal(kms_hsm_hmac(fx->hsm, la, cases[i].type, NULL, 0, m2, &n2), 0);
    }
}

/* ---- Attributes and extraction ------------------------------------------------------------------
 */

static void test_key_attributes(void **state)
{
    fixture *fx = *state;
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    gen(fx->hsm, KMS_HSM_AES_256, "attr-aes", NULL, NULL);
    gen(fx->hsm, KMS_HSM_HMAC_384, "attr-hmac", NULL, NULL);
    gen(fx->hsm, KMS_HSM_RSA_2048, "attr-rsa", &spki, &spki_len);
    free(spki);
    gen(fx->hsm, KMS_HSM_EC_P384, "attr-ec", &spki, &spki_len);
    free(spki);
    static const char *labels[] = {"attr-aes", "attr-hmac", "attr-rsa", "attr-ec"};
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        kms_hsm_key_attrs a;
        memset(&a, 0xff, sizeof a);
        assert_int_equal(kms_hsm_key_attributes(fx->hsm, labels[i], &a), 0);
        assert_true(a.token);
        assert_true(a.sensitive);
        assert_false(a.extractable);
        assert_true(a.always_sensitive);
        assert_true(a.never_extractable);
    }
    kms_hsm_key_attrs a;
    assert_kms_error(kms_hsm_key_attributes(fx->hsm, "attr-none", &a), KMS_ERR_NOT_FOUND);
}

/* Asks the token itself, through our own PKCS#11 session, for the AES key's CKA_VALUE. */
/* A session of our own on the test token, through the module directly (not src/hsm): what the
 * token itself says, as evidence. The library instance is the one the fixture's kms_hsm already
 * initialised and logged in to (the login is the application's, so this session shares it). */
typedef struct raw_token {
    void *dl;
    CK_FUNCTION_LIST *f;
    bool we_initialised;
    CK_SESSION_HANDLE s;
} raw_token;

static void raw_open(raw_token *t)
{
    t->dl = dlopen(MODULE, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(t->dl);
    CK_C_GetFunctionList get_list = NULL;
    *(void **)&get_list = dlsym(t->dl, "C_GetFunctionList");
    assert_non_null(get_list);
    assert_int_equal(get_list(&t->f), CKR_OK);
    CK_RV rv = t->f->C_Initialize(NULL);
    assert_true(rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
    t->we_initialised = rv == CKR_OK;

    CK_SLOT_ID slots[16];
    CK_ULONG nslots = 16;
    assert_int_equal(t->f->C_GetSlotList(CK_TRUE, slots, &nslots), CKR_OK);
    CK_UTF8CHAR want[32];
    memset(want, ' ', sizeof want);
    memcpy(want, TOKEN, strlen(TOKEN));
    CK_SLOT_ID slot = (CK_SLOT_ID)-1;
    for (CK_ULONG i = 0; i < nslots; i++) {
        CK_TOKEN_INFO info;
        if (t->f->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
            memcmp(info.label, want, sizeof want) == 0) {
            slot = slots[i];
        }
    }
    assert_int_not_equal(slot, (CK_SLOT_ID)-1);
    assert_int_equal(t->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &t->s), CKR_OK);
    rv = t->f->C_Login(t->s, CKU_USER, (CK_UTF8CHAR_PTR)PIN, strlen(PIN));
    assert_true(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
}

/* Closing this session leaves the fixture's sessions (and login) alone. */
static void raw_close(raw_token *t)
{
    assert_int_equal(t->f->C_CloseSession(t->s), CKR_OK);
    if (t->we_initialised) {
        t->f->C_Finalize(NULL);
    }
    dlclose(t->dl);
}

/* The objects of class cls labelled label (up to max). */
static CK_ULONG raw_find(raw_token *t, CK_OBJECT_CLASS cls, const char *label,
                         CK_OBJECT_HANDLE *objs, CK_ULONG max)
{
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_ULONG n = 0;
    assert_int_equal(t->f->C_FindObjectsInit(t->s, tmpl, 2), CKR_OK);
    assert_int_equal(t->f->C_FindObjects(t->s, objs, max, &n), CKR_OK);
    assert_int_equal(t->f->C_FindObjectsFinal(t->s), CKR_OK);
    return n;
}

static void test_value_refused_by_token(void **state)
{
    fixture *fx = *state;
    gen(fx->hsm, KMS_HSM_AES_256, "extract-aes", NULL, NULL);
    raw_token t;
    raw_open(&t);
    CK_OBJECT_HANDLE obj;
    assert_int_equal(raw_find(&t, CKO_SECRET_KEY, "extract-aes", &obj, 1), 1);

    uint8_t value[64];
    memset(value, 0, sizeof value);
    CK_ATTRIBUTE a = {CKA_VALUE, value, sizeof value};
    CK_RV rv = t.f->C_GetAttributeValue(t.s, obj, &a, 1);
    assert_int_equal(rv, CKR_ATTRIBUTE_SENSITIVE);
    assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    /* Nor may it be made extractable afterwards. */
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE ext = {CKA_EXTRACTABLE, &yes, sizeof yes};
    assert_int_not_equal(t.f->C_SetAttributeValue(t.s, obj, &ext, 1), CKR_OK);

    raw_close(&t);
    uint8_t buf[8];
    assert_int_equal(kms_hsm_random(fx->hsm, buf, sizeof buf), 0);
}

/* ---- Data objects -----------------------------------------------------------------------------
 */

static void expect_data(kms_hsm *h, const char *label, const char *want)
{
    uint8_t *v = NULL;
    size_t n = 0;
    if (kms_hsm_data_get(h, label, &v, &n) != 0) {
        fail_msg("data_get %s: %s", label, kms_last_error_message());
    }
    assert_int_equal(n, strlen(want));
    assert_memory_equal(v, want, n);
    assert_int_equal(v[n], '\0');
    free(v);
}

static void data_set(kms_hsm *h, const char *label, const char *value)
{
    if (kms_hsm_data_set(h, label, (const uint8_t *)value, strlen(value)) != 0) {
        fail_msg("data_set %s: %s", label, kms_last_error_message());
    }
}

static void test_data_objects(void **state)
{
    fixture *fx = *state;
    const char *label = "kms-internal:test-anchor";
    const char *longer = "7 digests/00000000000000000007.json "
                         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    uint8_t sentinel = 0;
    uint8_t *v = &sentinel;
    size_t n = 99;
    assert_kms_error(kms_hsm_data_get(fx->hsm, label, &v, &n), KMS_ERR_NOT_FOUND);
    assert_null(v);
    assert_int_equal(n, 0);

    data_set(fx->hsm, label, "first value");
    expect_data(fx->hsm, label, "first value");
    data_set(fx->hsm, label, longer); /* longer */
    expect_data(fx->hsm, label, longer);
    data_set(fx->hsm, label, "short"); /* and shorter again */
    expect_data(fx->hsm, label, "short");

    /* Another handle (another process would be the same) sees the current value. */
    kms_hsm_config cfg = config(MODULE, TOKEN, PIN);
    cfg.pool_size = 1;
    kms_hsm *h2 = kms_hsm_open(&cfg);
    assert_non_null(h2);
    expect_data(h2, label, "short");
    data_set(h2, label, "from h2");
    expect_data(fx->hsm, label, "from h2");
    kms_hsm_close(h2);

    /* What the token holds: one data object with the attributes hsm.h promises. */
    raw_token t;
    raw_open(&t);
    CK_OBJECT_HANDLE objs[4];
    assert_int_equal(raw_find(&t, CKO_DATA, label, objs, 4), 1);
    CK_BBOOL token = CK_FALSE, priv = CK_FALSE, modifiable = CK_FALSE;
    char app[16] = "";
    CK_ATTRIBUTE a[] = {
        {CKA_TOKEN, &token, sizeof token},
        {CKA_PRIVATE, &priv, sizeof priv},
        {CKA_MODIFIABLE, &modifiable, sizeof modifiable},
        {CKA_APPLICATION, app, sizeof app - 1},
    };
    assert_int_equal(t.f->C_GetAttributeValue(t.s, objs[0], a, 4), CKR_OK);
    assert_true(token == CK_TRUE);
    assert_true(priv == CK_TRUE);
    assert_true(modifiable == CK_TRUE);
    assert_int_equal(a[3].ulValueLen, 3);
    assert_memory_equal(app, "kms", 3);
    raw_close(&t);

    /* Only data objects count: a key with a label, or a label nobody used, is not one. */
    gen(fx->hsm, KMS_HSM_AES_256, "data-key-label", NULL, NULL);
    assert_kms_error(kms_hsm_data_get(fx->hsm, "data-key-label", &v, &n), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_hsm_data_get(fx->hsm, "", &v, &n), KMS_ERR_VALIDATION);
    assert_kms_error(kms_hsm_data_set(fx->hsm, label, NULL, 3), KMS_ERR_VALIDATION);
    expect_data(fx->hsm, label, "from h2");
}

/* ---- Destroy ----------------------------------------------------------------------------------
 */

static void test_destroy_then_use(void **state)
{
    fixture *fx = *state;
    uint8_t iv[KMS_HSM_GCM_IV_LEN] = {0};
    uint8_t pt[16] = {0};
    uint8_t ct[16];
    uint8_t tag[KMS_HSM_GCM_TAG_LEN];
    uint8_t *spki = NULL;
    size_t spki_len = 0;

    gen(fx->hsm, KMS_HSM_AES_256, "destroy-aes", NULL, NULL);
    assert_int_equal(
        kms_hsm_aes_gcm_encrypt(fx->hsm, "destroy-aes", iv, NULL, 0, pt, sizeof pt, ct, tag),
        0); /* now cached */
    assert_int_equal(kms_hsm_destroy_key(fx->hsm, "destroy-aes"), 0);
    assert_kms_error(
        kms_hsm_aes_gcm_encrypt(fx->hsm, "destroy-aes", iv, NULL, 0, pt, sizeof pt, ct, tag),
        KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_hsm_destroy_key(fx->hsm, "destroy-aes"), KMS_ERR_NOT_FOUND);

    /* An EC pair: both objects go, so the label can be used again. */
    gen(fx->hsm, KMS_HSM_EC_P256, "destroy-ec", &spki, &spki_len);
    free(spki);
    assert_int_equal(kms_hsm_destroy_key(fx->hsm, "destroy-ec"), 0);
    uint8_t digest[32] = {0};
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    assert_kms_error(kms_hsm_sign_digest(fx->hsm, "destroy-ec", KMS_HSM_ECDSA_SHA256, digest,
                                         sizeof digest, &sig, &sig_len),
                     KMS_ERR_NOT_FOUND);
    gen(fx->hsm, KMS_HSM_EC_P256, "destroy-ec", &spki, &spki_len);
    free(spki);

    /* A second handle caches the handle; the first destroys and recreates the key: the second
     * notices the stale handle, finds the new key and uses it. */
    kms_hsm_config cfg = config(MODULE, TOKEN, PIN);
    cfg.pool_size = 2;
    kms_hsm *h2 = kms_hsm_open(&cfg);
    assert_non_null(h2);
    gen(fx->hsm, KMS_HSM_AES_256, "destroy-stale", NULL, NULL);
    assert_int_equal(
        kms_hsm_aes_gcm_encrypt(h2, "destroy-stale", iv, NULL, 0, pt, sizeof pt, ct, tag), 0);
    assert_int_equal(kms_hsm_destroy_key(fx->hsm, "destroy-stale"), 0);
    assert_kms_error(
        kms_hsm_aes_gcm_decrypt(h2, "destroy-stale", iv, NULL, 0, ct, sizeof ct, tag, pt),
        KMS_ERR_NOT_FOUND);
    assert_int_equal(
        kms_hsm_aes_gcm_encrypt(h2, "destroy-stale", iv, NULL, 0, pt, sizeof pt, ct, tag), -1);
    gen(fx->hsm, KMS_HSM_AES_256, "destroy-stale", NULL, NULL);
    assert_int_equal(
        kms_hsm_aes_gcm_encrypt(h2, "destroy-stale", iv, NULL, 0, pt, sizeof pt, ct, tag), 0);
    assert_int_equal(
        kms_hsm_aes_gcm_decrypt(fx->hsm, "destroy-stale", iv, NULL, 0, ct, sizeof ct, tag, pt), 0);
    kms_hsm_close(h2);
}

/* ---- Random ------------------------------------------------------------------------------------
 */

static void test_random(void **state)
{
    fixture *fx = *state;
    uint8_t a[32] = {0};
    uint8_t b[32] = {0};
    uint8_t zero[32] = {0};
    assert_int_equal(kms_hsm_random(fx->hsm, a, sizeof a), 0);
    assert_int_equal(kms_hsm_random(fx->hsm, b, sizeof b), 0);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_memory_not_equal(a, b, sizeof a);
    assert_int_equal(kms_hsm_random(fx->hsm, NULL, 0), 0);
}

/* ---- Threads ----------------------------------------------------------------------------------
 */

#define THREADS 4
#define ROUNDS 2000

typedef struct worker {
    kms_hsm *hsm;
    unsigned id;
    int failures;
    char first_error[256];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (unsigned i = 0; i < ROUNDS; i++) {
        uint8_t iv[KMS_HSM_GCM_IV_LEN] = {0};
        uint8_t pt[32];
        uint8_t ct[32];
        uint8_t back[32];
        uint8_t tag[KMS_HSM_GCM_TAG_LEN];
        uint8_t aad[8] = {(uint8_t)w->id};
        memcpy(iv, &i, sizeof i);
        iv[11] = (uint8_t)w->id;
        memset(pt, (int)(i + w->id), sizeof pt);
        int rc =
            kms_hsm_aes_gcm_encrypt(w->hsm, "threads", iv, aad, sizeof aad, pt, sizeof pt, ct, tag);
        if (rc == 0) {
            rc = kms_hsm_aes_gcm_decrypt(w->hsm, "threads", iv, aad, sizeof aad, ct, sizeof ct, tag,
                                         back);
        }
        if (rc != 0 || memcmp(pt, back, sizeof pt) != 0) {
            if (w->failures++ == 0) {
                snprintf(w->first_error, sizeof w->first_error, "%s",
                         rc != 0 ? kms_last_error_message() : "round trip mismatch");
            }
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    fixture *fx = *state;
    gen(fx->hsm, KMS_HSM_AES_256, "threads", NULL, NULL);
    pthread_t t[THREADS];
    worker w[THREADS];
    memset(w, 0, sizeof w);
    for (unsigned i = 0; i < THREADS; i++) {
        w[i].hsm = fx->hsm;
        w[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        if (w[i].failures != 0) {
            fail_msg("thread %u: %d failures, first: %s", i, w[i].failures, w[i].first_error);
        }
    }
}

/* ---- Session pool --------------------------------------------------------------------------- */

typedef struct borrower {
    kms_hsm *hsm;
    CK_SESSION_HANDLE s;
} borrower;

static void *borrow_one(void *arg)
{
    borrower *b = arg;
    b->s = kms_hsm_session_borrow(b->hsm);
    return NULL;
}

/* Sessions are opened as callers need them: one at open, one more per concurrent borrower up to
 * pool_size, then borrowers wait for one given back. */
static void test_pool_grows(void **state)
{
    (void)state;
    size_t open = 0, in_use = 0, max = 0;
    uint64_t wait_ns = 0;
    kms_hsm_config cfg = config(MODULE, TOKEN, PIN);
    kms_hsm *h = kms_hsm_open(&cfg);
    assert_non_null(h);
    kms_hsm_pool_stats(h, &open, &in_use, &max, &wait_ns);
    assert_int_equal(open, 1); /* a command-line process needs one */
    assert_int_equal(in_use, 0);
    assert_int_equal(max, 8); /* the default */
    kms_hsm_close(h);

    cfg.pool_size = 3;
    h = kms_hsm_open(&cfg);
    assert_non_null(h);
    CK_SESSION_HANDLE s[3];
    for (size_t i = 0; i < 3; i++) {
        s[i] = kms_hsm_session_borrow(h);
        assert_int_not_equal(s[i], CK_INVALID_HANDLE);
        kms_hsm_pool_stats(h, &open, &in_use, &max, &wait_ns);
        assert_int_equal(open, i + 1);
        assert_int_equal(in_use, i + 1);
    }
    assert_int_not_equal(s[0], s[1]);
    assert_int_not_equal(s[1], s[2]);
    /* Every new session shares the login: it reaches private objects. */
    uint8_t buf[16];
    CK_SESSION_INFO info;
    assert_int_equal(h->f->C_GetSessionInfo(s[2], &info), CKR_OK);
    assert_int_equal(info.state, CKS_RW_USER_FUNCTIONS);
    /* A fourth borrower waits for a session given back; no fourth is opened. */
    borrower b = {.hsm = h, .s = CK_INVALID_HANDLE};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, borrow_one, &b), 0);
    struct timespec pause = {0, 50000000L};
    nanosleep(&pause, NULL);
    kms_hsm_session_return(h, s[1], CKR_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(b.s, s[1]);
    kms_hsm_pool_stats(h, &open, &in_use, &max, &wait_ns);
    assert_int_equal(open, 3);
    assert_int_equal(in_use, 3);
    assert_int_equal(max, 3);
    assert_true(wait_ns > 0);
    kms_hsm_session_return(h, s[0], CKR_OK);
    kms_hsm_session_return(h, b.s, CKR_OK);
    kms_hsm_session_return(h, s[2], CKR_OK);
    kms_hsm_pool_stats(h, &open, &in_use, &max, &wait_ns);
    assert_int_equal(open, 3);
    assert_int_equal(in_use, 0);
    assert_int_equal(kms_hsm_random(h, buf, sizeof buf), 0);
    kms_hsm_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_wrong_pin),
        cmocka_unit_test(test_open_second_handle),
        cmocka_unit_test(test_open_unknown_token),
        cmocka_unit_test(test_open_bad_module),
        cmocka_unit_test(test_init_token_exists),
        cmocka_unit_test(test_generate_all_types),
        cmocka_unit_test(test_duplicate_label),
        cmocka_unit_test(test_aes_gcm_round_trip),
        cmocka_unit_test(test_aes_gcm_tampered),
        cmocka_unit_test(test_wrong_key_usage),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_rsa_oaep_decrypt),
        cmocka_unit_test(test_rsa_usage_attributes),
        cmocka_unit_test(test_ecdh),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_key_attributes),
        cmocka_unit_test(test_value_refused_by_token),
        cmocka_unit_test(test_data_objects),
        cmocka_unit_test(test_destroy_then_use),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_pool_grows),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
