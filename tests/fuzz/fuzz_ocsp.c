/* Fuzzes the OCSP responder's request path (src/pki/pki_ocsp_answer.c: what kms_ocsp_respond
 * runs on the bytes a relying party sends, before the records and the HSM) with two fixed CAs
 * and a status lookup made up from the serial (its last hex digit: 0 the lookup fails, 1-5
 * good, 6-a revoked, b-f unknown) and a nextUpdate per CA. No home: the lookup stands for the
 * records, and a software key for the CA's HSM key. Invariants:
 *  - the answer is successful, malformedRequest, unauthorized, or internalError exactly when the
 *    lookup failed for a CertID of the signer; only a successful one has a BasicOCSPResponse;
 *  - successful: the request is one DER OCSPRequest of 1 to 64 CertIDs, the signer is the CA of
 *    one of them, there is one SingleResponse per CertID, in order, with the request's CertID;
 *    those of the signer have the lookup's status (revocation time and reason included), the
 *    others are unknown; the nonce is echoed when there is one, and none is made up;
 *  - every answer encodes as an OCSPResponse that parses back with its status.
 * Seeds (corpus/ocsp) are `openssl ocsp -reqout` requests for certificates of the two CAs. */
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "pki/pki.h"
#include "pki/pki_ocsp.h"
#include "util/util.h"

/* Two self-signed EC CAs, "fuzz CA one" and "fuzz CA two" (their keys are not needed). */
static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIBgzCCASmgAwIBAgIUU5W/GDDn6iETNyH4qviEmfnQjgUwCgYIKoZIzj0EAwIw\n"
                             "FjEUMBIGA1UEAwwLZnV6eiBDQSBvbmUwIBcNMjYxMjA3MTkwNTE2WhgPMjEyNjEx\n"
                             "MTMxOTA1MTZaMBYxFDASBgNVBAMMC2Z1enogQ0Egb25lMFkwEwYHKoZIzj0CAQYI\n"
                             "KoZIzj0DAQcDQgAE1ZWR1AHkZQdhyZP6i/L+Ni49QG9E6fO1A+kcH+XuZuLifyQs\n"
                             "Ns6didyHcAz627AQfQGRWFFtt2Bo3gzEWUSN7aNTMFEwHQYDVR0OBBYEFBkdI5jS\n"
                             "cKwCaBILYkGnzwIFOPPgMB8GA1UdIwQYMBaAFBkdI5jScKwCaBILYkGnzwIFOPPg\n"
                             "MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAM5CVtUuiYCnEzum\n"
                             "luSa10EJj+9iv99OwFJvIEi4RtReAiBsB727eK7eqDMKrgNLuywQfWRsUD8FUwFX\n"
                             "J4ZtvJNaPg==\n"
                             "-----END CERTIFICATE-----\n"
                             "-----BEGIN CERTIFICATE-----\n"
                             "MIIBgjCCASmgAwIBAgIUcLPbMm+S928tBxKCE1iWm7lSArEwCgYIKoZIzj0EAwIw\n"
                             "FjEUMBIGA1UEAwwLZnV6eiBDQSB0d28wIBcNMjYxMjA3MTkwNTE2WhgPMjEyNjEx\n"
                             "MTMxOTA1MTZaMBYxFDASBgNVBAMMC2Z1enogQ0EgdHdvMFkwEwYHKoZIzj0CAQYI\n"
                             "KoZIzj0DAQcDQgAESZB3eHvSfhF9SJo3UvlKD3BPkMtKhe4g8yGpDCVDoJ3uueuo\n"
                             "Id3h7P8TFV0H+zNbwZ5OQIylHn9sbOrww4ADbKNTMFEwHQYDVR0OBBYEFAvoyBxd\n"
                             "lqG4glFd/PfYLjNeEwlcMB8GA1UdIwQYMBaAFAvoyBxdlqG4glFd/PfYLjNeEwlc\n"
                             "MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgBC5gtfrCHVn4TYKn\n"
                             "0EK+YN4UqxU7SonTWuV1cIMWENcCIDWzt2HqYJhz/xAZgmfz9KXuoF6IGjS9s6/p\n"
                             "5uuFNdj+\n"
                             "-----END CERTIFICATE-----\n";

#define NOW 1796670000  /* 2026-12-07 */
#define NEXT 1796756400 /* a day later */
#define REVOKED 1796000000

static kms_pki_ocsp_ca cas[2];
static EVP_PKEY *signing_key; /* stands for the CA's HSM key */
static X509 *signing_cert;    /* its public key only, as OCSP_basic_sign wants one */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(kms_util_init() == 0);
    BIO *bio = BIO_new_mem_buf(ca_pem, -1);
    FUZZ_CHECK(bio != NULL);
    for (size_t i = 0; i < 2; i++) {
        cas[i].cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        FUZZ_CHECK(cas[i].cert != NULL);
    }
    BIO_free(bio);
    signing_key = EVP_EC_gen("P-256");
    signing_cert = X509_new();
    FUZZ_CHECK(signing_key != NULL && signing_cert != NULL &&
               X509_set_pubkey(signing_cert, signing_key) == 1);
    return 0;
}

/* The made-up records: by the serial's last hex digit. -1: the lookup fails. */
static int made_up(const char *serial, kms_pki_ocsp_status *out)
{
    char c = serial[strlen(serial) - 1];
    int d = c >= 'a' ? c - 'a' + 10 : c - '0';
    out->status = V_OCSP_CERTSTATUS_UNKNOWN;
    out->revoked_at = 0;
    out->reason = OCSP_REVOKED_STATUS_NOSTATUS;
    if (d == 0) {
        return -1;
    }
    if (d <= 5) {
        out->status = V_OCSP_CERTSTATUS_GOOD;
    } else if (d <= 10) {
        out->status = V_OCSP_CERTSTATUS_REVOKED;
        out->revoked_at = REVOKED + d;
        out->reason = d == 6 ? OCSP_REVOKED_STATUS_NOSTATUS : d - 6;
    }
    return 0;
}

static int lookup(void *arg, size_t ca, const char *serial, kms_pki_ocsp_status *out)
{
    size_t len = strlen(serial);
    (void)arg;
    FUZZ_CHECK(ca < 2 && len >= 1 && len <= 40 && serial[0] != '0');
    FUZZ_CHECK(strspn(serial, "0123456789abcdef") == len);
    if (made_up(serial, out) != 0) {
        return kms_raise(KMS_ERR_INTERNAL, "made-up failure");
    }
    return 0;
}

/* Each CA's answers are valid until a time of its own. */
static int next_update(void *arg, size_t ca, int64_t *out)
{
    (void)arg;
    FUZZ_CHECK(ca < 2);
    *out = NEXT + (int64_t)ca;
    return 0;
}

static const kms_pki_ocsp_source source = {lookup, next_update, NULL};

/* The CA of a CertID, recomputed here (2: none). */
static size_t issuer_of(OCSP_CERTID *id)
{
    ASN1_OBJECT *alg = NULL;
    FUZZ_CHECK(OCSP_id_get0_info(NULL, &alg, NULL, NULL, id) == 1);
    const EVP_MD *md = EVP_get_digestbyobj(alg);
    int nid = OBJ_obj2nid(alg);
    if (md == NULL ||
        (nid != NID_sha1 && nid != NID_sha256 && nid != NID_sha384 && nid != NID_sha512)) {
        return 2;
    }
    for (size_t i = 0; i < 2; i++) {
        OCSP_CERTID *theirs = OCSP_cert_to_id(md, NULL, cas[i].cert);
        FUZZ_CHECK(theirs != NULL);
        int cmp = OCSP_id_issuer_cmp(theirs, id);
        OCSP_CERTID_free(theirs);
        if (cmp == 0) {
            return i;
        }
    }
    return 2;
}

/* The made-up status of a CertID of the signer, as the responder should have asked for it. */
static void expected(OCSP_CERTID *id, kms_pki_ocsp_status *st, bool *fails)
{
    ASN1_INTEGER *sn = NULL;
    *fails = false;
    st->status = V_OCSP_CERTSTATUS_UNKNOWN;
    FUZZ_CHECK(OCSP_id_get0_info(NULL, NULL, NULL, &sn, id) == 1);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    FUZZ_CHECK(bn != NULL);
    if (!BN_is_negative(bn) && !BN_is_zero(bn) && BN_num_bytes(bn) <= 20) {
        char *hex = BN_bn2hex(bn);
        FUZZ_CHECK(hex != NULL);
        for (char *h = hex; *h != '\0'; h++) {
            *h = (char)(*h >= 'A' && *h <= 'F' ? *h - 'A' + 'a' : *h);
        }
        *fails = made_up(hex, st) != 0;
        OPENSSL_free(hex);
    }
    BN_free(bn);
}

static void check_single(OCSP_BASICRESP *bs, int i, OCSP_CERTID *asked, size_t signer, bool *fails)
{
    kms_pki_ocsp_status want = {V_OCSP_CERTSTATUS_UNKNOWN, 0, OCSP_REVOKED_STATUS_NOSTATUS};
    int reason = -2;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    OCSP_SINGLERESP *single = OCSP_resp_get0(bs, i);
    FUZZ_CHECK(single != NULL);
    FUZZ_CHECK(OCSP_id_cmp(OCSP_SINGLERESP_get0_id(single), asked) == 0);
    *fails = false;
    if (issuer_of(asked) == signer) {
        expected(asked, &want, fails);
    }
    int status = OCSP_single_get0_status(single, &reason, &rev, &thisupd, &nextupd);
    FUZZ_CHECK(status == want.status);
    FUZZ_CHECK(thisupd != NULL && nextupd != NULL);
    FUZZ_CHECK(ASN1_TIME_cmp_time_t(thisupd, NOW) == 0);
    FUZZ_CHECK(ASN1_TIME_cmp_time_t(nextupd, (time_t)(NEXT + (int64_t)signer)) == 0);
    if (status == V_OCSP_CERTSTATUS_REVOKED) {
        FUZZ_CHECK(rev != NULL && ASN1_TIME_cmp_time_t(rev, (time_t)want.revoked_at) == 0);
        FUZZ_CHECK(reason == want.reason);
    }
}

static void check_successful(const uint8_t *data, size_t size, const kms_pki_ocsp_answer *a)
{
    const uint8_t *p = data;
    OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)size);
    FUZZ_CHECK(req != NULL && p == data + size && a->basic != NULL && a->signer < 2);
    int count = OCSP_request_onereq_count(req);
    FUZZ_CHECK(count >= 1 && count <= KMS_PKI_OCSP_MAX_IDS);
    FUZZ_CHECK(OCSP_resp_count(a->basic) == count);
    /* The signer is the CA of the first CertID that names one. */
    size_t first = 2;
    for (int i = 0; i < count && first == 2; i++) {
        first = issuer_of(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i)));
    }
    FUZZ_CHECK(first == a->signer);
    for (int i = 0; i < count; i++) {
        bool fails = false;
        check_single(a->basic, i, OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i)), a->signer,
                     &fails);
        FUZZ_CHECK(!fails); /* a failed lookup makes no successful answer */
    }
    /* 1: the same nonce in both; 2: none in either. */
    int nonce = OCSP_check_nonce(req, a->basic);
    FUZZ_CHECK(nonce == 1 || nonce == 2);
    OCSP_REQUEST_free(req);
}

/* An internalError answer: some CertID of the signer had its lookup fail. */
static void check_internal_error(const uint8_t *data, size_t size)
{
    const uint8_t *p = data;
    OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)size);
    bool any = false;
    size_t signer = 2;
    FUZZ_CHECK(req != NULL);
    for (int i = 0; i < OCSP_request_onereq_count(req); i++) {
        OCSP_CERTID *id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
        size_t ca = issuer_of(id);
        signer = signer == 2 ? ca : signer;
        if (ca == signer && ca < 2) {
            kms_pki_ocsp_status st;
            bool fails = false;
            expected(id, &st, &fails);
            any = any || fails;
        }
    }
    FUZZ_CHECK(any);
    OCSP_REQUEST_free(req);
}

/* The answer encodes as an OCSPResponse of its status (signed by the stand-in key). */
static void check_encoding(kms_pki_ocsp_answer *a)
{
    uint8_t *der = NULL;
    size_t len = 0;
    if (a->response_status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        FUZZ_CHECK(OCSP_basic_sign(a->basic, signing_cert, signing_key, EVP_sha256(), NULL,
                                   OCSP_NOCERTS | OCSP_RESPID_KEY) == 1);
    }
    FUZZ_CHECK(kms_pki_ocsp_response_der(a->response_status, a->basic, &der, &len) == 0);
    const uint8_t *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    FUZZ_CHECK(resp != NULL && p == der + len);
    FUZZ_CHECK(OCSP_response_status(resp) == a->response_status);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
    FUZZ_CHECK((bs != NULL) == (a->response_status == OCSP_RESPONSE_STATUS_SUCCESSFUL));
    FUZZ_CHECK(bs == NULL || OCSP_resp_count(bs) == OCSP_resp_count(a->basic));
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kms_pki_ocsp_answer a;
    if (kms_pki_ocsp_answer_make(data, size, cas, 2, &source, NOW, &a) != 0) {
        FUZZ_CHECK(kms_last_error() == KMS_ERR_INTERNAL && a.basic == NULL);
        return 0;
    }
    switch (a.response_status) {
    case OCSP_RESPONSE_STATUS_SUCCESSFUL:
        check_successful(data, size, &a);
        break;
    case OCSP_RESPONSE_STATUS_INTERNALERROR:
        FUZZ_CHECK(a.basic == NULL);
        check_internal_error(data, size);
        break;
    case OCSP_RESPONSE_STATUS_MALFORMEDREQUEST:
    case OCSP_RESPONSE_STATUS_UNAUTHORIZED:
        FUZZ_CHECK(a.basic == NULL);
        break;
    default:
        FUZZ_CHECK(a.response_status == OCSP_RESPONSE_STATUS_SUCCESSFUL); /* no other status */
    }
    check_encoding(&a);
    kms_pki_ocsp_answer_clean_up(&a);
    kms_error_clear();
    return 0;
}
