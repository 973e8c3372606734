/* Service-specific authorization rules that no policy document states (IAM User Guide and the
 * services' API references), for kms_policy_evaluate: actions that need no permission, AWS
 * managed policies everybody reads, resources that belong to AWS services, and actions that take
 * no resource ARN. Pure tables; nothing here allocates. */
#include <string.h>
#include <strings.h>

#include "policy/policy_internal.h"

static bool action_is(const char *action, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        if (strcasecmp(action, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* STS API reference, GetCallerIdentity: "No permissions are required to perform this
 * operation", even under an explicit Deny. */
bool kms_policy_action_always_allowed(const char *action)
{
    static const char *const names[] = {"sts:GetCallerIdentity", NULL};
    return action_is(action, names);
}

/* AWS managed policies (arn:aws:iam::aws:policy/...) are readable by every principal. */
bool kms_policy_public_read(const char *action, const char *resource)
{
    static const char *const names[] = {"iam:GetPolicy",
                                        "iam:GetPolicyVersion",
                                        "iam:ListPolicyVersions",
                                        "iam:ListEntitiesForPolicy",
                                        "iam:ListPolicyTags",
                                        "iam:GenerateServiceLastAccessedDetails",
                                        NULL};
    return strncmp(resource, "arn:aws:iam::aws:policy/", 24) == 0 && action_is(action, names);
}

/* No principal creates, changes or deletes a service-linked role (path /aws-service-role/) or
 * an alias/aws/ alias: those belong to AWS services, whatever a policy says. */
bool kms_policy_reserved(const char *action, const char *resource)
{
    static const char *const alias_names[] = {"kms:CreateAlias", "kms:UpdateAlias",
                                              "kms:DeleteAlias", NULL};
    static const char *const verbs[] = {"Create", "Delete", "Update", "Put",  "Attach",
                                        "Detach", "Tag",    "Untag",  "Pass", NULL};
    /* The action first: every request is evaluated, and most are neither (kms:Decrypt ...);
     * the resource is searched only for the few actions that can touch such a resource. */
    if (strncasecmp(action, "kms:", 4) == 0) {
        return action_is(action, alias_names) && strstr(resource, ":alias/aws/") != NULL;
    }
    if (strncasecmp(action, "iam:", 4) != 0) {
        return false;
    }
    bool verb = false;
    for (size_t i = 0; !verb && verbs[i] != NULL; i++) {
        verb = strncasecmp(action + 4, verbs[i], strlen(verbs[i])) == 0;
    }
    return verb && strstr(resource, ":role/aws-service-role/") != NULL;
}

/* Service Authorization Reference, the "Resource types" column left empty ("you must specify
 * all resources ("*") in the Resource element"), and IAM User Guide, "IAM JSON policy elements:
 * Resource": for these actions "any actions that you list in the Action or NotAction element
 * apply to all resources". The services this product serves, and the few others the simulators
 * are commonly asked about. */
bool kms_policy_action_takes_no_resource(const char *action)
{
    static const char *const names[] = {
        /* AWS KMS */
        "kms:ConnectCustomKeyStore", "kms:CreateCustomKeyStore", "kms:CreateKey",
        "kms:DeleteCustomKeyStore", "kms:DescribeCustomKeyStores", "kms:DisconnectCustomKeyStore",
        "kms:GenerateRandom", "kms:ListAliases", "kms:ListKeys", "kms:ListRetirableGrants",
        "kms:UpdateCustomKeyStore",
        /* IAM */
        "iam:CreateAccountAlias", "iam:DeleteAccountAlias", "iam:DeleteAccountPasswordPolicy",
        "iam:GenerateCredentialReport", "iam:GetAccountAuthorizationDetails",
        "iam:GetAccountPasswordPolicy", "iam:GetAccountSummary",
        "iam:GetContextKeysForCustomPolicy", "iam:GetCredentialReport",
        "iam:GetServiceLastAccessedDetails", "iam:GetServiceLastAccessedDetailsWithEntities",
        "iam:ListAccountAliases", "iam:ListGroups", "iam:ListInstanceProfiles",
        "iam:ListOpenIDConnectProviders", "iam:ListPolicies", "iam:ListRoles",
        "iam:ListSAMLProviders", "iam:ListServerCertificates", "iam:ListUsers",
        "iam:ListVirtualMFADevices", "iam:SimulateCustomPolicy", "iam:UpdateAccountPasswordPolicy",
        /* STS */
        "sts:DecodeAuthorizationMessage", "sts:GetAccessKeyInfo", "sts:GetCallerIdentity",
        "sts:GetServiceBearerToken", "sts:GetSessionToken",
        /* CloudTrail */
        "cloudtrail:DescribeTrails", "cloudtrail:ListEventDataStores", "cloudtrail:ListPublicKeys",
        "cloudtrail:ListTrails", "cloudtrail:LookupEvents",
        /* ACM and ACM PCA */
        "acm:GetAccountConfiguration", "acm:ListCertificates", "acm:PutAccountConfiguration",
        "acm:RequestCertificate", "acm-pca:CreateCertificateAuthority",
        "acm-pca:ListCertificateAuthorities",
        /* Organizations */
        "organizations:CreateAccount", "organizations:CreateOrganization",
        "organizations:DeleteOrganization", "organizations:DescribeCreateAccountStatus",
        "organizations:DescribeOrganization", "organizations:EnableAllFeatures",
        "organizations:LeaveOrganization", "organizations:ListAccounts",
        "organizations:ListAWSServiceAccessForOrganization",
        "organizations:ListCreateAccountStatus", "organizations:ListDelegatedAdministrators",
        "organizations:ListHandshakesForAccount", "organizations:ListRoots",
        /* S3 */
        "s3:ListAllMyBuckets", NULL};
    return action_is(action, names);
}
