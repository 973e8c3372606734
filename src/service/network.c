/* kms_call_network: a request as a network front end (kmsd) received it, authenticated by its
 * SigV4 signature against IAM and run as that caller through kms_call's dispatcher and gate.
 *
 * Which refusals are recorded (issue 17: as useful as CloudTrail, and no unauthenticated flood
 * fills the disk):
 *  - an Authorization header that is missing or cannot be parsed, an unknown or inactive access
 *    key, a session whose token is wrong or that expired or was revoked: not recorded. Such a
 *    request names no account we could attribute it to, and costs an attacker nothing to send;
 *  - a known access key whose signature is wrong, expired, or scoped to another region or
 *    service: recorded as a request of the key's owner (userIdentity as after a successful
 *    authentication, errorCode InvalidSignatureException, no requestParameters: the body is
 *    not the caller's as far as anyone can tell), at most
 *    KMS_NETWORK_REFUSALS_RECORDED per access key and minute, and of at most KMS_NETWORK_KEYS
 *    keys a minute (a key's count is kept for its minute whatever other keys are seen); the rest
 *    are only counted;
 *  - an authenticated request that the front end's admission (throttling) refuses, or that its
 *    policies deny: recorded, as every request of an authenticated caller is. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kms/server.h"
#include "remote/remote.h"
#include "service/dispatch.h"
#include "service/network.h"
#include "service/network_keys.h"
#include "sigv4/sigv4.h"
#include "util/util.h"

/* ---- Access keys seen ----------------------------------------------------------------------- */

typedef struct key_entry {
    char access_key_id[32]; /* "": a free entry */
    int64_t minute;         /* the minute `recorded` counts in */
    unsigned recorded;      /* refused authentications recorded in that minute */
    uint64_t unrecorded;    /* refused authentications not recorded, ever */
    int64_t used_at;        /* when its last use was written to IAM */
    char used_service[KMS_SIGV4_SCOPE_PART_MAX + 1];
    uint64_t last_seen;
} key_entry;

struct kms_network_keys {
    pthread_mutex_t lock;
    uint64_t seen;
    uint64_t unrecorded; /* refused authentications of keys that found no entry */
    key_entry keys[KMS_NETWORK_KEYS];
    kms_signing_cache *signing; /* derived signing keys (network_keys.h) */
};

kms_network_keys *kms_network_keys_new(void)
{
    kms_network_keys *k = calloc(1, sizeof *k);
    if (k == NULL || pthread_mutex_init(&k->lock, NULL) != 0) {
        free(k);
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if ((k->signing = kms_signing_cache_new()) == NULL) {
        kms_network_keys_free(k);
        return NULL;
    }
    return k;
}

void kms_network_keys_free(kms_network_keys *k)
{
    if (k != NULL) {
        kms_signing_cache_free(k->signing);
        pthread_mutex_destroy(&k->lock);
        free(k);
    }
}

/* Whether e may make room: it holds no refusal recorded in this minute (that count must last
 * the minute, or an attacker who sends requests of many keys would reset it). */
static bool evictable(const key_entry *e, int64_t minute)
{
    return e->access_key_id[0] == '\0' || e->minute != minute || e->recorded == 0;
}

/* Under k->lock: the entry of access_key_id, made when there is none (in a free entry, else the
 * least recently seen one that may make room); NULL when every entry holds refusals recorded in
 * this minute. */
static key_entry *key_of(kms_network_keys *k, const char *access_key_id, int64_t now)
{
    key_entry *slot = NULL;
    for (size_t i = 0; i < KMS_NETWORK_KEYS; i++) {
        key_entry *e = &k->keys[i];
        if (strcmp(e->access_key_id, access_key_id) == 0) {
            e->last_seen = ++k->seen;
            return e;
        }
        /* A free entry was never seen (last_seen 0): it goes first. */
        if (evictable(e, now / 60) && (slot == NULL || e->last_seen < slot->last_seen)) {
            slot = e;
        }
    }
    if (slot == NULL) {
        return NULL;
    }
    memset(slot, 0, sizeof *slot);
    snprintf(slot->access_key_id, sizeof slot->access_key_id, "%s", access_key_id);
    slot->last_seen = ++k->seen;
    return slot;
}

/* Whether one more refused authentication of access_key_id is recorded now: at most
 * KMS_NETWORK_REFUSALS_RECORDED per key and minute, and none of a key that finds no entry (so
 * at most KMS_NETWORK_KEYS times that many a minute in all). */
static bool refusal_recorded(kms_network_keys *k, const char *access_key_id, int64_t now)
{
    pthread_mutex_lock(&k->lock);
    key_entry *e = key_of(k, access_key_id, now);
    bool record = false;
    if (e == NULL) {
        k->unrecorded++;
    } else {
        if (e->minute != now / 60) {
            e->minute = now / 60;
            e->recorded = 0;
        }
        record = e->recorded < KMS_NETWORK_REFUSALS_RECORDED;
        if (record) {
            e->recorded++;
        } else {
            e->unrecorded++;
        }
    }
    pthread_mutex_unlock(&k->lock);
    return record;
}

/* Whether the key's last use is to be written now: once a minute, or when the service changed
 * (IAM's last-used is a date for humans; the hot path stays read-only). Not when the key finds
 * no entry (every one holds refusals of this minute): someone who knows 256 access keys could
 * otherwise make every request write to IAM. */
static bool use_due(kms_network_keys *k, const char *access_key_id, const char *service,
                    int64_t now)
{
    pthread_mutex_lock(&k->lock);
    key_entry *e = key_of(k, access_key_id, now);
    bool due = e != NULL &&
               (e->used_at == 0 || now - e->used_at >= 60 || strcmp(e->used_service, service) != 0);
    if (due) {
        e->used_at = now;
        snprintf(e->used_service, sizeof e->used_service, "%s", service);
    }
    pthread_mutex_unlock(&k->lock);
    return due;
}

/* ---- The request ---------------------------------------------------------------------------- */

/* The SigV4 service of an operation: KMS's own names are "kms", the others name theirs
 * ("acm-pca:IssueCertificate" -> "acm-pca"). */
static const char *service_of(const char *operation, char *buf, size_t n)
{
    const char *colon = operation != NULL ? strchr(operation, ':') : NULL;
    if (colon == NULL) {
        return "kms";
    }
    size_t len = (size_t)(colon - operation);
    if (len >= n) {
        len = n - 1;
    }
    memcpy(buf, operation, len);
    buf[len] = '\0';
    return buf;
}

/* How often header `name` was received; *value the first one's (NULL if none). */
static size_t header_find(const kms_network_request *req, const char *name, const char **value)
{
    size_t n = 0;
    *value = NULL;
    for (size_t i = 0; i < req->header_count; i++) {
        const kms_http_header *h = &req->headers[i];
        if (h->name != NULL && strcasecmp(h->name, name) == 0) {
            if (n++ == 0) {
                *value = h->value != NULL ? h->value : "";
            }
        }
    }
    return n;
}

/* The headers that authenticate the request, each received at most once. */
static int auth_headers(const kms_network_request *req, const char **authorization,
                        const char **token)
{
    static const char *const once[] = {"Authorization", "X-Amz-Date", "X-Amz-Security-Token",
                                       "X-Amz-Content-SHA256"};
    const char *v = NULL;
    for (size_t i = 0; i < sizeof once / sizeof once[0]; i++) {
        KMS_ENSURE(header_find(req, once[i], &v) <= 1, KMS_ERR_INCOMPLETE_SIGNATURE,
                   "The request must not carry the header %s more than once.", once[i]);
    }
    /* AWS's answer to a request that carries no signature at all. */
    KMS_ENSURE(header_find(req, "Authorization", authorization) == 1, KMS_ERR_MISSING_AUTH,
               "Missing Authentication Token");
    KMS_ENSURE((*authorization)[0] != '\0', KMS_ERR_INCOMPLETE_SIGNATURE,
               "Authorization header requires 'Credential' parameter. Authorization header "
               "requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
               "parameter. Authorization header requires existence of either a 'X-Amz-Date' or "
               "a 'Date' header. Authorization=");
    (void)header_find(req, "X-Amz-Security-Token", token);
    return 0;
}

/* IAM refuses a session's access key presented without its own token (a wrong one, another
 * session's) with ExpiredTokenException and the words of an invalid token, and without any token
 * with UnrecognizedClientException, those words and what is missing; AWS answers
 * such a request UnrecognizedClientException, as for an unknown key. An expired or revoked
 * session stays ExpiredTokenException. */
static void token_error_as_aws(const char *access_key_id)
{
    kms_error e = kms_last_error();
    const char *m = kms_last_error_message();
    if (strncmp(access_key_id, "ASIA", 4) == 0 &&
        (e == KMS_ERR_EXPIRED_TOKEN || e == KMS_ERR_UNRECOGNIZED_CLIENT) &&
        strncmp(m, KMS_NETWORK_INVALID_TOKEN, strlen(KMS_NETWORK_INVALID_TOKEN)) == 0) {
        kms_raise(KMS_ERR_UNRECOGNIZED_CLIENT, "%s", KMS_NETWORK_INVALID_TOKEN);
    }
}

/* Checks req's signature with the signing key of auth's scope: the scope must name the home's
 * region and service. */
static int signature_verify(kms_client *c, const kms_network_request *req,
                            const kms_sigv4_auth *auth, const uint8_t key[32], const char *service,
                            int64_t now)
{
    kms_sigv4_header *headers = calloc(req->header_count + 1, sizeof *headers);
    KMS_ENSURE(headers != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < req->header_count; i++) {
        headers[i].name = req->headers[i].name;
        headers[i].value = req->headers[i].value;
    }
    kms_sigv4_request sr = {
        .method = req->method != NULL ? req->method : "",
        .path = req->path != NULL ? req->path : "",
        .query = req->query,
        .headers = headers,
        .n_headers = req->header_count,
        .body = req->body != NULL ? req->body : (const uint8_t *)"",
        .body_len = req->body != NULL ? req->body_len : 0,
        .normalize_path = 1,
    };
    int r = kms_sigv4_verify_with_key(&sr, auth, key, (time_t)now, c->cfg.region, service);
    free(headers);
    return r;
}

/* The signing key of auth's scope and its caller, valid under generation: from the cache
 * (*cached true), else from IAM (the secret unsealed, the key derived from it, the secret freed:
 * the cache never holds a secret). */
static int signing_key_get(kms_client *c, const kms_sigv4_auth *auth, const char *token,
                           uint64_t generation, int64_t now, uint8_t key[32], kms_identity *id,
                           bool *cached)
{
    kms_signing_scope scope = {auth->access_key_id, token, auth->date, auth->region, auth->service};
    char *secret = NULL;
    int r = -1;
    *cached = false;
    int f = kms_signing_cache_find(c->network_keys->signing, &scope, generation, now, key, id);
    KMS_GUARD(f < 0 ? -1 : 0);
    if (f == 1) {
        *cached = true;
        return 0;
    }
    if ((r = kms_iam_credentials_lookup(c->iam, auth->access_key_id, token, now, id, &secret)) !=
        0) {
        token_error_as_aws(auth->access_key_id);
        goto out;
    }
    r = kms_sigv4_signing_key(secret, auth->date, auth->region, auth->service, key);
out:
    kms_iam_secret_free(secret);
    return r;
}

/* Remembers the signing key of auth's scope after its first signature verified. */
static int signing_key_put(kms_client *c, const kms_sigv4_auth *auth, const char *token,
                           uint64_t generation, const uint8_t key[32], const kms_identity *id)
{
    kms_signing_scope scope = {auth->access_key_id, token, auth->date, auth->region, auth->service};
    return kms_signing_cache_put(c->network_keys->signing, &scope, generation, key, id);
}

/* A known key whose signature failed (the error raised): recorded as its owner's refused
 * request (0, caller->who the owner's identity) while the key's allowance lasts, else -1 with
 * the error as it is. id is cleaned up. */
static int refuse_authentication(kms_client *c, kms_identity *id, uint64_t generation, int64_t now,
                                 kms_gate_caller *caller)
{
    kms_saved_error e;
    kms_error_save(&e);
    if (!refusal_recorded(c->network_keys, id->access_key_id, now)) {
        kms_iam_identity_clean_up(id);
        return kms_error_restore(&e);
    }
    caller->refused = kms_last_error();
    snprintf(caller->refused_message, sizeof caller->refused_message, "%s",
             kms_last_error_message());
    caller->who = kms_authz_snapshot_new(id, generation);
    return caller->who != NULL ? 0 : -1;
}

/* Authenticates req: 0 with caller->who the caller (caller->refused set when the request is to
 * be recorded as refused), or -1 (raised) for a refusal that is not recorded. */
static int authenticate(kms_client *c, const kms_network_request *req, kms_gate_caller *caller,
                        kms_network_result *result)
{
    int r = -1;
    kms_sigv4_auth auth;
    kms_identity id;
    uint8_t key[32];
    bool cached = false;
    const char *authorization = NULL, *token = NULL;
    char buf[KMS_SIGV4_SCOPE_PART_MAX + 1];
    const char *service = service_of(req->operation, buf, sizeof buf);
    uint64_t generation = 0;
    int64_t now = kms_now();
    memset(&id, 0, sizeof id);
    sodium_memzero(key, sizeof key);
    if ((r = auth_headers(req, &authorization, &token)) != 0) {
        goto out;
    }
    if ((r = kms_sigv4_parse_authorization(authorization, &auth)) != 0) {
        goto out;
    }
    /* Read before the credentials: a snapshot cached under it is at least that new. */
    if ((r = kms_iam_generation(c->iam, &generation)) != 0) {
        goto out;
    }
    if ((r = signing_key_get(c, &auth, token, generation, now, key, &id, &cached)) != 0) {
        goto out;
    }
    if ((r = signature_verify(c, req, &auth, key, service, now)) != 0) {
        r = refuse_authentication(c, &id, generation, now, caller);
        goto out;
    }
    if (!cached && (r = signing_key_put(c, &auth, token, generation, key, &id)) != 0) {
        goto out;
    }
    snprintf(result->account_id, sizeof result->account_id, "%s", id.account_id);
    snprintf(result->access_key_id, sizeof result->access_key_id, "%s", id.access_key_id);
    if (use_due(c->network_keys, id.access_key_id, service, now) &&
        (r = kms_iam_access_key_used(c->iam, id.access_key_id, service, now)) != 0) {
        goto out;
    }
    if ((r = kms_gate_caller_snapshot(c, &id, token, generation, &caller->who)) != 0) {
        goto out;
    }
    if (req->admit != NULL && req->admit(req->admit_arg, result->account_id, result->access_key_id,
                                         req->operation) != 0) {
        caller->refused = KMS_ERR_THROTTLING;
        snprintf(caller->refused_message, sizeof caller->refused_message, "Rate exceeded");
    }
    r = 0;
out:
    sodium_memzero(key, sizeof key);
    kms_iam_identity_clean_up(&id);
    sodium_memzero(&auth, sizeof auth);
    return r;
}

static void request_id_new(char out[37])
{
    uint8_t b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* RFC 4122 4.4: version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    kms_uuid_from_bytes(b, out);
}

int kms_call_network(kms_client *client, const kms_network_request *req, char **response_json,
                     kms_network_result *result)
{
    int r = -1;
    kms_gate_caller caller;
    memset(&caller, 0, sizeof caller);
    kms_error_clear();
    if (result != NULL) {
        memset(result, 0, sizeof *result);
    }
    if (response_json != NULL) {
        *response_json = NULL;
    }
    if (client == NULL || req == NULL || response_json == NULL || result == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "kms_call_network needs a client, a request and a result");
        goto out;
    }
    if ((r = kms_remote_local_only(client->remote, "kms_call_network")) != 0) {
        goto out;
    }
    caller.net = req;
    (void)header_find(req, "User-Agent", &caller.user_agent);
    (void)header_find(req, "Host", &caller.host);
    if ((r = authenticate(client, req, &caller, result)) != 0) {
        goto out;
    }
    r = kms_dispatch_call(client, req->operation, req->request_json, &caller, response_json);
    result->recorded = caller.recorded;
    if (caller.recorded) {
        snprintf(result->request_id, sizeof result->request_id, "%s", caller.request_id);
    }
out:
    kms_authz_snapshot_release(caller.who); /* when the gate did not take it */
    if (result != NULL && !result->recorded) {
        request_id_new(result->request_id);
    }
    return r;
}

const char *kms_client_region(const kms_client *client)
{
    return client != NULL ? client->cfg.region : "";
}
