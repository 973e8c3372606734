/* Metadata store on SQLite: opening and closing the file, over a small pool of connections
 * (db.h), and what the store's files share. Keys are in store_keys.c, aliases in
 * store_aliases.c, grants in store_grants.c, rotation and deletion in store_rotation.c, the
 * schema in store_schema.c. */
#include "store/store.h"
#include "store/db_sqlite.h"
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define POOL_MAX 4
#define BUSY_TIMEOUT_MS 5000

struct kms_store {
    kms_db *db;
};

/* synchronous=FULL: a key whose metadata is lost after a crash would orphan its HSM objects, so
 * every commit reaches the disk. */
static const char store_pragmas[] =
    "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;";

kms_db *kms_store_db(kms_store *store)
{
    return store->db;
}

/* ---- Open and close ----------------------------------------------------------------------- */

/* Creates the file exclusively, so that an existing file is never touched. */
static int create_empty_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            return kms_raise(KMS_ERR_ALREADY_EXISTS, "metadata database %s already exists", path);
        }
        return kms_raise(KMS_ERR_HOME, "cannot create metadata database %s: %s", path,
                         strerror(errno));
    }
    close(fd);
    return 0;
}

static int check_existing_file(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) {
            return kms_raise(KMS_ERR_HOME,
                             "metadata database %s not found: run `kmsctl init` to create the "
                             "KMS home",
                             path);
        }
        return kms_raise(KMS_ERR_HOME, "cannot access metadata database %s: %s", path,
                         strerror(errno));
    }
    KMS_ENSURE(S_ISREG(sb.st_mode), KMS_ERR_HOME, "metadata database %s is not a regular file",
               path);
    return 0;
}

/* The first connection checks the file and brings its schema up to date. */
static int schema_ready(kms_store *store, bool create)
{
    kms_db_conn *c = NULL;
    KMS_GUARD(kms_db_borrow(store->db, &c));
    const char *path = kms_db_path(store->db);
    int r = create ? kms_store_schema_create(c, path) : kms_store_schema_upgrade(c, path);
    kms_db_return(c);
    return r;
}

kms_store *kms_store_open(const char *path, bool create)
{
    kms_store *store = NULL;
    bool created = false;
    bool ok = false;

    if (path == NULL || path[0] == '\0') {
        kms_raise(KMS_ERR_VALIDATION, "no metadata database path given");
        goto out;
    }
    if (sqlite3_threadsafe() == 0) {
        /* Connections are used from several threads, one at a time. */
        kms_raise(KMS_ERR_INTERNAL, "SQLite was built without thread support");
        goto out;
    }
    store = calloc(1, sizeof *store);
    if (store == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (create) {
        if (create_empty_file(path) != 0) {
            goto out;
        }
        created = true;
    } else if (check_existing_file(path) != 0) {
        goto out;
    }
    kms_db_config cfg = {
        .path = path,
        .label = "metadata database",
        .err = KMS_ERR_INTERNAL,
        .file_err = KMS_ERR_HOME,
        .pragmas = store_pragmas,
        .busy_timeout_ms = BUSY_TIMEOUT_MS,
        .pool_max = POOL_MAX,
    };
    store->db = kms_db_new(&cfg);
    if (store->db == NULL) {
        goto out;
    }
    if (schema_ready(store, create) != 0) {
        goto out;
    }
    ok = true;
out:
    if (!ok) {
        kms_store_close(store);
        store = NULL;
        if (created) {
            kms_db_remove_files(path);
        }
    }
    return store;
}

void kms_store_close(kms_store *store)
{
    if (store == NULL) {
        return;
    }
    kms_db_close(store->db);
    free(store);
}

/* ---- Shared by the store's files ---------------------------------------------------------- */

bool kms_store_field_ok(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    return n > 0 && n < size;
}

static const char *const key_states[] = {
    /* AWS KMS KeyState; the store accepts all of them so that later features need no schema
     * change, the keystore decides which transitions are legal. */
    "Creating",        "Enabled",       "Disabled",
    "PendingDeletion", "PendingImport", "PendingReplicaDeletion",
    "Unavailable",     "Updating",
};

bool kms_store_key_state_known(const char *state)
{
    for (size_t i = 0; i < sizeof key_states / sizeof key_states[0]; i++) {
        if (strcmp(state, key_states[i]) == 0) {
            return true;
        }
    }
    return false;
}

int64_t kms_store_fetch_limit(size_t limit)
{
    return limit >= (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit + 1;
}

int kms_store_rows_push(kms_store_rows *l, const void *item)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->items, cap * l->item_size);
        KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory");
        l->items = p;
        l->cap = cap;
    }
    memcpy((char *)l->items + l->count * l->item_size, item, l->item_size);
    l->count++;
    return 0;
}

/* ---- Connections for src/iam until it moves onto db.h (store_internal.h) ------------------ */

int kms_store_conn_borrow(kms_store *store, kms_store_conn **out)
{
    return kms_db_borrow(store->db, out);
}

void kms_store_conn_return(kms_store *store, kms_store_conn *c)
{
    (void)store;
    kms_db_return(c);
}

sqlite3 *kms_store_conn_db(kms_store_conn *c)
{
    return kms_db_conn_sqlite(c);
}

int kms_store_conn_prepare(kms_store *store, kms_store_conn *c, const char *sql, sqlite3_stmt **out)
{
    (void)store;
    kms_db_stmt *st = NULL;
    *out = NULL;
    KMS_GUARD(kms_db_prepare(c, sql, &st));
    *out = kms_db_stmt_sqlite(st);
    return 0;
}

int kms_store_conn_begin(kms_store *store, kms_store_conn *c)
{
    (void)store;
    return kms_db_begin(c, "cannot begin a transaction");
}

int kms_store_conn_commit(kms_store *store, kms_store_conn *c)
{
    (void)store;
    return kms_db_commit(c, "cannot commit");
}

void kms_store_conn_rollback(kms_store_conn *c)
{
    kms_db_rollback(c);
}

int kms_store_raise(const kms_store *store, kms_store_conn *c, int rc, const char *what)
{
    (void)store;
    return kms_db_raise_rc(c, rc, what);
}

int kms_store_step(kms_store *store, kms_store_conn *c, sqlite3_stmt *st, const char *what)
{
    (void)store;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    return kms_db_raise_rc(c, rc, what);
}
