/* The envelope engine: the official ESDK decrypt vectors, round trips through every API and
 * suite, tampering and truncation, required encryption context, commitment policy, a
 * non-framed message built here from the specification, and re-encrypt. Raw AES keyrings keep
 * these tests free of the HSM; the KMS keyring is covered in test_keyring.c and kmsctl's
 * integration tests. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "envelope/esdk.h"
#include "envelope/message.h"
#include "kms/envelope.h"
#include "testutil.h"
#include "util/util.h"
#include "vectors.h"

static const uint8_t KEY_A[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t KEY_B[32] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                  9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 7};

static const kms_context_entry CTX_ENTRIES[] = {{"purpose", "test"}, {"app", "unit"}};
static const kms_encryption_context CTX = {CTX_ENTRIES, 2};

static kms_keyring *aes_keyring(const uint8_t *key, const char *name)
{
    kms_keyring *kr = kms_keyring_raw_aes_new("unit-tests", name, key, 32);
    assert_non_null(kr);
    return kr;
}

static uint8_t *random_bytes(size_t n)
{
    uint8_t *p = malloc(n + 1);
    assert_non_null(p);
    randombytes_buf(p, n);
    return p;
}

/* ---- Official vectors (aws-encryption-sdk-dafny test vectors) --------------------------------*/
#define JS_PLAINTEXT_SHA256 "2ecdb24688da7c013794f1e546d9527863eb5bd985ddcce303ecf75a796705f6"
static uint8_t *read_vector_file(const char *dir, const char *uri, size_t *len)
{
    assert_true(strncmp(uri, "file://", 7) == 0);
    char *path = kms_strdup_printf("%s/esdk/%s", dir, uri + 7);
    char *data = NULL;
    assert_int_equal(kms_file_read(path, 1u << 20, &data, len), 0);
    free(path);
    return (uint8_t *)data;
}

static void test_esdk_vectors(void **state)
{
    (void)state;
    json_t *manifest = kms_test_vectors_json("esdk/manifest.json");
    json_t *keys = kms_test_vectors_json("esdk/keys.json");
    char *dir = kms_test_vectors_dir();
    const char *name = NULL;
    json_t *t = NULL;
    size_t ran = 0;
    json_object_foreach(json_object_get(manifest, "tests"), name, t)
    {
        json_t *mk = json_array_get(json_object_get(t, "master-keys"), 0);
        const char *key_name = kms_test_json_str(mk, "key");
        json_t *key = json_object_get(json_object_get(keys, "keys"), key_name);
        uint8_t *material = NULL;
        size_t mlen = 0;
        assert_int_equal(
            kms_base64_decode(kms_test_json_str(key, "material"), "key", false, &material, &mlen),
            0);
        kms_keyring *kr = kms_keyring_raw_aes_new(kms_test_json_str(mk, "provider-id"),
                                                  kms_test_json_str(key, "key-id"), material, mlen);
        assert_non_null(kr);
        /* The manifest's context: the whole of it, stored or required-but-unstored. */
        json_t *ec = json_object_get(t, "encryption-context");
        kms_context_entry entries[8];
        size_t n = 0;
        const char *k = NULL;
        json_t *v = NULL;
        json_object_foreach(ec, k, v)
        {
            assert_true(n < 8);
            entries[n].key = k;
            entries[n].value = json_string_value(v);
            n++;
        }
        kms_encryption_context ctx = {entries, n};
        size_t ct_len = 0, pt_len = 0, want_len = 0;
        uint8_t *ct = read_vector_file(dir, kms_test_json_str(t, "ciphertext"), &ct_len);
        uint8_t *want = read_vector_file(
            dir,
            kms_test_json_str(json_object_get(json_object_get(t, "result"), "output"), "plaintext"),
            &want_len);
        bool committing = strncmp(name, "04", 2) == 0 || strncmp(name, "05", 2) == 0;

        kms_envelope_options o = {.keyring = kr, .context = &ctx};
        uint8_t *pt = NULL;
        kms_envelope_info info;
        int rc = kms_envelope_decrypt(&o, ct, ct_len, &pt, &pt_len, &info);
        if (!committing) {
            /* The default policy refuses messages without key commitment. */
            assert_kms_error(rc, KMS_ERR_INVALID_CIPHERTEXT);
            assert_non_null(strstr(kms_last_error_message(), "commitment"));
            o.commitment_policy = KMS_COMMIT_REQUIRE_ENCRYPT_ALLOW_DECRYPT;
            rc = kms_envelope_decrypt(&o, ct, ct_len, &pt, &pt_len, &info);
        }
        if (rc != 0) {
            fail_msg("%s: %s", name, kms_last_error_message());
        }
        /* The five required-encryption-context vectors decrypt to the manifest's plaintext.
         * The three default-CMM ones do not: the AWS Encryption SDK for JavaScript (4.x)
         * decrypts them to the same other 10240 bytes we get, whose SHA-256 is below
         * (tests/integration/test_interop_js.sh re-checks that agreement live). */
        assert_int_equal(pt_len, want_len);
        if (strstr(name, "cmm_Default") != NULL) {
            uint8_t digest[crypto_hash_sha256_BYTES];
            crypto_hash_sha256(digest, pt, pt_len);
            size_t expect_len = 0;
            uint8_t *expect = kms_test_hex(JS_PLAINTEXT_SHA256, &expect_len);
            assert_int_equal(expect_len, sizeof digest);
            assert_memory_equal(digest, expect, sizeof digest);
            free(expect);
        } else {
            assert_memory_equal(pt, want, want_len);
        }
        assert_int_equal(info.algorithm_suite, (uint16_t)strtoul(name, NULL, 16));
        assert_string_equal(info.key_provider_id, kms_test_json_str(mk, "provider-id"));
        kms_envelope_info_clean_up(&info);
        kms_secret_free(pt, pt_len);

        /* With the required-encryption-context CMM some pairs are not stored: without them the
         * message must not decrypt. */
        if (strstr(name, "RequiredEncryptionContext") != NULL) {
            kms_envelope_options none = o;
            none.context = NULL;
            assert_kms_error(kms_envelope_decrypt(&none, ct, ct_len, &pt, &pt_len, NULL),
                             KMS_ERR_INVALID_CIPHERTEXT);
            assert_null(pt);
        }
        /* A wrong value for a context key never decrypts. */
        kms_context_entry bad[8];
        memcpy(bad, entries, n * sizeof *bad);
        bad[0].value = "not-the-value";
        kms_encryption_context badctx = {bad, n};
        o.context = &badctx;
        assert_kms_error(kms_envelope_decrypt(&o, ct, ct_len, &pt, &pt_len, NULL),
                         KMS_ERR_INVALID_CIPHERTEXT);
        kms_keyring_free(kr);
        free(material);
        free(ct);
        free(want);
        ran++;
    }
    assert_int_equal(ran, 8);
    free(dir);
    json_decref(manifest);
    json_decref(keys);
}

/* ---- Round trips
 * -------------------------------------------------------------------------------*/
static int collect(void *arg, const uint8_t *p, size_t n)
{
    kms_buf *b = arg;
    return kms_buf_append(b, p, n);
}

/* Encrypts with the streaming API in pieces of `piece` bytes. */
static void stream_encrypt(const kms_envelope_options *o, const uint8_t *pt, size_t n, size_t piece,
                           kms_buf *out)
{
    kms_envelope_stream *s = kms_envelope_encrypt_start(o, n);
    assert_non_null(s);
    for (size_t off = 0; off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        assert_int_equal(kms_envelope_update(s, pt + off, k, collect, out), 0);
    }
    assert_int_equal(kms_envelope_final(s, collect, out, NULL), 0);
    kms_envelope_stream_free(s);
}

static int stream_decrypt(const kms_envelope_options *o, const uint8_t *ct, size_t n, size_t piece,
                          kms_buf *out)
{
    kms_envelope_stream *s = kms_envelope_decrypt_start(o);
    assert_non_null(s);
    int rc = -1;
    for (size_t off = 0; off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        if ((rc = kms_envelope_update(s, ct + off, k, collect, out)) != 0) {
            goto out;
        }
    }
    if ((rc = kms_envelope_final(s, collect, out, NULL)) != 0) {
        goto out;
    }
    rc = 0;
out:
    kms_envelope_stream_free(s);
    return rc;
}

/* A temporary file holding p. */
static int temp_fd_with(const uint8_t *p, size_t n)
{
    char path[] = "/tmp/kms-env-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    if (n > 0) {
        assert_int_equal(write(fd, p, n), (ssize_t)n);
    }
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static uint8_t *fd_contents(int fd, size_t *n)
{
    off_t end = lseek(fd, 0, SEEK_END);
    assert_true(end >= 0);
    uint8_t *p = malloc((size_t)end + 1);
    assert_non_null(p);
    assert_int_equal(pread(fd, p, (size_t)end, 0), end);
    *n = (size_t)end;
    return p;
}

static void round_trip(uint16_t suite, uint32_t frame, size_t size, unsigned threads)
{
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    kms_envelope_options o = {.keyring = kr,
                              .context = &CTX,
                              .algorithm_suite = suite,
                              .frame_length = frame,
                              .threads = threads};
    const kms_esdk_suite *s = kms_esdk_suite_get(suite != 0 ? suite : 0x0478);
    if (!s->commit) {
        o.commitment_policy = KMS_COMMIT_FORBID_ENCRYPT_ALLOW_DECRYPT;
    }
    uint8_t *pt = random_bytes(size);

    /* One-shot. */
    uint8_t *msg = NULL, *back = NULL;
    size_t msg_len = 0, back_len = 0;
    assert_int_equal(kms_envelope_encrypt(&o, pt, size, &msg, &msg_len), 0);
    kms_envelope_info info;
    assert_int_equal(kms_envelope_decrypt(&o, msg, msg_len, &back, &back_len, &info), 0);
    assert_int_equal(back_len, size);
    assert_memory_equal(back, pt, size);
    assert_int_equal(info.algorithm_suite, s->id);
    assert_int_equal(info.message_version, s->version);
    assert_int_equal(info.frame_length, frame != 0 ? frame : 4096);
    kms_envelope_info_clean_up(&info);
    kms_secret_free(back, back_len);

    /* The fd pipeline reads what the one-shot wrote and the other way round. */
    int in = temp_fd_with(msg, msg_len), out = temp_fd_with(NULL, 0);
    assert_int_equal(kms_envelope_decrypt_fd(&o, in, out, NULL), 0);
    uint8_t *got = fd_contents(out, &back_len);
    assert_int_equal(back_len, size);
    assert_memory_equal(got, pt, size);
    free(got);
    close(in);
    close(out);
    in = temp_fd_with(pt, size);
    out = temp_fd_with(NULL, 0);
    assert_int_equal(kms_envelope_encrypt_fd(&o, in, out), 0);
    size_t fd_msg_len = 0;
    uint8_t *fd_msg = fd_contents(out, &fd_msg_len);
    /* Same frames, same sizes; DER signatures vary in length: a byte or two mostly, one more
     * for each leading zero byte of r or s (1 in 256 each), so allow 8. */
    assert_true(fd_msg_len <= msg_len + 8 && msg_len <= fd_msg_len + 8);
    close(in);
    close(out);
    kms_buf b;
    kms_buf_init(&b, false);
    assert_int_equal(stream_decrypt(&o, fd_msg, fd_msg_len, 7, &b), 0);
    assert_int_equal(b.len, size);
    assert_memory_equal(b.data, pt, size);
    kms_buf_clean_up(&b);

    /* Streaming in odd pieces produces a message of the same shape. */
    kms_buf_init(&b, false);
    stream_encrypt(&o, pt, size, 1000, &b);
    assert_true(b.len <= msg_len + 8 && msg_len <= b.len + 8);
    kms_buf_clean_up(&b);

    free(fd_msg);
    kms_buffer_free(msg);
    free(pt);
    kms_keyring_free(kr);
}

static void test_round_trip_sizes(void **state)
{
    (void)state;
    const size_t frame = 4096;
    const size_t sizes[] = {0, 1, frame - 1, frame, frame + 1, 3 * 1024 * 1024 + 7};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        round_trip(0, 0, sizes[i], 0);
        round_trip(0x0578, 0, sizes[i], 2);
    }
}

static void test_round_trip_every_suite(void **state)
{
    (void)state;
    const uint16_t suites[] = {0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178,
                               0x0214, 0x0346, 0x0378, 0x0478, 0x0578};
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        round_trip(suites[i], 100, 1000, 2);
        round_trip(suites[i], 100, 1001, 1);
    }
}

static void test_round_trip_frames_and_threads(void **state)
{
    (void)state;
    round_trip(0, 1, 300, 3);                           /* one-byte frames */
    round_trip(0, 1024 * 1024 + 1, 3 * 1024 * 1024, 2); /* frames larger than a batch */
    round_trip(0, 65536, 1024 * 1024, 4);
    round_trip(0, 4096, 5 * 1024 * 1024 + 3, 1);
}

/* ---- Tampering and truncation
 * ------------------------------------------------------------------*/
static void assert_refused(const kms_envelope_options *o, const uint8_t *msg, size_t len)
{
    uint8_t *pt = (uint8_t *)"sentinel";
    size_t pt_len = 99;
    int rc = kms_envelope_decrypt(o, msg, len, &pt, &pt_len, NULL);
    assert_int_equal(rc, -1);
    assert_null(pt);
    assert_int_equal(pt_len, 0);
    /* A flip inside an encrypted data key's provider fields leaves no key for the keyring. */
    if (kms_last_error() != KMS_ERR_INVALID_CIPHERTEXT && kms_last_error() != KMS_ERR_NOT_FOUND) {
        fail_msg("refused with %s: %s", kms_error_name(kms_last_error()), kms_last_error_message());
    }
    /* The fd pipeline refuses too. */
    int in = temp_fd_with(msg, len), out = temp_fd_with(NULL, 0);
    assert_int_equal(kms_envelope_decrypt_fd(o, in, out, NULL), -1);
    close(in);
    close(out);
}

static void tamper_all(uint16_t suite)
{
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    kms_envelope_options o = {
        .keyring = kr, .context = &CTX, .algorithm_suite = suite, .frame_length = 64};
    uint8_t *pt = random_bytes(200);
    uint8_t *msg = NULL;
    size_t len = 0;
    assert_int_equal(kms_envelope_encrypt(&o, pt, 200, &msg, &len), 0);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            msg[i] ^= (uint8_t)(1u << bit);
            assert_refused(&o, msg, len);
            msg[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t cut = 0; cut < len; cut++) {
        assert_refused(&o, msg, cut);
    }
    /* Trailing bytes after the message. */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, msg, len);
    longer[len] = 0;
    assert_refused(&o, longer, len + 1);
    free(longer);
    free(pt);
    kms_buffer_free(msg);
    kms_keyring_free(kr);
}

static void test_tamper_every_bit_and_cut(void **state)
{
    (void)state;
    tamper_all(0x0478);
    tamper_all(0x0578);
}

static void test_reordered_and_duplicated_frames(void **state)
{
    (void)state;
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    kms_envelope_options o = {.keyring = kr, .frame_length = 64};
    uint8_t pt[200];
    randombytes_buf(pt, sizeof pt);
    uint8_t *msg = NULL;
    size_t len = 0;
    assert_int_equal(kms_envelope_encrypt(&o, pt, sizeof pt, &msg, &len), 0);
    kms_esdk_header h;
    kms_esdk_header_init(&h);
    assert_int_equal(kms_esdk_header_parse(msg, len, &h), 0);
    size_t body = h.total_len, reg = kms_msg_regular_frame_size(64);
    kms_esdk_header_clean_up(&h);
    /* Swap frames 1 and 2. */
    uint8_t *swapped = malloc(len);
    memcpy(swapped, msg, len);
    memcpy(swapped + body, msg + body + reg, reg);
    memcpy(swapped + body + reg, msg + body, reg);
    assert_refused(&o, swapped, len);
    /* Frame 1 twice, frame 2 dropped. */
    memcpy(swapped, msg, len);
    memcpy(swapped + body + reg, msg + body, reg);
    assert_refused(&o, swapped, len);
    /* Frame 2 dropped altogether. */
    memcpy(swapped, msg, body + reg);
    memcpy(swapped + body + reg, msg + body + 2 * reg, len - body - 2 * reg);
    assert_refused(&o, swapped, len - reg);
    free(swapped);
    kms_buffer_free(msg);
    kms_keyring_free(kr);
}

static void test_wrong_key_and_context(void **state)
{
    (void)state;
    kms_keyring *a = aes_keyring(KEY_A, "a");
    kms_keyring *b_same_name = aes_keyring(KEY_B, "a");
    kms_keyring *b = aes_keyring(KEY_B, "b");
    kms_envelope_options o = {.keyring = a, .context = &CTX};
    uint8_t *msg = NULL, *pt = NULL;
    size_t len = 0, pt_len = 0;
    assert_int_equal(kms_envelope_encrypt(&o, (const uint8_t *)"hello", 5, &msg, &len), 0);
    kms_envelope_options d = o;
    d.keyring = b;
    assert_int_equal(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL), -1);
    d.keyring = b_same_name;
    assert_int_equal(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL), -1);
    assert_null(pt);
    /* A context pair the message does not have is refused through the header tag. */
    const kms_context_entry extra[] = {{"purpose", "test"}, {"other", "x"}};
    kms_encryption_context extra_ctx = {extra, 2};
    d.keyring = a;
    d.context = &extra_ctx;
    assert_kms_error(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL),
                     KMS_ERR_INVALID_CIPHERTEXT);
    /* A subset of the stored context is enough. */
    const kms_context_entry subset[] = {{"app", "unit"}};
    kms_encryption_context sub_ctx = {subset, 1};
    d.context = &sub_ctx;
    assert_int_equal(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL), 0);
    kms_secret_free(pt, pt_len);
    /* The reserved context key is refused on encrypt. */
    const kms_context_entry reserved[] = {{"aws-crypto-anything", "x"}};
    kms_encryption_context res_ctx = {reserved, 1};
    kms_envelope_options r = {.keyring = a, .context = &res_ctx};
    uint8_t *m2 = NULL;
    assert_kms_error(kms_envelope_encrypt(&r, (const uint8_t *)"x", 1, &m2, &len),
                     KMS_ERR_VALIDATION);
    kms_buffer_free(msg);
    kms_keyring_free(a);
    kms_keyring_free(b);
    kms_keyring_free(b_same_name);
}

static void test_required_context(void **state)
{
    (void)state;
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    const char *required[] = {"purpose"};
    kms_envelope_options o = {.keyring = kr,
                              .context = &CTX,
                              .required_context_keys = required,
                              .required_context_key_count = 1};
    uint8_t *msg = NULL, *pt = NULL;
    size_t len = 0, pt_len = 0;
    assert_int_equal(kms_envelope_encrypt(&o, (const uint8_t *)"hello", 5, &msg, &len), 0);
    /* The required pair is not stored in the header. */
    kms_esdk_header h;
    kms_esdk_header_init(&h);
    assert_int_equal(kms_esdk_header_parse(msg, len, &h), 0);
    assert_null(kms_ec_get(&h.stored_ec, "purpose"));
    assert_string_equal(kms_ec_get(&h.stored_ec, "app"), "unit");
    kms_esdk_header_clean_up(&h);
    kms_envelope_options d = {.keyring = kr};
    assert_kms_error(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL),
                     KMS_ERR_INVALID_CIPHERTEXT);
    const kms_context_entry wrong[] = {{"purpose", "other"}};
    kms_encryption_context wrong_ctx = {wrong, 1};
    d.context = &wrong_ctx;
    assert_kms_error(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL),
                     KMS_ERR_INVALID_CIPHERTEXT);
    const kms_context_entry right[] = {{"purpose", "test"}};
    kms_encryption_context right_ctx = {right, 1};
    d.context = &right_ctx;
    kms_envelope_info info;
    assert_int_equal(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, &info), 0);
    assert_int_equal(pt_len, 5);
    assert_int_equal(info.context_count, 2);
    kms_envelope_info_clean_up(&info);
    kms_secret_free(pt, pt_len);
    /* A required key missing from the context is an encrypt error. */
    const char *missing[] = {"nope"};
    o.required_context_keys = missing;
    uint8_t *m2 = NULL;
    assert_kms_error(kms_envelope_encrypt(&o, (const uint8_t *)"x", 1, &m2, &len),
                     KMS_ERR_VALIDATION);
    kms_buffer_free(msg);
    kms_keyring_free(kr);
}

static void test_commitment_policy(void **state)
{
    (void)state;
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    kms_envelope_options o = {.keyring = kr, .algorithm_suite = 0x0178};
    uint8_t *msg = NULL, *pt = NULL;
    size_t len = 0, pt_len = 0;
    assert_kms_error(kms_envelope_encrypt(&o, (const uint8_t *)"x", 1, &msg, &len),
                     KMS_ERR_VALIDATION);
    o.commitment_policy = KMS_COMMIT_REQUIRE_ENCRYPT_ALLOW_DECRYPT;
    assert_kms_error(kms_envelope_encrypt(&o, (const uint8_t *)"x", 1, &msg, &len),
                     KMS_ERR_VALIDATION);
    o.commitment_policy = KMS_COMMIT_FORBID_ENCRYPT_ALLOW_DECRYPT;
    assert_int_equal(kms_envelope_encrypt(&o, (const uint8_t *)"x", 1, &msg, &len), 0);
    kms_envelope_options d = {.keyring = kr};
    assert_kms_error(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL),
                     KMS_ERR_INVALID_CIPHERTEXT);
    d.commitment_policy = KMS_COMMIT_REQUIRE_ENCRYPT_ALLOW_DECRYPT;
    assert_int_equal(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL), 0);
    kms_secret_free(pt, pt_len);
    kms_buffer_free(msg);
    /* FORBID refuses committing suites on encrypt. */
    o.algorithm_suite = 0;
    assert_kms_error(kms_envelope_encrypt(&o, (const uint8_t *)"x", 1, &msg, &len),
                     KMS_ERR_VALIDATION);
    kms_keyring_free(kr);
}

/* ---- A non-framed message, assembled here from message-header.md and message-body.md ---------*/
static void test_nonframed_from_spec(void **state)
{
    (void)state;
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    const kms_esdk_suite *suite = kms_esdk_suite_get(0x0178);
    kms_ec ec;
    assert_int_equal(kms_ec_from_public(&ec, &CTX), 0);
    kms_materials mat;
    assert_int_equal(kms_materials_init(&mat, suite, &ec), 0);
    assert_int_equal(((const struct kms_keyring *)kr)->vt->on_encrypt(kr, &mat), 0);

    kms_esdk_header h;
    kms_esdk_header_init(&h);
    h.version = 1;
    h.suite = suite;
    randombytes_buf(h.message_id, 16);
    assert_int_equal(kms_ec_copy(&h.stored_ec, &ec), 0);
    h.edks = mat.edks;
    mat.edks.v = NULL;
    mat.edks.n = 0;
    h.content_type = 1;
    h.frame_length = 0;
    kms_buf msg;
    kms_buf_init(&msg, false);
    assert_int_equal(kms_esdk_header_serialize_body(&h, &msg), 0);
    kms_esdk_keys keys;
    assert_int_equal(kms_esdk_derive(suite, mat.data_key, h.message_id, &keys), 0);
    kms_gcm g;
    assert_int_equal(kms_gcm_init(&g, keys.key, suite->key_len, true), 0);
    uint8_t iv[12] = {0}, tag[16];
    assert_int_equal(kms_gcm_seal(&g, iv, msg.data, msg.len, NULL, 0, NULL, tag), 0);
    assert_int_equal(kms_buf_append(&msg, iv, 12), 0);
    assert_int_equal(kms_buf_append(&msg, tag, 16), 0);
    /* Body: IV, 8-byte length, content, tag; AAD "AWSKMSEncryptionClient Single Block", seq 1. */
    const size_t n = 5000;
    uint8_t *pt = random_bytes(n);
    uint8_t *ct = malloc(n);
    uint8_t body_iv[12];
    randombytes_buf(body_iv, sizeof body_iv);
    uint8_t aad[KMS_ESDK_BODY_AAD_MAX];
    size_t aad_len = kms_esdk_body_aad(aad, h.message_id, 16, KMS_BODY_SINGLE, 1, n);
    assert_int_equal(kms_gcm_seal(&g, body_iv, aad, aad_len, pt, n, ct, tag), 0);
    assert_int_equal(kms_buf_append(&msg, body_iv, 12), 0);
    for (int i = 7; i >= 0; i--) {
        assert_int_equal(kms_buf_append_u8(&msg, (uint8_t)((uint64_t)n >> (8 * i))), 0);
    }
    assert_int_equal(kms_buf_append(&msg, ct, n), 0);
    assert_int_equal(kms_buf_append(&msg, tag, 16), 0);

    kms_envelope_options o = {.keyring = kr,
                              .context = &CTX,
                              .commitment_policy = KMS_COMMIT_REQUIRE_ENCRYPT_ALLOW_DECRYPT};
    uint8_t *back = NULL;
    size_t back_len = 0;
    kms_envelope_info info;
    assert_int_equal(kms_envelope_decrypt(&o, msg.data, msg.len, &back, &back_len, &info), 0);
    assert_int_equal(back_len, n);
    assert_memory_equal(back, pt, n);
    assert_int_equal(info.frame_length, 0);
    kms_envelope_info_clean_up(&info);
    kms_secret_free(back, back_len);
    /* And through the fd path. */
    int in = temp_fd_with(msg.data, msg.len), out = temp_fd_with(NULL, 0);
    assert_int_equal(kms_envelope_decrypt_fd(&o, in, out, NULL), 0);
    uint8_t *got = fd_contents(out, &back_len);
    assert_int_equal(back_len, n);
    assert_memory_equal(got, pt, n);
    free(got);
    close(in);
    close(out);
    /* A flipped content bit fails and releases nothing. */
    msg.data[msg.len - 20] ^= 1;
    assert_refused(&o, msg.data, msg.len);

    kms_gcm_clean_up(&g);
    free(pt);
    free(ct);
    kms_buf_clean_up(&msg);
    kms_esdk_header_clean_up(&h);
    kms_materials_clean_up(&mat);
    kms_ec_clean_up(&ec);
    kms_keyring_free(kr);
}

/* ---- Files and re-encrypt
 * ----------------------------------------------------------------------*/
static char *write_temp_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char *path = kms_strdup_printf("%s/%s", dir, name);
    assert_int_equal(kms_file_write_atomic(path, p, n, 0600), 0);
    return path;
}

static void reencrypt_case(uint16_t suite)
{
    char *dir = kms_test_tmpdir();
    kms_keyring *a = aes_keyring(KEY_A, "a");
    kms_keyring *b = aes_keyring(KEY_B, "b");
    kms_envelope_options o = {
        .keyring = a, .context = &CTX, .algorithm_suite = suite, .frame_length = 1000};
    const size_t n = 10000;
    uint8_t *pt = random_bytes(n);
    char *plain = write_temp_file(dir, "plain", pt, n);
    char *enc = kms_strdup_printf("%s/enc", dir);
    char *moved = kms_strdup_printf("%s/moved", dir);
    char *back = kms_strdup_printf("%s/back", dir);
    assert_int_equal(kms_envelope_encrypt_file(&o, plain, enc), 0);
    assert_int_equal(kms_envelope_reencrypt_file(&o, b, enc, moved), 0);

    kms_envelope_options d = {.keyring = b, .context = &CTX};
    assert_int_equal(kms_envelope_decrypt_file(&d, moved, back, NULL), 0);
    char *got = NULL;
    size_t got_len = 0;
    assert_int_equal(kms_file_read(back, n + 1, &got, &got_len), 0);
    assert_int_equal(got_len, n);
    assert_memory_equal(got, pt, n);
    free(got);
    /* The source key no longer opens it: a new data key and message id, nothing copied. */
    unlink(back);
    d.keyring = a;
    assert_kms_error(kms_envelope_decrypt_file(&d, moved, back, NULL), KMS_ERR_NOT_FOUND);
    assert_false(kms_path_exists(back));
    char *e1 = NULL, *e2 = NULL;
    size_t l1 = 0, l2 = 0;
    assert_int_equal(kms_file_read(enc, 1u << 20, &e1, &l1), 0);
    assert_int_equal(kms_file_read(moved, 1u << 20, &e2, &l2), 0);
    kms_esdk_header h1, h2;
    kms_esdk_header_init(&h1);
    kms_esdk_header_init(&h2);
    assert_int_equal(kms_esdk_header_parse((uint8_t *)e1, l1, &h1), 0);
    assert_int_equal(kms_esdk_header_parse((uint8_t *)e2, l2, &h2), 0);
    assert_memory_not_equal(h1.message_id, h2.message_id, 32);
    assert_int_equal(h2.suite->id, suite);
    assert_int_equal(h2.frame_length, 1000);
    assert_string_equal(kms_ec_get(&h2.stored_ec, "purpose"), "test");
    kms_esdk_header_clean_up(&h1);
    kms_esdk_header_clean_up(&h2);
    free(e1);
    free(e2);
    /* A tampered source is refused and leaves no output. */
    char *bad = kms_strdup_printf("%s/bad", dir);
    assert_int_equal(kms_file_read(enc, 1u << 20, &e1, &l1), 0);
    e1[l1 - 40] ^= 1;
    char *tampered = write_temp_file(dir, "tampered", (uint8_t *)e1, l1);
    assert_kms_error(kms_envelope_reencrypt_file(&o, b, tampered, bad), KMS_ERR_INVALID_CIPHERTEXT);
    assert_false(kms_path_exists(bad));
    free(e1);
    free(bad);
    free(tampered);

    /* A failed decrypt to a file leaves nothing; a tampered message neither. */
    kms_keyring *c = aes_keyring(KEY_B, "c");
    d.keyring = c;
    assert_int_equal(kms_envelope_decrypt_file(&d, enc, back, NULL), -1);
    assert_false(kms_path_exists(back));

    kms_keyring_free(a);
    kms_keyring_free(b);
    kms_keyring_free(c);
    free(pt);
    free(plain);
    free(enc);
    free(moved);
    free(back);
    kms_test_rmrf(dir);
    free(dir);
}

static void test_reencrypt(void **state)
{
    (void)state;
    reencrypt_case(0x0478);
    reencrypt_case(0x0578);
}

/* decrypt.md: with a signed suite the final frame is not released before the signature. */
static void test_signed_final_frame_held(void **state)
{
    (void)state;
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    kms_envelope_options o = {.keyring = kr, .algorithm_suite = 0x0578, .frame_length = 1000};
    uint8_t *pt = random_bytes(10500);
    uint8_t *msg = NULL;
    size_t len = 0;
    assert_int_equal(kms_envelope_encrypt(&o, pt, 10500, &msg, &len), 0);
    msg[len - 1] ^= 1; /* the signature */
    kms_buf b;
    kms_buf_init(&b, false);
    assert_kms_error(stream_decrypt(&o, msg, len, 333, &b), KMS_ERR_INVALID_CIPHERTEXT);
    assert_int_equal(b.len, 10000); /* ten regular frames, not the final 500 bytes */
    kms_buf_clean_up(&b);
    int in = temp_fd_with(msg, len), out = temp_fd_with(NULL, 0);
    assert_kms_error(kms_envelope_decrypt_fd(&o, in, out, NULL), KMS_ERR_INVALID_CIPHERTEXT);
    size_t got_len = 0;
    uint8_t *got = fd_contents(out, &got_len);
    assert_true(got_len <= 10000);
    free(got);
    close(in);
    close(out);
    free(pt);
    kms_buffer_free(msg);
    kms_keyring_free(kr);
}

static void test_stream_misuse_and_empty(void **state)
{
    (void)state;
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    kms_envelope_options o = {.keyring = kr};
    kms_buf b;
    kms_buf_init(&b, false);
    kms_envelope_stream *s = kms_envelope_encrypt_start(&o, UINT64_MAX);
    assert_non_null(s);
    assert_int_equal(kms_envelope_final(s, collect, &b, NULL), 0);
    assert_kms_error(kms_envelope_final(s, collect, &b, NULL), KMS_ERR_VALIDATION);
    assert_kms_error(kms_envelope_update(s, (const uint8_t *)"x", 1, collect, &b),
                     KMS_ERR_VALIDATION);
    kms_envelope_stream_free(s);
    kms_buf_clean_up(&b);
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    assert_kms_error(kms_envelope_decrypt(&o, (const uint8_t *)"\x02", 1, &pt, &pt_len, NULL),
                     KMS_ERR_INVALID_CIPHERTEXT);
    assert_kms_error(kms_envelope_decrypt(&o, (const uint8_t *)"", 0, &pt, &pt_len, NULL),
                     KMS_ERR_INVALID_CIPHERTEXT);
    int in = temp_fd_with(NULL, 0), out = temp_fd_with(NULL, 0);
    assert_kms_error(kms_envelope_decrypt_fd(&o, in, out, NULL), KMS_ERR_INVALID_CIPHERTEXT);
    close(in);
    close(out);
    kms_keyring_free(kr);
}

static void test_bad_options(void **state)
{
    (void)state;
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    uint8_t *msg = NULL;
    size_t len = 0;
    kms_envelope_options o = {.keyring = kr, .frame_length = 17u * 1024 * 1024};
    assert_kms_error(kms_envelope_encrypt(&o, (const uint8_t *)"x", 1, &msg, &len),
                     KMS_ERR_VALIDATION);
    o.frame_length = 0;
    o.algorithm_suite = 0x0999;
    assert_kms_error(kms_envelope_encrypt(&o, (const uint8_t *)"x", 1, &msg, &len),
                     KMS_ERR_VALIDATION);
    kms_envelope_options none = {0};
    assert_kms_error(kms_envelope_encrypt(&none, (const uint8_t *)"x", 1, &msg, &len),
                     KMS_ERR_VALIDATION);
    uint16_t id = 0;
    assert_int_equal(kms_suite_parse("0x0578", &id), 0);
    assert_int_equal(id, 0x0578);
    assert_int_equal(kms_suite_parse("ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY", &id), 0);
    assert_int_equal(id, 0x0478);
    assert_kms_error(kms_suite_parse("0x9999", &id), KMS_ERR_VALIDATION);
    kms_keyring_free(kr);
}

/* ---- Encrypted data key limit (envelope.h KMS_ENVELOPE_DEFAULT_MAX_EDKS) --------------------*/

/* Counts the OnDecrypt calls of an inner keyring. */
typedef struct counting_keyring {
    kms_keyring base;
    const kms_keyring *inner;
    int calls;
} counting_keyring;

static int counting_on_decrypt(const kms_keyring *kr, kms_materials *m, const kms_edk_list *edks)
{
    counting_keyring *k = (counting_keyring *)kr; /* the test's own, not shared */
    k->calls++;
    return k->inner->vt->on_decrypt(k->inner, m, edks);
}

static const kms_keyring_vtable COUNTING_VT = {.name = "counting",
                                               .on_decrypt = counting_on_decrypt};

/* Ten encrypted data keys by default, both ways; a message over the limit is refused before its
 * keyring is asked for anything. */
static void test_edk_limit_default(void **state)
{
    (void)state;
    kms_keyring *children[10];
    char name[8];
    for (size_t i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "k%zu", i + 1);
        children[i] = aes_keyring(KEY_B, name);
    }
    kms_keyring *eleven = kms_keyring_multi_new(aes_keyring(KEY_A, "k0"), children, 10);
    assert_non_null(eleven);
    kms_keyring *k0 = aes_keyring(KEY_A, "k0");
    counting_keyring counting = {.base.vt = &COUNTING_VT, .inner = k0};
    uint8_t *msg = NULL, *pt = NULL;
    size_t len = 0, pt_len = 0;

    kms_envelope_options o = {.keyring = eleven};
    assert_kms_error(kms_envelope_encrypt(&o, (const uint8_t *)"x", 1, &msg, &len),
                     KMS_ERR_LIMIT_EXCEEDED);
    assert_string_equal(kms_last_error_message(),
                        "11 encrypted data keys exceed the maximum of 10 per message: raise "
                        "max_encrypted_data_keys (kmsctl: --max-encrypted-data-keys), and on "
                        "decrypt too");
    assert_null(msg);
    o.max_encrypted_data_keys = 11;
    assert_int_equal(kms_envelope_encrypt(&o, (const uint8_t *)"x", 1, &msg, &len), 0);

    kms_envelope_options d = {.keyring = &counting.base};
    assert_kms_error(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL),
                     KMS_ERR_LIMIT_EXCEEDED);
    assert_string_equal(kms_last_error_message(),
                        "the message has 11 encrypted data keys, more than the maximum of 10: "
                        "refused before trying any (raise max_encrypted_data_keys, kmsctl: "
                        "--max-encrypted-data-keys, only for messages you expect to have that "
                        "many)");
    assert_null(pt);
    assert_int_equal(counting.calls, 0);
    d.max_encrypted_data_keys = 10;
    assert_kms_error(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL),
                     KMS_ERR_LIMIT_EXCEEDED);
    assert_int_equal(counting.calls, 0);
    /* 11 accepts it; so does UINT16_MAX, every count the format can hold. */
    static const uint16_t enough[] = {11, UINT16_MAX};
    for (size_t i = 0; i < 2; i++) {
        d.max_encrypted_data_keys = enough[i];
        assert_int_equal(kms_envelope_decrypt(&d, msg, len, &pt, &pt_len, NULL), 0);
        assert_int_equal(pt_len, 1);
        kms_secret_free(pt, pt_len);
        pt = NULL;
    }
    assert_int_equal(counting.calls, 2);
    kms_buffer_free(msg);
    kms_keyring_free(k0);
    kms_keyring_free(eleven);
}

/* ---- Length-prefixed fields (message-header.md, message-footer.md) ---------------------------*/

/* The header parse of msg cut to n bytes: 1 (more needed) and an empty header. */
static void assert_needs_more(const uint8_t *msg, size_t n)
{
    kms_esdk_header h;
    kms_esdk_header_init(&h);
    assert_int_equal(kms_esdk_header_parse(msg, n, &h), 1);
    assert_null(h.suite);
    assert_int_equal(h.stored_ec.n, 0);
    assert_int_equal(h.edks.n, 0);
    kms_esdk_header_clean_up(&h);
}

static void test_header_length_fields(void **state)
{
    (void)state;
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    kms_envelope_options o = {.keyring = kr, .context = &CTX, .frame_length = 64};
    uint8_t *msg = NULL;
    size_t len = 0;
    assert_int_equal(kms_envelope_encrypt(&o, (const uint8_t *)"hello", 5, &msg, &len), 0);
    kms_esdk_header h;
    kms_esdk_header_init(&h);
    assert_int_equal(kms_esdk_header_parse(msg, len, &h), 0);
    size_t total = h.total_len;
    kms_esdk_header_clean_up(&h);
    /* Every cut of the header, inside a length or inside the bytes it counts, asks for more. */
    for (size_t cut = 0; cut < total; cut++) {
        assert_needs_more(msg, cut);
    }
    /* Version 2: version, suite id, 32-byte message id, then the AAD length, the pair count and
     * the first key's length. */
    const size_t aad_len_at = 1 + 2 + 32, first_key_len_at = aad_len_at + 2 + 2;
    size_t aad_len = (size_t)msg[aad_len_at] << 8 | msg[aad_len_at + 1];
    uint8_t *bad = malloc(len);
    assert_non_null(bad);
    /* An AAD length beyond the end of the input: truncated, more may come. */
    memcpy(bad, msg, len);
    bad[aad_len_at] = 0xFF;
    bad[aad_len_at + 1] = 0xFF;
    assert_needs_more(bad, len);
    /* A key length beyond the end of the AAD: the AAD is whole, so the header is malformed. */
    memcpy(bad, msg, len);
    bad[first_key_len_at] = 0xFF;
    bad[first_key_len_at + 1] = 0xFF;
    kms_esdk_header_init(&h);
    assert_kms_error(kms_esdk_header_parse(bad, len, &h), KMS_ERR_INVALID_CIPHERTEXT);
    assert_string_equal(kms_last_error_message(),
                        "message header: encryption context pair 1 is truncated");
    kms_esdk_header_clean_up(&h);
    /* A provider id length beyond the end of the input: truncated. */
    const size_t id_len_at = aad_len_at + 2 + aad_len + 2;
    memcpy(bad, msg, len);
    bad[id_len_at] = 0xFF;
    bad[id_len_at + 1] = 0xFF;
    assert_needs_more(bad, len);
    free(bad);
    kms_buffer_free(msg);
    kms_keyring_free(kr);
}

static void test_footer_length(void **state)
{
    (void)state;
    kms_keyring *kr = aes_keyring(KEY_A, "a");
    kms_envelope_options o = {.keyring = kr, .algorithm_suite = 0x0578, .frame_length = 64};
    uint8_t *msg = NULL;
    size_t len = 0;
    assert_int_equal(kms_envelope_encrypt(&o, (const uint8_t *)"hello", 5, &msg, &len), 0);
    /* message-footer.md: a be16 signature length, then the DER signature, at the very end. */
    size_t sig_len = 0;
    for (size_t l = 8; l < 120; l++) {
        if (((size_t)msg[len - 2 - l] << 8 | msg[len - 1 - l]) == l) {
            sig_len = l;
            break;
        }
    }
    assert_true(sig_len > 0);
    uint8_t *pt = (uint8_t *)"sentinel";
    size_t pt_len = 99;
    kms_envelope_info info;
    memset(&info, 0xA5, sizeof info); /* cleared on entry, and stays so on failure */
    /* One byte more than there is: the signature is incomplete. */
    msg[len - 1 - sig_len]++;
    assert_kms_error(kms_envelope_decrypt(&o, msg, len, &pt, &pt_len, &info),
                     KMS_ERR_INVALID_CIPHERTEXT);
    assert_string_equal(kms_last_error_message(),
                        "the message is truncated: its signature is missing or incomplete");
    assert_null(pt);
    assert_int_equal(pt_len, 0);
    assert_null(info.context);
    assert_int_equal(info.context_count, 0);
    assert_null(info.key_provider_id);
    int in = temp_fd_with(msg, len), out = temp_fd_with(NULL, 0);
    assert_kms_error(kms_envelope_decrypt_fd(&o, in, out, NULL), KMS_ERR_INVALID_CIPHERTEXT);
    assert_string_equal(kms_last_error_message(),
                        "the message is truncated: its signature is missing or incomplete");
    close(in);
    close(out);
    /* One byte less: the last byte is left over after a signature that does not verify. */
    msg[len - 1 - sig_len] -= 2;
    assert_kms_error(kms_envelope_decrypt(&o, msg, len, &pt, &pt_len, NULL),
                     KMS_ERR_INVALID_CIPHERTEXT);
    msg[len - 1 - sig_len]++;
    assert_int_equal(kms_envelope_decrypt(&o, msg, len, &pt, &pt_len, &info), 0);
    assert_int_equal(pt_len, 5);
    assert_memory_equal(pt, "hello", 5);
    assert_int_equal(info.algorithm_suite, 0x0578);
    kms_envelope_info_clean_up(&info);
    kms_secret_free(pt, pt_len);
    kms_buffer_free(msg);
    kms_keyring_free(kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_esdk_vectors),
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_round_trip_every_suite),
        cmocka_unit_test(test_round_trip_frames_and_threads),
        cmocka_unit_test(test_tamper_every_bit_and_cut),
        cmocka_unit_test(test_reordered_and_duplicated_frames),
        cmocka_unit_test(test_wrong_key_and_context),
        cmocka_unit_test(test_required_context),
        cmocka_unit_test(test_commitment_policy),
        cmocka_unit_test(test_nonframed_from_spec),
        cmocka_unit_test(test_reencrypt),
        cmocka_unit_test(test_signed_final_frame_held),
        cmocka_unit_test(test_stream_misuse_and_empty),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_edk_limit_default),
        cmocka_unit_test(test_header_length_fields),
        cmocka_unit_test(test_footer_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
