/* Tags of keys through kms_call: TagResource, UntagResource, ListResourceTags and CreateKey's
 * Tags, their shapes and every exception (KMS API reference), and which condition keys a
 * compiled policy reads (kms_policy_mentions, what the gate asks before reading tags). */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"
#include "policy/policy.h"
#include "testutil.h"

static char *tmp;
static kms_client *client;

static int setup(void **state)
{
    (void)state;
    tmp = kms_test_tmpdir();
    client = kms_test_home_open(tmp);
    return client != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kms_client_free(client);
    kms_test_rmrf(tmp);
    free(tmp);
    return 0;
}

/* kms_call of a request given as a JSON value (taken); the response, or NULL with the error. */
static json_t *call_json(const char *op, json_t *req)
{
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_non_null(text);
    char *resp = NULL;
    int rc = kms_call(client, op, text, &resp);
    free(text);
    if (rc != 0) {
        assert_null(resp);
        return NULL;
    }
    json_t *j = json_loads(resp, 0, NULL);
    kms_string_free(resp);
    assert_non_null(j);
    return j;
}

static json_t *call(const char *op, const char *req_text)
{
    json_t *req = json_loads(req_text, 0, NULL);
    if (req == NULL) {
        fail_msg("bad test request: %s", req_text);
    }
    return call_json(op, req);
}

static void expect_error(kms_error code, const char *op, json_t *req)
{
    json_t *j = call_json(op, req);
    if (j != NULL) {
        fail_msg("%s succeeded, expected %s", op, kms_error_name(code));
    }
    if (kms_last_error() != code) {
        fail_msg("%s failed with %s (%s), expected %s", op, kms_error_name(kms_last_error()),
                 kms_last_error_message(), kms_error_name(code));
    }
}

static char *new_key(const char *tags_json)
{
    char req[1024];
    snprintf(req, sizeof req, "{\"Description\": \"t\"%s%s}", tags_json ? ", \"Tags\": " : "",
             tags_json ? tags_json : "");
    json_t *j = call("CreateKey", req);
    if (j == NULL) {
        fail_msg("CreateKey: %s", kms_last_error_message());
    }
    char *id =
        strdup(json_string_value(json_object_get(json_object_get(j, "KeyMetadata"), "KeyId")));
    json_decref(j);
    return id;
}

/* The tags of key as compact JSON text (malloc'd). */
static char *tags_of(const char *key)
{
    json_t *j = call_json("ListResourceTags", json_pack("{s:s}", "KeyId", key));
    if (j == NULL) {
        fail_msg("ListResourceTags: %s", kms_last_error_message());
    }
    char *text = json_dumps(json_object_get(j, "Tags"), JSON_COMPACT);
    json_decref(j);
    return text;
}

static json_t *tag_req(const char *key, const char *k, const char *v)
{
    return json_pack("{s:s, s:[{s:s, s:s}]}", "KeyId", key, "Tags", "TagKey", k, "TagValue", v);
}

/* n copies of a UTF-8 character (malloc'd). */
static char *repeat(const char *ch, size_t n)
{
    size_t len = strlen(ch);
    char *s = malloc(len * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        memcpy(s + i * len, ch, len);
    }
    s[len * n] = '\0';
    return s;
}

static void test_shapes(void **state)
{
    (void)state;
    char *key = new_key("[{\"TagKey\": \"Project\", \"TagValue\": \"Alpha\"}]");
    char *t = tags_of(key);
    assert_string_equal(t, "[{\"TagKey\":\"Project\",\"TagValue\":\"Alpha\"}]");
    free(t);
    json_t *r = call_json("TagResource", json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "KeyId",
                                                   key, "Tags", "TagKey", "project", "TagValue", "",
                                                   "TagKey", "Project", "TagValue", "Beta"));
    assert_non_null(r);
    assert_int_equal(json_object_size(r), 0); /* TagResource answers {} */
    json_decref(r);
    r = call_json("ListResourceTags", json_pack("{s:s, s:i}", "KeyId", key, "Limit", 1));
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(r, "Truncated")));
    assert_string_equal(json_string_value(json_object_get(r, "NextMarker")), "Project");
    assert_int_equal(json_array_size(json_object_get(r, "Tags")), 1);
    json_decref(r);
    r = call_json("ListResourceTags", json_pack("{s:s, s:s}", "KeyId", key, "Marker", "Project"));
    assert_non_null(r);
    assert_false(json_is_true(json_object_get(r, "Truncated")));
    assert_null(json_object_get(r, "NextMarker"));
    char *rest = json_dumps(json_object_get(r, "Tags"), JSON_COMPACT);
    assert_string_equal(rest, "[{\"TagKey\":\"project\",\"TagValue\":\"\"}]");
    free(rest);
    json_decref(r);
    r = call_json("UntagResource",
                  json_pack("{s:s, s:[s, s]}", "KeyId", key, "TagKeys", "project", "absent"));
    assert_non_null(r);
    assert_int_equal(json_object_size(r), 0);
    json_decref(r);
    t = tags_of(key);
    assert_string_equal(t, "[{\"TagKey\":\"Project\",\"TagValue\":\"Beta\"}]");
    free(t);
    free(key);
}

/* Lengths are counted in characters, as AWS counts them: 128 two-byte letters are a valid key. */
static void test_lengths_in_characters(void **state)
{
    (void)state;
    char *key = new_key(NULL);
    char *k128 = repeat("\xc3\xa9", 128), *k129 = repeat("\xc3\xa9", 129);
    char *v256 = repeat("\xe3\x82\xa2", 256), *v257 = repeat("\xe3\x82\xa2", 257);
    json_t *r = call_json("TagResource", tag_req(key, k128, v256));
    if (r == NULL) {
        fail_msg("TagResource: %s", kms_last_error_message());
    }
    json_decref(r);
    expect_error(KMS_ERR_VALIDATION, "TagResource", tag_req(key, k129, "x"));
    assert_non_null(strstr(kms_last_error_message(), "tags.1.member.tagKey"));
    expect_error(KMS_ERR_VALIDATION, "TagResource", tag_req(key, "x", v257));
    assert_non_null(strstr(kms_last_error_message(), "tags.1.member.tagValue"));
    expect_error(KMS_ERR_VALIDATION, "TagResource", tag_req(key, "", "x"));
    /* Letters and numbers of any script; not symbols (the euro sign is a currency symbol). */
    r = call_json("TagResource", tag_req(key, "\xd0\x9f\xd1\x80\xd0\xbe\xd0\xb5\xd0\xba\xd1\x82",
                                         "\xd9\xa3 \xe4\xb8\x80"));
    assert_non_null(r);
    json_decref(r);
    expect_error(KMS_ERR_TAG, "TagResource", tag_req(key, "price", "5\xe2\x82\xac"));
    free(k128);
    free(k129);
    free(v256);
    free(v257);
    free(key);
}

static void test_exceptions(void **state)
{
    (void)state;
    char *key = new_key("[{\"TagKey\": \"Keep\", \"TagValue\": \"me\"}]");
    char *before = tags_of(key);
    /* TagException: the aws: prefix (any case), characters, a key twice. */
    expect_error(KMS_ERR_TAG, "TagResource", tag_req(key, "aws:x", "y"));
    expect_error(KMS_ERR_TAG, "TagResource", tag_req(key, "Aws:x", "y"));
    expect_error(KMS_ERR_TAG, "TagResource", tag_req(key, "a*b", "y"));
    expect_error(KMS_ERR_TAG, "TagResource", tag_req(key, "a", "semi;colon"));
    expect_error(KMS_ERR_TAG, "TagResource", tag_req(key, "tab\there", "y"));
    expect_error(KMS_ERR_TAG, "TagResource",
                 json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "KeyId", key, "Tags", "TagKey", "D",
                           "TagValue", "1", "TagKey", "D", "TagValue", "2"));
    expect_error(KMS_ERR_TAG, "UntagResource",
                 json_pack("{s:s, s:[s]}", "KeyId", key, "TagKeys", "aws:x"));
    /* ValidationException: shapes. */
    expect_error(KMS_ERR_VALIDATION, "TagResource", json_pack("{s:s}", "KeyId", key));
    expect_error(KMS_ERR_VALIDATION, "TagResource",
                 json_pack("{s:s, s:s}", "KeyId", key, "Tags", "Project=Alpha"));
    expect_error(KMS_ERR_VALIDATION, "TagResource",
                 json_pack("{s:s, s:[{s:s}]}", "KeyId", key, "Tags", "TagKey", "x"));
    expect_error(
        KMS_ERR_VALIDATION, "TagResource",
        json_pack("{s:s, s:[{s:s, s:s}]}", "KeyId", key, "Tags", "Key", "x", "Value", "y"));
    expect_error(
        KMS_ERR_VALIDATION, "TagResource",
        json_pack("{s:s, s:[{s:s, s:i}]}", "KeyId", key, "Tags", "TagKey", "x", "TagValue", 1));
    expect_error(KMS_ERR_VALIDATION, "UntagResource", json_pack("{s:s}", "KeyId", key));
    expect_error(KMS_ERR_VALIDATION, "UntagResource",
                 json_pack("{s:s, s:[i]}", "KeyId", key, "TagKeys", 1));
    expect_error(KMS_ERR_VALIDATION, "ListResourceTags",
                 json_pack("{s:s, s:i}", "KeyId", key, "Limit", 51));
    expect_error(KMS_ERR_VALIDATION, "ListResourceTags",
                 json_pack("{s:s, s:i}", "KeyId", key, "Limit", 0));
    expect_error(KMS_ERR_INVALID_MARKER, "ListResourceTags",
                 json_pack("{s:s, s:s}", "KeyId", key, "Marker", "aws:x"));
    /* The key: unknown, not a key ARN, an alias where a key is required. */
    expect_error(KMS_ERR_NOT_FOUND, "TagResource",
                 tag_req("11111111-2222-4333-8444-555555555555", "a", "b"));
    expect_error(KMS_ERR_NOT_FOUND, "ListResourceTags",
                 json_pack("{s:s}", "KeyId", "11111111-2222-4333-8444-555555555555"));
    expect_error(KMS_ERR_INVALID_ARN, "TagResource",
                 tag_req("arn:aws:kms:us-east-1:111122223333:alias/x", "a", "b"));
    expect_error(KMS_ERR_INVALID_ARN, "ListResourceTags",
                 json_pack("{s:s}", "KeyId", "arn:aws:s3:::bucket"));
    expect_error(KMS_ERR_VALIDATION, "TagResource", tag_req("alias/x", "a", "b"));
    /* LimitExceededException: 50 tags per key. */
    json_t *many = json_array();
    for (int i = 0; i < 50; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        json_array_append_new(many, json_pack("{s:s, s:s}", "TagKey", k, "TagValue", "v"));
    }
    expect_error(KMS_ERR_LIMIT_EXCEEDED, "TagResource",
                 json_pack("{s:s, s:O}", "KeyId", key, "Tags", many));
    json_array_append_new(many, json_pack("{s:s, s:s}", "TagKey", "k50", "TagValue", "v"));
    expect_error(KMS_ERR_LIMIT_EXCEEDED, "TagResource",
                 json_pack("{s:s, s:O}", "KeyId", key, "Tags", many));
    char *after = tags_of(key);
    assert_string_equal(after, before);
    free(after);
    /* CreateKey refuses bad tags before it makes a key. */
    json_t *keys = call("ListKeys", "{}");
    size_t nkeys = json_array_size(json_object_get(keys, "Keys"));
    json_decref(keys);
    expect_error(KMS_ERR_TAG, "CreateKey",
                 json_pack("{s:[{s:s, s:s}]}", "Tags", "TagKey", "aws:x", "TagValue", "y"));
    expect_error(KMS_ERR_LIMIT_EXCEEDED, "CreateKey", json_pack("{s:O}", "Tags", many));
    keys = call("ListKeys", "{}");
    assert_int_equal(json_array_size(json_object_get(keys, "Keys")), nkeys);
    json_decref(keys);
    json_decref(many);
    /* KMSInvalidStateException: a key pending deletion, which still lists its tags. */
    json_t *r = call_json("ScheduleKeyDeletion",
                          json_pack("{s:s, s:i}", "KeyId", key, "PendingWindowInDays", 7));
    assert_non_null(r);
    json_decref(r);
    expect_error(KMS_ERR_INVALID_STATE, "TagResource", tag_req(key, "a", "b"));
    assert_non_null(strstr(kms_last_error_message(), "is pending deletion."));
    expect_error(KMS_ERR_INVALID_STATE, "UntagResource",
                 json_pack("{s:s, s:[s]}", "KeyId", key, "TagKeys", "Keep"));
    after = tags_of(key);
    assert_string_equal(after, before);
    free(after);
    free(before);
    free(key);
}

/* The gate reads tags and aliases only for policies that ask for them. */
static void test_policy_mentions(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"kms:Decrypt\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{"
        "\"aws:ResourceTag/Project\":\"${aws:PrincipalTag/Project}\"}}}]}";
    static const char var_doc[] =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"kms:Decrypt\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{"
        "\"aws:PrincipalTag/Project\":\"${aws:ResourceTag/Project}\"}}}]}";
    static const char alias_doc[] =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"kms:Encrypt\",\"Resource\":\"*\",\"Condition\":{\"ForAnyValue:StringLike\":{"
        "\"KMS:ResourceAliases\":\"alias/finance-*\"}}}]}";
    static const char plain[] = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
                                "\"Allow\",\"Action\":\"kms:*\",\"Resource\":\"*\"}]}";
    kms_policy *p = NULL;
    assert_int_equal(kms_policy_compile(doc, strlen(doc), KMS_POLICY_IDENTITY, "a", &p), 0);
    assert_true(kms_policy_mentions(p, "aws:resourcetag/"));
    assert_false(kms_policy_mentions(p, "kms:resourcealiases"));
    kms_policy_free(p);
    assert_int_equal(kms_policy_compile(var_doc, strlen(var_doc), KMS_POLICY_IDENTITY, "b", &p), 0);
    assert_true(kms_policy_mentions(p, "aws:resourcetag/"));
    kms_policy_free(p);
    assert_int_equal(kms_policy_compile(alias_doc, strlen(alias_doc), KMS_POLICY_IDENTITY, "c", &p),
                     0);
    assert_true(kms_policy_mentions(p, "kms:resourcealiases"));
    assert_false(kms_policy_mentions(p, "aws:resourcetag/"));
    kms_policy_free(p);
    assert_int_equal(kms_policy_compile(plain, strlen(plain), KMS_POLICY_IDENTITY, "d", &p), 0);
    assert_false(kms_policy_mentions(p, "aws:resourcetag/"));
    assert_false(kms_policy_mentions(p, "kms:resourcealiases"));
    kms_policy_free(p);
    assert_false(kms_policy_mentions(NULL, "aws:resourcetag/"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_lengths_in_characters),
        cmocka_unit_test(test_exceptions),
        cmocka_unit_test(test_policy_mentions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
