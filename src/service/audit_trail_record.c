/* The CloudTrail record of every request (CloudTrail User Guide, "CloudTrail record contents"):
 * what it says, built whole or not at all, and written durably before the caller sees the
 * result. */
#include <stdlib.h>
#include <string.h>

#include "service/audit_trail.h"
#include "service/audit_trail_shape.h"
#include "service/ops.h"
#include "util/json_out.h"
#include "util/util.h"

/* CloudTrail record version 1.11 (CloudTrail User Guide, "CloudTrail record contents"), with
 * the members the versions since 1.08 added that apply here: sessionCredentialFromConsole,
 * additionalEventData.keyMaterialId (KMS), tlsDetails, eventCategory. Readers accept every
 * earlier version (trails written before keep their 1.08 records). */
#define EVENT_VERSION "1.11"
/* What AWS writes as the caller, source and user agent of its own KMS work (RotateKey,
 * DeleteKey: AWS KMS Developer Guide, CloudTrail examples). */
#define SERVICE_INTERNAL "AWS Internal"
/* The longest User-Agent and Host header kept in a record (bytes): a user agent is a short
 * product list, and a record has a size limit. */
#define KMS_AUDIT_USER_AGENT_MAX 256
#define KMS_AUDIT_CALLER_TEXT_MAX 256
/* The stack storage a record is written into; a longer one moves to the heap. */
#define KMS_AUDIT_RECORD_STACK 4096

/* ---- Writing a record ------------------------------------------------------------------------ *
 * The record is written straight into a buffer (util/json_out.h), member by member in
 * CloudTrail's order, byte for byte as the jansson tree it replaced was dumped (compact): no
 * tree and few allocations per call. Only JSON the caller sent (kms_call's request and response,
 * sanitized) still goes through jansson. */

/* Whether a and b are the same text once each is made UTF-8 as kms_json_out_text makes it
 * (bytes above 0x7f as '?' in a text that is not UTF-8). */
static bool same_text(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na != nb) {
        return false;
    }
    bool ascii_a = !kms_json_out_utf8_valid(a, na), ascii_b = !kms_json_out_utf8_valid(b, nb);
    for (size_t i = 0; i < na; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        x = ascii_a && x > 0x7f ? '?' : x;
        y = ascii_b && y > 0x7f ? '?' : y;
        if (x != y) {
            return false;
        }
    }
    return true;
}

/* The encryption context as a JSON object: a key given twice keeps its first place and its last
 * value, as a JSON object built member by member does. */
static void put_context(kms_json_out *o, const kms_encryption_context *ec)
{
    const kms_context_entry *e = ec->entries;
    for (size_t i = 0; i < ec->count; i++) {
        if (e[i].key == NULL || e[i].value == NULL) {
            kms_json_out_fail(o, "an encryption context entry has no key or value");
            return;
        }
    }
    kms_json_out_begin_object(o);
    for (size_t i = 0; i < ec->count; i++) {
        bool seen = false;
        size_t last = i;
        for (size_t j = 0; j < i && !seen; j++) {
            seen = same_text(e[j].key, e[i].key);
        }
        for (size_t j = i + 1; j < ec->count && !seen; j++) {
            last = same_text(e[j].key, e[i].key) ? j : last;
        }
        if (seen) {
            continue;
        }
        kms_json_out_key_text(o, e[i].key);
        kms_json_out_text(o, e[last].value);
    }
    kms_json_out_end_object(o);
}

/* The typed API has no JSON request: the parameters it had, with what AWS fills in (Encrypt's
 * and Decrypt's encryptionAlgorithm, Decrypt's keyId as the key ARN); null when none (also for
 * a network request refused before it was read). */
static void put_typed_parameters(kms_json_out *o, const kms_request *rq, const char *name)
{
    bool ctx = rq->enc_ctx != NULL && rq->enc_ctx->count > 0;
    bool decrypt = strcmp(name, "Decrypt") == 0;
    bool alg = decrypt || strcmp(name, "Encrypt") == 0;
    const char *key = decrypt && rq->resource_count > 0 ? rq->resources[0] : rq->key_ref;
    if (key == NULL && !ctx) {
        kms_json_out_null(o);
        return;
    }
    kms_json_out_begin_object(o);
    if (key != NULL) {
        kms_json_out_key(o, "keyId");
        kms_json_out_text(o, key);
    }
    if (ctx) {
        kms_json_out_key(o, "encryptionContext");
        put_context(o, rq->enc_ctx);
    }
    if (alg) {
        kms_json_out_key(o, "encryptionAlgorithm");
        kms_json_out_string(o, "SYMMETRIC_DEFAULT");
    }
    kms_json_out_end_object(o);
}

static void put_session_context(kms_json_out *o, const kms_identity *id)
{
    char created[32];
    kms_time_iso8601(id->session_issued, created);
    kms_json_out_begin_object(o);
    if (id->role_arn[0] != '\0') {
        /* principalId of a role session is "AROA...:SESSION"; the issuer is the role. */
        char role_id[160];
        snprintf(role_id, sizeof role_id, "%s", id->principal_id);
        char *colon = strchr(role_id, ':');
        if (colon != NULL) {
            *colon = '\0';
        }
        kms_json_out_key(o, "sessionIssuer");
        kms_json_out_begin_object(o);
        kms_json_out_key(o, "type");
        kms_json_out_string(o, "Role");
        kms_json_out_key(o, "principalId");
        kms_json_out_string(o, role_id);
        kms_json_out_key(o, "arn");
        kms_json_out_string(o, id->role_arn);
        kms_json_out_key(o, "accountId");
        kms_json_out_string(o, id->account_id);
        kms_json_out_key(o, "userName");
        kms_json_out_string(o, id->role_name);
        kms_json_out_end_object(o);
    }
    kms_json_out_key(o, "attributes");
    kms_json_out_begin_object(o);
    kms_json_out_key(o, "creationDate");
    kms_json_out_string(o, created);
    kms_json_out_key(o, "mfaAuthenticated");
    kms_json_out_string(o, id->mfa_authenticated ? "true" : "false");
    kms_json_out_end_object(o);
    kms_json_out_end_object(o);
}

static void put_user_identity(kms_json_out *o, const kms_request *rq, const char *source)
{
    kms_json_out_begin_object(o);
    if (rq->service && strcmp(source, "kms.amazonaws.com") == 0) {
        /* KMS's own work (RotateKey, DeleteKey) as AWS records it: the account, invoked by
         * "AWS Internal", and no type. */
        kms_json_out_key(o, "accountId");
        kms_json_out_string(o, rq->client->cfg.account_id);
        kms_json_out_key(o, "invokedBy");
        kms_json_out_string(o, SERVICE_INTERNAL);
        kms_json_out_end_object(o);
        return;
    }
    kms_json_out_key(o, "type");
    if (rq->service) {
        /* CloudTrail: scheduled work of another service of ours (a certificate's renewal) is an
         * AwsServiceEvent invoked by that service. */
        kms_json_out_string(o, "AWSService");
        kms_json_out_key(o, "accountId");
        kms_json_out_string(o, rq->client->cfg.account_id);
        kms_json_out_key(o, "invokedBy");
        kms_json_out_string(o, source);
    } else if (rq->who == NULL) {
        /* Not authenticated: what the caller presented. */
        kms_json_out_string(o, "Unknown");
        kms_json_out_key(o, "accessKeyId");
        kms_json_out_string(o, rq->client != NULL ? rq->client->access_key_id : "");
    } else {
        const kms_identity *id = &rq->who->id;
        kms_json_out_string(o, id->type);
        kms_json_out_key(o, "principalId");
        kms_json_out_string(o, id->principal_id);
        kms_json_out_key(o, "arn");
        kms_json_out_string(o, id->arn);
        kms_json_out_key(o, "accountId");
        kms_json_out_string(o, id->account_id);
        /* An empty access key id or user name is left out. */
        if (id->access_key_id[0] != '\0') {
            kms_json_out_key(o, "accessKeyId");
            kms_json_out_string(o, id->access_key_id);
        }
        if (id->user_name[0] != '\0') {
            kms_json_out_key(o, "userName");
            kms_json_out_string(o, id->user_name);
        }
        if (id->session_expiry != 0) {
            kms_json_out_key(o, "sessionContext");
            put_session_context(o, id);
        }
    }
    kms_json_out_end_object(o);
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

static void put_resources(kms_json_out *o, const kms_request *rq)
{
    kms_json_out_begin_array(o);
    for (int i = 0; i < rq->resource_count; i++) {
        char account[13] = "";
        if (kms_policy_arn_account(rq->resources[i], account) != 0) {
            account[0] = '\0';
        }
        kms_json_out_begin_object(o);
        kms_json_out_key(o, "accountId");
        kms_json_out_string(o, account);
        kms_json_out_key(o, "type");
        kms_json_out_string(o, resource_type(rq->resources[i]));
        kms_json_out_key(o, "ARN");
        kms_json_out_string(o, rq->resources[i]);
        kms_json_out_end_object(o);
    }
    kms_json_out_end_array(o);
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

/* A JSON value of the caller's (kms_call's request or response), sanitized, as compact text
 * (*text malloc'd); empty_null: NULL (written as null) when it has no members. A KMS request
 * (defaults_of: its event name) gets the parameters AWS fills in. */
static int sanitized_text(const kms_request *rq, json_t *v, bool empty_null,
                          const char *defaults_of, char **text)
{
    *text = NULL;
    json_t *p = kms_audit_trail_sanitize(v);
    KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (defaults_of != NULL &&
        kms_audit_trail_request_defaults(
            defaults_of, rq->resource_count > 0 ? rq->resources[0] : NULL, p) != 0) {
        json_decref(p);
        return -1;
    }
    if (empty_null && json_object_size(p) == 0) {
        json_decref(p);
        return 0;
    }
    *text = json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(p);
    KMS_ENSURE(*text != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

/* JSON text of the caller's made before (text malloc'd), or null for NULL. */
static void put_raw_or_null(kms_json_out *o, const char *text)
{
    if (text == NULL) {
        kms_json_out_null(o);
    } else {
        kms_json_out_raw(o, text, strlen(text));
    }
}

/* A JSON value of the service's own (serviceEventDetails), as jansson writes it. */
static void put_json(kms_json_out *o, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        kms_json_out_fail(o, "out of memory");
        return;
    }
    kms_json_out_raw(o, text, strlen(text));
    free(text);
}

/* A text of the caller's (a header), cut to at most n bytes (a whole character), as text. */
static void put_caller_text(kms_json_out *o, const char *value, size_t n)
{
    char buf[KMS_AUDIT_CALLER_TEXT_MAX + 1];
    if (n > KMS_AUDIT_CALLER_TEXT_MAX) {
        n = KMS_AUDIT_CALLER_TEXT_MAX;
    }
    size_t len = (size_t)snprintf(buf, n + 1, "%s", value != NULL ? value : "");
    if (len > n) {
        kms_audit_trail_utf8_cut(buf, n);
    }
    kms_json_out_text(o, buf);
}

/* Where the request came from: sourceIPAddress and userAgent as CloudTrail writes them for a
 * network request; this machine and the client's user agent for an in-process call; the
 * service for its own work. */
static void put_origin(kms_json_out *o, const kms_request *rq, const char *source)
{
    const kms_gate_caller *caller = rq->caller;
    const kms_network_request *net = caller != NULL ? caller->net : NULL;
    kms_json_out_key(o, "sourceIPAddress");
    if (rq->service) {
        bool kms = strcmp(source, "kms.amazonaws.com") == 0;
        kms_json_out_string(o, kms ? SERVICE_INTERNAL : source);
        kms_json_out_key(o, "userAgent");
        kms_json_out_text(o, kms ? SERVICE_INTERNAL : "kms.amazonaws.com");
    } else if (net == NULL) {
        kms_json_out_string(o, "127.0.0.1");
        kms_json_out_key(o, "userAgent");
        /* user_agent is set by kms_client_open. */
        kms_json_out_text(o, rq->client->user_agent);
    } else {
        kms_json_out_string(o, net->source_ip != NULL ? net->source_ip : "");
        kms_json_out_key(o, "userAgent");
        put_caller_text(o, caller->user_agent, KMS_AUDIT_USER_AGENT_MAX);
    }
}

/* CloudTrail User Guide, "tlsDetails": the TLS version, the cipher suite, and the host header
 * the client sent; left out of a call that came over no TLS. */
static void put_tls_details(kms_json_out *o, const kms_request *rq)
{
    const kms_gate_caller *caller = rq->caller;
    const kms_network_request *net = caller != NULL ? caller->net : NULL;
    if (net == NULL || net->tls_version == NULL) {
        return;
    }
    kms_json_out_key(o, "tlsDetails");
    kms_json_out_begin_object(o);
    kms_json_out_key(o, "tlsVersion");
    kms_json_out_string(o, net->tls_version);
    kms_json_out_key(o, "cipherSuite");
    kms_json_out_string(o, net->cipher_suite != NULL ? net->cipher_suite : "");
    kms_json_out_key(o, "clientProvidedHostHeader");
    put_caller_text(o, caller->host, KMS_AUDIT_CALLER_TEXT_MAX);
    kms_json_out_end_object(o);
}

/* What a record says beyond the request itself, worked out once for both attempts (whole, and
 * trimmed when too long). */
typedef struct record_facts {
    int rc;
    const char *error_code; /* NULL for a success */
    const char *message;
    const char *event_id;
    const char *source, *name;
    bool ro;
    char when[32];
    char *params;   /* kms_call's request, sanitized (malloc'd; NULL: null or typed) */
    char *response; /* kms_call's response, sanitized (malloc'd; NULL: null) */
    bool console;   /* a console sign-in (signin.amazonaws.com ConsoleLogin) */
} record_facts;

/* additionalEventData (after responseElements, as CloudTrail places it): the key material the
 * request used (AWS KMS Developer Guide, the Encrypt, Decrypt, GenerateDataKey and ReEncrypt
 * examples: keyMaterialId; ReEncrypt: sourceKeyMaterialId and destinationKeyMaterialId), what
 * the caller supplied (a ConsoleLogin's), and the note of a trimmed record. Left out when there
 * is nothing to say. */
static void put_additional_data(kms_json_out *o, const kms_request *rq, const record_facts *f,
                                bool trimmed)
{
    bool two = strcmp(f->name, "ReEncrypt") == 0;
    bool material = rq->key_material[0][0] != '\0' || rq->key_material[1][0] != '\0';
    if (!material && rq->additional_event_data == NULL && !trimmed) {
        return;
    }
    kms_json_out_key(o, "additionalEventData");
    if (rq->additional_event_data != NULL && !trimmed) {
        put_json(o, rq->additional_event_data);
        return;
    }
    kms_json_out_begin_object(o);
    for (int i = 0; i < 2; i++) {
        if (rq->key_material[i][0] == '\0') {
            continue;
        }
        kms_json_out_key(o, !two     ? "keyMaterialId"
                            : i == 0 ? "sourceKeyMaterialId"
                                     : "destinationKeyMaterialId");
        kms_json_out_string(o, rq->key_material[i]);
    }
    if (trimmed) {
        kms_json_out_key(o, "omitted");
        kms_json_out_string(o, "parameters too large to record");
    }
    kms_json_out_end_object(o);
}

/* CloudTrail's eventType: the service's own work, a console sign-in, or an API call. */
static const char *event_type(const kms_request *rq, const record_facts *f)
{
    return rq->service ? "AwsServiceEvent" : f->console ? "AwsConsoleSignIn" : "AwsApiCall";
}

/* The record: every member in CloudTrail's order. trimmed: a request too large to record
 * whole (a huge policy document) loses its parameters, and says so. */
static void put_record(kms_json_out *o, const kms_request *rq, const record_facts *f, bool trimmed)
{
    const kms_config *cfg = &rq->client->cfg;
    kms_json_out_begin_object(o);
    kms_json_out_key(o, "eventVersion");
    kms_json_out_string(o, EVENT_VERSION);
    kms_json_out_key(o, "userIdentity");
    put_user_identity(o, rq, f->source);
    kms_json_out_key(o, "eventTime");
    kms_json_out_string(o, f->when);
    kms_json_out_key(o, "eventSource");
    kms_json_out_string(o, f->source);
    /* The caller's operation name: an unknown one is recorded too, need not be UTF-8, and is
     * cut like a header (a name of 300 KB would make the record too long to write, and the
     * refusal of a request would go unrecorded). */
    kms_json_out_key(o, "eventName");
    put_caller_text(o, f->name, KMS_AUDIT_CALLER_TEXT_MAX);
    kms_json_out_key(o, "awsRegion");
    kms_json_out_string(o, cfg->region);
    put_origin(o, rq, f->source);
    if (f->rc != 0) {
        kms_json_out_key(o, "errorCode");
        kms_json_out_string(o, f->error_code);
        kms_json_out_key(o, "errorMessage");
        kms_json_out_text(o, f->message);
    }
    /* requestParameters: null for a console sign-in, as CloudTrail writes it. */
    kms_json_out_key(o, "requestParameters");
    if (trimmed || f->console) {
        kms_json_out_null(o);
    } else if (rq->req != NULL) {
        put_raw_or_null(o, f->params);
    } else {
        put_typed_parameters(o, rq, f->name);
    }
    /* responseElements: CloudTrail leaves it null for failures and reads (but for the
     * credentials STS issues). */
    kms_json_out_key(o, "responseElements");
    put_raw_or_null(o, trimmed ? NULL : f->response);
    put_additional_data(o, rq, f, trimmed);
    /* The service's own work and a console sign-in answer no request: no requestID. */
    if (!rq->service && !f->console) {
        kms_json_out_key(o, "requestID");
        kms_json_out_string(o, rq->request_id);
    }
    kms_json_out_key(o, "eventID");
    kms_json_out_string(o, f->event_id);
    kms_json_out_key(o, "readOnly");
    kms_json_out_bool(o, f->ro);
    kms_json_out_key(o, "resources");
    put_resources(o, rq);
    kms_json_out_key(o, "eventType");
    kms_json_out_string(o, event_type(rq, f));
    kms_json_out_key(o, "managementEvent");
    kms_json_out_bool(o, true);
    kms_json_out_key(o, "recipientAccountId");
    kms_json_out_string(o, cfg->account_id);
    if (rq->service_details != NULL) {
        kms_json_out_key(o, "serviceEventDetails");
        put_json(o, rq->service_details);
    }
    kms_json_out_key(o, "eventCategory");
    kms_json_out_string(o, "Management");
    put_tls_details(o, rq);
    /* CloudTrail 1.09+: a call made with the credentials of a console sign-in says so. */
    if (rq->who != NULL && rq->who->id.console_session && !f->console) {
        kms_json_out_key(o, "sessionCredentialFromConsole");
        kms_json_out_string(o, "true");
    }
    kms_json_out_end_object(o);
}

int kms_audit_trail_record_text(kms_request *rq, int rc, kms_error err, const char *message,
                                const char *event_id, kms_json_out *o)
{
    int r = -1;
    record_facts f;
    const char *text = NULL;
    size_t len = 0;
    memset(&f, 0, sizeof f);
    f.rc = rc;
    f.error_code = rc != 0 ? kms_error_name(err) : NULL;
    f.message = message;
    f.event_id = event_id;
    f.source = kms_audit_trail_event_source(rq->operation != NULL ? rq->operation : "", &f.name);
    f.ro = kms_audit_trail_read_only(f.source, f.name);
    f.console =
        strcmp(f.source, "signin.amazonaws.com") == 0 && strcmp(f.name, "ConsoleLogin") == 0;
    kms_time_iso8601(rq->started, f.when);
    /* The requestID the caller is told (x-amzn-RequestId), made once. */
    if (rq->request_id[0] == '\0' && kms_uuid_new(rq->request_id) != 0) {
        goto out;
    }
    if (rc == 0) {
        response_resources(rq);
    }
    bool kms = strcmp(f.source, "kms.amazonaws.com") == 0;
    if (rq->req != NULL && sanitized_text(rq, rq->req, true, kms ? f.name : NULL, &f.params) != 0) {
        goto out;
    }
    if (f.console && rq->resp != NULL) {
        /* {"ConsoleLogin": "Success"} or "Failure", as CloudTrail writes it (not camelCase). */
        f.response = json_dumps(rq->resp, JSON_COMPACT);
        if (f.response == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
    } else if (rc == 0 && kms_audit_trail_keeps_response(f.source, f.name, f.ro) &&
               rq->resp != NULL && sanitized_text(rq, rq->resp, false, NULL, &f.response) != 0) {
        goto out;
    }
    put_record(o, rq, &f, false);
    if (!o->failed && o->len > KMS_AUDIT_RECORD_MAX - 256) {
        kms_json_out_reset(o);
        put_record(o, rq, &f, true);
    }
    if (kms_json_out_finish(o, &text, &len) != 0) {
        kms_raise(KMS_ERR_INTERNAL,
                  "the audit record of %s cannot be built (%s): it was not "
                  "written, and the request fails",
                  f.name, o->why);
        goto out;
    }
    r = 0;
out:
    free(f.params);
    free(f.response);
    return r;
}

int kms_audit_trail_request(kms_request *rq, int rc)
{
    kms_error err = kms_last_error();
    char message[1024];
    char event_id[KMS_UUID_STR_LEN + 1];
    char storage[KMS_AUDIT_RECORD_STACK];
    kms_json_out o;
    const char *text = NULL;
    size_t len = 0;
    snprintf(message, sizeof message, "%s", kms_last_error_message());
    if (rq->client == NULL || rq->client->audit == NULL) {
        /* The trail never opened (kms_gate_begin raised why): nothing runs without it. */
        return -1;
    }
    kms_audit *a = rq->client->audit;
    kms_json_out_init(&o, storage, sizeof storage);
    if (kms_uuid_new(event_id) != 0 ||
        kms_audit_trail_record_text(rq, rc, err, message, event_id, &o) != 0 ||
        kms_json_out_finish(&o, &text, &len) != 0) {
        /* No record, no result (fail closed): the announcement of kms_gate_begin ends here. */
        kms_json_out_clean_up(&o);
        kms_audit_withdraw(a);
        return -1;
    }
    int w = kms_audit_append(a, text, len);
    kms_json_out_clean_up(&o);
    if (w != 0) {
        return -1;
    }
    rq->recorded = true;
    if (rc != 0) {
        kms_raise(err, "%s", message); /* the request's own error, unchanged */
    }
    return rc;
}
