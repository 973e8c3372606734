/* kmsctl advisor, the keys (AWS Config rules and Trusted Advisor's KMS checks): symmetric keys
 * without automatic rotation, key policies open to everyone, grants to principals that no
 * longer exist, deletions that will break someone, disabled keys still called. Read from the
 * metadata store and the trail's index; nothing is changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/advisor.h"
#include "service/authz.h"
#include "util/util.h"

#define DAY 86400
/* Events looked at per key (newest first) for its recent use. */
#define EVENTS_MAX 1000

typedef struct key_ctx {
    kms_advisor *a;
    const kms_key_record *rec;
    char arn[160];
    size_t grants;  /* of the key */
    size_t aliases; /* of the key */
    char alias_names[512];
    bool found; /* an event walk found what it looked for */
} key_ctx;

/* ---- Key policies ---------------------------------------------------------------------------- */

/* "*", or {"AWS": "*"} / {"AWS": [..., "*", ...]}: everyone. */
static bool principal_everyone(json_t *p)
{
    if (json_is_string(p)) {
        return strcmp(json_string_value(p), "*") == 0;
    }
    json_t *aws = json_object_get(p, "AWS");
    if (json_is_string(aws)) {
        return strcmp(json_string_value(aws), "*") == 0;
    }
    size_t i;
    json_t *v;
    json_array_foreach(aws, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), "*") == 0) {
            return true;
        }
    }
    return false;
}

/* An Allow statement for everyone with no Condition. */
static bool statement_public(json_t *s)
{
    json_t *cond = json_object_get(s, "Condition");
    return json_is_string(json_object_get(s, "Effect")) &&
           strcmp(json_string_value(json_object_get(s, "Effect")), "Allow") == 0 &&
           principal_everyone(json_object_get(s, "Principal")) &&
           (cond == NULL || (json_is_object(cond) && json_object_size(cond) == 0));
}

static int policy_check(key_ctx *k)
{
    int r = -1;
    char *doc = NULL, *fallback = NULL, *compact = NULL;
    int64_t version = 0;
    json_t *policy = NULL, *def = NULL;
    bool open = false;
    if (kms_store_key_policy_get(k->a->client->store, k->rec->key_id, &doc, &version) != 0) {
        goto out;
    }
    policy = json_loads(doc, 0, NULL);
    json_t *st = json_object_get(policy, "Statement");
    if (json_is_object(st)) {
        open = statement_public(st);
    }
    size_t i;
    json_t *s;
    json_array_foreach(st, i, s)
    {
        open = open || statement_public(s);
    }
    if (!open) {
        r = 0;
        goto out;
    }
    /* The fix puts back the default key policy (the account decides through IAM). */
    if ((fallback = kms_authz_default_key_policy(k->rec->account_id)) == NULL ||
        (def = json_loads(fallback, 0, NULL)) == NULL ||
        (compact = json_dumps(def, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = kms_advisor_add(k->a, "Key.PolicyPublic", KMS_ADVISOR_CRITICAL, k->arn,
                        "The key policy allows everyone (\"Principal\": \"*\" or {\"AWS\": "
                        "\"*\"}) without a Condition: any caller with credentials of any account "
                        "gets what the statement allows. Narrow the principal, add a condition, "
                        "or put back the default key policy (the fix).",
                        "kmsctl put-key-policy --key-id %s --policy-name default --policy '%s'",
                        k->rec->key_id, compact);
out:
    free(doc);
    free(fallback);
    free(compact);
    json_decref(policy);
    json_decref(def);
    return r;
}

/* ---- Grants ---------------------------------------------------------------------------------- */

/* Whether an IAM user or role ARN of an account of this home names nobody (deleted). A deleted
 * principal's ARN was replaced by its unique id when it was deleted (ops_unbind.c): AIDA...
 * (user) or AROA... (role). Principals of other accounts and services are not known here. */
static int principal_gone(kms_advisor *a, const char *p, bool *gone)
{
    char acct[13];
    json_t *o = NULL;
    *gone = false;
    if (strncmp(p, "AIDA", 4) == 0 || strncmp(p, "AROA", 4) == 0) {
        *gone = strchr(p, ':') == NULL;
        return 0;
    }
    if (strncmp(p, "arn:aws:iam::", 13) != 0 || strlen(p) < 13 + 12 + 1 || p[25] != ':') {
        return 0;
    }
    memcpy(acct, p + 13, 12);
    acct[12] = '\0';
    const char *res = p + 26;
    const char *name = strrchr(res, '/');
    bool user = strncmp(res, "user/", 5) == 0, role = strncmp(res, "role/", 5) == 0;
    if ((!user && !role) || name == NULL || name[1] == '\0' || strchr(name, '*') != NULL) {
        return 0;
    }
    int r = user ? kms_iam_user_get(a->client->iam, acct, name + 1, &o)
                 : kms_iam_role_get(a->client->iam, acct, name + 1, &o);
    json_decref(o);
    if (r != 0) {
        /* NoSuchEntity: of this home's account, nobody; another account's: not ours to say. */
        KMS_GUARD(kms_last_error() == KMS_ERR_NO_SUCH_ENTITY ? 0 : -1);
        *gone = strcmp(acct, a->client->cfg.account_id) == 0;
    }
    return 0;
}

static int grant_check(void *arg, const kms_grant_record *g)
{
    key_ctx *k = arg;
    bool gone = false;
    k->grants++;
    KMS_GUARD(principal_gone(k->a, g->grantee_principal, &gone));
    if (!gone) {
        return 0;
    }
    return kms_advisor_add(k->a, "Key.GrantToDeletedPrincipal", KMS_ADVISOR_WARNING, k->arn,
                           "A grant of the key names a principal that no longer exists. It "
                           "gives nothing today, but it is access nobody reviews; revoke it.",
                           "kmsctl revoke-grant --key-id %s --grant-id %s", k->rec->key_id,
                           g->grant_id);
}

static int alias_count(void *arg, const kms_alias_record *alias)
{
    key_ctx *k = arg;
    size_t n = strlen(k->alias_names);
    snprintf(k->alias_names + n, sizeof k->alias_names - n, "%s%s", n > 0 ? ", " : "",
             alias->alias_name);
    k->aliases++;
    return 0;
}

/* ---- Use of keys that should not be used ----------------------------------------------------- */

static bool crypto_event(const char *name)
{
    static const char *const ops[] = {"Encrypt",
                                      "Decrypt",
                                      "ReEncrypt",
                                      "GenerateDataKey",
                                      "GenerateDataKeyWithoutPlaintext",
                                      "GenerateDataKeyPair",
                                      "GenerateDataKeyPairWithoutPlaintext",
                                      "Sign",
                                      "Verify",
                                      "GenerateMac",
                                      "VerifyMac",
                                      "GetPublicKey"};
    for (size_t i = 0; name != NULL && i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(name, ops[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int used_event(void *arg, json_t *event, json_t *record)
{
    (void)record;
    key_ctx *k = arg;
    k->found = crypto_event(json_string_value(json_object_get(event, "EventName")));
    return k->found ? 1 : 0;
}

/* Newest first, back to the call that disabled the key: a call refused as disabled. */
static int disabled_event(void *arg, json_t *event, json_t *record)
{
    key_ctx *k = arg;
    const char *name = json_string_value(json_object_get(event, "EventName"));
    const char *error = json_string_value(json_object_get(record, "errorCode"));
    if (error == NULL && name != NULL &&
        (strcmp(name, "DisableKey") == 0 || strcmp(name, "CancelKeyDeletion") == 0)) {
        return 1;
    }
    k->found = error != NULL && strcmp(error, "DisabledException") == 0;
    return k->found ? 1 : 0;
}

static int deletion_check(key_ctx *k)
{
    char why[1024];
    k->found = false;
    KMS_GUARD(kms_advisor_events(k->a, "ResourceName", k->rec->key_id,
                                 k->a->now - KMS_ADVISOR_RECENT_DAYS * DAY, EVENTS_MAX, used_event,
                                 k));
    if (!k->found && k->aliases == 0 && k->grants == 0) {
        return 0;
    }
    snprintf(why, sizeof why,
             "The key is scheduled for deletion, yet it%s%s%s%s%s. Deleting it will break "
             "whoever still relies on it, and its data can never be decrypted again; cancel the "
             "deletion (the fix), find its users, then schedule it again once nothing uses it.",
             k->found ? " was used in the last 30 days" : "",
             k->aliases > 0 ? (k->found ? "; has aliases (" : " has aliases (") : "",
             k->aliases > 0 ? k->alias_names : "", k->aliases > 0 ? ")" : "",
             k->grants > 0 ? (k->found || k->aliases > 0 ? "; has grants" : " has grants") : "");
    return kms_advisor_add(k->a, "Key.PendingDeletionInUse", KMS_ADVISOR_HIGH, k->arn, why,
                           "kmsctl cancel-key-deletion --key-id %s", k->rec->key_id);
}

static int disabled_check(key_ctx *k)
{
    k->found = false;
    KMS_GUARD(
        kms_advisor_events(k->a, "ResourceName", k->rec->key_id, 0, EVENTS_MAX, disabled_event, k));
    if (!k->found) {
        return 0;
    }
    return kms_advisor_add(
        k->a, "Key.DisabledInUse", KMS_ADVISOR_WARNING, k->arn,
        "The key is disabled, but something still calls it and fails with DisabledException "
        "(kmsctl lookup-events --lookup-attributes AttributeKey=ResourceName,AttributeValue=KEY "
        "shows who). If it is still needed, enable it (the fix); else change the callers.",
        "kmsctl enable-key --key-id %s", k->rec->key_id);
}

/* ---- Every key ------------------------------------------------------------------------------- */

static int key_check(kms_advisor *a, const char *key_id)
{
    int r = -1;
    kms_key_record rec;
    kms_key_rotation rot;
    key_ctx k;
    memset(&rec, 0, sizeof rec);
    memset(&k, 0, sizeof k);
    if (kms_store_key_get(a->client->store, key_id, &rec) != 0) {
        goto out;
    }
    k.a = a;
    k.rec = &rec;
    snprintf(k.arn, sizeof k.arn, "arn:aws:kms:%s:%s:key/%s", a->client->cfg.region, rec.account_id,
             rec.key_id);
    bool enabled = strcmp(rec.key_state, "Enabled") == 0;
    if (enabled && strcmp(rec.key_spec, "SYMMETRIC_DEFAULT") == 0) {
        if (kms_store_rotation_get(a->client->store, key_id, &rot) != 0) {
            goto out;
        }
        if (rot.period_days == 0 &&
            kms_advisor_add(a, "Key.RotationDisabled", KMS_ADVISOR_WARNING, k.arn,
                            "A symmetric key has no automatic rotation: all its data stays "
                            "under one key material for good, and a leak of it exposes "
                            "everything. Turn rotation on (yearly by default).",
                            "kmsctl enable-key-rotation --key-id %s", key_id) != 0) {
            goto out;
        }
    }
    if (policy_check(&k) != 0 ||
        kms_store_grant_list(a->client->store, key_id, NULL, 1000, grant_check, &k, NULL) != 0 ||
        kms_store_alias_list(a->client->store, key_id, NULL, 100, alias_count, &k, NULL) != 0) {
        goto out;
    }
    if (strcmp(rec.key_state, "PendingDeletion") == 0 && deletion_check(&k) != 0) {
        goto out;
    }
    if (strcmp(rec.key_state, "Disabled") == 0 && disabled_check(&k) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_key_record_clean_up(&rec);
    return r;
}

static int key_collect(void *arg, const char *key_id)
{
    json_t *ids = arg;
    KMS_ENSURE(json_array_append_new(ids, json_string(key_id)) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

int kms_advisor_keys(kms_advisor *a)
{
    int r = -1;
    json_t *ids = json_array();
    bool more = true;
    char marker[37] = "";
    KMS_ENSURE(ids != NULL, KMS_ERR_INTERNAL, "out of memory");
    while (more) {
        size_t from = json_array_size(ids);
        if (kms_store_key_list(a->client->store, marker[0] != '\0' ? marker : NULL, 100,
                               key_collect, ids, &more) != 0) {
            goto out;
        }
        if (json_array_size(ids) == from) {
            break;
        }
        snprintf(marker, sizeof marker, "%s",
                 json_string_value(json_array_get(ids, json_array_size(ids) - 1)));
    }
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        if (key_check(a, json_string_value(id)) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    json_decref(ids);
    return r;
}
