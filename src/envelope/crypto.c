/* OpenSSL wrappers for the envelope module (see crypto.h). */
#include "envelope/crypto.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "util/error.h"
#include "util/secmem.h"

int kms_openssl_raise(const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "no detail";
    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof reason);
    }
    ERR_clear_error();
    return kms_raise(KMS_ERR_INTERNAL, "%s failed in OpenSSL (%s)", what, reason);
}

static const EVP_CIPHER *gcm_cipher(size_t key_len)
{
    switch (key_len) {
    case 16:
        return EVP_aes_128_gcm();
    case 24:
        return EVP_aes_192_gcm();
    case 32:
        return EVP_aes_256_gcm();
    default:
        return NULL;
    }
}

int kms_gcm_init(kms_gcm *g, const uint8_t *key, size_t key_len, bool encrypt)
{
    memset(g, 0, sizeof *g);
    const EVP_CIPHER *c = gcm_cipher(key_len);
    KMS_ENSURE(c != NULL, KMS_ERR_VALIDATION, "an AES key is 16, 24 or 32 bytes, not %zu", key_len);
    g->ctx = EVP_CIPHER_CTX_new();
    if (g->ctx == NULL) {
        return kms_openssl_raise("EVP_CIPHER_CTX_new");
    }
    g->encrypt = encrypt;
    if (EVP_CipherInit_ex(g->ctx, c, NULL, NULL, NULL, encrypt ? 1 : 0) != 1 ||
        EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
        EVP_CipherInit_ex(g->ctx, NULL, NULL, key, NULL, encrypt ? 1 : 0) != 1) {
        kms_gcm_clean_up(g);
        return kms_openssl_raise("AES-GCM key setup");
    }
    return 0;
}

void kms_gcm_clean_up(kms_gcm *g)
{
    EVP_CIPHER_CTX_free(g->ctx); /* clears the key schedule */
    g->ctx = NULL;
}

static int gcm_run(kms_gcm *g, const uint8_t iv[12], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t *out)
{
    int outl = 0;
    if (EVP_CipherInit_ex(g->ctx, NULL, NULL, NULL, iv, g->encrypt ? 1 : 0) != 1) {
        return -1;
    }
    if (aad_len > 0 && EVP_CipherUpdate(g->ctx, NULL, &outl, aad, (int)aad_len) != 1) {
        return -1;
    }
    /* EVP takes int lengths: feed large inputs in pieces. */
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        if (EVP_CipherUpdate(g->ctx, out, &outl, in, (int)chunk) != 1) {
            return -1;
        }
        in += chunk;
        out += chunk;
        len -= chunk;
    }
    return 0;
}

int kms_gcm_seal(kms_gcm *g, const uint8_t iv[12], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
{
    int outl = 0;
    uint8_t scratch[16];
    if (gcm_run(g, iv, aad, aad_len, in, len, out) != 0 ||
        EVP_CipherFinal_ex(g->ctx, scratch, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1) {
        return kms_openssl_raise("AES-GCM encryption");
    }
    return 0;
}

int kms_gcm_open(kms_gcm *g, const uint8_t iv[12], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, size_t len, uint8_t *out, const uint8_t tag[16])
{
    int outl = 0;
    uint8_t scratch[16];
    if (gcm_run(g, iv, aad, aad_len, in, len, out) != 0 ||
        EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1) {
        return kms_openssl_raise("AES-GCM decryption");
    }
    if (EVP_CipherFinal_ex(g->ctx, scratch, &outl) != 1) {
        ERR_clear_error();
        return kms_raise(KMS_ERR_INVALID_CIPHERTEXT, "authentication tag did not verify");
    }
    return 0;
}

int kms_hkdf(const char *md, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
             size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    int r = -1;
    uint8_t zeros[64] = {0};
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (kctx == NULL) {
        r = kms_openssl_raise("HKDF setup");
        goto out;
    }
    if (salt == NULL) {
        const EVP_MD *m = EVP_get_digestbyname(md);
        salt = zeros;
        salt_len = m != NULL ? (size_t)EVP_MD_get_size(m) : 0;
    }
    OSSL_PARAM params[5];
    size_t i = 0;
    params[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    params[i] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, out_len, params) != 1) {
        r = kms_openssl_raise("HKDF");
        goto out;
    }
    r = 0;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return r;
}

int kms_ecdsa_keygen(const char *curve, EVP_PKEY **key)
{
    *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    if (*key == NULL) {
        return kms_openssl_raise("ECDSA key generation");
    }
    return 0;
}

int kms_ecdsa_public_compressed(EVP_PKEY *key, kms_buf *out)
{
    uint8_t point[133];
    size_t len = 0;
    if (EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       "compressed") != 1 ||
        /* OSSL_PKEY_PARAM_PUB_KEY follows the conversion format; the ENCODED_PUBLIC_KEY
         * parameter ignores it in OpenSSL 3.0. */
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len) !=
            1) {
        return kms_openssl_raise("ECDSA public key encoding");
    }
    return kms_buf_append(out, point, len);
}

EVP_PKEY *kms_ecdsa_public_from_point(const char *curve, const uint8_t *point, size_t len)
{
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curve, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len);
    params[2] = OSSL_PARAM_construct_end();
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        ERR_clear_error();
        key = NULL;
        kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                  "the message's signature verification key is not a valid %s point", curve);
    }
    EVP_PKEY_CTX_free(pctx);
    return key;
}

static EVP_PKEY_CTX *sig_ctx(EVP_PKEY *key, const char *md, bool sign)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    const EVP_MD *m = EVP_get_digestbyname(md);
    if (pctx == NULL || m == NULL ||
        (sign ? EVP_PKEY_sign_init(pctx) : EVP_PKEY_verify_init(pctx)) != 1 ||
        EVP_PKEY_CTX_set_signature_md(pctx, m) != 1) {
        EVP_PKEY_CTX_free(pctx);
        return NULL;
    }
    return pctx;
}

int kms_ecdsa_sign_digest(EVP_PKEY *key, const char *md, const uint8_t *digest, size_t digest_len,
                          kms_buf *out)
{
    int r = -1;
    size_t len = 0;
    EVP_PKEY_CTX *pctx = sig_ctx(key, md, true);
    if (pctx == NULL || EVP_PKEY_sign(pctx, NULL, &len, digest, digest_len) != 1) {
        r = kms_openssl_raise("ECDSA signing");
        goto out;
    }
    if (kms_buf_reserve(out, len) != 0) {
        goto out;
    }
    if (EVP_PKEY_sign(pctx, out->data + out->len, &len, digest, digest_len) != 1) {
        r = kms_openssl_raise("ECDSA signing");
        goto out;
    }
    out->len += len;
    r = 0;
out:
    EVP_PKEY_CTX_free(pctx);
    return r;
}

int kms_ecdsa_verify_digest(EVP_PKEY *key, const char *md, const uint8_t *digest, size_t digest_len,
                            const uint8_t *sig, size_t sig_len)
{
    EVP_PKEY_CTX *pctx = sig_ctx(key, md, false);
    if (pctx == NULL) {
        return kms_openssl_raise("ECDSA verification setup");
    }
    int ok = EVP_PKEY_verify(pctx, sig, sig_len, digest, digest_len);
    EVP_PKEY_CTX_free(pctx);
    ERR_clear_error();
    KMS_ENSURE(ok == 1, KMS_ERR_INVALID_CIPHERTEXT,
               "the message's signature did not verify: the message was modified or truncated");
    return 0;
}

static int rsa_setup(EVP_PKEY_CTX *pctx, kms_rsa_padding padding)
{
    static const char *const oaep_md[] = {NULL, "SHA1", "SHA256", "SHA384", "SHA512"};
    if (padding == KMS_RSA_PKCS1) {
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 ? 0 : -1;
    }
    if ((unsigned)padding >= sizeof oaep_md / sizeof oaep_md[0]) {
        return -1;
    }
    const EVP_MD *m = EVP_get_digestbyname(oaep_md[padding]);
    if (m == NULL || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(pctx, m) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, m) != 1) {
        return -1;
    }
    return 0;
}

int kms_rsa_wrap(EVP_PKEY *key, kms_rsa_padding padding, const uint8_t *in, size_t len,
                 kms_buf *out)
{
    int r = -1;
    size_t outlen = 0;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (pctx == NULL || EVP_PKEY_encrypt_init(pctx) != 1 || rsa_setup(pctx, padding) != 0 ||
        EVP_PKEY_encrypt(pctx, NULL, &outlen, in, len) != 1) {
        r = kms_openssl_raise("RSA key wrapping");
        goto out;
    }
    if (kms_buf_reserve(out, outlen) != 0) {
        goto out;
    }
    if (EVP_PKEY_encrypt(pctx, out->data + out->len, &outlen, in, len) != 1) {
        r = kms_openssl_raise("RSA key wrapping");
        goto out;
    }
    out->len += outlen;
    r = 0;
out:
    EVP_PKEY_CTX_free(pctx);
    return r;
}

int kms_rsa_unwrap(EVP_PKEY *key, kms_rsa_padding padding, const uint8_t *in, size_t len,
                   uint8_t **out, size_t *out_len)
{
    int r = -1;
    size_t cap = 0;
    uint8_t *buf = NULL;
    *out = NULL;
    *out_len = 0;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (pctx == NULL || EVP_PKEY_decrypt_init(pctx) != 1 || rsa_setup(pctx, padding) != 0 ||
        EVP_PKEY_decrypt(pctx, NULL, &cap, in, len) != 1) {
        r = kms_openssl_raise("RSA key unwrapping");
        goto out;
    }
    buf = kms_secure_alloc(cap);
    if (buf == NULL) {
        goto out;
    }
    size_t got = cap;
    if (EVP_PKEY_decrypt(pctx, buf, &got, in, len) != 1) {
        ERR_clear_error();
        r = kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                      "the RSA-wrapped data key did not unwrap with this key and padding");
        goto out;
    }
    *out = buf;
    *out_len = got;
    buf = NULL;
    r = 0;
out:
    kms_secure_free(buf);
    EVP_PKEY_CTX_free(pctx);
    return r;
}
