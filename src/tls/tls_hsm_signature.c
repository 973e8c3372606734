/* The kms-hsm provider's signatures: the message is hashed here, and the digest signed in the
 * HSM through the key store (kms_keystore_cert_key_sign_digest). ECDSA, and RSA with PKCS#1
 * v1.5 or PSS (MGF1 with the message's hash and a salt as long as the digest, as TLS 1.3 needs:
 * RFC 8446 4.2.3), over SHA-256, SHA-384 or SHA-512. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "tls/tls_hsm_provider.h"
#include "util/error.h"

typedef struct sig_ctx {
    bool ec;
    const kms_tls_hsm_key *key;
    EVP_MD *md;        /* NULL until a digest is known (sign_init without one) */
    EVP_MD_CTX *mdctx; /* digest_sign_* */
    int pad;           /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    int saltlen;       /* RSA_PSS_SALTLEN_DIGEST or a length */
    EVP_MD *mgf1;      /* NULL: the message's hash */
} sig_ctx;

static void *ctx_new(bool ec)
{
    sig_ctx *c = calloc(1, sizeof *c);
    if (c != NULL) {
        c->ec = ec;
        c->pad = RSA_PKCS1_PADDING;
        c->saltlen = RSA_PSS_SALTLEN_DIGEST;
    }
    return c;
}

static void *ecdsa_newctx(void *provctx, const char *propq)
{
    return ctx_new(true);
}

static void *rsa_newctx(void *provctx, const char *propq)
{
    return ctx_new(false);
}

static void ctx_free(void *vctx)
{
    sig_ctx *c = vctx;
    if (c == NULL) {
        return;
    }
    EVP_MD_CTX_free(c->mdctx);
    EVP_MD_free(c->md);
    EVP_MD_free(c->mgf1);
    free(c);
}

static void *ctx_dup(void *vctx)
{
    const sig_ctx *c = vctx;
    sig_ctx *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return NULL;
    }
    *d = *c;
    d->md = NULL;
    d->mgf1 = NULL;
    d->mdctx = NULL;
    if ((c->md != NULL && EVP_MD_up_ref(c->md) != 1) ||
        (c->mgf1 != NULL && EVP_MD_up_ref(c->mgf1) != 1)) {
        free(d);
        return NULL;
    }
    d->md = c->md;
    d->mgf1 = c->mgf1;
    if (c->mdctx != NULL &&
        ((d->mdctx = EVP_MD_CTX_new()) == NULL || EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx) != 1)) {
        ctx_free(d);
        return NULL;
    }
    return d;
}

/* SHA-256, SHA-384 and SHA-512: the hashes of the key store's signing algorithms (and of every
 * TLS 1.2 and 1.3 signature scheme at security level 2 but SHA-224's). */
static EVP_MD *fetch_md(const char *name)
{
    EVP_MD *md = EVP_MD_fetch(kms_tls_hsm_provider_libctx(), name, "provider=default");
    if (md != NULL && !EVP_MD_is_a(md, "SHA2-256") && !EVP_MD_is_a(md, "SHA2-384") &&
        !EVP_MD_is_a(md, "SHA2-512")) {
        EVP_MD_free(md);
        md = NULL;
    }
    if (md == NULL) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED,
                       "kms-hsm keys sign with SHA-256, SHA-384 "
                       "or SHA-512, not %s",
                       name);
    }
    return md;
}

static int set_md(EVP_MD **slot, const char *name)
{
    EVP_MD *md = fetch_md(name);
    if (md == NULL) {
        return 0;
    }
    EVP_MD_free(*slot);
    *slot = md;
    return 1;
}

/* ---- Parameters ------------------------------------------------------------------------------*/
static int set_pad(sig_ctx *c, const OSSL_PARAM *p)
{
    int pad = 0;
    const char *s = NULL;
    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        if (OSSL_PARAM_get_utf8_string_ptr(p, &s) != 1) {
            return 0;
        }
        pad = strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0 ? RSA_PKCS1_PADDING
              : strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0   ? RSA_PKCS1_PSS_PADDING
                                                             : 0;
    } else if (OSSL_PARAM_get_int(p, &pad) != 1) {
        return 0;
    }
    if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED,
                       "kms-hsm RSA keys sign with PKCS#1 v1.5 or PSS padding only");
        return 0;
    }
    c->pad = pad;
    return 1;
}

static int set_saltlen(sig_ctx *c, const OSSL_PARAM *p)
{
    int len = 0;
    const char *s = NULL;
    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        if (OSSL_PARAM_get_utf8_string_ptr(p, &s) != 1) {
            return 0;
        }
        if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0) {
            len = RSA_PSS_SALTLEN_DIGEST;
        } else if (sscanf(s, "%d", &len) != 1 || len < 0) {
            len = -100;
        }
    } else if (OSSL_PARAM_get_int(p, &len) != 1) {
        return 0;
    }
    /* Checked against the digest when signing: the HSM's salt is as long as the digest. */
    if (len != RSA_PSS_SALTLEN_DIGEST && len < 0) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED,
                       "kms-hsm keys use a PSS salt as long as the digest");
        return 0;
    }
    c->saltlen = len;
    return 1;
}

static int set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    const OSSL_PARAM *p = NULL;
    const char *name = NULL;
    if (params == NULL) {
        return 1;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && (OSSL_PARAM_get_utf8_string_ptr(p, &name) != 1 || !set_md(&c->md, name))) {
        return 0;
    }
    if (c->ec) {
        return 1;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL && !set_pad(c, p)) {
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL && !set_saltlen(c, p)) {
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL && (OSSL_PARAM_get_utf8_string_ptr(p, &name) != 1 || !set_md(&c->mgf1, name))) {
        return 0;
    }
    return 1;
}

static const OSSL_PARAM *ecdsa_settable(void *vctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_END,
    };
    return settable;
}

static const OSSL_PARAM *rsa_settable(void *vctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_END,
    };
    return settable;
}

/* The AlgorithmIdentifier of the signature (X509_sign and CMS ask for it). None for PSS, whose
 * parameters would have to spell out the key store's fixed salt: an error, as leaving the
 * parameter unset makes OpenSSL 3.0's ASN1_item_sign_ctx free an unset pointer. */
static int algorithm_id(const sig_ctx *c, OSSL_PARAM *p)
{
    int nid = NID_undef;
    if (c->md == NULL || (!c->ec && c->pad != RSA_PKCS1_PADDING)) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED,
                       "kms-hsm names no AlgorithmIdentifier for RSA-PSS or without a digest");
        return 0;
    }
    int mdnid = EVP_MD_get_type(c->md);
    if (c->ec) {
        nid = mdnid == NID_sha256   ? NID_ecdsa_with_SHA256
              : mdnid == NID_sha384 ? NID_ecdsa_with_SHA384
                                    : NID_ecdsa_with_SHA512;
    } else {
        nid = mdnid == NID_sha256   ? NID_sha256WithRSAEncryption
              : mdnid == NID_sha384 ? NID_sha384WithRSAEncryption
                                    : NID_sha512WithRSAEncryption;
    }
    X509_ALGOR *a = X509_ALGOR_new();
    unsigned char *der = NULL;
    int n = -1;
    if (a != NULL &&
        X509_ALGOR_set0(a, OBJ_nid2obj(nid), c->ec ? V_ASN1_UNDEF : V_ASN1_NULL, NULL) == 1) {
        n = i2d_X509_ALGOR(a, &der);
    }
    int ok = n > 0 && OSSL_PARAM_set_octet_string(p, der, (size_t)n) == 1;
    OPENSSL_free(der);
    X509_ALGOR_free(a);
    return ok;
}

static int get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    const sig_ctx *c = vctx;
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && c->md != NULL && OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(c->md)) != 1) {
        return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p != NULL && !algorithm_id(c, p)) {
        return 0;
    }
    if (c->ec) {
        return 1;
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL && p->data_type == OSSL_PARAM_INTEGER && OSSL_PARAM_set_int(p, c->pad) != 1) {
        return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL && p->data_type == OSSL_PARAM_INTEGER && OSSL_PARAM_set_int(p, c->saltlen) != 1) {
        return 0;
    }
    return 1;
}

static const OSSL_PARAM *gettable(void *vctx, void *provctx)
{
    static const OSSL_PARAM list[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
        OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL),
        OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL),
        OSSL_PARAM_END,
    };
    return list;
}

/* ---- Signing ---------------------------------------------------------------------------------*/
static int begin(sig_ctx *c, void *vkey, const char *mdname, const OSSL_PARAM params[])
{
    const kms_tls_hsm_key *k = vkey;
    if (k == NULL || k->ks == NULL || k->ec != c->ec) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT,
                       "kms-hsm signs only with a key held in the HSM");
        return 0;
    }
    c->key = k;
    EVP_MD_free(c->md);
    c->md = NULL;
    if (mdname != NULL && !set_md(&c->md, mdname)) {
        return 0;
    }
    return set_ctx_params(c, params);
}

/* The key store's name of the algorithm for a digest of dlen bytes. ECDSA signs the digest's
 * leftmost bits up to the size of the curve's order (FIPS 186-5 6.4.1, SEC 1 4.1.3 step 5), so
 * a P-256 key signing a SHA-384 or SHA-512 digest (TLS 1.2 lets a client ask for that) signs
 * its first 32 bytes with ECDSA_SHA_256: the same signature. A P-521 key (an order of 66
 * bytes) signs any of the three whole; the key store takes any ECDSA algorithm for any curve. */
static int choose_alg(const sig_ctx *c, size_t *dlen, char alg[40])
{
    if (c->ec) {
        size_t order = ((size_t)EVP_PKEY_get_bits(c->key->pub) + 7) / 8;
        if (*dlen > order) {
            *dlen = order;
        }
        if (*dlen != 32 && *dlen != 48 && *dlen != 64) {
            ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED,
                           "kms-hsm ECDSA signs a 32-, 48- or 64-byte digest");
            return 0;
        }
        snprintf(alg, 40, "ECDSA_SHA_%zu", *dlen * 8);
        return 1;
    }
    if (*dlen != 32 && *dlen != 48 && *dlen != 64) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED,
                       "kms-hsm RSA signs a SHA-256, SHA-384 or SHA-512 digest");
        return 0;
    }
    if (c->pad == RSA_PKCS1_PSS_PADDING &&
        ((c->saltlen != RSA_PSS_SALTLEN_DIGEST && (size_t)c->saltlen != *dlen) ||
         (c->mgf1 != NULL && (size_t)EVP_MD_get_size(c->mgf1) != *dlen))) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED,
                       "kms-hsm PSS uses MGF1 with the message's hash and a salt as long as the "
                       "digest");
        return 0;
    }
    snprintf(alg, 40, "%s_SHA_%zu",
             c->pad == RSA_PKCS1_PSS_PADDING ? "RSASSA_PSS" : "RSASSA_PKCS1_V1_5", *dlen * 8);
    return 1;
}

static int sign_digest(sig_ctx *c, unsigned char *sig, size_t *siglen, size_t sigsize,
                       const unsigned char *digest, size_t dlen)
{
    char alg[40];
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (c->md != NULL && (size_t)EVP_MD_get_size(c->md) != dlen) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT,
                       "the digest has %zu bytes, not %d", dlen, EVP_MD_get_size(c->md));
        return 0;
    }
    if (!choose_alg(c, &dlen, alg)) {
        return 0;
    }
    if (kms_keystore_cert_key_sign_digest(c->key->ks, c->key->key_name, c->key->key_spec, alg,
                                          digest, dlen, &out, &out_len) != 0) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_OPERATION_FAIL, "the HSM did not sign: %s: %s",
                       kms_error_name(kms_last_error()), kms_last_error_message());
        return 0;
    }
    kms_tls_hsm_count_sign();
    int ok = out_len <= sigsize;
    if (ok) {
        memcpy(sig, out, out_len);
        *siglen = out_len;
    } else {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT, "signature buffer too small");
    }
    free(out);
    return ok;
}

static int max_size(const sig_ctx *c, size_t *siglen)
{
    *siglen = (size_t)EVP_PKEY_get_size(c->key->pub);
    return 1;
}

/* Prehashed (EVP_PKEY_sign): tbs is the digest. */
static int sign_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    return begin(vctx, vkey, NULL, params);
}

static int sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vctx;
    if (sig == NULL) {
        return max_size(c, siglen);
    }
    return sign_digest(c, sig, siglen, sigsize, tbs, tbslen);
}

/* EVP_DigestSign*: hashed here, then signed in the HSM. */
static int digest_sign_init(void *vctx, const char *mdname, void *vkey, const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    if (!begin(c, vkey, mdname != NULL ? mdname : "SHA2-256", params)) {
        return 0;
    }
    if (c->mdctx == NULL && (c->mdctx = EVP_MD_CTX_new()) == NULL) {
        return 0;
    }
    return EVP_DigestInit_ex2(c->mdctx, c->md, NULL);
}

static int digest_sign_update(void *vctx, const unsigned char *data, size_t len)
{
    sig_ctx *c = vctx;
    return c->mdctx != NULL && EVP_DigestUpdate(c->mdctx, data, len) == 1;
}

static int digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    sig_ctx *c = vctx;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (sig == NULL) {
        return max_size(c, siglen);
    }
    if (c->mdctx == NULL || EVP_DigestFinal_ex(c->mdctx, digest, &n) != 1) {
        return 0;
    }
    int ok = sign_digest(c, sig, siglen, sigsize, digest, n);
    sodium_memzero(digest, sizeof digest);
    return ok;
}

/* One shot (EVP_DigestSign, as libssl signs a handshake). */
static int digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                       const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vctx;
    if (sig == NULL) {
        return max_size(c, siglen);
    }
    return digest_sign_update(c, tbs, tbslen) && digest_sign_final(c, sig, siglen, sigsize);
}

#define SIGNATURE_COMMON                                                                           \
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))ctx_free},                                       \
        {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))ctx_dup},                                     \
        {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sign_init},                                \
        {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sign},                                          \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))digest_sign_init},                  \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))digest_sign_update},              \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))digest_sign_final},                \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))digest_sign},                            \
        {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))get_ctx_params},                      \
        {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))gettable},                       \
    {                                                                                              \
        OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))set_ctx_params                         \
    }

/* No verify: a certificate's public key verifies with the default provider. */
const OSSL_DISPATCH kms_tls_hsm_ecdsa_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))ecdsa_newctx},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))ecdsa_settable},
    SIGNATURE_COMMON,
    {0, NULL},
};

const OSSL_DISPATCH kms_tls_hsm_rsa_sig_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))rsa_newctx},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))rsa_settable},
    SIGNATURE_COMMON,
    {0, NULL},
};
