/* Deleted principals in key policies, grants and trust policies (ops_unbind.h). AWS binds a
 * principal named in a resource policy or grant to its unique id when it is saved; once the
 * principal is deleted the policy shows the id (IAM User Guide, "AWS JSON policy elements:
 * Principal": "If the principal ... is deleted, ... the ARN is replaced with the principal ID"),
 * and a principal re-created under the same name does not match it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/client.h"
#include "service/ops_iam.h"
#include "service/ops_unbind.h"
#include "util/util.h"

typedef struct unbind {
    const char *arn;
    const char *unique_id;
} unbind;

static int rewrite_policy(void *arg, const char *doc, char **new_doc)
{
    const unbind *u = arg;
    return kms_policy_principal_replace(doc, u->arn, u->unique_id, new_doc);
}

/* ---- Trust policies of every account's roles --------------------------------------------- */

static int rewrite_trust(kms_request *rq, const unbind *u, const char *account, json_t *role)
{
    const char *name = json_string_value(json_object_get(role, "RoleName"));
    const char *doc = json_string_value(json_object_get(role, "AssumeRolePolicyDocument"));
    char *new_doc = NULL;
    if (name == NULL || doc == NULL) {
        return 0;
    }
    KMS_GUARD(kms_policy_principal_replace(doc, u->arn, u->unique_id, &new_doc));
    if (new_doc == NULL) {
        return 0;
    }
    int r = kms_iam_role_update_trust(rq->client->iam, account, name, new_doc);
    free(new_doc);
    return r;
}

/* The roles of one account, page by page. */
static int rewrite_account_trusts(kms_request *rq, const unbind *u, const char *account)
{
    int r = -1;
    json_t *page = NULL;
    char marker[256] = "";
    for (;;) {
        json_decref(page);
        page = NULL;
        if ((r = kms_iam_role_list(rq->client->iam, account, NULL,
                                   marker[0] != '\0' ? marker : NULL, 1000, &page)) != 0) {
            goto out;
        }
        size_t i;
        json_t *role;
        json_array_foreach(json_object_get(page, "Roles"), i, role)
        {
            if ((r = rewrite_trust(rq, u, account, role)) != 0) {
                goto out;
            }
        }
        const char *next = json_string_value(json_object_get(page, "Marker"));
        if (!json_is_true(json_object_get(page, "IsTruncated")) || next == NULL) {
            break;
        }
        snprintf(marker, sizeof marker, "%s", next);
    }
    r = 0;
out:
    json_decref(page);
    return r;
}

/* Every account's roles: a role of another account (an organization's member) may trust the
 * deleted principal too. */
static int rewrite_trusts(kms_request *rq, const unbind *u)
{
    json_t *accounts = NULL;
    KMS_GUARD(kms_iam_account_ids(rq->client->iam, &accounts));
    int r = 0;
    size_t i;
    json_t *account;
    json_array_foreach(accounts, i, account)
    {
        if ((r = rewrite_account_trusts(rq, u, json_string_value(account))) != 0) {
            break;
        }
    }
    json_decref(accounts);
    return r;
}

/* ---- Principals a key policy names must exist --------------------------------------------- */

/* 1 when arn is a user or role ARN of an account of this home and names nobody there; 0 when
 * the principal exists, when arn is something else, or when its account is not this home's (it
 * cannot be checked, so it is not refused); -1 on error. */
static int principal_missing(kms_request *rq, const char *arn)
{
    char account[13];
    kms_identity root;
    memset(&root, 0, sizeof root);
    if (kms_policy_arn_account(arn, account) != 0) {
        kms_error_clear();
        return 0;
    }
    const char *res = strrchr(arn, ':') + 1;
    bool user = strncmp(res, "user/", 5) == 0, role = strncmp(res, "role/", 5) == 0;
    if ((!user && !role) || strncmp(arn, "arn:aws:iam::", 13) != 0) {
        return 0;
    }
    int r = kms_iam_root_identity(rq->client->iam, account, &root);
    kms_iam_identity_clean_up(&root);
    if (r != 0) {
        if (kms_last_error() != KMS_ERR_NO_SUCH_ENTITY) {
            return -1;
        }
        kms_error_clear();
        return 0;
    }
    bool same = false;
    if (user) {
        json_t *obj = NULL;
        r = kms_iam_user_get(rq->client->iam, account, strrchr(res, '/') + 1, &obj);
        const char *got =
            json_string_value(json_object_get(kms_ops_iam_unwrap(obj, "User"), "Arn"));
        same = r == 0 && got != NULL && strcmp(got, arn) == 0;
        json_decref(obj);
    } else {
        kms_iam_role_info info;
        memset(&info, 0, sizeof info);
        r = kms_iam_role_lookup(rq->client->iam, arn, &info);
        kms_iam_role_info_clean_up(&info);
        same = r == 0;
    }
    if (r != 0 && kms_last_error() != KMS_ERR_NO_SUCH_ENTITY) {
        return -1;
    }
    kms_error_clear();
    return same ? 0 : 1;
}

static int check_aws_value(kms_request *rq, json_t *aws)
{
    size_t i;
    json_t *v;
    if (json_is_string(aws)) {
        int m = principal_missing(rq, json_string_value(aws));
        KMS_ENSURE(m <= 0, KMS_ERR_MALFORMED_POLICY,
                   "Policy contains a statement with one or more invalid principals: %s does "
                   "not exist",
                   json_string_value(aws));
        return m;
    }
    json_array_foreach(aws, i, v)
    {
        if (json_is_string(v)) {
            KMS_GUARD(check_aws_value(rq, v));
        }
    }
    return 0;
}

int kms_ops_unbind_check_principals(kms_request *rq, const char *doc)
{
    int r = -1;
    json_t *root = json_loads(doc, 0, NULL);
    json_t *stmts = json_object_get(root, "Statement");
    json_t *one = json_is_object(stmts) ? json_array() : NULL;
    if (one != NULL && json_array_append(one, stmts) != 0) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    size_t i;
    json_t *st;
    json_array_foreach(one != NULL ? one : stmts, i, st)
    {
        static const char *const members[] = {"Principal", "NotPrincipal"};
        for (size_t m = 0; m < 2; m++) {
            json_t *aws = json_object_get(json_object_get(st, members[m]), "AWS");
            if (aws != NULL && (r = check_aws_value(rq, aws)) != 0) {
                goto out;
            }
        }
    }
    r = 0;
out:
    json_decref(one);
    json_decref(root);
    return r;
}

/* ---- The entry point ----------------------------------------------------------------------- */

int kms_ops_unbind_principal(kms_request *rq, kms_iam_kind kind, const char *name)
{
    int r = -1;
    json_t *obj = NULL;
    const char *member = kind == KMS_IAM_ROLE ? "Role" : "User";
    if (kind == KMS_IAM_ROLE) {
        r = kms_iam_role_get(rq->client->iam, kms_ops_iam_account_of(rq), name, &obj);
    } else {
        r = kms_iam_user_get(rq->client->iam, kms_ops_iam_account_of(rq), name, &obj);
    }
    if (r != 0) {
        json_decref(obj);
        if (kms_last_error() != KMS_ERR_NO_SUCH_ENTITY) {
            return -1; /* fail closed: nothing is deleted */
        }
        kms_error_clear();
        return 0; /* no such entity: the deletion says so */
    }
    json_t *entity = kms_ops_iam_unwrap(obj, member);
    unbind u = {
        json_string_value(json_object_get(entity, "Arn")),
        json_string_value(json_object_get(entity, kind == KMS_IAM_ROLE ? "RoleId" : "UserId"))};
    if (u.arn == NULL || u.unique_id == NULL || !kms_policy_is_unique_id(u.unique_id)) {
        r = kms_raise(KMS_ERR_INTERNAL, "%s %s has no ARN or unique id to put in its place", member,
                      name);
        goto out;
    }
    if ((r = kms_keystore_policy_rewrite(&rq->client->keystore, rewrite_policy, &u, NULL)) != 0) {
        goto out;
    }
    if ((r = kms_store_grant_principal_replace(rq->client->store, u.arn, u.unique_id, NULL)) != 0) {
        goto out;
    }
    if ((r = rewrite_trusts(rq, &u)) != 0) {
        goto out;
    }
    r = 0;
out:
    json_decref(obj);
    return r;
}
