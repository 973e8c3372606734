/* IAM groups and their members (CreateGroup ... ListGroupsForUser). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/util.h"

static const char sql_group_members[] =
    "SELECT u.user_id, u.name, u.path, u.creation_date, 0 FROM iam_group_members m "
    "JOIN iam_users u ON u.user_id = m.user_id "
    "WHERE m.group_id = ?1 AND u.name > ?2 AND substr(u.path, 1, length(?3)) = ?3 "
    "ORDER BY u.name LIMIT ?4";
static const char sql_groups_of_user[] =
    "SELECT g.group_id, g.name, g.path, g.creation_date, 0 FROM iam_group_members m "
    "JOIN iam_groups g ON g.group_id = m.group_id "
    "WHERE m.user_id = ?1 AND g.name > ?2 AND substr(g.path, 1, length(?3)) = ?3 "
    "ORDER BY g.name LIMIT ?4";
static const char sql_count_group_users[] =
    "SELECT count(*) FROM iam_group_members WHERE group_id = ?1";
static const char sql_group_insert[] =
    "INSERT INTO iam_groups (group_id, account_id, name, path, creation_date) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";

int kms_iam_group_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                         int64_t now, iam_entity *e)
{
    memset(e, 0, sizeof *e);
    KMS_GUARD(kms_iam_account_check(account_id));
    KMS_GUARD(kms_iam_name_check(name, 128, "groupName"));
    KMS_GUARD(kms_iam_path_or_root(path, "path", &path));
    KMS_GUARD(kms_iam_name_free(q, account_id, KMS_IAM_GROUP, name));
    e->kind = KMS_IAM_GROUP;
    kms_iam_random_id(e->id, sizeof e->id, "AGPA", 17, IAM_B32);
    snprintf(e->account_id, sizeof e->account_id, "%s", account_id);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->creation_date = now;
    kms_iam_entity_arn(e);
    return kms_db_exec_sql(q->c, sql_group_insert,
                           KMS_DB_PARAMS(kms_db_text(e->id), kms_db_text(account_id),
                                         kms_db_text(name), kms_db_text(path), kms_db_int64(now)),
                           IAM_SQL_WHAT);
}

int kms_iam_group_create(kms_iam *iam, const char *account_id, const char *path,
                         const char *group_name, int64_t now, json_t **group)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    json_t *o = NULL;
    int r = -1;
    if (kms_iam_group_insert(&q, account_id, path, group_name, now, &e) != 0 ||
        (group != NULL && kms_iam_entity_json(&q, &e, true, &o) != 0) || kms_iam_commit(&q) != 0) {
        goto out;
    }
    if (group != NULL) {
        *group = o;
        o = NULL;
    }
    r = 0;
out:
    json_decref(o);
    kms_iam_end(&q);
    return r;
}

int kms_iam_group_get(kms_iam *iam, const char *account_id, const char *group_name,
                      const char *marker, size_t max_items, json_t **out)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity e;
    json_t *g = NULL;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_GROUP, group_name, &e) != 0 ||
        kms_iam_entity_json(&q, &e, true, &g) != 0 ||
        kms_iam_entity_page(&q, sql_group_members, account_id, KMS_IAM_USER, e.id, marker, NULL,
                            max_items, "Users", out) != 0) {
        goto out;
    }
    if (kms_iam_json_set(*out, "Group", g) != 0) {
        g = NULL;
        json_decref(*out);
        *out = NULL;
        goto out;
    }
    g = NULL;
    r = 0;
out:
    json_decref(g);
    kms_iam_end(&q);
    return r;
}

int kms_iam_group_list(kms_iam *iam, const char *account_id, const char *path_prefix,
                       const char *marker, size_t max_items, json_t **out)
{
    return kms_iam_entity_list(iam, account_id, KMS_IAM_GROUP, path_prefix, marker, max_items, out);
}

static const char sql_group_delete[] = "DELETE FROM iam_groups WHERE group_id = ?1";

int kms_iam_group_delete(kms_iam *iam, const char *account_id, const char *group_name)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_GROUP, group_name, &e) != 0 ||
        kms_iam_conflict_if(&q, sql_count_group_users, e.id, "remove all users from group") != 0 ||
        kms_iam_entity_unused(&q, e.id) != 0 || kms_iam_entity_forget(&q, &e) != 0 ||
        kms_db_exec_sql(q.c, sql_group_delete, KMS_DB_PARAMS(kms_db_text(e.id)), IAM_SQL_WHAT) !=
            0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

static const char sql_member_add[] =
    "INSERT OR IGNORE INTO iam_group_members (group_id, user_id) VALUES (?1, ?2)";
static const char sql_member_remove[] =
    "DELETE FROM iam_group_members WHERE group_id = ?1 AND user_id = ?2";
static const char sql_count_groups_of_user[] =
    "SELECT count(*) FROM iam_group_members WHERE user_id = ?1";

static int membership(kms_iam *iam, const char *account_id, const char *group_name,
                      const char *user_name, bool add)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity g, u;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_GROUP, group_name, &g) != 0 ||
        kms_iam_entity_find(&q, account_id, KMS_IAM_USER, user_name, &u) != 0 ||
        kms_db_exec_sql(q.c, add ? sql_member_add : sql_member_remove,
                        KMS_DB_PARAMS(kms_db_text(g.id), kms_db_text(u.id)), IAM_SQL_WHAT) != 0) {
        goto out;
    }
    if (!add && kms_db_changes(q.c) == 0) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The user with name %s is not in group %s.", u.name,
                  g.name);
        goto out;
    }
    if (add) {
        /* IAM quota: a user is in at most 10 groups. */
        int64_t n = 0;
        if (kms_db_int(q.c, sql_count_groups_of_user, KMS_DB_PARAMS(kms_db_text(u.id)), &n,
                       IAM_SQL_WHAT) < 0) {
            goto out;
        }
        if (n > 10) {
            kms_raise(KMS_ERR_LIMIT_EXCEEDED, "Cannot exceed quota for GroupsPerUser: 10");
            goto out;
        }
    }
    if (kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_group_add_user(kms_iam *iam, const char *account_id, const char *group_name,
                           const char *user_name)
{
    return membership(iam, account_id, group_name, user_name, true);
}

int kms_iam_group_remove_user(kms_iam *iam, const char *account_id, const char *group_name,
                              const char *user_name)
{
    return membership(iam, account_id, group_name, user_name, false);
}

int kms_iam_groups_for_user(kms_iam *iam, const char *account_id, const char *user_name,
                            const char *marker, size_t max_items, json_t **out)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity u;
    int r = kms_iam_entity_find(&q, account_id, KMS_IAM_USER, user_name, &u);
    if (r == 0) {
        r = kms_iam_entity_page(&q, sql_groups_of_user, account_id, KMS_IAM_GROUP, u.id, marker,
                                NULL, max_items, "Groups", out);
    }
    kms_iam_end(&q);
    return r;
}
