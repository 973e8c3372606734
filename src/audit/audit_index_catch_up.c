/* The audit index (dir/index.db): its schema, opening it, and catching it up with the segments
 * (audit_index.c's header comment says how). The database is derived data, rebuilt whenever it
 * disagrees with the segments; it is reached through the store's database layer (store/db.h)
 * like every other database. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_index_internal.h"
#include "util/util.h"

#define NAME_DIGITS 20
#define BUSY_TIMEOUT_MS 120000
/* "KMSA": tells our index from any other SQLite file. */
#define INDEX_APPLICATION_ID 1263358785
#define INDEX_SCHEMA_VERSION 2
#define BULK_BYTES ((uint64_t)8 * 1024 * 1024)
#define BULK_PRAGMAS "PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY;"

_Static_assert(INDEX_APPLICATION_ID == 0x4B4D5341, "application id");

/* ---- SQL ---------------------------------------------------------------------------------- */

static const char sql_schema[] =
    "PRAGMA application_id = 1263358785;"
    "PRAGMA user_version = 2;"
    "CREATE TABLE events ("
    "  sequence INTEGER PRIMARY KEY,"
    "  event_time INTEGER NOT NULL,"
    "  event_id TEXT, event_name TEXT, event_source TEXT, event_type TEXT,"
    "  username TEXT, access_key_id TEXT,"
    "  read_only INTEGER NOT NULL, error INTEGER NOT NULL,"
    "  segment TEXT NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL);"
    /* Each resource once (a trail names few keys many times); name: the ARN's last path part
     * (a key id), so that ResourceName matches either. */
    "CREATE TABLE resource_names ("
    "  id INTEGER PRIMARY KEY, type TEXT NOT NULL, arn TEXT NOT NULL, name TEXT NOT NULL);"
    "CREATE UNIQUE INDEX resource_names_by_arn ON resource_names (arn, type);"
    "CREATE INDEX resource_names_by_name ON resource_names (name);"
    /* The resources of each event; type repeated so that ResourceType walks one index. */
    "CREATE TABLE resources ("
    "  sequence INTEGER NOT NULL, position INTEGER NOT NULL, event_time INTEGER NOT NULL,"
    "  resource INTEGER NOT NULL, type TEXT NOT NULL,"
    "  PRIMARY KEY (sequence, position)) WITHOUT ROWID;"
    /* inode and mtime_ns as seen when last indexed: a segment that still shows them is not
     * read again to compare its first line. last_sequence, last_hash: the chain where the
     * indexing of this segment stopped (its last record indexed, or the one before it). */
    "CREATE TABLE progress ("
    "  segment TEXT PRIMARY KEY NOT NULL, bytes INTEGER NOT NULL, first_line_hash TEXT,"
    "  inode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    "  last_sequence INTEGER NOT NULL, last_hash TEXT NOT NULL);";

/* Every index ends (implicitly, through the rowid, or explicitly) with the sequence, so that a
 * filtered lookup walks one index backwards in result order and stops after a page. */
static const char sql_indexes[] =
    "CREATE INDEX IF NOT EXISTS events_by_time ON events (event_time);"
    "CREATE INDEX IF NOT EXISTS events_by_name ON events (event_name, event_time);"
    "CREATE INDEX IF NOT EXISTS events_by_user ON events (username, event_time);"
    "CREATE INDEX IF NOT EXISTS events_by_source ON events (event_source, event_time);"
    "CREATE INDEX IF NOT EXISTS events_by_access_key ON events (access_key_id, event_time);"
    "CREATE INDEX IF NOT EXISTS events_by_id ON events (event_id);"
    "CREATE INDEX IF NOT EXISTS events_by_read_only ON events (read_only, event_time);"
    "CREATE INDEX IF NOT EXISTS resources_by_resource ON resources (resource, event_time,"
    "  sequence);"
    "CREATE INDEX IF NOT EXISTS resources_by_type ON resources (type, event_time, sequence);";

static const char sql_drop_indexes[] =
    "DROP INDEX IF EXISTS events_by_time; DROP INDEX IF EXISTS events_by_name;"
    "DROP INDEX IF EXISTS events_by_user; DROP INDEX IF EXISTS events_by_source;"
    "DROP INDEX IF EXISTS events_by_access_key; DROP INDEX IF EXISTS events_by_id;"
    "DROP INDEX IF EXISTS events_by_read_only;"
    "DROP INDEX IF EXISTS resources_by_resource; DROP INDEX IF EXISTS resources_by_type;";

static const char sql_drop_tables[] = "DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS resources;"
                                      "DROP TABLE IF EXISTS resource_names;"
                                      "DROP TABLE IF EXISTS progress;";
static const char sql_clear[] = "DELETE FROM events; DELETE FROM resources; "
                                "DELETE FROM resource_names; DELETE FROM progress;";
static const char sql_application_id[] = "PRAGMA application_id";
static const char sql_user_version[] = "PRAGMA user_version";
static const char sql_progress_get[] =
    "SELECT segment, bytes, first_line_hash, inode, mtime_ns, last_sequence, last_hash "
    "FROM progress ORDER BY segment";
static const char sql_event_insert[] =
    "INSERT OR IGNORE INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
static const char sql_resource_insert[] =
    "INSERT OR IGNORE INTO resources VALUES (?1, ?2, ?3, ?4, ?5)";
static const char sql_name_find[] = "SELECT id FROM resource_names WHERE arn = ?1 AND type = ?2";
static const char sql_name_insert[] =
    "INSERT INTO resource_names (type, arn, name) VALUES (?1, ?2, ?3)";
static const char sql_progress_set[] =
    "INSERT OR REPLACE INTO progress VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/* ---- Opening ------------------------------------------------------------------------------ */

/* One integer from a query without parameters, or -1. */
static int64_t query_int(kms_db_conn *c, const char *sql)
{
    kms_db_stmt *st = NULL;
    int64_t v = -1;
    if (kms_db_prepare(c, sql, &st) == 0 && kms_db_step(st, "cannot read") == 1) {
        v = kms_db_column_int64(st, 0);
    }
    kms_db_reset(st);
    return v;
}

static bool schema_current(kms_db_conn *c)
{
    return query_int(c, sql_application_id) == INDEX_APPLICATION_ID &&
           query_int(c, sql_user_version) == INDEX_SCHEMA_VERSION;
}

/* Under the write lock: another process may have created the schema in the meantime. */
static int schema_locked(kms_db_conn *c, void *arg)
{
    (void)arg;
    if (schema_current(c)) {
        return 0;
    }
    KMS_GUARD(kms_db_exec_script(c, sql_drop_tables, "cannot reset"));
    KMS_GUARD(kms_db_exec_script(c, sql_schema, "cannot create the schema"));
    return kms_db_exec_script(c, sql_indexes, "cannot create the indexes");
}

/* Creates the schema in an empty file; recreates it in a file of another version. */
static int schema_ensure(kms_db_conn *c)
{
    if (schema_current(c)) {
        return 0;
    }
    return kms_db_transaction(c, schema_locked, NULL, "cannot create the schema");
}

static int index_connect(kms_audit_index *x)
{
    /* Created here so that it is 0600 from the start; SQLite gives -wal and -shm its mode. */
    int fd = open(x->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return kms_raise(KMS_ERR_AUDIT, "cannot open the audit index %s: %s", x->path,
                         strerror(errno));
    }
    close(fd);
    /* Derived data: a commit lost in a crash is indexed again. */
    kms_db_config cfg = {
        .path = x->path,
        .label = "audit index",
        .err = KMS_ERR_AUDIT,
        .file_err = KMS_ERR_AUDIT,
        .pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        .busy_timeout_ms = BUSY_TIMEOUT_MS,
        .pool_max = 1,
    };
    x->db = kms_db_new(&cfg);
    if (x->db == NULL) {
        return -1;
    }
    KMS_GUARD(kms_db_borrow(x->db, &x->c));
    return schema_ensure(x->c);
}

static void index_disconnect(kms_audit_index *x)
{
    kms_db_return(x->c);
    x->c = NULL;
    kms_db_close(x->db);
    x->db = NULL;
}

void kms_audit_index_close(kms_audit_index *x)
{
    index_disconnect(x);
    free(x->path);
    x->path = NULL;
}

int kms_audit_index_open(kms_audit_index *x, const char *dir, const char *path)
{
    struct stat st;
    memset(x, 0, sizeof *x);
    x->dir = dir;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return kms_raise(KMS_ERR_AUDIT, "the audit log directory %s is missing", dir);
    }
    x->path = path != NULL ? strdup(path) : kms_path_join(dir, "index.db");
    if (x->path == NULL) {
        return -1;
    }
    if (index_connect(x) == 0) {
        return 0;
    }
    /* Not a database (garbage, or torn beyond what SQLite recovers): the index is derived
     * data, so start again from an empty file. */
    if (x->db == NULL || !kms_db_file_unreadable(x->db)) {
        return -1;
    }
    index_disconnect(x);
    kms_db_remove_files(x->path);
    kms_error_clear();
    return index_connect(x);
}

/* ---- Catch-up ------------------------------------------------------------------------------- */

typedef struct progress {
    char segment[KMS_AUDIT_SEGMENT_NAME_LEN + 1];
    int64_t bytes, inode, mtime_ns;
    char hash[KMS_AUDIT_HASH_HEX + 1];
    int64_t last_seq;
    char last_hash[KMS_AUDIT_HASH_HEX + 1];
} progress;

static bool unchanged(const seg_entry *s, const progress *p)
{
    return s->inode == p->inode && s->mtime_ns == p->mtime_ns;
}

#define NAME_CACHE 256

/* A resource_names row remembered, so that most records need no lookup to name theirs. */
typedef struct name_slot {
    char *type, *arn;
    int64_t id;
} name_slot;

/* The chain is followed from record 1: a line is indexed only if it is the next record, links
 * to the previous one, and (with an acker) comes no later in its segment than the last line
 * whose ack verifies, which pins it (audit.h "A record line"). The record the anchor
 * acknowledges must have the acknowledged chain hash. The first line that is not covered stops
 * the catch-up there: the index never lists a record that the chain and its acks do not cover;
 * validate-logs says what is wrong. */
typedef struct indexer {
    kms_audit_index *x;
    char *arena; /* KMS_AUDIT_LINE_MAX + KMS_AUDIT_INDEX_ARENA_SLACK */
    name_slot cache[NAME_CACHE];
    kms_audit_anchor anchor; /* has_ack false: none */
    kms_audit_acker acker;   /* mac NULL: acks not checked */
    uint64_t limit;          /* in the segment being indexed: where its pinned lines end */
    int64_t last_seq;
    char last_hash[KMS_AUDIT_HASH_HEX + 1];
    bool stopped;
} indexer;

static const char *last_part(const char *arn)
{
    const char *slash = strrchr(arn, '/');
    const char *colon = strrchr(arn, ':');
    const char *p = slash ? slash : colon;
    return p ? p + 1 : arn;
}

/* audit.h lookup-events: userName; for AssumedRole the session name; for Root "root". */
static const char *username_of(const kms_audit_index_fields *f)
{
    if (f->user_type != NULL && strcmp(f->user_type, "Root") == 0) {
        return "root";
    }
    if (f->user_type != NULL && strcmp(f->user_type, "AssumedRole") == 0 && f->user_arn != NULL) {
        return last_part(f->user_arn);
    }
    return f->user_name;
}

static uint32_t fnv1a(const char *s, uint32_t h)
{
    for (; *s != '\0'; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h;
}

/* The resource_names id of (type, arn) in the database, added if new. */
static int resource_id_stored(kms_db_conn *c, const char *type, const char *arn, int64_t *id)
{
    int found = kms_db_int(c, sql_name_find, KMS_DB_PARAMS(kms_db_text(arn), kms_db_text(type)), id,
                           "cannot read resource names");
    if (found == 1) {
        return 0;
    }
    *id = -1;
    if (found < 0) {
        return -1;
    }
    KMS_GUARD(kms_db_exec_sql(
        c, sql_name_insert,
        KMS_DB_PARAMS(kms_db_text(type), kms_db_text(arn), kms_db_text(last_part(arn))),
        "cannot write"));
    *id = kms_db_last_insert_id(c);
    return 0;
}

/* The resource_names id of (type, arn), from the cache or the database. */
static int resource_id(indexer *ix, const char *type, const char *arn, int64_t *id)
{
    name_slot *slot = &ix->cache[fnv1a(arn, fnv1a(type, 2166136261u)) % NAME_CACHE];
    if (slot->arn != NULL && strcmp(slot->arn, arn) == 0 && strcmp(slot->type, type) == 0) {
        *id = slot->id;
        return 0;
    }
    KMS_GUARD(resource_id_stored(ix->x->c, type, arn, id));
    char *t = strdup(type), *a = strdup(arn);
    free(slot->type);
    free(slot->arn);
    *slot = (name_slot){t, a, *id};
    if (t == NULL || a == NULL) {
        free(t);
        free(a);
        *slot = (name_slot){NULL, NULL, 0};
    }
    return 0;
}

static int index_resources(indexer *ix, const kms_audit_index_fields *f, int64_t t)
{
    for (size_t i = 0; i < f->nres; i++) {
        const char *arn = f->res_arn[i], *type = f->res_type[i] ? f->res_type[i] : "";
        int64_t id;
        if (arn == NULL) {
            continue; /* nothing to look it up by */
        }
        KMS_GUARD(resource_id(ix, type, arn, &id));
        KMS_GUARD(
            kms_db_exec_sql(ix->x->c, sql_resource_insert,
                            KMS_DB_PARAMS(kms_db_int64(f->sequence), kms_db_int64((int64_t)i),
                                          kms_db_int64(t), kms_db_int64(id), kms_db_text(type)),
                            "cannot write"));
    }
    return 0;
}

/* Whether line (len bytes, at off) continues the chain and is pinned by an ack: 1 yes (*hash its
 * chain hash), 0 no ack pins it yet (the catch-up stops before it), -1 (raised) the chain is
 * broken before a pinned line, or the record the anchor acknowledges was rewritten. */
static int covered(indexer *ix, const char *p, size_t len, uint64_t off,
                   char hash[KMS_AUDIT_HASH_HEX + 1])
{
    uint64_t seq = 0;
    size_t at = 0;
    char linked[KMS_AUDIT_HASH_HEX + 1];
    const kms_audit_anchor *an = &ix->anchor;
    if (off + len + 1 > ix->limit) {
        return 0; /* no ack pins it (yet) */
    }
    if (p == NULL || !kms_audit_chain_suffix(p, len, &seq, linked, &at) ||
        seq != (uint64_t)ix->last_seq + 1 || strcmp(linked, ix->last_hash) != 0) {
        /* Before a line an ack pins, the chain must hold: it was changed. */
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit trail in %s is not the chain its writer acknowledged after "
                         "record %" PRId64 " (a record was changed, added or removed): "
                         "lookups are refused until it is restored; run `kmsctl validate-logs`",
                         ix->x->dir, ix->last_seq);
    }
    kms_audit_sha256_hex(p, len, hash);
    if (an->has_ack && seq == an->ack_sequence && strcmp(hash, an->ack_hash) != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "audit record %" PRIu64 " in %s is not the one the HSM anchor "
                         "acknowledged (it was rewritten): run `kmsctl validate-logs`",
                         seq, ix->x->dir);
    }
    return 1;
}

/* 0: the line is indexed (or was before: a copied record keeps its first row); 1: it is not
 * covered, the catch-up stops before it. */
static int index_line(indexer *ix, const char *segment, const char *p, size_t len, uint64_t off)
{
    kms_audit_index_fields f;
    char hash[KMS_AUDIT_HASH_HEX + 1];
    int c = covered(ix, p, len, off, hash);
    if (c <= 0) {
        ix->stopped = c == 0;
        return c == 0 ? 1 : -1;
    }
    if (kms_audit_index_scan_record(p, len, ix->arena, &f) != 0 || f.sequence != ix->last_seq + 1) {
        /* Linked and pinned, yet not the record its chain says: refused, not skipped. */
        return kms_raise(KMS_ERR_AUDIT,
                         "record %" PRId64 " of the audit trail in %s is not a record its writer "
                         "wrote: lookups are refused until it is restored; run `kmsctl "
                         "validate-logs`",
                         ix->last_seq + 1, ix->x->dir);
    }
    ix->last_seq = f.sequence;
    memcpy(ix->last_hash, hash, sizeof ix->last_hash);
    int64_t t = kms_audit_parse_time(f.event_time);
    t = t < 0 ? 0 : t;
    KMS_GUARD(kms_db_exec_sql(ix->x->c, sql_event_insert,
                              KMS_DB_PARAMS(kms_db_int64(f.sequence), kms_db_int64(t),
                                            kms_db_text(f.event_id), kms_db_text(f.event_name),
                                            kms_db_text(f.event_source), kms_db_text(f.event_type),
                                            kms_db_text(username_of(&f)),
                                            kms_db_text(f.access_key_id), kms_db_int64(f.read_only),
                                            kms_db_int64(f.error), kms_db_text(segment),
                                            kms_db_int64((int64_t)off), kms_db_int64((int64_t)len)),
                              "cannot write"));
    return kms_db_changes(ix->x->c) == 1 ? index_resources(ix, &f, t) : 0;
}

static int progress_set(indexer *ix, const seg_entry *seg, int64_t bytes, const char *hash)
{
    return kms_db_exec_sql(ix->x->c, sql_progress_set,
                           KMS_DB_PARAMS(kms_db_text(seg->name), kms_db_int64(bytes),
                                         kms_db_text(hash[0] ? hash : NULL),
                                         kms_db_int64(seg->inode), kms_db_int64(seg->mtime_ns),
                                         kms_db_int64(ix->last_seq), kms_db_text(ix->last_hash)),
                           "cannot write");
}

/* Indexes the lines of seg from offset *bytes on that continue the chain (ix->last_seq,
 * ix->last_hash) and that an ack pins; *bytes moves past them. Lines after the pin are left for
 * later in the last segment (last), and refused in any other (a sealed segment never changes). */
static int index_segment(indexer *ix, const seg_entry *seg, bool last, int64_t *bytes, char *hash)
{
    const char *segment = seg->name;
    char *path = kms_strdup_printf("%s/segments/%s", ix->x->dir, segment);
    KMS_ENSURE(path != NULL, KMS_ERR_INTERNAL, "out of memory");
    kms_audit_walk w = {.acker = ix->acker.mac != NULL ? &ix->acker : NULL};
    if (ix->anchor.has_ack && ix->anchor.ack_sequence > (uint64_t)ix->last_seq) {
        w.want_seq = ix->anchor.ack_sequence;
        w.want_hash = ix->anchor.ack_hash;
    }
    int rc = kms_audit_walk_chain(path, (uint64_t)*bytes, UINT64_MAX, (uint64_t)ix->last_seq + 1,
                                  ix->last_hash, &w);
    free(path);
    KMS_GUARD(rc);
    if (w.want_seen && !w.want_ok) {
        return kms_raise(KMS_ERR_AUDIT,
                         "audit record %" PRIu64 " in %s is not the one the HSM anchor "
                         "acknowledged (it was rewritten): run `kmsctl validate-logs`",
                         w.want_seq, ix->x->dir);
    }
    if (w.acked_after_break || (!last && (w.broken || w.linked > w.pin))) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit log segment %s holds records no ack of its writer covers, "
                         "and segments follow it: lookups are refused until the trail is "
                         "restored; run `kmsctl validate-logs`",
                         segment);
    }
    ix->limit = w.pin;
    ix->stopped = false;
    kms_audit_lines r;
    kms_audit_line l;
    rc = kms_audit_index_lines_open(ix->x, segment, (uint64_t)*bytes, &r);
    while (rc == 0 && !ix->stopped && (rc = kms_audit_index_lines_next(&r, &l)) == 1) {
        rc = index_line(ix, segment, l.p, l.len, l.offset);
        if (rc != 0) {
            break;
        }
        if (l.offset == 0) {
            kms_audit_sha256_hex(l.p, l.len, hash);
        }
        *bytes = (int64_t)r.pos;
    }
    kms_audit_lines_close(&r);
    if (rc < 0) {
        return -1;
    }
    return progress_set(ix, seg, *bytes, hash);
}

static int load_progress(kms_audit_index *x, progress **out, size_t *n)
{
    kms_db_stmt *st = NULL;
    progress *p = NULL;
    size_t count = 0, cap = 0;
    int r = -1;
    if ((r = kms_db_prepare(x->c, sql_progress_get, &st)) != 0) {
        goto out;
    }
    int s;
    while ((s = kms_db_step(st, "cannot read the progress")) == 1) {
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            progress *q = realloc(p, cap * sizeof *p);
            if (q == NULL) {
                r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
                goto out;
            }
            p = q;
        }
        progress *e = &p[count++];
        snprintf(e->segment, sizeof e->segment, "%s", kms_db_column_text(st, 0));
        e->bytes = kms_db_column_int64(st, 1);
        snprintf(e->hash, sizeof e->hash, "%s", kms_db_column_text(st, 2));
        e->inode = kms_db_column_int64(st, 3);
        e->mtime_ns = kms_db_column_int64(st, 4);
        e->last_seq = kms_db_column_int64(st, 5);
        snprintf(e->last_hash, sizeof e->last_hash, "%s", kms_db_column_text(st, 6));
    }
    r = s < 0 ? -1 : 0;
out:
    kms_db_reset(st);
    if (r != 0) {
        free(p);
        return -1;
    }
    *out = p;
    *n = count;
    return 0;
}

/* Whether the index still describes a prefix of the segments: each indexed segment still
 * there, in the same place of the order, no shorter, and with the same first line (read again
 * only if the file is another one or was written since). */
static bool still_valid(const kms_audit_index *x, const seg_entry *segs, size_t nsegs,
                        const progress *p, size_t np)
{
    if (np > nsegs) {
        return false;
    }
    for (size_t i = 0; i < np; i++) {
        char hash[KMS_AUDIT_HASH_HEX + 1];
        if (strcmp(p[i].segment, segs[i].name) != 0 || segs[i].size < p[i].bytes) {
            return false;
        }
        if (p[i].bytes > 0 && !unchanged(&segs[i], &p[i])) {
            kms_audit_index_first_line_hash(x, segs[i].name, hash);
            if (strcmp(hash, p[i].hash) != 0) {
                return false;
            }
        }
    }
    return true;
}

static void indexer_clean_up(indexer *ix)
{
    for (size_t i = 0; i < NAME_CACHE; i++) {
        free(ix->cache[i].type);
        free(ix->cache[i].arn);
    }
    free(ix->arena);
}

/* Bytes not yet indexed, to choose a bulk load (indexes built after the inserts). */
static uint64_t new_bytes(const seg_entry *segs, size_t nsegs, const progress *p, size_t np)
{
    uint64_t total = 0;
    for (size_t i = 0; i < nsegs; i++) {
        int64_t done = i < np ? p[i].bytes : 0;
        total += segs[i].size > done ? (uint64_t)(segs[i].size - done) : 0;
    }
    return total;
}

/* A large rebuild: dirty pages stay in memory until the commit instead of spilling into the
 * WAL again and again, and the index builds sort in memory. */
static int bulk_begin(kms_db_conn *c)
{
    KMS_GUARD(kms_db_exec_script(c, BULK_PRAGMAS, "cannot configure the rebuild"));
    return kms_db_exec_script(c, sql_drop_indexes, "cannot drop the indexes");
}

typedef struct catch_up_arg {
    kms_audit_index *x;
    const kms_audit_trust *trust;
} catch_up_arg;

static int catch_up_locked(kms_db_conn *c, void *arg)
{
    const catch_up_arg *ca = arg;
    kms_audit_index *x = ca->x;
    seg_entry *segs = NULL;
    progress *p = NULL;
    size_t nsegs = 0, np = 0;
    indexer ix = {.x = x};
    int r = -1;
    if ((r = kms_audit_index_list_segments(x, &segs, &nsegs)) != 0 ||
        (r = load_progress(x, &p, &np)) != 0) {
        goto out;
    }
    const char *why = NULL;
    if (ca->trust != NULL) {
        ix.acker = ca->trust->acker;
    }
    if (ca->trust != NULL && ca->trust->anchor != NULL &&
        !kms_audit_anchor_parse(ca->trust->anchor, &ix.anchor, &why)) {
        r = kms_raise(KMS_ERR_AUDIT,
                      "the HSM anchor of the audit trail in %s is malformed (%s): run `kmsctl "
                      "validate-logs`",
                      x->dir, why);
        goto out;
    }
    if (!still_valid(x, segs, nsegs, p, np)) {
        np = 0;
        if ((r = kms_db_exec_script(c, sql_clear, "cannot reset")) != 0) {
            goto out;
        }
    }
    bool bulk = np == 0 && new_bytes(segs, nsegs, p, np) > BULK_BYTES;
    if (bulk && (r = bulk_begin(c)) != 0) {
        goto out;
    }
    ix.arena = malloc(KMS_AUDIT_LINE_MAX + KMS_AUDIT_INDEX_ARENA_SLACK);
    if (ix.arena == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    /* Segment by segment, from where the index left each one, with the chain state it left
     * there (audit.h "A record line"): only lines an ack pins are indexed. Only the last segment
     * may end in lines no ack pins (a write under way, or lines the writer will move aside). */
    ix.last_seq = 0;
    memcpy(ix.last_hash, kms_audit_zero_hash, sizeof ix.last_hash);
    for (size_t i = 0; i < nsegs; i++) {
        int64_t bytes = i < np ? p[i].bytes : 0;
        char hash[KMS_AUDIT_HASH_HEX + 1] = "";
        if (i < np && kms_audit_is_hash_hex(p[i].last_hash)) {
            ix.last_seq = p[i].last_seq;
            memcpy(ix.last_hash, p[i].last_hash, sizeof ix.last_hash);
        }
        if (i < np && segs[i].size == bytes && unchanged(&segs[i], &p[i])) {
            continue;
        }
        if (i < np) {
            memcpy(hash, p[i].hash, sizeof hash);
        }
        if ((r = index_segment(&ix, &segs[i], i + 1 == nsegs, &bytes, hash)) != 0) {
            goto out;
        }
    }
    if (bulk) {
        r = kms_db_exec_script(c, sql_indexes, "cannot create the indexes");
    }
out:
    indexer_clean_up(&ix);
    free(p);
    free(segs);
    return r;
}

int kms_audit_index_catch_up(kms_audit_index *x, const kms_audit_trust *trust)
{
    catch_up_arg ca = {x, trust};
    return kms_db_transaction(x->c, catch_up_locked, &ca, "cannot lock for catch-up");
}
