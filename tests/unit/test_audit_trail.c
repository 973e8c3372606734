/* The records the service writes (src/service/audit_trail.c) fail closed: a record is written
 * whole, with every CloudTrail member it must have, or not at all, and then the call fails.
 * Proved by failing each of jansson's allocations of a call in turn. */
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms/kms.h"
#include "testutil.h"

static char *tmp;
static char *home;
static kms_client *client;
static char key_id[64];

/* ---- Failing the Nth allocation -------------------------------------------------------------- */

static size_t alloc_calls;   /* allocations since counting started */
static size_t alloc_fail_at; /* 1-based; 0: none fails */

static void *failing_malloc(size_t n)
{
    if (++alloc_calls == alloc_fail_at) {
        return NULL;
    }
    return malloc(n);
}

static void inject(size_t fail_at)
{
    alloc_calls = 0;
    alloc_fail_at = fail_at;
    json_set_alloc_funcs(failing_malloc, free);
}

static void stop_injecting(void)
{
    json_set_alloc_funcs(malloc, free);
}

/* ---- Reading the trail ----------------------------------------------------------------------- */

static int by_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Reads every record of the trail, in order; asserts that each line is a whole JSON object and
 * that sequences run 1..N without a gap. Returns N; *last (if not NULL) the newest record. */
static size_t read_trail(json_t **last)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/audit/segments", home);
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[64];
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strstr(e->d_name, ".jsonl") != NULL) {
            assert_true(count < 64);
            names[count++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, count, sizeof names[0], by_name);
    json_int_t seq = 0;
    json_t *newest = NULL;
    for (size_t i = 0; i < count; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        free(names[i]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) > 0 && line[0] != '\0') {
            /* An open segment goes on with zeros after its records. */
            assert_int_equal(line[n - 1], '\n');
            json_error_t err;
            json_t *r = json_loadb(line, (size_t)n - 1, JSON_REJECT_DUPLICATES, &err);
            if (r == NULL) {
                fail_msg("a partial record line: %s (%.*s)", err.text, (int)n - 1, line);
            }
            json_t *s = json_object_get(json_object_get(r, "auditChain"), "sequence");
            assert_int_equal(json_integer_value(s), ++seq);
            json_decref(newest);
            newest = r;
        }
        free(line);
        fclose(f);
    }
    if (last != NULL) {
        *last = newest;
    } else {
        json_decref(newest);
    }
    return (size_t)seq;
}

/* The members every CloudTrail record has (CloudTrail User Guide, "CloudTrail record
 * contents"). */
static void assert_complete(json_t *r, bool failed)
{
    static const char *const strings[] = {
        "eventVersion", "eventTime",       "eventSource",        "eventName",
        "awsRegion",    "sourceIPAddress", "userAgent",          "requestID",
        "eventID",      "eventType",       "recipientAccountId",
    };
    if (!json_is_object(json_object_get(r, "userIdentity"))) {
        fail_msg("a record without userIdentity");
    }
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (!json_is_string(json_object_get(r, strings[i]))) {
            char *text = json_dumps(r, JSON_COMPACT);
            fail_msg("a record without %s: %s", strings[i], text);
        }
    }
    if (failed && !json_is_string(json_object_get(r, "errorCode"))) {
        char *text = json_dumps(r, JSON_COMPACT);
        fail_msg("the record of a failed call without errorCode: %s", text);
    }
}

/* ---- The calls ------------------------------------------------------------------------------- */

static int json_call(const char *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int json_call(const char *op, const char *fmt, ...)
{
    char req[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req, sizeof req, fmt, ap);
    va_end(ap);
    char *resp = NULL;
    int rc = kms_call(client, op, req, &resp);
    kms_string_free(resp);
    return rc;
}

/* Not read-only, with a list and nested objects in its parameters (its IAM generation stays,
 * so that each run makes the same allocations). */
static int create_grant(void)
{
    return json_call("CreateGrant",
                     "{\"KeyId\":\"%s\",\"GranteePrincipal\":\"arn:aws:iam::111122223333:root\","
                     "\"Operations\":[\"Encrypt\",\"Decrypt\"],\"Name\":\"oom\","
                     "\"Constraints\":{\"EncryptionContextSubset\":{\"team\":\"blue\"}}}",
                     key_id);
}

/* Fails: its record must carry errorCode. */
static int describe_missing(void)
{
    return json_call("DescribeKey", "{\"KeyId\":\"11111111-2222-4333-8444-555555555555\"}");
}

/* With a response recorded (responseElements) and a resource known from it. */
static int create_alias(void)
{
    static int n;
    return json_call("CreateAlias", "{\"AliasName\":\"alias/oom-%d\",\"TargetKeyId\":\"%s\"}", n++,
                     key_id);
}

/* The typed API: parameters without a JSON request. */
static int typed_encrypt(void)
{
    const kms_context_entry entries[] = {{"Dept", "Sales"}};
    const kms_encryption_context ctx = {entries, 1};
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    int rc = kms_encrypt(client, key_id, (const uint8_t *)"secret", 6, &ctx, &blob, &blob_len);
    kms_buffer_free(blob);
    return rc;
}

/* Runs op with each of its jansson allocations failing in turn (and once more, beyond the
 * last): every run either writes one complete record or fails with no record written, and the
 * trail stays whole. A call that succeeded has a record without errorCode; one that failed,
 * a record with errorCode, except when only the response was lost after the record was written
 * (KMSInternalException). */
static void fail_each_allocation(const char *what, int (*op)(void))
{
    inject(0);
    (void)op();
    stop_injecting();
    size_t total = alloc_calls;
    assert_true(total > 0);
    size_t written = 0, refused = 0;
    for (size_t n = 1; n <= total + 1; n++) {
        size_t before = read_trail(NULL);
        inject(n);
        int rc = op();
        kms_error code = kms_last_error();
        stop_injecting();
        json_t *r = NULL;
        size_t after = read_trail(&r);
        if (after == before) {
            if (rc == 0) {
                fail_msg("%s: allocation %zu failed, the call succeeded without a record", what, n);
            }
            refused++;
        } else {
            assert_int_equal(after, before + 1);
            bool has_error = json_object_get(r, "errorCode") != NULL;
            assert_complete(r, rc != 0 && code != KMS_ERR_INTERNAL);
            if (rc == 0 && has_error) {
                fail_msg("%s: allocation %zu failed, the call succeeded, its record says it "
                         "failed",
                         what, n);
            }
            written++;
        }
        json_decref(r);
    }
    /* Some allocations are the record's own: failing them fails the call without a record. */
    assert_true(refused > 0);
    assert_true(written > 0);
}

static void test_record_fails_closed_json_call(void **state)
{
    (void)state;
    fail_each_allocation("CreateGrant", create_grant);
}

static void test_record_fails_closed_failed_call(void **state)
{
    (void)state;
    fail_each_allocation("DescribeKey", describe_missing);
}

static void test_record_fails_closed_response(void **state)
{
    (void)state;
    fail_each_allocation("CreateAlias", create_alias);
}

/* The typed API's record is written without jansson (util/json_out.h): the call makes no
 * jansson allocation at all, and its record is complete. That writer's own failures fail the
 * call without a record (test_audit_record.c). */
static void test_record_typed_call_without_jansson(void **state)
{
    (void)state;
    assert_int_equal(typed_encrypt(), 0); /* the key policy compiled and cached */
    size_t before = read_trail(NULL);
    inject(0);
    int rc = typed_encrypt();
    stop_injecting();
    assert_int_equal(rc, 0);
    assert_int_equal(alloc_calls, 0);
    json_t *r = NULL;
    assert_int_equal(read_trail(&r), before + 1);
    assert_complete(r, false);
    json_decref(r);
}

/* Text from outside that is not UTF-8 keeps its member in the record ('?' for its bytes). */
static void test_record_not_utf8(void **state)
{
    (void)state;
    kms_client_options o = {.home = home, .user_agent = "agent/\xff\xfe"};
    kms_client *c = kms_client_open(&o);
    assert_non_null(c);
    const kms_context_entry entries[] = {{"Dept\xc3", "Sal\xe9s"}};
    const kms_encryption_context ctx = {entries, 1};
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    assert_int_equal(
        kms_encrypt(c, "alias/missing\xff", (const uint8_t *)"x", 1, &ctx, &blob, &blob_len), -1);
    kms_error code = kms_last_error();
    kms_client_free(c);
    json_t *r = NULL;
    (void)read_trail(&r);
    assert_complete(r, true);
    assert_string_equal(json_string_value(json_object_get(r, "errorCode")), kms_error_name(code));
    assert_string_equal(json_string_value(json_object_get(r, "userAgent")), "agent/??");
    json_t *p = json_object_get(r, "requestParameters");
    assert_string_equal(json_string_value(json_object_get(p, "keyId")), "alias/missing?");
    json_t *c2 = json_object_get(p, "encryptionContext");
    assert_string_equal(json_string_value(json_object_get(c2, "Dept?")), "Sal?s");
    json_decref(r);
}

/* An operation name that is not UTF-8 is refused as unknown, and recorded with '?' for its
 * bytes above 0x7f (it used to fail the record: InternalError and no record). */
static void test_record_unknown_operation_not_utf8(void **state)
{
    (void)state;
    size_t before = read_trail(NULL);
    assert_int_equal(json_call("Frobnicate\xff", "{}"), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_UNKNOWN_OPERATION);
    json_t *r = NULL;
    assert_int_equal(read_trail(&r), before + 1);
    assert_complete(r, true);
    assert_string_equal(json_string_value(json_object_get(r, "eventName")), "Frobnicate?");
    assert_string_equal(json_string_value(json_object_get(r, "errorCode")),
                        kms_error_name(KMS_ERR_UNKNOWN_OPERATION));
    json_decref(r);
}

/* A member name cut to 127 bytes in the middle of a character loses the whole character: the
 * call gets its own error and its record, not InternalError and no record. */
static void test_record_long_member_name(void **state)
{
    (void)state;
    char name[140];
    memset(name, 'a', 126);
    memcpy(name + 126, "\xc3\xa9 bb", 6); /* "é" at bytes 126-127 */
    name[132] = '\0';
    size_t before = read_trail(NULL);
    assert_int_equal(json_call("CreateGrant",
                               "{\"KeyId\": \"alias/nope\", \"GranteePrincipal\": "
                               "\"arn:aws:iam::111122223333:root\", \"Operations\": [\"Encrypt\"], "
                               "\"Constraints\": {\"%s\": {}}}",
                               name),
                     -1);
    kms_error code = kms_last_error();
    assert_int_not_equal(code, KMS_ERR_INTERNAL);
    json_t *r = NULL;
    assert_int_equal(read_trail(&r), before + 1);
    assert_complete(r, true);
    assert_string_equal(json_string_value(json_object_get(r, "errorCode")), kms_error_name(code));
    json_t *c = json_object_get(json_object_get(r, "requestParameters"), "constraints");
    assert_int_equal(json_object_size(c), 1);
    char want[128];
    memset(want, 'a', 126);
    want[126] = '\0';
    assert_non_null(json_object_get(c, want));
    json_decref(r);
}

/* validate-logs reports a file whose name is not UTF-8 (not "out of memory"). */
static void test_report_not_utf8(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/audit/segments/x\xff.jsonl", home);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    char *report = NULL;
    if (kms_validate_logs(client, NULL, NULL, &report) != 0) {
        fail_msg("validate-logs: %s", kms_last_error_message());
    }
    assert_int_equal(unlink(path), 0);
    json_t *r = json_loads(report, 0, NULL);
    kms_string_free(report);
    assert_non_null(r);
    bool found = false;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(r, "Problems"), i, p)
    {
        const char *file = json_string_value(json_object_get(p, "File"));
        const char *message = json_string_value(json_object_get(p, "Message"));
        found = found || (file != NULL && strcmp(file, "segments/x?.jsonl") == 0 &&
                          message != NULL && strstr(message, "x?.jsonl") != NULL);
    }
    assert_true(found);
    json_decref(r);
}

static int setup(void **state)
{
    (void)state;
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
    char *resp = NULL;
    if (kms_call(client, "CreateKey", "{}", &resp) != 0) {
        fprintf(stderr, "CreateKey: %s\n", kms_last_error_message());
        return -1;
    }
    json_t *j = json_loads(resp, 0, NULL);
    kms_string_free(resp);
    snprintf(key_id, sizeof key_id, "%s",
             json_string_value(json_object_get(json_object_get(j, "KeyMetadata"), "KeyId")));
    json_decref(j);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kms_client_free(client);
    kms_test_rmrf(tmp);
    free(home);
    free(tmp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_fails_closed_json_call),
        cmocka_unit_test(test_record_fails_closed_failed_call),
        cmocka_unit_test(test_record_fails_closed_response),
        cmocka_unit_test(test_record_typed_call_without_jansson),
        cmocka_unit_test(test_record_not_utf8),
        cmocka_unit_test(test_report_not_utf8),
        cmocka_unit_test(test_record_unknown_operation_not_utf8),
        cmocka_unit_test(test_record_long_member_name),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
