/* Grants (KMS Developer Guide, "Grants in AWS KMS"): CreateGrant, ListGrants,
 * ListRetirableGrants, RetireGrant, RevokeGrant, and the gate's question "does a grant allow
 * this caller this operation on this key with this encryption context?".
 *
 * Grants here take effect at once (one database, no eventual consistency), so a grant token adds
 * nothing to a grant's power; tokens are still issued, checked for form where requests carry
 * them, and accepted by RetireGrant, as AWS does. */
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "service/ops.h"
#include "service/ops_grants.h"
#include "util/util.h"

#define GRANT_TOKEN_BYTES 48

/* The operations a grant can allow (KMS API reference, CreateGrant: Operations). */
static const char *const grant_operations[] = {
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
};

static bool in_list(const char *op, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(op, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* KMS API reference, CreateGrant: Constraints. Cryptographic operations of asymmetric and HMAC
 * keys take no encryption context: a grant with constraints cannot allow them. A grant with
 * constraints may still allow DescribeKey and RetireGrant, to which they do not apply. */
static bool takes_context(const char *op)
{
    static const char *const without[] = {"Sign",        "Verify",    "GetPublicKey",
                                          "GenerateMac", "VerifyMac", "DeriveSharedSecret"};
    return !in_list(op, without, sizeof without / sizeof without[0]);
}

static bool constraints_apply(const char *op)
{
    static const char *const exempt[] = {"DescribeKey", "RetireGrant"};
    return !in_list(op, exempt, sizeof exempt / sizeof exempt[0]);
}

/* The operation list of a grant is stored comma-separated: the next name from *p into op
 * (longer names are cut; no operation name comes near). false at the end of the list. */
static bool next_op(const char **p, char op[64])
{
    if (*p == NULL || **p == '\0') {
        return false;
    }
    const char *comma = strchr(*p, ',');
    size_t len = comma ? (size_t)(comma - *p) : strlen(*p);
    snprintf(op, 64, "%.*s", (int)len, *p);
    *p = comma ? comma + 1 : *p + len;
    return true;
}

static bool grant_has_op(const char *ops, const char *op)
{
    char name[64];
    for (const char *p = ops; next_op(&p, name);) {
        if (strcmp(name, op) == 0) {
            return true;
        }
    }
    return false;
}

/* The request's encryption context for `action`, as a JSON object (*out, new reference). A
 * typed call's context that is not UTF-8 text cannot be compared with a grant's constraints
 * (JSON text): it is refused rather than compared without the members that are not. */
static int request_context(const kms_request *rq, const char *action, json_t **out)
{
    *out = NULL;
    if (rq->enc_ctx != NULL) {
        json_t *o = json_object();
        KMS_ENSURE(o != NULL, KMS_ERR_INTERNAL, "out of memory");
        for (size_t i = 0; i < rq->enc_ctx->count; i++) {
            const kms_context_entry *e = &rq->enc_ctx->entries[i];
            if (json_object_set_new(o, e->key, json_string(e->value)) != 0) {
                json_decref(o);
                return kms_raise(KMS_ERR_VALIDATION,
                                 "the encryption context must be UTF-8 text to be checked against "
                                 "the key's grants (pair %zu is not)",
                                 i + 1);
            }
        }
        *out = o;
        return 0;
    }
    const char *member = "EncryptionContext";
    if (strcmp(action, "kms:ReEncryptFrom") == 0) {
        member = "SourceEncryptionContext";
    } else if (strcmp(action, "kms:ReEncryptTo") == 0) {
        member = "DestinationEncryptionContext";
    }
    json_t *ec = rq->req ? json_object_get(rq->req, member) : NULL;
    *out = json_is_object(ec) ? json_incref(ec) : json_object();
    KMS_ENSURE(*out != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

/* The value of key in the request's context, the key compared case-insensitively (KMS API
 * reference, GrantConstraints: "the key in each key-value pair is not case sensitive, but the
 * value is"). */
static json_t *context_value(json_t *ec, const char *key)
{
    const char *k;
    json_t *v;
    json_object_foreach(ec, k, v)
    {
        if (strcasecmp(k, key) == 0) {
            return v;
        }
    }
    return NULL;
}

/* Every pair of the constraint is in the request's context; with `exact`, nothing else is. */
static bool pairs_hold(json_t *pairs, json_t *ec, bool exact)
{
    const char *k;
    json_t *v;
    json_object_foreach(pairs, k, v)
    {
        if (!json_equal(v, context_value(ec, k))) {
            return false;
        }
    }
    return !exact || json_object_size(pairs) == json_object_size(ec);
}

/* KMS API reference, GrantConstraints: EncryptionContextEquals must match the request's context
 * exactly; every pair of EncryptionContextSubset must be in it. */
static bool constraints_hold(const char *constraints, json_t *ec)
{
    if (constraints == NULL || constraints[0] == '\0') {
        return true;
    }
    json_t *c = json_loads(constraints, 0, NULL);
    json_t *equals = json_object_get(c, "EncryptionContextEquals");
    json_t *subset = json_object_get(c, "EncryptionContextSubset");
    bool ok = c != NULL && (equals == NULL || pairs_hold(equals, ec, true)) &&
              (subset == NULL || pairs_hold(subset, ec, false));
    json_decref(c);
    return ok;
}

typedef struct grant_check {
    kms_request *rq;
    const char *op;
    json_t *ec;
    bool allowed;
} grant_check;

static int grant_check_cb(void *arg, const kms_grant_record *g)
{
    grant_check *gc = arg;
    if (!gc->allowed && grant_has_op(g->operations, gc->op) &&
        (!constraints_apply(gc->op) || constraints_hold(g->constraints, gc->ec))) {
        gc->allowed = true;
        free(gc->rq->grant_ops);
        free(gc->rq->grant_constraints);
        gc->rq->grant_ops = strdup(g->operations);
        gc->rq->grant_constraints = strdup(g->constraints ? g->constraints : "");
        KMS_ENSURE(gc->rq->grant_ops != NULL && gc->rq->grant_constraints != NULL, KMS_ERR_INTERNAL,
                   "out of memory");
    }
    return 0;
}

/* The unique id a grant names the caller by: a user's "AIDA...", or the role id of a session
 * ("AROA...:SESSION" up to the colon). false when it has none. */
static bool unique_id_of(const kms_identity *id, char uid[160])
{
    snprintf(uid, 160, "%.*s", (int)strcspn(id->principal_id, ":"), id->principal_id);
    return kms_policy_is_unique_id(uid);
}

int kms_ops_grants_allow(kms_request *rq, const char *action, const kms_key_record *rec)
{
    const kms_identity *id = &rq->who->id;
    if (strncmp(action, "kms:", 4) != 0) {
        return 0;
    }
    grant_check gc = {rq, action + 4, NULL, false};
    KMS_GUARD(request_context(rq, action, &gc.ec));
    /* The grantee is the caller's ARN, or the role of an assumed-role session. */
    int r = kms_store_grant_find(rq->client->store, rec->key_id, id->arn, grant_check_cb, &gc);
    if (r == 0 && !gc.allowed && id->role_arn[0] != '\0') {
        r = kms_store_grant_find(rq->client->store, rec->key_id, id->role_arn, grant_check_cb, &gc);
    }
    /* A grant whose grantee was deleted names its unique id (ops_unbind.h): it still applies to
     * that very principal (the user's id, or the role id of a session), never to a new one. */
    char uid[sizeof id->principal_id];
    if (r == 0 && !gc.allowed && unique_id_of(id, uid)) {
        r = kms_store_grant_find(rq->client->store, rec->key_id, uid, grant_check_cb, &gc);
    }
    json_decref(gc.ec);
    return r != 0 ? -1 : gc.allowed ? 1 : 0;
}

int kms_ops_grants_tokens_check(json_t *req)
{
    json_t *tokens = json_object_get(req, "GrantTokens");
    size_t i;
    json_t *t;
    KMS_ENSURE(tokens == NULL || (json_is_array(tokens) && json_array_size(tokens) <= 10),
               KMS_ERR_VALIDATION, "GrantTokens must be a list of at most 10 grant tokens");
    json_array_foreach(tokens, i, t)
    {
        const char *s = json_string_value(t);
        uint8_t *raw = NULL;
        size_t n = 0;
        bool ok = s != NULL && kms_base64_decode(s, "GrantTokens", false, &raw, &n) == 0 &&
                  n == GRANT_TOKEN_BYTES;
        free(raw);
        KMS_ENSURE(ok, KMS_ERR_INVALID_GRANT_TOKEN, "GrantTokens[%zu] is not a valid grant token",
                   i);
    }
    return 0;
}

/* ---- CreateGrant ---------------------------------------------------------------------------- */

static int read_operations(json_t *req, char **out, bool *all_take_context)
{
    json_t *ops = json_object_get(req, "Operations");
    KMS_ENSURE(json_is_array(ops) && json_array_size(ops) > 0, KMS_ERR_VALIDATION,
               "Operations is required: a list of the operations the grant allows, e.g. "
               "[\"Decrypt\", \"Encrypt\"]");
    kms_buf b;
    kms_buf_init(&b, false);
    size_t i;
    json_t *v;
    *all_take_context = true;
    json_array_foreach(ops, i, v)
    {
        const char *op = json_string_value(v);
        bool known = false;
        for (size_t j = 0; op != NULL && j < sizeof grant_operations / sizeof grant_operations[0];
             j++) {
            known = known || strcmp(op, grant_operations[j]) == 0;
        }
        if (!known) {
            kms_buf_clean_up(&b);
            return kms_raise(KMS_ERR_VALIDATION,
                             "1 validation error detected: Value at 'operations' failed to "
                             "satisfy constraint: Member must satisfy enum value set: [Decrypt, "
                             "Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, "
                             "ReEncryptFrom, ReEncryptTo, Sign, Verify, GetPublicKey, "
                             "CreateGrant, RetireGrant, DescribeKey, GenerateDataKeyPair, "
                             "GenerateDataKeyPairWithoutPlaintext, GenerateMac, VerifyMac, "
                             "DeriveSharedSecret]");
        }
        *all_take_context = *all_take_context && takes_context(op);
        if ((i > 0 && kms_buf_append(&b, (const uint8_t *)",", 1) != 0) ||
            kms_buf_append(&b, (const uint8_t *)op, strlen(op)) != 0) {
            kms_buf_clean_up(&b);
            return -1;
        }
    }
    if (kms_buf_append(&b, (const uint8_t *)"", 1) != 0) {
        kms_buf_clean_up(&b);
        return -1;
    }
    size_t n;
    *out = (char *)kms_buf_detach(&b, &n);
    return 0;
}

static int read_constraints(json_t *req, bool ops_take_context, char **out)
{
    json_t *c = json_object_get(req, "Constraints");
    *out = NULL;
    if (c == NULL) {
        return 0;
    }
    KMS_ENSURE(json_is_object(c), KMS_ERR_VALIDATION, "Constraints must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(c, k, v)
    {
        KMS_ENSURE(strcmp(k, "EncryptionContextSubset") == 0 ||
                       strcmp(k, "EncryptionContextEquals") == 0,
                   KMS_ERR_VALIDATION,
                   "Constraints takes EncryptionContextSubset or EncryptionContextEquals, not "
                   "'%s'",
                   k);
        KMS_ENSURE(json_is_object(v) && json_object_size(v) <= 8, KMS_ERR_VALIDATION,
                   "Constraints.%s must be a map of at most 8 pairs", k);
        const char *ek;
        json_t *ev;
        json_object_foreach(v, ek, ev)
        {
            KMS_ENSURE(json_is_string(ev) && json_string_length(ev) <= 384, KMS_ERR_VALIDATION,
                       "Constraints.%s.%s must be a string of at most 384 characters", k, ek);
        }
    }
    KMS_ENSURE(ops_take_context, KMS_ERR_VALIDATION,
               "Grant constraints are only supported for operations that take an encryption "
               "context; remove Constraints or the operations without one");
    *out = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    KMS_ENSURE(*out != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

/* GranteePrincipal / RetiringPrincipal: an IAM ARN, an account id, or a service principal.
 * KMS API Reference, CreateGrant: both members follow the pattern ^[\w+=,.@:/-]+$, so a wildcard
 * is refused (ValidationException) rather than stored as a principal that can never match. */
static int read_principal(json_t *req, const char *member, bool required, const char **out)
{
    KMS_GUARD(kms_request_string(req, member, required, 1, 256, out));
    KMS_ENSURE(*out == NULL || strpbrk(*out, "*?") == NULL, KMS_ERR_VALIDATION,
               "%s '%s' may not contain wildcards (* or ?): a grant names one principal, by its "
               "exact ARN (arn:aws:iam::111122223333:user/alice); to allow many principals, "
               "use a key policy",
               member, *out);
    char account[13];
    KMS_ENSURE(*out == NULL || kms_policy_arn_account(*out, account) == 0 ||
                   strstr(*out, ".amazonaws.com") != NULL,
               KMS_ERR_VALIDATION,
               "%s '%s' is not a valid principal: give an IAM ARN "
               "(arn:aws:iam::111122223333:user/alice, ...:role/NAME, ...:root) or a service "
               "principal",
               member, *out);
    return 0;
}

/* KMS Developer Guide, "Granting CreateGrant permission": a grantee that creates grants
 * through a grant may give only operations of that grant, with constraints at least as strict:
 * its EncryptionContextEquals exactly, or every pair of its EncryptionContextSubset. */
static int within_parent_grant(const kms_request *rq, const char *ops, const char *constraints)
{
    if (rq->grant_ops == NULL) {
        return 0; /* a policy allowed CreateGrant */
    }
    char op[64];
    for (const char *p = ops; next_op(&p, op);) {
        KMS_ENSURE(grant_has_op(rq->grant_ops, op), KMS_ERR_ACCESS_DENIED,
                   "the grant that allows you CreateGrant does not allow %s, so neither may the "
                   "grants you create",
                   op);
    }
    if (rq->grant_constraints[0] == '\0') {
        return 0;
    }
    json_t *parent = json_loads(rq->grant_constraints, 0, NULL);
    json_t *child = constraints ? json_loads(constraints, 0, NULL) : NULL;
    json_t *p_eq = json_object_get(parent, "EncryptionContextEquals");
    json_t *p_sub = json_object_get(parent, "EncryptionContextSubset");
    json_t *c_eq = json_object_get(child, "EncryptionContextEquals");
    json_t *c_sub = json_object_get(child, "EncryptionContextSubset");
    bool ok = parent != NULL && child != NULL;
    if (ok && p_eq != NULL) {
        ok = c_eq != NULL && json_equal(p_eq, c_eq) && c_sub == NULL;
    }
    if (ok && p_sub != NULL) {
        json_t *c = c_eq != NULL ? c_eq : c_sub;
        ok = c != NULL && pairs_hold(p_sub, c, false);
    }
    json_decref(parent);
    json_decref(child);
    KMS_ENSURE(ok, KMS_ERR_ACCESS_DENIED,
               "the grant that allows you CreateGrant has encryption context constraints; the "
               "grants you create must have constraints at least as strict");
    return 0;
}

int kms_ops_grants_create(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    const char *grantee = NULL, *retiring = NULL, *name = NULL;
    kms_key_record rec;
    kms_grant_record g;
    char arn[KMS_ARN_MAX];
    uint8_t token[GRANT_TOKEN_BYTES];
    uint8_t id_bytes[32];
    char *token_b64 = NULL;
    bool with_context = true;
    memset(&rec, 0, sizeof rec);
    memset(&g, 0, sizeof g);
    if (read_principal(req, "GranteePrincipal", true, &grantee) != 0 ||
        read_principal(req, "RetiringPrincipal", false, &retiring) != 0 ||
        kms_request_string(req, "Name", false, 1, 256, &name) != 0 ||
        read_operations(req, &g.operations, &with_context) != 0 ||
        read_constraints(req, with_context, &g.constraints) != 0 ||
        kms_ops_keys_resolve(rq, req, "KeyId", "kms:CreateGrant", &rec, arn) != 0 ||
        within_parent_grant(rq, g.operations, g.constraints) != 0 || kms_gate_dry_run(rq) != 0) {
        goto out;
    }
    if (kms_keystore_random(&rq->client->keystore, token, sizeof token) != 0) {
        goto out;
    }
    /* The grant id: SHA-256 of the token, hex (64 characters, as AWS's). The token itself is
     * stored only as the hash of the id's source, so the table never holds a usable token. */
    SHA256(token, sizeof token, id_bytes);
    sodium_bin2hex(g.grant_id, sizeof g.grant_id, id_bytes, sizeof id_bytes);
    SHA256(id_bytes, sizeof id_bytes, g.token_hash);
    g.has_token_hash = true;
    snprintf(g.key_id, sizeof g.key_id, "%s", rec.key_id);
    snprintf(g.issuing_account, sizeof g.issuing_account, "%s", rq->who->id.account_id);
    g.name = (char *)(name ? name : "");
    g.grantee_principal = (char *)grantee;
    g.retiring_principal = (char *)(retiring ? retiring : "");
    g.creation_date = kms_now();
    token_b64 = kms_base64_encode(token, sizeof token);
    if (token_b64 == NULL || kms_store_grant_insert(rq->client->store, &g) != 0) {
        goto out;
    }
    *resp = json_pack("{s:s, s:s}", "GrantToken", token_b64, "GrantId", g.grant_id);
    if (*resp == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    sodium_memzero(token, sizeof token);
    free(token_b64);
    free(g.operations);
    free(g.constraints);
    kms_key_record_clean_up(&rec);
    return r;
}

/* ---- ListGrants, ListRetirableGrants --------------------------------------------------------- */

typedef struct grant_walk {
    json_t *list;
    const kms_keystore *ks;
    const char *only_id;      /* GrantId filter */
    const char *only_grantee; /* GranteePrincipal filter */
} grant_walk;

static json_t *grant_json(const kms_keystore *ks, const kms_grant_record *g)
{
    char arn[KMS_ARN_MAX];
    char issuing[64];
    kms_keystore_key_arn(ks, g->key_id, arn);
    snprintf(issuing, sizeof issuing, "arn:aws:iam::%s:root", g->issuing_account);
    json_t *ops = json_array();
    char op[64];
    for (const char *p = g->operations; ops != NULL && next_op(&p, op);) {
        if (json_array_append_new(ops, json_string(op)) != 0) {
            json_decref(ops);
            ops = NULL; /* json_pack below fails on it */
        }
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:o}", "KeyId", arn, "GrantId",
                          g->grant_id, "Name", g->name ? g->name : "", "CreationDate",
                          (json_int_t)g->creation_date, "GranteePrincipal", g->grantee_principal,
                          "IssuingAccount", issuing, "Operations", ops);
    if (o != NULL && g->retiring_principal != NULL && g->retiring_principal[0] != '\0' &&
        json_object_set_new(o, "RetiringPrincipal", json_string(g->retiring_principal)) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (o != NULL && g->constraints != NULL && g->constraints[0] != '\0' &&
        json_object_set_new(o, "Constraints", json_loads(g->constraints, 0, NULL)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static int grant_walk_cb(void *arg, const kms_grant_record *g)
{
    grant_walk *w = arg;
    if ((w->only_id != NULL && strcmp(w->only_id, g->grant_id) != 0) ||
        (w->only_grantee != NULL && strcmp(w->only_grantee, g->grantee_principal) != 0)) {
        return 0;
    }
    json_t *o = grant_json(w->ks, g);
    KMS_ENSURE(o != NULL && json_array_append_new(w->list, o) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

static int page_args(json_t *req, long long *limit, const char **marker)
{
    KMS_GUARD(kms_request_int(req, "Limit", false, 1, 100, 50, limit));
    KMS_GUARD(kms_request_string(req, "Marker", false, 1, 1024, marker));
    KMS_ENSURE(*marker == NULL || strlen(*marker) == 64, KMS_ERR_INVALID_MARKER,
               "the Marker '%s' was not returned by a grant listing", *marker);
    return 0;
}

int kms_ops_grants_list(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    long long limit = 50;
    const char *marker = NULL;
    bool truncated = false;
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    grant_walk w = {NULL, &rq->client->keystore, NULL, NULL};
    memset(&rec, 0, sizeof rec);
    if (page_args(req, &limit, &marker) != 0 ||
        kms_request_string(req, "GrantId", false, 1, 128, &w.only_id) != 0 ||
        kms_request_string(req, "GranteePrincipal", false, 1, 256, &w.only_grantee) != 0 ||
        kms_ops_keys_resolve(rq, req, "KeyId", "kms:ListGrants", &rec, arn) != 0) {
        goto out;
    }
    w.list = json_array();
    if (w.list == NULL || kms_store_grant_list(rq->client->store, rec.key_id, marker, (size_t)limit,
                                               grant_walk_cb, &w, &truncated) != 0) {
        goto out;
    }
    r = kms_ops_keys_respond_page(resp, "Grants", w.list, truncated, "GrantId");
    w.list = NULL;
out:
    json_decref(w.list);
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_grants_list_retirable(kms_request *rq, json_t *req, json_t **resp)
{
    long long limit = 50;
    const char *marker = NULL, *retiring = NULL;
    bool truncated = false;
    grant_walk w = {NULL, &rq->client->keystore, NULL, NULL};
    KMS_GUARD(page_args(req, &limit, &marker));
    KMS_GUARD(read_principal(req, "RetiringPrincipal", true, &retiring));
    /* Service Authorization Reference: ListRetirableGrants is allowed by IAM policies only. */
    KMS_GUARD(kms_gate_authorize(rq, "kms:ListRetirableGrants", "*"));
    w.list = json_array();
    KMS_ENSURE(w.list != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (strcmp(rq->who->id.account_id, rq->client->cfg.account_id) != 0) {
        /* The grants of the caller's account, and this home keeps no other account's keys. */
        return kms_ops_keys_respond_page(resp, "Grants", w.list, false, "GrantId");
    }
    if (kms_store_grant_list_retirable(rq->client->store, retiring, marker, (size_t)limit,
                                       grant_walk_cb, &w, &truncated) != 0) {
        json_decref(w.list);
        return -1;
    }
    return kms_ops_keys_respond_page(resp, "Grants", w.list, truncated, "GrantId");
}

/* ---- RetireGrant, RevokeGrant ------------------------------------------------------------- */

/* The grant a RetireGrant names: by GrantToken, or by KeyId + GrantId. */
static int retire_target(kms_request *rq, json_t *req, kms_grant_record *g)
{
    const char *token = NULL, *grant_id = NULL, *key_ref = NULL;
    KMS_GUARD(kms_request_string(req, "GrantToken", false, 1, 8192, &token));
    KMS_GUARD(kms_request_string(req, "GrantId", false, 1, 128, &grant_id));
    KMS_GUARD(kms_request_string(req, "KeyId", false, 1, 2048, &key_ref));
    if (token != NULL) {
        uint8_t *raw = NULL;
        size_t n = 0;
        uint8_t id_bytes[32];
        char id[80];
        bool ok =
            kms_base64_decode(token, "GrantToken", false, &raw, &n) == 0 && n == GRANT_TOKEN_BYTES;
        if (ok) {
            SHA256(raw, n, id_bytes);
            sodium_bin2hex(id, sizeof id, id_bytes, sizeof id_bytes);
        }
        if (raw != NULL) {
            sodium_memzero(raw, n);
        }
        free(raw);
        KMS_ENSURE(ok, KMS_ERR_INVALID_GRANT_TOKEN, "the GrantToken is not a valid grant token");
        KMS_ENSURE(kms_store_grant_get(rq->client->store, id, g) == 0, KMS_ERR_INVALID_GRANT_TOKEN,
                   "the GrantToken names no grant");
        return 0;
    }
    KMS_ENSURE(grant_id != NULL && key_ref != NULL, KMS_ERR_VALIDATION,
               "RetireGrant needs GrantToken, or KeyId and GrantId");
    kms_key_record rec;
    KMS_GUARD(kms_keystore_resolve(&rq->client->keystore, key_ref, false, &rec));
    int r = kms_store_grant_get(rq->client->store, grant_id, g);
    bool same_key = r == 0 && strcmp(g->key_id, rec.key_id) == 0;
    kms_key_record_clean_up(&rec);
    KMS_ENSURE(same_key, KMS_ERR_INVALID_GRANT_ID, "the key has no grant with GrantId %s",
               grant_id);
    return 0;
}

int kms_ops_grants_retire(kms_request *rq, json_t *req, json_t **resp)
{
    (void)resp;
    kms_grant_record g;
    memset(&g, 0, sizeof g);
    if (retire_target(rq, req, &g) != 0) {
        kms_grant_record_clean_up(&g);
        return -1;
    }
    /* KMS Developer Guide, "Retiring and revoking grants": RetireGrant is not controlled by
     * policies. The retiring principal may retire, the grantee when the grant allows
     * RetireGrant, and the account that created the grant (its root). */
    const kms_identity *id = &rq->who->id;
    char issuing_root[64];
    snprintf(issuing_root, sizeof issuing_root, "arn:aws:iam::%s:root", g.issuing_account);
    char uid[sizeof id->principal_id];
    bool has_uid = unique_id_of(id, uid);
    bool is_retiring = strcmp(g.retiring_principal, id->arn) == 0 ||
                       (id->role_arn[0] && strcmp(g.retiring_principal, id->role_arn) == 0) ||
                       (has_uid && strcmp(g.retiring_principal, uid) == 0);
    bool is_grantee = strcmp(g.grantee_principal, id->arn) == 0 ||
                      (id->role_arn[0] && strcmp(g.grantee_principal, id->role_arn) == 0) ||
                      (has_uid && strcmp(g.grantee_principal, uid) == 0);
    bool may = is_retiring || (is_grantee && grant_has_op(g.operations, "RetireGrant")) ||
               strcmp(id->arn, issuing_root) == 0;
    int r = -1;
    rq->action = "kms:RetireGrant";
    if (!may) {
        kms_raise(KMS_ERR_ACCESS_DENIED,
                  "User: %s is not authorized to perform: kms:RetireGrant on grant %s: only its "
                  "retiring principal, its grantee (with RetireGrant) or account %s may",
                  id->arn, g.grant_id, g.issuing_account);
    } else {
        rq->authorized = true;
        r = kms_gate_dry_run(rq);
        if (r == 0) {
            r = kms_store_grant_delete(rq->client->store, g.grant_id);
        }
    }
    kms_grant_record_clean_up(&g);
    return r;
}

int kms_ops_grants_revoke(kms_request *rq, json_t *req, json_t **resp)
{
    (void)resp;
    const char *grant_id = NULL;
    kms_key_record rec;
    kms_grant_record g;
    char arn[KMS_ARN_MAX];
    memset(&g, 0, sizeof g);
    KMS_GUARD(kms_request_string(req, "GrantId", true, 1, 128, &grant_id));
    KMS_GUARD(kms_ops_keys_resolve(rq, req, "KeyId", "kms:RevokeGrant", &rec, arn));
    int r = kms_store_grant_get(rq->client->store, grant_id, &g);
    if (r == 0 && strcmp(g.key_id, rec.key_id) != 0) {
        r = kms_raise(KMS_ERR_INVALID_GRANT_ID, "the key %s has no grant with GrantId %s", arn,
                      grant_id);
    } else if (r != 0) {
        r = kms_raise(KMS_ERR_INVALID_GRANT_ID, "the key %s has no grant with GrantId %s", arn,
                      grant_id);
    } else {
        r = kms_gate_dry_run(rq);
        if (r == 0) {
            r = kms_store_grant_delete(rq->client->store, grant_id);
        }
    }
    kms_grant_record_clean_up(&g);
    kms_key_record_clean_up(&rec);
    return r;
}
