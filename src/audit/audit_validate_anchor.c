/* validate-logs, pass 7: the anchor, if the caller gave one (audit.h "The anchor"), and an anchor
 * kept off the machine (audit.h "An anchor kept off the machine"). */
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

void kms_validator_note_acked(validator *v, int64_t seq)
{
    if (v->anchored && v->anchor.has_ack && !v->ack_seen &&
        seq == (int64_t)v->anchor.ack_sequence) {
        v->ack_seen = true;
        memcpy(v->ack_seen_hash, v->prev_hash, sizeof v->ack_seen_hash);
    }
}

/* ---- Acks ----------------------------------------------------------------------------------- */

void kms_validator_note_ack_line(validator *v, segment *s, const kms_audit_line *l, size_t lineno,
                                 int64_t seq)
{
    uint64_t n = 0;
    size_t at = 0;
    char prev[KMS_AUDIT_HASH_HEX + 1];
    bool signed_ok = s->digest >= 0 && v->digs[s->digest].sig_ok;
    if (v->acker.mac == NULL || signed_ok || l->p == NULL ||
        !kms_audit_chain_suffix(l->p, l->len, &n, prev, &at) || at == l->len) {
        return;
    }
    if (kms_validator_grow((void **)&s->acks, &s->acks_cap, s->nacks, sizeof *s->acks) != 0) {
        v->oom = true;
        return;
    }
    s->acks[s->nacks++] = (ack_line){l->offset, l->len, lineno, s->good, s->record_bytes, seq};
}

void kms_validator_check_acks(validator *v, segment *s, int fd)
{
    bool signed_ok = s->digest >= 0 && v->digs[s->digest].sig_ok;
    if (v->acker.mac == NULL || signed_ok || s->good == 0) {
        return;
    }
    /* The last line whose ack verifies pins the lines before it (their links are checked by
     * the scan): only it needs its MAC checked, from the last ack backwards. */
    const ack_line *pin = NULL;
    for (size_t i = s->nacks; i > 0 && pin == NULL; i--) {
        const ack_line *k = &s->acks[i - 1];
        char *line = malloc(k->len);
        if (line == NULL) {
            v->oom = true;
            return;
        }
        if (pread(fd, line, k->len, (off_t)k->offset) == (ssize_t)k->len &&
            kms_audit_ack_verifies(&v->acker, line, k->len)) {
            pin = k;
        }
        free(line);
    }
    size_t after = s->good - (pin != NULL ? pin->good : 0);
    if (after == 0) {
        return;
    }
    size_t line = pin != NULL ? pin->lineno + 1 : 1;
    int64_t seq = pin != NULL ? pin->seq + 1 : s->first_seq;
    kms_validator_problem(
        v, &s->f, "unacknowledged", s->name, seq, line,
        "%zu record(s) of %s from line %zu on are not acknowledged: no line whose ack verifies "
        "(a MAC only the HSM key can make) follows them, so this trail's writer did not write "
        "them, or a crash kept it from acknowledging them; it moves them to torn/ and records "
        "an AuditLogRepaired event when it next opens the trail",
        after, s->name, line);
    s->good -= after;
    s->bad += after;
    s->record_bytes = pin != NULL ? pin->bytes : 0;
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

/* The acknowledged part: the record the anchor names is there with its chain hash. */
static void check_acked(validator *v)
{
    const kms_audit_anchor *an = &v->anchor;
    int64_t seq = (int64_t)an->ack_sequence, last = newest_record(v);
    if (!v->ack_seen) {
        kms_validator_problem(v, &v->other, "missing", "anchor", seq, 0,
                              "record %" PRId64 ", which the anchor in the HSM says was written, "
                              "is missing (the trail's last record is %" PRId64
                              "): records were deleted or the directory was rolled back",
                              seq, last);
    } else if (strcmp(v->ack_seen_hash, an->ack_hash) != 0) {
        kms_validator_problem(v, &v->other, "modified", "anchor", seq, 0,
                              "record %" PRId64 " hashes to %s, but the anchor in the HSM "
                              "acknowledged %s when it was written: the record was rewritten",
                              seq, v->ack_seen_hash, an->ack_hash);
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
