/* Private to src/hsm: public-key encodings with OpenSSL 3 (SubjectPublicKeyInfo from the
 * attributes PKCS#11 gives, DER ECDSA signatures from PKCS#11's r||s). */
#ifndef KMS_HSM_HSM_PUBKEY_H
#define KMS_HSM_HSM_PUBKEY_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* DER SubjectPublicKeyInfo (malloc'd) of the RSA key (n, e), big-endian unsigned. */
int kms_hsm_spki_rsa(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len, uint8_t **spki,
                     size_t *spki_len) __attribute__((warn_unused_result));

/* DER SubjectPublicKeyInfo (malloc'd) of the EC key on `group` ("prime256v1", "secp384r1")
 * whose CKA_EC_POINT is ec_point: a DER OCTET STRING around the uncompressed point (PKCS#11
 * v2.40 section 2.3.3), or the bare point as some modules return it. */
int kms_hsm_spki_ec(const char *group, size_t field_len, const uint8_t *ec_point,
                    size_t ec_point_len, uint8_t **spki, size_t *spki_len)
    __attribute__((warn_unused_result));

/* DER ECDSA-Sig-Value (malloc'd) from r||s, each half field_len bytes (RFC 3279 2.2.3). */
int kms_hsm_ecdsa_der(const uint8_t *rs, size_t rs_len, uint8_t **sig, size_t *sig_len)
    __attribute__((warn_unused_result));

#endif
