/* Access keys of IAM users (CreateAccessKey ... GetAccessKeyLastUsed); their secrets are sealed
 * under the internal CMK. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam/iam_internal.h"
#include "util/secmem.h"
#include "util/util.h"

#define ACCESS_KEYS_MAX 2

static const char sql_key_count[] = "SELECT count(*) FROM iam_access_keys WHERE user_id = ?1";
static const char sql_key_insert[] =
    "INSERT INTO iam_access_keys (access_key_id, user_id, status, secret_sealed, creation_date) "
    "VALUES (?1, ?2, 'Active', ?3, ?4)";

int kms_iam_access_key_insert(iam_q *q, const iam_entity *user, int64_t now, char access_key_id[32],
                              char **secret)
{
    int64_t n = 0;
    int found =
        kms_db_int(q->c, sql_key_count, KMS_DB_PARAMS(kms_db_text(user->id)), &n, IAM_SQL_WHAT);
    KMS_GUARD(found < 0 ? -1 : 0);
    KMS_ENSURE(n < ACCESS_KEYS_MAX, KMS_ERR_LIMIT_EXCEEDED,
               "Cannot exceed quota for AccessKeysPerUser: %d", ACCESS_KEYS_MAX);
    char id[32];
    kms_iam_new_access_key_id(id, false);
    char purpose[64];
    snprintf(purpose, sizeof purpose, "iam:access-key:%s", id);
    char *s = NULL;
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    int r = -1;
    if (kms_iam_new_secret(&s) != 0 ||
        kms_iam_seal(q->iam, purpose, s, strlen(s), &ct, &ct_len) != 0 ||
        kms_db_exec_sql(q->c, sql_key_insert,
                        KMS_DB_PARAMS(kms_db_text(id), kms_db_text(user->id),
                                      kms_db_blob(ct, ct_len), kms_db_int64(now)),
                        IAM_SQL_WHAT) != 0) {
        goto out;
    }
    memcpy(access_key_id, id, sizeof id);
    *secret = s;
    s = NULL;
    r = 0;
out:
    kms_iam_secret_free(s);
    free(ct);
    return r;
}

int kms_iam_access_key_create(kms_iam *iam, const char *account_id, const char *user_name,
                              int64_t now, char access_key_id[32], char **secret, json_t **key)
{
    *secret = NULL;
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    char *s = NULL;
    json_t *o = NULL;
    int r = -1;
    if (kms_iam_user_or_root(&q, account_id, user_name, &u) != 0 ||
        kms_iam_access_key_insert(&q, &u, now, access_key_id, &s) != 0) {
        goto out;
    }
    if (key != NULL) {
        o = json_pack("{s:s, s:s, s:I}", "AccessKeyId", access_key_id, "Status", "Active",
                      "CreateDate", (json_int_t)now);
        if (o == NULL ||
            (!u.is_root && kms_iam_json_set(o, "UserName", json_string(u.name)) != 0)) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
    }
    if (kms_iam_commit(&q) != 0) {
        goto out;
    }
    *secret = s;
    s = NULL;
    if (key != NULL) {
        *key = o;
        o = NULL;
    }
    r = 0;
out:
    json_decref(o);
    kms_iam_secret_free(s);
    kms_iam_end(&q);
    return r;
}

static const char sql_key_list[] =
    "SELECT access_key_id, status, creation_date FROM iam_access_keys WHERE user_id = ?1 "
    "ORDER BY creation_date, access_key_id";

/* A row of ListAccessKeys (kms_iam_user_rows_list adds UserName). */
static json_t *key_json(kms_db_stmt *st, const void *arg)
{
    (void)arg;
    json_t *o =
        json_pack("{s:s, s:s, s:I}", "AccessKeyId", kms_db_column_text(st, 0), "Status",
                  kms_db_column_text(st, 1), "CreateDate", (json_int_t)kms_db_column_int64(st, 2));
    if (o == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return o;
}

int kms_iam_access_key_list(kms_iam *iam, const char *account_id, const char *user_name,
                            json_t **out)
{
    return kms_iam_user_rows_list(iam, account_id, user_name, sql_key_list, key_json,
                                  "AccessKeyMetadata", out);
}

static const char sql_key_update[] =
    "UPDATE iam_access_keys SET status = ?3 WHERE access_key_id = ?1 AND user_id = ?2";
static const char sql_key_delete[] =
    "DELETE FROM iam_access_keys WHERE access_key_id = ?1 AND user_id = ?2";

static int key_change(kms_iam *iam, const char *account_id, const char *user_name,
                      const char *access_key_id, const char *status)
{
    KMS_ENSURE(access_key_id != NULL && access_key_id[0] != '\0', KMS_ERR_VALIDATION,
               "AccessKeyId must not be empty");
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    int r = -1;
    if (kms_iam_user_or_root(&q, account_id, user_name, &u) != 0 ||
        (status ? kms_db_exec_sql(q.c, sql_key_update,
                                  KMS_DB_PARAMS(kms_db_text(access_key_id), kms_db_text(u.id),
                                                kms_db_text(status)),
                                  IAM_SQL_WHAT)
                : kms_db_exec_sql(q.c, sql_key_delete,
                                  KMS_DB_PARAMS(kms_db_text(access_key_id), kms_db_text(u.id)),
                                  IAM_SQL_WHAT)) != 0) {
        goto out;
    }
    if (kms_db_changes(q.c) == 0) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The Access Key with id %s cannot be found.",
                  access_key_id);
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

int kms_iam_access_key_update(kms_iam *iam, const char *account_id, const char *user_name,
                              const char *access_key_id, const char *status)
{
    KMS_ENSURE(status != NULL && (strcmp(status, "Active") == 0 || strcmp(status, "Inactive") == 0),
               KMS_ERR_VALIDATION,
               "1 validation error detected: Value at 'status' failed to satisfy constraint: "
               "Member must satisfy enum value set: [Active, Inactive]");
    return key_change(iam, account_id, user_name, access_key_id, status);
}

int kms_iam_access_key_delete(kms_iam *iam, const char *account_id, const char *user_name,
                              const char *access_key_id)
{
    return key_change(iam, account_id, user_name, access_key_id, NULL);
}

static const char sql_key_last_used[] =
    "SELECT u.name, u.is_root, k.last_used_date, k.last_used_service, k.last_used_region "
    "FROM iam_access_keys k JOIN iam_users u ON u.user_id = k.user_id "
    "WHERE k.access_key_id = ?1 AND u.account_id = ?2";

int kms_iam_access_key_last_used(kms_iam *iam, const char *account_id, const char *access_key_id,
                                 json_t **out)
{
    KMS_ENSURE(access_key_id != NULL, KMS_ERR_VALIDATION, "AccessKeyId must not be empty");
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    kms_db_stmt *st = NULL;
    json_t *o = NULL;
    int r = -1;
    int found = kms_db_first(q.c, sql_key_last_used,
                             KMS_DB_PARAMS(kms_db_text(access_key_id), kms_db_text(account_id)),
                             &st, IAM_SQL_WHAT);
    if (found <= 0) {
        if (found == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The Access Key with id %s cannot be found.",
                      access_key_id);
        }
        goto out;
    }
    int64_t when = kms_db_column_int64(st, 2);
    const char *service = kms_db_column_text(st, 3);
    const char *region = kms_db_column_text(st, 4);
    json_t *used = json_pack("{s:s, s:s}", "ServiceName", service[0] ? service : "N/A", "Region",
                             region[0] ? region : "N/A");
    o = json_object();
    if (used == NULL || o == NULL ||
        (when > 0 && kms_iam_json_set(used, "LastUsedDate", json_integer(when)) != 0) ||
        kms_iam_json_set(o, "AccessKeyLastUsed", used) != 0 ||
        (kms_db_column_int64(st, 1) == 0 &&
         kms_iam_json_set(o, "UserName", json_string(kms_db_column_text(st, 0))) != 0)) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    *out = o;
    o = NULL;
    r = 0;
out:
    json_decref(o);
    kms_iam_end(&q);
    return r;
}
