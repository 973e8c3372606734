/* What IAM users, groups and roles share: their json rendering, paged lists, lookups by name,
 * the checks and clean-up before a delete. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/util.h"

/* ---- Lookups ------------------------------------------------------------------------------ */

static const char sql_user_find[] =
    "SELECT user_id, name, path, creation_date, is_root FROM iam_users "
    "WHERE account_id = ?1 AND name = ?2 AND is_root = 0";
static const char sql_root_find[] =
    "SELECT user_id, name, path, creation_date, is_root FROM iam_users "
    "WHERE account_id = ?1 AND is_root = 1";
static const char sql_group_find[] =
    "SELECT group_id, name, path, creation_date, 0 FROM iam_groups "
    "WHERE account_id = ?1 AND name = ?2";
static const char sql_role_find[] = "SELECT role_id, name, path, creation_date, 0 FROM iam_roles "
                                    "WHERE account_id = ?1 AND name = ?2";

static int entity_row(kms_db_stmt *st, const char *account_id, kms_iam_kind kind, iam_entity *out)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    KMS_GUARD(kms_db_column_copy(st, 0, out->id, sizeof out->id, IAM_SQL_SUBJECT));
    KMS_GUARD(kms_db_column_copy(st, 1, out->name, sizeof out->name, IAM_SQL_SUBJECT));
    KMS_GUARD(kms_db_column_copy(st, 2, out->path, sizeof out->path, IAM_SQL_SUBJECT));
    out->creation_date = kms_db_column_int64(st, 3);
    out->is_root = kms_db_column_int64(st, 4) != 0;
    snprintf(out->account_id, sizeof out->account_id, "%s", account_id);
    kms_iam_entity_arn(out);
    return 0;
}

int kms_iam_entity_find(iam_q *q, const char *account_id, kms_iam_kind kind, const char *name,
                        iam_entity *out)
{
    KMS_ENSURE(name != NULL && name[0] != '\0', KMS_ERR_VALIDATION, "%sName must not be empty",
               kms_iam_kind_title(kind));
    const char *sql = kind == KMS_IAM_USER    ? sql_user_find
                      : kind == KMS_IAM_GROUP ? sql_group_find
                                              : sql_role_find;
    kms_db_stmt *st = NULL;
    int found = kms_db_first(q->c, sql, KMS_DB_PARAMS(kms_db_text(account_id), kms_db_text(name)),
                             &st, IAM_SQL_WHAT);
    KMS_GUARD(found < 0 ? -1 : 0);
    KMS_ENSURE(found == 1, KMS_ERR_NO_SUCH_ENTITY, "The %s with name %s cannot be found.",
               kms_iam_kind_name(kind), name);
    int r = entity_row(st, account_id, kind, out);
    kms_db_reset(st);
    return r;
}

int kms_iam_user_or_root(iam_q *q, const char *account_id, const char *user_name, iam_entity *out)
{
    if (user_name != NULL) {
        return kms_iam_entity_find(q, account_id, KMS_IAM_USER, user_name, out);
    }
    kms_db_stmt *st = NULL;
    int found = kms_db_first(q->c, sql_root_find, KMS_DB_PARAMS(kms_db_text(account_id)), &st,
                             IAM_SQL_WHAT);
    KMS_GUARD(found < 0 ? -1 : 0);
    KMS_ENSURE(found == 1, KMS_ERR_NO_SUCH_ENTITY, "The root user of account %s cannot be found.",
               account_id);
    int r = entity_row(st, account_id, KMS_IAM_USER, out);
    kms_db_reset(st);
    return r;
}

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
int kms_iam_entity_json(iam_q *q, const iam_entity *e, bool full, json_t **out)
{
    char key_name[16], key_id[16];
    snprintf(key_name, sizeof key_name, "%sName", kms_iam_kind_title(e->kind));
    snprintf(key_id, sizeof key_id, "%sId", kms_iam_kind_title(e->kind));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "Path", e->path, key_name, e->name, key_id,
                          e->id, "Arn", e->arn, "CreateDate", (json_int_t)e->creation_date);
    KMS_ENSURE(o != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = -1;
    kms_db_stmt *st = NULL;
    if (e->kind == KMS_IAM_USER && full) {
        int found = kms_db_first(q->c, sql_user_detail, KMS_DB_PARAMS(kms_db_text(e->id)), &st,
                                 IAM_SQL_WHAT);
        if (found != 1) {
            goto out;
        }
        int64_t last = kms_db_column_int64(st, 1);
        if (boundary_json(o, kms_db_column_text(st, 0)) != 0 ||
            (last > 0 && kms_iam_json_set(o, "PasswordLastUsed", json_integer(last)) != 0)) {
            goto out;
        }
    } else if (e->kind == KMS_IAM_ROLE) {
        int found = kms_db_first(q->c, sql_role_detail, KMS_DB_PARAMS(kms_db_text(e->id)), &st,
                                 IAM_SQL_WHAT);
        if (found != 1) {
            goto out;
        }
        if (kms_iam_json_set(o, "AssumeRolePolicyDocument",
                             json_string(kms_db_column_text(st, 1))) != 0 ||
            kms_iam_json_set(o, "MaxSessionDuration", json_integer(kms_db_column_int64(st, 3))) !=
                0 ||
            (kms_db_column_text(st, 2)[0] != '\0' &&
             kms_iam_json_set(o, "Description", json_string(kms_db_column_text(st, 2))) != 0) ||
            (full && boundary_json(o, kms_db_column_text(st, 0)) != 0)) {
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
        kms_db_reset(st);
    }
    json_decref(o);
    return r;
}

int kms_iam_entity_get(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                       json_t **out)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity e;
    int r = kms_iam_entity_find(&q, account_id, kind, name, &e);
    if (r == 0) {
        r = kms_iam_entity_json(&q, &e, true, out);
    }
    kms_iam_end(&q);
    return r;
}

/* ---- Lists -------------------------------------------------------------------------------- */

/* Pages through rows (id, name, path, creation_date, is_root) of a statement bound as
 * ?1 scope, ?2 marker, ?3 path prefix, ?4 limit, into {"<member>": [...], IsTruncated, Marker?}.
 * The marker is the last name returned. */
int kms_iam_entity_page(iam_q *q, const char *sql, const char *account_id, kms_iam_kind kind,
                        const char *scope, const char *marker, const char *path_prefix,
                        size_t max_items, const char *member, json_t **out)
{
    size_t max = kms_iam_max_items(max_items);
    json_t *items = json_array();
    KMS_ENSURE(items != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = -1;
    kms_db_stmt *st = NULL;
    char last[130] = "";
    bool truncated = false;
    if (kms_db_open(q->c, sql,
                    KMS_DB_PARAMS(kms_db_text(scope), kms_db_text(marker ? marker : ""),
                                  kms_db_text(path_prefix ? path_prefix : "/"),
                                  kms_db_int64((int64_t)max + 1)),
                    &st) != 0) {
        goto out;
    }
    /* Rows first, rendering after: rendering runs other statements on this connection. */
    iam_entity *rows = NULL;
    size_t n = 0;
    int s;
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
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
        if (kms_db_column_copy(st, 0, rows[n].id, sizeof rows[n].id, IAM_SQL_SUBJECT) != 0 ||
            kms_db_column_copy(st, 1, rows[n].name, sizeof rows[n].name, IAM_SQL_SUBJECT) != 0 ||
            kms_db_column_copy(st, 2, rows[n].path, sizeof rows[n].path, IAM_SQL_SUBJECT) != 0) {
            s = -1;
            break;
        }
        rows[n].creation_date = kms_db_column_int64(st, 3);
        kms_iam_entity_arn(&rows[n]);
        n++;
    }
    kms_db_reset(st);
    for (size_t i = 0; s >= 0 && i < n; i++) {
        json_t *o = NULL;
        if (kms_iam_entity_json(q, &rows[i], false, &o) != 0) {
            s = -1;
        } else if (json_array_append_new(items, o) != 0) {
            s = kms_raise(KMS_ERR_INTERNAL, "out of memory");
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

int kms_iam_entity_list(kms_iam *iam, const char *account_id, kms_iam_kind kind,
                        const char *path_prefix, const char *marker, size_t max_items, json_t **out)
{
    const char *sql = kind == KMS_IAM_USER    ? sql_user_list
                      : kind == KMS_IAM_GROUP ? sql_group_list
                                              : sql_role_list;
    const char *member = kind == KMS_IAM_USER    ? "Users"
                         : kind == KMS_IAM_GROUP ? "Groups"
                                                 : "Roles";
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    int r = kms_iam_entity_page(&q, sql, account_id, kind, account_id, marker, path_prefix,
                                max_items, member, out);
    kms_iam_end(&q);
    return r;
}

typedef struct user_row {
    iam_row_json_fn row;
    const iam_entity *user;
} user_row;

static json_t *user_row_json(kms_db_stmt *st, const void *arg)
{
    const user_row *u = arg;
    json_t *o = u->row(st, NULL);
    if (o != NULL && !u->user->is_root &&
        kms_iam_json_set(o, "UserName", json_string(u->user->name)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int kms_iam_user_rows_list(kms_iam *iam, const char *account_id, const char *user_name,
                           const char *sql, iam_row_json_fn row, const char *member, json_t **out)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity u;
    user_row arg = {row, &u};
    json_t *items = json_array();
    kms_db_stmt *st = NULL;
    int r = -1;
    if (items == NULL || kms_iam_user_or_root(&q, account_id, user_name, &u) != 0 ||
        kms_db_open(q.c, sql, KMS_DB_PARAMS(kms_db_text(u.id)), &st) != 0) {
        goto out;
    }
    if (kms_iam_rows_append(st, user_row_json, &arg, items) != 0) {
        goto out;
    }
    r = kms_iam_list_response(items, member, false, NULL, out);
    items = NULL;
out:
    json_decref(items);
    kms_iam_end(&q);
    return r;
}

/* ---- Creation ----------------------------------------------------------------------------- */

int kms_iam_path_or_root(const char *path, const char *what, const char **out)
{
    *out = path ? path : "/";
    return kms_iam_path_check(*out, what);
}

static const char sql_account_known[] = "SELECT 1 FROM iam_accounts WHERE account_id = ?1";
static const char sql_account_insert[] =
    "INSERT INTO iam_accounts (account_id, creation_date) VALUES (?1, ?2)";

int kms_iam_account_ensure(iam_q *q, const char *account_id, int64_t now)
{
    kms_db_stmt *st = NULL;
    int found = kms_db_first(q->c, sql_account_known, KMS_DB_PARAMS(kms_db_text(account_id)), &st,
                             IAM_SQL_WHAT);
    KMS_GUARD(found < 0 ? -1 : 0);
    if (found == 1) {
        kms_db_reset(st);
        return 0;
    }
    return kms_db_exec_sql(q->c, sql_account_insert,
                           KMS_DB_PARAMS(kms_db_text(account_id), kms_db_int64(now)), IAM_SQL_WHAT);
}

/* EntityAlreadyExists unless `name` is free for kind in the account. */
int kms_iam_name_free(iam_q *q, const char *account_id, kms_iam_kind kind, const char *name)
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

/* ---- Deletion ----------------------------------------------------------------------------- */

/* DeleteConflict "Cannot delete entity, must <what> first." when the count query finds rows. */
int kms_iam_conflict_if(iam_q *q, const char *sql, const char *id, const char *what)
{
    int64_t n = 0;
    int s = kms_db_int(q->c, sql, KMS_DB_PARAMS(kms_db_text(id)), &n, IAM_SQL_WHAT);
    KMS_GUARD(s < 0 ? -1 : 0);
    KMS_ENSURE(n == 0, KMS_ERR_DELETE_CONFLICT, "Cannot delete entity, must %s first.", what);
    return 0;
}

static const char sql_count_inline[] =
    "SELECT count(*) FROM iam_inline_policies WHERE entity_id = ?1";

int kms_iam_entity_unused(iam_q *q, const char *entity_id)
{
    KMS_GUARD(kms_iam_conflict_if(q, sql_count_inline, entity_id, "delete policies"));
    int64_t n = 0;
    KMS_GUARD(kms_iam_attached_count(q, entity_id, &n));
    KMS_ENSURE(n == 0, KMS_ERR_DELETE_CONFLICT, "Cannot delete entity, must %s first.",
               "detach all policies");
    return 0;
}

static const char sql_tags_delete[] = "DELETE FROM iam_tags WHERE entity_id = ?1";
static const char sql_sessions_delete_of[] = "DELETE FROM iam_sessions WHERE principal_id = ?1";

int kms_iam_entity_forget(iam_q *q, const iam_entity *e)
{
    KMS_GUARD(
        kms_db_exec_sql(q->c, sql_tags_delete, KMS_DB_PARAMS(kms_db_text(e->id)), IAM_SQL_WHAT));
    if (e->kind == KMS_IAM_GROUP) {
        return 0;
    }
    return kms_db_exec_sql(q->c, sql_sessions_delete_of, KMS_DB_PARAMS(kms_db_text(e->id)),
                           IAM_SQL_WHAT);
}
