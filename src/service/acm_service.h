/* Managed certificates for the service itself (acm_service.c): the AWS managed key that seals
 * their exportable and imported keys, and what the TLS helper (src/tls) takes from a managed
 * certificate. Each call of the TLS helper's runs through the gate and is audited like an
 * operation. Private to src/service (and src/tls, which the integrator wires to it). */
#ifndef KMS_SERVICE_ACM_SERVICE_H
#define KMS_SERVICE_ACM_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/client.h"

/* The key of alias/aws/acm of account_id (the certificate's account): a symmetric KMS key with
 * the default key policy, created with its alias on first use as AWS creates its managed keys.
 * The home holds the keys of its own account only: UnsupportedOperationException for another
 * account (whose certificates keep their keys in the HSM). */
#define KMS_ACM_SEAL_ALIAS "alias/aws/acm"
int kms_acm_service_seal_key(kms_client *client, const char *account_id, kms_key_record *out)
    __attribute__((warn_unused_result));

/* What a TLS server needs of a managed certificate. */
typedef struct kms_acm_material {
    char *chain_pem;   /* the certificate, then its chain up to the root: PEM (malloc'd) */
    bool hsm;          /* the key is in the HSM: key_name and key_spec; else pkcs8 */
    char key_name[64]; /* kms_keystore_cert_key_sign_digest's key_name */
    char key_spec[24]; /* ECC_NIST_P256, ECC_NIST_P384, RSA_2048, RSA_3072, RSA_4096 */
    uint8_t *pkcs8;    /* SEALED or IMPORTED: the PKCS#8 DER, in sodium secure memory */
    size_t pkcs8_len;
    int64_t generation; /* 1, then + 1 at each renewal or reimport */
} kms_acm_material;

/* The material of the certificate arn, authorised as acm:GetCertificate and acm:UseCertificate
 * (the operation recorded is acm:UseCertificate). *out cleared on entry and on failure. */
int kms_acm_service_material(kms_client *client, const char *arn, kms_acm_material *out)
    __attribute__((warn_unused_result));
/* Wipes the key and frees everything. */
void kms_acm_material_clean_up(kms_acm_material *m);
/* The certificate's current generation (acm:DescribeCertificate): a cheap check for a renewal. */
int kms_acm_service_generation(kms_client *client, const char *arn, int64_t *generation)
    __attribute__((warn_unused_result));
/* Adds (in_use) or removes user (any string the caller chooses: "kmsd:0.0.0.0:443") in the
 * certificate's InUseBy; recorded as acm:MarkCertificateInUse / acm:UnmarkCertificateInUse,
 * authorised as acm:UseCertificate. A certificate in use cannot be deleted. */
int kms_acm_service_in_use(kms_client *client, const char *arn, const char *user, bool in_use)
    __attribute__((warn_unused_result));

#endif
