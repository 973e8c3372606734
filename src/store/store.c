/* Metadata store on SQLite: opening and closing the file, over a small pool of connections
 * (db.h), and what the store's files share. Keys are in store_keys.c, aliases in
 * store_aliases.c, grants in store_grants.c, rotation and deletion in store_rotation.c, the
 * schema in store_schema.c. */
#include "store/store.h"
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

/* Connections are opened as concurrent callers need them (a command opens one); 4 left 32 callers
 * waiting about 90 us per GenerateDataKey for one (kmsbench wait_us_per_op.database), 16 about 35.
 */
#define POOL_MAX 16
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

uint64_t kms_store_wait_ns(kms_store *store)
{
    return store != NULL ? kms_db_wait_ns(store->db) : 0;
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

/* ---- Listings ----------------------------------------------------------------------------- */

kms_db_params kms_store_list_params(kms_db_value v[3], const char *marker, size_t limit,
                                    const char *subject)
{
    v[0] = kms_db_text(marker ? marker : "");
    v[1] = kms_db_int64(kms_store_fetch_limit(limit));
    v[2] = kms_db_text(subject);
    return (kms_db_params){v, subject != NULL ? 3 : 2};
}

/* A page of a listing: its rows, read before any visit, at most w->limit, and whether more
 * follow. */
typedef struct walk_page {
    const kms_store_walk *w;
    char *items;
    size_t count;
    size_t cap;
    bool more;
} walk_page;

static void *page_item(const walk_page *pg, size_t i)
{
    return pg->items + i * pg->w->item_size;
}

static int walk_row(kms_db_stmt *st, void *arg)
{
    walk_page *pg = arg;
    if (pg->count == pg->w->limit) {
        pg->more = true;
        return 1;
    }
    if (pg->count == pg->cap) {
        size_t cap = pg->cap ? pg->cap * 2 : 16;
        char *p = realloc(pg->items, cap * pg->w->item_size);
        KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory");
        pg->items = p;
        pg->cap = cap;
    }
    void *item = page_item(pg, pg->count);
    memset(item, 0, pg->w->item_size);
    KMS_GUARD(pg->w->read(st, item));
    pg->count++;
    return 0;
}

int kms_store_walk_rows(kms_store *store, const kms_store_walk *w, bool *truncated)
{
    walk_page pg = {.w = w};
    int r = -1;
    if (kms_db_query(kms_store_db(store), w->sql, w->params, walk_row, &pg, w->what, NULL) != 0) {
        goto out;
    }
    for (size_t i = 0; i < pg.count; i++) {
        if (w->visit(w->arg, page_item(&pg, i)) != 0) {
            goto out;
        }
    }
    if (truncated != NULL) {
        *truncated = pg.more;
    }
    r = 0;
out:
    for (size_t i = 0; w->clean_up != NULL && i < pg.count; i++) {
        w->clean_up(page_item(&pg, i));
    }
    free(pg.items);
    return r;
}
