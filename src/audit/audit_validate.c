/* validate-logs: checks a trail on disk (audit.h "On disk", "A record line", "A digest") the way
 * `aws cloudtrail validate-logs` checks S3 log files, and says what is wrong in a report.
 *
 * Passes:
 *  1. List segments/ and digests/; names that do not belong are "unexpected".
 *  2. Read every digest: its .sig against the key, its JSON, its own name and fields.
 *  3. Walk the digest chain (previousDigestFile/HashValue/Signature) in sequence order.
 *  4. Peek at each segment's first record and order the segments by it (so that swapped files
 *     are reported once, as misnamed, instead of as a broken chain), note which digest lists
 *     which segment, then stream every segment line by line: JSON, sequence, previousHash, the
 *     file's SHA-256.
 *  5. Compare the segments with what their digests recorded; find segments no digest lists.
 *  6. Match every file in torn/ with the AuditLogRepaired record of its repair.
 *  7. Check the anchor, if the caller gave one: the digest it names and the records it covers
 *     are there, with the anchored bytes (a rollback of the tail shows only here).
 *  8. Keep the problems and counters of the files whose event times overlap [start, end]. A
 *     file's times are the signed ones of its digest: a record's eventTime is not signed, and
 *     changing it must not hide a segment. Problems that are not about when events happened
 *     (signatures, the digest chain, torn lines, files that do not belong) are always kept.
 * Problems are collected per file (at most PROBLEMS_PER_FILE each) so that the time filter can
 * drop whole files, and so that a garbage file cannot blow up the report.
 *
 * Every file is opened O_NONBLOCK | O_NOFOLLOW and refused unless fstat says it is a regular
 * file: a FIFO or device put in the trail must not hang or feed validate-logs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "util/util.h"

#define DIGEST_MAX_BYTES ((size_t)1024 * 1024)
#define SIG_MAX_BYTES ((size_t)1024)
#define NAME_DIGITS 20
#define PROBLEMS_PER_FILE 100
#define NAME_MAX_LEN 64

/* ---- Files and their findings --------------------------------------------------------------- */

/* Problems and counts of one file, kept until the time filter decides whether they count. */
typedef struct findings {
    json_t *problems; /* array */
    size_t suppressed;
    const char *suppressed_kind;
    bool invalid;
    bool timeless; /* a problem not tied to event times: reported whatever [start, end] */
} findings;

/* An AuditLogRepaired record (audit.h "Durability, group commit, crash"), for the torn/ files. */
typedef struct repair {
    char file[NAME_MAX_LEN]; /* "segments/NNN.jsonl" */
    int64_t offset, length;
    char sha256[KMS_AUDIT_HASH_HEX + 1];
    bool matched; /* a torn/ file holds its bytes */
} repair;

typedef struct segment {
    char name[NAME_MAX_LEN]; /* "segments/NNN.jsonl" */
    int64_t number;
    findings f;
    json_t *repairs;
    int64_t peek_seq; /* sequence of the first record, -1 if unknown */
    bool scanned;
    char file_hash[KMS_AUDIT_HASH_HEX + 1];
    int64_t first_seq, last_seq; /* -1: no well-formed record */
    char last_hash[KMS_AUDIT_HASH_HEX + 1];
    int64_t oldest, newest; /* event times, -1 unknown */
    size_t good, bad;
    bool damaged; /* a segment-level problem: none of its records can be trusted */
    long digest;  /* index of the digest that lists it, -1 none */
    size_t entry; /* its index in that digest's logFiles */
    bool open;    /* the open segment after the newest digest */
    bool sealed;  /* mode without write permission: the writer sealed it */
    /* Unused space: NUL bytes from a line start to the end (only the open segment may have it). */
    bool padded;
    uint64_t pad_offset, pad_len;
    size_t pad_line;
} segment;

typedef struct digest {
    char name[NAME_MAX_LEN]; /* "digests/NNN.json" */
    int64_t number;
    findings f;
    bool readable;
    char hash[KMS_AUDIT_HASH_HEX + 1];
    char *sig_hex; /* hex of the .sig bytes, NULL if none */
    bool sig_ok;
    json_t *doc; /* parsed object, NULL if malformed */
    int64_t oldest, newest;
} digest;

typedef struct validator {
    const char *dir;
    EVP_PKEY *key;
    char fingerprint[KMS_AUDIT_HASH_HEX + 1];
    int64_t start, end;
    segment *segs;
    size_t nsegs, segs_cap;
    segment **by_name;
    digest *digs;
    size_t ndigs, digs_cap;
    findings other; /* unexpected files, missing directories, torn/: always reported */
    repair *reps;   /* every AuditLogRepaired record seen */
    size_t nreps, reps_cap;
    /* The chain across segments. */
    int64_t last_seq;
    char prev_hash[KMS_AUDIT_HASH_HEX + 1];
    long prev_seg; /* segment of the previous record, -1 none */
    size_t prev_line;
    bool resync; /* the previous line was unreadable: do not check the next one against it */
    /* The anchor (audit.h "The anchor"): its text, NULL if none; parsed if well-formed. */
    const char *anchor_text;
    kms_audit_anchor anchor;
    bool anchored;     /* anchor holds a well-formed anchor */
    bool anchor_found; /* ... and the trail reaches it with the anchored bytes */
    bool oom;
} validator;

static const char ZERO_HASH[] = "0000000000000000000000000000000000000000000000000000000000000000";

static void findings_init(findings *f)
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
__attribute__((format(printf, 7, 8))) static void problem(validator *v, findings *f,
                                                          const char *kind, const char *file,
                                                          int64_t seq, size_t line, const char *fmt,
                                                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(v, f, kind, file, seq, line, fmt, ap);
    va_end(ap);
}

/* A problem of the digest chain: a digest missing from it is missing whatever its times were. */
__attribute__((format(printf, 7, 8))) static void chain_problem(validator *v, findings *f,
                                                                const char *kind, const char *file,
                                                                int64_t seq, size_t line,
                                                                const char *fmt, ...)
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
static int open_trail_file(int dfd, const char *path)
{
    return openat(dfd, path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
}

/* Reads a whole regular file of at most max bytes. 0, or an errno value (EFBIG: too large;
 * EINVAL: not a regular file, a symlink included). */
static int read_small(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open_trail_file(AT_FDCWD, path);
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
    return s != NULL && strlen(s) == KMS_AUDIT_HASH_HEX &&
           strspn(s, "0123456789abcdef") == KMS_AUDIT_HASH_HEX;
}

/* "NNN<suffix>" with exactly NAME_DIGITS digits and a number that fits int64_t. */
static bool parse_name(const char *name, const char *suffix, int64_t *number)
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

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * size);
    if (p == NULL) {
        return -1;
    }
    *arr = p;
    *cap = ncap;
    return 0;
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

static void unexpected(validator *v, const char *sub, const char *name, const char *why)
{
    char file[NAME_MAX_LEN + 256];
    snprintf(file, sizeof file, "%s/%s", sub, name);
    bool tmp = strstr(name, ".tmp.") != NULL;
    problem(v, &v->other, "unexpected", file, -1, 0, "%s does not belong in %s/: %s%s", file, sub,
            why, tmp ? " (a temporary file left by an interrupted write)" : "");
}

static void list_segments(validator *v, DIR *d)
{
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t number;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (!parse_name(e->d_name, ".jsonl", &number)) {
            unexpected(v, "segments", e->d_name, "not a segment name (20 digits and .jsonl)");
            continue;
        }
        if (!regular_file(dirfd(d), e->d_name)) {
            unexpected(v, "segments", e->d_name, "not a regular file");
            continue;
        }
        if (grow((void **)&v->segs, &v->segs_cap, v->nsegs, sizeof *v->segs) != 0) {
            v->oom = true;
            return;
        }
        segment *s = &v->segs[v->nsegs++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "segments/%.40s", e->d_name);
        s->number = number;
        findings_init(&s->f);
        s->repairs = json_array();
        s->peek_seq = s->first_seq = s->last_seq = -1;
        s->oldest = s->newest = -1;
        s->digest = -1;
        s->sealed = read_only_file(dirfd(d), e->d_name);
    }
}

/* Digest names go in v->digs; .sig names are only checked for a digest beside them. */
static void list_digests(validator *v, DIR *d)
{
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t number;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (parse_name(e->d_name, ".json.sig", &number)) {
            char json[NAME_MAX_LEN];
            snprintf(json, sizeof json, "%.*s.json", NAME_DIGITS, e->d_name);
            if (faccessat(dirfd(d), json, F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
                char file[NAME_MAX_LEN + 16];
                snprintf(file, sizeof file, "digests/%s", json);
                problem(v, &v->other, "missing", file, number, 0,
                        "%s is missing but its signature digests/%s is there: the digest was "
                        "deleted, or a seal was interrupted",
                        file, e->d_name);
            }
            continue;
        }
        if (!parse_name(e->d_name, ".json", &number)) {
            unexpected(v, "digests", e->d_name,
                       "not a digest name (20 digits and .json or .json.sig)");
            continue;
        }
        if (!regular_file(dirfd(d), e->d_name)) {
            unexpected(v, "digests", e->d_name, "not a regular file");
            continue;
        }
        if (grow((void **)&v->digs, &v->digs_cap, v->ndigs, sizeof *v->digs) != 0) {
            v->oom = true;
            return;
        }
        digest *g = &v->digs[v->ndigs++];
        memset(g, 0, sizeof *g);
        snprintf(g->name, sizeof g->name, "digests/%.40s", e->d_name);
        g->number = number;
        g->oldest = g->newest = -1;
        findings_init(&g->f);
    }
}

static int cmp_digest(const void *a, const void *b)
{
    const digest *x = a, *y = b;
    return (x->number > y->number) - (x->number < y->number);
}

/* Opens dir/sub; a missing one is a problem, any other failure is the caller's to raise. */
static DIR *open_sub(validator *v, const char *sub, int *err)
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
        problem(v, &v->other, "missing", file, -1, 0, "the directory %s/ of the trail is missing",
                sub);
        *err = 0;
    }
    free(path);
    return d;
}

/* ---- Digests -------------------------------------------------------------------------------- */

static const char *str_field(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t int_field(const json_t *o, const char *k)
{
    const json_t *j = json_object_get(o, k);
    return json_is_integer(j) ? (int64_t)json_integer_value(j) : -1;
}

static bool verify(validator *v, const char *json, size_t len, const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, v->key) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, (const uint8_t *)json, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* Reads g's .sig, hexes it and verifies it over the digest bytes. */
static void digest_signature(validator *v, digest *g, const char *path, const char *json,
                             size_t len)
{
    char *sig_path = kms_strdup_printf("%s.sig", path);
    char *sig = NULL;
    size_t sig_len = 0;
    if (sig_path == NULL) {
        v->oom = true;
        return;
    }
    int err = read_small(sig_path, SIG_MAX_BYTES, &sig, &sig_len);
    if (err == ENOMEM) {
        v->oom = true;
    } else if (err == EINVAL) {
        char file[NAME_MAX_LEN + 8];
        snprintf(file, sizeof file, "%s.sig", g->name);
        problem(v, &g->f, "unexpected", file, g->number, 0,
                "%s is not a regular file, so %s has no signature", file, g->name);
    } else if (err != 0) {
        problem(v, &g->f, "missing", g->name, g->number, 0,
                "the signature %s.sig of this digest %s", g->name,
                err == ENOENT  ? "is missing"
                : err == EFBIG ? "is too large to be a signature"
                               : "cannot be read");
    } else {
        g->sig_hex = malloc(2 * sig_len + 1);
        if (g->sig_hex == NULL) {
            v->oom = true;
        } else {
            hex_encode((const uint8_t *)sig, sig_len, g->sig_hex);
        }
        g->sig_ok = verify(v, json, len, (const uint8_t *)sig, sig_len);
        if (!g->sig_ok) {
            problem(v, &g->f, "bad-signature", g->name, g->number, 0,
                    "the signature %s.sig does not verify with the digest public key: the digest "
                    "or its signature was changed, or it was signed by another key",
                    g->name);
        }
    }
    free(sig);
    free(sig_path);
}

/* The fields of a parsed digest that do not depend on other files. */
static void digest_fields(validator *v, digest *g)
{
    const json_t *o = g->doc;
    const char *file = str_field(o, "digestFile");
    if (file == NULL || strcmp(file, g->name) != 0) {
        problem(v, &g->f, "out-of-order", g->name, g->number, 0,
                "%s says it is %s: the file was renamed or copied", g->name,
                file ? file : "(no digestFile)");
    }
    int64_t first = int_field(o, "firstSequence"), last = int_field(o, "lastSequence");
    if (last != g->number || first < 1 || first > last) {
        problem(v, &g->f, "out-of-order", g->name, g->number, 0,
                "%s covers sequences %" PRId64 " to %" PRId64
                ", which does not match its name (the last sequence it covers)",
                g->name, first, last);
    }
    const char *fp = str_field(o, "digestPublicKeyFingerprint");
    if (fp == NULL || strcmp(fp, v->fingerprint) != 0) {
        problem(v, &g->f, "modified", g->name, g->number, 0,
                "%s names the signing key %s, not the digest public key %s", g->name,
                fp ? fp : "(none)", v->fingerprint);
    }
    const char *alg = str_field(o, "digestSignatureAlgorithm");
    if (alg == NULL || strcmp(alg, "SHA256withECDSA") != 0) {
        problem(v, &g->f, "modified", g->name, g->number, 0,
                "%s has signature algorithm %s, expected SHA256withECDSA", g->name,
                alg ? alg : "(none)");
    }
    if (!is_hash_hex(str_field(o, "lastRecordHash")) ||
        !json_is_array(json_object_get(o, "logFiles"))) {
        problem(v, &g->f, "malformed", g->name, g->number, 0,
                "%s lacks a lastRecordHash or a logFiles list", g->name);
    }
    g->oldest = kms_audit_parse_time(str_field(o, "oldestEventTime"));
    g->newest = kms_audit_parse_time(str_field(o, "newestEventTime"));
    if (g->oldest < 0 || g->newest < 0) {
        g->oldest = kms_audit_parse_time(str_field(o, "digestStartTime"));
        g->newest = kms_audit_parse_time(str_field(o, "digestEndTime"));
    }
}

static void digest_read(validator *v, digest *g)
{
    char *path = kms_path_join(v->dir, g->name);
    char *json = NULL;
    size_t len = 0;
    if (path == NULL) {
        v->oom = true;
        return;
    }
    int err = read_small(path, DIGEST_MAX_BYTES, &json, &len);
    if (err == ENOMEM) {
        v->oom = true;
    } else if (err == EINVAL) {
        problem(v, &g->f, "unexpected", g->name, g->number, 0, "%s is not a regular file", g->name);
    } else if (err != 0) {
        problem(v, &g->f, err == EFBIG ? "malformed" : "missing", g->name, g->number, 0, "%s %s",
                g->name, err == EFBIG ? "is too large to be a digest" : "cannot be read");
    } else {
        g->readable = true;
        kms_audit_sha256_hex(json, len, g->hash);
        digest_signature(v, g, path, json, len);
        json_error_t jerr;
        g->doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(g->doc)) {
            json_decref(g->doc);
            g->doc = NULL;
            problem(v, &g->f, "malformed", g->name, g->number, 0,
                    "%s is not a digest: not a JSON object (%s)", g->name, jerr.text);
        } else {
            digest_fields(v, g);
        }
    }
    free(json);
    free(path);
}

static int cmp_digest_name(const void *key, const void *elem)
{
    return strcmp(key, ((const digest *)elem)->name);
}

/* v->digs is in sequence order, which is name order (fixed-width numbers). */
static digest *digest_by_name(validator *v, const char *name)
{
    return v->ndigs ? bsearch(name, v->digs, v->ndigs, sizeof *v->digs, cmp_digest_name) : NULL;
}

/* previousDigest* of g against the digest before it (prev, NULL for the first). */
static void digest_chain(validator *v, digest *g, digest *prev)
{
    const json_t *o = g->doc;
    const char *pfile = str_field(o, "previousDigestFile");
    if (prev == NULL) {
        if (pfile != NULL) {
            chain_problem(
                v, &g->f, "missing", pfile, -1, 0,
                "%s names %s as the previous digest, which is missing: digests were deleted "
                "from the start of the chain",
                g->name, pfile);
        } else if (!json_is_null(json_object_get(o, "previousDigestHashValue")) ||
                   !json_is_null(json_object_get(o, "previousDigestSignature"))) {
            chain_problem(v, &g->f, "modified", g->name, g->number, 0,
                          "%s is the first digest but holds a previous digest hash or signature",
                          g->name);
        }
        return;
    }
    if (pfile == NULL || strcmp(pfile, prev->name) != 0) {
        bool gone = pfile != NULL && digest_by_name(v, pfile) == NULL;
        chain_problem(v, &g->f, gone ? "missing" : "out-of-order", gone ? pfile : g->name,
                      gone ? -1 : g->number, 0,
                      gone ? "%s names %s as the previous digest, which is missing: a digest was "
                             "deleted from the chain (the one before is %s)"
                           : "%s names %s as the previous digest, but the digest before it is %s",
                      g->name, pfile ? pfile : "no digest", prev->name);
        return;
    }
    const char *phash = str_field(o, "previousDigestHashValue");
    if (prev->readable && (phash == NULL || strcmp(phash, prev->hash) != 0)) {
        chain_problem(v, &prev->f, "modified", prev->name, prev->number, 0,
                      "%s does not hash to the previousDigestHashValue that %s recorded: it was "
                      "changed after %s was written",
                      prev->name, g->name, g->name);
    }
    const char *psig = str_field(o, "previousDigestSignature");
    if (prev->sig_hex != NULL && (psig == NULL || strcmp(psig, prev->sig_hex) != 0)) {
        chain_problem(v, &prev->f, "modified", prev->name, prev->number, 0,
                      "%s.sig differs from the previousDigestSignature that %s recorded",
                      prev->name, g->name);
    }
    int64_t pl = int_field(prev->doc, "lastSequence"), first = int_field(o, "firstSequence");
    if (pl >= 0 && first >= 0 && first != pl + 1) {
        chain_problem(v, &g->f, first > pl + 1 ? "missing" : "out-of-order", g->name, g->number, 0,
                      "%s starts at sequence %" PRId64
                      " but the previous digest %s ended at %" PRId64,
                      g->name, first, prev->name, pl);
    }
}

static int cmp_segment_name(const void *a, const void *b)
{
    return strcmp((*(segment *const *)a)->name, (*(segment *const *)b)->name);
}

static int cmp_segment_key(const void *key, const void *elem)
{
    return strcmp(key, (*(segment *const *)elem)->name);
}

/* v->by_name: the segments in name order (v->segs is in record order). */
static int index_segment_names(validator *v)
{
    v->by_name = calloc(v->nsegs ? v->nsegs : 1, sizeof *v->by_name);
    if (v->by_name == NULL) {
        v->oom = true;
        return -1;
    }
    for (size_t i = 0; i < v->nsegs; i++) {
        v->by_name[i] = &v->segs[i];
    }
    if (v->nsegs > 1) {
        qsort(v->by_name, v->nsegs, sizeof *v->by_name, cmp_segment_name);
    }
    return 0;
}

static segment *segment_by_name(validator *v, const char *name)
{
    segment **hit =
        v->nsegs ? bsearch(name, v->by_name, v->nsegs, sizeof *v->by_name, cmp_segment_key) : NULL;
    return hit ? *hit : NULL;
}

/* Notes which segments each digest lists. */
static void digest_log_files(validator *v, size_t gi)
{
    digest *g = &v->digs[gi];
    const json_t *files = json_object_get(g->doc, "logFiles");
    for (size_t i = 0; i < json_array_size(files); i++) {
        const json_t *e = json_array_get(files, i);
        const char *name = str_field(e, "file");
        segment *s = name ? segment_by_name(v, name) : NULL;
        if (name == NULL) {
            problem(v, &g->f, "malformed", g->name, g->number, 0,
                    "logFiles entry %zu of %s has no file", i + 1, g->name);
        } else if (s == NULL) {
            problem(v, &g->f, "missing", name, int_field(e, "firstSequence"), 0,
                    "%s, which %s lists (records %" PRId64 " to %" PRId64 "), is missing", name,
                    g->name, int_field(e, "firstSequence"), int_field(e, "lastSequence"));
        } else if (s->digest >= 0) {
            problem(v, &g->f, "modified", name, -1, 0, "%s is listed by both %s and %s", name,
                    v->digs[s->digest].name, g->name);
        } else {
            s->digest = (long)gi;
            s->entry = i;
        }
    }
}

static void check_digests(validator *v)
{
    if (v->ndigs > 1) {
        qsort(v->digs, v->ndigs, sizeof *v->digs, cmp_digest);
    }
    for (size_t i = 0; i < v->ndigs; i++) {
        digest_read(v, &v->digs[i]);
    }
    digest *prev = NULL;
    for (size_t i = 0; i < v->ndigs; i++) {
        digest *g = &v->digs[i];
        if (g->doc != NULL) {
            digest_chain(v, g, prev);
        }
        prev = g->readable ? g : prev;
    }
}

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
        !is_hash_hex(str_field(chain, "previousHash"))) {
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
    int f = open_trail_file(AT_FDCWD, path);
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

static void peek_first(validator *v, segment *s)
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
static int cmp_segment(const void *a, const void *b)
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
    const char *name = str_field(rec, "eventName");
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
    const char *f = json_string_value(file), *sha = str_field(d, "sha256");
    int64_t offset = int_field(d, "offset"), length = int_field(d, "length");
    if (f == NULL || strlen(f) >= NAME_MAX_LEN || offset < 0 || length < 0 || !is_hash_hex(sha)) {
        return; /* no torn/ file can match it */
    }
    if (grow((void **)&v->reps, &v->reps_cap, v->nreps, sizeof *v->reps) != 0) {
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
            problem(v, &s->f, "out-of-order", s->name, seq, lineno,
                    "record %" PRId64 " at line %zu of %s comes after record %" PRId64, seq, lineno,
                    s->name, v->last_seq);
        }
    } else if (seq > v->last_seq + 1) {
        char what[64];
        if (seq - 1 == v->last_seq + 1) {
            snprintf(what, sizeof what, "record %" PRId64 " is", seq - 1);
        } else {
            snprintf(what, sizeof what, "records %" PRId64 " to %" PRId64 " are", v->last_seq + 1,
                     seq - 1);
        }
        problem(v, &s->f, "missing", s->name, v->last_seq + 1, lineno,
                "%s missing before line %zu of %s (deleted: the sequence jumps from %" PRId64
                " to %" PRId64 ")",
                what, lineno, s->name, v->last_seq, seq);
    } else if (seq <= v->last_seq) {
        problem(v, &s->f, "out-of-order", s->name, seq, lineno,
                "record %" PRId64 " at line %zu of %s comes after record %" PRId64
                " (records repeated or out of order)",
                seq, lineno, s->name, v->last_seq);
        s->bad++;
        s->good--;
    } else if (strcmp(ph, v->prev_hash) != 0 && v->prev_seg < 0) {
        problem(v, &s->f, "modified", s->name, seq, lineno,
                "record 1 at line %zu of %s has a previousHash that is not 64 zeros", lineno,
                s->name);
        s->bad++;
        s->good--;
    } else if (strcmp(ph, v->prev_hash) != 0) {
        /* The previous record changed (or this record's previousHash did). */
        segment *p = &v->segs[v->prev_seg];
        problem(v, &p->f, "modified", p->name, seq - 1, v->prev_line,
                "record %" PRId64 " at line %zu of %s was modified: its SHA-256 does not match "
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
        problem(v, &s->f, torn ? "torn" : "malformed", s->name, -1, lineno,
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
        problem(v, &s->f, "malformed", s->name, -1, lineno,
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
    check_chain(v, si, lineno, seq, str_field(json_object_get(rec, "auditChain"), "previousHash"));
    int64_t t = kms_audit_parse_time(str_field(rec, "eventTime"));
    if (t >= 0) {
        s->oldest = s->oldest < 0 || t < s->oldest ? t : s->oldest;
        s->newest = t > s->newest ? t : s->newest;
    }
    note_repair(v, s, rec);
    json_decref(rec);
    kms_audit_sha256_hex(l->p, l->len, v->prev_hash);
    memcpy(s->last_hash, v->prev_hash, sizeof s->last_hash);
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

static void scan_segment(validator *v, long si)
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
    if ((err = segment_open(v, s, &r, md, &fd)) != 0) {
        if (err == EINVAL) {
            problem(v, &s->f, "unexpected", s->name, -1, 0, "%s is not a regular file", s->name);
        } else if (err != ENOMEM) {
            problem(v, &s->f, "missing", s->name, -1, 0, "%s cannot be read: %s", s->name,
                    strerror(err));
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
            problem(v, &s->f, "missing", s->name, -1, lineno + 1, "%s cannot be read past line %zu",
                    s->name, lineno);
            s->damaged = true;
        }
        uint8_t h[32];
        unsigned int hl = 0;
        EVP_DigestFinal_ex(md, h, &hl);
        hex_encode(h, sizeof h, s->file_hash);
        s->scanned = true;
        kms_audit_lines_close(&r);
        close(fd);
    }
    EVP_MD_CTX_free(md);
    if (s->first_seq >= 0 && s->first_seq != s->number) {
        problem(v, &s->f, "out-of-order", s->name, s->first_seq, 1,
                "%s starts with record %" PRId64 " but its name says %" PRId64
                ": segments were renamed or swapped",
                s->name, s->first_seq, s->number);
        s->damaged = true;
    }
}

/* ---- Segments against digests -------------------------------------------------------------- */

static void compare_with_digest(validator *v, segment *s)
{
    digest *g = &v->digs[s->digest];
    const json_t *e = json_array_get(json_object_get(g->doc, "logFiles"), s->entry);
    const char *hash = str_field(e, "hashValue");
    int64_t first = int_field(e, "firstSequence"), last = int_field(e, "lastSequence");
    if (!s->scanned) {
        return;
    }
    if (hash == NULL || strcmp(hash, s->file_hash) != 0) {
        problem(v, &s->f, "modified", s->name, -1, 0,
                "%s does not hash to the value %s recorded: it was changed after it was sealed",
                s->name, g->name);
        s->damaged = true;
    }
    if ((s->first_seq == first || s->first_seq < 0) && s->last_seq < last) {
        problem(v, &s->f, "missing", s->name, s->last_seq < 0 ? first : s->last_seq + 1, 0,
                "%s ends at record %" PRId64 " but %s says it holds records up to %" PRId64
                ": it was truncated",
                s->name, s->last_seq, g->name, last);
        s->damaged = true;
    } else if (s->first_seq != first || s->last_seq != last) {
        problem(v, &s->f, "modified", s->name, s->first_seq, 0,
                "%s holds records %" PRId64 " to %" PRId64 " but %s says %" PRId64 " to %" PRId64,
                s->name, s->first_seq, s->last_seq, g->name, first, last);
        s->damaged = true;
    }
    /* The last segment a digest lists ends with the record whose hash it recorded. */
    const char *lrh = str_field(g->doc, "lastRecordHash");
    if (s->entry + 1 == json_array_size(json_object_get(g->doc, "logFiles")) && s->last_seq >= 0 &&
        (lrh == NULL || strcmp(lrh, s->last_hash) != 0)) {
        problem(v, &s->f, "modified", s->name, s->last_seq, 0,
                "the last record of %s does not hash to the lastRecordHash of %s", s->name,
                g->name);
        s->damaged = true;
    }
}

/* The open segment: the last one (in record order) that holds records, or the last one if none
 * does, provided no digest lists it and it starts after the newest digest. A last segment that
 * holds nothing at all (created, or preallocated, before its first record) right after the newest
 * digest is the open one too. */
static long open_segment(const validator *v)
{
    int64_t newest = 0; /* last sequence covered by a digest */
    for (size_t i = 0; i < v->ndigs; i++) {
        int64_t l = v->digs[i].doc ? int_field(v->digs[i].doc, "lastSequence") : -1;
        newest = l > newest ? l : newest;
    }
    long last = (long)v->nsegs - 1;
    for (long i = last; i >= 0; i--) {
        if (v->segs[i].first_seq >= 0) {
            last = i;
            break;
        }
    }
    if (last < 0) {
        return -1;
    }
    const segment *e = &v->segs[v->nsegs - 1];
    if (last != (long)v->nsegs - 1 && v->segs[last].digest >= 0 && e->digest < 0 && !e->sealed &&
        e->scanned && e->first_seq < 0 && e->bad == 0 && e->number == newest + 1) {
        return (long)v->nsegs - 1;
    }
    const segment *s = &v->segs[last];
    int64_t first = s->first_seq >= 0 ? s->first_seq : s->number;
    bool named_right = s->first_seq < 0 || s->first_seq == s->number;
    /* A sealed segment without a digest is never the open one: its digest was deleted. */
    return s->digest < 0 && !s->sealed && first > newest && named_right ? last : -1;
}

static void check_coverage(validator *v)
{
    long open = open_segment(v);
    for (size_t i = 0; i < v->nsegs; i++) {
        segment *s = &v->segs[i];
        if (s->digest >= 0) {
            compare_with_digest(v, s);
        } else if ((long)i == open) {
            s->open = true;
        } else {
            problem(v, &s->f, "missing", s->name, s->first_seq, 0,
                    "%s is listed by no digest and is not the open segment after the newest "
                    "digest: its digest is missing, or the file does not belong to the trail",
                    s->name);
            s->damaged = true;
            if (s->padded) {
                problem(v, &s->f, "torn", s->name, -1, s->pad_line,
                        "line %zu of %s (offset %" PRIu64 ", %" PRIu64 " bytes) is NUL bytes "
                        "without a '\\n': only the open segment may end in unused space",
                        s->pad_line, s->name, s->pad_offset, s->pad_len);
            }
        }
    }
}

/* ---- torn/ ---------------------------------------------------------------------------------- */

/* "SEGMENT-OFFSET" or "SEGMENT-OFFSET.K" (audit.h "On disk": dir/torn/), SEGMENT the file name
 * of a segment; *file gets "segments/SEGMENT". */
static bool parse_torn_name(const char *name, char file[NAME_MAX_LEN], int64_t *offset)
{
    const size_t seg_len = NAME_DIGITS + sizeof ".jsonl" - 1;
    char seg[NAME_DIGITS + sizeof ".jsonl"];
    int64_t number;
    if (strlen(name) < seg_len + 2 || name[seg_len] != '-') {
        return false;
    }
    memcpy(seg, name, seg_len);
    seg[seg_len] = '\0';
    const char *p = name + seg_len + 1;
    size_t digits = strspn(p, "0123456789");
    const char *k = p + digits;
    /* At most 18 digits: any such number fits int64_t. */
    if (!parse_name(seg, ".jsonl", &number) || digits == 0 || digits > 18 ||
        (*k != '\0' &&
         (*k != '.' || k[1] == '\0' || strspn(k + 1, "0123456789") != strlen(k + 1)))) {
        return false;
    }
    *offset = strtoll(p, NULL, 10);
    snprintf(file, NAME_MAX_LEN, "segments/%s", seg);
    return true;
}

/* SHA-256 and length of the regular file fd. 0, or an errno value (EINVAL: not a regular file). */
static int hash_file(int fd, char hash[KMS_AUDIT_HASH_HEX + 1], uint64_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return errno;
    }
    if (!S_ISREG(st.st_mode)) {
        return EINVAL;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return ENOMEM;
    }
    int err = 0;
    char buf[8192];
    *len = 0;
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            err = k < 0 ? errno : 0;
            break;
        }
        if (EVP_DigestUpdate(md, buf, (size_t)k) != 1) {
            err = ENOMEM;
            break;
        }
        *len += (uint64_t)k;
    }
    uint8_t h[32];
    unsigned int hl = 0;
    if (err == 0 && EVP_DigestFinal_ex(md, h, &hl) != 1) {
        err = ENOMEM;
    }
    EVP_MD_CTX_free(md);
    if (err == 0) {
        hex_encode(h, sizeof h, hash);
    }
    return err;
}

/* A torn/ file must hold exactly the bytes an AuditLogRepaired record describes: one without
 * such a record is a repair that did not finish (the crash came before the record), or a file
 * put there. */
static void check_torn_file(validator *v, int dfd, const char *name)
{
    char file[NAME_MAX_LEN + 256], seg[NAME_MAX_LEN], hash[KMS_AUDIT_HASH_HEX + 1];
    int64_t offset;
    uint64_t len = 0;
    snprintf(file, sizeof file, "torn/%s", name);
    if (!parse_torn_name(name, seg, &offset)) {
        unexpected(v, "torn", name, "not the name of a torn line (a segment name, '-', an offset)");
        return;
    }
    int fd = open_trail_file(dfd, name);
    int err = fd < 0 ? (errno == ELOOP ? EINVAL : errno) : hash_file(fd, hash, &len);
    if (fd >= 0) {
        close(fd);
    }
    if (err == ENOMEM) {
        v->oom = true;
        return;
    }
    if (err == EINVAL) {
        unexpected(v, "torn", name, "not a regular file");
        return;
    }
    if (err != 0) {
        problem(v, &v->other, "missing", file, -1, 0, "%s cannot be read: %s", file, strerror(err));
        return;
    }
    const repair *same = NULL;
    for (size_t i = 0; i < v->nreps; i++) {
        repair *p = &v->reps[i];
        if (strcmp(p->file, seg) != 0 || p->offset != offset) {
            continue;
        }
        if (!p->matched && (uint64_t)p->length == len && strcmp(p->sha256, hash) == 0) {
            p->matched = true;
            return;
        }
        same = same ? same : p;
    }
    if (same == NULL) {
        problem(v, &v->other, "unrecorded-repair", file, -1, 0,
                "%s holds %" PRIu64 " bytes cut from %s at offset %" PRId64 ", but no "
                "AuditLogRepaired record in the trail records that repair: the repair was "
                "interrupted, or the file was put there",
                file, len, seg, offset);
    } else {
        problem(v, &v->other, "unrecorded-repair", file, -1, 0,
                "%s (%" PRIu64 " bytes, SHA-256 %s) is not what the AuditLogRepaired record of %s "
                "at offset %" PRId64 " says was cut (%" PRId64 " bytes, SHA-256 %s): the file was "
                "changed or replaced",
                file, len, hash, seg, offset, same->length, same->sha256);
    }
}

/* torn/ exists once the writer has repaired a segment; without it there is nothing to check. */
static void check_torn(validator *v)
{
    char *path = kms_path_join(v->dir, "torn");
    if (path == NULL) {
        v->oom = true;
        return;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    int err = fd < 0 ? errno : 0;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (fd >= 0 && d == NULL) {
        err = errno;
        close(fd);
    }
    free(path);
    if (err == ENOTDIR || err == ELOOP) {
        problem(v, &v->other, "unexpected", "torn", -1, 0,
                "torn is not a directory: it does not belong in the trail");
    } else if (err != 0 && err != ENOENT) {
        problem(v, &v->other, "missing", "torn/", -1, 0, "the directory torn/ cannot be read: %s",
                strerror(err));
    }
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && !v->oom) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            check_torn_file(v, dirfd(d), e->d_name);
        }
    }
    closedir(d);
}

/* ---- The anchor ----------------------------------------------------------------------------- */

/* The newest digest that could be read, for the messages; NULL if none. */
static const digest *newest_digest(const validator *v)
{
    for (size_t i = v->ndigs; i > 0; i--) {
        if (v->digs[i - 1].readable) {
            return &v->digs[i - 1];
        }
    }
    return NULL;
}

/* The highest sequence of a well-formed record in any segment, 0 if none. */
static int64_t newest_record(const validator *v)
{
    int64_t newest = 0;
    for (size_t i = 0; i < v->nsegs; i++) {
        newest = v->segs[i].last_seq > newest ? v->segs[i].last_seq : newest;
    }
    return newest;
}

/* The trail must reach the anchored digest, with the anchored bytes, and hold the records it
 * covers. Its problems go with the trail's (v->other): always reported, whatever the time range,
 * since a deleted tail has no times left to judge it by. */
static void check_anchor(validator *v)
{
    const char *why = NULL;
    if (v->anchor_text == NULL) {
        return;
    }
    if (!kms_audit_anchor_parse(v->anchor_text, &v->anchor, &why)) {
        problem(v, &v->other, "malformed", "anchor", -1, 0,
                "the anchor of the trail (kept in the HSM) is malformed: %s; the trail cannot be "
                "checked for a rollback",
                why);
        return;
    }
    v->anchored = true;
    const kms_audit_anchor *an = &v->anchor;
    int64_t seq = (int64_t)an->last_sequence, last = newest_record(v);
    const digest *g = digest_by_name(v, an->file), *newest = newest_digest(v);
    size_t before = json_array_size(v->other.problems) + v->other.suppressed;
    if (g == NULL || !g->readable) {
        problem(v, &v->other, "missing", an->file, seq, 0,
                "%s (records up to %" PRId64 "), which the anchor in the HSM says was written, "
                "is %s; the trail's newest digest is %s: digests or segments were deleted, or "
                "the directory was rolled back to an older copy",
                an->file, seq, g == NULL ? "missing" : "not readable",
                newest != NULL ? newest->name : "none");
    } else if (strcmp(g->hash, an->hash) != 0) {
        problem(v, &v->other, "modified", an->file, seq, 0,
                "%s hashes to %s, but the anchor in the HSM recorded %s when it was written: "
                "the digest was replaced",
                an->file, g->hash, an->hash);
    } else if (last < seq) {
        problem(v, &v->other, "missing", an->file, last + 1, 0,
                "records %" PRId64 " to %" PRId64 ", which the anchored %s covers, are missing "
                "(the trail's last record is %" PRId64 "): segments were deleted or rolled back",
                last + 1, seq, an->file, last);
    }
    v->anchor_found = json_array_size(v->other.problems) + v->other.suppressed == before;
}

/* ---- The report ----------------------------------------------------------------------------- */

static bool overlaps(const validator *v, int64_t oldest, int64_t newest)
{
    if (oldest < 0 || newest < 0) {
        return true; /* times unknown: report rather than hide */
    }
    return (v->start == 0 || newest >= v->start) && (v->end == 0 || oldest <= v->end);
}

static void flush(validator *v, json_t *out, findings *f, const char *file)
{
    for (size_t i = 0; i < json_array_size(f->problems); i++) {
        if (json_array_append(out, json_array_get(f->problems, i)) != 0) {
            v->oom = true;
        }
    }
    if (f->suppressed > 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%zu more problems in %s are not listed", f->suppressed, file);
        if (json_array_append_new(out, json_pack("{s:s, s:o, s:o}", "Kind", f->suppressed_kind,
                                                 "File", kms_audit_json_text(file), "Message",
                                                 kms_audit_json_text(msg))) != 0) {
            v->oom = true;
        }
    }
}

typedef struct counts {
    json_int_t dig_valid, dig_invalid, log_valid, log_invalid, rec_valid, rec_invalid, rec_unsigned;
} counts;

/* The event times the filter judges segment s by. Those its digest signed when one whose
 * signature verifies lists it (audit.h "A digest": the logFiles entry's, else the digest's own);
 * otherwise its records' (returns false: times nobody signed). */
static bool segment_times(const validator *v, const segment *s, int64_t *oldest, int64_t *newest)
{
    *oldest = s->oldest;
    *newest = s->newest;
    if (s->digest < 0 || !v->digs[s->digest].sig_ok) {
        return false;
    }
    const digest *g = &v->digs[s->digest];
    const json_t *e = json_array_get(json_object_get(g->doc, "logFiles"), s->entry);
    *oldest = kms_audit_parse_time(str_field(e, "oldestEventTime"));
    *newest = kms_audit_parse_time(str_field(e, "newestEventTime"));
    if (*oldest < 0 || *newest < 0) {
        *oldest = g->oldest;
        *newest = g->newest;
    }
    return true;
}

static void report_segment(validator *v, segment *s, json_t *problems, json_t *repairs, counts *c)
{
    int64_t oldest, newest;
    /* Unsigned times of a segment with problems could have been changed to hide them. */
    bool signed_times = segment_times(v, s, &oldest, &newest);
    if (!s->f.timeless && (signed_times || !s->f.invalid) && !overlaps(v, oldest, newest)) {
        return;
    }
    flush(v, problems, &s->f, s->name);
    if (json_array_extend(repairs, s->repairs) != 0) {
        v->oom = true;
    }
    bool signed_ok = s->digest >= 0 && v->digs[s->digest].sig_ok;
    bool trusted = !s->damaged && (signed_ok || s->open);
    if (!s->open || s->f.invalid) {
        c->log_valid += trusted && !s->f.invalid;
        c->log_invalid += !(trusted && !s->f.invalid);
    }
    if (!trusted) {
        c->rec_invalid += (json_int_t)(s->good + s->bad);
    } else {
        *(s->open ? &c->rec_unsigned : &c->rec_valid) += (json_int_t)s->good;
        c->rec_invalid += (json_int_t)s->bad;
    }
}

static json_t *build_report(validator *v)
{
    json_t *problems = json_array(), *repairs = json_array();
    counts c = {0};
    for (size_t i = 0; i < v->ndigs; i++) {
        digest *g = &v->digs[i];
        /* Without a good signature the digest's times are not signed: always reported. */
        if (g->f.timeless || !g->sig_ok || overlaps(v, g->oldest, g->newest)) {
            flush(v, problems, &g->f, g->name);
            bool ok = g->sig_ok && !g->f.invalid;
            c.dig_valid += ok;
            c.dig_invalid += !ok;
        }
    }
    for (size_t i = 0; i < v->nsegs; i++) {
        report_segment(v, &v->segs[i], problems, repairs, &c);
    }
    flush(v, problems, &v->other, "the trail");
    json_t *anchor = !v->anchored
                         ? NULL
                         : json_pack("{s:s, s:I, s:b}", "File", v->anchor.file, "LastSequence",
                                     (json_int_t)v->anchor.last_sequence, "Found", v->anchor_found);
    if (v->anchored && anchor == NULL) {
        v->oom = true;
    }
    json_t *r =
        json_pack("{s:b, s:{s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I, s:I}, s:o, s:o, s:o?}", "Valid",
                  json_array_size(problems) == 0, "DigestFiles", "Valid", c.dig_valid, "Invalid",
                  c.dig_invalid, "LogFiles", "Valid", c.log_valid, "Invalid", c.log_invalid,
                  "Records", "Valid", c.rec_valid, "Invalid", c.rec_invalid, "Unsigned",
                  c.rec_unsigned, "Problems", problems, "Repairs", repairs, "Anchor", anchor);
    if (r == NULL) {
        v->oom = true;
    }
    return r;
}

static void validator_free(validator *v)
{
    for (size_t i = 0; i < v->nsegs; i++) {
        json_decref(v->segs[i].f.problems);
        json_decref(v->segs[i].repairs);
    }
    for (size_t i = 0; i < v->ndigs; i++) {
        json_decref(v->digs[i].f.problems);
        json_decref(v->digs[i].doc);
        free(v->digs[i].sig_hex);
    }
    json_decref(v->other.problems);
    free(v->reps);
    free(v->segs);
    free(v->by_name);
    free(v->digs);
    EVP_PKEY_free(v->key);
}

static int list_trail(validator *v)
{
    DIR *root = opendir(v->dir);
    if (root == NULL) {
        return kms_raise(KMS_ERR_AUDIT, "cannot read the audit log directory %s: %s", v->dir,
                         strerror(errno));
    }
    closedir(root);
    int err = 0;
    DIR *d = open_sub(v, "segments", &err);
    if (d != NULL) {
        list_segments(v, d);
        closedir(d);
    }
    if (err == 0 && (d = open_sub(v, "digests", &err)) != NULL) {
        list_digests(v, d);
        closedir(d);
    }
    if (err != 0) {
        return kms_raise(KMS_ERR_AUDIT, "cannot read the audit log directory %s: %s", v->dir,
                         strerror(err));
    }
    return 0;
}

int kms_audit_validate(const char *dir, const uint8_t *spki, size_t spki_len, const char *anchor,
                       int64_t start, int64_t end, json_t **report)
{
    *report = NULL;
    KMS_ENSURE(dir != NULL && spki != NULL && start >= 0 && end >= 0, KMS_ERR_VALIDATION,
               "validate-logs needs the audit directory, the digest public key and times >= 0");
    int r = -1;
    validator v = {.dir = dir, .start = start, .end = end, .prev_seg = -1, .anchor_text = anchor};
    memcpy(v.prev_hash, ZERO_HASH, sizeof v.prev_hash);
    findings_init(&v.other);
    const uint8_t *p = spki;
    v.key = d2i_PUBKEY(NULL, &p, (long)spki_len);
    ERR_clear_error();
    if (v.key == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "the digest public key is not a DER SubjectPublicKeyInfo");
        goto out;
    }
    kms_audit_sha256_hex(spki, spki_len, v.fingerprint);
    if (list_trail(&v) != 0) {
        goto out;
    }
    check_digests(&v);
    for (size_t i = 0; i < v.nsegs; i++) {
        peek_first(&v, &v.segs[i]);
    }
    if (v.nsegs > 1) {
        qsort(v.segs, v.nsegs, sizeof *v.segs, cmp_segment);
    }
    if (index_segment_names(&v) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory while validating the audit log");
        goto out;
    }
    for (size_t i = 0; i < v.ndigs; i++) {
        if (v.digs[i].doc != NULL) {
            digest_log_files(&v, i);
        }
    }
    for (size_t i = 0; i < v.nsegs && !v.oom; i++) {
        scan_segment(&v, (long)i);
    }
    check_coverage(&v);
    check_torn(&v);
    check_anchor(&v);
    json_t *out = v.oom ? NULL : build_report(&v);
    if (v.oom) {
        json_decref(out);
        kms_raise(KMS_ERR_INTERNAL, "out of memory while validating the audit log");
        goto out;
    }
    *report = out;
    r = 0;
out:
    validator_free(&v);
    return r;
}
