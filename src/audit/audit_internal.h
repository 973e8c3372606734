/* What the audit trail's readers (and, for the anchor, its writer) share; private to src/audit
 * (not part of audit.h's surface).
 *
 * Segment lines, read forwards (audit_lines.c): validate-logs (audit_validate.c) and the index
 * catch-up (audit_index.c) stream segments that may be large and may have been tampered with,
 * so a line is never held whole beyond KMS_AUDIT_LINE_MAX bytes: a longer one is skipped and
 * reported by its offset and length only. The writer (audit_log.c) reads single lines at known
 * places (the first, the last, backwards from the end) with pread and does not use this. */
#ifndef KMS_AUDIT_AUDIT_INTERNAL_H
#define KMS_AUDIT_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "audit/audit.h"

/* The longest segment line a reader takes as a possible record: KMS_AUDIT_RECORD_MAX, with room
 * to spare. A longer line is no record (the writer refuses to append one). */
#define KMS_AUDIT_LINE_MAX ((size_t)KMS_AUDIT_RECORD_MAX + 200)

/* A forward reader of one segment file. Caller-owned storage: kms_audit_lines_open fills it,
 * kms_audit_lines_close releases what it holds. The fields are read-only to callers; `pos` and
 * `err` are meant to be read. */
typedef struct kms_audit_lines {
    int fd;
    char *buf;         /* KMS_AUDIT_LINE_MAX + one read */
    size_t start, end; /* unread bytes: buf[start..end) */
    bool eof;          /* read() returned 0 */
    bool torn_tail;    /* return a last line without its '\n' (as torn) */
    uint64_t pos;      /* file offset just past the last line returned (the next line's) */
    int err;           /* errno of the failure when open or next failed */
    EVP_MD_CTX *md;    /* borrowed; every byte read goes through it; NULL: none */
} kms_audit_lines;

/* One line, without its '\n'. p and the bytes it points to stay valid until the next call. */
typedef struct kms_audit_line {
    const char *p;   /* NULL: longer than KMS_AUDIT_LINE_MAX (skipped, not held in memory) */
    size_t len;      /* its length, also when p is NULL */
    uint64_t offset; /* file offset of its first byte */
    bool torn;       /* the file ends without its '\n' (only with torn_tail) */
} kms_audit_line;

/* Opens path for reading lines from byte `offset` (the start of a line). md, if not NULL, must be
 * initialised (EVP_DigestInit_ex) and sees every byte read, so that a reader from offset 0 that
 * reads to the end has hashed the whole file. torn_tail: whether a last line without its '\n' is
 * returned (validate-logs reports it) or left unread (catch-up indexes it once it is complete).
 * path NULL (a failed allocation of the caller's) fails with ENOMEM. 0, or -1 with r->err set;
 * r can be closed in either case. Raises nothing: each caller words the failure its own way. */
int kms_audit_lines_open(kms_audit_lines *r, const char *path, uint64_t offset, EVP_MD_CTX *md,
                         bool torn_tail) __attribute__((warn_unused_result));
/* 1: the next line in *out; 0: no more (end of file, or only an incomplete last line left
 * without torn_tail, or, without torn_tail, a NUL where a line would start: an open segment's
 * preallocated zeros); -1: a read failed (r->err). A line longer than KMS_AUDIT_LINE_MAX is
 * returned with p NULL whatever the read buffer held when its '\n' came. */
int kms_audit_lines_next(kms_audit_lines *r, kms_audit_line *out)
    __attribute__((warn_unused_result));
/* Closes the file and frees the buffer; does not free r (nor md). */
void kms_audit_lines_close(kms_audit_lines *r);

/* ---- The anchor (audit.h "The anchor") ---------------------------------------------------- */

/* Room for the longest anchor text and its NUL: "<20 digits> digests/<20 digits>.json <hash>
 * <20 digits> <hash>", four spaces. */
#define KMS_AUDIT_ANCHOR_MAX 280

typedef struct kms_audit_anchor {
    /* The newest digest written; has_digest false ("0 - -") before the first seal. */
    bool has_digest;
    uint64_t last_sequence; /* 1 .. INT64_MAX */
    char file[48];          /* "digests/NNNNNNNNNNNNNNNNNNNN.json", NNN = last_sequence */
    char hash[KMS_AUDIT_HASH_HEX + 1]; /* lower-case hex SHA-256 of that file's bytes */
    /* The last record the writer acknowledged (audit.h "The anchor"); has_ack false in an anchor
     * of the older, three-field form. ack_sequence >= last_sequence. */
    bool has_ack;
    uint64_t ack_sequence;
    char ack_hash[KMS_AUDIT_HASH_HEX + 1]; /* its chain hash: SHA-256 of its line */
    /* Where its line ends in the open segment, when it is in it (0: not known), so that a writer
     * checks what came after it without reading the segment from its start. */
    uint64_t ack_end;
} kms_audit_anchor;

/* Parses an anchor text strictly: "<lastSequence> <digest file> <hash> <ackSequence> <ackHash>
 * [<ackEnd>]" ("0 - - <ackSequence> <ackHash> [<ackEnd>]" before the first digest), or the older
 * "<lastSequence> <digest file> <hash>"; single spaces, decimal numbers without leading zeros, the
 * digest file named after lastSequence, hashes of 64 lower-case hex digits, nothing before or after
 * (no
 * '\n'). false with *why (a static text) saying what is wrong; raises nothing, so that the
 * writer and validate-logs word it their way. */
bool kms_audit_anchor_parse(const char *text, kms_audit_anchor *out, const char **why);
/* The anchor text of `an` (the five-field form; has_ack must be set). */
void kms_audit_anchor_format(const kms_audit_anchor *an, char out[KMS_AUDIT_ANCHOR_MAX]);

/* ---- Hex (audit_util.c) ------------------------------------------------------------------- */

/* Lower-case hex of p[0..n); out has room for 2 * n + 1 bytes. */
void kms_audit_hex_encode(const uint8_t *p, size_t n, char *out);
/* The chain members at the end of a line as the writer ends it (audit.h "A record line"):
 *   ...,"auditChain":{"sequence":N,"previousHash":"<hex>"}}
 *   ...,"auditChain":{"sequence":N,"previousHash":"<hex>","ack":"<hex>"}}   (a batch's last)
 * *ack_at: where ,"ack" starts, len when the line has none. false for any other ending. */
bool kms_audit_chain_suffix(const char *line, size_t len, uint64_t *seq,
                            char prev[KMS_AUDIT_HASH_HEX + 1], size_t *ack_at);
/* What an ack's MAC covers: SHA-256 of the line without its ack member (line[0, ack_at) "}}"). */
int kms_audit_ack_hash(const char *line, size_t ack_at, uint8_t hash[32])
    __attribute__((warn_unused_result));
/* Whether the line has an ack member whose MAC is acker's over kms_audit_ack_hash (compared in
 * constant time). False without an acker. */
bool kms_audit_ack_verifies(const kms_audit_acker *acker, const char *line, size_t len);
/* ---- Walking the chain (audit_chain.c) ----------------------------------------------------- */

/* What kms_audit_walk_chain found in a segment's whole lines [from, end). */
typedef struct kms_audit_walk {
    /* In. acker NULL or without mac: every linked line counts as pinned. want_seq (0: none): a
     * record to meet, with chain hash want_hash (the anchor's). */
    const kms_audit_acker *acker;
    uint64_t want_seq;
    const char *want_hash;
    /* Out. */
    uint64_t pin;          /* just past the last linked line whose ack verifies (from: none) */
    uint64_t pin_next_seq; /* the sequence the line after the pin must have */
    char pin_hash[KMS_AUDIT_HASH_HEX + 1]; /* the pinned line's chain hash (prev if none) */
    uint64_t linked;                       /* just past the last line that links */
    bool broken;             /* a line before end does not link (or is no record line) */
    bool acked_after_break;  /* ... and a line after it carries an ack that verifies */
    bool want_seen, want_ok; /* the wanted record was met (linked), with the wanted hash */
} kms_audit_walk;

/* Reads the whole lines of path from offset `from` (a line start) up to `end` (UINT64_MAX: all):
 * each must be record `seq`, `seq` + 1, ... linked to prev, then to the line before. The first
 * that is not breaks the chain; only lines before it can be pinned. Linked lines' acks are
 * checked from the last one backwards (usually one MAC). KMS_ERR_AUDIT if the file cannot be
 * read. */
int kms_audit_walk_chain(const char *path, uint64_t from, uint64_t end, uint64_t seq,
                         const char prev[KMS_AUDIT_HASH_HEX + 1], kms_audit_walk *w)
    __attribute__((warn_unused_result));

/* The previousHash of record 1. */
extern const char kms_audit_zero_hash[KMS_AUDIT_HASH_HEX + 1];
/* Whether s is 64 lower-case hex digits (a SHA-256 as the trail writes it). */
bool kms_audit_is_hash_hex(const char *s);

#endif
