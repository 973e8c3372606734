/* IssueCertificate's ApiPassthrough (AWS Private CA API reference: ApiPassthrough, Extensions,
 * CustomExtension, GeneralName, PolicyInformation, ExtendedKeyUsage) for the *_APIPassthrough
 * templates: what the caller sets beside the CSR, read and checked before anything is signed.
 *
 * "Template order of operations" (AWS Private CA User Guide): the template's definition wins,
 * then the API passthrough, then the CSR. So an ExtendedKeyUsage or KeyUsage the template sets
 * makes the passthrough one ignored (KeyUsage always is: every template sets it; its shape is
 * still checked), while Subject and SubjectAlternativeNames given here replace the CSR's. A
 * custom extension may not carry the OID of an extension the certificate gets otherwise
 * (basicConstraints, keyUsage, key identifiers, ...: InvalidArgsException), nor repeat one
 * (RFC 5280 4.2: one instance of an extension per certificate). */
#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <limits.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki_internal.h"
#include "util/util.h"

/* AWS Private CA API reference, "Extensions": array sizes. */
#define CUSTOM_MAX 150
#define POLICIES_MAX 20
#define EKU_MAX 20
#define NAMES_MAX 150
#define OID_MAX 64
#define CUSTOM_VALUE_MAX 4096 /* base64 characters */

void kms_pki_passthrough_clean_up(kms_pki_passthrough *pt)
{
    X509_NAME_free(pt->subject);
    GENERAL_NAMES_free(pt->san);
    EXTENDED_KEY_USAGE_free(pt->eku);
    CERTIFICATEPOLICIES_free(pt->policies);
    sk_X509_EXTENSION_pop_free(pt->custom, X509_EXTENSION_free);
    memset(pt, 0, sizeof *pt);
}

/* An OID in dotted form as the API's pattern has it: ([0-2])\.([0-9]|([0-3][0-9]))(\.[0-9]+)*,
 * at most 64 characters. *out owned by the caller. */
static int oid_read(const char *text, const char *what, ASN1_OBJECT **out)
{
    *out = NULL;
    size_t n = text != NULL ? strlen(text) : 0;
    KMS_ENSURE(n >= 3 && n <= OID_MAX && strspn(text, "0123456789.") == n && text[0] <= '2' &&
                   text[1] == '.' && text[n - 1] != '.' && strstr(text, "..") == NULL,
               KMS_ERR_VALIDATION,
               "%s '%s' is not an object identifier (dotted decimal, at most %d)", what,
               text != NULL ? text : "", OID_MAX);
    *out = OBJ_txt2obj(text, 1);
    KMS_ENSURE(*out != NULL, KMS_ERR_VALIDATION, "%s '%s' is not an object identifier", what, text);
    return 0;
}

/* Only the members listed (NULL-terminated) are taken. */
static int members_check(json_t *o, const char *what, const char *const *names)
{
    const char *key;
    json_t *v;
    KMS_ENSURE(json_is_object(o), KMS_ERR_VALIDATION, "%s must be an object", what);
    json_object_foreach(o, key, v)
    {
        bool known = false;
        for (size_t i = 0; names[i] != NULL && !known; i++) {
            known = strcmp(names[i], key) == 0;
        }
        KMS_ENSURE(known, KMS_ERR_VALIDATION, "%s does not take the member '%s'", what, key);
    }
    return 0;
}

/* An array of 1 to max items, or absent (*n 0). */
static int array_of(json_t *a, const char *what, size_t max, size_t *n)
{
    *n = 0;
    if (a == NULL) {
        return 0;
    }
    KMS_ENSURE(json_is_array(a) && json_array_size(a) >= 1 && json_array_size(a) <= max,
               KMS_ERR_VALIDATION, "%s must be an array of 1 to %zu items", what, max);
    *n = json_array_size(a);
    return 0;
}

/* ---- KeyUsage and ExtendedKeyUsage ------------------------------------------------------------
 */

static int key_usage_check(json_t *ku)
{
    static const char *const flags[] = {
        "DigitalSignature", "NonRepudiation", "KeyEncipherment", "DataEncipherment", "KeyAgreement",
        "KeyCertSign",      "CRLSign",        "EncipherOnly",    "DecipherOnly",     NULL,
    };
    const char *key;
    json_t *v;
    if (ku == NULL) {
        return 0;
    }
    KMS_GUARD(members_check(ku, "ApiPassthrough.Extensions.KeyUsage", flags));
    json_object_foreach(ku, key, v)
    {
        KMS_ENSURE(json_is_boolean(v), KMS_ERR_VALIDATION, "KeyUsage.%s must be true or false",
                   key);
    }
    return 0;
}

/* ExtendedKeyUsageType -> its OID (RFC 5280 4.2.1.12, and the ones AWS names). */
static const struct {
    const char *type;
    int nid;
} eku_types[] = {
    {"SERVER_AUTH", NID_server_auth},
    {"CLIENT_AUTH", NID_client_auth},
    {"CODE_SIGNING", NID_code_sign},
    {"EMAIL_PROTECTION", NID_email_protect},
    {"TIME_STAMPING", NID_time_stamp},
    {"OCSP_SIGNING", NID_OCSP_sign},
    {"SMART_CARD_LOGIN", NID_ms_smartcard_login},
    {"DOCUMENT_SIGNING", NID_undef},         /* 1.3.6.1.4.1.311.10.3.12 */
    {"CERTIFICATE_TRANSPARENCY", NID_undef}, /* 1.3.6.1.4.1.11129.2.4.4 */
};

static int eku_item(json_t *item, ASN1_OBJECT **out)
{
    static const char *const members[] = {"ExtendedKeyUsageType",
                                          "ExtendedKeyUsageObjectIdentifier", NULL};
    *out = NULL;
    KMS_GUARD(members_check(item, "ExtendedKeyUsage item", members));
    const char *type = json_string_value(json_object_get(item, "ExtendedKeyUsageType"));
    const char *oid = json_string_value(json_object_get(item, "ExtendedKeyUsageObjectIdentifier"));
    KMS_ENSURE((type == NULL) != (oid == NULL), KMS_ERR_VALIDATION,
               "an ExtendedKeyUsage item gives ExtendedKeyUsageType or "
               "ExtendedKeyUsageObjectIdentifier, exactly one");
    if (oid != NULL) {
        return oid_read(oid, "ExtendedKeyUsageObjectIdentifier", out);
    }
    for (size_t i = 0; i < sizeof eku_types / sizeof eku_types[0]; i++) {
        if (strcmp(eku_types[i].type, type) != 0) {
            continue;
        }
        if (eku_types[i].nid != NID_undef) {
            *out = OBJ_nid2obj(eku_types[i].nid);
            return 0;
        }
        return oid_read(strcmp(type, "DOCUMENT_SIGNING") == 0 ? "1.3.6.1.4.1.311.10.3.12"
                                                              : "1.3.6.1.4.1.11129.2.4.4",
                        "ExtendedKeyUsageType", out);
    }
    return kms_raise(KMS_ERR_VALIDATION,
                     "ExtendedKeyUsageType '%s' is not one of SERVER_AUTH, CLIENT_AUTH, "
                     "CODE_SIGNING, EMAIL_PROTECTION, TIME_STAMPING, OCSP_SIGNING, "
                     "SMART_CARD_LOGIN, DOCUMENT_SIGNING, CERTIFICATE_TRANSPARENCY",
                     type);
}

static int eku_read(json_t *a, kms_pki_passthrough *pt)
{
    size_t n = 0;
    KMS_GUARD(array_of(a, "ExtendedKeyUsage", EKU_MAX, &n));
    if (n == 0) {
        return 0;
    }
    pt->eku = sk_ASN1_OBJECT_new_null();
    KMS_ENSURE(pt->eku != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        ASN1_OBJECT *o = NULL;
        KMS_GUARD(eku_item(json_array_get(a, i), &o));
        if (sk_ASN1_OBJECT_push(pt->eku, o) <= 0) {
            ASN1_OBJECT_free(o);
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    return 0;
}

/* ---- SubjectAlternativeNames ------------------------------------------------------------------
 */

/* A GeneralName of the kinds taken here: DnsName, IpAddress, Rfc822Name,
 * UniformResourceIdentifier (DirectoryName, OtherName, RegisteredId and EdiPartyName are
 * refused, not ignored). */
static int general_name(json_t *item, GENERAL_NAME **out)
{
    static const char *const kinds[] = {"DnsName", "IpAddress", "Rfc822Name",
                                        "UniformResourceIdentifier", NULL};
    static const int types[] = {GEN_DNS, GEN_IPADD, GEN_EMAIL, GEN_URI};
    *out = NULL;
    KMS_ENSURE(json_is_object(item) && json_object_size(item) == 1, KMS_ERR_VALIDATION,
               "a SubjectAlternativeNames item is an object of one member (DnsName, IpAddress, "
               "Rfc822Name or UniformResourceIdentifier)");
    for (size_t i = 0; kinds[i] != NULL; i++) {
        const char *v = json_string_value(json_object_get(item, kinds[i]));
        if (v == NULL) {
            continue;
        }
        size_t n = strlen(v);
        KMS_ENSURE(n >= 1 && n <= 253, KMS_ERR_VALIDATION, "%s must be 1 to 253 characters",
                   kinds[i]);
        if (types[i] == GEN_IPADD) {
            ASN1_OCTET_STRING *ip = a2i_IPADDRESS(v);
            KMS_ENSURE(ip != NULL, KMS_ERR_INVALID_ARGS, "IpAddress '%s' is no IP address", v);
            *out = GENERAL_NAME_new();
            if (*out == NULL) {
                ASN1_OCTET_STRING_free(ip);
                return kms_raise(KMS_ERR_INTERNAL, "out of memory");
            }
            GENERAL_NAME_set0_value(*out, GEN_IPADD, ip);
            return 0;
        }
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (s == NULL || ASN1_STRING_set(s, v, (int)n) != 1 ||
            (*out = GENERAL_NAME_new()) == NULL) {
            ASN1_IA5STRING_free(s);
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
        GENERAL_NAME_set0_value(*out, types[i], s);
        return 0;
    }
    return kms_raise(KMS_ERR_INVALID_ARGS,
                     "a SubjectAlternativeNames item names DnsName, IpAddress, Rfc822Name or "
                     "UniformResourceIdentifier (other GeneralName kinds are not supported)");
}

static int san_read(json_t *a, kms_pki_passthrough *pt)
{
    size_t n = 0;
    KMS_GUARD(array_of(a, "SubjectAlternativeNames", NAMES_MAX, &n));
    if (n == 0) {
        return 0;
    }
    pt->san = GENERAL_NAMES_new();
    KMS_ENSURE(pt->san != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        GENERAL_NAME *g = NULL;
        KMS_GUARD(general_name(json_array_get(a, i), &g));
        if (sk_GENERAL_NAME_push(pt->san, g) <= 0) {
            GENERAL_NAME_free(g);
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    return kms_pki_san_check(pt->san, true);
}

/* ---- CertificatePolicies ----------------------------------------------------------------------
 */

static bool printable_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e) {
            return false;
        }
    }
    return true;
}

/* PolicyQualifiers [{PolicyQualifierId: CPS, Qualifier: {CpsUri}}] (RFC 5280 4.2.1.4). */
static int policy_qualifiers(json_t *a, POLICYINFO *pi)
{
    size_t n = 0;
    static const char *const members[] = {"PolicyQualifierId", "Qualifier", NULL};
    KMS_GUARD(array_of(a, "PolicyQualifiers", 20, &n));
    for (size_t i = 0; i < n; i++) {
        json_t *q = json_array_get(a, i);
        KMS_GUARD(members_check(q, "PolicyQualifiers item", members));
        const char *id = json_string_value(json_object_get(q, "PolicyQualifierId"));
        const char *uri =
            json_string_value(json_object_get(json_object_get(q, "Qualifier"), "CpsUri"));
        KMS_ENSURE(id != NULL && strcmp(id, "CPS") == 0 && uri != NULL && uri[0] != '\0' &&
                       strlen(uri) <= 256,
                   KMS_ERR_VALIDATION,
                   "a PolicyQualifiers item is {\"PolicyQualifierId\": \"CPS\", \"Qualifier\": "
                   "{\"CpsUri\": URI of at most 256}}");
        /* An IA5String, and a URI (RFC 3986: printable ASCII, non-ASCII percent-encoded). */
        KMS_ENSURE(printable_ascii(uri), KMS_ERR_INVALID_ARGS,
                   "a CpsUri must be printable ASCII (a URI, non-ASCII characters "
                   "percent-encoded): it is written as an IA5String");
        if (pi->qualifiers == NULL && (pi->qualifiers = sk_POLICYQUALINFO_new_null()) == NULL) {
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
        POLICYQUALINFO *qi = POLICYQUALINFO_new();
        if (qi != NULL) {
            /* The qualifier's id first: it says how the value is freed. */
            qi->pqualid = OBJ_nid2obj(NID_id_qt_cps);
        }
        if (qi == NULL || (qi->d.cpsuri = ASN1_IA5STRING_new()) == NULL ||
            ASN1_STRING_set(qi->d.cpsuri, uri, -1) != 1 ||
            sk_POLICYQUALINFO_push(pi->qualifiers, qi) <= 0) {
            POLICYQUALINFO_free(qi);
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    return 0;
}

static int policies_read(json_t *a, kms_pki_passthrough *pt)
{
    size_t n = 0;
    static const char *const members[] = {"CertPolicyId", "PolicyQualifiers", NULL};
    KMS_GUARD(array_of(a, "CertificatePolicies", POLICIES_MAX, &n));
    if (n == 0) {
        return 0;
    }
    pt->policies = sk_POLICYINFO_new_null();
    KMS_ENSURE(pt->policies != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(a, i);
        KMS_GUARD(members_check(p, "CertificatePolicies item", members));
        POLICYINFO *pi = POLICYINFO_new();
        KMS_ENSURE(pi != NULL, KMS_ERR_INTERNAL, "out of memory");
        if (sk_POLICYINFO_push(pt->policies, pi) <= 0) {
            POLICYINFO_free(pi);
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
        ASN1_OBJECT_free(pi->policyid);
        pi->policyid = NULL;
        KMS_GUARD(oid_read(json_string_value(json_object_get(p, "CertPolicyId")), "CertPolicyId",
                           &pi->policyid));
        /* RFC 5280 4.2.1.4: "A certificate policy OID MUST NOT appear more than once". */
        for (size_t j = 0; j < i; j++) {
            KMS_ENSURE(OBJ_cmp(sk_POLICYINFO_value(pt->policies, (int)j)->policyid, pi->policyid) !=
                           0,
                       KMS_ERR_INVALID_ARGS, "CertificatePolicies names one CertPolicyId twice");
        }
        KMS_GUARD(policy_qualifiers(json_object_get(p, "PolicyQualifiers"), pi));
    }
    return 0;
}

/* ---- CustomExtensions -------------------------------------------------------------------------
 */

/* Extensions the certificate gets from its template, the CSR or the members above: never as
 * custom extensions. (nameConstraints is allowed, as AWS's own example of a subordinate CA
 * shows, unless the CA writes one itself: then it is a repeat.) */
static const int reserved_nids[] = {
    NID_basic_constraints,
    NID_key_usage,
    NID_ext_key_usage,
    NID_subject_key_identifier,
    NID_authority_key_identifier,
    NID_subject_alt_name,
    NID_certificate_policies,
    NID_crl_distribution_points,
};

/* Whether der (len bytes) is a run of complete TLVs, each with a definite length in its
 * shortest form, those of constructed values holding such runs in turn (depth at most 32), and
 * BOOLEANs in DER's form. */
static bool der_tlvs(const uint8_t *der, long len, int depth)
{
    const uint8_t *p = der;
    const uint8_t *end = der + len;
    while (p < end) {
        const uint8_t *start = p;
        long n = 0;
        int tag = 0, cls = 0;
        int ret = ASN1_get_object(&p, &n, &tag, &cls, (long)(end - start));
        if ((ret & 0x80) != 0 || ret == 0x21 || n > end - p) {
            return false;
        }
        /* The header as DER writes it: tag and length in their shortest forms. */
        if (ASN1_object_size(ret & V_ASN1_CONSTRUCTED ? 1 : 0, n, tag) - n != p - start) {
            return false;
        }
        if ((ret & V_ASN1_CONSTRUCTED) != 0 && (depth >= 32 || !der_tlvs(p, n, depth + 1))) {
            return false;
        }
        /* A BOOLEAN is one octet, TRUE all ones (X.690 11.1). */
        if (cls == V_ASN1_UNIVERSAL && tag == V_ASN1_BOOLEAN &&
            (n != 1 || (p[0] != 0x00 && p[0] != 0xff))) {
            return false;
        }
        p += n;
    }
    return true;
}

/* 0 when der (len bytes) is exactly one DER value: it decodes (d2i_ASN1_TYPE) to a value that
 * encodes back (i2d) to the same bytes, and every TLV inside is complete, in DER's form. */
static int der_value(const uint8_t *der, size_t len)
{
    int r = -1;
    const uint8_t *p = der;
    unsigned char *back = NULL;
    ASN1_TYPE *t = len <= LONG_MAX ? d2i_ASN1_TYPE(NULL, &p, (long)len) : NULL;
    int n = t != NULL && p == der + len ? i2d_ASN1_TYPE(t, &back) : -1;
    if (n >= 0 && (size_t)n == len && memcmp(back, der, len) == 0 && der_tlvs(der, (long)len, 0)) {
        r = 0;
    }
    OPENSSL_free(back);
    ASN1_TYPE_free(t);
    return r;
}

static int custom_one(json_t *item, X509_EXTENSION **out)
{
    static const char *const members[] = {"ObjectIdentifier", "Value", "Critical", NULL};
    int r = -1;
    ASN1_OBJECT *oid = NULL;
    ASN1_OCTET_STRING *os = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    *out = NULL;
    if (members_check(item, "CustomExtensions item", members) != 0) {
        goto out;
    }
    const char *value = json_string_value(json_object_get(item, "Value"));
    json_t *critical = json_object_get(item, "Critical");
    if (oid_read(json_string_value(json_object_get(item, "ObjectIdentifier")),
                 "CustomExtensions ObjectIdentifier", &oid) != 0) {
        goto out;
    }
    if (value == NULL || strlen(value) < 1 || strlen(value) > CUSTOM_VALUE_MAX ||
        (critical != NULL && !json_is_boolean(critical))) {
        kms_raise(KMS_ERR_VALIDATION,
                  "a CustomExtensions item is {ObjectIdentifier, Value (base64 of 1 to %d), "
                  "Critical (true or false)}",
                  CUSTOM_VALUE_MAX);
        goto out;
    }
    int nid = OBJ_obj2nid(oid);
    for (size_t i = 0; i < sizeof reserved_nids / sizeof reserved_nids[0]; i++) {
        if (nid == reserved_nids[i]) {
            kms_raise(KMS_ERR_INVALID_ARGS,
                      "CustomExtensions may not set %s (%s): the template or the request's other "
                      "members set it",
                      OBJ_nid2ln(nid),
                      json_string_value(json_object_get(item, "ObjectIdentifier")));
            goto out;
        }
    }
    if (kms_base64_decode(value, "CustomExtensions Value", false, &der, &der_len) != 0) {
        goto out;
    }
    /* The extnValue's content: one complete DER value (RFC 5280 4.1: "the DER encoding of an
     * ASN.1 value corresponding to the extension type"). */
    if (der_value(der, der_len) != 0) {
        kms_raise(KMS_ERR_INVALID_ARGS, "CustomExtensions Value for %s is not one DER value",
                  json_string_value(json_object_get(item, "ObjectIdentifier")));
        goto out;
    }
    os = ASN1_OCTET_STRING_new();
    if (os == NULL || ASN1_OCTET_STRING_set(os, der, (int)der_len) != 1 ||
        (*out = X509_EXTENSION_create_by_OBJ(NULL, oid, json_is_true(critical) ? 1 : 0, os)) ==
            NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(oid);
    free(der);
    return r;
}

static int custom_read(json_t *a, kms_pki_passthrough *pt)
{
    size_t n = 0;
    KMS_GUARD(array_of(a, "CustomExtensions", CUSTOM_MAX, &n));
    if (n == 0) {
        return 0;
    }
    pt->custom = sk_X509_EXTENSION_new_null();
    KMS_ENSURE(pt->custom != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        X509_EXTENSION *ext = NULL;
        KMS_GUARD(custom_one(json_array_get(a, i), &ext));
        for (int j = 0; j < sk_X509_EXTENSION_num(pt->custom); j++) {
            if (OBJ_cmp(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(pt->custom, j)),
                        X509_EXTENSION_get_object(ext)) == 0) {
                X509_EXTENSION_free(ext);
                return kms_raise(KMS_ERR_INVALID_ARGS,
                                 "CustomExtensions names one ObjectIdentifier twice");
            }
        }
        if (sk_X509_EXTENSION_push(pt->custom, ext) <= 0) {
            X509_EXTENSION_free(ext);
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    return 0;
}

/* ---- The whole ---------------------------------------------------------------------------- */

static int read_all(json_t *api, const kms_pki_template *t, kms_pki_passthrough *out)
{
    static const char *const top[] = {"Extensions", "Subject", NULL};
    static const char *const ext_members[] = {"CertificatePolicies",     "CustomExtensions",
                                              "ExtendedKeyUsage",        "KeyUsage",
                                              "SubjectAlternativeNames", NULL};
    KMS_ENSURE(t->api_passthrough, KMS_ERR_INVALID_ARGS,
               "ApiPassthrough is taken by the *_APIPassthrough templates only, not by %s",
               t->name);
    KMS_GUARD(members_check(api, "ApiPassthrough", top));
    json_t *subject = json_object_get(api, "Subject");
    if (subject != NULL) {
        KMS_GUARD(kms_pki_subject_name(subject, &out->subject));
    }
    json_t *ext = json_object_get(api, "Extensions");
    if (ext == NULL) {
        return 0;
    }
    KMS_GUARD(members_check(ext, "ApiPassthrough.Extensions", ext_members));
    KMS_GUARD(key_usage_check(json_object_get(ext, "KeyUsage")));
    KMS_GUARD(eku_read(json_object_get(ext, "ExtendedKeyUsage"), out));
    KMS_GUARD(san_read(json_object_get(ext, "SubjectAlternativeNames"), out));
    KMS_GUARD(policies_read(json_object_get(ext, "CertificatePolicies"), out));
    return custom_read(json_object_get(ext, "CustomExtensions"), out);
}

int kms_pki_passthrough_read(json_t *api, const kms_pki_template *t, kms_pki_passthrough *out)
{
    memset(out, 0, sizeof *out);
    if (api == NULL || json_is_null(api)) {
        return 0;
    }
    if (read_all(api, t, out) != 0) {
        kms_pki_passthrough_clean_up(out);
        return -1;
    }
    return 0;
}

int kms_pki_passthrough_add(const kms_pki_passthrough *pt, const kms_pki_template *t, X509 *x)
{
    /* The template's extendedKeyUsage wins over the passthrough's. */
    if (pt->eku != NULL && t->ext_key_usage == NULL) {
        KMS_ENSURE(X509_add1_ext_i2d(x, NID_ext_key_usage, pt->eku, 0, X509V3_ADD_DEFAULT) == 1,
                   KMS_ERR_INTERNAL, "cannot add the extended key usage");
    }
    if (pt->policies != NULL) {
        KMS_ENSURE(X509_add1_ext_i2d(x, NID_certificate_policies, pt->policies, 0,
                                     X509V3_ADD_DEFAULT) == 1,
                   KMS_ERR_INTERNAL, "cannot add the certificate policies");
    }
    for (int i = 0; pt->custom != NULL && i < sk_X509_EXTENSION_num(pt->custom); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(pt->custom, i);
        char oid[OID_MAX + 1];
        OBJ_obj2txt(oid, sizeof oid, X509_EXTENSION_get_object(ext), 1);
        KMS_ENSURE(
            X509_get_ext_by_OBJ(x, X509_EXTENSION_get_object(ext), -1) < 0, KMS_ERR_INVALID_ARGS,
            "CustomExtensions may not set %s: the certificate has that extension already", oid);
        KMS_ENSURE(X509_add_ext(x, ext, -1) == 1, KMS_ERR_INTERNAL,
                   "cannot add the custom extension %s", oid);
    }
    return 0;
}
