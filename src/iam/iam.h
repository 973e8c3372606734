/* IAM, STS and Organizations data: identities, credentials, policies as documents, MFA,
 * passwords, sessions, organizations and their service control policies.
 *
 * This module stores and authenticates; it never evaluates a policy (src/policy does, and the
 * service gate decides). It hands the gate every document that applies to a caller
 * (kms_iam_load_docs) and a generation number that changes with any write, so that compiled
 * policies can be cached.
 *
 * Conventions of every function here:
 *  - 0 / -1 with the thread-local error (util/error.h); NULL-returning constructors.
 *  - `account_id` is the account the call acts in (the caller's account, 12 digits). Entities
 *    of another account are invisible: NoSuchEntity.
 *  - user_name NULL means the account's root user where the comment says "root too".
 *  - Records come back as jansson objects already in the AWS response shape (the caller owns the
 *    reference, json_decref): the "User", "Group", "Role", "Policy", "AccessKeyMetadata" ... member
 *    values, dates as epoch seconds (integers). List functions return the whole response
 *    object: {"Users": [...], "IsTruncated": bool, "Marker": "..."(only when truncated)}; the
 *    marker is opaque, pass it back as given; max_items 0 means 100.
 *  - Secrets (secret access keys, session tokens, MFA seeds) never travel in json: they come
 *    back in sodium_malloc'd NUL-terminated strings, freed with
 *    kms_secret_free(p, strlen(p) + 1) or kms_iam_secret_free(p).
 *  - Errors: NoSuchEntity (KMS_ERR_NO_SUCH_ENTITY), EntityAlreadyExists, DeleteConflict,
 *    LimitExceeded, PasswordPolicyViolation, InvalidAuthenticationCode, ValidationException
 *    (names `[\w+=,.@-]{1,64}` (roles/policies: 64/128), paths "/" or "/.../" up to 512),
 *    AccessDenied for Organizations calls from a member account. Names are unique
 *    case-insensitively within an account. */
#ifndef KMS_IAM_IAM_H
#define KMS_IAM_IAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/error.h"

typedef struct kms_iam kms_iam; /* opaque, thread-safe, borrows the store */

/* Encrypts/decrypts small secrets (secret access keys, TOTP seeds) under an internal CMK; the
 * service provides an HSM-backed one, tests a fake. open() returns sodium_malloc'd plaintext
 * freed by the caller with kms_secret_free. `purpose` ("iam:access-key:AKIA...",
 * "iam:mfa:SERIAL") should be bound as associated data so that a ciphertext cannot be moved
 * to another row. ct is malloc'd (free()). */
typedef struct kms_iam_sealer {
    int (*seal)(void *arg, const char *purpose, const uint8_t *pt, size_t n, uint8_t **ct,
                size_t *ct_len);
    int (*open)(void *arg, const char *purpose, const uint8_t *ct, size_t n, uint8_t **pt,
                size_t *pt_len);
    void *arg;
} kms_iam_sealer;

/* region: for ARNs of nothing here (IAM is global) but recorded as an access key's last-used
 * region. The sealer is copied; store and sealer->arg are borrowed. */
kms_iam *kms_iam_new(kms_store *store, const kms_iam_sealer *sealer, const char *region)
    __attribute__((warn_unused_result));
void kms_iam_free(kms_iam *iam);

/* Frees a sodium_malloc'd NUL-terminated secret from this module (NULL is fine). */
void kms_iam_secret_free(char *secret);

/* ---- Identities ----------------------------------------------------------------------------- */

typedef struct kms_identity { /* who is calling, after authentication */
    char type[16];            /* "Root", "IAMUser", "AssumedRole" (CloudTrail userIdentity.type) */
    char arn[512];            /* arn:aws:iam::A:root | arn:aws:iam::A:user/PATH/NAME |
                                 arn:aws:sts::A:assumed-role/ROLE/SESSION */
    char account_id[13];
    char principal_id[160]; /* root: account id; user: AIDA...; session: AROA...:SESSION */
    char user_name[128];    /* IAM user name; "" for root and sessions */
    char role_arn[512];     /* assumed role's ARN, else "" */
    char role_name[128];
    char session_name[128];
    char access_key_id[32]; /* the key the request was signed with ("" if none) */
    bool mfa_authenticated;
    int64_t mfa_auth_time;  /* epoch seconds of the MFA, 0 */
    int64_t session_expiry; /* 0 for long-term keys */
    char *session_policy;   /* session policy document (malloc'd) or NULL */
    size_t tag_count;       /* principal tags (user or role tags) */
    char **tag_keys, **tag_values;
    int64_t session_issued; /* 0 for long-term keys; when the session was created */
    bool console_session;   /* the session of a sign-in (kms_iam_signin_session_mark) */
} kms_identity;

/* Frees what the identity owns and zeroes it; a zeroed identity is fine. */
void kms_iam_identity_clean_up(kms_identity *id);

/* Authentication of programmatic credentials. Errors: KMS_ERR_UNRECOGNIZED_CLIENT (unknown or
 * Inactive key, "The security token included in the request is invalid."),
 * KMS_ERR_BAD_SIGNATURE (wrong secret; compared in constant time), KMS_ERR_EXPIRED_TOKEN
 * (expired or revoked session, missing/wrong session token for an ASIA key).
 * Records last-used (date; service name "kms", region) for long-term keys, at most one write per
 * key per minute. */
int kms_iam_authenticate(kms_iam *iam, const char *access_key_id, const char *secret,
                         const char *session_token, int64_t now, kms_identity *out)
    __attribute__((warn_unused_result));

/* The same, for a caller that verifies a SigV4 signature itself: fills *out and gives the secret
 * access key (sodium_malloc'd, kms_iam_secret_free) without checking one. Same errors, minus
 * BAD_SIGNATURE. Does not record last-used (call kms_iam_access_key_used after the signature
 * verified). */
int kms_iam_credentials_lookup(kms_iam *iam, const char *access_key_id, const char *session_token,
                               int64_t now, kms_identity *out, char **secret)
    __attribute__((warn_unused_result));
int kms_iam_access_key_used(kms_iam *iam, const char *access_key_id, const char *service,
                            int64_t now) __attribute__((warn_unused_result));

/* The identity of an account's root user (used by sign-in and tests). NoSuchEntity if the
 * account has no root user here. */
int kms_iam_root_identity(kms_iam *iam, const char *account_id, kms_identity *out)
    __attribute__((warn_unused_result));
/* The identity of an IAM user (sign-in after the password check). */
int kms_iam_user_identity(kms_iam *iam, const char *account_id, const char *user_name,
                          kms_identity *out) __attribute__((warn_unused_result));

/* ---- Documents for the gate ------------------------------------------------------------------ */

/* Every policy that applies to an identity, as documents, for the gate to compile and cache. */
typedef struct kms_iam_doc {
    char *id; /* policy ARN (managed, default version), or "user/NAME/inline/POLICY",
                 "group/NAME/inline/POLICY", "role/NAME/inline/POLICY" */
    char *document;
} kms_iam_doc;

typedef struct kms_iam_docs {
    kms_iam_doc *identity; /* user inline + user attached managed + each group's inline +
                              attached; for sessions the role's inline + attached; root: none */
    size_t identity_count;
    char *boundary; /* permissions boundary document of the user/role, or NULL */
    /* SCPs from the org root down to the account (scps[0] = root level, last = the account
     * itself); 0 levels when no organization or the management account. */
    kms_iam_doc **scps;
    size_t *scp_counts;
    size_t scp_levels;
    char org_id[40];     /* for aws:PrincipalOrgID, "" */
    uint64_t generation; /* kms_iam_generation() as of these documents (same read snapshot):
                            cache them under this number, never under one read separately */
} kms_iam_docs;

int kms_iam_load_docs(kms_iam *iam, const kms_identity *id, kms_iam_docs *out)
    __attribute__((warn_unused_result));
void kms_iam_docs_clean_up(kms_iam_docs *d);

/* A number that changes whenever any IAM/Organizations data changes (bumped in the same
 * transaction as each write), so the gate can cache compiled policies. */
int kms_iam_generation(kms_iam *iam, uint64_t *out) __attribute__((warn_unused_result));

/* The organization id ("o-...") of an account's organization, "" when none (aws:PrincipalOrgID
 * of a principal of another account). */
/* Every account this home holds (a JSON array of ids, ascending; the caller frees it). */
int kms_iam_account_ids(kms_iam *iam, json_t **out) __attribute__((warn_unused_result));
int kms_iam_account_org(kms_iam *iam, const char *account_id, char org_id[40])
    __attribute__((warn_unused_result));

/* ---- kmsctl init ------------------------------------------------------------------------------
 * Account hardening, in one transaction: the account's root user (no access keys), an
 * organization with this account as management account (root "r-xxxx", org id "o-xxxxxxxxxx"),
 * an "Admins" group with the AWS managed policy AdministratorAccess attached (the managed policy
 * arn:aws:iam::aws:policy/AdministratorAccess = Allow * on * is created if missing), an "admin"
 * user in it, one access key for it (the secret is sodium_malloc'd, kms_iam_secret_free), and the
 * default password policy (min length 14, all four character classes, max age 90, reuse
 * prevention 24). EntityAlreadyExists if the account already has a root user. */
int kms_iam_bootstrap(kms_iam *iam, const char *account_id, int64_t now, char access_key_id[32],
                      char **secret) __attribute__((warn_unused_result));

/* ---- Users, groups, roles (IAM API shapes) --------------------------------------------------- */

typedef struct kms_iam_tag {
    const char *key;
    const char *value;
} kms_iam_tag;

/* CreateUser. path NULL means "/"; boundary_arn (a managed policy ARN) may be NULL. Fills *user
 * (the "User" object: Path, UserName, UserId, Arn, CreateDate, PermissionsBoundary?, Tags?). */
int kms_iam_user_create(kms_iam *iam, const char *account_id, const char *path,
                        const char *user_name, const char *boundary_arn, const kms_iam_tag *tags,
                        size_t tag_count, int64_t now, json_t **user)
    __attribute__((warn_unused_result));
/* GetUser: the "User" object, with PasswordLastUsed when known. */
int kms_iam_user_get(kms_iam *iam, const char *account_id, const char *user_name, json_t **user)
    __attribute__((warn_unused_result));
/* ListUsers: {"Users": [...], "IsTruncated", "Marker"?}. path_prefix NULL means "/". */
int kms_iam_user_list(kms_iam *iam, const char *account_id, const char *path_prefix,
                      const char *marker, size_t max_items, json_t **out)
    __attribute__((warn_unused_result));
/* UpdateUser: new_path and/or new_name (NULL: unchanged). */
int kms_iam_user_update(kms_iam *iam, const char *account_id, const char *user_name,
                        const char *new_path, const char *new_name)
    __attribute__((warn_unused_result));
/* DeleteUser. DeleteConflict while the user has access keys, a login profile, MFA devices,
 * inline or attached policies, or group memberships. */
int kms_iam_user_delete(kms_iam *iam, const char *account_id, const char *user_name)
    __attribute__((warn_unused_result));

/* CreateGroup: the "Group" object (Path, GroupName, GroupId, Arn, CreateDate). */
int kms_iam_group_create(kms_iam *iam, const char *account_id, const char *path,
                         const char *group_name, int64_t now, json_t **group)
    __attribute__((warn_unused_result));
/* GetGroup: {"Group": {...}, "Users": [...], "IsTruncated", "Marker"?}. */
int kms_iam_group_get(kms_iam *iam, const char *account_id, const char *group_name,
                      const char *marker, size_t max_items, json_t **out)
    __attribute__((warn_unused_result));
int kms_iam_group_list(kms_iam *iam, const char *account_id, const char *path_prefix,
                       const char *marker, size_t max_items, json_t **out)
    __attribute__((warn_unused_result));
/* DeleteGroup. DeleteConflict while it has members or policies. */
int kms_iam_group_delete(kms_iam *iam, const char *account_id, const char *group_name)
    __attribute__((warn_unused_result));
/* AddUserToGroup (idempotent, as AWS) / RemoveUserFromGroup (NoSuchEntity if not a member). */
int kms_iam_group_add_user(kms_iam *iam, const char *account_id, const char *group_name,
                           const char *user_name) __attribute__((warn_unused_result));
int kms_iam_group_remove_user(kms_iam *iam, const char *account_id, const char *group_name,
                              const char *user_name) __attribute__((warn_unused_result));
/* ListGroupsForUser: {"Groups": [...], "IsTruncated", "Marker"?}. */
int kms_iam_groups_for_user(kms_iam *iam, const char *account_id, const char *user_name,
                            const char *marker, size_t max_items, json_t **out)
    __attribute__((warn_unused_result));

/* CreateRole. max_session_duration 0 means 3600 (else 3600..43200); trust_policy is stored as
 * given (the caller validated it as a trust policy). description may be NULL. The "Role" object:
 * Path, RoleName, RoleId, Arn, CreateDate, AssumeRolePolicyDocument (plain JSON text, not
 * URL-encoded), Description?, MaxSessionDuration, PermissionsBoundary?, Tags?. */
int kms_iam_role_create(kms_iam *iam, const char *account_id, const char *path,
                        const char *role_name, const char *trust_policy, const char *description,
                        int64_t max_session_duration, const char *boundary_arn,
                        const kms_iam_tag *tags, size_t tag_count, int64_t now, json_t **role)
    __attribute__((warn_unused_result));
int kms_iam_role_get(kms_iam *iam, const char *account_id, const char *role_name, json_t **role)
    __attribute__((warn_unused_result));
int kms_iam_role_list(kms_iam *iam, const char *account_id, const char *path_prefix,
                      const char *marker, size_t max_items, json_t **out)
    __attribute__((warn_unused_result));
/* UpdateRole: description and/or max_session_duration (NULL / 0: unchanged). */
int kms_iam_role_update(kms_iam *iam, const char *account_id, const char *role_name,
                        const char *description, int64_t max_session_duration)
    __attribute__((warn_unused_result));
int kms_iam_role_update_trust(kms_iam *iam, const char *account_id, const char *role_name,
                              const char *trust_policy) __attribute__((warn_unused_result));
/* DeleteRole. DeleteConflict while it has inline or attached policies. Its sessions end. */
int kms_iam_role_delete(kms_iam *iam, const char *account_id, const char *role_name)
    __attribute__((warn_unused_result));

/* What AssumeRole needs to decide (the trust check is the gate's). */
typedef struct kms_iam_role_info {
    char account_id[13];
    char role_name[65];
    char role_id[32]; /* AROA... */
    char arn[600];
    char *trust_policy; /* malloc'd */
    int64_t max_session_duration;
} kms_iam_role_info;
/* By role ARN (arn:aws:iam::A:role/PATH/NAME; the path is not checked, as AWS). NoSuchEntity. */
int kms_iam_role_lookup(kms_iam *iam, const char *role_arn, kms_iam_role_info *out)
    __attribute__((warn_unused_result));
void kms_iam_role_info_clean_up(kms_iam_role_info *info);

/* Tags (TagUser/UntagUser/ListUserTags, TagRole/UntagRole/ListRoleTags). At most 50 per entity
 * (LimitExceeded); tagging an existing key replaces its value. List: {"Tags": [...],
 * "IsTruncated": false}. */
typedef enum kms_iam_kind {
    KMS_IAM_USER,
    KMS_IAM_GROUP,
    KMS_IAM_ROLE,
} kms_iam_kind;
int kms_iam_tags_add(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                     const kms_iam_tag *tags, size_t tag_count) __attribute__((warn_unused_result));
int kms_iam_tags_remove(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                        const char *const *keys, size_t key_count)
    __attribute__((warn_unused_result));
int kms_iam_tags_list(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                      json_t **out) __attribute__((warn_unused_result));

/* ---- Inline policies (Put/Get/Delete/List{User,Group,Role}Policy) --------------------------- */

/* Creates or replaces. The document is stored as given. */
int kms_iam_inline_put(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                       const char *policy_name, const char *document)
    __attribute__((warn_unused_result));
/* {"UserName"|"GroupName"|"RoleName": name, "PolicyName", "PolicyDocument"}. */
int kms_iam_inline_get(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                       const char *policy_name, json_t **out) __attribute__((warn_unused_result));
int kms_iam_inline_delete(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                          const char *policy_name) __attribute__((warn_unused_result));
/* {"PolicyNames": [...], "IsTruncated", "Marker"?}. */
int kms_iam_inline_list(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                        const char *marker, size_t max_items, json_t **out)
    __attribute__((warn_unused_result));

/* ---- Managed policies ---------------------------------------------------------------------------
 * ARNs arn:aws:iam::ACCOUNT:policy/PATH/NAME; AWS managed ones arn:aws:iam::aws:policy/NAME are
 * visible to every account and cannot be changed or deleted by an account (InvalidInput). */

/* CreatePolicy: the "Policy" object (PolicyName, PolicyId "ANPA...", Arn, Path, DefaultVersionId,
 * AttachmentCount, PermissionsBoundaryUsageCount, IsAttachable, Description?, CreateDate,
 * UpdateDate, Tags?). Version "v1" is the default. */
int kms_iam_policy_create(kms_iam *iam, const char *account_id, const char *path,
                          const char *policy_name, const char *description, const char *document,
                          int64_t now, json_t **policy) __attribute__((warn_unused_result));
int kms_iam_policy_get(kms_iam *iam, const char *account_id, const char *policy_arn,
                       json_t **policy) __attribute__((warn_unused_result));
/* ListPolicies. scope "All" (NULL), "AWS" or "Local"; only_attached; path_prefix NULL = "/".
 * {"Policies": [...], "IsTruncated", "Marker"?}. */
int kms_iam_policy_list(kms_iam *iam, const char *account_id, const char *scope, bool only_attached,
                        const char *path_prefix, const char *marker, size_t max_items, json_t **out)
    __attribute__((warn_unused_result));
/* DeletePolicy. DeleteConflict while attached, used as a boundary, or with non-default
 * versions (as AWS). */
int kms_iam_policy_delete(kms_iam *iam, const char *account_id, const char *policy_arn)
    __attribute__((warn_unused_result));
/* CreatePolicyVersion: at most 5 versions (LimitExceeded). The "PolicyVersion" object
 * (VersionId, IsDefaultVersion, CreateDate). */
int kms_iam_policy_version_create(kms_iam *iam, const char *account_id, const char *policy_arn,
                                  const char *document, bool set_as_default, int64_t now,
                                  json_t **version) __attribute__((warn_unused_result));
/* GetPolicyVersion: the "PolicyVersion" object with Document (plain JSON text). */
int kms_iam_policy_version_get(kms_iam *iam, const char *account_id, const char *policy_arn,
                               const char *version_id, json_t **version)
    __attribute__((warn_unused_result));
/* ListPolicyVersions: {"Versions": [...], "IsTruncated": false}. */
int kms_iam_policy_version_list(kms_iam *iam, const char *account_id, const char *policy_arn,
                                json_t **out) __attribute__((warn_unused_result));
/* DeletePolicyVersion: DeleteConflict for the default version. */
int kms_iam_policy_version_delete(kms_iam *iam, const char *account_id, const char *policy_arn,
                                  const char *version_id) __attribute__((warn_unused_result));
int kms_iam_policy_set_default_version(kms_iam *iam, const char *account_id, const char *policy_arn,
                                       const char *version_id) __attribute__((warn_unused_result));

/* Attach/Detach{User,Group,Role}Policy. Attaching twice is a no-op (as AWS); detaching a policy
 * that is not attached: NoSuchEntity. At most 10 attached per entity (LimitExceeded). */
int kms_iam_policy_attach(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                          const char *policy_arn) __attribute__((warn_unused_result));
int kms_iam_policy_detach(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                          const char *policy_arn) __attribute__((warn_unused_result));
/* ListAttached{User,Group,Role}Policies: {"AttachedPolicies": [{"PolicyName","PolicyArn"}...],
 * "IsTruncated", "Marker"?}. */
int kms_iam_policy_list_attached(kms_iam *iam, const char *account_id, kms_iam_kind kind,
                                 const char *name, const char *path_prefix, const char *marker,
                                 size_t max_items, json_t **out)
    __attribute__((warn_unused_result));

/* Put/Delete{User,Role}PermissionsBoundary (kind USER or ROLE). */
int kms_iam_boundary_put(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                         const char *policy_arn) __attribute__((warn_unused_result));
int kms_iam_boundary_delete(kms_iam *iam, const char *account_id, kms_iam_kind kind,
                            const char *name) __attribute__((warn_unused_result));

/* ---- Access keys ------------------------------------------------------------------------------
 */

/* CreateAccessKey: at most 2 per user (LimitExceeded). access_key_id "AKIA" + 16, the secret
 * (40 chars) sodium_malloc'd (kms_iam_secret_free); stored only sealed. *key, if not NULL,
 * receives the "AccessKey" object without SecretAccessKey (UserName, AccessKeyId, Status,
 * CreateDate): the caller adds the secret to its response itself. */
int kms_iam_access_key_create(kms_iam *iam, const char *account_id, const char *user_name,
                              int64_t now, char access_key_id[32], char **secret, json_t **key)
    __attribute__((warn_unused_result));
/* ListAccessKeys: {"AccessKeyMetadata": [...], "IsTruncated": false}. */
int kms_iam_access_key_list(kms_iam *iam, const char *account_id, const char *user_name,
                            json_t **out) __attribute__((warn_unused_result));
/* UpdateAccessKey: status "Active" or "Inactive". */
int kms_iam_access_key_update(kms_iam *iam, const char *account_id, const char *user_name,
                              const char *access_key_id, const char *status)
    __attribute__((warn_unused_result));
int kms_iam_access_key_delete(kms_iam *iam, const char *account_id, const char *user_name,
                              const char *access_key_id) __attribute__((warn_unused_result));
/* GetAccessKeyLastUsed: {"UserName", "AccessKeyLastUsed": {"LastUsedDate"?, "ServiceName",
 * "Region"}} ("N/A" before the first use, as AWS). Any key of the account. */
int kms_iam_access_key_last_used(kms_iam *iam, const char *account_id, const char *access_key_id,
                                 json_t **out) __attribute__((warn_unused_result));

/* ---- The credential report ------------------------------------------------------------------
 * IAM User Guide, "Getting credential reports": a CSV of every user of the account (the root
 * user first, as <root_account>), kept in the database per account. */

/* GenerateCredentialReport: builds the report at once and keeps it (replacing the last one);
 * *out = {"State": "COMPLETE", "Description"}. */
int kms_iam_credential_report_generate(kms_iam *iam, const char *account_id, int64_t now,
                                       json_t **out) __attribute__((warn_unused_result));
/* GetCredentialReport: *out = {"Content": base64 of the CSV, "ReportFormat": "text/csv",
 * "GeneratedTime": epoch seconds}. KMS_ERR_REPORT_NOT_PRESENT before the first generation,
 * KMS_ERR_REPORT_EXPIRED when the report is more than 4 hours older than now. */
int kms_iam_credential_report_get(kms_iam *iam, const char *account_id, int64_t now, json_t **out)
    __attribute__((warn_unused_result));

/* ---- Passwords --------------------------------------------------------------------------------
 */

typedef struct kms_iam_password_policy {
    int64_t minimum_password_length; /* 6..128 */
    bool require_symbols;
    bool require_numbers;
    bool require_uppercase_characters;
    bool require_lowercase_characters;
    bool allow_users_to_change_password;
    int64_t max_password_age;          /* days, 0: never expires (else 1..1095) */
    int64_t password_reuse_prevention; /* 0: off (else 1..24) */
    bool hard_expiry;
} kms_iam_password_policy;

/* The password policy kms_iam_bootstrap sets (what `kmsctl advisor` compares against). */
void kms_iam_password_policy_default(kms_iam_password_policy *out);
/* UpdateAccountPasswordPolicy (replaces all of it). */
int kms_iam_password_policy_put(kms_iam *iam, const char *account_id,
                                const kms_iam_password_policy *policy)
    __attribute__((warn_unused_result));
/* GetAccountPasswordPolicy: NoSuchEntity when the account has none. */
int kms_iam_password_policy_get(kms_iam *iam, const char *account_id, kms_iam_password_policy *out)
    __attribute__((warn_unused_result));
int kms_iam_password_policy_delete(kms_iam *iam, const char *account_id)
    __attribute__((warn_unused_result));

/* CreateLoginProfile (user_name NULL: root too). The password is checked against the account's
 * password policy (PasswordPolicyViolation) and stored as an Argon2id hash. EntityAlreadyExists
 * if the user has one. *profile, if not NULL: the "LoginProfile" object (UserName, CreateDate,
 * PasswordResetRequired). */
int kms_iam_login_profile_create(kms_iam *iam, const char *account_id, const char *user_name,
                                 const char *password, bool reset_required, int64_t now,
                                 json_t **profile) __attribute__((warn_unused_result));
int kms_iam_login_profile_get(kms_iam *iam, const char *account_id, const char *user_name,
                              json_t **profile) __attribute__((warn_unused_result));
/* UpdateLoginProfile: password NULL keeps it; reset_required < 0 keeps the flag. */
int kms_iam_login_profile_update(kms_iam *iam, const char *account_id, const char *user_name,
                                 const char *password, int reset_required, int64_t now)
    __attribute__((warn_unused_result));
int kms_iam_login_profile_delete(kms_iam *iam, const char *account_id, const char *user_name)
    __attribute__((warn_unused_result));
/* ChangePassword by the user: the old password must verify (AccessDenied "The old password is
 * incorrect."); the new one obeys the policy and the reuse prevention; clears
 * PasswordResetRequired. */
int kms_iam_password_change(kms_iam *iam, const char *account_id, const char *user_name,
                            const char *old_password, const char *new_password, int64_t now)
    __attribute__((warn_unused_result));

/* Sign-in check (user_name NULL: root). AccessDenied for an unknown user, no login profile or a
 * wrong password (one message for all, and the same Argon2 work for all). Throttling is the
 * caller's: kms_iam_signin_begin first. On success *must_change tells that the password must be
 * changed before anything else (reset required, or older than the policy's max age: expired);
 * *mfa_required that the user has an MFA device (then kms_iam_mfa_check). Records
 * PasswordLastUsed. */
int kms_iam_password_check(kms_iam *iam, const char *account_id, const char *user_name,
                           const char *password, int64_t now, bool *must_change, bool *mfa_required)
    __attribute__((warn_unused_result));

/* ---- Sign-in throttling (iam_signin.c) -------------------------------------------------------
 * As the AWS console throttles repeated failed sign-ins: USER_FAILURES failed sign-ins for one
 * user name (known or not), or SOURCE_FAILURES from one source address, within WINDOW seconds
 * of the first of them, and further sign-ins are refused until the window has passed. The
 * counters live in the database, shared by every process of the home. */
#define KMS_IAM_SIGNIN_USER_FAILURES 5
#define KMS_IAM_SIGNIN_SOURCE_FAILURES 20
#define KMS_IAM_SIGNIN_WINDOW 900

/* Before a sign-in's password is checked (user_name NULL: root; source NULL: none): refuses
 * with LimitExceeded, naming the time to try again (ISO 8601), when the user or the source has
 * used up its failures; else counts the attempt as a failure until kms_iam_signin_succeed. */
int kms_iam_signin_begin(kms_iam *iam, const char *account_id, const char *user_name,
                         const char *source, int64_t now) __attribute__((warn_unused_result));
/* After a successful sign-in: clears the user's failures and forgives the source this attempt. */
int kms_iam_signin_succeed(kms_iam *iam, const char *account_id, const char *user_name,
                           const char *source) __attribute__((warn_unused_result));
/* Marks the session access_key_id (a user's or root's GetSessionToken session) as a sign-in's:
 * calls made with it are recorded with sessionCredentialFromConsole. */
#define KMS_IAM_SIGNIN_SESSION_NAME "signin"
int kms_iam_signin_session_mark(kms_iam *iam, const char *access_key_id)
    __attribute__((warn_unused_result));

/* ---- MFA (virtual TOTP devices, RFC 6238) ---------------------------------------------------- */

/* CreateVirtualMFADevice: serial arn:aws:iam::A:mfa/PATH/NAME in *serial_number (malloc'd,
 * free()); the Base32 seed (sodium_malloc'd, kms_iam_secret_free); the seed is stored only
 * sealed. */
int kms_iam_mfa_create(kms_iam *iam, const char *account_id, const char *path,
                       const char *device_name, int64_t now, char **serial_number,
                       char **base32_seed) __attribute__((warn_unused_result));
/* EnableMFADevice (user_name NULL: root): two consecutive codes (code1 for the step before
 * code2's). InvalidAuthenticationCode; EntityAlreadyExists if the device is assigned; at most 8
 * devices per user (LimitExceeded). */
int kms_iam_mfa_enable(kms_iam *iam, const char *account_id, const char *user_name,
                       const char *serial_number, const char *code1, const char *code2, int64_t now)
    __attribute__((warn_unused_result));
/* DeactivateMFADevice: unassigns it (the device remains, as AWS). */
int kms_iam_mfa_deactivate(kms_iam *iam, const char *account_id, const char *user_name,
                           const char *serial_number) __attribute__((warn_unused_result));
/* ListMFADevices (user_name NULL: root): {"MFADevices": [{"UserName"?, "SerialNumber",
 * "EnableDate"}], "IsTruncated": false}. */
int kms_iam_mfa_list(kms_iam *iam, const char *account_id, const char *user_name, json_t **out)
    __attribute__((warn_unused_result));
/* ListVirtualMFADevices: status "Assigned", "Unassigned" or "Any" (NULL).
 * {"VirtualMFADevices": [{"SerialNumber", "User"?: {...}, "EnableDate"?}], "IsTruncated": false}.
 */
int kms_iam_mfa_list_virtual(kms_iam *iam, const char *account_id, const char *status, json_t **out)
    __attribute__((warn_unused_result));
/* DeleteVirtualMFADevice: DeleteConflict while assigned. */
int kms_iam_mfa_delete(kms_iam *iam, const char *account_id, const char *serial_number)
    __attribute__((warn_unused_result));
/* A code for the user's (NULL: root's) MFA device: serial_number NULL means any enabled device of
 * the user. InvalidAuthenticationCode for a wrong code, a code already used, or no device. */
int kms_iam_mfa_check(kms_iam *iam, const char *account_id, const char *user_name,
                      const char *serial_number, const char *code, int64_t now)
    __attribute__((warn_unused_result));

/* ---- STS ----------------------------------------------------------------------------------------
 */

typedef struct kms_iam_credentials {
    char access_key_id[32];  /* "ASIA..." */
    char *secret_access_key; /* sodium_malloc'd */
    char *session_token;     /* sodium_malloc'd; stored only as its SHA-256 */
    int64_t expiration;      /* epoch seconds */
    /* AssumeRole only: AssumedRoleUser. */
    char assumed_role_id[160]; /* AROA...:SESSION */
    char assumed_role_arn[600];
} kms_iam_credentials;
void kms_iam_credentials_clean_up(kms_iam_credentials *c); /* wipes the secrets */

/* AssumeRole data path. The caller (the gate) has checked the role's trust policy and the
 * caller's sts:AssumeRole permission. session_name `[\w+=,.@-]{2,64}`; duration 0 means 3600,
 * else 900..role's MaxSessionDuration (Validation); session_policy stored with the session (may
 * be NULL). serial_number/token_code: both or neither; when given the code must be valid for
 * that device of the caller (InvalidAuthenticationCode, also when the device is not the
 * caller's) and the session is mfa_authenticated. Role chaining (caller is an assumed role)
 * caps the duration at 3600 as AWS. */
int kms_iam_assume_role(kms_iam *iam, const kms_identity *caller, const char *role_arn,
                        const char *session_name, int64_t duration, const char *session_policy,
                        const char *serial_number, const char *token_code, int64_t now,
                        kms_iam_credentials *out) __attribute__((warn_unused_result));
/* GetSessionToken for a user or root with long-term keys (AccessDenied from a session).
 * duration 0 means 43200, else 900..43200 (root: 900..3600). MFA as above. */
int kms_iam_session_token(kms_iam *iam, const kms_identity *caller, int64_t duration,
                          const char *serial_number, const char *token_code, int64_t now,
                          kms_iam_credentials *out) __attribute__((warn_unused_result));
/* Drops expired sessions (housekeeping; authenticate refuses them anyway). */
int kms_iam_sessions_purge(kms_iam *iam, int64_t now) __attribute__((warn_unused_result));

/* ---- Organizations ---------------------------------------------------------------------------
 * Ids as AWS: "o-" + 10, root "r-" + 4, OU "ou-RRRR-" + 8, policy "p-" + 8, account 12 digits.
 * Every call except DescribeOrganization comes from the management account (AccessDenied
 * otherwise). Error mapping of Organizations exceptions onto our codes:
 * AWSOrganizationsNotInUse -> NoSuchEntity ("Your account is not a member of an organization."),
 * AlreadyInOrganization / DuplicateOrganizationalUnit / DuplicatePolicy(Attachment) ->
 * EntityAlreadyExists, ParentNotFound / TargetNotFound / PolicyNotFound / ChildNotFound /
 * PolicyNotAttached / AccountNotFound -> NoSuchEntity, OrganizationalUnitNotEmpty /
 * PolicyInUse -> DeleteConflict, ConstraintViolation -> LimitExceeded. */

/* CreateOrganization (feature set ALL) with account_id as management account; the root gets
 * FullAWSAccess. The "Organization" object (Id, Arn, FeatureSet, MasterAccountArn,
 * MasterAccountId, MasterAccountEmail, AvailablePolicyTypes). */
int kms_iam_org_create(kms_iam *iam, const char *account_id, int64_t now, json_t **org)
    __attribute__((warn_unused_result));
/* DescribeOrganization from any member account. */
int kms_iam_org_describe(kms_iam *iam, const char *account_id, json_t **org)
    __attribute__((warn_unused_result));
/* DeleteOrganization: only with no member accounts but the management one (DeleteConflict). */
int kms_iam_org_delete(kms_iam *iam, const char *account_id) __attribute__((warn_unused_result));
/* ListRoots: {"Roots": [{"Id", "Arn", "Name": "Root", "PolicyTypes": [...]}]}. */
int kms_iam_org_list_roots(kms_iam *iam, const char *account_id, json_t **out)
    __attribute__((warn_unused_result));
/* CreateOrganizationalUnit under a root or OU: the "OrganizationalUnit" object (Id, Arn, Name). */
int kms_iam_org_ou_create(kms_iam *iam, const char *account_id, const char *parent_id,
                          const char *name, int64_t now, json_t **ou)
    __attribute__((warn_unused_result));
int kms_iam_org_ou_describe(kms_iam *iam, const char *account_id, const char *ou_id, json_t **ou)
    __attribute__((warn_unused_result));
/* ListOrganizationalUnitsForParent: {"OrganizationalUnits": [...]} (no paging). */
int kms_iam_org_ou_list(kms_iam *iam, const char *account_id, const char *parent_id, json_t **out)
    __attribute__((warn_unused_result));
/* DeleteOrganizationalUnit: DeleteConflict unless empty (no accounts, no child OUs). */
int kms_iam_org_ou_delete(kms_iam *iam, const char *account_id, const char *ou_id)
    __attribute__((warn_unused_result));
/* CreateAccount: a new random 12-digit account under the root, its root user, the role
 * OrganizationAccountAccessRole (or role_name if not NULL) trusting the management account's
 * root with AdministratorAccess attached, FullAWSAccess attached. Completes at once: the
 * "CreateAccountStatus" object (Id "car-...", AccountName, State "SUCCEEDED", AccountId,
 * RequestedTimestamp, CompletedTimestamp). */
int kms_iam_org_account_create(kms_iam *iam, const char *account_id, const char *email,
                               const char *account_name, const char *role_name, int64_t now,
                               json_t **status) __attribute__((warn_unused_result));
/* ListAccounts / ListAccountsForParent (parent_id NULL: all): {"Accounts": [{"Id", "Arn",
 * "Email", "Name", "Status", "JoinedMethod", "JoinedTimestamp"}]}. */
int kms_iam_org_account_list(kms_iam *iam, const char *account_id, const char *parent_id,
                             json_t **out) __attribute__((warn_unused_result));
/* DescribeAccount: the "Account" object. */
int kms_iam_org_account_describe(kms_iam *iam, const char *account_id, const char *target_account,
                                 json_t **out) __attribute__((warn_unused_result));
/* MoveAccount: source_parent must be the account's parent (NoSuchEntity "SourceParentNotFound"
 * otherwise). */
int kms_iam_org_account_move(kms_iam *iam, const char *account_id, const char *target_account,
                             const char *source_parent_id, const char *destination_parent_id)
    __attribute__((warn_unused_result));
/* ListParents: {"Parents": [{"Id", "Type": "ROOT"|"ORGANIZATIONAL_UNIT"}]}. child: account or
 * OU id. */
int kms_iam_org_list_parents(kms_iam *iam, const char *account_id, const char *child_id,
                             json_t **out) __attribute__((warn_unused_result));

/* Organizations CreatePolicy (type SERVICE_CONTROL_POLICY only; content stored as given):
 * the "Policy" object {"PolicySummary": {Id, Arn, Name, Description, Type, AwsManaged},
 * "Content"}. */
int kms_iam_org_policy_create(kms_iam *iam, const char *account_id, const char *name,
                              const char *description, const char *type, const char *content,
                              json_t **policy) __attribute__((warn_unused_result));
int kms_iam_org_policy_describe(kms_iam *iam, const char *account_id, const char *policy_id,
                                json_t **policy) __attribute__((warn_unused_result));
/* UpdatePolicy: name/description/content, NULL keeps. AWS managed: AccessDenied. */
int kms_iam_org_policy_update(kms_iam *iam, const char *account_id, const char *policy_id,
                              const char *name, const char *description, const char *content,
                              json_t **policy) __attribute__((warn_unused_result));
/* ListPolicies (filter SERVICE_CONTROL_POLICY): {"Policies": [PolicySummary...]}. */
int kms_iam_org_policy_list(kms_iam *iam, const char *account_id, const char *filter, json_t **out)
    __attribute__((warn_unused_result));
/* ListPoliciesForTarget (root, OU or account id): {"Policies": [PolicySummary...]}. */
int kms_iam_org_policy_list_for_target(kms_iam *iam, const char *account_id, const char *target_id,
                                       const char *filter, json_t **out)
    __attribute__((warn_unused_result));
/* ListTargetsForPolicy: {"Targets": [{"TargetId", "Arn", "Name", "Type"}]}. */
int kms_iam_org_policy_list_targets(kms_iam *iam, const char *account_id, const char *policy_id,
                                    json_t **out) __attribute__((warn_unused_result));
/* AttachPolicy (EntityAlreadyExists if attached) / DetachPolicy (NoSuchEntity if not attached;
 * LimitExceeded when it would leave the target with no SCP, as AWS's ConstraintViolation). */
int kms_iam_org_policy_attach(kms_iam *iam, const char *account_id, const char *policy_id,
                              const char *target_id) __attribute__((warn_unused_result));
int kms_iam_org_policy_detach(kms_iam *iam, const char *account_id, const char *policy_id,
                              const char *target_id) __attribute__((warn_unused_result));
/* DeletePolicy: DeleteConflict while attached; AWS managed: AccessDenied. */
int kms_iam_org_policy_delete(kms_iam *iam, const char *account_id, const char *policy_id)
    __attribute__((warn_unused_result));

#endif
