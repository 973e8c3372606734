/* Rotation state, usage counts and the end of deletion windows, in the metadata database
 * (store.h "Rotation, usage and deletion"). Every decision that two processes could race on is
 * one conditional UPDATE: whoever changes the row won. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"
#include "util/util.h"

static const char sql_get[] =
    "SELECT k.rotation_period_days, k.next_rotation_date, k.current_version, k.rotation_claim, "
    "  k.rotation_claim_date, k.rotation_claim_type, "
    "  (SELECT count(*) FROM key_versions v WHERE v.key_id = k.key_id "
    "     AND v.rotation_type = 'ON_DEMAND'), "
    "  (SELECT v.encryptions FROM key_versions v WHERE v.key_id = k.key_id "
    "     AND v.version = k.current_version) "
    "FROM keys k WHERE k.key_id = ?1";
static const char sql_set[] =
    "UPDATE keys SET rotation_period_days = ?2, next_rotation_date = ?3 WHERE key_id = ?1";
/* ?2 version, ?3 type, ?4 now, ?5 stale_before, ?6 due_before, ?7 usage_limit, ?8 on-demand max */
/* rotation_claim is the highest version ever claimed (it stays when the claim ends; the claim
 * is live while rotation_claim_date > 0), so a claim always makes a version nobody claimed
 * before: one taken over from a stalled claimant is never made again, and whatever that
 * claimant still does under its version's label touches nothing anyone uses. */
static const char sql_claim[] =
    "UPDATE keys SET rotation_claim = ?2, rotation_claim_date = ?4, rotation_claim_type = ?3 "
    "WHERE key_id = ?1 AND key_state = 'Enabled' "
    "  AND ?2 = max(current_version, rotation_claim) + 1 "
    "  AND (rotation_claim_date = 0 OR rotation_claim_date < ?5) "
    "  AND (?6 = 0 OR (rotation_period_days > 0 AND next_rotation_date <= ?6)) "
    "  AND (?7 = 0 OR (SELECT v.encryptions FROM key_versions v WHERE v.key_id = ?1 "
    "                    AND v.version = current_version) >= ?7) "
    "  AND (?3 <> 'ON_DEMAND' OR (SELECT count(*) FROM key_versions v WHERE v.key_id = ?1 "
    "                              AND v.rotation_type = 'ON_DEMAND') < ?8)";
/* AWS: an on-demand rotation leaves the automatic schedule alone; an automatic one moves it on
 * by one period from now. */
static const char sql_commit_key[] =
    "UPDATE keys SET current_version = ?2, rotation_claim_date = 0, rotation_claim_type = '', "
    "  next_rotation_date = CASE WHEN ?3 = 'AUTOMATIC' AND rotation_period_days > 0 "
    "    THEN ?4 + rotation_period_days * 86400 ELSE next_rotation_date END "
    "WHERE key_id = ?1 AND rotation_claim = ?2 AND rotation_claim_date > 0 "
    "  AND current_version < ?2";
static const char sql_commit_version[] =
    "INSERT INTO key_versions (key_id, version, creation_date, rotation_type) "
    "VALUES (?1, ?2, ?4, ?3)";
static const char sql_release[] =
    "UPDATE keys SET rotation_claim_date = 0, rotation_claim_type = '' "
    "WHERE key_id = ?1 AND rotation_claim = ?2";
static const char sql_list[] =
    "SELECT version, creation_date, rotation_type FROM key_versions "
    "WHERE key_id = ?1 AND version > ?2 AND version > 1 ORDER BY version LIMIT ?3";
static const char sql_usage[] =
    "UPDATE key_versions SET encryptions = encryptions + ?3 WHERE key_id = ?1 AND version = ?2 "
    "RETURNING encryptions";
static const char sql_due_rotation[] =
    "SELECT key_id, next_rotation_date FROM keys WHERE rotation_period_days > 0 "
    "  AND next_rotation_date <= ?1 AND key_state = 'Enabled' ORDER BY key_id";
static const char sql_due_usage[] =
    "SELECT k.key_id, v.encryptions FROM keys k JOIN key_versions v "
    "  ON v.key_id = k.key_id AND v.version = k.current_version "
    "WHERE v.encryptions >= ?1 AND k.key_state = 'Enabled' "
    "  AND k.key_spec = 'SYMMETRIC_DEFAULT' ORDER BY k.key_id";
static const char sql_due_abandoned[] =
    "SELECT key_id, rotation_claim_date FROM keys WHERE rotation_claim > 0 "
    "  AND rotation_claim_date > 0 AND rotation_claim_date < ?1 AND key_state = 'Enabled' "
    "ORDER BY key_id";
static const char sql_due_deletion[] =
    "SELECT key_id, deletion_date FROM keys WHERE key_state = 'PendingDeletion' "
    "  AND deletion_date <= ?1 ORDER BY key_id";
static const char sql_next_due[] =
    "SELECT min(d) FROM (SELECT min(next_rotation_date) AS d FROM keys "
    "  WHERE rotation_period_days > 0 AND key_state = 'Enabled' AND next_rotation_date > ?1 "
    "  UNION ALL SELECT min(deletion_date) FROM keys WHERE key_state = 'PendingDeletion' "
    "  AND deletion_date > ?1)";
static const char sql_state[] = "SELECT key_state, account_id, current_version FROM keys "
                                "WHERE key_id = ?1";
static const char sql_delete_aliases[] = "DELETE FROM aliases WHERE key_id = ?1";
static const char sql_delete_key[] = "DELETE FROM keys WHERE key_id = ?1";
static const char sql_deleted_insert[] =
    "INSERT INTO deleted_keys (key_id, account_id, deletion_date, versions) "
    "VALUES (?1, ?2, ?3, ?4)";
static const char sql_cancel[] =
    "UPDATE keys SET key_state = 'Disabled', deletion_date = 0, pending_window_days = 0 "
    "WHERE key_id = ?1 AND key_state = 'PendingDeletion' AND deletion_date > ?2";
static const char sql_deleted_get[] = "SELECT deletion_date FROM deleted_keys WHERE key_id = ?1";

/* ---- Rotation ----------------------------------------------------------------------------- */

static int rotation_row(kms_db_stmt *st, void *arg)
{
    kms_key_rotation *out = arg;
    out->period_days = (int)kms_db_column_int64(st, 0);
    out->next_rotation = kms_db_column_int64(st, 1);
    out->current_version = (uint32_t)kms_db_column_int64(st, 2);
    out->claimed_max = (uint32_t)kms_db_column_int64(st, 3);
    out->claim_date = kms_db_column_int64(st, 4);
    out->claim = out->claim_date > 0 ? out->claimed_max : 0;
    snprintf(out->claim_type, sizeof out->claim_type, "%s", kms_db_column_text(st, 5));
    out->on_demand_count = (unsigned)kms_db_column_int64(st, 6);
    out->encryptions = kms_db_column_int64(st, 7);
    return 0;
}

int kms_store_rotation_get(kms_store *store, const char *key_id, kms_key_rotation *out)
{
    memset(out, 0, sizeof *out);
    size_t found = 0;
    KMS_GUARD(kms_db_query(kms_store_db(store), sql_get, KMS_DB_PARAMS(kms_db_text(key_id)),
                           rotation_row, out, "cannot read the rotation state", &found));
    KMS_ENSURE(found == 1, KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
    return 0;
}

int kms_store_rotation_set(kms_store *store, const char *key_id, int period_days,
                           int64_t next_rotation)
{
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(
        kms_store_db(store), sql_set,
        KMS_DB_PARAMS(kms_db_text(key_id), kms_db_int64(period_days), kms_db_int64(next_rotation)),
        "cannot set the rotation period", &changes));
    KMS_ENSURE(changes == 1, KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
    return 0;
}

int kms_store_rotation_claim(kms_store *store, const char *key_id, const kms_rotation_claim *cl,
                             bool *won)
{
    *won = false;
    KMS_ENSURE(cl->version >= 2, KMS_ERR_VALIDATION, "a rotation makes version 2 or later");
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(kms_store_db(store), sql_claim,
                         KMS_DB_PARAMS(kms_db_text(key_id), kms_db_int64(cl->version),
                                       kms_db_text(cl->type), kms_db_int64(cl->now),
                                       kms_db_int64(cl->stale_before), kms_db_int64(cl->due_before),
                                       kms_db_int64(cl->usage_limit),
                                       kms_db_int64(KMS_ROTATION_ON_DEMAND_MAX)),
                         "cannot claim a rotation", &changes));
    *won = changes == 1;
    return 0;
}

/* ?1 key, ?2 version, ?3 type, ?4 now. */
typedef struct commit_args {
    const char *key_id;
    uint32_t version;
    const char *type;
    int64_t now;
} commit_args;

static int commit_locked(kms_db_conn *c, void *arg)
{
    const commit_args *a = arg;
    const char *what = "cannot commit a rotation";
    kms_db_params p = KMS_DB_PARAMS(kms_db_text(a->key_id), kms_db_int64(a->version),
                                    kms_db_text(a->type), kms_db_int64(a->now));
    int64_t changes = 0;
    KMS_GUARD(kms_db_conn_run(c, sql_commit_key, p, what, &changes));
    KMS_ENSURE(changes == 1, KMS_ERR_INVALID_STATE,
               "the rotation of key %s to version %u was taken over by another process", a->key_id,
               (unsigned)a->version);
    return kms_db_conn_run(c, sql_commit_version, p, what, NULL);
}

int kms_store_rotation_commit(kms_store *store, const char *key_id, uint32_t version,
                              const char *type, int64_t now)
{
    commit_args a = {key_id, version, type, now};
    return kms_db_write(kms_store_db(store), commit_locked, &a, "cannot commit a rotation");
}

int kms_store_rotation_release(kms_store *store, const char *key_id, uint32_t version)
{
    int64_t changes = 0;
    return kms_db_run(kms_store_db(store), sql_release,
                      KMS_DB_PARAMS(kms_db_text(key_id), kms_db_int64(version)),
                      "cannot release a rotation claim", &changes);
}

typedef struct version_row {
    uint32_t version;
    int64_t date;
    char type[16];
} version_row;

static int version_row_read(kms_db_stmt *st, void *item)
{
    version_row *v = item;
    v->version = (uint32_t)kms_db_column_int64(st, 0);
    v->date = kms_db_column_int64(st, 1);
    snprintf(v->type, sizeof v->type, "%s", kms_db_column_text(st, 2));
    return 0;
}

typedef struct version_visitor {
    kms_store_rotation_cb cb;
    void *arg;
} version_visitor;

static int version_visit(void *arg, const void *item)
{
    const version_visitor *v = arg;
    const version_row *row = item;
    return v->cb(v->arg, row->version, row->date, row->type);
}

int kms_store_rotation_list(kms_store *store, const char *key_id, uint32_t after, size_t limit,
                            kms_store_rotation_cb cb, void *arg, bool *truncated)
{
    *truncated = false;
    version_visitor visitor = {cb, arg};
    /* ?2 after, ?3 limit + 1 */
    kms_store_walk w = {.sql = sql_list,
                        .params = KMS_DB_PARAMS(kms_db_text(key_id), kms_db_int64(after),
                                                kms_db_int64(kms_store_fetch_limit(limit))),
                        .what = "cannot list rotations",
                        .item_size = sizeof(version_row),
                        .limit = limit,
                        .read = version_row_read,
                        .visit = version_visit,
                        .arg = &visitor};
    return kms_store_walk_rows(store, &w, truncated);
}

/* ---- Usage -------------------------------------------------------------------------------- */

typedef struct usage_args {
    const char *key_id;
    uint32_t version;
    int64_t n;
    int64_t total;
} usage_args;

static int usage_locked(kms_db_conn *c, void *arg)
{
    usage_args *u = arg;
    const char *what = "cannot count encryptions";
    kms_db_stmt *st = NULL;
    int found = kms_db_first(
        c, sql_usage,
        KMS_DB_PARAMS(kms_db_text(u->key_id), kms_db_int64(u->version), kms_db_int64(u->n)), &st,
        what);
    if (found <= 0) {
        return found < 0 ? -1
                         : kms_raise(KMS_ERR_NOT_FOUND, "key %s has no version %u", u->key_id,
                                     (unsigned)u->version);
    }
    u->total = kms_db_column_int64(st, 0);
    /* Finish the statement: RETURNING applies the change when it is stepped to the end. */
    return kms_db_exec(st, what);
}

int kms_store_usage_add(kms_store *store, const char *key_id, uint32_t version, int64_t n,
                        int64_t *total)
{
    usage_args u = {.key_id = key_id, .version = version, .n = n};
    KMS_GUARD(kms_db_write(kms_store_db(store), usage_locked, &u, "cannot count encryptions"));
    *total = u.total;
    return 0;
}

/* ---- Due work ----------------------------------------------------------------------------- */

typedef struct due_row {
    char key_id[37];
    int64_t when;
} due_row;

static int due_row_read(kms_db_stmt *st, void *item)
{
    due_row *d = item;
    snprintf(d->key_id, sizeof d->key_id, "%s", kms_db_column_text(st, 0));
    d->when = kms_db_column_int64(st, 1);
    return 0;
}

typedef struct due_visitor {
    kms_due_kind kind;
    kms_store_due_cb cb;
    void *arg;
} due_visitor;

static int due_visit(void *arg, const void *item)
{
    const due_visitor *v = arg;
    const due_row *row = item;
    return v->cb(v->arg, v->kind, row->key_id, row->when);
}

/* Collects (key id, date) rows of one due query, then calls cb outside the connection. */
static int due_query(kms_store *store, const char *sql, int64_t param, kms_due_kind kind,
                     kms_store_due_cb cb, void *arg)
{
    due_visitor visitor = {kind, cb, arg};
    kms_store_walk w = {.sql = sql,
                        .params = KMS_DB_PARAMS(kms_db_int64(param)),
                        .what = "cannot list the work that is due",
                        .item_size = sizeof(due_row),
                        .limit = SIZE_MAX,
                        .read = due_row_read,
                        .visit = due_visit,
                        .arg = &visitor};
    return kms_store_walk_rows(store, &w, NULL);
}

int kms_store_due_list(kms_store *store, int64_t now, int64_t usage_limit, int64_t stale_before,
                       kms_store_due_cb cb, void *arg)
{
    KMS_GUARD(due_query(store, sql_due_abandoned, stale_before, KMS_DUE_ABANDONED, cb, arg));
    KMS_GUARD(due_query(store, sql_due_deletion, now, KMS_DUE_DELETION, cb, arg));
    KMS_GUARD(due_query(store, sql_due_rotation, now, KMS_DUE_ROTATION, cb, arg));
    return usage_limit > 0 ? due_query(store, sql_due_usage, usage_limit, KMS_DUE_USAGE, cb, arg)
                           : 0;
}

/* The first column of the first row as an integer (NULL reads as 0). */
static int int_row(kms_db_stmt *st, void *arg)
{
    int64_t *v = arg;
    *v = kms_db_column_int64(st, 0);
    return 0;
}

int kms_store_next_due(kms_store *store, int64_t now, int64_t *when)
{
    *when = 0;
    size_t found = 0;
    return kms_db_query(kms_store_db(store), sql_next_due, KMS_DB_PARAMS(kms_db_int64(now)),
                        int_row, when, "cannot find the next due date", &found);
}

/* ---- Deletion ----------------------------------------------------------------------------- */

typedef struct delete_args {
    const char *key_id;
    int64_t now;
} delete_args;

static int key_delete_locked(kms_db_conn *c, void *arg)
{
    const delete_args *a = arg;
    const char *what = "cannot delete a key";
    char state[24] = "";
    char account[13] = "";
    kms_db_params key = KMS_DB_PARAMS(kms_db_text(a->key_id));
    kms_db_stmt *st = NULL;
    int found = kms_db_first(c, sql_state, key, &st, what);
    if (found <= 0) {
        return found < 0 ? -1 : kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", a->key_id);
    }
    snprintf(state, sizeof state, "%s", kms_db_column_text(st, 0));
    snprintf(account, sizeof account, "%s", kms_db_column_text(st, 1));
    int64_t versions = kms_db_column_int64(st, 2);
    kms_db_reset(st);
    KMS_ENSURE(strcmp(state, "PendingDeletion") == 0, KMS_ERR_INVALID_STATE,
               "key %s is %s, not pending deletion", a->key_id, state);
    /* Grants and versions go with the row (ON DELETE CASCADE); aliases do not cascade. */
    KMS_GUARD(kms_db_conn_run(c, sql_delete_aliases, key, what, NULL));
    KMS_GUARD(kms_db_conn_run(c, sql_delete_key, key, what, NULL));
    return kms_db_conn_run(c, sql_deleted_insert,
                           KMS_DB_PARAMS(kms_db_text(a->key_id), kms_db_text(account),
                                         kms_db_int64(a->now), kms_db_int64(versions)),
                           what, NULL);
}

int kms_store_key_delete(kms_store *store, const char *key_id, int64_t now)
{
    delete_args a = {key_id, now};
    return kms_db_write(kms_store_db(store), key_delete_locked, &a, "cannot delete a key");
}

int kms_store_deleted_get(kms_store *store, const char *key_id, int64_t *when)
{
    size_t found = 0;
    KMS_GUARD(kms_db_query(kms_store_db(store), sql_deleted_get, KMS_DB_PARAMS(kms_db_text(key_id)),
                           int_row, when, "cannot read deleted keys", &found));
    KMS_ENSURE(found == 1, KMS_ERR_NOT_FOUND, "key %s was never deleted", key_id);
    return 0;
}

int kms_store_key_cancel_deletion(kms_store *store, const char *key_id, int64_t now)
{
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(kms_store_db(store), sql_cancel,
                         KMS_DB_PARAMS(kms_db_text(key_id), kms_db_int64(now)),
                         "cannot cancel a key deletion", &changes));
    KMS_ENSURE(changes == 1, KMS_ERR_INVALID_STATE,
               "key %s is not pending deletion, or its deletion window has ended", key_id);
    return 0;
}
