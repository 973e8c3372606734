/* The call threads: kms_call_network blocks (the audit record is written durably, with the
 * records of concurrent callers in one fsync; HSM calls block), so it runs here, off the event
 * loops, which only parse requests and write answers. A fixed set of threads takes jobs from one
 * bounded queue (a mutex and a condition variable). */
#ifndef KMSD_POOL_H
#define KMSD_POOL_H

#include <stddef.h>

typedef struct kmsd_pool kmsd_pool;

/* threads call threads; queue_max jobs may wait (past that, submit refuses). run(arg) is called
 * on a call thread for each job. NULL when a thread cannot be started. */
kmsd_pool *kmsd_pool_new(int threads, size_t queue_max, void (*run)(void *arg));
/* Queues arg for a call thread: 0, or -1 when the queue is full or the pool is stopping (the
 * caller keeps arg and answers itself). */
int kmsd_pool_submit(kmsd_pool *p, void *arg) __attribute__((warn_unused_result));
/* For /metrics: jobs waiting, and call threads running one. */
void kmsd_pool_stats(kmsd_pool *p, size_t *queued, int *busy);
/* Stops: the jobs under way finish, the waiting ones are not run (their owner answers them),
 * the threads are joined. Then frees. */
void kmsd_pool_free(kmsd_pool *p);

#endif
