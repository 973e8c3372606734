/* Wildcards, policy variables and ARNs: the matching primitives of the evaluator.
 *
 * IAM wildcards (IAM User Guide, "IAM JSON policy elements reference", Action/Resource): '*'
 * matches any run of characters including none, '?' exactly one. Policy variables (IAM User
 * Guide, "IAM policy elements: Variables and tags"): ${key} is the value of a context key,
 * ${key, 'default'} falls back to a default, ${*} ${?} ${$} are the literal characters; a
 * substituted value is literal text, never a wildcard. Nothing here allocates at match time. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

static inline unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* ---- Compiling a pattern --------------------------------------------------------------------- */
static size_t trim(const char **s, size_t n)
{
    while (n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        n--;
    }
    while (n > 0 && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t')) {
        n--;
    }
    return n;
}

static char *dup_n(const char *s, size_t n, bool lower)
{
    char *d = malloc(n + 1);
    if (d == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        d[i] = lower ? (char)fold((unsigned char)s[i]) : s[i];
    }
    d[n] = '\0';
    return d;
}

/* One "${...}" body: a special character, or a key with an optional quoted default. Returns 1
 * when added as a variable, 0 when the body is a literal character (*lit set), -1 out of
 * memory, 2 when the body is not a variable at all (empty key): the text stays literal. */
static int add_var(pol_pattern *p, const char *body, size_t n, uint16_t *lit)
{
    n = trim(&body, n);
    if (n == 1 && (body[0] == '*' || body[0] == '?' || body[0] == '$')) {
        *lit = (uint16_t)(unsigned char)body[0];
        return 0;
    }
    const char *comma = memchr(body, ',', n);
    const char *key = body;
    size_t klen = comma != NULL ? (size_t)(comma - body) : n;
    klen = trim(&key, klen);
    if (klen == 0) {
        return 2;
    }
    pol_var v = {NULL, 0, NULL};
    v.key = dup_n(key, klen, true); /* context keys compare case-insensitively (policy.h) */
    if (v.key == NULL) {
        return -1;
    }
    v.hash = kms_policy_key_hash(v.key);
    if (comma != NULL) {
        const char *d = comma + 1;
        size_t dlen = trim(&d, n - (size_t)(comma + 1 - body));
        if (dlen >= 2 && d[0] == '\'' && d[dlen - 1] == '\'') {
            d++;
            dlen -= 2;
        }
        v.def = dup_n(d, dlen, false);
        if (v.def == NULL) {
            free(v.key);
            return -1;
        }
    }
    p->vars[p->nvars++] = v;
    return 1;
}

int kms_policy_pattern_compile(const char *text, pat_opts opts, pol_pattern *out)
{
    size_t len = strlen(text);
    memset(out, 0, sizeof *out);
    out->codes = malloc((len + 1) * sizeof *out->codes);
    /* At most one variable per three bytes ("${x}" is four). */
    out->vars = opts.variables ? calloc(len / 3 + 1, sizeof *out->vars) : NULL;
    if (out->codes == NULL || (opts.variables && out->vars == NULL)) {
        kms_policy_pattern_clean_up(out);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        if (opts.variables && c == '$' && i + 1 < len && text[i + 1] == '{') {
            const char *close = memchr(text + i + 2, '}', len - i - 2);
            if (close != NULL) {
                uint16_t lit = 0;
                size_t before = out->nvars;
                int r = add_var(out, text + i + 2, (size_t)(close - (text + i + 2)), &lit);
                if (r < 0) {
                    kms_policy_pattern_clean_up(out);
                    return kms_raise(KMS_ERR_INTERNAL, "out of memory");
                }
                if (r != 2) {
                    out->codes[out->n++] = r == 1 ? (uint16_t)(PAT_VAR + before) : lit;
                    i = (size_t)(close - text) + 1;
                    continue;
                }
            }
        }
        if (opts.wildcards && c == '*') {
            out->codes[out->n++] = PAT_STAR;
        } else if (opts.wildcards && c == '?') {
            out->codes[out->n++] = PAT_QMARK;
        } else {
            out->codes[out->n++] = opts.lower ? fold(c) : c;
        }
        i++;
    }
    out->any = out->n == 1 && out->codes[0] == PAT_STAR;
    for (size_t i = 0; i < out->n && i < 8 && out->codes[i] < 0x100; i++) {
        out->head |= (uint64_t)out->codes[i] << (8 * i);
        out->head_mask |= (uint64_t)0xff << (8 * i);
    }
    return 0;
}

void kms_policy_pattern_clean_up(pol_pattern *p)
{
    for (size_t i = 0; i < p->nvars; i++) {
        free(p->vars[i].key);
        free(p->vars[i].def);
    }
    free(p->vars);
    free(p->codes);
    memset(p, 0, sizeof *p);
}

/* ---- Matching -------------------------------------------------------------------------------- */
bool kms_policy_glob_codes(const uint16_t *p, size_t pn, const char *t, size_t tn, bool ci)
{
    /* Greedy match with one backtrack point: the last '*' seen absorbs one more character
     * whenever the rest fails. Linear in practice, O(pn * tn) at worst, no recursion. */
    size_t pi = 0, ti = 0, star_p = SIZE_MAX, star_t = 0;
    while (ti < tn) {
        unsigned char c = ci ? fold((unsigned char)t[ti]) : (unsigned char)t[ti];
        if (pi < pn && p[pi] == PAT_STAR) {
            star_p = ++pi;
            star_t = ti;
            continue;
        }
        if (pi < pn && (p[pi] == PAT_QMARK || p[pi] == c)) {
            pi++;
            ti++;
            continue;
        }
        if (star_p == SIZE_MAX) {
            return false;
        }
        pi = star_p;
        ti = ++star_t;
    }
    while (pi < pn && p[pi] == PAT_STAR) {
        pi++;
    }
    return pi == pn;
}

bool kms_policy_pattern_expand(const pol_pattern *p, const kms_policy_ctx *ctx, uint16_t *out,
                               size_t cap, size_t *n)
{
    size_t o = 0;
    for (size_t i = 0; i < p->n; i++) {
        uint16_t c = p->codes[i];
        if (c < PAT_VAR) {
            if (o == cap) {
                return false;
            }
            out[o++] = c;
            continue;
        }
        const pol_var *v = &p->vars[c - PAT_VAR];
        const ctx_entry *e = ctx != NULL ? kms_policy_ctx_find(ctx, v->key, v->hash) : NULL;
        /* A multivalued key cannot be a variable (IAM User Guide, "Single-valued vs multivalued
         * context keys"); its first value stands in, as kms_policy_ctx_get reads it. */
        const char *val = (e != NULL && e->n > 0) ? e->values[0] : v->def;
        if (val == NULL) {
            return false; /* "Variables and tags": no value, no default: no match */
        }
        for (; *val != '\0'; val++) {
            if (o == cap) {
                return false;
            }
            out[o++] = (unsigned char)*val;
        }
    }
    *n = o;
    return true;
}

bool kms_policy_pattern_match(const pol_pattern *p, const kms_policy_ctx *ctx, const char *text,
                              size_t tlen, bool ci)
{
    if (p->any) {
        return true;
    }
    if (p->nvars == 0) {
        return kms_policy_glob_codes(p->codes, p->n, text, tlen, ci);
    }
    uint16_t buf[PAT_EXPAND_MAX];
    size_t n = 0;
    if (!kms_policy_pattern_expand(p, ctx, buf, PAT_EXPAND_MAX, &n)) {
        return false;
    }
    if (ci) {
        for (size_t i = 0; i < n; i++) {
            buf[i] = buf[i] < 0x100 ? fold((unsigned char)buf[i]) : buf[i];
        }
    }
    return kms_policy_glob_codes(buf, n, text, tlen, ci);
}

uint64_t kms_policy_text_head(const char *text, size_t tlen, bool ci)
{
    uint64_t h = 0;
    for (size_t i = 0; i < tlen && i < 8; i++) {
        unsigned char c = ci ? fold((unsigned char)text[i]) : (unsigned char)text[i];
        h |= (uint64_t)c << (8 * i);
    }
    return h;
}

bool kms_policy_pattern_match_head(const pol_pattern *p, const kms_policy_ctx *ctx,
                                   const char *text, size_t tlen, bool ci, uint64_t thead)
{
    /* The literal head must be there byte for byte; a text shorter than the head has zero
     * bytes where the pattern has none (no pattern code is a NUL byte: texts are C strings). */
    if ((thead & p->head_mask) != p->head) {
        return false;
    }
    return kms_policy_pattern_match(p, ctx, text, tlen, ci);
}

bool kms_policy_pattern_equals(const pol_pattern *p, const kms_policy_ctx *ctx, const char *text,
                               size_t tlen, bool ci)
{
    uint16_t buf[PAT_EXPAND_MAX];
    const uint16_t *codes = p->codes;
    size_t n = p->n;
    if (p->nvars > 0) {
        if (!kms_policy_pattern_expand(p, ctx, buf, PAT_EXPAND_MAX, &n)) {
            return false;
        }
        codes = buf;
    }
    if (n != tlen) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char t = (unsigned char)text[i];
        uint16_t c = codes[i];
        if (ci) {
            t = fold(t);
            c = c < 0x100 ? fold((unsigned char)c) : c;
        }
        if (c != t) {
            return false;
        }
    }
    return true;
}

/* Splits codes at the first five ':' into six fields (start offsets, end offsets). */
static bool split_codes(const uint16_t *p, size_t n, size_t start[6], size_t end[6])
{
    size_t f = 0;
    start[0] = 0;
    for (size_t i = 0; i < n && f < 5; i++) {
        if (p[i] == ':') {
            end[f] = i;
            start[++f] = i + 1;
        }
    }
    end[f] = n;
    return f == 5;
}

static bool split_text(const char *t, size_t n, size_t start[6], size_t end[6])
{
    size_t f = 0;
    start[0] = 0;
    for (size_t i = 0; i < n && f < 5; i++) {
        if (t[i] == ':') {
            end[f] = i;
            start[++f] = i + 1;
        }
    }
    end[f] = n;
    return f == 5;
}

bool kms_policy_pattern_arn_match(const pol_pattern *p, const kms_policy_ctx *ctx, const char *text)
{
    uint16_t buf[PAT_EXPAND_MAX];
    const uint16_t *codes = p->codes;
    size_t n = p->n, tn = strlen(text);
    if (p->any) {
        return true;
    }
    if (p->nvars > 0) {
        if (!kms_policy_pattern_expand(p, ctx, buf, PAT_EXPAND_MAX, &n)) {
            return false;
        }
        codes = buf;
    }
    size_t ps[6], pe[6], ts[6], te[6];
    if (!split_codes(codes, n, ps, pe)) {
        /* Not six fields ("*", a bare wildcard): the value as one pattern. */
        return kms_policy_glob_codes(codes, n, text, tn, false);
    }
    if (!split_text(text, tn, ts, te)) {
        return false;
    }
    for (size_t f = 0; f < 6; f++) {
        if (!kms_policy_glob_codes(codes + ps[f], pe[f] - ps[f], text + ts[f], te[f] - ts[f],
                                   false)) {
            return false;
        }
    }
    return true;
}

/* ---- Public helpers ------------------------------------------------------------------------- */
bool kms_policy_glob(const char *pattern, const char *text, bool case_insensitive)
{
    if (pattern == NULL || text == NULL) {
        return false;
    }
    /* The same algorithm as kms_policy_glob_codes, on plain characters. */
    const char *p = pattern, *t = text, *star_p = NULL, *star_t = NULL;
    while (*t != '\0') {
        unsigned char pc = (unsigned char)*p, tc = (unsigned char)*t;
        if (case_insensitive) {
            pc = fold(pc);
            tc = fold(tc);
        }
        if (*p == '*') {
            star_p = ++p;
            star_t = t;
            continue;
        }
        if (*p != '\0' && (*p == '?' || pc == tc)) {
            p++;
            t++;
            continue;
        }
        if (star_p == NULL) {
            return false;
        }
        p = star_p;
        t = ++star_t;
    }
    while (*p == '*') {
        p++;
    }
    return *p == '\0';
}

bool kms_policy_is_account_id(const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 12) {
            return false;
        }
    }
    return i == 12;
}

int kms_policy_arn_account_split(const char *arn, char out[13])
{
    if (arn == NULL || strncmp(arn, "arn:", 4) != 0) {
        return -1;
    }
    /* arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE: the account is the fifth field. */
    const char *p = arn;
    const char *field = NULL;
    for (int colons = 0; colons < 5; colons++) {
        p = strchr(p, ':');
        if (p == NULL) {
            return -1;
        }
        p++;
        if (colons == 3) {
            field = p;
        }
    }
    size_t n = (size_t)(p - 1 - field);
    if (n > 12) {
        return -1;
    }
    memcpy(out, field, n);
    out[n] = '\0';
    return 0;
}

int kms_policy_arn_account(const char *arn, char out[13])
{
    if (kms_policy_arn_account_split(arn, out) != 0) {
        return kms_raise(KMS_ERR_INVALID_ARN, "'%s' is not an ARN", arn != NULL ? arn : "");
    }
    return 0;
}
