/* Keys and their key policies in the metadata database (store.h "Keys"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"
#include "util/util.h"

#define KEY_COLUMNS                                                                                \
    "key_id, account_id, description, key_spec, key_usage, key_state, origin, creation_date, "     \
    "deletion_date, pending_window_days, current_version, public_key"

/* ?1 is always the key id; the listing binds the marker as ?1 ("" for the start: every id sorts
 * after it) and the row limit as ?2. */
static const char sql_key_insert[] =
    "INSERT INTO keys (" KEY_COLUMNS ", policy) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
static const char sql_version_insert[] =
    "INSERT INTO key_versions (key_id, version, creation_date, rotation_type) "
    "VALUES (?1, ?2, ?3, NULL)";
static const char sql_key_get[] =
    "SELECT " KEY_COLUMNS ", policy_version FROM keys WHERE key_id = ?1";
static const char sql_key_set_description[] = "UPDATE keys SET description = ?2 WHERE key_id = ?1";
static const char sql_key_set_state[] = "UPDATE keys SET key_state = ?2, deletion_date = ?3, "
                                        "pending_window_days = ?4 WHERE key_id = ?1";
static const char sql_key_list[] =
    "SELECT key_id FROM keys WHERE key_id > ?1 ORDER BY key_id LIMIT ?2";
static const char sql_policy_get[] = "SELECT policy, policy_version FROM keys WHERE key_id = ?1";
static const char sql_policy_put[] =
    "UPDATE keys SET policy = ?2, policy_version = policy_version + 1 WHERE key_id = ?1";

/* ---- Keys --------------------------------------------------------------------------------- */

void kms_key_record_clean_up(kms_key_record *rec)
{
    if (rec == NULL) {
        return;
    }
    free(rec->description);
    free(rec->public_key);
    free(rec->policy);
    memset(rec, 0, sizeof *rec);
}

static int key_record_check(const kms_key_record *rec)
{
    KMS_ENSURE(kms_store_field_ok(rec->key_id, sizeof rec->key_id), KMS_ERR_VALIDATION,
               "invalid key id for the metadata store");
    KMS_ENSURE(kms_store_field_ok(rec->account_id, sizeof rec->account_id) &&
                   kms_store_field_ok(rec->key_spec, sizeof rec->key_spec) &&
                   kms_store_field_ok(rec->key_usage, sizeof rec->key_usage) &&
                   kms_store_field_ok(rec->key_state, sizeof rec->key_state) &&
                   kms_store_field_ok(rec->origin, sizeof rec->origin),
               KMS_ERR_VALIDATION, "key %s: a metadata field is empty or too long", rec->key_id);
    KMS_ENSURE(kms_store_key_state_known(rec->key_state), KMS_ERR_VALIDATION,
               "key %s: unknown key state %s", rec->key_id, rec->key_state);
    KMS_ENSURE(rec->current_version == 1, KMS_ERR_VALIDATION,
               "key %s: a new key starts at material version 1", rec->key_id);
    KMS_ENSURE(rec->public_key_len == 0 || rec->public_key != NULL, KMS_ERR_VALIDATION,
               "key %s: public key length without data", rec->key_id);
    KMS_ENSURE(rec->public_key_len <= INT32_MAX, KMS_ERR_VALIDATION, "key %s: public key too long",
               rec->key_id);
    return 0;
}

static int key_bind_insert(kms_db_stmt *st, const kms_key_record *rec)
{
    KMS_GUARD(kms_db_bind_text(st, 1, rec->key_id));
    KMS_GUARD(kms_db_bind_text(st, 2, rec->account_id));
    KMS_GUARD(kms_db_bind_text(st, 3, rec->description ? rec->description : ""));
    KMS_GUARD(kms_db_bind_text(st, 4, rec->key_spec));
    KMS_GUARD(kms_db_bind_text(st, 5, rec->key_usage));
    KMS_GUARD(kms_db_bind_text(st, 6, rec->key_state));
    KMS_GUARD(kms_db_bind_text(st, 7, rec->origin));
    KMS_GUARD(kms_db_bind_int64(st, 8, rec->creation_date));
    KMS_GUARD(kms_db_bind_int64(st, 9, rec->deletion_date));
    KMS_GUARD(kms_db_bind_int64(st, 10, rec->pending_window_days));
    KMS_GUARD(kms_db_bind_int64(st, 11, rec->current_version));
    KMS_GUARD(kms_db_bind_text(st, 13, rec->policy ? rec->policy : ""));
    if (rec->public_key_len == 0) {
        return kms_db_bind_null(st, 12);
    }
    return kms_db_bind_blob(st, 12, rec->public_key, rec->public_key_len);
}

typedef struct insert_args {
    const kms_key_record *rec;
    const char *what;
    const char *exists;
} insert_args;

static int key_insert_locked(kms_db_conn *c, void *arg)
{
    const insert_args *a = arg;
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_prepare(c, sql_key_insert, &st));
    KMS_GUARD(key_bind_insert(st, a->rec));
    KMS_GUARD(kms_db_insert(st, a->what, a->exists));
    KMS_GUARD(kms_db_prepare(c, sql_version_insert, &st));
    KMS_GUARD(kms_db_bind_text(st, 1, a->rec->key_id));
    KMS_GUARD(kms_db_bind_int64(st, 2, a->rec->current_version));
    KMS_GUARD(kms_db_bind_int64(st, 3, a->rec->creation_date));
    return kms_db_insert(st, a->what, a->exists);
}

int kms_store_key_insert(kms_store *store, const kms_key_record *rec)
{
    KMS_GUARD(key_record_check(rec));
    char what[80];
    snprintf(what, sizeof what, "cannot insert key %s", rec->key_id);
    char exists[80];
    snprintf(exists, sizeof exists, "key %s already exists", rec->key_id);
    insert_args a = {rec, what, exists};
    return kms_db_write(kms_store_db(store), key_insert_locked, &a, what);
}

static int key_row_read(kms_db_stmt *st, kms_key_record *out, const char *subject)
{
    KMS_GUARD(kms_db_column_copy(st, 0, out->key_id, sizeof out->key_id, subject));
    KMS_GUARD(kms_db_column_copy(st, 1, out->account_id, sizeof out->account_id, subject));
    KMS_GUARD(kms_db_column_copy(st, 3, out->key_spec, sizeof out->key_spec, subject));
    KMS_GUARD(kms_db_column_copy(st, 4, out->key_usage, sizeof out->key_usage, subject));
    KMS_GUARD(kms_db_column_copy(st, 5, out->key_state, sizeof out->key_state, subject));
    KMS_GUARD(kms_db_column_copy(st, 6, out->origin, sizeof out->origin, subject));
    out->creation_date = kms_db_column_int64(st, 7);
    out->deletion_date = kms_db_column_int64(st, 8);
    out->pending_window_days = (int)kms_db_column_int64(st, 9);
    out->current_version = (uint32_t)kms_db_column_int64(st, 10);
    out->policy_version = kms_db_column_int64(st, 12);
    KMS_GUARD(kms_db_column_dup(st, 2, &out->description));
    return kms_db_column_blob_dup(st, 11, &out->public_key, &out->public_key_len);
}

int kms_store_key_get(kms_store *store, const char *key_id, kms_key_record *out)
{
    memset(out, 0, sizeof *out);
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    char what[80];
    snprintf(what, sizeof what, "cannot read key %s", key_id);
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_borrow(kms_store_db(store), &c));
    int r = -1;
    if ((r = kms_db_prepare(c, sql_key_get, &st)) != 0) {
        goto out;
    }
    if ((r = kms_db_bind_text(st, 1, key_id)) != 0) {
        goto out;
    }
    int found = kms_db_step(st, what);
    if (found <= 0) {
        r = found < 0 ? -1 : kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
        goto out;
    }
    r = key_row_read(st, out, key_id);
out:
    kms_db_return(c);
    if (r != 0) {
        kms_key_record_clean_up(out);
    }
    return r;
}

/* Runs an UPDATE of the key ?1 with `text` as ?2 and `n` further int64 parameters from ?3;
 * NotFoundException naming the key if no row changed. */
static int key_update(kms_store *store, const char *sql, const char *key_id, const char *text,
                      const int64_t *ints, size_t n)
{
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    char what[80];
    snprintf(what, sizeof what, "cannot update key %s", key_id);
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_borrow(kms_store_db(store), &c));
    int r = -1;
    if ((r = kms_db_prepare(c, sql, &st)) != 0) {
        goto out;
    }
    if ((r = kms_db_bind_text(st, 1, key_id)) != 0) {
        goto out;
    }
    if ((r = kms_db_bind_text(st, 2, text)) != 0) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((r = kms_db_bind_int64(st, (int)i + 3, ints[i])) != 0) {
            goto out;
        }
    }
    if ((r = kms_db_exec(st, what)) != 0) {
        goto out;
    }
    if (kms_db_changes(c) == 0) {
        r = kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
    }
out:
    kms_db_return(c);
    return r;
}

int kms_store_key_set_description(kms_store *store, const char *key_id, const char *description)
{
    return key_update(store, sql_key_set_description, key_id, description ? description : "", NULL,
                      0);
}

int kms_store_key_set_state(kms_store *store, const char *key_id, const char *state,
                            int64_t deletion_date, int pending_window_days)
{
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    KMS_ENSURE(state != NULL && kms_store_key_state_known(state), KMS_ERR_VALIDATION,
               "key %s: unknown key state %s", key_id, state ? state : "(null)");
    const int64_t ints[] = {deletion_date, pending_window_days};
    return key_update(store, sql_key_set_state, key_id, state, ints, 2);
}

/* ---- Key policies ------------------------------------------------------------------------- */

int kms_store_key_policy_get(kms_store *store, const char *key_id, char **doc, int64_t *version)
{
    *doc = NULL;
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    const char *what = "cannot read key policy";
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_borrow(kms_store_db(store), &c));
    int r = -1;
    if ((r = kms_db_prepare(c, sql_policy_get, &st)) != 0) {
        goto out;
    }
    if ((r = kms_db_bind_text(st, 1, key_id)) != 0) {
        goto out;
    }
    int found = kms_db_step(st, what);
    if (found <= 0) {
        r = found < 0 ? -1 : kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
        goto out;
    }
    if ((r = kms_db_column_dup(st, 0, doc)) != 0) {
        goto out;
    }
    if (version != NULL) {
        *version = kms_db_column_int64(st, 1);
    }
out:
    kms_db_return(c);
    return r;
}

int kms_store_key_policy_put(kms_store *store, const char *key_id, const char *doc)
{
    return key_update(store, sql_policy_put, key_id, doc ? doc : "", NULL, 0);
}

/* ---- Listing ------------------------------------------------------------------------------ */

typedef struct key_id_item {
    char key_id[37];
} key_id_item;

static int key_list_fetch(kms_store *store, const char *marker, size_t limit, kms_store_rows *rows,
                          bool *more)
{
    const char *what = "cannot list keys";
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_borrow(kms_store_db(store), &c));
    int r = -1;
    if ((r = kms_db_prepare(c, sql_key_list, &st)) != 0) {
        goto out;
    }
    if ((r = kms_db_bind_text(st, 1, marker ? marker : "")) != 0) {
        goto out;
    }
    if ((r = kms_db_bind_int64(st, 2, kms_store_fetch_limit(limit))) != 0) {
        goto out;
    }
    int s;
    while ((s = kms_db_step(st, what)) == 1) {
        if (rows->count == limit) {
            *more = true;
            break;
        }
        key_id_item item;
        if ((r = kms_db_column_copy(st, 0, item.key_id, sizeof item.key_id, "a key")) != 0) {
            goto out;
        }
        if ((r = kms_store_rows_push(rows, &item)) != 0) {
            goto out;
        }
    }
    r = s < 0 ? -1 : 0;
out:
    kms_db_return(c);
    return r;
}

int kms_store_key_list(kms_store *store, const char *marker, size_t limit, kms_store_key_cb cb,
                       void *arg, bool *truncated)
{
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    kms_store_rows rows = {.item_size = sizeof(key_id_item)};
    bool more = false;
    int r = -1;
    if (key_list_fetch(store, marker, limit, &rows, &more) != 0) {
        goto out;
    }
    const key_id_item *items = rows.items;
    for (size_t i = 0; i < rows.count; i++) {
        if (cb(arg, items[i].key_id) != 0) {
            goto out;
        }
    }
    if (truncated != NULL) {
        *truncated = more;
    }
    r = 0;
out:
    free(rows.items);
    return r;
}
