/* The audit log writer's file helpers: errors worded for the operator, whole reads and writes,
 * and the single lines it reads at known places (the first, the last) with pread. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_writer.h"
#include "util/util.h"

int kms_audit_log_io_fail(const char *what, const char *path, int err)
{
    return kms_raise(KMS_ERR_AUDIT,
                     "cannot %s %s: %s; the operation was not performed (free space or fix "
                     "permissions, then retry)",
                     what, path, strerror(err));
}

int kms_audit_log_damaged(const char *path, const char *why)
{
    return kms_raise(KMS_ERR_AUDIT,
                     "the audit log file %s is damaged (%s): operations are refused until it is "
                     "restored from a backup (`kmsctl validate-logs` shows the damage)",
                     path, why);
}

int kms_audit_log_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return kms_audit_log_io_fail("open the directory", path, errno);
    }
    int r = 0;
    if (fsync(fd) != 0) {
        r = kms_audit_log_io_fail("sync the directory", path, errno);
    }
    close(fd);
    return r;
}

/* Reads exactly n bytes at off; -1 with errno set otherwise (EIO if the file is shorter). */
int kms_audit_log_pread_full(int fd, void *p, size_t n, off_t off)
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
        if (kms_audit_log_pread_full(fd, buf, n, lo) != 0) {
            return kms_audit_log_io_fail("read the audit log segment", path, errno);
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

int kms_audit_log_read_range(int fd, const char *path, off_t start, size_t n, char **out)
{
    char *p = malloc(n + 1);
    if (p == NULL) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    if (kms_audit_log_pread_full(fd, p, n, start) != 0) {
        free(p);
        return kms_audit_log_io_fail("read the audit log segment", path, errno);
    }
    p[n] = '\0';
    *out = p;
    return 0;
}

/* The last line of a segment of `size` bytes that ends with '\n' (without the '\n'). */
int kms_audit_log_last_line(int fd, const char *path, off_t size, char **line, size_t *len)
{
    off_t nl = -1;
    KMS_GUARD(rfind_newline(fd, path, size - 1, &nl));
    size_t n = (size_t)(size - 1 - (nl + 1));
    if (n > KMS_AUDIT_RECORD_MAX) {
        return kms_audit_log_damaged(path, "its last line is longer than a record can be");
    }
    KMS_GUARD(kms_audit_log_read_range(fd, path, nl + 1, n, line));
    *len = n;
    return 0;
}

/* The first line of a segment that holds at least one '\n' (without the '\n'). */
int kms_audit_log_first_line(int fd, const char *path, off_t size, char **line, size_t *len)
{
    size_t want =
        (uint64_t)size > KMS_AUDIT_RECORD_MAX + 1 ? KMS_AUDIT_RECORD_MAX + 1 : (size_t)size;
    char *p = NULL;
    KMS_GUARD(kms_audit_log_read_range(fd, path, 0, want, &p));
    char *nl = memchr(p, '\n', want);
    if (nl == NULL) {
        free(p);
        return kms_audit_log_damaged(path, "its first line is longer than a record can be");
    }
    *nl = '\0';
    *line = p;
    *len = (size_t)(nl - p);
    return 0;
}

/* A record line's auditChain.sequence and (if it has one) its eventTime (malloc'd). */
int kms_audit_log_parse_line(const char *path, const char *line, size_t len, uint64_t *seq,
                             char **event_time)
{
    json_error_t err;
    json_t *o = json_loadb(line, len, 0, &err);
    json_t *chain = json_object_get(o, "auditChain");
    json_t *s = json_object_get(chain, "sequence");
    json_t *t = json_object_get(o, "eventTime");
    if (!json_is_object(o) || !json_is_integer(s) || json_integer_value(s) < 1) {
        json_decref(o);
        return kms_audit_log_damaged(path, "a record without a valid auditChain.sequence");
    }
    *seq = (uint64_t)json_integer_value(s);
    if (event_time != NULL) {
        *event_time = json_is_string(t) ? strdup(json_string_value(t)) : NULL;
    }
    json_decref(o);
    return 0;
}

int kms_audit_log_pwrite_all(int fd, const void *p, size_t n, off_t off)
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

int64_t kms_audit_log_monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}
