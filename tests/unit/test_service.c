/* The service through its public API: every operation of the foundation issue, every error
 * named there, against a fresh KMS home on a fresh SoftHSM token. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "kms/kms.h"
#include "testutil.h"

static char *tmp;
static char *home;
static kms_client *client;

static int setup(void **state)
{
    tmp = kms_test_tmpdir();
    home = malloc(strlen(tmp) + 8);
    sprintf(home, "%s/home", tmp);
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
    return 0;
}

static int teardown(void **state)
{
    kms_client_free(client);
    kms_test_rmrf(tmp);
    free(home);
    free(tmp);
    return 0;
}

/* Calls op with a printf-formatted request; returns the response or NULL (error kept). */
static json_t *call(const char *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *call(const char *op, const char *fmt, ...)
{
    char *req = NULL;
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&req, fmt, ap) >= 0);
    va_end(ap);
    char *resp = NULL;
    int rc = kms_call(client, op, req, &resp);
    free(req);
    if (rc != 0) {
        assert_null(resp);
        return NULL;
    }
    json_t *j = json_loads(resp, 0, NULL);
    assert_non_null(j);
    kms_string_free(resp);
    return j;
}

#define assert_call_fails(code, op, ...)                                                           \
    do {                                                                                           \
        json_t *j_ = call(op, __VA_ARGS__);                                                        \
        if (j_ != NULL) {                                                                          \
            fail_msg("%s succeeded, expected %s", op, kms_error_name(code));                       \
        }                                                                                          \
        if (kms_last_error() != (code)) {                                                          \
            fail_msg("%s failed with %s (%s), expected %s", op, kms_error_name(kms_last_error()),  \
                     kms_last_error_message(), kms_error_name(code));                              \
        }                                                                                          \
    } while (0)

static json_t *must(json_t *j)
{
    if (j == NULL) {
        fail_msg("call failed: %s: %s", kms_error_name(kms_last_error()), kms_last_error_message());
    }
    return j;
}

static const char *str(json_t *j, const char *path)
{
    json_t *v = j;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *part = strtok_r(buf, ".", &save); part;
         part = strtok_r(NULL, ".", &save)) {
        v = json_object_get(v, part);
    }
    if (!json_is_string(v)) {
        fail_msg("no string at %s", path);
    }
    return json_string_value(v);
}

/* A new key; returns its id (static storage rotates among 8). */
static const char *new_key(const char *spec, const char *usage)
{
    static char ids[8][64];
    static int next;
    json_t *j;
    if (usage) {
        j = must(call("CreateKey", "{\"KeySpec\":\"%s\",\"KeyUsage\":\"%s\"}", spec, usage));
    } else {
        j = must(call("CreateKey", "{\"KeySpec\":\"%s\"}", spec));
    }
    char *id = ids[next++ % 8];
    snprintf(id, 64, "%s", str(j, "KeyMetadata.KeyId"));
    json_decref(j);
    return id;
}

static char *b64(const void *p, size_t n)
{
    EVP_ENCODE_CTX *c = EVP_ENCODE_CTX_new();
    char *out = calloc(1, n * 2 + 8);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    (void)len;
    EVP_ENCODE_CTX_free(c);
    return out;
}

static void test_create_and_describe(void **state)
{
    json_t *j = must(call("CreateKey", "{\"Description\":\"first key\"}"));
    const char *id = str(j, "KeyMetadata.KeyId");
    const char *arn = str(j, "KeyMetadata.Arn");
    assert_string_equal(str(j, "KeyMetadata.KeyState"), "Enabled");
    assert_string_equal(str(j, "KeyMetadata.KeySpec"), "SYMMETRIC_DEFAULT");
    assert_string_equal(str(j, "KeyMetadata.KeyUsage"), "ENCRYPT_DECRYPT");
    assert_string_equal(str(j, "KeyMetadata.Description"), "first key");
    assert_string_equal(str(j, "KeyMetadata.Origin"), "AWS_KMS");
    assert_true(json_is_true(json_object_get(json_object_get(j, "KeyMetadata"), "Enabled")));
    assert_non_null(strstr(arn, ":key/"));
    assert_int_equal(strncmp(arn, "arn:aws:kms:us-east-1:", 22), 0);
    /* by id, by ARN, by alias and by alias ARN */
    json_t *d = must(call("DescribeKey", "{\"KeyId\":\"%s\"}", arn));
    assert_string_equal(str(d, "KeyMetadata.KeyId"), id);
    json_decref(d);
    json_decref(
        must(call("CreateAlias", "{\"AliasName\":\"alias/first\",\"TargetKeyId\":\"%s\"}", id)));
    d = must(call("DescribeKey", "{\"KeyId\":\"alias/first\"}"));
    assert_string_equal(str(d, "KeyMetadata.KeyId"), id);
    json_decref(d);
    char alias_arn[400];
    snprintf(alias_arn, sizeof alias_arn, "%.*salias/first", (int)(strstr(arn, "key/") - arn), arn);
    d = must(call("DescribeKey", "{\"KeyId\":\"%s\"}", alias_arn));
    assert_string_equal(str(d, "KeyMetadata.KeyId"), id);
    json_decref(d);
    json_decref(
        must(call("UpdateKeyDescription", "{\"KeyId\":\"%s\",\"Description\":\"new\"}", id)));
    d = must(call("DescribeKey", "{\"KeyId\":\"%s\"}", id));
    assert_string_equal(str(d, "KeyMetadata.Description"), "new");
    json_decref(d);
    json_decref(j);
}

static void test_create_key_errors(void **state)
{
    assert_call_fails(KMS_ERR_VALIDATION, "CreateKey", "{\"KeySpec\":\"AES_999\"}");
    assert_call_fails(KMS_ERR_VALIDATION, "CreateKey", "{\"KeySpec\":\"RSA_2048\"}");
    assert_call_fails(KMS_ERR_VALIDATION, "CreateKey",
                      "{\"KeySpec\":\"HMAC_256\",\"KeyUsage\":\"ENCRYPT_DECRYPT\"}");
    assert_call_fails(KMS_ERR_VALIDATION, "CreateKey", "{\"KeyUsage\":\"SIGN_VERIFY\"}");
    assert_call_fails(KMS_ERR_VALIDATION, "CreateKey", "{\"KeyUsage\":\"BOGUS\"}");
    assert_call_fails(KMS_ERR_UNSUPPORTED_OPERATION, "CreateKey", "{\"Origin\":\"EXTERNAL\"}");
    assert_call_fails(KMS_ERR_VALIDATION, "CreateKey", "{\"Bogus\":1}");
    assert_call_fails(KMS_ERR_VALIDATION, "CreateKey", "{\"Description\":5}");
    assert_call_fails(KMS_ERR_VALIDATION, "CreateKey", "not json");
    assert_call_fails(KMS_ERR_VALIDATION, "CreateKey",
                      "{\"Description\":\"a\",\"Description\":\"b\"}");
    assert_call_fails(KMS_ERR_UNKNOWN_OPERATION, "NoSuchOperation", "{}");
}

static void test_describe_unknown(void **state)
{
    assert_call_fails(KMS_ERR_NOT_FOUND, "DescribeKey",
                      "{\"KeyId\":\"11111111-2222-4333-8444-555555555555\"}");
    assert_call_fails(KMS_ERR_NOT_FOUND, "DescribeKey", "{\"KeyId\":\"not-a-key\"}");
    assert_call_fails(KMS_ERR_NOT_FOUND, "DescribeKey", "{\"KeyId\":\"alias/nothing\"}");
    assert_call_fails(KMS_ERR_NOT_FOUND, "DescribeKey",
                      "{\"KeyId\":\"arn:aws:kms:eu-west-1:111122223333:key/"
                      "11111111-2222-4333-8444-555555555555\"}");
    assert_call_fails(KMS_ERR_VALIDATION, "DescribeKey", "{}");
}

/* Encrypts pt under key with an optional context; returns the blob as base64 (malloc'd). */
static char *encrypt_b64(const char *key, const char *pt_b64, const char *ctx_json)
{
    json_t *j = must(call("Encrypt", "{\"KeyId\":\"%s\",\"Plaintext\":\"%s\"%s%s}", key, pt_b64,
                          ctx_json ? ",\"EncryptionContext\":" : "", ctx_json ? ctx_json : ""));
    assert_string_equal(str(j, "EncryptionAlgorithm"), "SYMMETRIC_DEFAULT");
    char *blob = strdup(str(j, "CiphertextBlob"));
    json_decref(j);
    return blob;
}

static void test_encrypt_decrypt_context(void **state)
{
    const char *key = new_key("SYMMETRIC_DEFAULT", NULL);
    const char *other = new_key("SYMMETRIC_DEFAULT", NULL);
    char *blob = encrypt_b64(key, "aGVsbG8gd29ybGQ=", "{\"dept\":\"eng\",\"app\":\"x\"}");
    json_t *j = must(call("Decrypt",
                          "{\"CiphertextBlob\":\"%s\",\"EncryptionContext\":"
                          "{\"app\":\"x\",\"dept\":\"eng\"}}",
                          blob));
    assert_string_equal(str(j, "Plaintext"), "aGVsbG8gd29ybGQ=");
    assert_non_null(strstr(str(j, "KeyId"), key));
    json_decref(j);
    /* with the right KeyId given */
    json_decref(must(call("Decrypt",
                          "{\"CiphertextBlob\":\"%s\",\"KeyId\":\"%s\","
                          "\"EncryptionContext\":{\"app\":\"x\",\"dept\":\"eng\"}}",
                          blob, key)));
    assert_call_fails(KMS_ERR_INVALID_CIPHERTEXT, "Decrypt", "{\"CiphertextBlob\":\"%s\"}", blob);
    assert_call_fails(KMS_ERR_INVALID_CIPHERTEXT, "Decrypt",
                      "{\"CiphertextBlob\":\"%s\",\"EncryptionContext\":{\"app\":\"y\","
                      "\"dept\":\"eng\"}}",
                      blob);
    assert_call_fails(KMS_ERR_INVALID_CIPHERTEXT, "Decrypt",
                      "{\"CiphertextBlob\":\"%s\",\"EncryptionContext\":{\"app\":\"x\"}}", blob);
    assert_call_fails(KMS_ERR_INCORRECT_KEY, "Decrypt",
                      "{\"CiphertextBlob\":\"%s\",\"KeyId\":\"%s\",\"EncryptionContext\":"
                      "{\"app\":\"x\",\"dept\":\"eng\"}}",
                      blob, other);
    assert_call_fails(KMS_ERR_VALIDATION, "Decrypt", "{\"CiphertextBlob\":\"!!notbase64\"}");
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"EncryptionAlgorithm\":"
                      "\"RSAES_OAEP_SHA_256\"}",
                      key);
    free(blob);
}

/* A key policy condition on kms:EncryptionContext:KEY decides with context keys of any length
 * (the gate builds the condition key on the stack for a usual key, on the heap for a long one). */
static void test_encryption_context_condition_key_lengths(void **state)
{
    (void)state;
    size_t lengths[] = {4, 233, 234, 300};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        const char *key = new_key("SYMMETRIC_DEFAULT", NULL);
        json_t *d = must(call("DescribeKey", "{\"KeyId\":\"%s\"}", key));
        char account[13];
        snprintf(account, sizeof account, "%s", str(d, "KeyMetadata.AWSAccountId"));
        json_decref(d);
        char name[301];
        memset(name, 'k', lengths[i]);
        name[lengths[i]] = '\0';
        char policy[2048];
        snprintf(policy, sizeof policy,
                 "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"root\",\"Effect\":"
                 "\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::%s:root\"},\"Action\":\"kms:*\","
                 "\"Resource\":\"*\"},{\"Sid\":\"ctx\",\"Effect\":\"Deny\",\"Principal\":\"*\","
                 "\"Action\":\"kms:Encrypt\",\"Resource\":\"*\",\"Condition\":{"
                 "\"StringNotEquals\":{\"kms:EncryptionContext:%s\":\"yes\"}}}]}",
                 account, name);
        json_t *req = json_pack("{s:s, s:s}", "KeyId", key, "Policy", policy);
        char *text = json_dumps(req, JSON_COMPACT);
        json_decref(must(call("PutKeyPolicy", "%s", text)));
        free(text);
        json_decref(req);
        assert_call_fails(KMS_ERR_ACCESS_DENIED, "Encrypt",
                          "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"EncryptionContext\":"
                          "{\"%s\":\"no\"}}",
                          key, name);
        json_decref(must(call("Encrypt",
                              "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"EncryptionContext\":"
                              "{\"%s\":\"yes\"}}",
                              key, name)));
    }
}

static void test_plaintext_limits(void **state)
{
    const char *key = new_key("SYMMETRIC_DEFAULT", NULL);
    uint8_t big[4097];
    memset(big, 'a', sizeof big);
    char *b = b64(big, 4096);
    char *blob = encrypt_b64(key, b, NULL);
    free(blob);
    free(b);
    b = b64(big, 4097);
    assert_call_fails(KMS_ERR_VALIDATION, "Encrypt", "{\"KeyId\":\"%s\",\"Plaintext\":\"%s\"}", key,
                      b);
    free(b);
    assert_call_fails(KMS_ERR_VALIDATION, "Encrypt", "{\"KeyId\":\"%s\",\"Plaintext\":\"\"}", key);
}

/* Every single-bit flip and every truncation of a ciphertext blob is refused. */
static void test_blob_tampering(void **state)
{
    const char *key = new_key("SYMMETRIC_DEFAULT", NULL);
    static const uint8_t pt[] = "tamper me";
    uint8_t *blob = NULL, *out = NULL;
    size_t n = 0, out_len = 0;
    assert_int_equal(kms_encrypt(client, key, pt, sizeof pt, NULL, &blob, &n), 0);
    for (size_t bit = 0; bit < n * 8; bit++) {
        blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = kms_decrypt(client, NULL, blob, n, NULL, &out, &out_len, NULL);
        if (rc == 0) {
            fail_msg("flipping bit %zu was accepted", bit);
        }
        assert_kms_error(rc, KMS_ERR_INVALID_CIPHERTEXT);
        blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t len = 0; len < n; len++) {
        int rc = kms_decrypt(client, NULL, blob, len, NULL, &out, &out_len, NULL);
        assert_kms_error(rc, KMS_ERR_INVALID_CIPHERTEXT);
    }
    /* the untouched blob still decrypts: the loop restored every bit */
    assert_int_equal(kms_decrypt(client, NULL, blob, n, NULL, &out, &out_len, NULL), 0);
    assert_int_equal(out_len, sizeof pt);
    assert_memory_equal(out, pt, sizeof pt);
    kms_secret_free(out, out_len);
    kms_buffer_free(blob);
}

static void test_disabled_and_pending_deletion(void **state)
{
    const char *key = new_key("SYMMETRIC_DEFAULT", NULL);
    char *blob = encrypt_b64(key, "AAEC", NULL);
    json_decref(must(call("DisableKey", "{\"KeyId\":\"%s\"}", key)));
    json_t *d = must(call("DescribeKey", "{\"KeyId\":\"%s\"}", key));
    assert_string_equal(str(d, "KeyMetadata.KeyState"), "Disabled");
    json_decref(d);
    assert_call_fails(KMS_ERR_DISABLED, "Encrypt", "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\"}",
                      key);
    assert_call_fails(KMS_ERR_DISABLED, "Decrypt", "{\"CiphertextBlob\":\"%s\"}", blob);
    assert_call_fails(KMS_ERR_DISABLED, "GenerateDataKey",
                      "{\"KeyId\":\"%s\",\"KeySpec\":\"AES_256\"}", key);
    json_decref(must(call("EnableKey", "{\"KeyId\":\"%s\"}", key)));
    json_decref(must(call("Decrypt", "{\"CiphertextBlob\":\"%s\"}", blob)));

    assert_call_fails(KMS_ERR_VALIDATION, "ScheduleKeyDeletion",
                      "{\"KeyId\":\"%s\",\"PendingWindowInDays\":6}", key);
    assert_call_fails(KMS_ERR_VALIDATION, "ScheduleKeyDeletion",
                      "{\"KeyId\":\"%s\",\"PendingWindowInDays\":31}", key);
    json_t *s = must(call("ScheduleKeyDeletion", "{\"KeyId\":\"%s\"}", key));
    assert_string_equal(str(s, "KeyState"), "PendingDeletion");
    assert_int_equal(json_integer_value(json_object_get(s, "PendingWindowInDays")), 30);
    long long when = json_integer_value(json_object_get(s, "DeletionDate"));
    long long now = (long long)time(NULL);
    assert_true(when >= now + 30 * 86400 - 60 && when <= now + 30 * 86400 + 60);
    json_decref(s);
    assert_call_fails(KMS_ERR_INVALID_STATE, "Encrypt", "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\"}",
                      key);
    assert_call_fails(KMS_ERR_INVALID_STATE, "Decrypt", "{\"CiphertextBlob\":\"%s\"}", blob);
    assert_call_fails(KMS_ERR_INVALID_STATE, "EnableKey", "{\"KeyId\":\"%s\"}", key);
    assert_call_fails(KMS_ERR_INVALID_STATE, "DisableKey", "{\"KeyId\":\"%s\"}", key);
    assert_call_fails(KMS_ERR_INVALID_STATE, "ScheduleKeyDeletion", "{\"KeyId\":\"%s\"}", key);
    assert_call_fails(KMS_ERR_INVALID_STATE, "UpdateKeyDescription",
                      "{\"KeyId\":\"%s\",\"Description\":\"x\"}", key);
    d = must(call("DescribeKey", "{\"KeyId\":\"%s\"}", key));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "KeyMetadata"),
                                                        "PendingDeletionWindowInDays")),
                     30);
    json_decref(d);
    json_decref(must(call("CancelKeyDeletion", "{\"KeyId\":\"%s\"}", key)));
    d = must(call("DescribeKey", "{\"KeyId\":\"%s\"}", key));
    assert_string_equal(str(d, "KeyMetadata.KeyState"), "Disabled");
    assert_null(json_object_get(json_object_get(d, "KeyMetadata"), "DeletionDate"));
    json_decref(d);
    assert_call_fails(KMS_ERR_INVALID_STATE, "CancelKeyDeletion", "{\"KeyId\":\"%s\"}", key);
    s = must(call("ScheduleKeyDeletion", "{\"KeyId\":\"%s\",\"PendingWindowInDays\":7}", key));
    assert_int_equal(json_integer_value(json_object_get(s, "PendingWindowInDays")), 7);
    json_decref(s);
    free(blob);
}

static void test_key_usage(void **state)
{
    const char *hmac = new_key("HMAC_256", "GENERATE_VERIFY_MAC");
    const char *sym = new_key("SYMMETRIC_DEFAULT", NULL);
    const char *ec = new_key("ECC_NIST_P256", "SIGN_VERIFY");
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\"}", hmac);
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\"}", ec);
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Sign",
                      "{\"KeyId\":\"%s\",\"Message\":\"AA==\",\"SigningAlgorithm\":"
                      "\"ECDSA_SHA_256\"}",
                      sym);
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "GenerateMac",
                      "{\"KeyId\":\"%s\",\"Message\":\"AA==\",\"MacAlgorithm\":\"HMAC_SHA_256\"}",
                      sym);
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "GenerateDataKey",
                      "{\"KeyId\":\"%s\",\"KeySpec\":\"AES_256\"}", ec);
    assert_call_fails(KMS_ERR_UNSUPPORTED_OPERATION, "GetPublicKey", "{\"KeyId\":\"%s\"}", sym);
}

static void test_re_encrypt(void **state)
{
    const char *a = new_key("SYMMETRIC_DEFAULT", NULL);
    const char *b = new_key("SYMMETRIC_DEFAULT", NULL);
    char *blob = encrypt_b64(a, "c2VjcmV0", "{\"k\":\"v\"}");
    json_t *j = must(call("ReEncrypt",
                          "{\"CiphertextBlob\":\"%s\",\"SourceEncryptionContext\":"
                          "{\"k\":\"v\"},\"DestinationKeyId\":\"%s\","
                          "\"DestinationEncryptionContext\":{\"n\":\"1\"}}",
                          blob, b));
    assert_non_null(strstr(str(j, "SourceKeyId"), a));
    assert_non_null(strstr(str(j, "KeyId"), b));
    json_t *d = must(call("Decrypt",
                          "{\"CiphertextBlob\":\"%s\",\"KeyId\":\"%s\","
                          "\"EncryptionContext\":{\"n\":\"1\"}}",
                          str(j, "CiphertextBlob"), b));
    assert_string_equal(str(d, "Plaintext"), "c2VjcmV0");
    json_decref(d);
    json_decref(j);
    assert_call_fails(
        KMS_ERR_INCORRECT_KEY, "ReEncrypt",
        "{\"CiphertextBlob\":\"%s\",\"SourceKeyId\":\"%s\",\"SourceEncryptionContext\":"
        "{\"k\":\"v\"},\"DestinationKeyId\":\"%s\"}",
        blob, b, b);
    assert_call_fails(KMS_ERR_INVALID_CIPHERTEXT, "ReEncrypt",
                      "{\"CiphertextBlob\":\"%s\",\"DestinationKeyId\":\"%s\"}", blob, b);
    free(blob);
}

static void test_generate_data_key(void **state)
{
    const char *key = new_key("SYMMETRIC_DEFAULT", NULL);
    json_t *j = must(call("GenerateDataKey",
                          "{\"KeyId\":\"%s\",\"KeySpec\":\"AES_256\","
                          "\"EncryptionContext\":{\"a\":\"b\"}}",
                          key));
    const char *pt = str(j, "Plaintext");
    assert_int_equal(strlen(pt), 44); /* 32 bytes */
    json_t *d = must(call("Decrypt",
                          "{\"CiphertextBlob\":\"%s\",\"EncryptionContext\":"
                          "{\"a\":\"b\"}}",
                          str(j, "CiphertextBlob")));
    assert_string_equal(str(d, "Plaintext"), pt);
    json_decref(d);
    json_decref(j);
    j = must(call("GenerateDataKey", "{\"KeyId\":\"%s\",\"KeySpec\":\"AES_128\"}", key));
    assert_int_equal(strlen(str(j, "Plaintext")), 24);
    json_decref(j);
    j = must(call("GenerateDataKey", "{\"KeyId\":\"%s\",\"NumberOfBytes\":1024}", key));
    assert_int_equal(strlen(str(j, "Plaintext")), 1368);
    json_decref(j);
    j = must(call("GenerateDataKey", "{\"KeyId\":\"%s\",\"NumberOfBytes\":1}", key));
    json_decref(j);
    j = must(
        call("GenerateDataKeyWithoutPlaintext", "{\"KeyId\":\"%s\",\"KeySpec\":\"AES_256\"}", key));
    assert_null(json_object_get(j, "Plaintext"));
    assert_non_null(json_object_get(j, "CiphertextBlob"));
    json_decref(j);
    assert_call_fails(KMS_ERR_VALIDATION, "GenerateDataKey",
                      "{\"KeyId\":\"%s\",\"NumberOfBytes\":0}", key);
    assert_call_fails(KMS_ERR_VALIDATION, "GenerateDataKey",
                      "{\"KeyId\":\"%s\",\"NumberOfBytes\":1025}", key);
    assert_call_fails(KMS_ERR_VALIDATION, "GenerateDataKey", "{\"KeyId\":\"%s\"}", key);
    assert_call_fails(KMS_ERR_VALIDATION, "GenerateDataKey",
                      "{\"KeyId\":\"%s\",\"NumberOfBytes\":32,\"KeySpec\":\"AES_256\"}", key);
    assert_call_fails(KMS_ERR_VALIDATION, "GenerateDataKey",
                      "{\"KeyId\":\"%s\",\"KeySpec\":\"AES_512\"}", key);
    /* typed API: the data key decrypts back to itself */
    uint8_t *dk = NULL, *blob = NULL, *back = NULL;
    size_t n = 0, back_len = 0;
    assert_int_equal(kms_generate_data_key(client, key, 32, NULL, &dk, &blob, &n), 0);
    assert_int_equal(kms_decrypt(client, key, blob, n, NULL, &back, &back_len, NULL), 0);
    assert_int_equal(back_len, 32);
    assert_memory_equal(back, dk, 32);
    kms_secret_free(dk, 32);
    kms_secret_free(back, back_len);
    kms_buffer_free(blob);
}

static void test_generate_random(void **state)
{
    json_t *a = must(call("GenerateRandom", "{\"NumberOfBytes\":32}"));
    json_t *b = must(call("GenerateRandom", "{\"NumberOfBytes\":32}"));
    assert_string_not_equal(str(a, "Plaintext"), str(b, "Plaintext"));
    json_decref(a);
    json_decref(b);
    json_decref(must(call("GenerateRandom", "{\"NumberOfBytes\":1024}")));
    assert_call_fails(KMS_ERR_VALIDATION, "GenerateRandom", "{\"NumberOfBytes\":0}");
    assert_call_fails(KMS_ERR_VALIDATION, "GenerateRandom", "{\"NumberOfBytes\":1025}");
    assert_call_fails(KMS_ERR_VALIDATION, "GenerateRandom", "{}");
}

/* Verifies sig (base64) over msg with the DER public key (base64) using OpenSSL alone. */
static int openssl_verify(const char *pub_b64, const char *alg, const uint8_t *msg, size_t n,
                          const char *sig_b64)
{
    uint8_t der[2048], sig[1024];
    int der_len = EVP_DecodeBlock(der, (const unsigned char *)pub_b64, (int)strlen(pub_b64));
    int sig_len = EVP_DecodeBlock(sig, (const unsigned char *)sig_b64, (int)strlen(sig_b64));
    /* EVP_DecodeBlock counts padding as zero bytes */
    der_len -= (int)(strlen(pub_b64) - strlen(strchr(pub_b64, '=') ? strchr(pub_b64, '=') : ""));
    der_len = (int)strlen(pub_b64) / 4 * 3 -
              (int)(strchr(pub_b64, '=') ? strlen(strchr(pub_b64, '=')) : 0);
    sig_len = (int)strlen(sig_b64) / 4 * 3 -
              (int)(strchr(sig_b64, '=') ? strlen(strchr(sig_b64, '=')) : 0);
    const uint8_t *p = der;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, der_len);
    assert_non_null(pk);
    const char *md = strstr(alg, "512") ? "SHA512" : strstr(alg, "384") ? "SHA384" : "SHA256";
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    assert_int_equal(EVP_DigestVerifyInit(c, &pc, EVP_get_digestbyname(md), NULL, pk), 1);
    if (strstr(alg, "PSS")) {
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST);
    }
    int ok = EVP_DigestVerify(c, sig, (size_t)sig_len, msg, n);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    return ok;
}

static void sign_verify_case(const char *spec, const char *alg, int bits_or_curve)
{
    const char *key = new_key(spec, "SIGN_VERIFY");
    static const uint8_t msg[] = "message to sign";
    char *m = b64(msg, sizeof msg);
    json_t *s = must(call("Sign",
                          "{\"KeyId\":\"%s\",\"Message\":\"%s\",\"SigningAlgorithm\":"
                          "\"%s\"}",
                          key, m, alg));
    const char *sig = str(s, "Signature");
    json_t *v = must(call("Verify",
                          "{\"KeyId\":\"%s\",\"Message\":\"%s\",\"Signature\":\"%s\","
                          "\"SigningAlgorithm\":\"%s\"}",
                          key, m, sig, alg));
    assert_true(json_is_true(json_object_get(v, "SignatureValid")));
    json_decref(v);
    /* An outside party verifies with the public key and OpenSSL alone. */
    json_t *pub = must(call("GetPublicKey", "{\"KeyId\":\"%s\"}", key));
    assert_int_equal(openssl_verify(str(pub, "PublicKey"), alg, msg, sizeof msg, sig), 1);
    assert_string_equal(str(pub, "KeySpec"), spec);
    json_decref(pub);
    /* a changed message does not verify */
    char *other = b64("message to sigN", sizeof msg);
    assert_call_fails(KMS_ERR_INVALID_SIGNATURE, "Verify",
                      "{\"KeyId\":\"%s\",\"Message\":\"%s\",\"Signature\":\"%s\","
                      "\"SigningAlgorithm\":\"%s\"}",
                      key, other, sig, alg);
    /* DIGEST message type: the digest of the message verifies the RAW signature */
    uint8_t dg[64];
    unsigned int dl = 0;
    const char *md = strstr(alg, "512") ? "SHA512" : strstr(alg, "384") ? "SHA384" : "SHA256";
    EVP_Digest(msg, sizeof msg, dg, &dl, EVP_get_digestbyname(md), NULL);
    char *d64 = b64(dg, dl);
    v = must(call("Verify",
                  "{\"KeyId\":\"%s\",\"Message\":\"%s\",\"MessageType\":\"DIGEST\","
                  "\"Signature\":\"%s\",\"SigningAlgorithm\":\"%s\"}",
                  key, d64, sig, alg));
    json_decref(v);
    json_t *s2 = must(call("Sign",
                           "{\"KeyId\":\"%s\",\"Message\":\"%s\",\"MessageType\":"
                           "\"DIGEST\",\"SigningAlgorithm\":\"%s\"}",
                           key, d64, alg));
    json_decref(s2);
    char *short_digest = b64(dg, dl - 1);
    assert_call_fails(KMS_ERR_VALIDATION, "Sign",
                      "{\"KeyId\":\"%s\",\"Message\":\"%s\",\"MessageType\":\"DIGEST\","
                      "\"SigningAlgorithm\":\"%s\"}",
                      key, short_digest, alg);
    (void)bits_or_curve;
    free(short_digest);
    free(d64);
    free(other);
    free(m);
    json_decref(s);
}

static void test_sign_verify_rsa(void **state)
{
    static const char *algs[] = {"RSASSA_PSS_SHA_256",        "RSASSA_PSS_SHA_384",
                                 "RSASSA_PSS_SHA_512",        "RSASSA_PKCS1_V1_5_SHA_256",
                                 "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"};
    for (size_t i = 0; i < 6; i++) {
        sign_verify_case("RSA_2048", algs[i], 2048);
    }
    sign_verify_case("RSA_3072", "RSASSA_PSS_SHA_256", 3072);
    sign_verify_case("RSA_4096", "RSASSA_PKCS1_V1_5_SHA_512", 4096);
}

/* ---- RSA keys with KeyUsage ENCRYPT_DECRYPT ------------------------------------------------ */

/* Decodes base64 s into out (room bytes); returns the length. */
static size_t unb64(const char *s, uint8_t *out, size_t room)
{
    size_t len = strlen(s);
    assert_true(len / 4 * 3 <= room);
    int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
    assert_true(n >= 0);
    size_t pad = len >= 2 && s[len - 2] == '=' ? 2 : len >= 1 && s[len - 1] == '=' ? 1 : 0;
    return (size_t)n - pad;
}

/* Encrypts pt (base64) under the RSA key with alg; returns the blob as base64 (malloc'd). */
static char *rsa_encrypt_b64(const char *key, const char *alg, const char *pt_b64)
{
    json_t *j = must(call("Encrypt",
                          "{\"KeyId\":\"%s\",\"Plaintext\":\"%s\",\"EncryptionAlgorithm\":\"%s\"}",
                          key, pt_b64, alg));
    assert_string_equal(str(j, "EncryptionAlgorithm"), alg);
    assert_non_null(strstr(str(j, "KeyId"), key));
    char *blob = strdup(str(j, "CiphertextBlob"));
    json_decref(j);
    return blob;
}

/* Decrypts blob (base64) with the RSA key and alg; asserts the plaintext is pt_b64. */
static void rsa_decrypt_expect(const char *key, const char *alg, const char *blob,
                               const char *pt_b64)
{
    json_t *d = must(call("Decrypt",
                          "{\"KeyId\":\"%s\",\"CiphertextBlob\":\"%s\",\"EncryptionAlgorithm\":"
                          "\"%s\"}",
                          key, blob, alg));
    assert_string_equal(str(d, "Plaintext"), pt_b64);
    assert_string_equal(str(d, "EncryptionAlgorithm"), alg);
    assert_non_null(strstr(str(d, "KeyId"), key));
    json_decref(d);
}

static void assert_string_list(json_t *a, const char *first, const char *second)
{
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(json_string_value(json_array_get(a, 0)), first);
    assert_string_equal(json_string_value(json_array_get(a, 1)), second);
}

static void test_rsa_create_describe(void **state)
{
    json_t *c =
        must(call("CreateKey", "{\"KeySpec\":\"RSA_2048\",\"KeyUsage\":\"ENCRYPT_DECRYPT\"}"));
    char key[64];
    snprintf(key, sizeof key, "%s", str(c, "KeyMetadata.KeyId"));
    json_t *m = json_object_get(c, "KeyMetadata");
    assert_string_equal(str(m, "KeyUsage"), "ENCRYPT_DECRYPT");
    assert_string_equal(str(m, "KeySpec"), "RSA_2048");
    assert_string_list(json_object_get(m, "EncryptionAlgorithms"), "RSAES_OAEP_SHA_1",
                       "RSAES_OAEP_SHA_256");
    assert_null(json_object_get(m, "SigningAlgorithms"));
    json_decref(c);
    json_t *d = must(call("DescribeKey", "{\"KeyId\":\"%s\"}", key));
    m = json_object_get(d, "KeyMetadata");
    assert_string_equal(str(m, "KeyUsage"), "ENCRYPT_DECRYPT");
    assert_string_list(json_object_get(m, "EncryptionAlgorithms"), "RSAES_OAEP_SHA_1",
                       "RSAES_OAEP_SHA_256");
    assert_null(json_object_get(m, "SigningAlgorithms"));
    json_decref(d);
    json_t *p = must(call("GetPublicKey", "{\"KeyId\":\"%s\"}", key));
    assert_string_equal(str(p, "KeyUsage"), "ENCRYPT_DECRYPT");
    assert_string_list(json_object_get(p, "EncryptionAlgorithms"), "RSAES_OAEP_SHA_1",
                       "RSAES_OAEP_SHA_256");
    assert_null(json_object_get(p, "SigningAlgorithms"));
    json_decref(p);
    /* A signing key still shows SigningAlgorithms only. */
    const char *sig = new_key("RSA_2048", "SIGN_VERIFY");
    d = must(call("DescribeKey", "{\"KeyId\":\"%s\"}", sig));
    assert_null(json_object_get(json_object_get(d, "KeyMetadata"), "EncryptionAlgorithms"));
    assert_non_null(json_object_get(json_object_get(d, "KeyMetadata"), "SigningAlgorithms"));
    json_decref(d);
    /* KeyUsage stays required for RSA keys. */
    assert_call_fails(KMS_ERR_VALIDATION, "CreateKey", "{\"KeySpec\":\"RSA_3072\"}");
}

static void test_rsa_encrypt_decrypt(void **state)
{
    static const char *algs[] = {"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"};
    const char *key = new_key("RSA_2048", "ENCRYPT_DECRYPT");
    static const uint8_t msg[] = "a secret for RSA-OAEP";
    char *pt = b64(msg, sizeof msg);
    for (size_t i = 0; i < 2; i++) {
        char *blob = rsa_encrypt_b64(key, algs[i], pt);
        uint8_t raw[1024];
        assert_int_equal(unb64(blob, raw, sizeof raw), 256); /* the raw RSA-2048 ciphertext */
        char *again = rsa_encrypt_b64(key, algs[i], pt);
        assert_string_not_equal(blob, again); /* OAEP is randomised */
        rsa_decrypt_expect(key, algs[i], blob, pt);
        rsa_decrypt_expect(key, algs[i], again, pt);
        /* the other algorithm does not decrypt it */
        assert_call_fails(KMS_ERR_INVALID_CIPHERTEXT, "Decrypt",
                          "{\"KeyId\":\"%s\",\"CiphertextBlob\":\"%s\",\"EncryptionAlgorithm\":"
                          "\"%s\"}",
                          key, blob, algs[1 - i]);
        free(again);
        free(blob);
    }
    free(pt);
}

/* An outside party encrypts with OpenSSL and GetPublicKey's DER; KMS decrypts. */
static void test_rsa_outside_encrypt(void **state)
{
    const char *key = new_key("RSA_2048", "ENCRYPT_DECRYPT");
    json_t *p = must(call("GetPublicKey", "{\"KeyId\":\"%s\"}", key));
    uint8_t der[2048];
    size_t der_len = unb64(str(p, "PublicKey"), der, sizeof der);
    static const uint8_t msg[] = "encrypted outside the KMS";
    char *pt = b64(msg, sizeof msg);
    for (int sha256 = 0; sha256 <= 1; sha256++) {
        const uint8_t *q = der;
        EVP_PKEY *pk = d2i_PUBKEY(NULL, &q, (long)der_len);
        assert_non_null(pk);
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pk, NULL);
        const EVP_MD *md = sha256 ? EVP_sha256() : EVP_sha1();
        uint8_t ct[512];
        size_t ct_len = sizeof ct;
        assert_int_equal(EVP_PKEY_encrypt_init(pc), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(pc, md), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md), 1);
        assert_int_equal(EVP_PKEY_encrypt(pc, ct, &ct_len, msg, sizeof msg), 1);
        char *blob = b64(ct, ct_len);
        rsa_decrypt_expect(key, sha256 ? "RSAES_OAEP_SHA_256" : "RSAES_OAEP_SHA_1", blob, pt);
        free(blob);
        EVP_PKEY_CTX_free(pc);
        EVP_PKEY_free(pk);
    }
    free(pt);
    json_decref(p);
}

/* AWS KMS: RSAES_OAEP plaintext limits per key spec. */
static void rsa_limit_case(const char *spec, size_t max_sha1, size_t max_sha256)
{
    const char *key = new_key(spec, "ENCRYPT_DECRYPT");
    uint8_t big[600];
    memset(big, 'p', sizeof big);
    const char *algs[] = {"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"};
    size_t max[] = {max_sha1, max_sha256};
    for (size_t i = 0; i < 2; i++) {
        char *ok = b64(big, max[i]);
        char *over = b64(big, max[i] + 1);
        char *blob = rsa_encrypt_b64(key, algs[i], ok);
        rsa_decrypt_expect(key, algs[i], blob, ok);
        assert_call_fails(KMS_ERR_VALIDATION, "Encrypt",
                          "{\"KeyId\":\"%s\",\"Plaintext\":\"%s\",\"EncryptionAlgorithm\":\"%s\"}",
                          key, over, algs[i]);
        free(blob);
        free(over);
        free(ok);
    }
}

static void test_rsa_plaintext_limits(void **state)
{
    rsa_limit_case("RSA_2048", 214, 190);
    rsa_limit_case("RSA_3072", 342, 318);
    rsa_limit_case("RSA_4096", 470, 446);
}

static void test_rsa_encryption_errors(void **state)
{
    const char *key = new_key("RSA_2048", "ENCRYPT_DECRYPT");
    const char *sym = new_key("SYMMETRIC_DEFAULT", NULL);
    const char *signer = new_key("RSA_2048", "SIGN_VERIFY");
    char *blob = rsa_encrypt_b64(key, "RSAES_OAEP_SHA_256", "c2VjcmV0");
    /* Encrypt: the algorithm is required, SYMMETRIC_DEFAULT is the wrong usage, no context */
    assert_call_fails(KMS_ERR_VALIDATION, "Encrypt", "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\"}",
                      key);
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"EncryptionAlgorithm\":"
                      "\"SYMMETRIC_DEFAULT\"}",
                      key);
    assert_call_fails(KMS_ERR_VALIDATION, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"EncryptionAlgorithm\":"
                      "\"RSAES_OAEP_SHA_1\",\"EncryptionContext\":{\"a\":\"b\"}}",
                      key);
    /* RSAES on a symmetric key, or on an RSA signing key */
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"EncryptionAlgorithm\":"
                      "\"RSAES_OAEP_SHA_1\"}",
                      sym);
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"EncryptionAlgorithm\":"
                      "\"RSAES_OAEP_SHA_1\"}",
                      signer);
    /* Decrypt: KeyId and EncryptionAlgorithm are required, no context */
    assert_call_fails(KMS_ERR_VALIDATION, "Decrypt", "{\"KeyId\":\"%s\",\"CiphertextBlob\":\"%s\"}",
                      key, blob);
    assert_call_fails(KMS_ERR_VALIDATION, "Decrypt",
                      "{\"CiphertextBlob\":\"%s\",\"EncryptionAlgorithm\":\"RSAES_OAEP_SHA_256\"}",
                      blob);
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Decrypt",
                      "{\"KeyId\":\"%s\",\"CiphertextBlob\":\"%s\",\"EncryptionAlgorithm\":"
                      "\"SYMMETRIC_DEFAULT\"}",
                      key, blob);
    assert_call_fails(KMS_ERR_VALIDATION, "Decrypt",
                      "{\"KeyId\":\"%s\",\"CiphertextBlob\":\"%s\",\"EncryptionAlgorithm\":"
                      "\"RSAES_OAEP_SHA_256\",\"EncryptionContext\":{\"a\":\"b\"}}",
                      key, blob);
    /* tampered, truncated, or a symmetric blob: InvalidCiphertextException */
    uint8_t raw[512];
    size_t n = unb64(blob, raw, sizeof raw);
    for (size_t at = 0; at < n; at += 85) {
        raw[at] ^= 0x01;
        char *bad = b64(raw, n);
        assert_call_fails(KMS_ERR_INVALID_CIPHERTEXT, "Decrypt",
                          "{\"KeyId\":\"%s\",\"CiphertextBlob\":\"%s\",\"EncryptionAlgorithm\":"
                          "\"RSAES_OAEP_SHA_256\"}",
                          key, bad);
        free(bad);
        raw[at] ^= 0x01;
    }
    char *cut = b64(raw, n - 1);
    assert_call_fails(KMS_ERR_INVALID_CIPHERTEXT, "Decrypt",
                      "{\"KeyId\":\"%s\",\"CiphertextBlob\":\"%s\",\"EncryptionAlgorithm\":"
                      "\"RSAES_OAEP_SHA_256\"}",
                      key, cut);
    free(cut);
    char *sym_blob = encrypt_b64(sym, "c2VjcmV0", NULL);
    assert_call_fails(KMS_ERR_INVALID_CIPHERTEXT, "Decrypt",
                      "{\"KeyId\":\"%s\",\"CiphertextBlob\":\"%s\",\"EncryptionAlgorithm\":"
                      "\"RSAES_OAEP_SHA_256\"}",
                      key, sym_blob);
    /* an RSA signing key does not decrypt */
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Decrypt",
                      "{\"KeyId\":\"%s\",\"CiphertextBlob\":\"%s\",\"EncryptionAlgorithm\":"
                      "\"RSAES_OAEP_SHA_256\"}",
                      signer, blob);
    /* usages an encryption key does not have */
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Sign",
                      "{\"KeyId\":\"%s\",\"Message\":\"AA==\",\"SigningAlgorithm\":"
                      "\"RSASSA_PSS_SHA_256\"}",
                      key);
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "GenerateDataKey",
                      "{\"KeyId\":\"%s\",\"KeySpec\":\"AES_256\"}", key);
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "GenerateDataKeyWithoutPlaintext",
                      "{\"KeyId\":\"%s\",\"KeySpec\":\"AES_256\"}", key);
    /* the typed API has no algorithm to give: ValidationException, nothing encrypted */
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(kms_encrypt(client, key, (const uint8_t *)"x", 1, NULL, &out, &out_len), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_null(out);
    free(sym_blob);
    free(blob);
}

static void test_rsa_re_encrypt(void **state)
{
    const char *rsa = new_key("RSA_2048", "ENCRYPT_DECRYPT");
    const char *rsa2 = new_key("RSA_3072", "ENCRYPT_DECRYPT");
    const char *sym = new_key("SYMMETRIC_DEFAULT", NULL);
    /* symmetric -> RSA */
    char *blob = encrypt_b64(sym, "c2VjcmV0", "{\"k\":\"v\"}");
    assert_call_fails(KMS_ERR_VALIDATION, "ReEncrypt",
                      "{\"CiphertextBlob\":\"%s\",\"SourceEncryptionContext\":{\"k\":\"v\"},"
                      "\"DestinationKeyId\":\"%s\"}",
                      blob, rsa);
    json_t *j = must(call("ReEncrypt",
                          "{\"CiphertextBlob\":\"%s\",\"SourceEncryptionContext\":{\"k\":\"v\"},"
                          "\"DestinationKeyId\":\"%s\",\"DestinationEncryptionAlgorithm\":"
                          "\"RSAES_OAEP_SHA_1\"}",
                          blob, rsa));
    assert_string_equal(str(j, "SourceEncryptionAlgorithm"), "SYMMETRIC_DEFAULT");
    assert_string_equal(str(j, "DestinationEncryptionAlgorithm"), "RSAES_OAEP_SHA_1");
    char *rsa_blob = strdup(str(j, "CiphertextBlob"));
    json_decref(j);
    rsa_decrypt_expect(rsa, "RSAES_OAEP_SHA_1", rsa_blob, "c2VjcmV0");
    /* RSA -> RSA */
    assert_call_fails(KMS_ERR_VALIDATION, "ReEncrypt",
                      "{\"CiphertextBlob\":\"%s\",\"SourceKeyId\":\"%s\",\"DestinationKeyId\":"
                      "\"%s\",\"DestinationEncryptionAlgorithm\":\"RSAES_OAEP_SHA_256\"}",
                      rsa_blob, rsa, rsa2);
    j = must(call("ReEncrypt",
                  "{\"CiphertextBlob\":\"%s\",\"SourceKeyId\":\"%s\",\"SourceEncryptionAlgorithm\":"
                  "\"RSAES_OAEP_SHA_1\",\"DestinationKeyId\":\"%s\","
                  "\"DestinationEncryptionAlgorithm\":\"RSAES_OAEP_SHA_256\"}",
                  rsa_blob, rsa, rsa2));
    assert_non_null(strstr(str(j, "SourceKeyId"), rsa));
    rsa_decrypt_expect(rsa2, "RSAES_OAEP_SHA_256", str(j, "CiphertextBlob"), "c2VjcmV0");
    json_decref(j);
    /* RSA -> symmetric */
    j = must(call("ReEncrypt",
                  "{\"CiphertextBlob\":\"%s\",\"SourceKeyId\":\"%s\",\"SourceEncryptionAlgorithm\":"
                  "\"RSAES_OAEP_SHA_1\",\"DestinationKeyId\":\"%s\","
                  "\"DestinationEncryptionContext\":{\"n\":\"1\"}}",
                  rsa_blob, rsa, sym));
    assert_string_equal(str(j, "SourceEncryptionAlgorithm"), "RSAES_OAEP_SHA_1");
    assert_string_equal(str(j, "DestinationEncryptionAlgorithm"), "SYMMETRIC_DEFAULT");
    json_t *d = must(call("Decrypt",
                          "{\"CiphertextBlob\":\"%s\",\"EncryptionContext\":"
                          "{\"n\":\"1\"}}",
                          str(j, "CiphertextBlob")));
    assert_string_equal(str(d, "Plaintext"), "c2VjcmV0");
    json_decref(d);
    json_decref(j);
    free(rsa_blob);
    free(blob);
}

static void test_sign_verify_ecdsa(void **state)
{
    sign_verify_case("ECC_NIST_P256", "ECDSA_SHA_256", 256);
    sign_verify_case("ECC_NIST_P384", "ECDSA_SHA_384", 384);
    const char *p256 = new_key("ECC_NIST_P256", "SIGN_VERIFY");
    assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "Sign",
                      "{\"KeyId\":\"%s\",\"Message\":\"AA==\",\"SigningAlgorithm\":"
                      "\"ECDSA_SHA_384\"}",
                      p256);
    assert_call_fails(KMS_ERR_VALIDATION, "Sign",
                      "{\"KeyId\":\"%s\",\"Message\":\"AA==\",\"SigningAlgorithm\":\"MD5\"}", p256);
}

static void test_mac(void **state)
{
    static const char *specs[] = {"HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512"};
    static const char *algs[] = {"HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512"};
    static const size_t lens[] = {28, 32, 48, 64};
    for (size_t i = 0; i < 4; i++) {
        const char *key = new_key(specs[i], "GENERATE_VERIFY_MAC");
        json_t *m = must(call("GenerateMac",
                              "{\"KeyId\":\"%s\",\"Message\":\"aGk=\","
                              "\"MacAlgorithm\":\"%s\"}",
                              key, algs[i]));
        const char *mac = str(m, "Mac");
        assert_int_equal(strlen(mac), (lens[i] + 2) / 3 * 4);
        json_t *m2 = must(call("GenerateMac",
                               "{\"KeyId\":\"%s\",\"Message\":\"aGk=\","
                               "\"MacAlgorithm\":\"%s\"}",
                               key, algs[i]));
        assert_string_equal(str(m2, "Mac"), mac); /* HMAC is deterministic */
        json_decref(m2);
        json_t *v = must(call("VerifyMac",
                              "{\"KeyId\":\"%s\",\"Message\":\"aGk=\","
                              "\"MacAlgorithm\":\"%s\",\"Mac\":\"%s\"}",
                              key, algs[i], mac));
        assert_true(json_is_true(json_object_get(v, "MacValid")));
        json_decref(v);
        assert_call_fails(KMS_ERR_INVALID_MAC, "VerifyMac",
                          "{\"KeyId\":\"%s\",\"Message\":\"aGo=\",\"MacAlgorithm\":\"%s\","
                          "\"Mac\":\"%s\"}",
                          key, algs[i], mac);
        assert_call_fails(KMS_ERR_INVALID_KEY_USAGE, "GenerateMac",
                          "{\"KeyId\":\"%s\",\"Message\":\"aGk=\",\"MacAlgorithm\":\"%s\"}", key,
                          algs[(i + 1) % 4]);
        json_decref(m);
    }
}

static void test_aliases(void **state)
{
    const char *a = new_key("SYMMETRIC_DEFAULT", NULL);
    const char *b = new_key("SYMMETRIC_DEFAULT", NULL);
    const char *h = new_key("HMAC_256", "GENERATE_VERIFY_MAC");
    json_decref(must(call("CreateAlias",
                          "{\"AliasName\":\"alias/app/one\",\"TargetKeyId\":"
                          "\"%s\"}",
                          a)));
    assert_call_fails(KMS_ERR_ALREADY_EXISTS, "CreateAlias",
                      "{\"AliasName\":\"alias/app/one\",\"TargetKeyId\":\"%s\"}", b);
    assert_call_fails(KMS_ERR_INVALID_ALIAS_NAME, "CreateAlias",
                      "{\"AliasName\":\"alias/aws/mine\",\"TargetKeyId\":\"%s\"}", a);
    assert_call_fails(KMS_ERR_INVALID_ALIAS_NAME, "CreateAlias",
                      "{\"AliasName\":\"app\",\"TargetKeyId\":\"%s\"}", a);
    assert_call_fails(KMS_ERR_VALIDATION, "CreateAlias",
                      "{\"AliasName\":\"alias/sp ace\",\"TargetKeyId\":\"%s\"}", a);
    assert_call_fails(KMS_ERR_VALIDATION, "CreateAlias",
                      "{\"AliasName\":\"alias/two\",\"TargetKeyId\":\"alias/app/one\"}");
    assert_call_fails(KMS_ERR_NOT_FOUND, "CreateAlias",
                      "{\"AliasName\":\"alias/two\",\"TargetKeyId\":"
                      "\"11111111-2222-4333-8444-555555555555\"}");
    json_decref(must(call("UpdateAlias",
                          "{\"AliasName\":\"alias/app/one\",\"TargetKeyId\":"
                          "\"%s\"}",
                          b)));
    json_t *d = must(call("DescribeKey", "{\"KeyId\":\"alias/app/one\"}"));
    assert_string_equal(str(d, "KeyMetadata.KeyId"), b);
    json_decref(d);
    assert_call_fails(KMS_ERR_VALIDATION, "UpdateAlias",
                      "{\"AliasName\":\"alias/app/one\",\"TargetKeyId\":\"%s\"}", h);
    assert_call_fails(KMS_ERR_NOT_FOUND, "UpdateAlias",
                      "{\"AliasName\":\"alias/none\",\"TargetKeyId\":\"%s\"}", b);
    json_t *l = must(call("ListAliases", "{\"KeyId\":\"%s\"}", b));
    assert_int_equal(json_array_size(json_object_get(l, "Aliases")), 1);
    assert_string_equal(str(json_array_get(json_object_get(l, "Aliases"), 0), "AliasName"),
                        "alias/app/one");
    json_decref(l);
    l = must(call("ListAliases", "{\"KeyId\":\"%s\"}", a));
    assert_int_equal(json_array_size(json_object_get(l, "Aliases")), 0);
    json_decref(l);
    json_decref(must(call("CreateAlias",
                          "{\"AliasName\":\"alias/app/two\",\"TargetKeyId\":"
                          "\"%s\"}",
                          a)));
    l = must(call("ListAliases", "{\"Limit\":1}"));
    assert_true(json_is_true(json_object_get(l, "Truncated")));
    char marker[300];
    snprintf(marker, sizeof marker, "%s", str(l, "NextMarker"));
    json_decref(l);
    l = must(call("ListAliases", "{\"Limit\":1,\"Marker\":\"%s\"}", marker));
    assert_string_not_equal(str(json_array_get(json_object_get(l, "Aliases"), 0), "AliasName"),
                            marker);
    json_decref(l);
    json_decref(must(call("DeleteAlias", "{\"AliasName\":\"alias/app/one\"}")));
    assert_call_fails(KMS_ERR_NOT_FOUND, "DeleteAlias", "{\"AliasName\":\"alias/app/one\"}");
    assert_call_fails(KMS_ERR_NOT_FOUND, "DescribeKey", "{\"KeyId\":\"alias/app/one\"}");
}

static void test_list_keys(void **state)
{
    for (int i = 0; i < 3; i++) {
        new_key("SYMMETRIC_DEFAULT", NULL);
    }
    json_t *all = must(call("ListKeys", "{\"Limit\":1000}"));
    size_t total = json_array_size(json_object_get(all, "Keys"));
    assert_true(total >= 3);
    assert_true(json_is_false(json_object_get(all, "Truncated")));
    json_decref(all);
    size_t seen = 0;
    char marker[64] = "";
    for (;;) {
        json_t *l = marker[0] ? must(call("ListKeys", "{\"Limit\":2,\"Marker\":\"%s\"}", marker))
                              : must(call("ListKeys", "{\"Limit\":2}"));
        seen += json_array_size(json_object_get(l, "Keys"));
        bool more = json_is_true(json_object_get(l, "Truncated"));
        if (more) {
            snprintf(marker, sizeof marker, "%s", str(l, "NextMarker"));
        }
        json_decref(l);
        if (!more) {
            break;
        }
    }
    assert_int_equal(seen, total);
    assert_call_fails(KMS_ERR_INVALID_MARKER, "ListKeys", "{\"Marker\":\"garbage\"}");
    assert_call_fails(KMS_ERR_VALIDATION, "ListKeys", "{\"Limit\":0}");
}

static void test_grant_tokens_refused_dry_run_checked(void **state)
{
    const char *key = new_key("SYMMETRIC_DEFAULT", NULL);
    /* A grant token CreateGrant could not have issued. */
    assert_call_fails(KMS_ERR_INVALID_GRANT_TOKEN, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"GrantTokens\":[\"x\"]}", key);
    assert_call_fails(KMS_ERR_VALIDATION, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"GrantTokens\":\"x\"}", key);
    /* DryRun (issue 19): authorised and checked, then DryRunOperationException; a DryRun that is
     * not a boolean is malformed. */
    assert_call_fails(KMS_ERR_DRY_RUN, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"DryRun\":true}", key);
    assert_call_fails(KMS_ERR_VALIDATION, "Encrypt",
                      "{\"KeyId\":\"%s\",\"Plaintext\":\"AA==\",\"DryRun\":\"yes\"}", key);
    assert_call_fails(KMS_ERR_NOT_FOUND, "Encrypt",
                      "{\"KeyId\":\"alias/none\",\"Plaintext\":\"AA==\",\"DryRun\":true}");
}

/* A typed call's encryption context is compared with a grant's constraints as JSON text: one
 * that is not UTF-8 is refused (ValidationException), never compared without the members that
 * are not (which let {"a":"1","b":"\xff"} pass EncryptionContextEquals {"a":"1"}). */
static void test_grant_context_not_utf8(void **state)
{
    const char *key = new_key("SYMMETRIC_DEFAULT", NULL);
    char key_id[64];
    snprintf(key_id, sizeof key_id, "%s", key);
    json_t *u = must(call("iam:CreateUser", "{\"UserName\":\"grantee8\"}"));
    char arn[256];
    snprintf(arn, sizeof arn, "%s", str(u, "User.Arn"));
    json_decref(u);
    json_t *k = must(call("iam:CreateAccessKey", "{\"UserName\":\"grantee8\"}"));
    char akid[64], secret[128];
    snprintf(akid, sizeof akid, "%s", str(k, "AccessKey.AccessKeyId"));
    snprintf(secret, sizeof secret, "%s", str(k, "AccessKey.SecretAccessKey"));
    json_decref(k);
    json_decref(must(call("CreateGrant",
                          "{\"KeyId\":\"%s\",\"GranteePrincipal\":\"%s\",\"Operations\":"
                          "[\"Encrypt\"],\"Constraints\":{\"EncryptionContextEquals\":"
                          "{\"a\":\"1\"}}}",
                          key_id, arn)));
    setenv("KMS_ACCESS_KEY_ID", akid, 1);
    setenv("KMS_SECRET_ACCESS_KEY", secret, 1);
    kms_client_options o = {.home = home};
    kms_client *grantee = kms_client_open(&o);
    unsetenv("KMS_ACCESS_KEY_ID");
    unsetenv("KMS_SECRET_ACCESS_KEY");
    sodium_memzero(secret, sizeof secret);
    assert_non_null(grantee);
    const kms_context_entry exact[] = {{"a", "1"}};
    const kms_context_entry extra[] = {{"a", "1"}, {"b", "\xff"}};
    const kms_encryption_context ok_ctx = {exact, 1}, bad_ctx = {extra, 2};
    uint8_t *blob = NULL;
    size_t n = 0;
    assert_int_equal(kms_encrypt(grantee, key_id, (const uint8_t *)"x", 1, &ok_ctx, &blob, &n), 0);
    kms_buffer_free(blob);
    blob = NULL;
    assert_int_equal(kms_encrypt(grantee, key_id, (const uint8_t *)"x", 1, &bad_ctx, &blob, &n),
                     -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_non_null(strstr(kms_last_error_message(), "must be UTF-8 text"));
    assert_null(blob);
    kms_client_free(grantee);
}

typedef struct thread_arg {
    const char *key;
    int failures;
} thread_arg;

static void *worker(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 500; i++) {
        uint8_t pt[16], *blob = NULL, *back = NULL;
        size_t n = 0, bn = 0;
        memset(pt, i & 0xff, sizeof pt);
        if (kms_encrypt(client, a->key, pt, sizeof pt, NULL, &blob, &n) != 0 ||
            kms_decrypt(client, a->key, blob, n, NULL, &back, &bn, NULL) != 0 || bn != sizeof pt ||
            memcmp(back, pt, bn) != 0) {
            a->failures++;
        }
        kms_buffer_free(blob);
        kms_secret_free(back, bn);
    }
    return NULL;
}

static void test_threads(void **state)
{
    const char *key = new_key("SYMMETRIC_DEFAULT", NULL);
    pthread_t t[4];
    thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){key, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failures, 0);
    }
}

static void test_home_init_twice(void **state)
{
    char *cfg = NULL;
    FILE *f;
    char path[8400];
    snprintf(path, sizeof path, "%s/config.json", home);
    f = fopen(path, "r");
    assert_non_null(f);
    char before[4096] = {0};
    assert_true(fread(before, 1, sizeof before - 1, f) > 0);
    fclose(f);
    assert_kms_error(kms_home_init(home, NULL), KMS_ERR_ALREADY_EXISTS);
    f = fopen(path, "r");
    assert_non_null(f);
    char after[4096] = {0};
    assert_true(fread(after, 1, sizeof after - 1, f) > 0);
    fclose(f);
    assert_string_equal(before, after);
    (void)cfg;
    /* a non-empty folder that is no home is refused too */
    char other[4200];
    snprintf(other, sizeof other, "%s/other", tmp);
    assert_int_equal(mkdir(other, 0700), 0);
    snprintf(path, sizeof path, "%s/keep.txt", other);
    f = fopen(path, "w");
    fputs("mine", f);
    fclose(f);
    assert_kms_error(kms_home_init(other, NULL), KMS_ERR_HOME);
    assert_int_equal(access(path, F_OK), 0);
    assert_kms_error(kms_home_init(home, &(kms_init_options){.account_id = "12345"}),
                     KMS_ERR_VALIDATION);
}

static void test_open_missing_home(void **state)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/nothing-here", tmp);
    kms_client_options o = {.home = path};
    assert_null(kms_client_open(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_HOME);
    assert_false(access(path, F_OK) == 0);
    kms_client_options p = {.home = home, .profile = "someone"};
    assert_null(kms_client_open(&p));
    assert_int_equal(kms_last_error(), KMS_ERR_UNRECOGNIZED_CLIENT);
}

/* ---- The audit record of each call (src/service/audit_trail.c) ---------------------------- */

/* Every record line of the trail so far, in order (malloc'd text; lines split in place). */
static char *trail_text(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cat %s/audit/segments/*.jsonl", home);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (cap - n < 4096) {
            buf = realloc(buf, cap *= 2);
        }
    }
    pclose(p);
    buf[n] = '\0';
    return buf;
}

/* The newest record (parsed), checking on the way that sequences run 1..N without a gap. */
static json_t *last_record(void)
{
    char *text = trail_text();
    json_t *last = NULL;
    json_int_t expect = 1;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_decref(last);
        last = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(last);
        json_t *seq = json_object_get(json_object_get(last, "auditChain"), "sequence");
        assert_int_equal(json_integer_value(seq), expect++);
    }
    free(text);
    assert_non_null(last);
    return last;
}

static void test_audit_record_fields(void **state)
{
    (void)state;
    const char *key = new_key("SYMMETRIC_DEFAULT", NULL);
    json_t *r = last_record();
    assert_string_equal(str(r, "eventName"), "CreateKey");
    assert_string_equal(str(r, "eventSource"), "kms.amazonaws.com");
    assert_string_equal(str(r, "eventType"), "AwsApiCall");
    assert_string_equal(str(r, "userIdentity.type"), "IAMUser");
    assert_string_equal(str(r, "userIdentity.userName"), "admin");
    assert_string_equal(str(r, "responseElements.keyMetadata.keyId"), key);
    assert_true(json_is_false(json_object_get(r, "readOnly")));
    json_t *res = json_array_get(json_object_get(r, "resources"), 0);
    assert_string_equal(json_string_value(json_object_get(res, "type")), "AWS::KMS::Key");
    assert_non_null(strstr(json_string_value(json_object_get(res, "ARN")), key));
    assert_null(json_object_get(r, "errorCode"));
    json_decref(r);

    json_decref(must(call("Encrypt",
                          "{\"KeyId\":\"%s\",\"Plaintext\":\"c2VjcmV0LXBsYWludGV4dA==\","
                          "\"EncryptionContext\":{\"Dept\":\"Sales\"}}",
                          key)));
    r = last_record();
    assert_string_equal(str(r, "eventName"), "Encrypt");
    assert_string_equal(str(r, "requestParameters.keyId"), key);
    /* Context keys are the caller's data: kept as given, not camelCased. */
    assert_string_equal(str(r, "requestParameters.encryptionContext.Dept"), "Sales");
    assert_null(json_object_get(json_object_get(r, "requestParameters"), "plaintext"));
    assert_true(json_is_null(json_object_get(r, "responseElements")));
    assert_true(json_is_true(json_object_get(r, "readOnly")));
    json_decref(r);

    /* A failure: recorded with AWS's error name and message. */
    assert_call_fails(KMS_ERR_NOT_FOUND, "DescribeKey",
                      "{\"KeyId\":\"11111111-2222-4333-8444-555555555555\"}");
    r = last_record();
    assert_string_equal(str(r, "eventName"), "DescribeKey");
    assert_string_equal(str(r, "errorCode"), "NotFoundException");
    assert_non_null(strstr(str(r, "errorMessage"), "11111111-2222-4333-8444-555555555555"));
    json_decref(r);

    /* An IAM call: its own event source; the secret of a new access key is never recorded. */
    json_decref(must(call("iam:CreateUser", "{\"UserName\":\"auditee\"}")));
    json_t *k = must(call("iam:CreateAccessKey", "{\"UserName\":\"auditee\"}"));
    char secret[128];
    snprintf(secret, sizeof secret, "%s", str(k, "AccessKey.SecretAccessKey"));
    r = last_record();
    assert_string_equal(str(r, "eventSource"), "iam.amazonaws.com");
    assert_string_equal(str(r, "eventName"), "CreateAccessKey");
    assert_string_equal(str(r, "responseElements.accessKey.accessKeyId"),
                        str(k, "AccessKey.AccessKeyId"));
    assert_null(json_object_get(
        json_object_get(json_object_get(r, "responseElements"), "accessKey"), "secretAccessKey"));
    json_decref(r);
    json_decref(must(call("iam:CreateLoginProfile",
                          "{\"UserName\":\"auditee\",\"Password\":\"Never-In-The-Log-1234\"}")));
    /* Refused requests: a parse error does not quote the body, a misspelt member is not
     * recorded. */
    char *resp = NULL;
    assert_int_equal(kms_call(client, "iam:CreateLoginProfile",
                              "{\"UserName\":\"auditee\",\"Password\":\"Hunter2-secret\\u00\"}",
                              &resp),
                     -1);
    assert_call_fails(KMS_ERR_VALIDATION, "iam:CreateLoginProfile",
                      "{\"UserName\":\"auditee\",\"Passwd\":\"Typo-secret-123\"}");
    char *text = trail_text();
    assert_null(strstr(text, "Hunter2-secret"));
    assert_null(strstr(text, "Typo-secret-123"));
    assert_null(strstr(text, secret));
    assert_null(strstr(text, "Never-In-The-Log-1234"));
    assert_null(strstr(text, "c2VjcmV0LXBsYWludGV4dA=="));
    assert_null(strstr(text, "secret-plaintext"));
    free(text);
    json_decref(k);
}

static void test_audit_fail_closed(void **state)
{
    (void)state;
    char dir[1024], away[1024];
    snprintf(dir, sizeof dir, "%s/audit", home);
    snprintf(away, sizeof away, "%s/audit.away", tmp);
    assert_int_equal(rename(dir, away), 0);
    /* Nothing runs while the trail is gone: not even a key creation. */
    assert_call_fails(KMS_ERR_AUDIT, "CreateKey", "{}");
    assert_call_fails(KMS_ERR_AUDIT, "ListKeys", "{}");
    assert_int_equal(rename(away, dir), 0);
    json_t *r = must(call("ListKeys", "{}"));
    json_decref(r);
    r = last_record();
    assert_string_equal(str(r, "eventName"), "ListKeys");
    json_decref(r);
}

/* The credential report goes through the gate as iam:GenerateCredentialReport and
 * iam:GetCredentialReport: init's admin may, a user without a policy is refused, and the refusal
 * is audited. */
static void test_credential_report_gate(void **state)
{
    (void)state;
    assert_call_fails(KMS_ERR_REPORT_NOT_PRESENT, "iam:GetCredentialReport", "{}");
    json_t *g = must(call("iam:GenerateCredentialReport", "{}"));
    assert_string_equal(str(g, "State"), "COMPLETE");
    json_decref(g);
    json_t *rep = must(call("iam:GetCredentialReport", "{}"));
    assert_string_equal(str(rep, "ReportFormat"), "text/csv");
    json_decref(rep);
    json_decref(must(call("iam:CreateUser", "{\"UserName\":\"reportless\"}")));
    json_t *k = must(call("iam:CreateAccessKey", "{\"UserName\":\"reportless\"}"));
    setenv("KMS_ACCESS_KEY_ID", str(k, "AccessKey.AccessKeyId"), 1);
    setenv("KMS_SECRET_ACCESS_KEY", str(k, "AccessKey.SecretAccessKey"), 1);
    kms_client_options o = {.home = home};
    kms_client *user = kms_client_open(&o);
    unsetenv("KMS_ACCESS_KEY_ID");
    unsetenv("KMS_SECRET_ACCESS_KEY");
    json_decref(k);
    assert_non_null(user);
    const char *ops[] = {"iam:GenerateCredentialReport", "iam:GetCredentialReport"};
    for (size_t i = 0; i < 2; i++) {
        char *resp = NULL;
        assert_int_equal(kms_call(user, ops[i], "{}", &resp), -1);
        assert_int_equal(kms_last_error(), KMS_ERR_ACCESS_DENIED);
        assert_null(resp);
        json_t *r = last_record();
        assert_string_equal(str(r, "eventName"), ops[i] + 4);
        assert_string_equal(str(r, "errorCode"), "AccessDeniedException");
        json_decref(r);
    }
    kms_client_free(user);
}

/* Issue 15 item 11: SoftHSM2 reads SOFTHSM2_CONF once per initialisation and every token is
 * labelled "kms", so a second home opened while the first is open would be served the first
 * home's token. It is refused, naming both homes; the first keeps working; once every handle
 * of the first is closed (SoftHSM2 finalised), the second opens on its own token. */
static void test_two_homes_one_process(void **state)
{
    (void)state;
    char other[4200], cmd[9000], conf[4200], real[4096], expected[20000];
    snprintf(other, sizeof other, "%s/second", tmp);
    const char *build = getenv("KMS_BUILD_DIR");
    assert_non_null(build);
    snprintf(cmd, sizeof cmd, "'%s/kmsctl' --home '%s' init >/dev/null", build, other);
    assert_int_equal(system(cmd), 0);
    snprintf(conf, sizeof conf, "%s/hsm/softhsm2.conf", home);
    assert_non_null(realpath(conf, real));
    snprintf(expected, sizeof expected,
             "cannot open the KMS home %s: this process already has the KMS home %s open, and "
             "SoftHSM2 reads one configuration per process (SOFTHSM2_CONF %s), so the second "
             "home would be served the first home's token. Use one SoftHSM2 home per process: "
             "open %s in another process (another kmsctl or kmsd).",
             other, home, real, other);
    kms_client_options o = {.home = other};
    kms_client *second = kms_client_open(&o);
    assert_null(second);
    assert_int_equal(kms_last_error(), KMS_ERR_HOME);
    assert_string_equal(kms_last_error_message(), expected);
    /* init of a third home is refused the same way, and leaves nothing behind */
    char third[4200];
    snprintf(third, sizeof third, "%s/third", tmp);
    assert_kms_error(kms_home_init(third, NULL), KMS_ERR_HOME);
    assert_non_null(strstr(kms_last_error_message(), "Use one SoftHSM2 home per process"));
    assert_int_equal(access(third, F_OK), -1);
    /* the first home still works, on its own token */
    json_decref(must(call("ListKeys", "{}")));
    /* the same home opened twice is no second home */
    o.home = home;
    kms_client *again = kms_client_open(&o);
    assert_non_null(again);
    kms_client_free(again);
    /* every handle of the first closed: the second opens, on its own token (its home id) */
    kms_client_free(client);
    client = NULL;
    o.home = other;
    second = kms_client_open(&o);
    if (second == NULL) {
        fail_msg("open after close: %s", kms_last_error_message());
    }
    kms_client *keep = client;
    client = second;
    json_t *keys = must(call("ListKeys", "{}"));
    assert_int_equal(json_array_size(json_object_get(keys, "Keys")), 0);
    json_decref(keys);
    client = keep;
    kms_client_free(second);
    o.home = home;
    client = kms_client_open(&o);
    assert_non_null(client);
    keys = must(call("ListKeys", "{}"));
    assert_true(json_array_size(json_object_get(keys, "Keys")) > 0);
    json_decref(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_describe),
        cmocka_unit_test(test_create_key_errors),
        cmocka_unit_test(test_describe_unknown),
        cmocka_unit_test(test_encrypt_decrypt_context),
        cmocka_unit_test(test_encryption_context_condition_key_lengths),
        cmocka_unit_test(test_plaintext_limits),
        cmocka_unit_test(test_blob_tampering),
        cmocka_unit_test(test_disabled_and_pending_deletion),
        cmocka_unit_test(test_key_usage),
        cmocka_unit_test(test_re_encrypt),
        cmocka_unit_test(test_generate_data_key),
        cmocka_unit_test(test_generate_random),
        cmocka_unit_test(test_sign_verify_rsa),
        cmocka_unit_test(test_sign_verify_ecdsa),
        cmocka_unit_test(test_rsa_create_describe),
        cmocka_unit_test(test_rsa_encrypt_decrypt),
        cmocka_unit_test(test_rsa_outside_encrypt),
        cmocka_unit_test(test_rsa_plaintext_limits),
        cmocka_unit_test(test_rsa_encryption_errors),
        cmocka_unit_test(test_rsa_re_encrypt),
        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_list_keys),
        cmocka_unit_test(test_grant_tokens_refused_dry_run_checked),
        cmocka_unit_test(test_grant_context_not_utf8),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_home_init_twice),
        cmocka_unit_test(test_open_missing_home),
        cmocka_unit_test(test_audit_record_fields),
        cmocka_unit_test(test_audit_fail_closed),
        cmocka_unit_test(test_credential_report_gate),
        cmocka_unit_test(test_two_homes_one_process),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
