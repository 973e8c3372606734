/* Unit tests of src/store: the SQLite metadata store. */
#include "testutil.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms/kms.h"
#include "store/db.h"
#include "store/store.h"
#include "util/util.h"

#define APP_ID_SQL "1263358769" /* "KMS1", as store.c writes it */

typedef struct fixture {
    char *dir;
    char *path;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = kms_test_tmpdir();
    size_t n = strlen(f->dir) + 16;
    f->path = malloc(n);
    assert_non_null(f->path);
    snprintf(f->path, n, "%s/kms.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kms_test_rmrf(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long len = ftell(fp);
    assert_true(len >= 0);
    rewind(fp);
    uint8_t *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    *n = (size_t)len;
    return p;
}

static void assert_file_equals(const char *path, const uint8_t *p, size_t n)
{
    size_t m = 0;
    uint8_t *q = read_file(path, &m);
    assert_int_equal(m, n);
    assert_memory_equal(q, p, n);
    free(q);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Runs SQL on a separate connection (not the store's). */
static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        fail_msg("%s: %s", sql, err);
    }
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* The single text value of a query on a separate connection (malloc'd). */
static char *sql_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *s = strdup(t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return s;
}

static void assert_message_contains(const char *needle)
{
    const char *msg = kms_last_error_message();
    if (msg == NULL || strstr(msg, needle) == NULL) {
        fail_msg("error message \"%s\" lacks \"%s\"", msg ? msg : "(null)", needle);
    }
}

/* Opens or fails the test with the store's message. */
static kms_store *open_ok(const char *path, bool create)
{
    kms_store *s = kms_store_open(path, create);
    if (s == NULL) {
        fail_msg("kms_store_open(%s): %s", path, kms_last_error_message());
    }
    return s;
}

static void make_key(kms_key_record *rec, const char *key_id)
{
    memset(rec, 0, sizeof *rec);
    assert_true(strlen(key_id) < sizeof rec->key_id);
    memcpy(rec->key_id, key_id, strlen(key_id) + 1);
    snprintf(rec->account_id, sizeof rec->account_id, "111122223333");
    snprintf(rec->key_spec, sizeof rec->key_spec, "SYMMETRIC_DEFAULT");
    snprintf(rec->key_usage, sizeof rec->key_usage, "ENCRYPT_DECRYPT");
    snprintf(rec->key_state, sizeof rec->key_state, "Enabled");
    snprintf(rec->origin, sizeof rec->origin, "AWS_KMS");
    rec->description = (char *)"a key";
    rec->creation_date = 1700000000;
    rec->current_version = 1;
}

static void insert_key(kms_store *s, const char *key_id)
{
    kms_key_record rec;
    make_key(&rec, key_id);
    assert_int_equal(kms_store_key_insert(s, &rec), 0);
}

static void key_id_of(int i, char out[37])
{
    snprintf(out, 37, "%08x-0000-4000-8000-%012x", (unsigned)i * 2654435761u, (unsigned)i);
}

/* ---- the typed SQLite layer (db.h) -------------------------------------------------------- */

static const char sql_t_create[] =
    "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, s TEXT, n INTEGER, b BLOB) STRICT;";
static const char sql_t_insert[] = "INSERT INTO t (id, s, n, b) VALUES (?1, ?2, ?3, ?4)";
static const char sql_t_get[] = "SELECT s, n, b, s IS NULL, b IS NULL FROM t WHERE id = ?1";
static const char sql_t_count[] = "SELECT count(*) FROM t";

static kms_db *db_open_ok(const char *path, size_t pool_max, int busy_ms)
{
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    fclose(fp);
    kms_db_config cfg = {
        .path = path,
        .label = "test database",
        .err = KMS_ERR_INTERNAL,
        .file_err = KMS_ERR_HOME,
        .pragmas = "PRAGMA journal_mode=WAL;",
        .busy_timeout_ms = busy_ms,
        .pool_max = pool_max,
    };
    kms_db *db = kms_db_new(&cfg);
    assert_non_null(db);
    kms_db_conn *c = NULL;
    assert_int_equal(kms_db_borrow(db, &c), 0);
    assert_int_equal(kms_db_exec_script(c, sql_t_create, "create"), 0);
    kms_db_return(c);
    return db;
}

static int64_t t_count(kms_db *db)
{
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    assert_int_equal(kms_db_borrow(db, &c), 0);
    assert_int_equal(kms_db_prepare(c, sql_t_count, &st), 0);
    assert_int_equal(kms_db_step(st, "count"), 1);
    int64_t n = kms_db_column_int64(st, 0);
    kms_db_return(c);
    return n;
}

static void test_db_typed_binds(void **state)
{
    fixture *f = *state;
    kms_db *db = db_open_ok(f->path, 2, 1000);
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    assert_int_equal(kms_db_borrow(db, &c), 0);
    static const uint8_t blob[] = {0, 1, 2, 0xff};
    assert_int_equal(kms_db_prepare(c, sql_t_insert, &st), 0);
    assert_int_equal(kms_db_bind_int64(st, 1, 1), 0);
    assert_int_equal(kms_db_bind_text(st, 2, "h\xc3\xa9llo"), 0);
    assert_int_equal(kms_db_bind_int64(st, 3, INT64_MIN), 0);
    assert_int_equal(kms_db_bind_blob(st, 4, blob, sizeof blob), 0);
    assert_int_equal(kms_db_exec(st, "insert"), 0);
    assert_int_equal(kms_db_changes(c), 1);
    assert_int_equal(kms_db_last_insert_id(c), 1);
    /* NULL text binds SQL NULL; an empty blob is a blob, not NULL. */
    kms_db_stmt *st2 = NULL;
    assert_int_equal(kms_db_prepare(c, sql_t_insert, &st2), 0);
    assert_ptr_equal(st2, st); /* cached by the address of the SQL text */
    assert_int_equal(kms_db_bind_int64(st, 1, 2), 0);
    assert_int_equal(kms_db_bind_text(st, 2, NULL), 0);
    assert_int_equal(kms_db_bind_null(st, 3), 0);
    assert_int_equal(kms_db_bind_blob(st, 4, NULL, 0), 0);
    assert_int_equal(kms_db_exec(st, "insert"), 0);
    /* A primary key clash through kms_db_insert. */
    assert_int_equal(kms_db_prepare(c, sql_t_insert, &st), 0);
    assert_int_equal(kms_db_bind_int64(st, 1, 2), 0);
    assert_int_equal(kms_db_insert(st, "insert", "row 2 exists"), -1);
    assert_kms_error(-1, KMS_ERR_ALREADY_EXISTS);
    assert_string_equal(kms_last_error_message(), "row 2 exists");

    assert_int_equal(kms_db_prepare(c, sql_t_get, &st), 0);
    assert_int_equal(kms_db_bind_int64(st, 1, 1), 0);
    assert_int_equal(kms_db_step(st, "get"), 1);
    assert_string_equal(kms_db_column_text(st, 0), "h\xc3\xa9llo");
    char small[4], fits[16];
    assert_int_equal(kms_db_column_copy(st, 0, small, sizeof small, "row 1"), -1);
    assert_kms_error(-1, KMS_ERR_HOME);
    assert_message_contains("holds an invalid s for row 1");
    assert_int_equal(kms_db_column_copy(st, 0, fits, sizeof fits, "row 1"), 0);
    assert_string_equal(fits, "h\xc3\xa9llo");
    char *dup = NULL;
    assert_int_equal(kms_db_column_dup(st, 0, &dup), 0);
    assert_string_equal(dup, "h\xc3\xa9llo");
    free(dup);
    assert_true(kms_db_column_int64(st, 1) == INT64_MIN);
    uint8_t *b = NULL;
    size_t n = 0;
    assert_int_equal(kms_db_column_blob_dup(st, 2, &b, &n), 0);
    assert_int_equal(n, sizeof blob);
    assert_memory_equal(b, blob, sizeof blob);
    free(b);
    assert_false(kms_db_column_is_null(st, 0));
    assert_int_equal(kms_db_step(st, "get"), 0);

    assert_int_equal(kms_db_prepare(c, sql_t_get, &st), 0);
    assert_int_equal(kms_db_bind_int64(st, 1, 2), 0);
    assert_int_equal(kms_db_step(st, "get"), 1);
    assert_true(kms_db_column_is_null(st, 0));
    assert_string_equal(kms_db_column_text(st, 0), "");
    assert_int_equal(kms_db_column_copy(st, 0, fits, sizeof fits, "row 2"), -1);
    assert_int_equal(kms_db_column_int64(st, 1), 0);
    assert_int_equal(kms_db_column_int64(st, 3), 1); /* s IS NULL */
    assert_int_equal(kms_db_column_int64(st, 4), 0); /* b IS NULL: an empty blob is not */
    assert_int_equal(kms_db_column_blob_dup(st, 2, &b, &n), 0);
    assert_null(b);
    assert_int_equal(n, 0);
    kms_db_return(c);
    kms_db_close(db);
}

static void test_db_bind_wrong_index(void **state)
{
    fixture *f = *state;
    kms_db *db = db_open_ok(f->path, 1, 1000);
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    assert_int_equal(kms_db_borrow(db, &c), 0);
    assert_int_equal(kms_db_prepare(c, sql_t_insert, &st), 0);
    assert_int_equal(kms_db_bind_text(st, 5, "x"), -1);
    assert_kms_error(-1, KMS_ERR_INTERNAL);
    char expect[512];
    snprintf(expect, sizeof expect,
             "cannot bind parameter 5: test database %s: column index out of range", f->path);
    assert_string_equal(kms_last_error_message(), expect);
    assert_int_equal(kms_db_bind_int64(st, 0, 1), -1);
    snprintf(expect, sizeof expect,
             "cannot bind parameter 0: test database %s: column index out of range", f->path);
    assert_string_equal(kms_last_error_message(), expect);
    kms_db_return(c);
    kms_db_close(db);
}

/* Parameters as values: each type binds as its constructor says, in order from ?1. */
static void test_db_params(void **state)
{
    fixture *f = *state;
    kms_db *db = db_open_ok(f->path, 1, 1000);
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    static const uint8_t blob[] = {9, 0, 8};
    assert_int_equal(kms_db_borrow(db, &c), 0);
    assert_int_equal(kms_db_exec_sql(c, sql_t_insert,
                                     KMS_DB_PARAMS(kms_db_int64(7), kms_db_text("seven"),
                                                   kms_db_int64(-5), kms_db_blob(blob, 3)),
                                     "insert"),
                     0);
    assert_int_equal(kms_db_exec_sql(c, sql_t_insert,
                                     KMS_DB_PARAMS(kms_db_int64(8), kms_db_text(NULL),
                                                   kms_db_null(), kms_db_null()),
                                     "insert"),
                     0);
    /* A clash through kms_db_insert_sql names what exists. */
    assert_int_equal(kms_db_insert_sql(c, sql_t_insert, KMS_DB_PARAMS(kms_db_int64(7)), "insert",
                                       "row 7 exists"),
                     -1);
    assert_kms_error(-1, KMS_ERR_ALREADY_EXISTS);
    assert_string_equal(kms_last_error_message(), "row 7 exists");

    assert_int_equal(kms_db_first(c, sql_t_get, KMS_DB_PARAMS(kms_db_int64(7)), &st, "get"), 1);
    assert_string_equal(kms_db_column_text(st, 0), "seven");
    assert_true(kms_db_column_int64(st, 1) == -5);
    const void *b = NULL;
    size_t n = 0;
    kms_db_column_blob(st, 2, &b, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(b, blob, 3);
    kms_db_reset(st);
    assert_int_equal(kms_db_first(c, sql_t_get, KMS_DB_PARAMS(kms_db_int64(8)), &st, "get"), 1);
    assert_int_equal(kms_db_column_int64(st, 3), 1); /* s IS NULL */
    assert_int_equal(kms_db_column_int64(st, 4), 1); /* b IS NULL */
    kms_db_reset(st);
    assert_int_equal(kms_db_first(c, sql_t_get, KMS_DB_PARAMS(kms_db_int64(9)), &st, "get"), 0);
    assert_null(st);

    int64_t count = -1;
    assert_int_equal(kms_db_int(c, sql_t_count, KMS_DB_NO_PARAMS, &count, "count"), 1);
    assert_int_equal(count, 2);
    /* One value more than the statement has parameters: the exact error, nothing written. */
    assert_int_equal(
        kms_db_exec_sql(c, sql_t_insert,
                        KMS_DB_PARAMS(kms_db_int64(10), kms_db_text("a"), kms_db_int64(1),
                                      kms_db_null(), kms_db_text("extra")),
                        "insert"),
        -1);
    assert_kms_error(-1, KMS_ERR_INTERNAL);
    char expect[512];
    snprintf(expect, sizeof expect,
             "cannot bind parameter 5: test database %s: column index out of range", f->path);
    assert_string_equal(kms_last_error_message(), expect);
    assert_int_equal(kms_db_int(c, sql_t_count, KMS_DB_NO_PARAMS, &count, "count"), 1);
    assert_int_equal(count, 2);
    kms_db_return(c);
    kms_db_close(db);
}

/* A statement left mid-step keeps its connection's read snapshot open; returning the connection
 * resets it, so that the next borrower sees what others committed since. */
static void test_db_return_resets_statements(void **state)
{
    fixture *f = *state;
    static const char sql_all[] = "SELECT id FROM t ORDER BY id";
    kms_db *db = db_open_ok(f->path, 1, 1000);
    kms_db *other = db_open_ok(f->path, 1, 1000);
    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    for (int64_t id = 1; id <= 2; id++) {
        assert_int_equal(kms_db_borrow(db, &c), 0);
        assert_int_equal(kms_db_exec_sql(c, sql_t_insert, KMS_DB_PARAMS(kms_db_int64(id)), "ins"),
                         0);
        kms_db_return(c);
    }
    assert_int_equal(kms_db_borrow(db, &c), 0);
    assert_int_equal(kms_db_first(c, sql_all, KMS_DB_NO_PARAMS, &st, "all"), 1);
    kms_db_return(c); /* st left on its first row */
    assert_int_equal(kms_db_borrow(other, &c), 0);
    assert_int_equal(kms_db_exec_sql(c, sql_t_insert, KMS_DB_PARAMS(kms_db_int64(3)), "ins"), 0);
    kms_db_return(c);
    assert_int_equal(t_count(db), 3);
    kms_db_close(other);
    kms_db_close(db);
}

static int insert_then_fail(kms_db_conn *c, void *arg)
{
    kms_db_stmt *st = NULL;
    int64_t *id = arg;
    KMS_GUARD(kms_db_prepare(c, sql_t_insert, &st));
    KMS_GUARD(kms_db_bind_int64(st, 1, *id));
    KMS_GUARD(kms_db_exec(st, "insert"));
    return kms_raise(KMS_ERR_VALIDATION, "changed my mind");
}

static int insert_one(kms_db_conn *c, void *arg)
{
    kms_db_stmt *st = NULL;
    int64_t *id = arg;
    KMS_GUARD(kms_db_prepare(c, sql_t_insert, &st));
    KMS_GUARD(kms_db_bind_int64(st, 1, *id));
    return kms_db_exec(st, "insert");
}

static void test_db_transaction_rollback(void **state)
{
    fixture *f = *state;
    kms_db *db = db_open_ok(f->path, 2, 1000);
    int64_t id = 7;
    assert_int_equal(kms_db_write(db, insert_then_fail, &id, "tx"), -1);
    assert_kms_error(-1, KMS_ERR_VALIDATION);
    assert_string_equal(kms_last_error_message(), "changed my mind");
    assert_int_equal(t_count(db), 0);
    assert_int_equal(kms_db_write(db, insert_one, &id, "tx"), 0);
    assert_int_equal(t_count(db), 1);
    kms_db_close(db);
}

typedef struct writer2 {
    kms_db *db;
    int rc;
} writer2;

static void *second_writer(void *arg)
{
    writer2 *w = arg;
    int64_t id = 2;
    w->rc = kms_db_write(w->db, insert_one, &id, "second writer");
    return NULL;
}

/* A second writer (another pool, as another process would be) waits through the busy timeout
 * for the first one's BEGIN IMMEDIATE to end, then writes. */
static void test_db_busy_writer_waits(void **state)
{
    fixture *f = *state;
    kms_db *db = db_open_ok(f->path, 1, 10000);
    kms_db_conn *c = NULL;
    assert_int_equal(kms_db_borrow(db, &c), 0);
    assert_int_equal(kms_db_begin(c, "first writer"), 0);
    int64_t id = 1;
    assert_int_equal(insert_one(c, &id), 0);

    kms_db_config cfg = {
        .path = f->path,
        .label = "test database",
        .err = KMS_ERR_INTERNAL,
        .file_err = KMS_ERR_HOME,
        .busy_timeout_ms = 10000,
        .pool_max = 1,
    };
    writer2 w = {kms_db_new(&cfg), -2};
    assert_non_null(w.db);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, second_writer, &w), 0);
    usleep(300 * 1000);
    assert_int_equal(w.rc, -2); /* still waiting for the lock */
    assert_int_equal(kms_db_commit(c, "first writer"), 0);
    kms_db_return(c);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.rc, 0);
    assert_int_equal(t_count(db), 2);
    kms_db_close(w.db);

    /* With no time to wait, the second writer fails, naming its operation. */
    assert_int_equal(kms_db_borrow(db, &c), 0);
    assert_int_equal(kms_db_begin(c, "first writer"), 0);
    cfg.busy_timeout_ms = 0;
    w.db = kms_db_new(&cfg);
    assert_non_null(w.db);
    second_writer(&w);
    assert_int_equal(w.rc, -1);
    assert_kms_error(-1, KMS_ERR_INTERNAL);
    assert_message_contains("second writer: test database");
    assert_message_contains("database is locked");
    kms_db_return(c);
    kms_db_close(w.db);
    assert_int_equal(t_count(db), 2);
    kms_db_close(db);
}

static int sum_row(kms_db_stmt *st, void *arg)
{
    int64_t *sum = arg;
    *sum += kms_db_column_int64(st, 0);
    return *sum >= 3 ? 1 : 0; /* stop once the sum reaches 3 */
}

static const char sql_t_ids[] = "SELECT id FROM t ORDER BY id";
static const char sql_t_delete[] = "DELETE FROM t WHERE id = ?1";
static const char sql_t_exists[] = "SELECT 1 FROM t WHERE id = ?1";

/* kms_db_query stops when the row function says so; kms_db_run counts changes and takes its
 * parameters as values (a surplus one fails, naming it, and changes nothing);
 * kms_db_conn_exists; a statement of SQL built at run time is the caller's. */
static void test_db_query_and_run(void **state)
{
    fixture *f = *state;
    kms_db *db = db_open_ok(f->path, 1, 1000);
    for (int64_t id = 1; id <= 4; id++) {
        assert_int_equal(kms_db_write(db, insert_one, &id, "insert"), 0);
    }
    int64_t sum = 0;
    size_t rows = 0;
    assert_int_equal(kms_db_query(db, sql_t_ids, KMS_DB_NO_PARAMS, sum_row, &sum, "sum", &rows), 0);
    assert_int_equal(sum, 3); /* 1 + 2, then stopped */
    assert_int_equal(rows, 2);
    int64_t id = 4, changes = -1;
    assert_int_equal(
        kms_db_run(db, sql_t_delete, KMS_DB_PARAMS(kms_db_int64(id)), "delete", &changes), 0);
    assert_int_equal(changes, 1);
    assert_int_equal(
        kms_db_run(db, sql_t_delete, KMS_DB_PARAMS(kms_db_int64(id)), "delete", &changes), 0);
    assert_int_equal(changes, 0);
    id = 3;
    assert_int_equal(kms_db_run(db, sql_t_delete, KMS_DB_PARAMS(kms_db_int64(id), kms_db_int64(9)),
                                "delete", &changes),
                     -1);
    assert_kms_error(-1, KMS_ERR_INTERNAL);
    char expect[512];
    snprintf(expect, sizeof expect,
             "cannot bind parameter 2: test database %s: column index out of range", f->path);
    assert_string_equal(kms_last_error_message(), expect);
    assert_int_equal(t_count(db), 3);

    kms_db_conn *c = NULL;
    kms_db_stmt *st = NULL;
    assert_int_equal(kms_db_borrow(db, &c), 0);
    assert_int_equal(kms_db_conn_exists(c, sql_t_exists, KMS_DB_PARAMS(kms_db_int64(3)), "e"), 1);
    assert_int_equal(kms_db_conn_exists(c, sql_t_exists, KMS_DB_PARAMS(kms_db_int64(4)), "e"), 0);
    char *sql = kms_strdup_printf("SELECT count(*) FROM t WHERE id IN (%d, %d)", 1, 3);
    assert_int_equal(kms_db_prepare_once(c, sql, &st), 0);
    free(sql);
    assert_int_equal(kms_db_step(st, "count"), 1);
    assert_int_equal(kms_db_column_int64(st, 0), 2);
    kms_db_stmt_free(st);
    sql = kms_strdup_printf("SELECT count(*) FROM t WHERE id IN (?1, %d)", 2);
    assert_int_equal(kms_db_open_once(c, sql, KMS_DB_PARAMS(kms_db_int64(1)), &st), 0);
    assert_int_equal(kms_db_step(st, "count"), 1);
    assert_int_equal(kms_db_column_int64(st, 0), 2);
    kms_db_stmt_free(st);
    assert_int_equal(
        kms_db_open_once(c, sql, KMS_DB_PARAMS(kms_db_int64(1), kms_db_text("x")), &st), -1);
    assert_null(st);
    assert_string_equal(kms_last_error_message(), expect); /* parameter 2 again */
    free(sql);
    assert_int_equal(kms_db_prepare_once(c, "SELECT nope FROM t", &st), -1);
    assert_null(st);
    assert_kms_error(-1, KMS_ERR_INTERNAL);
    assert_message_contains("cannot prepare a statement: test database");
    assert_message_contains("no such column: nope");
    kms_db_return(c);
    kms_db_close(db);
}

/* A file that is not a database fails with file_err, and says so for a derived database. */
static void test_db_unreadable(void **state)
{
    fixture *f = *state;
    write_file(f->path, "this is not a database, not at all, no, not even close............", 64);
    kms_db_config cfg = {
        .path = f->path,
        .label = "test database",
        .err = KMS_ERR_INTERNAL,
        .file_err = KMS_ERR_HOME,
        .pragmas = "PRAGMA journal_mode=WAL;",
        .busy_timeout_ms = 100,
        .pool_max = 1,
    };
    kms_db *db = kms_db_new(&cfg);
    assert_non_null(db);
    assert_false(kms_db_file_unreadable(db));
    kms_db_conn *c = NULL;
    assert_int_equal(kms_db_borrow(db, &c), -1);
    assert_null(c);
    assert_kms_error(-1, KMS_ERR_HOME);
    assert_message_contains("is not a SQLite database");
    assert_true(kms_db_file_unreadable(db));
    kms_db_close(db);
}

static void test_db_remove_files(void **state)
{
    fixture *f = *state;
    kms_db *db = db_open_ok(f->path, 1, 1000);
    kms_db_close(db);
    write_file(f->path, "x", 1);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    write_file(wal, "x", 1);
    kms_db_remove_files(f->path);
    assert_false(exists(f->path));
    assert_false(exists(wal));
}

/* ---- open and create ---------------------------------------------------------------------- */

static void test_create_then_open(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    insert_key(s, "1234abcd-12ab-34cd-56ef-1234567890ab");
    kms_store_close(s);

    s = open_ok(f->path, false);
    kms_key_record rec;
    assert_int_equal(kms_store_key_get(s, "1234abcd-12ab-34cd-56ef-1234567890ab", &rec), 0);
    assert_string_equal(rec.description, "a key");
    kms_key_record_clean_up(&rec);
    kms_store_close(s);

    char *v = sql_text(f->path, "SELECT value FROM meta WHERE name = 'schema_version'");
    assert_int_equal(atoi(v), KMS_STORE_SCHEMA_VERSION);
    free(v);
}

static void test_create_existing(void **state)
{
    fixture *f = *state;
    /* Any existing file, database or not, is refused and left as it was. */
    static const char junk[] = "not mine, do not touch";
    write_file(f->path, junk, sizeof junk);
    assert_null(kms_store_open(f->path, true));
    assert_kms_error(-1, KMS_ERR_ALREADY_EXISTS);
    assert_message_contains(f->path);
    assert_file_equals(f->path, (const uint8_t *)junk, sizeof junk);

    assert_int_equal(unlink(f->path), 0);
    kms_store *s = open_ok(f->path, true);
    insert_key(s, "k1");
    kms_store_close(s);
    size_t n = 0;
    uint8_t *before = read_file(f->path, &n);
    assert_null(kms_store_open(f->path, true));
    assert_kms_error(-1, KMS_ERR_ALREADY_EXISTS);
    assert_file_equals(f->path, before, n);
    free(before);
    s = open_ok(f->path, false);
    kms_key_record rec;
    assert_int_equal(kms_store_key_get(s, "k1", &rec), 0);
    kms_key_record_clean_up(&rec);
    kms_store_close(s);
}

static void test_open_missing(void **state)
{
    fixture *f = *state;
    assert_null(kms_store_open(f->path, false));
    assert_kms_error(-1, KMS_ERR_HOME);
    assert_message_contains(f->path);
    assert_message_contains("kmsctl init");
    assert_false(exists(f->path));
}

static void test_open_garbage(void **state)
{
    fixture *f = *state;
    uint8_t junk[8192];
    for (size_t i = 0; i < sizeof junk; i++) {
        junk[i] = (uint8_t)(i * 131 + 7);
    }
    write_file(f->path, junk, sizeof junk);
    assert_null(kms_store_open(f->path, false));
    assert_kms_error(-1, KMS_ERR_HOME);
    assert_message_contains(f->path);
    assert_message_contains("not a SQLite database");
    assert_file_equals(f->path, junk, sizeof junk);

    /* An empty file is a valid empty SQLite database, but not ours. */
    write_file(f->path, "", 0);
    assert_null(kms_store_open(f->path, false));
    assert_kms_error(-1, KMS_ERR_HOME);
    assert_message_contains("not a KMS metadata database");
    assert_file_equals(f->path, junk, 0);
}

static void test_open_foreign_sqlite(void **state)
{
    fixture *f = *state;
    sql_exec(f->path, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    size_t n = 0;
    uint8_t *before = read_file(f->path, &n);
    assert_null(kms_store_open(f->path, false));
    assert_kms_error(-1, KMS_ERR_HOME);
    assert_message_contains(f->path);
    assert_message_contains("not a KMS metadata database");
    assert_file_equals(f->path, before, n);
    free(before);
}

static void test_open_no_meta(void **state)
{
    fixture *f = *state;
    /* Our application id but no meta table: damaged, and left alone. */
    sql_exec(f->path, "PRAGMA application_id = " APP_ID_SQL "; CREATE TABLE t (x);");
    size_t n = 0;
    uint8_t *before = read_file(f->path, &n);
    assert_null(kms_store_open(f->path, false));
    assert_kms_error(-1, KMS_ERR_HOME);
    assert_message_contains("no schema version");
    assert_file_equals(f->path, before, n);
    free(before);
}

static void test_open_newer_schema(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    kms_store_close(s);
    char sql[128], expect[32];
    snprintf(sql, sizeof sql, "UPDATE meta SET value = %d WHERE name = 'schema_version'",
             KMS_STORE_SCHEMA_VERSION + 1);
    snprintf(expect, sizeof expect, "schema version %d", KMS_STORE_SCHEMA_VERSION + 1);
    sql_exec(f->path, sql);
    size_t n = 0;
    uint8_t *before = read_file(f->path, &n);
    assert_null(kms_store_open(f->path, false));
    assert_kms_error(-1, KMS_ERR_HOME);
    assert_message_contains(f->path);
    assert_message_contains(expect);
    assert_file_equals(f->path, before, n);
    free(before);
}

/* Version 0 is what creation starts from (application id and meta table, nothing else); opening
 * one must run the migration to version 1 as an upgrade would, and switch the file to WAL. */
static void test_migrate_from_v0(void **state)
{
    fixture *f = *state;
    sql_exec(f->path, "PRAGMA application_id = " APP_ID_SQL ";"
                      "CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value ANY NOT NULL) "
                      "STRICT;"
                      "INSERT INTO meta (name, value) VALUES ('schema_version', 0);");
    kms_store *s = open_ok(f->path, false);
    insert_key(s, "k1");
    assert_int_equal(kms_store_alias_create(s, "alias/one", "k1", 5), 0);
    kms_store_close(s);
    char *v = sql_text(f->path, "SELECT value FROM meta WHERE name = 'schema_version'");
    assert_int_equal(atoi(v), KMS_STORE_SCHEMA_VERSION);
    free(v);
    v = sql_text(f->path, "SELECT count(*) FROM key_versions WHERE key_id = 'k1' AND version = 1");
    assert_string_equal(v, "1");
    free(v);
    v = sql_text(f->path, "PRAGMA journal_mode");
    assert_string_equal(v, "wal");
    free(v);
}

static void test_pragmas(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    insert_key(s, "k1");
    kms_store_close(s);

    char *mode = sql_text(f->path, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    free(mode);
    char *fks = sql_text(f->path, "SELECT group_concat(\"table\") FROM "
                                  "(SELECT * FROM pragma_foreign_key_list('aliases') UNION ALL "
                                  "SELECT * FROM pragma_foreign_key_list('key_versions'))");
    assert_string_equal(fks, "keys,keys");
    free(fks);

    /* foreign_keys, synchronous and secure_delete belong to a connection, so another one cannot
     * see them: a trigger probes them from inside the store's own connection. */
    sql_exec(f->path, "CREATE TRIGGER probe BEFORE INSERT ON aliases WHEN "
                      "(SELECT foreign_keys FROM pragma_foreign_keys) IS NOT 1 OR "
                      "(SELECT synchronous FROM pragma_synchronous) IS NOT 2 OR "
                      "(SELECT secure_delete FROM pragma_secure_delete) IS NOT 1 "
                      "BEGIN SELECT RAISE(ABORT, 'connection settings missing'); END;");
    /* The probe fires on a connection with the defaults. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO aliases VALUES ('alias/x', 'k1', 1, 1)", NULL, NULL, NULL),
        SQLITE_CONSTRAINT);
    sqlite3_close(db);

    s = open_ok(f->path, false);
    int rc = kms_store_alias_create(s, "alias/probe", "k1", 1);
    if (rc != 0) {
        fail_msg("%s", kms_last_error_message());
    }
    kms_store_close(s);
}

/* Version 1 as it shipped (migration 0 -> 1), with a key and an alias: opening it must add the
 * key policy columns, grants and the IAM tables without touching the rows. */
static void test_migrate_from_v1(void **state)
{
    fixture *f = *state;
    sql_exec(f->path,
             "PRAGMA application_id = " APP_ID_SQL ";"
             "CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value ANY NOT NULL) STRICT;"
             "INSERT INTO meta (name, value) VALUES ('schema_version', 1);"
             "CREATE TABLE keys (key_id TEXT PRIMARY KEY NOT NULL CHECK (length(key_id) BETWEEN 1 "
             "AND 36), account_id TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', key_spec "
             "TEXT NOT NULL, key_usage TEXT NOT NULL, key_state TEXT NOT NULL CHECK (key_state IN "
             "('Creating', 'Enabled', 'Disabled', 'PendingDeletion', 'PendingImport', "
             "'PendingReplicaDeletion', 'Unavailable', 'Updating')), origin TEXT NOT NULL, "
             "creation_date INTEGER NOT NULL, deletion_date INTEGER NOT NULL DEFAULT 0, "
             "pending_window_days INTEGER NOT NULL DEFAULT 0 CHECK (pending_window_days >= 0), "
             "current_version INTEGER NOT NULL CHECK (current_version >= 1), public_key BLOB) "
             "STRICT;"
             "CREATE TABLE key_versions (key_id TEXT NOT NULL REFERENCES keys (key_id) ON DELETE "
             "CASCADE, version INTEGER NOT NULL CHECK (version >= 1), creation_date INTEGER NOT "
             "NULL, rotation_type TEXT, PRIMARY KEY (key_id, version)) STRICT;"
             "CREATE TABLE aliases (alias_name TEXT PRIMARY KEY NOT NULL CHECK (length(alias_name) "
             "BETWEEN 1 AND 256), key_id TEXT NOT NULL REFERENCES keys (key_id), creation_date "
             "INTEGER NOT NULL, last_updated_date INTEGER NOT NULL) STRICT;"
             "CREATE INDEX aliases_by_key ON aliases (key_id, alias_name);"
             "INSERT INTO keys VALUES ('k1', '111122223333', 'old', 'SYMMETRIC_DEFAULT', "
             "'ENCRYPT_DECRYPT', 'Enabled', 'AWS_KMS', 5, 0, 0, 1, NULL);"
             "INSERT INTO key_versions VALUES ('k1', 1, 5, NULL);"
             "INSERT INTO aliases VALUES ('alias/old', 'k1', 5, 5);");
    kms_store *s = open_ok(f->path, false);
    kms_key_record rec;
    assert_int_equal(kms_store_key_get(s, "k1", &rec), 0);
    assert_string_equal(rec.description, "old");
    assert_int_equal(rec.policy_version, 1);
    assert_null(rec.policy);
    kms_key_record_clean_up(&rec);
    char *doc = NULL;
    int64_t version = 0;
    assert_int_equal(kms_store_key_policy_get(s, "k1", &doc, &version), 0);
    assert_string_equal(doc, "");
    assert_int_equal(version, 1);
    free(doc);
    kms_alias_record alias;
    assert_int_equal(kms_store_alias_get(s, "alias/old", &alias), 0);
    /* Version 3: rotation state, with nothing rotating. */
    kms_key_rotation rot;
    assert_int_equal(kms_store_rotation_get(s, "k1", &rot), 0);
    assert_int_equal(rot.period_days, 0);
    assert_int_equal(rot.current_version, 1);
    assert_int_equal(rot.claim, 0);
    assert_int_equal(rot.encryptions, 0);
    kms_store_close(s);
    char *v = sql_text(f->path, "SELECT value FROM meta WHERE name = 'schema_version'");
    assert_int_equal(atoi(v), KMS_STORE_SCHEMA_VERSION);
    free(v);
    v = sql_text(f->path, "SELECT count(*) FROM deleted_keys");
    assert_string_equal(v, "0");
    free(v);
    v = sql_text(f->path, "SELECT value FROM meta WHERE name = 'iam_generation'");
    assert_string_equal(v, "0");
    free(v);
    v = sql_text(f->path, "SELECT count(*) FROM grants");
    assert_string_equal(v, "0");
    free(v);
    /* Version 8: the tags of keys, none yet. */
    v = sql_text(f->path, "SELECT count(*) FROM key_tags");
    assert_string_equal(v, "0");
    free(v);
    v = sql_text(f->path, "SELECT arn FROM iam_policies WHERE name = 'AdministratorAccess'");
    assert_string_equal(v, "arn:aws:iam::aws:policy/AdministratorAccess");
    free(v);
}

static void test_key_policy(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    kms_key_record in;
    make_key(&in, "kp");
    in.policy = (char *)"{\"Version\":\"2012-10-17\"}";
    assert_int_equal(kms_store_key_insert(s, &in), 0);
    insert_key(s, "kq"); /* NULL policy stores "" */

    kms_key_record rec;
    assert_int_equal(kms_store_key_get(s, "kp", &rec), 0);
    assert_null(rec.policy); /* not loaded on the hot path */
    assert_int_equal(rec.policy_version, 1);
    kms_key_record_clean_up(&rec);

    char *doc = NULL;
    int64_t version = 0;
    assert_int_equal(kms_store_key_policy_get(s, "kp", &doc, &version), 0);
    assert_string_equal(doc, "{\"Version\":\"2012-10-17\"}");
    assert_int_equal(version, 1);
    free(doc);
    assert_int_equal(kms_store_key_policy_get(s, "kq", &doc, &version), 0);
    assert_string_equal(doc, "");
    free(doc);

    assert_int_equal(kms_store_key_policy_put(s, "kp", "{}"), 0);
    assert_int_equal(kms_store_key_policy_get(s, "kp", &doc, &version), 0);
    assert_string_equal(doc, "{}");
    assert_int_equal(version, 2);
    free(doc);
    assert_int_equal(kms_store_key_get(s, "kp", &rec), 0);
    assert_int_equal(rec.policy_version, 2);
    kms_key_record_clean_up(&rec);

    assert_kms_error(kms_store_key_policy_get(s, "nope", &doc, &version), KMS_ERR_NOT_FOUND);
    assert_null(doc);
    assert_kms_error(kms_store_key_policy_put(s, "nope", "{}"), KMS_ERR_NOT_FOUND);
    kms_store_close(s);
}

typedef struct grant_seen {
    char ids[16][80];
    size_t n;
} grant_seen;

static int grant_collect(void *arg, const kms_grant_record *g)
{
    grant_seen *seen = arg;
    assert_true(seen->n < 16);
    snprintf(seen->ids[seen->n++], sizeof seen->ids[0], "%s", g->grant_id);
    return 0;
}

static void make_grant(kms_grant_record *g, const char *id, const char *key, const char *grantee)
{
    memset(g, 0, sizeof *g);
    snprintf(g->grant_id, sizeof g->grant_id, "%s", id);
    snprintf(g->key_id, sizeof g->key_id, "%s", key);
    snprintf(g->issuing_account, sizeof g->issuing_account, "111122223333");
    g->grantee_principal = (char *)grantee;
    g->retiring_principal = (char *)"arn:aws:iam::111122223333:role/retirer";
    g->operations = (char *)"Decrypt,Encrypt";
    g->creation_date = 42;
}

static void test_grants(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    insert_key(s, "gk");
    insert_key(s, "gk2");
    const char *alice = "arn:aws:iam::111122223333:user/alice";
    const char *bob = "arn:aws:iam::111122223333:user/bob";
    kms_grant_record g;
    make_grant(&g, "g1", "gk", alice);
    g.name = (char *)"first";
    g.constraints = (char *)"{\"EncryptionContextSubset\":{\"a\":\"b\"}}";
    memset(g.token_hash, 0xab, sizeof g.token_hash);
    g.has_token_hash = true;
    assert_int_equal(kms_store_grant_insert(s, &g), 0);
    assert_kms_error(kms_store_grant_insert(s, &g), KMS_ERR_ALREADY_EXISTS);
    make_grant(&g, "g2", "gk", bob);
    assert_int_equal(kms_store_grant_insert(s, &g), 0);
    make_grant(&g, "g3", "gk", alice);
    g.retiring_principal = NULL;
    assert_int_equal(kms_store_grant_insert(s, &g), 0);
    make_grant(&g, "g4", "gk2", alice);
    assert_int_equal(kms_store_grant_insert(s, &g), 0);
    make_grant(&g, "g5", "nokey", alice);
    assert_kms_error(kms_store_grant_insert(s, &g), KMS_ERR_NOT_FOUND);
    make_grant(&g, "g6", "gk", alice);
    g.operations = (char *)"";
    assert_kms_error(kms_store_grant_insert(s, &g), KMS_ERR_VALIDATION);

    kms_grant_record out;
    assert_int_equal(kms_store_grant_get(s, "g1", &out), 0);
    assert_string_equal(out.key_id, "gk");
    assert_string_equal(out.name, "first");
    assert_string_equal(out.grantee_principal, alice);
    assert_string_equal(out.operations, "Decrypt,Encrypt");
    assert_string_equal(out.constraints, "{\"EncryptionContextSubset\":{\"a\":\"b\"}}");
    assert_int_equal(out.creation_date, 42);
    assert_true(out.has_token_hash);
    assert_int_equal(out.token_hash[31], 0xab);
    kms_grant_record_clean_up(&out);
    assert_int_equal(kms_store_grant_get(s, "g3", &out), 0);
    assert_string_equal(out.retiring_principal, "");
    assert_string_equal(out.name, "");
    assert_false(out.has_token_hash);
    kms_grant_record_clean_up(&out);
    assert_kms_error(kms_store_grant_get(s, "nope", &out), KMS_ERR_NOT_FOUND);

    grant_seen seen = {0};
    bool truncated = false;
    assert_int_equal(kms_store_grant_list(s, "gk", NULL, 2, grant_collect, &seen, &truncated), 0);
    assert_int_equal(seen.n, 2);
    assert_true(truncated);
    assert_string_equal(seen.ids[0], "g1");
    assert_int_equal(
        kms_store_grant_list(s, "gk", seen.ids[1], 2, grant_collect, &seen, &truncated), 0);
    assert_int_equal(seen.n, 3);
    assert_false(truncated);
    assert_string_equal(seen.ids[2], "g3");

    memset(&seen, 0, sizeof seen);
    assert_int_equal(kms_store_grant_find(s, "gk", alice, grant_collect, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ids[0], "g1");
    assert_string_equal(seen.ids[1], "g3");

    memset(&seen, 0, sizeof seen);
    assert_int_equal(kms_store_grant_list_retirable(s, "arn:aws:iam::111122223333:role/retirer",
                                                    NULL, 10, grant_collect, &seen, &truncated),
                     0);
    assert_int_equal(seen.n, 3); /* g1, g2, g4 */

    assert_int_equal(kms_store_grant_delete(s, "g1"), 0);
    assert_kms_error(kms_store_grant_delete(s, "g1"), KMS_ERR_NOT_FOUND);
    kms_store_close(s);

    /* Grants go with their key. */
    sql_exec(f->path, "PRAGMA foreign_keys = ON; DELETE FROM keys WHERE key_id = 'gk2';");
    s = open_ok(f->path, false);
    assert_kms_error(kms_store_grant_get(s, "g4", &out), KMS_ERR_NOT_FOUND);
    kms_store_close(s);
}

/* ---- keys --------------------------------------------------------------------------------- */

static void test_key_round_trip(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);

    uint8_t pub[91];
    for (size_t i = 0; i < sizeof pub; i++) {
        pub[i] = (uint8_t)(i ^ 0x5a);
    }
    pub[10] = 0; /* a blob, not a string */
    kms_key_record in;
    make_key(&in, "0b1e8e7a-6a3e-4f7b-9a6e-2d1c5d7e8f90");
    snprintf(in.account_id, sizeof in.account_id, "123456789012");
    in.description = (char *)"signing key \xc3\xa9t\xc3\xa9";
    snprintf(in.key_spec, sizeof in.key_spec, "ECC_NIST_P256");
    snprintf(in.key_usage, sizeof in.key_usage, "SIGN_VERIFY");
    snprintf(in.key_state, sizeof in.key_state, "PendingDeletion");
    in.creation_date = 1700000123;
    in.deletion_date = 1702592123;
    in.pending_window_days = 30;
    in.public_key = pub;
    in.public_key_len = sizeof pub;
    assert_int_equal(kms_store_key_insert(s, &in), 0);

    kms_key_record out;
    memset(&out, 0xa5, sizeof out);
    assert_int_equal(kms_store_key_get(s, in.key_id, &out), 0);
    assert_string_equal(out.key_id, in.key_id);
    assert_string_equal(out.account_id, "123456789012");
    assert_string_equal(out.description, in.description);
    assert_string_equal(out.key_spec, "ECC_NIST_P256");
    assert_string_equal(out.key_usage, "SIGN_VERIFY");
    assert_string_equal(out.key_state, "PendingDeletion");
    assert_string_equal(out.origin, "AWS_KMS");
    assert_int_equal(out.creation_date, 1700000123);
    assert_int_equal(out.deletion_date, 1702592123);
    assert_int_equal(out.pending_window_days, 30);
    assert_int_equal(out.current_version, 1);
    assert_int_equal(out.public_key_len, sizeof pub);
    assert_memory_equal(out.public_key, pub, sizeof pub);
    kms_key_record_clean_up(&out);
    kms_key_record_clean_up(&out); /* twice is harmless */
    assert_null(out.description);
    assert_null(out.public_key);

    /* Empty (and absent) description, no public key. */
    kms_key_record sym;
    make_key(&sym, "k-empty");
    sym.description = (char *)"";
    assert_int_equal(kms_store_key_insert(s, &sym), 0);
    make_key(&sym, "k-null");
    sym.description = NULL;
    assert_int_equal(kms_store_key_insert(s, &sym), 0);
    assert_int_equal(kms_store_key_get(s, "k-empty", &out), 0);
    assert_non_null(out.description);
    assert_string_equal(out.description, "");
    assert_null(out.public_key);
    assert_int_equal(out.public_key_len, 0);
    kms_key_record_clean_up(&out);
    assert_int_equal(kms_store_key_get(s, "k-null", &out), 0);
    assert_non_null(out.description);
    assert_string_equal(out.description, "");
    kms_key_record_clean_up(&out);
    kms_store_close(s);

    char *v = sql_text(f->path, "SELECT group_concat(key_id || ':' || version || ':' || "
                                "creation_date || ':' || ifnull(rotation_type, 'null')) "
                                "FROM key_versions WHERE key_id = "
                                "'0b1e8e7a-6a3e-4f7b-9a6e-2d1c5d7e8f90'");
    assert_string_equal(v, "0b1e8e7a-6a3e-4f7b-9a6e-2d1c5d7e8f90:1:1700000123:null");
    free(v);
}

static void test_key_clean_up_zeroed(void **state)
{
    (void)state;
    kms_key_record rec;
    memset(&rec, 0, sizeof rec);
    kms_key_record_clean_up(&rec);
    kms_key_record_clean_up(&rec);
    kms_key_record_clean_up(NULL);
}

static void test_key_get_unknown(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    insert_key(s, "k1");
    kms_key_record out;
    assert_kms_error(kms_store_key_get(s, "k2", &out), KMS_ERR_NOT_FOUND);
    assert_message_contains("k2");
    assert_null(out.description);
    assert_kms_error(kms_store_key_get(s, "", &out), KMS_ERR_NOT_FOUND);
    kms_store_close(s);
}

static void test_key_duplicate(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    insert_key(s, "k1");
    kms_key_record rec;
    make_key(&rec, "k1");
    rec.description = (char *)"second";
    assert_kms_error(kms_store_key_insert(s, &rec), KMS_ERR_ALREADY_EXISTS);
    assert_message_contains("k1");
    kms_key_record out;
    assert_int_equal(kms_store_key_get(s, "k1", &out), 0);
    assert_string_equal(out.description, "a key");
    kms_key_record_clean_up(&out);
    /* The failed insert rolled back: the store still writes. */
    insert_key(s, "k2");
    kms_store_close(s);
}

static void test_key_insert_invalid(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    kms_key_record rec;
    make_key(&rec, "k1");
    snprintf(rec.key_state, sizeof rec.key_state, "Bogus");
    assert_kms_error(kms_store_key_insert(s, &rec), KMS_ERR_VALIDATION);
    make_key(&rec, "k1");
    rec.current_version = 0;
    assert_kms_error(kms_store_key_insert(s, &rec), KMS_ERR_VALIDATION);
    make_key(&rec, "k1");
    memset(rec.key_id, 'a', sizeof rec.key_id); /* not terminated */
    assert_kms_error(kms_store_key_insert(s, &rec), KMS_ERR_VALIDATION);
    kms_key_record out;
    assert_kms_error(kms_store_key_get(s, "k1", &out), KMS_ERR_NOT_FOUND);
    kms_store_close(s);
}

static void test_key_set_description_and_state(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    insert_key(s, "k1");
    insert_key(s, "k2");

    assert_int_equal(kms_store_key_set_description(s, "k1", "new words"), 0);
    assert_int_equal(kms_store_key_set_state(s, "k1", "PendingDeletion", 1800000000, 7), 0);
    kms_key_record out;
    assert_int_equal(kms_store_key_get(s, "k1", &out), 0);
    assert_string_equal(out.description, "new words");
    assert_string_equal(out.key_state, "PendingDeletion");
    assert_int_equal(out.deletion_date, 1800000000);
    assert_int_equal(out.pending_window_days, 7);
    kms_key_record_clean_up(&out);

    assert_int_equal(kms_store_key_set_description(s, "k1", ""), 0);
    assert_int_equal(kms_store_key_set_state(s, "k1", "Disabled", 0, 0), 0);
    assert_int_equal(kms_store_key_get(s, "k1", &out), 0);
    assert_string_equal(out.description, "");
    assert_string_equal(out.key_state, "Disabled");
    assert_int_equal(out.deletion_date, 0);
    assert_int_equal(out.pending_window_days, 0);
    kms_key_record_clean_up(&out);

    /* The other key is untouched. */
    assert_int_equal(kms_store_key_get(s, "k2", &out), 0);
    assert_string_equal(out.description, "a key");
    assert_string_equal(out.key_state, "Enabled");
    kms_key_record_clean_up(&out);

    assert_kms_error(kms_store_key_set_description(s, "nope", "x"), KMS_ERR_NOT_FOUND);
    assert_message_contains("nope");
    assert_kms_error(kms_store_key_set_state(s, "nope", "Enabled", 0, 0), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_store_key_set_state(s, "k1", "Sleeping", 0, 0), KMS_ERR_VALIDATION);
    kms_store_close(s);
}

typedef struct key_walk {
    char ids[64][37];
    size_t count;
    size_t stop_at; /* 0: never */
} key_walk;

static int collect_key(void *arg, const char *key_id)
{
    key_walk *w = arg;
    if (w->stop_at != 0 && w->count + 1 == w->stop_at) {
        return kms_raise(KMS_ERR_LIMIT_EXCEEDED, "stopped by the callback");
    }
    assert_true(w->count < 64);
    snprintf(w->ids[w->count++], 37, "%s", key_id);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_key_list_pagination(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    char expected[25][37];
    for (int i = 0; i < 25; i++) {
        key_id_of(i, expected[i]); /* inserted out of order */
        insert_key(s, expected[i]);
    }
    qsort(expected, 25, sizeof expected[0], cmp_str);

    key_walk w = {0};
    bool truncated = false;
    const char *marker = NULL;
    size_t sizes[3];
    bool truncs[3];
    for (int page = 0; page < 3; page++) {
        size_t before = w.count;
        assert_int_equal(kms_store_key_list(s, marker, 10, collect_key, &w, &truncated), 0);
        sizes[page] = w.count - before;
        truncs[page] = truncated;
        marker = w.ids[w.count - 1];
    }
    assert_int_equal(sizes[0], 10);
    assert_int_equal(sizes[1], 10);
    assert_int_equal(sizes[2], 5);
    assert_true(truncs[0]);
    assert_true(truncs[1]);
    assert_false(truncs[2]);
    assert_int_equal(w.count, 25);
    for (int i = 0; i < 25; i++) {
        assert_string_equal(w.ids[i], expected[i]);
    }

    /* Exactly `limit` left: not truncated. */
    key_walk w2 = {0};
    truncated = true;
    assert_int_equal(kms_store_key_list(s, expected[14], 10, collect_key, &w2, &truncated), 0);
    assert_int_equal(w2.count, 10);
    assert_false(truncated);
    /* After the last: nothing. */
    key_walk w3 = {0};
    assert_int_equal(kms_store_key_list(s, expected[24], 10, collect_key, &w3, &truncated), 0);
    assert_int_equal(w3.count, 0);
    assert_false(truncated);
    /* A large limit. */
    key_walk w4 = {0};
    assert_int_equal(kms_store_key_list(s, NULL, SIZE_MAX, collect_key, &w4, &truncated), 0);
    assert_int_equal(w4.count, 25);
    assert_false(truncated);

    assert_kms_error(kms_store_key_list(s, NULL, 0, collect_key, &w, &truncated),
                     KMS_ERR_VALIDATION);
    /* A callback error stops the walk and is kept. */
    key_walk w5 = {.stop_at = 3};
    assert_kms_error(kms_store_key_list(s, NULL, 10, collect_key, &w5, &truncated),
                     KMS_ERR_LIMIT_EXCEEDED);
    assert_int_equal(w5.count, 2);
    kms_store_close(s);
}

/* The callback may call the store again (rows are read before the callbacks run). */
typedef struct reentrant_walk {
    kms_store *store;
    size_t count;
} reentrant_walk;

static int get_each(void *arg, const char *key_id)
{
    reentrant_walk *w = arg;
    kms_key_record rec;
    KMS_GUARD(kms_store_key_get(w->store, key_id, &rec));
    kms_key_record_clean_up(&rec);
    KMS_GUARD(kms_store_key_set_description(w->store, key_id, "seen"));
    w->count++;
    return 0;
}

static void test_key_list_reentrant(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    for (int i = 0; i < 12; i++) {
        char id[37];
        key_id_of(i, id);
        insert_key(s, id);
    }
    reentrant_walk w = {s, 0};
    bool truncated = true;
    assert_int_equal(kms_store_key_list(s, NULL, 100, get_each, &w, &truncated), 0);
    assert_int_equal(w.count, 12);
    assert_false(truncated);
    kms_store_close(s);
}

/* ---- aliases ------------------------------------------------------------------------------ */

typedef struct alias_walk {
    kms_alias_record items[16];
    size_t count;
} alias_walk;

static int collect_alias(void *arg, const kms_alias_record *a)
{
    alias_walk *w = arg;
    assert_true(w->count < 16);
    w->items[w->count++] = *a;
    return 0;
}

static void test_alias_lifecycle(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    insert_key(s, "k1");
    insert_key(s, "k2");

    assert_int_equal(kms_store_alias_create(s, "alias/b", "k1", 100), 0);
    assert_int_equal(kms_store_alias_create(s, "alias/a", "k2", 101), 0);
    assert_int_equal(kms_store_alias_create(s, "alias/c", "k1", 102), 0);

    kms_alias_record a;
    assert_int_equal(kms_store_alias_get(s, "alias/b", &a), 0);
    assert_string_equal(a.alias_name, "alias/b");
    assert_string_equal(a.key_id, "k1");
    assert_int_equal(a.creation_date, 100);
    assert_int_equal(a.last_updated_date, 100);

    /* Duplicates, missing key, missing alias. */
    assert_kms_error(kms_store_alias_create(s, "alias/b", "k2", 103), KMS_ERR_ALREADY_EXISTS);
    assert_message_contains("alias/b");
    assert_kms_error(kms_store_alias_create(s, "alias/d", "k9", 103), KMS_ERR_NOT_FOUND);
    assert_message_contains("k9");
    assert_kms_error(kms_store_alias_get(s, "alias/d", &a), KMS_ERR_NOT_FOUND);
    assert_message_contains("alias/d");
    assert_kms_error(kms_store_alias_update(s, "alias/d", "k1", 104), KMS_ERR_NOT_FOUND);
    assert_message_contains("alias/d");
    assert_kms_error(kms_store_alias_update(s, "alias/b", "k9", 104), KMS_ERR_NOT_FOUND);
    assert_message_contains("k9");
    assert_kms_error(kms_store_alias_delete(s, "alias/d"), KMS_ERR_NOT_FOUND);
    assert_message_contains("alias/d");

    /* Update keeps the creation date. */
    assert_int_equal(kms_store_alias_update(s, "alias/b", "k2", 200), 0);
    assert_int_equal(kms_store_alias_get(s, "alias/b", &a), 0);
    assert_string_equal(a.key_id, "k2");
    assert_int_equal(a.creation_date, 100);
    assert_int_equal(a.last_updated_date, 200);

    /* Lists: all, by key, paginated. */
    alias_walk w = {0};
    bool truncated = true;
    assert_int_equal(kms_store_alias_list(s, NULL, NULL, 10, collect_alias, &w, &truncated), 0);
    assert_int_equal(w.count, 3);
    assert_false(truncated);
    assert_string_equal(w.items[0].alias_name, "alias/a");
    assert_string_equal(w.items[1].alias_name, "alias/b");
    assert_string_equal(w.items[2].alias_name, "alias/c");
    assert_string_equal(w.items[2].key_id, "k1");
    assert_int_equal(w.items[2].creation_date, 102);

    alias_walk k2 = {0};
    assert_int_equal(kms_store_alias_list(s, "k2", NULL, 10, collect_alias, &k2, &truncated), 0);
    assert_int_equal(k2.count, 2);
    assert_string_equal(k2.items[0].alias_name, "alias/a");
    assert_string_equal(k2.items[1].alias_name, "alias/b");

    alias_walk p = {0};
    assert_int_equal(kms_store_alias_list(s, "k2", NULL, 1, collect_alias, &p, &truncated), 0);
    assert_int_equal(p.count, 1);
    assert_true(truncated);
    assert_int_equal(kms_store_alias_list(s, "k2", "alias/a", 1, collect_alias, &p, &truncated), 0);
    assert_int_equal(p.count, 2);
    assert_string_equal(p.items[1].alias_name, "alias/b");
    assert_false(truncated);

    alias_walk none = {0};
    assert_int_equal(kms_store_alias_list(s, "k9", NULL, 5, collect_alias, &none, &truncated), 0);
    assert_int_equal(none.count, 0);
    assert_false(truncated);
    assert_kms_error(kms_store_alias_list(s, NULL, NULL, 0, collect_alias, &none, &truncated),
                     KMS_ERR_VALIDATION);

    /* Delete. */
    assert_int_equal(kms_store_alias_delete(s, "alias/b"), 0);
    assert_kms_error(kms_store_alias_get(s, "alias/b", &a), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_store_alias_delete(s, "alias/b"), KMS_ERR_NOT_FOUND);
    alias_walk after = {0};
    assert_int_equal(kms_store_alias_list(s, NULL, NULL, 10, collect_alias, &after, &truncated), 0);
    assert_int_equal(after.count, 2);
    /* The name is free again. */
    assert_int_equal(kms_store_alias_create(s, "alias/b", "k1", 300), 0);
    kms_store_close(s);
}

/* ---- concurrency -------------------------------------------------------------------------- */

#define READS_PER_THREAD 20000

typedef struct race {
    kms_store *store;
    volatile int readers_done;
    pthread_mutex_t lock;
    int failures;
    int reads;
    int writes;
} race;

static void *reader(void *arg)
{
    race *r = arg;
    int failures = 0;
    for (int i = 0; i < READS_PER_THREAD; i++) {
        kms_key_record rec;
        char id[37];
        key_id_of(i % 8, id);
        if (kms_store_key_get(r->store, id, &rec) != 0 ||
            strncmp(rec.description, "description ", 12) != 0 || strcmp(rec.key_id, id) != 0) {
            failures++;
        }
        kms_key_record_clean_up(&rec);
    }
    pthread_mutex_lock(&r->lock);
    r->failures += failures;
    r->reads += READS_PER_THREAD;
    r->readers_done++;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void *writer(void *arg)
{
    race *r = arg;
    int failures = 0;
    int writes = 0;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        int done = r->readers_done;
        pthread_mutex_unlock(&r->lock);
        if (done == 2 || writes == 100000) {
            break;
        }
        char id[37];
        char desc[64];
        key_id_of(writes % 8, id);
        snprintf(desc, sizeof desc, "description %d", writes);
        if (kms_store_key_set_description(r->store, id, desc) != 0) {
            failures++;
        }
        writes++;
    }
    pthread_mutex_lock(&r->lock);
    r->failures += failures;
    r->writes = writes;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void test_concurrent_get_and_update(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    for (int i = 0; i < 8; i++) {
        char id[37];
        key_id_of(i, id);
        kms_key_record rec;
        make_key(&rec, id);
        rec.description = (char *)"description initial";
        assert_int_equal(kms_store_key_insert(s, &rec), 0);
    }
    race r = {.store = s};
    pthread_mutex_init(&r.lock, NULL);
    pthread_t t[3];
    assert_int_equal(pthread_create(&t[0], NULL, reader, &r), 0);
    assert_int_equal(pthread_create(&t[1], NULL, reader, &r), 0);
    assert_int_equal(pthread_create(&t[2], NULL, writer, &r), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    pthread_mutex_destroy(&r.lock);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.reads, 2 * READS_PER_THREAD);
    assert_true(r.writes > 0);
    kms_store_close(s);
}

/* More threads than pooled connections: borrowers wait for a free one. */
static void *small_reader(void *arg)
{
    race *r = arg;
    int failures = 0;
    for (int i = 0; i < 500; i++) {
        kms_key_record rec;
        char id[37];
        key_id_of(i % 8, id);
        if (kms_store_key_get(r->store, id, &rec) != 0) {
            failures++;
        }
        kms_key_record_clean_up(&rec);
    }
    pthread_mutex_lock(&r->lock);
    r->failures += failures;
    r->reads += 500;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void test_pool_exhaustion(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    for (int i = 0; i < 8; i++) {
        char id[37];
        key_id_of(i, id);
        insert_key(s, id);
    }
    race r = {.store = s};
    pthread_mutex_init(&r.lock, NULL);
    pthread_t t[10];
    for (int i = 0; i < 10; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, small_reader, &r), 0);
    }
    for (int i = 0; i < 10; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    pthread_mutex_destroy(&r.lock);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.reads, 5000);
    kms_store_close(s);
}

/* ---- rotation, usage, deletion (store_rotation.c) ----------------------------------------- */

#define DAY_S 86400

static bool claim(kms_store *s, const char *key, uint32_t version, const char *type, int64_t now,
                  int64_t stale_before, int64_t due_before, int64_t usage_limit)
{
    kms_rotation_claim cl = {version, type, now, stale_before, due_before, usage_limit};
    bool won = false;
    assert_int_equal(kms_store_rotation_claim(s, key, &cl, &won), 0);
    return won;
}

static int due_cb(void *arg, kms_due_kind kind, const char *key_id, int64_t due)
{
    (void)due;
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%d:%.2s ", (int)kind, key_id);
    return 0;
}

static int count_rotation_cb(void *arg, uint32_t version, int64_t date, const char *type)
{
    (void)date;
    (void)type;
    uint32_t *last = arg;
    assert_true(version > *last);
    *last = version;
    return 0;
}

static void test_rotation_claims(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    kms_key_rotation rot;
    insert_key(s, "k1");
    /* Rotation off: nothing is due by date. */
    assert_false(claim(s, "k1", 2, "AUTOMATIC", 5000, 0, 5000, 0));
    assert_kms_error(kms_store_rotation_set(s, "nope", 90, 1), KMS_ERR_NOT_FOUND);
    assert_int_equal(kms_store_rotation_set(s, "k1", 90, 1000), 0);
    assert_false(claim(s, "k1", 2, "AUTOMATIC", 999, 0, 999, 0));   /* not yet due */
    assert_false(claim(s, "k1", 3, "AUTOMATIC", 1000, 0, 1000, 0)); /* not current + 1 */
    assert_true(claim(s, "k1", 2, "AUTOMATIC", 1000, 0, 1000, 0));
    /* A live claim holds off everyone else, on demand too; a stale one is taken over. */
    assert_false(claim(s, "k1", 2, "AUTOMATIC", 1001, 1000, 1001, 0));
    assert_false(claim(s, "k1", 2, "ON_DEMAND", 1001, 1000, 0, 0));
    assert_int_equal(kms_store_rotation_get(s, "k1", &rot), 0);
    assert_int_equal(rot.claim, 2);
    assert_int_equal(rot.claimed_max, 2);
    assert_int_equal(rot.current_version, 1);
    assert_int_equal(kms_rotation_next_version(&rot), 3);
    /* A stale claim is taken over with the next version, never with its own: its claimant may
     * only have stalled, and whatever it still does under version 2's label touches nothing in
     * use. */
    assert_false(claim(s, "k1", 2, "AUTOMATIC", 1700, 1001, 1700, 0));
    assert_true(claim(s, "k1", 3, "AUTOMATIC", 1700, 1001, 1700, 0));
    assert_kms_error(kms_store_rotation_commit(s, "k1", 2, "AUTOMATIC", 1800),
                     KMS_ERR_INVALID_STATE);
    assert_int_equal(kms_store_rotation_release(s, "k1", 2), 0); /* the stalled one: no effect */
    assert_int_equal(kms_store_rotation_get(s, "k1", &rot), 0);
    assert_int_equal(rot.claim, 3);
    assert_int_equal(kms_store_rotation_commit(s, "k1", 3, "AUTOMATIC", 2000), 0);
    assert_int_equal(kms_store_rotation_get(s, "k1", &rot), 0);
    assert_int_equal(rot.current_version, 3);
    assert_int_equal(rot.claim, 0);
    assert_int_equal(rot.claim_date, 0);
    assert_int_equal(rot.claimed_max, 3);
    /* One period from the rotation, however late it came. */
    assert_int_equal(rot.next_rotation, 2000 + 90 * DAY_S);
    /* A commit whose claim is gone (taken over, committed) is refused. */
    assert_kms_error(kms_store_rotation_commit(s, "k1", 2, "AUTOMATIC", 2001),
                     KMS_ERR_INVALID_STATE);
    assert_kms_error(kms_store_rotation_commit(s, "k1", 3, "AUTOMATIC", 2001),
                     KMS_ERR_INVALID_STATE);
    assert_kms_error(kms_store_rotation_commit(s, "k1", 4, "AUTOMATIC", 2001),
                     KMS_ERR_INVALID_STATE);

    /* On demand: at most KMS_ROTATION_ON_DEMAND_MAX, the automatic schedule untouched. */
    uint32_t top = 4 + KMS_ROTATION_ON_DEMAND_MAX; /* versions 4 .. top - 1 */
    for (uint32_t v = 4; v < top; v++) {
        assert_true(claim(s, "k1", v, "ON_DEMAND", 3000, 0, 0, 0));
        assert_int_equal(kms_store_rotation_commit(s, "k1", v, "ON_DEMAND", 3000), 0);
    }
    assert_false(claim(s, "k1", top, "ON_DEMAND", 3000, 0, 0, 0));
    assert_int_equal(kms_store_rotation_get(s, "k1", &rot), 0);
    assert_int_equal(rot.on_demand_count, KMS_ROTATION_ON_DEMAND_MAX);
    assert_int_equal(rot.next_rotation, 2000 + 90 * DAY_S);
    /* A released claim's version is not made again either. */
    assert_true(claim(s, "k1", top, "AUTOMATIC", 3000, 0, 0, 0));
    assert_int_equal(kms_store_rotation_release(s, "k1", top), 0);
    assert_false(claim(s, "k1", top, "AUTOMATIC", 3000, 0, 0, 0));
    assert_true(claim(s, "k1", top + 1, "AUTOMATIC", 3000, 0, 0, 0));
    assert_int_equal(kms_store_rotation_release(s, "k1", top + 1), 0);
    assert_int_equal(kms_store_rotation_get(s, "k1", &rot), 0);
    assert_int_equal(rot.claim, 0);
    assert_int_equal(rot.current_version, top - 1);
    assert_int_equal(kms_rotation_next_version(&rot), top + 2);

    /* ListKeyRotations: the versions made (3, 4 .. top - 1; 2 was abandoned) in order, paged. */
    uint32_t last = 0;
    bool truncated = false;
    assert_int_equal(kms_store_rotation_list(s, "k1", 0, 5, count_rotation_cb, &last, &truncated),
                     0);
    assert_int_equal(last, 7);
    assert_true(truncated);
    assert_int_equal(kms_store_rotation_list(s, "k1", 7, 100, count_rotation_cb, &last, &truncated),
                     0);
    assert_int_equal(last, top - 1);
    assert_false(truncated);

    /* A disabled key is not rotated, by date or on demand. */
    assert_int_equal(kms_store_key_set_state(s, "k1", "Disabled", 0, 0), 0);
    assert_false(claim(s, "k1", top + 2, "AUTOMATIC", 1LL << 40, 0, 1LL << 40, 0));
    kms_store_close(s);
}

static void test_rotation_usage_and_due(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    int64_t total = 0;
    char due[512] = "";
    insert_key(s, "a1");
    insert_key(s, "b2");
    insert_key(s, "c3");
    assert_int_equal(kms_store_usage_add(s, "a1", 1, 4, &total), 0);
    assert_int_equal(total, 4);
    assert_int_equal(kms_store_usage_add(s, "a1", 1, 1, &total), 0);
    assert_int_equal(total, 5);
    assert_int_equal(kms_store_usage_add(s, "a1", 1, -1, &total), 0);
    assert_int_equal(total, 4);
    assert_kms_error(kms_store_usage_add(s, "a1", 9, 1, &total), KMS_ERR_NOT_FOUND);
    /* Below the usage limit by claim, then at it. */
    assert_false(claim(s, "a1", 2, "AUTOMATIC", 10, 0, 0, 5));
    assert_int_equal(kms_store_usage_add(s, "a1", 1, 1, &total), 0);
    assert_int_equal(kms_store_rotation_set(s, "b2", 90, 100), 0);
    assert_int_equal(kms_store_key_set_state(s, "c3", "PendingDeletion", 150, 7), 0);
    assert_int_equal(kms_store_due_list(s, 120, 5, 0, due_cb, due), 0);
    /* deletion (none yet at 120), rotation b2, usage a1 */
    assert_string_equal(due, "0:b2 1:a1 ");
    int64_t next = 0;
    assert_int_equal(kms_store_next_due(s, 120, &next), 0);
    assert_int_equal(next, 150);
    due[0] = '\0';
    assert_int_equal(kms_store_due_list(s, 200, 0, 0, due_cb, due), 0);
    assert_string_equal(due, "3:c3 0:b2 ");
    /* A claim left by a crash is due once stale. */
    assert_true(claim(s, "a1", 2, "AUTOMATIC", 300, 0, 0, 5));
    due[0] = '\0';
    assert_int_equal(kms_store_due_list(s, 200, 0, 301, due_cb, due), 0);
    assert_string_equal(due, "2:a1 3:c3 0:b2 ");
    kms_store_close(s);
}

static void test_key_delete(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    int64_t when = 0;
    kms_key_record rec;
    kms_alias_record alias;
    insert_key(s, "d1");
    assert_int_equal(kms_store_alias_create(s, "alias/d", "d1", 1), 0);
    assert_kms_error(kms_store_key_delete(s, "d1", 100), KMS_ERR_INVALID_STATE);
    assert_kms_error(kms_store_key_cancel_deletion(s, "d1", 100), KMS_ERR_INVALID_STATE);
    assert_int_equal(kms_store_key_set_state(s, "d1", "PendingDeletion", 500, 7), 0);
    /* Cancelling works while the window is open, not once it ended. */
    assert_kms_error(kms_store_key_cancel_deletion(s, "d1", 500), KMS_ERR_INVALID_STATE);
    assert_int_equal(kms_store_key_cancel_deletion(s, "d1", 499), 0);
    assert_int_equal(kms_store_key_get(s, "d1", &rec), 0);
    assert_string_equal(rec.key_state, "Disabled");
    kms_key_record_clean_up(&rec);
    assert_int_equal(kms_store_key_set_state(s, "d1", "PendingDeletion", 500, 7), 0);
    assert_kms_error(kms_store_deleted_get(s, "d1", &when), KMS_ERR_NOT_FOUND);
    assert_int_equal(kms_store_key_delete(s, "d1", 600), 0);
    assert_kms_error(kms_store_key_get(s, "d1", &rec), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_store_alias_get(s, "alias/d", &alias), KMS_ERR_NOT_FOUND);
    assert_int_equal(kms_store_deleted_get(s, "d1", &when), 0);
    assert_int_equal(when, 600);
    assert_kms_error(kms_store_key_delete(s, "d1", 700), KMS_ERR_NOT_FOUND);
    kms_store_close(s);
    char *v = sql_text(f->path, "SELECT count(*) FROM key_versions WHERE key_id = 'd1'");
    assert_string_equal(v, "0");
    free(v);
}

/* ---- Tags ------------------------------------------------------------------------------------ */

typedef struct tag_seen {
    char text[4096]; /* "k=v;" for each tag, in order */
    size_t n;
} tag_seen;

static int tag_collect(void *arg, const char *key, const char *value)
{
    tag_seen *t = arg;
    size_t used = strlen(t->text);
    snprintf(t->text + used, sizeof t->text - used, "%s=%s;", key, value);
    t->n++;
    return 0;
}

static void tags_of(kms_store *s, const char *key_id, const char *marker, size_t limit,
                    tag_seen *out, bool *truncated)
{
    memset(out, 0, sizeof *out);
    int rc = kms_store_tags_list(s, key_id, marker, limit, tag_collect, out, truncated);
    if (rc != 0) {
        fail_msg("kms_store_tags_list: %s", kms_last_error_message());
    }
}

/* Put, replace, remove and list; keys are case-sensitive; the count limit is kept in the
 * transaction (nothing written when it would pass); a missing key is NotFound. */
static void test_tags(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    tag_seen seen;
    bool truncated = true;
    insert_key(s, "t1");
    insert_key(s, "t2");
    tags_of(s, "t1", NULL, 50, &seen, &truncated);
    assert_int_equal(seen.n, 0);
    assert_false(truncated);
    kms_tag two[] = {{"Project", "Alpha"}, {"project", ""}};
    assert_int_equal(kms_store_tags_put(s, "t1", two, 2), 0);
    kms_tag again[] = {{"Project", "Beta"}, {"Owner", NULL}};
    assert_int_equal(kms_store_tags_put(s, "t1", again, 2), 0);
    tags_of(s, "t1", NULL, 50, &seen, &truncated);
    assert_string_equal(seen.text, "Owner=;Project=Beta;project=;");
    assert_false(truncated);
    /* Pages after a marker. */
    tags_of(s, "t1", NULL, 2, &seen, &truncated);
    assert_string_equal(seen.text, "Owner=;Project=Beta;");
    assert_true(truncated);
    tags_of(s, "t1", "Project", 2, &seen, &truncated);
    assert_string_equal(seen.text, "project=;");
    assert_false(truncated);
    /* The other key's tags are its own. */
    tags_of(s, "t2", NULL, 50, &seen, &truncated);
    assert_int_equal(seen.n, 0);
    const char *gone[] = {"project", "Absent"};
    assert_int_equal(kms_store_tags_remove(s, "t1", gone, 2), 0);
    tags_of(s, "t1", NULL, 50, &seen, &truncated);
    assert_string_equal(seen.text, "Owner=;Project=Beta;");
    /* 50 tags at most: a put that would pass it writes nothing. */
    kms_tag many[49];
    char names[49][8];
    for (int i = 0; i < 49; i++) {
        snprintf(names[i], sizeof names[i], "k%02d", i);
        many[i].key = names[i];
        many[i].value = "v";
    }
    assert_kms_error(kms_store_tags_put(s, "t1", many, 49), KMS_ERR_LIMIT_EXCEEDED);
    tags_of(s, "t1", NULL, 50, &seen, &truncated);
    assert_string_equal(seen.text, "Owner=;Project=Beta;");
    assert_int_equal(kms_store_tags_put(s, "t1", many, 48), 0);
    tags_of(s, "t1", NULL, 50, &seen, &truncated);
    assert_int_equal(seen.n, 50);
    assert_false(truncated);
    /* Replacing a value at the limit is no new tag. */
    kms_tag replace[] = {{"Owner", "me"}};
    assert_int_equal(kms_store_tags_put(s, "t1", replace, 1), 0);
    assert_kms_error(kms_store_tags_put(s, "nope", replace, 1), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_store_tags_remove(s, "nope", gone, 1), KMS_ERR_NOT_FOUND);
    kms_tag empty_key[] = {{"", "x"}};
    assert_kms_error(kms_store_tags_put(s, "t2", empty_key, 1), KMS_ERR_VALIDATION);
    kms_store_close(s);
}

typedef struct attr_seen {
    char tags[512];
    char aliases[512];
} attr_seen;

static int attr_collect(void *arg, kms_store_attr_kind kind, const char *name, const char *value)
{
    attr_seen *a = arg;
    char *dst = kind == KMS_STORE_ATTR_TAG ? a->tags : a->aliases;
    size_t used = strlen(dst);
    snprintf(dst + used, 512 - used, "%s=%s;", name, value);
    return 0;
}

/* The gate's one query: the tags, the aliases, both or neither. */
static void test_key_attributes(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    attr_seen seen;
    insert_key(s, "a1");
    insert_key(s, "a2");
    kms_tag t[] = {{"Project", "Alpha"}};
    assert_int_equal(kms_store_tags_put(s, "a1", t, 1), 0);
    assert_int_equal(kms_store_alias_create(s, "alias/finance-a", "a1", 1), 0);
    assert_int_equal(kms_store_alias_create(s, "alias/other", "a2", 1), 0);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kms_store_key_attributes(s, "a1", true, true, attr_collect, &seen), 0);
    assert_string_equal(seen.tags, "Project=Alpha;");
    assert_string_equal(seen.aliases, "alias/finance-a=;");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kms_store_key_attributes(s, "a1", false, true, attr_collect, &seen), 0);
    assert_string_equal(seen.tags, "");
    assert_string_equal(seen.aliases, "alias/finance-a=;");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kms_store_key_attributes(s, "a1", true, false, attr_collect, &seen), 0);
    assert_string_equal(seen.tags, "Project=Alpha;");
    assert_string_equal(seen.aliases, "");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kms_store_key_attributes(s, "a2", true, true, attr_collect, &seen), 0);
    assert_string_equal(seen.tags, "");
    assert_string_equal(seen.aliases, "alias/other=;");
    kms_store_close(s);
}

/* Tags go with their key at the end of its deletion window. */
static void test_tags_deleted_with_key(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    insert_key(s, "g1");
    kms_tag t[] = {{"Project", "Alpha"}};
    assert_int_equal(kms_store_tags_put(s, "g1", t, 1), 0);
    assert_int_equal(kms_store_key_set_state(s, "g1", "PendingDeletion", 500, 7), 0);
    assert_int_equal(kms_store_key_delete(s, "g1", 600), 0);
    kms_store_close(s);
    char *v = sql_text(f->path, "SELECT count(*) FROM key_tags");
    assert_string_equal(v, "0");
    free(v);
}

/* Two stores on one file (as two processes) claim the same version at once: one wins. */
typedef struct race_arg {
    const char *path;
    int64_t round;
    bool won;
    pthread_barrier_t *start;
} race_arg;

static void *race_claim(void *p)
{
    race_arg *a = p;
    kms_store *s = kms_store_open(a->path, false);
    if (s == NULL) {
        return NULL;
    }
    kms_rotation_claim cl = {(uint32_t)a->round + 1, "AUTOMATIC", a->round, 0, a->round, 0};
    pthread_barrier_wait(a->start);
    if (kms_store_rotation_claim(s, "r1", &cl, &a->won) == 0 && a->won &&
        kms_store_rotation_commit(s, "r1", cl.version, "AUTOMATIC", a->round) != 0) {
        a->won = false;
    }
    kms_store_close(s);
    return NULL;
}

static void test_rotation_race(void **state)
{
    fixture *f = *state;
    kms_store *s = open_ok(f->path, true);
    insert_key(s, "r1");
    pthread_barrier_t start;
    for (int64_t round = 1; round <= 20; round++) {
        /* Due again each round: the period's next date is at most this round. */
        assert_int_equal(kms_store_rotation_set(s, "r1", 90, round), 0);
        race_arg a[2] = {{f->path, round, false, &start}, {f->path, round, false, &start}};
        pthread_t t[2];
        pthread_barrier_init(&start, NULL, 2);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(pthread_create(&t[i], NULL, race_claim, &a[i]), 0);
        }
        for (int i = 0; i < 2; i++) {
            pthread_join(t[i], NULL);
        }
        pthread_barrier_destroy(&start);
        assert_int_equal((int)a[0].won + (int)a[1].won, 1);
    }
    kms_key_rotation rot;
    assert_int_equal(kms_store_rotation_get(s, "r1", &rot), 0);
    assert_int_equal(rot.current_version, 21);
    kms_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_db_typed_binds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_return_resets_statements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_bind_wrong_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_transaction_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_busy_writer_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_query_and_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_unreadable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_remove_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_then_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_foreign_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_no_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_usage_and_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_deleted_with_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_round_trip, setup, teardown),
        cmocka_unit_test(test_key_clean_up_zeroed),
        cmocka_unit_test_setup_teardown(test_key_get_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_insert_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_set_description_and_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_list_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_list_reentrant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alias_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_get_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_exhaustion, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
