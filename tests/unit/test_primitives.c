/* Unit tests of src/envelope/crypto.c: the primitives under the ESDK message engine, called
 * exactly through their wrappers. Known answers come from Project Wycheproof (read at run time
 * from the shared vectors directory, see vectors.h); round trips cover what Wycheproof does not
 * (key generation, compressed points, every RSA padding of the raw RSA keyring). */
#include "testutil.h"
#include "vectors.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "envelope/crypto.h"
#include "kms/kms.h"
#include "util/buf.h"
#include "util/secmem.h"
#include "util/util.h"

/* Lower bounds on the cases each file must yield, well under what the files hold today (197,
 * 83, 504, 29, 29), so that a parsing or filtering mistake cannot pass by running nothing. */
#define MIN_GCM_CASES 150
#define MIN_HKDF_CASES 75
#define MIN_ECDSA_CASES 450
#define MIN_OAEP_CASES 25

static int group_setup(void **state)
{
    return kms_util_init();
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* A decoded hex field of a test case (malloc'd). */
static uint8_t *hex_field(const json_t *tc, const char *name, size_t *len)
{
    return kms_test_hex(kms_test_json_str(tc, name), len);
}

static const json_t *groups_of(const json_t *root)
{
    const json_t *groups = json_object_get(root, "testGroups");
    assert_true(json_is_array(groups));
    return groups;
}

static const json_t *tests_of(const json_t *group)
{
    const json_t *tests = json_object_get(group, "tests");
    assert_true(json_is_array(tests));
    return tests;
}

static long tc_id(const json_t *tc)
{
    return (long)json_integer_value(json_object_get(tc, "tcId"));
}

static int group_int(const json_t *group, const char *name)
{
    json_t *v = json_object_get(group, name);
    assert_true(json_is_integer(v));
    return (int)json_integer_value(v);
}

/* ---- AES-GCM (wycheproof/aes_gcm_test.json) ---------------------------------------------- */

/* One case: valid ones must seal to exactly ct || tag and open back to msg; invalid ones (all
 * modified tags, for 96-bit IVs) must be refused by open with InvalidCiphertextException. */
static void gcm_case(const json_t *tc)
{
    size_t key_len = 0, iv_len = 0, aad_len = 0, msg_len = 0, ct_len = 0, tag_len = 0;
    uint8_t *key = hex_field(tc, "key", &key_len);
    uint8_t *iv = hex_field(tc, "iv", &iv_len);
    uint8_t *aad = hex_field(tc, "aad", &aad_len);
    uint8_t *msg = hex_field(tc, "msg", &msg_len);
    uint8_t *ct = hex_field(tc, "ct", &ct_len);
    uint8_t *tag = hex_field(tc, "tag", &tag_len);
    const char *result = kms_test_json_str(tc, "result");
    assert_int_equal(iv_len, 12);
    assert_int_equal(tag_len, 16);
    assert_int_equal(ct_len, msg_len);
    uint8_t *out = malloc(msg_len + 1);
    assert_non_null(out);
    uint8_t out_tag[16];
    kms_gcm g;

    if (strcmp(result, "valid") == 0) {
        assert_int_equal(kms_gcm_init(&g, key, key_len, true), 0);
        assert_int_equal(kms_gcm_seal(&g, iv, aad, aad_len, msg, msg_len, out, out_tag), 0);
        kms_gcm_clean_up(&g);
        if (memcmp(out, ct, ct_len) != 0 || memcmp(out_tag, tag, 16) != 0) {
            fail_msg("AES-GCM tcId %ld: seal does not give the expected ct and tag", tc_id(tc));
        }
        assert_int_equal(kms_gcm_init(&g, key, key_len, false), 0);
        if (kms_gcm_open(&g, iv, aad, aad_len, ct, ct_len, out, tag) != 0) {
            fail_msg("AES-GCM tcId %ld: open refused a valid case: %s", tc_id(tc),
                     kms_last_error_message());
        }
        kms_gcm_clean_up(&g);
        assert_memory_equal(out, msg, msg_len);
    } else {
        assert_string_equal(result, "invalid");
        assert_int_equal(kms_gcm_init(&g, key, key_len, false), 0);
        int rc = kms_gcm_open(&g, iv, aad, aad_len, ct, ct_len, out, tag);
        kms_gcm_clean_up(&g);
        if (rc == 0) {
            fail_msg("AES-GCM tcId %ld: open accepted an invalid case", tc_id(tc));
        }
        assert_kms_error(rc, KMS_ERR_INVALID_CIPHERTEXT);
    }
    free(out);
    free(key);
    free(iv);
    free(aad);
    free(msg);
    free(ct);
    free(tag);
}

static void test_gcm_wycheproof(void **state)
{
    json_t *root = kms_test_vectors_json("wycheproof/aes_gcm_test.json");
    const json_t *groups = groups_of(root);
    size_t run = 0;
    for (size_t gi = 0; gi < json_array_size(groups); gi++) {
        const json_t *group = json_array_get(groups, gi);
        int key_size = group_int(group, "keySize");
        /* The ESDK suites: 12-byte IV, 16-byte tag, AES-128/192/256. */
        if (group_int(group, "ivSize") != 96 || group_int(group, "tagSize") != 128 ||
            (key_size != 128 && key_size != 192 && key_size != 256)) {
            continue;
        }
        const json_t *tests = tests_of(group);
        for (size_t ti = 0; ti < json_array_size(tests); ti++) {
            const json_t *tc = json_array_get(tests, ti);
            gcm_case(tc);
            run++;
        }
    }
    print_message("AES-GCM: %zu Wycheproof cases\n", run);
    assert_true(run >= MIN_GCM_CASES);
    json_decref(root);
}

/* One context serves many messages: the key schedule is set once, each seal/open only sets the
 * IV (crypto.h). A failed open must not poison the context for the next message. */
static void test_gcm_context_reuse(void **state)
{
    uint8_t key[32], iv[12] = {0}, msg[100], ct[100], out[100], tag[16], bad_tag[16];
    for (size_t i = 0; i < sizeof key; i++) {
        key[i] = (uint8_t)i;
    }
    memset(msg, 0x5a, sizeof msg);
    kms_gcm enc, dec;
    assert_int_equal(kms_gcm_init(&enc, key, sizeof key, true), 0);
    assert_int_equal(kms_gcm_init(&dec, key, sizeof key, false), 0);
    for (uint8_t seq = 1; seq <= 4; seq++) {
        iv[11] = seq;
        assert_int_equal(kms_gcm_seal(&enc, iv, &seq, 1, msg, sizeof msg, ct, tag), 0);
        memcpy(bad_tag, tag, sizeof tag);
        bad_tag[seq] ^= 0x01;
        assert_kms_error(kms_gcm_open(&dec, iv, &seq, 1, ct, sizeof ct, out, bad_tag),
                         KMS_ERR_INVALID_CIPHERTEXT);
        assert_int_equal(kms_gcm_open(&dec, iv, &seq, 1, ct, sizeof ct, out, tag), 0);
        assert_memory_equal(out, msg, sizeof msg);
        /* in place (out == in), as crypto.h allows */
        assert_int_equal(kms_gcm_open(&dec, iv, &seq, 1, ct, sizeof ct, ct, tag), 0);
        assert_memory_equal(ct, msg, sizeof msg);
    }
    kms_gcm_clean_up(&enc);
    kms_gcm_clean_up(&dec);
    assert_kms_error(kms_gcm_init(&enc, key, 20, true), KMS_ERR_VALIDATION);
}

/* ---- HKDF-SHA512 (wycheproof/hkdf_sha512_test.json) -------------------------------------- */

static void hkdf_case(const json_t *tc)
{
    size_t ikm_len = 0, salt_len = 0, info_len = 0, okm_len = 0;
    uint8_t *ikm = hex_field(tc, "ikm", &ikm_len);
    uint8_t *salt = hex_field(tc, "salt", &salt_len);
    uint8_t *info = hex_field(tc, "info", &info_len);
    uint8_t *okm = hex_field(tc, "okm", &okm_len);
    const char *result = kms_test_json_str(tc, "result");
    json_t *size_v = json_object_get(tc, "size");
    assert_true(json_is_integer(size_v));
    size_t size = (size_t)json_integer_value(size_v);
    uint8_t *out = malloc(size + 1);
    assert_non_null(out);

    int rc = kms_hkdf("SHA512", salt, salt_len, ikm, ikm_len, info, info_len, out, size);
    if (strcmp(result, "valid") == 0) {
        if (rc != 0) {
            fail_msg("HKDF tcId %ld: refused a valid case: %s", tc_id(tc),
                     kms_last_error_message());
        }
        assert_int_equal(okm_len, size);
        assert_memory_equal(out, okm, size);
        if (salt_len == 0) {
            /* RFC 5869 2.2: no salt is HashLen zeros, which HMAC pads an empty key to. */
            memset(out, 0, size);
            assert_int_equal(kms_hkdf("SHA512", NULL, 0, ikm, ikm_len, info, info_len, out, size),
                             0);
            assert_memory_equal(out, okm, size);
        }
    } else {
        /* Wycheproof's invalid HKDF cases ask for more than 255 * HashLen bytes. */
        assert_string_equal(result, "invalid");
        if (rc == 0) {
            fail_msg("HKDF tcId %ld: accepted an invalid case (size %zu)", tc_id(tc), size);
        }
        assert_int_equal(rc, -1);
    }
    free(out);
    free(ikm);
    free(salt);
    free(info);
    free(okm);
}

static void test_hkdf_wycheproof(void **state)
{
    json_t *root = kms_test_vectors_json("wycheproof/hkdf_sha512_test.json");
    const json_t *groups = groups_of(root);
    size_t run = 0;
    for (size_t gi = 0; gi < json_array_size(groups); gi++) {
        const json_t *group = json_array_get(groups, gi);
        const json_t *tests = tests_of(group);
        for (size_t ti = 0; ti < json_array_size(tests); ti++) {
            const json_t *tc = json_array_get(tests, ti);
            hkdf_case(tc);
            run++;
        }
    }
    print_message("HKDF-SHA512: %zu Wycheproof cases\n", run);
    assert_true(run >= MIN_HKDF_CASES);
    json_decref(root);
}

/* ---- ECDSA P-384 / SHA-384 (wycheproof/ecdsa_secp384r1_sha384_test.json) ----------------- */

static void sha(const char *md, const uint8_t *p, size_t n, uint8_t *digest, unsigned *len)
{
    assert_int_equal(EVP_Digest(p, n, digest, len, EVP_get_digestbyname(md), NULL), 1);
}

/* valid must verify, invalid must be refused with InvalidCiphertextException; acceptable (none in
 * the current file) may go either way, but a refusal still has to be that error. */
static void ecdsa_case(EVP_PKEY *key, const json_t *tc)
{
    size_t msg_len = 0, sig_len = 0;
    uint8_t *msg = hex_field(tc, "msg", &msg_len);
    uint8_t *sig = hex_field(tc, "sig", &sig_len);
    const char *result = kms_test_json_str(tc, "result");
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    sha("SHA384", msg, msg_len, digest, &digest_len);
    assert_int_equal(digest_len, 48);

    int rc = kms_ecdsa_verify_digest(key, "SHA384", digest, digest_len, sig, sig_len);
    if (strcmp(result, "valid") == 0) {
        if (rc != 0) {
            fail_msg("ECDSA tcId %ld: a valid signature was refused: %s", tc_id(tc),
                     kms_last_error_message());
        }
    } else if (strcmp(result, "invalid") == 0) {
        if (rc == 0) {
            fail_msg("ECDSA tcId %ld: an invalid signature verified (%s)", tc_id(tc),
                     json_string_value(json_object_get(tc, "comment")));
        }
        assert_kms_error(rc, KMS_ERR_INVALID_CIPHERTEXT);
    } else {
        assert_string_equal(result, "acceptable");
        if (rc != 0) {
            assert_kms_error(rc, KMS_ERR_INVALID_CIPHERTEXT);
        }
    }
    free(msg);
    free(sig);
}

static void test_ecdsa_p384_wycheproof(void **state)
{
    json_t *root = kms_test_vectors_json("wycheproof/ecdsa_secp384r1_sha384_test.json");
    const json_t *groups = groups_of(root);
    size_t run = 0;
    for (size_t gi = 0; gi < json_array_size(groups); gi++) {
        const json_t *group = json_array_get(groups, gi);
        const json_t *pub = json_object_get(group, "publicKey");
        assert_string_equal(kms_test_json_str(pub, "curve"), "secp384r1");
        assert_string_equal(kms_test_json_str(group, "sha"), "SHA-384");
        size_t point_len = 0;
        uint8_t *point = hex_field(pub, "uncompressed", &point_len);
        assert_int_equal(point_len, 97);
        EVP_PKEY *key = kms_ecdsa_public_from_point("P-384", point, point_len);
        if (key == NULL) {
            fail_msg("ECDSA group %zu: public key refused: %s", gi, kms_last_error_message());
        }
        const json_t *tests = tests_of(group);
        for (size_t ti = 0; ti < json_array_size(tests); ti++) {
            const json_t *tc = json_array_get(tests, ti);
            ecdsa_case(key, tc);
            run++;
        }
        EVP_PKEY_free(key);
        free(point);
    }
    print_message("ECDSA P-384: %zu Wycheproof cases\n", run);
    assert_true(run >= MIN_ECDSA_CASES);
    json_decref(root);
}

/* ---- ECDSA round trips through the compressed public key the ESDK stores ------------------ */

static void ecdsa_round_trip(const char *curve, const char *md, size_t point_len)
{
    EVP_PKEY *priv = NULL;
    assert_int_equal(kms_ecdsa_keygen(curve, &priv), 0);
    kms_buf point;
    kms_buf_init(&point, false);
    assert_int_equal(kms_ecdsa_public_compressed(priv, &point), 0);
    /* SEC 1 2.3.3 compressed: 0x02 or 0x03 (parity of y), then x. */
    if (point.len != point_len || (point.data[0] != 0x02 && point.data[0] != 0x03)) {
        fail_msg("%s public key: %zu bytes starting 0x%02x, not the %zu-byte compressed point",
                 curve, point.len, point.len > 0 ? point.data[0] : 0, point_len);
    }
    EVP_PKEY *pub = kms_ecdsa_public_from_point(curve, point.data, point.len);
    assert_non_null(pub);

    uint8_t msg[] = "message body of a signed suite";
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    sha(md, msg, sizeof msg, digest, &digest_len);
    kms_buf sig;
    kms_buf_init(&sig, false);
    assert_int_equal(kms_ecdsa_sign_digest(priv, md, digest, digest_len, &sig), 0);
    assert_int_equal(kms_ecdsa_verify_digest(pub, md, digest, digest_len, sig.data, sig.len), 0);

    /* A flipped bit in s (the last byte of the DER signature) or in the digest. */
    sig.data[sig.len - 1] ^= 0x01;
    assert_kms_error(kms_ecdsa_verify_digest(pub, md, digest, digest_len, sig.data, sig.len),
                     KMS_ERR_INVALID_CIPHERTEXT);
    sig.data[sig.len - 1] ^= 0x01;
    digest[0] ^= 0x80;
    assert_kms_error(kms_ecdsa_verify_digest(pub, md, digest, digest_len, sig.data, sig.len),
                     KMS_ERR_INVALID_CIPHERTEXT);
    digest[0] ^= 0x80;
    /* A truncated signature. */
    assert_kms_error(kms_ecdsa_verify_digest(pub, md, digest, digest_len, sig.data, sig.len - 1),
                     KMS_ERR_INVALID_CIPHERTEXT);

    /* A malformed point: prefix 0x04 announces x || y but only x follows. */
    point.data[0] = 0x04;
    assert_null(kms_ecdsa_public_from_point(curve, point.data, point.len));
    assert_string_equal(kms_error_name(kms_last_error()),
                        kms_error_name(KMS_ERR_INVALID_CIPHERTEXT));

    kms_buf_clean_up(&sig);
    kms_buf_clean_up(&point);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);
}

static void test_ecdsa_p256_round_trip(void **state)
{
    ecdsa_round_trip("P-256", "SHA256", 33);
}

static void test_ecdsa_p384_round_trip(void **state)
{
    ecdsa_round_trip("P-384", "SHA384", 49);
}

/* ---- RSA-OAEP (wycheproof/rsa_oaep_2048_*_test.json) ------------------------------------- */

/* The group's private key, from its PKCS#8 DER. */
static EVP_PKEY *oaep_group_key(const json_t *group)
{
    size_t der_len = 0;
    uint8_t *der = hex_field(group, "privateKeyPkcs8", &der_len);
    const unsigned char *p = der;
    EVP_PKEY *key = d2i_AutoPrivateKey(NULL, &p, (long)der_len);
    assert_non_null(key);
    assert_int_equal(EVP_PKEY_get_bits(key), 2048);
    free(der);
    return key;
}

/* Returns whether the case ran: the ESDK never sets an OAEP label, so labelled cases are not
 * ours to check. */
static bool oaep_case(EVP_PKEY *key, kms_rsa_padding padding, const json_t *tc)
{
    if (kms_test_json_str(tc, "label")[0] != '\0') {
        return false;
    }
    size_t msg_len = 0, ct_len = 0;
    uint8_t *msg = hex_field(tc, "msg", &msg_len);
    uint8_t *ct = hex_field(tc, "ct", &ct_len);
    const char *result = kms_test_json_str(tc, "result");
    uint8_t *out = NULL;
    size_t out_len = 0;

    int rc = kms_rsa_unwrap(key, padding, ct, ct_len, &out, &out_len);
    if (strcmp(result, "valid") == 0) {
        if (rc != 0) {
            fail_msg("RSA-OAEP tcId %ld: a valid case did not unwrap: %s", tc_id(tc),
                     kms_last_error_message());
        }
        assert_int_equal(out_len, msg_len);
        assert_memory_equal(out, msg, msg_len);
    } else {
        assert_string_equal(result, "invalid");
        if (rc == 0) {
            fail_msg("RSA-OAEP tcId %ld: an invalid case unwrapped (%s)", tc_id(tc),
                     json_string_value(json_object_get(tc, "comment")));
        }
        assert_kms_error(rc, KMS_ERR_INVALID_CIPHERTEXT);
        assert_null(out);
        assert_int_equal(out_len, 0);
    }
    kms_secure_free(out);
    free(msg);
    free(ct);
    return true;
}

static void oaep_file(const char *rel, kms_rsa_padding padding, const char *sha_name)
{
    json_t *root = kms_test_vectors_json(rel);
    const json_t *groups = groups_of(root);
    size_t run = 0;
    for (size_t gi = 0; gi < json_array_size(groups); gi++) {
        const json_t *group = json_array_get(groups, gi);
        assert_string_equal(kms_test_json_str(group, "sha"), sha_name);
        assert_string_equal(kms_test_json_str(group, "mgfSha"), sha_name);
        EVP_PKEY *key = oaep_group_key(group);
        const json_t *tests = tests_of(group);
        for (size_t ti = 0; ti < json_array_size(tests); ti++) {
            const json_t *tc = json_array_get(tests, ti);
            if (oaep_case(key, padding, tc)) {
                run++;
            }
        }
        EVP_PKEY_free(key);
    }
    print_message("%s: %zu Wycheproof cases (unlabelled)\n", rel, run);
    assert_true(run >= MIN_OAEP_CASES);
    json_decref(root);
}

static void test_rsa_oaep_sha1_wycheproof(void **state)
{
    oaep_file("wycheproof/rsa_oaep_2048_sha1_mgf1sha1_test.json", KMS_RSA_OAEP_SHA1, "SHA-1");
}

static void test_rsa_oaep_sha256_wycheproof(void **state)
{
    oaep_file("wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json", KMS_RSA_OAEP_SHA256,
              "SHA-256");
}

/* ---- RSA round trips: every padding of framework/raw-rsa-keyring.md ----------------------- */

static void test_rsa_round_trip(void **state)
{
    static const kms_rsa_padding paddings[] = {KMS_RSA_PKCS1, KMS_RSA_OAEP_SHA1,
                                               KMS_RSA_OAEP_SHA256, KMS_RSA_OAEP_SHA384,
                                               KMS_RSA_OAEP_SHA512};
    const size_t count = sizeof paddings / sizeof paddings[0];
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(key);
    uint8_t data_key[32];
    for (size_t i = 0; i < sizeof data_key; i++) {
        data_key[i] = (uint8_t)(0xa0 + i);
    }
    kms_buf wrapped[5];
    for (size_t i = 0; i < count; i++) {
        kms_buf_init(&wrapped[i], false);
        assert_int_equal(kms_rsa_wrap(key, paddings[i], data_key, sizeof data_key, &wrapped[i]), 0);
        assert_int_equal(wrapped[i].len, 256);
        uint8_t *out = NULL;
        size_t out_len = 0;
        assert_int_equal(
            kms_rsa_unwrap(key, paddings[i], wrapped[i].data, wrapped[i].len, &out, &out_len), 0);
        assert_int_equal(out_len, sizeof data_key);
        assert_memory_equal(out, data_key, sizeof data_key);
        kms_secure_free(out);
    }
    /* An OAEP ciphertext does not unwrap under another padding, nor once tampered with. (PKCS#1
     * v1.5 as the unwrapping side is left out: OpenSSL's implicit rejection may "succeed" there
     * with random bytes.) */
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 1; j < count; j++) {
            if (i == j) {
                continue;
            }
            uint8_t *out = NULL;
            size_t out_len = 0;
            assert_kms_error(
                kms_rsa_unwrap(key, paddings[j], wrapped[i].data, wrapped[i].len, &out, &out_len),
                KMS_ERR_INVALID_CIPHERTEXT);
            assert_null(out);
        }
        if (i > 0) {
            uint8_t *out = NULL;
            size_t out_len = 0;
            wrapped[i].data[100] ^= 0x04;
            assert_kms_error(
                kms_rsa_unwrap(key, paddings[i], wrapped[i].data, wrapped[i].len, &out, &out_len),
                KMS_ERR_INVALID_CIPHERTEXT);
            assert_null(out);
        }
        kms_buf_clean_up(&wrapped[i]);
    }
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcm_wycheproof),
        cmocka_unit_test(test_gcm_context_reuse),
        cmocka_unit_test(test_hkdf_wycheproof),
        cmocka_unit_test(test_ecdsa_p384_wycheproof),
        cmocka_unit_test(test_ecdsa_p256_round_trip),
        cmocka_unit_test(test_ecdsa_p384_round_trip),
        cmocka_unit_test(test_rsa_oaep_sha1_wycheproof),
        cmocka_unit_test(test_rsa_oaep_sha256_wycheproof),
        cmocka_unit_test(test_rsa_round_trip),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
