/* Organizations: the organization, its root, OUs, member accounts and service control
 * policies, in the shapes of the Organizations API reference.
 *
 * Every action is authorised on "*": the Organizations resources (organization, root, OU,
 * account, policy ARNs) could be named, but nothing here needs policies that narrow them yet.
 * The data layer refuses calls from member accounts (AccessDenied) as AWS does. */
#include <string.h>

#include "service/ops_iam.h"
#include "util/util.h"

#define M(...) ((const char *const[]){__VA_ARGS__, NULL})

static kms_iam *iam_of(const kms_request *rq)
{
    return rq->client->iam;
}

static const char *account_of(const kms_request *rq)
{
    return rq->who->id.account_id;
}

static int authorize(kms_request *rq)
{
    return kms_gate_authorize(rq, rq->operation, "*");
}

/* Organizations ids: 1..100 characters (the data layer checks their patterns). */
static int req_id(json_t *req, const char *name, bool required, const char **out)
{
    return kms_request_string(req, name, required, 1, 100, out);
}

/* Filter, where AWS takes one: only SERVICE_CONTROL_POLICY is supported. */
static int req_filter(json_t *req, bool required, const char **filter)
{
    KMS_GUARD(kms_request_string(req, "Filter", required, 1, 64, filter));
    KMS_ENSURE(*filter == NULL || strcmp(*filter, "SERVICE_CONTROL_POLICY") == 0,
               KMS_ERR_INVALID_INPUT,
               "Filter %s is not supported: this implementation has service control policies "
               "only (SERVICE_CONTROL_POLICY)",
               *filter);
    return 0;
}

static int create_organization(kms_request *rq, json_t *req, json_t **resp)
{
    const char *feature_set = NULL;
    json_t *org = NULL;
    KMS_GUARD(kms_request_string(req, "FeatureSet", false, 1, 32, &feature_set));
    KMS_ENSURE(feature_set == NULL || strcmp(feature_set, "ALL") == 0, KMS_ERR_INVALID_INPUT,
               "FeatureSet %s is not supported: organizations here have all features (ALL), "
               "which service control policies need",
               feature_set);
    KMS_GUARD(authorize(rq));
    KMS_GUARD(kms_iam_org_create(iam_of(rq), account_of(rq), kms_now(), &org));
    return kms_ops_iam_respond(resp, "Organization", org);
}

static int describe_organization(kms_request *rq, json_t *req, json_t **resp)
{
    json_t *org = NULL;
    (void)req;
    KMS_GUARD(authorize(rq));
    KMS_GUARD(kms_iam_org_describe(iam_of(rq), account_of(rq), &org));
    return kms_ops_iam_respond(resp, "Organization", org);
}

static int delete_organization(kms_request *rq, json_t *req, json_t **resp)
{
    (void)req;
    (void)resp;
    KMS_GUARD(authorize(rq));
    return kms_iam_org_delete(iam_of(rq), account_of(rq));
}

static int list_roots(kms_request *rq, json_t *req, json_t **resp)
{
    (void)req;
    KMS_GUARD(authorize(rq));
    return kms_iam_org_list_roots(iam_of(rq), account_of(rq), resp);
}

static int create_ou(kms_request *rq, json_t *req, json_t **resp)
{
    const char *parent = NULL, *name = NULL;
    json_t *ou = NULL;
    KMS_GUARD(req_id(req, "ParentId", true, &parent));
    KMS_GUARD(kms_request_string(req, "Name", true, 1, 128, &name));
    KMS_GUARD(authorize(rq));
    KMS_GUARD(kms_iam_org_ou_create(iam_of(rq), account_of(rq), parent, name, kms_now(), &ou));
    return kms_ops_iam_respond(resp, "OrganizationalUnit", ou);
}

static int describe_ou(kms_request *rq, json_t *req, json_t **resp)
{
    const char *id = NULL;
    json_t *ou = NULL;
    KMS_GUARD(req_id(req, "OrganizationalUnitId", true, &id));
    KMS_GUARD(authorize(rq));
    KMS_GUARD(kms_iam_org_ou_describe(iam_of(rq), account_of(rq), id, &ou));
    return kms_ops_iam_respond(resp, "OrganizationalUnit", ou);
}

static int list_ous(kms_request *rq, json_t *req, json_t **resp)
{
    const char *parent = NULL;
    KMS_GUARD(req_id(req, "ParentId", true, &parent));
    KMS_GUARD(authorize(rq));
    return kms_iam_org_ou_list(iam_of(rq), account_of(rq), parent, resp);
}

static int delete_ou(kms_request *rq, json_t *req, json_t **resp)
{
    const char *id = NULL;
    (void)resp;
    KMS_GUARD(req_id(req, "OrganizationalUnitId", true, &id));
    KMS_GUARD(authorize(rq));
    return kms_iam_org_ou_delete(iam_of(rq), account_of(rq), id);
}

static int create_account(kms_request *rq, json_t *req, json_t **resp)
{
    const char *email = NULL, *name = NULL, *role = NULL;
    json_t *status = NULL;
    KMS_GUARD(kms_request_string(req, "Email", true, 6, 64, &email));
    KMS_GUARD(kms_request_string(req, "AccountName", true, 1, 50, &name));
    KMS_GUARD(kms_request_string(req, "RoleName", false, 1, 64, &role));
    KMS_GUARD(authorize(rq));
    KMS_GUARD(kms_iam_org_account_create(iam_of(rq), account_of(rq), email, name, role, kms_now(),
                                         &status));
    return kms_ops_iam_respond(resp, "CreateAccountStatus", status);
}

static int list_accounts(kms_request *rq, json_t *req, json_t **resp)
{
    const char *parent = NULL;
    bool for_parent = strcmp(rq->operation, "organizations:ListAccountsForParent") == 0;
    KMS_GUARD(req_id(req, "ParentId", for_parent, &parent));
    KMS_GUARD(authorize(rq));
    return kms_iam_org_account_list(iam_of(rq), account_of(rq), parent, resp);
}

static int describe_account(kms_request *rq, json_t *req, json_t **resp)
{
    const char *id = NULL;
    json_t *account = NULL;
    KMS_GUARD(kms_request_string(req, "AccountId", true, 12, 12, &id));
    KMS_GUARD(authorize(rq));
    KMS_GUARD(kms_iam_org_account_describe(iam_of(rq), account_of(rq), id, &account));
    return kms_ops_iam_respond(resp, "Account", account);
}

static int move_account(kms_request *rq, json_t *req, json_t **resp)
{
    const char *id = NULL, *source = NULL, *dest = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "AccountId", true, 12, 12, &id));
    KMS_GUARD(req_id(req, "SourceParentId", true, &source));
    KMS_GUARD(req_id(req, "DestinationParentId", true, &dest));
    KMS_GUARD(authorize(rq));
    return kms_iam_org_account_move(iam_of(rq), account_of(rq), id, source, dest);
}

static int list_parents(kms_request *rq, json_t *req, json_t **resp)
{
    const char *child = NULL;
    KMS_GUARD(req_id(req, "ChildId", true, &child));
    KMS_GUARD(authorize(rq));
    return kms_iam_org_list_parents(iam_of(rq), account_of(rq), child, resp);
}

/* ---- Service control policies ---------------------------------------------------------------- */

static int create_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *content = NULL, *desc = NULL, *name = NULL, *type = NULL;
    json_t *policy = NULL;
    KMS_GUARD(kms_request_string(req, "Content", true, 1, 1000000, &content));
    KMS_GUARD(kms_request_string(req, "Description", true, 0, 512, &desc));
    KMS_GUARD(kms_request_string(req, "Name", true, 1, 128, &name));
    KMS_GUARD(kms_request_string(req, "Type", true, 1, 64, &type));
    KMS_ENSURE(strcmp(type, "SERVICE_CONTROL_POLICY") == 0, KMS_ERR_INVALID_INPUT,
               "Type %s is not supported: this implementation has service control policies only "
               "(SERVICE_CONTROL_POLICY)",
               type);
    KMS_GUARD(authorize(rq));
    KMS_GUARD(kms_ops_iam_check_policy(content, KMS_POLICY_SCP, "Content"));
    KMS_GUARD(
        kms_iam_org_policy_create(iam_of(rq), account_of(rq), name, desc, type, content, &policy));
    return kms_ops_iam_respond(resp, "Policy", policy);
}

static int describe_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *id = NULL;
    json_t *policy = NULL;
    KMS_GUARD(req_id(req, "PolicyId", true, &id));
    KMS_GUARD(authorize(rq));
    KMS_GUARD(kms_iam_org_policy_describe(iam_of(rq), account_of(rq), id, &policy));
    return kms_ops_iam_respond(resp, "Policy", policy);
}

static int update_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *id = NULL, *name = NULL, *desc = NULL, *content = NULL;
    json_t *policy = NULL;
    KMS_GUARD(req_id(req, "PolicyId", true, &id));
    KMS_GUARD(kms_request_string(req, "Name", false, 1, 128, &name));
    KMS_GUARD(kms_request_string(req, "Description", false, 0, 512, &desc));
    KMS_GUARD(kms_request_string(req, "Content", false, 1, 1000000, &content));
    KMS_GUARD(authorize(rq));
    if (content != NULL) {
        KMS_GUARD(kms_ops_iam_check_policy(content, KMS_POLICY_SCP, "Content"));
    }
    KMS_GUARD(
        kms_iam_org_policy_update(iam_of(rq), account_of(rq), id, name, desc, content, &policy));
    return kms_ops_iam_respond(resp, "Policy", policy);
}

static int list_policies(kms_request *rq, json_t *req, json_t **resp)
{
    const char *filter = NULL;
    KMS_GUARD(req_filter(req, true, &filter));
    KMS_GUARD(authorize(rq));
    return kms_iam_org_policy_list(iam_of(rq), account_of(rq), filter, resp);
}

static int list_policies_for_target(kms_request *rq, json_t *req, json_t **resp)
{
    const char *target = NULL, *filter = NULL;
    KMS_GUARD(req_id(req, "TargetId", true, &target));
    KMS_GUARD(req_filter(req, true, &filter));
    KMS_GUARD(authorize(rq));
    return kms_iam_org_policy_list_for_target(iam_of(rq), account_of(rq), target, filter, resp);
}

static int list_targets_for_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *id = NULL;
    KMS_GUARD(req_id(req, "PolicyId", true, &id));
    KMS_GUARD(authorize(rq));
    return kms_iam_org_policy_list_targets(iam_of(rq), account_of(rq), id, resp);
}

/* AttachPolicy, DetachPolicy. */
static int attach_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *id = NULL, *target = NULL;
    (void)resp;
    KMS_GUARD(req_id(req, "PolicyId", true, &id));
    KMS_GUARD(req_id(req, "TargetId", true, &target));
    KMS_GUARD(authorize(rq));
    if (strcmp(rq->operation, "organizations:AttachPolicy") == 0) {
        return kms_iam_org_policy_attach(iam_of(rq), account_of(rq), id, target);
    }
    return kms_iam_org_policy_detach(iam_of(rq), account_of(rq), id, target);
}

static int delete_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *id = NULL;
    (void)resp;
    KMS_GUARD(req_id(req, "PolicyId", true, &id));
    KMS_GUARD(authorize(rq));
    return kms_iam_org_policy_delete(iam_of(rq), account_of(rq), id);
}

/* Members as in the Organizations API reference, limited to those honoured here. */
const kms_op kms_ops_org_table[] = {
    {"organizations:CreateOrganization", create_organization, M("FeatureSet")},
    {"organizations:DescribeOrganization", describe_organization, M(NULL)},
    {"organizations:DeleteOrganization", delete_organization, M(NULL)},
    {"organizations:ListRoots", list_roots, M(NULL)},
    {"organizations:CreateOrganizationalUnit", create_ou, M("ParentId", "Name")},
    {"organizations:DescribeOrganizationalUnit", describe_ou, M("OrganizationalUnitId")},
    {"organizations:ListOrganizationalUnitsForParent", list_ous, M("ParentId")},
    {"organizations:DeleteOrganizationalUnit", delete_ou, M("OrganizationalUnitId")},
    {"organizations:CreateAccount", create_account, M("Email", "AccountName", "RoleName")},
    {"organizations:ListAccounts", list_accounts, M(NULL)},
    {"organizations:ListAccountsForParent", list_accounts, M("ParentId")},
    {"organizations:DescribeAccount", describe_account, M("AccountId")},
    {"organizations:MoveAccount", move_account,
     M("AccountId", "SourceParentId", "DestinationParentId")},
    {"organizations:ListParents", list_parents, M("ChildId")},
    {"organizations:CreatePolicy", create_policy, M("Content", "Description", "Name", "Type")},
    {"organizations:DescribePolicy", describe_policy, M("PolicyId")},
    {"organizations:UpdatePolicy", update_policy, M("PolicyId", "Name", "Description", "Content")},
    {"organizations:ListPolicies", list_policies, M("Filter")},
    {"organizations:ListPoliciesForTarget", list_policies_for_target, M("TargetId", "Filter")},
    {"organizations:ListTargetsForPolicy", list_targets_for_policy, M("PolicyId")},
    {"organizations:AttachPolicy", attach_policy, M("PolicyId", "TargetId")},
    {"organizations:DetachPolicy", attach_policy, M("PolicyId", "TargetId")},
    {"organizations:DeletePolicy", delete_policy, M("PolicyId")},
};

const size_t kms_ops_org_table_count = sizeof kms_ops_org_table / sizeof kms_ops_org_table[0];
