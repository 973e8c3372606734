/* Key lifecycle: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription, EnableKey,
 * DisableKey, ScheduleKeyDeletion, CancelKeyDeletion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/audit_trail.h"
#include "service/ops.h"
#include "service/ops_tags.h"
#include "service/ops_unbind.h"
#include "util/util.h"

#define DAY (24 * 60 * 60)

static json_t *string_array(const char *const *list, size_t max)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < max && list[i] != NULL; i++) {
        if (json_array_append_new(a, json_string(list[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

json_t *kms_ops_keys_metadata_json(const kms_keystore *ks, const kms_key_record *rec)
{
    char arn[KMS_ARN_MAX];
    kms_keystore_key_arn(ks, rec->key_id, arn);
    const kms_key_spec_info *spec = kms_key_spec_find(rec->key_spec);
    json_t *m = json_pack("{s:s, s:s, s:s, s:I, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}",
                          "AWSAccountId", rec->account_id, "KeyId", rec->key_id, "Arn", arn,
                          "CreationDate", (json_int_t)rec->creation_date, "Enabled",
                          strcmp(rec->key_state, "Enabled") == 0, "Description", rec->description,
                          "KeyUsage", rec->key_usage, "KeyState", rec->key_state, "Origin",
                          rec->origin, "KeyManager", "CUSTOMER", "CustomerMasterKeySpec",
                          rec->key_spec, "KeySpec", rec->key_spec, "MultiRegion", 0);
    if (m == NULL || spec == NULL) {
        json_decref(m);
        return NULL;
    }
    if (strcmp(rec->key_state, "PendingDeletion") == 0 &&
        (json_object_set_new(m, "DeletionDate", json_integer(rec->deletion_date)) != 0 ||
         json_object_set_new(m, "PendingDeletionWindowInDays",
                             json_integer(rec->pending_window_days)) != 0)) {
        goto fail;
    }
    /* AWS KMS API reference, KeyMetadata: CurrentKeyMaterialId, "present for symmetric
     * encryption keys with AWS_KMS origin" (audit_trail.c: how the id is made). */
    char material[65];
    if (strcmp(rec->key_spec, "SYMMETRIC_DEFAULT") == 0) {
        kms_audit_trail_material_id(arn, rec->current_version, material);
        if (json_object_set_new(m, "CurrentKeyMaterialId", json_string(material)) != 0) {
            goto fail;
        }
    }
    const char *member = NULL;
    json_t *algs = NULL;
    const char *mac[] = {spec->mac_algorithm, NULL};
    if (strcmp(rec->key_usage, "ENCRYPT_DECRYPT") == 0) {
        /* SYMMETRIC_DEFAULT, or RSAES_OAEP_SHA_1 and RSAES_OAEP_SHA_256 for RSA keys */
        member = "EncryptionAlgorithms";
        algs = string_array(spec->enc_algorithms,
                            sizeof spec->enc_algorithms / sizeof spec->enc_algorithms[0]);
    } else if (strcmp(rec->key_usage, "SIGN_VERIFY") == 0) {
        member = "SigningAlgorithms";
        algs = string_array(spec->sig_algorithms, 7);
    } else if (strcmp(rec->key_usage, "KEY_AGREEMENT") == 0) {
        static const char *const ecdh[] = {"ECDH", NULL};
        member = "KeyAgreementAlgorithms";
        algs = string_array(ecdh, 1);
    } else if (spec->mac_algorithm != NULL) {
        member = "MacAlgorithms";
        algs = string_array(mac, 1);
    }
    if (member != NULL && json_object_set_new(m, member, algs) != 0) {
        goto fail;
    }
    return m;
fail:
    /* A dropped member is an allocation failure: no metadata is given half made. */
    json_decref(m);
    return NULL;
}

int kms_ops_keys_respond_metadata(const kms_keystore *ks, const kms_key_record *rec, json_t **resp)
{
    json_t *m = kms_ops_keys_metadata_json(ks, rec);
    *resp = m ? json_pack("{s:o}", "KeyMetadata", m) : NULL;
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

int kms_ops_keys_respond_page(json_t **resp, const char *member, json_t *list, bool truncated,
                              const char *marker_member)
{
    size_t n = json_array_size(list);
    *resp = json_pack("{s:o, s:b}", member, list, "Truncated", truncated);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (truncated && n > 0) {
        /* The marker is the last item returned: the store pages by key after it. */
        json_t *marker = json_object_get(json_array_get(list, n - 1), marker_member);
        if (json_object_set(*resp, "NextMarker", marker) != 0) {
            json_decref(*resp);
            *resp = NULL;
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    return 0;
}

int kms_ops_keys_resolve(kms_request *rq, json_t *req, const char *member, const char *action,
                         kms_key_record *rec, char arn[KMS_ARN_MAX])
{
    const char *key_id = NULL;
    KMS_GUARD(kms_request_string(req, member, true, 1, 2048, &key_id));
    rq->key_ref = key_id;
    KMS_GUARD(kms_keystore_resolve(&rq->client->keystore, key_id, true, rec));
    kms_keystore_key_arn(&rq->client->keystore, rec->key_id, arn);
    if (kms_gate_authorize_key(rq, action, rec, arn) != 0) {
        kms_key_record_clean_up(rec); /* callers only clean up what succeeded */
        return -1;
    }
    return 0;
}

static int key_policy_for_create(kms_request *rq, json_t *req, char **out);

int kms_ops_keys_create(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    const char *desc = NULL, *spec_name = NULL, *cmk_spec = NULL, *usage = NULL, *origin = NULL;
    kms_tag *tags = NULL;
    size_t n_tags = 0;
    kms_key_record rec;
    memset(&rec, 0, sizeof rec);
    KMS_GUARD(kms_request_string(req, "Description", false, 0, 8192, &desc));
    KMS_GUARD(kms_request_string(req, "KeySpec", false, 1, 64, &spec_name));
    KMS_GUARD(kms_request_string(req, "CustomerMasterKeySpec", false, 1, 64, &cmk_spec));
    KMS_GUARD(kms_request_string(req, "KeyUsage", false, 1, 64, &usage));
    KMS_GUARD(kms_request_string(req, "Origin", false, 1, 64, &origin));
    KMS_ENSURE(!(spec_name && cmk_spec), KMS_ERR_VALIDATION,
               "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. "
               "CustomerMasterKeySpec is deprecated.");
    if (spec_name == NULL) {
        spec_name = cmk_spec ? cmk_spec : "SYMMETRIC_DEFAULT";
    }
    const kms_key_spec_info *spec = kms_key_spec_find(spec_name);
    KMS_ENSURE(spec != NULL, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'keySpec' failed to satisfy "
               "constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, HMAC_224, "
               "HMAC_256, HMAC_384, HMAC_512, RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, "
               "ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1]",
               spec_name);
    if (usage == NULL) {
        usage = spec->default_usage;
        KMS_ENSURE(usage != NULL, KMS_ERR_VALIDATION,
                   "KeyUsage is required for %s keys: give SIGN_VERIFY or ENCRYPT_DECRYPT",
                   spec->name);
    }
    KMS_ENSURE(strcmp(usage, "ENCRYPT_DECRYPT") == 0 || strcmp(usage, "SIGN_VERIFY") == 0 ||
                   strcmp(usage, "GENERATE_VERIFY_MAC") == 0 || strcmp(usage, "KEY_AGREEMENT") == 0,
               KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'keyUsage' failed to satisfy "
               "constraint: Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, "
               "GENERATE_VERIFY_MAC, KEY_AGREEMENT]",
               usage);
    KMS_ENSURE(kms_key_spec_allows_usage(spec, usage), KMS_ERR_VALIDATION,
               "KeyUsage %s is not compatible with KeySpec %s", usage, spec->name);
    KMS_ENSURE(origin == NULL || strcmp(origin, "AWS_KMS") == 0 ||
                   strcmp(origin, "EXTERNAL") == 0 || strcmp(origin, "AWS_CLOUDHSM") == 0 ||
                   strcmp(origin, "EXTERNAL_KEY_STORE") == 0,
               KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'origin' failed to satisfy constraint: "
               "Member must satisfy enum value set: [AWS_KMS, EXTERNAL, AWS_CLOUDHSM, "
               "EXTERNAL_KEY_STORE]",
               origin);
    KMS_ENSURE(origin == NULL || strcmp(origin, "AWS_KMS") == 0, KMS_ERR_UNSUPPORTED_OPERATION,
               "Origin %s is not supported: keys are generated in this KMS's HSM (AWS_KMS)",
               origin);
    json_t *mr = json_object_get(req, "MultiRegion");
    KMS_ENSURE(mr == NULL || json_is_false(mr), KMS_ERR_UNSUPPORTED_OPERATION,
               "multi-Region keys are not supported");
    KMS_GUARD(kms_gate_authorize(rq, "kms:CreateKey", "*"));
    KMS_ENSURE(strcmp(rq->who->id.account_id, rq->client->cfg.account_id) == 0,
               KMS_ERR_UNSUPPORTED_OPERATION,
               "this KMS home keeps the keys of account %s only; principals of account %s may "
               "use its keys where their key policies allow, but cannot create keys here",
               rq->client->cfg.account_id, rq->who->id.account_id);
    /* Tags (KMS API reference, CreateKey): checked before the key is made. */
    KMS_GUARD(kms_ops_tags_read(req, false, &tags, &n_tags));
    char *policy = NULL;
    if ((r = key_policy_for_create(rq, req, &policy)) != 0) {
        goto out;
    }
    r = kms_keystore_create(&rq->client->keystore, spec, usage, desc, policy, &rec);
    free(policy);
    if (r == 0 && n_tags > 0) {
        /* Only the database can fail here: the tags were checked. */
        r = kms_store_tags_put(rq->client->store, rec.key_id, tags, n_tags);
    }
    if (r == 0) {
        r = kms_ops_keys_respond_metadata(&rq->client->keystore, &rec, resp);
    }
out:
    free(tags);
    kms_key_record_clean_up(&rec);
    return r;
}

/* ---- Key policies (KMS Developer Guide, "Key policies in AWS KMS") ------------------------- */

/* The key policy of a new key: the one given, checked, or AWS's default for the account. */
static int key_policy_for_create(kms_request *rq, json_t *req, char **out)
{
    const char *given = NULL;
    *out = NULL;
    KMS_GUARD(kms_request_string(req, "Policy", false, 1, KMS_KEY_POLICY_MAX, &given));
    if (given == NULL) {
        *out = kms_authz_default_key_policy(rq->who->id.account_id);
        KMS_ENSURE(*out != NULL, KMS_ERR_INTERNAL, "out of memory");
        return 0;
    }
    KMS_GUARD(kms_gate_key_policy_check(rq, req, given, NULL, NULL));
    KMS_GUARD(kms_ops_unbind_check_principals(rq, given));
    *out = strdup(given);
    KMS_ENSURE(*out != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

static int policy_name(json_t *req, bool required)
{
    const char *name = NULL;
    KMS_GUARD(kms_request_string(req, "PolicyName", required, 1, 128, &name));
    KMS_ENSURE(name == NULL || strcmp(name, "default") == 0, KMS_ERR_NOT_FOUND,
               "No such policy exists: '%s'. A KMS key has one key policy, named \"default\".",
               name);
    return 0;
}

int kms_ops_keys_get_policy(kms_request *rq, json_t *req, json_t **resp)
{
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    char *doc = NULL;
    int64_t version = 0;
    KMS_GUARD(policy_name(req, false));
    KMS_GUARD(kms_ops_keys_resolve(rq, req, "KeyId", "kms:GetKeyPolicy", &rec, arn));
    int r = kms_keystore_policy_get(&rq->client->keystore, rec.key_id, &doc, &version);
    if (r == 0) {
        *resp = json_pack("{s:s, s:s}", "Policy", doc, "PolicyName", "default");
        r = *resp != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    free(doc);
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_keys_put_policy(kms_request *rq, json_t *req, json_t **resp)
{
    (void)resp;
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    const char *doc = NULL;
    KMS_GUARD(policy_name(req, false));
    KMS_GUARD(kms_request_string(req, "Policy", true, 1, KMS_KEY_POLICY_MAX, &doc));
    KMS_GUARD(kms_ops_keys_resolve(rq, req, "KeyId", "kms:PutKeyPolicy", &rec, arn));
    int r = kms_gate_key_policy_check(rq, req, doc, &rec, arn);
    if (r == 0) {
        r = kms_ops_unbind_check_principals(rq, doc);
    }
    if (r == 0) {
        r = kms_keystore_policy_put(&rq->client->keystore, rec.key_id, doc);
    }
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_keys_list_policies(kms_request *rq, json_t *req, json_t **resp)
{
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    long long limit = 100;
    const char *marker = NULL;
    KMS_GUARD(kms_request_int(req, "Limit", false, 1, 1000, 100, &limit));
    KMS_GUARD(kms_request_string(req, "Marker", false, 1, 320, &marker));
    KMS_GUARD(kms_ops_keys_resolve(rq, req, "KeyId", "kms:ListKeyPolicies", &rec, arn));
    kms_key_record_clean_up(&rec);
    *resp = json_pack("{s:[s], s:b}", "PolicyNames", "default", "Truncated", 0);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

int kms_ops_keys_describe(kms_request *rq, json_t *req, json_t **resp)
{
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    memset(&rec, 0, sizeof rec);
    int r = kms_ops_keys_resolve(rq, req, "KeyId", "kms:DescribeKey", &rec, arn);
    if (r == 0) {
        r = kms_ops_keys_respond_metadata(&rq->client->keystore, &rec, resp);
    }
    kms_key_record_clean_up(&rec);
    return r;
}

typedef struct key_walk {
    json_t *list;
    const kms_keystore *ks;
} key_walk;

/* Pagination markers are the last key id returned. */
static int list_key_cb(void *arg, const char *key_id)
{
    key_walk *w = arg;
    char arn[KMS_ARN_MAX];
    kms_keystore_key_arn(w->ks, key_id, arn);
    json_t *o = json_pack("{s:s, s:s}", "KeyId", key_id, "KeyArn", arn);
    KMS_ENSURE(o != NULL && json_array_append_new(w->list, o) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

int kms_ops_keys_list(kms_request *rq, json_t *req, json_t **resp)
{
    long long limit = 100;
    const char *marker = NULL;
    bool truncated = false;
    KMS_GUARD(kms_request_int(req, "Limit", false, 1, 1000, 100, &limit));
    KMS_GUARD(kms_request_string(req, "Marker", false, 1, 320, &marker));
    KMS_ENSURE(marker == NULL || kms_uuid_valid(marker), KMS_ERR_INVALID_MARKER,
               "the Marker '%s' was not returned by ListKeys", marker);
    KMS_GUARD(kms_gate_authorize(rq, "kms:ListKeys", "*"));
    if (strcmp(rq->who->id.account_id, rq->client->cfg.account_id) != 0) {
        /* ListKeys lists the caller's account's keys, and this home keeps no other account's. */
        return kms_ops_keys_respond_page(resp, "Keys", json_array(), false, "KeyId");
    }
    key_walk w = {json_array(), &rq->client->keystore};
    json_t *keys = w.list;
    if (keys == NULL || kms_keystore_key_list(&rq->client->keystore, marker, (size_t)limit,
                                              list_key_cb, &w, &truncated) != 0) {
        json_decref(keys);
        return -1;
    }
    return kms_ops_keys_respond_page(resp, "Keys", keys, truncated, "KeyId");
}

/* Loads the key for a state change; refuses keys pending deletion where AWS does. */
static int state_op(kms_request *rq, json_t *req, const char *action, bool refuse_pending,
                    kms_key_record *rec, char arn[KMS_ARN_MAX])
{
    KMS_GUARD(kms_ops_keys_resolve(rq, req, "KeyId", action, rec, arn));
    KMS_ENSURE(!refuse_pending || strcmp(rec->key_state, "PendingDeletion") != 0,
               KMS_ERR_INVALID_STATE, "%s is pending deletion.", arn);
    return 0;
}

int kms_ops_keys_update_description(kms_request *rq, json_t *req, json_t **resp)
{
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    const char *desc = NULL;
    memset(&rec, 0, sizeof rec);
    KMS_GUARD(kms_request_string(req, "Description", true, 0, 8192, &desc));
    int r = state_op(rq, req, "kms:UpdateKeyDescription", true, &rec, arn);
    if (r == 0) {
        r = kms_keystore_set_description(&rq->client->keystore, rec.key_id, desc);
    }
    kms_key_record_clean_up(&rec);
    return r;
}

static int set_enabled(kms_request *rq, json_t *req, bool enabled)
{
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    memset(&rec, 0, sizeof rec);
    int r = state_op(rq, req, enabled ? "kms:EnableKey" : "kms:DisableKey", true, &rec, arn);
    if (r == 0) {
        r = kms_keystore_set_state(&rq->client->keystore, rec.key_id,
                                   enabled ? "Enabled" : "Disabled", 0, 0);
    }
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_keys_enable(kms_request *rq, json_t *req, json_t **resp)
{
    return set_enabled(rq, req, true);
}

int kms_ops_keys_disable(kms_request *rq, json_t *req, json_t **resp)
{
    return set_enabled(rq, req, false);
}

int kms_ops_keys_schedule_deletion(kms_request *rq, json_t *req, json_t **resp)
{
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    long long days = 30;
    memset(&rec, 0, sizeof rec);
    KMS_GUARD(kms_request_int(req, "PendingWindowInDays", false, 7, 30, 30, &days));
    int r = state_op(rq, req, "kms:ScheduleKeyDeletion", true, &rec, arn);
    if (r == 0) {
        int64_t when = kms_now() + (int64_t)days * DAY;
        r = kms_keystore_set_state(&rq->client->keystore, rec.key_id, "PendingDeletion", when,
                                   (int)days);
        if (r == 0) {
            *resp =
                json_pack("{s:s, s:I, s:s, s:I}", "KeyId", arn, "DeletionDate", (json_int_t)when,
                          "KeyState", "PendingDeletion", "PendingWindowInDays", (json_int_t)days);
            r = *resp ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_keys_cancel_deletion(kms_request *rq, json_t *req, json_t **resp)
{
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    memset(&rec, 0, sizeof rec);
    int r = state_op(rq, req, "kms:CancelKeyDeletion", false, &rec, arn);
    if (r == 0 && strcmp(rec.key_state, "PendingDeletion") != 0) {
        r = kms_raise(KMS_ERR_INVALID_STATE, "%s is not pending deletion (it is %s).", arn,
                      rec.key_state);
    }
    if (r == 0) {
        /* AWS KMS: a key whose deletion is cancelled comes back Disabled. Not once the window
         * has ended: the scheduler may be destroying its material. */
        r = kms_keystore_cancel_deletion(&rq->client->keystore, rec.key_id, kms_now());
        if (r != 0 && kms_last_error() == KMS_ERR_INVALID_STATE) {
            r = kms_raise(KMS_ERR_INVALID_STATE,
                          "the deletion window of %s has ended: the key is being deleted and "
                          "cannot be recovered",
                          arn);
        }
    }
    if (r == 0) {
        *resp = json_pack("{s:s}", "KeyId", arn);
        r = *resp ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    kms_key_record_clean_up(&rec);
    return r;
}
