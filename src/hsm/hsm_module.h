/* Private to src/hsm: the process-wide registry of loaded PKCS#11 modules, token lookup by label,
 * user login, and the names of PKCS#11 return codes.
 *
 * PKCS#11 state (C_Initialize, login) belongs to the application, not to a session or a handle,
 * so several kms_hsm handles (and kms_hsm_init_token) on one module share one loaded module: it
 * is dlopen'ed and C_Initialize'd by the first user and finalised and closed by the last. */
#ifndef KMS_HSM_HSM_MODULE_H
#define KMS_HSM_HSM_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "util/error.h"

/* PKCS#11 token labels are 32 bytes, padded with spaces. */
#define KMS_HSM_LABEL_LEN 32

typedef struct kms_hsm_module kms_hsm_module;

/* Loads (or shares) the module at path. KMSHsmException with dlerror() text on failure. */
int kms_hsm_module_acquire(const char *path, kms_hsm_module **out)
    __attribute__((warn_unused_result));
/* Drops one reference; the last one finalises and unloads the module. NULL is fine. */
void kms_hsm_module_release(kms_hsm_module *m);
CK_FUNCTION_LIST *kms_hsm_module_functions(const kms_hsm_module *m);
const char *kms_hsm_module_path(const kms_hsm_module *m);

/* Pads label to the 32-byte PKCS#11 form. ValidationException if it does not fit or is empty. */
int kms_hsm_label_pad(const char *label, CK_UTF8CHAR out[KMS_HSM_LABEL_LEN])
    __attribute__((warn_unused_result));
/* Finds the slot holding an initialised token labelled `label`: *found false if none. */
int kms_hsm_module_find_token(kms_hsm_module *m, const char *label, bool *found, CK_SLOT_ID *slot)
    __attribute__((warn_unused_result));
/* C_Login(CKU_USER) on session s of slot. If the application is already logged in to the token
 * (PKCS#11 login is per application), the PIN must match the one that logged in, so that a wrong
 * PIN is refused even while another handle holds the login. */
int kms_hsm_module_login(kms_hsm_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE s, const char *label,
                         const uint8_t *pin, size_t pin_len) __attribute__((warn_unused_result));

/* "CKR_PIN_INCORRECT" for the common codes, else "CKR_(unknown)"; print the number beside it. */
const char *kms_hsm_ckr_name(CK_RV rv);

#endif
