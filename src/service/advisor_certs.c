/* kmsctl advisor, certificates: every certificate the home knows (managed ones, and those its
 * CAs issued and did not revoke) that expires within the warning window the scheduler's
 * CertificateApproachingExpiration records use (config.json certificate_expiry_warning_days, 45
 * days by default): a warning, high within a week. ACM gives no such warning for certificates
 * Private CA issues directly; this home does. */
#include <stdio.h>
#include <string.h>

#include "pki/acm.h"
#include "service/advisor.h"
#include "util/util.h"

/* Within this many days an expiry is high. */
#define SOON_DAYS 7

static int expiring_one(void *arg, const char *arn, int64_t not_after, const char *source)
{
    kms_advisor *a = arg;
    char when[32];
    char why[512];
    int64_t days = (not_after - a->now) / 86400;
    bool managed = strcmp(source, "acm") == 0;
    kms_time_iso8601(not_after, when);
    snprintf(why, sizeof why,
             "The certificate expires at %s, in %lld day%s; clients refuse it from then on.%s",
             when, (long long)days, days == 1 ? "" : "s",
             managed ? " The scheduler renews a requested certificate 60 days before it "
                       "expires: if it has not, RenewalSummary says why (an imported one is "
                       "reimported)."
                     : " A certificate issued by acm-pca issue-certificate is not renewed: "
                       "issue a new one and install it.");
    if (managed) {
        return kms_advisor_add(a, "Certificate.Expiring",
                               days < SOON_DAYS ? KMS_ADVISOR_HIGH : KMS_ADVISOR_WARNING, arn, why,
                               "kmsctl acm renew-certificate --certificate-arn %s", arn);
    }
    return kms_advisor_add(a, "Certificate.Expiring",
                           days < SOON_DAYS ? KMS_ADVISOR_HIGH : KMS_ADVISOR_WARNING, arn, why,
                           "%s", "");
}

int kms_advisor_certificates(kms_advisor *a)
{
    int64_t days = a->client->cfg.certificate_warning_days > 0
                       ? a->client->cfg.certificate_warning_days
                       : KMS_ACM_WARN_DAYS;
    return kms_acm_expiring(&a->client->keystore, a->now, a->now + days * 86400, expiring_one, a);
}
