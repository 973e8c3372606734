/* AWS Organizations: one organization per management account, a root, organizational units,
 * member accounts (created here, each with its root user and OrganizationAccountAccessRole) and
 * service control policies attached to the root, OUs and accounts. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam/iam_org.h"
#include "util/util.h"

static const char not_in_use[] = "Your account is not a member of an organization.";
static const char denied[] = "You don't have permissions to access this resource.";

static const char sql_org_of_account[] =
    "SELECT o.org_id, o.root_id, o.management_account_id FROM iam_accounts a "
    "JOIN org_organizations o ON o.org_id = a.org_id WHERE a.account_id = ?1";

/* The organization of account_id: NoSuchEntity when none. */
static int org_of(iam_q *q, const char *account_id, org_info *out)
{
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q->c, sql_org_of_account, KMS_DB_PARAMS(kms_db_text(account_id)), &st,
                         IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 1, KMS_ERR_NO_SUCH_ENTITY, "%s", not_in_use);
    KMS_GUARD(kms_db_column_copy(st, 0, out->org_id, sizeof out->org_id, IAM_SQL_SUBJECT));
    KMS_GUARD(kms_db_column_copy(st, 1, out->root_id, sizeof out->root_id, IAM_SQL_SUBJECT));
    KMS_GUARD(kms_db_column_copy(st, 2, out->mgmt, sizeof out->mgmt, IAM_SQL_SUBJECT));
    kms_db_reset(st);
    return 0;
}

/* Only the management account administers the organization. */
static int org_managed_by(iam_q *q, const char *account_id, org_info *out)
{
    KMS_GUARD(org_of(q, account_id, out));
    KMS_ENSURE(strcmp(out->mgmt, account_id) == 0, KMS_ERR_ACCESS_DENIED, "%s", denied);
    return 0;
}

int kms_iam_org_begin(kms_iam *iam, iam_q *q, bool write, const char *account_id, org_info *org)
{
    KMS_GUARD(kms_iam_account_check(account_id));
    KMS_GUARD(kms_iam_begin(iam, q, write));
    if (org_managed_by(q, account_id, org) != 0) {
        kms_iam_end(q);
        return -1;
    }
    return 0;
}

/* ---- ARNs and json ------------------------------------------------------------------------ */

static json_t *org_json(iam_q *q, const org_info *o)
{
    char arn[200], macct[200];
    snprintf(arn, sizeof arn, "arn:aws:organizations::%s:organization/%s", o->mgmt, o->org_id);
    snprintf(macct, sizeof macct, "arn:aws:organizations::%s:account/%s/%s", o->mgmt, o->org_id,
             o->mgmt);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s}]}", "Id", o->org_id, "Arn",
                          arn, "FeatureSet", "ALL", "MasterAccountArn", macct, "MasterAccountId",
                          o->mgmt, "MasterAccountEmail", "", "AvailablePolicyTypes", "Type",
                          IAM_SCP_TYPE, "Status", "ENABLED");
    if (j == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return j;
}

void kms_iam_org_account_arn(const org_info *o, const char *account, char *out, size_t size)
{
    snprintf(out, size, "arn:aws:organizations::%s:account/%s/%s", o->mgmt, o->org_id, account);
}

void kms_iam_org_ou_arn(const org_info *o, const char *ou, char *out, size_t size)
{
    snprintf(out, size, "arn:aws:organizations::%s:ou/%s/%s", o->mgmt, o->org_id, ou);
}

void kms_iam_org_root_arn(const org_info *o, char *out, size_t size)
{
    snprintf(out, size, "arn:aws:organizations::%s:root/%s/%s", o->mgmt, o->org_id, o->root_id);
}

/* {member: items} as a list response; takes items (even on failure). */
int kms_iam_org_list_wrap(const char *member, json_t **items, json_t **out)
{
    *out = json_pack("{s:o}", member, *items);
    *items = NULL;
    KMS_ENSURE(*out != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

/* ---- Organization ------------------------------------------------------------------------- */

static const char sql_org_insert[] =
    "INSERT INTO org_organizations (org_id, management_account_id, root_id, creation_date) "
    "VALUES (?1, ?2, ?3, ?4)";
static const char sql_account_join[] =
    "UPDATE iam_accounts SET org_id = ?2, parent_id = ?3, joined_method = ?4, joined_date = ?5 "
    "WHERE account_id = ?1";
static const char sql_account_in_org[] =
    "SELECT org_id FROM iam_accounts WHERE account_id = ?1 AND org_id IS NOT NULL";

int kms_iam_org_create_tx(iam_q *q, const char *account_id, int64_t now, char org_id[16],
                          char root_id[16])
{
    KMS_GUARD(kms_iam_account_ensure(q, account_id, now));
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q->c, sql_account_in_org, KMS_DB_PARAMS(kms_db_text(account_id)), &st,
                         IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 0, KMS_ERR_ENTITY_EXISTS,
               "The AWS account is already a member of an organization.");
    kms_iam_random_id(org_id, 16, "o-", 10, IAM_LOWER_ALNUM);
    kms_iam_random_id(root_id, 16, "r-", 4, IAM_LOWER_ALNUM);
    KMS_GUARD(kms_db_exec_sql(q->c, sql_org_insert,
                              KMS_DB_PARAMS(kms_db_text(org_id), kms_db_text(account_id),
                                            kms_db_text(root_id), kms_db_int64(now)),
                              IAM_SQL_WHAT));
    KMS_GUARD(kms_db_exec_sql(q->c, sql_account_join,
                              KMS_DB_PARAMS(kms_db_text(account_id), kms_db_text(org_id),
                                            kms_db_text(root_id), kms_db_text("CREATED"),
                                            kms_db_int64(now)),
                              IAM_SQL_WHAT));
    /* Every new root, OU and account starts with FullAWSAccess, as AWS. */
    KMS_GUARD(kms_iam_org_attach_tx(q, IAM_FULL_ACCESS_SCP, root_id));
    return kms_iam_org_attach_tx(q, IAM_FULL_ACCESS_SCP, account_id);
}

int kms_iam_org_create(kms_iam *iam, const char *account_id, int64_t now, json_t **org)
{
    KMS_GUARD(kms_iam_account_check(account_id));
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    org_info o;
    json_t *j = NULL;
    int r = -1;
    snprintf(o.mgmt, sizeof o.mgmt, "%s", account_id);
    if (kms_iam_org_create_tx(&q, account_id, now, o.org_id, o.root_id) != 0 ||
        (org != NULL && (j = org_json(&q, &o)) == NULL) || kms_iam_commit(&q) != 0) {
        goto out;
    }
    if (org != NULL) {
        *org = j;
        j = NULL;
    }
    r = 0;
out:
    json_decref(j);
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_describe(kms_iam *iam, const char *account_id, json_t **org)
{
    KMS_GUARD(kms_iam_account_check(account_id));
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    org_info o;
    int r = org_of(&q, account_id, &o);
    if (r == 0) {
        *org = org_json(&q, &o);
        r = *org ? 0 : -1;
    }
    kms_iam_end(&q);
    return r;
}

static const char sql_org_members[] =
    "SELECT count(*) FROM iam_accounts WHERE org_id = ?1 AND account_id <> ?2";
static const char sql_org_leave[] =
    "UPDATE iam_accounts SET org_id = NULL, parent_id = NULL, joined_method = '', "
    "joined_date = 0 WHERE org_id = ?1";
static const char sql_org_detach_all[] =
    "DELETE FROM org_attachments WHERE target_id = ?1 OR target_id = ?2 OR target_id IN "
    "(SELECT ou_id FROM org_units WHERE org_id = ?3) OR policy_id IN "
    "(SELECT policy_id FROM org_policies WHERE org_id = ?3)";
static const char sql_org_units_delete[] = "DELETE FROM org_units WHERE org_id = ?1";
static const char sql_org_policies_delete[] = "DELETE FROM org_policies WHERE org_id = ?1";
static const char sql_org_delete[] = "DELETE FROM org_organizations WHERE org_id = ?1";

int kms_iam_org_delete(kms_iam *iam, const char *account_id)
{
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, true, account_id, &o));
    int64_t members = 0;
    int r = -1;
    if (kms_db_int(q.c, sql_org_members, KMS_DB_PARAMS(kms_db_text(o.org_id), kms_db_text(o.mgmt)),
                   &members, IAM_SQL_WHAT) < 0) {
        goto out;
    }
    if (members > 0) {
        kms_raise(KMS_ERR_DELETE_CONFLICT,
                  "The organization still has member accounts: remove them first.");
        goto out;
    }
    if (kms_db_exec_sql(
            q.c, sql_org_detach_all,
            KMS_DB_PARAMS(kms_db_text(o.root_id), kms_db_text(o.mgmt), kms_db_text(o.org_id)),
            IAM_SQL_WHAT) != 0 ||
        kms_db_exec_sql(q.c, sql_org_units_delete, KMS_DB_PARAMS(kms_db_text(o.org_id)),
                        IAM_SQL_WHAT) != 0 ||
        kms_db_exec_sql(q.c, sql_org_policies_delete, KMS_DB_PARAMS(kms_db_text(o.org_id)),
                        IAM_SQL_WHAT) != 0 ||
        kms_db_exec_sql(q.c, sql_org_leave, KMS_DB_PARAMS(kms_db_text(o.org_id)), IAM_SQL_WHAT) !=
            0 ||
        kms_db_exec_sql(q.c, sql_org_delete, KMS_DB_PARAMS(kms_db_text(o.org_id)), IAM_SQL_WHAT) !=
            0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_list_roots(kms_iam *iam, const char *account_id, json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, false, account_id, &o));
    char arn[200];
    kms_iam_org_root_arn(&o, arn, sizeof arn);
    json_t *j =
        json_pack("{s:[{s:s, s:s, s:s, s:[{s:s, s:s}]}]}", "Roots", "Id", o.root_id, "Arn", arn,
                  "Name", "Root", "PolicyTypes", "Type", IAM_SCP_TYPE, "Status", "ENABLED");
    kms_iam_end(&q);
    KMS_ENSURE(j != NULL, KMS_ERR_INTERNAL, "out of memory");
    *out = j;
    return 0;
}
