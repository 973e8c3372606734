/* The KMS keyring over this project's CMKs (framework/aws-kms/aws-kms-keyring.md) and its
 * discovery variant (framework/aws-kms/aws-kms-discovery-keyring.md). Every call goes through
 * the public API and so through the service gate: the client's caller is authorised and
 * audited for each GenerateDataKey, Encrypt and Decrypt, exactly as if it had made them. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "envelope/esdk.h"
#include "util/error.h"
#include "util/util.h"

#define KMS_PROVIDER_ID "aws-kms"
#define KMS_PROVIDER_ID_LEN (sizeof KMS_PROVIDER_ID - 1)
/* Longest provider info we read as a key ARN (AWS bounds ARNs at 2048 characters). */
#define ARN_MAX 2048

typedef struct kms_kr {
    kms_keyring base;
    kms_client *client; /* borrowed: the caller keeps it alive */
    char **arns;        /* resolved key ARNs; arns[0] is the generator. Empty: discovery */
    size_t n;
} kms_kr;

/* ---- ARNs -------------------------------------------------------------------------------------*/

/* aws-kms-key-arn.md "A valid AWS KMS ARN" with resource type key:
 * arn:PARTITION:kms:REGION:ACCOUNT:key/ID, every part non-empty. */
static bool is_key_arn(const char *s)
{
    const char *part[5];
    const char *p = s;
    for (int i = 0; i < 5; i++) {
        part[i] = p;
        p = strchr(p, ':');
        if (p == NULL || p == part[i]) {
            return false;
        }
        p++;
    }
    return strncmp(part[0], "arn:", 4) == 0 && strncmp(part[2], "kms:", 4) == 0 &&
           strncmp(p, "key/", 4) == 0 && p[4] != '\0';
}

/* The EDK's provider info as a string if it is a KMS EDK: provider id "aws-kms" and a provider
 * info without NUL bytes that fits arn. */
static bool kms_edk_arn(const kms_edk *e, char arn[ARN_MAX + 1])
{
    if (e->provider_id_len != KMS_PROVIDER_ID_LEN ||
        memcmp(e->provider_id, KMS_PROVIDER_ID, KMS_PROVIDER_ID_LEN) != 0 ||
        e->provider_info_len == 0 || e->provider_info_len > ARN_MAX ||
        memchr(e->provider_info, 0, e->provider_info_len) != NULL) {
        return false;
    }
    memcpy(arn, e->provider_info, e->provider_info_len);
    arn[e->provider_info_len] = '\0';
    return true;
}

/* DescribeKey through the gate: the key's ARN (malloc'd), whatever identifier was given. */
static int resolve_arn(kms_client *client, const char *key_id, char **arn)
{
    int r = -1;
    char *body = NULL, *resp = NULL;
    json_t *resp_json = NULL;
    json_t *req = json_pack("{s:s}", "KeyId", key_id);
    *arn = NULL;
    if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "KMS keyring: the key id is not valid UTF-8");
        goto out;
    }
    if (kms_call(client, "DescribeKey", body, &resp) != 0) {
        kms_raise(kms_last_error(), "KMS keyring: key '%s': %s", key_id, kms_last_error_message());
        goto out;
    }
    resp_json = json_loads(resp, 0, NULL);
    json_t *md = json_object_get(resp_json, "KeyMetadata");
    const char *a = json_string_value(json_object_get(md, "Arn"));
    const char *spec = json_string_value(json_object_get(md, "KeySpec"));
    if (a == NULL || !is_key_arn(a)) {
        kms_raise(KMS_ERR_INTERNAL, "KMS keyring: DescribeKey of '%s' returned no key ARN", key_id);
        goto out;
    }
    /* GenerateDataKey and the ESDK's data keys need a symmetric encryption key: say so now
     * rather than at the first message. */
    if (spec != NULL && strcmp(spec, "SYMMETRIC_DEFAULT") != 0) {
        kms_raise(KMS_ERR_INVALID_KEY_USAGE,
                  "KMS keyring: key '%s' is a %s key; the KMS keyring needs symmetric encryption "
                  "keys (SYMMETRIC_DEFAULT)",
                  key_id, spec);
        goto out;
    }
    if ((*arn = strdup(a)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    json_decref(resp_json);
    json_decref(req);
    kms_string_free(resp);
    free(body);
    return r;
}

/* ---- OnEncrypt --------------------------------------------------------------------------------*/

/* Removes the EDKs added after the first n (a failed OnEncrypt leaves the materials as it found
 * them: aws-kms-keyring.md OnEncrypt). */
static void edks_truncate(kms_edk_list *l, size_t n)
{
    while (l->n > n) {
        l->n--;
        free(l->v[l->n].provider_id);
        free(l->v[l->n].provider_info);
        free(l->v[l->n].ciphertext);
    }
}

/* One wrap of the data key under arn: GenerateDataKey when the materials hold no data key yet,
 * Encrypt otherwise. *generated tells whether the data key came from this call. */
static int wrap_one(const kms_kr *k, const char *arn, kms_materials *m,
                    const kms_encryption_context *ctx, bool *generated)
{
    const size_t key_len = m->suite->key_len;
    uint8_t *pt = NULL, *blob = NULL;
    size_t blob_len = 0;
    const char *op = m->has_data_key ? "Encrypt" : "GenerateDataKey";
    int rc = m->has_data_key
                 ? kms_encrypt(k->client, arn, m->data_key, key_len, ctx, &blob, &blob_len)
                 : kms_generate_data_key(k->client, arn, key_len, ctx, &pt, &blob, &blob_len);
    if (rc != 0) {
        return kms_raise(kms_last_error(), "KMS keyring: %s with %s: %s", op, arn,
                         kms_last_error_message());
    }
    if (pt != NULL) {
        memcpy(m->data_key, pt, key_len);
        kms_secret_free(pt, key_len);
        m->has_data_key = true;
        *generated = true;
    }
    rc = kms_edk_list_add(&m->edks, KMS_PROVIDER_ID, KMS_PROVIDER_ID_LEN, arn, strlen(arn), blob,
                          blob_len);
    kms_buffer_free(blob);
    return rc;
}

/* aws-kms-keyring.md OnEncrypt, for each key: the first generates the data key unless the
 * materials already hold one (re-encrypt), every other key encrypts it. */
static int kms_kr_on_encrypt(const kms_keyring *kr, kms_materials *m)
{
    const kms_kr *k = (const kms_kr *)kr;
    const size_t edks_before = m->edks.n;
    bool generated = false;
    kms_context_entry *entries = NULL;
    kms_encryption_context ctx;
    int r = -1;
    if (kms_ec_view(m->ec, &entries, &ctx) != 0) {
        goto out;
    }
    for (size_t i = 0; i < k->n; i++) {
        if (wrap_one(k, k->arns[i], m, &ctx, &generated) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    if (r != 0) {
        edks_truncate(&m->edks, edks_before);
        if (generated) {
            sodium_memzero(m->data_key, m->suite->key_len);
            m->has_data_key = false;
        }
    }
    free(entries);
    return r;
}

/* aws-kms-discovery-keyring.md OnEncrypt: "This function MUST fail." */
static int discovery_on_encrypt(const kms_keyring *kr, kms_materials *m)
{
    return kms_raise(KMS_ERR_VALIDATION, "a discovery KMS keyring cannot encrypt: name the KMS "
                                         "keys to encrypt under");
}

/* ---- OnDecrypt --------------------------------------------------------------------------------*/

static bool is_configured(const kms_kr *k, const char *arn)
{
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->arns[i], arn) == 0) {
            return true;
        }
    }
    return false;
}

/* Decrypt with KeyId = the EDK's ARN, so the service refuses a blob of any other key
 * (IncorrectKeyException); then the checks of aws-kms-keyring.md OnDecrypt on the response. */
static int unwrap_one(const kms_kr *k, const char *arn, const kms_edk *e, kms_materials *m,
                      const kms_encryption_context *ctx)
{
    const size_t key_len = m->suite->key_len;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    char *used = NULL;
    int r = -1;
    if (kms_decrypt(k->client, arn, e->ciphertext, e->ciphertext_len, ctx, &pt, &pt_len, &used) !=
        0) {
        kms_raise(kms_last_error(), "Decrypt with %s: %s", arn, kms_last_error_message());
        goto out;
    }
    if (strcmp(used, arn) != 0) {
        kms_raise(KMS_ERR_INCORRECT_KEY, "Decrypt with %s used another key, %s", arn, used);
        goto out;
    }
    if (pt_len != key_len) {
        kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                  "Decrypt with %s returned a %zu-byte data key; algorithm suite 0x%04x needs %zu",
                  arn, pt_len, m->suite->id, key_len);
        goto out;
    }
    memcpy(m->data_key, pt, key_len);
    r = 0;
out:
    kms_secret_free(pt, pt_len);
    kms_string_free(used);
    return r;
}

/* Strict (configured ARNs only) and discovery (any key ARN): the EDKs of "aws-kms" in list
 * order, the first that decrypts wins; if none does, the last failure is reported with its
 * code (DisabledException, AccessDeniedException, ...) and how many were tried. */
static int kms_kr_on_decrypt(const kms_keyring *kr, kms_materials *m, const kms_edk_list *edks)
{
    const kms_kr *k = (const kms_kr *)kr;
    KMS_ENSURE(!m->has_data_key, KMS_ERR_VALIDATION,
               "the decryption materials already hold a data key: the KMS keyring will not "
               "replace it");
    const bool discovery = k->n == 0;
    kms_context_entry *entries = NULL;
    kms_encryption_context ctx;
    size_t tried = 0;
    bool seen_other = false;
    char arn[ARN_MAX + 1], other[ARN_MAX + 1] = "";
    int r = -1;
    if (kms_ec_view(m->ec, &entries, &ctx) != 0) {
        goto out;
    }
    for (size_t i = 0; i < edks->n; i++) {
        if (!kms_edk_arn(&edks->v[i], arn)) {
            continue;
        }
        if (discovery ? !is_key_arn(arn) : !is_configured(k, arn)) {
            if (!seen_other) {
                memcpy(other, arn, strlen(arn) + 1);
                seen_other = true;
            }
            continue;
        }
        tried++;
        if (unwrap_one(k, arn, &edks->v[i], m, &ctx) == 0) {
            m->has_data_key = true;
            m->used_edk = &edks->v[i];
            r = 0;
            goto out;
        }
    }
    if (tried > 0) {
        kms_raise(kms_last_error(),
                  "no encrypted data key in the message could be decrypted with the given KMS "
                  "keys (tried %zu): %s",
                  tried, kms_last_error_message());
    } else if (discovery) {
        kms_raise(KMS_ERR_NOT_FOUND, "the message has no encrypted data key of a KMS key "
                                     "(provider id 'aws-kms' with a key ARN)");
    } else {
        kms_raise(KMS_ERR_NOT_FOUND,
                  "no encrypted data key in the message is for the KMS keys of this keyring "
                  "(%s%s)%s%s",
                  k->arns[0], k->n > 1 ? ", ..." : "",
                  seen_other ? "; the message's KMS keys include " : "", other);
    }
out:
    free(entries);
    return r;
}

/* ---- Construction -----------------------------------------------------------------------------*/

static void kms_kr_destroy(kms_keyring *kr)
{
    kms_kr *k = (kms_kr *)kr;
    for (size_t i = 0; i < k->n; i++) {
        free(k->arns[i]);
    }
    free(k->arns);
    free(k);
}

static const kms_keyring_vtable KMS_VT = {
    .name = "KMS",
    .on_encrypt = kms_kr_on_encrypt,
    .on_decrypt = kms_kr_on_decrypt,
    .destroy = kms_kr_destroy,
};

static const kms_keyring_vtable DISCOVERY_VT = {
    .name = "discovery KMS",
    .on_encrypt = discovery_on_encrypt,
    .on_decrypt = kms_kr_on_decrypt,
    .destroy = kms_kr_destroy,
};

static kms_kr *kr_alloc(kms_client *client, const kms_keyring_vtable *vt)
{
    if (kms_util_init() != 0) {
        return NULL;
    }
    if (client == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "a KMS keyring needs a client");
        return NULL;
    }
    kms_kr *k = calloc(1, sizeof *k);
    if (k == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    k->base.vt = vt;
    k->client = client;
    return k;
}

kms_keyring *kms_keyring_kms_new(kms_client *client, const char *const *key_ids, size_t key_count)
{
    kms_error_clear();
    if (key_ids == NULL || key_count == 0) {
        kms_raise(KMS_ERR_VALIDATION, "a KMS keyring needs at least one key id (or use the "
                                      "discovery KMS keyring to decrypt)");
        return NULL;
    }
    kms_kr *k = kr_alloc(client, &KMS_VT);
    if (k == NULL) {
        return NULL;
    }
    k->arns = calloc(key_count, sizeof *k->arns);
    if (k->arns == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        kms_kr_destroy(&k->base);
        return NULL;
    }
    for (size_t i = 0; i < key_count; i++) {
        if (key_ids[i] == NULL || key_ids[i][0] == '\0') {
            kms_raise(KMS_ERR_VALIDATION, "KMS keyring: key id %zu is empty", i + 1);
            kms_kr_destroy(&k->base);
            return NULL;
        }
        if (resolve_arn(client, key_ids[i], &k->arns[i]) != 0) {
            kms_kr_destroy(&k->base);
            return NULL;
        }
        k->n++;
    }
    return &k->base;
}

kms_keyring *kms_keyring_kms_discovery_new(kms_client *client)
{
    kms_error_clear();
    kms_kr *k = kr_alloc(client, &DISCOVERY_VT);
    return k != NULL ? &k->base : NULL;
}
