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
int kms_ops_keys_resolve(kms_request *rq, json_t *req, const char *member, const char *action,
                         kms_key_record *rec, char arn[KMS_ARN_MAX])
    __attribute__((warn_unused_result));

/* The handlers, by file: ops_keys.c, ops_alias.c, ops_crypto.c, ops_grants.c, ops_rotation.c. */
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
int kms_op_get_key_policy(kms_request *rq, json_t *req, json_t **resp);
int kms_op_put_key_policy(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_key_policies(kms_request *rq, json_t *req, json_t **resp);
int kms_op_create_grant(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_grants(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_retirable_grants(kms_request *rq, json_t *req, json_t **resp);
int kms_op_retire_grant(kms_request *rq, json_t *req, json_t **resp);
int kms_op_revoke_grant(kms_request *rq, json_t *req, json_t **resp);
int kms_op_enable_key_rotation(kms_request *rq, json_t *req, json_t **resp);
int kms_op_disable_key_rotation(kms_request *rq, json_t *req, json_t **resp);
int kms_op_get_key_rotation_status(kms_request *rq, json_t *req, json_t **resp);
int kms_op_rotate_key_on_demand(kms_request *rq, json_t *req, json_t **resp);
int kms_op_list_key_rotations(kms_request *rq, json_t *req, json_t **resp);

#endif
