/* Unit tests of src/util: the bounded reader and the buffer writer (every read at its exact
 * bound and one byte short), base64 (RFC 4648 section 10), UUIDs and their hex, time formatting,
 * locked memory, files and the thread-local error. Negative cases assert the exact error: the
 * code raised, or, for the reader (which raises nothing: its callers name what was truncated),
 * that nothing was raised, nothing consumed and the outputs were cleared. */
#include "testutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kms/kms.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/random.h"
#include "util/secmem.h"
#include "util/util.h"

static int group_setup(void **state)
{
    (void)state;
    return kms_util_init();
}

static int test_setup(void **state)
{
    (void)state;
    kms_error_clear();
    return 0;
}

/* The reader failed as it must: -1, no error raised, nothing consumed. */
static void assert_short(int rc, const kms_reader *r, const uint8_t *p, size_t left)
{
    assert_int_equal(rc, -1);
    assert_int_equal(kms_last_error(), KMS_OK);
    assert_ptr_equal(r->p, p);
    assert_int_equal(r->left, left);
}

/* ---- Reader: fixed-size reads --------------------------------------------------------------- */

static void reader_exact_bounds(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0xAA, 0xBB, 0xCC};
    kms_reader r;
    uint8_t u8 = 0, two[2] = {0};
    uint16_t u16 = 0;
    uint32_t u32 = 0;
    const uint8_t *p = NULL;
    kms_reader_init(&r, in, sizeof in);
    assert_int_equal(kms_reader_u8(&r, &u8), 0);
    assert_int_equal(u8, 0x01);
    assert_int_equal(kms_reader_be16(&r, &u16), 0);
    assert_int_equal(u16, 0x0203);
    assert_int_equal(kms_reader_be32(&r, &u32), 0);
    assert_int_equal(u32, 0x04050607);
    assert_int_equal(kms_reader_bytes(&r, 1, &p), 0);
    assert_ptr_equal(p, in + 7);
    assert_int_equal(kms_reader_copy(&r, two, 2), 0); /* the last two bytes exactly */
    assert_int_equal(two[0], 0xBB);
    assert_int_equal(two[1], 0xCC);
    assert_int_equal(r.left, 0);
    /* At the end: every read fails, a zero-length one still succeeds. */
    u8 = 0xFF;
    assert_short(kms_reader_u8(&r, &u8), &r, in + sizeof in, 0);
    assert_int_equal(u8, 0);
    assert_int_equal(kms_reader_bytes(&r, 0, &p), 0);
    assert_int_equal(kms_last_error(), KMS_OK);
}

static void reader_one_byte_short(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x11, 0x22, 0x33, 0x44, 0x55};
    kms_reader r;
    uint16_t u16 = 0xFFFF;
    uint32_t u32 = 0xFFFFFFFF;
    uint8_t u8 = 0xFF, dst[5];
    const uint8_t *p = in;

    kms_reader_init(&r, in, 0);
    assert_short(kms_reader_u8(&r, &u8), &r, in, 0);
    assert_int_equal(u8, 0);

    kms_reader_init(&r, in, 1);
    assert_short(kms_reader_be16(&r, &u16), &r, in, 1);
    assert_int_equal(u16, 0);

    kms_reader_init(&r, in, 3);
    assert_short(kms_reader_be32(&r, &u32), &r, in, 3);
    assert_int_equal(u32, 0);

    kms_reader_init(&r, in, 4);
    assert_short(kms_reader_bytes(&r, 5, &p), &r, in, 4);
    assert_null(p);

    memset(dst, 0xEE, sizeof dst);
    assert_short(kms_reader_copy(&r, dst, 5), &r, in, 4);
    for (size_t i = 0; i < sizeof dst; i++) {
        assert_int_equal(dst[i], 0); /* cleared on failure */
    }
    /* After a failed read the reader is intact: the same bytes read as before. */
    assert_int_equal(kms_reader_be32(&r, &u32), 0);
    assert_int_equal(u32, 0x11223344);
}

static void reader_huge_length_and_null(void **state)
{
    (void)state;
    static const uint8_t in[4] = {0};
    kms_reader r;
    const uint8_t *p = NULL;
    kms_reader_init(&r, in, sizeof in);
    assert_short(kms_reader_bytes(&r, SIZE_MAX, &p), &r, in, 4);
    kms_reader_init(&r, NULL, 100); /* no memory: nothing to read whatever n says */
    assert_int_equal(r.left, 0);
    assert_int_equal(kms_reader_bytes(&r, 1, &p), -1);
}

/* ---- Reader: length-prefixed read --------------------------------------------------------- */

static void reader_be16_bytes_zero_length(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00, 0x00};
    kms_reader r;
    const uint8_t *p = NULL;
    size_t len = 99;
    kms_reader_init(&r, in, sizeof in);
    assert_int_equal(kms_reader_be16_bytes(&r, &p, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(r.left, 0);
}

static void reader_be16_bytes_max_length(void **state)
{
    (void)state;
    size_t n = 2 + UINT16_MAX;
    uint8_t *in = malloc(n + 1);
    assert_non_null(in);
    in[0] = 0xFF;
    in[1] = 0xFF;
    for (size_t i = 2; i < n + 1; i++) {
        in[i] = (uint8_t)i;
    }
    kms_reader r;
    const uint8_t *p = NULL;
    size_t len = 0;
    /* Exactly 65535 bytes after the length, then one more that stays unread. */
    kms_reader_init(&r, in, n + 1);
    assert_int_equal(kms_reader_be16_bytes(&r, &p, &len), 0);
    assert_ptr_equal(p, in + 2); /* borrowed, not copied */
    assert_int_equal(len, UINT16_MAX);
    assert_int_equal(r.left, 1);
    /* One byte short of the maximum. */
    kms_reader_init(&r, in, n - 1);
    assert_short(kms_reader_be16_bytes(&r, &p, &len), &r, in, n - 1);
    assert_null(p);
    assert_int_equal(len, 0);
    free(in);
}

static void reader_be16_bytes_beyond_end(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00, 0x05, 'a', 'b', 'c', 'd'};
    kms_reader r;
    const uint8_t *p = in;
    size_t len = 7;
    kms_reader_init(&r, in, sizeof in);
    assert_short(kms_reader_be16_bytes(&r, &p, &len), &r, in, sizeof in);
    assert_null(p);
    assert_int_equal(len, 0);
    /* With the fifth byte there, it reads. */
    static const uint8_t whole[] = {0x00, 0x05, 'a', 'b', 'c', 'd', 'e'};
    kms_reader_init(&r, whole, sizeof whole);
    assert_int_equal(kms_reader_be16_bytes(&r, &p, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "abcde", 5);
    assert_int_equal(r.left, 0);
}

static void reader_be16_bytes_truncated_length(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00};
    kms_reader r;
    const uint8_t *p = in;
    size_t len = 7;
    kms_reader_init(&r, in, 0);
    assert_short(kms_reader_be16_bytes(&r, &p, &len), &r, in, 0);
    kms_reader_init(&r, in, 1);
    assert_short(kms_reader_be16_bytes(&r, &p, &len), &r, in, 1);
    assert_null(p);
    assert_int_equal(len, 0);
}

static void reader_be16_bytes_in_sequence(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00, 0x02, 'h', 'i', 0x00, 0x00, 0x00, 0x03, 'y', 'o', 'u'};
    kms_reader r;
    const uint8_t *p = NULL;
    size_t len = 0;
    kms_reader_init(&r, in, sizeof in);
    assert_int_equal(kms_reader_be16_bytes(&r, &p, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "hi", 2);
    assert_int_equal(kms_reader_be16_bytes(&r, &p, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(kms_reader_be16_bytes(&r, &p, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "you", 3);
    assert_int_equal(r.left, 0);
}

/* ---- Writer ------------------------------------------------------------------------------- */

static void writer_integers_and_bytes(void **state)
{
    (void)state;
    static const uint8_t want[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 'x', 'y'};
    kms_buf b;
    kms_buf_init(&b, false);
    assert_int_equal(kms_buf_append_u8(&b, 0x01), 0);
    assert_int_equal(kms_buf_append_be16(&b, 0x0203), 0);
    assert_int_equal(kms_buf_append_be32(&b, 0x04050607), 0);
    assert_int_equal(kms_buf_append(&b, "xy", 2), 0);
    assert_int_equal(kms_buf_append(&b, NULL, 0), 0); /* nothing to add */
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    size_t len = 0;
    uint8_t *p = kms_buf_detach(&b, &len);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(p, want, sizeof want);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(p);
    kms_buf_clean_up(&b);
}

static void writer_grows(void **state)
{
    (void)state;
    kms_buf b;
    kms_buf_init(&b, true); /* locked memory, through every size class */
    for (unsigned i = 0; i < 20000; i++) {
        assert_int_equal(kms_buf_append_u8(&b, (uint8_t)i), 0);
    }
    assert_int_equal(b.len, 20000);
    assert_true(b.cap >= b.len);
    for (unsigned i = 0; i < 20000; i++) {
        assert_int_equal(b.data[i], (uint8_t)i);
    }
    kms_buf_clean_up(&b);
    assert_null(b.data);
    assert_true(b.secure); /* stays a secure buffer for reuse */
}

static void writer_size_overflow(void **state)
{
    (void)state;
    kms_buf b;
    kms_buf_init(&b, false);
    assert_int_equal(kms_buf_append_u8(&b, 1), 0);
    assert_kms_error(kms_buf_reserve(&b, SIZE_MAX), KMS_ERR_INTERNAL);
    assert_int_equal(b.len, 1);
    kms_buf_clean_up(&b);
}

static void writer_be16_bytes(void **state)
{
    (void)state;
    kms_buf b;
    kms_buf_init(&b, false);
    uint8_t *big = calloc(1, (size_t)UINT16_MAX + 1);
    assert_non_null(big);
    assert_int_equal(kms_buf_append_be16_bytes(&b, "abc", 3), 0);
    assert_int_equal(kms_buf_append_be16_bytes(&b, NULL, 0), 0);
    assert_int_equal(b.len, 2 + 3 + 2);
    assert_memory_equal(b.data,
                        "\x00\x03"
                        "abc"
                        "\x00\x00",
                        7);
    /* 65535 fits, 65536 is refused and nothing is appended. */
    assert_int_equal(kms_buf_append_be16_bytes(&b, big, UINT16_MAX), 0);
    assert_int_equal(b.len, 7 + 2 + UINT16_MAX);
    size_t before = b.len;
    assert_kms_error(kms_buf_append_be16_bytes(&b, big, (size_t)UINT16_MAX + 1),
                     KMS_ERR_VALIDATION);
    assert_int_equal(b.len, before);
    /* What the writer wrote, the reader reads back. */
    kms_reader r;
    const uint8_t *p = NULL;
    size_t len = 0;
    kms_reader_init(&r, b.data, b.len);
    assert_int_equal(kms_reader_be16_bytes(&r, &p, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "abc", 3);
    assert_int_equal(kms_reader_be16_bytes(&r, &p, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(kms_reader_be16_bytes(&r, &p, &len), 0);
    assert_int_equal(len, UINT16_MAX);
    assert_int_equal(r.left, 0);
    free(big);
    kms_buf_clean_up(&b);
}

/* ---- Base64 (RFC 4648 section 10) --------------------------------------------------------- */

static const char *const B64_VECTORS[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void base64_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof B64_VECTORS / sizeof B64_VECTORS[0]; i++) {
        const char *plain = B64_VECTORS[i][0], *text = B64_VECTORS[i][1];
        char *enc = kms_base64_encode((const uint8_t *)plain, strlen(plain));
        assert_non_null(enc);
        assert_string_equal(enc, text);
        free(enc);
        for (int secure = 0; secure < 2; secure++) {
            uint8_t *dec = NULL;
            size_t n = 99;
            assert_int_equal(kms_base64_decode(text, "vector", secure, &dec, &n), 0);
            assert_int_equal(n, strlen(plain));
            assert_memory_equal(dec, plain, n);
            if (secure) {
                kms_secret_free(dec, n);
            } else {
                free(dec);
            }
        }
    }
    char *enc = kms_base64_encode(NULL, 0);
    assert_string_equal(enc, "");
    free(enc);
}

static void base64_invalid_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg",                               /* padding missing */
        "Zg=",                              /* padding short */
        "Zm9v!",                            /* outside the alphabet */
        "Zm9v YmFy",                        /* whitespace */
        "Zm9v\n",                           /* newline */
        "Zm9vYg=x",                         /* data after padding */
        "Z===",                             /* too much padding */
        "Zm9-",                             /* URL-safe alphabet */
        "Zm9_",                             /* URL-safe alphabet */
        "Zm9v\xc3\xa9", "\x80\x80\x80\x80", /* libsodium 1.0.18 would read bytes >= 0x80 as '/' */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int secure = 0; secure < 2; secure++) {
            uint8_t *dec = (uint8_t *)"x";
            size_t n = 99;
            kms_error_clear();
            assert_kms_error(kms_base64_decode(bad[i], "the test input", secure, &dec, &n),
                             KMS_ERR_VALIDATION);
            assert_string_equal(kms_last_error_message(), "the test input is not valid base64");
            assert_null(dec);
            assert_int_equal(n, 0);
        }
    }
}

/* ---- UUIDs and their hex ------------------------------------------------------------------- */

static void uuid_text_form(void **state)
{
    (void)state;
    static const uint8_t raw[16] = {0x12, 0x34, 0xab, 0xcd, 0xef, 0x01, 0x4a, 0xbc,
                                    0x8d, 0xef, 0x00, 0x11, 0x22, 0x33, 0x44, 0xff};
    char text[KMS_UUID_STR_LEN + 1];
    uint8_t back[16];
    kms_uuid_from_bytes(raw, text);
    assert_string_equal(text, "1234abcd-ef01-4abc-8def-0011223344ff");
    assert_int_equal(kms_uuid_to_bytes(text, back), 0);
    assert_memory_equal(back, raw, 16);
    /* Upper-case hex reads the same; it is written back in lower case. */
    assert_int_equal(kms_uuid_to_bytes("1234ABCD-EF01-4ABC-8DEF-0011223344FF", back), 0);
    assert_memory_equal(back, raw, 16);
    assert_true(kms_uuid_valid("1234ABCD-EF01-4ABC-8DEF-0011223344FF"));
    assert_true(kms_uuid_valid("00000000-0000-0000-0000-000000000000"));
}

static void uuid_invalid_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "1234abcd-ef01-4abc-8def-0011223344f",   /* one digit short */
        "1234abcd-ef01-4abc-8def-0011223344fff", /* one digit long */
        "1234abcd0ef01-4abc-8def-0011223344ff",  /* a dash missing */
        "1234abc-def01-4abc-8def-0011223344ff",  /* a dash misplaced */
        "1234abcd-ef01-4abc-8def-0011223344fg",  /* not hex */
        "1234abcd-ef01-4abc-8def-00112233 4ff",  /* a space */
        "{234abcd-ef01-4abc-8def-0011223344f}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t out[16];
        memset(out, 0xEE, sizeof out);
        kms_error_clear();
        assert_false(kms_uuid_valid(bad[i]));
        assert_int_equal(kms_last_error(), KMS_OK); /* a validity check raises nothing */
        assert_kms_error(kms_uuid_to_bytes(bad[i], out), KMS_ERR_VALIDATION);
        for (size_t k = 0; k < sizeof out; k++) {
            assert_int_equal(out[k], 0);
        }
    }
    assert_false(kms_uuid_valid(NULL));
}

static void uuid_new_is_version4(void **state)
{
    (void)state;
    char a[KMS_UUID_STR_LEN + 1], b[KMS_UUID_STR_LEN + 1];
    assert_int_equal(kms_uuid_new(a), 0);
    assert_int_equal(kms_uuid_new(b), 0);
    assert_int_equal(strlen(a), KMS_UUID_STR_LEN);
    assert_true(kms_uuid_valid(a));
    assert_string_not_equal(a, b);
    /* RFC 4122 section 4.4: version 4, variant 10. */
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    for (size_t i = 0; i < KMS_UUID_STR_LEN; i++) {
        assert_non_null(strchr("0123456789abcdef-", a[i])); /* lower case */
    }
}

/* ---- Time ------------------------------------------------------------------------------------ */

static void time_iso8601(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *text;
    } cases[] = {
        {0, "1970-01-01T00:00:00Z"},          {951782400, "2000-02-29T00:00:00Z"}, /* a leap day */
        {1764303955, "2025-11-28T04:25:55Z"}, {4102444799, "2099-12-31T23:59:59Z"},
        {-1, "1969-12-31T23:59:59Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32];
        kms_time_iso8601(cases[i].t, out);
        assert_string_equal(out, cases[i].text);
    }
    int64_t before = (int64_t)time(NULL);
    int64_t now = kms_now();
    assert_true(now >= before && now <= (int64_t)time(NULL));
}

/* ---- Locked memory --------------------------------------------------------------------------- */

static void secmem_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 32, 64, 65, 4096, 8192, 8193, 1u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = kms_secure_alloc(sizes[i]);
        assert_non_null(p);
        memset(p, 0xA5, sizes[i]);
        kms_secure_free(p);
    }
    kms_secure_free(NULL);
}

static void secmem_wiped_on_free(void **state)
{
    (void)state;
    /* A slab slot freed is wiped: taken again (the free list is a stack), it reads as zeros. */
    uint8_t *p = kms_secure_alloc(48);
    assert_non_null(p);
    memset(p, 0xA5, 64);
    kms_secure_free(p);
    uint8_t *q = kms_secure_alloc(48);
    assert_ptr_equal(q, p);
    for (size_t i = 0; i < 64; i++) {
        assert_int_equal(q[i], 0);
    }
    kms_secure_free(q);
}

/* ---- Files and strings --------------------------------------------------------------------- */

static void files_read_write(void **state)
{
    (void)state;
    char *dir = kms_test_tmpdir();
    char *path = kms_path_join(dir, "f");
    char *missing = kms_path_join(dir, "missing");
    assert_non_null(path);
    assert_string_equal(path + strlen(dir), "/f");
    assert_int_equal(kms_file_write_atomic(path, "hello", 5, 0600), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(kms_file_read(path, 5, &text, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(text, "hello"); /* NUL-terminated */
    free(text);
    /* One byte over the limit, a missing file, a directory: each its own error, outputs
     * cleared. */
    text = (char *)"x";
    len = 9;
    assert_kms_error(kms_file_read(path, 4, &text, &len), KMS_ERR_VALIDATION);
    assert_null(text);
    assert_int_equal(len, 0);
    assert_kms_error(kms_file_read(missing, 100, &text, &len), KMS_ERR_NOT_FOUND);
    assert_kms_error(kms_file_read(dir, 100, &text, &len), KMS_ERR_HOME);
    assert_true(kms_path_exists(path));
    assert_false(kms_path_exists(missing));
    free(missing);
    free(path);
    kms_test_rmrf(dir);
    free(dir);
}

static void files_lock(void **state)
{
    (void)state;
    char *dir = kms_test_tmpdir();
    char *lock = kms_path_join(dir, "LOCK");
    char *link = kms_path_join(dir, "LINK");
    int fd = 99;
    /* Shared on a missing file: no file made, no lock needed. */
    assert_int_equal(kms_file_lock(lock, false, &fd), 0);
    assert_int_equal(fd, -1);
    assert_false(kms_path_exists(lock));
    assert_int_equal(kms_file_lock(lock, true, &fd), 0);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(kms_file_lock(lock, false, &fd), 0);
    assert_true(fd >= 0);
    close(fd);
    /* Never through a symlink; a directory is refused too. */
    assert_int_equal(symlink(lock, link), 0);
    assert_kms_error(kms_file_lock(link, true, &fd), KMS_ERR_HOME);
    assert_int_equal(fd, -1);
    assert_kms_error(kms_file_lock(dir, false, &fd), KMS_ERR_HOME);
    assert_int_equal(fd, -1);
    free(link);
    free(lock);
    kms_test_rmrf(dir);
    free(dir);
}

static void strings_printf(void **state)
{
    (void)state;
    char *s = kms_strdup_printf("%s-%d-%zu", "a", -1, (size_t)7);
    assert_string_equal(s, "a--1-7");
    free(s);
}

/* ---- Errors -------------------------------------------------------------------------------- */

static int guarded(int inner)
{
    KMS_GUARD(inner);
    return 0;
}

static int ensured(bool cond)
{
    KMS_ENSURE(cond, KMS_ERR_LIMIT_EXCEEDED, "limit %d", 3);
    return 0;
}

static void error_raise_sets_code_and_message(void **state)
{
    (void)state;
    assert_int_equal(kms_last_error(), KMS_OK);
    assert_string_equal(kms_last_error_message(), "");
    assert_int_equal(kms_raise(KMS_ERR_NOT_FOUND, "key %s in %d", "k1", 42), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_NOT_FOUND);
    assert_string_equal(kms_last_error_message(), "key k1 in 42");
    /* The previous message may be an argument of the next one. */
    assert_int_equal(kms_raise(KMS_ERR_DISABLED, "wrapped: %s", kms_last_error_message()), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_DISABLED);
    assert_string_equal(kms_last_error_message(), "wrapped: key k1 in 42");
    kms_error_clear();
    assert_int_equal(kms_last_error(), KMS_OK);
    assert_string_equal(kms_last_error_message(), "");
}

static void error_long_message_truncated(void **state)
{
    (void)state;
    char big[2000];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(kms_raise(KMS_ERR_INTERNAL, "%s", big), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_INTERNAL);
    assert_int_equal(strlen(kms_last_error_message()), 511);
}

static void error_save_restore(void **state)
{
    (void)state;
    kms_saved_error e;
    kms_raise(KMS_ERR_INVALID_CIPHERTEXT, "the cause");
    kms_error_save(&e);
    kms_raise(KMS_ERR_HSM, "clean-up failed too");
    assert_int_equal(kms_last_error(), KMS_ERR_HSM);
    assert_int_equal(kms_error_restore(&e), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_INVALID_CIPHERTEXT);
    assert_string_equal(kms_last_error_message(), "the cause");
    /* A message with a % in it survives the round trip as text. */
    kms_raise(KMS_ERR_VALIDATION, "100%% %s", "sure");
    kms_error_save(&e);
    kms_error_clear();
    assert_int_equal(kms_error_restore(&e), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_string_equal(kms_last_error_message(), "100% sure");
}

static void error_guard_and_ensure(void **state)
{
    (void)state;
    assert_int_equal(guarded(0), 0);
    kms_raise(KMS_ERR_CONFLICT, "raised below");
    assert_kms_error(guarded(-1), KMS_ERR_CONFLICT); /* passes the error on untouched */
    assert_string_equal(kms_last_error_message(), "raised below");
    kms_error_clear();
    assert_int_equal(ensured(true), 0);
    assert_int_equal(kms_last_error(), KMS_OK);
    assert_kms_error(ensured(false), KMS_ERR_LIMIT_EXCEEDED);
    assert_string_equal(kms_last_error_message(), "limit 3");
}

static void error_names(void **state)
{
    (void)state;
    assert_string_equal(kms_error_name(KMS_OK), "OK");
    assert_string_equal(kms_error_name(KMS_ERR_NOT_FOUND), "NotFoundException");
    assert_string_equal(kms_error_name(KMS_ERR_INVALID_CIPHERTEXT), "InvalidCiphertextException");
    assert_string_equal(kms_error_name(KMS_ERR_VALIDATION), "ValidationException");
    assert_string_equal(kms_error_name(KMS_ERR_INTERNAL), "KMSInternalException");
    for (int c = 0; c < KMS_ERR__COUNT; c++) {
        assert_non_null(kms_error_name((kms_error)c));
        assert_true(strlen(kms_error_name((kms_error)c)) > 0);
    }
    /* Out of range: never NULL. */
    assert_string_equal(kms_error_name(KMS_ERR__COUNT), "KMSInternalException");
    assert_string_equal(kms_error_name((kms_error)-1), "KMSInternalException");
}

static void *raise_elsewhere(void *arg)
{
    (void)arg;
    kms_raise(KMS_ERR_ACCESS_DENIED, "other thread");
    return NULL;
}

static void error_is_per_thread(void **state)
{
    (void)state;
    pthread_t t;
    kms_raise(KMS_ERR_NOT_FOUND, "this thread");
    assert_int_equal(pthread_create(&t, NULL, raise_elsewhere, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(kms_last_error(), KMS_ERR_NOT_FOUND);
    assert_string_equal(kms_last_error_message(), "this thread");
}

/* StrictModes: a file of a home is the caller's own and writable by no one else. */
static void files_strict_modes(void **state)
{
    (void)state;
    char *dir = kms_test_tmpdir();
    char *path = kms_path_join(dir, "f");
    char *link = kms_path_join(dir, "link");
    char *missing = kms_path_join(dir, "missing");
    char *text = NULL;
    char want[8192];
    assert_int_equal(kms_file_write_atomic(path, "hello", 5, 0600), 0);
    assert_int_equal(kms_file_read_private(path, 100, &text, NULL), 0);
    assert_string_equal(text, "hello");
    free(text);
    text = NULL;
    assert_int_equal(kms_path_check_private(dir, true, false), 0);
    assert_int_equal(kms_path_check_private(missing, false, true), 0);
    assert_kms_error(kms_path_check_private(missing, false, false), KMS_ERR_HOME);
    assert_kms_error(kms_file_read_private(missing, 100, &text, NULL), KMS_ERR_NOT_FOUND);

    assert_int_equal(chmod(path, 0620), 0);
    assert_kms_error(kms_file_read_private(path, 100, &text, NULL), KMS_ERR_HOME);
    assert_null(text);
    snprintf(want, sizeof want,
             "%s is writable by group or others (mode 0620), who could change what this KMS "
             "home trusts; run `chmod go-w %s`",
             path, path);
    assert_string_equal(kms_last_error_message(), want);
    assert_int_equal(chmod(path, 0602), 0);
    assert_kms_error(kms_path_check_private(path, false, false), KMS_ERR_HOME);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(kms_path_check_private(path, false, false), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(path, 65534, (gid_t)-1), 0);
        assert_kms_error(kms_file_read_private(path, 100, &text, NULL), KMS_ERR_HOME);
        snprintf(want, sizeof want,
                 "%s is owned by uid 65534, not by this user (uid 0), who would trust what it "
                 "holds; if it is yours, run `chown 0 %s`, else use a KMS home of your own",
                 path, path);
        assert_string_equal(kms_last_error_message(), want);
        assert_int_equal(chown(path, 0, (gid_t)-1), 0);
    }
    /* A symlink is not followed, even to a good file. */
    assert_int_equal(symlink(path, link), 0);
    assert_kms_error(kms_file_read_private(link, 100, &text, NULL), KMS_ERR_HOME);
    assert_kms_error(kms_path_check_private(link, false, false), KMS_ERR_HOME);
    free(missing);
    free(link);
    free(path);
    kms_test_rmrf(dir);
    free(dir);
}

/* A module to load: absolute, and it and every directory above it trusted. */
static void files_trusted_module(void **state)
{
    (void)state;
    char *resolved = (char *)"x";
    assert_kms_error(kms_file_check_trusted("lib.so", "pkcs11_module", &resolved), KMS_ERR_HOME);
    assert_null(resolved);
    assert_string_equal(kms_last_error_message(),
                        "pkcs11_module must be an absolute path, not \"lib.so\" (a relative one "
                        "depends on the current directory)");
    assert_kms_error(kms_file_check_trusted("/no/such/lib.so", "m", &resolved), KMS_ERR_HOME);
    assert_kms_error(kms_file_check_trusted("/usr", "m", &resolved), KMS_ERR_HOME);
    /* /bin/sh: a symlink on some systems; the resolved path is what is checked and returned. */
    assert_int_equal(kms_file_check_trusted("/bin/sh", "m", &resolved), 0);
    assert_non_null(resolved);
    assert_int_equal(resolved[0], '/');
    free(resolved);
    /* A file of the caller's own, 0644, in a directory writable by its group: refused (someone
     * could swap it between the check and the load). */
    char *dir = kms_test_tmpdir();
    char *path = kms_path_join(dir, "m.so");
    char want[8192];
    assert_int_equal(kms_file_write_atomic(path, "x", 1, 0644), 0);
    assert_int_equal(chmod(dir, 0770), 0);
    assert_kms_error(kms_file_check_trusted(path, "m", &resolved), KMS_ERR_HOME);
    snprintf(want, sizeof want, "m: %s is writable by group or others (mode 0770)", dir);
    assert_non_null(strstr(kms_last_error_message(), want));
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(chmod(path, 0666), 0);
    assert_kms_error(kms_file_check_trusted(path, "m", &resolved), KMS_ERR_HOME);
    assert_non_null(strstr(kms_last_error_message(), "(mode 0666)"));
    free(path);
    kms_test_rmrf(dir);
    free(dir);
}

/* kms_time_iso8601's arithmetic against gmtime_r and strftime, which it replaces for years 1970
 * to 9999: the edges of days, months, leap years and centuries, and random times. */
static void iso8601_as_strftime(void **state)
{
    (void)state;
    int64_t edges[] = {0,          59,         60,         86399,        86400,
                       951782399,  951782400,  951868800,  4107542399,   4107542400,
                       1765065600, 1709164800, 1709251199, 253402300799, 253402300800,
                       -1,         -86400,     4102444800, 13569465600,  7258118400};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0] + 200000; i++) {
        int64_t t =
            i < sizeof edges / sizeof edges[0]
                ? edges[i]
                : (int64_t)(((uint64_t)random() << 31 | (uint64_t)random()) % 253402300800ULL);
        char got[32], want[32];
        time_t tt = (time_t)t;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
        kms_time_iso8601(t, got);
        if (strcmp(got, want) != 0) {
            fail_msg("%lld: %s, strftime %s", (long long)t, got, want);
        }
    }
}

/* The pool of non-secret random bytes (random.h): bytes never repeat within a thread, across
 * threads, or between a parent and the child it forked after filling its pool. */
static void *draw_16(void *arg)
{
    kms_random_public(arg, 16);
    return NULL;
}

static void random_public_never_repeats(void **state)
{
    (void)state;
    uint8_t a[16], b[16], t[16];
    kms_random_public(a, sizeof a); /* the pool is filled */
    kms_random_public(b, sizeof b);
    assert_memory_not_equal(a, b, 16);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, draw_16, t), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_memory_not_equal(t, b, 16);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t c[16];
        kms_random_public(c, sizeof c);
        _exit(write(fds[1], c, sizeof c) == (ssize_t)sizeof c ? 0 : 1);
    }
    uint8_t parent[16], child[16];
    kms_random_public(parent, sizeof parent);
    assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(fds[0]);
    close(fds[1]);
    assert_memory_not_equal(parent, child, 16);
    /* More than the pool holds at once, and more than a pool's draw. */
    uint8_t big[300];
    memset(big, 0, sizeof big);
    for (int i = 0; i < 200; i++) {
        kms_random_public(big, 200);
    }
    kms_random_public(big, sizeof big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(reader_exact_bounds, test_setup),
        cmocka_unit_test_setup(reader_one_byte_short, test_setup),
        cmocka_unit_test_setup(reader_huge_length_and_null, test_setup),
        cmocka_unit_test_setup(reader_be16_bytes_zero_length, test_setup),
        cmocka_unit_test_setup(reader_be16_bytes_max_length, test_setup),
        cmocka_unit_test_setup(reader_be16_bytes_beyond_end, test_setup),
        cmocka_unit_test_setup(reader_be16_bytes_truncated_length, test_setup),
        cmocka_unit_test_setup(reader_be16_bytes_in_sequence, test_setup),
        cmocka_unit_test_setup(writer_integers_and_bytes, test_setup),
        cmocka_unit_test_setup(writer_grows, test_setup),
        cmocka_unit_test_setup(writer_size_overflow, test_setup),
        cmocka_unit_test_setup(writer_be16_bytes, test_setup),
        cmocka_unit_test_setup(base64_rfc4648_vectors, test_setup),
        cmocka_unit_test_setup(base64_invalid_refused, test_setup),
        cmocka_unit_test_setup(uuid_text_form, test_setup),
        cmocka_unit_test_setup(random_public_never_repeats, test_setup),
        cmocka_unit_test_setup(iso8601_as_strftime, test_setup),
        cmocka_unit_test_setup(uuid_invalid_refused, test_setup),
        cmocka_unit_test_setup(uuid_new_is_version4, test_setup),
        cmocka_unit_test_setup(time_iso8601, test_setup),
        cmocka_unit_test_setup(secmem_sizes, test_setup),
        cmocka_unit_test_setup(secmem_wiped_on_free, test_setup),
        cmocka_unit_test_setup(files_read_write, test_setup),
        cmocka_unit_test_setup(files_lock, test_setup),
        cmocka_unit_test_setup(strings_printf, test_setup),
        cmocka_unit_test_setup(error_raise_sets_code_and_message, test_setup),
        cmocka_unit_test_setup(error_long_message_truncated, test_setup),
        cmocka_unit_test_setup(error_save_restore, test_setup),
        cmocka_unit_test_setup(error_guard_and_ensure, test_setup),
        cmocka_unit_test_setup(error_names, test_setup),
        cmocka_unit_test_setup(error_is_per_thread, test_setup),
        cmocka_unit_test_setup(files_strict_modes, test_setup),
        cmocka_unit_test_setup(files_trusted_module, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
