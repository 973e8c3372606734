/* The first records of a new home's trail: init's own IAM setup (kms_iam_bootstrap), recorded as
 * the account's root user making the IAM calls, in the order init makes them. Private to
 * src/service. */
#include <stdlib.h>
#include <string.h>

#include "service/audit_trail.h"
#include "util/util.h"

#define ADMIN_USER "admin"
#define ADMIN_GROUP "Admins"
#define ADMIN_POLICY_ARN "arn:aws:iam::aws:policy/AdministratorAccess"

/* One record, written by the same builder as every request's (kms_audit_trail_request); req and
 * resp are taken (and freed). The caller is the root user, who needs no authorisation. */
static int record(kms_client *c, kms_principal_snapshot *root, const char *operation, json_t *req,
                  json_t *resp)
{
    int r = -1;
    kms_audit *audit = NULL;
    kms_request rq;
    memset(&rq, 0, sizeof rq);
    if (req == NULL || resp == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    rq.client = c;
    rq.operation = operation;
    rq.started = kms_now();
    rq.authorized = true;
    rq.who = root;
    rq.req = req;
    rq.resp = resp;
    if (kms_audit_trail_of_client(c, &audit) != 0) {
        goto out;
    }
    if (kms_audit_announce(audit) != 0) {
        goto out;
    }
    if (kms_audit_trail_request(&rq, 0) != 0) {
        goto out;
    }
    r = 0;
out:
    json_decref(req);
    json_decref(resp);
    return r;
}

/* {member: the object}, taking obj (NULL on out-of-memory). */
static json_t *wrap(const char *member, json_t *obj)
{
    json_t *o = obj != NULL ? json_pack("{s:O}", member, obj) : NULL;
    json_decref(obj);
    return o;
}

static json_t *group_response(kms_client *c)
{
    json_t *g = NULL;
    if (kms_iam_group_get(c->iam, c->cfg.account_id, ADMIN_GROUP, NULL, 1, &g) != 0) {
        return NULL;
    }
    json_t *o = json_pack("{s:O}", "Group", json_object_get(g, "Group"));
    json_decref(g);
    return o;
}

static json_t *user_response(kms_client *c)
{
    json_t *u = NULL;
    if (kms_iam_user_get(c->iam, c->cfg.account_id, ADMIN_USER, &u) != 0) {
        return NULL;
    }
    /* GetUser's PasswordLastUsed is no part of CreateUser's answer. */
    json_object_del(u, "PasswordLastUsed");
    return wrap("User", u);
}

/* CreateAccessKey's answer without its secret (the builder drops secrets too). */
static json_t *access_key_response(kms_client *c)
{
    json_t *l = NULL;
    if (kms_iam_access_key_list(c->iam, c->cfg.account_id, ADMIN_USER, &l) != 0) {
        return NULL;
    }
    json_t *k = json_array_get(json_object_get(l, "AccessKeyMetadata"), 0);
    json_t *o = k != NULL ? json_pack("{s:O}", "AccessKey", k) : NULL;
    json_decref(l);
    return o;
}

static json_t *password_policy_request(kms_client *c)
{
    kms_iam_password_policy p;
    if (kms_iam_password_policy_get(c->iam, c->cfg.account_id, &p) != 0) {
        return NULL;
    }
    json_t *o =
        json_pack("{s:I, s:b, s:b, s:b, s:b, s:b, s:b}", "MinimumPasswordLength",
                  (json_int_t)p.minimum_password_length, "RequireSymbols", p.require_symbols,
                  "RequireNumbers", p.require_numbers, "RequireUppercaseCharacters",
                  p.require_uppercase_characters, "RequireLowercaseCharacters",
                  p.require_lowercase_characters, "AllowUsersToChangePassword",
                  p.allow_users_to_change_password, "HardExpiry", p.hard_expiry);
    if (o == NULL) {
        return NULL;
    }
    if ((p.max_password_age > 0 &&
         json_object_set_new(o, "MaxPasswordAge", json_integer(p.max_password_age)) != 0) ||
        (p.password_reuse_prevention > 0 &&
         json_object_set_new(o, "PasswordReusePrevention",
                             json_integer(p.password_reuse_prevention)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int kms_audit_trail_init_records(kms_client *c, bool root_login_profile)
{
    const char *account = c->cfg.account_id;
    kms_principal_snapshot *root = calloc(1, sizeof *root);
    int r = -1;
    KMS_ENSURE(root != NULL, KMS_ERR_INTERNAL, "out of memory");
    /* CloudTrail's userIdentity of the root user: its principal id is the account id. */
    snprintf(root->id.type, sizeof root->id.type, "Root");
    snprintf(root->id.account_id, sizeof root->id.account_id, "%s", account);
    snprintf(root->id.principal_id, sizeof root->id.principal_id, "%s", account);
    snprintf(root->id.arn, sizeof root->id.arn, "arn:aws:iam::%s:root", account);
    /* kms_iam_bootstrap's order: the group, its policy, the user, its membership, its access
     * key, the password policy. */
    if (record(c, root, "iam:CreateGroup",
               json_pack("{s:s, s:s}", "GroupName", ADMIN_GROUP, "Path", "/"),
               group_response(c)) != 0) {
        goto out;
    }
    if (record(c, root, "iam:AttachGroupPolicy",
               json_pack("{s:s, s:s}", "GroupName", ADMIN_GROUP, "PolicyArn", ADMIN_POLICY_ARN),
               json_null()) != 0) {
        goto out;
    }
    if (record(c, root, "iam:CreateUser",
               json_pack("{s:s, s:s}", "UserName", ADMIN_USER, "Path", "/"),
               user_response(c)) != 0) {
        goto out;
    }
    if (record(c, root, "iam:AddUserToGroup",
               json_pack("{s:s, s:s}", "GroupName", ADMIN_GROUP, "UserName", ADMIN_USER),
               json_null()) != 0) {
        goto out;
    }
    if (record(c, root, "iam:CreateAccessKey", json_pack("{s:s}", "UserName", ADMIN_USER),
               access_key_response(c)) != 0) {
        goto out;
    }
    if (record(c, root, "iam:UpdateAccountPasswordPolicy", password_policy_request(c),
               json_null()) != 0) {
        goto out;
    }
    /* The root user's own sign-in password (init --root-password): never in a record. */
    if (root_login_profile &&
        record(c, root, "iam:CreateLoginProfile", json_object(), json_null()) != 0) {
        goto out;
    }
    r = 0;
out:
    free(root);
    return r;
}
