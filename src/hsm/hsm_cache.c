/* The handle cache of a kms_hsm: key label -> PKCS#11 object handle. */
#include "hsm/hsm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "hsm/hsm_internal.h"
#include "util/util.h"

/* ---- Object handle cache ------------------------------------------------------------------ */

/* Index of label in the cache, or where it would go. */
static size_t cache_pos(const kms_hsm *h, const char *label, bool *hit)
{
    size_t lo = 0;
    size_t hi = h->ncache;
    *hit = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(h->cache[mid].label, label);
        if (c == 0) {
            *hit = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

bool kms_hsm_cache_get(kms_hsm *h, const char *label, CK_OBJECT_HANDLE *handle)
{
    bool hit;
    pthread_rwlock_rdlock(&h->cache_lock);
    size_t i = cache_pos(h, label, &hit);
    if (hit) {
        *handle = h->cache[i].handle;
    }
    pthread_rwlock_unlock(&h->cache_lock);
    return hit;
}

/* Best effort: a cache that cannot grow only costs a C_FindObjects next time. */
void kms_hsm_cache_put(kms_hsm *h, const char *label, CK_OBJECT_HANDLE handle)
{
    bool hit;
    pthread_rwlock_wrlock(&h->cache_lock);
    size_t i = cache_pos(h, label, &hit);
    if (hit) {
        h->cache[i].handle = handle;
        goto out;
    }
    if (h->ncache == h->cache_cap) {
        size_t cap = h->cache_cap != 0 ? h->cache_cap * 2 : 64;
        cache_entry *grown = realloc(h->cache, cap * sizeof *grown);
        if (grown == NULL) {
            goto out;
        }
        h->cache = grown;
        h->cache_cap = cap;
    }
    char *copy = strdup(label);
    if (copy == NULL) {
        goto out;
    }
    memmove(&h->cache[i + 1], &h->cache[i], (h->ncache - i) * sizeof h->cache[0]);
    h->cache[i].label = copy;
    h->cache[i].handle = handle;
    h->ncache++;
out:
    pthread_rwlock_unlock(&h->cache_lock);
}

void kms_hsm_cache_drop(kms_hsm *h, const char *label)
{
    bool hit;
    pthread_rwlock_wrlock(&h->cache_lock);
    size_t i = cache_pos(h, label, &hit);
    if (hit) {
        free(h->cache[i].label);
        memmove(&h->cache[i], &h->cache[i + 1], (h->ncache - i - 1) * sizeof h->cache[0]);
        h->ncache--;
    }
    pthread_rwlock_unlock(&h->cache_lock);
}
