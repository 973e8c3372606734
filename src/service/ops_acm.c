/* AWS Certificate Manager operations (API reference shapes), each through the gate: the
 * request's members are read, the acm: action is authorised on the certificate's ARN (or "*"
 * for requesting, importing and listing, as AWS does), and only then does src/pki read or write
 * anything. Private keys and passphrases never reach an audit record (audit_trail.c
 * secret_member). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pki/acm.h"
#include "service/acm_service.h"
#include "service/audit_trail.h"
#include "service/ops_acm.h"
#include "service/request.h"
#include "util/secmem.h"
#include "util/util.h"

#define M(...) ((const char *const[]){__VA_ARGS__, NULL})

static int empty_response(int r, json_t **resp)
{
    if (r == 0 && (*resp = json_object()) == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return r;
}

/* The key store as the caller's account sees it (as ops_pki.c's): a certificate belongs to the
 * account of the caller who requested or imported it, and every lookup, listing and ARN is of
 * that account. */
static kms_keystore *caller_ks(const kms_request *rq, kms_keystore *view)
{
    kms_pki_keystore_as(&rq->client->keystore, rq->who->id.account_id, view);
    return view;
}

/* Reads CertificateArn, checks it names a certificate of this home's region (InvalidArnException),
 * authorises the operation on it as given (another account's ARN: the gate's cross-account
 * refusal), and reads the certificate of the caller's account (another account's id under the
 * caller's account: ResourceNotFoundException). */
static int authorize_cert(kms_request *rq, json_t *req, kms_acm_cert *c)
{
    const char *given = NULL;
    char id[37];
    kms_keystore view;
    memset(c, 0, sizeof *c);
    KMS_GUARD(kms_request_string(req, "CertificateArn", true, 20, 2048, &given));
    KMS_GUARD(kms_acm_arn_parse(caller_ks(rq, &view), given, id));
    kms_audit_trail_resource(rq, given);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, given));
    return kms_acm_get(&view, id, c);
}

/* ACM prints serials as colon-separated hex octets ("0f:a3:..."); hex has an even length
 * (kms_acm_cert_fill writes whole octets). */
static void serial_colons(const char *hex, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; hex[i] != '\0' && hex[i + 1] != '\0' && o + 4 < size; i += 2) {
        if (o > 0) {
            out[o++] = ':';
        }
        out[o++] = hex[i];
        out[o++] = hex[i + 1];
    }
    out[o] = '\0';
}

/* CertificateDetail as DescribeCertificate shapes it. NULL on out-of-memory. */
static json_t *detail_json(const kms_keystore *ks, const kms_acm_cert *c, int64_t now)
{
    char arn[KMS_ARN_MAX], serial[3 * KMS_PKI_SERIAL_MAX];
    kms_acm_arn(ks, c->cert_id, arn);
    serial_colons(c->serial, serial, sizeof serial);
    bool imported = strcmp(c->type, "IMPORTED") == 0;
    json_t *sans = json_loads(c->sans, 0, NULL);
    json_t *in_use = json_loads(c->in_use_by, 0, NULL);
    json_t *o =
        json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:s, s:I, s:{s:s, s:s}}",
                  "CertificateArn", arn, "DomainName", c->domain_name, "SubjectAlternativeNames",
                  sans != NULL ? sans : json_array(), "Status", kms_acm_status(c, now), "Type",
                  c->type, "Serial", serial, "NotBefore", (json_int_t)c->not_before, "NotAfter",
                  (json_int_t)c->not_after, "KeyAlgorithm", c->key_algorithm, "InUseBy",
                  in_use != NULL ? in_use : json_array(), "RenewalEligibility",
                  c->renewal_eligibility, "CreatedAt", (json_int_t)c->created_at, "Options",
                  "CertificateTransparencyLoggingPreference", "DISABLED", "Export",
                  strcmp(c->key_storage, "SEALED") == 0 && !imported ? "ENABLED" : "DISABLED");
    if (o == NULL) {
        return NULL;
    }
    bool ok = json_object_set_new(o, imported ? "ImportedAt" : "IssuedAt",
                                  json_integer(imported ? c->imported_at : c->issued_at)) == 0 &&
              kms_acm_x509_details(c, o) == 0;
    if (ok && c->revoked_at != 0) {
        ok = json_object_set_new(o, "RevokedAt", json_integer(c->revoked_at)) == 0 &&
             json_object_set_new(o, "RevocationReason", json_string(c->revocation_reason)) == 0;
    }
    if (ok && c->ca_arn[0] != '\0') {
        ok = json_object_set_new(o, "CertificateAuthorityArn", json_string(c->ca_arn)) == 0;
    }
    if (ok && c->renewal_status[0] != '\0') {
        json_t *sum = json_pack("{s:s, s:I, s:[]}", "RenewalStatus", c->renewal_status, "UpdatedAt",
                                (json_int_t)c->renewal_updated_at, "DomainValidationOptions");
        ok = sum != NULL && json_object_set_new(o, "RenewalSummary", sum) == 0;
        if (ok && c->renewal_reason != NULL && c->renewal_reason[0] != '\0') {
            ok = json_object_set_new(sum, "RenewalStatusReason", json_string(c->renewal_reason)) ==
                 0;
        }
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Options {Export: ENABLED|DISABLED, KeyStorage: HSM|EXPORTABLE}: whether the key is sealed
 * (exportable) rather than held in the HSM (the default). */
static int read_options(json_t *req, bool *exportable)
{
    json_t *opt = json_object_get(req, "Options");
    *exportable = false;
    if (opt == NULL || json_is_null(opt)) {
        return 0;
    }
    const char *export = json_string_value(json_object_get(opt, "Export"));
    const char *storage = json_string_value(json_object_get(opt, "KeyStorage"));
    const char *ct =
        json_string_value(json_object_get(opt, "CertificateTransparencyLoggingPreference"));
    KMS_ENSURE(json_is_object(opt), KMS_ERR_VALIDATION, "Options must be an object");
    KMS_ENSURE(export == NULL || strcmp(export, "ENABLED") == 0 || strcmp(export, "DISABLED") == 0,
               KMS_ERR_VALIDATION, "Options.Export must be ENABLED or DISABLED");
    KMS_ENSURE(storage == NULL || strcmp(storage, "HSM") == 0 || strcmp(storage, "EXPORTABLE") == 0,
               KMS_ERR_VALIDATION, "Options.KeyStorage must be HSM or EXPORTABLE");
    KMS_ENSURE(ct == NULL || strcmp(ct, "DISABLED") == 0, KMS_ERR_VALIDATION,
               "Options.CertificateTransparencyLoggingPreference: private certificates are "
               "never logged (DISABLED)");
    *exportable = (export != NULL && strcmp(export, "ENABLED") == 0) ||
                  (storage != NULL && strcmp(storage, "EXPORTABLE") == 0);
    KMS_ENSURE(!(export != NULL && strcmp(export, "DISABLED") == 0 && *exportable),
               KMS_ERR_VALIDATION, "Options.Export DISABLED contradicts KeyStorage EXPORTABLE");
    return 0;
}

/* Members ACM has for public certificates only: refused, never silently ignored. */
static int refuse_public(json_t *req)
{
    static const char *const members[] = {"ValidationMethod", "DomainValidationOptions",
                                          "ManagedBy"};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        json_t *v = json_object_get(req, members[i]);
        KMS_ENSURE(v == NULL || json_is_null(v), KMS_ERR_INVALID_PARAMETER,
                   "%s is for public certificates: this home issues private certificates from "
                   "its CAs (give CertificateAuthorityArn)",
                   members[i]);
    }
    return 0;
}

static int request_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    char arn[KMS_ARN_MAX];
    kms_acm_cert c;
    kms_key_record seal;
    int r = -1;
    kms_keystore view;
    kms_keystore *ks = caller_ks(rq, &view);
    kms_acm_request_params p = {.sans = json_object_get(req, "SubjectAlternativeNames"),
                                .requester = rq->who->id.arn,
                                .now = kms_now()};
    json_t *tags = json_object_get(req, "Tags");
    memset(&seal, 0, sizeof seal);
    memset(&c, 0, sizeof c);
    KMS_GUARD(kms_request_string(req, "DomainName", true, 1, 253, &p.domain_name));
    KMS_GUARD(kms_request_string(req, "KeyAlgorithm", false, 1, 24, &p.key_algorithm));
    KMS_GUARD(kms_request_string(req, "CertificateAuthorityArn", false, 20, 2048, &p.ca_arn));
    KMS_GUARD(kms_request_string(req, "IdempotencyToken", false, 1, 32, &p.idempotency_token));
    KMS_GUARD(refuse_public(req));
    KMS_GUARD(read_options(req, &p.exportable));
    KMS_GUARD(kms_acm_request_check(ks, &p));
    if (tags != NULL && !json_is_null(tags)) {
        KMS_GUARD(kms_acm_tags_check(tags)); /* before anything is made */
    }
    kms_audit_trail_resource(rq, p.ca_arn);
    /* As AWS: acm:RequestCertificate on "*", and the CA's own acm-pca:IssueCertificate. */
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    KMS_GUARD(kms_gate_authorize(rq, "acm-pca:IssueCertificate", p.ca_arn));
    if (p.exportable) {
        KMS_GUARD(kms_acm_service_seal_key(rq->client, ks->account_id, &seal));
        p.seal_with = &seal;
    }
    if (kms_acm_request(ks, &p, &c) != 0) {
        goto out;
    }
    kms_acm_arn(ks, c.cert_id, arn);
    kms_audit_trail_resource(rq, arn);
    if (tags != NULL && !json_is_null(tags) && kms_acm_tags_add(ks, c.cert_id, tags) != 0) {
        goto out;
    }
    *resp = json_pack("{s:s}", "CertificateArn", arn);
    if (*resp == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_acm_cert_clean_up(&c);
    kms_key_record_clean_up(&seal);
    return r;
}

static int describe_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_acm_cert c;
    kms_keystore view;
    KMS_GUARD(authorize_cert(rq, req, &c));
    json_t *o = detail_json(caller_ks(rq, &view), &c, kms_now());
    kms_acm_cert_clean_up(&c);
    *resp = o != NULL ? json_pack("{s:o}", "Certificate", o) : NULL;
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

/* {Certificate, CertificateChain} as GetCertificate gives them (leaf, then issuer up). */
static int certificate_pair(const kms_acm_cert *c, json_t **resp)
{
    char *pem = NULL;
    KMS_GUARD(kms_pki_pem(c->certificate, c->certificate_len, &pem));
    char *chain = c->chain != NULL ? kms_strdup_printf("%.*s", (int)c->chain_len, c->chain) : NULL;
    *resp = json_pack("{s:s, s:s*}", "Certificate", pem, "CertificateChain", chain);
    free(pem);
    free(chain);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

static int get_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_acm_cert c;
    KMS_GUARD(authorize_cert(rq, req, &c));
    int r = certificate_pair(&c, resp);
    kms_acm_cert_clean_up(&c);
    return r;
}

static int export_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    kms_acm_cert c;
    uint8_t *pass = NULL;
    size_t pass_len = 0;
    char *key = NULL;
    int r = -1;
    KMS_GUARD(kms_request_blob(req, "Passphrase", true, 1, 128, true, &pass, &pass_len));
    if (authorize_cert(rq, req, &c) != 0) {
        goto out;
    }
    if (strcmp(c.key_storage, "HSM") == 0 || strcmp(c.type, "IMPORTED") == 0) {
        char arn[KMS_ARN_MAX];
        kms_acm_arn(caller_ks(rq, &view), c.cert_id, arn);
        kms_raise(KMS_ERR_VALIDATION,
                  strcmp(c.type, "IMPORTED") == 0
                      ? "Certificate %s is imported: imported certificates cannot be exported"
                      : "The private key of certificate %s is held in the HSM and cannot be "
                        "exported: request the certificate with Options Export=ENABLED",
                  arn);
        goto out;
    }
    if (kms_acm_export_key(caller_ks(rq, &view), &c, pass, pass_len, &key) != 0 ||
        certificate_pair(&c, resp) != 0) {
        goto out;
    }
    if (json_object_set_new(*resp, "PrivateKey", json_string(key)) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    if (key != NULL) {
        sodium_memzero(key, strlen(key));
    }
    free(key);
    kms_secret_free(pass, pass_len);
    kms_acm_cert_clean_up(&c);
    return r;
}

static int renew_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    kms_acm_cert c;
    kms_key_record seal;
    memset(&seal, 0, sizeof seal);
    KMS_GUARD(authorize_cert(rq, req, &c));
    int r = 0;
    if (strcmp(c.renewal_eligibility, "ELIGIBLE") != 0) {
        r = kms_raise(KMS_ERR_VALIDATION, "Certificate %s is not eligible for renewal (%s)",
                      c.cert_id, c.type);
    }
    if (r == 0 && strcmp(c.key_storage, "SEALED") == 0) {
        r = kms_acm_service_seal_key(rq->client, rq->who->id.account_id, &seal);
    }
    if (r == 0) {
        r = kms_acm_renew(caller_ks(rq, &view), &c,
                          strcmp(c.key_storage, "SEALED") == 0 ? &seal : NULL, kms_now());
    }
    kms_key_record_clean_up(&seal);
    kms_acm_cert_clean_up(&c);
    return empty_response(r, resp);
}

static int import_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    kms_acm_import_params p;
    kms_acm_cert existing, c;
    kms_key_record seal;
    char arn[KMS_ARN_MAX];
    uint8_t *cert = NULL, *key = NULL, *chain = NULL;
    size_t key_len = 0;
    bool reimport = json_object_get(req, "CertificateArn") != NULL;
    json_t *tags = json_object_get(req, "Tags");
    int r = -1;
    memset(&p, 0, sizeof p);
    memset(&existing, 0, sizeof existing);
    memset(&c, 0, sizeof c);
    memset(&seal, 0, sizeof seal);
    if (kms_request_blob(req, "Certificate", true, 1, 32768, false, &cert, &p.certificate_len) !=
            0 ||
        kms_request_blob(req, "PrivateKey", true, 1, 5120, true, &key, &key_len) != 0 ||
        kms_request_blob(req, "CertificateChain", false, 1, 2097152, false, &chain, &p.chain_len) !=
            0) {
        goto out;
    }
    if (reimport && tags != NULL && !json_is_null(tags)) {
        kms_raise(KMS_ERR_INVALID_PARAMETER, "Tags cannot be given when reimporting a "
                                             "certificate: use AddTagsToCertificate");
        goto out;
    }
    if (!reimport && tags != NULL && !json_is_null(tags) && kms_acm_tags_check(tags) != 0) {
        goto out;
    }
    if (reimport ? authorize_cert(rq, req, &existing) != 0
                 : kms_gate_authorize(rq, rq->operation, "*") != 0) {
        goto out;
    }
    if (kms_acm_service_seal_key(rq->client, rq->who->id.account_id, &seal) != 0) {
        goto out;
    }
    p.certificate = cert;
    p.private_key = key;
    p.private_key_len = key_len;
    p.chain = chain;
    p.seal_with = &seal;
    p.now = kms_now();
    if (kms_acm_import(caller_ks(rq, &view), reimport ? &existing : NULL, &p, &c) != 0) {
        goto out;
    }
    kms_acm_arn(caller_ks(rq, &view), c.cert_id, arn);
    kms_audit_trail_resource(rq, arn);
    if (!reimport && tags != NULL && !json_is_null(tags) &&
        kms_acm_tags_add(caller_ks(rq, &view), c.cert_id, tags) != 0) {
        goto out;
    }
    *resp = json_pack("{s:s}", "CertificateArn", arn);
    if (*resp == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_key_record_clean_up(&seal);
    kms_acm_cert_clean_up(&existing);
    kms_acm_cert_clean_up(&c);
    kms_secret_free(key, key_len);
    free(cert);
    free(chain);
    return r;
}

/* Servers of the TLS helper on this host whose process is gone (killed, crashed) left their
 * name in InUseBy: they use nothing now, so the entry goes; *pruned says whether any went. */
static int prune_gone_servers(const kms_keystore *ks, const kms_acm_cert *c, bool *pruned)
{
    json_t *list = c->in_use_by != NULL ? json_loads(c->in_use_by, 0, NULL) : NULL;
    size_t i;
    json_t *v;
    int r = 0;
    *pruned = false;
    json_array_foreach(list, i, v)
    {
        const char *name = json_string_value(v);
        if (r == 0 && name != NULL && kms_acm_tls_server_gone(name)) {
            r = kms_acm_in_use(ks, c->cert_id, name, false);
            *pruned = true;
        }
    }
    json_decref(list);
    return r;
}

static int delete_certificate(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    kms_acm_cert c;
    bool pruned = false;
    KMS_GUARD(authorize_cert(rq, req, &c));
    int r = prune_gone_servers(caller_ks(rq, &view), &c, &pruned);
    if (r == 0 && pruned) {
        char cert_id[37];
        snprintf(cert_id, sizeof cert_id, "%s", c.cert_id);
        kms_acm_cert_clean_up(&c);
        r = kms_acm_get(&view, cert_id, &c);
    }
    if (r != 0) {
        kms_acm_cert_clean_up(&c);
        return empty_response(r, resp);
    }
    r = kms_acm_delete(&view, &c);
    kms_acm_cert_clean_up(&c);
    return empty_response(r, resp);
}

/* AddTagsToCertificate (add) and RemoveTagsFromCertificate. */
static int change_tags(kms_request *rq, json_t *req, json_t **resp, bool add)
{
    kms_keystore view;
    kms_acm_cert c;
    KMS_GUARD(authorize_cert(rq, req, &c));
    const kms_keystore *ks = caller_ks(rq, &view);
    json_t *tags = json_object_get(req, "Tags");
    int r = add ? kms_acm_tags_add(ks, c.cert_id, tags) : kms_acm_tags_remove(ks, c.cert_id, tags);
    kms_acm_cert_clean_up(&c);
    return empty_response(r, resp);
}

static int add_tags(kms_request *rq, json_t *req, json_t **resp)
{
    return change_tags(rq, req, resp, true);
}

static int remove_tags(kms_request *rq, json_t *req, json_t **resp)
{
    return change_tags(rq, req, resp, false);
}

static int list_tags(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    kms_acm_cert c;
    json_t *tags = NULL;
    KMS_GUARD(authorize_cert(rq, req, &c));
    int r = kms_acm_tags_list(caller_ks(rq, &view), c.cert_id, &tags);
    kms_acm_cert_clean_up(&c);
    KMS_GUARD(r);
    *resp = json_pack("{s:o}", "Tags", tags);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

/* ---- ListCertificates ------------------------------------------------------------------------ */

typedef struct list_ctx {
    const kms_keystore *ks;
    json_t *statuses;        /* CertificateStatuses (borrowed) or NULL */
    json_t *key_types;       /* Includes.keyTypes (borrowed) or NULL */
    int64_t expiring_before; /* 0: no expiry filter */
    int64_t now;
    size_t max;
    json_t *list;
    char last[37];
    bool truncated;
} list_ctx;

static bool in_list(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_string_value(v) != NULL && strcmp(json_string_value(v), s) == 0) {
            return true;
        }
    }
    return false;
}

/* CertificateSummary (ACM's). */
static int list_one(void *arg, const kms_acm_cert *c)
{
    list_ctx *l = arg;
    const char *status = kms_acm_status(c, l->now);
    if ((l->statuses != NULL && !in_list(l->statuses, status)) ||
        (l->key_types != NULL && !in_list(l->key_types, c->key_algorithm)) ||
        (l->expiring_before != 0 &&
         (strcmp(status, "ISSUED") != 0 || c->not_after > l->expiring_before))) {
        return 0;
    }
    if (json_array_size(l->list) == l->max) {
        l->truncated = true;
        return 1;
    }
    char arn[KMS_ARN_MAX];
    kms_acm_arn(l->ks, c->cert_id, arn);
    json_t *sans = json_loads(c->sans, 0, NULL);
    bool in_use = c->in_use_by != NULL && strcmp(c->in_use_by, "[]") != 0;
    bool imported = strcmp(c->type, "IMPORTED") == 0;
    json_t *o = json_pack(
        "{s:s, s:s, s:o, s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:s}", "CertificateArn", arn,
        "DomainName", c->domain_name, "SubjectAlternativeNameSummaries",
        sans != NULL ? sans : json_array(), "Status", status, "Type", c->type, "KeyAlgorithm",
        c->key_algorithm, "InUse", in_use, "RenewalEligibility", c->renewal_eligibility,
        "NotBefore", (json_int_t)c->not_before, "NotAfter", (json_int_t)c->not_after, "CreatedAt",
        (json_int_t)c->created_at, imported ? "ImportedAt" : "IssuedAt",
        (json_int_t)(imported ? c->imported_at : c->issued_at), "ExportOption",
        strcmp(c->key_storage, "SEALED") == 0 && !imported ? "ENABLED" : "DISABLED");
    KMS_ENSURE(o != NULL && json_array_append_new(l->list, o) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    snprintf(l->last, sizeof l->last, "%s", c->cert_id);
    return 0;
}

static int string_list(json_t *v, const char *what)
{
    size_t i;
    json_t *e;
    KMS_ENSURE(v == NULL || json_is_array(v), KMS_ERR_VALIDATION, "%s must be a list of strings",
               what);
    json_array_foreach(v, i, e)
    {
        KMS_ENSURE(json_is_string(e), KMS_ERR_VALIDATION, "%s must be a list of strings", what);
    }
    return 0;
}

static int list_certificates(kms_request *rq, json_t *req, json_t **resp)
{
    kms_keystore view;
    const char *token = NULL;
    long long max = 0, days = 0;
    json_t *includes = json_object_get(req, "Includes");
    list_ctx l = {.ks = caller_ks(rq, &view), .now = kms_now()};
    KMS_GUARD(kms_request_int(req, "MaxItems", false, 1, 1000, 1000, &max));
    KMS_GUARD(kms_request_int(req, "ExpiringWithinDays", false, 0, 3650, -1, &days));
    KMS_GUARD(kms_request_string(req, "NextToken", false, 1, 10000, &token));
    KMS_ENSURE(token == NULL || kms_uuid_valid(token), KMS_ERR_INVALID_PARAMETER,
               "NextToken '%s' is not a token of this listing", token);
    l.statuses = json_object_get(req, "CertificateStatuses");
    l.key_types = json_object_get(includes, "keyTypes");
    KMS_GUARD(string_list(l.statuses, "CertificateStatuses"));
    KMS_GUARD(string_list(l.key_types, "Includes.keyTypes"));
    l.max = (size_t)max;
    l.expiring_before = days >= 0 ? l.now + days * 86400 : 0;
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    l.list = json_array();
    KMS_ENSURE(l.list != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (kms_acm_list(l.ks, token, list_one, &l) != 0) {
        json_decref(l.list);
        return -1;
    }
    *resp = json_pack("{s:o}", "CertificateSummaryList", l.list);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (l.truncated && json_object_set_new(*resp, "NextToken", json_string(l.last)) != 0) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

static const kms_op ops[] = {
    {"acm:RequestCertificate", request_certificate,
     M("DomainName", "SubjectAlternativeNames", "KeyAlgorithm", "CertificateAuthorityArn",
       "Options", "IdempotencyToken", "Tags", "ValidationMethod", "DomainValidationOptions",
       "ManagedBy")},
    {"acm:DescribeCertificate", describe_certificate, M("CertificateArn")},
    {"acm:ListCertificates", list_certificates,
     M("CertificateStatuses", "Includes", "MaxItems", "NextToken", "ExpiringWithinDays")},
    {"acm:GetCertificate", get_certificate, M("CertificateArn")},
    {"acm:ExportCertificate", export_certificate, M("CertificateArn", "Passphrase")},
    {"acm:RenewCertificate", renew_certificate, M("CertificateArn")},
    {"acm:ImportCertificate", import_certificate,
     M("CertificateArn", "Certificate", "PrivateKey", "CertificateChain", "Tags")},
    {"acm:DeleteCertificate", delete_certificate, M("CertificateArn")},
    {"acm:AddTagsToCertificate", add_tags, M("CertificateArn", "Tags")},
    {"acm:RemoveTagsFromCertificate", remove_tags, M("CertificateArn", "Tags")},
    {"acm:ListTagsForCertificate", list_tags, M("CertificateArn")},
};

#undef M

const kms_op *kms_ops_acm_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].name, name) == 0) {
            return &ops[i];
        }
    }
    return NULL;
}

static const char *const names[] = {
    "acm:RequestCertificate",     "acm:DescribeCertificate",
    "acm:ListCertificates",       "acm:GetCertificate",
    "acm:ExportCertificate",      "acm:RenewCertificate",
    "acm:ImportCertificate",      "acm:DeleteCertificate",
    "acm:AddTagsToCertificate",   "acm:RemoveTagsFromCertificate",
    "acm:ListTagsForCertificate", NULL,
};

const char *const *kms_ops_acm_names(void)
{
    return names;
}
