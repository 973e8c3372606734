/* libkms for servers: what a network front end (kmsd) needs beyond kms.h. A server opens the home
 * with kms_client_open (its own profile, used only for the server's own work such as its
 * certificate) and hands every request it receives to kms_call_network, which authenticates the
 * request's SigV4 signature against IAM and runs it as that caller through the same dispatcher
 * and gate as kms_call. The server never sees a secret access key.
 *
 * Conventions are those of kms.h: 0 / -1 with a thread-local error (kms_last_error). */
#ifndef KMS_SERVER_H
#define KMS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/kms.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One header as received: name in any case, value as received. A header received several times
 * appears several times. */
typedef struct kms_http_header {
    const char *name;
    const char *value;
} kms_http_header;

/* Called after the request's signature was verified and before the gate: 0 admits the request,
 * nonzero refuses it with ThrottlingException "Rate exceeded" (recorded like any refusal). */
typedef int (*kms_admit_fn)(void *arg, const char *account_id, const char *access_key_id,
                            const char *operation);

typedef struct kms_network_request {
    /* The HTTP request exactly as received: what SigV4 signed. */
    const char *method;             /* "POST" */
    const char *path;               /* without the query; "/" at least */
    const char *query;              /* after '?', or NULL */
    const kms_http_header *headers; /* every header received, Authorization among them */
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
    /* What the front end decoded from it: kms_call's operation name ("Encrypt",
     * "acm:RequestCertificate", "acm-pca:IssueCertificate", "cloudtrail:LookupEvents",
     * "sts:AssumeRole") and the request in kms_call's JSON shape (for AWS JSON 1.1 the body
     * itself; for the query protocol the form turned into JSON). The SigV4 credential scope must
     * name the home's region and the operation's service (kms, acm, acm-pca, cloudtrail, sts,
     * iam, organizations), else InvalidSignatureException as AWS words it. */
    const char *operation;
    const char *request_json;
    /* The connection, for the request context (aws:SourceIp, aws:UserAgent from the
     * User-Agent header, aws:SecureTransport) and the audit record (sourceIPAddress, userAgent,
     * tlsDetails). tls_version NULL: plain HTTP (aws:SecureTransport false). */
    const char *source_ip;    /* "192.0.2.1" or "2001:db8::1" */
    const char *tls_version;  /* "TLSv1.3" */
    const char *cipher_suite; /* "TLS_AES_128_GCM_SHA256" */
    kms_admit_fn admit;       /* NULL: every authenticated request is admitted */
    void *admit_arg;
} kms_network_request;

typedef struct kms_network_result {
    /* x-amzn-RequestId: the audit record's requestID; a fresh UUID when no record was written. */
    char request_id[37];
    /* The authenticated caller ("" when authentication failed). */
    char account_id[13];
    char access_key_id[32];
    /* A record was written for this request (an unauthenticated refusal mostly is not). */
    bool recorded;
} kms_network_result;

/* Authenticates req (SigV4: Authorization header, x-amz-date, x-amz-content-sha256 when present,
 * X-Amz-Security-Token for sessions, 5 minutes of skew) and runs req->operation as the caller.
 * Errors as AWS answers them: MissingAuthenticationTokenException (no Authorization),
 * IncompleteSignatureException (malformed Authorization), UnrecognizedClientException (unknown
 * or inactive access key, a session's key without its own token), InvalidSignatureException (wrong
 * signature, "Signature expired", a scope for another region or service), ExpiredTokenException,
 * ThrottlingException (admit refused), then whatever the operation raises. *response_json as
 * kms_call's (free with kms_string_free); *result is always filled. Which refusals are recorded:
 * every request whose access key is known (the record names its owner), at most 10 refused
 * authentications per access key and minute; a request whose key is unknown or whose
 * Authorization cannot be parsed is not recorded (it names no account). */
KMS_API KMS_MUST_CHECK int kms_call_network(kms_client *client, const kms_network_request *req,
                                            char **response_json, kms_network_result *result);

/* The home's region (static storage of the client). */
KMS_API const char *kms_client_region(const kms_client *client);

/* Figures for /metrics and kmsbench (free with kms_string_free), JSON:
 *   {"HsmSessions": {"Open": n, "InUse": n, "Max": n},
 *    "AuditFlushes": {"Count": n, "Records": n, "SyncNanoseconds": n,
 *                     "Buckets": [[le, count]...]},  (records per flush; time in fdatasync)
 *    "WaitNanoseconds": {"AuditAppend": n, "AuditLock": n, "Database": n, "HsmSession": n}}
 * WaitNanoseconds sums, since the client opened, the time callers spent: from handing their
 * audit record over to its being durable (the group commit's wait and flush), waiting for the
 * trail's LOCK, for a database connection or write lock, and for an HSM session. */
KMS_API KMS_MUST_CHECK int kms_client_stats(kms_client *client, char **stats_json);

/* Revocation for relying parties, unauthenticated and not audited (as a CRL or OCSP fetch is not
 * in AWS). The published CRL of CA ca_id (DER, free with kms_buffer_free): NotFoundException
 * when the CA has none. */
KMS_API KMS_MUST_CHECK int kms_crl_get(kms_client *client, const char *ca_id, uint8_t **der,
                                       size_t *der_len);
/* An OCSP responder (RFC 6960): request_der (as POSTed, or base64-decoded from a GET) in, a
 * DER OCSPResponse out (free with kms_buffer_free), signed in the HSM by the issuing CA's key.
 * Every certificate of the request gets a SingleResponse (good, revoked with its time and
 * reason, or unknown) from the manager's records, and a nonce extension is echoed. A malformed
 * request gets a "malformedRequest" response, not an error; -1 only when no response at all can
 * be made. */
KMS_API KMS_MUST_CHECK int kms_ocsp_respond(kms_client *client, const uint8_t *request_der,
                                            size_t request_len, uint8_t **response_der,
                                            size_t *response_len);

#ifdef __cplusplus
}
#endif

#endif /* KMS_SERVER_H */
