/* The library's own figures around one measurement (kms_client_stats): records per audit
 * flush, flushes per second, time in fdatasync, and what callers waited for. */
#ifndef KMSBENCH_BENCH_STATS_H
#define KMSBENCH_BENCH_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/kms.h"

#define BENCH_FLUSH_BUCKETS 9

typedef struct bench_stats {
    bool ok;
    uint64_t flushes, records, sync_ns;
    uint64_t buckets[BENCH_FLUSH_BUCKETS]; /* cumulative: flushes of at most 2^i records */
    uint64_t wait_append_ns, wait_lock_ns, wait_db_ns, wait_hsm_ns;
} bench_stats;

/* The figures now; out->ok false when the client has none (a remote client). */
void bench_stats_take(kms_client *client, bench_stats *out);

/* The JSON members (", \"records_per_flush\": {...}, ...") describing what happened between
 * before and after, for ops operations in elapsed seconds, into buf; "" when either is not ok. */
void bench_stats_describe(const bench_stats *before, const bench_stats *after, long ops,
                          double elapsed, char *buf, size_t size);

#endif
