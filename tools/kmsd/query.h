/* The AWS query protocol, for STS and IAM's first operations: an application/x-www-form-urlencoded
 * POST body in, kms_call's operation name and request JSON out; kms_call's response JSON (or an
 * error) in, the XML STS answers with out. Pure functions of their arguments (thread-safe), no I/O.
 *
 * Each returns 0, or -1 (kmsd_query_parse also KMSD_QUERY_INVALID_ACTION) with a message for
 * humans in err (at most errlen bytes, always NUL-terminated when errlen > 0). Outputs are NULL
 * on entry and on failure; strings are malloc'd, the caller frees them. */
#ifndef KMSD_QUERY_H
#define KMSD_QUERY_H

#include <stdbool.h>
#include <stddef.h>

/* The STS API version the query protocol names in Version. */
#define KMSD_QUERY_STS_VERSION "2011-06-15"
#define KMSD_QUERY_STS_XMLNS "https://sts.amazonaws.com/doc/2011-06-15/"
/* AWS's request-size limit for a query-protocol body. */
#define KMSD_QUERY_MAX_BODY (64 * 1024)
/* kmsd_query_parse's answer for an Action that is missing or not one of ours: the caller answers
 * Sender "InvalidAction" (HTTP 400). Every other refusal is -1: Sender "InvalidParameterValue"
 * (HTTP 400) with err as the message, which names the parameter and the fault. */
#define KMSD_QUERY_INVALID_ACTION (-2)

/* Decodes body (len bytes, not NUL-terminated, at most KMSD_QUERY_MAX_BODY): name=value pairs
 * joined by '&', percent-encoded (%XX with two hex digits) with '+' for space. Refused: a bad
 * escape, a pair without '=', an empty name, a name given twice, a NUL byte, text that is not
 * UTF-8, a Version other than the action's API's (STS 2011-06-15, IAM 2010-05-08), and any
 * parameter the operation does not take. The operation is kms_call's name ("sts:AssumeRole",
 * "sts:GetSessionToken", "sts:GetCallerIdentity", "iam:CreatePolicy", "iam:PutUserPolicy", ...);
 * request_json the request in kms_call's shape (DurationSeconds a number, the other members
 * strings). */
int kmsd_query_parse(const char *body, size_t len, char **operation, char **request_json, char *err,
                     size_t errlen);

/* kms_call's response_json for operation ("sts:AssumeRole", ...) as the XML STS answers:
 * <AssumeRoleResponse xmlns="..."><AssumeRoleResult>...</AssumeRoleResult>
 * <ResponseMetadata><RequestId>request_id</RequestId></ResponseMetadata></AssumeRoleResponse>.
 * Objects become nested elements in their members' order, arrays <member> elements, numbers and
 * booleans text, null members are left out; a member named Expiration, CreateDate or
 * UpdateDate holding a number (epoch seconds) becomes an ISO 8601 time
 * ("2026-12-07T20:00:00Z"). Text is XML-escaped; a character XML 1.0 cannot carry (controls other
 * than tab and newline, NUL) becomes U+FFFD. */
int kmsd_query_response_xml(const char *operation, const char *response_json,
                            const char *request_id, char **xml, char *err, size_t errlen);

/* An error as STS answers it: <ErrorResponse xmlns="..."><Error><Type>Sender|Receiver</Type>
 * <Code>code</Code><Message>message</Message></Error><RequestId>request_id</RequestId>
 * </ErrorResponse>. sender: the caller's fault (HTTP 4xx), else Receiver (5xx). Fails only
 * when out of memory. */
int kmsd_query_error_xml(const char *code, const char *message, bool sender, const char *request_id,
                         char **xml);

#endif /* KMSD_QUERY_H */
