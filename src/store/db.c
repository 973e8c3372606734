/* db.h on SQLite: the pool, the statement cache, binds, columns and transactions. */
#include "store/db.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

/* Statements are cached by the address of their SQL text in an open-addressing table: a few
 * hundred statements at most, looked up without a lock (a connection has one user). */
#define STMT_SLOTS 512

struct kms_db_stmt {
    const char *sql;
    sqlite3_stmt *st;
    kms_db_conn *c;
    struct kms_db_stmt *next_used; /* the statements of this borrowing, for kms_db_return */
    bool used;
};

struct kms_db_conn {
    kms_db *db;
    sqlite3 *handle;
    kms_db_stmt slots[STMT_SLOTS];
    size_t cached;
    kms_db_stmt *used; /* cached statements prepared since the connection was borrowed */
    struct kms_db_conn *next_free;
    struct kms_db_conn *next_all;
};

struct kms_db {
    kms_db_config cfg; /* cfg.path points at path */
    char *path;
    char *label;
    char *pragmas;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    kms_db_conn *free_list;
    kms_db_conn *all;    /* every open connection, for close */
    size_t opened;       /* connections open or being opened, at most cfg.pool_max */
    _Atomic int last_rc; /* of the last failure, for kms_db_file_unreadable */
    /* Nanoseconds borrowers waited for a free connection and BEGIN IMMEDIATE for the write
     * lock, summed (kms_db_wait_ns). */
    _Atomic uint64_t wait_ns;
};

static int64_t monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

uint64_t kms_db_wait_ns(const kms_db *db)
{
    return db != NULL ? atomic_load_explicit(&db->wait_ns, memory_order_relaxed) : 0;
}

/* ---- Errors ------------------------------------------------------------------------------- */

static bool is_file_error(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
        return true;
    default:
        return false;
    }
}

static int raise_rc(kms_db *db, sqlite3 *handle, int rc, const char *what)
{
    const char *msg = handle != NULL ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
    db->last_rc = rc;
    if ((rc & 0xff) == SQLITE_NOTADB) {
        return kms_raise(db->cfg.file_err, "%s: %s %s is not a SQLite database", what, db->label,
                         db->path);
    }
    if (is_file_error(rc)) {
        return kms_raise(db->cfg.file_err, "%s: %s %s is unusable: %s", what, db->label, db->path,
                         msg);
    }
    return kms_raise(db->cfg.err, "%s: %s %s: %s", what, db->label, db->path, msg);
}

bool kms_db_file_unreadable(const kms_db *db)
{
    int rc = db->last_rc & 0xff;
    return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

/* ---- The pool ----------------------------------------------------------------------------- */

kms_db *kms_db_new(const kms_db_config *cfg)
{
    if (sqlite3_threadsafe() == 0) {
        /* Connections are used from several threads, one at a time. */
        kms_raise(KMS_ERR_INTERNAL, "SQLite was built without thread support");
        return NULL;
    }
    kms_db *db = calloc(1, sizeof *db);
    if (db == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    db->cfg = *cfg;
    db->path = strdup(cfg->path);
    db->label = strdup(cfg->label);
    db->pragmas = cfg->pragmas ? strdup(cfg->pragmas) : NULL;
    if (db->path == NULL || db->label == NULL || (cfg->pragmas && db->pragmas == NULL)) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        kms_db_close(db);
        return NULL;
    }
    db->cfg.path = db->path;
    db->cfg.label = db->label;
    db->cfg.pragmas = db->pragmas;
    if (db->cfg.pool_max == 0) {
        db->cfg.pool_max = 1;
    }
    pthread_mutex_init(&db->lock, NULL);
    pthread_cond_init(&db->freed, NULL);
    return db;
}

static void conn_free(kms_db_conn *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < STMT_SLOTS; i++) {
        sqlite3_finalize(c->slots[i].st);
    }
    sqlite3_close_v2(c->handle);
    free(c);
}

void kms_db_close(kms_db *db)
{
    if (db == NULL) {
        return;
    }
    while (db->all != NULL) {
        kms_db_conn *c = db->all;
        db->all = c->next_all;
        conn_free(c);
    }
    if (db->path != NULL && db->label != NULL) {
        pthread_mutex_destroy(&db->lock);
        pthread_cond_destroy(&db->freed);
    }
    free(db->path);
    free(db->label);
    free(db->pragmas);
    free(db);
}

const char *kms_db_path(const kms_db *db)
{
    return db->path;
}

/* Opens a connection to the existing file (never creates it) with the per-connection settings.
 * Nothing here writes to the file unless cfg.pragmas does. */
static int conn_open(kms_db *db, kms_db_conn **out)
{
    int r = -1;
    kms_db_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    c->db = db;
    int rc =
        sqlite3_open_v2(db->path, &c->handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        raise_rc(db, c->handle, rc, "cannot open");
        goto out;
    }
    if (sqlite3_db_readonly(c->handle, "main") != 0) {
        kms_raise(db->cfg.file_err, "%s %s is not writable", db->label, db->path);
        goto out;
    }
    sqlite3_extended_result_codes(c->handle, 1);
    rc = sqlite3_busy_timeout(c->handle, db->cfg.busy_timeout_ms);
    if (rc == SQLITE_OK && db->pragmas != NULL) {
        rc = sqlite3_exec(c->handle, db->pragmas, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        raise_rc(db, c->handle, rc, "cannot configure connection");
        goto out;
    }
    *out = c;
    c = NULL;
    r = 0;
out:
    conn_free(c);
    return r;
}

int kms_db_borrow(kms_db *db, kms_db_conn **out)
{
    *out = NULL;
    pthread_mutex_lock(&db->lock);
    if (db->free_list == NULL && db->opened == db->cfg.pool_max) {
        int64_t t0 = monotonic_ns();
        while (db->free_list == NULL && db->opened == db->cfg.pool_max) {
            pthread_cond_wait(&db->freed, &db->lock);
        }
        atomic_fetch_add_explicit(&db->wait_ns, (uint64_t)(monotonic_ns() - t0),
                                  memory_order_relaxed);
    }
    kms_db_conn *c = db->free_list;
    if (c != NULL) {
        db->free_list = c->next_free;
        pthread_mutex_unlock(&db->lock);
        *out = c;
        return 0;
    }
    db->opened++;
    pthread_mutex_unlock(&db->lock);

    /* Opened outside the lock: other borrowers need not wait for the file system. */
    int r = conn_open(db, &c);
    pthread_mutex_lock(&db->lock);
    if (r == 0) {
        c->next_all = db->all;
        db->all = c;
        *out = c;
    } else {
        db->opened--;
        pthread_cond_signal(&db->freed);
    }
    pthread_mutex_unlock(&db->lock);
    return r;
}

void kms_db_return(kms_db_conn *c)
{
    if (c == NULL) {
        return;
    }
    /* A statement left mid-step would hold a read transaction open for the next borrower. Only
     * the statements this borrower prepared can be (kms_db_prepare_once's are freed by their
     * caller): walking them, not the whole cache, keeps a return cheap. */
    for (kms_db_stmt *st = c->used; st != NULL; st = st->next_used) {
        if (sqlite3_stmt_busy(st->st)) {
            sqlite3_reset(st->st);
        }
        st->used = false;
    }
    c->used = NULL;
    kms_db_rollback(c);
    kms_db *db = c->db;
    pthread_mutex_lock(&db->lock);
    c->next_free = db->free_list;
    db->free_list = c;
    pthread_cond_signal(&db->freed);
    pthread_mutex_unlock(&db->lock);
}

void kms_db_remove_files(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char *p = kms_strdup_printf("%s%s", path, suffixes[i]);
        if (p != NULL) {
            unlink(p);
            free(p);
        }
    }
}

int kms_db_exec_script(kms_db_conn *c, const char *sql, const char *what)
{
    int rc = sqlite3_exec(c->handle, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : raise_rc(c->db, c->handle, rc, what);
}

/* ---- Statements --------------------------------------------------------------------------- */

static void mark_used(kms_db_conn *c, kms_db_stmt *st)
{
    if (!st->used) {
        st->used = true;
        st->next_used = c->used;
        c->used = st;
    }
}

int kms_db_prepare(kms_db_conn *c, const char *sql, kms_db_stmt **out)
{
    *out = NULL;
    /* Fibonacci hashing of the address: literals are spread over the table well enough. */
    size_t h = (size_t)(((uintptr_t)sql * UINT64_C(11400714819323198485)) >> 55) % STMT_SLOTS;
    for (size_t i = 0; i < STMT_SLOTS; i++) {
        kms_db_stmt *slot = &c->slots[(h + i) % STMT_SLOTS];
        if (slot->sql == sql) {
            sqlite3_reset(slot->st);
            sqlite3_clear_bindings(slot->st);
            mark_used(c, slot);
            *out = slot;
            return 0;
        }
        if (slot->sql == NULL) {
            /* Keep the table at most three quarters full so that probes stay short. */
            KMS_ENSURE(c->cached < STMT_SLOTS * 3 / 4, KMS_ERR_INTERNAL,
                       "too many distinct SQL statements");
            int rc =
                sqlite3_prepare_v3(c->handle, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot->st, NULL);
            if (rc != SQLITE_OK) {
                slot->st = NULL;
                return raise_rc(c->db, c->handle, rc, "cannot prepare a statement");
            }
            slot->sql = sql;
            slot->c = c;
            c->cached++;
            mark_used(c, slot);
            *out = slot;
            return 0;
        }
    }
    return kms_raise(KMS_ERR_INTERNAL, "statement cache full");
}

int kms_db_prepare_once(kms_db_conn *c, const char *sql, kms_db_stmt **out)
{
    *out = NULL;
    kms_db_stmt *st = calloc(1, sizeof *st);
    KMS_ENSURE(st != NULL, KMS_ERR_INTERNAL, "out of memory");
    int rc = sqlite3_prepare_v2(c->handle, sql, -1, &st->st, NULL);
    if (rc != SQLITE_OK) {
        free(st);
        return raise_rc(c->db, c->handle, rc, "cannot prepare a statement");
    }
    st->c = c; /* st->sql stays NULL: not in the cache */
    *out = st;
    return 0;
}

void kms_db_stmt_free(kms_db_stmt *st)
{
    if (st == NULL) {
        return;
    }
    sqlite3_finalize(st->st);
    free(st);
}

static int bind_result(kms_db_stmt *st, int i, int rc)
{
    if (rc == SQLITE_OK) {
        return 0;
    }
    kms_db *db = st->c->db;
    db->last_rc = rc;
    return kms_raise(db->cfg.err, "cannot bind parameter %d: %s %s: %s", i, db->label, db->path,
                     sqlite3_errstr(rc));
}

int kms_db_bind_text(kms_db_stmt *st, int i, const char *s)
{
    int rc = s != NULL ? sqlite3_bind_text(st->st, i, s, -1, SQLITE_STATIC)
                       : sqlite3_bind_null(st->st, i);
    return bind_result(st, i, rc);
}

int kms_db_bind_int64(kms_db_stmt *st, int i, int64_t v)
{
    return bind_result(st, i, sqlite3_bind_int64(st->st, i, v));
}

int kms_db_bind_blob(kms_db_stmt *st, int i, const void *p, size_t n)
{
    if (n > INT32_MAX) {
        return kms_raise(st->c->db->cfg.err, "cannot bind parameter %d: a blob of %zu bytes", i, n);
    }
    return bind_result(st, i, sqlite3_bind_blob(st->st, i, n > 0 ? p : "", (int)n, SQLITE_STATIC));
}

int kms_db_bind_null(kms_db_stmt *st, int i)
{
    return bind_result(st, i, sqlite3_bind_null(st->st, i));
}

int kms_db_step(kms_db_stmt *st, const char *what)
{
    int rc = sqlite3_step(st->st);
    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    return raise_rc(st->c->db, st->c->handle, rc, what);
}

int kms_db_exec(kms_db_stmt *st, const char *what)
{
    int s;
    while ((s = kms_db_step(st, what)) == 1) {
    }
    sqlite3_reset(st->st);
    return s < 0 ? -1 : 0;
}

int kms_db_insert(kms_db_stmt *st, const char *what, const char *exists_msg)
{
    int rc = sqlite3_step(st->st);
    int r = 0;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        r = kms_raise(KMS_ERR_ALREADY_EXISTS, "%s", exists_msg);
    } else if (rc != SQLITE_DONE) {
        r = raise_rc(st->c->db, st->c->handle, rc, what);
    }
    sqlite3_reset(st->st);
    return r;
}

void kms_db_reset(kms_db_stmt *st)
{
    if (st != NULL) {
        sqlite3_reset(st->st);
    }
}

int64_t kms_db_changes(kms_db_conn *c)
{
    return sqlite3_changes64(c->handle);
}

int64_t kms_db_last_insert_id(kms_db_conn *c)
{
    return sqlite3_last_insert_rowid(c->handle);
}

/* ---- Columns ------------------------------------------------------------------------------ */

bool kms_db_column_is_null(kms_db_stmt *st, int col)
{
    return sqlite3_column_type(st->st, col) == SQLITE_NULL;
}

int64_t kms_db_column_int64(kms_db_stmt *st, int col)
{
    return sqlite3_column_int64(st->st, col);
}

const char *kms_db_column_text(kms_db_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st->st, col);
    return t != NULL ? (const char *)t : "";
}

int kms_db_column_copy(kms_db_stmt *st, int col, char *dst, size_t size, const char *subject)
{
    const unsigned char *s = sqlite3_column_text(st->st, col);
    size_t n = (size_t)sqlite3_column_bytes(st->st, col);
    if (s == NULL || n >= size) {
        kms_db *db = st->c->db;
        if (size > 0) {
            dst[0] = '\0';
        }
        return kms_raise(db->cfg.file_err, "%s %s holds an invalid %s for %s", db->label, db->path,
                         sqlite3_column_name(st->st, col), subject);
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

int kms_db_column_dup(kms_db_stmt *st, int col, char **out)
{
    *out = strdup(kms_db_column_text(st, col));
    KMS_ENSURE(*out != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

void kms_db_column_blob(kms_db_stmt *st, int col, const void **p, size_t *n)
{
    *p = sqlite3_column_blob(st->st, col);
    *n = *p != NULL ? (size_t)sqlite3_column_bytes(st->st, col) : 0;
    if (*n == 0) {
        *p = NULL;
    }
}

int kms_db_column_blob_dup(kms_db_stmt *st, int col, uint8_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const void *p = NULL;
    size_t len = 0;
    kms_db_column_blob(st, col, &p, &len);
    if (len == 0) {
        return 0;
    }
    *out = malloc(len);
    KMS_ENSURE(*out != NULL, KMS_ERR_INTERNAL, "out of memory");
    memcpy(*out, p, len);
    *n = len;
    return 0;
}

/* ---- Transactions ------------------------------------------------------------------------- */

static const char sql_begin_immediate[] = "BEGIN IMMEDIATE";
static const char sql_begin_read[] = "BEGIN";
static const char sql_commit[] = "COMMIT";

static int run_sql(kms_db_conn *c, const char *sql, const char *what)
{
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_prepare(c, sql, &st));
    return kms_db_exec(st, what);
}

int kms_db_begin(kms_db_conn *c, const char *what)
{
    /* The busy handler (cfg.busy_timeout_ms) makes BEGIN IMMEDIATE wait for another writer;
     * SQLITE_BUSY here means it waited that long. */
    int64_t t0 = monotonic_ns();
    int r = run_sql(c, sql_begin_immediate, what);
    atomic_fetch_add_explicit(&c->db->wait_ns, (uint64_t)(monotonic_ns() - t0),
                              memory_order_relaxed);
    return r;
}

int kms_db_begin_read(kms_db_conn *c, const char *what)
{
    return run_sql(c, sql_begin_read, what);
}

int kms_db_commit(kms_db_conn *c, const char *what)
{
    return run_sql(c, sql_commit, what);
}

void kms_db_rollback(kms_db_conn *c)
{
    if (sqlite3_get_autocommit(c->handle) == 0) {
        sqlite3_exec(c->handle, "ROLLBACK", NULL, NULL, NULL);
    }
}

int kms_db_transaction(kms_db_conn *c, kms_db_tx_fn fn, void *arg, const char *what)
{
    int r = -1;
    if (kms_db_begin(c, what) != 0) {
        goto out;
    }
    if (fn(c, arg) != 0) {
        goto out;
    }
    if (kms_db_commit(c, what) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        kms_db_rollback(c);
    }
    return r;
}

int kms_db_write(kms_db *db, kms_db_tx_fn fn, void *arg, const char *what)
{
    kms_db_conn *c = NULL;
    KMS_GUARD(kms_db_borrow(db, &c));
    int r = kms_db_transaction(c, fn, arg, what);
    kms_db_return(c);
    return r;
}

/* ---- One statement, start to end -------------------------------------------------------- */

int kms_db_conn_query(kms_db_conn *c, const char *sql, kms_db_params p, kms_db_row_fn row,
                      void *row_arg, const char *what, size_t *rows)
{
    kms_db_stmt *st = NULL;
    size_t n = 0;
    int r = -1;
    if ((r = kms_db_open(c, sql, p, &st)) != 0) {
        goto out;
    }
    int s;
    while ((s = kms_db_step(st, what)) == 1) {
        n++;
        int more = row(st, row_arg);
        if (more != 0) {
            r = more < 0 ? -1 : 0;
            goto out;
        }
    }
    r = s < 0 ? -1 : 0;
out:
    kms_db_reset(st);
    if (rows != NULL) {
        *rows = n;
    }
    return r;
}

int kms_db_query(kms_db *db, const char *sql, kms_db_params p, kms_db_row_fn row, void *row_arg,
                 const char *what, size_t *rows)
{
    kms_db_conn *c = NULL;
    if (rows != NULL) {
        *rows = 0;
    }
    KMS_GUARD(kms_db_borrow(db, &c));
    int r = kms_db_conn_query(c, sql, p, row, row_arg, what, rows);
    kms_db_return(c);
    return r;
}

int kms_db_conn_exists(kms_db_conn *c, const char *sql, kms_db_params p, const char *what)
{
    kms_db_stmt *st = NULL;
    int found = kms_db_first(c, sql, p, &st, what);
    kms_db_reset(st);
    return found;
}

int kms_db_conn_run(kms_db_conn *c, const char *sql, kms_db_params p, const char *what,
                    int64_t *changes)
{
    KMS_GUARD(kms_db_exec_sql(c, sql, p, what));
    if (changes != NULL) {
        *changes = kms_db_changes(c);
    }
    return 0;
}

typedef struct run_args {
    const char *sql;
    kms_db_params p;
    const char *what;
    int64_t changes;
} run_args;

static int run_locked(kms_db_conn *c, void *arg)
{
    run_args *a = arg;
    return kms_db_conn_run(c, a->sql, a->p, a->what, &a->changes);
}

int kms_db_run(kms_db *db, const char *sql, kms_db_params p, const char *what, int64_t *changes)
{
    run_args a = {sql, p, what, 0};
    KMS_GUARD(kms_db_write(db, run_locked, &a, what));
    if (changes != NULL) {
        *changes = a.changes;
    }
    return 0;
}

/* ---- Parameters as values (db.h) ------------------------------------------------------------ */

int kms_db_bind_params(kms_db_stmt *st, kms_db_params p)
{
    for (size_t k = 0; k < p.n; k++) {
        const kms_db_value *v = &p.v[k];
        int i = (int)k + 1;
        switch (v->type) {
        case KMS_DB_TEXT:
            KMS_GUARD(kms_db_bind_text(st, i, v->text));
            break;
        case KMS_DB_INT64:
            KMS_GUARD(kms_db_bind_int64(st, i, v->i));
            break;
        case KMS_DB_BLOB:
            KMS_GUARD(kms_db_bind_blob(st, i, v->blob, v->n));
            break;
        case KMS_DB_NULL:
            KMS_GUARD(kms_db_bind_null(st, i));
            break;
        default:
            return kms_raise(KMS_ERR_INTERNAL, "parameter %d has no type", i);
        }
    }
    return 0;
}

int kms_db_open(kms_db_conn *c, const char *sql, kms_db_params p, kms_db_stmt **out)
{
    kms_db_stmt *st = NULL;
    *out = NULL;
    KMS_GUARD(kms_db_prepare(c, sql, &st));
    if (kms_db_bind_params(st, p) != 0) {
        kms_db_reset(st);
        return -1;
    }
    *out = st;
    return 0;
}

int kms_db_open_once(kms_db_conn *c, const char *sql, kms_db_params p, kms_db_stmt **out)
{
    kms_db_stmt *st = NULL;
    *out = NULL;
    KMS_GUARD(kms_db_prepare_once(c, sql, &st));
    if (kms_db_bind_params(st, p) != 0) {
        kms_db_stmt_free(st);
        return -1;
    }
    *out = st;
    return 0;
}

int kms_db_exec_sql(kms_db_conn *c, const char *sql, kms_db_params p, const char *what)
{
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_open(c, sql, p, &st));
    return kms_db_exec(st, what);
}

int kms_db_insert_sql(kms_db_conn *c, const char *sql, kms_db_params p, const char *what,
                      const char *exists_msg)
{
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_open(c, sql, p, &st));
    return kms_db_insert(st, what, exists_msg);
}

int kms_db_first(kms_db_conn *c, const char *sql, kms_db_params p, kms_db_stmt **out,
                 const char *what)
{
    kms_db_stmt *st = NULL;
    *out = NULL;
    KMS_GUARD(kms_db_open(c, sql, p, &st));
    int s = kms_db_step(st, what);
    if (s != 1) {
        kms_db_reset(st);
        return s;
    }
    *out = st;
    return 1;
}

int kms_db_int(kms_db_conn *c, const char *sql, kms_db_params p, int64_t *out, const char *what)
{
    kms_db_stmt *st = NULL;
    *out = 0;
    int s = kms_db_first(c, sql, p, &st, what);
    if (s == 1) {
        *out = kms_db_column_int64(st, 0);
        kms_db_reset(st);
    }
    return s;
}
