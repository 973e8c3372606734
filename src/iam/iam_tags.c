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

json_t *kms_iam_tags_json(iam_q *q, const char *entity_id)
{
    json_t *arr = json_array();
    sqlite3_stmt *st = NULL;
    if (arr == NULL || q_stmt(q, sql_tags_of, &st, "s", entity_id) != 0) {
        json_decref(arr);
        return NULL;
    }
    int s;
    while ((s = q_step(q, st)) == 1) {
        json_t *t = json_pack("{s:s, s:s}", "Key", col_s(st, 0), "Value", col_s(st, 1));
        if (t == NULL || json_array_append_new(arr, t) != 0) {
            s = kms_raise(KMS_ERR_INTERNAL, "out of memory");
            break;
        }
    }
    sqlite3_reset(st);
    if (s < 0) {
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
        KMS_GUARD(q_exec(q, sql_tag_put, "sss", entity_id, tags[i].key, tags[i].value));
    }
    int64_t count = 0;
    KMS_GUARD(q_int(q, sql_tag_count, &count, "s", entity_id));
    KMS_ENSURE(count <= 50, KMS_ERR_LIMIT_EXCEEDED,
               "The number of tags has reached the maximum limit.");
    return 0;
}
static const char sql_tag_delete[] = "DELETE FROM iam_tags WHERE entity_id = ?1 AND key = ?2";

int kms_iam_tags_add(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                     const kms_iam_tag *tags, size_t tag_count)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        kms_iam_tags_insert(&q, e.id, tags, tag_count) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_tags_remove(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                        const char *const *keys, size_t key_count)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0) {
        goto out;
    }
    for (size_t i = 0; i < key_count; i++) {
        if (q_exec(&q, sql_tag_delete, "ss", e.id, keys[i]) != 0) {
            goto out;
        }
    }
    if (q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_tags_list(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                      json_t **out)
{
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    iam_entity e;
    int r = -1;
    json_t *tags = NULL;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        (tags = kms_iam_tags_json(&q, e.id)) == NULL) {
        goto out;
    }
    r = kms_iam_list_response(tags, "Tags", false, NULL, out);
out:
    q_end(&q);
    return r;
}
