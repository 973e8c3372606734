/* Customer and AWS managed policies and their versions (CreatePolicy ... SetDefaultPolicyVersion).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/util.h"

#define POLICY_VERSIONS_MAX 5

/* ---- Managed policies --------------------------------------------------------------------- */

/* Attachments counted within the caller's account (AWS managed policies are shared). */
#define POLICY_COLUMNS                                                                             \
    "p.policy_id, p.account_id, p.arn, p.name, p.path, p.description, p.default_version, "         \
    "p.creation_date, p.update_date, "                                                             \
    "(SELECT count(*) FROM iam_attachments a WHERE a.policy_id = p.policy_id AND a.entity_id IN "  \
    "(SELECT user_id FROM iam_users WHERE account_id = ?1 UNION ALL SELECT group_id FROM "         \
    "iam_groups WHERE account_id = ?1 UNION ALL SELECT role_id FROM iam_roles WHERE account_id "   \
    "= ?1)), "                                                                                     \
    "(SELECT count(*) FROM iam_users u WHERE u.boundary_id = p.policy_id AND u.account_id = ?1) "  \
    "+ (SELECT count(*) FROM iam_roles r WHERE r.boundary_id = p.policy_id AND r.account_id = "    \
    "?1)"

static const char sql_policy_get[] = "SELECT " POLICY_COLUMNS " FROM iam_policies p "
                                     "WHERE p.policy_id = ?2";
static const char sql_policy_list[] =
    "SELECT " POLICY_COLUMNS " FROM iam_policies p "
    "WHERE (p.account_id = ?1 OR p.account_id = 'aws') AND (?2 = 'All' OR (?2 = 'AWS' AND "
    "p.account_id = 'aws') OR (?2 = 'Local' AND p.account_id = ?1)) AND p.arn > ?3 AND "
    "substr(p.path, 1, length(?4)) = ?4 ORDER BY p.arn";
static const char sql_policy_insert[] =
    "INSERT INTO iam_policies (policy_id, account_id, arn, name, path, description, "
    "default_version, next_version, creation_date, update_date) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 2, ?7, ?7)";
static const char sql_policy_name_taken[] =
    "SELECT 1 FROM iam_policies WHERE account_id = ?1 AND name = ?2";
static const char sql_version_insert[] =
    "INSERT INTO iam_policy_versions (policy_id, version, document, creation_date) "
    "VALUES (?1, ?2, ?3, ?4)";

static json_t *policy_row_json(kms_db_stmt *st)
{
    char version[24];
    snprintf(version, sizeof version, "v%" PRId64, (int64_t)kms_db_column_int64(st, 6));
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:I, s:I}", "PolicyName",
                  kms_db_column_text(st, 3), "PolicyId", kms_db_column_text(st, 0), "Arn",
                  kms_db_column_text(st, 2), "Path", kms_db_column_text(st, 4), "DefaultVersionId",
                  version, "AttachmentCount", (json_int_t)kms_db_column_int64(st, 9),
                  "PermissionsBoundaryUsageCount", (json_int_t)kms_db_column_int64(st, 10),
                  "IsAttachable", 1, "CreateDate", (json_int_t)kms_db_column_int64(st, 7),
                  "UpdateDate", (json_int_t)kms_db_column_int64(st, 8));
    if (o != NULL && kms_db_column_text(st, 5)[0] != '\0' &&
        json_object_set_new(o, "Description", json_string(kms_db_column_text(st, 5))) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (o == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return o;
}

static int policy_json(iam_q *q, const char *account_id, const char *policy_id, json_t **out)
{
    kms_db_stmt *st = NULL;
    int found = kms_db_first(q->c, sql_policy_get,
                             KMS_DB_PARAMS(kms_db_text(account_id), kms_db_text(policy_id)), &st,
                             IAM_SQL_WHAT);
    KMS_GUARD(found < 0 ? -1 : 0);
    KMS_ENSURE(found == 1, KMS_ERR_NO_SUCH_ENTITY, "Policy %s was not found.", policy_id);
    *out = policy_row_json(st);
    kms_db_reset(st);
    return *out != NULL ? 0 : -1;
}

int kms_iam_policy_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                          const char *description, const char *document, int64_t now, char id[32])
{
    KMS_GUARD(kms_iam_account_check(account_id));
    KMS_GUARD(kms_iam_name_check(name, 128, "policyName"));
    KMS_GUARD(kms_iam_path_or_root(path, "path", &path));
    KMS_ENSURE(description == NULL || strlen(description) <= 1000, KMS_ERR_VALIDATION,
               "Description is longer than 1000 characters");
    KMS_ENSURE(document != NULL && document[0] != '\0', KMS_ERR_VALIDATION,
               "PolicyDocument must not be empty");
    kms_db_stmt *st = NULL;
    int taken =
        kms_db_first(q->c, sql_policy_name_taken,
                     KMS_DB_PARAMS(kms_db_text(account_id), kms_db_text(name)), &st, IAM_SQL_WHAT);
    KMS_GUARD(taken < 0 ? -1 : 0);
    KMS_ENSURE(taken == 0, KMS_ERR_ENTITY_EXISTS,
               "A policy called %s already exists. Duplicate names are not allowed.", name);
    char arn[700];
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:policy%s%s", account_id, path, name);
    kms_iam_random_id(id, 32, "ANPA", 17, IAM_B32);
    KMS_GUARD(kms_db_exec_sql(q->c, sql_policy_insert,
                              KMS_DB_PARAMS(kms_db_text(id), kms_db_text(account_id),
                                            kms_db_text(arn), kms_db_text(name), kms_db_text(path),
                                            kms_db_text(description ? description : ""),
                                            kms_db_int64(now)),
                              IAM_SQL_WHAT));
    return kms_db_exec_sql(
        q->c, sql_version_insert,
        KMS_DB_PARAMS(kms_db_text(id), kms_db_int64(1), kms_db_text(document), kms_db_int64(now)),
        IAM_SQL_WHAT);
}

int kms_iam_policy_create(kms_iam *iam, const char *account_id, const char *path,
                          const char *policy_name, const char *description, const char *document,
                          int64_t now, json_t **policy)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    char id[32];
    json_t *o = NULL;
    int r = -1;
    if (kms_iam_policy_insert(&q, account_id, path, policy_name, description, document, now, id) !=
            0 ||
        (policy != NULL && policy_json(&q, account_id, id, &o) != 0) || kms_iam_commit(&q) != 0) {
        goto out;
    }
    if (policy != NULL) {
        *policy = o;
        o = NULL;
    }
    r = 0;
out:
    json_decref(o);
    kms_iam_end(&q);
    return r;
}

int kms_iam_policy_get(kms_iam *iam, const char *account_id, const char *policy_arn,
                       json_t **policy)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    char id[32];
    int r = kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id);
    if (r == 0) {
        r = policy_json(&q, account_id, id, policy);
    }
    kms_iam_end(&q);
    return r;
}

int kms_iam_policy_list(kms_iam *iam, const char *account_id, const char *scope, bool only_attached,
                        const char *path_prefix, const char *marker, size_t max_items, json_t **out)
{
    scope = scope ? scope : "All";
    KMS_ENSURE(strcmp(scope, "All") == 0 || strcmp(scope, "AWS") == 0 ||
                   strcmp(scope, "Local") == 0,
               KMS_ERR_VALIDATION, "Scope must be one of All, AWS, Local");
    size_t max = kms_iam_max_items(max_items);
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    json_t *items = json_array();
    kms_db_stmt *st = NULL;
    char last[700] = "";
    bool truncated = false;
    int r = -1;
    if (items == NULL || kms_db_open(q.c, sql_policy_list,
                                     KMS_DB_PARAMS(kms_db_text(account_id), kms_db_text(scope),
                                                   kms_db_text(marker ? marker : ""),
                                                   kms_db_text(path_prefix ? path_prefix : "/")),
                                     &st) != 0) {
        goto out;
    }
    size_t n = 0;
    int s;
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        if (only_attached && kms_db_column_int64(st, 9) == 0) {
            continue;
        }
        if (n == max) {
            truncated = true;
            break;
        }
        json_t *o = policy_row_json(st);
        if (o == NULL) {
            goto out;
        }
        if (json_array_append_new(items, o) != 0) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        snprintf(last, sizeof last, "%s", kms_db_column_text(st, 2));
        n++;
    }
    if (s < 0) {
        goto out;
    }
    r = kms_iam_list_response(items, "Policies", truncated, last, out);
    items = NULL;
out:
    json_decref(items);
    kms_iam_end(&q);
    return r;
}

static const char sql_policy_owner[] = "SELECT account_id FROM iam_policies WHERE policy_id = ?1";
static const char sql_policy_attached_anywhere[] =
    "SELECT count(*) FROM iam_attachments WHERE policy_id = ?1";
static const char sql_policy_boundary_anywhere[] =
    "SELECT (SELECT count(*) FROM iam_users WHERE boundary_id = ?1) + "
    "(SELECT count(*) FROM iam_roles WHERE boundary_id = ?1)";
static const char sql_policy_versions_other[] =
    "SELECT count(*) FROM iam_policy_versions v JOIN iam_policies p ON p.policy_id = v.policy_id "
    "WHERE v.policy_id = ?1 AND v.version <> p.default_version";
static const char sql_policy_delete[] = "DELETE FROM iam_policies WHERE policy_id = ?1";

/* A customer managed policy of account_id that the caller may change: AWS managed ones are
 * InvalidInput. */
static int own_policy(iam_q *q, const char *account_id, const char *arn, char id[32])
{
    KMS_GUARD(kms_iam_policy_id_by_arn(q, account_id, arn, id));
    kms_db_stmt *st = NULL;
    int found =
        kms_db_first(q->c, sql_policy_owner, KMS_DB_PARAMS(kms_db_text(id)), &st, IAM_SQL_WHAT);
    KMS_GUARD(found < 0 ? -1 : 0);
    bool aws = found == 1 && strcmp(kms_db_column_text(st, 0), "aws") == 0;
    kms_db_reset(st);
    KMS_ENSURE(!aws, KMS_ERR_INVALID_INPUT, "AWS managed policy %s cannot be changed.", arn);
    return 0;
}

int kms_iam_policy_delete(kms_iam *iam, const char *account_id, const char *policy_arn)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    char id[32];
    int r = -1;
    if (own_policy(&q, account_id, policy_arn, id) != 0 ||
        kms_iam_conflict_if(&q, sql_policy_attached_anywhere, id, "detach all policies") != 0 ||
        kms_iam_conflict_if(&q, sql_policy_boundary_anywhere, id,
                            "remove the policy as a permissions boundary") != 0 ||
        kms_iam_conflict_if(&q, sql_policy_versions_other, id, "delete all non-default versions") !=
            0 ||
        kms_db_exec_sql(q.c, sql_policy_delete, KMS_DB_PARAMS(kms_db_text(id)), IAM_SQL_WHAT) !=
            0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

static const char sql_policy_by_arn[] =
    "SELECT policy_id FROM iam_policies WHERE arn = ?1 AND (account_id = ?2 OR account_id = 'aws')";

int kms_iam_policy_id_by_arn(iam_q *q, const char *account_id, const char *arn, char id[32])
{
    KMS_ENSURE(arn != NULL && arn[0] != '\0', KMS_ERR_VALIDATION, "PolicyArn must not be empty");
    kms_db_stmt *st = NULL;
    int found =
        kms_db_first(q->c, sql_policy_by_arn,
                     KMS_DB_PARAMS(kms_db_text(arn), kms_db_text(account_id)), &st, IAM_SQL_WHAT);
    KMS_GUARD(found < 0 ? -1 : 0);
    KMS_ENSURE(found == 1, KMS_ERR_NO_SUCH_ENTITY, "Policy %s does not exist or is not attachable.",
               arn);
    int r = kms_db_column_copy(st, 0, id, 32, IAM_SQL_SUBJECT);
    kms_db_reset(st);
    return r;
}

/* ---- Policy versions ---------------------------------------------------------------------- */

static const char sql_version_count[] =
    "SELECT count(*) FROM iam_policy_versions WHERE policy_id = ?1";
static const char sql_next_version[] = "SELECT next_version FROM iam_policies WHERE policy_id = ?1";
static const char sql_policy_bump_version[] =
    "UPDATE iam_policies SET next_version = next_version + 1, update_date = ?2, "
    "default_version = CASE WHEN ?3 THEN next_version ELSE default_version END "
    "WHERE policy_id = ?1";
static const char sql_version_get[] =
    "SELECT v.version, v.document, v.creation_date, p.default_version FROM iam_policy_versions v "
    "JOIN iam_policies p ON p.policy_id = v.policy_id WHERE v.policy_id = ?1 AND v.version = ?2";
static const char sql_version_list[] =
    "SELECT v.version, v.document, v.creation_date, p.default_version FROM iam_policy_versions v "
    "JOIN iam_policies p ON p.policy_id = v.policy_id WHERE v.policy_id = ?1 "
    "ORDER BY v.version DESC";
static const char sql_version_delete[] =
    "DELETE FROM iam_policy_versions WHERE policy_id = ?1 AND version = ?2";
static const char sql_set_default[] =
    "UPDATE iam_policies SET default_version = ?2 WHERE policy_id = ?1";

static int version_parse(const char *version_id, int64_t *out)
{
    KMS_ENSURE(version_id != NULL && version_id[0] == 'v' && version_id[1] >= '1' &&
                   version_id[1] <= '9' && strlen(version_id) < 12,
               KMS_ERR_VALIDATION, "invalid policy version id %s",
               version_id ? version_id : "(null)");
    char *end = NULL;
    long long v = strtoll(version_id + 1, &end, 10);
    KMS_ENSURE(*end == '\0', KMS_ERR_VALIDATION, "invalid policy version id %s", version_id);
    *out = v;
    return 0;
}

static json_t *version_row_json(kms_db_stmt *st, bool with_document)
{
    char version[24];
    int64_t v = kms_db_column_int64(st, 0);
    snprintf(version, sizeof version, "v%" PRId64, v);
    json_t *o = json_pack("{s:s, s:b, s:I}", "VersionId", version, "IsDefaultVersion",
                          v == kms_db_column_int64(st, 3), "CreateDate",
                          (json_int_t)kms_db_column_int64(st, 2));
    if (o != NULL && with_document &&
        json_object_set_new(o, "Document", json_string(kms_db_column_text(st, 1))) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (o == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return o;
}

/* A row of ListPolicyVersions (no document). */
static json_t *version_list_json(kms_db_stmt *st, const void *arg)
{
    (void)arg;
    return version_row_json(st, false);
}

static int version_json(iam_q *q, const char *id, int64_t v, bool with_document, json_t **out)
{
    kms_db_stmt *st = NULL;
    int found = kms_db_first(q->c, sql_version_get, KMS_DB_PARAMS(kms_db_text(id), kms_db_int64(v)),
                             &st, IAM_SQL_WHAT);
    KMS_GUARD(found < 0 ? -1 : 0);
    KMS_ENSURE(found == 1, KMS_ERR_NO_SUCH_ENTITY, "Policy version v%" PRId64 " does not exist.",
               v);
    *out = version_row_json(st, with_document);
    kms_db_reset(st);
    return *out ? 0 : -1;
}

int kms_iam_policy_version_create(kms_iam *iam, const char *account_id, const char *policy_arn,
                                  const char *document, bool set_as_default, int64_t now,
                                  json_t **version)
{
    KMS_ENSURE(document != NULL && document[0] != '\0', KMS_ERR_VALIDATION,
               "PolicyDocument must not be empty");
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    char id[32];
    int64_t count = 0, next = 0;
    json_t *o = NULL;
    int r = -1;
    if (own_policy(&q, account_id, policy_arn, id) != 0 ||
        kms_db_int(q.c, sql_version_count, KMS_DB_PARAMS(kms_db_text(id)), &count, IAM_SQL_WHAT) <
            0) {
        goto out;
    }
    if (count >= POLICY_VERSIONS_MAX) {
        kms_raise(KMS_ERR_LIMIT_EXCEEDED,
                  "A managed policy can have up to 5 versions. Before you create a new version, "
                  "you must delete an existing version.");
        goto out;
    }
    if (kms_db_int(q.c, sql_next_version, KMS_DB_PARAMS(kms_db_text(id)), &next, IAM_SQL_WHAT) <
            0 ||
        kms_db_exec_sql(q.c, sql_version_insert,
                        KMS_DB_PARAMS(kms_db_text(id), kms_db_int64(next), kms_db_text(document),
                                      kms_db_int64(now)),
                        IAM_SQL_WHAT) != 0 ||
        kms_db_exec_sql(q.c, sql_policy_bump_version,
                        KMS_DB_PARAMS(kms_db_text(id), kms_db_int64(now),
                                      kms_db_int64((int64_t)set_as_default)),
                        IAM_SQL_WHAT) != 0 ||
        (version != NULL && version_json(&q, id, next, false, &o) != 0) ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    if (version != NULL) {
        *version = o;
        o = NULL;
    }
    r = 0;
out:
    json_decref(o);
    kms_iam_end(&q);
    return r;
}

int kms_iam_policy_version_get(kms_iam *iam, const char *account_id, const char *policy_arn,
                               const char *version_id, json_t **version)
{
    int64_t v = 0;
    KMS_GUARD(version_parse(version_id, &v));
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    char id[32];
    int r = kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id);
    if (r == 0) {
        r = version_json(&q, id, v, true, version);
    }
    kms_iam_end(&q);
    return r;
}

int kms_iam_policy_version_list(kms_iam *iam, const char *account_id, const char *policy_arn,
                                json_t **out)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    char id[32];
    json_t *items = json_array();
    kms_db_stmt *st = NULL;
    int r = -1;
    if (items == NULL || kms_iam_policy_id_by_arn(&q, account_id, policy_arn, id) != 0 ||
        kms_db_open(q.c, sql_version_list, KMS_DB_PARAMS(kms_db_text(id)), &st) != 0) {
        goto out;
    }
    if (kms_iam_rows_append(st, version_list_json, NULL, items) != 0) {
        goto out;
    }
    r = kms_iam_list_response(items, "Versions", false, NULL, out);
    items = NULL;
out:
    json_decref(items);
    kms_iam_end(&q);
    return r;
}

static int version_change(kms_iam *iam, const char *account_id, const char *policy_arn,
                          const char *version_id, bool make_default)
{
    int64_t v = 0;
    KMS_GUARD(version_parse(version_id, &v));
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    char id[32];
    json_t *o = NULL;
    int r = -1;
    if (own_policy(&q, account_id, policy_arn, id) != 0 ||
        version_json(&q, id, v, false, &o) != 0) {
        goto out;
    }
    bool is_default = json_is_true(json_object_get(o, "IsDefaultVersion"));
    if (make_default) {
        if (kms_db_exec_sql(q.c, sql_set_default, KMS_DB_PARAMS(kms_db_text(id), kms_db_int64(v)),
                            IAM_SQL_WHAT) != 0) {
            goto out;
        }
    } else {
        if (is_default) {
            kms_raise(KMS_ERR_DELETE_CONFLICT, "Cannot delete the default version of a policy.");
            goto out;
        }
        if (kms_db_exec_sql(q.c, sql_version_delete,
                            KMS_DB_PARAMS(kms_db_text(id), kms_db_int64(v)), IAM_SQL_WHAT) != 0) {
            goto out;
        }
    }
    if (kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    json_decref(o);
    kms_iam_end(&q);
    return r;
}

int kms_iam_policy_version_delete(kms_iam *iam, const char *account_id, const char *policy_arn,
                                  const char *version_id)
{
    return version_change(iam, account_id, policy_arn, version_id, false);
}

int kms_iam_policy_set_default_version(kms_iam *iam, const char *account_id, const char *policy_arn,
                                       const char *version_id)
{
    return version_change(iam, account_id, policy_arn, version_id, true);
}
