/* The audit log writer's state and the functions its files share (audit_log.c: the handle,
 * group commit and the public calls; audit_log_io.c, audit_segment.c, audit_repair.c,
 * audit_digest.c, audit_anchor.c, audit_seal.c). Private to the writer.
 *
 * Concurrency. Inside a process, the state below "owned by the busy thread" belongs to the one
 * thread that set `busy`: the group-commit leader, or a sealer. Across processes, every flush and
 * seal runs under flock(dir/LOCK), and starts by checking (fstat) whether another process
 * appended to or sealed the open segment since this handle last held the lock. Every function
 * below that takes a kms_audit runs as the busy thread, under LOCK. */
#ifndef KMS_AUDIT_AUDIT_WRITER_H
#define KMS_AUDIT_AUDIT_WRITER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"

#define CHUNK 16384
/* What the writer appends before the final '}' (audit.h "A record line"), at its longest: a
 * 20-digit sequence number. */
#define CHAIN_MAX                                                                                  \
    (sizeof ",\"auditChain\":{\"sequence\":" - 1 + 20 + sizeof ",\"previousHash\":\"" - 1 +        \
     KMS_AUDIT_HASH_HEX + sizeof "\",\"ack\":\"" - 1 + KMS_AUDIT_HASH_HEX + sizeof "\"}}" - 1)
/* The longest a handle goes between two stores of the anchor while it appends (audit.h "The
 * anchor": when it moves). */
#define ANCHOR_INTERVAL_NS ((int64_t)1000000000)
#define DIGEST_MAX (1024 * 1024)
#define SIG_MAX 4096
#define ERROR_MESSAGE_MAX 512

/* One appending thread's record, on its own stack until the batch holding it is done. */
typedef struct waiter {
    const char *record;
    size_t len;
    int rc;
    kms_error code;
    char message[ERROR_MESSAGE_MAX];
    bool done;
    /* Signalled (under mu) when its batch is done, or when it is first in line and the writer
     * fell idle: each waiting thread is woken for itself, never with every other. */
    pthread_cond_t cv;
    int64_t queued_ns; /* monotonic time it joined the line */
    struct waiter *next;
} waiter;

/* The newest digest: where the trail continues and what the next digest chains to. */
typedef struct digest_info {
    bool present;
    uint64_t last_sequence;
    char file[48];                     /* "digests/NNN.json" */
    char hash[KMS_AUDIT_HASH_HEX + 1]; /* SHA-256 of its bytes */
    char last_record_hash[KMS_AUDIT_HASH_HEX + 1];
    char end_time[32]; /* digestEndTime as written */
    int64_t end;
    char *signature_hex; /* hex of its .sig */
    bool signed_ok;      /* the .sig verifies with the signer's key */
} digest_info;

struct kms_audit {
    char *dir, *segments, *digests, *torn, *lock_path;
    char *account_id, *region;
    int64_t period;
    off_t segment_max;
    bool seal_on_close;
    uint64_t seal_refused; /* the segment (its first sequence) whose seal was refused, 0: none */
    kms_audit_signer signer;
    char fingerprint[KMS_AUDIT_HASH_HEX + 1];
    int lock_fd;

    pthread_mutex_t mu;
    pthread_cond_t cv;        /* the busy flag released: for acquire() and the keeper */
    pthread_cond_t gather_cv; /* announced fell to 0: for a gathering leader */
    bool gathering;
    waiter *head;
    waiter **tail;
    bool busy;            /* some thread owns the state below */
    unsigned announced;   /* records announced and not yet appended (or withdrawn) */
    unsigned queued;      /* records in the line from head */
    atomic_int space_err; /* errno of the last failure to keep space ahead, 0: none */
    /* Successful flushes, their records, and flushes by size (not cumulative: bucket i counts
     * the flushes of more than 2^(i-1) and at most 2^i records; the last, any more). */
    atomic_uint_fast64_t flushes, flushed_records;
    atomic_uint_fast64_t flush_sizes[KMS_AUDIT_FLUSH_BUCKETS];
    /* Nanoseconds appending threads spent from joining the line to their batch's end, and
     * spent waiting for LOCK (flock). */
    atomic_uint_fast64_t append_wait_ns, lock_wait_ns;
    atomic_uint_fast64_t sync_total_ns; /* in the batches' fdatasync, summed */

    /* Owned by the busy thread; describes the files as of the last time it held LOCK. */
    bool appended;
    digest_info dg;
    int seg_fd;         /* the open segment, -1 if there is none (yet) */
    uint64_t seg_first; /* its name: the first sequence it holds (or will hold) */
    char seg_name[48];  /* "segments/NNN.jsonl" */
    char *seg_path;
    off_t seg_size;    /* where its records end (the next write goes there); -1: unknown */
    off_t seg_alloc;   /* its file size: records, then zeros (preallocated) up to here */
    int64_t seg_start; /* its first record's eventTime, -1: not looked up yet */
    uint64_t next_seq;
    char prev_hash[KMS_AUDIT_HASH_HEX + 1];
    int64_t sync_ns; /* how long the last fdatasync took */
    /* The anchor as this handle last read (discover, or after another process appended) or
     * stored it; all zero when there is none. Exact under LOCK: the anchor moves only under LOCK,
     * and whoever appends to or seals the open segment makes every other handle read it again. */
    kms_audit_anchor anchor;
    int64_t anchor_stored_ns; /* monotonic time this handle last stored it, 0: never */
    /* The keeper (audit_log.c): a thread that stores the anchor ANCHOR_INTERVAL_NS after a
     * batch whose store was not due yet, so that a process that falls idle leaves no record
     * unanchored for longer. Under mu. */
    bool anchor_pending;
    int64_t pending_since_ns;
    bool keeper_started, stopping;
    pthread_t keeper;
    pthread_cond_t keeper_cv;
};

/* ---- File helpers (audit_log_io.c) ------------------------------------------------------- */

/* KMS_ERR_AUDIT: "cannot WHAT PATH: strerror(err)", with what to do. Returns -1. */
int kms_audit_log_io_fail(const char *what, const char *path, int err);
/* KMS_ERR_AUDIT: the file is damaged (why), operations refused until restored. Returns -1. */
int kms_audit_log_damaged(const char *path, const char *why);
int kms_audit_log_fsync_dir(const char *path);
/* Reads exactly n bytes at off; -1 with errno set otherwise (EIO if the file is shorter). */
int kms_audit_log_pread_full(int fd, void *p, size_t n, off_t off)
    __attribute__((warn_unused_result));
/* Writes all n bytes at off: 0 or an errno. */
int kms_audit_log_pwrite_all(int fd, const void *p, size_t n, off_t off)
    __attribute__((warn_unused_result));
/* n bytes at start, NUL-terminated (*out malloc'd). */
int kms_audit_log_read_range(int fd, const char *path, off_t start, size_t n, char **out)
    __attribute__((warn_unused_result));
/* The last line of a segment of `size` bytes that ends with '\n' (without the '\n'). */
int kms_audit_log_last_line(int fd, const char *path, off_t size, char **line, size_t *len)
    __attribute__((warn_unused_result));
/* The first line of a segment that holds at least one '\n' (without the '\n'). */
int kms_audit_log_first_line(int fd, const char *path, off_t size, char **line, size_t *len)
    __attribute__((warn_unused_result));
/* A record line's auditChain.sequence and (if event_time is not NULL) its eventTime (malloc'd,
 * NULL if it has none). */
int kms_audit_log_parse_line(const char *path, const char *line, size_t len, uint64_t *seq,
                             char **event_time) __attribute__((warn_unused_result));
int64_t kms_audit_log_monotonic_ns(void);

/* ---- The open segment (audit_segment.c) -------------------------------------------------- */

void kms_audit_log_close_segment(kms_audit *a);
/* Names the open segment after its first sequence `first` (seg_name, seg_path). */
int kms_audit_log_set_segment(kms_audit *a, uint64_t first) __attribute__((warn_unused_result));
/* Takes the trail's tail from the open segment of `size` bytes, which ends with '\n'. */
int kms_audit_log_set_tail(kms_audit *a, off_t size) __attribute__((warn_unused_result));
int kms_audit_log_create_segment(kms_audit *a) __attribute__((warn_unused_result));
/* Keeps space written ahead of the records that end at `end`: 0 or an errno. */
int kms_audit_log_keep_reserve(kms_audit *a, off_t end) __attribute__((warn_unused_result));
/* Writes the records of `list` (validated) as chained lines: all or nothing. */
int kms_audit_log_write_batch(kms_audit *a, const waiter *list) __attribute__((warn_unused_result));
/* Brings the cached state up to date with what other processes did. */
int kms_audit_log_check_state(kms_audit *a) __attribute__((warn_unused_result));

/* ---- Torn tails (audit_repair.c) --------------------------------------------------------- */

/* Reads the open segment's records again from `from`, repairing a torn end. */
int kms_audit_log_load_tail(kms_audit *a, off_t from) __attribute__((warn_unused_result));

/* ---- Digests (audit_digest.c) ------------------------------------------------------------ */

/* A digest built and signed, not yet on disk. */
typedef struct signed_digest {
    char *json;
    size_t len;
    uint64_t last_seq;
    uint8_t *sig;
    size_t sig_len;
} signed_digest;

/* Finds the newest digest (highest NNN) and reads what the next one chains to (a->dg). */
int kms_audit_log_load_newest_digest(kms_audit *a) __attribute__((warn_unused_result));
/* Builds the digest of the segment open as fd and has it signed. */
int kms_audit_log_sign_digest(kms_audit *a, int fd, signed_digest *d)
    __attribute__((warn_unused_result));
void kms_audit_log_signed_digest_clean_up(signed_digest *d);
/* Writes NNN.json.sig then NNN.json, each atomically (audit.h sealing order). */
int kms_audit_log_store_digest(kms_audit *a, const signed_digest *d)
    __attribute__((warn_unused_result));

/* ---- The anchor (audit_anchor.c) --------------------------------------------------------- */

/* Reads and parses the anchor into a->anchor (refusing a malformed one). */
int kms_audit_log_read_anchor(kms_audit *a) __attribute__((warn_unused_result));
/* With a->dg just loaded: reads the anchor; the trail reaches the anchored digest, with the
 * anchored bytes, and no digest goes beyond the acknowledged record. */
int kms_audit_log_check_anchor(kms_audit *a) __attribute__((warn_unused_result));
/* Stores the anchor naming the newest digest found and the last record written (a->next_seq -
 * 1, whose chain hash is a->prev_hash), unless it names that record (or a later one) already. */
int kms_audit_log_ack(kms_audit *a) __attribute__((warn_unused_result));
/* After digest d is stored: the anchor names it, unless it names a newer one. */
int kms_audit_log_move_anchor(kms_audit *a, const signed_digest *d)
    __attribute__((warn_unused_result));

/* ---- Sealing (audit_seal.c) -------------------------------------------------------------- */

/* After check_state: seals the open segment if it holds records. */
int kms_audit_log_seal_open(kms_audit *a);
/* Whether the open segment holds records and digest_period has passed since the newest digest,
 * or it reached its size limit. */
bool kms_audit_log_seal_due(kms_audit *a);
/* After a successful batch: seals when due. */
void kms_audit_log_periodic_seal(kms_audit *a);

#endif
