/* Reading the members of a JSON request and writing binary members of a response
 * (request.c). Private to src/service. */
#ifndef KMS_SERVICE_REQUEST_H
#define KMS_SERVICE_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/kms.h"

/* Request member helpers (ValidationException naming the member). */
int kms_request_string(json_t *req, const char *name, bool required, size_t min, size_t max,
                       const char **out) __attribute__((warn_unused_result));
int kms_request_int(json_t *req, const char *name, bool required, long long min, long long max,
                    long long dflt, long long *out) __attribute__((warn_unused_result));
/* Base64 member decoded into *out (free: secure ? kms_secret_free : free). */
int kms_request_blob(json_t *req, const char *name, bool required, size_t min, size_t max,
                     bool secure, uint8_t **out, size_t *n) __attribute__((warn_unused_result));
/* EncryptionContext-like map of strings; entries borrow from req (free entries only). */
int kms_request_context(json_t *req, const char *name, kms_encryption_context *ctx)
    __attribute__((warn_unused_result));
void kms_request_context_free(kms_encryption_context *ctx);
/* Wipes every string of a JSON value in place (before it is freed). */
void kms_request_json_wipe(json_t *v);
/* Sets member name of obj to base64(p, n). */
int kms_request_json_set_blob(json_t *obj, const char *name, const uint8_t *p, size_t n)
    __attribute__((warn_unused_result));

#endif
