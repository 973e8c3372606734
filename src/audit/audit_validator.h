/* validate-logs' state and the passes its files share (audit_validate.c runs them in order and
 * builds the report; see its comment for the passes). Private to validate-logs. */
#ifndef KMS_AUDIT_AUDIT_VALIDATOR_H
#define KMS_AUDIT_AUDIT_VALIDATOR_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"

#define DIGEST_MAX_BYTES ((size_t)1024 * 1024)
#define SIG_MAX_BYTES ((size_t)1024)
#define NAME_DIGITS 20
#define PROBLEMS_PER_FILE 100
#define NAME_MAX_LEN 64

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

/* A line with an ack member, and the segment's counts once it was read. */
typedef struct ack_line {
    uint64_t offset;
    size_t len, lineno, good;
    uint64_t bytes;
    int64_t seq;
} ack_line;

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
    uint64_t record_bytes; /* bytes of its good records' lines, '\n' included */
    /* Its lines with an ack member, when acks are checked here (no verified digest covers it). */
    struct ack_line *acks;
    size_t nacks, acks_cap;
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
    /* The record the anchor acknowledges (anchor.has_ack): seen while scanning, with its chain
     * hash. */
    bool ack_seen;
    char ack_seen_hash[KMS_AUDIT_HASH_HEX + 1];
    /* Verifies acks (mac NULL: none). */
    kms_audit_acker acker;
    /* An anchor kept off the machine (kms_audit_validate_against), if expecting. */
    bool expecting;
    uint64_t expect_seq;
    char expect_hash[KMS_AUDIT_HASH_HEX + 1];
    bool expect_seen; /* record expect_seq was read; expect_seen_hash is its chain hash */
    char expect_seen_hash[KMS_AUDIT_HASH_HEX + 1];
    bool expect_found; /* ... and it matches */
    bool oom;
} validator;

/* ---- Findings, files, listing (audit_validate_files.c) --------------------------------------- */

/* A problem of the digest chain: a digest missing from it is missing whatever its times were. */
__attribute__((format(printf, 7, 8))) void
kms_validator_chain_problem(validator *v, findings *f, const char *kind, const char *file,
                            int64_t seq, size_t line, const char *fmt, ...);

/* Records a problem of `file` in f. seq < 0 and line == 0 mean unknown. */
__attribute__((format(printf, 7, 8))) void kms_validator_problem(validator *v, findings *f,
                                                                 const char *kind, const char *file,
                                                                 int64_t seq, size_t line,
                                                                 const char *fmt, ...);

/* Opens dir/sub; a missing one is a problem, any other failure is the caller's to raise. */
DIR *kms_validator_open_sub(validator *v, const char *sub, int *err);

/* "NNN<suffix>" with exactly NAME_DIGITS digits and a number that fits int64_t. */
bool kms_validator_parse_name(const char *name, const char *suffix, int64_t *number);

int kms_validator_grow(void **arr, size_t *cap, size_t n, size_t size);

/* Opens a file of the trail for reading, never blocking (a FIFO) nor following a symlink.
 * The caller refuses what fstat says is not a regular file. */
int kms_validator_open_trail_file(int dfd, const char *path);

/* Reads a whole regular file of at most max bytes. 0, or an errno value (EFBIG: too large;
 * EINVAL: not a regular file, a symlink included). */
int kms_validator_read_small(const char *path, size_t max, char **out, size_t *len);

void kms_validator_findings_init(findings *f);

/* Digest names go in v->digs; .sig names are only checked for a digest beside them. */
void kms_validator_list_digests(validator *v, DIR *d);

void kms_validator_list_segments(validator *v, DIR *d);

void kms_validator_unexpected(validator *v, const char *sub, const char *name, const char *why);

/* ---- Digests (audit_validate_digests.c) ------------------------------------------------------ */

const char *kms_validator_str_field(const json_t *o, const char *k);

/* v->digs is in sequence order, which is name order (fixed-width numbers). */
digest *kms_validator_digest_by_name(validator *v, const char *name);

/* v->by_name: the segments in name order (v->segs is in record order). */
int kms_validator_index_segment_names(validator *v);

int64_t kms_validator_int_field(const json_t *o, const char *k);

void kms_validator_check_digests(validator *v);

/* Notes which segments each digest lists. */
void kms_validator_digest_log_files(validator *v, size_t gi);

/* ---- Segments (audit_validate_segments.c) ---------------------------------------------------- */

/* Segments in the order of their first record; by name where that is unknown or equal. */
int kms_validator_cmp_segment(const void *a, const void *b);

void kms_validator_peek_first(validator *v, segment *s);

void kms_validator_scan_segment(validator *v, long si);

/* ---- Segments against digests (audit_validate_coverage.c) ------------------------------------ */

void kms_validator_check_coverage(validator *v);

/* ---- torn/ (audit_validate_torn.c) ----------------------------------------------------------- */

/* torn/ exists once the writer has repaired a segment; without it there is nothing to check. */
void kms_validator_check_torn(validator *v);

/* ---- The anchor (audit_validate_anchor.c) ---------------------------------------------------- */

/* Parses the anchor (before the segments are scanned, which note the acknowledged record). */
void kms_validator_parse_anchor(validator *v);
/* Called for each record read: notes the record the anchor acknowledges. */
void kms_validator_note_acked(validator *v, int64_t seq);
/* Called for each record line read (l its line): remembers a line with an ack member when the
 * segment's acks are to be checked. */
void kms_validator_note_ack_line(validator *v, segment *s, const kms_audit_line *l, size_t lineno,
                                 int64_t seq);
/* After a segment's scan (fd open on it): its records after the last line whose ack verifies
 * are "unacknowledged" (counted invalid). */
void kms_validator_check_acks(validator *v, segment *s, int fd);
/* The trail must reach the anchored digest, with the anchored bytes, and hold the records it
 * covers, up to the acknowledged record with its chain hash, and nothing after that record. Its
 * problems go with the trail's (v->other): always reported, whatever the time range, since a
 * deleted tail has no times left to judge it by. */
void kms_validator_check_anchor(validator *v);

/* An anchor kept off the machine (audit.h): record v->expect_seq must be there, with the
 * expected chain hash. Its problems go with the trail's, as the anchor's. */
void kms_validator_check_expected(validator *v);

#endif
