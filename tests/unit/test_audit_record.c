/* The audit record writer (src/service/audit_trail_record.c, util/json_out.c) against the
 * jansson-built record it replaced: for requests of every shape and for tricky text (quotes,
 * backslashes, control characters, UTF-8 of every length, text that is not UTF-8, duplicate
 * context keys, member names and headers cut mid-character, a record too long to keep its
 * parameters), both must write the same bytes.
 *
 * The reference below is the jansson builder as it was (git history:
 * src/service/audit_trail_record.c before the writer), taking the eventID as a parameter, and
 * brought to CloudTrail 1.11 as the writer was (issue 18: additionalEventData with key material
 * ids, AWS's service events and console sign-ins, request defaults). Sanitizing the request and
 * response is the writer's own kms_audit_trail_sanitize (jansson in both, so no check of the
 * writer's bytes is lost). */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kms/kms.h"
#include "service/audit_trail.h"
#include "service/audit_trail_shape.h"
#include "service/client.h"
#include "service/ops.h"
#include "testutil.h"
#include "util/json_out.h"
#include "util/util.h"

#define EVENT_VERSION "1.11"
#define KMS_AUDIT_USER_AGENT_MAX 256
#define KMS_AUDIT_CALLER_TEXT_MAX 256

/* ---- The reference: the jansson builder ------------------------------------------------------ */

/* ---- What a record says ---------------------------------------------------------------------- */

static const char *event_source(const char *operation, const char **name)
{
    static const struct {
        const char *prefix;
        const char *source;
    } sources[] = {
        {"iam:", "iam.amazonaws.com"},
        {"sts:", "sts.amazonaws.com"},
        {"organizations:", "organizations.amazonaws.com"},
        {"cloudtrail:", "cloudtrail.amazonaws.com"},
        {"signin:", "signin.amazonaws.com"},
        {"acm-pca:", "acm-pca.amazonaws.com"},
        {"acm:", "acm.amazonaws.com"},
    };
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        size_t n = strlen(sources[i].prefix);
        if (strncmp(operation, sources[i].prefix, n) == 0) {
            *name = operation + n;
            return sources[i].source;
        }
    }
    *name = operation;
    return "kms.amazonaws.com";
}

/* CloudTrail's readOnly: reads, and the KMS cryptographic operations (they change no
 * resource); STS calls issue credentials but change nothing either. */
static bool read_only(const char *source, const char *name)
{
    static const char *const prefixes[] = {"Get", "List", "Describe", "Simulate", "Lookup"};
    static const char *const kms_reads[] = {"Encrypt",
                                            "Decrypt",
                                            "ReEncrypt",
                                            "GenerateDataKey",
                                            "GenerateDataKeyWithoutPlaintext",
                                            "GenerateRandom",
                                            "Sign",
                                            "Verify",
                                            "GenerateMac",
                                            "VerifyMac"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    if (strcmp(source, "sts.amazonaws.com") == 0) {
        return true;
    }
    for (size_t i = 0;
         strcmp(source, "kms.amazonaws.com") == 0 && i < sizeof kms_reads / sizeof kms_reads[0];
         i++) {
        if (strcmp(name, kms_reads[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Ends s, cut to its first n bytes, before a character the cut left incomplete, so that a key
 * cut short stays UTF-8 (the JSON writer refuses anything else). */
static void utf8_cut(char *s, size_t n)
{
    size_t lead = n;
    while (lead > 0 && ((unsigned char)s[lead - 1] & 0xc0) == 0x80) {
        lead--;
    }
    if (lead > 0) {
        unsigned char c = (unsigned char)s[lead - 1];
        size_t want = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (n - (lead - 1) < want) {
            n = lead - 1;
        }
    }
    s[n] = '\0';
}

/* The typed API has no JSON request: the parameters it had, with Encrypt's and Decrypt's
 * encryptionAlgorithm and Decrypt's keyId as the key ARN. NULL on out-of-memory. */
static json_t *typed_parameters(const kms_request *rq, const char *name)
{
    json_t *p = json_object();
    json_t *ctx = NULL;
    bool decrypt = strcmp(name, "Decrypt") == 0;
    const char *key_text = decrypt && rq->resource_count > 0 ? rq->resources[0] : rq->key_ref;
    if (p == NULL) {
        return NULL;
    }
    if (key_text != NULL && json_object_set_new(p, "keyId", kms_audit_json_text(key_text)) != 0) {
        goto fail;
    }
    if (rq->enc_ctx == NULL || rq->enc_ctx->count == 0) {
        goto alg;
    }
    if ((ctx = json_object()) == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < rq->enc_ctx->count; i++) {
        json_t *key = kms_audit_json_text(rq->enc_ctx->entries[i].key);
        int set = key != NULL
                      ? json_object_set_new(ctx, json_string_value(key),
                                            kms_audit_json_text(rq->enc_ctx->entries[i].value))
                      : -1;
        json_decref(key);
        if (set != 0) {
            goto fail;
        }
    }
    if (json_object_set_new(p, "encryptionContext", ctx) != 0) {
        ctx = NULL; /* taken (and freed) by json_object_set_new */
        goto fail;
    }
    ctx = NULL;
alg:
    if ((decrypt || strcmp(name, "Encrypt") == 0) && json_object_size(p) > 0 &&
        json_object_set_new(p, "encryptionAlgorithm", json_string("SYMMETRIC_DEFAULT")) != 0) {
        goto fail;
    }
    return p;
fail:
    json_decref(ctx);
    json_decref(p);
    return NULL;
}

static json_t *session_context(const kms_identity *id)
{
    char created[32];
    json_t *attrs = NULL, *out = NULL;
    kms_time_iso8601(id->session_issued, created);
    attrs = json_pack("{s:s, s:s}", "creationDate", created, "mfaAuthenticated",
                      id->mfa_authenticated ? "true" : "false");
    if (attrs == NULL) {
        return NULL;
    }
    if (id->role_arn[0] == '\0') {
        out = json_pack("{s:O}", "attributes", attrs);
        json_decref(attrs);
        return out;
    }
    /* principalId of a role session is "AROA...:SESSION"; the issuer is the role. */
    char role_id[160];
    snprintf(role_id, sizeof role_id, "%s", id->principal_id);
    char *colon = strchr(role_id, ':');
    if (colon != NULL) {
        *colon = '\0';
    }
    out = json_pack("{s:{s:s, s:s, s:s, s:s, s:s}, s:O}", "sessionIssuer", "type", "Role",
                    "principalId", role_id, "arn", id->role_arn, "accountId", id->account_id,
                    "userName", id->role_name, "attributes", attrs);
    json_decref(attrs);
    return out;
}

/* NULL on out-of-memory. */
static json_t *user_identity(const kms_request *rq)
{
    const char *name = NULL;
    const char *source = event_source(rq->operation != NULL ? rq->operation : "", &name);
    if (rq->service && strcmp(source, "kms.amazonaws.com") == 0) {
        return json_pack("{s:s, s:s}", "accountId", rq->client->cfg.account_id, "invokedBy",
                         "AWS Internal");
    }
    if (rq->service) {
        /* CloudTrail: scheduled work of the service itself (a rotation, the end of a deletion
         * window, a certificate's renewal) is an AwsServiceEvent invoked by the service. */
        return json_pack("{s:s, s:s, s:s}", "type", "AWSService", "accountId",
                         rq->client->cfg.account_id, "invokedBy", source);
    }
    if (rq->who == NULL) {
        /* Not authenticated: what the caller presented. */
        return json_pack("{s:s, s:s}", "type", "Unknown", "accessKeyId",
                         rq->client != NULL ? rq->client->access_key_id : "");
    }
    const kms_identity *id = &rq->who->id;
    json_t *session = NULL;
    if (id->session_expiry != 0 && (session = session_context(id)) == NULL) {
        return NULL;
    }
    /* s*: a member whose value is NULL is left out (an empty access key id or user name). */
    json_t *u =
        json_pack("{s:s, s:s, s:s, s:s, s:s*, s:s*, s:O*}", "type", id->type, "principalId",
                  id->principal_id, "arn", id->arn, "accountId", id->account_id, "accessKeyId",
                  id->access_key_id[0] != '\0' ? id->access_key_id : NULL, "userName",
                  id->user_name[0] != '\0' ? id->user_name : NULL, "sessionContext", session);
    json_decref(session);
    return u;
}

/* The CloudTrail resource type of an ARN this service names. */
static const char *resource_type(const char *arn)
{
    static const struct {
        const char *prefix, *type;
    } types[] = {
        {"arn:aws:acm-pca:", "AWS::ACMPCA::CertificateAuthority"},
        {"arn:aws:acm:", "AWS::CertificateManager::Certificate"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strncmp(arn, types[i].prefix, strlen(types[i].prefix)) == 0) {
            return types[i].type;
        }
    }
    return "AWS::KMS::Key";
}

/* NULL on out-of-memory. */
static json_t *resources(const kms_request *rq)
{
    json_t *list = json_array();
    for (int i = 0; list != NULL && i < rq->resource_count; i++) {
        char account[13] = "";
        if (kms_policy_arn_account(rq->resources[i], account) != 0) {
            account[0] = '\0';
        }
        if (json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "accountId", account, "type",
                                                  resource_type(rq->resources[i]), "ARN",
                                                  rq->resources[i])) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

/* CreateKey's new key is known only from its response. */
static void response_resources(kms_request *rq)
{
    json_t *meta = json_object_get(rq->resp, "KeyMetadata");
    const char *arn = json_string_value(json_object_get(meta, "Arn"));
    if (arn != NULL) {
        kms_audit_trail_resource(rq, arn);
    }
}

/* requestParameters: the request, sanitized, with the defaults AWS fills in; null when it has
 * none, and for a console sign-in. */
static int request_parameters(const kms_request *rq, const char *source, const char *name,
                              bool console, json_t **out)
{
    *out = NULL;
    if (console) {
        *out = json_null();
        return 0;
    }
    json_t *p = rq->req != NULL ? kms_audit_trail_sanitize(rq->req) : typed_parameters(rq, name);
    KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (rq->req != NULL && strcmp(source, "kms.amazonaws.com") == 0 &&
        kms_audit_trail_request_defaults(name, rq->resource_count > 0 ? rq->resources[0] : NULL,
                                         p) != 0) {
        json_decref(p);
        return -1;
    }
    if (json_object_size(p) == 0) {
        json_decref(p);
        p = json_null();
    }
    *out = p;
    return 0;
}

/* responseElements: CloudTrail leaves it null for reads and failures. */
static int response_elements(const kms_request *rq, int rc, bool ro, bool console, bool sts_creds,
                             json_t **out)
{
    *out = NULL;
    json_t *p = console && rq->resp != NULL ? json_deep_copy(rq->resp)
                : rc == 0 && rq->resp != NULL && (!ro || sts_creds)
                    ? kms_audit_trail_sanitize(rq->resp)
                    : json_null();
    KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory");
    *out = p;
    return 0;
}

/* A text of the caller's (a header), cut to at most n bytes (a whole character) and made
 * UTF-8, as a JSON string; NULL on out-of-memory. */
static json_t *caller_text(const char *value, size_t n)
{
    char buf[KMS_AUDIT_CALLER_TEXT_MAX + 1];
    if (n > KMS_AUDIT_CALLER_TEXT_MAX) {
        n = KMS_AUDIT_CALLER_TEXT_MAX;
    }
    size_t len = (size_t)snprintf(buf, n + 1, "%s", value != NULL ? value : "");
    if (len > n) {
        utf8_cut(buf, n);
    }
    return kms_audit_json_text(buf);
}

/* Where the request came from: sourceIPAddress, userAgent and (over TLS) tlsDetails as
 * CloudTrail writes them for a network request; this machine and the client's user agent for
 * an in-process call; the service for its own work. */
typedef struct origin {
    const char *ip;
    json_t *agent;
    json_t *tls; /* NULL: none */
} origin;

static int origin_of(const kms_request *rq, const char *source, origin *o)
{
    const kms_gate_caller *caller = rq->caller;
    const kms_network_request *net = caller != NULL ? caller->net : NULL;
    memset(o, 0, sizeof *o);
    if (rq->service) {
        bool kms = strcmp(source, "kms.amazonaws.com") == 0;
        o->ip = kms ? "AWS Internal" : source;
        o->agent = kms_audit_json_text(kms ? "AWS Internal" : "kms.amazonaws.com");
    } else if (net == NULL) {
        o->ip = "127.0.0.1";
        /* user_agent is set by kms_client_open. */
        o->agent = kms_audit_json_text(rq->client->user_agent);
    } else {
        o->ip = net->source_ip != NULL ? net->source_ip : "";
        o->agent = caller_text(caller->user_agent, KMS_AUDIT_USER_AGENT_MAX);
    }
    KMS_ENSURE(o->agent != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (net == NULL || net->tls_version == NULL) {
        return 0;
    }
    json_t *host = caller_text(caller->host, KMS_AUDIT_CALLER_TEXT_MAX);
    /* CloudTrail User Guide, "tlsDetails": the TLS version, the cipher suite, and the host
     * header the client sent. */
    o->tls = host != NULL
                 ? json_pack("{s:s, s:s, s:O}", "tlsVersion", net->tls_version, "cipherSuite",
                             net->cipher_suite != NULL ? net->cipher_suite : "",
                             "clientProvidedHostHeader", host)
                 : NULL;
    json_decref(host);
    if (o->tls == NULL) {
        json_decref(o->agent);
        o->agent = NULL;
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

/* additionalEventData: the key material ids, the caller's (a ConsoleLogin's), the note of a
 * trimmed record; json null (left out) when there is nothing to say, NULL on out-of-memory. */
static json_t *additional_data(const kms_request *rq, const char *name, bool trimmed)
{
    bool two = strcmp(name, "ReEncrypt") == 0;
    if (rq->additional_event_data != NULL && !trimmed) {
        return json_deep_copy(rq->additional_event_data);
    }
    json_t *d = json_object();
    for (int i = 0; d != NULL && i < 2; i++) {
        if (rq->key_material[i][0] != '\0' &&
            json_object_set_new(d,
                                !two     ? "keyMaterialId"
                                : i == 0 ? "sourceKeyMaterialId"
                                         : "destinationKeyMaterialId",
                                json_string(rq->key_material[i])) != 0) {
            json_decref(d);
            return NULL;
        }
    }
    if (d != NULL && trimmed &&
        json_object_set_new(d, "omitted", json_string("parameters too large to record")) != 0) {
        json_decref(d);
        return NULL;
    }
    if (d != NULL && json_object_size(d) == 0) {
        json_decref(d);
        return json_null();
    }
    return d;
}

/* Sets member key of rec to v (taken); *ok false when it cannot (v NULL: out of memory). */
static void put(json_t *rec, const char *key, json_t *v, bool *ok)
{
    if (v == NULL || json_object_set_new(rec, key, v) != 0) {
        *ok = false;
    }
}

/* The record of the request, built whole or not at all: every part is made first (any failure
 * fails the record), then set in CloudTrail 1.11's order. trimmed: without its parameters. */
static int build_record(kms_request *rq, int rc, kms_error err, const char *message,
                        const char *given_event_id, bool trimmed, json_t **out)
{
    int r = -1;
    bool ok = true;
    const char *name = NULL;
    const char *source = event_source(rq->operation != NULL ? rq->operation : "", &name);
    bool ro = read_only(source, name);
    bool console = strcmp(source, "signin.amazonaws.com") == 0 && strcmp(name, "ConsoleLogin") == 0;
    char when[32];
    char event_id[KMS_UUID_STR_LEN + 1];
    json_t *params = NULL, *response = NULL, *extra = NULL;
    origin from = {0};
    *out = NULL;
    kms_time_iso8601(rq->started, when);
    snprintf(event_id, sizeof event_id, "%s", given_event_id);
    /* The requestID the caller is told (x-amzn-RequestId), made once. */
    if (rq->request_id[0] == '\0' && kms_uuid_new(rq->request_id) != 0) {
        goto out;
    }
    if (rc == 0) {
        response_resources(rq);
    }
    if (request_parameters(rq, source, name, console, &params) != 0) {
        goto out;
    }
    /* STS's credentials are recorded, as CloudTrail does. */
    bool sts_creds = strcmp(source, "sts.amazonaws.com") == 0 &&
                     (strcmp(name, "AssumeRole") == 0 || strcmp(name, "GetSessionToken") == 0);
    if (response_elements(rq, rc, ro, console, sts_creds, &response) != 0) {
        goto out;
    }
    if (origin_of(rq, source, &from) != 0) {
        goto out;
    }
    if ((extra = additional_data(rq, name, trimmed)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    const kms_config *cfg = &rq->client->cfg;
    json_t *rec = json_object();
    if (rec == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    put(rec, "eventVersion", json_string(EVENT_VERSION), &ok);
    put(rec, "userIdentity", user_identity(rq), &ok);
    put(rec, "eventTime", json_string(when), &ok);
    put(rec, "eventSource", json_string(source), &ok);
    /* The caller's operation name: an unknown one is recorded too, need not be UTF-8, and is
     * cut like a header. */
    put(rec, "eventName", caller_text(name, KMS_AUDIT_CALLER_TEXT_MAX), &ok);
    put(rec, "awsRegion", json_string(cfg->region), &ok);
    put(rec, "sourceIPAddress", json_string(from.ip), &ok);
    put(rec, "userAgent", json_incref(from.agent), &ok);
    if (rc != 0) {
        put(rec, "errorCode", json_string(kms_error_name(err)), &ok);
        put(rec, "errorMessage", kms_audit_json_text(message), &ok);
    }
    put(rec, "requestParameters", trimmed ? json_null() : json_incref(params), &ok);
    put(rec, "responseElements", trimmed ? json_null() : json_incref(response), &ok);
    if (!json_is_null(extra)) {
        put(rec, "additionalEventData", json_incref(extra), &ok);
    }
    if (!rq->service && !console) {
        put(rec, "requestID", json_string(rq->request_id), &ok);
    }
    put(rec, "eventID", json_string(event_id), &ok);
    put(rec, "readOnly", json_boolean(ro), &ok);
    put(rec, "resources", resources(rq), &ok);
    put(rec, "eventType",
        json_string(rq->service ? "AwsServiceEvent"
                    : console   ? "AwsConsoleSignIn"
                                : "AwsApiCall"),
        &ok);
    put(rec, "managementEvent", json_true(), &ok);
    put(rec, "recipientAccountId", json_string(cfg->account_id), &ok);
    if (rq->service_details != NULL) {
        put(rec, "serviceEventDetails", json_deep_copy(rq->service_details), &ok);
    }
    put(rec, "eventCategory", json_string("Management"), &ok);
    if (from.tls != NULL) {
        put(rec, "tlsDetails", json_incref(from.tls), &ok);
    }
    if (rq->who != NULL && rq->who->id.console_session && !console) {
        put(rec, "sessionCredentialFromConsole", json_string("true"), &ok);
    }
    if (!ok) {
        json_decref(rec);
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    *out = rec;
    r = 0;
out:
    json_decref(params);
    json_decref(response);
    json_decref(extra);
    json_decref(from.agent);
    json_decref(from.tls);
    return r;
}

/* The last check before a record is written: the members every CloudTrail record has, and the
 * errorCode of a failed call. A record without one of them is never written (the call fails). */
static int check_complete(const json_t *rec, int rc)
{
    static const char *const strings[] = {
        "eventVersion",    "eventTime", "eventSource", "eventName", "awsRegion",
        "sourceIPAddress", "userAgent", "eventID",     "eventType", "recipientAccountId",
    };
    const char *missing = NULL;
    if (!json_is_object(json_object_get(rec, "userIdentity"))) {
        missing = "userIdentity";
    }
    for (size_t i = 0; missing == NULL && i < sizeof strings / sizeof strings[0]; i++) {
        if (!json_is_string(json_object_get(rec, strings[i]))) {
            missing = strings[i];
        }
    }
    if (missing == NULL && rc != 0 && !json_is_string(json_object_get(rec, "errorCode"))) {
        missing = "errorCode";
    }
    KMS_ENSURE(missing == NULL, KMS_ERR_AUDIT,
               "the audit record of %s has no %s: it was not written, and the request fails",
               json_string_value(json_object_get(rec, "eventName")) != NULL
                   ? json_string_value(json_object_get(rec, "eventName"))
                   : "a request",
               missing);
    return 0;
}

/* The record as one line of text, checked complete (*text malloc'd). */
static int record_text(kms_request *rq, int rc, kms_error err, const char *message,
                       const char *event_id, char **text)
{
    int r = -1;
    json_t *rec = NULL;
    *text = NULL;
    if (build_record(rq, rc, err, message, event_id, false, &rec) != 0) {
        goto out;
    }
    char *s = json_dumps(rec, JSON_COMPACT);
    if (s != NULL && strlen(s) > KMS_AUDIT_RECORD_MAX - 256) {
        free(s);
        s = NULL;
        json_decref(rec);
        rec = NULL;
        if (build_record(rq, rc, err, message, event_id, true, &rec) != 0) {
            goto out;
        }
        s = json_dumps(rec, JSON_COMPACT);
    }
    if (s == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory building the audit record");
        goto out;
    }
    if (check_complete(rec, rc) != 0) {
        free(s);
        goto out;
    }
    *text = s;
    r = 0;
out:
    json_decref(rec);
    return r;
}
/* ---- The comparison ------------------------------------------------------------------------- */

#define EVENT_ID "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

static kms_client client;
static kms_principal_snapshot who;

/* Text of every kind the record may carry. */
static const char *const tricky[] = {
    "plain",
    "",
    "quote\" back\\slash /slash end",
    "controls \x01\x02\x1f\x7f \b\f\n\r\t end",
    "UTF-8: \xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e \xef\xbf\xbf \xf4\x8f\xbf\xbf",
    "not UTF-8: \xff byte",
    "overlong \xc0\x80 and \xe0\x80\x80 and \xf0\x80\x80\x80",
    "surrogate \xed\xa0\x80",
    "beyond U+10FFFF \xf4\x90\x80\x80 \xf5\x80\x80\x80",
    "cut short \xe2\x82",
    "lone continuation \x80",
    "mixed \"\\\n\xc3\xa9\xff",
};
#define TRICKY (sizeof tricky / sizeof tricky[0])

/* Both builders on rq: the same result, and when both build, the same bytes (the writer with
 * storage too small for a record too, so that its move to the heap is exercised). */
static int compare(kms_request *rq, int rc, kms_error err, const char *message)
{
    char *want = NULL;
    int wr = record_text(rq, rc, err, message, EVENT_ID, &want);
    size_t sizes[] = {8, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *storage = malloc(sizes[i]);
        assert_non_null(storage);
        kms_json_out o;
        const char *got = NULL;
        size_t len = 0;
        kms_json_out_init(&o, storage, sizes[i]);
        int nr = kms_audit_trail_record_text(rq, rc, err, message, EVENT_ID, &o);
        if (wr != nr) {
            fail_msg("jansson %d (%s), writer %d (%s)", wr, want != NULL ? want : "-", nr,
                     kms_last_error_message());
        }
        if (nr == 0) {
            assert_int_equal(kms_json_out_finish(&o, &got, &len), 0);
            assert_int_equal(len, strlen(got));
            if (strcmp(got, want) != 0) {
                fail_msg("records differ:\n jansson %s\n writer  %s", want, got);
            }
        }
        kms_json_out_clean_up(&o);
        free(storage);
    }
    free(want);
    return wr;
}

static void request_init(kms_request *rq, const char *operation)
{
    memset(rq, 0, sizeof *rq);
    rq->client = &client;
    rq->operation = operation;
    rq->who = &who;
    rq->started = 1765065600;
    snprintf(rq->request_id, sizeof rq->request_id, "%s", "11111111-2222-4333-8444-555555555555");
}

/* The typed API (Encrypt, GenerateDataKey, Decrypt): each tricky text as the key reference, a
 * context key and value, the error message and the user agent; succeeded and failed. */
static void test_typed_tricky(void **state)
{
    (void)state;
    for (size_t i = 0; i < TRICKY; i++) {
        for (size_t j = 0; j < TRICKY; j++) {
            kms_context_entry entries[] = {{tricky[i], tricky[j]}, {"Dept", tricky[i]}};
            kms_encryption_context ctx = {entries, 2};
            kms_request rq;
            request_init(&rq, "GenerateDataKey");
            rq.key_ref = tricky[j];
            rq.enc_ctx = &ctx;
            client.user_agent = (char *)tricky[i];
            kms_audit_trail_resource(&rq, "arn:aws:kms:eu-west-1:111122223333:key/"
                                          "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0");
            compare(&rq, 0, KMS_OK, "");
            compare(&rq, -1, KMS_ERR_ACCESS_DENIED, tricky[j]);
        }
    }
    client.user_agent = "kms-test/1";
}

/* Each kind of byte the writer escapes or checks, at every offset of a word and across the
 * writer's chunks of 256 bytes, in text that must be UTF-8 and in text from outside. */
static void test_specials_at_every_offset(void **state)
{
    (void)state;
    static const char *const specials[] = {"\"",   "\\",       "\x01",         "\x1f", "\n",
                                           "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xff", "/"};
    size_t lengths[] = {40, 300};
    for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
        for (size_t sp = 0; sp < sizeof specials / sizeof specials[0]; sp++) {
            for (size_t at = 0; at < lengths[l]; at += at < 24 || at > 248 ? 1 : 17) {
                char text[320];
                size_t k = strlen(specials[sp]);
                memset(text, 'a', lengths[l]);
                memcpy(text + at, specials[sp], k);
                text[lengths[l] + k - 1 < sizeof text ? lengths[l] : sizeof text - 1] = '\0';
                kms_context_entry entries[] = {{"k", text}};
                kms_encryption_context ctx = {entries, 1};
                kms_request rq;
                request_init(&rq, "Encrypt");
                rq.key_ref = text;
                rq.enc_ctx = &ctx;
                compare(&rq, -1, KMS_ERR_VALIDATION, text);
                snprintf(who.id.arn, sizeof who.id.arn, "%s", text);
                compare(&rq, 0, KMS_OK, "");
                snprintf(who.id.arn, sizeof who.id.arn, "arn:aws:iam::111122223333:user/alice");
            }
        }
    }
}

/* A context key given twice (also two texts that become the same once made UTF-8) keeps its
 * first place and its last value; no key reference, no context; a NULL value fails both. */
static void test_typed_shapes(void **state)
{
    (void)state;
    kms_context_entry dup[] = {{"k", "1"},     {"b\xff", "x"}, {"a", "2"},    {"k", "3"},
                               {"b\xfe", "y"}, {"b?", "z"},    {"c\xc3", "w"}};
    kms_encryption_context ctx = {dup, sizeof dup / sizeof dup[0]};
    kms_request rq;
    request_init(&rq, "Encrypt");
    rq.key_ref = "alias/x";
    rq.enc_ctx = &ctx;
    assert_int_equal(compare(&rq, 0, KMS_OK, ""), 0);
    rq.key_ref = NULL;
    compare(&rq, 0, KMS_OK, "");
    rq.enc_ctx = NULL;
    compare(&rq, 0, KMS_OK, "");
    kms_encryption_context none = {dup, 0};
    rq.enc_ctx = &none;
    compare(&rq, -1, KMS_ERR_VALIDATION, "no key");
    kms_context_entry null_value[] = {{"k", NULL}};
    kms_encryption_context bad = {null_value, 1};
    rq.enc_ctx = &bad;
    assert_int_equal(compare(&rq, -1, KMS_ERR_VALIDATION, "bad"), -1);
}

/* Identities: a user, a role session with MFA, a session without a role, root without an
 * access key, an unauthenticated caller, the service itself; and an identity member that is
 * not UTF-8 (both builders refuse the record). */
static void test_identities(void **state)
{
    (void)state;
    kms_request rq;
    request_init(&rq, "Decrypt");
    rq.key_ref = "k";
    compare(&rq, 0, KMS_OK, "");
    kms_identity saved = who.id;
    snprintf(who.id.type, sizeof who.id.type, "AssumedRole");
    snprintf(who.id.principal_id, sizeof who.id.principal_id, "AROAEXAMPLE:sess\"ion");
    snprintf(who.id.role_arn, sizeof who.id.role_arn, "arn:aws:iam::111122223333:role/R");
    snprintf(who.id.role_name, sizeof who.id.role_name, "R");
    who.id.user_name[0] = '\0';
    who.id.session_expiry = 1765069200;
    who.id.session_issued = 1765065000;
    who.id.mfa_authenticated = true;
    compare(&rq, 0, KMS_OK, "");
    who.id.role_arn[0] = '\0';
    who.id.mfa_authenticated = false;
    compare(&rq, 0, KMS_OK, "");
    who.id = saved;
    snprintf(who.id.type, sizeof who.id.type, "Root");
    who.id.access_key_id[0] = '\0';
    who.id.user_name[0] = '\0';
    compare(&rq, 0, KMS_OK, "");
    snprintf(who.id.arn, sizeof who.id.arn, "arn:aws:iam::111122223333:user/\xff");
    compare(&rq, 0, KMS_OK, "");
    who.id = saved;
    rq.who = NULL;
    compare(&rq, -1, KMS_ERR_UNRECOGNIZED_CLIENT, "The security token is invalid");
    kms_request sv;
    request_init(&sv, "RotateKey");
    sv.who = NULL;
    sv.service = true;
    sv.service_details =
        json_pack("{s:s, s:b, s:i, s:f}", "keyId", "k\"\n\xc3\xa9", "x", 1, "n", 42, "r", 0.1);
    assert_non_null(sv.service_details);
    kms_audit_trail_resource(&sv, "arn:aws:kms:eu-west-1:111122223333:key/k");
    assert_int_equal(compare(&sv, 0, KMS_OK, ""), 0);
    json_decref(sv.service_details);
}

/* kms_call: the request and response as JSON (sanitized, secrets left out, names in camelCase,
 * a member name cut mid-character), an operation of another service, a network caller over
 * TLS with long headers cut mid-character, a request too long to record whole. */
static void test_json_requests(void **state)
{
    (void)state;
    char name[140];
    memset(name, 'a', 126);
    memcpy(name + 126, "\xc3\xa9 bb", 6);
    name[132] = '\0';
    json_t *req = json_pack("{s:s, s:s, s:[{s:s}], s:{s:s, s:{}}, s:s, s:n, s:b, s:i}", "KeyId",
                            "alias/\"x\"\n", "Plaintext", "secret", "Tags", "TagKey", "t\\\x01",
                            "EncryptionContext", "Key\xc3\xa9", "V", name, "Policy", "p", "Nothing",
                            "Bool", 1, "Number", 7);
    json_t *resp = json_pack("{s:{s:s, s:s}, s:s}", "KeyMetadata", "KeyId", "k", "Arn",
                             "arn:aws:kms:eu-west-1:111122223333:key/k", "CiphertextBlob", "AAAA");
    assert_non_null(req);
    assert_non_null(resp);
    kms_request rq;
    request_init(&rq, "CreateKey");
    rq.req = req;
    rq.resp = resp;
    compare(&rq, 0, KMS_OK, "");
    compare(&rq, -1, KMS_ERR_LIMIT_EXCEEDED, "too many");
    request_init(&rq, "iam:ListUsers");
    json_t *empty = json_object();
    rq.req = empty;
    rq.resp = resp;
    compare(&rq, 0, KMS_OK, "");

    char agent[400], host[400];
    memset(agent, 'u', sizeof agent);
    memcpy(agent + 254, "\xe2\x82\xac", 3); /* cut at 256 bytes, mid-character */
    agent[sizeof agent - 1] = '\0';
    memset(host, 'h', sizeof host);
    memcpy(host + 255, "\xc3\xa9", 2);
    host[sizeof host - 1] = '\0';
    kms_network_request net;
    memset(&net, 0, sizeof net);
    net.source_ip = "192.0.2.1";
    net.tls_version = "TLSv1.3";
    net.cipher_suite = "TLS_AES_128_GCM_SHA256";
    kms_gate_caller caller;
    memset(&caller, 0, sizeof caller);
    caller.net = &net;
    caller.user_agent = agent;
    caller.host = host;
    request_init(&rq, "Frobnicate\xff");
    rq.req = empty;
    rq.caller = &caller;
    compare(&rq, -1, KMS_ERR_UNKNOWN_OPERATION, "no such operation");
    net.tls_version = NULL;
    caller.user_agent = NULL;
    compare(&rq, -1, KMS_ERR_UNKNOWN_OPERATION, "no such operation");

    /* Too long: the parameters go, and the record says so. */
    size_t big = 300 * 1024;
    char *doc = malloc(big + 1);
    assert_non_null(doc);
    memset(doc, 'p', big);
    doc[big] = '\0';
    json_t *huge = json_pack("{s:s, s:s}", "KeyId", "k", "Policy", doc);
    free(doc);
    assert_non_null(huge);
    request_init(&rq, "PutKeyPolicy");
    rq.req = huge;
    rq.resp = resp;
    assert_int_equal(compare(&rq, 0, KMS_OK, ""), 0);
    json_decref(huge);
    json_decref(empty);
    json_decref(req);
    json_decref(resp);
}

/* ---- CloudTrail 1.11 shapes, from AWS's documented examples ---------------------------------- */

/* The writer's record of rq, parsed (the reference agreeing byte for byte first). */
static json_t *record_of(kms_request *rq, int rc, kms_error err, const char *message)
{
    char storage[4096];
    kms_json_out o;
    const char *text = NULL;
    size_t len = 0;
    compare(rq, rc, err, message);
    kms_json_out_init(&o, storage, sizeof storage);
    assert_int_equal(kms_audit_trail_record_text(rq, rc, err, message, EVENT_ID, &o), 0);
    assert_int_equal(kms_json_out_finish(&o, &text, &len), 0);
    json_t *rec = json_loadb(text, len, 0, NULL);
    kms_json_out_clean_up(&o);
    assert_non_null(rec);
    return rec;
}

static const char *at(const json_t *rec, const char *a, const char *b)
{
    const json_t *v = json_object_get(rec, a);
    if (b != NULL) {
        v = json_object_get(v, b);
    }
    return json_string_value(v);
}

/* CloudTrail writes dates inside requestParameters and responseElements as
 * "Aug 10, 2022, 10:38:27 PM" (KMS CreateKey example), "Jan 1, 2024, 1:00:00 AM" (STS). */
static void test_dates(void **state)
{
    (void)state;
    char d[32];
    kms_audit_trail_date(1660171107, d);
    assert_string_equal(d, "Aug 10, 2022, 10:38:27 PM");
    kms_audit_trail_date(1704070800, d);
    assert_string_equal(d, "Jan 1, 2024, 1:00:00 AM");
    kms_audit_trail_date(1618185909, d);
    assert_string_equal(d, "Apr 12, 2021, 12:05:09 AM");
    kms_audit_trail_date(1618185909 + 12 * 3600, d);
    assert_string_equal(d, "Apr 12, 2021, 12:05:09 PM");
    json_t *resp =
        json_pack("{s:{s:s, s:I, s:I, s:s}, s:{s:I}}", "KeyMetadata", "KeyId", "k", "CreationDate",
                  (json_int_t)1660171107, "DeletionDate", (json_int_t)1704070800, "Description",
                  "ValidTo", "Credentials", "Expiration", (json_int_t)1704070800);
    assert_non_null(resp);
    json_t *s = kms_audit_trail_sanitize(resp);
    assert_non_null(s);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "keyMetadata"), "creationDate")),
        "Aug 10, 2022, 10:38:27 PM");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "keyMetadata"), "deletionDate")),
        "Jan 1, 2024, 1:00:00 AM");
    /* A text member named like a date stays as it is. */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "keyMetadata"), "description")),
        "ValidTo");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "credentials"), "expiration")),
        "Jan 1, 2024, 1:00:00 AM");
    json_decref(s);
    json_decref(resp);
}

/* AWS KMS Developer Guide, CloudTrail examples: Encrypt records encryptionAlgorithm and
 * additionalEventData.keyMaterialId; Decrypt always records encryptionAlgorithm and the key
 * ARN; CreateKey records every parameter with its default; ReEncrypt the source and destination
 * material. */
static void test_kms_request_shapes(void **state)
{
    (void)state;
    const char *arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    kms_request rq;
    request_init(&rq, "Encrypt");
    json_t *req = json_pack("{s:s, s:s, s:{s:s}}", "KeyId", "alias/x", "Plaintext", "AAAA",
                            "EncryptionContext", "Department", "Engineering");
    assert_non_null(req);
    rq.req = req;
    kms_audit_trail_resource(&rq, arn);
    kms_audit_trail_key_material(&rq, 0, arn, 1);
    json_t *rec = record_of(&rq, 0, KMS_OK, "");
    assert_string_equal(at(rec, "eventVersion", NULL), "1.11");
    assert_string_equal(at(rec, "eventType", NULL), "AwsApiCall");
    assert_string_equal(at(rec, "requestParameters", "encryptionAlgorithm"), "SYMMETRIC_DEFAULT");
    assert_string_equal(at(rec, "requestParameters", "keyId"), "alias/x");
    assert_null(json_object_get(json_object_get(rec, "requestParameters"), "plaintext"));
    char id[65];
    kms_audit_trail_material_id(arn, 1, id);
    assert_int_equal(strlen(id), 64);
    assert_string_equal(at(rec, "additionalEventData", "keyMaterialId"), id);
    assert_true(json_is_null(json_object_get(rec, "responseElements")));
    assert_non_null(at(rec, "requestID", NULL));
    assert_null(json_object_get(rec, "sessionCredentialFromConsole"));
    json_decref(rec);
    json_decref(req);

    /* Decrypt without KeyId: the record names the key ARN, and the algorithm. */
    request_init(&rq, "Decrypt");
    req = json_pack("{s:s}", "CiphertextBlob", "AAAA");
    assert_non_null(req);
    rq.req = req;
    kms_audit_trail_resource(&rq, arn);
    kms_audit_trail_key_material(&rq, 0, arn, 2);
    rec = record_of(&rq, 0, KMS_OK, "");
    assert_string_equal(at(rec, "requestParameters", "keyId"), arn);
    assert_string_equal(at(rec, "requestParameters", "encryptionAlgorithm"), "SYMMETRIC_DEFAULT");
    kms_audit_trail_material_id(arn, 2, id);
    assert_string_equal(at(rec, "additionalEventData", "keyMaterialId"), id);
    json_decref(rec);
    /* A failed Decrypt records them too. */
    rec = record_of(&rq, -1, KMS_ERR_INVALID_CIPHERTEXT, "bad");
    assert_string_equal(at(rec, "requestParameters", "keyId"), arn);
    assert_string_equal(at(rec, "requestParameters", "encryptionAlgorithm"), "SYMMETRIC_DEFAULT");
    json_decref(rec);
    json_decref(req);

    /* The typed API (libkms kms_decrypt): the same. */
    request_init(&rq, "Decrypt");
    kms_audit_trail_resource(&rq, arn);
    rec = record_of(&rq, 0, KMS_OK, "");
    assert_string_equal(at(rec, "requestParameters", "keyId"), arn);
    assert_string_equal(at(rec, "requestParameters", "encryptionAlgorithm"), "SYMMETRIC_DEFAULT");
    json_decref(rec);

    /* A network request refused before it was read: nothing is known of its parameters. */
    request_init(&rq, "Encrypt");
    rec = record_of(&rq, -1, KMS_ERR_BAD_SIGNATURE, "bad signature");
    assert_true(json_is_null(json_object_get(rec, "requestParameters")));
    json_decref(rec);

    request_init(&rq, "CreateKey");
    req = json_pack("{s:s}", "Description", "");
    assert_non_null(req);
    rq.req = req;
    rec = record_of(&rq, 0, KMS_OK, "");
    assert_string_equal(at(rec, "requestParameters", "keySpec"), "SYMMETRIC_DEFAULT");
    assert_string_equal(at(rec, "requestParameters", "customerMasterKeySpec"), "SYMMETRIC_DEFAULT");
    assert_string_equal(at(rec, "requestParameters", "keyUsage"), "ENCRYPT_DECRYPT");
    assert_string_equal(at(rec, "requestParameters", "origin"), "AWS_KMS");
    assert_true(json_is_false(json_object_get(json_object_get(rec, "requestParameters"),
                                              "bypassPolicyLockoutSafetyCheck")));
    assert_true(
        json_is_false(json_object_get(json_object_get(rec, "requestParameters"), "multiRegion")));
    json_decref(rec);
    json_decref(req);
    /* What the caller gave stays: an HMAC key. */
    request_init(&rq, "CreateKey");
    req = json_pack("{s:s, s:s}", "KeySpec", "HMAC_256", "KeyUsage", "GENERATE_VERIFY_MAC");
    assert_non_null(req);
    rq.req = req;
    rec = record_of(&rq, 0, KMS_OK, "");
    assert_string_equal(at(rec, "requestParameters", "keySpec"), "HMAC_256");
    assert_string_equal(at(rec, "requestParameters", "customerMasterKeySpec"), "HMAC_256");
    assert_string_equal(at(rec, "requestParameters", "keyUsage"), "GENERATE_VERIFY_MAC");
    json_decref(rec);
    json_decref(req);

    request_init(&rq, "ReEncrypt");
    req = json_pack("{s:s, s:s}", "CiphertextBlob", "AAAA", "DestinationKeyId", "k2");
    assert_non_null(req);
    rq.req = req;
    kms_audit_trail_key_material(&rq, 0, arn, 1);
    kms_audit_trail_key_material(&rq, 1, arn, 2);
    rec = record_of(&rq, 0, KMS_OK, "");
    kms_audit_trail_material_id(arn, 1, id);
    assert_string_equal(at(rec, "additionalEventData", "sourceKeyMaterialId"), id);
    kms_audit_trail_material_id(arn, 2, id);
    assert_string_equal(at(rec, "additionalEventData", "destinationKeyMaterialId"), id);
    assert_string_equal(at(rec, "requestParameters", "sourceEncryptionAlgorithm"),
                        "SYMMETRIC_DEFAULT");
    json_decref(rec);
    json_decref(req);
}

/* IAM User Guide, "Logging IAM and AWS STS API calls with AWS CloudTrail": AssumeRole's record
 * keeps its credentials (without the secret) and their expiration as a date. */
static void test_sts_credentials(void **state)
{
    (void)state;
    kms_request rq;
    request_init(&rq, "sts:AssumeRole");
    json_t *req = json_pack("{s:s, s:s}", "RoleArn", "arn:aws:iam::111122223333:role/R",
                            "RoleSessionName", "s");
    json_t *resp = json_pack("{s:{s:s, s:s, s:s, s:I}}", "Credentials", "AccessKeyId",
                             "ASIAEXAMPLE", "SecretAccessKey", "secret", "SessionToken", "token",
                             "Expiration", (json_int_t)1704070800);
    assert_non_null(req);
    assert_non_null(resp);
    rq.req = req;
    rq.resp = resp;
    json_t *rec = record_of(&rq, 0, KMS_OK, "");
    const json_t *c = json_object_get(json_object_get(rec, "responseElements"), "credentials");
    assert_string_equal(json_string_value(json_object_get(c, "expiration")),
                        "Jan 1, 2024, 1:00:00 AM");
    assert_string_equal(json_string_value(json_object_get(c, "accessKeyId")), "ASIAEXAMPLE");
    assert_null(json_object_get(c, "secretAccessKey"));
    assert_null(json_object_get(c, "sessionToken"));
    json_decref(rec);
    /* Other reads still record no response. */
    request_init(&rq, "sts:GetCallerIdentity");
    rq.req = req;
    rq.resp = resp;
    rec = record_of(&rq, 0, KMS_OK, "");
    assert_true(json_is_null(json_object_get(rec, "responseElements")));
    json_decref(rec);
    json_decref(req);
    json_decref(resp);
}

/* AWS KMS Developer Guide, CloudTrail "RotateKey" and "DeleteKey": userIdentity {accountId,
 * invokedBy "AWS Internal"}, sourceIPAddress and userAgent "AWS Internal", no requestID,
 * eventType AwsServiceEvent, serviceEventDetails. */
static void test_service_event(void **state)
{
    (void)state;
    kms_request sv;
    request_init(&sv, "DeleteKey");
    sv.who = NULL;
    sv.service = true;
    sv.service_details = json_pack("{s:s}", "keyId", "1234abcd-12ab-34cd-56ef-1234567890ab");
    assert_non_null(sv.service_details);
    kms_audit_trail_resource(&sv, "arn:aws:kms:eu-west-1:111122223333:key/"
                                  "1234abcd-12ab-34cd-56ef-1234567890ab");
    json_t *rec = record_of(&sv, 0, KMS_OK, "");
    json_t *who_json = json_object_get(rec, "userIdentity");
    assert_int_equal(json_object_size(who_json), 2);
    assert_string_equal(at(rec, "userIdentity", "accountId"), "111122223333");
    assert_string_equal(at(rec, "userIdentity", "invokedBy"), "AWS Internal");
    assert_string_equal(at(rec, "sourceIPAddress", NULL), "AWS Internal");
    assert_string_equal(at(rec, "userAgent", NULL), "AWS Internal");
    assert_string_equal(at(rec, "eventType", NULL), "AwsServiceEvent");
    assert_null(json_object_get(rec, "requestID"));
    assert_true(json_is_null(json_object_get(rec, "requestParameters")));
    assert_string_equal(at(rec, "serviceEventDetails", "keyId"),
                        "1234abcd-12ab-34cd-56ef-1234567890ab");
    json_decref(rec);
    json_decref(sv.service_details);
}

/* CloudTrail User Guide, "AWS Management Console sign-in events": eventType AwsConsoleSignIn,
 * requestParameters null, responseElements {"ConsoleLogin": "Success"} (or "Failure"),
 * additionalEventData {LoginTo, MobileVersion, MFAUsed}; and a call made with the sign-in's
 * session says sessionCredentialFromConsole "true". */
static void test_console_sign_in(void **state)
{
    (void)state;
    const char *results[] = {"Success", "Failure"};
    for (int i = 0; i < 2; i++) {
        kms_request rq;
        request_init(&rq, "signin:ConsoleLogin");
        json_t *resp = json_pack("{s:s}", "ConsoleLogin", results[i]);
        json_t *extra = json_pack("{s:s, s:s, s:s}", "LoginTo", "kmsctl --profile signin",
                                  "MobileVersion", "No", "MFAUsed", "No");
        assert_non_null(resp);
        assert_non_null(extra);
        rq.resp = resp;
        rq.additional_event_data = extra;
        json_t *rec = i == 0 ? record_of(&rq, 0, KMS_OK, "")
                             : record_of(&rq, -1, KMS_ERR_ACCESS_DENIED, "Failed authentication");
        assert_string_equal(at(rec, "eventSource", NULL), "signin.amazonaws.com");
        assert_string_equal(at(rec, "eventName", NULL), "ConsoleLogin");
        assert_string_equal(at(rec, "eventType", NULL), "AwsConsoleSignIn");
        assert_true(json_is_null(json_object_get(rec, "requestParameters")));
        assert_string_equal(at(rec, "responseElements", "ConsoleLogin"), results[i]);
        assert_string_equal(at(rec, "additionalEventData", "MobileVersion"), "No");
        assert_string_equal(at(rec, "additionalEventData", "MFAUsed"), "No");
        assert_string_equal(at(rec, "additionalEventData", "LoginTo"), "kmsctl --profile signin");
        assert_null(json_object_get(rec, "requestID"));
        json_decref(rec);
        json_decref(resp);
        json_decref(extra);
    }
    kms_request rq;
    request_init(&rq, "ListKeys");
    kms_identity saved = who.id;
    who.id.session_expiry = 1765069200;
    who.id.session_issued = 1765065000;
    who.id.console_session = true;
    json_t *rec = record_of(&rq, 0, KMS_OK, "");
    assert_string_equal(at(rec, "sessionCredentialFromConsole", NULL), "true");
    json_decref(rec);
    who.id.console_session = false;
    rec = record_of(&rq, 0, KMS_OK, "");
    assert_null(json_object_get(rec, "sessionCredentialFromConsole"));
    json_decref(rec);
    who.id = saved;
}

/* The writer alone: a failure is sticky and reported once, at the end. */
static void test_writer_fails_closed(void **state)
{
    (void)state;
    char storage[16];
    kms_json_out o;
    const char *text = NULL;
    size_t len = 0;
    kms_json_out_init(&o, storage, sizeof storage);
    kms_json_out_begin_object(&o);
    kms_json_out_key(&o, "a");
    kms_json_out_string(&o, "not UTF-8 \xff");
    kms_json_out_key(&o, "b");
    kms_json_out_string(&o, "fine");
    kms_json_out_end_object(&o);
    assert_int_equal(kms_json_out_finish(&o, &text, &len), -1);
    assert_null(text);
    assert_string_equal(o.why, "a member is not UTF-8");
    kms_json_out_clean_up(&o);
    kms_json_out_init(&o, storage, sizeof storage);
    kms_json_out_begin_array(&o);
    kms_json_out_string(&o, NULL);
    kms_json_out_end_array(&o);
    assert_int_equal(kms_json_out_finish(&o, &text, &len), -1);
    kms_json_out_clean_up(&o);
}

static int setup(void **state)
{
    (void)state;
    memset(&client, 0, sizeof client);
    snprintf(client.cfg.region, sizeof client.cfg.region, "eu-west-1");
    snprintf(client.cfg.account_id, sizeof client.cfg.account_id, "111122223333");
    snprintf(client.access_key_id, sizeof client.access_key_id, "AKIAEXAMPLE");
    client.user_agent = "kms-test/1";
    memset(&who, 0, sizeof who);
    snprintf(who.id.type, sizeof who.id.type, "IAMUser");
    snprintf(who.id.arn, sizeof who.id.arn, "arn:aws:iam::111122223333:user/alice");
    snprintf(who.id.account_id, sizeof who.id.account_id, "111122223333");
    snprintf(who.id.principal_id, sizeof who.id.principal_id, "AIDAEXAMPLE");
    snprintf(who.id.user_name, sizeof who.id.user_name, "alice");
    snprintf(who.id.access_key_id, sizeof who.id.access_key_id, "AKIAEXAMPLE");
    return kms_util_init();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typed_tricky),
        cmocka_unit_test(test_typed_shapes),
        cmocka_unit_test(test_specials_at_every_offset),
        cmocka_unit_test(test_identities),
        cmocka_unit_test(test_json_requests),
        cmocka_unit_test(test_writer_fails_closed),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_kms_request_shapes),
        cmocka_unit_test(test_service_event),
        cmocka_unit_test(test_sts_credentials),
        cmocka_unit_test(test_console_sign_in),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
