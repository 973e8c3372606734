/* AWS Signature Version 4 (Authorization header form), verifier side. Pure computation: no I/O,
 * no HTTP library; kmsd hands in the request it parsed. The secret access key stays in the
 * caller's memory; the derived signing key is wiped before return.
 *
 * Errors (kms_raise): a malformed or incomplete Authorization header is
 * KMS_ERR_INCOMPLETE_SIGNATURE (IncompleteSignatureException); a signature that does not match,
 * a scope for another date, region or service, a bad or skewed x-amz-date ("Signature expired:
 * ..." / "Signature not yet current: ...", worded as AWS words them) are KMS_ERR_BAD_SIGNATURE
 * (InvalidSignatureException). Looking the access key up (UnrecognizedClientException) is the
 * caller's job, between kms_sigv4_parse_authorization and kms_sigv4_verify. */
#ifndef KMS_SIGV4_H
#define KMS_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KMS_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define KMS_SIGV4_AUTH_MAX 4096     /* longest Authorization header value accepted */
#define KMS_SIGV4_AKID_MAX 128      /* longest access key id */
#define KMS_SIGV4_SCOPE_PART_MAX 64 /* longest region or service name */
#define KMS_SIGV4_SIGNED_HEADERS_MAX 2048
#define KMS_SIGV4_MAX_SKEW 300 /* seconds: AWS's 5 minutes */

/* One header as received: name in any case, value untrimmed (a folded value may hold newlines).
 * A name received several times appears several times, in the order received. */
typedef struct kms_sigv4_header {
    const char *name;
    const char *value;
} kms_sigv4_header;

typedef struct kms_sigv4_request {
    const char *method;              /* "GET", "POST", ... */
    const char *path;                /* raw path as received, without the query ("/" at least) */
    const char *query;               /* raw query string after '?', or NULL / "" for none */
    const kms_sigv4_header *headers; /* all headers received (Authorization may be among them) */
    size_t n_headers;
    const char *payload_sha256_hex; /* lowercase hex SHA-256 of the body, or NULL: hash body */
    const uint8_t *body;
    size_t body_len;
    int normalize_path; /* 1 (every service but S3): resolve ".", ".." and repeated slashes */
} kms_sigv4_request;

/* The parts of a parsed Authorization header, each NUL-terminated. */
typedef struct kms_sigv4_auth {
    char access_key_id[KMS_SIGV4_AKID_MAX + 1];
    char date[9]; /* YYYYMMDD */
    char region[KMS_SIGV4_SCOPE_PART_MAX + 1];
    char service[KMS_SIGV4_SCOPE_PART_MAX + 1];
    char signed_headers[KMS_SIGV4_SIGNED_HEADERS_MAX + 1]; /* "host;x-amz-date;..." */
    char signature[65];                                    /* 64 lowercase hex digits */
} kms_sigv4_auth;

/* Parses "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b;c, Signature=HEX". Strict: each part exactly once, nothing else, no empty or
 * oversized value, a valid date, SignedHeaders lowercase, strictly sorted, without duplicates and
 * naming host and x-amz-date, Signature 64 lowercase hex digits. *out is cleared on failure. */
int kms_sigv4_parse_authorization(const char *value, kms_sigv4_auth *out);

/* The canonical request (malloc'd into *out) over the headers named by signed_headers (as
 * parsed: ';'-separated lowercase names). A signed header the request lacks is refused
 * (KMS_ERR_BAD_SIGNATURE); an unusable payload hash too, and a query holding a raw '+' or a '%'
 * that is not a %XX escape (ambiguous: see sigv4_canonical.c). The caller must decode the query
 * it acts on as the canonical form does: %XX escapes only. */
int kms_sigv4_canonical_request(const kms_sigv4_request *req, const char *signed_headers,
                                char **out);

/* "AWS4-HMAC-SHA256\n" amz_date "\n" scope "\n" hex(SHA-256(canonical_request)), malloc'd;
 * scope is "DATE/REGION/SERVICE/aws4_request". */
int kms_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canonical_request,
                             char **out);

/* HMAC-SHA-256 chain: kSecret = "AWS4" secret, then date, region, service, "aws4_request".
 * out is wiped on failure; the caller wipes it (sodium_memzero) after use. */
int kms_sigv4_signing_key(const char *secret, const char *date, const char *region,
                          const char *service, uint8_t out[32]);

/* The hex signature of string_to_sign under secret and the scope's parts (out: 65 bytes). */
int kms_sigv4_sign(const char *secret, const char *date, const char *region, const char *service,
                   const char *string_to_sign, char out[65]);

/* Verifies req against auth (from kms_sigv4_parse_authorization) and secret: x-amz-date well
 * formed and within 5 minutes of now, the credential scope's date equal to x-amz-date's, its
 * region and service the expected ones, an x-amz-content-sha256 header (if any) equal to the
 * payload's hash, and the signature (compared in constant time). 0 when all hold. Also refused:
 * an x-amz-* header (but X-Amz-Security-Token and x-amz-content-sha256) or Content-Type present
 * and not signed, a one-value header (Host, X-Amz-Date, X-Amz-Target, Content-Type, ...)
 * repeated, an impossible date. expected_region and expected_service are required (NULL is
 * refused, never "any"). Replays within the 5 minutes are accepted, as AWS accepts them. */
int kms_sigv4_verify(const kms_sigv4_request *req, const kms_sigv4_auth *auth, const char *secret,
                     time_t now, const char *expected_region, const char *expected_service);

/* The same checks, with the signing key (kms_sigv4_signing_key of the secret and auth's date,
 * region and service) given instead of the secret: for a caller that caches derived keys (never
 * the secret), as AWS's services do. The caller must have derived signing_key for exactly
 * auth->access_key_id, auth->date, auth->region and auth->service. kms_sigv4_verify derives the
 * key and calls this. */
int kms_sigv4_verify_with_key(const kms_sigv4_request *req, const kms_sigv4_auth *auth,
                              const uint8_t signing_key[32], time_t now,
                              const char *expected_region, const char *expected_service);

#endif
