/* Helpers shared by the operation handlers. */
#ifndef KMS_SERVICE_OPS_H
#define KMS_SERVICE_OPS_H

#include "service/service.h"
#include "util/buf.h"

/* AWS KMS quota: a key policy holds at most 32 KB. */
#define KMS_KEY_POLICY_MAX 32768

/* KeyMetadata as AWS KMS shapes it. */
json_t *kms_key_metadata_json(const kms_keystore *ks, const kms_key_record *rec);
int kms_respond_metadata(const kms_keystore *ks, const kms_key_record *rec, json_t **resp)
    __attribute__((warn_unused_result));
/* {member: list, Truncated, NextMarker}: takes list; NextMarker is marker_member of the last
 * item when truncated. */
int kms_respond_page(json_t **resp, const char *member, json_t *list, bool truncated,
                     const char *marker_member) __attribute__((warn_unused_result));
/* Reads the key reference in `member`, resolves it (aliases too), and authorises `action` on
 * the key's ARN, which lands in arn. */
int kms_op_resolve(kms_request *rq, json_t *req, const char *member, const char *action,
                   kms_key_record *rec, char arn[KMS_ARN_MAX]) __attribute__((warn_unused_result));

#endif

#ifndef KMS_SERVICE_OPS_CORE
#define KMS_SERVICE_OPS_CORE
/* The cryptographic operations' cores, shared by kms_call and the typed API. Each resolves the
 * key, authorises `action` on it, checks its state and usage, and does the work. arn, when not
 * NULL, receives the key's ARN. */
int kms_do_encrypt(kms_request *rq, const char *key_ref, const char *action, const uint8_t *pt,
                   size_t pt_len, const kms_encryption_context *ctx, kms_buf *blob,
                   char arn[KMS_ARN_MAX]) __attribute__((warn_unused_result));
/* key_ref may be NULL (the blob names its key). pt is a secure buffer. */
int kms_do_decrypt(kms_request *rq, const char *key_ref, const char *action, const uint8_t *blob,
                   size_t blob_len, const kms_encryption_context *ctx, kms_buf *pt,
                   char arn[KMS_ARN_MAX]) __attribute__((warn_unused_result));
/* plaintext may be NULL (WithoutPlaintext); else it receives a sodium_malloc'd key. */
int kms_do_generate_data_key(kms_request *rq, const char *key_ref, const char *action,
                             size_t key_bytes, const kms_encryption_context *ctx,
                             uint8_t **plaintext, kms_buf *blob, char arn[KMS_ARN_MAX])
    __attribute__((warn_unused_result));
int kms_do_sign(kms_request *rq, const char *key_ref, const uint8_t *msg, size_t msg_len,
                const char *message_type, const char *algorithm, uint8_t **sig, size_t *sig_len,
                char arn[KMS_ARN_MAX]) __attribute__((warn_unused_result));
#endif

#ifndef KMS_SERVICE_OPS_GRANTS
#define KMS_SERVICE_OPS_GRANTS
/* 1 when a grant of rec allows the caller `action` with the request's encryption context, 0 when
 * none does, -1 on error. */
int kms_grants_allow(kms_request *rq, const char *action, const kms_key_record *rec)
    __attribute__((warn_unused_result));
/* GrantTokens of a request: at most 10, each one a token CreateGrant could have issued
 * (InvalidGrantTokenException). */
int kms_grant_tokens_check(json_t *req) __attribute__((warn_unused_result));
#endif
