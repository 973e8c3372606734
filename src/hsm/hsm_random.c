/* The token's random generator. */
#include "hsm/hsm.h"

#include <p11-kit/pkcs11.h>

#include "hsm/hsm_internal.h"
#include "util/util.h"

/* ---- Random ---------------------------------------------------------------------------------- */

int kms_hsm_random(kms_hsm *hsm, uint8_t *buf, size_t n)
{
    KMS_ENSURE(buf != NULL || n == 0, KMS_ERR_VALIDATION, "random: missing buffer");
    if (n == 0) {
        return 0;
    }
    CK_SESSION_HANDLE s = kms_hsm_session_borrow(hsm);
    CK_RV rv = hsm->f->C_GenerateRandom(s, buf, (CK_ULONG)n);
    kms_hsm_session_return(hsm, s, rv);
    KMS_ENSURE(rv == CKR_OK, KMS_ERR_HSM, "C_GenerateRandom on token '%s' failed: %s (0x%lx)",
               hsm->token_label, kms_hsm_ckr_name(rv), (unsigned long)rv);
    return 0;
}
