/* kms_call: AWS KMS JSON requests in, JSON responses out, every one through the gate. */
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "remote/remote.h"
#include "service/audit_trail.h"
#include "service/dispatch.h"
#include "service/ops.h"
#include "service/ops_acm.h"
#include "service/ops_grants.h"
#include "service/ops_iam.h"
#include "service/ops_pki.h"
#include "service/ops_tags.h"
#include "util/util.h"

#define M(...) ((const char *const[]){__VA_ARGS__, NULL})

static const kms_op ops[] = {
    {"CreateKey", kms_ops_keys_create,
     M("Description", "KeySpec", "KeyUsage", "CustomerMasterKeySpec", "Origin", "MultiRegion",
       "Policy", "BypassPolicyLockoutSafetyCheck", "Tags")},
    {"GetKeyPolicy", kms_ops_keys_get_policy, M("KeyId", "PolicyName")},
    {"PutKeyPolicy", kms_ops_keys_put_policy,
     M("KeyId", "PolicyName", "Policy", "BypassPolicyLockoutSafetyCheck")},
    {"ListKeyPolicies", kms_ops_keys_list_policies, M("KeyId", "Limit", "Marker")},
    {"CreateGrant", kms_ops_grants_create,
     M("KeyId", "GranteePrincipal", "RetiringPrincipal", "Operations", "Constraints", "GrantTokens",
       "Name", "DryRun")},
    {"ListGrants", kms_ops_grants_list,
     M("KeyId", "Limit", "Marker", "GrantId", "GranteePrincipal")},
    {"ListRetirableGrants", kms_ops_grants_list_retirable,
     M("RetiringPrincipal", "Limit", "Marker")},
    {"RetireGrant", kms_ops_grants_retire, M("GrantToken", "KeyId", "GrantId", "DryRun")},
    {"RevokeGrant", kms_ops_grants_revoke, M("KeyId", "GrantId", "DryRun")},
    {"DescribeKey", kms_ops_keys_describe, M("KeyId", "GrantTokens")},
    {"ListKeys", kms_ops_keys_list, M("Limit", "Marker")},
    {"UpdateKeyDescription", kms_ops_keys_update_description, M("KeyId", "Description")},
    {"EnableKey", kms_ops_keys_enable, M("KeyId")},
    {"DisableKey", kms_ops_keys_disable, M("KeyId")},
    {"ScheduleKeyDeletion", kms_ops_keys_schedule_deletion, M("KeyId", "PendingWindowInDays")},
    {"CancelKeyDeletion", kms_ops_keys_cancel_deletion, M("KeyId")},
    {"EnableKeyRotation", kms_ops_rotation_enable, M("KeyId", "RotationPeriodInDays")},
    {"DisableKeyRotation", kms_ops_rotation_disable, M("KeyId")},
    {"GetKeyRotationStatus", kms_ops_rotation_get_status, M("KeyId")},
    {"RotateKeyOnDemand", kms_ops_rotation_rotate_on_demand, M("KeyId")},
    {"ListKeyRotations", kms_ops_rotation_list, M("KeyId", "Limit", "Marker")},
    {"CreateAlias", kms_ops_alias_create, M("AliasName", "TargetKeyId")},
    {"UpdateAlias", kms_ops_alias_update, M("AliasName", "TargetKeyId")},
    {"DeleteAlias", kms_ops_alias_delete, M("AliasName")},
    {"ListAliases", kms_ops_alias_list, M("KeyId", "Limit", "Marker")},
    {"TagResource", kms_ops_tags_tag_resource, M("KeyId", "Tags")},
    {"UntagResource", kms_ops_tags_untag_resource, M("KeyId", "TagKeys")},
    {"ListResourceTags", kms_ops_tags_list_resource_tags, M("KeyId", "Limit", "Marker")},
    {"Encrypt", kms_ops_crypto_encrypt,
     M("KeyId", "Plaintext", "EncryptionContext", "EncryptionAlgorithm", "GrantTokens", "DryRun")},
    {"Decrypt", kms_ops_crypto_decrypt,
     M("CiphertextBlob", "KeyId", "EncryptionContext", "EncryptionAlgorithm", "GrantTokens",
       "DryRun")},
    {"ReEncrypt", kms_ops_crypto_re_encrypt,
     M("CiphertextBlob", "SourceEncryptionContext", "SourceKeyId", "DestinationKeyId",
       "DestinationEncryptionContext", "SourceEncryptionAlgorithm",
       "DestinationEncryptionAlgorithm", "GrantTokens", "DryRun")},
    {"GenerateDataKey", kms_ops_crypto_generate_data_key,
     M("KeyId", "KeySpec", "NumberOfBytes", "EncryptionContext", "GrantTokens", "DryRun")},
    {"GenerateDataKeyWithoutPlaintext", kms_ops_crypto_generate_data_key_without_plaintext,
     M("KeyId", "KeySpec", "NumberOfBytes", "EncryptionContext", "GrantTokens", "DryRun")},
    {"GetKeyLastUsage", kms_ops_keys_last_usage, M("KeyId")},
    {"DeriveSharedSecret", kms_ops_crypto_derive_shared_secret,
     M("KeyId", "KeyAgreementAlgorithm", "PublicKey", "GrantTokens", "DryRun", "Recipient")},
    {"GenerateDataKeyPair", kms_ops_crypto_generate_data_key_pair,
     M("KeyId", "KeyPairSpec", "EncryptionContext", "GrantTokens", "Recipient", "DryRun")},
    {"GenerateDataKeyPairWithoutPlaintext", kms_ops_crypto_generate_data_key_pair_without_plaintext,
     M("KeyId", "KeyPairSpec", "EncryptionContext", "GrantTokens", "DryRun")},
    {"GenerateRandom", kms_ops_crypto_generate_random, M("NumberOfBytes", "CustomKeyStoreId")},
    {"Sign", kms_ops_crypto_sign,
     M("KeyId", "Message", "MessageType", "SigningAlgorithm", "GrantTokens", "DryRun")},
    {"Verify", kms_ops_crypto_verify,
     M("KeyId", "Message", "MessageType", "Signature", "SigningAlgorithm", "GrantTokens",
       "DryRun")},
    {"GetPublicKey", kms_ops_crypto_get_public_key, M("KeyId", "GrantTokens")},
    {"GenerateMac", kms_ops_crypto_generate_mac,
     M("KeyId", "Message", "MacAlgorithm", "GrantTokens", "DryRun")},
    {"VerifyMac", kms_ops_crypto_verify_mac,
     M("KeyId", "Message", "MacAlgorithm", "Mac", "GrantTokens", "DryRun")},
    {"cloudtrail:LookupEvents", kms_audit_trail_lookup_events,
     M("LookupAttributes", "StartTime", "EndTime", "MaxResults", "NextToken", "EventCategory")},
    {"cloudtrail:GetUsageReport", kms_audit_trail_usage_report, M("StartTime", "EndTime")},
};

#undef M

/* KMS operations go by their AWS name ("Encrypt"); IAM, STS, Organizations, Private CA and ACM ones
 * by "service:Name" ("iam:CreateUser"), which is also their IAM action. */
const kms_op *kms_dispatch_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].name, name) == 0) {
            return &ops[i];
        }
    }
    if (name != NULL && strncmp(name, "acm-pca:", 8) == 0) {
        return kms_ops_pki_find(name);
    }
    if (name != NULL && strncmp(name, "acm:", 4) == 0) {
        return kms_ops_acm_find(name);
    }
    return name != NULL && strchr(name, ':') != NULL ? kms_ops_iam_find(name) : NULL;
}

static const char **op_names;
static pthread_once_t op_names_once = PTHREAD_ONCE_INIT;

static void op_names_build(void)
{
    const char *const *iam = kms_ops_iam_names();
    const char *const *pki = kms_ops_pki_names();
    const char *const *acm = kms_ops_acm_names();
    size_t n_iam = 0, n_pki = 0, n_acm = 0;
    while (iam[n_iam] != NULL) {
        n_iam++;
    }
    while (pki[n_pki] != NULL) {
        n_pki++;
    }
    while (acm[n_acm] != NULL) {
        n_acm++;
    }
    size_t n = sizeof ops / sizeof ops[0];
    op_names = calloc(n + n_iam + n_pki + n_acm + 1, sizeof *op_names);
    for (size_t i = 0; op_names != NULL && i < n; i++) {
        op_names[i] = ops[i].name;
    }
    for (size_t i = 0; op_names != NULL && i < n_iam; i++) {
        op_names[n + i] = iam[i];
    }
    for (size_t i = 0; op_names != NULL && i < n_pki; i++) {
        op_names[n + n_iam + i] = pki[i];
    }
    for (size_t i = 0; op_names != NULL && i < n_acm; i++) {
        op_names[n + n_iam + n_pki + i] = acm[i];
    }
}

const char *const *kms_operations(void)
{
    static const char *const none[] = {NULL};
    pthread_once(&op_names_once, op_names_build);
    return op_names != NULL ? op_names : none;
}

static int check_members(const kms_op *op, json_t *req)
{
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v)
    {
        bool known = false;
        for (size_t i = 0; op->members[i] != NULL && !known; i++) {
            known = strcmp(op->members[i], key) == 0;
        }
        if (!known) {
            char list[512] = "";
            size_t used = 0;
            for (size_t i = 0; op->members[i] != NULL && used < sizeof list; i++) {
                int k = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                 op->members[i]);
                used += k > 0 ? (size_t)k : 0;
            }
            return kms_raise(KMS_ERR_VALIDATION, "%s does not take the member '%s'; it takes: %s",
                             op->name, key, list);
        }
    }
    KMS_GUARD(kms_ops_grants_tokens_check(req));
    json_t *dry = json_object_get(req, "DryRun");
    KMS_ENSURE(dry == NULL || json_is_boolean(dry), KMS_ERR_VALIDATION,
               "DryRun must be true or false");
    return 0;
}

int kms_dispatch_call(kms_client *client, const char *operation, const char *request_json,
                      kms_gate_caller *caller, char **response_json)
{
    int rc = -1;
    json_t *req = NULL;
    json_t *resp = NULL;
    kms_request rq;
    *response_json = NULL;
    if (kms_gate_begin_as(&rq, client, operation, caller) != 0) {
        return kms_gate_end(&rq, -1);
    }
    const kms_op *op = kms_dispatch_find(operation);
    if (op == NULL) {
        kms_raise(KMS_ERR_UNKNOWN_OPERATION, "unknown operation '%s'", operation ? operation : "");
        goto out;
    }
    json_error_t jerr;
    req = json_loads(request_json ? request_json : "{}", JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(req)) {
        /* Not jansson's text: it quotes the input, which may hold a secret. */
        kms_raise(KMS_ERR_VALIDATION,
                  "the request body is not a JSON object (%s at line %d, column %d)",
                  req ? "not an object" : "invalid JSON", jerr.line, jerr.column);
        goto out;
    }
    /* A request with members the operation does not take is recorded without its parameters:
     * a misspelt member may hold a secret the sanitizer does not know. */
    if (check_members(op, req) != 0) {
        goto out;
    }
    rq.req = req;
    rq.dry_run = json_is_true(json_object_get(req, "DryRun"));
    if (op->handler(&rq, req, &resp) != 0) {
        goto out;
    }
    rc = 0;
out:
    rq.resp = resp;
    rc = kms_gate_end(&rq, rc);
    /* Requests and responses may carry secrets (plaintexts, passwords, secret access keys):
     * wiped before jansson frees them. */
    kms_request_json_wipe(req);
    json_decref(req);
    if (rc == 0 && resp == NULL) {
        resp = json_object();
    }
    if (rc == 0) {
        *response_json = json_dumps(resp, JSON_COMPACT);
        if (*response_json == NULL) {
            rc = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    kms_request_json_wipe(resp);
    json_decref(resp);
    return rc;
}

int kms_call(kms_client *client, const char *operation, const char *request_json,
             char **response_json)
{
    int r = -1;
    if (client != NULL && client->remote != NULL) {
        r = kms_remote_call(client->remote, operation, request_json, response_json);
    } else {
        r = kms_dispatch_call(client, operation, request_json, NULL, response_json);
    }
    if (r != 0) {
        kms_error_set_operation(operation); /* kms_last_error_code names it as its service */
    }
    return r;
}
