/* File helpers: outputs that are regular files are written to a temporary file beside the target
 * and renamed over it only on success, so a failed or interrupted run never leaves a file that
 * looks complete, and a failed decrypt leaves no plaintext behind. Also re-encrypt, which
 * rewrites the header and copies the body. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
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
    KMS_ENSURE(*fd >= 0, KMS_ERR_VALIDATION, "cannot open the input %s: %s", path, strerror(errno));
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
        return kms_raise(KMS_ERR_VALIDATION, "cannot create the output %s: %s", path, strerror(e));
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
    return kms_raise(KMS_ERR_VALIDATION, "cannot name the output %s: %s", t->path, strerror(errno));
}

/* Makes the rename itself durable too. */
static void sync_parent(const char *path)
{
    char *d = strdup(path);
    int dfd = d != NULL ? open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(d);
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
    int r = -1;
    bool named = !t->unnamed; /* a name on disk that a failure must remove */
    if (fsync(t->fd) != 0) {
        r = kms_raise(KMS_ERR_VALIDATION, "writing the output %s failed: %s", t->path,
                      strerror(errno));
        goto out;
    }
    if (t->unnamed) {
        if ((r = name_unnamed(t)) != 0) {
            goto out;
        }
        named = true;
    }
    int fd = t->fd;
    t->fd = -1;
    if (close(fd) != 0) {
        r = kms_raise(KMS_ERR_VALIDATION, "writing the output %s failed: %s", t->path,
                      strerror(errno));
        goto out;
    }
    if (rename(t->tmp, t->path) != 0) {
        r = kms_raise(KMS_ERR_VALIDATION, "cannot move the output into place as %s: %s", t->path,
                      strerror(errno));
        goto out;
    }
    sync_parent(t->path);
    r = 0;
out:
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
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
    if (info != NULL) {
        memset(info, 0, sizeof *info);
    }
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

/* ---- Re-encrypt ------------------------------------------------------------------------------
 * The message is decrypted and encrypted again under a fresh data key and message id, with the
 * plaintext passing between the two pipelines through a pipe (kernel memory, never a file).
 * Only rewrapping the data key and rewriting the header would be cheaper, but it is unsafe in
 * this format: the header tag is AES-GCM under a key derived from (data key, message id) with an
 * IV fixed at zero (encrypt.md), so a second header for the same body is a second tag under the
 * same key and IV, from which the GHASH key can be recovered and any frame of either message
 * forged. It would also copy forged frames and keep uncommitted legacy suites. */
typedef struct decrypt_side {
    const kms_envelope_options *o;
    kms_buf *head;
    int in_fd;
    int out_fd;
    int rc;
    kms_error err;
    char msg[512];
} decrypt_side;

static void *decrypt_side_main(void *arg)
{
    decrypt_side *d = arg;
    /* If the encrypting side stops reading, writes fail with EPIPE instead of killing us. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    d->rc = kms_fd_decrypt_with_head(d->o, d->head, d->in_fd, d->out_fd, NULL);
    if (d->rc != 0) {
        d->err = kms_last_error();
        snprintf(d->msg, sizeof d->msg, "%s", kms_last_error_message());
    }
    close(d->out_fd);
    return NULL;
}

/* The destination message: the source's context (its signature key aside) with the caller's
 * required-but-unstored pairs kept unstored, and the source's kind of suite with commitment. */
static int destination_options(const kms_envelope_options *o, const kms_keyring *destination,
                               const kms_esdk_header *h, kms_ec *ec, kms_context_entry **entries,
                               kms_encryption_context *ctx, const char ***required,
                               kms_envelope_options *eo)
{
    kms_ec_init(ec);
    for (size_t i = 0; i < h->stored_ec.n; i++) {
        if (strcmp(h->stored_ec.e[i].key, KMS_ESDK_PUBKEY_CONTEXT_KEY) != 0) {
            KMS_GUARD(kms_ec_put(ec, h->stored_ec.e[i].key, h->stored_ec.e[i].value));
        }
    }
    size_t stored = ec->n;
    for (size_t i = 0; o->context != NULL && i < o->context->count; i++) {
        const kms_context_entry *e = &o->context->entries[i];
        if (e->key != NULL && e->value != NULL && kms_ec_get(&h->stored_ec, e->key) == NULL) {
            KMS_GUARD(kms_ec_put(ec, e->key, e->value));
        }
    }
    *required = calloc(ec->n - stored + 1, sizeof **required);
    KMS_ENSURE(*required != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = stored; i < ec->n; i++) {
        (*required)[i - stored] = ec->e[i].key;
    }
    KMS_GUARD(kms_ec_view(ec, entries, ctx));
    memset(eo, 0, sizeof *eo);
    eo->keyring = destination;
    eo->context = ctx;
    eo->required_context_keys = *required;
    eo->required_context_key_count = ec->n - stored;
    eo->algorithm_suite = o->algorithm_suite != 0 ? o->algorithm_suite
                          : h->suite->sig != KMS_SIG_NONE
                              ? KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
                              : KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY;
    const kms_esdk_suite *s = kms_esdk_suite_get(eo->algorithm_suite);
    eo->commitment_policy = s != NULL && !s->commit ? KMS_COMMIT_FORBID_ENCRYPT_ALLOW_DECRYPT
                                                    : KMS_COMMIT_REQUIRE_ENCRYPT_REQUIRE_DECRYPT;
    eo->frame_length = h->frame_length != 0 ? h->frame_length : KMS_ESDK_DEFAULT_FRAME;
    eo->max_encrypted_data_keys = o->max_encrypted_data_keys;
    eo->threads = o->threads;
    return 0;
}

static int reencrypt_job(const kms_envelope_options *o, const void *extra, int in_fd, int out_fd,
                         kms_envelope_info *info)
{
    (void)info;
    KMS_ENSURE(extra != NULL, KMS_ERR_VALIDATION, "no destination keyring");
    kms_msg peek;
    kms_msg_init(&peek);
    kms_buf head;
    kms_buf_init(&head, false);
    kms_ec ec;
    kms_ec_init(&ec);
    kms_context_entry *entries = NULL;
    const char **required = NULL;
    kms_encryption_context ctx = {0};
    kms_envelope_options eo;
    int fds[2] = {-1, -1};
    int r = -1;
    if ((r = kms_fd_read_header(in_fd, &peek, &head)) != 0) {
        goto out;
    }
    if ((r = destination_options(o, extra, &peek.hdr, &ec, &entries, &ctx, &required, &eo)) != 0) {
        goto out;
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        r = kms_raise(KMS_ERR_INTERNAL, "pipe: %s", strerror(errno));
        goto out;
    }
    decrypt_side d = {.o = o, .head = &head, .in_fd = in_fd, .out_fd = fds[1]};
    pthread_t tid;
    fds[1] = -1; /* the decrypting side closes it */
    if (pthread_create(&tid, NULL, decrypt_side_main, &d) != 0) {
        close(d.out_fd);
        r = kms_raise(KMS_ERR_INTERNAL, "cannot start the decrypting thread");
        goto out;
    }
    r = kms_envelope_encrypt_fd(&eo, fds[0], out_fd);
    close(fds[0]); /* a decrypt still writing now gets EPIPE and stops */
    fds[0] = -1;
    pthread_join(tid, NULL);
    /* The decrypt's own failure is the cause unless it only lost its reader. */
    bool lost_reader = d.rc != 0 && strstr(d.msg, "Broken pipe") != NULL;
    if (d.rc != 0 && !(r != 0 && lost_reader)) {
        r = kms_raise(d.err, "%s", d.msg);
    }
out:
    if (fds[0] >= 0) {
        close(fds[0]);
    }
    free(required);
    free(entries);
    kms_ec_clean_up(&ec);
    kms_buf_clean_up(&head);
    kms_msg_clean_up(&peek);
    return r;
}

int kms_envelope_reencrypt_file(const kms_envelope_options *o, const kms_keyring *destination,
                                const char *in_path, const char *out_path)
{
    return run_file_job(o, destination, in_path, out_path, NULL, reencrypt_job);
}
