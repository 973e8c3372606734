/* The OCSP responder (RFC 6960) over the manager's records: the CAs that may answer (of every
 * account of the home: a relying party names an issuer, not an account), each certificate's
 * status as pca_certificates holds it, and the signature of the issuing CA's key in the HSM.
 * pki_ocsp.h says what is answered, when, and at which URL. */
#include <openssl/ocsp.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki_internal.h"
#include "pki/pki_ocsp.h"
#include "store/store_internal.h"
#include "util/util.h"

/* Every CA that may sign an answer, whatever its account; the rest of the checks (OCSP enabled,
 * a certificate valid now) are made on the rows. */
static const char sql_ocsp_cas[] =
    "SELECT ca_id, account_id, status, key_algorithm, signing_algorithm, certificate, not_before,"
    " not_after, revocation_configuration FROM pca_authorities"
    " WHERE status IN ('ACTIVE', 'DISABLED') AND certificate IS NOT NULL ORDER BY ca_id";
static const char sql_ocsp_status[] =
    "SELECT revoked_at, revocation_reason FROM pca_certificates WHERE ca_id = ?1 AND serial = ?2";

/* The CAs read, and for each its certificate parsed (parallel arrays). */
typedef struct responder {
    const kms_keystore *ks;
    kms_pki_ca *rows;
    kms_pki_ocsp_ca *cas;
    size_t count;
    size_t cap;
    size_t cas_cap;
    const char *home;
    int64_t now;
} responder;

static void responder_clean_up(responder *rs)
{
    for (size_t i = 0; i < rs->count; i++) {
        X509_free(rs->cas[i].cert);
        kms_pki_ca_clean_up(&rs->rows[i]);
    }
    free(rs->cas);
    free(rs->rows);
    memset(rs, 0, sizeof *rs);
}

static int ca_read(kms_db_stmt *st, void *arg)
{
    responder *rs = arg;
    kms_pki_ca ca;
    memset(&ca, 0, sizeof ca);
    const char *subject = kms_db_column_text(st, 0);
    if (kms_db_column_copy(st, 0, ca.ca_id, sizeof ca.ca_id, subject) != 0 ||
        kms_db_column_copy(st, 1, ca.account_id, sizeof ca.account_id, subject) != 0 ||
        kms_db_column_copy(st, 2, ca.status, sizeof ca.status, subject) != 0 ||
        kms_db_column_copy(st, 3, ca.key_algorithm, sizeof ca.key_algorithm, subject) != 0 ||
        kms_db_column_copy(st, 4, ca.signing_algorithm, sizeof ca.signing_algorithm, subject) !=
            0 ||
        kms_db_column_blob_dup(st, 5, &ca.certificate, &ca.certificate_len) != 0 ||
        kms_db_column_dup(st, 8, &ca.revocation) != 0) {
        kms_pki_ca_clean_up(&ca);
        return -1;
    }
    ca.not_before = kms_db_column_int64(st, 6);
    ca.not_after = kms_db_column_int64(st, 7);
    /* Only the CAs that answer: OCSP enabled, a certificate valid now. */
    const unsigned char *p = ca.certificate;
    X509 *cert = NULL;
    if (kms_pki_ocsp_enabled(&ca) && rs->now >= ca.not_before && rs->now < ca.not_after &&
        p != NULL) {
        cert = d2i_X509(NULL, &p, (long)ca.certificate_len);
    }
    if (cert == NULL) {
        kms_pki_ca_clean_up(&ca);
        return 0;
    }
    if (kms_array_reserve((void **)&rs->rows, &rs->cap, rs->count, sizeof *rs->rows) != 0 ||
        kms_array_reserve((void **)&rs->cas, &rs->cas_cap, rs->count, sizeof *rs->cas) != 0) {
        X509_free(cert);
        kms_pki_ca_clean_up(&ca);
        return -1;
    }
    rs->rows[rs->count] = ca;
    rs->cas[rs->count].cert = cert;
    rs->count++;
    return 0;
}

/* RFC 6960 4.2.2.1: nextUpdate, when newer information will be there: the published CRL's
 * nextUpdate while it is ahead, else a day from now (kms_pki_ocsp_next_update_fn). */
static int next_update(void *arg, size_t ca, int64_t *out)
{
    responder *rs = arg;
    bool due = false;
    int64_t next = 0;
    *out = 0;
    KMS_GUARD(kms_pki_crl_due(&rs->rows[ca], rs->home, rs->now, &due, &next));
    *out = next > rs->now ? next : rs->now + KMS_PKI_OCSP_NEXT_UPDATE_SECONDS;
    return 0;
}

typedef struct status_row {
    bool found;
    int64_t revoked_at;
    char reason[40];
} status_row;

static int status_read(kms_db_stmt *st, void *arg)
{
    status_row *s = arg;
    s->found = true;
    s->revoked_at = kms_db_column_int64(st, 0);
    snprintf(s->reason, sizeof s->reason, "%s",
             kms_db_column_is_null(st, 1) ? "" : kms_db_column_text(st, 1));
    return 1;
}

/* kms_pki_ocsp_lookup_fn over pca_certificates. */
static int lookup(void *arg, size_t ca, const char *serial, kms_pki_ocsp_status *out)
{
    responder *rs = arg;
    status_row s = {false, 0, ""};
    int code = 0;
    out->status = V_OCSP_CERTSTATUS_UNKNOWN;
    out->revoked_at = 0;
    out->reason = OCSP_REVOKED_STATUS_NOSTATUS;
    KMS_GUARD(kms_db_query(kms_store_db(rs->ks->store), sql_ocsp_status,
                           KMS_DB_PARAMS(kms_db_text(rs->rows[ca].ca_id), kms_db_text(serial)),
                           status_read, &s, "cannot read the certificate's status", NULL));
    if (!s.found) {
        return 0; /* never issued by this CA: unknown */
    }
    if (s.revoked_at == 0) {
        out->status = V_OCSP_CERTSTATUS_GOOD;
        return 0;
    }
    KMS_GUARD(kms_pki_crl_reason_code(s.reason, &code));
    out->status = V_OCSP_CERTSTATUS_REVOKED;
    out->revoked_at = s.revoked_at;
    /* As in the CRL (RFC 5280 5.3.1): no reason rather than unspecified. */
    out->reason = code == CRL_REASON_UNSPECIFIED ? OCSP_REVOKED_STATUS_NOSTATUS : code;
    return 0;
}

static int sign(const responder *rs, const kms_pki_ocsp_answer *a)
{
    const kms_pki_key_alg *key = NULL;
    const kms_pki_sig_alg *alg = NULL;
    const kms_pki_ca *ca = &rs->rows[a->signer];
    KMS_GUARD(kms_pki_key_alg_find(ca->key_algorithm, &key));
    KMS_GUARD(kms_pki_sig_alg_find(ca->signing_algorithm, &alg));
    return kms_pki_sign_ocsp(rs->ks, ca->ca_id, key, alg, rs->cas[a->signer].cert, a->basic);
}

int kms_pki_ocsp_respond(const kms_keystore *ks, const char *home, const uint8_t *request,
                         size_t request_len, int64_t now, uint8_t **response, size_t *response_len)
{
    responder rs;
    kms_pki_ocsp_answer a;
    kms_pki_ocsp_source src = {lookup, next_update, &rs};
    int r = -1;
    memset(&rs, 0, sizeof rs);
    memset(&a, 0, sizeof a);
    rs.ks = ks;
    rs.home = home;
    rs.now = now;
    *response = NULL;
    *response_len = 0;
    a.response_status = OCSP_RESPONSE_STATUS_INTERNALERROR;
    /* The records failing leaves the answer internalError. */
    if (kms_db_query(kms_store_db(ks->store), sql_ocsp_cas, KMS_DB_NO_PARAMS, ca_read, &rs,
                     "cannot list the certificate authorities", NULL) == 0 &&
        kms_pki_ocsp_answer_make(request, request_len, rs.cas, rs.count, &src, now, &a) != 0) {
        goto out; /* out of memory: no response at all */
    }
    if (a.response_status == OCSP_RESPONSE_STATUS_SUCCESSFUL && sign(&rs, &a) != 0) {
        kms_pki_ocsp_answer_clean_up(&a);
        a.response_status = OCSP_RESPONSE_STATUS_INTERNALERROR;
    }
    r = kms_pki_ocsp_response_der(a.response_status, a.basic, response, response_len);
out:
    kms_pki_ocsp_answer_clean_up(&a);
    responder_clean_up(&rs);
    return r;
}
