/* The CloudTrail record of every request (CloudTrail User Guide, "CloudTrail record contents"):
 * what it says, built whole or not at all, and written durably before the caller sees the
 * result. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "service/audit_trail.h"
#include "service/ops.h"
#include "util/json_out.h"
#include "util/util.h"

#define EVENT_VERSION "1.08"
/* The longest User-Agent and Host header kept in a record (bytes): a user agent is a short
 * product list, and a record has a size limit. */
#define KMS_AUDIT_USER_AGENT_MAX 256
#define KMS_AUDIT_CALLER_TEXT_MAX 256
/* The stack storage a record is written into; a longer one moves to the heap. */
#define KMS_AUDIT_RECORD_STACK 4096

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
                                            "GenerateDataKeyPair",
                                            "GenerateDataKeyPairWithoutPlaintext",
                                            "DeriveSharedSecret",
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
        "SharedSecret",
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

/* The typed API has no JSON request: the parameters it had; null when none. */
static void put_typed_parameters(kms_json_out *o, const kms_request *rq)
{
    bool ctx = rq->enc_ctx != NULL && rq->enc_ctx->count > 0;
    if (rq->key_ref == NULL && !ctx) {
        kms_json_out_null(o);
        return;
    }
    kms_json_out_begin_object(o);
    if (rq->key_ref != NULL) {
        kms_json_out_key(o, "keyId");
        kms_json_out_text(o, rq->key_ref);
    }
    if (ctx) {
        kms_json_out_key(o, "encryptionContext");
        put_context(o, rq->enc_ctx);
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

static void put_user_identity(kms_json_out *o, const kms_request *rq)
{
    kms_json_out_begin_object(o);
    kms_json_out_key(o, "type");
    if (rq->service) {
        /* CloudTrail: scheduled work of the service itself (a rotation, the end of a deletion
         * window, a certificate's renewal) is an AwsServiceEvent invoked by the service. */
        const char *name = NULL;
        kms_json_out_string(o, "AWSService");
        kms_json_out_key(o, "accountId");
        kms_json_out_string(o, rq->client->cfg.account_id);
        kms_json_out_key(o, "invokedBy");
        kms_json_out_string(o, event_source(rq->operation != NULL ? rq->operation : "", &name));
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
 * (*text malloc'd); empty_null: NULL (written as null) when it has no members. */
static int sanitized_text(json_t *v, bool empty_null, char **text)
{
    *text = NULL;
    json_t *p = sanitize(v);
    KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory");
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
        utf8_cut(buf, n);
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
        kms_json_out_string(o, source);
        kms_json_out_key(o, "userAgent");
        kms_json_out_text(o, "kms.amazonaws.com");
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
} record_facts;

/* The record: every member in CloudTrail's order. trimmed: a request too large to record
 * whole (a huge policy document) loses its parameters, and says so. */
static void put_record(kms_json_out *o, const kms_request *rq, const record_facts *f, bool trimmed)
{
    const kms_config *cfg = &rq->client->cfg;
    kms_json_out_begin_object(o);
    kms_json_out_key(o, "eventVersion");
    kms_json_out_string(o, EVENT_VERSION);
    kms_json_out_key(o, "userIdentity");
    put_user_identity(o, rq);
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
    kms_json_out_key(o, "requestParameters");
    if (trimmed) {
        kms_json_out_null(o);
    } else if (rq->req != NULL) {
        put_raw_or_null(o, f->params);
    } else {
        put_typed_parameters(o, rq);
    }
    /* responseElements: CloudTrail leaves it null for reads and failures. */
    kms_json_out_key(o, "responseElements");
    put_raw_or_null(o, trimmed ? NULL : f->response);
    kms_json_out_key(o, "requestID");
    kms_json_out_string(o, rq->request_id);
    kms_json_out_key(o, "eventID");
    kms_json_out_string(o, f->event_id);
    kms_json_out_key(o, "readOnly");
    kms_json_out_bool(o, f->ro);
    if (rq->service_details != NULL) {
        kms_json_out_key(o, "serviceEventDetails");
        put_json(o, rq->service_details);
    }
    kms_json_out_key(o, "resources");
    put_resources(o, rq);
    kms_json_out_key(o, "eventType");
    kms_json_out_string(o, rq->service ? "AwsServiceEvent" : "AwsApiCall");
    kms_json_out_key(o, "managementEvent");
    kms_json_out_bool(o, true);
    kms_json_out_key(o, "recipientAccountId");
    kms_json_out_string(o, cfg->account_id);
    kms_json_out_key(o, "eventCategory");
    kms_json_out_string(o, "Management");
    put_tls_details(o, rq);
    if (trimmed) {
        kms_json_out_key(o, "additionalEventData");
        kms_json_out_begin_object(o);
        kms_json_out_key(o, "omitted");
        kms_json_out_string(o, "parameters too large to record");
        kms_json_out_end_object(o);
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
    f.source = event_source(rq->operation != NULL ? rq->operation : "", &f.name);
    f.ro = read_only(f.source, f.name);
    kms_time_iso8601(rq->started, f.when);
    /* The requestID the caller is told (x-amzn-RequestId), made once. */
    if (rq->request_id[0] == '\0' && kms_uuid_new(rq->request_id) != 0) {
        goto out;
    }
    if (rc == 0) {
        response_resources(rq);
    }
    if (rq->req != NULL && sanitized_text(rq->req, true, &f.params) != 0) {
        goto out;
    }
    if (rc == 0 && !f.ro && rq->resp != NULL && sanitized_text(rq->resp, false, &f.response) != 0) {
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
