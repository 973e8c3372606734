/* Metadata of the key store in SQLite (WAL, foreign keys on, schema version with migrations).
 * No key material is ever stored here: only ids, states, dates, descriptions, aliases and the
 * public halves of asymmetric keys.
 *
 * A kms_store is thread-safe: threads may call it at once (it keeps a small pool of
 * connections with prepared statements); several processes may open the same database (WAL,
 * busy timeout). Errors: NotFoundException, AlreadyExistsException where named; a missing,
 * unreadable or corrupt database gives KMS_ERR_HOME with a message naming the file. */
#ifndef KMS_STORE_STORE_H
#define KMS_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct kms_store kms_store;

#define KMS_STORE_SCHEMA_VERSION 8

/* create=true: the file must not exist; it is created with the current schema.
 * create=false: the file must exist; older schemas are migrated in one transaction. */
kms_store *kms_store_open(const char *path, bool create) __attribute__((warn_unused_result));
void kms_store_close(kms_store *store);
/* Nanoseconds callers have waited for a connection or the write lock, in all (kms_db_wait_ns). */
uint64_t kms_store_wait_ns(kms_store *store);

typedef struct kms_key_record {
    char key_id[37];
    char account_id[13];
    char *description;        /* malloc'd, never NULL after a get ("" when empty) */
    char key_spec[24];        /* SYMMETRIC_DEFAULT, HMAC_256, RSA_2048, ECC_NIST_P256, ... */
    char key_usage[24];       /* ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC */
    char key_state[24];       /* Enabled, Disabled, PendingDeletion */
    char origin[16];          /* AWS_KMS */
    int64_t creation_date;    /* seconds since the epoch */
    int64_t deletion_date;    /* 0 unless PendingDeletion */
    int pending_window_days;  /* 0 unless PendingDeletion */
    uint32_t current_version; /* newest key material version, from 1 */
    uint8_t *public_key;      /* DER SubjectPublicKeyInfo (malloc'd) or NULL */
    size_t public_key_len;
    int64_t policy_version; /* bumped by every kms_store_key_policy_put; from 1 */
    char *policy;           /* key policy (malloc'd): stored by kms_store_key_insert (NULL
                               stores ""), never loaded by kms_store_key_get (stays NULL):
                               kms_store_key_policy_get reads it, the version tells a cache
                               whether it changed */
} kms_key_record;

void kms_key_record_clean_up(kms_key_record *rec);

/* Inserts the key and its material version 1 in one transaction. AlreadyExistsException if the
 * key id exists. */
int kms_store_key_insert(kms_store *store, const kms_key_record *rec)
    __attribute__((warn_unused_result));
/* Fills *out (caller cleans it up). NotFoundException if there is no such key. */
int kms_store_key_get(kms_store *store, const char *key_id, kms_key_record *out)
    __attribute__((warn_unused_result));
int kms_store_key_set_description(kms_store *store, const char *key_id, const char *description)
    __attribute__((warn_unused_result));
/* Sets key_state, deletion_date and pending_window_days together. NotFoundException. */
int kms_store_key_set_state(kms_store *store, const char *key_id, const char *state,
                            int64_t deletion_date, int pending_window_days)
    __attribute__((warn_unused_result));

/* The key policy and its version. doc is malloc'd ("" when none was set). NotFoundException. */
int kms_store_key_policy_get(kms_store *store, const char *key_id, char **doc, int64_t *version)
    __attribute__((warn_unused_result));
/* Replaces the key policy and bumps its version. NotFoundException. */
int kms_store_key_policy_put(kms_store *store, const char *key_id, const char *doc)
    __attribute__((warn_unused_result));
/* fn(arg, doc, &new_doc) for every key policy (fn parses each: JSON may escape an ARN, so no
 * search of the text can narrow the set): *new_doc is a malloc'd
 * replacement (taken over) or NULL to leave it. In one transaction: every replacement is stored
 * (its version bumped, so cached compilations are dropped) or none. *count (may be NULL): how
 * many were replaced. */
typedef int (*kms_store_policy_rewrite_fn)(void *arg, const char *doc, char **new_doc);
int kms_store_key_policy_rewrite(kms_store *store, kms_store_policy_rewrite_fn fn, void *arg,
                                 size_t *count) __attribute__((warn_unused_result));

/* Calls cb for each key id in ascending order, starting after `marker` (NULL: from the start),
 * at most `limit` ids. *truncated tells whether more follow. cb returning non-zero stops the
 * walk and the call returns -1 (cb raised the error). */
typedef int (*kms_store_key_cb)(void *arg, const char *key_id);
int kms_store_key_list(kms_store *store, const char *marker, size_t limit, kms_store_key_cb cb,
                       void *arg, bool *truncated) __attribute__((warn_unused_result));

typedef struct kms_alias_record {
    char alias_name[257]; /* "alias/..." */
    char key_id[37];
    int64_t creation_date;
    int64_t last_updated_date;
} kms_alias_record;

/* AlreadyExistsException if the alias exists; NotFoundException if the key does not. */
int kms_store_alias_create(kms_store *store, const char *alias_name, const char *key_id,
                           int64_t now) __attribute__((warn_unused_result));
/* Points an existing alias at another key. NotFoundException if either is missing. */
int kms_store_alias_update(kms_store *store, const char *alias_name, const char *key_id,
                           int64_t now) __attribute__((warn_unused_result));
int kms_store_alias_delete(kms_store *store, const char *alias_name)
    __attribute__((warn_unused_result));
/* NotFoundException if there is no such alias. */
int kms_store_alias_get(kms_store *store, const char *alias_name, kms_alias_record *out)
    __attribute__((warn_unused_result));
/* Calls cb for each alias (ascending by name) after `marker`, at most `limit`; key_id filters
 * to one key when not NULL. *truncated as for kms_store_key_list. */
typedef int (*kms_store_alias_cb)(void *arg, const kms_alias_record *alias);
int kms_store_alias_list(kms_store *store, const char *key_id, const char *marker, size_t limit,
                         kms_store_alias_cb cb, void *arg, bool *truncated)
    __attribute__((warn_unused_result));

/* ---- Grants --------------------------------------------------------------------------------
 * A grant belongs to its key and disappears with it (ON DELETE CASCADE). */
typedef struct kms_grant_record {
    char grant_id[80];
    char key_id[37];
    char issuing_account[13];
    char *name;               /* malloc'd, "" when none (NULL on insert means "") */
    char *grantee_principal;  /* malloc'd ARN or service principal */
    char *retiring_principal; /* malloc'd, "" when none */
    char *operations;         /* malloc'd, comma-separated operation names ("Decrypt,Encrypt") */
    char *constraints;        /* malloc'd JSON ({"EncryptionContextSubset": {...}}) or "" */
    int64_t creation_date;
    uint8_t token_hash[32]; /* SHA-256 of the grant token */
    bool has_token_hash;
} kms_grant_record;

void kms_grant_record_clean_up(kms_grant_record *rec);

/* AlreadyExistsException if the grant id exists, NotFoundException if the key does not. */
int kms_store_grant_insert(kms_store *store, const kms_grant_record *rec)
    __attribute__((warn_unused_result));
/* Fills *out (caller cleans it up). NotFoundException. */
int kms_store_grant_get(kms_store *store, const char *grant_id, kms_grant_record *out)
    __attribute__((warn_unused_result));
/* NotFoundException if there is no such grant. */
int kms_store_grant_delete(kms_store *store, const char *grant_id)
    __attribute__((warn_unused_result));

/* cb gets each grant (borrowed for the call). Returning non-zero stops the walk and the call
 * returns -1 (cb raised the error). Callbacks run after the connection went back to the pool:
 * they may call the store. */
typedef int (*kms_store_grant_cb)(void *arg, const kms_grant_record *grant);
/* The grants of a key, ascending by grant id, after marker (NULL: from the start), at most
 * limit; *truncated as for kms_store_key_list. */
int kms_store_grant_list(kms_store *store, const char *key_id, const char *marker, size_t limit,
                         kms_store_grant_cb cb, void *arg, bool *truncated)
    __attribute__((warn_unused_result));
/* The grants that retiring_principal may retire (ListRetirableGrants), by grant id. */
int kms_store_grant_list_retirable(kms_store *store, const char *retiring_principal,
                                   const char *marker, size_t limit, kms_store_grant_cb cb,
                                   void *arg, bool *truncated) __attribute__((warn_unused_result));
/* Every grant naming principal as its grantee or retiring principal names replacement instead
 * (one transaction). *count (may be NULL): how many grants changed. */
int kms_store_grant_principal_replace(kms_store *store, const char *principal,
                                      const char *replacement, int64_t *count)
    __attribute__((warn_unused_result));
/* Every grant of key_id for grantee_principal (the gate asks per request when the policies did
 * not allow; served by an index). */
int kms_store_grant_find(kms_store *store, const char *key_id, const char *grantee_principal,
                         kms_store_grant_cb cb, void *arg) __attribute__((warn_unused_result));

/* ---- Rotation, usage and deletion (store_rotation.c) ---------------------------------------
 * A rotation makes version current_version + 1 in three steps: claim it here, generate its
 * material in the HSM, commit it here. The claim is the lock: one claimant per version, so two
 * schedulers, or a scheduler and RotateKeyOnDemand, never make the same version twice; a claim
 * older than stale_before is abandoned (its claimant crashed) and may be taken over. Until the
 * commit the key keeps encrypting under its current version: a crash leaves the old version or
 * the new one in use, never half of both. */
#define KMS_ROTATION_ON_DEMAND_MAX 10

typedef struct kms_key_rotation {
    int period_days;          /* automatic rotation period; 0 = automatic rotation off */
    int64_t next_rotation;    /* when it is due (0 when off) */
    uint32_t current_version; /* as in kms_key_record */
    uint32_t claim;           /* the version a rotation under way makes; 0 = none */
    int64_t claim_date;       /* when it was claimed (0 = none) */
    uint32_t claimed_max;     /* the highest version ever claimed (0 = none) */
    char claim_type[16];      /* AUTOMATIC or ON_DEMAND */
    unsigned on_demand_count; /* versions made by RotateKeyOnDemand */
    int64_t encryptions;      /* counted (reserved) encryptions under current_version */
} kms_key_rotation;

/* The version the next rotation of a key makes: one above every version it has or had claimed. */
static inline uint32_t kms_rotation_next_version(const kms_key_rotation *rot)
{
    return (rot->current_version > rot->claimed_max ? rot->current_version : rot->claimed_max) + 1;
}

/* NotFoundException if the key does not exist. */
int kms_store_rotation_get(kms_store *store, const char *key_id, kms_key_rotation *out)
    __attribute__((warn_unused_result));
/* Sets the automatic rotation period (0 turns it off) and the next due date. NotFound. */
int kms_store_rotation_set(kms_store *store, const char *key_id, int period_days,
                           int64_t next_rotation) __attribute__((warn_unused_result));

typedef struct kms_rotation_claim {
    uint32_t version; /* the version to make: kms_rotation_next_version */
    const char *type; /* "AUTOMATIC" or "ON_DEMAND" */
    int64_t now;
    int64_t stale_before; /* a claim made before this may be taken over */
    int64_t due_before;   /* > 0: only if automatic rotation is on and due at or before this */
    int64_t usage_limit;  /* > 0: only if the current version counted at least this many */
} kms_rotation_claim;
/* Claims the rotation (key Enabled, version = kms_rotation_next_version, no live claim or a
 * stale one, the conditions above, and for ON_DEMAND fewer than KMS_ROTATION_ON_DEMAND_MAX
 * on-demand versions). *won false when any condition fails (the caller reads the state to say
 * which). Versions are never claimed twice: taking over a stale claim of version v claims v + 1,
 * so the stalled claimant's late steps under v's label can never touch a version in use. The
 * versions a key has may therefore have gaps. */
int kms_store_rotation_claim(kms_store *store, const char *key_id, const kms_rotation_claim *cl,
                             bool *won) __attribute__((warn_unused_result));
/* Commits the claimed version: current_version = version, the version's row (rotation type,
 * date), the claim cleared and, for an AUTOMATIC rotation while automatic rotation is on, the
 * next due date set to now + period (once, however many periods were missed).
 * KMSInvalidStateException if the claim is no longer ours (taken over). */
int kms_store_rotation_commit(kms_store *store, const char *key_id, uint32_t version,
                              const char *type, int64_t now) __attribute__((warn_unused_result));
/* Gives a claim up (the HSM step failed); its version is not made again. No error if it is no
 * longer there. */
int kms_store_rotation_release(kms_store *store, const char *key_id, uint32_t version)
    __attribute__((warn_unused_result));

/* The versions made by rotations (2, 3, ...), ascending, after `after` (0: from the start), at
 * most limit; *truncated as for kms_store_key_list. */
typedef int (*kms_store_rotation_cb)(void *arg, uint32_t version, int64_t date, const char *type);
int kms_store_rotation_list(kms_store *store, const char *key_id, uint32_t after, size_t limit,
                            kms_store_rotation_cb cb, void *arg, bool *truncated)
    __attribute__((warn_unused_result));

/* Adds n to the encryptions counted for the version; *total receives the new count. */
int kms_store_usage_add(kms_store *store, const char *key_id, uint32_t version, int64_t n,
                        int64_t *total) __attribute__((warn_unused_result));

/* Work due at `now`, for the scheduler, in key id order; each key at most once per kind. */
typedef enum kms_due_kind {
    KMS_DUE_ROTATION,  /* automatic rotation on, Enabled, next_rotation <= now */
    KMS_DUE_USAGE,     /* Enabled symmetric key whose current version counted >= usage_limit */
    KMS_DUE_ABANDONED, /* an Enabled key's claim made before stale_before: a crashed rotation */
    KMS_DUE_DELETION,  /* PendingDeletion whose deletion_date <= now */
} kms_due_kind;
typedef int (*kms_store_due_cb)(void *arg, kms_due_kind kind, const char *key_id, int64_t due);
int kms_store_due_list(kms_store *store, int64_t now, int64_t usage_limit, int64_t stale_before,
                       kms_store_due_cb cb, void *arg) __attribute__((warn_unused_result));
/* The earliest due date after now (rotation or deletion), 0 if none. */
int kms_store_next_due(kms_store *store, int64_t now, int64_t *when)
    __attribute__((warn_unused_result));

/* The end of a deletion window: in one transaction the key's aliases, grants, tags, versions and
 * row go, and deleted_keys remembers the id and date. NotFoundException if the key is gone
 * (another scheduler deleted it); KMSInvalidStateException unless it is PendingDeletion. */
int kms_store_key_delete(kms_store *store, const char *key_id, int64_t now)
    __attribute__((warn_unused_result));
/* CancelKeyDeletion: PendingDeletion -> Disabled, only while the window is open (deletion date
 * after now), so that a key whose material the scheduler is destroying cannot come back.
 * KMSInvalidStateException otherwise. */
int kms_store_key_cancel_deletion(kms_store *store, const char *key_id, int64_t now)
    __attribute__((warn_unused_result));
/* When key_id was deleted: NotFoundException if it never was. */
int kms_store_deleted_get(kms_store *store, const char *key_id, int64_t *when)
    __attribute__((warn_unused_result));

/* ---- Tags (store_tags.c) ---------------------------------------------------------------------
 * The tags of a key (TagResource): tag keys case-sensitive and unique per key, values 0-256
 * characters. They belong to the key and go with it (ON DELETE CASCADE). The service checks
 * each tag (AWS's characters, lengths, the aws: prefix); the store keeps the count limit in the
 * transaction that writes, so that two requests at once cannot pass it together. */
#define KMS_STORE_TAGS_MAX 50

typedef struct kms_tag {
    const char *key;
    const char *value; /* NULL stores "" */
} kms_tag;

/* Adds each tag of tags[n] or replaces its value, in one transaction. NotFoundException if the
 * key does not exist; LimitExceededException if the key would then hold more than
 * KMS_STORE_TAGS_MAX tags (nothing is written). */
int kms_store_tags_put(kms_store *store, const char *key_id, const kms_tag *tags, size_t n)
    __attribute__((warn_unused_result));
/* Removes each named tag (a name the key does not have is no error), in one transaction.
 * NotFoundException if the key does not exist. */
int kms_store_tags_remove(kms_store *store, const char *key_id, const char *const *keys, size_t n)
    __attribute__((warn_unused_result));
/* Calls cb for each tag of key_id, ascending by tag key (byte order), after marker (NULL: from
 * the start), at most limit; *truncated as for kms_store_key_list. cb runs after the connection
 * went back (it may use the store). A key without tags, or without a row, lists nothing. */
typedef int (*kms_store_tag_cb)(void *arg, const char *key, const char *value);
int kms_store_tags_list(kms_store *store, const char *key_id, const char *marker, size_t limit,
                        kms_store_tag_cb cb, void *arg, bool *truncated)
    __attribute__((warn_unused_result));

/* What a request on a key tells its policies about the key (the gate's aws:ResourceTag/K and
 * kms:ResourceAliases): in one query, each tag (KMS_STORE_ATTR_TAG, key and value) when tags is
 * true and each alias (KMS_STORE_ATTR_ALIAS, its name; value "") when aliases is true. cb runs
 * while the query is open: it must not call the store. */
typedef enum kms_store_attr_kind { KMS_STORE_ATTR_TAG, KMS_STORE_ATTR_ALIAS } kms_store_attr_kind;
typedef int (*kms_store_attr_cb)(void *arg, kms_store_attr_kind kind, const char *name,
                                 const char *value);
int kms_store_key_attributes(kms_store *store, const char *key_id, bool tags, bool aliases,
                             kms_store_attr_cb cb, void *arg) __attribute__((warn_unused_result));

#endif
