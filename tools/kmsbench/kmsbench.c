/* kmsbench: in-process operations per second of libkms, one JSON object per measurement.
 *
 *   kmsbench [--home DIR] [--threads N] [--seconds S] [--operation NAME]
 *
 * Without --home it creates a fresh KMS home in a temporary folder and removes it afterwards.
 * Without --threads it measures 1 and 2 threads; without --operation every operation.
 * PolicyEvaluate (policy_bench.c) measures the policy engine alone: it needs no KMS home and
 * runs on one thread unless --threads says otherwise. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kms/kms.h"
#include "policy_bench.h"

typedef struct bench_ctx {
    kms_client *client;
    const char *sym_key;
    const char *sign_key;
    uint8_t *blob; /* a ciphertext for Decrypt */
    policy_bench *policy; /* PolicyEvaluate */
    size_t blob_len;
    double seconds;
    atomic_bool stop;
    atomic_int failures;
} bench_ctx;

typedef int (*bench_fn)(bench_ctx *b);

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
    int rc = kms_sign(b->client, b->sign_key, message, sizeof message, "RAW", "ECDSA_SHA_256",
                      &sig, &n);
    kms_buffer_free(sig);
    return rc;
}

static int op_policy_evaluate(bench_ctx *b)
{
    return policy_bench_run(b->policy);
}

static const struct {
    const char *name;
    bench_fn fn;
    bool needs_client; /* false: measured without a KMS home, on one thread by default */
} operations[] = {
    {"Encrypt", op_encrypt, true},
    {"Decrypt", op_decrypt, true},
    {"GenerateDataKey", op_generate_data_key, true},
    {"Sign", op_sign, true},
    {"PolicyEvaluate", op_policy_evaluate, false},
};

typedef struct worker {
    pthread_t thread;
    bench_ctx *b;
    bench_fn fn;
    long ops;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    while (!atomic_load(&w->b->stop)) {
        if (w->fn(w->b) != 0) {
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

static int measure(bench_ctx *b, const char *name, bench_fn fn, int threads)
{
    worker w[64];
    atomic_store(&b->stop, false);
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){.b = b, .fn = fn};
        if (pthread_create(&w[i].thread, NULL, work, &w[i]) != 0) {
            fprintf(stderr, "kmsbench: cannot start a thread\n");
            return -1;
        }
    }
    struct timespec ts = {(time_t)b->seconds,
                          (long)((b->seconds - (double)(time_t)b->seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&b->stop, true);
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].thread, NULL);
        total += w[i].ops;
    }
    double elapsed = now() - t0;
    if (atomic_load(&b->failures) > 0) {
        return -1;
    }
    printf("{\"operation\": \"%s\", \"threads\": %d, \"seconds\": %.3f, \"ops\": %ld, "
           "\"ops_per_sec\": %.0f}\n",
           name, threads, elapsed, total, (double)total / elapsed);
    fflush(stdout);
    return 0;
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
               "Measures in-process operations per second of libkms and prints one JSON object\n"
               "per measurement. Operations: Encrypt, Decrypt, GenerateDataKey, Sign,\n"
               "PolicyEvaluate (the policy engine alone, one thread, no KMS home).\n"
               "Without --home a temporary KMS home is created and removed.\n"
               "Example: kmsbench --operation GenerateDataKey --threads 2 --seconds 5\n");
}

int main(int argc, char **argv)
{
    const char *home = NULL, *only = NULL;
    int threads = 0;
    double seconds = 3;
    static const struct option longopts[] = {{"home", required_argument, NULL, 'H'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"seconds", required_argument, NULL, 's'},
                                             {"operation", required_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'H': home = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'o': only = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if ((threads != 0 && (threads < 1 || threads > 64)) || seconds <= 0 || seconds > 3600) {
        fprintf(stderr, "kmsbench: --threads takes 1-64 and --seconds 0-3600\n");
        return 2;
    }
    bool need_client = false, known = false;
    for (size_t i = 0; i < sizeof operations / sizeof operations[0]; i++) {
        if (only == NULL || strcmp(only, operations[i].name) == 0) {
            known = true;
            need_client = need_client || operations[i].needs_client;
        }
    }
    if (!known) {
        fprintf(stderr, "kmsbench: unknown operation '%s'\n", only);
        usage(stderr);
        return 1;
    }
    char tmp[] = "/tmp/kmsbench.XXXXXX";
    bool temporary = home == NULL && need_client;
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
    bench_ctx b = {.seconds = seconds};
    char *sym = NULL, *sig = NULL;
    if (only == NULL || strcmp(only, "PolicyEvaluate") == 0) {
        b.policy = policy_bench_new();
        if (b.policy == NULL) {
            goto out;
        }
    }
    if (!need_client) {
        goto run;
    }
    kms_client_options opts = {.home = home};
    b.client = kms_client_open(&opts);
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
run:
    for (size_t i = 0; i < sizeof operations / sizeof operations[0]; i++) {
        if (only != NULL && strcmp(only, operations[i].name) != 0) {
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
    policy_bench_free(b.policy);
    if (temporary) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
        if (system(cmd) != 0) {
            fprintf(stderr, "kmsbench: could not remove %s\n", home);
        }
    }
    return rc;
}
