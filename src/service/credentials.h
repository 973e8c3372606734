/* Client credentials: profiles of HOME/credentials, or the environment. Private to
 * src/service. */
#ifndef KMS_SERVICE_CREDENTIALS_H
#define KMS_SERVICE_CREDENTIALS_H

#include <stdbool.h>

typedef struct kms_credentials {
    char access_key_id[32];
    char *secret_access_key; /* locked memory, or NULL */
    char *session_token;     /* locked memory, or NULL */
} kms_credentials;

/* profile NULL: KMS_ACCESS_KEY_ID/KMS_SECRET_ACCESS_KEY(/KMS_SESSION_TOKEN) when set, else (with
 * aws_env) the AWS_ ones when AWS_ACCESS_KEY_ID is set, else the "default" profile when the file
 * has one, else no credentials (access_key_id ""). A named profile must exist:
 * UnrecognizedClientException naming the file. */
int kms_credentials_load(const char *home, const char *profile, bool aws_env, kms_credentials *c)
    __attribute__((warn_unused_result));
/* Profile `profile` of the credentials file at path (the AWS shared credentials format, as
 * `aws configure` writes it): UnrecognizedClientException naming the file when the profile is
 * missing or lacks a key id or secret; the file's own read error when it cannot be read. */
int kms_credentials_load_path(const char *path, const char *profile, kms_credentials *c)
    __attribute__((warn_unused_result));
/* KMS_ACCESS_KEY_ID / KMS_SECRET_ACCESS_KEY / KMS_SESSION_TOKEN when KMS_ACCESS_KEY_ID is set,
 * else the AWS_ ones when AWS_ACCESS_KEY_ID is: *found says whether either was. A key id
 * without its secret: UnrecognizedClientException. */
int kms_credentials_load_env(kms_credentials *c, bool *found) __attribute__((warn_unused_result));
void kms_credentials_clean_up(kms_credentials *c);
/* Whether the environment variable is set and not empty. */
bool kms_env_set(const char *name);
/* 0 when profile may be replaced: the file or the profile does not exist, or it holds temporary
 * credentials (a session token). A profile holding a long-term access key (AKIA..., or no
 * session token) raises AlreadyExistsException naming the profile and the key id. */
int kms_credentials_check_replace(const char *home, const char *profile)
    __attribute__((warn_unused_result));
/* Adds or replaces profile in HOME/credentials (0600, atomically). */
int kms_credentials_save(const char *home, const char *profile, const char *access_key_id,
                         const char *secret, const char *session_token)
    __attribute__((warn_unused_result));

#endif
