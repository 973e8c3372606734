/* kmsbench: in-process operations per second of libkms, one JSON object per measurement.
 *
 *   kmsbench [--home DIR] [--threads N] [--seconds S] [--operation NAME]
 *            [--records N] [--segment-records N]
 *   kmsbench --endpoint-url URL [--connections N] [--ca-bundle FILE] [--seconds S]
 *            [--operation NAME]
 *
 * Each measurement gives operations per second and the latency of one operation (p50, p99).
 * The remote mode measures a KMS server (kmsd) through libkms's remote client, as an application
 * on another machine uses it: N threads share one client, whose pool gives each thread in
 * flight its own kept-alive connection, and each request is signed (SigV4) in the load
 * generator. Threads rather than one curl multi loop, so that the figures are those of the
 * client code applications run (signing, JSON, retries, the pool), not of a special load
 * generator; 64 threads blocked on sockets cost little. Credentials as for kmsctl
 * --endpoint-url (KMS_ACCESS_KEY_ID..., else the default profile of $KMS_HOME/credentials).
 *
 * Without --home it creates a fresh KMS home in a temporary folder and removes it afterwards.
 * Without --threads it measures 1 and 2 threads; without --operation every operation but those
 * that run only on request.
 * PolicyEvaluate (policy_bench.c) measures the policy engine alone: it needs no KMS home and
 * runs on one thread unless --threads says otherwise.
 * LookupEvents (audit_bench.c) times the audit trail's readers once each on a synthetic trail of
 * --records records; it needs no KMS home, takes long (about 40 s for a million records) and
 * so runs only when --operation names it. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit_bench.h"
#include "bench_stats.h"
#include "hsm_bench.h"
#include "kms/kms.h"
#include "policy_bench.h"
#include "tls_bench.h"

#define DEFAULT_RECORDS 1000000
#define DEFAULT_SEGMENT_RECORDS 10000
/* LookupEvents needs a second page of Decrypt events (one record in eight). */
#define MIN_RECORDS 1000
#define MAX_RECORDS 100000000
#define MAX_THREADS 64
/* The remote mode's connection counts when --connections is not given (the figures). */
static const int default_connections[] = {1, 16, 64};

typedef struct bench_ctx {
    kms_client *client;
    bool remote; /* client is a remote one: the figures say "connections" */
    const char *sym_key;
    const char *sign_key;
    uint8_t *blob;        /* a ciphertext for Decrypt */
    policy_bench *policy; /* PolicyEvaluate */
    size_t blob_len;
    double seconds;
    int64_t records, segment_records; /* LookupEvents */
    int port;                         /* TlsServer */
    atomic_bool stop;
    atomic_int failures;
} bench_ctx;

/* One operation, repeated for --seconds and counted. */
typedef int (*bench_fn)(bench_ctx *b);
/* An operation that makes and prints its own measurements, once. */
typedef int (*bench_once_fn)(const bench_ctx *b);

static const kms_context_entry ctx_entries[] = {{"purpose", "bench"}};
static const kms_encryption_context ctx = {ctx_entries, 1};
static const uint8_t message[32] = "kmsbench plaintext of 32 bytes.";

static int op_encrypt(bench_ctx *b)
{
    uint8_t *blob = NULL;
    size_t n = 0;
    int rc = kms_encrypt(b->client, b->sym_key, message, sizeof message, &ctx, &blob, &n);
    kms_buffer_free(blob);
    return rc;
}

static int op_decrypt(bench_ctx *b)
{
    uint8_t *pt = NULL;
    size_t n = 0;
    int rc = kms_decrypt(b->client, NULL, b->blob, b->blob_len, &ctx, &pt, &n, NULL);
    kms_secret_free(pt, n);
    return rc;
}

static int op_generate_data_key(bench_ctx *b)
{
    uint8_t *dk = NULL, *blob = NULL;
    size_t n = 0;
    int rc = kms_generate_data_key(b->client, b->sym_key, 32, &ctx, &dk, &blob, &n);
    kms_secret_free(dk, 32);
    kms_buffer_free(blob);
    return rc;
}

static int op_sign(bench_ctx *b)
{
    uint8_t *sig = NULL;
    size_t n = 0;
    int rc =
        kms_sign(b->client, b->sign_key, message, sizeof message, "RAW", "ECDSA_SHA_256", &sig, &n);
    kms_buffer_free(sig);
    return rc;
}

static int op_policy_evaluate(bench_ctx *b)
{
    return policy_bench_run(b->policy);
}

static int op_lookup_events(const bench_ctx *b)
{
    return audit_bench_run(b->records, b->segment_records);
}

static int op_tls_sign(const bench_ctx *b)
{
    return tls_bench_sign(b->client, b->seconds);
}

static int op_tls_server(const bench_ctx *b)
{
    return tls_bench_serve(b->client, b->port, b->seconds);
}

static const struct {
    const char *name;
    bench_fn fn;        /* or: */
    bench_once_fn once; /* its own measurements, once; --threads and --seconds do not apply */
    bool needs_client;  /* false: measured without a KMS home, on one thread by default */
    bool on_request;    /* only when --operation names it */
    const char *help;
} operations[] = {
    {"Encrypt", op_encrypt, NULL, true, false, "kms_encrypt of 32 bytes"},
    {"Decrypt", op_decrypt, NULL, true, false, "kms_decrypt of such a ciphertext"},
    {"GenerateDataKey", op_generate_data_key, NULL, true, false, "a 32-byte data key"},
    {"HsmEncrypt", hsm_bench_encrypt, NULL, true, false,
     "the bare PKCS#11 AES-GCM encryption of 32 bytes under the same key (no gate, no audit)"},
    {"Sign", op_sign, NULL, true, false, "ECDSA P-256 over a 32-byte message"},
    {"PolicyEvaluate", op_policy_evaluate, NULL, false, false,
     "the policy engine alone (one thread, no KMS home)"},
    {"LookupEvents", NULL, op_lookup_events, false, true,
     "audit lookup-events, usage-report, validate-logs (no KMS home; on request)"},
    {"TlsSign", NULL, op_tls_sign, true, true,
     "ECDSA P-256 signatures: the key store, kms-hsm through EVP, a key in memory (on request)"},
    {"TlsServer", NULL, op_tls_server, true, true,
     "a TLS server with its P-256 key in the HSM on 127.0.0.1:--port, for --seconds or until "
     "SIGTERM (on request; scripts/bench-tls.sh drives it)"},
};

#define N_OPERATIONS (sizeof operations / sizeof operations[0])

/* Whether operation i runs: the one --operation names, else every one not on request; in the
 * remote mode, only the key operations measured call by call (Encrypt, Decrypt,
 * GenerateDataKey, Sign). */
static bool selected(size_t i, const char *only, bool remote)
{
    /* HsmEncrypt reaches the token itself: no server has one to offer. */
    if (remote && !(operations[i].needs_client && operations[i].fn != NULL &&
                    operations[i].fn != hsm_bench_encrypt)) {
        return false;
    }
    return only != NULL ? strcmp(only, operations[i].name) == 0 : !operations[i].on_request;
}

typedef struct worker {
    pthread_t thread;
    bench_ctx *b;
    bench_fn fn;
    long ops;
    double *latency; /* seconds, one per operation */
    size_t n_latency, cap_latency;
} worker;

static double now(void);

static void latency_add(worker *w, double seconds)
{
    if (w->n_latency == w->cap_latency) {
        size_t cap = w->cap_latency ? 2 * w->cap_latency : 4096;
        double *p = realloc(w->latency, cap * sizeof *p);
        if (p == NULL) {
            return; /* the figure then covers fewer operations */
        }
        w->latency = p;
        w->cap_latency = cap;
    }
    w->latency[w->n_latency++] = seconds;
}

static void *work(void *arg)
{
    worker *w = arg;
    while (!atomic_load(&w->b->stop)) {
        double t0 = now();
        int rc = w->fn(w->b);
        latency_add(w, now() - t0);
        if (rc != 0) {
            if (atomic_fetch_add(&w->b->failures, 1) == 0) {
                fprintf(stderr, "kmsbench: %s: %s\n", kms_error_name(kms_last_error()),
                        kms_last_error_message());
            }
            break;
        }
        w->ops++;
    }
    return NULL;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (0-100) of the workers' latencies, in milliseconds. */
static void percentiles(const worker *w, int threads, double *p50, double *p99)
{
    size_t n = 0;
    *p50 = *p99 = 0;
    for (int i = 0; i < threads; i++) {
        n += w[i].n_latency;
    }
    double *all = n > 0 ? malloc(n * sizeof *all) : NULL;
    if (all == NULL) {
        return;
    }
    n = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + n, w[i].latency, w[i].n_latency * sizeof *all);
        n += w[i].n_latency;
    }
    qsort(all, n, sizeof *all, cmp_double);
    *p50 = 1000 * all[(n - 1) * 50 / 100];
    *p99 = 1000 * all[(n - 1) * 99 / 100];
    free(all);
}

static int measure(bench_ctx *b, const char *name, bench_fn fn, int threads)
{
    worker w[MAX_THREADS];
    int started = 0, rc = -1;
    atomic_store(&b->stop, false);
    bench_stats before, after;
    bench_stats_take(b->remote ? NULL : b->client, &before);
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){.b = b, .fn = fn};
        if (pthread_create(&w[i].thread, NULL, work, &w[i]) != 0) {
            fprintf(stderr, "kmsbench: cannot start a thread\n");
            atomic_store(&b->stop, true);
            break;
        }
        started++;
    }
    struct timespec ts = {(time_t)b->seconds,
                          (long)((b->seconds - (double)(time_t)b->seconds) * 1e9)};
    if (started == threads) {
        nanosleep(&ts, NULL);
    }
    atomic_store(&b->stop, true);
    long total = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(w[i].thread, NULL);
        total += w[i].ops;
    }
    double elapsed = now() - t0;
    bench_stats_take(b->remote ? NULL : b->client, &after);
    char figures[512];
    bench_stats_describe(&before, &after, total, elapsed, figures, sizeof figures);
    double p50 = 0, p99 = 0;
    if (started == threads && atomic_load(&b->failures) == 0) {
        percentiles(w, threads, &p50, &p99);
        printf("{\"operation\": \"%s\", \"%s\": %d, \"seconds\": %.3f, \"ops\": %ld, "
               "\"ops_per_sec\": %.0f, \"p50_ms\": %.3f, \"p99_ms\": %.3f%s}\n",
               name, b->remote ? "connections" : "threads", threads, elapsed, total,
               (double)total / elapsed, p50, p99, figures);
        fflush(stdout);
        rc = 0;
    }
    for (int i = 0; i < started; i++) {
        free(w[i].latency);
    }
    return rc;
}

/* The home's client, or with an endpoint a remote client (credentials: the environment, else
 * the profile of home/credentials when --home is given, else as kms_client_open_remote finds
 * them). */
static kms_client *open_client(const char *home, const char *endpoint, const char *ca_bundle)
{
    if (endpoint == NULL) {
        kms_client_options opts = {.home = home};
        return kms_client_open(&opts);
    }
    char file[4096] = "";
    if (home != NULL) {
        snprintf(file, sizeof file, "%s/credentials", home);
    }
    kms_remote_options ropts = {.endpoint_url = endpoint,
                                .ca_bundle = ca_bundle,
                                .credentials_file = file[0] ? file : NULL,
                                .user_agent = "kmsbench/0.1.0"};
    return kms_client_open_remote(&ropts);
}

/* Creates a key with kms_call and returns its KeyId (malloc'd). */
static char *create_key(kms_client *c, const char *request)
{
    char *resp = NULL;
    if (kms_call(c, "CreateKey", request, &resp) != 0) {
        fprintf(stderr, "kmsbench: CreateKey: %s\n", kms_last_error_message());
        return NULL;
    }
    const char *p = strstr(resp, "\"KeyId\":\"");
    char *id = p ? strndup(p + 9, 36) : NULL;
    kms_string_free(resp);
    return id;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kmsbench [--home DIR] [--threads N] [--seconds S] [--operation NAME]\n"
               "                [--records N] [--segment-records N] [--port N]\n"
               "       kmsbench --endpoint-url URL [--connections N] [--ca-bundle FILE]\n"
               "                [--home DIR [--in-process-too]] [--seconds S] [--operation NAME]\n"
               "Measures in-process operations per second of libkms, and the latency of one\n"
               "operation (p50_ms, p99_ms), and prints one JSON object per measurement. Without\n"
               "--operation, every operation but those run on request. In-process key\n"
               "operations also report the audit trail's group commit: records_per_flush (mean,\n"
               "and the power of two at most which 50%% / 99%% of flushes held), flushes_per_sec,\n"
               "sync_us_per_flush (fdatasync), and wait_us_per_op: the time an operation waited\n"
               "for its audit record to be durable, for the trail's LOCK, for the database and\n"
               "for an HSM session.\n"
               "With --endpoint-url, measures a KMS server (kmsd) through libkms's remote client:\n"
               "N threads (--connections, default 1, 16 and 64 in turn) share one client, each\n"
               "with its own kept-alive connection, every request signed with SigV4. Operations\n"
               "Encrypt, Decrypt, GenerateDataKey and Sign; credentials from KMS_ACCESS_KEY_ID /\n"
               "KMS_SECRET_ACCESS_KEY, else the default profile of --home's credentials (else\n"
               "$KMS_HOME's); the server's CA from --ca-bundle (kmsd writes HOME/kmsd-ca.pem).\n"
               "--in-process-too follows each remote figure with the in-process one on the\n"
               "server's home (--home, on this machine) with as many threads as connections.\n"
               "Operations:\n");
    for (size_t i = 0; i < N_OPERATIONS; i++) {
        fprintf(f, "  %-16s %s\n", operations[i].name, operations[i].help);
    }
    fprintf(
        f,
        "Without --home a temporary KMS home is created under $TMPDIR (else /tmp) and removed.\n"
        "LookupEvents times each audit reader once on a synthetic trail of --records N\n"
        "(default %d) records in segments of --segment-records N (default %d),\n"
        "written under $TMPDIR (else /tmp) and removed afterwards. It takes about 40 s\n"
        "for a million records, so it runs only when --operation names it.\n"
        "TlsServer serves TLS on 127.0.0.1:--port with a P-256 key held in the HSM, for\n"
        "--seconds or until SIGTERM, then prints its handshake and HSM counts.\n"
        "Examples: kmsbench --operation GenerateDataKey --threads 2 --seconds 5\n"
        "          kmsbench --operation LookupEvents --records 200000\n"
        "          kmsbench --endpoint-url https://127.0.0.1:8443 --ca-bundle H/kmsd-ca.pem \\\n"
        "              --home H --operation GenerateDataKey --connections 16\n",
        DEFAULT_RECORDS, DEFAULT_SEGMENT_RECORDS);
}

/* A whole decimal number in [min, max]. */
static bool parse_count(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

/* nftw callback of the temporary home's removal (depth first, links not followed). */
static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    const char *home = NULL, *only = NULL, *endpoint = NULL, *ca_bundle = NULL;
    int threads = 0, port = 0, connections = 0;
    bool in_process_too = false;
    double seconds = 3;
    int64_t records = DEFAULT_RECORDS, segment_records = DEFAULT_SEGMENT_RECORDS;
    static const struct option longopts[] = {{"home", required_argument, NULL, 'H'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"seconds", required_argument, NULL, 's'},
                                             {"operation", required_argument, NULL, 'o'},
                                             {"records", required_argument, NULL, 'r'},
                                             {"segment-records", required_argument, NULL, 'S'},
                                             {"port", required_argument, NULL, 'p'},
                                             {"endpoint-url", required_argument, NULL, 'E'},
                                             {"connections", required_argument, NULL, 'c'},
                                             {"ca-bundle", required_argument, NULL, 'C'},
                                             {"in-process-too", no_argument, NULL, 'I'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'H':
            home = optarg;
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'o':
            only = optarg;
            break;
        case 'r':
            if (!parse_count(optarg, MIN_RECORDS, MAX_RECORDS, &records)) {
                fprintf(stderr, "kmsbench: --records takes %d-%d\n", MIN_RECORDS, MAX_RECORDS);
                return 2;
            }
            break;
        case 'S':
            if (!parse_count(optarg, 1, MAX_RECORDS, &segment_records)) {
                fprintf(stderr, "kmsbench: --segment-records takes 1-%d\n", MAX_RECORDS);
                return 2;
            }
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'E':
            endpoint = optarg;
            break;
        case 'c':
            connections = atoi(optarg);
            break;
        case 'C':
            ca_bundle = optarg;
            break;
        case 'I':
            in_process_too = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((threads != 0 && (threads < 1 || threads > MAX_THREADS)) ||
        (connections != 0 && (connections < 1 || connections > MAX_THREADS)) || seconds <= 0 ||
        seconds > 3600) {
        fprintf(stderr, "kmsbench: --threads and --connections take 1-%d, --seconds 0-3600\n",
                MAX_THREADS);
        return 2;
    }
    bool remote = endpoint != NULL;
    if (in_process_too && (!remote || home == NULL)) {
        fprintf(stderr,
                "kmsbench: --in-process-too needs --endpoint-url and the server's --home\n");
        return 2;
    }
    if ((connections != 0 && !remote) || (threads != 0 && remote)) {
        fprintf(stderr, "kmsbench: --connections goes with --endpoint-url, --threads without\n");
        return 2;
    }
    bool need_client = false, known = false;
    for (size_t i = 0; i < N_OPERATIONS; i++) {
        if (selected(i, only, remote)) {
            known = true;
            need_client = need_client || operations[i].needs_client;
        }
    }
    if (!known) {
        fprintf(stderr, "kmsbench: unknown operation '%s'%s\n", only,
                remote ? " in the remote mode (Encrypt, Decrypt, GenerateDataKey, Sign)" : "");
        usage(stderr);
        return 1;
    }
    /* The temporary home goes under $TMPDIR (else /tmp), as LookupEvents' trail does: on tmpfs
     * the figures measure the code rather than the disk's flush. */
    const char *tmpdir = getenv("TMPDIR");
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/kmsbench.XXXXXX",
             tmpdir != NULL && tmpdir[0] != '\0' && strlen(tmpdir) < 400 ? tmpdir : "/tmp");
    bool temporary = home == NULL && need_client && !remote;
    if (temporary) {
        if (mkdtemp(tmp) == NULL) {
            perror("kmsbench: mkdtemp");
            return 1;
        }
        home = tmp;
        rmdir(tmp);
        if (kms_home_init(home, NULL) != 0) {
            fprintf(stderr, "kmsbench: init %s: %s\n", home, kms_last_error_message());
            return 1;
        }
    }
    int rc = 1;
    bench_ctx b = {
        .seconds = seconds, .records = records, .segment_records = segment_records, .port = port};
    bench_ctx local = {0};
    char *sym = NULL, *sig = NULL;
    if (!remote && (only == NULL || strcmp(only, "PolicyEvaluate") == 0)) {
        b.policy = policy_bench_new();
        if (b.policy == NULL) {
            goto out;
        }
    }
    if (!need_client) {
        goto run;
    }
    b.client = open_client(home, endpoint, ca_bundle);
    b.remote = remote;
    sym = b.client ? create_key(b.client, "{\"Description\": \"kmsbench\"}") : NULL;
    sig = b.client ? create_key(b.client, "{\"Description\": \"kmsbench\", \"KeySpec\": "
                                          "\"ECC_NIST_P256\", \"KeyUsage\": \"SIGN_VERIFY\"}")
                   : NULL;
    if (sym == NULL || sig == NULL) {
        if (b.client == NULL) {
            fprintf(stderr, "kmsbench: %s\n", kms_last_error_message());
        }
        goto out;
    }
    b.sym_key = sym;
    b.sign_key = sig;
    if (kms_encrypt(b.client, sym, message, sizeof message, &ctx, &b.blob, &b.blob_len) != 0) {
        fprintf(stderr, "kmsbench: %s\n", kms_last_error_message());
        goto out;
    }
    /* The same keys measured in-process on the server's home, each figure after the remote one
     * with as many threads as connections. */
    if (in_process_too) {
        local = b;
        local.remote = false;
        local.client = open_client(home, NULL, NULL);
        if (local.client == NULL) {
            fprintf(stderr, "kmsbench: %s: %s\n", home, kms_last_error_message());
            goto out;
        }
    }
run:
    for (size_t i = 0; i < N_OPERATIONS; i++) {
        if (!selected(i, only, remote)) {
            continue;
        }
        if (remote) {
            size_t n = connections ? 1 : sizeof default_connections / sizeof default_connections[0];
            for (size_t k = 0; k < n; k++) {
                int conns = connections ? connections : default_connections[k];
                if (measure(&b, operations[i].name, operations[i].fn, conns) != 0 ||
                    (local.client != NULL &&
                     measure(&local, operations[i].name, operations[i].fn, conns) != 0)) {
                    goto out;
                }
            }
            continue;
        }
        if (operations[i].once != NULL) {
            if (operations[i].once(&b) != 0) {
                goto out;
            }
            continue;
        }
        int most = threads ? threads : (operations[i].needs_client ? 2 : 1);
        for (int t = threads ? threads : 1; t <= most; t++) {
            if (measure(&b, operations[i].name, operations[i].fn, t) != 0) {
                goto out;
            }
        }
    }
    rc = 0;
out:
    kms_buffer_free(b.blob);
    free(sym);
    free(sig);
    kms_client_free(b.client);
    kms_client_free(local.client);
    policy_bench_free(b.policy);
    if (temporary && nftw(home, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        fprintf(stderr, "kmsbench: could not remove %s\n", home);
    }
    return rc;
}
