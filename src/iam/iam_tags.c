/* Tags of IAM users and roles (TagUser ... ListRoleTags). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/util.h"

static const char sql_tags_of[] =
    "SELECT key, value FROM iam_tags WHERE entity_id = ?1 ORDER BY key";
static const char sql_tag_put[] =
    "INSERT INTO iam_tags (entity_id, key, value) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (entity_id, key) DO UPDATE SET value = excluded.value";
static const char sql_tag_count[] = "SELECT count(*) FROM iam_tags WHERE entity_id = ?1";

static json_t *tag_json(kms_db_stmt *st, const void *arg)
{
    (void)arg;
    json_t *t = json_pack("{s:s, s:s}", "Key", kms_db_column_text(st, 0), "Value",
                          kms_db_column_text(st, 1));
    if (t == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return t;
}

json_t *kms_iam_tags_json(iam_q *q, const char *entity_id)
{
    json_t *arr = json_array();
    kms_db_stmt *st = NULL;
    if (arr == NULL ||
        kms_db_open(q->c, sql_tags_of, KMS_DB_PARAMS(kms_db_text(entity_id)), &st) != 0 ||
        kms_iam_rows_append(st, tag_json, NULL, arr) != 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

int kms_iam_tags_insert(iam_q *q, const char *entity_id, const kms_iam_tag *tags, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        KMS_ENSURE(tags[i].key != NULL && tags[i].key[0] != '\0' && strlen(tags[i].key) <= 128 &&
                       strncmp(tags[i].key, "aws:", 4) != 0,
                   KMS_ERR_VALIDATION, "invalid tag key");
        KMS_ENSURE(tags[i].value != NULL && strlen(tags[i].value) <= 256, KMS_ERR_VALIDATION,
                   "invalid tag value for key %s", tags[i].key);
        KMS_GUARD(kms_db_exec_sql(q->c, sql_tag_put,
                                  KMS_DB_PARAMS(kms_db_text(entity_id), kms_db_text(tags[i].key),
                                                kms_db_text(tags[i].value)),
                                  IAM_SQL_WHAT));
    }
    int64_t count = 0;
    int s = kms_db_int(q->c, sql_tag_count, KMS_DB_PARAMS(kms_db_text(entity_id)), &count,
                       IAM_SQL_WHAT);
    KMS_GUARD(s < 0 ? -1 : 0);
    KMS_ENSURE(count <= 50, KMS_ERR_LIMIT_EXCEEDED,
               "The number of tags has reached the maximum limit.");
    return 0;
}

static const char sql_tag_delete[] = "DELETE FROM iam_tags WHERE entity_id = ?1 AND key = ?2";

int kms_iam_tags_add(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                     const kms_iam_tag *tags, size_t tag_count)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        kms_iam_tags_insert(&q, e.id, tags, tag_count) != 0 || kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_tags_remove(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                        const char *const *keys, size_t key_count)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0) {
        goto out;
    }
    for (size_t i = 0; i < key_count; i++) {
        if (kms_db_exec_sql(q.c, sql_tag_delete,
                            KMS_DB_PARAMS(kms_db_text(e.id), kms_db_text(keys[i])),
                            IAM_SQL_WHAT) != 0) {
            goto out;
        }
    }
    if (kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_tags_list(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                      json_t **out)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity e;
    int r = -1;
    json_t *tags = NULL;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        (tags = kms_iam_tags_json(&q, e.id)) == NULL) {
        goto out;
    }
    r = kms_iam_list_response(tags, "Tags", false, NULL, out);
out:
    kms_iam_end(&q);
    return r;
}
