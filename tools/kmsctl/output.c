/* Printing responses as aws does: JSON indented by 4 spaces in member order (Python's
 * json.dumps(indent=4, ensure_ascii=False)), or --output text (awscli/text.py: scalars of an
 * object tab-separated in sorted key order, nested members on their own lines headed by the
 * upper-cased member name). Errors as {"__type", "message"} on stderr. */
#include <ctype.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms/kms.h"
#include "jmespath.h"
#include "kmsctl.h"

/* ---- --query: a JMESPath expression (jmespath.h), applied to the whole response ------------- */

int kmsctl_check_query(const char *query)
{
    struct kmsctl_jmespath_error err;
    struct kmsctl_jmespath *jp = NULL;

    if (query == NULL) {
        return KMSCTL_EXIT_OK;
    }
    jp = kmsctl_jmespath_compile(query, &err);
    if (jp == NULL) {
        return kmsctl_usage_error(NULL,
                                  "argument --query: invalid JMESPath expression: %s, at "
                                  "character %zu: '%s'",
                                  err.message, err.at + 1, query);
    }
    kmsctl_jmespath_free(jp);
    return KMSCTL_EXIT_OK;
}

/* The response as --query selects it: a new reference, or NULL after printing the error (an
 * evaluation error: the function's argument types are checked against the data). */
static json_t *query_select(const char *query, json_t *value)
{
    struct kmsctl_jmespath_error err;
    struct kmsctl_jmespath *jp = kmsctl_jmespath_compile(query, &err);
    json_t *out = NULL;

    if (jp == NULL) {
        kmsctl_check_query(query);
        return NULL;
    }
    if (kmsctl_jmespath_search(jp, value, &out, &err) != 0) {
        fprintf(stderr,
                "kmsctl: error: the call succeeded but --query '%s' failed on its response: %s\n",
                query, err.message);
    }
    kmsctl_jmespath_free(jp);
    return out;
}

/* ---- JSON ----------------------------------------------------------------------------------- */

/* Python's repr(float): the shortest digits that read back the same, positional notation for
 * exponents -4..15, else d.ddde+XX. Timestamps (CreationDate) are such numbers. */
void kmsctl_format_real(double d, char *out, size_t size)
{
    char tmp[40];
    char digits[24];
    char buf[64];
    size_t nd = 0;
    size_t n = 0;
    int exp10;
    const char *e = NULL;

    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) {
            break;
        }
    }
    e = strchr(tmp, 'e');
    exp10 = atoi(e + 1);
    for (const char *p = tmp; p < e && nd + 1 < sizeof digits; p++) {
        if (isdigit((unsigned char)*p)) {
            digits[nd++] = *p;
        }
    }
    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }
    if (d < 0) {
        buf[n++] = '-';
    }
    if (exp10 < -4 || exp10 >= 16) {
        buf[n++] = digits[0];
        if (nd > 1) {
            buf[n++] = '.';
            memcpy(buf + n, digits + 1, nd - 1);
            n += nd - 1;
        }
        snprintf(buf + n, sizeof buf - n, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (exp10 < 0) {
        buf[n++] = '0';
        buf[n++] = '.';
        for (int z = 0; z < -exp10 - 1; z++) {
            buf[n++] = '0';
        }
        memcpy(buf + n, digits, nd);
        buf[n + nd] = '\0';
    } else {
        size_t whole = (size_t)exp10 + 1;
        for (size_t i = 0; i < whole; i++) {
            buf[n++] = i < nd ? digits[i] : '0';
        }
        buf[n++] = '.';
        if (whole >= nd) {
            buf[n++] = '0';
        } else {
            memcpy(buf + n, digits + whole, nd - whole);
            n += nd - whole;
        }
        buf[n] = '\0';
    }
    snprintf(out, size, "%s", buf);
}

static void print_json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\b':
            fputs("\\b", f);
            break;
        case '\f':
            fputs("\\f", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (c < 0x20) {
                fprintf(f, "\\u%04x", c);
            } else {
                fputc(c, f);
            }
        }
    }
    fputc('"', f);
}

static void print_scalar_json(FILE *f, json_t *v)
{
    char num[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        print_json_string(f, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        kmsctl_format_real(json_real_value(v), num, sizeof num);
        fputs(num, f);
        break;
    case JSON_TRUE:
        fputs("true", f);
        break;
    case JSON_FALSE:
        fputs("false", f);
        break;
    default:
        fputs("null", f);
    }
}

static void print_json(FILE *f, json_t *v, int depth);

static void print_object(FILE *f, json_t *v, int depth)
{
    void *it = json_object_iter(v);

    if (it == NULL) {
        fputs("{}", f);
        return;
    }
    fputs("{\n", f);
    while (it != NULL) {
        const char *key = json_object_iter_key(it);
        fprintf(f, "%*s", (depth + 1) * 4, "");
        print_json_string(f, key, strlen(key));
        fputs(": ", f);
        print_json(f, json_object_iter_value(it), depth + 1);
        it = json_object_iter_next(v, it);
        fputs(it != NULL ? ",\n" : "\n", f);
    }
    fprintf(f, "%*s}", depth * 4, "");
}

static void print_array(FILE *f, json_t *v, int depth)
{
    size_t n = json_array_size(v);

    if (n == 0) {
        fputs("[]", f);
        return;
    }
    fputs("[\n", f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%*s", (depth + 1) * 4, "");
        print_json(f, json_array_get(v, i), depth + 1);
        fputs(i + 1 < n ? ",\n" : "\n", f);
    }
    fprintf(f, "%*s]", depth * 4, "");
}

static void print_json(FILE *f, json_t *v, int depth)
{
    if (json_is_object(v)) {
        print_object(f, v, depth);
    } else if (json_is_array(v)) {
        print_array(f, v, depth);
    } else {
        print_scalar_json(f, v);
    }
}

/* ---- The formats of --output ------------------------------------------------------------------
 */

/* One value (the response after --query) in the format asked for. yaml-stream prints a response
 * as a list of one (awscli's StreamedYAMLFormatter; a paginated listing prints one per page). */
static int print_formatted(FILE *f, const struct globals *g, json_t *v)
{
    int r = 0;
    json_t *one = NULL;

    switch (g->output) {
    case OUTPUT_TEXT:
        kmsctl_text_print(f, v);
        break;
    case OUTPUT_TABLE:
        r = kmsctl_table_print(
            f, g->title, g->color != NULL ? strcmp(g->color, "on") == 0 : isatty(fileno(f)) == 1,
            v);
        break;
    case OUTPUT_YAML:
        if (json_is_object(v) || json_is_array(v)) {
            r = kmsctl_yaml_print(f, v);
        } else {
            /* A scalar as JSON, so that YAML does not end it with "..." (awscli's YAMLDumper). */
            print_json(f, v, 0);
            fputc('\n', f);
        }
        break;
    case OUTPUT_YAML_STREAM:
        if ((one = json_array()) == NULL || json_array_append(one, v) != 0) {
            r = -1;
        } else {
            r = kmsctl_yaml_print(f, one);
        }
        json_decref(one);
        break;
    default:
        print_json(f, v, 0);
        fputc('\n', f);
    }
    return r;
}

/* ---- Entry points -------------------------------------------------------------------------- */

int kmsctl_print_value(const struct globals *g, json_t *value)
{
    json_t *selected = g->query != NULL ? query_select(g->query, value)
                                        : json_incref(value != NULL ? value : json_null());

    if (selected == NULL) {
        return KMSCTL_EXIT_SERVICE;
    }
    int printed = print_formatted(stdout, g, selected);
    json_decref(selected);
    if (printed != 0 || fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "kmsctl: error: cannot write the output\n");
        return KMSCTL_EXIT_SERVICE;
    }
    return KMSCTL_EXIT_OK;
}

int kmsctl_print_response(const struct globals *g, const char *response)
{
    json_error_t err;
    json_t *v = NULL;
    int r;

    if (response == NULL || response[strspn(response, " \t\r\n")] == '\0') {
        return KMSCTL_EXIT_OK;
    }
    v = json_loads(response, 0, &err);
    if (!json_is_object(v)) {
        json_decref(v);
        return kmsctl_error_json("KMSInternalException",
                                 "kmsctl: the library returned a response that is not a JSON "
                                 "object");
    }
    /* EnableKey and friends answer {}: aws prints nothing for them. */
    if (json_object_size(v) == 0 && g->query == NULL) {
        json_decref(v);
        return KMSCTL_EXIT_OK;
    }
    kmsctl_response_shape(g, v);
    r = kmsctl_print_value(g, v);
    json_decref(v);
    return r;
}

int kmsctl_error_json(const char *type, const char *message)
{
    json_t *e = json_object();
    json_t *m = json_string(message);
    char *s = NULL;

    json_object_set_new(e, "__type", json_string(type));
    json_object_set_new(e, "message",
                        m != NULL ? m : json_string("(the error message is not valid UTF-8)"));
    /* No indent: one line, with aws's ", " and ": " separators. */
    s = json_dumps(e, 0);
    fprintf(stderr, "%s\n", s != NULL ? s : "{\"__type\": \"KMSInternalException\"}");
    free(s);
    json_decref(e);
    return KMSCTL_EXIT_SERVICE;
}

int kmsctl_service_error(void)
{
    return kmsctl_service_error_hint("");
}

int kmsctl_service_error_hint(const char *hint)
{
    kms_error code = kms_last_error();
    const char *name = kms_last_error_code(); /* as the operation's service names it */
    const char *message = kms_last_error_message();
    if (hint[0] == '\0' && code == KMS_ERR_HOME && message != NULL &&
        strstr(message, "is not a KMS home") != NULL) {
        hint = " With kmsctl: --home DIR, or KMS_HOME.";
    }
    if (hint[0] == '\0' && kmsctl_aws_identity &&
        (code == KMS_ERR_UNRECOGNIZED_CLIENT || code == KMS_ERR_BAD_SIGNATURE)) {
        hint = " (the identity came from the AWS_ variables, as the aws CLI reads them, since "
               "no KMS_ACCESS_KEY_ID or KMS_PROFILE is set: unset AWS_ACCESS_KEY_ID and "
               "AWS_PROFILE, or name this home's identity with KMS_ACCESS_KEY_ID, KMS_PROFILE or "
               "--profile)";
    }

    if (code == KMS_OK || name == NULL) {
        /* A failure without a recorded reason is a library bug; still fail closed. */
        return kmsctl_error_json("KMSInternalException",
                                 message != NULL && *message != '\0' ? message : "unknown error");
    }
    char *text = NULL;
    if (hint[0] != '\0' && message != NULL && (text = malloc(strlen(message) + strlen(hint) + 1))) {
        strcpy(text, message);
        strcat(text, hint);
    }
    int r = kmsctl_error_json(name, text != NULL ? text : message != NULL ? message : "");
    free(text);
    return r;
}

/* The first bytes of an AWS Encryption SDK message: version 2 and a suite id of the
 * specification, or version 1 and type 0x80 (customer authenticated encrypted data). */
static bool looks_envelope(const unsigned char *p, size_t n)
{
    static const unsigned suites[] = {0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178,
                                      0x0214, 0x0346, 0x0378, 0x0478, 0x0578};
    if (n >= 2 && p[0] == 0x01 && p[1] == 0x80) {
        return true;
    }
    for (size_t i = 0; n >= 3 && p[0] == 0x02 && i < sizeof suites / sizeof suites[0]; i++) {
        if (((unsigned)p[1] << 8 | p[2]) == suites[i]) {
            return true;
        }
    }
    return false;
}

void kmsctl_ciphertext_hint(const unsigned char *head, size_t n, long long total, bool envelope,
                            const char *where, char *hint, size_t size)
{
    /* A KMS ciphertext blob: format version 1, the key id (16), its material version (4), the
     * IV (12), at least the tag (16); at most 6 KiB. */
    bool blob =
        n >= 1 && head[0] == 0x01 && total >= 49 && total <= 6144 && !looks_envelope(head, n);
    hint[0] = '\0';
    if (kms_last_error() != KMS_ERR_INVALID_CIPHERTEXT) {
        return;
    }
    if (envelope && blob) {
        snprintf(hint, size,
                 "; %s looks like a KMS ciphertext blob (CiphertextBlob of kms-encrypt or "
                 "generate-data-key), not an envelope message: decrypt it with `kmsctl kms-decrypt "
                 "--ciphertext-blob fileb://%s`",
                 where, where);
    } else if (!envelope && looks_envelope(head, n)) {
        snprintf(
            hint, size,
            "; it is an envelope message (AWS Encryption SDK format, as `kmsctl encrypt` "
            "writes), not a KMS ciphertext blob: decrypt it with `kmsctl decrypt -i %s -o OUT`",
            where);
    }
}

/* The response members AWS's service models type as timestamps (KMS, IAM, STS, CloudTrail,
 * ACM, ACM PCA, Organizations) that the library answers as epoch seconds. */
static const char *const timestamp_members[] = {"CreationDate",
                                                "DeletionDate",
                                                "ValidTo",
                                                "RotationDate",
                                                "NextRotationDate",
                                                "OnDemandRotationStartDate",
                                                "CreateDate",
                                                "UpdateDate",
                                                "EnableDate",
                                                "LastUsedDate",
                                                "LastUpdatedDate",
                                                "Expiration",
                                                "EventTime",
                                                "StartTime",
                                                "EndTime",
                                                "CreatedAt",
                                                "IssuedAt",
                                                "ImportedAt",
                                                "RevokedAt",
                                                "NotBefore",
                                                "NotAfter",
                                                "UpdatedAt",
                                                "LastStateChangeAt",
                                                "RestorableUntil",
                                                "JoinedTimestamp",
                                                "RequestedTimestamp",
                                                "CompletedTimestamp",
                                                "TrackingStartDate",
                                                "KeyCreationDate",
                                                "Timestamp",
                                                NULL};

static bool is_timestamp_member(const char *key)
{
    for (size_t i = 0; timestamp_members[i] != NULL; i++) {
        if (strcmp(key, timestamp_members[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* seconds since the epoch as the aws CLI v2 prints a timestamp (Python's isoformat of a UTC
 * datetime): 2026-12-07T22:52:35+00:00, or with .ffffff when there are microseconds. */
static json_t *iso_timestamp(double seconds)
{
    char text[64];
    if (seconds < 0) {
        return NULL; /* before 1970: printed as the number it is */
    }
    time_t whole = (time_t)seconds;
    long micros = (long)((seconds - (double)whole) * 1e6 + 0.5);
    if (micros >= 1000000) {
        whole++;
        micros -= 1000000;
    }
    struct tm tm;
    if (gmtime_r(&whole, &tm) == NULL) {
        return NULL;
    }
    size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (micros > 0) {
        n += (size_t)snprintf(text + n, sizeof text - n, ".%06ld", micros);
    }
    snprintf(text + n, sizeof text - n, "+00:00");
    return json_string(text);
}

void kmsctl_iso_dates(json_t *v)
{
    const char *key;
    json_t *member;
    size_t i;
    if (json_is_array(v)) {
        json_array_foreach(v, i, member)
        {
            kmsctl_iso_dates(member);
        }
        return;
    }
    json_object_foreach(v, key, member)
    {
        if (json_is_number(member) && is_timestamp_member(key)) {
            json_t *iso = iso_timestamp(json_number_value(member));
            if (iso != NULL) {
                json_object_set_new(v, key, iso); /* replacing a member keeps the iteration */
            }
        } else {
            kmsctl_iso_dates(member);
        }
    }
}

/* ---- IAM policy documents ----------------------------------------------------------------------
 * botocore's json_decode_policies (after-call.iam): every member of IAM's policyDocumentType
 * (the inline policies' PolicyDocument, a role's AssumeRolePolicyDocument, a policy version's
 * Document) arrives as URL-encoded JSON text and is printed as the JSON object it decodes to. */

static const char *const policy_members[] = {"PolicyDocument", "AssumeRolePolicyDocument",
                                             "Document", NULL};

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Python's urllib.parse.unquote: %XX decoded, anything else kept. */
static char *url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1;
        int lo = i + 2 < n ? hex_digit(s[i + 2]) : -1;
        if (s[i] == '%' && hi >= 0 && lo >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* The document a member holds: the text as it is (the library answers plain JSON), else
 * URL-decoded (the wire's form); NULL when neither is a JSON object. */
static json_t *policy_document(json_t *text)
{
    json_t *doc = json_loadb(json_string_value(text), json_string_length(text), 0, NULL);
    char *decoded = NULL;

    if (json_is_object(doc)) {
        return doc;
    }
    json_decref(doc);
    decoded = url_decode(json_string_value(text), json_string_length(text));
    doc = decoded != NULL ? json_loads(decoded, 0, NULL) : NULL;
    free(decoded);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static void decode_policies(json_t *v)
{
    const char *key = NULL;
    json_t *member = NULL;
    size_t i;

    if (json_is_array(v)) {
        json_array_foreach(v, i, member)
        {
            decode_policies(member);
        }
        return;
    }
    json_object_foreach(v, key, member)
    {
        bool policy = false;
        for (size_t k = 0; policy_members[k] != NULL; k++) {
            policy = policy || strcmp(key, policy_members[k]) == 0;
        }
        json_t *doc = policy && json_is_string(member) ? policy_document(member) : NULL;
        if (doc != NULL) {
            /* Replacing a member keeps the iteration; a failure leaves the text. */
            if (json_object_set_new(v, key, doc) != 0) {
                continue;
            }
        } else {
            decode_policies(member);
        }
    }
}

void kmsctl_response_shape(const struct globals *g, json_t *v)
{
    kmsctl_iso_dates(v);
    if (g->operation != NULL && strncmp(g->operation, "iam:", 4) == 0) {
        decode_policies(v);
    }
}
