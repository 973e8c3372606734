/* What IAM checks of a policy document beyond its grammar: resource ARNs and the Version a
 * kind of policy needs.
 *
 * IAM User Guide, "IAM JSON policy elements: Resource" and "Amazon Resource Names (ARNs)": a
 * resource is "*" or arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE. IAM reads no further than
 * the partition for most services (it accepts "arn:aws:fdsasf": the statement then matches no
 * request), and checks IAM's and Amazon S3's own: IAM resources are global (no region) and name
 * one of IAM's resource types; S3 buckets and objects have neither region nor account. Messages
 * are IAM's words, the element after them. */
#include <stdio.h>
#include <string.h>

#include "policy/policy_internal.h"

/* The partitions of AWS's ARNs ("Amazon Resource Names (ARNs)": partition). */
static const char *const PARTITIONS[] = {
    "aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc",
};

/* The resource types of IAM's ARNs (Service Authorization Reference, IAM: Resource types), the
 * list IAM's own refusal names. */
static const char *const IAM_TYPES[] = {
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
};

/* Wildcards or a policy variable: the text names a pattern, not one value. */
static bool is_pattern(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '*' || s[i] == '?' || s[i] == '$') {
            return true;
        }
    }
    return false;
}

static bool partition_known(const char *p, size_t n)
{
    for (size_t i = 0; i < sizeof PARTITIONS / sizeof PARTITIONS[0]; i++) {
        if (strlen(PARTITIONS[i]) == n && strncmp(PARTITIONS[i], p, n) == 0) {
            return true;
        }
    }
    return is_pattern(p, n);
}

/* The resource part of an IAM ARN: "*", one of IAM's types, or a pattern before the first '/'
 * (a "*" or variable that may stand for a type). */
static bool iam_resource_known(const char *res)
{
    for (size_t i = 0; i < sizeof IAM_TYPES / sizeof IAM_TYPES[0]; i++) {
        if (strncmp(res, IAM_TYPES[i], strlen(IAM_TYPES[i])) == 0) {
            return true;
        }
    }
    return res[0] != '\0' && is_pattern(res, strcspn(res, "/"));
}

int kms_policy_resource_check(const char *path, const char *r)
{
    if (strcmp(r, "*") == 0) {
        return 0;
    }
    KMS_ENSURE(strncmp(r, "arn:", 4) == 0 && strchr(r + 4, ':') != NULL, KMS_ERR_MALFORMED_POLICY,
               "Resource %s must be in ARN format or \"*\". (%s)", r, path);
    /* arn : partition : service : region : account : resource, the last taking the rest. */
    const char *f[6] = {r, NULL, NULL, NULL, NULL, NULL};
    size_t nf = 1;
    for (const char *p = r; *p != '\0' && nf < 6; p++) {
        if (*p == ':') {
            f[nf++] = p + 1;
        }
    }
    size_t plen = (size_t)(f[2] - f[1] - 1);
    KMS_ENSURE(partition_known(f[1], plen), KMS_ERR_MALFORMED_POLICY,
               "Partition \"%.*s\" is not valid for resource \"%s\". (%s)", (int)plen, f[1], r,
               path);
    if (nf < 4) {
        return 0; /* "arn:aws:fdsasf": IAM reads no further */
    }
    size_t slen = (size_t)(f[3] - f[2] - 1);
    size_t rlen = nf > 4 ? (size_t)(f[4] - f[3] - 1) : strlen(f[3]);
    bool region = rlen > 0 && !is_pattern(f[3], rlen);
    bool iam = slen == 3 && strncmp(f[2], "iam", 3) == 0;
    bool s3 = slen == 2 && strncmp(f[2], "s3", 2) == 0;
    /* S3: buckets and objects (arn:aws:s3:::bucket/key) have no region; access points, jobs and
     * Storage Lens configurations name an account and a region. */
    bool s3_bucket = s3 && nf > 4 && f[5] != NULL && f[5] - f[4] == 1;
    KMS_ENSURE(!(region && (iam || s3_bucket)), KMS_ERR_MALFORMED_POLICY,
               "Resource %s can not contain region information. (%s)", r, path);
    KMS_ENSURE(!iam || (nf == 6 && iam_resource_known(f[5])), KMS_ERR_MALFORMED_POLICY,
               "IAM resource path must either be \"*\" or start with user/, federated-user/, "
               "role/, group/, instance-profile/, mfa/, server-certificate/, policy/, sms-mfa/, "
               "saml-provider/, oidc-provider/, report/, access-report/. (%s: %s)",
               path, r);
    return 0;
}

/* IAM JSON policy elements: Version. IAM's managed policies (CreatePolicy, CreatePolicyVersion)
 * must be 2012-10-17: without a Version, or with 2008-10-17, IAM refuses them. Inline policies,
 * trust, key and resource policies and SCPs still take the older language, in which ${...} is
 * literal text. */
int kms_policy_version_check(json_t *version, bool managed, bool *variables)
{
    *variables = false;
    const char *ver = json_is_string(version) ? json_string_value(version) : NULL;
    KMS_ENSURE(version == NULL || (ver != NULL && (strcmp(ver, "2012-10-17") == 0 ||
                                                   strcmp(ver, "2008-10-17") == 0)),
               KMS_ERR_MALFORMED_POLICY,
               "The policy failed legacy parsing (Version: must be \"2012-10-17\" or "
               "\"2008-10-17\")");
    KMS_ENSURE(!managed || (ver != NULL && strcmp(ver, "2012-10-17") == 0),
               KMS_ERR_MALFORMED_POLICY,
               "Policy document must be version 2012-10-17 or greater. (Version: %s)",
               ver != NULL ? ver : "missing, which means 2008-10-17");
    *variables = ver != NULL && strcmp(ver, "2012-10-17") == 0;
    return 0;
}
