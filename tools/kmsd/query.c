/* The AWS query protocol for STS (see query.h). The shapes follow the STS API reference
 * (Common Parameters; AssumeRole, GetSessionToken, GetCallerIdentity: Response Elements) and
 * botocore's QueryParser, which reads <OperationResult> inside <OperationResponse>, lists as
 * <member> elements and errors as <ErrorResponse><Error><Code>. */
#include "query.h"
#include "strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- Messages and a growing string ----------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (n bytes left), 0 if it is not valid UTF-8 (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
        return 0;
    }
    return len;
}

/* XML 1.0 section 2.2 (Char) and 2.4 (markup characters): the five markup characters as
 * references, carriage return as a reference (a parser would turn a literal one into a line
 * feed), and what XML cannot carry at all (controls, NUL, invalid UTF-8) as U+FFFD. */
static void sb_xml_text(kmsd_strbuf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        size_t len = utf8_len(u + i, n - i);
        if (c == '&') {
            kmsd_strbuf_str(b, "&amp;");
        } else if (c == '<') {
            kmsd_strbuf_str(b, "&lt;");
        } else if (c == '>') {
            kmsd_strbuf_str(b, "&gt;");
        } else if (c == '"') {
            kmsd_strbuf_str(b, "&quot;");
        } else if (c == '\'') {
            kmsd_strbuf_str(b, "&apos;");
        } else if (c == '\r') {
            kmsd_strbuf_str(b, "&#13;");
        } else if (len == 0 || (c < 0x20 && c != '\t' && c != '\n') ||
                   (len == 3 && c == 0xef && u[i + 1] == 0xbf && u[i + 2] >= 0xbe)) {
            kmsd_strbuf_str(
                b, "\xef\xbf\xbd"); /* U+FFFD; U+FFFE and U+FFFF are not XML Chars either */
        } else {
            kmsd_strbuf_add(b, s + i, len);
            i += len;
            continue;
        }
        i += len == 0 ? 1 : len;
    }
}

static void sb_element(kmsd_strbuf *b, const char *name, const char *text)
{
    kmsd_strbuf_str(b, "<");
    kmsd_strbuf_str(b, name);
    kmsd_strbuf_str(b, ">");
    sb_xml_text(b, text, strlen(text));
    kmsd_strbuf_str(b, "</");
    kmsd_strbuf_str(b, name);
    kmsd_strbuf_str(b, ">");
}

/* ---- The operations and their parameters ----------------------------------------------------- */

typedef enum param_type { PARAM_STRING, PARAM_INTEGER } param_type;

typedef struct param {
    const char *name;
    param_type type;
} param;

/* Exactly what src/service/ops_sts.c takes: AWS's other AssumeRole parameters (Tags, PolicyArns,
 * TransitiveTagKeys, ExternalId, SourceIdentity, ProvidedContexts) are refused by name rather
 * than dropped, so that a caller never believes a restriction or tag applied that did not. */
static const param assume_role_params[] = {
    {"RoleArn", PARAM_STRING},
    {"RoleSessionName", PARAM_STRING},
    {"DurationSeconds", PARAM_INTEGER},
    {"Policy", PARAM_STRING},
    {"SerialNumber", PARAM_STRING},
    {"TokenCode", PARAM_STRING},
    {NULL, PARAM_STRING},
};
static const param session_token_params[] = {
    {"DurationSeconds", PARAM_INTEGER},
    {"SerialNumber", PARAM_STRING},
    {"TokenCode", PARAM_STRING},
    {NULL, PARAM_STRING},
};
static const param no_params[] = {{NULL, PARAM_STRING}};
/* IAM's managed-policy and user calls (src/service/ops_iam*.c), the query protocol's first IAM
 * operations: enough for the aws CLI to see IAM's answers and error codes. Tags are refused by
 * name, as above. */
static const param create_policy_params[] = {
    {"PolicyName", PARAM_STRING},  {"Path", PARAM_STRING}, {"PolicyDocument", PARAM_STRING},
    {"Description", PARAM_STRING}, {NULL, PARAM_STRING},
};
static const param policy_arn_params[] = {{"PolicyArn", PARAM_STRING}, {NULL, PARAM_STRING}};
static const param user_name_params[] = {{"UserName", PARAM_STRING}, {NULL, PARAM_STRING}};
static const param create_user_params[] = {
    {"Path", PARAM_STRING},
    {"UserName", PARAM_STRING},
    {"PermissionsBoundary", PARAM_STRING},
    {NULL, PARAM_STRING},
};
static const param user_policy_params[] = {
    {"UserName", PARAM_STRING},
    {"PolicyName", PARAM_STRING},
    {"PolicyDocument", PARAM_STRING},
    {NULL, PARAM_STRING},
};

#define IAM_VERSION "2010-05-08"
#define IAM_XMLNS "https://iam.amazonaws.com/doc/2010-05-08/"

typedef struct action {
    const char *action;    /* the query protocol's Action */
    const char *operation; /* kms_call's name */
    const param *params;
    const char *version; /* the API version Version must name */
    const char *xmlns;   /* of the response */
} action;

#define STS KMSD_QUERY_STS_VERSION, KMSD_QUERY_STS_XMLNS
#define IAM IAM_VERSION, IAM_XMLNS
static const action actions[] = {
    {"GetCallerIdentity", "sts:GetCallerIdentity", no_params, STS},
    {"AssumeRole", "sts:AssumeRole", assume_role_params, STS},
    {"GetSessionToken", "sts:GetSessionToken", session_token_params, STS},
    {"CreatePolicy", "iam:CreatePolicy", create_policy_params, IAM},
    {"GetPolicy", "iam:GetPolicy", policy_arn_params, IAM},
    {"DeletePolicy", "iam:DeletePolicy", policy_arn_params, IAM},
    {"CreateUser", "iam:CreateUser", create_user_params, IAM},
    {"GetUser", "iam:GetUser", user_name_params, IAM},
    {"DeleteUser", "iam:DeleteUser", user_name_params, IAM},
    {"PutUserPolicy", "iam:PutUserPolicy", user_policy_params, IAM},
};
#undef STS
#undef IAM
#define N_ACTIONS (sizeof actions / sizeof actions[0])

static const action *action_by_name(const char *name)
{
    for (size_t i = 0; i < N_ACTIONS; i++) {
        if (strcmp(actions[i].action, name) == 0) {
            return &actions[i];
        }
    }
    return NULL;
}

static const action *action_by_operation(const char *operation)
{
    for (size_t i = 0; i < N_ACTIONS; i++) {
        if (strcmp(actions[i].operation, operation) == 0) {
            return &actions[i];
        }
    }
    return NULL;
}

/* ---- Form decoding --------------------------------------------------------------------------- */

static int hex_value(char c)
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

/* Percent-decodes s[0..n) into a fresh NUL-terminated string (HTML's
 * application/x-www-form-urlencoded: '+' is a space). NULL with err filled on a bad escape, a
 * NUL byte, invalid UTF-8, or no memory. what names the part for the message. */
static char *form_decode(const char *s, size_t n, const char *what, char *err, size_t errlen)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    if (out == NULL) {
        kmsd_strbuf_fail(err, errlen, -1, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = -1, lo = -1;
            if (n - i >= 3) {
                hi = hex_value(s[i + 1]);
                lo = hex_value(s[i + 2]);
            }
            if (hi < 0 || lo < 0) {
                kmsd_strbuf_fail(err, errlen, -1, "%s has a '%%' not followed by two hex digits",
                                 what);
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    for (size_t i = 0; i < o;) {
        size_t len = out[i] == '\0' ? 0 : utf8_len((const unsigned char *)out + i, o - i);
        if (len == 0) {
            kmsd_strbuf_fail(err, errlen, -1,
                             out[i] == '\0' ? "%s holds a NUL byte" : "%s is not UTF-8 text", what);
            free(out);
            return NULL;
        }
        i += len;
    }
    return out;
}

/* Splits the body into name=value pairs, decoded, into the object *pairs (name -> string). */
static int decode_pairs(const char *body, size_t len, json_t *pairs, char *err, size_t errlen)
{
    size_t start = 0;
    /* Every segment between '&'s is a pair, the empty one after a trailing '&' too. */
    while (len > 0 && start <= len) {
        const char *pair = body + start;
        const char *amp = memchr(pair, '&', len - start);
        size_t n = amp != NULL ? (size_t)(amp - pair) : len - start;
        const char *eq = memchr(pair, '=', n);
        char *name = NULL, *value = NULL;
        char what[96];
        int r = -1;
        start += n + 1;
        if (eq == NULL) {
            return kmsd_strbuf_fail(err, errlen, -1,
                                    "malformed query string: the pair \"%.*s\" has no '='",
                                    (int)(n > 40 ? 40 : n), pair);
        }
        if ((name = form_decode(pair, (size_t)(eq - pair), "a parameter name", err, errlen)) ==
            NULL) {
            goto next;
        }
        if (name[0] == '\0') {
            kmsd_strbuf_fail(err, errlen, -1,
                             "malformed query string: a parameter has an empty name");
            goto next;
        }
        snprintf(what, sizeof what, "the value of %.64s", name);
        if ((value = form_decode(eq + 1, n - (size_t)(eq - pair) - 1, what, err, errlen)) == NULL) {
            goto next;
        }
        if (json_object_get(pairs, name) != NULL) {
            kmsd_strbuf_fail(err, errlen, -1, "the parameter %.64s is given more than once", name);
            goto next;
        }
        if (json_object_set_new(pairs, name, json_string(value)) != 0) {
            kmsd_strbuf_fail(err, errlen, -1, "out of memory");
            goto next;
        }
        r = 0;
    next:
        free(name);
        free(value);
        if (r != 0) {
            return -1;
        }
    }
    return 0;
}

/* A whole number of at most 9 digits (DurationSeconds' range is 900..129600; the service
 * checks the range, this only the form). */
static int parse_integer(const char *name, const char *text, json_t **out, char *err, size_t errlen)
{
    size_t n = strlen(text);
    *out = NULL;
    if (n == 0 || n > 9 || strspn(text, "0123456789") != n) {
        return kmsd_strbuf_fail(err, errlen, -1,
                                "%s must be a whole number of seconds, not \"%.32s\"", name, text);
    }
    *out = json_integer((json_int_t)strtoll(text, NULL, 10));
    if (*out == NULL) {
        return kmsd_strbuf_fail(err, errlen, -1, "out of memory");
    }
    return 0;
}

static void param_list(const param *params, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (const param *p = params; p->name != NULL && o < size; p++) {
        int w = snprintf(out + o, size - o, "%s%s", p == params ? "" : ", ", p->name);
        if (w < 0) {
            return;
        }
        o += (size_t)w;
    }
    if (params[0].name == NULL) {
        snprintf(out, size, "none");
    }
}

/* The request in kms_call's shape, members in the order of the parameter table. */
static int build_request(const action *a, json_t *pairs, json_t **request, char *err, size_t errlen)
{
    const char *name;
    json_t *value;
    char known[160];
    json_t *req = json_object();
    *request = NULL;
    if (req == NULL) {
        return kmsd_strbuf_fail(err, errlen, -1, "out of memory");
    }
    json_object_foreach(pairs, name, value)
    {
        const param *p = a->params;
        while (p->name != NULL && strcmp(p->name, name) != 0) {
            p++;
        }
        if (strcmp(name, "Action") == 0 || strcmp(name, "Version") == 0) {
            continue;
        }
        if (p->name == NULL) {
            param_list(a->params, known, sizeof known);
            json_decref(req);
            return kmsd_strbuf_fail(err, errlen, -1,
                                    "%s does not take the parameter %.64s (it takes: %s)",
                                    a->action, name, known);
        }
    }
    for (const param *p = a->params; p->name != NULL; p++) {
        json_t *v = json_object_get(pairs, p->name);
        json_t *member = NULL;
        if (v == NULL) {
            continue;
        }
        if (p->type == PARAM_INTEGER) {
            if (parse_integer(p->name, json_string_value(v), &member, err, errlen) != 0) {
                json_decref(req);
                return -1;
            }
        } else {
            member = json_incref(v);
        }
        if (json_object_set_new(req, p->name, member) != 0) {
            json_decref(req);
            return kmsd_strbuf_fail(err, errlen, -1, "out of memory");
        }
    }
    *request = req;
    return 0;
}

int kmsd_query_parse(const char *body, size_t len, char **operation, char **request_json, char *err,
                     size_t errlen)
{
    json_t *pairs = NULL, *req = NULL;
    const char *act, *version;
    const action *a;
    int r = -1;
    *operation = NULL;
    *request_json = NULL;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (body == NULL && len > 0) {
        return kmsd_strbuf_fail(err, errlen, -1, "no request body");
    }
    if (len > KMSD_QUERY_MAX_BODY) {
        return kmsd_strbuf_fail(err, errlen, -1,
                                "the request body is %zu bytes, more than the %d allowed", len,
                                KMSD_QUERY_MAX_BODY);
    }
    if (len > 0 && memchr(body, '\0', len) != NULL) {
        return kmsd_strbuf_fail(err, errlen, -1,
                                "malformed query string: the body holds a NUL byte");
    }
    if ((pairs = json_object()) == NULL) {
        return kmsd_strbuf_fail(err, errlen, -1, "out of memory");
    }
    if (decode_pairs(body, len, pairs, err, errlen) != 0) {
        goto out;
    }
    act = json_string_value(json_object_get(pairs, "Action"));
    if (act == NULL) {
        r = kmsd_strbuf_fail(err, errlen, KMSD_QUERY_INVALID_ACTION, "the request names no Action");
        goto out;
    }
    version = json_string_value(json_object_get(pairs, "Version"));
    if ((a = action_by_name(act)) == NULL) {
        r = kmsd_strbuf_fail(err, errlen, KMSD_QUERY_INVALID_ACTION,
                             "Could not find operation %.64s for version %.32s", act,
                             version != NULL ? version : KMSD_QUERY_STS_VERSION);
        goto out;
    }
    if (version == NULL) {
        kmsd_strbuf_fail(err, errlen, -1, "the request names no Version (%.3s's is %s)",
                         a->operation, a->version);
        goto out;
    }
    if (strcmp(version, a->version) != 0) {
        kmsd_strbuf_fail(err, errlen, -1, "Version %.32s is not supported: %.3s's is %s", version,
                         a->operation, a->version);
        goto out;
    }
    if (build_request(a, pairs, &req, err, errlen) != 0) {
        goto out;
    }
    *request_json = json_dumps(req, JSON_COMPACT);
    *operation = strdup(a->operation);
    if (*request_json == NULL || *operation == NULL) {
        free(*request_json);
        free(*operation);
        *request_json = NULL;
        *operation = NULL;
        kmsd_strbuf_fail(err, errlen, -1, "out of memory");
        goto out;
    }
    r = 0;
out:
    json_decref(req);
    json_decref(pairs);
    return r;
}

/* ---- JSON to XML ----------------------------------------------------------------------------- */

/* An element name that XML accepts and a JSON member may carry: [A-Za-z_][A-Za-z0-9_.-]*. */
static bool xml_name_ok(const char *s)
{
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) {
        return false;
    }
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
           strlen(s);
}

/* Up to 9999-12-31T23:59:59Z: four-digit years, as ISO 8601 (and botocore) has them. */
#define MAX_EPOCH 253402300799LL

static int value_xml(kmsd_strbuf *b, const char *name, json_t *v, int depth, char *err,
                     size_t errlen);

static int object_xml(kmsd_strbuf *b, json_t *obj, int depth, char *err, size_t errlen)
{
    const char *key;
    json_t *member;
    json_object_foreach(obj, key, member)
    {
        if (!xml_name_ok(key)) {
            return kmsd_strbuf_fail(err, errlen, -1,
                                    "the response member \"%.64s\" is not an XML name", key);
        }
        if (json_is_null(member)) {
            continue;
        }
        if (value_xml(b, key, member, depth + 1, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

static int scalar_text(const char *name, json_t *v, char *text, size_t size, char *err,
                       size_t errlen)
{
    if (json_is_integer(v) && (strcmp(name, "Expiration") == 0 || strcmp(name, "CreateDate") == 0 ||
                               strcmp(name, "UpdateDate") == 0)) {
        json_int_t t = json_integer_value(v);
        struct tm tm;
        time_t tt = (time_t)t;
        if (t < 0 || t > MAX_EPOCH || gmtime_r(&tt, &tm) == NULL) {
            return kmsd_strbuf_fail(err, errlen, -1,
                                    "Expiration %" JSON_INTEGER_FORMAT " is out of range", t);
        }
        strftime(text, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
    } else if (json_is_integer(v)) {
        snprintf(text, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(text, size, "%.17g", json_real_value(v));
    } else {
        snprintf(text, size, "%s", json_is_true(v) ? "true" : "false");
    }
    return 0;
}

static int value_xml(kmsd_strbuf *b, const char *name, json_t *v, int depth, char *err,
                     size_t errlen)
{
    char text[64];
    if (depth > 32) {
        return kmsd_strbuf_fail(err, errlen, -1, "the response nests deeper than 32 levels");
    }
    kmsd_strbuf_str(b, "<");
    kmsd_strbuf_str(b, name);
    kmsd_strbuf_str(b, ">");
    if (json_is_object(v)) {
        if (object_xml(b, v, depth, err, errlen) != 0) {
            return -1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (json_is_null(item)) {
                continue;
            }
            if (value_xml(b, "member", item, depth + 1, err, errlen) != 0) {
                return -1;
            }
        }
    } else if (json_is_string(v)) {
        sb_xml_text(b, json_string_value(v), json_string_length(v));
    } else {
        if (scalar_text(name, v, text, sizeof text, err, errlen) != 0) {
            return -1;
        }
        kmsd_strbuf_str(b, text);
    }
    kmsd_strbuf_str(b, "</");
    kmsd_strbuf_str(b, name);
    kmsd_strbuf_str(b, ">");
    return 0;
}

int kmsd_query_response_xml(const char *operation, const char *response_json,
                            const char *request_id, char **xml, char *err, size_t errlen)
{
    const action *a;
    json_t *resp = NULL;
    json_error_t jerr;
    kmsd_strbuf b = {0};
    int r = -1;
    *xml = NULL;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (operation == NULL || (a = action_by_operation(operation)) == NULL) {
        return kmsd_strbuf_fail(err, errlen, -1, "%.64s is not an operation of the query protocol",
                                operation != NULL ? operation : "(null)");
    }
    resp = json_loads(response_json != NULL ? response_json : "",
                      JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (resp == NULL || !json_is_object(resp)) {
        kmsd_strbuf_fail(err, errlen, -1, "the response is not a JSON object: %s",
                         resp == NULL ? jerr.text : "another JSON value");
        goto out;
    }
    kmsd_strbuf_str(&b, "<");
    kmsd_strbuf_str(&b, a->action);
    kmsd_strbuf_str(&b, "Response xmlns=\"");
    kmsd_strbuf_str(&b, a->xmlns);
    kmsd_strbuf_str(&b, "\"><");
    kmsd_strbuf_str(&b, a->action);
    kmsd_strbuf_str(&b, "Result>");
    if (object_xml(&b, resp, 0, err, errlen) != 0) {
        goto out;
    }
    kmsd_strbuf_str(&b, "</");
    kmsd_strbuf_str(&b, a->action);
    kmsd_strbuf_str(&b, "Result><ResponseMetadata>");
    sb_element(&b, "RequestId", request_id != NULL ? request_id : "");
    kmsd_strbuf_str(&b, "</ResponseMetadata></");
    kmsd_strbuf_str(&b, a->action);
    kmsd_strbuf_str(&b, "Response>");
    if ((*xml = kmsd_strbuf_take(&b)) == NULL) {
        kmsd_strbuf_fail(err, errlen, -1, "out of memory");
        goto out;
    }
    r = 0;
out:
    free(kmsd_strbuf_take(&b));
    json_decref(resp);
    return r;
}

int kmsd_query_error_xml(const char *code, const char *message, bool sender, const char *request_id,
                         char **xml)
{
    kmsd_strbuf b = {0};
    kmsd_strbuf_str(&b, "<ErrorResponse xmlns=\"" KMSD_QUERY_STS_XMLNS "\"><Error>");
    sb_element(&b, "Type", sender ? "Sender" : "Receiver");
    sb_element(&b, "Code", code != NULL ? code : "InternalFailure");
    sb_element(&b, "Message", message != NULL ? message : "");
    kmsd_strbuf_str(&b, "</Error>");
    sb_element(&b, "RequestId", request_id != NULL ? request_id : "");
    kmsd_strbuf_str(&b, "</ErrorResponse>");
    *xml = kmsd_strbuf_take(&b);
    return *xml != NULL ? 0 : -1;
}
