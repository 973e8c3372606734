/* SUBORDINATE CAs: their CSR, signed in the HSM, and the installation of the certificate another
 * CA issued them (one of this home, or an outside one such as `openssl ca`). */
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pki/pki_internal.h"

/* At most this many certificates above a subordinate CA. */
#define CHAIN_MAX 8

static int algorithms_of(const kms_pki_ca *ca, const kms_pki_key_alg **key,
                         const kms_pki_sig_alg **alg)
{
    KMS_GUARD(kms_pki_key_alg_find(ca->key_algorithm, key));
    return kms_pki_sig_alg_find(ca->signing_algorithm, alg);
}

/* RFC 2986 with the extensions a CA asks for (PKCS#9 extensionRequest): basicConstraints
 * CA:TRUE and keyUsage keyCertSign, cRLSign, both critical. */
static int req_extensions(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
    X509_EXTENSION *ku = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
                                             "critical,digitalSignature,keyCertSign,cRLSign");
    int ok = exts != NULL && bc != NULL && ku != NULL && sk_X509_EXTENSION_push(exts, bc) > 0;
    if (ok) {
        bc = NULL;
        ok = sk_X509_EXTENSION_push(exts, ku) > 0;
    }
    if (ok) {
        ku = NULL;
        ok = X509_REQ_add_extensions(req, exts) == 1;
    }
    X509_EXTENSION_free(bc);
    X509_EXTENSION_free(ku);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    KMS_ENSURE(ok, KMS_ERR_INTERNAL, "cannot add the CSR's extensions");
    return 0;
}

int kms_pki_ca_csr(const kms_keystore *ks, const kms_pki_ca *ca, char **pem)
{
    int r = -1;
    const kms_pki_key_alg *key = NULL;
    const kms_pki_sig_alg *alg = NULL;
    json_t *conf = NULL;
    X509_NAME *name = NULL;
    const uint8_t *p = ca->public_key;
    EVP_PKEY *pub = NULL;
    X509_REQ *req = X509_REQ_new();
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;
    *pem = NULL;
    if (strcmp(ca->type, "SUBORDINATE") != 0) {
        kms_raise(KMS_ERR_PCA_INVALID_STATE,
                  "The certificate authority %s is a ROOT CA: it installed its own certificate",
                  ca->ca_id);
        goto out;
    }
    conf = json_loads(ca->configuration, 0, NULL);
    pub = p != NULL ? d2i_PUBKEY(NULL, &p, (long)ca->public_key_len) : NULL;
    if (conf == NULL || pub == NULL || req == NULL || bio == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot build the CSR of %s", ca->ca_id);
        goto out;
    }
    if (algorithms_of(ca, &key, &alg) != 0 ||
        kms_pki_subject_name(json_object_get(conf, "Subject"), &name) != 0) {
        goto out;
    }
    if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, pub) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot build the CSR of %s", ca->ca_id);
        goto out;
    }
    if (req_extensions(req) != 0 || kms_pki_sign_req(ks, ca->ca_id, key, alg, req) != 0) {
        goto out;
    }
    if (PEM_write_bio_X509_REQ(bio, req) != 1 || (n = BIO_get_mem_data(bio, &data)) <= 0 ||
        (*pem = strndup(data, (size_t)n)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot write the CSR as PEM");
        goto out;
    }
    r = 0;
out:
    BIO_free(bio);
    X509_REQ_free(req);
    EVP_PKEY_free(pub);
    X509_NAME_free(name);
    json_decref(conf);
    return r;
}

/* ---- Installing the certificate
 * ------------------------------------------------------------------ */

/* One certificate, PEM or DER. */
static int cert_parse(const uint8_t *in, size_t len, X509 **out)
{
    static const char pem_head[] = "-----BEGIN";
    *out = NULL;
    KMS_ENSURE(len > 0 && len <= KMS_PKI_CSR_MAX, KMS_ERR_INVALID_ARGS,
               "Certificate is %zu bytes: it must be 1 to %d", len, KMS_PKI_CSR_MAX);
    if (memmem(in, len, pem_head, sizeof pem_head - 1) != NULL) {
        BIO *bio = BIO_new_mem_buf(in, (int)len);
        *out = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    } else {
        const uint8_t *p = in;
        *out = d2i_X509(NULL, &p, (long)len);
    }
    KMS_ENSURE(*out != NULL, KMS_ERR_MALFORMED_CERTIFICATE,
               "Certificate is not an X.509 certificate in PEM or DER");
    return 0;
}

/* The chain's certificates (PEM), the CA's issuer first and a root last. */
static int chain_parse(const uint8_t *in, size_t len, STACK_OF(X509) * *out)
{
    *out = NULL;
    KMS_ENSURE(len > 0 && len <= (size_t)KMS_PKI_CSR_MAX * 4, KMS_ERR_INVALID_ARGS,
               "CertificateChain is %zu bytes: it must be 1 to %d", len, KMS_PKI_CSR_MAX * 4);
    BIO *bio = BIO_new_mem_buf(in, (int)len);
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *x = NULL;
    while (bio != NULL && sk != NULL && sk_X509_num(sk) <= CHAIN_MAX &&
           (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(sk, x) <= 0) {
            X509_free(x);
            break;
        }
    }
    BIO_free(bio);
    if (sk == NULL || sk_X509_num(sk) == 0 || sk_X509_num(sk) > CHAIN_MAX) {
        sk_X509_pop_free(sk, X509_free);
        return kms_raise(KMS_ERR_INVALID_ARGS,
                         "CertificateChain must hold 1 to %d PEM certificates, a root last",
                         CHAIN_MAX);
    }
    *out = sk;
    return 0;
}

/* The certificate verifies up to the chain's last certificate (a trust anchor for this check),
 * through the others. */
static int chain_verify(X509 *x, STACK_OF(X509) * chain)
{
    int r = -1;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509 *root = sk_X509_value(chain, sk_X509_num(chain) - 1);
    if (store == NULL || ctx == NULL || X509_STORE_add_cert(store, root) != 1 ||
        X509_STORE_CTX_init(ctx, store, x, chain) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot verify the certificate chain");
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        kms_raise(KMS_ERR_INVALID_REQUEST,
                  "the certificate does not verify through CertificateChain: %s",
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    r = 0;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return r;
}

static int time_of(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    KMS_ENSURE(ASN1_TIME_to_tm(t, &tm) == 1, KMS_ERR_INVALID_ARGS,
               "the certificate's validity "
               "does not parse");
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* ca's certificate, serial, validity and chain (as PEM) from x and chain. */
static int fill_installed(kms_pki_ca *ca, X509 *x, STACK_OF(X509) * chain)
{
    int r = -1;
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;
    for (int i = 0; bio != NULL && i < sk_X509_num(chain); i++) {
        if (PEM_write_bio_X509(bio, sk_X509_value(chain, i)) != 1) {
            n = -1;
        }
    }
    if (len <= 0 || hex == NULL || bio == NULL || n < 0 ||
        (n = BIO_get_mem_data(bio, &data)) <= 0 || strlen(hex) >= sizeof ca->serial) {
        kms_raise(KMS_ERR_INVALID_ARGS, "the certificate or its chain cannot be encoded");
        goto out;
    }
    ca->certificate = malloc((size_t)len);
    ca->chain = malloc((size_t)n);
    if (ca->certificate == NULL || ca->chain == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(ca->certificate, der, (size_t)len);
    ca->certificate_len = (size_t)len;
    memcpy(ca->chain, data, (size_t)n);
    ca->chain_len = (size_t)n;
    for (size_t i = 0; hex[i] != '\0'; i++) {
        ca->serial[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
        ca->serial[i + 1] = '\0';
    }
    if (time_of(X509_get0_notBefore(x), &ca->not_before) != 0 ||
        time_of(X509_get0_notAfter(x), &ca->not_after) != 0) {
        goto out;
    }
    r = 0;
out:
    BIO_free(bio);
    OPENSSL_free(hex);
    BN_free(bn);
    OPENSSL_free(der);
    return r;
}

int kms_pki_ca_import(const kms_keystore *ks, const kms_pki_ca *ca, const uint8_t *cert,
                      size_t cert_len, const uint8_t *chain_pem, size_t chain_len, int64_t now)
{
    int r = -1;
    X509 *x = NULL;
    STACK_OF(X509) *chain = NULL;
    const uint8_t *p = ca->public_key;
    EVP_PKEY *pub = p != NULL ? d2i_PUBKEY(NULL, &p, (long)ca->public_key_len) : NULL;
    kms_pki_ca installed;
    memset(&installed, 0, sizeof installed);
    if (strcmp(ca->type, "SUBORDINATE") != 0 || strcmp(ca->status, "PENDING_CERTIFICATE") != 0) {
        kms_raise(KMS_ERR_PCA_INVALID_STATE,
                  "The certificate authority %s is a %s CA in the %s state: only a SUBORDINATE "
                  "CA in PENDING_CERTIFICATE takes a certificate",
                  ca->ca_id, ca->type, ca->status);
        goto out;
    }
    if (pub == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "the public key of %s does not parse", ca->ca_id);
        goto out;
    }
    if (cert_parse(cert, cert_len, &x) != 0 || chain_parse(chain_pem, chain_len, &chain) != 0) {
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(x), pub) != 1) {
        kms_raise(KMS_ERR_CERTIFICATE_MISMATCH,
                  "the certificate is not "
                  "for this CA's key (use its GetCertificateAuthorityCsr)");
        goto out;
    }
    int bc = X509_get_ext_by_NID(x, NID_basic_constraints, -1);
    if (bc < 0 || !X509_EXTENSION_get_critical(X509_get_ext(x, bc)) ||
        (X509_get_extension_flags(x) & EXFLAG_CA) == 0 ||
        (X509_get_key_usage(x) & KU_KEY_CERT_SIGN) == 0) {
        kms_raise(KMS_ERR_INVALID_REQUEST, "the certificate is not a CA's (basicConstraints "
                                           "critical CA:TRUE and keyUsage keyCertSign)");
        goto out;
    }
    /* Its key identifier names it in the CRLs and in the certificates it issues. */
    if (X509_get0_subject_key_id(x) == NULL) {
        kms_raise(KMS_ERR_MALFORMED_CERTIFICATE, "the certificate has no "
                                                 "subjectKeyIdentifier, which its CRLs and the "
                                                 "certificates it issues name it by");
        goto out;
    }
    if (chain_verify(x, chain) != 0) {
        goto out;
    }
    memcpy(installed.ca_id, ca->ca_id, sizeof installed.ca_id);
    installed.last_state_change_at = now;
    if (fill_installed(&installed, x, chain) != 0 || kms_pki_db_ca_install(ks, &installed) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_pki_ca_clean_up(&installed);
    sk_X509_pop_free(chain, X509_free);
    X509_free(x);
    EVP_PKEY_free(pub);
    return r;
}
