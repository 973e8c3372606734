/* lookup-events and usage-report over dir/index.db, a SQLite index of the segments
 * (audit.h "On disk": derived data, rebuilt whenever it disagrees with the segments).
 *
 * Catch-up, before every query, in one BEGIN IMMEDIATE transaction (so that concurrent readers
 * index each record once): the progress table says how many bytes of each segment are indexed
 * and the hash of each segment's first line. If a segment shrank or vanished, its first line
 * changed (checked when its inode or mtime changed), or a new segment sorts before an indexed
 * one, everything is dropped and rebuilt; otherwise only complete lines beyond the indexed bytes
 * are read. A rebuild of a large trail drops the secondary indexes and creates them after the
 * inserts (a sorted build is faster). Resource ARNs are stored once (resource_names) and events
 * refer to them by id: a trail names few keys a great many times.
 *
 * Queries walk an index in (event_time DESC, sequence DESC) order, the order AWS returns
 * events in (newest first); NextToken is the position of the last event returned. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "util/util.h"

#define NAME_DIGITS 20
#define SEGMENT_NAME_LEN (NAME_DIGITS + 6) /* NNN.jsonl */
#define BUSY_TIMEOUT_MS 120000
#define MAX_RESULTS 50
/* "KMSA": tells our index from any other SQLite file. */
#define INDEX_APPLICATION_ID 1263358785
#define INDEX_SCHEMA_VERSION 1
#define BULK_BYTES ((uint64_t)8 * 1024 * 1024)
#define BULK_PRAGMAS "PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY;"

_Static_assert(INDEX_APPLICATION_ID == 0x4B4D5341, "application id");

static const char sql_schema[] =
    "PRAGMA application_id = 1263358785;"
    "PRAGMA user_version = 1;"
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
     * read again to compare its first line. */
    "CREATE TABLE progress ("
    "  segment TEXT PRIMARY KEY NOT NULL, bytes INTEGER NOT NULL, first_line_hash TEXT,"
    "  inode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL);";

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

typedef struct index_db {
    const char *dir;
    char *path;
    sqlite3 *db;
} index_db;

static int raise_db(const index_db *x, int rc, const char *what)
{
    return kms_raise(KMS_ERR_AUDIT, "audit index %s: %s: %s", x->path, what,
                     x->db ? sqlite3_errmsg(x->db) : sqlite3_errstr(rc));
}

static int exec(const index_db *x, const char *sql, const char *what)
{
    int rc = sqlite3_exec(x->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : raise_db(x, rc, what);
}

static int prepare(const index_db *x, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(x->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : raise_db(x, rc, "cannot prepare a query");
}

/* One integer from a query without parameters, or -1. */
static int64_t query_int(const index_db *x, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(x->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* ---- Opening ----------------------------------------------------------------------------------
 */

static void remove_db_files(const char *path)
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

static int index_connect(index_db *x)
{
    /* Created here so that it is 0600 from the start; SQLite gives -wal and -shm its mode. */
    int fd = open(x->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return kms_raise(KMS_ERR_AUDIT, "cannot open the audit index %s: %s", x->path,
                         strerror(errno));
    }
    close(fd);
    int rc = sqlite3_open_v2(x->path, &x->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        return raise_db(x, rc, "cannot open");
    }
    if (sqlite3_db_readonly(x->db, "main") != 0) {
        return kms_raise(KMS_ERR_AUDIT, "the audit index %s is not writable", x->path);
    }
    sqlite3_extended_result_codes(x->db, 1);
    sqlite3_busy_timeout(x->db, BUSY_TIMEOUT_MS);
    /* Derived data: a commit lost in a crash is indexed again. */
    return exec(x, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "cannot configure");
}

/* Creates the schema in an empty file; recreates it in a file of another version. */
static int schema_ensure(index_db *x)
{
    int64_t app = query_int(x, "PRAGMA application_id");
    int64_t version = query_int(x, "PRAGMA user_version");
    if (app == INDEX_APPLICATION_ID && version == INDEX_SCHEMA_VERSION) {
        return 0;
    }
    KMS_GUARD(exec(x, "BEGIN IMMEDIATE", "cannot lock"));
    app = query_int(x, "PRAGMA application_id");
    version = query_int(x, "PRAGMA user_version");
    int r = 0;
    if (app != INDEX_APPLICATION_ID || version != INDEX_SCHEMA_VERSION) {
        r = exec(x,
                 "DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS resources;"
                 "DROP TABLE IF EXISTS resource_names;"
                 "DROP TABLE IF EXISTS progress;",
                 "cannot reset");
        r = r != 0 ? r : exec(x, sql_schema, "cannot create the schema");
        r = r != 0 ? r : exec(x, sql_indexes, "cannot create the indexes");
    }
    if (r == 0) {
        return exec(x, "COMMIT", "cannot create the schema");
    }
    sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static void index_close(index_db *x)
{
    sqlite3_close_v2(x->db);
    x->db = NULL;
    free(x->path);
    x->path = NULL;
}

static int index_open(index_db *x, const char *dir)
{
    struct stat st;
    memset(x, 0, sizeof *x);
    x->dir = dir;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return kms_raise(KMS_ERR_AUDIT, "the audit log directory %s is missing", dir);
    }
    x->path = kms_path_join(dir, "index.db");
    if (x->path == NULL) {
        return -1;
    }
    if (index_connect(x) == 0 && schema_ensure(x) == 0) {
        return 0;
    }
    /* Not a database (garbage, or torn beyond what SQLite recovers): the index is derived
     * data, so start again from an empty file. */
    int rc = x->db ? sqlite3_extended_errcode(x->db) : SQLITE_OK;
    if (rc != SQLITE_NOTADB && rc != SQLITE_CORRUPT) {
        return -1;
    }
    sqlite3_close_v2(x->db);
    x->db = NULL;
    remove_db_files(x->path);
    kms_error_clear();
    if (index_connect(x) == 0 && schema_ensure(x) == 0) {
        return 0;
    }
    return -1;
}

/* ---- Reading segments ------------------------------------------------------------------------ */

/* A segment file as listed (under the index's write lock, so that what another process indexed
 * in the meantime is never newer than the size seen here). */
typedef struct seg_entry {
    char name[SEGMENT_NAME_LEN + 1];
    int64_t size, inode, mtime_ns;
} seg_entry;

static bool segment_name(const char *s)
{
    return strlen(s) == SEGMENT_NAME_LEN && strspn(s, "0123456789") == NAME_DIGITS &&
           strcmp(s + NAME_DIGITS, ".jsonl") == 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const seg_entry *)a)->name, ((const seg_entry *)b)->name);
}

/* The segments in name order (20 zero-padded digits sort as numbers). */
static int list_segments(const index_db *x, seg_entry **out, size_t *n)
{
    char *path = kms_path_join(x->dir, "segments");
    DIR *d = path ? opendir(path) : NULL;
    if (d == NULL) {
        kms_raise(KMS_ERR_AUDIT, "cannot read the audit segments %s: %s", path ? path : x->dir,
                  strerror(errno));
        free(path);
        return -1;
    }
    free(path);
    seg_entry *names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    struct stat st;
    int r = 0;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (!segment_name(e->d_name) || fstatat(dirfd(d), e->d_name, &st, 0) != 0 ||
            !S_ISREG(st.st_mode)) {
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            seg_entry *p = realloc(names, cap * sizeof *names);
            if (p == NULL) {
                r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
                break;
            }
            names = p;
        }
        seg_entry *s = &names[count++];
        memcpy(s->name, e->d_name, SEGMENT_NAME_LEN + 1);
        s->size = (int64_t)st.st_size;
        s->inode = (int64_t)st.st_ino;
        s->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    closedir(d);
    if (r != 0) {
        free(names);
        return -1;
    }
    if (count > 1) {
        qsort(names, count, sizeof *names, cmp_name);
    }
    *out = names;
    *n = count;
    return 0;
}

/* Opens a segment for its complete lines from offset on (a partial last line is left until it
 * is complete; a line longer than any record comes with p NULL). */
static int segment_lines_open(const index_db *x, const char *segment, uint64_t offset,
                              kms_audit_lines *r)
{
    char *path = kms_strdup_printf("%s/segments/%s", x->dir, segment);
    int rc = kms_audit_lines_open(r, path, offset, NULL, false);
    if (rc != 0) {
        kms_raise(KMS_ERR_AUDIT, "cannot read the audit segment %s: %s", path ? path : segment,
                  strerror(r->err));
    }
    free(path);
    return rc;
}

/* kms_audit_lines_next with a read error raised. */
static int segment_lines_next(kms_audit_lines *r, kms_audit_line *l)
{
    int rc = kms_audit_lines_next(r, l);
    if (rc < 0) {
        kms_raise(KMS_ERR_AUDIT, "cannot read an audit segment: %s", strerror(r->err));
    }
    return rc;
}

/* Hash of the segment's first complete line; "" if it has none or cannot be read (then it
 * matches no stored hash and the index is rebuilt, which reports the error if it persists). */
static void first_line_hash(const index_db *x, const char *segment,
                            char out[KMS_AUDIT_HASH_HEX + 1])
{
    kms_audit_lines r;
    kms_audit_line l;
    out[0] = '\0';
    if (segment_lines_open(x, segment, 0, &r) == 0 && segment_lines_next(&r, &l) == 1) {
        kms_audit_sha256_hex(l.p ? l.p : "", l.p ? l.len : 0, out);
    }
    kms_audit_lines_close(&r);
    kms_error_clear();
}

/* ---- The fields of a record line ----------------------------------------------------------
 * A JSON scanner that picks the fields the index needs out of a record line without building a
 * tree: jansson allocates every value and dominated the catch-up time (about 13 us a line).
 * It accepts what jansson accepts for these fields (escapes, \u surrogate pairs, any key order,
 * the last of repeated keys); a line it cannot read is not indexed, as with jansson, and
 * validate-logs reports it. Decoded strings go into an arena as large as the line, which is
 * enough: each decoded string is no longer than its encoded form. */

#define SCAN_MAX_DEPTH 32
#define MAX_RESOURCES 16
/* The decoded strings and their NULs fit in the line's length; scan_string wants room for one
 * more escape (4 bytes) and a NUL beyond what it has copied. */
#define ARENA_SLACK 8

typedef struct record_fields {
    int64_t sequence; /* -1: none */
    const char *event_time, *event_id, *event_name, *event_source, *event_type;
    const char *user_type, *user_name, *user_arn, *access_key_id;
    bool read_only, error;
    size_t nres;
    const char *res_type[MAX_RESOURCES], *res_arn[MAX_RESOURCES];
} record_fields;

typedef struct jscan {
    const char *p, *end;
    char *arena;
    size_t arena_left;
} jscan;

static void ws(jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        s->p++;
    }
}

static bool eat(jscan *s, char c)
{
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

static bool peek(jscan *s, char c)
{
    ws(s);
    return s->p < s->end && *s->p == c;
}

static bool literal(jscan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
        return false;
    }
    s->p += n;
    return true;
}

static int hex4(jscan *s, uint32_t *v)
{
    if (s->end - s->p < 4) {
        return -1;
    }
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *s->p++;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return -1;
        }
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

/* \uXXXX (after the 'u'), with a surrogate pair, as UTF-8 into out; the number of bytes or -1.
 * U+0000 is refused, as jansson does without JSON_ALLOW_NUL. */
static int unicode_escape(jscan *s, char out[4])
{
    uint32_t c, lo;
    if (hex4(s, &c) != 0 || c == 0 || (c >= 0xDC00 && c <= 0xDFFF)) {
        return -1;
    }
    if (c >= 0xD800 && c <= 0xDBFF) {
        if (!literal(s, "\\u") || hex4(s, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
            return -1;
        }
        c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | c >> 6);
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | c >> 12);
        out[1] = (char)(0x80 | (c >> 6 & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | c >> 18);
    out[1] = (char)(0x80 | (c >> 12 & 0x3F));
    out[2] = (char)(0x80 | (c >> 6 & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Whether p[0..n) is UTF-8 that jansson would accept (no overlongs, surrogates, > U+10FFFF). */
static bool utf8_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
        if (len == 0 || i + len > n || (len == 2 && c < 0xC2)) {
            return false;
        }
        uint32_t v = len == 1 ? c : c & (0xFF >> (len + 1));
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                return false;
            }
            v = v << 6 | (p[i + k] & 0x3F);
        }
        if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) ||
            (len == 4 && (v < 0x10000 || v > 0x10FFFF))) {
            return false;
        }
        i += len;
    }
    return true;
}

/* One escape sequence (after the backslash) decoded into buf; its length or -1. */
static int escape(jscan *s, char buf[4])
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (s->p >= s->end) {
        return -1;
    }
    char e = *s->p++;
    const char *hit = e != '\0' ? strchr(from, e) : NULL;
    if (hit != NULL) {
        buf[0] = to[hit - from];
        return 1;
    }
    return e == 'u' ? unicode_escape(s, buf) : -1;
}

/* A string value decoded into the arena (NUL-terminated); NULL if it is not a valid string. */
static const char *scan_string(jscan *s)
{
    if (!eat(s, '"')) {
        return NULL;
    }
    char *out = s->arena;
    size_t n = 0;
    for (;;) {
        const char *run = s->p;
        while (s->p < s->end && (unsigned char)*s->p >= 0x20 && *s->p != '"' && *s->p != '\\') {
            s->p++;
        }
        size_t m = (size_t)(s->p - run);
        if (s->p == s->end || n + m + 4 > s->arena_left) {
            return NULL;
        }
        memcpy(out + n, run, m);
        n += m;
        char c = *s->p++;
        if (c == '"') {
            break;
        }
        int k = c == '\\' ? escape(s, out + n) : -1; /* else a control character */
        if (k < 0) {
            return NULL;
        }
        n += (size_t)k;
    }
    if (!utf8_ok((const unsigned char *)out, n)) {
        return NULL;
    }
    out[n++] = '\0';
    s->arena += n;
    s->arena_left -= n;
    return out;
}

static int skip_value(jscan *s, int depth);

static int skip_container(jscan *s, char close, bool object, int depth)
{
    if (depth > SCAN_MAX_DEPTH) {
        return -1;
    }
    if (eat(s, close)) {
        return 0;
    }
    do {
        if (object && (scan_string(s) == NULL || !eat(s, ':'))) {
            return -1;
        }
        KMS_GUARD(skip_value(s, depth + 1));
    } while (eat(s, ','));
    return eat(s, close) ? 0 : -1;
}

static int skip_value(jscan *s, int depth)
{
    ws(s);
    if (s->p >= s->end) {
        return -1;
    }
    /* Skipped strings are decoded too (checked like jansson), then dropped from the arena. */
    char *mark = s->arena;
    size_t left = s->arena_left;
    switch (*s->p) {
    case '"':
        if (scan_string(s) == NULL) {
            return -1;
        }
        s->arena = mark;
        s->arena_left = left;
        return 0;
    case '{':
        s->p++;
        return skip_container(s, '}', true, depth);
    case '[':
        s->p++;
        return skip_container(s, ']', false, depth);
    case 't':
        return literal(s, "true") ? 0 : -1;
    case 'f':
        return literal(s, "false") ? 0 : -1;
    case 'n':
        return literal(s, "null") ? 0 : -1;
    default: {
        const char *start = s->p;
        while (s->p < s->end && strchr("0123456789+-.eE", *s->p) != NULL && *s->p != '\0') {
            s->p++;
        }
        return s->p > start ? 0 : -1;
    }
    }
}

/* A string value, or NULL for any other value (skipped). -1 only on bad JSON. */
static int opt_string(jscan *s, const char **out)
{
    *out = NULL;
    if (peek(s, '"')) {
        *out = scan_string(s);
        return *out != NULL ? 0 : -1;
    }
    return skip_value(s, 1);
}

typedef int (*field_fn)(jscan *s, const char *key, record_fields *f, int depth);

/* Walks an object (or skips a value that is not one), calling fn for each member. */
static int walk_object(jscan *s, field_fn fn, record_fields *f, int depth)
{
    if (!peek(s, '{')) {
        return skip_value(s, depth);
    }
    s->p++;
    if (depth > SCAN_MAX_DEPTH) {
        return -1;
    }
    if (eat(s, '}')) {
        return 0;
    }
    do {
        char *mark = s->arena;
        size_t left = s->arena_left;
        const char *key = scan_string(s);
        if (key == NULL || !eat(s, ':')) {
            return -1;
        }
        int r = fn(s, key, f, depth + 1);
        if (r == 1) { /* not a field of ours: the key's bytes go back to the arena */
            s->arena = mark;
            s->arena_left = left;
            r = skip_value(s, depth + 1);
        }
        KMS_GUARD(r);
    } while (eat(s, ','));
    return eat(s, '}') ? 0 : -1;
}

static int identity_field(jscan *s, const char *key, record_fields *f, int depth)
{
    const char **dst = strcmp(key, "type") == 0          ? &f->user_type
                       : strcmp(key, "userName") == 0    ? &f->user_name
                       : strcmp(key, "arn") == 0         ? &f->user_arn
                       : strcmp(key, "accessKeyId") == 0 ? &f->access_key_id
                                                         : NULL;
    return dst != NULL ? opt_string(s, dst) : 1;
}

static int resource_field(jscan *s, const char *key, record_fields *f, int depth)
{
    const char **dst = strcmp(key, "ARN") == 0    ? &f->res_arn[f->nres]
                       : strcmp(key, "type") == 0 ? &f->res_type[f->nres]
                                                  : NULL;
    return dst != NULL ? opt_string(s, dst) : 1;
}

static int chain_field(jscan *s, const char *key, record_fields *f, int depth)
{
    if (strcmp(key, "sequence") != 0) {
        return 1;
    }
    ws(s);
    const char *start = s->p;
    KMS_GUARD(skip_value(s, depth));
    int64_t v = 0;
    for (const char *q = start; q < s->p; q++) {
        if (*q < '0' || *q > '9' || v > (INT64_MAX - (*q - '0')) / 10) {
            f->sequence = -1; /* not a positive integer jansson would give */
            return 0;
        }
        v = v * 10 + (*q - '0');
    }
    f->sequence = v >= 1 ? v : -1;
    return 0;
}

static int resources_value(jscan *s, record_fields *f, int depth)
{
    f->nres = 0;
    if (!peek(s, '[')) {
        return skip_value(s, depth);
    }
    s->p++;
    if (eat(s, ']')) {
        return 0;
    }
    do {
        if (f->nres == MAX_RESOURCES) {
            KMS_GUARD(skip_value(s, depth + 1)); /* more than a KMS record has: not indexed */
            continue;
        }
        f->res_arn[f->nres] = f->res_type[f->nres] = NULL;
        bool object = peek(s, '{');
        KMS_GUARD(walk_object(s, resource_field, f, depth + 1));
        f->nres += object;
    } while (eat(s, ','));
    return eat(s, ']') ? 0 : -1;
}

static int top_field(jscan *s, const char *key, record_fields *f, int depth)
{
    static const struct {
        const char *key;
        size_t offset;
    } strings[] = {
        {"eventTime", offsetof(record_fields, event_time)},
        {"eventID", offsetof(record_fields, event_id)},
        {"eventName", offsetof(record_fields, event_name)},
        {"eventSource", offsetof(record_fields, event_source)},
        {"eventType", offsetof(record_fields, event_type)},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (strcmp(key, strings[i].key) == 0) {
            return opt_string(s, (const char **)((char *)f + strings[i].offset));
        }
    }
    if (strcmp(key, "readOnly") == 0) {
        const char *v = NULL;
        ws(s);
        f->read_only = s->p < s->end && *s->p == 't';
        KMS_GUARD(opt_string(s, &v));
        f->read_only = f->read_only || (v != NULL && strcmp(v, "true") == 0);
        return 0;
    }
    if (strcmp(key, "errorCode") == 0) {
        f->error = !peek(s, 'n');
        return skip_value(s, depth);
    }
    if (strcmp(key, "userIdentity") == 0) {
        f->user_type = f->user_name = f->user_arn = f->access_key_id = NULL;
        return walk_object(s, identity_field, f, depth);
    }
    if (strcmp(key, "resources") == 0) {
        return resources_value(s, f, depth);
    }
    if (strcmp(key, "auditChain") == 0) {
        f->sequence = -1;
        return walk_object(s, chain_field, f, depth);
    }
    return 1;
}

/* 0 and the fields of a record line; -1 if it is not a JSON object. */
static int scan_record(const char *p, size_t len, char *arena, record_fields *f)
{
    jscan s = {p, p + len, arena, len + ARENA_SLACK};
    memset(f, 0, sizeof *f);
    f->sequence = -1;
    if (!peek(&s, '{') || walk_object(&s, top_field, f, 0) != 0) {
        return -1;
    }
    ws(&s);
    return s.p == s.end ? 0 : -1;
}

/* ---- Catch-up ------------------------------------------------------------------------------- */

typedef struct progress {
    char segment[SEGMENT_NAME_LEN + 1];
    int64_t bytes, inode, mtime_ns;
    char hash[KMS_AUDIT_HASH_HEX + 1];
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

typedef struct indexer {
    index_db *x;
    sqlite3_stmt *ins_event, *ins_resource, *set_progress, *find_name, *ins_name;
    char *arena; /* KMS_AUDIT_LINE_MAX + ARENA_SLACK */
    name_slot cache[NAME_CACHE];
} indexer;

static const char *last_part(const char *arn)
{
    const char *slash = strrchr(arn, '/');
    const char *colon = strrchr(arn, ':');
    const char *p = slash ? slash : colon;
    return p ? p + 1 : arn;
}

/* audit.h lookup-events: userName; for AssumedRole the session name; for Root "root". */
static const char *username_of(const record_fields *f)
{
    if (f->user_type != NULL && strcmp(f->user_type, "Root") == 0) {
        return "root";
    }
    if (f->user_type != NULL && strcmp(f->user_type, "AssumedRole") == 0 && f->user_arn != NULL) {
        return last_part(f->user_arn);
    }
    return f->user_name;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static int step_done(const indexer *ix, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : raise_db(ix->x, rc, "cannot write");
}

static uint32_t fnv1a(const char *s, uint32_t h)
{
    for (; *s != '\0'; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h;
}

/* The resource_names id of (type, arn), added if new. */
static int resource_id(indexer *ix, const char *type, const char *arn, int64_t *id)
{
    name_slot *slot = &ix->cache[fnv1a(arn, fnv1a(type, 2166136261u)) % NAME_CACHE];
    if (slot->arn != NULL && strcmp(slot->arn, arn) == 0 && strcmp(slot->type, type) == 0) {
        *id = slot->id;
        return 0;
    }
    bind_text(ix->find_name, 1, arn);
    bind_text(ix->find_name, 2, type);
    int rc = sqlite3_step(ix->find_name);
    *id = rc == SQLITE_ROW ? sqlite3_column_int64(ix->find_name, 0) : -1;
    sqlite3_reset(ix->find_name);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return raise_db(ix->x, rc, "cannot read resource names");
    }
    if (*id < 0) {
        bind_text(ix->ins_name, 1, type);
        bind_text(ix->ins_name, 2, arn);
        bind_text(ix->ins_name, 3, last_part(arn));
        KMS_GUARD(step_done(ix, ix->ins_name));
        *id = sqlite3_last_insert_rowid(ix->x->db);
    }
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

static int index_resources(indexer *ix, const record_fields *f, int64_t t)
{
    for (size_t i = 0; i < f->nres; i++) {
        const char *arn = f->res_arn[i], *type = f->res_type[i] ? f->res_type[i] : "";
        int64_t id;
        if (arn == NULL) {
            continue; /* nothing to look it up by */
        }
        KMS_GUARD(resource_id(ix, type, arn, &id));
        sqlite3_bind_int64(ix->ins_resource, 1, f->sequence);
        sqlite3_bind_int64(ix->ins_resource, 2, (int64_t)i);
        sqlite3_bind_int64(ix->ins_resource, 3, t);
        sqlite3_bind_int64(ix->ins_resource, 4, id);
        bind_text(ix->ins_resource, 5, type);
        KMS_GUARD(step_done(ix, ix->ins_resource));
    }
    return 0;
}

static int index_line(indexer *ix, const char *segment, const char *p, size_t len, uint64_t off)
{
    record_fields f;
    if (scan_record(p, len, ix->arena, &f) != 0 || f.sequence < 1) {
        return 0; /* not a record: validate-logs reports it */
    }
    int64_t t = kms_audit_parse_time(f.event_time);
    t = t < 0 ? 0 : t;
    sqlite3_stmt *st = ix->ins_event;
    sqlite3_bind_int64(st, 1, f.sequence);
    sqlite3_bind_int64(st, 2, t);
    bind_text(st, 3, f.event_id);
    bind_text(st, 4, f.event_name);
    bind_text(st, 5, f.event_source);
    bind_text(st, 6, f.event_type);
    bind_text(st, 7, username_of(&f));
    bind_text(st, 8, f.access_key_id);
    sqlite3_bind_int(st, 9, f.read_only);
    sqlite3_bind_int(st, 10, f.error);
    bind_text(st, 11, segment);
    sqlite3_bind_int64(st, 12, (int64_t)off);
    sqlite3_bind_int64(st, 13, (int64_t)len);
    KMS_GUARD(step_done(ix, st));
    /* A sequence seen before (a copied record) keeps its first row. */
    return sqlite3_changes(ix->x->db) == 1 ? index_resources(ix, &f, t) : 0;
}

/* Indexes the complete lines of seg from offset *bytes on; *bytes moves past them. */
static int index_segment(indexer *ix, const seg_entry *seg, int64_t *bytes, char *hash)
{
    const char *segment = seg->name;
    kms_audit_lines r;
    kms_audit_line l;
    int rc = segment_lines_open(ix->x, segment, (uint64_t)*bytes, &r);
    while (rc == 0 && (rc = segment_lines_next(&r, &l)) == 1) {
        if (l.offset == 0) {
            kms_audit_sha256_hex(l.p ? l.p : "", l.p ? l.len : 0, hash);
        }
        rc = l.p ? index_line(ix, segment, l.p, l.len, l.offset) : 0;
        *bytes = (int64_t)r.pos;
    }
    kms_audit_lines_close(&r);
    if (rc < 0) {
        return -1;
    }
    sqlite3_bind_text(ix->set_progress, 1, segment, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ix->set_progress, 2, *bytes);
    sqlite3_bind_text(ix->set_progress, 3, hash[0] ? hash : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ix->set_progress, 4, seg->inode);
    sqlite3_bind_int64(ix->set_progress, 5, seg->mtime_ns);
    return step_done(ix, ix->set_progress);
}

static int load_progress(const index_db *x, progress **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    KMS_GUARD(prepare(x,
                      "SELECT segment, bytes, first_line_hash, inode, mtime_ns FROM progress "
                      "ORDER BY segment",
                      &st));
    progress *p = NULL;
    size_t count = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            progress *q = realloc(p, cap * sizeof *p);
            if (q == NULL) {
                break;
            }
            p = q;
        }
        progress *e = &p[count++];
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *hash = (const char *)sqlite3_column_text(st, 2);
        snprintf(e->segment, sizeof e->segment, "%s", name ? name : "");
        e->bytes = sqlite3_column_int64(st, 1);
        e->inode = sqlite3_column_int64(st, 3);
        e->mtime_ns = sqlite3_column_int64(st, 4);
        snprintf(e->hash, sizeof e->hash, "%s", hash ? hash : "");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(p);
        return rc == SQLITE_ROW ? kms_raise(KMS_ERR_INTERNAL, "out of memory")
                                : raise_db(x, rc, "cannot read the progress");
    }
    *out = p;
    *n = count;
    return 0;
}

/* Whether the index still describes a prefix of the segments: each indexed segment still
 * there, in the same place of the order, no shorter, and with the same first line (read again
 * only if the file is another one or was written since). */
static bool still_valid(const index_db *x, const seg_entry *segs, size_t nsegs, const progress *p,
                        size_t np)
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
            first_line_hash(x, segs[i].name, hash);
            if (strcmp(hash, p[i].hash) != 0) {
                return false;
            }
        }
    }
    return true;
}

static int prepare_indexer(index_db *x, indexer *ix)
{
    memset(ix, 0, sizeof *ix);
    ix->x = x;
    ix->arena = malloc(KMS_AUDIT_LINE_MAX + ARENA_SLACK);
    KMS_ENSURE(ix->arena != NULL, KMS_ERR_INTERNAL, "out of memory");
    KMS_GUARD(prepare(x,
                      "INSERT OR IGNORE INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                      "?10, ?11, ?12, ?13)",
                      &ix->ins_event));
    KMS_GUARD(prepare(x, "INSERT OR IGNORE INTO resources VALUES (?1, ?2, ?3, ?4, ?5)",
                      &ix->ins_resource));
    KMS_GUARD(
        prepare(x, "SELECT id FROM resource_names WHERE arn = ?1 AND type = ?2", &ix->find_name));
    KMS_GUARD(prepare(x, "INSERT INTO resource_names (type, arn, name) VALUES (?1, ?2, ?3)",
                      &ix->ins_name));
    return prepare(x, "INSERT OR REPLACE INTO progress VALUES (?1, ?2, ?3, ?4, ?5)",
                   &ix->set_progress);
}

static void finalize_indexer(indexer *ix)
{
    sqlite3_finalize(ix->ins_event);
    sqlite3_finalize(ix->ins_resource);
    sqlite3_finalize(ix->set_progress);
    sqlite3_finalize(ix->find_name);
    sqlite3_finalize(ix->ins_name);
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

static int catch_up_locked(index_db *x)
{
    seg_entry *segs = NULL;
    progress *p = NULL;
    size_t nsegs = 0, np = 0;
    indexer ix = {0};
    int r = -1;
    if (list_segments(x, &segs, &nsegs) != 0 || load_progress(x, &p, &np) != 0) {
        goto out;
    }
    if (!still_valid(x, segs, nsegs, p, np)) {
        np = 0;
        if (exec(x,
                 "DELETE FROM events; DELETE FROM resources; DELETE FROM resource_names;"
                 "DELETE FROM progress;",
                 "cannot reset") != 0) {
            goto out;
        }
    }
    bool bulk = np == 0 && new_bytes(segs, nsegs, p, np) > BULK_BYTES;
    /* A large rebuild: dirty pages stay in memory until the commit instead of spilling into
     * the WAL again and again, and the index builds sort in memory. */
    if ((bulk && (exec(x, BULK_PRAGMAS, "cannot configure the rebuild") != 0 ||
                  exec(x, sql_drop_indexes, "cannot drop the indexes") != 0)) ||
        prepare_indexer(x, &ix) != 0) {
        goto out;
    }
    for (size_t i = 0; i < nsegs; i++) {
        int64_t bytes = i < np ? p[i].bytes : 0;
        char hash[KMS_AUDIT_HASH_HEX + 1] = "";
        if (i < np && segs[i].size == bytes && unchanged(&segs[i], &p[i])) {
            continue;
        }
        if (i < np) {
            memcpy(hash, p[i].hash, sizeof hash);
        }
        if (index_segment(&ix, &segs[i], &bytes, hash) != 0) {
            goto out;
        }
    }
    if (bulk && exec(x, sql_indexes, "cannot create the indexes") != 0) {
        goto out;
    }
    r = 0;
out:
    finalize_indexer(&ix);
    free(p);
    free(segs);
    return r;
}

static int catch_up(index_db *x)
{
    int r = exec(x, "BEGIN IMMEDIATE", "cannot lock for catch-up");
    if (r == 0) {
        r = catch_up_locked(x);
        r = r != 0 ? r : exec(x, "COMMIT", "cannot commit the catch-up");
        if (r != 0) {
            sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
        }
    }
    return r;
}

/* ---- lookup-events ------------------------------------------------------------------------ */

typedef struct attribute {
    const char *key;
    const char *table, *column; /* the column compared with the value */
} attribute;

/* AWS LookupAttribute keys, case-sensitive as in CloudTrail. ResourceName is by resource id. */
static const attribute ATTRIBUTES[] = {
    {"EventName", "events", "event_name"},     {"Username", "events", "username"},
    {"ResourceName", "resources", "resource"}, {"EventSource", "events", "event_source"},
    {"ReadOnly", "events", "read_only"},       {"AccessKeyId", "events", "access_key_id"},
    {"EventId", "events", "event_id"},         {"ResourceType", "resources", "type"},
};

/* Resource ids named by a ResourceName (its ARN or key id): usually one. More than this many
 * and the lookup sorts instead of merging one index walk per id. */
#define MERGE_MAX 32
#define PAGE_WHERE "event_time BETWEEN ?2 AND ?3 AND event_time <= ?4"
#define PAGE_ORDER " ORDER BY event_time DESC, sequence DESC"

#define ATTRIBUTE_COUNT (sizeof ATTRIBUTES / sizeof ATTRIBUTES[0])

static int find_attribute(const kms_audit_query *q, const attribute **out)
{
    *out = NULL;
    if (q->attribute_key == NULL) {
        return 0;
    }
    for (size_t i = 0; i < ATTRIBUTE_COUNT; i++) {
        if (strcmp(q->attribute_key, ATTRIBUTES[i].key) == 0) {
            *out = &ATTRIBUTES[i];
        }
    }
    KMS_ENSURE(*out != NULL, KMS_ERR_VALIDATION,
               "LookupAttributes AttributeKey '%s' is not one of EventName, Username, "
               "ResourceName, EventSource, ReadOnly, AccessKeyId, EventId, ResourceType",
               q->attribute_key);
    KMS_ENSURE(q->attribute_value != NULL && q->attribute_value[0] != '\0', KMS_ERR_VALIDATION,
               "LookupAttributes AttributeValue for %s must not be empty", q->attribute_key);
    KMS_ENSURE(strcmp((*out)->key, "ReadOnly") != 0 || strcmp(q->attribute_value, "true") == 0 ||
                   strcmp(q->attribute_value, "false") == 0,
               KMS_ERR_VALIDATION,
               "LookupAttributes AttributeValue for ReadOnly must be true "
               "or false");
    return 0;
}

/* NextToken: base64 of "<event_time>.<sequence>" of the last event returned. */
static char *token_encode(int64_t t, int64_t seq)
{
    char text[48];
    int n = snprintf(text, sizeof text, "%" PRId64 ".%" PRId64, t, seq);
    return kms_base64_encode((const uint8_t *)text, (size_t)n);
}

static int token_decode(const char *token, int64_t *t, int64_t *seq)
{
    uint8_t *raw = NULL;
    size_t n = 0;
    bool ok = strlen(token) <= 64 && kms_base64_decode(token, "NextToken", false, &raw, &n) == 0;
    char text[65] = "";
    if (ok) {
        memcpy(text, raw, n < 64 ? n : 64);
        free(raw);
        char *end = NULL;
        errno = 0;
        long long a = strtoll(text, &end, 10);
        long long b = 0;
        ok = errno == 0 && end != text && *end == '.' && a >= 0;
        if (ok) {
            const char *rest = end + 1;
            b = strtoll(rest, &end, 10);
            ok = errno == 0 && end != rest && *end == '\0' && b >= 1 && strlen(text) == n;
        }
        *t = a;
        *seq = b;
    }
    KMS_ENSURE(ok, KMS_ERR_VALIDATION,
               "InvalidNextToken: the NextToken is not one that lookup-events returned");
    return 0;
}

/* The record line itself, read back from its segment; NULL if it cannot be read. */
static json_t *read_record(const index_db *x, const char *segment, int64_t off, int64_t len)
{
    if (segment == NULL || !segment_name(segment) || len < 0 || (size_t)len > KMS_AUDIT_LINE_MAX) {
        return NULL;
    }
    char *path = kms_strdup_printf("%s/segments/%s", x->dir, segment);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    free(path);
    char *buf = fd >= 0 ? malloc((size_t)len + 1) : NULL;
    json_t *out = NULL;
    if (buf != NULL && pread(fd, buf, (size_t)len, (off_t)off) == (ssize_t)len) {
        out = json_stringn(buf, (size_t)len); /* NULL if not UTF-8 (tampered) */
    }
    free(buf);
    if (fd >= 0) {
        close(fd);
    }
    return out;
}

static void set_text(json_t *o, const char *k, sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    if (s != NULL) {
        json_object_set_new(o, k, json_string(s));
    }
}

static json_t *event_resources(const index_db *x, sqlite3_stmt *st, int64_t seq)
{
    json_t *arr = json_array();
    sqlite3_bind_int64(st, 1, seq);
    while (arr != NULL && sqlite3_step(st) == SQLITE_ROW) {
        json_t *r = json_object();
        set_text(r, "ResourceType", st, 0);
        set_text(r, "ResourceName", st, 1);
        json_array_append_new(arr, r);
    }
    sqlite3_reset(st);
    return arr;
}

/* One event of the answer, from the events row of seq. */
static int event_json(const index_db *x, sqlite3_stmt *ev, sqlite3_stmt *res, int64_t seq,
                      json_t *events)
{
    sqlite3_bind_int64(ev, 1, seq);
    int rc = sqlite3_step(ev);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(ev);
        return rc == SQLITE_DONE ? 0 : raise_db(x, rc, "cannot read an event");
    }
    char when[32];
    kms_time_iso8601(sqlite3_column_int64(ev, 1), when);
    json_t *e = json_object();
    set_text(e, "EventId", ev, 2);
    set_text(e, "EventName", ev, 3);
    json_object_set_new(e, "ReadOnly", json_string(sqlite3_column_int(ev, 7) ? "true" : "false"));
    set_text(e, "AccessKeyId", ev, 6);
    json_object_set_new(e, "EventTime", json_string(when));
    set_text(e, "EventSource", ev, 4);
    set_text(e, "Username", ev, 5);
    json_object_set_new(e, "Resources", event_resources(x, res, seq));
    json_t *line = read_record(x, (const char *)sqlite3_column_text(ev, 8),
                               sqlite3_column_int64(ev, 9), sqlite3_column_int64(ev, 10));
    if (line != NULL) {
        json_object_set_new(e, "CloudTrailEvent", line);
    }
    sqlite3_reset(ev);
    if (e == NULL || json_array_append_new(events, e) != 0) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

static int resource_ids(const index_db *x, const char *value, int64_t *ids, size_t *n)
{
    sqlite3_stmt *st = NULL;
    KMS_GUARD(prepare(x,
                      "SELECT id FROM resource_names WHERE arn = ?1 UNION "
                      "SELECT id FROM resource_names WHERE name = ?1 LIMIT ?2",
                      &st));
    bind_text(st, 1, value);
    sqlite3_bind_int(st, 2, MERGE_MAX + 1);
    int rc;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ids[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : raise_db(x, rc, "cannot look up resource names");
}

/* ResourceName: one index walk per resource id, merged by SQLite (MERGE UNION), newest first;
 * NULL with *none when nothing has that name. */
static char *resource_name_sql(const index_db *x, const char *value, bool *none)
{
    int64_t ids[MERGE_MAX + 1];
    size_t n = 0;
    if (resource_ids(x, value, ids, &n) != 0) {
        return NULL;
    }
    *none = n == 0;
    if (n == 0 || n > MERGE_MAX) {
        return n == 0 ? NULL
                      : kms_strdup_printf("SELECT event_time, sequence FROM resources WHERE "
                                          "resource IN (SELECT id FROM resource_names WHERE "
                                          "arn = ?1 OR name = ?1) AND " PAGE_WHERE PAGE_ORDER);
    }
    char *sql = NULL;
    for (size_t i = 0; i < n; i++) {
        char *next = kms_strdup_printf("%s%sSELECT event_time, sequence FROM resources WHERE "
                                       "resource = %" PRId64 " AND " PAGE_WHERE,
                                       sql ? sql : "", sql ? " UNION " : "", ids[i]);
        free(sql);
        if ((sql = next) == NULL) {
            return NULL;
        }
    }
    char *out = kms_strdup_printf("%s ORDER BY 1 DESC, 2 DESC", sql);
    free(sql);
    return out;
}

/* The query that yields (event_time, sequence) newest first for q. */
static char *page_sql(const index_db *x, const kms_audit_query *q, const attribute *a, bool *none)
{
    *none = false;
    if (a == NULL) {
        return kms_strdup_printf(
            "SELECT event_time, sequence FROM events WHERE " PAGE_WHERE PAGE_ORDER);
    }
    if (strcmp(a->key, "ResourceName") == 0) {
        return resource_name_sql(x, q->attribute_value, none);
    }
    return kms_strdup_printf(
        "SELECT event_time, sequence FROM %s WHERE %s = ?1 AND " PAGE_WHERE PAGE_ORDER, a->table,
        a->column);
}

typedef struct page {
    int64_t seqs[MAX_RESULTS];
    int64_t times[MAX_RESULTS];
    size_t n;
    bool more;
} page;

/* Steps through (event_time, sequence) rows past the token, skipping repeats, until a page
 * and one more are found. */
static int page_fill(const index_db *x, sqlite3_stmt *st, int64_t tok_t, int64_t tok_seq,
                     size_t limit, page *pg)
{
    int rc;
    int64_t last_t = -1, last_seq = -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(st, 0), seq = sqlite3_column_int64(st, 1);
        if ((t == tok_t && seq >= tok_seq) || (t == last_t && seq == last_seq)) {
            continue;
        }
        last_t = t;
        last_seq = seq;
        if (pg->n == limit) {
            pg->more = true;
            return 0;
        }
        pg->times[pg->n] = t;
        pg->seqs[pg->n++] = seq;
    }
    return rc == SQLITE_DONE ? 0 : raise_db(x, rc, "cannot look up events");
}

static int lookup_page(const index_db *x, const kms_audit_query *q, const attribute *a,
                       int64_t tok_t, int64_t tok_seq, page *pg)
{
    bool none = false;
    char *sql = page_sql(x, q, a, &none);
    sqlite3_stmt *st = NULL;
    if (none) {
        return 0;
    }
    if (sql == NULL || prepare(x, sql, &st) != 0) {
        free(sql);
        return -1;
    }
    free(sql);
    if (a != NULL && strcmp(a->key, "ReadOnly") == 0) {
        sqlite3_bind_int(st, 1, strcmp(q->attribute_value, "true") == 0);
    } else if (a != NULL) {
        bind_text(st, 1, q->attribute_value);
    }
    sqlite3_bind_int64(st, 2, q->start);
    sqlite3_bind_int64(st, 3, q->end > 0 ? q->end : INT64_MAX);
    sqlite3_bind_int64(st, 4, tok_t);
    size_t limit = q->max_results > 0 ? (size_t)q->max_results : MAX_RESULTS;
    int r = page_fill(x, st, tok_t, tok_seq, limit, pg);
    sqlite3_finalize(st);
    return r;
}

static int lookup_answer(const index_db *x, const page *pg, json_t **result)
{
    sqlite3_stmt *ev = NULL, *res = NULL;
    json_t *events = json_array();
    int r = -1;
    if (prepare(x,
                "SELECT sequence, event_time, event_id, event_name, event_source, username, "
                "access_key_id, read_only, segment, offset, length FROM events WHERE sequence = ?1",
                &ev) != 0 ||
        prepare(x,
                "SELECT n.type, n.arn FROM resources r JOIN resource_names n ON n.id = r.resource "
                "WHERE r.sequence = ?1 ORDER BY r.position",
                &res) != 0) {
        goto out;
    }
    for (size_t i = 0; i < pg->n; i++) {
        if (event_json(x, ev, res, pg->seqs[i], events) != 0) {
            goto out;
        }
    }
    json_t *out = json_pack("{s:O}", "Events", events);
    if (out != NULL && pg->more) {
        char *token = token_encode(pg->times[pg->n - 1], pg->seqs[pg->n - 1]);
        if (token == NULL || json_object_set_new(out, "NextToken", json_string(token)) != 0) {
            json_decref(out);
            out = NULL;
        }
        free(token);
    }
    if (out == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    *result = out;
    r = 0;
out:
    json_decref(events);
    sqlite3_finalize(ev);
    sqlite3_finalize(res);
    return r;
}

int kms_audit_lookup(const char *dir, const kms_audit_query *q, json_t **result)
{
    *result = NULL;
    const attribute *a = NULL;
    int64_t tok_t = INT64_MAX, tok_seq = INT64_MAX;
    KMS_ENSURE(dir != NULL && q != NULL, KMS_ERR_VALIDATION, "lookup-events needs a query");
    KMS_GUARD(find_attribute(q, &a));
    KMS_ENSURE(q->max_results >= 0 && q->max_results <= MAX_RESULTS, KMS_ERR_VALIDATION,
               "MaxResults must be between 1 and 50");
    KMS_ENSURE(q->start >= 0 && q->end >= 0 && (q->end == 0 || q->start <= q->end),
               KMS_ERR_VALIDATION, "StartTime must not be after EndTime");
    if (q->next_token != NULL) {
        KMS_GUARD(token_decode(q->next_token, &tok_t, &tok_seq));
    }
    index_db x;
    page pg = {.n = 0};
    int r = -1;
    if (index_open(&x, dir) == 0 && catch_up(&x) == 0 &&
        lookup_page(&x, q, a, tok_t, tok_seq, &pg) == 0 && lookup_answer(&x, &pg, result) == 0) {
        r = 0;
    }
    index_close(&x);
    return r;
}

/* ---- usage-report -------------------------------------------------------------------------- */

/* Requests descending, then the name field (arg). */
static int cmp_usage(const void *a, const void *b, void *arg)
{
    const char *name_key = arg;
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t rx = json_integer_value(json_object_get(x, "Requests"));
    json_int_t ry = json_integer_value(json_object_get(y, "Requests"));
    if (rx != ry) {
        return rx < ry ? 1 : -1;
    }
    const char *nx = json_string_value(json_object_get(x, name_key));
    const char *ny = json_string_value(json_object_get(y, name_key));
    return strcmp(nx ? nx : "", ny ? ny : "");
}

/* Sorts a json array in place (jansson has no sort). */
static json_t *sorted(json_t *arr, const char *name_key)
{
    size_t n = json_array_size(arr);
    json_t **items = calloc(n ? n : 1, sizeof *items);
    json_t *out = json_array();
    if (items != NULL && out != NULL) {
        for (size_t i = 0; i < n; i++) {
            items[i] = json_array_get(arr, i);
        }
        qsort_r(items, n, sizeof *items, cmp_usage, (void *)name_key);
        for (size_t i = 0; i < n; i++) {
            json_array_append(out, items[i]);
        }
    }
    free(items);
    json_decref(arr);
    return out;
}

static const char sql_operations[] =
    "SELECT event_source, event_name, count(*), sum(error) FROM events "
    "WHERE event_time BETWEEN ?1 AND ?2 AND coalesce(event_type, '') <> 'AwsServiceEvent' "
    "GROUP BY event_source, event_name";

static const char sql_keys[] =
    "SELECT n.arn, e.event_name, count(*), sum(e.error) FROM ("
    "  SELECT DISTINCT resource, sequence FROM resources"
    "  WHERE type = 'AWS::KMS::Key' AND event_time BETWEEN ?1 AND ?2) r"
    " JOIN resource_names n ON n.id = r.resource JOIN events e ON e.sequence = r.sequence"
    " WHERE coalesce(e.event_type, '') <> 'AwsServiceEvent'"
    " GROUP BY n.arn, e.event_name ORDER BY n.arn";

static int usage_operations(const index_db *x, int64_t start, int64_t end, json_t *ops,
                            json_int_t *total)
{
    sqlite3_stmt *st = NULL;
    KMS_GUARD(prepare(x, sql_operations, &st));
    sqlite3_bind_int64(st, 1, start);
    sqlite3_bind_int64(st, 2, end);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *src = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        json_int_t n = sqlite3_column_int64(st, 2);
        *total += n;
        json_array_append_new(ops, json_pack("{s:s?, s:s?, s:I, s:I}", "EventSource", src,
                                             "EventName", name, "Requests", n, "Errors",
                                             (json_int_t)sqlite3_column_int64(st, 3)));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : raise_db(x, rc, "cannot count operations");
}

static int usage_keys(const index_db *x, int64_t start, int64_t end, json_t *keys)
{
    sqlite3_stmt *st = NULL;
    KMS_GUARD(prepare(x, sql_keys, &st));
    sqlite3_bind_int64(st, 1, start);
    sqlite3_bind_int64(st, 2, end);
    json_t *key = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *arn = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        json_int_t n = sqlite3_column_int64(st, 2);
        if (key == NULL || strcmp(json_string_value(json_object_get(key, "KeyArn")), arn) != 0) {
            key = json_pack("{s:s, s:I, s:[]}", "KeyArn", arn, "Requests", (json_int_t)0,
                            "Operations");
            json_array_append_new(keys, key);
        }
        json_t *req = json_object_get(key, "Requests");
        json_integer_set(req, json_integer_value(req) + n);
        json_array_append_new(json_object_get(key, "Operations"),
                              json_pack("{s:s?, s:I, s:I}", "EventName", name, "Requests", n,
                                        "Errors", (json_int_t)sqlite3_column_int64(st, 3)));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : raise_db(x, rc, "cannot count key usage");
}

static json_t *time_or_null(int64_t t)
{
    char iso[32];
    if (t == 0) {
        return json_null();
    }
    kms_time_iso8601(t, iso);
    return json_string(iso);
}

int kms_audit_usage_report(const char *dir, int64_t start, int64_t end, json_t **report)
{
    *report = NULL;
    KMS_ENSURE(dir != NULL && start >= 0 && end >= 0 && (end == 0 || start <= end),
               KMS_ERR_VALIDATION, "usage-report: StartTime must not be after EndTime");
    index_db x;
    json_t *ops = json_array(), *keys = json_array();
    json_int_t total = 0;
    int64_t hi = end > 0 ? end : INT64_MAX;
    int r = -1;
    if (index_open(&x, dir) == 0 && catch_up(&x) == 0 &&
        usage_operations(&x, start, hi, ops, &total) == 0 && usage_keys(&x, start, hi, keys) == 0) {
        for (size_t i = 0; i < json_array_size(keys); i++) {
            json_t *k = json_array_get(keys, i);
            json_object_set_new(k, "Operations",
                                sorted(json_incref(json_object_get(k, "Operations")), "EventName"));
        }
        *report = json_pack("{s:o, s:o, s:I, s:o, s:o}", "StartTime", time_or_null(start),
                            "EndTime", time_or_null(end), "Requests", total, "Keys",
                            sorted(json_incref(keys), "KeyArn"), "Operations",
                            sorted(json_incref(ops), "EventName"));
        r = *report != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    json_decref(ops);
    json_decref(keys);
    index_close(&x);
    return r;
}
