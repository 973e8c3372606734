/* Organizational units of an organization and the parent checks of the root and OUs
 * (CreateOrganizationalUnit ... DeleteOrganizationalUnit). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam/iam_org.h"
#include "util/util.h"

static const char sql_ou_get[] =
    "SELECT ou_id, name, parent_id FROM org_units WHERE ou_id = ?1 AND org_id = ?2";
static const char sql_ou_insert[] =
    "INSERT INTO org_units (ou_id, org_id, parent_id, name, creation_date) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
static const char sql_ou_name_taken[] =
    "SELECT 1 FROM org_units WHERE parent_id = ?1 AND name = ?2";
static const char sql_ou_children[] =
    "SELECT ou_id, name FROM org_units WHERE parent_id = ?1 ORDER BY name";
static const char sql_ou_count_children[] =
    "SELECT (SELECT count(*) FROM org_units WHERE parent_id = ?1) + "
    "(SELECT count(*) FROM iam_accounts WHERE parent_id = ?1)";
static const char sql_ou_delete[] = "DELETE FROM org_units WHERE ou_id = ?1";

int kms_iam_org_ou_get(iam_q *q, const org_info *o, const char *ou_id, char *name, size_t name_size,
                       char *parent, size_t parent_size)
{
    kms_db_stmt *st = NULL;
    int f =
        kms_db_first(q->c, sql_ou_get, KMS_DB_PARAMS(kms_db_text(ou_id), kms_db_text(o->org_id)),
                     &st, IAM_SQL_WHAT);
    if (f != 1) {
        return f;
    }
    if (name != NULL) {
        kms_iam_copy(name, name_size, kms_db_column_text(st, 1));
    }
    if (parent != NULL && kms_db_column_copy(st, 2, parent, parent_size, IAM_SQL_SUBJECT) != 0) {
        kms_db_reset(st);
        return -1;
    }
    kms_db_reset(st);
    return 1;
}

int kms_iam_org_parent_check(iam_q *q, const org_info *o, const char *parent_id)
{
    KMS_ENSURE(parent_id != NULL, KMS_ERR_VALIDATION, "ParentId must not be empty");
    if (strcmp(parent_id, o->root_id) == 0) {
        return 0;
    }
    int f = kms_iam_org_ou_get(q, o, parent_id, NULL, 0, NULL, 0);
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 1, KMS_ERR_NO_SUCH_ENTITY,
               "We can't find a root or OU with the ParentId "
               "that you specified.");
    return 0;
}

static json_t *ou_json(const org_info *o, const char *id, const char *name)
{
    char arn[200];
    kms_iam_org_ou_arn(o, id, arn, sizeof arn);
    json_t *j = json_pack("{s:s, s:s, s:s}", "Id", id, "Arn", arn, "Name", name);
    if (j == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return j;
}

/* A row (ou_id, name) of a listing. */
static json_t *ou_row_json(kms_db_stmt *st, const void *org)
{
    return ou_json(org, kms_db_column_text(st, 0), kms_db_column_text(st, 1));
}

int kms_iam_org_ou_create(kms_iam *iam, const char *account_id, const char *parent_id,
                          const char *name, int64_t now, json_t **ou)
{
    KMS_ENSURE(name != NULL && name[0] != '\0' && strlen(name) <= 128, KMS_ERR_VALIDATION,
               "Name must be 1 to 128 characters");
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, true, account_id, &o));
    kms_db_stmt *st = NULL;
    json_t *j = NULL;
    int r = -1;
    if (kms_iam_org_parent_check(&q, &o, parent_id) != 0) {
        goto out;
    }
    int f =
        kms_db_first(q.c, sql_ou_name_taken,
                     KMS_DB_PARAMS(kms_db_text(parent_id), kms_db_text(name)), &st, IAM_SQL_WHAT);
    if (f != 0) {
        if (f == 1) {
            kms_raise(KMS_ERR_ENTITY_EXISTS, "An OU with the same name already exists.");
        }
        goto out;
    }
    /* ou-RRRR-xxxxxxxx: the root's suffix, then eight random characters. */
    char id[48], prefix[40];
    snprintf(prefix, sizeof prefix, "ou-%s-", o.root_id + 2);
    kms_iam_random_id(id, sizeof id, prefix, 8, IAM_LOWER_ALNUM);
    if (kms_db_exec_sql(q.c, sql_ou_insert,
                        KMS_DB_PARAMS(kms_db_text(id), kms_db_text(o.org_id),
                                      kms_db_text(parent_id), kms_db_text(name), kms_db_int64(now)),
                        IAM_SQL_WHAT) != 0 ||
        kms_iam_org_attach_tx(&q, IAM_FULL_ACCESS_SCP, id) != 0 ||
        (ou != NULL && (j = ou_json(&o, id, name)) == NULL) || kms_iam_commit(&q) != 0) {
        goto out;
    }
    if (ou != NULL) {
        *ou = j;
        j = NULL;
    }
    r = 0;
out:
    json_decref(j);
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_ou_describe(kms_iam *iam, const char *account_id, const char *ou_id, json_t **ou)
{
    KMS_ENSURE(ou_id != NULL, KMS_ERR_VALIDATION, "OrganizationalUnitId must not be empty");
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, false, account_id, &o));
    char name[130];
    int r = -1;
    int f = kms_iam_org_ou_get(&q, &o, ou_id, name, sizeof name, NULL, 0);
    if (f <= 0) {
        if (f == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "We can't find an OU with the "
                                              "OrganizationalUnitId that you specified.");
        }
        goto out;
    }
    *ou = ou_json(&o, ou_id, name);
    r = *ou ? 0 : -1;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_ou_list(kms_iam *iam, const char *account_id, const char *parent_id, json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, false, account_id, &o));
    json_t *items = json_array();
    kms_db_stmt *st = NULL;
    int r = -1;
    if (items == NULL || kms_iam_org_parent_check(&q, &o, parent_id) != 0 ||
        kms_db_open(q.c, sql_ou_children, KMS_DB_PARAMS(kms_db_text(parent_id)), &st) != 0) {
        goto out;
    }
    if (kms_iam_rows_append(st, ou_row_json, &o, items) != 0) {
        goto out;
    }
    r = kms_iam_org_list_wrap("OrganizationalUnits", &items, out);
out:
    json_decref(items);
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_ou_delete(kms_iam *iam, const char *account_id, const char *ou_id)
{
    KMS_ENSURE(ou_id != NULL, KMS_ERR_VALIDATION, "OrganizationalUnitId must not be empty");
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, true, account_id, &o));
    int64_t children = 0;
    int r = -1;
    int f = kms_iam_org_ou_get(&q, &o, ou_id, NULL, 0, NULL, 0);
    if (f <= 0) {
        if (f == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "We can't find an OU with the "
                                              "OrganizationalUnitId that you specified.");
        }
        goto out;
    }
    if (kms_db_int(q.c, sql_ou_count_children, KMS_DB_PARAMS(kms_db_text(ou_id)), &children,
                   IAM_SQL_WHAT) < 0) {
        goto out;
    }
    if (children > 0) {
        kms_raise(KMS_ERR_DELETE_CONFLICT,
                  "The specified OU is not empty. Move all accounts to another root or OU, "
                  "delete all child OUs, and try again.");
        goto out;
    }
    if (kms_iam_org_detach_all_tx(&q, ou_id) != 0 ||
        kms_db_exec_sql(q.c, sql_ou_delete, KMS_DB_PARAMS(kms_db_text(ou_id)), IAM_SQL_WHAT) != 0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}
