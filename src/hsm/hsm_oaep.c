/* OpenSSL 3 offers OAEP decoding without the private key only through the deprecated
 * RSA_padding_check_PKCS1_OAEP_mgf1, which is constant time (OpenSSL's fix for Manger's
 * attack). Writing our own decoder would be the greater risk; the deprecation is confined here. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "hsm/hsm_oaep.h"

#include <limits.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

int kms_hsm_oaep_decode(bool sha256, const uint8_t *em, size_t em_len, uint8_t *pt, size_t *pt_len)
{
    const EVP_MD *md = sha256 ? EVP_sha256() : EVP_sha1();
    KMS_ENSURE(em != NULL && pt != NULL && pt_len != NULL && em_len > 0 && em_len <= INT_MAX,
               KMS_ERR_VALIDATION, "OAEP decode: missing buffer");
    /* from is the whole k-byte block and num = k, as OpenSSL's own RSA decryption passes it. */
    int n = RSA_padding_check_PKCS1_OAEP_mgf1(pt, (int)em_len, em, (int)em_len, (int)em_len, NULL,
                                              0, md, md);
    if (n < 0) {
        ERR_clear_error(); /* the reason stays out of later calls' error queues */
    }
    KMS_ENSURE(n >= 0, KMS_ERR_INVALID_CIPHERTEXT,
               "the RSA ciphertext does not decrypt (OAEP padding check failed)");
    *pt_len = (size_t)n;
    return 0;
}
