#include "keystore/keystore.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/random.h"
#include "util/util.h"

void kms_keystore_key_arn(const kms_keystore *ks, const char *key_id, char out[KMS_ARN_MAX])
{
    snprintf(out, KMS_ARN_MAX, "arn:aws:kms:%s:%s:key/%s", ks->region, ks->account_id, key_id);
}

void kms_keystore_alias_arn(const kms_keystore *ks, const char *alias_name, char out[KMS_ARN_MAX])
{
    snprintf(out, KMS_ARN_MAX, "arn:aws:kms:%s:%s:%s", ks->region, ks->account_id, alias_name);
}

void kms_keystore_label(const char *key_id, uint32_t version, char out[KMS_LABEL_MAX])
{
    snprintf(out, KMS_LABEL_MAX, "kms:%s:v%u", key_id, version);
}

/* Strips "arn:aws:kms:REGION:ACCOUNT:" when region and account are ours. Returns the rest, or
 * NULL (raised) for an ARN of another region (NotFoundException: no such key in this region) or
 * of another account (AccessDeniedException, as AWS answers a key ARN of an account whose key
 * policy does not allow the caller: this KMS holds no key policy of another account). */
static const char *strip_own_arn(const kms_keystore *ks, const char *ref, bool *was_arn)
{
    static const char prefix[] = "arn:aws:kms:";
    *was_arn = strncmp(ref, prefix, sizeof prefix - 1) == 0;
    if (!*was_arn) {
        return ref;
    }
    const char *p = ref + sizeof prefix - 1;
    size_t rl = strlen(ks->region);
    size_t al = strlen(ks->account_id);
    if (strncmp(p, ks->region, rl) != 0 || p[rl] != ':') {
        kms_raise(KMS_ERR_NOT_FOUND, "Invalid arn %s: this KMS holds keys of region %s only", ref,
                  ks->region);
        return NULL;
    }
    p += rl + 1;
    if (strncmp(p, ks->account_id, al) != 0 || p[al] != ':') {
        kms_raise(KMS_ERR_ACCESS_DENIED,
                  "The caller is not authorized to use resource: %s because no resource-based "
                  "policy allows it (this KMS holds the keys of account %s only)",
                  ref, ks->account_id);
        return NULL;
    }
    return p + al + 1;
}

int kms_keystore_resolve(const kms_keystore *ks, const char *ref, bool allow_alias,
                         kms_key_record *out)
{
    bool was_arn = false;
    KMS_ENSURE(ref != NULL && ref[0] != '\0', KMS_ERR_VALIDATION, "KeyId must not be empty");
    const char *rest = strip_own_arn(ks, ref, &was_arn);
    if (rest == NULL) {
        return -1;
    }
    if (strncmp(rest, "alias/", 6) == 0) {
        KMS_ENSURE(allow_alias, KMS_ERR_VALIDATION,
                   "%s is an alias; this parameter takes a key id or key ARN", ref);
        kms_alias_record alias;
        if (kms_store_alias_get(ks->store, rest, &alias) != 0) {
            if (kms_last_error() == KMS_ERR_NOT_FOUND) {
                return kms_raise(KMS_ERR_NOT_FOUND, "Alias %s is not found.", ref);
            }
            return -1;
        }
        return kms_store_key_get(ks->store, alias.key_id, out);
    }
    if (was_arn) {
        KMS_ENSURE(strncmp(rest, "key/", 4) == 0, KMS_ERR_NOT_FOUND, "Invalid arn %s", ref);
        rest += 4;
    }
    KMS_ENSURE(kms_uuid_valid(rest), KMS_ERR_NOT_FOUND,
               "Invalid keyId '%s': use a key id, key ARN, alias name (alias/NAME) or alias ARN",
               ref);
    char id[KMS_UUID_STR_LEN + 1];
    uint8_t raw[16];
    if (kms_uuid_to_bytes(rest, raw) != 0) {
        return kms_raise(KMS_ERR_NOT_FOUND, "Invalid keyId '%s'", ref);
    }
    kms_uuid_from_bytes(raw, id); /* key ids are stored in lower case */
    if (kms_store_key_get(ks->store, id, out) != 0) {
        return kms_last_error() == KMS_ERR_NOT_FOUND ? kms_keystore_missing(ks, id) : -1;
    }
    return 0;
}

int kms_keystore_check_usable(const kms_keystore *ks, const kms_key_record *rec, const char *usage)
{
    char arn[KMS_ARN_MAX];
    kms_keystore_key_arn(ks, rec->key_id, arn);
    KMS_ENSURE(strcmp(rec->key_state, "Disabled") != 0, KMS_ERR_DISABLED,
               "%s is disabled. Enable it with `kmsctl enable-key --key-id %s`.", arn, rec->key_id);
    KMS_ENSURE(strcmp(rec->key_state, "PendingDeletion") != 0, KMS_ERR_INVALID_STATE,
               "%s is pending deletion. Cancel the deletion with `kmsctl cancel-key-deletion` to "
               "use it again.",
               arn);
    KMS_ENSURE(strcmp(rec->key_state, "Enabled") == 0, KMS_ERR_INVALID_STATE, "%s is %s.", arn,
               rec->key_state);
    KMS_ENSURE(strcmp(rec->key_usage, usage) == 0, KMS_ERR_INVALID_KEY_USAGE,
               "%s key usage is %s which is not valid for this operation (it needs %s).", arn,
               rec->key_usage, usage);
    return 0;
}

int kms_keystore_create(const kms_keystore *ks, const kms_key_spec_info *spec, const char *usage,
                        const char *description, const char *policy, kms_key_record *out)
{
    int r = -1;
    char label[KMS_LABEL_MAX];
    bool generated = false;
    memset(out, 0, sizeof *out);
    if (kms_uuid_new(out->key_id) != 0) {
        goto out;
    }
    snprintf(out->account_id, sizeof out->account_id, "%s", ks->account_id);
    snprintf(out->key_spec, sizeof out->key_spec, "%s", spec->name);
    snprintf(out->key_usage, sizeof out->key_usage, "%s", usage);
    snprintf(out->key_state, sizeof out->key_state, "Enabled");
    snprintf(out->origin, sizeof out->origin, "AWS_KMS");
    out->description = strdup(description ? description : "");
    out->policy = strdup(policy ? policy : "");
    if (out->description == NULL || out->policy == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    out->creation_date = kms_now();
    out->current_version = 1;
    kms_keystore_label(out->key_id, 1, label);
    if (kms_hsm_generate_key(ks->hsm, kms_key_spec_hsm_type(spec, usage), label, &out->public_key,
                             &out->public_key_len) != 0) {
        goto out;
    }
    generated = true;
    if (kms_store_key_insert(ks->store, out) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        if (generated) {
            /* Keep the first error: the destroy is clean-up. */
            kms_saved_error e;
            kms_error_save(&e);
            if (kms_hsm_destroy_key(ks->hsm, label) != 0) {
                /* Orphaned material with no metadata is unusable; report the first error. */
            }
            kms_error_restore(&e);
        }
        kms_key_record_clean_up(out);
    }
    return r;
}

/* AAD = blob header || canonical encryption context. */
static int build_aad(const uint8_t *header, const kms_encryption_context *ctx, kms_buf *aad)
{
    KMS_GUARD(kms_buf_append(aad, header, KMS_BLOB_HEADER_LEN));
    return kms_blob_context_canonical(ctx, aad);
}

int kms_keystore_seal(const kms_keystore *ks, const kms_key_record *rec, const uint8_t *pt,
                      size_t pt_len, const kms_encryption_context *ctx, kms_buf *blob)
{
    int r = -1;
    kms_buf aad;
    kms_buf_init(&aad, false);
    char label[KMS_LABEL_MAX];
    size_t start = blob->len;
    KMS_ENSURE(pt_len <= KMS_MAX_PLAINTEXT, KMS_ERR_VALIDATION,
               "Plaintext is %zu bytes; at most %d are allowed", pt_len, KMS_MAX_PLAINTEXT);
    KMS_GUARD(kms_keystore_usage_count(ks, rec->key_id, rec->current_version));
    /* The whole blob's room at once (one allocation, not one per part), and the AAD's for a
     * short context. */
    if (kms_buf_reserve(blob, KMS_BLOB_OVERHEAD + pt_len) != 0 ||
        kms_buf_reserve(&aad, KMS_BLOB_HEADER_LEN + 256) != 0 ||
        kms_blob_write_header(blob, rec->key_id, rec->current_version) != 0 ||
        build_aad(blob->data + start, ctx, &aad) != 0 ||
        kms_buf_reserve(blob, KMS_BLOB_IV_LEN + pt_len + KMS_BLOB_TAG_LEN) != 0) {
        goto out;
    }
    uint8_t *iv = blob->data + blob->len;
    /* Random 96-bit IVs: usage-based rotation keeps each key version well below 2^32
     * encryptions (NIST SP 800-38D 8.3; kms_keystore_usage_count above counts them). An IV
     * is not secret: it comes from the thread's pool, wiped in a forked child (random.h). */
    kms_random_public(iv, KMS_BLOB_IV_LEN);
    uint8_t *ct = iv + KMS_BLOB_IV_LEN;
    uint8_t *tag = ct + pt_len;
    kms_keystore_label(rec->key_id, rec->current_version, label);
    if (kms_hsm_aes_gcm_encrypt(ks->hsm, label, iv, aad.data, aad.len, pt, pt_len, ct, tag) != 0) {
        goto out;
    }
    blob->len += KMS_BLOB_IV_LEN + pt_len + KMS_BLOB_TAG_LEN;
    r = 0;
out:
    if (r != 0) {
        blob->len = start;
    }
    kms_buf_clean_up(&aad);
    return r;
}

int kms_keystore_open(const kms_keystore *ks, const kms_key_record *rec, const kms_blob *blob,
                      const kms_encryption_context *ctx, kms_buf *pt)
{
    int r = -1;
    kms_buf aad;
    kms_buf_init(&aad, false);
    char label[KMS_LABEL_MAX];
    KMS_ENSURE(strcmp(rec->key_id, blob->key_id) == 0, KMS_ERR_INTERNAL, "key mismatch");
    KMS_ENSURE(blob->key_version <= rec->current_version, KMS_ERR_INVALID_CIPHERTEXT,
               "the ciphertext names key material version %u of %s, which does not exist",
               blob->key_version, rec->key_id);
    if (build_aad(blob->header, ctx, &aad) != 0 || kms_buf_reserve(pt, blob->ciphertext_len) != 0) {
        goto out;
    }
    kms_keystore_label(rec->key_id, blob->key_version, label);
    if (kms_hsm_aes_gcm_decrypt(ks->hsm, label, blob->iv, aad.data, aad.len, blob->ciphertext,
                                blob->ciphertext_len, blob->tag, pt->data + pt->len) != 0) {
        if (kms_last_error() == KMS_ERR_INVALID_CIPHERTEXT) {
            kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                      "the ciphertext does not authenticate: it was altered, or the encryption "
                      "context differs from the one used to encrypt");
        }
        goto out;
    }
    pt->len += blob->ciphertext_len;
    r = 0;
out:
    kms_buf_clean_up(&aad);
    return r;
}

int kms_keystore_random(const kms_keystore *ks, uint8_t *buf, size_t n)
{
    return kms_hsm_random(ks->hsm, buf, n);
}
