/* The store's connections for the modules that keep their own tables in the metadata database
 * (grants here, src/iam). Private to src/: no front end includes it.
 *
 * A borrowed connection belongs to one thread until it is returned. Statements are prepared
 * once per connection and cached by the address of their SQL text, so `sql` must be a string
 * with static storage (a literal). Returning a connection resets any statement left mid-step and
 * rolls back a transaction left open, so that an early `goto out` cannot poison the pool. */
#ifndef KMS_STORE_STORE_INTERNAL_H
#define KMS_STORE_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

typedef struct kms_store_conn kms_store_conn;

int kms_store_conn_borrow(kms_store *store, kms_store_conn **out)
    __attribute__((warn_unused_result));
void kms_store_conn_return(kms_store *store, kms_store_conn *c);
sqlite3 *kms_store_conn_db(kms_store_conn *c);

/* The cached prepared statement of `sql` (static storage), reset and unbound. */
int kms_store_conn_prepare(kms_store *store, kms_store_conn *c, const char *sql, sqlite3_stmt **out)
    __attribute__((warn_unused_result));

/* BEGIN IMMEDIATE / COMMIT; rollback keeps the error already raised and is a no-op outside a
 * transaction. */
int kms_store_conn_begin(kms_store *store, kms_store_conn *c) __attribute__((warn_unused_result));
int kms_store_conn_commit(kms_store *store, kms_store_conn *c) __attribute__((warn_unused_result));
void kms_store_conn_rollback(kms_store_conn *c);

/* Raises the error of a failed SQLite call (KMS_ERR_HOME for an unusable file, else
 * KMS_ERR_INTERNAL); `what` names the operation. Returns -1. */
int kms_store_raise(const kms_store *store, kms_store_conn *c, int rc, const char *what);
/* Steps st once: 1 a row, 0 done, -1 error raised (naming `what`). */
int kms_store_step(kms_store *store, kms_store_conn *c, sqlite3_stmt *st, const char *what)
    __attribute__((warn_unused_result));

#endif
