/* kms_policy_simulate: the whole of `kmsctl simulate-custom-policy` (policy.h), shaped after
 * IAM SimulateCustomPolicy / SimulatePrincipalPolicy: EvalActionName, EvalResourceName,
 * EvalDecision and MatchedStatements with SourcePolicyId and SourcePolicyType ("IAM Policy",
 * "Resource Policy", "Permissions Boundary Policy", "Session Policy", "Service Control
 * Policy"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

/* The simulator never needs more: AWS allows 10 SCP levels (root, 5 OUs, account) and IAM
 * caps the managed and inline policies of a principal well below. */
#define SIM_MAX_POLICIES 256

typedef struct sim_slot {
    kms_policy *policy;
    const char *type;
} sim_slot;

typedef struct sim {
    sim_slot slots[SIM_MAX_POLICIES];
    size_t nslots;
    const kms_policy *identity[SIM_MAX_POLICIES];
    size_t nidentity;
    kms_policy_list levels[SIM_MAX_POLICIES];
    const kms_policy *scp_items[SIM_MAX_POLICIES];
    size_t nscp_items;
    size_t nlevels;
    kms_policy_ctx *ctx;
    char role_arn[2048];
    char account[13];
    char resource_account[13];
} sim;

static void sim_clean_up(sim *s)
{
    for (size_t i = 0; i < s->nslots; i++) {
        kms_policy_free(s->slots[i].policy);
    }
    kms_policy_ctx_free(s->ctx);
}

/* A DOC member: a policy as a JSON object or as a string holding one. */
static int compile_doc(sim *s, json_t *doc, const char *member, kms_policy_kind kind,
                       const char *label, const char *type, kms_policy **out)
{
    KMS_ENSURE(s->nslots < SIM_MAX_POLICIES, KMS_ERR_VALIDATION, "%s: more than %d policies in all",
               member, SIM_MAX_POLICIES);
    char *dumped = NULL;
    const char *text = NULL;
    size_t len = 0;
    if (json_is_string(doc)) {
        text = json_string_value(doc);
        len = json_string_length(doc);
    } else {
        KMS_ENSURE(json_is_object(doc), KMS_ERR_VALIDATION,
                   "%s: must be a policy document (a JSON object or a string holding one)", member);
        dumped = json_dumps(doc, JSON_COMPACT);
        KMS_ENSURE(dumped != NULL, KMS_ERR_INTERNAL, "out of memory");
        text = dumped;
        len = strlen(dumped);
    }
    kms_policy *p = NULL;
    int r =
        kms_policy_compile(text, len, (kms_policy_kind)(kind | KMS_POLICY_AS_SIMULATED), label, &p);
    free(dumped);
    if (r != 0) {
        if (kms_last_error() == KMS_ERR_MALFORMED_POLICY) {
            return kms_raise(KMS_ERR_MALFORMED_POLICY, "%s: %s", label, kms_last_error_message());
        }
        return -1;
    }
    s->slots[s->nslots++] = (sim_slot){p, type};
    *out = p;
    return 0;
}

static int read_identity(sim *s, json_t *v)
{
    KMS_ENSURE(json_is_array(v), KMS_ERR_VALIDATION,
               "identityPolicies: must be an array of policy documents");
    for (size_t i = 0; i < json_array_size(v); i++) {
        char label[64];
        snprintf(label, sizeof label, "PolicyInputList.%zu", i + 1);
        kms_policy *p = NULL;
        KMS_GUARD(compile_doc(s, json_array_get(v, i), "identityPolicies", KMS_POLICY_IDENTITY,
                              label, "IAM Policy", &p));
        s->identity[s->nidentity++] = p;
    }
    return 0;
}

static int read_scps(sim *s, json_t *v)
{
    KMS_ENSURE(json_is_array(v), KMS_ERR_VALIDATION,
               "serviceControlPolicies: must be an array (one per level, root first) of arrays "
               "of policy documents");
    for (size_t l = 0; l < json_array_size(v); l++) {
        json_t *level = json_array_get(v, l);
        KMS_ENSURE(json_is_array(level), KMS_ERR_VALIDATION,
                   "serviceControlPolicies[%zu]: must be an array of policy documents", l);
        KMS_ENSURE(s->nlevels < SIM_MAX_POLICIES, KMS_ERR_VALIDATION,
                   "serviceControlPolicies: more than %d levels", SIM_MAX_POLICIES);
        size_t first = s->nscp_items;
        for (size_t i = 0; i < json_array_size(level); i++) {
            char label[64];
            snprintf(label, sizeof label, "SCP.level%zu.policy%zu", l + 1, i + 1);
            kms_policy *p = NULL;
            KMS_GUARD(compile_doc(s, json_array_get(level, i), "serviceControlPolicies",
                                  KMS_POLICY_SCP, label, "Service Control Policy", &p));
            s->scp_items[s->nscp_items++] = p;
        }
        s->levels[s->nlevels++] = (kms_policy_list){&s->scp_items[first], s->nscp_items - first};
    }
    return 0;
}

static int read_context(sim *s, json_t *v)
{
    KMS_ENSURE(json_is_object(v), KMS_ERR_VALIDATION,
               "context: must be an object of keys and values");
    const char *key;
    json_t *vals;
    json_object_foreach(v, key, vals)
    {
        size_t n = json_is_array(vals) ? json_array_size(vals) : 1;
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_is_array(vals) ? json_array_get(vals, i) : vals;
            char buf[64];
            const char *text = buf;
            if (json_is_string(x)) {
                text = json_string_value(x);
            } else if (json_is_integer(x)) {
                snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(x));
            } else if (json_is_real(x)) {
                snprintf(buf, sizeof buf, "%.15g", json_real_value(x));
            } else if (json_is_boolean(x)) {
                text = json_is_true(x) ? "true" : "false";
            } else {
                return kms_raise(KMS_ERR_VALIDATION,
                                 "context.%s: values must be strings, numbers or booleans", key);
            }
            if (kms_policy_ctx_add(s->ctx, key, text) != 0) {
                return kms_raise(KMS_ERR_VALIDATION, "context.%s: %s", key,
                                 kms_last_error_message());
            }
        }
    }
    return 0;
}

static int ctx_default(sim *s, const char *key, const char *value)
{
    if (kms_policy_ctx_get(s->ctx, key) != NULL) {
        return 0;
    }
    return kms_policy_ctx_add(s->ctx, key, value);
}

/* The caller from its ARN: account, role of a session, and the aws:Principal* keys that the
 * request context would carry (AWS global condition context keys), unless the input gives them. */
static int derive_principal(sim *s, const char *arn, kms_eval_input *in)
{
    if (arn == NULL || strcmp(arn, "anonymous") == 0) {
        in->anonymous = true; /* an unsigned request: no aws:Principal* keys */
        return 0;
    }
    in->principal_arn = arn;
    if (strncmp(arn, "arn:", 4) != 0) {
        KMS_ENSURE(arn[0] != '\0' && strchr(arn, ':') == NULL && strchr(arn, '*') == NULL,
                   KMS_ERR_VALIDATION,
                   "principal: '%s' is neither an IAM principal ARN nor a service principal", arn);
        in->service = true;
        return ctx_default(s, "aws:PrincipalServiceName", arn);
    }
    KMS_ENSURE(kms_policy_arn_account_split(arn, s->account) == 0 &&
                   kms_policy_is_account_id(s->account),
               KMS_ERR_VALIDATION, "principal: '%s' is not an IAM principal ARN", arn);
    in->principal_account = s->account;
    const char *partition = arn + 4;
    size_t plen = (size_t)(strchr(partition, ':') - partition);
    const char *res = strrchr(arn, ':'); /* the resource of iam/sts principals has no ':' */
    res = res != NULL ? res + 1 : "";
    const char *principal_arn = arn, *type = "User", *username = NULL;
    char userid[1024] = "";
    if (strncmp(res, "assumed-role/", 13) == 0) {
        const char *role = res + 13, *slash = strchr(role, '/');
        KMS_ENSURE(slash != NULL && slash[1] != '\0', KMS_ERR_VALIDATION,
                   "principal: '%s': an assumed-role ARN is assumed-role/ROLE/SESSION", arn);
        int n = snprintf(s->role_arn, sizeof s->role_arn, "arn:%.*s:iam::%s:role/%.*s", (int)plen,
                         partition, s->account, (int)(slash - role), role);
        KMS_ENSURE(n > 0 && (size_t)n < sizeof s->role_arn, KMS_ERR_VALIDATION,
                   "principal: too long");
        /* The session ARN does not carry the role's path: a role ARN given as aws:PrincipalArn
         * in the context (arn:aws:iam::A:role/path/ROLE) is the better one. */
        const char *given = kms_policy_ctx_get(s->ctx, "aws:PrincipalArn");
        if (given != NULL && strstr(given, ":role/") != NULL &&
            strlen(given) < sizeof s->role_arn) {
            snprintf(s->role_arn, sizeof s->role_arn, "%s", given);
        }
        in->role_arn = s->role_arn;
        principal_arn = s->role_arn; /* aws:PrincipalArn of a session is its role's ARN */
        snprintf(userid, sizeof userid, "%.*s:%s", (int)(slash - role), role, slash + 1);
        type = "AssumedRole";
    } else if (strncmp(res, "role/", 5) == 0) {
        in->role_arn = arn;
        type = "AssumedRole";
        snprintf(userid, sizeof userid, "%s", strrchr(res, '/') + 1);
    } else if (strncmp(res, "user/", 5) == 0) {
        username = strrchr(res, '/') + 1;
        snprintf(userid, sizeof userid, "%s", username);
    } else if (strncmp(res, "federated-user/", 15) == 0) {
        type = "FederatedUser";
        snprintf(userid, sizeof userid, "%s:%s", s->account, res + 15);
    } else if (strcmp(res, "root") == 0) {
        type = "Account";
        snprintf(userid, sizeof userid, "%s", s->account);
    } else {
        return kms_raise(KMS_ERR_VALIDATION,
                         "principal: '%s' is not a root, user, role or assumed-role ARN", arn);
    }
    KMS_GUARD(ctx_default(s, "aws:PrincipalArn", principal_arn));
    KMS_GUARD(ctx_default(s, "aws:PrincipalAccount", s->account));
    KMS_GUARD(ctx_default(s, "aws:PrincipalType", type));
    if (username != NULL) {
        KMS_GUARD(ctx_default(s, "aws:username", username));
    }
    if (userid[0] != '\0') {
        KMS_GUARD(ctx_default(s, "aws:userid", userid));
    }
    return 0;
}

static const char *slot_type(const sim *s, const kms_policy *p)
{
    for (size_t i = 0; i < s->nslots; i++) {
        if (s->slots[i].policy == p) {
            return s->slots[i].type;
        }
    }
    return "";
}

static int render(const sim *s, const kms_eval_input *in, const kms_eval_result *res, char **out)
{
    int r = -1;
    json_t *matched = json_array();
    json_t *o = json_pack("{s:s, s:s, s:s}", "EvalActionName", in->action, "EvalResourceName",
                          in->resource, "EvalDecision", kms_policy_decision_name(res->decision));
    if (matched == NULL || o == NULL) {
        goto out;
    }
    for (size_t i = 0; i < res->match_count; i++) {
        const kms_eval_match *m = &res->matches[i];
        json_t *st =
            json_pack("{s:s, s:s, s:s, s:s}", "SourcePolicyId", kms_policy_label(m->policy),
                      "SourcePolicyType", slot_type(s, m->policy), "Sid",
                      kms_policy_statement_sid(m->policy, m->statement), "Effect",
                      m->deny ? "Deny" : "Allow");
        if (st == NULL || json_array_append_new(matched, st) != 0) {
            goto out;
        }
    }
    if (json_object_set(o, "MatchedStatements", matched) != 0) {
        goto out;
    }
    *out = json_dumps(o, JSON_COMPACT);
    r = *out != NULL ? 0 : -1;
out:
    json_decref(matched);
    json_decref(o);
    return r == 0 ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
}

/* The members, checked and read in a fixed order so that errors do not depend on key order. */
static int read_input(sim *s, json_t *root, kms_eval_input *in)
{
    static const char *const known[] = {"principal",      "action",
                                        "resource",       "resourceAccount",
                                        "context",        "identityPolicies",
                                        "resourcePolicy", "permissionsBoundary",
                                        "sessionPolicy",  "serviceControlPolicies",
                                        "keyPolicy"};
    KMS_ENSURE(json_is_object(root), KMS_ERR_VALIDATION, "the input must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !ok; i++) {
            ok = strcmp(key, known[i]) == 0;
        }
        KMS_ENSURE(ok, KMS_ERR_VALIDATION, "unknown member '%s'", key);
    }
    json_t *principal = json_object_get(root, "principal");
    json_t *action = json_object_get(root, "action");
    json_t *resource = json_object_get(root, "resource");
    json_t *racct = json_object_get(root, "resourceAccount");
    json_t *keyp = json_object_get(root, "keyPolicy");
    KMS_ENSURE(json_is_string(principal) || json_is_null(principal), KMS_ERR_VALIDATION,
               "principal: required, an ARN, a service principal, or \"anonymous\" (or null) for "
               "an unsigned request");
    KMS_ENSURE(json_is_string(action) && strchr(json_string_value(action), ':') != NULL,
               KMS_ERR_VALIDATION, "action: required, a string such as \"kms:Decrypt\"");
    KMS_ENSURE(resource == NULL || json_is_string(resource), KMS_ERR_VALIDATION,
               "resource: must be an ARN or \"*\"");
    KMS_ENSURE(racct == NULL ||
                   (json_is_string(racct) && kms_policy_is_account_id(json_string_value(racct))),
               KMS_ERR_VALIDATION, "resourceAccount: must be a 12-digit account id");
    KMS_ENSURE(keyp == NULL || json_is_boolean(keyp), KMS_ERR_VALIDATION,
               "keyPolicy: must be true or false");
    in->action = json_string_value(action);
    in->resource = resource != NULL ? json_string_value(resource) : "*";
    in->key_policy = json_is_true(keyp);

    if ((v = json_object_get(root, "context")) != NULL) {
        KMS_GUARD(read_context(s, v));
    }
    KMS_GUARD(derive_principal(s, json_string_value(principal), in));

    /* An ARN without an account (arn:aws:s3:::bucket) belongs to resourceAccount, else to the
     * caller's account. */
    char acct[13] = "";
    if (kms_policy_arn_account_split(in->resource, acct) == 0 && acct[0] != '\0') {
        memcpy(s->resource_account, acct, 13);
    } else if (racct != NULL) {
        snprintf(s->resource_account, sizeof s->resource_account, "%s", json_string_value(racct));
    }
    in->resource_account = s->resource_account;

    kms_policy *p = NULL;
    if ((v = json_object_get(root, "identityPolicies")) != NULL) {
        KMS_GUARD(read_identity(s, v));
    }
    in->identity = (kms_policy_list){s->identity, s->nidentity};
    if ((v = json_object_get(root, "resourcePolicy")) != NULL) {
        KMS_GUARD(compile_doc(s, v, "resourcePolicy",
                              in->key_policy ? KMS_POLICY_KEY : KMS_POLICY_RESOURCE,
                              "ResourcePolicy", "Resource Policy", &p));
        in->resource_policy = p;
    }
    if ((v = json_object_get(root, "permissionsBoundary")) != NULL) {
        KMS_GUARD(compile_doc(s, v, "permissionsBoundary", KMS_POLICY_IDENTITY,
                              "PermissionsBoundaryPolicy", "Permissions Boundary Policy", &p));
        in->boundary = p;
    }
    if ((v = json_object_get(root, "sessionPolicy")) != NULL) {
        KMS_GUARD(compile_doc(s, v, "sessionPolicy", KMS_POLICY_IDENTITY, "SessionPolicy",
                              "Session Policy", &p));
        in->session = p;
    }
    if ((v = json_object_get(root, "serviceControlPolicies")) != NULL) {
        KMS_GUARD(read_scps(s, v));
    }
    in->scps = s->levels;
    in->scp_levels = s->nlevels;
    in->ctx = s->ctx;
    return 0;
}

int kms_policy_simulate(const char *input_json, size_t len, char **output_json)
{
    int r = -1;
    json_t *root = NULL;
    sim *s = NULL;
    kms_eval_input in = {0};
    kms_eval_result res;
    kms_error_clear();
    if (output_json == NULL || (input_json == NULL && len > 0)) {
        return kms_raise(KMS_ERR_VALIDATION, "kms_policy_simulate: bad arguments");
    }
    *output_json = NULL;
    json_error_t jerr;
    root = json_loadb(input_json != NULL ? input_json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "the input is not valid JSON: %s (line %d, column %d)",
                  jerr.text, jerr.line, jerr.column);
        goto out;
    }
    /* On the heap: the slot tables are a few tens of kilobytes. */
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->ctx = kms_policy_ctx_new()) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (read_input(s, root, &in) != 0) {
        goto out;
    }
    /* A unique-id principal ("AIDA...") matches the id the context gives as aws:userid. */
    in.principal_id = kms_policy_ctx_get(s->ctx, "aws:userid");
    kms_policy_evaluate(&in, &res);
    if (render(s, &in, &res, output_json) != 0) {
        goto out;
    }
    r = 0;
out:
    if (s != NULL) {
        sim_clean_up(s);
        free(s);
    }
    json_decref(root);
    return r;
}
