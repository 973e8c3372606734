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
 * statements of a connection belong to it and are never freed by callers (except those of
 * kms_db_prepare_once, which the caller frees before returning the connection). Text bound with
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
 * Parameters are values (kms_db_params: KMS_DB_PARAMS(kms_db_text(a), kms_db_int64(b))), written
 * where the statement runs; no module writes binding code or bind callbacks of its own.
 *
 * Usual shapes: kms_db_query (read rows), kms_db_first / kms_db_int (one row), kms_db_run and
 * kms_db_exec_sql (one write), kms_db_write (several writes in one transaction); the
 * step-by-step calls for anything else.
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
/* Nanoseconds this pool's borrowers spent waiting for a connection, and BEGIN IMMEDIATE for
 * the write lock, summed since kms_db_new (0 for NULL). */
uint64_t kms_db_wait_ns(const kms_db *db);

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

/* A statement of SQL text built at run time (e.g. a variable number of terms): prepared for
 * this use only, owned by the caller, who frees it with kms_db_stmt_free before returning c. */
int kms_db_prepare_once(kms_db_conn *c, const char *sql, kms_db_stmt **out)
    __attribute__((warn_unused_result));
void kms_db_stmt_free(kms_db_stmt *st);

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

/* ---- Parameters as values ----
 * A statement's parameters written where it runs, as typed values bound in order to ?1, ?2, ...
 * so that no module writes binding code:
 *
 *     kms_db_exec_sql(c, sql_key_update, KMS_DB_PARAMS(kms_db_text(id), kms_db_int64(now)), what)
 *
 * Each value comes from a typed constructor, so a wrong type is a compile error (the untyped
 * "ssbi" letters this replaces were undefined behaviour the compiler could not see). Values are
 * borrowed like kms_db_bind_text's: they must outlive the statement's use. */
typedef enum kms_db_type { KMS_DB_NULL, KMS_DB_TEXT, KMS_DB_INT64, KMS_DB_BLOB } kms_db_type;
typedef struct kms_db_value {
    kms_db_type type;
    const char *text; /* KMS_DB_TEXT: NULL binds SQL NULL, as kms_db_bind_text */
    int64_t i;        /* KMS_DB_INT64 */
    const void *blob; /* KMS_DB_BLOB */
    size_t n;
} kms_db_value;

static inline kms_db_value kms_db_text(const char *s)
{
    return (kms_db_value){.type = KMS_DB_TEXT, .text = s};
}
static inline kms_db_value kms_db_int64(int64_t v)
{
    return (kms_db_value){.type = KMS_DB_INT64, .i = v};
}
static inline kms_db_value kms_db_blob(const void *p, size_t n)
{
    return (kms_db_value){.type = KMS_DB_BLOB, .blob = p, .n = n};
}
static inline kms_db_value kms_db_null(void)
{
    return (kms_db_value){.type = KMS_DB_NULL};
}

/* The parameter list of one statement: v[0] binds ?1. */
typedef struct kms_db_params {
    const kms_db_value *v;
    size_t n;
} kms_db_params;

/* KMS_DB_PARAMS(kms_db_text(a), kms_db_int64(b)): a list of one or more values (a compound
 * literal that lives until the end of the enclosing block); KMS_DB_NO_PARAMS: none. */
#define KMS_DB_PARAMS(...)                                                                         \
    ((kms_db_params){(const kms_db_value[]){__VA_ARGS__},                                          \
                     sizeof((const kms_db_value[]){__VA_ARGS__}) / sizeof(kms_db_value)})
#define KMS_DB_NO_PARAMS ((kms_db_params){NULL, 0})

/* Binds p to st: v[i] to parameter i + 1. */
int kms_db_bind_params(kms_db_stmt *st, kms_db_params p) __attribute__((warn_unused_result));
/* Prepares sql (static storage) on c and binds p: the statement is ready to step. */
int kms_db_open(kms_db_conn *c, const char *sql, kms_db_params p, kms_db_stmt **out)
    __attribute__((warn_unused_result));
/* kms_db_prepare_once of sql built at run time, then binds p: the caller frees *out with
 * kms_db_stmt_free (NULL on failure). */
int kms_db_open_once(kms_db_conn *c, const char *sql, kms_db_params p, kms_db_stmt **out)
    __attribute__((warn_unused_result));
/* kms_db_open, then runs the statement to its end (rows ignored) and resets it. */
int kms_db_exec_sql(kms_db_conn *c, const char *sql, kms_db_params p, const char *what)
    __attribute__((warn_unused_result));
/* kms_db_exec_sql of an INSERT: a primary key clash raises KMS_ERR_ALREADY_EXISTS with
 * `exists_msg` (kms_db_insert). */
int kms_db_insert_sql(kms_db_conn *c, const char *sql, kms_db_params p, const char *what,
                      const char *exists_msg) __attribute__((warn_unused_result));
/* kms_db_open, then steps once: 1 with *out on the row (read its columns, then kms_db_reset),
 * 0 no row (*out reset), -1 error raised. */
int kms_db_first(kms_db_conn *c, const char *sql, kms_db_params p, kms_db_stmt **out,
                 const char *what) __attribute__((warn_unused_result));
/* The integer in the first column of the first row: 1 with *out set, 0 no row (*out 0), -1. */
int kms_db_int(kms_db_conn *c, const char *sql, kms_db_params p, int64_t *out, const char *what)
    __attribute__((warn_unused_result));

/* ---- One statement, start to end ----
 * The parameters of each are a kms_db_params (KMS_DB_PARAMS(...) or KMS_DB_NO_PARAMS), bound in
 * order to ?1, ?2, ... as kms_db_open does. */

/* Reads the current row of st: 0 for the next row, 1 to stop here, -1 on error (raised). */
typedef int (*kms_db_row_fn)(kms_db_stmt *st, void *arg);

/* Prepares sql (static storage) on c, binds p and calls row(st, row_arg) for each row until it
 * returns 1. *rows (may be NULL) counts the rows read. */
int kms_db_conn_query(kms_db_conn *c, const char *sql, kms_db_params p, kms_db_row_fn row,
                      void *row_arg, const char *what, size_t *rows)
    __attribute__((warn_unused_result));
/* kms_db_conn_query on a connection borrowed for the call (no transaction: one statement reads
 * one snapshot). Rows must be copied out: the connection goes back before this returns, so that
 * the caller's callbacks may use the database again. */
int kms_db_query(kms_db *db, const char *sql, kms_db_params p, kms_db_row_fn row, void *row_arg,
                 const char *what, size_t *rows) __attribute__((warn_unused_result));
/* 1 if sql with p yields a row on c; 0 if not; -1 on error. */
int kms_db_conn_exists(kms_db_conn *c, const char *sql, kms_db_params p, const char *what)
    __attribute__((warn_unused_result));
/* Runs one statement that returns no rows on c; *changes (may be NULL) the rows it changed. */
int kms_db_conn_run(kms_db_conn *c, const char *sql, kms_db_params p, const char *what,
                    int64_t *changes) __attribute__((warn_unused_result));
/* kms_db_conn_run in a BEGIN IMMEDIATE transaction of its own (kms_db_write). */
int kms_db_run(kms_db *db, const char *sql, kms_db_params p, const char *what, int64_t *changes)
    __attribute__((warn_unused_result));

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
