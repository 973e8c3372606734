/* DeriveSharedSecret (KMS API reference): ECDH between a KEY_AGREEMENT KMS key, whose private
 * key never leaves the HSM, and the caller's public key; the raw shared secret is returned. */
#include <stdlib.h>
#include <string.h>

#include "service/audit_trail.h"
#include "service/ops.h"
#include "util/secmem.h"

#define MAX_PUBLIC_KEY 8192

int kms_ops_crypto_derive_shared_secret(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    const char *alg = NULL;
    uint8_t *peer = NULL, *secret = NULL;
    size_t peer_len = 0, secret_len = 0;
    char arn[KMS_ARN_MAX];
    kms_key_record rec;
    bool resolved = false;
    memset(&rec, 0, sizeof rec);
    if (kms_request_string(req, "KeyAgreementAlgorithm", true, 1, 16, &alg) != 0) {
        goto out;
    }
    if (strcmp(alg, "ECDH") != 0) {
        kms_raise(KMS_ERR_VALIDATION,
                  "1 validation error detected: Value '%s' at 'keyAgreementAlgorithm' failed to "
                  "satisfy constraint: Member must satisfy enum value set: [ECDH]",
                  alg);
        goto out;
    }
    /* Recipient is a Nitro Enclaves attestation document: there is no enclave here. */
    if (json_object_get(req, "Recipient") != NULL) {
        kms_raise(KMS_ERR_UNSUPPORTED_OPERATION,
                  "Recipient (an AWS Nitro Enclaves attestation document) is not supported");
        goto out;
    }
    if (kms_request_blob(req, "PublicKey", true, 1, MAX_PUBLIC_KEY, false, &peer, &peer_len) != 0 ||
        kms_ops_keys_resolve(rq, req, "KeyId", "kms:DeriveSharedSecret", &rec, arn) != 0) {
        goto out;
    }
    resolved = true;
    if (kms_keystore_check_usable(&rq->client->keystore, &rec, "KEY_AGREEMENT") != 0 ||
        kms_gate_dry_run(rq) != 0 ||
        kms_keystore_derive_shared_secret(&rq->client->keystore, &rec, peer, peer_len, &secret,
                                          &secret_len) != 0) {
        goto out;
    }
    kms_audit_trail_key_material(rq, 0, arn, rec.current_version);
    *resp = json_pack("{s:s, s:s, s:s}", "KeyId", arn, "KeyAgreementAlgorithm", "ECDH", "KeyOrigin",
                      rec.origin);
    if (*resp == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_request_json_set_blob(*resp, "SharedSecret", secret, secret_len) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_secure_free(secret);
    free(peer);
    if (resolved) {
        kms_key_record_clean_up(&rec);
    }
    return r;
}
