/* kms_call: AWS KMS JSON requests in, JSON responses out, every one through the gate. */
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "service/audit_trail.h"
#include "service/dispatch.h"
#include "service/ops.h"
#include "service/ops_grants.h"
#include "service/ops_iam.h"
#include "util/util.h"

#define M(...) ((const char *const[]){__VA_ARGS__, NULL})

static const kms_op ops[] = {
    {"CreateKey", kms_op_create_key,
     M("Description", "KeySpec", "KeyUsage", "CustomerMasterKeySpec", "Origin", "MultiRegion",
       "Policy", "BypassPolicyLockoutSafetyCheck")},
    {"GetKeyPolicy", kms_op_get_key_policy, M("KeyId", "PolicyName")},
    {"PutKeyPolicy", kms_op_put_key_policy,
     M("KeyId", "PolicyName", "Policy", "BypassPolicyLockoutSafetyCheck")},
    {"ListKeyPolicies", kms_op_list_key_policies, M("KeyId", "Limit", "Marker")},
    {"CreateGrant", kms_op_create_grant,
     M("KeyId", "GranteePrincipal", "RetiringPrincipal", "Operations", "Constraints", "GrantTokens",
       "Name", "DryRun")},
    {"ListGrants", kms_op_list_grants,
     M("KeyId", "Limit", "Marker", "GrantId", "GranteePrincipal")},
    {"ListRetirableGrants", kms_op_list_retirable_grants,
     M("RetiringPrincipal", "Limit", "Marker")},
    {"RetireGrant", kms_op_retire_grant, M("GrantToken", "KeyId", "GrantId", "DryRun")},
    {"RevokeGrant", kms_op_revoke_grant, M("KeyId", "GrantId", "DryRun")},
    {"DescribeKey", kms_op_describe_key, M("KeyId", "GrantTokens")},
    {"ListKeys", kms_op_list_keys, M("Limit", "Marker")},
    {"UpdateKeyDescription", kms_op_update_key_description, M("KeyId", "Description")},
    {"EnableKey", kms_op_enable_key, M("KeyId")},
    {"DisableKey", kms_op_disable_key, M("KeyId")},
    {"ScheduleKeyDeletion", kms_op_schedule_key_deletion, M("KeyId", "PendingWindowInDays")},
    {"CancelKeyDeletion", kms_op_cancel_key_deletion, M("KeyId")},
    {"EnableKeyRotation", kms_op_enable_key_rotation, M("KeyId", "RotationPeriodInDays")},
    {"DisableKeyRotation", kms_op_disable_key_rotation, M("KeyId")},
    {"GetKeyRotationStatus", kms_op_get_key_rotation_status, M("KeyId")},
    {"RotateKeyOnDemand", kms_op_rotate_key_on_demand, M("KeyId")},
    {"ListKeyRotations", kms_op_list_key_rotations, M("KeyId", "Limit", "Marker")},
    {"CreateAlias", kms_op_create_alias, M("AliasName", "TargetKeyId")},
    {"UpdateAlias", kms_op_update_alias, M("AliasName", "TargetKeyId")},
    {"DeleteAlias", kms_op_delete_alias, M("AliasName")},
    {"ListAliases", kms_op_list_aliases, M("KeyId", "Limit", "Marker")},
    {"Encrypt", kms_op_encrypt,
     M("KeyId", "Plaintext", "EncryptionContext", "EncryptionAlgorithm", "GrantTokens", "DryRun")},
    {"Decrypt", kms_op_decrypt,
     M("CiphertextBlob", "KeyId", "EncryptionContext", "EncryptionAlgorithm", "GrantTokens",
       "DryRun")},
    {"ReEncrypt", kms_op_re_encrypt,
     M("CiphertextBlob", "SourceEncryptionContext", "SourceKeyId", "DestinationKeyId",
       "DestinationEncryptionContext", "SourceEncryptionAlgorithm",
       "DestinationEncryptionAlgorithm", "GrantTokens", "DryRun")},
    {"GenerateDataKey", kms_op_generate_data_key,
     M("KeyId", "KeySpec", "NumberOfBytes", "EncryptionContext", "GrantTokens", "DryRun")},
    {"GenerateDataKeyWithoutPlaintext", kms_op_generate_data_key_without_plaintext,
     M("KeyId", "KeySpec", "NumberOfBytes", "EncryptionContext", "GrantTokens", "DryRun")},
    {"GenerateRandom", kms_op_generate_random, M("NumberOfBytes", "CustomKeyStoreId")},
    {"Sign", kms_op_sign,
     M("KeyId", "Message", "MessageType", "SigningAlgorithm", "GrantTokens", "DryRun")},
    {"Verify", kms_op_verify,
     M("KeyId", "Message", "MessageType", "Signature", "SigningAlgorithm", "GrantTokens",
       "DryRun")},
    {"GetPublicKey", kms_op_get_public_key, M("KeyId", "GrantTokens")},
    {"GenerateMac", kms_op_generate_mac,
     M("KeyId", "Message", "MacAlgorithm", "GrantTokens", "DryRun")},
    {"VerifyMac", kms_op_verify_mac,
     M("KeyId", "Message", "MacAlgorithm", "Mac", "GrantTokens", "DryRun")},
    {"cloudtrail:LookupEvents", kms_op_lookup_events,
     M("LookupAttributes", "StartTime", "EndTime", "MaxResults", "NextToken", "EventCategory")},
    {"cloudtrail:GetUsageReport", kms_op_usage_report, M("StartTime", "EndTime")},
};

#undef M

/* KMS operations go by their AWS name ("Encrypt"); IAM, STS and Organizations ones by
 * "service:Name" ("iam:CreateUser"), which is also their IAM action. */
const kms_op *kms_dispatch_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].name, name) == 0) {
            return &ops[i];
        }
    }
    return name != NULL && strchr(name, ':') != NULL ? kms_ops_iam_find(name) : NULL;
}

static const char **op_names;
static pthread_once_t op_names_once = PTHREAD_ONCE_INIT;

static void op_names_build(void)
{
    const char *const *iam = kms_ops_iam_names();
    size_t n_iam = 0;
    while (iam[n_iam] != NULL) {
        n_iam++;
    }
    size_t n = sizeof ops / sizeof ops[0];
    op_names = calloc(n + n_iam + 1, sizeof *op_names);
    for (size_t i = 0; op_names != NULL && i < n; i++) {
        op_names[i] = ops[i].name;
    }
    for (size_t i = 0; op_names != NULL && i < n_iam; i++) {
        op_names[n + i] = iam[i];
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
    KMS_ENSURE(dry == NULL || json_is_false(dry), KMS_ERR_UNSUPPORTED_OPERATION,
               "DryRun is not supported yet");
    return 0;
}

int kms_call(kms_client *client, const char *operation, const char *request_json,
             char **response_json)
{
    int rc = -1;
    json_t *req = NULL;
    json_t *resp = NULL;
    kms_request rq;
    *response_json = NULL;
    if (kms_gate_begin(&rq, client, operation) != 0) {
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
