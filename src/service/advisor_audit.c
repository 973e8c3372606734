/* kmsctl advisor, the audit trail: it validates (kms_validate_logs, which reads and changes
 * nothing), no digest is overdue (the validator's UnsignedTail), and its file system has room
 * (a full one stops every operation: each must be recorded first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "service/advisor.h"
#include "service/audit_trail.h"
#include "util/util.h"

/* A digest is overdue this long after its period ended (a scheduler run may be due). */
#define DIGEST_GRACE 600
/* Short of space: less than this free, or less than LOW_SPACE_PERCENT of the file system. */
#define LOW_SPACE_BYTES (1024LL * 1024 * 1024)
#define LOW_SPACE_PERCENT 5

static int validity_check(kms_advisor *a, json_t *report, const char *dir)
{
    char why[1024];
    if (json_is_true(json_object_get(report, "Valid"))) {
        return 0;
    }
    json_t *problems = json_object_get(report, "Problems");
    const char *first = json_string_value(json_object_get(json_array_get(problems, 0), "Message"));
    snprintf(why, sizeof why,
             "The audit trail does not validate: %zu problem%s (the first: %s). Records may have "
             "been changed, deleted or added by someone who is not this KMS. Run the fix for the "
             "whole report, and restore HOME/audit from a backup at least as new as the anchor.",
             json_array_size(problems), json_array_size(problems) == 1 ? "" : "s",
             first != NULL ? first : "see validate-logs");
    return kms_advisor_add(a, "Audit.TrailInvalid", KMS_ADVISOR_CRITICAL, dir, why,
                           "kmsctl validate-logs");
}

/* The validator's "UnsignedTail": {"Records", "Bytes", "OldestEventTime": ISO | null}; without
 * it (a validator before digests were sealed by period) nothing is overdue. */
static int overdue_check(kms_advisor *a, json_t *report, const char *dir)
{
    char why[512];
    const char *oldest = json_string_value(
        json_object_get(json_object_get(report, "UnsignedTail"), "OldestEventTime"));
    int64_t period = a->client->cfg.audit_digest_period > 0 ? a->client->cfg.audit_digest_period
                                                            : KMS_AUDIT_DEFAULT_DIGEST_PERIOD;
    int64_t t = oldest != NULL ? kms_audit_parse_time(oldest) : -1;
    if (t < 0 || a->now <= t + period + DIGEST_GRACE) {
        return 0;
    }
    snprintf(why, sizeof why,
             "Records since %s are not yet covered by a signed digest, although the digest "
             "period is %lld seconds: until they are, only this machine's HSM anchor vouches "
             "for them, and nobody can check them with the public key alone. Seal them now, and "
             "run the scheduler (run-scheduler seals every period; commands leave the segment "
             "open).",
             oldest, (long long)period);
    return kms_advisor_add(a, "Audit.DigestOverdue", KMS_ADVISOR_WARNING, dir, why,
                           "kmsctl seal-audit-log");
}

static int space_check(kms_advisor *a, const char *dir)
{
    struct statvfs vfs;
    char why[512];
    if (statvfs(dir, &vfs) != 0) {
        return 0; /* validate-logs already says when the trail cannot be read */
    }
    unsigned long long unit = vfs.f_frsize != 0 ? vfs.f_frsize : vfs.f_bsize;
    unsigned long long free_bytes = (unsigned long long)vfs.f_bavail * unit;
    unsigned long long total = (unsigned long long)vfs.f_blocks * unit;
    if (free_bytes >= (unsigned long long)LOW_SPACE_BYTES &&
        free_bytes * 100 >= total * LOW_SPACE_PERCENT) {
        return 0;
    }
    snprintf(why, sizeof why,
             "The audit trail's file system has %llu MiB free of %llu MiB (the advisor warns "
             "below 1 GiB or 5%%). Every operation is recorded before it runs: when the trail "
             "cannot grow, every operation fails. Free space there, or move the home (kmsctl "
             "cannot free it for you; the fix shows the space).",
             free_bytes >> 20, total >> 20);
    return kms_advisor_add(a, "Audit.LowDiskSpace", KMS_ADVISOR_WARNING, dir, why, "df -h %s", dir);
}

int kms_advisor_audit(kms_advisor *a)
{
    int r = -1;
    char *text = NULL;
    json_t *report = NULL;
    char *dir = kms_audit_trail_dir(a->home);
    if (dir == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_validate_logs(a->client, NULL, NULL, &text) != 0) {
        goto out;
    }
    if ((report = json_loads(text, 0, NULL)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "the validator's report does not parse");
        goto out;
    }
    if (validity_check(a, report, dir) != 0 || overdue_check(a, report, dir) != 0 ||
        space_check(a, dir) != 0) {
        goto out;
    }
    r = 0;
out:
    json_decref(report);
    kms_string_free(text);
    free(dir);
    return r;
}
