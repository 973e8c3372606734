/* Unit tests of kms_call_network (include/kms/server.h): requests signed here with SigV4, as a
 * client would sign them, authenticated by the service against IAM and run through the gate as
 * their caller; the request context and the record of a network request; which refusals are
 * recorded; kms_client_stats. Every refusal asserts its exact error. */
#include "netutil.h"
#include "testutil.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kms/kms.h"
#include "kms/server.h"
#include "service/network.h"
#include "sigv4/sigv4.h"
#include "util/util.h"

static char ip_key_id[64];  /* its key policy denies Encrypt from outside 203.0.113.0/24 */
static char tls_key_id[64]; /* its key policy denies Encrypt without TLS */

static user alice; /* kms:* and sts:AssumeRole */
static user bob;   /* no permission */
static user carol; /* kms:Encrypt from 192.0.2.0/24 only */
static user eve;   /* kms:*, for counting her refused authentications */
static user frank; /* kms:Encrypt only with a User-Agent of test-agent/... */

static int setup(void **state)
{
    (void)state;
    char policy[2048];
    net_home_open();
    snprintf(policy, sizeof policy,
             "{\"Version\": \"2012-10-17\", \"Statement\": ["
             "{\"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"arn:aws:iam::%s:root\"}, "
             "\"Action\": \"kms:*\", \"Resource\": \"*\"}, "
             "{\"Effect\": \"Deny\", \"Principal\": \"*\", \"Action\": \"kms:Encrypt\", "
             "\"Resource\": \"*\", \"Condition\": {\"NotIpAddress\": {\"aws:SourceIp\": "
             "[\"203.0.113.0/24\", \"127.0.0.1/32\"]}}}]}",
             net_account);
    net_key_create(policy, ip_key_id, sizeof ip_key_id);
    snprintf(policy, sizeof policy,
             "{\"Version\": \"2012-10-17\", \"Statement\": ["
             "{\"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"arn:aws:iam::%s:root\"}, "
             "\"Action\": \"kms:*\", \"Resource\": \"*\"}, "
             "{\"Effect\": \"Deny\", \"Principal\": \"*\", \"Action\": \"kms:Encrypt\", "
             "\"Resource\": \"*\", \"Condition\": {\"Bool\": {\"aws:SecureTransport\": "
             "\"false\"}}}]}",
             net_account);
    net_key_create(policy, tls_key_id, sizeof tls_key_id);
    net_user_create("alice",
                    "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", "
                    "\"Action\": [\"kms:*\", \"sts:AssumeRole\"], \"Resource\": \"*\"}]}",
                    &alice);
    net_user_create("bob", NULL, &bob);
    net_user_create("carol",
                    "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", "
                    "\"Action\": \"kms:Encrypt\", \"Resource\": \"*\", \"Condition\": "
                    "{\"IpAddress\": {\"aws:SourceIp\": \"192.0.2.0/24\"}}}]}",
                    &carol);
    net_user_create("eve",
                    "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", "
                    "\"Action\": \"kms:*\", \"Resource\": \"*\"}]}",
                    &eve);
    net_user_create("frank",
                    "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", "
                    "\"Action\": \"kms:Encrypt\", \"Resource\": \"*\", \"Condition\": "
                    "{\"StringLike\": {\"aws:UserAgent\": \"test-agent/*\"}}}]}",
                    &frank);
    return 0;
}

/* ---- Tests ---------------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    kms_network_result res;
    json_t *resp = NULL;
    char body[2048];
    snprintf(body, sizeof body, "{\"KeyId\": \"%s\", \"Plaintext\": \"aGVsbG8gd29ybGQ=\"}",
             net_key_id);
    assert_int_equal(net_call_as(&alice, "Encrypt", body, NULL, &res, &resp), 0);
    assert_true(res.recorded);
    assert_string_equal(res.account_id, net_account);
    assert_string_equal(res.access_key_id, alice.akid);
    const char *blob = net_str(resp, "CiphertextBlob");
    assert_true(strlen(blob) > 0);
    snprintf(body, sizeof body, "{\"CiphertextBlob\": \"%s\"}", blob);
    json_decref(resp);
    assert_int_equal(net_call_as(&alice, "Decrypt", body, NULL, &res, &resp), 0);
    assert_string_equal(net_str(resp, "Plaintext"), "aGVsbG8gd29ybGQ=");
    json_decref(resp);
    /* An in-process client works as before. */
    json_decref(kms_test_call(net_client, "DescribeKey", "{\"KeyId\": \"%s\"}", net_key_id));
}

static void test_record(void **state)
{
    (void)state;
    kms_network_result res;
    sign_opts o = {.user_agent = "test-agent/1.0 (\xff)", .source_ip = "2001:db8::7"};
    assert_int_equal(net_encrypt_as(&alice, net_key_id, &o, &res), 0);
    json_t *list = net_records_of(alice.akid);
    json_t *r = net_record_with(list, res.request_id);
    assert_non_null(r);
    assert_string_equal(net_str(r, "eventName"), "Encrypt");
    assert_string_equal(net_str(r, "sourceIPAddress"), "2001:db8::7");
    assert_string_equal(net_str(r, "userAgent"), "test-agent/1.0 (?)");
    json_t *tls = json_object_get(r, "tlsDetails");
    assert_string_equal(net_str(tls, "tlsVersion"), "TLSv1.3");
    assert_string_equal(net_str(tls, "cipherSuite"), "TLS_AES_128_GCM_SHA256");
    assert_string_equal(net_str(tls, "clientProvidedHostHeader"), "kms.test:8443");
    json_t *who = json_object_get(r, "userIdentity");
    assert_string_equal(net_str(who, "userName"), "alice");
    assert_string_equal(net_str(who, "accessKeyId"), alice.akid);
    json_decref(list);

    /* Plain HTTP: no tlsDetails. A long user agent is cut. */
    char agent[600];
    memset(agent, 'a', sizeof agent - 1);
    agent[sizeof agent - 1] = '\0';
    sign_opts plain = {.plain_http = true, .user_agent = agent};
    assert_int_equal(net_encrypt_as(&alice, net_key_id, &plain, &res), 0);
    list = net_records_of(alice.akid);
    r = net_record_with(list, res.request_id);
    assert_non_null(r);
    assert_null(json_object_get(r, "tlsDetails"));
    assert_int_equal(strlen(net_str(r, "userAgent")), 256);
    json_decref(list);

    /* In-process records keep this machine and the client's user agent, and no tlsDetails. */
    json_decref(kms_test_call(net_client, "DescribeKey", "{\"KeyId\": \"%s\"}", net_key_id));
    json_t *page = kms_test_call(net_client, "cloudtrail:LookupEvents",
                                 "{\"LookupAttributes\": [{\"AttributeKey\": \"EventName\", "
                                 "\"AttributeValue\": \"DescribeKey\"}], \"MaxResults\": 1}");
    r = json_loads(net_str(json_array_get(json_object_get(page, "Events"), 0), "CloudTrailEvent"),
                   0, NULL);
    assert_non_null(r);
    assert_string_equal(net_str(r, "sourceIPAddress"), "127.0.0.1");
    assert_string_equal(net_str(r, "userAgent"), "libkms/0.1.0");
    assert_null(json_object_get(r, "tlsDetails"));
    assert_int_equal(strlen(net_str(r, "requestID")), 36);
    json_decref(r);
    json_decref(page);
}

/* The access key's last use: the service each request was signed for. */
static const char *last_used_service(const user *u, char *buf, size_t n)
{
    json_t *r =
        kms_test_call(net_client, "iam:GetAccessKeyLastUsed", "{\"AccessKeyId\": \"%s\"}", u->akid);
    snprintf(buf, n, "%s", net_str(json_object_get(r, "AccessKeyLastUsed"), "ServiceName"));
    json_decref(r);
    return buf;
}

static void test_last_used(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(net_call_as(&frank, "sts:GetCallerIdentity", "{}", NULL, NULL, NULL), 0);
    assert_string_equal(last_used_service(&frank, buf, sizeof buf), "sts");
    assert_int_equal(net_encrypt_as(&frank, net_key_id, NULL, NULL), 0);
    assert_string_equal(last_used_service(&frank, buf, sizeof buf), "kms");
}

static void test_changed_body(void **state)
{
    (void)state;
    treq t;
    kms_network_result res;
    char body[256];
    snprintf(body, sizeof body, "{\"KeyId\": \"%s\", \"Plaintext\": \"aGVsbG8=\"}", net_key_id);
    net_sign(&t, &alice, "Encrypt", body, NULL);
    /* The same length, another plaintext. */
    snprintf(t.body, sizeof t.body, "{\"KeyId\": \"%s\", \"Plaintext\": \"aGVsbG9=\"}", net_key_id);
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
    assert_true(res.recorded);
    assert_string_equal(res.account_id, "");
    json_t *list = net_records_of(alice.akid);
    json_t *r = net_record_with(list, res.request_id);
    assert_non_null(r);
    assert_string_equal(net_str(r, "errorCode"), "InvalidSignatureException");
    assert_string_equal(net_str(json_object_get(r, "userIdentity"), "userName"), "alice");
    assert_true(json_is_null(json_object_get(r, "requestParameters")));
    json_decref(list);
}

/* A refused request runs nothing: a CreateAlias with a bad signature creates no alias. */
static void test_refused_runs_nothing(void **state)
{
    (void)state;
    treq t;
    kms_network_result res;
    char body[256];
    snprintf(body, sizeof body, "{\"AliasName\": \"alias/never\", \"TargetKeyId\": \"%s\"}",
             net_key_id);
    net_sign(&t, &alice, "CreateAlias", body, NULL);
    t.auth[strlen(t.auth) - 1] = t.auth[strlen(t.auth) - 1] == '0' ? '1' : '0';
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
    char *resp = NULL;
    assert_kms_error(kms_call(net_client, "DescribeKey", "{\"KeyId\": \"alias/never\"}", &resp),
                     KMS_ERR_NOT_FOUND);
}

static void test_unknown_key(void **state)
{
    (void)state;
    user nobody = {.akid = "AKIAZZZZZZZZZZZZZZZZ", .secret = "x"};
    kms_network_result res;
    assert_kms_error(net_encrypt_as(&nobody, net_key_id, NULL, &res), KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_string_equal(kms_last_error_message(),
                        "The security token included in the request is invalid.");
    assert_false(res.recorded);
    assert_string_equal(res.account_id, "");
    json_t *list = net_records_of(nobody.akid);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    /* A secret that is not the key's own: a known key, a bad signature. */
    user wrong = alice;
    snprintf(wrong.secret, sizeof wrong.secret, "not-the-secret");
    assert_kms_error(net_encrypt_as(&wrong, net_key_id, NULL, &res), KMS_ERR_BAD_SIGNATURE);
    assert_string_equal(kms_last_error_message(),
                        "The request signature we calculated does not match the signature you "
                        "provided. Check your AWS Secret Access Key and signing method. Consult "
                        "the service documentation for details.");
}

static void test_malformed(void **state)
{
    (void)state;
    treq t;
    kms_network_result res;
    net_sign(&t, &alice, "Encrypt", "{}", NULL);
    t.req.header_count = t.n - 2; /* without Authorization and User-Agent */
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_MISSING_AUTH);
    assert_false(res.recorded);
    net_sign(&t, &alice, "Encrypt", "{}", NULL);
    snprintf(t.auth, sizeof t.auth, "AWS4-HMAC-SHA256 Credential=%s", alice.akid);
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_INCOMPLETE_SIGNATURE);
    assert_false(res.recorded);
    /* x-amz-date twice (the second unsigned, which a proxy might read). */
    net_sign(&t, &alice, "Encrypt", "{}", NULL);
    net_header_add(&t, "x-amz-date", "20300101T000000Z");
    t.req.header_count = t.n;
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_INCOMPLETE_SIGNATURE);
    net_sign(&t, &alice, "Encrypt", "{}", NULL);
    net_header_add(&t, "Authorization", t.auth);
    t.req.header_count = t.n;
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_INCOMPLETE_SIGNATURE);
}

static void test_scope(void **state)
{
    (void)state;
    kms_network_result res;
    sign_opts o = {.region = "eu-west-3"};
    assert_kms_error(net_encrypt_as(&alice, net_key_id, &o, &res), KMS_ERR_BAD_SIGNATURE);
    assert_non_null(
        strstr(kms_last_error_message(), "Credential should be scoped to a valid region"));
    assert_true(res.recorded);
    o = (sign_opts){.service = "acm"};
    assert_kms_error(net_encrypt_as(&alice, net_key_id, &o, &res), KMS_ERR_BAD_SIGNATURE);
    assert_string_equal(kms_last_error_message(),
                        "Credential should be scoped to correct service: 'kms'");
    /* sts: operations are signed for sts. */
    json_t *resp = NULL;
    assert_int_equal(net_call_as(&alice, "sts:GetCallerIdentity", "{}", NULL, &res, &resp), 0);
    assert_string_equal(net_str(resp, "Account"), net_account);
    json_decref(resp);
    o = (sign_opts){.service = "kms"};
    assert_kms_error(net_call_as(&alice, "sts:GetCallerIdentity", "{}", &o, &res, NULL),
                     KMS_ERR_BAD_SIGNATURE);
}

static void test_skew(void **state)
{
    (void)state;
    kms_network_result res;
    sign_opts o = {.skew = -360};
    assert_kms_error(net_encrypt_as(&alice, net_key_id, &o, &res), KMS_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(kms_last_error_message(), "Signature expired"));
    o.skew = 360;
    assert_kms_error(net_encrypt_as(&alice, net_key_id, &o, &res), KMS_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(kms_last_error_message(), "Signature not yet current"));
    o.skew = -200;
    assert_int_equal(net_encrypt_as(&alice, net_key_id, &o, &res), 0);
}

static void session_from(json_t *resp, user *u)
{
    json_t *cr = json_object_get(resp, "Credentials");
    snprintf(u->akid, sizeof u->akid, "%s", net_str(cr, "AccessKeyId"));
    snprintf(u->secret, sizeof u->secret, "%s", net_str(cr, "SecretAccessKey"));
    snprintf(u->token, sizeof u->token, "%s", net_str(cr, "SessionToken"));
    assert_memory_equal(u->akid, "ASIA", 4);
}

static void test_sessions(void **state)
{
    (void)state;
    kms_network_result res;
    json_t *resp = NULL;
    user session;
    assert_int_equal(net_call_as(&alice, "sts:GetSessionToken", "{}", NULL, &res, &resp), 0);
    session_from(resp, &session);
    json_decref(resp);
    assert_int_equal(net_encrypt_as(&session, net_key_id, NULL, &res), 0);
    assert_string_equal(res.access_key_id, session.akid);
    sign_opts o = {.no_token = true};
    assert_kms_error(net_encrypt_as(&session, net_key_id, &o, &res), KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_false(res.recorded);
    o = (sign_opts){.wrong_token = "AAAAnotthetoken"};
    assert_kms_error(net_encrypt_as(&session, net_key_id, &o, &res), KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_false(res.recorded);

    /* A role's session. */
    net_role_create("netrole");
    json_decref(kms_test_call(net_client, "iam:PutRolePolicy",
                              "{\"RoleName\": \"netrole\", \"PolicyName\": \"p\", "
                              "\"PolicyDocument\": \"{\\\"Version\\\": \\\"2012-10-17\\\", "
                              "\\\"Statement\\\": [{\\\"Effect\\\": \\\"Allow\\\", "
                              "\\\"Action\\\": \\\"kms:Encrypt\\\", \\\"Resource\\\": "
                              "\\\"*\\\"}]}\"}"));
    char body[256];
    snprintf(body, sizeof body,
             "{\"RoleArn\": \"arn:aws:iam::%s:role/netrole\", \"RoleSessionName\": \"net\"}",
             net_account);
    assert_int_equal(net_call_as(&alice, "sts:AssumeRole", body, NULL, &res, &resp), 0);
    session_from(resp, &session);
    json_decref(resp);
    assert_int_equal(net_encrypt_as(&session, net_key_id, NULL, &res), 0);
    json_t *list = net_records_of(session.akid);
    json_t *r = net_record_with(list, res.request_id);
    assert_non_null(r);
    assert_string_equal(net_str(json_object_get(r, "userIdentity"), "type"), "AssumedRole");
    json_decref(list);
    o = (sign_opts){.no_token = true};
    assert_kms_error(net_encrypt_as(&session, net_key_id, &o, &res), KMS_ERR_UNRECOGNIZED_CLIENT);
    /* The role allows Encrypt only. */
    snprintf(body, sizeof body, "{\"KeyId\": \"%s\"}", net_key_id);
    assert_kms_error(net_call_as(&session, "DescribeKey", body, NULL, &res, NULL),
                     KMS_ERR_ACCESS_DENIED);
}

typedef struct admit_seen {
    int calls;
    char account[13];
    char akid[32];
    char operation[64];
} admit_seen;

static int admit_refuse(void *arg, const char *acct, const char *akid, const char *operation)
{
    admit_seen *s = arg;
    s->calls++;
    snprintf(s->account, sizeof s->account, "%s", acct);
    snprintf(s->akid, sizeof s->akid, "%s", akid);
    snprintf(s->operation, sizeof s->operation, "%s", operation);
    return 1;
}

static void test_admit(void **state)
{
    (void)state;
    treq t;
    kms_network_result res;
    admit_seen seen = {0};
    char body[256];
    snprintf(body, sizeof body, "{\"KeyId\": \"%s\", \"Plaintext\": \"aGVsbG8=\"}", net_key_id);
    net_sign(&t, &alice, "Encrypt", body, NULL);
    t.req.admit = admit_refuse;
    t.req.admit_arg = &seen;
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_THROTTLING);
    assert_string_equal(kms_last_error_message(), "Rate exceeded");
    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.account, net_account);
    assert_string_equal(seen.akid, alice.akid);
    assert_string_equal(seen.operation, "Encrypt");
    assert_true(res.recorded);
    assert_string_equal(res.access_key_id, alice.akid);
    json_t *list = net_records_of(alice.akid);
    json_t *r = net_record_with(list, res.request_id);
    assert_non_null(r);
    assert_string_equal(net_str(r, "errorCode"), "ThrottlingException");
    assert_string_equal(net_str(json_object_get(r, "userIdentity"), "userName"), "alice");
    json_decref(list);
    /* Not asked before the signature verified. */
    net_sign(&t, &alice, "Encrypt", body, NULL);
    t.req.admit = admit_refuse;
    t.req.admit_arg = &seen;
    t.req.body_len--;
    assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
    assert_int_equal(seen.calls, 1);
}

static void test_source_ip(void **state)
{
    (void)state;
    sign_opts inside = {.source_ip = "192.0.2.44"};
    sign_opts outside = {.source_ip = "198.51.100.1"};
    /* An IAM policy's condition. */
    assert_int_equal(net_encrypt_as(&carol, net_key_id, &inside, NULL), 0);
    assert_kms_error(net_encrypt_as(&carol, net_key_id, &outside, NULL), KMS_ERR_ACCESS_DENIED);
    /* A key policy's. */
    sign_opts allowed = {.source_ip = "203.0.113.9"};
    assert_int_equal(net_encrypt_as(&alice, ip_key_id, &allowed, NULL), 0);
    assert_kms_error(net_encrypt_as(&alice, ip_key_id, &inside, NULL), KMS_ERR_ACCESS_DENIED);
    assert_non_null(strstr(kms_last_error_message(), "explicit deny in a resource-based policy"));
}

static void test_secure_transport(void **state)
{
    (void)state;
    sign_opts plain = {.plain_http = true};
    assert_kms_error(net_encrypt_as(&alice, tls_key_id, &plain, NULL), KMS_ERR_ACCESS_DENIED);
    assert_int_equal(net_encrypt_as(&alice, tls_key_id, NULL, NULL), 0);
    /* In-process calls are secure transport. */
    json_decref(kms_test_call(net_client, "Encrypt", "{\"KeyId\": \"%s\", \"Plaintext\": \"aGk=\"}",
                              tls_key_id));
}

static void test_user_agent(void **state)
{
    (void)state;
    sign_opts other = {.user_agent = "curl/8.0"};
    assert_int_equal(net_encrypt_as(&frank, net_key_id, NULL, NULL), 0);
    assert_kms_error(net_encrypt_as(&frank, net_key_id, &other, NULL), KMS_ERR_ACCESS_DENIED);
}

static void test_refusals_recorded(void **state)
{
    (void)state;
    int64_t minute = kms_now() / 60;
    int recorded = 0;
    for (int i = 0; i < 14; i++) {
        kms_network_result res;
        treq t;
        net_sign(&t, &eve, "Encrypt", "{}", NULL);
        t.req.body_len = 1; /* "{": not what was signed */
        assert_kms_error(net_send_req(&t, &res, NULL), KMS_ERR_BAD_SIGNATURE);
        recorded += res.recorded;
    }
    bool same_minute = kms_now() / 60 == minute;
    json_t *list = net_records_of(eve.akid);
    if (same_minute) {
        assert_int_equal(recorded, KMS_NETWORK_REFUSALS_RECORDED);
    } else {
        /* The burst crossed a minute: a fresh allowance in the new one. */
        assert_in_range(recorded, 10, 14);
    }
    assert_int_equal(json_array_size(list), (size_t)recorded);
    json_decref(list);
    /* A good request of hers still works, and is recorded. */
    kms_network_result res;
    assert_int_equal(net_encrypt_as(&eve, net_key_id, NULL, &res), 0);
    assert_true(res.recorded);
}

/* Two callers whose requests alternate each get their own decision. */
static void test_callers_apart(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(net_encrypt_as(&alice, net_key_id, NULL, NULL), 0);
        assert_kms_error(net_encrypt_as(&bob, net_key_id, NULL, NULL), KMS_ERR_ACCESS_DENIED);
        assert_non_null(strstr(kms_last_error_message(), "user/bob"));
    }
    /* An IAM change reaches a cached caller at once. */
    json_decref(kms_test_call(net_client, "iam:PutUserPolicy",
                              "{\"UserName\": \"bob\", \"PolicyName\": \"p\", \"PolicyDocument\": "
                              "\"{\\\"Version\\\": \\\"2012-10-17\\\", \\\"Statement\\\": "
                              "[{\\\"Effect\\\": \\\"Allow\\\", \\\"Action\\\": "
                              "\\\"kms:Encrypt\\\", \\\"Resource\\\": \\\"*\\\"}]}\"}"));
    assert_int_equal(net_encrypt_as(&bob, net_key_id, NULL, NULL), 0);
    json_decref(kms_test_call(net_client, "iam:DeleteUserPolicy",
                              "{\"UserName\": \"bob\", \"PolicyName\": \"p\"}"));
    assert_kms_error(net_encrypt_as(&bob, net_key_id, NULL, NULL), KMS_ERR_ACCESS_DENIED);
    /* A deactivated key stops at once. */
    json_decref(kms_test_call(net_client, "iam:UpdateAccessKey",
                              "{\"UserName\": \"bob\", \"AccessKeyId\": \"%s\", \"Status\": "
                              "\"Inactive\"}",
                              bob.akid));
    assert_kms_error(net_encrypt_as(&bob, net_key_id, NULL, NULL), KMS_ERR_UNRECOGNIZED_CLIENT);
}

/* The same from several threads at once: each request gets its own caller's decision. */
static void *alternate(void *arg)
{
    long failures = 0;
    for (int i = 0; i < 10; i++) {
        const user *u = ((long)arg + i) % 2 == 0 ? &alice : &carol;
        sign_opts o = {.source_ip = "198.51.100.1"}; /* carol's policy wants 192.0.2.0/24 */
        int rc = net_encrypt_as(u, net_key_id, &o, NULL);
        bool denied = rc != 0 && kms_last_error() == KMS_ERR_ACCESS_DENIED;
        failures += u == &alice ? rc != 0 : !denied;
    }
    return (void *)failures;
}

static void test_callers_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    for (long i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, alternate, (void *)i), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *failures = NULL;
        assert_int_equal(pthread_join(t[i], &failures), 0);
        assert_int_equal((long)failures, 0);
    }
}

/* kms_client_stats's figures, parsed: the flush count, records and first bucket. */
static json_t *stats_get(json_int_t *count, json_int_t *records, json_int_t *ones)
{
    char *text = NULL;
    assert_int_equal(kms_client_stats(net_client, &text), 0);
    json_t *s = json_loads(text, 0, NULL);
    kms_string_free(text);
    assert_non_null(s);
    json_t *a = json_object_get(s, "AuditFlushes");
    *count = json_integer_value(json_object_get(a, "Count"));
    *records = json_integer_value(json_object_get(a, "Records"));
    *ones = json_integer_value(json_array_get(json_array_get(json_object_get(a, "Buckets"), 0), 1));
    return s;
}

static void test_stats(void **state)
{
    (void)state;
    json_int_t count = 0, records = 0, ones = 0;
    json_t *s = stats_get(&count, &records, &ones);
    json_t *h = json_object_get(s, "HsmSessions");
    assert_true(json_is_integer(json_object_get(h, "Open")));
    assert_int_equal(json_integer_value(json_object_get(h, "InUse")), 0);
    assert_true(json_integer_value(json_object_get(h, "Max")) > 0);
    /* Sessions are opened as concurrent callers need them (src/hsm): at least one, at most Max. */
    assert_true(json_integer_value(json_object_get(h, "Open")) >= 1);
    assert_true(json_integer_value(json_object_get(h, "Open")) <=
                json_integer_value(json_object_get(h, "Max")));
    assert_true(count > 0);
    assert_true(records >= count);
    json_t *b = json_object_get(json_object_get(s, "AuditFlushes"), "Buckets");
    assert_int_equal(json_array_size(b), 9);
    json_int_t prev = 0;
    for (size_t i = 0; i < 8; i++) {
        json_t *e = json_array_get(b, i);
        assert_int_equal(json_integer_value(json_array_get(e, 0)), (json_int_t)1 << i);
        json_int_t n = json_integer_value(json_array_get(e, 1));
        assert_true(n >= prev && n <= count);
        prev = n;
    }
    assert_string_equal(json_string_value(json_array_get(json_array_get(b, 8), 0)), "+Inf");
    assert_int_equal(json_integer_value(json_array_get(json_array_get(b, 8), 1)), count);
    json_int_t sync =
        json_integer_value(json_object_get(json_object_get(s, "AuditFlushes"), "SyncNanoseconds"));
    json_t *w = json_object_get(s, "WaitNanoseconds");
    json_int_t append = json_integer_value(json_object_get(w, "AuditAppend"));
    assert_true(sync > 0);
    assert_true(append >= sync); /* a record's wait includes its flush's fdatasync */
    const char *waits[] = {"AuditLock", "Database", "HsmSession"};
    for (size_t i = 0; i < 3; i++) {
        assert_true(json_is_integer(json_object_get(w, waits[i])));
        assert_true(json_integer_value(json_object_get(w, waits[i])) >= 0);
    }
    json_decref(s);
    /* One request alone: one flush of one record, and its wait counted. */
    assert_int_equal(net_encrypt_as(&alice, net_key_id, NULL, NULL), 0);
    json_int_t count2 = 0, records2 = 0, ones2 = 0;
    s = stats_get(&count2, &records2, &ones2);
    assert_int_equal(count2, count + 1);
    assert_int_equal(records2, records + 1);
    assert_int_equal(ones2, ones + 1);
    assert_true(json_integer_value(
                    json_object_get(json_object_get(s, "AuditFlushes"), "SyncNanoseconds")) > sync);
    assert_true(json_integer_value(json_object_get(json_object_get(s, "WaitNanoseconds"),
                                                   "AuditAppend")) > append);
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_last_used),
        cmocka_unit_test(test_changed_body),
        cmocka_unit_test(test_refused_runs_nothing),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_skew),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_admit),
        cmocka_unit_test(test_source_ip),
        cmocka_unit_test(test_secure_transport),
        cmocka_unit_test(test_user_agent),
        cmocka_unit_test(test_refusals_recorded),
        cmocka_unit_test(test_callers_apart),
        cmocka_unit_test(test_callers_threads),
        cmocka_unit_test(test_stats),
    };
    return cmocka_run_group_tests(tests, setup, net_teardown);
}
