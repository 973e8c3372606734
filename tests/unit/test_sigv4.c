/* Unit tests of the SigV4 verifier (src/sigv4/sigv4.h) on AWS's official suite, read at run time
 * from the shared vectors (sigv4/<case>/): every case's canonical request, string to sign and
 * signature byte for byte, its signed request accepted, and every change to a signed part
 * refused; clock skew; the Authorization parser's refusals. */
#include "testutil.h"
#include "vectors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kms/kms.h"
#include "sigv4/sigv4.h"
#include "util/error.h"

#define MAX_HEADERS 32

/* One case of the suite: header-signed-request.txt parsed, and context.json. */
typedef struct vcase {
    char *dir;
    kms_test_http http;
    kms_sigv4_header headers[MAX_HEADERS];
    const char *authorization;
    char secret[128];
    char region[64];
    char service[64];
    int normalize;
    time_t ts;
} vcase;

/* c's request parsed from text: its headers to sign with, and its Authorization. */
static void parse_request(vcase *c, const char *text)
{
    kms_test_http_parse(&c->http, text);
    for (size_t i = 0; i < c->http.n; i++) {
        c->headers[i].name = c->http.names[i];
        c->headers[i].value = c->http.values[i];
        if (strcasecmp(c->http.names[i], "Authorization") == 0) {
            c->authorization = c->http.values[i];
        }
    }
    assert_non_null(c->authorization);
}

static void load_case(vcase *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    c->dir = strdup(dir);
    char ctx_path[1024];
    snprintf(ctx_path, sizeof ctx_path, "%s/context.json", dir);
    json_t *ctx = json_load_file(ctx_path, 0, NULL);
    assert_non_null(ctx);
    json_t *cred = json_object_get(ctx, "credentials");
    snprintf(c->secret, sizeof c->secret, "%s", kms_test_json_str(cred, "secret_access_key"));
    snprintf(c->region, sizeof c->region, "%s", kms_test_json_str(ctx, "region"));
    snprintf(c->service, sizeof c->service, "%s", kms_test_json_str(ctx, "service"));
    c->normalize = json_is_true(json_object_get(ctx, "normalize"));
    struct tm tm = {0};
    assert_int_equal(sscanf(kms_test_json_str(ctx, "timestamp"), "%d-%d-%dT%d:%d:%dZ", &tm.tm_year,
                            &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    c->ts = timegm(&tm);
    json_decref(ctx);
    char *text = kms_test_read_file(dir, "header-signed-request.txt");
    assert_non_null(text);
    parse_request(c, text);
    free(text);
}

static void free_case(vcase *c)
{
    kms_test_http_free(&c->http);
    free(c->dir);
}

static kms_sigv4_request request_of(const vcase *c)
{
    kms_sigv4_request r = {
        .method = c->http.method,
        .path = c->http.path,
        .query = c->http.query,
        .headers = c->headers,
        .n_headers = c->http.n,
        .body = (const uint8_t *)c->http.body,
        .body_len = c->http.body_len,
        .normalize_path = c->normalize,
    };
    return r;
}

/* 0 when req with Authorization authz verifies at now under c's secret, region and service.
 * kms_sigv4_verify_with_key, given the signing key derived for auth's scope, must agree with
 * kms_sigv4_verify on every request: the same result, the same error and the same message. */
static int verify(const vcase *c, const kms_sigv4_request *req, const char *authz, time_t now)
{
    kms_sigv4_auth auth;
    uint8_t key[32];
    char message[1024];
    if (kms_sigv4_parse_authorization(authz, &auth) != 0) {
        return -1;
    }
    assert_int_equal(kms_sigv4_signing_key(c->secret, auth.date, auth.region, auth.service, key),
                     0);
    int with_key = kms_sigv4_verify_with_key(req, &auth, key, now, c->region, c->service);
    kms_error with_key_error = kms_last_error();
    snprintf(message, sizeof message, "%s", kms_last_error_message());
    kms_error_clear();
    int rc = kms_sigv4_verify(req, &auth, c->secret, now, c->region, c->service);
    if (rc != with_key || (rc != 0 && (kms_last_error() != with_key_error ||
                                       strcmp(kms_last_error_message(), message) != 0))) {
        fail_msg("%s: kms_sigv4_verify (%d, %s) and kms_sigv4_verify_with_key (%d, %s) disagree",
                 c->dir, rc, kms_last_error_message(), with_key, message);
    }
    return rc;
}

static void assert_refused(const vcase *c, const kms_sigv4_request *req, const char *authz,
                           time_t now, const char *what)
{
    int rc = verify(c, req, authz, now);
    if (rc == 0) {
        fail_msg("%s: accepted with %s changed", c->dir, what);
    }
    kms_error e = kms_last_error();
    if (e != KMS_ERR_BAD_SIGNATURE && e != KMS_ERR_INCOMPLETE_SIGNATURE) {
        fail_msg("%s: %s changed: unexpected error %s", c->dir, what, kms_error_name(e));
    }
}

static void assert_file_equal(const vcase *c, const char *file, const char *got)
{
    char *want = kms_test_read_file(c->dir, file);
    assert_non_null(want);
    if (strcmp(want, got) != 0) {
        fail_msg("%s/%s differs:\n--- want\n%s\n--- got\n%s", c->dir, file, want, got);
    }
    free(want);
}

static void check_known_answers(const vcase *c, const kms_sigv4_auth *auth)
{
    kms_sigv4_request req = request_of(c);
    char *canonical = NULL;
    char *sts = NULL;
    char scope[256];
    char sig[65];
    const char *amz_date = NULL;
    for (size_t i = 0; i < c->http.n; i++) {
        if (strcasecmp(c->http.names[i], "x-amz-date") == 0) {
            amz_date = c->http.values[i];
        }
    }
    assert_non_null(amz_date);
    assert_int_equal(kms_sigv4_canonical_request(&req, auth->signed_headers, &canonical), 0);
    assert_file_equal(c, "header-canonical-request.txt", canonical);
    snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", auth->date, auth->region, auth->service);
    assert_int_equal(kms_sigv4_string_to_sign(amz_date, scope, canonical, &sts), 0);
    assert_file_equal(c, "header-string-to-sign.txt", sts);
    assert_int_equal(kms_sigv4_sign(c->secret, auth->date, auth->region, auth->service, sts, sig),
                     0);
    assert_file_equal(c, "header-signature.txt", sig);
    assert_string_equal(sig, auth->signature);
    free(canonical);
    free(sts);
}

/* Every signed part changed in turn: each change refused. */
static void check_mutations(const vcase *c, const kms_sigv4_auth *auth)
{
    kms_sigv4_request base = request_of(c);
    kms_sigv4_request req;
    char buf[4096];

    req = base;
    req.method = strcmp(c->http.method, "GET") == 0 ? "POST" : "GET";
    assert_refused(c, &req, c->authorization, c->ts, "the method");

    req = base;
    snprintf(buf, sizeof buf, "%sx", c->http.path);
    req.path = buf;
    assert_refused(c, &req, c->authorization, c->ts, "the path");

    req = base;
    snprintf(buf, sizeof buf, "%s%s", c->http.query, c->http.query[0] != '\0' ? "x" : "a=b");
    req.query = buf;
    assert_refused(c, &req, c->authorization, c->ts, "a query parameter");
    if (c->http.query[0] != '\0') {
        snprintf(buf, sizeof buf, "%s&zz=1", c->http.query);
        assert_refused(c, &req, c->authorization, c->ts, "the query (a parameter added)");
    }

    /* Each signed header's value (its first occurrence). */
    for (const char *p = auth->signed_headers; *p != '\0';) {
        size_t n = strcspn(p, ";");
        kms_sigv4_header hs[MAX_HEADERS];
        size_t i;
        memcpy(hs, c->headers, sizeof hs);
        for (i = 0; i < c->http.n; i++) {
            if (strlen(hs[i].name) == n && strncasecmp(hs[i].name, p, n) == 0) {
                break;
            }
        }
        assert_true(i < c->http.n);
        snprintf(buf, sizeof buf, "%sx", hs[i].value);
        hs[i].value = buf;
        req = base;
        req.headers = hs;
        assert_refused(c, &req, c->authorization, c->ts, hs[i].name);
        if (n == 10 && strncmp(p, "x-amz-date", 10) == 0) {
            /* Another valid time, one second later, still within the skew. */
            time_t t = c->ts + 1;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
            assert_refused(c, &req, c->authorization, c->ts, "the date");
        }
        p += n + (p[n] == ';' ? 1 : 0);
    }

    /* The body, and the body's hash. */
    req = base;
    snprintf(buf, sizeof buf, "%sx", c->http.body);
    req.body = (const uint8_t *)buf;
    req.body_len = c->http.body_len + 1;
    assert_refused(c, &req, c->authorization, c->ts, "the body");
    req = base;
    req.payload_sha256_hex = "0000000000000000000000000000000000000000000000000000000000000000";
    assert_refused(c, &req, c->authorization, c->ts, "the payload hash");

    /* Each hex digit of the signature. */
    const char *sig = strstr(c->authorization, "Signature=");
    assert_non_null(sig);
    size_t at = (size_t)(sig - c->authorization) + 10;
    for (size_t i = 0; i < 64; i++) {
        snprintf(buf, sizeof buf, "%s", c->authorization);
        buf[at + i] = buf[at + i] == '0' ? '1' : '0';
        assert_refused(c, &base, buf, c->ts, "a signature digit");
    }

    /* The wrong secret, region or service. */
    vcase other = *c;
    size_t slen = strlen(other.secret);
    assert_true(slen + 1 < sizeof other.secret);
    other.secret[slen] = 'x';
    other.secret[slen + 1] = '\0';
    assert_refused(&other, &base, c->authorization, c->ts, "the secret");
    other = *c;
    snprintf(other.region, sizeof other.region, "eu-west-3");
    assert_refused(&other, &base, c->authorization, c->ts, "the expected region");
    other = *c;
    snprintf(other.service, sizeof other.service, "kms");
    assert_refused(&other, &base, c->authorization, c->ts, "the expected service");
}

static void test_suite(void **state)
{
    (void)state;
    char **cases;
    size_t n = kms_test_sigv4_cases(&cases), ran = 0;
    for (size_t i = 0; i < n; i++) {
        const char *cdir = cases[i];
        vcase c;
        kms_sigv4_auth auth;
        load_case(&c, cdir);
        if (kms_sigv4_parse_authorization(c.authorization, &auth) != 0) {
            fail_msg("%s: %s", cdir, kms_last_error_message());
        }
        check_known_answers(&c, &auth);
        kms_sigv4_request req = request_of(&c);
        if (verify(&c, &req, c.authorization, c.ts) != 0) {
            fail_msg("%s: refused: %s", cdir, kms_last_error_message());
        }
        check_mutations(&c, &auth);
        free_case(&c);
        free(cases[i]);
        ran++;
    }
    free(cases);
    print_message("sigv4: %zu cases passed\n", ran);
    assert_true(ran > 20);
}

static void test_clock_skew(void **state)
{
    (void)state;
    char *root = kms_test_vectors_dir();
    if (root == NULL) {
        skip();
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/sigv4/get-vanilla", root);
    free(root);
    vcase c;
    load_case(&c, dir);
    kms_sigv4_request req = request_of(&c);
    assert_int_equal(verify(&c, &req, c.authorization, c.ts + 299), 0);
    assert_int_equal(verify(&c, &req, c.authorization, c.ts + 300), 0);
    assert_int_equal(verify(&c, &req, c.authorization, c.ts - 299), 0);
    assert_kms_error(verify(&c, &req, c.authorization, c.ts + 301), KMS_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(kms_last_error_message(), "Signature expired: 20150830T123600Z"));
    assert_kms_error(verify(&c, &req, c.authorization, c.ts + 600), KMS_ERR_BAD_SIGNATURE);
    assert_string_equal(kms_last_error_message(),
                        "Signature expired: 20150830T123600Z is now earlier than "
                        "20150830T124100Z (20150830T124600Z - 5 min.)");
    assert_kms_error(verify(&c, &req, c.authorization, c.ts - 301), KMS_ERR_BAD_SIGNATURE);
    assert_string_equal(kms_last_error_message(),
                        "Signature not yet current: 20150830T123600Z is still later than "
                        "20150830T123559Z (20150830T123059Z + 5 min.)");
    free_case(&c);
}

#define GOOD_CRED "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
#define GOOD_SH "SignedHeaders=host;x-amz-date"
#define GOOD_SIG "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

static void test_parser(void **state)
{
    (void)state;
    kms_sigv4_auth a;
    assert_int_equal(
        kms_sigv4_parse_authorization("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG, &a),
        0);
    assert_string_equal(a.access_key_id, "AKIDEXAMPLE");
    assert_string_equal(a.date, "20150830");
    assert_string_equal(a.region, "us-east-1");
    assert_string_equal(a.service, "service");
    assert_string_equal(a.signed_headers, "host;x-amz-date");
    /* Any order, with or without spaces after the commas. */
    assert_int_equal(
        kms_sigv4_parse_authorization("AWS4-HMAC-SHA256 " GOOD_SIG "," GOOD_CRED "," GOOD_SH, &a),
        0);
    static const char *const bad[] = {
        "",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA1 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG,
        "aws4-hmac-sha256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_SH ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG ", Foo=bar",
        "AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG ",",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, " GOOD_SH
        ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 "
        "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x, " GOOD_SH ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/service/aws4_request, " GOOD_SH
        ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=AKID/2015083/us-east-1/service/aws4_request, " GOOD_SH
        ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=AKID/20151330/us-east-1/service/aws4_request, " GOOD_SH
        ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=AKID/20150830//service/aws4_request, " GOOD_SH ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us east/service/aws4_request, " GOOD_SH
        ", " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=x-amz-date;host, " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=Host;x-amz-date, " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=host;host;x-amz-date, " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=host, " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=x-amz-date, " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=host;;x-amz-date, " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=, " GOOD_SIG,
        "AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", Signature=5fa00fa3",
        "AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH
        ", Signature=5FA00FA31553B73EBF1942676E86291E8372FF2A2260956D9B8AAE1D763FBF31",
        "AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH
        ", Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf3g",
        "AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG "0",
        "AWS4-HMAC-SHA256 " GOOD_CRED " , " GOOD_SH ", " GOOD_SIG,
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&a, 'x', sizeof a);
        if (kms_sigv4_parse_authorization(bad[i], &a) == 0) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_int_equal(kms_last_error(), KMS_ERR_INCOMPLETE_SIGNATURE);
        assert_int_equal(a.access_key_id[0], '\0');
        assert_int_equal(a.signature[0], '\0');
    }
    assert_kms_error(kms_sigv4_parse_authorization(NULL, &a), KMS_ERR_INCOMPLETE_SIGNATURE);
    /* Oversized values. */
    char big[KMS_SIGV4_AUTH_MAX + 64];
    char akid[KMS_SIGV4_AKID_MAX + 2];
    memset(akid, 'A', sizeof akid - 1);
    akid[sizeof akid - 1] = '\0';
    snprintf(big, sizeof big,
             "AWS4-HMAC-SHA256 Credential=%s/20150830/us-east-1/service/aws4_request, " GOOD_SH
             ", " GOOD_SIG,
             akid);
    assert_kms_error(kms_sigv4_parse_authorization(big, &a), KMS_ERR_INCOMPLETE_SIGNATURE);
    akid[KMS_SIGV4_AKID_MAX] = '\0';
    snprintf(big, sizeof big,
             "AWS4-HMAC-SHA256 Credential=%s/20150830/us-east-1/service/aws4_request, " GOOD_SH
             ", " GOOD_SIG,
             akid);
    assert_int_equal(kms_sigv4_parse_authorization(big, &a), 0);
    memset(big, ' ', sizeof big);
    memcpy(big, "AWS4-HMAC-SHA256 ", 17);
    big[sizeof big - 1] = '\0';
    assert_kms_error(kms_sigv4_parse_authorization(big, &a), KMS_ERR_INCOMPLETE_SIGNATURE);
}

/* A request of our own: x-amz-content-sha256 must be the body's hash; a missing signed header
 * and a missing x-amz-date refused. */
static void test_content_hash_and_missing(void **state)
{
    (void)state;
    const char *secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const char *body = "{}";
    const char *body_hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    kms_sigv4_header hs[] = {
        {"Host", "kms.eu-west-3.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
        {"X-Amz-Content-Sha256", body_hash},
    };
    kms_sigv4_request req = {.method = "POST",
                             .path = "/",
                             .query = "",
                             .headers = hs,
                             .n_headers = 3,
                             .body = (const uint8_t *)body,
                             .body_len = 2,
                             .normalize_path = 1};
    const char *sh = "host;x-amz-content-sha256;x-amz-date";
    char *canonical = NULL;
    char *sts = NULL;
    char sig[65];
    char authz[512];
    kms_sigv4_auth a;
    assert_int_equal(kms_sigv4_canonical_request(&req, sh, &canonical), 0);
    assert_int_equal(kms_sigv4_string_to_sign("20150830T123600Z",
                                              "20150830/eu-west-3/kms/aws4_request", canonical,
                                              &sts),
                     0);
    assert_int_equal(kms_sigv4_sign(secret, "20150830", "eu-west-3", "kms", sts, sig), 0);
    snprintf(authz, sizeof authz,
             "AWS4-HMAC-SHA256 Credential=AKID/20150830/eu-west-3/kms/aws4_request, "
             "SignedHeaders=%s, Signature=%s",
             sh, sig);
    assert_int_equal(kms_sigv4_parse_authorization(authz, &a), 0);
    time_t now = 1440938160; /* 2015-08-30T12:36:00Z */
    assert_int_equal(kms_sigv4_verify(&req, &a, secret, now, "eu-west-3", "kms"), 0);
    req.payload_sha256_hex = body_hash;
    assert_int_equal(kms_sigv4_verify(&req, &a, secret, now, "eu-west-3", "kms"), 0);
    /* The body changed, with the header left as signed. */
    req.payload_sha256_hex = NULL;
    req.body = (const uint8_t *)"{ }";
    req.body_len = 3;
    assert_kms_error(kms_sigv4_verify(&req, &a, secret, now, "eu-west-3", "kms"),
                     KMS_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(kms_last_error_message(), "x-amz-content-sha256"));
    req.body = (const uint8_t *)body;
    req.body_len = 2;
    /* A signed header missing, then x-amz-date missing. */
    req.n_headers = 2;
    assert_kms_error(kms_sigv4_verify(&req, &a, secret, now, "eu-west-3", "kms"),
                     KMS_ERR_BAD_SIGNATURE);
    req.headers = hs + 2;
    req.n_headers = 1;
    assert_kms_error(kms_sigv4_verify(&req, &a, secret, now, "eu-west-3", "kms"),
                     KMS_ERR_INCOMPLETE_SIGNATURE);
    /* A path that is not absolute, a method that is not a token. */
    free(canonical);
    canonical = NULL;
    req.headers = hs;
    req.n_headers = 3;
    req.path = "x/";
    assert_kms_error(kms_sigv4_canonical_request(&req, sh, &canonical), KMS_ERR_BAD_SIGNATURE);
    assert_null(canonical);
    req.path = "/";
    req.method = "GET\n";
    assert_kms_error(kms_sigv4_canonical_request(&req, sh, &canonical), KMS_ERR_BAD_SIGNATURE);
    req.method = "POST";
    assert_int_equal(kms_sigv4_canonical_request(&req, sh, &canonical), 0);
    free(canonical);
    canonical = NULL;
    /* A bad x-amz-date. */
    kms_sigv4_header hs2[] = {{"Host", "kms.eu-west-3.amazonaws.com"},
                              {"X-Amz-Date", "2015-08-30T12:36:00Z"}};
    req.headers = hs2;
    req.n_headers = 2;
    assert_kms_error(kms_sigv4_verify(&req, &a, secret, now, "eu-west-3", "kms"),
                     KMS_ERR_BAD_SIGNATURE);
    /* The signing key: known answer from AWS's documentation example. */
    uint8_t key[32];
    assert_int_equal(kms_sigv4_signing_key(secret, "20150830", "us-east-1", "iam", key), 0);
    char hex[65];
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    }
    assert_string_equal(hex, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
    free(canonical);
    free(sts);
}

/* ---- requests of our own, signed here ---- */

#define OWN_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define OWN_NOW 1440938160 /* 2015-08-30T12:36:00Z */

/* Signs req over signed_headers for scope date/eu-west-3/kms with x-amz-date amz_date (the
 * request's own header), then parses the Authorization header into *auth. */
static void sign_own(const kms_sigv4_request *req, const char *signed_headers, const char *amz_date,
                     kms_sigv4_auth *auth)
{
    char *canonical = NULL;
    char *sts = NULL;
    char scope[64];
    char sig[65];
    char authz[1024];
    char date[9];
    snprintf(date, sizeof date, "%.8s", amz_date);
    snprintf(scope, sizeof scope, "%s/eu-west-3/kms/aws4_request", date);
    assert_int_equal(kms_sigv4_canonical_request(req, signed_headers, &canonical), 0);
    assert_int_equal(kms_sigv4_string_to_sign(amz_date, scope, canonical, &sts), 0);
    assert_int_equal(kms_sigv4_sign(OWN_SECRET, date, "eu-west-3", "kms", sts, sig), 0);
    snprintf(authz, sizeof authz,
             "AWS4-HMAC-SHA256 Credential=AKID/%s/eu-west-3/kms/aws4_request, "
             "SignedHeaders=%s, Signature=%s",
             date, signed_headers, sig);
    assert_int_equal(kms_sigv4_parse_authorization(authz, auth), 0);
    free(canonical);
    free(sts);
}

static int verify_own(const kms_sigv4_request *req, const kms_sigv4_auth *auth, time_t now)
{
    return kms_sigv4_verify(req, auth, OWN_SECRET, now, "eu-west-3", "kms");
}

/* X-Amz-Target selects the operation of the JSON protocol and Content-Type the protocol: a
 * request whose signature leaves either (or any other x-amz-* header) out could be replayed as
 * another operation. As AWS documents (host and every x-amz-* header signed; S3: Content-Type
 * too), they must be signed when present; X-Amz-Security-Token may be added after signing
 * (the suite's post-sts-header-after) and x-amz-content-sha256 is checked against the body. */
static void test_unsigned_headers(void **state)
{
    (void)state;
    kms_sigv4_header hs[] = {
        {"Host", "kms.eu-west-3.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", "TrentService.DescribeKey"},
        {"User-Agent", "test"},
        {"X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793"},
        {"X-Amz-Security-Token", "token"},
    };
    kms_sigv4_request req = {.method = "POST",
                             .path = "/",
                             .query = "",
                             .headers = hs,
                             .n_headers = 7,
                             .body = (const uint8_t *)"{\"KeyId\":\"k\"}",
                             .body_len = 13,
                             .normalize_path = 1};
    kms_sigv4_auth a;
    sign_own(&req, "content-type;host;x-amz-date;x-amz-target", "20150830T123600Z", &a);
    assert_int_equal(verify_own(&req, &a, OWN_NOW), 0);
    /* The operation left unsigned: the captured request replayed as ScheduleKeyDeletion. */
    sign_own(&req, "content-type;host;x-amz-date", "20150830T123600Z", &a);
    hs[3].value = "TrentService.ScheduleKeyDeletion";
    assert_kms_error(verify_own(&req, &a, OWN_NOW), KMS_ERR_INCOMPLETE_SIGNATURE);
    assert_non_null(strstr(kms_last_error_message(), "x-amz-target"));
    hs[3].value = "TrentService.DescribeKey";
    /* Content-Type left unsigned. */
    sign_own(&req, "host;x-amz-date;x-amz-target", "20150830T123600Z", &a);
    assert_kms_error(verify_own(&req, &a, OWN_NOW), KMS_ERR_INCOMPLETE_SIGNATURE);
    assert_non_null(strstr(kms_last_error_message(), "content-type"));
    /* Another x-amz-* header, in any case. */
    kms_sigv4_header hs2[] = {
        {"host", "kms.eu-west-3.amazonaws.com"},
        {"x-amz-date", "20150830T123600Z"},
        {"X-AMZ-Whatever", "1"},
    };
    req.headers = hs2;
    req.n_headers = 3;
    sign_own(&req, "host;x-amz-date", "20150830T123600Z", &a);
    assert_kms_error(verify_own(&req, &a, OWN_NOW), KMS_ERR_INCOMPLETE_SIGNATURE);
    sign_own(&req, "host;x-amz-date;x-amz-whatever", "20150830T123600Z", &a);
    assert_int_equal(verify_own(&req, &a, OWN_NOW), 0);
}

/* Impossible calendar dates are refused, not normalised by timegm (20150230 is not March 2nd),
 * in the credential scope and in x-amz-date; a leap day is a date. */
static void test_calendar_dates(void **state)
{
    (void)state;
    kms_sigv4_header hs[] = {
        {"Host", "kms.eu-west-3.amazonaws.com"},
        {"X-Amz-Date", "20150230T123600Z"},
    };
    kms_sigv4_request req = {
        .method = "POST", .path = "/", .headers = hs, .n_headers = 2, .normalize_path = 1};
    kms_sigv4_auth a;
    char *canonical = NULL;
    char *sts = NULL;
    char sig[65];
    char authz[512];
    time_t march2 = 1425299760; /* 2015-03-02T12:36:00Z */
    assert_int_equal(kms_sigv4_canonical_request(&req, "host;x-amz-date", &canonical), 0);
    assert_int_equal(kms_sigv4_string_to_sign("20150230T123600Z",
                                              "20150230/eu-west-3/kms/aws4_request", canonical,
                                              &sts),
                     0);
    assert_int_equal(kms_sigv4_sign(OWN_SECRET, "20150230", "eu-west-3", "kms", sts, sig), 0);
    snprintf(authz, sizeof authz,
             "AWS4-HMAC-SHA256 Credential=AKID/20150230/eu-west-3/kms/aws4_request, "
             "SignedHeaders=host;x-amz-date, Signature=%s",
             sig);
    assert_kms_error(kms_sigv4_parse_authorization(authz, &a), KMS_ERR_INCOMPLETE_SIGNATURE);
    /* x-amz-date alone (the scope checked against it) */
    memset(&a, 0, sizeof a);
    snprintf(a.access_key_id, sizeof a.access_key_id, "AKID");
    snprintf(a.date, sizeof a.date, "20150230");
    snprintf(a.region, sizeof a.region, "eu-west-3");
    snprintf(a.service, sizeof a.service, "kms");
    snprintf(a.signed_headers, sizeof a.signed_headers, "host;x-amz-date");
    snprintf(a.signature, sizeof a.signature, "%s", sig);
    assert_kms_error(verify_own(&req, &a, march2), KMS_ERR_BAD_SIGNATURE);
    free(canonical);
    free(sts);
    /* A 61st second, an hour 24, the 29th of February of a common year. */
    static const char *const bad[] = {"20150830T123660Z", "20150830T240000Z", "20150229T123600Z",
                                      "20150431T000000Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hs[1].value = bad[i];
        sign_own(&req, "host;x-amz-date", "20150830T123600Z", &a);
        snprintf(a.date, sizeof a.date, "%.8s", bad[i]);
        if (verify_own(&req, &a, OWN_NOW) == 0) {
            fail_msg("accepted x-amz-date %s", bad[i]);
        }
    }
    snprintf(authz, sizeof authz,
             "AWS4-HMAC-SHA256 Credential=AKID/20150229/eu-west-3/kms/aws4_request, "
             "SignedHeaders=host;x-amz-date, Signature=%s",
             sig);
    assert_kms_error(kms_sigv4_parse_authorization(authz, &a), KMS_ERR_INCOMPLETE_SIGNATURE);
    /* 2016-02-29 exists. */
    hs[1].value = "20160229T000000Z";
    sign_own(&req, "host;x-amz-date", "20160229T000000Z", &a);
    assert_int_equal(verify_own(&req, &a, 1456704000), 0);
}

/* The canonical query must tell apart queries that a server decodes differently: '+' is a space
 * to a form decoder (evhttp_parse_query) but itself to a plain one, and a stray '%' is itself
 * where "%25" is also '%'. Such queries are refused, so a signed "a=b%2Bc" cannot be sent as
 * "a=b+c", nor a signed "a=%25" as "a=%". */
static void test_query_ambiguity(void **state)
{
    (void)state;
    kms_sigv4_header hs[] = {
        {"Host", "kms.eu-west-3.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
    };
    kms_sigv4_request req = {.method = "GET",
                             .path = "/",
                             .query = "a=b%2Bc",
                             .headers = hs,
                             .n_headers = 2,
                             .normalize_path = 1};
    kms_sigv4_auth a;
    sign_own(&req, "host;x-amz-date", "20150830T123600Z", &a);
    assert_int_equal(verify_own(&req, &a, OWN_NOW), 0);
    req.query = "a=b+c";
    assert_kms_error(verify_own(&req, &a, OWN_NOW), KMS_ERR_BAD_SIGNATURE);
    req.query = "a=%25";
    sign_own(&req, "host;x-amz-date", "20150830T123600Z", &a);
    assert_int_equal(verify_own(&req, &a, OWN_NOW), 0);
    static const char *const bad[] = {"a=%", "a=%2", "a=%zz", "%=1", "a=b%2", "a+b=1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        req.query = bad[i];
        if (verify_own(&req, &a, OWN_NOW) == 0) {
            fail_msg("accepted query %s", bad[i]);
        }
        char *canonical = NULL;
        assert_kms_error(kms_sigv4_canonical_request(&req, "host;x-amz-date", &canonical),
                         KMS_ERR_BAD_SIGNATURE);
        assert_null(canonical);
    }
}

/* Repeated headers are joined with ',', so one signed "X-Amz-Target: A,B" and two received
 * "X-Amz-Target: A" and "X-Amz-Target: B" have the same canonical form, while the server reads
 * only the first. Headers that carry one value (Host, X-Amz-Date, X-Amz-Target, Content-Type,
 * Authorization, ...) are refused when repeated. */
static void test_repeated_singletons(void **state)
{
    (void)state;
    kms_sigv4_header one[] = {
        {"Host", "kms.eu-west-3.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
        {"X-Amz-Target", "TrentService.ScheduleKeyDeletion,TrentService.DescribeKey"},
    };
    kms_sigv4_header two[] = {
        {"Host", "kms.eu-west-3.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
        {"X-Amz-Target", "TrentService.ScheduleKeyDeletion"},
        {"X-Amz-Target", "TrentService.DescribeKey"},
    };
    kms_sigv4_request req = {
        .method = "POST", .path = "/", .headers = one, .n_headers = 3, .normalize_path = 1};
    kms_sigv4_auth a;
    sign_own(&req, "host;x-amz-date;x-amz-target", "20150830T123600Z", &a);
    assert_int_equal(verify_own(&req, &a, OWN_NOW), 0);
    req.headers = two;
    req.n_headers = 4;
    assert_kms_error(verify_own(&req, &a, OWN_NOW), KMS_ERR_INCOMPLETE_SIGNATURE);
    assert_non_null(strstr(kms_last_error_message(), "x-amz-target"));
    /* Host twice, whether signed or not. */
    kms_sigv4_header hosts[] = {
        {"Host", "kms.eu-west-3.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
        {"host", "evil.example"},
    };
    req.headers = hosts;
    req.n_headers = 3;
    sign_own(&req, "host;x-amz-date", "20150830T123600Z", &a);
    assert_kms_error(verify_own(&req, &a, OWN_NOW), KMS_ERR_INCOMPLETE_SIGNATURE);
    /* Other headers may repeat (the suite's get-header-key-duplicate). */
    kms_sigv4_header mine[] = {
        {"Host", "kms.eu-west-3.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
        {"My-Header", "a"},
        {"My-Header", "b"},
    };
    req.headers = mine;
    req.n_headers = 4;
    sign_own(&req, "host;my-header;x-amz-date", "20150830T123600Z", &a);
    assert_int_equal(verify_own(&req, &a, OWN_NOW), 0);
}

/* The expected region and service are not optional: NULL does not mean "any". */
static void test_scope_required(void **state)
{
    (void)state;
    kms_sigv4_header hs[] = {
        {"Host", "kms.eu-west-3.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
    };
    kms_sigv4_request req = {
        .method = "POST", .path = "/", .headers = hs, .n_headers = 2, .normalize_path = 1};
    kms_sigv4_auth a;
    sign_own(&req, "host;x-amz-date", "20150830T123600Z", &a);
    assert_int_equal(verify_own(&req, &a, OWN_NOW), 0);
    assert_int_not_equal(kms_sigv4_verify(&req, &a, OWN_SECRET, OWN_NOW, NULL, "kms"), 0);
    assert_int_not_equal(kms_sigv4_verify(&req, &a, OWN_SECRET, OWN_NOW, "eu-west-3", NULL), 0);
}

/* A payload hash other than the body's own (UNSIGNED-PAYLOAD, S3's streaming forms) is refused:
 * KMS signs its body. */
static void test_unsigned_payload(void **state)
{
    (void)state;
    static const char *const forms[] = {
        "UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A"};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        kms_sigv4_header hs[] = {
            {"Host", "kms.eu-west-3.amazonaws.com"},
            {"X-Amz-Date", "20150830T123600Z"},
            {"X-Amz-Content-Sha256", forms[i]},
        };
        kms_sigv4_request req = {.method = "POST",
                                 .path = "/",
                                 .headers = hs,
                                 .n_headers = 3,
                                 .body = (const uint8_t *)"{}",
                                 .body_len = 2,
                                 .normalize_path = 1};
        kms_sigv4_auth a;
        sign_own(&req, "host;x-amz-content-sha256;x-amz-date", "20150830T123600Z", &a);
        assert_kms_error(verify_own(&req, &a, OWN_NOW), KMS_ERR_BAD_SIGNATURE);
    }
}

/* A long query costs memory in proportion: a 1 MB query of empty parameters ("a&a&...") took
 * 256 bytes of buffers per name and per value (286 MB). Peak RSS growth is measured. */
static void test_query_memory(void **state)
{
    (void)state;
    size_t n = (size_t)1 << 20;
    char *q = malloc(n + 1);
    struct rusage before;
    struct rusage after;
    char *canonical = NULL;
    kms_sigv4_header hs[] = {
        {"Host", "kms.eu-west-3.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
    };
    kms_sigv4_request req = {
        .method = "GET", .path = "/", .headers = hs, .n_headers = 2, .normalize_path = 1};
    assert_non_null(q);
    for (size_t i = 0; i < n; i++) {
        q[i] = i % 2 == 0 ? 'a' : '&';
    }
    q[n] = '\0';
    req.query = q;
    assert_int_equal(getrusage(RUSAGE_SELF, &before), 0);
    assert_int_equal(kms_sigv4_canonical_request(&req, "host;x-amz-date", &canonical), 0);
    assert_int_equal(getrusage(RUSAGE_SELF, &after), 0);
    assert_non_null(strstr(canonical, "\na=&a=&a=&"));
    if (after.ru_maxrss - before.ru_maxrss > 64 * 1024) {
        fail_msg("a 1 MB query took %ld MB", (after.ru_maxrss - before.ru_maxrss) / 1024);
    }
    free(canonical);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite),
        cmocka_unit_test(test_clock_skew),
        cmocka_unit_test(test_parser),
        cmocka_unit_test(test_content_hash_and_missing),
        cmocka_unit_test(test_unsigned_headers),
        cmocka_unit_test(test_calendar_dates),
        cmocka_unit_test(test_query_ambiguity),
        cmocka_unit_test(test_repeated_singletons),
        cmocka_unit_test(test_scope_required),
        cmocka_unit_test(test_unsigned_payload),
        cmocka_unit_test(test_query_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
