/* The audit log writer: chained record lines appended with group commit, segments sealed by
 * signed digests, torn tails repaired (audit.h has the on-disk contract).
 *
 * Concurrency. Inside a process, the state below "owned by the busy thread" belongs to the one
 * thread that set `busy`: the group-commit leader, or a sealer. Across processes, every flush and
 * seal runs under flock(dir/LOCK), and starts by checking (fstat) whether another process
 * appended to or sealed the open segment since this handle last held the lock. */
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
#include "util/buf.h"
#include "util/util.h"

#define CHUNK 16384
/* Segment space is preallocated (zeros written and synced ahead of the records), so that the
 * fdatasync of a batch flushes data blocks only: no journal commit for a new file size. The
 * space ahead grows with the segment, from PREALLOC_MIN up to PREALLOC_MAX at a time. */
#define PREALLOC_MIN ((off_t)64 * 1024)
#define PREALLOC_MAX ((off_t)4 * 1024 * 1024)
/* A group-commit leader waits for announced records (kms_audit_announce) at most as long as the
 * last flush took, and never longer than GATHER_MAX_NS. Below GATHER_MIN_NS (a flush to memory,
 * as on tmpfs) waking and waiting would cost more than a flush of its own: no wait. */
#define GATHER_MIN_NS 20000
#define GATHER_MAX_NS 2000000
/* What the writer appends before the final '}' (audit.h "A record line"), at its longest: a
 * 20-digit sequence number. */
#define CHAIN_MAX                                                                                  \
    (sizeof ",\"auditChain\":{\"sequence\":" - 1 + 20 + sizeof ",\"previousHash\":\"" - 1 +        \
     KMS_AUDIT_HASH_HEX + sizeof "\"}}" - 1)
#define DIGEST_MAX (1024 * 1024)
#define SIG_MAX 4096
#define ERROR_MESSAGE_MAX 512

static const char zero_hash[KMS_AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* One appending thread's record, on its own stack until the batch holding it is done. */
typedef struct waiter {
    const char *record;
    size_t len;
    int rc;
    kms_error code;
    char message[ERROR_MESSAGE_MAX];
    bool done;
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
} digest_info;

struct kms_audit {
    char *dir, *segments, *digests, *torn, *lock_path;
    char *account_id, *region;
    int64_t period;
    kms_audit_signer signer;
    char fingerprint[KMS_AUDIT_HASH_HEX + 1];
    int lock_fd;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    waiter *head;
    waiter **tail;
    bool busy; /* some thread owns the state below */
    unsigned announced; /* records announced and not yet appended (or withdrawn) */
    atomic_int space_err; /* errno of the last failure to keep space ahead, 0: none */

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
    /* The anchor's lastSequence as this handle last read (discover) or set it, 0: none. Exact
     * under LOCK: the anchor moves only when a segment is sealed, and whoever seals the open
     * segment makes every other handle discover the trail (and read the anchor) again. */
    uint64_t anchor_seq;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static int io_fail(const char *what, const char *path, int err)
{
    return kms_raise(KMS_ERR_AUDIT,
                     "cannot %s %s: %s; the operation was not performed (free space or fix "
                     "permissions, then retry)",
                     what, path, strerror(err));
}

static int damaged(const char *path, const char *why)
{
    return kms_raise(KMS_ERR_AUDIT,
                     "the audit log file %s is damaged (%s): operations are refused until it is "
                     "restored from a backup (`kmsctl validate-logs` shows the damage)",
                     path, why);
}

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool is_hash_hex(const char *s)
{
    if (s == NULL || strlen(s) != KMS_AUDIT_HASH_HEX) {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return false;
        }
    }
    return true;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return io_fail("open the directory", path, errno);
    }
    int r = 0;
    if (fsync(fd) != 0) {
        r = io_fail("sync the directory", path, errno);
    }
    close(fd);
    return r;
}

/* Reads exactly n bytes at off; -1 with errno set otherwise (EIO if the file is shorter). */
static int pread_full(int fd, void *p, size_t n, off_t off)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t k = pread(fd, b, n, off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            if (k == 0) {
                errno = EIO;
            }
            return -1;
        }
        b += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

/* *pos = offset of the last '\n' in [0, end), or -1 if there is none. */
static int rfind_newline(int fd, const char *path, off_t end, off_t *pos)
{
    char buf[CHUNK];
    off_t hi = end;
    while (hi > 0) {
        size_t n = hi > CHUNK ? CHUNK : (size_t)hi;
        off_t lo = hi - (off_t)n;
        if (pread_full(fd, buf, n, lo) != 0) {
            return io_fail("read the audit log segment", path, errno);
        }
        for (size_t i = n; i > 0; i--) {
            if (buf[i - 1] == '\n') {
                *pos = lo + (off_t)(i - 1);
                return 0;
            }
        }
        hi = lo;
    }
    *pos = -1;
    return 0;
}

static int read_range(int fd, const char *path, off_t start, size_t n, char **out)
{
    char *p = malloc(n + 1);
    if (p == NULL) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    if (pread_full(fd, p, n, start) != 0) {
        free(p);
        return io_fail("read the audit log segment", path, errno);
    }
    p[n] = '\0';
    *out = p;
    return 0;
}

/* The last line of a segment of `size` bytes that ends with '\n' (without the '\n'). */
static int last_line(int fd, const char *path, off_t size, char **line, size_t *len)
{
    off_t nl = -1;
    KMS_GUARD(rfind_newline(fd, path, size - 1, &nl));
    size_t n = (size_t)(size - 1 - (nl + 1));
    if (n > KMS_AUDIT_RECORD_MAX) {
        return damaged(path, "its last line is longer than a record can be");
    }
    KMS_GUARD(read_range(fd, path, nl + 1, n, line));
    *len = n;
    return 0;
}

/* The first line of a segment that holds at least one '\n' (without the '\n'). */
static int first_line(int fd, const char *path, off_t size, char **line, size_t *len)
{
    size_t want =
        (uint64_t)size > KMS_AUDIT_RECORD_MAX + 1 ? KMS_AUDIT_RECORD_MAX + 1 : (size_t)size;
    char *p = NULL;
    KMS_GUARD(read_range(fd, path, 0, want, &p));
    char *nl = memchr(p, '\n', want);
    if (nl == NULL) {
        free(p);
        return damaged(path, "its first line is longer than a record can be");
    }
    *nl = '\0';
    *line = p;
    *len = (size_t)(nl - p);
    return 0;
}

/* A record line's auditChain.sequence and (if it has one) its eventTime (malloc'd). */
static int parse_line(const char *path, const char *line, size_t len, uint64_t *seq,
                      char **event_time)
{
    json_error_t err;
    json_t *o = json_loadb(line, len, 0, &err);
    json_t *chain = json_object_get(o, "auditChain");
    json_t *s = json_object_get(chain, "sequence");
    json_t *t = json_object_get(o, "eventTime");
    if (!json_is_object(o) || !json_is_integer(s) || json_integer_value(s) < 1) {
        json_decref(o);
        return damaged(path, "a record without a valid auditChain.sequence");
    }
    *seq = (uint64_t)json_integer_value(s);
    if (event_time != NULL) {
        *event_time = json_is_string(t) ? strdup(json_string_value(t)) : NULL;
    }
    json_decref(o);
    return 0;
}

/* ---- the open segment --------------------------------------------------------------------- */

static void close_segment(kms_audit *a)
{
    if (a->seg_fd >= 0) {
        close(a->seg_fd);
    }
    a->seg_fd = -1;
    a->seg_size = -1;
    a->seg_alloc = 0;
    a->seg_start = -1;
}

static int set_segment(kms_audit *a, uint64_t first)
{
    char *path = NULL;
    snprintf(a->seg_name, sizeof a->seg_name, "segments/%020" PRIu64 ".jsonl", first);
    if ((path = kms_path_join(a->dir, a->seg_name)) == NULL) {
        return -1;
    }
    free(a->seg_path);
    a->seg_path = path;
    a->seg_first = first;
    return 0;
}

/* Takes the trail's tail from the open segment of `size` bytes, which ends with '\n'. */
static int set_tail(kms_audit *a, off_t size)
{
    a->seg_size = size;
    if (size == 0) {
        a->next_seq = a->seg_first;
        memcpy(a->prev_hash, a->dg.present ? a->dg.last_record_hash : zero_hash,
               sizeof a->prev_hash);
        return 0;
    }
    char *line = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    KMS_GUARD(last_line(a->seg_fd, a->seg_path, size, &line, &len));
    int r = parse_line(a->seg_path, line, len, &seq, NULL);
    if (r == 0 && seq < a->seg_first) {
        r = damaged(a->seg_path, "its last record's sequence comes before the segment's first");
    }
    if (r == 0) {
        a->next_seq = seq + 1;
        kms_audit_sha256_hex(line, len, a->prev_hash);
    }
    free(line);
    return r;
}

static int create_segment(kms_audit *a)
{
    KMS_GUARD(set_segment(a, a->next_seq));
    int fd = open(a->seg_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return io_fail("create the audit log segment", a->seg_path, errno);
    }
    a->seg_fd = fd;
    a->seg_size = 0;
    a->seg_alloc = 0;
    a->seg_start = -1;
    if (fsync_dir(a->segments) != 0) {
        close_segment(a);
        unlink(a->seg_path);
        return -1;
    }
    return 0;
}

/* Undoes a failed batch: no partial line may stay behind (audit.h "Durability"). */
static void undo_batch(kms_audit *a, off_t before, bool created)
{
    if (created) {
        close_segment(a);
        unlink(a->seg_path);
        (void)fsync_dir(a->segments);
        return;
    }
    if (ftruncate(a->seg_fd, before) != 0 || fdatasync(a->seg_fd) != 0) {
        a->seg_size = -1; /* unknown: the next flush reads the tail again (and repairs it) */
        return;
    }
    a->seg_alloc = before;
}

static int pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    const char *b = p;
    while (n > 0) {
        ssize_t k = pwrite(fd, b, n, off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return k < 0 ? errno : EIO;
        }
        b += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

/* Keeps at least PREALLOC_MIN bytes of zeros written after the records that end at `end`,
 * writing up to PREALLOC_MAX more at a time (as much as the segment holds already). Space
 * written ahead cannot run out under a record: a full disk shows here, where the next operation
 * is refused before it runs (kms_audit_announce), not under a record of one that ran. 0 or an
 * errno; a->seg_alloc says how far the zeros reach. */
static int keep_reserve(kms_audit *a, off_t end)
{
    static const char zeros[CHUNK];
    if (a->seg_alloc - end >= PREALLOC_MIN) {
        return 0;
    }
    off_t ahead = end < PREALLOC_MIN ? PREALLOC_MIN : end > PREALLOC_MAX ? PREALLOC_MAX : end;
    off_t target = end + ahead;
    if (a->seg_alloc < end) {
        a->seg_alloc = end;
    }
    while (a->seg_alloc < target) {
        size_t n = target - a->seg_alloc > CHUNK ? CHUNK : (size_t)(target - a->seg_alloc);
        int err = pwrite_all(a->seg_fd, zeros, n, a->seg_alloc);
        if (err != 0) {
            return err;
        }
        a->seg_alloc += (off_t)n;
    }
    return 0;
}

static int64_t monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Writes the records of `list` (validated) as chained lines at the end of the records, with one
 * pwrite and one fdatasync. All or nothing. */
static int write_batch(kms_audit *a, const waiter *list)
{
    int r = -1;
    kms_buf b;
    kms_buf_init(&b, false);
    uint64_t seq = a->next_seq;
    char prev[KMS_AUDIT_HASH_HEX + 1];
    memcpy(prev, a->prev_hash, sizeof prev);
    for (const waiter *w = list; w != NULL; w = w->next) {
        /* {"a":1} -> {"a":1,"auditChain":{...}}; {} -> {"auditChain":{...}} */
        size_t body = w->len - 1;
        size_t i = body;
        while (i > 0 && (w->record[i - 1] == ' ' || w->record[i - 1] == '\t')) {
            i--;
        }
        bool empty = i > 0 && w->record[i - 1] == '{';
        char chain[CHAIN_MAX + 2];
        snprintf(chain, sizeof chain,
                 "%s\"auditChain\":{\"sequence\":%" PRIu64 ",\"previousHash\":\"%s\"}}",
                 empty ? "" : ",", seq, prev);
        size_t start = b.len;
        if (kms_buf_append(&b, w->record, body) != 0 ||
            kms_buf_append(&b, chain, strlen(chain)) != 0) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        kms_audit_sha256_hex(b.data + start, b.len - start, prev);
        if (kms_buf_append_u8(&b, '\n') != 0) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        seq++;
    }
    bool created = false;
    if (a->seg_fd < 0) {
        if (create_segment(a) != 0) {
            goto out;
        }
        created = true;
    }
    off_t before = a->seg_size, end = before + (off_t)b.len;
    int err = pwrite_all(a->seg_fd, b.data, b.len, before);
    if (err != 0) {
        undo_batch(a, before, created);
        io_fail("write the audit log segment", a->seg_path, err);
        goto out;
    }
    /* The zeros ahead share this batch's flush; when they cannot be written the records still
     * are, and new operations wait for space (kms_audit_announce). */
    int space = keep_reserve(a, end);
    int64_t t0 = monotonic_ns();
    if (fdatasync(a->seg_fd) != 0) {
        err = errno;
        undo_batch(a, before, created);
        io_fail("sync the audit log segment", a->seg_path, err);
        goto out;
    }
    a->sync_ns = monotonic_ns() - t0;
    a->seg_size = end;
    atomic_store(&a->space_err, space);
    a->next_seq = seq;
    memcpy(a->prev_hash, prev, sizeof prev);
    r = 0;
out:
    kms_buf_clean_up(&b);
    return r;
}

/* The AwsServiceEvent that records a repair (audit.h "Durability, group commit, crash"). */
static char *repair_record(kms_audit *a, off_t offset, size_t length, const char *sha256)
{
    char id[KMS_UUID_STR_LEN + 1];
    char now[32];
    if (kms_uuid_new(id) != 0) {
        return NULL;
    }
    kms_time_iso8601(kms_now(), now);
    json_t *o = json_pack(
        "{s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:n, s:{s:s, s:I, s:I, s:s}, "
        "s:s, s:b, s:s, s:b, s:s, s:s}",
        "eventVersion", "1.08", "userIdentity", "type", "AWSService", "invokedBy",
        "kms.amazonaws.com", "eventTime", now, "eventSource", "kms.amazonaws.com", "eventName",
        "AuditLogRepaired", "awsRegion", a->region, "sourceIPAddress", "kms.amazonaws.com",
        "userAgent", "kms.amazonaws.com", "requestParameters", "responseElements",
        "serviceEventDetails", "segment", a->seg_name, "offset", (json_int_t)offset, "length",
        (json_int_t)length, "sha256", sha256, "eventID", id, "readOnly", 0, "eventType",
        "AwsServiceEvent", "managementEvent", 1, "recipientAccountId", a->account_id,
        "eventCategory", "Management");
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot build the AuditLogRepaired record");
    }
    return s;
}

/* Keeps the n cut bytes in torn/SEGMENT-OFFSET (SEGMENT-OFFSET.K if that name is taken: a
 * segment cut twice at one offset), never replacing an earlier file. */
static int keep_torn(kms_audit *a, off_t offset, const char *bytes, size_t n)
{
    if (mkdir(a->torn, 0700) != 0 && errno != EEXIST) {
        return io_fail("create the directory", a->torn, errno);
    }
    for (unsigned k = 0; k < 1000; k++) {
        char *path = k == 0 ? kms_strdup_printf("%s/%s-%lld", a->torn,
                                                a->seg_name + strlen("segments/"), (long long)offset)
                            : kms_strdup_printf("%s/%s-%lld.%u", a->torn,
                                                a->seg_name + strlen("segments/"),
                                                (long long)offset, k);
        if (path == NULL) {
            return -1;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
            free(path);
            continue;
        }
        int err = fd < 0 ? errno : pwrite_all(fd, bytes, n, 0);
        if (err == 0 && fsync(fd) != 0) {
            err = errno;
        }
        if (fd >= 0) {
            close(fd);
        }
        if (err != 0) {
            if (fd >= 0) {
                unlink(path);
            }
            io_fail("keep the torn bytes of the audit log segment in", path, err);
            free(path);
            return -1;
        }
        free(path);
        return fsync_dir(a->torn);
    }
    return kms_raise(KMS_ERR_AUDIT, "cannot keep the torn bytes of %s: too many files in %s",
                     a->seg_path, a->torn);
}

/* Bytes a crash left after the last whole line (a write cut short, or parts of one): keep them
 * in torn/, cut the segment back to that line's end and record the repair in the trail itself. */
static int repair_torn(kms_audit *a, off_t offset, off_t size)
{
    int r = -1;
    size_t n = (size_t)(size - offset);
    char *bytes = NULL, *record = NULL;
    char sha[KMS_AUDIT_HASH_HEX + 1];
    if (read_range(a->seg_fd, a->seg_path, offset, n, &bytes) != 0) {
        goto out;
    }
    kms_audit_sha256_hex(bytes, n, sha);
    if (keep_torn(a, offset, bytes, n) != 0) {
        goto out;
    }
    if (ftruncate(a->seg_fd, offset) != 0 || fdatasync(a->seg_fd) != 0) {
        io_fail("truncate the torn audit log segment", a->seg_path, errno);
        a->seg_size = -1;
        goto out;
    }
    a->seg_alloc = offset;
    if (set_tail(a, offset) != 0 || (record = repair_record(a, offset, n, sha)) == NULL) {
        goto out;
    }
    waiter w = {.record = record, .len = strlen(record)};
    r = write_batch(a, &w);
out:
    free(bytes);
    free(record);
    return r;
}

/* Where the records of the open segment (`size` bytes) end, reading forward from `from`, the
 * start of a line known to be whole: at the last '\n' before the first NUL byte (the start of
 * the preallocated zeros) or before the end of the file. *data_end: just past the last byte that
 * is not NUL; bytes in [*end, *data_end) are torn (a crash during a write). */
static int find_end(kms_audit *a, off_t from, off_t size, off_t *end, off_t *data_end)
{
    char buf[CHUNK];
    off_t pos = from, nul = size;
    *end = from;
    while (pos < size) {
        size_t n = size - pos > CHUNK ? CHUNK : (size_t)(size - pos);
        if (pread_full(a->seg_fd, buf, n, pos) != 0) {
            return io_fail("read the audit log segment", a->seg_path, errno);
        }
        const char *z = memchr(buf, '\0', n);
        size_t m = z != NULL ? (size_t)(z - buf) : n;
        const char *nl = memrchr(buf, '\n', m);
        if (nl != NULL) {
            *end = pos + (nl - buf) + 1;
        }
        if (z != NULL) {
            nul = pos + (off_t)m;
            break;
        }
        pos += (off_t)n;
    }
    /* Past the first NUL, only zeros belong: find the last byte that is not one. */
    *data_end = nul;
    for (off_t hi = size; hi > nul;) {
        size_t n = hi - nul > CHUNK ? CHUNK : (size_t)(hi - nul);
        off_t lo = hi - (off_t)n;
        if (pread_full(a->seg_fd, buf, n, lo) != 0) {
            return io_fail("read the audit log segment", a->seg_path, errno);
        }
        size_t i = n;
        while (i > 0 && buf[i - 1] == '\0') {
            i--;
        }
        if (i > 0) {
            *data_end = lo + (off_t)i;
            break;
        }
        hi = lo;
    }
    return 0;
}

/* Reads the open segment's records again from `from` (0, or where they ended when this handle
 * last looked: another process appended since), repairing a torn end. */
static int load_tail(kms_audit *a, off_t from)
{
    struct stat st;
    if (fstat(a->seg_fd, &st) != 0) {
        return io_fail("examine the audit log segment", a->seg_path, errno);
    }
    if (from > st.st_size) {
        from = 0; /* cut shorter than its records were: look at all of it */
    }
    off_t end = 0, data_end = 0;
    KMS_GUARD(find_end(a, from, st.st_size, &end, &data_end));
    a->seg_alloc = st.st_size;
    if (data_end > end) {
        return repair_torn(a, end, data_end);
    }
    return set_tail(a, end);
}

/* ---- digests ------------------------------------------------------------------------------ */

static bool is_digest_name(const char *s)
{
    if (strlen(s) != 25 || strcmp(s + 20, ".json") != 0) {
        return false;
    }
    for (int i = 0; i < 20; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

static int parse_digest(kms_audit *a, const char *path, const char *text, size_t len,
                        uint64_t name_seq)
{
    json_error_t err;
    json_t *o = json_loadb(text, len, 0, &err);
    json_t *last = json_object_get(o, "lastSequence");
    const char *hash = json_string_value(json_object_get(o, "lastRecordHash"));
    const char *end = json_string_value(json_object_get(o, "digestEndTime"));
    int r = 0;
    if (!json_is_integer(last) || (uint64_t)json_integer_value(last) != name_seq ||
        !is_hash_hex(hash) || end == NULL || strlen(end) >= sizeof a->dg.end_time ||
        kms_audit_parse_time(end) < 0) {
        r = damaged(path, "not a digest of this trail: lastSequence, lastRecordHash or "
                          "digestEndTime missing or wrong");
    } else {
        memcpy(a->dg.last_record_hash, hash, sizeof a->dg.last_record_hash);
        snprintf(a->dg.end_time, sizeof a->dg.end_time, "%s", end);
        a->dg.end = kms_audit_parse_time(end);
        a->dg.last_sequence = name_seq;
    }
    json_decref(o);
    return r;
}

/* Finds the newest digest (highest NNN) and reads what the next one chains to. */
static int load_newest_digest(kms_audit *a)
{
    free(a->dg.signature_hex);
    memset(&a->dg, 0, sizeof a->dg);
    DIR *d = opendir(a->digests);
    if (d == NULL) {
        return io_fail("read the audit digest directory", a->digests, errno);
    }
    char best[32] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (is_digest_name(e->d_name) && strcmp(e->d_name, best) > 0) {
            memcpy(best, e->d_name, 26); /* 25 characters and the NUL */
        }
    }
    closedir(d);
    if (best[0] == '\0') {
        return 0;
    }
    int r = -1;
    char *path = NULL, *sig_path = NULL, *text = NULL, *sig = NULL;
    size_t len = 0, sig_len = 0;
    snprintf(a->dg.file, sizeof a->dg.file, "digests/%s", best);
    if ((path = kms_path_join(a->dir, a->dg.file)) == NULL ||
        (sig_path = kms_strdup_printf("%s.sig", path)) == NULL) {
        goto out;
    }
    if (kms_file_read(path, DIGEST_MAX, &text, &len) != 0 ||
        kms_file_read(sig_path, SIG_MAX, &sig, &sig_len) != 0) {
        damaged(path, kms_last_error_message());
        goto out;
    }
    if (parse_digest(a, path, text, len, strtoull(best, NULL, 10)) != 0) {
        goto out;
    }
    if ((a->dg.signature_hex = malloc(2 * sig_len + 1)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    hex_encode((const uint8_t *)sig, sig_len, a->dg.signature_hex);
    kms_audit_sha256_hex(text, len, a->dg.hash);
    a->dg.present = true;
    r = 0;
out:
    free(path);
    free(sig_path);
    free(text);
    free(sig);
    return r;
}

/* The digest JSON for the segment open as fd (audit.h "A digest"), compact, in the listed order. */
static int build_digest(kms_audit *a, int fd, char **json, size_t *json_len, uint64_t *last_seq)
{
    int r = -1;
    char *first = NULL, *last = NULL, *oldest = NULL, *newest = NULL;
    size_t first_len = 0, last_len = 0;
    uint64_t first_seq = 0;
    char file_hash[KMS_AUDIT_HASH_HEX + 1], last_hash[KMS_AUDIT_HASH_HEX + 1];
    char digest_file[48], now[32];
    json_t *log = NULL, *d = NULL;
    struct stat st;
    char c = 0;
    const char *path = a->seg_path;
    if (fstat(fd, &st) != 0 || (st.st_size > 0 && pread_full(fd, &c, 1, st.st_size - 1) != 0)) {
        io_fail("read the audit log segment", path, errno);
        goto out;
    }
    if (st.st_size == 0 || c != '\n') {
        damaged(path, st.st_size == 0 ? "a sealed segment without records"
                                      : "a sealed segment that ends with a torn line");
        goto out;
    }
    uint8_t md[32];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    char buf[CHUNK];
    for (off_t off = 0; ok && off < st.st_size;) {
        size_t n = st.st_size - off > CHUNK ? CHUNK : (size_t)(st.st_size - off);
        if (pread_full(fd, buf, n, off) != 0) {
            int err = errno;
            EVP_MD_CTX_free(ctx);
            io_fail("read the audit log segment", path, err);
            goto out;
        }
        ok = EVP_DigestUpdate(ctx, buf, n) == 1;
        off += (off_t)n;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len == sizeof md;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        kms_raise(KMS_ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    hex_encode(md, sizeof md, file_hash);
    if (first_line(fd, path, st.st_size, &first, &first_len) != 0 ||
        parse_line(path, first, first_len, &first_seq, &oldest) != 0 ||
        last_line(fd, path, st.st_size, &last, &last_len) != 0 ||
        parse_line(path, last, last_len, last_seq, &newest) != 0) {
        goto out;
    }
    if (first_seq != a->seg_first || *last_seq < first_seq) {
        damaged(path, "its sequence numbers do not match its name");
        goto out;
    }
    kms_audit_sha256_hex(last, last_len, last_hash);
    kms_time_iso8601(kms_now(), now);
    snprintf(digest_file, sizeof digest_file, "digests/%020" PRIu64 ".json", *last_seq);
    log = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s?, s:s?}", "file", a->seg_name, "hashValue",
                    file_hash, "hashAlgorithm", "SHA-256", "firstSequence", (json_int_t)first_seq,
                    "lastSequence", (json_int_t)*last_seq, "oldestEventTime", oldest,
                    "newestEventTime", newest);
    const char *start = a->dg.present ? a->dg.end_time : oldest != NULL ? oldest : now;
    const char *prev_file = a->dg.present ? a->dg.file : NULL;
    const char *prev_hash = a->dg.present ? a->dg.hash : NULL;
    d = log == NULL
            ? NULL
            : json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s, "
                        "s:s?, s:I, s:I, s:s, s:[O]}",
                        "awsAccountId", a->account_id, "digestStartTime", start, "digestEndTime",
                        now, "digestFile", digest_file, "digestPublicKeyFingerprint",
                        a->fingerprint, "digestSignatureAlgorithm", "SHA256withECDSA",
                        "oldestEventTime", oldest, "newestEventTime", newest, "previousDigestFile",
                        prev_file, "previousDigestHashValue", prev_hash,
                        "previousDigestHashAlgorithm", "SHA-256", "previousDigestSignature",
                        a->dg.signature_hex, "firstSequence", (json_int_t)first_seq, "lastSequence",
                        (json_int_t)*last_seq, "lastRecordHash", last_hash, "logFiles", log);
    if (d == NULL || (*json = json_dumps(d, JSON_COMPACT)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot build the audit digest for %s", path);
        goto out;
    }
    *json_len = strlen(*json);
    r = 0;
out:
    json_decref(log);
    json_decref(d);
    free(first);
    free(last);
    free(oldest);
    free(newest);
    return r;
}

/* A digest built and signed, not yet on disk. */
typedef struct signed_digest {
    char *json;
    size_t len;
    uint64_t last_seq;
    uint8_t *sig;
    size_t sig_len;
} signed_digest;

static void signed_digest_clean_up(signed_digest *d)
{
    free(d->json);
    free(d->sig);
    memset(d, 0, sizeof *d);
}

/* Builds the digest of the segment open as fd and has it signed (ECDSA over SHA-256 of the exact
 * bytes). */
static int sign_digest(kms_audit *a, int fd, signed_digest *d)
{
    uint8_t md[32];
    unsigned int md_len = 0;
    memset(d, 0, sizeof *d);
    KMS_GUARD(build_digest(a, fd, &d->json, &d->len, &d->last_seq));
    if (EVP_Digest(d->json, d->len, md, &md_len, EVP_sha256(), NULL) != 1) {
        signed_digest_clean_up(d);
        return kms_raise(KMS_ERR_INTERNAL, "SHA-256 failed");
    }
    if (a->signer.sign(a->signer.arg, md, &d->sig, &d->sig_len) != 0 || d->sig == NULL) {
        signed_digest_clean_up(d);
        return kms_raise(KMS_ERR_AUDIT, "cannot sign the audit digest of %s: %s", a->seg_path,
                         kms_last_error_message());
    }
    return 0;
}

/* Writes NNN.json.sig then NNN.json, each atomically (audit.h sealing order). */
static int store_digest(kms_audit *a, const signed_digest *d)
{
    int r = -1;
    char name[48];
    char *path = NULL, *sig_path = NULL;
    snprintf(name, sizeof name, "digests/%020" PRIu64 ".json", d->last_seq);
    if ((path = kms_path_join(a->dir, name)) == NULL ||
        (sig_path = kms_strdup_printf("%s.sig", path)) == NULL) {
        goto out;
    }
    if (kms_file_write_atomic(sig_path, d->sig, d->sig_len, 0400) != 0 ||
        fsync_dir(a->digests) != 0 || kms_file_write_atomic(path, d->json, d->len, 0400) != 0 ||
        fsync_dir(a->digests) != 0) {
        kms_raise(KMS_ERR_AUDIT, "cannot write the audit digest %s: %s", path,
                  kms_last_error_message());
        goto out;
    }
    r = 0;
out:
    free(path);
    free(sig_path);
    return r;
}

/* ---- the anchor (audit.h "The anchor") ---------------------------------------------------- */

/* Refuses the trail as rolled back; `found` says what the trail holds instead of the anchored
 * digest. */
static int rolled_back(kms_audit *a, const kms_audit_anchor *an, const char *found)
{
    char end[96];
    if (a->dg.present) {
        snprintf(end, sizeof end, "ends at %s (record %" PRIu64 ")", a->dg.file,
                 a->dg.last_sequence);
    } else {
        snprintf(end, sizeof end, "has no digest");
    }
    return kms_raise(KMS_ERR_AUDIT,
                     "the audit trail in %s %s but the HSM anchor says %s (record %" PRIu64
                     ") was written, and %s: digests or segments were deleted or rolled back. "
                     "Operations are refused: run `kmsctl validate-logs` and restore the audit "
                     "directory from a backup that holds %s",
                     a->dir, end, an->file, an->last_sequence, found, an->file);
}

/* The SHA-256 of the anchored digest file; *missing when there is no such file. */
static int anchored_hash(kms_audit *a, const kms_audit_anchor *an, bool *missing,
                         char hash[KMS_AUDIT_HASH_HEX + 1])
{
    *missing = false;
    if (a->dg.present && strcmp(an->file, a->dg.file) == 0) {
        memcpy(hash, a->dg.hash, KMS_AUDIT_HASH_HEX + 1);
        return 0;
    }
    /* The trail is ahead of the anchor (a crash between a digest and its anchor): an older
     * digest, read only here. */
    char *path = kms_path_join(a->dir, an->file);
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    if (path == NULL) {
        return -1;
    }
    int r = 0;
    if (lstat(path, &st) != 0 && errno == ENOENT) {
        *missing = true;
    } else if (kms_file_read(path, DIGEST_MAX, &text, &len) != 0) {
        r = damaged(path, kms_last_error_message());
    } else {
        kms_audit_sha256_hex(text, len, hash);
    }
    free(text);
    free(path);
    return r;
}

/* Under LOCK, with a->dg just loaded: the trail reaches the anchored digest, whose bytes are the
 * anchored ones. Looks at files only (changes nothing), so that a refused trail stays as found. */
static int check_anchor(kms_audit *a)
{
    a->anchor_seq = 0;
    if (a->signer.anchor_get == NULL) {
        return 0;
    }
    char *text = NULL;
    if (a->signer.anchor_get(a->signer.arg, &text) != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "cannot read the anchor of the audit trail in %s: %s; operations are "
                         "refused until it can be read",
                         a->dir, kms_last_error_message());
    }
    if (text == NULL) {
        return 0; /* none yet: the next seal sets it */
    }
    int r = -1;
    kms_audit_anchor an;
    const char *why = NULL;
    bool missing = false;
    char hash[KMS_AUDIT_HASH_HEX + 1];
    if (!kms_audit_anchor_parse(text, &an, &why)) {
        kms_raise(KMS_ERR_AUDIT,
                  "the HSM anchor of the audit trail in %s is malformed (%s): operations are "
                  "refused until a holder of the token PIN corrects it; run `kmsctl "
                  "validate-logs` to see how far the trail goes",
                  a->dir, why);
        goto out;
    }
    uint64_t have = a->dg.present ? a->dg.last_sequence : 0;
    if (have < an.last_sequence) {
        rolled_back(a, &an, "that digest is missing");
        goto out;
    }
    if (anchored_hash(a, &an, &missing, hash) != 0) {
        goto out;
    }
    if (missing) {
        rolled_back(a, &an, "that digest is missing");
        goto out;
    }
    if (strcmp(hash, an.hash) != 0) {
        rolled_back(a, &an, "that digest's bytes are not the ones anchored (it was replaced)");
        goto out;
    }
    a->anchor_seq = an.last_sequence;
    r = 0;
out:
    free(text);
    return r;
}

/* After digest d is stored (under LOCK): the anchor names it, unless it names a newer one. */
static int move_anchor(kms_audit *a, const signed_digest *d)
{
    if (a->signer.anchor_set == NULL || d->last_seq <= a->anchor_seq) {
        return 0;
    }
    char hash[KMS_AUDIT_HASH_HEX + 1], text[KMS_AUDIT_ANCHOR_MAX];
    kms_audit_sha256_hex(d->json, d->len, hash);
    kms_audit_anchor_format(d->last_seq, hash, text);
    if (a->signer.anchor_set(a->signer.arg, text) != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit digest digests/%020" PRIu64 ".json was written but the HSM "
                         "anchor could not be moved to it (%s); the next seal moves it",
                         d->last_seq, kms_last_error_message());
    }
    a->anchor_seq = d->last_seq;
    return 0;
}

/* Finds where the trail continues: the newest digest (checked against the anchor), the segment
 * after it (refusing one sealed without a digest), its tail (repairing a torn last line). */
static int discover(kms_audit *a)
{
    for (;;) {
        close_segment(a);
        KMS_GUARD(load_newest_digest(a));
        KMS_GUARD(check_anchor(a));
        KMS_GUARD(set_segment(a, a->dg.present ? a->dg.last_sequence + 1 : 1));
        a->next_seq = a->seg_first;
        memcpy(a->prev_hash, a->dg.present ? a->dg.last_record_hash : zero_hash,
               sizeof a->prev_hash);
        struct stat st;
        if (lstat(a->seg_path, &st) != 0) {
            if (errno == ENOENT) {
                return 0; /* created by the next flush */
            }
            return io_fail("examine the audit log segment", a->seg_path, errno);
        }
        if (!S_ISREG(st.st_mode)) {
            return damaged(a->seg_path, "not a regular file");
        }
        if ((st.st_mode & S_IWUSR) == 0) {
            /* Sealed, yet no digest covers it: a sealer died between the chmod and the digest,
             * or the digest was deleted. Signing it now could sign tampered records, so the
             * trail stops until a person looks (fail closed). */
            return kms_raise(KMS_ERR_AUDIT,
                             "the audit log segment %s is sealed but no digest covers it: its "
                             "digest was deleted, or a crash interrupted sealing. Run `kmsctl "
                             "validate-logs`; if only the seal was interrupted, `chmod 600` the "
                             "segment to reopen it. Operations are refused until then",
                             a->seg_path);
        }
        int fd = open(a->seg_path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            return io_fail("open the audit log segment", a->seg_path, errno);
        }
        a->seg_fd = fd;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            return damaged(a->seg_path, "not a regular file");
        }
        return load_tail(a, 0);
    }
}

/* Under LOCK: brings the cached state up to date with what other processes did. */
static int check_state(kms_audit *a)
{
    struct stat st;
    if (fstat(a->lock_fd, &st) != 0 || st.st_nlink == 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit log directory %s is missing: operations are refused until it "
                         "is restored (restore it from a backup, or run `kmsctl init` for a new "
                         "home)",
                         a->dir);
    }
    if (a->seg_fd >= 0) {
        if (fstat(a->seg_fd, &st) != 0) {
            return io_fail("examine the audit log segment", a->seg_path, errno);
        }
        if (st.st_nlink == 0 || (st.st_mode & S_IWUSR) == 0) {
            close_segment(a); /* sealed (or removed) by someone else */
        } else if (a->seg_size < 0 || st.st_size < a->seg_size) {
            return load_tail(a, 0);
        } else if (st.st_size > a->seg_size) {
            /* Records never hold a NUL: one where ours end means nobody appended since. */
            char c = 0;
            if (pread_full(a->seg_fd, &c, 1, a->seg_size) != 0) {
                return io_fail("read the audit log segment", a->seg_path, errno);
            }
            if (c != '\0') {
                return load_tail(a, a->seg_size);
            }
            a->seg_alloc = st.st_size;
        }
    }
    return a->seg_fd >= 0 ? 0 : discover(a);
}

/* Under LOCK, after check_state: seals the open segment if it holds records. */
static int seal_open(kms_audit *a)
{
    if (a->seg_fd < 0 || a->next_seq <= a->seg_first) {
        return 0;
    }
    /* The preallocated zeros go first: a sealed segment is its records alone. Then hash and sign
     * before the chmod: a signer that fails leaves the segment open. LOCK keeps other writers out
     * meanwhile. */
    if (a->seg_alloc > a->seg_size) {
        if (ftruncate(a->seg_fd, a->seg_size) != 0) {
            return io_fail("seal the audit log segment", a->seg_path, errno);
        }
        a->seg_alloc = a->seg_size;
    }
    signed_digest d;
    KMS_GUARD(sign_digest(a, a->seg_fd, &d));
    int r = -1;
    if (fchmod(a->seg_fd, 0400) != 0 || fsync(a->seg_fd) != 0) {
        io_fail("seal the audit log segment", a->seg_path, errno);
    } else if (store_digest(a, &d) == 0) {
        r = move_anchor(a, &d);
    }
    /* Sealed, or half-sealed (chmod done, digest not written): the next flush finds out from the
     * files and refuses to go on until a person looks. */
    close_segment(a);
    signed_digest_clean_up(&d);
    return r;
}

static int seg_start_time(kms_audit *a)
{
    if (a->seg_start >= 0) {
        return 0;
    }
    char *line = NULL, *t = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    a->seg_start = kms_now();
    if (first_line(a->seg_fd, a->seg_path, a->seg_size, &line, &len) == 0 &&
        parse_line(a->seg_path, line, len, &seq, &t) == 0 && t != NULL &&
        kms_audit_parse_time(t) >= 0) {
        a->seg_start = kms_audit_parse_time(t);
    }
    free(line);
    free(t);
    return 0;
}

/* After a successful batch: seals when digest_period has passed since the newest digest. */
static void periodic_seal(kms_audit *a)
{
    if (a->seg_fd < 0 || a->next_seq <= a->seg_first) {
        return;
    }
    int64_t start = a->dg.end;
    if (!a->dg.present) {
        (void)seg_start_time(a);
        start = a->seg_start;
    }
    if (kms_now() - start >= a->period) {
        /* The records are durable; a seal that fails before the chmod is retried later. */
        (void)seal_open(a);
    }
}

/* ---- LOCK and ownership ------------------------------------------------------------------- */

static int lock_log(kms_audit *a)
{
    while (flock(a->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            return io_fail("lock", a->lock_path, errno);
        }
    }
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

static void release(kms_audit *a)
{
    pthread_mutex_lock(&a->mu);
    a->busy = false;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* The leader's work: one batch, under LOCK; the outcome goes into every node. */
static void flush(kms_audit *a, waiter *batch)
{
    int rc = -1;
    if (lock_log(a) == 0) {
        if (check_state(a) == 0 && write_batch(a, batch) == 0) {
            rc = 0;
            a->appended = true;
            periodic_seal(a);
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
 * The service builds records with jansson, so this guards against a caller's mistake, not
 * against hostile text, and costs a pass over the bytes instead of a parse. */
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
 * then for their own. */
static void gather(kms_audit *a)
{
    if (a->announced == 0 || a->sync_ns < GATHER_MIN_NS) {
        return;
    }
    int64_t wait = a->sync_ns < GATHER_MAX_NS ? a->sync_ns : GATHER_MAX_NS;
    int64_t until = monotonic_ns() + wait;
    struct timespec deadline = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};
    while (a->announced > 0) {
        if (pthread_cond_timedwait(&a->cv, &a->mu, &deadline) == ETIMEDOUT) {
            return;
        }
    }
}

/* Under mu: one announced record arrived or was withdrawn. */
static void unannounce(kms_audit *a)
{
    if (a->announced > 0) {
        a->announced--;
        if (a->busy) {
            pthread_cond_broadcast(&a->cv); /* a leader may be gathering */
        }
    }
}

/* Under LOCK: an open segment with its space ahead written, made now if there is none. */
static int reserve(kms_audit *a)
{
    if (a->seg_fd < 0) {
        KMS_GUARD(create_segment(a));
    }
    int err = keep_reserve(a, a->seg_size);
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

static void acquire(kms_audit *a);
static void release(kms_audit *a);
static int lock_log(kms_audit *a);
static void unlock_log(kms_audit *a);

int kms_audit_announce(kms_audit *a)
{
    KMS_ENSURE(a != NULL, KMS_ERR_AUDIT, "the audit log is not open");
    if (atomic_load(&a->space_err) != 0) {
        /* The last batch could not keep space ahead: try again before anything runs. */
        acquire(a);
        int r = lock_log(a);
        if (r == 0) {
            r = check_state(a);
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
    waiter w = {.record = record, .len = len};
    pthread_mutex_lock(&a->mu);
    unannounce(a);
    *a->tail = &w;
    a->tail = &w.next;
    while (!w.done) {
        if (a->busy) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        /* Leader: take everything pending, write it without holding the mutex. */
        a->busy = true;
        gather(a);
        waiter *batch = a->head;
        a->head = NULL;
        a->tail = &a->head;
        pthread_mutex_unlock(&a->mu);
        flush(a, batch);
        pthread_mutex_lock(&a->mu);
        for (waiter *n = batch, *next = NULL; n != NULL; n = next) {
            next = n->next;
            n->done = true;
        }
        a->busy = false;
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    if (w.rc != 0) {
        return kms_raise(w.code, "%s", w.message);
    }
    return 0;
}

int kms_audit_seal(kms_audit *a)
{
    KMS_ENSURE(a != NULL, KMS_ERR_AUDIT, "the audit log is not open");
    acquire(a);
    int r = lock_log(a);
    if (r == 0) {
        r = check_state(a);
        if (r == 0) {
            r = seal_open(a);
        }
        unlock_log(a);
    }
    release(a);
    return r;
}

bool kms_audit_ready(kms_audit *a)
{
    struct stat st;
    return a != NULL && stat(a->dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static void free_handle(kms_audit *a)
{
    close_segment(a);
    if (a->lock_fd >= 0) {
        close(a->lock_fd);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
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
    acquire(a);
    if (a->appended && lock_log(a) == 0) {
        if (check_state(a) == 0) {
            (void)seal_open(a);
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
        return io_fail("examine the audit log directory", path, err);
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
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cv, &attr);
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
            io_fail("open", a->lock_path, errno);
        }
        goto fail;
    }
    if (lock_log(a) != 0) {
        goto fail;
    }
    remove_stale_temps(a);
    int r = check_state(a);
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
