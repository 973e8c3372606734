/* GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext (AWS KMS API reference): an RSA or
 * EC key pair whose private key is returned sealed under a symmetric encryption KMS key (and,
 * for the first, in plaintext too), with its public key. The key is authorised and checked
 * before the pair is made: an RSA_4096 pair costs a second of CPU, which a caller without
 * permission must not be able to spend. */
#include <string.h>

#include "service/audit_trail.h"
#include "service/ops.h"
#include "service/ops_crypto.h"
#include "util/secmem.h"

static int key_pair_spec(json_t *req, const char **spec)
{
    KMS_GUARD(kms_request_string(req, "KeyPairSpec", true, 1, 32, spec));
    KMS_ENSURE(strcmp(*spec, "SM2") != 0, KMS_ERR_UNSUPPORTED_OPERATION,
               "KeyPairSpec SM2 is supported only in the AWS China Regions");
    KMS_ENSURE(kms_keystore_data_key_pair_spec_valid(*spec), KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'keyPairSpec' failed to satisfy "
               "constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, "
               "ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, SM2]",
               *spec);
    return 0;
}

static int respond(kms_request *rq, json_t **resp, const char *arn, const char *spec,
                   const kms_buf *blob, const kms_data_key_pair *pair, bool with_plaintext)
{
    *resp = json_pack("{s:s, s:s, s:s}", "KeyId", arn, "KeyPairSpec", spec, "KeyMaterialId",
                      rq->key_material[0]);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    KMS_GUARD(kms_request_json_set_blob(*resp, "PrivateKeyCiphertextBlob", blob->data, blob->len));
    KMS_GUARD(
        kms_request_json_set_blob(*resp, "PublicKey", pair->public_key, pair->public_key_len));
    if (with_plaintext) {
        KMS_GUARD(kms_request_json_set_blob(*resp, "PrivateKeyPlaintext", pair->private_key,
                                            pair->private_key_len));
    }
    return 0;
}

static int generate_pair(kms_request *rq, json_t *req, json_t **resp, bool with_plaintext)
{
    int r = -1;
    const char *key_id = NULL, *spec = NULL;
    char arn[KMS_ARN_MAX];
    kms_key_record rec;
    kms_data_key_pair pair = {0};
    kms_encryption_context ctx = {0};
    kms_buf blob;
    memset(&rec, 0, sizeof rec);
    kms_buf_init(&blob, false);
    const char *action =
        with_plaintext ? "kms:GenerateDataKeyPair" : "kms:GenerateDataKeyPairWithoutPlaintext";
    if (kms_request_string(req, "KeyId", true, 1, 2048, &key_id) != 0 ||
        key_pair_spec(req, &spec) != 0 ||
        kms_request_context(req, "EncryptionContext", &ctx) != 0) {
        goto out;
    }
    /* Recipient is a Nitro Enclaves attestation document: there is no enclave here. */
    if (json_object_get(req, "Recipient") != NULL) {
        kms_raise(KMS_ERR_UNSUPPORTED_OPERATION,
                  "Recipient (an AWS Nitro Enclaves attestation document) is not supported");
        goto out;
    }
    if (kms_ops_crypto_data_key_cmk(rq, key_id, action, &ctx, &rec, arn) != 0 ||
        kms_keystore_data_key_pair(spec, &pair) != 0 ||
        kms_keystore_seal(&rq->client->keystore, &rec, pair.private_key, pair.private_key_len, &ctx,
                          &blob) != 0) {
        goto out;
    }
    kms_audit_trail_key_material(rq, 0, arn, rec.current_version);
    if (respond(rq, resp, arn, spec, &blob, &pair, with_plaintext) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_data_key_pair_clean_up(&pair);
    kms_key_record_clean_up(&rec);
    kms_request_context_free(&ctx);
    kms_buf_clean_up(&blob);
    return r;
}

int kms_ops_crypto_generate_data_key_pair(kms_request *rq, json_t *req, json_t **resp)
{
    return generate_pair(rq, req, resp, true);
}

int kms_ops_crypto_generate_data_key_pair_without_plaintext(kms_request *rq, json_t *req,
                                                            json_t **resp)
{
    return generate_pair(rq, req, resp, false);
}
