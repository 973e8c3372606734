/* CreateCertificateAuthorityAuditReport and DescribeCertificateAuthorityAuditReport's work: who
 * issued and revoked each certificate, read from the audit trail (the IssueCertificate and
 * RevokeCertificate records of the CA, as lookup-events lists them), the report itself from
 * the CA's records (kms_pki_audit_report), written under the home where AWS writes to S3:
 * HOME/audit-report/CA_ID/REPORT_ID.json|csv (S3Key is that path below HOME), with
 * REPORT_ID.meta.json beside it for DescribeCertificateAuthorityAuditReport. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/audit.h"
#include "pki/pki.h"
#include "service/audit_trail.h"
#include "service/ops_pki.h"
#include "util/util.h"

#define REPORT_MAX (256u << 20)

/* Lower-case hex without colons or leading zeros (how a revocation's serial was given). */
static void serial_key(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = in; *p != '\0' && o + 1 < size; p++) {
        char ch = *p >= 'A' && *p <= 'F' ? (char)(*p - 'A' + 'a') : *p;
        if (ch == ':' || (o == 0 && ch == '0' && p[1] != '\0')) {
            continue;
        }
        out[o++] = ch;
    }
    out[o] = '\0';
}

/* One record of the trail: a successful IssueCertificate or RevokeCertificate goes into
 * requesters. */
static int note_record(json_t *requesters, const char *text)
{
    char key[2 * KMS_PKI_SERIAL_MAX];
    json_t *ev = json_loads(text, 0, NULL);
    const char *name = json_string_value(json_object_get(ev, "eventName"));
    const char *serial = NULL, *kind = NULL;
    if (ev == NULL || name == NULL || json_object_get(ev, "errorCode") != NULL) {
        json_decref(ev);
        return 0;
    }
    if (strcmp(name, "IssueCertificate") == 0) {
        const char *arn = json_string_value(
            json_object_get(json_object_get(ev, "responseElements"), "certificateArn"));
        const char *at = arn != NULL ? strstr(arn, "/certificate/") : NULL;
        serial = at != NULL ? at + strlen("/certificate/") : NULL;
        kind = "issued";
    } else if (strcmp(name, "RevokeCertificate") == 0) {
        serial = json_string_value(
            json_object_get(json_object_get(ev, "requestParameters"), "certificateSerial"));
        kind = "revoked";
    }
    int r = 0;
    if (serial != NULL) {
        json_t *who = json_object_get(ev, "userIdentity");
        serial_key(serial, key, sizeof key);
        json_t *o = json_pack("{s:s?, s:s?}", "arn", json_string_value(json_object_get(who, "arn")),
                              "account", json_string_value(json_object_get(who, "accountId")));
        /* Pages run newest first: the first record seen for a serial is kept (the one that
         * succeeded is the only one for an issue; a revocation succeeds once). */
        if (o == NULL || (json_object_get(json_object_get(requesters, kind), key) == NULL &&
                          json_object_set(json_object_get(requesters, kind), key, o) != 0)) {
            r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
        json_decref(o);
    }
    json_decref(ev);
    return r;
}

/* requesters from every record naming the CA. */
static int read_requesters(kms_request *rq, const char *ca_arn, json_t **out)
{
    int r = -1;
    kms_trail_trust t;
    char *token = NULL;
    json_t *page = NULL;
    *out = json_pack("{s:{}, s:{}}", "issued", "revoked");
    KMS_ENSURE(*out != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (kms_audit_trail_trust_load(rq->client, &t) != 0) {
        json_decref(*out);
        *out = NULL;
        return -1;
    }
    do {
        kms_audit_query q = {"ResourceName", ca_arn, 0, 0, 50, token, &t.trust};
        size_t i;
        json_t *e;
        json_decref(page);
        page = NULL;
        if (kms_audit_lookup(t.dir, &q, &page) != 0) {
            goto out;
        }
        json_array_foreach(json_object_get(page, "Events"), i, e)
        {
            if (note_record(*out, json_string_value(json_object_get(e, "CloudTrailEvent"))) != 0) {
                goto out;
            }
        }
        free(token);
        const char *next = json_string_value(json_object_get(page, "NextToken"));
        token = next != NULL ? strdup(next) : NULL;
        if (next != NULL && token == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
    } while (token != NULL);
    r = 0;
out:
    free(token);
    json_decref(page);
    kms_audit_trail_trust_clean_up(&t);
    if (r != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return r;
}

/* HOME/audit-report/CA_ID, made if missing (0700: the reports name callers). */
static char *report_dir(kms_request *rq, const char *ca_id)
{
    char *top = kms_path_join(rq->client->home, "audit-report");
    char *dir = top != NULL ? kms_path_join(top, ca_id) : NULL;
    if (dir == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    } else if ((mkdir(top, 0700) != 0 && errno != EEXIST) ||
               (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
        kms_raise(KMS_ERR_HOME, "cannot create %s: %s", dir, strerror(errno));
        free(dir);
        dir = NULL;
    }
    free(top);
    return dir;
}

int kms_ops_pki_report_create(kms_request *rq, const kms_keystore *ks, const kms_pki_ca *ca,
                              const char *format, const char *bucket, json_t **resp)
{
    int r = -1;
    char arn[KMS_ARN_MAX], id[37];
    char *text = NULL, *dir = NULL, *path = NULL, *meta_path = NULL, *meta_text = NULL;
    size_t len = 0;
    json_t *requesters = NULL, *meta = NULL;
    const char *ext = format != NULL && strcmp(format, "CSV") == 0 ? "csv" : "json";
    *resp = NULL;
    kms_pki_ca_arn(ks, ca->ca_id, arn);
    if (kms_uuid_new(id) != 0 || read_requesters(rq, arn, &requesters) != 0 ||
        kms_pki_audit_report(ks, ca, requesters, format, &text, &len) != 0 ||
        (dir = report_dir(rq, ca->ca_id)) == NULL) {
        goto out;
    }
    path = kms_strdup_printf("%s/%s.%s", dir, id, ext);
    meta_path = kms_strdup_printf("%s/%s.meta.json", dir, id);
    char key[128];
    snprintf(key, sizeof key, "audit-report/%s/%s.%s", ca->ca_id, id, ext);
    meta = json_pack("{s:s, s:I, s:s, s:s*}", "AuditReportStatus", "SUCCESS", "CreatedAt",
                     (json_int_t)kms_now(), "S3Key", key, "S3BucketName", bucket);
    meta_text = meta != NULL ? json_dumps(meta, JSON_COMPACT) : NULL;
    *resp = json_pack("{s:s, s:s}", "AuditReportId", id, "S3Key", key);
    if (path == NULL || meta_path == NULL || meta_text == NULL || *resp == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    /* The report first, then what says it is there. */
    if (kms_file_write_atomic(path, text, len, 0600) != 0 ||
        kms_file_write_atomic(meta_path, meta_text, strlen(meta_text), 0600) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        json_decref(*resp);
        *resp = NULL;
    }
    json_decref(requesters);
    json_decref(meta);
    free(meta_text);
    free(meta_path);
    free(path);
    free(dir);
    free(text);
    return r;
}

int kms_ops_pki_report_describe(kms_request *rq, const kms_pki_ca *ca, const char *report_id,
                                json_t **resp)
{
    char *text = NULL;
    size_t len = 0;
    *resp = NULL;
    KMS_ENSURE(kms_uuid_valid(report_id), KMS_ERR_VALIDATION,
               "AuditReportId '%s' is not a report id (36 characters)", report_id);
    char *path = kms_strdup_printf("%s/audit-report/%s/%s.meta.json", rq->client->home, ca->ca_id,
                                   report_id);
    KMS_ENSURE(path != NULL, KMS_ERR_INTERNAL, "out of memory");
    bool found = kms_path_exists(path);
    int r = found ? kms_file_read(path, REPORT_MAX, &text, &len) : 0;
    free(path);
    KMS_GUARD(r);
    KMS_ENSURE(found, KMS_ERR_RESOURCE_NOT_FOUND,
               "The certificate authority %s has no audit report %s", ca->ca_id, report_id);
    *resp = json_loads(text, 0, NULL);
    free(text);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "the audit report's description does not parse");
    return 0;
}
