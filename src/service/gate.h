/* THE GATE. Every operation, from kms_call or the typed API, runs
 *   authenticate -> authorize -> execute -> audit
 * through kms_gate_begin / kms_gate_authorize / kms_gate_end, and front ends reach keys by no
 * other road (design.md "Layers"). Private to src/service. */
#ifndef KMS_SERVICE_GATE_H
#define KMS_SERVICE_GATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "service/client.h"

/* One request on its way through the gate. */
typedef struct kms_request {
    kms_client *client;
    const char *operation; /* "Encrypt" */
    const char *action;    /* "kms:Encrypt" */
    bool authorized;
    kms_principal_snapshot *who; /* the authenticated caller and its compiled policies */
    /* What the request says, for condition keys (kms:EncryptionContext:..., kms:RequestAlias):
     * the JSON request of kms_call (NULL in the typed API), the encryption context the core
     * works with, the key reference as the caller gave it. */
    json_t *req;
    const kms_encryption_context *enc_ctx;
    const char *key_ref;
    /* When a grant (not a policy) allowed the request: that grant's operations and constraints
     * (malloc'd), which bound what a CreateGrant through it may give. */
    char *grant_ops;
    char *grant_constraints;
    /* For the audit record: the JSON response of kms_call (borrowed), the keys the request
     * touched (ReEncrypt: two), when it started. */
    json_t *resp;
    char resources[2][KMS_ARN_MAX];
    int resource_count;
    int64_t started;
    /* Scheduled work of the service itself (kms_gate_begin_service): recorded as an
     * AwsServiceEvent invoked by kms.amazonaws.com, with service_details (owned) as its
     * serviceEventDetails. nothing_done: the work was found done by another scheduler, so no
     * record is written. */
    bool service;
    bool nothing_done;
    json_t *service_details;
    /* A caller's request that made the service do something CloudTrail records on its own
     * (RotateKeyOnDemand: the RotateKey event of the new material): when the request succeeds,
     * kms_gate_end writes, after the request's record, the service event then_event on the
     * request's first resource with then_details (owned) as its serviceEventDetails. */
    const char *then_event;
    json_t *then_details;
} kms_request;

int kms_gate_begin(kms_request *rq, kms_client *client, const char *operation)
    __attribute__((warn_unused_result));
/* Scheduled work (rotations, the end of deletion windows) runs as the service, not as a user:
 * no credentials are taken. kms_gate_authorize_service allows only kms:RotateKey and
 * kms:DeleteKey on a key of this account; what makes the work legitimate is the key's own
 * state, which an authorised request set (EnableKeyRotation, ScheduleKeyDeletion) and which the
 * store checks again as it acts. */
int kms_gate_begin_service(kms_request *rq, kms_client *client, const char *operation)
    __attribute__((warn_unused_result));
int kms_gate_authorize_service(kms_request *rq, const char *action, const char *key_arn)
    __attribute__((warn_unused_result));
/* Decides whether the caller may perform rq->action on resource_arn ("*" for none). */
int kms_gate_authorize(kms_request *rq, const char *action, const char *resource_arn)
    __attribute__((warn_unused_result));
/* Decides whether the caller may perform action on a KMS key: the key policy first, then
 * (where it lets the account decide) the caller's IAM policies, then grants. */
int kms_gate_authorize_key(kms_request *rq, const char *action, const kms_key_record *rec,
                           const char *key_arn) __attribute__((warn_unused_result));
/* A key policy about to be set (PutKeyPolicy; CreateKey with rec and key_arn NULL): it must
 * compile as a key policy (MalformedPolicyDocumentException naming the element) and, unless the
 * request sets BypassPolicyLockoutSafetyCheck, allow the caller a later kms:PutKeyPolicy (the
 * policy lockout safety check). */
int kms_gate_key_policy_check(kms_request *rq, json_t *req, const char *doc,
                              const kms_key_record *rec, const char *key_arn)
    __attribute__((warn_unused_result));
/* The same decision for a role's trust policy (sts:AssumeRole): trust_policy is the role's
 * AssumeRolePolicyDocument. */
int kms_gate_authorize_trust(kms_request *rq, const char *role_arn, const char *trust_policy)
    __attribute__((warn_unused_result));
/* Records the outcome (rc 0 or -1 with the thread-local error). Returns rc, or -1 if the
 * record could not be written (fail closed). */
int kms_gate_end(kms_request *rq, int rc);

#endif
