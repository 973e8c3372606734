/* Inline policies of users, groups and roles (Put/Get/Delete/List{User,Group,Role}Policy). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/util.h"

static const char sql_inline_put[] =
    "INSERT INTO iam_inline_policies (entity_id, name, document) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (entity_id, name) DO UPDATE SET document = excluded.document";
static const char sql_inline_get[] =
    "SELECT name, document FROM iam_inline_policies WHERE entity_id = ?1 AND name = ?2";
static const char sql_inline_delete[] =
    "DELETE FROM iam_inline_policies WHERE entity_id = ?1 AND name = ?2";
static const char sql_inline_list[] =
    "SELECT name FROM iam_inline_policies WHERE entity_id = ?1 AND name > ?2 "
    "ORDER BY name LIMIT ?3";

int kms_iam_inline_put(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                       const char *policy_name, const char *document)
{
    KMS_GUARD(kms_iam_name_check(policy_name, 128, "policyName"));
    KMS_ENSURE(document != NULL && document[0] != '\0', KMS_ERR_VALIDATION,
               "PolicyDocument must not be empty");
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        kms_db_exec_sql(
            q.c, sql_inline_put,
            KMS_DB_PARAMS(kms_db_text(e.id), kms_db_text(policy_name), kms_db_text(document)),
            IAM_SQL_WHAT) != 0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_inline_get(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                       const char *policy_name, json_t **out)
{
    KMS_GUARD(kms_iam_name_check(policy_name, 128, "policyName"));
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity e;
    int r = -1;
    kms_db_stmt *st = NULL;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0) {
        goto out;
    }
    int found =
        kms_db_first(q.c, sql_inline_get,
                     KMS_DB_PARAMS(kms_db_text(e.id), kms_db_text(policy_name)), &st, IAM_SQL_WHAT);
    if (found <= 0) {
        if (found == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The %s policy with name %s cannot be found.",
                      kms_iam_kind_name(kind), policy_name);
        }
        goto out;
    }
    char key[16];
    snprintf(key, sizeof key, "%sName", kms_iam_kind_title(kind));
    *out = json_pack("{s:s, s:s, s:s}", key, e.name, "PolicyName", kms_db_column_text(st, 0),
                     "PolicyDocument", kms_db_column_text(st, 1));
    if (*out == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_inline_delete(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                          const char *policy_name)
{
    KMS_GUARD(kms_iam_name_check(policy_name, 128, "policyName"));
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity e;
    int r = -1;
    if (kms_iam_entity_find(&q, account_id, kind, name, &e) != 0 ||
        kms_db_exec_sql(q.c, sql_inline_delete,
                        KMS_DB_PARAMS(kms_db_text(e.id), kms_db_text(policy_name)),
                        IAM_SQL_WHAT) != 0) {
        goto out;
    }
    if (kms_db_changes(q.c) == 0) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The %s policy with name %s cannot be found.",
                  kms_iam_kind_name(kind), policy_name);
        goto out;
    }
    if (kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

/* Pages the inline policy names of an entity into {"PolicyNames": [...], IsTruncated, Marker?}. */
static int name_page(iam_q *q, const char *entity_id, const char *marker, size_t max_items,
                     json_t **out)
{
    size_t max = kms_iam_max_items(max_items);
    json_t *items = json_array();
    KMS_ENSURE(items != NULL, KMS_ERR_INTERNAL, "out of memory");
    kms_db_stmt *st = NULL;
    char last[600] = "";
    bool truncated = false;
    int r = -1;
    if (kms_db_open(q->c, sql_inline_list,
                    KMS_DB_PARAMS(kms_db_text(entity_id), kms_db_text(marker ? marker : ""),
                                  kms_db_int64((int64_t)max + 1)),
                    &st) != 0) {
        goto out;
    }
    size_t n = 0;
    int s;
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        if (n == max) {
            truncated = true;
            break;
        }
        snprintf(last, sizeof last, "%s", kms_db_column_text(st, 0));
        if (json_array_append_new(items, json_string(kms_db_column_text(st, 0))) != 0) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        n++;
    }
    if (s < 0) {
        goto out;
    }
    r = kms_iam_list_response(items, "PolicyNames", truncated, last, out);
    items = NULL;
out:
    kms_db_reset(st);
    json_decref(items);
    return r;
}

int kms_iam_inline_list(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                        const char *marker, size_t max_items, json_t **out)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity e;
    int r = kms_iam_entity_find(&q, account_id, kind, name, &e);
    if (r == 0) {
        r = name_page(&q, e.id, marker, max_items, out);
    }
    kms_iam_end(&q);
    return r;
}
