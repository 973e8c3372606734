/* A client of the service: a KMS home opened (its config, the HSM, the metadata store, the key
 * store, IAM, the authorisation caches and the audit trail). The public handle is kms_client of
 * include/kms/kms.h; its fields are private to src/service. */
#ifndef KMS_SERVICE_CLIENT_H
#define KMS_SERVICE_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "audit/audit.h"
#include "hsm/hsm.h"
#include "iam/iam.h"
#include "keystore/keystore.h"
#include "kms/kms.h"
#include "service/authz.h"
#include "store/store.h"

typedef struct kms_config {
    char region[32];
    char account_id[13];
    char *pkcs11_module;
    char *token_label;
    /* "internal_token_label": the token of the home's own objects (the keys sealing IAM secrets
     * and signing audit digests, the audit anchor, the home id), apart from the customer keys of
     * token_label; NULL (a home made before, or on another HSM): one token holds both */
    char *internal_token_label;
    char *pin_source;             /* "file:PATH" (relative to the home) or "env:NAME" */
    char *softhsm_conf;           /* SoftHSM2 config for this home, or NULL for another HSM */
    char home_id[37];             /* "home_id": the UUID init stored in the token too; "" in a
                                     home made before there was one */
    int64_t audit_digest_period;  /* "audit_digest_period_seconds"; 0: one hour */
    int64_t rotation_usage_limit; /* "rotation_usage_limit": encryptions per key version before
                                     the scheduler rotates; KMS_ROTATION_USAGE_LIMIT if absent */
    /* "certificate_expiry_warning_days": expiry warnings from this many days out; 0:
     * KMS_ACM_WARN_DAYS (src/pki/acm.h) */
    int64_t certificate_warning_days;
} kms_config;

/* HOME/config.json: KMSHomeException naming what is wrong. */
int kms_client_config_load(const char *home, kms_config *cfg) __attribute__((warn_unused_result));
void kms_client_config_clean_up(kms_config *cfg);

struct kms_client {
    char *home;
    kms_config cfg;
    kms_hsm *hsm; /* the token of the home's own objects (internal_token_label, else token_label) */
    /* The token of the customer keys when it is another (internal_token_label set), else NULL;
     * keystore.hsm is this one, else hsm. SoftHSM2 compares every object of a token at every
     * C_FindObjects: kept apart, finding the home's own objects (several per command) costs
     * the same with 100,000 keys as with none. */
    kms_hsm *keys_hsm;
    kms_store *store;
    kms_keystore keystore;
    kms_iam *iam;
    kms_authz authz;
    bool authz_ready;
    /* The credentials the client was opened with, kept (the secret in locked memory) to
     * authenticate again when IAM changes: a deactivated key or a revoked session stops working
     * for an open client too. */
    char access_key_id[32];
    char *secret_access_key;
    char *session_token;
    char *user_agent;
    /* The audit trail, opened at the first request (so that validate-logs still runs on a trail
     * the writer refuses); a request never runs without it. */
    pthread_mutex_t audit_lock;
    kms_audit *audit;
    uint8_t *audit_spki; /* the digest key's public half, DER SubjectPublicKeyInfo */
    size_t audit_spki_len;
    /* HMAC-SHA-256 keyed with the key acknowledging records, NULL until loaded */
    struct evp_mac_ctx_st *audit_ack_mac;
    bool softhsm_claimed; /* this client holds the process's SoftHSM2 home (home_check.h) */
    /* kms_call_network's memory of the access keys it saw (network.h). */
    struct kms_network_keys *network_keys;
    /* A remote client (kms_client_open_remote): every call goes to the server through it, and
     * no other member but cfg.region is set. */
    struct kms_remote *remote;
};

#endif
