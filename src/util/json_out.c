/* JSON text written straight into a buffer (json_out.h): jansson's compact output without
 * jansson's tree. */
#include "util/json_out.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void kms_json_out_init(kms_json_out *o, char *storage, size_t cap)
{
    memset(o, 0, sizeof *o);
    o->p = storage;
    o->storage = storage;
    o->cap = cap;
}

void kms_json_out_clean_up(kms_json_out *o)
{
    if (o->p != o->storage) {
        free(o->p);
    }
    memset(o, 0, sizeof *o);
}

void kms_json_out_reset(kms_json_out *o)
{
    o->len = 0;
    o->comma = false;
}

void kms_json_out_fail(kms_json_out *o, const char *why)
{
    if (!o->failed) {
        o->failed = true;
        o->why = why;
    }
}

/* Room for n more bytes (and a NUL): doubles into the heap when the storage is too small. */
static bool room(kms_json_out *o, size_t n)
{
    if (o->failed) {
        return false;
    }
    if (n < o->cap - o->len) {
        return true;
    }
    size_t cap = o->cap;
    while (n >= cap - o->len) {
        if (cap > SIZE_MAX / 2) {
            kms_json_out_fail(o, "the text is too long");
            return false;
        }
        cap *= 2;
    }
    char *p = o->p == o->storage ? malloc(cap) : realloc(o->p, cap);
    if (p == NULL) {
        kms_json_out_fail(o, "out of memory");
        return false;
    }
    if (o->p == o->storage) {
        memcpy(p, o->storage, o->len);
    }
    o->p = p;
    o->cap = cap;
    return true;
}

static void put(kms_json_out *o, const char *s, size_t n)
{
    if (room(o, n)) {
        memcpy(o->p + o->len, s, n);
        o->len += n;
    }
}

static void put_c(kms_json_out *o, char c)
{
    if (room(o, 1)) {
        o->p[o->len++] = c;
    }
}

/* Before a value: the comma that separates it from the previous one at its level. */
static void value_start(kms_json_out *o)
{
    if (o->comma) {
        put_c(o, ',');
    }
}

void kms_json_out_begin_object(kms_json_out *o)
{
    value_start(o);
    put_c(o, '{');
    o->comma = false;
}

void kms_json_out_end_object(kms_json_out *o)
{
    put_c(o, '}');
    o->comma = true;
}

void kms_json_out_begin_array(kms_json_out *o)
{
    value_start(o);
    put_c(o, '[');
    o->comma = false;
}

void kms_json_out_end_array(kms_json_out *o)
{
    put_c(o, ']');
    o->comma = true;
}

/* The length of the UTF-8 sequence that starts with byte u (0: none does), as jansson's
 * utf8_check_first. */
static size_t utf8_first(unsigned char u)
{
    if (u < 0x80) {
        return 1;
    }
    if (u < 0xc2) {
        return 0; /* a continuation byte, or an overlong form of ASCII */
    }
    if (u <= 0xdf) {
        return 2;
    }
    if (u <= 0xef) {
        return 3;
    }
    return u <= 0xf4 ? 4 : 0;
}

/* Whether the n-byte sequence at s is one valid character, as jansson's utf8_check_full. */
static bool utf8_full(const unsigned char *s, size_t n)
{
    static const unsigned char lead_bits[5] = {0, 0, 0x1f, 0x0f, 0x07};
    static const int32_t least[5] = {0, 0, 0x80, 0x800, 0x10000}; /* shorter forms: overlong */
    int32_t v = s[0] & lead_bits[n];
    for (size_t i = 1; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return false;
        }
        v = (v << 6) + (s[i] & 0x3f);
    }
    return v <= 0x10ffff && !(v >= 0xd800 && v <= 0xdfff) && v >= least[n];
}

bool kms_json_out_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_first(u[i]);
        if (k == 0 || k > n - i || (k > 1 && !utf8_full(u + i, k))) {
            return false;
        }
        i += k;
    }
    return true;
}

/* s (n bytes, UTF-8 or made ASCII by ascii) quoted and escaped as jansson's dump_string. */
static void put_quoted(kms_json_out *o, const char *s, size_t n, bool ascii)
{
    static const char hex[] = "0123456789ABCDEF";
    put_c(o, '"');
    size_t run = 0; /* bytes at s[i - run, i) that need no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t esc_len = 2;
        if (c >= 0x20 && c != '"' && c != '\\' && !(ascii && c > 0x7f)) {
            run++;
            continue;
        }
        put(o, s + i - run, run);
        run = 0;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            if (c > 0x7f) { /* ascii: a byte of text that is not UTF-8 */
                esc[0] = '?';
                esc_len = 1;
                break;
            }
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            esc_len = 6;
            break;
        }
        put(o, esc, esc_len);
    }
    put(o, s + n - run, run);
    put_c(o, '"');
}

void kms_json_out_key(kms_json_out *o, const char *key)
{
    kms_json_out_string(o, key);
    put_c(o, ':');
    o->comma = false;
}

void kms_json_out_key_text(kms_json_out *o, const char *key)
{
    kms_json_out_text(o, key);
    put_c(o, ':');
    o->comma = false;
}

void kms_json_out_string(kms_json_out *o, const char *s)
{
    if (s == NULL) {
        kms_json_out_fail(o, "a member has no value");
        return;
    }
    size_t n = strlen(s);
    if (!kms_json_out_utf8_valid(s, n)) {
        kms_json_out_fail(o, "a member is not UTF-8");
        return;
    }
    value_start(o);
    put_quoted(o, s, n, false);
    o->comma = true;
}

void kms_json_out_text(kms_json_out *o, const char *s)
{
    if (s == NULL) {
        kms_json_out_fail(o, "a member has no value");
        return;
    }
    size_t n = strlen(s);
    value_start(o);
    put_quoted(o, s, n, !kms_json_out_utf8_valid(s, n));
    o->comma = true;
}

void kms_json_out_bool(kms_json_out *o, bool v)
{
    kms_json_out_raw(o, v ? "true" : "false", v ? 4 : 5);
}

void kms_json_out_null(kms_json_out *o)
{
    kms_json_out_raw(o, "null", 4);
}

void kms_json_out_raw(kms_json_out *o, const char *json, size_t n)
{
    value_start(o);
    put(o, json, n);
    o->comma = true;
}

int kms_json_out_finish(kms_json_out *o, const char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    if (!room(o, 0)) {
        return -1;
    }
    o->p[o->len] = '\0';
    *text = o->p;
    *len = o->len;
    return 0;
}
