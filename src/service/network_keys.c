/* kms_call_network's cache of derived SigV4 signing keys: see network_keys.h.
 *
 * An entry is found by a tag, the BLAKE2b of its scope's parts under a key drawn at random per
 * cache (so no caller can aim its access key ids at one set to evict another's entries); the
 * session token enters only that hash. The signing keys live in one sodium_malloc'd region
 * (locked, never swapped, guard pages around it), slot i for entry i, wiped when the entry goes.
 * The region is not mprotect'ed between uses: mprotect takes the address-space lock, which
 * serialises every thread of kmsd (the reason src/util/secmem.c carves secrets out of slabs). */
#include "service/network_keys.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define ENTRIES (KMS_SIGNING_CACHE_SETS * KMS_SIGNING_CACHE_WAYS)

typedef struct entry {
    bool used;
    uint8_t tag[crypto_generichash_BYTES]; /* BLAKE2b of the scope (scope_tag) */
    uint64_t generation;                   /* IAM's, when the entry was made */
    int64_t expiry;                        /* the session's expiry, 0 for a long-term key */
    uint64_t last_used;
    kms_identity id;
} entry;

struct kms_signing_cache {
    pthread_mutex_t lock;
    uint64_t tick;
    uint8_t tag_key[crypto_generichash_KEYBYTES];
    uint8_t *keys; /* sodium_malloc'd: ENTRIES signing keys of 32 bytes */
    entry entries[ENTRIES];
};

kms_signing_cache *kms_signing_cache_new(void)
{
    kms_signing_cache *c = calloc(1, sizeof *c);
    if (c == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    c->keys = sodium_malloc((size_t)ENTRIES * 32);
    if (c->keys == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        sodium_free(c->keys);
        free(c);
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    sodium_memzero(c->keys, (size_t)ENTRIES * 32);
    randombytes_buf(c->tag_key, sizeof c->tag_key);
    return c;
}

/* Under c->lock (or at free): forgets entry i, its key wiped. */
static void entry_wipe(kms_signing_cache *c, size_t i)
{
    entry *e = &c->entries[i];
    sodium_memzero(c->keys + i * 32, 32);
    kms_iam_identity_clean_up(&e->id);
    sodium_memzero(e, sizeof *e);
}

void kms_signing_cache_free(kms_signing_cache *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < ENTRIES; i++) {
        entry_wipe(c, i);
    }
    sodium_free(c->keys); /* wipes the region too */
    sodium_memzero(c->tag_key, sizeof c->tag_key);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void tag_part(crypto_generichash_state *st, const char *s)
{
    /* Each part NUL-terminated: no two scopes give the same input. */
    crypto_generichash_update(st, (const unsigned char *)(s != NULL ? s : ""),
                              strlen(s != NULL ? s : "") + 1);
}

/* The scope's tag, and the set its entry lives in. */
static size_t scope_tag(const kms_signing_cache *c, const kms_signing_scope *scope,
                        uint8_t tag[crypto_generichash_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, c->tag_key, sizeof c->tag_key, crypto_generichash_BYTES);
    tag_part(&st, scope->access_key_id);
    tag_part(&st, scope->session_token);
    tag_part(&st, scope->date);
    tag_part(&st, scope->region);
    tag_part(&st, scope->service);
    crypto_generichash_final(&st, tag, crypto_generichash_BYTES);
    sodium_memzero(&st, sizeof st);
    return ((size_t)tag[0] | (size_t)tag[1] << 8) % KMS_SIGNING_CACHE_SETS;
}

/* A deep copy of from (*to cleared on failure, raised). */
static int identity_copy(const kms_identity *from, kms_identity *to)
{
    int r = -1;
    memcpy(to, from, sizeof *to);
    to->session_policy = NULL;
    to->tag_count = 0;
    to->tag_keys = NULL;
    to->tag_values = NULL;
    if (from->session_policy != NULL &&
        (to->session_policy = strdup(from->session_policy)) == NULL) {
        goto out;
    }
    if (from->tag_count > 0) {
        to->tag_keys = calloc(from->tag_count, sizeof *to->tag_keys);
        to->tag_values = calloc(from->tag_count, sizeof *to->tag_values);
        if (to->tag_keys == NULL || to->tag_values == NULL) {
            goto out;
        }
        for (size_t i = 0; i < from->tag_count; i++) {
            to->tag_count = i + 1;
            to->tag_keys[i] = strdup(from->tag_keys[i]);
            to->tag_values[i] = strdup(from->tag_values[i]);
            if (to->tag_keys[i] == NULL || to->tag_values[i] == NULL) {
                goto out;
            }
        }
    }
    r = 0;
out:
    if (r != 0) {
        if (to->tag_count == 0) { /* the arrays, allocated but not yet counted */
            free(to->tag_keys);
            free(to->tag_values);
            to->tag_keys = NULL;
            to->tag_values = NULL;
        }
        kms_iam_identity_clean_up(to);
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return r;
}

int kms_signing_cache_find(kms_signing_cache *c, const kms_signing_scope *scope,
                           uint64_t generation, int64_t now, uint8_t key[32], kms_identity *id)
{
    uint8_t tag[crypto_generichash_BYTES];
    int r = 0;
    sodium_memzero(key, 32);
    memset(id, 0, sizeof *id);
    size_t set = scope_tag(c, scope, tag);
    pthread_mutex_lock(&c->lock);
    for (size_t i = set * KMS_SIGNING_CACHE_WAYS; i < (set + 1) * KMS_SIGNING_CACHE_WAYS; i++) {
        entry *e = &c->entries[i];
        if (!e->used || sodium_memcmp(e->tag, tag, sizeof tag) != 0) {
            continue;
        }
        if (e->generation != generation || (e->expiry != 0 && now >= e->expiry)) {
            entry_wipe(c, i); /* stale: the caller looks the key up again */
            break;
        }
        if ((r = identity_copy(&e->id, id)) != 0) {
            break;
        }
        memcpy(key, c->keys + i * 32, 32);
        e->last_used = ++c->tick;
        r = 1;
        break;
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

int kms_signing_cache_put(kms_signing_cache *c, const kms_signing_scope *scope, uint64_t generation,
                          const uint8_t key[32], const kms_identity *id)
{
    uint8_t tag[crypto_generichash_BYTES];
    kms_identity copy;
    size_t set = scope_tag(c, scope, tag);
    KMS_GUARD(identity_copy(id, &copy));
    pthread_mutex_lock(&c->lock);
    size_t slot = set * KMS_SIGNING_CACHE_WAYS;
    for (size_t i = slot; i < (set + 1) * KMS_SIGNING_CACHE_WAYS; i++) {
        entry *e = &c->entries[i];
        if (e->used && sodium_memcmp(e->tag, tag, sizeof tag) == 0) {
            slot = i; /* the same scope: replaced */
            break;
        }
        if (c->entries[slot].used && (!e->used || e->last_used < c->entries[slot].last_used)) {
            slot = i;
        }
    }
    entry_wipe(c, slot);
    entry *e = &c->entries[slot];
    e->used = true;
    memcpy(e->tag, tag, sizeof tag);
    e->generation = generation;
    e->expiry = id->session_expiry;
    e->last_used = ++c->tick;
    e->id = copy;
    memcpy(c->keys + slot * 32, key, 32);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

size_t kms_signing_cache_count(kms_signing_cache *c)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < ENTRIES; i++) {
        n += c->entries[i].used ? 1 : 0;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}
