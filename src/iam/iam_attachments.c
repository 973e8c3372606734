/* Managed policies attached to users, groups and roles, and permissions boundaries
 * (Attach/Detach/ListAttached{User,Group,Role}Policies, Put/Delete{User,Role}PermissionsBoundary).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/util.h"

#define ATTACHED_MAX 10

static const char sql_attach[] =
    "INSERT OR IGNORE INTO iam_attachments (entity_id, policy_id) VALUES (?1, ?2)";
static const char sql_detach[] =
    "DELETE FROM iam_attachments WHERE entity_id = ?1 AND policy_id = ?2";
static const char sql_attached_list[] =
    "SELECT p.name, p.arn FROM iam_attachments a JOIN iam_policies p ON p.policy_id = a.policy_id "
    "WHERE a.entity_id = ?1 AND p.arn > ?2 AND substr(p.path, 1, length(?3)) = ?3 "
    "ORDER BY p.arn LIMIT ?4";
static const char sql_count_attached[] =
    "SELECT count(*) FROM iam_attachments WHERE entity_id = ?1";
static const char sql_boundary_user[] = "UPDATE iam_users SET boundary_id = ?2 WHERE user_id = ?1";
static const char sql_boundary_role[] = "UPDATE iam_roles SET boundary_id = ?2 WHERE role_id = ?1";

int kms_iam_attached_count(iam_q *q, const char *entity_id, int64_t *n)
{
    int s = kms_db_int(q->c, sql_count_attached, KMS_DB_PARAMS(kms_db_text(entity_id)), n,
                       IAM_SQL_WHAT);
    return s < 0 ? -1 : 0;
}

int kms_iam_boundary_set_tx(iam_q *q, const iam_entity *e, const char *policy_id)
{
    const char *sql = e->kind == KMS_IAM_USER ? sql_boundary_user : sql_boundary_role;
    return kms_db_exec_sql(q->c, sql, KMS_DB_PARAMS(kms_db_text(e->id), kms_db_text(policy_id)),
                           IAM_SQL_WHAT);
}

int kms_iam_attach_tx(iam_q *q, const char *entity_id, const char *policy_id)
{
    KMS_GUARD(kms_db_exec_sql(q->c, sql_attach,
                              KMS_DB_PARAMS(kms_db_text(entity_id), kms_db_text(policy_id)),
                              IAM_SQL_WHAT));
    int64_t n = 0;
    KMS_GUARD(kms_iam_attached_count(q, entity_id, &n));
    KMS_ENSURE(n <= ATTACHED_MAX, KMS_ERR_LIMIT_EXCEEDED,
               "Cannot exceed quota for PoliciesPerEntity: %d", ATTACHED_MAX);
    return 0;
}

int kms_iam_policy_attach(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                          const char *policy_arn)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    char id[32];
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id) != 0 ||
        kms_iam_attach_tx(&q, e.id, id) != 0 || kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_policy_detach(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                          const char *policy_arn)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    char id[32];
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id) != 0 ||
        kms_db_exec_sql(q.c, sql_detach, KMS_DB_PARAMS(kms_db_text(e.id), kms_db_text(id)),
                        IAM_SQL_WHAT) != 0) {
        goto out;
    }
    if (kms_db_changes(q.c) == 0) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY, "Policy %s was not found.", policy_arn);
        goto out;
    }
    if (kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_policy_list_attached(kms_iam *iam, const char *account_id, kms_iam_kind kind,
                                 const char *name, const char *path_prefix, const char *marker,
                                 size_t max_items, json_t **out)
{
    size_t max = kms_iam_max_items(max_items);
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity e;
    json_t *items = json_array();
    kms_db_stmt *st = NULL;
    char last[700] = "";
    bool truncated = false;
    int r = -1;
    if (items == NULL || kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        kms_db_open(q.c, sql_attached_list,
                    KMS_DB_PARAMS(kms_db_text(e.id), kms_db_text(marker ? marker : ""),
                                  kms_db_text(path_prefix ? path_prefix : "/"),
                                  kms_db_int64((int64_t)max + 1)),
                    &st) != 0) {
        goto out;
    }
    size_t n = 0;
    int s;
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        if (n == max) {
            truncated = true;
            break;
        }
        json_t *o = json_pack("{s:s, s:s}", "PolicyName", kms_db_column_text(st, 0), "PolicyArn",
                              kms_db_column_text(st, 1));
        if (o == NULL || json_array_append_new(items, o) != 0) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        snprintf(last, sizeof last, "%s", kms_db_column_text(st, 1));
        n++;
    }
    if (s < 0) {
        goto out;
    }
    r = kms_iam_list_response(items, "AttachedPolicies", truncated, last, out);
    items = NULL;
out:
    json_decref(items);
    kms_iam_end(&q);
    return r;
}

static int boundary_set(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                        const char *policy_arn)
{
    KMS_ENSURE(kind == KMS_IAM_USER || kind == KMS_IAM_ROLE, KMS_ERR_VALIDATION,
               "permissions boundaries apply to users and roles");
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    char id[32] = "";
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        (policy_arn != NULL && kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id) != 0) ||
        kms_iam_boundary_set_tx(&q, &e, policy_arn ? id : NULL) != 0 || kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_boundary_put(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                         const char *policy_arn)
{
    KMS_ENSURE(policy_arn != NULL, KMS_ERR_VALIDATION, "PermissionsBoundary must not be empty");
    return boundary_set(iam, account_id, kind, name, policy_arn);
}

int kms_iam_boundary_delete(kms_iam *iam, const char *account_id, kms_iam_kind kind,
                            const char *name)
{
    return boundary_set(iam, account_id, kind, name, NULL);
}
