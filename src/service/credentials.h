/* Client credentials (profiles of HOME/credentials, or the environment) and the HSM-backed
 * sealer that keeps IAM secrets encrypted at rest. Private to src/service. */
#ifndef KMS_SERVICE_CREDENTIALS_H
#define KMS_SERVICE_CREDENTIALS_H

#include "hsm/hsm.h"
#include "iam/iam.h"

typedef struct kms_credentials {
    char access_key_id[32];
    char *secret_access_key; /* locked memory, or NULL */
    char *session_token;     /* locked memory, or NULL */
} kms_credentials;

/* profile NULL: KMS_ACCESS_KEY_ID/KMS_SECRET_ACCESS_KEY(/KMS_SESSION_TOKEN) when set, else the
 * "default" profile when the file has one, else no credentials (access_key_id ""). A named
 * profile must exist: UnrecognizedClientException naming the file. */
int kms_credentials_load(const char *home, const char *profile, kms_credentials *c)
    __attribute__((warn_unused_result));
void kms_credentials_clean_up(kms_credentials *c);
/* Adds or replaces profile in HOME/credentials (0600, atomically). */
int kms_credentials_save(const char *home, const char *profile, const char *access_key_id,
                         const char *secret, const char *session_token)
    __attribute__((warn_unused_result));

/* The HSM key that seals IAM secrets (secret access keys, MFA seeds): AES-256 generated in the
 * HSM at init, never extractable. */
#define KMS_SEALER_LABEL "kms-internal:iam-secrets"
int kms_sealer_key_create(kms_hsm *hsm) __attribute__((warn_unused_result));
/* A sealer over that key: AES-256-GCM with a random IV, the purpose as associated data;
 * ciphertext = IV || ct || tag. */
kms_iam_sealer kms_hsm_sealer(kms_hsm *hsm);

#endif
