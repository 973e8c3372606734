/* The service's side of the audit trail (audit_trail.c): opening the client's trail and the
 * CloudTrail record of every request. Private to src/service. */
#ifndef KMS_SERVICE_AUDIT_TRAIL_H
#define KMS_SERVICE_AUDIT_TRAIL_H

#include <jansson.h>

#include "service/gate.h"
#include "util/json_out.h"

/* HOME/audit of a client, malloc'd. */
char *kms_audit_trail_dir(const char *home);
/* The client's trail, opened at the first call: KMSAuditLogException when it cannot be. */
int kms_audit_trail_of_client(kms_client *c, kms_audit **out) __attribute__((warn_unused_result));
/* A new home: generates the digest key in the HSM and creates HOME/audit. */
int kms_audit_trail_home_create(const char *home, kms_hsm *hsm) __attribute__((warn_unused_result));
/* The first records of a new home's trail (kms_home_init, audit_trail_init.c): init's own IAM
 * setup as the root user's IAM calls, CreateGroup, AttachGroupPolicy, CreateUser,
 * AddUserToGroup, CreateAccessKey (no secret), UpdateAccountPasswordPolicy, and
 * CreateLoginProfile when the root user was given a password. -1 when one cannot be written. */
int kms_audit_trail_init_records(kms_client *c, bool root_login_profile)
    __attribute__((warn_unused_result));
/* Writes the request's CloudTrail record (durably); -1 if it could not be written. */
int kms_audit_trail_request(kms_request *rq, int rc) __attribute__((warn_unused_result));
/* The CloudTrail record of rq (its result rc; err and message when it failed) written into o
 * as one line of JSON text, with eventID event_id; the request's requestID is made when it has
 * none. -1 raised when it cannot be built whole (then nothing of it may be written). Used by
 * kms_audit_trail_request; the tests compare it with the jansson record it replaced. */
int kms_audit_trail_record_text(kms_request *rq, int rc, kms_error err, const char *message,
                                const char *event_id, kms_json_out *o)
    __attribute__((warn_unused_result));
/* The keyMaterialId (64 lower-case hex digits) of material version `version` of the key
 * key_arn: a hash of the ARN and the version (audit_trail.c "Key material ids"), never of the
 * material. */
void kms_audit_trail_material_id(const char *key_arn, uint32_t version, char out[65]);
/* Notes the key material the request used (the record's additionalEventData; the response's
 * KeyMaterialId) in rq->key_material[slot]: 0 the key's (ReEncrypt: the source's), 1
 * ReEncrypt's destination. */
void kms_audit_trail_key_material(kms_request *rq, int slot, const char *key_arn, uint32_t version);
/* An epoch time as CloudTrail writes dates inside requestParameters and responseElements:
 * "Aug 10, 2022, 10:38:27 PM" (UTC). */
void kms_audit_trail_date(int64_t t, char out[32]);
/* Notes a key ARN the request touched (resources of the record). */
void kms_audit_trail_resource(kms_request *rq, const char *arn);
/* What the trail's readers check it against (src/audit/audit.h kms_audit_trust): the anchor
 * read from the HSM, the HSM's ack MAC, and the index kept outside HOME/audit
 * (HOME/audit-index.db). Clean up with kms_audit_trail_trust_clean_up. */
typedef struct kms_trail_trust {
    kms_audit_trust trust;
    char *dir; /* HOME/audit */
    char *anchor, *index;
} kms_trail_trust;
int kms_audit_trail_trust_load(kms_client *c, kms_trail_trust *t)
    __attribute__((warn_unused_result));
void kms_audit_trail_trust_clean_up(kms_trail_trust *t);
/* The digest key's public half in c->audit_spki (created with the trail for an older home). */
int kms_audit_trail_spki_loaded(kms_client *c) __attribute__((warn_unused_result));
/* Seals the trail's open segment (only_if_due: when digest_period has passed or it is full). */
int kms_audit_trail_seal(kms_client *c, bool only_if_due, bool *sealed)
    __attribute__((warn_unused_result));
/* The trail's anchor text from the HSM (*anchor malloc'd; NULL when none was set yet), read
 * under a shared hold of dir/LOCK. */
int kms_audit_trail_read_anchor(kms_client *c, const char *dir, char **anchor)
    __attribute__((warn_unused_result));
int kms_audit_trail_lookup_events(kms_request *rq, json_t *req, json_t **resp);
int kms_audit_trail_usage_report(kms_request *rq, json_t *req, json_t **resp);

#endif
