/* The IAM handle, the documents the gate evaluates, the generation counter, and account
 * bootstrap (kmsctl init). */
#include "iam/iam.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam/iam_internal.h"
#include "util/secmem.h"
#include "util/util.h"

kms_iam *kms_iam_new(kms_store *store, const kms_iam_sealer *sealer, const char *region)
{
    if (store == NULL || sealer == NULL || sealer->seal == NULL || sealer->open == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "IAM needs a store and a sealer");
        return NULL;
    }
    if (kms_util_init() != 0) {
        return NULL;
    }
    kms_iam *iam = calloc(1, sizeof *iam);
    if (iam == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    iam->cache_key = kms_secure_alloc(32);
    if (iam->cache_key == NULL) {
        free(iam);
        return NULL;
    }
    randombytes_buf(iam->cache_key, 32);
    iam->store = store;
    iam->sealer = *sealer;
    snprintf(iam->region, sizeof iam->region, "%s", region ? region : "us-east-1");
    pthread_mutex_init(&iam->lock, NULL);
    return iam;
}

void kms_iam_free(kms_iam *iam)
{
    if (iam == NULL) {
        return;
    }
    pthread_mutex_destroy(&iam->lock);
    kms_secure_free(iam->cache_key);
    sodium_memzero(iam->cache, sizeof iam->cache);
    free(iam);
}

/* ---- Generation --------------------------------------------------------------------------- */

static const char sql_generation[] = "SELECT value FROM meta WHERE name = 'iam_generation'";

int kms_iam_generation(kms_iam *iam, uint64_t *out)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    int64_t v = 0;
    int s = kms_db_int(q.c, sql_generation, KMS_DB_NO_PARAMS, &v, IAM_SQL_WHAT);
    kms_iam_end(&q);
    *out = (uint64_t)v;
    return s < 0 ? -1 : 0;
}

/* ---- Documents ---------------------------------------------------------------------------- */

void kms_iam_docs_clean_up(kms_iam_docs *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->identity_count; i++) {
        free(d->identity[i].id);
        free(d->identity[i].document);
    }
    free(d->identity);
    free(d->boundary);
    for (size_t l = 0; l < d->scp_levels; l++) {
        for (size_t i = 0; i < d->scp_counts[l]; i++) {
            free(d->scps[l][i].id);
            free(d->scps[l][i].document);
        }
        free(d->scps[l]);
    }
    free(d->scps);
    free(d->scp_counts);
    memset(d, 0, sizeof *d);
}

typedef struct doc_list {
    kms_iam_doc *items;
    size_t count;
} doc_list;

/* kms_db_column_dup as a value for doc_push: NULL (error raised) when out of memory. */
static char *column_dup(kms_db_stmt *st, int col)
{
    char *s = NULL;
    return kms_db_column_dup(st, col, &s) == 0 ? s : NULL;
}

static int doc_push(doc_list *l, char *id, char *document)
{
    kms_iam_doc *p = NULL;
    if (id != NULL && document != NULL) {
        p = realloc(l->items, (l->count + 1) * sizeof *p);
    }
    if (p == NULL) {
        free(id);
        free(document);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    l->items = p;
    l->items[l->count].id = id;
    l->items[l->count].document = document;
    l->count++;
    return 0;
}

static const char sql_inline_docs[] =
    "SELECT name, document FROM iam_inline_policies WHERE entity_id = ?1 ORDER BY name";
static const char sql_attached_docs[] =
    "SELECT p.arn, v.document FROM iam_attachments a "
    "JOIN iam_policies p ON p.policy_id = a.policy_id "
    "JOIN iam_policy_versions v ON v.policy_id = p.policy_id AND v.version = p.default_version "
    "WHERE a.entity_id = ?1 ORDER BY p.arn";
static const char sql_user_groups[] =
    "SELECT g.group_id, g.name FROM iam_group_members m JOIN iam_groups g ON "
    "g.group_id = m.group_id WHERE m.user_id = ?1 ORDER BY g.name";
static const char sql_boundary_doc_user[] =
    "SELECT v.document FROM iam_users u JOIN iam_policies p ON p.policy_id = u.boundary_id "
    "JOIN iam_policy_versions v ON v.policy_id = p.policy_id AND v.version = p.default_version "
    "WHERE u.user_id = ?1";
static const char sql_boundary_doc_role[] =
    "SELECT v.document FROM iam_roles r JOIN iam_policies p ON p.policy_id = r.boundary_id "
    "JOIN iam_policy_versions v ON v.policy_id = p.policy_id AND v.version = p.default_version "
    "WHERE r.role_id = ?1";

/* Inline (ids "KIND/NAME/inline/POLICY") and attached (ids: policy ARNs) documents of one
 * entity. */
static int entity_docs(iam_q *q, const iam_entity *e, doc_list *l)
{
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_open(q->c, sql_inline_docs, KMS_DB_PARAMS(kms_db_text(e->id)), &st));
    int s;
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        char *id = kms_strdup_printf("%s/%s/inline/%s", kms_iam_kind_name(e->kind), e->name,
                                     kms_db_column_text(st, 0));
        if (doc_push(l, id, column_dup(st, 1)) != 0) {
            s = -1;
            break;
        }
    }
    kms_db_reset(st);
    KMS_GUARD(s < 0 ? -1 : 0);
    KMS_GUARD(kms_db_open(q->c, sql_attached_docs, KMS_DB_PARAMS(kms_db_text(e->id)), &st));
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        if (doc_push(l, column_dup(st, 0), column_dup(st, 1)) != 0) {
            s = -1;
            break;
        }
    }
    kms_db_reset(st);
    return s < 0 ? -1 : 0;
}

static int boundary_doc(iam_q *q, const char *sql, const char *id, char **out)
{
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q->c, sql, KMS_DB_PARAMS(kms_db_text(id)), &st, IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    if (f == 1) {
        int r = kms_db_column_dup(st, 0, out);
        kms_db_reset(st);
        KMS_GUARD(r);
    }
    return 0;
}

static int user_docs(iam_q *q, const iam_entity *u, doc_list *l, char **boundary)
{
    KMS_GUARD(entity_docs(q, u, l));
    /* Groups first into memory: entity_docs reuses statements on this connection. */
    iam_entity groups[16];
    size_t n = 0;
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_open(q->c, sql_user_groups, KMS_DB_PARAMS(kms_db_text(u->id)), &st));
    int s;
    while (n < sizeof groups / sizeof groups[0] && (s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        memset(&groups[n], 0, sizeof groups[n]);
        groups[n].kind = KMS_IAM_GROUP;
        if (kms_db_column_copy(st, 0, groups[n].id, sizeof groups[n].id, IAM_SQL_SUBJECT) != 0 ||
            kms_db_column_copy(st, 1, groups[n].name, sizeof groups[n].name, IAM_SQL_SUBJECT) !=
                0) {
            s = -1;
            break;
        }
        n++;
    }
    kms_db_reset(st);
    KMS_GUARD(s < 0 ? -1 : 0);
    for (size_t i = 0; i < n; i++) {
        KMS_GUARD(entity_docs(q, &groups[i], l));
    }
    return boundary_doc(q, sql_boundary_doc_user, u->id, boundary);
}

/* ---- SCP levels --------------------------------------------------------------------------- */

static const char sql_account_org[] =
    "SELECT a.org_id, a.parent_id, o.management_account_id FROM iam_accounts a "
    "JOIN org_organizations o ON o.org_id = a.org_id WHERE a.account_id = ?1";
static const char sql_ou_parent[] = "SELECT parent_id FROM org_units WHERE ou_id = ?1";
static const char sql_target_scps[] =
    "SELECT p.policy_id, p.content, p.org_id FROM org_attachments a "
    "JOIN org_policies p ON p.policy_id = a.policy_id WHERE a.target_id = ?1 "
    "ORDER BY p.policy_id";

#define OU_DEPTH_MAX 8 /* Organizations: at most five levels of OUs under the root */

int kms_iam_scp_arn(const char *org_id, const char *mgmt, const char *policy_id, bool aws_managed,
                    char *out, size_t size)
{
    if (aws_managed) {
        snprintf(out, size, "arn:aws:organizations::aws:policy/service_control_policy/%s",
                 policy_id);
    } else {
        snprintf(out, size, "arn:aws:organizations::%s:policy/%s/service_control_policy/%s", mgmt,
                 org_id, policy_id);
    }
    return 0;
}

static int target_scps(iam_q *q, const char *target, const char *org_id, const char *mgmt,
                       doc_list *l)
{
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_open(q->c, sql_target_scps, KMS_DB_PARAMS(kms_db_text(target)), &st));
    int s;
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        char arn[300];
        kms_iam_scp_arn(org_id, mgmt, kms_db_column_text(st, 0), kms_db_column_is_null(st, 2), arn,
                        sizeof arn);
        if (doc_push(l, strdup(arn), column_dup(st, 1)) != 0) {
            s = -1;
            break;
        }
    }
    kms_db_reset(st);
    return s < 0 ? -1 : 0;
}

static int scp_levels(iam_q *q, const char *account_id, kms_iam_docs *out)
{
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q->c, sql_account_org, KMS_DB_PARAMS(kms_db_text(account_id)), &st,
                         IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    if (f == 0) {
        return 0;
    }
    char org_id[40], parent[40], mgmt[13];
    KMS_GUARD(kms_db_column_copy(st, 0, org_id, sizeof org_id, IAM_SQL_SUBJECT));
    parent[0] = '\0';
    if (!kms_db_column_is_null(st, 1)) {
        KMS_GUARD(kms_db_column_copy(st, 1, parent, sizeof parent, IAM_SQL_SUBJECT));
    }
    KMS_GUARD(kms_db_column_copy(st, 2, mgmt, sizeof mgmt, IAM_SQL_SUBJECT));
    kms_db_reset(st);
    snprintf(out->org_id, sizeof out->org_id, "%s", org_id);
    /* SCPs never restrict the management account. */
    if (strcmp(mgmt, account_id) == 0) {
        return 0;
    }
    /* The chain from the account up to the root, then evaluated root first. */
    char chain[OU_DEPTH_MAX + 2][40];
    size_t depth = 0;
    snprintf(chain[depth++], sizeof chain[0], "%s", account_id);
    while (parent[0] != '\0' && depth < OU_DEPTH_MAX + 2) {
        snprintf(chain[depth++], sizeof chain[0], "%s", parent);
        if (strncmp(parent, "ou-", 3) != 0) {
            break;
        }
        f = kms_db_first(q->c, sql_ou_parent, KMS_DB_PARAMS(kms_db_text(parent)), &st,
                         IAM_SQL_WHAT);
        KMS_GUARD(f < 0 ? -1 : 0);
        KMS_ENSURE(f == 1, KMS_ERR_HOME, "organizational unit %s has no parent", parent);
        KMS_GUARD(kms_db_column_copy(st, 0, parent, sizeof parent, IAM_SQL_SUBJECT));
        kms_db_reset(st);
    }
    out->scps = calloc(depth, sizeof *out->scps);
    out->scp_counts = calloc(depth, sizeof *out->scp_counts);
    KMS_ENSURE(out->scps != NULL && out->scp_counts != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t level = 0; level < depth; level++) {
        doc_list l = {0};
        int r = target_scps(q, chain[depth - 1 - level], org_id, mgmt, &l);
        out->scps[level] = l.items;
        out->scp_counts[level] = l.count;
        out->scp_levels = level + 1;
        KMS_GUARD(r);
    }
    return 0;
}

static const char sql_account_ids[] = "SELECT account_id FROM iam_accounts ORDER BY account_id";

static int account_id_row(kms_db_stmt *st, void *arg)
{
    json_t *ids = arg;
    if (json_array_append_new(ids, json_string(kms_db_column_text(st, 0))) != 0) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

int kms_iam_account_ids(kms_iam *iam, json_t **out)
{
    *out = NULL;
    json_t *ids = json_array();
    KMS_ENSURE(ids != NULL, KMS_ERR_INTERNAL, "out of memory");
    iam_q q;
    if (kms_iam_begin(iam, &q, false) != 0) {
        json_decref(ids);
        return -1;
    }
    int r = kms_db_conn_query(q.c, sql_account_ids, KMS_DB_NO_PARAMS, account_id_row, ids,
                              IAM_SQL_WHAT, NULL);
    kms_iam_end(&q);
    if (r != 0) {
        json_decref(ids);
        return -1;
    }
    *out = ids;
    return 0;
}

int kms_iam_account_org(kms_iam *iam, const char *account_id, char org_id[40])
{
    org_id[0] = '\0';
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q.c, sql_account_org, KMS_DB_PARAMS(kms_db_text(account_id)), &st,
                         IAM_SQL_WHAT);
    int r = f < 0 ? -1 : 0;
    if (f == 1) {
        r = kms_db_column_copy(st, 0, org_id, 40, IAM_SQL_SUBJECT);
    }
    kms_iam_end(&q);
    return r;
}

static const char sql_role_of_session[] =
    "SELECT role_id, name, path, creation_date, 0 FROM iam_roles WHERE account_id = ?1 AND "
    "name = ?2";

int kms_iam_load_docs(kms_iam *iam, const kms_identity *id, kms_iam_docs *out)
{
    memset(out, 0, sizeof *out);
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    doc_list l = {0};
    int r = -1;
    iam_entity e;
    /* One read transaction: the documents and the generation come from the same snapshot, so a
     * cache keyed by the generation never holds documents older than their number. */
    int64_t generation = 0;
    if (kms_db_begin_read(q.c, "cannot begin a read transaction") != 0) {
        goto out;
    }
    if (kms_db_int(q.c, sql_generation, KMS_DB_NO_PARAMS, &generation, IAM_SQL_WHAT) < 0) {
        goto out;
    }
    out->generation = (uint64_t)generation;
    if (strcmp(id->type, "AssumedRole") == 0) {
        kms_db_stmt *st = NULL;
        int f = kms_db_first(q.c, sql_role_of_session,
                             KMS_DB_PARAMS(kms_db_text(id->account_id), kms_db_text(id->role_name)),
                             &st, IAM_SQL_WHAT);
        if (f <= 0) {
            if (f == 0) {
                /* The role was deleted: its sessions are revoked. */
                kms_raise(KMS_ERR_EXPIRED_TOKEN,
                          "The security token included in the request is expired");
            }
            goto out;
        }
        memset(&e, 0, sizeof e);
        e.kind = KMS_IAM_ROLE;
        if (kms_db_column_copy(st, 0, e.id, sizeof e.id, IAM_SQL_SUBJECT) != 0 ||
            kms_db_column_copy(st, 1, e.name, sizeof e.name, IAM_SQL_SUBJECT) != 0) {
            goto out;
        }
        kms_db_reset(st);
        if (entity_docs(&q, &e, &l) != 0 ||
            boundary_doc(&q, sql_boundary_doc_role, e.id, &out->boundary) != 0) {
            goto out;
        }
    } else if (strcmp(id->type, "IAMUser") == 0) {
        if (kms_iam_entity_find(&q, id->account_id, KMS_IAM_USER, id->user_name, &e) != 0 ||
            user_docs(&q, &e, &l, &out->boundary) != 0) {
            goto out;
        }
    } else if (strcmp(id->type, "Root") != 0) {
        kms_raise(KMS_ERR_INTERNAL, "unknown identity type %s", id->type);
        goto out;
    }
    if (scp_levels(&q, id->account_id, out) != 0) {
        goto out;
    }
    r = 0;
out:
    out->identity = l.items;
    out->identity_count = l.count;
    kms_iam_end(&q);
    if (r != 0) {
        kms_iam_docs_clean_up(out);
    }
    return r;
}

/* ---- Bootstrap ---------------------------------------------------------------------------- */

static const char sql_root_insert[] =
    "INSERT INTO iam_users (user_id, account_id, name, path, is_root, creation_date) "
    "VALUES (?1, ?1, '<root>', '/', 1, ?2)";
static const char sql_root_exists[] =
    "SELECT 1 FROM iam_users WHERE account_id = ?1 AND is_root = 1";
static const char sql_member_add[] =
    "INSERT INTO iam_group_members (group_id, user_id) VALUES (?1, ?2)";

int kms_iam_root_create_tx(iam_q *q, const char *account_id, int64_t now)
{
    KMS_GUARD(kms_iam_account_ensure(q, account_id, now));
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q->c, sql_root_exists, KMS_DB_PARAMS(kms_db_text(account_id)), &st,
                         IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 0, KMS_ERR_ENTITY_EXISTS, "Account %s already exists.", account_id);
    /* The root user's id is the account id (its principal id in CloudTrail). */
    return kms_db_exec_sql(q->c, sql_root_insert,
                           KMS_DB_PARAMS(kms_db_text(account_id), kms_db_int64(now)), IAM_SQL_WHAT);
}

void kms_iam_password_policy_default(kms_iam_password_policy *out)
{
    /* CIS AWS Foundations 1.8-1.9: length 14 and password reuse; the rest as AWS proposes. */
    static const kms_iam_password_policy policy = {
        .minimum_password_length = 14,
        .require_symbols = true,
        .require_numbers = true,
        .require_uppercase_characters = true,
        .require_lowercase_characters = true,
        .allow_users_to_change_password = true,
        .max_password_age = 90,
        .password_reuse_prevention = 24,
        .hard_expiry = false,
    };
    *out = policy;
}

int kms_iam_bootstrap(kms_iam *iam, const char *account_id, int64_t now, char access_key_id[32],
                      char **secret)
{
    *secret = NULL;
    KMS_GUARD(kms_iam_account_check(account_id));
    kms_iam_password_policy policy;
    kms_iam_password_policy_default(&policy);
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    char org_id[16], root_id[16];
    iam_entity group, user;
    int r = -1;
    if (kms_iam_root_create_tx(&q, account_id, now) != 0 ||
        kms_iam_org_create_tx(&q, account_id, now, org_id, root_id) != 0 ||
        kms_iam_group_insert(&q, account_id, "/", "Admins", now, &group) != 0 ||
        kms_iam_attach_tx(&q, group.id, IAM_ADMIN_POLICY_ID) != 0 ||
        kms_iam_user_insert(&q, account_id, "/", "admin", NULL, NULL, 0, now, &user) != 0 ||
        kms_db_exec_sql(q.c, sql_member_add,
                        KMS_DB_PARAMS(kms_db_text(group.id), kms_db_text(user.id)),
                        IAM_SQL_WHAT) != 0 ||
        kms_iam_access_key_insert(&q, &user, now, access_key_id, secret) != 0 ||
        kms_iam_password_policy_insert(&q, account_id, &policy) != 0 || kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    if (r != 0) {
        kms_iam_secret_free(*secret);
        *secret = NULL;
    }
    return r;
}
