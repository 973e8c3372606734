/* A burst of audited Encrypt calls for the crash test (test_audit.sh): THREADS threads call
 * Encrypt on KEY without end, each with the encryption context {"burst": "T-N"}, and print
 * "T-N" on standard output once the call returned success, i.e. once its audit record is
 * durable. The test kills the process with SIGKILL and checks that every printed tag is in the
 * trail.
 *
 *   audit_burst HOME KEY THREADS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms/kms.h"

static kms_client *client;
static const char *key;

static void *burst(void *arg)
{
    int t = (int)(long)arg;
    const uint8_t pt[4] = {1, 2, 3, 4};
    for (long n = 1;; n++) {
        char tag[64];
        snprintf(tag, sizeof tag, "%d-%ld", t, n);
        kms_context_entry e = {"burst", tag};
        kms_encryption_context ctx = {&e, 1};
        uint8_t *blob = NULL;
        size_t len = 0;
        if (kms_encrypt(client, key, pt, sizeof pt, &ctx, &blob, &len) == 0) {
            char line[80];
            int k = snprintf(line, sizeof line, "%s\n", tag);
            /* One write per line: a kill leaves whole lines (or a last partial one). */
            if (write(STDOUT_FILENO, line, (size_t)k) != k) {
                abort();
            }
            kms_buffer_free(blob);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: audit_burst HOME KEY THREADS\n");
        return 2;
    }
    kms_client_options o = {.home = argv[1], .user_agent = "audit_burst"};
    client = kms_client_open(&o);
    if (client == NULL) {
        fprintf(stderr, "audit_burst: %s\n", kms_last_error_message());
        return 1;
    }
    key = argv[2];
    int threads = atoi(argv[3]);
    pthread_t th[64];
    for (int i = 0; i < threads && i < 64; i++) {
        pthread_create(&th[i], NULL, burst, (void *)(long)(i + 1));
    }
    for (int i = 0; i < threads && i < 64; i++) {
        pthread_join(th[i], NULL);
    }
    return 0;
}
