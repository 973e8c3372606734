/* kmsbench's reading of kms_client_stats: see bench_stats.h. */
#include "bench_stats.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "kms/server.h"

static uint64_t member(json_t *obj, const char *name)
{
    json_int_t v = json_integer_value(json_object_get(obj, name));
    return v > 0 ? (uint64_t)v : 0;
}

void bench_stats_take(kms_client *client, bench_stats *out)
{
    memset(out, 0, sizeof *out);
    char *text = NULL;
    if (client == NULL || kms_client_stats(client, &text) != 0) {
        return;
    }
    json_t *s = json_loads(text, 0, NULL);
    kms_string_free(text);
    json_t *f = json_object_get(s, "AuditFlushes");
    json_t *w = json_object_get(s, "WaitNanoseconds");
    json_t *b = json_object_get(f, "Buckets");
    if (s == NULL || !json_is_object(f) || !json_is_object(w) ||
        json_array_size(b) != BENCH_FLUSH_BUCKETS) {
        json_decref(s);
        return;
    }
    out->flushes = member(f, "Count");
    out->records = member(f, "Records");
    out->sync_ns = member(f, "SyncNanoseconds");
    for (size_t i = 0; i < BENCH_FLUSH_BUCKETS; i++) {
        json_int_t n = json_integer_value(json_array_get(json_array_get(b, i), 1));
        out->buckets[i] = n > 0 ? (uint64_t)n : 0;
    }
    out->wait_append_ns = member(w, "AuditAppend");
    out->wait_lock_ns = member(w, "AuditLock");
    out->wait_db_ns = member(w, "Database");
    out->wait_hsm_ns = member(w, "HsmSession");
    out->ok = true;
    json_decref(s);
}

/* The records-per-flush bucket holding the q-th quantile (0-1) of the flushes between the two
 * readings: its upper bound 2^i, or -1 for the last ("more than 128"). 0 without flushes. */
static long flush_quantile(const bench_stats *a, const bench_stats *b, double q)
{
    uint64_t total = b->flushes - a->flushes;
    if (total == 0) {
        return 0;
    }
    for (size_t i = 0; i < BENCH_FLUSH_BUCKETS - 1; i++) {
        if ((double)(b->buckets[i] - a->buckets[i]) >= q * (double)total) {
            return 1L << i;
        }
    }
    return -1;
}

void bench_stats_describe(const bench_stats *before, const bench_stats *after, long ops,
                          double elapsed, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!before->ok || !after->ok || ops <= 0 || elapsed <= 0) {
        return;
    }
    uint64_t flushes = after->flushes - before->flushes;
    uint64_t records = after->records - before->records;
    double per_op = 1000.0 * (double)ops; /* ns -> microseconds per operation */
    snprintf(buf, size,
             ", \"records_per_flush\": {\"mean\": %.1f, \"p50_at_most\": %ld, "
             "\"p99_at_most\": %ld}, \"flushes_per_sec\": %.0f, \"sync_us_per_flush\": %.0f, "
             "\"wait_us_per_op\": {\"audit_record\": %.1f, \"audit_lock\": %.2f, "
             "\"database\": %.2f, \"hsm_session\": %.2f}",
             flushes ? (double)records / (double)flushes : 0.0, flush_quantile(before, after, 0.5),
             flush_quantile(before, after, 0.99), (double)flushes / elapsed,
             flushes ? (double)(after->sync_ns - before->sync_ns) / 1000.0 / (double)flushes : 0.0,
             (double)(after->wait_append_ns - before->wait_append_ns) / per_op,
             (double)(after->wait_lock_ns - before->wait_lock_ns) / per_op,
             (double)(after->wait_db_ns - before->wait_db_ns) / per_op,
             (double)(after->wait_hsm_ns - before->wait_hsm_ns) / per_op);
}
