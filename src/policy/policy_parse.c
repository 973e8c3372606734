/* Parsing, validating and compiling policy documents (policy.h: kms_policy_compile).
 *
 * Grammar and wording from the IAM User Guide, "IAM JSON policy elements reference" and "IAM
 * JSON policy grammar"; errors name the element ("Statement[2].Condition: ...") and use AWS's
 * messages where they are known ("Missing required field Effect", "Resource x must be in ARN
 * format or \"*\".", "Policy document should not specify a principal."). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

/* AWS quotas, in characters (IAM and STS quotas; AWS KMS quotas: key policy document size). */
static size_t kind_limit(kms_policy_kind kind)
{
    switch (kind) {
    case KMS_POLICY_IDENTITY:
        return 10240;
    case KMS_POLICY_SCP:
        return 5120;
    case KMS_POLICY_RESOURCE:
        return 20480;
    case KMS_POLICY_KEY:
        return 32768;
    case KMS_POLICY_TRUST:
        return 4096;
    }
    return 0;
}

static bool kind_resource_based(kms_policy_kind kind)
{
    return kind == KMS_POLICY_RESOURCE || kind == KMS_POLICY_KEY || kind == KMS_POLICY_TRUST;
}

/* Characters, not bytes: UTF-8 continuation bytes do not start one. */
static size_t count_chars(const char *doc, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        n += ((unsigned char)doc[i] & 0xC0) != 0x80;
    }
    return n;
}

/* ---- Freeing ------------------------------------------------------------------------------- */
static void stmt_clean_up(pol_stmt *st)
{
    free(st->sid);
    for (size_t i = 0; i < st->nactions; i++) {
        kms_policy_pattern_clean_up(&st->actions[i]);
    }
    free(st->actions);
    for (size_t i = 0; i < st->nresources; i++) {
        kms_policy_pattern_clean_up(&st->resources[i]);
    }
    free(st->resources);
    for (size_t i = 0; i < st->nprincipals; i++) {
        free(st->principals[i].value);
    }
    free(st->principals);
    for (size_t i = 0; i < st->nconds; i++) {
        kms_policy_cond_clean_up(&st->conds[i]);
    }
    free(st->conds);
}

void kms_policy_free(kms_policy *policy)
{
    if (policy == NULL) {
        return;
    }
    for (size_t i = 0; i < policy->nstmts; i++) {
        stmt_clean_up(&policy->stmts[i]);
    }
    free(policy->stmts);
    free(policy->label);
    free(policy);
}

/* ---- Elements ------------------------------------------------------------------------------- */
/* A string or a non-empty array of strings: its size, or -1 raised. A null inside the array is
 * passed over, as IAM passes over it (it must leave a string). */
static int string_list_size(const char *path, json_t *v, size_t *n)
{
    *n = 0;
    if (json_is_string(v)) {
        *n = 1;
        return 0;
    }
    KMS_ENSURE(json_is_array(v), KMS_ERR_MALFORMED_POLICY,
               "%s: must be a string or an array of strings", path);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *item = json_array_get(v, i);
        KMS_ENSURE(json_is_string(item) || json_is_null(item), KMS_ERR_MALFORMED_POLICY,
                   "%s: must be a string or an array of strings", path);
        *n += json_is_string(item);
    }
    KMS_ENSURE(*n > 0, KMS_ERR_MALFORMED_POLICY, "%s: must not be empty", path);
    return 0;
}

/* The i-th string of a list string_list_size accepted (nulls not counted). */
static const char *string_list_get(json_t *v, size_t i)
{
    if (json_is_string(v)) {
        return json_string_value(v);
    }
    for (size_t k = 0; k < json_array_size(v); k++) {
        json_t *item = json_array_get(v, k);
        if (json_is_string(item) && i-- == 0) {
            return json_string_value(item);
        }
    }
    return "";
}

/* "*" or "service:action" (IAM JSON policy elements: Action): a service prefix of letters,
 * digits, '-' and wildcards, then any text, as IAM accepts it; text no action name holds (a
 * comma, a space, a second colon) just matches nothing, and a NotAction of it everything. Empty
 * text only where the simulators accept it (simulated). */
static bool action_valid(const char *a, bool simulated)
{
    if (strcmp(a, "*") == 0) {
        return true;
    }
    const char *colon = strchr(a, ':');
    if (colon == NULL || colon == a || (colon[1] == '\0' && !simulated)) {
        return false;
    }
    for (const char *p = a; p < colon; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '*' || c == '?';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static int compile_actions(const char *path, json_t *v, bool simulated, pol_stmt *st)
{
    size_t n = 0;
    KMS_GUARD(string_list_size(path, v, &n));
    st->actions = calloc(n, sizeof *st->actions);
    KMS_ENSURE(st->actions != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *a = string_list_get(v, i);
        KMS_ENSURE(action_valid(a, simulated), KMS_ERR_MALFORMED_POLICY,
                   "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. "
                   "(%s: '%s')",
                   path, a);
        st->nactions++;
        /* Actions match case-insensitively: lower-cased once here, the request's per call. */
        KMS_GUARD(kms_policy_pattern_compile(a, (pat_opts){true, false, true}, &st->actions[i]));
    }
    return 0;
}

static int compile_resources(const char *path, json_t *v, bool variables, pol_stmt *st)
{
    size_t n = 0;
    KMS_GUARD(string_list_size(path, v, &n));
    st->resources = calloc(n, sizeof *st->resources);
    KMS_ENSURE(st->resources != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *r = string_list_get(v, i);
        KMS_GUARD(kms_policy_resource_check(path, r));
        st->nresources++;
        KMS_GUARD(
            kms_policy_pattern_compile(r, (pat_opts){true, variables, false}, &st->resources[i]));
    }
    return 0;
}

static bool has_wildcard(const char *s)
{
    return strpbrk(s, "*?") != NULL;
}

/* An "AWS" principal: "*", an account id, or an IAM/STS ARN of the forms Principal lists
 * (IAM JSON policy elements: Principal): account root, user, role, assumed-role session,
 * federated user. Partial wildcards are not allowed. */
static bool aws_principal(const char *v, pol_principal *p)
{
    if (strcmp(v, "*") == 0) {
        p->type = PRIN_ANY;
        return true;
    }
    if (has_wildcard(v)) {
        return false;
    }
    if (kms_policy_is_account_id(v)) {
        p->type = PRIN_ACCOUNT; /* "the same as arn:aws:iam::ID:root" */
        memcpy(p->account, v, 13);
        return true;
    }
    if (kms_policy_is_unique_id(v)) {
        p->type = PRIN_UNIQUE_ID; /* what GetKeyPolicy shows once the principal is deleted */
        return true;
    }
    char acct[13];
    if (kms_policy_arn_account_split(v, acct) != 0 || !kms_policy_is_account_id(acct)) {
        return false;
    }
    /* arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE with an empty region. */
    const char *svc = strchr(v + 4, ':');
    if (svc == NULL) {
        return false;
    }
    svc++;
    const char *res = strchr(strchr(strchr(svc, ':') + 1, ':') + 1, ':') + 1;
    bool iam = strncmp(svc, "iam::", 5) == 0, sts = strncmp(svc, "sts::", 5) == 0;
    memcpy(p->account, acct, 13);
    if (iam && strcmp(res, "root") == 0) {
        p->type = PRIN_ACCOUNT;
    } else if (iam && strncmp(res, "user/", 5) == 0 && res[5] != '\0') {
        p->type = PRIN_ARN;
    } else if (iam && strncmp(res, "role/", 5) == 0 && res[5] != '\0') {
        p->type = PRIN_ROLE;
    } else if (sts && (strncmp(res, "assumed-role/", 13) == 0 ||
                       strncmp(res, "federated-user/", 15) == 0)) {
        const char *rest = strchr(res, '/') + 1;
        p->type = PRIN_ARN;
        if (*rest == '\0' || (res[0] == 'a' && strchr(rest, '/') == NULL)) {
            return false; /* assumed-role/ROLE/SESSION needs both names */
        }
    } else {
        return false;
    }
    return true;
}

static int compile_principal_values(const char *path, const char *type, json_t *v, pol_stmt *st)
{
    size_t n = 0;
    char tpath[160];
    snprintf(tpath, sizeof tpath, "%s.%s", path, type);
    KMS_GUARD(string_list_size(tpath, v, &n));
    pol_principal *grown = realloc(st->principals, (st->nprincipals + n) * sizeof *grown);
    KMS_ENSURE(grown != NULL, KMS_ERR_INTERNAL, "out of memory");
    st->principals = grown;
    for (size_t i = 0; i < n; i++) {
        const char *s = string_list_get(v, i);
        pol_principal *p = &st->principals[st->nprincipals];
        memset(p, 0, sizeof *p);
        bool ok = false;
        if (strcmp(type, "AWS") == 0) {
            ok = aws_principal(s, p);
        } else if (s[0] != '\0' && !has_wildcard(s)) {
            ok = true;
            p->type = strcmp(type, "Service") == 0     ? PRIN_SERVICE
                      : strcmp(type, "Federated") == 0 ? PRIN_FEDERATED
                                                       : PRIN_CANONICAL;
        }
        KMS_ENSURE(ok, KMS_ERR_MALFORMED_POLICY, "Invalid principal in policy: \"%s\":\"%s\" (%s)",
                   type, s, path);
        p->value = strdup(s);
        KMS_ENSURE(p->value != NULL, KMS_ERR_INTERNAL, "out of memory");
        st->nprincipals++;
    }
    return 0;
}

static int compile_principal(const char *path, json_t *v, pol_stmt *st)
{
    if (json_is_string(v)) {
        KMS_ENSURE(strcmp(json_string_value(v), "*") == 0, KMS_ERR_MALFORMED_POLICY,
                   "%s: Invalid principal in policy: \"%s\" (a string Principal can only be "
                   "\"*\")",
                   path, json_string_value(v));
        st->principals = calloc(1, sizeof *st->principals);
        KMS_ENSURE(st->principals != NULL, KMS_ERR_INTERNAL, "out of memory");
        st->principals[0].type = PRIN_ANY;
        st->principals[0].value = strdup("*");
        st->nprincipals = 1;
        KMS_ENSURE(st->principals[0].value != NULL, KMS_ERR_INTERNAL, "out of memory");
        return 0;
    }
    KMS_ENSURE(json_is_object(v) && json_object_size(v) > 0, KMS_ERR_MALFORMED_POLICY,
               "%s: must be \"*\" or an object of AWS, Service, Federated or CanonicalUser", path);
    const char *type;
    json_t *vals;
    json_object_foreach(v, type, vals)
    {
        KMS_ENSURE(strcmp(type, "AWS") == 0 || strcmp(type, "Service") == 0 ||
                       strcmp(type, "Federated") == 0 || strcmp(type, "CanonicalUser") == 0,
                   KMS_ERR_MALFORMED_POLICY, "%s: unknown principal type '%s'", path, type);
        KMS_GUARD(compile_principal_values(path, type, vals, st));
    }
    return 0;
}

static int compile_condition(const char *path, json_t *v, bool variables, pol_stmt *st)
{
    KMS_ENSURE(json_is_object(v), KMS_ERR_MALFORMED_POLICY,
               "%s: must be an object of condition operators", path);
    const char *op;
    json_t *block;
    json_object_foreach(v, op, block)
    {
        KMS_GUARD(kms_policy_cond_compile(path, op, block, variables, &st->conds, &st->nconds));
    }
    return 0;
}

static bool sid_alnum(const char *s)
{
    for (; *s != '\0'; s++) {
        bool ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                  (*s >= '0' && *s <= '9') || *s == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* ---- Statements ---------------------------------------------------------------------------- */
typedef struct stmt_elems {
    json_t *sid, *effect, *principal, *not_principal, *action, *not_action, *resource,
        *not_resource, *condition;
} stmt_elems;

static int stmt_elements(const char *path, json_t *obj, stmt_elems *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        json_t **slot = strcmp(key, "Sid") == 0            ? &e->sid
                        : strcmp(key, "Effect") == 0       ? &e->effect
                        : strcmp(key, "Principal") == 0    ? &e->principal
                        : strcmp(key, "NotPrincipal") == 0 ? &e->not_principal
                        : strcmp(key, "Action") == 0       ? &e->action
                        : strcmp(key, "NotAction") == 0    ? &e->not_action
                        : strcmp(key, "Resource") == 0     ? &e->resource
                        : strcmp(key, "NotResource") == 0  ? &e->not_resource
                        : strcmp(key, "Condition") == 0    ? &e->condition
                                                           : NULL;
        KMS_ENSURE(slot != NULL, KMS_ERR_MALFORMED_POLICY, "%s: unknown element '%s'", path, key);
        *slot = v;
    }
    return 0;
}

static int compile_stmt(const char *path, json_t *obj, const kms_policy *pol, pol_stmt *st)
{
    KMS_ENSURE(json_is_object(obj), KMS_ERR_MALFORMED_POLICY, "%s: must be an object", path);
    stmt_elems e = {0};
    KMS_GUARD(stmt_elements(path, obj, &e));
    char sub[128];

    if (e.sid != NULL) {
        KMS_ENSURE(json_is_string(e.sid), KMS_ERR_MALFORMED_POLICY, "%s.Sid: must be a string",
                   path);
        bool alnum_only = pol->kind == KMS_POLICY_IDENTITY || pol->kind == KMS_POLICY_SCP;
        KMS_ENSURE(!alnum_only || sid_alnum(json_string_value(e.sid)), KMS_ERR_MALFORMED_POLICY,
                   "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies "
                   "the regular expression [0-9A-Za-z]* (%s.Sid: letters, digits and '_', as IAM "
                   "takes them)",
                   path);
    }
    st->sid = strdup(e.sid != NULL ? json_string_value(e.sid) : "");
    KMS_ENSURE(st->sid != NULL, KMS_ERR_INTERNAL, "out of memory");

    KMS_ENSURE(e.effect != NULL, KMS_ERR_MALFORMED_POLICY, "Missing required field Effect (%s)",
               path);
    const char *effect = json_is_string(e.effect) ? json_string_value(e.effect) : "";
    KMS_ENSURE(strcmp(effect, "Allow") == 0 || strcmp(effect, "Deny") == 0,
               KMS_ERR_MALFORMED_POLICY, "%s.Effect: must be \"Allow\" or \"Deny\"", path);
    st->deny = strcmp(effect, "Deny") == 0;

    /* Principal: required in resource-based policies, not allowed in identity-based ones. */
    json_t *prin = e.principal != NULL ? e.principal : e.not_principal;
    KMS_ENSURE(e.principal == NULL || e.not_principal == NULL, KMS_ERR_MALFORMED_POLICY,
               "%s: Principal and NotPrincipal cannot both be present", path);
    if (kind_resource_based(pol->kind) && prin == NULL && pol->simulated) {
        st->pmode = PRIN_MODE_NONE; /* evaluated, grants nobody (policy_eval.c) */
    } else if (kind_resource_based(pol->kind)) {
        KMS_ENSURE(prin != NULL, KMS_ERR_MALFORMED_POLICY, "Missing required field Principal (%s)",
                   path);
        snprintf(sub, sizeof sub, "%s.%s", path, e.principal ? "Principal" : "NotPrincipal");
        st->pmode = e.principal ? PRIN_MODE_PRINCIPAL : PRIN_MODE_NOT_PRINCIPAL;
        KMS_GUARD(compile_principal(sub, prin, st));
    } else {
        KMS_ENSURE(prin == NULL, KMS_ERR_MALFORMED_POLICY,
                   "Policy document should not specify a principal. (%s)", path);
    }

    KMS_ENSURE(e.action == NULL || e.not_action == NULL, KMS_ERR_MALFORMED_POLICY,
               "%s: Action and NotAction cannot both be present", path);
    KMS_ENSURE(e.action != NULL || e.not_action != NULL, KMS_ERR_MALFORMED_POLICY,
               "Missing required field Action (%s)", path);
    st->not_action = e.not_action != NULL;
    snprintf(sub, sizeof sub, "%s.%s", path, st->not_action ? "NotAction" : "Action");
    KMS_GUARD(compile_actions(sub, st->not_action ? e.not_action : e.action, pol->simulated, st));

    KMS_ENSURE(e.resource == NULL || e.not_resource == NULL, KMS_ERR_MALFORMED_POLICY,
               "%s: Resource and NotResource cannot both be present", path);
    json_t *res = e.resource != NULL ? e.resource : e.not_resource;
    if (pol->kind == KMS_POLICY_TRUST) {
        /* A role trust policy names no resource: the role is the resource. */
        KMS_ENSURE(res == NULL, KMS_ERR_MALFORMED_POLICY,
                   "%s: Has prohibited field %s (a trust policy names no resource)", path,
                   e.resource ? "Resource" : "NotResource");
        st->no_resource = true;
    } else if (res == NULL) {
        /* SCPs may leave Resource out (it then means "*"), every other kind needs it. */
        KMS_ENSURE(pol->kind == KMS_POLICY_SCP, KMS_ERR_MALFORMED_POLICY,
                   "Missing required field Resource (%s)", path);
        st->no_resource = true;
    } else {
        st->not_resource = e.not_resource != NULL;
        snprintf(sub, sizeof sub, "%s.%s", path, st->not_resource ? "NotResource" : "Resource");
        KMS_GUARD(compile_resources(sub, res, pol->variables, st));
    }

    if (e.condition != NULL) {
        snprintf(sub, sizeof sub, "%s.Condition", path);
        KMS_GUARD(compile_condition(sub, e.condition, pol->variables, st));
    }
    return 0;
}

/* ---- Documents ----------------------------------------------------------------------------- */
static int compile_top(json_t *root, kms_policy *pol)
{
    KMS_ENSURE(json_is_object(root), KMS_ERR_MALFORMED_POLICY,
               "the policy document must be a JSON object");
    json_t *version = NULL, *statement = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "Version") == 0) {
            version = v;
        } else if (strcmp(key, "Statement") == 0) {
            statement = v;
        } else if (strcmp(key, "Id") == 0) {
            KMS_ENSURE(json_is_string(v), KMS_ERR_MALFORMED_POLICY, "Id: must be a string");
        } else {
            return kms_raise(KMS_ERR_MALFORMED_POLICY, "unknown element '%s'", key);
        }
    }
    /* IAM JSON policy elements: Version. Without it the 2008-10-17 language applies, in which
     * ${...} is literal text. */
    KMS_GUARD(kms_policy_version_check(version, pol->managed, &pol->variables));
    KMS_ENSURE(statement != NULL, KMS_ERR_MALFORMED_POLICY, "Missing required field Statement");
    KMS_ENSURE(json_is_object(statement) || json_is_array(statement), KMS_ERR_MALFORMED_POLICY,
               "Statement: must be an object or an array of objects");
    size_t n = json_is_array(statement) ? json_array_size(statement) : 1;
    KMS_ENSURE(n > 0, KMS_ERR_MALFORMED_POLICY, "Statement: must not be empty");
    pol->stmts = calloc(n, sizeof *pol->stmts);
    KMS_ENSURE(pol->stmts != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char path[48];
        snprintf(path, sizeof path, "Statement[%zu]", i);
        json_t *obj = json_is_array(statement) ? json_array_get(statement, i) : statement;
        pol->nstmts++; /* counted first: kms_policy_free frees a half-compiled statement */
        KMS_GUARD(compile_stmt(path, obj, pol, &pol->stmts[i]));
        bool unique_sids = pol->kind == KMS_POLICY_IDENTITY || pol->kind == KMS_POLICY_SCP;
        for (size_t j = 0; unique_sids && pol->stmts[i].sid[0] != '\0' && j < i; j++) {
            KMS_ENSURE(strcmp(pol->stmts[j].sid, pol->stmts[i].sid) != 0, KMS_ERR_MALFORMED_POLICY,
                       "Statement IDs (SID) in a single policy must be unique. (%s.Sid)", path);
        }
    }
    return 0;
}

int kms_policy_compile(const char *doc, size_t len, kms_policy_kind kind, const char *label,
                       kms_policy **out)
{
    int r = -1;
    json_t *root = NULL;
    kms_policy *pol = NULL;
    bool simulated = ((unsigned)kind & KMS_POLICY_AS_SIMULATED) != 0;
    bool managed = ((unsigned)kind & KMS_POLICY_MANAGED) != 0;
    kind = (kms_policy_kind)((unsigned)kind &
                             ~(unsigned)(KMS_POLICY_AS_SIMULATED | KMS_POLICY_MANAGED));
    kms_error_clear();
    if (out == NULL || (doc == NULL && len > 0) || kind_limit(kind) == 0) {
        return kms_raise(KMS_ERR_VALIDATION, "kms_policy_compile: bad arguments");
    }
    *out = NULL;
    size_t chars = count_chars(doc, len);
    if (chars > kind_limit(kind)) {
        kms_raise(KMS_ERR_MALFORMED_POLICY,
                  "Cannot exceed quota for PolicySize: %zu (the document has %zu characters)",
                  kind_limit(kind), chars);
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(doc != NULL ? doc : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        kms_raise(KMS_ERR_MALFORMED_POLICY, "Syntax errors in policy. (%s at line %d, column %d)",
                  jerr.text, jerr.line, jerr.column);
        goto out;
    }
    pol = calloc(1, sizeof *pol);
    if (pol == NULL || (pol->label = strdup(label != NULL ? label : "")) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    pol->kind = kind;
    pol->simulated = simulated;
    pol->managed = managed;
    if (compile_top(root, pol) != 0) {
        goto out;
    }
    *out = pol;
    pol = NULL;
    r = 0;
out:
    kms_policy_free(pol);
    json_decref(root);
    return r;
}

const char *kms_policy_label(const kms_policy *policy)
{
    return policy != NULL ? policy->label : "";
}

size_t kms_policy_statement_count(const kms_policy *policy)
{
    return policy != NULL ? policy->nstmts : 0;
}

const char *kms_policy_statement_sid(const kms_policy *policy, size_t statement)
{
    if (policy == NULL || statement >= policy->nstmts) {
        return "";
    }
    return policy->stmts[statement].sid;
}
