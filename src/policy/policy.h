/* The IAM policy language and its evaluation: JSON policy documents in, decisions out.
 *
 * PURE (design.md "Layers"): no I/O, no SQLite, no HSM, no clock (the caller puts
 * aws:CurrentTime / aws:EpochTime in the context). Thread-safe: a compiled policy is immutable
 * and may be shared by any number of threads; evaluation allocates nothing.
 *
 * Policies are parsed, validated and compiled once (kms_policy_compile) and evaluated many times
 * (kms_policy_evaluate). Errors at compile time are KMS_ERR_MALFORMED_POLICY with a message that
 * names the element ("Statement[2].Condition: unknown operator 'StringEqual'"), in the words AWS
 * uses where they are known. */
#ifndef KMS_POLICY_POLICY_H
#define KMS_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* What a document is for: decides whether Principal/NotPrincipal is required (resource-based
 * kinds) or forbidden (identity-based kinds), and the size limit (AWS quotas, in characters). */
typedef enum kms_policy_kind {
    KMS_POLICY_IDENTITY, /* inline or managed identity policy, boundary, session policy: 10,240 */
    KMS_POLICY_SCP,      /* service control policy: 5,120 */
    KMS_POLICY_RESOURCE, /* generic resource-based policy: 20,480 */
    KMS_POLICY_KEY,      /* KMS key policy: 32,768 */
    KMS_POLICY_TRUST,    /* role trust policy: 4,096 */
} kms_policy_kind;

/* OR'ed into a kind by the policy simulators: what AWS's simulator accepts and evaluates though
 * IAM's validation refuses it is accepted, and matches nothing: a statement of a resource-based
 * policy without Principal, an action with nothing after its service prefix. */
#define KMS_POLICY_AS_SIMULATED 0x100
/* OR'ed into KMS_POLICY_IDENTITY for IAM's managed policies (CreatePolicy, CreatePolicyVersion):
 * their Version must be 2012-10-17, as IAM requires of them. */
#define KMS_POLICY_MANAGED 0x200

typedef struct kms_policy kms_policy;

/* Parses and compiles doc (len bytes, need not be NUL-terminated). label names the policy in
 * evaluation results (copied; e.g. "PolicyInputList.1", a policy ARN, "ResourcePolicy").
 * Duplicate JSON keys, unknown elements, a Version other than "2012-10-17" or "2008-10-17"
 * (only "2012-10-17" with KMS_POLICY_MANAGED), a missing Effect, Action/NotAction both or
 * neither, resources IAM refuses (not an ARN, an unknown partition, an IAM or S3 bucket ARN with
 * a region, an IAM ARN of no IAM resource type), unknown condition operators, oversize
 * documents: KMS_ERR_MALFORMED_POLICY, IAM's words first ("Policy document must be version
 * 2012-10-17 or greater."), the element after them. */
int kms_policy_compile(const char *doc, size_t len, kms_policy_kind kind, const char *label,
                       kms_policy **out) __attribute__((warn_unused_result));
void kms_policy_free(kms_policy *policy);
const char *kms_policy_label(const kms_policy *policy);
size_t kms_policy_statement_count(const kms_policy *policy);

/* ---- The request context ----------------------------------------------------------------------
 * The facts of one request: condition keys and their values (a key may have several values:
 * aws:PrincipalTag/x is single-valued, kms:EncryptionContextKeys multi-valued). Keys compare
 * case-insensitively, values case-sensitively. Booleans are "true"/"false", dates ISO 8601
 * or epoch seconds, numbers decimal. The context copies what it is given. */
typedef struct kms_policy_ctx kms_policy_ctx;

kms_policy_ctx *kms_policy_ctx_new(void) __attribute__((warn_unused_result));
/* Room for a context in caller storage: a request's context lives on its caller's stack, without
 * an allocation (only what outgrows it goes to the heap). */
#define KMS_POLICY_CTX_STORAGE 5632
typedef struct kms_policy_ctx_storage {
    _Alignas(max_align_t) unsigned char bytes[KMS_POLICY_CTX_STORAGE];
} kms_policy_ctx_storage;
/* A context in *storage (never NULL); kms_policy_ctx_free then frees only what it allocated. */
kms_policy_ctx *kms_policy_ctx_init(kms_policy_ctx_storage *storage);
void kms_policy_ctx_free(kms_policy_ctx *ctx);
/* Adds one value to key (a second add of the same key makes it multi-valued). */
int kms_policy_ctx_add(kms_policy_ctx *ctx, const char *key, const char *value)
    __attribute__((warn_unused_result));
/* Replaces every value of key by one value. */
int kms_policy_ctx_set(kms_policy_ctx *ctx, const char *key, const char *value)
    __attribute__((warn_unused_result));
/* The first value of key, or NULL. */
const char *kms_policy_ctx_get(const kms_policy_ctx *ctx, const char *key);

/* ---- Evaluation ----------------------------------------------------------------------------- */
typedef enum kms_decision {
    KMS_DECISION_IMPLICIT_DENY = 0, /* "implicitDeny" */
    KMS_DECISION_ALLOWED,           /* "allowed" */
    KMS_DECISION_EXPLICIT_DENY,     /* "explicitDeny" */
} kms_decision;

const char *
kms_policy_decision_name(kms_decision d); /* "allowed", "explicitDeny", "implicitDeny" */

typedef struct kms_policy_list {
    const kms_policy *const *items;
    size_t count;
} kms_policy_list;

/* One request to decide. Everything is borrowed. */
typedef struct kms_eval_input {
    /* The caller. principal_arn is the ARN the request is made as: "arn:aws:iam::A:root",
     * "arn:aws:iam::A:user/path/name", "arn:aws:sts::A:assumed-role/ROLE/SESSION", or a service
     * principal "kms.amazonaws.com" when service is true. role_arn is the role of an assumed-role
     * session ("arn:aws:iam::A:role/path/ROLE"), else NULL. */
    const char *principal_arn;
    const char *role_arn;
    /* The caller's unique id, as aws:userid shows it: a user's "AIDA...", a session's
     * "AROA...:SESSION" (its role's id first); NULL or anything else: none. A policy naming a
     * unique id ("AWS": "AIDA...", what a principal's ARN becomes once it is deleted) matches
     * only the principal whose id it is. */
    const char *principal_id;
    const char *principal_account; /* 12 digits; NULL for a service */
    bool service;
    /* An unsigned request (principal_arn may be NULL): only "*" (or {"AWS": "*"}) and a
     * NotPrincipal that does not list "*" name it; it has no identity-based policies, and no
     * boundary, session policy or SCP applies to it. */
    bool anonymous;
    const char *action;   /* "kms:Decrypt", any service */
    const char *resource; /* an ARN or "*" */
    /* The account that owns the resource; NULL or "" means the principal's own account. */
    const char *resource_account;
    const kms_policy_ctx *ctx; /* may be NULL: no condition keys */

    kms_policy_list identity;          /* identity-based policies of the principal */
    const kms_policy *resource_policy; /* NULL: none */
    const kms_policy *boundary;        /* permissions boundary, NULL: none */
    const kms_policy *session;         /* session policy, NULL: none */
    /* SCPs of the principal's account, one list per level from the organization root down to
     * the account. Every level must allow. scp_levels == 0: not in an organization (or the
     * management account, which SCPs do not restrict). */
    const kms_policy_list *scps;
    size_t scp_levels;
    /* The resource policy is a KMS key policy: it is required (no key policy, no access), and
     * identity-based policies count only where it allows the account's root principal
     * ("arn:aws:iam::ACCOUNT:root") the action. */
    bool key_policy;
} kms_eval_input;

/* A statement that decided or contributed, for simulate's MatchedStatements. */
typedef struct kms_eval_match {
    const kms_policy *policy;
    size_t statement; /* index in the policy's Statement array */
    bool deny;
} kms_eval_match;

#define KMS_EVAL_MAX_MATCHES 16

typedef struct kms_eval_result {
    kms_decision decision;
    /* Why, in AWS's terms, for messages: which gate refused. */
    bool scp_denied;       /* an SCP level did not allow (or denied) */
    bool boundary_denied;  /* the permissions boundary did not allow */
    bool session_denied;   /* the session policy did not allow */
    bool resource_allowed; /* the resource policy alone allowed */
    bool identity_allowed; /* identity-based policies allowed */
    bool reserved;         /* the resource belongs to an AWS service: no policy can allow it */
    size_t match_count;
    kms_eval_match matches[KMS_EVAL_MAX_MATCHES];
} kms_eval_result;

/* Decides one request by AWS's evaluation logic (IAM User Guide, "Policy evaluation logic",
 * same-account and cross-account). result may be NULL. Never fails: input it cannot make sense
 * of is denied. */
kms_decision kms_policy_evaluate(const kms_eval_input *in, kms_eval_result *result);

/* The Sid of a statement ("" when none). */
const char *kms_policy_statement_sid(const kms_policy *policy, size_t statement);

/* ---- Simulation ------------------------------------------------------------------------------
 * The whole of `kmsctl simulate-custom-policy`: input is one JSON object
 *   {"principal": ARN (or "anonymous" or null: an unsigned request), "action": "kms:Decrypt",
 * "resource": ARN or "*", "resourceAccount": "111122223333" (optional; where the ARN names no
 * account), "context": {KEY: "value" or ["v1", "v2"]}, "identityPolicies": [DOC...],
 * "resourcePolicy": DOC, "permissionsBoundary": DOC, "sessionPolicy": DOC,
 * "serviceControlPolicies": [[DOC...] per level, root first], "keyPolicy": true (optional:
 * resourcePolicy is a KMS key policy)} where DOC is a policy document as a JSON object or as a
 * string holding one. Absent members mean no such policy. aws:PrincipalArn, aws:PrincipalAccount,
 * aws:username and aws:userid are derived from the principal unless the context gives them. Output
 * (malloc'd JSON): {"EvalActionName", "EvalResourceName", "EvalDecision": "allowed" |
 * "explicitDeny" | "implicitDeny", "MatchedStatements": [{"SourcePolicyId", "SourcePolicyType",
 * "Sid", "Effect"}...]}. Errors: KMS_ERR_VALIDATION naming the member,
 * KMS_ERR_MALFORMED_POLICY naming the policy and element. */
int kms_policy_simulate(const char *input_json, size_t len, char **output_json)
    __attribute__((warn_unused_result));

/* ---- Deleted principals ----------------------------------------------------------------------
 * IAM User Guide, "Principal" ("If the principal is deleted ... the ARN is replaced by its unique
 * ID"): the document doc (a policy as JSON text) with every Principal / NotPrincipal "AWS" value
 * equal to arn (string or array member) replaced by unique_id. *out is the new document
 * (malloc'd JSON text), or NULL when nothing named arn (doc is then left as it is). A doc that
 * is not a JSON object is left as it is too (it names nobody). */
int kms_policy_principal_replace(const char *doc, const char *arn, const char *unique_id,
                                 char **out) __attribute__((warn_unused_result));
/* "AIDA..." / "AROA...": 4 letters of prefix and 17 upper-case letters or digits (IAM User
 * Guide, "Unique identifiers"). */
bool kms_policy_is_unique_id(const char *s);

/* ---- Helpers the service shares ----------------------------------------------------------- */
/* Whether a condition key, or a policy variable anywhere, of policy (NULL: none) starts with
 * lower_prefix (lower case: "aws:resourcetag/"), so that the service reads facts only some
 * policies use only when one in play does. */
bool kms_policy_mentions(const kms_policy *policy, const char *lower_prefix);
/* IAM wildcard match: '*' any run (also empty), '?' one character. case_insensitive for actions. */
bool kms_policy_glob(const char *pattern, const char *text, bool case_insensitive);
/* The account field of an ARN ("arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE") into out, ""
 * when the ARN has none; -1 when s is not an ARN. */
int kms_policy_arn_account(const char *arn, char out[13]);

#endif
