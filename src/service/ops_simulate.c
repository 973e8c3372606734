/* The policy simulator: SimulateCustomPolicy (policies given in the request, src/policy does the
 * whole work) and SimulatePrincipalPolicy (the stored policies of a user or role of the caller's
 * account, and the key policy of this home's KMS keys named as resources). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/ops_iam.h"
#include "util/util.h"

#define M(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- SimulateCustomPolicy -------------------------------------------------------------------- */

/* The request body is kms_policy_simulate's input object as it is (policy.h, "Simulation"). */
static int simulate_custom(kms_request *rq, json_t *req, json_t **resp)
{
    char *out = NULL;
    json_error_t jerr;
    KMS_GUARD(kms_gate_authorize(rq, "iam:SimulateCustomPolicy", "*"));
    char *body = json_dumps(req, JSON_COMPACT);
    KMS_ENSURE(body != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = kms_policy_simulate(body, strlen(body), &out);
    free(body);
    if (r != 0) {
        return -1;
    }
    *resp = json_loads(out, 0, &jerr);
    free(out);
    KMS_ENSURE(json_is_object(*resp), KMS_ERR_INTERNAL,
               "the simulator's output is not a JSON object: %s", jerr.text);
    return 0;
}

/* ---- SimulatePrincipalPolicy ----------------------------------------------------------------- */

/* The principal's policies, compiled. */
typedef struct sim_principal {
    kms_identity id;
    kms_iam_docs docs;
    kms_policy **identity;
    size_t identity_count;
    kms_policy *boundary;
    kms_policy_list *scps;
    kms_policy **scp_policies;
    size_t scp_policy_count;
    size_t scp_levels;
} sim_principal;

static void sim_principal_clean_up(sim_principal *p)
{
    for (size_t i = 0; i < p->identity_count; i++) {
        kms_policy_free(p->identity[i]);
    }
    for (size_t i = 0; i < p->scp_policy_count; i++) {
        kms_policy_free(p->scp_policies[i]);
    }
    free(p->identity);
    free(p->scp_policies);
    free(p->scps);
    kms_policy_free(p->boundary);
    kms_iam_docs_clean_up(&p->docs);
    kms_iam_identity_clean_up(&p->id);
    memset(p, 0, sizeof *p);
}

static int compile(const char *doc, kms_policy_kind kind, const char *label, kms_policy **out)
{
    /* As AWS's simulator: documents its validation refuses but it evaluates are accepted. */
    return kms_policy_compile(doc, strlen(doc), (kms_policy_kind)(kind | KMS_POLICY_AS_SIMULATED),
                              label, out);
}

static int sim_compile(sim_principal *p)
{
    const kms_iam_docs *d = &p->docs;
    p->identity = calloc(d->identity_count + 1, sizeof *p->identity);
    KMS_ENSURE(p->identity != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < d->identity_count; i++) {
        KMS_GUARD(compile(d->identity[i].document, KMS_POLICY_IDENTITY, d->identity[i].id,
                          &p->identity[i]));
        p->identity_count++;
    }
    if (d->boundary != NULL) {
        KMS_GUARD(compile(d->boundary, KMS_POLICY_IDENTITY, "PermissionsBoundary", &p->boundary));
    }
    size_t total = 0;
    for (size_t l = 0; l < d->scp_levels; l++) {
        total += d->scp_counts[l];
    }
    p->scps = calloc(d->scp_levels + 1, sizeof *p->scps);
    p->scp_policies = calloc(total + 1, sizeof *p->scp_policies);
    KMS_ENSURE(p->scps != NULL && p->scp_policies != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t l = 0; l < d->scp_levels; l++) {
        p->scps[l].items = (const kms_policy *const *)&p->scp_policies[p->scp_policy_count];
        for (size_t i = 0; i < d->scp_counts[l]; i++) {
            KMS_GUARD(compile(d->scps[l][i].document, KMS_POLICY_SCP, d->scps[l][i].id,
                              &p->scp_policies[p->scp_policy_count]));
            p->scp_policy_count++;
        }
        p->scps[l].count = d->scp_counts[l];
        p->scp_levels++;
    }
    return 0;
}

/* The identity the principal's requests would have: the user's, or for a role a session of it
 * named "simulation". */
static int sim_identity(kms_request *rq, const char *source_arn, kms_identity *id)
{
    const char *res = strchr(source_arn + strlen("arn:aws:iam::"), ':');
    const char *account = rq->who->id.account_id;
    KMS_ENSURE(res != NULL, KMS_ERR_INVALID_INPUT, "PolicySourceArn %s is not an IAM ARN",
               source_arn);
    res++;
    if (strncmp(res, "user/", 5) == 0) {
        const char *name = strrchr(res, '/') + 1;
        return kms_iam_user_identity(rq->client->iam, account, name, id);
    }
    KMS_ENSURE(strncmp(res, "role/", 5) == 0, KMS_ERR_INVALID_INPUT,
               "PolicySourceArn must be the ARN of a user or a role of this account: %s",
               source_arn);
    kms_iam_role_info info;
    memset(&info, 0, sizeof info);
    KMS_GUARD(kms_iam_role_lookup(rq->client->iam, source_arn, &info));
    memset(id, 0, sizeof *id);
    snprintf(id->type, sizeof id->type, "AssumedRole");
    snprintf(id->account_id, sizeof id->account_id, "%s", info.account_id);
    snprintf(id->role_arn, sizeof id->role_arn, "%.511s", info.arn);
    snprintf(id->role_name, sizeof id->role_name, "%s", info.role_name);
    snprintf(id->session_name, sizeof id->session_name, "simulation");
    snprintf(id->arn, sizeof id->arn, "arn:aws:sts::%s:assumed-role/%s/simulation", info.account_id,
             info.role_name);
    snprintf(id->principal_id, sizeof id->principal_id, "%s:simulation", info.role_id);
    kms_iam_role_info_clean_up(&info);
    return 0;
}

/* ContextEntries: [{"ContextKeyName", "ContextKeyValues": [...], "ContextKeyType"}]. The type
 * is accepted and not needed: the evaluator compares by the condition operator. */
static int add_context_entries(kms_policy_ctx *ctx, json_t *entries)
{
    size_t i, j;
    json_t *e, *v;
    if (entries == NULL || json_is_null(entries)) {
        return 0;
    }
    KMS_ENSURE(json_is_array(entries), KMS_ERR_VALIDATION,
               "ContextEntries must be a list of {\"ContextKeyName\", \"ContextKeyValues\", "
               "\"ContextKeyType\"}");
    json_array_foreach(entries, i, e)
    {
        const char *key = NULL, *type = NULL;
        KMS_ENSURE(json_is_object(e), KMS_ERR_VALIDATION, "ContextEntries[%zu] must be an object",
                   i);
        KMS_GUARD(kms_request_string(e, "ContextKeyName", true, 5, 256, &key));
        KMS_GUARD(kms_request_string(e, "ContextKeyType", false, 1, 32, &type));
        json_t *values = json_object_get(e, "ContextKeyValues");
        KMS_ENSURE(json_is_array(values), KMS_ERR_VALIDATION,
                   "ContextEntries[%zu].ContextKeyValues must be a list of strings", i);
        json_array_foreach(values, j, v)
        {
            KMS_ENSURE(json_is_string(v), KMS_ERR_VALIDATION,
                       "ContextEntries[%zu].ContextKeyValues[%zu] must be a string", i, j);
            KMS_GUARD(j == 0 ? kms_policy_ctx_set(ctx, key, json_string_value(v))
                             : kms_policy_ctx_add(ctx, key, json_string_value(v)));
        }
    }
    return 0;
}

/* A key of the principal's request, unless ContextEntries gave it. */
static int ctx_default(kms_policy_ctx *ctx, const char *key, const char *value)
{
    if (value == NULL || value[0] == '\0' || kms_policy_ctx_get(ctx, key) != NULL) {
        return 0;
    }
    return kms_policy_ctx_add(ctx, key, value);
}

static int sim_context(kms_request *rq, const sim_principal *p, json_t *entries,
                       kms_policy_ctx **out)
{
    const kms_identity *id = &p->id;
    char buf[64];
    int64_t now = kms_now();
    kms_policy_ctx *ctx = kms_policy_ctx_new();
    KMS_ENSURE(ctx != NULL, KMS_ERR_INTERNAL, "out of memory");
    *out = ctx;
    KMS_GUARD(add_context_entries(ctx, entries));
    kms_time_iso8601(now, buf);
    KMS_GUARD(ctx_default(ctx, "aws:CurrentTime", buf));
    snprintf(buf, sizeof buf, "%lld", (long long)now);
    KMS_GUARD(ctx_default(ctx, "aws:EpochTime", buf));
    KMS_GUARD(ctx_default(ctx, "aws:SecureTransport", "true"));
    KMS_GUARD(ctx_default(ctx, "aws:RequestedRegion", rq->client->cfg.region));
    KMS_GUARD(ctx_default(ctx, "aws:PrincipalArn", id->role_arn[0] ? id->role_arn : id->arn));
    KMS_GUARD(ctx_default(ctx, "aws:PrincipalAccount", id->account_id));
    KMS_GUARD(ctx_default(ctx, "kms:CallerAccount", id->account_id));
    KMS_GUARD(ctx_default(ctx, "aws:PrincipalOrgID", p->docs.org_id));
    /* IAM User Guide, aws:PrincipalType: User or AssumedRole here. */
    KMS_GUARD(ctx_default(ctx, "aws:PrincipalType",
                          strcmp(id->type, "IAMUser") == 0 ? "User" : id->type));
    KMS_GUARD(ctx_default(ctx, "aws:userid", id->principal_id));
    KMS_GUARD(ctx_default(ctx, "aws:username", id->user_name));
    for (size_t i = 0; i < id->tag_count; i++) {
        char key[160];
        snprintf(key, sizeof key, "aws:PrincipalTag/%s", id->tag_keys[i]);
        KMS_GUARD(ctx_default(ctx, key, id->tag_values[i]));
    }
    return 0;
}

/* The key policy of resource when it is a KMS key of this home ("arn:aws:kms:REGION:ACCOUNT:
 * key/ID"), compiled; *out stays NULL for any other resource. */
static int key_policy_of(kms_request *rq, const char *resource, kms_policy **out)
{
    char prefix[128];
    char *doc = NULL;
    int64_t version = 0;
    *out = NULL;
    snprintf(prefix, sizeof prefix, "arn:aws:kms:%s:%s:key/", rq->client->cfg.region,
             rq->client->cfg.account_id);
    if (strncmp(resource, prefix, strlen(prefix)) != 0) {
        return 0;
    }
    const char *key_id = resource + strlen(prefix);
    KMS_GUARD(kms_keystore_policy_get(&rq->client->keystore, key_id, &doc, &version));
    int r = compile(doc, KMS_POLICY_KEY, "KeyPolicy", out);
    free(doc);
    return r;
}

/* AWS's PolicySourceType of a matched statement's policy; boundaries and SCPs, which AWS reports
 * in separate decision details, are named "permissions-boundary" and "service-control-policy". */
static const char *source_type(const sim_principal *p, const kms_eval_input *in,
                               const kms_policy *policy)
{
    if (policy == in->resource_policy) {
        return "resource";
    }
    if (policy == p->boundary) {
        return "permissions-boundary";
    }
    for (size_t i = 0; i < p->scp_policy_count; i++) {
        if (policy == p->scp_policies[i]) {
            return "service-control-policy";
        }
    }
    const char *label = kms_policy_label(policy);
    if (strncmp(label, "user/", 5) == 0) {
        return "user";
    }
    if (strncmp(label, "group/", 6) == 0) {
        return "group";
    }
    if (strncmp(label, "role/", 5) == 0) {
        return "role";
    }
    return strncmp(label, "arn:aws:iam::aws:", 17) == 0 ? "aws-managed" : "user-managed";
}

static json_t *eval_result_json(const sim_principal *p, const kms_eval_input *in,
                                const kms_eval_result *res)
{
    json_t *matched = json_array();
    json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "EvalActionName", in->action, "EvalResourceName",
                          in->resource, "EvalDecision", kms_policy_decision_name(res->decision),
                          "MatchedStatements", matched);
    if (o == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < res->match_count; i++) {
        const kms_eval_match *m = &res->matches[i];
        json_t *s = json_pack("{s:s, s:s, s:s, s:s}", "SourcePolicyId", kms_policy_label(m->policy),
                              "SourcePolicyType", source_type(p, in, m->policy), "Sid",
                              kms_policy_statement_sid(m->policy, m->statement), "Effect",
                              m->deny ? "Deny" : "Allow");
        if (s == NULL || json_array_append_new(matched, s) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    if ((in->scp_levels > 0 && json_object_set_new(o, "OrganizationsDecisionDetail",
                                                   json_pack("{s:b}", "AllowedByOrganizations",
                                                             !res->scp_denied)) != 0) ||
        (in->boundary != NULL &&
         json_object_set_new(
             o, "PermissionsBoundaryDecisionDetail",
             json_pack("{s:b}", "AllowedByPermissionsBoundary", !res->boundary_denied)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* One action on one resource. */
static int simulate_one(kms_request *rq, const sim_principal *p, const kms_policy_ctx *ctx,
                        const char *action, const char *resource, json_t *results)
{
    char account[13] = "";
    kms_policy *kp = NULL;
    kms_eval_input in;
    kms_eval_result res;
    KMS_ENSURE(strcmp(resource, "*") == 0 || kms_policy_arn_account(resource, account) == 0,
               KMS_ERR_INVALID_INPUT, "ResourceArns: '%s' is neither an ARN nor \"*\"", resource);
    KMS_GUARD(key_policy_of(rq, resource, &kp));
    memset(&in, 0, sizeof in);
    in.principal_arn = p->id.arn;
    in.role_arn = p->id.role_arn[0] ? p->id.role_arn : NULL;
    in.principal_account = p->id.account_id;
    in.action = action;
    in.resource = resource;
    in.resource_account = account;
    in.ctx = ctx;
    in.identity.items = (const kms_policy *const *)p->identity;
    in.identity.count = p->identity_count;
    in.boundary = p->boundary;
    in.scps = p->scps;
    in.scp_levels = p->scp_levels;
    in.resource_policy = kp;
    in.key_policy = kp != NULL;
    kms_policy_evaluate(&in, &res);
    json_t *o = eval_result_json(p, &in, &res);
    kms_policy_free(kp);
    KMS_ENSURE(o != NULL && json_array_append_new(results, o) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

static int req_nonempty_strings(json_t *req, const char *name, bool required, json_t **list)
{
    size_t i;
    json_t *v;
    *list = json_object_get(req, name);
    if (*list == NULL || json_is_null(*list)) {
        KMS_ENSURE(!required, KMS_ERR_VALIDATION, "%s is required", name);
        *list = NULL;
        return 0;
    }
    KMS_ENSURE(json_is_array(*list) && json_array_size(*list) > 0, KMS_ERR_VALIDATION,
               "%s must be a non-empty list of strings", name);
    json_array_foreach(*list, i, v)
    {
        KMS_ENSURE(json_is_string(v) && json_string_length(v) > 0, KMS_ERR_VALIDATION,
                   "%s[%zu] must be a non-empty string", name, i);
    }
    return 0;
}

static int simulate_principal(kms_request *rq, json_t *req, json_t **resp)
{
    const char *source = NULL;
    json_t *actions = NULL, *resources = NULL;
    char account[13];
    sim_principal p;
    kms_policy_ctx *ctx = NULL;
    json_t *results = NULL;
    size_t i, j;
    json_t *a, *res;
    int r = -1;
    memset(&p, 0, sizeof p);
    KMS_GUARD(kms_request_string(req, "PolicySourceArn", true, 20, 2048, &source));
    KMS_GUARD(req_nonempty_strings(req, "ActionNames", true, &actions));
    KMS_GUARD(req_nonempty_strings(req, "ResourceArns", false, &resources));
    KMS_GUARD(kms_gate_authorize(rq, "iam:SimulatePrincipalPolicy", source));
    KMS_ENSURE(strncmp(source, "arn:aws:iam::", 13) == 0 &&
                   kms_policy_arn_account(source, account) == 0 &&
                   strcmp(account, rq->who->id.account_id) == 0,
               KMS_ERR_INVALID_INPUT,
               "PolicySourceArn must be the ARN of a user or a role of account %s: %s",
               rq->who->id.account_id, source);
    if (sim_identity(rq, source, &p.id) != 0 ||
        kms_iam_load_docs(rq->client->iam, &p.id, &p.docs) != 0 || sim_compile(&p) != 0 ||
        sim_context(rq, &p, json_object_get(req, "ContextEntries"), &ctx) != 0) {
        goto out;
    }
    results = json_array();
    if (results == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    json_array_foreach(actions, i, a)
    {
        if (resources == NULL) {
            if (simulate_one(rq, &p, ctx, json_string_value(a), "*", results) != 0) {
                goto out;
            }
            continue;
        }
        json_array_foreach(resources, j, res)
        {
            if (simulate_one(rq, &p, ctx, json_string_value(a), json_string_value(res), results) !=
                0) {
                goto out;
            }
        }
    }
    *resp = json_pack("{s:o, s:b}", "EvaluationResults", results, "IsTruncated", 0);
    results = NULL;
    if (*resp == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    json_decref(results);
    kms_policy_ctx_free(ctx);
    sim_principal_clean_up(&p);
    return r;
}

const kms_op kms_ops_simulate_table[] = {
    {"iam:SimulateCustomPolicy", simulate_custom,
     M("principal", "action", "resource", "resourceAccount", "context", "identityPolicies",
       "resourcePolicy", "permissionsBoundary", "sessionPolicy", "serviceControlPolicies",
       "keyPolicy")},
    {"iam:SimulatePrincipalPolicy", simulate_principal,
     M("PolicySourceArn", "ActionNames", "ResourceArns", "ContextEntries")},
};

const size_t kms_ops_simulate_table_count =
    sizeof kms_ops_simulate_table / sizeof kms_ops_simulate_table[0];
