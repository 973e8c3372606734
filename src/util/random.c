/* Random bytes that are not secret, from a per-thread pool (random.h). */
#include "util/random.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define POOL_REFILL 1024

/* One page, wiped in a forked child: `left` reads 0 there, and the child refills. A child is
 * also told apart by the fork generation (a pthread_atfork handler), which does not depend on the
 * kernel honouring MADV_WIPEONFORK (qemu-user answers madvise with 0 and does nothing). */
typedef struct pool {
    size_t left;         /* unread bytes at the end of bytes[] */
    unsigned generation; /* fork_generation when bytes[] was filled */
    uint8_t bytes[POOL_REFILL];
} pool;

static _Atomic unsigned fork_generation;

static void forked_child(void)
{
    fork_generation++;
}

static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static bool pool_key_ok;
static __thread pool *thread_pool;
static __thread bool thread_pool_refused; /* the kernel cannot wipe on fork: no pool */

/* At thread exit. A later call on this thread (another thread-specific destructor that encrypts)
 * must not reach the page, which another thread's pool may be mapped at by then: it falls back. */
static void pool_unmap(void *p)
{
    thread_pool = NULL;
    thread_pool_refused = true;
    sodium_memzero(p, sizeof(pool));
    munmap(p, sizeof(pool));
}

static void pool_key_init(void)
{
    pool_key_ok = pthread_key_create(&pool_key, pool_unmap) == 0 &&
                  pthread_atfork(NULL, NULL, forked_child) == 0;
}

/* When libkms.so is unloaded (dlclose) while threads still hold pools, their exit must not call
 * pool_unmap, which is gone with the library: the key goes first (the pages stay mapped). */
__attribute__((destructor)) static void pool_key_fini(void)
{
    if (pool_key_ok) {
        pool_key_ok = false;
        pthread_key_delete(pool_key);
    }
}

/* Whether madvise answers at all: a call with an advice no kernel knows must fail (EINVAL); a
 * madvise that accepts it (qemu-user) is not trusted to wipe on fork either. */
static bool madvise_honest(void *p, size_t len)
{
    return madvise(p, len, -1) != 0;
}

/* The calling thread's pool, made at its first use; NULL when there can be none. */
static pool *thread_pool_get(void)
{
    if (thread_pool != NULL || thread_pool_refused) {
        return thread_pool;
    }
    thread_pool_refused = true;
    pthread_once(&pool_once, pool_key_init);
    if (!pool_key_ok) {
        return NULL;
    }
    void *p = mmap(NULL, sizeof(pool), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    if (!madvise_honest(p, sizeof(pool)) || madvise(p, sizeof(pool), MADV_WIPEONFORK) != 0 ||
        pthread_setspecific(pool_key, p) != 0) {
        munmap(p, sizeof(pool));
        return NULL;
    }
    thread_pool_refused = false;
    thread_pool = p;
    return thread_pool;
}

void kms_random_public(void *p, size_t n)
{
    pool *pl = n <= KMS_RANDOM_PUBLIC_MAX ? thread_pool_get() : NULL;
    if (pl == NULL) {
        randombytes_buf(p, n);
        return;
    }
    unsigned generation = fork_generation;
    if (pl->left < n || pl->generation != generation) {
        randombytes_buf(pl->bytes, sizeof pl->bytes);
        pl->left = sizeof pl->bytes;
        pl->generation = generation;
    }
    uint8_t *from = pl->bytes + sizeof pl->bytes - pl->left;
    memcpy(p, from, n);
    sodium_memzero(from, n); /* handed out once */
    pl->left -= n;
}
