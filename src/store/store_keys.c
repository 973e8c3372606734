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
static const char sql_key_exists[] = "SELECT 1 FROM keys WHERE key_id = ?1";
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
/* Every policy: the rewrite parses each one, as JSON may spell an ARN with escapes that a
 * search of the raw text would miss. */
static const char sql_policy_mentions[] = "SELECT key_id, policy FROM keys ORDER BY key_id";

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

typedef struct insert_args {
    const kms_key_record *rec;
    const char *what;
    const char *exists;
} insert_args;

static int key_insert_locked(kms_db_conn *c, void *arg)
{
    const insert_args *a = arg;
    const kms_key_record *rec = a->rec;
    kms_db_value public_key =
        rec->public_key_len > 0 ? kms_db_blob(rec->public_key, rec->public_key_len) : kms_db_null();
    KMS_GUARD(kms_db_insert_sql(
        c, sql_key_insert,
        KMS_DB_PARAMS(kms_db_text(rec->key_id), kms_db_text(rec->account_id),
                      kms_db_text(rec->description ? rec->description : ""),
                      kms_db_text(rec->key_spec), kms_db_text(rec->key_usage),
                      kms_db_text(rec->key_state), kms_db_text(rec->origin),
                      kms_db_int64(rec->creation_date), kms_db_int64(rec->deletion_date),
                      kms_db_int64(rec->pending_window_days), kms_db_int64(rec->current_version),
                      public_key, kms_db_text(rec->policy ? rec->policy : "")),
        a->what, a->exists));
    return kms_db_insert_sql(c, sql_version_insert,
                             KMS_DB_PARAMS(kms_db_text(rec->key_id),
                                           kms_db_int64(rec->current_version),
                                           kms_db_int64(rec->creation_date)),
                             a->what, a->exists);
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

typedef struct key_out {
    kms_key_record *rec;
    const char *key_id;
} key_out;

static int key_row(kms_db_stmt *st, void *arg)
{
    key_out *o = arg;
    KMS_GUARD(key_row_read(st, o->rec, o->key_id));
    return 1;
}

int kms_store_key_get(kms_store *store, const char *key_id, kms_key_record *out)
{
    memset(out, 0, sizeof *out);
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    char what[80];
    snprintf(what, sizeof what, "cannot read key %s", key_id);
    key_out o = {out, key_id};
    size_t found = 0;
    int r = kms_db_query(kms_store_db(store), sql_key_get, KMS_DB_PARAMS(kms_db_text(key_id)),
                         key_row, &o, what, &found);
    if (r == 0 && found == 0) {
        r = kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
    }
    if (r != 0) {
        kms_key_record_clean_up(out);
    }
    return r;
}

/* Runs an UPDATE of the key; NotFoundException naming the key if no row changed. */
static int key_update(kms_store *store, const char *sql, const char *key_id, kms_db_params p)
{
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    char what[80];
    snprintf(what, sizeof what, "cannot update key %s", key_id);
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(kms_store_db(store), sql, p, what, &changes));
    KMS_ENSURE(changes > 0, KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
    return 0;
}

int kms_store_key_set_description(kms_store *store, const char *key_id, const char *description)
{
    return key_update(
        store, sql_key_set_description, key_id,
        KMS_DB_PARAMS(kms_db_text(key_id), kms_db_text(description ? description : "")));
}

int kms_store_key_set_state(kms_store *store, const char *key_id, const char *state,
                            int64_t deletion_date, int pending_window_days)
{
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    KMS_ENSURE(state != NULL && kms_store_key_state_known(state), KMS_ERR_VALIDATION,
               "key %s: unknown key state %s", key_id, state ? state : "(null)");
    return key_update(store, sql_key_set_state, key_id,
                      KMS_DB_PARAMS(kms_db_text(key_id), kms_db_text(state),
                                    kms_db_int64(deletion_date),
                                    kms_db_int64(pending_window_days)));
}

int kms_store_key_exists(kms_db_conn *c, const char *key_id, const char *what)
{
    return kms_db_conn_exists(c, sql_key_exists, KMS_DB_PARAMS(kms_db_text(key_id)), what);
}

/* ---- Key policies ------------------------------------------------------------------------- */

typedef struct policy_out {
    char **doc;
    int64_t *version;
} policy_out;

static int policy_row(kms_db_stmt *st, void *arg)
{
    policy_out *o = arg;
    KMS_GUARD(kms_db_column_dup(st, 0, o->doc));
    if (o->version != NULL) {
        *o->version = kms_db_column_int64(st, 1);
    }
    return 1;
}

int kms_store_key_policy_get(kms_store *store, const char *key_id, char **doc, int64_t *version)
{
    *doc = NULL;
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    policy_out o = {doc, version};
    size_t found = 0;
    KMS_GUARD(kms_db_query(kms_store_db(store), sql_policy_get, KMS_DB_PARAMS(kms_db_text(key_id)),
                           policy_row, &o, "cannot read key policy", &found));
    KMS_ENSURE(found > 0, KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
    return 0;
}

int kms_store_key_policy_put(kms_store *store, const char *key_id, const char *doc)
{
    return key_update(store, sql_policy_put, key_id,
                      KMS_DB_PARAMS(kms_db_text(key_id), kms_db_text(doc ? doc : "")));
}

/* ---- Rewriting key policies ---------------------------------------------------------------- */

typedef struct rewritten {
    char key_id[37];
    char *doc;
} rewritten;

typedef struct rewrite {
    kms_store_policy_rewrite_fn fn;
    void *arg;
    rewritten *items;
    size_t n;
} rewrite;

static int rewrite_row(kms_db_stmt *st, void *arg)
{
    rewrite *rw = arg;
    char *doc = NULL;
    KMS_GUARD(rw->fn(rw->arg, kms_db_column_text(st, 1), &doc));
    if (doc == NULL) {
        return 0;
    }
    rewritten *grown = realloc(rw->items, (rw->n + 1) * sizeof *grown);
    if (grown == NULL) {
        free(doc);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    rw->items = grown;
    rw->items[rw->n].doc = doc;
    if (kms_db_column_copy(st, 0, rw->items[rw->n].key_id, sizeof rw->items[rw->n].key_id,
                           "a key") != 0) {
        free(doc);
        return -1;
    }
    rw->n++;
    return 0;
}

static int rewrite_locked(kms_db_conn *c, void *arg)
{
    rewrite *rw = arg;
    const char *what = "cannot rewrite key policies";
    /* Read every policy first, then write: no update while the query is open. */
    KMS_GUARD(
        kms_db_conn_query(c, sql_policy_mentions, KMS_DB_NO_PARAMS, rewrite_row, rw, what, NULL));
    for (size_t i = 0; i < rw->n; i++) {
        KMS_GUARD(kms_db_conn_run(
            c, sql_policy_put,
            KMS_DB_PARAMS(kms_db_text(rw->items[i].key_id), kms_db_text(rw->items[i].doc)), what,
            NULL));
    }
    return 0;
}

int kms_store_key_policy_rewrite(kms_store *store, kms_store_policy_rewrite_fn fn, void *arg,
                                 size_t *count)
{
    rewrite rw = {fn, arg, NULL, 0};
    if (count != NULL) {
        *count = 0;
    }
    KMS_ENSURE(fn != NULL, KMS_ERR_VALIDATION, "nothing to rewrite key policies with");
    int r = kms_db_write(kms_store_db(store), rewrite_locked, &rw, "cannot rewrite key policies");
    if (r == 0 && count != NULL) {
        *count = rw.n;
    }
    for (size_t i = 0; i < rw.n; i++) {
        free(rw.items[i].doc);
    }
    free(rw.items);
    return r;
}

/* ---- Listing ------------------------------------------------------------------------------ */

typedef struct key_id_item {
    char key_id[37];
} key_id_item;

static int key_item_read(kms_db_stmt *st, void *item)
{
    key_id_item *out = item;
    return kms_db_column_copy(st, 0, out->key_id, sizeof out->key_id, "a key");
}

typedef struct key_visitor {
    kms_store_key_cb cb;
    void *arg;
} key_visitor;

static int key_visit(void *arg, const void *item)
{
    const key_visitor *v = arg;
    const key_id_item *k = item;
    return v->cb(v->arg, k->key_id);
}

int kms_store_key_list(kms_store *store, const char *marker, size_t limit, kms_store_key_cb cb,
                       void *arg, bool *truncated)
{
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    kms_db_value v[3];
    key_visitor visitor = {cb, arg};
    kms_store_walk w = {.sql = sql_key_list,
                        .params = kms_store_list_params(v, marker, limit, NULL),
                        .what = "cannot list keys",
                        .item_size = sizeof(key_id_item),
                        .limit = limit,
                        .read = key_item_read,
                        .visit = key_visit,
                        .arg = &visitor};
    return kms_store_walk_rows(store, &w, truncated);
}
