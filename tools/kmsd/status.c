/* GET /metrics in Prometheus' text format (version 0.0.4): kmsd's own gauges, the library's
 * figures (kms_client_stats: HSM sessions, audit flush sizes) and the time left to each managed
 * certificate's expiry (in seconds, Prometheus' base unit). The certificates are read through the
 * manager as the server's profile (acm:ListCertificates, acm:DescribeCertificate: audited like any
 * call), so they are read at most every five minutes, whatever the scrape interval. */
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kmsd.h"

#define CERT_REFRESH_SECONDS 300

typedef struct text {
    char *s;
    size_t len, cap;
    bool failed;
} text;

__attribute__((format(printf, 2, 3))) static void add(text *t, const char *fmt, ...)
{
    va_list ap;
    if (t->failed) {
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *p = realloc(t->s, cap);
        if (p == NULL) {
            t->failed = true;
            return;
        }
        t->s = p;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static json_t *call(kms_client *client, const char *op, json_t *req)
{
    char *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    char *resp = NULL;
    json_t *out = NULL;
    json_decref(req);
    if (body != NULL && kms_call(client, op, body, &resp) == 0) {
        out = json_loads(resp, 0, NULL);
    }
    free(body);
    kms_string_free(resp);
    return out;
}

static pthread_mutex_t certs_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *certs_cache; /* [[arn, not_after], ...] */
static time_t certs_read_at;

/* [[CertificateArn, NotAfter]...] of every certificate of the manager (new reference). */
static json_t *certificates(kms_client *client)
{
    json_t *out = json_array();
    json_t *list = call(client, "acm:ListCertificates", json_object());
    size_t i;
    json_t *summary;
    json_array_foreach(json_object_get(list, "CertificateSummaryList"), i, summary)
    {
        const char *arn = json_string_value(json_object_get(summary, "CertificateArn"));
        json_t *d = arn != NULL ? call(client, "acm:DescribeCertificate",
                                       json_pack("{s:s}", "CertificateArn", arn))
                                : NULL;
        json_t *not_after = json_object_get(json_object_get(d, "Certificate"), "NotAfter");
        if (json_is_number(not_after) && out != NULL) {
            json_t *row = json_pack("[sf]", arn, json_number_value(not_after));
            if (row == NULL || json_array_append_new(out, row) != 0) {
                json_decref(out);
                out = NULL;
            }
        }
        json_decref(d);
    }
    json_decref(list);
    return out;
}

static void certificate_metrics(kms_client *client, text *t)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&certs_lock);
    if (certs_cache == NULL || now - certs_read_at >= CERT_REFRESH_SECONDS) {
        json_t *fresh = certificates(client);
        if (fresh != NULL) {
            json_decref(certs_cache);
            certs_cache = fresh;
            certs_read_at = now;
        }
    }
    /* Prometheus' base unit is the second (promtool refuses _days); dashboards divide by 86400. */
    add(t, "# HELP kmsd_certificate_expiry_seconds Seconds until the managed certificate expires.\n"
           "# TYPE kmsd_certificate_expiry_seconds gauge\n");
    size_t i;
    json_t *row;
    json_array_foreach(certs_cache, i, row)
    {
        double left = json_number_value(json_array_get(row, 1)) - (double)now;
        add(t, "kmsd_certificate_expiry_seconds{certificate_arn=\"%s\"} %.0f\n",
            json_string_value(json_array_get(row, 0)), left);
    }
    pthread_mutex_unlock(&certs_lock);
}

static void library_metrics(kms_client *client, text *t)
{
    char *stats = NULL;
    if (kms_client_stats(client, &stats) != 0) {
        return;
    }
    json_t *j = json_loads(stats, 0, NULL);
    kms_string_free(stats);
    json_t *hsm = json_object_get(j, "HsmSessions");
    add(t, "# HELP kms_hsm_sessions HSM sessions of the pool.\n# TYPE kms_hsm_sessions gauge\n");
    const char *states[] = {"Open", "InUse", "Max"};
    for (size_t i = 0; i < 3; i++) {
        add(t, "kms_hsm_sessions{state=\"%s\"} %lld\n", states[i],
            (long long)json_integer_value(json_object_get(hsm, states[i])));
    }
    json_t *fl = json_object_get(j, "AuditFlushes");
    add(t, "# HELP kms_audit_flush_records Audit records written per flush.\n"
           "# TYPE kms_audit_flush_records histogram\n");
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(fl, "Buckets"), i, b)
    {
        if (!json_is_number(json_array_get(b, 0))) {
            continue; /* "+Inf": written below from the count */
        }
        add(t, "kms_audit_flush_records_bucket{le=\"%g\"} %lld\n",
            json_number_value(json_array_get(b, 0)),
            (long long)json_integer_value(json_array_get(b, 1)));
    }
    add(t, "kms_audit_flush_records_bucket{le=\"+Inf\"} %lld\n",
        (long long)json_integer_value(json_object_get(fl, "Count")));
    add(t, "kms_audit_flush_records_sum %lld\n",
        (long long)json_integer_value(json_object_get(fl, "Records")));
    add(t, "kms_audit_flush_records_count %lld\n",
        (long long)json_integer_value(json_object_get(fl, "Count")));
    add(t,
        "# HELP kms_audit_sync_seconds_total Time the audit flushes spent in fdatasync.\n"
        "# TYPE kms_audit_sync_seconds_total counter\n"
        "kms_audit_sync_seconds_total %.6f\n",
        (double)json_integer_value(json_object_get(fl, "SyncNanoseconds")) / 1e9);
    add(t,
        "# HELP kms_wait_seconds_total Time requests spent waiting: for their audit record to be "
        "durable, for the trail's LOCK, for the database, for an HSM session.\n"
        "# TYPE kms_wait_seconds_total counter\n");
    json_t *waits = json_object_get(j, "WaitNanoseconds");
    const char *on[][2] = {{"AuditAppend", "audit_append"},
                           {"AuditLock", "audit_lock"},
                           {"Database", "database"},
                           {"HsmSession", "hsm_session"}};
    for (size_t k = 0; k < sizeof on / sizeof on[0]; k++) {
        add(t, "kms_wait_seconds_total{on=\"%s\"} %.6f\n", on[k][1],
            (double)json_integer_value(json_object_get(waits, on[k][0])) / 1e9);
    }
    json_decref(j);
}

char *kmsd_status_metrics(kms_client *client, const kmsd_config *cfg, long connections,
                          const char *requests_text)
{
    text t = {0};
    add(&t,
        "# HELP kmsd_connections Open TLS connections.\n# TYPE kmsd_connections gauge\n"
        "kmsd_connections %ld\n",
        connections);
    add(&t,
        "# HELP kmsd_max_connections The connection limit.\n"
        "# TYPE kmsd_max_connections gauge\nkmsd_max_connections %d\n",
        cfg->max_connections);
    if (requests_text != NULL) {
        add(&t, "%s", requests_text); /* KMSDMODS: metrics.c's text */
    }
    library_metrics(client, &t);
    certificate_metrics(client, &t);
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s != NULL ? t.s : strdup("");
}
