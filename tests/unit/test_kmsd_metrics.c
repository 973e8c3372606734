/* Unit tests of tools/kmsd/metrics.c, kmsd's metrics registry: the exact exposition text for a
 * few observations (counters, cumulative histogram buckets, sum and count, set series, label and
 * HELP escaping), the memory bounds ("Other"), refusals, many threads at once, and the text
 * checked by Prometheus' own linter (`promtool check metrics`, Debian package prometheus) when it
 * is installed. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"

static const char *const ops[] = {"Encrypt", "Decrypt", "acm:RequestCertificate", NULL};

static kmsd_metrics *make(void)
{
    char err[256];
    kmsd_metrics *m = kmsd_metrics_new(ops, err, sizeof err);
    if (m == NULL) {
        fail_msg("%s", err);
    }
    return m;
}

static char *render(kmsd_metrics *m, const char *extra)
{
    char *text = NULL;
    assert_int_equal(kmsd_metrics_render(m, extra, &text), 0);
    return text;
}

#define REQUESTS_HEAD                                                                              \
    "# HELP kmsd_requests_total Requests answered, by operation and outcome (Success or the "      \
    "error's name).\n"                                                                             \
    "# TYPE kmsd_requests_total counter\n"
#define LATENCY_HEAD                                                                               \
    "# HELP kmsd_request_duration_seconds Seconds from a request's arrival to its answer, by "     \
    "operation.\n"                                                                                 \
    "# TYPE kmsd_request_duration_seconds histogram\n"

static void empty_registry(void **state)
{
    (void)state;
    kmsd_metrics *m = make();
    char *text = render(m, NULL);
    assert_string_equal(text, REQUESTS_HEAD LATENCY_HEAD);
    free(text);
    kmsd_metrics_free(m);
}

/* exact_text's exposition, line by line. */
static const char exact_expected[] = REQUESTS_HEAD
    "kmsd_requests_total{operation=\"Encrypt\",outcome=\"Success\"} 3\n"
    "kmsd_requests_total{operation=\"Encrypt\",outcome=\"ThrottlingException\"} 1\n"
    "kmsd_requests_total{operation=\"acm:RequestCertificate\",outcome=\"Success\"} 1\n"
    "kmsd_requests_total{operation=\"Other\",outcome=\"UnknownOperationException\"} "
    "1\n" LATENCY_HEAD
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.001\"} 2\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.0025\"} 2\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.005\"} 2\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.01\"} 2\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.025\"} 2\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.05\"} 2\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.1\"} 2\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.25\"} 2\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.5\"} 3\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"1\"} 3\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"2.5\"} 3\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"5\"} 3\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"10\"} 3\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"+Inf\"} 4\n"
    "kmsd_request_duration_seconds_sum{operation=\"Encrypt\"} 42.3015\n"
    "kmsd_request_duration_seconds_count{operation=\"Encrypt\"} 4\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"0.001\"} 0\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"0.0025\"} 0\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"0.005\"} 0\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"0.01\"} 0\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"0.025\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"0.05\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"0.1\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"0.25\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"0.5\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"1\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"2.5\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"5\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"10\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"acm:RequestCertificate\",le=\"+Inf\"} 1\n"
    "kmsd_request_duration_seconds_sum{operation=\"acm:RequestCertificate\"} 0.02\n"
    "kmsd_request_duration_seconds_count{operation=\"acm:RequestCertificate\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"0.001\"} 0\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"0.0025\"} 0\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"0.005\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"0.01\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"0.025\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"0.05\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"0.1\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"0.25\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"0.5\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"1\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"2.5\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"5\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"10\"} 1\n"
    "kmsd_request_duration_seconds_bucket{operation=\"Other\",le=\"+Inf\"} 1\n"
    "kmsd_request_duration_seconds_sum{operation=\"Other\"} 0.004\n"
    "kmsd_request_duration_seconds_count{operation=\"Other\"} 1\n"
    "# HELP kmsd_certificate_expiry_seconds Seconds until a certificate expires.\\nOne series "
    "each.\n"
    "# TYPE kmsd_certificate_expiry_seconds gauge\n"
    "kmsd_certificate_expiry_seconds{certificate=\"arn:aws:acm:x:1:certificate/"
    "\\\"a\\\\b\\\"\\n\"} 29.5\n"
    "kmsd_certificate_expiry_seconds{certificate=\"second\"} -1\n"
    "# HELP kmsd_throttled_total Requests refused by a quota.\n"
    "# TYPE kmsd_throttled_total counter\n"
    "kmsd_throttled_total{quota=\"CreateKey request rate\"} 4\n"
    "# HELP kmsd_up Up.\n"
    "# TYPE kmsd_up gauge\n"
    "kmsd_up 1\n"
    "# extra\n";

static void exact_text(void **state)
{
    (void)state;
    kmsd_metrics *m = make();
    char err[256];
    kmsd_metrics_observe(m, "Encrypt", "Success", 0.0005);
    kmsd_metrics_observe(m, "Encrypt", "Success", 0.001); /* le is inclusive */
    kmsd_metrics_observe(m, "Encrypt", "ThrottlingException", 0.3);
    kmsd_metrics_observe(m, "Encrypt", "Success", 42);
    kmsd_metrics_observe(m, "NoSuchOperation", "UnknownOperationException", 0.004);
    kmsd_metrics_observe(m, "acm:RequestCertificate", "Success", 0.02);
    assert_int_equal(kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "kmsd_certificate_expiry_seconds",
                                      "Seconds until a certificate expires.\nOne series each.",
                                      "certificate", "arn:aws:acm:x:1:certificate/\"a\\b\"\n", 29.5,
                                      err, sizeof err),
                     0);
    assert_int_equal(kmsd_metrics_set(m, KMSD_METRIC_COUNTER, "kmsd_throttled_total",
                                      "Requests refused by a quota.", "quota",
                                      "CreateKey request rate", 3, err, sizeof err),
                     0);
    assert_int_equal(kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "kmsd_certificate_expiry_seconds", "",
                                      "certificate", "second", -1, err, sizeof err),
                     0);
    /* Setting a series again replaces its value. */
    assert_int_equal(kmsd_metrics_set(m, KMSD_METRIC_COUNTER, "kmsd_throttled_total", "", "quota",
                                      "CreateKey request rate", 4, err, sizeof err),
                     0);
    assert_int_equal(
        kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "kmsd_up", "Up.", NULL, NULL, 1, err, sizeof err),
        0);
    char *text = render(m, "# extra\n");
    assert_string_equal(text, exact_expected);
    free(text);
    kmsd_metrics_free(m);
}

static void set_refusals(void **state)
{
    (void)state;
    kmsd_metrics *m = make();
    char err[256];
    assert_int_equal(
        kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "1bad", "", NULL, NULL, 1, err, sizeof err), -1);
    assert_string_equal(err, "\"1bad\" is not a metric name");
    assert_int_equal(
        kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "a-b", "", NULL, NULL, 1, err, sizeof err), -1);
    assert_int_equal(
        kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "ok", "", "le", "1", 1, err, sizeof err), -1);
    assert_string_equal(err, "\"le\" is not a label name of ours");
    assert_int_equal(
        kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "ok", "", "__x", "1", 1, err, sizeof err), -1);
    assert_int_equal(
        kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "ok", "", "a:b", "1", 1, err, sizeof err), -1);
    assert_int_equal(
        kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "ok", "", NULL, NULL, 1, err, sizeof err), 0);
    assert_int_equal(
        kmsd_metrics_set(m, KMSD_METRIC_COUNTER, "ok", "", NULL, NULL, 1, err, sizeof err), -1);
    assert_string_equal(err, "ok was set as a gauge before");
    char name[32];
    for (int i = 1; i < KMSD_METRICS_MAX_SET; i++) {
        snprintf(name, sizeof name, "%d", i);
        assert_int_equal(
            kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "many", "", "i", name, i, err, sizeof err), 0);
    }
    assert_int_equal(
        kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "many", "", "i", "x", 1, err, sizeof err), -1);
    assert_string_equal(err, "more than 1024 set series");
    kmsd_metrics_free(m);
}

/* Outcomes beyond the table are counted under "Other": memory stays bounded whatever the caller
 * passes. */
static void outcomes_bounded(void **state)
{
    (void)state;
    kmsd_metrics *m = make();
    char outcome[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(outcome, sizeof outcome, "E%d", i);
        kmsd_metrics_observe(m, "Decrypt", outcome, 0.001);
    }
    kmsd_metrics_observe(m, "Decrypt", NULL, 0.001);
    char *text = render(m, NULL);
    assert_non_null(strstr(text, "{operation=\"Decrypt\",outcome=\"E62\"} 1\n"));
    assert_null(strstr(text, "outcome=\"E63\""));
    assert_non_null(strstr(text, "{operation=\"Decrypt\",outcome=\"Other\"} 938\n"));
    assert_non_null(
        strstr(text, "kmsd_request_duration_seconds_count{operation=\"Decrypt\"} 1001\n"));
    free(text);
    kmsd_metrics_free(m);
}

static void *observer(void *arg)
{
    kmsd_metrics *m = arg;
    char outcome[16];
    for (int i = 0; i < 50000; i++) {
        snprintf(outcome, sizeof outcome, "E%d", i % 8);
        kmsd_metrics_observe(m, i % 2 ? "Encrypt" : "Decrypt", outcome, 0.002);
    }
    return NULL;
}

static void threads_count_exactly(void **state)
{
    (void)state;
    kmsd_metrics *m = make();
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, observer, m), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    char *text = render(m, NULL);
    assert_non_null(
        strstr(text, "kmsd_request_duration_seconds_count{operation=\"Encrypt\"} 100000\n"));
    assert_non_null(strstr(text, "kmsd_request_duration_seconds_sum{operation=\"Encrypt\"} 200\n"));
    assert_non_null(strstr(text, "{operation=\"Decrypt\",outcome=\"E4\"} 25000\n"));
    free(text);
    kmsd_metrics_free(m);
}

/* Prometheus' own parser and linter on our text: `promtool check metrics` reads the exposition on
 * stdin and exits 0 when it parses and breaks no convention. Skipped without promtool. */
static void promtool_accepts(void **state)
{
    (void)state;
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        skip();
    }
    kmsd_metrics *m = make();
    char err[256];
    kmsd_metrics_observe(m, "Encrypt", "Success", 0.0005);
    kmsd_metrics_observe(m, "Other\"op", "KMSInvalidStateException", 3);
    assert_int_equal(kmsd_metrics_set(m, KMSD_METRIC_GAUGE, "kmsd_certificate_expiry_seconds",
                                      "Seconds until a certificate expires.", "certificate",
                                      "a\"b\\c\nd", 12.25, err, sizeof err),
                     0);
    assert_int_equal(kmsd_metrics_set(m, KMSD_METRIC_COUNTER, "kmsd_throttled_total",
                                      "Requests throttled.", "quota", "CreateKey request rate", 7,
                                      err, sizeof err),
                     0);
    char *text = render(m, NULL);
    char *dir = kms_test_tmpdir();
    char path[1024], cmd[2048];
    snprintf(path, sizeof path, "%s/metrics.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'", path);
    int rc = system(cmd);
    kms_test_rmrf(dir);
    free(dir);
    free(text);
    kmsd_metrics_free(m);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_registry),        cmocka_unit_test(exact_text),
        cmocka_unit_test(set_refusals),          cmocka_unit_test(outcomes_bounded),
        cmocka_unit_test(threads_count_exactly), cmocka_unit_test(promtool_accepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
