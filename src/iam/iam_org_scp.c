/* Service control policies and their attachments to the root, OUs and accounts
 * (CreatePolicy ... DeletePolicy of AWS Organizations). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam/iam_org.h"
#include "util/util.h"

#define SCP_MAX_LEN 5120

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
static const char sql_attach[] =
    "INSERT INTO org_attachments (policy_id, target_id) VALUES (?1, ?2)";
static const char sql_target_detach_all[] = "DELETE FROM org_attachments WHERE target_id = ?1";

int kms_iam_org_attach_tx(iam_q *q, const char *policy_id, const char *target_id)
{
    return kms_db_exec_sql(q->c, sql_attach,
                           KMS_DB_PARAMS(kms_db_text(policy_id), kms_db_text(target_id)),
                           IAM_SQL_WHAT);
}

int kms_iam_org_detach_all_tx(iam_q *q, const char *target_id)
{
    return kms_db_exec_sql(q->c, sql_target_detach_all, KMS_DB_PARAMS(kms_db_text(target_id)),
                           IAM_SQL_WHAT);
}

static json_t *summary_json(kms_db_stmt *st, const void *org)
{
    const org_info *o = org;
    bool aws = kms_db_column_is_null(st, 1);
    char arn[300];
    kms_iam_scp_arn(o->org_id, o->mgmt, kms_db_column_text(st, 0), aws, arn, sizeof arn);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "Id", kms_db_column_text(st, 0), "Arn", arn,
                  "Name", kms_db_column_text(st, 2), "Description", kms_db_column_text(st, 3),
                  "Type", kms_db_column_text(st, 4), "AwsManaged", aws);
    if (j == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return j;
}

static json_t *policy_json(const org_info *o, kms_db_stmt *st)
{
    json_t *s = summary_json(st, o);
    json_t *j =
        s ? json_pack("{s:o, s:s}", "PolicySummary", s, "Content", kms_db_column_text(st, 5))
          : NULL;
    if (s != NULL && j == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return j;
}

/* The policy row (statement left on it); NoSuchEntity ("PolicyNotFoundException"). */
static int scp_get(iam_q *q, const org_info *o, const char *policy_id, kms_db_stmt **st)
{
    KMS_ENSURE(policy_id != NULL, KMS_ERR_VALIDATION, "PolicyId must not be empty");
    int f = kms_db_first(q->c, sql_scp_get,
                         KMS_DB_PARAMS(kms_db_text(policy_id), kms_db_text(o->org_id)), st,
                         IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 1, KMS_ERR_NO_SUCH_ENTITY,
               "We can't find a policy with the PolicyId that "
               "you specified.");
    return 0;
}

static int type_check(const char *type)
{
    KMS_ENSURE(type == NULL || strcmp(type, IAM_SCP_TYPE) == 0, KMS_ERR_VALIDATION,
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
    KMS_GUARD(kms_iam_org_begin(iam, &q, true, account_id, &o));
    kms_db_stmt *st = NULL;
    json_t *j = NULL;
    char id[16];
    int r = -1;
    int f =
        kms_db_first(q.c, sql_scp_name_taken,
                     KMS_DB_PARAMS(kms_db_text(o.org_id), kms_db_text(name)), &st, IAM_SQL_WHAT);
    if (f != 0) {
        if (f == 1) {
            kms_raise(KMS_ERR_ENTITY_EXISTS, "A policy with the same name already exists.");
        }
        goto out;
    }
    kms_iam_random_id(id, sizeof id, "p-", 8, IAM_LOWER_ALNUM);
    if (kms_db_exec_sql(q.c, sql_scp_insert,
                        KMS_DB_PARAMS(kms_db_text(id), kms_db_text(o.org_id), kms_db_text(name),
                                      kms_db_text(description ? description : ""),
                                      kms_db_text(IAM_SCP_TYPE), kms_db_text(content)),
                        IAM_SQL_WHAT) != 0 ||
        (policy != NULL && (scp_get(&q, &o, id, &st) != 0 || (j = policy_json(&o, st)) == NULL)) ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    if (policy != NULL) {
        *policy = j;
        j = NULL;
    }
    r = 0;
out:
    json_decref(j);
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_policy_describe(kms_iam *iam, const char *account_id, const char *policy_id,
                                json_t **policy)
{
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, false, account_id, &o));
    kms_db_stmt *st = NULL;
    int r = scp_get(&q, &o, policy_id, &st);
    if (r == 0) {
        *policy = policy_json(&o, st);
        r = *policy ? 0 : -1;
    }
    kms_iam_end(&q);
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
    KMS_GUARD(kms_iam_org_begin(iam, &q, true, account_id, &o));
    kms_db_stmt *st = NULL;
    json_t *j = NULL;
    int r = -1;
    if (scp_get(&q, &o, policy_id, &st) != 0) {
        goto out;
    }
    if (kms_db_column_is_null(st, 1)) {
        kms_raise(KMS_ERR_ACCESS_DENIED, "You can't change an AWS managed policy.");
        goto out;
    }
    kms_db_reset(st);
    if (kms_db_exec_sql(q.c, sql_scp_update,
                        KMS_DB_PARAMS(kms_db_text(policy_id), kms_db_text(name),
                                      kms_db_text(description), kms_db_text(content)),
                        IAM_SQL_WHAT) != 0 ||
        (policy != NULL &&
         (scp_get(&q, &o, policy_id, &st) != 0 || (j = policy_json(&o, st)) == NULL)) ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    if (policy != NULL) {
        *policy = j;
        j = NULL;
    }
    r = 0;
out:
    json_decref(j);
    kms_iam_end(&q);
    return r;
}

/* Runs a policy listing (?1 scope, ?2 type) into {"<member>": [summaries]}. */
static int summaries(iam_q *q, const org_info *o, const char *sql, const char *scope,
                     const char *filter, json_t **out)
{
    KMS_GUARD(type_check(filter));
    json_t *items = json_array();
    KMS_ENSURE(items != NULL, KMS_ERR_INTERNAL, "out of memory");
    kms_db_stmt *st = NULL;
    int r = -1;
    if (kms_db_open(q->c, sql, KMS_DB_PARAMS(kms_db_text(scope), kms_db_text(IAM_SCP_TYPE)), &st) !=
        0) {
        goto out;
    }
    if (kms_iam_rows_append(st, summary_json, o, items) != 0) {
        goto out;
    }
    r = kms_iam_org_list_wrap("Policies", &items, out);
out:
    json_decref(items);
    return r;
}

int kms_iam_org_policy_list(kms_iam *iam, const char *account_id, const char *filter, json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, false, account_id, &o));
    int r = summaries(&q, &o, sql_scp_list, o.org_id, filter, out);
    kms_iam_end(&q);
    return r;
}

/* NoSuchEntity ("TargetNotFoundException") unless target is the root, an OU or an account of
 * the organization. *type receives ROOT, ORGANIZATIONAL_UNIT or ACCOUNT; name its name. */
static int target_check(iam_q *q, const org_info *o, const char *target, const char **type,
                        char *name, size_t name_size)
{
    KMS_ENSURE(target != NULL, KMS_ERR_VALIDATION, "TargetId must not be empty");
    if (strcmp(target, o->root_id) == 0) {
        *type = "ROOT";
        snprintf(name, name_size, "Root");
        return 0;
    }
    int f;
    if (strncmp(target, "ou-", 3) == 0) {
        *type = "ORGANIZATIONAL_UNIT";
        f = kms_iam_org_ou_get(q, o, target, name, name_size, NULL, 0);
    } else {
        *type = "ACCOUNT";
        f = kms_iam_org_member_name(q, o, target, name, name_size);
    }
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 1, KMS_ERR_NO_SUCH_ENTITY,
               "We can't find a root, OU, or account with the "
               "TargetId that you specified.");
    return 0;
}

int kms_iam_org_policy_list_for_target(kms_iam *iam, const char *account_id, const char *target_id,
                                       const char *filter, json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, false, account_id, &o));
    const char *type = NULL;
    char name[130];
    int r = target_check(&q, &o, target_id, &type, name, sizeof name);
    if (r == 0) {
        r = summaries(&q, &o, sql_scp_for_target, target_id, filter, out);
    }
    kms_iam_end(&q);
    return r;
}

int kms_iam_org_policy_list_targets(kms_iam *iam, const char *account_id, const char *policy_id,
                                    json_t **out)
{
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, false, account_id, &o));
    kms_db_stmt *st = NULL;
    json_t *items = json_array();
    char(*targets)[40] = NULL;
    size_t n = 0;
    int r = -1;
    if (items == NULL || scp_get(&q, &o, policy_id, &st) != 0 ||
        kms_db_open(q.c, sql_scp_targets, KMS_DB_PARAMS(kms_db_text(policy_id)), &st) != 0) {
        goto out;
    }
    int s;
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        char(*p)[40] = realloc(targets, (n + 1) * sizeof *targets);
        if (p == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        targets = p;
        snprintf(targets[n++], sizeof targets[0], "%s", kms_db_column_text(st, 0));
    }
    kms_db_reset(st);
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
            kms_iam_org_root_arn(&o, arn, sizeof arn);
        } else if (strcmp(type, "ACCOUNT") == 0) {
            kms_iam_org_account_arn(&o, targets[i], arn, sizeof arn);
        } else {
            kms_iam_org_ou_arn(&o, targets[i], arn, sizeof arn);
        }
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "TargetId", targets[i], "Arn", arn, "Name",
                              name, "Type", type);
        if (j == NULL || json_array_append_new(items, j) != 0) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
    }
    r = kms_iam_org_list_wrap("Targets", &items, out);
out:
    free(targets);
    json_decref(items);
    kms_iam_end(&q);
    return r;
}

static int attachment_change(kms_iam *iam, const char *account_id, const char *policy_id,
                             const char *target_id, bool attach)
{
    iam_q q;
    org_info o;
    KMS_GUARD(kms_iam_org_begin(iam, &q, true, account_id, &o));
    kms_db_stmt *st = NULL;
    const char *type = NULL;
    char name[130];
    int64_t count = 0;
    int r = -1;
    if (scp_get(&q, &o, policy_id, &st) != 0 ||
        target_check(&q, &o, target_id, &type, name, sizeof name) != 0) {
        goto out;
    }
    int f = kms_db_first(q.c, sql_scp_attached,
                         KMS_DB_PARAMS(kms_db_text(policy_id), kms_db_text(target_id)), &st,
                         IAM_SQL_WHAT);
    if (f < 0) {
        goto out;
    }
    kms_db_reset(st);
    if (attach) {
        if (f == 1) {
            kms_raise(KMS_ERR_ENTITY_EXISTS, "The selected policy is already attached to the "
                                             "specified target.");
            goto out;
        }
        if (kms_iam_org_attach_tx(&q, policy_id, target_id) != 0) {
            goto out;
        }
    } else {
        if (f == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "The policy you specified isn't attached to the "
                                              "specified target in the specified root.");
            goto out;
        }
        /* Every root, OU and account keeps at least one SCP (ConstraintViolationException). */
        if (kms_db_int(q.c, sql_scp_count_target, KMS_DB_PARAMS(kms_db_text(target_id)), &count,
                       IAM_SQL_WHAT) < 0) {
            goto out;
        }
        if (count <= 1) {
            kms_raise(KMS_ERR_LIMIT_EXCEEDED,
                      "You cannot remove the last service control policy from a target "
                      "(ConstraintViolationException).");
            goto out;
        }
        if (kms_db_exec_sql(q.c, sql_scp_detach,
                            KMS_DB_PARAMS(kms_db_text(policy_id), kms_db_text(target_id)),
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
    KMS_GUARD(kms_iam_org_begin(iam, &q, true, account_id, &o));
    kms_db_stmt *st = NULL;
    int64_t count = 0;
    int r = -1;
    if (scp_get(&q, &o, policy_id, &st) != 0) {
        goto out;
    }
    if (kms_db_column_is_null(st, 1)) {
        kms_raise(KMS_ERR_ACCESS_DENIED, "You can't delete an AWS managed policy.");
        goto out;
    }
    kms_db_reset(st);
    if (kms_db_int(q.c, sql_scp_count_attached, KMS_DB_PARAMS(kms_db_text(policy_id)), &count,
                   IAM_SQL_WHAT) < 0) {
        goto out;
    }
    if (count > 0) {
        kms_raise(KMS_ERR_DELETE_CONFLICT, "The policy is attached to one or more entities. You "
                                           "must detach it from all roots, OUs, and accounts "
                                           "before performing this operation.");
        goto out;
    }
    if (kms_db_exec_sql(q.c, sql_scp_delete, KMS_DB_PARAMS(kms_db_text(policy_id)), IAM_SQL_WHAT) !=
            0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}
