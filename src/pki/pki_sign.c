/* Every signature a CA makes comes from its HSM key through the key store; OpenSSL builds and
 * encodes everything around it.
 *
 * Design: OpenSSL signs a certificate only with an EVP_PKEY that holds (or reaches, through a
 * provider or engine) the private key. Rather than a provider, the certificate is built with
 * OpenSSL's X509 API and then:
 *   1. both AlgorithmIdentifiers are set (TBSCertificate.signature and
 *      Certificate.signatureAlgorithm; RFC 5280 4.1.1.2 says they must be the same),
 *   2. OpenSSL encodes the TBSCertificate (i2d_re_X509_tbs),
 *   3. the key store signs that DER in the HSM (kms_keystore_ca_key_sign),
 *   4. the signature goes into the certificate's BIT STRING,
 *   5. OpenSSL verifies the result with the CA's public key before anything is stored.
 * No DER is written by hand, and the HSM road is the one CMKs use. OpenSSL 3.0 has no setter
 * for the two AlgorithmIdentifiers and the signature, so their getters' const is cast away:
 * that is the one liberty taken, and step 5 checks the outcome. A provider over the key store
 * (needed later for TLS handshakes with HSM keys, issue 16) can replace this file without
 * changing its callers. */
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>

#include "pki/pki_internal.h"

/* Step 1: RFC 5758 3.2 (ECDSA: parameters absent), RFC 4055 5 (RSA PKCS#1 v1.5: NULL). */
static int set_algorithms(X509 *x, const kms_pki_sig_alg *alg)
{
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *outer = NULL;
    X509_ALGOR *inner = (X509_ALGOR *)X509_get0_tbs_sigalg(x);
    int ptype = alg->ec ? V_ASN1_UNDEF : V_ASN1_NULL;
    X509_get0_signature(&sig, &outer, x);
    KMS_ENSURE(inner != NULL && outer != NULL &&
                   X509_ALGOR_set0(inner, OBJ_nid2obj(alg->nid), ptype, NULL) == 1 &&
                   X509_ALGOR_set0((X509_ALGOR *)outer, OBJ_nid2obj(alg->nid), ptype, NULL) == 1,
               KMS_ERR_INTERNAL, "cannot set the signature algorithm %s", alg->name);
    return 0;
}

/* Steps 3 and 4, for every structure: the DER `tbs` signed by the CA's key in the HSM, and
 * the signature put into `sig_bits` (the structure's own signature BIT STRING, its getter's
 * const cast away) with no unused bits. */
static int sign_into(const kms_keystore *ks, const char *ca_id, const kms_pki_key_alg *key,
                     const kms_pki_sig_alg *alg, const unsigned char *tbs, int tbs_len,
                     const ASN1_BIT_STRING *sig_bits, const char *what)
{
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    ASN1_BIT_STRING *bits = (ASN1_BIT_STRING *)sig_bits;
    if (tbs_len <= 0) {
        return kms_raise(KMS_ERR_INTERNAL, "cannot encode the %s to sign", what);
    }
    KMS_GUARD(kms_keystore_ca_key_sign(ks, ca_id, key->key_spec, alg->kms_name, tbs,
                                       (size_t)tbs_len, &sig, &sig_len));
    bool ok = bits != NULL && sig_len <= INT32_MAX &&
              ASN1_BIT_STRING_set(bits, (unsigned char *)sig, (int)sig_len) == 1;
    free(sig);
    KMS_ENSURE(ok, KMS_ERR_INTERNAL, "cannot set the %s's signature", what);
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    return 0;
}

int kms_pki_sign(const kms_keystore *ks, const char *ca_id, const kms_pki_key_alg *key,
                 const kms_pki_sig_alg *alg, EVP_PKEY *ca_pub, X509 *x)
{
    int r = -1;
    unsigned char *tbs = NULL;
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *outer = NULL;
    EVP_PKEY *pub = ca_pub != NULL ? ca_pub : X509_get0_pubkey(x);
    KMS_ENSURE(alg->ec == key->ec, KMS_ERR_INVALID_ARGS,
               "SigningAlgorithm %s does not fit a CA key of KeyAlgorithm %s", alg->name,
               key->name);
    if (set_algorithms(x, alg) != 0) {
        goto out;
    }
    X509_get0_signature(&sig, &outer, x);
    int tbs_len = i2d_re_X509_tbs(x, &tbs);
    if (sign_into(ks, ca_id, key, alg, tbs, tbs_len, sig, "certificate") != 0) {
        goto out;
    }
    /* Step 5: a signature the HSM got wrong, or a certificate encoded differently from what was
     * signed, never leaves here. */
    if (pub == NULL || X509_verify(x, pub) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "the certificate signed by CA %s does not verify", ca_id);
        goto out;
    }
    r = 0;
out:
    OPENSSL_free(tbs);
    return r;
}

/* ---- CRLs --------------------------------------------------------------------------------------
 */

/* A CRL's TBSCertList.signature has no getter at all in OpenSSL 3.0, so the algorithms are set
 * the one way OpenSSL offers: a throwaway key of the CA key's family signs first (setting both
 * AlgorithmIdentifiers), then the TBSCertList is encoded and signed in the HSM, and that
 * signature replaces the throwaway one, which never leaves this function. */
static EVP_PKEY *throwaway_key(const kms_pki_key_alg *key)
{
    return key->ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
}

int kms_pki_sign_crl(const kms_keystore *ks, const char *ca_id, const kms_pki_key_alg *key,
                     const kms_pki_sig_alg *alg, EVP_PKEY *ca_pub, X509_CRL *crl)
{
    int r = -1;
    unsigned char *tbs = NULL;
    int tbs_len = 0;
    int md_nid = NID_undef, pk_nid = NID_undef;
    const ASN1_BIT_STRING *csig = NULL;
    const X509_ALGOR *calg = NULL;
    EVP_PKEY *tmp = throwaway_key(key);
    if (tmp == NULL || OBJ_find_sigid_algs(alg->nid, &md_nid, &pk_nid) != 1 ||
        X509_CRL_sign(crl, tmp, EVP_get_digestbynid(md_nid)) <= 0) {
        kms_raise(KMS_ERR_INTERNAL, "cannot set the CRL's signature algorithm %s", alg->name);
        goto out;
    }
    tbs_len = i2d_re_X509_CRL_tbs(crl, &tbs);
    X509_CRL_get0_signature(crl, &csig, &calg);
    if (sign_into(ks, ca_id, key, alg, tbs, tbs_len, csig, "CRL") != 0) {
        goto out;
    }
    if (X509_CRL_verify(crl, ca_pub) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "the CRL signed by CA %s does not verify", ca_id);
        goto out;
    }
    r = 0;
out:
    EVP_PKEY_free(tmp);
    OPENSSL_free(tbs);
    return r;
}

/* ---- Certificate signing requests
 * ---------------------------------------------------------------- */

/* A CertificationRequest's one AlgorithmIdentifier is outside what it signs (RFC 2986 4.2), so
 * it is set as a certificate's are, then the CertificationRequestInfo is signed in the HSM. */
int kms_pki_sign_req(const kms_keystore *ks, const char *ca_id, const kms_pki_key_alg *key,
                     const kms_pki_sig_alg *alg, X509_REQ *req)
{
    int r = -1;
    unsigned char *tbs = NULL;
    int tbs_len = 0;
    const ASN1_BIT_STRING *csig = NULL;
    const X509_ALGOR *calg = NULL;
    X509_REQ_get0_signature(req, &csig, &calg);
    if (calg == NULL || X509_ALGOR_set0((X509_ALGOR *)calg, OBJ_nid2obj(alg->nid),
                                        alg->ec ? V_ASN1_UNDEF : V_ASN1_NULL, NULL) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot set the CSR's signature algorithm %s", alg->name);
        goto out;
    }
    tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
    if (sign_into(ks, ca_id, key, alg, tbs, tbs_len, csig, "CSR") != 0) {
        goto out;
    }
    if (X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "the CSR signed by CA %s does not verify", ca_id);
        goto out;
    }
    r = 0;
out:
    OPENSSL_free(tbs);
    return r;
}

/* ---- OCSP responses ----------------------------------------------------------------------------
 */

/* A BasicOCSPResponse has no setter for its ResponderID and producedAt but OCSP_basic_sign, which
 * wants the private key: as for a CRL, a throwaway key signs first (through a throwaway
 * certificate of its own public key, never signed, that OCSP_basic_sign only reads), setting the
 * signatureAlgorithm, producedAt and a ResponderID by key; the key hash is then made the CA key's
 * (RFC 6960 4.2.2.3: the SHA-1 of its subjectPublicKey), and ResponseData is encoded and signed
 * in the HSM. The throwaway keys are made once per process: an RSA key takes far longer to make
 * than a response to sign. */
static EVP_PKEY *throwaway_ec;
static EVP_PKEY *throwaway_rsa;
static pthread_once_t throwaway_once = PTHREAD_ONCE_INIT;

static void throwaway_make(void)
{
    throwaway_ec = EVP_EC_gen("P-256");
    throwaway_rsa = EVP_RSA_gen(2048);
}

static int ocsp_presign(const kms_pki_key_alg *key, const kms_pki_sig_alg *alg, OCSP_BASICRESP *bs)
{
    int r = -1;
    int md_nid = NID_undef, pk_nid = NID_undef;
    X509 *tmp_cert = X509_new();
    pthread_once(&throwaway_once, throwaway_make);
    EVP_PKEY *tmp = key->ec ? throwaway_ec : throwaway_rsa;
    if (tmp == NULL || tmp_cert == NULL || X509_set_pubkey(tmp_cert, tmp) != 1 ||
        OBJ_find_sigid_algs(alg->nid, &md_nid, &pk_nid) != 1 ||
        OCSP_basic_sign(bs, tmp_cert, tmp, EVP_get_digestbynid(md_nid), NULL,
                        OCSP_NOCERTS | OCSP_RESPID_KEY) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot set the OCSP response's signature algorithm %s",
                  alg->name);
        goto out;
    }
    r = 0;
out:
    X509_free(tmp_cert);
    return r;
}

int kms_pki_sign_ocsp(const kms_keystore *ks, const char *ca_id, const kms_pki_key_alg *key,
                      const kms_pki_sig_alg *alg, X509 *ca_cert, OCSP_BASICRESP *bs)
{
    int r = -1;
    unsigned char *tbs = NULL;
    int tbs_len = 0;
    unsigned char hash[SHA_DIGEST_LENGTH];
    unsigned int hash_len = 0;
    const ASN1_OCTET_STRING *key_id = NULL;
    const X509_NAME *name = NULL;
    KMS_ENSURE(alg->ec == key->ec, KMS_ERR_INVALID_ARGS,
               "SigningAlgorithm %s does not fit a CA key of KeyAlgorithm %s", alg->name,
               key->name);
    if (ocsp_presign(key, alg, bs) != 0) {
        goto out;
    }
    if (X509_pubkey_digest(ca_cert, EVP_sha1(), hash, &hash_len) != 1 ||
        OCSP_resp_get0_id(bs, &key_id, &name) != 1 || key_id == NULL ||
        ASN1_OCTET_STRING_set((ASN1_OCTET_STRING *)key_id, hash, (int)hash_len) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot set the OCSP responder id");
        goto out;
    }
    tbs_len = i2d_OCSP_RESPDATA((OCSP_RESPDATA *)OCSP_resp_get0_respdata(bs), &tbs);
    if (sign_into(ks, ca_id, key, alg, tbs, tbs_len, OCSP_resp_get0_signature(bs),
                  "OCSP response") != 0) {
        goto out;
    }
    if (ASN1_item_verify(ASN1_ITEM_rptr(OCSP_RESPDATA), OCSP_resp_get0_tbs_sigalg(bs),
                         OCSP_resp_get0_signature(bs), OCSP_resp_get0_respdata(bs),
                         X509_get0_pubkey(ca_cert)) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "the OCSP response signed by CA %s does not verify", ca_id);
        goto out;
    }
    r = 0;
out:
    OPENSSL_free(tbs);
    return r;
}
