/* kmsbench --operation LookupEvents: what the audit trail's readers cost on a large trail.
 *
 * Writes a synthetic trail straight to disk, laid out exactly as audit.h says: segments of
 * --segment-records chained records, each sealed (0400) by a digest that a throwaway P-256 key
 * signs, and the last segment open (0600). Then times lookup-events (the first call builds
 * dir/index.db), the catch-up after more records are appended to the open segment,
 * usage-report and validate-logs, and checks what they answer. No KMS home, no HSM.
 *
 * The records look like the service's (src/service/audit_trail.c): five IAM users, eight KMS
 * operations, 97 keys, one record a second, every 13th denied. */
#include "audit_bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "util/util.h"

#define ACCOUNT "111122223333"
#define REGION "us-east-1"
#define KEY_ARN_PREFIX "arn:aws:kms:" REGION ":" ACCOUNT ":key/"
/* eventTime of record N: BASE_TIME + N seconds (2026-05-28T20:26:40Z + N). */
#define BASE_TIME ((int64_t)1780000000)
#define KEYS 97
#define DENIED_EVERY 13
/* Records appended to the open segment before the catch-up measurement. */
#define APPENDED 10000
#define RECORD_BUF 2048
#define SEGMENT_BUF (1024 * 1024)
#define FILE_NAME_LEN 48 /* "segments/NNN.jsonl", "digests/NNN.json" */
#define ISO_LEN 32
#define EVENT_ID 0xa000u
#define REQUEST_ID 0xb000u

static const char *const USERS[] = {"alice", "bob", "carol", "dave", "erin"};
#define N_USERS (sizeof USERS / sizeof USERS[0])

static const struct {
    const char *name;
    bool read_only;
} EVENTS[] = {
    {"Encrypt", false},   {"Decrypt", false}, {"GenerateDataKey", false}, {"DescribeKey", true},
    {"ReEncrypt", false}, {"Sign", false},    {"GetPublicKey", true},     {"Verify", false},
};
#define N_EVENTS (sizeof EVENTS / sizeof EVENTS[0])

/* What lookup-events is asked, newest first, MaxResults 50 (the default). */
#define FILTER_EVENT_NAME "Decrypt"
#define FILTER_USERNAME "alice"
#define FILTER_KEY 5

/* The digest the next one chains to (audit.h "A digest": previousDigest*). */
typedef struct prev_digest {
    char file[FILE_NAME_LEN]; /* "" before the first seal */
    char hash[KMS_AUDIT_HASH_HEX + 1];
    char *sig_hex;
    char end_time[ISO_LEN];
} prev_digest;

/* A trail being written; records go to the open segment, in order, chained. */
typedef struct trail {
    char *dir; /* TMP/audit */
    EVP_PKEY *key;
    uint8_t *spki;
    size_t spki_len;
    char fingerprint[KMS_AUDIT_HASH_HEX + 1];
    int64_t next_seq;
    char prev_hash[KMS_AUDIT_HASH_HEX + 1]; /* of the last record line */
    FILE *seg;                              /* the open segment, NULL before the first record */
    char seg_file[FILE_NAME_LEN];
    int64_t seg_first, seg_records;
    EVP_MD_CTX *seg_md; /* SHA-256 of the open segment's bytes */
    size_t segments;
    prev_digest prev;
    char line[RECORD_BUF];
} trail;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void print_measurement(const char *what, int64_t records, double seconds, const char *extra)
{
    printf("{\"operation\": \"LookupEvents\", \"measurement\": \"%s\", \"records\": %" PRId64
           ", \"seconds\": %.3f%s%s}\n",
           what, records, seconds, extra ? ", " : "", extra ? extra : "");
    fflush(stdout);
}

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "kmsbench: LookupEvents: %s: %s\n", what, why);
    return -1;
}

static int fail_kms(const char *what)
{
    return fail(what, kms_last_error_message());
}

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void key_id(int64_t k, char out[KMS_UUID_STR_LEN + 1])
{
    snprintf(out, KMS_UUID_STR_LEN + 1, "%08" PRIx64 "-0000-4000-8000-%012" PRIx64, k, k);
}

/* The eventID (variant 0xa000) or requestID (0xb000) of record seq. */
static void record_uuid(int64_t seq, unsigned variant, char out[KMS_UUID_STR_LEN + 1])
{
    snprintf(out, KMS_UUID_STR_LEN + 1, "00000000-0000-4000-%04x-%012" PRIx64, variant, seq);
}

static void event_time(int64_t seq, char out[ISO_LEN])
{
    kms_time_iso8601(BASE_TIME + seq, out);
}

/* ---- Writing the trail ---------------------------------------------------------------------- */

/* Record seq as one line in t->line (audit.h "A record line": auditChain last); its length. */
static int format_record(trail *t, int64_t seq, size_t *len)
{
    const char *user = USERS[seq % N_USERS];
    char when[ISO_LEN], key[KMS_UUID_STR_LEN + 1], id[KMS_UUID_STR_LEN + 1];
    char request[KMS_UUID_STR_LEN + 1];
    event_time(seq, when);
    key_id(seq % KEYS, key);
    record_uuid(seq, EVENT_ID, id);
    record_uuid(seq, REQUEST_ID, request);
    int n = snprintf(
        t->line, sizeof t->line,
        "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\","
        "\"principalId\":\"AIDA%016zX\",\"arn\":\"arn:aws:iam::" ACCOUNT ":user/%s\","
        "\"accountId\":\"" ACCOUNT "\",\"accessKeyId\":\"AKIA%016zX\",\"userName\":\"%s\"},"
        "\"eventTime\":\"%s\",\"eventSource\":\"kms.amazonaws.com\",\"eventName\":\"%s\","
        "\"awsRegion\":\"" REGION "\",\"sourceIPAddress\":\"192.0.2.10\","
        "\"userAgent\":\"kmsbench\",%s\"requestParameters\":{\"keyId\":\"%s\"},"
        "\"responseElements\":null,\"requestID\":\"%s\",\"eventID\":\"%s\",\"readOnly\":%s,"
        "\"resources\":[{\"accountId\":\"" ACCOUNT "\",\"type\":\"AWS::KMS::Key\","
        "\"ARN\":\"" KEY_ARN_PREFIX "%s\"}],\"eventType\":\"AwsApiCall\","
        "\"managementEvent\":true,\"recipientAccountId\":\"" ACCOUNT "\","
        "\"eventCategory\":\"Management\","
        "\"auditChain\":{\"sequence\":%" PRId64 ",\"previousHash\":\"%s\"}}",
        seq % N_USERS, user, seq % N_USERS, user, when, EVENTS[seq % N_EVENTS].name,
        seq % DENIED_EVERY == 0
            ? "\"errorCode\":\"AccessDeniedException\",\"errorMessage\":\"not authorized\","
            : "",
        key, request, id, EVENTS[seq % N_EVENTS].read_only ? "true" : "false", key, seq,
        t->prev_hash);
    if (n < 0 || (size_t)n >= sizeof t->line) {
        return fail("record", "longer than the record buffer");
    }
    *len = (size_t)n;
    return 0;
}

/* Writes a whole file of the trail, 0400 like the writer's digests. */
static int write_file(const trail *t, const char *rel, const void *p, size_t n)
{
    char *path = kms_path_join(t->dir, rel);
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400) : -1;
    int r = fd >= 0 ? 0 : -1;
    const uint8_t *b = p;
    while (r == 0 && n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        r = k > 0 ? 0 : -1;
        b += k > 0 ? k : 0;
        n -= k > 0 ? (size_t)k : 0;
    }
    if (fd >= 0 && close(fd) != 0) {
        r = -1;
    }
    if (r != 0) {
        fail(path ? path : rel, strerror(errno));
    }
    free(path);
    return r;
}

/* A DER ECDSA-Sig-Value over SHA-256(msg), as the HSM makes it. */
static int sign(EVP_PKEY *key, const char *msg, size_t n, uint8_t **sig, size_t *sig_len)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    uint8_t *s = NULL;
    size_t len = 0;
    int r = -1;
    if (c != NULL && EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(c, NULL, &len, (const uint8_t *)msg, n) == 1 && (s = malloc(len)) != NULL &&
        EVP_DigestSign(c, s, &len, (const uint8_t *)msg, n) == 1) {
        *sig = s;
        *sig_len = len;
        s = NULL;
        r = 0;
    }
    free(s);
    EVP_MD_CTX_free(c);
    return r == 0 ? 0 : fail("sign a digest", "OpenSSL failed");
}

static int segment_start(trail *t)
{
    t->seg_first = t->next_seq;
    t->seg_records = 0;
    snprintf(t->seg_file, sizeof t->seg_file, "segments/%020" PRId64 ".jsonl", t->seg_first);
    char *path = kms_path_join(t->dir, t->seg_file);
    int fd = path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    t->seg = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (t->seg == NULL) {
        fail(path ? path : t->seg_file, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        free(path);
        return -1;
    }
    free(path);
    setvbuf(t->seg, NULL, _IOFBF, SEGMENT_BUF);
    t->segments++;
    if (EVP_DigestInit_ex(t->seg_md, EVP_sha256(), NULL) != 1) {
        return fail("SHA-256", "OpenSSL failed");
    }
    return 0;
}

/* Closes the open segment and makes it read-only, as the sealer does before the digest. */
static int segment_close_sealed(trail *t)
{
    char *path = kms_path_join(t->dir, t->seg_file);
    int r = fclose(t->seg) == 0 && path != NULL && chmod(path, 0400) == 0 ? 0 : -1;
    t->seg = NULL;
    if (r != 0) {
        fail(path ? path : t->seg_file, strerror(errno));
    }
    free(path);
    return r;
}

/* The digest JSON of the segment just closed (audit.h "A digest", fields in the listed order). */
static char *digest_json(const trail *t, const char *digest_file, const char *file_hash)
{
    int64_t last = t->next_seq - 1;
    char oldest[ISO_LEN], newest[ISO_LEN];
    event_time(t->seg_first, oldest);
    event_time(last, newest);
    bool first = t->prev.file[0] == '\0';
    /* digestEndTime: the seal happens right after the segment's last record. */
    json_t *d = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:I, s:I, s:s,"
        " s:[{s:s, s:s, s:s, s:I, s:I, s:s, s:s}]}",
        "awsAccountId", ACCOUNT, "digestStartTime", first ? oldest : t->prev.end_time,
        "digestEndTime", newest, "digestFile", digest_file, "digestPublicKeyFingerprint",
        t->fingerprint, "digestSignatureAlgorithm", "SHA256withECDSA", "oldestEventTime", oldest,
        "newestEventTime", newest, "previousDigestFile", first ? NULL : t->prev.file,
        "previousDigestHashValue", first ? NULL : t->prev.hash, "previousDigestHashAlgorithm",
        "SHA-256", "previousDigestSignature", first ? NULL : t->prev.sig_hex, "firstSequence",
        (json_int_t)t->seg_first, "lastSequence", (json_int_t)last, "lastRecordHash", t->prev_hash,
        "logFiles", "file", t->seg_file, "hashValue", file_hash, "hashAlgorithm", "SHA-256",
        "firstSequence", (json_int_t)t->seg_first, "lastSequence", (json_int_t)last,
        "oldestEventTime", oldest, "newestEventTime", newest);
    char *json = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (json == NULL) {
        fail("digest", "out of memory");
    }
    return json;
}

/* Seals the open segment: 0400, then NNN.json.sig and NNN.json (the writer's order). */
static int segment_seal(trail *t)
{
    int r = -1;
    uint8_t md[32], *sig = NULL;
    unsigned int md_len = 0;
    size_t sig_len = 0;
    char file_hash[KMS_AUDIT_HASH_HEX + 1], digest_file[FILE_NAME_LEN], sig_file[FILE_NAME_LEN];
    char *json = NULL, *sig_hex = NULL;
    KMS_GUARD(segment_close_sealed(t));
    if (EVP_DigestFinal_ex(t->seg_md, md, &md_len) != 1 || md_len != sizeof md) {
        return fail("SHA-256", "OpenSSL failed");
    }
    hex_encode(md, sizeof md, file_hash);
    snprintf(digest_file, sizeof digest_file, "digests/%020" PRId64 ".json", t->next_seq - 1);
    snprintf(sig_file, sizeof sig_file, "digests/%020" PRId64 ".json.sig", t->next_seq - 1);
    if ((json = digest_json(t, digest_file, file_hash)) == NULL ||
        sign(t->key, json, strlen(json), &sig, &sig_len) != 0 ||
        write_file(t, sig_file, sig, sig_len) != 0 ||
        write_file(t, digest_file, json, strlen(json)) != 0) {
        goto out;
    }
    if ((sig_hex = malloc(2 * sig_len + 1)) == NULL) {
        fail("digest", "out of memory");
        goto out;
    }
    hex_encode(sig, sig_len, sig_hex);
    free(t->prev.sig_hex);
    t->prev.sig_hex = sig_hex;
    snprintf(t->prev.file, sizeof t->prev.file, "%s", digest_file);
    kms_audit_sha256_hex(json, strlen(json), t->prev.hash);
    event_time(t->next_seq - 1, t->prev.end_time);
    r = 0;
out:
    free(json);
    free(sig);
    return r;
}

/* Appends count records; per > 0: a full segment (per records) is sealed before the next record
 * goes into a new one, so the last segment stays open. per 0: all into the open segment. */
static int trail_append(trail *t, int64_t count, int64_t per)
{
    for (int64_t i = 0; i < count; i++) {
        size_t len = 0;
        if (t->seg != NULL && per > 0 && t->seg_records == per) {
            KMS_GUARD(segment_seal(t));
        }
        if (t->seg == NULL) {
            KMS_GUARD(segment_start(t));
        }
        KMS_GUARD(format_record(t, t->next_seq, &len));
        kms_audit_sha256_hex(t->line, len, t->prev_hash);
        t->line[len++] = '\n';
        if (fwrite(t->line, 1, len, t->seg) != len) {
            return fail(t->seg_file, strerror(errno));
        }
        if (EVP_DigestUpdate(t->seg_md, t->line, len) != 1) {
            return fail("SHA-256", "OpenSSL failed");
        }
        t->next_seq++;
        t->seg_records++;
    }
    /* Readers see whole lines only once they are on disk. */
    return t->seg == NULL || fflush(t->seg) == 0 ? 0 : fail(t->seg_file, strerror(errno));
}

static int trail_init(trail *t, char *dir)
{
    *t = (trail){.dir = dir, .next_seq = 1};
    memset(t->prev_hash, '0', KMS_AUDIT_HASH_HEX);
    uint8_t *spki = NULL;
    t->seg_md = EVP_MD_CTX_new();
    t->key = EVP_EC_gen("P-256");
    int n = t->key ? i2d_PUBKEY(t->key, &spki) : -1;
    if (t->seg_md == NULL || n <= 0) {
        return fail("a P-256 key", "OpenSSL failed");
    }
    t->spki = spki;
    t->spki_len = (size_t)n;
    kms_audit_sha256_hex(t->spki, t->spki_len, t->fingerprint);
    return kms_audit_create(dir, t->spki, t->spki_len) == 0 ? 0 : fail_kms("create the trail");
}

static void trail_clean_up(trail *t)
{
    if (t->seg != NULL) {
        fclose(t->seg);
    }
    EVP_MD_CTX_free(t->seg_md);
    EVP_PKEY_free(t->key);
    OPENSSL_free(t->spki);
    free(t->prev.sig_hex);
}

/* ---- The measurements ----------------------------------------------------------------------- */

/* One timed lookup-events; *out is its answer (the caller frees it). */
static int timed_lookup(const char *dir, const char *what, const kms_audit_query *q,
                        int64_t records, json_t **out)
{
    double t0 = now();
    if (kms_audit_lookup(dir, q, out) != 0) {
        return fail_kms(what);
    }
    double secs = now() - t0;
    char extra[64];
    snprintf(extra, sizeof extra, "\"events\": %zu",
             json_array_size(json_object_get(*out, "Events")));
    print_measurement(what, records, secs, extra);
    return 0;
}

/* The first lookup (catch-up builds the index), then each filter, then the second page of the
 * EventName filter. */
static int bench_lookups(const char *dir, int64_t records)
{
    char key[KMS_UUID_STR_LEN + 1];
    key_id(FILTER_KEY, key);
    const struct {
        const char *what, *attribute, *value;
    } steps[] = {
        {"first lookup (index build)", NULL, NULL},
        {"lookup, no filter, MaxResults 50", NULL, NULL},
        {"lookup, EventName=" FILTER_EVENT_NAME, "EventName", FILTER_EVENT_NAME},
        {"lookup, Username=" FILTER_USERNAME, "Username", FILTER_USERNAME},
        {"lookup, ResourceName=<key id>", "ResourceName", key},
    };
    char *token = NULL;
    int r = -1;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        kms_audit_query q = {steps[i].attribute, steps[i].value, 0, 0, 50, NULL, NULL};
        json_t *res = NULL;
        if (timed_lookup(dir, steps[i].what, &q, records, &res) != 0) {
            goto out;
        }
        const char *next = json_string_value(json_object_get(res, "NextToken"));
        if (steps[i].attribute != NULL && strcmp(steps[i].attribute, "EventName") == 0 &&
            next != NULL) {
            token = strdup(next);
        }
        json_decref(res);
    }
    if (token == NULL) {
        fail("lookup, EventName=" FILTER_EVENT_NAME, "no NextToken for a second page");
        goto out;
    }
    kms_audit_query q = {"EventName", FILTER_EVENT_NAME, 0, 0, 50, token, NULL};
    json_t *res = NULL;
    if (timed_lookup(dir, "lookup, second page via NextToken", &q, records, &res) != 0) {
        goto out;
    }
    json_decref(res);
    r = 0;
out:
    free(token);
    return r;
}

/* Appends APPENDED records to the open segment and times the lookup that indexes them; the
 * newest event must be the last one appended. */
static int bench_catch_up(trail *t)
{
    KMS_GUARD(trail_append(t, APPENDED, 0));
    int64_t records = t->next_seq - 1;
    kms_audit_query q = {NULL, NULL, 0, 0, 50, NULL, NULL};
    json_t *res = NULL;
    char what[64], want[KMS_UUID_STR_LEN + 1];
    snprintf(what, sizeof what, "catch-up after %d more records", APPENDED);
    KMS_GUARD(timed_lookup(t->dir, what, &q, records, &res));
    record_uuid(records, EVENT_ID, want);
    const char *got = json_string_value(
        json_object_get(json_array_get(json_object_get(res, "Events"), 0), "EventId"));
    int r = got != NULL && strcmp(got, want) == 0 ? 0 : fail(what, "the newest event is missing");
    json_decref(res);
    return r;
}

static int bench_usage_report(const trail *t)
{
    int64_t records = t->next_seq - 1;
    json_t *rep = NULL;
    double t0 = now();
    if (kms_audit_usage_report(t->dir, NULL, 0, 0, &rep) != 0) {
        return fail_kms("usage-report");
    }
    double secs = now() - t0;
    json_int_t requests = json_integer_value(json_object_get(rep, "Requests"));
    json_decref(rep);
    char extra[64];
    snprintf(extra, sizeof extra, "\"requests\": %" JSON_INTEGER_FORMAT, requests);
    print_measurement("usage-report, whole trail", records, secs, extra);
    return requests == records ? 0 : fail("usage-report", "it does not count every record");
}

/* validate-logs must find the trail valid: every sealed record valid, the open ones unsigned. */
static int bench_validate(const trail *t)
{
    int64_t records = t->next_seq - 1;
    json_t *rep = NULL;
    double t0 = now();
    if (kms_audit_validate(t->dir, t->spki, t->spki_len, NULL, 0, 0, &rep) != 0) {
        return fail_kms("validate-logs");
    }
    double secs = now() - t0;
    const json_t *counts = json_object_get(rep, "Records");
    bool valid = json_is_true(json_object_get(rep, "Valid"));
    json_int_t ok = json_integer_value(json_object_get(counts, "Valid"));
    json_int_t open = json_integer_value(json_object_get(counts, "Unsigned"));
    char extra[128];
    snprintf(extra, sizeof extra,
             "\"valid\": %s, \"records_valid\": %" JSON_INTEGER_FORMAT
             ", \"records_unsigned\": %" JSON_INTEGER_FORMAT,
             valid ? "true" : "false", ok, open);
    print_measurement("validate-logs, whole trail", records, secs, extra);
    int r = 0;
    if (!valid || ok + open != records) {
        char *text = json_dumps(json_object_get(rep, "Problems"), JSON_COMPACT);
        r = fail("validate-logs: the trail is not valid", text ? text : "(no problems listed)");
        free(text);
    }
    json_decref(rep);
    return r;
}

/* ---- The temporary directory ---------------------------------------------------------------- */

static char *make_temp_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = kms_strdup_printf("%s/kmsbench-audit.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (dir == NULL || mkdtemp(dir) == NULL) {
        fail(dir ? dir : "temporary directory", strerror(errno));
        free(dir);
        return NULL;
    }
    return dir;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void remove_tree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        fail("could not remove", dir);
    }
}

int audit_bench_run(int64_t records, int64_t segment_records)
{
    char *base = make_temp_dir();
    char *dir = base ? kms_path_join(base, "audit") : NULL;
    trail t = {.seg = NULL};
    int r = -1;
    if (dir == NULL) {
        goto out;
    }
    if (trail_init(&t, dir) != 0) {
        goto out;
    }
    double t0 = now();
    if (trail_append(&t, records, segment_records) != 0) {
        goto out;
    }
    char extra[64];
    snprintf(extra, sizeof extra, "\"segments\": %zu", t.segments);
    print_measurement("generate trail", records, now() - t0, extra);
    if (bench_lookups(dir, records) == 0 && bench_catch_up(&t) == 0 &&
        bench_usage_report(&t) == 0 && bench_validate(&t) == 0) {
        r = 0;
    }
out:
    trail_clean_up(&t);
    if (base != NULL) {
        remove_tree(base);
    }
    free(dir);
    free(base);
    return r;
}
