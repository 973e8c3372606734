/* The call threads (pool.h): a ring of waiting jobs under one mutex, a condition variable for
 * the threads to wait on. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "pool.h"

struct kmsd_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    void (*run)(void *arg);
    void **ring;
    size_t cap, head, count;
    int busy;
    bool stopping;
    pthread_t *threads;
    int n_threads; /* started */
};

static void *call_thread(void *arg)
{
    kmsd_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stopping && p->count == 0) {
            pthread_cond_wait(&p->wake, &p->lock);
        }
        if (p->stopping) {
            break;
        }
        void *job = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->busy++;
        pthread_mutex_unlock(&p->lock);
        p->run(job);
        pthread_mutex_lock(&p->lock);
        p->busy--;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

kmsd_pool *kmsd_pool_new(int threads, size_t queue_max, void (*run)(void *arg))
{
    kmsd_pool *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->run = run;
    p->cap = queue_max > 0 ? queue_max : 1;
    p->ring = calloc(p->cap, sizeof *p->ring);
    p->threads = calloc((size_t)(threads > 0 ? threads : 1), sizeof *p->threads);
    if (p->ring == NULL || p->threads == NULL) {
        kmsd_pool_free(p);
        return NULL;
    }
    for (; p->n_threads < threads; p->n_threads++) {
        if (pthread_create(&p->threads[p->n_threads], NULL, call_thread, p) != 0) {
            kmsd_pool_free(p);
            return NULL;
        }
    }
    return p;
}

int kmsd_pool_submit(kmsd_pool *p, void *arg)
{
    int r = -1;
    pthread_mutex_lock(&p->lock);
    if (!p->stopping && p->count < p->cap) {
        p->ring[(p->head + p->count) % p->cap] = arg;
        p->count++;
        pthread_cond_signal(&p->wake);
        r = 0;
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

void kmsd_pool_stats(kmsd_pool *p, size_t *queued, int *busy)
{
    pthread_mutex_lock(&p->lock);
    *queued = p->count;
    *busy = p->busy;
    pthread_mutex_unlock(&p->lock);
}

void kmsd_pool_free(kmsd_pool *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++) {
        pthread_join(p->threads[i], NULL);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p->ring);
    free(p);
}
