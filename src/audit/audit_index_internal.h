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

/* Opens (creating, or recreating when it is not a database) dir/index.db with the current
 * schema. KMS_ERR_AUDIT on failure; x can be closed in either case. */
int kms_audit_index_open(kms_audit_index *x, const char *dir) __attribute__((warn_unused_result));
void kms_audit_index_close(kms_audit_index *x);
/* Indexes what the segments hold beyond what the index has, or rebuilds it when it no longer
 * describes them, in one BEGIN IMMEDIATE transaction (audit_index.c's header comment): the
 * records the chain covers from record 1 and, with an anchor (text, NULL for none), no record
 * after the one it acknowledges (KMS_ERR_AUDIT when that record was rewritten). */
int kms_audit_index_catch_up(kms_audit_index *x, const char *anchor)
    __attribute__((warn_unused_result));
/* Whether s is a segment file name (20 digits ".jsonl"). */
bool kms_audit_index_segment_name(const char *s);

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
