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

/* ---- Trust policies of the account's roles ------------------------------------------------- */

static int rewrite_trust(kms_request *rq, const unbind *u, json_t *role)
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
    int r = kms_iam_role_update_trust(rq->client->iam, kms_ops_iam_account_of(rq), name, new_doc);
    free(new_doc);
    return r;
}

static int rewrite_trusts(kms_request *rq, const unbind *u)
{
    int r = -1;
    json_t *page = NULL;
    char marker[256] = "";
    for (;;) {
        json_decref(page);
        page = NULL;
        if ((r = kms_iam_role_list(rq->client->iam, kms_ops_iam_account_of(rq), NULL,
                                   marker[0] != '\0' ? marker : NULL, 1000, &page)) != 0) {
            goto out;
        }
        size_t i;
        json_t *role;
        json_array_foreach(json_object_get(page, "Roles"), i, role)
        {
            if ((r = rewrite_trust(rq, u, role)) != 0) {
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
    if ((r = kms_keystore_policy_rewrite(&rq->client->keystore, u.arn, rewrite_policy, &u, NULL)) !=
        0) {
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
