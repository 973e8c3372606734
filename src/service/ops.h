/* The KMS operations' handlers (ops_*.c) and the helpers they share. Private to src/service. */
#ifndef KMS_SERVICE_OPS_H
#define KMS_SERVICE_OPS_H

#include <jansson.h>
#include <stdbool.h>

#include "service/gate.h"
#include "service/request.h"
#include "util/buf.h"

/* AWS KMS quota: a key policy holds at most 32 KB. */
#define KMS_KEY_POLICY_MAX 32768

/* KeyMetadata as AWS KMS shapes it. */
json_t *kms_ops_keys_metadata_json(const kms_keystore *ks, const kms_key_record *rec);
int kms_ops_keys_respond_metadata(const kms_keystore *ks, const kms_key_record *rec, json_t **resp)
    __attribute__((warn_unused_result));
/* {member: list, Truncated, NextMarker}: takes list; NextMarker is marker_member of the last
 * item when truncated. */
int kms_ops_keys_respond_page(json_t **resp, const char *member, json_t *list, bool truncated,
                              const char *marker_member) __attribute__((warn_unused_result));
/* Reads the key reference in `member`, resolves it (aliases too), and authorises `action` on
 * the key's ARN, which lands in arn. */
int kms_ops_keys_last_usage(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_resolve(kms_request *rq, json_t *req, const char *member, const char *action,
                         kms_key_record *rec, char arn[KMS_ARN_MAX])
    __attribute__((warn_unused_result));

/* The handlers, by file: ops_keys.c, ops_alias.c, ops_crypto.c, ops_grants.c, ops_rotation.c. */
int kms_ops_keys_create(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_describe(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_list(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_update_description(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_enable(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_disable(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_schedule_deletion(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_cancel_deletion(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_alias_create(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_alias_update(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_alias_delete(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_alias_list(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_encrypt(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_decrypt(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_re_encrypt(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_generate_data_key(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_generate_data_key_without_plaintext(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_generate_data_key_pair(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_generate_data_key_pair_without_plaintext(kms_request *rq, json_t *req,
                                                            json_t **resp);
int kms_ops_crypto_derive_shared_secret(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_generate_random(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_sign(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_verify(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_get_public_key(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_generate_mac(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_crypto_verify_mac(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_get_policy(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_put_policy(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_keys_list_policies(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_grants_create(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_grants_list(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_grants_list_retirable(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_grants_retire(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_grants_revoke(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_rotation_enable(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_rotation_disable(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_rotation_get_status(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_rotation_rotate_on_demand(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_rotation_list(kms_request *rq, json_t *req, json_t **resp);

#endif
