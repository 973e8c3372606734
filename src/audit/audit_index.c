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
 * events in (newest first); NextToken is the position of the last event returned.
 *
 * This file holds the two queries; opening the index and the catch-up are in
 * audit_index_catch_up.c, the scanner of record lines in audit_index_scan.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_index_internal.h"
#include "util/util.h"

#define MAX_RESULTS 50

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
json_t *kms_audit_index_read_record(const kms_audit_index *x, const char *segment, int64_t off,
                                    int64_t len)
{
    if (segment == NULL || !kms_audit_index_segment_name(segment) || len < 0 ||
        (size_t)len > KMS_AUDIT_LINE_MAX) {
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

static const char sql_event_get[] =
    "SELECT sequence, event_time, event_id, event_name, event_source, username, access_key_id, "
    "read_only, segment, offset, length FROM events WHERE sequence = ?1";
static const char sql_event_resources[] =
    "SELECT n.type, n.arn FROM resources r JOIN resource_names n ON n.id = r.resource "
    "WHERE r.sequence = ?1 ORDER BY r.position";
static const char sql_resource_ids[] = "SELECT id FROM resource_names WHERE arn = ?1 UNION "
                                       "SELECT id FROM resource_names WHERE name = ?1 LIMIT ?2";

/* o[k] = the text of column col, unless it is NULL. */
static int set_text(json_t *o, const char *k, kms_db_stmt *st, int col)
{
    if (kms_db_column_is_null(st, col)) {
        return 0;
    }
    KMS_ENSURE(json_object_set_new(o, k, json_string(kms_db_column_text(st, col))) == 0,
               KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

static int event_resources(kms_db_conn *c, int64_t seq, json_t **out)
{
    kms_db_stmt *st = NULL;
    json_t *arr = json_array();
    int r = -1;
    if (arr == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if ((r = kms_db_open(c, sql_event_resources, KMS_DB_PARAMS(kms_db_int64(seq)), &st)) != 0) {
        goto out;
    }
    int s;
    while ((s = kms_db_step(st, "cannot read the resources of an event")) == 1) {
        json_t *res = json_object();
        if (res == NULL || json_array_append_new(arr, res) != 0) {
            r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        if ((r = set_text(res, "ResourceType", st, 0)) != 0 ||
            (r = set_text(res, "ResourceName", st, 1)) != 0) {
            goto out;
        }
    }
    r = s < 0 ? -1 : 0;
out:
    kms_db_reset(st);
    if (r == 0) {
        *out = arr;
    } else {
        json_decref(arr);
    }
    return r;
}

/* The fields of one event from its events row. */
static int event_fields(const kms_audit_index *x, kms_db_stmt *ev, json_t *e)
{
    char when[32];
    kms_time_iso8601(kms_db_column_int64(ev, 1), when);
    KMS_GUARD(set_text(e, "EventId", ev, 2));
    KMS_GUARD(set_text(e, "EventName", ev, 3));
    KMS_ENSURE(json_object_set_new(e, "ReadOnly",
                                   json_string(kms_db_column_int64(ev, 7) ? "true" : "false")) == 0,
               KMS_ERR_INTERNAL, "out of memory");
    KMS_GUARD(set_text(e, "AccessKeyId", ev, 6));
    KMS_ENSURE(json_object_set_new(e, "EventTime", json_string(when)) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    KMS_GUARD(set_text(e, "EventSource", ev, 4));
    KMS_GUARD(set_text(e, "Username", ev, 5));
    return 0;
}

/* CloudTrailEvent, the record's own line, last (after Resources, as CloudTrail orders them). */
static int event_record(const kms_audit_index *x, kms_db_stmt *ev, json_t *e)
{
    const char *segment = kms_db_column_is_null(ev, 8) ? NULL : kms_db_column_text(ev, 8);
    json_t *line = kms_audit_index_read_record(x, segment, kms_db_column_int64(ev, 9),
                                               kms_db_column_int64(ev, 10));
    KMS_ENSURE(line == NULL || json_object_set_new(e, "CloudTrailEvent", line) == 0,
               KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

/* One event of the answer, from the events row of seq. */
static int event_json(const kms_audit_index *x, int64_t seq, json_t *events)
{
    kms_db_stmt *ev = NULL;
    json_t *e = NULL;
    json_t *res = NULL;
    int r = -1;
    int found = kms_db_first(x->c, sql_event_get, KMS_DB_PARAMS(kms_db_int64(seq)), &ev,
                             "cannot read an event");
    if (found <= 0) {
        r = found;
        goto out;
    }
    if ((e = json_object()) == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if ((r = event_fields(x, ev, e)) != 0) {
        goto out;
    }
    if ((r = event_resources(x->c, seq, &res)) != 0) {
        goto out;
    }
    if (json_object_set_new(e, "Resources", res) != 0) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if ((r = event_record(x, ev, e)) != 0) {
        goto out;
    }
    if (json_array_append(events, e) != 0) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_db_reset(ev);
    json_decref(e);
    return r;
}

static int resource_ids(const kms_audit_index *x, const char *value, int64_t *ids, size_t *n)
{
    kms_db_stmt *st = NULL;
    *n = 0;
    KMS_GUARD(kms_db_open(x->c, sql_resource_ids,
                          KMS_DB_PARAMS(kms_db_text(value), kms_db_int64(MERGE_MAX + 1)), &st));
    int s;
    while ((s = kms_db_step(st, "cannot look up resource names")) == 1) {
        ids[(*n)++] = kms_db_column_int64(st, 0);
    }
    kms_db_reset(st);
    return s < 0 ? -1 : 0;
}

/* ResourceName: one index walk per resource id, merged by SQLite (MERGE UNION), newest first;
 * NULL with *none when nothing has that name. */
static char *resource_name_sql(const kms_audit_index *x, const char *value, bool *none)
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
static char *page_sql(const kms_audit_index *x, const kms_audit_query *q, const attribute *a,
                      bool *none)
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
static int page_fill(kms_db_stmt *st, int64_t tok_t, int64_t tok_seq, size_t limit, page *pg)
{
    int s;
    int64_t last_t = -1, last_seq = -1;
    while ((s = kms_db_step(st, "cannot look up events")) == 1) {
        int64_t t = kms_db_column_int64(st, 0), seq = kms_db_column_int64(st, 1);
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
    return s < 0 ? -1 : 0;
}

/* ?1 the attribute's value (NULL without an attribute), as PAGE_WHERE compares it. */
static kms_db_value page_attribute(const kms_audit_query *q, const attribute *a)
{
    if (a != NULL && strcmp(a->key, "ReadOnly") == 0) {
        return kms_db_int64(strcmp(q->attribute_value, "true") == 0);
    }
    return a != NULL ? kms_db_text(q->attribute_value) : kms_db_null();
}

static int lookup_page(const kms_audit_index *x, const kms_audit_query *q, const attribute *a,
                       int64_t tok_t, int64_t tok_seq, page *pg)
{
    bool none = false;
    char *sql = page_sql(x, q, a, &none);
    kms_db_stmt *st = NULL;
    int r = -1;
    if (none) {
        r = 0;
        goto out;
    }
    if (sql == NULL) {
        goto out;
    }
    /* ?1 the attribute's value, ?2 .. ?4 the time range and the token's time (PAGE_WHERE). */
    if ((r = kms_db_open_once(x->c, sql,
                              KMS_DB_PARAMS(page_attribute(q, a), kms_db_int64(q->start),
                                            kms_db_int64(q->end > 0 ? q->end : INT64_MAX),
                                            kms_db_int64(tok_t)),
                              &st)) != 0) {
        goto out;
    }
    size_t limit = q->max_results > 0 ? (size_t)q->max_results : MAX_RESULTS;
    r = page_fill(st, tok_t, tok_seq, limit, pg);
out:
    kms_db_stmt_free(st);
    free(sql);
    return r;
}

static int lookup_answer(const kms_audit_index *x, const page *pg, json_t **result)
{
    json_t *events = json_array();
    json_t *out = NULL;
    char *token = NULL;
    int r = -1;
    if (events == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < pg->n; i++) {
        if ((r = event_json(x, pg->seqs[i], events)) != 0) {
            goto out;
        }
    }
    out = json_pack("{s:O}", "Events", events);
    if (out != NULL && pg->more) {
        token = token_encode(pg->times[pg->n - 1], pg->seqs[pg->n - 1]);
        if (token == NULL || json_object_set_new(out, "NextToken", json_string(token)) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    if (out == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    *result = out;
    r = 0;
out:
    free(token);
    json_decref(events);
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
    kms_audit_index x = {0};
    page pg = {.n = 0};
    int r = -1;
    if (kms_audit_index_open(&x, dir, q->trust != NULL ? q->trust->index : NULL) == 0 &&
        kms_audit_index_catch_up(&x, q->trust) == 0 &&
        lookup_page(&x, q, a, tok_t, tok_seq, &pg) == 0 && lookup_answer(&x, &pg, result) == 0) {
        r = 0;
    }
    kms_audit_index_close(&x);
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

/* ?1 start, ?2 end of the report. */
static int usage_open(const kms_audit_index *x, const char *sql, int64_t start, int64_t end,
                      kms_db_stmt **st)
{
    return kms_db_open(x->c, sql, KMS_DB_PARAMS(kms_db_int64(start), kms_db_int64(end)), st);
}

static int usage_operations(const kms_audit_index *x, int64_t start, int64_t end, json_t *ops,
                            json_int_t *total)
{
    kms_db_stmt *st = NULL;
    KMS_GUARD(usage_open(x, sql_operations, start, end, &st));
    int s;
    while ((s = kms_db_step(st, "cannot count operations")) == 1) {
        json_int_t n = kms_db_column_int64(st, 2);
        *total += n;
        json_t *op =
            json_pack("{s:s?, s:s?, s:I, s:I}", "EventSource",
                      kms_db_column_is_null(st, 0) ? NULL : kms_db_column_text(st, 0), "EventName",
                      kms_db_column_is_null(st, 1) ? NULL : kms_db_column_text(st, 1), "Requests",
                      n, "Errors", (json_int_t)kms_db_column_int64(st, 3));
        if (op == NULL || json_array_append_new(ops, op) != 0) {
            kms_db_reset(st);
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    kms_db_reset(st);
    return s < 0 ? -1 : 0;
}

/* Adds one (key, operation) row to keys, whose last entry is the key's when it has one. */
static int usage_key_row(kms_db_stmt *st, json_t *keys)
{
    const char *arn = kms_db_column_text(st, 0);
    json_int_t n = kms_db_column_int64(st, 2);
    json_t *key = json_array_get(keys, json_array_size(keys) - 1);
    if (key == NULL || strcmp(json_string_value(json_object_get(key, "KeyArn")), arn) != 0) {
        key = json_pack("{s:s, s:I, s:[]}", "KeyArn", arn, "Requests", (json_int_t)0, "Operations");
        KMS_ENSURE(key != NULL && json_array_append_new(keys, key) == 0, KMS_ERR_INTERNAL,
                   "out of memory");
    }
    json_t *req = json_object_get(key, "Requests");
    json_t *op = json_pack("{s:s?, s:I, s:I}", "EventName",
                           kms_db_column_is_null(st, 1) ? NULL : kms_db_column_text(st, 1),
                           "Requests", n, "Errors", (json_int_t)kms_db_column_int64(st, 3));
    KMS_ENSURE(op != NULL && json_integer_set(req, json_integer_value(req) + n) == 0 &&
                   json_array_append_new(json_object_get(key, "Operations"), op) == 0,
               KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

static int usage_keys(const kms_audit_index *x, int64_t start, int64_t end, json_t *keys)
{
    kms_db_stmt *st = NULL;
    KMS_GUARD(usage_open(x, sql_keys, start, end, &st));
    int s = 0;
    int r = 0;
    while (r == 0 && (s = kms_db_step(st, "cannot count key usage")) == 1) {
        r = usage_key_row(st, keys);
    }
    kms_db_reset(st);
    return r != 0 || s < 0 ? -1 : 0;
}

/* Each key's operations by requests, then name. */
static int usage_sort_keys(json_t *keys)
{
    for (size_t i = 0; i < json_array_size(keys); i++) {
        json_t *k = json_array_get(keys, i);
        json_t *ops = sorted(json_incref(json_object_get(k, "Operations")), "EventName");
        KMS_ENSURE(json_object_set_new(k, "Operations", ops) == 0, KMS_ERR_INTERNAL,
                   "out of memory");
    }
    return 0;
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

int kms_audit_usage_report(const char *dir, const kms_audit_trust *trust, int64_t start,
                           int64_t end, json_t **report)
{
    *report = NULL;
    KMS_ENSURE(dir != NULL && start >= 0 && end >= 0 && (end == 0 || start <= end),
               KMS_ERR_VALIDATION, "usage-report: StartTime must not be after EndTime");
    kms_audit_index x = {0};
    json_t *ops = json_array(), *keys = json_array();
    json_int_t total = 0;
    int64_t hi = end > 0 ? end : INT64_MAX;
    int r = -1;
    if (ops == NULL || keys == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    } else if (kms_audit_index_open(&x, dir, trust != NULL ? trust->index : NULL) == 0 &&
               kms_audit_index_catch_up(&x, trust) == 0 &&
               usage_operations(&x, start, hi, ops, &total) == 0 &&
               usage_keys(&x, start, hi, keys) == 0) {
        r = usage_sort_keys(keys);
    }
    if (r == 0) {
        *report = json_pack("{s:o, s:o, s:I, s:o, s:o}", "StartTime", time_or_null(start),
                            "EndTime", time_or_null(end), "Requests", total, "Keys",
                            sorted(json_incref(keys), "KeyArn"), "Operations",
                            sorted(json_incref(ops), "EventName"));
        r = *report != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    json_decref(ops);
    json_decref(keys);
    kms_audit_index_close(&x);
    return r;
}