/* IAM: users, groups, roles, their inline policies and tags, in the request and response shapes
 * of the IAM API reference; the helpers every IAM handler shares; the entry points to every
 * IAM, STS and Organizations operation. Managed policies and boundaries are in
 * ops_iam_policies.c, access keys, passwords and MFA in ops_iam_credentials.c.
 *
 * Every handler reads its members, authorises its action (the operation's name, "iam:CreateUser")
 * on the resource the IAM Service Authorization Reference names for it, validates every policy
 * document it was given, and only then calls src/iam. The resource of an operation on an existing
 * user, group or role is its ARN with its path (looked up, never shown before the decision); one
 * that does not exist is authorised at path "/" and then fails with NoSuchEntity, as AWS. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/ops_iam.h"
#include "service/ops_unbind.h"
#include "util/util.h"

/* ---- Helpers shared with the other ops_*.c of IAM ------------------------------------------- */

int kms_ops_iam_check_policy(const char *doc, kms_policy_kind kind, const char *label)
{
    kms_policy *p = NULL;
    /* src/policy words the error (MalformedPolicyDocumentException naming the element); it is
     * returned as it is. */
    KMS_GUARD(kms_policy_compile(doc, strlen(doc), kind, label, &p));
    kms_policy_free(p);
    return 0;
}

int kms_ops_iam_respond(json_t **resp, const char *member, json_t *obj)
{
    KMS_ENSURE(obj != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (json_object_get(obj, member) != NULL) {
        *resp = obj;
        return 0;
    }
    json_t *r = json_object();
    if (r == NULL) {
        json_decref(obj);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    if (json_object_set_new(r, member, obj) != 0) { /* obj is released either way */
        json_decref(r);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    *resp = r;
    return 0;
}

int kms_ops_iam_req_bool(json_t *req, const char *name, bool dflt, bool *out)
{
    json_t *v = json_object_get(req, name);
    *out = dflt;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    KMS_ENSURE(json_is_boolean(v), KMS_ERR_VALIDATION, "%s must be a boolean (true or false)",
               name);
    *out = json_is_true(v);
    return 0;
}

/* ---- Helpers of this file -------------------------------------------------------------------- */

kms_iam *kms_ops_iam_iam_of(const kms_request *rq)
{
    return rq->client->iam;
}

const char *kms_ops_iam_account_of(const kms_request *rq)
{
    return rq->who->id.account_id;
}

/* The entity kind of the families of operations that exist for users, groups and roles
 * (PutUserPolicy, PutGroupPolicy, PutRolePolicy ...): it is in the operation's name. */
kms_iam_kind kms_ops_iam_op_kind(const kms_request *rq)
{
    if (strstr(rq->operation, "Group") != NULL) {
        return KMS_IAM_GROUP;
    }
    if (strstr(rq->operation, "Role") != NULL) {
        return KMS_IAM_ROLE;
    }
    return KMS_IAM_USER;
}

static const char *kind_member(kms_iam_kind kind)
{
    return kind == KMS_IAM_GROUP ? "GroupName" : kind == KMS_IAM_ROLE ? "RoleName" : "UserName";
}

static const char *kind_word(kms_iam_kind kind)
{
    return kind == KMS_IAM_GROUP ? "group" : kind == KMS_IAM_ROLE ? "role" : "user";
}

/* obj, or its member `member` when obj is a whole response holding it. */
json_t *kms_ops_iam_unwrap(json_t *obj, const char *member)
{
    json_t *inner = json_object_get(obj, member);
    return inner != NULL ? inner : obj;
}

/* The ARN of user/group/role `name` with its path; "/" when it cannot be looked up (it does not
 * exist: the operation fails after the decision). */
void kms_ops_iam_entity_arn(kms_request *rq, kms_iam_kind kind, const char *name,
                            char arn[KMS_OPS_IAM_ARN_LEN])
{
    json_t *obj = NULL;
    int r;
    if (kind == KMS_IAM_USER) {
        r = kms_iam_user_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, &obj);
    } else if (kind == KMS_IAM_GROUP) {
        r = kms_iam_group_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, NULL, 1,
                              &obj);
    } else {
        r = kms_iam_role_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, &obj);
    }
    const char *found = NULL;
    if (r == 0) {
        json_t *o = kms_ops_iam_unwrap(obj, kind == KMS_IAM_GROUP  ? "Group"
                                            : kind == KMS_IAM_ROLE ? "Role"
                                                                   : "User");
        found = json_string_value(json_object_get(o, "Arn"));
    }
    if (found != NULL) {
        snprintf(arn, KMS_OPS_IAM_ARN_LEN, "%s", found);
    } else {
        snprintf(arn, KMS_OPS_IAM_ARN_LEN, "arn:aws:iam::%s:%s/%s", kms_ops_iam_account_of(rq),
                 kind_word(kind), name);
    }
    json_decref(obj);
    kms_error_clear();
}

/* Reads the name member of `kind` and authorises the operation on that entity. */
int kms_ops_iam_authorize_entity(kms_request *rq, json_t *req, kms_iam_kind kind, const char **name)
{
    char arn[KMS_OPS_IAM_ARN_LEN];
    KMS_GUARD(kms_request_string(req, kind_member(kind), true, 1, 128, name));
    kms_ops_iam_entity_arn(rq, kind, *name, arn);
    return kms_gate_authorize(rq, rq->operation, arn);
}

/* The user an operation acts on: UserName, else the caller ("If you do not specify a user name,
 * IAM determines the user name implicitly based on the AWS access key ID used to sign the
 * request", IAM API reference). *name NULL means the account's root user. */
static int target_user(kms_request *rq, json_t *req, const char **name,
                       char arn[KMS_OPS_IAM_ARN_LEN])
{
    const kms_identity *id = &rq->who->id;
    KMS_GUARD(kms_request_string(req, "UserName", false, 1, 128, name));
    if (*name == NULL) {
        if (strcmp(id->type, "Root") == 0) {
            snprintf(arn, KMS_OPS_IAM_ARN_LEN, "arn:aws:iam::%s:root", id->account_id);
            return 0;
        }
        KMS_ENSURE(strcmp(id->type, "IAMUser") == 0, KMS_ERR_VALIDATION,
                   "Must specify userName when calling with non-User credentials");
        *name = id->user_name;
    }
    kms_ops_iam_entity_arn(rq, KMS_IAM_USER, *name, arn);
    return 0;
}

int kms_ops_iam_authorize_target_user(kms_request *rq, json_t *req, const char **name)
{
    char arn[KMS_OPS_IAM_ARN_LEN];
    KMS_GUARD(target_user(rq, req, name, arn));
    return kms_gate_authorize(rq, rq->operation, arn);
}

int kms_ops_iam_req_page(json_t *req, const char **marker, size_t *max_items)
{
    long long n = 0;
    KMS_GUARD(kms_request_string(req, "Marker", false, 1, 320, marker));
    KMS_GUARD(kms_request_int(req, "MaxItems", false, 1, 1000, 0, &n));
    *max_items = (size_t)n;
    return 0;
}

/* Tags: [{"Key", "Value"}...] into *tags (malloc'd; the strings borrow from req). */
static int req_tags(json_t *req, bool required, kms_iam_tag **tags, size_t *count)
{
    json_t *list = json_object_get(req, "Tags");
    size_t i;
    json_t *t;
    *tags = NULL;
    *count = 0;
    if (list == NULL || json_is_null(list)) {
        KMS_ENSURE(!required, KMS_ERR_VALIDATION, "Tags is required");
        return 0;
    }
    KMS_ENSURE(json_is_array(list), KMS_ERR_VALIDATION,
               "Tags must be a list of {\"Key\": ..., \"Value\": ...}");
    KMS_ENSURE(json_array_size(list) <= 50, KMS_ERR_VALIDATION,
               "1 validation error detected: Value at 'tags' failed to satisfy constraint: "
               "Member must have length less than or equal to 50");
    if (json_array_size(list) == 0) {
        return 0;
    }
    kms_iam_tag *out = calloc(json_array_size(list), sizeof *out);
    KMS_ENSURE(out != NULL, KMS_ERR_INTERNAL, "out of memory");
    json_array_foreach(list, i, t)
    {
        if (!json_is_object(t) || kms_request_string(t, "Key", true, 1, 128, &out[i].key) != 0 ||
            kms_request_string(t, "Value", true, 0, 256, &out[i].value) != 0) {
            free(out);
            if (!json_is_object(t)) {
                return kms_raise(KMS_ERR_VALIDATION, "Tags[%zu] must be {\"Key\", \"Value\"}", i);
            }
            return -1;
        }
    }
    *tags = out;
    *count = json_array_size(list);
    return 0;
}

/* A list of strings member (TagKeys): *items malloc'd, the strings borrow from req. */
static int req_string_list(json_t *req, const char *name, const char ***items, size_t *count)
{
    json_t *list = json_object_get(req, name);
    size_t i;
    json_t *v;
    *items = NULL;
    *count = 0;
    KMS_ENSURE(json_is_array(list) && json_array_size(list) > 0, KMS_ERR_VALIDATION,
               "%s must be a non-empty list of strings", name);
    const char **out = calloc(json_array_size(list), sizeof *out);
    KMS_ENSURE(out != NULL, KMS_ERR_INTERNAL, "out of memory");
    json_array_foreach(list, i, v)
    {
        if (!json_is_string(v)) {
            free(out);
            return kms_raise(KMS_ERR_VALIDATION, "%s[%zu] must be a string", name, i);
        }
        out[i] = json_string_value(v);
    }
    *items = out;
    *count = json_array_size(list);
    return 0;
}

/* A permissions boundary names a managed policy: its default version must compile as an
 * identity-based policy before it is set. */
int kms_ops_iam_check_boundary(kms_request *rq, const char *policy_arn)
{
    json_t *pol = NULL;
    json_t *ver = NULL;
    int r =
        kms_iam_policy_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), policy_arn, &pol);
    const char *vid = NULL;
    const char *doc = NULL;
    if (r == 0) {
        vid = json_string_value(
            json_object_get(kms_ops_iam_unwrap(pol, "Policy"), "DefaultVersionId"));
        r = vid != NULL
                ? kms_iam_policy_version_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq),
                                             policy_arn, vid, &ver)
                : kms_raise(KMS_ERR_INTERNAL, "%s has no default version", policy_arn);
    }
    if (r == 0) {
        doc = json_string_value(
            json_object_get(kms_ops_iam_unwrap(ver, "PolicyVersion"), "Document"));
        r = doc != NULL ? kms_ops_iam_check_policy(doc, KMS_POLICY_IDENTITY, "PermissionsBoundary")
                        : kms_raise(KMS_ERR_INTERNAL, "%s %s has no document", policy_arn, vid);
    }
    json_decref(pol);
    json_decref(ver);
    return r;
}

static int req_boundary(kms_request *rq, json_t *req, const char **boundary)
{
    KMS_GUARD(kms_request_string(req, "PermissionsBoundary", false, 20, 2048, boundary));
    return *boundary != NULL ? kms_ops_iam_check_boundary(rq, *boundary) : 0;
}

/* The ARN of a new entity at path (NULL "/"): arn:aws:iam::A:KIND/PATH/NAME. */
void kms_ops_iam_new_arn(const kms_request *rq, const char *kind, const char *path,
                         const char *name, char arn[KMS_OPS_IAM_ARN_LEN])
{
    snprintf(arn, KMS_OPS_IAM_ARN_LEN, "arn:aws:iam::%s:%s%s%s", kms_ops_iam_account_of(rq), kind,
             path ? path : "/", name);
}

/* ---- Users ---------------------------------------------------------------------------------- */

static int create_user(kms_request *rq, json_t *req, json_t **resp)
{
    const char *path = NULL, *name = NULL, *boundary = NULL;
    kms_iam_tag *tags = NULL;
    size_t ntags = 0;
    char arn[KMS_OPS_IAM_ARN_LEN];
    json_t *user = NULL;
    KMS_GUARD(kms_request_string(req, "Path", false, 1, 512, &path));
    KMS_GUARD(kms_request_string(req, "UserName", true, 1, 128, &name));
    kms_ops_iam_new_arn(rq, "user", path, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, arn));
    KMS_GUARD(req_boundary(rq, req, &boundary));
    KMS_GUARD(req_tags(req, false, &tags, &ntags));
    int r = kms_iam_user_create(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), path, name,
                                boundary, tags, ntags, kms_now(), &user);
    free(tags);
    return r == 0 ? kms_ops_iam_respond(resp, "User", user) : -1;
}

static int get_user(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    json_t *user = NULL;
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    if (name == NULL) {
        /* The root user: no IAM user record; AWS shows its account id and ARN. */
        const kms_identity *id = &rq->who->id;
        user = json_pack("{s:s, s:s}", "UserId", id->account_id, "Arn", id->arn);
        return kms_ops_iam_respond(resp, "User", user);
    }
    KMS_GUARD(kms_iam_user_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, &user));
    return kms_ops_iam_respond(resp, "User", user);
}

static int list_users(kms_request *rq, json_t *req, json_t **resp)
{
    const char *prefix = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_request_string(req, "PathPrefix", false, 1, 512, &prefix));
    KMS_GUARD(kms_ops_iam_req_page(req, &marker, &max));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_user_list(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), prefix, marker,
                             max, resp);
}

static int update_user(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *new_path = NULL, *new_name = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "NewPath", false, 1, 512, &new_path));
    KMS_GUARD(kms_request_string(req, "NewUserName", false, 1, 128, &new_name));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, KMS_IAM_USER, &name));
    return kms_iam_user_update(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, new_path,
                               new_name);
}

static int delete_user(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    (void)resp;
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, KMS_IAM_USER, &name));
    /* First: key policies, grants and trust policies naming the user name its id instead, so
     * that a user re-created under this name inherits none of it (fail closed). */
    KMS_GUARD(kms_ops_unbind_principal(rq, KMS_IAM_USER, name));
    return kms_iam_user_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name);
}

/* ---- Groups --------------------------------------------------------------------------------- */

static int create_group(kms_request *rq, json_t *req, json_t **resp)
{
    const char *path = NULL, *name = NULL;
    char arn[KMS_OPS_IAM_ARN_LEN];
    json_t *group = NULL;
    KMS_GUARD(kms_request_string(req, "Path", false, 1, 512, &path));
    KMS_GUARD(kms_request_string(req, "GroupName", true, 1, 128, &name));
    kms_ops_iam_new_arn(rq, "group", path, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, arn));
    KMS_GUARD(kms_iam_group_create(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), path, name,
                                   kms_now(), &group));
    return kms_ops_iam_respond(resp, "Group", group);
}

static int get_group(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_ops_iam_req_page(req, &marker, &max));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, KMS_IAM_GROUP, &name));
    return kms_iam_group_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, marker, max,
                             resp);
}

static int list_groups(kms_request *rq, json_t *req, json_t **resp)
{
    const char *prefix = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_request_string(req, "PathPrefix", false, 1, 512, &prefix));
    KMS_GUARD(kms_ops_iam_req_page(req, &marker, &max));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_group_list(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), prefix, marker,
                              max, resp);
}

static int delete_group(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    (void)resp;
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, KMS_IAM_GROUP, &name));
    return kms_iam_group_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name);
}

/* AddUserToGroup, RemoveUserFromGroup: the resource is the group. */
static int group_membership(kms_request *rq, json_t *req, json_t **resp)
{
    const char *group = NULL, *user = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "UserName", true, 1, 128, &user));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, KMS_IAM_GROUP, &group));
    if (strcmp(rq->operation, "iam:AddUserToGroup") == 0) {
        return kms_iam_group_add_user(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), group,
                                      user);
    }
    return kms_iam_group_remove_user(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), group,
                                     user);
}

static int list_groups_for_user(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_ops_iam_req_page(req, &marker, &max));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, KMS_IAM_USER, &name));
    return kms_iam_groups_for_user(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, marker,
                                   max, resp);
}

/* ---- Roles ---------------------------------------------------------------------------------- */

static int create_role(kms_request *rq, json_t *req, json_t **resp)
{
    const char *path = NULL, *name = NULL, *trust = NULL, *desc = NULL, *boundary = NULL;
    long long max_session = 0;
    kms_iam_tag *tags = NULL;
    size_t ntags = 0;
    char arn[KMS_OPS_IAM_ARN_LEN];
    json_t *role = NULL;
    KMS_GUARD(kms_request_string(req, "Path", false, 1, 512, &path));
    KMS_GUARD(kms_request_string(req, "RoleName", true, 1, 64, &name));
    KMS_GUARD(kms_request_string(req, "AssumeRolePolicyDocument", true, 1, 131072, &trust));
    KMS_GUARD(kms_request_string(req, "Description", false, 0, 1000, &desc));
    KMS_GUARD(kms_request_int(req, "MaxSessionDuration", false, 3600, 43200, 0, &max_session));
    kms_ops_iam_new_arn(rq, "role", path, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, arn));
    KMS_GUARD(kms_ops_iam_check_policy(trust, KMS_POLICY_TRUST, "AssumeRolePolicyDocument"));
    KMS_GUARD(req_boundary(rq, req, &boundary));
    KMS_GUARD(req_tags(req, false, &tags, &ntags));
    int r = kms_iam_role_create(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), path, name,
                                trust, desc, max_session, boundary, tags, ntags, kms_now(), &role);
    free(tags);
    return r == 0 ? kms_ops_iam_respond(resp, "Role", role) : -1;
}

static int get_role(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    json_t *role = NULL;
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, KMS_IAM_ROLE, &name));
    KMS_GUARD(kms_iam_role_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, &role));
    return kms_ops_iam_respond(resp, "Role", role);
}

static int list_roles(kms_request *rq, json_t *req, json_t **resp)
{
    const char *prefix = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_request_string(req, "PathPrefix", false, 1, 512, &prefix));
    KMS_GUARD(kms_ops_iam_req_page(req, &marker, &max));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_role_list(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), prefix, marker,
                             max, resp);
}

static int update_role(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *desc = NULL;
    long long max_session = 0;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "Description", false, 0, 1000, &desc));
    KMS_GUARD(kms_request_int(req, "MaxSessionDuration", false, 3600, 43200, 0, &max_session));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, KMS_IAM_ROLE, &name));
    return kms_iam_role_update(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, desc,
                               max_session);
}

static int update_assume_role_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *doc = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "PolicyDocument", true, 1, 131072, &doc));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, KMS_IAM_ROLE, &name));
    KMS_GUARD(kms_ops_iam_check_policy(doc, KMS_POLICY_TRUST, "PolicyDocument"));
    return kms_iam_role_update_trust(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, doc);
}

static int delete_role(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    (void)resp;
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, KMS_IAM_ROLE, &name));
    KMS_GUARD(kms_ops_unbind_principal(rq, KMS_IAM_ROLE, name)); /* as delete_user */
    return kms_iam_role_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name);
}

/* ---- Inline policies: {Put,Get,Delete,List}{User,Group,Role}Policy --------------------------- */

static int put_inline(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL, *policy = NULL, *doc = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "PolicyName", true, 1, 128, &policy));
    KMS_GUARD(kms_request_string(req, "PolicyDocument", true, 1, 131072, &doc));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, kind, &name));
    KMS_GUARD(kms_ops_iam_check_policy(doc, KMS_POLICY_IDENTITY, "PolicyDocument"));
    return kms_iam_inline_put(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind, name,
                              policy, doc);
}

static int get_inline(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL, *policy = NULL;
    KMS_GUARD(kms_request_string(req, "PolicyName", true, 1, 128, &policy));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, kind, &name));
    return kms_iam_inline_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind, name,
                              policy, resp);
}

static int delete_inline(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL, *policy = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "PolicyName", true, 1, 128, &policy));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, kind, &name));
    return kms_iam_inline_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind, name,
                                 policy);
}

static int list_inline(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_ops_iam_req_page(req, &marker, &max));
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, kind, &name));
    return kms_iam_inline_list(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind, name,
                               marker, max, resp);
}

/* ---- Tags: Tag/Untag/List{User,Role}Tags ----------------------------------------------------- */

static int tag_entity(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL;
    kms_iam_tag *tags = NULL;
    size_t ntags = 0;
    (void)resp;
    KMS_GUARD(req_tags(req, true, &tags, &ntags));
    int r = kms_ops_iam_authorize_entity(rq, req, kind, &name);
    if (r == 0) {
        r = ntags > 0 ? kms_iam_tags_add(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind,
                                         name, tags, ntags)
                      : 0;
    }
    free(tags);
    return r;
}

static int untag_entity(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL;
    const char **keys = NULL;
    size_t nkeys = 0;
    (void)resp;
    KMS_GUARD(req_string_list(req, "TagKeys", &keys, &nkeys));
    int r = kms_ops_iam_authorize_entity(rq, req, kind, &name);
    if (r == 0) {
        r = kms_iam_tags_remove(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind, name,
                                keys, nkeys);
    }
    free(keys);
    return r;
}

static int list_tags(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = kms_ops_iam_op_kind(rq);
    const char *name = NULL;
    KMS_GUARD(kms_ops_iam_authorize_entity(rq, req, kind, &name));
    return kms_iam_tags_list(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), kind, name, resp);
}

/* ---- The tables --------------------------------------------------------------------------------
 */

/* Members as in the IAM API reference, limited to those this implementation honours: any other
 * is refused by name rather than ignored. */
#define M(...) ((const char *const[]){__VA_ARGS__, NULL})
#define PAGE "Marker", "MaxItems"

static const kms_op entity_ops[] = {
    {"iam:CreateUser", create_user, M("Path", "UserName", "PermissionsBoundary", "Tags")},
    {"iam:GetUser", get_user, M("UserName")},
    {"iam:ListUsers", list_users, M("PathPrefix", PAGE)},
    {"iam:UpdateUser", update_user, M("UserName", "NewPath", "NewUserName")},
    {"iam:DeleteUser", delete_user, M("UserName")},

    {"iam:CreateGroup", create_group, M("Path", "GroupName")},
    {"iam:GetGroup", get_group, M("GroupName", PAGE)},
    {"iam:ListGroups", list_groups, M("PathPrefix", PAGE)},
    {"iam:DeleteGroup", delete_group, M("GroupName")},
    {"iam:AddUserToGroup", group_membership, M("GroupName", "UserName")},
    {"iam:RemoveUserFromGroup", group_membership, M("GroupName", "UserName")},
    {"iam:ListGroupsForUser", list_groups_for_user, M("UserName", PAGE)},

    {"iam:CreateRole", create_role,
     M("Path", "RoleName", "AssumeRolePolicyDocument", "Description", "MaxSessionDuration",
       "PermissionsBoundary", "Tags")},
    {"iam:GetRole", get_role, M("RoleName")},
    {"iam:ListRoles", list_roles, M("PathPrefix", PAGE)},
    {"iam:UpdateRole", update_role, M("RoleName", "Description", "MaxSessionDuration")},
    {"iam:UpdateAssumeRolePolicy", update_assume_role_policy, M("RoleName", "PolicyDocument")},
    {"iam:DeleteRole", delete_role, M("RoleName")},

    {"iam:PutUserPolicy", put_inline, M("UserName", "PolicyName", "PolicyDocument")},
    {"iam:GetUserPolicy", get_inline, M("UserName", "PolicyName")},
    {"iam:DeleteUserPolicy", delete_inline, M("UserName", "PolicyName")},
    {"iam:ListUserPolicies", list_inline, M("UserName", PAGE)},
    {"iam:PutGroupPolicy", put_inline, M("GroupName", "PolicyName", "PolicyDocument")},
    {"iam:GetGroupPolicy", get_inline, M("GroupName", "PolicyName")},
    {"iam:DeleteGroupPolicy", delete_inline, M("GroupName", "PolicyName")},
    {"iam:ListGroupPolicies", list_inline, M("GroupName", PAGE)},
    {"iam:PutRolePolicy", put_inline, M("RoleName", "PolicyName", "PolicyDocument")},
    {"iam:GetRolePolicy", get_inline, M("RoleName", "PolicyName")},
    {"iam:DeleteRolePolicy", delete_inline, M("RoleName", "PolicyName")},
    {"iam:ListRolePolicies", list_inline, M("RoleName", PAGE)},
};
static const size_t entity_ops_count = sizeof entity_ops / sizeof entity_ops[0];

static const kms_op tag_ops[] = {
    {"iam:TagUser", tag_entity, M("UserName", "Tags")},
    {"iam:UntagUser", untag_entity, M("UserName", "TagKeys")},
    {"iam:ListUserTags", list_tags, M("UserName")},
    {"iam:TagRole", tag_entity, M("RoleName", "Tags")},
    {"iam:UntagRole", untag_entity, M("RoleName", "TagKeys")},
    {"iam:ListRoleTags", list_tags, M("RoleName")},
};
static const size_t tag_ops_count = sizeof tag_ops / sizeof tag_ops[0];

#undef PAGE
#undef M

/* ---- The entry points ------------------------------------------------------------------------ */

static const struct {
    const kms_op *ops;
    const size_t *count;
} tables[] = {
    {entity_ops, &entity_ops_count},
    {kms_ops_iam_policies_table, &kms_ops_iam_policies_table_count},
    {tag_ops, &tag_ops_count},
    {kms_ops_iam_credentials_table, &kms_ops_iam_credentials_table_count},
    {kms_ops_sts_table, &kms_ops_sts_table_count},
    {kms_ops_org_table, &kms_ops_org_table_count},
    {kms_ops_simulate_table, &kms_ops_simulate_table_count},
};

const kms_op *kms_ops_iam_find(const char *name)
{
    for (size_t t = 0; name != NULL && t < sizeof tables / sizeof tables[0]; t++) {
        for (size_t i = 0; i < *tables[t].count; i++) {
            if (strcmp(tables[t].ops[i].name, name) == 0) {
                return &tables[t].ops[i];
            }
        }
    }
    return NULL;
}

#define MAX_NAMES 256
static const char *names[MAX_NAMES];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_fill(void)
{
    size_t n = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (size_t i = 0; i < *tables[t].count && n + 1 < MAX_NAMES; i++) {
            names[n++] = tables[t].ops[i].name;
        }
    }
    names[n] = NULL;
}

const char *const *kms_ops_iam_names(void)
{
    pthread_once(&names_once, names_fill);
    return names;
}
