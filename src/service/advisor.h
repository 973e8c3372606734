/* kmsctl advisor: read-only checks of a KMS home's security posture (issue 15, "kmsctl
 * advisor"), as AWS Trusted Advisor, the IAM credential report and AWS Config rules give them.
 * Each check adds findings; none changes anything in the home. Private to src/service. */
#ifndef KMS_SERVICE_ADVISOR_H
#define KMS_SERVICE_ADVISOR_H

#include <jansson.h>
#include <stdint.h>

#include "service/client.h"

/* The severities, from the worst. Warning and above gate (kmsctl advisor exits 1). */
#define KMS_ADVISOR_CRITICAL "critical"
#define KMS_ADVISOR_HIGH "high"
#define KMS_ADVISOR_WARNING "warning"
#define KMS_ADVISOR_INFO "info"

/* Credentials and users idle or unrotated this long are findings (CIS AWS Foundations 1.12-1.14
 * use 45 and 90 days; the issue asks for 90). */
#define KMS_ADVISOR_STALE_DAYS 90
/* "Recently": root use, and use of a key pending deletion. */
#define KMS_ADVISOR_RECENT_DAYS 30

typedef struct kms_advisor {
    const char *home;
    kms_client *client; /* NULL while only the files are checked */
    int64_t now;        /* the service's clock (kms_now: libfaketime moves it in tests) */
    json_t *findings;   /* [{"Check","Severity","Resource","Why","Fix"}] */
    /* lookup-events refused the trail (a broken chain): the checks that read it saw no event. */
    bool events_refused;
} kms_advisor;

/* Adds one finding; fix_fmt formats the command that clears it ("" when there is none). */
int kms_advisor_add(kms_advisor *a, const char *check, const char *severity, const char *resource,
                    const char *why, const char *fix_fmt, ...)
    __attribute__((format(printf, 6, 7), warn_unused_result));

/* advisor_files.c: StrictModes over the home (home_check.c in report mode). *usable false when
 * the home cannot be opened safely (the other checks are then skipped). */
int kms_advisor_files(kms_advisor *a, bool *usable) __attribute__((warn_unused_result));
/* advisor_iam.c: the root user, the users, the password policy. */
int kms_advisor_iam(kms_advisor *a) __attribute__((warn_unused_result));
/* advisor_keys.c: rotation, public key policies, orphaned grants, deletions that would break
 * someone, disabled keys still called. */
int kms_advisor_keys(kms_advisor *a) __attribute__((warn_unused_result));
/* advisor_certs.c: certificates expiring within the warning window. */
int kms_advisor_certificates(kms_advisor *a) __attribute__((warn_unused_result));
/* advisor_audit.c: the trail validates, no digest is overdue, its file system has room. */
int kms_advisor_audit(kms_advisor *a) __attribute__((warn_unused_result));

/* The trail's events (kms_audit_lookup, newest first) with attribute key = value since `since`
 * (epoch seconds), at most `max` of them: fn(arg, event, record) for each, event the
 * lookup-events entry and record its CloudTrailEvent parsed (NULL if it does not parse); fn
 * returns 1 to stop, 0 to go on, -1 on error. */
typedef int (*kms_advisor_event_fn)(void *arg, json_t *event, json_t *record);
int kms_advisor_events(kms_advisor *a, const char *key, const char *value, int64_t since,
                       size_t max, kms_advisor_event_fn fn, void *arg)
    __attribute__((warn_unused_result));

#endif
