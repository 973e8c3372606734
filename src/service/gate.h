/* THE GATE. Every operation, from kms_call or the typed API, runs
 *   authenticate -> authorize -> execute -> audit
 * through kms_gate_begin / kms_gate_authorize / kms_gate_end, and front ends reach keys by no
 * other road (design.md "Layers"). Private to src/service. */
#ifndef KMS_SERVICE_GATE_H
#define KMS_SERVICE_GATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kms/server.h"
#include "service/client.h"

/* The caller of a network request (kms_call_network, network.c), authenticated by its SigV4
 * signature before the gate; kms_call and the typed API have none (NULL): their caller is the
 * client's own credentials. */
typedef struct kms_gate_caller {
    /* The caller with its compiled policies, a reference the gate takes over (kms_gate_end
     * releases it). For a refused authentication, only the identity of the key's owner. */
    kms_principal_snapshot *who;
    /* Not KMS_OK: the request was refused before the gate (a bad signature, throttling), with
     * this error; the gate records the refusal as who's and runs nothing. */
    kms_error refused;
    char refused_message[512];
    const kms_network_request *net; /* the connection, for the context and the record */
    const char *user_agent;         /* the User-Agent header, or NULL */
    const char *host;               /* the Host header, or NULL */
    /* Set by kms_gate_end: the request's record was written, with this requestID. */
    bool recorded;
    char request_id[37];
} kms_gate_caller;

/* One request on its way through the gate. */
typedef struct kms_request {
    kms_client *client;
    const char *operation; /* "Encrypt" */
    const char *action;    /* "kms:Encrypt" */
    bool authorized;
    /* DryRun: the request is authorised and checked, then answered DryRunOperationException
     * just before it would act (kms_gate_dry_run). */
    bool dry_run;
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
    /* The key material ids the request used (kms_audit_trail_key_material; "" none): [0] the
     * key's, or ReEncrypt's source; [1] ReEncrypt's destination. The record's
     * additionalEventData, the response's KeyMaterialId. */
    char key_material[2][65];
    /* Borrowed: the record's additionalEventData where the caller supplies it (a ConsoleLogin's
     * LoginTo, MobileVersion, MFAUsed). */
    const json_t *additional_event_data;
    /* A network request's caller (NULL: the client's credentials), and the requestID of the
     * record (made when it is built; "" until then) and whether it was written. */
    kms_gate_caller *caller;
    char request_id[37];
    bool recorded;
} kms_request;

int kms_gate_begin(kms_request *rq, kms_client *client, const char *operation)
    __attribute__((warn_unused_result));
/* The same for the caller of a network request (caller not NULL): its snapshot instead of the
 * client's credentials, refused with caller->refused when that is set. */
int kms_gate_begin_as(kms_request *rq, kms_client *client, const char *operation,
                      kms_gate_caller *caller) __attribute__((warn_unused_result));
/* A stored policy compiled (one that no longer compiles is KMSInternalException). */
int kms_gate_policy_compile(const char *doc, kms_policy_kind kind, const char *label,
                            kms_policy **out) __attribute__((warn_unused_result));
/* The snapshot of a caller whose signature verified (network.c): id (moved in, cleaned up in
 * every case) with its policies compiled, from the per-access-key cache when its IAM
 * generation is still current (generation: read before the credentials were looked up). */
int kms_gate_caller_snapshot(kms_client *client, kms_identity *id, const char *session_token,
                             uint64_t generation, kms_principal_snapshot **out)
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
/* DryRun (KMS API reference): 0 when the request is not a dry run; else, the request having
 * been authorised and checked, -1 with DryRunOperationException, before it acts. */
int kms_gate_dry_run(const kms_request *rq) __attribute__((warn_unused_result));
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
