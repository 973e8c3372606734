/* Inside src/store, and for the modules that keep their own tables in the metadata database
 * (src/iam): the store's pool of connections (db.h) and helpers its files share. Private to
 * src/: no front end includes it. */
#ifndef KMS_STORE_STORE_INTERNAL_H
#define KMS_STORE_STORE_INTERNAL_H

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

/* ---- Keys (store_keys.c) ---- */

/* 1 if the key exists on c, 0 if not, -1 on error (naming `what`). */
int kms_store_key_exists(kms_db_conn *c, const char *key_id, const char *what)
    __attribute__((warn_unused_result));

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

/* A page of a listing: its rows, at most `limit`, and whether more follow. */
typedef struct kms_store_page {
    kms_store_rows rows;
    size_t limit;
    bool more;
} kms_store_page;

/* The parameters of a listing: ?1 the marker ("" for the start: every name sorts after it),
 * ?2 the row limit (one more than asked: kms_store_fetch_limit), ?3 the subject unless NULL. */
typedef struct kms_store_list_params {
    const char *marker;
    size_t limit;
    const char *subject;
} kms_store_list_params;

int kms_store_bind_list(kms_db_stmt *st, const void *arg) __attribute__((warn_unused_result));

#endif
