/* Walking a segment's chain forward (audit_internal.h kms_audit_walk_chain): which lines link,
 * and which of them an ack pins (audit.h "A record line"). Shared by the writer (what it keeps
 * of the open segment) and the index (what it lists). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "util/util.h"

/* A linked line with an ack member, and the chain state just past it. */
typedef struct ack_at {
    uint64_t offset, end;
    size_t len;
    uint64_t next_seq;
    char hash[KMS_AUDIT_HASH_HEX + 1];
} ack_at;

typedef struct acks {
    ack_at *v;
    size_t n, cap;
} acks;

static int acks_push(acks *l, const ack_at *x)
{
    KMS_GUARD(kms_array_reserve((void **)&l->v, &l->cap, l->n, sizeof *l->v));
    l->v[l->n++] = *x;
    return 0;
}

/* Whether the line of len bytes at offset in fd carries an ack that verifies. */
static bool verifies_at(int fd, const kms_audit_acker *acker, uint64_t offset, size_t len)
{
    char *line = malloc(len > 0 ? len : 1);
    bool ok = line != NULL && pread(fd, line, len, (off_t)offset) == (ssize_t)len &&
              kms_audit_ack_verifies(acker, line, len);
    free(line);
    return ok;
}

/* The pin: the last of the linked ack lines whose MAC verifies (checked from the last one
 * backwards, so usually one MAC). */
static void find_pin(int fd, const kms_audit_acker *acker, const acks *l, kms_audit_walk *w)
{
    for (size_t i = l->n; i > 0; i--) {
        const ack_at *k = &l->v[i - 1];
        if (verifies_at(fd, acker, k->offset, k->len)) {
            w->pin = k->end;
            w->pin_next_seq = k->next_seq;
            memcpy(w->pin_hash, k->hash, sizeof w->pin_hash);
            return;
        }
    }
}

int kms_audit_walk_chain(const char *path, uint64_t from, uint64_t end, uint64_t seq,
                         const char prev[KMS_AUDIT_HASH_HEX + 1], kms_audit_walk *w)
{
    const bool acked = w->acker != NULL && w->acker->mac != NULL;
    char hash[KMS_AUDIT_HASH_HEX + 1], linked[KMS_AUDIT_HASH_HEX + 1];
    memcpy(hash, prev, sizeof hash);
    w->pin = w->linked = from;
    w->pin_next_seq = seq;
    memcpy(w->pin_hash, prev, sizeof w->pin_hash);
    w->broken = w->acked_after_break = w->want_seen = w->want_ok = false;
    acks linked_acks = {0}, later_acks = {0};
    kms_audit_lines rd;
    kms_audit_line l;
    int r = -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        kms_raise(KMS_ERR_AUDIT, "cannot read the audit log segment %s: %s", path, strerror(errno));
        goto out;
    }
    if (kms_audit_lines_open(&rd, path, from, NULL, false) != 0) {
        int err = rd.err;
        kms_audit_lines_close(&rd);
        kms_raise(KMS_ERR_AUDIT, "cannot read the audit log segment %s: %s", path, strerror(err));
        goto out;
    }
    int rc;
    while ((rc = kms_audit_lines_next(&rd, &l)) == 1 && rd.pos <= end) {
        uint64_t n = 0;
        size_t at = 0;
        bool ok = l.p != NULL && kms_audit_chain_suffix(l.p, l.len, &n, linked, &at);
        if (!w->broken && (!ok || n != seq || strcmp(linked, hash) != 0)) {
            w->broken = true; /* from here on no line is the writer's chain */
        }
        if (w->broken) {
            /* Only an acknowledged line in its place (the number the chain would have there)
             * is one of the writer's after a changed line; copies of older ones are not. */
            bool in_place = ok && n == seq;
            seq++;
            if (acked && in_place && at < l.len) {
                ack_at k = {l.offset, rd.pos, l.len, 0, ""};
                if (acks_push(&later_acks, &k) != 0) {
                    break;
                }
            }
            continue;
        }
        kms_audit_sha256_hex(l.p, l.len, hash);
        seq++;
        w->linked = rd.pos;
        if (w->want_seq != 0 && n == w->want_seq) {
            w->want_seen = true;
            w->want_ok = w->want_hash != NULL && strcmp(hash, w->want_hash) == 0;
        }
        if (!acked) {
            w->pin = rd.pos;
            w->pin_next_seq = seq;
            memcpy(w->pin_hash, hash, sizeof w->pin_hash);
        } else if (at < l.len) {
            ack_at k = {l.offset, rd.pos, l.len, seq, ""};
            memcpy(k.hash, hash, sizeof k.hash);
            if (acks_push(&linked_acks, &k) != 0) {
                break;
            }
        }
    }
    int err = rd.err;
    kms_audit_lines_close(&rd);
    if (rc < 0) {
        kms_raise(KMS_ERR_AUDIT, "cannot read the audit log segment %s: %s", path, strerror(err));
        goto out;
    }
    if (rc == 1 && rd.pos <= end) {
        goto out; /* out of memory, raised */
    }
    if (acked) {
        find_pin(fd, w->acker, &linked_acks, w);
        for (size_t i = 0; i < later_acks.n && !w->acked_after_break; i++) {
            w->acked_after_break =
                verifies_at(fd, w->acker, later_acks.v[i].offset, later_acks.v[i].len);
        }
    }
    r = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    free(linked_acks.v);
    free(later_acks.v);
    return r;
}
