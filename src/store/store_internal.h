/* Inside src/store, and for the modules that keep their own tables in the metadata database
 * (src/iam): the store's pool of connections (db.h) and helpers its files share. Private to
 * src/: no front end includes it. */
#ifndef KMS_STORE_STORE_INTERNAL_H
#define KMS_STORE_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/db.h"
#include "store/store.h"

/* The store's connections: borrow them with kms_db_borrow (db.h). */
kms_db *kms_store_db(kms_store *store);

/* ---- Schema (store_schema.c) ---- */

/* Fills a new, empty file: WAL, then application id, meta table and every migration in one
 * transaction. */
int kms_store_schema_create(kms_db_conn *c, const char *path) __attribute__((warn_unused_result));
/* Brings a recognised database to the current schema (KMS_ERR_HOME unless it is ours). */
int kms_store_schema_upgrade(kms_db_conn *c, const char *path) __attribute__((warn_unused_result));

/* ---- Shared by the store's files (store.c) ---- */

/* A NUL-terminated string of at most size-1 bytes, and not empty. */
bool kms_store_field_ok(const char *s, size_t size);
/* One of AWS KMS's KeyState values. */
bool kms_store_key_state_known(const char *state);
/* LIMIT ?: one more row than asked tells whether a listing is truncated. */
int64_t kms_store_fetch_limit(size_t limit);

/* Rows of a listing, collected before the callbacks run, after the connection went back to the
 * pool, so that a callback may call the store again. */
typedef struct kms_store_rows {
    void *items;
    size_t item_size;
    size_t count;
    size_t cap;
} kms_store_rows;

int kms_store_rows_push(kms_store_rows *l, const void *item) __attribute__((warn_unused_result));

/* ---- For src/iam until it moves onto db.h (then these go) ---- */

typedef struct kms_db_conn kms_store_conn;

int kms_store_conn_borrow(kms_store *store, kms_store_conn **out)
    __attribute__((warn_unused_result));
void kms_store_conn_return(kms_store *store, kms_store_conn *c);
sqlite3 *kms_store_conn_db(kms_store_conn *c);
int kms_store_conn_prepare(kms_store *store, kms_store_conn *c, const char *sql, sqlite3_stmt **out)
    __attribute__((warn_unused_result));
int kms_store_conn_begin(kms_store *store, kms_store_conn *c) __attribute__((warn_unused_result));
int kms_store_conn_commit(kms_store *store, kms_store_conn *c) __attribute__((warn_unused_result));
void kms_store_conn_rollback(kms_store_conn *c);
int kms_store_raise(const kms_store *store, kms_store_conn *c, int rc, const char *what);
int kms_store_step(kms_store *store, kms_store_conn *c, sqlite3_stmt *st, const char *what)
    __attribute__((warn_unused_result));

#endif
