/* The service's side of the audit trail: the digest key in the HSM, opening the trail, and the
 * CloudTrail record of every request (CloudTrail User Guide, "CloudTrail record contents").
 * src/audit writes, chains and signs; this file decides what a record says. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "service/audit_trail.h"
#include "service/internal_keys.h"
#include "service/ops.h"
#include "util/secmem.h"
#include "util/util.h"

#define EVENT_VERSION "1.08"

char *kms_audit_trail_dir(const char *home)
{
    return kms_path_join(home, "audit");
}

static int digest_sign(void *arg, const uint8_t digest[32], uint8_t **sig, size_t *sig_len)
{
    return kms_internal_keys_audit_sign(arg, digest, sig, sig_len);
}

/* kms_audit_signer.anchor_get over the HSM handle arg: *text NULL when the token holds no anchor
 * yet. A NUL byte inside the value becomes '?', so that the text stays whole and is found
 * malformed (audit.h parses it strictly) instead of being cut short where the NUL was. */
static int anchor_get(void *arg, char **text)
{
    uint8_t *value = NULL;
    size_t len = 0;
    *text = NULL;
    if (kms_internal_keys_anchor_get(arg, &value, &len) != 0) {
        return kms_last_error() == KMS_ERR_NOT_FOUND ? 0 : -1;
    }
    for (size_t i = 0; i < len; i++) {
        value[i] = value[i] == '\0' ? '?' : value[i];
    }
    *text = (char *)value; /* kms_internal_keys_anchor_get ends it with a NUL */
    return 0;
}

static int anchor_set(void *arg, const char *text)
{
    return kms_internal_keys_anchor_set(arg, text);
}

/* kms_audit_acker.mac: arg is an HMAC-SHA-256 context keyed with the ack key (ack_key), copied
 * for each MAC so that threads share it read-only. */
static int ack_mac(void *arg, const uint8_t hash[32], uint8_t mac[32])
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(arg);
    size_t len = 0;
    bool ok = ctx != NULL && EVP_MAC_update(ctx, hash, 32) == 1 &&
              EVP_MAC_final(ctx, mac, &len, 32) == 1 && len == 32;
    EVP_MAC_CTX_free(ctx);
    KMS_ENSURE(ok, KMS_ERR_INTERNAL, "HMAC-SHA-256 failed");
    return 0;
}

int kms_audit_trail_home_create(const char *home, kms_hsm *hsm)
{
    uint8_t *spki = NULL;
    size_t n = 0;
    char *dir = kms_audit_trail_dir(home);
    int r = dir != NULL && kms_internal_keys_audit_key_create(hsm, &spki, &n) == 0 &&
                    kms_internal_keys_audit_ack_create(hsm) == 0 &&
                    kms_audit_create(dir, spki, n) == 0
                ? 0
                : -1;
    free(spki);
    free(dir);
    return r;
}

/* An HMAC-SHA-256 context keyed with key. */
static EVP_MAC_CTX *hmac_keyed(const uint8_t *key, size_t len)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (ctx != NULL && EVP_MAC_init(ctx, key, len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    EVP_MAC_free(mac);
    return ctx;
}

/* A home made before acks: the key is made once, under the trail's LOCK held exclusively, so
 * that processes starting together do not each make one (two objects of one label would stop
 * every command). */
static int ack_key_create(kms_client *c, uint8_t *key)
{
    char *dir = kms_audit_trail_dir(c->home);
    char *lock = dir != NULL ? kms_path_join(dir, "LOCK") : NULL;
    int fd = -1;
    int r = lock == NULL ? kms_raise(KMS_ERR_INTERNAL, "out of memory")
                         : kms_file_lock(lock, true, &fd);
    if (r == 0) {
        r = kms_internal_keys_audit_ack_key(c->hsm, key);
        if (r != 0 && kms_last_error() == KMS_ERR_NOT_FOUND) {
            r = kms_internal_keys_audit_ack_create(c->hsm);
            if (r == 0) {
                r = kms_internal_keys_audit_ack_key(c->hsm, key);
            }
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    free(lock);
    free(dir);
    return r;
}

/* The key that acknowledges records, read from the token through locked memory into an HMAC
 * context (OpenSSL wipes it when freed): a home made before acks has none yet, and gets it now. */
static int ack_key(kms_client *c)
{
    if (c->audit_ack_mac != NULL) {
        return 0;
    }
    uint8_t *key = kms_secure_alloc(KMS_AUDIT_ACK_KEY_LEN);
    KMS_ENSURE(key != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = kms_internal_keys_audit_ack_key(c->hsm, key);
    if (r != 0 && kms_last_error() == KMS_ERR_NOT_FOUND) {
        r = ack_key_create(c, key);
    }
    if (r == 0 && (c->audit_ack_mac = hmac_keyed(key, KMS_AUDIT_ACK_KEY_LEN)) == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "cannot set up HMAC-SHA-256");
    }
    kms_secure_free(key);
    return r;
}

/* The digest key's public half. A home made before the audit trail existed has neither the key
 * nor HOME/audit: both are created then. A home whose trail exists but whose key is gone cannot
 * sign: refused. */
static int load_spki(kms_client *c, const char *dir)
{
    if (c->audit_spki != NULL) {
        return ack_key(c);
    }
    if (kms_internal_keys_audit_public_key(c->hsm, &c->audit_spki, &c->audit_spki_len) == 0) {
        return ack_key(c);
    }
    if (kms_last_error() != KMS_ERR_NOT_FOUND) {
        return -1;
    }
    KMS_ENSURE(!kms_path_exists(dir), KMS_ERR_AUDIT,
               "the audit digest key (%s) is missing from the HSM, so the trail in %s cannot be "
               "signed; restore the token from a backup",
               KMS_AUDIT_KEY_LABEL, dir);
    KMS_GUARD(kms_audit_trail_home_create(c->home, c->hsm));
    KMS_GUARD(kms_internal_keys_audit_public_key(c->hsm, &c->audit_spki, &c->audit_spki_len));
    return ack_key(c);
}

int kms_audit_trail_spki_loaded(kms_client *c)
{
    char *dir = kms_audit_trail_dir(c->home);
    KMS_ENSURE(dir != NULL, KMS_ERR_INTERNAL, "out of memory");
    pthread_mutex_lock(&c->audit_lock);
    int r = load_spki(c, dir);
    pthread_mutex_unlock(&c->audit_lock);
    free(dir);
    return r;
}

int kms_audit_trail_of_client(kms_client *c, kms_audit **out)
{
    int r = -1;
    char *dir = kms_audit_trail_dir(c->home);
    KMS_ENSURE(dir != NULL, KMS_ERR_INTERNAL, "out of memory");
    pthread_mutex_lock(&c->audit_lock);
    if (c->audit == NULL && load_spki(c, dir) == 0) {
        kms_audit_options o = {
            .dir = dir,
            .account_id = c->cfg.account_id,
            .region = c->cfg.region,
            .digest_period = c->cfg.audit_digest_period,
            .signer = {.sign = digest_sign,
                       .arg = c->hsm,
                       .spki = c->audit_spki,
                       .spki_len = c->audit_spki_len,
                       .anchor_get = anchor_get,
                       .anchor_set = anchor_set,
                       .ack = {ack_mac, c->audit_ack_mac}},
        };
        c->audit = kms_audit_open(&o);
    }
    if (c->audit != NULL) {
        if (kms_audit_ready(c->audit)) {
            *out = c->audit;
            r = 0;
        } else {
            kms_raise(KMS_ERR_AUDIT,
                      "the audit log directory %s is gone: operations are refused until it is "
                      "restored from a backup",
                      dir);
        }
    }
    pthread_mutex_unlock(&c->audit_lock);
    free(dir);
    return r;
}

void kms_audit_trail_resource(kms_request *rq, const char *arn)
{
    for (int i = 0; i < rq->resource_count; i++) {
        if (strcmp(rq->resources[i], arn) == 0) {
            return;
        }
    }
    if (arn != NULL && arn[0] != '\0' && rq->resource_count < 2) {
        snprintf(rq->resources[rq->resource_count++], KMS_ARN_MAX, "%s", arn);
    }
}

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
    char request_id[KMS_UUID_STR_LEN + 1];
    json_t *params = NULL, *response = NULL, *identity = NULL, *res = NULL;
    json_t *agent = NULL, *error_message = NULL, *event_name = NULL;
    *out = NULL;
    kms_time_iso8601(rq->started, when);
    if (kms_uuid_new(event_id) != 0) {
        goto out;
    }
    if (kms_uuid_new(request_id) != 0) {
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
    identity = user_identity(rq);
    res = resources(rq);
    /* user_agent is set by kms_client_open. */
    agent = kms_audit_json_text(rq->service ? "kms.amazonaws.com" : rq->client->user_agent);
    error_message = rc != 0 ? kms_audit_json_text(message) : NULL;
    /* The caller's operation name: an unknown one is recorded too, and need not be UTF-8. */
    event_name = kms_audit_json_text(name);
    if (identity == NULL || res == NULL || agent == NULL || event_name == NULL ||
        (rc != 0 && error_message == NULL)) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    const kms_config *cfg = &rq->client->cfg;
    /* In-process calls come from this machine (as aws:SourceIp says); the service's own work
     * from the service. */
    const char *ip = rq->service ? source : "127.0.0.1";
    /* s* and O*: members left out when NULL (errorCode and errorMessage of a success, the
     * serviceEventDetails of an API call). */
    *out = json_pack(
        "{s:s, s:O, s:s, s:s, s:O, s:s, s:s, s:O, s:s*, s:O*, s:O, s:O, s:s, s:s, "
        "s:b, s:O*, s:O, s:s, s:b, s:s, s:s}",
        "eventVersion", EVENT_VERSION, "userIdentity", identity, "eventTime", when, "eventSource",
        source, "eventName", event_name, "awsRegion", cfg->region, "sourceIPAddress", ip,
        "userAgent", agent, "errorCode", rc != 0 ? kms_error_name(err) : NULL, "errorMessage",
        error_message, "requestParameters", params, "responseElements", response, "requestID",
        request_id, "eventID", event_id, "readOnly", ro, "serviceEventDetails", rq->service_details,
        "resources", res, "eventType", rq->service ? "AwsServiceEvent" : "AwsApiCall",
        "managementEvent", 1, "recipientAccountId", cfg->account_id, "eventCategory", "Management");
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
    json_decref(agent);
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
    if (rc != 0) {
        kms_raise(err, "%s", message); /* the request's own error, unchanged */
    }
    return rc;
}

/* ---- The anchor and what readers trust ----------------------------------------------------- */

int kms_audit_trail_trust_load(kms_client *c, kms_trail_trust *t)
{
    memset(t, 0, sizeof *t);
    if ((t->dir = kms_audit_trail_dir(c->home)) == NULL ||
        (t->index = kms_path_join(c->home, "audit-index.db")) == NULL) {
        kms_audit_trail_trust_clean_up(t);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    if (kms_audit_trail_spki_loaded(c) != 0 ||
        kms_audit_trail_read_anchor(c, t->dir, &t->anchor) != 0) {
        kms_audit_trail_trust_clean_up(t);
        return -1;
    }
    t->trust = (kms_audit_trust){
        .anchor = t->anchor, .acker = {ack_mac, c->audit_ack_mac}, .index = t->index};
    return 0;
}

void kms_audit_trail_trust_clean_up(kms_trail_trust *t)
{
    free(t->dir);
    free(t->anchor);
    free(t->index);
    memset(t, 0, sizeof *t);
}

/* The anchor, read from the HSM under a shared hold of the trail's LOCK, so that a seal moving
 * it (create the new object, then destroy the old) is never seen half done; a trail without
 * LOCK is read as it is. */
int kms_audit_trail_read_anchor(kms_client *c, const char *dir, char **anchor)
{
    *anchor = NULL;
    char *lock = kms_path_join(dir, "LOCK");
    int lock_fd = -1;
    int r = lock == NULL ? kms_raise(KMS_ERR_INTERNAL, "out of memory")
                         : kms_file_lock(lock, false, &lock_fd);
    if (r == 0) {
        r = anchor_get(c->hsm, anchor);
        if (lock_fd >= 0) {
            close(lock_fd);
        }
    }
    free(lock);
    return r;
}
