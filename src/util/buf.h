/* Owned growable buffer and borrowed bounds-checked reader (style.md: owned buffer + borrowed
 * cursor). Every binary parse goes through kms_reader; a read past the end fails, never reads. */
#ifndef KMS_UTIL_BUF_H
#define KMS_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kms_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool secure; /* allocated with sodium_malloc, wiped on free */
} kms_buf;

/* _init/_clean_up: caller-owned storage. secure buffers live in locked, guarded memory. */
void kms_buf_init(kms_buf *b, bool secure);
void kms_buf_clean_up(kms_buf *b); /* wipes (always) and frees */
int kms_buf_reserve(kms_buf *b, size_t extra) __attribute__((warn_unused_result));
int kms_buf_append(kms_buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int kms_buf_append_u8(kms_buf *b, uint8_t v) __attribute__((warn_unused_result));
int kms_buf_append_be16(kms_buf *b, uint16_t v) __attribute__((warn_unused_result));
int kms_buf_append_be32(kms_buf *b, uint32_t v) __attribute__((warn_unused_result));
/* A be16 length and then the n bytes (the counterpart of kms_reader_be16_bytes); n above 65535
 * is refused (ValidationException) and nothing is appended. */
int kms_buf_append_be16_bytes(kms_buf *b, const void *p, size_t n)
    __attribute__((warn_unused_result));
/* Hands the bytes to the caller (free()/kms_buffer_free for non-secure buffers) and empties b. */
uint8_t *kms_buf_detach(kms_buf *b, size_t *len);

typedef struct kms_reader {
    const uint8_t *p;
    size_t left;
} kms_reader;

void kms_reader_init(kms_reader *r, const uint8_t *p, size_t n);
/* Each returns 0 or -1 (not enough bytes; nothing consumed, the output zeroed, no error raised:
 * the parser raises the error that names what was truncated, or asks for more input). */
int kms_reader_u8(kms_reader *r, uint8_t *v) __attribute__((warn_unused_result));
int kms_reader_be16(kms_reader *r, uint16_t *v) __attribute__((warn_unused_result));
int kms_reader_be32(kms_reader *r, uint32_t *v) __attribute__((warn_unused_result));
int kms_reader_bytes(kms_reader *r, size_t n, const uint8_t **p)
    __attribute__((warn_unused_result));
int kms_reader_copy(kms_reader *r, void *dst, size_t n) __attribute__((warn_unused_result));
/* A be16 length and that many bytes in one read (as OpenSSH's sshbuf_get_string_direct): *p
 * borrows into the reader's memory, *len is the length. When either the length or the bytes
 * are missing, nothing is consumed, *p is NULL and *len 0. */
int kms_reader_be16_bytes(kms_reader *r, const uint8_t **p, size_t *len)
    __attribute__((warn_unused_result));

#endif
