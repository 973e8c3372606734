/* The tables of src/pki (key algorithms, signing algorithms, templates), subjects, serials,
 * extensions, ARNs and PEM: the small pieces the CA and issuance files share. */
#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki_internal.h"
#include "util/util.h"

/* ---- Tables ------------------------------------------------------------------------------------
 */

static const kms_pki_key_alg key_algs[] = {
    {"EC_prime256v1", "ECC_NIST_P256", true}, {"EC_secp384r1", "ECC_NIST_P384", true},
    {"EC_secp521r1", "ECC_NIST_P521", true},  {"RSA_2048", "RSA_2048", false},
    {"RSA_3072", "RSA_3072", false},          {"RSA_4096", "RSA_4096", false},
};

static const kms_pki_sig_alg sig_algs[] = {
    {"SHA256WITHECDSA", "ECDSA_SHA_256", NID_ecdsa_with_SHA256, true},
    {"SHA384WITHECDSA", "ECDSA_SHA_384", NID_ecdsa_with_SHA384, true},
    {"SHA512WITHECDSA", "ECDSA_SHA_512", NID_ecdsa_with_SHA512, true},
    {"SHA256WITHRSA", "RSASSA_PKCS1_V1_5_SHA_256", NID_sha256WithRSAEncryption, false},
    {"SHA384WITHRSA", "RSASSA_PKCS1_V1_5_SHA_384", NID_sha384WithRSAEncryption, false},
    {"SHA512WITHRSA", "RSASSA_PKCS1_V1_5_SHA_512", NID_sha512WithRSAEncryption, false},
};

/* AWS Private CA User Guide, "Understanding certificate templates": the extensions each V1
 * template writes. keyEncipherment is added for RSA subject keys only (an EC key cannot
 * encipher a key; RFC 8813 / the public-TLS profile). */
#define TPL(NAME, BASIC, KU, EKU, CA, SERVER)                                                      \
    {"arn:aws:acm-pca:::template/" NAME "/V1", NAME, BASIC, KU, EKU, CA, SERVER, false},           \
    {                                                                                              \
        "arn:aws:acm-pca:::template/" NAME "_APIPassthrough/V1", NAME "_APIPassthrough", BASIC,    \
            KU, EKU, CA, SERVER, true                                                              \
    }
static const kms_pki_template templates[] = {
    TPL("EndEntityCertificate", "critical,CA:FALSE", "critical,digitalSignature",
        "serverAuth,clientAuth", false, true),
    TPL("EndEntityServerAuthCertificate", "critical,CA:FALSE", "critical,digitalSignature",
        "serverAuth", false, true),
    TPL("EndEntityClientAuthCertificate", "critical,CA:FALSE", "critical,digitalSignature",
        "clientAuth", false, false),
    TPL("CodeSigningCertificate", "critical,CA:FALSE", "critical,digitalSignature", "codeSigning",
        false, false),
    TPL("SubordinateCACertificate_PathLen0", "critical,CA:TRUE,pathlen:0",
        "critical,digitalSignature,keyCertSign,cRLSign", NULL, true, false),
};
#undef TPL

int kms_pki_key_alg_find(const char *name, const kms_pki_key_alg **out)
{
    *out = NULL;
    for (size_t i = 0; name != NULL && i < sizeof key_algs / sizeof key_algs[0]; i++) {
        if (strcmp(key_algs[i].name, name) == 0) {
            *out = &key_algs[i];
            return 0;
        }
    }
    return kms_raise(KMS_ERR_INVALID_ARGS,
                     "KeyAlgorithm '%s' is not supported: use EC_prime256v1, EC_secp384r1, "
                     "EC_secp521r1, RSA_2048, RSA_3072 or RSA_4096",
                     name ? name : "");
}

int kms_pki_sig_alg_find(const char *name, const kms_pki_sig_alg **out)
{
    *out = NULL;
    for (size_t i = 0; name != NULL && i < sizeof sig_algs / sizeof sig_algs[0]; i++) {
        if (strcmp(sig_algs[i].name, name) == 0) {
            *out = &sig_algs[i];
            return 0;
        }
    }
    return kms_raise(KMS_ERR_INVALID_ARGS,
                     "SigningAlgorithm '%s' is not supported: use SHA256WITHECDSA, "
                     "SHA384WITHECDSA, SHA512WITHECDSA, SHA256WITHRSA, SHA384WITHRSA or "
                     "SHA512WITHRSA",
                     name ? name : "");
}

int kms_pki_template_find(const char *arn, const kms_pki_template **out)
{
    *out = NULL;
    for (size_t i = 0; arn != NULL && i < sizeof templates / sizeof templates[0]; i++) {
        if (strcmp(templates[i].arn, arn) == 0) {
            *out = &templates[i];
            return 0;
        }
    }
    return kms_raise(KMS_ERR_INVALID_ARGS,
                     "TemplateArn '%s' is not a template of this CA: use "
                     "arn:aws:acm-pca:::template/NAME/V1 with NAME one of EndEntityCertificate, "
                     "EndEntityServerAuthCertificate, EndEntityClientAuthCertificate, "
                     "CodeSigningCertificate, SubordinateCACertificate_PathLen0, or one of them "
                     "followed by _APIPassthrough",
                     arn ? arn : "");
}

/* ---- Subjects ----------------------------------------------------------------------------------
 */

/* AWS Private CA ASN1Subject members, in the order they are written (RFC 4519 names). */
static const struct {
    const char *member;
    const char *sn;
    size_t max;
} subject_fields[] = {
    {"Country", "C", 2},
    {"State", "ST", 128},
    {"Locality", "L", 128},
    {"Organization", "O", 64},
    {"OrganizationalUnit", "OU", 64},
    {"DistinguishedNameQualifier", "dnQualifier", 64},
    {"Title", "title", 64},
    {"Surname", "SN", 40},
    {"GivenName", "GN", 16},
    {"Initials", "initials", 5},
    {"Pseudonym", "pseudonym", 128},
    {"GenerationQualifier", "generationQualifier", 3},
    {"SerialNumber", "serialNumber", 64},
    {"CommonName", "CN", 64},
};

static int subject_check(json_t *subject)
{
    const char *key;
    json_t *v;
    KMS_ENSURE(json_is_object(subject) && json_object_size(subject) > 0, KMS_ERR_INVALID_ARGS,
               "CertificateAuthorityConfiguration.Subject must be an object with at least one "
               "member (CommonName, Organization, Country, ...)");
    json_object_foreach(subject, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof subject_fields / sizeof subject_fields[0] && !known; i++) {
            known = strcmp(subject_fields[i].member, key) == 0;
            KMS_ENSURE(!known || (json_is_string(v) && json_string_length(v) >= 1 &&
                                  json_string_length(v) <= subject_fields[i].max),
                       KMS_ERR_INVALID_ARGS, "Subject.%s must be a string of 1 to %zu characters",
                       key, subject_fields[i].max);
        }
        KMS_ENSURE(known, KMS_ERR_INVALID_ARGS, "Subject does not take the member '%s'", key);
    }
    return 0;
}

int kms_pki_subject_name(json_t *subject, X509_NAME **out)
{
    *out = NULL;
    KMS_GUARD(subject_check(subject));
    X509_NAME *name = X509_NAME_new();
    KMS_ENSURE(name != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < sizeof subject_fields / sizeof subject_fields[0]; i++) {
        const char *value = json_string_value(json_object_get(subject, subject_fields[i].member));
        if (value != NULL &&
            X509_NAME_add_entry_by_txt(name, subject_fields[i].sn, MBSTRING_UTF8,
                                       (const unsigned char *)value, -1, -1, 0) != 1) {
            X509_NAME_free(name);
            return kms_raise(KMS_ERR_INVALID_ARGS, "Subject.%s is not a valid %s",
                             subject_fields[i].member, subject_fields[i].sn);
        }
    }
    *out = name;
    return 0;
}

/* ---- Serials and extensions ---------------------------------------------------------------------
 */

int kms_pki_serial_new(const kms_keystore *ks, X509 *x, char serial[KMS_PKI_SERIAL_MAX])
{
    int r = -1;
    uint8_t raw[16];
    BIGNUM *bn = NULL;
    char *hex = NULL;
    serial[0] = '\0';
    if (kms_keystore_random(ks, raw, sizeof raw) != 0) {
        goto out;
    }
    /* RFC 5280 4.1.2.2: positive, at most 20 octets. 01 as the top bits: exactly 16 octets in
     * DER (no leading zero octet) and at least 126 random bits (CA/B BR 7.1: 64 or more). */
    raw[0] = (uint8_t)((raw[0] & 0x3f) | 0x40);
    bn = BN_bin2bn(raw, sizeof raw, NULL);
    hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    if (hex == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot set the serial number");
        goto out;
    }
    for (size_t i = 0; hex[i] != '\0' && i + 1 < KMS_PKI_SERIAL_MAX; i++) {
        serial[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
        serial[i + 1] = '\0';
    }
    r = 0;
out:
    OPENSSL_free(hex);
    BN_free(bn);
    return r;
}

int kms_pki_ext_add(X509 *x, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    KMS_ENSURE(ok, KMS_ERR_INTERNAL, "cannot add the %s extension", OBJ_nid2sn(nid));
    return 0;
}

int kms_pki_key_ids(X509 *x, const ASN1_OCTET_STRING *issuer_ski)
{
    int r = -1;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    if (ski == NULL || akid == NULL || X509_pubkey_digest(x, EVP_sha1(), md, &n) != 1 ||
        ASN1_OCTET_STRING_set(ski, md, (int)n) != 1 ||
        X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot add the subject key identifier");
        goto out;
    }
    akid->keyid = ASN1_OCTET_STRING_dup(issuer_ski != NULL ? issuer_ski : ski);
    if (akid->keyid == NULL ||
        X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot add the authority key identifier");
        goto out;
    }
    r = 0;
out:
    AUTHORITY_KEYID_free(akid);
    ASN1_OCTET_STRING_free(ski);
    return r;
}

/* ---- ARNs and PEM ------------------------------------------------------------------------------
 */

void kms_pki_ca_arn(const kms_keystore *ks, const char *ca_id, char out[KMS_ARN_MAX])
{
    snprintf(out, KMS_ARN_MAX, "arn:aws:acm-pca:%s:%s:certificate-authority/%s", ks->region,
             ks->account_id, ca_id);
}

void kms_pki_cert_arn(const kms_keystore *ks, const char *ca_id, const char *serial,
                      char out[KMS_ARN_MAX])
{
    snprintf(out, KMS_ARN_MAX, "arn:aws:acm-pca:%s:%s:certificate-authority/%s/certificate/%s",
             ks->region, ks->account_id, ca_id, serial);
}

void kms_pki_keystore_as(const kms_keystore *ks, const char *account_id, kms_keystore *out)
{
    *out = *ks;
    out->account_id = account_id;
}

int kms_pki_arn_parse(const kms_keystore *ks, const char *arn, char ca_id[37],
                      char cert_serial[KMS_PKI_SERIAL_MAX])
{
    char prefix[KMS_ARN_MAX];
    static const char kind[] = ":certificate-authority/";
    /* The account is any account's: a CA of another account is then one this caller's account
     * does not have (ResourceNotFoundException from the lookup), not a malformed ARN. */
    snprintf(prefix, sizeof prefix, "arn:aws:acm-pca:%s:", ks->region);
    size_t pl = strlen(prefix);
    ca_id[0] = '\0';
    KMS_ENSURE(arn != NULL && strncmp(arn, prefix, pl) == 0 &&
                   strspn(arn + pl, "0123456789") == 12 &&
                   strncmp(arn + pl + 12, kind, sizeof kind - 1) == 0 &&
                   strlen(arn + pl + 12 + sizeof kind - 1) >= 36,
               KMS_ERR_INVALID_ARN,
               "'%s' is not an ARN of a certificate authority of this home (%sACCOUNT%sID)",
               arn ? arn : "", prefix, kind);
    pl += 12 + sizeof kind - 1;
    const char *rest = arn + pl;
    memcpy(ca_id, rest, 36);
    ca_id[36] = '\0';
    rest += 36;
    KMS_ENSURE(kms_uuid_valid(ca_id), KMS_ERR_INVALID_ARN, "'%s' names no valid CA id", arn);
    if (cert_serial == NULL) {
        KMS_ENSURE(rest[0] == '\0', KMS_ERR_INVALID_ARN, "'%s' is not a CA ARN", arn);
        return 0;
    }
    static const char cert[] = "/certificate/";
    KMS_ENSURE(strncmp(rest, cert, sizeof cert - 1) == 0, KMS_ERR_INVALID_ARN,
               "'%s' is not a certificate ARN (CA_ARN%sSERIAL)", arn, cert);
    const char *s = rest + sizeof cert - 1;
    size_t n = strlen(s);
    KMS_ENSURE(n >= 1 && n < KMS_PKI_SERIAL_MAX && strspn(s, "0123456789abcdef") == n,
               KMS_ERR_INVALID_ARN, "'%s' names no valid serial (lower-case hex)", arn);
    memcpy(cert_serial, s, n + 1);
    return 0;
}

int kms_pki_pem(const uint8_t *der, size_t der_len, char **pem)
{
    int r = -1;
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;
    *pem = NULL;
    if (x == NULL || bio == NULL || PEM_write_bio_X509(bio, x) != 1 ||
        (n = BIO_get_mem_data(bio, &data)) <= 0) {
        kms_raise(KMS_ERR_INTERNAL, "cannot write the certificate as PEM");
        goto out;
    }
    *pem = strndup(data, (size_t)n);
    if (*pem == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    BIO_free(bio);
    X509_free(x);
    return r;
}
