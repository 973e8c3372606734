/* Key material versions over time: rotation (a new version in the HSM), the per-version count
 * of encryptions that bounds AES-GCM's random IVs, and the end of a key (keystore.h
 * "Rotation, usage and deletion"). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/keystore.h"
#include "util/util.h"

/* ---- Counting encryptions ------------------------------------------------------------------
 * Each process reserves counts in the metadata database before it uses them: 1 at first, then
 * twice as many each time up to USAGE_BLOCK_MAX, so a short-lived kmsctl counts exactly and a
 * busy server writes once per few thousand encryptions. A crash loses only the unused part of a
 * reservation, which makes the count too high, never too low. */
#define USAGE_SLOTS 64
#define USAGE_BLOCK_MAX 4096

typedef struct usage_slot {
    char key_id[37];
    uint32_t version;
    int64_t left;  /* reserved and not yet used */
    int64_t block; /* the size of the last reservation */
} usage_slot;

struct kms_usage {
    pthread_mutex_t lock;
    usage_slot slots[USAGE_SLOTS];
};

kms_usage *kms_keystore_usage_new(void)
{
    kms_usage *u = calloc(1, sizeof *u);
    if (u == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&u->lock, NULL);
    return u;
}

void kms_keystore_usage_free(kms_usage *u, kms_store *store)
{
    if (u == NULL) {
        return;
    }
    for (size_t i = 0; i < USAGE_SLOTS; i++) {
        usage_slot *s = &u->slots[i];
        int64_t total = 0;
        if (s->left > 0 && store != NULL &&
            kms_store_usage_add(store, s->key_id, s->version, -s->left, &total) != 0) {
            /* The key is gone, or the file: the count stays high, which is the safe side. */
        }
    }
    pthread_mutex_destroy(&u->lock);
    free(u);
}

static size_t slot_of(const char *key_id, uint32_t version)
{
    uint32_t h = 2166136261u ^ version; /* FNV-1a */
    for (const char *p = key_id; *p != '\0'; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    return h % USAGE_SLOTS;
}

int kms_keystore_usage_count(const kms_keystore *ks, const char *key_id, uint32_t version)
{
    kms_usage *u = ks->usage;
    if (u == NULL) {
        return 0;
    }
    usage_slot *s = &u->slots[slot_of(key_id, version)];
    pthread_mutex_lock(&u->lock);
    bool mine = s->version == version && strcmp(s->key_id, key_id) == 0;
    if (mine && s->left > 0) {
        s->left--;
        pthread_mutex_unlock(&u->lock);
        return 0;
    }
    /* Another key in this slot keeps its reservation unused (counted high, never low). */
    int64_t block = mine ? s->block * 2 : 1;
    if (block > USAGE_BLOCK_MAX) {
        block = USAGE_BLOCK_MAX;
    }
    pthread_mutex_unlock(&u->lock);

    int64_t total = 0;
    KMS_GUARD(kms_store_usage_add(ks->store, key_id, version, block, &total));
    /* NIST SP 800-38D 8.3: at most 2^32 invocations with random IVs under one key. Usage-based
     * rotation happens long before (KMS_ROTATION_USAGE_LIMIT); this is the hard stop, and a
     * reservation that would cross it is refused whole (the count stays: over, never under). */
    KMS_ENSURE(total <= KMS_GCM_INVOCATION_MAX, KMS_ERR_INVALID_STATE,
               "version %u of key %s has encrypted 2^32 times, the most AES-GCM allows with random "
               "IVs: rotate it with `kmsctl rotate-key-on-demand --key-id %s` or `kmsctl "
               "run-scheduler --once`",
               version, key_id, key_id);
    pthread_mutex_lock(&u->lock);
    if (!(s->version == version && strcmp(s->key_id, key_id) == 0)) {
        snprintf(s->key_id, sizeof s->key_id, "%s", key_id);
        s->version = version;
        s->left = 0;
    }
    s->block = block;
    s->left += block - 1; /* one is this encryption */
    pthread_mutex_unlock(&u->lock);
    return 0;
}

/* ---- Rotation ------------------------------------------------------------------------------ */

int kms_keystore_check_rotatable(const kms_keystore *ks, const kms_key_record *rec)
{
    char arn[KMS_ARN_MAX];
    kms_keystore_key_arn(ks, rec->key_id, arn);
    /* AWS KMS: automatic and on-demand rotation are for symmetric encryption keys with key
     * material that KMS generated. */
    KMS_ENSURE(strcmp(rec->key_spec, "SYMMETRIC_DEFAULT") == 0 &&
                   strcmp(rec->key_usage, "ENCRYPT_DECRYPT") == 0 &&
                   strcmp(rec->origin, "AWS_KMS") == 0,
               KMS_ERR_UNSUPPORTED_OPERATION,
               "%s is a %s key; only symmetric encryption keys (SYMMETRIC_DEFAULT) can rotate", arn,
               rec->key_spec);
    return 0;
}

/* Destroys every object labelled `label`; none is fine. */
static int destroy_label(const kms_keystore *ks, const char *label)
{
    if (kms_hsm_destroy_key(ks->hsm, label) != 0 && kms_last_error() != KMS_ERR_NOT_FOUND) {
        return -1;
    }
    kms_error_clear();
    return 0;
}

/* The versions between the current one and `version` were claimed and abandoned (a claimant
 * that crashed, stalled or failed): never committed, and never claimed again, so whatever
 * material they left is nobody's. Cleared away on a best-effort basis; the key's deletion
 * destroys what is left. */
static void clear_abandoned(const kms_keystore *ks, const char *key_id, uint32_t version)
{
    kms_key_rotation rot;
    if (kms_store_rotation_get(ks->store, key_id, &rot) == 0) {
        for (uint32_t v = rot.current_version + 1; v < version; v++) {
            char label[KMS_LABEL_MAX];
            kms_keystore_label(key_id, v, label);
            (void)destroy_label(ks, label);
        }
    }
    kms_error_clear();
}

int kms_keystore_rotate(const kms_keystore *ks, const char *key_id, const kms_rotation_claim *cl)
{
    bool won = false;
    char label[KMS_LABEL_MAX];
    KMS_GUARD(kms_store_rotation_claim(ks->store, key_id, cl, &won));
    if (!won) {
        return 1;
    }
    kms_fault_point("rotation-after-claim");
    /* This version is ours alone: no other claim ever makes it (store.h), so no other process
     * generates, destroys or commits material under its label. An object already there can only
     * come from a home whose claims were made before versions stopped being reused: never
     * committed, so nothing was ever encrypted under it. */
    clear_abandoned(ks, key_id, cl->version);
    kms_keystore_label(key_id, cl->version, label);
    int r = destroy_label(ks, label);
    if (r == 0) {
        r = kms_hsm_generate_key(ks->hsm, KMS_HSM_AES_256, label, NULL, NULL);
    }
    if (r == 0) {
        kms_fault_point("rotation-after-hsm");
        r = kms_store_rotation_commit(ks->store, key_id, cl->version, cl->type, cl->now);
    }
    if (r != 0) {
        /* Not committed (the HSM failed, the database failed, or the claim was taken over
         * while this process stalled): the material is unused, and the version is never made
         * again. A failed clean-up is left to the next rotation or the key's deletion. */
        kms_saved_error e;
        kms_error_save(&e);
        if (destroy_label(ks, label) != 0 ||
            kms_store_rotation_release(ks->store, key_id, cl->version) != 0) {
            kms_error_clear();
        }
        return kms_error_restore(&e);
    }
    kms_fault_point("rotation-after-commit");
    return 0;
}

/* ---- The end of a key ---------------------------------------------------------------------- */

int kms_keystore_destroy(const kms_keystore *ks, const char *key_id, int64_t now)
{
    kms_key_record rec;
    kms_key_rotation rot;
    KMS_GUARD(kms_store_key_get(ks->store, key_id, &rec));
    int r = 0;
    if (strcmp(rec.key_state, "PendingDeletion") != 0 || rec.deletion_date > now) {
        r = kms_raise(KMS_ERR_INVALID_STATE, "key %s is %s; its deletion is not due", key_id,
                      rec.key_state);
    }
    uint32_t last = rec.current_version;
    if (r == 0 && kms_store_rotation_get(ks->store, key_id, &rot) == 0 && rot.claimed_max > last) {
        last = rot.claimed_max; /* rotations that crashed may have left their material */
    }
    kms_key_record_clean_up(&rec);
    KMS_GUARD(r);
    /* Material first: a crash after it leaves metadata whose deletion the next run finishes;
     * the other order could leave material that nothing names any more. CancelKeyDeletion is
     * refused once the deletion date has passed, so a key cannot come back without material. */
    for (uint32_t v = 1; v <= last; v++) {
        char label[KMS_LABEL_MAX];
        kms_keystore_label(key_id, v, label);
        KMS_GUARD(destroy_label(ks, label));
    }
    kms_fault_point("deletion-after-hsm");
    return kms_store_key_delete(ks->store, key_id, now);
}

int kms_keystore_missing(const kms_keystore *ks, const char *key_id)
{
    char arn[KMS_ARN_MAX];
    char when[32];
    int64_t deleted = 0;
    kms_keystore_key_arn(ks, key_id, arn);
    if (kms_store_deleted_get(ks->store, key_id, &deleted) == 0) {
        kms_time_iso8601(deleted, when);
        return kms_raise(KMS_ERR_NOT_FOUND,
                         "Key '%s' was deleted at %s, when its deletion window ended: its key "
                         "material is destroyed and nothing encrypted under it can be decrypted "
                         "again",
                         arn, when);
    }
    if (kms_last_error() != KMS_ERR_NOT_FOUND) {
        return -1;
    }
    return kms_raise(KMS_ERR_NOT_FOUND, "Key '%s' does not exist", arn);
}
