/* validate-logs, pass 5: the segments against what their digests recorded, and segments no
 * digest lists. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_validator.h"
#include "util/util.h"

/* ---- Segments against digests -------------------------------------------------------------- */

static void compare_with_digest(validator *v, segment *s)
{
    digest *g = &v->digs[s->digest];
    const json_t *e = json_array_get(json_object_get(g->doc, "logFiles"), s->entry);
    const char *hash = kms_validator_str_field(e, "hashValue");
    int64_t first = kms_validator_int_field(e, "firstSequence"),
            last = kms_validator_int_field(e, "lastSequence");
    if (!s->scanned) {
        return;
    }
    if (hash == NULL || strcmp(hash, s->file_hash) != 0) {
        kms_validator_problem(
            v, &s->f, "modified", s->name, -1, 0,
            "%s does not hash to the value %s recorded: it was changed after it was sealed",
            s->name, g->name);
        s->damaged = true;
    }
    if ((s->first_seq == first || s->first_seq < 0) && s->last_seq < last) {
        kms_validator_problem(v, &s->f, "missing", s->name,
                              s->last_seq < 0 ? first : s->last_seq + 1, 0,
                              "%s ends at record %" PRId64
                              " but %s says it holds records up to %" PRId64 ": it was truncated",
                              s->name, s->last_seq, g->name, last);
        s->damaged = true;
    } else if (s->first_seq != first || s->last_seq != last) {
        kms_validator_problem(v, &s->f, "modified", s->name, s->first_seq, 0,
                              "%s holds records %" PRId64 " to %" PRId64 " but %s says %" PRId64
                              " to %" PRId64,
                              s->name, s->first_seq, s->last_seq, g->name, first, last);
        s->damaged = true;
    }
    /* The last segment a digest lists ends with the record whose hash it recorded. */
    const char *lrh = kms_validator_str_field(g->doc, "lastRecordHash");
    if (s->entry + 1 == json_array_size(json_object_get(g->doc, "logFiles")) && s->last_seq >= 0 &&
        (lrh == NULL || strcmp(lrh, s->last_hash) != 0)) {
        kms_validator_problem(v, &s->f, "modified", s->name, s->last_seq, 0,
                              "the last record of %s does not hash to the lastRecordHash of %s",
                              s->name, g->name);
        s->damaged = true;
    }
}

/* The open segment: the last one (in record order) that holds records, or the last one if none
 * does, provided no digest lists it and it starts after the newest digest. A last segment that
 * holds nothing at all (created, or preallocated, before its first record) right after the newest
 * digest is the open one too. */
static long open_segment(const validator *v)
{
    int64_t newest = 0; /* last sequence covered by a digest */
    for (size_t i = 0; i < v->ndigs; i++) {
        int64_t l = v->digs[i].doc ? kms_validator_int_field(v->digs[i].doc, "lastSequence") : -1;
        newest = l > newest ? l : newest;
    }
    long last = (long)v->nsegs - 1;
    for (long i = last; i >= 0; i--) {
        if (v->segs[i].first_seq >= 0) {
            last = i;
            break;
        }
    }
    if (last < 0) {
        return -1;
    }
    const segment *e = &v->segs[v->nsegs - 1];
    if (last != (long)v->nsegs - 1 && v->segs[last].digest >= 0 && e->digest < 0 && !e->sealed &&
        e->scanned && e->first_seq < 0 && e->bad == 0 && e->number == newest + 1) {
        return (long)v->nsegs - 1;
    }
    const segment *s = &v->segs[last];
    int64_t first = s->first_seq >= 0 ? s->first_seq : s->number;
    bool named_right = s->first_seq < 0 || s->first_seq == s->number;
    /* A sealed segment without a digest is never the open one: its digest was deleted. */
    return s->digest < 0 && !s->sealed && first > newest && named_right ? last : -1;
}

void kms_validator_check_coverage(validator *v)
{
    long open = open_segment(v);
    for (size_t i = 0; i < v->nsegs; i++) {
        segment *s = &v->segs[i];
        if (s->digest >= 0) {
            compare_with_digest(v, s);
        } else if ((long)i == open) {
            s->open = true;
        } else {
            kms_validator_problem(
                v, &s->f, "missing", s->name, s->first_seq, 0,
                "%s is listed by no digest and is not the open segment after the newest "
                "digest: its digest is missing, or the file does not belong to the trail",
                s->name);
            s->damaged = true;
            if (s->padded) {
                kms_validator_problem(
                    v, &s->f, "torn", s->name, -1, s->pad_line,
                    "line %zu of %s (offset %" PRIu64 ", %" PRIu64 " bytes) is NUL bytes "
                    "without a '\\n': only the open segment may end in unused space",
                    s->pad_line, s->name, s->pad_offset, s->pad_len);
            }
        }
    }
}
