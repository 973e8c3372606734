/* Fuzzes the request member helpers of service/request.c, which every operation runs on the
 * caller's JSON before it reaches a key: no HSM, no home. The input is parsed as the dispatcher
 * parses a request body (jansson, duplicates rejected); an object is then read the way the
 * operations read it, and every success is checked against the constraint it was asked for. */
#include <jansson.h>
#include <string.h>

#include "fuzz_common.h"
#include "keystore/blob.h"
#include "service/request.h"
#include "util/buf.h"
#include "util/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FUZZ_CHECK(kms_util_init() == 0);
    return 0;
}

/* A failure must be the ValidationException the helpers promise (KMSInternalException only for
 * memory). */
static void check_failure(void)
{
    kms_error e = kms_last_error();
    FUZZ_CHECK(e == KMS_ERR_VALIDATION || e == KMS_ERR_INTERNAL);
}

static void check_string(json_t *req, const char *name, bool required, size_t min, size_t max)
{
    const char *s = NULL;
    if (kms_request_string(req, name, required, min, max, &s) != 0) {
        FUZZ_CHECK(s == NULL);
        check_failure();
        return;
    }
    if (s == NULL) {
        json_t *v = json_object_get(req, name);
        FUZZ_CHECK(!required && (v == NULL || json_is_null(v)));
        return;
    }
    size_t n = strlen(s);
    FUZZ_CHECK(n >= min && n <= max);
}

static void check_int(json_t *req, const char *name, bool required, long long min, long long max)
{
    const long long dflt = -7; /* outside [min, max], so that a default is recognised */
    long long x = 0;
    if (kms_request_int(req, name, required, min, max, dflt, &x) != 0) {
        check_failure();
        return;
    }
    FUZZ_CHECK((x >= min && x <= max) || (!required && x == dflt));
}

static void check_blob(json_t *req, const char *name, size_t min, size_t max, bool secure)
{
    uint8_t *p = NULL;
    size_t n = 0;
    if (kms_request_blob(req, name, false, min, max, secure, &p, &n) != 0) {
        FUZZ_CHECK(p == NULL);
        check_failure();
        return;
    }
    if (p == NULL) {
        return; /* absent or null */
    }
    FUZZ_CHECK(n >= min && n <= max);
    /* Strict base64: the decoded bytes encode back to exactly the member's text. */
    char *again = kms_base64_encode(p, n);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(strcmp(again, json_string_value(json_object_get(req, name))) == 0);
    free(again);
    if (secure) {
        kms_secret_free(p, n);
    } else {
        free(p);
    }
}

static void check_context(json_t *req, const char *name)
{
    kms_encryption_context ctx;
    if (kms_request_context(req, name, &ctx) != 0) {
        FUZZ_CHECK(ctx.entries == NULL && ctx.count == 0);
        check_failure();
        return;
    }
    json_t *v = json_object_get(req, name);
    FUZZ_CHECK(ctx.count == (json_is_object(v) ? json_object_size(v) : 0));
    for (size_t i = 0; i < ctx.count; i++) {
        FUZZ_CHECK(ctx.entries[i].key != NULL && ctx.entries[i].value != NULL);
        json_t *member = json_object_get(v, ctx.entries[i].key);
        FUZZ_CHECK(json_is_string(member));
        FUZZ_CHECK(strcmp(json_string_value(member), ctx.entries[i].value) == 0);
    }
    /* What Encrypt and Decrypt do next: the AAD form. */
    kms_buf aad;
    kms_buf_init(&aad, false);
    if (kms_blob_context_canonical(&ctx, &aad) != 0) {
        FUZZ_CHECK(kms_last_error() == KMS_ERR_VALIDATION);
    }
    kms_buf_clean_up(&aad);
    kms_request_context_free(&ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *req = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(req)) {
        json_decref(req);
        return 0;
    }
    /* The bounds of the AWS KMS API reference for each member. */
    check_string(req, "KeyId", true, 1, 2048);
    check_string(req, "Description", false, 0, 8192);
    check_int(req, "NumberOfBytes", false, 1, 1024);
    check_int(req, "RotationPeriodInDays", false, 90, 2560);
    check_blob(req, "Plaintext", 1, KMS_MAX_PLAINTEXT, true);
    check_blob(req, "Plaintext", 1, KMS_MAX_PLAINTEXT, false);
    check_blob(req, "CiphertextBlob", 1, KMS_MAX_BLOB, false);
    check_context(req, "EncryptionContext");
    check_context(req, "DestinationEncryptionContext");
    json_decref(req);
    return 0;
}
