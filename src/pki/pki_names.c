/* Allowed name patterns of a CA (beyond AWS Private CA; pki_internal.h says what they are) and
 * the name constraints they become in the CA certificates such a CA issues (RFC 5280 4.2.1.10).
 *
 * X.509 cannot say "exactly this name": a dNSName constraint "app.example.com" also permits
 * the names below it, and "internal" permits internal itself. So the constraints written into a
 * subordinate CA are the closest superset of the patterns; the CA itself checks the patterns
 * exactly, on every DNS name and every common name (any string type, dotted or not). */
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pki/pki_internal.h"
#include "util/util.h"

#define PATTERNS_MAX 50

/* "*.SUFFIX" or a name; both host names without a wildcard of their own. */
static bool pattern_ok(const char *p)
{
    size_t n = strlen(p);
    const char *name = n > 2 && p[0] == '*' && p[1] == '.' ? p + 2 : p;
    return strchr(name, '*') == NULL && kms_pki_host_name_ok(name, strlen(name));
}

int kms_pki_name_patterns_check(json_t *patterns)
{
    size_t i;
    json_t *v;
    if (patterns == NULL) {
        return 0;
    }
    KMS_ENSURE(json_is_array(patterns) && json_array_size(patterns) >= 1 &&
                   json_array_size(patterns) <= PATTERNS_MAX,
               KMS_ERR_INVALID_ARGS,
               "AllowedNamePatterns must be an array of 1 to %d DNS names or \"*.SUFFIX\" patterns",
               PATTERNS_MAX);
    json_array_foreach(patterns, i, v)
    {
        KMS_ENSURE(json_is_string(v) && pattern_ok(json_string_value(v)), KMS_ERR_INVALID_ARGS,
                   "AllowedNamePatterns[%zu] is neither a DNS name nor \"*.\" and one", i);
    }
    return 0;
}

/* The CA's patterns (a new reference, NULL when it has none). */
static json_t *patterns_of(const kms_pki_ca *ca)
{
    json_t *conf = ca->configuration != NULL ? json_loads(ca->configuration, 0, NULL) : NULL;
    json_t *p = json_incref(json_object_get(conf, "AllowedNamePatterns"));
    json_decref(conf);
    return p;
}

/* Whether name (len bytes) is one of the patterns allows: "*.S" any name ending in ".S" below
 * S (a wildcard name too), "N" the name N; letters in any case (RFC 4343). */
static bool allowed(json_t *patterns, const char *name, size_t len)
{
    size_t i;
    json_t *v;
    json_array_foreach(patterns, i, v)
    {
        const char *p = json_string_value(v);
        size_t pl = strlen(p);
        if (p[0] == '*' && p[1] == '.') {
            size_t sl = pl - 1; /* ".S" */
            if (len > sl && strncasecmp(name + len - sl, p + 1, sl) == 0) {
                return true;
            }
        } else if (len == pl && strncasecmp(name, p, len) == 0) {
            return true;
        }
    }
    return false;
}

static int check_name(json_t *patterns, const char *ca_id, const char *name, size_t len)
{
    KMS_ENSURE(allowed(patterns, name, len), KMS_ERR_INVALID_ARGS,
               "The certificate authority %s may not issue for the name '%.*s': it is outside "
               "the CA's AllowedNamePatterns",
               ca_id, (int)(len > 253 ? 253 : len), name);
    return 0;
}

/* One common name: converted to UTF-8 (a BMPString or any other type alike), then checked. */
static int check_cn(json_t *patterns, const char *ca_id, const ASN1_STRING *cn)
{
    unsigned char *text = NULL;
    int len = ASN1_STRING_to_UTF8(&text, cn);
    if (len < 0 || memchr(text, '\0', (size_t)len) != NULL) {
        OPENSSL_free(text);
        return kms_raise(KMS_ERR_INVALID_ARGS,
                         "The certificate authority %s may not issue for a common name that is "
                         "no string of characters (AllowedNamePatterns)",
                         ca_id);
    }
    int r = check_name(patterns, ca_id, (const char *)text, (size_t)len);
    OPENSSL_free(text);
    return r;
}

static int check_all(json_t *patterns, const kms_pki_ca *ca, X509 *x)
{
    int r = -1;
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    X509_NAME *subject = X509_get_subject_name(x);
    for (int i = 0; san != NULL && i < sk_GENERAL_NAME_num(san); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
        if (g->type != GEN_DNS) {
            kms_raise(KMS_ERR_INVALID_ARGS,
                      "The certificate authority %s allows DNS names only (AllowedNamePatterns): "
                      "no IP address, e-mail address or URI in subjectAltName",
                      ca->ca_id);
            goto out;
        }
        if (check_name(patterns, ca->ca_id, (const char *)ASN1_STRING_get0_data(g->d.ia5),
                       (size_t)ASN1_STRING_length(g->d.ia5)) != 0) {
            goto out;
        }
    }
    /* Every common name too, whatever its string type: verifiers fall back to it (converted to
     * UTF-8) without a DNS name in subjectAltName, dotted or not. */
    for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
        if (check_cn(patterns, ca->ca_id,
                     X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i))) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    GENERAL_NAMES_free(san);
    return r;
}

int kms_pki_names_allowed(const kms_pki_ca *ca, X509 *x)
{
    json_t *patterns = patterns_of(ca);
    if (patterns == NULL) {
        return 0;
    }
    int r = check_all(patterns, ca, x);
    json_decref(patterns);
    return r;
}

int kms_pki_name_constraints_add(const kms_pki_ca *ca, X509 *x)
{
    size_t i;
    json_t *v;
    json_t *patterns = patterns_of(ca);
    if (patterns == NULL) {
        return 0;
    }
    /* openssl.cnf's form: "critical,permitted;DNS:internal,...,excluded;IP:0.0.0.0/0.0.0.0". */
    size_t size = 256 + json_array_size(patterns) * 272;
    char *value = malloc(size);
    size_t used = 0;
    if (value == NULL) {
        json_decref(patterns);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    used += (size_t)snprintf(value, size, "critical");
    json_array_foreach(patterns, i, v)
    {
        const char *p = json_string_value(v);
        used += (size_t)snprintf(value + used, size - used, ",permitted;DNS:%s",
                                 p[0] == '*' ? p + 2 : p);
    }
    /* E-mail addresses and URIs: permitted only on hosts below "invalid" (RFC 6761 6.4: never
     * a real host), so none is, as openssl verify enforces; every IP address excluded. */
    snprintf(value + used, size - used,
             ",permitted;email:.invalid,permitted;URI:.invalid"
             ",excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::");
    int r = kms_pki_ext_add(x, NID_name_constraints, value);
    free(value);
    json_decref(patterns);
    return r;
}
