/* The service layer: THE GATE. Every operation, from kms_call or the typed API, runs
 *   authenticate -> authorize -> execute -> audit
 * through kms_gate_begin / kms_gate_authorize / kms_gate_end, and front ends reach keys by no
 * other road (design.md "Layers"). */
#ifndef KMS_SERVICE_SERVICE_H
#define KMS_SERVICE_SERVICE_H

#include <jansson.h>
#include <stdbool.h>

#include "audit/audit.h"
#include "hsm/hsm.h"
#include "iam/iam.h"
#include "service/authz.h"
#include "keystore/keystore.h"
#include "kms/kms.h"
#include "store/store.h"

typedef struct kms_config {
    char region[32];
    char account_id[13];
    char *pkcs11_module;
    char *token_label;
    char *pin_source;   /* "file:PATH" (relative to the home) or "env:NAME" */
    char *softhsm_conf; /* SoftHSM2 config for this home, or NULL for another HSM */
    int64_t audit_digest_period; /* "audit_digest_period_seconds"; 0: one hour */
    int64_t rotation_usage_limit; /* "rotation_usage_limit": encryptions per key version before
                                     the scheduler rotates; KMS_ROTATION_USAGE_LIMIT if absent */
} kms_config;

struct kms_client {
    char *home;
    kms_config cfg;
    kms_hsm *hsm;
    kms_store *store;
    kms_keystore keystore;
    kms_iam *iam;
    kms_authz authz;
    bool authz_ready;
    /* The credentials the client was opened with, kept (the secret in locked memory) to
     * authenticate again when IAM changes: a deactivated key or a revoked session stops working
     * for an open client too. */
    char access_key_id[32];
    char *secret_access_key;
    char *session_token;
    char *user_agent;
    /* The audit trail, opened at the first request (so that validate-logs still runs on a trail
     * the writer refuses); a request never runs without it. */
    pthread_mutex_t audit_lock;
    kms_audit *audit;
    uint8_t *audit_spki; /* the digest key's public half, DER SubjectPublicKeyInfo */
    size_t audit_spki_len;
};

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
/* The serviceEventDetails of a RotateKey service event (CloudTrail's: rotationType AUTOMATIC or
 * ON_DEMAND, keyOrigin), with the material versions before and after and, for the scheduler's
 * rotations, what made it due (SCHEDULE, USAGE, RESUMED; NULL: none). NULL when out of memory. */
json_t *kms_rotate_key_event(const char *rotation_type, uint32_t version, const char *trigger);
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

/* ---- The audit trail (audit_trail.c) ---- */
/* HOME/audit of a client, malloc'd. */
char *kms_audit_dir(const char *home);
/* The client's trail, opened at the first call: KMSAuditLogException when it cannot be. */
int kms_client_audit(kms_client *c, kms_audit **out) __attribute__((warn_unused_result));
/* A new home: generates the digest key in the HSM and creates HOME/audit. */
int kms_audit_home_create(const char *home, kms_hsm *hsm) __attribute__((warn_unused_result));
/* Writes the request's CloudTrail record (durably); -1 if it could not be written. */
int kms_audit_request(kms_request *rq, int rc) __attribute__((warn_unused_result));
/* Notes a key ARN the request touched (resources of the record). */
void kms_request_resource(kms_request *rq, const char *arn);
int kms_op_lookup_events(kms_request *rq, json_t *req, json_t **resp);
int kms_op_usage_report(kms_request *rq, json_t *req, json_t **resp);

void kms_config_clean_up(kms_config *cfg);
int kms_config_load(const char *home, kms_config *cfg) __attribute__((warn_unused_result));

/* ---- Operation handlers: JSON request in, JSON response out (AWS shapes). ---- */
typedef int (*kms_op_handler)(kms_request *rq, json_t *req, json_t **resp);

typedef struct kms_op {
    const char *name;     /* "CreateKey" */
    kms_op_handler handler;
    const char *const *members; /* request members it accepts, NULL-terminated */
} kms_op;

const kms_op *kms_op_find(const char *name);

/* Request member helpers (ValidationException naming the member). */
int kms_req_string(json_t *req, const char *name, bool required, size_t min, size_t max,
                   const char **out) __attribute__((warn_unused_result));
int kms_req_int(json_t *req, const char *name, bool required, long long min, long long max,
                long long dflt, long long *out) __attribute__((warn_unused_result));
/* Base64 member decoded into *out (free: secure ? kms_secret_free : free). */
int kms_req_blob(json_t *req, const char *name, bool required, size_t min, size_t max,
                 bool secure, uint8_t **out, size_t *n) __attribute__((warn_unused_result));
/* EncryptionContext-like map of strings; entries borrow from req (free entries only). */
int kms_req_context(json_t *req, const char *name, kms_encryption_context *ctx)
    __attribute__((warn_unused_result));
void kms_context_free(kms_encryption_context *ctx);
/* Wipes every string of a JSON value in place (before it is freed). */
void kms_json_wipe(json_t *v);
/* Sets member name of obj to base64(p, n). */
int kms_json_set_blob(json_t *obj, const char *name, const uint8_t *p, size_t n)
    __attribute__((warn_unused_result));

/* Handlers, by module. */
int kms_op_create_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_describe_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_keys(kms_request *rq, json_t *req, json_t **resp);
int kms_op_update_key_description(kms_request *rq, json_t *req, json_t **resp);
int kms_op_enable_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_disable_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_schedule_key_deletion(kms_request *rq, json_t *req, json_t **resp);
int kms_op_cancel_key_deletion(kms_request *rq, json_t *req, json_t **resp);
int kms_op_create_alias(kms_request *rq, json_t *req, json_t **resp);
int kms_op_update_alias(kms_request *rq, json_t *req, json_t **resp);
int kms_op_delete_alias(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_aliases(kms_request *rq, json_t *req, json_t **resp);
int kms_op_encrypt(kms_request *rq, json_t *req, json_t **resp);
int kms_op_decrypt(kms_request *rq, json_t *req, json_t **resp);
int kms_op_re_encrypt(kms_request *rq, json_t *req, json_t **resp);
int kms_op_generate_data_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_generate_data_key_without_plaintext(kms_request *rq, json_t *req, json_t **resp);
int kms_op_generate_random(kms_request *rq, json_t *req, json_t **resp);
int kms_op_sign(kms_request *rq, json_t *req, json_t **resp);
int kms_op_verify(kms_request *rq, json_t *req, json_t **resp);
int kms_op_get_public_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_generate_mac(kms_request *rq, json_t *req, json_t **resp);
int kms_op_verify_mac(kms_request *rq, json_t *req, json_t **resp);
int kms_op_get_key_policy(kms_request *rq, json_t *req, json_t **resp);
int kms_op_put_key_policy(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_key_policies(kms_request *rq, json_t *req, json_t **resp);
int kms_op_create_grant(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_grants(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_retirable_grants(kms_request *rq, json_t *req, json_t **resp);
int kms_op_retire_grant(kms_request *rq, json_t *req, json_t **resp);
int kms_op_revoke_grant(kms_request *rq, json_t *req, json_t **resp);
int kms_op_enable_key_rotation(kms_request *rq, json_t *req, json_t **resp);
int kms_op_disable_key_rotation(kms_request *rq, json_t *req, json_t **resp);
int kms_op_get_key_rotation_status(kms_request *rq, json_t *req, json_t **resp);
int kms_op_rotate_key_on_demand(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_key_rotations(kms_request *rq, json_t *req, json_t **resp);

#endif
