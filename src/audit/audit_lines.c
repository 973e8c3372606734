/* The forward line reader of segment files (audit_internal.h), shared by validate-logs and the
 * index catch-up.
 *
 * The buffer holds at most one line being gathered (KMS_AUDIT_LINE_MAX bytes) plus one read.
 * When a line outgrows that without its '\n', its bytes are dropped (counted, and hashed if asked)
 * and the reader goes on to the '\n': a garbage segment costs time, never memory. Whether a line
 * is too long depends on its length alone, not on where it fell in the buffer, so both readers
 * agree on every line, and the index's decoding arena (sized by KMS_AUDIT_LINE_MAX) always fits
 * the line it decodes. */
#include "audit/audit_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* What one read() asks for. */
#define READ_CHUNK ((size_t)64 * 1024)
/* Before each read, at most KMS_AUDIT_LINE_MAX unread bytes are left (at the front). */
#define BUF_CAP (KMS_AUDIT_LINE_MAX + READ_CHUNK)

int kms_audit_lines_open(kms_audit_lines *r, const char *path, uint64_t offset, EVP_MD_CTX *md,
                         bool torn_tail)
{
    *r = (kms_audit_lines){.fd = -1, .torn_tail = torn_tail, .pos = offset, .md = md};
    if (path == NULL) {
        r->err = ENOMEM;
        return -1;
    }
    r->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (r->fd < 0) {
        r->err = errno;
        return -1;
    }
    r->buf = malloc(BUF_CAP);
    if (r->buf == NULL) {
        r->err = ENOMEM;
        return -1;
    }
    if (offset > 0 && lseek(r->fd, (off_t)offset, SEEK_SET) < 0) {
        r->err = errno;
        return -1;
    }
    return 0;
}

void kms_audit_lines_close(kms_audit_lines *r)
{
    if (r->fd >= 0) {
        close(r->fd);
    }
    free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

/* Moves the unread bytes to the front and reads once more (r->eof at the end of the file). */
static int fill(kms_audit_lines *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    for (;;) {
        ssize_t k = read(r->fd, r->buf + r->end, READ_CHUNK);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            r->err = errno;
            return -1;
        }
        if (k == 0) {
            r->eof = true;
        } else if (r->md != NULL && EVP_DigestUpdate(r->md, r->buf + r->end, (size_t)k) != 1) {
            r->err = EIO;
            return -1;
        }
        r->end += (size_t)k;
        return 0;
    }
}

int kms_audit_lines_next(kms_audit_lines *r, kms_audit_line *out)
{
    size_t dropped = 0; /* leading bytes of this line, no longer in the buffer */
    for (;;) {
        const char *s = r->buf + r->start;
        size_t avail = r->end - r->start;
        if (avail > 0 && dropped == 0 && s[0] == '\0' && !r->torn_tail) {
            return 0; /* the zeros preallocated after an open segment's records (audit.h) */
        }
        const char *nl = memchr(s, '\n', avail);
        bool tail = nl == NULL && r->eof && r->torn_tail && dropped + avail > 0;
        if (nl != NULL || tail) {
            size_t n = nl != NULL ? (size_t)(nl - s) : avail;
            size_t len = dropped + n;
            *out = (kms_audit_line){len > KMS_AUDIT_LINE_MAX ? NULL : s, len, r->pos, tail};
            r->start += nl != NULL ? n + 1 : n;
            r->pos += nl != NULL ? len + 1 : len;
            return 1;
        }
        if (r->eof) {
            return 0;
        }
        if (avail > KMS_AUDIT_LINE_MAX) {
            dropped += avail;
            r->start = r->end = 0;
        }
        if (fill(r) != 0) {
            return -1;
        }
    }
}
