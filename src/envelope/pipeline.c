/* The parallel frame pipeline behind kms_envelope_encrypt_fd / kms_envelope_decrypt_fd.
 *
 * Frames are independent (message-body.md: each has its own IV, AAD and tag), so workers take
 * batches of frames in turn: reading a batch is serialised (one input stream), sealing or
 * opening it runs in parallel, and writing is serialised again in batch order by a ticket. With
 * two workers one reads while the other computes, so the AES-GCM work of both cores overlaps the
 * copying. Memory: two buffers of about 1 MiB per worker, whatever the message size.
 *
 * Decrypt releases a batch only after every frame in it verified. The signature hash runs where
 * the bytes are in message order: the read step on decrypt, the write step on encrypt. */
#include "envelope/pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "util/error.h"
#include "util/secmem.h"

#define BATCH_BYTES (1u << 20)
#define MAX_THREADS 64

ssize_t kms_fd_read_full(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            kms_raise(KMS_ERR_VALIDATION, "reading the input failed: %s", strerror(errno));
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int kms_fd_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        KMS_ENSURE(w > 0, KMS_ERR_VALIDATION, "writing the output failed: %s",
                   w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int kms_fd_read_header(int fd, kms_msg *m, kms_buf *hdr)
{
    for (;;) {
        if (hdr->len > 0) {
            int rc = kms_esdk_header_parse(hdr->data, hdr->len, &m->hdr);
            if (rc == 0) {
                return 0;
            }
            KMS_GUARD(rc < 0 ? -1 : 0);
        }
        KMS_GUARD(kms_buf_reserve(hdr, 4096));
        ssize_t got = kms_fd_read_full(fd, hdr->data + hdr->len, 4096);
        KMS_GUARD(got < 0 ? -1 : 0);
        KMS_ENSURE(got > 0, KMS_ERR_INVALID_CIPHERTEXT,
                   hdr->len == 0 ? "the input is empty: not an encrypted message"
                                 : "the input ends inside the message header (%zu bytes): "
                                   "truncated or not an encrypted message",
                   hdr->len);
        hdr->len += (size_t)got;
    }
}

typedef struct pipe_shared {
    kms_msg *msg;
    const kms_envelope_options *o;
    bool encrypt;
    int in_fd;
    int out_fd;
    uint32_t frame;
    size_t batch_frames;
    /* Reader state, under rd. */
    pthread_mutex_t rd;
    kms_buf carry; /* input read ahead of what was assigned to a batch */
    size_t carry_off;
    bool input_eof;
    bool body_done;
    uint64_t next_batch;
    uint32_t next_seq;
    uint64_t consumed;
    uint64_t total;
    /* Writer ticket, under wr. */
    pthread_mutex_t wr;
    pthread_cond_t wr_cv;
    uint64_t next_write;
    /* Decrypt, signed suites: the final frame's plaintext, released after the signature. */
    kms_buf held;
    /* First failure, under wr. */
    bool failed;
    kms_error err;
    char err_msg[512];
} pipe_shared;

typedef struct pipe_worker {
    pipe_shared *sh;
    pthread_t tid;
    uint8_t *in;  /* ciphertext (decrypt) or plaintext (encrypt, locked memory) */
    uint8_t *out; /* plaintext (decrypt, locked memory) or ciphertext (encrypt) */
    size_t in_cap;
    size_t out_cap;
    kms_frame *frames;
    kms_gcm gcm;
} pipe_worker;

static void fail(pipe_shared *sh)
{
    pthread_mutex_lock(&sh->wr);
    if (!sh->failed) {
        sh->failed = true;
        sh->err = kms_last_error() != KMS_OK ? kms_last_error() : KMS_ERR_INTERNAL;
        snprintf(sh->err_msg, sizeof sh->err_msg, "%s", kms_last_error_message());
    }
    pthread_cond_broadcast(&sh->wr_cv);
    pthread_mutex_unlock(&sh->wr);
}

static bool failed(pipe_shared *sh)
{
    pthread_mutex_lock(&sh->wr);
    bool f = sh->failed;
    pthread_mutex_unlock(&sh->wr);
    return f;
}

/* Takes up to n bytes of read-ahead, then reads the rest from the input. */
static ssize_t shared_read(pipe_shared *sh, uint8_t *p, size_t n)
{
    size_t got = 0;
    size_t avail = sh->carry.len - sh->carry_off;
    if (avail > 0) {
        got = avail < n ? avail : n;
        memcpy(p, sh->carry.data + sh->carry_off, got);
        sh->carry_off += got;
        if (sh->carry_off == sh->carry.len) {
            sh->carry.len = 0;
            sh->carry_off = 0;
        }
    }
    if (got < n && !sh->input_eof) {
        ssize_t r = kms_fd_read_full(sh->in_fd, p + got, n - got);
        if (r < 0) {
            return -1;
        }
        if ((size_t)r < n - got) {
            sh->input_eof = true;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static void progress(pipe_shared *sh)
{
    if (sh->o->progress != NULL) {
        sh->o->progress(sh->o->progress_arg, sh->consumed, sh->total);
    }
}

/* Encrypt read step (under rd): a batch of plaintext; decides which frame is the final one. */
static int read_plain_batch(pipe_shared *sh, pipe_worker *w, size_t *len, size_t *nframes,
                            uint32_t *seq0)
{
    size_t want = sh->batch_frames * sh->frame;
    ssize_t got = shared_read(sh, w->in, want);
    KMS_GUARD(got < 0 ? -1 : 0);
    bool final = (size_t)got < want;
    if (!final) {
        uint8_t peek = 0;
        ssize_t p = shared_read(sh, &peek, 1);
        int r = p < 0 ? -1 : 0;
        if (p == 0) {
            final = true;
        } else if (p > 0) {
            sh->carry.len = 0;
            sh->carry_off = 0;
            r = kms_buf_append(&sh->carry, &peek, 1); /* locked memory on encrypt */
        }
        sodium_memzero(&peek, sizeof peek);
        KMS_GUARD(r);
    }
    *len = (size_t)got;
    *nframes = final ? ((size_t)got + sh->frame - 1) / sh->frame : sh->batch_frames;
    if (final && *nframes == 0) {
        *nframes = 1; /* an empty message still has its (empty) final frame */
    }
    *seq0 = sh->next_seq;
    KMS_ENSURE((uint64_t)sh->next_seq + *nframes < UINT32_MAX, KMS_ERR_VALIDATION,
               "the message needs more than 2^32 - 1 frames: use a larger frame length");
    sh->next_seq += (uint32_t)*nframes;
    sh->body_done = final;
    sh->consumed += (size_t)got;
    return 0;
}

/* The bytes read past the last whole frame go before the unread carry, for the next batch. */
static int keep_rest(pipe_shared *sh, const uint8_t *p, size_t n)
{
    int r = -1;
    kms_buf rest;
    kms_buf_init(&rest, false);
    if ((r = kms_buf_append(&rest, p, n)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append(&rest, sh->carry.data + sh->carry_off,
                            sh->carry.len - sh->carry_off)) != 0) {
        goto out;
    }
    kms_buf_clean_up(&sh->carry);
    sh->carry = rest;
    sh->carry_off = 0;
    kms_buf_init(&rest, false);
    r = 0;
out:
    kms_buf_clean_up(&rest);
    return r;
}

/* Decrypt read step (under rd): whole frames of ciphertext, checked for order and hashed. */
static int read_cipher_batch(pipe_shared *sh, pipe_worker *w, size_t *nframes)
{
    size_t reg = kms_msg_regular_frame_size(sh->frame);
    ssize_t got = shared_read(sh, w->in, sh->batch_frames * reg);
    KMS_GUARD(got < 0 ? -1 : 0);
    size_t len = (size_t)got, off = 0, i = 0;
    while (i < sh->batch_frames) {
        kms_frame *f = &w->frames[i];
        int rc = kms_msg_scan_frame(sh->msg, w->in + off, len - off, sh->next_seq, f);
        if (rc == 1) {
            /* A frame straddles the end of what was read (the final frame is up to 8 bytes
             * longer than a regular one; the buffer has room for that). */
            KMS_ENSURE(!sh->input_eof || sh->carry.len > sh->carry_off, KMS_ERR_INVALID_CIPHERTEXT,
                       "the message is truncated: it ends inside frame %u (or before its final "
                       "frame)",
                       sh->next_seq);
            size_t more = (off + reg + 8) - len;
            ssize_t m = shared_read(sh, w->in + len, more);
            KMS_GUARD(m < 0 ? -1 : 0);
            len += (size_t)m;
            KMS_ENSURE(m > 0, KMS_ERR_INVALID_CIPHERTEXT,
                       "the message is truncated: it ends inside frame %u (or before its final "
                       "frame)",
                       sh->next_seq);
            continue;
        }
        KMS_GUARD(rc);
        off += f->size;
        sh->next_seq++;
        i++;
        if (f->final) {
            sh->body_done = true;
            break;
        }
    }
    KMS_GUARD(kms_msg_hash(sh->msg, w->in, off));
    /* Bytes past the last whole frame stay for the next batch (or are the footer). */
    if (off < len) {
        KMS_GUARD(keep_rest(sh, w->in + off, len - off));
    }
    *nframes = i;
    sh->consumed += off;
    return 0;
}

static int seal_batch(pipe_shared *sh, pipe_worker *w, size_t len, size_t nframes, uint32_t seq0,
                      bool last, size_t *out_len)
{
    size_t off = 0, o = 0;
    for (size_t i = 0; i < nframes; i++) {
        bool final = last && i + 1 == nframes;
        size_t n = len - off < sh->frame ? len - off : sh->frame;
        size_t used = 0;
        KMS_GUARD(kms_msg_seal_frame(sh->msg, &w->gcm, seq0 + (uint32_t)i, final, w->in + off, n,
                                     w->out + o, &used));
        off += n;
        o += used;
    }
    *out_len = o;
    return 0;
}

static int open_batch(pipe_shared *sh, pipe_worker *w, size_t nframes, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < nframes; i++) {
        KMS_GUARD(kms_msg_open_frame(sh->msg, &w->gcm, &w->frames[i], w->out + o));
        o += w->frames[i].len;
    }
    *out_len = o;
    return 0;
}

/* Write step (under wr, in batch order). */
static int write_batch(pipe_shared *sh, pipe_worker *w, size_t nframes, bool last, size_t out_len)
{
    if (sh->encrypt) {
        KMS_GUARD(kms_msg_hash(sh->msg, w->out, out_len));
    }
    if (!sh->encrypt && last && sh->msg->suite->sig != KMS_SIG_NONE) {
        /* decrypt.md: the final frame waits for the signature (finish_decrypt). */
        size_t final_len = w->frames[nframes - 1].len;
        out_len -= final_len;
        KMS_GUARD(kms_buf_append(&sh->held, w->out + out_len, final_len));
    }
    return kms_fd_write_all(sh->out_fd, w->out, out_len);
}

/* One batch: read (serialised), compute (parallel), write (serialised, in batch order). */
static int worker_step(pipe_shared *sh, pipe_worker *w, bool *done)
{
    size_t len = 0, nframes = 0, out_len = 0;
    uint32_t seq0 = 0;
    bool last = false;
    uint64_t ticket = 0;
    pthread_mutex_lock(&sh->rd);
    if (sh->body_done || failed(sh)) {
        pthread_mutex_unlock(&sh->rd);
        *done = true;
        return 0;
    }
    ticket = sh->next_batch++;
    int r = sh->encrypt ? read_plain_batch(sh, w, &len, &nframes, &seq0)
                        : read_cipher_batch(sh, w, &nframes);
    last = sh->body_done;
    if (r == 0) {
        progress(sh);
    }
    pthread_mutex_unlock(&sh->rd);
    if (r == 0) {
        r = sh->encrypt ? seal_batch(sh, w, len, nframes, seq0, last, &out_len)
                        : open_batch(sh, w, nframes, &out_len);
    }
    if (r != 0) {
        fail(sh);
        *done = true;
        return -1;
    }
    pthread_mutex_lock(&sh->wr);
    while (!sh->failed && sh->next_write != ticket) {
        pthread_cond_wait(&sh->wr_cv, &sh->wr);
    }
    if (!sh->failed) {
        r = write_batch(sh, w, nframes, last, out_len);
        sh->next_write++;
    }
    pthread_cond_broadcast(&sh->wr_cv);
    pthread_mutex_unlock(&sh->wr);
    if (r != 0) {
        fail(sh);
        *done = true;
        return -1;
    }
    *done = last;
    return 0;
}

static void *worker_main(void *arg)
{
    pipe_worker *w = arg;
    bool done = false;
    while (!done && worker_step(w->sh, w, &done) == 0) {
    }
    return NULL;
}

static int worker_init(pipe_shared *sh, pipe_worker *w)
{
    memset(w, 0, sizeof *w);
    w->sh = sh;
    size_t reg = kms_msg_regular_frame_size(sh->frame);
    size_t plain = sh->batch_frames * sh->frame + 16;
    size_t cipher = sh->batch_frames * reg + 64;
    w->in_cap = sh->encrypt ? plain : cipher;
    w->out_cap = sh->encrypt ? cipher : plain;
    /* Plaintext lives in locked, guarded memory, wiped when freed. */
    w->in = sh->encrypt ? sodium_malloc(w->in_cap) : malloc(w->in_cap);
    w->out = sh->encrypt ? malloc(w->out_cap) : sodium_malloc(w->out_cap);
    w->frames = calloc(sh->batch_frames, sizeof *w->frames);
    KMS_ENSURE(w->in != NULL && w->out != NULL && w->frames != NULL, KMS_ERR_INTERNAL,
               "out of memory for the frame buffers");
    return kms_gcm_init(&w->gcm, sh->msg->keys->key, sh->msg->suite->key_len, sh->encrypt);
}

static void worker_clean_up(pipe_shared *sh, pipe_worker *w)
{
    kms_gcm_clean_up(&w->gcm);
    if (sh->encrypt) {
        sodium_free(w->in);
        free(w->out);
    } else {
        free(w->in);
        sodium_free(w->out);
    }
    free(w->frames);
}

static unsigned thread_count(const pipe_shared *sh)
{
    long n = sh->o->threads != 0 ? (long)sh->o->threads : sysconf(_SC_NPROCESSORS_ONLN);
    n = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
    /* No more workers than batches when the size is known. */
    if (sh->total > 0) {
        size_t per =
            sh->batch_frames * (sh->encrypt ? sh->frame : kms_msg_regular_frame_size(sh->frame));
        uint64_t batches = sh->total / per + 1;
        n = (uint64_t)n > batches ? (long)batches : n;
    }
    return (unsigned)n;
}

/* Runs the workers over the body; the calling thread is one of them. */
static int run_body(pipe_shared *sh)
{
    unsigned n = thread_count(sh);
    pipe_worker *w = calloc(n, sizeof *w);
    KMS_ENSURE(w != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = -1;
    unsigned started = 0, inited = 0;
    for (; inited < n; inited++) {
        if ((r = worker_init(sh, &w[inited])) != 0) {
            inited++; /* its partial buffers are freed with the others */
            goto out;
        }
    }
    for (unsigned i = 1; i < n; i++) {
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
            break; /* fewer workers is fine */
        }
        started = i;
    }
    worker_main(&w[0]);
    for (unsigned i = 1; i <= started; i++) {
        pthread_join(w[i].tid, NULL);
    }
    if (sh->failed) {
        r = kms_raise(sh->err, "%s", sh->err_msg);
        goto out;
    }
    r = 0;
out:
    for (unsigned i = 0; i < inited; i++) {
        worker_clean_up(sh, &w[i]);
    }
    free(w);
    return r;
}

static void shared_clean_up(pipe_shared *sh)
{
    kms_buf_clean_up(&sh->carry);
    kms_buf_clean_up(&sh->held); /* wipes */
    pthread_mutex_destroy(&sh->rd);
    pthread_mutex_destroy(&sh->wr);
    pthread_cond_destroy(&sh->wr_cv);
}

static int shared_init(pipe_shared *sh, kms_msg *m, const kms_envelope_options *o, bool encrypt,
                       int in_fd, int out_fd)
{
    memset(sh, 0, sizeof *sh);
    sh->msg = m;
    sh->o = o;
    sh->encrypt = encrypt;
    sh->in_fd = in_fd;
    sh->out_fd = out_fd;
    sh->frame = m->hdr.frame_length;
    sh->batch_frames = BATCH_BYTES / sh->frame > 0 ? BATCH_BYTES / sh->frame : 1;
    sh->next_seq = 1;
    kms_buf_init(&sh->carry, encrypt);
    kms_buf_init(&sh->held, true);
    pthread_mutex_init(&sh->rd, NULL);
    pthread_mutex_init(&sh->wr, NULL);
    pthread_cond_init(&sh->wr_cv, NULL);
    /* Never a NULL buffer, so that data + offset is always defined. */
    if (kms_buf_reserve(&sh->carry, 64) != 0 || kms_buf_reserve(&sh->held, 64) != 0) {
        shared_clean_up(sh);
        return -1;
    }
    struct stat st;
    if (fstat(in_fd, &st) == 0 && S_ISREG(st.st_mode)) {
        sh->total = (uint64_t)st.st_size;
    }
    return 0;
}

int kms_envelope_encrypt_fd(const kms_envelope_options *o, int in_fd, int out_fd)
{
    kms_error_clear();
    int r = -1;
    kms_msg m;
    kms_msg_init(&m);
    pipe_shared sh;
    bool sh_ready = false;
    kms_buf footer;
    kms_buf_init(&footer, false);
    if ((r = kms_msg_encrypt_begin(&m, o)) != 0) {
        goto out;
    }
    if ((r = kms_fd_write_all(out_fd, m.header.data, m.header.len)) != 0) {
        goto out;
    }
    if ((r = shared_init(&sh, &m, o, true, in_fd, out_fd)) != 0) {
        goto out;
    }
    sh_ready = true;
    if ((r = run_body(&sh)) != 0) {
        goto out;
    }
    if ((r = kms_msg_footer(&m, &footer)) != 0) {
        goto out;
    }
    if ((r = kms_fd_write_all(out_fd, footer.data, footer.len)) != 0) {
        goto out;
    }
    r = 0;
out:
    if (sh_ready) {
        shared_clean_up(&sh);
    }
    kms_buf_clean_up(&footer);
    kms_msg_clean_up(&m);
    return r;
}

/* After the body: the footer (signed suites) and nothing else. */
static int finish_decrypt(pipe_shared *sh)
{
    int r = -1;
    size_t used = 0;
    kms_buf rest;
    kms_buf_init(&rest, false);
    if ((r = kms_buf_append(&rest, sh->carry.data + sh->carry_off,
                            sh->carry.len - sh->carry_off)) != 0) {
        goto out;
    }
    /* The footer is 2 + at most 65535 bytes; read a little more to see trailing garbage. */
    while (!sh->input_eof && rest.len < 70000) {
        if ((r = kms_buf_reserve(&rest, 8192)) != 0) {
            goto out;
        }
        ssize_t got = kms_fd_read_full(sh->in_fd, rest.data + rest.len, 8192);
        if (got < 0) {
            r = -1;
            goto out;
        }
        rest.len += (size_t)got;
        sh->input_eof = got < 8192;
    }
    r = kms_msg_verify_footer(sh->msg, rest.data, rest.len, &used);
    if (r == 1) {
        r = kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                      "the message is truncated: its signature is missing or incomplete");
    }
    if (r != 0) {
        goto out;
    }
    if (rest.len > used || !sh->input_eof) {
        r = kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                      "bytes follow the end of the message: not a single encrypted message");
        goto out;
    }
    /* Signature verified (or none): release the held-back final frame. */
    if ((r = kms_fd_write_all(sh->out_fd, sh->held.data, sh->held.len)) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_buf_clean_up(&rest);
    return r;
}

/* Legacy non-framed bodies go through the single-threaded stream, from the start. */
static int decrypt_nonframed_fd(const kms_envelope_options *o, kms_buf *head, int in_fd, int out_fd,
                                kms_envelope_info *info);

int kms_fd_decrypt_with_head(const kms_envelope_options *o, kms_buf *head, int in_fd, int out_fd,
                             kms_envelope_info *info)
{
    if (info != NULL) {
        memset(info, 0, sizeof *info);
    }
    KMS_ENSURE(o != NULL, KMS_ERR_VALIDATION, "no options given");
    int r = -1;
    kms_msg m;
    kms_msg_init(&m);
    pipe_shared sh;
    bool sh_ready = false;
    if ((r = kms_fd_read_header(in_fd, &m, head)) != 0) {
        goto out;
    }
    if (m.hdr.content_type == 1) {
        kms_msg_clean_up(&m);
        return decrypt_nonframed_fd(o, head, in_fd, out_fd, info);
    }
    if ((r = kms_msg_decrypt_begin(&m, o, head->data)) != 0) {
        goto out;
    }
    if ((r = shared_init(&sh, &m, o, false, in_fd, out_fd)) != 0) {
        goto out;
    }
    sh_ready = true;
    if ((r = kms_buf_append(&sh.carry, head->data + m.hdr.total_len,
                            head->len - m.hdr.total_len)) != 0) {
        goto out;
    }
    if ((r = run_body(&sh)) != 0) {
        goto out;
    }
    if ((r = finish_decrypt(&sh)) != 0) {
        goto out;
    }
    if (info != NULL && (r = kms_msg_info(&m, info)) != 0) {
        goto out;
    }
    r = 0;
out:
    if (sh_ready) {
        shared_clean_up(&sh);
    }
    kms_msg_clean_up(&m);
    return r;
}

int kms_envelope_decrypt_fd(const kms_envelope_options *o, int in_fd, int out_fd,
                            kms_envelope_info *info)
{
    kms_error_clear();
    kms_buf head;
    kms_buf_init(&head, false);
    int r = kms_fd_decrypt_with_head(o, &head, in_fd, out_fd, info);
    kms_buf_clean_up(&head);
    return r;
}

static int fd_write(void *arg, const uint8_t *p, size_t n)
{
    return kms_fd_write_all(*(int *)arg, p, n);
}

static int decrypt_nonframed_fd(const kms_envelope_options *o, kms_buf *head, int in_fd, int out_fd,
                                kms_envelope_info *info)
{
    int r = -1;
    uint8_t buf[65536];
    kms_envelope_stream *s = kms_envelope_decrypt_start(o);
    if (s == NULL) {
        return -1;
    }
    if ((r = kms_envelope_update(s, head->data, head->len, fd_write, &out_fd)) != 0) {
        goto out;
    }
    for (;;) {
        ssize_t got = kms_fd_read_full(in_fd, buf, sizeof buf);
        if (got < 0) {
            r = -1;
            goto out;
        }
        if (got == 0) {
            break;
        }
        if ((r = kms_envelope_update(s, buf, (size_t)got, fd_write, &out_fd)) != 0) {
            goto out;
        }
    }
    if ((r = kms_envelope_final(s, fd_write, &out_fd, info)) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_envelope_stream_free(s);
    return r;
}
