/* IAM users, groups, roles, their tags, inline policies, managed policies and attachments
 * (the IAM API's CreateUser ... ListAttachedRolePolicies). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/util.h"

#define ROLE_SESSION_DEFAULT 3600
#define ROLE_SESSION_MAX 43200
#define ATTACHED_MAX 10
#define POLICY_VERSIONS_MAX 5

/* ---- Rendering ---------------------------------------------------------------------------- */

static const char sql_user_detail[] =
    "SELECT p.arn, u.password_last_used FROM iam_users u "
    "LEFT JOIN iam_policies p ON p.policy_id = u.boundary_id WHERE u.user_id = ?1";
static const char sql_role_detail[] =
    "SELECT p.arn, r.trust_policy, r.description, r.max_session_duration FROM iam_roles r "
    "LEFT JOIN iam_policies p ON p.policy_id = r.boundary_id WHERE r.role_id = ?1";

static int boundary_json(json_t *o, const char *arn)
{
    if (arn[0] == '\0') {
        return 0;
    }
    return kms_iam_json_set(o, "PermissionsBoundary",
                            json_pack("{s:s, s:s}", "PermissionsBoundaryType", "Policy",
                                      "PermissionsBoundaryArn", arn));
}

/* The "User" / "Group" / "Role" object. full: the members GetUser/GetRole add to the list
 * form (boundary, tags, PasswordLastUsed). */
static int entity_json(iam_q *q, const iam_entity *e, bool full, json_t **out)
{
    char key_name[16], key_id[16];
    snprintf(key_name, sizeof key_name, "%sName", kms_iam_kind_title(e->kind));
    snprintf(key_id, sizeof key_id, "%sId", kms_iam_kind_title(e->kind));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "Path", e->path, key_name, e->name, key_id,
                          e->id, "Arn", e->arn, "CreateDate", (json_int_t)e->creation_date);
    KMS_ENSURE(o != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (e->kind == KMS_IAM_USER && full) {
        int found = q_one(q, sql_user_detail, &st, "s", e->id);
        if (found != 1) {
            goto out;
        }
        int64_t last = sqlite3_column_int64(st, 1);
        if (boundary_json(o, col_s(st, 0)) != 0 ||
            (last > 0 && kms_iam_json_set(o, "PasswordLastUsed", json_integer(last)) != 0)) {
            goto out;
        }
    } else if (e->kind == KMS_IAM_ROLE) {
        int found = q_one(q, sql_role_detail, &st, "s", e->id);
        if (found != 1) {
            goto out;
        }
        if (kms_iam_json_set(o, "AssumeRolePolicyDocument", json_string(col_s(st, 1))) != 0 ||
            kms_iam_json_set(o, "MaxSessionDuration", json_integer(sqlite3_column_int64(st, 3))) !=
                0 ||
            (col_s(st, 2)[0] != '\0' &&
             kms_iam_json_set(o, "Description", json_string(col_s(st, 2))) != 0) ||
            (full && boundary_json(o, col_s(st, 0)) != 0)) {
            goto out;
        }
    }
    if (full && e->kind != KMS_IAM_GROUP) {
        json_t *tags = kms_iam_tags_json(q, e->id);
        if (tags == NULL) {
            goto out;
        }
        if (json_array_size(tags) == 0) {
            json_decref(tags);
        } else if (kms_iam_json_set(o, "Tags", tags) != 0) {
            goto out;
        }
    }
    *out = o;
    o = NULL;
    r = 0;
out:
    if (st != NULL) {
        sqlite3_reset(st);
    }
    json_decref(o);
    return r;
}

/* Pages through rows (id, name, path, creation_date, is_root) of a statement bound as
 * ?1 scope, ?2 marker, ?3 path prefix, ?4 limit, into {"<member>": [...], IsTruncated, Marker?}.
 * The marker is the last name returned. */
static int entity_page(iam_q *q, const char *sql, const char *account_id, kms_iam_kind kind,
                       const char *scope, const char *marker, const char *path_prefix,
                       size_t max_items, const char *member, json_t **out)
{
    size_t max = kms_iam_max_items(max_items);
    json_t *items = json_array();
    KMS_ENSURE(items != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = -1;
    sqlite3_stmt *st = NULL;
    char last[130] = "";
    bool truncated = false;
    if (q_stmt(q, sql, &st, "sssi", scope, marker ? marker : "", path_prefix ? path_prefix : "/",
               (int64_t)max + 1) != 0) {
        goto out;
    }
    /* Rows first, rendering after: rendering runs other statements on this connection. */
    iam_entity *rows = NULL;
    size_t n = 0;
    int s;
    while ((s = q_step(q, st)) == 1) {
        if (n == max) {
            truncated = true;
            break;
        }
        iam_entity *p = realloc(rows, (n + 1) * sizeof *rows);
        if (p == NULL) {
            s = kms_raise(KMS_ERR_INTERNAL, "out of memory");
            break;
        }
        rows = p;
        memset(&rows[n], 0, sizeof rows[n]);
        rows[n].kind = kind;
        snprintf(rows[n].account_id, sizeof rows[n].account_id, "%s", account_id);
        if (col_copy(st, 0, rows[n].id, sizeof rows[n].id) != 0 ||
            col_copy(st, 1, rows[n].name, sizeof rows[n].name) != 0 ||
            col_copy(st, 2, rows[n].path, sizeof rows[n].path) != 0) {
            s = -1;
            break;
        }
        rows[n].creation_date = sqlite3_column_int64(st, 3);
        kms_iam_entity_arn(&rows[n]);
        n++;
    }
    sqlite3_reset(st);
    for (size_t i = 0; s >= 0 && i < n; i++) {
        json_t *o = NULL;
        if (entity_json(q, &rows[i], false, &o) != 0 || json_array_append_new(items, o) != 0) {
            s = -1;
        }
        snprintf(last, sizeof last, "%s", rows[i].name);
    }
    free(rows);
    if (s < 0) {
        goto out;
    }
    r = kms_iam_list_response(items, member, truncated, last, out);
    items = NULL;
out:
    json_decref(items);
    return r;
}

static int path_or_root(const char *path, const char *what, const char **out)
{
    *out = path ? path : "/";
    return kms_iam_path_check(*out, what);
}

static const char sql_boundary_user[] = "UPDATE iam_users SET boundary_id = ?2 WHERE user_id = ?1";
static const char sql_boundary_role[] = "UPDATE iam_roles SET boundary_id = ?2 WHERE role_id = ?1";

/* ---- Users -------------------------------------------------------------------------------- */

static const char sql_user_insert[] =
    "INSERT INTO iam_users (user_id, account_id, name, path, is_root, creation_date) "
    "VALUES (?1, ?2, ?3, ?4, 0, ?5)";
static const char sql_account_known[] = "SELECT 1 FROM iam_accounts WHERE account_id = ?1";
static const char sql_account_insert[] =
    "INSERT INTO iam_accounts (account_id, creation_date) VALUES (?1, ?2)";

int kms_iam_account_ensure(iam_q *q, const char *account_id, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int found = q_one(q, sql_account_known, &st, "s", account_id);
    KMS_GUARD(found < 0 ? -1 : 0);
    if (found == 1) {
        sqlite3_reset(st);
        return 0;
    }
    return q_exec(q, sql_account_insert, "si", account_id, now);
}

/* EntityAlreadyExists unless `name` is free for kind in the account. */
static int name_free(iam_q *q, const char *account_id, kms_iam_kind kind, const char *name)
{
    iam_entity e;
    if (kms_iam_entity_find(q, account_id, kind, name, &e) == 0) {
        return kms_raise(KMS_ERR_ENTITY_EXISTS, "%s with name %s already exists.",
                         kms_iam_kind_title(kind), e.name);
    }
    if (kms_last_error() != KMS_ERR_NO_SUCH_ENTITY) {
        return -1;
    }
    kms_error_clear();
    return 0;
}

int kms_iam_user_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                        const char *boundary_arn, const kms_iam_tag *tags, size_t tag_count,
                        int64_t now, iam_entity *out)
{
    memset(out, 0, sizeof *out);
    KMS_GUARD(kms_iam_account_check(account_id));
    KMS_GUARD(kms_iam_name_check(name, 64, "userName"));
    KMS_GUARD(path_or_root(path, "path", &path));
    KMS_GUARD(name_free(q, account_id, KMS_IAM_USER, name));
    KMS_GUARD(kms_iam_account_ensure(q, account_id, now));
    out->kind = KMS_IAM_USER;
    kms_iam_random_id(out->id, sizeof out->id, "AIDA", 17, IAM_B32);
    snprintf(out->account_id, sizeof out->account_id, "%s", account_id);
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->path, sizeof out->path, "%s", path);
    out->creation_date = now;
    kms_iam_entity_arn(out);
    KMS_GUARD(q_exec(q, sql_user_insert, "ssssi", out->id, account_id, name, path, now));
    if (boundary_arn != NULL) {
        char pid[32];
        KMS_GUARD(kms_iam_policy_id_by_arn(q, account_id, boundary_arn, pid));
        KMS_GUARD(q_exec(q, sql_boundary_user, "ss", out->id, pid));
    }
    return kms_iam_tags_insert(q, out->id, tags, tag_count);
}

int kms_iam_user_create(kms_iam *iam, const char *account_id, const char *path,
                        const char *user_name, const char *boundary_arn, const kms_iam_tag *tags,
                        size_t tag_count, int64_t now, json_t **user)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_user_insert(&q, account_id, path, user_name, boundary_arn, tags, tag_count, now,
                            &e) != 0 ||
        (user != NULL && entity_json(&q, &e, true, user) != 0)) {
        goto out;
    }
    if (q_commit(&q) != 0) {
        if (user != NULL) {
            json_decref(*user);
            *user = NULL;
        }
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

/* Runs fn inside one read query. */
static int entity_get(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                      json_t **out)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    iam_entity e;
    int r = kms_iam_entity_find(&q, account_id, kind, name, &e);
    if (r == 0) {
        r = entity_json(&q, &e, true, out);
    }
    q_end(&q);
    return r;
}

int kms_iam_user_get(kms_iam *iam, const char *account_id, const char *user_name, json_t **user)
{
    return entity_get(iam, account_id, KMS_IAM_USER, user_name, user);
}

static const char sql_user_list[] =
    "SELECT user_id, name, path, creation_date, is_root FROM iam_users "
    "WHERE account_id = ?1 AND is_root = 0 AND name > ?2 AND substr(path, 1, length(?3)) = ?3 "
    "ORDER BY name LIMIT ?4";
static const char sql_group_list[] =
    "SELECT group_id, name, path, creation_date, 0 FROM iam_groups "
    "WHERE account_id = ?1 AND name > ?2 AND substr(path, 1, length(?3)) = ?3 "
    "ORDER BY name LIMIT ?4";
static const char sql_role_list[] =
    "SELECT role_id, name, path, creation_date, 0 FROM iam_roles "
    "WHERE account_id = ?1 AND name > ?2 AND substr(path, 1, length(?3)) = ?3 "
    "ORDER BY name LIMIT ?4";
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

static int entity_list(kms_iam *iam, const char *account_id, kms_iam_kind kind,
                       const char *path_prefix, const char *marker, size_t max_items, json_t **out)
{
    const char *sql = kind == KMS_IAM_USER    ? sql_user_list
                      : kind == KMS_IAM_GROUP ? sql_group_list
                                              : sql_role_list;
    const char *member = kind == KMS_IAM_USER    ? "Users"
                         : kind == KMS_IAM_GROUP ? "Groups"
                                                 : "Roles";
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    int r = entity_page(&q, sql, account_id, kind, account_id, marker, path_prefix, max_items,
                        member, out);
    q_end(&q);
    return r;
}

int kms_iam_user_list(kms_iam *iam, const char *account_id, const char *path_prefix,
                      const char *marker, size_t max_items, json_t **out)
{
    return entity_list(iam, account_id, KMS_IAM_USER, path_prefix, marker, max_items, out);
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
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_USER, user_name, &e) != 0) {
        goto out;
    }
    if (new_name != NULL && strcasecmp(new_name, e.name) != 0 &&
        name_free(&q, account_id, KMS_IAM_USER, new_name) != 0) {
        goto out;
    }
    if (q_exec(&q, sql_user_rename, "sss", e.id, new_name ? new_name : e.name,
               new_path ? new_path : e.path) != 0 ||
        q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

static const char sql_count_keys[] = "SELECT count(*) FROM iam_access_keys WHERE user_id = ?1";
static const char sql_count_login[] = "SELECT count(*) FROM iam_login_profiles WHERE user_id = ?1";
static const char sql_count_mfa[] = "SELECT count(*) FROM iam_mfa_devices WHERE user_id = ?1";
static const char sql_count_inline[] =
    "SELECT count(*) FROM iam_inline_policies WHERE entity_id = ?1";
static const char sql_count_attached[] =
    "SELECT count(*) FROM iam_attachments WHERE entity_id = ?1";
static const char sql_count_user_groups[] =
    "SELECT count(*) FROM iam_group_members WHERE user_id = ?1";
static const char sql_count_group_users[] =
    "SELECT count(*) FROM iam_group_members WHERE group_id = ?1";

/* DeleteConflict "Cannot delete entity, must <what> first." when the count query finds rows. */
static int conflict_if(iam_q *q, const char *sql, const char *id, const char *what)
{
    int64_t n = 0;
    KMS_GUARD(q_int(q, sql, &n, "s", id));
    KMS_ENSURE(n == 0, KMS_ERR_DELETE_CONFLICT, "Cannot delete entity, must %s first.", what);
    return 0;
}

static const char sql_user_delete[] = "DELETE FROM iam_users WHERE user_id = ?1";
static const char sql_tags_delete[] = "DELETE FROM iam_tags WHERE entity_id = ?1";
static const char sql_sessions_delete_of[] = "DELETE FROM iam_sessions WHERE principal_id = ?1";
static const char sql_history_delete[] = "DELETE FROM iam_password_history WHERE user_id = ?1";

int kms_iam_user_delete(kms_iam *iam, const char *account_id, const char *user_name)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_USER, user_name, &e) != 0 ||
        conflict_if(&q, sql_count_keys, e.id, "delete access keys") != 0 ||
        conflict_if(&q, sql_count_login, e.id, "delete login profile") != 0 ||
        conflict_if(&q, sql_count_mfa, e.id, "remove all MFA devices") != 0 ||
        conflict_if(&q, sql_count_inline, e.id, "delete policies") != 0 ||
        conflict_if(&q, sql_count_attached, e.id, "detach all policies") != 0 ||
        conflict_if(&q, sql_count_user_groups, e.id, "remove user from all groups") != 0) {
        goto out;
    }
    if (q_exec(&q, sql_tags_delete, "s", e.id) != 0 ||
        q_exec(&q, sql_sessions_delete_of, "s", e.id) != 0 ||
        q_exec(&q, sql_history_delete, "s", e.id) != 0 ||
        q_exec(&q, sql_user_delete, "s", e.id) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

/* ---- Groups ------------------------------------------------------------------------------- */

static const char sql_group_insert[] =
    "INSERT INTO iam_groups (group_id, account_id, name, path, creation_date) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";

int kms_iam_group_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                         int64_t now, iam_entity *e)
{
    memset(e, 0, sizeof *e);
    KMS_GUARD(kms_iam_account_check(account_id));
    KMS_GUARD(kms_iam_name_check(name, 128, "groupName"));
    KMS_GUARD(path_or_root(path, "path", &path));
    KMS_GUARD(name_free(q, account_id, KMS_IAM_GROUP, name));
    e->kind = KMS_IAM_GROUP;
    kms_iam_random_id(e->id, sizeof e->id, "AGPA", 17, IAM_B32);
    snprintf(e->account_id, sizeof e->account_id, "%s", account_id);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->creation_date = now;
    kms_iam_entity_arn(e);
    return q_exec(q, sql_group_insert, "ssssi", e->id, account_id, name, path, now);
}

int kms_iam_group_create(kms_iam *iam, const char *account_id, const char *path,
                         const char *group_name, int64_t now, json_t **group)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    json_t *o = NULL;
    int r = -1;
    if (kms_iam_group_insert(&q, account_id, path, group_name, now, &e) != 0 ||
        (group != NULL && entity_json(&q, &e, true, &o) != 0) || q_commit(&q) != 0) {
        goto out;
    }
    if (group != NULL) {
        *group = o;
        o = NULL;
    }
    r = 0;
out:
    json_decref(o);
    q_end(&q);
    return r;
}

int kms_iam_group_get(kms_iam *iam, const char *account_id, const char *group_name,
                      const char *marker, size_t max_items, json_t **out)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    iam_entity e;
    json_t *g = NULL;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_GROUP, group_name, &e) != 0 ||
        entity_json(&q, &e, true, &g) != 0 ||
        entity_page(&q, sql_group_members, account_id, KMS_IAM_USER, e.id, marker, NULL, max_items,
                    "Users", out) != 0) {
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
    q_end(&q);
    return r;
}

int kms_iam_group_list(kms_iam *iam, const char *account_id, const char *path_prefix,
                       const char *marker, size_t max_items, json_t **out)
{
    return entity_list(iam, account_id, KMS_IAM_GROUP, path_prefix, marker, max_items, out);
}

static const char sql_group_delete[] = "DELETE FROM iam_groups WHERE group_id = ?1";

int kms_iam_group_delete(kms_iam *iam, const char *account_id, const char *group_name)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_GROUP, group_name, &e) != 0 ||
        conflict_if(&q, sql_count_group_users, e.id, "remove all users from group") != 0 ||
        conflict_if(&q, sql_count_inline, e.id, "delete policies") != 0 ||
        conflict_if(&q, sql_count_attached, e.id, "detach all policies") != 0 ||
        q_exec(&q, sql_tags_delete, "s", e.id) != 0 ||
        q_exec(&q, sql_group_delete, "s", e.id) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
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
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity g, u;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_GROUP, group_name, &g) != 0 ||
        kms_iam_entity_find(&q, account_id, KMS_IAM_USER, user_name, &u) != 0 ||
        q_exec(&q, add ? sql_member_add : sql_member_remove, "ss", g.id, u.id) != 0) {
        goto out;
    }
    if (!add && q_changes(&q) == 0) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The user with name %s is not in group %s.", u.name,
                  g.name);
        goto out;
    }
    if (add) {
        /* IAM quota: a user is in at most 10 groups. */
        int64_t n = 0;
        if (q_int(&q, sql_count_groups_of_user, &n, "s", u.id) != 0) {
            goto out;
        }
        if (n > 10) {
            kms_raise(KMS_ERR_LIMIT_EXCEEDED, "Cannot exceed quota for GroupsPerUser: 10");
            goto out;
        }
    }
    if (q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
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
    KMS_GUARD(q_begin(iam, &q, false));
    iam_entity u;
    int r = kms_iam_entity_find(&q, account_id, KMS_IAM_USER, user_name, &u);
    if (r == 0) {
        r = entity_page(&q, sql_groups_of_user, account_id, KMS_IAM_GROUP, u.id, marker, NULL,
                        max_items, "Groups", out);
    }
    q_end(&q);
    return r;
}

/* ---- Roles -------------------------------------------------------------------------------- */

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
    KMS_GUARD(path_or_root(path, "path", &path));
    KMS_ENSURE(trust_policy != NULL && trust_policy[0] != '\0', KMS_ERR_VALIDATION,
               "AssumeRolePolicyDocument must not be empty");
    KMS_ENSURE(description == NULL || strlen(description) <= 1000, KMS_ERR_VALIDATION,
               "Description is longer than 1000 characters");
    KMS_GUARD(session_duration_check(&max_session_duration));
    KMS_GUARD(name_free(q, account_id, KMS_IAM_ROLE, name));
    KMS_GUARD(kms_iam_account_ensure(q, account_id, now));
    e->kind = KMS_IAM_ROLE;
    kms_iam_random_id(e->id, sizeof e->id, "AROA", 17, IAM_B32);
    snprintf(e->account_id, sizeof e->account_id, "%s", account_id);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->creation_date = now;
    kms_iam_entity_arn(e);
    KMS_GUARD(q_exec(q, sql_role_insert, "ssssssii", e->id, account_id, name, path, trust_policy,
                     description ? description : "", max_session_duration, now));
    if (boundary_arn != NULL) {
        char pid[32];
        KMS_GUARD(kms_iam_policy_id_by_arn(q, account_id, boundary_arn, pid));
        KMS_GUARD(q_exec(q, sql_boundary_role, "ss", e->id, pid));
    }
    return kms_iam_tags_insert(q, e->id, tags, tag_count);
}

int kms_iam_role_create(kms_iam *iam, const char *account_id, const char *path,
                        const char *role_name, const char *trust_policy, const char *description,
                        int64_t max_session_duration, const char *boundary_arn,
                        const kms_iam_tag *tags, size_t tag_count, int64_t now, json_t **role)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    json_t *o = NULL;
    int r = -1;
    if (kms_iam_role_insert(&q, account_id, path, role_name, trust_policy, description,
                            max_session_duration, boundary_arn, tags, tag_count, now, &e) != 0 ||
        (role != NULL && entity_json(&q, &e, true, &o) != 0) || q_commit(&q) != 0) {
        goto out;
    }
    if (role != NULL) {
        *role = o;
        o = NULL;
    }
    r = 0;
out:
    json_decref(o);
    q_end(&q);
    return r;
}

int kms_iam_role_get(kms_iam *iam, const char *account_id, const char *role_name, json_t **role)
{
    return entity_get(iam, account_id, KMS_IAM_ROLE, role_name, role);
}

int kms_iam_role_list(kms_iam *iam, const char *account_id, const char *path_prefix,
                      const char *marker, size_t max_items, json_t **out)
{
    return entity_list(iam, account_id, KMS_IAM_ROLE, path_prefix, marker, max_items, out);
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
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_ROLE, role_name, &e) != 0 ||
        (description != NULL &&
         q_exec(&q, sql_role_set_description, "ss", e.id, description) != 0) ||
        (max_session_duration != 0 &&
         q_exec(&q, sql_role_set_duration, "si", e.id, max_session_duration) != 0) ||
        q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_role_update_trust(kms_iam *iam, const char *account_id, const char *role_name,
                              const char *trust_policy)
{
    KMS_ENSURE(trust_policy != NULL && trust_policy[0] != '\0', KMS_ERR_VALIDATION,
               "PolicyDocument must not be empty");
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_ROLE, role_name, &e) != 0 ||
        q_exec(&q, sql_role_set_trust, "ss", e.id, trust_policy) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

static const char sql_role_delete[] = "DELETE FROM iam_roles WHERE role_id = ?1";

int kms_iam_role_delete(kms_iam *iam, const char *account_id, const char *role_name)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, KMS_IAM_ROLE, role_name, &e) != 0 ||
        conflict_if(&q, sql_count_inline, e.id, "delete policies") != 0 ||
        conflict_if(&q, sql_count_attached, e.id, "detach all policies") != 0 ||
        q_exec(&q, sql_tags_delete, "s", e.id) != 0 ||
        q_exec(&q, sql_sessions_delete_of, "s", e.id) != 0 ||
        q_exec(&q, sql_role_delete, "s", e.id) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
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
    KMS_GUARD(q_begin(iam, &q, false));
    int r = -1;
    sqlite3_stmt *st = NULL;
    int found = q_one(&q, sql_role_by_arn_parts, &st, "ss", out->account_id, name);
    if (found <= 0) {
        if (found == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The role with name %s cannot be found.", name);
        }
        goto out;
    }
    iam_entity e = {.kind = KMS_IAM_ROLE};
    snprintf(e.account_id, sizeof e.account_id, "%s", out->account_id);
    if (col_copy(st, 0, out->role_id, sizeof out->role_id) != 0 ||
        col_copy(st, 1, out->role_name, sizeof out->role_name) != 0 ||
        col_copy(st, 1, e.name, sizeof e.name) != 0 ||
        col_copy(st, 2, e.path, sizeof e.path) != 0 ||
        (out->trust_policy = col_dup(st, 3)) == NULL) {
        goto out;
    }
    out->max_session_duration = sqlite3_column_int64(st, 4);
    kms_iam_entity_arn(&e);
    kms_iam_copy(out->arn, sizeof out->arn, e.arn);
    r = 0;
out:
    q_end(&q);
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

/* ---- Tags --------------------------------------------------------------------------------- */

static const char sql_tag_delete[] = "DELETE FROM iam_tags WHERE entity_id = ?1 AND key = ?2";

int kms_iam_tags_add(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                     const kms_iam_tag *tags, size_t tag_count)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        kms_iam_tags_insert(&q, e.id, tags, tag_count) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_tags_remove(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                        const char *const *keys, size_t key_count)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0) {
        goto out;
    }
    for (size_t i = 0; i < key_count; i++) {
        if (q_exec(&q, sql_tag_delete, "ss", e.id, keys[i]) != 0) {
            goto out;
        }
    }
    if (q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_tags_list(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                      json_t **out)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    iam_entity e;
    int r = -1;
    json_t *tags = NULL;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        (tags = kms_iam_tags_json(&q, e.id)) == NULL) {
        goto out;
    }
    r = kms_iam_list_response(tags, "Tags", false, NULL, out);
out:
    q_end(&q);
    return r;
}

/* ---- Inline policies ---------------------------------------------------------------------- */

static const char sql_inline_put[] =
    "INSERT INTO iam_inline_policies (entity_id, name, document) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (entity_id, name) DO UPDATE SET document = excluded.document";
static const char sql_inline_get[] =
    "SELECT name, document FROM iam_inline_policies WHERE entity_id = ?1 AND name = ?2";
static const char sql_inline_delete[] =
    "DELETE FROM iam_inline_policies WHERE entity_id = ?1 AND name = ?2";
static const char sql_inline_list[] =
    "SELECT name FROM iam_inline_policies WHERE entity_id = ?1 AND name > ?2 "
    "ORDER BY name LIMIT ?3";

int kms_iam_inline_put(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                       const char *policy_name, const char *document)
{
    KMS_GUARD(kms_iam_name_check(policy_name, 128, "policyName"));
    KMS_ENSURE(document != NULL && document[0] != '\0', KMS_ERR_VALIDATION,
               "PolicyDocument must not be empty");
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        q_exec(&q, sql_inline_put, "sss", e.id, policy_name, document) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_inline_get(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                       const char *policy_name, json_t **out)
{
    KMS_GUARD(kms_iam_name_check(policy_name, 128, "policyName"));
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    iam_entity e;
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0) {
        goto out;
    }
    int found = q_one(&q, sql_inline_get, &st, "ss", e.id, policy_name);
    if (found <= 0) {
        if (found == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The %s policy with name %s cannot be found.",
                      kms_iam_kind_name(kind), policy_name);
        }
        goto out;
    }
    char key[16];
    snprintf(key, sizeof key, "%sName", kms_iam_kind_title(kind));
    *out = json_pack("{s:s, s:s, s:s}", key, e.name, "PolicyName", col_s(st, 0), "PolicyDocument",
                     col_s(st, 1));
    if (*out == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_inline_delete(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                          const char *policy_name)
{
    KMS_GUARD(kms_iam_name_check(policy_name, 128, "policyName"));
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        q_exec(&q, sql_inline_delete, "ss", e.id, policy_name) != 0) {
        goto out;
    }
    if (q_changes(&q) == 0) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The %s policy with name %s cannot be found.",
                  kms_iam_kind_name(kind), policy_name);
        goto out;
    }
    if (q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

/* Pages a one-column list of names (?1 scope, ?2 marker, ?3 limit) into a string array. */
static int name_page(iam_q *q, const char *sql, const char *scope, const char *marker,
                     size_t max_items, const char *member, json_t **out)
{
    size_t max = kms_iam_max_items(max_items);
    json_t *items = json_array();
    KMS_ENSURE(items != NULL, KMS_ERR_INTERNAL, "out of memory");
    sqlite3_stmt *st = NULL;
    char last[600] = "";
    bool truncated = false;
    int s = q_stmt(q, sql, &st, "ssi", scope, marker ? marker : "", (int64_t)max + 1);
    size_t n = 0;
    while (s == 0 && (s = q_step(q, st)) == 1) {
        if (n == max) {
            truncated = true;
            break;
        }
        snprintf(last, sizeof last, "%s", col_s(st, 0));
        if (json_array_append_new(items, json_string(col_s(st, 0))) != 0) {
            s = kms_raise(KMS_ERR_INTERNAL, "out of memory");
            break;
        }
        n++;
        s = 0;
    }
    if (st != NULL) {
        sqlite3_reset(st);
    }
    if (s < 0) {
        json_decref(items);
        return -1;
    }
    return kms_iam_list_response(items, member, truncated, last, out);
}

int kms_iam_inline_list(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                        const char *marker, size_t max_items, json_t **out)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    iam_entity e;
    int r = kms_iam_entity_find(&q, account_id, kind, name, &e);
    if (r == 0) {
        r = name_page(&q, sql_inline_list, e.id, marker, max_items, "PolicyNames", out);
    }
    q_end(&q);
    return r;
}

/* ---- Managed policies --------------------------------------------------------------------- */

/* Attachments counted within the caller's account (AWS managed policies are shared). */
#define POLICY_COLUMNS                                                                             \
    "p.policy_id, p.account_id, p.arn, p.name, p.path, p.description, p.default_version, "         \
    "p.creation_date, p.update_date, "                                                             \
    "(SELECT count(*) FROM iam_attachments a WHERE a.policy_id = p.policy_id AND a.entity_id IN "  \
    "(SELECT user_id FROM iam_users WHERE account_id = ?1 UNION ALL SELECT group_id FROM "         \
    "iam_groups WHERE account_id = ?1 UNION ALL SELECT role_id FROM iam_roles WHERE account_id "   \
    "= ?1)), "                                                                                     \
    "(SELECT count(*) FROM iam_users u WHERE u.boundary_id = p.policy_id AND u.account_id = ?1) "  \
    "+ (SELECT count(*) FROM iam_roles r WHERE r.boundary_id = p.policy_id AND r.account_id = "    \
    "?1)"

static const char sql_policy_get[] = "SELECT " POLICY_COLUMNS " FROM iam_policies p "
                                     "WHERE p.policy_id = ?2";
static const char sql_policy_list[] =
    "SELECT " POLICY_COLUMNS " FROM iam_policies p "
    "WHERE (p.account_id = ?1 OR p.account_id = 'aws') AND (?2 = 'All' OR (?2 = 'AWS' AND "
    "p.account_id = 'aws') OR (?2 = 'Local' AND p.account_id = ?1)) AND p.arn > ?3 AND "
    "substr(p.path, 1, length(?4)) = ?4 ORDER BY p.arn";
static const char sql_policy_insert[] =
    "INSERT INTO iam_policies (policy_id, account_id, arn, name, path, description, "
    "default_version, next_version, creation_date, update_date) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 2, ?7, ?7)";
static const char sql_policy_name_taken[] =
    "SELECT 1 FROM iam_policies WHERE account_id = ?1 AND name = ?2";
static const char sql_version_insert[] =
    "INSERT INTO iam_policy_versions (policy_id, version, document, creation_date) "
    "VALUES (?1, ?2, ?3, ?4)";

static json_t *policy_row_json(sqlite3_stmt *st)
{
    char version[24];
    snprintf(version, sizeof version, "v%" PRId64, (int64_t)sqlite3_column_int64(st, 6));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:I, s:I}", "PolicyName",
                          col_s(st, 3), "PolicyId", col_s(st, 0), "Arn", col_s(st, 2), "Path",
                          col_s(st, 4), "DefaultVersionId", version, "AttachmentCount",
                          (json_int_t)sqlite3_column_int64(st, 9), "PermissionsBoundaryUsageCount",
                          (json_int_t)sqlite3_column_int64(st, 10), "IsAttachable", 1, "CreateDate",
                          (json_int_t)sqlite3_column_int64(st, 7), "UpdateDate",
                          (json_int_t)sqlite3_column_int64(st, 8));
    if (o != NULL && col_s(st, 5)[0] != '\0' &&
        json_object_set_new(o, "Description", json_string(col_s(st, 5))) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (o == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return o;
}

static int policy_json(iam_q *q, const char *account_id, const char *policy_id, json_t **out)
{
    sqlite3_stmt *st = NULL;
    int found = q_one(q, sql_policy_get, &st, "ss", account_id, policy_id);
    KMS_GUARD(found < 0 ? -1 : 0);
    KMS_ENSURE(found == 1, KMS_ERR_NO_SUCH_ENTITY, "Policy %s was not found.", policy_id);
    *out = policy_row_json(st);
    sqlite3_reset(st);
    return *out != NULL ? 0 : -1;
}

int kms_iam_policy_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                          const char *description, const char *document, int64_t now, char id[32])
{
    KMS_GUARD(kms_iam_account_check(account_id));
    KMS_GUARD(kms_iam_name_check(name, 128, "policyName"));
    KMS_GUARD(path_or_root(path, "path", &path));
    KMS_ENSURE(description == NULL || strlen(description) <= 1000, KMS_ERR_VALIDATION,
               "Description is longer than 1000 characters");
    KMS_ENSURE(document != NULL && document[0] != '\0', KMS_ERR_VALIDATION,
               "PolicyDocument must not be empty");
    sqlite3_stmt *st = NULL;
    int taken = q_one(q, sql_policy_name_taken, &st, "ss", account_id, name);
    KMS_GUARD(taken < 0 ? -1 : 0);
    KMS_ENSURE(taken == 0, KMS_ERR_ENTITY_EXISTS,
               "A policy called %s already exists. Duplicate names are not allowed.", name);
    char arn[700];
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:policy%s%s", account_id, path, name);
    kms_iam_random_id(id, 32, "ANPA", 17, IAM_B32);
    KMS_GUARD(q_exec(q, sql_policy_insert, "ssssssi", id, account_id, arn, name, path,
                     description ? description : "", now));
    return q_exec(q, sql_version_insert, "sisi", id, (int64_t)1, document, now);
}

int kms_iam_policy_create(kms_iam *iam, const char *account_id, const char *path,
                          const char *policy_name, const char *description, const char *document,
                          int64_t now, json_t **policy)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    char id[32];
    json_t *o = NULL;
    int r = -1;
    if (kms_iam_policy_insert(&q, account_id, path, policy_name, description, document, now, id) !=
            0 ||
        (policy != NULL && policy_json(&q, account_id, id, &o) != 0) || q_commit(&q) != 0) {
        goto out;
    }
    if (policy != NULL) {
        *policy = o;
        o = NULL;
    }
    r = 0;
out:
    json_decref(o);
    q_end(&q);
    return r;
}

int kms_iam_policy_get(kms_iam *iam, const char *account_id, const char *policy_arn,
                       json_t **policy)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    char id[32];
    int r = kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id);
    if (r == 0) {
        r = policy_json(&q, account_id, id, policy);
    }
    q_end(&q);
    return r;
}

int kms_iam_policy_list(kms_iam *iam, const char *account_id, const char *scope, bool only_attached,
                        const char *path_prefix, const char *marker, size_t max_items, json_t **out)
{
    scope = scope ? scope : "All";
    KMS_ENSURE(strcmp(scope, "All") == 0 || strcmp(scope, "AWS") == 0 ||
                   strcmp(scope, "Local") == 0,
               KMS_ERR_VALIDATION, "Scope must be one of All, AWS, Local");
    size_t max = kms_iam_max_items(max_items);
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    json_t *items = json_array();
    sqlite3_stmt *st = NULL;
    char last[700] = "";
    bool truncated = false;
    int r = -1;
    if (items == NULL || q_stmt(&q, sql_policy_list, &st, "ssss", account_id, scope,
                                marker ? marker : "", path_prefix ? path_prefix : "/") != 0) {
        goto out;
    }
    size_t n = 0;
    int s;
    while ((s = q_step(&q, st)) == 1) {
        if (only_attached && sqlite3_column_int64(st, 9) == 0) {
            continue;
        }
        if (n == max) {
            truncated = true;
            break;
        }
        json_t *o = policy_row_json(st);
        if (o == NULL || json_array_append_new(items, o) != 0) {
            goto out;
        }
        snprintf(last, sizeof last, "%s", col_s(st, 2));
        n++;
    }
    if (s < 0) {
        goto out;
    }
    r = kms_iam_list_response(items, "Policies", truncated, last, out);
    items = NULL;
out:
    json_decref(items);
    q_end(&q);
    return r;
}

static const char sql_policy_owner[] = "SELECT account_id FROM iam_policies WHERE policy_id = ?1";
static const char sql_policy_attached_anywhere[] =
    "SELECT count(*) FROM iam_attachments WHERE policy_id = ?1";
static const char sql_policy_boundary_anywhere[] =
    "SELECT (SELECT count(*) FROM iam_users WHERE boundary_id = ?1) + "
    "(SELECT count(*) FROM iam_roles WHERE boundary_id = ?1)";
static const char sql_policy_versions_other[] =
    "SELECT count(*) FROM iam_policy_versions v JOIN iam_policies p ON p.policy_id = v.policy_id "
    "WHERE v.policy_id = ?1 AND v.version <> p.default_version";
static const char sql_policy_delete[] = "DELETE FROM iam_policies WHERE policy_id = ?1";

/* A customer managed policy of account_id that the caller may change: AWS managed ones are
 * InvalidInput. */
static int own_policy(iam_q *q, const char *account_id, const char *arn, char id[32])
{
    KMS_GUARD(kms_iam_policy_id_by_arn(q, account_id, arn, id));
    sqlite3_stmt *st = NULL;
    int found = q_one(q, sql_policy_owner, &st, "s", id);
    KMS_GUARD(found < 0 ? -1 : 0);
    bool aws = found == 1 && strcmp(col_s(st, 0), "aws") == 0;
    sqlite3_reset(st);
    KMS_ENSURE(!aws, KMS_ERR_INVALID_INPUT, "AWS managed policy %s cannot be changed.", arn);
    return 0;
}

int kms_iam_policy_delete(kms_iam *iam, const char *account_id, const char *policy_arn)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    char id[32];
    int r = -1;
    if (own_policy(&q, account_id, policy_arn, id) != 0 ||
        conflict_if(&q, sql_policy_attached_anywhere, id, "detach all policies") != 0 ||
        conflict_if(&q, sql_policy_boundary_anywhere, id,
                    "remove the policy as a permissions boundary") != 0 ||
        conflict_if(&q, sql_policy_versions_other, id, "delete all non-default versions") != 0 ||
        q_exec(&q, sql_policy_delete, "s", id) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

/* ---- Policy versions ---------------------------------------------------------------------- */

static const char sql_version_count[] =
    "SELECT count(*) FROM iam_policy_versions WHERE policy_id = ?1";
static const char sql_next_version[] = "SELECT next_version FROM iam_policies WHERE policy_id = ?1";
static const char sql_policy_bump_version[] =
    "UPDATE iam_policies SET next_version = next_version + 1, update_date = ?2, "
    "default_version = CASE WHEN ?3 THEN next_version ELSE default_version END "
    "WHERE policy_id = ?1";
static const char sql_version_get[] =
    "SELECT v.version, v.document, v.creation_date, p.default_version FROM iam_policy_versions v "
    "JOIN iam_policies p ON p.policy_id = v.policy_id WHERE v.policy_id = ?1 AND v.version = ?2";
static const char sql_version_list[] =
    "SELECT v.version, v.document, v.creation_date, p.default_version FROM iam_policy_versions v "
    "JOIN iam_policies p ON p.policy_id = v.policy_id WHERE v.policy_id = ?1 "
    "ORDER BY v.version DESC";
static const char sql_version_delete[] =
    "DELETE FROM iam_policy_versions WHERE policy_id = ?1 AND version = ?2";
static const char sql_set_default[] =
    "UPDATE iam_policies SET default_version = ?2 WHERE policy_id = ?1";

static int version_parse(const char *version_id, int64_t *out)
{
    KMS_ENSURE(version_id != NULL && version_id[0] == 'v' && version_id[1] >= '1' &&
                   version_id[1] <= '9' && strlen(version_id) < 12,
               KMS_ERR_VALIDATION, "invalid policy version id %s",
               version_id ? version_id : "(null)");
    char *end = NULL;
    long long v = strtoll(version_id + 1, &end, 10);
    KMS_ENSURE(*end == '\0', KMS_ERR_VALIDATION, "invalid policy version id %s", version_id);
    *out = v;
    return 0;
}

static json_t *version_row_json(sqlite3_stmt *st, bool with_document)
{
    char version[24];
    int64_t v = sqlite3_column_int64(st, 0);
    snprintf(version, sizeof version, "v%" PRId64, v);
    json_t *o = json_pack("{s:s, s:b, s:I}", "VersionId", version, "IsDefaultVersion",
                          v == sqlite3_column_int64(st, 3), "CreateDate",
                          (json_int_t)sqlite3_column_int64(st, 2));
    if (o != NULL && with_document &&
        json_object_set_new(o, "Document", json_string(col_s(st, 1))) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (o == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return o;
}

static int version_json(iam_q *q, const char *id, int64_t v, bool with_document, json_t **out)
{
    sqlite3_stmt *st = NULL;
    int found = q_one(q, sql_version_get, &st, "si", id, v);
    KMS_GUARD(found < 0 ? -1 : 0);
    KMS_ENSURE(found == 1, KMS_ERR_NO_SUCH_ENTITY, "Policy version v%" PRId64 " does not exist.",
               v);
    *out = version_row_json(st, with_document);
    sqlite3_reset(st);
    return *out ? 0 : -1;
}

int kms_iam_policy_version_create(kms_iam *iam, const char *account_id, const char *policy_arn,
                                  const char *document, bool set_as_default, int64_t now,
                                  json_t **version)
{
    KMS_ENSURE(document != NULL && document[0] != '\0', KMS_ERR_VALIDATION,
               "PolicyDocument must not be empty");
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    char id[32];
    int64_t count = 0, next = 0;
    json_t *o = NULL;
    int r = -1;
    if (own_policy(&q, account_id, policy_arn, id) != 0 ||
        q_int(&q, sql_version_count, &count, "s", id) != 0) {
        goto out;
    }
    if (count >= POLICY_VERSIONS_MAX) {
        kms_raise(KMS_ERR_LIMIT_EXCEEDED,
                  "A managed policy can have up to 5 versions. Before you create a new version, "
                  "you must delete an existing version.");
        goto out;
    }
    if (q_int(&q, sql_next_version, &next, "s", id) != 0 ||
        q_exec(&q, sql_version_insert, "sisi", id, next, document, now) != 0 ||
        q_exec(&q, sql_policy_bump_version, "sii", id, now, (int64_t)set_as_default) != 0 ||
        (version != NULL && version_json(&q, id, next, false, &o) != 0) || q_commit(&q) != 0) {
        goto out;
    }
    if (version != NULL) {
        *version = o;
        o = NULL;
    }
    r = 0;
out:
    json_decref(o);
    q_end(&q);
    return r;
}

int kms_iam_policy_version_get(kms_iam *iam, const char *account_id, const char *policy_arn,
                               const char *version_id, json_t **version)
{
    int64_t v = 0;
    KMS_GUARD(version_parse(version_id, &v));
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    char id[32];
    int r = kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id);
    if (r == 0) {
        r = version_json(&q, id, v, true, version);
    }
    q_end(&q);
    return r;
}

int kms_iam_policy_version_list(kms_iam *iam, const char *account_id, const char *policy_arn,
                                json_t **out)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    char id[32];
    json_t *items = json_array();
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (items == NULL || kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id) != 0 ||
        q_stmt(&q, sql_version_list, &st, "s", id) != 0) {
        goto out;
    }
    int s;
    while ((s = q_step(&q, st)) == 1) {
        json_t *o = version_row_json(st, false);
        if (o == NULL || json_array_append_new(items, o) != 0) {
            goto out;
        }
    }
    if (s < 0) {
        goto out;
    }
    r = kms_iam_list_response(items, "Versions", false, NULL, out);
    items = NULL;
out:
    json_decref(items);
    q_end(&q);
    return r;
}

static int version_change(kms_iam *iam, const char *account_id, const char *policy_arn,
                          const char *version_id, bool make_default)
{
    int64_t v = 0;
    KMS_GUARD(version_parse(version_id, &v));
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    char id[32];
    json_t *o = NULL;
    int r = -1;
    if (own_policy(&q, account_id, policy_arn, id) != 0 ||
        version_json(&q, id, v, false, &o) != 0) {
        goto out;
    }
    bool is_default = json_is_true(json_object_get(o, "IsDefaultVersion"));
    if (make_default) {
        if (q_exec(&q, sql_set_default, "si", id, v) != 0) {
            goto out;
        }
    } else {
        if (is_default) {
            kms_raise(KMS_ERR_DELETE_CONFLICT, "Cannot delete the default version of a policy.");
            goto out;
        }
        if (q_exec(&q, sql_version_delete, "si", id, v) != 0) {
            goto out;
        }
    }
    if (q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    json_decref(o);
    q_end(&q);
    return r;
}

int kms_iam_policy_version_delete(kms_iam *iam, const char *account_id, const char *policy_arn,
                                  const char *version_id)
{
    return version_change(iam, account_id, policy_arn, version_id, false);
}

int kms_iam_policy_set_default_version(kms_iam *iam, const char *account_id, const char *policy_arn,
                                       const char *version_id)
{
    return version_change(iam, account_id, policy_arn, version_id, true);
}

/* ---- Attachments and boundaries ----------------------------------------------------------- */

static const char sql_attach[] =
    "INSERT OR IGNORE INTO iam_attachments (entity_id, policy_id) VALUES (?1, ?2)";
static const char sql_detach[] =
    "DELETE FROM iam_attachments WHERE entity_id = ?1 AND policy_id = ?2";
static const char sql_attached_list[] =
    "SELECT p.name, p.arn FROM iam_attachments a JOIN iam_policies p ON p.policy_id = a.policy_id "
    "WHERE a.entity_id = ?1 AND p.arn > ?2 AND substr(p.path, 1, length(?3)) = ?3 "
    "ORDER BY p.arn LIMIT ?4";

int kms_iam_attach_tx(iam_q *q, const char *entity_id, const char *policy_id)
{
    KMS_GUARD(q_exec(q, sql_attach, "ss", entity_id, policy_id));
    int64_t n = 0;
    KMS_GUARD(q_int(q, sql_count_attached, &n, "s", entity_id));
    KMS_ENSURE(n <= ATTACHED_MAX, KMS_ERR_LIMIT_EXCEEDED,
               "Cannot exceed quota for PoliciesPerEntity: %d", ATTACHED_MAX);
    return 0;
}

int kms_iam_policy_attach(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                          const char *policy_arn)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    char id[32];
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id) != 0 ||
        kms_iam_attach_tx(&q, e.id, id) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_policy_detach(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                          const char *policy_arn)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    char id[32];
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id) != 0 ||
        q_exec(&q, sql_detach, "ss", e.id, id) != 0) {
        goto out;
    }
    if (q_changes(&q) == 0) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY, "Policy %s was not found.", policy_arn);
        goto out;
    }
    if (q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_policy_list_attached(kms_iam *iam, const char *account_id, kms_iam_kind kind,
                                 const char *name, const char *path_prefix, const char *marker,
                                 size_t max_items, json_t **out)
{
    size_t max = kms_iam_max_items(max_items);
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    iam_entity e;
    json_t *items = json_array();
    sqlite3_stmt *st = NULL;
    char last[700] = "";
    bool truncated = false;
    int r = -1;
    if (items == NULL || kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        q_stmt(&q, sql_attached_list, &st, "sssi", e.id, marker ? marker : "",
               path_prefix ? path_prefix : "/", (int64_t)max + 1) != 0) {
        goto out;
    }
    size_t n = 0;
    int s;
    while ((s = q_step(&q, st)) == 1) {
        if (n == max) {
            truncated = true;
            break;
        }
        json_t *o = json_pack("{s:s, s:s}", "PolicyName", col_s(st, 0), "PolicyArn", col_s(st, 1));
        if (o == NULL || json_array_append_new(items, o) != 0) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        snprintf(last, sizeof last, "%s", col_s(st, 1));
        n++;
    }
    if (s < 0) {
        goto out;
    }
    r = kms_iam_list_response(items, "AttachedPolicies", truncated, last, out);
    items = NULL;
out:
    json_decref(items);
    q_end(&q);
    return r;
}

static int boundary_set(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                        const char *policy_arn)
{
    KMS_ENSURE(kind == KMS_IAM_USER || kind == KMS_IAM_ROLE, KMS_ERR_VALIDATION,
               "permissions boundaries apply to users and roles");
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    char id[32] = "";
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        (policy_arn != NULL && kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id) != 0) ||
        q_exec(&q, kind == KMS_IAM_USER ? sql_boundary_user : sql_boundary_role, "ss", e.id,
               policy_arn ? id : NULL) != 0 ||
        q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
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
