/* libkms: a key management service in the spirit of AWS KMS, running on your own machine.
 *
 * One public surface: everything an application needs is declared here. Every function that can
 * fail returns 0 on success and -1 on failure (constructors return NULL) and leaves the reason in
 * a thread-local error: kms_last_error() gives the code, kms_last_error_message() a text for
 * humans. Error names are the AWS KMS exception names (kms_error_name()).
 *
 * Ownership: whoever allocates, frees. Buffers returned through out-parameters are owned by the
 * caller and released with the function named beside them. */
#ifndef KMS_KMS_H
#define KMS_KMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KMS_API __attribute__((visibility("default")))
#define KMS_MUST_CHECK __attribute__((warn_unused_result))
#else
#define KMS_API
#define KMS_MUST_CHECK
#endif

/* Error codes. The name of each (kms_error_name) is the AWS exception name. */
typedef enum kms_error {
    KMS_OK = 0,
    KMS_ERR_NOT_FOUND,             /* NotFoundException */
    KMS_ERR_DISABLED,              /* DisabledException */
    KMS_ERR_INVALID_STATE,         /* KMSInvalidStateException */
    KMS_ERR_INVALID_CIPHERTEXT,    /* InvalidCiphertextException */
    KMS_ERR_INCORRECT_KEY,         /* IncorrectKeyException */
    KMS_ERR_INVALID_KEY_USAGE,     /* InvalidKeyUsageException */
    KMS_ERR_VALIDATION,            /* ValidationException */
    KMS_ERR_ACCESS_DENIED,         /* AccessDeniedException */
    KMS_ERR_ALREADY_EXISTS,        /* AlreadyExistsException */
    KMS_ERR_INVALID_SIGNATURE,     /* KMSInvalidSignatureException */
    KMS_ERR_INVALID_MAC,           /* KMSInvalidMacException */
    KMS_ERR_LIMIT_EXCEEDED,        /* LimitExceededException */
    KMS_ERR_DEPENDENCY_TIMEOUT,    /* DependencyTimeoutException */
    KMS_ERR_INTERNAL,              /* KMSInternalException */
    KMS_ERR_INVALID_ALIAS_NAME,    /* InvalidAliasNameException */
    KMS_ERR_INVALID_ARN,           /* InvalidArnException */
    KMS_ERR_UNSUPPORTED_OPERATION, /* UnsupportedOperationException */
    KMS_ERR_INVALID_MARKER,        /* InvalidMarkerException */
    KMS_ERR_UNKNOWN_OPERATION,     /* UnknownOperationException */
    KMS_ERR_HOME,                  /* KMSHomeException: the KMS home is missing or broken */
    KMS_ERR_HSM,                   /* KMSHsmException: the HSM (token, PIN, module) failed */
    KMS_ERR_MALFORMED_POLICY,      /* MalformedPolicyDocumentException */
    KMS_ERR_NO_SUCH_ENTITY,        /* NoSuchEntityException (IAM) */
    KMS_ERR_ENTITY_EXISTS,         /* EntityAlreadyExistsException (IAM) */
    KMS_ERR_DELETE_CONFLICT,       /* DeleteConflictException (IAM) */
    KMS_ERR_PASSWORD_POLICY,       /* PasswordPolicyViolationException (IAM) */
    KMS_ERR_INVALID_AUTH_CODE,     /* InvalidAuthenticationCodeException: bad MFA code */
    KMS_ERR_UNRECOGNIZED_CLIENT,   /* UnrecognizedClientException: unknown/inactive access key */
    KMS_ERR_BAD_SIGNATURE,         /* InvalidSignatureException: wrong secret access key */
    KMS_ERR_EXPIRED_TOKEN,         /* ExpiredTokenException: expired or revoked session */
    KMS_ERR_INVALID_GRANT_TOKEN,   /* InvalidGrantTokenException */
    KMS_ERR_INVALID_GRANT_ID,      /* InvalidGrantIdException */
    KMS_ERR_INVALID_INPUT,         /* InvalidInputException (IAM, STS, Organizations) */
    KMS_ERR_AUDIT,                 /* KMSAuditLogException: the audit log cannot be written */
    KMS_ERR_CONFLICT,              /* ConflictException: a rotation of the key is under way */
    KMS_ERR_REPORT_NOT_PRESENT,    /* CredentialReportNotPresentException (IAM ReportNotPresent) */
    KMS_ERR_REPORT_EXPIRED,        /* CredentialReportExpiredException (IAM ReportExpired) */
    KMS_ERR_INVALID_ARGS,          /* InvalidArgsException (acm-pca) */
    KMS_ERR_MALFORMED_CSR,         /* MalformedCSRException (acm-pca) */
    KMS_ERR_RESOURCE_NOT_FOUND,    /* ResourceNotFoundException (acm-pca) */
    KMS_ERR_PCA_INVALID_STATE,     /* InvalidStateException (acm-pca) */
    KMS_ERR_REQUEST_FAILED,        /* RequestFailedException (acm-pca) */
    KMS_ERR_ALREADY_PROCESSED,     /* RequestAlreadyProcessedException (acm-pca) */
    KMS_ERR_CERTIFICATE_MISMATCH,  /* CertificateMismatchException (acm-pca) */
    KMS_ERR_MALFORMED_CERTIFICATE, /* MalformedCertificateException (acm-pca) */
    KMS_ERR_INVALID_REQUEST,       /* InvalidRequestException (acm-pca) */
    KMS_ERR_INVALID_PARAMETER,     /* InvalidParameterException (acm) */
    KMS_ERR_REQUEST_IN_PROGRESS,   /* RequestInProgressException (acm) */
    KMS_ERR_RESOURCE_IN_USE,       /* ResourceInUseException (acm) */
    KMS_ERR_INVALID_TAG,           /* InvalidTagException (acm) */
    KMS_ERR_INCOMPLETE_SIGNATURE,  /* IncompleteSignatureException: malformed SigV4 Authorization */
    KMS_ERR_THROTTLING,            /* ThrottlingException: "Rate exceeded" */
    KMS_ERR_NETWORK,               /* KMSNetworkException: a remote KMS could not be reached */
    KMS_ERR_MISSING_AUTH,          /* MissingAuthenticationTokenException: no Authorization */
    KMS_ERR_DRY_RUN,               /* DryRunOperationException: DryRun set; it would have worked */
    KMS_ERR_TAG,                   /* TagException: a tag of TagResource or CreateKey */
    KMS_ERR__COUNT
} kms_error;

KMS_API kms_error kms_last_error(void);
KMS_API const char *kms_last_error_message(void);
KMS_API const char *kms_error_name(kms_error code);
/* The error code as the wire of operation's service carries it (kms_call's operation names):
 * KMS's exception names for KMS, ACM and ACM PCA; IAM's and STS's query-protocol codes
 * ("MalformedPolicyDocument", "NoSuchEntity", "AccessDenied", ...); Organizations' own
 * exceptions. kms_error_name(code) for an operation of no such service or NULL. */
KMS_API const char *kms_error_name_for(kms_error code, const char *operation);
/* kms_error_name_for(kms_last_error(), the operation of the kms_call that raised it). */
KMS_API const char *kms_last_error_code(void);

/* ---- The KMS home ---------------------------------------------------------------------------
 * One directory holds an embedded deployment: SoftHSM token and config, SQLite metadata,
 * config.json, pin file. kms_home_default() gives $KMS_HOME, else ~/.kms (static storage). */
typedef struct kms_init_options {
    const char *region;         /* default "us-east-1" */
    const char *account_id;     /* 12 digits; default: random */
    const char *pkcs11_module;  /* default /usr/lib/softhsm/libsofthsm2.so; non-default means an
                                   existing token is used and no SoftHSM token is created */
    const char *token_label;    /* default "kms" */
    const char *pin;            /* default: random, written to HOME/pin (0600) */
    const char *hsm_script_dir; /* where hsm/create-token.sh lives; NULL: installed default */
    const char *root_password;  /* the root user's sign-in password (checked against the
                                   password policy); NULL: the root user cannot sign in */
} kms_init_options;

KMS_API const char *kms_home_default(void);
/* Creates HOME. Refuses (AlreadyExistsException) if HOME already holds a KMS home, and then
 * changes nothing. On failure removes what it created. */
KMS_API KMS_MUST_CHECK int kms_home_init(const char *home, const kms_init_options *opts);

/* ---- Clients ---------------------------------------------------------------------------------
 * A client is an open KMS home plus a caller identity. It is thread-safe: many threads may call
 * operations on one client at once. */
typedef struct kms_client kms_client;

typedef struct kms_client_options {
    const char *home;       /* NULL: kms_home_default() */
    const char *profile;    /* NULL: "default" (or KMS_PROFILE) */
    const char *user_agent; /* the audit records' userAgent; NULL: "libkms/VERSION" */
    /* The caller's identity, without a profile: KMS_ACCESS_KEY_ID / KMS_SECRET_ACCESS_KEY /
     * KMS_SESSION_TOKEN, else the profile KMS_PROFILE names, else "default". With
     * aws_environment (kmsctl sets it, as aws CLI users expect), when none of those KMS_
     * variables is set: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the
     * profile AWS_PROFILE names. An application leaves it false: its process may hold AWS_
     * credentials of the real AWS. */
    bool aws_environment;
} kms_client_options;

KMS_API KMS_MUST_CHECK kms_client *kms_client_open(const kms_client_options *opts);
KMS_API void kms_client_free(kms_client *client);

/* ---- Remote clients ---------------------------------------------------------------------------
 * A client of a KMS server (kmsd) over HTTPS instead of a home on this machine: kms_call and the
 * typed calls below work the same, signed with SigV4 by the credentials given; the envelope
 * library's KMS keyring works through it. Functions that need the home itself (validate-logs,
 * the advisor, the scheduler, the audit anchor) fail with UnsupportedOperationException.
 * Throttling and transient errors are retried in the AWS SDKs' "standard" retry mode (up to
 * max_attempts, exponential backoff with full jitter); connections are kept and reused. An
 * endpoint that cannot be reached: KMSNetworkException naming it. */
typedef struct kms_remote_options {
    const char *endpoint_url; /* "https://HOST[:PORT]" (required) */
    const char *ca_bundle;    /* PEM file of CAs to trust; NULL: the system's */
    /* Credentials: these three when access_key_id is set; else, when no profile is named,
     * KMS_ACCESS_KEY_ID (else AWS_ACCESS_KEY_ID) with its secret and session token from the
     * environment; else the profile (NULL: KMS_PROFILE, AWS_PROFILE, else "default") of
     * credentials_file (NULL: HOME/credentials of kms_home_default() if it exists, else
     * AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials). As the AWS CLI: a named profile wins
     * over the environment, the environment over the default profile. */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
    const char *credentials_file;
    const char *profile;
    const char *region;     /* the SigV4 scope's region; NULL: AWS_REGION, AWS_DEFAULT_REGION,
                               else the server's (GET /health tells it) */
    const char *user_agent; /* NULL: "libkms/VERSION" */
    int max_attempts;       /* 0: 3, as the standard retry mode */
    long timeout_ms;        /* per attempt; 0: 30000 */
} kms_remote_options;

KMS_API KMS_MUST_CHECK kms_client *kms_client_open_remote(const kms_remote_options *opts);

/* ---- The audit trail --------------------------------------------------------------------------
 * Every call (kms_call and the typed API), allowed or denied, succeeded or failed, writes one
 * CloudTrail-style record to HOME/audit before it returns; a call whose record cannot be written
 * fails with KMSAuditLogException. Reading the trail: kms_call "cloudtrail:LookupEvents" and
 * "cloudtrail:GetUsageReport" (audited like any call). */

/* validate-logs: checks the trail (record chain, segment hashes, digest signatures against the
 * HSM's digest key) and returns a JSON report (free with kms_string_free): "Valid" true/false,
 * counters, and every problem by file, sequence and line. start_time/end_time: ISO 8601 or epoch
 * seconds, NULL for open. Returns -1 only when the check could not run at all. Not itself
 * audited (it reads files, as `aws cloudtrail validate-logs` does). */
KMS_API KMS_MUST_CHECK int kms_validate_logs(kms_client *client, const char *start_time,
                                             const char *end_time, char **report_json);
/* kms_validate_logs, and the trail must hold the record an anchor kept off the machine names:
 * expect_anchor "SEQUENCE:HASH" as kms_audit_anchor_get gives it (NULL: none). Catches a rollback
 * of the whole home (trail and token together), which the HSM anchor cannot when the token is a
 * file. A malformed expect_anchor fails with ValidationException. */
KMS_API KMS_MUST_CHECK int kms_validate_logs_against(kms_client *client, const char *start_time,
                                                     const char *end_time,
                                                     const char *expect_anchor, char **report_json);
/* The trail's current anchor (free with kms_string_free): the last record written, as the HSM's
 * anchor object holds it, {"Anchor": "SEQUENCE:HASH", "Sequence": n, "Hash": "...",
 * "DigestFile": "digests/..."}: keep Anchor off the machine for kms_validate_logs_against.
 * NotFoundException before the first record. Not audited (it reads the HSM and files). */
KMS_API KMS_MUST_CHECK int kms_audit_anchor_get(kms_client *client, char **anchor_json);
/* Seals the audit trail's open segment now (free with kms_string_free): its digest written and
 * signed, the anchor moved. The trail is otherwise sealed when audit_digest_period_seconds has
 * passed (default 3600), when a segment reaches 16 MiB, and by the scheduler; a command leaves
 * its records in the open segment, covered by the chain and the HSM anchor. Gives
 * kms_audit_anchor_get's object with "Sealed": false when there was nothing to seal. Not
 * audited (it writes no record). */
KMS_API KMS_MUST_CHECK int kms_audit_seal_now(kms_client *client, char **result_json);
/* The digest signing key's public half as PEM (free with kms_string_free), read from the HSM:
 * what an outside party needs to check digests with `openssl dgst -sha256 -verify`. */
KMS_API KMS_MUST_CHECK int kms_audit_public_key(kms_client *client, char **pem);

/* ---- The advisor (kmsctl advisor) ---------------------------------------------------------------
 * Read-only checks of the home's security posture: the root user, the IAM users, the password
 * policy, the keys (rotation, public key policies, grants to deleted principals, deletions and
 * disabled keys still in use), the audit trail (validation, overdue digests, free space) and
 * the home's files (StrictModes, checked first, without opening the home: when they fail, the
 * other checks are skipped). *report_json (free with kms_string_free):
 *   {"Findings": [{"Check", "Severity": "critical"|"high"|"warning"|"info", "Resource",
 *                  "Why", "Fix": the command that clears it}...],   worst first
 *    "Summary": {"Critical": n, "High": n, "Warning": n, "Info": n, "Gating": n (warning and
 *                above), "Complete": bool, "Time": ISO}}
 * Changes nothing and writes no audit record (as kms_validate_logs); only the trail's derived
 * index may be brought up to date, as a lookup does. The caller's credentials are not used.
 * Returns -1 only when the checks could not run (the home cannot be read or opened). */
KMS_API KMS_MUST_CHECK int kms_advisor_run(const kms_client_options *opts, char **report_json);

/* ---- The scheduler ----------------------------------------------------------------------------
 * Carries out what is due now, as the service itself (no caller's credentials take part):
 * automatic rotations whose date has come (once per key, however many periods were missed),
 * rotations of key versions that counted rotation_usage_limit encryptions (config.json, default
 * 2^30), rotations a crash left half done (after 10 minutes), and deletions whose window ended
 * (material destroyed in the HSM, aliases and metadata removed). Each action writes an
 * AwsServiceEvent record (RotateKey, DeleteKey). Idempotent, and safe to run in several
 * processes at once: each action is claimed in the metadata database, so no key is rotated twice
 * for one due date. *report_json (free with kms_string_free):
 *   {"Time":ISO, "Rotations":[{"KeyId","KeyArn","Version","RotationType","Reason":"SCHEDULE"|
 *    "USAGE"|"RESUMED"}], "Deletions":[{"KeyId","KeyArn","DeletionDate"}], "AlreadyDone":n,
 *    "Errors":[{"KeyId","Action","ErrorCode","Message"}], "NextDueDate":ISO|null}
 * Returns -1 only when it could not look for work; a failed action is listed under Errors. */
KMS_API KMS_MUST_CHECK int kms_scheduler_run(kms_client *client, char **report_json);
/* When work next falls due by date (epoch seconds), 0 if nothing is scheduled. */
KMS_API KMS_MUST_CHECK int kms_scheduler_next_due(kms_client *client, int64_t *when);

/* ---- Sign-in for people -----------------------------------------------------------------------
 * A person signs in with a password (checked against its Argon2id hash) and, once an MFA device
 * is enrolled, a current code of it; the result is a session (temporary credentials, as
 * GetSessionToken gives, with aws:MultiFactorAuthPresent true after MFA) saved as a profile of
 * HOME/credentials. A wrong password, an unknown user or a bad code: AccessDeniedException /
 * InvalidAuthenticationCodeException, nothing saved. */
typedef struct kms_sign_in_options {
    const char *home;         /* NULL: kms_home_default() */
    const char *user_name;    /* NULL: the account's root user */
    const char *password;     /* required */
    const char *new_password; /* when the password must be changed (reset or expired) */
    const char *mfa_code;     /* required once the user has an MFA device */
    long duration_seconds;    /* 0: 43200 (root: 3600) */
    const char *save_profile; /* the profile to write; NULL: "signin" */
    /* 0: a save_profile that holds a long-term access key (AKIA..., no session token) is not
     * replaced (AlreadyExistsException, before the password is checked); nonzero: it is. */
    int force;
} kms_sign_in_options;

/* On success *expiration (may be NULL) receives the session's end in epoch seconds. */
KMS_API KMS_MUST_CHECK int kms_sign_in(const kms_sign_in_options *opts, int64_t *expiration);
/* Saves access key credentials as profile NAME of HOME/credentials (0600), e.g. the
 * Credentials of an AssumeRole response. session_token may be NULL. */
KMS_API KMS_MUST_CHECK int kms_profile_save(const char *home, const char *profile,
                                            const char *access_key_id, const char *secret,
                                            const char *session_token);

/* ---- Generic calls in the AWS KMS JSON shapes -------------------------------------------------
 * operation is the AWS action name ("CreateKey", "Encrypt", ...); request_json is the request
 * body exactly as the AWS KMS JSON protocol has it (binary members base64). On success
 * *response_json receives the response body (free with kms_string_free). */
KMS_API KMS_MUST_CHECK int kms_call(kms_client *client, const char *operation,
                                    const char *request_json, char **response_json);
KMS_API void kms_string_free(char *s);
/* The operations kms_call knows, NULL-terminated. */
KMS_API const char *const *kms_operations(void);

/* ---- Typed calls for the hot path -------------------------------------------------------------*/
typedef struct kms_context_entry {
    const char *key;
    const char *value;
} kms_context_entry;

typedef struct kms_encryption_context {
    const kms_context_entry *entries;
    size_t count;
} kms_encryption_context;

/* Buffers from these calls are owned by the caller: free ciphertexts with kms_buffer_free and
 * secrets (plaintexts, data keys) with kms_secret_free, which wipes them first. */
KMS_API void kms_buffer_free(uint8_t *buf);
KMS_API void kms_secret_free(uint8_t *buf, size_t len);

KMS_API KMS_MUST_CHECK int kms_encrypt(kms_client *client, const char *key_id,
                                       const uint8_t *plaintext, size_t plaintext_len,
                                       const kms_encryption_context *context, uint8_t **blob,
                                       size_t *blob_len);

/* key_id may be NULL (the blob names its key); if given and the blob names another key,
 * IncorrectKeyException. *key_arn, if not NULL, receives the ARN of the key used (free with
 * kms_string_free). */
KMS_API KMS_MUST_CHECK int kms_decrypt(kms_client *client, const char *key_id, const uint8_t *blob,
                                       size_t blob_len, const kms_encryption_context *context,
                                       uint8_t **plaintext, size_t *plaintext_len, char **key_arn);

/* A data key of key_bytes bytes (1..1024): plaintext in locked memory, wrapped by key_id.
 * plaintext may be NULL (GenerateDataKeyWithoutPlaintext). */
KMS_API KMS_MUST_CHECK int kms_generate_data_key(kms_client *client, const char *key_id,
                                                 size_t key_bytes,
                                                 const kms_encryption_context *context,
                                                 uint8_t **plaintext, uint8_t **blob,
                                                 size_t *blob_len);

/* algorithm: an AWS SigningAlgorithmSpec ("ECDSA_SHA_256", "RSASSA_PSS_SHA_256", ...);
 * message_type "RAW" or "DIGEST". */
KMS_API KMS_MUST_CHECK int kms_sign(kms_client *client, const char *key_id, const uint8_t *message,
                                    size_t message_len, const char *message_type,
                                    const char *algorithm, uint8_t **signature,
                                    size_t *signature_len);

#ifdef __cplusplus
}
#endif

#endif /* KMS_KMS_H */
