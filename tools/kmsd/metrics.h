/* kmsd's metrics for /metrics, in Prometheus' text exposition format 0.0.4: requests by
 * operation and outcome, a latency histogram per operation, and figures the server sets when it
 * renders (gauges and counters of other modules: throttling, HSM sessions, certificates).
 *
 * Thread-safe: observations are lock-free atomics; setting and rendering take a mutex. Memory is
 * bounded and fixed at creation: the operations are a known list (any other is counted as
 * "Other"), at most KMSD_METRICS_MAX_OUTCOMES outcomes (then "Other") and KMSD_METRICS_MAX_SET
 * set series. */
#ifndef KMSD_METRICS_H
#define KMSD_METRICS_H

#include <stddef.h>

#define KMSD_METRICS_MAX_OUTCOMES 64
#define KMSD_METRICS_MAX_SET 1024

typedef struct kmsd_metrics kmsd_metrics;

typedef enum kmsd_metric_type { KMSD_METRIC_GAUGE, KMSD_METRIC_COUNTER } kmsd_metric_type;

/* operations: the operation names to count apart (kms_operations()), NULL-terminated; copied. */
kmsd_metrics *kmsd_metrics_new(const char *const *operations, char *err, size_t errlen);
void kmsd_metrics_free(kmsd_metrics *m);

/* One answered request: kms_call's operation name, its outcome ("Success" or the error name,
 * e.g. "ThrottlingException") and the seconds it took. */
void kmsd_metrics_observe(kmsd_metrics *m, const char *operation, const char *outcome,
                          double seconds);

/* Sets the series name{label_name="label_value"} (label_name NULL: no label) to value; the
 * first set of a name fixes its type and help text. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*
 * and label names [a-zA-Z_][a-zA-Z0-9_]*. -1, with the reason in err, for a bad name, a type
 * other than the name's, or a full table. */
int kmsd_metrics_set(kmsd_metrics *m, kmsd_metric_type type, const char *name, const char *help,
                     const char *label_name, const char *label_value, double value, char *err,
                     size_t errlen);

/* The whole exposition: kmsd_requests_total, kmsd_request_duration_seconds, the set series in
 * the order their names were first set, then extra_text (if not NULL) as it is. *out is
 * malloc'd; -1 only when out of memory. */
int kmsd_metrics_render(kmsd_metrics *m, const char *extra_text, char **out);

#endif /* KMSD_METRICS_H */
