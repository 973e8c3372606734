/* The service layer: THE GATE. Every operation, from kms_call or the typed API, runs
 *   authenticate -> authorize -> execute -> audit
 * through kms_gate_begin / kms_gate_authorize / kms_gate_end, and front ends reach keys by no
 * other road (design.md "Layers"). */
#ifndef KMS_SERVICE_SERVICE_H
#define KMS_SERVICE_SERVICE_H

#include <jansson.h>
#include <stdbool.h>

#include "hsm/hsm.h"
#include "keystore/keystore.h"
#include "kms/kms.h"
#include "store/store.h"

typedef struct kms_config {
    char region[32];
    char account_id[13];
    char *pkcs11_module;
    char *token_label;
    char *pin_source;   /* "file:PATH" (relative to the home) or "env:NAME" */
    char *softhsm_conf; /* SoftHSM2 config for this home, or NULL for another HSM */
} kms_config;

/* Who is calling. Until the IAM issue fills in authentication, an embedded client acts as the
 * account's root principal (whoever can read the KMS home owns it: design.md). */
typedef struct kms_principal {
    char type[16]; /* "Root", "IAMUser", "AssumedRole" */
    char arn[256];
    char account_id[13];
    char user_name[128];
} kms_principal;

struct kms_client {
    char *home;
    kms_config cfg;
    kms_hsm *hsm;
    kms_store *store;
    kms_keystore keystore;
    kms_principal caller;
};

/* One request on its way through the gate. */
typedef struct kms_request {
    kms_client *client;
    const char *operation; /* "Encrypt" */
    const char *action;    /* "kms:Encrypt" */
    bool authorized;
} kms_request;

int kms_gate_begin(kms_request *rq, kms_client *client, const char *operation)
    __attribute__((warn_unused_result));
/* Decides whether the caller may perform rq->action on resource_arn ("*" for none). */
int kms_gate_authorize(kms_request *rq, const char *action, const char *resource_arn)
    __attribute__((warn_unused_result));
/* Records the outcome (rc 0 or -1 with the thread-local error). Returns rc, or -1 if the
 * record could not be written (fail closed). */
int kms_gate_end(kms_request *rq, int rc);

void kms_config_clean_up(kms_config *cfg);
int kms_config_load(const char *home, kms_config *cfg) __attribute__((warn_unused_result));

/* ---- Operation handlers: JSON request in, JSON response out (AWS shapes). ---- */
typedef int (*kms_op_handler)(kms_request *rq, json_t *req, json_t **resp);

typedef struct kms_op {
    const char *name;     /* "CreateKey" */
    kms_op_handler handler;
    const char *const *members; /* request members it accepts, NULL-terminated */
} kms_op;

const kms_op *kms_op_find(const char *name);

/* Request member helpers (ValidationException naming the member). */
int kms_req_string(json_t *req, const char *name, bool required, size_t min, size_t max,
                   const char **out) __attribute__((warn_unused_result));
int kms_req_int(json_t *req, const char *name, bool required, long long min, long long max,
                long long dflt, long long *out) __attribute__((warn_unused_result));
/* Base64 member decoded into *out (free: secure ? kms_secret_free : free). */
int kms_req_blob(json_t *req, const char *name, bool required, size_t min, size_t max,
                 bool secure, uint8_t **out, size_t *n) __attribute__((warn_unused_result));
/* EncryptionContext-like map of strings; entries borrow from req (free entries only). */
int kms_req_context(json_t *req, const char *name, kms_encryption_context *ctx)
    __attribute__((warn_unused_result));
void kms_context_free(kms_encryption_context *ctx);
/* Sets member name of obj to base64(p, n). */
int kms_json_set_blob(json_t *obj, const char *name, const uint8_t *p, size_t n)
    __attribute__((warn_unused_result));

/* Handlers, by module. */
int kms_op_create_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_describe_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_keys(kms_request *rq, json_t *req, json_t **resp);
int kms_op_update_key_description(kms_request *rq, json_t *req, json_t **resp);
int kms_op_enable_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_disable_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_schedule_key_deletion(kms_request *rq, json_t *req, json_t **resp);
int kms_op_cancel_key_deletion(kms_request *rq, json_t *req, json_t **resp);
int kms_op_create_alias(kms_request *rq, json_t *req, json_t **resp);
int kms_op_update_alias(kms_request *rq, json_t *req, json_t **resp);
int kms_op_delete_alias(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_aliases(kms_request *rq, json_t *req, json_t **resp);
int kms_op_encrypt(kms_request *rq, json_t *req, json_t **resp);
int kms_op_decrypt(kms_request *rq, json_t *req, json_t **resp);
int kms_op_re_encrypt(kms_request *rq, json_t *req, json_t **resp);
int kms_op_generate_data_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_generate_data_key_without_plaintext(kms_request *rq, json_t *req, json_t **resp);
int kms_op_generate_random(kms_request *rq, json_t *req, json_t **resp);
int kms_op_sign(kms_request *rq, json_t *req, json_t **resp);
int kms_op_verify(kms_request *rq, json_t *req, json_t **resp);
int kms_op_get_public_key(kms_request *rq, json_t *req, json_t **resp);
int kms_op_generate_mac(kms_request *rq, json_t *req, json_t **resp);
int kms_op_verify_mac(kms_request *rq, json_t *req, json_t **resp);

#endif
