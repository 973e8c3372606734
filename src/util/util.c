#include "util/util.h"
#include "util/random.h"
#include "util/secmem.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -1;

static void util_init_once(void)
{
    if (sodium_init() < 0) {
        return;
    }
    if (OPENSSL_init_crypto(0, NULL) != 1) {
        return;
    }
    init_result = 0;
}

int kms_util_init(void)
{
    pthread_once(&init_once, util_init_once);
    KMS_ENSURE(init_result == 0, KMS_ERR_INTERNAL, "libsodium or OpenSSL failed to initialise");
    return 0;
}

void kms_uuid_from_bytes(const uint8_t in[16], char out[KMS_UUID_STR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[in[i] >> 4];
        out[o++] = hex[in[i] & 0xf];
    }
    out[o] = '\0';
}

int kms_uuid_new(char out[KMS_UUID_STR_LEN + 1])
{
    KMS_GUARD(kms_util_init());
    uint8_t b[16];
    kms_random_public(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* RFC 4122 4.4: version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
    kms_uuid_from_bytes(b, out);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The text form 8-4-4-4-12 of hex digits (either case) into 16 bytes; -1, raising nothing. */
static int uuid_parse(const char *s, uint8_t out[16])
{
    if (s == NULL || strlen(s) != KMS_UUID_STR_LEN) {
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < KMS_UUID_STR_LEN;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return -1;
            }
            i++;
            continue;
        }
        int hi = hexval(s[i]);
        int lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return 0;
}

int kms_uuid_to_bytes(const char *s, uint8_t out[16])
{
    if (uuid_parse(s, out) != 0) {
        memset(out, 0, 16);
        return kms_raise(KMS_ERR_VALIDATION, "'%s' is not a UUID", s != NULL ? s : "");
    }
    return 0;
}

bool kms_uuid_valid(const char *s)
{
    uint8_t b[16];
    return uuid_parse(s, b) == 0;
}

char *kms_base64_encode(const uint8_t *p, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(cap);
    if (s == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    sodium_bin2base64(s, cap, p ? p : (const uint8_t *)"", n, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

int kms_base64_decode(const char *s, const char *what, bool secure, uint8_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    KMS_GUARD(kms_util_init());
    size_t slen = strlen(s);
    /* libsodium 1.0.18 maps bytes >= 0x80 to '/' instead of refusing them: check the alphabet
     * first (RFC 4648 section 4), so that one text never decodes like another. */
    KMS_ENSURE(strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
                   slen,
               KMS_ERR_VALIDATION, "%s is not valid base64", what);
    size_t cap = slen / 4 * 3 + 3;
    uint8_t *b = secure ? kms_secure_alloc(cap) : malloc(cap);
    KMS_ENSURE(b != NULL, KMS_ERR_INTERNAL, "out of memory");
    size_t len = 0;
    const char *end = NULL;
    if (sodium_base642bin(b, cap, s, slen, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != s + slen) {
        if (secure) {
            kms_secure_free(b);
        } else {
            free(b);
        }
        return kms_raise(KMS_ERR_VALIDATION, "%s is not valid base64", what);
    }
    *out = b;
    *n = len;
    return 0;
}

int64_t kms_now(void)
{
    /* time() goes through libc, so libfaketime moves it in tests. */
    return (int64_t)time(NULL);
}

/* Two decimal digits of v (0..99) at p. */
static void two_digits(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void kms_time_iso8601(int64_t t, char out[32])
{
    /* Years 1970 to 9999, every time of every request: by arithmetic (H. Hinnant,
     * "chrono-Compatible Low-Level Date Algorithms", civil_from_days), not gmtime_r, which
     * takes glibc's time zone lock, and strftime. */
    if (t >= 0 && t <= 253402300799) {
        int64_t days = t / 86400, secs = t % 86400;
        int64_t z = days + 719468;
        int64_t era = z / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        int d = (int)(doy - (153 * mp + 2) / 5 + 1);
        int m = (int)(mp < 10 ? mp + 3 : mp - 9);
        int y = (int)(yoe + era * 400 + (m <= 2));
        memcpy(out, "0000-00-00T00:00:00Z", 21);
        two_digits(out, y / 100);
        two_digits(out + 2, y % 100);
        two_digits(out + 5, m);
        two_digits(out + 8, d);
        two_digits(out + 11, (int)(secs / 3600));
        two_digits(out + 14, (int)(secs / 60 % 60));
        two_digits(out + 17, (int)(secs % 60));
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Reads the regular file open on fd (at most max bytes); closes fd. */
static int read_fd(int fd, const char *path, size_t max, char **out, size_t *len)
{
    int r = -1;
    char *buf = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        kms_raise(KMS_ERR_HOME, "%s is not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        kms_raise(KMS_ERR_VALIDATION, "%s is larger than %zu bytes", path, max);
        goto out;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size + 1);
    if (buf == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            kms_raise(KMS_ERR_HOME, "cannot read %s: %s", path, k < 0 ? strerror(errno) : "short");
            goto out;
        }
        got += (size_t)k;
    }
    buf[size] = '\0';
    *out = buf;
    buf = NULL;
    if (len != NULL) {
        *len = size;
    }
    r = 0;
out:
    free(buf);
    close(fd);
    return r;
}

int kms_file_read(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    if (len != NULL) {
        *len = 0;
    }
    /* O_NONBLOCK: a FIFO planted in place of a file must not hang the open (fstat refuses it). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return kms_raise(errno == ENOENT ? KMS_ERR_NOT_FOUND : KMS_ERR_HOME, "cannot open %s: %s",
                         path, strerror(errno));
    }
    return read_fd(fd, path, max, out, len);
}

/* ---- StrictModes ------------------------------------------------------------------------------
 */

int kms_file_check_private(const struct stat *st, const char *path)
{
    uid_t me = geteuid();
    KMS_ENSURE(st->st_uid == me, KMS_ERR_HOME,
               "%s is owned by uid %u, not by this user (uid %u), who would trust what it holds; "
               "if it is yours, run `chown %u %s`, else use a KMS home of your own",
               path, (unsigned)st->st_uid, (unsigned)me, (unsigned)me, path);
    KMS_ENSURE((st->st_mode & 022) == 0, KMS_ERR_HOME,
               "%s is writable by group or others (mode %04o), who could change what this KMS "
               "home trusts; run `chmod go-w %s`",
               path, (unsigned)(st->st_mode & 07777), path);
    return 0;
}

int kms_path_check_private(const char *path, bool dir, bool missing_ok)
{
    int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (dir ? O_DIRECTORY : 0);
    int fd = open(path, flags);
    if (fd < 0 && errno == ENOENT && missing_ok) {
        return 0;
    }
    KMS_ENSURE(fd >= 0, KMS_ERR_HOME, "cannot open %s: %s%s", path, strerror(errno),
               errno == ELOOP || errno == ENOTDIR ? " (a symbolic link or not a directory)" : "");
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return kms_raise(KMS_ERR_HOME, "cannot stat %s: %s", path, strerror(errno));
    }
    close(fd);
    return kms_file_check_private(&st, path);
}

int kms_file_read_private(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    if (len != NULL) {
        *len = 0;
    }
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return kms_raise(errno == ENOENT ? KMS_ERR_NOT_FOUND : KMS_ERR_HOME, "cannot open %s: %s",
                         path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return kms_raise(KMS_ERR_HOME, "cannot stat %s: %s", path, strerror(errno));
    }
    if (kms_file_check_private(&st, path) != 0) {
        close(fd);
        return -1;
    }
    return read_fd(fd, path, max, out, len);
}

/* A component of a trusted path: owned by root or the caller, not writable by group or others. */
static int check_trusted(const char *path, const char *what)
{
    struct stat st;
    uid_t me = geteuid();
    KMS_ENSURE(stat(path, &st) == 0, KMS_ERR_HOME, "%s: cannot stat %s: %s", what, path,
               strerror(errno));
    KMS_ENSURE(st.st_uid == 0 || st.st_uid == me, KMS_ERR_HOME,
               "%s: %s is owned by uid %u, neither root nor this user (uid %u); run `chown root "
               "%s` if it is to be trusted",
               what, path, (unsigned)st.st_uid, (unsigned)me, path);
    KMS_ENSURE((st.st_mode & 022) == 0, KMS_ERR_HOME,
               "%s: %s is writable by group or others (mode %04o); run `chmod go-w %s` if it is "
               "to be trusted",
               what, path, (unsigned)(st.st_mode & 07777), path);
    return 0;
}

int kms_file_check_trusted(const char *path, const char *what, char **resolved)
{
    int r = -1;
    char *real = NULL;
    char *dir = NULL;
    *resolved = NULL;
    KMS_ENSURE(path[0] == '/', KMS_ERR_HOME,
               "%s must be an absolute path, not \"%s\" (a relative one depends on the current "
               "directory)",
               what, path);
    real = realpath(path, NULL);
    if (real == NULL) {
        kms_raise(KMS_ERR_HOME, "%s: cannot resolve %s: %s", what, path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
        kms_raise(KMS_ERR_HOME, "%s: %s is not a regular file", what, real);
        goto out;
    }
    if (check_trusted(real, what) != 0) {
        goto out;
    }
    /* OpenSSH's safe_path: every directory up to the root too, so that no one else can swap the
     * file between this check and its use. */
    dir = strdup(real);
    if (dir == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (char *slash = strrchr(dir, '/'); slash != NULL; slash = strrchr(dir, '/')) {
        if (slash == dir) {
            slash[1] = '\0';
        } else {
            slash[0] = '\0';
        }
        if (check_trusted(dir, what) != 0) {
            goto out;
        }
        if (slash == dir) {
            break;
        }
    }
    *resolved = real;
    real = NULL;
    r = 0;
out:
    free(real);
    free(dir);
    return r;
}

int kms_file_lock(const char *path, bool exclusive, int *fd_out)
{
    static const char *const advice =
        "it must be a regular file this user can open (remove it and try again: it is created "
        "afresh)";
    struct stat st;
    *fd_out = -1;
    int fd = exclusive ? open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600)
                       : open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && !exclusive && errno == ENOENT) {
        return 0;
    }
    if (fd < 0) {
        return kms_raise(KMS_ERR_HOME, "cannot open the lock file %s: %s; %s", path,
                         strerror(errno), advice);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        kms_raise(KMS_ERR_HOME, "the lock file %s is not a regular file; %s", path, advice);
        close(fd);
        return -1;
    }
    while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        if (errno != EINTR) {
            kms_raise(KMS_ERR_HOME, "cannot lock %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    *fd_out = fd;
    return 0;
}

int kms_file_write_atomic(const char *path, const void *p, size_t n, unsigned mode)
{
    int r = -1;
    char *tmp = kms_strdup_printf("%s.tmp.XXXXXX", path);
    if (tmp == NULL) {
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        kms_raise(KMS_ERR_HOME, "cannot create a file beside %s: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    const uint8_t *b = p;
    size_t done = 0;
    if (fchmod(fd, (mode_t)mode) != 0) {
        kms_raise(KMS_ERR_HOME, "cannot set the mode of %s: %s", path, strerror(errno));
        goto out;
    }
    while (done < n) {
        ssize_t k = write(fd, b + done, n - done);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            kms_raise(KMS_ERR_HOME, "cannot write %s: %s", path, strerror(errno));
            goto out;
        }
        done += (size_t)k;
    }
    if (fsync(fd) != 0) {
        kms_raise(KMS_ERR_HOME, "cannot sync %s: %s", path, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        kms_raise(KMS_ERR_HOME, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        kms_raise(KMS_ERR_HOME, "cannot rename into %s: %s", path, strerror(errno));
        goto out;
    }
    r = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (r != 0) {
        unlink(tmp);
    }
    free(tmp);
    return r;
}

bool kms_path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

char *kms_path_join(const char *a, const char *b)
{
    return kms_strdup_printf("%s/%s", a, b);
}

char *kms_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return s;
}

void kms_fault_point(const char *point)
{
    const char *f = getenv("KMS_FAULT");
    size_t n = strlen(point);
    if (f != NULL && strcmp(f, point) == 0) {
        /* A crash, as kill -9 or a power cut would cause: no clean-up of any kind. */
        kill(getpid(), SIGKILL);
    } else if (f != NULL && strncmp(f, point, n) == 0 && strcmp(f + n, ":stop") == 0) {
        /* A stall, as a suspended machine or SIGSTOP causes: it goes on at SIGCONT. */
        kill(getpid(), SIGSTOP);
    }
}

int kms_array_reserve(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap * 2 : 16;
    KMS_ENSURE(ncap > *cap && ncap <= SIZE_MAX / size, KMS_ERR_INTERNAL, "out of memory");
    void *p = realloc(*arr, ncap * size);
    KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory");
    *arr = p;
    *cap = ncap;
    return 0;
}
