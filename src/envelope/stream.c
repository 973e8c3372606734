/* The streaming API (client-apis/streaming.md) and the one-shot buffer calls built on it. One
 * thread, bounded memory: input is buffered only until a whole frame (or the header) is there. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope/message.h"
#include "util/error.h"
#include "util/secmem.h"

/* Non-framed bodies (legacy, decrypt only) are authenticated by one tag at the end, so their
 * plaintext is held back until then; this bounds how much we hold. */
#define NONFRAMED_MAX (64u * 1024 * 1024)

typedef enum { ST_HEADER, ST_BODY, ST_FOOTER, ST_DONE, ST_FAILED } stream_state;

struct kms_envelope_stream {
    bool encrypt;
    kms_envelope_options opts;
    stream_state state;
    kms_msg msg;
    kms_gcm gcm;
    bool gcm_ready;
    kms_buf in; /* pending input (ciphertext on decrypt; plaintext on encrypt, secure) */
    size_t in_off;
    kms_buf out; /* scratch for one serialised frame (encrypt) or one frame's plaintext */
    uint32_t seq;
    uint64_t consumed;
    uint64_t total;
    size_t header_retry_at; /* re-parse an incomplete header only once this much is buffered */
    size_t held;            /* signed suites: final plaintext held in out until the signature */
    bool finished;          /* _final was called */
};

static kms_envelope_stream *stream_new(const kms_envelope_options *o, bool encrypt)
{
    if (o == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "no options given");
        return NULL;
    }
    kms_envelope_stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    s->encrypt = encrypt;
    s->opts = *o;
    s->seq = 1;
    kms_msg_init(&s->msg);
    kms_buf_init(&s->in, encrypt);
    kms_buf_init(&s->out, !encrypt);
    /* Never a NULL buffer, so that data + offset is always defined. */
    if (kms_buf_reserve(&s->in, 64) != 0 || kms_buf_reserve(&s->out, 64) != 0) {
        kms_envelope_stream_free(s);
        return NULL;
    }
    return s;
}

void kms_envelope_stream_free(kms_envelope_stream *s)
{
    if (s == NULL) {
        return;
    }
    if (s->gcm_ready) {
        kms_gcm_clean_up(&s->gcm);
    }
    kms_msg_clean_up(&s->msg);
    kms_buf_clean_up(&s->in);
    kms_buf_clean_up(&s->out);
    free(s);
}

static int emit(kms_write_fn write, void *arg, const uint8_t *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    kms_error_clear();
    if (write(arg, p, n) != 0) {
        if (kms_last_error() == KMS_OK) {
            return kms_raise(KMS_ERR_INTERNAL, "writing the output failed");
        }
        return -1;
    }
    return 0;
}

kms_envelope_stream *kms_envelope_encrypt_start(const kms_envelope_options *o,
                                                uint64_t plaintext_len)
{
    kms_envelope_stream *s = stream_new(o, true);
    if (s == NULL) {
        return NULL;
    }
    s->total = plaintext_len == UINT64_MAX ? 0 : plaintext_len;
    if (kms_msg_encrypt_begin(&s->msg, o) != 0 ||
        kms_gcm_init(&s->gcm, s->msg.keys->key, s->msg.suite->key_len, true) != 0) {
        kms_envelope_stream_free(s);
        return NULL;
    }
    s->gcm_ready = true;
    uint64_t max = (uint64_t)s->msg.hdr.frame_length * (UINT32_MAX - 1u);
    if (plaintext_len != UINT64_MAX && plaintext_len > max) {
        kms_raise(KMS_ERR_VALIDATION,
                  "%llu bytes need more than 2^32 - 1 frames of %u bytes: use a larger frame "
                  "length",
                  (unsigned long long)plaintext_len, s->msg.hdr.frame_length);
        kms_envelope_stream_free(s);
        return NULL;
    }
    return s;
}

kms_envelope_stream *kms_envelope_decrypt_start(const kms_envelope_options *o)
{
    return stream_new(o, false);
}

/* Drops consumed input once it is most of the buffer, so the buffer stays a few frames big. */
static void compact(kms_envelope_stream *s)
{
    if (s->in_off > 0 && (s->in_off == s->in.len || s->in_off >= s->in.len / 2)) {
        memmove(s->in.data, s->in.data + s->in_off, s->in.len - s->in_off);
        s->in.len -= s->in_off;
        sodium_memzero(s->in.data + s->in.len, s->in_off); /* the stale tail */
        s->in_off = 0;
    }
}

static int encrypt_frame(kms_envelope_stream *s, const uint8_t *pt, size_t len, bool final,
                         kms_write_fn write, void *arg)
{
    KMS_ENSURE(s->seq != UINT32_MAX, KMS_ERR_VALIDATION,
               "the message needs more than 2^32 - 1 frames: use a larger frame length");
    s->out.len = 0;
    KMS_GUARD(kms_buf_reserve(&s->out, kms_msg_final_frame_size(s->msg.hdr.frame_length)));
    size_t n = 0;
    KMS_GUARD(kms_msg_seal_frame(&s->msg, &s->gcm, s->seq, final, pt, len, s->out.data, &n));
    KMS_GUARD(kms_msg_hash(&s->msg, s->out.data, n));
    KMS_GUARD(emit(write, arg, s->out.data, n));
    s->seq++;
    s->consumed += len;
    if (s->opts.progress != NULL) {
        s->opts.progress(s->opts.progress_arg, s->consumed, s->total);
    }
    return 0;
}

static int encrypt_update(kms_envelope_stream *s, const uint8_t *in, size_t n, kms_write_fn write,
                          void *arg)
{
    size_t frame = s->msg.hdr.frame_length;
    if (s->state == ST_HEADER) {
        KMS_GUARD(emit(write, arg, s->msg.header.data, s->msg.header.len));
        s->state = ST_BODY;
    }
    /* Whole frames straight from the caller's buffer while more input follows them. */
    while (s->in.len - s->in_off == 0 && n > frame) {
        KMS_GUARD(encrypt_frame(s, in, frame, false, write, arg));
        in += frame;
        n -= frame;
    }
    KMS_GUARD(kms_buf_append(&s->in, in, n));
    while (s->in.len - s->in_off > frame) {
        KMS_GUARD(encrypt_frame(s, s->in.data + s->in_off, frame, false, write, arg));
        s->in_off += frame;
    }
    compact(s);
    return 0;
}

static int encrypt_final(kms_envelope_stream *s, kms_write_fn write, void *arg)
{
    if (s->state == ST_HEADER) {
        KMS_GUARD(emit(write, arg, s->msg.header.data, s->msg.header.len));
    }
    /* encrypt.md: what is left (at most one frame, possibly empty) is the final frame. */
    KMS_GUARD(encrypt_frame(s, s->in.data + s->in_off, s->in.len - s->in_off, true, write, arg));
    s->in_off = s->in.len;
    compact(s);
    int r = -1;
    kms_buf footer;
    kms_buf_init(&footer, false);
    if ((r = kms_msg_footer(&s->msg, &footer)) != 0) {
        goto out;
    }
    if ((r = emit(write, arg, footer.data, footer.len)) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_buf_clean_up(&footer);
    return r;
}

/* decrypt.md: with a signed suite the plaintext of the final frame (or of a non-framed body)
 * must not be released before the signature verified; it waits in s->out (locked memory). */
static int release_or_hold(kms_envelope_stream *s, size_t len, kms_write_fn write, void *arg)
{
    if (s->msg.suite->sig != KMS_SIG_NONE) {
        s->held = len;
        return 0;
    }
    int r = emit(write, arg, s->out.data, len);
    sodium_memzero(s->out.data, len);
    return r;
}

/* Non-framed body (message-body.md Non-Framed Data): IV, 8-byte length, content, tag. */
static int decrypt_nonframed(kms_envelope_stream *s, const uint8_t *p, size_t n, size_t *used,
                             kms_write_fn write, void *arg)
{
    *used = 0;
    kms_reader r;
    const uint8_t *iv = NULL, *ct = NULL, *tag = NULL;
    uint32_t hi = 0, lo = 0;
    kms_reader_init(&r, p, n);
    if (kms_reader_bytes(&r, KMS_ESDK_IV_LEN, &iv) != 0 || kms_reader_be32(&r, &hi) != 0 ||
        kms_reader_be32(&r, &lo) != 0) {
        return 1;
    }
    uint64_t len = (uint64_t)hi << 32 | lo;
    KMS_ENSURE(len <= NONFRAMED_MAX, KMS_ERR_INVALID_CIPHERTEXT,
               "message body: a non-framed body of %llu bytes is above this implementation's "
               "limit of %u bytes",
               (unsigned long long)len, NONFRAMED_MAX);
    if (kms_reader_bytes(&r, (size_t)len, &ct) != 0 ||
        kms_reader_bytes(&r, KMS_ESDK_TAG_LEN, &tag) != 0) {
        return 1;
    }
    size_t need = n - r.left;
    uint8_t aad[KMS_ESDK_BODY_AAD_MAX];
    size_t aad_len = kms_esdk_body_aad(aad, s->msg.hdr.message_id, s->msg.suite->msgid_len,
                                       KMS_BODY_SINGLE, 1, len);
    s->out.len = 0;
    KMS_GUARD(kms_buf_reserve(&s->out, (size_t)len + 1));
    if (kms_gcm_open(&s->gcm, iv, aad, aad_len, ct, (size_t)len, s->out.data, tag) != 0) {
        sodium_memzero(s->out.data, (size_t)len);
        return kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                         "message body did not authenticate (modified or truncated); no "
                         "plaintext was released");
    }
    KMS_GUARD(kms_msg_hash(&s->msg, p, need));
    *used = need;
    return release_or_hold(s, (size_t)len, write, arg);
}

static int decrypt_header(kms_envelope_stream *s, bool at_end)
{
    /* An incomplete header is re-parsed only when the buffer doubled (or at the end), so that
     * feeding a large header in small pieces stays linear. */
    size_t have = s->in.len - s->in_off;
    if (!at_end && have < s->header_retry_at) {
        return 1;
    }
    const uint8_t *p = s->in.data + s->in_off;
    int rc = kms_esdk_header_parse(p, have, &s->msg.hdr);
    if (rc != 0) {
        s->header_retry_at = have * 2;
        return rc;
    }
    KMS_GUARD(kms_msg_decrypt_begin(&s->msg, &s->opts, p));
    KMS_GUARD(kms_gcm_init(&s->gcm, s->msg.keys->key, s->msg.suite->key_len, false));
    s->gcm_ready = true;
    s->in_off += s->msg.hdr.total_len;
    s->state = ST_BODY;
    return 0;
}

static int decrypt_body_step(kms_envelope_stream *s, kms_write_fn write, void *arg)
{
    const uint8_t *p = s->in.data + s->in_off;
    size_t n = s->in.len - s->in_off;
    if (s->msg.hdr.content_type == 1) {
        size_t used = 0;
        int rc = decrypt_nonframed(s, p, n, &used, write, arg);
        if (rc == 0) {
            s->in_off += used;
            s->state = ST_FOOTER;
        }
        return rc;
    }
    kms_frame f;
    int rc = kms_msg_scan_frame(&s->msg, p, n, s->seq, &f);
    if (rc != 0) {
        return rc;
    }
    s->out.len = 0;
    KMS_GUARD(kms_buf_reserve(&s->out, f.len + 1));
    KMS_GUARD(kms_msg_open_frame(&s->msg, &s->gcm, &f, s->out.data));
    KMS_GUARD(kms_msg_hash(&s->msg, p, f.size));
    if (f.final) {
        KMS_GUARD(release_or_hold(s, f.len, write, arg));
    } else {
        rc = emit(write, arg, s->out.data, f.len);
        sodium_memzero(s->out.data, f.len);
        KMS_GUARD(rc);
    }
    s->in_off += f.size;
    s->consumed += f.size;
    s->seq++;
    if (f.final) {
        s->state = ST_FOOTER;
    }
    return 0;
}

static int decrypt_update(kms_envelope_stream *s, const uint8_t *in, size_t n, kms_write_fn write,
                          void *arg, bool at_end)
{
    KMS_GUARD(kms_buf_append(&s->in, in, n));
    for (;;) {
        int rc = 0;
        if (s->state == ST_HEADER) {
            rc = decrypt_header(s, at_end);
        } else if (s->state == ST_BODY) {
            rc = decrypt_body_step(s, write, arg);
        } else if (s->state == ST_FOOTER) {
            size_t used = 0;
            rc = kms_msg_verify_footer(&s->msg, s->in.data + s->in_off, s->in.len - s->in_off,
                                       &used);
            if (rc == 0) {
                s->in_off += used;
                s->state = ST_DONE;
                /* Signature verified: the held-back plaintext may go. */
                rc = emit(write, arg, s->out.data, s->held);
                sodium_memzero(s->out.data, s->held);
                s->held = 0;
            }
        } else {
            KMS_ENSURE(s->in.len == s->in_off, KMS_ERR_INVALID_CIPHERTEXT,
                       "%zu bytes follow the end of the message", s->in.len - s->in_off);
            break;
        }
        if (rc == 1) {
            break; /* wait for more input */
        }
        KMS_GUARD(rc);
    }
    if (s->opts.progress != NULL && s->state != ST_HEADER) {
        s->opts.progress(s->opts.progress_arg, s->consumed, s->total);
    }
    compact(s);
    return 0;
}

int kms_envelope_update(kms_envelope_stream *s, const uint8_t *in, size_t in_len,
                        kms_write_fn write, void *arg)
{
    kms_error_clear();
    KMS_ENSURE(s != NULL && write != NULL && (in != NULL || in_len == 0), KMS_ERR_VALIDATION,
               "kms_envelope_update: missing stream, input or writer");
    KMS_ENSURE(s->state != ST_FAILED, KMS_ERR_VALIDATION,
               "the stream failed earlier: start a new one");
    KMS_ENSURE(!s->finished, KMS_ERR_VALIDATION, "the stream was already finalised");
    int r = s->encrypt ? encrypt_update(s, in, in_len, write, arg)
                       : decrypt_update(s, in, in_len, write, arg, false);
    if (r != 0) {
        s->state = ST_FAILED;
    }
    return r;
}

/* The end of the input: the message must be complete, its signature verified. */
static int decrypt_final(kms_envelope_stream *s, kms_write_fn write, void *arg,
                         kms_envelope_info *info)
{
    KMS_GUARD(decrypt_update(s, NULL, 0, write, arg, true));
    KMS_ENSURE(s->state == ST_DONE, KMS_ERR_INVALID_CIPHERTEXT, "%s",
               s->state == ST_HEADER ? "the message ends inside its header"
               : s->state == ST_BODY ? "the message is truncated: it ends before its final frame"
                                     : "the message is truncated: its signature is missing or "
                                       "incomplete");
    if (info != NULL) {
        KMS_GUARD(kms_msg_info(&s->msg, info));
    }
    return 0;
}

int kms_envelope_final(kms_envelope_stream *s, kms_write_fn write, void *arg,
                       kms_envelope_info *info)
{
    kms_error_clear();
    if (info != NULL) {
        memset(info, 0, sizeof *info);
    }
    KMS_ENSURE(s != NULL && write != NULL, KMS_ERR_VALIDATION,
               "kms_envelope_final: missing stream or writer");
    KMS_ENSURE(s->state != ST_FAILED, KMS_ERR_VALIDATION,
               "the stream failed earlier: start a new one");
    KMS_ENSURE(!s->finished, KMS_ERR_VALIDATION, "the stream was already finalised");
    s->finished = true;
    int r = s->encrypt ? encrypt_final(s, write, arg) : decrypt_final(s, write, arg, info);
    s->state = r == 0 ? ST_DONE : ST_FAILED;
    return r;
}

/* ---- One-shot
 * ----------------------------------------------------------------------------------*/
static int buf_write(void *arg, const uint8_t *p, size_t n)
{
    return kms_buf_append(arg, p, n);
}

static int one_shot(kms_envelope_stream *s, const uint8_t *in, size_t n, bool secure, uint8_t **out,
                    size_t *out_len, kms_envelope_info *info)
{
    *out = NULL;
    *out_len = 0;
    if (s == NULL) {
        return -1;
    }
    int r = -1;
    kms_buf b;
    kms_buf_init(&b, secure);
    if ((r = kms_envelope_update(s, in, n, buf_write, &b)) != 0) {
        goto out;
    }
    if ((r = kms_envelope_final(s, buf_write, &b, info)) != 0) {
        goto out;
    }
    /* Plaintexts stay in locked memory (kms_secret_free), messages in malloc'ed memory. */
    if ((r = kms_buf_reserve(&b, 1)) != 0) {
        kms_envelope_info_clean_up(info);
        goto out;
    }
    *out = kms_buf_detach(&b, out_len);
    r = 0;
out:
    kms_envelope_stream_free(s);
    kms_buf_clean_up(&b); /* nothing unverified leaves */
    return r;
}

int kms_envelope_encrypt(const kms_envelope_options *o, const uint8_t *plaintext,
                         size_t plaintext_len, uint8_t **message, size_t *message_len)
{
    kms_error_clear();
    KMS_ENSURE(message != NULL && message_len != NULL && (plaintext != NULL || plaintext_len == 0),
               KMS_ERR_VALIDATION, "kms_envelope_encrypt: missing argument");
    return one_shot(kms_envelope_encrypt_start(o, plaintext_len), plaintext, plaintext_len, false,
                    message, message_len, NULL);
}

int kms_envelope_decrypt(const kms_envelope_options *o, const uint8_t *message, size_t message_len,
                         uint8_t **plaintext, size_t *plaintext_len, kms_envelope_info *info)
{
    kms_error_clear();
    KMS_ENSURE(plaintext != NULL && plaintext_len != NULL && (message != NULL || message_len == 0),
               KMS_ERR_VALIDATION, "kms_envelope_decrypt: missing argument");
    return one_shot(kms_envelope_decrypt_start(o), message, message_len, true, plaintext,
                    plaintext_len, info);
}
