/* A small metrics registry rendered in Prometheus' text exposition format 0.0.4 (see metrics.h;
 * format: prometheus.io/docs/instrumenting/exposition_formats, "Text-based format"). */
#include "metrics.h"
#include "strbuf.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The Prometheus client libraries' default buckets, in seconds. */
static const double bucket_le[] = {.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
static const char *const bucket_text[] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                          "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                          "2.5",   "5",      "10"};
#define N_BUCKETS (sizeof bucket_le / sizeof bucket_le[0])
#define OTHER "Other"
#define NAME_MAX_LEN 128

/* ---- The registry ---------------------------------------------------------------------------- */

typedef struct histogram {
    atomic_ullong buckets[N_BUCKETS + 1]; /* not cumulative; the last is above 10 s */
    atomic_ullong sum_ns;
} histogram;

typedef struct set_series {
    kmsd_metric_type type;
    char name[NAME_MAX_LEN];
    char *help;
    char label_name[NAME_MAX_LEN]; /* "" for none */
    char *label_value;
    double value;
} set_series;

struct kmsd_metrics {
    char **ops; /* sorted; ops[n_ops] is "Other" */
    size_t n_ops;
    /* Outcomes are added on first use (under lock) and never removed; readers see n_outcomes
     * only after the name is written (release/acquire). */
    char outcomes[KMSD_METRICS_MAX_OUTCOMES][NAME_MAX_LEN];
    atomic_size_t n_outcomes;
    atomic_ullong *requests; /* [(n_ops + 1) * KMSD_METRICS_MAX_OUTCOMES] */
    histogram *latency;      /* [n_ops + 1] */
    pthread_mutex_t lock;    /* outcomes added, set series, rendering */
    set_series *set;
    size_t n_set;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

kmsd_metrics *kmsd_metrics_new(const char *const *operations, char *err, size_t errlen)
{
    kmsd_metrics *m = calloc(1, sizeof *m);
    size_t n = 0;
    if (m == NULL) {
        kmsd_strbuf_fail(err, errlen, -1, "out of memory");
        return NULL;
    }
    while (operations != NULL && operations[n] != NULL) {
        n++;
    }
    m->ops = calloc(n + 1, sizeof *m->ops);
    m->requests = calloc((n + 1) * KMSD_METRICS_MAX_OUTCOMES, sizeof *m->requests);
    m->latency = calloc(n + 1, sizeof *m->latency);
    m->set = calloc(KMSD_METRICS_MAX_SET, sizeof *m->set);
    if (m->ops == NULL || m->requests == NULL || m->latency == NULL || m->set == NULL ||
        pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m->ops);
        free(m->requests);
        free(m->latency);
        free(m->set);
        free(m);
        kmsd_strbuf_fail(err, errlen, -1, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((m->ops[m->n_ops] = strdup(operations[i])) == NULL) {
            kmsd_metrics_free(m);
            kmsd_strbuf_fail(err, errlen, -1, "out of memory");
            return NULL;
        }
        m->n_ops++;
    }
    qsort(m->ops, m->n_ops, sizeof *m->ops, cmp_str);
    m->ops[m->n_ops] = (char *)OTHER;
    /* The last outcome slot is "Other", for outcomes beyond the table. */
    snprintf(m->outcomes[KMSD_METRICS_MAX_OUTCOMES - 1], NAME_MAX_LEN, "%s", OTHER);
    return m;
}

void kmsd_metrics_free(kmsd_metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->n_ops; i++) {
        free(m->ops[i]);
    }
    for (size_t i = 0; i < m->n_set; i++) {
        free(m->set[i].help);
        free(m->set[i].label_value);
    }
    free(m->ops);
    free(m->requests);
    free(m->latency);
    free(m->set);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static size_t op_index(const kmsd_metrics *m, const char *operation)
{
    char *const *hit = NULL;
    if (operation != NULL) {
        hit = bsearch(&operation, m->ops, m->n_ops, sizeof *m->ops, cmp_str);
    }
    return hit != NULL ? (size_t)(hit - m->ops) : m->n_ops;
}

static size_t find_outcome(kmsd_metrics *m, const char *outcome, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m->outcomes[i], outcome) == 0) {
            return i;
        }
    }
    return KMSD_METRICS_MAX_OUTCOMES;
}

/* The outcome's slot, added if new; "Other" when the table is full or the name too long. */
static size_t outcome_index(kmsd_metrics *m, const char *outcome)
{
    size_t n = atomic_load_explicit(&m->n_outcomes, memory_order_acquire);
    size_t i;
    if (outcome == NULL || strlen(outcome) >= NAME_MAX_LEN) {
        return KMSD_METRICS_MAX_OUTCOMES - 1;
    }
    if ((i = find_outcome(m, outcome, n)) < KMSD_METRICS_MAX_OUTCOMES) {
        return i;
    }
    pthread_mutex_lock(&m->lock);
    n = atomic_load_explicit(&m->n_outcomes, memory_order_relaxed);
    i = find_outcome(m, outcome, n);
    if (i == KMSD_METRICS_MAX_OUTCOMES && n < KMSD_METRICS_MAX_OUTCOMES - 1) {
        snprintf(m->outcomes[n], NAME_MAX_LEN, "%s", outcome);
        atomic_store_explicit(&m->n_outcomes, n + 1, memory_order_release);
        i = n;
    }
    pthread_mutex_unlock(&m->lock);
    return i < KMSD_METRICS_MAX_OUTCOMES ? i : KMSD_METRICS_MAX_OUTCOMES - 1;
}

void kmsd_metrics_observe(kmsd_metrics *m, const char *operation, const char *outcome,
                          double seconds)
{
    size_t op = op_index(m, operation);
    size_t oc = outcome_index(m, outcome);
    histogram *h = &m->latency[op];
    size_t b = 0;
    if (!(seconds >= 0)) {
        seconds = 0; /* NaN or a clock that went back */
    }
    while (b < N_BUCKETS && seconds > bucket_le[b]) {
        b++;
    }
    atomic_fetch_add(&m->requests[op * KMSD_METRICS_MAX_OUTCOMES + oc], 1);
    atomic_fetch_add(&h->buckets[b], 1);
    /* At most 1e9 s per observation, so that the sum in nanoseconds does not wrap. */
    atomic_fetch_add(&h->sum_ns, (unsigned long long)((seconds < 1e9 ? seconds : 1e9) * 1e9 + 0.5));
}

/* ---- Set series ------------------------------------------------------------------------------ */

static bool name_ok(const char *s, bool colon)
{
    const char *first = colon ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:"
                              : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
    const char *rest = colon ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:0123456789"
                             : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789";
    size_t n = strlen(s);
    return n > 0 && n < NAME_MAX_LEN && strchr(first, s[0]) != NULL && strspn(s, rest) == n;
}

int kmsd_metrics_set(kmsd_metrics *m, kmsd_metric_type type, const char *name, const char *help,
                     const char *label_name, const char *label_value, double value, char *err,
                     size_t errlen)
{
    set_series *s = NULL;
    const char *ln = label_name != NULL ? label_name : "";
    const char *lv = label_value != NULL ? label_value : "";
    int r = -1;
    if (name == NULL || !name_ok(name, true)) {
        return kmsd_strbuf_fail(err, errlen, -1, "\"%.64s\" is not a metric name",
                                name != NULL ? name : "");
    }
    if (label_name != NULL && (!name_ok(label_name, false) || strncmp(label_name, "__", 2) == 0 ||
                               strcmp(label_name, "le") == 0)) {
        return kmsd_strbuf_fail(err, errlen, -1, "\"%.64s\" is not a label name of ours",
                                label_name);
    }
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_set; i++) {
        if (strcmp(m->set[i].name, name) != 0) {
            continue;
        }
        if (m->set[i].type != type) {
            kmsd_strbuf_fail(err, errlen, -1, "%s was set as a %s before", name,
                             m->set[i].type == KMSD_METRIC_GAUGE ? "gauge" : "counter");
            goto out;
        }
        if (strcmp(m->set[i].label_name, ln) == 0 && strcmp(m->set[i].label_value, lv) == 0) {
            s = &m->set[i];
            break;
        }
    }
    if (s == NULL) {
        if (m->n_set == KMSD_METRICS_MAX_SET) {
            kmsd_strbuf_fail(err, errlen, -1, "more than %d set series", KMSD_METRICS_MAX_SET);
            goto out;
        }
        s = &m->set[m->n_set];
        s->help = strdup(help != NULL ? help : "");
        s->label_value = strdup(lv);
        if (s->help == NULL || s->label_value == NULL) {
            free(s->help);
            free(s->label_value);
            memset(s, 0, sizeof *s);
            kmsd_strbuf_fail(err, errlen, -1, "out of memory");
            goto out;
        }
        s->type = type;
        snprintf(s->name, sizeof s->name, "%s", name);
        snprintf(s->label_name, sizeof s->label_name, "%s", ln);
        m->n_set++;
    }
    s->value = value;
    r = 0;
out:
    pthread_mutex_unlock(&m->lock);
    return r;
}

/* ---- Rendering ------------------------------------------------------------------------------- */

static void sb_fmt(kmsd_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_fmt(kmsd_strbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) {
        kmsd_strbuf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
    }
}

/* Exposition format: in label values \, " and newline are escaped; in HELP text \ and newline. */
static void sb_escaped(kmsd_strbuf *b, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            kmsd_strbuf_str(b, "\\\\");
        } else if (*s == '\n') {
            kmsd_strbuf_str(b, "\\n");
        } else if (*s == '"' && quote) {
            kmsd_strbuf_str(b, "\\\"");
        } else {
            kmsd_strbuf_add(b, s, 1);
        }
    }
}

/* A float as Go's strconv.ParseFloat reads it: the shortest of %.15g..%.17g that reads back. */
static void sb_double(kmsd_strbuf *b, double v)
{
    char tmp[40];
    if (isnan(v)) {
        kmsd_strbuf_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        kmsd_strbuf_str(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) {
            break;
        }
    }
    kmsd_strbuf_str(b, tmp);
}

static void sb_header(kmsd_strbuf *b, const char *name, const char *help, const char *type)
{
    kmsd_strbuf_str(b, "# HELP ");
    kmsd_strbuf_str(b, name);
    kmsd_strbuf_str(b, " ");
    sb_escaped(b, help, false);
    kmsd_strbuf_str(b, "\n# TYPE ");
    kmsd_strbuf_str(b, name);
    kmsd_strbuf_str(b, " ");
    kmsd_strbuf_str(b, type);
    kmsd_strbuf_str(b, "\n");
}

static void render_requests(kmsd_metrics *m, kmsd_strbuf *b)
{
    size_t n_out = atomic_load_explicit(&m->n_outcomes, memory_order_acquire);
    sb_header(b, "kmsd_requests_total",
              "Requests answered, by operation and outcome (Success or the error's name).",
              "counter");
    for (size_t op = 0; op <= m->n_ops; op++) {
        for (size_t oc = 0; oc < KMSD_METRICS_MAX_OUTCOMES; oc++) {
            unsigned long long n = atomic_load(&m->requests[op * KMSD_METRICS_MAX_OUTCOMES + oc]);
            if (n == 0 || (oc >= n_out && oc != KMSD_METRICS_MAX_OUTCOMES - 1)) {
                continue;
            }
            kmsd_strbuf_str(b, "kmsd_requests_total{operation=\"");
            sb_escaped(b, m->ops[op], true);
            kmsd_strbuf_str(b, "\",outcome=\"");
            sb_escaped(b, m->outcomes[oc], true);
            sb_fmt(b, "\"} %llu\n", n);
        }
    }
}

static void render_latency(kmsd_metrics *m, kmsd_strbuf *b)
{
    sb_header(b, "kmsd_request_duration_seconds",
              "Seconds from a request's arrival to its answer, by operation.", "histogram");
    for (size_t op = 0; op <= m->n_ops; op++) {
        histogram *h = &m->latency[op];
        unsigned long long counts[N_BUCKETS + 1], total = 0;
        for (size_t i = 0; i <= N_BUCKETS; i++) {
            counts[i] = atomic_load(&h->buckets[i]);
            total += counts[i];
        }
        if (total == 0) {
            continue;
        }
        /* The sum may include an observation the counts do not yet (no lock on the hot
         * path): a scrape is a snapshot to within one request. */
        unsigned long long cumulative = 0;
        for (size_t i = 0; i <= N_BUCKETS; i++) {
            cumulative += counts[i];
            kmsd_strbuf_str(b, "kmsd_request_duration_seconds_bucket{operation=\"");
            sb_escaped(b, m->ops[op], true);
            kmsd_strbuf_str(b, "\",le=\"");
            kmsd_strbuf_str(b, i < N_BUCKETS ? bucket_text[i] : "+Inf");
            sb_fmt(b, "\"} %llu\n", cumulative);
        }
        kmsd_strbuf_str(b, "kmsd_request_duration_seconds_sum{operation=\"");
        sb_escaped(b, m->ops[op], true);
        kmsd_strbuf_str(b, "\"} ");
        sb_double(b, (double)atomic_load(&h->sum_ns) / 1e9);
        kmsd_strbuf_str(b, "\nkmsd_request_duration_seconds_count{operation=\"");
        sb_escaped(b, m->ops[op], true);
        sb_fmt(b, "\"} %llu\n", total);
    }
}

/* The set series, grouped by name (one HELP and TYPE each) in the order names were first set. */
static void render_set(kmsd_metrics *m, kmsd_strbuf *b)
{
    for (size_t i = 0; i < m->n_set; i++) {
        bool first = true;
        for (size_t j = 0; j < i && first; j++) {
            first = strcmp(m->set[j].name, m->set[i].name) != 0;
        }
        if (!first) {
            continue;
        }
        sb_header(b, m->set[i].name, m->set[i].help,
                  m->set[i].type == KMSD_METRIC_GAUGE ? "gauge" : "counter");
        for (size_t j = i; j < m->n_set; j++) {
            const set_series *s = &m->set[j];
            if (strcmp(s->name, m->set[i].name) != 0) {
                continue;
            }
            kmsd_strbuf_str(b, s->name);
            if (s->label_name[0] != '\0') {
                kmsd_strbuf_str(b, "{");
                kmsd_strbuf_str(b, s->label_name);
                kmsd_strbuf_str(b, "=\"");
                sb_escaped(b, s->label_value, true);
                kmsd_strbuf_str(b, "\"}");
            }
            kmsd_strbuf_str(b, " ");
            sb_double(b, s->value);
            kmsd_strbuf_str(b, "\n");
        }
    }
}

int kmsd_metrics_render(kmsd_metrics *m, const char *extra_text, char **out)
{
    kmsd_strbuf b = {0};
    *out = NULL;
    pthread_mutex_lock(&m->lock);
    render_requests(m, &b);
    render_latency(m, &b);
    render_set(m, &b);
    pthread_mutex_unlock(&m->lock);
    if (extra_text != NULL) {
        kmsd_strbuf_str(&b, extra_text);
    }
    *out = kmsd_strbuf_take(&b);
    return *out != NULL ? 0 : -1;
}
