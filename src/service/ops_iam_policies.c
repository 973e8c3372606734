/* IAM managed policies, their attachments to users, groups and roles, and permissions
 * boundaries, in the request and response shapes of the IAM API reference (ops_iam.c says how
 * every handler goes through the gate). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/ops_iam.h"
#include "util/util.h"

/* ---- Managed policies ---------------------------------------------------------------------- */

static int req_policy_arn(kms_request *rq, json_t *req, const char **arn)
{
    KMS_GUARD(kms_request_string(req, "PolicyArn", true, 20, 2048, arn));
    return kms_gate_authorize(rq, rq->operation, *arn);
}

static int create_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *path = NULL, *name = NULL, *doc = NULL, *desc = NULL;
    char arn[KMS_OPS_IAM_ARN_LEN];
    json_t *policy = NULL;
    KMS_GUARD(kms_request_string(req, "Path", false, 1, 512, &path));
    KMS_GUARD(kms_request_string(req, "PolicyName", true, 1, 128, &name));
    KMS_GUARD(kms_request_string(req, "PolicyDocument", true, 1, 131072, &doc));
    KMS_GUARD(kms_request_string(req, "Description", false, 0, 1000, &desc));
    kms_ops_iam_new_arn(rq, "policy", path, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, arn));
    KMS_GUARD(kms_ops_iam_check_policy(
        doc, (kms_policy_kind)(KMS_POLICY_IDENTITY | KMS_POLICY_MANAGED), "PolicyDocument"));
    KMS_GUARD(kms_iam_policy_create(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), path, name,
                                    desc, doc, kms_now(), &policy));
    return kms_ops_iam_respond(resp, "Policy", policy);
}

static int get_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL;
    json_t *policy = NULL;
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    KMS_GUARD(kms_iam_policy_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), arn, &policy));
    return kms_ops_iam_respond(resp, "Policy", policy);
}

static int list_policies(kms_request *rq, json_t *req, json_t **resp)
{
    const char *scope = NULL, *prefix = NULL, *marker = NULL;
    bool only_attached = false;
    size_t max = 0;
    KMS_GUARD(kms_request_string(req, "Scope", false, 1, 16, &scope));
    KMS_GUARD(kms_ops_iam_req_bool(req, "OnlyAttached", false, &only_attached));
    KMS_GUARD(kms_request_string(req, "PathPrefix", false, 1, 512, &prefix));
    KMS_GUARD(kms_ops_iam_req_page(req, &marker, &max));
    KMS_ENSURE(scope == NULL || strcmp(scope, "All") == 0 || strcmp(scope, "AWS") == 0 ||
                   strcmp(scope, "Local") == 0,
               KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'scope' failed to satisfy "
               "constraint: Member must satisfy enum value set: [All, AWS, Local]",
               scope);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_policy_list(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), scope,
                               only_attached, prefix, marker, max, resp);
}

static int delete_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL;
    (void)resp;
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    return kms_iam_policy_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), arn);
}

static int create_policy_version(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL, *doc = NULL;
    bool set_default = false;
    json_t *version = NULL;
    KMS_GUARD(kms_request_string(req, "PolicyDocument", true, 1, 131072, &doc));
    KMS_GUARD(kms_ops_iam_req_bool(req, "SetAsDefault", false, &set_default));
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    KMS_GUARD(kms_ops_iam_check_policy(
        doc, (kms_policy_kind)(KMS_POLICY_IDENTITY | KMS_POLICY_MANAGED), "PolicyDocument"));
    KMS_GUARD(kms_iam_policy_version_create(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), arn,
                                            doc, set_default, kms_now(), &version));
    return kms_ops_iam_respond(resp, "PolicyVersion", version);
}

static int get_policy_version(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL, *vid = NULL;
    json_t *version = NULL;
    KMS_GUARD(kms_request_string(req, "VersionId", true, 1, 32, &vid));
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    KMS_GUARD(kms_iam_policy_version_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), arn,
                                         vid, &version));
    return kms_ops_iam_respond(resp, "PolicyVersion", version);
}

static int list_policy_versions(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL;
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    return kms_iam_policy_version_list(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), arn,
                                       resp);
}

static int delete_policy_version(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL, *vid = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "VersionId", true, 1, 32, &vid));
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    return kms_iam_policy_version_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), arn,
                                         vid);
}

static int set_default_policy_version(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL, *vid = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "VersionId", true, 1, 32, &vid));
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    return kms_iam_policy_set_default_version(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq),
                                              arn, vid);
}

/* {Attach,Detach}{User,Group,Role}Policy: the resource is the entity (IAM SAR). */
static int attach_policy(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL, *arn = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "PolicyArn", true, 20, 2048, &arn));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, kind, &name));
    if (strncmp(rq->operation, "iam:Attach", 10) == 0) {
        return kms_iam_policy_attach(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind, name,
                                     arn);
    }
    return kms_iam_policy_detach(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind, name,
                                 arn);
}

static int list_attached(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL, *prefix = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_request_string(req, "PathPrefix", false, 1, 512, &prefix));
    KMS_GUARD(kms_ops_iam_req_page(req, &marker, &max));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, kind, &name));
    return kms_iam_policy_list_attached(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind,
                                        name, prefix, marker, max, resp);
}

/* Put/Delete{User,Role}PermissionsBoundary. */
static int put_boundary(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL, *arn = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "PermissionsBoundary", true, 20, 2048, &arn));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, kind, &name));
    KMS_GUARD(kms_ops_iam_check_boundary(rq, arn));
    return kms_iam_boundary_put(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind, name,
                                arn);
}

static int delete_boundary(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL;
    (void)resp;
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, kind, &name));
    return kms_iam_boundary_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind, name);
}

/* ---- The table ----------------------------------------------------------------------------------
 */

/* Members as in the IAM API reference, limited to those this implementation honours: any other
 * is refused by name rather than ignored. */
#define M(...) ((const char *const[]){__VA_ARGS__, NULL})
#define PAGE "Marker", "MaxItems"

const kms_op kms_ops_iam_policies_table[] = {
    {"iam:CreatePolicy", create_policy, M("PolicyName", "Path", "PolicyDocument", "Description")},
    {"iam:GetPolicy", get_policy, M("PolicyArn")},
    {"iam:ListPolicies", list_policies, M("Scope", "OnlyAttached", "PathPrefix", PAGE)},
    {"iam:DeletePolicy", delete_policy, M("PolicyArn")},
    {"iam:CreatePolicyVersion", create_policy_version,
     M("PolicyArn", "PolicyDocument", "SetAsDefault")},
    {"iam:GetPolicyVersion", get_policy_version, M("PolicyArn", "VersionId")},
    {"iam:ListPolicyVersions", list_policy_versions, M("PolicyArn")},
    {"iam:DeletePolicyVersion", delete_policy_version, M("PolicyArn", "VersionId")},
    {"iam:SetDefaultPolicyVersion", set_default_policy_version, M("PolicyArn", "VersionId")},

    {"iam:AttachUserPolicy", attach_policy, M("UserName", "PolicyArn")},
    {"iam:DetachUserPolicy", attach_policy, M("UserName", "PolicyArn")},
    {"iam:ListAttachedUserPolicies", list_attached, M("UserName", "PathPrefix", PAGE)},
    {"iam:AttachGroupPolicy", attach_policy, M("GroupName", "PolicyArn")},
    {"iam:DetachGroupPolicy", attach_policy, M("GroupName", "PolicyArn")},
    {"iam:ListAttachedGroupPolicies", list_attached, M("GroupName", "PathPrefix", PAGE)},
    {"iam:AttachRolePolicy", attach_policy, M("RoleName", "PolicyArn")},
    {"iam:DetachRolePolicy", attach_policy, M("RoleName", "PolicyArn")},
    {"iam:ListAttachedRolePolicies", list_attached, M("RoleName", "PathPrefix", PAGE)},

    {"iam:PutUserPermissionsBoundary", put_boundary, M("UserName", "PermissionsBoundary")},
    {"iam:DeleteUserPermissionsBoundary", delete_boundary, M("UserName")},
    {"iam:PutRolePermissionsBoundary", put_boundary, M("RoleName", "PermissionsBoundary")},
    {"iam:DeleteRolePermissionsBoundary", delete_boundary, M("RoleName")},
};
const size_t kms_ops_iam_policies_table_count =
    sizeof kms_ops_iam_policies_table / sizeof kms_ops_iam_policies_table[0];

#undef PAGE
#undef M
