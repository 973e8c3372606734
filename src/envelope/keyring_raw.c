/* Raw AES and raw RSA keyrings (framework/raw-aes-keyring.md, framework/raw-rsa-keyring.md):
 * the application's own wrapping key, held in this process. The AES key lives in locked memory;
 * the RSA key in OpenSSL's EVP_PKEY, which clears its private components when freed. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "envelope/crypto.h"
#include "envelope/esdk.h"
#include "util/error.h"
#include "util/secmem.h"
#include "util/util.h"

/* framework/structures.md: "aws-kms" is the provider id of the KMS keyring only. */
#define RESERVED_NAMESPACE "aws-kms"
/* raw-aes-keyring.md Key Provider Information: tag length (bits) and IV length (bytes). */
#define RAW_AES_TAG_BITS 128u
#define RAW_AES_INFO_FIXED (4 + 4 + KMS_ESDK_IV_LEN)

/* Namespace and name shared by both raw keyrings. */
typedef struct raw_names {
    char *ns;
    size_t ns_len;
    char *name;
    size_t name_len;
} raw_names;

typedef struct raw_aes {
    kms_keyring base;
    raw_names id;
    uint8_t *key; /* kms_secure_alloc'ed */
    size_t key_len;
} raw_aes;

typedef struct raw_rsa {
    kms_keyring base;
    raw_names id;
    EVP_PKEY *key;
    bool has_private;
    kms_rsa_padding padding;
} raw_rsa;

/* info_extra: what the keyring appends to the key name in the provider info. */
static int names_init(raw_names *id, const char *what, const char *key_namespace,
                      const char *key_name, size_t info_extra)
{
    KMS_ENSURE(key_namespace != NULL && key_namespace[0] != '\0' && key_name != NULL &&
                   key_name[0] != '\0',
               KMS_ERR_VALIDATION, "a %s keyring needs a non-empty key namespace and key name",
               what);
    KMS_ENSURE(strcmp(key_namespace, RESERVED_NAMESPACE) != 0, KMS_ERR_VALIDATION,
               "the key namespace '%s' is reserved for the KMS keyring: choose another one for "
               "a %s keyring",
               RESERVED_NAMESPACE, what);
    id->ns_len = strlen(key_namespace);
    id->name_len = strlen(key_name);
    /* Both end up in 16-bit length fields of the message header (structures.md). */
    KMS_ENSURE(id->ns_len <= UINT16_MAX && id->name_len + info_extra <= UINT16_MAX,
               KMS_ERR_VALIDATION, "the key namespace or key name of a %s keyring is too long",
               what);
    id->ns = strdup(key_namespace);
    id->name = strdup(key_name);
    KMS_ENSURE(id->ns != NULL && id->name != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

static void names_clean_up(raw_names *id)
{
    free(id->ns);
    free(id->name);
}

static bool provider_id_is(const raw_names *id, const kms_edk *e)
{
    return e->provider_id_len == id->ns_len && memcmp(e->provider_id, id->ns, id->ns_len) == 0;
}

/* keyring-interface.md Generate Data Key: only when the materials hold none. Returns whether it
 * generated one, so that a failed wrap can take it back. */
static bool generate_if_needed(kms_materials *m)
{
    if (m->has_data_key) {
        return false;
    }
    randombytes_buf(m->data_key, m->suite->key_len);
    m->has_data_key = true;
    return true;
}

static void forget_generated(kms_materials *m, bool generated)
{
    if (generated) {
        sodium_memzero(m->data_key, m->suite->key_len);
        m->has_data_key = false;
    }
}

static int refuse_if_has_key(const kms_materials *m, const char *what)
{
    KMS_ENSURE(!m->has_data_key, KMS_ERR_VALIDATION,
               "the decryption materials already hold a data key: the %s keyring will not "
               "replace it",
               what);
    return 0;
}

/* ---- Raw AES ----------------------------------------------------------------------------------*/

/* raw-aes-keyring.md On Decrypt: the EDK is ours if the provider id is our namespace and the
 * provider info deserialises as our key name, tag length 128, IV length 12 and the IV. */
static bool aes_edk_matches(const raw_aes *k, const kms_edk *e, const uint8_t **iv)
{
    kms_reader r;
    const uint8_t *name = NULL;
    uint32_t tag_bits = 0, iv_len = 0;
    if (!provider_id_is(&k->id, e) || e->provider_info_len != k->id.name_len + RAW_AES_INFO_FIXED) {
        return false;
    }
    kms_reader_init(&r, e->provider_info, e->provider_info_len);
    if (kms_reader_bytes(&r, k->id.name_len, &name) != 0 ||
        memcmp(name, k->id.name, k->id.name_len) != 0 || kms_reader_be32(&r, &tag_bits) != 0 ||
        kms_reader_be32(&r, &iv_len) != 0 || tag_bits != RAW_AES_TAG_BITS ||
        iv_len != KMS_ESDK_IV_LEN || kms_reader_bytes(&r, KMS_ESDK_IV_LEN, iv) != 0) {
        return false;
    }
    return true;
}

/* raw-aes-keyring.md On Encrypt. AAD: the materials' full encryption context, serialised as the
 * header's key-value pairs (empty when there are none). */
static int raw_aes_on_encrypt(const kms_keyring *kr, kms_materials *m)
{
    const raw_aes *k = (const raw_aes *)kr;
    const size_t key_len = m->suite->key_len;
    int r = -1;
    bool generated = false;
    uint8_t iv[KMS_ESDK_IV_LEN];
    uint8_t wrapped[KMS_ESDK_MAX_KEY_LEN + KMS_ESDK_TAG_LEN];
    kms_gcm g = {0};
    kms_buf aad, info;
    kms_buf_init(&aad, false);
    kms_buf_init(&info, false);
    if ((r = kms_ec_serialize(m->ec, &aad)) != 0) {
        goto out;
    }
    generated = generate_if_needed(m);
    randombytes_buf(iv, sizeof iv);
    if ((r = kms_gcm_init(&g, k->key, k->key_len, true)) != 0) {
        goto out;
    }
    if ((r = kms_gcm_seal(&g, iv, aad.data, aad.len, m->data_key, key_len, wrapped,
                          wrapped + key_len)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append(&info, k->id.name, k->id.name_len)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append_be32(&info, RAW_AES_TAG_BITS)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append_be32(&info, KMS_ESDK_IV_LEN)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append(&info, iv, sizeof iv)) != 0) {
        goto out;
    }
    if ((r = kms_edk_list_add(&m->edks, k->id.ns, k->id.ns_len, info.data, info.len, wrapped,
                              key_len + KMS_ESDK_TAG_LEN)) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        forget_generated(m, generated);
    }
    sodium_memzero(wrapped, sizeof wrapped);
    kms_gcm_clean_up(&g);
    kms_buf_clean_up(&aad);
    kms_buf_clean_up(&info);
    return r;
}

/* Unwraps one EDK that is ours into m->data_key (wiped again on failure). */
static int aes_unwrap_one(const raw_aes *k, kms_gcm *g, const kms_buf *aad, const kms_edk *e,
                          const uint8_t *iv, kms_materials *m)
{
    const size_t key_len = m->suite->key_len;
    KMS_ENSURE(e->ciphertext_len == key_len + KMS_ESDK_TAG_LEN, KMS_ERR_INVALID_CIPHERTEXT,
               "the wrapped data key is %zu bytes; algorithm suite 0x%04x needs %zu (a %zu-byte "
               "key and a 16-byte tag)",
               e->ciphertext_len, m->suite->id, key_len + KMS_ESDK_TAG_LEN, key_len);
    if (g->ctx == NULL) {
        KMS_GUARD(kms_gcm_init(g, k->key, k->key_len, false));
    }
    if (kms_gcm_open(g, iv, aad->data, aad->len, e->ciphertext, key_len, m->data_key,
                     e->ciphertext + key_len) != 0) {
        sodium_memzero(m->data_key, key_len);
        if (kms_last_error() == KMS_ERR_INVALID_CIPHERTEXT) {
            return kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                             "the wrapped data key did not authenticate (wrong wrapping key, "
                             "modified encrypted data key or different encryption context)");
        }
        return -1;
    }
    return 0;
}

/* raw-aes-keyring.md On Decrypt: EDKs in list order, the first that unwraps wins. */
static int raw_aes_on_decrypt(const kms_keyring *kr, kms_materials *m, const kms_edk_list *edks)
{
    const raw_aes *k = (const raw_aes *)kr;
    KMS_GUARD(refuse_if_has_key(m, "raw AES"));
    int r = -1;
    size_t tried = 0;
    kms_gcm g = {0};
    kms_buf aad;
    kms_buf_init(&aad, false);
    if (kms_ec_serialize(m->ec, &aad) != 0) {
        goto out;
    }
    for (size_t i = 0; i < edks->n; i++) {
        const uint8_t *iv = NULL;
        if (!aes_edk_matches(k, &edks->v[i], &iv)) {
            continue;
        }
        tried++;
        if (aes_unwrap_one(k, &g, &aad, &edks->v[i], iv, m) == 0) {
            m->has_data_key = true;
            m->used_edk = &edks->v[i];
            r = 0;
            goto out;
        }
    }
    if (tried == 0) {
        kms_raise(KMS_ERR_NOT_FOUND,
                  "no encrypted data key in the message belongs to the raw AES keyring with key "
                  "namespace '%s' and key name '%s'",
                  k->id.ns, k->id.name);
    } else {
        kms_raise(kms_last_error(),
                  "raw AES keyring '%s'/'%s' (%zu encrypted data key%s tried): %s", k->id.ns,
                  k->id.name, tried, tried == 1 ? "" : "s", kms_last_error_message());
    }
out:
    kms_gcm_clean_up(&g);
    kms_buf_clean_up(&aad);
    return r;
}

static void raw_aes_destroy(kms_keyring *kr)
{
    raw_aes *k = (raw_aes *)kr;
    names_clean_up(&k->id);
    kms_secure_free(k->key); /* wipes */
    free(k);
}

static const kms_keyring_vtable RAW_AES_VT = {
    .name = "raw AES",
    .on_encrypt = raw_aes_on_encrypt,
    .on_decrypt = raw_aes_on_decrypt,
    .destroy = raw_aes_destroy,
};

kms_keyring *kms_keyring_raw_aes_new(const char *key_namespace, const char *key_name,
                                     const uint8_t *wrapping_key, size_t key_len)
{
    kms_error_clear();
    if (kms_util_init() != 0) {
        return NULL;
    }
    /* raw-aes-keyring.md Wrapping Key: 128, 192 or 256 bits. */
    if (wrapping_key == NULL || (key_len != 16 && key_len != 24 && key_len != 32)) {
        kms_raise(KMS_ERR_VALIDATION,
                  "a raw AES wrapping key is 16, 24 or 32 bytes (AES-128, -192, -256), not %zu",
                  wrapping_key == NULL ? (size_t)0 : key_len);
        return NULL;
    }
    raw_aes *k = calloc(1, sizeof *k);
    if (k == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    k->base.vt = &RAW_AES_VT;
    if (names_init(&k->id, "raw AES", key_namespace, key_name, RAW_AES_INFO_FIXED) != 0 ||
        (k->key = kms_secure_alloc(key_len)) == NULL) {
        raw_aes_destroy(&k->base);
        return NULL;
    }
    memcpy(k->key, wrapping_key, key_len);
    k->key_len = key_len;
    return &k->base;
}

/* ---- Raw RSA ----------------------------------------------------------------------------------*/

/* raw-rsa-keyring.md OnEncrypt: provider id = namespace, provider info = key name, ciphertext =
 * the RSA-encrypted data key. */
static int raw_rsa_on_encrypt(const kms_keyring *kr, kms_materials *m)
{
    const raw_rsa *k = (const raw_rsa *)kr;
    int r = -1;
    kms_buf ct;
    kms_buf_init(&ct, false);
    bool generated = generate_if_needed(m);
    if ((r = kms_rsa_wrap(k->key, k->padding, m->data_key, m->suite->key_len, &ct)) != 0) {
        goto out;
    }
    if ((r = kms_edk_list_add(&m->edks, k->id.ns, k->id.ns_len, k->id.name, k->id.name_len, ct.data,
                              ct.len)) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        forget_generated(m, generated);
    }
    kms_buf_clean_up(&ct);
    return r;
}

static int rsa_unwrap_one(const raw_rsa *k, const kms_edk *e, kms_materials *m)
{
    const size_t key_len = m->suite->key_len;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    KMS_GUARD(kms_rsa_unwrap(k->key, k->padding, e->ciphertext, e->ciphertext_len, &pt, &pt_len));
    if (pt_len != key_len) {
        kms_secure_free(pt);
        return kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                         "the RSA-wrapped data key is %zu bytes; algorithm suite 0x%04x needs %zu",
                         pt_len, m->suite->id, key_len);
    }
    memcpy(m->data_key, pt, key_len);
    kms_secure_free(pt);
    return 0;
}

/* raw-rsa-keyring.md OnDecrypt: only with a private key; EDKs whose provider id is our namespace
 * and whose provider info is our key name, in list order, the first that unwraps wins. */
static int raw_rsa_on_decrypt(const kms_keyring *kr, kms_materials *m, const kms_edk_list *edks)
{
    const raw_rsa *k = (const raw_rsa *)kr;
    KMS_GUARD(refuse_if_has_key(m, "raw RSA"));
    KMS_ENSURE(k->has_private, KMS_ERR_VALIDATION,
               "the raw RSA keyring '%s'/'%s' was made from a public key: it can encrypt but not "
               "decrypt; give it the private key to decrypt",
               k->id.ns, k->id.name);
    size_t tried = 0;
    for (size_t i = 0; i < edks->n; i++) {
        const kms_edk *e = &edks->v[i];
        if (!provider_id_is(&k->id, e) || e->provider_info_len != k->id.name_len ||
            memcmp(e->provider_info, k->id.name, k->id.name_len) != 0) {
            continue;
        }
        tried++;
        if (rsa_unwrap_one(k, e, m) == 0) {
            m->has_data_key = true;
            m->used_edk = e;
            return 0;
        }
    }
    if (tried == 0) {
        return kms_raise(KMS_ERR_NOT_FOUND,
                         "no encrypted data key in the message belongs to the raw RSA keyring "
                         "with key namespace '%s' and key name '%s'",
                         k->id.ns, k->id.name);
    }
    return kms_raise(kms_last_error(),
                     "raw RSA keyring '%s'/'%s' (%zu encrypted data key%s tried): %s", k->id.ns,
                     k->id.name, tried, tried == 1 ? "" : "s", kms_last_error_message());
}

static void raw_rsa_destroy(kms_keyring *kr)
{
    raw_rsa *k = (raw_rsa *)kr;
    names_clean_up(&k->id);
    EVP_PKEY_free(k->key); /* clears the private components */
    free(k);
}

static const kms_keyring_vtable RAW_RSA_VT = {
    .name = "raw RSA",
    .on_encrypt = raw_rsa_on_encrypt,
    .on_decrypt = raw_rsa_on_decrypt,
    .destroy = raw_rsa_destroy,
};

/* Encrypted PEM keys are refused rather than prompting on the terminal for a password. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The three readers tried in turn, each on a fresh BIO over the PEM text. */
typedef enum pem_kind { PEM_PRIVATE, PEM_SPKI, PEM_PKCS1_PUBLIC } pem_kind;

static EVP_PKEY *read_pem_as(const char *pem, size_t pem_len, pem_kind kind)
{
    EVP_PKEY *key = NULL;
    OSSL_DECODER_CTX *dctx = NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
    if (bio == NULL) {
        return NULL;
    }
    switch (kind) {
    case PEM_PRIVATE: /* PKCS#8 "PRIVATE KEY" and PKCS#1 "RSA PRIVATE KEY" */
        key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
        break;
    case PEM_SPKI: /* "PUBLIC KEY" */
        key = PEM_read_bio_PUBKEY(bio, NULL, no_password, NULL);
        break;
    case PEM_PKCS1_PUBLIC: /* "RSA PUBLIC KEY": OpenSSL 3 deprecates the RSA-specific readers */
        dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "PEM", "type-specific", "RSA",
                                             EVP_PKEY_PUBLIC_KEY, NULL, NULL);
        if (dctx != NULL && OSSL_DECODER_from_bio(dctx, bio) != 1) {
            EVP_PKEY_free(key);
            key = NULL;
        }
        OSSL_DECODER_CTX_free(dctx);
        break;
    }
    BIO_free(bio);
    return key;
}

/* A private key (PKCS#8 or PKCS#1), else a public key (SubjectPublicKeyInfo or PKCS#1). */
static EVP_PKEY *read_pem_key(const char *pem, size_t pem_len, bool *has_private)
{
    *has_private = false;
    if (pem == NULL || pem_len == 0 || pem_len > INT_MAX) {
        kms_raise(KMS_ERR_VALIDATION, "the raw RSA keyring needs a PEM key");
        return NULL;
    }
    if (memmem(pem, pem_len, "ENCRYPTED", 9) != NULL) {
        kms_raise(KMS_ERR_VALIDATION, "the PEM private key is encrypted: give the raw RSA keyring "
                                      "an unencrypted key");
        return NULL;
    }
    EVP_PKEY *key = read_pem_as(pem, pem_len, PEM_PRIVATE);
    *has_private = key != NULL;
    if (key == NULL) {
        key = read_pem_as(pem, pem_len, PEM_SPKI);
    }
    if (key == NULL) {
        key = read_pem_as(pem, pem_len, PEM_PKCS1_PUBLIC);
    }
    ERR_clear_error();
    if (key == NULL) {
        kms_raise(KMS_ERR_VALIDATION,
                  "not a PEM RSA key: expected -----BEGIN PUBLIC KEY-----, -----BEGIN RSA "
                  "PUBLIC KEY-----, -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE "
                  "KEY-----");
    }
    return key;
}

kms_keyring *kms_keyring_raw_rsa_new(const char *key_namespace, const char *key_name,
                                     const char *pem, size_t pem_len, kms_rsa_padding padding)
{
    kms_error_clear();
    if (kms_util_init() != 0) {
        return NULL;
    }
    /* raw-rsa-keyring.md Supported Padding Schemes: nothing outside the five. */
    if ((unsigned)padding > (unsigned)KMS_RSA_OAEP_SHA512) {
        kms_raise(KMS_ERR_VALIDATION, "unknown RSA padding scheme %d", (int)padding);
        return NULL;
    }
    raw_rsa *k = calloc(1, sizeof *k);
    if (k == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    k->base.vt = &RAW_RSA_VT;
    k->padding = padding;
    if (names_init(&k->id, "raw RSA", key_namespace, key_name, 0) != 0 ||
        (k->key = read_pem_key(pem, pem_len, &k->has_private)) == NULL) {
        raw_rsa_destroy(&k->base);
        return NULL;
    }
    if (!EVP_PKEY_is_a(k->key, "RSA")) {
        const char *type = EVP_PKEY_get0_type_name(k->key);
        kms_raise(KMS_ERR_VALIDATION,
                  "the PEM key is of type %s; the raw RSA keyring needs an "
                  "RSA key",
                  type != NULL ? type : "unknown");
        raw_rsa_destroy(&k->base);
        return NULL;
    }
    if (EVP_PKEY_get_bits(k->key) < 2048) {
        kms_raise(KMS_ERR_VALIDATION,
                  "the RSA key has %d bits; the raw RSA keyring needs at least 2048",
                  EVP_PKEY_get_bits(k->key));
        raw_rsa_destroy(&k->base);
        return NULL;
    }
    return &k->base;
}
