/* Fuzzes the audit trail readers (src/audit: audit_validate.c, audit_index.c), which read files
 * that anyone with access to the KMS home can change:
 *
 *  - The input is the content of one segment, segments/00000000000000000001.jsonl. If it holds
 *    the byte 0x1E (ASCII record separator), what follows the first one is also written as a
 *    digest, digests/00000000000000000005.json, with a .sig made by the key validation trusts
 *    (so that the checks after the signature run too). If the digest part holds 0x1E too, what
 *    follows that one is the anchor text given to validate-logs (up to a NUL byte).
 *  - Acks (audit.h "A record line") are checked with an HMAC key fixed here, so that lines
 *    carrying "ack" members go through the MAC paths.
 *  - kms_audit_validate_against: 0 and a report with a boolean Valid, counters and a Problems
 *    array; Valid true only without problems, and every problem has a Kind, a File and a
 *    Message; Anchor null, or {File (null before a digest), LastSequence, Found} with Found
 *    false only in an invalid report; UnsignedTail's Records an integer.
 *  - kms_audit_lookup (no filter, and EventName / ResourceName filters, two pages) and
 *    kms_audit_usage_report: 0, or KMS_ERR_AUDIT when the chain is broken before a line an ack
 *    pins (lookups are refused then); at most MaxResults events, and a NextToken that the next
 *    call accepts.
 * Each input starts from an empty trail in one directory made once per process (index.db too,
 * so that every input is indexed from scratch). ASan, UBSan and the leak check do the rest. */
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "fuzz_common.h"
#include "kms/kms.h"
#include "util/util.h"

#define SEPARATOR 0x1E

static char dir[64];
static EVP_PKEY *key;
static uint8_t *spki;
static size_t spki_len;
static char *segment_path, *digest_path, *sig_path;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void cleanup(void)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(dir, sizeof dir, "/tmp/fuzz_audit.XXXXXX");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    atexit(cleanup);
    key = EVP_EC_gen("P-256");
    FUZZ_CHECK(key != NULL);
    int n = i2d_PUBKEY(key, &spki);
    FUZZ_CHECK(n > 0);
    spki_len = (size_t)n;
    FUZZ_CHECK(kms_audit_create(dir, spki, spki_len) == 0);
    segment_path = kms_strdup_printf("%s/segments/00000000000000000001.jsonl", dir);
    digest_path = kms_strdup_printf("%s/digests/00000000000000000005.json", dir);
    sig_path = kms_strdup_printf("%s/digests/00000000000000000005.json.sig", dir);
    FUZZ_CHECK(segment_path != NULL && digest_path != NULL && sig_path != NULL);
    return 0;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    FUZZ_CHECK(fp != NULL);
    FUZZ_CHECK(n == 0 || fwrite(p, 1, n, fp) == n);
    FUZZ_CHECK(fclose(fp) == 0);
}

static void write_digest(const uint8_t *p, size_t n)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = 0;
    FUZZ_CHECK(ctx != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1);
    FUZZ_CHECK(EVP_DigestSign(ctx, NULL, &sig_len, p, n) == 1);
    uint8_t *sig = malloc(sig_len);
    FUZZ_CHECK(sig != NULL && EVP_DigestSign(ctx, sig, &sig_len, p, n) == 1);
    write_file(sig_path, sig, sig_len);
    write_file(digest_path, p, n);
    free(sig);
    EVP_MD_CTX_free(ctx);
}

static void reset_trail(void)
{
    static const char *const index_files[] = {"index.db", "index.db-wal", "index.db-shm"};
    unlink(segment_path);
    unlink(digest_path);
    unlink(sig_path);
    for (size_t i = 0; i < sizeof index_files / sizeof index_files[0]; i++) {
        char *p = kms_path_join(dir, index_files[i]);
        FUZZ_CHECK(p != NULL);
        unlink(p);
        free(p);
    }
}

static const uint8_t ack_key[32] = "fuzz-audit-ack-key-0123456789ab";

static int fuzz_ack(void *arg, const uint8_t hash[32], uint8_t mac[32])
{
    (void)arg;
    size_t len = 0;
    return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, ack_key, sizeof ack_key, hash, 32, mac, 32,
                     &len) != NULL &&
                   len == 32
               ? 0
               : -1;
}

static kms_audit_trust trust = {.acker = {fuzz_ack, NULL}};

/* A reader's answer: 0, or a refusal of a broken chain (KMS_ERR_AUDIT). */
static bool answered(int rc)
{
    return rc == 0 || kms_last_error() == KMS_ERR_AUDIT;
}

static void check_report(const json_t *r)
{
    const json_t *valid = json_object_get(r, "Valid");
    const json_t *problems = json_object_get(r, "Problems");
    FUZZ_CHECK(json_is_boolean(valid) && json_is_array(problems));
    FUZZ_CHECK(json_is_true(valid) == (json_array_size(problems) == 0));
    FUZZ_CHECK(json_is_array(json_object_get(r, "Repairs")));
    FUZZ_CHECK(json_is_integer(json_object_get(json_object_get(r, "Records"), "Unsigned")));
    const json_t *anchor = json_object_get(r, "Anchor");
    FUZZ_CHECK(json_is_integer(json_object_get(json_object_get(r, "UnsignedTail"), "Records")));
    const json_t *file = json_object_get(anchor, "File");
    FUZZ_CHECK(json_is_null(anchor) || ((json_is_string(file) || json_is_null(file)) &&
                                        json_is_integer(json_object_get(anchor, "LastSequence")) &&
                                        json_is_boolean(json_object_get(anchor, "Found"))));
    FUZZ_CHECK(!json_is_false(json_object_get(anchor, "Found")) || json_is_false(valid));
    for (size_t i = 0; i < json_array_size(problems); i++) {
        const json_t *p = json_array_get(problems, i);
        FUZZ_CHECK(json_is_string(json_object_get(p, "Kind")));
        FUZZ_CHECK(json_is_string(json_object_get(p, "File")));
        FUZZ_CHECK(json_is_string(json_object_get(p, "Message")));
    }
}

/* One lookup and, if there is a NextToken, the page after it. */
static void lookup_twice(const char *attr, const char *value)
{
    kms_audit_query q = {attr, value, 0, 0, 3, NULL, &trust};
    json_t *r = NULL;
    int rc = kms_audit_lookup(dir, &q, &r);
    FUZZ_CHECK(answered(rc));
    if (rc != 0) {
        FUZZ_CHECK(r == NULL);
        return;
    }
    FUZZ_CHECK(json_array_size(json_object_get(r, "Events")) <= 3);
    const char *token = json_string_value(json_object_get(r, "NextToken"));
    if (token != NULL) {
        json_t *next = NULL;
        q.next_token = token;
        FUZZ_CHECK(kms_audit_lookup(dir, &q, &next) == 0);
        json_decref(next);
    }
    json_decref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reset_trail();
    const uint8_t *sep = memchr(data, SEPARATOR, size);
    size_t seg_len = sep ? (size_t)(sep - data) : size;
    char *anchor = NULL;
    write_file(segment_path, data, seg_len);
    if (sep != NULL) {
        const uint8_t *digest = sep + 1, *end = data + size;
        const uint8_t *sep2 = memchr(digest, SEPARATOR, (size_t)(end - digest));
        write_digest(digest, (size_t)((sep2 ? sep2 : end) - digest));
        if (sep2 != NULL) {
            anchor = strndup((const char *)sep2 + 1, (size_t)(end - sep2 - 1));
            FUZZ_CHECK(anchor != NULL);
        }
    }

    json_t *r = NULL;
    trust.anchor = anchor;
    FUZZ_CHECK(kms_audit_validate_against(dir, spki, spki_len, &trust, NULL, 0, 0, &r) == 0);
    check_report(r);
    json_decref(r);

    lookup_twice(NULL, NULL);
    lookup_twice("EventName", "Encrypt");
    lookup_twice("ResourceName", "1234abcd-12ab-34cd-56ef-1234567890ab");
    int rc = kms_audit_usage_report(dir, &trust, 0, 0, &r);
    FUZZ_CHECK(answered(rc));
    FUZZ_CHECK(rc != 0 || json_is_integer(json_object_get(r, "Requests")));
    json_decref(r);
    trust.anchor = NULL;
    free(anchor);
    return 0;
}
