/* RevokeCertificate and the CA's CRLs (RFC 5280 5), signed in the HSM. */
#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki_internal.h"

/* RFC 5280 5.3.1 CRLReason, as AWS Private CA names the values. */
static const struct {
    const char *name;
    int code;
} reasons[] = {
    {"UNSPECIFIED", CRL_REASON_UNSPECIFIED},
    {"KEY_COMPROMISE", CRL_REASON_KEY_COMPROMISE},
    {"CERTIFICATE_AUTHORITY_COMPROMISE", CRL_REASON_CA_COMPROMISE},
    {"AFFILIATION_CHANGED", CRL_REASON_AFFILIATION_CHANGED},
    {"SUPERSEDED", CRL_REASON_SUPERSEDED},
    {"CESSATION_OF_OPERATION", CRL_REASON_CESSATION_OF_OPERATION},
    {"PRIVILEGE_WITHDRAWN", CRL_REASON_PRIVILEGE_WITHDRAWN},
    {"A_A_COMPROMISE", CRL_REASON_AA_COMPROMISE},
};

int kms_pki_crl_reason_code(const char *name, int *code)
{
    for (size_t i = 0; name != NULL && i < sizeof reasons / sizeof reasons[0]; i++) {
        if (strcmp(reasons[i].name, name) == 0) {
            *code = reasons[i].code;
            return 0;
        }
    }
    return kms_raise(KMS_ERR_INVALID_ARGS,
                     "RevocationReason '%s' is not one of UNSPECIFIED, KEY_COMPROMISE, "
                     "CERTIFICATE_AUTHORITY_COMPROMISE, AFFILIATION_CHANGED, SUPERSEDED, "
                     "CESSATION_OF_OPERATION, PRIVILEGE_WITHDRAWN, A_A_COMPROMISE",
                     name ? name : "");
}

/* "7F:01:AB" or "7f01ab" -> "7f01ab" (no colons, lower case, no leading zeros). */
static int serial_normalize(const char *in, char out[KMS_PKI_SERIAL_MAX])
{
    size_t n = 0;
    bool leading = true;
    for (const char *p = in; p != NULL && *p != '\0'; p++) {
        char c = *p >= 'A' && *p <= 'F' ? (char)(*p - 'A' + 'a') : *p;
        if (c == ':') {
            continue;
        }
        KMS_ENSURE(strchr("0123456789abcdef", c) != NULL && n + 1 < KMS_PKI_SERIAL_MAX,
                   KMS_ERR_INVALID_ARGS,
                   "CertificateSerial '%s' is not a serial of at most 20 octets in hex", in);
        if (leading && c == '0') {
            continue;
        }
        leading = false;
        out[n++] = c;
    }
    out[n] = '\0';
    KMS_ENSURE(n > 0, KMS_ERR_INVALID_ARGS, "CertificateSerial '%s' is not a serial", in ? in : "");
    return 0;
}

int kms_pki_revoke(const kms_keystore *ks, const kms_pki_ca *ca, const char *serial,
                   const char *reason, int64_t now)
{
    char norm[KMS_PKI_SERIAL_MAX];
    int code = 0;
    KMS_GUARD(kms_pki_crl_reason_code(reason, &code));
    KMS_GUARD(serial_normalize(serial, norm));
    KMS_ENSURE(strcmp(ca->status, "ACTIVE") == 0 || strcmp(ca->status, "DISABLED") == 0,
               KMS_ERR_PCA_INVALID_STATE,
               "The certificate authority %s is in the %s state and cannot revoke", ca->ca_id,
               ca->status);
    return kms_pki_db_cert_revoke(ks, ca->ca_id, norm, reason, now);
}

/* ---- The CRL configuration ------------------------------------------------------------------ */

typedef struct crl_settings {
    bool enabled;
    int64_t days;
    const char *cname; /* NULL: none */
    bool omit;
    bool ocsp;              /* OcspConfiguration.Enabled */
    const char *ocsp_cname; /* NULL: none */
} crl_settings;

/* A CustomCname or OcspCustomCname: HOST or HOST:PORT, with no scheme and no path (AWS: "must
 * not include a protocol prefix"), since it becomes http://CNAME/crl/... and
 * http://CNAME/ocsp. An empty one is none. */
static bool cname_ok(json_t *v)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (s == NULL || len > 253) {
        return false;
    }
    const char *colon = strchr(s, ':');
    size_t host = colon != NULL ? (size_t)(colon - s) : len;
    if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != host ||
        (host == 0 && len > 0)) {
        return false;
    }
    if (colon == NULL) {
        return true;
    }
    size_t digits = strspn(colon + 1, "0123456789");
    return digits >= 1 && digits <= 5 && colon[1 + digits] == '\0' && atoi(colon + 1) >= 1 &&
           atoi(colon + 1) <= 65535;
}

/* OcspConfiguration {Enabled, OcspCustomCname}. */
static int ocsp_read(json_t *ocsp, crl_settings *out)
{
    const char *key;
    json_t *v;
    if (ocsp == NULL) {
        return 0;
    }
    json_object_foreach(ocsp, key, v)
    {
        KMS_ENSURE(strcmp(key, "Enabled") == 0 || strcmp(key, "OcspCustomCname") == 0,
                   KMS_ERR_INVALID_ARGS, "OcspConfiguration does not take '%s'", key);
    }
    json_t *enabled = json_object_get(ocsp, "Enabled");
    json_t *cname = json_object_get(ocsp, "OcspCustomCname");
    KMS_ENSURE(json_is_boolean(enabled), KMS_ERR_INVALID_ARGS,
               "OcspConfiguration.Enabled must be true or false");
    KMS_ENSURE(cname == NULL || cname_ok(cname), KMS_ERR_INVALID_ARGS,
               "OcspConfiguration.OcspCustomCname must be a host name, or host:port, without "
               "a scheme");
    out->ocsp = json_is_true(enabled);
    out->ocsp_cname =
        cname != NULL && json_string_length(cname) > 0 ? json_string_value(cname) : NULL;
    return 0;
}

/* Reads (and with check, checks) a RevocationConfiguration; the strings borrow from rev. */
static int settings_read(json_t *rev, crl_settings *out)
{
    const char *key;
    json_t *v;
    memset(out, 0, sizeof *out);
    out->days = KMS_PKI_CRL_DAYS;
    if (rev == NULL || json_is_null(rev)) {
        return 0;
    }
    json_t *crl = json_object_get(rev, "CrlConfiguration");
    json_t *ocsp = json_object_get(rev, "OcspConfiguration");
    KMS_ENSURE(json_is_object(rev) && (crl == NULL || json_is_object(crl)) &&
                   (ocsp == NULL || json_is_object(ocsp)),
               KMS_ERR_INVALID_ARGS,
               "RevocationConfiguration must be {\"CrlConfiguration\": {...}, "
               "\"OcspConfiguration\": {...}}");
    json_object_foreach(rev, key, v)
    {
        KMS_ENSURE(strcmp(key, "CrlConfiguration") == 0 || strcmp(key, "OcspConfiguration") == 0,
                   KMS_ERR_INVALID_ARGS, "RevocationConfiguration does not take '%s'", key);
    }
    KMS_GUARD(ocsp_read(ocsp, out));
    if (crl == NULL) {
        return 0;
    }
    json_object_foreach(crl, key, v)
    {
        KMS_ENSURE(strcmp(key, "Enabled") == 0 || strcmp(key, "ExpirationInDays") == 0 ||
                       strcmp(key, "CustomCname") == 0 ||
                       strcmp(key, "CrlDistributionPointExtensionConfiguration") == 0,
                   KMS_ERR_INVALID_ARGS,
                   "CrlConfiguration does not take '%s' (CRLs are written under the home: "
                   "HOME/crl/CA_ID.crl, no S3 bucket)",
                   key);
    }
    json_t *enabled = json_object_get(crl, "Enabled");
    json_t *days = json_object_get(crl, "ExpirationInDays");
    json_t *cname = json_object_get(crl, "CustomCname");
    json_t *omit = json_object_get(
        json_object_get(crl, "CrlDistributionPointExtensionConfiguration"), "OmitExtension");
    KMS_ENSURE(json_is_boolean(enabled), KMS_ERR_INVALID_ARGS,
               "CrlConfiguration.Enabled must be true or false");
    KMS_ENSURE(days == NULL || (json_is_integer(days) && json_integer_value(days) >= 1 &&
                                json_integer_value(days) <= 5000),
               KMS_ERR_INVALID_ARGS, "CrlConfiguration.ExpirationInDays must be 1 to 5000");
    KMS_ENSURE(cname == NULL || (json_string_length(cname) >= 1 && cname_ok(cname)),
               KMS_ERR_INVALID_ARGS,
               "CrlConfiguration.CustomCname must be a host name, or host:port, without a scheme");
    KMS_ENSURE(omit == NULL || json_is_boolean(omit), KMS_ERR_INVALID_ARGS,
               "OmitExtension must be true or false");
    out->enabled = json_is_true(enabled);
    out->days = days != NULL ? json_integer_value(days) : KMS_PKI_CRL_DAYS;
    out->cname = cname != NULL ? json_string_value(cname) : NULL;
    out->omit = json_is_true(omit);
    return 0;
}

int kms_pki_revocation_check(json_t *revocation)
{
    crl_settings st;
    return settings_read(revocation, &st);
}

/* The stored configuration's settings; *doc (to json_decref) holds the strings. */
static void settings_of(const kms_pki_ca *ca, crl_settings *out, json_t **doc)
{
    *doc = ca->revocation != NULL && ca->revocation[0] != '\0' ? json_loads(ca->revocation, 0, NULL)
                                                               : NULL;
    if (settings_read(*doc, out) != 0) {
        memset(out, 0, sizeof *out); /* stored after a check: never happens */
        out->days = KMS_PKI_CRL_DAYS;
    }
}

bool kms_pki_crl_enabled(const kms_pki_ca *ca)
{
    crl_settings st;
    json_t *doc = NULL;
    settings_of(ca, &st, &doc);
    json_decref(doc);
    return st.enabled;
}

int kms_pki_crl_distribution_point(const kms_pki_ca *ca, char *uri, size_t size)
{
    crl_settings st;
    json_t *doc = NULL;
    settings_of(ca, &st, &doc);
    int r = st.enabled && !st.omit && st.cname != NULL;
    if (r) {
        snprintf(uri, size, "URI:http://%s/crl/%s.crl", st.cname, ca->ca_id);
    }
    json_decref(doc);
    return r;
}

bool kms_pki_ocsp_enabled(const kms_pki_ca *ca)
{
    crl_settings st;
    json_t *doc = NULL;
    settings_of(ca, &st, &doc);
    json_decref(doc);
    return st.ocsp;
}

int kms_pki_ocsp_access(const kms_pki_ca *ca, char *value, size_t size)
{
    crl_settings st;
    json_t *doc = NULL;
    settings_of(ca, &st, &doc);
    int r = st.ocsp && st.ocsp_cname != NULL;
    if (r) {
        snprintf(value, size, "OCSP;URI:http://%s/ocsp", st.ocsp_cname);
    }
    json_decref(doc);
    return r;
}

/* ---- The CRL ------------------------------------------------------------------------------------
 */

typedef struct crl_ctx {
    X509_CRL *crl;
} crl_ctx;

/* One revokedCertificates entry; the reasonCode extension is left out for UNSPECIFIED
 * (RFC 5280 5.3.1: "the reason code extension SHOULD be absent instead of using the unspecified
 * (0) reasonCode value"). */
static int add_revoked(void *arg, const char *serial, int64_t at, const char *reason)
{
    crl_ctx *c = arg;
    int r = -1;
    int code = 0;
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)at);
    ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();
    X509_REVOKED *rev = X509_REVOKED_new();
    if (kms_pki_crl_reason_code(reason, &code) != 0) {
        goto out;
    }
    if (when == NULL || e == NULL || rev == NULL || BN_hex2bn(&bn, serial) == 0 ||
        (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        X509_REVOKED_set_serialNumber(rev, sn) != 1 ||
        X509_REVOKED_set_revocationDate(rev, when) != 1 || ASN1_ENUMERATED_set(e, code) != 1 ||
        (code != CRL_REASON_UNSPECIFIED &&
         X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, e, 0, 0) != 1)) {
        kms_raise(KMS_ERR_INTERNAL, "cannot list certificate %s in the CRL", serial);
        goto out;
    }
    if (X509_CRL_add0_revoked(c->crl, rev) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot list certificate %s in the CRL", serial);
        goto out;
    }
    rev = NULL;
    r = 0;
out:
    X509_REVOKED_free(rev);
    ASN1_ENUMERATED_free(e);
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    ASN1_TIME_free(when);
    return r;
}

/* Version, issuer, thisUpdate, nextUpdate, then the extensions: authorityKeyIdentifier
 * (5.2.1) and cRLNumber (5.2.3), both required of conforming CAs. */
static int crl_header(X509_CRL *crl, X509 *ca_cert, int64_t now, int64_t days, int64_t number)
{
    int r = -1;
    ASN1_TIME *this_update = ASN1_TIME_set(NULL, (time_t)now);
    ASN1_TIME *next_update = ASN1_TIME_set(NULL, (time_t)(now + days * 86400));
    ASN1_INTEGER *n = ASN1_INTEGER_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca_cert);
    if (this_update == NULL || next_update == NULL || n == NULL || akid == NULL || ski == NULL ||
        X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, this_update) != 1 ||
        X509_CRL_set1_nextUpdate(crl, next_update) != 1 || ASN1_INTEGER_set_int64(n, number) != 1 ||
        (akid->keyid = ASN1_OCTET_STRING_dup(ski)) == NULL ||
        X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, 0) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot build the CRL");
        goto out;
    }
    r = 0;
out:
    AUTHORITY_KEYID_free(akid);
    ASN1_INTEGER_free(n);
    ASN1_TIME_free(next_update);
    ASN1_TIME_free(this_update);
    return r;
}

int kms_pki_crl(const kms_keystore *ks, const kms_pki_ca *ca, int64_t now, uint8_t **der,
                size_t *der_len)
{
    int r = -1;
    const kms_pki_key_alg *key = NULL;
    const kms_pki_sig_alg *alg = NULL;
    const uint8_t *p = ca->certificate;
    X509 *ca_cert = NULL;
    crl_ctx c = {X509_CRL_new()};
    int64_t number = 0;
    crl_settings st;
    json_t *doc = NULL;
    unsigned char *out = NULL;
    int len = 0;
    *der = NULL;
    *der_len = 0;
    settings_of(ca, &st, &doc);
    if (kms_pki_key_alg_find(ca->key_algorithm, &key) != 0 ||
        kms_pki_sig_alg_find(ca->signing_algorithm, &alg) != 0) {
        goto out;
    }
    ca_cert = p != NULL ? d2i_X509(NULL, &p, (long)ca->certificate_len) : NULL;
    if (ca_cert == NULL || c.crl == NULL) {
        kms_raise(KMS_ERR_PCA_INVALID_STATE, "the CA %s has no certificate to sign CRLs under",
                  ca->ca_id);
        goto out;
    }
    if (kms_pki_db_crl_number_next(ks, ca->ca_id, &number) != 0 ||
        crl_header(c.crl, ca_cert, now, st.days, number) != 0 ||
        kms_pki_db_revoked_list(ks, ca->ca_id, add_revoked, &c) != 0) {
        goto out;
    }
    if (X509_CRL_sort(c.crl) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot sort the CRL");
        goto out;
    }
    if (kms_pki_sign_crl(ks, ca->ca_id, key, alg, X509_get0_pubkey(ca_cert), c.crl) != 0) {
        goto out;
    }
    len = i2d_X509_CRL(c.crl, &out);
    *der = len > 0 ? malloc((size_t)len) : NULL;
    if (*der == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot encode the CRL");
        goto out;
    }
    memcpy(*der, out, (size_t)len);
    *der_len = (size_t)len;
    r = 0;
out:
    OPENSSL_free(out);
    X509_CRL_free(c.crl);
    X509_free(ca_cert);
    json_decref(doc);
    return r;
}
