/* kmsctl advisor (issue 15): runs the read-only checks of advisor_*.c over a home and reports
 * the findings by severity. Nothing of the home changes: no request goes through the gate, so
 * no record is written (as validate-logs); only the trail's derived index (HOME/audit-index.db)
 * may be brought up to date by the lookups, as lookup-events does. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/advisor.h"
#include "service/audit_trail.h"
#include "util/util.h"

/* ---- Findings -------------------------------------------------------------------------------- */

int kms_advisor_add(kms_advisor *a, const char *check, const char *severity, const char *resource,
                    const char *why, const char *fix_fmt, ...)
{
    char *fix = NULL;
    va_list ap;
    va_start(ap, fix_fmt);
    int n = vasprintf(&fix, fix_fmt, ap);
    va_end(ap);
    KMS_ENSURE(n >= 0, KMS_ERR_INTERNAL, "out of memory");
    json_t *f = json_pack("{s:s, s:s, s:o, s:s, s:s}", "Check", check, "Severity", severity,
                          "Resource", kms_audit_json_text(resource), "Why", why, "Fix", fix);
    free(fix);
    KMS_ENSURE(f != NULL, KMS_ERR_INTERNAL, "out of memory");
    KMS_ENSURE(json_array_append_new(a->findings, f) == 0, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

/* ---- The trail's events ---------------------------------------------------------------------- */

/* One page's events through fn; *stop once fn asked to stop or max events were seen. */
static int events_page(json_t *page, size_t max, size_t *seen, kms_advisor_event_fn fn, void *arg,
                       bool *stop)
{
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(page, "Events"), i, ev)
    {
        const char *line = json_string_value(json_object_get(ev, "CloudTrailEvent"));
        json_t *record = line != NULL ? json_loads(line, 0, NULL) : NULL;
        int r = fn(arg, ev, record);
        json_decref(record);
        if (r < 0) {
            return -1;
        }
        if (r > 0 || ++*seen >= max) {
            *stop = true;
            return 0;
        }
    }
    return 0;
}

int kms_advisor_events(kms_advisor *a, const char *key, const char *value, int64_t since,
                       size_t max, kms_advisor_event_fn fn, void *arg)
{
    int r = -1;
    char *token = NULL;
    json_t *page = NULL;
    size_t seen = 0;
    bool stop = false;
    /* As lookup-events lists them: only records the chain and the HSM's acks cover. */
    kms_trail_trust t;
    if (kms_audit_trail_trust_load(a->client, &t) != 0) {
        return -1;
    }
    do {
        kms_audit_query q = {.attribute_key = key,
                             .attribute_value = value,
                             .start = since,
                             .max_results = 50,
                             .next_token = token,
                             .trust = &t.trust};
        if (kms_audit_lookup(t.dir, &q, &page) != 0) {
            if (kms_last_error() != KMS_ERR_AUDIT) {
                goto out;
            }
            /* The trail is not the chain its writer acknowledged: no event is trusted.
             * Audit.TrailInvalid says what is wrong; the report notes what did not run. */
            kms_error_clear();
            a->events_refused = true;
            break;
        }
        if (events_page(page, max, &seen, fn, arg, &stop) != 0) {
            goto out;
        }
        const char *next = json_string_value(json_object_get(page, "NextToken"));
        free(token);
        token = next != NULL ? strdup(next) : NULL;
        json_decref(page);
        page = NULL;
    } while (!stop && token != NULL);
    r = 0;
out:
    json_decref(page);
    free(token);
    kms_audit_trail_trust_clean_up(&t);
    return r;
}

/* ---- The report ------------------------------------------------------------------------------ */

static const char *const severities[] = {KMS_ADVISOR_CRITICAL, KMS_ADVISOR_HIGH,
                                         KMS_ADVISOR_WARNING, KMS_ADVISOR_INFO};
static const char *const summary_names[] = {"Critical", "High", "Warning", "Info"};

/* {"Findings": [worst first, in the order found], "Summary": {...}}. */
static json_t *report_build(const kms_advisor *a, bool complete)
{
    json_t *sorted = json_array();
    json_t *summary = json_object();
    json_t *report = NULL;
    json_int_t gating = 0;
    char now[32];
    if (sorted == NULL || summary == NULL) {
        goto out;
    }
    for (size_t s = 0; s < sizeof severities / sizeof severities[0]; s++) {
        json_int_t n = 0;
        size_t i;
        json_t *f;
        json_array_foreach(a->findings, i, f)
        {
            if (strcmp(json_string_value(json_object_get(f, "Severity")), severities[s]) != 0) {
                continue;
            }
            if (json_array_append(sorted, f) != 0) {
                goto out;
            }
            n++;
        }
        if (json_object_set_new(summary, summary_names[s], json_integer(n)) != 0) {
            goto out;
        }
        gating += strcmp(severities[s], KMS_ADVISOR_INFO) != 0 ? n : 0;
    }
    kms_time_iso8601(a->now, now);
    if (json_object_set_new(summary, "Gating", json_integer(gating)) != 0 ||
        json_object_set_new(summary, "Complete", json_boolean(complete)) != 0 ||
        json_object_set_new(summary, "Time", json_string(now)) != 0) {
        goto out;
    }
    report = json_pack("{s:O, s:O}", "Findings", sorted, "Summary", summary);
out:
    json_decref(sorted);
    json_decref(summary);
    return report;
}

int kms_advisor_run(const kms_client_options *opts, char **report_json)
{
    int r = -1;
    kms_advisor a;
    json_t *report = NULL;
    bool usable = false;
    memset(&a, 0, sizeof a);
    KMS_ENSURE(report_json != NULL, KMS_ERR_VALIDATION, "no report");
    *report_json = NULL;
    kms_error_clear();
    KMS_GUARD(kms_util_init());
    a.home = opts != NULL && opts->home != NULL ? opts->home : kms_home_default();
    a.now = kms_now();
    a.findings = json_array();
    if (a.findings == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_advisor_files(&a, &usable) != 0) {
        goto out;
    }
    if (usable) {
        /* Opening reads config.json, the PIN and the token; no request is made, so the trail is
         * not even opened for writing. */
        if ((a.client = kms_client_open(opts)) == NULL) {
            goto out;
        }
        if (kms_advisor_iam(&a) != 0 || kms_advisor_keys(&a) != 0 ||
            kms_advisor_certificates(&a) != 0 || kms_advisor_audit(&a) != 0) {
            goto out;
        }
        if (a.events_refused &&
            kms_advisor_add(&a, "Advisor.TrailNotRead", KMS_ADVISOR_INFO, a.home,
                            "lookup-events refuses the audit trail (its records are not the "
                            "chain its writer acknowledged), so the checks that read it (root "
                            "used recently, keys called while disabled or pending deletion) saw "
                            "no event. Audit.TrailInvalid says what is wrong.",
                            "kmsctl validate-logs") != 0) {
            goto out;
        }
    } else if (kms_advisor_add(&a, "Advisor.ChecksSkipped", KMS_ADVISOR_INFO, a.home,
                               "The home's files are not safe to open (see the findings above), "
                               "so the IAM, key and audit checks did not run. Fix the file "
                               "findings and run the advisor again.",
                               "kmsctl advisor") != 0) {
        goto out;
    }
    if ((report = report_build(&a, usable)) == NULL ||
        (*report_json = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    json_decref(report);
    json_decref(a.findings);
    kms_client_free(a.client);
    return r;
}
