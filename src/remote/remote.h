/* The remote client (kms_client_open_remote): the service's API over HTTPS to a KMS server
 * (kmsd), in AWS's own wire protocol (AWS JSON 1.1, SigV4), with libcurl. Private to src/: the
 * service forwards kms_call and the typed calls here when the client is remote.
 *
 * A struct kms_remote is thread-safe: requests take a curl easy handle from a small pool (one
 * per thread in flight, each keeping its connection alive) and put it back; the retry quota is
 * shared under a lock. Credentials live in locked memory and are wiped on free. */
#ifndef KMS_REMOTE_REMOTE_H
#define KMS_REMOTE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/kms.h"
#include "sigv4/sigv4.h"

struct kms_remote;

/* Opens a remote connection (no request is sent unless the region has to be asked of the
 * server's GET /health). NULL with the error raised: ValidationException for a bad endpoint_url
 * or ca_bundle, UnrecognizedClientException when no credentials are found, KMSNetworkException
 * when /health cannot be reached. */
struct kms_remote *kms_remote_open(const kms_remote_options *opts);
void kms_remote_free(struct kms_remote *r);
/* The SigV4 scope's region (static storage of r). */
const char *kms_remote_region(const struct kms_remote *r);

/* kms_call over the wire: operation as kms_call names it ("Encrypt", "acm:ListCertificates",
 * "acm-pca:IssueCertificate", "cloudtrail:LookupEvents", "sts:GetCallerIdentity"). *response_json
 * malloc'd (free with kms_string_free). */
int kms_remote_call(struct kms_remote *r, const char *operation, const char *request_json,
                    char **response_json) __attribute__((warn_unused_result));

/* 0 when r is NULL (a local client); else UnsupportedOperationException saying that `what`
 * needs the home and runs on the server's machine. One line in each function that reads the
 * home itself (validate-logs, the audit anchor, the scheduler). */
int kms_remote_local_only(const struct kms_remote *r, const char *what)
    __attribute__((warn_unused_result));

/* ---- The typed calls (remote_typed.c), as include/kms/kms.h has them ---------------------- */
int kms_remote_encrypt(struct kms_remote *r, const char *key_id, const uint8_t *plaintext,
                       size_t plaintext_len, const kms_encryption_context *context, uint8_t **blob,
                       size_t *blob_len) __attribute__((warn_unused_result));
int kms_remote_decrypt(struct kms_remote *r, const char *key_id, const uint8_t *blob,
                       size_t blob_len, const kms_encryption_context *context, uint8_t **plaintext,
                       size_t *plaintext_len, char **key_arn) __attribute__((warn_unused_result));
int kms_remote_generate_data_key(struct kms_remote *r, const char *key_id, size_t key_bytes,
                                 const kms_encryption_context *context, uint8_t **plaintext,
                                 uint8_t **blob, size_t *blob_len)
    __attribute__((warn_unused_result));
int kms_remote_sign(struct kms_remote *r, const char *key_id, const uint8_t *message,
                    size_t message_len, const char *message_type, const char *algorithm,
                    uint8_t **signature, size_t *signature_len) __attribute__((warn_unused_result));

/* ---- SigV4 on the client side (remote_sign.c) --------------------------------------------- */
/* The Authorization header value (malloc'd) for req signed with every header it carries (their
 * lowercase names, sorted and without repeats, are SignedHeaders; host and x-amz-date must be
 * among them), at amz_date ("YYYYMMDDTHHMMSSZ"), for the scope's region and service. The
 * payload is hashed from req->body unless req->payload_sha256_hex is given. */
int kms_remote_authorization(const kms_sigv4_request *req, const char *access_key_id,
                             const char *secret, const char *amz_date, const char *region,
                             const char *service, char **authorization)
    __attribute__((warn_unused_result));
/* The AWS JSON 1.1 target and SigV4 service of a kms_call operation name: "Encrypt" ->
 * "TrentService.Encrypt" / "kms", "acm:X" -> "CertificateManager.X" / "acm", "acm-pca:X" ->
 * "ACMPrivateCA.X" / "acm-pca", "cloudtrail:X" ->
 * "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.X" / "cloudtrail". -1 with
 * UnsupportedOperationException for the services that speak the query protocol (iam:, sts:,
 * organizations:) and UnknownOperationException for a name of no service. */
int kms_remote_target(const char *operation, char *target, size_t target_size, char *service,
                      size_t service_size) __attribute__((warn_unused_result));

/* ---- The AWS SDKs' "standard" retry mode (remote_retry.c): pure functions ------------------
 * (AWS SDKs and Tools reference guide, "Retry behavior": up to 3 attempts; throttling errors,
 * transient errors (HTTP 500/502/503/504, connection failures, timeouts) retried; exponential
 * backoff with full jitter, min(random * 2^(retry-1), 20) seconds; a retry quota of 500 tokens
 * per client, 5 per retry and 10 per retry after a timeout, refunded on success.) */
typedef enum kms_retry_class {
    KMS_RETRY_NONE = 0,   /* not retried: the caller's error, or a success */
    KMS_RETRY_THROTTLING, /* ThrottlingException and the SDKs' other throttling codes, HTTP 429 */
    KMS_RETRY_TRANSIENT,  /* HTTP 500/502/503/504, a connection refused, reset or cut short */
    KMS_RETRY_TIMEOUT,    /* the attempt timed out */
} kms_retry_class;

/* What went wrong with one attempt. */
typedef enum kms_transport_failure {
    KMS_TRANSPORT_OK = 0,  /* a response was received */
    KMS_TRANSPORT_CONNECT, /* no response: connection refused, reset, closed early */
    KMS_TRANSPORT_TIMEOUT, /* no response in time */
    KMS_TRANSPORT_FATAL,   /* no response, and trying again cannot help (TLS verification) */
} kms_transport_failure;

/* http_status and error_name (the response's __type without any "prefix#"; NULL if none) of a
 * response, or a transport failure. */
kms_retry_class kms_remote_retry_classify(kms_transport_failure failure, long http_status,
                                          const char *error_name);

#define KMS_RETRY_MAX_BACKOFF_MS 20000
#define KMS_RETRY_QUOTA_MAX 500
#define KMS_RETRY_COST 5
#define KMS_RETRY_TIMEOUT_COST 10
#define KMS_RETRY_NO_RETRY_INCREMENT 1

/* The wait before retry number `retry` (1 for the first retry), random01 uniform in [0, 1). */
long kms_remote_retry_backoff_ms(int retry, double random01);

/* Sleeps kms_remote_retry_backoff_ms(retry, a fresh random number). */
void kms_remote_retry_wait(int retry);

typedef struct kms_retry_quota {
    int tokens; /* KMS_RETRY_QUOTA_MAX at first */
} kms_retry_quota;

void kms_remote_retry_quota_init(kms_retry_quota *q);
/* Takes the cost of a retry of class c from q: true and *cost set when the quota had it,
 * false (nothing taken, *cost 0) when it did not: the request then fails with its error. */
bool kms_remote_retry_quota_acquire(kms_retry_quota *q, kms_retry_class c, int *cost);
/* After a success: gives back the cost of the retry that succeeded (cost > 0), or one token
 * for a success at the first attempt (cost 0); never above KMS_RETRY_QUOTA_MAX. */
void kms_remote_retry_quota_release(kms_retry_quota *q, int cost);

#endif
