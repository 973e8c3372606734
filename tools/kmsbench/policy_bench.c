/* kmsbench --operation PolicyEvaluate: what authorization costs a request.
 *
 * A user with 10 statements spread over its identity-based policies (two policies, five
 * statements) and the KMS key policy (five statements, the default "Enable IAM User
 * Permissions" among them), with conditions on the encryption context, time and source address,
 * asks for kms:Decrypt on a key: the statement mix of a realistic account. The decision is
 * "allowed" through the key policy's delegation to IAM. */
#include "policy_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"
#include "policy/policy.h"

#define ACCOUNT "111122223333"
#define KEY_ARN "arn:aws:kms:us-east-1:" ACCOUNT ":key/1234abcd-12ab-34cd-56ef-1234567890ab"

static const char IDENTITY_1[] =
    "{\"Version\": \"2012-10-17\", \"Statement\": ["
    " {\"Sid\": \"UseKeysForApp\", \"Effect\": \"Allow\","
    "  \"Action\": [\"kms:Encrypt\", \"kms:Decrypt\", \"kms:GenerateDataKey*\"],"
    "  \"Resource\": \"arn:aws:kms:*:" ACCOUNT ":key/*\","
    "  \"Condition\": {\"StringEquals\": {\"kms:EncryptionContext:app\": \"billing\"},"
    "                 \"Bool\": {\"aws:SecureTransport\": \"true\"}}},"
    " {\"Sid\": \"ReadMetadata\", \"Effect\": \"Allow\","
    "  \"Action\": [\"kms:Describe*\", \"kms:List*\", \"kms:Get*\"], \"Resource\": \"*\"},"
    " {\"Sid\": \"DenyOutsideNetwork\", \"Effect\": \"Deny\", \"Action\": \"kms:*\","
    "  \"Resource\": \"*\","
    "  \"Condition\": {\"NotIpAddress\": {\"aws:SourceIp\": [\"10.0.0.0/8\", \"192.0.2.0/24\"]}}}"
    "]}";

static const char IDENTITY_2[] =
    "{\"Version\": \"2012-10-17\", \"Statement\": ["
    " {\"Sid\": \"OwnBucket\", \"Effect\": \"Allow\", \"Action\": \"s3:*\","
    "  \"Resource\": \"arn:aws:s3:::home/${aws:username}/*\"},"
    " {\"Sid\": \"NoKeyDeletion\", \"Effect\": \"Deny\","
    "  \"Action\": [\"kms:ScheduleKeyDeletion\", \"kms:DisableKey\"], \"Resource\": \"*\"}"
    "]}";

static const char KEY_POLICY[] =
    "{\"Version\": \"2012-10-17\", \"Id\": \"key-default-1\", \"Statement\": ["
    " {\"Sid\": \"Enable IAM User Permissions\", \"Effect\": \"Allow\","
    "  \"Principal\": {\"AWS\": \"arn:aws:iam::" ACCOUNT ":root\"}, \"Action\": \"kms:*\","
    "  \"Resource\": \"*\"},"
    " {\"Sid\": \"Allow access for Key Administrators\", \"Effect\": \"Allow\","
    "  \"Principal\": {\"AWS\": \"arn:aws:iam::" ACCOUNT ":role/KeyAdmin\"},"
    "  \"Action\": [\"kms:Create*\", \"kms:Describe*\", \"kms:Enable*\", \"kms:List*\","
    "             \"kms:Put*\", \"kms:Update*\", \"kms:Revoke*\", \"kms:Disable*\","
    "             \"kms:Get*\", \"kms:Delete*\", \"kms:TagResource\", \"kms:UntagResource\","
    "             \"kms:ScheduleKeyDeletion\", \"kms:CancelKeyDeletion\"], \"Resource\": \"*\"},"
    " {\"Sid\": \"Allow use of the key\", \"Effect\": \"Allow\","
    "  \"Principal\": {\"AWS\": \"arn:aws:iam::" ACCOUNT ":role/AppRole\"},"
    "  \"Action\": [\"kms:Encrypt\", \"kms:Decrypt\", \"kms:ReEncrypt*\","
    "             \"kms:GenerateDataKey*\", \"kms:DescribeKey\"], \"Resource\": \"*\"},"
    " {\"Sid\": \"Allow attachment of persistent resources\", \"Effect\": \"Allow\","
    "  \"Principal\": {\"AWS\": \"arn:aws:iam::" ACCOUNT ":role/AppRole\"},"
    "  \"Action\": [\"kms:CreateGrant\", \"kms:ListGrants\", \"kms:RevokeGrant\"],"
    "  \"Resource\": \"*\", \"Condition\": {\"Bool\": {\"kms:GrantIsForAWSResource\": \"true\"}}},"
    " {\"Sid\": \"Deny old requests\", \"Effect\": \"Deny\", \"Principal\": \"*\","
    "  \"Action\": \"kms:*\", \"Resource\": \"*\","
    "  \"Condition\": {\"DateLessThan\": {\"aws:CurrentTime\": \"2020-01-01T00:00:00Z\"}}}"
    "]}";

struct policy_bench {
    kms_policy *identity[2];
    kms_policy *key_policy;
    kms_policy_ctx *ctx;
    kms_eval_input in;
};

void policy_bench_free(policy_bench *pb)
{
    if (pb == NULL) {
        return;
    }
    kms_policy_free(pb->identity[0]);
    kms_policy_free(pb->identity[1]);
    kms_policy_free(pb->key_policy);
    kms_policy_ctx_free(pb->ctx);
    free(pb);
}

policy_bench *policy_bench_new(void)
{
    policy_bench *pb = calloc(1, sizeof *pb);
    if (pb == NULL || (pb->ctx = kms_policy_ctx_new()) == NULL) {
        fprintf(stderr, "kmsbench: out of memory\n");
        policy_bench_free(pb);
        return NULL;
    }
    static const char *const ctx[][2] = {
        {"aws:PrincipalArn", "arn:aws:iam::" ACCOUNT ":user/alice"},
        {"aws:PrincipalAccount", ACCOUNT},
        {"aws:username", "alice"},
        {"aws:SecureTransport", "true"},
        {"aws:SourceIp", "10.1.2.3"},
        {"aws:CurrentTime", "2026-06-01T12:00:00Z"},
        {"kms:EncryptionContext:app", "billing"},
        {"kms:CallerAccount", ACCOUNT},
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof ctx / sizeof ctx[0] && ok; i++) {
        ok = kms_policy_ctx_add(pb->ctx, ctx[i][0], ctx[i][1]) == 0;
    }
    ok = ok &&
         kms_policy_compile(IDENTITY_1, strlen(IDENTITY_1), KMS_POLICY_IDENTITY,
                            "PolicyInputList.1", &pb->identity[0]) == 0 &&
         kms_policy_compile(IDENTITY_2, strlen(IDENTITY_2), KMS_POLICY_IDENTITY,
                            "PolicyInputList.2", &pb->identity[1]) == 0 &&
         kms_policy_compile(KEY_POLICY, strlen(KEY_POLICY), KMS_POLICY_KEY, "ResourcePolicy",
                            &pb->key_policy) == 0;
    if (!ok) {
        fprintf(stderr, "kmsbench: %s: %s\n", kms_error_name(kms_last_error()),
                kms_last_error_message());
        policy_bench_free(pb);
        return NULL;
    }
    pb->in = (kms_eval_input){
        .principal_arn = "arn:aws:iam::" ACCOUNT ":user/alice",
        .principal_account = ACCOUNT,
        .action = "kms:Decrypt",
        .resource = KEY_ARN,
        .resource_account = ACCOUNT,
        .ctx = pb->ctx,
        .identity = {(const kms_policy *const *)pb->identity, 2},
        .resource_policy = pb->key_policy,
        .key_policy = true,
    };
    if (policy_bench_run(pb) != 0) {
        policy_bench_free(pb);
        return NULL;
    }
    return pb;
}

int policy_bench_run(const policy_bench *pb)
{
    kms_eval_result res;
    kms_decision d = kms_policy_evaluate(&pb->in, &res);
    if (d != KMS_DECISION_ALLOWED) {
        fprintf(stderr, "kmsbench: PolicyEvaluate decided %s, expected allowed\n",
                kms_policy_decision_name(d));
        return -1;
    }
    return 0;
}
