/* An OCSP request answered from the CAs and the status lookup given (RFC 6960 4.1, 4.2): the
 * parsing, the checks, the choice of the signer and the SingleResponses, before any signature.
 * pki_ocsp.h says what is answered when. */
#include <openssl/bn.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"
#include "pki/pki_ocsp.h"

/* RFC 8954 2.1: a nonce has 1 to 32 octets. */
#define NONCE_MAX 32

void kms_pki_ocsp_answer_clean_up(kms_pki_ocsp_answer *a)
{
    OCSP_BASICRESP_free(a->basic);
    memset(a, 0, sizeof *a);
}

/* ---- The request ------------------------------------------------------------------------------
 */

/* The nonce extension, if any, is one OCTET STRING of 1 to 32 octets (RFC 8954 2.1: anything
 * else is refused with malformedRequest). */
static bool nonce_ok(OCSP_REQUEST *req)
{
    int idx = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1);
    if (idx < 0) {
        return true;
    }
    if (OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, idx) >= 0) {
        return false; /* twice */
    }
    const ASN1_OCTET_STRING *value = X509_EXTENSION_get_data(OCSP_REQUEST_get_ext(req, idx));
    const unsigned char *p = value != NULL ? ASN1_STRING_get0_data(value) : NULL;
    long len = value != NULL ? ASN1_STRING_length(value) : 0;
    ASN1_OCTET_STRING *nonce = p != NULL ? d2i_ASN1_OCTET_STRING(NULL, &p, len) : NULL;
    bool ok = nonce != NULL && p == ASN1_STRING_get0_data(value) + len &&
              ASN1_STRING_length(nonce) >= 1 && ASN1_STRING_length(nonce) <= NONCE_MAX;
    ASN1_OCTET_STRING_free(nonce);
    return ok;
}

/* RFC 6960 4.4: extensions not understood are ignored, unless critical. The nonce is the one
 * understood. */
static bool request_extensions_ok(OCSP_REQUEST *req)
{
    for (int i = 0; i < OCSP_REQUEST_get_ext_count(req); i++) {
        X509_EXTENSION *ext = OCSP_REQUEST_get_ext(req, i);
        if (X509_EXTENSION_get_critical(ext) &&
            OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_id_pkix_OCSP_Nonce) {
            return false;
        }
    }
    return nonce_ok(req);
}

static bool single_extensions_ok(OCSP_ONEREQ *one)
{
    return OCSP_ONEREQ_get_ext_by_critical(one, 1, -1) < 0;
}

/* ---- The CA of a CertID -----------------------------------------------------------------------
 */

static const EVP_MD *certid_md(const ASN1_OBJECT *alg)
{
    switch (OBJ_obj2nid(alg)) {
    case NID_sha1:
        return EVP_sha1();
    case NID_sha256:
        return EVP_sha256();
    case NID_sha384:
        return EVP_sha384();
    case NID_sha512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

/* *ca: the index of the CA whose issuerNameHash and issuerKeyHash the CertID holds, or n. */
static int issuer_of(OCSP_CERTID *id, const kms_pki_ocsp_ca *cas, size_t n, size_t *ca)
{
    ASN1_OBJECT *alg = NULL;
    *ca = n;
    if (OCSP_id_get0_info(NULL, &alg, NULL, NULL, id) != 1) {
        return 0;
    }
    const EVP_MD *md = certid_md(alg);
    for (size_t i = 0; md != NULL && i < n; i++) {
        OCSP_CERTID *theirs = OCSP_cert_to_id(md, NULL, cas[i].cert);
        KMS_ENSURE(theirs != NULL, KMS_ERR_INTERNAL, "out of memory");
        int cmp = OCSP_id_issuer_cmp(theirs, id);
        OCSP_CERTID_free(theirs);
        if (cmp == 0) {
            *ca = i;
            return 0;
        }
    }
    return 0;
}

/* The CertID's serial as the records write it (lower-case hex, no leading zeros); false for a
 * serial no CA here writes (not positive, or over 20 octets: RFC 5280 4.1.2.2). */
static bool serial_text(OCSP_CERTID *id, char out[KMS_PKI_SERIAL_MAX])
{
    ASN1_INTEGER *sn = NULL;
    BIGNUM *bn = NULL;
    char *hex = NULL;
    bool ok = false;
    out[0] = '\0';
    if (OCSP_id_get0_info(NULL, NULL, NULL, &sn, id) == 1 && sn != NULL &&
        (bn = ASN1_INTEGER_to_BN(sn, NULL)) != NULL && !BN_is_negative(bn) && !BN_is_zero(bn) &&
        BN_num_bytes(bn) <= 20 && (hex = BN_bn2hex(bn)) != NULL) {
        const char *h = hex;
        size_t n = 0;
        while (*h == '0') {
            h++;
        }
        for (; *h != '\0' && n + 1 < KMS_PKI_SERIAL_MAX; h++) {
            out[n++] = (char)(*h >= 'A' && *h <= 'F' ? *h - 'A' + 'a' : *h);
        }
        out[n] = '\0';
        ok = n > 0;
    }
    OPENSSL_free(hex);
    BN_free(bn);
    return ok;
}

/* ---- The response -----------------------------------------------------------------------------
 */

static int add_single(OCSP_BASICRESP *bs, OCSP_CERTID *id, const kms_pki_ocsp_status *st,
                      int64_t now, int64_t next_update)
{
    int r = -1;
    bool revoked = st->status == V_OCSP_CERTSTATUS_REVOKED;
    ASN1_TIME *this_update = ASN1_TIME_set(NULL, (time_t)now);
    ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)next_update);
    ASN1_TIME *revoked_at = revoked ? ASN1_TIME_set(NULL, (time_t)st->revoked_at) : NULL;
    if (this_update == NULL || next == NULL || (revoked && revoked_at == NULL) ||
        OCSP_basic_add1_status(bs, id, st->status, revoked ? st->reason : 0, revoked_at,
                               this_update, next) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot add a SingleResponse");
        goto out;
    }
    r = 0;
out:
    ASN1_TIME_free(revoked_at);
    ASN1_TIME_free(next);
    ASN1_TIME_free(this_update);
    return r;
}

/* Every CertID answered, in order: those of the signer from the records, the others unknown.
 * *failed: the records failed (internalError). */
static int add_all(OCSP_REQUEST *req, const size_t *owner, const kms_pki_ocsp_answer *a,
                   const kms_pki_ocsp_source *src, int64_t now, bool *failed)
{
    int64_t next_update = 0;
    *failed = src->next_update(src->arg, a->signer, &next_update) != 0;
    for (int i = 0; !*failed && i < OCSP_request_onereq_count(req); i++) {
        OCSP_CERTID *id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
        kms_pki_ocsp_status st = {V_OCSP_CERTSTATUS_UNKNOWN, 0, OCSP_REVOKED_STATUS_NOSTATUS};
        char serial[KMS_PKI_SERIAL_MAX];
        if (owner[i] == a->signer && serial_text(id, serial) &&
            src->lookup(src->arg, a->signer, serial, &st) != 0) {
            *failed = true;
            return 0;
        }
        KMS_GUARD(add_single(a->basic, id, &st, now, next_update));
    }
    return 0;
}

int kms_pki_ocsp_answer_make(const uint8_t *der, size_t len, const kms_pki_ocsp_ca *cas, size_t n,
                             const kms_pki_ocsp_source *src, int64_t now, kms_pki_ocsp_answer *out)
{
    int r = -1;
    const unsigned char *p = der;
    OCSP_REQUEST *req = NULL;
    size_t owner[KMS_PKI_OCSP_MAX_IDS];
    int count = 0;
    bool failed = false;
    memset(out, 0, sizeof *out);
    out->response_status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
    out->signer = n;
    if (der == NULL || len == 0 || len > KMS_PKI_OCSP_REQUEST_MAX) {
        r = 0;
        goto out;
    }
    req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
    count = req != NULL && p == der + len ? OCSP_request_onereq_count(req) : 0;
    if (count < 1 || count > KMS_PKI_OCSP_MAX_IDS || !request_extensions_ok(req)) {
        r = 0;
        goto out;
    }
    for (int i = 0; i < count; i++) {
        OCSP_ONEREQ *one = OCSP_request_onereq_get0(req, i);
        if (!single_extensions_ok(one)) {
            r = 0;
            goto out;
        }
        if (issuer_of(OCSP_onereq_get0_id(one), cas, n, &owner[i]) != 0) {
            goto out;
        }
        /* RFC 6960 4.2.1: one signer, the issuer of the first CertID it can answer. */
        if (out->signer == n) {
            out->signer = owner[i];
        }
    }
    if (out->signer == n) {
        out->response_status = OCSP_RESPONSE_STATUS_UNAUTHORIZED;
        r = 0;
        goto out;
    }
    if ((out->basic = OCSP_BASICRESP_new()) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (add_all(req, owner, out, src, now, &failed) != 0) {
        goto out;
    }
    if (failed) {
        kms_pki_ocsp_answer_clean_up(out);
        out->response_status = OCSP_RESPONSE_STATUS_INTERNALERROR;
        out->signer = n;
        r = 0;
        goto out;
    }
    /* RFC 8954 2.1 (RFC 6960 4.4.1): the request's nonce, echoed. */
    if (OCSP_copy_nonce(out->basic, req) <= 0) {
        kms_raise(KMS_ERR_INTERNAL, "cannot echo the nonce");
        goto out;
    }
    out->response_status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
    r = 0;
out:
    if (r != 0) {
        kms_pki_ocsp_answer_clean_up(out);
    }
    OCSP_REQUEST_free(req);
    return r;
}

int kms_pki_ocsp_response_der(int status, OCSP_BASICRESP *basic, uint8_t **der, size_t *der_len)
{
    int r = -1;
    unsigned char *enc = NULL;
    int len = 0;
    OCSP_RESPONSE *resp =
        OCSP_response_create(status, status == OCSP_RESPONSE_STATUS_SUCCESSFUL ? basic : NULL);
    *der = NULL;
    *der_len = 0;
    len = resp != NULL ? i2d_OCSP_RESPONSE(resp, &enc) : 0;
    *der = len > 0 ? malloc((size_t)len) : NULL;
    if (*der == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot encode the OCSP response");
        goto out;
    }
    memcpy(*der, enc, (size_t)len);
    *der_len = (size_t)len;
    r = 0;
out:
    OPENSSL_free(enc);
    OCSP_RESPONSE_free(resp);
    return r;
}
