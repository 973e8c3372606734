/* Fuzzes the ESDK message header parser of envelope/esdk.c (data-format/message-header.md), the
 * first thing decrypt reads from an untrusted message:
 *
 *  - 0 (parsed): the header is self-consistent (suite of the header's version, content type and
 *    frame length agree, stored context sorted and unique, at least one EDK, body and
 *    authentication lengths as the version fixes them) and kms_esdk_header_serialize_body gives
 *    back exactly the input's first body_len bytes: the format has a single encoding, so any
 *    other bytes mean the parser accepted something it then represents differently. The header
 *    cut one byte short must then ask for more (1), not be called malformed.
 *  - 1 (needs more): nothing is left in the header and the input is under the size limit.
 *  - -1: InvalidCiphertextException, and nothing is left in the header. */
#include <stdbool.h>
#include <string.h>

#include "envelope/esdk.h"
#include "fuzz_common.h"
#include "kms/kms.h"
#include "util/buf.h"
#include "util/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FUZZ_CHECK(kms_util_init() == 0);
    return 0;
}

static bool header_empty(const kms_esdk_header *h)
{
    return h->suite == NULL && h->stored_ec.n == 0 && h->stored_ec.e == NULL && h->edks.n == 0 &&
           h->edks.v == NULL;
}

/* Stored context keys strictly ascending by bytes, which is what "sorted and unique" means for
 * NUL-free keys (message-header.md Key Value Pair Entries). */
static void check_context(const kms_ec *ec)
{
    for (size_t i = 0; i < ec->n; i++) {
        FUZZ_CHECK(ec->e[i].key != NULL && ec->e[i].value != NULL);
        if (i > 0) {
            FUZZ_CHECK(strcmp(ec->e[i - 1].key, ec->e[i].key) < 0);
        }
    }
}

static void check_parsed(const uint8_t *data, size_t size, const kms_esdk_header *h)
{
    const kms_esdk_suite *s = h->suite;
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(h->version == 1 || h->version == 2);
    FUZZ_CHECK(s->version == h->version);
    FUZZ_CHECK(data[0] == h->version);
    FUZZ_CHECK(h->content_type == 1 || h->content_type == 2);
    FUZZ_CHECK((h->content_type == 1) == (h->frame_length == 0));
    FUZZ_CHECK(h->frame_length <= KMS_ESDK_MAX_FRAME);
    FUZZ_CHECK(h->edks.n >= 1);
    check_context(&h->stored_ec);
    /* Header authentication: IV and tag in v1, the tag alone in v2 (its IV is all zeros). */
    size_t auth_len = KMS_ESDK_TAG_LEN + (h->version == 1 ? KMS_ESDK_IV_LEN : 0);
    FUZZ_CHECK(h->body_len + auth_len == h->total_len);
    FUZZ_CHECK(h->total_len <= size);

    kms_buf body;
    kms_buf_init(&body, false);
    FUZZ_CHECK(kms_esdk_header_serialize_body(h, &body) == 0);
    bool same = body.len == h->body_len && memcmp(body.data, data, body.len) == 0;
    if (!same) {
        fprintf(stderr, "serialised body: %zu bytes, parsed body: %zu bytes\n", body.len,
                h->body_len);
    }
    FUZZ_CHECK(same);
    kms_buf_clean_up(&body);

    /* One byte short of the header is a truncation, whatever field it cuts (below the size
     * limit, where a truncation becomes an error). */
    if (h->total_len - 1 < KMS_ESDK_MAX_HEADER) {
        kms_esdk_header shorter;
        kms_esdk_header_init(&shorter);
        FUZZ_CHECK(kms_esdk_header_parse(data, h->total_len - 1, &shorter) == 1);
        FUZZ_CHECK(header_empty(&shorter));
        kms_esdk_header_clean_up(&shorter);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kms_esdk_header h;
    kms_esdk_header_init(&h);
    int rc = kms_esdk_header_parse(data, size, &h);
    if (rc == 0) {
        check_parsed(data, size, &h);
    } else if (rc == 1) {
        FUZZ_CHECK(size < KMS_ESDK_MAX_HEADER);
        FUZZ_CHECK(header_empty(&h));
    } else {
        FUZZ_CHECK(rc == -1);
        FUZZ_CHECK(kms_last_error() == KMS_ERR_INVALID_CIPHERTEXT);
        FUZZ_CHECK(header_empty(&h));
    }
    kms_esdk_header_clean_up(&h);
    return 0;
}
