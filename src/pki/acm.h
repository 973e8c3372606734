/* Managed certificates (AWS Certificate Manager's model): certificates the manager requests from
 * a private CA of this home (type PRIVATE) or that are imported with their key (IMPORTED). The
 * key of a requested certificate is kept one of two ways:
 *   - HSM: a non-extractable HSM pair of the key store, "acm:CERT_ID.GENERATION.RAND" (the
 *     random part: a renewal that crashed after making its key leaves no name to collide with)
 *     (keystore.h "Keys of managed certificates"), used only for handshake signatures;
 *   - SEALED: generated in memory, its PKCS#8 DER sealed under a fresh data key that a KMS key
 *     (the caller's, alias/aws/acm) wraps; ExportCertificate hands it out as an encrypted
 *     PKCS#8 PEM. Imported keys are sealed the same way.
 * Rows live in the metadata database (acm_certificates, acm_tags, acm_expiry_warnings: schema
 * version 7). It knows nothing of callers, policies or audit: src/service authorises each acm:
 * action on the certificate's ARN first. Errors are ACM's: ResourceNotFoundException,
 * InvalidArnException, ValidationException, InvalidParameterException, ResourceInUseException,
 * RequestInProgressException, LimitExceededException, InvalidTagException. Private to src/. */
#ifndef KMS_PKI_ACM_H
#define KMS_PKI_ACM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pki/pki.h"
#include "util/buf.h"

/* Requested certificates are valid this long (within the profile's 366-day cap; ACM's own
 * private certificates last 13 months, which that cap does not allow), or less: 7 days from a
 * SHORT_LIVED_CERTIFICATE CA, never beyond the CA's own NotAfter. */
#define KMS_ACM_VALIDITY_DAYS 365
/* Managed renewal: 60 days before expiry, or at two thirds of a shorter lifetime. */
#define KMS_ACM_RENEW_BEFORE_SECONDS (60 * 86400)
/* ACM quotas: names per certificate (DomainName included), tags per certificate. */
#define KMS_ACM_NAMES_MAX 10
#define KMS_ACM_TAGS_MAX 50
/* Expiry warnings from this many days out, unless config.json says otherwise. */
#define KMS_ACM_WARN_DAYS 45

typedef struct kms_acm_cert {
    char cert_id[37];
    char account_id[13];
    char domain_name[254];
    char *sans; /* JSON array text (malloc'd), DomainName first, as ACM lists them */
    char key_algorithm[24];
    char key_storage[8];    /* HSM, SEALED */
    char key_name[64];      /* HSM: the key store's name of the current key ("CERT_ID.GEN.RAND") */
    char prev_key_name[64]; /* HSM: the key before the last renewal ("" if none) */
    uint8_t *sealed_key;    /* SEALED (malloc'd) */
    size_t sealed_key_len;
    uint8_t *certificate; /* DER (malloc'd) */
    size_t certificate_len;
    uint8_t *chain; /* PEM of the certificates above it, issuer first (malloc'd, no NUL) */
    size_t chain_len;
    char serial[KMS_PKI_SERIAL_MAX];
    int64_t not_before;
    int64_t not_after;
    char status[24]; /* ISSUED, EXPIRED, REVOKED, FAILED */
    char type[16];   /* PRIVATE, IMPORTED */
    char ca_arn[KMS_ARN_MAX];
    char renewal_eligibility[16]; /* ELIGIBLE, INELIGIBLE */
    char renewal_status[24];      /* "" (never renewed), SUCCESS, FAILED */
    char *renewal_reason;         /* malloc'd, "" if none */
    int64_t renewal_updated_at;
    char *in_use_by; /* JSON array text (malloc'd) */
    int64_t generation;
    int64_t created_at;
    int64_t issued_at;
    int64_t imported_at;
    int64_t revoked_at;         /* its CA revoked the current serial: status REVOKED */
    char revocation_reason[40]; /* as acm-pca RevokeCertificate names it */
} kms_acm_cert;

void kms_acm_cert_clean_up(kms_acm_cert *c);

/* arn:aws:acm:REGION:ACCOUNT:certificate/CERT_ID */
void kms_acm_arn(const kms_keystore *ks, const char *cert_id, char out[KMS_ARN_MAX]);
/* The id of a certificate ARN of this region, of any account (a certificate of another account
 * is not found by the lookups of ks's, which are of ks->account_id): InvalidArnException. */
int kms_acm_arn_parse(const kms_keystore *ks, const char *arn, char cert_id[37])
    __attribute__((warn_unused_result));
/* The status as DescribeCertificate shows it at now (an ISSUED one past NotAfter is EXPIRED). */
const char *kms_acm_status(const kms_acm_cert *c, int64_t now);
/* When managed renewal falls due: max(NotAfter - 60 days, NotBefore + 2/3 of the lifetime). */
int64_t kms_acm_renew_at(const kms_acm_cert *c);

/* Adds what the certificate itself says to DescribeCertificate's detail: Subject, Issuer,
 * SignatureAlgorithm, KeyUsages and ExtendedKeyUsages, as ACM names them (acm_detail.c). */
int kms_acm_x509_details(const kms_acm_cert *c, json_t *detail) __attribute__((warn_unused_result));

/* ---- Requesting and renewing (acm_issue.c) ---- */

typedef struct kms_acm_request_params {
    const char *domain_name;
    json_t *sans;              /* array of strings (borrowed), NULL: DomainName only */
    const char *key_algorithm; /* NULL: RSA_2048, as ACM */
    const char *ca_arn;
    const char *idempotency_token;   /* NULL: none; else a request of the last hour with the
                                        same token, by the same requester for the same CA, is
                                        answered again, nothing new is made */
    const char *requester;           /* the caller's ARN: the token's scope within the account
                                        (another caller's token never answers its certificate) */
    bool exportable;                 /* SEALED instead of HSM */
    const kms_key_record *seal_with; /* exportable: the KMS key that wraps the data key */
    int64_t now;
} kms_acm_request_params;

/* The checks RequestCertificate makes before anything is made or written: names (host names,
 * at most KMS_ACM_NAMES_MAX), KeyAlgorithm, the CA ARN (and that the CA is ACTIVE). */
int kms_acm_request_check(const kms_keystore *ks, const kms_acm_request_params *p)
    __attribute__((warn_unused_result));
/* Makes the key, has the CA issue the certificate (kms_pki_issue) and records it; fills *out.
 * A key made in the HSM is destroyed again if anything after it fails. */
int kms_acm_request(const kms_keystore *ks, const kms_acm_request_params *p, kms_acm_cert *out)
    __attribute__((warn_unused_result));
/* Renews a PRIVATE certificate at once: a new key (same storage), a new certificate from the
 * same CA, same ARN; generation + 1. The key two generations back is destroyed (the previous
 * one stays for handshakes begun before). RenewalSummary says SUCCESS. seal_with as above. */
int kms_acm_renew(const kms_keystore *ks, const kms_acm_cert *c, const kms_key_record *seal_with,
                  int64_t now) __attribute__((warn_unused_result));

/* ---- Keys: sealing, export, import (acm_keys.c) ---- */

/* The PKCS#8 DER of a SEALED key, unsealed into *pkcs8 (a secure buffer the caller cleans up). */
int kms_acm_key_open(const kms_keystore *ks, const kms_acm_cert *c, kms_buf *pkcs8)
    __attribute__((warn_unused_result));
/* ExportCertificate's PrivateKey: the key as encrypted PKCS#8 PEM (PBES2, AES-256-CBC) under
 * passphrase, *pem (malloc'd, the caller wipes it). ValidationException for an HSM-held key. */
int kms_acm_export_key(const kms_keystore *ks, const kms_acm_cert *c, const uint8_t *passphrase,
                       size_t passphrase_len, char **pem) __attribute__((warn_unused_result));

typedef struct kms_acm_import_params {
    const uint8_t *certificate; /* PEM or DER */
    size_t certificate_len;
    const uint8_t *private_key; /* PEM or DER, unencrypted (PKCS#8, PKCS#1 or SEC1) */
    size_t private_key_len;
    const uint8_t *chain; /* PEM, may be NULL */
    size_t chain_len;
    const kms_key_record *seal_with;
    int64_t now;
} kms_acm_import_params;

/* ImportCertificate: a new certificate (existing NULL), or a reimport over an IMPORTED one
 * (same ARN, generation + 1). The key must be the certificate's (ValidationException), the
 * certificate must parse and be current; nothing is written otherwise. Fills *out. */
int kms_acm_import(const kms_keystore *ks, const kms_acm_cert *existing,
                   const kms_acm_import_params *p, kms_acm_cert *out)
    __attribute__((warn_unused_result));
/* The part of ImportCertificate that reads what the caller sent (the certificate, its key, the
 * chain; p->seal_with is not used): ValidationException for anything that does not parse, does
 * not match or is not current; on success c gets the names, key algorithm, serial, validity and
 * chain (re-encoded certificates only), and *pkcs8 (a secure buffer) the key as PKCS#8 DER. */
int kms_acm_import_parse(const kms_acm_import_params *p, kms_acm_cert *c, kms_buf *pkcs8)
    __attribute__((warn_unused_result));

/* The name a server of the TLS helper gives itself in InUseBy (tls_managed.c), unless its
 * application names it: "kms-tls-server:HOST:PID:N", the process's N-th server. */
#define KMS_ACM_IN_USE_NAME_MAX 320
void kms_acm_tls_server_name(long pid, unsigned n, char out[KMS_ACM_IN_USE_NAME_MAX]);
/* Whether name is such a server's of this host whose process is gone (killed, crashed): it uses
 * nothing any more, and DeleteCertificate drops it. */
bool kms_acm_tls_server_gone(const char *name);

/* ---- Rows (acm_db.c) ---- */

/* ResourceNotFoundException if the account has no such certificate. */
int kms_acm_get(const kms_keystore *ks, const char *cert_id, kms_acm_cert *out)
    __attribute__((warn_unused_result));
/* Every certificate of the account with an id after `after` ("" from the start), by id; cb
 * returning 1 stops, -1 fails. */
typedef int (*kms_acm_cert_cb)(void *arg, const kms_acm_cert *c);
int kms_acm_list(const kms_keystore *ks, const char *after, kms_acm_cert_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Every certificate of every account (the scheduler's renewals), by account then id; cb as
 * kms_acm_list's. Each certificate's account is c->account_id (kms_pki_keystore_as). */
int kms_acm_scheduler_list(const kms_keystore *ks, kms_acm_cert_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* ResourceInUseException while InUseBy is not empty; else the row, its tags and its HSM keys go. */
int kms_acm_delete(const kms_keystore *ks, const kms_acm_cert *c)
    __attribute__((warn_unused_result));
/* Adds (or removes) user to (from) InUseBy. ResourceNotFoundException. */
int kms_acm_in_use(const kms_keystore *ks, const char *cert_id, const char *user, bool add)
    __attribute__((warn_unused_result));
/* RenewalSummary FAILED with reason, at now. */
int kms_acm_renewal_failed(const kms_keystore *ks, const char *cert_id, const char *reason,
                           int64_t now) __attribute__((warn_unused_result));

/* Tags [{Key, Value}]: added (a key given again takes the new value), removed (a Value given
 * must match), listed. InvalidTagException, TooManyTags as LimitExceededException. */
int kms_acm_tags_check(json_t *tags) __attribute__((warn_unused_result));
int kms_acm_tags_add(const kms_keystore *ks, const char *cert_id, json_t *tags)
    __attribute__((warn_unused_result));
int kms_acm_tags_remove(const kms_keystore *ks, const char *cert_id, json_t *tags)
    __attribute__((warn_unused_result));
int kms_acm_tags_list(const kms_keystore *ks, const char *cert_id, json_t **tags)
    __attribute__((warn_unused_result));

/* Every certificate the home knows, of every account, that expires before `before` and has not
 * expired at `now` (each ARN of its own account): managed ones (cb with arn, not_after, "acm") and
 * those its CAs issued and did not revoke (cb with the acm-pca certificate ARN, "acm-pca"). */
typedef int (*kms_acm_expiring_cb)(void *arg, const char *arn, int64_t not_after,
                                   const char *source);
int kms_acm_expiring(const kms_keystore *ks, int64_t now, int64_t before, kms_acm_expiring_cb cb,
                     void *arg) __attribute__((warn_unused_result));
/* 1 if arn had no warning on `day` (days since the epoch) and now has; 0 if it had. */
int kms_acm_warning_claim(const kms_keystore *ks, const char *arn, int64_t day)
    __attribute__((warn_unused_result));

#endif
