/* One request of the API, from what HTTP delivered to the response bytes: routing (AWS JSON 1.1
 * by X-Amz-Target, the query protocol by Content-Type), kms_call_network (SigV4, the gate, the
 * audit record), and AWS's response and error shapes. Knows nothing of libevent, so the fuzzer
 * drives it directly. */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kmsd.h"
#include "query.h"

#define JSON_CONTENT_TYPE "application/x-amz-json-1.1"
#define FORM_CONTENT_TYPE "application/x-www-form-urlencoded"
#define XML_CONTENT_TYPE "text/xml"

/* ---- Errors ----------------------------------------------------------------------------------
 * botocore's service models (kms, acm, acm-pca, cloudtrail: awscli/botocore/data/SERVICE/
 * VERSION/service-2.json) give no httpStatusCode to any error shape, which means 400 (iam's and
 * sts's do, below); AWS's API references answer 500 for the service's own failures
 * (KMSInternalException, DependencyTimeoutException, KeyUnavailableException) and 503 when it is
 * unavailable. Our own names for the home's failures (audit log, HSM, home) are the service's
 * failures too. */
static const struct {
    const char *name;
    int status;
} error_statuses[] = {
    {"KMSInternalException", 500},
    {"DependencyTimeoutException", 500},
    {"KeyUnavailableException", 500},
    {"KMSAuditLogException", 500},
    {"KMSHsmException", 500},
    {"KMSHomeException", 500},
    {"InternalFailure", 500},
    {"ServiceUnavailable", 503},
    {"KMSNetworkException", 503},
    /* The KMS API reference, "Common errors" of the operations that take DryRun. */
    {"DryRunOperationException", 412},
    /* The query protocol's codes (botocore's sts and iam models: "error": {"httpStatusCode"};
     * AWS's "Common errors": AccessDenied, InvalidClientTokenId, ... 403). */
    {"InvalidClientTokenId", 403},
    {"SignatureDoesNotMatch", 403},
    {"AccessDenied", 403},
    {"MissingAuthenticationToken", 403},
    {"NoSuchEntity", 404},
    {"EntityAlreadyExists", 409},
    {"DeleteConflict", 409},
    {"LimitExceeded", 409},
    {"ConcurrentModification", 409},
    {"ReportExpired", 410},
    {"ReportNotPresent", 410},
    {"InvalidAuthenticationCode", 403},
    {"ServiceFailure", 500},
};

int kmsd_error_status(const char *error_name)
{
    for (size_t i = 0; i < sizeof error_statuses / sizeof error_statuses[0]; i++) {
        if (error_name != NULL && strcmp(error_statuses[i].name, error_name) == 0) {
            return error_statuses[i].status;
        }
    }
    return 400;
}

/* Requests and answers may hold plaintexts, data keys and session secrets (kms_string_free wipes
 * the library's copies; these are kmsd's own). */
static void wipe_free(char *p, size_t n)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, n);
    }
    free(p);
}

void kmsd_response_clean_up(kmsd_http_response *resp)
{
    wipe_free(resp->body, resp->body_len);
    resp->body = NULL;
    resp->body_len = 0;
}

/* A request id for a response no record names: a random UUID (v4). */
static void fresh_request_id(char out[37])
{
    unsigned char b[16];
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(b, 1, sizeof b, f) != sizeof b) {
        memset(b, 0, sizeof b);
    }
    if (f != NULL) {
        fclose(f);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* A message that is not UTF-8 (it may quote what the client sent) with every byte outside
 * printable ASCII as '?', so that it can be a JSON string (malloc'd). */
static char *ascii_only(const char *message)
{
    char *copy = strdup(message);
    for (char *p = copy; p != NULL && *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
            *p = '?';
        }
    }
    return copy;
}

int kmsd_error_response(kmsd_http_response *resp, int status, const char *name, const char *message)
{
    json_t *j = json_pack("{s:s, s:s}", "__type", name, "message", message ? message : "");
    if (j == NULL && message != NULL) {
        char *clean = ascii_only(message);
        j = clean != NULL ? json_pack("{s:s, s:s}", "__type", name, "message", clean) : NULL;
        free(clean);
    }
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    free(resp->body);
    resp->body = text;
    resp->body_len = text != NULL ? strlen(text) : 0;
    resp->status = status;
    resp->content_type = JSON_CONTENT_TYPE;
    resp->outcome = name;
    if (resp->request_id[0] == '\0') {
        fresh_request_id(resp->request_id);
    }
    return text != NULL ? 0 : -1;
}

/* ---- Routing ---------------------------------------------------------------------------------
 */

static const char *header_get(const kmsd_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++) {
        if (req->headers[i].name != NULL && strcasecmp(req->headers[i].name, name) == 0) {
            return req->headers[i].value;
        }
    }
    return NULL;
}

/* Whether the Content-Type header's media type (before any ';' parameter) is type. */
static bool media_type_is(const char *value, const char *type)
{
    size_t n = strlen(type);
    if (value == NULL) {
        return false;
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    return strncasecmp(value, type, n) == 0 &&
           (value[n] == '\0' || value[n] == ';' || value[n] == ' ');
}

static bool operation_known(const char *op)
{
    for (const char *const *o = kms_operations(); *o != NULL; o++) {
        if (strcmp(*o, op) == 0) {
            return true;
        }
    }
    return false;
}

/* X-Amz-Target -> kms_call's operation name (into out), or false for a target we do not serve. */
static bool route_target(const char *target, char *out, size_t out_size)
{
    static const struct {
        const char *prefix;
        const char *service; /* kms_call's prefix: "" for KMS */
    } services[] = {
        {"TrentService.", ""},
        {"CertificateManager.", "acm:"},
        {"ACMPrivateCA.", "acm-pca:"},
    };
    if (target == NULL) {
        return false;
    }
    if (strcmp(target, "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents") ==
        0) {
        snprintf(out, out_size, "cloudtrail:LookupEvents");
        return operation_known(out);
    }
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        size_t n = strlen(services[i].prefix);
        const char *op = target + n;
        if (strncmp(target, services[i].prefix, n) != 0 || op[0] == '\0' ||
            strchr(op, ':') != NULL || strlen(op) > 64) {
            continue;
        }
        int k = snprintf(out, out_size, "%s%s", services[i].service, op);
        return k > 0 && (size_t)k < out_size && operation_known(out);
    }
    return false;
}

/* ---- The call --------------------------------------------------------------------------------
 */

/* kms_call_network with the request as received and what was decoded from it. Returns its
 * result; resp's request id, outcome and auth_failed are set either way. */
static int call(const kmsd_handler *h, const kmsd_http_request *req, const char *request_json,
                kmsd_http_response *resp, char **response_json)
{
    kms_network_request nr = {
        .method = req->method,
        .path = req->path,
        .query = req->query,
        .headers = req->headers,
        .header_count = req->header_count,
        .body = req->body,
        .body_len = req->body_len,
        .operation = resp->operation,
        .request_json = request_json,
        .source_ip = req->source_ip,
        .tls_version = req->tls_version,
        .cipher_suite = req->cipher_suite,
        .admit = h->admit,
        .admit_arg = h->admit_arg,
    };
    kms_network_result result;
    memset(&result, 0, sizeof result);
    *response_json = NULL;
    int rc = kms_call_network(h->client, &nr, response_json, &result);
    snprintf(resp->request_id, sizeof resp->request_id, "%s", result.request_id);
    if (rc != 0) {
        kms_error e = kms_last_error();
        resp->outcome = kms_error_name_for(e, resp->operation);
        resp->auth_failed = e == KMS_ERR_UNRECOGNIZED_CLIENT || e == KMS_ERR_BAD_SIGNATURE ||
                            e == KMS_ERR_INCOMPLETE_SIGNATURE;
        return -1;
    }
    resp->outcome = "Success";
    return 0;
}

/* The AWS JSON 1.1 answer of a call: the response, or {"__type", "message"}. */
static int json_answer(const kmsd_handler *h, const kmsd_http_request *req,
                       const char *request_json, kmsd_http_response *resp)
{
    char *response_json = NULL;
    if (call(h, req, request_json, resp, &response_json) != 0) {
        const char *name = resp->outcome;
        return kmsd_error_response(resp, kmsd_error_status(name), name, kms_last_error_message());
    }
    resp->status = 200;
    resp->content_type = JSON_CONTENT_TYPE;
    resp->body = response_json != NULL ? strdup(response_json) : strdup("{}");
    resp->body_len = resp->body != NULL ? strlen(resp->body) : 0;
    kms_string_free(response_json);
    return resp->body != NULL ? 0 : -1;
}

/* AWS JSON 1.1: the body is the request; it must be text (no NUL) for kms_call. An empty body
 * is the empty request, as SDKs send "{}". */
static int json_protocol(const kmsd_handler *h, const kmsd_http_request *req,
                         kmsd_http_response *resp)
{
    if (memchr(req->body, '\0', req->body_len) != NULL) {
        return kmsd_error_response(resp, 400, "SerializationException",
                                   "the request body is not JSON text");
    }
    char *text = malloc(req->body_len + 3);
    if (text == NULL) {
        return -1;
    }
    if (req->body_len == 0) {
        memcpy(text, "{}", 3);
    } else {
        memcpy(text, req->body, req->body_len);
        text[req->body_len] = '\0';
    }
    int r = json_answer(h, req, text, resp);
    wipe_free(text, req->body_len + 3);
    return r;
}

/* ---- The query protocol (STS, IAM) -----------------------------------------------------------
 * The error's code is the operation's service's (kms_error_name_for: STS's and IAM's codes,
 * "InvalidClientTokenId", "MalformedPolicyDocument"); its status is kmsd_error_status's. */

static int query_error(kmsd_http_response *resp, const char *code, const char *message, int status)
{
    char *xml = NULL;
    if (resp->request_id[0] == '\0') {
        fresh_request_id(resp->request_id);
    }
    if (resp->outcome == NULL) {
        resp->outcome = code; /* static */
    }
    if (kmsd_query_error_xml(code, message, status < 500, resp->request_id, &xml) != 0) {
        return -1;
    }
    free(resp->body);
    resp->body = xml;
    resp->body_len = strlen(xml);
    resp->status = status;
    resp->content_type = XML_CONTENT_TYPE;
    return 0;
}

static int query_protocol(const kmsd_handler *h, const kmsd_http_request *req,
                          kmsd_http_response *resp)
{
    char err[256] = "";
    char *operation = NULL;
    char *request_json = NULL;
    char *response_json = NULL;
    char *xml = NULL;
    int r = -1;
    if (req->body_len > KMSD_QUERY_MAX_BODY) {
        return query_error(resp, "InvalidParameterValue", "the request body is too large", 400);
    }
    int p = kmsd_query_parse((const char *)req->body, req->body_len, &operation, &request_json, err,
                             sizeof err);
    if (p != 0) {
        resp->outcome = p == KMSD_QUERY_INVALID_ACTION ? "InvalidAction" : "InvalidParameterValue";
        return query_error(resp, resp->outcome, err, 400);
    }
    snprintf(resp->operation, sizeof resp->operation, "%s", operation);
    if (call(h, req, request_json, resp, &response_json) != 0) {
        const char *code = resp->outcome;
        r = query_error(resp, code, kms_last_error_message(), kmsd_error_status(code));
        goto out;
    }
    if (kmsd_query_response_xml(operation, response_json, resp->request_id, &xml, err,
                                sizeof err) != 0) {
        r = query_error(resp, "InternalFailure", err, 500);
        goto out;
    }
    resp->status = 200;
    resp->content_type = XML_CONTENT_TYPE;
    resp->body = xml;
    resp->body_len = strlen(xml);
    r = 0;
out:
    free(operation);
    wipe_free(request_json, request_json != NULL ? strlen(request_json) : 0);
    kms_string_free(response_json);
    return r;
}

int kmsd_handle(const kmsd_handler *h, const kmsd_http_request *req, kmsd_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    if (req->method == NULL || strcmp(req->method, "POST") != 0 || req->path == NULL ||
        strcmp(req->path, "/") != 0) {
        return kmsd_error_response(resp, 404, "UnknownOperationException",
                                   "the API is served by POST /");
    }
    const char *content_type = header_get(req, "Content-Type");
    if (media_type_is(content_type, FORM_CONTENT_TYPE)) {
        return query_protocol(h, req, resp);
    }
    const char *target = header_get(req, "X-Amz-Target");
    if (!route_target(target, resp->operation, sizeof resp->operation)) {
        resp->operation[0] = '\0';
        return kmsd_error_response(resp, 400, "UnknownOperationException",
                                   target != NULL ? "unknown X-Amz-Target"
                                                  : "no X-Amz-Target header");
    }
    if (!media_type_is(content_type, JSON_CONTENT_TYPE)) {
        return kmsd_error_response(resp, 400, "UnknownOperationException",
                                   "Content-Type must be " JSON_CONTENT_TYPE);
    }
    return json_protocol(h, req, resp);
}
