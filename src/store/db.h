/* The one way to reach a database: a pool of connections to one file, statements prepared once
 * per connection, typed binds and column readers, and BEGIN IMMEDIATE transactions with the busy
 * policy in one place. Every module that keeps tables (src/store, src/iam, the audit index)
 * writes its SQL and calls this; nobody writes binding code of their own. Private to src/.
 *
 * The backend is SQLite today; nothing here names an sqlite3 type, so that another backend
 * (PostgreSQL) could sit beside it: statements are opaque, parameters are numbered from 1 (?1,
 * ?2 in the SQL text).
 *
 * Ownership. kms_db_new/kms_db_close own the pool and every connection in it. A connection is
 * borrowed by one thread at a time (kms_db_borrow) and given back with kms_db_return; the
 * statements of a connection belong to it and are never freed by callers. Text bound with
 * kms_db_bind_text/blob is NOT copied: it must stay valid until the statement has been stepped
 * to its end or reset. Text and blobs read with kms_db_column_text/blob are borrowed from the
 * statement and valid until its next step or reset; the _copy/_dup readers copy.
 *
 * Errors. Every function that can fail returns -1 (kms_db_step: -1) with the error raised
 * (util/error.h): cfg.file_err when the file itself is unusable (not a database, corrupt, no
 * permission, read-only), cfg.err for anything else. Messages read
 * "<what>: <label> <path>: <SQLite's message>"; SQLite names columns and constraints, never
 * values. Functions with `what` put it first; callers name the operation and its subject.
 *
 * Threads. kms_db_borrow/kms_db_return are thread-safe; a borrowed connection and its
 * statements are used by the borrowing thread only. Connections are opened without SQLite's
 * own mutexes (one thread at a time is our rule).
 *
 * Busy policy (the one place): every connection waits up to cfg.busy_timeout_ms for a lock held
 * by another connection or process. A write takes its lock first with BEGIN IMMEDIATE
 * (kms_db_begin, kms_db_transaction, kms_db_write): a deferred transaction that reads and then
 * writes could instead fail at once with SQLITE_BUSY when another writer committed since its
 * read began. Returning a connection resets any statement left mid-step and rolls back an open
 * transaction, so that an early `goto out` cannot poison the pool. */
#ifndef KMS_STORE_DB_H
#define KMS_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct kms_db kms_db;
typedef struct kms_db_conn kms_db_conn;
typedef struct kms_db_stmt kms_db_stmt;

typedef struct kms_db_config {
    const char *path;    /* an existing file: the caller creates it (with its own mode) */
    const char *label;   /* names the file in errors: "metadata database", "audit index" */
    kms_error err;       /* raised for failed calls */
    kms_error file_err;  /* raised when the file is unusable */
    const char *pragmas; /* run on every new connection (may be NULL) */
    int busy_timeout_ms; /* how long a connection waits for another's lock */
    size_t pool_max;     /* connections open at most; a borrower waits for one to come back */
} kms_db_config;

/* ---- The pool ---- */

/* A pool of connections to cfg->path (copied); no connection is opened yet. NULL on failure. */
kms_db *kms_db_new(const kms_db_config *cfg) __attribute__((warn_unused_result));
/* Closes every connection: none may be borrowed. NULL is a no-op. */
void kms_db_close(kms_db *db);
const char *kms_db_path(const kms_db *db);

/* A free connection, a new one while fewer than pool_max are open, else waits for one. */
int kms_db_borrow(kms_db *db, kms_db_conn **out) __attribute__((warn_unused_result));
/* Gives c back (resets its statements, rolls back an open transaction). NULL is a no-op. */
void kms_db_return(kms_db_conn *c);

/* Whether the last failure of this pool (opening or any call) said the file is not a database
 * or is corrupt: a derived database (the audit index) is then removed and built again. */
bool kms_db_file_unreadable(const kms_db *db);

/* Removes a database file and its -wal, -shm and -journal companions (errors ignored). */
void kms_db_remove_files(const char *path);

/* Runs SQL text of one or more statements without parameters or rows (schema, PRAGMAs). */
int kms_db_exec_script(kms_db_conn *c, const char *sql, const char *what)
    __attribute__((warn_unused_result));

/* ---- Statements ---- */

/* The statement of `sql` on c, prepared on first use and cached by the ADDRESS of `sql`, which
 * must therefore have static storage (a literal or static array); reset, with no bindings. */
int kms_db_prepare(kms_db_conn *c, const char *sql, kms_db_stmt **out)
    __attribute__((warn_unused_result));

/* Typed binds of parameter i (from 1). A NULL text binds SQL NULL (pass "" for an empty text);
 * a blob of length 0 binds an empty blob, never NULL. Values are not copied (see above). A bad
 * index raises cfg.err "cannot bind parameter <i>: <label> <path>: column index out of range". */
int kms_db_bind_text(kms_db_stmt *st, int i, const char *s) __attribute__((warn_unused_result));
int kms_db_bind_int64(kms_db_stmt *st, int i, int64_t v) __attribute__((warn_unused_result));
int kms_db_bind_blob(kms_db_stmt *st, int i, const void *p, size_t n)
    __attribute__((warn_unused_result));
int kms_db_bind_null(kms_db_stmt *st, int i) __attribute__((warn_unused_result));

/* Steps once: 1 a row is ready, 0 done, -1 error raised (naming `what`). */
int kms_db_step(kms_db_stmt *st, const char *what) __attribute__((warn_unused_result));
/* Runs a statement to its end (rows ignored) and resets it. */
int kms_db_exec(kms_db_stmt *st, const char *what) __attribute__((warn_unused_result));
/* As kms_db_exec for an INSERT: a primary key clash raises KMS_ERR_ALREADY_EXISTS with the
 * message `exists_msg` instead. */
int kms_db_insert(kms_db_stmt *st, const char *what, const char *exists_msg)
    __attribute__((warn_unused_result));
/* Resets st (ends its read), keeping its bindings. NULL is a no-op. */
void kms_db_reset(kms_db_stmt *st);

/* Rows changed by the last INSERT, UPDATE or DELETE of c, and the row id of its last INSERT. */
int64_t kms_db_changes(kms_db_conn *c);
int64_t kms_db_last_insert_id(kms_db_conn *c);

/* ---- Columns of the current row (col from 0) ---- */

bool kms_db_column_is_null(kms_db_stmt *st, int col);
/* NULL reads as 0. */
int64_t kms_db_column_int64(kms_db_stmt *st, int col);
/* Borrowed text; NULL reads as "". */
const char *kms_db_column_text(kms_db_stmt *st, int col);
/* Copies a NOT NULL text into dst[size]; NULL or a text that does not fit raises cfg.file_err
 * "<label> <path> holds an invalid <column> for <subject>": the file was not written by us. */
int kms_db_column_copy(kms_db_stmt *st, int col, char *dst, size_t size, const char *subject)
    __attribute__((warn_unused_result));
/* A malloc'd copy of the text (NULL reads as ""); *out NULL on failure. */
int kms_db_column_dup(kms_db_stmt *st, int col, char **out) __attribute__((warn_unused_result));
/* Borrowed blob: *p NULL and *n 0 for NULL or an empty blob. */
void kms_db_column_blob(kms_db_stmt *st, int col, const void **p, size_t *n);
/* A malloc'd copy of the blob; *out NULL and *n 0 for NULL or an empty blob. */
int kms_db_column_blob_dup(kms_db_stmt *st, int col, uint8_t **out, size_t *n)
    __attribute__((warn_unused_result));

/* ---- Transactions ---- */

/* BEGIN IMMEDIATE (waits for the write lock through the busy timeout) / a read snapshot (BEGIN
 * DEFERRED) / COMMIT. kms_db_rollback keeps the error already raised and is a no-op outside a
 * transaction. */
int kms_db_begin(kms_db_conn *c, const char *what) __attribute__((warn_unused_result));
int kms_db_begin_read(kms_db_conn *c, const char *what) __attribute__((warn_unused_result));
int kms_db_commit(kms_db_conn *c, const char *what) __attribute__((warn_unused_result));
void kms_db_rollback(kms_db_conn *c);

/* Runs fn(c, arg) inside BEGIN IMMEDIATE: commits when it returns 0, else rolls back (nothing it
 * wrote stays) and returns -1 with its error. */
typedef int (*kms_db_tx_fn)(kms_db_conn *c, void *arg);
int kms_db_transaction(kms_db_conn *c, kms_db_tx_fn fn, void *arg, const char *what)
    __attribute__((warn_unused_result));
/* kms_db_transaction on a connection borrowed for the call. */
int kms_db_write(kms_db *db, kms_db_tx_fn fn, void *arg, const char *what)
    __attribute__((warn_unused_result));

#endif
