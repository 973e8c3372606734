/* Tags of keys in the metadata database (store.h "Tags"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"
#include "util/util.h"

/* ?1 is always the key id; the listing binds the marker as ?1 ("" for the start: every tag key
 * sorts after it), the row limit as ?2 and the key id as ?3. */
static const char sql_tag_put[] =
    "INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value";
static const char sql_tag_remove[] = "DELETE FROM key_tags WHERE key_id = ?1 AND tag_key = ?2";
static const char sql_tag_count[] = "SELECT count(*) FROM key_tags WHERE key_id = ?1";
static const char sql_tag_list[] = "SELECT tag_key, tag_value FROM key_tags "
                                   "WHERE key_id = ?3 AND tag_key > ?1 "
                                   "ORDER BY tag_key LIMIT ?2";
/* ?2 and ?3 say whether tags and aliases are wanted: one statement either way. */
static const char sql_attributes[] =
    "SELECT 0, tag_key, tag_value FROM key_tags WHERE ?2 AND key_id = ?1 "
    "UNION ALL SELECT 1, alias_name, '' FROM aliases WHERE ?3 AND key_id = ?1";

static int key_id_check(const char *key_id)
{
    KMS_ENSURE(key_id != NULL && kms_store_field_ok(key_id, sizeof((kms_key_record *)0)->key_id),
               KMS_ERR_VALIDATION, "invalid key id for the metadata store");
    return 0;
}

/* ---- Writes ------------------------------------------------------------------------------- */

typedef struct tags_args {
    const char *key_id;
    const kms_tag *tags;     /* put */
    const char *const *keys; /* remove */
    size_t n;
    const char *what;
} tags_args;

static int key_required(kms_db_conn *c, const tags_args *a)
{
    int found = kms_store_key_exists(c, a->key_id, a->what);
    if (found < 0) {
        return -1;
    }
    KMS_ENSURE(found > 0, KMS_ERR_NOT_FOUND, "key %s does not exist", a->key_id);
    return 0;
}

static int put_locked(kms_db_conn *c, void *arg)
{
    const tags_args *a = arg;
    KMS_GUARD(key_required(c, a));
    for (size_t i = 0; i < a->n; i++) {
        const kms_tag *t = &a->tags[i];
        KMS_ENSURE(t->key != NULL && t->key[0] != '\0', KMS_ERR_VALIDATION,
                   "a tag key must not be empty");
        KMS_GUARD(kms_db_conn_run(c, sql_tag_put,
                                  KMS_DB_PARAMS(kms_db_text(a->key_id), kms_db_text(t->key),
                                                kms_db_text(t->value ? t->value : "")),
                                  a->what, NULL));
    }
    int64_t count = 0;
    if (kms_db_int(c, sql_tag_count, KMS_DB_PARAMS(kms_db_text(a->key_id)), &count, a->what) < 0) {
        return -1;
    }
    /* KMS Developer Guide, "Quotas": 50 tags per KMS key. */
    KMS_ENSURE(count <= KMS_STORE_TAGS_MAX, KMS_ERR_LIMIT_EXCEEDED,
               "A KMS key can have at most %d tags; key %s would have %lld", KMS_STORE_TAGS_MAX,
               a->key_id, (long long)count);
    return 0;
}

int kms_store_tags_put(kms_store *store, const char *key_id, const kms_tag *tags, size_t n)
{
    KMS_GUARD(key_id_check(key_id));
    KMS_ENSURE(n == 0 || tags != NULL, KMS_ERR_VALIDATION, "no tags given");
    char what[80];
    snprintf(what, sizeof what, "cannot tag key %s", key_id);
    tags_args a = {.key_id = key_id, .tags = tags, .n = n, .what = what};
    return kms_db_write(kms_store_db(store), put_locked, &a, what);
}

static int remove_locked(kms_db_conn *c, void *arg)
{
    const tags_args *a = arg;
    KMS_GUARD(key_required(c, a));
    for (size_t i = 0; i < a->n; i++) {
        KMS_ENSURE(a->keys[i] != NULL, KMS_ERR_VALIDATION, "a tag key must not be NULL");
        KMS_GUARD(kms_db_conn_run(c, sql_tag_remove,
                                  KMS_DB_PARAMS(kms_db_text(a->key_id), kms_db_text(a->keys[i])),
                                  a->what, NULL));
    }
    return 0;
}

int kms_store_tags_remove(kms_store *store, const char *key_id, const char *const *keys, size_t n)
{
    KMS_GUARD(key_id_check(key_id));
    KMS_ENSURE(n == 0 || keys != NULL, KMS_ERR_VALIDATION, "no tag keys given");
    char what[80];
    snprintf(what, sizeof what, "cannot untag key %s", key_id);
    tags_args a = {.key_id = key_id, .keys = keys, .n = n, .what = what};
    return kms_db_write(kms_store_db(store), remove_locked, &a, what);
}

/* ---- Reads -------------------------------------------------------------------------------- */

typedef struct tag_item {
    char *key;
    char *value;
} tag_item;

static void tag_item_clean_up(void *item)
{
    tag_item *t = item;
    free(t->key);
    free(t->value);
    t->key = t->value = NULL;
}

static int tag_item_read(kms_db_stmt *st, void *item)
{
    tag_item *t = item;
    if (kms_db_column_dup(st, 0, &t->key) != 0 || kms_db_column_dup(st, 1, &t->value) != 0) {
        tag_item_clean_up(t);
        return -1;
    }
    return 0;
}

typedef struct tag_visitor {
    kms_store_tag_cb cb;
    void *arg;
} tag_visitor;

static int tag_visit(void *arg, const void *item)
{
    const tag_visitor *v = arg;
    const tag_item *t = item;
    return v->cb(v->arg, t->key, t->value);
}

int kms_store_tags_list(kms_store *store, const char *key_id, const char *marker, size_t limit,
                        kms_store_tag_cb cb, void *arg, bool *truncated)
{
    if (truncated != NULL) {
        *truncated = false;
    }
    KMS_GUARD(key_id_check(key_id));
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    kms_db_value v[3];
    tag_visitor visitor = {cb, arg};
    kms_store_walk w = {.sql = sql_tag_list,
                        .params = kms_store_list_params(v, marker, limit, key_id),
                        .what = "cannot list tags",
                        .item_size = sizeof(tag_item),
                        .limit = limit,
                        .read = tag_item_read,
                        .clean_up = tag_item_clean_up,
                        .visit = tag_visit,
                        .arg = &visitor};
    return kms_store_walk_rows(store, &w, truncated);
}

typedef struct attr_visitor {
    kms_store_attr_cb cb;
    void *arg;
} attr_visitor;

static int attr_row(kms_db_stmt *st, void *arg)
{
    const attr_visitor *v = arg;
    kms_store_attr_kind kind =
        kms_db_column_int64(st, 0) == 0 ? KMS_STORE_ATTR_TAG : KMS_STORE_ATTR_ALIAS;
    KMS_GUARD(v->cb(v->arg, kind, kms_db_column_text(st, 1), kms_db_column_text(st, 2)));
    return 0;
}

int kms_store_key_attributes(kms_store *store, const char *key_id, bool tags, bool aliases,
                             kms_store_attr_cb cb, void *arg)
{
    KMS_GUARD(key_id_check(key_id));
    if (!tags && !aliases) {
        return 0;
    }
    attr_visitor v = {cb, arg};
    return kms_db_query(
        kms_store_db(store), sql_attributes,
        KMS_DB_PARAMS(kms_db_text(key_id), kms_db_int64(tags), kms_db_int64(aliases)), attr_row, &v,
        "cannot read the tags and aliases of a key", NULL);
}
