/* Reading AWS-shaped JSON requests and writing responses. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "service/request.h"
#include "util/secmem.h"
#include "util/util.h"

int kms_request_string(json_t *req, const char *name, bool required, size_t min, size_t max,
                       const char **out)
{
    json_t *v = json_object_get(req, name);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        KMS_ENSURE(!required, KMS_ERR_VALIDATION,
                   "1 validation error detected: Value null at "
                   "'%c%s' failed to satisfy constraint: Member must not be null",
                   name[0] | 0x20, name + 1);
        return 0;
    }
    KMS_ENSURE(json_is_string(v), KMS_ERR_VALIDATION, "%s must be a string", name);
    size_t n = json_string_length(v);
    KMS_ENSURE(n >= min && n <= max, KMS_ERR_VALIDATION,
               "1 validation error detected: Value at '%c%s' failed to satisfy constraint: Member "
               "must have length between %zu and %zu",
               name[0] | 0x20, name + 1, min, max);
    KMS_ENSURE(strlen(json_string_value(v)) == n, KMS_ERR_VALIDATION,
               "%s must not contain NUL characters", name);
    *out = json_string_value(v);
    return 0;
}

int kms_request_int(json_t *req, const char *name, bool required, long long min, long long max,
                    long long dflt, long long *out)
{
    json_t *v = json_object_get(req, name);
    *out = dflt;
    if (v == NULL || json_is_null(v)) {
        KMS_ENSURE(!required, KMS_ERR_VALIDATION, "%s is required", name);
        return 0;
    }
    KMS_ENSURE(json_is_integer(v), KMS_ERR_VALIDATION, "%s must be an integer", name);
    long long x = json_integer_value(v);
    KMS_ENSURE(x >= min && x <= max, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%lld' at '%c%s' failed to satisfy "
               "constraint: Member must have value between %lld and %lld",
               x, name[0] | 0x20, name + 1, min, max);
    *out = x;
    return 0;
}

int kms_request_blob(json_t *req, const char *name, bool required, size_t min, size_t max,
                     bool secure, uint8_t **out, size_t *n)
{
    const char *s = NULL;
    *out = NULL;
    *n = 0;
    KMS_GUARD(kms_request_string(req, name, required, 0, SIZE_MAX, &s));
    if (s == NULL) {
        return 0;
    }
    /* base64 of max bytes is at most 4*ceil(max/3) characters: refuse longer text before
     * decoding it, with the limit in bytes as for a decoded value. */
    bool too_long = strlen(s) > (max + 2) / 3 * 4;
    if (!too_long) {
        KMS_GUARD(kms_base64_decode(s, name, secure, out, n));
    }
    if (too_long || *n < min || *n > max) {
        if (secure) {
            kms_secret_free(*out, *n);
        } else {
            free(*out);
        }
        *out = NULL;
        return kms_raise(KMS_ERR_VALIDATION,
                         "1 validation error detected: Value at '%c%s' failed to satisfy "
                         "constraint: Member must have length between %zu and %zu bytes",
                         name[0] | 0x20, name + 1, min, max);
    }
    return 0;
}

int kms_request_context(json_t *req, const char *name, kms_encryption_context *ctx)
{
    json_t *v = json_object_get(req, name);
    memset(ctx, 0, sizeof *ctx);
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    KMS_ENSURE(json_is_object(v), KMS_ERR_VALIDATION, "%s must be a map of strings to strings",
               name);
    size_t n = json_object_size(v);
    if (n == 0) {
        return 0;
    }
    kms_context_entry *e = calloc(n, sizeof *e);
    KMS_ENSURE(e != NULL, KMS_ERR_INTERNAL, "out of memory");
    const char *key;
    json_t *val;
    size_t i = 0;
    json_object_foreach(v, key, val)
    {
        if (!json_is_string(val)) {
            free(e);
            return kms_raise(KMS_ERR_VALIDATION, "%s value of '%s' must be a string", name, key);
        }
        e[i].key = key;
        e[i].value = json_string_value(val);
        i++;
    }
    ctx->entries = e;
    ctx->count = n;
    return 0;
}

void kms_request_context_free(kms_encryption_context *ctx)
{
    free((void *)ctx->entries);
    memset(ctx, 0, sizeof *ctx);
}

int kms_request_json_set_blob(json_t *obj, const char *name, const uint8_t *p, size_t n)
{
    char *s = kms_base64_encode(p, n);
    if (s == NULL) {
        return -1;
    }
    json_t *v = json_string(s);
    sodium_memzero(s, strlen(s)); /* the value may be a plaintext or data key */
    free(s);
    KMS_ENSURE(v != NULL && json_object_set_new(obj, name, v) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

void kms_buffer_free(uint8_t *buf)
{
    free(buf);
}

void kms_secret_free(uint8_t *buf, size_t len)
{
    (void)len;
    if (buf != NULL) {
        kms_secure_free(buf); /* wipes before freeing */
    }
}

void kms_string_free(char *s)
{
    /* Responses may hold plaintexts, data keys and secret access keys. */
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
    }
    free(s);
}

void kms_request_json_wipe(json_t *v)
{
    const char *k;
    json_t *e;
    size_t i;
    if (json_is_string(v)) {
        /* jansson owns the buffer; wiping it in place before the free is all we can do. */
        sodium_memzero((char *)json_string_value(v), json_string_length(v));
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, e)
        {
            kms_request_json_wipe(e);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e)
        {
            kms_request_json_wipe(e);
        }
    }
}
