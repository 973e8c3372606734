/* The service's side of the audit trail: the digest key in the HSM, opening the trail, and the
 * CloudTrail record of every request (audit_trail_record.c decides what it says). src/audit
 * writes, chains and signs. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <sodium.h>

#include "service/audit_trail.h"
#include "service/internal_keys.h"
#include "service/ops.h"
#include "util/secmem.h"
#include "util/util.h"

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
    /* Every request: the trail open and ready, without building its path. */
    pthread_mutex_lock(&c->audit_lock);
    if (c->audit != NULL && kms_audit_ready(c->audit)) {
        *out = c->audit;
        r = 0;
    }
    pthread_mutex_unlock(&c->audit_lock);
    if (r == 0) {
        return 0;
    }
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

/* ---- Key material ids ------------------------------------------------------------------------
 * AWS names each key material of a KMS key with a 64-hex-digit keyMaterialId (KeyMetadata
 * CurrentKeyMaterialId, the KeyMaterialId of Decrypt and GenerateDataKey, the records'
 * additionalEventData.keyMaterialId, RotateKey's previous/currentKeyMaterialId). Ours is
 * SHA-256("kms-key-material-id:v1\n" KEY_ARN "\n" VERSION), in lower-case hex: derived from the
 * key's ARN and the material version only, never from the material, so every process and every
 * reader of the trail computes the same id for the same version, and two versions (or two keys)
 * never share one. */

void kms_audit_trail_material_id(const char *key_arn, uint32_t version, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    char text[KMS_ARN_MAX + 48];
    uint8_t h[crypto_hash_sha256_BYTES];
    int n = snprintf(text, sizeof text, "kms-key-material-id:v1\n%s\n%u", key_arn, version);
    crypto_hash_sha256(h, (const uint8_t *)text, n > 0 ? (size_t)n : 0);
    for (size_t i = 0; i < sizeof h; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 0x0f];
    }
    out[64] = '\0';
}

void kms_audit_trail_key_material(kms_request *rq, int slot, const char *key_arn, uint32_t version)
{
    if (slot == 0 || slot == 1) {
        kms_audit_trail_material_id(key_arn, version, rq->key_material[slot]);
    }
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
