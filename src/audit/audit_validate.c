/* validate-logs: checks a trail on disk (audit.h "On disk", "A record line", "A digest") the way
 * `aws cloudtrail validate-logs` checks S3 log files, and says what is wrong in a report.
 *
 * Passes:
 *  1. List segments/ and digests/; names that do not belong are "unexpected".
 *  2. Read every digest: its .sig against the key, its JSON, its own name and fields.
 *  3. Walk the digest chain (previousDigestFile/HashValue/Signature) in sequence order.
 *  4. Peek at each segment's first record and order the segments by it (so that swapped files
 *     are reported once, as misnamed, instead of as a broken chain), note which digest lists
 *     which segment, then stream every segment line by line: JSON, sequence, previousHash, the
 *     file's SHA-256.
 *  5. Compare the segments with what their digests recorded; find segments no digest lists.
 *  6. Match every file in torn/ with the AuditLogRepaired record of its repair.
 *  7. Check the anchor, if the caller gave one: the digest it names and the records it covers
 *     are there, with the anchored bytes (a rollback of the tail shows only here); and an anchor
 *     kept off the machine, if given: its record is there with its chain hash (a rollback of
 *     the trail together with the token shows only there).
 *  8. Keep the problems and counters of the files whose event times overlap [start, end]. A
 *     file's times are the signed ones of its digest: a record's eventTime is not signed, and
 *     changing it must not hide a segment. Problems that are not about when events happened
 *     (signatures, the digest chain, torn lines, files that do not belong) are always kept.
 * Problems are collected per file (at most PROBLEMS_PER_FILE each) so that the time filter can
 * drop whole files, and so that a garbage file cannot blow up the report.
 *
 * Every file is opened O_NONBLOCK | O_NOFOLLOW and refused unless fstat says it is a regular
 * file: a FIFO or device put in the trail must not hang or feed validate-logs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_validator.h"
#include "util/util.h"

/* ---- The report ----------------------------------------------------------------------------- */

static bool overlaps(const validator *v, int64_t oldest, int64_t newest)
{
    if (oldest < 0 || newest < 0) {
        return true; /* times unknown: report rather than hide */
    }
    return (v->start == 0 || newest >= v->start) && (v->end == 0 || oldest <= v->end);
}

static void flush(validator *v, json_t *out, findings *f, const char *file)
{
    for (size_t i = 0; i < json_array_size(f->problems); i++) {
        if (json_array_append(out, json_array_get(f->problems, i)) != 0) {
            v->oom = true;
        }
    }
    if (f->suppressed > 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%zu more problems in %s are not listed", f->suppressed, file);
        if (json_array_append_new(out, json_pack("{s:s, s:o, s:o}", "Kind", f->suppressed_kind,
                                                 "File", kms_audit_json_text(file), "Message",
                                                 kms_audit_json_text(msg))) != 0) {
            v->oom = true;
        }
    }
}

typedef struct counts {
    json_int_t dig_valid, dig_invalid, log_valid, log_invalid, rec_valid, rec_invalid, rec_unsigned;
} counts;

/* The event times the filter judges segment s by. Those its digest signed when one whose
 * signature verifies lists it (audit.h "A digest": the logFiles entry's, else the digest's own);
 * otherwise its records' (returns false: times nobody signed). */
static bool segment_times(const validator *v, const segment *s, int64_t *oldest, int64_t *newest)
{
    *oldest = s->oldest;
    *newest = s->newest;
    if (s->digest < 0 || !v->digs[s->digest].sig_ok) {
        return false;
    }
    const digest *g = &v->digs[s->digest];
    const json_t *e = json_array_get(json_object_get(g->doc, "logFiles"), s->entry);
    *oldest = kms_audit_parse_time(kms_validator_str_field(e, "oldestEventTime"));
    *newest = kms_audit_parse_time(kms_validator_str_field(e, "newestEventTime"));
    if (*oldest < 0 || *newest < 0) {
        *oldest = g->oldest;
        *newest = g->newest;
    }
    return true;
}

static void report_segment(validator *v, segment *s, json_t *problems, json_t *repairs, counts *c)
{
    int64_t oldest, newest;
    /* Unsigned times of a segment with problems could have been changed to hide them. */
    bool signed_times = segment_times(v, s, &oldest, &newest);
    if (!s->f.timeless && (signed_times || !s->f.invalid) && !overlaps(v, oldest, newest)) {
        return;
    }
    flush(v, problems, &s->f, s->name);
    if (json_array_extend(repairs, s->repairs) != 0) {
        v->oom = true;
    }
    bool signed_ok = s->digest >= 0 && v->digs[s->digest].sig_ok;
    bool trusted = !s->damaged && (signed_ok || s->open);
    if (!s->open || s->f.invalid) {
        c->log_valid += trusted && !s->f.invalid;
        c->log_invalid += !(trusted && !s->f.invalid);
    }
    if (!trusted) {
        c->rec_invalid += (json_int_t)(s->good + s->bad);
    } else {
        *(s->open ? &c->rec_unsigned : &c->rec_valid) += (json_int_t)s->good;
        c->rec_invalid += (json_int_t)s->bad;
    }
}

/* "Anchor": the digest it names (File null before the first seal) and the last record the
 * writer acknowledged (null in an anchor of the older form). */
static json_t *anchor_json(const validator *v)
{
    const kms_audit_anchor *an = &v->anchor;
    json_t *o = json_pack("{s:s?, s:I, s:b}", "File", an->has_digest ? an->file : NULL,
                          "LastSequence", (json_int_t)an->last_sequence, "Found", v->anchor_found);
    json_t *ack = an->has_ack ? json_integer((json_int_t)an->ack_sequence) : json_null();
    if (o == NULL || json_object_set_new(o, "AcknowledgedSequence", ack) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* "UnsignedTail": what the open segment holds that no digest signs yet (audit.h). */
static json_t *unsigned_tail(const validator *v)
{
    json_int_t records = 0, bytes = 0;
    int64_t oldest = -1;
    char when[32];
    for (size_t i = 0; i < v->nsegs; i++) {
        const segment *s = &v->segs[i];
        if (s->open && !s->damaged) {
            records += (json_int_t)s->good;
            bytes += (json_int_t)s->record_bytes;
            oldest = s->good > 0 ? s->oldest : -1;
        }
    }
    if (oldest >= 0) {
        kms_time_iso8601(oldest, when);
    }
    return json_pack("{s:I, s:I, s:s?}", "Records", records, "Bytes", bytes, "OldestEventTime",
                     oldest >= 0 ? when : NULL);
}

static json_t *build_report(validator *v)
{
    json_t *problems = json_array(), *repairs = json_array();
    counts c = {0};
    for (size_t i = 0; i < v->ndigs; i++) {
        digest *g = &v->digs[i];
        /* Without a good signature the digest's times are not signed: always reported. */
        if (g->f.timeless || !g->sig_ok || overlaps(v, g->oldest, g->newest)) {
            flush(v, problems, &g->f, g->name);
            bool ok = g->sig_ok && !g->f.invalid;
            c.dig_valid += ok;
            c.dig_invalid += !ok;
        }
    }
    for (size_t i = 0; i < v->nsegs; i++) {
        report_segment(v, &v->segs[i], problems, repairs, &c);
    }
    flush(v, problems, &v->other, "the trail");
    json_t *anchor = !v->anchored ? NULL : anchor_json(v);
    if (v->anchored && anchor == NULL) {
        v->oom = true;
    }
    json_t *r =
        json_pack("{s:b, s:{s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I, s:I}, s:o, s:o, s:o?}", "Valid",
                  json_array_size(problems) == 0, "DigestFiles", "Valid", c.dig_valid, "Invalid",
                  c.dig_invalid, "LogFiles", "Valid", c.log_valid, "Invalid", c.log_invalid,
                  "Records", "Valid", c.rec_valid, "Invalid", c.rec_invalid, "Unsigned",
                  c.rec_unsigned, "Problems", problems, "Repairs", repairs, "Anchor", anchor);
    if (r == NULL) {
        v->oom = true;
    }
    if (r != NULL && json_object_set_new(r, "UnsignedTail", unsigned_tail(v)) != 0) {
        v->oom = true;
    }
    if (r != NULL && v->expecting &&
        json_object_set_new(r, "ExpectedAnchor",
                            json_pack("{s:I, s:s, s:b}", "Sequence", (json_int_t)v->expect_seq,
                                      "Hash", v->expect_hash, "Found", v->expect_found)) != 0) {
        v->oom = true;
    }
    return r;
}

static void validator_free(validator *v)
{
    for (size_t i = 0; i < v->nsegs; i++) {
        json_decref(v->segs[i].f.problems);
        json_decref(v->segs[i].repairs);
        free(v->segs[i].acks);
    }
    for (size_t i = 0; i < v->ndigs; i++) {
        json_decref(v->digs[i].f.problems);
        json_decref(v->digs[i].doc);
        free(v->digs[i].sig_hex);
    }
    json_decref(v->other.problems);
    free(v->reps);
    free(v->segs);
    free(v->by_name);
    free(v->digs);
    EVP_PKEY_free(v->key);
}

static int list_trail(validator *v)
{
    DIR *root = opendir(v->dir);
    if (root == NULL) {
        return kms_raise(KMS_ERR_AUDIT, "cannot read the audit log directory %s: %s", v->dir,
                         strerror(errno));
    }
    closedir(root);
    int err = 0;
    DIR *d = kms_validator_open_sub(v, "segments", &err);
    if (d != NULL) {
        kms_validator_list_segments(v, d);
        closedir(d);
    }
    if (err == 0 && (d = kms_validator_open_sub(v, "digests", &err)) != NULL) {
        kms_validator_list_digests(v, d);
        closedir(d);
    }
    if (err != 0) {
        return kms_raise(KMS_ERR_AUDIT, "cannot read the audit log directory %s: %s", v->dir,
                         strerror(err));
    }
    return 0;
}

int kms_audit_validate(const char *dir, const uint8_t *spki, size_t spki_len, const char *anchor,
                       int64_t start, int64_t end, json_t **report)
{
    kms_audit_trust trust = {.anchor = anchor};
    return kms_audit_validate_against(dir, spki, spki_len, &trust, NULL, start, end, report);
}

int kms_audit_validate_against(const char *dir, const uint8_t *spki, size_t spki_len,
                               const kms_audit_trust *trust, const char *expect, int64_t start,
                               int64_t end, json_t **report)
{
    *report = NULL;
    KMS_ENSURE(dir != NULL && spki != NULL && start >= 0 && end >= 0, KMS_ERR_VALIDATION,
               "validate-logs needs the audit directory, the digest public key and times >= 0");
    int r = -1;
    const char *why = NULL;
    validator v = {.dir = dir,
                   .start = start,
                   .end = end,
                   .prev_seg = -1,
                   .anchor_text = trust != NULL ? trust->anchor : NULL};
    if (trust != NULL) {
        v.acker = trust->acker;
    }
    v.expecting = expect != NULL;
    KMS_ENSURE(expect == NULL ||
                   kms_audit_expected_anchor_parse(expect, &v.expect_seq, v.expect_hash, &why),
               KMS_ERR_VALIDATION,
               "the expected anchor is not SEQUENCE:HASH (as get-audit-anchor prints it): %s", why);
    memcpy(v.prev_hash, kms_audit_zero_hash, sizeof v.prev_hash);
    kms_validator_findings_init(&v.other);
    const uint8_t *p = spki;
    v.key = d2i_PUBKEY(NULL, &p, (long)spki_len);
    ERR_clear_error();
    if (v.key == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "the digest public key is not a DER SubjectPublicKeyInfo");
        goto out;
    }
    kms_audit_sha256_hex(spki, spki_len, v.fingerprint);
    if (list_trail(&v) != 0) {
        goto out;
    }
    kms_validator_check_digests(&v);
    for (size_t i = 0; i < v.nsegs; i++) {
        kms_validator_peek_first(&v, &v.segs[i]);
    }
    if (v.nsegs > 1) {
        qsort(v.segs, v.nsegs, sizeof *v.segs, kms_validator_cmp_segment);
    }
    if (kms_validator_index_segment_names(&v) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory while validating the audit log");
        goto out;
    }
    for (size_t i = 0; i < v.ndigs; i++) {
        if (v.digs[i].doc != NULL) {
            kms_validator_digest_log_files(&v, i);
        }
    }
    kms_validator_parse_anchor(&v);
    for (size_t i = 0; i < v.nsegs && !v.oom; i++) {
        kms_validator_scan_segment(&v, (long)i);
    }
    kms_validator_check_coverage(&v);
    kms_validator_check_torn(&v);
    kms_validator_check_anchor(&v);
    kms_validator_check_expected(&v);
    json_t *out = v.oom ? NULL : build_report(&v);
    if (v.oom) {
        json_decref(out);
        kms_raise(KMS_ERR_INTERNAL, "out of memory while validating the audit log");
        goto out;
    }
    *report = out;
    r = 0;
out:
    validator_free(&v);
    return r;
}
