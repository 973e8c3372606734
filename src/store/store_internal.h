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

/* ---- Listings (store.c) ---- */

/* The parameters of a listing, held in v: ?1 the marker ("" for the start: every name sorts
 * after it), ?2 the row limit (one more than asked: kms_store_fetch_limit), ?3 the subject
 * unless NULL. */
kms_db_params kms_store_list_params(kms_db_value v[3], const char *marker, size_t limit,
                                    const char *subject);

/* One listing: the page query, its rows read into memory, then one visit per row after the
 * connection went back to the pool (so that the caller's callback may use the store again). */
typedef struct kms_store_walk {
    const char *sql;
    kms_db_params params;
    const char *what; /* names the failed query */
    size_t item_size; /* the size of one row in memory */
    size_t limit;     /* rows visited at most (more: *truncated); SIZE_MAX for every row */
    /* Reads the current row into a zeroed item; frees what it allocated if it fails. */
    int (*read)(kms_db_stmt *st, void *item);
    /* Frees what read allocated in an item (NULL: nothing to free). */
    void (*clean_up)(void *item);
    /* Calls the caller's typed callback on one item: nonzero stops the walk with -1. */
    int (*visit)(void *arg, const void *item);
    void *arg;
} kms_store_walk;

/* Runs w; *truncated (may be NULL) tells whether rows beyond w->limit were left. */
int kms_store_walk_rows(kms_store *store, const kms_store_walk *w, bool *truncated)
    __attribute__((warn_unused_result));

#endif
