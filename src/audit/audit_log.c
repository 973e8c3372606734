/* The audit log writer's handle and public calls: records appended with group commit under
 * LOCK, announcements, sealing on request and at close, opening a trail (audit.h has the on-disk
 * contract; audit_writer.h the state and how its files divide the work). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_writer.h"
#include "util/buf.h"
#include "util/util.h"

/* A group-commit leader waits for announced records (kms_audit_announce) at most as long as the
 * last flush took, and never longer than GATHER_MAX_NS. Below GATHER_MIN_NS (a flush to memory,
 * as on tmpfs) waking and waiting would cost more than a flush of its own: no wait. */
#define GATHER_MIN_NS 20000
#define GATHER_MAX_NS 2000000

/* ---- LOCK and ownership ------------------------------------------------------------------- */

static int lock_log(kms_audit *a)
{
    int64_t t0 = kms_audit_log_monotonic_ns();
    while (flock(a->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            return kms_audit_log_io_fail("lock", a->lock_path, errno);
        }
    }
    atomic_fetch_add_explicit(&a->lock_wait_ns, (uint64_t)(kms_audit_log_monotonic_ns() - t0),
                              memory_order_relaxed);
    return 0;
}

static void unlock_log(kms_audit *a)
{
    (void)flock(a->lock_fd, LOCK_UN);
}

static void acquire(kms_audit *a)
{
    pthread_mutex_lock(&a->mu);
    while (a->busy) {
        pthread_cond_wait(&a->cv, &a->mu);
    }
    a->busy = true;
    pthread_mutex_unlock(&a->mu);
}

/* Under mu: the busy flag released. Wakes the first appending thread in line (it leads the next
 * batch) and whoever waits in acquire() or the keeper; the other appending threads sleep on. */
static void set_idle(kms_audit *a)
{
    a->busy = false;
    if (a->head != NULL) {
        pthread_cond_signal(&a->head->cv);
    }
    pthread_cond_broadcast(&a->cv);
}

static void release(kms_audit *a)
{
    pthread_mutex_lock(&a->mu);
    set_idle(a);
    pthread_mutex_unlock(&a->mu);
}

/* ---- The keeper: the anchor stored within ANCHOR_INTERVAL_NS of the last batch ------------- */

/* Under LOCK, as the busy thread: stores the anchor (a failure is retried at the next batch or
 * the close). */
static void store_anchor(kms_audit *a)
{
    if (kms_audit_log_ack(a) != 0) {
        kms_error_clear();
    }
}

static void *keeper(void *arg)
{
    kms_audit *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!a->stopping) {
        /* Its own condition variable: the group commit's is broadcast at every batch. */
        if (!a->anchor_pending) {
            pthread_cond_wait(&a->keeper_cv, &a->mu);
            continue;
        }
        int64_t due = a->pending_since_ns + ANCHOR_INTERVAL_NS;
        struct timespec at = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
        if (kms_audit_log_monotonic_ns() < due) {
            (void)pthread_cond_timedwait(&a->keeper_cv, &a->mu, &at);
            continue; /* woken: look again (stopping, or stored meanwhile) */
        }
        if (a->busy) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        a->busy = true;
        a->anchor_pending = false;
        pthread_mutex_unlock(&a->mu);
        if (lock_log(a) == 0) {
            if (kms_audit_log_check_state(a) == 0) {
                store_anchor(a);
            }
            unlock_log(a);
        }
        kms_error_clear();
        pthread_mutex_lock(&a->mu);
        set_idle(a);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* After a batch, as the busy thread under LOCK: the anchor now if a store is due, else within
 * ANCHOR_INTERVAL_NS by the keeper (started on the first such batch). */
static void anchor_after_batch(kms_audit *a)
{
    if (a->signer.anchor_set == NULL) {
        return;
    }
    int64_t now = kms_audit_log_monotonic_ns();
    if (now - a->anchor_stored_ns >= ANCHOR_INTERVAL_NS) {
        store_anchor(a);
        pthread_mutex_lock(&a->mu);
        a->anchor_pending = false;
        pthread_mutex_unlock(&a->mu);
        return;
    }
    pthread_mutex_lock(&a->mu);
    if (!a->anchor_pending) {
        a->anchor_pending = true;
        a->pending_since_ns = now;
        pthread_cond_signal(&a->keeper_cv);
    }
    if (!a->keeper_started && pthread_create(&a->keeper, NULL, keeper, a) == 0) {
        a->keeper_started = true; /* (if it cannot start, the next batch or the close stores) */
    }
    pthread_mutex_unlock(&a->mu);
}

/* A successful flush of n records, for kms_audit_flush_stats_get. */
static void count_flush(kms_audit *a, const waiter *batch)
{
    uint64_t n = 0;
    for (const waiter *w = batch; w != NULL; w = w->next) {
        n++;
    }
    size_t bucket = 0;
    while (bucket < KMS_AUDIT_FLUSH_BUCKETS - 1 && n > ((uint64_t)1 << bucket)) {
        bucket++;
    }
    atomic_fetch_add_explicit(&a->flushes, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->flushed_records, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->flush_sizes[bucket], 1, memory_order_relaxed);
}

void kms_audit_flush_stats_get(kms_audit *a, kms_audit_flush_stats *out)
{
    memset(out, 0, sizeof *out);
    if (a == NULL) {
        return;
    }
    out->count = atomic_load_explicit(&a->flushes, memory_order_relaxed);
    out->append_wait_ns = atomic_load_explicit(&a->append_wait_ns, memory_order_relaxed);
    out->lock_wait_ns = atomic_load_explicit(&a->lock_wait_ns, memory_order_relaxed);
    out->sync_ns = atomic_load_explicit(&a->sync_total_ns, memory_order_relaxed);
    out->records = atomic_load_explicit(&a->flushed_records, memory_order_relaxed);
    uint64_t sum = 0;
    for (size_t i = 0; i < KMS_AUDIT_FLUSH_BUCKETS; i++) {
        sum += atomic_load_explicit(&a->flush_sizes[i], memory_order_relaxed);
        out->buckets[i] = sum;
    }
}

/* The leader's work: one batch, under LOCK; the outcome goes into every node. */
static void flush(kms_audit *a, waiter *batch)
{
    int rc = -1;
    if (lock_log(a) == 0) {
        if (kms_audit_log_check_state(a) == 0 && kms_audit_log_write_batch(a, batch) == 0) {
            rc = 0;
            count_flush(a, batch);
            a->appended = true;
            kms_audit_log_periodic_seal(a);
            /* The records are durable and acknowledged in the trail; the anchor follows. */
            anchor_after_batch(a);
        }
        unlock_log(a);
    }
    for (waiter *w = batch; w != NULL; w = w->next) {
        w->rc = rc;
        if (rc != 0) {
            w->code = kms_last_error();
            snprintf(w->message, sizeof w->message, "%s", kms_last_error_message());
        }
    }
}

/* ---- public ------------------------------------------------------------------------------- */

/* Whether record is one JSON object whose top level has no auditChain member, checked by its
 * structure: strings closed (escapes skipped), brackets balanced and closed by the final '}'.
 * The service builds records with its own writer (util/json_out.c), so this guards against a
 * caller's mistake, not against hostile text, and costs a pass over the bytes instead of a parse.
 */
static bool record_shape(const char *record, size_t len)
{
    static const char chain_key[] = "\"auditChain\"";
    int depth = 0;
    bool in_string = false, key_next = false;
    for (size_t i = 0; i < len; i++) {
        char c = record[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            } else if ((unsigned char)c < 0x20) {
                return false;
            }
            continue;
        }
        if (c == '"') {
            if (depth == 1 && key_next && len - i >= sizeof chain_key - 1 &&
                memcmp(record + i, chain_key, sizeof chain_key - 1) == 0) {
                return false;
            }
            in_string = true;
            key_next = false;
        } else if (c == '{' || c == '[') {
            depth++;
            key_next = c == '{';
        } else if (c == '}' || c == ']') {
            if (--depth == 0 && i != len - 1) {
                return false;
            }
            key_next = false;
        } else if (c == ',') {
            key_next = depth >= 1;
        } else if (c == '\0') {
            return false;
        }
    }
    return depth == 0 && !in_string;
}

static int check_record(const char *record, size_t len)
{
    KMS_ENSURE(record != NULL && len >= 2 && record[0] == '{' && record[len - 1] == '}',
               KMS_ERR_VALIDATION, "an audit record must be a JSON object text");
    KMS_ENSURE(memchr(record, '\n', len) == NULL && memchr(record, '\r', len) == NULL,
               KMS_ERR_VALIDATION, "an audit record must be one line");
    KMS_ENSURE(len - 1 + CHAIN_MAX + 1 <= KMS_AUDIT_RECORD_MAX, KMS_ERR_VALIDATION,
               "an audit record must be shorter than %d bytes", KMS_AUDIT_RECORD_MAX);
    KMS_ENSURE(record_shape(record, len), KMS_ERR_VALIDATION,
               "an audit record must be a JSON object without an auditChain member");
    return 0;
}

/* Under mu, by a new leader: waits (at most as long as the last flush took) while announced
 * records are still on their way, so that they share this flush instead of waiting for it and
 * then for their own. Only when as many are on their way as are queued: with many callers the
 * records queued during the last flush make the batch, and waiting for more, which keep being
 * announced, would only lengthen every flush's cycle (GenerateDataKey at 32 threads on disk spent
 * 0.6 ms of each 1.4 ms cycle gathering). */
static void gather(kms_audit *a)
{
    if (a->announced == 0 || a->announced < a->queued || a->sync_ns < GATHER_MIN_NS) {
        return;
    }
    int64_t wait = a->sync_ns < GATHER_MAX_NS ? a->sync_ns : GATHER_MAX_NS;
    int64_t until = kms_audit_log_monotonic_ns() + wait;
    struct timespec deadline = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};
    a->gathering = true;
    while (a->announced > 0) {
        if (pthread_cond_timedwait(&a->gather_cv, &a->mu, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    a->gathering = false;
}

/* Under mu: one announced record arrived or was withdrawn. */
static void unannounce(kms_audit *a)
{
    if (a->announced > 0) {
        a->announced--;
        if (a->announced == 0 && a->gathering) {
            pthread_cond_signal(&a->gather_cv);
        }
    }
}

/* Under LOCK: an open segment with its space ahead written, made now if there is none. */
static int reserve(kms_audit *a)
{
    if (a->seg_fd < 0) {
        KMS_GUARD(kms_audit_log_create_segment(a));
    }
    int err = kms_audit_log_keep_reserve(a, a->seg_size);
    if (err == 0 && fdatasync(a->seg_fd) != 0) {
        err = errno;
    }
    atomic_store(&a->space_err, err);
    if (err != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "no space for the audit log in %s (%s): the operation was not performed; "
                         "free space on that file system, then retry",
                         a->dir, strerror(err));
    }
    return 0;
}

int kms_audit_announce(kms_audit *a)
{
    KMS_ENSURE(a != NULL, KMS_ERR_AUDIT, "the audit log is not open");
    if (atomic_load(&a->space_err) != 0) {
        /* The last batch could not keep space ahead: try again before anything runs. */
        acquire(a);
        int r = lock_log(a);
        if (r == 0) {
            r = kms_audit_log_check_state(a);
            if (r == 0) {
                r = reserve(a);
            }
            unlock_log(a);
        }
        release(a);
        KMS_GUARD(r);
    }
    pthread_mutex_lock(&a->mu);
    a->announced++;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

void kms_audit_withdraw(kms_audit *a)
{
    if (a != NULL) {
        pthread_mutex_lock(&a->mu);
        unannounce(a);
        pthread_mutex_unlock(&a->mu);
    }
}

int kms_audit_append(kms_audit *a, const char *record, size_t len)
{
    KMS_ENSURE(a != NULL, KMS_ERR_AUDIT, "the audit log is not open");
    if (check_record(record, len) != 0) {
        kms_audit_withdraw(a);
        return -1;
    }
    waiter w = {.record = record, .len = len, .queued_ns = kms_audit_log_monotonic_ns()};
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&a->mu);
    unannounce(a);
    *a->tail = &w;
    a->tail = &w.next;
    a->queued++;
    while (!w.done) {
        if (a->busy) {
            pthread_cond_wait(&w.cv, &a->mu);
            continue;
        }
        /* Leader: take everything pending, write it without holding the mutex. */
        a->busy = true;
        gather(a);
        waiter *batch = a->head;
        a->head = NULL;
        a->tail = &a->head;
        a->queued = 0;
        pthread_mutex_unlock(&a->mu);
        flush(a, batch);
        int64_t end = kms_audit_log_monotonic_ns();
        uint64_t waited = 0;
        pthread_mutex_lock(&a->mu);
        for (waiter *n = batch, *next = NULL; n != NULL; n = next) {
            next = n->next; /* n's stack may be gone once it is done and its thread woken */
            waited += (uint64_t)(end - n->queued_ns);
            n->done = true;
            if (n != &w) {
                pthread_cond_signal(&n->cv);
            }
        }
        atomic_fetch_add_explicit(&a->append_wait_ns, waited, memory_order_relaxed);
        set_idle(a);
    }
    pthread_mutex_unlock(&a->mu);
    pthread_cond_destroy(&w.cv);
    if (w.rc != 0) {
        return kms_raise(w.code, "%s", w.message);
    }
    return 0;
}

int kms_audit_seal_when(kms_audit *a, bool only_if_due, bool *sealed)
{
    KMS_ENSURE(a != NULL && sealed != NULL, KMS_ERR_AUDIT, "the audit log is not open");
    *sealed = false;
    acquire(a);
    int r = lock_log(a);
    if (r == 0) {
        r = kms_audit_log_check_state(a);
        bool holds = a->seg_fd >= 0 && a->next_seq > a->seg_first;
        if (r == 0 && holds && (!only_if_due || kms_audit_log_seal_due(a))) {
            r = kms_audit_log_seal_open(a);
            *sealed = r == 0;
        }
        unlock_log(a);
    }
    release(a);
    return r;
}

int kms_audit_seal(kms_audit *a)
{
    bool sealed = false;
    return kms_audit_seal_when(a, false, &sealed);
}

bool kms_audit_ready(kms_audit *a)
{
    struct stat st;
    return a != NULL && stat(a->dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static void free_handle(kms_audit *a)
{
    kms_audit_log_close_segment(a);
    if (a->lock_fd >= 0) {
        close(a->lock_fd);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    pthread_cond_destroy(&a->keeper_cv);
    pthread_cond_destroy(&a->gather_cv);
    free(a->dg.signature_hex);
    free(a->seg_path);
    free(a->dir);
    free(a->segments);
    free(a->digests);
    free(a->torn);
    free(a->lock_path);
    free(a->account_id);
    free(a->region);
    free(a);
}

void kms_audit_close(kms_audit *a)
{
    if (a == NULL) {
        return;
    }
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_cond_broadcast(&a->keeper_cv);
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->keeper_started) {
        pthread_join(a->keeper, NULL);
    }
    acquire(a);
    /* A clean close moves the anchor to the last record (another process's, if it wrote after
     * this handle: the state is read again under LOCK first); with seal_on_close, seals. */
    if (a->appended && lock_log(a) == 0) {
        if (kms_audit_log_check_state(a) == 0) {
            if ((a->seal_on_close ? kms_audit_log_seal_open(a) : kms_audit_log_ack(a)) != 0) {
                kms_error_clear(); /* the next writer moves the anchor on */
            }
        }
        unlock_log(a);
    }
    release(a);
    free_handle(a);
}

static int check_dir(const char *dir, const char *path)
{
    struct stat st;
    int err = stat(path, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    if ((err == ENOENT || err == ENOTDIR) && path == dir) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit log directory %s is missing: operations are refused until it "
                         "is restored (restore it from a backup, or run `kmsctl init` for a new "
                         "home)",
                         dir);
    }
    if (err == ENOENT || err == ENOTDIR) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit log directory %s is incomplete (%s is missing): operations "
                         "are refused until it is restored (restore it from a backup, or run "
                         "`kmsctl init` for a new home)",
                         dir, path);
    }
    if (err != 0) {
        return kms_audit_log_io_fail("examine the audit log directory", path, err);
    }
    if (access(path, W_OK) != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit log directory %s is read-only (%s: %s): operations are "
                         "refused until it is writable (fix its permissions or owner, or remount "
                         "it read-write)",
                         dir, path, strerror(errno));
    }
    return 0;
}

/* Temporary files of digest writes (kms_file_write_atomic's "NAME.tmp.XXXXXX") that a killed
 * sealer left behind. Sealing happens under LOCK, which the caller holds, so none is in use. */
static void remove_stale_temps(kms_audit *a)
{
    DIR *d = opendir(a->digests);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strstr(e->d_name, ".tmp.") != NULL) {
            (void)unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
}

kms_audit *kms_audit_open(const kms_audit_options *o)
{
    if (o == NULL || o->dir == NULL || o->account_id == NULL || o->region == NULL ||
        o->signer.sign == NULL || o->signer.spki == NULL ||
        (o->signer.anchor_get == NULL) != (o->signer.anchor_set == NULL)) {
        kms_raise(KMS_ERR_INTERNAL, "kms_audit_open: incomplete options (dir, account, region, "
                                    "signer, both anchor callbacks or neither)");
        return NULL;
    }
    kms_audit *a = calloc(1, sizeof *a);
    if (a == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    a->lock_fd = -1;
    a->seg_fd = -1;
    a->seg_size = -1;
    a->seg_start = -1;
    a->tail = &a->head;
    a->signer = o->signer;
    a->period = o->digest_period > 0 ? o->digest_period : KMS_AUDIT_DEFAULT_DIGEST_PERIOD;
    a->segment_max = o->segment_max > 0 ? (off_t)o->segment_max : KMS_AUDIT_DEFAULT_SEGMENT_MAX;
    a->seal_on_close = o->seal_on_close;
    a->anchor_stored_ns = kms_audit_log_monotonic_ns();
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cv, &attr);
    pthread_cond_init(&a->keeper_cv, &attr);
    pthread_cond_init(&a->gather_cv, &attr);
    pthread_condattr_destroy(&attr);
    kms_audit_sha256_hex(o->signer.spki, o->signer.spki_len, a->fingerprint);
    if ((a->dir = strdup(o->dir)) == NULL || (a->account_id = strdup(o->account_id)) == NULL ||
        (a->region = strdup(o->region)) == NULL ||
        (a->segments = kms_path_join(o->dir, "segments")) == NULL ||
        (a->digests = kms_path_join(o->dir, "digests")) == NULL ||
        (a->torn = kms_path_join(o->dir, "torn")) == NULL ||
        (a->lock_path = kms_path_join(o->dir, "LOCK")) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto fail;
    }
    if (check_dir(a->dir, a->dir) != 0 || check_dir(a->dir, a->segments) != 0 ||
        check_dir(a->dir, a->digests) != 0) {
        goto fail;
    }
    a->lock_fd = open(a->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (a->lock_fd < 0) {
        if (errno == EACCES || errno == EROFS || errno == EPERM) {
            kms_raise(KMS_ERR_AUDIT,
                      "the audit log directory %s is read-only (cannot open %s: %s): operations "
                      "are refused until it is writable (fix its permissions or owner, or remount "
                      "it read-write)",
                      a->dir, a->lock_path, strerror(errno));
        } else {
            kms_audit_log_io_fail("open", a->lock_path, errno);
        }
        goto fail;
    }
    if (lock_log(a) != 0) {
        goto fail;
    }
    remove_stale_temps(a);
    int r = kms_audit_log_check_state(a);
    if (r == 0) {
        /* The segment and its space ahead exist before the first operation runs. */
        r = reserve(a);
    }
    unlock_log(a);
    if (r != 0) {
        goto fail;
    }
    return a;
fail:
    free_handle(a);
    return NULL;
}
