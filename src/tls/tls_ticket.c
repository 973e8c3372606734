/* Session ticket keys from a CMK. The keys of period n (seconds since the epoch / period) are
 *   okm = HKDF-SHA-256(IKM = GenerateMac(CMK, HMAC_SHA_256, "kms-tls-ticket-keys/v1/" || n),
 *                      salt = none, info = "kms-tls ticket keys v1", L = 80)
 *   key name = okm[0..16), AES-256-CBC key = okm[16..48), HMAC-SHA-256 key = okm[48..80)
 * (RFC 5869; the ticket format is OpenSSL's, RFC 5077 4's recommended one). The MAC is a PRF of
 * the CMK, which never leaves the HSM; HKDF only splits it into independent keys. The current
 * period's keys encrypt; the current and the previous period's decrypt, the previous ones asking
 * for a renewal, so a ticket lives one to two periods. Keys are derived once per period per
 * process (one GenerateMac, audited like any call, made outside the lock), kept in locked
 * memory and wiped; a failed derivation is tried again a minute later, not on every ticket. A
 * clock before the epoch (period < 0) gives no keys: no tickets, no resumption. */
#include "tls/tls_ticket.h"

#include <inttypes.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "tls/tls_ctx.h"
#include "util/error.h"
#include "util/secmem.h"
#include "util/util.h"

#define NAME_LEN 16
#define AES_LEN 32
#define HMAC_LEN 32

#define OKM_LEN (NAME_LEN + AES_LEN + HMAC_LEN)
/* A derivation that failed is tried again after this many seconds, not on every ticket. */
#define RETRY_SECONDS 60

/* One period's keys (in locked memory), or the failure to derive them. */
typedef struct ticket_slot {
    bool used;        /* false: empty (period and okm mean nothing) */
    bool failed;      /* the derivation failed: no keys until retry_at */
    int64_t period;   /* >= 0 */
    int64_t retry_at; /* failed: the clock's time of the next attempt */
    uint8_t okm[OKM_LEN];
} ticket_slot;

struct kms_tls_ticket_keys {
    atomic_int refs;
    pthread_mutex_t lock; /* guards slots */
    kms_client *client;
    char *key_id;
    int64_t period_seconds;
    int64_t (*now)(void);
    ticket_slot *slots; /* 2: the current and the previous period */
};

static atomic_uint_fast64_t derivations;

uint64_t kms_tls_ticket_derivations(void)
{
    return atomic_load(&derivations);
}

kms_tls_ticket_keys *kms_tls_ticket_keys_new(kms_client *client, const char *key_id,
                                             uint32_t period_seconds)
{
    kms_tls_ticket_keys *t = calloc(1, sizeof *t);
    if (t == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    atomic_init(&t->refs, 1);
    pthread_mutex_init(&t->lock, NULL);
    t->client = client;
    t->period_seconds = period_seconds != 0 ? period_seconds : KMS_TLS_TICKET_PERIOD_DEFAULT;
    t->key_id = strdup(key_id);
    t->slots = kms_secure_alloc(2 * sizeof *t->slots);
    if (t->key_id == NULL || t->slots == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        kms_tls_ticket_keys_free(t);
        return NULL;
    }
    t->slots[0].used = false;
    t->slots[1].used = false;
    return t;
}

void kms_tls_ticket_keys_free(kms_tls_ticket_keys *t)
{
    if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1) {
        return;
    }
    kms_secure_free(t->slots); /* wipes */
    free(t->key_id);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void kms_tls_ticket_keys_set_clock(kms_tls_ticket_keys *t, int64_t (*now)(void))
{
    t->now = now;
}

/* ---- Derivation ------------------------------------------------------------------------------*/
/* GenerateMac of the period's message under the CMK, through the gate (authorised, audited). */
static int period_mac(kms_tls_ticket_keys *t, int64_t period, uint8_t **mac, size_t *mac_len)
{
    char msg[64];
    char *msg_b64 = NULL;
    char *req = NULL;
    char *resp = NULL;
    json_t *req_j = NULL;
    json_t *resp_j = NULL;
    int r = -1;
    *mac = NULL;
    *mac_len = 0;
    int n = snprintf(msg, sizeof msg, "kms-tls-ticket-keys/v1/%" PRId64, period);
    if ((msg_b64 = kms_base64_encode((const uint8_t *)msg, (size_t)n)) == NULL ||
        (req_j = json_pack("{s:s, s:s, s:s}", "KeyId", t->key_id, "MacAlgorithm", "HMAC_SHA_256",
                           "Message", msg_b64)) == NULL ||
        (req = json_dumps(req_j, JSON_COMPACT)) == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    atomic_fetch_add(&derivations, 1);
    if ((r = kms_call(t->client, "GenerateMac", req, &resp)) != 0) {
        goto out;
    }
    resp_j = json_loads(resp, 0, NULL);
    const char *mac_b64 = json_string_value(json_object_get(resp_j, "Mac"));
    if (mac_b64 == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "GenerateMac gave no Mac");
        goto out;
    }
    r = kms_base64_decode(mac_b64, "Mac", true, mac, mac_len);
    sodium_memzero((char *)mac_b64, strlen(mac_b64));
out:
    if (resp != NULL) {
        sodium_memzero(resp, strlen(resp));
    }
    kms_string_free(resp);
    json_decref(resp_j);
    json_decref(req_j);
    free(req);
    free(msg_b64);
    return r;
}

static int hkdf(const uint8_t *ikm, size_t ikm_len, uint8_t *okm, size_t okm_len)
{
    static const char info[] = "kms-tls ticket keys v1";
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, sizeof info - 1),
        OSSL_PARAM_END,
    };
    int ok = kctx != NULL && EVP_KDF_derive(kctx, okm, okm_len, params) == 1;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    if (!ok) {
        return kms_tls_raise_ssl(KMS_ERR_INTERNAL, "deriving the ticket keys (HKDF)");
    }
    return 0;
}

/* The slot that holds `period`, or else one free to hold it (empty, or holding neither the
 * current nor the previous period), or NULL. Called with t->lock held. */
static ticket_slot *find_slot(kms_tls_ticket_keys *t, int64_t period, int64_t current, bool *found)
{
    ticket_slot *free_slot = NULL;
    *found = false;
    for (int i = 0; i < 2; i++) {
        ticket_slot *slot = &t->slots[i];
        if (slot->used && slot->period == period) {
            *found = true;
            return slot;
        }
        if (!slot->used || (slot->period != current && slot->period != current - 1)) {
            free_slot = slot;
        }
    }
    return free_slot;
}

/* Derives the keys of `period` (one GenerateMac, outside the lock). */
static int derive(kms_tls_ticket_keys *t, int64_t period, uint8_t okm[OKM_LEN])
{
    uint8_t *mac = NULL;
    size_t mac_len = 0;
    int r = -1;
    if ((r = period_mac(t, period, &mac, &mac_len)) != 0) {
        goto out;
    }
    if ((r = hkdf(mac, mac_len, okm, OKM_LEN)) != 0) {
        goto out;
    }
out:
    kms_secret_free(mac, mac_len);
    if (r != 0) {
        sodium_memzero(okm, OKM_LEN);
    }
    return r;
}

/* Copies the keys of `period` into okm: kept ones, or derived now (the KMS is called without
 * the lock, the result installed under it). A failed derivation is remembered, and not tried
 * again for RETRY_SECONDS. 0, or -1 with okm wiped (no keys: no ticket, no resumption). */
static int keys_for(kms_tls_ticket_keys *t, int64_t period, int64_t current, int64_t now,
                    uint8_t okm[OKM_LEN])
{
    bool found = false;
    int r = -1;
    pthread_mutex_lock(&t->lock);
    ticket_slot *slot = find_slot(t, period, current, &found);
    if (found && !slot->failed) {
        memcpy(okm, slot->okm, OKM_LEN);
        r = 0;
    }
    bool wait = found && slot->failed && now < slot->retry_at;
    pthread_mutex_unlock(&t->lock);
    if (r == 0 || wait) {
        goto out;
    }
    r = derive(t, period, okm);
    pthread_mutex_lock(&t->lock);
    slot = find_slot(t, period, current, &found);
    if (slot != NULL && (!found || slot->failed)) {
        slot->used = true;
        slot->period = period;
        slot->failed = r != 0;
        slot->retry_at = now + RETRY_SECONDS;
        memcpy(slot->okm, okm, OKM_LEN); /* wiped on failure */
    }
    pthread_mutex_unlock(&t->lock);
out:
    if (r != 0) {
        sodium_memzero(okm, OKM_LEN);
    }
    return r;
}

/* Periods are counted from the epoch by floor division. */
static int64_t period_of(int64_t now, int64_t period_seconds)
{
    int64_t q = now / period_seconds;
    return now % period_seconds < 0 ? q - 1 : q;
}

static int use_keys(const uint8_t okm[OKM_LEN], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                    EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_octet_string(OSSL_MAC_PARAM_KEY, (void *)(okm + NAME_LEN + AES_LEN), HMAC_LEN),
        OSSL_PARAM_END,
    };
    return EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, okm + NAME_LEN, iv, enc) == 1 &&
           EVP_MAC_CTX_set_params(hctx, params) == 1;
}

static int ticket_index = -1;
static pthread_once_t ticket_once = PTHREAD_ONCE_INIT;

static void ticket_keys_unref(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                              void *argp)
{
    kms_tls_ticket_keys_free(ptr);
}

static void ticket_index_init(void)
{
    ticket_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ticket_keys_unref);
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb: 1 keys set, 2 set and the ticket should be renewed, 0
 * no ticket (encrypting) or not ours / not any more (decrypting: a full handshake), -1 error.
 * A KMS that cannot be reached costs resumption, never a handshake. */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    kms_tls_ticket_keys *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_index);
    if (t == NULL) {
        return 0;
    }
    int64_t now = t->now != NULL ? t->now() : kms_now();
    if (now < 0) {
        return 0; /* a clock before the epoch: no period, no keys */
    }
    int64_t current = period_of(now, t->period_seconds);
    uint8_t okm[OKM_LEN];
    int r = 0;
    if (enc) {
        if (keys_for(t, current, current, now, okm) == 0 && RAND_bytes(iv, 16) == 1 &&
            use_keys(okm, iv, cctx, hctx, 1)) {
            memcpy(key_name, okm, NAME_LEN);
            r = 1;
        }
    } else {
        for (int64_t p = current; p >= current - 1 && p >= 0 && r == 0; p--) {
            if (keys_for(t, p, current, now, okm) == 0 &&
                sodium_memcmp(key_name, okm, NAME_LEN) == 0) {
                r = !use_keys(okm, iv, cctx, hctx, 0) ? -1 : p == current ? 1 : 2;
            }
        }
    }
    sodium_memzero(okm, sizeof okm);
    kms_error_clear();
    ERR_clear_error();
    return r;
}

int kms_tls_ticket_keys_install(SSL_CTX *ctx, kms_tls_ticket_keys *t)
{
    pthread_once(&ticket_once, ticket_index_init);
    KMS_ENSURE(ticket_index >= 0, KMS_ERR_INTERNAL, "no ex_data index for ticket keys");
    atomic_fetch_add(&t->refs, 1);
    if (SSL_CTX_set_ex_data(ctx, ticket_index, t) != 1) {
        kms_tls_ticket_keys_free(t);
        return kms_tls_raise_ssl(KMS_ERR_INTERNAL, "keeping the ticket keys");
    }
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1) {
        return kms_tls_raise_ssl(KMS_ERR_INTERNAL, "setting the ticket key callback");
    }
    /* A ticket decrypts for one to two periods: clients are told one. */
    SSL_CTX_set_timeout(ctx, (long)t->period_seconds);
    return 0;
}
