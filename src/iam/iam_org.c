/* AWS Organizations: one organization per management account, a root, organizational units,
 * member accounts (created here, each with its root user and OrganizationAccountAccessRole) and
 * service control policies attached to the root, OUs and accounts. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam/iam_internal.h"
#include "util/util.h"

#define SCP_TYPE "SERVICE_CONTROL_POLICY"
#define SCP_MAX_LEN 5120
#define ACCESS_ROLE "OrganizationAccountAccessRole"

static const char not_in_use[] = "Your account is not a member of an organization.";
static const char denied[] = "You don't have permissions to access this resource.";

typedef struct org_info {
    char org_id[16];
    char root_id[16];
    char mgmt[13];
} org_info;

static const char sql_org_of_account[] =
    "SELECT o.org_id, o.root_id, o.management_account_id FROM iam_accounts a "
    "JOIN org_organizations o ON o.org_id = a.org_id WHERE a.account_id = ?1";

/* The organization of account_id: NoSuchEntity when none. */
static int org_of(iam_q *q, const char *account_id, org_info *out)
{
    sqlite3_stmt *st = NULL;
    int f = q_one(q, sql_org_of_account, &st, "s", account_id);
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 1, KMS_ERR_NO_SUCH_ENTITY, "%s", not_in_use);
    KMS_GUARD(col_copy(st, 0, out->org_id, sizeof out->org_id));
    KMS_GUARD(col_copy(st, 1, out->root_id, sizeof out->root_id));
    KMS_GUARD(col_copy(st, 2, out->mgmt, sizeof out->mgmt));
    sqlite3_reset(st);
    return 0;
}

/* Only the management account administers the organization. */
static int org_managed_by(iam_q *q, const char *account_id, org_info *out)
{
    KMS_GUARD(org_of(q, account_id, out));
    KMS_ENSURE(strcmp(out->mgmt, account_id) == 0, KMS_ERR_ACCESS_DENIED, "%s", denied);
    return 0;
}

static int org_begin(kms_iam *iam, iam_q *q, bool write, const char *account_id, org_info *org)
{
    KMS_GUARD(kms_iam_account_check(account_id));
    KMS_GUARD(q_begin(iam, q, write));
    if (org_managed_by(q, account_id, org) != 0) {
        q_end(q);
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
                          SCP_TYPE, "Status", "ENABLED");
    if (j == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return j;
}

static void account_arn(const org_info *o, const char *account, char *out, size_t size)
{
    snprintf(out, size, "arn:aws:organizations::%s:account/%s/%s", o->mgmt, o->org_id, account);
}

static void ou_arn(const org_info *o, const char *ou, char *out, size_t size)
{
    snprintf(out, size, "arn:aws:organizations::%s:ou/%s/%s", o->mgmt, o->org_id, ou);
}

static void root_arn(const org_info *o, char *out, size_t size)
{
    snprintf(out, size, "arn:aws:organizations::%s:root/%s/%s", o->mgmt, o->org_id, o->root_id);
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
static const char sql_attach[] =
    "INSERT INTO org_attachments (policy_id, target_id) VALUES (?1, ?2)";

int kms_iam_org_create_tx(iam_q *q, const char *account_id, int64_t now, char org_id[16],
                          char root_id[16])
{
    KMS_GUARD(kms_iam_account_ensure(q, account_id, now));
    sqlite3_stmt *st = NULL;
    int f = q_one(q, sql_account_in_org, &st, "s", account_id);
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 0, KMS_ERR_ENTITY_EXISTS,
               "The AWS account is already a member of an organization.");
    kms_iam_random_id(org_id, 16, "o-", 10, IAM_LOWER_ALNUM);
    kms_iam_random_id(root_id, 16, "r-", 4, IAM_LOWER_ALNUM);
    KMS_GUARD(q_exec(q, sql_org_insert, "sssi", org_id, account_id, root_id, now));
    KMS_GUARD(q_exec(q, sql_account_join, "ssssi", account_id, org_id, root_id, "CREATED", now));
    /* Every new root, OU and account starts with FullAWSAccess, as AWS. */
    KMS_GUARD(q_exec(q, sql_attach, "ss", IAM_FULL_ACCESS_SCP, root_id));
    return q_exec(q, sql_attach, "ss", IAM_FULL_ACCESS_SCP, account_id);
}

int kms_iam_org_create(kms_iam *iam, const char *account_id, int64_t now, json_t **org)
{
    KMS_GUARD(kms_iam_account_check(account_id));
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, true));
    org_info o;
    json_t *j = NULL;
    int r = -1;
    snprintf(o.mgmt, sizeof o.mgmt, "%s", account_id);
    if (kms_iam_org_create_tx(&q, account_id, now, o.org_id, o.root_id) != 0 ||
        (org != NULL && (j = org_json(&q, &o)) == NULL) || q_commit(&q) != 0) {
        goto out;
    }
    if (org != NULL) {
        *org = j;
        j = NULL;
    }
    r = 0;
out:
    json_decref(j);
    q_end(&q);
    return r;
}

int kms_iam_org_describe(kms_iam *iam, const char *account_id, json_t **org)
{
    KMS_GUARD(kms_iam_account_check(account_id));
    iam_q q;
    KMS_GUARD(q_begin(iam, &q, false));
    org_info o;
    int r = org_of(&q, account_id, &o);
    if (r == 0) {
        *org = org_json(&q, &o);
        r = *org ? 0 : -1;
    }
    q_end(&q);
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
    KMS_GUARD(org_begin(iam, &q, true, account_id, &o));
    int64_t members = 0;
    int r = -1;
    if (q_int(&q, sql_org_members, &members, "ss", o.org_id, o.mgmt) != 0) {
        goto out;
    }
    if (members > 0) {
        kms_raise(KMS_ERR_DELETE_CONFLICT,
                  "The organization still has member accounts: remove them first.");
        goto out;
    }
    if (q_exec(&q, sql_org_detach_all, "sss", o.root_id, o.mgmt, o.org_id) != 0 ||
        q_exec(&q, sql_org_units_delete, "s", o.org_id) != 0 ||
        q_exec(&q, sql_org_policies_delete, "s", o.org_id) != 0 ||
        q_exec(&q, sql_org_leave, "s", o.org_id) != 0 ||
        q_exec(&q, sql_org_delete, "s", o.org_id) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_org_list_roots(kms_iam *iam, const char *account_id, json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, false, account_id, &o));
    char arn[200];
    root_arn(&o, arn, sizeof arn);
    json_t *j =
        json_pack("{s:[{s:s, s:s, s:s, s:[{s:s, s:s}]}]}", "Roots", "Id", o.root_id, "Arn", arn,
                  "Name", "Root", "PolicyTypes", "Type", SCP_TYPE, "Status", "ENABLED");
    q_end(&q);
    KMS_ENSURE(j != NULL, KMS_ERR_INTERNAL, "out of memory");
    *out = j;
    return 0;
}

/* ---- Parents and OUs ---------------------------------------------------------------------- */

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
static const char sql_target_detach_all[] = "DELETE FROM org_attachments WHERE target_id = ?1";

/* NoSuchEntity ("ParentNotFoundException") unless parent is the root or an OU of the org. */
static int parent_check(iam_q *q, const org_info *o, const char *parent_id)
{
    KMS_ENSURE(parent_id != NULL, KMS_ERR_VALIDATION, "ParentId must not be empty");
    if (strcmp(parent_id, o->root_id) == 0) {
        return 0;
    }
    sqlite3_stmt *st = NULL;
    int f = q_one(q, sql_ou_get, &st, "ss", parent_id, o->org_id);
    KMS_GUARD(f < 0 ? -1 : 0);
    sqlite3_reset(st);
    KMS_ENSURE(f == 1, KMS_ERR_NO_SUCH_ENTITY,
               "We can't find a root or OU with the ParentId "
               "that you specified.");
    return 0;
}

static json_t *ou_json(const org_info *o, const char *id, const char *name)
{
    char arn[200];
    ou_arn(o, id, arn, sizeof arn);
    json_t *j = json_pack("{s:s, s:s, s:s}", "Id", id, "Arn", arn, "Name", name);
    if (j == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return j;
}

int kms_iam_org_ou_create(kms_iam *iam, const char *account_id, const char *parent_id,
                          const char *name, int64_t now, json_t **ou)
{
    KMS_ENSURE(name != NULL && name[0] != '\0' && strlen(name) <= 128, KMS_ERR_VALIDATION,
               "Name must be 1 to 128 characters");
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, true, account_id, &o));
    sqlite3_stmt *st = NULL;
    json_t *j = NULL;
    int r = -1;
    if (parent_check(&q, &o, parent_id) != 0) {
        goto out;
    }
    int f = q_one(&q, sql_ou_name_taken, &st, "ss", parent_id, name);
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
    if (q_exec(&q, sql_ou_insert, "ssssi", id, o.org_id, parent_id, name, now) != 0 ||
        q_exec(&q, sql_attach, "ss", IAM_FULL_ACCESS_SCP, id) != 0 ||
        (ou != NULL && (j = ou_json(&o, id, name)) == NULL) || q_commit(&q) != 0) {
        goto out;
    }
    if (ou != NULL) {
        *ou = j;
        j = NULL;
    }
    r = 0;
out:
    json_decref(j);
    q_end(&q);
    return r;
}

int kms_iam_org_ou_describe(kms_iam *iam, const char *account_id, const char *ou_id, json_t **ou)
{
    KMS_ENSURE(ou_id != NULL, KMS_ERR_VALIDATION, "OrganizationalUnitId must not be empty");
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, false, account_id, &o));
    sqlite3_stmt *st = NULL;
    int r = -1;
    int f = q_one(&q, sql_ou_get, &st, "ss", ou_id, o.org_id);
    if (f <= 0) {
        if (f == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "We can't find an OU with the "
                                              "OrganizationalUnitId that you specified.");
        }
        goto out;
    }
    *ou = ou_json(&o, col_s(st, 0), col_s(st, 1));
    r = *ou ? 0 : -1;
out:
    q_end(&q);
    return r;
}

/* {member: items} as a list response; takes items (even on failure). */
static int wrap_list(const char *member, json_t **items, json_t **out)
{
    *out = json_pack("{s:o}", member, *items);
    *items = NULL;
    KMS_ENSURE(*out != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

int kms_iam_org_ou_list(kms_iam *iam, const char *account_id, const char *parent_id, json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, false, account_id, &o));
    json_t *items = json_array();
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (items == NULL || parent_check(&q, &o, parent_id) != 0 ||
        q_stmt(&q, sql_ou_children, &st, "s", parent_id) != 0) {
        goto out;
    }
    int s;
    while ((s = q_step(&q, st)) == 1) {
        json_t *j = ou_json(&o, col_s(st, 0), col_s(st, 1));
        if (j == NULL || json_array_append_new(items, j) != 0) {
            goto out;
        }
    }
    if (s < 0) {
        goto out;
    }
    r = wrap_list("OrganizationalUnits", &items, out);
out:
    json_decref(items);
    q_end(&q);
    return r;
}

int kms_iam_org_ou_delete(kms_iam *iam, const char *account_id, const char *ou_id)
{
    KMS_ENSURE(ou_id != NULL, KMS_ERR_VALIDATION, "OrganizationalUnitId must not be empty");
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, true, account_id, &o));
    sqlite3_stmt *st = NULL;
    int64_t children = 0;
    int r = -1;
    int f = q_one(&q, sql_ou_get, &st, "ss", ou_id, o.org_id);
    if (f <= 0) {
        if (f == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "We can't find an OU with the "
                                              "OrganizationalUnitId that you specified.");
        }
        goto out;
    }
    sqlite3_reset(st);
    if (q_int(&q, sql_ou_count_children, &children, "s", ou_id) != 0) {
        goto out;
    }
    if (children > 0) {
        kms_raise(KMS_ERR_DELETE_CONFLICT,
                  "The specified OU is not empty. Move all accounts to another root or OU, "
                  "delete all child OUs, and try again.");
        goto out;
    }
    if (q_exec(&q, sql_target_detach_all, "s", ou_id) != 0 ||
        q_exec(&q, sql_ou_delete, "s", ou_id) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

/* ---- Accounts ----------------------------------------------------------------------------- */

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

static json_t *account_json(const org_info *o, sqlite3_stmt *st)
{
    char arn[200];
    account_arn(o, col_s(st, 0), arn, sizeof arn);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "Id", col_s(st, 0), "Arn", arn,
                          "Email", col_s(st, 2), "Name", col_s(st, 1), "Status", "ACTIVE",
                          "JoinedMethod", col_s(st, 3)[0] ? col_s(st, 3) : "CREATED",
                          "JoinedTimestamp", (json_int_t)sqlite3_column_int64(st, 4));
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
    KMS_GUARD(org_begin(iam, &q, true, account_id, &o));
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
        sqlite3_stmt *st = NULL;
        int f = q_one(&q, sql_account_exists, &st, "s", id);
        if (f < 0) {
            goto out;
        }
        if (f == 0) {
            break;
        }
        sqlite3_reset(st);
    }
    snprintf(trust, sizeof trust,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
             "{\"AWS\":\"arn:aws:iam::%s:root\"},\"Action\":\"sts:AssumeRole\"}]}",
             o.mgmt);
    if (q_exec(&q, sql_account_insert_full, "sssssi", id, account_name, email, o.org_id, o.root_id,
               now) != 0 ||
        kms_iam_root_create_tx(&q, id, now) != 0 ||
        kms_iam_role_insert(&q, id, "/", role_name, trust, NULL, 0, NULL, NULL, 0, now, &role) !=
            0 ||
        kms_iam_attach_tx(&q, role.id, IAM_ADMIN_POLICY_ID) != 0 ||
        q_exec(&q, sql_attach, "ss", IAM_FULL_ACCESS_SCP, id) != 0) {
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
    if (q_commit(&q) != 0) {
        goto out;
    }
    if (status != NULL) {
        *status = j;
        j = NULL;
    }
    r = 0;
out:
    json_decref(j);
    q_end(&q);
    return r;
}

int kms_iam_org_account_list(kms_iam *iam, const char *account_id, const char *parent_id,
                             json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, false, account_id, &o));
    json_t *items = json_array();
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (items == NULL || (parent_id != NULL && parent_check(&q, &o, parent_id) != 0) ||
        q_stmt(&q, sql_accounts_of_org, &st, "ss", o.org_id, parent_id) != 0) {
        goto out;
    }
    int s;
    while ((s = q_step(&q, st)) == 1) {
        json_t *j = account_json(&o, st);
        if (j == NULL || json_array_append_new(items, j) != 0) {
            goto out;
        }
    }
    if (s < 0) {
        goto out;
    }
    r = wrap_list("Accounts", &items, out);
out:
    json_decref(items);
    q_end(&q);
    return r;
}

/* The row of an account of the organization (statement left on the row). */
static int member_get(iam_q *q, const org_info *o, const char *account, sqlite3_stmt **st)
{
    KMS_GUARD(kms_iam_account_check(account));
    int f = q_one(q, sql_account_get, st, "ss", account, o->org_id);
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
    KMS_GUARD(org_begin(iam, &q, false, account_id, &o));
    sqlite3_stmt *st = NULL;
    int r = member_get(&q, &o, target_account, &st);
    if (r == 0) {
        *out = account_json(&o, st);
        r = *out ? 0 : -1;
    }
    q_end(&q);
    return r;
}

int kms_iam_org_account_move(kms_iam *iam, const char *account_id, const char *target_account,
                             const char *source_parent_id, const char *destination_parent_id)
{
    KMS_ENSURE(source_parent_id != NULL && destination_parent_id != NULL, KMS_ERR_VALIDATION,
               "SourceParentId and DestinationParentId must not be empty");
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, true, account_id, &o));
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (member_get(&q, &o, target_account, &st) != 0) {
        goto out;
    }
    bool at_source = strcmp(col_s(st, 5), source_parent_id) == 0;
    sqlite3_reset(st);
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
    if (parent_check(&q, &o, destination_parent_id) != 0 ||
        q_exec(&q, sql_account_move, "ss", target_account, destination_parent_id) != 0 ||
        q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}

int kms_iam_org_list_parents(kms_iam *iam, const char *account_id, const char *child_id,
                             json_t **out)
{
    KMS_ENSURE(child_id != NULL, KMS_ERR_VALIDATION, "ChildId must not be empty");
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, false, account_id, &o));
    sqlite3_stmt *st = NULL;
    char parent[40] = "";
    int r = -1;
    if (strncmp(child_id, "ou-", 3) == 0) {
        int f = q_one(&q, sql_ou_get, &st, "ss", child_id, o.org_id);
        if (f <= 0) {
            if (f == 0) {
                kms_raise(KMS_ERR_NO_SUCH_ENTITY, "We can't find an organizational unit (OU) or "
                                                  "AWS account with the ChildId that you "
                                                  "specified.");
            }
            goto out;
        }
        if (col_copy(st, 2, parent, sizeof parent) != 0) {
            goto out;
        }
    } else {
        if (member_get(&q, &o, child_id, &st) != 0 || col_copy(st, 5, parent, sizeof parent) != 0) {
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
    q_end(&q);
    return r;
}

/* ---- Service control policies ------------------------------------------------------------- */

static const char sql_scp_get[] =
    "SELECT policy_id, org_id, name, description, type, content FROM org_policies "
    "WHERE policy_id = ?1 AND (org_id = ?2 OR org_id IS NULL)";
static const char sql_scp_name_taken[] =
    "SELECT 1 FROM org_policies WHERE (org_id = ?1 OR org_id IS NULL) AND name = ?2";
static const char sql_scp_insert[] =
    "INSERT INTO org_policies (policy_id, org_id, name, description, type, content) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_scp_update[] =
    "UPDATE org_policies SET name = coalesce(?2, name), description = coalesce(?3, "
    "description), content = coalesce(?4, content) WHERE policy_id = ?1";
static const char sql_scp_list[] =
    "SELECT policy_id, org_id, name, description, type, content FROM org_policies "
    "WHERE (org_id = ?1 OR org_id IS NULL) AND type = ?2 ORDER BY name";
static const char sql_scp_for_target[] =
    "SELECT p.policy_id, p.org_id, p.name, p.description, p.type, p.content FROM "
    "org_attachments a JOIN org_policies p ON p.policy_id = a.policy_id "
    "WHERE a.target_id = ?1 AND p.type = ?2 ORDER BY p.name";
static const char sql_scp_targets[] =
    "SELECT target_id FROM org_attachments WHERE policy_id = ?1 ORDER BY target_id";
static const char sql_scp_attached[] =
    "SELECT 1 FROM org_attachments WHERE policy_id = ?1 AND target_id = ?2";
static const char sql_scp_detach[] =
    "DELETE FROM org_attachments WHERE policy_id = ?1 AND target_id = ?2";
static const char sql_scp_count_target[] =
    "SELECT count(*) FROM org_attachments a JOIN org_policies p ON p.policy_id = a.policy_id "
    "WHERE a.target_id = ?1 AND p.type = 'SERVICE_CONTROL_POLICY'";
static const char sql_scp_count_attached[] =
    "SELECT count(*) FROM org_attachments WHERE policy_id = ?1";
static const char sql_scp_delete[] = "DELETE FROM org_policies WHERE policy_id = ?1";

static json_t *summary_json(const org_info *o, sqlite3_stmt *st)
{
    bool aws = sqlite3_column_type(st, 1) == SQLITE_NULL;
    char arn[300];
    kms_iam_scp_arn(o->org_id, o->mgmt, col_s(st, 0), aws, arn, sizeof arn);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "Id", col_s(st, 0), "Arn", arn, "Name",
                          col_s(st, 2), "Description", col_s(st, 3), "Type", col_s(st, 4),
                          "AwsManaged", aws);
    if (j == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return j;
}

static json_t *policy_json(const org_info *o, sqlite3_stmt *st)
{
    json_t *s = summary_json(o, st);
    json_t *j = s ? json_pack("{s:o, s:s}", "PolicySummary", s, "Content", col_s(st, 5)) : NULL;
    if (s != NULL && j == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return j;
}

/* The policy row (statement left on it); NoSuchEntity ("PolicyNotFoundException"). */
static int scp_get(iam_q *q, const org_info *o, const char *policy_id, sqlite3_stmt **st)
{
    KMS_ENSURE(policy_id != NULL, KMS_ERR_VALIDATION, "PolicyId must not be empty");
    int f = q_one(q, sql_scp_get, st, "ss", policy_id, o->org_id);
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 1, KMS_ERR_NO_SUCH_ENTITY,
               "We can't find a policy with the PolicyId that "
               "you specified.");
    return 0;
}

static int type_check(const char *type)
{
    KMS_ENSURE(type == NULL || strcmp(type, SCP_TYPE) == 0, KMS_ERR_VALIDATION,
               "Only SERVICE_CONTROL_POLICY policies are supported");
    return 0;
}

int kms_iam_org_policy_create(kms_iam *iam, const char *account_id, const char *name,
                              const char *description, const char *type, const char *content,
                              json_t **policy)
{
    KMS_GUARD(type_check(type));
    KMS_ENSURE(name != NULL && name[0] != '\0' && strlen(name) <= 128, KMS_ERR_VALIDATION,
               "Name must be 1 to 128 characters");
    KMS_ENSURE(description == NULL || strlen(description) <= 512, KMS_ERR_VALIDATION,
               "Description is longer than 512 characters");
    KMS_ENSURE(content != NULL && content[0] != '\0', KMS_ERR_VALIDATION,
               "Content must not be empty");
    KMS_ENSURE(strlen(content) <= SCP_MAX_LEN, KMS_ERR_LIMIT_EXCEEDED,
               "The policy is larger than the maximum size of %d characters.", SCP_MAX_LEN);
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, true, account_id, &o));
    sqlite3_stmt *st = NULL;
    json_t *j = NULL;
    char id[16];
    int r = -1;
    int f = q_one(&q, sql_scp_name_taken, &st, "ss", o.org_id, name);
    if (f != 0) {
        if (f == 1) {
            kms_raise(KMS_ERR_ENTITY_EXISTS, "A policy with the same name already exists.");
        }
        goto out;
    }
    kms_iam_random_id(id, sizeof id, "p-", 8, IAM_LOWER_ALNUM);
    if (q_exec(&q, sql_scp_insert, "ssssss", id, o.org_id, name, description ? description : "",
               SCP_TYPE, content) != 0 ||
        (policy != NULL && (scp_get(&q, &o, id, &st) != 0 || (j = policy_json(&o, st)) == NULL)) ||
        q_commit(&q) != 0) {
        goto out;
    }
    if (policy != NULL) {
        *policy = j;
        j = NULL;
    }
    r = 0;
out:
    json_decref(j);
    q_end(&q);
    return r;
}

int kms_iam_org_policy_describe(kms_iam *iam, const char *account_id, const char *policy_id,
                                json_t **policy)
{
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, false, account_id, &o));
    sqlite3_stmt *st = NULL;
    int r = scp_get(&q, &o, policy_id, &st);
    if (r == 0) {
        *policy = policy_json(&o, st);
        r = *policy ? 0 : -1;
    }
    q_end(&q);
    return r;
}

int kms_iam_org_policy_update(kms_iam *iam, const char *account_id, const char *policy_id,
                              const char *name, const char *description, const char *content,
                              json_t **policy)
{
    KMS_ENSURE(content == NULL || (content[0] != '\0' && strlen(content) <= SCP_MAX_LEN),
               KMS_ERR_VALIDATION, "Content must be 1 to %d characters", SCP_MAX_LEN);
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, true, account_id, &o));
    sqlite3_stmt *st = NULL;
    json_t *j = NULL;
    int r = -1;
    if (scp_get(&q, &o, policy_id, &st) != 0) {
        goto out;
    }
    if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
        kms_raise(KMS_ERR_ACCESS_DENIED, "You can't change an AWS managed policy.");
        goto out;
    }
    sqlite3_reset(st);
    if (q_exec(&q, sql_scp_update, "ssss", policy_id, name, description, content) != 0 ||
        (policy != NULL &&
         (scp_get(&q, &o, policy_id, &st) != 0 || (j = policy_json(&o, st)) == NULL)) ||
        q_commit(&q) != 0) {
        goto out;
    }
    if (policy != NULL) {
        *policy = j;
        j = NULL;
    }
    r = 0;
out:
    json_decref(j);
    q_end(&q);
    return r;
}

/* Runs a policy listing (?1 scope, ?2 type) into {"<member>": [summaries]}. */
static int summaries(iam_q *q, const org_info *o, const char *sql, const char *scope,
                     const char *filter, json_t **out)
{
    KMS_GUARD(type_check(filter));
    json_t *items = json_array();
    KMS_ENSURE(items != NULL, KMS_ERR_INTERNAL, "out of memory");
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (q_stmt(q, sql, &st, "ss", scope, SCP_TYPE) != 0) {
        goto out;
    }
    int s;
    while ((s = q_step(q, st)) == 1) {
        json_t *j = summary_json(o, st);
        if (j == NULL || json_array_append_new(items, j) != 0) {
            goto out;
        }
    }
    if (s < 0) {
        goto out;
    }
    r = wrap_list("Policies", &items, out);
out:
    json_decref(items);
    return r;
}

int kms_iam_org_policy_list(kms_iam *iam, const char *account_id, const char *filter, json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, false, account_id, &o));
    int r = summaries(&q, &o, sql_scp_list, o.org_id, filter, out);
    q_end(&q);
    return r;
}

/* NoSuchEntity ("TargetNotFoundException") unless target is the root, an OU or an account of
 * the organization. *type receives ROOT, ORGANIZATIONAL_UNIT or ACCOUNT; name its name. */
static int target_check(iam_q *q, const org_info *o, const char *target, const char **type,
                        char *name, size_t name_size)
{
    KMS_ENSURE(target != NULL, KMS_ERR_VALIDATION, "TargetId must not be empty");
    sqlite3_stmt *st = NULL;
    if (strcmp(target, o->root_id) == 0) {
        *type = "ROOT";
        snprintf(name, name_size, "Root");
        return 0;
    }
    int f;
    if (strncmp(target, "ou-", 3) == 0) {
        *type = "ORGANIZATIONAL_UNIT";
        f = q_one(q, sql_ou_get, &st, "ss", target, o->org_id);
    } else {
        *type = "ACCOUNT";
        f = q_one(q, sql_account_get, &st, "ss", target, o->org_id);
    }
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 1, KMS_ERR_NO_SUCH_ENTITY,
               "We can't find a root, OU, or account with the "
               "TargetId that you specified.");
    snprintf(name, name_size, "%s", col_s(st, 1));
    sqlite3_reset(st);
    return 0;
}

int kms_iam_org_policy_list_for_target(kms_iam *iam, const char *account_id, const char *target_id,
                                       const char *filter, json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, false, account_id, &o));
    const char *type = NULL;
    char name[130];
    int r = target_check(&q, &o, target_id, &type, name, sizeof name);
    if (r == 0) {
        r = summaries(&q, &o, sql_scp_for_target, target_id, filter, out);
    }
    q_end(&q);
    return r;
}

int kms_iam_org_policy_list_targets(kms_iam *iam, const char *account_id, const char *policy_id,
                                    json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, false, account_id, &o));
    sqlite3_stmt *st = NULL;
    json_t *items = json_array();
    char(*targets)[40] = NULL;
    size_t n = 0;
    int r = -1;
    if (items == NULL || scp_get(&q, &o, policy_id, &st) != 0 ||
        q_stmt(&q, sql_scp_targets, &st, "s", policy_id) != 0) {
        goto out;
    }
    int s;
    while ((s = q_step(&q, st)) == 1) {
        char(*p)[40] = realloc(targets, (n + 1) * sizeof *targets);
        if (p == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        targets = p;
        snprintf(targets[n++], sizeof targets[0], "%s", col_s(st, 0));
    }
    sqlite3_reset(st);
    if (s < 0) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *type = NULL;
        char name[130], arn[200];
        /* Attachments of other organizations (FullAWSAccess is shared) are not listed. */
        if (target_check(&q, &o, targets[i], &type, name, sizeof name) != 0) {
            if (kms_last_error() != KMS_ERR_NO_SUCH_ENTITY) {
                goto out;
            }
            kms_error_clear();
            continue;
        }
        if (strcmp(type, "ROOT") == 0) {
            root_arn(&o, arn, sizeof arn);
        } else if (strcmp(type, "ACCOUNT") == 0) {
            account_arn(&o, targets[i], arn, sizeof arn);
        } else {
            ou_arn(&o, targets[i], arn, sizeof arn);
        }
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "TargetId", targets[i], "Arn", arn, "Name",
                              name, "Type", type);
        if (j == NULL || json_array_append_new(items, j) != 0) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
    }
    r = wrap_list("Targets", &items, out);
out:
    free(targets);
    json_decref(items);
    q_end(&q);
    return r;
}

static int attachment_change(kms_iam *iam, const char *account_id, const char *policy_id,
                             const char *target_id, bool attach)
{
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, true, account_id, &o));
    sqlite3_stmt *st = NULL;
    const char *type = NULL;
    char name[130];
    int64_t count = 0;
    int r = -1;
    if (scp_get(&q, &o, policy_id, &st) != 0 ||
        target_check(&q, &o, target_id, &type, name, sizeof name) != 0) {
        goto out;
    }
    int f = q_one(&q, sql_scp_attached, &st, "ss", policy_id, target_id);
    if (f < 0) {
        goto out;
    }
    sqlite3_reset(st);
    if (attach) {
        if (f == 1) {
            kms_raise(KMS_ERR_ENTITY_EXISTS, "The selected policy is already attached to the "
                                             "specified target.");
            goto out;
        }
        if (q_exec(&q, sql_attach, "ss", policy_id, target_id) != 0) {
            goto out;
        }
    } else {
        if (f == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The policy you specified isn't attached to the "
                                              "specified target in the specified root.");
            goto out;
        }
        /* Every root, OU and account keeps at least one SCP (ConstraintViolationException). */
        if (q_int(&q, sql_scp_count_target, &count, "s", target_id) != 0) {
            goto out;
        }
        if (count <= 1) {
            kms_raise(KMS_ERR_LIMIT_EXCEEDED,
                      "You cannot remove the last service control policy from a target "
                      "(ConstraintViolationException).");
            goto out;
        }
        if (q_exec(&q, sql_scp_detach, "ss", policy_id, target_id) != 0) {
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

int kms_iam_org_policy_attach(kms_iam *iam, const char *account_id, const char *policy_id,
                              const char *target_id)
{
    return attachment_change(iam, account_id, policy_id, target_id, true);
}

int kms_iam_org_policy_detach(kms_iam *iam, const char *account_id, const char *policy_id,
                              const char *target_id)
{
    return attachment_change(iam, account_id, policy_id, target_id, false);
}

int kms_iam_org_policy_delete(kms_iam *iam, const char *account_id, const char *policy_id)
{
    iam_q q;
    org_info o;
    KMS_GUARD(org_begin(iam, &q, true, account_id, &o));
    sqlite3_stmt *st = NULL;
    int64_t count = 0;
    int r = -1;
    if (scp_get(&q, &o, policy_id, &st) != 0) {
        goto out;
    }
    if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
        kms_raise(KMS_ERR_ACCESS_DENIED, "You can't delete an AWS managed policy.");
        goto out;
    }
    sqlite3_reset(st);
    if (q_int(&q, sql_scp_count_attached, &count, "s", policy_id) != 0) {
        goto out;
    }
    if (count > 0) {
        kms_raise(KMS_ERR_DELETE_CONFLICT, "The policy is attached to one or more entities. You "
                                           "must detach it from all roots, OUs, and accounts "
                                           "before performing this operation.");
        goto out;
    }
    if (q_exec(&q, sql_scp_delete, "s", policy_id) != 0 || q_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    q_end(&q);
    return r;
}
