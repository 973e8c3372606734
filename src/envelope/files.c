/* File helpers: outputs that are regular files are written to a temporary file beside the target
 * and renamed over it only on success, so a failed or interrupted run never leaves a file that
 * looks complete, and a failed decrypt leaves no plaintext behind. Also re-encrypt, which
 * rewrites the header and copies the body. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "envelope/pipeline.h"
#include "util/error.h"
#include "util/util.h"

typedef struct out_target {
    int fd;
    char *path; /* final name (temporary outputs only) */
    char *tmp;
    bool unnamed; /* O_TMPFILE: no name until committed */
} out_target;

static int in_open(const char *path, int *fd)
{
    if (path == NULL || strcmp(path, "-") == 0) {
        *fd = STDIN_FILENO;
        return 0;
    }
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    KMS_ENSURE(*fd >= 0, KMS_ERR_VALIDATION, "cannot open the input %s: %s", path,
               strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(*fd);
        return kms_raise(KMS_ERR_VALIDATION, "the input %s is a directory", path);
    }
    return 0;
}

static void in_close(const char *path, int fd)
{
    if (path != NULL && strcmp(path, "-") != 0) {
        close(fd);
    }
}

static int out_open(const char *path, out_target *t)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
    if (path == NULL || strcmp(path, "-") == 0) {
        t->fd = STDOUT_FILENO;
        return 0;
    }
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        KMS_ENSURE(!S_ISDIR(st.st_mode), KMS_ERR_VALIDATION,
                   "the output %s is a directory: name a file", path);
        /* A pipe, a terminal, /dev/null: stream to it. */
        t->fd = open(path, O_WRONLY | O_CLOEXEC);
        KMS_ENSURE(t->fd >= 0, KMS_ERR_VALIDATION, "cannot open the output %s: %s", path,
                   strerror(errno));
        return 0;
    }
    char *d = strdup(path), *b = strdup(path);
    t->path = strdup(path);
    char *dir = d != NULL ? strdup(dirname(d)) : NULL;
    t->tmp = d != NULL && b != NULL
                 ? kms_strdup_printf("%s/.%s.kms-XXXXXX", dir != NULL ? dir : ".", basename(b))
                 : NULL;
    free(d);
    free(b);
    if (t->tmp == NULL || t->path == NULL || dir == NULL) {
        free(dir);
        free(t->tmp);
        free(t->path);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    /* An unnamed file first (O_TMPFILE): a run killed half-way leaves nothing at all. Where the
     * file system cannot, a hidden temporary name. Both are 0600. */
    t->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    t->unnamed = t->fd >= 0;
    if (!t->unnamed) {
        t->fd = mkostemp(t->tmp, O_CLOEXEC);
    }
    int e = errno;
    free(dir);
    if (t->fd < 0) {
        free(t->tmp);
        free(t->path);
        t->tmp = t->path = NULL;
        return kms_raise(KMS_ERR_VALIDATION, "cannot create the output %s: %s", path,
                         strerror(e));
    }
    return 0;
}

/* Gives the unnamed file its temporary name, just before it is renamed into place. */
static int name_unnamed(out_target *t)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", t->fd);
    for (int attempt = 0; attempt < 8; attempt++) {
        char *x = t->tmp + strlen(t->tmp) - 6;
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        for (int i = 0; i < 6; i++) {
            x[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
        }
        if (linkat(AT_FDCWD, proc, AT_FDCWD, t->tmp, AT_SYMLINK_FOLLOW) == 0) {
            return 0;
        }
        if (errno != EEXIST) {
            break;
        }
    }
    return kms_raise(KMS_ERR_VALIDATION, "cannot name the output %s: %s", t->path,
                     strerror(errno));
}

/* Publishes the output: durable first, then renamed into place. */
static int out_commit(out_target *t)
{
    if (t->tmp == NULL) {
        if (t->fd != STDOUT_FILENO) {
            close(t->fd);
        }
        return 0;
    }
    int r = 0;
    bool named = !t->unnamed; /* a name on disk that a failure must remove */
    if (fsync(t->fd) != 0) {
        r = kms_raise(KMS_ERR_VALIDATION, "writing the output %s failed: %s", t->path,
                      strerror(errno));
    }
    if (r == 0 && t->unnamed) {
        r = name_unnamed(t);
        named = r == 0;
    }
    if (close(t->fd) != 0 && r == 0) {
        r = kms_raise(KMS_ERR_VALIDATION, "writing the output %s failed: %s", t->path,
                      strerror(errno));
    }
    t->fd = -1;
    if (r == 0 && rename(t->tmp, t->path) != 0) {
        r = kms_raise(KMS_ERR_VALIDATION, "cannot move the output into place as %s: %s", t->path,
                      strerror(errno));
    }
    if (r != 0 && named) {
        unlink(t->tmp);
    }
    free(t->tmp);
    free(t->path);
    t->tmp = t->path = NULL;
    return r;
}

static void out_abort(out_target *t)
{
    if (t->tmp != NULL) {
        if (t->fd >= 0) {
            close(t->fd);
        }
        if (!t->unnamed) {
            unlink(t->tmp);
        }
        free(t->tmp);
        free(t->path);
    } else if (t->fd >= 0 && t->fd != STDOUT_FILENO) {
        close(t->fd);
    }
    memset(t, 0, sizeof *t);
}

typedef int (*fd_job)(const kms_envelope_options *o, const void *extra, int in_fd, int out_fd,
                      kms_envelope_info *info);

static int run_file_job(const kms_envelope_options *o, const void *extra, const char *in_path,
                        const char *out_path, kms_envelope_info *info, fd_job job)
{
    kms_error_clear();
    KMS_ENSURE(o != NULL, KMS_ERR_VALIDATION, "no options given");
    int in_fd = -1;
    out_target out;
    KMS_GUARD(in_open(in_path, &in_fd));
    if (out_open(out_path, &out) != 0) {
        in_close(in_path, in_fd);
        return -1;
    }
    int r = job(o, extra, in_fd, out.fd, info);
    in_close(in_path, in_fd);
    if (r != 0) {
        out_abort(&out);
        return -1;
    }
    if (out_commit(&out) != 0) {
        kms_envelope_info_clean_up(info);
        return -1;
    }
    return 0;
}

static int encrypt_job(const kms_envelope_options *o, const void *extra, int in_fd, int out_fd,
                       kms_envelope_info *info)
{
    (void)extra;
    (void)info;
    return kms_envelope_encrypt_fd(o, in_fd, out_fd);
}

static int decrypt_job(const kms_envelope_options *o, const void *extra, int in_fd, int out_fd,
                       kms_envelope_info *info)
{
    (void)extra;
    return kms_envelope_decrypt_fd(o, in_fd, out_fd, info);
}

int kms_envelope_encrypt_file(const kms_envelope_options *o, const char *in_path,
                              const char *out_path)
{
    return run_file_job(o, NULL, in_path, out_path, NULL, encrypt_job);
}

int kms_envelope_decrypt_file(const kms_envelope_options *o, const char *in_path,
                              const char *out_path, kms_envelope_info *info)
{
    return run_file_job(o, NULL, in_path, out_path, info, decrypt_job);
}

/* ---- Re-encrypt ------------------------------------------------------------------------------*/
typedef struct reencrypt_state {
    kms_msg *m;
    EVP_MD_CTX *old_hash; /* verifies the source message's signature */
    EVP_PKEY *old_key;
    int in_fd;
    int out_fd;
    kms_buf buf; /* body bytes read but not yet copied */
    size_t off;
    bool eof;
} reencrypt_state;

/* Makes at least want bytes available at buf+off; fewer only at the end of the input. */
static int fill(reencrypt_state *st, size_t want)
{
    while (!st->eof && st->buf.len - st->off < want) {
        if (st->off > 0) {
            memmove(st->buf.data, st->buf.data + st->off, st->buf.len - st->off);
            st->buf.len -= st->off;
            st->off = 0;
        }
        KMS_GUARD(kms_buf_reserve(&st->buf, 1u << 20));
        ssize_t got = kms_fd_read_full(st->in_fd, st->buf.data + st->buf.len, 1u << 20);
        KMS_GUARD(got < 0 ? -1 : 0);
        st->buf.len += (size_t)got;
        st->eof = got == 0;
    }
    return 0;
}

/* Copies n body bytes: into both signature hashes and to the output. */
static int copy_bytes(reencrypt_state *st, size_t n)
{
    const uint8_t *p = st->buf.data + st->off;
    if (st->old_hash != NULL && EVP_DigestUpdate(st->old_hash, p, n) != 1) {
        return kms_openssl_raise("signature hash");
    }
    KMS_GUARD(kms_msg_hash(st->m, p, n));
    KMS_GUARD(kms_fd_write_all(st->out_fd, p, n));
    st->off += n;
    return 0;
}

static int copy_body(reencrypt_state *st)
{
    const kms_msg *m = st->m;
    if (m->hdr.content_type == 1) {
        KMS_GUARD(fill(st, KMS_ESDK_IV_LEN + 8));
        KMS_ENSURE(st->buf.len - st->off >= KMS_ESDK_IV_LEN + 8, KMS_ERR_INVALID_CIPHERTEXT,
                   "the message is truncated inside its body");
        uint64_t len = 0;
        for (int i = 0; i < 8; i++) {
            len = len << 8 | st->buf.data[st->off + KMS_ESDK_IV_LEN + i];
        }
        uint64_t left = KMS_ESDK_IV_LEN + 8 + len + KMS_ESDK_TAG_LEN;
        while (left > 0) {
            KMS_GUARD(fill(st, 1));
            size_t avail = st->buf.len - st->off;
            KMS_ENSURE(avail > 0, KMS_ERR_INVALID_CIPHERTEXT,
                       "the message is truncated inside its body");
            size_t n = avail < left ? avail : (size_t)left;
            KMS_GUARD(copy_bytes(st, n));
            left -= n;
        }
        return 0;
    }
    for (uint32_t seq = 1;; seq++) {
        kms_frame f;
        int rc = 1;
        size_t want = 4 + 4 + KMS_ESDK_IV_LEN + 4;
        while (rc == 1) {
            KMS_GUARD(fill(st, want));
            rc = kms_msg_scan_frame(m, st->buf.data + st->off, st->buf.len - st->off, seq, &f);
            KMS_GUARD(rc < 0 ? -1 : 0);
            KMS_ENSURE(rc == 0 || !st->eof, KMS_ERR_INVALID_CIPHERTEXT,
                       "the message is truncated: it ends inside frame %u", seq);
            want = kms_msg_final_frame_size(m->hdr.frame_length);
        }
        KMS_GUARD(copy_bytes(st, f.size));
        if (f.final) {
            return 0;
        }
    }
}

static int copy_footer(reencrypt_state *st)
{
    kms_msg *m = st->m;
    KMS_GUARD(fill(st, 2 + 65535 + 1));
    size_t used = 0;
    if (m->suite->sig != KMS_SIG_NONE) {
        /* Verify the source's signature with its key and hash, then sign with the new ones. */
        EVP_MD_CTX *new_hash = m->hash;
        EVP_PKEY *new_key = m->sig_key;
        m->hash = st->old_hash;
        m->sig_key = st->old_key;
        int rc = kms_msg_verify_footer(m, st->buf.data + st->off, st->buf.len - st->off, &used);
        m->hash = new_hash;
        m->sig_key = new_key;
        KMS_ENSURE(rc != 1, KMS_ERR_INVALID_CIPHERTEXT,
                   "the message is truncated: its signature is missing or incomplete");
        KMS_GUARD(rc);
    }
    KMS_ENSURE(st->off + used == st->buf.len, KMS_ERR_INVALID_CIPHERTEXT,
               "bytes follow the end of the message: not a single encrypted message");
    kms_buf footer;
    kms_buf_init(&footer, false);
    int r = kms_msg_footer(m, &footer);
    r = r != 0 ? r : kms_fd_write_all(st->out_fd, footer.data, footer.len);
    kms_buf_clean_up(&footer);
    return r;
}

static int reencrypt_job(const kms_envelope_options *o, const void *extra, int in_fd, int out_fd,
                         kms_envelope_info *info)
{
    (void)info;
    kms_msg m;
    kms_msg_init(&m);
    reencrypt_state st = {.m = &m, .in_fd = in_fd, .out_fd = out_fd};
    kms_buf_init(&st.buf, false);
    int r = kms_fd_read_header(in_fd, &m, &st.buf);
    r = r != 0 ? r : kms_msg_decrypt_begin(&m, o, st.buf.data);
    if (r == 0) {
        st.off = m.hdr.total_len;
        st.old_hash = m.hash; /* already fed the source header */
        st.old_key = m.sig_key;
        m.hash = NULL;
        m.sig_key = NULL;
        r = kms_msg_rewrap(&m, extra);
    }
    r = r != 0 ? r : kms_fd_write_all(out_fd, m.header.data, m.header.len);
    r = r != 0 ? r : copy_body(&st);
    r = r != 0 ? r : copy_footer(&st);
    EVP_MD_CTX_free(st.old_hash);
    EVP_PKEY_free(st.old_key);
    kms_buf_clean_up(&st.buf);
    kms_msg_clean_up(&m);
    return r;
}

int kms_envelope_reencrypt_file(const kms_envelope_options *o, const kms_keyring *destination,
                                const char *in_path, const char *out_path)
{
    return run_file_job(o, destination, in_path, out_path, NULL, reencrypt_job);
}
