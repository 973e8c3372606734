/* Data objects: small values only the PIN holder may change (hsm.h "Data objects"). */
#include "hsm/hsm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "hsm/hsm_internal.h"
#include "util/util.h"

static const CK_BBOOL yes = CK_TRUE;

/* ---- Data objects ------------------------------------------------------------------------------
 */

#define DATA_APPLICATION "kms"

static int raise_data_rv(kms_hsm *h, CK_RV rv, const char *call, const char *label)
{
    return kms_raise(KMS_ERR_HSM, "%s failed for the data object '%s' in token '%s': %s (0x%lx)",
                     call, label, h->token_label, kms_hsm_ckr_name(rv), (unsigned long)rv);
}

/* The CKO_DATA objects labelled `label` (up to max). *rv: the last PKCS#11 result. */
static int find_data(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *objs,
                     CK_ULONG max, CK_ULONG *count, CK_RV *rv)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_LABEL, label, strlen(label)),
    };
    *count = 0;
    *rv = h->f->C_FindObjectsInit(s, tmpl, NATTR(tmpl));
    if (*rv != CKR_OK) {
        return raise_data_rv(h, *rv, "C_FindObjectsInit", label);
    }
    *rv = h->f->C_FindObjects(s, objs, max, count);
    CK_RV rv_final = h->f->C_FindObjectsFinal(s);
    if (*rv != CKR_OK) {
        return raise_data_rv(h, *rv, "C_FindObjects", label);
    }
    *rv = rv_final;
    if (rv_final != CKR_OK) {
        return raise_data_rv(h, rv_final, "C_FindObjectsFinal", label);
    }
    return 0;
}

/* CKA_VALUE of obj, malloc'd with a NUL after its bytes (an empty value is a valid one). */
static int read_value(kms_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, const char *label,
                      uint8_t **value, size_t *len, CK_RV *rv)
{
    CK_ATTRIBUTE a = {CKA_VALUE, NULL, 0};
    *rv = h->f->C_GetAttributeValue(s, obj, &a, 1);
    if (*rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        return raise_data_rv(h, *rv != CKR_OK ? *rv : CKR_ATTRIBUTE_SENSITIVE,
                             "C_GetAttributeValue(CKA_VALUE)", label);
    }
    uint8_t *p = malloc(a.ulValueLen + 1);
    if (p == NULL) {
        return kms_raise(KMS_ERR_INTERNAL, "out of memory reading the data object '%s'", label);
    }
    a.pValue = p;
    *rv = a.ulValueLen > 0 ? h->f->C_GetAttributeValue(s, obj, &a, 1) : CKR_OK;
    if (*rv != CKR_OK) {
        free(p);
        return raise_data_rv(h, *rv, "C_GetAttributeValue(CKA_VALUE)", label);
    }
    p[a.ulValueLen] = '\0';
    *value = p;
    *len = a.ulValueLen;
    return 0;
}

int kms_hsm_data_get(kms_hsm *hsm, const char *label, uint8_t **value, size_t *len)
{
    KMS_ENSURE(value != NULL && len != NULL, KMS_ERR_VALIDATION, "data object: missing output");
    *value = NULL;
    *len = 0;
    KMS_GUARD(kms_hsm_check_label(label));
    int r = -1;
    CK_RV rv = CKR_OK;
    CK_OBJECT_HANDLE objs[2];
    CK_ULONG n = 0;
    pthread_mutex_lock(&hsm->data_lock);
    CK_SESSION_HANDLE s = kms_hsm_session_borrow(hsm);
    if (find_data(hsm, s, label, objs, NATTR(objs), &n, &rv) != 0) {
        goto out;
    }
    if (n == 0) {
        kms_raise(KMS_ERR_NOT_FOUND, "no data object labelled '%s' in token '%s'", label,
                  hsm->token_label);
        goto out;
    }
    if (n > 1) {
        /* Which one is current cannot be told: refuse rather than guess. */
        kms_raise(KMS_ERR_HSM,
                  "token '%s' holds several data objects labelled '%s' (an update was "
                  "interrupted): remove the stale one with the token's tools",
                  hsm->token_label, label);
        goto out;
    }
    r = read_value(hsm, s, objs[0], label, value, len, &rv);
out:
    kms_hsm_session_return(hsm, s, rv);
    pthread_mutex_unlock(&hsm->data_lock);
    return r;
}

/* Whether a module's answer to C_SetAttributeValue(CKA_VALUE) means it does not change values
 * in place (as opposed to a failure worth reporting). */
static bool value_change_refused(CK_RV rv)
{
    return rv == CKR_ATTRIBUTE_READ_ONLY || rv == CKR_ACTION_PROHIBITED ||
           rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_TEMPLATE_INCONSISTENT;
}

static CK_RV create_data(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, const void *value,
                         size_t len)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR_BOOL(CKA_TOKEN, yes),
        ATTR_BOOL(CKA_PRIVATE, yes),
        ATTR_BOOL(CKA_MODIFIABLE, yes),
        ATTR(CKA_LABEL, label, strlen(label)),
        ATTR(CKA_APPLICATION, DATA_APPLICATION, sizeof DATA_APPLICATION - 1),
        ATTR(CKA_VALUE, value, len),
    };
    return h->f->C_CreateObject(s, tmpl, NATTR(tmpl), &obj);
}

static int data_set_locked(kms_hsm *h, CK_SESSION_HANDLE s, const char *label, const void *value,
                           size_t len, CK_RV *rv)
{
    CK_OBJECT_HANDLE objs[MAX_OBJECTS_PER_LABEL];
    CK_ULONG n = 0;
    KMS_GUARD(find_data(h, s, label, objs, MAX_OBJECTS_PER_LABEL, &n, rv));
    if (n == 1) {
        CK_ATTRIBUTE a = ATTR(CKA_VALUE, value, len);
        *rv = h->f->C_SetAttributeValue(s, objs[0], &a, 1);
        if (*rv == CKR_OK) {
            return 0;
        }
        if (!value_change_refused(*rv)) {
            return raise_data_rv(h, *rv, "C_SetAttributeValue(CKA_VALUE)", label);
        }
    }
    /* None yet, or the module does not change values (or an interrupted replacement left
     * several): the new object first, then the old ones go. */
    *rv = create_data(h, s, label, value, len);
    if (*rv != CKR_OK) {
        return raise_data_rv(h, *rv, "C_CreateObject", label);
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_RV one = h->f->C_DestroyObject(s, objs[i]);
        if (one != CKR_OK && one != CKR_OBJECT_HANDLE_INVALID) {
            *rv = one;
            return raise_data_rv(h, one, "C_DestroyObject (the value before)", label);
        }
    }
    return 0;
}

int kms_hsm_data_set(kms_hsm *hsm, const char *label, const uint8_t *value, size_t len)
{
    static const uint8_t empty = 0;
    KMS_GUARD(kms_hsm_check_label(label));
    KMS_ENSURE(value != NULL || len == 0, KMS_ERR_VALIDATION, "data object: missing value");
    CK_RV rv = CKR_OK;
    pthread_mutex_lock(&hsm->data_lock);
    CK_SESSION_HANDLE s = kms_hsm_session_borrow(hsm);
    int r = data_set_locked(hsm, s, label, len > 0 ? (const void *)value : &empty, len, &rv);
    kms_hsm_session_return(hsm, s, rv);
    pthread_mutex_unlock(&hsm->data_lock);
    return r;
}
