/* A CA of the certificate manager as a TLS context's trust anchor (kms_tls_options.ca_arn): its
 * certificate, fetched through the gate (acm-pca:GetCertificateAuthorityCertificate, audited),
 * is the only certificate trusted, with X509_V_FLAG_PARTIAL_CHAIN so that a subordinate CA
 * anchors the chain by itself: what it issued verifies, what its parent's other CAs issued
 * does not. A server checking clients against it also loads the CRL the CA publishes
 * (HOME/crl/CA_ID.crl, DER, signed in the HSM; OpenSSL checks its signature and nextUpdate) and
 * refuses to start when the CA publishes CRLs but none can be read: fail closed. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki/pki.h"
#include "policy/policy.h"
#include "service/client.h"
#include "tls/tls_ctx.h"
#include "tls/tls_managed.h"
#include "util/error.h"
#include "util/util.h"

/* A CRL file is at most this large (AWS Private CA's CRLs are limited far below). */
#define CRL_MAX (64u << 20)

/* The CA's certificate, as GetCertificateAuthorityCertificate answers it. */
static X509 *ca_certificate(kms_client *client, const char *ca_arn)
{
    char *resp = NULL;
    X509 *x = NULL;
    json_t *req = json_pack("{s:s}", "CertificateAuthorityArn", ca_arn);
    char *text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (text == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    int r = kms_call(client, "acm-pca:GetCertificateAuthorityCertificate", text, &resp);
    free(text);
    if (r != 0) {
        return NULL;
    }
    json_t *j = json_loads(resp, 0, NULL);
    const char *pem = json_string_value(json_object_get(j, "Certificate"));
    BIO *bio = pem != NULL ? BIO_new_mem_buf(pem, -1) : NULL;
    x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    json_decref(j);
    kms_string_free(resp);
    if (x == NULL) {
        kms_tls_raise_ssl(KMS_ERR_INTERNAL, "reading the CA's certificate");
    }
    return x;
}

int kms_tls_manager_crl_path(kms_client *client, const char *ca_arn, char **path)
{
    char account[13];
    char ca_id[37];
    kms_keystore view;
    kms_pki_ca ca;
    *path = NULL;
    KMS_ENSURE(client != NULL, KMS_ERR_VALIDATION,
               "a CA of the certificate manager needs the client of its KMS home");
    KMS_ENSURE(kms_policy_arn_account(ca_arn, account) == 0, KMS_ERR_INVALID_ARN,
               "%s is not a certificate authority's ARN", ca_arn);
    kms_pki_keystore_as(&client->keystore, account, &view);
    KMS_GUARD(kms_pki_arn_parse(&view, ca_arn, ca_id, NULL));
    KMS_GUARD(kms_pki_ca_get(&view, ca_id, &ca));
    bool crls = kms_pki_crl_enabled(&ca);
    kms_pki_ca_clean_up(&ca);
    if (!crls) {
        return 0;
    }
    *path = kms_strdup_printf("%s/crl/%s.crl", client->home, ca_id);
    KMS_ENSURE(*path != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

static int load_crl(X509_STORE *store, const char *path)
{
    char *der = NULL;
    size_t len = 0;
    KMS_ENSURE(kms_file_read(path, CRL_MAX, &der, &len) == 0, KMS_ERR_VALIDATION,
               "the CA publishes CRLs but %s cannot be read: run `kmsctl run-scheduler --once` "
               "to publish it",
               path);
    const unsigned char *p = (const unsigned char *)der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    bool whole = crl != NULL && p == (const unsigned char *)der + len;
    int added = whole ? X509_STORE_add_crl(store, crl) : 0;
    X509_CRL_free(crl);
    free(der);
    if (added != 1) {
        return kms_tls_raise_ssl(KMS_ERR_VALIDATION, "reading the CA's CRL");
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    return 0;
}

int kms_tls_manager_ca_install(kms_client *client, const char *ca_arn, SSL_CTX *ctx, bool server)
{
    char *crl = NULL;
    int r = -1;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    if (server && kms_tls_manager_crl_path(client, ca_arn, &crl) != 0) {
        return -1;
    }
    X509 *x = ca_certificate(client, ca_arn);
    if (x == NULL) {
        goto out;
    }
    if (X509_STORE_add_cert(store, x) != 1 || (server && SSL_CTX_add_client_CA(ctx, x) != 1)) {
        kms_tls_raise_ssl(KMS_ERR_INTERNAL, "trusting the CA's certificate");
        goto out;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    if (crl != NULL && load_crl(store, crl) != 0) {
        goto out;
    }
    r = 0;
out:
    X509_free(x);
    free(crl);
    return r;
}
