/* Unit tests of src/keystore against a fresh SoftHSM2 token and metadata database: every verb
 * of the key store, with the exact error of each refusal. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "keystore/keystore.h"
#include "kms/kms.h"
#include "util/util.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "kms-keystore-test"
#define PIN "1234-user-pin"
#define REGION "eu-west-3"
#define ACCOUNT "111122223333"
#define UNKNOWN_ID "00000000-0000-4000-8000-000000000000"

typedef struct fixture {
    char *dir;
    kms_keystore ks;
    kms_key_record aes;  /* SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT */
    kms_key_record ecc;  /* ECC_NIST_P256, SIGN_VERIFY */
    kms_key_record rsa;  /* RSA_2048, ENCRYPT_DECRYPT */
    kms_key_record hmac; /* HMAC_256, GENERATE_VERIFY_MAC */
} fixture;

static void create(fixture *fx, const char *spec, const char *usage, kms_key_record *out)
{
    const kms_key_spec_info *info = kms_key_spec_find(spec);
    assert_non_null(info);
    if (kms_keystore_create(&fx->ks, info, usage, "test key", "{}", out) != 0) {
        fail_msg("create %s: %s", spec, kms_last_error_message());
    }
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
    fx->ks.usage = kms_keystore_usage_new();
    assert_non_null(fx->ks.usage);
    create(fx, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", &fx->aes);
    create(fx, "ECC_NIST_P256", "SIGN_VERIFY", &fx->ecc);
    create(fx, "RSA_2048", "ENCRYPT_DECRYPT", &fx->rsa);
    create(fx, "HMAC_256", "GENERATE_VERIFY_MAC", &fx->hmac);
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    if (fx == NULL) {
        return 0; /* the setup failed */
    }
    kms_key_record_clean_up(&fx->aes);
    kms_key_record_clean_up(&fx->ecc);
    kms_key_record_clean_up(&fx->rsa);
    kms_key_record_clean_up(&fx->hmac);
    kms_keystore_usage_free(fx->ks.usage, fx->ks.store);
    kms_store_close(fx->ks.store);
    kms_hsm_close(fx->ks.hsm);
    kms_test_rmrf(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* A key of its own, in state `state` (the shared keys stay Enabled). */
static void key_in_state(fixture *fx, const char *spec, const char *usage, const char *state,
                         kms_key_record *out)
{
    kms_key_record rec;
    create(fx, spec, usage, &rec);
    int64_t when = strcmp(state, "PendingDeletion") == 0 ? kms_now() + 7 * 86400 : 0;
    assert_int_equal(kms_keystore_set_state(&fx->ks, rec.key_id, state, when, when ? 7 : 0), 0);
    assert_int_equal(kms_keystore_key_get(&fx->ks, rec.key_id, out), 0);
    assert_string_equal(out->key_state, state);
    kms_key_record_clean_up(&rec);
}

/* ---- Resolving keys ------------------------------------------------------------------------- */

static void test_resolve(void **state)
{
    fixture *fx = *state;
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    kms_keystore_key_arn(&fx->ks, fx->aes.key_id, arn);
    assert_int_equal(kms_keystore_resolve(&fx->ks, fx->aes.key_id, false, &rec), 0);
    assert_string_equal(rec.key_id, fx->aes.key_id);
    assert_string_equal(rec.key_state, "Enabled");
    kms_key_record_clean_up(&rec);
    assert_int_equal(kms_keystore_resolve(&fx->ks, arn, false, &rec), 0);
    assert_string_equal(rec.key_id, fx->aes.key_id);
    kms_key_record_clean_up(&rec);

    assert_kms_error(kms_keystore_resolve(&fx->ks, UNKNOWN_ID, true, &rec), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_keystore_resolve(&fx->ks, "not-a-key", true, &rec), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_keystore_resolve(&fx->ks, "", true, &rec), KMS_ERR_VALIDATION);
    /* Another region's key does not exist here; another account's: no key policy of it allows
     * the caller here (as AWS answers). */
    assert_kms_error(kms_keystore_resolve(
                         &fx->ks, "arn:aws:kms:us-east-1:111122223333:key/" UNKNOWN_ID, true, &rec),
                     KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_keystore_resolve(
                         &fx->ks, "arn:aws:kms:eu-west-3:444455556666:key/" UNKNOWN_ID, true, &rec),
                     KMS_ERR_ACCESS_DENIED);
    assert_kms_error(kms_keystore_resolve(&fx->ks, "alias/none", true, &rec), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_keystore_resolve(&fx->ks, "alias/none", false, &rec), KMS_ERR_VALIDATION);
    assert_kms_error(kms_keystore_key_get(&fx->ks, UNKNOWN_ID, &rec), KMS_ERR_NOT_FOUND);
}

static void test_check_usable(void **state)
{
    fixture *fx = *state;
    kms_key_record rec;
    assert_int_equal(kms_keystore_check_usable(&fx->ks, &fx->aes, "ENCRYPT_DECRYPT"), 0);
    assert_kms_error(kms_keystore_check_usable(&fx->ks, &fx->aes, "SIGN_VERIFY"),
                     KMS_ERR_INVALID_KEY_USAGE);
    key_in_state(fx, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "Disabled", &rec);
    assert_kms_error(kms_keystore_check_usable(&fx->ks, &rec, "ENCRYPT_DECRYPT"), KMS_ERR_DISABLED);
    kms_key_record_clean_up(&rec);
    key_in_state(fx, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "PendingDeletion", &rec);
    assert_kms_error(kms_keystore_check_usable(&fx->ks, &rec, "ENCRYPT_DECRYPT"),
                     KMS_ERR_INVALID_STATE);
    kms_key_record_clean_up(&rec);
}

/* ---- Symmetric encryption ------------------------------------------------------------------- */

static void test_seal_open(void **state)
{
    fixture *fx = *state;
    const uint8_t msg[] = "attack at dawn";
    kms_context_entry e[] = {{"purpose", "test"}};
    kms_encryption_context ctx = {e, 1};
    kms_context_entry e2[] = {{"purpose", "other"}};
    kms_encryption_context other = {e2, 1};
    kms_buf blob, pt;
    kms_blob b;
    kms_buf_init(&blob, false);
    kms_buf_init(&pt, true);
    assert_int_equal(kms_keystore_seal(&fx->ks, &fx->aes, msg, sizeof msg, &ctx, &blob), 0);
    assert_int_equal(kms_blob_parse(blob.data, blob.len, &b), 0);
    assert_int_equal(kms_keystore_open(&fx->ks, &fx->aes, &b, &ctx, &pt), 0);
    assert_int_equal(pt.len, sizeof msg);
    assert_memory_equal(pt.data, msg, sizeof msg);
    pt.len = 0;
    assert_kms_error(kms_keystore_open(&fx->ks, &fx->aes, &b, &other, &pt),
                     KMS_ERR_INVALID_CIPHERTEXT);
    assert_int_equal(pt.len, 0);
    kms_buf_clean_up(&blob);
    kms_buf_clean_up(&pt);
}

/* ---- Signatures ----------------------------------------------------------------------------- */

static void test_sign_verify(void **state)
{
    fixture *fx = *state;
    const uint8_t msg[] = "a message to sign";
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    assert_int_equal(kms_keystore_sign(&fx->ks, &fx->ecc, msg, sizeof msg, NULL, "ECDSA_SHA_256",
                                       &sig, &sig_len),
                     0);
    assert_non_null(sig);
    assert_int_equal(kms_keystore_verify(&fx->ks, &fx->ecc, msg, sizeof msg, "RAW", "ECDSA_SHA_256",
                                         sig, sig_len),
                     0);
    /* Another message, or an altered signature: KMSInvalidSignatureException. */
    assert_kms_error(kms_keystore_verify(&fx->ks, &fx->ecc, msg, sizeof msg - 1, "RAW",
                                         "ECDSA_SHA_256", sig, sig_len),
                     KMS_ERR_INVALID_SIGNATURE);
    sig[sig_len - 1] ^= 1;
    assert_kms_error(kms_keystore_verify(&fx->ks, &fx->ecc, msg, sizeof msg, "RAW", "ECDSA_SHA_256",
                                         sig, sig_len),
                     KMS_ERR_INVALID_SIGNATURE);
    free(sig);
}

static void test_sign_digest(void **state)
{
    fixture *fx = *state;
    uint8_t digest[32] = {1, 2, 3};
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    assert_int_equal(kms_keystore_sign(&fx->ks, &fx->ecc, digest, sizeof digest, "DIGEST",
                                       "ECDSA_SHA_256", &sig, &sig_len),
                     0);
    assert_int_equal(kms_keystore_verify(&fx->ks, &fx->ecc, digest, sizeof digest, "DIGEST",
                                         "ECDSA_SHA_256", sig, sig_len),
                     0);
    free(sig);
    sig = NULL;
    assert_kms_error(
        kms_keystore_sign(&fx->ks, &fx->ecc, digest, 31, "DIGEST", "ECDSA_SHA_256", &sig, &sig_len),
        KMS_ERR_VALIDATION);
    assert_kms_error(
        kms_keystore_sign(&fx->ks, &fx->ecc, digest, 32, "HASHED", "ECDSA_SHA_256", &sig, &sig_len),
        KMS_ERR_VALIDATION);
    assert_null(sig);
}

static void test_sign_refusals(void **state)
{
    fixture *fx = *state;
    const uint8_t msg[] = "m";
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    kms_key_record rec;
    /* An algorithm of another key spec, one AWS does not know, a key of another usage. */
    assert_kms_error(
        kms_keystore_sign(&fx->ks, &fx->ecc, msg, 1, NULL, "RSASSA_PSS_SHA_256", &sig, &sig_len),
        KMS_ERR_INVALID_KEY_USAGE);
    assert_kms_error(
        kms_keystore_sign(&fx->ks, &fx->ecc, msg, 1, NULL, "ECDSA_SHA_1", &sig, &sig_len),
        KMS_ERR_VALIDATION);
    assert_kms_error(
        kms_keystore_sign(&fx->ks, &fx->aes, msg, 1, NULL, "ECDSA_SHA_256", &sig, &sig_len),
        KMS_ERR_INVALID_KEY_USAGE);
    assert_kms_error(
        kms_keystore_verify(&fx->ks, &fx->rsa, msg, 1, NULL, "RSASSA_PSS_SHA_256", msg, 1),
        KMS_ERR_INVALID_KEY_USAGE);
    /* Disabled and pending deletion. */
    key_in_state(fx, "ECC_NIST_P256", "SIGN_VERIFY", "Disabled", &rec);
    assert_kms_error(
        kms_keystore_sign(&fx->ks, &rec, msg, 1, NULL, "ECDSA_SHA_256", &sig, &sig_len),
        KMS_ERR_DISABLED);
    assert_kms_error(kms_keystore_verify(&fx->ks, &rec, msg, 1, NULL, "ECDSA_SHA_256", msg, 1),
                     KMS_ERR_DISABLED);
    kms_key_record_clean_up(&rec);
    key_in_state(fx, "ECC_NIST_P256", "SIGN_VERIFY", "PendingDeletion", &rec);
    assert_kms_error(
        kms_keystore_sign(&fx->ks, &rec, msg, 1, NULL, "ECDSA_SHA_256", &sig, &sig_len),
        KMS_ERR_INVALID_STATE);
    kms_key_record_clean_up(&rec);
    assert_null(sig);
}

/* ---- MACs ----------------------------------------------------------------------------------- */

static void test_mac(void **state)
{
    fixture *fx = *state;
    const uint8_t msg[] = "a message to MAC";
    uint8_t mac[KMS_MAC_MAX];
    uint8_t again[KMS_MAC_MAX];
    size_t mac_len = 0;
    size_t again_len = 0;
    assert_int_equal(kms_keystore_mac_generate(&fx->ks, &fx->hmac, "HMAC_SHA_256", msg, sizeof msg,
                                               mac, &mac_len),
                     0);
    assert_int_equal(mac_len, 32);
    assert_int_equal(kms_keystore_mac_generate(&fx->ks, &fx->hmac, "HMAC_SHA_256", msg, sizeof msg,
                                               again, &again_len),
                     0);
    assert_memory_equal(mac, again, mac_len); /* deterministic */
    assert_int_equal(
        kms_keystore_mac_verify(&fx->ks, &fx->hmac, "HMAC_SHA_256", msg, sizeof msg, mac, mac_len),
        0);
    /* A truncated MAC, an altered one, another message: KMSInvalidMacException. */
    assert_kms_error(kms_keystore_mac_verify(&fx->ks, &fx->hmac, "HMAC_SHA_256", msg, sizeof msg,
                                             mac, mac_len - 1),
                     KMS_ERR_INVALID_MAC);
    assert_kms_error(kms_keystore_mac_verify(&fx->ks, &fx->hmac, "HMAC_SHA_256", msg,
                                             sizeof msg - 1, mac, mac_len),
                     KMS_ERR_INVALID_MAC);
    mac[0] ^= 1;
    assert_kms_error(
        kms_keystore_mac_verify(&fx->ks, &fx->hmac, "HMAC_SHA_256", msg, sizeof msg, mac, mac_len),
        KMS_ERR_INVALID_MAC);
}

static void test_mac_refusals(void **state)
{
    fixture *fx = *state;
    const uint8_t msg[] = "m";
    uint8_t mac[KMS_MAC_MAX];
    size_t mac_len = 1;
    kms_key_record rec;
    assert_kms_error(
        kms_keystore_mac_generate(&fx->ks, &fx->hmac, "HMAC_SHA_384", msg, 1, mac, &mac_len),
        KMS_ERR_INVALID_KEY_USAGE);
    assert_int_equal(mac_len, 0);
    assert_kms_error(
        kms_keystore_mac_generate(&fx->ks, &fx->aes, "HMAC_SHA_256", msg, 1, mac, &mac_len),
        KMS_ERR_INVALID_KEY_USAGE);
    assert_kms_error(kms_keystore_mac_verify(&fx->ks, &fx->ecc, "HMAC_SHA_256", msg, 1, mac, 32),
                     KMS_ERR_INVALID_KEY_USAGE);
    key_in_state(fx, "HMAC_256", "GENERATE_VERIFY_MAC", "Disabled", &rec);
    assert_kms_error(
        kms_keystore_mac_generate(&fx->ks, &rec, "HMAC_SHA_256", msg, 1, mac, &mac_len),
        KMS_ERR_DISABLED);
    assert_kms_error(kms_keystore_mac_verify(&fx->ks, &rec, "HMAC_SHA_256", msg, 1, mac, 32),
                     KMS_ERR_DISABLED);
    kms_key_record_clean_up(&rec);
}

/* ---- RSAES-OAEP and public keys ------------------------------------------------------------- */

static void test_rsa(void **state)
{
    fixture *fx = *state;
    const uint8_t msg[] = "a short secret";
    const kms_enc_alg_info *sha256 = kms_enc_alg_find("RSAES_OAEP_SHA_256");
    const kms_enc_alg_info *sha1 = kms_enc_alg_find("RSAES_OAEP_SHA_1");
    uint8_t big[200] = {0};
    kms_buf ct, pt;
    assert_non_null(sha256);
    assert_non_null(sha1);
    kms_buf_init(&ct, false);
    kms_buf_init(&pt, true);
    assert_int_equal(kms_keystore_rsa_encrypt(&fx->ks, &fx->rsa, sha256, msg, sizeof msg, &ct), 0);
    assert_int_equal(ct.len, 256);
    assert_int_equal(kms_keystore_rsa_decrypt(&fx->ks, &fx->rsa, sha256, ct.data, ct.len, &pt), 0);
    assert_int_equal(pt.len, sizeof msg);
    assert_memory_equal(pt.data, msg, sizeof msg);
    /* Another algorithm, an altered ciphertext: nothing decrypts. */
    pt.len = 0;
    assert_kms_error(kms_keystore_rsa_decrypt(&fx->ks, &fx->rsa, sha1, ct.data, ct.len, &pt),
                     KMS_ERR_INVALID_CIPHERTEXT);
    ct.data[10] ^= 1;
    assert_kms_error(kms_keystore_rsa_decrypt(&fx->ks, &fx->rsa, sha256, ct.data, ct.len, &pt),
                     KMS_ERR_INVALID_CIPHERTEXT);
    assert_int_equal(pt.len, 0);
    /* RFC 8017 7.1.1: at most 190 bytes with RSA_2048 and SHA-256. */
    ct.len = 0;
    assert_kms_error(kms_keystore_rsa_encrypt(&fx->ks, &fx->rsa, sha256, big, sizeof big, &ct),
                     KMS_ERR_VALIDATION);
    assert_int_equal(ct.len, 0);
    /* Keys that do not encrypt with RSAES-OAEP. */
    assert_kms_error(kms_keystore_rsa_encrypt(&fx->ks, &fx->aes, sha256, msg, sizeof msg, &ct),
                     KMS_ERR_INVALID_KEY_USAGE);
    assert_kms_error(kms_keystore_rsa_decrypt(&fx->ks, &fx->ecc, sha256, msg, sizeof msg, &pt),
                     KMS_ERR_INVALID_KEY_USAGE);
    kms_buf_clean_up(&ct);
    kms_buf_clean_up(&pt);
}

static void test_public_key(void **state)
{
    fixture *fx = *state;
    const uint8_t *der = NULL;
    size_t der_len = 0;
    kms_key_record rec;
    assert_int_equal(kms_keystore_public_key(&fx->ks, &fx->ecc, &der, &der_len), 0);
    assert_ptr_equal(der, fx->ecc.public_key);
    assert_int_equal(der_len, fx->ecc.public_key_len);
    assert_int_equal(kms_keystore_public_key(&fx->ks, &fx->rsa, &der, &der_len), 0);
    assert_non_null(der);
    assert_kms_error(kms_keystore_public_key(&fx->ks, &fx->aes, &der, &der_len),
                     KMS_ERR_UNSUPPORTED_OPERATION);
    assert_null(der);
    assert_kms_error(kms_keystore_public_key(&fx->ks, &fx->hmac, &der, &der_len),
                     KMS_ERR_UNSUPPORTED_OPERATION);
    key_in_state(fx, "ECC_NIST_P256", "SIGN_VERIFY", "Disabled", &rec);
    assert_kms_error(kms_keystore_public_key(&fx->ks, &rec, &der, &der_len), KMS_ERR_DISABLED);
    kms_key_record_clean_up(&rec);
}

static void test_random(void **state)
{
    fixture *fx = *state;
    uint8_t a[32] = {0};
    uint8_t b[32] = {0};
    assert_int_equal(kms_keystore_random(&fx->ks, a, sizeof a), 0);
    assert_int_equal(kms_keystore_random(&fx->ks, b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
}

/* ---- Key records ---------------------------------------------------------------------------- */

static void test_description_and_policy(void **state)
{
    fixture *fx = *state;
    kms_key_record rec;
    char *doc = NULL;
    int64_t v1 = 0, v2 = 0;
    assert_int_equal(kms_keystore_set_description(&fx->ks, fx->aes.key_id, "renamed"), 0);
    assert_int_equal(kms_keystore_key_get(&fx->ks, fx->aes.key_id, &rec), 0);
    assert_string_equal(rec.description, "renamed");
    kms_key_record_clean_up(&rec);
    assert_kms_error(kms_keystore_set_description(&fx->ks, UNKNOWN_ID, "x"), KMS_ERR_NOT_FOUND);

    assert_int_equal(kms_keystore_policy_get(&fx->ks, fx->aes.key_id, &doc, &v1), 0);
    assert_string_equal(doc, "{}");
    free(doc);
    assert_int_equal(kms_keystore_policy_put(&fx->ks, fx->aes.key_id, "{\"Statement\":[]}"), 0);
    assert_int_equal(kms_keystore_policy_get(&fx->ks, fx->aes.key_id, &doc, &v2), 0);
    assert_string_equal(doc, "{\"Statement\":[]}");
    assert_true(v2 > v1);
    free(doc);
    doc = NULL;
    assert_kms_error(kms_keystore_policy_get(&fx->ks, UNKNOWN_ID, &doc, &v1), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_keystore_policy_put(&fx->ks, UNKNOWN_ID, "{}"), KMS_ERR_NOT_FOUND);
}

static int count_key(void *arg, const char *key_id)
{
    (void)key_id;
    (*(int *)arg)++;
    return 0;
}

static int count_alias(void *arg, const kms_alias_record *alias)
{
    (void)alias;
    (*(int *)arg)++;
    return 0;
}

static void test_list_keys(void **state)
{
    fixture *fx = *state;
    int n = 0;
    bool truncated = true;
    assert_int_equal(kms_keystore_key_list(&fx->ks, NULL, 1000, count_key, &n, &truncated), 0);
    assert_false(truncated);
    assert_true(n >= 4);
    n = 0;
    assert_int_equal(kms_keystore_key_list(&fx->ks, NULL, 2, count_key, &n, &truncated), 0);
    assert_int_equal(n, 2);
    assert_true(truncated);
}

static void test_aliases(void **state)
{
    fixture *fx = *state;
    kms_alias_record alias;
    kms_key_record rec;
    int n = 0;
    bool truncated = true;
    int64_t now = kms_now();
    assert_int_equal(kms_keystore_alias_create(&fx->ks, "alias/test", fx->aes.key_id, now), 0);
    assert_kms_error(kms_keystore_alias_create(&fx->ks, "alias/test", fx->ecc.key_id, now),
                     KMS_ERR_ALREADY_EXISTS);
    assert_kms_error(kms_keystore_alias_create(&fx->ks, "alias/orphan", UNKNOWN_ID, now),
                     KMS_ERR_NOT_FOUND);
    assert_int_equal(kms_keystore_alias_get(&fx->ks, "alias/test", &alias), 0);
    assert_string_equal(alias.key_id, fx->aes.key_id);
    assert_int_equal(kms_keystore_resolve(&fx->ks, "alias/test", true, &rec), 0);
    assert_string_equal(rec.key_id, fx->aes.key_id);
    kms_key_record_clean_up(&rec);

    char arn[KMS_ARN_MAX];
    kms_keystore_alias_arn(&fx->ks, "alias/test", arn);
    assert_int_equal(kms_keystore_resolve(&fx->ks, arn, true, &rec), 0);
    assert_string_equal(rec.key_id, fx->aes.key_id);
    kms_key_record_clean_up(&rec);

    assert_int_equal(kms_keystore_alias_update(&fx->ks, "alias/test", fx->ecc.key_id, now), 0);
    assert_int_equal(kms_keystore_alias_get(&fx->ks, "alias/test", &alias), 0);
    assert_string_equal(alias.key_id, fx->ecc.key_id);
    assert_kms_error(kms_keystore_alias_update(&fx->ks, "alias/none", fx->ecc.key_id, now),
                     KMS_ERR_NOT_FOUND);

    assert_int_equal(
        kms_keystore_alias_list(&fx->ks, fx->ecc.key_id, NULL, 100, count_alias, &n, &truncated),
        0);
    assert_int_equal(n, 1);
    assert_false(truncated);
    n = 0;
    assert_int_equal(
        kms_keystore_alias_list(&fx->ks, fx->aes.key_id, NULL, 100, count_alias, &n, &truncated),
        0);
    assert_int_equal(n, 0);

    assert_int_equal(kms_keystore_alias_delete(&fx->ks, "alias/test"), 0);
    assert_kms_error(kms_keystore_alias_get(&fx->ks, "alias/test", &alias), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_keystore_alias_delete(&fx->ks, "alias/test"), KMS_ERR_NOT_FOUND);
}

static void test_rotation_schedule(void **state)
{
    fixture *fx = *state;
    kms_key_rotation rot;
    int64_t now = kms_now();
    int64_t when = 0;
    assert_int_equal(kms_keystore_rotation_get(&fx->ks, fx->aes.key_id, &rot), 0);
    assert_int_equal(rot.period_days, 0);
    assert_int_equal(rot.current_version, 1);
    assert_int_equal(kms_keystore_rotation_set(&fx->ks, fx->aes.key_id, 90, now + 90 * 86400), 0);
    assert_int_equal(kms_keystore_rotation_get(&fx->ks, fx->aes.key_id, &rot), 0);
    assert_int_equal(rot.period_days, 90);
    assert_int_equal(rot.next_rotation, now + 90 * 86400);
    assert_int_equal(kms_keystore_next_due(&fx->ks, now, &when), 0);
    assert_true(when > now && when <= now + 90 * 86400);
    assert_int_equal(kms_keystore_rotation_set(&fx->ks, fx->aes.key_id, 0, 0), 0);
    assert_kms_error(kms_keystore_rotation_get(&fx->ks, UNKNOWN_ID, &rot), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_keystore_rotation_set(&fx->ks, UNKNOWN_ID, 90, now), KMS_ERR_NOT_FOUND);
}

static int count_version(void *arg, uint32_t version, int64_t date, const char *type)
{
    (void)date;
    uint32_t *last = arg;
    assert_string_equal(type, "ON_DEMAND");
    *last = version;
    return 0;
}

typedef struct due_seen {
    const char *key_id;
    bool rotation;
} due_seen;

static int note_due(void *arg, kms_due_kind kind, const char *key_id, int64_t due)
{
    (void)due;
    due_seen *d = arg;
    if (kind == KMS_DUE_ROTATION && strcmp(key_id, d->key_id) == 0) {
        d->rotation = true;
    }
    return 0;
}

static void test_rotate(void **state)
{
    fixture *fx = *state;
    const uint8_t msg[] = "before and after";
    kms_key_record rec, now_rec;
    kms_key_rotation rot;
    kms_buf old_blob, new_blob, pt;
    kms_blob b;
    uint32_t last = 0;
    bool truncated = true;
    int64_t now = kms_now();
    kms_buf_init(&old_blob, false);
    kms_buf_init(&new_blob, false);
    kms_buf_init(&pt, true);
    assert_kms_error(kms_keystore_check_rotatable(&fx->ks, &fx->ecc),
                     KMS_ERR_UNSUPPORTED_OPERATION);
    assert_kms_error(kms_keystore_check_rotatable(&fx->ks, &fx->hmac),
                     KMS_ERR_UNSUPPORTED_OPERATION);
    create(fx, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", &rec);
    assert_int_equal(kms_keystore_check_rotatable(&fx->ks, &rec), 0);
    assert_int_equal(kms_keystore_seal(&fx->ks, &rec, msg, sizeof msg, NULL, &old_blob), 0);

    assert_int_equal(kms_keystore_rotation_get(&fx->ks, rec.key_id, &rot), 0);
    kms_rotation_claim cl = {
        .version = kms_rotation_next_version(&rot),
        .type = "ON_DEMAND",
        .now = now,
        .stale_before = now - KMS_ROTATION_STALE_SECONDS,
    };
    assert_int_equal(cl.version, 2);
    assert_int_equal(kms_keystore_rotate(&fx->ks, rec.key_id, &cl), 0);
    /* The same version is never made twice: the claim is not won again. */
    assert_int_equal(kms_keystore_rotate(&fx->ks, rec.key_id, &cl), 1);
    assert_int_equal(kms_keystore_key_get(&fx->ks, rec.key_id, &now_rec), 0);
    assert_int_equal(now_rec.current_version, 2);
    assert_int_equal(
        kms_keystore_rotation_list(&fx->ks, rec.key_id, 0, 10, count_version, &last, &truncated),
        0);
    assert_int_equal(last, 2);
    assert_false(truncated);

    /* New encryptions use version 2; version 1 still decrypts. */
    assert_int_equal(kms_keystore_seal(&fx->ks, &now_rec, msg, sizeof msg, NULL, &new_blob), 0);
    assert_int_equal(kms_blob_parse(new_blob.data, new_blob.len, &b), 0);
    assert_int_equal(b.key_version, 2);
    assert_int_equal(kms_keystore_open(&fx->ks, &now_rec, &b, NULL, &pt), 0);
    assert_memory_equal(pt.data, msg, sizeof msg);
    pt.len = 0;
    assert_int_equal(kms_blob_parse(old_blob.data, old_blob.len, &b), 0);
    assert_int_equal(b.key_version, 1);
    assert_int_equal(kms_keystore_open(&fx->ks, &now_rec, &b, NULL, &pt), 0);
    assert_memory_equal(pt.data, msg, sizeof msg);

    /* Automatic rotation due in the past: the scheduler's list names the key. */
    due_seen d = {rec.key_id, false};
    assert_int_equal(kms_keystore_rotation_set(&fx->ks, rec.key_id, 90, now - 1), 0);
    assert_int_equal(kms_keystore_due_list(&fx->ks, now, KMS_ROTATION_USAGE_LIMIT,
                                           now - KMS_ROTATION_STALE_SECONDS, note_due, &d),
                     0);
    assert_true(d.rotation);
    assert_int_equal(kms_keystore_rotation_set(&fx->ks, rec.key_id, 0, 0), 0);

    kms_key_record_clean_up(&now_rec);
    kms_key_record_clean_up(&rec);
    kms_buf_clean_up(&old_blob);
    kms_buf_clean_up(&new_blob);
    kms_buf_clean_up(&pt);
}

static void test_deletion(void **state)
{
    fixture *fx = *state;
    kms_key_record rec, got;
    int64_t when = 0;
    create(fx, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", &rec);
    /* Not pending deletion: nothing to cancel, nothing to destroy. */
    assert_kms_error(kms_keystore_cancel_deletion(&fx->ks, rec.key_id, kms_now()),
                     KMS_ERR_INVALID_STATE);
    assert_kms_error(kms_keystore_destroy(&fx->ks, rec.key_id, kms_now()), KMS_ERR_INVALID_STATE);
    /* Scheduled, cancelled: Disabled. */
    int64_t due = kms_now() + 7 * 86400;
    assert_int_equal(kms_keystore_set_state(&fx->ks, rec.key_id, "PendingDeletion", due, 7), 0);
    assert_kms_error(kms_keystore_destroy(&fx->ks, rec.key_id, kms_now()), KMS_ERR_INVALID_STATE);
    assert_int_equal(kms_keystore_cancel_deletion(&fx->ks, rec.key_id, kms_now()), 0);
    assert_int_equal(kms_keystore_key_get(&fx->ks, rec.key_id, &got), 0);
    assert_string_equal(got.key_state, "Disabled");
    kms_key_record_clean_up(&got);
    /* Scheduled again, destroyed when due: gone, and remembered as deleted. */
    assert_int_equal(kms_keystore_set_state(&fx->ks, rec.key_id, "PendingDeletion", due, 7), 0);
    assert_int_equal(kms_keystore_destroy(&fx->ks, rec.key_id, due), 0);
    assert_kms_error(kms_keystore_key_get(&fx->ks, rec.key_id, &got), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_keystore_resolve(&fx->ks, rec.key_id, false, &got), KMS_ERR_NOT_FOUND);
    assert_non_null(strstr(kms_last_error_message(), "was deleted"));
    assert_int_equal(kms_keystore_deleted_get(&fx->ks, rec.key_id, &when), 0);
    assert_int_equal(when, due);
    assert_kms_error(kms_keystore_deleted_get(&fx->ks, UNKNOWN_ID, &when), KMS_ERR_NOT_FOUND);
    kms_key_record_clean_up(&rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_check_usable),
        cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_sign_digest),
        cmocka_unit_test(test_sign_refusals),
        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_mac_refusals),
        cmocka_unit_test(test_rsa),
        cmocka_unit_test(test_public_key),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_description_and_policy),
        cmocka_unit_test(test_list_keys),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_rotation_schedule),
        cmocka_unit_test(test_rotate),
        cmocka_unit_test(test_deletion),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
