/* AES-256-GCM in the HSM. */
#include "hsm/hsm.h"

#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>
#include <sodium.h>

#include "hsm/hsm_internal.h"
#include "util/util.h"

/* ---- AES-GCM --------------------------------------------------------------------------------- */

typedef struct gcm_ctx {
    CK_GCM_PARAMS params;
    const uint8_t *in;
    CK_ULONG in_len;
    uint8_t *out;
    CK_ULONG out_len; /* room in, bytes written out */
    bool encrypt;
} gcm_ctx;

static CK_RV gcm_op(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *vctx,
                    const char **call)
{
    gcm_ctx *c = vctx;
    CK_MECHANISM mech = {CKM_AES_GCM, &c->params, sizeof c->params};
    CK_ULONG room = c->out_len;
    CK_RV rv;
    if (c->encrypt) {
        *call = "C_EncryptInit";
        rv = h->f->C_EncryptInit(s, &mech, key);
        if (rv == CKR_OK) {
            *call = "C_Encrypt";
            rv = h->f->C_Encrypt(s, (CK_BYTE_PTR)c->in, c->in_len, c->out, &room);
        }
    } else {
        *call = "C_DecryptInit";
        rv = h->f->C_DecryptInit(s, &mech, key);
        if (rv == CKR_OK) {
            *call = "C_Decrypt";
            rv = h->f->C_Decrypt(s, (CK_BYTE_PTR)c->in, c->in_len, c->out, &room);
        }
    }
    c->out_len = rv == CKR_OK ? room : 0;
    return rv;
}

static void gcm_params(CK_GCM_PARAMS *p, const uint8_t *iv, const uint8_t *aad, size_t aad_len)
{
    static const uint8_t empty[1];
    memset(p, 0, sizeof *p);
    p->pIv = (CK_BYTE_PTR)iv;
    p->ulIvLen = KMS_HSM_GCM_IV_LEN;
    p->ulIvBits = KMS_HSM_GCM_IV_LEN * 8;
    p->pAAD = (CK_BYTE_PTR)(aad_len != 0 ? aad : empty);
    p->ulAADLen = (CK_ULONG)aad_len;
    p->ulTagBits = KMS_HSM_GCM_TAG_LEN * 8;
}

/* Scratch space: on the stack when small, else on the heap. Always wiped when released. */

int kms_hsm_scratch_get(kms_hsm_scratch *sc, size_t n)
{
    sc->n = n;
    sc->p = n <= sizeof sc->stack ? sc->stack : malloc(n);
    KMS_ENSURE(sc->p != NULL, KMS_ERR_INTERNAL, "out of memory (%zu bytes of scratch)", n);
    return 0;
}

void kms_hsm_scratch_release(kms_hsm_scratch *sc)
{
    if (sc->p != NULL) {
        sodium_memzero(sc->p, sc->n);
        if (sc->p != sc->stack) {
            free(sc->p);
        }
        sc->p = NULL;
    }
}

int kms_hsm_aes_gcm_encrypt(kms_hsm *hsm, const char *label, const uint8_t iv[KMS_HSM_GCM_IV_LEN],
                            const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                            uint8_t *ct, uint8_t tag[KMS_HSM_GCM_TAG_LEN])
{
    int r = -1;
    kms_hsm_scratch out = {.p = NULL};
    static const uint8_t empty[1];
    KMS_GUARD(kms_hsm_check_label(label));
    KMS_ENSURE(iv != NULL && tag != NULL && (pt != NULL || pt_len == 0) &&
                   (ct != NULL || pt_len == 0) && (aad != NULL || aad_len == 0),
               KMS_ERR_VALIDATION, "AES-GCM encrypt: missing buffer");
    KMS_ENSURE(pt_len <= SIZE_MAX / 2, KMS_ERR_VALIDATION, "AES-GCM encrypt: input too long");
    /* PKCS#11 returns ct||tag in one buffer; room for a block more than needed, so that no
     * module ever answers CKR_BUFFER_TOO_SMALL (which would leave the operation active). */
    if (kms_hsm_scratch_get(&out, pt_len + 2 * KMS_HSM_GCM_TAG_LEN) != 0) {
        goto out;
    }
    gcm_ctx c = {.in = pt_len != 0 ? pt : empty,
                 .in_len = (CK_ULONG)pt_len,
                 .out = out.p,
                 .out_len = (CK_ULONG)out.n,
                 .encrypt = true};
    gcm_params(&c.params, iv, aad, aad_len);
    CK_RV rv;
    const char *call = "C_EncryptInit";
    if (kms_hsm_with_key(hsm, label, gcm_op, &c, &rv, &call) != 0) {
        goto out;
    }
    if (rv != CKR_OK) {
        kms_hsm_raise_rv(rv, call, label);
        goto out;
    }
    if (c.out_len != pt_len + KMS_HSM_GCM_TAG_LEN) {
        kms_raise(KMS_ERR_HSM,
                  "C_Encrypt with key material '%s' returned %lu bytes for %zu "
                  "bytes of plaintext",
                  label, (unsigned long)c.out_len, pt_len);
        goto out;
    }
    if (pt_len != 0) {
        memcpy(ct, out.p, pt_len);
    }
    memcpy(tag, out.p + pt_len, KMS_HSM_GCM_TAG_LEN);
    r = 0;
out:
    kms_hsm_scratch_release(&out);
    return r;
}

int kms_hsm_aes_gcm_decrypt(kms_hsm *hsm, const char *label, const uint8_t iv[KMS_HSM_GCM_IV_LEN],
                            const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                            const uint8_t tag[KMS_HSM_GCM_TAG_LEN], uint8_t *pt)
{
    int r = -1;
    kms_hsm_scratch in = {.p = NULL};
    kms_hsm_scratch out = {.p = NULL};
    KMS_GUARD(kms_hsm_check_label(label));
    KMS_ENSURE(iv != NULL && tag != NULL && (ct != NULL || ct_len == 0) &&
                   (pt != NULL || ct_len == 0) && (aad != NULL || aad_len == 0),
               KMS_ERR_VALIDATION, "AES-GCM decrypt: missing buffer");
    KMS_ENSURE(ct_len <= SIZE_MAX / 2, KMS_ERR_VALIDATION, "AES-GCM decrypt: input too long");
    /* The plaintext goes to kms_hsm_scratch first and reaches pt only once the tag verified. */
    if (kms_hsm_scratch_get(&in, ct_len + KMS_HSM_GCM_TAG_LEN) != 0 ||
        kms_hsm_scratch_get(&out, ct_len + 2 * KMS_HSM_GCM_TAG_LEN) != 0) {
        goto out;
    }
    if (ct_len != 0) {
        memcpy(in.p, ct, ct_len);
    }
    memcpy(in.p + ct_len, tag, KMS_HSM_GCM_TAG_LEN);
    gcm_ctx c = {.in = in.p,
                 .in_len = (CK_ULONG)in.n,
                 .out = out.p,
                 .out_len = (CK_ULONG)out.n,
                 .encrypt = false};
    gcm_params(&c.params, iv, aad, aad_len);
    CK_RV rv;
    const char *call = "C_DecryptInit";
    if (kms_hsm_with_key(hsm, label, gcm_op, &c, &rv, &call) != 0) {
        goto out;
    }
    /* A tag that does not verify: SoftHSM 2.6.1 answers CKR_GENERAL_ERROR from C_Decrypt
     * (measured; its GCM decryptFinal failure is not mapped to anything more precise); PKCS#11
     * v2.40 modules answer CKR_ENCRYPTED_DATA_INVALID, some CKR_ENCRYPTED_DATA_LEN_RANGE. */
    if (kms_hsm_ciphertext_refused(rv, call)) {
        kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                  "the ciphertext does not verify under key material "
                  "'%s' (tag, IV or additional data do not match; %s)",
                  label, kms_hsm_ckr_name(rv));
        goto out;
    }
    if (rv != CKR_OK) {
        kms_hsm_raise_rv(rv, call, label);
        goto out;
    }
    if (c.out_len != ct_len) {
        kms_raise(KMS_ERR_HSM,
                  "C_Decrypt with key material '%s' returned %lu bytes for %zu "
                  "bytes of ciphertext",
                  label, (unsigned long)c.out_len, ct_len);
        goto out;
    }
    if (ct_len != 0) {
        memcpy(pt, out.p, ct_len);
    }
    r = 0;
out:
    kms_hsm_scratch_release(&out);
    kms_hsm_scratch_release(&in);
    return r;
}
