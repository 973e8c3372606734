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
static const char sql_key_exists[] = "SELECT 1 FROM keys WHERE key_id = ?1";
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
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_prepare(c, sql_key_exists, &st));
    KMS_GUARD(kms_db_bind_text(st, 1, a->key_id));
    int found = kms_db_step(st, a->what);
    kms_db_reset(st);
    if (found <= 0) {
        return found < 0
                   ? -1
                   : kms_raise(KMS_ERR_NOT_FOUND, "%s: key %s does not exist", a->what, a->key_id);
    }
    KMS_GUARD(kms_db_prepare(c, a->create ? sql_alias_insert : sql_alias_update, &st));
    KMS_GUARD(kms_db_bind_text(st, 1, a->alias_name));
    KMS_GUARD(kms_db_bind_text(st, 2, a->key_id));
    KMS_GUARD(kms_db_bind_int64(st, 3, a->now));
    if (a->create) {
        return kms_db_insert(st, a->what, a->exists);
    }
    KMS_GUARD(kms_db_exec(st, a->what));
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
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_borrow(kms_store_db(store), &c));
    int r = -1;
    if ((r = kms_db_prepare(c, sql_alias_delete, &st)) != 0) {
        goto out;
    }
    if ((r = kms_db_bind_text(st, 1, alias_name)) != 0) {
        goto out;
    }
    if ((r = kms_db_exec(st, what)) != 0) {
        goto out;
    }
    if (kms_db_changes(c) == 0) {
        r = kms_raise(KMS_ERR_NOT_FOUND, "alias %s does not exist", alias_name);
    }
out:
    kms_db_return(c);
    return r;
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

int kms_store_alias_get(kms_store *store, const char *alias_name, kms_alias_record *out)
{
    memset(out, 0, sizeof *out);
    KMS_GUARD(alias_name_check(alias_name));
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_borrow(kms_store_db(store), &c));
    int r = -1;
    if ((r = kms_db_prepare(c, sql_alias_get, &st)) != 0) {
        goto out;
    }
    if ((r = kms_db_bind_text(st, 1, alias_name)) != 0) {
        goto out;
    }
    int found = kms_db_step(st, "cannot read alias");
    if (found <= 0) {
        r = found < 0 ? -1 : kms_raise(KMS_ERR_NOT_FOUND, "alias %s does not exist", alias_name);
        goto out;
    }
    r = alias_row_read(st, out, alias_name);
out:
    kms_db_return(c);
    if (r != 0) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

static int alias_list_fetch(kms_store *store, const char *key_id, const char *marker, size_t limit,
                            kms_store_rows *rows, bool *more)
{
    const char *what = "cannot list aliases";
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_borrow(kms_store_db(store), &c));
    int r = -1;
    if ((r = kms_db_prepare(c, key_id ? sql_alias_list_by_key : sql_alias_list, &st)) != 0) {
        goto out;
    }
    if ((r = kms_db_bind_text(st, 1, marker ? marker : "")) != 0) {
        goto out;
    }
    if ((r = kms_db_bind_int64(st, 2, kms_store_fetch_limit(limit))) != 0) {
        goto out;
    }
    if (key_id != NULL && (r = kms_db_bind_text(st, 3, key_id)) != 0) {
        goto out;
    }
    int s;
    while ((s = kms_db_step(st, what)) == 1) {
        if (rows->count == limit) {
            *more = true;
            break;
        }
        kms_alias_record item;
        if ((r = alias_row_read(st, &item, "an alias")) != 0) {
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

int kms_store_alias_list(kms_store *store, const char *key_id, const char *marker, size_t limit,
                         kms_store_alias_cb cb, void *arg, bool *truncated)
{
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    kms_store_rows rows = {.item_size = sizeof(kms_alias_record)};
    bool more = false;
    int r = -1;
    if (alias_list_fetch(store, key_id, marker, limit, &rows, &more) != 0) {
        goto out;
    }
    const kms_alias_record *items = rows.items;
    for (size_t i = 0; i < rows.count; i++) {
        if (cb(arg, &items[i]) != 0) {
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
