/* The fields of a record line that the audit index needs (audit_index_internal.h).
 *
 * A JSON scanner that picks the fields the index needs out of a record line without building a
 * tree: jansson allocates every value and dominated the catch-up time (about 13 us a line).
 * It accepts what jansson accepts for these fields (escapes, \u surrogate pairs, any key order,
 * the last of repeated keys); a line it cannot read is not indexed, as with jansson, and
 * validate-logs reports it. Decoded strings go into an arena as large as the line, which is
 * enough: each decoded string is no longer than its encoded form. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "audit/audit_index_internal.h"

#define SCAN_MAX_DEPTH 32

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

typedef int (*field_fn)(jscan *s, const char *key, kms_audit_index_fields *f, int depth);

/* Walks an object (or skips a value that is not one), calling fn for each member. */
static int walk_object(jscan *s, field_fn fn, kms_audit_index_fields *f, int depth)
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

static int identity_field(jscan *s, const char *key, kms_audit_index_fields *f, int depth)
{
    const char **dst = strcmp(key, "type") == 0          ? &f->user_type
                       : strcmp(key, "userName") == 0    ? &f->user_name
                       : strcmp(key, "arn") == 0         ? &f->user_arn
                       : strcmp(key, "accessKeyId") == 0 ? &f->access_key_id
                                                         : NULL;
    return dst != NULL ? opt_string(s, dst) : 1;
}

static int resource_field(jscan *s, const char *key, kms_audit_index_fields *f, int depth)
{
    const char **dst = strcmp(key, "ARN") == 0    ? &f->res_arn[f->nres]
                       : strcmp(key, "type") == 0 ? &f->res_type[f->nres]
                                                  : NULL;
    return dst != NULL ? opt_string(s, dst) : 1;
}

static int chain_field(jscan *s, const char *key, kms_audit_index_fields *f, int depth)
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

static int resources_value(jscan *s, kms_audit_index_fields *f, int depth)
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
        if (f->nres == KMS_AUDIT_INDEX_MAX_RESOURCES) {
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

static int top_field(jscan *s, const char *key, kms_audit_index_fields *f, int depth)
{
    static const struct {
        const char *key;
        size_t offset;
    } strings[] = {
        {"eventTime", offsetof(kms_audit_index_fields, event_time)},
        {"eventID", offsetof(kms_audit_index_fields, event_id)},
        {"eventName", offsetof(kms_audit_index_fields, event_name)},
        {"eventSource", offsetof(kms_audit_index_fields, event_source)},
        {"eventType", offsetof(kms_audit_index_fields, event_type)},
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

int kms_audit_index_scan_record(const char *p, size_t len, char *arena, kms_audit_index_fields *f)
{
    jscan s = {p, p + len, arena, len + KMS_AUDIT_INDEX_ARENA_SLACK};
    memset(f, 0, sizeof *f);
    f->sequence = -1;
    if (!peek(&s, '{') || walk_object(&s, top_field, f, 0) != 0) {
        return -1;
    }
    ws(&s);
    return s.p == s.end ? 0 : -1;
}
