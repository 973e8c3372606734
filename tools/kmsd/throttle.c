/* Token buckets per account and quota, per access key, and the authentication slow-down per
 * address (see throttle.h). Quota names and default rates are AWS KMS's (AWS KMS Developer
 * Guide, "Request quotas", the table "Request quotas for each AWS KMS API operation"), in the
 * smallest region class where the value varies by region. */
#include "strbuf.h"
#include "throttle.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- The quotas ------------------------------------------------------------------------------ */

#define MAX_QUOTA_OPS 9

typedef struct quota_def {
    const char *name;
    double rate; /* requests per second */
    const char *ops[MAX_QUOTA_OPS];
} quota_def;

/* A management operation's own quota, "<Operation> request rate". */
#define OWN(op, rate)                                                                              \
    {                                                                                              \
        op " request rate", rate,                                                                  \
        {                                                                                          \
            op                                                                                     \
        }                                                                                          \
    }

/* The shared cryptographic quotas apply per key type, which the request alone does not tell (the
 * key is resolved later, behind the gate): here the symmetric quota counts the operations of
 * symmetric keys and HMAC keys, the RSA quota Sign and Verify (asymmetric keys only; RSA's and
 * ECC's default rates are the same), and the ECC quota DeriveSharedSecret (ECC only).
 * GenerateDataKeyPair's quotas depend on the pair's KeySpec and are not applied: that operation
 * is bounded by the access key's bucket. */
static const quota_def quota_defs[] = {
    {"Cryptographic operations (symmetric) request rate",
     10000,
     {"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateMac",
      "GenerateRandom", "ReEncrypt", "VerifyMac"}},
    {"Cryptographic operations (RSA) request rate", 1000, {"Sign", "Verify"}},
    {"Cryptographic operations (ECC) request rate", 1000, {"DeriveSharedSecret"}},
    OWN("CancelKeyDeletion", 5),
    OWN("CreateAlias", 5),
    OWN("CreateGrant", 50),
    OWN("CreateKey", 5),
    OWN("DeleteAlias", 5),
    OWN("DeleteImportedKeyMaterial", 5),
    OWN("DescribeKey", 2000),
    OWN("DisableKey", 5),
    OWN("DisableKeyRotation", 5),
    OWN("EnableKey", 5),
    OWN("EnableKeyRotation", 5),
    OWN("GetKeyPolicy", 1000),
    OWN("GetKeyRotationStatus", 1000),
    OWN("GetPublicKey", 2000),
    OWN("ImportKeyMaterial", 5),
    OWN("ListAliases", 100),
    OWN("ListGrants", 100),
    OWN("ListKeyPolicies", 100),
    OWN("ListKeyRotations", 100),
    OWN("ListKeys", 100),
    OWN("ListResourceTags", 100),
    OWN("ListRetirableGrants", 5),
    OWN("PutKeyPolicy", 5),
    OWN("RetireGrant", 15),
    OWN("RevokeGrant", 15),
    OWN("RotateKeyOnDemand", 5),
    OWN("ScheduleKeyDeletion", 5),
    OWN("TagResource", 5),
    OWN("UntagResource", 5),
    OWN("UpdateAlias", 5),
    OWN("UpdateKeyDescription", 5),
};
#define N_QUOTAS (sizeof quota_defs / sizeof quota_defs[0])
/* Index of the per-access-key bucket among the limits (after the AWS quotas). */
#define PER_KEY N_QUOTAS
#define PER_KEY_NAME "PerAccessKey"
#define PER_KEY_DEFAULT 10000.0
#define MAX_KEYS_DEFAULT 100000
#define MAX_KEYS_MIN 64
/* Entries of the auth table carry this quota index. */
#define AUTH_ENTRY (N_QUOTAS + 1)

/* The authentication slow-down: AUTH_FAILURES failures within AUTH_WINDOW seconds start it at
 * AUTH_DELAY_FIRST seconds, doubling per further failure up to AUTH_DELAY_MAX; AUTH_WINDOW
 * seconds without a failure end it. */
#define AUTH_FAILURES 5
#define AUTH_WINDOW 60.0
#define AUTH_DELAY_FIRST 1.0
#define AUTH_DELAY_MAX 10.0

/* ---- A bounded, striped hash table with LRU eviction ----------------------------------------- */

#define N_STRIPES 32
#define ID_MAX 96

typedef struct entry {
    struct entry *hnext;       /* the hash chain */
    struct entry *prev, *next; /* the stripe's LRU list, most recent first */
    uint64_t hash;
    size_t quota;
    char id[ID_MAX];
    double tokens, last; /* a bucket */
    double fails[AUTH_FAILURES];
    unsigned nfail, level; /* an address */
} entry;

typedef struct stripe {
    pthread_mutex_t lock;
    entry **heads;
    size_t nheads; /* a power of two */
    entry *lru_head, *lru_tail;
    size_t count, cap;
} stripe;

typedef struct table {
    stripe stripes[N_STRIPES];
} table;

struct kmsd_throttle {
    double rates[N_QUOTAS + 1];
    bool enabled, auth_enabled;
    size_t max_keys;
    table buckets, addresses;
    atomic_ullong throttled[N_QUOTAS + 1];
    atomic_ullong delayed;
};

static uint64_t hash_of(size_t quota, const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    h = (h ^ (uint64_t)quota) * 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    return h;
}

static int table_init(table *tb, size_t max_keys)
{
    size_t cap = max_keys / N_STRIPES > 0 ? max_keys / N_STRIPES : 1;
    size_t nheads = 16;
    while (nheads < cap && nheads < ((size_t)1 << 20)) {
        nheads *= 2;
    }
    for (size_t i = 0; i < N_STRIPES; i++) {
        stripe *s = &tb->stripes[i];
        s->cap = cap;
        s->nheads = nheads;
        s->heads = calloc(nheads, sizeof *s->heads);
        if (s->heads == NULL || pthread_mutex_init(&s->lock, NULL) != 0) {
            free(s->heads);
            s->heads = NULL;
            return -1;
        }
    }
    return 0;
}

static void table_free(table *tb)
{
    for (size_t i = 0; i < N_STRIPES; i++) {
        stripe *s = &tb->stripes[i];
        if (s->heads == NULL) {
            continue;
        }
        for (entry *e = s->lru_head, *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
        free(s->heads);
        pthread_mutex_destroy(&s->lock);
    }
}

static void lru_unlink(stripe *s, entry *e)
{
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        s->lru_head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    } else {
        s->lru_tail = e->prev;
    }
    e->prev = e->next = NULL;
}

static void lru_push(stripe *s, entry *e)
{
    e->prev = NULL;
    e->next = s->lru_head;
    if (s->lru_head != NULL) {
        s->lru_head->prev = e;
    }
    s->lru_head = e;
    if (s->lru_tail == NULL) {
        s->lru_tail = e;
    }
}

static void chain_unlink(stripe *s, entry *e)
{
    entry **pp = &s->heads[e->hash & (s->nheads - 1)];
    while (*pp != NULL && *pp != e) {
        pp = &(*pp)->hnext;
    }
    if (*pp == e) {
        *pp = e->hnext;
    }
    e->hnext = NULL;
}

/* The entry of (quota, id), made most recently used, with its stripe locked (*locked; the caller
 * unlocks it). NULL (nothing locked) when it does not exist and create is false, or when no
 * memory is left. A new entry is zeroed but for its key; when the stripe is full, the least
 * recently used entry is recycled. Ids longer than ID_MAX - 1 share an entry with their prefix:
 * kms_call_network's ids (accounts, access keys, addresses) are all shorter. */
static entry *table_get(table *tb, size_t quota, const char *id, bool create, stripe **locked)
{
    char key[ID_MAX];
    snprintf(key, sizeof key, "%s", id != NULL ? id : "");
    uint64_t h = hash_of(quota, key);
    stripe *s = &tb->stripes[(h >> 48) % N_STRIPES];
    entry *e;
    pthread_mutex_lock(&s->lock);
    for (e = s->heads[h & (s->nheads - 1)]; e != NULL; e = e->hnext) {
        if (e->hash == h && e->quota == quota && strcmp(e->id, key) == 0) {
            break;
        }
    }
    if (e == NULL && create) {
        if (s->count >= s->cap && s->lru_tail != NULL) {
            e = s->lru_tail;
            lru_unlink(s, e);
            chain_unlink(s, e);
        } else if ((e = malloc(sizeof *e)) != NULL) {
            s->count++;
        }
        if (e != NULL) {
            memset(e, 0, sizeof *e);
            e->hash = h;
            e->quota = quota;
            memcpy(e->id, key, sizeof key);
            e->hnext = s->heads[h & (s->nheads - 1)];
            s->heads[h & (s->nheads - 1)] = e;
            lru_push(s, e);
            e->last = -INFINITY;
        }
    } else if (e != NULL) {
        lru_unlink(s, e);
        lru_push(s, e);
    }
    if (e == NULL) {
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    *locked = s;
    return e;
}

static size_t table_count(table *tb)
{
    size_t n = 0;
    for (size_t i = 0; i < N_STRIPES; i++) {
        pthread_mutex_lock(&tb->stripes[i].lock);
        n += tb->stripes[i].count;
        pthread_mutex_unlock(&tb->stripes[i].lock);
    }
    return n;
}

/* ---- Configuration --------------------------------------------------------------------------- */

static const char *limit_name(size_t i)
{
    return i == PER_KEY ? PER_KEY_NAME : quota_defs[i].name;
}

/* "unknown throttle setting "X"; known: Enabled, AuthFailureDelay, MaxKeys, PerAccessKey, ..." */
static int unknown_setting(const char *name, char *err, size_t errlen)
{
    size_t o;
    int w = snprintf(err, errlen,
                     "unknown throttle setting \"%.80s\"; known: Enabled, AuthFailureDelay, "
                     "MaxKeys, " PER_KEY_NAME,
                     name);
    if (w < 0 || err == NULL) {
        return -1;
    }
    o = (size_t)w;
    for (size_t i = 0; i < N_QUOTAS && o < errlen; i++) {
        w = snprintf(err + o, errlen - o, ", %s", quota_defs[i].name);
        if (w < 0) {
            break;
        }
        o += (size_t)w;
    }
    return -1;
}

static int apply_setting(kmsd_throttle *t, const char *name, const json_t *v, char *err,
                         size_t errlen)
{
    if (strcmp(name, "Enabled") == 0 || strcmp(name, "AuthFailureDelay") == 0) {
        if (!json_is_boolean(v)) {
            return kmsd_strbuf_fail(err, errlen, -1, "throttle setting %s must be true or false",
                                    name);
        }
        *(strcmp(name, "Enabled") == 0 ? &t->enabled : &t->auth_enabled) = json_is_true(v);
        return 0;
    }
    if (strcmp(name, "MaxKeys") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) < MAX_KEYS_MIN ||
            json_integer_value(v) > 100000000) {
            return kmsd_strbuf_fail(err, errlen, -1,
                                    "throttle setting MaxKeys must be a whole number from %d to "
                                    "100000000",
                                    MAX_KEYS_MIN);
        }
        t->max_keys = (size_t)json_integer_value(v);
        return 0;
    }
    for (size_t i = 0; i <= PER_KEY; i++) {
        if (strcmp(name, limit_name(i)) != 0) {
            continue;
        }
        if (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1e9) {
            return kmsd_strbuf_fail(
                err, errlen, -1,
                "throttle setting \"%s\" must be a number of requests per second above "
                "0 (at most 1e9)",
                name);
        }
        t->rates[i] = json_number_value(v);
        return 0;
    }
    return unknown_setting(name, err, errlen);
}

kmsd_throttle *kmsd_throttle_new(const json_t *cfg, char *err, size_t errlen)
{
    kmsd_throttle *t;
    const char *name;
    json_t *v;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (cfg != NULL && !json_is_object(cfg)) {
        kmsd_strbuf_fail(err, errlen, -1, "the throttle settings must be a JSON object");
        return NULL;
    }
    if ((t = calloc(1, sizeof *t)) == NULL) {
        kmsd_strbuf_fail(err, errlen, -1, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < N_QUOTAS; i++) {
        t->rates[i] = quota_defs[i].rate;
    }
    t->rates[PER_KEY] = PER_KEY_DEFAULT;
    t->enabled = true;
    t->auth_enabled = true;
    t->max_keys = MAX_KEYS_DEFAULT;
    json_object_foreach((json_t *)cfg, name, v)
    {
        if (apply_setting(t, name, v, err, errlen) != 0) {
            free(t);
            return NULL;
        }
    }
    if (table_init(&t->buckets, t->max_keys) != 0 || table_init(&t->addresses, t->max_keys) != 0) {
        kmsd_throttle_free(t);
        kmsd_strbuf_fail(err, errlen, -1, "out of memory");
        return NULL;
    }
    return t;
}

void kmsd_throttle_free(kmsd_throttle *t)
{
    if (t == NULL) {
        return;
    }
    table_free(&t->buckets);
    table_free(&t->addresses);
    free(t);
}

/* ---- Admission ------------------------------------------------------------------------------- */

static size_t quota_of(const char *operation)
{
    if (operation == NULL) {
        return PER_KEY;
    }
    for (size_t i = 0; i < N_QUOTAS; i++) {
        for (size_t j = 0; j < MAX_QUOTA_OPS && quota_defs[i].ops[j] != NULL; j++) {
            if (strcmp(quota_defs[i].ops[j], operation) == 0) {
                return i;
            }
        }
    }
    return PER_KEY;
}

/* Takes one token from the bucket of (limit, id): true if there was one. A bucket holds at most
 * one second of its rate (at least one request) and starts full. */
static bool take(kmsd_throttle *t, size_t limit, const char *id, double now)
{
    stripe *s = NULL;
    double rate = t->rates[limit];
    double burst = rate > 1 ? rate : 1;
    entry *e = table_get(&t->buckets, limit, id, true, &s);
    bool ok;
    if (e == NULL) {
        return true; /* out of memory: do not refuse service for it */
    }
    if (e->last == -INFINITY) {
        e->tokens = burst;
    } else if (now > e->last) {
        e->tokens += (now - e->last) * rate;
    }
    if (e->tokens > burst) {
        e->tokens = burst;
    }
    if (now > e->last) {
        e->last = now;
    }
    ok = e->tokens >= 1;
    if (ok) {
        e->tokens -= 1;
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static void give_back(kmsd_throttle *t, size_t limit, const char *id)
{
    stripe *s = NULL;
    entry *e = table_get(&t->buckets, limit, id, false, &s);
    if (e != NULL) {
        e->tokens += 1;
        pthread_mutex_unlock(&s->lock);
    }
}

int kmsd_throttle_admit(kmsd_throttle *t, const char *account_id, const char *access_key_id,
                        const char *operation, double now)
{
    size_t quota = quota_of(operation);
    if (t == NULL || !t->enabled) {
        return 0;
    }
    if (quota != PER_KEY && !take(t, quota, account_id, now)) {
        atomic_fetch_add(&t->throttled[quota], 1);
        return 1;
    }
    if (access_key_id != NULL && !take(t, PER_KEY, access_key_id, now)) {
        if (quota != PER_KEY) {
            give_back(t, quota, account_id);
        }
        atomic_fetch_add(&t->throttled[PER_KEY], 1);
        return 1;
    }
    return 0;
}

int kmsd_throttle_admit_fn(void *arg, const char *account_id, const char *access_key_id,
                           const char *operation)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return kmsd_throttle_admit(arg, account_id, access_key_id, operation,
                               (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* ---- Authentication failures ----------------------------------------------------------------- */

/* The address an IPv6 source is counted under: its /64, the smallest prefix a site is usually
 * given (RFC 6177), so that walking through one's own 2^64 addresses does not escape the
 * slow-down. IPv4 addresses (and anything that does not parse) are counted as they are. */
static const char *address_key(const char *ip, char *out, size_t size)
{
    unsigned char a[16];
    if (ip == NULL || strchr(ip, ':') == NULL || inet_pton(AF_INET6, ip, a) != 1) {
        return ip;
    }
    memset(a + 8, 0, 8);
    if (inet_ntop(AF_INET6, a, out, (socklen_t)size) == NULL) {
        return ip;
    }
    return out;
}

void kmsd_throttle_auth_failed(kmsd_throttle *t, const char *ip, double now)
{
    stripe *s = NULL;
    entry *e;
    char prefix[INET6_ADDRSTRLEN];
    if (t == NULL || !t->auth_enabled) {
        return;
    }
    ip = address_key(ip, prefix, sizeof prefix);
    if ((e = table_get(&t->addresses, AUTH_ENTRY, ip, true, &s)) == NULL) {
        return;
    }
    if (e->nfail > 0 && now - e->last >= AUTH_WINDOW) {
        e->nfail = 0;
        e->level = 0;
    }
    e->fails[e->nfail % AUTH_FAILURES] = now;
    e->nfail++;
    if (now > e->last) {
        e->last = now;
    }
    if (e->level > 0) {
        e->level++;
    } else if (e->nfail >= AUTH_FAILURES &&
               now - e->fails[(e->nfail - AUTH_FAILURES) % AUTH_FAILURES] < AUTH_WINDOW) {
        e->level = 1;
    }
    if (e->level > 64) {
        e->level = 64; /* far beyond the cap; keeps the count from wrapping */
    }
    pthread_mutex_unlock(&s->lock);
}

double kmsd_throttle_auth_delay(kmsd_throttle *t, const char *ip, double now)
{
    stripe *s = NULL;
    entry *e;
    double delay = 0;
    char prefix[INET6_ADDRSTRLEN];
    if (t == NULL || !t->auth_enabled) {
        return 0;
    }
    ip = address_key(ip, prefix, sizeof prefix);
    if ((e = table_get(&t->addresses, AUTH_ENTRY, ip, false, &s)) == NULL) {
        return 0;
    }
    if (e->level > 0 && now - e->last < AUTH_WINDOW) {
        delay = AUTH_DELAY_FIRST;
        for (unsigned i = 1; i < e->level && delay < AUTH_DELAY_MAX; i++) {
            delay *= 2;
        }
        delay = delay < AUTH_DELAY_MAX ? delay : AUTH_DELAY_MAX;
    }
    pthread_mutex_unlock(&s->lock);
    if (delay > 0) {
        atomic_fetch_add(&t->delayed, 1);
    }
    return delay;
}

/* ---- For /metrics ---------------------------------------------------------------------------- */

int kmsd_throttle_limits(kmsd_throttle *t, json_t **out)
{
    json_t *quotas = json_object();
    *out = NULL;
    if (quotas == NULL) {
        return -1;
    }
    for (size_t i = 0; i <= PER_KEY; i++) {
        json_t *q = json_pack("{s:f, s:I}", "Limit", t->rates[i], "Throttled",
                              (json_int_t)atomic_load(&t->throttled[i]));
        if (q == NULL || json_object_set_new(quotas, limit_name(i), q) != 0) {
            json_decref(quotas);
            return -1;
        }
    }
    *out =
        json_pack("{s:b, s:I, s:I, s:o, s:{s:I, s:b, s:I}}", "Enabled", t->enabled, "MaxKeys",
                  (json_int_t)t->max_keys, "Keys", (json_int_t)table_count(&t->buckets), "Quotas",
                  quotas, "AuthFailures", "Addresses", (json_int_t)table_count(&t->addresses),
                  "Enabled", t->auth_enabled, "Delayed", (json_int_t)atomic_load(&t->delayed));
    return *out != NULL ? 0 : -1;
}
