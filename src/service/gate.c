/* THE GATE: authenticate -> authorize -> execute -> audit, one road for every operation.
 *
 * Authenticate: gate_authenticate.c.
 * Authorize: AWS's evaluation logic (src/policy) over SCPs, the key policy or other resource
 * policy, identity-based policies, the permissions boundary and the session policy; for KMS keys
 * then grants. Nothing runs without a decision: kms_gate_end refuses a success that was never
 * authorised. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/audit_trail.h"
#include "service/gate.h"
#include "service/ops.h"
#include "service/ops_grants.h"
#include "util/util.h"

/* ---- The service's own work ----------------------------------------------------------------- */

int kms_gate_begin_service(kms_request *rq, kms_client *client, const char *operation)
{
    memset(rq, 0, sizeof *rq);
    kms_error_clear();
    rq->client = client;
    rq->operation = operation;
    rq->started = kms_now();
    rq->service = true;
    KMS_ENSURE(client != NULL, KMS_ERR_VALIDATION, "no client");
    kms_audit *audit = NULL;
    KMS_GUARD(kms_audit_trail_of_client(client, &audit));
    return kms_audit_announce(audit);
}

int kms_gate_authorize_service(kms_request *rq, const char *action, const char *key_arn)
{
    char account[13] = "";
    KMS_ENSURE(rq->service, KMS_ERR_ACCESS_DENIED, "%s is work of the service, not of a caller",
               action);
    /* The certificate manager's own work (scheduler_pca.c's CRLs and purges, ACM's renewals and
     * expiry warnings) acts on resources of every account of the home. */
    bool pki = strcmp(action, "acm-pca:GenerateCRL") == 0 ||
               strcmp(action, "acm-pca:DeleteCertificateAuthority") == 0 ||
               strcmp(action, "acm:RenewCertificate") == 0 ||
               strcmp(action, "acm:CertificateApproachingExpiration") == 0;
    KMS_ENSURE(pki || strcmp(action, "kms:RotateKey") == 0 || strcmp(action, "kms:DeleteKey") == 0,
               KMS_ERR_ACCESS_DENIED, "the service does not perform %s on its own", action);
    KMS_ENSURE(kms_policy_arn_account(key_arn, account) == 0 &&
                   (pki || strcmp(account, rq->client->cfg.account_id) == 0),
               KMS_ERR_ACCESS_DENIED, "%s is not a key of this KMS home", key_arn);
    rq->action = action;
    rq->authorized = true;
    kms_audit_trail_resource(rq, key_arn);
    return 0;
}

/* ---- The request context ------------------------------------------------------------------- */

static int ctx_add(kms_policy_ctx *ctx, const char *key, const char *value)
{
    return value != NULL && value[0] != '\0' ? kms_policy_ctx_add(ctx, key, value) : 0;
}

/* Where the request came from: the connection of a network request; an in-process call crosses
 * no network (nothing travels in the clear, and it comes from this machine). */
static int ctx_add_origin(kms_policy_ctx *ctx, const kms_request *rq)
{
    const kms_gate_caller *caller = rq->caller;
    if (caller == NULL || caller->net == NULL) {
        KMS_GUARD(ctx_add(ctx, "aws:SecureTransport", "true"));
        KMS_GUARD(ctx_add(ctx, "aws:SourceIp", "127.0.0.1"));
        return ctx_add(ctx, "aws:UserAgent", rq->client->user_agent);
    }
    const kms_network_request *net = caller->net;
    KMS_GUARD(ctx_add(ctx, "aws:SecureTransport", net->tls_version != NULL ? "true" : "false"));
    KMS_GUARD(ctx_add(ctx, "aws:SourceIp", net->source_ip));
    return ctx_add(ctx, "aws:UserAgent", caller->user_agent);
}

static int ctx_add_caller(kms_policy_ctx *ctx, const kms_request *rq)
{
    const kms_principal_snapshot *who = rq->who;
    const kms_identity *id = &who->id;
    char buf[64];
    int64_t now = kms_now();
    kms_time_iso8601(now, buf);
    KMS_GUARD(ctx_add(ctx, "aws:CurrentTime", buf));
    snprintf(buf, sizeof buf, "%lld", (long long)now);
    KMS_GUARD(ctx_add(ctx, "aws:EpochTime", buf));
    KMS_GUARD(ctx_add_origin(ctx, rq));
    KMS_GUARD(ctx_add(ctx, "aws:RequestedRegion", rq->client->cfg.region));
    KMS_GUARD(ctx_add(ctx, "aws:PrincipalArn", id->role_arn[0] ? id->role_arn : id->arn));
    KMS_GUARD(ctx_add(ctx, "aws:PrincipalAccount", id->account_id));
    KMS_GUARD(ctx_add(ctx, "kms:CallerAccount", id->account_id));
    KMS_GUARD(ctx_add(ctx, "aws:PrincipalOrgID", who->org_id));
    /* IAM User Guide, aws:PrincipalType: Account, User, FederatedUser, AssumedRole. */
    const char *ptype = strcmp(id->type, "Root") == 0      ? "Account"
                        : strcmp(id->type, "IAMUser") == 0 ? "User"
                                                           : id->type;
    KMS_GUARD(ctx_add(ctx, "aws:PrincipalType", ptype));
    KMS_GUARD(ctx_add(ctx, "aws:userid", id->principal_id));
    KMS_GUARD(ctx_add(ctx, "aws:username", id->user_name));
    /* IAM User Guide, aws:MultiFactorAuthPresent: absent for long-term credentials, "true" or
     * "false" for temporary ones. */
    if (id->session_expiry != 0) {
        KMS_GUARD(
            ctx_add(ctx, "aws:MultiFactorAuthPresent", id->mfa_authenticated ? "true" : "false"));
        if (id->mfa_authenticated) {
            snprintf(buf, sizeof buf, "%lld", (long long)(now - id->mfa_auth_time));
            KMS_GUARD(ctx_add(ctx, "aws:MultiFactorAuthAge", buf));
        }
    }
    for (size_t i = 0; i < id->tag_count; i++) {
        char key[160];
        snprintf(key, sizeof key, "aws:PrincipalTag/%s", id->tag_keys[i]);
        KMS_GUARD(ctx_add(ctx, key, id->tag_values[i]));
    }
    return 0;
}

/* kms:EncryptionContext:KEY = value and KEY in kms:EncryptionContextKeys (any key length). */
static int ctx_add_context_pair(kms_policy_ctx *ctx, const char *k, const char *v)
{
    static const char prefix[] = "kms:EncryptionContext:";
    char own[256];
    size_t n = strlen(k);
    /* A key of the usual length on the stack; a longer one on the heap. */
    char *key = n < sizeof own - (sizeof prefix - 1) ? own : malloc(sizeof prefix + n);
    KMS_ENSURE(key != NULL, KMS_ERR_INTERNAL, "out of memory");
    memcpy(key, prefix, sizeof prefix - 1);
    memcpy(key + sizeof prefix - 1, k, n + 1);
    int r = kms_policy_ctx_add(ctx, key, v);
    if (key != own) {
        free(key);
    }
    KMS_GUARD(r);
    return kms_policy_ctx_add(ctx, "kms:EncryptionContextKeys", k);
}

static int ctx_add_encryption_context(kms_policy_ctx *ctx, const kms_encryption_context *ec)
{
    for (size_t i = 0; ec != NULL && i < ec->count; i++) {
        KMS_GUARD(ctx_add_context_pair(ctx, ec->entries[i].key, ec->entries[i].value));
    }
    return 0;
}

/* Request members that are condition keys of AWS KMS (KMS Developer Guide, "AWS KMS condition
 * keys"), by the operations that take them. */
static const struct {
    const char *member;
    const char *key;
} request_keys[] = {
    {"EncryptionAlgorithm", "kms:EncryptionAlgorithm"},
    {"SigningAlgorithm", "kms:SigningAlgorithm"},
    {"MacAlgorithm", "kms:MacAlgorithm"},
    {"MessageType", "kms:MessageType"},
    {"PendingWindowInDays", "kms:ScheduleKeyDeletionPendingWindowInDays"},
    {"GranteePrincipal", "kms:GranteePrincipal"},
    {"RetiringPrincipal", "kms:RetiringPrincipal"},
    {"Operations", "kms:GrantOperations"},
    {"BypassPolicyLockoutSafetyCheck", "kms:BypassPolicyLockoutSafetyCheck"},
    {"KeySpec", "kms:KeySpec"},
    {"KeyPairSpec", "kms:DataKeyPairSpec"},
    {"KeyAgreementAlgorithm", "kms:KeyAgreementAlgorithm"},
    {"KeyUsage", "kms:KeyUsage"},
    {"Origin", "kms:KeyOrigin"},
    {"MultiRegion", "kms:MultiRegion"},
    /* IAM and STS (Service Authorization Reference: IAM, STS condition keys). */
    {"PolicyArn", "iam:PolicyARN"},
    {"PermissionsBoundary", "iam:PermissionsBoundary"},
    {"RoleSessionName", "sts:RoleSessionName"},
    {"DurationSeconds", "sts:DurationSeconds"},
};

/* aws:RequestTag/KEY and aws:TagKeys from a request's Tags ([{"Key", "Value"}]; KMS's are
 * [{"TagKey", "TagValue"}]), and aws:TagKeys from an untagging request's TagKeys. */
static int ctx_add_request_tags(kms_policy_ctx *ctx, json_t *tags, json_t *tag_keys)
{
    size_t i;
    json_t *t;
    json_array_foreach(tag_keys, i, t)
    {
        if (json_is_string(t)) {
            KMS_GUARD(kms_policy_ctx_add(ctx, "aws:TagKeys", json_string_value(t)));
        }
    }
    json_array_foreach(tags, i, t)
    {
        bool kms = json_object_get(t, "TagKey") != NULL;
        const char *k = json_string_value(json_object_get(t, kms ? "TagKey" : "Key"));
        const char *v = json_string_value(json_object_get(t, kms ? "TagValue" : "Value"));
        if (k == NULL) {
            continue;
        }
        char *key = kms_strdup_printf("aws:RequestTag/%s", k);
        KMS_ENSURE(key != NULL, KMS_ERR_INTERNAL, "out of memory");
        int r = kms_policy_ctx_add(ctx, key, v ? v : "");
        free(key);
        KMS_GUARD(r);
        KMS_GUARD(kms_policy_ctx_add(ctx, "aws:TagKeys", k));
    }
    return 0;
}

static int ctx_add_json(kms_policy_ctx *ctx, const char *key, json_t *v)
{
    char buf[32];
    if (json_is_string(v)) {
        return kms_policy_ctx_add(ctx, key, json_string_value(v));
    }
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return kms_policy_ctx_add(ctx, key, buf);
    }
    if (json_is_boolean(v)) {
        return kms_policy_ctx_add(ctx, key, json_is_true(v) ? "true" : "false");
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        KMS_GUARD(ctx_add_json(ctx, key, e));
    }
    return 0;
}

static bool is_alias_ref(const char *ref)
{
    return ref != NULL && (strncmp(ref, "alias/", 6) == 0 || strstr(ref, ":alias/") != NULL);
}

static int ctx_add_request(kms_policy_ctx *ctx, const kms_request *rq, const char *action,
                           const kms_key_record *rec)
{
    bool create = strcmp(action, "kms:CreateKey") == 0;
    for (size_t i = 0; rq->req != NULL && i < sizeof request_keys / sizeof request_keys[0]; i++) {
        json_t *v = json_object_get(rq->req, request_keys[i].member);
        bool key_attribute = strncmp(request_keys[i].key, "kms:Key", 7) == 0 ||
                             strcmp(request_keys[i].key, "kms:MultiRegion") == 0;
        /* KeySpec of GenerateDataKey is the data key's, not the KMS key's. */
        if (v != NULL && (!key_attribute || create)) {
            KMS_GUARD(ctx_add_json(ctx, request_keys[i].key, v));
        }
    }
    if (rq->req != NULL) {
        KMS_GUARD(ctx_add_request_tags(ctx, json_object_get(rq->req, "Tags"),
                                       json_object_get(rq->req, "TagKeys")));
    }
    if (rec != NULL) {
        KMS_GUARD(ctx_add(ctx, "kms:KeySpec", rec->key_spec));
        KMS_GUARD(ctx_add(ctx, "kms:KeyUsage", rec->key_usage));
        KMS_GUARD(ctx_add(ctx, "kms:KeyOrigin", rec->origin));
        KMS_GUARD(ctx_add(ctx, "kms:MultiRegion", "false"));
    }
    if (is_alias_ref(rq->key_ref)) {
        const char *a = strstr(rq->key_ref, "alias/");
        KMS_GUARD(ctx_add(ctx, "kms:RequestAlias", a));
    }
    if (rq->enc_ctx != NULL) {
        return ctx_add_encryption_context(ctx, rq->enc_ctx);
    }
    /* ReEncrypt is decided twice: ReEncryptFrom on the source context, ReEncryptTo on the
     * destination's (KMS Developer Guide, kms:EncryptionContext:). */
    const char *member = "EncryptionContext";
    if (strcmp(action, "kms:ReEncryptFrom") == 0) {
        member = "SourceEncryptionContext";
    } else if (strcmp(action, "kms:ReEncryptTo") == 0) {
        member = "DestinationEncryptionContext";
    }
    json_t *ec = rq->req ? json_object_get(rq->req, member) : NULL;
    const char *k;
    json_t *v;
    json_object_foreach(ec, k, v)
    {
        KMS_GUARD(ctx_add_context_pair(ctx, k, json_is_string(v) ? json_string_value(v) : ""));
    }
    return 0;
}

/* ---- What a key's policies may ask of it ---------------------------------------------------- */

/* Whether a policy in play for the request (besides the key policy kp) reads a condition key
 * beginning with lower_prefix. */
static bool policies_mention(const kms_request *rq, const kms_policy *kp, const char *lower_prefix)
{
    const kms_principal_snapshot *who = rq->who;
    bool found = kms_policy_mentions(kp, lower_prefix) ||
                 kms_policy_mentions(who->boundary, lower_prefix) ||
                 kms_policy_mentions(who->session, lower_prefix);
    for (size_t i = 0; !found && i < who->identity_count; i++) {
        found = kms_policy_mentions(who->identity[i], lower_prefix);
    }
    for (size_t i = 0; !found && i < who->scp_policy_count; i++) {
        found = kms_policy_mentions(who->scp_policies[i], lower_prefix);
    }
    return found;
}

static int ctx_add_attribute(void *arg, kms_store_attr_kind kind, const char *name,
                             const char *value)
{
    kms_policy_ctx *ctx = arg;
    if (kind == KMS_STORE_ATTR_ALIAS) {
        return kms_policy_ctx_add(ctx, "kms:ResourceAliases", name);
    }
    char *key = kms_strdup_printf("aws:ResourceTag/%s", name);
    KMS_ENSURE(key != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = kms_policy_ctx_add(ctx, key, value);
    free(key);
    return r;
}

/* aws:ResourceTag/KEY for each tag of the key and kms:ResourceAliases for each of its aliases
 * (KMS Developer Guide, "ABAC for AWS KMS"), read fresh for every request (nothing caches a
 * decision: untagging changes the next one), and only when a policy in play reads them, so
 * that the usual request spends no query on them. */
static int ctx_add_key_attributes(kms_policy_ctx *ctx, const kms_request *rq,
                                  const kms_key_record *rec, const kms_policy *kp)
{
    bool tags = policies_mention(rq, kp, "aws:resourcetag/");
    bool aliases = policies_mention(rq, kp, "kms:resourcealiases");
    return kms_store_key_attributes(rq->client->store, rec->key_id, tags, aliases,
                                    ctx_add_attribute, ctx);
}

/* ---- Decide --------------------------------------------------------------------------------- */

/* Which kind of policy a deny came from, for AWS's message. */
static const char *deny_source(const kms_principal_snapshot *who, const kms_eval_input *in,
                               const kms_eval_result *res)
{
    for (size_t i = 0; i < res->match_count; i++) {
        const kms_policy *p = res->matches[i].policy;
        if (!res->matches[i].deny) {
            continue;
        }
        if (p == in->resource_policy) {
            return "a resource-based policy";
        }
        if (p == in->boundary) {
            return "a permissions boundary";
        }
        if (p == in->session) {
            return "a session policy";
        }
        for (size_t j = 0; j < who->scp_policy_count; j++) {
            if (p == who->scp_policies[j]) {
                return "a service control policy";
            }
        }
        return "an identity-based policy";
    }
    return "a policy";
}

static int refuse(const kms_request *rq, const char *action, const char *resource,
                  const kms_eval_input *in, const kms_eval_result *res)
{
    const char *who = rq->who->id.arn;
    if (res->decision == KMS_DECISION_EXPLICIT_DENY) {
        return kms_raise(KMS_ERR_ACCESS_DENIED,
                         "User: %s is not authorized to perform: %s on resource: %s with an "
                         "explicit deny in %s",
                         who, action, resource, deny_source(rq->who, in, res));
    }
    if (res->reserved) {
        return kms_raise(KMS_ERR_ACCESS_DENIED,
                         "User: %s is not authorized to perform: %s on resource: %s because it "
                         "belongs to an AWS service (a service-linked role or an alias/aws/ "
                         "alias): no policy can allow that",
                         who, action, resource);
    }
    const char *why = "no identity-based policy allows";
    bool resource_matched = false;
    for (size_t i = 0; i < res->match_count; i++) {
        resource_matched = resource_matched ||
                           (!res->matches[i].deny && res->matches[i].policy == in->resource_policy);
    }
    if (res->scp_denied) {
        why = "no service control policy allows";
    } else if (in->key_policy && !resource_matched) {
        why = "no resource-based policy allows";
    } else if (res->boundary_denied) {
        why = "no permissions boundary allows";
    } else if (res->session_denied) {
        why = "no session policy allows";
    }
    return kms_raise(KMS_ERR_ACCESS_DENIED,
                     "User: %s is not authorized to perform: %s on resource: %s because %s the "
                     "%s action",
                     who, action, resource, why, action);
}

static void input_for(const kms_request *rq, kms_eval_input *in, const char *action,
                      const char *resource, const char *resource_account, const kms_policy_ctx *ctx)
{
    const kms_principal_snapshot *who = rq->who;
    memset(in, 0, sizeof *in);
    in->principal_arn = who->id.arn;
    in->role_arn = who->id.role_arn[0] ? who->id.role_arn : NULL;
    in->principal_id = who->id.principal_id;
    in->principal_account = who->id.account_id;
    in->action = action;
    in->resource = resource;
    in->resource_account = resource_account;
    in->ctx = ctx;
    if (strcmp(who->id.type, "Root") == 0) {
        in->identity.items = (const kms_policy *const *)&rq->client->authz.root_all;
        in->identity.count = 1;
    } else {
        in->identity.items = (const kms_policy *const *)who->identity;
        in->identity.count = who->identity_count;
        in->boundary = who->boundary;
        in->session = who->session;
    }
    in->scps = who->scps;
    in->scp_levels = who->scp_levels;
}

/* Evaluates and, unless allowed, leaves AWS's AccessDeniedException. *res tells grants whether
 * an explicit deny or an SCP stopped it. */
static int decide(kms_request *rq, kms_eval_input *in, kms_eval_result *res)
{
    if (kms_policy_evaluate(in, res) == KMS_DECISION_ALLOWED) {
        rq->authorized = true;
        return 0;
    }
    return refuse(rq, in->action, in->resource, in, res);
}

/* The request context, in the caller's storage (no allocation for a usual request). */
static int new_context(const kms_request *rq, const char *action, const kms_key_record *rec,
                       kms_policy_ctx_storage *storage, kms_policy_ctx **out)
{
    *out = kms_policy_ctx_init(storage);
    if (ctx_add_caller(*out, rq) != 0 || ctx_add_request(*out, rq, action, rec) != 0) {
        kms_policy_ctx_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int kms_gate_dry_run(const kms_request *rq)
{
    KMS_ENSURE(!rq->dry_run || !rq->authorized, KMS_ERR_DRY_RUN,
               "The request would have succeeded, but the DryRun option is set.");
    KMS_ENSURE(!rq->dry_run, KMS_ERR_INTERNAL, "a dry run reached its action unauthorised");
    return 0;
}

int kms_gate_authorize(kms_request *rq, const char *action, const char *resource_arn)
{
    char account[13];
    kms_eval_input in;
    kms_eval_result res;
    kms_policy_ctx_storage storage;
    kms_policy_ctx *ctx = NULL;
    rq->action = action;
    KMS_ENSURE(kms_policy_arn_account(resource_arn, account) == 0 || strcmp(resource_arn, "*") == 0,
               KMS_ERR_ACCESS_DENIED, "User: %s is not authorized to perform: %s on resource: %s",
               rq->who->id.arn, action, resource_arn);
    if (strcmp(resource_arn, "*") == 0 || strcmp(account, "aws") == 0) {
        /* "*", or an AWS managed policy (arn:aws:iam::aws:policy/...): no other account owns
         * it, so the caller's own policies decide. */
        account[0] = '\0';
    }
    KMS_GUARD(new_context(rq, action, NULL, &storage, &ctx));
    input_for(rq, &in, action, resource_arn, account, ctx);
    int r = decide(rq, &in, &res);
    kms_policy_ctx_free(ctx);
    return r;
}

int kms_gate_authorize_trust(kms_request *rq, const char *role_arn, const char *trust_policy)
{
    char account[13];
    kms_eval_input in;
    kms_eval_result res;
    kms_policy *trust = NULL;
    kms_policy_ctx_storage storage;
    kms_policy_ctx *ctx = NULL;
    rq->action = "sts:AssumeRole";
    /* IAM User Guide, AssumeRole: the root user cannot assume roles. */
    KMS_ENSURE(strcmp(rq->who->id.type, "Root") != 0, KMS_ERR_ACCESS_DENIED,
               "Roles may not be assumed by root accounts: sign in as an IAM user to assume %s",
               role_arn);
    KMS_GUARD(kms_policy_arn_account(role_arn, account));
    KMS_GUARD(kms_gate_policy_compile(trust_policy, KMS_POLICY_TRUST, "AssumeRolePolicyDocument",
                                      &trust));
    int r = new_context(rq, rq->action, NULL, &storage, &ctx);
    if (r == 0) {
        input_for(rq, &in, rq->action, role_arn, account, ctx);
        in.resource_policy = trust;
        /* The trust policy is required as a key policy is: without its Allow nobody assumes
         * the role, and where it trusts the account (its root), the caller's own policies must
         * allow sts:AssumeRole too (IAM User Guide, "How to use trust policies"). */
        in.key_policy = true;
        r = decide(rq, &in, &res);
    }
    kms_policy_ctx_free(ctx);
    kms_policy_free(trust);
    return r;
}

/* The compiled key policy of rec, from the cache or the store. The entry lives as long as the
 * client (replaced entries are retired, not freed), so the pointer stays valid. */
static int key_policy(kms_request *rq, const kms_key_record *rec, const kms_policy **out)
{
    kms_authz *az = &rq->client->authz;
    size_t b =
        (size_t)(rec->key_id[0] + 31 * rec->key_id[1] + 7 * rec->key_id[2]) % KMS_AUTHZ_BUCKETS;
    *out = NULL;
    pthread_mutex_lock(&az->lock);
    for (kms_key_policy_entry *e = az->buckets[b]; e != NULL; e = e->next) {
        if (strcmp(e->key_id, rec->key_id) == 0 && e->version == rec->policy_version) {
            *out = e->policy;
            break;
        }
    }
    pthread_mutex_unlock(&az->lock);
    if (*out != NULL) {
        return 0;
    }
    char *doc = NULL;
    int64_t version = 0;
    kms_key_policy_entry *e = calloc(1, sizeof *e);
    KMS_ENSURE(e != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (kms_keystore_policy_get(&rq->client->keystore, rec->key_id, &doc, &version) != 0 ||
        kms_gate_policy_compile(doc, KMS_POLICY_KEY, "KeyPolicy", &e->policy) != 0) {
        free(doc);
        free(e);
        return -1;
    }
    free(doc);
    snprintf(e->key_id, sizeof e->key_id, "%s", rec->key_id);
    e->version = version;
    pthread_mutex_lock(&az->lock);
    kms_key_policy_entry **pp = &az->buckets[b];
    while (*pp != NULL) {
        if (strcmp((*pp)->key_id, rec->key_id) == 0) {
            kms_key_policy_entry *old = *pp;
            *pp = old->next;
            old->next = az->retired;
            az->retired = old;
        } else {
            pp = &(*pp)->next;
        }
    }
    e->next = az->buckets[b];
    az->buckets[b] = e;
    pthread_mutex_unlock(&az->lock);
    *out = e->policy;
    return 0;
}

int kms_gate_authorize_key(kms_request *rq, const char *action, const kms_key_record *rec,
                           const char *key_arn)
{
    kms_eval_input in;
    kms_eval_result res;
    kms_policy_ctx_storage storage;
    kms_policy_ctx *ctx = NULL;
    const kms_policy *kp = NULL;
    rq->action = action;
    kms_audit_trail_resource(rq, key_arn);
    KMS_GUARD(key_policy(rq, rec, &kp));
    KMS_GUARD(new_context(rq, action, rec, &storage, &ctx));
    if (ctx_add_key_attributes(ctx, rq, rec, kp) != 0) {
        kms_policy_ctx_free(ctx);
        return -1;
    }
    input_for(rq, &in, action, key_arn, rec->account_id, ctx);
    in.resource_policy = kp;
    in.key_policy = true;
    int r = 0;
    int granted = 0;
    if (kms_policy_evaluate(&in, &res) == KMS_DECISION_ALLOWED) {
        rq->authorized = true;
    } else if (res.decision == KMS_DECISION_IMPLICIT_DENY && !res.scp_denied &&
               (granted = kms_ops_grants_allow(rq, action, rec)) == 1) {
        /* KMS Developer Guide, "Grants": a grant allows its operations to its grantee; an
         * explicit deny in any policy, and SCPs, still win. */
        rq->authorized = true;
    } else if (granted < 0) {
        r = -1; /* the grants could not be checked: their error, and nothing allowed */
    } else {
        r = refuse(rq, action, key_arn, &in, &res);
    }
    kms_policy_ctx_free(ctx);
    return r;
}

int kms_gate_key_policy_check(kms_request *rq, json_t *req, const char *doc,
                              const kms_key_record *rec, const char *key_arn)
{
    kms_policy *kp = NULL;
    kms_policy_ctx_storage storage;
    kms_policy_ctx *ctx = NULL;
    kms_eval_input in;
    kms_eval_result res;
    char arn[KMS_ARN_MAX];
    const char *account = rec ? rec->account_id : rq->who->id.account_id;
    KMS_GUARD(kms_policy_compile(doc, strlen(doc), KMS_POLICY_KEY, "KeyPolicy", &kp));
    if (json_is_true(json_object_get(req, "BypassPolicyLockoutSafetyCheck"))) {
        kms_policy_free(kp);
        return 0;
    }
    if (key_arn == NULL) {
        /* A key that does not exist yet: any key id of the account stands for it. */
        snprintf(arn, sizeof arn, "arn:aws:kms:%s:%s:key/00000000-0000-0000-0000-000000000000",
                 rq->client->cfg.region, account);
        key_arn = arn;
    }
    int r = new_context(rq, "kms:PutKeyPolicy", rec, &storage, &ctx);
    if (r == 0 && rec != NULL) {
        r = ctx_add_key_attributes(ctx, rq, rec, kp);
    }
    if (r == 0) {
        input_for(rq, &in, "kms:PutKeyPolicy", key_arn, account, ctx);
        in.resource_policy = kp;
        in.key_policy = true;
        /* KMS API reference, PutKeyPolicy: BypassPolicyLockoutSafetyCheck. */
        if (kms_policy_evaluate(&in, &res) != KMS_DECISION_ALLOWED) {
            r = kms_raise(KMS_ERR_MALFORMED_POLICY,
                          "The new key policy will not allow you to update the key policy in the "
                          "future: it must allow %s kms:PutKeyPolicy (or set "
                          "BypassPolicyLockoutSafetyCheck, which risks making the key "
                          "unmanageable)",
                          rq->who->id.arn);
        }
    }
    kms_policy_ctx_free(ctx);
    kms_policy_free(kp);
    return r;
}

int kms_gate_end(kms_request *rq, int rc)
{
    if (rc == 0 && !rq->authorized) {
        /* An operation that succeeded without an authorization decision is a bug: fail closed. */
        rc = kms_raise(KMS_ERR_INTERNAL, "%s ran without an authorization decision", rq->operation);
    }
    /* One durable CloudTrail record for every request, allowed or denied; a record that cannot
     * be written fails the request. */
    if (rq->service && rq->nothing_done && rc == 0) {
        /* Scheduled work another scheduler had done: nothing happened, nothing to record. */
        kms_audit_withdraw(rq->client->audit);
    } else {
        rc = kms_audit_trail_request(rq, rc);
    }
    if (rq->caller != NULL) {
        rq->caller->recorded = rq->recorded;
        snprintf(rq->caller->request_id, sizeof rq->caller->request_id, "%s", rq->request_id);
    }
    if (rc == 0 && rq->then_event != NULL && rq->resource_count > 0) {
        /* The service's own event of what the request made it do, after the request's record. A
         * record that cannot be written fails the request, as always. */
        kms_request then;
        char action[64];
        snprintf(action, sizeof action, "kms:%s", rq->then_event);
        rc = kms_gate_begin_service(&then, rq->client, rq->then_event);
        if (rc == 0) {
            rc = kms_gate_authorize_service(&then, action, rq->resources[0]);
        }
        then.service_details = rq->then_details;
        rq->then_details = NULL;
        rc = kms_gate_end(&then, rc);
    }
    json_decref(rq->then_details);
    rq->then_details = NULL;
    json_decref(rq->service_details);
    rq->service_details = NULL;
    kms_authz_snapshot_release(rq->who);
    rq->who = NULL;
    free(rq->grant_ops);
    free(rq->grant_constraints);
    rq->grant_ops = rq->grant_constraints = NULL;
    return rc;
}
