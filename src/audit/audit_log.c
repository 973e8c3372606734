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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "util/buf.h"
#include "util/util.h"

#define CHUNK 16384
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

    /* Owned by the busy thread; describes the files as of the last time it held LOCK. */
    bool appended;
    digest_info dg;
    int seg_fd;         /* the open segment, -1 if there is none (yet) */
    uint64_t seg_first; /* its name: the first sequence it holds (or will hold) */
    char seg_name[48];  /* "segments/NNN.jsonl" */
    char *seg_path;
    off_t seg_size;    /* -1: unknown */
    int64_t seg_start; /* its first record's eventTime, -1: not looked up yet */
    uint64_t next_seq;
    char prev_hash[KMS_AUDIT_HASH_HEX + 1];
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
    int fd = open(a->seg_path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return io_fail("create the audit log segment", a->seg_path, errno);
    }
    a->seg_fd = fd;
    a->seg_size = 0;
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
    }
}

/* Appends the records of `list` (validated) as chained lines with one write and one fdatasync.
 * All or nothing. */
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
    off_t before = a->seg_size;
    size_t done = 0;
    int err = 0;
    while (done < b.len && err == 0) {
        ssize_t k = write(a->seg_fd, b.data + done, b.len - done);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            err = k < 0 ? errno : EIO;
        } else {
            done += (size_t)k;
        }
    }
    if (err != 0) {
        undo_batch(a, before, created);
        io_fail("write the audit log segment", a->seg_path, err);
        goto out;
    }
    if (fdatasync(a->seg_fd) != 0) {
        err = errno;
        undo_batch(a, before, created);
        io_fail("sync the audit log segment", a->seg_path, err);
        goto out;
    }
    a->seg_size = before + (off_t)b.len;
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

/* A last line without its '\n' (a crash cut a write): keep its bytes in torn/, cut the segment
 * back to its last '\n' and record the repair in the trail itself. */
static int repair_torn(kms_audit *a, off_t offset, off_t size)
{
    int r = -1;
    size_t n = (size_t)(size - offset);
    char *bytes = NULL, *torn_path = NULL, *record = NULL;
    char sha[KMS_AUDIT_HASH_HEX + 1];
    if (read_range(a->seg_fd, a->seg_path, offset, n, &bytes) != 0) {
        goto out;
    }
    kms_audit_sha256_hex(bytes, n, sha);
    if (mkdir(a->torn, 0700) != 0 && errno != EEXIST) {
        io_fail("create the directory", a->torn, errno);
        goto out;
    }
    torn_path = kms_strdup_printf("%s/%s-%lld", a->torn, a->seg_name + strlen("segments/"),
                                  (long long)offset);
    if (torn_path == NULL) {
        goto out;
    }
    if (kms_file_write_atomic(torn_path, bytes, n, 0600) != 0) {
        kms_raise(KMS_ERR_AUDIT, "cannot repair the torn audit log segment %s: %s", a->seg_path,
                  kms_last_error_message());
        goto out;
    }
    if (fsync_dir(a->torn) != 0) {
        goto out;
    }
    if (ftruncate(a->seg_fd, offset) != 0 || fdatasync(a->seg_fd) != 0) {
        io_fail("truncate the torn audit log segment", a->seg_path, errno);
        a->seg_size = -1;
        goto out;
    }
    if (set_tail(a, offset) != 0 || (record = repair_record(a, offset, n, sha)) == NULL) {
        goto out;
    }
    waiter w = {.record = record, .len = strlen(record)};
    r = write_batch(a, &w);
out:
    free(bytes);
    free(torn_path);
    free(record);
    return r;
}

/* Reads the open segment's tail again (another process appended, or we never read it). */
static int load_tail(kms_audit *a)
{
    struct stat st;
    if (fstat(a->seg_fd, &st) != 0) {
        return io_fail("examine the audit log segment", a->seg_path, errno);
    }
    if (st.st_size > 0) {
        char c = 0;
        if (pread_full(a->seg_fd, &c, 1, st.st_size - 1) != 0) {
            return io_fail("read the audit log segment", a->seg_path, errno);
        }
        if (c != '\n') {
            off_t nl = -1;
            KMS_GUARD(rfind_newline(a->seg_fd, a->seg_path, st.st_size, &nl));
            return repair_torn(a, nl + 1, st.st_size);
        }
    }
    return set_tail(a, st.st_size);
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

/* Finds where the trail continues: the newest digest, the segment after it (refusing one that is
 * sealed without a digest), its tail (repairing a torn last line). */
static int discover(kms_audit *a)
{
    for (;;) {
        close_segment(a);
        KMS_GUARD(load_newest_digest(a));
        KMS_GUARD(set_segment(a, a->dg.present ? a->dg.last_sequence + 1 : 1));
        a->next_seq = a->seg_first;
        memcpy(a->prev_hash, a->dg.present ? a->dg.last_record_hash : zero_hash,
               sizeof a->prev_hash);
        struct stat st;
        if (stat(a->seg_path, &st) != 0) {
            if (errno == ENOENT) {
                return 0; /* created by the next flush */
            }
            return io_fail("examine the audit log segment", a->seg_path, errno);
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
        int fd = open(a->seg_path, O_RDWR | O_APPEND | O_CLOEXEC);
        if (fd < 0) {
            return io_fail("open the audit log segment", a->seg_path, errno);
        }
        a->seg_fd = fd;
        return load_tail(a);
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
        } else if (st.st_size != a->seg_size) {
            return load_tail(a);
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
    /* Hash and sign before the chmod: a signer that fails leaves the segment open. LOCK keeps
     * other writers out meanwhile. */
    signed_digest d;
    KMS_GUARD(sign_digest(a, a->seg_fd, &d));
    int r = -1;
    if (fchmod(a->seg_fd, 0400) != 0 || fsync(a->seg_fd) != 0) {
        io_fail("seal the audit log segment", a->seg_path, errno);
    } else {
        r = store_digest(a, &d);
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

static int check_record(const char *record, size_t len)
{
    KMS_ENSURE(record != NULL && len >= 2 && record[0] == '{' && record[len - 1] == '}',
               KMS_ERR_VALIDATION, "an audit record must be a JSON object text");
    KMS_ENSURE(memchr(record, '\n', len) == NULL && memchr(record, '\r', len) == NULL,
               KMS_ERR_VALIDATION, "an audit record must be one line");
    KMS_ENSURE(len - 1 + CHAIN_MAX + 1 <= KMS_AUDIT_RECORD_MAX, KMS_ERR_VALIDATION,
               "an audit record must be shorter than %d bytes", KMS_AUDIT_RECORD_MAX);
    json_error_t err;
    json_t *o = json_loadb(record, len, JSON_REJECT_DUPLICATES, &err);
    bool ok = json_is_object(o) && json_object_get(o, "auditChain") == NULL;
    json_decref(o);
    KMS_ENSURE(ok, KMS_ERR_VALIDATION,
               "an audit record must be a JSON object without an auditChain member");
    return 0;
}

int kms_audit_append(kms_audit *a, const char *record, size_t len)
{
    KMS_ENSURE(a != NULL, KMS_ERR_AUDIT, "the audit log is not open");
    KMS_GUARD(check_record(record, len));
    waiter w = {.record = record, .len = len};
    pthread_mutex_lock(&a->mu);
    *a->tail = &w;
    a->tail = &w.next;
    while (!w.done) {
        if (a->busy) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        /* Leader: take everything pending, write it without holding the mutex. */
        a->busy = true;
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
        o->signer.sign == NULL || o->signer.spki == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "kms_audit_open: incomplete options (dir, account, region, "
                                    "signer)");
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
    pthread_cond_init(&a->cv, NULL);
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
    unlock_log(a);
    if (r != 0) {
        goto fail;
    }
    return a;
fail:
    free_handle(a);
    return NULL;
}
