/* Grants of customer master keys, in the metadata database. A grant is an allow-only permission
 * the gate consults after the key policy and IAM policies did not allow (the kms_store_grant_find
 * lookup is served by the grants_by_key index). Grant tokens are kept only as SHA-256. */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"
#include "util/util.h"

#define GRANT_COLUMNS                                                                              \
    "grant_id, key_id, name, grantee_principal, retiring_principal, issuing_account, "             \
    "operations, constraints, creation_date, token_hash"

static const char sql_insert[] = "INSERT INTO grants (" GRANT_COLUMNS ") "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
static const char sql_exists[] = "SELECT 1 FROM grants WHERE grant_id = ?1";
static const char sql_key_exists[] = "SELECT 1 FROM keys WHERE key_id = ?1";
static const char sql_get[] = "SELECT " GRANT_COLUMNS " FROM grants WHERE grant_id = ?1";
static const char sql_delete[] = "DELETE FROM grants WHERE grant_id = ?1";
static const char sql_list[] = "SELECT " GRANT_COLUMNS " FROM grants WHERE key_id = ?3 AND "
                               "grant_id > ?1 ORDER BY grant_id LIMIT ?2";
static const char sql_list_retirable[] = "SELECT " GRANT_COLUMNS " FROM grants "
                                         "WHERE retiring_principal = ?3 AND grant_id > ?1 "
                                         "ORDER BY grant_id LIMIT ?2";
static const char sql_find[] = "SELECT " GRANT_COLUMNS " FROM grants "
                               "WHERE key_id = ?1 AND grantee_principal = ?2 ORDER BY grant_id";

void kms_grant_record_clean_up(kms_grant_record *rec)
{
    if (rec == NULL) {
        return;
    }
    free(rec->name);
    free(rec->grantee_principal);
    free(rec->retiring_principal);
    free(rec->operations);
    free(rec->constraints);
    memset(rec, 0, sizeof *rec);
}

static bool fits(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    return n > 0 && n < size;
}

static int bind_text(kms_store *store, kms_store_conn *c, sqlite3_stmt *st, int i, const char *s)
{
    int rc = sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : kms_store_raise(store, c, rc, "cannot bind a grant field");
}

int kms_store_grant_insert(kms_store *store, const kms_grant_record *rec)
{
    KMS_ENSURE(fits(rec->grant_id, sizeof rec->grant_id) && fits(rec->key_id, sizeof rec->key_id) &&
                   fits(rec->issuing_account, sizeof rec->issuing_account) &&
                   rec->grantee_principal != NULL && rec->grantee_principal[0] != '\0' &&
                   rec->operations != NULL && rec->operations[0] != '\0',
               KMS_ERR_VALIDATION, "invalid grant for the metadata store");
    const char *what = "cannot insert grant";
    kms_store_conn *c = NULL;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (kms_store_conn_begin(store, c) != 0 ||
        kms_store_conn_prepare(store, c, sql_key_exists, &st) != 0 ||
        bind_text(store, c, st, 1, rec->key_id) != 0) {
        goto out;
    }
    int found = kms_store_step(store, c, st, what);
    if (found <= 0) {
        if (found == 0) {
            kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", rec->key_id);
        }
        goto out;
    }
    if (kms_store_conn_prepare(store, c, sql_exists, &st) != 0 ||
        bind_text(store, c, st, 1, rec->grant_id) != 0) {
        goto out;
    }
    found = kms_store_step(store, c, st, what);
    if (found != 0) {
        if (found == 1) {
            kms_raise(KMS_ERR_ALREADY_EXISTS, "grant %s already exists", rec->grant_id);
        }
        goto out;
    }
    if (kms_store_conn_prepare(store, c, sql_insert, &st) != 0 ||
        bind_text(store, c, st, 1, rec->grant_id) != 0 ||
        bind_text(store, c, st, 2, rec->key_id) != 0 ||
        bind_text(store, c, st, 3, rec->name) != 0 ||
        bind_text(store, c, st, 4, rec->grantee_principal) != 0 ||
        bind_text(store, c, st, 5, rec->retiring_principal) != 0 ||
        bind_text(store, c, st, 6, rec->issuing_account) != 0 ||
        bind_text(store, c, st, 7, rec->operations) != 0 ||
        bind_text(store, c, st, 8, rec->constraints) != 0) {
        goto out;
    }
    int rc = sqlite3_bind_int64(st, 9, rec->creation_date);
    if (rc == SQLITE_OK) {
        rc = rec->has_token_hash
                 ? sqlite3_bind_blob(st, 10, rec->token_hash, sizeof rec->token_hash, SQLITE_STATIC)
                 : sqlite3_bind_null(st, 10);
    }
    if (rc != SQLITE_OK) {
        kms_store_raise(store, c, rc, what);
        goto out;
    }
    if (kms_store_step(store, c, st, what) < 0 || kms_store_conn_commit(store, c) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_store_conn_return(store, c); /* rolls back on failure */
    return r;
}

static char *dup_column(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return strdup(t ? (const char *)t : "");
}

static int row_read(sqlite3_stmt *st, kms_grant_record *out)
{
    memset(out, 0, sizeof *out);
    const unsigned char *id = sqlite3_column_text(st, 0);
    const unsigned char *key = sqlite3_column_text(st, 1);
    const unsigned char *acct = sqlite3_column_text(st, 5);
    KMS_ENSURE(id && key && acct && strlen((const char *)id) < sizeof out->grant_id &&
                   strlen((const char *)key) < sizeof out->key_id &&
                   strlen((const char *)acct) < sizeof out->issuing_account,
               KMS_ERR_HOME, "the metadata database holds an invalid grant");
    strcpy(out->grant_id, (const char *)id);
    strcpy(out->key_id, (const char *)key);
    strcpy(out->issuing_account, (const char *)acct);
    out->name = dup_column(st, 2);
    out->grantee_principal = dup_column(st, 3);
    out->retiring_principal = dup_column(st, 4);
    out->operations = dup_column(st, 6);
    out->constraints = dup_column(st, 7);
    out->creation_date = sqlite3_column_int64(st, 8);
    const void *h = sqlite3_column_blob(st, 9);
    if (h != NULL && sqlite3_column_bytes(st, 9) == (int)sizeof out->token_hash) {
        memcpy(out->token_hash, h, sizeof out->token_hash);
        out->has_token_hash = true;
    }
    if (!out->name || !out->grantee_principal || !out->retiring_principal || !out->operations ||
        !out->constraints) {
        kms_grant_record_clean_up(out);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

int kms_store_grant_get(kms_store *store, const char *grant_id, kms_grant_record *out)
{
    memset(out, 0, sizeof *out);
    KMS_ENSURE(grant_id != NULL, KMS_ERR_VALIDATION, "no grant id given");
    kms_store_conn *c = NULL;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (kms_store_conn_prepare(store, c, sql_get, &st) != 0 ||
        bind_text(store, c, st, 1, grant_id) != 0) {
        goto out;
    }
    int found = kms_store_step(store, c, st, "cannot read grant");
    if (found <= 0) {
        if (found == 0) {
            kms_raise(KMS_ERR_NOT_FOUND, "grant %s does not exist", grant_id);
        }
        goto out;
    }
    if (row_read(st, out) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_store_conn_return(store, c);
    return r;
}

int kms_store_grant_delete(kms_store *store, const char *grant_id)
{
    KMS_ENSURE(grant_id != NULL, KMS_ERR_VALIDATION, "no grant id given");
    kms_store_conn *c = NULL;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (kms_store_conn_prepare(store, c, sql_delete, &st) != 0 ||
        bind_text(store, c, st, 1, grant_id) != 0 ||
        kms_store_step(store, c, st, "cannot delete grant") < 0) {
        goto out;
    }
    if (sqlite3_changes(kms_store_conn_db(c)) == 0) {
        kms_raise(KMS_ERR_NOT_FOUND, "grant %s does not exist", grant_id);
        goto out;
    }
    r = 0;
out:
    kms_store_conn_return(store, c);
    return r;
}

/* Rows are read into memory first and the callbacks run after the connection went back, so
 * that a callback may use the store. */
typedef struct grant_rows {
    kms_grant_record *items;
    size_t count;
    size_t cap;
} grant_rows;

static void rows_free(grant_rows *rows)
{
    for (size_t i = 0; i < rows->count; i++) {
        kms_grant_record_clean_up(&rows->items[i]);
    }
    free(rows->items);
}

/* sql binds: ?1 marker, ?2 limit, ?3 subject (list kinds); or ?1 key, ?2 grantee (find). */
static int rows_fetch(kms_store *store, const char *sql, const char *a, const char *b,
                      const char *subject, size_t limit, grant_rows *rows, bool *more)
{
    kms_store_conn *c = NULL;
    KMS_GUARD(kms_store_conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (kms_store_conn_prepare(store, c, sql, &st) != 0 || bind_text(store, c, st, 1, a) != 0) {
        goto out;
    }
    if (subject != NULL) {
        int64_t fetch = limit >= (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit + 1;
        int rc = sqlite3_bind_int64(st, 2, fetch);
        if (rc != SQLITE_OK) {
            kms_store_raise(store, c, rc, "cannot list grants");
            goto out;
        }
        if (bind_text(store, c, st, 3, subject) != 0) {
            goto out;
        }
    } else if (bind_text(store, c, st, 2, b) != 0) {
        goto out;
    }
    int found;
    while ((found = kms_store_step(store, c, st, "cannot list grants")) == 1) {
        if (subject != NULL && rows->count == limit) {
            *more = true;
            break;
        }
        if (rows->count == rows->cap) {
            size_t cap = rows->cap ? rows->cap * 2 : 8;
            kms_grant_record *p = realloc(rows->items, cap * sizeof *p);
            if (p == NULL) {
                kms_raise(KMS_ERR_INTERNAL, "out of memory");
                goto out;
            }
            rows->items = p;
            rows->cap = cap;
        }
        if (row_read(st, &rows->items[rows->count]) != 0) {
            goto out;
        }
        rows->count++;
    }
    if (found < 0) {
        goto out;
    }
    r = 0;
out:
    kms_store_conn_return(store, c);
    return r;
}

static int rows_walk(kms_store *store, const char *sql, const char *a, const char *b,
                     const char *subject, size_t limit, kms_store_grant_cb cb, void *arg,
                     bool *truncated)
{
    grant_rows rows = {0};
    bool more = false;
    int r = -1;
    if (rows_fetch(store, sql, a, b, subject, limit, &rows, &more) != 0) {
        goto out;
    }
    for (size_t i = 0; i < rows.count; i++) {
        if (cb(arg, &rows.items[i]) != 0) {
            goto out;
        }
    }
    if (truncated != NULL) {
        *truncated = more;
    }
    r = 0;
out:
    rows_free(&rows);
    return r;
}

int kms_store_grant_list(kms_store *store, const char *key_id, const char *marker, size_t limit,
                         kms_store_grant_cb cb, void *arg, bool *truncated)
{
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    return rows_walk(store, sql_list, marker ? marker : "", NULL, key_id, limit, cb, arg,
                     truncated);
}

int kms_store_grant_list_retirable(kms_store *store, const char *retiring_principal,
                                   const char *marker, size_t limit, kms_store_grant_cb cb,
                                   void *arg, bool *truncated)
{
    KMS_ENSURE(retiring_principal != NULL && retiring_principal[0] != '\0', KMS_ERR_VALIDATION,
               "no retiring principal given");
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    return rows_walk(store, sql_list_retirable, marker ? marker : "", NULL, retiring_principal,
                     limit, cb, arg, truncated);
}

int kms_store_grant_find(kms_store *store, const char *key_id, const char *grantee_principal,
                         kms_store_grant_cb cb, void *arg)
{
    KMS_ENSURE(key_id != NULL && grantee_principal != NULL, KMS_ERR_VALIDATION,
               "no key id or grantee given");
    return rows_walk(store, sql_find, key_id, grantee_principal, NULL, 0, cb, arg, NULL);
}
