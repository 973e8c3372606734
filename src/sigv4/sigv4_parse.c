/* SigV4: the Authorization header's parser (strict, see sigv4.h). */
#include "sigv4/sigv4.h"

#include <string.h>
#include <time.h>

#include "util/error.h"

#define INCOMPLETE KMS_ERR_INCOMPLETE_SIGNATURE

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A lowercase header-name character (RFC 9110 tchar, without the uppercase letters). */
static int is_header_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* Copies [s, s+len) into out (size cap+1) if 1 <= len <= cap and every byte passes ok. */
static int copy_part(const char *what, const char *s, size_t len, char *out, size_t cap,
                     int (*ok)(char))
{
    KMS_ENSURE(len > 0, INCOMPLETE, "Authorization header: empty %s", what);
    KMS_ENSURE(len <= cap, INCOMPLETE, "Authorization header: %s longer than %zu characters", what,
               cap);
    for (size_t i = 0; i < len; i++) {
        KMS_ENSURE(ok(s[i]), INCOMPLETE, "Authorization header: invalid character in %s", what);
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

static int is_scope_char(char c)
{
    return is_alnum(c) || c == '-' || c == '_' || c == '.';
}

/* YYYYMMDD, a day of the calendar (not 20150230, which timegm would make March 2nd). */
static int valid_date(const char *d)
{
    struct tm tm = {0};
    int year;
    int month;
    int day;
    time_t t;
    for (int i = 0; i < 8; i++) {
        if (!is_digit(d[i])) {
            return 0;
        }
    }
    year = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    month = (d[4] - '0') * 10 + (d[5] - '0');
    day = (d[6] - '0') * 10 + (d[7] - '0');
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = 12;
    t = timegm(&tm); /* normalises tm: 20150230 becomes March 2nd */
    return year >= 1970 && gmtime_r(&t, &tm) != NULL && tm.tm_year == year - 1900 &&
           tm.tm_mon == month - 1 && tm.tm_mday == day;
}

static int parse_credential(const char *s, size_t len, kms_sigv4_auth *out)
{
    const char *end = s + len;
    const char *parts[5];
    size_t lens[5];
    const char *p = s;
    for (int i = 0; i < 5; i++) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = (i == 4 || slash == NULL) ? end : slash;
        KMS_ENSURE(i == 4 || slash != NULL, INCOMPLETE,
                   "Authorization header: Credential is not AKID/DATE/REGION/SERVICE/aws4_request");
        parts[i] = p;
        lens[i] = (size_t)(stop - p);
        p = stop + (stop < end ? 1 : 0);
    }
    KMS_ENSURE(lens[4] == 12 && memcmp(parts[4], "aws4_request", 12) == 0, INCOMPLETE,
               "Authorization header: Credential must end with /aws4_request");
    KMS_GUARD(copy_part("access key id", parts[0], lens[0], out->access_key_id, KMS_SIGV4_AKID_MAX,
                        is_alnum));
    KMS_ENSURE(lens[1] == 8, INCOMPLETE, "Authorization header: credential date is not YYYYMMDD");
    memcpy(out->date, parts[1], 8);
    out->date[8] = '\0';
    KMS_ENSURE(valid_date(out->date), INCOMPLETE,
               "Authorization header: credential date is not YYYYMMDD");
    KMS_GUARD(copy_part("region", parts[2], lens[2], out->region, KMS_SIGV4_SCOPE_PART_MAX,
                        is_scope_char));
    KMS_GUARD(copy_part("service", parts[3], lens[3], out->service, KMS_SIGV4_SCOPE_PART_MAX,
                        is_scope_char));
    return 0;
}

static int is_signed_headers_char(char c)
{
    return is_header_char(c) || c == ';';
}

static int parse_signed_headers(const char *s, size_t len, kms_sigv4_auth *out)
{
    const char *prev = NULL;
    size_t prev_len = 0;
    int host = 0;
    int date = 0;
    KMS_GUARD(copy_part("SignedHeaders", s, len, out->signed_headers, KMS_SIGV4_SIGNED_HEADERS_MAX,
                        is_signed_headers_char));
    for (const char *p = out->signed_headers;;) {
        const char *semi = strchr(p, ';');
        size_t n = semi != NULL ? (size_t)(semi - p) : strlen(p);
        KMS_ENSURE(n > 0, INCOMPLETE, "Authorization header: empty name in SignedHeaders");
        if (prev != NULL) {
            size_t m = n < prev_len ? n : prev_len;
            int c = memcmp(prev, p, m);
            KMS_ENSURE(c < 0 || (c == 0 && prev_len < n), INCOMPLETE,
                       "Authorization header: SignedHeaders not sorted or with duplicates");
        }
        host |= n == 4 && memcmp(p, "host", 4) == 0;
        date |= n == 10 && memcmp(p, "x-amz-date", 10) == 0;
        prev = p;
        prev_len = n;
        if (semi == NULL) {
            break;
        }
        p = semi + 1;
    }
    KMS_ENSURE(host && date, INCOMPLETE,
               "Authorization header: SignedHeaders must include host and x-amz-date");
    return 0;
}

static int is_sig_char(char c)
{
    return is_lower_hex(c);
}

static int parse_component(const char *s, size_t len, kms_sigv4_auth *out, unsigned *seen)
{
    static const char *const names[3] = {"Credential=", "SignedHeaders=", "Signature="};
    for (unsigned i = 0; i < 3; i++) {
        size_t n = strlen(names[i]);
        if (len < n || memcmp(s, names[i], n) != 0) {
            continue;
        }
        KMS_ENSURE((*seen & (1u << i)) == 0, INCOMPLETE, "Authorization header: %.*s given twice",
                   (int)(n - 1), names[i]);
        *seen |= 1u << i;
        s += n;
        len -= n;
        if (i == 0) {
            return parse_credential(s, len, out);
        }
        if (i == 1) {
            return parse_signed_headers(s, len, out);
        }
        KMS_ENSURE(len == 64, INCOMPLETE,
                   "Authorization header: Signature is not 64 hexadecimal digits");
        return copy_part("Signature", s, len, out->signature, 64, is_sig_char);
    }
    return kms_raise(INCOMPLETE, "Authorization header: unknown or malformed component");
}

int kms_sigv4_parse_authorization(const char *value, kms_sigv4_auth *out)
{
    const size_t alg_len = strlen(KMS_SIGV4_ALGORITHM);
    unsigned seen = 0;
    size_t len;
    const char *p;
    const char *end;
    memset(out, 0, sizeof *out);
    KMS_ENSURE(value != NULL, INCOMPLETE, "Authorization header is missing");
    len = strnlen(value, KMS_SIGV4_AUTH_MAX + 1);
    KMS_ENSURE(len <= KMS_SIGV4_AUTH_MAX, INCOMPLETE, "Authorization header is too long");
    KMS_ENSURE(len > alg_len && memcmp(value, KMS_SIGV4_ALGORITHM, alg_len) == 0 &&
                   value[alg_len] == ' ',
               INCOMPLETE, "Authorization header must start with " KMS_SIGV4_ALGORITHM " ");
    p = value + alg_len;
    end = value + len;
    for (;;) {
        const char *comma;
        const char *stop;
        while (p < end && *p == ' ') {
            p++;
        }
        comma = memchr(p, ',', (size_t)(end - p));
        stop = comma != NULL ? comma : end;
        if (parse_component(p, (size_t)(stop - p), out, &seen) != 0) {
            memset(out, 0, sizeof *out);
            return -1;
        }
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    if (seen != 7u) {
        memset(out, 0, sizeof *out);
        return kms_raise(INCOMPLETE, "Authorization header needs Credential, SignedHeaders and "
                                     "Signature");
    }
    return 0;
}
