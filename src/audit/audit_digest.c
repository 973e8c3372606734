/* The writer's digests (audit.h "A digest"): finding the newest one, building and signing the
 * digest of a segment, writing it in the sealing order. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_writer.h"
#include "util/util.h"

/* ---- digests ------------------------------------------------------------------------------ */

static bool is_digest_name(const char *s)
{
    if (strlen(s) != 25 || strcmp(s + 20, ".json") != 0) {
        return false;
    }
    for (int i = 0; i < 20; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

static int parse_digest(kms_audit *a, const char *path, const char *text, size_t len,
                        uint64_t name_seq)
{
    json_error_t err;
    json_t *o = json_loadb(text, len, 0, &err);
    json_t *last = json_object_get(o, "lastSequence");
    const char *hash = json_string_value(json_object_get(o, "lastRecordHash"));
    const char *end = json_string_value(json_object_get(o, "digestEndTime"));
    int r = 0;
    if (!json_is_integer(last) || (uint64_t)json_integer_value(last) != name_seq ||
        !kms_audit_is_hash_hex(hash) || end == NULL || strlen(end) >= sizeof a->dg.end_time ||
        kms_audit_parse_time(end) < 0) {
        r = kms_audit_log_damaged(path,
                                  "not a digest of this trail: lastSequence, lastRecordHash or "
                                  "digestEndTime missing or wrong");
    } else {
        memcpy(a->dg.last_record_hash, hash, sizeof a->dg.last_record_hash);
        snprintf(a->dg.end_time, sizeof a->dg.end_time, "%s", end);
        a->dg.end = kms_audit_parse_time(end);
        a->dg.last_sequence = name_seq;
    }
    json_decref(o);
    return r;
}

/* Finds the newest digest (highest NNN) and reads what the next one chains to. */
int kms_audit_log_load_newest_digest(kms_audit *a)
{
    free(a->dg.signature_hex);
    memset(&a->dg, 0, sizeof a->dg);
    DIR *d = opendir(a->digests);
    if (d == NULL) {
        return kms_audit_log_io_fail("read the audit digest directory", a->digests, errno);
    }
    char best[32] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (is_digest_name(e->d_name) && strcmp(e->d_name, best) > 0) {
            memcpy(best, e->d_name, 26); /* 25 characters and the NUL */
        }
    }
    closedir(d);
    if (best[0] == '\0') {
        return 0;
    }
    int r = -1;
    char *path = NULL, *sig_path = NULL, *text = NULL, *sig = NULL;
    size_t len = 0, sig_len = 0;
    snprintf(a->dg.file, sizeof a->dg.file, "digests/%s", best);
    if ((path = kms_path_join(a->dir, a->dg.file)) == NULL ||
        (sig_path = kms_strdup_printf("%s.sig", path)) == NULL) {
        goto out;
    }
    if (kms_file_read(path, DIGEST_MAX, &text, &len) != 0 ||
        kms_file_read(sig_path, SIG_MAX, &sig, &sig_len) != 0) {
        kms_audit_log_damaged(path, kms_last_error_message());
        goto out;
    }
    if (parse_digest(a, path, text, len, strtoull(best, NULL, 10)) != 0) {
        goto out;
    }
    if ((a->dg.signature_hex = malloc(2 * sig_len + 1)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    kms_audit_hex_encode((const uint8_t *)sig, sig_len, a->dg.signature_hex);
    kms_audit_sha256_hex(text, len, a->dg.hash);
    a->dg.present = true;
    r = 0;
out:
    free(path);
    free(sig_path);
    free(text);
    free(sig);
    return r;
}

/* The digest JSON for the segment open as fd (audit.h "A digest"), compact, in the listed order. */
static int build_digest(kms_audit *a, int fd, char **json, size_t *json_len, uint64_t *last_seq)
{
    int r = -1;
    char *first = NULL, *last = NULL, *oldest = NULL, *newest = NULL;
    size_t first_len = 0, last_len = 0;
    uint64_t first_seq = 0;
    char file_hash[KMS_AUDIT_HASH_HEX + 1], last_hash[KMS_AUDIT_HASH_HEX + 1];
    char digest_file[48], now[32];
    json_t *log = NULL, *d = NULL;
    struct stat st;
    char c = 0;
    const char *path = a->seg_path;
    if (fstat(fd, &st) != 0 ||
        (st.st_size > 0 && kms_audit_log_pread_full(fd, &c, 1, st.st_size - 1) != 0)) {
        kms_audit_log_io_fail("read the audit log segment", path, errno);
        goto out;
    }
    if (st.st_size == 0 || c != '\n') {
        kms_audit_log_damaged(path, st.st_size == 0
                                        ? "a sealed segment without records"
                                        : "a sealed segment that ends with a torn line");
        goto out;
    }
    uint8_t md[32];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    char buf[CHUNK];
    for (off_t off = 0; ok && off < st.st_size;) {
        size_t n = st.st_size - off > CHUNK ? CHUNK : (size_t)(st.st_size - off);
        if (kms_audit_log_pread_full(fd, buf, n, off) != 0) {
            int err = errno;
            EVP_MD_CTX_free(ctx);
            kms_audit_log_io_fail("read the audit log segment", path, err);
            goto out;
        }
        ok = EVP_DigestUpdate(ctx, buf, n) == 1;
        off += (off_t)n;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len == sizeof md;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        kms_raise(KMS_ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    kms_audit_hex_encode(md, sizeof md, file_hash);
    if (kms_audit_log_first_line(fd, path, st.st_size, &first, &first_len) != 0 ||
        kms_audit_log_parse_line(path, first, first_len, &first_seq, &oldest) != 0 ||
        kms_audit_log_last_line(fd, path, st.st_size, &last, &last_len) != 0 ||
        kms_audit_log_parse_line(path, last, last_len, last_seq, &newest) != 0) {
        goto out;
    }
    if (first_seq != a->seg_first || *last_seq < first_seq) {
        kms_audit_log_damaged(path, "its sequence numbers do not match its name");
        goto out;
    }
    kms_audit_sha256_hex(last, last_len, last_hash);
    kms_time_iso8601(kms_now(), now);
    snprintf(digest_file, sizeof digest_file, "digests/%020" PRIu64 ".json", *last_seq);
    log = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s?, s:s?}", "file", a->seg_name, "hashValue",
                    file_hash, "hashAlgorithm", "SHA-256", "firstSequence", (json_int_t)first_seq,
                    "lastSequence", (json_int_t)*last_seq, "oldestEventTime", oldest,
                    "newestEventTime", newest);
    const char *start = a->dg.present ? a->dg.end_time : oldest != NULL ? oldest : now;
    const char *prev_file = a->dg.present ? a->dg.file : NULL;
    const char *prev_hash = a->dg.present ? a->dg.hash : NULL;
    d = log == NULL
            ? NULL
            : json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s, "
                        "s:s?, s:I, s:I, s:s, s:[O]}",
                        "awsAccountId", a->account_id, "digestStartTime", start, "digestEndTime",
                        now, "digestFile", digest_file, "digestPublicKeyFingerprint",
                        a->fingerprint, "digestSignatureAlgorithm", "SHA256withECDSA",
                        "oldestEventTime", oldest, "newestEventTime", newest, "previousDigestFile",
                        prev_file, "previousDigestHashValue", prev_hash,
                        "previousDigestHashAlgorithm", "SHA-256", "previousDigestSignature",
                        a->dg.signature_hex, "firstSequence", (json_int_t)first_seq, "lastSequence",
                        (json_int_t)*last_seq, "lastRecordHash", last_hash, "logFiles", log);
    if (d == NULL || (*json = json_dumps(d, JSON_COMPACT)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot build the audit digest for %s", path);
        goto out;
    }
    *json_len = strlen(*json);
    r = 0;
out:
    json_decref(log);
    json_decref(d);
    free(first);
    free(last);
    free(oldest);
    free(newest);
    return r;
}

void kms_audit_log_signed_digest_clean_up(signed_digest *d)
{
    free(d->json);
    free(d->sig);
    memset(d, 0, sizeof *d);
}

/* Builds the digest of the segment open as fd and has it signed (ECDSA over SHA-256 of the exact
 * bytes). */
int kms_audit_log_sign_digest(kms_audit *a, int fd, signed_digest *d)
{
    uint8_t md[32];
    unsigned int md_len = 0;
    memset(d, 0, sizeof *d);
    KMS_GUARD(build_digest(a, fd, &d->json, &d->len, &d->last_seq));
    if (EVP_Digest(d->json, d->len, md, &md_len, EVP_sha256(), NULL) != 1) {
        kms_audit_log_signed_digest_clean_up(d);
        return kms_raise(KMS_ERR_INTERNAL, "SHA-256 failed");
    }
    if (a->signer.sign(a->signer.arg, md, &d->sig, &d->sig_len) != 0 || d->sig == NULL) {
        kms_audit_log_signed_digest_clean_up(d);
        return kms_raise(KMS_ERR_AUDIT, "cannot sign the audit digest of %s: %s", a->seg_path,
                         kms_last_error_message());
    }
    return 0;
}

/* Writes NNN.json.sig then NNN.json, each atomically (audit.h sealing order). */
int kms_audit_log_store_digest(kms_audit *a, const signed_digest *d)
{
    int r = -1;
    char name[48];
    char *path = NULL, *sig_path = NULL;
    snprintf(name, sizeof name, "digests/%020" PRIu64 ".json", d->last_seq);
    if ((path = kms_path_join(a->dir, name)) == NULL ||
        (sig_path = kms_strdup_printf("%s.sig", path)) == NULL) {
        goto out;
    }
    if (kms_file_write_atomic(sig_path, d->sig, d->sig_len, 0400) != 0 ||
        kms_audit_log_fsync_dir(a->digests) != 0 ||
        kms_file_write_atomic(path, d->json, d->len, 0400) != 0 ||
        kms_audit_log_fsync_dir(a->digests) != 0) {
        kms_raise(KMS_ERR_AUDIT, "cannot write the audit digest %s: %s", path,
                  kms_last_error_message());
        goto out;
    }
    r = 0;
out:
    free(path);
    free(sig_path);
    return r;
}
