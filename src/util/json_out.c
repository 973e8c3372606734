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

/* room's slow path: doubles into the heap. */
static bool grow(kms_json_out *o, size_t n)
{
    if (o->failed) {
        return false;
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

/* Room for n more bytes (and a NUL), unless o failed. */
static inline bool room(kms_json_out *o, size_t n)
{
    return (!o->failed && n < o->cap - o->len) || grow(o, n);
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

/* A byte JSON takes as it is: not '"', '\\', a control character or a non-ASCII byte. */
static bool plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* The length of the prefix of s[0..n) of plain bytes: eight at a time (a word that may hold a
 * byte that is not plain goes byte by byte; the word test has false alarms, never misses). */
static size_t plain_prefix(const unsigned char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
        if ((((x - ones * 0x20) | (quote - ones) | (backslash - ones) | x) & highs) != 0) {
            break;
        }
    }
    while (i < n && plain(s[i])) {
        i++;
    }
    return i;
}

/* Writes s[0..n) escaped at d (room for 6 bytes each), as jansson's dump_string; ascii: bytes
 * above 0x7f as '?'. Returns the end. */
static char *escape(char *d, const unsigned char *s, size_t n, bool ascii)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0;
    while (i < n) {
        size_t run = plain_prefix(s + i, n - i);
        memcpy(d, s + i, run);
        d += run;
        i += run;
        if (i == n) {
            break;
        }
        unsigned char c = s[i++];
        if (c >= 0x80) {
            *d++ = ascii ? '?' : (char)c;
            continue;
        }
        *d++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *d++ = (char)c;
            break;
        case '\b':
            *d++ = 'b';
            break;
        case '\f':
            *d++ = 'f';
            break;
        case '\n':
            *d++ = 'n';
            break;
        case '\r':
            *d++ = 'r';
            break;
        case '\t':
            *d++ = 't';
            break;
        default:
            memcpy(d, "u00", 3);
            d[3] = hex[c >> 4];
            d[4] = hex[c & 0xf];
            d += 5;
            break;
        }
    }
    return d;
}

/* s (n bytes, UTF-8 or made ASCII by ascii) quoted and escaped, in chunks so that the room
 * asked for (6 bytes per byte at worst) stays small. */
static void put_quoted(kms_json_out *o, const char *s, size_t n, bool ascii)
{
    enum { CHUNK = 256 };
    put_c(o, '"');
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t k = n - at < CHUNK ? n - at : CHUNK;
        if (!room(o, 6 * k)) {
            return;
        }
        char *end = escape(o->p + o->len, (const unsigned char *)s + at, k, ascii);
        o->len = (size_t)(end - o->p);
    }
    put_c(o, '"');
}

/* Whether s (n bytes) is UTF-8: an ASCII text (the usual one) eight bytes at a time. */
static bool is_utf8(const char *s, size_t n)
{
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if ((x & 0x8080808080808080ull) != 0) {
            break;
        }
    }
    for (; i < n; i++) {
        if ((unsigned char)s[i] > 0x7f) {
            return kms_json_out_utf8_valid(s + i, n - i);
        }
    }
    return true;
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
    if (!is_utf8(s, n)) {
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
    put_quoted(o, s, n, !is_utf8(s, n));
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
