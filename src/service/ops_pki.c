/* AWS Private CA operations (API reference shapes), each through the gate: the request's
 * members are read, the acm-pca: action is authorised on the CA's ARN, and only then does
 * src/pki read or write anything. */
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"
#include "service/audit_trail.h"
#include "service/ops_pki.h"
#include "service/request.h"
#include "util/util.h"

#define M(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The answer of an operation whose response has no members: {} when r is 0. */
static int empty_response(int r, json_t **resp)
{
    if (r == 0 && (*resp = json_object()) == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return r;
}

/* The key store as the caller's account sees it: a CA belongs to the account of the caller who
 * created it, and every lookup is of that account (a member account of the organization does
 * not see the management account's CAs, nor the other way round). */
static const kms_keystore *caller_ks(const kms_request *rq, kms_keystore *view)
{
    kms_pki_keystore_as(&rq->client->keystore, rq->who->id.account_id, view);
    return view;
}

/* Reads the ARN member, checks it names a CA (InvalidArnException), and authorises the
 * operation on it. A CA of another account is then not found. */
static int authorize_ca(kms_request *rq, json_t *req, char ca_id[37], char arn[KMS_ARN_MAX])
{
    const char *given = NULL;
    kms_keystore view;
    KMS_GUARD(kms_request_string(req, "CertificateAuthorityArn", true, 5, 200, &given));
    KMS_GUARD(kms_pki_arn_parse(caller_ks(rq, &view), given, ca_id, NULL));
    snprintf(arn, KMS_ARN_MAX, "%s", given);
    kms_audit_trail_resource(rq, arn); /* the record names the CA, allowed or not */
    return kms_gate_authorize(rq, rq->operation, arn);
}

/* CertificateAuthority as DescribeCertificateAuthority shapes it. NULL on out-of-memory. */
static json_t *ca_json(const kms_keystore *ks, const kms_pki_ca *ca)
{
    char arn[KMS_ARN_MAX];
    json_t *conf = json_loads(ca->configuration, 0, NULL);
    kms_pki_ca_arn(ks, ca->ca_id, arn);
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:o, s:s, s:s}", "Arn", arn, "OwnerAccount",
        ca->account_id, "CreatedAt", (json_int_t)ca->created_at, "LastStateChangeAt",
        (json_int_t)ca->last_state_change_at, "Type", ca->type, "Serial", ca->serial, "Status",
        ca->status, "CertificateAuthorityConfiguration", conf ? conf : json_object(),
        "KeyStorageSecurityStandard", "FIPS_140_2_LEVEL_3_OR_HIGHER", "UsageMode", ca->usage_mode);
    json_t *rev = ca->revocation != NULL && ca->revocation[0] != '\0'
                      ? json_loads(ca->revocation, 0, NULL)
                      : NULL;
    if (o == NULL || rev == NULL) {
        json_decref(rev);
    } else if (json_object_set_new(o, "RevocationConfiguration", rev) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (o != NULL && ca->restorable_until != 0 &&
        json_object_set_new(o, "RestorableUntil", json_integer(ca->restorable_until)) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (o != NULL && ca->certificate != NULL &&
        (json_object_set_new(o, "NotBefore", json_integer(ca->not_before)) != 0 ||
         json_object_set_new(o, "NotAfter", json_integer(ca->not_after)) != 0)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* Members this build does not implement yet are refused, never silently ignored. */
static int refuse_unsupported(json_t *req, const char *const *members)
{
    for (size_t i = 0; members[i] != NULL; i++) {
        json_t *v = json_object_get(req, members[i]);
        KMS_ENSURE(v == NULL || json_is_null(v), KMS_ERR_INVALID_ARGS,
                   "%s is not supported yet by this private CA", members[i]);
    }
    return 0;
}

/* HOME/crl/CA_ID.crl: the CA's newest CRL (DER), written atomically. */
static int publish_crl(kms_request *rq, const kms_pki_ca *ca)
{
    kms_keystore view;
    return kms_pki_crl_publish(caller_ks(rq, &view), ca, rq->client->home, kms_now());
}

static int create_ca(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    const char *type = NULL, *mode = NULL, *token = NULL, *standard = NULL;
    char arn[KMS_ARN_MAX];
    kms_pki_ca ca;
    json_t *conf = json_object_get(req, "CertificateAuthorityConfiguration");
    json_t *rev = json_object_get(req, "RevocationConfiguration");
    KMS_GUARD(kms_request_string(req, "CertificateAuthorityType", true, 1, 16, &type));
    KMS_GUARD(kms_request_string(req, "UsageMode", false, 1, 32, &mode));
    KMS_GUARD(kms_request_string(req, "IdempotencyToken", false, 1, 36, &token));
    KMS_GUARD(kms_request_string(req, "KeyStorageSecurityStandard", false, 1, 64, &standard));
    KMS_ENSURE(conf != NULL, KMS_ERR_VALIDATION,
               "1 validation error detected: Value null at 'certificateAuthorityConfiguration' "
               "failed to satisfy constraint: Member must not be null");
    KMS_GUARD(refuse_unsupported(req, M("Tags")));
    KMS_GUARD(kms_pki_revocation_check(rev));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    kms_pki_ca_params p = {type, mode, conf, rev, kms_now()};
    KMS_GUARD(kms_pki_ca_create(ks, &p, &ca));
    kms_pki_ca_arn(ks, ca.ca_id, arn);
    /* A ROOT CA that publishes CRLs publishes its first (empty) one at once. */
    int r = ca.certificate != NULL && kms_pki_crl_enabled(&ca) ? publish_crl(rq, &ca) : 0;
    kms_pki_ca_clean_up(&ca);
    KMS_GUARD(r);
    *resp = json_pack("{s:s}", "CertificateAuthorityArn", arn);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

static int describe_ca(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX];
    kms_pki_ca ca;
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, &ca));
    json_t *o = ca_json(ks, &ca);
    kms_pki_ca_clean_up(&ca);
    *resp = o != NULL ? json_pack("{s:o}", "CertificateAuthority", o) : NULL;
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

typedef struct list_ctx {
    const kms_keystore *ks;
    json_t *list;
    char last[37];
} list_ctx;

static int list_one(void *arg, const kms_pki_ca *ca)
{
    list_ctx *l = arg;
    json_t *o = ca_json(l->ks, ca);
    KMS_ENSURE(o != NULL && json_array_append_new(l->list, o) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    snprintf(l->last, sizeof l->last, "%s", ca->ca_id);
    return 0;
}

static int list_cas(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    const char *token = NULL, *owner = NULL;
    long long max = 0;
    bool truncated = false;
    KMS_GUARD(kms_request_int(req, "MaxResults", false, 1, 1000, 100, &max));
    KMS_GUARD(kms_request_string(req, "NextToken", false, 1, 43, &token));
    KMS_GUARD(kms_request_string(req, "ResourceOwner", false, 1, 16, &owner));
    KMS_ENSURE(owner == NULL || strcmp(owner, "SELF") == 0, KMS_ERR_INVALID_ARGS,
               "ResourceOwner must be SELF: CAs are not shared between accounts here");
    KMS_ENSURE(token == NULL || kms_uuid_valid(token), KMS_ERR_INVALID_ARGS,
               "NextToken '%s' is not a token of this listing", token);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    list_ctx l = {ks, json_array(), ""};
    KMS_ENSURE(l.list != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (kms_pki_ca_list(l.ks, token, (size_t)max, list_one, &l, &truncated) != 0) {
        json_decref(l.list);
        return -1;
    }
    *resp = json_pack("{s:o}", "CertificateAuthorities", l.list);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (truncated && json_object_set_new(*resp, "NextToken", json_string(l.last)) != 0) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

/* {Certificate: PEM of der, CertificateChain: PEM of chain_der (if any) then chain_pem (if
 * any)}: the chain runs from the issuer up to the root, as AWS gives it. */
static int certificate_response(const uint8_t *der, size_t der_len, const uint8_t *chain_der,
                                size_t chain_len, const uint8_t *chain_pem, size_t chain_pem_len,
                                json_t **resp)
{
    char *pem = NULL, *issuer = NULL, *chain = NULL;
    int r = kms_pki_pem(der, der_len, &pem);
    if (r == 0 && chain_der != NULL) {
        r = kms_pki_pem(chain_der, chain_len, &issuer);
    }
    if (r == 0 && (issuer != NULL || chain_pem != NULL)) {
        chain = kms_strdup_printf("%s%.*s", issuer ? issuer : "", (int)chain_pem_len,
                                  chain_pem ? (const char *)chain_pem : "");
        r = chain != NULL ? 0 : -1;
    }
    if (r == 0) {
        *resp = json_pack("{s:s, s:s*}", "Certificate", pem, "CertificateChain", chain);
        r = *resp != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    free(pem);
    free(issuer);
    free(chain);
    return r;
}

static int get_ca_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX];
    kms_pki_ca ca;
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, &ca));
    int r = ca.certificate != NULL
                ? certificate_response(ca.certificate, ca.certificate_len, NULL, 0, ca.chain,
                                       ca.chain_len, resp)
                : kms_raise(KMS_ERR_PCA_INVALID_STATE,
                            "The certificate authority %s has no certificate yet", arn);
    kms_pki_ca_clean_up(&ca);
    return r;
}

static int get_ca_csr(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX];
    char *pem = NULL;
    kms_pki_ca ca;
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, &ca));
    int r = kms_pki_ca_csr(ks, &ca, &pem);
    kms_pki_ca_clean_up(&ca);
    if (r == 0) {
        *resp = json_pack("{s:s}", "Csr", pem);
        r = *resp != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    free(pem);
    return r;
}

static int import_ca_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX];
    uint8_t *cert = NULL, *chain = NULL;
    size_t cert_len = 0, chain_len = 0;
    kms_pki_ca ca;
    int r = -1;
    memset(&ca, 0, sizeof ca);
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    if (kms_request_blob(req, "Certificate", true, 1, KMS_PKI_CSR_MAX, false, &cert, &cert_len) !=
            0 ||
        kms_request_blob(req, "CertificateChain", true, 1, (size_t)KMS_PKI_CSR_MAX * 4, false,
                         &chain, &chain_len) != 0 ||
        kms_pki_ca_get(ks, ca_id, &ca) != 0) {
        goto out;
    }
    if (kms_pki_ca_import(ks, &ca, cert, cert_len, chain, chain_len, kms_now()) != 0) {
        goto out;
    }
    /* Installed, a CA that publishes CRLs publishes its first one. */
    kms_pki_ca_clean_up(&ca);
    if (kms_pki_ca_get(ks, ca_id, &ca) != 0 ||
        (kms_pki_crl_enabled(&ca) && publish_crl(rq, &ca) != 0)) {
        goto out;
    }
    *resp = json_object();
    if (*resp == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_pki_ca_clean_up(&ca);
    free(cert);
    free(chain);
    return r;
}

/* Validity {Value, Type}: both or nothing. */
static int read_validity(json_t *req, kms_pki_issue_params *p)
{
    json_t *v = json_object_get(req, "Validity");
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    json_t *value = json_object_get(v, "Value");
    json_t *type = json_object_get(v, "Type");
    KMS_ENSURE(json_is_object(v) && json_object_size(v) == 2 && json_is_integer(value) &&
                   json_is_string(type),
               KMS_ERR_INVALID_ARGS,
               "Validity must be {\"Value\": INTEGER, \"Type\": "
               "\"DAYS|MONTHS|YEARS|END_DATE|ABSOLUTE\"}");
    p->validity_type = json_string_value(type);
    p->validity_value = json_integer_value(value);
    return 0;
}

static int issue_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX], serial[KMS_PKI_SERIAL_MAX];
    const char *token = NULL;
    kms_pki_issue_params p;
    kms_pki_ca ca;
    uint8_t *csr = NULL;
    int r = -1;
    memset(&p, 0, sizeof p);
    memset(&ca, 0, sizeof ca);
    KMS_GUARD(kms_request_string(req, "SigningAlgorithm", true, 1, 32, &p.signing_algorithm));
    KMS_GUARD(kms_request_string(req, "TemplateArn", false, 1, 200, &p.template_arn));
    KMS_GUARD(kms_request_string(req, "IdempotencyToken", false, 1, 36, &token));
    KMS_GUARD(refuse_unsupported(req, M("ValidityNotBefore")));

    KMS_GUARD(read_validity(req, &p));
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    if (kms_request_blob(req, "Csr", true, 1, KMS_PKI_CSR_MAX, false, &csr, &p.csr_len) != 0 ||
        kms_pki_ca_get(ks, ca_id, &ca) != 0) {
        goto out;
    }
    p.csr = csr;
    p.now = kms_now();
    /* ApiPassthrough: taken by the *_APIPassthrough templates, refused with the others. */
    if (kms_pki_issue_with(ks, &ca, &p, json_object_get(req, "ApiPassthrough"), serial) != 0) {
        goto out;
    }
    kms_pki_cert_arn(ks, ca_id, serial, arn);
    *resp = json_pack("{s:s}", "CertificateArn", arn);
    if (*resp == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_pki_ca_clean_up(&ca);
    free(csr);
    return r;
}

static int get_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX], cert_ca[37], serial[KMS_PKI_SERIAL_MAX];
    const char *cert_arn = NULL;
    kms_pki_ca ca;
    uint8_t *der = NULL;
    size_t der_len = 0;
    KMS_GUARD(kms_request_string(req, "CertificateArn", true, 5, 200, &cert_arn));
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    KMS_GUARD(kms_pki_arn_parse(ks, cert_arn, cert_ca, serial));
    KMS_ENSURE(strcmp(cert_ca, ca_id) == 0 && strncmp(cert_arn, arn, strlen(arn)) == 0,
               KMS_ERR_INVALID_ARN, "%s is not a certificate of %s", cert_arn, arn);
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, &ca));
    int r = kms_pki_cert_get(ks, ca_id, serial, &der, &der_len);
    if (r == 0) {
        r = certificate_response(der, der_len, ca.certificate, ca.certificate_len, ca.chain,
                                 ca.chain_len, resp);
    }
    free(der);
    kms_pki_ca_clean_up(&ca);
    return r;
}

static int update_ca(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX];
    const char *status = NULL;
    kms_pki_ca ca;
    json_t *rev = json_object_get(req, "RevocationConfiguration");
    KMS_GUARD(kms_request_string(req, "Status", false, 1, 32, &status));
    KMS_GUARD(kms_pki_revocation_check(rev));
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, &ca));
    int r = 0;
    if (rev != NULL && !json_is_null(rev)) {
        r = kms_pki_ca_set_revocation(ks, &ca, rev, kms_now());
    }
    if (r == 0 && status != NULL) {
        r = kms_pki_ca_set_status(ks, &ca, status, kms_now());
    }
    kms_pki_ca_clean_up(&ca);
    return empty_response(r, resp);
}

static int delete_ca(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX];
    long long days = 0;
    kms_pki_ca ca;
    KMS_GUARD(kms_request_int(req, "PermanentDeletionTimeInDays", false, 7, 30, 30, &days));
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, &ca));
    int r = kms_pki_ca_delete(ks, &ca, (int)days, kms_now());
    kms_pki_ca_clean_up(&ca);
    return empty_response(r, resp);
}

static int restore_ca(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX];
    kms_pki_ca ca;
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, &ca));
    int r = kms_pki_ca_restore(ks, &ca, kms_now());
    kms_pki_ca_clean_up(&ca);
    return empty_response(r, resp);
}

/* RevokeCertificate: recorded, then the CA's CRL is reissued at once. */
static int revoke_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX];
    const char *serial = NULL, *reason = NULL;
    kms_pki_ca ca;
    KMS_GUARD(kms_request_string(req, "CertificateSerial", true, 1, 128, &serial));
    KMS_GUARD(kms_request_string(req, "RevocationReason", true, 1, 64, &reason));
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, &ca));
    int r = kms_pki_revoke(ks, &ca, serial, reason, kms_now());
    if (r != 0 && kms_last_error() == KMS_ERR_ALREADY_PROCESSED) {
        /* Revoked before: if that call failed to publish, the CRL must hold it now. The
         * caller still learns it was revoked already. */
        kms_error_clear();
        r = publish_crl(rq, &ca);
        if (r == 0) {
            r = kms_raise(KMS_ERR_ALREADY_PROCESSED, "certificate %s is revoked already", serial);
        }
    } else if (r == 0) {
        r = publish_crl(rq, &ca);
    }
    kms_pki_ca_clean_up(&ca);
    return empty_response(r, resp);
}

/* CreateCertificateAuthorityAuditReport: written under the home (ops_pki_report.c says where);
 * S3BucketName, which AWS requires, is taken and only recorded. */
static int create_audit_report(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX];
    const char *format = NULL, *bucket = NULL;
    kms_pki_ca ca;
    KMS_GUARD(kms_request_string(req, "AuditReportResponseFormat", true, 1, 8, &format));
    KMS_GUARD(kms_request_string(req, "S3BucketName", false, 3, 63, &bucket));
    KMS_ENSURE(strcmp(format, "JSON") == 0 || strcmp(format, "CSV") == 0, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'auditReportResponseFormat' failed to "
               "satisfy constraint: Member must satisfy enum value set: [JSON, CSV]",
               format);
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, &ca));
    int r = kms_ops_pki_report_create(rq, ks, &ca, format, bucket, resp);
    kms_pki_ca_clean_up(&ca);
    return r;
}

static int describe_audit_report(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const kms_keystore *ks = caller_ks(rq, &view);
    char ca_id[37], arn[KMS_ARN_MAX];
    const char *id = NULL;
    kms_pki_ca ca;
    KMS_GUARD(kms_request_string(req, "AuditReportId", true, 36, 36, &id));
    KMS_GUARD(authorize_ca(rq, req, ca_id, arn));
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, &ca));
    int r = kms_ops_pki_report_describe(rq, &ca, id, resp);
    kms_pki_ca_clean_up(&ca);
    return r;
}

static const kms_op ops[] = {
    {"acm-pca:CreateCertificateAuthority", create_ca,
     M("CertificateAuthorityConfiguration", "RevocationConfiguration", "CertificateAuthorityType",
       "IdempotencyToken", "KeyStorageSecurityStandard", "Tags", "UsageMode")},
    {"acm-pca:DescribeCertificateAuthority", describe_ca, M("CertificateAuthorityArn")},
    {"acm-pca:UpdateCertificateAuthority", update_ca,
     M("CertificateAuthorityArn", "RevocationConfiguration", "Status")},
    {"acm-pca:DeleteCertificateAuthority", delete_ca,
     M("CertificateAuthorityArn", "PermanentDeletionTimeInDays")},
    {"acm-pca:RestoreCertificateAuthority", restore_ca, M("CertificateAuthorityArn")},
    {"acm-pca:ListCertificateAuthorities", list_cas, M("MaxResults", "NextToken", "ResourceOwner")},
    {"acm-pca:GetCertificateAuthorityCertificate", get_ca_certificate,
     M("CertificateAuthorityArn")},
    {"acm-pca:GetCertificateAuthorityCsr", get_ca_csr, M("CertificateAuthorityArn")},
    {"acm-pca:ImportCertificateAuthorityCertificate", import_ca_certificate,
     M("CertificateAuthorityArn", "Certificate", "CertificateChain")},
    {"acm-pca:IssueCertificate", issue_certificate,
     M("ApiPassthrough", "CertificateAuthorityArn", "Csr", "IdempotencyToken", "SigningAlgorithm",
       "TemplateArn", "Validity", "ValidityNotBefore")},
    {"acm-pca:GetCertificate", get_certificate, M("CertificateAuthorityArn", "CertificateArn")},
    {"acm-pca:RevokeCertificate", revoke_certificate,
     M("CertificateAuthorityArn", "CertificateSerial", "RevocationReason")},
    {"acm-pca:CreateCertificateAuthorityAuditReport", create_audit_report,
     M("CertificateAuthorityArn", "AuditReportResponseFormat", "S3BucketName")},
    {"acm-pca:DescribeCertificateAuthorityAuditReport", describe_audit_report,
     M("CertificateAuthorityArn", "AuditReportId")},
};

#undef M

const kms_op *kms_ops_pki_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].name, name) == 0) {
            return &ops[i];
        }
    }
    return NULL;
}

static const char *const names[] = {
    "acm-pca:CreateCertificateAuthority",
    "acm-pca:DescribeCertificateAuthority",
    "acm-pca:ListCertificateAuthorities",
    "acm-pca:GetCertificateAuthorityCertificate",
    "acm-pca:IssueCertificate",
    "acm-pca:GetCertificate",
    "acm-pca:RevokeCertificate",
    "acm-pca:CreateCertificateAuthorityAuditReport",
    "acm-pca:DescribeCertificateAuthorityAuditReport",
    NULL,
};

const char *const *kms_ops_pki_names(void)
{
    return names;
}
