/* RequestCertificate and renewal (acm.h): the key is made (in the HSM, or in memory and sealed),
 * a CSR for it is signed with it (through the key store for an HSM key: the digest computed
 * here, as pki_sign.c does for CAs), and a CA of this home issues the certificate from that CSR
 * through kms_pki_issue, as IssueCertificate would. */
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>

#include <sodium.h>

#include "pki/acm_internal.h"
#include "pki/pki_internal.h"
#include "util/util.h"

/* ACM's KeyAlgorithm values this home makes (the HSM layer has no P-521 and no RSA 1024). */
typedef struct key_alg {
    const char *name;
    const char *key_spec; /* the key store's spec of an HSM key */
    const char *kms_sign; /* the key store's algorithm signing the CSR */
    int sig_nid;          /* the CSR's AlgorithmIdentifier */
    const char *curve;    /* EC: the OpenSSL group; NULL for RSA */
    unsigned bits;        /* RSA */
    const char *digest;   /* of the CSR's signature */
} key_alg;

static const key_alg key_algs[] = {
    {"RSA_2048", "RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", NID_sha256WithRSAEncryption, NULL, 2048,
     "SHA256"},
    {"RSA_3072", "RSA_3072", "RSASSA_PKCS1_V1_5_SHA_256", NID_sha256WithRSAEncryption, NULL, 3072,
     "SHA256"},
    {"RSA_4096", "RSA_4096", "RSASSA_PKCS1_V1_5_SHA_256", NID_sha256WithRSAEncryption, NULL, 4096,
     "SHA256"},
    {"EC_prime256v1", "ECC_NIST_P256", "ECDSA_SHA_256", NID_ecdsa_with_SHA256, "P-256", 0,
     "SHA256"},
    {"EC_secp384r1", "ECC_NIST_P384", "ECDSA_SHA_384", NID_ecdsa_with_SHA384, "P-384", 0, "SHA384"},
};

static const key_alg *key_alg_find(const char *name)
{
    for (size_t i = 0; i < sizeof key_algs / sizeof key_algs[0]; i++) {
        if (strcmp(key_algs[i].name, name) == 0) {
            return &key_algs[i];
        }
    }
    return NULL;
}

/* ACM's domain names: host names as certificates carry them (kms_pki_host_name_ok: RFC 1123
 * labels, a wildcard "*." only as the whole left-most label), of two labels at least. */
static bool host_name_ok(const char *name)
{
    /* "127.0.0.1" (or a mistyped "127.0.0.256") is an address, not a host name. */
    if (strspn(name, "0123456789.") == strlen(name)) {
        return false;
    }
    return kms_pki_host_name_ok(name, strlen(name)) &&
           (strchr(name, '.') != NULL || strcmp(name, "localhost") == 0);
}

/* An IPv4 or IPv6 address literal ("127.0.0.1", "::1"). */
static bool ip_literal(const char *name)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

/* Beyond ACM, which takes domain names only: our certificates are private, issued for hosts of
 * one's own network (a server's certificate names localhost, 127.0.0.1, ::1 and the machine's
 * name), so SubjectAlternativeNames may also hold single-label host names and IP address
 * literals (written as iPAddress names). */
static bool san_ok(const char *name)
{
    if (ip_literal(name)) {
        return true;
    }
    bool single_label = strchr(name, '.') == NULL && strchr(name, '*') == NULL &&
                        strspn(name, "0123456789") != strlen(name);
    return host_name_ok(name) || (single_label && kms_pki_host_name_ok(name, strlen(name)));
}

/* The names of the certificate, DomainName first, each once: a JSON array (new reference). */
static int names_of(const kms_acm_request_params *p, json_t **out)
{
    json_t *names = json_array();
    *out = NULL;
    KMS_ENSURE(names != NULL && json_array_append_new(names, json_string(p->domain_name)) == 0,
               KMS_ERR_INTERNAL, "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(p->sans, i, v)
    {
        const char *s = json_string_value(v);
        bool dup = false;
        for (size_t j = 0; s != NULL && j < json_array_size(names); j++) {
            dup = dup || strcasecmp(json_string_value(json_array_get(names, j)), s) == 0;
        }
        if (s == NULL || !san_ok(s)) {
            json_decref(names);
            return kms_raise(KMS_ERR_VALIDATION,
                             "1 validation error detected: Value '%s' at "
                             "'subjectAlternativeNames' failed to satisfy constraint: each must "
                             "be a domain name, a host name or an IP address",
                             s != NULL ? s : "(not a string)");
        }
        if (!dup && json_array_append_new(names, json_string(s)) != 0) {
            json_decref(names);
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    if (json_array_size(names) > KMS_ACM_NAMES_MAX) {
        json_decref(names);
        return kms_raise(KMS_ERR_LIMIT_EXCEEDED,
                         "A certificate has at most %d domain names (DomainName included)",
                         KMS_ACM_NAMES_MAX);
    }
    *out = names;
    return 0;
}

int kms_acm_request_check(const kms_keystore *ks, const kms_acm_request_params *p)
{
    char ca_id[37];
    json_t *names = NULL;
    const char *alg = p->key_algorithm != NULL ? p->key_algorithm : "RSA_2048";
    KMS_ENSURE(p->domain_name != NULL && host_name_ok(p->domain_name), KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'domainName' failed to satisfy "
               "constraint: Member must be a fully qualified domain name (letters, digits and "
               "hyphens, a '*.' wildcard only in front)",
               p->domain_name != NULL ? p->domain_name : "");
    KMS_ENSURE(p->sans == NULL || json_is_array(p->sans), KMS_ERR_VALIDATION,
               "SubjectAlternativeNames must be a list of domain names");
    KMS_GUARD(names_of(p, &names));
    json_decref(names);
    KMS_ENSURE(key_alg_find(alg) != NULL, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'keyAlgorithm' failed to satisfy "
               "constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, "
               "EC_prime256v1, EC_secp384r1]",
               alg);
    KMS_ENSURE(p->ca_arn != NULL, KMS_ERR_VALIDATION,
               "CertificateAuthorityArn is required: this home issues private certificates only");
    KMS_GUARD(kms_pki_arn_parse(ks, p->ca_arn, ca_id, NULL));
    return 0;
}

/* ---- The key and its CSR -------------------------------------------------------------------- */

/* A key being made: in the HSM (key_name) or in memory (priv). pub is its public half. */
typedef struct new_key {
    const key_alg *alg;
    bool hsm;
    char key_name[64];
    EVP_PKEY *priv;
    EVP_PKEY *pub;
    bool created;
    char ca_id[37];                  /* the CA that issued for it, once it did */
    char serial[KMS_PKI_SERIAL_MAX]; /* and the serial */
} new_key;

static int key_make(const kms_keystore *ks, new_key *k)
{
    if (!k->hsm) {
        k->priv = k->alg->curve != NULL ? EVP_EC_gen(k->alg->curve) : EVP_RSA_gen(k->alg->bits);
        KMS_ENSURE(k->priv != NULL, KMS_ERR_INTERNAL, "cannot generate the %s key", k->alg->name);
        KMS_ENSURE(EVP_PKEY_up_ref(k->priv) == 1, KMS_ERR_INTERNAL, "out of memory");
        k->pub = k->priv;
        return 0;
    }
    uint8_t *spki = NULL;
    size_t len = 0;
    KMS_GUARD(kms_keystore_cert_key_create(ks, k->key_name, k->alg->key_spec, &spki, &len));
    k->created = true;
    const unsigned char *p = spki;
    k->pub = d2i_PUBKEY(NULL, &p, (long)len);
    free(spki);
    KMS_ENSURE(k->pub != NULL, KMS_ERR_INTERNAL, "the HSM key's public half does not parse");
    return 0;
}

/* A request or renewal that failed after the CA issued: that certificate, never handed out and
 * whose key is gone, is revoked (SUPERSEDED), so that nothing valid is left of the attempt. */
static void revoke_orphan(const kms_keystore *ks, const new_key *k)
{
    kms_pki_ca ca;
    if (kms_pki_ca_get(ks, k->ca_id, &ca) == 0) {
        if (kms_pki_revoke(ks, &ca, k->serial, "SUPERSEDED", kms_now()) != 0) {
            kms_error_clear();
        }
        kms_pki_ca_clean_up(&ca);
    }
    kms_error_clear();
}

static void key_drop(const kms_keystore *ks, new_key *k, bool destroy)
{
    if (destroy && (k->created || k->serial[0] != '\0')) {
        kms_saved_error e;
        kms_error_save(&e);
        if (k->created && kms_keystore_cert_key_destroy(ks, k->key_name) != 0) {
            kms_error_clear();
        }
        if (k->serial[0] != '\0') {
            revoke_orphan(ks, k);
        }
        (void)kms_error_restore(&e);
    }
    EVP_PKEY_free(k->priv);
    EVP_PKEY_free(k->pub);
    k->priv = NULL;
    k->pub = NULL;
}

/* The CSR's signature by the HSM key: its AlgorithmIdentifier set (RFC 2986 4.2: outside what
 * is signed), the CertificationRequestInfo hashed here and the digest signed in the HSM. */
static int sign_req_hsm(const kms_keystore *ks, const new_key *k, X509_REQ *req)
{
    int r = -1;
    unsigned char *tbs = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    const ASN1_BIT_STRING *csig = NULL;
    const X509_ALGOR *calg = NULL;
    EVP_MD *digest = EVP_MD_fetch(NULL, k->alg->digest, NULL);
    X509_REQ_get0_signature(req, &csig, &calg);
    if (digest == NULL || calg == NULL || csig == NULL ||
        X509_ALGOR_set0((X509_ALGOR *)calg, OBJ_nid2obj(k->alg->sig_nid),
                        k->alg->curve != NULL ? V_ASN1_UNDEF : V_ASN1_NULL, NULL) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot set the CSR's signature algorithm");
        goto out;
    }
    int tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
    if (tbs_len <= 0 || EVP_Digest(tbs, (size_t)tbs_len, md, &md_len, digest, NULL) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot hash the CSR");
        goto out;
    }
    if (kms_keystore_cert_key_sign_digest(ks, k->key_name, k->alg->key_spec, k->alg->kms_sign, md,
                                          md_len, &sig, &sig_len) != 0) {
        goto out;
    }
    ASN1_BIT_STRING *bits = (ASN1_BIT_STRING *)csig;
    if (sig_len > INT32_MAX || ASN1_BIT_STRING_set(bits, sig, (int)sig_len) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot set the CSR's signature");
        goto out;
    }
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    r = 0;
out:
    free(sig);
    OPENSSL_free(tbs);
    EVP_MD_free(digest);
    return r;
}

/* A CSR (DER, *der malloc'd) for the key: CN = DomainName when it fits (64 characters), every
 * name in subjectAltName. */
static int csr_build(const kms_keystore *ks, const new_key *k, const char *domain, json_t *names,
                     uint8_t **der, size_t *der_len)
{
    int r = -1;
    X509_REQ *req = X509_REQ_new();
    X509_NAME *subject = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = NULL;
    char *value = NULL;
    unsigned char *out = NULL;
    size_t i;
    json_t *v;
    *der = NULL;
    *der_len = 0;
    json_array_foreach(names, i, v)
    {
        const char *name = json_string_value(v);
        char *more = kms_strdup_printf("%s%s%s:%s", value ? value : "", value ? "," : "",
                                       ip_literal(name) ? "IP" : "DNS", name);
        free(value);
        value = more;
        if (value == NULL) {
            break;
        }
    }
    if (req == NULL || subject == NULL || exts == NULL || value == NULL ||
        (strlen(domain) <= 64 &&
         X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *)domain, -1, -1, 0) != 1) ||
        X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, k->pub) != 1 ||
        (san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, value)) == NULL ||
        sk_X509_EXTENSION_push(exts, san) <= 0) {
        X509_EXTENSION_free(san);
        kms_raise(KMS_ERR_INTERNAL, "cannot build the certificate signing request");
        goto out;
    }
    if (X509_REQ_add_extensions(req, exts) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot build the certificate signing request");
        goto out;
    }
    if (k->hsm ? sign_req_hsm(ks, k, req) != 0 : X509_REQ_sign(req, k->priv, EVP_sha256()) <= 0) {
        if (!k->hsm) {
            kms_raise(KMS_ERR_INTERNAL, "cannot sign the certificate signing request");
        }
        goto out;
    }
    int len = i2d_X509_REQ(req, &out);
    *der = len > 0 ? malloc((size_t)len) : NULL;
    if (*der == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot encode the certificate signing request");
        goto out;
    }
    memcpy(*der, out, (size_t)len);
    *der_len = (size_t)len;
    r = 0;
out:
    OPENSSL_free(out);
    free(value);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(subject);
    X509_REQ_free(req);
    return r;
}

/* ---- Issuing ------------------------------------------------------------------------------- */

/* The CA of arn, ACTIVE (ValidationException naming its state otherwise: ACM's FailureReason
 * PCA_INVALID_STATE, refused at once here instead of a FAILED certificate). */
static int ca_active(const kms_keystore *ks, const char *arn, int64_t now, kms_pki_ca *ca)
{
    char ca_id[37];
    memset(ca, 0, sizeof *ca);
    KMS_GUARD(kms_pki_arn_parse(ks, arn, ca_id, NULL));
    KMS_GUARD(kms_pki_ca_get(ks, ca_id, ca));
    if (strcmp(ca->status, "ACTIVE") != 0 || ca->certificate == NULL || now > ca->not_after) {
        int r = kms_raise(KMS_ERR_VALIDATION,
                          "The certificate authority %s is %s: it must be ACTIVE and valid to "
                          "issue (PCA_INVALID_STATE)",
                          arn, now > ca->not_after ? "EXPIRED" : ca->status);
        kms_pki_ca_clean_up(ca);
        return r;
    }
    return 0;
}

/* The new key and certificate of c (its cert_id, generation, key_storage, key_algorithm,
 * domain_name, sans and ca_arn set): fills key_name or sealed_key, certificate, chain, serial
 * and validity. *k is the key made (destroyed by the caller on a later failure). */
static int issue(const kms_keystore *ks, kms_acm_cert *c, const kms_key_record *seal_with,
                 int64_t now, new_key *k)
{
    int r = -1;
    kms_pki_ca ca;
    json_t *names = json_loads(c->sans, 0, NULL);
    uint8_t *csr = NULL, *der = NULL;
    size_t csr_len = 0, der_len = 0;
    char serial[KMS_PKI_SERIAL_MAX], arn[KMS_ARN_MAX];
    char *ca_pem = NULL;
    kms_buf pkcs8;
    X509 *x = NULL;
    kms_buf_init(&pkcs8, true);
    memset(&ca, 0, sizeof ca);
    k->alg = key_alg_find(c->key_algorithm);
    k->hsm = strcmp(c->key_storage, "HSM") == 0;
    snprintf(k->key_name, sizeof k->key_name, "%s.%lld.%08" PRIx32, c->cert_id,
             (long long)c->generation, randombytes_random());
    if (names == NULL || k->alg == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "certificate %s has invalid names or key algorithm",
                  c->cert_id);
        goto out;
    }
    if (ca_active(ks, c->ca_arn, now, &ca) != 0 || key_make(ks, k) != 0 ||
        csr_build(ks, k, c->domain_name, names, &csr, &csr_len) != 0) {
        goto out;
    }
    /* As long as the CA allows: 365 days, 7 from a short-lived CA, and never beyond the CA. */
    int64_t days = strcmp(ca.usage_mode, "SHORT_LIVED_CERTIFICATE") == 0 ? KMS_PKI_SHORT_LIVED_DAYS
                                                                         : KMS_ACM_VALIDITY_DAYS;
    if ((ca.not_after - now) / 86400 < days) {
        days = (ca.not_after - now) / 86400;
    }
    if (days < 1) {
        kms_raise(KMS_ERR_VALIDATION,
                  "The certificate authority %s expires within a day: it can issue no "
                  "certificate",
                  c->ca_arn);
        goto out;
    }
    kms_pki_issue_params ip = {.csr = csr,
                               .csr_len = csr_len,
                               .signing_algorithm = ca.signing_algorithm,
                               .validity_type = "DAYS",
                               .validity_value = days,
                               .now = now};
    if (kms_pki_issue(ks, &ca, &ip, serial) != 0) {
        goto out;
    }
    snprintf(k->ca_id, sizeof k->ca_id, "%s", ca.ca_id);
    snprintf(k->serial, sizeof k->serial, "%s", serial);
    if (kms_pki_cert_get(ks, ca.ca_id, serial, &der, &der_len) != 0 ||
        kms_pki_pem(ca.certificate, ca.certificate_len, &ca_pem) != 0) {
        goto out;
    }
    x = d2i_X509(NULL, &(const unsigned char *){der}, (long)der_len);
    if (x == NULL || kms_acm_cert_fill(x, c) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "the issued certificate does not parse");
        goto out;
    }
    /* The chain: the issuing CA's certificate, then the certificates above it. */
    free(c->chain);
    c->chain_len = strlen(ca_pem) + ca.chain_len;
    c->chain = malloc(c->chain_len);
    if (c->chain == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(c->chain, ca_pem, strlen(ca_pem));
    if (ca.chain_len > 0) {
        memcpy(c->chain + strlen(ca_pem), ca.chain, ca.chain_len);
    }
    if (k->hsm) {
        snprintf(c->key_name, sizeof c->key_name, "%s", k->key_name);
    } else {
        kms_acm_arn(ks, c->cert_id, arn);
        free(c->sealed_key);
        c->sealed_key = NULL;
        if (kms_acm_pkcs8(k->priv, &pkcs8) != 0 ||
            kms_acm_seal(ks, seal_with, arn, pkcs8.data, pkcs8.len, &c->sealed_key,
                         &c->sealed_key_len) != 0) {
            goto out;
        }
    }
    snprintf(c->status, sizeof c->status, "ISSUED");
    c->issued_at = now;
    r = 0;
out:
    X509_free(x);
    free(ca_pem);
    free(der);
    free(csr);
    json_decref(names);
    kms_buf_clean_up(&pkcs8);
    kms_pki_ca_clean_up(&ca);
    return r;
}

int kms_acm_request(const kms_keystore *ks, const kms_acm_request_params *p, kms_acm_cert *out)
{
    int r = -1;
    json_t *names = NULL;
    char *token = NULL;
    new_key k;
    memset(&k, 0, sizeof k);
    memset(out, 0, sizeof *out);
    KMS_GUARD(kms_acm_request_check(ks, p));
    KMS_ENSURE(!p->exportable || p->seal_with != NULL, KMS_ERR_INTERNAL, "no sealing key");
    if (p->idempotency_token != NULL) {
        /* ACM: the same IdempotencyToken within an hour answers the same certificate; here of
         * the same caller and CA only (the caller was authorised for that CA, and another
         * caller's certificate is not theirs to be answered). */
        char id[37];
        token = kms_strdup_printf("%s\n%s\n%s", p->requester != NULL ? p->requester : "", p->ca_arn,
                                  p->idempotency_token);
        if (token == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        int found = kms_acm_db_token_find(ks, token, p->now - 3600, id);
        if (found < 0) {
            goto out;
        }
        if (found > 0) {
            r = kms_acm_get(ks, id, out);
            goto out;
        }
    }
    if (names_of(p, &names) != 0 || kms_uuid_new(out->cert_id) != 0) {
        goto out;
    }
    out->sans = json_dumps(names, JSON_COMPACT);
    if (out->sans == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    snprintf(out->account_id, sizeof out->account_id, "%s", ks->account_id);
    snprintf(out->domain_name, sizeof out->domain_name, "%s", p->domain_name);
    snprintf(out->key_algorithm, sizeof out->key_algorithm, "%s",
             p->key_algorithm != NULL ? p->key_algorithm : "RSA_2048");
    snprintf(out->key_storage, sizeof out->key_storage, "%s", p->exportable ? "SEALED" : "HSM");
    snprintf(out->type, sizeof out->type, "PRIVATE");
    snprintf(out->ca_arn, sizeof out->ca_arn, "%s", p->ca_arn);
    snprintf(out->renewal_eligibility, sizeof out->renewal_eligibility, "ELIGIBLE");
    out->generation = 1;
    out->created_at = p->now;
    if (issue(ks, out, p->seal_with, p->now, &k) != 0 || kms_acm_db_insert(ks, out, token) != 0) {
        goto out;
    }
    r = 0;
out:
    key_drop(ks, &k, r != 0);
    json_decref(names);
    free(token);
    if (r != 0) {
        kms_acm_cert_clean_up(out);
    }
    return r;
}

int kms_acm_renew(const kms_keystore *ks, const kms_acm_cert *c, const kms_key_record *seal_with,
                  int64_t now)
{
    int r = -1;
    kms_acm_cert n;
    new_key k;
    memset(&k, 0, sizeof k);
    memset(&n, 0, sizeof n);
    KMS_ENSURE(strcmp(c->type, "PRIVATE") == 0, KMS_ERR_VALIDATION,
               "Certificate %s is imported: only private certificates issued by ACM are renewed "
               "(reimport it instead)",
               c->cert_id);
    KMS_ENSURE(strcmp(c->status, "REVOKED") != 0, KMS_ERR_VALIDATION,
               "Certificate %s is revoked: a revoked certificate is not renewed", c->cert_id);
    KMS_ENSURE(strcmp(c->key_storage, "HSM") == 0 || seal_with != NULL, KMS_ERR_INTERNAL,
               "no sealing key");
    /* The new generation starts from the current row: same id, names, storage and CA. */
    memcpy(&n, c, sizeof n);
    n.sans = strdup(c->sans);
    n.renewal_reason = NULL;
    n.in_use_by = NULL;
    n.sealed_key = NULL;
    n.revoked_at = 0;
    n.revocation_reason[0] = '\0';
    n.certificate = NULL;
    n.chain = NULL;
    n.generation = c->generation + 1;
    if (n.sans == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    snprintf(n.prev_key_name, sizeof n.prev_key_name, "%s", c->key_name);
    snprintf(n.renewal_status, sizeof n.renewal_status, "SUCCESS");
    n.renewal_updated_at = now;
    if (issue(ks, &n, seal_with, now, &k) != 0 || kms_acm_db_replace(ks, &n) != 0) {
        goto out;
    }
    r = 0;
    /* The key two generations back is no longer served by anyone. */
    if (c->prev_key_name[0] != '\0' && kms_keystore_cert_key_destroy(ks, c->prev_key_name) != 0) {
        kms_error_clear();
    }
out:
    key_drop(ks, &k, r != 0);
    kms_acm_cert_clean_up(&n);
    return r;
}
