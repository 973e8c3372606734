/* Key objects: generation, public halves, destruction and attributes. */
#include "hsm/hsm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "hsm/hsm_internal.h"
#include "hsm/hsm_pubkey.h"
#include "util/util.h"

static const CK_BBOOL yes = CK_TRUE;
static const CK_BBOOL no = CK_FALSE;

/* ---- Key generation -------------------------------------------------------------------------- */

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
/* secp521r1 (SEC 2 A.2.1, 1.3.132.0.35): CKA_EC_PARAMS as the DER OID; points of 2 x 66 bytes. */
static const uint8_t oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
/* secp256k1 (SEC 2 2.4.1, 1.3.132.0.10), AWS KMS's ECC_SECG_P256K1. */
static const uint8_t oid_secp256k1[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};

static const kms_hsm_key_spec key_specs[] = {
    {KMS_HSM_AES_256, SPEC_AES, 32, NULL, 0, NULL, 0, 0, 0, false, false},
    {KMS_HSM_HMAC_224, SPEC_HMAC, 28, NULL, 0, NULL, 0, CKM_SHA224_HMAC, 28, false, false},
    {KMS_HSM_HMAC_256, SPEC_HMAC, 32, NULL, 0, NULL, 0, CKM_SHA256_HMAC, 32, false, false},
    {KMS_HSM_HMAC_384, SPEC_HMAC, 48, NULL, 0, NULL, 0, CKM_SHA384_HMAC, 48, false, false},
    {KMS_HSM_HMAC_512, SPEC_HMAC, 64, NULL, 0, NULL, 0, CKM_SHA512_HMAC, 64, false, false},
    {KMS_HSM_RSA_2048, SPEC_RSA, 2048, NULL, 0, NULL, 0, 0, 0, false, false},
    {KMS_HSM_RSA_3072, SPEC_RSA, 3072, NULL, 0, NULL, 0, 0, 0, false, false},
    {KMS_HSM_RSA_4096, SPEC_RSA, 4096, NULL, 0, NULL, 0, 0, 0, false, false},
    {KMS_HSM_EC_P256, SPEC_EC, 0, oid_p256, sizeof oid_p256, "prime256v1", 32, 0, 0, false, false},
    {KMS_HSM_EC_P384, SPEC_EC, 0, oid_p384, sizeof oid_p384, "secp384r1", 48, 0, 0, false, false},
    {KMS_HSM_EC_P521, SPEC_EC, 0, oid_p521, sizeof oid_p521, "secp521r1", 66, 0, 0, false, false},
    {KMS_HSM_RSA_2048_DECRYPT, SPEC_RSA, 2048, NULL, 0, NULL, 0, 0, 0, true, false},
    {KMS_HSM_RSA_3072_DECRYPT, SPEC_RSA, 3072, NULL, 0, NULL, 0, 0, 0, true, false},
    {KMS_HSM_RSA_4096_DECRYPT, SPEC_RSA, 4096, NULL, 0, NULL, 0, 0, 0, true, false},
    {KMS_HSM_EC_SECP256K1, SPEC_EC, 0, oid_secp256k1, sizeof oid_secp256k1, "secp256k1", 32, 0, 0,
     false, false},
    {KMS_HSM_EC_P256_DERIVE, SPEC_EC, 0, oid_p256, sizeof oid_p256, "prime256v1", 32, 0, 0, false,
     true},
    {KMS_HSM_EC_P384_DERIVE, SPEC_EC, 0, oid_p384, sizeof oid_p384, "secp384r1", 48, 0, 0, false,
     true},
    {KMS_HSM_EC_P521_DERIVE, SPEC_EC, 0, oid_p521, sizeof oid_p521, "secp521r1", 66, 0, 0, false,
     true},
};

const kms_hsm_key_spec *kms_hsm_key_spec_of(kms_hsm_key_type type)
{
    for (size_t i = 0; i < sizeof key_specs / sizeof key_specs[0]; i++) {
        if (key_specs[i].type == type) {
            return &key_specs[i];
        }
    }
    return NULL;
}

const char *kms_hsm_key_group(kms_hsm_key_type type)
{
    const kms_hsm_key_spec *sp = kms_hsm_key_spec_of(type);
    return sp != NULL && sp->kind == SPEC_EC ? sp->group : NULL;
}

static CK_RV generate_secret(kms_hsm *h, CK_SESSION_HANDLE s, const kms_hsm_key_spec *sp,
                             const char *label, CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    bool aes = sp->kind == SPEC_AES;
    CK_KEY_TYPE kt = aes ? CKK_AES : CKK_GENERIC_SECRET;
    CK_ULONG len = sp->bits_or_len;
    size_t ll = strlen(label);
    /* AES keys encrypt and decrypt only; HMAC keys sign and verify only. */
    const CK_BBOOL *crypt = aes ? &yes : &no;
    const CK_BBOOL *mac = aes ? &no : &yes;
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_KEY_TYPE, &kt, sizeof kt),
        ATTR(CKA_VALUE_LEN, &len, sizeof len),
        ATTR_BOOL(CKA_TOKEN, yes),
        ATTR_BOOL(CKA_PRIVATE, yes),
        ATTR_BOOL(CKA_SENSITIVE, yes),
        ATTR_BOOL(CKA_EXTRACTABLE, no),
        ATTR(CKA_ENCRYPT, crypt, sizeof(CK_BBOOL)),
        ATTR(CKA_DECRYPT, crypt, sizeof(CK_BBOOL)),
        ATTR(CKA_SIGN, mac, sizeof(CK_BBOOL)),
        ATTR(CKA_VERIFY, mac, sizeof(CK_BBOOL)),
        ATTR_BOOL(CKA_WRAP, no),
        ATTR_BOOL(CKA_UNWRAP, no),
        ATTR_BOOL(CKA_DERIVE, no),
        ATTR(CKA_LABEL, label, ll),
        ATTR(CKA_ID, label, ll),
    };
    CK_MECHANISM mech = {aes ? CKM_AES_KEY_GEN : CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    return h->f->C_GenerateKey(s, &mech, tmpl, NATTR(tmpl), key);
}

static CK_RV generate_pair(kms_hsm *h, CK_SESSION_HANDLE s, const kms_hsm_key_spec *sp,
                           const char *label, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    static const uint8_t f4[] = {0x01, 0x00, 0x01}; /* public exponent 65537 */
    CK_ULONG bits = sp->bits_or_len;
    size_t ll = strlen(label);
    bool rsa = sp->kind == SPEC_RSA;
    /* Least privilege: a key pair either signs and verifies, decrypts and encrypts, or
     * derives (ECDH). */
    const CK_BBOOL *sign = sp->decrypt || sp->derive ? &no : &yes;
    const CK_BBOOL *crypt = sp->decrypt ? &yes : &no;
    const CK_BBOOL *derive = sp->derive ? &yes : &no;
    CK_ATTRIBUTE pub_tmpl[] = {
        ATTR_BOOL(CKA_TOKEN, yes),
        ATTR_BOOL(CKA_PRIVATE, no),
        ATTR(CKA_VERIFY, sign, sizeof(CK_BBOOL)),
        ATTR(CKA_ENCRYPT, crypt, sizeof(CK_BBOOL)),
        ATTR_BOOL(CKA_WRAP, no),
        ATTR(CKA_LABEL, label, ll),
        ATTR(CKA_ID, label, ll),
        /* the last two differ by kind */
        rsa ? (CK_ATTRIBUTE)ATTR(CKA_MODULUS_BITS, &bits, sizeof bits)
            : (CK_ATTRIBUTE)ATTR(CKA_EC_PARAMS, sp->ec_params, sp->ec_params_len),
        ATTR(CKA_PUBLIC_EXPONENT, f4, sizeof f4),
    };
    CK_ATTRIBUTE priv_tmpl[] = {
        ATTR_BOOL(CKA_TOKEN, yes),
        ATTR_BOOL(CKA_PRIVATE, yes),
        ATTR_BOOL(CKA_SENSITIVE, yes),
        ATTR_BOOL(CKA_EXTRACTABLE, no),
        ATTR(CKA_SIGN, sign, sizeof(CK_BBOOL)),
        ATTR(CKA_DECRYPT, crypt, sizeof(CK_BBOOL)),
        ATTR_BOOL(CKA_UNWRAP, no),
        ATTR(CKA_DERIVE, derive, sizeof(CK_BBOOL)),
        ATTR(CKA_LABEL, label, ll),
        ATTR(CKA_ID, label, ll),
    };
    CK_MECHANISM mech = {rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG npub = NATTR(pub_tmpl) - (rsa ? 0 : 1);
    return h->f->C_GenerateKeyPair(s, &mech, pub_tmpl, npub, priv_tmpl, NATTR(priv_tmpl), pub,
                                   priv);
}

/* Reads one variable-length attribute into a malloc'd buffer. */
static int read_attr(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE t,
                     const char *label, uint8_t **out, size_t *len)
{
    CK_ATTRIBUTE a = {t, NULL, 0};
    CK_RV rv = h->f->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0) {
        return kms_hsm_raise_rv(rv != CKR_OK ? rv : CKR_ATTRIBUTE_TYPE_INVALID,
                                "C_GetAttributeValue(public key)", label);
    }
    a.pValue = malloc(a.ulValueLen);
    if (a.pValue == NULL) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory reading a public key");
    }
    rv = h->f->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return kms_hsm_raise_rv(rv, "C_GetAttributeValue(public key)", label);
    }
    *out = a.pValue;
    *len = a.ulValueLen;
    return 0;
}

static int public_spki(kms_hsm *h, CK_SESSION_HANDLE s, const kms_hsm_key_spec *sp,
                       CK_OBJECT_HANDLE pub, const char *label, uint8_t **spki, size_t *spki_len)
{
    int r = -1;
    uint8_t *a = NULL;
    uint8_t *b = NULL;
    size_t a_len = 0;
    size_t b_len = 0;
    if (sp->kind == SPEC_RSA) {
        if (read_attr(h, s, pub, CKA_MODULUS, label, &a, &a_len) != 0 ||
            read_attr(h, s, pub, CKA_PUBLIC_EXPONENT, label, &b, &b_len) != 0 ||
            kms_hsm_spki_rsa(a, a_len, b, b_len, spki, spki_len) != 0) {
            goto out;
        }
    } else {
        if (read_attr(h, s, pub, CKA_EC_POINT, label, &a, &a_len) != 0 ||
            kms_hsm_spki_ec(sp->group, sp->field_len, a, a_len, spki, spki_len) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    free(a);
    free(b);
    return r;
}

static int generate_locked(kms_hsm *h, CK_SESSION_HANDLE s, const kms_hsm_key_spec *sp,
                           const char *label, uint8_t **spki, size_t *spki_len, CK_RV *rv)
{
    int r = -1;
    CK_OBJECT_HANDLE objs[MAX_OBJECTS_PER_LABEL];
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    if (kms_hsm_find_objects(h, s, label, objs, MAX_OBJECTS_PER_LABEL, &n) != 0) {
        goto out;
    }
    if (n != 0) {
        kms_raise(KMS_ERR_ALREADY_EXISTS,
                  "key material labelled '%s' already exists in token "
                  "'%s'",
                  label, h->token_label);
        goto out;
    }
    if (sp->kind == SPEC_AES || sp->kind == SPEC_HMAC) {
        *rv = generate_secret(h, s, sp, label, &key);
    } else {
        *rv = generate_pair(h, s, sp, label, &pub, &key);
    }
    if (*rv != CKR_OK) {
        kms_hsm_raise_rv(*rv,
                         sp->kind == SPEC_AES || sp->kind == SPEC_HMAC ? "C_GenerateKey"
                                                                       : "C_GenerateKeyPair",
                         label);
        goto out;
    }
    if (pub != CK_INVALID_HANDLE && spki != NULL &&
        public_spki(h, s, sp, pub, label, spki, spki_len) != 0) {
        goto out;
    }
    kms_hsm_cache_put(h, label, key);
    r = 0;
out:
    if (r != 0) {
        /* Atomic: nothing of a failed generation stays in the token. */
        if (key != CK_INVALID_HANDLE) {
            (void)h->f->C_DestroyObject(s, key);
        }
        if (pub != CK_INVALID_HANDLE) {
            (void)h->f->C_DestroyObject(s, pub);
        }
    }
    return r;
}

int kms_hsm_generate_key(kms_hsm *hsm, kms_hsm_key_type type, const char *label, uint8_t **spki,
                         size_t *spki_len)
{
    const kms_hsm_key_spec *sp = kms_hsm_key_spec_of(type);
    if (spki != NULL) {
        *spki = NULL;
    }
    if (spki_len != NULL) {
        *spki_len = 0;
    }
    KMS_ENSURE(sp != NULL, KMS_ERR_VALIDATION, "unknown HSM key type %d", (int)type);
    KMS_GUARD(kms_hsm_check_label(label));
    KMS_ENSURE(spki == NULL || spki_len != NULL, KMS_ERR_VALIDATION, "spki_len is required");
    KMS_ENSURE(spki != NULL || sp->kind == SPEC_AES || sp->kind == SPEC_HMAC, KMS_ERR_VALIDATION,
               "an asymmetric key needs somewhere to return its public key");
    CK_RV rv = CKR_OK;
    pthread_mutex_lock(&hsm->gen_lock);
    CK_SESSION_HANDLE s = kms_hsm_session_borrow(hsm);
    int r = generate_locked(hsm, s, sp, label, spki, spki_len, &rv);
    kms_hsm_session_return(hsm, s, rv);
    pthread_mutex_unlock(&hsm->gen_lock);
    return r;
}

int kms_hsm_public_key(kms_hsm *hsm, kms_hsm_key_type type, const char *label, uint8_t **spki,
                       size_t *spki_len)
{
    const kms_hsm_key_spec *sp = kms_hsm_key_spec_of(type);
    KMS_ENSURE(sp != NULL && (sp->kind == SPEC_RSA || sp->kind == SPEC_EC), KMS_ERR_VALIDATION,
               "HSM key type %d has no public key", (int)type);
    KMS_GUARD(kms_hsm_check_label(label));
    int r = -1;
    CK_OBJECT_HANDLE objs[MAX_OBJECTS_PER_LABEL];
    CK_ULONG n = 0;
    CK_SESSION_HANDLE s = kms_hsm_session_borrow(hsm);
    if (kms_hsm_find_objects(hsm, s, label, objs, MAX_OBJECTS_PER_LABEL, &n) != 0) {
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_OBJECT_CLASS cls = 0;
        CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof cls};
        if (hsm->f->C_GetAttributeValue(s, objs[i], &a, 1) == CKR_OK && cls == CKO_PUBLIC_KEY) {
            r = public_spki(hsm, s, sp, objs[i], label, spki, spki_len);
            goto out;
        }
    }
    kms_raise(KMS_ERR_NOT_FOUND, "no public key labelled '%s' in token '%s'", label,
              hsm->token_label);
out:
    kms_hsm_session_return(hsm, s, CKR_OK);
    return r;
}

int kms_hsm_destroy_key(kms_hsm *hsm, const char *label)
{
    KMS_GUARD(kms_hsm_check_label(label));
    int r = -1;
    CK_RV rv = CKR_OK;
    CK_OBJECT_HANDLE objs[MAX_OBJECTS_PER_LABEL];
    CK_ULONG n = 0;
    pthread_mutex_lock(&hsm->gen_lock);
    CK_SESSION_HANDLE s = kms_hsm_session_borrow(hsm);
    kms_hsm_cache_drop(hsm, label);
    bool any = false;
    do {
        if (kms_hsm_find_objects(hsm, s, label, objs, MAX_OBJECTS_PER_LABEL, &n) != 0) {
            goto out;
        }
        any = any || n != 0;
        for (CK_ULONG i = 0; i < n && rv == CKR_OK; i++) {
            CK_RV one = hsm->f->C_DestroyObject(s, objs[i]);
            if (one != CKR_OK && one != CKR_OBJECT_HANDLE_INVALID) {
                rv = one;
            }
        }
        /* A full batch may mean more objects carry the label. */
    } while (n == MAX_OBJECTS_PER_LABEL && rv == CKR_OK);
    if (!any) {
        kms_raise(KMS_ERR_NOT_FOUND, "no key material labelled '%s' in token '%s'", label,
                  hsm->token_label);
        goto out;
    }
    if (rv != CKR_OK) {
        kms_hsm_raise_rv(rv, "C_DestroyObject", label);
        goto out;
    }
    r = 0;
out:
    kms_hsm_session_return(hsm, s, rv);
    pthread_mutex_unlock(&hsm->gen_lock);
    return r;
}

static CK_RV attrs_op(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *vctx,
                      const char **call)
{
    CK_BBOOL *v = vctx;
    CK_ATTRIBUTE a[] = {
        {CKA_TOKEN, &v[0], sizeof v[0]},
        {CKA_SENSITIVE, &v[1], sizeof v[1]},
        {CKA_EXTRACTABLE, &v[2], sizeof v[2]},
        {CKA_ALWAYS_SENSITIVE, &v[3], sizeof v[3]},
        {CKA_NEVER_EXTRACTABLE, &v[4], sizeof v[4]},
    };
    *call = "C_GetAttributeValue";
    return h->f->C_GetAttributeValue(s, key, a, NATTR(a));
}

int kms_hsm_key_attributes(kms_hsm *hsm, const char *label, kms_hsm_key_attrs *out)
{
    KMS_GUARD(kms_hsm_check_label(label));
    KMS_ENSURE(out != NULL, KMS_ERR_VALIDATION, "key attributes: missing output");
    CK_BBOOL v[5] = {0};
    CK_RV rv;
    const char *call = "C_GetAttributeValue";
    KMS_GUARD(kms_hsm_with_key(hsm, label, attrs_op, v, &rv, &call));
    if (rv != CKR_OK) {
        return kms_hsm_raise_rv(rv, call, label);
    }
    out->token = v[0] == CK_TRUE;
    out->sensitive = v[1] == CK_TRUE;
    out->extractable = v[2] == CK_TRUE;
    out->always_sensitive = v[3] == CK_TRUE;
    out->never_extractable = v[4] == CK_TRUE;
    return 0;
}
