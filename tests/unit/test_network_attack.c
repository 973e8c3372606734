/* Attacks on kms_call_network (include/kms/server.h) from the outside: requests that try to
 * run as another caller than the one whose secret signed them (sessions' tokens crossed, the
 * snapshot cache after IAM changes), that run before or without authentication, that forge or
 * break records through header content, that fill the trail with refused authentications, and
 * many callers at once from several threads. */
#include "netutil.h"
#include "testutil.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kms/kms.h"
#include "kms/server.h"
#include "service/network.h"
#include "sigv4/sigv4.h"
#include "util/util.h"

static user alice; /* kms:*, sts:* and iam:* */
static user bob;   /* no permission */
static user eve;   /* kms:*, for counting her refused authentications */

static int setup(void **state)
{
    (void)state;
    net_home_open();
    net_user_create("alice",
                    "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", "
                    "\"Action\": [\"kms:*\", \"sts:*\", \"iam:*\"], \"Resource\": \"*\"}]}",
                    &alice);
    net_user_create("bob", NULL, &bob);
    net_user_create("eve",
                    "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", "
                    "\"Action\": \"kms:*\", \"Resource\": \"*\"}]}",
                    &eve);
    return 0;
}

/* ---- Tests ---------------------------------------------------------------------------------- */

static void session_from(json_t *resp, user *u)
{
    json_t *cr = json_object_get(resp, "Credentials");
    snprintf(u->akid, sizeof u->akid, "%s", net_str(cr, "AccessKeyId"));
    snprintf(u->secret, sizeof u->secret, "%s", net_str(cr, "SecretAccessKey"));
    snprintf(u->token, sizeof u->token, "%s", net_str(cr, "SessionToken"));
    assert_memory_equal(u->akid, "ASIA", 4);
}

/* A session of alice's (GetSessionToken over the network). */
static void session_new(user *s)
{
    json_t *resp = NULL;
    assert_int_equal(net_call_as(&alice, "sts:GetSessionToken", "{}", NULL, NULL, &resp), 0);
    session_from(resp, s);
    json_decref(resp);
}

static void assert_invalid_token(int rc, const kms_network_result *res)
{
    assert_kms_error(rc, KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_string_equal(kms_last_error_message(),
                        "The security token included in the request is invalid.");
    assert_false(res->recorded);
    assert_string_equal(res->account_id, "");
}

/* A session's access key with no token, a wrong one, or another session's: AWS answers
 * UnrecognizedClientException, as for an unknown key; an expired session ExpiredTokenException. */
static void test_session_tokens(void **state)
{
    (void)state;
    kms_network_result res;
    user s1, s2;
    session_new(&s1);
    session_new(&s2);
    sign_opts o = {.no_token = true};
    assert_invalid_token(net_encrypt_as(&s1, net_key_id, &o, &res), &res);
    o = (sign_opts){.wrong_token = "AAAAnotthetoken"};
    assert_invalid_token(net_encrypt_as(&s1, net_key_id, &o, &res), &res);
    /* s1's key and secret with s2's token, and s2's key with s1's token signed by s1. */
    o = (sign_opts){.wrong_token = s2.token};
    assert_invalid_token(net_encrypt_as(&s1, net_key_id, &o, &res), &res);
    user crossed = s2;
    snprintf(crossed.secret, sizeof crossed.secret, "%s", s1.secret);
    snprintf(crossed.token, sizeof crossed.token, "%s", s1.token);
    assert_invalid_token(net_encrypt_as(&crossed, net_key_id, NULL, &res), &res);
    /* Both still work as themselves, each its own. */
    assert_int_equal(net_encrypt_as(&s1, net_key_id, NULL, &res), 0);
    assert_string_equal(res.access_key_id, s1.akid);
    assert_int_equal(net_encrypt_as(&s2, net_key_id, NULL, &res), 0);
    assert_string_equal(res.access_key_id, s2.akid);
    /* A long-term key with a session's token is still the long-term key's caller. */
    o = (sign_opts){.wrong_token = s1.token};
    assert_kms_error(net_encrypt_as(&bob, net_key_id, &o, &res), KMS_ERR_ACCESS_DENIED);
    assert_non_null(strstr(kms_last_error_message(), "user/bob"));

    /* s1 expires (its row's expiry moved into the past, as time would; and IAM's generation
     * bumped, as every IAM write does: kms_call_network caches s1's signing key until the
     * session's expiry as it was, or until IAM changes). */
    sqlite3 *db = NULL;
    char path[4096], sql[256];
    snprintf(path, sizeof path, "%s/home/kms.db", net_dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    snprintf(sql, sizeof sql, "UPDATE iam_sessions SET expiry = %lld WHERE access_key_id = '%s'",
             (long long)kms_now() - 1, s1.akid);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fail_msg("%s", err);
    }
    assert_int_equal(sqlite3_changes(db), 1);
    if (sqlite3_exec(db, "UPDATE meta SET value = value + 1 WHERE name = 'iam_generation'", NULL,
                     NULL, &err) != SQLITE_OK) {
        fail_msg("%s", err);
    }
    sqlite3_close(db);
    assert_kms_error(net_encrypt_as(&s1, net_key_id, NULL, &res), KMS_ERR_EXPIRED_TOKEN);
    assert_string_equal(kms_last_error_message(),
                        "The security token included in the request is expired");
    assert_false(res.recorded);
    assert_int_equal(net_encrypt_as(&s2, net_key_id, NULL, &res), 0);
}

/* No Authorization header: MissingAuthenticationTokenException, nothing run, nothing recorded,
 * and never the client's own credentials. */
static void test_missing_authorization(void **state)
{
    (void)state;
    treq t;
    kms_network_result res;
    char body[256];
    snprintf(body, sizeof body,
             "{\"AliasName\": \"alias/unauthenticated\", \"TargetKeyId\": \"%s\"}", net_key_id);
    net_sign(&t, &alice, "CreateAlias", body, NULL);
    /* Authorization is the header before User-Agent: User-Agent takes its place. */
    t.headers[t.n - 2] = t.headers[t.n - 1];
    t.req.header_count = t.n - 1;
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_MISSING_AUTH);
    assert_string_equal(kms_last_error_message(), "Missing Authentication Token");
    assert_false(res.recorded);
    assert_string_equal(res.account_id, "");
    assert_string_equal(res.access_key_id, "");
    char *resp = NULL;
    assert_kms_error(
        kms_call(net_client, "DescribeKey", "{\"KeyId\": \"alias/unauthenticated\"}", &resp),
        KMS_ERR_NOT_FOUND);
    /* No headers at all. */
    t.req.header_count = 0;
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_MISSING_AUTH);
    t.req.headers = NULL;
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_MISSING_AUTH);
    assert_string_equal(kms_error_name(KMS_ERR_MISSING_AUTH),
                        "MissingAuthenticationTokenException");
}

static void policy_put(const char *kind, const char *name, const char *action)
{
    json_decref(kms_test_call(net_client,
                              kind[0] == 'u' ? "iam:PutUserPolicy" : "iam:PutRolePolicy",
                              "{\"%s\": \"%s\", \"PolicyName\": \"p\", \"PolicyDocument\": "
                              "\"{\\\"Version\\\": \\\"2012-10-17\\\", \\\"Statement\\\": "
                              "[{\\\"Effect\\\": \\\"Allow\\\", \\\"Action\\\": "
                              "\\\"%s\\\", \\\"Resource\\\": \\\"*\\\"}]}\"}",
                              kind[0] == 'u' ? "UserName" : "RoleName", name, action));
}

/* The cached snapshot of a caller never outlives an IAM change that concerns it. */
static void test_cache_after_iam_changes(void **state)
{
    (void)state;
    kms_network_result res;
    user gina;
    net_user_create("gina", NULL, &gina);
    /* A managed policy attached, then detached. */
    json_t *p = kms_test_call(net_client, "iam:CreatePolicy",
                              "{\"PolicyName\": \"enc\", \"PolicyDocument\": "
                              "\"{\\\"Version\\\": \\\"2012-10-17\\\", \\\"Statement\\\": "
                              "[{\\\"Effect\\\": \\\"Allow\\\", \\\"Action\\\": "
                              "\\\"kms:Encrypt\\\", \\\"Resource\\\": \\\"*\\\"}]}\"}");
    char arn[256];
    snprintf(arn, sizeof arn, "%s", net_str(json_object_get(p, "Policy"), "Arn"));
    json_decref(p);
    assert_kms_error(net_encrypt_as(&gina, net_key_id, NULL, &res), KMS_ERR_ACCESS_DENIED);
    json_decref(kms_test_call(net_client, "iam:AttachUserPolicy",
                              "{\"UserName\": \"gina\", \"PolicyArn\": \"%s\"}", arn));
    assert_int_equal(net_encrypt_as(&gina, net_key_id, NULL, &res), 0);
    assert_int_equal(net_encrypt_as(&gina, net_key_id, NULL, &res), 0);
    json_decref(kms_test_call(net_client, "iam:DetachUserPolicy",
                              "{\"UserName\": \"gina\", \"PolicyArn\": \"%s\"}", arn));
    assert_kms_error(net_encrypt_as(&gina, net_key_id, NULL, &res), KMS_ERR_ACCESS_DENIED);
    /* Her key deleted: unknown at once, though her snapshot was cached. */
    json_decref(kms_test_call(net_client, "iam:AttachUserPolicy",
                              "{\"UserName\": \"gina\", \"PolicyArn\": \"%s\"}", arn));
    assert_int_equal(net_encrypt_as(&gina, net_key_id, NULL, &res), 0);
    json_decref(kms_test_call(net_client, "iam:DeleteAccessKey",
                              "{\"UserName\": \"gina\", \"AccessKeyId\": \"%s\"}", gina.akid));
    assert_kms_error(net_encrypt_as(&gina, net_key_id, NULL, &res), KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_false(res.recorded);

    /* A role's sessions: its policy removed, then the role deleted (its sessions revoked). */
    char body[256];
    net_role_create("attack");
    policy_put("role", "attack", "kms:Encrypt");
    snprintf(body, sizeof body,
             "{\"RoleArn\": \"arn:aws:iam::%s:role/attack\", \"RoleSessionName\": \"sa\"}",
             net_account);
    json_t *resp = NULL;
    user s, narrow;
    if (net_call_as(&alice, "sts:AssumeRole", body, NULL, &res, &resp) != 0) {
        fail_msg("%s", kms_last_error_message());
    }
    session_from(resp, &s);
    json_decref(resp);
    /* A second session of the same role whose session policy allows only DescribeKey. */
    snprintf(body, sizeof body,
             "{\"RoleArn\": \"arn:aws:iam::%s:role/attack\", \"RoleSessionName\": \"sb\", "
             "\"Policy\": \"{\\\"Version\\\": \\\"2012-10-17\\\", \\\"Statement\\\": "
             "[{\\\"Effect\\\": \\\"Allow\\\", \\\"Action\\\": \\\"kms:DescribeKey\\\", "
             "\\\"Resource\\\": \\\"*\\\"}]}\"}",
             net_account);
    assert_int_equal(net_call_as(&alice, "sts:AssumeRole", body, NULL, &res, &resp), 0);
    session_from(resp, &narrow);
    json_decref(resp);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(net_encrypt_as(&s, net_key_id, NULL, &res), 0);
        assert_kms_error(net_encrypt_as(&narrow, net_key_id, NULL, &res), KMS_ERR_ACCESS_DENIED);
        assert_non_null(strstr(kms_last_error_message(), "session policy"));
    }
    json_decref(kms_test_call(net_client, "iam:DeleteRolePolicy",
                              "{\"RoleName\": \"attack\", \"PolicyName\": \"p\"}"));
    assert_kms_error(net_encrypt_as(&s, net_key_id, NULL, &res), KMS_ERR_ACCESS_DENIED);
    json_decref(kms_test_call(net_client, "iam:DeleteRole", "{\"RoleName\": \"attack\"}"));
    assert_kms_error(net_encrypt_as(&s, net_key_id, NULL, &res), KMS_ERR_EXPIRED_TOKEN);
    assert_false(res.recorded);
    /* A user's session ends with its user. */
    user bobs;
    json_decref(
        kms_test_call(net_client, "iam:PutUserPolicy",
                      "{\"UserName\": \"bob\", \"PolicyName\": \"sts\", \"PolicyDocument\": "
                      "\"{\\\"Version\\\": \\\"2012-10-17\\\", \\\"Statement\\\": "
                      "[{\\\"Effect\\\": \\\"Allow\\\", \\\"Action\\\": "
                      "[\\\"sts:GetSessionToken\\\", \\\"kms:Encrypt\\\"], "
                      "\\\"Resource\\\": \\\"*\\\"}]}\"}"));
    assert_int_equal(net_call_as(&bob, "sts:GetSessionToken", "{}", NULL, &res, &resp), 0);
    session_from(resp, &bobs);
    json_decref(resp);
    assert_int_equal(net_encrypt_as(&bobs, net_key_id, NULL, &res), 0);
    json_decref(kms_test_call(net_client, "iam:DeleteUserPolicy",
                              "{\"UserName\": \"bob\", \"PolicyName\": \"sts\"}"));
    assert_kms_error(net_encrypt_as(&bobs, net_key_id, NULL, &res), KMS_ERR_ACCESS_DENIED);
}

/* The operation is the one the signature's scope names the service of. */
static void test_operation_names(void **state)
{
    (void)state;
    kms_network_result res;
    /* An IAM operation signed for kms, and a KMS one signed for iam: refused. */
    sign_opts o = {.service = "kms"};
    assert_kms_error(
        net_call_as(&alice, "iam:CreateUser", "{\"UserName\": \"mallory\"}", &o, &res, NULL),
        KMS_ERR_BAD_SIGNATURE);
    o = (sign_opts){.service = "iam"};
    assert_kms_error(net_encrypt_as(&alice, net_key_id, &o, &res), KMS_ERR_BAD_SIGNATURE);
    o = (sign_opts){.service = "acm"};
    assert_kms_error(
        net_call_as(&alice, "acm-pca:ListCertificateAuthorities", "{}", &o, &res, NULL),
        KMS_ERR_BAD_SIGNATURE);
    o = (sign_opts){.service = "acm-pca"};
    assert_kms_error(net_call_as(&alice, "acm:ListCertificates", "{}", &o, &res, NULL),
                     KMS_ERR_BAD_SIGNATURE);
    char *resp = NULL;
    assert_kms_error(kms_call(net_client, "iam:GetUser", "{\"UserName\": \"mallory\"}", &resp),
                     KMS_ERR_NO_SUCH_ENTITY);
    /* "kms:Encrypt" is no operation of the API (signed for kms): unknown, and recorded. */
    char body[256];
    snprintf(body, sizeof body, "{\"KeyId\": \"%s\", \"Plaintext\": \"aGVsbG8=\"}", net_key_id);
    assert_kms_error(net_call_as(&alice, "kms:Encrypt", body, NULL, &res, NULL),
                     KMS_ERR_UNKNOWN_OPERATION);
    assert_true(res.recorded);
    /* No operation at all (signed for kms). */
    treq t;
    net_sign(&t, &alice, "Encrypt", body, NULL);
    t.req.operation = NULL;
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_UNKNOWN_OPERATION);
}

/* An operation name of 300 KB: refused as unknown, and still recorded (its name cut). */
static void test_operation_name_huge(void **state)
{
    (void)state;
    kms_network_result res;
    treq t;
    char body[256];
    snprintf(body, sizeof body, "{\"KeyId\": \"%s\", \"Plaintext\": \"aGVsbG8=\"}", net_key_id);
    size_t n = 300 * 1024;
    char *huge = malloc(n + 1);
    assert_non_null(huge);
    memset(huge, 'A', n);
    memcpy(huge, "Encrypt", 7);
    huge[n] = '\0';
    net_sign(&t, &alice, "Encrypt", body, NULL);
    t.req.operation = huge;
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_UNKNOWN_OPERATION);
    assert_true(res.recorded);
    json_t *list = net_records_of(alice.akid);
    json_t *r = net_record_with(list, res.request_id);
    assert_non_null(r);
    assert_int_equal(strlen(net_str(r, "eventName")), 256);
    assert_string_equal(net_str(r, "errorCode"), "UnknownOperationException");
    json_decref(list);
    /* The same from a known key with a bad signature. */
    net_sign(&t, &eve, "Encrypt", body, NULL);
    t.req.operation = huge;
    t.req.body_len--;
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
    assert_true(res.recorded);
    free(huge);
}

/* Header content cannot forge a record or break the trail: quotes, control characters, invalid
 * UTF-8 and very long values in User-Agent and Host end up as text of those members, and the
 * trail still validates. */
static void test_record_injection(void **state)
{
    (void)state;
    static const char *const agents[] = {
        "x\", \"eventName\": \"DeleteKey\", \"userAgent\": \"y",
        "ctl\x01\x1b[31m\r\n\tend",
        "bad\xc3\x28utf8\xf0\x9f\x98",
        "\\u0000\\\" }",
    };
    char long_agent[2000];
    /* 255 ASCII bytes then a 4-byte character across the 256-byte cut, and more. */
    memset(long_agent, 'a', 255);
    snprintf(long_agent + 255, sizeof long_agent - 255, "\xf0\x9f\x98\x80%0500d", 7);
    for (size_t i = 0; i < sizeof agents / sizeof agents[0] + 1; i++) {
        const char *agent = i < sizeof agents / sizeof agents[0] ? agents[i] : long_agent;
        treq t;
        kms_network_result res;
        char body[256];
        snprintf(body, sizeof body, "{\"KeyId\": \"%s\", \"Plaintext\": \"aGVsbG8=\"}", net_key_id);
        sign_opts o = {.user_agent = agent};
        net_sign(&t, &alice, "Encrypt", body, &o);
        /* Host: the signed one; the record's clientProvidedHostHeader. */
        assert_int_equal(net_send_req(&t, &res, NULL), 0);
        json_t *list = net_records_of(alice.akid);
        json_t *r = net_record_with(list, res.request_id);
        assert_non_null(r);
        assert_string_equal(net_str(r, "eventName"), "Encrypt");
        assert_true(strlen(net_str(r, "userAgent")) <= 256);
        if (i == 0 || i == 1 || i == 3) {
            assert_string_equal(net_str(r, "userAgent"), agent);
        }
        json_decref(list);
        /* The same agent on a refused authentication of a known key. */
        net_sign(&t, &eve, "Encrypt", body, &o);
        t.req.body_len--;
        assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
    }
    /* An operation name of the same kinds: unknown, recorded as text. */
    {
        treq u;
        kms_network_result ures;
        net_sign(&u, &alice, "sts:GetCallerIdentity", "{}", NULL);
        u.req.operation = "sts:\x01\xff\"}, \"eventName\": \"DeleteKey";
        assert_kms_error(net_send_req(&u, &ures, NULL), KMS_ERR_UNKNOWN_OPERATION);
        assert_true(ures.recorded);
        json_t *list = net_records_of(alice.akid);
        json_t *r = net_record_with(list, ures.request_id);
        assert_non_null(r);
        assert_string_equal(net_str(r, "eventName"), "\x01?\"}, \"eventName\": \"DeleteKey");
        json_decref(list);
    }
    /* A Host header of the same kinds (signed as it is). */
    treq t;
    kms_network_result res;
    net_sign(&t, &alice, "sts:GetCallerIdentity", "{}", NULL);
    t.headers[1].value = "kms.test\", \"x\": \"\x01\xff";
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
    assert_true(res.recorded);
    char *report = NULL;
    assert_int_equal(kms_validate_logs(net_client, NULL, NULL, &report), 0);
    json_t *rep = json_loads(report, 0, NULL);
    kms_string_free(report);
    assert_non_null(rep);
    if (!json_is_true(json_object_get(rep, "Valid"))) {
        char *dump = json_dumps(rep, JSON_INDENT(1));
        print_message("%s\n", dump);
        free(dump);
    }
    assert_true(json_is_true(json_object_get(rep, "Valid")));
    json_decref(rep);
}

/* Every result has its own request id, the record's when one was written. */
static void test_request_ids(void **state)
{
    (void)state;
    char seen[12][37];
    for (int i = 0; i < 12; i++) {
        kms_network_result res;
        treq t;
        net_sign(&t, &alice, "sts:GetCallerIdentity", "{}", NULL);
        if (i % 3 == 1) {
            t.req.header_count = 0; /* unrecorded */
        } else if (i % 3 == 2) {
            t.req.body_len = 1; /* a refused signature */
        }
        int rc = net_send_req(&t, &res, NULL);
        assert_int_equal(rc, i % 3 == 0 ? 0 : -1);
        snprintf(seen[i], sizeof seen[i], "%s", res.request_id);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(seen[i], seen[j]);
        }
    }
}

static user ivan; /* whose refused authentications are counted */

/* The allowance of recorded refusals is per key and minute, whatever other keys do: a key's count
 * is not forgotten because many other keys were seen since. */
static void test_refusals_bounded(void **state)
{
    (void)state;
    enum { OTHERS = KMS_NETWORK_KEYS + 4 };
    user *others = calloc(OTHERS, sizeof *others);
    assert_non_null(others);
    user judy; /* whose last use is written while there is room */
    net_user_create("ivan", NULL, &ivan);
    net_user_create("judy", NULL, &judy);
    assert_int_equal(net_call_as(&judy, "sts:GetCallerIdentity", "{}", NULL, NULL, NULL), 0);
    for (int i = 0; i < OTHERS; i++) {
        session_new(&others[i]);
    }
    /* The rest within one minute. */
    if (kms_now() % 60 > 50) {
        sleep((unsigned)(60 - kms_now() % 60));
    }
    int64_t minute = kms_now() / 60;
    int recorded = 0;
    for (int i = 0; i < KMS_NETWORK_REFUSALS_RECORDED + 2; i++) {
        kms_network_result res;
        treq t;
        net_sign(&t, &ivan, "Encrypt", "{}", NULL);
        t.req.body_len = 1;
        assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
        recorded += res.recorded;
    }
    for (int i = 0; i < OTHERS; i++) {
        kms_network_result res;
        treq t;
        net_sign(&t, &others[i], "Encrypt", "{}", NULL);
        t.req.body_len = 1;
        assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
    }
    for (int i = 0; i < 5; i++) {
        kms_network_result res;
        treq t;
        net_sign(&t, &ivan, "Encrypt", "{}", NULL);
        t.req.body_len = 1;
        assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
        recorded += res.recorded;
    }
    /* Every entry holds refusals of this minute: an authenticated request writes no last use
     * (else anyone who knows 256 keys could make every request write to IAM). */
    assert_kms_error(net_encrypt_as(&judy, net_key_id, NULL, NULL), KMS_ERR_ACCESS_DENIED);
    json_t *used = kms_test_call(net_client, "iam:GetAccessKeyLastUsed",
                                 "{\"AccessKeyId\": \"%s\"}", judy.akid);
    const char *service = net_str(json_object_get(used, "AccessKeyLastUsed"), "ServiceName");
    if (kms_now() / 60 == minute) {
        assert_string_equal(service, "sts");
        assert_int_equal(recorded, KMS_NETWORK_REFUSALS_RECORDED);
    } else {
        print_message("the burst crossed a minute: not counted\n");
    }
    json_decref(used);
    free(others);
}

/* Many threads, callers alternating on one client: each request its own caller's decision. */
typedef struct stress {
    user s; /* a session of alice's */
    long id;
} stress;

static stress stress_arg[8];

static void *stress_run(void *arg)
{
    stress *a = arg;
    long failures = 0;
    for (int i = 0; i < 24; i++) {
        int pick = (int)((a->id + i) % 3);
        const user *u = pick == 0 ? &alice : pick == 1 ? &bob : &a->s;
        kms_network_result res;
        int rc = net_encrypt_as(u, net_key_id, NULL, &res);
        if (u == &bob) {
            failures += !(rc != 0 && kms_last_error() == KMS_ERR_ACCESS_DENIED &&
                          strstr(kms_last_error_message(), "user/bob") != NULL);
        } else {
            failures += rc != 0 || strcmp(res.access_key_id, u->akid) != 0;
        }
    }
    return (void *)failures;
}

static void test_stress_threads(void **state)
{
    (void)state;
    pthread_t t[8];
    for (long i = 0; i < 8; i++) {
        stress_arg[i].id = i;
        session_new(&stress_arg[i].s);
    }
    for (long i = 0; i < 8; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, stress_run, &stress_arg[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        void *failures = NULL;
        assert_int_equal(pthread_join(t[i], &failures), 0);
        assert_int_equal((long)failures, 0);
    }
}

/* A key ARN naming another account or region, with this home's key id, is not that key: another
 * account's is AccessDeniedException (no key policy of that account allows the caller, as AWS
 * answers), another region's NotFoundException. */
static void test_foreign_key_arn(void **state)
{
    (void)state;
    kms_network_result res;
    char arn[256];
    snprintf(arn, sizeof arn, "arn:aws:kms:%s:111122223333:key/%s", net_region, net_key_id);
    assert_kms_error(net_encrypt_as(&alice, arn, NULL, &res), KMS_ERR_ACCESS_DENIED);
    snprintf(arn, sizeof arn, "arn:aws:kms:eu-north-9:%s:key/%s", net_account, net_key_id);
    assert_kms_error(net_encrypt_as(&alice, arn, NULL, &res), KMS_ERR_NOT_FOUND);
    snprintf(arn, sizeof arn, "arn:aws:kms:%s:%s:key/%s", net_region, net_account, net_key_id);
    assert_int_equal(net_encrypt_as(&alice, arn, NULL, &res), 0);
}

/* A member account's administrator does not read the management account's records
 * (CloudTrail: an account's trail holds the events of that account). */
static void test_member_trail(void **state)
{
    (void)state;
    kms_network_result res;
    char *text = NULL;
    if (kms_call(net_client, "organizations:CreateOrganization", "{}", &text) == 0) {
        kms_string_free(text);
    }
    json_t *out = kms_test_call(net_client, "organizations:CreateAccount",
                                "{\"Email\": \"m@example.com\", \"AccountName\": \"Member\"}");
    char member[13], body[256];
    snprintf(member, sizeof member, "%s",
             net_str(json_object_get(out, "CreateAccountStatus"), "AccountId"));
    json_decref(out);
    snprintf(body, sizeof body,
             "{\"RoleArn\": \"arn:aws:iam::%s:role/OrganizationAccountAccessRole\", "
             "\"RoleSessionName\": \"mm\"}",
             member);
    json_t *resp = NULL;
    user m;
    assert_int_equal(net_call_as(&alice, "sts:AssumeRole", body, NULL, &res, &resp), 0);
    session_from(resp, &m);
    json_decref(resp);
    /* Alice's own request in the management account. */
    assert_int_equal(net_encrypt_as(&alice, net_key_id, NULL, &res), 0);
    snprintf(body, sizeof body,
             "{\"LookupAttributes\": [{\"AttributeKey\": \"AccessKeyId\", \"AttributeValue\": "
             "\"%s\"}]}",
             alice.akid);
    /* The trail holds every account's records: a member account reads none of it. */
    assert_kms_error(net_call_as(&m, "cloudtrail:LookupEvents", body, NULL, &res, NULL),
                     KMS_ERR_ACCESS_DENIED);
    assert_true(res.recorded);
    assert_kms_error(net_call_as(&m, "cloudtrail:GetUsageReport", "{}", NULL, &res, NULL),
                     KMS_ERR_ACCESS_DENIED);
    /* Nor its keys: ListKeys lists the caller's account's keys. */
    json_t *keys = NULL;
    assert_int_equal(net_call_as(&m, "ListKeys", "{}", NULL, &res, &keys), 0);
    assert_int_equal(json_array_size(json_object_get(keys, "Keys")), 0);
    json_decref(keys);
    assert_int_equal(net_call_as(&alice, "ListKeys", "{}", NULL, &res, &keys), 0);
    assert_true(json_array_size(json_object_get(keys, "Keys")) > 0);
    json_decref(keys);
    {
        char alice_arn[128];
        snprintf(alice_arn, sizeof alice_arn, "arn:aws:iam::%s:user/alice", net_account);
        json_decref(kms_test_call(net_client, "CreateGrant",
                                  "{\"KeyId\": \"%s\", \"GranteePrincipal\": \"%s\", "
                                  "\"RetiringPrincipal\": \"%s\", \"Operations\": [\"Decrypt\"]}",
                                  net_key_id, alice_arn, alice_arn));
        snprintf(body, sizeof body, "{\"RetiringPrincipal\": \"%s\"}", alice_arn);
        /* Nor the grants of its keys that a principal may retire. */
        json_t *g = NULL;
        assert_int_equal(net_call_as(&m, "ListRetirableGrants", body, NULL, &res, &g), 0);
        assert_int_equal(json_array_size(json_object_get(g, "Grants")), 0);
        json_decref(g);
        assert_int_equal(net_call_as(&alice, "ListRetirableGrants", body, NULL, &res, &g), 0);
        assert_int_equal(json_array_size(json_object_get(g, "Grants")), 1);
        json_decref(g);
    }
    /* The management account's reader still reads it. */
    assert_int_equal(net_call_as(&alice, "sts:GetCallerIdentity", "{}", NULL, &res, NULL), 0);
    json_t *list = net_records_of(alice.akid);
    assert_true(json_array_size(list) > 0);
    json_decref(list);
}

/* Headers as a front end might hand them: a NULL value, a NULL name. */
static void test_header_nulls(void **state)
{
    (void)state;
    treq t;
    kms_network_result res;
    net_sign(&t, &alice, "sts:GetCallerIdentity", "{}", NULL);
    net_header_add(&t, "X-Extra", NULL);
    net_header_add(&t, NULL, "v");
    t.req.header_count = t.n;
    assert_int_equal(net_send_req(&t, &res, NULL), 0);
    net_sign(&t, &alice, "sts:GetCallerIdentity", "{}", NULL);
    t.headers[t.n - 2].value = NULL; /* Authorization */
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_INCOMPLETE_SIGNATURE);
    net_sign(&t, &alice, "sts:GetCallerIdentity", "{}", NULL);
    t.headers[1].value = NULL; /* Host, signed */
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_tokens),
        cmocka_unit_test(test_missing_authorization),
        cmocka_unit_test(test_cache_after_iam_changes),
        cmocka_unit_test(test_operation_names),
        cmocka_unit_test(test_operation_name_huge),
        cmocka_unit_test(test_record_injection),
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_stress_threads),
        cmocka_unit_test(test_refusals_bounded),
        cmocka_unit_test(test_foreign_key_arn),
        cmocka_unit_test(test_member_trail),
        cmocka_unit_test(test_header_nulls),
    };
    return cmocka_run_group_tests(tests, setup, net_teardown);
}
