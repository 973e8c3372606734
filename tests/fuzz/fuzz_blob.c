/* Fuzzes the two binary forms of keystore/blob.c on the same input:
 *
 *  1. kms_blob_parse on the raw bytes. On success the parsed view must describe the input
 *     exactly (layout of blob.h, every pointer inside the input, version >= 1) and the header must
 *     be what kms_blob_write_header writes for the parsed key id and version; on failure the error
 *     is InvalidCiphertextException (or ValidationException for an oversized blob).
 *  2. kms_blob_context_canonical on the input read as NUL-separated key, value, key, value, ...
 *     strings. The expected outcome is computed independently: ValidationException for an empty
 *     key, a duplicate key or more than KMS_MAX_CONTEXT_BYTES of canonical form; otherwise the
 *     canonical bytes are read back with a reader of this file and must hold exactly the input's
 *     entries in ascending byte order of the key. */
#include <stdbool.h>
#include <string.h>

#include "fuzz_common.h"
#include "keystore/blob.h"
#include "util/buf.h"
#include "util/util.h"

/* More pairs only repeat what 64 already exercise and slow each run down. */
#define MAX_PAIRS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FUZZ_CHECK(kms_util_init() == 0);
    return 0;
}

static void check_blob(const uint8_t *data, size_t size)
{
    kms_blob b;
    if (kms_blob_parse(data, size, &b) != 0) {
        kms_error e = kms_last_error();
        FUZZ_CHECK(e == KMS_ERR_INVALID_CIPHERTEXT ||
                   (e == KMS_ERR_VALIDATION && size > KMS_MAX_BLOB));
        return;
    }
    FUZZ_CHECK(size <= KMS_MAX_BLOB);
    FUZZ_CHECK(b.ciphertext_len + KMS_BLOB_OVERHEAD == size);
    FUZZ_CHECK(data[0] == KMS_BLOB_VERSION);
    FUZZ_CHECK(b.key_version >= 1);
    FUZZ_CHECK(b.header == data);
    FUZZ_CHECK(b.iv == data + KMS_BLOB_HEADER_LEN);
    FUZZ_CHECK(b.ciphertext == b.iv + KMS_BLOB_IV_LEN);
    FUZZ_CHECK(b.tag == b.ciphertext + b.ciphertext_len);
    FUZZ_CHECK(b.tag + KMS_BLOB_TAG_LEN == data + size);
    FUZZ_CHECK(strlen(b.key_id) == KMS_UUID_STR_LEN);

    /* The header round-trips through the writer. */
    kms_buf header;
    kms_buf_init(&header, false);
    FUZZ_CHECK(kms_blob_write_header(&header, b.key_id, b.key_version) == 0);
    FUZZ_CHECK(header.len == KMS_BLOB_HEADER_LEN);
    FUZZ_CHECK(memcmp(header.data, b.header, KMS_BLOB_HEADER_LEN) == 0);
    kms_buf_clean_up(&header);
}

/* ---- Encryption context ---------------------------------------------------------------------*/

static int entry_key_cmp(const void *a, const void *b)
{
    const kms_context_entry *x = a;
    const kms_context_entry *y = b;
    return strcmp(x->key, y->key);
}

/* A reader of the canonical form written independently of util/buf.c. */
typedef struct canon_reader {
    const uint8_t *p;
    size_t left;
} canon_reader;

static bool canon_be16(canon_reader *r, size_t *v)
{
    if (r->left < 2) {
        return false;
    }
    *v = (size_t)r->p[0] << 8 | r->p[1];
    r->p += 2;
    r->left -= 2;
    return true;
}

static bool canon_string(canon_reader *r, const uint8_t **s, size_t *len)
{
    if (!canon_be16(r, len) || r->left < *len) {
        return false;
    }
    *s = r->p;
    r->p += *len;
    r->left -= *len;
    return true;
}

/* Compares a length-delimited byte string with a C string, by unsigned bytes like strcmp. */
static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* The canonical form holds exactly the (sorted, unique) entries and nothing else. */
static void check_canonical(const kms_buf *out, const kms_context_entry *sorted, size_t count)
{
    canon_reader r = {out->data, out->len};
    size_t n = 0;
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    FUZZ_CHECK(canon_be16(&r, &n));
    FUZZ_CHECK(n == count);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k = NULL;
        const uint8_t *v = NULL;
        size_t kl = 0;
        size_t vl = 0;
        FUZZ_CHECK(canon_string(&r, &k, &kl));
        FUZZ_CHECK(canon_string(&r, &v, &vl));
        FUZZ_CHECK(kl > 0);
        FUZZ_CHECK(memchr(k, '\0', kl) == NULL && memchr(v, '\0', vl) == NULL);
        if (prev != NULL) {
            FUZZ_CHECK(bytes_cmp(prev, prev_len, k, kl) < 0); /* strictly ascending */
        }
        FUZZ_CHECK(kl == strlen(sorted[i].key) && memcmp(k, sorted[i].key, kl) == 0);
        FUZZ_CHECK(vl == strlen(sorted[i].value) && memcmp(v, sorted[i].value, vl) == 0);
        prev = k;
        prev_len = kl;
    }
    FUZZ_CHECK(r.left == 0);
}

static void check_context(const uint8_t *data, size_t size)
{
    /* NUL-terminated copy, so that the last string ends even when the input does not. */
    char *text = malloc(size + 1);
    kms_context_entry entries[MAX_PAIRS];
    kms_context_entry sorted[MAX_PAIRS];
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    size_t count = 0;
    size_t pos = 0;
    while (count < MAX_PAIRS && pos < size) {
        const char *key = text + pos;
        pos += strlen(key) + 1;
        if (pos > size) {
            break; /* a key without a value */
        }
        const char *value = text + pos;
        pos += strlen(value) + 1;
        entries[count].key = key;
        entries[count].value = value;
        count++;
    }

    /* Expected outcome, from the rules of blob.h. */
    bool valid = true;
    size_t total = 2;
    for (size_t i = 0; i < count; i++) {
        total += 4 + strlen(entries[i].key) + strlen(entries[i].value);
        if (entries[i].key[0] == '\0') {
            valid = false;
        }
    }
    if (total > KMS_MAX_CONTEXT_BYTES) {
        valid = false;
    }
    memcpy(sorted, entries, count * sizeof *entries);
    qsort(sorted, count, sizeof *sorted, entry_key_cmp);
    for (size_t i = 1; i < count; i++) {
        if (strcmp(sorted[i - 1].key, sorted[i].key) == 0) {
            valid = false; /* a duplicate key */
        }
    }

    kms_encryption_context ctx = {entries, count};
    kms_buf out;
    kms_buf_init(&out, false);
    int rc = kms_blob_context_canonical(&ctx, &out);
    if (valid) {
        FUZZ_CHECK(rc == 0);
        check_canonical(&out, sorted, count);
    } else {
        FUZZ_CHECK(rc != 0);
        FUZZ_CHECK(kms_last_error() == KMS_ERR_VALIDATION);
    }
    kms_buf_clean_up(&out);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_blob(data, size);
    check_context(data, size);
    return 0;
}
