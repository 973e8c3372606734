/* The open segment: where the trail continues (the newest digest, the segment after it, its
 * tail), its space written ahead, and the batches of chained record lines written to it
 * (audit.h "On disk", "A record line", "Durability, group commit, crash"). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_writer.h"
#include "util/buf.h"
#include "util/util.h"

/* Segment space is preallocated (zeros written and synced ahead of the records), so that the
 * fdatasync of a batch flushes data blocks only: no journal commit for a new file size. The
 * space ahead grows with the segment, from PREALLOC_MIN up to PREALLOC_MAX at a time. */
#define PREALLOC_MIN ((off_t)64 * 1024)
#define PREALLOC_MAX ((off_t)4 * 1024 * 1024)

/* ---- the open segment --------------------------------------------------------------------- */

void kms_audit_log_close_segment(kms_audit *a)
{
    if (a->seg_fd >= 0) {
        close(a->seg_fd);
    }
    a->seg_fd = -1;
    a->seg_size = -1;
    a->seg_alloc = 0;
    a->seg_start = -1;
}

int kms_audit_log_set_segment(kms_audit *a, uint64_t first)
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
int kms_audit_log_set_tail(kms_audit *a, off_t size)
{
    a->seg_size = size;
    if (size == 0) {
        a->next_seq = a->seg_first;
        memcpy(a->prev_hash, a->dg.present ? a->dg.last_record_hash : kms_audit_zero_hash,
               sizeof a->prev_hash);
        return 0;
    }
    char *line = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    KMS_GUARD(kms_audit_log_last_line(a->seg_fd, a->seg_path, size, &line, &len));
    int r = kms_audit_log_parse_line(a->seg_path, line, len, &seq, NULL);
    if (r == 0 && seq < a->seg_first) {
        r = kms_audit_log_damaged(a->seg_path,
                                  "its last record's sequence comes before the segment's first");
    }
    if (r == 0) {
        a->next_seq = seq + 1;
        kms_audit_sha256_hex(line, len, a->prev_hash);
    }
    free(line);
    return r;
}

int kms_audit_log_create_segment(kms_audit *a)
{
    KMS_GUARD(kms_audit_log_set_segment(a, a->next_seq));
    int fd = open(a->seg_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return kms_audit_log_io_fail("create the audit log segment", a->seg_path, errno);
    }
    a->seg_fd = fd;
    a->seg_size = 0;
    a->seg_alloc = 0;
    a->seg_start = -1;
    if (kms_audit_log_fsync_dir(a->segments) != 0) {
        kms_audit_log_close_segment(a);
        unlink(a->seg_path);
        return -1;
    }
    return 0;
}

/* Undoes a failed batch: no partial line may stay behind (audit.h "Durability"). */
static void undo_batch(kms_audit *a, off_t before, bool created)
{
    if (created) {
        kms_audit_log_close_segment(a);
        unlink(a->seg_path);
        (void)kms_audit_log_fsync_dir(a->segments);
        return;
    }
    if (ftruncate(a->seg_fd, before) != 0 || fdatasync(a->seg_fd) != 0) {
        a->seg_size = -1; /* unknown: the next flush reads the tail again (and repairs it) */
        return;
    }
    a->seg_alloc = before;
}

/* Keeps at least PREALLOC_MIN bytes of zeros written after the records that end at `end`,
 * writing up to PREALLOC_MAX more at a time (as much as the segment holds already). Space
 * written ahead cannot run out under a record: a full disk shows here, where the next operation
 * is refused before it runs (kms_audit_announce), not under a record of one that ran. 0 or an
 * errno; a->seg_alloc says how far the zeros reach. */
int kms_audit_log_keep_reserve(kms_audit *a, off_t end)
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
        int err = kms_audit_log_pwrite_all(a->seg_fd, zeros, n, a->seg_alloc);
        if (err != 0) {
            return err;
        }
        a->seg_alloc += (off_t)n;
    }
    return 0;
}

/* Appends ,"ack":"<MAC>" to the line being built at b->data + start (its chain members written,
 * "}}" not yet): the MAC of the SHA-256 of the line as it would end without it. */
static int append_ack(kms_audit *a, kms_buf *b, size_t start)
{
    uint8_t hash[32], mac[32];
    char hex[KMS_AUDIT_HASH_HEX + 1], member[sizeof ",\"ack\":\"\"" + KMS_AUDIT_HASH_HEX];
    KMS_GUARD(kms_audit_ack_hash((const char *)b->data + start, b->len - start, hash));
    if (a->signer.ack.mac(a->signer.ack.arg, hash, mac) != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "cannot acknowledge audit records (the HSM's MAC failed: %s): the "
                         "operation fails",
                         kms_last_error_message());
    }
    kms_audit_hex_encode(mac, sizeof mac, hex);
    snprintf(member, sizeof member, ",\"ack\":\"%s\"", hex);
    if (kms_buf_append(b, member, strlen(member)) != 0) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

/* Writes the records of `list` (validated) as chained lines at the end of the records, with one
 * pwrite and one fdatasync. All or nothing. */
int kms_audit_log_write_batch(kms_audit *a, const waiter *list)
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
                 "%s\"auditChain\":{\"sequence\":%" PRIu64 ",\"previousHash\":\"%s\"",
                 empty ? "" : ",", seq, prev);
        size_t start = b.len;
        if (kms_buf_append(&b, w->record, body) != 0 ||
            kms_buf_append(&b, chain, strlen(chain)) != 0) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        /* The batch's last record carries its acknowledgement (audit.h "A record line"). */
        if (w->next == NULL && a->signer.ack.mac != NULL && append_ack(a, &b, start) != 0) {
            goto out;
        }
        if (kms_buf_append(&b, "}}", 2) != 0) {
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
        if (kms_audit_log_create_segment(a) != 0) {
            goto out;
        }
        created = true;
    }
    off_t before = a->seg_size, end = before + (off_t)b.len;
    int err = kms_audit_log_pwrite_all(a->seg_fd, b.data, b.len, before);
    if (err != 0) {
        undo_batch(a, before, created);
        kms_audit_log_io_fail("write the audit log segment", a->seg_path, err);
        goto out;
    }
    /* The zeros ahead share this batch's flush; when they cannot be written the records still
     * are, and new operations wait for space (kms_audit_announce). */
    int space = kms_audit_log_keep_reserve(a, end);
    int64_t t0 = kms_audit_log_monotonic_ns();
    if (fdatasync(a->seg_fd) != 0) {
        err = errno;
        undo_batch(a, before, created);
        kms_audit_log_io_fail("sync the audit log segment", a->seg_path, err);
        goto out;
    }
    a->sync_ns = kms_audit_log_monotonic_ns() - t0;
    atomic_fetch_add_explicit(&a->sync_total_ns, (uint64_t)a->sync_ns, memory_order_relaxed);
    a->seg_size = end;
    atomic_store(&a->space_err, space);
    a->next_seq = seq;
    memcpy(a->prev_hash, prev, sizeof prev);
    r = 0;
out:
    kms_buf_clean_up(&b);
    return r;
}

/* Finds where the trail continues: the newest digest (checked against the anchor), the segment
 * after it (refusing one sealed without a digest), its tail (repairing a torn last line). */
static int discover(kms_audit *a)
{
    for (;;) {
        kms_audit_log_close_segment(a);
        KMS_GUARD(kms_audit_log_load_newest_digest(a));
        KMS_GUARD(kms_audit_log_check_anchor(a));
        KMS_GUARD(kms_audit_log_set_segment(a, a->dg.present ? a->dg.last_sequence + 1 : 1));
        a->next_seq = a->seg_first;
        memcpy(a->prev_hash, a->dg.present ? a->dg.last_record_hash : kms_audit_zero_hash,
               sizeof a->prev_hash);
        struct stat st;
        if (lstat(a->seg_path, &st) != 0) {
            if (errno == ENOENT && a->anchor.has_ack && a->anchor.ack_sequence >= a->seg_first) {
                /* The anchor says records were written to it: deleted. */
                return kms_raise(KMS_ERR_AUDIT,
                                 "the audit log segment %s is missing, but the HSM anchor says "
                                 "record %" PRIu64 " was written to it: records were deleted. "
                                 "Operations are refused: run `kmsctl validate-logs` and restore "
                                 "the audit directory from a backup",
                                 a->seg_path, a->anchor.ack_sequence);
            }
            if (errno == ENOENT) {
                return 0; /* created by the next flush */
            }
            return kms_audit_log_io_fail("examine the audit log segment", a->seg_path, errno);
        }
        if (!S_ISREG(st.st_mode)) {
            return kms_audit_log_damaged(a->seg_path, "not a regular file");
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
            return kms_audit_log_io_fail("open the audit log segment", a->seg_path, errno);
        }
        a->seg_fd = fd;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            return kms_audit_log_damaged(a->seg_path, "not a regular file");
        }
        return kms_audit_log_load_tail(a, 0);
    }
}

/* Under LOCK: brings the cached state up to date with what other processes did. */
int kms_audit_log_check_state(kms_audit *a)
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
            return kms_audit_log_io_fail("examine the audit log segment", a->seg_path, errno);
        }
        if (st.st_nlink == 0 || (st.st_mode & S_IWUSR) == 0) {
            kms_audit_log_close_segment(a); /* sealed (or removed) by someone else */
        } else if (a->seg_size < 0 || st.st_size < a->seg_size) {
            return kms_audit_log_load_tail(a, 0);
        } else if (st.st_size > a->seg_size) {
            /* Records never hold a NUL: one where ours end means nobody appended since. */
            char c = 0;
            if (kms_audit_log_pread_full(a->seg_fd, &c, 1, a->seg_size) != 0) {
                return kms_audit_log_io_fail("read the audit log segment", a->seg_path, errno);
            }
            if (c != '\0') {
                return kms_audit_log_load_tail(a, a->seg_size);
            }
            a->seg_alloc = st.st_size;
        }
    }
    return a->seg_fd >= 0 ? 0 : discover(a);
}
