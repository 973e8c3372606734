/* CreateCertificateAuthorityAuditReport's content (AWS Private CA User Guide, "Use audit reports
 * with your private CA"): one entry per certificate the CA issued, revoked or not, in AWS's
 * fields and order, JSON or CSV. */
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pki/pki_internal.h"
#include "util/buf.h"
#include "util/util.h"

/* AWS's order; issuedBy and revokedBy are ours (the callers, from the audit trail). */
static const char *const fields[] = {
    "awsAccountId",   "requestedByServicePrincipal",
    "certificateArn", "serial",
    "subject",        "notBefore",
    "notAfter",       "issuedAt",
    "revokedAt",      "revocationReason",
    "templateArn",    "issuedBy",
    "revokedBy",      NULL,
};

/* 2026-12-07T16:20:00+0000, as AWS's reports write times. */
static void report_time(int64_t t, char out[32])
{
    struct tm tm;
    time_t tt = (time_t)t;
    out[0] = '\0';
    if (gmtime_r(&tt, &tm) != NULL) {
        strftime(out, 32, "%Y-%m-%dT%H:%M:%S+0000", &tm);
    }
}

/* "4f0e..." -> "4f:0e:...". */
static void serial_colons(const char *hex, char *out, size_t size)
{
    size_t n = strlen(hex), o = 0;
    bool odd = n % 2 == 1;
    out[0] = '\0';
    for (size_t i = 0; i < n && o + 4 < size; i++) {
        if (i > 0 && (i + (odd ? 1 : 0)) % 2 == 0) {
            out[o++] = ':';
        }
        out[o++] = hex[i];
    }
    out[o] = '\0';
}

/* The subject as RFC 2253 writes it (AWS's reports use that form). NULL on failure. */
static char *subject_text(const uint8_t *der, size_t len)
{
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (x != NULL && bio != NULL &&
        X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        out = n >= 0 ? kms_strdup_printf("%.*s", (int)n, data) : NULL;
    }
    BIO_free(bio);
    X509_free(x);
    return out;
}

/* The caller's ARN and account that requesters records for the serial under kind. */
static json_t *requester(json_t *requesters, const char *kind, const char *serial)
{
    const char *s = serial;
    while (s[0] == '0' && s[1] != '\0') {
        s++;
    }
    return json_object_get(json_object_get(requesters, kind), s);
}

typedef struct report_ctx {
    const kms_keystore *ks;
    const kms_pki_ca *ca;
    json_t *requesters;
    json_t *rows; /* array of objects, fields in order */
} report_ctx;

static int add_row(void *arg, const kms_pki_cert_row *row)
{
    report_ctx *c = arg;
    char arn[KMS_ARN_MAX], tpl[160], serial[3 * KMS_PKI_SERIAL_MAX];
    char nb[32], na[32], at[32], rv[32];
    json_t *issued = requester(c->requesters, "issued", row->serial);
    json_t *revoked =
        row->revoked_at != 0 ? requester(c->requesters, "revoked", row->serial) : NULL;
    const char *account = json_string_value(json_object_get(issued, "account"));
    char *subject = subject_text(row->der, row->der_len);
    KMS_ENSURE(subject != NULL, KMS_ERR_INTERNAL, "certificate %s does not parse", row->serial);
    kms_pki_cert_arn(c->ks, c->ca->ca_id, row->serial, arn);
    snprintf(tpl, sizeof tpl, "arn:aws:acm-pca:::template/%s/V1", row->template_name);
    serial_colons(row->serial, serial, sizeof serial);
    report_time(row->not_before, nb);
    report_time(row->not_after, na);
    report_time(row->issued_at, at);
    report_time(row->revoked_at, rv);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                          "awsAccountId", account != NULL ? account : c->ca->account_id,
                          "requestedByServicePrincipal", "", "certificateArn", arn, "serial",
                          serial, "subject", subject, "notBefore", nb, "notAfter", na, "issuedAt",
                          at, "revokedAt", row->revoked_at != 0 ? rv : "", "revocationReason",
                          row->revoked_at != 0 ? row->reason : "", "templateArn", tpl, "issuedBy",
                          json_string_value(json_object_get(issued, "arn"))
                              ? json_string_value(json_object_get(issued, "arn"))
                              : "",
                          "revokedBy",
                          json_string_value(json_object_get(revoked, "arn"))
                              ? json_string_value(json_object_get(revoked, "arn"))
                              : "");
    free(subject);
    KMS_ENSURE(o != NULL && json_array_append_new(c->rows, o) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

/* RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. */
static int csv_field(kms_buf *b, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        return kms_buf_append(b, s, strlen(s));
    }
    KMS_GUARD(kms_buf_append(b, "\"", 1));
    for (const char *p = s; *p != '\0'; p++) {
        KMS_GUARD(kms_buf_append(b, p, 1));
        if (*p == '"') {
            KMS_GUARD(kms_buf_append(b, "\"", 1));
        }
    }
    return kms_buf_append(b, "\"", 1);
}

static int csv_of(json_t *rows, char **out, size_t *out_len)
{
    int r = -1;
    kms_buf b;
    size_t i;
    json_t *row;
    kms_buf_init(&b, false);
    for (size_t f = 0; fields[f] != NULL; f++) {
        if ((f > 0 && kms_buf_append(&b, ",", 1) != 0) || csv_field(&b, fields[f]) != 0) {
            goto out;
        }
    }
    if (kms_buf_append(&b, "\n", 1) != 0) {
        goto out;
    }
    json_array_foreach(rows, i, row)
    {
        for (size_t f = 0; fields[f] != NULL; f++) {
            const char *v = json_string_value(json_object_get(row, fields[f]));
            if ((f > 0 && kms_buf_append(&b, ",", 1) != 0) || csv_field(&b, v ? v : "") != 0) {
                goto out;
            }
        }
        if (kms_buf_append(&b, "\n", 1) != 0) {
            goto out;
        }
    }
    *out = malloc(b.len + 1);
    if (*out == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(*out, b.data, b.len);
    (*out)[b.len] = '\0';
    *out_len = b.len;
    r = 0;
out:
    kms_buf_clean_up(&b);
    return r;
}

int kms_pki_audit_report(const kms_keystore *ks, const kms_pki_ca *ca, json_t *requesters,
                         const char *format, char **out, size_t *out_len)
{
    int r = -1;
    report_ctx c = {ks, ca, requesters, json_array()};
    *out = NULL;
    *out_len = 0;
    bool csv = format != NULL && strcmp(format, "CSV") == 0;
    if (!csv && (format == NULL || strcmp(format, "JSON") != 0)) {
        kms_raise(KMS_ERR_INVALID_ARGS, "AuditReportResponseFormat must be JSON or CSV, not '%s'",
                  format ? format : "");
        goto out;
    }
    if (c.rows == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_pki_db_cert_list(ks, ca->ca_id, add_row, &c) != 0) {
        goto out;
    }
    if (csv) {
        r = csv_of(c.rows, out, out_len);
        goto out;
    }
    *out = json_dumps(c.rows, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (*out == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    *out_len = strlen(*out);
    r = 0;
out:
    json_decref(c.rows);
    return r;
}
