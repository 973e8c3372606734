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

/* Binds "siii..." style: 's' text, 'i' int64, from a list of values. */
typedef struct bound {
    char kind;
    const char *s;
    int64_t i;
} bound;

#define T(x) ((bound){'s', (x), 0})
#define I(x) ((bound){'i', NULL, (int64_t)(x)})

static int prepare(kms_store *store, kms_store_conn *c, const char *sql, sqlite3_stmt **st,
                   const bound *b, size_t n)
{
    KMS_GUARD(kms_store_conn_prepare(store, c, sql, st));
    for (size_t k = 0; k < n; k++) {
        int rc = b[k].kind == 's'
                     ? sqlite3_bind_text(*st, (int)k + 1, b[k].s ? b[k].s : "", -1, SQLITE_STATIC)
                     : sqlite3_bind_int64(*st, (int)k + 1, b[k].i);
        if (rc != SQLITE_OK) {
            return kms_store_raise(store, c, rc, "cannot bind a rotation field");
        }
    }
    return 0;
}

#define PREPARE(store, c, sql, st, ...)                                                            \
    prepare(store, c, sql, st, (const bound[]){__VA_ARGS__},                                       \
            sizeof((const bound[]){__VA_ARGS__}) / sizeof(bound))

/* Runs a statement that returns no rows; *changes receives the rows it changed. */
static int run(kms_store *store, kms_store_conn *c, sqlite3_stmt *st, const char *what,
               int *changes)
{
    if (kms_store_step(store, c, st, what) < 0) {
        return -1;
    }
    if (changes != NULL) {
        *changes = sqlite3_changes(kms_store_conn_db(c));
    }
    return 0;
}

/* One write that returns no rows, on a connection of its own. BEGIN IMMEDIATE takes the write
 * lock first (waiting through the busy timeout): an autocommit write could instead fail at once
 * with SQLITE_BUSY when another process committed since its read began. */
static int exec1(kms_store *store, const char *sql, const bound *b, size_t n, const char *what,
                 int *changes)
{
    kms_store_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = kms_store_conn_begin(store, c);
    if (r == 0) {
        r = prepare(store, c, sql, &st, b, n);
    }
    if (r == 0) {
        r = run(store, c, st, what, changes);
    }
    if (r == 0) {
        r = kms_store_conn_commit(store, c);
    }
    if (r != 0) {
        kms_store_conn_rollback(c);
    }
    kms_store_conn_return(store, c);
    return r;
}

#define EXEC(store, sql, what, changes, ...)                                                       \
    exec1(store, sql, (const bound[]){__VA_ARGS__},                                                \
          sizeof((const bound[]){__VA_ARGS__}) / sizeof(bound), what, changes)

int kms_store_rotation_get(kms_store *store, const char *key_id, kms_key_rotation *out)
{
    memset(out, 0, sizeof *out);
    kms_store_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = PREPARE(store, c, sql_get, &st, T(key_id));
    int found = r == 0 ? kms_store_step(store, c, st, "cannot read the rotation state") : -1;
    if (found == 1) {
        out->period_days = sqlite3_column_int(st, 0);
        out->next_rotation = sqlite3_column_int64(st, 1);
        out->current_version = (uint32_t)sqlite3_column_int64(st, 2);
        out->claimed_max = (uint32_t)sqlite3_column_int64(st, 3);
        out->claim_date = sqlite3_column_int64(st, 4);
        out->claim = out->claim_date > 0 ? out->claimed_max : 0;
        const unsigned char *t = sqlite3_column_text(st, 5);
        snprintf(out->claim_type, sizeof out->claim_type, "%s", t ? (const char *)t : "");
        out->on_demand_count = (unsigned)sqlite3_column_int64(st, 6);
        out->encryptions = sqlite3_column_int64(st, 7);
    } else if (found == 0) {
        kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
    }
    kms_store_conn_return(store, c);
    return found == 1 ? 0 : -1;
}

int kms_store_rotation_set(kms_store *store, const char *key_id, int period_days,
                           int64_t next_rotation)
{
    int changes = 0;
    KMS_GUARD(EXEC(store, sql_set, "cannot set the rotation period", &changes, T(key_id),
                   I(period_days), I(next_rotation)));
    KMS_ENSURE(changes == 1, KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
    return 0;
}

int kms_store_rotation_claim(kms_store *store, const char *key_id, const kms_rotation_claim *cl,
                             bool *won)
{
    *won = false;
    KMS_ENSURE(cl->version >= 2, KMS_ERR_VALIDATION, "a rotation makes version 2 or later");
    int changes = 0;
    KMS_GUARD(EXEC(store, sql_claim, "cannot claim a rotation", &changes, T(key_id),
                   I(cl->version), T(cl->type), I(cl->now), I(cl->stale_before),
                   I(cl->due_before), I(cl->usage_limit), I(KMS_ROTATION_ON_DEMAND_MAX)));
    *won = changes == 1;
    return 0;
}

int kms_store_rotation_commit(kms_store *store, const char *key_id, uint32_t version,
                              const char *type, int64_t now)
{
    const char *what = "cannot commit a rotation";
    kms_store_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int changes = 0;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = -1;
    if (kms_store_conn_begin(store, c) != 0 ||
        PREPARE(store, c, sql_commit_key, &st, T(key_id), I(version), T(type), I(now)) != 0 ||
        run(store, c, st, what, &changes) != 0) {
        goto out;
    }
    if (changes != 1) {
        kms_raise(KMS_ERR_INVALID_STATE,
                  "the rotation of key %s to version %u was taken over by another process", key_id,
                  version);
        goto out;
    }
    if (PREPARE(store, c, sql_commit_version, &st, T(key_id), I(version), T(type), I(now)) != 0 ||
        run(store, c, st, what, NULL) != 0 || kms_store_conn_commit(store, c) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        kms_store_conn_rollback(c);
    }
    kms_store_conn_return(store, c);
    return r;
}

int kms_store_rotation_release(kms_store *store, const char *key_id, uint32_t version)
{
    return EXEC(store, sql_release, "cannot release a rotation claim", NULL, T(key_id),
                I(version));
}

int kms_store_rotation_list(kms_store *store, const char *key_id, uint32_t after, size_t limit,
                            kms_store_rotation_cb cb, void *arg, bool *truncated)
{
    typedef struct row {
        uint32_t version;
        int64_t date;
        char type[16];
    } row;
    *truncated = false;
    row *rows = calloc(limit + 1, sizeof *rows);
    KMS_ENSURE(rows != NULL, KMS_ERR_INTERNAL, "out of memory");
    kms_store_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    if (kms_store_conn_borrow(store, &c) != 0) {
        free(rows);
        return -1;
    }
    int r = PREPARE(store, c, sql_list, &st, T(key_id), I(after), I(limit + 1));
    int got = 0;
    while (r == 0 && (got = kms_store_step(store, c, st, "cannot list rotations")) == 1) {
        rows[n].version = (uint32_t)sqlite3_column_int64(st, 0);
        rows[n].date = sqlite3_column_int64(st, 1);
        const unsigned char *t = sqlite3_column_text(st, 2);
        snprintf(rows[n].type, sizeof rows[n].type, "%s", t ? (const char *)t : "");
        n++;
    }
    kms_store_conn_return(store, c);
    if (r != 0 || got < 0) {
        free(rows);
        return -1;
    }
    if (n > limit) {
        *truncated = true;
        n = limit;
    }
    /* Callbacks run with the connection returned: they may call the store. */
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = cb(arg, rows[i].version, rows[i].date, rows[i].type) != 0 ? -1 : 0;
    }
    free(rows);
    return r;
}

int kms_store_usage_add(kms_store *store, const char *key_id, uint32_t version, int64_t n,
                        int64_t *total)
{
    kms_store_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = kms_store_conn_begin(store, c); /* the write lock first, as exec1 */
    if (r == 0) {
        r = PREPARE(store, c, sql_usage, &st, T(key_id), I(version), I(n));
    }
    int found = r == 0 ? kms_store_step(store, c, st, "cannot count encryptions") : -1;
    if (found == 1) {
        *total = sqlite3_column_int64(st, 0);
        /* Finish the statement: RETURNING applies the change when it is stepped to the end. */
        found = kms_store_step(store, c, st, "cannot count encryptions") == 0 ? 1 : -1;
    } else if (found == 0) {
        kms_raise(KMS_ERR_NOT_FOUND, "key %s has no version %u", key_id, version);
    }
    if (found == 1 && kms_store_conn_commit(store, c) != 0) {
        found = -1;
    }
    if (found != 1) {
        kms_store_conn_rollback(c);
    }
    kms_store_conn_return(store, c);
    return found == 1 ? 0 : -1;
}

/* Collects (key id, date) rows of one due query, then calls cb outside the connection. */
static int due_query(kms_store *store, const char *sql, int64_t param, kms_due_kind kind,
                     kms_store_due_cb cb, void *arg)
{
    typedef struct row {
        char key_id[37];
        int64_t when;
    } row;
    row *rows = NULL;
    size_t n = 0, cap = 0;
    kms_store_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = PREPARE(store, c, sql, &st, I(param));
    int got = 0;
    while (r == 0 && (got = kms_store_step(store, c, st, "cannot list the work that is due")) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            row *more = realloc(rows, cap * sizeof *rows);
            if (more == NULL) {
                r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
                break;
            }
            rows = more;
        }
        const unsigned char *id = sqlite3_column_text(st, 0);
        snprintf(rows[n].key_id, sizeof rows[n].key_id, "%s", id ? (const char *)id : "");
        rows[n].when = sqlite3_column_int64(st, 1);
        n++;
    }
    kms_store_conn_return(store, c);
    if (got < 0) {
        r = -1;
    }
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = cb(arg, kind, rows[i].key_id, rows[i].when) != 0 ? -1 : 0;
    }
    free(rows);
    return r;
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

int kms_store_next_due(kms_store *store, int64_t now, int64_t *when)
{
    *when = 0;
    kms_store_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = PREPARE(store, c, sql_next_due, &st, I(now));
    int found = r == 0 ? kms_store_step(store, c, st, "cannot find the next due date") : -1;
    if (found == 1) {
        *when = sqlite3_column_int64(st, 0); /* NULL reads as 0: nothing due */
    }
    kms_store_conn_return(store, c);
    return found == 1 ? 0 : -1;
}

int kms_store_key_delete(kms_store *store, const char *key_id, int64_t now)
{
    const char *what = "cannot delete a key";
    kms_store_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    char state[24] = "";
    char account[13] = "";
    int64_t versions = 0;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = -1;
    if (kms_store_conn_begin(store, c) != 0 ||
        PREPARE(store, c, sql_state, &st, T(key_id)) != 0) {
        goto out;
    }
    int found = kms_store_step(store, c, st, what);
    if (found != 1) {
        if (found == 0) {
            kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
        }
        goto out;
    }
    snprintf(state, sizeof state, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(account, sizeof account, "%s", (const char *)sqlite3_column_text(st, 1));
    versions = sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    if (strcmp(state, "PendingDeletion") != 0) {
        kms_raise(KMS_ERR_INVALID_STATE, "key %s is %s, not pending deletion", key_id, state);
        goto out;
    }
    /* Grants and versions go with the row (ON DELETE CASCADE); aliases do not cascade. */
    if (PREPARE(store, c, sql_delete_aliases, &st, T(key_id)) != 0 ||
        run(store, c, st, what, NULL) != 0 ||
        PREPARE(store, c, sql_delete_key, &st, T(key_id)) != 0 ||
        run(store, c, st, what, NULL) != 0 ||
        PREPARE(store, c, sql_deleted_insert, &st, T(key_id), T(account), I(now), I(versions)) !=
            0 ||
        run(store, c, st, what, NULL) != 0 || kms_store_conn_commit(store, c) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        kms_store_conn_rollback(c);
    }
    kms_store_conn_return(store, c);
    return r;
}

int kms_store_deleted_get(kms_store *store, const char *key_id, int64_t *when)
{
    kms_store_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = PREPARE(store, c, sql_deleted_get, &st, T(key_id));
    int found = r == 0 ? kms_store_step(store, c, st, "cannot read deleted keys") : -1;
    if (found == 1) {
        *when = sqlite3_column_int64(st, 0);
    } else if (found == 0) {
        kms_raise(KMS_ERR_NOT_FOUND, "key %s was never deleted", key_id);
    }
    kms_store_conn_return(store, c);
    return found == 1 ? 0 : -1;
}

int kms_store_key_cancel_deletion(kms_store *store, const char *key_id, int64_t now)
{
    int changes = 0;
    KMS_GUARD(
        EXEC(store, sql_cancel, "cannot cancel a key deletion", &changes, T(key_id), I(now)));
    KMS_ENSURE(changes == 1, KMS_ERR_INVALID_STATE,
               "key %s is not pending deletion, or its deletion window has ended", key_id);
    return 0;
}
