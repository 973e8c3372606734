/* kmsctl run-scheduler: kms_scheduler_run once (--once) or in the foreground until SIGTERM or
 * SIGINT. The signals are blocked and waited for with sigtimedwait, so a stop request never
 * interrupts an action: it is seen between runs, at once. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kms/kms.h"
#include "kmsctl.h"

#define DEFAULT_INTERVAL 3600

/* One run, its report printed as one JSON line (or as --output/--query ask). 0: no action
 * failed; 1: some did (listed under Errors); -1: the run itself failed (error printed). */
static int run_once(kms_client *client, const struct globals *g)
{
    char *report = NULL;
    if (kms_scheduler_run(client, &report) != 0) {
        kmsctl_service_error();
        return -1;
    }
    json_t *v = json_loads(report, 0, NULL);
    kms_string_free(report);
    if (v == NULL) {
        kmsctl_error_json("KMSInternalException", "kmsctl: the scheduler's report is not JSON");
        return -1;
    }
    int failed = json_array_size(json_object_get(v, "Errors")) > 0;
    int r = kmsctl_print_value(g, v);
    json_decref(v);
    fflush(stdout);
    return r != KMSCTL_EXIT_OK ? -1 : failed;
}

int kmsctl_run_scheduler(const struct command *cmd, const struct globals *g, json_t *request)
{
    bool once = json_is_true(json_object_get(request, "Once"));
    json_t *iv = json_object_get(request, "Interval");
    long long interval = iv != NULL ? json_integer_value(iv) : DEFAULT_INTERVAL;
    if (interval < 1 || interval > 86400 * 30) {
        return kmsctl_usage_error(cmd, "argument --interval: give 1 to 2592000 seconds");
    }
    /* Blocked before the client opens, so that a SIGTERM during the first run waits for it. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (!once && sigprocmask(SIG_BLOCK, &stop, NULL) != 0) {
        return kmsctl_error_json("KMSInternalException", "kmsctl: cannot block SIGTERM");
    }
    kms_client *client = kmsctl_client_open(g);
    if (client == NULL) {
        return kmsctl_service_error();
    }
    int r = KMSCTL_EXIT_OK;
    for (;;) {
        int ran = run_once(client, g);
        if (once) {
            r = ran == 0 ? KMSCTL_EXIT_OK : KMSCTL_EXIT_SERVICE;
            break;
        }
        /* Sleep until the next due date or the interval, whichever comes first. A failed run
         * (the audit log full, the database busy) is tried again after the interval. */
        int64_t next = 0;
        int64_t now = (int64_t)time(NULL);
        int64_t wait = interval;
        if (ran >= 0 && kms_scheduler_next_due(client, &next) == 0 && next > now &&
            next - now < wait) {
            wait = next - now;
        }
        struct timespec ts = {.tv_sec = (time_t)wait, .tv_nsec = 0};
        int sig = sigtimedwait(&stop, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            fprintf(stderr, "kmsctl run-scheduler: stopped by %s\n",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            r = kmsctl_error_json("KMSInternalException", "kmsctl: sigtimedwait failed");
            break;
        }
    }
    kms_client_free(client);
    return r;
}
