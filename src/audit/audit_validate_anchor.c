/* validate-logs, pass 7: the anchor, if the caller gave one (audit.h "The anchor"), and an anchor
 * kept off the machine (audit.h "An anchor kept off the machine"). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_validator.h"
#include "util/util.h"

/* ---- The anchor ----------------------------------------------------------------------------- */

/* The newest digest that could be read, for the messages; NULL if none. */
static const digest *newest_digest(const validator *v)
{
    for (size_t i = v->ndigs; i > 0; i--) {
        if (v->digs[i - 1].readable) {
            return &v->digs[i - 1];
        }
    }
    return NULL;
}

/* The highest sequence of a well-formed record in any segment, 0 if none. */
static int64_t newest_record(const validator *v)
{
    int64_t newest = 0;
    for (size_t i = 0; i < v->nsegs; i++) {
        newest = v->segs[i].last_seq > newest ? v->segs[i].last_seq : newest;
    }
    return newest;
}

void kms_validator_parse_anchor(validator *v)
{
    const char *why = NULL;
    if (v->anchor_text == NULL) {
        return;
    }
    if (!kms_audit_anchor_parse(v->anchor_text, &v->anchor, &why)) {
        kms_validator_problem(
            v, &v->other, "malformed", "anchor", -1, 0,
            "the anchor of the trail (kept in the HSM) is malformed: %s; the trail cannot be "
            "checked for a rollback",
            why);
        return;
    }
    v->anchored = true;
}

bool kms_validator_note_acked(validator *v, long si, size_t lineno, int64_t seq)
{
    if (!v->anchored || !v->anchor.has_ack || seq < (int64_t)v->anchor.ack_sequence) {
        return true;
    }
    if (seq == (int64_t)v->anchor.ack_sequence && !v->ack_seen) {
        v->ack_seen = true;
        memcpy(v->ack_seen_hash, v->prev_hash, sizeof v->ack_seen_hash);
        return true;
    }
    if (v->unacked++ == 0) {
        v->unacked_seg = si;
        v->unacked_line = lineno;
        v->unacked_seq = seq;
    }
    /* Not the writer's: neither a valid nor an unsigned record. */
    segment *s = &v->segs[si];
    s->good--;
    s->bad++;
    return false;
}

/* The digest part: the trail reaches the anchored digest, with the anchored bytes, and holds
 * the records it covers. */
static void check_anchored_digest(validator *v)
{
    const kms_audit_anchor *an = &v->anchor;
    int64_t seq = (int64_t)an->last_sequence, last = newest_record(v);
    const digest *g = kms_validator_digest_by_name(v, an->file), *newest = newest_digest(v);
    if (g == NULL || !g->readable) {
        kms_validator_problem(
            v, &v->other, "missing", an->file, seq, 0,
            "%s (records up to %" PRId64 "), which the anchor in the HSM says was written, "
            "is %s; the trail's newest digest is %s: digests or segments were deleted, or "
            "the directory was rolled back to an older copy",
            an->file, seq, g == NULL ? "missing" : "not readable",
            newest != NULL ? newest->name : "none");
    } else if (strcmp(g->hash, an->hash) != 0) {
        kms_validator_problem(
            v, &v->other, "modified", an->file, seq, 0,
            "%s hashes to %s, but the anchor in the HSM recorded %s when it was written: "
            "the digest was replaced",
            an->file, g->hash, an->hash);
    } else if (last < seq) {
        kms_validator_problem(
            v, &v->other, "missing", an->file, last + 1, 0,
            "records %" PRId64 " to %" PRId64 ", which the anchored %s covers, are missing "
            "(the trail's last record is %" PRId64 "): segments were deleted or rolled back",
            last + 1, seq, an->file, last);
    }
}

/* The acknowledged part: the record the writer last acknowledged is there with its chain hash,
 * and no record follows it. */
static void check_acked(validator *v)
{
    const kms_audit_anchor *an = &v->anchor;
    int64_t seq = (int64_t)an->ack_sequence, last = newest_record(v);
    if (!v->ack_seen) {
        kms_validator_problem(v, &v->other, "missing", "anchor", seq, 0,
                              "record %" PRId64 ", which the anchor in the HSM says was the last "
                              "one written, is missing (the trail's last record is %" PRId64
                              "): records were deleted or the directory was rolled back",
                              seq, last);
    } else if (strcmp(v->ack_seen_hash, an->ack_hash) != 0) {
        kms_validator_problem(v, &v->other, "modified", "anchor", seq, 0,
                              "record %" PRId64 " hashes to %s, but the anchor in the HSM "
                              "acknowledged %s when it was written: the record was rewritten",
                              seq, v->ack_seen_hash, an->ack_hash);
    }
    if (v->unacked > 0) {
        segment *s = &v->segs[v->unacked_seg];
        kms_validator_problem(
            v, &v->other, "unacknowledged", s->name, v->unacked_seq, v->unacked_line,
            "%zu record(s) from line %zu of %s follow record %" PRId64
            ", which the anchor in the HSM says was the last one written: this trail's writer "
            "did not write them (or never acknowledged their write); it moves them to torn/ "
            "and records an AuditLogRepaired event when it next opens the trail",
            v->unacked, v->unacked_line, s->name, seq);
    }
}

void kms_validator_check_anchor(validator *v)
{
    if (!v->anchored) {
        return;
    }
    size_t before = json_array_size(v->other.problems) + v->other.suppressed;
    if (v->anchor.has_digest) {
        check_anchored_digest(v);
    }
    if (v->anchor.has_ack) {
        check_acked(v);
    }
    v->anchor_found = json_array_size(v->other.problems) + v->other.suppressed == before;
}

/* ---- An anchor kept off the machine --------------------------------------------------------- */

void kms_validator_check_expected(validator *v)
{
    if (!v->expecting) {
        return;
    }
    int64_t seq = (int64_t)v->expect_seq, last = newest_record(v);
    if (v->expect_seen && strcmp(v->expect_seen_hash, v->expect_hash) == 0) {
        v->expect_found = true;
    } else if (v->expect_seen) {
        kms_validator_problem(
            v, &v->other, "modified", "expected-anchor", seq, 0,
            "record %" PRId64 " does not match the expected anchor: its chain hash is %s, the "
            "anchor kept off the machine says %s; the trail (and the token with it) was rolled "
            "back to an older copy and went on from there, or the record was rewritten",
            seq, v->expect_seen_hash, v->expect_hash);
    } else if (last < seq) {
        kms_validator_problem(
            v, &v->other, "missing", "expected-anchor", seq, 0,
            "the trail ends before the expected anchor: its last record is %" PRId64
            ", but the anchor kept off the machine names record %" PRId64
            " (%s); the trail (and the token with it) was rolled back to an older copy, or its "
            "tail was deleted",
            last, seq, v->expect_hash);
    } else {
        kms_validator_problem(
            v, &v->other, "missing", "expected-anchor", seq, 0,
            "record %" PRId64 ", which the expected anchor names, is missing from the trail "
            "(it goes on to record %" PRId64 "): a segment was deleted or damaged",
            seq, last);
    }
}
