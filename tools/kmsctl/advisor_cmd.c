/* kmsctl advisor: the home's security posture (kms_advisor_run), printed as JSON or as one
 * readable block per finding; the exit status gates a deployment (1 when anything is at warning
 * or above). */
#include <stdio.h>
#include <string.h>

#include "kms/kms.h"
#include "kmsctl.h"

/* Some finding at warning or above. */
#define KMSCTL_EXIT_FINDINGS 1

static const struct opt_spec advisor_opts[] = {
    {NULL, 0, 0, NULL},
};

/* --output text: a block per finding, then the summary. */
static int print_text(json_t *report)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(report, "Findings"), i, f)
    {
        char sev[16];
        const char *s = json_string_value(json_object_get(f, "Severity"));
        size_t n = 0;
        for (; s != NULL && s[n] != '\0' && n + 1 < sizeof sev; n++) {
            sev[n] = (char)(s[n] >= 'a' && s[n] <= 'z' ? s[n] - 'a' + 'A' : s[n]);
        }
        sev[n] = '\0';
        const char *fix = json_string_value(json_object_get(f, "Fix"));
        printf("%s  %s\n  Resource: %s\n  Why:      %s\n  Fix:      %s\n\n", sev,
               json_string_value(json_object_get(f, "Check")),
               json_string_value(json_object_get(f, "Resource")),
               json_string_value(json_object_get(f, "Why")),
               fix != NULL && fix[0] != '\0' ? fix : "(none)");
    }
    json_t *sum = json_object_get(report, "Summary");
    printf("%lld critical, %lld high, %lld warning, %lld info%s\n",
           (long long)json_integer_value(json_object_get(sum, "Critical")),
           (long long)json_integer_value(json_object_get(sum, "High")),
           (long long)json_integer_value(json_object_get(sum, "Warning")),
           (long long)json_integer_value(json_object_get(sum, "Info")),
           json_is_true(json_object_get(sum, "Complete"))
               ? ""
               : " (incomplete: fix the file findings and run again)");
    return fflush(stdout) == 0 && !ferror(stdout)
               ? KMSCTL_EXIT_OK
               : kmsctl_error_json("KMSInternalException", "kmsctl: cannot write the output");
}

static int run_advisor(const struct command *cmd, const struct globals *g, json_t *request)
{
    (void)cmd;
    (void)request;
    int r = KMSCTL_EXIT_SERVICE;
    char *text = NULL;
    json_t *report = NULL;
    kms_client_options copts = {
        .home = g->home, .profile = g->profile, .user_agent = KMSCTL_USER_AGENT};
    if (kms_advisor_run(&copts, &text) != 0) {
        return kmsctl_service_error();
    }
    if ((report = json_loads(text, 0, NULL)) == NULL) {
        r = kmsctl_error_json("KMSInternalException", "kmsctl: the advisor's report is not JSON");
        goto out;
    }
    r = g->output == OUTPUT_TEXT && g->query == NULL ? print_text(report)
                                                     : kmsctl_print_response(g, text);
    if (r == KMSCTL_EXIT_OK &&
        json_integer_value(json_object_get(json_object_get(report, "Summary"), "Gating")) > 0) {
        r = KMSCTL_EXIT_FINDINGS;
    }
out:
    json_decref(report);
    kms_string_free(text);
    return r;
}

/* clang-format off */
const struct command kmsctl_advisor_commands[] = {
    {"advisor", NULL, run_advisor, advisor_opts,
     "Check the home's security posture; exit 1 on findings",
     "Runs read-only checks over the KMS home, as AWS Trusted Advisor, the IAM credential\n"
     "report and AWS Config rules do, and prints each finding with its Check, Severity\n"
     "(critical, high, warning, info), the Resource (an ARN or a path), Why it matters and the\n"
     "Fix: the command that clears it. The checks:\n"
     "\n"
     "Root: Root.AccessKeys; Root.NoMFA (a password without MFA); Root.RecentlyUsed (calls in\n"
     "the last 30 days, init's own setup not counted). Root's fixes run as the root user\n"
     "(--profile of a root sign-in).\n"
     "\n"
     "Users: IAM.ConsoleWithoutMFA; IAM.AccessKeyOld (active, over 90 days);\n"
     "IAM.AccessKeyUnused (90 days); IAM.TwoActiveKeys; IAM.UserInactive (credentials unused\n"
     "for 90 days); IAM.DirectPolicy; IAM.AdminOutsideAdmins; IAM.PasswordPolicyWeak (weaker\n"
     "than the one init sets).\n"
     "\n"
     "Keys: Key.RotationDisabled (enabled symmetric keys); Key.PolicyPublic (Principal * without\n"
     "a Condition); Key.GrantToDeletedPrincipal; Key.PendingDeletionInUse (used in the last 30\n"
     "days, or with aliases or grants); Key.DisabledInUse (called since it was disabled).\n"
     "\n"
     "Audit: Audit.TrailInvalid; Audit.DigestOverdue; Audit.LowDiskSpace (under 1 GiB or 5%\n"
     "free).\n"
     "\n"
     "Files: Home.Permissions (StrictModes: owners, group and other write, the token's place),\n"
     "checked first; while one fails, the other checks are skipped (Advisor.ChecksSkipped).\n"
     "\n"
     "It changes nothing and writes no audit record (like validate-logs); the trail's index\n"
     "may be brought up to date, as lookup-events does. Exit status: 1 when a finding is at\n"
     "warning or above, 0 otherwise (so it can gate a deployment), 254 when it cannot run.",
     "kmsctl advisor --output text\n"
     "kmsctl advisor --query Summary.Gating --output text   # how many findings gate\n"
     "kmsctl advisor >/dev/null || echo 'security findings: see kmsctl advisor --output text'"},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */
