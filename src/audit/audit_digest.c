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
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

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

/* Whether sig is the signer's ECDSA P-256 / SHA-256 signature of text (audit.h "A digest"). */
static bool signed_by_us(const kms_audit *a, const char *text, size_t len, const char *sig,
                         size_t sig_len)
{
    const unsigned char *p = a->signer.spki;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)a->signer.spki_len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = key != NULL && md != NULL &&
              EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestVerify(md, (const unsigned char *)sig, sig_len, (const unsigned char *)text,
                               len) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ok;
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
    a->dg.signed_ok = signed_by_us(a, text, len, sig, sig_len);
    a->dg.present = true;
    r = 0;
out:
    free(path);
    free(sig_path);
    free(text);
    free(sig);
    return r;
}

/* The segment's bytes as the writer knows them, [0, seg_size), read once: what is checked is
 * what is hashed and signed, whatever is appended to the file meanwhile. */
static int read_segment(kms_audit *a, int fd, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (a->seg_size <= 0) {
        return kms_audit_log_damaged(a->seg_path, "a sealed segment without records");
    }
    KMS_GUARD(kms_audit_log_read_range(fd, a->seg_path, 0, (size_t)a->seg_size, buf));
    *len = (size_t)a->seg_size;
    return 0;
}

/* Before anything is signed: the bytes are exactly the chain the writer wrote, from the newest
 * digest's last record on, each line linked to the one before and the last one acknowledged
 * (audit.h "A record line"), which pins them all. A line changed, added or removed since it was
 * written is refused, never signed. */
static int verify_chain(kms_audit *a, const char *buf, size_t n)
{
    char prev[KMS_AUDIT_HASH_HEX + 1], linked[KMS_AUDIT_HASH_HEX + 1];
    memcpy(prev, a->dg.present ? a->dg.last_record_hash : kms_audit_zero_hash, sizeof prev);
    uint64_t want = a->seg_first, seq = 0;
    size_t at = 0, last = 0, last_len = 0;
    bool ok = n > 0 && buf[n - 1] == '\n';
    for (size_t i = 0; ok && i < n;) {
        const char *nl = memchr(buf + i, '\n', n - i);
        size_t len = (size_t)(nl - (buf + i));
        ok = kms_audit_chain_suffix(buf + i, len, &seq, linked, &at) && seq == want &&
             strcmp(linked, prev) == 0;
        kms_audit_sha256_hex(buf + i, len, prev);
        last = i;
        last_len = len;
        want++;
        i += len + 1;
    }
    kms_audit_acker acker = a->signer.ack;
    ok = ok && want == a->next_seq && strcmp(prev, a->prev_hash) == 0 &&
         (acker.mac == NULL || kms_audit_ack_verifies(&acker, buf + last, last_len));
    if (!ok) {
        return kms_audit_log_damaged(a->seg_path,
                                     "its records are not the chain the writer wrote and "
                                     "acknowledged (a record was changed, added or removed), so "
                                     "it is not signed");
    }
    return 0;
}

/* The first or last line of buf (n bytes, ending with '\n'), without its '\n'. */
static void edge_line(const char *buf, size_t n, bool first, const char **line, size_t *len)
{
    if (first) {
        *line = buf;
        *len = (size_t)((const char *)memchr(buf, '\n', n) - buf);
        return;
    }
    const char *end = buf + n - 1, *p = end;
    while (p > buf && p[-1] != '\n') {
        p--;
    }
    *line = p;
    *len = (size_t)(end - p);
}

/* The digest JSON for the open segment (audit.h "A digest"), compact, in the listed order. */
static int build_digest(kms_audit *a, int fd, char **json, size_t *json_len, uint64_t *last_seq)
{
    int r = -1;
    char *buf = NULL, *oldest = NULL, *newest = NULL;
    const char *first = NULL, *last = NULL;
    size_t n = 0, first_len = 0, last_len = 0;
    uint64_t first_seq = 0;
    char file_hash[KMS_AUDIT_HASH_HEX + 1], last_hash[KMS_AUDIT_HASH_HEX + 1];
    char digest_file[48], now[32];
    json_t *log = NULL, *d = NULL;
    const char *path = a->seg_path;
    if (read_segment(a, fd, &buf, &n) != 0 || verify_chain(a, buf, n) != 0) {
        goto out;
    }
    kms_audit_sha256_hex(buf, n, file_hash);
    edge_line(buf, n, true, &first, &first_len);
    edge_line(buf, n, false, &last, &last_len);
    if (kms_audit_log_parse_line(path, first, first_len, &first_seq, &oldest) != 0 ||
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
    free(buf);
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
