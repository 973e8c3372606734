#include "util/secmem.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "util/error.h"

/* Two size classes: data keys (<= 64 bytes) and plaintexts up to KMS's 4096-byte limit plus
 * headroom for buffers that grow by doubling. */
typedef struct slab {
    size_t slot_size;
    size_t slots;
    uint8_t *base;  /* sodium_malloc'd: locked and guarded as a whole */
    uint32_t *free; /* stack of free slot indices */
    size_t free_count;
    pthread_mutex_t lock;
} slab;

static slab slabs[] = {
    {.slot_size = 64, .slots = 2048, .lock = PTHREAD_MUTEX_INITIALIZER},
    {.slot_size = 8192, .slots = 64, .lock = PTHREAD_MUTEX_INITIALIZER},
};
static pthread_once_t slabs_once = PTHREAD_ONCE_INIT;

static void slabs_init(void)
{
    if (sodium_init() < 0) {
        return;
    }
    for (size_t i = 0; i < sizeof slabs / sizeof slabs[0]; i++) {
        slab *s = &slabs[i];
        s->base = sodium_allocarray(s->slots, s->slot_size);
        s->free = sodium_allocarray(s->slots, sizeof *s->free);
        if (s->base == NULL || s->free == NULL) {
            sodium_free(s->base);
            sodium_free(s->free);
            s->base = NULL;
            s->free = NULL;
            continue; /* this class falls back to sodium_malloc */
        }
        for (size_t k = 0; k < s->slots; k++) {
            s->free[k] = (uint32_t)(s->slots - 1 - k);
        }
        s->free_count = s->slots;
    }
}

void *kms_secure_alloc(size_t n)
{
    pthread_once(&slabs_once, slabs_init);
    for (size_t i = 0; i < sizeof slabs / sizeof slabs[0]; i++) {
        slab *s = &slabs[i];
        if (n > s->slot_size || s->base == NULL) {
            continue;
        }
        void *p = NULL;
        pthread_mutex_lock(&s->lock);
        if (s->free_count > 0) {
            p = s->base + (size_t)s->free[--s->free_count] * s->slot_size;
        }
        pthread_mutex_unlock(&s->lock);
        if (p != NULL) {
            return p;
        }
    }
    void *p = sodium_malloc(n ? n : 1);
    if (p == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of locked memory (%zu bytes)", n);
    }
    return p;
}

void kms_secure_free(void *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < sizeof slabs / sizeof slabs[0]; i++) {
        slab *s = &slabs[i];
        uint8_t *b = p;
        if (s->base == NULL || b < s->base || b >= s->base + s->slots * s->slot_size) {
            continue;
        }
        size_t idx = (size_t)(b - s->base) / s->slot_size;
        sodium_memzero(s->base + idx * s->slot_size, s->slot_size);
        pthread_mutex_lock(&s->lock);
        s->free[s->free_count++] = (uint32_t)idx;
        pthread_mutex_unlock(&s->lock);
        return;
    }
    sodium_free(p); /* wipes */
}
