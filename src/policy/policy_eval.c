/* Deciding a request: kms_policy_evaluate (policy.h).
 *
 * IAM User Guide, "Policy evaluation logic" ("How AWS enforcement code logic evaluates
 * requests", "Policy evaluation for requests within a single account") and "Cross-account
 * policy evaluation logic", in this order:
 *   1. An explicit Deny in any applicable policy (identity-based, resource-based, permissions
 *      boundary, session policy, any SCP level) decides: explicitDeny.
 *   2. SCPs: every level from the organization root down to the account must allow, else
 *      implicitDeny. Service principals are not restricted by SCPs.
 *   3. Same account: allowed when the resource-based policy grants the principal, or when the
 *      identity-based policies allow and the permissions boundary and session policy (when
 *      present) allow too. How far a resource-policy grant is limited depends on what it names
 *      (Policy evaluation logic, "Evaluating identity-based policies with resource-based
 *      policies"; Session policies; Permissions boundaries, "Resource-based policies"):
 *        - a role session ARN, a federated user's session ARN (or "*" for a session): not
 *          limited by boundary or session policy;
 *        - an IAM user ARN: not limited by the boundary, limited by a session policy;
 *        - a role ARN: limited by the role's boundary and the session policy;
 *        - the account (root ARN or id): the account delegates to its IAM policies, so the
 *          identity side must allow; for the root user itself the grant is direct.
 *      The account root user holds every permission of its account ("all requests are
 *      implicitly denied with the exception of the AWS account root user"), so its identity
 *      side always allows; boundaries and session policies do not apply to it.
 *   4. Cross account: the resource-based policy must grant the principal (or its account) AND
 *      the identity side must allow.
 *   5. KMS key policies (AWS KMS Developer Guide, "Key policies"; "Default key policy"): no key
 *      policy, no access; identity-based policies count only where the key policy allows the
 *      account ("arn:aws:iam::ACCOUNT:root"), "Allows access to the AWS account and enables IAM
 *      policies"; a statement naming the principal allows on its own.
 *   6. The anonymous principal (an unsigned request) has no policies of its own and no SCP
 *      restricts it: the resource-based policy alone decides, and only "*" (or a NotPrincipal
 *      that does not list "*") names it.
 *   7. An action that takes no resource ARN (kms:CreateKey, iam:ListUsers, ...; its request's
 *      resource is "*"): "any actions that you list in the Action or NotAction element apply to
 *      all resources" (IAM JSON policy elements: Resource), so Resource / NotResource do not
 *      restrict a statement that names the action itself. A wildcard action or a NotAction is
 *      matched against Resource as usual: a statement scoped to some resources grants (or
 *      denies) no account-wide action through a wildcard.
 * The service-specific rules are in policy_services.c. Nothing here allocates. */
#include <string.h>
#include <strings.h>

#include "policy/policy_internal.h"

/* What a resource-policy statement grants the caller, by what it names (bits, see above). */
enum {
    G_FULL = 1,            /* session ARN, root, service, "*" for a session */
    G_SESSION_LIMITED = 2, /* user or federated-user ARN: a session policy still limits */
    G_ROLE = 4,            /* role ARN: boundary and session policy limit */
    G_ACCOUNT = 8,         /* the account: delegates to identity-based policies */
};

typedef struct caller {
    const char *arn;
    const char *role_arn;
    const char *unique_id; /* AIDA... or AROA...:SESSION, "" when none */
    char account[13];
    bool service;
    bool anonymous; /* an unsigned request: no account, no policies of its own */
    bool root;
    bool session;  /* an STS session: arn:...:sts::A:assumed-role/... or federated-user/... */
    bool boundary; /* a permissions boundary applies to the caller */
} caller;

typedef struct scan {
    bool deny;
    bool allow;
    unsigned grants;
} scan;

typedef struct request {
    caller who;
    const char *action;
    size_t action_len;
    uint64_t action_head; /* kms_policy_text_head, folded */
    const char *resource;
    size_t resource_len;
    uint64_t resource_head;
    bool any_resource; /* the action takes no resource ARN: Resource / NotResource do not apply */
    const kms_policy_ctx *ctx;
    kms_eval_result *res;
} request;

const char *kms_policy_decision_name(kms_decision d)
{
    switch (d) {
    case KMS_DECISION_ALLOWED:
        return "allowed";
    case KMS_DECISION_EXPLICIT_DENY:
        return "explicitDeny";
    default:
        return "implicitDeny";
    }
}

static bool arn_resource_is(const char *arn, const char *service_colon, const char *prefix)
{
    /* arn:PARTITION:SERVICE:... : the service field and the resource's start. */
    const char *p = strchr(arn + 4, ':');
    if (p == NULL || strncmp(p + 1, service_colon, strlen(service_colon)) != 0) {
        return false;
    }
    for (int i = 0; i < 3 && p != NULL; i++) {
        p = strchr(p + 1, ':');
    }
    return p != NULL && strncmp(p + 1, prefix, strlen(prefix)) == 0;
}

static bool caller_init(const kms_eval_input *in, caller *c)
{
    memset(c, 0, sizeof *c);
    c->arn = in->principal_arn;
    c->role_arn = in->role_arn;
    c->unique_id = in->principal_id != NULL ? in->principal_id : "";
    c->service = in->service;
    c->anonymous = in->anonymous;
    c->boundary = in->boundary != NULL;
    if (c->anonymous) {
        c->arn = "";
        c->role_arn = NULL;
        c->unique_id = "";
        return true;
    }
    if (c->service) {
        return true;
    }
    if (in->principal_account != NULL && in->principal_account[0] != '\0') {
        if (!kms_policy_is_account_id(in->principal_account)) {
            return false;
        }
        memcpy(c->account, in->principal_account, 13);
    } else if (kms_policy_arn_account_split(c->arn, c->account) != 0 ||
               !kms_policy_is_account_id(c->account)) {
        return false;
    }
    if (strncmp(c->arn, "arn:", 4) == 0) {
        c->root =
            arn_resource_is(c->arn, "iam:", "root") && strcmp(strrchr(c->arn, ':'), ":root") == 0;
        c->session = arn_resource_is(c->arn, "sts:", "assumed-role/") ||
                     arn_resource_is(c->arn, "sts:", "federated-user/");
    }
    return true;
}

/* How a grant naming the caller itself (its ARN, or "*") is limited. */
static unsigned direct_grant(const caller *c)
{
    return (c->service || c->root || c->session) ? G_FULL : G_SESSION_LIMITED;
}

/* Whether a unique-id principal names the caller: a user's own id, or the role id of a session
 * ("AROA...:SESSION"). 0 when not, else how far it grants (a role id as a role ARN does). */
static unsigned unique_id_grant(const pol_principal *p, const caller *c)
{
    size_t n = strlen(p->value);
    if (c->service || strncmp(p->value, c->unique_id, n) != 0) {
        return 0;
    }
    if (c->unique_id[n] == '\0') {
        return direct_grant(c);
    }
    return (c->unique_id[n] == ':' && c->session && strncmp(p->value, "AROA", 4) == 0) ? G_ROLE : 0;
}

static unsigned principal_grant(const pol_principal *p, const caller *c)
{
    switch (p->type) {
    case PRIN_ANY:
        return direct_grant(c);
    case PRIN_ACCOUNT:
        if (c->service || strcmp(p->account, c->account) != 0) {
            return 0;
        }
        return c->root ? G_FULL : G_ACCOUNT;
    case PRIN_ARN:
        return (!c->service && strcmp(p->value, c->arn) == 0) ? direct_grant(c) : 0;
    case PRIN_ROLE:
        if (c->service) {
            return 0;
        }
        return ((c->role_arn != NULL && strcmp(p->value, c->role_arn) == 0) ||
                strcmp(p->value, c->arn) == 0)
                   ? G_ROLE
                   : 0;
    case PRIN_SERVICE:
        return (c->service && strcmp(p->value, c->arn) == 0) ? G_FULL : 0;
    case PRIN_FEDERATED:
    case PRIN_CANONICAL:
        return strcmp(p->value, c->arn) == 0 ? G_FULL : 0;
    case PRIN_UNIQUE_ID:
        return unique_id_grant(p, c);
    }
    return 0;
}

/* IAM JSON policy elements: NotPrincipal. An Allow with NotPrincipal allows everyone except
 * those named: naming the caller (its ARN, or the role of its session) leaves it out. A Deny with
 * NotPrincipal leaves the caller out only when every identity it acts as is listed: its own ARN,
 * the role of a session, and its account ("you must also include the account ARN"), because AWS
 * may evaluate the account principal first. */
static bool not_principal_excludes(const pol_stmt *st, const caller *c)
{
    bool own = false, role = c->role_arn == NULL || !c->session, account = c->service || c->root;
    for (size_t i = 0; i < st->nprincipals; i++) {
        const pol_principal *p = &st->principals[i];
        switch (p->type) {
        case PRIN_ANY:
            return true;
        case PRIN_ACCOUNT:
            account = account || (!c->service && strcmp(p->account, c->account) == 0);
            own = own || (c->root && strcmp(p->account, c->account) == 0);
            break;
        case PRIN_ROLE:
            role = role || (c->role_arn != NULL && strcmp(p->value, c->role_arn) == 0);
            own = own || strcmp(p->value, c->arn) == 0;
            break;
        case PRIN_UNIQUE_ID:
            if (unique_id_grant(p, c) == G_ROLE) {
                role = true;
            } else {
                own = own || unique_id_grant(p, c) != 0;
            }
            break;
        default:
            own = own || strcmp(p->value, c->arn) == 0;
            break;
        }
    }
    if (!st->deny) {
        return own || (c->session && c->role_arn != NULL && role);
    }
    return own && role && account;
}

/* IAM JSON policy elements: Principal, "All principals": "*" and {"AWS": "*"} name anonymous
 * callers too, and nothing else does; a NotPrincipal therefore leaves them out only when it
 * lists "*". */
static unsigned anonymous_grant(const pol_stmt *st)
{
    bool any = false;
    for (size_t i = 0; i < st->nprincipals; i++) {
        any = any || st->principals[i].type == PRIN_ANY;
    }
    return (st->pmode == PRIN_MODE_NOT_PRINCIPAL) != any ? G_FULL : 0;
}

static unsigned stmt_grant(const pol_stmt *st, const caller *c)
{
    if (c->anonymous) {
        return anonymous_grant(st);
    }
    /* Permissions boundaries (Important): "The NotPrincipal element with a Deny effect will
     * always deny any IAM principal that has a permissions boundary policy attached, regardless
     * of the values specified in the NotPrincipal element." */
    if (st->pmode == PRIN_MODE_NOT_PRINCIPAL && st->deny && c->boundary && !c->service) {
        return direct_grant(c);
    }
    if (st->pmode == PRIN_MODE_NOT_PRINCIPAL) {
        return not_principal_excludes(st, c) ? 0 : direct_grant(c);
    }
    unsigned g = 0;
    for (size_t i = 0; i < st->nprincipals; i++) {
        g |= principal_grant(&st->principals[i], c);
    }
    return g;
}

/* A pattern without wildcards or variables: it names one action. */
static bool pattern_literal(const pol_pattern *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->codes[i] >= 0x100) {
            return false;
        }
    }
    return true;
}

static bool stmt_applies(const pol_stmt *st, const request *rq)
{
    bool hit = false, named = false;
    for (size_t i = 0; i < st->nactions && !named; i++) {
        if (kms_policy_pattern_match_head(&st->actions[i], rq->ctx, rq->action, rq->action_len,
                                          true, rq->action_head)) {
            hit = true;
            if (!rq->any_resource) {
                break;
            }
            /* For an action without a resource ARN, look on for a pattern that names it. */
            named = pattern_literal(&st->actions[i]);
        }
    }
    if (hit == st->not_action) {
        return false;
    }
    /* Only a statement that names the action itself is for it whatever its Resource says: a
     * wildcard action (kms:*, *) or a NotAction scoped to some resource does not reach the
     * actions that take none (else "Allow kms:* on key K" would allow CreateKey, ListKeys and
     * GenerateRandom, and "Allow iam:* on user/me" the account's password policy). */
    if (!st->no_resource && !(rq->any_resource && named && !st->not_action)) {
        hit = false;
        for (size_t i = 0; i < st->nresources && !hit; i++) {
            hit = kms_policy_pattern_match_head(&st->resources[i], rq->ctx, rq->resource,
                                                rq->resource_len, false, rq->resource_head);
        }
        if (hit == st->not_resource) {
            return false;
        }
    }
    return true;
}

static bool conds_hold(const pol_stmt *st, const request *rq)
{
    for (size_t i = 0; i < st->nconds; i++) {
        if (!kms_policy_cond_eval(&st->conds[i], rq->ctx)) {
            return false;
        }
    }
    return true;
}

static void record(kms_eval_result *res, const kms_policy *p, size_t i, bool deny)
{
    if (res->match_count < KMS_EVAL_MAX_MATCHES) {
        res->matches[res->match_count++] = (kms_eval_match){p, i, deny};
    }
}

/* Every statement of p against the request. resource_based: statements must name the caller. */
static void scan_policy(const kms_policy *p, const request *rq, bool resource_based, scan *s)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->nstmts; i++) {
        const pol_stmt *st = &p->stmts[i];
        if (!stmt_applies(st, rq)) {
            continue;
        }
        unsigned g = 0;
        if (st->pmode != PRIN_MODE_NONE) {
            g = stmt_grant(st, &rq->who);
            if (g == 0) {
                continue;
            }
        } else if (resource_based) {
            continue; /* a statement without Principal grants nobody in a resource policy */
        }
        if (!conds_hold(st, rq)) {
            continue;
        }
        record(rq->res, p, i, st->deny);
        if (st->deny) {
            s->deny = true;
        } else {
            s->allow = true;
            s->grants |= g;
        }
    }
}

static void scan_list(const kms_policy_list *l, const request *rq, scan *s)
{
    for (size_t i = 0; l->items != NULL && i < l->count; i++) {
        scan_policy(l->items[i], rq, false, s);
    }
}

/* Every SCP level must allow (Service control policies evaluation: "an allow at each level"). */
static bool scan_scps(const kms_eval_input *in, const request *rq, scan *all)
{
    bool every_level = in->scps != NULL;
    for (size_t l = 0; in->scps != NULL && l < in->scp_levels; l++) {
        scan level = {0};
        scan_list(&in->scps[l], rq, &level);
        all->deny = all->deny || level.deny;
        every_level = every_level && level.allow;
    }
    return every_level;
}

kms_decision kms_policy_evaluate(const kms_eval_input *in, kms_eval_result *result)
{
    kms_eval_result local;
    kms_eval_result *res = result != NULL ? result : &local;
    memset(res, 0, sizeof *res);
    res->decision = KMS_DECISION_IMPLICIT_DENY;
    request rq = {.res = res};
    if (in == NULL || (in->principal_arn == NULL && !in->anonymous) || in->action == NULL ||
        in->resource == NULL || !caller_init(in, &rq.who)) {
        return res->decision;
    }
    rq.action = in->action;
    rq.action_len = strlen(in->action);
    rq.resource = in->resource;
    rq.resource_len = strlen(in->resource);
    rq.action_head = kms_policy_text_head(rq.action, rq.action_len, true);
    rq.resource_head = kms_policy_text_head(rq.resource, rq.resource_len, false);
    rq.any_resource =
        strcmp(rq.resource, "*") == 0 && kms_policy_action_takes_no_resource(rq.action);
    rq.ctx = in->ctx;
    const caller *c = &rq.who;
    /* An anonymous caller has no policies of its own and no SCP restricts it (Organizations:
     * SCPs restrict the principals of member accounts): its resource policy alone decides. */
    bool own_policies = !c->service && !c->anonymous;
    if (own_policies && kms_policy_action_always_allowed(rq.action)) {
        res->decision = KMS_DECISION_ALLOWED;
        return res->decision;
    }
    if (kms_policy_reserved(rq.action, rq.resource)) {
        res->reserved = true;
        return res->decision; /* implicit deny: no policy can allow it */
    }
    bool cross = own_policies && in->resource_account != NULL && in->resource_account[0] != '\0' &&
                 strcmp(in->resource_account, c->account) != 0;

    scan id = {0}, rp = {0}, bnd = {0}, ses = {0}, scp = {0};
    bool scp_ok = true;
    if (own_policies) {
        /* A service principal has no identity-based policies and no SCPs apply to it. */
        scan_list(&in->identity, &rq, &id);
        scan_policy(in->boundary, &rq, false, &bnd);
        scan_policy(in->session, &rq, false, &ses);
        if (in->scp_levels > 0) {
            scp_ok = scan_scps(in, &rq, &scp);
        }
    }
    scan_policy(in->resource_policy, &rq, true, &rp);

    if (id.deny || rp.deny || bnd.deny || ses.deny || scp.deny) {
        res->scp_denied = scp.deny;
        res->decision = KMS_DECISION_EXPLICIT_DENY;
        return res->decision;
    }
    if (!scp_ok) {
        res->scp_denied = true;
        return res->decision;
    }
    if (own_policies && kms_policy_public_read(rq.action, rq.resource)) {
        res->resource_allowed = true; /* as if its resource policy allowed everyone */
        res->decision = KMS_DECISION_ALLOWED;
        return res->decision;
    }

    bool boundary_ok = c->root || in->boundary == NULL || bnd.allow;
    bool session_ok = c->root || in->session == NULL || ses.allow;
    bool id_allow = own_policies && (c->root || id.allow);
    bool id_side = id_allow && boundary_ok && session_ok;
    unsigned g = rp.grants;
    bool res_direct = (g & G_FULL) || ((g & G_SESSION_LIMITED) && session_ok) ||
                      ((g & G_ROLE) && boundary_ok && session_ok);

    res->identity_allowed = id_allow;
    res->boundary_denied = !c->root && own_policies && in->boundary != NULL && !bnd.allow;
    res->session_denied = !c->root && own_policies && in->session != NULL && !ses.allow;
    res->resource_allowed = res_direct && !cross;

    bool allowed;
    if (!own_policies) {
        allowed = res_direct;
    } else if (cross) {
        allowed = g != 0 && id_side;
    } else if (in->key_policy) {
        allowed = in->resource_policy != NULL && (res_direct || ((g & G_ACCOUNT) && id_side));
    } else {
        allowed = res_direct || id_side;
    }
    res->decision = allowed ? KMS_DECISION_ALLOWED : KMS_DECISION_IMPLICIT_DENY;
    return res->decision;
}
