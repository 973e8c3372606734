/* Member accounts of an organization (CreateAccount, ListAccounts, DescribeAccount, MoveAccount,
 * ListParents). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam/iam_org.h"
#include "util/util.h"

#define ACCESS_ROLE "OrganizationAccountAccessRole"

static const char sql_account_exists[] = "SELECT 1 FROM iam_accounts WHERE account_id = ?1";
static const char sql_account_insert_full[] =
    "INSERT INTO iam_accounts (account_id, name, email, org_id, parent_id, joined_method, "
    "joined_date, creation_date) VALUES (?1, ?2, ?3, ?4, ?5, 'CREATED', ?6, ?6)";
static const char sql_account_get[] =
    "SELECT account_id, name, email, joined_method, joined_date, parent_id FROM iam_accounts "
    "WHERE account_id = ?1 AND org_id = ?2";
static const char sql_accounts_of_org[] =
    "SELECT account_id, name, email, joined_method, joined_date, parent_id FROM iam_accounts "
    "WHERE org_id = ?1 AND (?2 IS NULL OR parent_id = ?2) ORDER BY account_id";
static const char sql_account_move[] =
    "UPDATE iam_accounts SET parent_id = ?2 WHERE account_id = ?1";

static json_t *account_json(kms_db_stmt *st, const void *org)
{
    const org_info *o = org;
    char arn[200];
    kms_iam_org_account_arn(o, kms_db_column_text(st, 0), arn, sizeof arn);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "Id", kms_db_column_text(st, 0),
                          "Arn", arn, "Email", kms_db_column_text(st, 2), "Name",
                          kms_db_column_text(st, 1), "Status", "ACTIVE", "JoinedMethod",
                          kms_db_column_text(st, 3)[0] ? kms_db_column_text(st, 3) : "CREATED",
                          "JoinedTimestamp", (json_int_t)kms_db_column_int64(st, 4));
    if (j == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return j;
}

int kms_iam_org_account_create(kms_iam *iam, const char *account_id, const char *email,
                               const char *account_name, const char *role_name, int64_t now,
                               json_t **status)
{
    KMS_ENSURE(email != NULL && strlen(email) >= 6 && strlen(email) <= 64 && strchr(email, '@'),
               KMS_ERR_VALIDATION, "Email must be an address of 6 to 64 characters");
    KMS_ENSURE(account_name != NULL && account_name[0] != '\0' && strlen(account_name) <= 50,
               KMS_ERR_VALIDATION, "AccountName must be 1 to 50 characters");
    role_name = role_name ? role_name : ACCESS_ROLE;
    KMS_GUARD(kms_iam_name_check(role_name, 64, "RoleName"));
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, true, account_id, &o));
    char id[13], trust[300], car[40];
    iam_entity role;
    json_t *j = NULL;
    int r = -1;
    /* A fresh 12-digit id that no account here has (leading digit not zero, as AWS ids). */
    for (int attempt = 0;; attempt++) {
        if (attempt == 16) {
            kms_raise(KMS_ERR_INTERNAL, "cannot find a free account id");
            goto out;
        }
        kms_iam_random_id(id, sizeof id, "", 12, IAM_DIGITS);
        if (id[0] == '0') {
            continue;
        }
        kms_db_stmt *st = NULL;
        int f = kms_db_first(q.c, sql_account_exists, KMS_DB_PARAMS(kms_db_text(id)), &st,
                             IAM_SQL_WHAT);
        if (f < 0) {
            goto out;
        }
        if (f == 0) {
            break;
        }
        kms_db_reset(st);
    }
    snprintf(trust, sizeof trust,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
             "{\"AWS\":\"arn:aws:iam::%s:root\"},\"Action\":\"sts:AssumeRole\"}]}",
             o.mgmt);
    if (kms_db_exec_sql(q.c, sql_account_insert_full,
                        KMS_DB_PARAMS(kms_db_text(id), kms_db_text(account_name),
                                      kms_db_text(email), kms_db_text(o.org_id),
                                      kms_db_text(o.root_id), kms_db_int64(now)),
                        IAM_SQL_WHAT) != 0 ||
        kms_iam_root_create_tx(&q, id, now) != 0 ||
        kms_iam_role_insert(&q, id, "/", role_name, trust, NULL, 0, NULL, NULL, 0, now, &role) !=
            0 ||
        kms_iam_attach_tx(&q, role.id, IAM_ADMIN_POLICY_ID) != 0 ||
        kms_iam_org_attach_tx(&q, IAM_FULL_ACCESS_SCP, id) != 0) {
        goto out;
    }
    kms_iam_random_id(car, sizeof car, "car-", 32, "0123456789abcdef");
    if (status != NULL) {
        j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "Id", car, "AccountName", account_name,
                      "State", "SUCCEEDED", "AccountId", id, "RequestedTimestamp", (json_int_t)now,
                      "CompletedTimestamp", (json_int_t)now);
        if (j == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
    }
    if (kms_iam_commit(&q) != 0) {
        goto out;
    }
    if (status != NULL) {
        *status = j;
        j = NULL;
    }
    r = 0;
out:
    json_decref(j);
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_account_list(kms_iam *iam, const char *account_id, const char *parent_id,
                             json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, false, account_id, &o));
    json_t *items = json_array();
    kms_db_stmt *st = NULL;
    int r = -1;
    if (items == NULL || (parent_id != NULL && kms_iam_org_parent_check(&q, &o, parent_id) != 0) ||
        kms_db_open(q.c, sql_accounts_of_org,
                    KMS_DB_PARAMS(kms_db_text(o.org_id), kms_db_text(parent_id)), &st) != 0) {
        goto out;
    }
    if (kms_iam_rows_append(st, account_json, &o, items) != 0) {
        goto out;
    }
    r = kms_iam_org_list_wrap("Accounts", &items, out);
out:
    json_decref(items);
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_member_name(iam_q *q, const org_info *o, const char *account, char *name,
                            size_t name_size)
{
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q->c, sql_account_get,
                         KMS_DB_PARAMS(kms_db_text(account), kms_db_text(o->org_id)), &st,
                         IAM_SQL_WHAT);
    if (f == 1) {
        kms_iam_copy(name, name_size, kms_db_column_text(st, 1));
        kms_db_reset(st);
    }
    return f;
}

/* The row of an account of the organization (statement left on the row). */
static int member_get(iam_q *q, const org_info *o, const char *account, kms_db_stmt **st)
{
    KMS_GUARD(kms_iam_account_check(account));
    int f =
        kms_db_first(q->c, sql_account_get,
                     KMS_DB_PARAMS(kms_db_text(account), kms_db_text(o->org_id)), st, IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 1, KMS_ERR_NO_SUCH_ENTITY,
               "You specified an account that doesn't exist (AccountNotFoundException).");
    return 0;
}

int kms_iam_org_account_describe(kms_iam *iam, const char *account_id, const char *target_account,
                                 json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, false, account_id, &o));
    kms_db_stmt *st = NULL;
    int r = member_get(&q, &o, target_account, &st);
    if (r == 0) {
        *out = account_json(st, &o);
        r = *out ? 0 : -1;
    }
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_account_move(kms_iam *iam, const char *account_id, const char *target_account,
                             const char *source_parent_id, const char *destination_parent_id)
{
    KMS_ENSURE(source_parent_id != NULL && destination_parent_id != NULL, KMS_ERR_VALIDATION,
               "SourceParentId and DestinationParentId must not be empty");
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, true, account_id, &o));
    kms_db_stmt *st = NULL;
    int r = -1;
    if (member_get(&q, &o, target_account, &st) != 0) {
        goto out;
    }
    bool at_source = strcmp(kms_db_column_text(st, 5), source_parent_id) == 0;
    kms_db_reset(st);
    if (!at_source) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY,
                  "We can't find a source root or OU with the ParentId that you specified.");
        goto out;
    }
    if (strcmp(source_parent_id, destination_parent_id) == 0) {
        kms_raise(KMS_ERR_ENTITY_EXISTS, "That account is already present in the specified "
                                         "destination.");
        goto out;
    }
    if (kms_iam_org_parent_check(&q, &o, destination_parent_id) != 0 ||
        kms_db_exec_sql(
            q.c, sql_account_move,
            KMS_DB_PARAMS(kms_db_text(target_account), kms_db_text(destination_parent_id)),
            IAM_SQL_WHAT) != 0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_list_parents(kms_iam *iam, const char *account_id, const char *child_id,
                             json_t **out)
{
    KMS_ENSURE(child_id != NULL, KMS_ERR_VALIDATION, "ChildId must not be empty");
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, false, account_id, &o));
    kms_db_stmt *st = NULL;
    char parent[40] = "";
    int r = -1;
    if (strncmp(child_id, "ou-", 3) == 0) {
        int f = kms_iam_org_ou_get(&q, &o, child_id, NULL, 0, parent, sizeof parent);
        if (f <= 0) {
            if (f == 0) {
                kms_raise(KMS_ERR_NO_SUCH_ENTITY, "We can't find an organizational unit (OU) or "
                                                  "AWS account with the ChildId that you "
                                                  "specified.");
            }
            goto out;
        }
    } else {
        if (member_get(&q, &o, child_id, &st) != 0 ||
            kms_db_column_copy(st, 5, parent, sizeof parent, IAM_SQL_SUBJECT) != 0) {
            goto out;
        }
    }
    *out = json_pack("{s:[{s:s, s:s}]}", "Parents", "Id", parent, "Type",
                     strncmp(parent, "r-", 2) == 0 ? "ROOT" : "ORGANIZATIONAL_UNIT");
    if (*out == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}
