/* IAM: users, groups, roles, inline and managed policies, permissions boundaries, tags, access
 * keys, passwords and MFA devices, in the request and response shapes of the IAM API reference.
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
#include "util/util.h"

#define ARN_LEN 600
#define M(...) ((const char *const[]){__VA_ARGS__, NULL})

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

static kms_iam *iam_of(const kms_request *rq)
{
    return rq->client->iam;
}

static const char *account_of(const kms_request *rq)
{
    return rq->who->id.account_id;
}

/* The entity kind of the families of operations that exist for users, groups and roles
 * (PutUserPolicy, PutGroupPolicy, PutRolePolicy ...): it is in the operation's name. */
static kms_iam_kind op_kind(const kms_request *rq)
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
static json_t *unwrap(json_t *obj, const char *member)
{
    json_t *inner = json_object_get(obj, member);
    return inner != NULL ? inner : obj;
}

/* The ARN of user/group/role `name` with its path; "/" when it cannot be looked up (it does not
 * exist: the operation fails after the decision). */
static void entity_arn(kms_request *rq, kms_iam_kind kind, const char *name, char arn[ARN_LEN])
{
    json_t *obj = NULL;
    int r;
    if (kind == KMS_IAM_USER) {
        r = kms_iam_user_get(iam_of(rq), account_of(rq), name, &obj);
    } else if (kind == KMS_IAM_GROUP) {
        r = kms_iam_group_get(iam_of(rq), account_of(rq), name, NULL, 1, &obj);
    } else {
        r = kms_iam_role_get(iam_of(rq), account_of(rq), name, &obj);
    }
    const char *found = NULL;
    if (r == 0) {
        json_t *o = unwrap(obj, kind == KMS_IAM_GROUP  ? "Group"
                                : kind == KMS_IAM_ROLE ? "Role"
                                                       : "User");
        found = json_string_value(json_object_get(o, "Arn"));
    }
    if (found != NULL) {
        snprintf(arn, ARN_LEN, "%s", found);
    } else {
        snprintf(arn, ARN_LEN, "arn:aws:iam::%s:%s/%s", account_of(rq), kind_word(kind), name);
    }
    json_decref(obj);
    kms_error_clear();
}

/* Reads the name member of `kind` and authorises the operation on that entity. */
static int authorize_entity(kms_request *rq, json_t *req, kms_iam_kind kind, const char **name)
{
    char arn[ARN_LEN];
    KMS_GUARD(kms_request_string(req, kind_member(kind), true, 1, 128, name));
    entity_arn(rq, kind, *name, arn);
    return kms_gate_authorize(rq, rq->operation, arn);
}

/* The user an operation acts on: UserName, else the caller ("If you do not specify a user name,
 * IAM determines the user name implicitly based on the AWS access key ID used to sign the
 * request", IAM API reference). *name NULL means the account's root user. */
static int target_user(kms_request *rq, json_t *req, const char **name, char arn[ARN_LEN])
{
    const kms_identity *id = &rq->who->id;
    KMS_GUARD(kms_request_string(req, "UserName", false, 1, 128, name));
    if (*name == NULL) {
        if (strcmp(id->type, "Root") == 0) {
            snprintf(arn, ARN_LEN, "arn:aws:iam::%s:root", id->account_id);
            return 0;
        }
        KMS_ENSURE(strcmp(id->type, "IAMUser") == 0, KMS_ERR_VALIDATION,
                   "Must specify userName when calling with non-User credentials");
        *name = id->user_name;
    }
    entity_arn(rq, KMS_IAM_USER, *name, arn);
    return 0;
}

static int authorize_target_user(kms_request *rq, json_t *req, const char **name)
{
    char arn[ARN_LEN];
    KMS_GUARD(target_user(rq, req, name, arn));
    return kms_gate_authorize(rq, rq->operation, arn);
}

static int req_page(json_t *req, const char **marker, size_t *max_items)
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
static int check_boundary(kms_request *rq, const char *policy_arn)
{
    json_t *pol = NULL;
    json_t *ver = NULL;
    int r = kms_iam_policy_get(iam_of(rq), account_of(rq), policy_arn, &pol);
    const char *vid = NULL;
    const char *doc = NULL;
    if (r == 0) {
        vid = json_string_value(json_object_get(unwrap(pol, "Policy"), "DefaultVersionId"));
        r = vid != NULL
                ? kms_iam_policy_version_get(iam_of(rq), account_of(rq), policy_arn, vid, &ver)
                : kms_raise(KMS_ERR_INTERNAL, "%s has no default version", policy_arn);
    }
    if (r == 0) {
        doc = json_string_value(json_object_get(unwrap(ver, "PolicyVersion"), "Document"));
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
    return *boundary != NULL ? check_boundary(rq, *boundary) : 0;
}

/* The ARN of a new entity at path (NULL "/"): arn:aws:iam::A:KIND/PATH/NAME. */
static void new_arn(const kms_request *rq, const char *kind, const char *path, const char *name,
                    char arn[ARN_LEN])
{
    snprintf(arn, ARN_LEN, "arn:aws:iam::%s:%s%s%s", account_of(rq), kind, path ? path : "/", name);
}

/* ---- Users ---------------------------------------------------------------------------------- */

static int create_user(kms_request *rq, json_t *req, json_t **resp)
{
    const char *path = NULL, *name = NULL, *boundary = NULL;
    kms_iam_tag *tags = NULL;
    size_t ntags = 0;
    char arn[ARN_LEN];
    json_t *user = NULL;
    KMS_GUARD(kms_request_string(req, "Path", false, 1, 512, &path));
    KMS_GUARD(kms_request_string(req, "UserName", true, 1, 128, &name));
    new_arn(rq, "user", path, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, arn));
    KMS_GUARD(req_boundary(rq, req, &boundary));
    KMS_GUARD(req_tags(req, false, &tags, &ntags));
    int r = kms_iam_user_create(iam_of(rq), account_of(rq), path, name, boundary, tags, ntags,
                                kms_now(), &user);
    free(tags);
    return r == 0 ? kms_ops_iam_respond(resp, "User", user) : -1;
}

static int get_user(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    json_t *user = NULL;
    KMS_GUARD(authorize_target_user(rq, req, &name));
    if (name == NULL) {
        /* The root user: no IAM user record; AWS shows its account id and ARN. */
        const kms_identity *id = &rq->who->id;
        user = json_pack("{s:s, s:s}", "UserId", id->account_id, "Arn", id->arn);
        return kms_ops_iam_respond(resp, "User", user);
    }
    KMS_GUARD(kms_iam_user_get(iam_of(rq), account_of(rq), name, &user));
    return kms_ops_iam_respond(resp, "User", user);
}

static int list_users(kms_request *rq, json_t *req, json_t **resp)
{
    const char *prefix = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_request_string(req, "PathPrefix", false, 1, 512, &prefix));
    KMS_GUARD(req_page(req, &marker, &max));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_user_list(iam_of(rq), account_of(rq), prefix, marker, max, resp);
}

static int update_user(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *new_path = NULL, *new_name = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "NewPath", false, 1, 512, &new_path));
    KMS_GUARD(kms_request_string(req, "NewUserName", false, 1, 128, &new_name));
    KMS_GUARD(authorize_entity(rq, req, KMS_IAM_USER, &name));
    return kms_iam_user_update(iam_of(rq), account_of(rq), name, new_path, new_name);
}

static int delete_user(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    (void)resp;
    KMS_GUARD(authorize_entity(rq, req, KMS_IAM_USER, &name));
    return kms_iam_user_delete(iam_of(rq), account_of(rq), name);
}

/* ---- Groups --------------------------------------------------------------------------------- */

static int create_group(kms_request *rq, json_t *req, json_t **resp)
{
    const char *path = NULL, *name = NULL;
    char arn[ARN_LEN];
    json_t *group = NULL;
    KMS_GUARD(kms_request_string(req, "Path", false, 1, 512, &path));
    KMS_GUARD(kms_request_string(req, "GroupName", true, 1, 128, &name));
    new_arn(rq, "group", path, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, arn));
    KMS_GUARD(kms_iam_group_create(iam_of(rq), account_of(rq), path, name, kms_now(), &group));
    return kms_ops_iam_respond(resp, "Group", group);
}

static int get_group(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(req_page(req, &marker, &max));
    KMS_GUARD(authorize_entity(rq, req, KMS_IAM_GROUP, &name));
    return kms_iam_group_get(iam_of(rq), account_of(rq), name, marker, max, resp);
}

static int list_groups(kms_request *rq, json_t *req, json_t **resp)
{
    const char *prefix = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_request_string(req, "PathPrefix", false, 1, 512, &prefix));
    KMS_GUARD(req_page(req, &marker, &max));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_group_list(iam_of(rq), account_of(rq), prefix, marker, max, resp);
}

static int delete_group(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    (void)resp;
    KMS_GUARD(authorize_entity(rq, req, KMS_IAM_GROUP, &name));
    return kms_iam_group_delete(iam_of(rq), account_of(rq), name);
}

/* AddUserToGroup, RemoveUserFromGroup: the resource is the group. */
static int group_membership(kms_request *rq, json_t *req, json_t **resp)
{
    const char *group = NULL, *user = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "UserName", true, 1, 128, &user));
    KMS_GUARD(authorize_entity(rq, req, KMS_IAM_GROUP, &group));
    if (strcmp(rq->operation, "iam:AddUserToGroup") == 0) {
        return kms_iam_group_add_user(iam_of(rq), account_of(rq), group, user);
    }
    return kms_iam_group_remove_user(iam_of(rq), account_of(rq), group, user);
}

static int list_groups_for_user(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(req_page(req, &marker, &max));
    KMS_GUARD(authorize_entity(rq, req, KMS_IAM_USER, &name));
    return kms_iam_groups_for_user(iam_of(rq), account_of(rq), name, marker, max, resp);
}

/* ---- Roles ---------------------------------------------------------------------------------- */

static int create_role(kms_request *rq, json_t *req, json_t **resp)
{
    const char *path = NULL, *name = NULL, *trust = NULL, *desc = NULL, *boundary = NULL;
    long long max_session = 0;
    kms_iam_tag *tags = NULL;
    size_t ntags = 0;
    char arn[ARN_LEN];
    json_t *role = NULL;
    KMS_GUARD(kms_request_string(req, "Path", false, 1, 512, &path));
    KMS_GUARD(kms_request_string(req, "RoleName", true, 1, 64, &name));
    KMS_GUARD(kms_request_string(req, "AssumeRolePolicyDocument", true, 1, 131072, &trust));
    KMS_GUARD(kms_request_string(req, "Description", false, 0, 1000, &desc));
    KMS_GUARD(kms_request_int(req, "MaxSessionDuration", false, 3600, 43200, 0, &max_session));
    new_arn(rq, "role", path, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, arn));
    KMS_GUARD(kms_ops_iam_check_policy(trust, KMS_POLICY_TRUST, "AssumeRolePolicyDocument"));
    KMS_GUARD(req_boundary(rq, req, &boundary));
    KMS_GUARD(req_tags(req, false, &tags, &ntags));
    int r = kms_iam_role_create(iam_of(rq), account_of(rq), path, name, trust, desc, max_session,
                                boundary, tags, ntags, kms_now(), &role);
    free(tags);
    return r == 0 ? kms_ops_iam_respond(resp, "Role", role) : -1;
}

static int get_role(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    json_t *role = NULL;
    KMS_GUARD(authorize_entity(rq, req, KMS_IAM_ROLE, &name));
    KMS_GUARD(kms_iam_role_get(iam_of(rq), account_of(rq), name, &role));
    return kms_ops_iam_respond(resp, "Role", role);
}

static int list_roles(kms_request *rq, json_t *req, json_t **resp)
{
    const char *prefix = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_request_string(req, "PathPrefix", false, 1, 512, &prefix));
    KMS_GUARD(req_page(req, &marker, &max));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_role_list(iam_of(rq), account_of(rq), prefix, marker, max, resp);
}

static int update_role(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *desc = NULL;
    long long max_session = 0;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "Description", false, 0, 1000, &desc));
    KMS_GUARD(kms_request_int(req, "MaxSessionDuration", false, 3600, 43200, 0, &max_session));
    KMS_GUARD(authorize_entity(rq, req, KMS_IAM_ROLE, &name));
    return kms_iam_role_update(iam_of(rq), account_of(rq), name, desc, max_session);
}

static int update_assume_role_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *doc = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "PolicyDocument", true, 1, 131072, &doc));
    KMS_GUARD(authorize_entity(rq, req, KMS_IAM_ROLE, &name));
    KMS_GUARD(kms_ops_iam_check_policy(doc, KMS_POLICY_TRUST, "PolicyDocument"));
    return kms_iam_role_update_trust(iam_of(rq), account_of(rq), name, doc);
}

static int delete_role(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    (void)resp;
    KMS_GUARD(authorize_entity(rq, req, KMS_IAM_ROLE, &name));
    return kms_iam_role_delete(iam_of(rq), account_of(rq), name);
}

/* ---- Inline policies: {Put,Get,Delete,List}{User,Group,Role}Policy --------------------------- */

static int put_inline(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL, *policy = NULL, *doc = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "PolicyName", true, 1, 128, &policy));
    KMS_GUARD(kms_request_string(req, "PolicyDocument", true, 1, 131072, &doc));
    KMS_GUARD(authorize_entity(rq, req, kind, &name));
    KMS_GUARD(kms_ops_iam_check_policy(doc, KMS_POLICY_IDENTITY, "PolicyDocument"));
    return kms_iam_inline_put(iam_of(rq), account_of(rq), kind, name, policy, doc);
}

static int get_inline(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL, *policy = NULL;
    KMS_GUARD(kms_request_string(req, "PolicyName", true, 1, 128, &policy));
    KMS_GUARD(authorize_entity(rq, req, kind, &name));
    return kms_iam_inline_get(iam_of(rq), account_of(rq), kind, name, policy, resp);
}

static int delete_inline(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL, *policy = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "PolicyName", true, 1, 128, &policy));
    KMS_GUARD(authorize_entity(rq, req, kind, &name));
    return kms_iam_inline_delete(iam_of(rq), account_of(rq), kind, name, policy);
}

static int list_inline(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(req_page(req, &marker, &max));
    KMS_GUARD(authorize_entity(rq, req, kind, &name));
    return kms_iam_inline_list(iam_of(rq), account_of(rq), kind, name, marker, max, resp);
}

/* ---- Managed policies ---------------------------------------------------------------------- */

static int req_policy_arn(kms_request *rq, json_t *req, const char **arn)
{
    KMS_GUARD(kms_request_string(req, "PolicyArn", true, 20, 2048, arn));
    return kms_gate_authorize(rq, rq->operation, *arn);
}

static int create_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *path = NULL, *name = NULL, *doc = NULL, *desc = NULL;
    char arn[ARN_LEN];
    json_t *policy = NULL;
    KMS_GUARD(kms_request_string(req, "Path", false, 1, 512, &path));
    KMS_GUARD(kms_request_string(req, "PolicyName", true, 1, 128, &name));
    KMS_GUARD(kms_request_string(req, "PolicyDocument", true, 1, 131072, &doc));
    KMS_GUARD(kms_request_string(req, "Description", false, 0, 1000, &desc));
    new_arn(rq, "policy", path, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, arn));
    KMS_GUARD(kms_ops_iam_check_policy(doc, KMS_POLICY_IDENTITY, "PolicyDocument"));
    KMS_GUARD(kms_iam_policy_create(iam_of(rq), account_of(rq), path, name, desc, doc, kms_now(),
                                    &policy));
    return kms_ops_iam_respond(resp, "Policy", policy);
}

static int get_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL;
    json_t *policy = NULL;
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    KMS_GUARD(kms_iam_policy_get(iam_of(rq), account_of(rq), arn, &policy));
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
    KMS_GUARD(req_page(req, &marker, &max));
    KMS_ENSURE(scope == NULL || strcmp(scope, "All") == 0 || strcmp(scope, "AWS") == 0 ||
                   strcmp(scope, "Local") == 0,
               KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'scope' failed to satisfy "
               "constraint: Member must satisfy enum value set: [All, AWS, Local]",
               scope);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_policy_list(iam_of(rq), account_of(rq), scope, only_attached, prefix, marker,
                               max, resp);
}

static int delete_policy(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL;
    (void)resp;
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    return kms_iam_policy_delete(iam_of(rq), account_of(rq), arn);
}

static int create_policy_version(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL, *doc = NULL;
    bool set_default = false;
    json_t *version = NULL;
    KMS_GUARD(kms_request_string(req, "PolicyDocument", true, 1, 131072, &doc));
    KMS_GUARD(kms_ops_iam_req_bool(req, "SetAsDefault", false, &set_default));
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    KMS_GUARD(kms_ops_iam_check_policy(doc, KMS_POLICY_IDENTITY, "PolicyDocument"));
    KMS_GUARD(kms_iam_policy_version_create(iam_of(rq), account_of(rq), arn, doc, set_default,
                                            kms_now(), &version));
    return kms_ops_iam_respond(resp, "PolicyVersion", version);
}

static int get_policy_version(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL, *vid = NULL;
    json_t *version = NULL;
    KMS_GUARD(kms_request_string(req, "VersionId", true, 1, 32, &vid));
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    KMS_GUARD(kms_iam_policy_version_get(iam_of(rq), account_of(rq), arn, vid, &version));
    return kms_ops_iam_respond(resp, "PolicyVersion", version);
}

static int list_policy_versions(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL;
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    return kms_iam_policy_version_list(iam_of(rq), account_of(rq), arn, resp);
}

static int delete_policy_version(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL, *vid = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "VersionId", true, 1, 32, &vid));
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    return kms_iam_policy_version_delete(iam_of(rq), account_of(rq), arn, vid);
}

static int set_default_policy_version(kms_request *rq, json_t *req, json_t **resp)
{
    const char *arn = NULL, *vid = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "VersionId", true, 1, 32, &vid));
    KMS_GUARD(req_policy_arn(rq, req, &arn));
    return kms_iam_policy_set_default_version(iam_of(rq), account_of(rq), arn, vid);
}

/* {Attach,Detach}{User,Group,Role}Policy: the resource is the entity (IAM SAR). */
static int attach_policy(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL, *arn = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "PolicyArn", true, 20, 2048, &arn));
    KMS_GUARD(authorize_entity(rq, req, kind, &name));
    if (strncmp(rq->operation, "iam:Attach", 10) == 0) {
        return kms_iam_policy_attach(iam_of(rq), account_of(rq), kind, name, arn);
    }
    return kms_iam_policy_detach(iam_of(rq), account_of(rq), kind, name, arn);
}

static int list_attached(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL, *prefix = NULL, *marker = NULL;
    size_t max = 0;
    KMS_GUARD(kms_request_string(req, "PathPrefix", false, 1, 512, &prefix));
    KMS_GUARD(req_page(req, &marker, &max));
    KMS_GUARD(authorize_entity(rq, req, kind, &name));
    return kms_iam_policy_list_attached(iam_of(rq), account_of(rq), kind, name, prefix, marker, max,
                                        resp);
}

/* Put/Delete{User,Role}PermissionsBoundary. */
static int put_boundary(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL, *arn = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "PermissionsBoundary", true, 20, 2048, &arn));
    KMS_GUARD(authorize_entity(rq, req, kind, &name));
    KMS_GUARD(check_boundary(rq, arn));
    return kms_iam_boundary_put(iam_of(rq), account_of(rq), kind, name, arn);
}

static int delete_boundary(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL;
    (void)resp;
    KMS_GUARD(authorize_entity(rq, req, kind, &name));
    return kms_iam_boundary_delete(iam_of(rq), account_of(rq), kind, name);
}

/* ---- Tags: Tag/Untag/List{User,Role}Tags ----------------------------------------------------- */

static int tag_entity(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL;
    kms_iam_tag *tags = NULL;
    size_t ntags = 0;
    (void)resp;
    KMS_GUARD(req_tags(req, true, &tags, &ntags));
    int r = authorize_entity(rq, req, kind, &name);
    if (r == 0) {
        r = ntags > 0 ? kms_iam_tags_add(iam_of(rq), account_of(rq), kind, name, tags, ntags) : 0;
    }
    free(tags);
    return r;
}

static int untag_entity(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL;
    const char **keys = NULL;
    size_t nkeys = 0;
    (void)resp;
    KMS_GUARD(req_string_list(req, "TagKeys", &keys, &nkeys));
    int r = authorize_entity(rq, req, kind, &name);
    if (r == 0) {
        r = kms_iam_tags_remove(iam_of(rq), account_of(rq), kind, name, keys, nkeys);
    }
    free(keys);
    return r;
}

static int list_tags(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_kind kind = op_kind(rq);
    const char *name = NULL;
    KMS_GUARD(authorize_entity(rq, req, kind, &name));
    return kms_iam_tags_list(iam_of(rq), account_of(rq), kind, name, resp);
}

/* ---- Access keys ----------------------------------------------------------------------------- */

static int create_access_key(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    char key_id[32];
    char *secret = NULL;
    json_t *key = NULL;
    KMS_GUARD(authorize_target_user(rq, req, &name));
    KMS_GUARD(kms_iam_access_key_create(iam_of(rq), account_of(rq), name, kms_now(), key_id,
                                        &secret, &key));
    /* The one time the secret is shown (IAM API reference, CreateAccessKey). kmsctl wipes the
     * response text after printing it. */
    json_t *s = json_string(secret);
    kms_iam_secret_free(secret);
    json_t *inner = unwrap(key, "AccessKey");
    if (s == NULL || json_object_set_new(inner, "SecretAccessKey", s) != 0) {
        json_decref(key);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return kms_ops_iam_respond(resp, "AccessKey", key);
}

static int list_access_keys(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    KMS_GUARD(authorize_target_user(rq, req, &name));
    return kms_iam_access_key_list(iam_of(rq), account_of(rq), name, resp);
}

static int update_access_key(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *key_id = NULL, *status = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "AccessKeyId", true, 16, 128, &key_id));
    KMS_GUARD(kms_request_string(req, "Status", true, 1, 16, &status));
    KMS_ENSURE(strcmp(status, "Active") == 0 || strcmp(status, "Inactive") == 0, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'status' failed to satisfy "
               "constraint: Member must satisfy enum value set: [Active, Inactive]",
               status);
    KMS_GUARD(authorize_target_user(rq, req, &name));
    return kms_iam_access_key_update(iam_of(rq), account_of(rq), name, key_id, status);
}

static int delete_access_key(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *key_id = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "AccessKeyId", true, 16, 128, &key_id));
    KMS_GUARD(authorize_target_user(rq, req, &name));
    return kms_iam_access_key_delete(iam_of(rq), account_of(rq), name, key_id);
}

/* The resource is the key's user, known only after the lookup: the answer is kept back until
 * the decision, and a failed lookup is decided on "*" so that it tells an unauthorised caller
 * nothing. */
static int get_access_key_last_used(kms_request *rq, json_t *req, json_t **resp)
{
    const char *key_id = NULL;
    json_t *out = NULL;
    char arn[ARN_LEN];
    KMS_GUARD(kms_request_string(req, "AccessKeyId", true, 16, 128, &key_id));
    if (kms_iam_access_key_last_used(iam_of(rq), account_of(rq), key_id, &out) != 0) {
        kms_saved_error e;
        kms_error_save(&e);
        KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
        return kms_error_restore(&e);
    }
    const char *user = json_string_value(json_object_get(out, "UserName"));
    if (user != NULL) {
        entity_arn(rq, KMS_IAM_USER, user, arn);
    } else {
        snprintf(arn, sizeof arn, "arn:aws:iam::%s:root", account_of(rq));
    }
    if (kms_gate_authorize(rq, rq->operation, arn) != 0) {
        json_decref(out);
        return -1;
    }
    *resp = out;
    return 0;
}

/* ---- Passwords ------------------------------------------------------------------------------- */

static int create_login_profile(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *password = NULL;
    bool reset = false;
    json_t *profile = NULL;
    KMS_GUARD(kms_request_string(req, "Password", true, 1, 128, &password));
    KMS_GUARD(kms_ops_iam_req_bool(req, "PasswordResetRequired", false, &reset));
    KMS_GUARD(authorize_target_user(rq, req, &name));
    KMS_GUARD(kms_iam_login_profile_create(iam_of(rq), account_of(rq), name, password, reset,
                                           kms_now(), &profile));
    return kms_ops_iam_respond(resp, "LoginProfile", profile);
}

static int get_login_profile(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    json_t *profile = NULL;
    KMS_GUARD(authorize_target_user(rq, req, &name));
    KMS_GUARD(kms_iam_login_profile_get(iam_of(rq), account_of(rq), name, &profile));
    return kms_ops_iam_respond(resp, "LoginProfile", profile);
}

static int update_login_profile(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *password = NULL;
    bool reset = false;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "Password", false, 1, 128, &password));
    KMS_GUARD(kms_ops_iam_req_bool(req, "PasswordResetRequired", false, &reset));
    int reset_flag = json_object_get(req, "PasswordResetRequired") != NULL ? reset : -1;
    KMS_GUARD(authorize_target_user(rq, req, &name));
    return kms_iam_login_profile_update(iam_of(rq), account_of(rq), name, password, reset_flag,
                                        kms_now());
}

static int delete_login_profile(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    (void)resp;
    KMS_GUARD(authorize_target_user(rq, req, &name));
    return kms_iam_login_profile_delete(iam_of(rq), account_of(rq), name);
}

/* ChangePassword: an IAM user changes its own password; the resource is the caller. */
static int change_password(kms_request *rq, json_t *req, json_t **resp)
{
    const char *old_pw = NULL, *new_pw = NULL;
    const kms_identity *id = &rq->who->id;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "OldPassword", true, 1, 128, &old_pw));
    KMS_GUARD(kms_request_string(req, "NewPassword", true, 1, 128, &new_pw));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, id->arn));
    KMS_ENSURE(strcmp(id->type, "IAMUser") == 0, KMS_ERR_INVALID_INPUT,
               "ChangePassword is for IAM users changing their own password; %s is not an IAM "
               "user (an administrator sets passwords with update-login-profile)",
               id->arn);
    return kms_iam_password_change(iam_of(rq), account_of(rq), id->user_name, old_pw, new_pw,
                                   kms_now());
}

static int update_password_policy(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_password_policy p;
    long long n = 0;
    (void)resp;
    memset(&p, 0, sizeof p);
    /* IAM API reference: absent parameters take their defaults (length 6, all else off). */
    KMS_GUARD(kms_request_int(req, "MinimumPasswordLength", false, 6, 128, 6, &n));
    p.minimum_password_length = n;
    KMS_GUARD(kms_ops_iam_req_bool(req, "RequireSymbols", false, &p.require_symbols));
    KMS_GUARD(kms_ops_iam_req_bool(req, "RequireNumbers", false, &p.require_numbers));
    KMS_GUARD(kms_ops_iam_req_bool(req, "RequireUppercaseCharacters", false,
                                   &p.require_uppercase_characters));
    KMS_GUARD(kms_ops_iam_req_bool(req, "RequireLowercaseCharacters", false,
                                   &p.require_lowercase_characters));
    KMS_GUARD(kms_ops_iam_req_bool(req, "AllowUsersToChangePassword", false,
                                   &p.allow_users_to_change_password));
    KMS_GUARD(kms_request_int(req, "MaxPasswordAge", false, 1, 1095, 0, &n));
    p.max_password_age = n;
    KMS_GUARD(kms_request_int(req, "PasswordReusePrevention", false, 1, 24, 0, &n));
    p.password_reuse_prevention = n;
    KMS_GUARD(kms_ops_iam_req_bool(req, "HardExpiry", false, &p.hard_expiry));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_password_policy_put(iam_of(rq), account_of(rq), &p);
}

static int get_password_policy(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_password_policy p;
    (void)req;
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    KMS_GUARD(kms_iam_password_policy_get(iam_of(rq), account_of(rq), &p));
    json_t *o = json_pack("{s:I, s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "MinimumPasswordLength",
                          (json_int_t)p.minimum_password_length, "RequireSymbols",
                          p.require_symbols, "RequireNumbers", p.require_numbers,
                          "RequireUppercaseCharacters", p.require_uppercase_characters,
                          "RequireLowercaseCharacters", p.require_lowercase_characters,
                          "AllowUsersToChangePassword", p.allow_users_to_change_password,
                          "ExpirePasswords", p.max_password_age > 0, "HardExpiry", p.hard_expiry);
    KMS_ENSURE(o != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (p.max_password_age > 0) {
        json_object_set_new(o, "MaxPasswordAge", json_integer(p.max_password_age));
    }
    if (p.password_reuse_prevention > 0) {
        json_object_set_new(o, "PasswordReusePrevention",
                            json_integer(p.password_reuse_prevention));
    }
    return kms_ops_iam_respond(resp, "PasswordPolicy", o);
}

static int delete_password_policy(kms_request *rq, json_t *req, json_t **resp)
{
    (void)req;
    (void)resp;
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_password_policy_delete(iam_of(rq), account_of(rq));
}

/* ---- MFA ------------------------------------------------------------------------------------- */

static int create_virtual_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *path = NULL, *name = NULL;
    char arn[ARN_LEN];
    char *serial = NULL;
    char *seed = NULL;
    KMS_GUARD(kms_request_string(req, "Path", false, 1, 512, &path));
    KMS_GUARD(kms_request_string(req, "VirtualMFADeviceName", true, 1, 226, &name));
    new_arn(rq, "mfa", path, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, arn));
    KMS_GUARD(
        kms_iam_mfa_create(iam_of(rq), account_of(rq), path, name, kms_now(), &serial, &seed));
    /* IAM API reference, VirtualMFADevice: Base32StringSeed is a blob (base64 in JSON) holding
     * the Base32 text of the seed. Shown this once; kmsctl wipes the response text. */
    int r = -1;
    json_t *dev = json_pack("{s:s}", "SerialNumber", serial);
    if (dev != NULL && kms_request_json_set_blob(dev, "Base32StringSeed", (const uint8_t *)seed,
                                                 strlen(seed)) == 0) {
        r = kms_ops_iam_respond(resp, "VirtualMFADevice", dev);
        dev = NULL;
    } else if (dev == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    json_decref(dev);
    kms_iam_secret_free(seed);
    free(serial);
    return r;
}

static int enable_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *serial = NULL, *code1 = NULL, *code2 = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "SerialNumber", true, 9, 256, &serial));
    KMS_GUARD(kms_request_string(req, "AuthenticationCode1", true, 6, 6, &code1));
    KMS_GUARD(kms_request_string(req, "AuthenticationCode2", true, 6, 6, &code2));
    KMS_GUARD(authorize_target_user(rq, req, &name));
    return kms_iam_mfa_enable(iam_of(rq), account_of(rq), name, serial, code1, code2, kms_now());
}

static int deactivate_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *serial = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "SerialNumber", true, 9, 256, &serial));
    KMS_GUARD(authorize_target_user(rq, req, &name));
    return kms_iam_mfa_deactivate(iam_of(rq), account_of(rq), name, serial);
}

static int list_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    KMS_GUARD(authorize_target_user(rq, req, &name));
    return kms_iam_mfa_list(iam_of(rq), account_of(rq), name, resp);
}

static int list_virtual_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *status = NULL;
    KMS_GUARD(kms_request_string(req, "AssignmentStatus", false, 1, 16, &status));
    KMS_ENSURE(status == NULL || strcmp(status, "Assigned") == 0 ||
                   strcmp(status, "Unassigned") == 0 || strcmp(status, "Any") == 0,
               KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'assignmentStatus' failed to satisfy "
               "constraint: Member must satisfy enum value set: [Assigned, Unassigned, Any]",
               status);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_mfa_list_virtual(iam_of(rq), account_of(rq), status, resp);
}

static int delete_virtual_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *serial = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "SerialNumber", true, 9, 256, &serial));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, serial));
    return kms_iam_mfa_delete(iam_of(rq), account_of(rq), serial);
}

/* ---- The table --------------------------------------------------------------------------------
 * Members as in the IAM API reference, limited to those this implementation honours: any other
 * is refused by name rather than ignored. */

#define PAGE "Marker", "MaxItems"

const kms_op kms_ops_iam_table[] = {
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

    {"iam:TagUser", tag_entity, M("UserName", "Tags")},
    {"iam:UntagUser", untag_entity, M("UserName", "TagKeys")},
    {"iam:ListUserTags", list_tags, M("UserName")},
    {"iam:TagRole", tag_entity, M("RoleName", "Tags")},
    {"iam:UntagRole", untag_entity, M("RoleName", "TagKeys")},
    {"iam:ListRoleTags", list_tags, M("RoleName")},

    {"iam:CreateAccessKey", create_access_key, M("UserName")},
    {"iam:ListAccessKeys", list_access_keys, M("UserName")},
    {"iam:UpdateAccessKey", update_access_key, M("UserName", "AccessKeyId", "Status")},
    {"iam:DeleteAccessKey", delete_access_key, M("UserName", "AccessKeyId")},
    {"iam:GetAccessKeyLastUsed", get_access_key_last_used, M("AccessKeyId")},

    {"iam:CreateLoginProfile", create_login_profile,
     M("UserName", "Password", "PasswordResetRequired")},
    {"iam:GetLoginProfile", get_login_profile, M("UserName")},
    {"iam:UpdateLoginProfile", update_login_profile,
     M("UserName", "Password", "PasswordResetRequired")},
    {"iam:DeleteLoginProfile", delete_login_profile, M("UserName")},
    {"iam:ChangePassword", change_password, M("OldPassword", "NewPassword")},
    {"iam:UpdateAccountPasswordPolicy", update_password_policy,
     M("MinimumPasswordLength", "RequireSymbols", "RequireNumbers", "RequireUppercaseCharacters",
       "RequireLowercaseCharacters", "AllowUsersToChangePassword", "MaxPasswordAge",
       "PasswordReusePrevention", "HardExpiry")},
    {"iam:GetAccountPasswordPolicy", get_password_policy, M(NULL)},
    {"iam:DeleteAccountPasswordPolicy", delete_password_policy, M(NULL)},

    {"iam:CreateVirtualMFADevice", create_virtual_mfa, M("Path", "VirtualMFADeviceName")},
    {"iam:EnableMFADevice", enable_mfa,
     M("UserName", "SerialNumber", "AuthenticationCode1", "AuthenticationCode2")},
    {"iam:DeactivateMFADevice", deactivate_mfa, M("UserName", "SerialNumber")},
    {"iam:ListMFADevices", list_mfa, M("UserName")},
    {"iam:ListVirtualMFADevices", list_virtual_mfa, M("AssignmentStatus")},
    {"iam:DeleteVirtualMFADevice", delete_virtual_mfa, M("SerialNumber")},
};

const size_t kms_ops_iam_table_count = sizeof kms_ops_iam_table / sizeof kms_ops_iam_table[0];

#undef PAGE
#undef M

/* ---- The entry points ------------------------------------------------------------------------ */

static const struct {
    const kms_op *ops;
    const size_t *count;
} tables[] = {
    {kms_ops_iam_table, &kms_ops_iam_table_count},
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
