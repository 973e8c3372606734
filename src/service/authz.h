/* Authorization behind the gate: the caller's compiled policies, compiled key policies, the
 * request context, grants, and AWS's messages for a refusal. Private to src/service.
 *
 * Policies are compiled once and cached on the client: the caller's identity-based policies,
 * permissions boundary, session policy and SCPs by the IAM generation number (any IAM change
 * bumps it), key policies by (key id, policy version). Compiled policies are immutable and
 * shared by every thread of the client; a snapshot is reference-counted, so a thread that took
 * one may finish with it while another replaces it. */
#ifndef KMS_SERVICE_AUTHZ_H
#define KMS_SERVICE_AUTHZ_H

#include <pthread.h>
#include <stdatomic.h>

#include "iam/iam.h"
#include "policy/policy.h"

typedef struct kms_principal_snapshot {
    atomic_int refs;
    uint64_t generation;
    kms_identity id;
    kms_policy **identity;
    size_t identity_count;
    kms_policy *boundary;
    kms_policy *session;
    kms_policy_list *scps; /* scp_levels lists; their items point into scp_policies */
    size_t scp_levels;
    kms_policy **scp_policies;
    size_t scp_policy_count;
    char org_id[40];
} kms_principal_snapshot;

typedef struct kms_key_policy_entry {
    struct kms_key_policy_entry *next;
    char key_id[37];
    int64_t version;
    kms_policy *policy;
} kms_key_policy_entry;

#define KMS_AUTHZ_BUCKETS 64
#define KMS_AUTHZ_CALLERS 64

/* A network caller's snapshot, by the access key and the session token it signed with (its
 * SHA-256; zeros for a long-term key). */
typedef struct kms_caller_entry {
    char access_key_id[32];
    uint8_t token_hash[32];
    kms_principal_snapshot *snapshot; /* NULL: a free entry */
    uint64_t last_use;                /* for replacing the least recently used */
} kms_caller_entry;

typedef struct kms_authz {
    pthread_mutex_t lock;
    kms_principal_snapshot *current; /* NULL until the first request */
    /* The callers of kms_call_network, each under its own key (the client's own credentials
     * are `current`). */
    kms_caller_entry callers[KMS_AUTHZ_CALLERS];
    uint64_t caller_uses;
    kms_key_policy_entry *buckets[KMS_AUTHZ_BUCKETS];
    kms_key_policy_entry *retired; /* replaced entries, freed with the client */
    kms_policy *root_all;          /* "Allow * on *": the root user's identity side */
} kms_authz;

int kms_authz_init(kms_authz *az) __attribute__((warn_unused_result));
void kms_authz_clean_up(kms_authz *az);
/* A snapshot of id alone (moved in), no policies compiled yet: one reference. NULL on
 * out-of-memory (id cleaned up). */
kms_principal_snapshot *kms_authz_snapshot_new(kms_identity *id, uint64_t generation);
void kms_authz_snapshot_release(kms_principal_snapshot *s);

/* The AWS default key policy for account_id (KMS Developer Guide, "Default key policy"):
 * the account's root principal may do kms:* (malloc'd JSON text). */
char *kms_authz_default_key_policy(const char *account_id);

#endif
