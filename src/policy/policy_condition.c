/* The Condition element: operators, their values and their evaluation.
 *
 * IAM User Guide, "IAM JSON policy elements: Condition operators" and "Conditions with multiple
 * context keys or values", which this file follows:
 *  - Several operators in one Condition, and several keys under one operator, are ANDed; several
 *    values for one key are ORed, and for a negated operator (StringNotEquals, NotIpAddress,
 *    ArnNotLike, ...) NORed: the key must match none of them.
 *  - A key absent from the request context: "the values do not match and the condition is
 *    false. If the policy condition requires that the key is not matched, such as StringNotLike
 *    or ArnNotLike, and the right key is not present, the condition is true. This logic applies
 *    to all condition operators except ...IfExists and Null check" (Condition operators,
 *    Important box). ...IfExists is true when the key is absent; Null tests presence itself.
 *  - ForAllValues: true when every context value satisfies the operator, and also when the key
 *    is absent or empty; ForAnyValue: true when at least one does, false when the key is absent
 *    ("Single-valued vs multivalued context keys", Set operators). With a negated operator the
 *    negation applies to each context value (the table of "Multivalued context key examples":
 *    ForAllValues:StringNotLike "key1*" does not match [key1:legal] and matches [key2:audit]).
 *  - Policy variables are substituted in the values of String* and Arn* operators (and Bool),
 *    only under Version 2012-10-17 ("IAM policy elements: Variables and tags"). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/policy_internal.h"

typedef struct op_def {
    const char *name;
    cond_family family;
    bool negated;
} op_def;

static const op_def OPS[] = {
    {"StringEquals", COND_STRING_EQ, false},
    {"StringNotEquals", COND_STRING_EQ, true},
    {"StringEqualsIgnoreCase", COND_STRING_EQ_CI, false},
    {"StringNotEqualsIgnoreCase", COND_STRING_EQ_CI, true},
    {"StringLike", COND_STRING_LIKE, false},
    {"StringNotLike", COND_STRING_LIKE, true},
    {"NumericEquals", COND_NUM_EQ, false},
    {"NumericNotEquals", COND_NUM_EQ, true},
    {"NumericLessThan", COND_NUM_LT, false},
    {"NumericLessThanEquals", COND_NUM_LE, false},
    {"NumericGreaterThan", COND_NUM_GT, false},
    {"NumericGreaterThanEquals", COND_NUM_GE, false},
    {"DateEquals", COND_DATE_EQ, false},
    {"DateNotEquals", COND_DATE_EQ, true},
    {"DateLessThan", COND_DATE_LT, false},
    {"DateLessThanEquals", COND_DATE_LE, false},
    {"DateGreaterThan", COND_DATE_GT, false},
    {"DateGreaterThanEquals", COND_DATE_GE, false},
    {"Bool", COND_BOOL, false},
    {"BinaryEquals", COND_BINARY, false},
    {"IpAddress", COND_IP, false},
    {"NotIpAddress", COND_IP, true},
    {"ArnEquals", COND_ARN, false},
    {"ArnLike", COND_ARN, false},
    {"ArnNotEquals", COND_ARN, true},
    {"ArnNotLike", COND_ARN, true},
    {"Null", COND_NULL, false},
};

static const op_def *op_find(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
        if (strlen(OPS[i].name) == n && strncasecmp(OPS[i].name, name, n) == 0) {
            return &OPS[i];
        }
    }
    return NULL;
}

/* "ForAnyValue:StringLikeIfExists" -> StringLike, SET_ANY, if_exists. */
static int op_parse(const char *path, const char *op, pol_cond *c)
{
    const char *name = op;
    c->set = SET_NONE;
    if (strncasecmp(name, "ForAllValues:", 13) == 0) {
        c->set = SET_ALL;
        name += 13;
    } else if (strncasecmp(name, "ForAnyValue:", 12) == 0) {
        c->set = SET_ANY;
        name += 12;
    }
    size_t n = strlen(name);
    const op_def *d = op_find(name, n);
    c->if_exists = false;
    if (d == NULL && n > 8 && strcasecmp(name + n - 8, "IfExists") == 0) {
        d = op_find(name, n - 8);
        c->if_exists = true;
    }
    KMS_ENSURE(d != NULL, KMS_ERR_MALFORMED_POLICY, "%s: unknown operator '%s'", path, op);
    KMS_ENSURE(d->family != COND_NULL || (!c->if_exists && c->set == SET_NONE),
               KMS_ERR_MALFORMED_POLICY,
               "%s: operator '%s': Null takes neither IfExists nor a set qualifier", path, op);
    c->family = d->family;
    c->negated = d->negated;
    return 0;
}

/* ---- Value parsers -------------------------------------------------------------------------- */
bool kms_policy_parse_number(const char *s, double *out)
{
    /* Decimal only: strtod alone would also take "inf", "nan" and hex floats. */
    const char *p = s;
    size_t digits = 0;
    if (*p == '+' || *p == '-') {
        p++;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        digits++;
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            digits++;
        }
    }
    if (digits == 0 || *p != '\0' || p - s > 64) {
        return false;
    }
    *out = strtod(s, NULL);
    return true;
}

/* Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible Low-Level
 * Date Algorithms", days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* n decimal digits at *p into *v. */
static bool digits_n(const char **p, int n, int *v)
{
    int r = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') {
            return false;
        }
        r = r * 10 + (c - '0');
    }
    *p += n;
    *v = r;
    return true;
}

static bool parse_epoch(const char *s, int64_t *ms)
{
    const char *p = s;
    bool neg = *p == '-';
    p += neg;
    int64_t v = 0;
    size_t n = 0;
    for (; *p >= '0' && *p <= '9'; p++, n++) {
        if (n >= 15) {
            return false; /* beyond any date worth comparing; also keeps v from overflowing */
        }
        v = v * 10 + (*p - '0');
    }
    if (n == 0 || *p != '\0') {
        return false;
    }
    *ms = (neg ? -v : v) * 1000;
    return true;
}

/* ISO 8601 as the condition operators take it (Condition operators, Date condition operators:
 * "one of the W3C implementations of the ISO 8601 date formats" or UNIX epoch time:
 * "2020-01", "2020-01-01", "2020-01-01T00:00Z", "2020-01-01T00:00:01Z",
 * "2020-01-01T00:00:01.5+02:00"), with the zone optional ("Z", "+hh:mm", "+hhmm" or "+hh").
 * A bare "2020" is epoch seconds. */
bool kms_policy_parse_date(const char *s, int64_t *ms)
{
    if (parse_epoch(s, ms)) {
        return true;
    }
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
    if (!digits_n(&p, 4, &y) || *p++ != '-' || !digits_n(&p, 2, &mo)) {
        return false;
    }
    d = 1; /* W3C's "YYYY-MM" (the month's first day) */
    if (*p != '\0' && (*p++ != '-' || !digits_n(&p, 2, &d))) {
        return false;
    }
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)) {
        return false;
    }
    int64_t offset_min = 0;
    if (*p == 'T' || *p == 't') {
        p++;
        if (!digits_n(&p, 2, &h) || *p++ != ':' || !digits_n(&p, 2, &mi)) {
            return false;
        }
        if (*p == ':') {
            p++;
            if (!digits_n(&p, 2, &sec)) {
                return false;
            }
            if (*p == '.') {
                p++;
                int scale = 100, nd = 0;
                for (; *p >= '0' && *p <= '9'; p++, nd++) {
                    frac_ms += (*p - '0') * scale;
                    scale /= 10;
                }
                if (nd == 0) {
                    return false;
                }
            }
        }
        if (h > 23 || mi > 59 || sec > 60) {
            return false;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh = 0, om = 0;
            if (!digits_n(&p, 2, &oh)) {
                return false;
            }
            if (*p == ':') {
                p++;
            }
            if (*p != '\0' && !digits_n(&p, 2, &om)) {
                return false;
            }
            if (oh > 23 || om > 59) {
                return false;
            }
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (*p != '\0') {
        return false;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *ms = secs * 1000 + frac_ms;
    return true;
}

bool kms_policy_parse_ip(const char *s, bool allow_prefix, pol_ip *out)
{
    char buf[64];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof buf) {
        return false;
    }
    memcpy(buf, s, n + 1);
    char *slash = strchr(buf, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = 4;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = 6;
        out->prefix = 128;
    } else {
        return false;
    }
    if (slash != NULL) {
        const char *p = slash + 1;
        unsigned v = 0;
        size_t nd = 0;
        for (; *p >= '0' && *p <= '9' && nd < 4; p++, nd++) {
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (!allow_prefix || nd == 0 || *p != '\0' || v > out->prefix) {
            return false;
        }
        out->prefix = v;
    }
    return true;
}

static bool ip_in(const pol_ip *net, const pol_ip *a)
{
    if (net->family != a->family) {
        return false;
    }
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, a->addr, full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net->addr[full] & mask) == (a->addr[full] & mask);
}

/* ---- Compiling ------------------------------------------------------------------------------ */
/* A JSON condition value as text: strings as they are, numbers and booleans as written. */
static int value_text(const char *path, json_t *v, char *buf, size_t cap, const char **out)
{
    if (json_is_string(v)) {
        *out = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = buf;
    } else if (json_is_real(v)) {
        snprintf(buf, cap, "%.15g", json_real_value(v));
        *out = buf;
    } else if (json_is_boolean(v)) {
        *out = json_is_true(v) ? "true" : "false";
    } else {
        return kms_raise(KMS_ERR_MALFORMED_POLICY,
                         "%s: condition values must be strings, numbers or booleans", path);
    }
    return 0;
}

static int value_compile(const char *path, const pol_cond *c, const char *text, bool variables,
                         pol_cvalue *out)
{
    out->text = strdup(text);
    KMS_ENSURE(out->text != NULL, KMS_ERR_INTERNAL, "out of memory");
    pat_opts o = {false, variables, false};
    switch (c->family) {
    case COND_STRING_LIKE:
    case COND_ARN:
        o.wildcards = true;
        break;
    case COND_STRING_EQ_CI:
    case COND_BOOL:
        o.lower = true;
        break;
    case COND_BINARY:
        o.variables = false;
        break;
    case COND_NUM_EQ:
    case COND_NUM_LT:
    case COND_NUM_LE:
    case COND_NUM_GT:
    case COND_NUM_GE:
        KMS_ENSURE(kms_policy_parse_number(text, &out->num), KMS_ERR_MALFORMED_POLICY,
                   "%s: '%s' is not a number", path, text);
        return 0;
    case COND_DATE_EQ:
    case COND_DATE_LT:
    case COND_DATE_LE:
    case COND_DATE_GT:
    case COND_DATE_GE:
        KMS_ENSURE(kms_policy_parse_date(text, &out->ms), KMS_ERR_MALFORMED_POLICY,
                   "%s: '%s' is not a date (ISO 8601 or epoch seconds)", path, text);
        return 0;
    case COND_IP:
        KMS_ENSURE(kms_policy_parse_ip(text, true, &out->ip), KMS_ERR_MALFORMED_POLICY,
                   "%s: '%s' is not an IP address or CIDR block", path, text);
        return 0;
    case COND_NULL:
        KMS_ENSURE(strcasecmp(text, "true") == 0 || strcasecmp(text, "false") == 0,
                   KMS_ERR_MALFORMED_POLICY, "%s: Null takes \"true\" or \"false\", not '%s'", path,
                   text);
        out->flag = strcasecmp(text, "true") == 0;
        return 0;
    case COND_STRING_EQ:
        break;
    }
    return kms_policy_pattern_compile(text, o, &out->pat);
}

/* One key of an operator block into c (family and flags already set). */
static int cond_compile_key(const char *path, const char *key, json_t *vals, bool variables,
                            pol_cond *c)
{
    char kpath[512];
    snprintf(kpath, sizeof kpath, "%.300s.%.200s", path, key);
    KMS_ENSURE(key[0] != '\0', KMS_ERR_MALFORMED_POLICY, "%s: a condition key is empty", path);
    size_t n = json_is_array(vals) ? json_array_size(vals) : 1;
    KMS_ENSURE(n > 0, KMS_ERR_MALFORMED_POLICY, "%s: no values", kpath);
    c->key = strdup(key);
    c->values = calloc(n, sizeof *c->values);
    KMS_ENSURE(c->key != NULL && c->values != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (char *k = c->key; *k != '\0'; k++) {
        *k = (*k >= 'A' && *k <= 'Z') ? (char)(*k + ('a' - 'A')) : *k;
    }
    c->hash = kms_policy_key_hash(c->key);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_is_array(vals) ? json_array_get(vals, i) : vals;
        char buf[64];
        const char *text = NULL;
        if (json_is_null(v) && json_is_array(vals)) {
            continue; /* a null in a list of values is passed over, as IAM does */
        }
        KMS_GUARD(value_text(kpath, v, buf, sizeof buf, &text));
        c->nvalues++; /* counted first: clean_up frees a half-compiled value (zeroed slot) */
        KMS_GUARD(value_compile(kpath, c, text, variables, &c->values[c->nvalues - 1]));
    }
    KMS_ENSURE(c->nvalues > 0, KMS_ERR_MALFORMED_POLICY, "%s: no values", kpath);
    return 0;
}

int kms_policy_cond_compile(const char *path, const char *op, json_t *block, bool variables,
                            pol_cond **conds, size_t *nconds)
{
    char opath[300];
    snprintf(opath, sizeof opath, "%.160s.%.128s", path, op);
    pol_cond proto = {0};
    KMS_GUARD(op_parse(path, op, &proto));
    /* An empty block ({"StringEquals": {}}) adds no condition, as IAM accepts it. */
    KMS_ENSURE(json_is_object(block), KMS_ERR_MALFORMED_POLICY,
               "%s: must be an object of condition keys and values", opath);
    if (json_object_size(block) == 0) {
        return 0;
    }
    pol_cond *grown = realloc(*conds, (*nconds + json_object_size(block)) * sizeof **conds);
    KMS_ENSURE(grown != NULL, KMS_ERR_INTERNAL, "out of memory");
    *conds = grown;
    const char *key;
    json_t *vals;
    json_object_foreach(block, key, vals)
    {
        pol_cond *c = &(*conds)[*nconds];
        *c = proto;
        (*nconds)++; /* counted at once, so that the caller frees a half-built one */
        KMS_GUARD(cond_compile_key(opath, key, vals, variables, c));
    }
    return 0;
}

void kms_policy_cond_clean_up(pol_cond *c)
{
    for (size_t i = 0; i < c->nvalues; i++) {
        kms_policy_pattern_clean_up(&c->values[i].pat);
        free(c->values[i].text);
    }
    free(c->values);
    free(c->key);
    memset(c, 0, sizeof *c);
}

/* ---- Evaluating ----------------------------------------------------------------------------- */
typedef enum vresult {
    V_NO,
    V_MATCH,
    V_INVALID, /* the context value is not of the operator's type: the condition fails */
} vresult;

static bool num_cmp(cond_family f, double a, double b)
{
    switch (f) {
    case COND_NUM_EQ:
        return a == b;
    case COND_NUM_LT:
        return a < b;
    case COND_NUM_LE:
        return a <= b;
    case COND_NUM_GT:
        return a > b;
    default:
        return a >= b;
    }
}

static bool date_cmp(cond_family f, int64_t a, int64_t b)
{
    switch (f) {
    case COND_DATE_EQ:
        return a == b;
    case COND_DATE_LT:
        return a < b;
    case COND_DATE_LE:
        return a <= b;
    case COND_DATE_GT:
        return a > b;
    default:
        return a >= b;
    }
}

/* Does the i-th context value of e match any of the policy values (the un-negated test)? */
static vresult value_match(const pol_cond *c, const ctx_entry *e, size_t vi,
                           const kms_policy_ctx *ctx)
{
    const char *v = e->values[vi];
    /* The context value as the condition reads it, parsed the first time one compares it. */
    ctx_parsed parsed_, *parsed = &parsed_;
    size_t vlen = strlen(v);
    switch (c->family) {
    case COND_NUM_EQ:
    case COND_NUM_LT:
    case COND_NUM_LE:
    case COND_NUM_GT:
    case COND_NUM_GE:
        kms_policy_ctx_parsed(e, vi, parsed);
        if (!parsed->num_ok) {
            return V_INVALID;
        }
        break;
    case COND_DATE_EQ:
    case COND_DATE_LT:
    case COND_DATE_LE:
    case COND_DATE_GT:
    case COND_DATE_GE:
        kms_policy_ctx_parsed(e, vi, parsed);
        if (!parsed->date_ok) {
            return V_INVALID;
        }
        break;
    case COND_IP:
        kms_policy_ctx_parsed(e, vi, parsed);
        if (!parsed->ip_ok) {
            return V_INVALID;
        }
        break;
    default:
        break;
    }
    for (size_t i = 0; i < c->nvalues; i++) {
        const pol_cvalue *p = &c->values[i];
        bool m = false;
        switch (c->family) {
        case COND_STRING_EQ:
        case COND_BINARY:
            m = kms_policy_pattern_equals(&p->pat, ctx, v, vlen, false);
            break;
        case COND_STRING_EQ_CI:
        case COND_BOOL:
            m = kms_policy_pattern_equals(&p->pat, ctx, v, vlen, true);
            break;
        case COND_STRING_LIKE:
            m = kms_policy_pattern_match(&p->pat, ctx, v, vlen, false);
            break;
        case COND_ARN:
            m = kms_policy_pattern_arn_match(&p->pat, ctx, v);
            break;
        case COND_NUM_EQ:
        case COND_NUM_LT:
        case COND_NUM_LE:
        case COND_NUM_GT:
        case COND_NUM_GE:
            m = num_cmp(c->family, parsed->num, p->num);
            break;
        case COND_DATE_EQ:
        case COND_DATE_LT:
        case COND_DATE_LE:
        case COND_DATE_GT:
        case COND_DATE_GE:
            m = date_cmp(c->family, parsed->ms, p->ms);
            break;
        case COND_IP:
            m = ip_in(&p->ip, &parsed->ip);
            break;
        case COND_NULL:
            break;
        }
        if (m) {
            return V_MATCH;
        }
    }
    return V_NO;
}

bool kms_policy_cond_eval(const pol_cond *c, const kms_policy_ctx *ctx)
{
    const ctx_entry *e = ctx != NULL ? kms_policy_ctx_find(ctx, c->key, c->hash) : NULL;
    size_t n = e != NULL ? e->n : 0;
    if (c->family == COND_NULL) {
        /* Condition operators, "Condition operator to check existence of condition keys":
         * true means the key is absent, false that it is present. */
        for (size_t i = 0; i < c->nvalues; i++) {
            if (c->values[i].flag == (n == 0)) {
                return true;
            }
        }
        return false;
    }
    if (n == 0) {
        if (c->if_exists || c->set == SET_ALL) {
            return true;
        }
        return c->set == SET_ANY ? false : c->negated;
    }
    bool any_match = false;
    for (size_t i = 0; i < n; i++) {
        vresult r = value_match(c, e, i, ctx);
        bool holds = r != V_INVALID && ((r == V_MATCH) != c->negated);
        switch (c->set) {
        case SET_ALL:
            if (!holds) {
                return false;
            }
            break;
        case SET_ANY:
            if (holds) {
                return true;
            }
            break;
        case SET_NONE:
            if (r == V_INVALID) {
                return false;
            }
            any_match = any_match || r == V_MATCH;
            break;
        }
    }
    switch (c->set) {
    case SET_ALL:
        return true;
    case SET_ANY:
        return false;
    default:
        return any_match != c->negated;
    }
}
