#include "util/buf.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/secmem.h"

void kms_buf_init(kms_buf *b, bool secure)
{
    memset(b, 0, sizeof *b);
    b->secure = secure;
}

static void buf_release(uint8_t *p, size_t cap, bool secure)
{
    if (p == NULL) {
        return;
    }
    if (secure) {
        kms_secure_free(p); /* wipes */
    } else {
        sodium_memzero(p, cap);
        free(p);
    }
}

void kms_buf_clean_up(kms_buf *b)
{
    buf_release(b->data, b->cap, b->secure);
    bool secure = b->secure;
    memset(b, 0, sizeof *b);
    b->secure = secure;
}

int kms_buf_reserve(kms_buf *b, size_t extra)
{
    KMS_ENSURE(extra <= SIZE_MAX - b->len, KMS_ERR_INTERNAL, "buffer size overflow");
    size_t need = b->len + extra;
    if (need <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        KMS_ENSURE(cap <= SIZE_MAX / 2, KMS_ERR_INTERNAL, "buffer size overflow");
        cap *= 2;
    }
    uint8_t *p = b->secure ? kms_secure_alloc(cap) : malloc(cap);
    KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory (%zu bytes)", cap);
    if (b->len > 0) {
        memcpy(p, b->data, b->len);
    }
    buf_release(b->data, b->cap, b->secure);
    b->data = p;
    b->cap = cap;
    return 0;
}

int kms_buf_append(kms_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    KMS_GUARD(kms_buf_reserve(b, n));
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int kms_buf_append_u8(kms_buf *b, uint8_t v)
{
    return kms_buf_append(b, &v, 1);
}

int kms_buf_append_be16(kms_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return kms_buf_append(b, x, sizeof x);
}

int kms_buf_append_be32(kms_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return kms_buf_append(b, x, sizeof x);
}

int kms_buf_append_be16_bytes(kms_buf *b, const void *p, size_t n)
{
    KMS_ENSURE(n <= UINT16_MAX, KMS_ERR_VALIDATION,
               "a length-prefixed field of %zu bytes does not fit its 16-bit length", n);
    KMS_GUARD(kms_buf_reserve(b, 2 + n));
    KMS_GUARD(kms_buf_append_be16(b, (uint16_t)n));
    KMS_GUARD(kms_buf_append(b, p, n));
    return 0;
}

uint8_t *kms_buf_detach(kms_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len != NULL) {
        *len = b->len;
    }
    bool secure = b->secure;
    memset(b, 0, sizeof *b);
    b->secure = secure;
    return p;
}

void kms_reader_init(kms_reader *r, const uint8_t *p, size_t n)
{
    r->p = p;
    r->left = p ? n : 0;
}

int kms_reader_bytes(kms_reader *r, size_t n, const uint8_t **p)
{
    *p = NULL;
    if (n > r->left) {
        return -1;
    }
    *p = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

int kms_reader_copy(kms_reader *r, void *dst, size_t n)
{
    const uint8_t *p;
    if (kms_reader_bytes(r, n, &p) != 0) {
        if (n > 0) {
            memset(dst, 0, n);
        }
        return -1;
    }
    if (n > 0) {
        memcpy(dst, p, n);
    }
    return 0;
}

int kms_reader_u8(kms_reader *r, uint8_t *v)
{
    return kms_reader_copy(r, v, 1);
}

int kms_reader_be16(kms_reader *r, uint16_t *v)
{
    uint8_t x[2];
    *v = 0;
    if (kms_reader_copy(r, x, 2) != 0) {
        return -1;
    }
    *v = (uint16_t)((x[0] << 8) | x[1]);
    return 0;
}

int kms_reader_be32(kms_reader *r, uint32_t *v)
{
    uint8_t x[4];
    *v = 0;
    if (kms_reader_copy(r, x, 4) != 0) {
        return -1;
    }
    *v = ((uint32_t)x[0] << 24) | ((uint32_t)x[1] << 16) | ((uint32_t)x[2] << 8) | x[3];
    return 0;
}

int kms_reader_be16_bytes(kms_reader *r, const uint8_t **p, size_t *len)
{
    *p = NULL;
    *len = 0;
    kms_reader saved = *r;
    uint16_t n = 0;
    if (kms_reader_be16(r, &n) != 0 || kms_reader_bytes(r, n, p) != 0) {
        *r = saved; /* all or nothing */
        return -1;
    }
    *len = n;
    return 0;
}
