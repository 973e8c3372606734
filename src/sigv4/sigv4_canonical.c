/* SigV4: the canonical request (path, query, headers, payload hash), per AWS's "Create a
 * canonical request for Signature Version 4". */
#include "sigv4/sigv4_internal.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"

/* ---- growing string ---- */

int kms_sigv4_buf_add(kms_sigv4_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 256;
        char *p;
        while (b->len + n + 1 > cap) {
            cap *= 2;
        }
        p = realloc(b->data, cap);
        KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory");
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kms_sigv4_buf_str(kms_sigv4_buf *b, const char *s)
{
    return kms_sigv4_buf_add(b, s, strlen(s));
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* RFC 3986 encoding of [s, s+n): every byte but the unreserved ones as %XX (uppercase). */
static int add_encoded(kms_sigv4_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        if (is_unreserved(c)) {
            KMS_GUARD(kms_sigv4_buf_add(b, s + i, 1));
        } else {
            KMS_GUARD(kms_sigv4_buf_add(b, esc, 3));
        }
    }
    return 0;
}

/* ---- path ---- */

/* Each segment encoded; with normalize, "." and empty segments dropped and ".." resolved (a
 * trailing slash kept). The path is encoded as received (AWS's double encoding for non-S3). */
static int add_path(kms_sigv4_buf *b, const char *path, int normalize)
{
    const char **segs = NULL;
    size_t *lens = NULL;
    size_t n = 0;
    size_t plen = strlen(path);
    int r = -1;
    if (plen == 0) {
        return kms_sigv4_buf_str(b, "/");
    }
    if (!normalize) {
        for (size_t i = 0; i < plen; i++) {
            if (path[i] == '/') {
                KMS_GUARD(kms_sigv4_buf_add(b, "/", 1));
            } else {
                KMS_GUARD(add_encoded(b, path + i, 1));
            }
        }
        return 0;
    }
    segs = calloc(plen + 1, sizeof *segs);
    lens = calloc(plen + 1, sizeof *lens);
    if (segs == NULL || lens == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (const char *p = path;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && memcmp(p, "..", 2) == 0) {
            n -= n > 0 ? 1 : 0;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            segs[n] = p;
            lens[n++] = len;
        }
        if (slash == NULL) {
            break;
        }
        p = slash + 1;
    }
    if ((r = kms_sigv4_buf_add(b, "/", 1)) != 0) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((r = add_encoded(b, segs[i], lens[i])) != 0) {
            goto out;
        }
        if (i + 1 < n || path[plen - 1] == '/') {
            if ((r = kms_sigv4_buf_add(b, "/", 1)) != 0) {
                goto out;
            }
        }
    }
    r = 0;
out:
    free(segs);
    free(lens);
    return r;
}

/* ---- query ---- */

typedef struct param {
    size_t name_at; /* offsets of the encoded name and value in the arena */
    size_t value_at;
    const char *name; /* set once the arena is complete */
    const char *value;
} param;

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decodes then RFC 3986-encodes [s, s+n) onto the arena, NUL-terminated. A '+' (a space
 * to a form decoder, itself to others) and a '%' not followed by two hex digits (itself, as
 * "%25" is) would give two queries of different meaning one canonical form: both are refused. */
static int reencode(kms_sigv4_buf *arena, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        KMS_ENSURE(c != '+' &&
                       (c != '%' || (i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0)),
                   KMS_ERR_BAD_SIGNATURE,
                   "the query string holds a '+' or a '%%' that is not a %%XX escape");
        if (c == '%') {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        KMS_GUARD(add_encoded(arena, &c, 1));
    }
    return kms_sigv4_buf_add(arena, "", 1); /* the terminator, kept in the arena */
}

static int cmp_param(const void *a, const void *b)
{
    const param *x = a;
    const param *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->value, y->value);
}

/* The parameters encoded into one arena (memory in proportion to the query, whatever the number
 * of parameters), sorted by encoded name then value. */
static int add_query(kms_sigv4_buf *b, const char *query)
{
    kms_sigv4_buf arena = {0};
    param *params = NULL;
    size_t n = 0;
    size_t max = 1;
    int r = -1;
    if (query == NULL || query[0] == '\0') {
        return 0;
    }
    for (const char *p = query; *p != '\0'; p++) {
        max += *p == '&';
    }
    params = calloc(max, sizeof *params);
    KMS_ENSURE(params != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (const char *p = query;;) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq != NULL ? (size_t)(eq - p) : len;
        if (len > 0) {
            params[n].name_at = arena.len;
            if ((r = reencode(&arena, p, nlen)) != 0) {
                goto out;
            }
            params[n].value_at = arena.len;
            if ((r = reencode(&arena, eq != NULL ? eq + 1 : "", eq != NULL ? len - nlen - 1 : 0)) !=
                0) {
                goto out;
            }
            n++;
        }
        if (amp == NULL) {
            break;
        }
        p = amp + 1;
    }
    for (size_t i = 0; i < n; i++) {
        params[i].name = arena.data + params[i].name_at;
        params[i].value = arena.data + params[i].value_at;
    }
    qsort(params, n, sizeof *params, cmp_param);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (r = kms_sigv4_buf_add(b, "&", 1)) != 0) {
            goto out;
        }
        if ((r = kms_sigv4_buf_str(b, params[i].name)) != 0) {
            goto out;
        }
        if ((r = kms_sigv4_buf_add(b, "=", 1)) != 0) {
            goto out;
        }
        if ((r = kms_sigv4_buf_str(b, params[i].value)) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    free(arena.data);
    free(params);
    return r;
}

/* ---- headers ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The value trimmed, each run of whitespace (folded lines included) as one space. */
static int add_trimmed(kms_sigv4_buf *b, const char *v)
{
    int pending = 0;
    while (is_space(*v)) {
        v++;
    }
    for (; *v != '\0'; v++) {
        if (is_space(*v)) {
            pending = 1;
            continue;
        }
        if (pending) {
            KMS_GUARD(kms_sigv4_buf_add(b, " ", 1));
            pending = 0;
        }
        KMS_GUARD(kms_sigv4_buf_add(b, v, 1));
    }
    return 0;
}

const char *kms_sigv4_header_find(const kms_sigv4_request *req, const char *name, size_t len)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i].name;
        if (h != NULL && strlen(h) == len && strncasecmp(h, name, len) == 0) {
            return req->headers[i].value != NULL ? req->headers[i].value : "";
        }
    }
    return NULL;
}

/* "name:v1,v2\n" for every header received under name (in order received). */
static int add_header(kms_sigv4_buf *b, const kms_sigv4_request *req, const char *name, size_t len)
{
    int found = 0;
    KMS_GUARD(kms_sigv4_buf_add(b, name, len));
    KMS_GUARD(kms_sigv4_buf_add(b, ":", 1));
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i].name;
        if (h == NULL || strlen(h) != len || strncasecmp(h, name, len) != 0) {
            continue;
        }
        if (found) {
            KMS_GUARD(kms_sigv4_buf_add(b, ",", 1));
        }
        found = 1;
        KMS_GUARD(add_trimmed(b, req->headers[i].value != NULL ? req->headers[i].value : ""));
    }
    KMS_ENSURE(found, KMS_ERR_BAD_SIGNATURE, "signed header %.*s is missing from the request",
               (int)len, name);
    return kms_sigv4_buf_add(b, "\n", 1);
}

/* ---- the canonical request ---- */

int kms_sigv4_payload_hash(const kms_sigv4_request *req, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[32];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (req->payload_sha256_hex != NULL) {
        size_t n = strlen(req->payload_sha256_hex);
        KMS_ENSURE(n == 64 && strspn(req->payload_sha256_hex, "0123456789abcdef") == 64,
                   KMS_ERR_BAD_SIGNATURE, "the payload hash is not 64 lowercase hex digits");
        memcpy(out, req->payload_sha256_hex, 65);
        return 0;
    }
    KMS_ENSURE(EVP_Digest(req->body != NULL ? req->body : (const uint8_t *)"", req->body_len, md,
                          &mdlen, EVP_sha256(), NULL) == 1 &&
                   mdlen == 32,
               KMS_ERR_INTERNAL, "SHA-256 failed");
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

static int build(kms_sigv4_buf *b, const kms_sigv4_request *req, const char *signed_headers)
{
    char hash[65];
    KMS_ENSURE(req->method != NULL && req->method[0] != '\0' &&
                   strspn(req->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(req->method),
               KMS_ERR_BAD_SIGNATURE, "the request method is not an uppercase token");
    KMS_ENSURE(req->path != NULL && (req->path[0] == '/' || req->path[0] == '\0'),
               KMS_ERR_BAD_SIGNATURE, "the request path does not start with /");
    KMS_ENSURE(signed_headers != NULL && signed_headers[0] != '\0', KMS_ERR_BAD_SIGNATURE,
               "no signed headers");
    KMS_GUARD(kms_sigv4_payload_hash(req, hash));
    KMS_GUARD(kms_sigv4_buf_str(b, req->method));
    KMS_GUARD(kms_sigv4_buf_add(b, "\n", 1));
    KMS_GUARD(add_path(b, req->path, req->normalize_path));
    KMS_GUARD(kms_sigv4_buf_add(b, "\n", 1));
    KMS_GUARD(add_query(b, req->query));
    KMS_GUARD(kms_sigv4_buf_add(b, "\n", 1));
    for (const char *p = signed_headers;;) {
        const char *semi = strchr(p, ';');
        size_t len = semi != NULL ? (size_t)(semi - p) : strlen(p);
        KMS_GUARD(add_header(b, req, p, len));
        if (semi == NULL) {
            break;
        }
        p = semi + 1;
    }
    KMS_GUARD(kms_sigv4_buf_add(b, "\n", 1));
    KMS_GUARD(kms_sigv4_buf_str(b, signed_headers));
    KMS_GUARD(kms_sigv4_buf_add(b, "\n", 1));
    return kms_sigv4_buf_str(b, hash);
}

int kms_sigv4_canonical_request(const kms_sigv4_request *req, const char *signed_headers,
                                char **out)
{
    kms_sigv4_buf b = {0};
    *out = NULL;
    if (build(&b, req, signed_headers) != 0) {
        free(b.data);
        return -1;
    }
    *out = b.data;
    return 0;
}
