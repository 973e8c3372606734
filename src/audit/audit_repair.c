/* What the writer keeps of the open segment when it reads it again: the lines that link from
 * the anchored record (or the segment's start) and that a verified ack pins. Bytes a crash left
 * after the last whole line, and lines no ack pins (records this writer did not write, or whose
 * write it never acknowledged), are kept in torn/, cut off, and the repair recorded in the trail
 * itself (audit.h "Durability, group commit, crash" and "The anchor"). */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_writer.h"
#include "util/util.h"

#define TORN_WINDOW ((off_t)1024 * 1024)

/* The AwsServiceEvent that records a repair (audit.h "Durability, group commit, crash"). */
static char *repair_record(kms_audit *a, off_t offset, size_t length, const char *sha256,
                           const char *reason)
{
    char id[KMS_UUID_STR_LEN + 1];
    char now[32];
    if (kms_uuid_new(id) != 0) {
        return NULL;
    }
    kms_time_iso8601(kms_now(), now);
    /* Written as KMS's own service events are (service/audit_trail_record.c): CloudTrail 1.11,
     * the account's, invoked by "AWS Internal", no requestID. */
    json_t *o = json_pack(
        "{s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:n, s:s, s:b, s:[], s:s, s:b, "
        "s:s, s:{s:s, s:I, s:I, s:s, s:s}, s:s}",
        "eventVersion", "1.11", "userIdentity", "accountId", a->account_id, "invokedBy",
        "AWS Internal", "eventTime", now, "eventSource", "kms.amazonaws.com", "eventName",
        "AuditLogRepaired", "awsRegion", a->region, "sourceIPAddress", "AWS Internal", "userAgent",
        "AWS Internal", "requestParameters", "responseElements", "eventID", id, "readOnly", 0,
        "resources", "eventType", "AwsServiceEvent", "managementEvent", 1, "recipientAccountId",
        a->account_id, "serviceEventDetails", "segment", a->seg_name, "offset", (json_int_t)offset,
        "length", (json_int_t)length, "sha256", sha256, "reason", reason, "eventCategory",
        "Management");
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot build the AuditLogRepaired record");
    }
    return s;
}

/* Keeps the n cut bytes in torn/SEGMENT-OFFSET (SEGMENT-OFFSET.K if that name is taken: a
 * segment cut twice at one offset), never replacing an earlier file. torn/ is opened without
 * following a symlink, and the file made inside it, so that the bytes land nowhere else. */
static int keep_torn(kms_audit *a, off_t offset, const char *bytes, size_t n)
{
    if (mkdir(a->torn, 0700) != 0 && errno != EEXIST) {
        return kms_audit_log_io_fail("create the directory", a->torn, errno);
    }
    int dfd = open(a->torn, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        return kms_audit_log_io_fail("open the directory (not a symlink)", a->torn, errno);
    }
    int r = -1;
    const char *seg = a->seg_name + strlen("segments/");
    for (unsigned k = 0; k < 1000; k++) {
        char name[96];
        if (k == 0) {
            snprintf(name, sizeof name, "%s-%lld", seg, (long long)offset);
        } else {
            snprintf(name, sizeof name, "%s-%lld.%u", seg, (long long)offset, k);
        }
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
            continue;
        }
        int err = fd < 0 ? errno : kms_audit_log_pwrite_all(fd, bytes, n, 0);
        if (err == 0 && fsync(fd) != 0) {
            err = errno;
        }
        if (fd >= 0) {
            close(fd);
        }
        if (err != 0) {
            if (fd >= 0) {
                unlinkat(dfd, name, 0);
            }
            kms_audit_log_io_fail("keep the torn bytes of the audit log segment in", a->torn, err);
            goto out;
        }
        r = fsync(dfd) == 0 ? 0 : kms_audit_log_io_fail("sync the directory", a->torn, errno);
        goto out;
    }
    kms_raise(KMS_ERR_AUDIT, "cannot keep the torn bytes of %s: too many files in %s", a->seg_path,
              a->torn);
out:
    close(dfd);
    return r;
}

/* Bytes after the records kept (from `offset` to `size`): a write a crash cut short ("torn"),
 * or whole lines after the acknowledged record ("unacknowledged"). Kept in torn/, cut off, and
 * the repair recorded in the trail itself. */
static int repair_tail(kms_audit *a, off_t offset, off_t size, const char *reason)
{
    int r = -1;
    size_t n = (size_t)(size - offset);
    char *bytes = NULL, *record = NULL;
    char sha[KMS_AUDIT_HASH_HEX + 1];
    if (kms_audit_log_read_range(a->seg_fd, a->seg_path, offset, n, &bytes) != 0) {
        goto out;
    }
    kms_audit_sha256_hex(bytes, n, sha);
    if (keep_torn(a, offset, bytes, n) != 0) {
        goto out;
    }
    if (ftruncate(a->seg_fd, offset) != 0 || fdatasync(a->seg_fd) != 0) {
        kms_audit_log_io_fail("truncate the torn audit log segment", a->seg_path, errno);
        a->seg_size = -1;
        goto out;
    }
    a->seg_alloc = offset;
    if (kms_audit_log_set_tail(a, offset) != 0 ||
        (record = repair_record(a, offset, n, sha, reason)) == NULL) {
        goto out;
    }
    waiter w = {.record = record, .len = strlen(record)};
    r = kms_audit_log_write_batch(a, &w);
out:
    free(bytes);
    free(record);
    return r;
}

/* Where the walk over the open segment starts: just past the anchored record when the anchor
 * says where its line ends in this segment and that line is there, with its number and hash
 * (so a command does not read the whole segment); else at the segment's start, from the newest
 * digest's last record. The lines before the anchored record were checked when they were
 * anchored; a seal checks them all again. */
static void walk_start(kms_audit *a, off_t size, off_t *start, uint64_t *seq,
                       char prev[KMS_AUDIT_HASH_HEX + 1])
{
    const kms_audit_anchor *an = &a->anchor;
    *start = 0;
    *seq = a->seg_first;
    memcpy(prev, a->dg.present ? a->dg.last_record_hash : kms_audit_zero_hash,
           KMS_AUDIT_HASH_HEX + 1);
    if (!an->has_ack || an->ack_sequence < a->seg_first || an->ack_end == 0 ||
        an->ack_end > (uint64_t)size) {
        return;
    }
    char *line = NULL, linked[KMS_AUDIT_HASH_HEX + 1], hash[KMS_AUDIT_HASH_HEX + 1];
    size_t len = 0, at = 0;
    uint64_t n = 0;
    char nl = 0;
    if (kms_audit_log_pread_full(a->seg_fd, &nl, 1, (off_t)an->ack_end - 1) != 0 || nl != '\n' ||
        kms_audit_log_last_line(a->seg_fd, a->seg_path, (off_t)an->ack_end, &line, &len) != 0) {
        kms_error_clear();
        free(line);
        return;
    }
    bool ok = kms_audit_chain_suffix(line, len, &n, linked, &at) && n == an->ack_sequence;
    if (ok) {
        kms_audit_sha256_hex(line, len, hash);
        ok = strcmp(hash, an->ack_hash) == 0;
    }
    free(line);
    if (ok) {
        *start = (off_t)an->ack_end;
        *seq = an->ack_sequence + 1;
        memcpy(prev, an->ack_hash, KMS_AUDIT_HASH_HEX + 1);
    }
}

/* Where the writer's records of the open segment end, its whole lines ending at `end` (audit.h
 * "The anchor"): walked forward from `start` (record `seq`, linked to prev), up to the last line
 * that links and whose ack verifies. Refused: the anchored record missing or rewritten, or an
 * acknowledged line after one that does not link (records changed or inserted). Without an ack
 * MAC (a trail without an HSM), `end`. */
static int acked_end(kms_audit *a, off_t start, off_t end, uint64_t seq,
                     const char prev[KMS_AUDIT_HASH_HEX + 1], off_t *keep)
{
    const kms_audit_anchor *an = &a->anchor;
    kms_audit_walk w = {.acker = a->signer.ack.mac != NULL ? &a->signer.ack : NULL};
    if (an->has_ack && an->ack_sequence >= seq) {
        w.want_seq = an->ack_sequence;
        w.want_hash = an->ack_hash;
    }
    *keep = end;
    KMS_GUARD(kms_audit_walk_chain(a->seg_path, (uint64_t)start, (uint64_t)end, seq, prev, &w));
    if (w.want_seq != 0 && !w.want_ok) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit log segment %s does not hold record %" PRIu64
                         " as the HSM anchor recorded it (chain hash %s), linked to the records "
                         "before it: records were removed, changed or inserted. Operations are "
                         "refused: run `kmsctl validate-logs` and restore the audit directory "
                         "from a backup",
                         a->seg_path, an->ack_sequence, an->ack_hash);
    }
    if (w.acked_after_break) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit log segment %s holds records the writer acknowledged after a "
                         "line that is not in its chain: records were changed or inserted. "
                         "Operations are refused: run `kmsctl validate-logs` and restore the "
                         "audit directory from a backup",
                         a->seg_path);
    }
    if (w.acker != NULL) {
        *keep = (off_t)w.pin;
    }
    return 0;
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
        if (kms_audit_log_pread_full(a->seg_fd, buf, n, pos) != 0) {
            return kms_audit_log_io_fail("read the audit log segment", a->seg_path, errno);
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
    /* Past the first NUL, only zeros belong: find the last byte that is not one, within
     * TORN_WINDOW of it (a write a crash cut short leaves its bytes there; reading all the
     * space written ahead, up to 4 MiB, would cost every command that much). Bytes beyond are
     * no write of the writer's: records written later cover them or find them, and sealing cuts
     * them off with the zeros; validate-logs reports them. */
    *data_end = nul;
    for (off_t hi = size - nul > TORN_WINDOW ? nul + TORN_WINDOW : size; hi > nul;) {
        size_t n = hi - nul > CHUNK ? CHUNK : (size_t)(hi - nul);
        off_t lo = hi - (off_t)n;
        if (kms_audit_log_pread_full(a->seg_fd, buf, n, lo) != 0) {
            return kms_audit_log_io_fail("read the audit log segment", a->seg_path, errno);
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
 * last looked: another process appended since), with the anchor read again: what follows the
 * acknowledged record, torn or whole lines, is moved aside. */
int kms_audit_log_load_tail(kms_audit *a, off_t from)
{
    struct stat st;
    if (fstat(a->seg_fd, &st) != 0) {
        return kms_audit_log_io_fail("examine the audit log segment", a->seg_path, errno);
    }
    if (from > st.st_size) {
        from = 0; /* cut shorter than its records were: look at all of it */
    }
    KMS_GUARD(kms_audit_log_read_anchor(a));
    off_t start = from, end = 0, data_end = 0, keep = 0;
    uint64_t seq = a->next_seq;
    char prev[KMS_AUDIT_HASH_HEX + 1];
    memcpy(prev, a->prev_hash, sizeof prev);
    if (from == 0) {
        walk_start(a, st.st_size, &start, &seq, prev);
    }
    KMS_GUARD(find_end(a, start, st.st_size, &end, &data_end));
    a->seg_alloc = st.st_size;
    KMS_GUARD(acked_end(a, start, end, seq, prev, &keep));
    if (data_end > keep) {
        return repair_tail(a, keep, data_end, keep < end ? "unacknowledged" : "torn");
    }
    return kms_audit_log_set_tail(a, keep);
}
