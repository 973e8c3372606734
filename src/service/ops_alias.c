/* Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases. */
#include <stdio.h>
#include <string.h>

#include "service/ops.h"
#include "util/util.h"

/* AWS KMS CreateAlias: ^alias/[a-zA-Z0-9/_-]+$, 1-256 characters; alias/aws/ is reserved. */
static int check_alias_name(const char *name)
{
    KMS_ENSURE(strncmp(name, "alias/", 6) == 0 && name[6] != '\0', KMS_ERR_INVALID_ALIAS_NAME,
               "Alias must start with the prefix \"alias/\" and name something: '%s'", name);
    for (const char *p = name + 6; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '/' || *p == '_' || *p == '-';
        KMS_ENSURE(ok, KMS_ERR_VALIDATION,
                   "1 validation error detected: Value '%s' at 'aliasName' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: "
                   "^[a-zA-Z0-9:/_-]+$",
                   name);
    }
    KMS_ENSURE(strncmp(name, "alias/aws/", 10) != 0, KMS_ERR_INVALID_ALIAS_NAME,
               "Alias %s cannot be created: the alias/aws/ prefix is reserved for AWS managed "
               "keys",
               name);
    return 0;
}

/* Reads AliasName and TargetKeyId (a key id or key ARN, not an alias), authorises `action` on
 * the alias and on the key, and refuses keys pending deletion. */
static int alias_target(kms_request *rq, json_t *req, const char *action, const char **name,
                        kms_key_record *rec)
{
    const char *target = NULL;
    char arn[KMS_ARN_MAX];
    KMS_GUARD(kms_request_string(req, "AliasName", true, 1, 256, name));
    KMS_GUARD(check_alias_name(*name));
    KMS_GUARD(kms_request_string(req, "TargetKeyId", true, 1, 2048, &target));
    KMS_GUARD(kms_keystore_resolve(&rq->client->keystore, target, false, rec));
    kms_keystore_alias_arn(&rq->client->keystore, *name, arn);
    KMS_GUARD(kms_gate_authorize(rq, action, arn));
    kms_keystore_key_arn(&rq->client->keystore, rec->key_id, arn);
    KMS_GUARD(kms_gate_authorize_key(rq, action, rec, arn));
    KMS_ENSURE(strcmp(rec->key_state, "PendingDeletion") != 0, KMS_ERR_INVALID_STATE,
               "%s is pending deletion.", arn);
    return 0;
}

int kms_ops_alias_create(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    kms_key_record rec;
    memset(&rec, 0, sizeof rec);
    int r = alias_target(rq, req, "kms:CreateAlias", &name, &rec);
    if (r == 0) {
        r = kms_keystore_alias_create(&rq->client->keystore, name, rec.key_id, kms_now());
        if (r != 0 && kms_last_error() == KMS_ERR_ALREADY_EXISTS) {
            char arn[KMS_ARN_MAX];
            kms_keystore_alias_arn(&rq->client->keystore, name, arn);
            r = kms_raise(KMS_ERR_ALREADY_EXISTS,
                          "An alias with the name %s already exists; move it with "
                          "`kmsctl update-alias`",
                          arn);
        }
    }
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_alias_update(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    kms_key_record rec, old;
    kms_alias_record alias;
    memset(&rec, 0, sizeof rec);
    memset(&old, 0, sizeof old);
    int r = alias_target(rq, req, "kms:UpdateAlias", &name, &rec);
    if (r == 0) {
        r = kms_keystore_alias_get(&rq->client->keystore, name, &alias);
    }
    if (r == 0) {
        r = kms_keystore_key_get(&rq->client->keystore, alias.key_id, &old);
    }
    if (r == 0) {
        /* KMS API reference, UpdateAlias: kms:UpdateAlias on the alias, the current key and
         * the new key. */
        char old_arn[KMS_ARN_MAX];
        kms_keystore_key_arn(&rq->client->keystore, old.key_id, old_arn);
        r = kms_gate_authorize_key(rq, "kms:UpdateAlias", &old, old_arn);
    }
    /* AWS KMS: the new key must have the same key type and key usage as the current one. */
    if (r == 0 &&
        (strcmp(old.key_spec, rec.key_spec) != 0 || strcmp(old.key_usage, rec.key_usage) != 0)) {
        r = kms_raise(KMS_ERR_VALIDATION,
                      "%s points at a %s key for %s; the new target is a %s key for %s. An alias "
                      "can only move to a key of the same key spec and key usage.",
                      name, old.key_spec, old.key_usage, rec.key_spec, rec.key_usage);
    }
    if (r == 0) {
        r = kms_keystore_alias_update(&rq->client->keystore, name, rec.key_id, kms_now());
    }
    kms_key_record_clean_up(&rec);
    kms_key_record_clean_up(&old);
    return r;
}

int kms_ops_alias_delete(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    char arn[KMS_ARN_MAX];
    kms_alias_record alias;
    KMS_GUARD(kms_request_string(req, "AliasName", true, 1, 256, &name));
    KMS_ENSURE(strncmp(name, "alias/", 6) == 0, KMS_ERR_INVALID_ALIAS_NAME,
               "Alias must start with the prefix \"alias/\": '%s'", name);
    kms_keystore_alias_arn(&rq->client->keystore, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, "kms:DeleteAlias", arn));
    if (kms_keystore_alias_get(&rq->client->keystore, name, &alias) != 0) {
        KMS_ENSURE(kms_last_error() != KMS_ERR_NOT_FOUND, KMS_ERR_NOT_FOUND,
                   "Alias %s is not found.", arn);
        return -1;
    }
    kms_key_record rec;
    KMS_GUARD(kms_keystore_key_get(&rq->client->keystore, alias.key_id, &rec));
    kms_keystore_key_arn(&rq->client->keystore, alias.key_id, arn);
    int r = kms_gate_authorize_key(rq, "kms:DeleteAlias", &rec, arn);
    kms_key_record_clean_up(&rec);
    KMS_GUARD(r);
    return kms_keystore_alias_delete(&rq->client->keystore, name);
}

typedef struct alias_walk {
    json_t *list;
    const kms_keystore *ks;
} alias_walk;

static int list_alias_cb(void *arg, const kms_alias_record *a)
{
    alias_walk *w = arg;
    char arn[KMS_ARN_MAX];
    kms_keystore_alias_arn(w->ks, a->alias_name, arn);
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I}", "AliasName", a->alias_name, "AliasArn", arn,
                          "TargetKeyId", a->key_id, "CreationDate", (json_int_t)a->creation_date,
                          "LastUpdatedDate", (json_int_t)a->last_updated_date);
    KMS_ENSURE(o != NULL && json_array_append_new(w->list, o) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

int kms_ops_alias_list(kms_request *rq, json_t *req, json_t **resp)
{
    long long limit = 100;
    const char *marker = NULL;
    const char *key_ref = NULL;
    bool truncated = false;
    char key_id[KMS_UUID_STR_LEN + 1] = "";
    kms_key_record rec;
    memset(&rec, 0, sizeof rec);
    KMS_GUARD(kms_request_int(req, "Limit", false, 1, 100, 100, &limit));
    KMS_GUARD(kms_request_string(req, "Marker", false, 1, 320, &marker));
    KMS_GUARD(kms_request_string(req, "KeyId", false, 1, 2048, &key_ref));
    KMS_ENSURE(marker == NULL || strncmp(marker, "alias/", 6) == 0, KMS_ERR_INVALID_MARKER,
               "the Marker '%s' was not returned by ListAliases", marker);
    if (key_ref != NULL) {
        char arn[KMS_ARN_MAX];
        KMS_GUARD(kms_keystore_resolve(&rq->client->keystore, key_ref, false, &rec));
        kms_keystore_key_arn(&rq->client->keystore, rec.key_id, arn);
        snprintf(key_id, sizeof key_id, "%s", rec.key_id);
        int r = kms_gate_authorize_key(rq, "kms:ListAliases", &rec, arn);
        kms_key_record_clean_up(&rec);
        KMS_GUARD(r);
    } else {
        KMS_GUARD(kms_gate_authorize(rq, "kms:ListAliases", "*"));
    }
    alias_walk w = {json_array(), &rq->client->keystore};
    if (w.list == NULL ||
        kms_keystore_alias_list(&rq->client->keystore, key_ref ? key_id : NULL, marker,
                                (size_t)limit, list_alias_cb, &w, &truncated) != 0) {
        json_decref(w.list);
        return -1;
    }
    return kms_ops_keys_respond_page(resp, "Aliases", w.list, truncated, "AliasName");
}
