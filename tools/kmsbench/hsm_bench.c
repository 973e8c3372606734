/* HsmEncrypt (see hsm_bench.h). */
#include "hsm_bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hsm/hsm.h"
#include "keystore/keystore.h"
#include "service/client.h"
#include "util/error.h"

/* The key, found once for the process (kmsbench measures one home). */
static pthread_mutex_t find_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool found;
static kms_hsm *hsm;
static char label[KMS_LABEL_MAX];
/* A distinct IV for every encryption: a counter, so that the figure is the HSM's and not that
 * of a random generator. */
static atomic_uint_fast64_t iv_counter;

typedef struct newest {
    const kms_keystore *ks;
    char last[37]; /* the last id listed: the next page starts after it */
    char key_id[37];
    uint32_t version;
    int64_t created;
} newest;

static int consider(void *arg, const char *key_id)
{
    newest *n = arg;
    kms_key_record rec = {0};
    snprintf(n->last, sizeof n->last, "%s", key_id);
    KMS_GUARD(kms_keystore_key_get(n->ks, key_id, &rec));
    if (strcmp(rec.description, "kmsbench") == 0 &&
        strcmp(rec.key_spec, "SYMMETRIC_DEFAULT") == 0 && strcmp(rec.key_state, "Enabled") == 0 &&
        (n->key_id[0] == '\0' || rec.creation_date >= n->created)) {
        snprintf(n->key_id, sizeof n->key_id, "%s", key_id);
        n->version = rec.current_version;
        n->created = rec.creation_date;
    }
    kms_key_record_clean_up(&rec);
    return 0;
}

/* The HSM label of the newest "kmsbench" symmetric key of the client's home. */
static int find_key(kms_client *c)
{
    KMS_ENSURE(c->remote == NULL && c->keystore.hsm != NULL, KMS_ERR_VALIDATION,
               "HsmEncrypt measures the HSM of a home in this process, not a server");
    newest n = {.ks = &c->keystore};
    bool truncated = true;
    char marker[37] = "";
    while (truncated) {
        KMS_GUARD(kms_keystore_key_list(&c->keystore, marker[0] != '\0' ? marker : NULL, 1000,
                                        consider, &n, &truncated));
        memcpy(marker, n.last, sizeof marker);
    }
    KMS_ENSURE(n.key_id[0] != '\0', KMS_ERR_NOT_FOUND,
               "HsmEncrypt: no enabled symmetric key described \"kmsbench\" in the home");
    kms_keystore_label(n.key_id, n.version, label);
    hsm = c->keystore.hsm; /* the customer keys' token */
    return 0;
}

int hsm_bench_encrypt(struct bench_ctx *b)
{
    /* C11 6.7.2.1: a pointer to a structure, converted, points to its first member. */
    kms_client *c = *(kms_client **)(void *)b;
    static const uint8_t pt[32] = "kmsbench plaintext of 32 bytes.";
    uint8_t ct[sizeof pt];
    uint8_t tag[KMS_HSM_GCM_TAG_LEN];
    uint8_t iv[KMS_HSM_GCM_IV_LEN] = {0};
    if (!atomic_load(&found)) {
        pthread_mutex_lock(&find_lock);
        int r = atomic_load(&found) ? 0 : find_key(c);
        if (r == 0) {
            atomic_store(&found, true);
        }
        pthread_mutex_unlock(&find_lock);
        KMS_GUARD(r);
    }
    uint64_t n = atomic_fetch_add(&iv_counter, 1);
    memcpy(iv, &n, sizeof n);
    return kms_hsm_aes_gcm_encrypt(hsm, label, iv, NULL, 0, pt, sizeof pt, ct, tag);
}
