/* Fuzzes envelope decrypt end to end (envelope/stream.c over esdk.c and message.c): one untrusted
 * message through the one-shot call and through the streaming API fed in pieces, with a fixed
 * raw AES keyring (namespace "fuzz", name "k", key bytes 0x00..0x1f; the seeds in
 * corpus/envelope_decrypt/ are real messages under that key).
 *
 * The first input byte chooses the options, the rest is the message:
 *   bit 0     the commitment policy: REQUIRE_ENCRYPT_ALLOW_DECRYPT when set, otherwise
 *             REQUIRE_ENCRYPT_REQUIRE_DECRYPT
 *   bit 1     pass the encryption context {"a": "b"}
 *   bits 2-5  the size of the streaming pieces (PIECES below)
 *
 * Invariants (envelope.h):
 *  - the one-shot call and the stream agree on success or failure, and fail with the same error;
 *  - a failed one-shot hands back no plaintext (NULL, length 0);
 *  - on success both give the same plaintext;
 *  - a failure is InvalidCiphertextException, NotFoundException, ValidationException or
 *    LimitExceededException (never KMSInternalException: that would be a bug or an OOM). */
#include <stdbool.h>
#include <string.h>

#include "fuzz_common.h"
#include "kms/envelope.h"
#include "kms/kms.h"
#include "util/util.h"

/* Bigger messages only repeat frames and slow each run down. */
#define MAX_MESSAGE (64u * 1024)

static const size_t PIECES[16] = {1,  2,  3,  4,   5,   7,    8,    13,
                                  16, 31, 64, 100, 255, 1000, 4096, MAX_MESSAGE};

static kms_keyring *keyring;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    uint8_t key[32];
    for (size_t i = 0; i < sizeof key; i++) {
        key[i] = (uint8_t)i;
    }
    FUZZ_CHECK(kms_util_init() == 0);
    keyring = kms_keyring_raw_aes_new("fuzz", "k", key, sizeof key);
    FUZZ_CHECK(keyring != NULL);
    return 0;
}

/* Collects what the stream releases. */
typedef struct sink {
    uint8_t *data;
    size_t len;
    size_t cap;
} sink;

static int sink_write(void *arg, const uint8_t *p, size_t n)
{
    sink *s = arg;
    FUZZ_CHECK(n > 0 && p != NULL);
    if (s->len + n > s->cap) {
        size_t cap = s->cap != 0 ? s->cap : 256;
        while (cap < s->len + n) {
            cap *= 2;
        }
        uint8_t *grown = realloc(s->data, cap);
        FUZZ_CHECK(grown != NULL);
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    return 0;
}

static bool allowed_error(kms_error e)
{
    return e == KMS_ERR_INVALID_CIPHERTEXT || e == KMS_ERR_NOT_FOUND || e == KMS_ERR_VALIDATION ||
           e == KMS_ERR_LIMIT_EXCEEDED;
}

/* The streaming API in pieces of piece bytes; 0 or -1, *err the error of a failure. */
static int decrypt_stream(const kms_envelope_options *o, const uint8_t *msg, size_t len,
                          size_t piece, sink *out, kms_error *err)
{
    kms_envelope_stream *s = kms_envelope_decrypt_start(o);
    FUZZ_CHECK(s != NULL);
    int r = 0;
    for (size_t off = 0; r == 0 && off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        r = kms_envelope_update(s, msg + off, n, sink_write, out);
    }
    if (r == 0) {
        kms_envelope_info info;
        r = kms_envelope_final(s, sink_write, out, &info);
        if (r == 0) {
            FUZZ_CHECK(info.message_version == 1 || info.message_version == 2);
            kms_envelope_info_clean_up(&info);
        }
    }
    *err = r != 0 ? kms_last_error() : KMS_OK;
    kms_envelope_stream_free(s);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > MAX_MESSAGE) {
        return 0;
    }
    const uint8_t opt = data[0];
    const uint8_t *msg = data + 1;
    const size_t len = size - 1;

    static const kms_context_entry pair = {"a", "b"};
    const kms_encryption_context ctx = {&pair, 1};
    kms_envelope_options o = {0};
    o.keyring = keyring;
    o.commitment_policy = (opt & 1) != 0 ? KMS_COMMIT_REQUIRE_ENCRYPT_ALLOW_DECRYPT
                                         : KMS_COMMIT_REQUIRE_ENCRYPT_REQUIRE_DECRYPT;
    o.context = (opt & 2) != 0 ? &ctx : NULL;
    const size_t piece = PIECES[(opt >> 2) & 15];

    /* (a) one-shot */
    uint8_t *pt = (uint8_t *)"sentinel";
    size_t pt_len = 12345;
    int r1 = kms_envelope_decrypt(&o, msg, len, &pt, &pt_len, NULL);
    kms_error e1 = r1 != 0 ? kms_last_error() : KMS_OK;
    if (r1 != 0) {
        FUZZ_CHECK(r1 == -1);
        FUZZ_CHECK(pt == NULL && pt_len == 0);
        FUZZ_CHECK(allowed_error(e1));
    } else {
        FUZZ_CHECK(pt != NULL);
    }

    /* (b) streaming, in pieces */
    sink out = {0};
    kms_error e2 = KMS_OK;
    int r2 = decrypt_stream(&o, msg, len, piece, &out, &e2);
    if (r2 != 0) {
        FUZZ_CHECK(r2 == -1);
        FUZZ_CHECK(allowed_error(e2));
    }

    FUZZ_CHECK((r1 == 0) == (r2 == 0));
    if (r1 != 0 && e1 != e2) {
        fprintf(stderr, "one-shot failed with %s, the stream with %s\n", kms_error_name(e1),
                kms_error_name(e2));
    }
    FUZZ_CHECK(e1 == e2);
    if (r1 == 0) {
        FUZZ_CHECK(pt_len == out.len);
        FUZZ_CHECK(pt_len == 0 || memcmp(pt, out.data, pt_len) == 0);
        kms_secret_free(pt, pt_len);
    }
    free(out.data);
    return 0;
}
