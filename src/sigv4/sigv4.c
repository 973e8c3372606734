/* SigV4: the string to sign, the signing key, the signature and the verifier. */
#include "sigv4/sigv4_internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[in[i] >> 4];
        out[2 * i + 1] = hexdigits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- string to sign ---- */

int kms_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canonical_request,
                             char **out)
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    char hex[65];
    kms_sigv4_buf b = {0};
    *out = NULL;
    KMS_ENSURE(EVP_Digest(canonical_request, strlen(canonical_request), md, &mdlen, EVP_sha256(),
                          NULL) == 1 &&
                   mdlen == 32,
               KMS_ERR_INTERNAL, "SHA-256 failed");
    to_hex(md, 32, hex);
    if (kms_sigv4_buf_str(&b, KMS_SIGV4_ALGORITHM "\n") != 0 ||
        kms_sigv4_buf_str(&b, amz_date) != 0 || kms_sigv4_buf_str(&b, "\n") != 0 ||
        kms_sigv4_buf_str(&b, scope) != 0 || kms_sigv4_buf_str(&b, "\n") != 0 ||
        kms_sigv4_buf_str(&b, hex) != 0) {
        free(b.data);
        return -1;
    }
    *out = b.data;
    return 0;
}

/* ---- signing key and signature ---- */

static int hmac(const uint8_t *key, size_t key_len, const char *msg, uint8_t out[32])
{
    unsigned int len = 0;
    KMS_ENSURE(HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
                    &len) != NULL &&
                   len == 32,
               KMS_ERR_INTERNAL, "HMAC-SHA-256 failed");
    return 0;
}

int kms_sigv4_signing_key(const char *secret, const char *date, const char *region,
                          const char *service, uint8_t out[32])
{
    size_t slen = strlen(secret);
    uint8_t *k_secret = malloc(slen + 4);
    uint8_t k[32];
    int r = -1;
    memset(out, 0, 32);
    KMS_ENSURE(k_secret != NULL, KMS_ERR_INTERNAL, "out of memory");
    memcpy(k_secret, "AWS4", 4);
    memcpy(k_secret + 4, secret, slen);
    if ((r = hmac(k_secret, slen + 4, date, k)) != 0) {
        goto out;
    }
    if ((r = hmac(k, 32, region, k)) != 0) {
        goto out;
    }
    if ((r = hmac(k, 32, service, k)) != 0) {
        goto out;
    }
    if ((r = hmac(k, 32, "aws4_request", out)) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        sodium_memzero(out, 32);
    }
    sodium_memzero(k, sizeof k);
    sodium_memzero(k_secret, slen + 4);
    free(k_secret);
    return r;
}

int kms_sigv4_sign(const char *secret, const char *date, const char *region, const char *service,
                   const char *string_to_sign, char out[65])
{
    uint8_t key[32];
    uint8_t sig[32];
    int r = -1;
    out[0] = '\0';
    if ((r = kms_sigv4_signing_key(secret, date, region, service, key)) != 0) {
        goto out;
    }
    if ((r = hmac(key, 32, string_to_sign, sig)) != 0) {
        goto out;
    }
    to_hex(sig, 32, out);
    r = 0;
out:
    sodium_memzero(key, sizeof key);
    return r;
}

/* ---- verifier ---- */

static void format_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* x-amz-date "YYYYMMDDTHHMMSSZ" to seconds since the epoch. */
static int parse_amz_date(const char *s, time_t *out)
{
    struct tm tm = {0};
    char back[17];
    time_t t;
    int v[6];
    static const int at[6] = {0, 4, 6, 9, 11, 13};
    static const int width[6] = {4, 2, 2, 2, 2, 2};
    *out = 0;
    KMS_ENSURE(strlen(s) == 16 && s[8] == 'T' && s[15] == 'Z', KMS_ERR_BAD_SIGNATURE,
               "X-Amz-Date must be in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z')");
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int j = 0; j < width[i]; j++) {
            char c = s[at[i] + j];
            KMS_ENSURE(c >= '0' && c <= '9', KMS_ERR_BAD_SIGNATURE,
                       "X-Amz-Date must be in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z')");
            v[i] = v[i] * 10 + (c - '0');
        }
    }
    KMS_ENSURE(v[0] >= 1970 && v[1] >= 1 && v[1] <= 12 && v[2] >= 1 && v[2] <= 31 && v[3] <= 23 &&
                   v[4] <= 59 && v[5] <= 60,
               KMS_ERR_BAD_SIGNATURE, "X-Amz-Date is not a valid date and time");
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    t = timegm(&tm);
    /* A time of the calendar: timegm would make 20150230 March 2nd and second 60 the next. */
    format_amz_date(t, back);
    KMS_ENSURE(strcmp(back, s) == 0, KMS_ERR_BAD_SIGNATURE,
               "X-Amz-Date is not a valid date and time");
    *out = t;
    return 0;
}

static int check_time(const char *amz_date, time_t when, time_t now)
{
    char now_s[17];
    char bound[17];
    format_amz_date(now, now_s);
    if (when < now - KMS_SIGV4_MAX_SKEW) {
        format_amz_date(now - KMS_SIGV4_MAX_SKEW, bound);
        return kms_raise(KMS_ERR_BAD_SIGNATURE,
                         "Signature expired: %s is now earlier than %s (%s - 5 min.)", amz_date,
                         bound, now_s);
    }
    if (when > now + KMS_SIGV4_MAX_SKEW) {
        format_amz_date(now + KMS_SIGV4_MAX_SKEW, bound);
        return kms_raise(KMS_ERR_BAD_SIGNATURE,
                         "Signature not yet current: %s is still later than %s (%s + 5 min.)",
                         amz_date, bound, now_s);
    }
    return 0;
}

static int check_scope(const kms_sigv4_auth *auth, const char *amz_date, const char *region,
                       const char *service)
{
    KMS_ENSURE(strncmp(auth->date, amz_date, 8) == 0, KMS_ERR_BAD_SIGNATURE,
               "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
               "from HTTP: '%s' != '%.8s'",
               auth->date, amz_date);
    KMS_ENSURE(region != NULL && service != NULL, KMS_ERR_INTERNAL,
               "SigV4: no expected region or service to check the credential scope against");
    KMS_ENSURE(strcmp(auth->region, region) == 0, KMS_ERR_BAD_SIGNATURE,
               "Credential should be scoped to a valid region, not '%s'", auth->region);
    KMS_ENSURE(strcmp(auth->service, service) == 0, KMS_ERR_BAD_SIGNATURE,
               "Credential should be scoped to correct service: '%s'", service);
    return 0;
}

static int check_content_hash(const kms_sigv4_request *req)
{
    const char *h = kms_sigv4_header_find(req, "x-amz-content-sha256", 20);
    char hash[65];
    if (h == NULL) {
        return 0;
    }
    KMS_GUARD(kms_sigv4_payload_hash(req, hash));
    KMS_ENSURE(strcmp(h, hash) == 0, KMS_ERR_BAD_SIGNATURE,
               "The provided 'x-amz-content-sha256' header does not match what was computed.");
    return 0;
}

/* Whether name (any case) is one of signed_headers' ';'-separated lowercase names. */
static int is_signed(const char *signed_headers, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = signed_headers;;) {
        const char *semi = strchr(p, ';');
        size_t n = semi != NULL ? (size_t)(semi - p) : strlen(p);
        if (n == len && strncasecmp(p, name, n) == 0) {
            return 1;
        }
        if (semi == NULL) {
            return 0;
        }
        p = semi + 1;
    }
}

/* Headers whose change would change the request's meaning must be signed when present, as AWS
 * documents: every x-amz-* header (X-Amz-Target selects the JSON protocol's operation) and
 * Content-Type (which selects the protocol). X-Amz-Security-Token may be added after signing
 * (the caller checks it belongs to the access key), x-amz-content-sha256 is checked against the
 * body. */
static int check_unsigned_headers(const kms_sigv4_request *req, const char *signed_headers)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i].name;
        char lower[65];
        size_t n;
        if (h == NULL ||
            !(strncasecmp(h, "x-amz-", 6) == 0 || strcasecmp(h, "content-type") == 0) ||
            strcasecmp(h, "x-amz-security-token") == 0 ||
            strcasecmp(h, "x-amz-content-sha256") == 0 || is_signed(signed_headers, h)) {
            continue;
        }
        n = strnlen(h, sizeof lower - 1);
        for (size_t j = 0; j < n; j++) {
            lower[j] = (char)(h[j] >= 'A' && h[j] <= 'Z' ? h[j] - 'A' + 'a' : h[j]);
        }
        lower[n] = '\0';
        return kms_raise(KMS_ERR_INCOMPLETE_SIGNATURE,
                         "There were headers present in the request which were not signed: %s",
                         lower);
    }
    return 0;
}

/* Headers that carry one value: received twice, they are refused. Repeated headers are signed
 * joined with ',', so a signed "X-Amz-Target: A,B" could otherwise be sent as two headers, A
 * and B, of which the server reads one (RFC 9112 also refuses a repeated Host). */
static int check_repeated_headers(const kms_sigv4_request *req)
{
    static const char *const singles[] = {
        "host",           "x-amz-date",           "x-amz-target",         "content-type",
        "content-length", "x-amz-content-sha256", "x-amz-security-token", "authorization",
    };
    for (size_t s = 0; s < sizeof singles / sizeof *singles; s++) {
        int seen = 0;
        for (size_t i = 0; i < req->n_headers; i++) {
            const char *h = req->headers[i].name;
            if (h == NULL || strcasecmp(h, singles[s]) != 0) {
                continue;
            }
            KMS_ENSURE(!seen, KMS_ERR_INCOMPLETE_SIGNATURE, "The %s header is given more than once",
                       singles[s]);
            seen = 1;
        }
    }
    return 0;
}

int kms_sigv4_verify_with_key(const kms_sigv4_request *req, const kms_sigv4_auth *auth,
                              const uint8_t signing_key[32], time_t now,
                              const char *expected_region, const char *expected_service)
{
    const char *amz_date = kms_sigv4_header_find(req, "x-amz-date", 10);
    char scope[sizeof auth->date + sizeof auth->region + sizeof auth->service + 16];
    char *canonical = NULL;
    char *sts = NULL;
    uint8_t raw[32];
    char sig[65];
    time_t when;
    int r = -1;
    KMS_GUARD(check_repeated_headers(req));
    KMS_ENSURE(amz_date != NULL, KMS_ERR_INCOMPLETE_SIGNATURE,
               "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
               "header.");
    KMS_GUARD(parse_amz_date(amz_date, &when));
    KMS_GUARD(check_time(amz_date, when, now));
    KMS_GUARD(check_scope(auth, amz_date, expected_region, expected_service));
    KMS_GUARD(check_unsigned_headers(req, auth->signed_headers));
    KMS_GUARD(check_content_hash(req));
    snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", auth->date, auth->region, auth->service);
    if ((r = kms_sigv4_canonical_request(req, auth->signed_headers, &canonical)) != 0) {
        goto out;
    }
    if ((r = kms_sigv4_string_to_sign(amz_date, scope, canonical, &sts)) != 0) {
        goto out;
    }
    if ((r = hmac(signing_key, 32, sts, raw)) != 0) {
        goto out;
    }
    to_hex(raw, sizeof raw, sig);
    if (strlen(auth->signature) != 64 || CRYPTO_memcmp(sig, auth->signature, 64) != 0) {
        r = kms_raise(KMS_ERR_BAD_SIGNATURE,
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your AWS Secret Access Key and signing method. Consult "
                      "the service documentation for details.");
        goto out;
    }
    r = 0;
out:
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(sig, sizeof sig);
    free(canonical);
    free(sts);
    return r;
}

int kms_sigv4_verify(const kms_sigv4_request *req, const kms_sigv4_auth *auth, const char *secret,
                     time_t now, const char *expected_region, const char *expected_service)
{
    uint8_t key[32];
    KMS_GUARD(kms_sigv4_signing_key(secret, auth->date, auth->region, auth->service, key));
    int r = kms_sigv4_verify_with_key(req, auth, key, now, expected_region, expected_service);
    sodium_memzero(key, sizeof key);
    return r;
}
