/* Aliases of keys in the metadata database (store.h "Aliases"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"
#include "util/util.h"

#define ALIAS_COLUMNS "alias_name, key_id, creation_date, last_updated_date"

/* ?1 is always the alias name; lists bind the marker as ?1 ("" for the start) and the row limit
 * as ?2. */
static const char sql_alias_insert[] =
    "INSERT INTO aliases (" ALIAS_COLUMNS ") VALUES (?1, ?2, ?3, ?3)";
static const char sql_alias_update[] =
    "UPDATE aliases SET key_id = ?2, last_updated_date = ?3 WHERE alias_name = ?1";
static const char sql_alias_delete[] = "DELETE FROM aliases WHERE alias_name = ?1";
static const char sql_alias_get[] = "SELECT " ALIAS_COLUMNS " FROM aliases WHERE alias_name = ?1";
static const char sql_alias_list[] = "SELECT " ALIAS_COLUMNS " FROM aliases WHERE alias_name > ?1 "
                                     "ORDER BY alias_name LIMIT ?2";
static const char sql_alias_list_by_key[] = "SELECT " ALIAS_COLUMNS " FROM aliases "
                                            "WHERE key_id = ?3 AND alias_name > ?1 "
                                            "ORDER BY alias_name LIMIT ?2";

static int alias_name_check(const char *alias_name)
{
    KMS_ENSURE(alias_name != NULL &&
                   kms_store_field_ok(alias_name, sizeof((kms_alias_record *)0)->alias_name),
               KMS_ERR_VALIDATION, "invalid alias name for the metadata store");
    return 0;
}

static int key_id_check(const char *key_id)
{
    KMS_ENSURE(key_id != NULL && kms_store_field_ok(key_id, sizeof((kms_key_record *)0)->key_id),
               KMS_ERR_VALIDATION, "invalid key id for the metadata store");
    return 0;
}

/* ---- Writes ------------------------------------------------------------------------------- */

typedef struct write_args {
    const char *alias_name;
    const char *key_id;
    int64_t now;
    bool create;
    const char *what;
    const char *exists;
} write_args;

/* NotFoundException unless the key exists, then the one INSERT or UPDATE. */
static int alias_write_locked(kms_db_conn *c, void *arg)
{
    const write_args *a = arg;
    int found = kms_store_key_exists(c, a->key_id, a->what);
    if (found <= 0) {
        return found < 0
                   ? -1
                   : kms_raise(KMS_ERR_NOT_FOUND, "%s: key %s does not exist", a->what, a->key_id);
    }
    kms_db_params p =
        KMS_DB_PARAMS(kms_db_text(a->alias_name), kms_db_text(a->key_id), kms_db_int64(a->now));
    if (a->create) {
        return kms_db_insert_sql(c, sql_alias_insert, p, a->what, a->exists);
    }
    KMS_GUARD(kms_db_exec_sql(c, sql_alias_update, p, a->what));
    KMS_ENSURE(kms_db_changes(c) > 0, KMS_ERR_NOT_FOUND, "alias %s does not exist", a->alias_name);
    return 0;
}

/* CreateAlias and UpdateAlias. create: an existing alias is AlreadyExists; else a missing alias
 * is NotFound. */
static int alias_write(kms_store *store, const char *alias_name, const char *key_id, int64_t now,
                       bool create)
{
    KMS_GUARD(alias_name_check(alias_name));
    KMS_GUARD(key_id_check(key_id));
    char what[300];
    snprintf(what, sizeof what, "cannot %s alias %s", create ? "create" : "update", alias_name);
    char exists[300];
    snprintf(exists, sizeof exists, "alias %s already exists", alias_name);
    write_args a = {alias_name, key_id, now, create, what, exists};
    return kms_db_write(kms_store_db(store), alias_write_locked, &a, what);
}

int kms_store_alias_create(kms_store *store, const char *alias_name, const char *key_id,
                           int64_t now)
{
    return alias_write(store, alias_name, key_id, now, true);
}

int kms_store_alias_update(kms_store *store, const char *alias_name, const char *key_id,
                           int64_t now)
{
    return alias_write(store, alias_name, key_id, now, false);
}

int kms_store_alias_delete(kms_store *store, const char *alias_name)
{
    KMS_GUARD(alias_name_check(alias_name));
    char what[300];
    snprintf(what, sizeof what, "cannot delete alias %s", alias_name);
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(kms_store_db(store), sql_alias_delete,
                         KMS_DB_PARAMS(kms_db_text(alias_name)), what, &changes));
    KMS_ENSURE(changes > 0, KMS_ERR_NOT_FOUND, "alias %s does not exist", alias_name);
    return 0;
}

/* ---- Reads -------------------------------------------------------------------------------- */

static int alias_row_read(kms_db_stmt *st, kms_alias_record *out, const char *subject)
{
    KMS_GUARD(kms_db_column_copy(st, 0, out->alias_name, sizeof out->alias_name, subject));
    KMS_GUARD(kms_db_column_copy(st, 1, out->key_id, sizeof out->key_id, subject));
    out->creation_date = kms_db_column_int64(st, 2);
    out->last_updated_date = kms_db_column_int64(st, 3);
    return 0;
}

static int alias_row(kms_db_stmt *st, void *arg)
{
    kms_alias_record *out = arg;
    KMS_GUARD(alias_row_read(st, out, "an alias"));
    return 1;
}

int kms_store_alias_get(kms_store *store, const char *alias_name, kms_alias_record *out)
{
    memset(out, 0, sizeof *out);
    KMS_GUARD(alias_name_check(alias_name));
    size_t found = 0;
    int r = kms_db_query(kms_store_db(store), sql_alias_get, KMS_DB_PARAMS(kms_db_text(alias_name)),
                         alias_row, out, "cannot read alias", &found);
    if (r == 0 && found == 0) {
        r = kms_raise(KMS_ERR_NOT_FOUND, "alias %s does not exist", alias_name);
    }
    if (r != 0) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

static int alias_item_read(kms_db_stmt *st, void *item)
{
    return alias_row_read(st, item, "an alias");
}

typedef struct alias_visitor {
    kms_store_alias_cb cb;
    void *arg;
} alias_visitor;

static int alias_visit(void *arg, const void *item)
{
    const alias_visitor *v = arg;
    return v->cb(v->arg, item);
}

int kms_store_alias_list(kms_store *store, const char *key_id, const char *marker, size_t limit,
                         kms_store_alias_cb cb, void *arg, bool *truncated)
{
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    kms_db_value v[3];
    alias_visitor visitor = {cb, arg};
    kms_store_walk w = {.sql = key_id ? sql_alias_list_by_key : sql_alias_list,
                        .params = kms_store_list_params(v, marker, limit, key_id),
                        .what = "cannot list aliases",
                        .item_size = sizeof(kms_alias_record),
                        .limit = limit,
                        .read = alias_item_read,
                        .visit = alias_visit,
                        .arg = &visitor};
    return kms_store_walk_rows(store, &w, truncated);
}
