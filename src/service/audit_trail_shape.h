/* What a CloudTrail record says of a request (audit_trail_shape.c): the event's source and name,
 * whether it is read-only, and the request and response as CloudTrail shows them. Private to
 * src/service. */
#ifndef KMS_SERVICE_AUDIT_TRAIL_SHAPE_H
#define KMS_SERVICE_AUDIT_TRAIL_SHAPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "service/gate.h"

/* The eventSource of an operation ("iam:CreateUser" -> "iam.amazonaws.com"); *name receives the
 * eventName (the operation without its service prefix). */
const char *kms_audit_trail_event_source(const char *operation, const char **name);
/* CloudTrail's readOnly of the event name of source. */
bool kms_audit_trail_read_only(const char *source, const char *name);
/* Whether the record keeps the response of a successful call: a change's (not read-only), and
 * the temporary credentials STS issued (AssumeRole*, GetSessionToken, GetFederationToken:
 * CloudTrail records them, the secret left out, with the expiration as a date). */
bool kms_audit_trail_keeps_response(const char *source, const char *name, bool read_only);
/* Ends s, cut to its first n bytes, before a character the cut left incomplete (UTF-8). */
void kms_audit_trail_utf8_cut(char *s, size_t n);
/* A request or response as CloudTrail shows it: member names in camelCase, secrets left out,
 * dates as CloudTrail writes them (kms_audit_trail_date). NULL on out-of-memory. */
json_t *kms_audit_trail_sanitize(json_t *v);
/* The request parameters AWS records beyond what the caller sent, set in the sanitized request
 * p of event name (source kms.amazonaws.com): the defaults filled in (Encrypt's and Decrypt's
 * encryptionAlgorithm, CreateKey's keySpec, keyUsage, origin, customerMasterKeySpec,
 * bypassPolicyLockoutSafetyCheck, multiRegion) and Decrypt's keyId as the key ARN (key_arn,
 * NULL when not known). -1 raised on out-of-memory. */
int kms_audit_trail_request_defaults(const char *name, const char *key_arn, json_t *p)
    __attribute__((warn_unused_result));

#endif
