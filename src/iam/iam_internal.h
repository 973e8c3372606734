/* Shared internals of src/iam: the handle, queries over the store's typed layer, ids,
 * name checks, ARNs, sealing, TOTP. Not for use outside src/iam (tests excepted). */
#ifndef KMS_IAM_IAM_INTERNAL_H
#define KMS_IAM_IAM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "iam/iam.h"
#include "store/db.h"
#include "store/store_internal.h"

#define IAM_SECRET_LEN 40
#define IAM_MAX_ITEMS_DEFAULT 100
#define IAM_MAX_ITEMS_LIMIT 1000

/* Verified secrets, by access key id: a keyed BLAKE2b of the secret, so that the sealer (an HSM
 * call) runs once per key and process rather than once per request. A key's secret never
 * changes, so an entry never goes stale; status and expiry are read from the database on every
 * request. */
#define IAM_SECRET_CACHE 64

typedef struct secret_cache_entry {
    char access_key_id[32];
    uint8_t mac[32];
} secret_cache_entry;

struct kms_iam {
    kms_store *store;
    kms_iam_sealer sealer;
    char region[32];
    pthread_mutex_t lock; /* guards the cache */
    uint8_t *cache_key;   /* 32 bytes, kms_secure_alloc */
    secret_cache_entry cache[IAM_SECRET_CACHE];
    size_t cache_next;
    _Atomic uint64_t argon2_verifications; /* for tests: see kms_iam_argon2_count */
};

/* ---- Queries ------------------------------------------------------------------------------
 * Every statement goes through the store's typed layer (store/db.h) on one borrowed connection:
 * each file keeps the SQL of its tables and runs it where it is used, its parameters written as
 * values (kms_db_exec_sql, kms_db_first, kms_db_int, ...: no binding code here). A write is one
 * BEGIN IMMEDIATE transaction that kms_iam_commit ends, bumping the IAM generation in it;
 * kms_iam_end returns the connection (rolling back if not committed). */
typedef struct iam_q {
    kms_iam *iam;
    kms_db_conn *c;
    bool write;
} iam_q;

/* `what` of every IAM statement in errors, and the subject of kms_db_column_copy. */
#define IAM_SQL_WHAT "IAM query failed"
#define IAM_SQL_SUBJECT "an IAM record"

int kms_iam_begin(kms_iam *iam, iam_q *q, bool write) __attribute__((warn_unused_result));
int kms_iam_commit(iam_q *q) __attribute__((warn_unused_result));
/* Commits without bumping the generation: bookkeeping that no policy depends on (last-used
 * dates, MFA steps, sessions). */
int kms_iam_commit_data(iam_q *q) __attribute__((warn_unused_result));
void kms_iam_end(iam_q *q);
/* Copies src into dst of size bytes, truncating (callers copy fields known to fit). */
void kms_iam_copy(char *dst, size_t size, const char *src);

/* ---- Ids, names, ARNs, json, secrets (iam_db.c) ------------------------------------------- */

/* prefix + n random characters of alphabet, NUL-terminated into out (size > strlen(prefix)+n). */
void kms_iam_random_id(char *out, size_t size, const char *prefix, size_t n, const char *alphabet);
#define IAM_B32 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#define IAM_LOWER_ALNUM "abcdefghijklmnopqrstuvwxyz0123456789"
#define IAM_DIGITS "0123456789"

/* Validation of names (`[\w+=,.@-]{1,max}`) and paths ("/" or "/.../", printable, <= 512). what
 * names the parameter in the message. */
int kms_iam_name_check(const char *name, size_t max, const char *what)
    __attribute__((warn_unused_result));
int kms_iam_path_check(const char *path, const char *what) __attribute__((warn_unused_result));
int kms_iam_account_check(const char *account_id) __attribute__((warn_unused_result));

const char *kms_iam_kind_name(kms_iam_kind kind);  /* "user", "group", "role" */
const char *kms_iam_kind_title(kms_iam_kind kind); /* "User", "Group", "Role" */

/* An IAM user, group or role (or root user) as stored. */
typedef struct iam_entity {
    kms_iam_kind kind;
    bool is_root;
    char id[32];
    char account_id[13];
    char name[130];
    char path[520];
    char arn[700];
    int64_t creation_date;
} iam_entity;
/* Sets e->arn from its account, kind, path and name (or the root user's ARN). */
void kms_iam_entity_arn(iam_entity *e);

/* Sets obj[key] = value (stealing it); -1 with KMSInternalException when out of memory. */
int kms_iam_json_set(json_t *obj, const char *key, json_t *value)
    __attribute__((warn_unused_result));
/* The list response {"<member>": [...], "IsTruncated": b, "Marker"?: m}; takes items (even on
 * failure). */
int kms_iam_list_response(json_t *items, const char *member, bool truncated, const char *marker,
                          json_t **out) __attribute__((warn_unused_result));
size_t kms_iam_max_items(size_t max_items);
/* One row of a listing as json: NULL with the error raised. arg: the caller's context. */
typedef json_t *(*iam_row_json_fn)(kms_db_stmt *st, const void *arg);
/* Steps st (kms_db_open'd) to its end, appending row(st, arg) of each row to items; resets st. */
int kms_iam_rows_append(kms_db_stmt *st, iam_row_json_fn row, const void *arg, json_t *items)
    __attribute__((warn_unused_result));

int kms_iam_seal(kms_iam *iam, const char *purpose, const void *pt, size_t n, uint8_t **ct,
                 size_t *ct_len) __attribute__((warn_unused_result));
/* *pt: kms_secure_alloc'd copy with a NUL after the n bytes. */
int kms_iam_unseal(kms_iam *iam, const char *purpose, const void *ct, size_t n, char **pt,
                   size_t *pt_len) __attribute__((warn_unused_result));
/* A random secret access key (IAM_SECRET_LEN characters) in secure memory. */
int kms_iam_new_secret(char **out) __attribute__((warn_unused_result));
/* The access key for a principal inside q's transaction: inserts nothing, only makes the id. */
void kms_iam_new_access_key_id(char out[32], bool session);

/* ---- What users, groups and roles share (iam_entities.c) ---------------------------------- */

/* NoSuchEntity "The user with name X cannot be found." */
int kms_iam_entity_find(iam_q *q, const char *account_id, kms_iam_kind kind, const char *name,
                        iam_entity *out) __attribute__((warn_unused_result));
/* user_name NULL: the account's root user. */
int kms_iam_user_or_root(iam_q *q, const char *account_id, const char *user_name, iam_entity *out)
    __attribute__((warn_unused_result));
/* The rows of one user (sql: ?1 the user id; user_name NULL: the root) as the list response
 * {"<member>": [row(st, NULL) + "UserName" unless the root], "IsTruncated": false}. */
int kms_iam_user_rows_list(kms_iam *iam, const char *account_id, const char *user_name,
                           const char *sql, iam_row_json_fn row, const char *member, json_t **out)
    __attribute__((warn_unused_result));

/* The "User" / "Group" / "Role" object. full: the members GetUser/GetRole add to the list form
 * (boundary, tags, PasswordLastUsed). */
int kms_iam_entity_json(iam_q *q, const iam_entity *e, bool full, json_t **out)
    __attribute__((warn_unused_result));
/* Pages through rows (id, name, path, creation_date, is_root) of a statement bound as ?1 scope,
 * ?2 marker, ?3 path prefix, ?4 limit, into {"<member>": [...], IsTruncated, Marker?}. The
 * marker is the last name returned. */
int kms_iam_entity_page(iam_q *q, const char *sql, const char *account_id, kms_iam_kind kind,
                        const char *scope, const char *marker, const char *path_prefix,
                        size_t max_items, const char *member, json_t **out)
    __attribute__((warn_unused_result));
/* *out = path, or "/" when NULL; validated. */
int kms_iam_path_or_root(const char *path, const char *what, const char **out)
    __attribute__((warn_unused_result));
/* EntityAlreadyExists unless `name` is free for kind in the account. */
int kms_iam_name_free(iam_q *q, const char *account_id, kms_iam_kind kind, const char *name)
    __attribute__((warn_unused_result));
/* GetUser / GetRole in one read query. */
int kms_iam_entity_get(kms_iam *iam, const char *account_id, kms_iam_kind kind, const char *name,
                       json_t **out) __attribute__((warn_unused_result));
/* ListUsers / ListGroups / ListRoles. */
int kms_iam_entity_list(kms_iam *iam, const char *account_id, kms_iam_kind kind,
                        const char *path_prefix, const char *marker, size_t max_items, json_t **out)
    __attribute__((warn_unused_result));
/* DeleteConflict "Cannot delete entity, must <what> first." when the count query (bound ?1 = id)
 * finds rows. */
int kms_iam_conflict_if(iam_q *q, const char *sql, const char *id, const char *what)
    __attribute__((warn_unused_result));
/* DeleteConflict while the entity has inline or attached policies. */
int kms_iam_entity_unused(iam_q *q, const char *entity_id) __attribute__((warn_unused_result));
/* Deletes what hangs on an entity being deleted: its tags, and a user's or role's sessions. */
int kms_iam_entity_forget(iam_q *q, const iam_entity *e) __attribute__((warn_unused_result));

/* Inserts the account row if missing. */
int kms_iam_account_ensure(iam_q *q, const char *account_id, int64_t now)
    __attribute__((warn_unused_result));

/* ---- Inserts inside q's transaction, the checks of the API call included ------------------ */

/* iam_users.c, iam_groups.c, iam_roles.c; each fills *e. */
int kms_iam_user_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                        const char *boundary_arn, const kms_iam_tag *tags, size_t tag_count,
                        int64_t now, iam_entity *e) __attribute__((warn_unused_result));
int kms_iam_group_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                         int64_t now, iam_entity *e) __attribute__((warn_unused_result));
int kms_iam_role_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                        const char *trust_policy, const char *description,
                        int64_t max_session_duration, const char *boundary_arn,
                        const kms_iam_tag *tags, size_t tag_count, int64_t now, iam_entity *e)
    __attribute__((warn_unused_result));

/* iam_policies.c */
int kms_iam_policy_insert(iam_q *q, const char *account_id, const char *path, const char *name,
                          const char *description, const char *document, int64_t now, char id[32])
    __attribute__((warn_unused_result));
/* A managed policy by ARN, visible to account_id (its own or AWS managed). NoSuchEntity. */
int kms_iam_policy_id_by_arn(iam_q *q, const char *account_id, const char *arn, char id[32])
    __attribute__((warn_unused_result));

/* iam_access_keys.c */
/* Inserts an access key for user_id (checks the 2-key limit). */
int kms_iam_access_key_insert(iam_q *q, const iam_entity *user, int64_t now, char access_key_id[32],
                              char **secret) __attribute__((warn_unused_result));

/* iam_passwords.c */
/* The Argon2 password verifications made through iam so far (a test hook: sign-in does the
 * same work for unknown users and wrong passwords). */
uint64_t kms_iam_argon2_count(kms_iam *iam);
/* The hash verified when a user or its login profile does not exist (a test hook). */
const char *kms_iam_argon2_dummy(void);
int kms_iam_password_policy_insert(iam_q *q, const char *account_id,
                                   const kms_iam_password_policy *p)
    __attribute__((warn_unused_result));

/* ---- Tags (iam_tags.c) -------------------------------------------------------------------- */

/* The tags of an entity as a json array [{"Key","Value"}] (empty array when none). */
json_t *kms_iam_tags_json(iam_q *q, const char *entity_id);
int kms_iam_tags_insert(iam_q *q, const char *entity_id, const kms_iam_tag *tags, size_t n)
    __attribute__((warn_unused_result));

/* ---- Attachments and boundaries (iam_attachments.c) --------------------------------------- */

/* The number of managed policies attached to an entity. */
int kms_iam_attached_count(iam_q *q, const char *entity_id, int64_t *n)
    __attribute__((warn_unused_result));
/* Sets (policy_id NULL: clears) the permissions boundary of a user or role. */
int kms_iam_boundary_set_tx(iam_q *q, const iam_entity *e, const char *policy_id)
    __attribute__((warn_unused_result));
/* Attaches a managed policy (by id) to a user, group or role id; the 10-policy quota. */
int kms_iam_attach_tx(iam_q *q, const char *entity_id, const char *policy_id)
    __attribute__((warn_unused_result));
#define IAM_ADMIN_POLICY_ID "ANPAIWMBCKSKIEE64ZLYK"
#define IAM_ADMIN_POLICY_ARN "arn:aws:iam::aws:policy/AdministratorAccess"

/* ---- TOTP and MFA (iam_mfa.c; RFC 6238 over RFC 4226 HOTP, HMAC-SHA1) --------------------- */

/* The code of time step `step` with `digits` digits (6..8) into out (digits+1 bytes). */
int kms_iam_totp_code(const uint8_t *key, size_t key_len, uint64_t step, int digits, char *out)
    __attribute__((warn_unused_result));
/* RFC 4648 base32, no padding; out malloc'd in secure memory. */
int kms_iam_base32_encode(const uint8_t *p, size_t n, char **out)
    __attribute__((warn_unused_result));

/* Verifies a code for the MFA device (serial) assigned to user_id (NULL: any device of the user),
 * refusing reuse, inside q's write transaction. InvalidAuthenticationCode. */
int kms_iam_mfa_verify(iam_q *q, const char *user_id, const char *serial_number, const char *code,
                       int64_t now) __attribute__((warn_unused_result));

/* ---- Organizations and bootstrap (iam_org.c, iam.c) --------------------------------------- */

/* Inside q's transaction: creates an organization managed by account_id (no checks of
 * membership beyond the UNIQUE constraint). */
int kms_iam_org_create_tx(iam_q *q, const char *account_id, int64_t now, char org_id[16],
                          char root_id[16]) __attribute__((warn_unused_result));
/* The ARN of an SCP (AWS managed ones have their own form). Returns 0. */
int kms_iam_scp_arn(const char *org_id, const char *mgmt, const char *policy_id, bool aws_managed,
                    char *out, size_t size);
#define IAM_FULL_ACCESS_SCP "p-FullAWSAccess"
/* Inside q: the root user of account_id (creates it). */
int kms_iam_root_create_tx(iam_q *q, const char *account_id, int64_t now)
    __attribute__((warn_unused_result));

#endif
