/* The audit index (dir/index.db), shared by its files: opening it and catching it up with the
 * segments (audit_index_catch_up.c), the record scanner (audit_index_scan.c), and the queries
 * lookup-events and usage-report (audit_index.c). Private to src/audit. */
#ifndef KMS_AUDIT_AUDIT_INDEX_INTERNAL_H
#define KMS_AUDIT_AUDIT_INDEX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit_internal.h"
#include "store/db.h"

/* ---- The index database (audit_index_catch_up.c) ---- */

/* The index of one audit directory, open for one query: caller-owned storage that
 * kms_audit_index_open fills and kms_audit_index_close releases. `c` is its one connection,
 * borrowed for the whole query. */
typedef struct kms_audit_index {
    const char *dir; /* borrowed */
    char *path;      /* dir/index.db */
    kms_db *db;
    kms_db_conn *c;
} kms_audit_index;

/* Opens (creating, or recreating when it is not a database) the index database at path (NULL:
 * dir/index.db) with the current schema. KMS_ERR_AUDIT on failure; x can be closed in either case.
 */
int kms_audit_index_open(kms_audit_index *x, const char *dir, const char *path)
    __attribute__((warn_unused_result));
void kms_audit_index_close(kms_audit_index *x);
/* Indexes what the segments hold beyond what the index has, or rebuilds it when it no longer
 * describes them, in one BEGIN IMMEDIATE transaction (audit_index.c's header comment): the
 * records the chain covers from record 1 and, with trust's acker, that an ack pins
 * (KMS_ERR_AUDIT when the record trust's anchor acknowledges was rewritten). */
int kms_audit_index_catch_up(kms_audit_index *x, const kms_audit_trust *trust)
    __attribute__((warn_unused_result));
/* The record line at off (len bytes) of segment, as a JSON string; NULL when it cannot be read
 * or is not UTF-8 (audit_index.c). */
json_t *kms_audit_index_read_record(const kms_audit_index *x, const char *segment, int64_t off,
                                    int64_t len);
/* Whether s is a segment file name (20 digits ".jsonl"). */
bool kms_audit_index_segment_name(const char *s);

/* ---- Reading segments (audit_index_segments.c) ---- */

#define KMS_AUDIT_SEGMENT_NAME_LEN 26 /* 20 digits ".jsonl" */

/* A segment file as listed (under the index's write lock, so that what another process indexed
 * in the meantime is never newer than the size seen here). */
typedef struct seg_entry {
    char name[KMS_AUDIT_SEGMENT_NAME_LEN + 1];
    int64_t size, inode, mtime_ns;
} seg_entry;

/* The segments of x->dir in name order (20 zero-padded digits sort as numbers). */
int kms_audit_index_list_segments(const kms_audit_index *x, seg_entry **out, size_t *n)
    __attribute__((warn_unused_result));
/* Opens a segment for its complete lines from offset on (a partial last line is left until it
 * is complete; a line longer than any record comes with p NULL); KMS_ERR_AUDIT raised. */
int kms_audit_index_lines_open(const kms_audit_index *x, const char *segment, uint64_t offset,
                               kms_audit_lines *r) __attribute__((warn_unused_result));
/* kms_audit_lines_next with a read error raised. */
int kms_audit_index_lines_next(kms_audit_lines *r, kms_audit_line *l)
    __attribute__((warn_unused_result));
/* Hash of the segment's first complete line; "" if it has none or cannot be read. */
void kms_audit_index_first_line_hash(const kms_audit_index *x, const char *segment,
                                     char out[KMS_AUDIT_HASH_HEX + 1]);

/* ---- The fields of a record line (audit_index_scan.c) ---- */

#define KMS_AUDIT_INDEX_MAX_RESOURCES 16
/* The decoded strings and their NULs fit in the line's length; the scanner wants room for one
 * more escape (4 bytes) and a NUL beyond what it has copied. */
#define KMS_AUDIT_INDEX_ARENA_SLACK 8

typedef struct kms_audit_index_fields {
    int64_t sequence; /* -1: none */
    const char *event_time, *event_id, *event_name, *event_source, *event_type;
    const char *user_type, *user_name, *user_arn, *access_key_id;
    bool read_only, error;
    size_t nres;
    const char *res_type[KMS_AUDIT_INDEX_MAX_RESOURCES], *res_arn[KMS_AUDIT_INDEX_MAX_RESOURCES];
} kms_audit_index_fields;

/* 0 and the fields of a record line of len bytes at p; -1 if it is not a JSON object. The
 * strings point into arena, of len + KMS_AUDIT_INDEX_ARENA_SLACK bytes. */
int kms_audit_index_scan_record(const char *p, size_t len, char *arena, kms_audit_index_fields *f)
    __attribute__((warn_unused_result));

#endif
