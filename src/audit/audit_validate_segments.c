/* validate-logs, pass 4: every segment streamed line by line: its records' JSON, sequence and
 * previousHash, the file's SHA-256 (audit.h "A record line"). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_validator.h"
#include "util/util.h"

/* ---- Segments ------------------------------------------------------------------------------- */

static char *segment_path(validator *v, const segment *s)
{
    char *p = kms_path_join(v->dir, s->name);
    v->oom = v->oom || p == NULL;
    return p;
}

/* The sequence of a record line, -1 if it is not one. */
static int64_t line_sequence(const char *p, size_t n, json_t **doc)
{
    json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
    const json_t *chain = json_object_get(o, "auditChain");
    const json_t *seq = json_object_get(chain, "sequence");
    if (!json_is_object(o) || !json_is_integer(seq) || json_integer_value(seq) < 1 ||
        !kms_audit_is_hash_hex(kms_validator_str_field(chain, "previousHash"))) {
        json_decref(o);
        return -1;
    }
    int64_t value = (int64_t)json_integer_value(seq); /* seq is o's: read it before o goes */
    if (doc != NULL) {
        *doc = o;
    } else {
        json_decref(o);
    }
    return value;
}

/* Opens segment s for its lines, hashing every byte into md if it is not NULL. The reader opens
 * by name and would block on a FIFO, so the file is opened here first, without blocking, and must
 * be a regular file, the one the reader then opens. *fd (if not NULL) is that file, for reading
 * its tail again; the caller closes it. 0, or an errno value (EINVAL: not a regular file); r is
 * open (and must be closed) only on 0. */
static int segment_open(validator *v, const segment *s, kms_audit_lines *r, EVP_MD_CTX *md, int *fd)
{
    char *path = segment_path(v, s);
    if (path == NULL) {
        return ENOMEM;
    }
    int err = 0;
    struct stat st, rst;
    int f = kms_validator_open_trail_file(AT_FDCWD, path);
    if (f < 0) {
        err = errno == ELOOP ? EINVAL : errno;
    } else if (fstat(f, &st) != 0) {
        err = errno;
    } else if (!S_ISREG(st.st_mode)) {
        err = EINVAL;
    } else if (kms_audit_lines_open(r, path, 0, md, true) != 0) {
        err = r->err;
        kms_audit_lines_close(r);
    } else if (fstat(r->fd, &rst) != 0 || rst.st_dev != st.st_dev || rst.st_ino != st.st_ino) {
        err = EINVAL; /* replaced between the two opens */
        kms_audit_lines_close(r);
    }
    if (err == 0 && fd != NULL) {
        *fd = f;
    } else if (f >= 0) {
        close(f);
    }
    v->oom = v->oom || err == ENOMEM;
    free(path);
    return err;
}

void kms_validator_peek_first(validator *v, segment *s)
{
    kms_audit_lines r;
    kms_audit_line l;
    if (segment_open(v, s, &r, NULL, NULL) != 0) {
        return;
    }
    if (kms_audit_lines_next(&r, &l) == 1 && l.p != NULL && !l.torn) {
        s->peek_seq = line_sequence(l.p, l.len, NULL);
    }
    kms_audit_lines_close(&r);
}

/* Segments in the order of their first record; by name where that is unknown or equal. */
int kms_validator_cmp_segment(const void *a, const void *b)
{
    const segment *x = a, *y = b;
    int64_t kx = x->peek_seq >= 0 ? x->peek_seq : x->number;
    int64_t ky = y->peek_seq >= 0 ? y->peek_seq : y->number;
    if (kx != ky) {
        return (kx > ky) - (kx < ky);
    }
    return (x->number > y->number) - (x->number < y->number);
}

/* An AuditLogRepaired record: remember what the writer cut off, for the report and for the
 * torn/ file that holds those bytes. */
static void note_repair(validator *v, segment *s, const json_t *rec)
{
    const char *name = kms_validator_str_field(rec, "eventName");
    if (name == NULL || strcmp(name, "AuditLogRepaired") != 0) {
        return;
    }
    const json_t *d = json_object_get(rec, "serviceEventDetails");
    const json_t *file = json_object_get(d, "segment");
    file = file ? file : json_object_get(d, "file");
    json_t *r = json_pack("{s:O?, s:O?, s:O?}", "File", file, "Offset",
                          json_object_get(d, "offset"), "Length", json_object_get(d, "length"));
    if (r == NULL || json_array_append_new(s->repairs, r) != 0) {
        v->oom = true;
    }
    const char *f = json_string_value(file), *sha = kms_validator_str_field(d, "sha256");
    int64_t offset = kms_validator_int_field(d, "offset"),
            length = kms_validator_int_field(d, "length");
    if (f == NULL || strlen(f) >= NAME_MAX_LEN || offset < 0 || length < 0 ||
        !kms_audit_is_hash_hex(sha)) {
        return; /* no torn/ file can match it */
    }
    if (kms_validator_grow((void **)&v->reps, &v->reps_cap, v->nreps, sizeof *v->reps) != 0) {
        v->oom = true;
        return;
    }
    repair *p = &v->reps[v->nreps++];
    snprintf(p->file, sizeof p->file, "%s", f);
    p->offset = offset;
    p->length = length;
    memcpy(p->sha256, sha, sizeof p->sha256);
    p->matched = false;
}

/* Sequence and previousHash of one well-formed record against the chain so far. */
static void check_chain(validator *v, long si, size_t lineno, int64_t seq, const char *ph)
{
    segment *s = &v->segs[si];
    if (v->resync) {
        if (seq <= v->last_seq) {
            kms_validator_problem(v, &s->f, "out-of-order", s->name, seq, lineno,
                                  "record %" PRId64
                                  " at line %zu of %s comes after record %" PRId64,
                                  seq, lineno, s->name, v->last_seq);
        }
    } else if (seq > v->last_seq + 1) {
        char what[64];
        if (seq - 1 == v->last_seq + 1) {
            snprintf(what, sizeof what, "record %" PRId64 " is", seq - 1);
        } else {
            snprintf(what, sizeof what, "records %" PRId64 " to %" PRId64 " are", v->last_seq + 1,
                     seq - 1);
        }
        kms_validator_problem(
            v, &s->f, "missing", s->name, v->last_seq + 1, lineno,
            "%s missing before line %zu of %s (deleted: the sequence jumps from %" PRId64
            " to %" PRId64 ")",
            what, lineno, s->name, v->last_seq, seq);
    } else if (seq <= v->last_seq) {
        kms_validator_problem(v, &s->f, "out-of-order", s->name, seq, lineno,
                              "record %" PRId64 " at line %zu of %s comes after record %" PRId64
                              " (records repeated or out of order)",
                              seq, lineno, s->name, v->last_seq);
        s->bad++;
        s->good--;
    } else if (strcmp(ph, v->prev_hash) != 0 && v->prev_seg < 0) {
        kms_validator_problem(v, &s->f, "modified", s->name, seq, lineno,
                              "record 1 at line %zu of %s has a previousHash that is not 64 zeros",
                              lineno, s->name);
        s->bad++;
        s->good--;
    } else if (strcmp(ph, v->prev_hash) != 0) {
        /* The previous record changed (or this record's previousHash did). */
        segment *p = &v->segs[v->prev_seg];
        kms_validator_problem(v, &p->f, "modified", p->name, seq - 1, v->prev_line,
                              "record %" PRId64
                              " at line %zu of %s was modified: its SHA-256 does not match "
                              "the previousHash of record %" PRId64 " (line %zu of %s)",
                              seq - 1, v->prev_line, p->name, seq, lineno, s->name);
        p->bad++;
        p->good--;
    }
}

static void record_line(validator *v, long si, size_t lineno, const kms_audit_line *l)
{
    segment *s = &v->segs[si];
    if (l->p == NULL || l->torn) {
        bool torn = l->torn;
        kms_validator_problem(
            v, &s->f, torn ? "torn" : "malformed", s->name, -1, lineno,
            torn ? "line %zu of %s (offset %" PRIu64 ", %zu bytes) has no '\\n': the last "
                   "write was torn; the writer moves it to torn/ when it next opens the trail"
                 : "line %zu of %s (offset %" PRIu64 ", %zu bytes) is longer than any record",
            lineno, s->name, l->offset, l->len);
        s->bad++;
        v->resync = true;
        return;
    }
    json_t *rec = NULL;
    int64_t seq = line_sequence(l->p, l->len, &rec);
    if (seq < 0) {
        kms_validator_problem(
            v, &s->f, "malformed", s->name, -1, lineno,
            "line %zu of %s is not a record: not a JSON object with an auditChain sequence "
            "and previousHash",
            lineno, s->name);
        s->bad++;
        v->resync = true;
        return;
    }
    if (s->first_seq < 0) {
        s->first_seq = seq;
    }
    s->last_seq = seq;
    s->good++;
    check_chain(v, si, lineno, seq,
                kms_validator_str_field(json_object_get(rec, "auditChain"), "previousHash"));
    int64_t t = kms_audit_parse_time(kms_validator_str_field(rec, "eventTime"));
    if (t >= 0) {
        s->oldest = s->oldest < 0 || t < s->oldest ? t : s->oldest;
        s->newest = t > s->newest ? t : s->newest;
    }
    note_repair(v, s, rec);
    json_decref(rec);
    kms_audit_sha256_hex(l->p, l->len, v->prev_hash);
    memcpy(s->last_hash, v->prev_hash, sizeof s->last_hash);
    s->record_bytes += l->len + 1;
    kms_validator_note_acked(v, seq);
    kms_validator_note_ack_line(v, s, l, lineno, seq);
    if (v->expecting && !v->expect_seen && (uint64_t)seq == v->expect_seq) {
        v->expect_seen = true;
        memcpy(v->expect_seen_hash, v->prev_hash, sizeof v->expect_seen_hash);
    }
    v->last_seq = seq;
    v->prev_seg = si;
    v->prev_line = lineno;
    v->resync = false;
}

/* Whether the last line l (torn: no '\n' up to the end) is unused space: NUL bytes only, as the
 * writer preallocates them after the open segment's last line. Read again from the file: the
 * reader does not hold a long line. */
static bool is_padding(int fd, const kms_audit_line *l)
{
    char buf[8192];
    uint64_t off = l->offset, end = l->offset + l->len;
    if (l->len == 0 || (l->p != NULL && l->p[0] != '\0')) {
        return false;
    }
    while (off < end) {
        size_t want = end - off < sizeof buf ? (size_t)(end - off) : sizeof buf;
        ssize_t k = pread(fd, buf, want, (off_t)off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return false;
        }
        for (ssize_t i = 0; i < k; i++) {
            if (buf[i] != '\0') {
                return false;
            }
        }
        off += (uint64_t)k;
    }
    return true;
}

/* dir/LOCK held shared (the writers hold it exclusively while they write), or -1. */
static int hold_lock(const validator *v)
{
    char *path = kms_path_join(v->dir, "LOCK");
    int fd = path != NULL ? open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
    free(path);
    while (fd >= 0 && flock(fd, LOCK_SH) != 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

void kms_validator_scan_segment(validator *v, long si)
{
    segment *s = &v->segs[si];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    kms_audit_lines r;
    int fd = -1, err;
    /* Only a segment that can still be the open one may end in unused space; in a sealed one a
     * NUL is a change like any other. */
    bool may_pad = s->digest < 0 && !s->sealed;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        v->oom = true;
        EVP_MD_CTX_free(md);
        return;
    }
    /* A segment that can still be the open one is read under a shared hold of LOCK: no writer is
     * half-way through a batch (or through the zeros after it) meanwhile, so that a batch being
     * written is never taken for a torn or unacknowledged one. Without LOCK (a copy of a trail),
     * it is read as it is. */
    int lock_fd = may_pad ? hold_lock(v) : -1;
    if ((err = segment_open(v, s, &r, md, &fd)) != 0) {
        if (err == EINVAL) {
            kms_validator_problem(v, &s->f, "unexpected", s->name, -1, 0,
                                  "%s is not a regular file", s->name);
        } else if (err != ENOMEM) {
            kms_validator_problem(v, &s->f, "missing", s->name, -1, 0, "%s cannot be read: %s",
                                  s->name, strerror(err));
        }
        s->damaged = true;
    } else {
        kms_audit_line l;
        size_t lineno = 0;
        int rc;
        while ((rc = kms_audit_lines_next(&r, &l)) == 1) {
            ++lineno;
            if (l.torn && may_pad && is_padding(fd, &l)) {
                s->padded = true;
                s->pad_offset = l.offset;
                s->pad_len = l.len;
                s->pad_line = lineno;
                continue;
            }
            record_line(v, si, lineno, &l);
        }
        if (rc < 0) {
            kms_validator_problem(v, &s->f, "missing", s->name, -1, lineno + 1,
                                  "%s cannot be read past line %zu", s->name, lineno);
            s->damaged = true;
        }
        kms_validator_check_acks(v, s, fd);
        uint8_t h[32];
        unsigned int hl = 0;
        EVP_DigestFinal_ex(md, h, &hl);
        kms_audit_hex_encode(h, sizeof h, s->file_hash);
        s->scanned = true;
        kms_audit_lines_close(&r);
        close(fd);
    }
    EVP_MD_CTX_free(md);
    if (lock_fd >= 0) {
        close(lock_fd); /* releases the hold */
    }
    if (s->first_seq >= 0 && s->first_seq != s->number) {
        kms_validator_problem(v, &s->f, "out-of-order", s->name, s->first_seq, 1,
                              "%s starts with record %" PRId64 " but its name says %" PRId64
                              ": segments were renamed or swapped",
                              s->name, s->first_seq, s->number);
        s->damaged = true;
    }
}
