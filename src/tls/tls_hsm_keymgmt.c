/* The kms-hsm provider (see tls_hsm.h): its registration in a library context of its own, and
 * its key manager, whose key objects refer to key store pairs. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "tls/tls_hsm.h"
#include "tls/tls_hsm_provider.h"
#include "util/error.h"

/* ---- Key objects -----------------------------------------------------------------------------*/
static kms_tls_hsm_key *key_new(bool ec)
{
    kms_tls_hsm_key *k = calloc(1, sizeof *k);
    if (k != NULL) {
        k->ec = ec;
    }
    return k;
}

static void *ec_new(void *provctx)
{
    return key_new(true);
}

static void *rsa_new(void *provctx)
{
    return key_new(false);
}

static void key_free(void *vkey)
{
    kms_tls_hsm_key *k = vkey;
    if (k == NULL) {
        return;
    }
    EVP_PKEY_free(k->pub);
    free(k->key_name);
    free(k->key_spec);
    free(k);
}

static int key_has(const void *vkey, int selection)
{
    const kms_tls_hsm_key *k = vkey;
    if (k == NULL || k->pub == NULL) {
        return 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && k->ks == NULL) {
        return 0;
    }
    return 1;
}

/* Compares the public halves (our keys, and the certificate's public key OpenSSL imported to
 * compare it with ours). */
static int key_match(const void *vk1, const void *vk2, int selection)
{
    const kms_tls_hsm_key *a = vk1;
    const kms_tls_hsm_key *b = vk2;
    if (a->pub == NULL || b->pub == NULL) {
        return 0;
    }
    return EVP_PKEY_eq(a->pub, b->pub) == 1;
}

/* A public key from OpenSSL's parameters (another provider's key exported to ours), made by the
 * default provider; any private component is refused. */
static int import_public(kms_tls_hsm_key *k, const OSSL_PARAM params[])
{
    if (OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) != NULL ||
        OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_D) != NULL) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT,
                       "kms-hsm keys take no private key material");
        return 0;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(kms_tls_hsm_provider_libctx(),
                                                   k->ec ? "EC" : "RSA", "provider=default");
    int ok = ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, &k->pub, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int key_import(void *vkey, int selection, const OSSL_PARAM params[])
{
    kms_tls_hsm_key *k = vkey;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, KMS_TLS_HSM_PARAM_REF);
    if (k == NULL || k->pub != NULL) {
        return 0;
    }
    if (p == NULL) {
        return import_public(k, params);
    }
    const void *ptr = NULL;
    size_t len = 0;
    if (OSSL_PARAM_get_octet_ptr(p, &ptr, &len) != 1 || len != sizeof(kms_tls_hsm_ref)) {
        return 0;
    }
    const kms_tls_hsm_ref *ref = ptr;
    k->key_name = strdup(ref->key_name);
    k->key_spec = strdup(ref->key_spec);
    if (k->key_name == NULL || k->key_spec == NULL || EVP_PKEY_up_ref(ref->pub) != 1) {
        return 0;
    }
    k->pub = ref->pub;
    k->ks = ref->ks;
    return 1;
}

/* The public half only: the private one stays in the HSM. */
static int key_export(void *vkey, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    const kms_tls_hsm_key *k = vkey;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED,
                       "the private key of a kms-hsm key stays in the HSM");
        return 0;
    }
    OSSL_PARAM *params = NULL;
    if (k->pub == NULL || EVP_PKEY_todata(k->pub, EVP_PKEY_PUBLIC_KEY, &params) != 1) {
        return 0;
    }
    int ok = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

static const OSSL_PARAM ec_public_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM rsa_public_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ec_types(int selection)
{
    return ec_public_types;
}

static const OSSL_PARAM *rsa_types(int selection)
{
    return rsa_public_types;
}

/* Sizes, security bits, group, encoded point, default digest: the public key answers. */
static int key_get_params(void *vkey, OSSL_PARAM params[])
{
    const kms_tls_hsm_key *k = vkey;
    return k->pub != NULL && EVP_PKEY_get_params(k->pub, params) == 1;
}

static const OSSL_PARAM *ec_gettable(void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_END,
    };
    return gettable;
}

static const OSSL_PARAM *rsa_gettable(void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
        OSSL_PARAM_END,
    };
    return gettable;
}

static void *key_dup(const void *vkey, int selection)
{
    const kms_tls_hsm_key *k = vkey;
    kms_tls_hsm_key *d = key_new(k->ec);
    if (d == NULL) {
        return NULL;
    }
    if (k->ks != NULL && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
        d->ks = k->ks;
        d->key_name = strdup(k->key_name);
        d->key_spec = strdup(k->key_spec);
        if (d->key_name == NULL || d->key_spec == NULL) {
            key_free(d);
            return NULL;
        }
    }
    if (k->pub != NULL && EVP_PKEY_up_ref(k->pub) == 1) {
        d->pub = k->pub;
    }
    return d;
}

static const char *ec_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static const char *rsa_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

/* No generation, no validation: keys are made by the key store, and come in only by reference
 * (or as a public key to compare). */
#define KEYMGMT_COMMON                                                                             \
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))key_free},                                            \
        {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))key_has},                                          \
        {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))key_match},                                      \
        {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))key_import},                                    \
        {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))key_export},                                    \
        {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))key_get_params},                            \
    {                                                                                              \
        OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))key_dup                                             \
    }

static const OSSL_DISPATCH ec_keymgmt[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))ec_new},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))ec_types},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))ec_types},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))ec_gettable},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))ec_operation_name},
    KEYMGMT_COMMON,
    {0, NULL},
};

static const OSSL_DISPATCH rsa_keymgmt[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))rsa_new},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))rsa_types},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))rsa_types},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))rsa_gettable},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))rsa_operation_name},
    KEYMGMT_COMMON,
    {0, NULL},
};

/* ---- The provider ----------------------------------------------------------------------------*/
/* Names as the default provider spells them, so both share the library context's name map. */
#define EC_NAMES "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define RSA_NAMES "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define PROPS "provider=" KMS_TLS_HSM_PROVIDER

static const OSSL_ALGORITHM keymgmts[] = {
    {EC_NAMES, PROPS, ec_keymgmt, "kms-hsm EC keys (P-256, P-384) held in the HSM"},
    {RSA_NAMES, PROPS, rsa_keymgmt, "kms-hsm RSA keys held in the HSM"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM signatures[] = {
    {"ECDSA", PROPS, kms_tls_hsm_ecdsa_functions, "ECDSA, signed in the HSM"},
    {RSA_NAMES, PROPS, kms_tls_hsm_rsa_sig_functions, "RSA PKCS#1 v1.5 and PSS, in the HSM"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *provider_query(void *provctx, int operation_id, int *no_cache)
{
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return keymgmts;
    case OSSL_OP_SIGNATURE:
        return signatures;
    default:
        return NULL;
    }
}

static const OSSL_DISPATCH provider_functions[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))provider_query},
    {0, NULL},
};

static int provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                         const OSSL_DISPATCH **out, void **provctx)
{
    *out = provider_functions;
    *provctx = (void *)handle;
    return 1;
}

static OSSL_LIB_CTX *hsm_libctx;
static pthread_once_t hsm_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t sign_count;

OSSL_LIB_CTX *kms_tls_hsm_provider_libctx(void)
{
    return hsm_libctx;
}

void kms_tls_hsm_count_sign(void)
{
    atomic_fetch_add(&sign_count, 1);
}

uint64_t kms_tls_hsm_sign_count(void)
{
    return atomic_load(&sign_count);
}

static void libctx_init(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    if (ctx == NULL) {
        return;
    }
    /* Every fetch prefers the default provider's implementation; kms-hsm answers only for its
     * own keys (see tls_hsm.h). */
    if (OSSL_PROVIDER_load(ctx, "default") == NULL ||
        OSSL_PROVIDER_add_builtin(ctx, KMS_TLS_HSM_PROVIDER, provider_init) != 1 ||
        EVP_set_default_properties(ctx, "?provider=default") != 1) {
        OSSL_LIB_CTX_free(ctx);
        return;
    }
    hsm_libctx = ctx;
    if (OSSL_PROVIDER_load(ctx, KMS_TLS_HSM_PROVIDER) == NULL) {
        hsm_libctx = NULL;
        OSSL_LIB_CTX_free(ctx);
    }
}

OSSL_LIB_CTX *kms_tls_hsm_libctx(void)
{
    pthread_once(&hsm_once, libctx_init);
    if (hsm_libctx == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot load the kms-hsm OpenSSL provider");
    }
    return hsm_libctx;
}

/* ---- Keys by reference -----------------------------------------------------------------------*/
/* The key specs the kms-hsm provider signs with: a NIST curve TLS has a signature scheme for
 * (ecdsa_secp256r1_sha256, _secp384r1_sha384, _secp521r1_sha512), or RSA. */
static const struct {
    const char *key_spec;
    const char *type;
    int bits;
    int curve_nid; /* EC only */
} signing_specs[] = {
    {"ECC_NIST_P256", "EC", 256, NID_X9_62_prime256v1},
    {"ECC_NIST_P384", "EC", 384, NID_secp384r1},
    {"ECC_NIST_P521", "EC", 521, NID_secp521r1},
    {"RSA_2048", "RSA", 2048, NID_undef},
    {"RSA_3072", "RSA", 3072, NID_undef},
    {"RSA_4096", "RSA", 4096, NID_undef},
};

/* key_spec is one of signing_specs, and pub a key of it (type, curve, size). */
static int check_spec(EVP_PKEY *pub, const char *key_spec)
{
    char group[64] = "";
    for (size_t i = 0; i < sizeof signing_specs / sizeof signing_specs[0]; i++) {
        if (strcmp(key_spec, signing_specs[i].key_spec) != 0) {
            continue;
        }
        bool ok = EVP_PKEY_is_a(pub, signing_specs[i].type) &&
                  EVP_PKEY_get_bits(pub) == signing_specs[i].bits;
        if (ok && signing_specs[i].curve_nid != NID_undef) {
            ok = EVP_PKEY_get_group_name(pub, group, sizeof group, NULL) == 1 &&
                 OBJ_sn2nid(group) == signing_specs[i].curve_nid;
        }
        ERR_clear_error();
        KMS_ENSURE(ok, KMS_ERR_VALIDATION, "the public key is not of key spec %s", key_spec);
        return 0;
    }
    return kms_raise(KMS_ERR_VALIDATION, "key spec %s cannot sign for TLS", key_spec);
}

/* One signature by the key store's pair, checked against pub: the pair exists (else
 * NotFoundException) and spki is its public half (else ValidationException), so that a wrong
 * name fails here rather than in every client's handshake. */
static int check_pair(const kms_keystore *ks, const char *key_name, const char *key_spec,
                      EVP_PKEY *pub)
{
    uint8_t digest[32];
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    bool ec = EVP_PKEY_is_a(pub, "EC");
    int r = -1;
    randombytes_buf(digest, sizeof digest);
    KMS_GUARD(kms_keystore_cert_key_sign_digest(ks, key_name, key_spec,
                                                ec ? "ECDSA_SHA_256" : "RSASSA_PKCS1_V1_5_SHA_256",
                                                digest, sizeof digest, &sig, &sig_len));
    EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_pkey(kms_tls_hsm_provider_libctx(), pub, "provider=default");
    if (ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
        (ec || (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
                EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1)) &&
        EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof digest) == 1) {
        r = 0;
    } else {
        ERR_clear_error();
        r = kms_raise(KMS_ERR_VALIDATION, "the public key is not that of the key store's key %s",
                      key_name);
    }
    EVP_PKEY_CTX_free(ctx);
    free(sig);
    return r;
}

EVP_PKEY *kms_tls_hsm_pkey_new(const kms_keystore *ks, const char *key_name, const char *key_spec,
                               const uint8_t *spki, size_t spki_len)
{
    OSSL_LIB_CTX *libctx = kms_tls_hsm_libctx();
    EVP_PKEY *pub = NULL;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (libctx == NULL) {
        return NULL;
    }
    if (ks == NULL || key_name == NULL || key_spec == NULL || spki == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "an HSM-held key needs its key store, name, spec and "
                                      "public key");
        return NULL;
    }
    const uint8_t *p = spki;
    pub = d2i_PUBKEY_ex(NULL, &p, (long)spki_len, libctx, "provider=default");
    if (pub == NULL || p != spki + spki_len) {
        ERR_clear_error();
        kms_raise(KMS_ERR_VALIDATION, "the public key is not a DER SubjectPublicKeyInfo");
        goto out;
    }
    if (check_spec(pub, key_spec) != 0 || check_pair(ks, key_name, key_spec, pub) != 0) {
        goto out;
    }
    kms_tls_hsm_ref ref = {ks, key_name, key_spec, pub};
    void *refp = &ref;
    OSSL_PARAM params[] = {
        OSSL_PARAM_octet_ptr(KMS_TLS_HSM_PARAM_REF, &refp, sizeof ref),
        OSSL_PARAM_END,
    };
    ctx = EVP_PKEY_CTX_new_from_name(libctx, EVP_PKEY_is_a(pub, "EC") ? "EC" : "RSA", PROPS);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        ERR_clear_error();
        kms_raise(KMS_ERR_INTERNAL, "cannot make a kms-hsm key of %s", key_name);
    }
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pub);
    return pkey;
}
