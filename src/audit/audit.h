/* The audit trail: CloudTrail-style records, append-only, chained, cut into segments and
 * covered by HSM-signed digests (design.md "Layers": src/audit).
 *
 * This module knows files, hashes and JSON; it knows nothing of requests, policies or the HSM.
 * The service builds each record (src/service/audit_trail.c), signs digests and keeps the
 * anchor through the kms_audit_signer it passes in.
 *
 * ---- On disk (HOME/audit = dir) ---------------------------------------------------------------
 *   dir/LOCK                         empty; flock(LOCK_EX) by every writer and sealer, so several
 *                                    processes (kmsctl, kmsbench, the scheduler) share one trail
 *   dir/segments/NNNNNNNNNNNNNNNNNNNN.jsonl
 *                                    NNN = 20-digit, zero-padded sequence number of the segment's
 *                                    first record. One record per line (JSON Lines). Mode 0600
 *                                    while open; 0400 once sealed (a sealed segment never
 *                                    changes). An open segment's file goes on after its records
 *                                    with zero bytes, space written ahead so that a record's
 *                                    fdatasync needs no journal commit for a new file size;
 *                                    records never hold a NUL, so the first NUL where a line
 *                                    would start ends the records. Sealing cuts the zeros off.
 *   dir/digests/NNNNNNNNNNNNNNNNNNNN.json
 *                                    NNN = last sequence number the digest covers (zero-padded)
 *   dir/digests/NNNNNNNNNNNNNNNNNNNN.json.sig
 *                                    DER ECDSA-Sig-Value, ECDSA P-256 with SHA-256 over the exact
 *                                    bytes of the .json file, made by the HSM. Verifiable with
 *                                      openssl dgst -sha256 -verify digest-public-key.pem \
 *                                          -signature X.json.sig X.json
 *   dir/digest-public-key.pem        the signing key's public half (SubjectPublicKeyInfo PEM), a
 *                                    convenience copy; validation takes the key from the HSM
 *   dir/torn/SEGMENT-OFFSET[.K]      bytes of a torn last line cut off by a repair (see below);
 *                                    .K (1, 2, ...) when the name was taken: never replaced
 *   dir/index.db                     SQLite index for lookup-events / usage-report; derived
 *                                    data, rebuilt from the segments whenever it disagrees
 * Outside dir/: the anchor, which names the newest digest written (see "The anchor").
 *
 * ---- A record line ---------------------------------------------------------------------------
 * The caller hands kms_audit_append a compact JSON object (one line, no '\n', starting with '{'
 * and ending with '}') holding the CloudTrail fields. The writer appends, before the final '}',
 *     ,"auditChain":{"sequence":N,"previousHash":"<64 lower-case hex>"}
 * so the line ends with '}}'. N counts from 1 over the whole trail, without gaps, across
 * segments. previousHash = SHA-256 of the previous record's line (its bytes without the '\n');
 * 64 '0's for record 1. A record's own hash is SHA-256 of its line without the '\n'.
 * The last record of each batch the writer makes durable (one or more records, one write) also
 * carries its acknowledgement, when the signer has an ack_mac:
 *     ,"auditChain":{"sequence":N,"previousHash":"<hex>","ack":"<64 lower-case hex>"}
 * ack = HMAC-SHA-256 under a key in the HSM (behind the PIN) of the SHA-256 of the line as it
 * would be without the ack member. The chain is public, so anyone who can write dir/ can add
 * records that chain correctly; only the writer can acknowledge them. The acknowledged line pins
 * every line before it (each links to its predecessor), so a record counts as written by this
 * product only when a later (or its own) acknowledged line follows it over unbroken links.
 *
 * ---- A digest (CloudTrail log file integrity validation, adapted to files) -------------------
 * Written when a segment is sealed: by kms_audit_seal / kms_audit_seal_when (seal-audit-log, the
 * scheduler), by the writer after a batch when digest_period has passed since the newest
 * digest's digestEndTime (or the first record's eventTime) or the segment reached segment_max,
 * and at kms_audit_close of a handle opened with seal_on_close. A process that only appends
 * leaves the segment open for the next one. Before signing, the writer checks that the segment
 * is exactly the chain from the previous digest's lastRecordHash, each line linked to the one
 * before, ending with an acknowledged line (KMS_ERR_AUDIT otherwise: nothing is signed). A seal
 * covers exactly the one open segment (never an empty one):
 *   {"awsAccountId":"111122223333",
 *    "digestStartTime":"<previous digest's digestEndTime, or the first record's eventTime>",
 *    "digestEndTime":"<now, ISO 8601 UTC>",
 *    "digestFile":"digests/NNN.json",
 *    "digestPublicKeyFingerprint":"<hex SHA-256 of the DER SubjectPublicKeyInfo>",
 *    "digestSignatureAlgorithm":"SHA256withECDSA",
 *    "oldestEventTime":"...","newestEventTime":"...",   (first and last record's eventTime)
 *    "previousDigestFile":"digests/MMM.json" | null,
 *    "previousDigestHashValue":"<hex SHA-256 of that file's bytes>" | null,
 *    "previousDigestHashAlgorithm":"SHA-256",
 *    "previousDigestSignature":"<hex of that file's .sig bytes>" | null,
 *    "firstSequence":F,"lastSequence":L,"lastRecordHash":"<hex>",
 *    "logFiles":[{"file":"segments/FFF.jsonl","hashValue":"<hex SHA-256 of the file>",
 *                 "hashAlgorithm":"SHA-256","firstSequence":F,"lastSequence":L,
 *                 "oldestEventTime":"...","newestEventTime":"..."}]}
 * Sealing order (all under LOCK): chmod the segment 0400, write NNN.json.sig then NNN.json
 * (each atomically: temp file, fsync, rename, fsync of the directory). A writer that finds the
 * segment after the newest digest already 0400 refuses to go on (KMS_ERR_AUDIT): its digest was
 * deleted or a sealer died half-way, and signing it again could sign tampered records; a person
 * checks with validate-logs and, for an interrupted seal, makes the segment writable again.
 *
 * ---- The anchor (rollback protection) --------------------------------------------------------
 * The digest chain runs backwards only: whoever can write dir/ could delete the newest digests
 * and the segments they cover (or put back an older copy of dir/), what remained would still
 * validate, and writers would carry on from the older end. So the writer keeps, outside dir/,
 * one line naming the newest digest it wrote and a record it acknowledged:
 *     <lastSequence> <digest file> <hex SHA-256 of that digest file's bytes> <ackSequence>
 *     <hex chain hash of that record>       (one line, single spaces, no '\n')
 *     e.g. "123 digests/00000000000000000123.json 9f86d081... 130 4e07408..."; before the first
 *     digest "0 - - 130 4e07408..."; an anchor of the older form has the first three fields.
 * Where it is kept is the signer's business (anchor_get / anchor_set). The service keeps it in
 * the HSM, as a private data object labelled "kms-internal:audit-anchor" that cannot be read or
 * changed without the token PIN (it is not a secret). A store costs an HSM write (SoftHSM: a
 * file rewritten and synced), so it is not made per batch: the acks in the records say which
 * records are the writer's, the anchor says how far the trail reached.
 *  - When it moves (only forward, under LOCK): after a seal has written its digest (.sig then
 *    .json), to that digest and its last record; at kms_audit_close of a handle that appended,
 *    and after a batch when ANCHOR_INTERVAL has passed since this handle last stored it, to the
 *    last record acknowledged. If storing it after a seal fails, the seal fails; the digest
 *    stays and the next seal moves the anchor on. A crash before a store leaves the trail ahead
 *    of the anchor, which is fine: acknowledged records after the anchored one are the writer's.
 *  - What the writer does with it: kms_audit_open, and a writer that looks for the newest digest
 *    again under LOCK (after a seal, by any process), read it. If the newest digest's
 *    lastSequence is below the anchor's, or the anchored digest file is missing or hashes to
 *    another value, or a digest goes beyond the acknowledged record with another last hash than
 *    it, or the open segment does not hold the acknowledged record with its hash, the writer
 *    refuses (KMS_ERR_AUDIT) before it changes anything: digests or records were deleted,
 *    rewritten or rolled back. A person runs validate-logs and restores dir/ from a backup at
 *    least as new as the anchor. A malformed anchor is refused the same way (fail closed), never
 *    ignored. No anchor yet (a new trail, or one older than anchors) is fine.
 *  - What follows the last acknowledged line of the open segment (whole records someone else
 *    planted, or a batch a crash kept from being acknowledged, or torn bytes) is never taken as
 *    the writer's: it is moved to torn/ and recorded (AuditLogRepaired, reason "unacknowledged"
 *    or "torn"; see below), never signed; the index never lists it.
 *  - What validate-logs does with it: see kms_audit_validate.
 *
 * ---- Durability, group commit, crash --------------------------------------------------------
 * kms_audit_append returns 0 only once the record is on disk (pwrite where the records end +
 * fdatasync; the directory fsync'd after a segment is created). Threads appending at the same
 * time share one write and one fdatasync (leader/follower group commit); a new leader waits
 * briefly for records announced by operations under way (kms_audit_announce). A failed or short
 * write is undone (ftruncate to where the records ended) and fails every record of that batch;
 * the caller fails the operation. Under LOCK the writer checks with fstat whether another
 * process sealed (mode 0400: find the newest digest, continue in segment last+1) or appended
 * (the byte where this handle's records end is no longer NUL: read on from there for the new
 * end, sequence and hash). Bytes a crash left after the last whole line (a cut write, or parts
 * of one with zeros between them), and whole lines after the last acknowledged one, are never
 * accepted silently: the writer moves them to dir/torn/, truncates the segment there, and
 * appends an AwsServiceEvent record "AuditLogRepaired" naming the segment, offset, length,
 * SHA-256 of the removed bytes and the reason ("torn" or "unacknowledged"). */
#ifndef KMS_AUDIT_AUDIT_H
#define KMS_AUDIT_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define KMS_AUDIT_HASH_HEX 64
#define KMS_AUDIT_DEFAULT_DIGEST_PERIOD 3600
/* A segment is sealed once its records reach this size. */
#define KMS_AUDIT_DEFAULT_SEGMENT_MAX (16 * 1024 * 1024)
/* A record line is at most this long (a record that would be longer fails to append). */
#define KMS_AUDIT_RECORD_MAX (256 * 1024)

typedef struct kms_audit kms_audit;

/* Signs digest files and keeps the anchor. sign: ECDSA P-256 over the SHA-256 `digest`, *sig a
 * malloc'd DER ECDSA-Sig-Value. spki: the public key, DER SubjectPublicKeyInfo (borrowed for the
 * handle's life). anchor_get / anchor_set (see "The anchor"; both or neither, NULL: no anchor):
 * anchor_get gives 0 with *text the anchor (malloc'd, the caller frees it), or with *text NULL
 * when none was set yet; anchor_set stores text in place of the anchor. Either fails (-1, an
 * error raised) when the store cannot be reached. Each gets `arg`. */
/* The MAC that acknowledges a batch (see "A record line"): HMAC-SHA-256, under a key only the
 * PIN holder can read, of a 32-byte hash. */
typedef int (*kms_audit_mac_fn)(void *arg, const uint8_t hash[32], uint8_t mac[32]);
typedef struct kms_audit_acker {
    kms_audit_mac_fn mac;
    void *arg;
} kms_audit_acker;

typedef struct kms_audit_signer {
    int (*sign)(void *arg, const uint8_t digest[32], uint8_t **sig, size_t *sig_len);
    void *arg;
    const uint8_t *spki;
    size_t spki_len;
    int (*anchor_get)(void *arg, char **text);
    int (*anchor_set)(void *arg, const char *text);
    /* ack.mac NULL: records carry no ack, and every whole line of the open segment is taken as
     * the writer's (a trail without an HSM, as in tests). */
    kms_audit_acker ack;
} kms_audit_signer;

typedef struct kms_audit_options {
    const char *dir;        /* HOME/audit; must exist (KMS_ERR_AUDIT otherwise) */
    const char *account_id; /* 12 digits, for digests and service records */
    const char *region;
    int64_t digest_period; /* seconds; 0 = KMS_AUDIT_DEFAULT_DIGEST_PERIOD */
    int64_t segment_max;   /* bytes; 0 = KMS_AUDIT_DEFAULT_SEGMENT_MAX */
    /* kms_audit_close seals what this handle appended (a test's, or a long-running process's
     * clean shutdown); false: the segment stays open for the next process (see "A digest"). */
    bool seal_on_close;
    kms_audit_signer signer;
} kms_audit_options;

/* Creates dir/, segments/, digests/ (0700) and LOCK for a new home, and writes
 * digest-public-key.pem. Existing ones are kept. */
int kms_audit_create(const char *dir, const uint8_t *spki, size_t spki_len)
    __attribute__((warn_unused_result));

/* Opens the trail for appending: dir must exist and be writable (KMS_ERR_AUDIT with a message
 * saying what to do: "the audit log directory D is missing; restore it from a backup, or ...").
 * Takes LOCK, finds the current state (newest digest, the open segment and its last line),
 * checks it against the anchor (KMS_ERR_AUDIT, nothing changed, if the trail was rolled back:
 * see "The anchor"), repairs a torn last line (see above), creates the open segment if there is
 * none and writes its space ahead, releases LOCK. Thread-safe handle. */
kms_audit *kms_audit_open(const kms_audit_options *o) __attribute__((warn_unused_result));
/* Appends one record (see "A record line") and returns once it is durable; thread-safe.
 * KMS_ERR_VALIDATION if record is not a one-line JSON object text; KMS_ERR_AUDIT if it could
 * not be written (the message names the file and the system error). */
int kms_audit_append(kms_audit *a, const char *record, size_t len)
    __attribute__((warn_unused_result));
/* Announces a record that a caller is about to build (an operation starts). KMS_ERR_AUDIT when
 * the segment has no space written ahead for it (the file system is full): the operation must
 * not run, so that nothing it changes is left without its record. A group-commit leader waits
 * briefly for announced records, so that concurrent operations share one flush. Each
 * successful announcement is ended by one kms_audit_append or kms_audit_withdraw (an append
 * without one may end another caller's, which only shortens a leader's wait). */
int kms_audit_announce(kms_audit *a) __attribute__((warn_unused_result));
void kms_audit_withdraw(kms_audit *a);
/* Seals the open segment now (if it holds records), writes its digest and moves the anchor to
 * it (KMS_ERR_AUDIT if the anchor cannot be moved; the digest stays). */
int kms_audit_seal(kms_audit *a) __attribute__((warn_unused_result));
/* kms_audit_seal, and with only_if_due only when the open segment is due (see "A digest"),
 * whoever appended to it: what the scheduler (and a server) calls from time to time, so that an
 * idle trail is signed within a period of its last record. *sealed says whether a digest was
 * written. */
int kms_audit_seal_when(kms_audit *a, bool only_if_due, bool *sealed)
    __attribute__((warn_unused_result));
/* Group commit's batch sizes since the handle opened, for a server's metrics: successful flushes,
 * the records they wrote, and how many flushes wrote at most 1, 2, 4, ... 128 records, and any
 * number (cumulative, as Prometheus' histogram buckets). */
#define KMS_AUDIT_FLUSH_BUCKETS 9
typedef struct kms_audit_flush_stats {
    uint64_t count;
    uint64_t records;
    uint64_t buckets[KMS_AUDIT_FLUSH_BUCKETS]; /* le 1, 2, 4, 8, 16, 32, 64, 128, +Inf */
    uint64_t append_wait_ns; /* appending threads' time from queueing to durable, summed */
    uint64_t lock_wait_ns;   /* time spent waiting for LOCK (flock), summed */
    uint64_t sync_ns;        /* time the batches spent in fdatasync, summed */
} kms_audit_flush_stats;
/* Thread-safe (atomic counters, read without a lock: a reader may see a flush half counted). A
 * NULL handle gives zeros. */
void kms_audit_flush_stats_get(kms_audit *a, kms_audit_flush_stats *out);
/* True while the handle can append (open succeeded and the directory is still there). */
bool kms_audit_ready(kms_audit *a);
/* With seal_on_close, seals if this handle appended anything since it was opened (clean
 * shutdown); then frees. NULL is fine. */
void kms_audit_close(kms_audit *a);

/* ---- Reading the trail (no lock needed: segments only grow, sealed ones never change) ------ */

/* What the trail's readers check its records against: the anchor's text (see "The anchor"; NULL
 * for none) and the acker that verifies acks (mac NULL: acks are not checked). index: where
 * lookup-events keeps its index database, NULL for dir/index.db; the service keeps it outside
 * dir/, out of reach of whoever can write dir/ (its rows are answered as they are). A NULL
 * kms_audit_trust * is all three NULL. */
typedef struct kms_audit_trust {
    const char *anchor;
    kms_audit_acker acker;
    const char *index;
} kms_audit_trust;

/* validate-logs: checks every digest signature (against spki) and the digest chain, every
 * segment's hash against its digest, every record's JSON, sequence and previousHash, and that
 * each segment's name matches its first sequence, and that every file in torn/ is the bytes an
 * AuditLogRepaired record names. start/end (epoch seconds, 0 = open) keep the digests and
 * segments whose event times overlap [start, end], taken from the signed digest for a segment
 * one covers (never from its records); the chain is still followed across the rest, and
 * problems tied to no time (bad signatures, gaps in the digest chain, unexpected, torn and
 * unrecorded-repair files, segments nobody signed) are reported whatever the range. Files that
 * are not regular files (FIFOs, links) are reported, never opened for reading. The open
 * segment's zeros after its records are unused space. Never fails on bad files: *report says
 * what is wrong. Returns -1 only on out-of-memory or an unreadable dir.
 * anchor: the anchor's text (see "The anchor"; the caller reads it from where it is kept), NULL
 * for none. Given one, the digest it names must be there and hash to the anchored value, and the
 * records up to its lastSequence must be there: otherwise a problem of Kind "missing" (File: the
 * anchored digest; it, or records it covers, were deleted or rolled back) or "modified" (File:
 * the anchored digest, which hashes differently) is reported whatever [start, end]. A malformed
 * anchor is a problem of Kind "malformed" with File "anchor". A trail that goes on after the
 * anchored digest (a crash before the anchor moved) is fine.
 * *report:
 *   {"Valid": bool,
 *    "DigestFiles": {"Valid": n, "Invalid": n}, "LogFiles": {"Valid": n, "Invalid": n},
 *    "Records": {"Valid": n, "Invalid": n, "Unsigned": n},   (Unsigned: after the last digest)
 *    "Problems": [{"Kind": "modified"|"missing"|"out-of-order"|"unexpected"|"torn"|
 *                          "malformed"|"bad-signature"|"unsigned"|"unrecorded-repair",
 *                  "File": "segments/...", "Sequence": n (when known), "Line": n (when known),
 *                  "Message": "what is wrong, in words"}],
 *    "Repairs": [{"File":..., "Offset":..., "Length":...}],  (AuditLogRepaired records seen)
 *    "Anchor": {"File": "digests/...", "LastSequence": n, "Found": bool} | null}
 * Anchor: null without a well-formed anchor; Found: the anchored digest is there with the
 * anchored hash, and so are the records it covers (no anchor problem was reported).
 * "unsigned" records in the open segment are counted, not problems; everything else is.
 * kms_audit_validate_against (below) also checks acks: with an acker, a segment's records after
 * its last line whose ack verifies are a problem of Kind "unacknowledged" (someone else wrote
 * them, or a crash kept the writer from acknowledging them; the writer moves them to torn/ when
 * it next opens the trail); and the record the anchor acknowledges must be there with its hash
 * (Kind "missing" / "modified", File "anchor"). The report gains
 *   "UnsignedTail": {"Records": n, "Bytes": n, "OldestEventTime": ISO | null}
 * what the open segment holds that no digest signs yet, and Anchor gains
 * "AcknowledgedSequence" (null for an anchor of the older form; File is null before a digest). */
int kms_audit_validate(const char *dir, const uint8_t *spki, size_t spki_len, const char *anchor,
                       int64_t start, int64_t end, json_t **report)
    __attribute__((warn_unused_result));

/* ---- An anchor kept off the machine (README "Security": rolling back the whole home) --------
 * The HSM anchor protects against a rollback of dir/ alone. SoftHSM's token is a file, so
 * restoring an older copy of both dir/ and the token directory rolls the anchor back with the
 * trail. An operator who keeps the anchor elsewhere checks the trail against it:
 *     "SEQUENCE:HASH"   e.g. "123:9f86d081..." (a decimal record number >= 1, no leading zeros;
 *                       HASH the 64 hex digits of that record's chain hash, SHA-256 of its line)
 * kms_audit_anchor_record gives it for the HSM's anchor: the anchored digest's lastSequence and
 * lastRecordHash. */

/* Parses "SEQUENCE:HASH"; hash comes out lower-case. False, with *why saying what is wrong. */
bool kms_audit_expected_anchor_parse(const char *text, uint64_t *sequence,
                                     char hash[KMS_AUDIT_HASH_HEX + 1], const char **why);
/* The record the anchor text covers (see "The anchor"): the anchored digest file (it must be in
 * dir and hash to the anchored value, otherwise KMS_ERR_AUDIT: run validate-logs), its
 * lastSequence and lastRecordHash. KMS_ERR_AUDIT for a malformed anchor. */
int kms_audit_anchor_record(const char *dir, const char *anchor, uint64_t *sequence,
                            char hash[KMS_AUDIT_HASH_HEX + 1], char file[64])
    __attribute__((warn_unused_result));
/* kms_audit_validate, and with `expect` ("SEQUENCE:HASH", NULL for none) the trail must hold
 * record SEQUENCE with chain hash HASH: a trail that ends before it is a problem of Kind
 * "missing" ("the trail ends before the expected anchor"), another record in its place one of
 * Kind "modified" ("record N does not match the expected anchor"), both with File
 * "expected-anchor", reported whatever [start, end]. The report gains
 *   "ExpectedAnchor": {"Sequence": n, "Hash": "...", "Found": bool}
 * KMS_ERR_VALIDATION (no report) for a malformed `expect`. */
int kms_audit_validate_against(const char *dir, const uint8_t *spki, size_t spki_len,
                               const kms_audit_trust *trust, const char *expect, int64_t start,
                               int64_t end, json_t **report) __attribute__((warn_unused_result));

/* lookup-events, as aws cloudtrail lookup-events. attribute_key: NULL or one of EventName,
 * Username, ResourceName, EventSource, ReadOnly, AccessKeyId, EventId, ResourceType;
 * start/end epoch seconds (0 = open); max_results 1-50 (0 = 50); next_token from a previous
 * answer or NULL. Brings dir/index.db up to date first (indexes only what is new; rebuilds when
 * the segments disagree with it). Only records the chain covers are listed: from record 1, each
 * linked to the one before and, with q->trust's acker, followed in its segment by a line whose
 * ack verifies; the first line that is not covered ends what is listed (validate-logs says why).
 * The record q->trust's anchor acknowledges must have the acknowledged hash (KMS_ERR_AUDIT
 * otherwise). Newest first.
 * *result: {"Events":[{"EventId","EventName","ReadOnly":"true"|"false","AccessKeyId",
 *   "EventTime":"ISO","EventSource","Username","Resources":[{"ResourceType","ResourceName"}],
 *   "CloudTrailEvent":"<the record line as a string>"}], "NextToken": "..." (if more)}
 * Username: userIdentity.userName; for AssumedRole the session name (the ARN's last part); for
 * Root "root". ResourceName matches a resource's ARN or its last path part (a key id). */
typedef struct kms_audit_query {
    const char *attribute_key;
    const char *attribute_value;
    int64_t start, end;
    int max_results;
    const char *next_token;
    const kms_audit_trust *trust; /* NULL: no anchor, acks not checked */
} kms_audit_query;
int kms_audit_lookup(const char *dir, const kms_audit_query *q, json_t **result)
    __attribute__((warn_unused_result));

/* GetKeyLastUsage: *usage is {"Operation", "Timestamp" (epoch seconds), "CloudTrailEventId",
 * "KmsRequestId"} for the newest successful cryptographic operation on key_arn among the records
 * lookup-events lists (trust as there), or NULL when there is none; *tracking_start the time of
 * the oldest record indexed (0: none). */
int kms_audit_key_last_use(const char *dir, const kms_audit_trust *trust, const char *key_arn,
                           json_t **usage, int64_t *tracking_start)
    __attribute__((warn_unused_result));

/* usage-report: requests per key and per operation in [start, end] (0 = open), from the index.
 * *report: {"StartTime","EndTime" (ISO or null),"Requests":n,
 *   "Keys":[{"KeyArn","Requests":n,"Operations":[{"EventName","Requests":n,"Errors":n}]}],
 *   "Operations":[{"EventSource","EventName","Requests":n,"Errors":n}]}
 * sorted by Requests descending, then name. The records counted are those lookup-events lists
 * (trust as q->trust). */
int kms_audit_usage_report(const char *dir, const kms_audit_trust *trust, int64_t start,
                           int64_t end, json_t **report) __attribute__((warn_unused_result));

/* ---- Shared helpers ------------------------------------------------------------------------ */

/* The public key (DER SubjectPublicKeyInfo) as PEM text, malloc'd. */
int kms_audit_public_key_pem(const uint8_t *spki, size_t spki_len, char **pem)
    __attribute__((warn_unused_result));
/* Lower-case hex of SHA-256(p, n); out has room for 65 bytes. */
void kms_audit_sha256_hex(const void *p, size_t n, char out[KMS_AUDIT_HASH_HEX + 1]);
/* s as a JSON string. Text from outside that may not be UTF-8 (a caller's key id, a file name
 * found in the trail, a message quoting one) has its bytes above 0x7f made '?', so that a record
 * or report keeps the member instead of losing it. NULL on out-of-memory (or s NULL). */
json_t *kms_audit_json_text(const char *s) __attribute__((warn_unused_result));
/* Epoch seconds of an ISO 8601 UTC time ("2026-11-28T07:03:25Z", fractional seconds and a
 * numeric offset accepted) or of a decimal number of seconds; -1 if neither. */
int64_t kms_audit_parse_time(const char *s);

#endif
