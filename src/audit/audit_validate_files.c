/* validate-logs: the findings of each file (problems, kept per file for the time filter), how
 * the trail's files are opened and read, and the listing of segments/ and digests/. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_validator.h"
#include "util/util.h"

void kms_validator_findings_init(findings *f)
{
    f->problems = json_array();
    f->suppressed = 0;
    f->suppressed_kind = NULL;
    f->invalid = false;
    f->timeless = false;
}

/* Kinds that say nothing about when events happened, so that the time filter never hides them:
 * a digest whose signature fails has no signed times, and torn lines, files that do not belong
 * and unrecorded repairs are about the files, not the events. */
static bool timeless_kind(const char *kind)
{
    static const char *const kinds[] = {"bad-signature", "torn", "unexpected", "unrecorded-repair"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(kind, kinds[i]) == 0) {
            return true;
        }
    }
    return false;
}

__attribute__((format(printf, 7, 0))) static void vproblem(validator *v, findings *f,
                                                           const char *kind, const char *file,
                                                           int64_t seq, size_t line,
                                                           const char *fmt, va_list ap)
{
    f->invalid = true;
    f->timeless = f->timeless || timeless_kind(kind);
    if (f->problems == NULL) {
        v->oom = true;
        return;
    }
    if (json_array_size(f->problems) >= PROBLEMS_PER_FILE) {
        f->suppressed++;
        f->suppressed_kind = f->suppressed_kind ? f->suppressed_kind : kind;
        return;
    }
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* File names come from readdir and need not be UTF-8: kms_audit_json_text keeps them. */
    json_t *p = json_pack("{s:s, s:o}", "Kind", kind, "File", kms_audit_json_text(file));
    bool ok = p != NULL;
    if (ok && seq >= 0) {
        ok = json_object_set_new(p, "Sequence", json_integer(seq)) == 0;
    }
    if (ok && line > 0) {
        ok = json_object_set_new(p, "Line", json_integer((json_int_t)line)) == 0;
    }
    if (ok) {
        ok = json_object_set_new(p, "Message", kms_audit_json_text(msg)) == 0;
    }
    if (!ok) {
        json_decref(p);
        v->oom = true;
        return;
    }
    if (json_array_append_new(f->problems, p) != 0) {
        v->oom = true;
    }
}

/* Records a problem of `file` in f. seq < 0 and line == 0 mean unknown. */
__attribute__((format(printf, 7, 8))) void kms_validator_problem(validator *v, findings *f,
                                                                 const char *kind, const char *file,
                                                                 int64_t seq, size_t line,
                                                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(v, f, kind, file, seq, line, fmt, ap);
    va_end(ap);
}

/* A problem of the digest chain: a digest missing from it is missing whatever its times were. */
__attribute__((format(printf, 7, 8))) void
kms_validator_chain_problem(validator *v, findings *f, const char *kind, const char *file,
                            int64_t seq, size_t line, const char *fmt, ...)
{
    f->timeless = true;
    va_list ap;
    va_start(ap, fmt);
    vproblem(v, f, kind, file, seq, line, fmt, ap);
    va_end(ap);
}

/* ---- Small file helpers --------------------------------------------------------------------- */

/* Opens a file of the trail for reading, never blocking (a FIFO) nor following a symlink.
 * The caller refuses what fstat says is not a regular file. */
int kms_validator_open_trail_file(int dfd, const char *path)
{
    return openat(dfd, path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
}

/* Reads a whole regular file of at most max bytes. 0, or an errno value (EFBIG: too large;
 * EINVAL: not a regular file, a symlink included). */
int kms_validator_read_small(const char *path, size_t max, char **out, size_t *len)
{
    int fd = kms_validator_open_trail_file(AT_FDCWD, path);
    if (fd < 0) {
        return errno == ELOOP ? EINVAL : errno;
    }
    int err = 0;
    char *buf = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        err = errno;
    } else if (!S_ISREG(st.st_mode)) {
        err = EINVAL;
    } else if ((uint64_t)st.st_size > max) {
        err = EFBIG;
    } else if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        err = ENOMEM;
    }
    size_t got = 0;
    while (err == 0) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            err = errno;
        } else if (k == 0) {
            break;
        } else if ((got += (size_t)k) > (size_t)st.st_size) {
            err = EFBIG; /* grew while we read */
        }
    }
    close(fd);
    if (err != 0) {
        free(buf);
        return err;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* "NNN<suffix>" with exactly NAME_DIGITS digits and a number that fits int64_t. */
bool kms_validator_parse_name(const char *name, const char *suffix, int64_t *number)
{
    size_t n = strlen(name);
    if (n != NAME_DIGITS + strlen(suffix) || strspn(name, "0123456789") != NAME_DIGITS ||
        strcmp(name + NAME_DIGITS, suffix) != 0) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < NAME_DIGITS; i++) {
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *number = (int64_t)v;
    return true;
}

/* ---- Listing the directories ---------------------------------------------------------------- */

int kms_validator_grow(void **arr, size_t *cap, size_t n, size_t size)
{
    int r = kms_array_reserve(arr, cap, n, size);
    kms_error_clear(); /* the validator counts out-of-memory itself (v->oom) */
    return r;
}

static bool regular_file(int dfd, const char *name)
{
    struct stat st;
    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static bool read_only_file(int dfd, const char *name)
{
    struct stat st;
    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & 0222) == 0;
}

void kms_validator_unexpected(validator *v, const char *sub, const char *name, const char *why)
{
    char file[NAME_MAX_LEN + 256];
    snprintf(file, sizeof file, "%s/%s", sub, name);
    bool tmp = strstr(name, ".tmp.") != NULL;
    kms_validator_problem(v, &v->other, "unexpected", file, -1, 0,
                          "%s does not belong in %s/: %s%s", file, sub, why,
                          tmp ? " (a temporary file left by an interrupted write)" : "");
}

void kms_validator_list_segments(validator *v, DIR *d)
{
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t number;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (!kms_validator_parse_name(e->d_name, ".jsonl", &number)) {
            kms_validator_unexpected(v, "segments", e->d_name,
                                     "not a segment name (20 digits and .jsonl)");
            continue;
        }
        if (!regular_file(dirfd(d), e->d_name)) {
            kms_validator_unexpected(v, "segments", e->d_name, "not a regular file");
            continue;
        }
        if (kms_validator_grow((void **)&v->segs, &v->segs_cap, v->nsegs, sizeof *v->segs) != 0) {
            v->oom = true;
            return;
        }
        segment *s = &v->segs[v->nsegs++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "segments/%.40s", e->d_name);
        s->number = number;
        kms_validator_findings_init(&s->f);
        s->repairs = json_array();
        s->peek_seq = s->first_seq = s->last_seq = -1;
        s->oldest = s->newest = -1;
        s->digest = -1;
        s->sealed = read_only_file(dirfd(d), e->d_name);
    }
}

/* Digest names go in v->digs; .sig names are only checked for a digest beside them. */
void kms_validator_list_digests(validator *v, DIR *d)
{
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t number;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (kms_validator_parse_name(e->d_name, ".json.sig", &number)) {
            char json[NAME_MAX_LEN];
            snprintf(json, sizeof json, "%.*s.json", NAME_DIGITS, e->d_name);
            if (faccessat(dirfd(d), json, F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
                char file[NAME_MAX_LEN + 16];
                snprintf(file, sizeof file, "digests/%s", json);
                kms_validator_problem(
                    v, &v->other, "missing", file, number, 0,
                    "%s is missing but its signature digests/%s is there: the digest was "
                    "deleted, or a seal was interrupted",
                    file, e->d_name);
            }
            continue;
        }
        if (!kms_validator_parse_name(e->d_name, ".json", &number)) {
            kms_validator_unexpected(v, "digests", e->d_name,
                                     "not a digest name (20 digits and .json or .json.sig)");
            continue;
        }
        if (!regular_file(dirfd(d), e->d_name)) {
            kms_validator_unexpected(v, "digests", e->d_name, "not a regular file");
            continue;
        }
        if (kms_validator_grow((void **)&v->digs, &v->digs_cap, v->ndigs, sizeof *v->digs) != 0) {
            v->oom = true;
            return;
        }
        digest *g = &v->digs[v->ndigs++];
        memset(g, 0, sizeof *g);
        snprintf(g->name, sizeof g->name, "digests/%.40s", e->d_name);
        g->number = number;
        g->oldest = g->newest = -1;
        kms_validator_findings_init(&g->f);
    }
}

/* Opens dir/sub; a missing one is a problem, any other failure is the caller's to raise. */
DIR *kms_validator_open_sub(validator *v, const char *sub, int *err)
{
    char *path = kms_path_join(v->dir, sub);
    if (path == NULL) {
        v->oom = true;
        *err = ENOMEM;
        return NULL;
    }
    DIR *d = opendir(path);
    *err = d == NULL ? errno : 0;
    if (d == NULL && *err == ENOENT) {
        char file[32];
        snprintf(file, sizeof file, "%s/", sub);
        kms_validator_problem(v, &v->other, "missing", file, -1, 0,
                              "the directory %s/ of the trail is missing", sub);
        *err = 0;
    }
    free(path);
    return d;
}
