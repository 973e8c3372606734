/* RSAES-OAEP decryption in the HSM (hsm.h kms_hsm_rsa_oaep_decrypt). */
#include "hsm/hsm.h"

#include <string.h>

#include <p11-kit/pkcs11.h>

#include "hsm/hsm_internal.h"
#include "hsm/hsm_oaep.h"
#include "util/util.h"

/* ---- RSAES-OAEP --------------------------------------------------------------------------- */

/* Room for the output of any RSA decryption we do (RSA-4096: 512 bytes), so that no module
 * answers CKR_BUFFER_TOO_SMALL for a ciphertext of the wrong length. */
#define MAX_RSA_LEN 512

typedef struct oaep_ctx {
    CK_RSA_PKCS_OAEP_PARAMS params;
    const uint8_t *in;
    CK_ULONG in_len;
    uint8_t *out;
    CK_ULONG out_len; /* room in, bytes written out */
    bool raw;         /* decrypted with CKM_RSA_X_509: out holds the encoded message */
} oaep_ctx;

static CK_RV oaep_op(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *vctx,
                     const char **call)
{
    oaep_ctx *c = vctx;
    CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &c->params, sizeof c->params};
    CK_ULONG room = c->out_len;
    c->raw = false;
    *call = "C_DecryptInit";
    CK_RV rv = h->f->C_DecryptInit(s, &mech, key);
    if (rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD) {
        /* SoftHSM 2.6.1 MechParamCheckRSAPKCSOAEP: hashAlg must be CKM_SHA_1 (measured:
         * CKR_ARGUMENTS_BAD for SHA-256). Raw RSA in the token, padding checked here. */
        CK_MECHANISM raw = {CKM_RSA_X_509, NULL, 0};
        *call = "C_DecryptInit(CKM_RSA_X_509)";
        rv = h->f->C_DecryptInit(s, &raw, key);
        c->raw = rv == CKR_OK;
    }
    if (rv == CKR_OK) {
        *call = "C_Decrypt";
        rv = h->f->C_Decrypt(s, (CK_BYTE_PTR)c->in, c->in_len, c->out, &room);
    }
    c->out_len = rv == CKR_OK ? room : 0;
    return rv;
}

static int raise_bad_rsa_ciphertext(const char *label, const char *why)
{
    return kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                     "the RSA ciphertext does not decrypt under key material '%s' (%s)", label,
                     why);
}

int kms_hsm_rsa_oaep_decrypt(kms_hsm *hsm, const char *label, bool sha256, const uint8_t *ct,
                             size_t ct_len, uint8_t *pt, size_t *pt_len)
{
    int r = -1;
    kms_hsm_scratch out = {.p = NULL};
    kms_hsm_scratch dec = {.p = NULL};
    KMS_GUARD(kms_hsm_check_label(label));
    KMS_ENSURE(ct != NULL && pt != NULL && pt_len != NULL, KMS_ERR_VALIDATION,
               "RSA-OAEP decrypt: missing buffer");
    *pt_len = 0;
    /* No RSA modulus we generate is longer; the token would refuse the length anyway. */
    if (ct_len == 0 || ct_len > MAX_RSA_LEN) {
        return raise_bad_rsa_ciphertext(label, "wrong length");
    }
    if (kms_hsm_scratch_get(&out, MAX_RSA_LEN) != 0 ||
        kms_hsm_scratch_get(&dec, MAX_RSA_LEN) != 0) {
        goto out;
    }
    oaep_ctx c = {.params = {sha256 ? CKM_SHA256 : CKM_SHA_1,
                             sha256 ? CKG_MGF1_SHA256 : CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0},
                  .in = ct,
                  .in_len = (CK_ULONG)ct_len,
                  .out = out.p,
                  .out_len = (CK_ULONG)out.n};
    CK_RV rv;
    const char *call = "C_DecryptInit";
    if (kms_hsm_with_key(hsm, label, oaep_op, &c, &rv, &call) != 0) {
        goto out;
    }
    /* Bad padding: CKR_ENCRYPTED_DATA_INVALID (PKCS#11 v2.40); SoftHSM 2.6.1 answers
     * CKR_GENERAL_ERROR from C_Decrypt for any decryption its OpenSSL refuses. */
    if (kms_hsm_ciphertext_refused(rv, call)) {
        raise_bad_rsa_ciphertext(label, kms_hsm_ckr_name(rv));
        goto out;
    }
    if (rv != CKR_OK) {
        kms_hsm_raise_rv(rv, call, label);
        goto out;
    }
    const uint8_t *plain = out.p;
    size_t n = c.out_len;
    if (c.raw) {
        /* The encoded message is as long as the modulus, which the token checked against
         * ct_len (CKR_ENCRYPTED_DATA_LEN_RANGE otherwise). */
        if (c.out_len != ct_len || kms_hsm_oaep_decode(sha256, out.p, ct_len, dec.p, &n) != 0) {
            raise_bad_rsa_ciphertext(label, "OAEP padding check failed");
            goto out;
        }
        plain = dec.p;
    }
    if (n > ct_len) {
        kms_raise(KMS_ERR_HSM,
                  "C_Decrypt with key material '%s' returned %zu bytes for %zu bytes "
                  "of ciphertext",
                  label, n, ct_len);
        goto out;
    }
    memcpy(pt, plain, n);
    *pt_len = n;
    r = 0;
out:
    kms_hsm_scratch_release(&dec);
    kms_hsm_scratch_release(&out);
    return r;
}
