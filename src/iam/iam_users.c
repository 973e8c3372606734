/* IAM users (CreateUser, GetUser, ListUsers, UpdateUser, DeleteUser). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/util.h"

static const char sql_user_insert[] =
    "INSERT INTO iam_users (user_id, account_id, name, path, is_root, creation_date) "
    "VALUES (?1, ?2, ?3, ?4, 0, ?5)";

int kms_iam_user_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                        const char *boundary_arn, const kms_iam_tag *tags, size_t tag_count,
                        int64_t now, iam_entity *out)
{
    memset(out, 0, sizeof *out);
    KMS_GUARD(kms_iam_account_check(account_id));
    KMS_GUARD(kms_iam_name_check(name, 64, "userName"));
    KMS_GUARD(kms_iam_path_or_root(path, "path", &path));
    KMS_GUARD(kms_iam_name_free(q, account_id, KMS_IAM_USER, name));
    KMS_GUARD(kms_iam_account_ensure(q, account_id, now));
    out->kind = KMS_IAM_USER;
    kms_iam_random_id(out->id, sizeof out->id, "AIDA", 17, IAM_B32);
    snprintf(out->account_id, sizeof out->account_id, "%s", account_id);
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->path, sizeof out->path, "%s", path);
    out->creation_date = now;
    kms_iam_entity_arn(out);
    KMS_GUARD(
        kms_db_exec_sql(q->c, sql_user_insert,
                        KMS_DB_PARAMS(kms_db_text(out->id), kms_db_text(account_id),
                                      kms_db_text(name), kms_db_text(path), kms_db_int64(now)),
                        IAM_SQL_WHAT));
    if (boundary_arn != NULL) {
        char pid[32];
        KMS_GUARD(kms_iam_policy_id_by_arn(q, account_id, boundary_arn, pid));
        KMS_GUARD(kms_iam_boundary_set_tx(q, out, pid));
    }
    return kms_iam_tags_insert(q, out->id, tags, tag_count);
}

int kms_iam_user_create(kms_iam *iam, const char *account_id, const char *path,
                        const char *user_name, const char *boundary_arn, const kms_iam_tag *tags,
                        size_t tag_count, int64_t now, json_t **user)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_user_insert(&q, account_id, path, user_name, boundary_arn, tags, tag_count, now,
                            &e) != 0 ||
        (user != NULL && kms_iam_entity_json(&q, &e, true, user) != 0)) {
        goto out;
    }
    if (kms_iam_commit(&q) != 0) {
        if (user != NULL) {
            json_decref(*user);
            *user = NULL;
        }
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_user_get(kms_iam *iam, const char *account_id, const char *user_name, json_t **user)
{
    return kms_iam_entity_get(iam, account_id, KMS_IAM_USER, user_name, user);
}

int kms_iam_user_list(kms_iam *iam, const char *account_id, const char *path_prefix,
                      const char *marker, size_t max_items, json_t **out)
{
    return kms_iam_entity_list(iam, account_id, KMS_IAM_USER, path_prefix, marker, max_items, out);
}

static const char sql_user_rename[] =
    "UPDATE iam_users SET name = ?2, path = ?3 WHERE user_id = ?1";

int kms_iam_user_update(kms_iam *iam, const char *account_id, const char *user_name,
                        const char *new_path, const char *new_name)
{
    if (new_path != NULL) {
        KMS_GUARD(kms_iam_path_check(new_path, "newPath"));
    }
    if (new_name != NULL) {
        KMS_GUARD(kms_iam_name_check(new_name, 64, "newUserName"));
    }
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_USER, user_name, &e) != 0) {
        goto out;
    }
    if (new_name != NULL && strcasecmp(new_name, e.name) != 0 &&
        kms_iam_name_free(&q, account_id, KMS_IAM_USER, new_name) != 0) {
        goto out;
    }
    if (kms_db_exec_sql(q.c, sql_user_rename,
                        KMS_DB_PARAMS(kms_db_text(e.id), kms_db_text(new_name ? new_name : e.name),
                                      kms_db_text(new_path ? new_path : e.path)),
                        IAM_SQL_WHAT) != 0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

static const char sql_count_keys[] = "SELECT count(*) FROM iam_access_keys WHERE user_id = ?1";
static const char sql_count_login[] = "SELECT count(*) FROM iam_login_profiles WHERE user_id = ?1";
static const char sql_count_mfa[] = "SELECT count(*) FROM iam_mfa_devices WHERE user_id = ?1";
static const char sql_count_user_groups[] =
    "SELECT count(*) FROM iam_group_members WHERE user_id = ?1";
static const char sql_user_delete[] = "DELETE FROM iam_users WHERE user_id = ?1";
static const char sql_history_delete[] = "DELETE FROM iam_password_history WHERE user_id = ?1";

int kms_iam_user_delete(kms_iam *iam, const char *account_id, const char *user_name)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_USER, user_name, &e) != 0 ||
        kms_iam_conflict_if(&q, sql_count_keys, e.id, "delete access keys") != 0 ||
        kms_iam_conflict_if(&q, sql_count_login, e.id, "delete login profile") != 0 ||
        kms_iam_conflict_if(&q, sql_count_mfa, e.id, "remove all MFA devices") != 0 ||
        kms_iam_entity_unused(&q, e.id) != 0 ||
        kms_iam_conflict_if(&q, sql_count_user_groups, e.id, "remove user from all groups") != 0) {
        goto out;
    }
    if (kms_iam_entity_forget(&q, &e) != 0 ||
        kms_db_exec_sql(q.c, sql_history_delete, KMS_DB_PARAMS(kms_db_text(e.id)), IAM_SQL_WHAT) !=
            0 ||
        kms_db_exec_sql(q.c, sql_user_delete, KMS_DB_PARAMS(kms_db_text(e.id)), IAM_SQL_WHAT) !=
            0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}
