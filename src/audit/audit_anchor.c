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

bool kms_audit_anchor_parse(const char *text, kms_audit_anchor *out, const char **why)
{
    const size_t file_len = sizeof ANCHOR_PREFIX - 1 + ANCHOR_DIGITS + sizeof ANCHOR_SUFFIX - 1;
    uint64_t seq = 0, named = 0;
    memset(out, 0, sizeof *out);
    if (text == NULL || strlen(text) >= KMS_AUDIT_ANCHOR_MAX) {
        *why = "not one line of at most 127 bytes";
        return false;
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
    if (strlen(hash) != KMS_AUDIT_HASH_HEX ||
        strspn(hash, "0123456789abcdef") != KMS_AUDIT_HASH_HEX) {
        *why = "the third field is not 64 lower-case hex digits, or something follows it";
        return false;
    }
    out->last_sequence = seq;
    memcpy(out->file, file, file_len);
    out->file[file_len] = '\0';
    memcpy(out->hash, hash, sizeof out->hash);
    return true;
}

void kms_audit_anchor_format(uint64_t last_sequence, const char hash[KMS_AUDIT_HASH_HEX + 1],
                             char out[KMS_AUDIT_ANCHOR_MAX])
{
    snprintf(out, KMS_AUDIT_ANCHOR_MAX,
             "%" PRIu64 " " ANCHOR_PREFIX "%020" PRIu64 ANCHOR_SUFFIX " %s", last_sequence,
             last_sequence, hash);
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

/* Under LOCK, with a->dg just loaded: the trail reaches the anchored digest, whose bytes are the
 * anchored ones. Looks at files only (changes nothing), so that a refused trail stays as found. */
int kms_audit_log_check_anchor(kms_audit *a)
{
    a->anchor_seq = 0;
    if (a->signer.anchor_get == NULL) {
        return 0;
    }
    char *text = NULL;
    if (a->signer.anchor_get(a->signer.arg, &text) != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "cannot read the anchor of the audit trail in %s: %s; operations are "
                         "refused until it can be read",
                         a->dir, kms_last_error_message());
    }
    if (text == NULL) {
        return 0; /* none yet: the next seal sets it */
    }
    int r = -1;
    kms_audit_anchor an;
    const char *why = NULL;
    bool missing = false;
    char hash[KMS_AUDIT_HASH_HEX + 1];
    if (!kms_audit_anchor_parse(text, &an, &why)) {
        kms_raise(KMS_ERR_AUDIT,
                  "the HSM anchor of the audit trail in %s is malformed (%s): operations are "
                  "refused until a holder of the token PIN corrects it; run `kmsctl "
                  "validate-logs` to see how far the trail goes",
                  a->dir, why);
        goto out;
    }
    uint64_t have = a->dg.present ? a->dg.last_sequence : 0;
    if (have < an.last_sequence) {
        rolled_back(a, &an, "that digest is missing");
        goto out;
    }
    if (anchored_hash(a, &an, &missing, hash) != 0) {
        goto out;
    }
    if (missing) {
        rolled_back(a, &an, "that digest is missing");
        goto out;
    }
    if (strcmp(hash, an.hash) != 0) {
        rolled_back(a, &an, "that digest's bytes are not the ones anchored (it was replaced)");
        goto out;
    }
    a->anchor_seq = an.last_sequence;
    r = 0;
out:
    free(text);
    return r;
}

/* After digest d is stored (under LOCK): the anchor names it, unless it names a newer one. */
int kms_audit_log_move_anchor(kms_audit *a, const signed_digest *d)
{
    if (a->signer.anchor_set == NULL || d->last_seq <= a->anchor_seq) {
        return 0;
    }
    char hash[KMS_AUDIT_HASH_HEX + 1], text[KMS_AUDIT_ANCHOR_MAX];
    kms_audit_sha256_hex(d->json, d->len, hash);
    kms_audit_anchor_format(d->last_seq, hash, text);
    if (a->signer.anchor_set(a->signer.arg, text) != 0) {
        return kms_raise(KMS_ERR_AUDIT,
                         "the audit digest digests/%020" PRIu64 ".json was written but the HSM "
                         "anchor could not be moved to it (%s); the next seal moves it",
                         d->last_seq, kms_last_error_message());
    }
    a->anchor_seq = d->last_seq;
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
