/* Sealing the open segment (audit.h "A digest"): its chain checked from the newest digest to
 * the acknowledged record, its zeros cut off, its digest signed and written, the segment made
 * read-only, the anchor moved; on request, when digest_period has passed, when the segment
 * reached its size limit, and at close for a handle opened with seal_on_close. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_writer.h"
#include "util/util.h"

/* Under LOCK, after check_state: seals the open segment if it holds records. */
int kms_audit_log_seal_open(kms_audit *a)
{
    if (a->seg_fd < 0 || a->next_seq <= a->seg_first) {
        return 0;
    }
    /* The preallocated zeros go first: a sealed segment is its records alone. Then hash and sign
     * before the chmod: a signer that fails leaves the segment open. LOCK keeps other writers out
     * meanwhile. */
    if (a->seg_alloc > a->seg_size) {
        if (ftruncate(a->seg_fd, a->seg_size) != 0) {
            return kms_audit_log_io_fail("seal the audit log segment", a->seg_path, errno);
        }
        a->seg_alloc = a->seg_size;
    }
    signed_digest d;
    KMS_GUARD(kms_audit_log_sign_digest(a, a->seg_fd, &d));
    int r = -1;
    if (fchmod(a->seg_fd, 0400) != 0 || fsync(a->seg_fd) != 0) {
        kms_audit_log_io_fail("seal the audit log segment", a->seg_path, errno);
    } else if (kms_audit_log_store_digest(a, &d) == 0) {
        r = kms_audit_log_move_anchor(a, &d);
    }
    /* Sealed, or half-sealed (chmod done, digest not written): the next flush finds out from the
     * files and refuses to go on until a person looks. */
    kms_audit_log_close_segment(a);
    kms_audit_log_signed_digest_clean_up(&d);
    return r;
}

static int seg_start_time(kms_audit *a)
{
    if (a->seg_start >= 0) {
        return 0;
    }
    char *line = NULL, *t = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    a->seg_start = kms_now();
    if (kms_audit_log_first_line(a->seg_fd, a->seg_path, a->seg_size, &line, &len) == 0 &&
        kms_audit_log_parse_line(a->seg_path, line, len, &seq, &t) == 0 && t != NULL &&
        kms_audit_parse_time(t) >= 0) {
        a->seg_start = kms_audit_parse_time(t);
    }
    free(line);
    free(t);
    return 0;
}

/* Whether the open segment is due: it holds records, and digest_period has passed since the
 * newest digest (or, before the first, since its first record), or it reached its size limit. */
bool kms_audit_log_seal_due(kms_audit *a)
{
    if (a->seg_fd < 0 || a->next_seq <= a->seg_first || a->seal_refused == a->seg_first) {
        return false;
    }
    if (a->seg_size >= a->segment_max) {
        return true;
    }
    int64_t start = a->dg.end;
    if (!a->dg.present) {
        (void)seg_start_time(a);
        start = a->seg_start;
    }
    return kms_now() - start >= a->period;
}

/* After a successful batch: seals when due. */
void kms_audit_log_periodic_seal(kms_audit *a)
{
    if (kms_audit_log_seal_due(a)) {
        /* The records are durable; a seal that fails before the chmod is retried later, unless
         * the segment was refused (its records are not the writer's chain: a person looks;
         * checking again after every batch would read the whole segment each time). */
        if (kms_audit_log_seal_open(a) != 0 && kms_last_error() == KMS_ERR_AUDIT) {
            a->seal_refused = a->seg_first;
        }
    }
}
