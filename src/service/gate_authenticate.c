/* THE GATE, authenticate: who is calling, with the caller's policies compiled.
 *
 * kms_call and the typed API: the client's credentials (a profile's access key, or a session)
 * were checked when it opened; each request takes the current snapshot of the caller and its
 * compiled policies, authenticating again whenever IAM data changed since (a deactivated key or
 * a deleted user stops working at once) and refusing expired sessions.
 * kms_call_network: the caller was authenticated by its SigV4 signature (network.c); its
 * snapshot comes from a small cache keyed by access key and session token, kept by the same IAM
 * generation, so that two callers whose requests alternate never share a decision. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/audit_trail.h"
#include "service/gate.h"
#include "util/util.h"

/* ---- Compiled policies ---------------------------------------------------------------------- */

int kms_gate_policy_compile(const char *doc, kms_policy_kind kind, const char *label,
                            kms_policy **out)
{
    if (kms_policy_compile(doc, strlen(doc), kind, label, out) != 0) {
        /* Stored policies were validated when written; one that no longer compiles is a fault,
         * and the request fails closed. */
        return kms_raise(KMS_ERR_INTERNAL, "the stored policy %s does not compile: %s", label,
                         kms_last_error_message());
    }
    return 0;
}

static int snapshot_compile(kms_principal_snapshot *s, const kms_iam_docs *d)
{
    s->identity = calloc(d->identity_count + 1, sizeof *s->identity);
    KMS_ENSURE(s->identity != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < d->identity_count; i++) {
        KMS_GUARD(kms_gate_policy_compile(d->identity[i].document, KMS_POLICY_IDENTITY,
                                          d->identity[i].id, &s->identity[i]));
        s->identity_count++;
    }
    if (d->boundary != NULL) {
        KMS_GUARD(kms_gate_policy_compile(d->boundary, KMS_POLICY_IDENTITY, "PermissionsBoundary",
                                          &s->boundary));
    }
    if (s->id.session_policy != NULL) {
        KMS_GUARD(kms_gate_policy_compile(s->id.session_policy, KMS_POLICY_IDENTITY,
                                          "SessionPolicy", &s->session));
    }
    size_t total = 0;
    for (size_t l = 0; l < d->scp_levels; l++) {
        total += d->scp_counts[l];
    }
    s->scps = calloc(d->scp_levels + 1, sizeof *s->scps);
    s->scp_policies = calloc(total + 1, sizeof *s->scp_policies);
    KMS_ENSURE(s->scps != NULL && s->scp_policies != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t l = 0; l < d->scp_levels; l++) {
        s->scps[l].items = (const kms_policy *const *)&s->scp_policies[s->scp_policy_count];
        for (size_t i = 0; i < d->scp_counts[l]; i++) {
            KMS_GUARD(kms_gate_policy_compile(d->scps[l][i].document, KMS_POLICY_SCP,
                                              d->scps[l][i].id,
                                              &s->scp_policies[s->scp_policy_count]));
            s->scp_policy_count++;
        }
        s->scps[l].count = d->scp_counts[l];
        s->scp_levels++;
    }
    snprintf(s->org_id, sizeof s->org_id, "%s", d->org_id);
    return 0;
}

/* The snapshot of an authenticated identity (moved in): its documents loaded and compiled. */
static kms_principal_snapshot *snapshot_of(kms_client *c, kms_identity *id, uint64_t generation)
{
    kms_iam_docs docs;
    memset(&docs, 0, sizeof docs);
    kms_principal_snapshot *s = kms_authz_snapshot_new(id, generation);
    if (s == NULL) {
        return NULL;
    }
    int r = kms_iam_load_docs(c->iam, &s->id, &docs);
    if (r == 0) {
        r = snapshot_compile(s, &docs);
    }
    kms_iam_docs_clean_up(&docs);
    if (r != 0) {
        kms_authz_snapshot_release(s);
        return NULL;
    }
    return s;
}

static kms_principal_snapshot *snapshot_build(kms_client *c, uint64_t generation)
{
    kms_identity id;
    /* Cached under the generation read BEFORE authenticating: the authentication and the
     * documents are at least that new. A write in between (a key deactivated while we
     * authenticated) changes the generation, and the next request builds again. */
    if (kms_iam_authenticate(c->iam, c->access_key_id, c->secret_access_key, c->session_token,
                             kms_now(), &id) != 0) {
        return NULL;
    }
    return snapshot_of(c, &id, generation);
}

/* STS: a session past its expiry is refused, whatever it was allowed before. */
static int session_current(const kms_principal_snapshot *s)
{
    KMS_ENSURE(s->id.session_expiry == 0 || kms_now() < s->id.session_expiry, KMS_ERR_EXPIRED_TOKEN,
               "The security token included in the request is expired");
    return 0;
}

/* ---- The client's own caller ---------------------------------------------------------------- */

/* The caller of a request, authenticated, with its policies compiled: a reference the request
 * releases at kms_gate_end. */
static int take_caller(kms_request *rq)
{
    kms_client *c = rq->client;
    kms_authz *az = &c->authz;
    uint64_t generation = 0;
    KMS_ENSURE(c->access_key_id[0] != '\0', KMS_ERR_UNRECOGNIZED_CLIENT,
               "no credentials: give a profile of the home's credentials file (--profile), or set "
               "KMS_ACCESS_KEY_ID and KMS_SECRET_ACCESS_KEY");
    KMS_GUARD(kms_iam_generation(c->iam, &generation));
    pthread_mutex_lock(&az->lock);
    kms_principal_snapshot *s = az->current;
    if (s != NULL && s->generation == generation) {
        atomic_fetch_add(&s->refs, 1);
    } else {
        s = NULL;
    }
    pthread_mutex_unlock(&az->lock);
    if (s == NULL) {
        s = snapshot_build(c, generation);
        if (s == NULL) {
            return -1;
        }
        atomic_fetch_add(&s->refs, 1); /* one for the cache, one for this request */
        pthread_mutex_lock(&az->lock);
        kms_principal_snapshot *old = az->current;
        az->current = s;
        pthread_mutex_unlock(&az->lock);
        kms_authz_snapshot_release(old);
    }
    rq->who = s;
    return session_current(s);
}

/* ---- Network callers ------------------------------------------------------------------------ */

static void token_hash(const char *session_token, uint8_t out[32])
{
    memset(out, 0, 32);
    if (session_token != NULL) {
        crypto_hash_sha256(out, (const uint8_t *)session_token, strlen(session_token));
    }
}

/* Under az->lock: the entry of (access key, token), or NULL. */
static kms_caller_entry *caller_find(kms_authz *az, const char *access_key_id,
                                     const uint8_t hash[32])
{
    for (size_t i = 0; i < KMS_AUTHZ_CALLERS; i++) {
        kms_caller_entry *e = &az->callers[i];
        if (e->snapshot != NULL && strcmp(e->access_key_id, access_key_id) == 0 &&
            sodium_memcmp(e->token_hash, hash, 32) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Under az->lock: where a new entry goes, a free one or the least recently used. */
static kms_caller_entry *caller_slot(kms_authz *az)
{
    kms_caller_entry *oldest = &az->callers[0];
    for (size_t i = 0; i < KMS_AUTHZ_CALLERS; i++) {
        kms_caller_entry *e = &az->callers[i];
        if (e->snapshot == NULL) {
            return e;
        }
        if (e->last_use < oldest->last_use) {
            oldest = e;
        }
    }
    return oldest;
}

int kms_gate_caller_snapshot(kms_client *c, kms_identity *id, const char *session_token,
                             uint64_t generation, kms_principal_snapshot **out)
{
    kms_authz *az = &c->authz;
    uint8_t hash[32];
    char key[32];
    *out = NULL;
    snprintf(key, sizeof key, "%s", id->access_key_id);
    token_hash(session_token, hash);
    pthread_mutex_lock(&az->lock);
    kms_caller_entry *e = caller_find(az, key, hash);
    kms_principal_snapshot *s = NULL;
    if (e != NULL && e->snapshot->generation == generation) {
        s = e->snapshot;
        atomic_fetch_add(&s->refs, 1);
        e->last_use = ++az->caller_uses;
    }
    pthread_mutex_unlock(&az->lock);
    if (s != NULL) {
        kms_iam_identity_clean_up(id); /* the same identity, as of the same generation */
        *out = s;
        return 0;
    }
    s = snapshot_of(c, id, generation);
    if (s == NULL) {
        return -1;
    }
    atomic_fetch_add(&s->refs, 1); /* one for the cache, one for this request */
    pthread_mutex_lock(&az->lock);
    e = caller_find(az, key, hash);
    if (e == NULL) {
        e = caller_slot(az);
    }
    kms_principal_snapshot *old = e->snapshot;
    snprintf(e->access_key_id, sizeof e->access_key_id, "%s", key);
    memcpy(e->token_hash, hash, sizeof hash);
    e->snapshot = s;
    e->last_use = ++az->caller_uses;
    pthread_mutex_unlock(&az->lock);
    kms_authz_snapshot_release(old);
    *out = s;
    return 0;
}

/* ---- Beginning a request -------------------------------------------------------------------- */

int kms_gate_begin_as(kms_request *rq, kms_client *client, const char *operation,
                      kms_gate_caller *caller)
{
    memset(rq, 0, sizeof *rq);
    kms_error_clear();
    rq->client = client;
    rq->operation = operation;
    rq->started = kms_now();
    if (caller != NULL) {
        /* Taken first: kms_gate_end releases it, whatever fails below. */
        rq->caller = caller;
        rq->who = caller->who;
        caller->who = NULL;
    }
    KMS_ENSURE(client != NULL, KMS_ERR_VALIDATION, "no client");
    /* Fail closed: nothing runs unless its record can be written. */
    kms_audit *audit = NULL;
    KMS_GUARD(kms_audit_trail_of_client(client, &audit));
    KMS_GUARD(kms_audit_announce(audit)); /* kms_gate_end's record ends it */
    if (caller == NULL) {
        return take_caller(rq);
    }
    KMS_ENSURE(rq->who != NULL, KMS_ERR_INTERNAL, "a network request without its caller");
    if (caller->refused != KMS_OK) {
        /* Refused before the gate: recorded as the caller's, and nothing runs. */
        return kms_raise(caller->refused, "%s", caller->refused_message);
    }
    return session_current(rq->who);
}

int kms_gate_begin(kms_request *rq, kms_client *client, const char *operation)
{
    return kms_gate_begin_as(rq, client, operation, NULL);
}
