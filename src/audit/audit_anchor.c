/* The anchor (audit.h "The anchor"): its text, parsed strictly and formatted; the writer's
 * check of the trail against it, and moving it after a seal. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_writer.h"
#include "util/util.h"

#define ANCHOR_DIGITS 20
#define ANCHOR_PREFIX "digests/"
#define ANCHOR_SUFFIX ".json"

/* n decimal digits at s (no sign, no leading zero unless allow_zeros) as a number <= INT64_MAX. */
static bool anchor_number(const char *s, size_t n, bool allow_zeros, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > ANCHOR_DIGITS || strspn(s, "0123456789") < n ||
        (!allow_zeros && s[0] == '0')) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool is_hash(const char *s, size_t n)
{
    return n == KMS_AUDIT_HASH_HEX && strspn(s, "0123456789abcdef") >= KMS_AUDIT_HASH_HEX;
}

/* The digest part "<lastSequence> <digest file> <hash>" (or "0 - -") at text; *rest: what
 * follows it. */
static bool anchor_digest_part(const char *text, kms_audit_anchor *out, const char **rest,
                               const char **why)
{
    const size_t file_len = sizeof ANCHOR_PREFIX - 1 + ANCHOR_DIGITS + sizeof ANCHOR_SUFFIX - 1;
    uint64_t seq = 0, named = 0;
    if (strncmp(text, "0 - -", 5) == 0) {
        *rest = text + 5;
        return true;
    }
    size_t n = strspn(text, "0123456789");
    if (!anchor_number(text, n, false, &seq) || seq == 0 || text[n] != ' ') {
        *why = "it does not start with a record number (1 or more, no leading zeros) and a space";
        return false;
    }
    const char *file = text + n + 1;
    const char *digits = file + sizeof ANCHOR_PREFIX - 1;
    if (strncmp(file, ANCHOR_PREFIX, sizeof ANCHOR_PREFIX - 1) != 0 ||
        strlen(file) < file_len + 1 || !anchor_number(digits, ANCHOR_DIGITS, true, &named) ||
        strncmp(digits + ANCHOR_DIGITS, ANCHOR_SUFFIX, sizeof ANCHOR_SUFFIX - 1) != 0 ||
        file[file_len] != ' ') {
        *why = "the second field is not a digest file name (digests/, 20 digits, .json)";
        return false;
    }
    if (named != seq) {
        *why = "the digest file is not named after the record number";
        return false;
    }
    const char *hash = file + file_len + 1;
    if (!is_hash(hash, strcspn(hash, " "))) {
        *why = "the third field is not 64 lower-case hex digits";
        return false;
    }
    out->has_digest = true;
    out->last_sequence = seq;
    memcpy(out->file, file, file_len);
    out->file[file_len] = '\0';
    memcpy(out->hash, hash, KMS_AUDIT_HASH_HEX);
    out->hash[KMS_AUDIT_HASH_HEX] = '\0';
    *rest = hash + KMS_AUDIT_HASH_HEX;
    return true;
}

bool kms_audit_anchor_parse(const char *text, kms_audit_anchor *out, const char **why)
{
    const char *rest = NULL;
    uint64_t ack = 0;
    memset(out, 0, sizeof *out);
    if (text == NULL || strlen(text) >= KMS_AUDIT_ANCHOR_MAX) {
        *why = "not one line of at most 255 bytes";
        return false;
    }
    if (!anchor_digest_part(text, out, &rest, why)) {
        return false;
    }
    if (*rest == '\0' && out->has_digest) {
        return true; /* the older form: no acknowledged record */
    }
    size_t n = rest[0] == ' ' ? strspn(rest + 1, "0123456789") : 0;
    if (!anchor_number(rest + 1, n, false, &ack) || ack == 0 || ack < out->last_sequence ||
        rest[1 + n] != ' ') {
        *why = "the fourth field is not the number of the last acknowledged record (no leading "
               "zeros, at least the digest's)";
        return false;
    }
    const char *hash = rest + 1 + n + 1;
    size_t hash_len = strcspn(hash, " ");
    if (!is_hash(hash, hash_len)) {
        *why = "the fifth field is not 64 lower-case hex digits";
        return false;
    }
    const char *tail = hash + hash_len;
    uint64_t ack_end = 0;
    size_t m = tail[0] == ' ' ? strspn(tail + 1, "0123456789") : 0;
    if (tail[0] != '\0' &&
        (!anchor_number(tail + 1, m, tail[1] == '0' && m == 1, &ack_end) || tail[1 + m] != '\0')) {
        *why = "the sixth field is not a byte offset (no leading zeros), or something follows it";
        return false;
    }
    out->has_ack = true;
    out->ack_sequence = ack;
    memcpy(out->ack_hash, hash, KMS_AUDIT_HASH_HEX);
    out->ack_hash[KMS_AUDIT_HASH_HEX] = '\0';
    out->ack_end = ack_end;
    return true;
}

void kms_audit_anchor_format(const kms_audit_anchor *an, char out[KMS_AUDIT_ANCHOR_MAX])
{
    if (an->has_digest) {
        snprintf(out, KMS_AUDIT_ANCHOR_MAX,
                 "%" PRIu64 " " ANCHOR_PREFIX "%020" PRIu64 ANCHOR_SUFFIX " %s %" PRIu64
                 " %s %" PRIu64,
                 an->last_sequence, an->last_sequence, an->hash, an->ack_sequence, an->ack_hash,
                 an->ack_end);
    } else {
        snprintf(out, KMS_AUDIT_ANCHOR_MAX, "0 - - %" PRIu64 " %s %" PRIu64, an->ack_sequence,
                 an->ack_hash, an->ack_end);
    }
}

/* Refuses the trail as rolled back; `found` says what the trail holds instead of the anchored
 * digest. */
static int rolled_back(kms_audit *a, const kms_audit_anchor *an, const char *found)
{
    char end[96];
    if (a->dg.present) {
        snprintf(end, sizeof end, "ends at %s (record %" PRIu64 ")", a->dg.file,
                 a->dg.last_sequence);
    } else {
        snprintf(end, sizeof end, "has no digest");
    }
    return kms_raise(KMS_ERR_AUDIT,
                     "the audit trail in %s %s but the HSM anchor says %s (record %" PRIu64
                     ") was written, and %s: digests or segments were deleted or rolled back. "
                     "Operations are refused: run `kmsctl validate-logs` and restore the audit "
                     "directory from a backup that holds %s",
                     a->dir, end, an->file, an->last_sequence, found, an->file);
}

/* The SHA-256 of the anchored digest file; *missing when there is no such file. */
static int anchored_hash(kms_audit *a, const kms_audit_anchor *an, bool *missing,
                         char hash[KMS_AUDIT_HASH_HEX + 1])
{
    *missing = false;
    if (a->dg.present && strcmp(an->file, a->dg.file) == 0) {
        memcpy(hash, a->dg.hash, KMS_AUDIT_HASH_HEX + 1);
        return 0;
    }
    /* The trail is ahead of the anchor (a crash between a digest and its anchor): an older
     * digest, read only here. */
    char *path = kms_path_join(a->dir, an->file);
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    if (path == NULL) {
        return -1;
    }
    int r = 0;
    if (lstat(path, &st) != 0 && errno == ENOENT) {
        *missing = true;
    } else if (kms_file_read(path, DIGEST_MAX, &text, &len) != 0) {
        r = kms_audit_log_damaged(path, kms_last_error_message());
    } else {
        kms_audit_sha256_hex(text, len, hash);
    }
    free(text);
    free(path);
    return r;
}

/* Reads and parses the anchor into a->anchor (all zero when there is none yet, or no anchor
 * callbacks). A malformed anchor is refused (fail closed). */
int kms_audit_log_read_anchor(kms_audit *a)
{
    memset(&a->anchor, 0, sizeof a->anchor);
    if (a->signer.anchor_get == NULL) {
        return 0;
    }
    char *text = NULL;
    const char *why = NULL;
    if (a->signer.anchor_get(a->signer.arg, &text) != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "cannot read the anchor of the audit trail in %s: %s; operations are "
                         "refused until it can be read",
                         a->dir, kms_last_error_message());
    }
    int r = 0;
    if (text != NULL && !kms_audit_anchor_parse(text, &a->anchor, &why)) {
        memset(&a->anchor, 0, sizeof a->anchor);
        r = kms_raise(KMS_ERR_AUDIT,
                      "the HSM anchor of the audit trail in %s is malformed (%s): operations are "
                      "refused until a holder of the token PIN corrects it; run `kmsctl "
                      "validate-logs` to see how far the trail goes",
                      a->dir, why);
    }
    free(text);
    return r;
}

/* The newest digest against the acknowledged record: one that ends at it has its hash; one
 * beyond it (a crash between a seal's digest and its anchor) must carry this trail's signature,
 * since only a seal, which checks the records' chain and acks first, makes one. */
static int check_ack_digest(kms_audit *a)
{
    const kms_audit_anchor *an = &a->anchor;
    if (!an->has_ack || !a->dg.present || a->dg.last_sequence < an->ack_sequence) {
        return 0;
    }
    if (a->dg.last_sequence == an->ack_sequence ? strcmp(a->dg.last_record_hash, an->ack_hash) == 0
                                                : a->dg.signed_ok) {
        return 0;
    }
    return kms_raise(KMS_ERR_AUDIT,
                     "the audit digest %s in %s covers records up to %" PRIu64
                     ", but the HSM anchor says record %" PRIu64
                     " (chain hash %s) was written, and the digest %s: it was not made by this "
                     "trail's writer. Operations are refused: run `kmsctl validate-logs` and "
                     "restore the audit directory from a backup",
                     a->dg.file, a->dir, a->dg.last_sequence, an->ack_sequence, an->ack_hash,
                     a->dg.last_sequence == an->ack_sequence ? "ends with another record"
                                                             : "is not signed by the HSM key");
}

/* The newest digest must carry this trail's signature: the next seal chains to it, and would
 * vouch for whatever it lists. */
static int check_signed(kms_audit *a)
{
    if (!a->dg.present || a->dg.signed_ok) {
        return 0;
    }
    return kms_raise(KMS_ERR_AUDIT,
                     "the newest audit digest %s in %s is not signed by the HSM key: it was "
                     "replaced or forged. Operations are refused: run `kmsctl validate-logs` and "
                     "restore the audit directory from a backup",
                     a->dg.file, a->dir);
}

/* Under LOCK, with a->dg just loaded: the trail reaches the anchored digest, whose bytes are the
 * anchored ones, and no digest goes beyond the acknowledged record. Looks at files only (changes
 * nothing), so that a refused trail stays as found. */
int kms_audit_log_check_anchor(kms_audit *a)
{
    KMS_GUARD(kms_audit_log_read_anchor(a));
    const kms_audit_anchor *an = &a->anchor;
    bool missing = false;
    char hash[KMS_AUDIT_HASH_HEX + 1];
    if (!an->has_digest) {
        KMS_GUARD(check_ack_digest(a));
        return check_signed(a);
    }
    uint64_t have = a->dg.present ? a->dg.last_sequence : 0;
    if (have < an->last_sequence) {
        return rolled_back(a, an, "that digest is missing");
    }
    KMS_GUARD(anchored_hash(a, an, &missing, hash));
    if (missing) {
        return rolled_back(a, an, "that digest is missing");
    }
    if (strcmp(hash, an->hash) != 0) {
        return rolled_back(a, an,
                           "that digest's bytes are not the ones anchored (it was replaced)");
    }
    KMS_GUARD(check_ack_digest(a));
    return check_signed(a);
}

/* Stores `next` as the anchor; a->anchor follows only when it was stored. */
static int store_anchor(kms_audit *a, const kms_audit_anchor *next)
{
    char text[KMS_AUDIT_ANCHOR_MAX];
    kms_audit_anchor_format(next, text);
    KMS_GUARD(a->signer.anchor_set(a->signer.arg, text));
    a->anchor = *next;
    return 0;
}

/* Under LOCK, with the state just brought up to date: the anchor names the newest digest found
 * and the last record written, unless it names that record (or a later one) already. */
int kms_audit_log_ack(kms_audit *a)
{
    if (a->signer.anchor_set == NULL || a->next_seq <= 1 ||
        (a->anchor.has_ack && a->anchor.ack_sequence >= a->next_seq - 1)) {
        return 0;
    }
    kms_audit_anchor next = a->anchor;
    if (a->dg.present && (!next.has_digest || a->dg.last_sequence > next.last_sequence)) {
        next.has_digest = true;
        next.last_sequence = a->dg.last_sequence;
        snprintf(next.file, sizeof next.file, "%s", a->dg.file);
        memcpy(next.hash, a->dg.hash, sizeof next.hash);
    }
    next.has_ack = true;
    next.ack_sequence = a->next_seq - 1;
    memcpy(next.ack_hash, a->prev_hash, sizeof next.ack_hash);
    next.ack_end = a->seg_fd >= 0 && a->seg_size > 0 ? (uint64_t)a->seg_size : 0;
    if (store_anchor(a, &next) != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the HSM anchor of the audit trail in %s could not be moved to record "
                         "%" PRIu64 " (%s); the records stay acknowledged in the trail",
                         a->dir, next.ack_sequence, kms_last_error_message());
    }
    a->anchor_stored_ns = kms_audit_log_monotonic_ns();
    return 0;
}

/* After digest d is stored (under LOCK): the anchor names it, unless it names a newer one. The
 * acknowledged record stays: a seal covers exactly the acknowledged records. */
int kms_audit_log_move_anchor(kms_audit *a, const signed_digest *d)
{
    if (a->signer.anchor_set == NULL ||
        (a->anchor.has_digest && d->last_seq <= a->anchor.last_sequence)) {
        return 0;
    }
    kms_audit_anchor next = a->anchor;
    next.has_digest = true;
    next.last_sequence = d->last_seq;
    snprintf(next.file, sizeof next.file, ANCHOR_PREFIX "%020" PRIu64 ANCHOR_SUFFIX, d->last_seq);
    kms_audit_sha256_hex(d->json, d->len, next.hash);
    if (!next.has_ack || next.ack_sequence < d->last_seq) {
        next.has_ack = true; /* an anchor of the older form: the seal covers what is acked */
        next.ack_sequence = d->last_seq;
        memcpy(next.ack_hash, a->prev_hash, sizeof next.ack_hash);
    }
    next.ack_end = 0; /* in the sealed segment, not in the open one */
    if (store_anchor(a, &next) != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit digest digests/%020" PRIu64 ".json was written but the HSM "
                         "anchor could not be moved to it (%s); the next seal moves it",
                         d->last_seq, kms_last_error_message());
    }
    return 0;
}

/* ---- An anchor kept off the machine (audit.h) ----------------------------------------------- */

bool kms_audit_expected_anchor_parse(const char *text, uint64_t *sequence,
                                     char hash[KMS_AUDIT_HASH_HEX + 1], const char **why)
{
    *sequence = 0;
    memset(hash, 0, KMS_AUDIT_HASH_HEX + 1);
    size_t n = text != NULL ? strspn(text, "0123456789") : 0;
    uint64_t seq = 0;
    if (n == 0 || !anchor_number(text, n, false, &seq) || seq == 0 || text[n] != ':') {
        *why = "it does not start with a record number (1 or more, no leading zeros) and ':'";
        return false;
    }
    const char *h = text + n + 1;
    if (strlen(h) != KMS_AUDIT_HASH_HEX ||
        strspn(h, "0123456789abcdefABCDEF") != KMS_AUDIT_HASH_HEX) {
        *why = "what follows ':' is not the 64 hex digits of a record's chain hash";
        return false;
    }
    for (size_t i = 0; i < KMS_AUDIT_HASH_HEX; i++) {
        hash[i] = (char)(h[i] >= 'A' && h[i] <= 'F' ? h[i] - 'A' + 'a' : h[i]);
    }
    *sequence = seq;
    return true;
}

int kms_audit_anchor_record(const char *dir, const char *anchor, uint64_t *sequence,
                            char hash[KMS_AUDIT_HASH_HEX + 1], char file[64])
{
    int r = -1;
    kms_audit_anchor an;
    const char *why = NULL;
    char *path = NULL, *text = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    char have[KMS_AUDIT_HASH_HEX + 1];
    *sequence = 0;
    memset(hash, 0, KMS_AUDIT_HASH_HEX + 1);
    file[0] = '\0';
    if (!kms_audit_anchor_parse(anchor, &an, &why)) {
        kms_raise(KMS_ERR_AUDIT, "the HSM anchor of the audit trail in %s is malformed (%s)", dir,
                  why);
        goto out;
    }
    if (an.has_ack) {
        /* The last record the writer acknowledged: newer than any digest, and what an anchor
         * kept off the machine should name. */
        *sequence = an.ack_sequence;
        memcpy(hash, an.ack_hash, KMS_AUDIT_HASH_HEX + 1);
        snprintf(file, 64, "%s", an.has_digest ? an.file : "");
        r = 0;
        goto out;
    }
    if ((path = kms_path_join(dir, an.file)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_file_read(path, DIGEST_MAX, &text, &len) != 0) {
        kms_raise(KMS_ERR_AUDIT,
                  "the HSM anchor names %s, which cannot be read (%s): run `kmsctl "
                  "validate-logs`",
                  path, kms_last_error_message());
        goto out;
    }
    kms_audit_sha256_hex(text, len, have);
    doc = strcmp(have, an.hash) == 0 ? json_loadb(text, len, 0, NULL) : NULL;
    const char *last = json_string_value(json_object_get(doc, "lastRecordHash"));
    json_int_t seq = json_integer_value(json_object_get(doc, "lastSequence"));
    if (doc == NULL || seq != (json_int_t)an.last_sequence || !kms_audit_is_hash_hex(last)) {
        kms_raise(KMS_ERR_AUDIT,
                  "%s is not the digest the HSM anchor recorded (its bytes or its "
                  "lastSequence and lastRecordHash differ): run `kmsctl validate-logs`",
                  path);
        goto out;
    }
    *sequence = an.last_sequence;
    memcpy(hash, last, KMS_AUDIT_HASH_HEX + 1);
    snprintf(file, 64, "%s", an.file);
    r = 0;
out:
    json_decref(doc);
    free(text);
    free(path);
    return r;
}
