/* The OCSP responder of the private CAs (RFC 6960), for relying parties: unauthenticated and not
 * audited, as kms_ocsp_respond (include/kms/server.h) promises. pki_ocsp_answer.c turns a request
 * into an unsigned BasicOCSPResponse from the CAs and a status lookup it is given (no database,
 * no HSM: what tests/fuzz/fuzz_ocsp.c runs); pki_ocsp.c finds the CAs and the statuses in the
 * manager's records and has the issuing CA's HSM key sign the response (pki_sign.c).
 *
 * Where relying parties find it. A CA with OcspConfiguration {"Enabled": true, "OcspCustomCname":
 * "HOST[:PORT]"} writes into every certificate it issues from then on an Authority Information
 * Access extension (RFC 5280 4.2.2.1) naming
 *     OCSP - URI:http://HOST[:PORT]/ocsp
 * and kmsd serves, at that host, over plain HTTP (RFC 6960 appendix A):
 *     POST /ocsp              body: the DER OCSPRequest (application/ocsp-request)
 *     GET  /ocsp/BASE64       the DER OCSPRequest, base64 then URL-encoded
 * and, beside it, each CA's CRL where CrlConfiguration's CustomCname names it (pki_crl.c):
 *     GET  /crl/CA_ID.crl     the DER CRL published under HOME/crl (kms_crl_get).
 * AWS writes its own responder's host with no path; "/ocsp" is ours, so that one host serves
 * both paths. Without OcspCustomCname the responder still answers for the CA, but its
 * certificates name no responder (this home has no public name to put there).
 *
 * Choices RFC 6960 leaves open, as made here:
 * - Every CertID of a request gets a SingleResponse, in the request's order, each echoing the
 *   request's CertID (its hash algorithm included).
 * - One response has one signer (4.2.1): the CA that issued the first CertID of the request that
 *   names a CA answering here signs it; the CertIDs of any other issuer get "unknown" (2.2: "the
 *   request indicates an unrecognized issuer that is not served by this responder"). A request
 *   whose CertIDs name no such CA at all gets "unauthorized" (2.3).
 * - A CA answers here when OCSP is enabled in its RevocationConfiguration, it is ACTIVE or
 *   DISABLED (a disabled CA issues nothing but still revokes, and still publishes CRLs) and its
 *   certificate is valid now. A CA that is DELETED (restorable, or purged), waiting for its
 *   certificate, expired or without OCSP enabled serves no answer: its certificates are
 *   "unknown" in a request signed by another CA, "unauthorized" alone.
 * - CertIDs hashed with SHA-1, SHA-256, SHA-384 or SHA-512 are matched against each CA's
 *   issuerNameHash and issuerKeyHash; another hash algorithm names no CA.
 * - A serial the CA never issued is "unknown" (not the "revoked" 2.2 allows for it); a revoked
 *   one is "revoked" with its revocationTime and reason (none for UNSPECIFIED, as in the CRL).
 * - thisUpdate now; nextUpdate the nextUpdate of the CA's published CRL when it is later than
 *   now, else now + 1 day. producedAt now. ResponderID by key (the SHA-1 of the CA's public
 *   key); no certificates (the CA signs its own responses, 4.2.2.2).
 * - The nonce extension (RFC 8954) is echoed; a nonce of 0 or more than 32 octets, a request of
 *   more than KMS_PKI_OCSP_MAX_IDS CertIDs or KMS_PKI_OCSP_REQUEST_MAX octets, trailing bytes,
 *   or a critical extension other than the nonce get "malformedRequest" (not "tryLater": asking
 *   again would not help). A request signature is not checked (none is required).
 * - The records or the HSM failing: "internalError". */
#ifndef KMS_PKI_PKI_OCSP_H
#define KMS_PKI_PKI_OCSP_H

#include <openssl/ocsp.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/keystore.h"

/* The most CertIDs one request may name, and the largest request read. */
#define KMS_PKI_OCSP_MAX_IDS 64
#define KMS_PKI_OCSP_REQUEST_MAX 65536
/* nextUpdate when the CA has no published CRL that is still current. */
#define KMS_PKI_OCSP_NEXT_UPDATE_SECONDS 86400

/* A CA that may answer. */
typedef struct kms_pki_ocsp_ca {
    X509 *cert;
} kms_pki_ocsp_ca;

/* A certificate's status in the records. */
typedef struct kms_pki_ocsp_status {
    int status;         /* V_OCSP_CERTSTATUS_GOOD, _REVOKED or _UNKNOWN */
    int64_t revoked_at; /* REVOKED: revocationTime */
    int reason;         /* REVOKED: the CRLReason code, or OCSP_REVOKED_STATUS_NOSTATUS */
} kms_pki_ocsp_status;

/* The status of serial (lower-case hex, no leading zeros: as the records hold it) of CA number
 * ca; 0, or -1 with an error raised (the response becomes "internalError"). */
typedef int (*kms_pki_ocsp_lookup_fn)(void *arg, size_t ca, const char *serial,
                                      kms_pki_ocsp_status *out);
/* The nextUpdate of CA number ca's answers (asked of the signer only, once); 0 or -1 as lookup. */
typedef int (*kms_pki_ocsp_next_update_fn)(void *arg, size_t ca, int64_t *out);

/* Where the answers come from: the records, or what a test makes up. */
typedef struct kms_pki_ocsp_source {
    kms_pki_ocsp_lookup_fn lookup;
    kms_pki_ocsp_next_update_fn next_update;
    void *arg;
} kms_pki_ocsp_source;

typedef struct kms_pki_ocsp_answer {
    int response_status;   /* OCSP_RESPONSE_STATUS_* */
    size_t signer;         /* SUCCESSFUL: the CA that must sign (an index into cas) */
    OCSP_BASICRESP *basic; /* SUCCESSFUL: the SingleResponses and the nonce, not signed yet */
} kms_pki_ocsp_answer;

/* The answer to the DER request of len bytes from the n CAs cas and src (see the header
 * comment): 0 with out->response_status set (and out->basic for SUCCESSFUL, owned by the
 * caller), or -1 when memory ran out. A failing lookup or next_update: INTERNALERROR. */
int kms_pki_ocsp_answer_make(const uint8_t *der, size_t len, const kms_pki_ocsp_ca *cas, size_t n,
                             const kms_pki_ocsp_source *src, int64_t now, kms_pki_ocsp_answer *out)
    __attribute__((warn_unused_result));
void kms_pki_ocsp_answer_clean_up(kms_pki_ocsp_answer *a);

/* A DER OCSPResponse of status (not SUCCESSFUL: no responseBytes) or of the signed basic; *der
 * malloc'd. */
int kms_pki_ocsp_response_der(int status, OCSP_BASICRESP *basic, uint8_t **der, size_t *der_len)
    __attribute__((warn_unused_result));

/* The responder (pki_ocsp.c): the request answered from the records of every account's CAs of
 * the home, signed in the HSM. -1 only when no response at all can be made. */
int kms_pki_ocsp_respond(const kms_keystore *ks, const char *home, const uint8_t *request,
                         size_t request_len, int64_t now, uint8_t **response, size_t *response_len)
    __attribute__((warn_unused_result));

#endif
