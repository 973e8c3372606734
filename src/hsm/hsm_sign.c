/* Signatures and MACs in the HSM. */
#include "hsm/hsm.h"

#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "hsm/hsm_internal.h"
#include "hsm/hsm_pubkey.h"
#include "util/util.h"

/* ---- Signatures and MACs ----------------------------------------------------------------- */

/* RFC 8017 section 9.2, note 1: DER of DigestInfo up to the digest bytes. */
static const uint8_t di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t di_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};
#define DIGEST_INFO_PREFIX_LEN 19

typedef struct sig_spec {
    kms_hsm_sig_alg alg;
    CK_MECHANISM_TYPE mech;
    size_t digest_len;
    CK_MECHANISM_TYPE hash;     /* PSS */
    CK_RSA_PKCS_MGF_TYPE mgf;   /* PSS */
    const uint8_t *digest_info; /* PKCS#1 v1.5 */
    const char *name;
} sig_spec;

static const sig_spec sig_specs[] = {
    {KMS_HSM_RSA_PSS_SHA256, CKM_RSA_PKCS_PSS, 32, CKM_SHA256, CKG_MGF1_SHA256, NULL,
     "RSASSA_PSS_SHA_256"},
    {KMS_HSM_RSA_PSS_SHA384, CKM_RSA_PKCS_PSS, 48, CKM_SHA384, CKG_MGF1_SHA384, NULL,
     "RSASSA_PSS_SHA_384"},
    {KMS_HSM_RSA_PSS_SHA512, CKM_RSA_PKCS_PSS, 64, CKM_SHA512, CKG_MGF1_SHA512, NULL,
     "RSASSA_PSS_SHA_512"},
    {KMS_HSM_RSA_PKCS1_SHA256, CKM_RSA_PKCS, 32, 0, 0, di_sha256, "RSASSA_PKCS1_V1_5_SHA_256"},
    {KMS_HSM_RSA_PKCS1_SHA384, CKM_RSA_PKCS, 48, 0, 0, di_sha384, "RSASSA_PKCS1_V1_5_SHA_384"},
    {KMS_HSM_RSA_PKCS1_SHA512, CKM_RSA_PKCS, 64, 0, 0, di_sha512, "RSASSA_PKCS1_V1_5_SHA_512"},
    {KMS_HSM_ECDSA_SHA256, CKM_ECDSA, 32, 0, 0, NULL, "ECDSA_SHA_256"},
    {KMS_HSM_ECDSA_SHA384, CKM_ECDSA, 48, 0, 0, NULL, "ECDSA_SHA_384"},
    /* P-521: the token answers r||s of 66 bytes each (kms_hsm_ecdsa_der encodes any half). */
    {KMS_HSM_ECDSA_SHA512, CKM_ECDSA, 64, 0, 0, NULL, "ECDSA_SHA_512"},
};

typedef struct sign_ctx {
    CK_MECHANISM mech;
    const uint8_t *data;
    CK_ULONG data_len;
    uint8_t *out;
    CK_ULONG out_len; /* room in, bytes written out */
} sign_ctx;

static CK_RV sign_op(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *vctx,
                     const char **call)
{
    sign_ctx *c = vctx;
    CK_ULONG room = c->out_len;
    *call = "C_SignInit";
    CK_RV rv = h->f->C_SignInit(s, &c->mech, key);
    if (rv == CKR_OK) {
        *call = "C_Sign";
        rv = h->f->C_Sign(s, (CK_BYTE_PTR)c->data, c->data_len, c->out, &room);
    }
    c->out_len = rv == CKR_OK ? room : 0;
    return rv;
}

int kms_hsm_sign_digest(kms_hsm *hsm, const char *label, kms_hsm_sig_alg alg, const uint8_t *digest,
                        size_t digest_len, uint8_t **sig, size_t *sig_len)
{
    int r = -1;
    const sig_spec *sp = NULL;
    uint8_t data[DIGEST_INFO_PREFIX_LEN + 64];
    uint8_t out[MAX_SIG_LEN];
    KMS_GUARD(kms_hsm_check_label(label));
    KMS_ENSURE(digest != NULL && sig != NULL && sig_len != NULL, KMS_ERR_VALIDATION,
               "sign: missing buffer");
    *sig = NULL;
    *sig_len = 0;
    for (size_t i = 0; i < sizeof sig_specs / sizeof sig_specs[0]; i++) {
        if (sig_specs[i].alg == alg) {
            sp = &sig_specs[i];
        }
    }
    KMS_ENSURE(sp != NULL, KMS_ERR_VALIDATION, "unknown signing algorithm %d", (int)alg);
    KMS_ENSURE(digest_len == sp->digest_len, KMS_ERR_VALIDATION,
               "%s signs a %zu-byte digest, not %zu bytes", sp->name, sp->digest_len, digest_len);
    CK_RSA_PKCS_PSS_PARAMS pss = {sp->hash, sp->mgf, (CK_ULONG)sp->digest_len};
    sign_ctx c = {.mech = {sp->mech, NULL, 0}, .out = out, .out_len = sizeof out};
    if (sp->mech == CKM_RSA_PKCS_PSS) {
        c.mech.pParameter = &pss;
        c.mech.ulParameterLen = sizeof pss;
    }
    size_t n = 0;
    if (sp->digest_info != NULL) {
        memcpy(data, sp->digest_info, DIGEST_INFO_PREFIX_LEN);
        n = DIGEST_INFO_PREFIX_LEN;
    }
    memcpy(data + n, digest, digest_len);
    c.data = data;
    c.data_len = (CK_ULONG)(n + digest_len);
    CK_RV rv;
    const char *call = "C_SignInit";
    if (kms_hsm_with_key(hsm, label, sign_op, &c, &rv, &call) != 0) {
        goto out;
    }
    if (rv != CKR_OK) {
        kms_hsm_raise_rv(rv, call, label);
        goto out;
    }
    if (sp->mech == CKM_ECDSA) {
        if (kms_hsm_ecdsa_der(out, c.out_len, sig, sig_len) != 0) {
            goto out;
        }
    } else {
        *sig = malloc(c.out_len);
        if (*sig == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory returning a signature");
            goto out;
        }
        memcpy(*sig, out, c.out_len);
        *sig_len = c.out_len;
    }
    r = 0;
out:
    return r;
}

int kms_hsm_hmac(kms_hsm *hsm, const char *label, kms_hsm_key_type type, const uint8_t *msg,
                 size_t msg_len, uint8_t mac[64], size_t *mac_len)
{
    static const uint8_t empty[1];
    const kms_hsm_key_spec *sp = kms_hsm_key_spec_of(type);
    KMS_GUARD(kms_hsm_check_label(label));
    KMS_ENSURE(sp != NULL && sp->kind == SPEC_HMAC, KMS_ERR_VALIDATION,
               "HMAC needs an HMAC key type, not %d", (int)type);
    KMS_ENSURE(mac != NULL && mac_len != NULL && (msg != NULL || msg_len == 0), KMS_ERR_VALIDATION,
               "HMAC: missing buffer");
    uint8_t out[64];
    sign_ctx c = {.mech = {sp->hmac_mech, NULL, 0},
                  .data = msg_len != 0 ? msg : empty,
                  .data_len = (CK_ULONG)msg_len,
                  .out = out,
                  .out_len = sizeof out};
    CK_RV rv;
    const char *call = "C_SignInit";
    KMS_GUARD(kms_hsm_with_key(hsm, label, sign_op, &c, &rv, &call));
    if (rv != CKR_OK) {
        return kms_hsm_raise_rv(rv, call, label);
    }
    KMS_ENSURE(c.out_len == sp->mac_len, KMS_ERR_HSM,
               "C_Sign (HMAC) with key material '%s' returned %lu bytes, not %zu", label,
               (unsigned long)c.out_len, sp->mac_len);
    memcpy(mac, out, c.out_len);
    *mac_len = c.out_len;
    return 0;
}
