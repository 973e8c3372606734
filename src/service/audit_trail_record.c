/* The CloudTrail record of every request (CloudTrail User Guide, "CloudTrail record contents"):
 * what it says, built whole or not at all, and written durably before the caller sees the
 * result. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "service/audit_trail.h"
#include "service/ops.h"
#include "util/util.h"

#define EVENT_VERSION "1.08"
/* The longest User-Agent and Host header kept in a record (bytes): a user agent is a short
 * product list, and a record has a size limit. */
#define KMS_AUDIT_USER_AGENT_MAX 256
#define KMS_AUDIT_CALLER_TEXT_MAX 256

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

/* Members never written to a record, request or response, at any depth: plaintexts, messages
 * and MACs, ciphertexts, passwords, secret access keys, session tokens, MFA seeds and codes. */
static bool secret_member(const char *name)
{
    static const char *const secrets[] = {
        "Plaintext",
        "CiphertextBlob",
        "CiphertextForRecipient",
        "Message",
        "Signature",
        "Mac",
        "SecretAccessKey",
        "SessionToken",
        "Password",
        "OldPassword",
        "NewPassword",
        "AuthenticationCode1",
        "AuthenticationCode2",
        "Base32StringSeed",
        "QRCodePNG",
        "TokenCode",
        "PrivateKeyPlaintext",
        "PrivateKeyCiphertextBlob",
        "PublicKey",
        "PrivateKey",
        "Passphrase",
        "GrantToken",
        "GrantTokens",
    };
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        if (strcasecmp(name, secrets[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Maps whose keys are the caller's data, copied as they are (their values are strings). */
static bool verbatim_map(const char *name)
{
    static const char *const maps[] = {"EncryptionContext", "SourceEncryptionContext",
                                       "DestinationEncryptionContext", "EncryptionContextSubset",
                                       "EncryptionContextEquals"};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        if (strcmp(name, maps[i]) == 0) {
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

/* A request or response as CloudTrail shows it: member names in camelCase ("KeyId" ->
 * "keyId"), secrets left out. NULL on out-of-memory. */
static json_t *sanitize(json_t *v)
{
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (out == NULL || json_array_append_new(out, sanitize(item)) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    if (!json_is_object(v)) {
        return json_copy(v);
    }
    json_t *out = json_object();
    const char *key;
    json_t *member;
    json_object_foreach(v, key, member)
    {
        if (out == NULL || secret_member(key)) {
            continue;
        }
        char name[128];
        size_t n = (size_t)snprintf(name, sizeof name, "%s", key);
        if (n >= sizeof name) {
            utf8_cut(name, sizeof name - 1);
        }
        name[0] = (char)tolower((unsigned char)name[0]);
        json_t *copy = verbatim_map(key) ? json_deep_copy(member) : sanitize(member);
        if (copy == NULL || json_object_set_new(out, name, copy) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* The typed API has no JSON request: the parameters it had. NULL on out-of-memory. */
static json_t *typed_parameters(const kms_request *rq)
{
    json_t *p = json_object();
    json_t *ctx = NULL;
    if (p == NULL) {
        return NULL;
    }
    if (rq->key_ref != NULL &&
        json_object_set_new(p, "keyId", kms_audit_json_text(rq->key_ref)) != 0) {
        goto fail;
    }
    if (rq->enc_ctx == NULL || rq->enc_ctx->count == 0) {
        return p;
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
    if (rq->service) {
        /* CloudTrail: scheduled work of the service itself (a rotation, the end of a deletion
         * window, a certificate's renewal) is an AwsServiceEvent invoked by the service. */
        const char *name = NULL;
        return json_pack("{s:s, s:s, s:s}", "type", "AWSService", "accountId",
                         rq->client->cfg.account_id, "invokedBy",
                         event_source(rq->operation != NULL ? rq->operation : "", &name));
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

/* requestParameters: the request, sanitized; null when it has none. */
static int request_parameters(const kms_request *rq, json_t **out)
{
    *out = NULL;
    json_t *p = rq->req != NULL ? sanitize(rq->req) : typed_parameters(rq);
    KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (json_object_size(p) == 0) {
        json_decref(p);
        p = json_null();
    }
    *out = p;
    return 0;
}

/* responseElements: CloudTrail leaves it null for reads and failures. */
static int response_elements(const kms_request *rq, int rc, bool ro, json_t **out)
{
    *out = NULL;
    json_t *p = rc == 0 && !ro && rq->resp != NULL ? sanitize(rq->resp) : json_null();
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
        o->ip = source;
        o->agent = kms_audit_json_text("kms.amazonaws.com");
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

/* The record of the request, built whole or not at all: every part is made first (any failure
 * fails the record) and the record is one json_pack, which fails if any of them is missing. */
static int build_record(kms_request *rq, int rc, kms_error err, const char *message, json_t **out)
{
    int r = -1;
    const char *name = NULL;
    const char *source = event_source(rq->operation != NULL ? rq->operation : "", &name);
    bool ro = read_only(source, name);
    char when[32];
    char event_id[KMS_UUID_STR_LEN + 1];
    json_t *params = NULL, *response = NULL, *identity = NULL, *res = NULL;
    json_t *error_message = NULL, *event_name = NULL;
    origin from = {0};
    *out = NULL;
    kms_time_iso8601(rq->started, when);
    if (kms_uuid_new(event_id) != 0) {
        goto out;
    }
    /* The requestID the caller is told (x-amzn-RequestId), made once. */
    if (rq->request_id[0] == '\0' && kms_uuid_new(rq->request_id) != 0) {
        goto out;
    }
    if (rc == 0) {
        response_resources(rq);
    }
    if (request_parameters(rq, &params) != 0) {
        goto out;
    }
    if (response_elements(rq, rc, ro, &response) != 0) {
        goto out;
    }
    if (origin_of(rq, source, &from) != 0) {
        goto out;
    }
    identity = user_identity(rq);
    res = resources(rq);
    error_message = rc != 0 ? kms_audit_json_text(message) : NULL;
    /* The caller's operation name: an unknown one is recorded too, need not be UTF-8, and is
     * cut like a header (a name of 300 KB would make the record too long to write, and the
     * refusal of a request would go unrecorded). */
    event_name = caller_text(name, KMS_AUDIT_CALLER_TEXT_MAX);
    if (identity == NULL || res == NULL || event_name == NULL ||
        (rc != 0 && error_message == NULL)) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    const kms_config *cfg = &rq->client->cfg;
    /* s* and O*: members left out when NULL (errorCode and errorMessage of a success, the
     * serviceEventDetails of an API call, the tlsDetails of a call that came over no TLS). */
    *out = json_pack(
        "{s:s, s:O, s:s, s:s, s:O, s:s, s:s, s:O, s:s*, s:O*, s:O, s:O, s:s, s:s, "
        "s:b, s:O*, s:O, s:s, s:b, s:s, s:s, s:O*}",
        "eventVersion", EVENT_VERSION, "userIdentity", identity, "eventTime", when, "eventSource",
        source, "eventName", event_name, "awsRegion", cfg->region, "sourceIPAddress", from.ip,
        "userAgent", from.agent, "errorCode", rc != 0 ? kms_error_name(err) : NULL, "errorMessage",
        error_message, "requestParameters", params, "responseElements", response, "requestID",
        rq->request_id, "eventID", event_id, "readOnly", ro, "serviceEventDetails",
        rq->service_details, "resources", res, "eventType",
        rq->service ? "AwsServiceEvent" : "AwsApiCall", "managementEvent", 1, "recipientAccountId",
        cfg->account_id, "eventCategory", "Management", "tlsDetails", from.tls);
    if (*out == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    json_decref(params);
    json_decref(response);
    json_decref(identity);
    json_decref(res);
    json_decref(from.agent);
    json_decref(from.tls);
    json_decref(error_message);
    json_decref(event_name);
    return r;
}

/* A request too large to record whole (a huge policy document): its parameters go. */
static int trim_record(json_t *rec)
{
    json_t *note = json_pack("{s:s}", "omitted", "parameters too large to record");
    KMS_ENSURE(note != NULL, KMS_ERR_INTERNAL, "out of memory");
    /* json_object_set_new takes note, also when it fails. */
    KMS_ENSURE(json_object_set_new(rec, "additionalEventData", note) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    KMS_ENSURE(json_object_set_new(rec, "requestParameters", json_null()) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    KMS_ENSURE(json_object_set_new(rec, "responseElements", json_null()) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

/* The last check before a record is written: the members every CloudTrail record has, and the
 * errorCode of a failed call. A record without one of them is never written (the call fails). */
static int check_complete(const json_t *rec, int rc)
{
    static const char *const strings[] = {
        "eventVersion", "eventTime",       "eventSource",        "eventName",
        "awsRegion",    "sourceIPAddress", "userAgent",          "requestID",
        "eventID",      "eventType",       "recipientAccountId",
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
static int record_text(kms_request *rq, int rc, kms_error err, const char *message, char **text)
{
    int r = -1;
    json_t *rec = NULL;
    *text = NULL;
    if (build_record(rq, rc, err, message, &rec) != 0) {
        goto out;
    }
    char *s = json_dumps(rec, JSON_COMPACT);
    if (s != NULL && strlen(s) > KMS_AUDIT_RECORD_MAX - 256) {
        free(s);
        s = NULL;
        if (trim_record(rec) != 0) {
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

int kms_audit_trail_request(kms_request *rq, int rc)
{
    kms_error err = kms_last_error();
    char message[1024];
    snprintf(message, sizeof message, "%s", kms_last_error_message());
    if (rq->client == NULL || rq->client->audit == NULL) {
        /* The trail never opened (kms_gate_begin raised why): nothing runs without it. */
        return -1;
    }
    kms_audit *a = rq->client->audit;
    char *text = NULL;
    if (record_text(rq, rc, err, message, &text) != 0) {
        /* No record, no result (fail closed): the announcement of kms_gate_begin ends here. */
        kms_audit_withdraw(a);
        return -1;
    }
    int w = kms_audit_append(a, text, strlen(text));
    free(text);
    if (w != 0) {
        return -1;
    }
    rq->recorded = true;
    if (rc != 0) {
        kms_raise(err, "%s", message); /* the request's own error, unchanged */
    }
    return rc;
}
