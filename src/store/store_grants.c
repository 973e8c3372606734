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

static const char sql_replace_grantee[] =
    "UPDATE grants SET grantee_principal = ?2 WHERE grantee_principal = ?1";
static const char sql_replace_retiring[] =
    "UPDATE grants SET retiring_principal = ?2 WHERE retiring_principal = ?1";

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

static int grant_insert_locked(kms_db_conn *c, void *arg)
{
    const kms_grant_record *rec = arg;
    const char *what = "cannot insert grant";
    int found = kms_store_key_exists(c, rec->key_id, what);
    if (found <= 0) {
        return found < 0 ? -1 : kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", rec->key_id);
    }
    found = kms_db_conn_exists(c, sql_exists, KMS_DB_PARAMS(kms_db_text(rec->grant_id)), what);
    if (found != 0) {
        return found < 0
                   ? -1
                   : kms_raise(KMS_ERR_ALREADY_EXISTS, "grant %s already exists", rec->grant_id);
    }
    kms_db_value token_hash =
        rec->has_token_hash ? kms_db_blob(rec->token_hash, sizeof rec->token_hash) : kms_db_null();
    return kms_db_exec_sql(
        c, sql_insert,
        KMS_DB_PARAMS(kms_db_text(rec->grant_id), kms_db_text(rec->key_id),
                      kms_db_text(rec->name ? rec->name : ""), kms_db_text(rec->grantee_principal),
                      kms_db_text(rec->retiring_principal ? rec->retiring_principal : ""),
                      kms_db_text(rec->issuing_account), kms_db_text(rec->operations),
                      kms_db_text(rec->constraints ? rec->constraints : ""),
                      kms_db_int64(rec->creation_date), token_hash),
        what);
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
    KMS_GUARD(kms_db_query(kms_store_db(store), sql_get, KMS_DB_PARAMS(kms_db_text(grant_id)),
                           grant_row, out, "cannot read grant", &found));
    KMS_ENSURE(found > 0, KMS_ERR_NOT_FOUND, "grant %s does not exist", grant_id);
    return 0;
}

int kms_store_grant_delete(kms_store *store, const char *grant_id)
{
    KMS_ENSURE(grant_id != NULL, KMS_ERR_VALIDATION, "no grant id given");
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(kms_store_db(store), sql_delete, KMS_DB_PARAMS(kms_db_text(grant_id)),
                         "cannot delete grant", &changes));
    KMS_ENSURE(changes > 0, KMS_ERR_NOT_FOUND, "grant %s does not exist", grant_id);
    return 0;
}

/* Rows are read into memory first and the callbacks run after the connection went back, so
 * that a callback may use the store (kms_store_walk_rows). A listing stops at its limit; a find
 * (limit SIZE_MAX) does not. */
static int grant_item_read(kms_db_stmt *st, void *item)
{
    return row_read(st, item);
}

static void grant_item_clean_up(void *item)
{
    kms_grant_record_clean_up(item);
}

typedef struct grant_visitor {
    kms_store_grant_cb cb;
    void *arg;
} grant_visitor;

static int grant_visit(void *arg, const void *item)
{
    const grant_visitor *v = arg;
    return v->cb(v->arg, item);
}

static int grants_walk(kms_store *store, const char *sql, kms_db_params params, size_t limit,
                       kms_store_grant_cb cb, void *arg, bool *truncated)
{
    grant_visitor visitor = {cb, arg};
    kms_store_walk w = {.sql = sql,
                        .params = params,
                        .what = "cannot list grants",
                        .item_size = sizeof(kms_grant_record),
                        .limit = limit,
                        .read = grant_item_read,
                        .clean_up = grant_item_clean_up,
                        .visit = grant_visit,
                        .arg = &visitor};
    return kms_store_walk_rows(store, &w, truncated);
}

int kms_store_grant_list(kms_store *store, const char *key_id, const char *marker, size_t limit,
                         kms_store_grant_cb cb, void *arg, bool *truncated)
{
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    kms_db_value v[3];
    return grants_walk(store, sql_list, kms_store_list_params(v, marker, limit, key_id), limit, cb,
                       arg, truncated);
}

int kms_store_grant_list_retirable(kms_store *store, const char *retiring_principal,
                                   const char *marker, size_t limit, kms_store_grant_cb cb,
                                   void *arg, bool *truncated)
{
    KMS_ENSURE(retiring_principal != NULL && retiring_principal[0] != '\0', KMS_ERR_VALIDATION,
               "no retiring principal given");
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    kms_db_value v[3];
    return grants_walk(store, sql_list_retirable,
                       kms_store_list_params(v, marker, limit, retiring_principal), limit, cb, arg,
                       truncated);
}

int kms_store_grant_find(kms_store *store, const char *key_id, const char *grantee_principal,
                         kms_store_grant_cb cb, void *arg)
{
    KMS_ENSURE(key_id != NULL && grantee_principal != NULL, KMS_ERR_VALIDATION,
               "no key id or grantee given");
    return grants_walk(store, sql_find,
                       KMS_DB_PARAMS(kms_db_text(key_id), kms_db_text(grantee_principal)), SIZE_MAX,
                       cb, arg, NULL);
}

/* ---- Deleted principals ------------------------------------------------------------------- */

typedef struct replace {
    const char *principal;
    const char *replacement;
    int64_t changes;
} replace;

static int replace_locked(kms_db_conn *c, void *arg)
{
    replace *rp = arg;
    const char *what = "cannot rewrite grant principals";
    int64_t n = 0;
    KMS_GUARD(kms_db_conn_run(
        c, sql_replace_grantee,
        KMS_DB_PARAMS(kms_db_text(rp->principal), kms_db_text(rp->replacement)), what, &n));
    rp->changes = n;
    KMS_GUARD(kms_db_conn_run(
        c, sql_replace_retiring,
        KMS_DB_PARAMS(kms_db_text(rp->principal), kms_db_text(rp->replacement)), what, &n));
    rp->changes += n;
    return 0;
}

int kms_store_grant_principal_replace(kms_store *store, const char *principal,
                                      const char *replacement, int64_t *count)
{
    replace rp = {principal, replacement, 0};
    if (count != NULL) {
        *count = 0;
    }
    KMS_ENSURE(principal != NULL && principal[0] != '\0' && replacement != NULL &&
                   replacement[0] != '\0',
               KMS_ERR_VALIDATION, "no principal to replace in grants");
    KMS_GUARD(
        kms_db_write(kms_store_db(store), replace_locked, &rp, "cannot rewrite grant principals"));
    if (count != NULL) {
        *count = rp.changes;
    }
    return 0;
}
