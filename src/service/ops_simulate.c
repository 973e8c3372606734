/* The policy simulator: SimulateCustomPolicy (policies given in the request, src/policy does the
 * whole work) and SimulatePrincipalPolicy (the stored policies of a user or role of the caller's
 * account, and the key policy of this home's KMS keys named as resources). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/ops_iam.h"
#include "service/simulate_shape.h"
#include "util/util.h"

#define M(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- SimulateCustomPolicy -------------------------------------------------------------------- */

static int simulate_custom_iam(kms_request *rq, json_t *req, json_t **resp);

/* IAM's request (PolicyInputList, ActionNames, ...), or the extension: kms_policy_simulate's input
 * object as it is (policy.h, "Simulation"; lower-case members). */
static int simulate_custom(kms_request *rq, json_t *req, json_t **resp)
{
    char *out = NULL;
    json_error_t jerr;
    KMS_GUARD(kms_gate_authorize(rq, "iam:SimulateCustomPolicy", "*"));
    if (json_object_get(req, "PolicyInputList") != NULL ||
        json_object_get(req, "ActionNames") != NULL) {
        return simulate_custom_iam(rq, req, resp);
    }
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
 * key/ID"), compiled, and its text (*text, the caller frees it); both stay NULL for any other
 * resource. */
static int key_policy_of(kms_request *rq, const char *resource, kms_policy **out, char **text)
{
    char prefix[128];
    char *doc = NULL;
    int64_t version = 0;
    *out = NULL;
    *text = NULL;
    snprintf(prefix, sizeof prefix, "arn:aws:kms:%s:%s:key/", rq->client->cfg.region,
             rq->client->cfg.account_id);
    if (strncmp(resource, prefix, strlen(prefix)) != 0) {
        return 0;
    }
    const char *key_id = resource + strlen(prefix);
    KMS_GUARD(kms_keystore_policy_get(&rq->client->keystore, key_id, &doc, &version));
    int r = compile(doc, KMS_POLICY_KEY, "KeyPolicy", out);
    if (r == 0) {
        *text = doc;
    } else {
        free(doc);
    }
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

/* The policies of p (and the key policy kp, text kp_text) as the result's sources; *n of them
 * (malloc'd, the caller frees the array). */
static kms_sim_source *principal_sources(const sim_principal *p, const kms_eval_input *in,
                                         const kms_policy *kp, const char *kp_text, size_t *n)
{
    const kms_iam_docs *d = &p->docs;
    kms_sim_source *s = calloc(p->identity_count + p->scp_policy_count + 3, sizeof *s);
    size_t k = 0;

    *n = 0;
    if (s == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < p->identity_count; i++) {
        s[k++] = (kms_sim_source){p->identity[i], d->identity[i].document,
                                  source_type(p, in, p->identity[i]), NULL};
    }
    if (p->boundary != NULL) {
        s[k++] = (kms_sim_source){p->boundary, d->boundary, "permissions-boundary", NULL};
    }
    for (size_t l = 0, i = 0; l < d->scp_levels; l++) {
        for (size_t j = 0; j < d->scp_counts[l] && i < p->scp_policy_count; j++, i++) {
            s[k++] = (kms_sim_source){p->scp_policies[i], d->scps[l][j].document,
                                      "service-control-policy", NULL};
        }
    }
    if (kp != NULL) {
        s[k++] = (kms_sim_source){kp, kp_text, "resource", NULL};
    }
    *n = k;
    return s;
}

/* One action on one resource. */
static int simulate_one(kms_request *rq, const sim_principal *p, const kms_policy_ctx *ctx,
                        const char *action, const char *resource, bool resources_given,
                        json_t *results)
{
    char account[13] = "";
    kms_policy *kp = NULL;
    char *kp_text = NULL;
    kms_eval_input in;
    kms_eval_result res;
    kms_sim_source *sources = NULL;
    size_t nsources = 0;
    KMS_ENSURE(strcmp(resource, "*") == 0 || kms_policy_arn_account(resource, account) == 0,
               KMS_ERR_INVALID_INPUT, "ResourceArns: '%s' is neither an ARN nor \"*\"", resource);
    KMS_GUARD(key_policy_of(rq, resource, &kp, &kp_text));
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
    sources = principal_sources(p, &in, kp, kp_text, &nsources);
    json_t *o =
        sources != NULL ? kms_sim_result_json(&in, &res, sources, nsources, resources_given) : NULL;
    free(sources);
    kms_policy_free(kp);
    free(kp_text);
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
            if (simulate_one(rq, &p, ctx, json_string_value(a), "*", false, results) != 0) {
                goto out;
            }
            continue;
        }
        json_array_foreach(resources, j, res)
        {
            if (simulate_one(rq, &p, ctx, json_string_value(a), json_string_value(res), true,
                             results) != 0) {
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

/* ---- SimulateCustomPolicy in IAM's shape ------------------------------------------------------
 * IAM API Reference, SimulateCustomPolicy: the identity policies of PolicyInputList (and a
 * permissions boundary, a resource policy) for each of ActionNames on each of ResourceArns ("*"
 * when none), as the user CallerArn (else the caller of the simulation), resources without an
 * account in their ARN owned by ResourceOwner's account (else the caller's). */

#define CUSTOM_MAX_POLICIES 64

typedef struct sim_custom {
    kms_policy *identity[CUSTOM_MAX_POLICIES];
    size_t identity_count;
    kms_policy *boundary;
    kms_policy *resource_policy;
    kms_sim_source sources[CUSTOM_MAX_POLICIES + 2];
    size_t nsources;
    kms_policy_ctx *ctx;
    char principal_arn[2048];
    char role_arn[2048];
    char account[13];
    char owner[13];
} sim_custom;

static void sim_custom_clean_up(sim_custom *c)
{
    for (size_t i = 0; i < c->identity_count; i++) {
        kms_policy_free(c->identity[i]);
    }
    kms_policy_free(c->boundary);
    kms_policy_free(c->resource_policy);
    kms_policy_ctx_free(c->ctx);
}

/* One document of a list member ("PolicyInputList.1"): IAM sends strings; an object is taken. */
static int custom_compile(sim_custom *c, json_t *doc, const char *label, kms_policy_kind kind,
                          const char *type, kms_policy **out)
{
    KMS_ENSURE(json_is_string(doc), KMS_ERR_INVALID_INPUT,
               "%s must be a policy document (JSON text)", label);
    KMS_ENSURE(c->nsources < sizeof c->sources / sizeof c->sources[0], KMS_ERR_INVALID_INPUT,
               "at most %d policies", CUSTOM_MAX_POLICIES);
    KMS_GUARD(compile(json_string_value(doc), kind, label, out));
    c->sources[c->nsources++] = (kms_sim_source){*out, json_string_value(doc), type, NULL};
    return 0;
}

/* The simulated caller: CallerArn (an IAM user, as IAM allows) with the keys a request of it
 * carries, else the caller of the simulation. */
static int custom_caller(kms_request *rq, sim_custom *c, const char *caller)
{
    const kms_identity *who = &rq->who->id;
    if (caller == NULL) {
        snprintf(c->principal_arn, sizeof c->principal_arn, "%s", who->arn);
        snprintf(c->role_arn, sizeof c->role_arn, "%s", who->role_arn);
        snprintf(c->account, sizeof c->account, "%s", who->account_id);
        return 0;
    }
    const char *res = strchr(caller + (strncmp(caller, "arn:aws:iam::", 13) == 0 ? 13 : 0), ':');
    KMS_ENSURE(strncmp(caller, "arn:aws:iam::", 13) == 0 &&
                   kms_policy_arn_account(caller, c->account) == 0 && c->account[0] != '\0' &&
                   res != NULL && strncmp(res + 1, "user/", 5) == 0 &&
                   strlen(caller) < sizeof c->principal_arn,
               KMS_ERR_INVALID_INPUT, "CallerArn must be the ARN of an IAM user: %s", caller);
    snprintf(c->principal_arn, sizeof c->principal_arn, "%s", caller);
    KMS_GUARD(ctx_default(c->ctx, "aws:PrincipalArn", caller));
    KMS_GUARD(ctx_default(c->ctx, "aws:PrincipalAccount", c->account));
    KMS_GUARD(ctx_default(c->ctx, "aws:PrincipalType", "User"));
    return ctx_default(c->ctx, "aws:username", strrchr(res, '/') + 1);
}

static int custom_read(kms_request *rq, json_t *req, sim_custom *c)
{
    json_t *list = json_object_get(req, "PolicyInputList");
    json_t *boundaries = json_object_get(req, "PermissionsBoundaryPolicyInputList");
    json_t *rp = json_object_get(req, "ResourcePolicy");
    const char *owner = NULL;
    const char *caller = NULL;
    char label[64];
    size_t i;
    json_t *v;

    KMS_ENSURE(json_is_array(list), KMS_ERR_VALIDATION,
               "PolicyInputList is required: a list of policy documents");
    KMS_ENSURE(json_array_size(list) <= CUSTOM_MAX_POLICIES, KMS_ERR_INVALID_INPUT,
               "PolicyInputList: at most %d documents", CUSTOM_MAX_POLICIES);
    KMS_ENSURE(
        boundaries == NULL || (json_is_array(boundaries) && json_array_size(boundaries) <= 1),
        KMS_ERR_INVALID_INPUT, "PermissionsBoundaryPolicyInputList: a list of one policy document");
    KMS_GUARD(kms_request_string(req, "ResourceOwner", false, 1, 2048, &owner));
    KMS_GUARD(kms_request_string(req, "CallerArn", false, 1, 2048, &caller));
    KMS_ENSURE(rp == NULL || caller != NULL, KMS_ERR_INVALID_INPUT,
               "CallerArn is required with ResourcePolicy: the resource policy's Principal is "
               "matched against it");
    KMS_ENSURE(owner == NULL || (kms_policy_arn_account(owner, c->owner) == 0 && c->owner[0]),
               KMS_ERR_INVALID_INPUT,
               "ResourceOwner must be an account's ARN "
               "(arn:aws:iam::ACCOUNT:root): %s",
               owner);
    c->ctx = kms_policy_ctx_new();
    KMS_ENSURE(c->ctx != NULL, KMS_ERR_INTERNAL, "out of memory");
    KMS_GUARD(add_context_entries(c->ctx, json_object_get(req, "ContextEntries")));
    KMS_GUARD(custom_caller(rq, c, caller));
    json_array_foreach(list, i, v)
    {
        snprintf(label, sizeof label, "PolicyInputList.%zu", i + 1);
        KMS_GUARD(custom_compile(c, v, label, KMS_POLICY_IDENTITY, NULL, &c->identity[i]));
        c->identity_count++;
    }
    if (json_array_size(boundaries) > 0) {
        KMS_GUARD(custom_compile(c, json_array_get(boundaries, 0),
                                 "PermissionsBoundaryPolicyInputList.1", KMS_POLICY_IDENTITY, NULL,
                                 &c->boundary));
    }
    if (rp != NULL) {
        KMS_GUARD(custom_compile(c, rp, "ResourcePolicy", KMS_POLICY_RESOURCE, "resource",
                                 &c->resource_policy));
    }
    return 0;
}

static int custom_one(sim_custom *c, const char *action, const char *resource, bool resources_given,
                      json_t *results)
{
    char account[13] = "";
    kms_eval_input in;
    kms_eval_result res;
    KMS_ENSURE(strcmp(resource, "*") == 0 || kms_policy_arn_account(resource, account) == 0,
               KMS_ERR_INVALID_INPUT, "ResourceArns: '%s' is neither an ARN nor \"*\"", resource);
    memset(&in, 0, sizeof in);
    in.principal_arn = c->principal_arn;
    in.role_arn = c->role_arn[0] != '\0' ? c->role_arn : NULL;
    in.principal_account = c->account;
    in.action = action;
    in.resource = resource;
    in.resource_account = account[0] != '\0' ? account : c->owner[0] != '\0' ? c->owner : NULL;
    in.ctx = c->ctx;
    in.identity.items = (const kms_policy *const *)c->identity;
    in.identity.count = c->identity_count;
    in.boundary = c->boundary;
    in.resource_policy = c->resource_policy;
    kms_policy_evaluate(&in, &res);
    json_t *o = kms_sim_result_json(&in, &res, c->sources, c->nsources, resources_given);
    KMS_ENSURE(o != NULL && json_array_append_new(results, o) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

static int simulate_custom_iam(kms_request *rq, json_t *req, json_t **resp)
{
    json_t *actions = NULL, *resources = NULL, *results = NULL;
    sim_custom *c = calloc(1, sizeof *c);
    size_t i, j;
    json_t *a, *res;
    int r = -1;

    KMS_ENSURE(c != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (req_nonempty_strings(req, "ActionNames", true, &actions) != 0 ||
        req_nonempty_strings(req, "ResourceArns", false, &resources) != 0 ||
        custom_read(rq, req, c) != 0) {
        goto out;
    }
    if ((results = json_array()) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    json_array_foreach(actions, i, a)
    {
        if (resources == NULL && custom_one(c, json_string_value(a), "*", false, results) != 0) {
            goto out;
        }
        json_array_foreach(resources, j, res)
        {
            if (custom_one(c, json_string_value(a), json_string_value(res), true, results) != 0) {
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
    sim_custom_clean_up(c);
    free(c);
    return r;
}

const kms_op kms_ops_simulate_table[] = {
    {"iam:SimulateCustomPolicy", simulate_custom,
     M("PolicyInputList", "PermissionsBoundaryPolicyInputList", "ActionNames", "ResourceArns",
       "ResourcePolicy", "ResourceOwner", "CallerArn", "ContextEntries", "ResourceHandlingOption",
       "MaxItems", "Marker", "principal", "action", "resource", "resourceAccount", "context",
       "identityPolicies", "resourcePolicy", "permissionsBoundary", "sessionPolicy",
       "serviceControlPolicies", "keyPolicy")},
    {"iam:SimulatePrincipalPolicy", simulate_principal,
     M("PolicySourceArn", "ActionNames", "ResourceArns", "ContextEntries", "MaxItems", "Marker")},
};

const size_t kms_ops_simulate_table_count =
    sizeof kms_ops_simulate_table / sizeof kms_ops_simulate_table[0];
