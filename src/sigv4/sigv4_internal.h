/* Shared by the SigV4 files: a growing string and the request's helpers. */
#ifndef KMS_SIGV4_INTERNAL_H
#define KMS_SIGV4_INTERNAL_H

#include "sigv4/sigv4.h"

typedef struct kms_sigv4_buf {
    char *data; /* NUL-terminated once anything was added; free() it */
    size_t len;
    size_t cap;
} kms_sigv4_buf;

int kms_sigv4_buf_add(kms_sigv4_buf *b, const char *s, size_t n);
int kms_sigv4_buf_str(kms_sigv4_buf *b, const char *s);

/* The value of the first header named name (len bytes, any case), or NULL. */
const char *kms_sigv4_header_find(const kms_sigv4_request *req, const char *name, size_t len);

/* The payload's SHA-256 as 64 lowercase hex digits: req->payload_sha256_hex checked, or the
 * body hashed. */
int kms_sigv4_payload_hash(const kms_sigv4_request *req, char out[65]);

#endif
