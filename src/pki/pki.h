/* The private certificate authority (AWS Private CA's model): CAs whose private keys are HSM
 * objects of the key store (keystore.h, "Certificate authority keys"), their certificates, and
 * the certificates they issue. Metadata lives in the metadata database (tables pca_*, schema
 * version 6); every signature is made through kms_keystore_ca_key_sign. OpenSSL builds and
 * parses every X.509 structure (pki_sign.c says how the key store's signature gets in).
 *
 * It knows nothing of callers, policies or audit: src/service authorises each acm-pca: action
 * on the CA's ARN first. Errors are AWS Private CA's: InvalidArgsException,
 * MalformedCSRException, ResourceNotFoundException, InvalidStateException, ValidationException.
 * Private to src/. */
#ifndef KMS_PKI_PKI_H
#define KMS_PKI_PKI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/keystore.h"

/* A certificate serial as text: lower-case hex of at most 20 octets. */
#define KMS_PKI_SERIAL_MAX 41
/* AWS Private CA quota: a CSR is at most 32 KB; a CSR with more extensions is absurd. */
#define KMS_PKI_CSR_MAX 32768
#define KMS_PKI_CSR_EXTENSIONS_MAX 32
/* A ROOT CA's self-signed certificate is valid this long. */
#define KMS_PKI_ROOT_VALIDITY_DAYS 3650
/* Server certificates: Mozilla's intermediate profile caps them at 366 days; 90 is the default
 * (and recommended) when the request gives no Validity. */
#define KMS_PKI_SERVER_MAX_DAYS 366
#define KMS_PKI_DEFAULT_DAYS 90
/* A CA of UsageMode SHORT_LIVED_CERTIFICATE issues for at most this long (AWS Private CA). */
#define KMS_PKI_SHORT_LIVED_DAYS 7
/* AWS Private CA backdates notBefore by 60 minutes for clock skew between systems. */
#define KMS_PKI_BACKDATE_SECONDS 3600

typedef struct kms_pki_ca {
    char ca_id[37];
    char account_id[13];
    char type[16];              /* ROOT, SUBORDINATE */
    char status[24];            /* ACTIVE, PENDING_CERTIFICATE, DISABLED */
    char key_algorithm[24];     /* EC_prime256v1, RSA_2048, ... */
    char signing_algorithm[24]; /* SHA256WITHECDSA, SHA256WITHRSA, ... */
    char usage_mode[32];        /* GENERAL_PURPOSE, SHORT_LIVED_CERTIFICATE */
    char *configuration;        /* CertificateAuthorityConfiguration as JSON text (malloc'd) */
    uint8_t *certificate;       /* DER (malloc'd), NULL until installed */
    size_t certificate_len;
    uint8_t *chain; /* SUBORDINATE: the certificates above it, PEM (malloc'd, not NUL-ended) */
    size_t chain_len;
    uint8_t *public_key; /* DER SubjectPublicKeyInfo of the CA key (malloc'd) */
    size_t public_key_len;
    char serial[KMS_PKI_SERIAL_MAX];
    int64_t not_before;
    int64_t not_after;
    int64_t created_at;
    int64_t last_state_change_at;
    int64_t restorable_until; /* DELETED: the end of the restore window */
    char *revocation;         /* RevocationConfiguration as JSON text (malloc'd), "" if none */
} kms_pki_ca;

void kms_pki_ca_clean_up(kms_pki_ca *ca);

/* A CA belongs to the account of the caller who created it, and every lookup, listing and ARN
 * of src/pki is of ks->account_id: *out is ks seen by a caller of account_id (the same HSM and
 * store; account_id borrowed). The service passes the caller's account, never the home's. */
void kms_pki_keystore_as(const kms_keystore *ks, const char *account_id, kms_keystore *out);

/* arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/CA_ID */
void kms_pki_ca_arn(const kms_keystore *ks, const char *ca_id, char out[KMS_ARN_MAX]);
/* CA_ARN/certificate/SERIAL */
void kms_pki_cert_arn(const kms_keystore *ks, const char *ca_id, const char *serial,
                      char out[KMS_ARN_MAX]);
/* The CA id of a CA ARN of this region, of any account (ca_id has 37 bytes: a CA of another
 * account is not found by the lookups of ks's); with cert_serial non-NULL, the ARN must be a
 * certificate's and its serial lands there. InvalidArnException. */
int kms_pki_arn_parse(const kms_keystore *ks, const char *arn, char ca_id[37],
                      char cert_serial[KMS_PKI_SERIAL_MAX]) __attribute__((warn_unused_result));

typedef struct kms_pki_ca_params {
    const char *type;       /* ROOT or SUBORDINATE */
    const char *usage_mode; /* NULL: GENERAL_PURPOSE */
    json_t *configuration;  /* {KeyAlgorithm, SigningAlgorithm, Subject{...}} (borrowed) */
    json_t *revocation;     /* RevocationConfiguration (borrowed), NULL: none */
    int64_t now;
} kms_pki_ca_params;

/* Creates a CA: its key in the HSM, then (ROOT) its self-signed certificate signed there, then
 * its row; the key is destroyed again if anything after it fails. A SUBORDINATE CA waits in
 * PENDING_CERTIFICATE for its certificate (kms_pki_ca_csr, kms_pki_ca_import). Fills *out. */
int kms_pki_ca_create(const kms_keystore *ks, const kms_pki_ca_params *p, kms_pki_ca *out)
    __attribute__((warn_unused_result));
/* ResourceNotFoundException if this account has no such CA. */
int kms_pki_ca_get(const kms_keystore *ks, const char *ca_id, kms_pki_ca *out)
    __attribute__((warn_unused_result));
/* CAs of the account by id, after `after` ("" from the start), at most limit; cb returning
 * nonzero stops with -1. *truncated: more follow. */
typedef int (*kms_pki_ca_cb)(void *arg, const kms_pki_ca *ca);
int kms_pki_ca_list(const kms_keystore *ks, const char *after, size_t limit, kms_pki_ca_cb cb,
                    void *arg, bool *truncated) __attribute__((warn_unused_result));

typedef struct kms_pki_issue_params {
    const uint8_t *csr; /* PEM (as AWS takes it) or DER */
    size_t csr_len;
    const char *signing_algorithm; /* SHA256WITHECDSA, ... */
    const char *template_arn;      /* NULL: EndEntityCertificate/V1 */
    const char *validity_type;     /* DAYS, MONTHS, YEARS, END_DATE, ABSOLUTE; NULL: default */
    int64_t validity_value;
    int64_t now;
} kms_pki_issue_params;

/* Issues a certificate from the CSR (its signature checked) as the template says and records
 * it; serial receives its serial. InvalidStateException unless the CA is ACTIVE and within its
 * validity; ValidationException for a validity beyond the CA's (refused, as AWS refuses it). */
int kms_pki_issue(const kms_keystore *ks, const kms_pki_ca *ca, const kms_pki_issue_params *p,
                  char serial[KMS_PKI_SERIAL_MAX]) __attribute__((warn_unused_result));
/* The same with IssueCertificate's ApiPassthrough {Extensions, Subject} (borrowed; NULL:
 * none), which only the *_APIPassthrough templates take (pki_passthrough.c says how). */
int kms_pki_issue_with(const kms_keystore *ks, const kms_pki_ca *ca, const kms_pki_issue_params *p,
                       json_t *api_passthrough, char serial[KMS_PKI_SERIAL_MAX])
    __attribute__((warn_unused_result));
/* The checks IssueCertificate makes of a CSR before anything is signed (its form and size, its
 * signature, its key, the extensions it asks for under the template): 0, or
 * MalformedCSRException / InvalidArgsException as kms_pki_issue raises them. */
int kms_pki_csr_check(const uint8_t *csr, size_t csr_len, const char *template_arn)
    __attribute__((warn_unused_result));
/* The certificate of that serial issued by ca_id (*der malloc'd). ResourceNotFoundException. */
int kms_pki_cert_get(const kms_keystore *ks, const char *ca_id, const char *serial, uint8_t **der,
                     size_t *der_len) __attribute__((warn_unused_result));

/* UpdateCertificateAuthority's Status: ACTIVE or DISABLED (a DISABLED CA issues nothing but
 * still revokes). InvalidStateException for a CA in another state (PENDING_CERTIFICATE). */
int kms_pki_ca_set_status(const kms_keystore *ks, const kms_pki_ca *ca, const char *status,
                          int64_t now) __attribute__((warn_unused_result));

/* RevocationConfiguration {CrlConfiguration {Enabled, ExpirationInDays, CustomCname,
 * CrlDistributionPointExtensionConfiguration {OmitExtension}}, OcspConfiguration {Enabled,
 * OcspCustomCname}}: checked (InvalidArgsException; S3 buckets are not offered: CRLs are written
 * under the home). With CRLs enabled, issued certificates name http://CustomCname/crl/CA_ID.crl
 * as their CRL distribution point (unless OmitExtension or no CustomCname) and CRLs are valid
 * ExpirationInDays (default 7). With OCSP enabled the CA answers the responder (pki_ocsp.h) and
 * issued certificates name http://OcspCustomCname/ocsp in their authorityInfoAccess. Either
 * CNAME is HOST or HOST:PORT. */
int kms_pki_revocation_check(json_t *revocation) __attribute__((warn_unused_result));
/* Whether the CA publishes CRLs (its RevocationConfiguration enables them). */
bool kms_pki_crl_enabled(const kms_pki_ca *ca);
/* UpdateCertificateAuthority's RevocationConfiguration (checked first). */
int kms_pki_ca_set_revocation(const kms_keystore *ks, const kms_pki_ca *ca, json_t *revocation,
                              int64_t now) __attribute__((warn_unused_result));

/* DeleteCertificateAuthority: the CA becomes DELETED, restorable for days (7 to 30) from now.
 * An ACTIVE CA must be disabled first (InvalidStateException), as AWS requires. Its key stays in
 * the HSM until the window ends (permanent deletion is the scheduler's, not yet written). */
int kms_pki_ca_delete(const kms_keystore *ks, const kms_pki_ca *ca, int days, int64_t now)
    __attribute__((warn_unused_result));
/* RestoreCertificateAuthority: a DELETED CA within its window becomes DISABLED again
 * (PENDING_CERTIFICATE if it never had a certificate). InvalidStateException otherwise. */
int kms_pki_ca_restore(const kms_keystore *ks, const kms_pki_ca *ca, int64_t now)
    __attribute__((warn_unused_result));

/* ---- Subordinate CAs (pki_sub.c) ---- */

/* The CA's certificate signing request (PEM, malloc'd): its configured subject and public key,
 * signed in the HSM. */
int kms_pki_ca_csr(const kms_keystore *ks, const kms_pki_ca *ca, char **pem)
    __attribute__((warn_unused_result));
/* Installs the certificate of a SUBORDINATE CA in PENDING_CERTIFICATE (PEM or DER), signed by
 * another CA of this home or an outside one: it must hold the CA's public key and subject, say
 * CA:TRUE and verify through chain (PEM: the certificates above it, up to a root). The CA
 * becomes ACTIVE. InvalidStateException, MalformedCertificateException as
 * InvalidArgsException, CertificateMismatchException as InvalidArgsException. */
int kms_pki_ca_import(const kms_keystore *ks, const kms_pki_ca *ca, const uint8_t *cert,
                      size_t cert_len, const uint8_t *chain, size_t chain_len, int64_t now)
    __attribute__((warn_unused_result));

/* ---- Revocation (pki_crl.c) ---- */

/* A CRL is valid this long (AWS Private CA's CrlConfiguration ExpirationInDays default). */
#define KMS_PKI_CRL_DAYS 7

/* Revokes the certificate of that serial (text as GetCertificate's ARN has it, or as openssl
 * prints it: hex, any case, colons allowed) with an RFC 5280 5.3.1 reason as AWS names it
 * (UNSPECIFIED, KEY_COMPROMISE, CERTIFICATE_AUTHORITY_COMPROMISE, AFFILIATION_CHANGED,
 * SUPERSEDED, CESSATION_OF_OPERATION, PRIVILEGE_WITHDRAWN, A_A_COMPROMISE).
 * ResourceNotFoundException if the CA did not issue it; RequestAlreadyProcessedException if it
 * is revoked already. */
int kms_pki_revoke(const kms_keystore *ks, const kms_pki_ca *ca, const char *serial,
                   const char *reason, int64_t now) __attribute__((warn_unused_result));
/* The CA's next CRL (RFC 5280 5: v2, the next CRL number, thisUpdate now, nextUpdate now +
 * KMS_PKI_CRL_DAYS, every revoked certificate with its reason, the authority key identifier),
 * signed in the HSM; *der (malloc'd) is its DER. */
int kms_pki_crl(const kms_keystore *ks, const kms_pki_ca *ca, int64_t now, uint8_t **der,
                size_t *der_len) __attribute__((warn_unused_result));

/* Writes the CA's next CRL (kms_pki_crl) to HOME/crl/CA_ID.crl atomically (pki_crl_publish.c),
 * under an exclusive flock on HOME/crl/CA_ID.lock held from the CRL number to the rename, so that
 * concurrent publishers (processes too) write in number order; a file whose CRL number is higher
 * is never replaced (nothing is written, 0 returned). */
int kms_pki_crl_publish(const kms_keystore *ks, const kms_pki_ca *ca, const char *home, int64_t now)
    __attribute__((warn_unused_result));
/* The CA's published CRL as HOME/crl/CA_ID.crl holds it (*der malloc'd; ca_id already checked
 * to be a CA id): NotFoundException when there is none. */
int kms_pki_crl_read(const char *home, const char *ca_id, uint8_t **der, size_t *der_len)
    __attribute__((warn_unused_result));
/* Whether the scheduler reissues the CA's CRL now: the CA publishes CRLs, is ACTIVE or DISABLED
 * with a certificate valid now, and its published CRL is missing, unreadable, or half of its
 * validity (thisUpdate to nextUpdate) has passed. *next_update: the published one's (0: none). */
int kms_pki_crl_due(const kms_pki_ca *ca, const char *home, int64_t now, bool *due,
                    int64_t *next_update) __attribute__((warn_unused_result));

/* ---- The scheduler's work (pki_db.c) ---- */

/* Every CA of every account the scheduler may have work for at now: ACTIVE or DISABLED ones
 * (their CRLs), DELETED ones whose restore window has passed, and PURGING ones (a purge that
 * did not finish). cb as kms_pki_ca_list's. */
int kms_pki_scheduler_list(const kms_keystore *ks, int64_t now, kms_pki_ca_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* The end of a DELETED CA's restore window, as AWS's permanent deletion: the CA is claimed
 * (status PURGING: no restore from then on), its HSM key destroyed, then it is PURGED. A PURGING
 * or PURGED CA is ResourceNotFoundException to every caller and no longer listed; its rows stay
 * (the certificates it issued, for the audit trail), its last CRL stays under the home. 0 done,
 * 1 nothing to do (restored, not due, or purged by another scheduler meanwhile), -1 error. */
int kms_pki_ca_purge(const kms_keystore *ks, const char *ca_id, int64_t now)
    __attribute__((warn_unused_result));

/* ---- Audit reports (pki_report.c) ---- */

/* Who asked, from the audit trail (the service reads it; NULL members: not found):
 * {"issued": {SERIAL: {"arn": CALLER_ARN, "account": ACCOUNT}}, "revoked": {SERIAL: {...}}}
 * with SERIAL as the certificate's ARN ends (lower-case hex, no leading zeros). */
/* CreateCertificateAuthorityAuditReport's content: every certificate the CA issued, with its
 * revocation, from the CA's records, in AWS's fields (awsAccountId, requestedByServicePrincipal,
 * certificateArn, serial as aa:bb:..., subject (RFC 2253), notBefore, notAfter, issuedAt,
 * revokedAt, revocationReason, templateArn; times as 2026-12-07T16:20:00+0000), then ours:
 * issuedBy and revokedBy (the callers' ARNs). format "JSON" (an array) or "CSV" (a header
 * line, then one line per certificate, RFC 4180 quoting). *out malloc'd. */
int kms_pki_audit_report(const kms_keystore *ks, const kms_pki_ca *ca, json_t *requesters,
                         const char *format, char **out, size_t *out_len)
    __attribute__((warn_unused_result));

/* DER certificate -> PEM text (malloc'd, NUL-terminated). */
int kms_pki_pem(const uint8_t *der, size_t der_len, char **pem) __attribute__((warn_unused_result));

#endif
