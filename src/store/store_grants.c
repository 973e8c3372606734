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

static int grant_bind_insert(kms_db_stmt *st, const kms_grant_record *rec)
{
    KMS_GUARD(kms_db_bind_text(st, 1, rec->grant_id));
    KMS_GUARD(kms_db_bind_text(st, 2, rec->key_id));
    KMS_GUARD(kms_db_bind_text(st, 3, rec->name ? rec->name : ""));
    KMS_GUARD(kms_db_bind_text(st, 4, rec->grantee_principal));
    KMS_GUARD(kms_db_bind_text(st, 5, rec->retiring_principal ? rec->retiring_principal : ""));
    KMS_GUARD(kms_db_bind_text(st, 6, rec->issuing_account));
    KMS_GUARD(kms_db_bind_text(st, 7, rec->operations));
    KMS_GUARD(kms_db_bind_text(st, 8, rec->constraints ? rec->constraints : ""));
    KMS_GUARD(kms_db_bind_int64(st, 9, rec->creation_date));
    if (!rec->has_token_hash) {
        return kms_db_bind_null(st, 10);
    }
    return kms_db_bind_blob(st, 10, rec->token_hash, sizeof rec->token_hash);
}

static int grant_insert_locked(kms_db_conn *c, void *arg)
{
    const kms_grant_record *rec = arg;
    const char *what = "cannot insert grant";
    int found = kms_store_key_exists(c, rec->key_id, what);
    if (found <= 0) {
        return found < 0 ? -1 : kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", rec->key_id);
    }
    found = kms_db_conn_exists(c, sql_exists, rec->grant_id, what);
    if (found != 0) {
        return found < 0
                   ? -1
                   : kms_raise(KMS_ERR_ALREADY_EXISTS, "grant %s already exists", rec->grant_id);
    }
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_prepare(c, sql_insert, &st));
    KMS_GUARD(grant_bind_insert(st, rec));
    return kms_db_exec(st, what);
}

int kms_store_grant_insert(kms_store *store, const kms_grant_record *rec)
{
    KMS_ENSURE(fits(rec->grant_id, sizeof rec->grant_id) && fits(rec->key_id, sizeof rec->key_id) &&
                   fits(rec->issuing_account, sizeof rec->issuing_account) &&
                   rec->grantee_principal != NULL && rec->grantee_principal[0] != '\0' &&
                   rec->operations != NULL && rec->operations[0] != '\0',
               KMS_ERR_VALIDATION, "invalid grant for the metadata store");
    return kms_db_write(kms_store_db(store), grant_insert_locked, (void *)rec,
                        "cannot insert grant");
}

static int row_read(kms_db_stmt *st, kms_grant_record *out)
{
    memset(out, 0, sizeof *out);
    int r = -1;
    const char *subject = "a grant";
    if ((r = kms_db_column_copy(st, 0, out->grant_id, sizeof out->grant_id, subject)) != 0 ||
        (r = kms_db_column_copy(st, 1, out->key_id, sizeof out->key_id, subject)) != 0 ||
        (r = kms_db_column_copy(st, 5, out->issuing_account, sizeof out->issuing_account,
                                subject)) != 0) {
        goto out;
    }
    if ((r = kms_db_column_dup(st, 2, &out->name)) != 0 ||
        (r = kms_db_column_dup(st, 3, &out->grantee_principal)) != 0 ||
        (r = kms_db_column_dup(st, 4, &out->retiring_principal)) != 0 ||
        (r = kms_db_column_dup(st, 6, &out->operations)) != 0 ||
        (r = kms_db_column_dup(st, 7, &out->constraints)) != 0) {
        goto out;
    }
    out->creation_date = kms_db_column_int64(st, 8);
    const void *h = NULL;
    size_t h_len = 0;
    kms_db_column_blob(st, 9, &h, &h_len);
    if (h_len == sizeof out->token_hash) {
        memcpy(out->token_hash, h, sizeof out->token_hash);
        out->has_token_hash = true;
    }
out:
    if (r != 0) {
        kms_grant_record_clean_up(out);
    }
    return r;
}

static int bind_grant(kms_db_stmt *st, const void *arg)
{
    return kms_db_bind_text(st, 1, arg);
}

static int grant_row(kms_db_stmt *st, void *arg)
{
    KMS_GUARD(row_read(st, arg));
    return 1;
}

int kms_store_grant_get(kms_store *store, const char *grant_id, kms_grant_record *out)
{
    memset(out, 0, sizeof *out);
    KMS_ENSURE(grant_id != NULL, KMS_ERR_VALIDATION, "no grant id given");
    size_t found = 0;
    KMS_GUARD(kms_db_query(kms_store_db(store), sql_get, bind_grant, grant_id, grant_row, out,
                           "cannot read grant", &found));
    KMS_ENSURE(found > 0, KMS_ERR_NOT_FOUND, "grant %s does not exist", grant_id);
    return 0;
}

int kms_store_grant_delete(kms_store *store, const char *grant_id)
{
    KMS_ENSURE(grant_id != NULL, KMS_ERR_VALIDATION, "no grant id given");
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(kms_store_db(store), sql_delete, bind_grant, grant_id,
                         "cannot delete grant", &changes));
    KMS_ENSURE(changes > 0, KMS_ERR_NOT_FOUND, "grant %s does not exist", grant_id);
    return 0;
}

/* Rows are read into memory first and the callbacks run after the connection went back, so
 * that a callback may use the store. A listing stops at its limit; a find (limit 0) does not. */
static void rows_free(kms_store_rows *rows)
{
    kms_grant_record *items = rows->items;
    for (size_t i = 0; i < rows->count; i++) {
        kms_grant_record_clean_up(&items[i]);
    }
    free(rows->items);
}

static int grant_list_row(kms_db_stmt *st, void *arg)
{
    kms_store_page *pg = arg;
    if (pg->limit > 0 && pg->rows.count == pg->limit) {
        pg->more = true;
        return 1;
    }
    kms_grant_record rec;
    KMS_GUARD(row_read(st, &rec));
    if (kms_store_rows_push(&pg->rows, &rec) != 0) {
        kms_grant_record_clean_up(&rec);
        return -1;
    }
    return 0;
}

/* ?1 key, ?2 grantee (kms_store_grant_find). */
typedef struct find_params {
    const char *key_id;
    const char *grantee;
} find_params;

static int bind_find(kms_db_stmt *st, const void *arg)
{
    const find_params *p = arg;
    KMS_GUARD(kms_db_bind_text(st, 1, p->key_id));
    return kms_db_bind_text(st, 2, p->grantee);
}

static int rows_walk(kms_store *store, const char *sql, kms_db_bind_fn bind, const void *params,
                     size_t limit, kms_store_grant_cb cb, void *arg, bool *truncated)
{
    kms_store_page pg = {.rows = {.item_size = sizeof(kms_grant_record)}, .limit = limit};
    int r = -1;
    if (kms_db_query(kms_store_db(store), sql, bind, params, grant_list_row, &pg,
                     "cannot list grants", NULL) != 0) {
        goto out;
    }
    const kms_grant_record *items = pg.rows.items;
    for (size_t i = 0; i < pg.rows.count; i++) {
        if (cb(arg, &items[i]) != 0) {
            goto out;
        }
    }
    if (truncated != NULL) {
        *truncated = pg.more;
    }
    r = 0;
out:
    rows_free(&pg.rows);
    return r;
}

int kms_store_grant_list(kms_store *store, const char *key_id, const char *marker, size_t limit,
                         kms_store_grant_cb cb, void *arg, bool *truncated)
{
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    kms_store_list_params p = {.marker = marker, .limit = limit, .subject = key_id};
    return rows_walk(store, sql_list, kms_store_bind_list, &p, limit, cb, arg, truncated);
}

int kms_store_grant_list_retirable(kms_store *store, const char *retiring_principal,
                                   const char *marker, size_t limit, kms_store_grant_cb cb,
                                   void *arg, bool *truncated)
{
    KMS_ENSURE(retiring_principal != NULL && retiring_principal[0] != '\0', KMS_ERR_VALIDATION,
               "no retiring principal given");
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    kms_store_list_params p = {.marker = marker, .limit = limit, .subject = retiring_principal};
    return rows_walk(store, sql_list_retirable, kms_store_bind_list, &p, limit, cb, arg, truncated);
}

int kms_store_grant_find(kms_store *store, const char *key_id, const char *grantee_principal,
                         kms_store_grant_cb cb, void *arg)
{
    KMS_ENSURE(key_id != NULL && grantee_principal != NULL, KMS_ERR_VALIDATION,
               "no key id or grantee given");
    find_params p = {key_id, grantee_principal};
    return rows_walk(store, sql_find, bind_find, &p, 0, cb, arg, NULL);
}
