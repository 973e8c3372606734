/* STS over AWS's query protocol, client side: GetCallerIdentity, AssumeRole and GetSessionToken
 * as kmsd answers them (STS API reference, "Common Parameters" and each action's "Response
 * Elements"; botocore's QueryParser): the request form-encoded, the XML response turned back
 * into kms_call's JSON shape (<member> lists as arrays, Expiration as epoch seconds). A small,
 * strict XML reader: elements, text and the five entities and character references; no DTD,
 * no CDATA, nesting bounded. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "remote/remote_internal.h"
#include "service/request.h"
#include "util/util.h"

#define XML_DEPTH_MAX 16
#define STS_VERSION "2011-06-15"

static const char *const query_ops[] = {"sts:GetCallerIdentity", "sts:AssumeRole",
                                        "sts:GetSessionToken"};

bool kms_remote_query_op(const char *operation)
{
    for (size_t i = 0; operation != NULL && i < sizeof query_ops / sizeof query_ops[0]; i++) {
        if (strcmp(operation, query_ops[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- The form ------------------------------------------------------------------------------ */

static int form_add(kms_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        /* RFC 3986 unreserved characters as they are, everything else %XX (as SigV4 wants). */
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            KMS_GUARD(kms_buf_append(b, p, 1));
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            KMS_GUARD(kms_buf_append(b, e, 3));
        }
    }
    return 0;
}

int kms_remote_query_body(const char *operation, const char *request_json, char **body)
{
    int r = -1;
    kms_buf b;
    json_t *req = NULL;
    const char *key;
    json_t *v;
    char num[32];
    *body = NULL;
    kms_buf_init(&b, true);
    req = json_loads(request_json != NULL ? request_json : "{}", JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(req)) {
        kms_raise(KMS_ERR_VALIDATION, "the request body is not a JSON object");
        goto out;
    }
    if (kms_buf_append(&b, "Action=", 7) != 0 || form_add(&b, strchr(operation, ':') + 1) != 0 ||
        kms_buf_append(&b, "&Version=" STS_VERSION, 9 + strlen(STS_VERSION)) != 0) {
        goto out;
    }
    json_object_foreach(req, key, v)
    {
        const char *text = json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            text = num;
        }
        if (text == NULL) {
            kms_raise(KMS_ERR_VALIDATION, "%s: the member %s is not a string or a number",
                      operation, key);
            goto out;
        }
        if (kms_buf_append(&b, "&", 1) != 0 || form_add(&b, key) != 0 ||
            kms_buf_append(&b, "=", 1) != 0 || form_add(&b, text) != 0) {
            goto out;
        }
    }
    if (kms_buf_append(&b, "", 1) != 0 || (*body = strdup((const char *)b.data)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_request_json_wipe(req);
    json_decref(req);
    kms_buf_clean_up(&b);
    return r;
}

/* ---- The XML ------------------------------------------------------------------------------- */

typedef struct xml {
    const char *p, *end;
} xml;

static void skip_space(xml *x)
{
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' || *x->p == '\n')) {
        x->p++;
    }
}

static bool starts(const xml *x, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(x->end - x->p) >= n && memcmp(x->p, s, n) == 0;
}

static int bad(void)
{
    return kms_raise(KMS_ERR_INTERNAL, "the server's XML response is malformed");
}

/* A name (letters, digits, '_', '-', '.', ':') into out. */
static int read_name(xml *x, char *out, size_t size)
{
    size_t n = 0;
    while (x->p < x->end && n + 1 < size &&
           ((*x->p >= 'A' && *x->p <= 'Z') || (*x->p >= 'a' && *x->p <= 'z') ||
            (*x->p >= '0' && *x->p <= '9') || *x->p == '_' || *x->p == '-' || *x->p == '.' ||
            *x->p == ':')) {
        out[n++] = *x->p++;
    }
    out[n] = '\0';
    return n > 0 ? 0 : bad();
}

/* Text up to the next '<', entities decoded, as a JSON string. */
static json_t *read_text(xml *x)
{
    kms_buf b;
    json_t *s = NULL;
    kms_buf_init(&b, true);
    while (x->p < x->end && *x->p != '<') {
        char c = *x->p;
        char utf8[4];
        size_t n = 1;
        if (c == '&') {
            const char *semi = memchr(x->p, ';', (size_t)(x->end - x->p));
            size_t len = semi != NULL ? (size_t)(semi - x->p) + 1 : 0;
            static const char *const names[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
            static const char chars[] = "<>&\"'";
            unsigned long cp = 0;
            bool known = false;
            for (size_t i = 0; i < 5 && !known; i++) {
                known = len == strlen(names[i]) && memcmp(x->p, names[i], len) == 0;
                c = chars[i];
            }
            if (!known && len > 3 && x->p[1] == '#') {
                char *endp = NULL;
                cp = x->p[2] == 'x' ? strtoul(x->p + 3, &endp, 16) : strtoul(x->p + 2, &endp, 10);
                known = endp == semi && cp > 0 && cp < 0x110000;
            }
            if (!known) {
                bad();
                goto out;
            }
            x->p += len - 1;
            if (cp >= 0x80) { /* UTF-8 of the code point */
                n = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
                for (size_t i = n - 1; i > 0; i--) {
                    utf8[i] = (char)(0x80 | (cp & 0x3f));
                    cp >>= 6;
                }
                utf8[0] = (char)((n == 2 ? 0xc0 : n == 3 ? 0xe0 : 0xf0) | cp);
            } else if (cp > 0) {
                c = (char)cp;
            }
        }
        if (kms_buf_append(&b, n == 1 ? &c : utf8, n) != 0) {
            goto out;
        }
        x->p++;
    }
    s = json_stringn(b.len ? (const char *)b.data : "", b.len);
    if (s == NULL) {
        bad();
    }
out:
    kms_buf_clean_up(&b);
    return s;
}

/* One element at x->p (its name into name): an object of its child elements (children named
 * "member" make an array), or the string of its text. */
static json_t *read_element(xml *x, char *name, size_t name_size, int depth)
{
    json_t *v = NULL;
    char child[64];
    if (depth > XML_DEPTH_MAX || !starts(x, "<")) {
        bad();
        return NULL;
    }
    x->p++;
    if (read_name(x, name, name_size) != 0) {
        return NULL;
    }
    /* Attributes (xmlns) are skipped, quoted values with them. */
    while (x->p < x->end && *x->p != '>' && !starts(x, "/>")) {
        char q = *x->p++;
        if (q == '"' || q == '\'') {
            const char *close = memchr(x->p, q, (size_t)(x->end - x->p));
            x->p = close != NULL ? close + 1 : x->end;
        }
    }
    if (starts(x, "/>")) {
        x->p += 2;
        return json_string("");
    }
    if (!starts(x, ">")) {
        bad();
        return NULL;
    }
    x->p++;
    const char *text_start = x->p;
    skip_space(x);
    if (starts(x, "<") && !starts(x, "</")) {
        for (;;) {
            skip_space(x);
            if (!starts(x, "<") || starts(x, "</")) {
                break;
            }
            json_t *c = read_element(x, child, sizeof child, depth + 1);
            int rc = c == NULL ? -1 : 0;
            if (rc == 0 && strcmp(child, "member") == 0) {
                v = v != NULL ? v : json_array();
                rc = json_is_array(v) ? json_array_append_new(v, c) : -1;
            } else if (rc == 0) {
                v = v != NULL ? v : json_object();
                rc = json_is_object(v) && json_object_get(v, child) == NULL
                         ? json_object_set_new(v, child, c)
                         : (json_decref(c), -1);
            }
            if (rc != 0 || v == NULL) {
                kms_request_json_wipe(v);
                json_decref(v);
                bad();
                return NULL;
            }
        }
    } else {
        x->p = text_start;
        v = read_text(x);
    }
    char close[66];
    snprintf(close, sizeof close, "</%s", name);
    if (v == NULL || !starts(x, close)) {
        kms_request_json_wipe(v);
        json_decref(v);
        bad();
        return NULL;
    }
    x->p += strlen(close);
    skip_space(x);
    if (!starts(x, ">")) {
        kms_request_json_wipe(v);
        json_decref(v);
        bad();
        return NULL;
    }
    x->p++;
    return v;
}

/* The document's root element (after an <?xml ...?> declaration, if any). */
static json_t *xml_parse(const uint8_t *text, size_t n, char *root, size_t root_size)
{
    xml x = {(const char *)text, (const char *)text + n};
    skip_space(&x);
    if (starts(&x, "<?xml")) {
        const char *end = strstr(x.p, "?>");
        if (end == NULL || end >= x.end) {
            bad();
            return NULL;
        }
        x.p = end + 2;
        skip_space(&x);
    }
    return read_element(&x, root, root_size, 0);
}

/* "2026-12-07T20:00:00Z" (fractions of a second allowed) to epoch seconds; -1 if not. */
static long long iso_to_epoch(const char *s)
{
    struct tm tm = {0};
    char z = 0;
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6) {
        return -1;
    }
    s += n;
    if (*s == '.') {
        s += 1 + strspn(s + 1, "0123456789");
    }
    z = *s;
    if (z != 'Z' || s[1] != '\0') {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

/* kms_call's shape: Expiration epoch seconds, PackedPolicySize a number. */
static int reshape(json_t *v)
{
    const char *key;
    json_t *m;
    void *tmp;
    json_object_foreach_safe(v, tmp, key, m)
    {
        if (json_is_object(m)) {
            KMS_GUARD(reshape(m));
        }
        const char *s = json_string_value(m);
        if (s != NULL && strcmp(key, "Expiration") == 0 && iso_to_epoch(s) >= 0) {
            KMS_ENSURE(json_object_set_new(v, key, json_integer(iso_to_epoch(s))) == 0,
                       KMS_ERR_INTERNAL, "out of memory");
        } else if (s != NULL && strcmp(key, "PackedPolicySize") == 0) {
            KMS_ENSURE(json_object_set_new(v, key, json_integer(atoll(s))) == 0, KMS_ERR_INTERNAL,
                       "out of memory");
        }
    }
    return 0;
}

int kms_remote_query_response(const char *operation, const uint8_t *text, size_t n,
                              char **response_json)
{
    int r = -1;
    char root[64] = "", want[64];
    const char *action = strchr(operation, ':') + 1;
    json_t *result = NULL;
    *response_json = NULL;
    json_t *doc = xml_parse(text, n, root, sizeof root);
    if (doc == NULL) {
        return -1;
    }
    snprintf(want, sizeof want, "%sResponse", action);
    if (strcmp(root, want) != 0 || !json_is_object(doc)) {
        kms_raise(KMS_ERR_INTERNAL, "%s: the server answered <%s>, not <%s>", operation, root,
                  want);
        goto out;
    }
    snprintf(want, sizeof want, "%sResult", action);
    result = json_object_get(doc, want);
    if (json_is_string(result) && json_string_length(result) == 0) {
        result = NULL;
    }
    if (result != NULL && !json_is_object(result)) {
        kms_raise(KMS_ERR_INTERNAL, "%s: the server's <%s> is not a structure", operation, want);
        goto out;
    }
    if (result != NULL && reshape(result) != 0) {
        goto out;
    }
    *response_json = result != NULL ? json_dumps(result, JSON_COMPACT) : strdup("{}");
    if (*response_json == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_request_json_wipe(doc);
    json_decref(doc);
    return r;
}

int kms_remote_query_error(const uint8_t *text, size_t n, char *code, size_t code_size,
                           char *message, size_t message_size)
{
    char root[64] = "";
    json_t *doc = xml_parse(text, n, root, sizeof root);
    json_t *err = json_object_get(doc, "Error");
    const char *c = json_string_value(json_object_get(err, "Code"));
    const char *m = json_string_value(json_object_get(err, "Message"));
    int r = strcmp(root, "ErrorResponse") == 0 && c != NULL ? 0 : -1;
    if (r == 0) {
        snprintf(code, code_size, "%s", c);
        snprintf(message, message_size, "%s", m != NULL ? m : "");
    }
    json_decref(doc);
    kms_error_clear();
    return r;
}
