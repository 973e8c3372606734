/* IAM roles (CreateRole ... DeleteRole) and their lookup by ARN for AssumeRole. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/util.h"

#define ROLE_SESSION_DEFAULT 3600
#define ROLE_SESSION_MAX 43200

static const char sql_role_insert[] =
    "INSERT INTO iam_roles (role_id, account_id, name, path, trust_policy, description, "
    "max_session_duration, creation_date) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

static int session_duration_check(int64_t *d)
{
    if (*d == 0) {
        *d = ROLE_SESSION_DEFAULT;
    }
    KMS_ENSURE(*d >= ROLE_SESSION_DEFAULT && *d <= ROLE_SESSION_MAX, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%" PRId64
               "' at 'maxSessionDuration' failed to satisfy constraint: Member must have value "
               "between 3600 and 43200",
               *d);
    return 0;
}

int kms_iam_role_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                        const char *trust_policy, const char *description,
                        int64_t max_session_duration, const char *boundary_arn,
                        const kms_iam_tag *tags, size_t tag_count, int64_t now, iam_entity *e)
{
    memset(e, 0, sizeof *e);
    KMS_GUARD(kms_iam_account_check(account_id));
    KMS_GUARD(kms_iam_name_check(name, 64, "roleName"));
    KMS_GUARD(kms_iam_path_or_root(path, "path", &path));
    KMS_ENSURE(trust_policy != NULL && trust_policy[0] != '\0', KMS_ERR_VALIDATION,
               "AssumeRolePolicyDocument must not be empty");
    KMS_ENSURE(description == NULL || strlen(description) <= 1000, KMS_ERR_VALIDATION,
               "Description is longer than 1000 characters");
    KMS_GUARD(session_duration_check(&max_session_duration));
    KMS_GUARD(kms_iam_name_free(q, account_id, KMS_IAM_ROLE, name));
    KMS_GUARD(kms_iam_account_ensure(q, account_id, now));
    e->kind = KMS_IAM_ROLE;
    kms_iam_random_id(e->id, sizeof e->id, "AROA", 17, IAM_B32);
    snprintf(e->account_id, sizeof e->account_id, "%s", account_id);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->creation_date = now;
    kms_iam_entity_arn(e);
    KMS_GUARD(kms_db_exec_sql(q->c, sql_role_insert,
                              KMS_DB_PARAMS(kms_db_text(e->id), kms_db_text(account_id),
                                            kms_db_text(name), kms_db_text(path),
                                            kms_db_text(trust_policy),
                                            kms_db_text(description ? description : ""),
                                            kms_db_int64(max_session_duration), kms_db_int64(now)),
                              IAM_SQL_WHAT));
    if (boundary_arn != NULL) {
        char pid[32];
        KMS_GUARD(kms_iam_policy_id_by_arn(q, account_id, boundary_arn, pid));
        KMS_GUARD(kms_iam_boundary_set_tx(q, e, pid));
    }
    return kms_iam_tags_insert(q, e->id, tags, tag_count);
}

int kms_iam_role_create(kms_iam *iam, const char *account_id, const char *path,
                        const char *role_name, const char *trust_policy, const char *description,
                        int64_t max_session_duration, const char *boundary_arn,
                        const kms_iam_tag *tags, size_t tag_count, int64_t now, json_t **role)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    json_t *o = NULL;
    int r = -1;
    if (kms_iam_role_insert(&q, account_id, path, role_name, trust_policy, description,
                            max_session_duration, boundary_arn, tags, tag_count, now, &e) != 0 ||
        (role != NULL && kms_iam_entity_json(&q, &e, true, &o) != 0) || kms_iam_commit(&q) != 0) {
        goto out;
    }
    if (role != NULL) {
        *role = o;
        o = NULL;
    }
    r = 0;
out:
    json_decref(o);
    kms_iam_end(&q);
    return r;
}

int kms_iam_role_get(kms_iam *iam, const char *account_id, const char *role_name, json_t **role)
{
    return kms_iam_entity_get(iam, account_id, KMS_IAM_ROLE, role_name, role);
}

int kms_iam_role_list(kms_iam *iam, const char *account_id, const char *path_prefix,
                      const char *marker, size_t max_items, json_t **out)
{
    return kms_iam_entity_list(iam, account_id, KMS_IAM_ROLE, path_prefix, marker, max_items, out);
}

static const char sql_role_set_description[] =
    "UPDATE iam_roles SET description = ?2 WHERE role_id = ?1";
static const char sql_role_set_duration[] =
    "UPDATE iam_roles SET max_session_duration = ?2 WHERE role_id = ?1";
static const char sql_role_set_trust[] =
    "UPDATE iam_roles SET trust_policy = ?2 WHERE role_id = ?1";

int kms_iam_role_update(kms_iam *iam, const char *account_id, const char *role_name,
                        const char *description, int64_t max_session_duration)
{
    KMS_ENSURE(description == NULL || strlen(description) <= 1000, KMS_ERR_VALIDATION,
               "Description is longer than 1000 characters");
    if (max_session_duration != 0) {
        KMS_GUARD(session_duration_check(&max_session_duration));
    }
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_ROLE, role_name, &e) != 0 ||
        (description != NULL &&
         kms_db_exec_sql(q.c, sql_role_set_description,
                         KMS_DB_PARAMS(kms_db_text(e.id), kms_db_text(description)),
                         IAM_SQL_WHAT) != 0) ||
        (max_session_duration != 0 &&
         kms_db_exec_sql(q.c, sql_role_set_duration,
                         KMS_DB_PARAMS(kms_db_text(e.id), kms_db_int64(max_session_duration)),
                         IAM_SQL_WHAT) != 0) ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_role_update_trust(kms_iam *iam, const char *account_id, const char *role_name,
                              const char *trust_policy)
{
    KMS_ENSURE(trust_policy != NULL && trust_policy[0] != '\0', KMS_ERR_VALIDATION,
               "PolicyDocument must not be empty");
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_ROLE, role_name, &e) != 0 ||
        kms_db_exec_sql(q.c, sql_role_set_trust,
                        KMS_DB_PARAMS(kms_db_text(e.id), kms_db_text(trust_policy)),
                        IAM_SQL_WHAT) != 0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

static const char sql_role_delete[] = "DELETE FROM iam_roles WHERE role_id = ?1";

int kms_iam_role_delete(kms_iam *iam, const char *account_id, const char *role_name)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_ROLE, role_name, &e) != 0 ||
        kms_iam_entity_unused(&q, e.id) != 0 || kms_iam_entity_forget(&q, &e) != 0 ||
        kms_db_exec_sql(q.c, sql_role_delete, KMS_DB_PARAMS(kms_db_text(e.id)), IAM_SQL_WHAT) !=
            0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

static const char sql_role_by_arn_parts[] =
    "SELECT role_id, name, path, trust_policy, max_session_duration FROM iam_roles "
    "WHERE account_id = ?1 AND name = ?2";

int kms_iam_role_lookup(kms_iam *iam, const char *role_arn, kms_iam_role_info *out)
{
    memset(out, 0, sizeof *out);
    static const char prefix[] = "arn:aws:iam::";
    KMS_ENSURE(role_arn != NULL && strncmp(role_arn, prefix, sizeof prefix - 1) == 0 &&
                   strlen(role_arn) < sizeof out->arn,
               KMS_ERR_VALIDATION, "invalid role ARN %s", role_arn ? role_arn : "(null)");
    const char *acct = role_arn + sizeof prefix - 1;
    const char *colon = strchr(acct, ':');
    KMS_ENSURE(colon != NULL && colon - acct == 12 && strncmp(colon + 1, "role/", 5) == 0,
               KMS_ERR_VALIDATION, "invalid role ARN %s", role_arn);
    memcpy(out->account_id, acct, 12);
    out->account_id[12] = '\0';
    KMS_GUARD(kms_iam_account_check(out->account_id));
    const char *name = strrchr(colon, '/') + 1;
    KMS_GUARD(kms_iam_name_check(name, 64, "roleArn"));

    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    int r = -1;
    kms_db_stmt *st = NULL;
    int found = kms_db_first(q.c, sql_role_by_arn_parts,
                             KMS_DB_PARAMS(kms_db_text(out->account_id), kms_db_text(name)), &st,
                             IAM_SQL_WHAT);
    if (found <= 0) {
        if (found == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The role with name %s cannot be found.", name);
        }
        goto out;
    }
    iam_entity e = {.kind = KMS_IAM_ROLE};
    snprintf(e.account_id, sizeof e.account_id, "%s", out->account_id);
    if (kms_db_column_copy(st, 0, out->role_id, sizeof out->role_id, IAM_SQL_SUBJECT) != 0 ||
        kms_db_column_copy(st, 1, out->role_name, sizeof out->role_name, IAM_SQL_SUBJECT) != 0 ||
        kms_db_column_copy(st, 1, e.name, sizeof e.name, IAM_SQL_SUBJECT) != 0 ||
        kms_db_column_copy(st, 2, e.path, sizeof e.path, IAM_SQL_SUBJECT) != 0 ||
        kms_db_column_dup(st, 3, &out->trust_policy) != 0) {
        goto out;
    }
    out->max_session_duration = kms_db_column_int64(st, 4);
    kms_iam_entity_arn(&e);
    kms_iam_copy(out->arn, sizeof out->arn, e.arn);
    r = 0;
out:
    kms_iam_end(&q);
    if (r != 0) {
        kms_iam_role_info_clean_up(out);
    }
    return r;
}

void kms_iam_role_info_clean_up(kms_iam_role_info *info)
{
    if (info != NULL) {
        free(info->trust_policy);
        memset(info, 0, sizeof *info);
    }
}
