/* The audit record writer (src/service/audit_trail_record.c, util/json_out.c) against the
 * jansson-built record it replaced: for requests of every shape and for tricky text (quotes,
 * backslashes, control characters, UTF-8 of every length, text that is not UTF-8, duplicate
 * context keys, member names and headers cut mid-character, a record too long to keep its
 * parameters), both must write the same bytes.
 *
 * The reference below is the jansson builder as it was (git history:
 * src/service/audit_trail_record.c before the writer), kept here unchanged but for taking the
 * eventID as a parameter. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kms/kms.h"
#include "service/audit_trail.h"
#include "service/client.h"
#include "service/ops.h"
#include "testutil.h"
#include "util/json_out.h"
#include "util/util.h"

#define EVENT_VERSION "1.08"
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
static int build_record(kms_request *rq, int rc, kms_error err, const char *message,
                        const char *given_event_id, json_t **out)
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
    snprintf(event_id, sizeof event_id, "%s", given_event_id);
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
static int record_text(kms_request *rq, int rc, kms_error err, const char *message,
                       const char *event_id, char **text)
{
    int r = -1;
    json_t *rec = NULL;
    *text = NULL;
    if (build_record(rq, rc, err, message, event_id, &rec) != 0) {
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
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
