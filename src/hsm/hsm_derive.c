/* Key agreement in the HSM: ECDH with a KEY_AGREEMENT private key (PKCS #11 v2.40, 2.3.16
 * "Elliptic curve Diffie-Hellman key derivation", CKM_ECDH1_DERIVE with CKD_NULL: the raw
 * shared secret, the X coordinate of the shared point). */
#include "hsm/hsm.h"

#include <string.h>

#include <p11-kit/pkcs11.h>

#include "hsm/hsm_internal.h"
#include "util/secmem.h"
#include "util/util.h"

typedef struct derive_ctx {
    CK_ECDH1_DERIVE_PARAMS params;
    CK_ULONG len; /* the field length: the secret's */
    uint8_t *out; /* len bytes */
} derive_ctx;

/* Derives the secret as a session object that may be read, reads it, destroys it. */
static CK_RV derive_op(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *vctx,
                       const char **call)
{
    static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    derive_ctx *c = vctx;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_KEY_TYPE, &kt, sizeof kt),
        ATTR(CKA_VALUE_LEN, &c->len, sizeof c->len),
        ATTR_BOOL(CKA_TOKEN, no),
        ATTR_BOOL(CKA_SENSITIVE, no),
        ATTR_BOOL(CKA_EXTRACTABLE, yes),
        ATTR_BOOL(CKA_ENCRYPT, no),
        ATTR_BOOL(CKA_DECRYPT, no),
        ATTR_BOOL(CKA_SIGN, no),
        ATTR_BOOL(CKA_VERIFY, no),
        ATTR_BOOL(CKA_WRAP, no),
        ATTR_BOOL(CKA_UNWRAP, no),
        ATTR_BOOL(CKA_DERIVE, no),
    };
    CK_MECHANISM mech = {CKM_ECDH1_DERIVE, &c->params, sizeof c->params};
    CK_OBJECT_HANDLE secret = CK_INVALID_HANDLE;
    *call = "C_DeriveKey";
    CK_RV rv = h->f->C_DeriveKey(s, &mech, key, tmpl, NATTR(tmpl), &secret);
    if (rv != CKR_OK) {
        return rv;
    }
    CK_ATTRIBUTE value = {CKA_VALUE, c->out, c->len};
    *call = "C_GetAttributeValue(CKA_VALUE of the shared secret)";
    rv = h->f->C_GetAttributeValue(s, secret, &value, 1);
    if (rv == CKR_OK && value.ulValueLen != c->len) {
        rv = CKR_GENERAL_ERROR;
    }
    CK_RV drv = h->f->C_DestroyObject(s, secret);
    if (rv == CKR_OK && drv != CKR_OK) {
        *call = "C_DestroyObject(the shared secret)";
        rv = drv;
    }
    return rv;
}

int kms_hsm_ecdh_derive(kms_hsm *hsm, const char *label, kms_hsm_key_type type,
                        const uint8_t *peer_point, size_t peer_len, uint8_t **secret,
                        size_t *secret_len)
{
    const kms_hsm_key_spec *sp = kms_hsm_key_spec_of(type);
    KMS_GUARD(kms_hsm_check_label(label));
    KMS_ENSURE(secret != NULL && secret_len != NULL && peer_point != NULL, KMS_ERR_VALIDATION,
               "ECDH: missing buffer");
    *secret = NULL;
    *secret_len = 0;
    KMS_ENSURE(sp != NULL && sp->kind == SPEC_EC && sp->derive, KMS_ERR_VALIDATION,
               "ECDH needs a key agreement key type, not %d", (int)type);
    KMS_ENSURE(peer_len == 1 + 2 * sp->field_len && peer_point[0] == 0x04, KMS_ERR_VALIDATION,
               "the peer's public key is not an uncompressed point on %s", sp->group);
    derive_ctx c = {
        .params = {CKD_NULL, 0, NULL, (unsigned long)peer_len, (unsigned char *)peer_point},
        .len = (CK_ULONG)sp->field_len};
    c.out = kms_secure_alloc(sp->field_len);
    if (c.out == NULL) {
        return -1;
    }
    CK_RV rv;
    const char *call = "C_DeriveKey";
    if (kms_hsm_with_key(hsm, label, derive_op, &c, &rv, &call) != 0) {
        kms_secure_free(c.out);
        return -1;
    }
    if (rv != CKR_OK) {
        kms_secure_free(c.out);
        return kms_hsm_raise_rv(rv, call, label);
    }
    *secret = c.out;
    *secret_len = sp->field_len;
    return 0;
}
