/* What DescribeCertificate reads from the certificate itself (ACM's CertificateDetail): Subject,
 * Issuer, SignatureAlgorithm, KeyUsages and ExtendedKeyUsages, with ACM's names. */
#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "pki/acm.h"
#include "util/util.h"

/* "CN=app.internal,O=Example" (RFC 2253 order, as ACM prints it). NULL on out-of-memory. */
static json_t *name_json(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    json_t *s = NULL;
    if (b != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        long n = BIO_get_mem_data(b, &data);
        s = json_stringn(data != NULL ? data : "", n > 0 ? (size_t)n : 0);
    }
    BIO_free(b);
    return s;
}

/* ACM's SignatureAlgorithm names. */
static const char *signature_name(int nid)
{
    static const struct {
        int nid;
        const char *name;
    } names[] = {
        {NID_ecdsa_with_SHA256, "SHA256WITHECDSA"},
        {NID_ecdsa_with_SHA384, "SHA384WITHECDSA"},
        {NID_ecdsa_with_SHA512, "SHA512WITHECDSA"},
        {NID_sha256WithRSAEncryption, "SHA256WITHRSA"},
        {NID_sha384WithRSAEncryption, "SHA384WITHRSA"},
        {NID_sha512WithRSAEncryption, "SHA512WITHRSA"},
        {NID_sha1WithRSAEncryption, "SHA1WITHRSA"},
        {NID_rsassaPss, "SHA256WITHRSASSAPSS"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].nid == nid) {
            return names[i].name;
        }
    }
    return "UNKNOWN";
}

/* KeyUsages [{Name}] (ACM's KeyUsageName). NULL on out-of-memory. */
static json_t *key_usages(X509 *x)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } usages[] = {
        {KU_DIGITAL_SIGNATURE, "DIGITAL_SIGNATURE"},
        {KU_NON_REPUDIATION, "NON_REPUDIATION"},
        {KU_KEY_ENCIPHERMENT, "KEY_ENCIPHERMENT"},
        {KU_DATA_ENCIPHERMENT, "DATA_ENCIPHERMENT"},
        {KU_KEY_AGREEMENT, "KEY_AGREEMENT"},
        {KU_KEY_CERT_SIGN, "CERTIFICATE_SIGNING"},
        {KU_CRL_SIGN, "CRL_SIGNING"},
        {KU_ENCIPHER_ONLY, "ENCIPHER_ONLY"},
        {KU_DECIPHER_ONLY, "DECIPHER_ONLY"},
    };
    json_t *list = json_array();
    uint32_t ku = X509_get_key_usage(x);
    for (size_t i = 0; list != NULL && i < sizeof usages / sizeof usages[0]; i++) {
        if (ku != UINT32_MAX && (ku & usages[i].bit) != 0 &&
            json_array_append_new(list, json_pack("{s:s}", "Name", usages[i].name)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
}

/* ExtendedKeyUsages [{Name, OID}] (ACM's ExtendedKeyUsageName). NULL on out-of-memory. */
static json_t *extended_key_usages(X509 *x)
{
    static const struct {
        int nid;
        const char *name;
    } usages[] = {
        {NID_server_auth, "TLS_WEB_SERVER_AUTHENTICATION"},
        {NID_client_auth, "TLS_WEB_CLIENT_AUTHENTICATION"},
        {NID_code_sign, "CODE_SIGNING"},
        {NID_email_protect, "EMAIL_PROTECTION"},
        {NID_time_stamp, "TIME_STAMPING"},
        {NID_OCSP_sign, "OCSP_SIGNING"},
        {NID_anyExtendedKeyUsage, "ANY"},
    };
    json_t *list = json_array();
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    for (int i = 0; list != NULL && i < sk_ASN1_OBJECT_num(eku); i++) {
        const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(eku, i);
        char oid[80];
        const char *name = "CUSTOM";
        OBJ_obj2txt(oid, sizeof oid, obj, 1);
        for (size_t u = 0; u < sizeof usages / sizeof usages[0]; u++) {
            if (OBJ_obj2nid(obj) == usages[u].nid) {
                name = usages[u].name;
            }
        }
        if (json_array_append_new(list, json_pack("{s:s, s:s}", "Name", name, "OID", oid)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    EXTENDED_KEY_USAGE_free(eku);
    return list;
}

int kms_acm_x509_details(const kms_acm_cert *c, json_t *detail)
{
    const unsigned char *p = c->certificate;
    X509 *x = d2i_X509(NULL, &p, (long)c->certificate_len);
    KMS_ENSURE(x != NULL, KMS_ERR_INTERNAL, "the certificate of %s does not parse", c->cert_id);
    bool ok = json_object_set_new(detail, "Subject", name_json(X509_get_subject_name(x))) == 0 &&
              json_object_set_new(detail, "Issuer", name_json(X509_get_issuer_name(x))) == 0 &&
              json_object_set_new(detail, "SignatureAlgorithm",
                                  json_string(signature_name(X509_get_signature_nid(x)))) == 0 &&
              json_object_set_new(detail, "KeyUsages", key_usages(x)) == 0 &&
              json_object_set_new(detail, "ExtendedKeyUsages", extended_key_usages(x)) == 0;
    X509_free(x);
    KMS_ENSURE(ok, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}
