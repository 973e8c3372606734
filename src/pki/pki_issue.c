/* IssueCertificate: a CSR (its signature checked) becomes a certificate of the CA as its
 * template says (RFC 5280 profile), signed in the HSM and recorded; GetCertificate reads it. */
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pki/pki_internal.h"

/* ---- The CSR ------------------------------------------------------------------------------------
 */

/* PEM (as AWS takes the Csr blob) or DER. MalformedCSRException unless it parses and its
 * signature verifies with its own key. */
static int csr_parse(const uint8_t *csr, size_t len, X509_REQ **out)
{
    static const char pem_head[] = "-----BEGIN";
    X509_REQ *req = NULL;
    *out = NULL;
    KMS_ENSURE(len > 0 && len <= KMS_PKI_CSR_MAX, KMS_ERR_MALFORMED_CSR,
               "the CSR is %zu bytes: it must be 1 to %d", len, KMS_PKI_CSR_MAX);
    if (len > sizeof pem_head && memmem(csr, len, pem_head, sizeof pem_head - 1) != NULL) {
        BIO *bio = BIO_new_mem_buf(csr, (int)len);
        req = bio != NULL ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    } else {
        const uint8_t *p = csr;
        req = d2i_X509_REQ(NULL, &p, (long)len);
        if (req != NULL && p != csr + len) {
            X509_REQ_free(req);
            req = NULL;
        }
    }
    KMS_ENSURE(req != NULL, KMS_ERR_MALFORMED_CSR,
               "the CSR is not a PKCS#10 certificate request in PEM or DER");
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL || X509_REQ_verify(req, pub) != 1) {
        X509_REQ_free(req);
        return kms_raise(KMS_ERR_MALFORMED_CSR,
                         "the CSR's signature does not verify with its public key");
    }
    *out = req;
    return 0;
}

/* The subject's key: EC P-256/P-384/P-521 or RSA of 2048 bits or more (the public-TLS profile). */
static int key_check(EVP_PKEY *pub, bool *rsa)
{
    *rsa = EVP_PKEY_base_id(pub) == EVP_PKEY_RSA;
    if (*rsa) {
        KMS_ENSURE(EVP_PKEY_get_bits(pub) >= 2048 && EVP_PKEY_get_bits(pub) <= 8192,
                   KMS_ERR_MALFORMED_CSR, "the CSR's RSA key has %d bits: 2048 to 8192 are allowed",
                   EVP_PKEY_get_bits(pub));
        return 0;
    }
    char group[64] = "";
    size_t n = 0;
    int explicit_params = 0;
    /* RFC 5480 2.1.1: named curves only, never explicit parameters (even of a known curve). */
    KMS_ENSURE(EVP_PKEY_get_int_param(pub, OSSL_PKEY_PARAM_EC_DECODED_FROM_EXPLICIT_PARAMS,
                                      &explicit_params) != 1 ||
                   explicit_params == 0,
               KMS_ERR_MALFORMED_CSR,
               "the CSR's EC key gives explicit curve parameters: name the "
               "curve (P-256, P-384 or P-521)");
    KMS_ENSURE(EVP_PKEY_base_id(pub) == EVP_PKEY_EC &&
                   EVP_PKEY_get_group_name(pub, group, sizeof group, &n) == 1 &&
                   (strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0 ||
                    strcmp(group, "secp521r1") == 0),
               KMS_ERR_MALFORMED_CSR,
               "the CSR's key must be RSA (2048 bits or more) or EC on P-256, P-384 or P-521");
    return 0;
}

/* Whether name (len bytes, not NUL-terminated) is a host name a certificate may carry
 * (RFC 1034/1123 preferred name syntax, as the CA/Browser Forum requires): labels of letters,
 * digits and hyphens, 1 to 63 long, not starting or ending with a hyphen, at most 253 in all; a
 * wildcard "*" only as the whole left-most label, followed by two labels at least (no "*" or
 * "*.com"). */
bool kms_pki_host_name_ok(const char *name, size_t len)
{
    size_t labels = 0, start = 0;
    if (len == 0 || len > 253) {
        return false;
    }
    bool wildcard = len >= 2 && name[0] == '*' && name[1] == '.';
    if (wildcard) {
        start = 2;
    }
    for (size_t i = start; i <= len; i++) {
        if (i < len && name[i] != '.') {
            char c = name[i];
            bool ldh = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-';
            if (!ldh) {
                return false;
            }
            continue;
        }
        size_t n = i - start;
        if (n == 0 || n > 63 || name[start] == '-' || name[i - 1] == '-') {
            return false;
        }
        labels++;
        start = i + 1;
    }
    return !wildcard || labels >= 2;
}

int kms_pki_san_check(const GENERAL_NAMES *san, bool from_api)
{
    const char *source =
        from_api ? "the ApiPassthrough's SubjectAlternativeNames" : "the CSR's subjectAltName";
    for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
        bool other = from_api && (g->type == GEN_EMAIL || g->type == GEN_URI);
        KMS_ENSURE(other || g->type == GEN_DNS || g->type == GEN_IPADD, KMS_ERR_INVALID_ARGS,
                   "%s may hold DNS names and IP addresses only", source);
        /* Each of these four is a string (IA5String or OCTET STRING). */
        int len = ASN1_STRING_length(g->d.ia5);
        const char *text = (const char *)ASN1_STRING_get0_data(g->d.ia5);
        if (other) {
            bool printable = true;
            for (int j = 0; j < len && printable; j++) {
                printable = text[j] > 0x20 && text[j] < 0x7f;
            }
            KMS_ENSURE(printable, KMS_ERR_INVALID_ARGS,
                       "%s holds an e-mail address or URI that is not printable ASCII", source);
            continue;
        }
        KMS_ENSURE(g->type != GEN_IPADD || len == 4 || len == 16, KMS_ERR_INVALID_ARGS,
                   "%s holds an IP address of neither 4 nor 16 bytes", source);
        KMS_ENSURE(g->type != GEN_DNS || kms_pki_host_name_ok(text, (size_t)len),
                   KMS_ERR_INVALID_ARGS,
                   "%s holds a DNS name that is no host name (letters, digits and hyphens in "
                   "labels of 1 to 63, at most 253 in all; a wildcard only as the whole left-most "
                   "label, above two labels at least)",
                   source);
    }
    return 0;
}

/* The CSR's requested extensions: only subjectAltName (DNS names and IP addresses) is taken
 * into the certificate; basicConstraints CA:TRUE is refused from a template that is no CA's;
 * the others are ignored, as the non-passthrough templates ignore them. *san is owned. */
static int csr_extensions(X509_REQ *req, const kms_pki_template *t, GENERAL_NAMES **san)
{
    int r = -1;
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    int n = exts != NULL ? sk_X509_EXTENSION_num(exts) : 0;
    *san = NULL;
    if (n > KMS_PKI_CSR_EXTENSIONS_MAX) {
        kms_raise(KMS_ERR_MALFORMED_CSR, "the CSR requests %d extensions: at most %d", n,
                  KMS_PKI_CSR_EXTENSIONS_MAX);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        if (nid == NID_basic_constraints && !t->ca) {
            BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(ext);
            bool ca = bc != NULL && bc->ca;
            BASIC_CONSTRAINTS_free(bc);
            if (ca) {
                kms_raise(KMS_ERR_INVALID_ARGS,
                          "the CSR asks for CA:TRUE, which template %s does not give", t->name);
                goto out;
            }
        } else if (nid == NID_subject_alt_name && *san == NULL) {
            *san = X509V3_EXT_d2i(ext);
            if (*san == NULL) {
                kms_raise(KMS_ERR_MALFORMED_CSR, "the CSR's subjectAltName does not parse");
                goto out;
            }
        }
    }
    if (*san != NULL && kms_pki_san_check(*san, false) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        GENERAL_NAMES_free(*san);
        *san = NULL;
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return r;
}

int kms_pki_csr_check(const uint8_t *csr, size_t csr_len, const char *template_arn)
{
    const kms_pki_template *t = NULL;
    X509_REQ *req = NULL;
    GENERAL_NAMES *san = NULL;
    bool rsa = false;
    KMS_GUARD(kms_pki_template_find(template_arn, &t));
    KMS_GUARD(csr_parse(csr, csr_len, &req));
    int r = key_check(X509_REQ_get0_pubkey(req), &rsa);
    if (r == 0) {
        r = csr_extensions(req, t, &san);
    }
    GENERAL_NAMES_free(san);
    X509_REQ_free(req);
    return r;
}

/* ---- Validity -----------------------------------------------------------------------------------
 */

/* notAfter from the request's Validity (AWS Private CA "Validity": DAYS, MONTHS and YEARS count
 * from now; END_DATE is YYYYMMDDHHMMSS in UTC; ABSOLUTE is seconds since the epoch). */
static int not_after_of(const kms_pki_issue_params *p, const kms_pki_template *t, int64_t *out)
{
    const char *type = p->validity_type;
    int64_t v = p->validity_value;
    struct tm tm;
    time_t now = (time_t)p->now;
    *out = 0;
    if (type == NULL) {
        KMS_ENSURE(!t->ca, KMS_ERR_INVALID_ARGS, "Validity is required for template %s", t->name);
        *out = p->now + (int64_t)KMS_PKI_DEFAULT_DAYS * 86400;
        return 0;
    }
    KMS_ENSURE(v >= 1, KMS_ERR_INVALID_ARGS, "Validity.Value must be at least 1");
    KMS_ENSURE(gmtime_r(&now, &tm) != NULL, KMS_ERR_INTERNAL, "cannot read the time");
    if (strcmp(type, "DAYS") == 0 && v <= 36500) {
        *out = p->now + v * 86400;
    } else if ((strcmp(type, "MONTHS") == 0 && v <= 1200) ||
               (strcmp(type, "YEARS") == 0 && v <= 100)) {
        tm.tm_mon += (int)(type[0] == 'M' ? v : 0);
        tm.tm_year += (int)(type[0] == 'Y' ? v : 0);
        *out = (int64_t)timegm(&tm);
    } else if (strcmp(type, "END_DATE") == 0 && v >= 19700101000000 && v <= 99991231235959) {
        memset(&tm, 0, sizeof tm);
        tm.tm_year = (int)(v / 10000000000) - 1900;
        tm.tm_mon = (int)(v / 100000000 % 100) - 1;
        tm.tm_mday = (int)(v / 1000000 % 100);
        tm.tm_hour = (int)(v / 10000 % 100);
        tm.tm_min = (int)(v / 100 % 100);
        tm.tm_sec = (int)(v % 100);
        *out = (int64_t)timegm(&tm);
    } else if (strcmp(type, "ABSOLUTE") == 0) {
        *out = v;
    } else {
        return kms_raise(KMS_ERR_INVALID_ARGS,
                         "Validity {Type %s, Value %lld} is not valid: Type is DAYS, MONTHS, "
                         "YEARS, END_DATE (YYYYMMDDHHMMSS) or ABSOLUTE (epoch seconds)",
                         type, (long long)v);
    }
    KMS_ENSURE(*out > p->now, KMS_ERR_INVALID_ARGS, "Validity ends before now");
    return 0;
}

/* The CA must be ACTIVE and valid now; the certificate's validity within the CA's (refused
 * otherwise, as AWS refuses it) and, for server certificates, within the profile's cap. */
static int validity(const kms_pki_ca *ca, const kms_pki_template *t, const kms_pki_issue_params *p,
                    int64_t *not_before, int64_t *not_after)
{
    KMS_ENSURE(strcmp(ca->status, "ACTIVE") == 0, KMS_ERR_PCA_INVALID_STATE,
               "The certificate authority %s is in the %s state and cannot issue certificates",
               ca->ca_id, ca->status);
    KMS_ENSURE(p->now < ca->not_after && ca->certificate != NULL, KMS_ERR_PCA_INVALID_STATE,
               "The certificate authority %s has expired", ca->ca_id);
    KMS_GUARD(not_after_of(p, t, not_after));
    *not_before = p->now - KMS_PKI_BACKDATE_SECONDS;
    if (*not_before < ca->not_before) {
        *not_before = ca->not_before;
    }
    KMS_ENSURE(*not_after <= ca->not_after, KMS_ERR_VALIDATION,
               "The certificate validity specified exceeds the certificate authority validity "
               "(the CA %s is valid for %lld more days)",
               ca->ca_id, (long long)((ca->not_after - p->now) / 86400));
    /* AWS Private CA: a CA in short-lived certificate mode issues for at most 7 days. */
    KMS_ENSURE(strcmp(ca->usage_mode, "SHORT_LIVED_CERTIFICATE") != 0 ||
                   *not_after - p->now <= (int64_t)KMS_PKI_SHORT_LIVED_DAYS * 86400,
               KMS_ERR_VALIDATION,
               "The certificate authority %s is in SHORT_LIVED_CERTIFICATE mode: certificates "
               "are valid for at most %d days",
               ca->ca_id, KMS_PKI_SHORT_LIVED_DAYS);
    KMS_ENSURE(!t->server || *not_after - p->now <= (int64_t)KMS_PKI_SERVER_MAX_DAYS * 86400,
               KMS_ERR_VALIDATION,
               "A server certificate (template %s) is valid for at most %d days (Mozilla's "
               "intermediate profile); %d are recommended",
               t->name, KMS_PKI_SERVER_MAX_DAYS, KMS_PKI_DEFAULT_DAYS);
    return 0;
}

/* ---- The certificate ----------------------------------------------------------------------------
 */

typedef struct issue_ctx {
    const kms_pki_ca *ca;
    const kms_pki_template *t;
    const kms_pki_key_alg *key;
    const kms_pki_sig_alg *alg;
    X509 *ca_cert;
    X509_REQ *req;
    GENERAL_NAMES *san; /* the CSR's */
    kms_pki_passthrough pt;
    bool rsa;
    int64_t not_before;
    int64_t not_after;
} issue_ctx;

static int extensions(issue_ctx *c, X509 *x)
{
    char ku[128];
    snprintf(ku, sizeof ku, "%s%s", c->t->key_usage, c->rsa && !c->t->ca ? ",keyEncipherment" : "");
    KMS_GUARD(kms_pki_ext_add(x, NID_basic_constraints, c->t->basic));
    KMS_GUARD(kms_pki_ext_add(x, NID_key_usage, ku));
    if (c->t->ext_key_usage != NULL) {
        KMS_GUARD(kms_pki_ext_add(x, NID_ext_key_usage, c->t->ext_key_usage));
    }
    KMS_GUARD(kms_pki_key_ids(x, X509_get0_subject_key_id(c->ca_cert)));
    char cdp[KMS_ARN_MAX + 64];
    if (kms_pki_crl_distribution_point(c->ca, cdp, sizeof cdp)) {
        /* RFC 5280 4.2.1.13: where the CA's CRL is published. */
        KMS_GUARD(kms_pki_ext_add(x, NID_crl_distribution_points, cdp));
    }
    char aia[KMS_ARN_MAX + 64];
    if (kms_pki_ocsp_access(c->ca, aia, sizeof aia)) {
        /* RFC 5280 4.2.2.1: where the CA's OCSP responder answers (pki_ocsp.h). */
        KMS_GUARD(kms_pki_ext_add(x, NID_info_access, aia));
    }
    /* The ApiPassthrough's names replace the CSR's (template order of operations). */
    GENERAL_NAMES *san = c->pt.san != NULL ? c->pt.san : c->san;
    if (san != NULL) {
        /* RFC 5280 4.2.1.6: critical when the subject is empty. */
        bool empty = X509_NAME_entry_count(X509_get_subject_name(x)) == 0;
        KMS_ENSURE(
            X509_add1_ext_i2d(x, NID_subject_alt_name, san, empty ? 1 : 0, X509V3_ADD_DEFAULT) == 1,
            KMS_ERR_INTERNAL, "cannot add the subject alternative names");
    }
    /* A CA certificate from a CA with AllowedNamePatterns carries them as name constraints. */
    if (c->t->ca) {
        KMS_GUARD(kms_pki_name_constraints_add(c->ca, x));
    }
    /* Last, so that a custom extension repeating one above is refused. */
    return kms_pki_passthrough_add(&c->pt, c->t, x);
}

static int build(const kms_keystore *ks, issue_ctx *c, char serial[KMS_PKI_SERIAL_MAX], X509 **out)
{
    X509 *x = X509_new();
    *out = NULL;
    KMS_ENSURE(x != NULL, KMS_ERR_INTERNAL, "out of memory");
    X509_NAME *subject = c->pt.subject != NULL ? c->pt.subject : X509_REQ_get_subject_name(c->req);
    if (X509_NAME_entry_count(subject) == 0 && c->san == NULL && c->pt.san == NULL) {
        X509_free(x);
        return kms_raise(KMS_ERR_MALFORMED_CSR, "the CSR has neither a subject nor a "
                                                "subjectAltName");
    }
    if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_subject_name(x, subject) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(c->ca_cert)) != 1 ||
        X509_set_pubkey(x, X509_REQ_get0_pubkey(c->req)) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &(time_t){c->not_before}) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &(time_t){c->not_after}) == NULL) {
        X509_free(x);
        return kms_raise(KMS_ERR_INTERNAL, "cannot build the certificate");
    }
    /* The names checked on the certificate as built, whichever source they came from. */
    if (kms_pki_serial_new(ks, x, serial) != 0 || extensions(c, x) != 0 ||
        kms_pki_names_allowed(c->ca, x) != 0 ||
        kms_pki_sign(ks, c->ca->ca_id, c->key, c->alg, X509_get0_pubkey(c->ca_cert), x) != 0) {
        X509_free(x);
        return -1;
    }
    *out = x;
    return 0;
}

static int store(const kms_keystore *ks, const issue_ctx *c, X509 *x, const char *serial,
                 int64_t now)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    KMS_ENSURE(len > 0, KMS_ERR_INTERNAL, "cannot encode the certificate");
    int r = kms_pki_db_cert_insert(ks, c->ca->ca_id, serial, c->t->name, der, (size_t)len,
                                   c->not_before, c->not_after, now);
    OPENSSL_free(der);
    return r;
}

int kms_pki_issue(const kms_keystore *ks, const kms_pki_ca *ca, const kms_pki_issue_params *p,
                  char serial[KMS_PKI_SERIAL_MAX])
{
    return kms_pki_issue_with(ks, ca, p, NULL, serial);
}

int kms_pki_issue_with(const kms_keystore *ks, const kms_pki_ca *ca, const kms_pki_issue_params *p,
                       json_t *api_passthrough, char serial[KMS_PKI_SERIAL_MAX])
{
    int r = -1;
    issue_ctx c = {.ca = ca};
    X509 *x = NULL;
    const uint8_t *der = ca->certificate;
    serial[0] = '\0';
    if (kms_pki_template_find(p->template_arn
                                  ? p->template_arn
                                  : "arn:aws:acm-pca:::template/EndEntityCertificate/V1",
                              &c.t) != 0 ||
        kms_pki_key_alg_find(ca->key_algorithm, &c.key) != 0 ||
        kms_pki_sig_alg_find(p->signing_algorithm, &c.alg) != 0) {
        goto out;
    }
    if (c.alg->ec != c.key->ec) {
        kms_raise(KMS_ERR_INVALID_ARGS, "SigningAlgorithm %s does not fit the CA's key (%s)",
                  c.alg->name, c.key->name);
        goto out;
    }
    if (validity(ca, c.t, p, &c.not_before, &c.not_after) != 0) {
        goto out;
    }
    c.ca_cert = d2i_X509(NULL, &der, (long)ca->certificate_len);
    if (c.ca_cert == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "the certificate of CA %s does not parse", ca->ca_id);
        goto out;
    }
    /* A CA whose own certificate allows no CA below it (pathLenConstraint 0) issues none. */
    if (c.t->ca && X509_get_pathlen(c.ca_cert) == 0) {
        kms_raise(KMS_ERR_INVALID_ARGS,
                  "CA %s may issue no CA certificate (its own certificate has pathlen:0); use "
                  "an end-entity template",
                  ca->ca_id);
        goto out;
    }
    if (csr_parse(p->csr, p->csr_len, &c.req) != 0 ||
        key_check(X509_REQ_get0_pubkey(c.req), &c.rsa) != 0 ||
        csr_extensions(c.req, c.t, &c.san) != 0 ||
        kms_pki_passthrough_read(api_passthrough, c.t, &c.pt) != 0) {
        goto out;
    }
    /* An end entity's subject equal to the CA's would make it look self-issued (RFC 5280
     * 6.1: only a CA's key rollover certificate is). */
    if (!c.t->ca &&
        X509_NAME_cmp(c.pt.subject != NULL ? c.pt.subject : X509_REQ_get_subject_name(c.req),
                      X509_get_subject_name(c.ca_cert)) == 0) {
        kms_raise(KMS_ERR_INVALID_ARGS, "the CSR's subject is the CA's own: give the certificate "
                                        "a subject of its own");
        goto out;
    }
    if (build(ks, &c, serial, &x) != 0 || store(ks, &c, x, serial, p->now) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        serial[0] = '\0';
    }
    X509_free(x);
    GENERAL_NAMES_free(c.san);
    kms_pki_passthrough_clean_up(&c.pt);
    X509_REQ_free(c.req);
    X509_free(c.ca_cert);
    return r;
}
