/* Shared by the files of src/pki only: the algorithm and template tables (pki_algs.c), the
 * signing road through the key store (pki_sign.c) and the rows (pki_db.c). */
#ifndef KMS_PKI_PKI_INTERNAL_H
#define KMS_PKI_PKI_INTERNAL_H

#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"

/* ---- Tables (pki_algs.c) ----------------------------------------------------------------------
 */

/* AWS Private CA KeyAlgorithm -> the KMS key spec of the CA key. */
typedef struct kms_pki_key_alg {
    const char *name;     /* EC_prime256v1 */
    const char *key_spec; /* ECC_NIST_P256 */
    bool ec;
} kms_pki_key_alg;

/* AWS Private CA SigningAlgorithm -> the key store's algorithm and the X.509 AlgorithmIdentifier
 * (RFC 5758 3.2 for ECDSA: no parameters; RFC 4055 5 for RSA PKCS#1 v1.5: NULL parameters). */
typedef struct kms_pki_sig_alg {
    const char *name;     /* SHA256WITHECDSA */
    const char *kms_name; /* ECDSA_SHA_256 */
    int nid;              /* NID_ecdsa_with_SHA256 */
    bool ec;
} kms_pki_sig_alg;

/* An issuance template (AWS Private CA "Understanding certificate templates"). */
typedef struct kms_pki_template {
    const char *arn;           /* arn:aws:acm-pca:::template/EndEntityCertificate/V1 */
    const char *name;          /* EndEntityCertificate */
    const char *basic;         /* basicConstraints as openssl.cnf says it */
    const char *key_usage;     /* keyUsage, likewise (keyEncipherment added for RSA keys) */
    const char *ext_key_usage; /* NULL: none */
    bool ca;
    bool server;          /* serverAuth: the public-TLS profile's validity cap applies */
    bool api_passthrough; /* an *_APIPassthrough template: IssueCertificate's ApiPassthrough */
} kms_pki_template;

/* InvalidArgsException naming the value when it is unknown. */
int kms_pki_key_alg_find(const char *name, const kms_pki_key_alg **out)
    __attribute__((warn_unused_result));
int kms_pki_sig_alg_find(const char *name, const kms_pki_sig_alg **out)
    __attribute__((warn_unused_result));
int kms_pki_template_find(const char *arn, const kms_pki_template **out)
    __attribute__((warn_unused_result));

/* Subject {Country, Organization, CommonName, ...} -> X509_NAME (*out owned by the caller).
 * InvalidArgsException for an unknown member, a non-string or an empty subject. */
int kms_pki_subject_name(json_t *subject, X509_NAME **out) __attribute__((warn_unused_result));

/* A positive random serial of 16 octets (top bits 01: no leading zero, never negative) from the
 * key store's random source, set on x and written as hex to serial. */
int kms_pki_serial_new(const kms_keystore *ks, X509 *x, char serial[KMS_PKI_SERIAL_MAX])
    __attribute__((warn_unused_result));

/* Adds extension nid with its openssl.cnf value ("critical,CA:TRUE"). */
int kms_pki_ext_add(X509 *x, int nid, const char *value) __attribute__((warn_unused_result));
/* subjectKeyIdentifier (RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey) and
 * authorityKeyIdentifier with issuer_ski (NULL: self-signed, the subject's own). */
int kms_pki_key_ids(X509 *x, const ASN1_OCTET_STRING *issuer_ski)
    __attribute__((warn_unused_result));

/* With CRLs enabled, a CustomCname and no OmitExtension: 1 and uri receives the
 * crlDistributionPoints value ("URI:http://CNAME/crl/CA_ID.crl"); else 0 (pki_crl.c). */
int kms_pki_crl_distribution_point(const kms_pki_ca *ca, char *uri, size_t size);
/* Whether the CA answers OCSP requests (OcspConfiguration.Enabled, pki_crl.c). */
bool kms_pki_ocsp_enabled(const kms_pki_ca *ca);
/* With OCSP enabled and an OcspCustomCname: 1 and value receives the authorityInfoAccess value
 * ("OCSP;URI:http://CNAME/ocsp", pki_ocsp.h says why that path); else 0 (pki_crl.c). */
int kms_pki_ocsp_access(const kms_pki_ca *ca, char *value, size_t size);
/* An RFC 5280 5.3.1 CRLReason code from AWS's name of it (KEY_COMPROMISE): InvalidArgsException
 * for another name (pki_crl.c). */
int kms_pki_crl_reason_code(const char *name, int *code) __attribute__((warn_unused_result));

/* Whether name (len bytes, not NUL-terminated) is a host name a certificate may carry (RFC
 * 1034/1123 labels; a wildcard only as the whole left-most label above two labels at least). */
bool kms_pki_host_name_ok(const char *name, size_t len);

/* ---- Allowed name patterns (pki_names.c) -------------------------------------------------------
 * Beyond AWS: CertificateAuthorityConfiguration's optional "AllowedNamePatterns", a list of DNS
 * names ("app.example.com": that name) and wildcard patterns ("*.internal": any name below
 * internal). A CA with the list issues only for names it allows, and writes them as a critical
 * nameConstraints extension into the CA certificates it issues. */

/* AllowedNamePatterns as CreateCertificateAuthority takes it (NULL: none): an array of 1 to 50
 * patterns. InvalidArgsException otherwise. */
int kms_pki_name_patterns_check(json_t *patterns) __attribute__((warn_unused_result));
/* Every name of x (DNS names of its subjectAltName, and every common name of its subject,
 * converted to UTF-8 from whatever string type, dotted or not: verifiers fall back to it) is one
 * ca's patterns allow, and x has no IP address, e-mail address or URI in its subjectAltName;
 * InvalidArgsException naming the first that is not (or a common name that does not convert).
 * 0 for a CA without patterns. */
int kms_pki_names_allowed(const kms_pki_ca *ca, X509 *x) __attribute__((warn_unused_result));
/* For a CA certificate x issued by ca: a critical nameConstraints with a permitted dNSName
 * subtree per pattern ("*.internal" -> internal, RFC 5280 4.2.1.10), e-mail addresses and URIs
 * permitted only below the reserved "invalid" (so none real) and every IPv4 and IPv6 address
 * excluded. Nothing for a CA without patterns. A pattern N written as a constraint also allows
 * every name below N ("app.example.com" -> www.app.example.com too), which the CA itself would
 * refuse: X.509 has no exact-name constraint. And verifiers such as openssl apply dNSName
 * constraints to a subject common name only when it has a dot. */
int kms_pki_name_constraints_add(const kms_pki_ca *ca, X509 *x) __attribute__((warn_unused_result));

/* RFC 5280 4.2.1.6 subjectAltName entries a certificate may carry, from the CSR or (from_api)
 * the ApiPassthrough: DNS names that are host names (a wildcard only as the whole left-most
 * label), IP addresses of 4 or 16 bytes, and from the API only e-mail addresses and URIs of
 * printable characters. InvalidArgsException otherwise (pki_issue.c). */
int kms_pki_san_check(const GENERAL_NAMES *san, bool from_api) __attribute__((warn_unused_result));

/* ---- ApiPassthrough (pki_passthrough.c) ------------------------------------------------------ */

/* What IssueCertificate's ApiPassthrough sets, read and checked (NULL members: not given). */
typedef struct kms_pki_passthrough {
    X509_NAME *subject; /* replaces the CSR's */
    GENERAL_NAMES *san; /* replaces the CSR's */
    EXTENDED_KEY_USAGE *eku;
    CERTIFICATEPOLICIES *policies;
    STACK_OF(X509_EXTENSION) * custom;
} kms_pki_passthrough;

/* Reads api (NULL: nothing) for template t: InvalidArgsException for ApiPassthrough with a
 * template that takes none, a custom extension of a standard OID, a repeated OID, a value that
 * is no DER; ValidationException for shapes and sizes beyond AWS's (150 custom extensions, 20
 * policies, 20 extended key usages, 150 names). Cleans up *out on failure. */
int kms_pki_passthrough_read(json_t *api, const kms_pki_template *t, kms_pki_passthrough *out)
    __attribute__((warn_unused_result));
void kms_pki_passthrough_clean_up(kms_pki_passthrough *pt);
/* Adds the extended key usage (unless t sets one), the policies and the custom extensions to
 * x, last: InvalidArgsException for a custom extension x has already. */
int kms_pki_passthrough_add(const kms_pki_passthrough *pt, const kms_pki_template *t, X509 *x)
    __attribute__((warn_unused_result));

/* ---- Signing through the key store (pki_sign.c) --------------------------------------------- */

/* Signs the certificate x with the CA's HSM key and checks the result with ca_pub (NULL: x's own
 * public key, self-signed). */
int kms_pki_sign(const kms_keystore *ks, const char *ca_id, const kms_pki_key_alg *key,
                 const kms_pki_sig_alg *alg, EVP_PKEY *ca_pub, X509 *x)
    __attribute__((warn_unused_result));

/* The same for a certificate signing request (signed with the key it requests for). */
int kms_pki_sign_req(const kms_keystore *ks, const char *ca_id, const kms_pki_key_alg *key,
                     const kms_pki_sig_alg *alg, X509_REQ *req) __attribute__((warn_unused_result));
/* The same for a CRL. */
int kms_pki_sign_crl(const kms_keystore *ks, const char *ca_id, const kms_pki_key_alg *key,
                     const kms_pki_sig_alg *alg, EVP_PKEY *ca_pub, X509_CRL *crl)
    __attribute__((warn_unused_result));

/* The same for a BasicOCSPResponse: its signatureAlgorithm, producedAt and ResponderID (by the
 * key of ca_cert) set, its ResponseData signed, the result checked with ca_cert's key. */
int kms_pki_sign_ocsp(const kms_keystore *ks, const char *ca_id, const kms_pki_key_alg *key,
                      const kms_pki_sig_alg *alg, X509 *ca_cert, OCSP_BASICRESP *bs)
    __attribute__((warn_unused_result));

/* ---- Rows (pki_db.c) ----------------------------------------------------------------------------
 */

int kms_pki_db_ca_insert(const kms_keystore *ks, const kms_pki_ca *ca)
    __attribute__((warn_unused_result));
int kms_pki_db_ca_get(const kms_keystore *ks, const char *ca_id, kms_pki_ca *out)
    __attribute__((warn_unused_result));
int kms_pki_db_cert_insert(const kms_keystore *ks, const char *ca_id, const char *serial,
                           const char *template_name, const uint8_t *der, size_t der_len,
                           int64_t not_before, int64_t not_after, int64_t issued_at)
    __attribute__((warn_unused_result));

/* One issued certificate as pca_certificates holds it (borrowed during the callback). */
typedef struct kms_pki_cert_row {
    const char *serial;
    const char *template_name;
    const uint8_t *der;
    size_t der_len;
    int64_t not_before;
    int64_t not_after;
    int64_t issued_at;
    int64_t revoked_at; /* 0: not revoked */
    const char *reason;
} kms_pki_cert_row;
typedef int (*kms_pki_cert_cb)(void *arg, const kms_pki_cert_row *row);
/* Every certificate ca_id issued, in the order issued; cb nonzero stops with -1. */
int kms_pki_db_cert_list(const kms_keystore *ks, const char *ca_id, kms_pki_cert_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* A SUBORDINATE CA in PENDING_CERTIFICATE becomes ACTIVE with ca's certificate, chain, serial
 * and validity (InvalidStateException if it is in another state). */
int kms_pki_db_ca_install(const kms_keystore *ks, const kms_pki_ca *ca)
    __attribute__((warn_unused_result));
/* Marks the certificate revoked: ResourceNotFoundException if ca_id did not issue it,
 * RequestAlreadyProcessedException if it is revoked already. */
int kms_pki_db_cert_revoke(const kms_keystore *ks, const char *ca_id, const char *serial,
                           const char *reason, int64_t now) __attribute__((warn_unused_result));
/* Bumps the CA's CRL number and returns the new one. */
int kms_pki_db_crl_number_next(const kms_keystore *ks, const char *ca_id, int64_t *number)
    __attribute__((warn_unused_result));
/* Every revoked certificate of the CA: cb(arg, serial, revoked_at, reason); nonzero stops. */
typedef int (*kms_pki_revoked_cb)(void *arg, const char *serial, int64_t revoked_at,
                                  const char *reason);
int kms_pki_db_revoked_list(const kms_keystore *ks, const char *ca_id, kms_pki_revoked_cb cb,
                            void *arg) __attribute__((warn_unused_result));

#endif
