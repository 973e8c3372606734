/* Unit tests of the audit trail readers: kms_audit_validate (validate-logs), kms_audit_lookup
 * (lookup-events) and kms_audit_usage_report, on trails built by hand exactly as audit.h
 * describes them (record lines with auditChain, digests signed with an EC P-256 key made here),
 * independent of the writer. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "kms/kms.h"
#include "util/util.h"

#define BASE_TIME 1780000000 /* 2026-05-28T20:26:40Z */
#define ACCOUNT "111122223333"

/* ---- Keys ---------------------------------------------------------------------------------- */

static EVP_PKEY *ec_key_new(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static uint8_t *spki_of(EVP_PKEY *k, size_t *len)
{
    uint8_t *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

static uint8_t *sign(EVP_PKEY *k, const char *msg, size_t n, size_t *sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
    size_t cap = 0;
    assert_int_equal(EVP_DigestSign(ctx, NULL, &cap, (const uint8_t *)msg, n), 1);
    uint8_t *sig = malloc(cap);
    assert_non_null(sig);
    assert_int_equal(EVP_DigestSign(ctx, sig, &cap, (const uint8_t *)msg, n), 1);
    EVP_MD_CTX_free(ctx);
    *sig_len = cap;
    return sig;
}

/* ---- Files --------------------------------------------------------------------------------- */

static char *path_of(const char *dir, const char *rel)
{
    char *p = kms_strdup_printf("%s/%s", dir, rel);
    assert_non_null(p);
    return p;
}

static void write_file(const char *path, const void *p, size_t n, const char *mode)
{
    FILE *fp = fopen(path, mode);
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static char *read_file(const char *path, size_t *n)
{
    char *buf = NULL;
    size_t len = 0;
    if (kms_file_read(path, 1 << 26, &buf, &len) != 0) {
        fail_msg("cannot read %s: %s", path, kms_last_error_message());
        return NULL;
    }
    if (n != NULL) {
        *n = len;
    }
    return buf;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", p[i]);
    }
    out[2 * n] = '\0';
}

static void seg_rel(int64_t first, char *out, size_t n)
{
    snprintf(out, n, "segments/%020lld.jsonl", (long long)first);
}

static void dig_rel(int64_t last, char *out, size_t n)
{
    snprintf(out, n, "digests/%020lld.json", (long long)last);
}

/* ---- Records ------------------------------------------------------------------------------- */

static const char *const NAMES[] = {"Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey",
                                    "ListKeys"};
static const char *const KEYS[] = {"1234abcd-12ab-34cd-56ef-1234567890ab",
                                   "0987dcba-09fe-87dc-65ba-ab0987654321",
                                   "11111111-2222-4333-8444-555555555555"};

static const char *rec_name(int64_t seq)
{
    return NAMES[seq % 5];
}

static bool rec_read_only(int64_t seq)
{
    return seq % 5 >= 3;
}

static int rec_user(int64_t seq) /* 0 IAMUser alice, 1 AssumedRole App/sess-7, 2 Root */
{
    return (int)(seq % 3);
}

static const char *rec_key(int64_t seq) /* NULL: no resource (ListKeys) */
{
    return seq % 5 == 4 ? NULL : KEYS[seq % 3 == 0 ? 0 : (seq % 7) % 3];
}

static bool rec_error(int64_t seq)
{
    return seq % 7 == 0;
}

static int64_t rec_time(int64_t seq)
{
    return BASE_TIME + seq * 60;
}

/* The caller's part of record seq (no auditChain), as the service would hand it over. */
static char *record_body(int64_t seq, const char *name_override)
{
    static const char *const who[] = {
        "{\"type\":\"IAMUser\",\"principalId\":\"AIDAALICE\",\"arn\":\"arn:aws:iam::" ACCOUNT
        ":user/alice\",\"accountId\":\"" ACCOUNT "\",\"accessKeyId\":\"AKIAALICE0000001\","
        "\"userName\":\"alice\"}",
        "{\"type\":\"AssumedRole\",\"principalId\":\"AROAAPP:sess-7\",\"arn\":\"arn:aws:sts:"
        ":" ACCOUNT ":assumed-role/App/sess-7\",\"accountId\":\"" ACCOUNT
        "\",\"accessKeyId\":\"ASIASESSION0007\","
        "\"sessionContext\":{\"sessionIssuer\":{\"type\":\"Role\",\"userName\":\"App\"}}}",
        "{\"type\":\"Root\",\"principalId\":\"" ACCOUNT "\",\"arn\":\"arn:aws:iam::" ACCOUNT
        ":root\",\"accountId\":\"" ACCOUNT "\",\"accessKeyId\":\"AKIAROOT00000001\"}",
    };
    char when[32], res[256] = "[]", err[96] = "";
    kms_time_iso8601(rec_time(seq), when);
    const char *key = rec_key(seq);
    if (key != NULL) {
        snprintf(res, sizeof res,
                 "[{\"accountId\":\"" ACCOUNT "\",\"type\":\"AWS::KMS::Key\",\"ARN\":"
                 "\"arn:aws:kms:us-east-1:" ACCOUNT ":key/%s\"}]",
                 key);
    }
    if (rec_error(seq)) {
        snprintf(err, sizeof err,
                 ",\"errorCode\":\"AccessDeniedException\",\"errorMessage\":\"denied\"");
    }
    char *s = kms_strdup_printf(
        "{\"eventVersion\":\"1.08\",\"userIdentity\":%s,\"eventTime\":\"%s\","
        "\"eventSource\":\"kms.amazonaws.com\",\"eventName\":\"%s\",\"awsRegion\":\"us-east-1\","
        "\"sourceIPAddress\":\"192.0.2.10\",\"userAgent\":\"kmsctl/0.1\",\"requestParameters\":"
        "{\"keyId\":\"%s\"},\"responseElements\":null%s,\"requestID\":\"req-%lld\","
        "\"eventID\":\"00000000-0000-4000-8000-%012lld\",\"readOnly\":%s,\"resources\":%s,"
        "\"eventType\":\"AwsApiCall\",\"managementEvent\":true,\"recipientAccountId\":\"" ACCOUNT
        "\",\"eventCategory\":\"Management\"}",
        who[rec_user(seq)], when, name_override ? name_override : rec_name(seq), key ? key : "",
        err, (long long)seq, (long long)seq, rec_read_only(seq) ? "true" : "false", res);
    assert_non_null(s);
    return s;
}

/* ---- A trail built by hand ------------------------------------------------------------------ */

typedef struct trail {
    char *dir;
    EVP_PKEY *key;
    uint8_t *spki;
    size_t spki_len;
    int64_t seq;       /* last sequence written */
    int64_t seg_first; /* first sequence of the open segment, 0 if none */
    char prev_hash[KMS_AUDIT_HASH_HEX + 1];
    char prev_digest[64]; /* "" before the first digest */
    int64_t prev_digest_end;
    const char *name_override; /* eventName for the next records, NULL: the generator's */
} trail;

static trail *trail_new(void)
{
    trail *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->dir = kms_test_tmpdir();
    t->key = ec_key_new();
    t->spki = spki_of(t->key, &t->spki_len);
    memset(t->prev_hash, '0', KMS_AUDIT_HASH_HEX);
    assert_int_equal(kms_audit_create(t->dir, t->spki, t->spki_len), 0);
    return t;
}

static void trail_free(trail *t)
{
    kms_test_rmrf(t->dir);
    free(t->dir);
    EVP_PKEY_free(t->key);
    OPENSSL_free(t->spki);
    free(t);
}

/* Completes a body into a record line exactly as the writer does (audit.h "A record line"). */
static char *chain_line(const char *body, int64_t seq, const char *prev_hash)
{
    size_t n = strlen(body);
    assert_true(n > 2 && body[n - 1] == '}');
    char *line =
        kms_strdup_printf("%.*s,\"auditChain\":{\"sequence\":%lld,\"previousHash\":\"%s\"}}",
                          (int)(n - 1), body, (long long)seq, prev_hash);
    assert_non_null(line);
    return line;
}

static void trail_append_body(trail *t, const char *body)
{
    char rel[64];
    if (t->seg_first == 0) {
        t->seg_first = t->seq + 1;
    }
    seg_rel(t->seg_first, rel, sizeof rel);
    char *path = path_of(t->dir, rel);
    char *line = chain_line(body, t->seq + 1, t->prev_hash);
    kms_audit_sha256_hex(line, strlen(line), t->prev_hash);
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    fprintf(fp, "%s\n", line);
    assert_int_equal(fclose(fp), 0);
    t->seq++;
    free(line);
    free(path);
}

static void trail_append(trail *t, int n)
{
    for (int i = 0; i < n; i++) {
        char *body = record_body(t->seq + 1, t->name_override);
        trail_append_body(t, body);
        free(body);
    }
}

static void write_signed(const char *dir, const char *rel, const char *json, EVP_PKEY *key,
                         char **sig_hex)
{
    char *path = path_of(dir, rel);
    char *sig_path = kms_strdup_printf("%s.sig", path);
    size_t sig_len = 0;
    uint8_t *sig = sign(key, json, strlen(json), &sig_len);
    write_file(sig_path, sig, sig_len, "wb");
    write_file(path, json, strlen(json), "wb");
    if (sig_hex != NULL) {
        *sig_hex = malloc(2 * sig_len + 1);
        assert_non_null(*sig_hex);
        hex(sig, sig_len, *sig_hex);
    }
    free(sig);
    free(sig_path);
    free(path);
}

/* Seals the open segment: the digest of audit.h "A digest", signed with t->key. */
static void trail_seal(trail *t)
{
    assert_true(t->seg_first > 0);
    char seg[64], dig[64], first_time[32], last_time[32], start_time[32], fp[65], file_hash[65];
    seg_rel(t->seg_first, seg, sizeof seg);
    dig_rel(t->seq, dig, sizeof dig);
    char *seg_path = path_of(t->dir, seg);
    size_t n = 0;
    char *bytes = read_file(seg_path, &n);
    kms_audit_sha256_hex(bytes, n, file_hash);
    kms_audit_sha256_hex(t->spki, t->spki_len, fp);
    kms_time_iso8601(rec_time(t->seg_first), first_time);
    kms_time_iso8601(rec_time(t->seq), last_time);
    kms_time_iso8601(t->prev_digest_end ? t->prev_digest_end : rec_time(t->seg_first), start_time);
    json_t *prev_file = json_null(), *prev_hash = json_null(), *prev_sig = json_null();
    if (t->prev_digest[0] != '\0') {
        char *prev_path = path_of(t->dir, t->prev_digest);
        char *prev_sig_path = kms_strdup_printf("%s.sig", prev_path);
        size_t pn = 0, sn = 0;
        char *pbytes = read_file(prev_path, &pn);
        char *sbytes = read_file(prev_sig_path, &sn);
        char h[65], *sh = malloc(2 * sn + 1);
        assert_non_null(sh);
        kms_audit_sha256_hex(pbytes, pn, h);
        hex((const uint8_t *)sbytes, sn, sh);
        prev_file = json_string(t->prev_digest);
        prev_hash = json_string(h);
        prev_sig = json_string(sh);
        free(sh);
        free(pbytes);
        free(sbytes);
        free(prev_path);
        free(prev_sig_path);
    }
    int64_t end = rec_time(t->seq) + 30;
    char end_time[32];
    kms_time_iso8601(end, end_time);
    json_t *d = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:I, s:I, s:s,"
        " s:[{s:s, s:s, s:s, s:I, s:I, s:s, s:s}]}",
        "awsAccountId", ACCOUNT, "digestStartTime", start_time, "digestEndTime", end_time,
        "digestFile", dig, "digestPublicKeyFingerprint", fp, "digestSignatureAlgorithm",
        "SHA256withECDSA", "oldestEventTime", first_time, "newestEventTime", last_time,
        "previousDigestFile", prev_file, "previousDigestHashValue", prev_hash,
        "previousDigestHashAlgorithm", "SHA-256", "previousDigestSignature", prev_sig,
        "firstSequence", (json_int_t)t->seg_first, "lastSequence", (json_int_t)t->seq,
        "lastRecordHash", t->prev_hash, "logFiles", "file", seg, "hashValue", file_hash,
        "hashAlgorithm", "SHA-256", "firstSequence", (json_int_t)t->seg_first, "lastSequence",
        (json_int_t)t->seq, "oldestEventTime", first_time, "newestEventTime", last_time);
    assert_non_null(d);
    char *json = json_dumps(d, JSON_COMPACT);
    assert_non_null(json);
    write_signed(t->dir, dig, json, t->key, NULL);
    snprintf(t->prev_digest, sizeof t->prev_digest, "%s", dig);
    t->prev_digest_end = end;
    t->seg_first = 0;
    free(json);
    json_decref(d);
    free(bytes);
    free(seg_path);
}

/* The standard trail: segments 1-5 and 6-10 sealed (two digests), 11-15 open. */
static trail *standard_trail(void)
{
    trail *t = trail_new();
    trail_append(t, 5);
    trail_seal(t);
    trail_append(t, 5);
    trail_seal(t);
    trail_append(t, 5);
    return t;
}

static char *rel_path(const trail *t, const char *rel)
{
    return path_of(t->dir, rel);
}

static const char SEG1[] = "segments/00000000000000000001.jsonl";
static const char SEG2[] = "segments/00000000000000000006.jsonl";
static const char SEG3[] = "segments/00000000000000000011.jsonl";
static const char DIG1[] = "digests/00000000000000000005.json";
static const char DIG2[] = "digests/00000000000000000010.json";

/* Rewrites a file with line `lineno` (1-based) replaced by repl (NULL: deleted). */
static void replace_line(const trail *t, const char *rel, int lineno, const char *repl)
{
    char *path = rel_path(t, rel);
    size_t n = 0;
    char *bytes = read_file(path, &n);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    int l = 1;
    for (char *p = bytes; p < bytes + n; l++) {
        char *nl = memchr(p, '\n', (size_t)(bytes + n - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(bytes + n - p);
        if (l != lineno) {
            fwrite(p, 1, len, fp);
        } else if (repl != NULL) {
            fprintf(fp, "%s\n", repl);
        }
        p += len;
    }
    assert_int_equal(fclose(fp), 0);
    free(bytes);
    free(path);
}

/* Line lineno of a file, malloc'd, without '\n'. */
static char *get_line(const trail *t, const char *rel, int lineno)
{
    char *path = rel_path(t, rel);
    char *bytes = read_file(path, NULL);
    char *p = bytes;
    for (int l = 1; l < lineno; l++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    char *nl = strchr(p, '\n');
    char *out = strndup(p, nl ? (size_t)(nl - p) : strlen(p));
    free(bytes);
    free(path);
    return out;
}

/* Flips one letter of line lineno just after `needle` (the JSON stays valid). */
static void flip_in_line(const trail *t, const char *rel, int lineno, const char *needle)
{
    char *line = get_line(t, rel, lineno);
    char *p = strstr(line, needle);
    assert_non_null(p);
    p += strlen(needle);
    *p ^= 0x01;
    replace_line(t, rel, lineno, line);
    free(line);
}

/* ---- Report checks -------------------------------------------------------------------------- */

/* validate-logs against the anchor `anchor` (NULL: none). */
static json_t *validate_anchored(const trail *t, const char *anchor, int64_t start, int64_t end)
{
    json_t *r = NULL;
    if (kms_audit_validate(t->dir, t->spki, t->spki_len, anchor, start, end, &r) != 0) {
        fail_msg("kms_audit_validate: %s", kms_last_error_message());
    }
    assert_non_null(r);
    return r;
}

static json_t *validate(const trail *t, int64_t start, int64_t end)
{
    json_t *r = validate_anchored(t, NULL, start, end);
    assert_true(json_is_null(json_object_get(r, "Anchor")));
    return r;
}

static void dump(const json_t *r)
{
    char *s = json_dumps(r, JSON_INDENT(1));
    print_message("%s\n", s ? s : "(null)");
    free(s);
}

static json_int_t counter(const json_t *r, const char *group, const char *name)
{
    const json_t *v = json_object_get(json_object_get(r, group), name);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* The report has a problem of this kind naming file (and seq / line when >= 0). */
static void expect_problem(const json_t *r, const char *kind, const char *file, int64_t seq,
                           int line)
{
    const json_t *ps = json_object_get(r, "Problems");
    for (size_t i = 0; i < json_array_size(ps); i++) {
        const json_t *p = json_array_get(ps, i);
        const char *k = json_string_value(json_object_get(p, "Kind"));
        const char *f = json_string_value(json_object_get(p, "File"));
        const char *m = json_string_value(json_object_get(p, "Message"));
        if (k == NULL || f == NULL || m == NULL || m[0] == '\0' || strcmp(k, kind) != 0 ||
            strcmp(f, file) != 0) {
            continue;
        }
        if (seq >= 0 && json_integer_value(json_object_get(p, "Sequence")) != seq) {
            continue;
        }
        if (line >= 0 && json_integer_value(json_object_get(p, "Line")) != line) {
            continue;
        }
        return;
    }
    dump(r);
    fail_msg("no %s problem for %s (sequence %lld, line %d)", kind, file, (long long)seq, line);
}

static void expect_invalid(const json_t *r)
{
    if (!json_is_false(json_object_get(r, "Valid")) ||
        json_array_size(json_object_get(r, "Problems")) == 0) {
        dump(r);
        fail_msg("the report should say Valid false with problems");
    }
}

static json_t *lookup(const trail *t, const char *key, const char *value, int64_t start,
                      int64_t end, int max, const char *token);

/* ---- validate-logs -------------------------------------------------------------------------- */

static void test_valid_trail(void **state)
{
    trail *t = standard_trail();
    json_t *r = validate(t, 0, 0);
    if (!json_is_true(json_object_get(r, "Valid"))) {
        dump(r);
        fail_msg("a hand-built trail should validate");
    }
    assert_int_equal(json_array_size(json_object_get(r, "Problems")), 0);
    assert_int_equal(counter(r, "DigestFiles", "Valid"), 2);
    assert_int_equal(counter(r, "DigestFiles", "Invalid"), 0);
    assert_int_equal(counter(r, "LogFiles", "Valid"), 2);
    assert_int_equal(counter(r, "LogFiles", "Invalid"), 0);
    assert_int_equal(counter(r, "Records", "Valid"), 10);
    assert_int_equal(counter(r, "Records", "Invalid"), 0);
    assert_int_equal(counter(r, "Records", "Unsigned"), 5);
    assert_int_equal(json_array_size(json_object_get(r, "Repairs")), 0);
    json_decref(r);
    /* Sealing the open segment too: everything signed. */
    trail_seal(t);
    r = validate(t, 0, 0);
    assert_true(json_is_true(json_object_get(r, "Valid")));
    assert_int_equal(counter(r, "DigestFiles", "Valid"), 3);
    assert_int_equal(counter(r, "Records", "Valid"), 15);
    assert_int_equal(counter(r, "Records", "Unsigned"), 0);
    json_decref(r);
    trail_free(t);
}

static void test_empty_trail(void **state)
{
    trail *t = trail_new();
    json_t *r = validate(t, 0, 0);
    assert_true(json_is_true(json_object_get(r, "Valid")));
    assert_int_equal(counter(r, "Records", "Valid"), 0);
    json_decref(r);
    trail_free(t);
}

static void test_flip_sealed_record(void **state)
{
    trail *t = standard_trail();
    flip_in_line(t, SEG1, 3, "\"sourceIPAddress\":\"");
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "modified", SEG1, 3, 3);   /* record 4's previousHash no longer matches */
    expect_problem(r, "modified", SEG1, -1, -1); /* the file's hash against digest 5 */
    assert_true(counter(r, "LogFiles", "Invalid") >= 1);
    assert_true(counter(r, "Records", "Invalid") >= 1);
    json_decref(r);
    trail_free(t);
}

static void test_flip_last_sealed_record(void **state)
{
    trail *t = standard_trail();
    flip_in_line(t, SEG2, 5, "\"userAgent\":\"");
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "modified", SEG2, 10, 5); /* against record 11, in the next segment */
    json_decref(r);
    trail_free(t);
}

static void test_flip_open_record(void **state)
{
    trail *t = standard_trail();
    flip_in_line(t, SEG3, 3, "\"eventName\":\"");
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "modified", SEG3, 13, 3);
    json_decref(r);
    trail_free(t);
}

static void test_malformed_line(void **state)
{
    trail *t = standard_trail();
    replace_line(t, SEG3, 2, "{\"eventName\":\"Encrypt\"}");
    replace_line(t, SEG3, 4, "not json at all");
    /* A line longer than any record: reported, never held in memory whole. */
    size_t big = KMS_AUDIT_RECORD_MAX + 4096;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'x', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\n';
    char *p = rel_path(t, SEG3);
    write_file(p, huge, big + 1, "ab");
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "malformed", SEG3, -1, 2);
    expect_problem(r, "malformed", SEG3, -1, 4);
    expect_problem(r, "malformed", SEG3, -1, 6);
    json_decref(r);
    /* The chain breaks in the last segment (line 2 of SEG3 is not the next record): the index
     * lists what comes before it, nothing after (the writer moves the rest aside, or refuses
     * the trail when an acknowledged line follows). */
    r = lookup(t, NULL, NULL, 0, 0, 50, NULL);
    assert_int_equal(json_array_size(json_object_get(r, "Events")), 11);
    json_decref(r);
    free(p);
    free(huge);
    trail_free(t);
}

static void test_delete_record(void **state)
{
    trail *t = standard_trail();
    replace_line(t, SEG2, 3, NULL);
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "missing", SEG2, 8, 3);
    expect_problem(r, "modified", SEG2, -1, -1);
    json_decref(r);
    trail_free(t);
}

static void test_delete_segment(void **state)
{
    trail *t = standard_trail();
    char *p = rel_path(t, SEG2);
    assert_int_equal(unlink(p), 0);
    free(p);
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "missing", SEG2, -1, -1); /* listed by digest 10, gone */
    expect_problem(r, "missing", SEG3, 6, 1);   /* records 6-10 missing before record 11 */
    json_decref(r);
    trail_free(t);
}

static void test_swap_segments(void **state)
{
    trail *t = standard_trail();
    char *a = rel_path(t, SEG1), *b = rel_path(t, SEG2), *tmp = rel_path(t, "swap.tmp");
    assert_int_equal(rename(a, tmp), 0);
    assert_int_equal(rename(b, a), 0);
    assert_int_equal(rename(tmp, b), 0);
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "out-of-order", SEG1, 6, 1);
    expect_problem(r, "out-of-order", SEG2, 1, 1);
    expect_problem(r, "modified", SEG1, -1, -1);
    json_decref(r);
    free(a);
    free(b);
    free(tmp);
    trail_free(t);
}

static void test_truncate_segment(void **state)
{
    trail *t = standard_trail();
    char *p = rel_path(t, SEG2);
    /* Keep two lines and half of the third. */
    size_t n = 0;
    char *bytes = read_file(p, &n);
    char *third = strchr(strchr(bytes, '\n') + 1, '\n') + 1;
    assert_int_equal(truncate(p, (off_t)(third - bytes) + 40), 0);
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "missing", SEG2, 8, -1); /* digest 10 lists records up to 10 */
    expect_problem(r, "torn", SEG2, -1, 3);
    expect_problem(r, "modified", SEG2, -1, -1);
    json_decref(r);
    /* Cut at a line boundary: no torn line, still missing records. */
    assert_int_equal(truncate(p, (off_t)(third - bytes)), 0);
    r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "missing", SEG2, 8, -1);
    json_decref(r);
    free(bytes);
    free(p);
    trail_free(t);
}

static void test_torn_last_line(void **state)
{
    trail *t = standard_trail();
    char *p = rel_path(t, SEG3);
    char *body = record_body(16, NULL);
    write_file(p, body, strlen(body) / 2, "ab");
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "torn", SEG3, -1, 6);
    assert_int_equal(counter(r, "Records", "Unsigned"), 5);
    json_decref(r);
    free(body);
    free(p);
    trail_free(t);
}

static void test_forged_digest(void **state)
{
    trail *t = standard_trail();
    /* Make segment 2 say something else, fix the digest to match, sign with another key. */
    flip_in_line(t, SEG2, 2, "\"sourceIPAddress\":\"");
    char *dpath = rel_path(t, DIG2), *spath = rel_path(t, SEG2);
    size_t n = 0;
    char *seg = read_file(spath, &n), h[65];
    kms_audit_sha256_hex(seg, n, h);
    json_t *d = json_load_file(dpath, 0, NULL);
    assert_non_null(d);
    json_object_set_new(json_array_get(json_object_get(d, "logFiles"), 0), "hashValue",
                        json_string(h));
    char *json = json_dumps(d, JSON_COMPACT);
    EVP_PKEY *other = ec_key_new();
    write_signed(t->dir, DIG2, json, other, NULL);
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "bad-signature", DIG2, -1, -1);
    assert_int_equal(counter(r, "DigestFiles", "Invalid"), 1);
    json_decref(r);
    EVP_PKEY_free(other);
    free(json);
    json_decref(d);
    free(seg);
    free(dpath);
    free(spath);
    trail_free(t);
}

static void test_missing_signature(void **state)
{
    trail *t = standard_trail();
    char *p = kms_strdup_printf("%s/%s.sig", t->dir, DIG1);
    assert_int_equal(unlink(p), 0);
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "missing", DIG1, -1, -1);
    json_decref(r);
    free(p);
    trail_free(t);
}

static void test_digest_removed_from_chain(void **state)
{
    trail *t = standard_trail();
    trail_seal(t); /* digests 5, 10, 15: remove 10 */
    char *p = rel_path(t, DIG2);
    char *s = kms_strdup_printf("%s.sig", p);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(unlink(s), 0);
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "missing", DIG2, -1, -1);
    expect_problem(r, "missing", SEG2, -1, -1); /* now listed by no digest */
    json_decref(r);
    free(p);
    free(s);
    trail_free(t);
}

static void test_garbage_files(void **state)
{
    trail *t = standard_trail();
    uint8_t junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) {
        junk[i] = (uint8_t)(i * 131 + 7);
    }
    const char *rels[] = {
        "segments/xyz.jsonl", "digests/xyz.json", "segments/00000000000000000099.jsonl",
        "digests/00000000000000000099.json", "digests/00000000000000000099.json.sig"};
    for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
        char *p = rel_path(t, rels[i]);
        write_file(p, junk, i == 4 ? 72 : sizeof junk - i * 100, "wb"); /* .sig: sig-sized */
        free(p);
    }
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "unexpected", "segments/xyz.jsonl", -1, -1);
    expect_problem(r, "unexpected", "digests/xyz.json", -1, -1);
    expect_problem(r, "bad-signature", "digests/00000000000000000099.json", -1, -1);
    expect_problem(r, "malformed", "digests/00000000000000000099.json", -1, -1);
    expect_problem(r, "malformed", "segments/00000000000000000099.jsonl", -1, -1);
    json_decref(r);
    trail_free(t);
}

static void test_repairs_reported(void **state)
{
    trail *t = standard_trail();
    trail_append_body(t, "{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-05-28T22:00:00Z\","
                         "\"eventSource\":\"kms.amazonaws.com\",\"eventName\":\"AuditLogRepaired\","
                         "\"eventType\":\"AwsServiceEvent\",\"serviceEventDetails\":{\"segment\":"
                         "\"segments/00000000000000000011.jsonl\",\"offset\":1234,\"length\":99,"
                         "\"sha256\":\"00\"}}");
    json_t *r = validate(t, 0, 0);
    assert_true(json_is_true(json_object_get(r, "Valid")));
    const json_t *reps = json_object_get(r, "Repairs");
    assert_int_equal(json_array_size(reps), 1);
    const json_t *rep = json_array_get(reps, 0);
    assert_string_equal(json_string_value(json_object_get(rep, "File")), SEG3);
    assert_int_equal(json_integer_value(json_object_get(rep, "Offset")), 1234);
    assert_int_equal(json_integer_value(json_object_get(rep, "Length")), 99);
    json_decref(r);
    trail_free(t);
}

static void test_time_filter(void **state)
{
    trail *t = standard_trail();
    flip_in_line(t, SEG1, 2, "\"userAgent\":\"");
    /* Only the open segment's events (records 11-15). */
    json_t *r = validate(t, rec_time(11), rec_time(15));
    if (!json_is_true(json_object_get(r, "Valid"))) {
        dump(r);
        fail_msg("damage outside [start, end] should not be reported");
    }
    assert_int_equal(counter(r, "Records", "Unsigned"), 5);
    assert_int_equal(counter(r, "Records", "Valid"), 0);
    assert_int_equal(counter(r, "DigestFiles", "Valid"), 0);
    json_decref(r);
    /* The range that holds the damage. */
    r = validate(t, rec_time(2), rec_time(3));
    expect_invalid(r);
    expect_problem(r, "modified", SEG1, 2, 2);
    assert_int_equal(counter(r, "Records", "Unsigned"), 0);
    json_decref(r);
    trail_free(t);
}

static void test_validate_arguments(void **state)
{
    trail *t = standard_trail();
    json_t *r = NULL;
    uint8_t bad[4] = {1, 2, 3, 4};
    assert_kms_error(kms_audit_validate(t->dir, bad, sizeof bad, NULL, 0, 0, &r),
                     KMS_ERR_VALIDATION);
    assert_null(r);
    char *missing = rel_path(t, "nope");
    assert_kms_error(kms_audit_validate(missing, t->spki, t->spki_len, NULL, 0, 0, &r),
                     KMS_ERR_AUDIT);
    free(missing);
    /* Another key: every digest is reported, nothing crashes. */
    EVP_PKEY *other = ec_key_new();
    size_t olen = 0;
    uint8_t *ospki = spki_of(other, &olen);
    assert_int_equal(kms_audit_validate(t->dir, ospki, olen, NULL, 0, 0, &r), 0);
    expect_problem(r, "bad-signature", DIG1, -1, -1);
    expect_problem(r, "bad-signature", DIG2, -1, -1);
    json_decref(r);
    OPENSSL_free(ospki);
    EVP_PKEY_free(other);
    trail_free(t);
}

/* Sets the eventTime of line lineno to t (the JSON stays valid; the chain breaks). */
static void set_event_time(const trail *t, const char *rel, int lineno, int64_t when)
{
    char *line = get_line(t, rel, lineno), iso[32];
    char *p = strstr(line, "\"eventTime\":\"");
    assert_non_null(p);
    p += strlen("\"eventTime\":\"");
    kms_time_iso8601(when, iso);
    assert_int_equal(strcspn(p, "\""), strlen(iso));
    memcpy(p, iso, strlen(iso));
    replace_line(t, rel, lineno, line);
    free(line);
}

static void expect_valid(const json_t *r)
{
    if (!json_is_true(json_object_get(r, "Valid")) ||
        json_array_size(json_object_get(r, "Problems")) != 0) {
        dump(r);
        fail_msg("the report should say Valid true without problems");
    }
}

/* A record's eventTime is not signed: the filter judges a sealed segment by its digest's times. */
static void test_time_filter_signed_times(void **state)
{
    trail *t = standard_trail();
    for (int i = 1; i <= 5; i++) {
        set_event_time(t, SEG2, i, BASE_TIME - 30 * 86400); /* records 6-10, a month earlier */
    }
    json_t *r = validate(t, rec_time(6), rec_time(10));
    expect_invalid(r);
    expect_problem(r, "modified", SEG2, -1, -1); /* against digest 10 */
    json_decref(r);
    /* Out of the digest's signed times: not reported. */
    r = validate(t, rec_time(11), rec_time(15));
    expect_valid(r);
    json_decref(r);
    /* The open segment's times are nobody's signature: its problems are always reported. */
    for (int i = 1; i <= 5; i++) {
        set_event_time(t, SEG3, i, BASE_TIME - 30 * 86400);
    }
    r = validate(t, rec_time(11), rec_time(15));
    expect_invalid(r);
    expect_problem(r, "modified", SEG3, 11, 1);
    json_decref(r);
    trail_free(t);
}

/* Problems that are not about when events happened are reported whatever the time range. */
static void test_time_filter_timeless(void **state)
{
    /* A digest deleted from the chain, outside the range. */
    trail *t = standard_trail();
    trail_seal(t); /* digests 5, 10, 15 */
    char *p = rel_path(t, DIG2), *s = kms_strdup_printf("%s.sig", p);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(unlink(s), 0);
    json_t *r = validate(t, rec_time(1), rec_time(3));
    expect_invalid(r);
    expect_problem(r, "missing", DIG2, -1, -1); /* named by digest 15 */
    expect_problem(r, "missing", SEG2, -1, -1); /* listed by no digest */
    json_decref(r);
    free(p);
    free(s);
    trail_free(t);
    /* A bad signature and a torn line, outside the range. */
    t = standard_trail();
    char *dpath = rel_path(t, DIG1), *spath = rel_path(t, SEG1);
    char *json = read_file(dpath, NULL);
    EVP_PKEY *other = ec_key_new();
    write_signed(t->dir, DIG1, json, other, NULL);
    char *body = record_body(99, NULL);
    write_file(spath, body, strlen(body) / 2, "ab");
    r = validate(t, rec_time(11), rec_time(15));
    expect_invalid(r);
    expect_problem(r, "bad-signature", DIG1, -1, -1);
    expect_problem(r, "torn", SEG1, -1, 6);
    json_decref(r);
    EVP_PKEY_free(other);
    free(body);
    free(json);
    free(dpath);
    free(spath);
    trail_free(t);
}

/* ---- validate-logs with the anchor (audit.h "The anchor") ---------------------------------- */

static const char DIG3[] = "digests/00000000000000000015.json";

/* The anchor the writer would have set after writing the digest `rel` (as it is now). */
static char *anchor_for(const trail *t, const char *rel, int64_t last)
{
    char *path = rel_path(t, rel);
    size_t n = 0;
    char *bytes = read_file(path, &n), h[KMS_AUDIT_HASH_HEX + 1];
    kms_audit_sha256_hex(bytes, n, h);
    char *text = kms_strdup_printf("%lld %s %s", (long long)last, rel, h);
    assert_non_null(text);
    free(bytes);
    free(path);
    return text;
}

static void remove_file(const trail *t, const char *rel)
{
    char *p = rel_path(t, rel);
    assert_int_equal(unlink(p), 0);
    free(p);
}

static void remove_digest(const trail *t, const char *rel)
{
    char *sig = kms_strdup_printf("%s.sig", rel);
    remove_file(t, rel);
    remove_file(t, sig);
    free(sig);
}

/* The report's Anchor member: file, last sequence, Found. */
static void expect_anchor(const json_t *r, const char *file, int64_t last, bool found)
{
    const json_t *a = json_object_get(r, "Anchor");
    const char *got = json_string_value(json_object_get(a, "File"));
    if (!json_is_object(a) || got == NULL || strcmp(got, file) != 0 ||
        json_integer_value(json_object_get(a, "LastSequence")) != last ||
        json_is_true(json_object_get(a, "Found")) != found) {
        dump(r);
        fail_msg("Anchor should be {File: %s, LastSequence: %lld, Found: %s}", file,
                 (long long)last, found ? "true" : "false");
    }
}

/* The rollback the anchor exists for: the newest digests and the segments they cover deleted.
 * Without the anchor what remains validates; with it, the anchored digest is missing. */
static void test_anchor_rollback(void **state)
{
    trail *t = standard_trail();
    trail_seal(t); /* digests 5, 10, 15 */
    char *anchor = anchor_for(t, DIG3, 15);
    json_t *r = validate_anchored(t, anchor, 0, 0);
    expect_valid(r);
    expect_anchor(r, DIG3, 15, true);
    json_decref(r);
    remove_digest(t, DIG3);
    remove_file(t, SEG3);
    r = validate(t, 0, 0);
    expect_valid(r); /* the gap the anchor closes */
    json_decref(r);
    r = validate_anchored(t, anchor, 0, 0);
    expect_invalid(r);
    expect_problem(r, "missing", DIG3, 15, -1);
    expect_anchor(r, DIG3, 15, false);
    json_decref(r);
    /* Whatever the time range: records 1-5 only. */
    r = validate_anchored(t, anchor, rec_time(1), rec_time(5));
    expect_invalid(r);
    expect_problem(r, "missing", DIG3, 15, -1);
    json_decref(r);
    /* The newest two. */
    remove_digest(t, DIG2);
    remove_file(t, SEG2);
    r = validate_anchored(t, anchor, 0, 0);
    expect_invalid(r);
    expect_problem(r, "missing", DIG3, 15, -1);
    json_decref(r);
    free(anchor);
    trail_free(t);
}

/* The anchored digest is there, the records it covers are not. */
static void test_anchor_records_missing(void **state)
{
    trail *t = standard_trail();
    trail_seal(t);
    char *anchor = anchor_for(t, DIG3, 15);
    remove_file(t, SEG3);
    json_t *r = validate_anchored(t, anchor, 0, 0);
    expect_invalid(r);
    expect_problem(r, "missing", SEG3, -1, -1); /* as without the anchor */
    expect_problem(r, "missing", DIG3, 11, -1); /* records 11-15 */
    expect_anchor(r, DIG3, 15, false);
    json_decref(r);
    free(anchor);
    trail_free(t);
}

/* The newest digest replaced by another one, signed with the right key (as a holder of the key
 * could): only the anchor sees it. A trail ahead of the anchor is fine. */
static void test_anchor_modified_and_ahead(void **state)
{
    trail *t = standard_trail();
    trail_seal(t);
    char *anchor = anchor_for(t, DIG3, 15), *older = anchor_for(t, DIG2, 10);
    json_t *r = validate_anchored(t, older, 0, 0);
    expect_valid(r);
    expect_anchor(r, DIG2, 10, true);
    json_decref(r);
    char *path = rel_path(t, DIG3);
    json_t *d = json_load_file(path, 0, NULL);
    assert_non_null(d);
    json_object_set_new(d, "digestEndTime", json_string("2026-05-28T23:59:59Z"));
    char *json = json_dumps(d, JSON_COMPACT);
    assert_non_null(json);
    write_signed(t->dir, DIG3, json, t->key, NULL);
    r = validate(t, 0, 0);
    expect_valid(r);
    json_decref(r);
    r = validate_anchored(t, anchor, 0, 0);
    expect_invalid(r);
    expect_problem(r, "modified", DIG3, 15, -1);
    expect_anchor(r, DIG3, 15, false);
    json_decref(r);
    free(json);
    json_decref(d);
    free(path);
    free(older);
    free(anchor);
    trail_free(t);
}

static void test_anchor_malformed(void **state)
{
    trail *t = standard_trail();
    char *good = anchor_for(t, DIG2, 10);
    const char *hash = good + strlen(good) - KMS_AUDIT_HASH_HEX;
    char *bad[] = {
        strdup(""),
        kms_strdup_printf("%s\n", good),
        kms_strdup_printf("10 %s", DIG2),
        kms_strdup_printf("010 %s %s", DIG2, hash),
        kms_strdup_printf("5 %s %s", DIG2, hash),
        kms_strdup_printf("10 digests/10.json %s", hash),
        kms_strdup_printf("10 %s %.40s", DIG2, hash),
        kms_strdup_printf("10 %s %s extra", DIG2, hash),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *r = validate_anchored(t, bad[i], 0, 0);
        expect_invalid(r);
        expect_problem(r, "malformed", "anchor", -1, -1);
        assert_true(json_is_null(json_object_get(r, "Anchor")));
        json_decref(r);
        free(bad[i]);
    }
    free(good);
    trail_free(t);
}

static void sha256_hex_of(const char *p, size_t n, char out[KMS_AUDIT_HASH_HEX + 1])
{
    kms_audit_sha256_hex(p, n, out);
}

/* An AuditLogRepaired record as the writer appends it. */
static void append_repair(trail *t, const char *seg, int64_t offset, const char *bytes, size_t n)
{
    char sha[KMS_AUDIT_HASH_HEX + 1];
    sha256_hex_of(bytes, n, sha);
    char *body = kms_strdup_printf(
        "{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-05-28T22:00:00Z\","
        "\"eventSource\":\"kms.amazonaws.com\",\"eventName\":\"AuditLogRepaired\","
        "\"eventType\":\"AwsServiceEvent\",\"serviceEventDetails\":{\"segment\":\"%s\","
        "\"offset\":%lld,\"length\":%zu,\"sha256\":\"%s\"}}",
        seg, (long long)offset, n, sha);
    assert_non_null(body);
    trail_append_body(t, body);
    free(body);
}

/* Every torn/ file is the cut of an AuditLogRepaired record, byte for byte. */
static void test_torn_files(void **state)
{
    trail *t = standard_trail();
    char *torn = rel_path(t, "torn");
    assert_int_equal(mkdir(torn, 0700), 0);
    static const char cut[] = "{\"eventVersion\":\"1.08\",\"eventTi";
    static const char cut2[] = "{\"eventVersion\":\"1.08\",\"ev";
    const char *f1 = "torn/00000000000000000011.jsonl-1234";
    const char *f2 = "torn/00000000000000000011.jsonl-1234.1";
    char *p1 = rel_path(t, f1), *p2 = rel_path(t, f2);
    write_file(p1, cut, strlen(cut), "wb");
    /* No record: a repair interrupted before its record, or a file put there. */
    json_t *r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "unrecorded-repair", f1, -1, -1);
    json_decref(r);
    /* Its record, and no time range hides the file. */
    append_repair(t, SEG3, 1234, cut, strlen(cut));
    r = validate(t, 0, 0);
    expect_valid(r);
    json_decref(r);
    /* A second cut at the same offset (the .K name) needs a record of its own. */
    write_file(p2, cut2, strlen(cut2), "wb");
    r = validate(t, rec_time(1), rec_time(2));
    expect_invalid(r);
    expect_problem(r, "unrecorded-repair", f2, -1, -1);
    json_decref(r);
    append_repair(t, SEG3, 1234, cut2, strlen(cut2));
    r = validate(t, 0, 0);
    expect_valid(r);
    json_decref(r);
    /* Changed bytes, same length: no longer what the record says was cut. */
    write_file(p1, "X", 1, "r+b");
    r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "unrecorded-repair", f1, -1, -1);
    json_decref(r);
    write_file(p1, cut, strlen(cut), "wb");
    /* Names that are not torn lines. */
    char *junk = rel_path(t, "torn/notes.txt");
    write_file(junk, "x", 1, "wb");
    r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "unexpected", "torn/notes.txt", -1, -1);
    json_decref(r);
    free(junk);
    free(p1);
    free(p2);
    free(torn);
    trail_free(t);
}

/* A FIFO, device or symlink in the trail is refused, never opened for reading (a FIFO would
 * block validate-logs for ever). */
static void test_non_regular_files(void **state)
{
    trail *t = standard_trail();
    char *sig = kms_strdup_printf("%s/%s.sig", t->dir, DIG1);
    char *torn = rel_path(t, "torn");
    assert_non_null(sig);
    assert_int_equal(unlink(sig), 0);
    assert_int_equal(mkfifo(sig, 0600), 0);
    assert_int_equal(mkdir(torn, 0700), 0);
    const char *fifos[] = {"segments/00000000000000000016.jsonl",
                           "digests/00000000000000000020.json",
                           "torn/00000000000000000011.jsonl-99"};
    for (size_t i = 0; i < sizeof fifos / sizeof fifos[0]; i++) {
        char *p = rel_path(t, fifos[i]);
        assert_int_equal(mkfifo(p, 0600), 0);
        free(p);
    }
    char *link = rel_path(t, "segments/00000000000000000017.jsonl");
    char *tlink = rel_path(t, "torn/00000000000000000011.jsonl-100");
    char *seg1 = rel_path(t, SEG1);
    assert_int_equal(symlink(seg1, link), 0);
    assert_int_equal(symlink(seg1, tlink), 0);
    alarm(60); /* a hang fails the test instead of blocking the run */
    json_t *r = validate(t, 0, 0);
    alarm(0);
    expect_invalid(r);
    char sig_rel[64];
    snprintf(sig_rel, sizeof sig_rel, "%s.sig", DIG1);
    expect_problem(r, "unexpected", sig_rel, -1, -1);
    for (size_t i = 0; i < sizeof fifos / sizeof fifos[0]; i++) {
        expect_problem(r, "unexpected", fifos[i], -1, -1);
    }
    expect_problem(r, "unexpected", "segments/00000000000000000017.jsonl", -1, -1);
    expect_problem(r, "unexpected", "torn/00000000000000000011.jsonl-100", -1, -1);
    json_decref(r);
    free(seg1);
    free(link);
    free(tlink);
    free(torn);
    free(sig);
    trail_free(t);
}

static void append_zeros(const trail *t, const char *rel, size_t n)
{
    char *p = rel_path(t, rel), *z = calloc(1, n ? n : 1);
    assert_non_null(z);
    write_file(p, z, n, "ab");
    free(z);
    free(p);
}

/* The open segment may end in NUL bytes the writer preallocated; nothing else may. */
static void test_open_segment_padding(void **state)
{
    trail *t = standard_trail();
    append_zeros(t, SEG3, 1000);
    json_t *r = validate(t, 0, 0);
    expect_valid(r);
    assert_int_equal(counter(r, "Records", "Unsigned"), 5);
    assert_int_equal(counter(r, "Records", "Invalid"), 0);
    json_decref(r);
    /* Longer than any line the reader holds. */
    append_zeros(t, SEG3, KMS_AUDIT_RECORD_MAX + 4096);
    r = validate(t, 0, 0);
    expect_valid(r);
    json_decref(r);
    /* Something after the NULs: not unused space. */
    char *p = rel_path(t, SEG3);
    write_file(p, "x", 1, "ab");
    r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "torn", SEG3, -1, 6);
    json_decref(r);
    free(p);
    trail_free(t);

    /* NULs ended by a '\n', and a NUL inside a line, are no records. */
    t = standard_trail();
    p = rel_path(t, SEG3);
    static const char bad[] = "\0\0\0\n{\"eventName\":\0\"x\"}\n";
    write_file(p, bad, sizeof bad - 1, "ab");
    append_zeros(t, SEG3, 100);
    r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "malformed", SEG3, -1, 6);
    expect_problem(r, "malformed", SEG3, -1, 7);
    json_decref(r);
    free(p);
    /* A segment its digest lists never has unused space: NULs there changed it. */
    append_zeros(t, SEG2, 100);
    r = validate(t, 0, 0);
    expect_invalid(r);
    expect_problem(r, "torn", SEG2, -1, 6);
    expect_problem(r, "modified", SEG2, -1, -1);
    json_decref(r);
    trail_free(t);

    /* A new open segment preallocated before its first record: NULs from offset 0. */
    t = standard_trail();
    trail_seal(t);
    append_zeros(t, "segments/00000000000000000016.jsonl", 4096);
    r = validate(t, 0, 0);
    expect_valid(r);
    assert_int_equal(counter(r, "Records", "Valid"), 15);
    json_decref(r);
    trail_free(t);
}

/* ---- lookup-events --------------------------------------------------------------------------- */

#define LOOKUP_RECORDS 130

static trail *lookup_trail(void)
{
    trail *t = trail_new();
    trail_append(t, 50);
    trail_seal(t);
    trail_append(t, 50);
    trail_seal(t);
    trail_append(t, LOOKUP_RECORDS - 100);
    return t;
}

static json_t *lookup(const trail *t, const char *key, const char *value, int64_t start,
                      int64_t end, int max, const char *token)
{
    kms_audit_query q = {key, value, start, end, max, token, NULL};
    json_t *r = NULL;
    if (kms_audit_lookup(t->dir, &q, &r) != 0) {
        fail_msg("kms_audit_lookup(%s=%s): %s", key ? key : "-", value ? value : "-",
                 kms_last_error_message());
    }
    assert_non_null(r);
    return r;
}

static int64_t event_seq(const json_t *e)
{
    const char *id = json_string_value(json_object_get(e, "EventId"));
    assert_non_null(id);
    return strtoll(id + 24, NULL, 10);
}

/* Pages through a lookup with page size max: the sequences in order, checked newest first and
 * without repeats. Returns how many. */
static size_t lookup_all(const trail *t, const char *key, const char *value, int64_t start,
                         int64_t end, int max, int64_t *seqs, size_t cap)
{
    size_t n = 0, pages = 0;
    char *token = NULL;
    do {
        json_t *r = lookup(t, key, value, start, end, max, token);
        free(token);
        token = NULL;
        const json_t *evs = json_object_get(r, "Events");
        assert_true(json_array_size(evs) <= (size_t)(max ? max : 50));
        for (size_t i = 0; i < json_array_size(evs); i++) {
            assert_true(n < cap);
            seqs[n] = event_seq(json_array_get(evs, i));
            if (n > 0) {
                assert_true(seqs[n] < seqs[n - 1]); /* newest first, no repeats */
            }
            n++;
        }
        const char *next = json_string_value(json_object_get(r, "NextToken"));
        if (next != NULL) {
            assert_int_equal(json_array_size(evs), (size_t)(max ? max : 50));
            token = strdup(next);
        }
        json_decref(r);
        assert_true(++pages < 1000);
    } while (token != NULL);
    return n;
}

typedef bool (*record_pred)(int64_t seq, const void *arg);

static void expect_lookup(const trail *t, const char *key, const char *value, int64_t start,
                          int64_t end, record_pred pred, const void *arg)
{
    int64_t seqs[LOOKUP_RECORDS + 10];
    size_t n = lookup_all(t, key, value, start, end, 7, seqs, LOOKUP_RECORDS + 10);
    size_t k = 0;
    for (int64_t s = t->seq; s >= 1; s--) {
        if (!pred(s, arg) || (start && rec_time(s) < start) || (end && rec_time(s) > end)) {
            continue;
        }
        if (k >= n || seqs[k] != s) {
            fail_msg("%s=%s: expected record %lld at position %zu", key ? key : "-",
                     value ? value : "-", (long long)s, k);
        }
        k++;
    }
    assert_int_equal(k, n);
    assert_true(n > 0);
}

static bool any(int64_t seq, const void *arg)
{
    return true;
}

static bool by_name(int64_t seq, const void *arg)
{
    return strcmp(rec_name(seq), arg) == 0;
}

static bool by_user(int64_t seq, const void *arg)
{
    return rec_user(seq) == *(const int *)arg;
}

static bool by_key(int64_t seq, const void *arg)
{
    return rec_key(seq) != NULL && strcmp(rec_key(seq), arg) == 0;
}

static bool has_key(int64_t seq, const void *arg)
{
    return rec_key(seq) != NULL;
}

static bool by_read_only(int64_t seq, const void *arg)
{
    return rec_read_only(seq) == *(const bool *)arg;
}

static bool by_seq(int64_t seq, const void *arg)
{
    return seq == *(const int64_t *)arg;
}

static void test_lookup_filters(void **state)
{
    trail *t = lookup_trail();
    expect_lookup(t, NULL, NULL, 0, 0, any, NULL);
    for (size_t i = 0; i < 5; i++) {
        expect_lookup(t, "EventName", NAMES[i], 0, 0, by_name, NAMES[i]);
    }
    static const int users[] = {0, 1, 2};
    expect_lookup(t, "Username", "alice", 0, 0, by_user, &users[0]);
    expect_lookup(t, "Username", "sess-7", 0, 0, by_user, &users[1]); /* AssumedRole */
    expect_lookup(t, "Username", "root", 0, 0, by_user, &users[2]);
    expect_lookup(t, "AccessKeyId", "ASIASESSION0007", 0, 0, by_user, &users[1]);
    for (size_t i = 0; i < 3; i++) {
        char arn[128];
        snprintf(arn, sizeof arn, "arn:aws:kms:us-east-1:" ACCOUNT ":key/%s", KEYS[i]);
        expect_lookup(t, "ResourceName", arn, 0, 0, by_key, KEYS[i]);
        expect_lookup(t, "ResourceName", KEYS[i], 0, 0, by_key, KEYS[i]);
    }
    expect_lookup(t, "ResourceType", "AWS::KMS::Key", 0, 0, has_key, NULL);
    expect_lookup(t, "EventSource", "kms.amazonaws.com", 0, 0, any, NULL);
    static const bool ro[] = {true, false};
    expect_lookup(t, "ReadOnly", "true", 0, 0, by_read_only, &ro[0]);
    expect_lookup(t, "ReadOnly", "false", 0, 0, by_read_only, &ro[1]);
    static const int64_t one = 77;
    expect_lookup(t, "EventId", "00000000-0000-4000-8000-000000000077", 0, 0, by_seq, &one);
    /* Time ranges, alone and with a filter. */
    expect_lookup(t, NULL, NULL, rec_time(20), rec_time(60), any, NULL);
    expect_lookup(t, NULL, NULL, rec_time(120), 0, any, NULL);
    expect_lookup(t, "EventName", "Decrypt", 0, rec_time(40), by_name, "Decrypt");
    /* Nothing matches: an empty page, no token. */
    json_t *r = lookup(t, "EventName", "CreateAlias", 0, 0, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(r, "Events")), 0);
    assert_null(json_object_get(r, "NextToken"));
    json_decref(r);
    trail_free(t);
}

static void test_lookup_event_shape(void **state)
{
    trail *t = lookup_trail();
    json_t *r = lookup(t, "EventId", "00000000-0000-4000-8000-000000000061", 0, 0, 0, NULL);
    const json_t *evs = json_object_get(r, "Events");
    assert_int_equal(json_array_size(evs), 1);
    const json_t *e = json_array_get(evs, 0); /* record 61: Decrypt by sess-7 */
    char when[32];
    kms_time_iso8601(rec_time(61), when);
    assert_string_equal(json_string_value(json_object_get(e, "EventName")), "Decrypt");
    assert_string_equal(json_string_value(json_object_get(e, "ReadOnly")), "false");
    assert_string_equal(json_string_value(json_object_get(e, "AccessKeyId")), "ASIASESSION0007");
    assert_string_equal(json_string_value(json_object_get(e, "EventTime")), when);
    assert_string_equal(json_string_value(json_object_get(e, "EventSource")), "kms.amazonaws.com");
    assert_string_equal(json_string_value(json_object_get(e, "Username")), "sess-7");
    const json_t *res = json_array_get(json_object_get(e, "Resources"), 0);
    assert_string_equal(json_string_value(json_object_get(res, "ResourceType")), "AWS::KMS::Key");
    char arn[128];
    snprintf(arn, sizeof arn, "arn:aws:kms:us-east-1:" ACCOUNT ":key/%s", rec_key(61));
    assert_string_equal(json_string_value(json_object_get(res, "ResourceName")), arn);
    char *line = get_line(t, "segments/00000000000000000051.jsonl", 11);
    assert_string_equal(json_string_value(json_object_get(e, "CloudTrailEvent")), line);
    free(line);
    /* The members in CloudTrail's order (LookupEvents' Event): the response is written as built. */
    static const char *const order[] = {"EventId",     "EventName", "ReadOnly",
                                        "AccessKeyId", "EventTime", "EventSource",
                                        "Username",    "Resources", "CloudTrailEvent"};
    size_t i = 0;
    const char *key;
    const json_t *member;
    json_object_foreach((json_t *)e, key, member)
    {
        (void)member;
        assert_true(i < sizeof order / sizeof order[0]);
        assert_string_equal(key, order[i]);
        i++;
    }
    assert_int_equal(i, sizeof order / sizeof order[0]);
    json_decref(r);
    /* index.db is private. */
    char *db = rel_path(t, "index.db");
    struct stat st;
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(db);
    trail_free(t);
}

static void test_lookup_paging(void **state)
{
    trail *t = lookup_trail();
    int64_t seqs[LOOKUP_RECORDS];
    static const int sizes[] = {1, 3, 50, 0};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = lookup_all(t, NULL, NULL, 0, 0, sizes[i], seqs, LOOKUP_RECORDS);
        assert_int_equal(n, LOOKUP_RECORDS);
        assert_int_equal(seqs[0], LOOKUP_RECORDS);
        assert_int_equal(seqs[n - 1], 1);
    }
    /* A page exactly as large as what is left: no token. */
    json_t *r = lookup(t, "EventName", "Encrypt", 0, 0, 26, NULL);
    assert_int_equal(json_array_size(json_object_get(r, "Events")), 26);
    assert_null(json_object_get(r, "NextToken"));
    json_decref(r);
    trail_free(t);
}

static void test_lookup_invalid(void **state)
{
    trail *t = lookup_trail();
    json_t *r = NULL;
    kms_audit_query q = {"eventName", "Encrypt", 0, 0, 0, NULL, NULL};
    assert_kms_error(kms_audit_lookup(t->dir, &q, &r), KMS_ERR_VALIDATION);
    assert_non_null(strstr(kms_last_error_message(), "ResourceType"));
    q = (kms_audit_query){"ReadOnly", "yes", 0, 0, 0, NULL, NULL};
    assert_kms_error(kms_audit_lookup(t->dir, &q, &r), KMS_ERR_VALIDATION);
    q = (kms_audit_query){"EventName", NULL, 0, 0, 0, NULL, NULL};
    assert_kms_error(kms_audit_lookup(t->dir, &q, &r), KMS_ERR_VALIDATION);
    q = (kms_audit_query){NULL, NULL, 0, 0, 51, NULL, NULL};
    assert_kms_error(kms_audit_lookup(t->dir, &q, &r), KMS_ERR_VALIDATION);
    q = (kms_audit_query){NULL, NULL, 0, 0, -1, NULL, NULL};
    assert_kms_error(kms_audit_lookup(t->dir, &q, &r), KMS_ERR_VALIDATION);
    q = (kms_audit_query){NULL, NULL, 200, 100, 0, NULL, NULL};
    assert_kms_error(kms_audit_lookup(t->dir, &q, &r), KMS_ERR_VALIDATION);
    static const char *const tokens[] = {"garbage!", "", "MTIz", "YWJjLmRlZg==", "MTIzLjQ1Ng==x"};
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        q = (kms_audit_query){NULL, NULL, 0, 0, 0, tokens[i], NULL};
        assert_kms_error(kms_audit_lookup(t->dir, &q, &r), KMS_ERR_VALIDATION);
        assert_non_null(strstr(kms_last_error_message(), "InvalidNextToken"));
    }
    assert_null(r);
    /* No audit directory; an index that cannot be written. */
    char *missing = rel_path(t, "nope");
    q = (kms_audit_query){NULL, NULL, 0, 0, 0, NULL, NULL};
    assert_kms_error(kms_audit_lookup(missing, &q, &r), KMS_ERR_AUDIT);
    free(missing);
    char *db = rel_path(t, "index.db");
    assert_int_equal(mkdir(db, 0700), 0);
    assert_kms_error(kms_audit_lookup(t->dir, &q, &r), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "index.db"));
    assert_int_equal(rmdir(db), 0);
    free(db);
    trail_free(t);
}

static void test_lookup_catch_up(void **state)
{
    trail *t = lookup_trail();
    json_t *r = lookup(t, NULL, NULL, 0, 0, 1, NULL);
    assert_int_equal(event_seq(json_array_get(json_object_get(r, "Events"), 0)), LOOKUP_RECORDS);
    json_decref(r);
    /* More lines, a torn (incomplete) one among them: only complete lines count. */
    trail_append(t, 3);
    trail_seal(t);
    trail_append(t, 2);
    char rel[64];
    seg_rel(t->seg_first, rel, sizeof rel);
    char *p = rel_path(t, rel);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    char *body = record_body(t->seq + 1, NULL);
    write_file(p, body, 20, "ab");
    r = lookup(t, NULL, NULL, 0, 0, 50, NULL);
    assert_int_equal(json_array_size(json_object_get(r, "Events")), 50);
    assert_int_equal(event_seq(json_array_get(json_object_get(r, "Events"), 0)),
                     LOOKUP_RECORDS + 5);
    json_decref(r);
    /* The torn bytes cut off and the record written whole, as the writer's repair does. */
    assert_int_equal(truncate(p, st.st_size), 0);
    trail_append(t, 1);
    r = lookup(t, "EventId", "00000000-0000-4000-8000-000000000136", 0, 0, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(r, "Events")), 1);
    json_decref(r);
    int64_t seqs[LOOKUP_RECORDS + 10];
    assert_int_equal(lookup_all(t, NULL, NULL, 0, 0, 50, seqs, LOOKUP_RECORDS + 10),
                     LOOKUP_RECORDS + 6);
    free(body);
    free(p);
    trail_free(t);
}

static void test_lookup_rebuild(void **state)
{
    trail *t = lookup_trail();
    int64_t seqs[LOOKUP_RECORDS];
    assert_int_equal(lookup_all(t, NULL, NULL, 0, 0, 50, seqs, LOOKUP_RECORDS), LOOKUP_RECORDS);
    /* Replace the first segment by one with other event names (same sequences and size class). */
    trail *u = trail_new();
    u->name_override = "ReplacedOp";
    trail_append(u, 50);
    char *from = rel_path(u, "segments/00000000000000000001.jsonl");
    char *to = rel_path(t, "segments/00000000000000000001.jsonl");
    char *saved = rel_path(t, "first.saved");
    assert_int_equal(rename(to, saved), 0);
    assert_int_equal(rename(from, to), 0);
    /* Record 51 links to the record 50 that was replaced: the chain is broken, and lookups are
     * refused (validate-logs says where) rather than answered from a part of it. */
    kms_audit_query q = {"EventName", "ReplacedOp", 0, 0, 50, NULL, NULL};
    json_t *r = NULL;
    assert_kms_error(kms_audit_lookup(t->dir, &q, &r), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "validate-logs"));
    /* The original back: rebuilt, the whole chain listed again. */
    assert_int_equal(rename(saved, to), 0);
    free(saved);
    assert_int_equal(lookup_all(t, NULL, NULL, 0, 0, 50, seqs, LOOKUP_RECORDS), LOOKUP_RECORDS);
    /* A segment that vanished: the chain has a gap before the last segment, whose lines are
     * not listed (without acks nothing tells them from lines planted there; with acks the
     * acknowledged ones after the gap make lookups refused, test_audit_forgery.sh). */
    char *second = rel_path(t, "segments/00000000000000000051.jsonl");
    char *aside = rel_path(t, "second.aside");
    assert_int_equal(rename(second, aside), 0);
    assert_int_equal(lookup_all(t, NULL, NULL, 0, 0, 50, seqs, LOOKUP_RECORDS), 50);
    assert_int_equal(rename(aside, second), 0);
    free(aside);
    /* A garbage index: recreated. */
    char *db = rel_path(t, "index.db");
    char *wal = kms_strdup_printf("%s-wal", db), *shm = kms_strdup_printf("%s-shm", db);
    unlink(wal);
    unlink(shm);
    write_file(db, "this is not a database, not at all, no, not even close............", 64, "wb");
    assert_int_equal(lookup_all(t, NULL, NULL, 0, 0, 50, seqs, LOOKUP_RECORDS), LOOKUP_RECORDS);
    free(db);
    free(wal);
    free(shm);
    free(second);
    free(from);
    free(to);
    trail_free(u);
    trail_free(t);
}

/* ---- usage-report --------------------------------------------------------------------------- */

static const json_t *find_by(const json_t *arr, const char *k, const char *v)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        const char *s = json_string_value(json_object_get(e, k));
        if (s != NULL && strcmp(s, v) == 0) {
            return e;
        }
    }
    fail_msg("no entry with %s %s", k, v);
    return NULL;
}

static void check_usage(const trail *t, int64_t lo, int64_t hi)
{
    json_t *r = NULL;
    assert_int_equal(
        kms_audit_usage_report(t->dir, NULL, lo ? rec_time(lo) : 0, hi ? rec_time(hi) : 0, &r), 0);
    int64_t from = lo ? lo : 1, to = hi ? hi : t->seq;
    assert_int_equal(json_integer_value(json_object_get(r, "Requests")), to - from + 1);
    if (lo == 0) {
        assert_true(json_is_null(json_object_get(r, "StartTime")));
    }
    const json_t *ops = json_object_get(r, "Operations");
    for (size_t i = 0; i < 5; i++) {
        json_int_t req = 0, err = 0;
        for (int64_t s = from; s <= to; s++) {
            req += strcmp(rec_name(s), NAMES[i]) == 0;
            err += strcmp(rec_name(s), NAMES[i]) == 0 && rec_error(s);
        }
        const json_t *op = find_by(ops, "EventName", NAMES[i]);
        assert_string_equal(json_string_value(json_object_get(op, "EventSource")),
                            "kms.amazonaws.com");
        assert_int_equal(json_integer_value(json_object_get(op, "Requests")), req);
        assert_int_equal(json_integer_value(json_object_get(op, "Errors")), err);
    }
    const json_t *keys = json_object_get(r, "Keys");
    assert_int_equal(json_array_size(keys), 3);
    json_int_t prev = INT64_MAX;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        const json_t *k = json_array_get(keys, i);
        json_int_t n = json_integer_value(json_object_get(k, "Requests"));
        assert_true(n <= prev); /* sorted by Requests descending */
        prev = n;
        const char *arn = json_string_value(json_object_get(k, "KeyArn"));
        const char *id = strrchr(arn, '/') + 1;
        json_int_t want = 0, dec = 0, dec_err = 0;
        for (int64_t s = from; s <= to; s++) {
            bool mine = rec_key(s) != NULL && strcmp(rec_key(s), id) == 0;
            want += mine;
            dec += mine && strcmp(rec_name(s), "Decrypt") == 0;
            dec_err += mine && strcmp(rec_name(s), "Decrypt") == 0 && rec_error(s);
        }
        assert_int_equal(n, want);
        const json_t *op = find_by(json_object_get(k, "Operations"), "EventName", "Decrypt");
        assert_int_equal(json_integer_value(json_object_get(op, "Requests")), dec);
        assert_int_equal(json_integer_value(json_object_get(op, "Errors")), dec_err);
    }
    json_decref(r);
}

static void test_usage_report(void **state)
{
    trail *t = lookup_trail();
    check_usage(t, 0, 0);
    check_usage(t, 30, 90);
    /* A service event is not a request. */
    trail_append_body(t, "{\"eventTime\":\"2026-05-29T00:00:00Z\",\"eventSource\":"
                         "\"kms.amazonaws.com\",\"eventName\":\"AuditLogRepaired\","
                         "\"eventType\":\"AwsServiceEvent\"}");
    json_t *r = NULL;
    assert_int_equal(kms_audit_usage_report(t->dir, NULL, 0, 0, &r), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "Requests")), LOOKUP_RECORDS);
    json_decref(r);
    assert_kms_error(kms_audit_usage_report(t->dir, NULL, 10, 5, &r), KMS_ERR_VALIDATION);
    trail_free(t);
}

/* ---- validate-logs against an anchor kept off the machine (audit.h) ------------------------- */

static json_t *validate_against(const trail *t, const char *expect, int64_t start, int64_t end)
{
    json_t *r = NULL;
    if (kms_audit_validate_against(t->dir, t->spki, t->spki_len, NULL, expect, start, end, &r) !=
        0) {
        fail_msg("kms_audit_validate_against: %s", kms_last_error_message());
    }
    assert_non_null(r);
    return r;
}

/* The report's ExpectedAnchor member, and a problem of `kind` for it whose message holds `what`
 * (what NULL: no problem expected). */
static void expect_expected(const json_t *r, int64_t seq, const char *hash, bool found,
                            const char *kind, const char *what)
{
    const json_t *e = json_object_get(r, "ExpectedAnchor");
    const char *h = json_string_value(json_object_get(e, "Hash"));
    if (json_integer_value(json_object_get(e, "Sequence")) != seq || h == NULL ||
        strcmp(h, hash) != 0 || json_is_true(json_object_get(e, "Found")) != found) {
        dump(r);
        fail_msg("ExpectedAnchor should be {Sequence: %lld, Hash: %s, Found: %d}", (long long)seq,
                 hash, found);
    }
    if (what == NULL) {
        expect_valid(r);
        return;
    }
    expect_invalid(r);
    expect_problem(r, kind, "expected-anchor", seq, -1);
    const json_t *ps = json_object_get(r, "Problems");
    for (size_t i = 0; i < json_array_size(ps); i++) {
        const char *m = json_string_value(json_object_get(json_array_get(ps, i), "Message"));
        if (m != NULL && strstr(m, what) != NULL) {
            return;
        }
    }
    dump(r);
    fail_msg("no problem says '%s'", what);
}

/* The chain hash of record lineno of segment rel: SHA-256 of its line. */
static void line_hash(const trail *t, const char *rel, int lineno, char out[KMS_AUDIT_HASH_HEX + 1])
{
    char *line = get_line(t, rel, lineno);
    kms_audit_sha256_hex(line, strlen(line), out);
    free(line);
}

/* The whole home rolled back (trail and token together: the HSM anchor goes back too, so only
 * an anchor kept elsewhere sees it); then the rolled-back trail going on under the same
 * numbers. */
static void test_expected_anchor_rollback(void **state)
{
    trail *t = standard_trail();
    trail_seal(t); /* digests 5, 10, 15 */
    char h10[KMS_AUDIT_HASH_HEX + 1], h15[KMS_AUDIT_HASH_HEX + 1], e10[96], e15[96], upper[96];
    line_hash(t, SEG2, 5, h10);
    line_hash(t, SEG3, 5, h15);
    snprintf(e10, sizeof e10, "10:%s", h10);
    snprintf(e15, sizeof e15, "15:%s", h15);
    json_t *r = validate_against(t, e15, 0, 0);
    expect_expected(r, 15, h15, true, NULL, NULL);
    json_decref(r);
    r = validate_against(t, e10, 0, 0); /* an older anchor: the trail went on, fine */
    expect_expected(r, 10, h10, true, NULL, NULL);
    json_decref(r);
    for (size_t i = 0; i < strlen(e15); i++) {
        upper[i] = (char)(e15[i] >= 'a' && e15[i] <= 'f' ? e15[i] - 'a' + 'A' : e15[i]);
    }
    upper[strlen(e15)] = '\0';
    r = validate_against(t, upper, 0, 0);
    expect_expected(r, 15, h15, true, NULL, NULL);
    json_decref(r);
    /* Back to the copy made after record 10: its digests and the HSM anchor agree. */
    remove_digest(t, DIG3);
    remove_file(t, SEG3);
    char *hsm_anchor = anchor_for(t, DIG2, 10);
    r = validate_anchored(t, hsm_anchor, 0, 0);
    expect_valid(r); /* the documented limit */
    json_decref(r);
    r = validate_against(t, e15, 0, 0);
    expect_expected(r, 15, h15, false, "missing", "the trail ends before the expected anchor");
    json_decref(r);
    r = validate_against(t, e15, rec_time(1), rec_time(5)); /* whatever the time range */
    expect_expected(r, 15, h15, false, "missing", "the trail ends before the expected anchor");
    json_decref(r);
    r = validate_against(t, e10, 0, 0);
    expect_expected(r, 10, h10, true, NULL, NULL);
    json_decref(r);
    /* The restored home goes on: records 11-15 again, other ones. */
    t->seg_first = 0;
    t->seq = 10;
    line_hash(t, SEG2, 5, t->prev_hash);
    t->name_override = "ListAliases";
    trail_append(t, 5);
    r = validate_anchored(t, hsm_anchor, 0, 0);
    expect_valid(r);
    json_decref(r);
    r = validate_against(t, e15, 0, 0);
    expect_expected(r, 15, h15, false, "modified", "record 15 does not match the expected anchor");
    json_decref(r);
    free(hsm_anchor);
    trail_free(t);
}

/* The expected record deleted from the middle of the trail. */
static void test_expected_anchor_record_missing(void **state)
{
    trail *t = standard_trail();
    char h8[KMS_AUDIT_HASH_HEX + 1], e8[96];
    line_hash(t, SEG2, 3, h8);
    snprintf(e8, sizeof e8, "8:%s", h8);
    remove_file(t, SEG2);
    json_t *r = validate_against(t, e8, 0, 0);
    expect_expected(r, 8, h8, false, "missing", "is missing from the trail");
    json_decref(r);
    trail_free(t);
}

static void test_expected_anchor_malformed(void **state)
{
    trail *t = standard_trail();
    char h[KMS_AUDIT_HASH_HEX + 1];
    line_hash(t, SEG1, 1, h);
    char *bad[] = {
        strdup(""),
        strdup("1"),
        strdup("1:"),
        kms_strdup_printf("0:%s", h),
        kms_strdup_printf("01:%s", h),
        kms_strdup_printf("-1:%s", h),
        kms_strdup_printf("1 %s", h),
        kms_strdup_printf("1:%s0", h),
        kms_strdup_printf("1:%.63sg", h),
        kms_strdup_printf("1:%s\n", h),
        kms_strdup_printf("99999999999999999999:%s", h),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *r = NULL;
        assert_kms_error(
            kms_audit_validate_against(t->dir, t->spki, t->spki_len, NULL, bad[i], 0, 0, &r),
            KMS_ERR_VALIDATION);
        assert_null(r);
        uint64_t seq = 1;
        char out[KMS_AUDIT_HASH_HEX + 1];
        const char *why = NULL;
        assert_false(kms_audit_expected_anchor_parse(bad[i], &seq, out, &why));
        assert_non_null(why);
        assert_int_equal(seq, 0);
        free(bad[i]);
    }
    trail_free(t);
}

/* get-audit-anchor's source: the record the HSM anchor covers, taken from the anchored digest
 * once its bytes hash to the anchored value. */
static void test_anchor_record(void **state)
{
    trail *t = standard_trail();
    uint64_t seq = 0;
    char hash[KMS_AUDIT_HASH_HEX + 1], file[64], h10[KMS_AUDIT_HASH_HEX + 1];
    char *anchor = anchor_for(t, DIG2, 10);
    assert_int_equal(kms_audit_anchor_record(t->dir, anchor, &seq, hash, file), 0);
    line_hash(t, SEG2, 5, h10);
    assert_int_equal(seq, 10);
    assert_string_equal(hash, h10);
    assert_string_equal(file, DIG2);
    /* malformed, the digest replaced, the digest gone: refused, outputs cleared */
    assert_kms_error(kms_audit_anchor_record(t->dir, "10 digests/x.json abc", &seq, hash, file),
                     KMS_ERR_AUDIT);
    assert_int_equal(seq, 0);
    assert_string_equal(hash, "");
    assert_string_equal(file, "");
    char *path = rel_path(t, DIG2);
    size_t n = 0;
    char *bytes = read_file(path, &n);
    write_file(path, bytes, n - 1, "wb");
    assert_kms_error(kms_audit_anchor_record(t->dir, anchor, &seq, hash, file), KMS_ERR_AUDIT);
    remove_digest(t, DIG2);
    assert_kms_error(kms_audit_anchor_record(t->dir, anchor, &seq, hash, file), KMS_ERR_AUDIT);
    assert_int_equal(seq, 0);
    free(bytes);
    free(path);
    free(anchor);
    trail_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_trail),
        cmocka_unit_test(test_empty_trail),
        cmocka_unit_test(test_flip_sealed_record),
        cmocka_unit_test(test_flip_last_sealed_record),
        cmocka_unit_test(test_flip_open_record),
        cmocka_unit_test(test_malformed_line),
        cmocka_unit_test(test_delete_record),
        cmocka_unit_test(test_delete_segment),
        cmocka_unit_test(test_swap_segments),
        cmocka_unit_test(test_truncate_segment),
        cmocka_unit_test(test_torn_last_line),
        cmocka_unit_test(test_forged_digest),
        cmocka_unit_test(test_missing_signature),
        cmocka_unit_test(test_digest_removed_from_chain),
        cmocka_unit_test(test_garbage_files),
        cmocka_unit_test(test_repairs_reported),
        cmocka_unit_test(test_time_filter),
        cmocka_unit_test(test_validate_arguments),
        cmocka_unit_test(test_time_filter_signed_times),
        cmocka_unit_test(test_time_filter_timeless),
        cmocka_unit_test(test_anchor_rollback),
        cmocka_unit_test(test_anchor_records_missing),
        cmocka_unit_test(test_anchor_modified_and_ahead),
        cmocka_unit_test(test_anchor_malformed),
        cmocka_unit_test(test_torn_files),
        cmocka_unit_test(test_non_regular_files),
        cmocka_unit_test(test_open_segment_padding),
        cmocka_unit_test(test_lookup_filters),
        cmocka_unit_test(test_lookup_event_shape),
        cmocka_unit_test(test_lookup_paging),
        cmocka_unit_test(test_lookup_invalid),
        cmocka_unit_test(test_lookup_catch_up),
        cmocka_unit_test(test_lookup_rebuild),
        cmocka_unit_test(test_usage_report),
        cmocka_unit_test(test_expected_anchor_rollback),
        cmocka_unit_test(test_expected_anchor_record_missing),
        cmocka_unit_test(test_expected_anchor_malformed),
        cmocka_unit_test(test_anchor_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
