/* kms_call_network's cache of derived SigV4 signing keys (network_keys.c), per client, as AWS's
 * own services keep one: never the secret access key, only the key derived from it for one
 * (date, region, service) scope, which signs nothing else. Entry key: (access key id, SHA-256 of
 * the session token or of nothing, scope date, region, service). Entry: the 32-byte signing key
 * (in locked, guarded memory, wiped when the entry goes) and the identity the IAM lookup gave.
 * An entry is valid while IAM's generation (kms_iam_generation) is the one it was made under
 * (any change to access keys, users, roles, sessions' owners bumps it, so a key made Inactive is
 * refused on the very next request) and, for a session, until the session's expiry.
 * Bounded: KMS_SIGNING_CACHE_SETS sets of KMS_SIGNING_CACHE_WAYS entries; the least recently
 * used entry of a full set makes room. Thread-safe (one mutex). Private to src/service. */
#ifndef KMS_SERVICE_NETWORK_KEYS_H
#define KMS_SERVICE_NETWORK_KEYS_H

#include <stdint.h>

#include "iam/iam.h"

#define KMS_SIGNING_CACHE_WAYS 4
#define KMS_SIGNING_CACHE_SETS 256 /* 1024 entries */

typedef struct kms_signing_cache kms_signing_cache;

/* The parts an entry is found by. session_token: NULL or "" for a long-term key. */
typedef struct kms_signing_scope {
    const char *access_key_id;
    const char *session_token;
    const char *date; /* YYYYMMDD */
    const char *region;
    const char *service;
} kms_signing_scope;

/* NULL on out-of-memory (raised). */
kms_signing_cache *kms_signing_cache_new(void);
/* Wipes every key and frees the identities; NULL is fine. */
void kms_signing_cache_free(kms_signing_cache *c);

/* 1 with key and *id (a copy the caller cleans up with kms_iam_identity_clean_up) filled when
 * an entry for scope is valid under generation at now; 0 (key and *id cleared) when there is
 * none, or -1 (raised) when out of memory. An entry found stale is wiped. */
int kms_signing_cache_find(kms_signing_cache *c, const kms_signing_scope *scope,
                           uint64_t generation, int64_t now, uint8_t key[32], kms_identity *id)
    __attribute__((warn_unused_result));

/* Remembers key and a copy of id for scope under generation (the one read BEFORE the lookup
 * that gave id and the secret key was derived from). Replaces an entry for the same scope.
 * 0, or -1 (raised) when out of memory (the cache is then unchanged). */
int kms_signing_cache_put(kms_signing_cache *c, const kms_signing_scope *scope, uint64_t generation,
                          const uint8_t key[32], const kms_identity *id)
    __attribute__((warn_unused_result));

/* Entries held (for tests). */
size_t kms_signing_cache_count(kms_signing_cache *c);

#endif
