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

/* The trail must reach the anchored digest, with the anchored bytes, and hold the records it
 * covers. Its problems go with the trail's (v->other): always reported, whatever the time range,
 * since a deleted tail has no times left to judge it by. */
void kms_validator_check_anchor(validator *v)
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
    const kms_audit_anchor *an = &v->anchor;
    int64_t seq = (int64_t)an->last_sequence, last = newest_record(v);
    const digest *g = kms_validator_digest_by_name(v, an->file), *newest = newest_digest(v);
    size_t before = json_array_size(v->other.problems) + v->other.suppressed;
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
