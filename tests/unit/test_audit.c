/* Unit tests of the audit log writer (src/audit/audit_log.c): record lines, the chain, group
 * commit, several writers on one trail, sealing and digests, the rollback anchor, torn tails,
 * failed writes. */
#include "testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "kms/kms.h"
#include "util/util.h"

#define ACCOUNT "111122223333"

typedef struct fixture {
    char *tmp;
    char *dir; /* tmp/audit */
    EVP_PKEY *key;
    uint8_t *spki;
    size_t spki_len;
    bool fail_sign;
    /* The anchor's store (the HSM's data object in the service), when use_anchor() set it up. */
    char anchor[256];
    bool has_anchor;
    bool fail_anchor;
    int anchor_sets;
    kms_audit_options o;
} fixture;

/* The HSM's part, played by an in-memory P-256 key. */
static int test_sign(void *arg, const uint8_t digest[32], uint8_t **sig, size_t *sig_len)
{
    fixture *f = arg;
    if (f->fail_sign) {
        return kms_raise(KMS_ERR_HSM, "test signer refuses");
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(f->key, NULL);
    size_t len = 0;
    int ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
             EVP_PKEY_sign(ctx, NULL, &len, digest, 32) == 1 && (*sig = malloc(len)) != NULL &&
             EVP_PKEY_sign(ctx, *sig, &len, digest, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        return kms_raise(KMS_ERR_HSM, "test signer failed");
    }
    *sig_len = len;
    return 0;
}

static int test_anchor_get(void *arg, char **text)
{
    fixture *f = arg;
    *text = NULL;
    if (f->fail_anchor) {
        return kms_raise(KMS_ERR_HSM, "test anchor store unreachable");
    }
    if (f->has_anchor && (*text = strdup(f->anchor)) == NULL) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

static int test_anchor_set(void *arg, const char *text)
{
    fixture *f = arg;
    if (f->fail_anchor) {
        return kms_raise(KMS_ERR_HSM, "test anchor store unreachable");
    }
    assert_true(strlen(text) < sizeof f->anchor);
    snprintf(f->anchor, sizeof f->anchor, "%s", text);
    f->has_anchor = true;
    f->anchor_sets++;
    return 0;
}

static void use_anchor(fixture *f)
{
    f->o.signer.anchor_get = test_anchor_get;
    f->o.signer.anchor_set = test_anchor_set;
}

static void put_anchor(fixture *f, const char *text)
{
    assert_true(strlen(text) < sizeof f->anchor);
    snprintf(f->anchor, sizeof f->anchor, "%s", text);
    f->has_anchor = true;
}

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    assert_true(vasprintf(&s, fmt, ap) > 0);
    va_end(ap);
    return s;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->tmp = kms_test_tmpdir();
    f->dir = pathf("%s/audit", f->tmp);
    f->key = EVP_EC_gen("P-256");
    assert_non_null(f->key);
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(f->key, &der);
    assert_true(n > 0);
    f->spki = malloc((size_t)n);
    assert_non_null(f->spki);
    memcpy(f->spki, der, (size_t)n);
    OPENSSL_free(der);
    f->spki_len = (size_t)n;
    assert_int_equal(kms_audit_create(f->dir, f->spki, f->spki_len), 0);
    f->o = (kms_audit_options){
        .dir = f->dir,
        .account_id = ACCOUNT,
        .region = "eu-west-1",
        .digest_period = 0,
        .seal_on_close = true,
        .signer = {.sign = test_sign, .arg = f, .spki = f->spki, .spki_len = f->spki_len}};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kms_test_rmrf(f->tmp);
    free(f->tmp);
    free(f->dir);
    free(f->spki);
    EVP_PKEY_free(f->key);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static kms_audit *open_log(fixture *f)
{
    kms_audit *a = kms_audit_open(&f->o);
    if (a == NULL) {
        fail_msg("kms_audit_open: %s", kms_last_error_message());
    }
    return a;
}

/* eventTime: `when` (epoch seconds; 0 = now) */
static int make_record_at(char *buf, size_t cap, int i, int64_t when)
{
    char t[32];
    kms_time_iso8601(when != 0 ? when : kms_now(), t);
    return snprintf(buf, cap,
                    "{\"eventVersion\":\"1.08\",\"eventTime\":\"%s\",\"eventName\":\"Test\","
                    "\"n\":%d}",
                    t, i);
}

static int make_record(char *buf, size_t cap, int i)
{
    return make_record_at(buf, cap, i, 0);
}

static int append_one(kms_audit *a, int i)
{
    char rec[256];
    int n = make_record(rec, sizeof rec, i);
    return kms_audit_append(a, rec, (size_t)n);
}

static void append_n(kms_audit *a, int from, int count)
{
    for (int i = from; i < from + count; i++) {
        if (append_one(a, i) != 0) {
            fail_msg("append %d: %s", i, kms_last_error_message());
        }
    }
}

static char *read_file(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        fail_msg("cannot open %s", path);
    }
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long len = ftell(fp);
    assert_true(len >= 0);
    rewind(fp);
    char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, fp), (size_t)len);
    p[len] = '\0';
    fclose(fp);
    *n = (size_t)len;
    return p;
}

/* A segment's records: an open segment's file goes on with preallocated zeros (audit.h), which
 * *n leaves out; nothing but zeros may follow the first NUL. */
static char *read_records(const char *path, size_t *n)
{
    size_t len = 0;
    char *p = read_file(path, &len);
    *n = strnlen(p, len);
    for (size_t i = *n; i < len; i++) {
        assert_int_equal(p[i], '\0');
    }
    return p;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static unsigned file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 0777;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static char *segment_path(fixture *f, uint64_t first)
{
    return pathf("%s/segments/%020" PRIu64 ".jsonl", f->dir, first);
}

static char *digest_path(fixture *f, uint64_t last, const char *ext)
{
    return pathf("%s/digests/%020" PRIu64 ".json%s", f->dir, last, ext);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in sub/ that are 20 digits followed by `suffix` exactly. */
static size_t list(fixture *f, const char *sub, const char *suffix, char ***out)
{
    char *path = pathf("%s/%s", f->dir, sub);
    DIR *d = opendir(path);
    assert_non_null(d);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) == 20 + strlen(suffix) && strcmp(e->d_name + 20, suffix) == 0 &&
            strspn(e->d_name, "0123456789") == 20) {
            names = realloc(names, (n + 1) * sizeof *names);
            assert_non_null(names);
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    free(path);
    if (n > 1) {
        qsort(names, n, sizeof *names, cmp_names);
    }
    *out = names;
    return n;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}

static json_t *parse(const char *p, size_t n)
{
    json_error_t err;
    json_t *o = json_loadb(p, n, 0, &err);
    if (o == NULL) {
        fail_msg("not JSON (%s): %.*s", err.text, (int)n, p);
    }
    return o;
}

/* Walks every segment in order: names match first sequences, sequences run 1..N without gaps,
 * each previousHash is the hash of the line before. Returns N. */
static uint64_t verify_trail(fixture *f)
{
    char **names = NULL;
    size_t nseg = list(f, "segments", ".jsonl", &names);
    uint64_t expect = 1;
    char prev[KMS_AUDIT_HASH_HEX + 1];
    memset(prev, '0', KMS_AUDIT_HASH_HEX);
    prev[KMS_AUDIT_HASH_HEX] = '\0';
    for (size_t s = 0; s < nseg; s++) {
        assert_int_equal(strtoull(names[s], NULL, 10), expect);
        char *path = pathf("%s/segments/%s", f->dir, names[s]);
        size_t len = 0;
        char *text = read_records(path, &len);
        assert_true(len > 0);
        assert_int_equal(text[len - 1], '\n');
        for (char *line = text; line < text + len;) {
            char *nl = memchr(line, '\n', (size_t)(text + len - line));
            assert_non_null(nl);
            json_t *o = parse(line, (size_t)(nl - line));
            json_t *chain = json_object_get(o, "auditChain");
            assert_int_equal(json_integer_value(json_object_get(chain, "sequence")), expect);
            assert_string_equal(json_string_value(json_object_get(chain, "previousHash")), prev);
            /* the chain is the last member */
            assert_memory_equal(nl - 2, "}}", 2);
            json_decref(o);
            kms_audit_sha256_hex(line, (size_t)(nl - line), prev);
            expect++;
            line = nl + 1;
        }
        free(text);
        free(path);
    }
    free_list(names, nseg);
    return expect - 1;
}

static char *hex_of(const char *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++) {
        snprintf(h + 2 * i, 3, "%02x", (unsigned char)p[i]);
    }
    h[2 * n] = '\0';
    return h;
}

static void verify_signature(fixture *f, const char *json, size_t n, const char *sig,
                             size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, f->key), 1);
    assert_int_equal(EVP_DigestVerify(ctx, (const uint8_t *)sig, sig_len, (const uint8_t *)json, n),
                     1);
    EVP_MD_CTX_free(ctx);
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* Checks every digest: signature, chain to the previous digest, the segment it covers (hash,
 * sequences, mode 0400, last record hash). Returns the number of digests. */
static size_t verify_digests(fixture *f)
{
    char **names = NULL;
    size_t n = list(f, "digests", ".json", &names);
    char *prev_json = NULL, *prev_sig = NULL, *prev_end = NULL;
    size_t prev_json_len = 0, prev_sig_len = 0;
    uint64_t next_first = 1;
    char fingerprint[KMS_AUDIT_HASH_HEX + 1];
    kms_audit_sha256_hex(f->spki, f->spki_len, fingerprint);
    for (size_t i = 0; i < n; i++) {
        char *path = pathf("%s/digests/%s", f->dir, names[i]);
        char *sig_path = pathf("%s.sig", path);
        size_t len = 0, sig_len = 0;
        char *json = read_file(path, &len);
        char *sig = read_file(sig_path, &sig_len);
        verify_signature(f, json, len, sig, sig_len);
        json_t *d = parse(json, len);
        assert_int_equal(
            strncmp(json, "{\"awsAccountId\":\"" ACCOUNT "\",\"digestStartTime\":", 45), 0);
        char *file = pathf("digests/%s", names[i]);
        assert_string_equal(str(d, "digestFile"), file);
        free(file);
        assert_string_equal(str(d, "digestPublicKeyFingerprint"), fingerprint);
        assert_string_equal(str(d, "digestSignatureAlgorithm"), "SHA256withECDSA");
        assert_string_equal(str(d, "previousDigestHashAlgorithm"), "SHA-256");
        assert_int_equal(num(d, "firstSequence"), next_first);
        uint64_t last = (uint64_t)num(d, "lastSequence");
        assert_int_equal(last, strtoull(names[i], NULL, 10));
        assert_true(kms_audit_parse_time(str(d, "digestEndTime")) > 0);
        if (i == 0) {
            assert_true(json_is_null(json_object_get(d, "previousDigestFile")));
            assert_true(json_is_null(json_object_get(d, "previousDigestHashValue")));
            assert_true(json_is_null(json_object_get(d, "previousDigestSignature")));
            assert_string_equal(str(d, "digestStartTime"), str(d, "oldestEventTime"));
        } else {
            char *pf = pathf("digests/%s", names[i - 1]);
            assert_string_equal(str(d, "previousDigestFile"), pf);
            free(pf);
            char h[KMS_AUDIT_HASH_HEX + 1];
            kms_audit_sha256_hex(prev_json, prev_json_len, h);
            assert_string_equal(str(d, "previousDigestHashValue"), h);
            char *sh = hex_of(prev_sig, prev_sig_len);
            assert_string_equal(str(d, "previousDigestSignature"), sh);
            free(sh);
            assert_string_equal(str(d, "digestStartTime"), prev_end);
        }
        json_t *logs = json_object_get(d, "logFiles");
        assert_int_equal(json_array_size(logs), 1);
        json_t *lf = json_array_get(logs, 0);
        char *seg_name = pathf("segments/%020" PRIu64 ".jsonl", next_first);
        assert_string_equal(str(lf, "file"), seg_name);
        char *seg = pathf("%s/%s", f->dir, seg_name);
        free(seg_name);
        size_t seg_len = 0;
        char *seg_text = read_file(seg, &seg_len);
        char h[KMS_AUDIT_HASH_HEX + 1];
        kms_audit_sha256_hex(seg_text, seg_len, h);
        assert_string_equal(str(lf, "hashValue"), h);
        assert_string_equal(str(lf, "hashAlgorithm"), "SHA-256");
        assert_int_equal(num(lf, "firstSequence"), next_first);
        assert_int_equal(num(lf, "lastSequence"), last);
        assert_string_equal(str(lf, "oldestEventTime"), str(d, "oldestEventTime"));
        assert_string_equal(str(lf, "newestEventTime"), str(d, "newestEventTime"));
        assert_int_equal(file_mode(seg), 0400);
        /* lastRecordHash: the segment's last line */
        assert_true(seg_len > 1);
        char *end = seg_text + seg_len - 1;
        char *start = end;
        while (start > seg_text && start[-1] != '\n') {
            start--;
        }
        kms_audit_sha256_hex(start, (size_t)(end - start), h);
        assert_string_equal(str(d, "lastRecordHash"), h);
        free(seg_text);
        free(seg);
        free(prev_json);
        free(prev_sig);
        free(prev_end);
        prev_end = strdup(str(d, "digestEndTime"));
        prev_json = json;
        prev_json_len = len;
        prev_sig = sig;
        prev_sig_len = sig_len;
        next_first = last + 1;
        json_decref(d);
        free(path);
        free(sig_path);
    }
    free(prev_json);
    free(prev_sig);
    free(prev_end);
    free_list(names, n);
    return n;
}

static size_t count_lines(const char *path)
{
    size_t len = 0, lines = 0;
    char *text = read_records(path, &len);
    for (size_t i = 0; i < len; i++) {
        lines += text[i] == '\n';
    }
    free(text);
    return lines;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_append_format(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    assert_true(kms_audit_ready(a));
    char rec[3][256];
    for (int i = 0; i < 3; i++) {
        int n = make_record(rec[i], sizeof rec[i], i);
        assert_int_equal(kms_audit_append(a, rec[i], (size_t)n), 0);
    }
    char *seg = segment_path(f, 1);
    assert_int_equal(file_mode(seg), 0600);
    size_t len = 0;
    char *text = read_file(seg, &len);
    /* Exactly: the record without its '}', the chain, '\n'. */
    char expect[4096] = "";
    char prev[KMS_AUDIT_HASH_HEX + 1];
    memset(prev, '0', KMS_AUDIT_HASH_HEX);
    prev[KMS_AUDIT_HASH_HEX] = '\0';
    for (int i = 0; i < 3; i++) {
        char line[512];
        snprintf(line, sizeof line,
                 "%.*s,\"auditChain\":{\"sequence\":%d,\"previousHash\":\"%s\"}}",
                 (int)strlen(rec[i]) - 1, rec[i], i + 1, prev);
        kms_audit_sha256_hex(line, strlen(line), prev);
        strcat(expect, line);
        strcat(expect, "\n");
    }
    assert_string_equal(text, expect);
    assert_int_equal(verify_trail(f), 3);
    char **names = NULL;
    assert_int_equal(list(f, "digests", ".json", &names), 0);
    free_list(names, 0);
    free(text);
    free(seg);
    kms_audit_close(a);
}

static void test_empty_object(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    assert_int_equal(kms_audit_append(a, "{}", 2), 0);
    assert_int_equal(kms_audit_append(a, "{ }", 3), 0);
    assert_int_equal(verify_trail(f), 2);
    char *seg = segment_path(f, 1);
    size_t len = 0;
    char *text = read_file(seg, &len);
    assert_int_equal(strncmp(text, "{\"auditChain\":{\"sequence\":1,", 28), 0);
    free(text);
    free(seg);
    kms_audit_close(a);
}

static void test_bad_records(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    const char *bad[] = {
        "",
        "x",
        "[1]",
        " {\"a\":1}",
        "{\"a\":1} ",
        "{\"a\":1}\n",
        "{\"a\":\n1}",
        "{\"a\":\r1}",
        "{\"a\":1",
        "{\"a\":1}}",
        "{\"a\":\"open}",
        "{\"a\":[1}",
        "{\"a\":{\"b\":1}",
        "{\"a\":\"tab\there\"}",
        "{\"auditChain\":{\"sequence\":1}}",
        "{\"a\":[1,2],\"auditChain\":{}}",
    };
    /* The writer checks a record's shape (one object, strings closed, brackets balanced, no
     * top-level auditChain), not the whole JSON grammar: the service builds records with
     * jansson. Members named auditChain deeper down, or the word as a value, are fine. */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_kms_error(kms_audit_append(a, bad[i], strlen(bad[i])), KMS_ERR_VALIDATION);
    }
    assert_kms_error(kms_audit_append(a, NULL, 0), KMS_ERR_VALIDATION);
    assert_kms_error(kms_audit_append(a, "{\"a\":\"\0\"}", 9), KMS_ERR_VALIDATION);
    const char *good[] = {
        "{\"a\":{\"auditChain\":1}}",
        "{\"a\":\"auditChain\"}",
        "{\"a\":[\"auditChain\",{\"auditChain\":[]}]}",
        "{\"a\":\"q\\\"}\\\\\"}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(kms_audit_append(a, good[i], strlen(good[i])), 0);
    }
    /* Too long: the line with its chain would pass KMS_AUDIT_RECORD_MAX. */
    size_t big = KMS_AUDIT_RECORD_MAX;
    char *r = malloc(big + 1);
    assert_non_null(r);
    memset(r, 'a', big);
    memcpy(r, "{\"a\":\"", 6);
    memcpy(r + big - 2, "\"}", 2);
    r[big] = '\0';
    assert_kms_error(kms_audit_append(a, r, big), KMS_ERR_VALIDATION);
    /* One that fits with the longest chain (an ack included) is taken. */
    size_t fits = KMS_AUDIT_RECORD_MAX - 300;
    memcpy(r + fits - 2, "\"}", 2);
    assert_int_equal(kms_audit_append(a, r, fits), 0);
    free(r);
    /* Nothing of the refused ones was written: the accepted ones are sequences 1 to 5. */
    char *seg = segment_path(f, 1);
    assert_int_equal(count_lines(seg), 5);
    assert_int_equal(verify_trail(f), 5);
    free(seg);
    kms_audit_close(a);
}

static void test_nothing_written_on_refusal(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    assert_kms_error(kms_audit_append(a, "nope", 4), KMS_ERR_VALIDATION);
    char **names = NULL;
    /* The open segment exists from the open on (with its space ahead), holding no record. */
    assert_int_equal(list(f, "segments", ".jsonl", &names), 1);
    free_list(names, 1);
    char *seg = segment_path(f, 1);
    assert_int_equal(count_lines(seg), 0);
    free(seg);
    kms_audit_close(a); /* appended nothing: no seal, no digest */
    assert_int_equal(list(f, "digests", ".json", &names), 0);
    free_list(names, 0);
}

static void test_close_seals(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 3);
    kms_audit_close(a);
    char *dg = digest_path(f, 3, "");
    char *sig = digest_path(f, 3, ".sig");
    char *seg = segment_path(f, 1);
    assert_true(exists(dg));
    assert_true(exists(sig));
    assert_int_equal(file_mode(seg), 0400);
    assert_int_equal(verify_digests(f), 1);
    size_t len = 0;
    char *text = read_file(dg, &len);
    json_t *d = parse(text, len);
    size_t seg_len = 0;
    char *seg_text = read_file(seg, &seg_len);
    json_t *first = parse(seg_text, (size_t)(strchr(seg_text, '\n') - seg_text));
    assert_string_equal(str(d, "oldestEventTime"), str(first, "eventTime"));
    assert_string_equal(str(d, "digestStartTime"), str(first, "eventTime"));
    assert_non_null(str(d, "newestEventTime"));
    json_decref(first);
    free(seg_text);
    assert_int_equal(num(d, "firstSequence"), 1);
    assert_int_equal(num(d, "lastSequence"), 3);
    /* The keys in the order audit.h lists them. */
    const char *order[] = {"awsAccountId",
                           "digestStartTime",
                           "digestEndTime",
                           "digestFile",
                           "digestPublicKeyFingerprint",
                           "digestSignatureAlgorithm",
                           "oldestEventTime",
                           "newestEventTime",
                           "previousDigestFile",
                           "previousDigestHashValue",
                           "previousDigestHashAlgorithm",
                           "previousDigestSignature",
                           "firstSequence",
                           "lastSequence",
                           "lastRecordHash",
                           "logFiles"};
    const char *p = text;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":", order[i]);
        const char *q = strstr(p, key);
        if (q == NULL) {
            fail_msg("%s missing or out of order in %s", order[i], text);
        }
        p = q;
    }
    assert_null(strchr(text, ' ')); /* compact */
    json_decref(d);
    free(text);
    assert_int_equal(verify_trail(f), 3);
    free(dg);
    free(sig);
    free(seg);
}

static void test_reopen_continues(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 3);
    kms_audit_close(a);
    a = open_log(f);
    append_n(a, 3, 2);
    char *seg2 = segment_path(f, 4);
    assert_int_equal(count_lines(seg2), 2);
    assert_int_equal(file_mode(seg2), 0600);
    kms_audit_close(a);
    assert_int_equal(file_mode(seg2), 0400);
    assert_int_equal(verify_trail(f), 5);
    assert_int_equal(verify_digests(f), 2); /* includes previousDigestSignature = hex(.sig) */
    char *sig1 = digest_path(f, 3, ".sig");
    char *dg2 = digest_path(f, 5, "");
    size_t n1 = 0, n2 = 0;
    char *s1 = read_file(sig1, &n1);
    char *d2 = read_file(dg2, &n2);
    json_t *d = parse(d2, n2);
    char *h = hex_of(s1, n1);
    assert_string_equal(str(d, "previousDigestSignature"), h);
    free(h);
    json_decref(d);
    free(s1);
    free(d2);
    free(sig1);
    free(dg2);
    free(seg2);
}

static void test_seal_explicit(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    assert_int_equal(kms_audit_seal(a), 0); /* nothing to seal */
    char **names = NULL;
    assert_int_equal(list(f, "digests", ".json", &names), 0);
    free_list(names, 0);
    append_n(a, 0, 2);
    assert_int_equal(kms_audit_seal(a), 0);
    assert_int_equal(kms_audit_seal(a), 0); /* the new segment is empty: no digest */
    assert_int_equal(list(f, "digests", ".json", &names), 1);
    free_list(names, 1);
    append_n(a, 2, 1);
    char *seg = segment_path(f, 3);
    assert_int_equal(count_lines(seg), 1);
    free(seg);
    assert_int_equal(kms_audit_seal(a), 0);
    append_n(a, 3, 4);
    kms_audit_close(a);
    assert_int_equal(verify_trail(f), 7);
    assert_int_equal(verify_digests(f), 3);
}

static void test_signer_failure(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 2);
    f->fail_sign = true;
    assert_kms_error(kms_audit_seal(a), KMS_ERR_AUDIT);
    char *seg = segment_path(f, 1);
    assert_int_equal(file_mode(seg), 0600); /* still open */
    append_n(a, 2, 1);                      /* and still appendable */
    assert_int_equal(count_lines(seg), 3);
    f->fail_sign = false;
    kms_audit_close(a);
    assert_int_equal(verify_trail(f), 3);
    assert_int_equal(verify_digests(f), 1);
    free(seg);
}

/* digest_period: the first digest is due digest_period after the first record's eventTime, the
 * next ones after the newest digest's digestEndTime. */
static void test_periodic_seal(void **state)
{
    fixture *f = *state;
    f->o.digest_period = 60;
    kms_audit *a = open_log(f);
    char rec[256];
    int n = make_record_at(rec, sizeof rec, 0, kms_now() - 30);
    assert_int_equal(kms_audit_append(a, rec, (size_t)n), 0);
    char **names = NULL;
    assert_int_equal(list(f, "digests", ".json", &names), 0); /* 30 s: not yet */
    free_list(names, 0);
    n = make_record_at(rec, sizeof rec, 1, kms_now() - 3600);
    assert_int_equal(kms_audit_append(a, rec, (size_t)n), 0);
    assert_int_equal(list(f, "digests", ".json", &names), 0); /* the first record counts */
    free_list(names, 0);
    kms_audit_close(a);
    kms_test_rmrf(f->dir);
    assert_int_equal(kms_audit_create(f->dir, f->spki, f->spki_len), 0);
    a = open_log(f);
    n = make_record_at(rec, sizeof rec, 0, kms_now() - 61);
    assert_int_equal(kms_audit_append(a, rec, (size_t)n), 0);
    char *dg = digest_path(f, 1, "");
    assert_true(exists(dg)); /* sealed right after the append */
    free(dg);
    n = make_record_at(rec, sizeof rec, 1, kms_now() - 3600);
    assert_int_equal(kms_audit_append(a, rec, (size_t)n), 0);
    /* the newest digest was just written: the next one is due in 60 s */
    assert_int_equal(list(f, "digests", ".json", &names), 1);
    free_list(names, 1);
    kms_audit_close(a);
    assert_int_equal(verify_trail(f), 2);
    assert_int_equal(list(f, "digests", ".json", &names), 2);
    free_list(names, 2);
}

typedef struct worker {
    kms_audit *a;
    int base, count, seal_every;
    int failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->count; i++) {
        if (append_one(w->a, w->base + i) != 0) {
            w->failures++;
        }
        if (w->seal_every > 0 && (i + 1) % w->seal_every == 0 && kms_audit_seal(w->a) != 0) {
            w->failures++;
        }
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.a = a, .base = i * 1000, .count = 500};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    char *seg = segment_path(f, 1);
    assert_int_equal(count_lines(seg), 2000);
    free(seg);
    assert_int_equal(verify_trail(f), 2000);
    kms_audit_close(a);
    assert_int_equal(verify_digests(f), 1);
}

static void test_two_handles(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    kms_audit *b = open_log(f);
    pthread_t t[2];
    worker w[2] = {{.a = a, .base = 0, .count = 300},
                   {.a = b, .base = 1000, .count = 300, .seal_every = 70}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    /* a sealed nothing itself: b's seals moved it to new segments */
    append_n(a, 2000, 1);
    kms_audit_close(a);
    kms_audit_close(b);
    assert_int_equal(verify_trail(f), 601);
    assert_true(verify_digests(f) >= 5);
}

static void test_fork_processes(void **state)
{
    fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kms_audit *c = kms_audit_open(&f->o);
        int bad = c == NULL;
        for (int i = 0; !bad && i < 200; i++) {
            bad = append_one(c, 5000 + i) != 0;
            if (!bad && i == 120) {
                bad = kms_audit_seal(c) != 0;
            }
        }
        kms_audit_close(c);
        _exit(bad);
    }
    kms_audit *a = open_log(f);
    append_n(a, 0, 200);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    kms_audit_close(a);
    assert_int_equal(verify_trail(f), 400);
    assert_true(verify_digests(f) >= 2);
}

/* Writes bytes without a '\n' where a segment's records end (over its preallocated zeros, if
 * any), as a crash in the middle of a write leaves it. Returns that offset. */
static off_t tear(const char *seg, const char *garbage)
{
    size_t before = 0;
    free(read_records(seg, &before));
    int fd = open(seg, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, garbage, strlen(garbage), (off_t)before), (ssize_t)strlen(garbage));
    close(fd);
    return (off_t)before;
}

static void check_repaired(fixture *f, uint64_t first, off_t offset, const char *garbage,
                           uint64_t repair_seq)
{
    char *seg = segment_path(f, first);
    char *torn = pathf("%s/torn/%020" PRIu64 ".jsonl-%lld", f->dir, first, (long long)offset);
    size_t n = 0;
    char *saved = read_file(torn, &n);
    assert_int_equal(n, strlen(garbage));
    assert_memory_equal(saved, garbage, n);
    assert_int_equal(file_mode(torn), 0600);
    free(saved);
    /* The segment: cut at the torn offset, then the repair record. */
    size_t len = 0;
    char *text = read_records(seg, &len);
    assert_true(len > (size_t)offset);
    assert_true(offset == 0 || text[offset - 1] == '\n');
    assert_int_equal(text[len - 1], '\n');
    char *nl = memchr(text + offset, '\n', len - (size_t)offset);
    json_t *r = parse(text + offset, (size_t)(nl - (text + offset)));
    assert_string_equal(str(r, "eventName"), "AuditLogRepaired");
    assert_string_equal(str(r, "eventType"), "AwsServiceEvent");
    assert_string_equal(str(r, "eventVersion"), "1.11");
    assert_string_equal(str(r, "eventSource"), "kms.amazonaws.com");
    assert_string_equal(str(r, "awsRegion"), "eu-west-1");
    assert_string_equal(str(r, "recipientAccountId"), ACCOUNT);
    assert_string_equal(str(r, "eventCategory"), "Management");
    assert_true(json_is_false(json_object_get(r, "readOnly")));
    assert_true(json_is_true(json_object_get(r, "managementEvent")));
    assert_true(json_is_null(json_object_get(r, "requestParameters")));
    assert_string_equal(str(json_object_get(r, "userIdentity"), "invokedBy"), "AWS Internal");
    assert_true(kms_audit_parse_time(str(r, "eventTime")) > 0);
    assert_int_equal(strlen(str(r, "eventID")), 36);
    json_t *d = json_object_get(r, "serviceEventDetails");
    char *name = pathf("segments/%020" PRIu64 ".jsonl", first);
    assert_string_equal(str(d, "segment"), name);
    free(name);
    assert_int_equal(num(d, "offset"), offset);
    assert_int_equal(num(d, "length"), strlen(garbage));
    char h[KMS_AUDIT_HASH_HEX + 1];
    kms_audit_sha256_hex(garbage, strlen(garbage), h);
    assert_string_equal(str(d, "sha256"), h);
    assert_int_equal(num(json_object_get(r, "auditChain"), "sequence"), repair_seq);
    json_decref(r);
    free(text);
    free(torn);
    free(seg);
}

/* ---- acks (audit.h "A record line") ------------------------------------------------------- */

static const uint8_t ack_key[32] = "unit-test-ack-key-0123456789abcd";

static int test_ack(void *arg, const uint8_t hash[32], uint8_t mac[32])
{
    size_t len = 0;
    const uint8_t *key = arg;
    return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 32, hash, 32, mac, 32, &len) !=
                       NULL &&
                   len == 32
               ? 0
               : -1;
}

/* The chain hash of the segment's last line. */
static void last_line_hash(const char *seg, char h[KMS_AUDIT_HASH_HEX + 1])
{
    size_t len = 0;
    char *text = read_records(seg, &len);
    assert_true(len > 0 && text[len - 1] == '\n');
    size_t start = len - 1;
    while (start > 0 && text[start - 1] != '\n') {
        start--;
    }
    kms_audit_sha256_hex(text + start, len - 1 - start, h);
    free(text);
}

/* Appends at the end of seg's records a line chained to its last one: record seq, and an ack
 * made with `key` (NULL: none). */
static void plant(const char *seg, uint64_t seq, const uint8_t *key)
{
    char prev[KMS_AUDIT_HASH_HEX + 1];
    last_line_hash(seg, prev);
    char *core = pathf("{\"eventName\":\"DeleteKey\",\"auditChain\":{\"sequence\":%" PRIu64
                       ",\"previousHash\":\"%s\"",
                       seq, prev);
    char *line = NULL;
    if (key != NULL) {
        uint8_t hash[32], mac[32];
        char hex[KMS_AUDIT_HASH_HEX + 1];
        assert_int_equal(kms_audit_ack_hash(core, strlen(core), hash), 0);
        assert_int_equal(test_ack((void *)key, hash, mac), 0);
        for (int i = 0; i < 32; i++) {
            snprintf(hex + 2 * i, 3, "%02x", mac[i]);
        }
        line = pathf("%s,\"ack\":\"%s\"}}\n", core, hex);
    } else {
        line = pathf("%s}}\n", core);
    }
    tear(seg, line);
    free(line);
    free(core);
}

/* Lines chained correctly after the last acknowledged one, without an ack or with one made by
 * another key, are not the writer's: the next writer moves them aside ("unacknowledged"), and
 * the chain goes on from the acknowledged line. Every batch's last line carries an ack. */
static void test_acks(void **state)
{
    fixture *f = *state;
    f->o.signer.ack = (kms_audit_acker){test_ack, (void *)ack_key};
    f->o.seal_on_close = false; /* as kmsctl: the segment stays open for the next process */
    kms_audit *a = open_log(f);
    append_n(a, 0, 3);
    kms_audit_close(a);
    char *seg = segment_path(f, 1);
    size_t len = 0;
    char *text = read_records(seg, &len);
    assert_non_null(strstr(text, "\",\"ack\":\""));
    free(text);
    static const uint8_t other[32] = "another key, not the writer's!!";
    const uint8_t *keys[] = {NULL, other};
    uint64_t next = 4;
    for (size_t i = 0; i < 2; i++) {
        size_t before = 0;
        free(read_records(seg, &before));
        plant(seg, next, keys[i]);
        plant(seg, next + 1, keys[i]);
        a = open_log(f); /* moves them aside */
        text = read_records(seg, &len);
        json_t *r = parse(text + before, len - before - 1);
        assert_string_equal(str(r, "eventName"), "AuditLogRepaired");
        assert_string_equal(str(json_object_get(r, "serviceEventDetails"), "reason"),
                            "unacknowledged");
        assert_int_equal(num(json_object_get(r, "auditChain"), "sequence"), next);
        assert_null(strstr(text, "DeleteKey"));
        json_decref(r);
        free(text);
        kms_audit_close(a);
        next++;
    }
    /* Its own ack: a line planted with the writer's key is taken, as a crash after the write
     * would leave it (what a holder of the key writes is the writer's). */
    plant(seg, next, ack_key);
    a = open_log(f);
    append_n(a, 100, 1);
    kms_audit_close(a);
    text = read_records(seg, &len);
    assert_non_null(strstr(text, "DeleteKey"));
    free(text);
    assert_int_equal(verify_trail(f), (int)next + 1);
    free(seg);
}

static void test_torn_tail_on_open(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 3);
    char *seg = segment_path(f, 1);
    const char *garbage = "{\"eventVersion\":\"1.08\",\"eventTi";
    off_t off = tear(seg, garbage);
    kms_audit *b = open_log(f); /* the repair happens here */
    check_repaired(f, 1, off, garbage, 4);
    assert_int_equal(verify_trail(f), 4);
    append_n(b, 3, 1);
    append_n(a, 4, 1); /* a sees b's lines and continues after them */
    assert_int_equal(verify_trail(f), 6);
    kms_audit_close(a);
    kms_audit_close(b);
    assert_int_equal(verify_trail(f), 6);
    assert_int_equal(verify_digests(f), 1);
    free(seg);
}

static void test_torn_tail_on_append(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 2);
    char *seg = segment_path(f, 1);
    off_t off = tear(seg, "garbage");
    append_n(a, 2, 1); /* this handle finds the torn line under LOCK and repairs it first */
    check_repaired(f, 1, off, "garbage", 3);
    assert_int_equal(count_lines(seg), 4);
    assert_int_equal(verify_trail(f), 4);
    kms_audit_close(a);
    assert_int_equal(verify_digests(f), 1);
    free(seg);
}

static void test_torn_whole_segment(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 2);
    kms_audit_close(a);
    /* A crash during the very first write of segment 3. */
    char *seg = segment_path(f, 3);
    int fd = open(seg, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    tear(seg, "{\"half");
    a = open_log(f);
    check_repaired(f, 3, 0, "{\"half", 3);
    append_n(a, 2, 1);
    kms_audit_close(a);
    assert_int_equal(verify_trail(f), 4);
    assert_int_equal(verify_digests(f), 2);
    free(seg);
}

/* An open segment has zeros preallocated after its records; sealing cuts them off, so the
 * digest's hash is over the records alone. */
static void test_preallocation(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 3);
    char *seg = segment_path(f, 1);
    size_t records = 0;
    free(read_records(seg, &records));
    assert_true(records > 0);
    assert_true(file_size(seg) >= (off_t)records + 60 * 1024);
    /* The space grows as records come, and stays zeros past them (read_records checks). */
    append_n(a, 3, 300);
    free(read_records(seg, &records));
    assert_true(file_size(seg) > (off_t)records);
    assert_int_equal(count_lines(seg), 303);
    kms_audit_close(a);
    assert_int_equal(file_size(seg), (off_t)records);
    assert_int_equal(verify_trail(f), 303);
    assert_int_equal(verify_digests(f), 1);
    free(seg);
}

/* A crash while a batch was being written back can leave parts of it, with zeros between them
 * (pages reach the disk in any order): everything past the last whole line before the first
 * zero is torn, kept and recorded, and the trail goes on. */
static void test_torn_with_hole(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 2);
    char *seg = segment_path(f, 1);
    size_t end = 0;
    free(read_records(seg, &end));
    const char part1[] = "{\"eventVersion\":\"1.08\",\"a\":1,\"x";
    const char part2[] = "\"b\":2}\n{\"c\":3}\n";
    size_t hole = 100, n = sizeof part1 - 1 + hole + sizeof part2 - 1;
    char *expect = calloc(1, n);
    assert_non_null(expect);
    memcpy(expect, part1, sizeof part1 - 1);
    memcpy(expect + sizeof part1 - 1 + hole, part2, sizeof part2 - 1);
    int fd = open(seg, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, expect, n, (off_t)end), (ssize_t)n);
    close(fd);
    kms_audit *b = open_log(f); /* the repair happens here */
    char *torn = pathf("%s/torn/%020d.jsonl-%zu", f->dir, 1, end);
    size_t got = 0;
    char *saved = read_file(torn, &got);
    assert_int_equal(got, n);
    assert_memory_equal(saved, expect, n);
    /* The segment: its two records, then the repair record naming all n bytes. */
    size_t len = 0;
    char *text = read_records(seg, &len);
    char *nl = memchr(text + end, '\n', len - end);
    assert_non_null(nl);
    json_t *r = parse(text + end, (size_t)(nl - (text + end)));
    assert_string_equal(str(r, "eventName"), "AuditLogRepaired");
    json_t *d = json_object_get(r, "serviceEventDetails");
    assert_int_equal(num(d, "offset"), end);
    assert_int_equal(num(d, "length"), n);
    char h[KMS_AUDIT_HASH_HEX + 1];
    kms_audit_sha256_hex(expect, n, h);
    assert_string_equal(str(d, "sha256"), h);
    json_decref(r);
    append_n(b, 2, 1);
    append_n(a, 3, 1);
    kms_audit_close(a);
    kms_audit_close(b);
    assert_int_equal(verify_trail(f), 5);
    assert_int_equal(verify_digests(f), 1);
    free(text);
    free(saved);
    free(torn);
    free(expect);
    free(seg);
}

/* A file already in torn/ under the name a repair would use (a crash during an earlier repair)
 * is never replaced: the new bytes go to NAME.1. */
static void test_torn_name_taken(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 2);
    kms_audit_close(a);
    a = open_log(f);
    append_n(a, 2, 1);
    char *seg = segment_path(f, 3);
    off_t off = tear(seg, "{\"cut");
    char *dir = pathf("%s/torn", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    char *taken = pathf("%s/%020d.jsonl-%lld", dir, 3, (long long)off);
    FILE *fp = fopen(taken, "w");
    assert_non_null(fp);
    fputs("earlier", fp);
    fclose(fp);
    append_n(a, 3, 1); /* repairs first */
    size_t n = 0;
    char *old = read_file(taken, &n);
    assert_string_equal(old, "earlier");
    char *second = pathf("%s.1", taken);
    char *cut = read_file(second, &n);
    assert_string_equal(cut, "{\"cut");
    kms_audit_close(a);
    assert_int_equal(verify_trail(f), 5);
    free(old);
    free(cut);
    free(second);
    free(taken);
    free(dir);
    free(seg);
}

/* What is in place of the trail's files must be a regular file: a FIFO as the newest digest
 * fails the open at once (no hang), and a symbolic link as the open segment is refused. */
static void test_not_regular_files(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 2);
    kms_audit_close(a);
    char *fifo = digest_path(f, 99, "");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(20); /* a hang fails the test instead of stalling the suite */
    assert_null(kms_audit_open(&f->o));
    assert_int_equal(kms_last_error(), KMS_ERR_AUDIT);
    alarm(0);
    assert_int_equal(unlink(fifo), 0);
    char *seg = segment_path(f, 3);
    char *elsewhere = pathf("%s/elsewhere", f->tmp);
    FILE *fp = fopen(elsewhere, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(symlink(elsewhere, seg), 0);
    assert_null(kms_audit_open(&f->o));
    assert_int_equal(kms_last_error(), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "not a regular file"));
    assert_int_equal(unlink(seg), 0);
    a = open_log(f);
    append_n(a, 2, 1);
    kms_audit_close(a);
    assert_int_equal(verify_trail(f), 3);
    assert_int_equal(file_size(elsewhere), 0);
    free(elsewhere);
    free(seg);
    free(fifo);
}

/* Announced records: an append ends one, withdraw ends one, and a leader waiting for one that
 * never comes still writes its batch. */
static void test_announce(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 2); /* a flush has been timed */
    assert_int_equal(kms_audit_announce(a), 0);
    assert_int_equal(kms_audit_announce(a), 0);
    append_n(a, 2, 1); /* ends one; waits at most one flush's time for the other */
    kms_audit_withdraw(a);
    kms_audit_withdraw(a); /* one too many: ignored */
    assert_kms_error(kms_audit_announce(NULL), KMS_ERR_AUDIT);
    kms_audit_withdraw(NULL);
    append_n(a, 3, 1);
    kms_audit_close(a);
    assert_int_equal(verify_trail(f), 4);
}

/* ---- the anchor (audit.h "The anchor") ---------------------------------------------------- */

/* lastRecordHash of digest `last` as it is on disk now. */
static void digest_last_hash(fixture *f, uint64_t last, char out[KMS_AUDIT_HASH_HEX + 1])
{
    char *path = digest_path(f, last, "");
    size_t n = 0;
    char *bytes = read_file(path, &n);
    json_t *d = parse(bytes, n);
    const char *h = json_string_value(json_object_get(d, "lastRecordHash"));
    assert_non_null(h);
    snprintf(out, KMS_AUDIT_HASH_HEX + 1, "%s", h);
    json_decref(d);
    free(bytes);
    free(path);
}

/* The anchor text naming digest `last` as it is on disk now and acknowledging the record that
 * digest `ack` ends with. */
static char *anchor_acking(fixture *f, uint64_t last, uint64_t ack)
{
    char *path = digest_path(f, last, "");
    size_t n = 0;
    char *bytes = read_file(path, &n);
    char h[KMS_AUDIT_HASH_HEX + 1], ah[KMS_AUDIT_HASH_HEX + 1];
    kms_audit_sha256_hex(bytes, n, h);
    digest_last_hash(f, ack, ah);
    free(bytes);
    free(path);
    return pathf("%" PRIu64 " digests/%020" PRIu64 ".json %s %" PRIu64 " %s 0", last, last, h, ack,
                 ah);
}

/* The anchor text for digest `last`, just sealed: what a seal must have set. */
static char *anchor_of(fixture *f, uint64_t last)
{
    return anchor_acking(f, last, last);
}

static void expect_anchor(fixture *f, uint64_t last)
{
    char *want = anchor_of(f, last);
    assert_true(f->has_anchor);
    assert_string_equal(f->anchor, want);
    free(want);
}

/* One process's life: open, `count` records, close (which seals). */
static void session(fixture *f, int from, int count)
{
    kms_audit *a = open_log(f);
    append_n(a, from, count);
    kms_audit_close(a);
}

/* Deletes the digest `last` (.json and .json.sig) and, if first > 0, the segment it covers. */
static void delete_digest(fixture *f, uint64_t last, uint64_t first)
{
    char *dg = digest_path(f, last, ""), *sig = digest_path(f, last, ".sig");
    assert_int_equal(unlink(dg), 0);
    assert_int_equal(unlink(sig), 0);
    if (first > 0) {
        char *seg = segment_path(f, first);
        assert_int_equal(unlink(seg), 0);
        free(seg);
    }
    free(dg);
    free(sig);
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every entry under path (rel: its name under the trail): "rel mode size sha256" lines. */
static void snapshot_dir(const char *path, const char *rel, char ***lines, size_t *n)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char *full = pathf("%s/%s", path, e->d_name);
        char *name = pathf("%s%s", rel, e->d_name);
        struct stat st;
        assert_int_equal(lstat(full, &st), 0);
        char h[KMS_AUDIT_HASH_HEX + 1] = "-";
        if (S_ISREG(st.st_mode)) {
            size_t len = 0;
            char *bytes = read_file(full, &len);
            kms_audit_sha256_hex(bytes, len, h);
            free(bytes);
        }
        *lines = realloc(*lines, (*n + 1) * sizeof **lines);
        assert_non_null(*lines);
        (*lines)[(*n)++] =
            pathf("%s %o %lld %s", name, (unsigned)st.st_mode, (long long)st.st_size, h);
        if (S_ISDIR(st.st_mode)) {
            char *sub = pathf("%s/", name);
            snapshot_dir(full, sub, lines, n);
            free(sub);
        }
        free(name);
        free(full);
    }
    closedir(d);
}

/* The whole trail directory as one text: names, modes, sizes and hashes, sorted. */
static char *snapshot(fixture *f)
{
    char **lines = NULL;
    size_t n = 0, total = 1;
    snapshot_dir(f->dir, "", &lines, &n);
    qsort(lines, n, sizeof *lines, cmp_strings);
    for (size_t i = 0; i < n; i++) {
        total += strlen(lines[i]) + 1;
    }
    char *out = calloc(1, total);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
        free(lines[i]);
    }
    free(lines);
    return out;
}

/* Opening must be refused (KMS_ERR_AUDIT, the message holding `says`) and leave every file of the
 * trail as it was. */
static void expect_refused(fixture *f, const char *says)
{
    char *before = snapshot(f);
    kms_audit *a = kms_audit_open(&f->o);
    if (a != NULL) {
        kms_audit_close(a);
        fail_msg("the trail opened; expected a refusal saying '%s'", says);
    }
    assert_int_equal(kms_last_error(), KMS_ERR_AUDIT);
    if (strstr(kms_last_error_message(), says) == NULL) {
        fail_msg("the refusal '%s' does not say '%s'", kms_last_error_message(), says);
    }
    char *after = snapshot(f);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

static void test_anchor_follows_seals(void **state)
{
    fixture *f = *state;
    use_anchor(f);
    kms_audit *a = open_log(f);
    append_n(a, 0, 2);
    /* The records carry no ack here (no ack_mac); the anchor moves at a seal, at a close, and
     * at most once per ANCHOR_INTERVAL_NS while appending: not after every batch. */
    assert_false(f->has_anchor);
    int sets = f->anchor_sets;
    assert_int_equal(kms_audit_seal(a), 0);
    expect_anchor(f, 2);
    assert_int_equal(f->anchor_sets, sets + 1);
    assert_int_equal(kms_audit_seal(a), 0); /* nothing to seal: the anchor stays */
    assert_int_equal(f->anchor_sets, sets + 1);
    append_n(a, 2, 3);
    kms_audit_close(a);
    expect_anchor(f, 5);
    /* A store that cannot be reached fails the seal; the digest stays, and the next seal moves
     * the anchor on. */
    a = open_log(f);
    append_n(a, 5, 1);
    f->fail_anchor = true;
    assert_kms_error(kms_audit_seal(a), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "digests/00000000000000000006.json"));
    char *dg6 = digest_path(f, 6, "");
    assert_true(exists(dg6));
    expect_anchor(f, 5); /* as the close left it */
    /* Nor can the trail be opened again while the anchor cannot be read. */
    assert_kms_error(append_one(a, 6), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "anchor"));
    f->fail_anchor = false;
    append_n(a, 6, 1); /* the trail is ahead of the anchor now, which is fine */
    kms_audit_close(a);
    expect_anchor(f, 7);
    assert_int_equal(verify_trail(f), 7);
    assert_int_equal(verify_digests(f), 4);
    free(dg6);
}

/* A process that writes and then falls idle: the keeper stores the anchor within
 * ANCHOR_INTERVAL_NS of its last batch, without another write or a close, so that a cut of
 * those records is noticed. */
static void test_anchor_keeper(void **state)
{
    fixture *f = *state;
    use_anchor(f);
    f->o.seal_on_close = false;
    kms_audit *a = open_log(f);
    append_n(a, 0, 2); /* within the interval of the open: left to the keeper */
    assert_false(f->has_anchor);
    for (int i = 0; i < 40 && !f->has_anchor; i++) {
        usleep(100000);
    }
    assert_true(f->has_anchor);
    assert_int_equal(strncmp(f->anchor, "0 - - 2 ", 8), 0);
    kms_audit_close(a);
}

/* The rollback the anchor exists for: the newest digests and the segments they cover deleted. */
static void test_anchor_rollback(void **state)
{
    fixture *f = *state;
    use_anchor(f);
    session(f, 0, 2); /* digest 2 */
    session(f, 2, 2); /* digest 4 */
    session(f, 4, 3); /* digest 7 */
    expect_anchor(f, 7);
    char *kept = strdup(f->anchor);
    delete_digest(f, 7, 5);
    expect_refused(f, "the audit trail in");
    assert_non_null(strstr(kms_last_error_message(), "ends at digests/00000000000000000004.json "
                                                     "(record 4)"));
    assert_non_null(
        strstr(kms_last_error_message(), "digests/00000000000000000007.json (record 7)"));
    assert_non_null(strstr(kms_last_error_message(), "validate-logs"));
    delete_digest(f, 4, 3); /* the newest two */
    expect_refused(f, "ends at digests/00000000000000000002.json");
    delete_digest(f, 2, 1); /* everything */
    expect_refused(f, "has no digest");
    assert_string_equal(f->anchor, kept); /* nobody moved it */
    free(kept);
}

/* A handle that finds under LOCK that another process sealed reads the anchor again: the tail
 * deleted meanwhile stops it too. */
static void test_anchor_rollback_while_open(void **state)
{
    fixture *f = *state;
    use_anchor(f);
    session(f, 0, 2);
    kms_audit *a = open_log(f);
    kms_audit *b = open_log(f);
    append_n(a, 2, 1);
    append_n(b, 3, 1);
    assert_int_equal(kms_audit_seal(b), 0); /* seals what a appended too: digest 4 */
    expect_anchor(f, 4);
    char *kept = strdup(f->anchor);
    delete_digest(f, 4, 3);
    assert_kms_error(append_one(a, 4), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "digests/00000000000000000004.json"));
    char *seg = segment_path(f, 3);
    assert_false(exists(seg)); /* not made again */
    kms_audit_close(a);
    kms_audit_close(b);
    assert_false(exists(seg));
    assert_string_equal(f->anchor, kept);
    free(kept);
    free(seg);
}

/* A crash between a digest and its anchor leaves the trail ahead of the anchor: fine, and the
 * next seal moves the anchor on. */
static void test_anchor_trail_ahead(void **state)
{
    fixture *f = *state;
    use_anchor(f);
    session(f, 0, 2);
    session(f, 2, 2);
    /* The crash: digest 4 written, the anchor still naming digest 2 (record 4 acknowledged). */
    char *older = anchor_acking(f, 2, 4);
    put_anchor(f, older);
    kms_audit *a = open_log(f);
    append_n(a, 4, 1);
    kms_audit_close(a);
    expect_anchor(f, 5);
    assert_int_equal(verify_trail(f), 5);
    /* An anchor of the older form (no acknowledged record) is taken as it is. */
    char *legacy = strdup(f->anchor);
    *strchr(strchr(strchr(legacy, ' ') + 1, ' ') + 1, ' ') = '\0'; /* " 5 <hash> 0" cut off */
    put_anchor(f, legacy);
    session(f, 5, 1);
    expect_anchor(f, 6);
    free(legacy);
    /* A digest beyond the acknowledged record must carry the trail's signature (a crash
     * between a seal's digest and its anchor leaves a good one): another's is refused. */
    char *behind = anchor_acking(f, 5, 5);
    put_anchor(f, behind);
    char *sig6 = digest_path(f, 6, ".sig");
    size_t sig_len = 0;
    char *sig = read_file(sig6, &sig_len);
    assert_int_equal(chmod(sig6, 0600), 0);
    FILE *fp = fopen(sig6, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite("not a signature", 1, 15, fp), 15);
    assert_int_equal(fclose(fp), 0);
    expect_refused(f, "is not signed by the HSM key");
    fp = fopen(sig6, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(sig, 1, sig_len, fp), sig_len);
    assert_int_equal(fclose(fp), 0);
    kms_audit_close(open_log(f)); /* with its own signature back, it opens */
    free(sig);
    free(sig6);
    free(behind);
    /* Ahead, yet the anchored digest itself gone: refused. */
    put_anchor(f, older);
    delete_digest(f, 2, 0);
    expect_refused(f, "digests/00000000000000000002.json (record 2) was written, and that "
                      "digest is missing");
    free(older);
}

/* An anchored digest whose bytes changed, a malformed anchor, an unreachable store: refused. */
static void test_anchor_refusals(void **state)
{
    fixture *f = *state;
    use_anchor(f);
    session(f, 0, 2);
    session(f, 2, 2);
    char *good = strdup(f->anchor);
    /* The newest digest replaced by other bytes (still a digest of this trail to the writer). */
    char *dg = digest_path(f, 4, "");
    size_t n = 0;
    char *bytes = read_file(dg, &n);
    assert_int_equal(chmod(dg, 0600), 0);
    FILE *fp = fopen(dg, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, n, fp), n);
    fputc(' ', fp);
    assert_int_equal(fclose(fp), 0);
    expect_refused(f, "not the ones anchored");
    fp = fopen(dg, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
    free(bytes);
    free(dg);
    char hash[KMS_AUDIT_HASH_HEX + 1];
    memcpy(hash, good + strlen(good) - KMS_AUDIT_HASH_HEX, sizeof hash);
    char upper[KMS_AUDIT_HASH_HEX + 1];
    for (size_t i = 0; i < sizeof upper; i++) {
        upper[i] = (char)toupper((unsigned char)hash[i]);
    }
    char *bad[] = {
        strdup(""),
        pathf("4 digests/00000000000000000004.json"),
        pathf("%s\n", good),
        pathf("%s ", good),
        pathf(" %s", good),
        pathf("04 digests/00000000000000000004.json %s", hash),
        pathf("4  digests/00000000000000000004.json %s", hash),
        pathf("4\tdigests/00000000000000000004.json %s", hash),
        pathf("4 digests/00000000000000000002.json %s", hash),
        pathf("4 digests/0000000000000000004.json %s", hash),
        pathf("4 segments/00000000000000000004.json %s", hash),
        pathf("4 digests/00000000000000000004.json %s", upper),
        pathf("4 digests/00000000000000000004.json %.63s", hash),
        pathf("0 digests/00000000000000000000.json %s", hash),
        pathf("-4 digests/00000000000000000004.json %s", hash),
        pathf("99999999999999999999 digests/99999999999999999999.json %s", hash),
        pathf("4 digests/00000000000000000004.json %s 3 %s", hash, hash), /* ack < digest */
        pathf("4 digests/00000000000000000004.json %s 0 %s", hash, hash),
        pathf("4 digests/00000000000000000004.json %s 04 %s", hash, hash),
        pathf("4 digests/00000000000000000004.json %s 5", hash),
        pathf("4 digests/00000000000000000004.json %s 5 %s ", hash, hash),
        pathf("4 digests/00000000000000000004.json %s 5 %s", hash, upper),
        pathf("0 - - 0 %s", hash),
        pathf("0 - -"),
        pathf("0 - x 4 %s", hash),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_anchor(f, bad[i]);
        expect_refused(f, "malformed");
        free(bad[i]);
    }
    put_anchor(f, good);
    f->fail_anchor = true;
    expect_refused(f, "cannot read the anchor");
    f->fail_anchor = false;
    session(f, 4, 1); /* all well again */
    expect_anchor(f, 5);
    free(good);
}

static void test_half_finished_seal(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 3);
    char *seg = segment_path(f, 1);
    char *dg = digest_path(f, 3, "");
    /* Sealed without a digest (a sealer died after the chmod, or the digest was deleted): never
     * signed again, the trail stops. */
    assert_int_equal(chmod(seg, 0400), 0);
    assert_false(exists(dg));
    assert_int_equal(kms_audit_append(a, "{}", 2), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "no digest covers it"));
    assert_null(kms_audit_open(&f->o));
    assert_int_equal(kms_last_error(), KMS_ERR_AUDIT);
    assert_false(exists(dg));
    /* A person reopens it (an interrupted seal): the trail goes on and validates. */
    assert_int_equal(chmod(seg, 0600), 0);
    append_n(a, 3, 1);
    kms_audit_close(a);
    char *dg4 = digest_path(f, 4, "");
    assert_true(exists(dg4));
    assert_int_equal(verify_trail(f), 4);
    assert_int_equal(verify_digests(f), 1);
    free(seg);
    free(dg);
    free(dg4);
}

static void test_missing_dir(void **state)
{
    fixture *f = *state;
    char *missing = pathf("%s/nope", f->tmp);
    f->o.dir = missing;
    assert_null(kms_audit_open(&f->o));
    assert_int_equal(kms_last_error(), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "is missing"));
    assert_non_null(strstr(kms_last_error_message(), missing));
    /* incomplete: no digests/ */
    char *digests = pathf("%s/digests", f->dir);
    assert_int_equal(rmdir(digests), 0);
    f->o.dir = f->dir;
    assert_null(kms_audit_open(&f->o));
    assert_int_equal(kms_last_error(), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "digests"));
    assert_false(kms_audit_ready(NULL));
    kms_audit_close(NULL);
    free(digests);
    free(missing);
}

static void test_dir_removed_while_open(void **state)
{
    fixture *f = *state;
    kms_audit *a = open_log(f);
    append_n(a, 0, 1);
    assert_true(kms_audit_ready(a));
    kms_test_rmrf(f->dir);
    assert_false(kms_audit_ready(a));
    assert_kms_error(append_one(a, 1), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "is missing"));
    kms_audit_close(a);
}

static void test_read_only(void **state)
{
    fixture *f = *state;
    if (geteuid() == 0) {
        skip(); /* root writes anywhere */
    }
    assert_int_equal(chmod(f->dir, 0500), 0);
    assert_null(kms_audit_open(&f->o));
    assert_int_equal(kms_last_error(), KMS_ERR_AUDIT);
    assert_non_null(strstr(kms_last_error_message(), "read-only"));
    assert_int_equal(chmod(f->dir, 0700), 0);
}

#define CHILD_CHECK(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "child: line %d: %s (%s)\n", __LINE__, #c, kms_last_error_message());  \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

static void set_fsize(rlim_t n)
{
    struct rlimit rl;
    CHILD_CHECK(getrlimit(RLIMIT_FSIZE, &rl) == 0);
    rl.rlim_cur = n;
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
}

/* In a child: RLIMIT_FSIZE makes the write fail part-way (EFBIG, SIGXFSZ ignored). */
static void write_failure_child(fixture *f)
{
    signal(SIGXFSZ, SIG_IGN);
    char *seg = segment_path(f, 1);
    /* A first write that fails leaves the segment without records. */
    kms_audit *a = kms_audit_open(&f->o);
    CHILD_CHECK(a != NULL);
    set_fsize(10);
    CHILD_CHECK(append_one(a, 0) == -1);
    CHILD_CHECK(kms_last_error() == KMS_ERR_AUDIT);
    CHILD_CHECK(file_size(seg) == 0);
    set_fsize(RLIM_INFINITY);
    for (int i = 0; i < 2; i++) {
        CHILD_CHECK(append_one(a, i) == 0);
    }
    size_t size = 0, after = 0;
    free(read_records(seg, &size));
    CHILD_CHECK(file_size(seg) > (off_t)size); /* space preallocated ahead */
    /* Room for part of the next line: a short write, then EFBIG (the limit holds for writes
     * over preallocated space too). */
    set_fsize((rlim_t)size + 40);
    CHILD_CHECK(append_one(a, 2) == -1);
    CHILD_CHECK(kms_last_error() == KMS_ERR_AUDIT);
    CHILD_CHECK(strstr(kms_last_error_message(), seg) != NULL);
    CHILD_CHECK(strstr(kms_last_error_message(), strerror(EFBIG)) != NULL);
    free(read_records(seg, &after)); /* no partial line left behind */
    CHILD_CHECK(after == size);
    set_fsize(RLIM_INFINITY);
    CHILD_CHECK(append_one(a, 2) == 0); /* sequence 3, right after the failed one */
    kms_audit_close(a);
    free(seg);
    _exit(0);
}

static void test_write_failure(void **state)
{
    fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        write_failure_child(f);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(verify_trail(f), 3);
    assert_int_equal(verify_digests(f), 1);
}

/* In a child: the file system fills up (RLIMIT_FSIZE at the segment's size). Records of
 * operations already under way still go into the space written ahead; the next operation is
 * refused by kms_audit_announce before it runs, and runs again once there is room. */
static void full_disk_child(fixture *f)
{
    signal(SIGXFSZ, SIG_IGN);
    char *seg = segment_path(f, 1);
    kms_audit *a = kms_audit_open(&f->o);
    CHILD_CHECK(a != NULL);
    CHILD_CHECK(exists(seg)); /* made at open, with its space ahead */
    off_t room = file_size(seg);
    CHILD_CHECK(room >= 64 * 1024);
    set_fsize((rlim_t)room);
    CHILD_CHECK(kms_audit_announce(a) == 0);
    CHILD_CHECK(append_one(a, 0) == 0); /* fits; the space ahead could not be kept */
    CHILD_CHECK(kms_audit_announce(a) == -1);
    CHILD_CHECK(kms_last_error() == KMS_ERR_AUDIT);
    CHILD_CHECK(strstr(kms_last_error_message(), "no space for the audit log") != NULL);
    CHILD_CHECK(strstr(kms_last_error_message(), "was not performed") != NULL);
    CHILD_CHECK(file_size(seg) == room);
    set_fsize(RLIM_INFINITY);
    CHILD_CHECK(kms_audit_announce(a) == 0);
    CHILD_CHECK(append_one(a, 1) == 0);
    CHILD_CHECK(file_size(seg) > room);
    kms_audit_close(a);
    free(seg);
    _exit(0);
}

static void test_full_disk_refuses_before(void **state)
{
    fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        full_disk_child(f);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(verify_trail(f), 2);
    assert_int_equal(verify_digests(f), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_written_on_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_seals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_explicit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_seal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_keeper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_on_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_on_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_whole_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preallocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_with_hole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_name_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_regular_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_announce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_refuses_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_finished_seal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_follows_seals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_rollback_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_trail_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_removed_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
