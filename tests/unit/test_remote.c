/* Unit tests of the remote client (src/remote) that need no server: the signer against AWS's
 * official SigV4 suite (the Authorization it computes equals each case's, byte for byte) and
 * against our own verifier, the operation targets, the standard retry mode (which failures
 * retry, the backoff bounds, the quota), the error names mapped back, credential and region
 * resolution, endpoint checks, the calls that need the home, and the network error. */
#include "testutil.h"
#include "vectors.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kms/kms.h"
#include "kms/server.h"
#include "remote/remote_internal.h"
#include "sigv4/sigv4.h"
#include "util/util.h"

#define MAX_HEADERS 32

/* One case: the signed request's headers but Authorization (and any header its SignedHeaders
 * leaves out: post-sts-header-after adds the token after signing), its body and path. */
typedef struct vcase {
    kms_test_http http;
    kms_sigv4_header headers[MAX_HEADERS];
    char authorization[1024];
} vcase;

/* Keeps the headers to sign: every one but Authorization and those the vector left unsigned. */
static size_t headers_to_sign(vcase *c)
{
    const char *authz = NULL;
    for (size_t i = 0; i < c->http.n; i++) {
        if (strcasecmp(c->http.names[i], "Authorization") == 0) {
            authz = c->http.values[i];
        }
    }
    assert_non_null(authz);
    snprintf(c->authorization, sizeof c->authorization, "%s", authz != NULL ? authz : "");
    const char *sh = strstr(authz, "SignedHeaders=");
    assert_non_null(sh);
    sh += 14;
    size_t sh_len = strcspn(sh, ",");
    size_t k = 0;
    for (size_t i = 0; i < c->http.n; i++) {
        char lower[128];
        size_t len = strlen(c->http.names[i]);
        assert_true(len < sizeof lower);
        for (size_t j = 0; j <= len; j++) {
            lower[j] = (char)tolower((unsigned char)c->http.names[i][j]);
        }
        bool listed = false;
        for (const char *p = sh; p < sh + sh_len;) {
            size_t n = strcspn(p, ";,");
            listed = listed || (n == len && strncmp(p, lower, n) == 0);
            p += n + 1;
        }
        if (strcmp(lower, "authorization") != 0 && listed) {
            c->headers[k].name = c->http.names[i];
            c->headers[k].value = c->http.values[i];
            k++;
        }
    }
    return k;
}

/* The official suite: our signer's Authorization equals the vector's for every case. */
static void test_sign_vectors(void **state)
{
    (void)state;
    char **cases;
    size_t n = kms_test_sigv4_cases(&cases), ran = 0;
    for (size_t i = 0; i < n; i++) {
        const char *cdir = cases[i];
        char *text = kms_test_read_file(cdir, "header-signed-request.txt");
        assert_non_null(text);
        char ctx_path[1300];
        snprintf(ctx_path, sizeof ctx_path, "%s/context.json", cdir);
        json_t *ctx = json_load_file(ctx_path, 0, NULL);
        assert_non_null(ctx);
        json_t *cred = json_object_get(ctx, "credentials");
        vcase c;
        kms_test_http_parse(&c.http, text);
        kms_sigv4_request req = {
            .method = c.http.method,
            .path = c.http.path,
            .query = c.http.query,
            .headers = c.headers,
            .n_headers = headers_to_sign(&c),
            .body = (const uint8_t *)c.http.body,
            .body_len = c.http.body_len,
            .normalize_path = json_is_true(json_object_get(ctx, "normalize")),
        };
        const char *date = NULL;
        for (size_t h = 0; h < req.n_headers; h++) {
            if (strcasecmp(req.headers[h].name, "X-Amz-Date") == 0) {
                date = req.headers[h].value;
            }
        }
        assert_non_null(date);
        char *authz = NULL;
        if (kms_remote_authorization(&req, kms_test_json_str(cred, "access_key_id"),
                                     kms_test_json_str(cred, "secret_access_key"), date,
                                     kms_test_json_str(ctx, "region"),
                                     kms_test_json_str(ctx, "service"), &authz) != 0) {
            fail_msg("%s: %s", cdir, kms_last_error_message());
        }
        if (strcmp(authz, c.authorization) != 0) {
            fail_msg("%s:\n got      %s\n expected %s", cdir, authz, c.authorization);
        }
        free(authz);
        kms_test_http_free(&c.http);
        json_decref(ctx);
        free(text);
        free(cases[i]);
        ran++;
    }
    free(cases);
    print_message("sigv4 signer: %zu cases equal\n", ran);
    assert_true(ran > 20);
}

/* A request as the client sends it (AWS JSON 1.1, session token) passes our verifier, and
 * fails it once the body changes. */
static void test_sign_verify_round_trip(void **state)
{
    (void)state;
    const char *body = "{\"KeyId\":\"alias/x\",\"Plaintext\":\"aGk=\"}";
    kms_sigv4_header h[] = {
        {"host", "127.0.0.1:8443"},
        {"x-amz-date", "20261207T120000Z"},
        {"x-amz-target", "TrentService.Encrypt"},
        {"content-type", "application/x-amz-json-1.1"},
        {"x-amz-security-token", "FQoGZXIvYXdzEXAMPLE"},
        {"Authorization", ""},
    };
    kms_sigv4_request req = {.method = "POST",
                             .path = "/",
                             .query = "",
                             .headers = h,
                             .n_headers = 5,
                             .body = (const uint8_t *)body,
                             .body_len = strlen(body),
                             .normalize_path = 1};
    char *authz = NULL;
    assert_int_equal(kms_remote_authorization(&req, "ASIAEXAMPLE", "secret", "20261207T120000Z",
                                              "eu-west-1", "kms", &authz),
                     0);
    assert_non_null(strstr(authz, "SignedHeaders=content-type;host;x-amz-date;x-amz-security-"
                                  "token;x-amz-target,"));
    assert_non_null(strstr(authz, "Credential=ASIAEXAMPLE/20261207/eu-west-1/kms/aws4_request"));
    h[5].value = authz;
    req.n_headers = 6;
    kms_sigv4_auth auth;
    assert_int_equal(kms_sigv4_parse_authorization(authz, &auth), 0);
    struct tm tm = {.tm_year = 126, .tm_mon = 11, .tm_mday = 7, .tm_hour = 12};
    time_t now = timegm(&tm);
    assert_int_equal(kms_sigv4_verify(&req, &auth, "secret", now, "eu-west-1", "kms"), 0);
    const char *changed = "{\"KeyId\":\"alias/y\",\"Plaintext\":\"aGk=\"}";
    req.body = (const uint8_t *)changed;
    assert_int_equal(kms_sigv4_verify(&req, &auth, "secret", now, "eu-west-1", "kms"), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_BAD_SIGNATURE);
    free(authz);
}

static void assert_target(const char *op, const char *target, const char *service)
{
    char t[160], s[32];
    if (kms_remote_target(op, t, sizeof t, s, sizeof s) != 0) {
        fail_msg("%s: %s", op, kms_last_error_message());
    }
    assert_string_equal(t, target);
    assert_string_equal(s, service);
}

static void test_targets(void **state)
{
    (void)state;
    char t[160], s[32];
    assert_target("Encrypt", "TrentService.Encrypt", "kms");
    assert_target("GenerateDataKeyWithoutPlaintext", "TrentService.GenerateDataKeyWithoutPlaintext",
                  "kms");
    assert_target("acm:RequestCertificate", "CertificateManager.RequestCertificate", "acm");
    assert_target("acm-pca:IssueCertificate", "ACMPrivateCA.IssueCertificate", "acm-pca");
    assert_target("cloudtrail:LookupEvents",
                  "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
                  "cloudtrail");
    const char *query[] = {"iam:CreateUser", "sts:GetCallerIdentity", "organizations:ListAccounts"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(kms_remote_target(query[i], t, sizeof t, s, sizeof s), -1);
        assert_int_equal(kms_last_error(), KMS_ERR_UNSUPPORTED_OPERATION);
        assert_non_null(strstr(kms_last_error_message(), "not available over --endpoint-url"));
    }
    const char *bad[] = {"", "s3:GetObject", "Encrypt\r\nX-Evil: 1", "acm:", "Enc rypt"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(kms_remote_target(bad[i], t, sizeof t, s, sizeof s), -1);
        assert_int_equal(kms_last_error(), KMS_ERR_UNKNOWN_OPERATION);
    }
}

static void test_retry_classify(void **state)
{
    (void)state;
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_OK, 200, NULL), KMS_RETRY_NONE);
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_OK, 400, "ThrottlingException"),
                     KMS_RETRY_THROTTLING);
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_OK, 400, "Throttling"),
                     KMS_RETRY_THROTTLING);
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_OK, 400, "TooManyRequestsException"),
                     KMS_RETRY_THROTTLING);
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_OK, 400, "RequestLimitExceeded"),
                     KMS_RETRY_THROTTLING);
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_OK, 429, NULL), KMS_RETRY_THROTTLING);
    const long transient[] = {500, 502, 503, 504};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_OK, transient[i], "X"),
                         KMS_RETRY_TRANSIENT);
    }
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_OK, 400, "RequestTimeout"),
                     KMS_RETRY_TRANSIENT);
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_CONNECT, 0, NULL),
                     KMS_RETRY_TRANSIENT);
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_TIMEOUT, 0, NULL), KMS_RETRY_TIMEOUT);
    /* The caller's errors and TLS verification failures are final. */
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_FATAL, 0, NULL), KMS_RETRY_NONE);
    const char *final[] = {"NotFoundException",      "AccessDeniedException",
                           "ValidationException",    "InvalidSignatureException",
                           "LimitExceededException", "KMSInternalException"};
    for (size_t i = 0; i < sizeof final / sizeof final[0]; i++) {
        assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_OK, 400, final[i]),
                         KMS_RETRY_NONE);
    }
    assert_int_equal(kms_remote_retry_classify(KMS_TRANSPORT_OK, 501, NULL), KMS_RETRY_NONE);
}

static void test_retry_backoff(void **state)
{
    (void)state;
    /* min(random * 2^(retry-1), 20) seconds, random in [0, 1): full jitter. */
    assert_int_equal(kms_remote_retry_backoff_ms(1, 0.0), 0);
    assert_int_equal(kms_remote_retry_backoff_ms(1, 0.5), 500);
    assert_int_equal(kms_remote_retry_backoff_ms(1, 0.999), 999);
    assert_int_equal(kms_remote_retry_backoff_ms(2, 0.5), 1000);
    assert_int_equal(kms_remote_retry_backoff_ms(2, 0.999), 1998);
    assert_int_equal(kms_remote_retry_backoff_ms(5, 0.999), 15984);
    assert_int_equal(kms_remote_retry_backoff_ms(6, 0.999), KMS_RETRY_MAX_BACKOFF_MS);
    assert_int_equal(kms_remote_retry_backoff_ms(6, 0.5), 16000);
    assert_int_equal(kms_remote_retry_backoff_ms(60, 0.999), KMS_RETRY_MAX_BACKOFF_MS);
    assert_int_equal(kms_remote_retry_backoff_ms(1000, 0.25), KMS_RETRY_MAX_BACKOFF_MS);
    /* Out-of-range inputs stay within the bounds. */
    assert_int_equal(kms_remote_retry_backoff_ms(0, 0.5), 500);
    assert_int_equal(kms_remote_retry_backoff_ms(1, 1.5), 0);
    for (int retry = 1; retry < 70; retry++) {
        for (double u = 0; u < 1; u += 0.0625) {
            long ms = kms_remote_retry_backoff_ms(retry, u);
            assert_true(ms >= 0 && ms <= KMS_RETRY_MAX_BACKOFF_MS);
        }
    }
}

static void test_retry_quota(void **state)
{
    (void)state;
    kms_retry_quota q;
    int cost = -1;
    kms_remote_retry_quota_init(&q);
    assert_int_equal(q.tokens, 500);
    /* 100 retries of 5 tokens empty the bucket; the 101st is refused and takes nothing. */
    for (int i = 0; i < 100; i++) {
        assert_true(kms_remote_retry_quota_acquire(&q, KMS_RETRY_THROTTLING, &cost));
        assert_int_equal(cost, 5);
    }
    assert_int_equal(q.tokens, 0);
    assert_false(kms_remote_retry_quota_acquire(&q, KMS_RETRY_TRANSIENT, &cost));
    assert_int_equal(cost, 0);
    assert_int_equal(q.tokens, 0);
    /* A success after a retry refunds that retry's cost; one at the first attempt adds 1. */
    kms_remote_retry_quota_release(&q, 5);
    assert_int_equal(q.tokens, 5);
    kms_remote_retry_quota_release(&q, 0);
    assert_int_equal(q.tokens, 6);
    /* A timeout costs 10: 6 tokens are not enough, 5 for a throttled retry are. */
    assert_false(kms_remote_retry_quota_acquire(&q, KMS_RETRY_TIMEOUT, &cost));
    assert_true(kms_remote_retry_quota_acquire(&q, KMS_RETRY_THROTTLING, &cost));
    assert_int_equal(q.tokens, 1);
    kms_remote_retry_quota_init(&q);
    assert_true(kms_remote_retry_quota_acquire(&q, KMS_RETRY_TIMEOUT, &cost));
    assert_int_equal(cost, 10);
    assert_int_equal(q.tokens, 490);
    /* Never above 500; a class that is not retried takes nothing. */
    for (int i = 0; i < 50; i++) {
        kms_remote_retry_quota_release(&q, 10);
    }
    assert_int_equal(q.tokens, 500);
    assert_false(kms_remote_retry_quota_acquire(&q, KMS_RETRY_NONE, &cost));
    assert_int_equal(q.tokens, 500);
}

static void test_error_from_name(void **state)
{
    (void)state;
    for (int c = KMS_ERR_NOT_FOUND; c < KMS_ERR__COUNT; c++) {
        assert_int_equal(kms_error_from_name(kms_error_name((kms_error)c)), c);
    }
    assert_int_equal(kms_error_from_name("com.amazonaws.kms#NotFoundException"), KMS_ERR_NOT_FOUND);
    assert_int_equal(kms_error_from_name("ThrottlingException:http://internal.amazon.com/"),
                     KMS_ERR_THROTTLING);
    assert_int_equal(kms_error_from_name("NoSuchEntity"), KMS_ERR_NO_SUCH_ENTITY);
    assert_int_equal(kms_error_from_name("AccessDenied"), KMS_ERR_ACCESS_DENIED);
    assert_int_equal(kms_error_from_name("InvalidStateException"), KMS_ERR_PCA_INVALID_STATE);
    assert_int_equal(kms_error_from_name("KMSInvalidStateException"), KMS_ERR_INVALID_STATE);
    assert_int_equal(kms_error_from_name("SomethingNewException"), KMS_ERR__COUNT);
    assert_int_equal(kms_error_from_name("OK"), KMS_ERR__COUNT);
    assert_int_equal(kms_error_from_name("Exception"), KMS_ERR__COUNT);
    assert_int_equal(kms_error_from_name(""), KMS_ERR__COUNT);
    assert_int_equal(kms_error_from_name(NULL), KMS_ERR__COUNT);
}

/* STS over the query protocol: the form, the XML answer back in kms_call's shape, errors. */
static void test_query_protocol(void **state)
{
    (void)state;
    char *body = NULL;
    assert_true(kms_remote_query_op("sts:AssumeRole"));
    assert_true(kms_remote_query_op("sts:GetCallerIdentity"));
    assert_false(kms_remote_query_op("sts:DecodeAuthorizationMessage"));
    assert_false(kms_remote_query_op("iam:ListUsers"));
    assert_int_equal(
        kms_remote_query_body("sts:AssumeRole",
                              "{\"RoleArn\": \"arn:aws:iam::111122223333:role/r\", "
                              "\"RoleSessionName\": \"s 1~\", \"DurationSeconds\": 900}",
                              &body),
        0);
    assert_non_null(strstr(body, "Action=AssumeRole&Version=2011-06-15&"));
    assert_non_null(strstr(body, "&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fr"));
    assert_non_null(strstr(body, "&RoleSessionName=s%201~"));
    assert_non_null(strstr(body, "&DurationSeconds=900"));
    free(body);
    assert_int_equal(kms_remote_query_body("sts:GetCallerIdentity", NULL, &body), 0);
    assert_string_equal(body, "Action=GetCallerIdentity&Version=2011-06-15");
    free(body);
    assert_int_equal(kms_remote_query_body("sts:AssumeRole", "{\"Tags\": [1]}", &body), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_null(body);

    /* The STS API reference's AssumeRole example, entities added. */
    const char *xml =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
        "  <AssumeRoleResult>\n"
        "  <SourceIdentity>Alice &amp; B&#x6F;b &#233;</SourceIdentity>\n"
        "    <AssumedRoleUser>\n"
        "      <Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn>\n"
        "      <AssumedRoleId>ARO123EXAMPLE123:TestAR</AssumedRoleId>\n"
        "    </AssumedRoleUser>\n"
        "    <Credentials>\n"
        "      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
        "      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
        "      <SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764</SessionToken>\n"
        "      <Expiration>2019-11-09T13:34:41Z</Expiration>\n"
        "    </Credentials>\n"
        "    <PackedPolicySize>6</PackedPolicySize>\n"
        "  </AssumeRoleResult>\n"
        "  <ResponseMetadata>\n"
        "    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</AssumeRoleResponse>\n";
    char *out = NULL;
    assert_int_equal(
        kms_remote_query_response("sts:AssumeRole", (const uint8_t *)xml, strlen(xml), &out), 0);
    json_t *o = json_loads(out, 0, NULL);
    assert_non_null(o);
    json_t *cred = json_object_get(o, "Credentials");
    assert_string_equal(json_string_value(json_object_get(cred, "AccessKeyId")),
                        "ASIAIOSFODNN7EXAMPLE");
    assert_string_equal(json_string_value(json_object_get(cred, "SessionToken")),
                        "AQoDYXdzEPT//////////wEXAMPLEtc764");
    assert_int_equal(json_integer_value(json_object_get(cred, "Expiration")), 1573306481);
    assert_int_equal(json_integer_value(json_object_get(o, "PackedPolicySize")), 6);
    assert_string_equal(json_string_value(json_object_get(o, "SourceIdentity")),
                        "Alice & Bob \xc3\xa9");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "AssumedRoleUser"), "Arn")),
        "arn:aws:sts::123456789012:assumed-role/demo/TestAR");
    json_decref(o);
    free(out);
    const char *who = "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:"
                      "user/a</Arn><UserId>AIDA</UserId><Account>111122223333</Account>"
                      "</GetCallerIdentityResult></GetCallerIdentityResponse>";
    assert_int_equal(
        kms_remote_query_response("sts:GetCallerIdentity", (const uint8_t *)who, strlen(who), &out),
        0);
    assert_string_equal(out, "{\"Arn\":\"arn:aws:iam::1:user/a\",\"UserId\":\"AIDA\",\"Account\":"
                             "\"111122223333\"}");
    free(out);
    /* Another action's answer, and malformed documents: refused. */
    assert_int_equal(
        kms_remote_query_response("sts:AssumeRole", (const uint8_t *)who, strlen(who), &out), -1);
    assert_null(out);
    const char *broken[] = {
        "<AssumeRoleResponse><AssumeRoleResult></AssumeRoleResponse>",
        "<AssumeRoleResponse><AssumeRoleResult>",
        "<AssumeRoleResponse>&bogus;</AssumeRoleResponse>",
        "<AssumeRoleResponse><A>1</A><A>2</A></AssumeRoleResponse>",
        "<AssumeRoleResponse><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>x</a></a></a>"
        "</a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></AssumeRoleResponse>",
        "",
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        assert_int_equal(kms_remote_query_response("sts:AssumeRole", (const uint8_t *)broken[i],
                                                   strlen(broken[i]), &out),
                         -1);
        assert_int_equal(kms_last_error(), KMS_ERR_INTERNAL);
    }
    /* STS's error document: its code is mapped back as the AWS name without "Exception". */
    const char *err = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                      "<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: x is "
                      "not authorized to perform: sts:AssumeRole &lt;r&gt;</Message></Error>"
                      "<RequestId>1</RequestId></ErrorResponse>";
    char code[64], message[256];
    assert_int_equal(kms_remote_query_error((const uint8_t *)err, strlen(err), code, sizeof code,
                                            message, sizeof message),
                     0);
    assert_string_equal(code, "AccessDenied");
    assert_string_equal(message, "User: x is not authorized to perform: sts:AssumeRole <r>");
    assert_int_equal(kms_error_from_name(code), KMS_ERR_ACCESS_DENIED);
    assert_int_equal(kms_remote_query_error((const uint8_t *)who, strlen(who), code, sizeof code,
                                            message, sizeof message),
                     -1);
    assert_string_equal(code, "AccessDenied"); /* left as it was */
}

/* ---- Opening: credentials, region, endpoint ---------------------------------------------- */

static char *tmp;

static void clear_env(void)
{
    const char *vars[] = {
        "KMS_ACCESS_KEY_ID", "KMS_SECRET_ACCESS_KEY", "KMS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "KMS_PROFILE",       "AWS_PROFILE",           "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_DEFAULT_REGION"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        unsetenv(vars[i]);
    }
    setenv("AWS_REGION", "eu-west-3", 1);
}

static int setup(void **state)
{
    (void)state;
    tmp = kms_test_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/home", tmp);
    setenv("KMS_HOME", path, 1); /* no credentials file there */
    setenv("HOME", tmp, 1);
    snprintf(path, sizeof path, "%s/creds", tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* As `aws configure` writes it. */
    fputs("[default]\naws_access_key_id = AKIDEFAULT\naws_secret_access_key = s1\n\n"
          "[ops]\naws_access_key_id = AKIDOPS\naws_secret_access_key = s2\n"
          "aws_session_token = tok2\n",
          f);
    fclose(f);
    clear_env();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kms_test_rmrf(tmp);
    free(tmp);
    return 0;
}

/* The access key id a remote connection resolves (NULL: it failed to open). */
static char *key_of(const kms_remote_options *o)
{
    struct kms_remote *r = kms_remote_open(o);
    if (r == NULL) {
        return NULL;
    }
    char *id = kms_strdup_printf("%s%s%s", r->access_key_id, r->session_token ? "+" : "",
                                 r->session_token ? r->session_token : "");
    kms_remote_free(r);
    return id;
}

static void assert_key(const kms_remote_options *o, const char *expected)
{
    char *id = key_of(o);
    if (id == NULL) {
        fail_msg("expected %s: %s", expected, kms_last_error_message());
    }
    assert_string_equal(id, expected);
    free(id);
}

static void test_credentials_precedence(void **state)
{
    (void)state;
    char file[1024];
    snprintf(file, sizeof file, "%s/creds", tmp);
    kms_remote_options o = {.endpoint_url = "https://127.0.0.1:1", .credentials_file = file};
    clear_env();
    /* The file's default profile, then a named one (with its session token). */
    assert_key(&o, "AKIDEFAULT");
    setenv("KMS_PROFILE", "ops", 1);
    assert_key(&o, "AKIDOPS+tok2");
    unsetenv("KMS_PROFILE");
    /* The environment over the default profile: KMS_ first, then AWS_. */
    setenv("AWS_ACCESS_KEY_ID", "AKIDAWSENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s3", 1);
    setenv("AWS_SESSION_TOKEN", "tok3", 1);
    assert_key(&o, "AKIDAWSENV+tok3");
    setenv("KMS_ACCESS_KEY_ID", "AKIDKMSENV", 1);
    setenv("KMS_SECRET_ACCESS_KEY", "s4", 1);
    assert_key(&o, "AKIDKMSENV");
    /* An explicit profile over the environment; explicit keys over everything. */
    o.profile = "ops";
    assert_key(&o, "AKIDOPS+tok2");
    o.access_key_id = "AKIDGIVEN";
    o.secret_access_key = "s5";
    assert_key(&o, "AKIDGIVEN");
    /* A key id without its secret, in the options or the environment: refused. */
    o.secret_access_key = NULL;
    assert_null(key_of(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_UNRECOGNIZED_CLIENT);
    o.access_key_id = NULL;
    o.profile = NULL;
    unsetenv("KMS_SECRET_ACCESS_KEY");
    assert_null(key_of(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_non_null(strstr(kms_last_error_message(), "KMS_SECRET_ACCESS_KEY"));
    clear_env();
    /* A profile the file lacks, and no file at all: UnrecognizedClientException naming it. */
    o.profile = "nobody";
    assert_null(key_of(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_non_null(strstr(kms_last_error_message(), "nobody"));
    o.profile = NULL;
    o.credentials_file = NULL;
    assert_null(key_of(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_non_null(strstr(kms_last_error_message(), ".aws/credentials"));
    /* Without a file named: AWS_SHARED_CREDENTIALS_FILE, and the home's file before it. */
    setenv("AWS_SHARED_CREDENTIALS_FILE", file, 1);
    assert_key(&o, "AKIDEFAULT");
    char home[1024], home_creds[1100];
    snprintf(home, sizeof home, "%s/home", tmp);
    snprintf(home_creds, sizeof home_creds, "%s/credentials", home);
    assert_int_equal(mkdir(home, 0700), 0);
    FILE *f = fopen(home_creds, "w");
    assert_non_null(f);
    fputs("[default]\naws_access_key_id = AKIDHOME\naws_secret_access_key = s6\n", f);
    fclose(f);
    assert_key(&o, "AKIDHOME");
    unlink(home_creds);
    rmdir(home);
    clear_env();
}

static void test_endpoint(void **state)
{
    (void)state;
    char file[1024];
    snprintf(file, sizeof file, "%s/creds", tmp);
    clear_env();
    kms_remote_options o = {.endpoint_url = "https://127.0.0.1:8443", .credentials_file = file};
    struct kms_remote *r = kms_remote_open(&o);
    assert_non_null(r);
    assert_string_equal(r->host, "127.0.0.1:8443");
    assert_string_equal(r->endpoint, "https://127.0.0.1:8443");
    assert_string_equal(kms_remote_region(r), "eu-west-3");
    kms_remote_free(r);
    o.endpoint_url = "https://[::1]:8443/";
    o.region = "ap-south-2";
    r = kms_remote_open(&o);
    assert_non_null(r);
    assert_string_equal(r->host, "[::1]:8443");
    assert_string_equal(kms_remote_region(r), "ap-south-2");
    kms_remote_free(r);
    o.endpoint_url = "https://kms.example";
    r = kms_remote_open(&o);
    assert_non_null(r);
    assert_string_equal(r->host, "kms.example");
    kms_remote_free(r);
    const char *bad[] = {"http://127.0.0.1:8443", "https://h/path", "https://u:p@h/",
                         "https://h/?q=1",        "not a url",      ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.endpoint_url = bad[i];
        assert_null(kms_remote_open(&o));
        assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    }
    o.endpoint_url = "https://127.0.0.1:8443";
    o.ca_bundle = "/nonexistent/ca.pem";
    assert_null(kms_client_open_remote(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_non_null(strstr(kms_last_error_message(), "/nonexistent/ca.pem"));
}

/* No server on the port: KMSNetworkException naming the endpoint, after the attempts; the
 * region asked of the server fails the same way. The calls that need the home refuse. */
static void test_remote_client(void **state)
{
    (void)state;
    char file[1024];
    snprintf(file, sizeof file, "%s/creds", tmp);
    clear_env();
    kms_remote_options o = {
        .endpoint_url = "https://127.0.0.1:1", .credentials_file = file, .max_attempts = 2};
    kms_client *c = kms_client_open_remote(&o);
    assert_non_null(c);
    char *resp = NULL;
    assert_int_equal(kms_call(c, "ListKeys", "{}", &resp), -1);
    assert_null(resp);
    assert_int_equal(kms_last_error(), KMS_ERR_NETWORK);
    assert_non_null(strstr(kms_last_error_message(), "https://127.0.0.1:1 (2 attempts)"));
    uint8_t *blob = (uint8_t *)1;
    size_t n = 7;
    assert_int_equal(kms_encrypt(c, "alias/x", (const uint8_t *)"hi", 2, NULL, &blob, &n), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_NETWORK);
    assert_null(blob);
    assert_int_equal(n, 0);
    assert_int_equal(kms_call(c, "sts:GetCallerIdentity", "{}", &resp), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_NETWORK);
    assert_int_equal(kms_call(c, "iam:ListUsers", "{}", &resp), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_UNSUPPORTED_OPERATION);
    char *report = NULL;
    assert_int_equal(kms_validate_logs(c, NULL, NULL, &report), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_UNSUPPORTED_OPERATION);
    assert_non_null(strstr(kms_last_error_message(), "server's machine"));
    assert_int_equal(kms_scheduler_run(c, &report), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_UNSUPPORTED_OPERATION);
    assert_int_equal(kms_audit_anchor_get(c, &report), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_UNSUPPORTED_OPERATION);
    assert_int_equal(kms_audit_public_key(c, &report), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_UNSUPPORTED_OPERATION);
    assert_null(report);
    /* The server side's calls are a home's, not a remote client's. */
    assert_string_equal(kms_client_region(c), "eu-west-3");
    assert_int_equal(kms_client_stats(c, &report), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_UNSUPPORTED_OPERATION);
    kms_network_request nreq = {.method = "POST", .path = "/", .operation = "ListKeys"};
    kms_network_result nres;
    assert_int_equal(kms_call_network(c, &nreq, &resp, &nres), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_UNSUPPORTED_OPERATION);
    assert_null(resp);
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_int_equal(kms_crl_get(c, "0123456789abcdef", &der, &der_len), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_UNSUPPORTED_OPERATION);
    assert_int_equal(kms_ocsp_respond(c, (const uint8_t *)"x", 1, &der, &der_len), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_UNSUPPORTED_OPERATION);
    assert_null(der);
    kms_client_free(c);
    /* No region given anywhere: GET /health is asked, and cannot be reached. */
    unsetenv("AWS_REGION");
    assert_null(kms_client_open_remote(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_NETWORK);
    assert_non_null(strstr(kms_last_error_message(), "https://127.0.0.1:1 (2 attempts)"));
    clear_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_vectors),
        cmocka_unit_test(test_sign_verify_round_trip),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_retry_classify),
        cmocka_unit_test(test_retry_backoff),
        cmocka_unit_test(test_retry_quota),
        cmocka_unit_test(test_error_from_name),
        cmocka_unit_test(test_query_protocol),
        cmocka_unit_test(test_credentials_precedence),
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_remote_client),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
