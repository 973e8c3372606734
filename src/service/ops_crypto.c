/* Cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
 * GenerateRandom, Sign, Verify, GetPublicKey, GenerateMac, VerifyMac. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/audit_trail.h"
#include "service/ops.h"
#include "service/ops_crypto.h"
#include "util/secmem.h"
#include "util/util.h"

#define MAX_MESSAGE 4096
#define MAX_SIGNATURE 6144
#define MAX_DATA_KEY 1024

/* Resolves key_ref and authorises action on it, then checks state and usage. */
static int use_key(kms_request *rq, const char *key_ref, const char *action, const char *usage,
                   kms_key_record *rec, char arn[KMS_ARN_MAX])
{
    rq->key_ref = key_ref;
    KMS_GUARD(kms_keystore_resolve(&rq->client->keystore, key_ref, true, rec));
    kms_keystore_key_arn(&rq->client->keystore, rec->key_id, arn);
    KMS_GUARD(kms_gate_authorize_key(rq, action, rec, arn));
    return kms_keystore_check_usable(&rq->client->keystore, rec, usage);
}

/* ---- Encryption algorithms ----------------------------------------------------------------- */

/* Whether the key encrypts with RSAES-OAEP (an RSA key with KeyUsage ENCRYPT_DECRYPT). */
static bool is_rsa_encryption_key(const kms_key_record *rec)
{
    return kms_key_spec_is_rsa_encryption(kms_key_spec_find(rec->key_spec), rec->key_usage);
}

/* Checks the EncryptionAlgorithm of a request against the key, whose usage the caller checked
 * (ENCRYPT_DECRYPT). Symmetric keys take SYMMETRIC_DEFAULT or nothing; RSA keys require one of
 * their RSAES_OAEP algorithms (AWS KMS API reference, Encrypt: EncryptionAlgorithm). *rsa
 * receives the algorithm for RSA keys, else NULL. */
static int check_alg_for_key(const kms_key_record *rec, const char *arn, const char *alg,
                             const kms_enc_alg_info **rsa)
{
    const kms_key_spec_info *spec = kms_key_spec_find(rec->key_spec);
    *rsa = NULL;
    if (!is_rsa_encryption_key(rec)) {
        KMS_ENSURE(alg == NULL || strcmp(alg, "SYMMETRIC_DEFAULT") == 0, KMS_ERR_INVALID_KEY_USAGE,
                   "%s is not valid for %s, a symmetric key; use SYMMETRIC_DEFAULT", alg, arn);
        return 0;
    }
    KMS_ENSURE(alg != NULL, KMS_ERR_VALIDATION,
               "EncryptionAlgorithm is required with %s, an asymmetric %s key: give "
               "RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256",
               arn, rec->key_spec);
    KMS_ENSURE(kms_key_spec_allows_enc_alg(spec, alg), KMS_ERR_INVALID_KEY_USAGE,
               "%s is not valid for %s, an asymmetric %s key; use RSAES_OAEP_SHA_1 or "
               "RSAES_OAEP_SHA_256",
               alg, arn, rec->key_spec);
    *rsa = kms_enc_alg_find(alg);
    KMS_ENSURE(*rsa != NULL, KMS_ERR_INTERNAL, "no details of encryption algorithm %s", alg);
    return 0;
}

/* AWS KMS: "An encryption context is supported only on operations with symmetric encryption
 * KMS keys." */
static int no_context_for_rsa(const kms_encryption_context *ctx, const char *arn)
{
    KMS_ENSURE(ctx == NULL || ctx->count == 0, KMS_ERR_VALIDATION,
               "EncryptionContext is not supported with %s, an asymmetric key: an encryption "
               "context is supported only with symmetric encryption keys",
               arn);
    return 0;
}

/* ---- Encrypt, Decrypt ------------------------------------------------------------------------ */

/* Encrypt's core: alg is the request's EncryptionAlgorithm (NULL: none given); *alg_used
 * receives the algorithm for the response. */
static int encrypt_core(kms_request *rq, const char *key_ref, const char *action, const char *alg,
                        const uint8_t *pt, size_t pt_len, const kms_encryption_context *ctx,
                        kms_buf *blob, char arn[KMS_ARN_MAX], const char **alg_used)
{
    kms_key_record rec;
    char own[KMS_ARN_MAX];
    const kms_enc_alg_info *rsa = NULL;
    memset(&rec, 0, sizeof rec);
    if (arn == NULL) {
        arn = own;
    }
    KMS_ENSURE(key_ref != NULL, KMS_ERR_VALIDATION, "KeyId is required");
    KMS_ENSURE(pt_len >= 1, KMS_ERR_VALIDATION, "Plaintext must not be empty");
    rq->enc_ctx = ctx;
    int r = use_key(rq, key_ref, action, "ENCRYPT_DECRYPT", &rec, arn);
    if (r == 0) {
        r = check_alg_for_key(&rec, arn, alg, &rsa);
    }
    if (r == 0 && rsa != NULL) {
        r = no_context_for_rsa(ctx, arn);
    }
    if (r == 0) {
        r = kms_gate_dry_run(rq);
    }
    if (r == 0 && rsa != NULL) {
        r = kms_keystore_rsa_encrypt(&rq->client->keystore, &rec, rsa, pt, pt_len, blob);
    } else if (r == 0) {
        r = kms_keystore_seal(&rq->client->keystore, &rec, pt, pt_len, ctx, blob);
        if (r == 0) {
            kms_audit_trail_key_material(rq, strcmp(action, "kms:ReEncryptTo") == 0, arn,
                                         rec.current_version);
        }
    }
    if (r == 0 && alg_used != NULL) {
        *alg_used = rsa != NULL ? rsa->name : "SYMMETRIC_DEFAULT";
    }
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_crypto_encrypt_core(kms_request *rq, const char *key_ref, const char *action,
                                const uint8_t *pt, size_t pt_len, const kms_encryption_context *ctx,
                                kms_buf *blob, char arn[KMS_ARN_MAX])
{
    return encrypt_core(rq, key_ref, action, NULL, pt, pt_len, ctx, blob, arn, NULL);
}

/* A dry run of Decrypt ends once the ciphertext opened (a dry run answers what the call would,
 * and a ciphertext that does not open would fail): the plaintext is wiped by the caller, never
 * returned. One of ReEncrypt goes on to authorise and check its destination (encrypt_core). */
static int dry_run_decrypt(const kms_request *rq, const char *action)
{
    return strcmp(action, "kms:ReEncryptFrom") == 0 ? 0 : kms_gate_dry_run(rq);
}

/* Decrypt's core. A KeyId that names an RSA encryption key takes the RSA path before anything
 * tries to parse a symmetric blob (an RSA ciphertext names no key). */
static int decrypt_core(kms_request *rq, const char *key_ref, const char *action, const char *alg,
                        const uint8_t *blob, size_t blob_len, const kms_encryption_context *ctx,
                        kms_buf *pt, char arn[KMS_ARN_MAX], const char **alg_used)
{
    int r = -1;
    kms_blob b;
    kms_key_record rec;
    char own[KMS_ARN_MAX];
    const kms_enc_alg_info *rsa = NULL;
    memset(&rec, 0, sizeof rec);
    if (arn == NULL) {
        arn = own;
    }
    KMS_ENSURE(key_ref != NULL || alg == NULL || strcmp(alg, "SYMMETRIC_DEFAULT") == 0,
               KMS_ERR_VALIDATION,
               "KeyId is required with EncryptionAlgorithm %s: an asymmetric ciphertext does "
               "not name its key",
               alg);
    rq->key_ref = key_ref;
    rq->enc_ctx = ctx;
    if (key_ref != NULL) {
        KMS_GUARD(kms_keystore_resolve(&rq->client->keystore, key_ref, true, &rec));
        if (rec.public_key != NULL) {
            /* Asymmetric: the usage check refuses signing keys. */
            kms_keystore_key_arn(&rq->client->keystore, rec.key_id, arn);
            if (kms_gate_authorize_key(rq, action, &rec, arn) != 0 ||
                kms_keystore_check_usable(&rq->client->keystore, &rec, "ENCRYPT_DECRYPT") != 0 ||
                check_alg_for_key(&rec, arn, alg, &rsa) != 0 || no_context_for_rsa(ctx, arn) != 0 ||
                kms_keystore_rsa_decrypt(&rq->client->keystore, &rec, rsa, blob, blob_len, pt) !=
                    0 ||
                dry_run_decrypt(rq, action) != 0) {
                goto out;
            }
            goto done;
        }
    }
    if (kms_blob_parse(blob, blob_len, &b) != 0) {
        goto out;
    }
    if (key_ref != NULL) {
        if (strcmp(rec.key_id, b.key_id) != 0) {
            kms_keystore_key_arn(&rq->client->keystore, b.key_id, arn);
            kms_raise(KMS_ERR_INCORRECT_KEY,
                      "The key ID in the request does not identify the key that encrypted the "
                      "ciphertext: it was encrypted under %s",
                      arn);
            goto out;
        }
    } else if (kms_keystore_key_get(&rq->client->keystore, b.key_id, &rec) != 0) {
        int64_t deleted = 0;
        if (kms_last_error() != KMS_ERR_NOT_FOUND) {
            goto out;
        }
        if (kms_keystore_deleted_get(&rq->client->keystore, b.key_id, &deleted) == 0) {
            kms_keystore_missing(&rq->client->keystore, b.key_id); /* says when it went */
        } else if (kms_last_error() == KMS_ERR_NOT_FOUND) {
            kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                      "the ciphertext names key %s, which this KMS does not hold (it was "
                      "altered, or made by another KMS)",
                      b.key_id);
        }
        goto out;
    }
    kms_keystore_key_arn(&rq->client->keystore, rec.key_id, arn);
    if (kms_gate_authorize_key(rq, action, &rec, arn) != 0 ||
        kms_keystore_check_usable(&rq->client->keystore, &rec, "ENCRYPT_DECRYPT") != 0 ||
        check_alg_for_key(&rec, arn, alg, &rsa) != 0 ||
        kms_keystore_open(&rq->client->keystore, &rec, &b, ctx, pt) != 0 ||
        dry_run_decrypt(rq, action) != 0) {
        goto out;
    }
    kms_audit_trail_key_material(rq, 0, arn, b.key_version);
done:
    if (alg_used != NULL) {
        *alg_used = rsa != NULL ? rsa->name : "SYMMETRIC_DEFAULT";
    }
    r = 0;
out:
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_crypto_decrypt_core(kms_request *rq, const char *key_ref, const char *action,
                                const uint8_t *blob, size_t blob_len,
                                const kms_encryption_context *ctx, kms_buf *pt,
                                char arn[KMS_ARN_MAX])
{
    return decrypt_core(rq, key_ref, action, NULL, blob, blob_len, ctx, pt, arn, NULL);
}

int kms_ops_crypto_data_key_cmk(kms_request *rq, const char *key_ref, const char *action,
                                const kms_encryption_context *ctx, kms_key_record *rec,
                                char arn[KMS_ARN_MAX])
{
    KMS_ENSURE(key_ref != NULL, KMS_ERR_VALIDATION, "KeyId is required");
    rq->enc_ctx = ctx;
    KMS_GUARD(use_key(rq, key_ref, action, "ENCRYPT_DECRYPT", rec, arn));
    /* AWS KMS API reference, GenerateDataKey: "To generate a data key, specify the symmetric
     * encryption KMS key". */
    KMS_ENSURE(rec->public_key == NULL, KMS_ERR_INVALID_KEY_USAGE,
               "%s is an asymmetric %s key; data keys are generated under symmetric encryption "
               "keys only",
               arn, rec->key_spec);
    return kms_gate_dry_run(rq);
}

int kms_ops_crypto_generate_data_key_core(kms_request *rq, const char *key_ref, const char *action,
                                          size_t key_bytes, const kms_encryption_context *ctx,
                                          uint8_t **plaintext, kms_buf *blob, char arn[KMS_ARN_MAX])
{
    int r = -1;
    kms_key_record rec;
    char own[KMS_ARN_MAX];
    uint8_t *dk = NULL;
    memset(&rec, 0, sizeof rec);
    KMS_ENSURE(key_ref != NULL, KMS_ERR_VALIDATION, "KeyId is required");
    KMS_ENSURE(key_bytes >= 1 && key_bytes <= MAX_DATA_KEY, KMS_ERR_VALIDATION,
               "NumberOfBytes must be between 1 and %d", MAX_DATA_KEY);
    if (arn == NULL) {
        arn = own;
    }
    if (kms_ops_crypto_data_key_cmk(rq, key_ref, action, ctx, &rec, arn) != 0) {
        goto out;
    }
    dk = kms_secure_alloc(key_bytes);
    if (dk == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    randombytes_buf(dk, key_bytes);
    if (kms_keystore_seal(&rq->client->keystore, &rec, dk, key_bytes, ctx, blob) != 0) {
        goto out;
    }
    kms_audit_trail_key_material(rq, 0, arn, rec.current_version);
    if (plaintext != NULL) {
        *plaintext = dk;
        dk = NULL;
    }
    r = 0;
out:
    if (dk != NULL) {
        kms_secure_free(dk);
    }
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_crypto_sign_core(kms_request *rq, const char *key_ref, const uint8_t *msg,
                             size_t msg_len, const char *message_type, const char *algorithm,
                             uint8_t **sig, size_t *sig_len, char arn[KMS_ARN_MAX])
{
    int r = -1;
    kms_key_record rec;
    char own[KMS_ARN_MAX];
    memset(&rec, 0, sizeof rec);
    if (arn == NULL) {
        arn = own;
    }
    KMS_ENSURE(key_ref != NULL && algorithm != NULL, KMS_ERR_VALIDATION,
               "KeyId and SigningAlgorithm are required");
    KMS_ENSURE(msg_len >= 1 && msg_len <= MAX_MESSAGE, KMS_ERR_VALIDATION,
               "Message must be between 1 and %d bytes", MAX_MESSAGE);
    if (use_key(rq, key_ref, "kms:Sign", "SIGN_VERIFY", &rec, arn) != 0 ||
        kms_gate_dry_run(rq) != 0) {
        goto out;
    }
    r = kms_keystore_sign(&rq->client->keystore, &rec, msg, msg_len, message_type, algorithm, sig,
                          sig_len);
out:
    kms_key_record_clean_up(&rec);
    return r;
}

/* Reads an EncryptionAlgorithm member (NULL if absent); ValidationException outside AWS's enum.
 * Whether it fits the key is checked once the key is known (check_alg_for_key). */
static int read_encryption_algorithm(json_t *req, const char *member, const char **alg)
{
    *alg = NULL;
    KMS_GUARD(kms_request_string(req, member, false, 1, 64, alg));
    KMS_ENSURE(*alg == NULL || strcmp(*alg, "SYMMETRIC_DEFAULT") == 0 ||
                   strcmp(*alg, "RSAES_OAEP_SHA_1") == 0 ||
                   strcmp(*alg, "RSAES_OAEP_SHA_256") == 0 || strcmp(*alg, "SM2PKE") == 0,
               KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
               "Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, "
               "RSAES_OAEP_SHA_256, SM2PKE]",
               *alg, member);
    return 0;
}

/* Sets CiphertextBlob from blob and KeyId from arn. */
static int respond_blob(json_t **resp, const kms_buf *blob, const char *arn)
{
    *resp = json_pack("{s:s}", "KeyId", arn);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    return kms_request_json_set_blob(*resp, "CiphertextBlob", blob->data, blob->len);
}

int kms_ops_crypto_encrypt(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    const char *key_id = NULL, *alg = NULL, *alg_used = NULL;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    char arn[KMS_ARN_MAX];
    kms_encryption_context ctx = {0};
    kms_buf blob;
    kms_buf_init(&blob, false);
    if (kms_request_string(req, "KeyId", true, 1, 2048, &key_id) != 0 ||
        read_encryption_algorithm(req, "EncryptionAlgorithm", &alg) != 0 ||
        kms_request_blob(req, "Plaintext", true, 1, KMS_MAX_PLAINTEXT, true, &pt, &pt_len) != 0 ||
        kms_request_context(req, "EncryptionContext", &ctx) != 0 ||
        encrypt_core(rq, key_id, "kms:Encrypt", alg, pt, pt_len, &ctx, &blob, arn, &alg_used) !=
            0 ||
        respond_blob(resp, &blob, arn) != 0) {
        goto out;
    }
    if (json_object_set_new(*resp, "EncryptionAlgorithm", json_string(alg_used)) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_secret_free(pt, pt_len);
    kms_request_context_free(&ctx);
    kms_buf_clean_up(&blob);
    return r;
}

int kms_ops_crypto_decrypt(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    const char *key_id = NULL, *alg = NULL, *alg_used = NULL;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    char arn[KMS_ARN_MAX];
    kms_encryption_context ctx = {0};
    kms_buf pt;
    kms_buf_init(&pt, true);
    if (kms_request_string(req, "KeyId", false, 1, 2048, &key_id) != 0 ||
        read_encryption_algorithm(req, "EncryptionAlgorithm", &alg) != 0 ||
        kms_request_blob(req, "CiphertextBlob", true, 1, KMS_MAX_BLOB, false, &blob, &blob_len) !=
            0 ||
        kms_request_context(req, "EncryptionContext", &ctx) != 0 ||
        decrypt_core(rq, key_id, "kms:Decrypt", alg, blob, blob_len, &ctx, &pt, arn, &alg_used) !=
            0) {
        goto out;
    }
    *resp = json_pack("{s:s, s:s, s:s*}", "KeyId", arn, "EncryptionAlgorithm", alg_used,
                      "KeyMaterialId", rq->key_material[0][0] ? rq->key_material[0] : NULL);
    if (*resp == NULL || kms_request_json_set_blob(*resp, "Plaintext", pt.data, pt.len) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    free(blob);
    kms_request_context_free(&ctx);
    kms_buf_clean_up(&pt);
    return r;
}

int kms_ops_crypto_re_encrypt(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    const char *src_key = NULL, *dst_key = NULL;
    const char *src_alg = NULL, *dst_alg = NULL, *src_used = NULL, *dst_used = NULL;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    char src_arn[KMS_ARN_MAX], dst_arn[KMS_ARN_MAX];
    kms_encryption_context src_ctx = {0}, dst_ctx = {0};
    kms_buf pt, out_blob;
    kms_buf_init(&pt, true);
    kms_buf_init(&out_blob, false);
    if (kms_request_string(req, "SourceKeyId", false, 1, 2048, &src_key) != 0 ||
        kms_request_string(req, "DestinationKeyId", true, 1, 2048, &dst_key) != 0 ||
        read_encryption_algorithm(req, "SourceEncryptionAlgorithm", &src_alg) != 0 ||
        read_encryption_algorithm(req, "DestinationEncryptionAlgorithm", &dst_alg) != 0 ||
        kms_request_blob(req, "CiphertextBlob", true, 1, KMS_MAX_BLOB, false, &blob, &blob_len) !=
            0 ||
        kms_request_context(req, "SourceEncryptionContext", &src_ctx) != 0 ||
        kms_request_context(req, "DestinationEncryptionContext", &dst_ctx) != 0 ||
        decrypt_core(rq, src_key, "kms:ReEncryptFrom", src_alg, blob, blob_len, &src_ctx, &pt,
                     src_arn, &src_used) != 0 ||
        encrypt_core(rq, dst_key, "kms:ReEncryptTo", dst_alg, pt.data, pt.len, &dst_ctx, &out_blob,
                     dst_arn, &dst_used) != 0 ||
        respond_blob(resp, &out_blob, dst_arn) != 0) {
        goto out;
    }
    if (json_object_set_new(*resp, "SourceKeyId", json_string(src_arn)) != 0 ||
        json_object_set_new(*resp, "SourceEncryptionAlgorithm", json_string(src_used)) != 0 ||
        json_object_set_new(*resp, "DestinationEncryptionAlgorithm", json_string(dst_used)) != 0 ||
        (rq->key_material[0][0] != '\0' &&
         json_object_set_new(*resp, "SourceKeyMaterialId", json_string(rq->key_material[0])) !=
             0) ||
        (rq->key_material[1][0] != '\0' &&
         json_object_set_new(*resp, "DestinationKeyMaterialId", json_string(rq->key_material[1])) !=
             0)) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    free(blob);
    kms_request_context_free(&src_ctx);
    kms_request_context_free(&dst_ctx);
    kms_buf_clean_up(&pt);
    kms_buf_clean_up(&out_blob);
    return r;
}

/* KeySpec AES_256 / AES_128 or NumberOfBytes, exactly one. */
static int data_key_size(json_t *req, size_t *n)
{
    const char *spec = NULL;
    long long bytes = 0;
    KMS_GUARD(kms_request_string(req, "KeySpec", false, 1, 16, &spec));
    KMS_GUARD(kms_request_int(req, "NumberOfBytes", false, 1, MAX_DATA_KEY, 0, &bytes));
    KMS_ENSURE(!(spec && bytes), KMS_ERR_VALIDATION,
               "Please specify either number of bytes or key spec, not both.");
    KMS_ENSURE(spec || bytes, KMS_ERR_VALIDATION,
               "Please specify either number of bytes or key spec.");
    if (bytes) {
        *n = (size_t)bytes;
        return 0;
    }
    KMS_ENSURE(strcmp(spec, "AES_256") == 0 || strcmp(spec, "AES_128") == 0, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'keySpec' failed to satisfy "
               "constraint: Member must satisfy enum value set: [AES_256, AES_128]",
               spec);
    *n = strcmp(spec, "AES_256") == 0 ? 32 : 16;
    return 0;
}

static int generate_data_key(kms_request *rq, json_t *req, json_t **resp, bool with_plaintext)
{
    int r = -1;
    const char *key_id = NULL;
    size_t n = 0;
    uint8_t *dk = NULL;
    char arn[KMS_ARN_MAX];
    kms_encryption_context ctx = {0};
    kms_buf blob;
    kms_buf_init(&blob, false);
    const char *action =
        with_plaintext ? "kms:GenerateDataKey" : "kms:GenerateDataKeyWithoutPlaintext";
    if (kms_request_string(req, "KeyId", true, 1, 2048, &key_id) != 0 ||
        data_key_size(req, &n) != 0 || kms_request_context(req, "EncryptionContext", &ctx) != 0 ||
        kms_ops_crypto_generate_data_key_core(rq, key_id, action, n, &ctx,
                                              with_plaintext ? &dk : NULL, &blob, arn) != 0 ||
        respond_blob(resp, &blob, arn) != 0) {
        goto out;
    }
    if (with_plaintext && kms_request_json_set_blob(*resp, "Plaintext", dk, n) != 0) {
        goto out;
    }
    if (json_object_set_new(*resp, "KeyMaterialId", json_string(rq->key_material[0])) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_secret_free(dk, n);
    kms_request_context_free(&ctx);
    kms_buf_clean_up(&blob);
    return r;
}

int kms_ops_crypto_generate_data_key(kms_request *rq, json_t *req, json_t **resp)
{
    return generate_data_key(rq, req, resp, true);
}

int kms_ops_crypto_generate_data_key_without_plaintext(kms_request *rq, json_t *req, json_t **resp)
{
    return generate_data_key(rq, req, resp, false);
}

int kms_ops_crypto_generate_random(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    long long n = 0;
    const char *store = NULL;
    KMS_GUARD(kms_request_int(req, "NumberOfBytes", true, 1, MAX_DATA_KEY, 0, &n));
    KMS_GUARD(kms_request_string(req, "CustomKeyStoreId", false, 1, 64, &store));
    KMS_ENSURE(store == NULL, KMS_ERR_UNSUPPORTED_OPERATION, "custom key stores are not supported");
    KMS_GUARD(kms_gate_authorize(rq, "kms:GenerateRandom", "*"));
    uint8_t *buf = kms_secure_alloc((size_t)n);
    KMS_ENSURE(buf != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (kms_keystore_random(&rq->client->keystore, buf, (size_t)n) != 0) {
        goto out;
    }
    *resp = json_object();
    if (*resp == NULL || kms_request_json_set_blob(*resp, "Plaintext", buf, (size_t)n) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_secure_free(buf);
    return r;
}

int kms_ops_crypto_sign(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    const char *key_id = NULL, *type = NULL, *alg = NULL;
    uint8_t *msg = NULL, *sig = NULL;
    size_t msg_len = 0, sig_len = 0;
    char arn[KMS_ARN_MAX];
    if (kms_request_string(req, "KeyId", true, 1, 2048, &key_id) != 0 ||
        kms_request_string(req, "MessageType", false, 1, 16, &type) != 0 ||
        kms_request_string(req, "SigningAlgorithm", true, 1, 64, &alg) != 0 ||
        kms_request_blob(req, "Message", true, 1, MAX_MESSAGE, true, &msg, &msg_len) != 0 ||
        kms_ops_crypto_sign_core(rq, key_id, msg, msg_len, type, alg, &sig, &sig_len, arn) != 0) {
        goto out;
    }
    *resp = json_pack("{s:s, s:s}", "KeyId", arn, "SigningAlgorithm", alg);
    if (*resp == NULL || kms_request_json_set_blob(*resp, "Signature", sig, sig_len) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_secret_free(msg, msg_len);
    free(sig);
    return r;
}

int kms_ops_crypto_verify(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    const char *key_id = NULL, *type = NULL, *alg_name = NULL;
    uint8_t *msg = NULL, *sig = NULL;
    size_t msg_len = 0, sig_len = 0;
    char arn[KMS_ARN_MAX];
    kms_key_record rec;
    memset(&rec, 0, sizeof rec);
    if (kms_request_string(req, "KeyId", true, 1, 2048, &key_id) != 0 ||
        kms_request_string(req, "MessageType", false, 1, 16, &type) != 0 ||
        kms_request_string(req, "SigningAlgorithm", true, 1, 64, &alg_name) != 0 ||
        kms_request_blob(req, "Message", true, 1, MAX_MESSAGE, true, &msg, &msg_len) != 0 ||
        kms_request_blob(req, "Signature", true, 1, MAX_SIGNATURE, false, &sig, &sig_len) != 0 ||
        use_key(rq, key_id, "kms:Verify", "SIGN_VERIFY", &rec, arn) != 0 ||
        kms_gate_dry_run(rq) != 0 ||
        kms_keystore_verify(&rq->client->keystore, &rec, msg, msg_len, type, alg_name, sig,
                            sig_len) != 0) {
        goto out;
    }
    *resp = json_pack("{s:s, s:b, s:s}", "KeyId", arn, "SignatureValid", 1, "SigningAlgorithm",
                      alg_name);
    r = *resp ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
out:
    kms_secret_free(msg, msg_len);
    free(sig);
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_crypto_get_public_key(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    char arn[KMS_ARN_MAX];
    kms_key_record rec;
    memset(&rec, 0, sizeof rec);
    if (kms_ops_keys_resolve(rq, req, "KeyId", "kms:GetPublicKey", &rec, arn) != 0) {
        goto out;
    }
    const uint8_t *der = NULL;
    size_t der_len = 0;
    if (kms_keystore_public_key(&rq->client->keystore, &rec, &der, &der_len) != 0) {
        goto out;
    }
    /* AWS KMS API reference, GetPublicKey: EncryptionAlgorithms for ENCRYPT_DECRYPT keys,
     * SigningAlgorithms for SIGN_VERIFY keys. */
    const kms_key_spec_info *spec = kms_key_spec_find(rec.key_spec);
    bool encryption = is_rsa_encryption_key(&rec);
    bool agreement = kms_key_spec_is_key_agreement(spec, rec.key_usage);
    static const char *const ecdh[] = {"ECDH", NULL};
    const char *const *list = NULL;
    size_t max = 0;
    if (agreement) {
        list = ecdh;
        max = 1;
    } else if (spec != NULL) {
        list = encryption ? spec->enc_algorithms : spec->sig_algorithms;
        max = encryption ? sizeof spec->enc_algorithms / sizeof spec->enc_algorithms[0]
                         : sizeof spec->sig_algorithms / sizeof spec->sig_algorithms[0];
    }
    json_t *algs = json_array();
    for (size_t i = 0; list && algs && i < max && list[i]; i++) {
        if (json_array_append_new(algs, json_string(list[i])) != 0) {
            json_decref(algs);
            algs = NULL; /* json_pack below fails on it */
        }
    }
    *resp = json_pack("{s:s, s:s, s:s, s:s, s:o}", "KeyId", arn, "CustomerMasterKeySpec",
                      rec.key_spec, "KeySpec", rec.key_spec, "KeyUsage", rec.key_usage,
                      agreement    ? "KeyAgreementAlgorithms"
                      : encryption ? "EncryptionAlgorithms"
                                   : "SigningAlgorithms",
                      algs);
    if (*resp == NULL || kms_request_json_set_blob(*resp, "PublicKey", der, der_len) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    kms_key_record_clean_up(&rec);
    return r;
}

static int check_mac_algorithm(const char *alg)
{
    KMS_ENSURE(strcmp(alg, "HMAC_SHA_224") == 0 || strcmp(alg, "HMAC_SHA_256") == 0 ||
                   strcmp(alg, "HMAC_SHA_384") == 0 || strcmp(alg, "HMAC_SHA_512") == 0,
               KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'macAlgorithm' failed to satisfy "
               "constraint: Member must satisfy enum value set: [HMAC_SHA_224, HMAC_SHA_256, "
               "HMAC_SHA_384, HMAC_SHA_512]",
               alg);
    return 0;
}

/* GenerateMac and VerifyMac: HMAC in the HSM; `expected` NULL generates, else verifies. */
static int mac_op(kms_request *rq, json_t *req, json_t **resp, bool verify)
{
    int r = -1;
    const char *key_id = NULL, *alg = NULL;
    uint8_t *msg = NULL, *expected = NULL;
    size_t msg_len = 0, expected_len = 0, mac_len = 0;
    uint8_t mac[KMS_MAC_MAX];
    char arn[KMS_ARN_MAX];
    kms_key_record rec;
    memset(&rec, 0, sizeof rec);
    if (kms_request_string(req, "KeyId", true, 1, 2048, &key_id) != 0 ||
        kms_request_string(req, "MacAlgorithm", true, 1, 64, &alg) != 0 ||
        check_mac_algorithm(alg) != 0 ||
        kms_request_blob(req, "Message", true, 1, MAX_MESSAGE, true, &msg, &msg_len) != 0 ||
        (verify && kms_request_blob(req, "Mac", true, 1, MAX_SIGNATURE, false, &expected,
                                    &expected_len) != 0) ||
        use_key(rq, key_id, verify ? "kms:VerifyMac" : "kms:GenerateMac", "GENERATE_VERIFY_MAC",
                &rec, arn) != 0 ||
        kms_gate_dry_run(rq) != 0) {
        goto out;
    }
    if (verify) {
        if (kms_keystore_mac_verify(&rq->client->keystore, &rec, alg, msg, msg_len, expected,
                                    expected_len) != 0) {
            goto out;
        }
        *resp = json_pack("{s:s, s:b, s:s}", "KeyId", arn, "MacValid", 1, "MacAlgorithm", alg);
    } else {
        if (kms_keystore_mac_generate(&rq->client->keystore, &rec, alg, msg, msg_len, mac,
                                      &mac_len) != 0) {
            goto out;
        }
        *resp = json_pack("{s:s, s:s}", "KeyId", arn, "MacAlgorithm", alg);
        if (*resp != NULL && kms_request_json_set_blob(*resp, "Mac", mac, mac_len) != 0) {
            goto out;
        }
    }
    r = *resp ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
out:
    sodium_memzero(mac, sizeof mac);
    kms_secret_free(msg, msg_len);
    free(expected);
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_crypto_generate_mac(kms_request *rq, json_t *req, json_t **resp)
{
    return mac_op(rq, req, resp, false);
}

int kms_ops_crypto_verify_mac(kms_request *rq, json_t *req, json_t **resp)
{
    return mac_op(rq, req, resp, true);
}
