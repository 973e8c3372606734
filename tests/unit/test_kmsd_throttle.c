/* Unit tests of tools/kmsd/throttle.c, kmsd's throttling, on an explicit clock (no sleeping):
 * a bucket's burst of one second's rate and its refill, accounts and access keys apart, the
 * shared cryptographic quota against per-operation ones, configuration overrides and refusals,
 * the memory bound, the authentication delay curve, and many threads at once. */
#include "testutil.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "throttle.h"

#define ACCT "111122223333"
#define OTHER "444455556666"
#define AKID "AKIAIOSFODNN7EXAMPLE"

static kmsd_throttle *make(const char *cfg_json)
{
    char err[2048];
    json_t *cfg = NULL;
    if (cfg_json != NULL) {
        cfg = json_loads(cfg_json, 0, NULL);
        assert_non_null(cfg);
    }
    kmsd_throttle *t = kmsd_throttle_new(cfg, err, sizeof err);
    json_decref(cfg);
    if (t == NULL) {
        fail_msg("refused %s: %s", cfg_json, err);
    }
    return t;
}

/* n requests at now: how many were admitted. */
static int admit_n(kmsd_throttle *t, const char *acct, const char *akid, const char *op, int n,
                   double now)
{
    int admitted = 0;
    for (int i = 0; i < n; i++) {
        admitted += kmsd_throttle_admit(t, acct, akid, op, now) == 0;
    }
    return admitted;
}

static json_int_t throttled(kmsd_throttle *t, const char *quota)
{
    json_t *limits = NULL;
    assert_int_equal(kmsd_throttle_limits(t, &limits), 0);
    json_t *q = json_object_get(json_object_get(limits, "Quotas"), quota);
    assert_non_null(q);
    json_int_t n = json_integer_value(json_object_get(q, "Throttled"));
    json_decref(limits);
    return n;
}

/* CreateKey's AWS default is 5 per second: a burst of 5, then one more every 0.2 s. */
static void burst_and_refill(void **state)
{
    (void)state;
    kmsd_throttle *t = make(NULL);
    assert_int_equal(admit_n(t, ACCT, AKID, "CreateKey", 5, 1000.0), 5);
    assert_int_equal(kmsd_throttle_admit(t, ACCT, AKID, "CreateKey", 1000.0), 1);
    assert_int_equal(kmsd_throttle_admit(t, ACCT, AKID, "CreateKey", 1000.125), 1);
    assert_int_equal(kmsd_throttle_admit(t, ACCT, AKID, "CreateKey", 1000.25), 0);
    assert_int_equal(kmsd_throttle_admit(t, ACCT, AKID, "CreateKey", 1000.25), 1);
    /* A long pause fills the bucket to one second's worth, no more. */
    assert_int_equal(admit_n(t, ACCT, AKID, "CreateKey", 10, 2000.0), 5);
    /* A clock that goes back adds nothing. */
    assert_int_equal(kmsd_throttle_admit(t, ACCT, AKID, "CreateKey", 1999.0), 1);
    assert_int_equal(throttled(t, "CreateKey request rate"), 9);
    assert_int_equal(throttled(t, "PerAccessKey"), 0);
    kmsd_throttle_free(t);
}

/* Quotas are per account; another account, or another operation's quota, is untouched. The
 * symmetric operations share one quota. */
static void accounts_and_quotas_apart(void **state)
{
    (void)state;
    kmsd_throttle *t = make("{\"Cryptographic operations (symmetric) request rate\": 10}");
    assert_int_equal(admit_n(t, ACCT, AKID, "CreateKey", 6, 5.0), 5);
    assert_int_equal(admit_n(t, OTHER, "AKIDOTHER", "CreateKey", 6, 5.0), 5);
    assert_int_equal(admit_n(t, ACCT, AKID, "CreateAlias", 6, 5.0), 5);
    /* Encrypt, Decrypt, GenerateDataKey, ... share the account's 10 per second. */
    assert_int_equal(admit_n(t, ACCT, AKID, "Encrypt", 4, 5.0), 4);
    assert_int_equal(admit_n(t, ACCT, AKID, "Decrypt", 4, 5.0), 4);
    assert_int_equal(admit_n(t, ACCT, AKID, "GenerateDataKey", 4, 5.0), 2);
    assert_int_equal(admit_n(t, ACCT, AKID, "VerifyMac", 1, 5.0), 0);
    assert_int_equal(admit_n(t, OTHER, "AKIDOTHER", "GenerateRandom", 10, 5.0), 10);
    /* Sign and Verify are asymmetric: their own quota (1000), untouched by the symmetric one. */
    assert_int_equal(admit_n(t, ACCT, AKID, "Sign", 3, 5.0), 3);
    /* Operations without an AWS quota are limited only by the access key. */
    assert_int_equal(admit_n(t, ACCT, AKID, "acm:RequestCertificate", 100, 5.0), 100);
    assert_int_equal(throttled(t, "Cryptographic operations (symmetric) request rate"), 3);
    assert_int_equal(throttled(t, "CreateKey request rate"), 2);
    assert_int_equal(throttled(t, "CreateAlias request rate"), 1);
    kmsd_throttle_free(t);
}

/* The access key's bucket counts every operation; a request it refuses gives the account's
 * token back, and one the account's quota refuses takes nothing from the key. */
static void per_access_key(void **state)
{
    (void)state;
    kmsd_throttle *t = make("{\"PerAccessKey\": 3, \"CreateKey request rate\": 2}");
    assert_int_equal(admit_n(t, ACCT, AKID, "CreateKey", 3, 1.0), 2);
    assert_int_equal(admit_n(t, ACCT, AKID, "ListKeys", 3, 1.0), 1);
    /* A second key of the same account has its own bucket but shares the account's quotas. */
    assert_int_equal(admit_n(t, ACCT, "AKID2", "CreateKey", 1, 1.0), 0);
    assert_int_equal(admit_n(t, ACCT, "AKID2", "ListKeys", 3, 1.0), 3);
    assert_int_equal(throttled(t, "PerAccessKey"), 2);
    assert_int_equal(throttled(t, "CreateKey request rate"), 2);
    /* No access key (none known yet): only the account's quota applies. */
    assert_int_equal(admit_n(t, ACCT, NULL, "acm:ListCertificates", 50, 1.0), 50);
    kmsd_throttle_free(t);
    /* The token a request refused by its key's bucket took from the account is given back. */
    t = make("{\"PerAccessKey\": 1, \"ListKeys request rate\": 2}");
    assert_int_equal(kmsd_throttle_admit(t, ACCT, "AK1", "ListKeys", 1.0), 0);
    assert_int_equal(kmsd_throttle_admit(t, ACCT, "AK1", "ListKeys", 1.0), 1);
    assert_int_equal(kmsd_throttle_admit(t, ACCT, "AK2", "ListKeys", 1.0), 0);
    assert_int_equal(kmsd_throttle_admit(t, ACCT, "AK3", "ListKeys", 1.0), 1);
    assert_int_equal(throttled(t, "ListKeys request rate"), 1);
    kmsd_throttle_free(t);
}

static void disabled_admits_all(void **state)
{
    (void)state;
    kmsd_throttle *t = make("{\"Enabled\": false, \"CreateKey request rate\": 1}");
    assert_int_equal(admit_n(t, ACCT, AKID, "CreateKey", 100, 1.0), 100);
    kmsd_throttle_free(t);
}

/* A rate below one per second still admits one request (the bucket holds at least one). */
static void fractional_rate(void **state)
{
    (void)state;
    kmsd_throttle *t = make("{\"CreateKey request rate\": 0.25}");
    assert_int_equal(admit_n(t, ACCT, AKID, "CreateKey", 3, 0.0), 1);
    assert_int_equal(admit_n(t, ACCT, AKID, "CreateKey", 1, 3.5), 0);
    assert_int_equal(admit_n(t, ACCT, AKID, "CreateKey", 1, 4.0), 1);
    kmsd_throttle_free(t);
}

static void refused(const char *cfg_json, const char *want)
{
    char err[4096];
    json_t *cfg = json_loads(cfg_json, JSON_DECODE_ANY, NULL);
    assert_non_null(cfg);
    assert_null(kmsd_throttle_new(cfg, err, sizeof err));
    json_decref(cfg);
    if (strstr(err, want) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", err, want);
    }
}

static void config_refusals(void **state)
{
    (void)state;
    refused("{\"CreateKeys request rate\": 5}",
            "unknown throttle setting \"CreateKeys request rate\"; known: Enabled, "
            "AuthFailureDelay, MaxKeys, PerAccessKey, Cryptographic operations (symmetric) "
            "request rate, Cryptographic operations (RSA) request rate");
    refused("{\"CreateKey request rate\": 0}", "\"CreateKey request rate\" must be a number of "
                                               "requests per second above 0");
    refused("{\"CreateKey request rate\": -1}", "must be a number of requests per second");
    refused("{\"CreateKey request rate\": \"5\"}", "must be a number of requests per second");
    refused("{\"PerAccessKey\": 1e10}", "\"PerAccessKey\" must be a number");
    refused("{\"Enabled\": 1}", "throttle setting Enabled must be true or false");
    refused("{\"AuthFailureDelay\": \"no\"}", "AuthFailureDelay must be true or false");
    refused("{\"MaxKeys\": 10}", "MaxKeys must be a whole number from 64 to 100000000");
    refused("{\"MaxKeys\": 1000.5}", "MaxKeys must be a whole number");
    refused("[]", "the throttle settings must be a JSON object");
}

/* Every limit and its value is listed for /metrics, overrides included. */
static void limits_listed(void **state)
{
    (void)state;
    kmsd_throttle *t = make("{\"Cryptographic operations (symmetric) request rate\": 20000, "
                            "\"CreateKey request rate\": 10, \"PerAccessKey\": 1000, "
                            "\"Enabled\": true, \"MaxKeys\": 1000}");
    json_t *limits = NULL;
    assert_int_equal(kmsd_throttle_limits(t, &limits), 0);
    json_t *q = json_object_get(limits, "Quotas");
    assert_true(json_object_size(q) > 30);
#define LIMIT(name) json_number_value(json_object_get(json_object_get(q, name), "Limit"))
    assert_true(LIMIT("Cryptographic operations (symmetric) request rate") == 20000);
    assert_true(LIMIT("Cryptographic operations (RSA) request rate") == 1000);
    assert_true(LIMIT("CreateKey request rate") == 10);
    assert_true(LIMIT("DescribeKey request rate") == 2000);
    assert_true(LIMIT("CreateAlias request rate") == 5);
    assert_true(LIMIT("PerAccessKey") == 1000);
#undef LIMIT
    assert_true(json_is_true(json_object_get(limits, "Enabled")));
    assert_int_equal(json_integer_value(json_object_get(limits, "MaxKeys")), 1000);
    assert_int_equal(json_integer_value(json_object_get(limits, "Keys")), 0);
    json_decref(limits);
    kmsd_throttle_free(t);
    /* The defaults: AWS's in the smallest region class; ours for the access key. */
    t = make(NULL);
    assert_int_equal(kmsd_throttle_limits(t, &limits), 0);
    q = json_object_get(limits, "Quotas");
#define LIMIT(name) json_number_value(json_object_get(json_object_get(q, name), "Limit"))
    assert_true(LIMIT("Cryptographic operations (symmetric) request rate") == 10000);
    assert_true(LIMIT("CreateKey request rate") == 5);
    assert_true(LIMIT("PerAccessKey") == 10000);
#undef LIMIT
    assert_int_equal(json_integer_value(json_object_get(limits, "MaxKeys")), 100000);
    json_decref(limits);
    kmsd_throttle_free(t);
}

/* However many callers, at most MaxKeys buckets are kept; the least recently used goes first. */
static void eviction_bound(void **state)
{
    (void)state;
    kmsd_throttle *t = make("{\"MaxKeys\": 64, \"PerAccessKey\": 1}");
    char akid[32];
    json_t *limits = NULL;
    for (int i = 0; i < 5000; i++) {
        snprintf(akid, sizeof akid, "AKID%d", i);
        assert_int_equal(kmsd_throttle_admit(t, ACCT, akid, "acm:ListCertificates", 1.0), 0);
        kmsd_throttle_auth_failed(t, akid, 1.0);
    }
    assert_int_equal(kmsd_throttle_limits(t, &limits), 0);
    assert_true(json_integer_value(json_object_get(limits, "Keys")) <= 64);
    assert_true(json_integer_value(json_object_get(limits, "Keys")) >= 32);
    assert_true(json_integer_value(
                    json_object_get(json_object_get(limits, "AuthFailures"), "Addresses")) <= 64);
    json_decref(limits);
    /* The most recent key is remembered (empty), the first long forgotten (full again). */
    assert_int_equal(kmsd_throttle_admit(t, ACCT, "AKID4999", "acm:ListCertificates", 1.0), 1);
    assert_int_equal(kmsd_throttle_admit(t, ACCT, "AKID0", "acm:ListCertificates", 1.0), 0);
    kmsd_throttle_free(t);
}

/* No delay for 4 failures; the 5th within a minute starts at 1 s, doubling per failure up to
 * 10 s; a quiet minute forgets. */
static void auth_delay_curve(void **state)
{
    (void)state;
    kmsd_throttle *t = make(NULL);
    const char *ip = "192.0.2.1";
    double want[] = {0, 0, 0, 0, 1, 2, 4, 8, 10, 10, 10};
    double now = 100.0;
    assert_true(kmsd_throttle_auth_delay(t, ip, now) == 0);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        now += 5;
        kmsd_throttle_auth_failed(t, ip, now);
        if (kmsd_throttle_auth_delay(t, ip, now) != want[i]) {
            fail_msg("after %zu failures: delay %g, want %g", i + 1,
                     kmsd_throttle_auth_delay(t, ip, now), want[i]);
        }
    }
    /* Another address is not slowed. */
    assert_true(kmsd_throttle_auth_delay(t, "192.0.2.2", now) == 0);
    /* Still delayed 59 s later; forgotten after a quiet minute. */
    assert_true(kmsd_throttle_auth_delay(t, ip, now + 59) == 10);
    assert_true(kmsd_throttle_auth_delay(t, ip, now + 60) == 0);
    now += 60;
    kmsd_throttle_auth_failed(t, ip, now);
    assert_true(kmsd_throttle_auth_delay(t, ip, now) == 0);
    kmsd_throttle_free(t);
}

/* 5 failures spread over more than a minute (but never a quiet minute) do not start it. */
static void auth_failures_spread_out(void **state)
{
    (void)state;
    kmsd_throttle *t = make(NULL);
    const char *ip = "2001:db8::1";
    for (int i = 0; i < 5; i++) {
        kmsd_throttle_auth_failed(t, ip, 20.0 * i);
    }
    assert_true(kmsd_throttle_auth_delay(t, ip, 80.0) == 0);
    kmsd_throttle_auth_failed(t, ip, 95.0);
    assert_true(kmsd_throttle_auth_delay(t, ip, 95.0) == 0);
    /* ... and one with 4 others inside the minute (40, 60, 80, 95) does. */
    kmsd_throttle_auth_failed(t, ip, 99.0);
    assert_true(kmsd_throttle_auth_delay(t, ip, 99.0) == 1);
    kmsd_throttle_free(t);
    /* IPv6 sources count by their /64: 5 addresses of one /64 are one source, another /64 not. */
    t = make(NULL);
    const char *v6[] = {"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9",
                        "2001:0db8:0001:0002:0:0:0:3", "2001:db8:1:2:1:2:3:4"};
    for (int i = 0; i < 5; i++) {
        kmsd_throttle_auth_failed(t, v6[i], 1.0);
    }
    assert_true(kmsd_throttle_auth_delay(t, "2001:db8:1:2::77", 1.0) == 1);
    assert_true(kmsd_throttle_auth_delay(t, "2001:db8:1:3::1", 1.0) == 0);
    assert_true(kmsd_throttle_auth_delay(t, "192.0.2.1", 1.0) == 0);
    kmsd_throttle_free(t);
    t = make("{\"AuthFailureDelay\": false}");
    for (int i = 0; i < 20; i++) {
        kmsd_throttle_auth_failed(t, ip, 1.0);
    }
    assert_true(kmsd_throttle_auth_delay(t, ip, 1.0) == 0);
    kmsd_throttle_free(t);
}

typedef struct worker {
    kmsd_throttle *t;
    int admitted;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    char akid[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(akid, sizeof akid, "AK%d", i % 300);
        w->admitted += kmsd_throttle_admit(w->t, ACCT, akid, "Encrypt", 7.0) == 0;
        kmsd_throttle_auth_failed(w->t, akid, 7.0);
    }
    return NULL;
}

/* 4 threads share one account's bucket of 1000 at one instant: exactly 1000 admitted. */
static void threads_share_buckets(void **state)
{
    (void)state;
    kmsd_throttle *t = make("{\"Cryptographic operations (symmetric) request rate\": 1000, "
                            "\"MaxKeys\": 256}");
    pthread_t th[4];
    worker w[4];
    int total = 0;
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){t, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        total += w[i].admitted;
    }
    assert_int_equal(total, 1000);
    assert_int_equal(throttled(t, "Cryptographic operations (symmetric) request rate"), 79000);
    kmsd_throttle_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_and_refill),      cmocka_unit_test(accounts_and_quotas_apart),
        cmocka_unit_test(per_access_key),        cmocka_unit_test(disabled_admits_all),
        cmocka_unit_test(fractional_rate),       cmocka_unit_test(config_refusals),
        cmocka_unit_test(limits_listed),         cmocka_unit_test(eviction_bound),
        cmocka_unit_test(auth_delay_curve),      cmocka_unit_test(auth_failures_spread_out),
        cmocka_unit_test(threads_share_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
