/* HSM-held TLS keys (src/tls/tls_hsm_*.c): TLS 1.3 and 1.2 handshakes against servers whose
 * P-256 or RSA-2048 key is a pair of the key store in a fresh SoftHSM2 token, every handshake
 * signature made there; the key's signatures verify, its private half cannot be exported, the
 * token says it is sensitive and never extractable; a hot reload from memory. Certificates are
 * made here by a throwaway OpenSSL CA from the key store's public keys; handshakes run in memory
 * over a BIO pair. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "keystore/keystore.h"
#include "kms/tls.h"
#include "testutil.h"
#include "tls/tls_hsm.h"
#include "tls/tls_server.h"
#include "util/util.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "kms-tls-hsm-test"
#define PIN "1234-user-pin"

typedef struct hsm_leaf {
    const char *key_name;
    const char *key_spec;
    EVP_PKEY *pkey; /* the kms-hsm key */
    EVP_PKEY *pub;  /* its public half, default provider */
    char *chain_pem;
    long serial;
} hsm_leaf;

static char *dir;
static kms_keystore ks;
static EVP_PKEY *ca_key;
static X509 *ca_cert;
static hsm_leaf ec_leaf = {"tls-test-p256", "ECC_NIST_P256", NULL, NULL, NULL, 21};
static hsm_leaf rsa_leaf = {"tls-test-rsa2048", "RSA_2048", NULL, NULL, NULL, 22};

/* ---- Throwaway PKI ---------------------------------------------------------------------------*/
static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static X509 *make_cert(EVP_PKEY *pub, const char *cn, long serial, bool ca)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, ca ? name : X509_get_subject_name(ca_cert));
    X509_set_pubkey(cert, pub);
    X509 *issuer = ca ? cert : ca_cert;
    add_ext(cert, issuer, NID_subject_key_identifier, "hash");
    if (ca) {
        add_ext(cert, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always");
        add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert, issuer, NID_ext_key_usage, "serverAuth");
        add_ext(cert, issuer, NID_subject_alt_name, "DNS:server.test");
    }
    assert_true(X509_sign(cert, ca_key, EVP_sha256()) > 0);
    return cert;
}

static char *pem_of(X509 *a, X509 *b)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_X509(bio, a), 1);
    if (b != NULL) {
        assert_int_equal(PEM_write_bio_X509(bio, b), 1);
    }
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *copy = calloc(1, (size_t)n + 1);
    assert_non_null(copy);
    memcpy(copy, data, (size_t)n);
    BIO_free(bio);
    return copy;
}

/* The key in the HSM, its kms-hsm EVP_PKEY, and a certificate for it (chain: leaf, CA). */
static void make_hsm_leaf(hsm_leaf *l)
{
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    if (kms_keystore_cert_key_create(&ks, l->key_name, l->key_spec, &spki, &spki_len) != 0) {
        fail_msg("cert key: %s", kms_last_error_message());
    }
    const uint8_t *p = spki;
    l->pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
    assert_non_null(l->pub);
    l->pkey = kms_tls_hsm_pkey_new(&ks, l->key_name, l->key_spec, spki, spki_len);
    if (l->pkey == NULL) {
        fail_msg("hsm pkey: %s", kms_last_error_message());
    }
    X509 *cert = make_cert(l->pub, "server.test", l->serial, false);
    l->chain_pem = pem_of(cert, ca_cert);
    X509_free(cert);
    free(spki);
}

static int group_setup(void **state)
{
    assert_int_equal(kms_util_init(), 0);
    dir = kms_test_tmpdir();
    kms_test_token(dir, TOKEN, PIN);
    kms_hsm_config cfg = {.module_path = MODULE,
                          .token_label = TOKEN,
                          .pin = (const uint8_t *)PIN,
                          .pin_len = strlen(PIN)};
    ks.hsm = kms_hsm_open(&cfg);
    if (ks.hsm == NULL) {
        fail_msg("hsm open: %s", kms_last_error_message());
    }
    ca_key = EVP_EC_gen("P-256");
    assert_non_null(ca_key);
    ca_cert = make_cert(ca_key, "kms tls-hsm test CA", 1, true);
    char *ca = kms_path_join(dir, "ca.pem");
    FILE *f = fopen(ca, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, ca_cert), 1);
    fclose(f);
    free(ca);
    make_hsm_leaf(&ec_leaf);
    make_hsm_leaf(&rsa_leaf);
    return 0;
}

static void leaf_clean_up(hsm_leaf *l)
{
    EVP_PKEY_free(l->pkey);
    EVP_PKEY_free(l->pub);
    free(l->chain_pem);
}

static int group_teardown(void **state)
{
    leaf_clean_up(&ec_leaf);
    leaf_clean_up(&rsa_leaf);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    kms_hsm_close(ks.hsm);
    kms_test_rmrf(dir);
    free(dir);
    return 0;
}

static SSL_CTX *client_ctx(int max_version, const char *sigalgs)
{
    char *ca = kms_path_join(dir, "ca.pem");
    kms_tls_options o = {.ca_file = ca};
    SSL_CTX *ctx = kms_tls_client_ctx_new(&o);
    assert_non_null(ctx);
    free(ca);
    if (max_version != 0) {
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
    }
    if (sigalgs != NULL) {
        assert_int_equal(SSL_CTX_set1_sigalgs_list(ctx, sigalgs), 1);
    }
    return ctx;
}

static kms_tls_server *hsm_server(const hsm_leaf *l, const kms_tls_options *opts)
{
    static const kms_tls_options none = {0};
    kms_tls_server *srv = kms_tls_server_new_with_key(opts != NULL ? opts : &none, l->chain_pem,
                                                      strlen(l->chain_pem), l->pkey);
    if (srv == NULL) {
        fail_msg("server: %s", kms_last_error_message());
    }
    return srv;
}

/* A handshake of cctx's client with srv: its result, the HSM signatures it took, the peer's
 * serial and signature scheme (a NID of the hash) on success. */
static int connect_once(kms_tls_server *srv, SSL_CTX *cctx, SSL_SESSION *resume, int *version,
                        uint64_t *hsm_signs, long *serial, SSL_SESSION **session)
{
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    SSL *s = kms_tls_server_ssl_new(srv);
    assert_non_null(c);
    assert_non_null(s);
    if (resume != NULL) {
        assert_int_equal(SSL_set_session(c, resume), 1);
    }
    uint64_t before = kms_tls_hsm_sign_count();
    int r = kms_test_tls_handshake(c, s, NULL);
    if (hsm_signs != NULL) {
        *hsm_signs = kms_tls_hsm_sign_count() - before;
    }
    if (r == 0) {
        kms_test_tls_exchange(c, s);
        if (version != NULL) {
            *version = SSL_version(c);
        }
        if (serial != NULL) {
            *serial = ASN1_INTEGER_get(X509_get0_serialNumber(SSL_get0_peer_certificate(c)));
        }
        if (session != NULL) {
            *session = SSL_get1_session(c);
        }
        r = SSL_session_reused(c) ? 1 : 0;
    }
    SSL_free(c);
    SSL_free(s);
    return r;
}

/* ---- Handshakes ------------------------------------------------------------------------------*/
static void handshakes_with(const hsm_leaf *l, const char *const *tls12_sigalgs)
{
    kms_tls_server *srv = hsm_server(l, NULL);
    SSL_CTX *c13 = client_ctx(0, NULL);
    int version = 0;
    uint64_t signs = 0;
    long serial = 0;
    assert_int_equal(connect_once(srv, c13, NULL, &version, &signs, &serial, NULL), 0);
    assert_int_equal(version, TLS1_3_VERSION);
    assert_int_equal(signs, 1); /* CertificateVerify, in the HSM */
    assert_int_equal(serial, l->serial);
    for (size_t i = 0; tls12_sigalgs[i] != NULL; i++) {
        SSL_CTX *c12 = client_ctx(TLS1_2_VERSION, tls12_sigalgs[i]);
        assert_int_equal(connect_once(srv, c12, NULL, &version, &signs, NULL, NULL), 0);
        assert_int_equal(version, TLS1_2_VERSION);
        assert_int_equal(signs, 1); /* ServerKeyExchange, in the HSM */
        SSL_CTX_free(c12);
    }
    SSL_CTX_free(c13);
    kms_tls_server_free(srv);
}

/* TLS 1.2 clients may ask for SHA-384 and SHA-512 with a P-256 key: signed as their truncation
 * to the curve's size. */
static void p256_in_the_hsm(void **state)
{
    static const char *const tls12[] = {"ECDSA+SHA256", "ECDSA+SHA384", "ECDSA+SHA512", NULL};
    handshakes_with(&ec_leaf, tls12);
}

/* TLS 1.3's only P-521 scheme is ecdsa_secp521r1_sha512: a SHA-512 digest, signed whole. TLS
 * 1.2 needs a client that lists the certificate's curve among its groups (the kms profile's
 * clients do not list P-521). */
static void p521_in_the_hsm(void **state)
{
    static const char *const none[] = {NULL};
    static const char *const tls12[] = {"ECDSA+SHA512", "ECDSA+SHA384", "ECDSA+SHA256"};
    hsm_leaf l = {"tls-test-p521", "ECC_NIST_P521", NULL, NULL, NULL, 23};
    make_hsm_leaf(&l);
    handshakes_with(&l, none);
    kms_tls_server *srv = hsm_server(&l, NULL);
    for (size_t i = 0; i < sizeof tls12 / sizeof tls12[0]; i++) {
        SSL_CTX *c12 = client_ctx(TLS1_2_VERSION, tls12[i]);
        assert_int_equal(SSL_CTX_set1_groups_list(c12, "X25519:P-256:P-384:P-521"), 1);
        int version = 0;
        uint64_t signs = 0;
        assert_int_equal(connect_once(srv, c12, NULL, &version, &signs, NULL, NULL), 0);
        assert_int_equal(version, TLS1_2_VERSION);
        assert_int_equal(signs, 1);
        SSL_CTX_free(c12);
    }
    kms_tls_server_free(srv);
    leaf_clean_up(&l);
}

/* TLS 1.3 signs with RSA-PSS; TLS 1.2 with PSS or PKCS#1 v1.5. */
static void rsa2048_in_the_hsm(void **state)
{
    static const char *const tls12[] = {"RSA+SHA256", "RSA+SHA512", "RSA-PSS+SHA256",
                                        "rsa_pss_rsae_sha384", NULL};
    handshakes_with(&rsa_leaf, tls12);
}

/* A client that offers only what the key store cannot sign (ECDSA with SHA-1, refused by the
 * profile's security level anyway) gets no handshake, not a wrong signature. */
static void unsignable_scheme_refused(void **state)
{
    kms_tls_server *srv = hsm_server(&ec_leaf, NULL);
    SSL_CTX *c = client_ctx(TLS1_2_VERSION, "ECDSA+SHA224");
    SSL_CTX_set_security_level(c, 0);
    assert_int_equal(connect_once(srv, c, NULL, NULL, NULL, NULL, NULL), -1);
    SSL_CTX_free(c);
    kms_tls_server_free(srv);
}

/* ---- The key ---------------------------------------------------------------------------------*/
static void signature_verifies(const hsm_leaf *l, bool pss)
{
    static const unsigned char msg[] = "a handshake transcript";
    unsigned char sig[1024];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(
        EVP_DigestSignInit_ex(md, &pctx, "SHA384", kms_tls_hsm_libctx(), NULL, l->pkey, NULL), 1);
    if (pss) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    assert_int_equal(EVP_DigestSign(md, sig, &sig_len, msg, sizeof msg), 1);
    EVP_MD_CTX_free(md);
    md = EVP_MD_CTX_new();
    pctx = NULL;
    assert_int_equal(EVP_DigestVerifyInit(md, &pctx, EVP_sha384(), NULL, l->pub), 1);
    if (pss) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48), 1);
    }
    assert_int_equal(EVP_DigestVerify(md, sig, sig_len, msg, sizeof msg), 1);
    EVP_MD_CTX_free(md);
}

static void signatures_verify(void **state)
{
    signature_verifies(&ec_leaf, false);
    signature_verifies(&rsa_leaf, false);
    signature_verifies(&rsa_leaf, true);
    /* Prehashed (EVP_PKEY_sign): a SHA-256 digest. */
    unsigned char digest[32] = {1, 2, 3};
    unsigned char sig[128];
    size_t sig_len = sizeof sig;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(kms_tls_hsm_libctx(), ec_leaf.pkey, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_int_equal(EVP_PKEY_sign(ctx, sig, &sig_len, digest, sizeof digest), 1);
    EVP_PKEY_CTX_free(ctx);
    ctx = EVP_PKEY_CTX_new(ec_leaf.pub, NULL);
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof digest), 1);
    EVP_PKEY_CTX_free(ctx);
}

/* X.509 structures signed by the key (a CSR here): the provider names the signature's
 * AlgorithmIdentifier, for ECDSA and RSA PKCS#1 v1.5. */
static void csr_signed_in_the_hsm(void **state)
{
    const hsm_leaf *leaves[] = {&ec_leaf, &rsa_leaf};
    for (size_t i = 0; i < 2; i++) {
        X509_REQ *req = X509_REQ_new();
        assert_non_null(req);
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"csr.test", -1, -1, 0);
        assert_int_equal(X509_REQ_set_pubkey(req, leaves[i]->pub), 1);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", kms_tls_hsm_libctx(), NULL,
                                               leaves[i]->pkey, NULL),
                         1);
        assert_true(X509_REQ_sign_ctx(req, md) > 0);
        assert_int_equal(X509_REQ_verify(req, leaves[i]->pub), 1);
        EVP_MD_CTX_free(md);
        X509_REQ_free(req);
    }
    /* RSA-PSS: refused cleanly (the key store's salt has no AlgorithmIdentifier here). */
    X509_REQ *req = X509_REQ_new();
    assert_int_equal(X509_REQ_set_pubkey(req, rsa_leaf.pub), 1);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(
        EVP_DigestSignInit_ex(md, &pctx, "SHA256", kms_tls_hsm_libctx(), NULL, rsa_leaf.pkey, NULL),
        1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
    assert_true(X509_REQ_sign_ctx(req, md) <= 0);
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    X509_REQ_free(req);
}

/* What OpenSSL says of the key: the certificate's sizes and curve, and its public half. */
static void key_answers_like_its_public_half(void **state)
{
    char group[32] = "";
    assert_int_equal(EVP_PKEY_get_bits(ec_leaf.pkey), 256);
    assert_int_equal(EVP_PKEY_get_security_bits(ec_leaf.pkey), 128);
    assert_int_equal(EVP_PKEY_get_size(ec_leaf.pkey), EVP_PKEY_get_size(ec_leaf.pub));
    assert_int_equal(EVP_PKEY_get_group_name(ec_leaf.pkey, group, sizeof group, NULL), 1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(EVP_PKEY_get_bits(rsa_leaf.pkey), 2048);
    assert_int_equal(EVP_PKEY_get_size(rsa_leaf.pkey), 256);
    assert_int_equal(EVP_PKEY_eq(ec_leaf.pkey, ec_leaf.pub), 1);
    assert_int_equal(EVP_PKEY_eq(ec_leaf.pub, ec_leaf.pkey), 1);
    assert_int_not_equal(EVP_PKEY_eq(ec_leaf.pkey, rsa_leaf.pub), 1);
    OSSL_PARAM *params = NULL;
    assert_int_equal(EVP_PKEY_todata(ec_leaf.pkey, EVP_PKEY_PUBLIC_KEY, &params), 1);
    assert_non_null(OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PUB_KEY));
    OSSL_PARAM_free(params);
}

/* The private key never leaves: no export, no PEM or DER of it, no decryption. */
static void private_key_not_exportable(void **state)
{
    const hsm_leaf *leaves[] = {&ec_leaf, &rsa_leaf};
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *k = leaves[i]->pkey;
        OSSL_PARAM *params = NULL;
        assert_int_not_equal(EVP_PKEY_todata(k, EVP_PKEY_KEYPAIR, &params), 1);
        assert_null(params);
        BIO *bio = BIO_new(BIO_s_mem());
        assert_int_not_equal(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
        assert_int_not_equal(PEM_write_bio_PKCS8PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
        assert_int_equal(BIO_pending(bio), 0);
        BIO_free(bio);
        unsigned char *der = NULL;
        assert_true(i2d_PrivateKey(k, &der) <= 0);
        assert_null(der);
        EVP_PKEY *copy = EVP_PKEY_dup(k);
        if (copy != NULL) { /* a duplicate is the same reference, no more */
            assert_int_not_equal(EVP_PKEY_todata(copy, EVP_PKEY_KEYPAIR, &params), 1);
            EVP_PKEY_free(copy);
        }
        ERR_clear_error();
    }
    /* Decryption and key agreement: no such operation. */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(kms_tls_hsm_libctx(), rsa_leaf.pkey, NULL);
    assert_non_null(ctx);
    assert_int_not_equal(EVP_PKEY_decrypt_init(ctx), 1);
    EVP_PKEY_CTX_free(ctx);
    ctx = EVP_PKEY_CTX_new_from_pkey(kms_tls_hsm_libctx(), ec_leaf.pkey, NULL);
    assert_non_null(ctx);
    assert_int_not_equal(EVP_PKEY_derive_init(ctx), 1);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
}

static void token_says_sensitive(void **state)
{
    const hsm_leaf *leaves[] = {&ec_leaf, &rsa_leaf};
    for (size_t i = 0; i < 2; i++) {
        kms_hsm_key_attrs a;
        assert_int_equal(kms_keystore_cert_key_attributes(&ks, leaves[i]->key_name, &a), 0);
        assert_true(a.token && a.sensitive && a.always_sensitive);
        assert_false(a.extractable);
        assert_true(a.never_extractable);
    }
}

/* A key by reference must be the key store's, and its public half the one given. */
static void reference_checked(void **state)
{
    EVP_PKEY *other = EVP_EC_gen("P-256");
    unsigned char *spki = NULL;
    int n = i2d_PUBKEY(other, &spki);
    assert_true(n > 0);
    assert_null(kms_tls_hsm_pkey_new(&ks, ec_leaf.key_name, "ECC_NIST_P256", spki, (size_t)n));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_null(kms_tls_hsm_pkey_new(&ks, "no-such-key", "ECC_NIST_P256", spki, (size_t)n));
    assert_int_equal(kms_last_error(), KMS_ERR_NOT_FOUND);
    assert_null(kms_tls_hsm_pkey_new(&ks, ec_leaf.key_name, "RSA_2048", spki, (size_t)n));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_null(kms_tls_hsm_pkey_new(&ks, ec_leaf.key_name, "ECC_NIST_P256", spki, 10));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    OPENSSL_free(spki);
    EVP_PKEY_free(other);
    /* The pair's own public half under another curve's spec, or a spec that cannot sign. */
    spki = NULL;
    n = i2d_PUBKEY(ec_leaf.pub, &spki);
    assert_true(n > 0);
    static const char *const wrong[] = {"ECC_NIST_P384", "ECC_NIST_P521", "ECC_NIST_P224",
                                        "ECC_SECG_P256K1", "HMAC_256"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        assert_null(kms_tls_hsm_pkey_new(&ks, ec_leaf.key_name, wrong[i], spki, (size_t)n));
        assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    }
    OPENSSL_free(spki);
}

/* ---- Servers from memory ---------------------------------------------------------------------*/
static void key_must_match_certificate(void **state)
{
    kms_tls_options o = {0};
    assert_null(kms_tls_server_new_with_key(&o, ec_leaf.chain_pem, strlen(ec_leaf.chain_pem),
                                            rsa_leaf.pkey));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_null(kms_tls_server_new_with_key(&o, "not PEM", 7, ec_leaf.pkey));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    o.cert_chain_file = "x.crt";
    o.key_file = "x.key";
    assert_null(kms_tls_server_new_with_key(&o, ec_leaf.chain_pem, strlen(ec_leaf.chain_pem),
                                            ec_leaf.pkey));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
}

/* A chain whose intermediate cannot be read (damaged in storage) is refused, not served without
 * it: as SSL_CTX_use_certificate_chain_file does with the same text. Text after the last block
 * that holds no further block is fine. */
static void damaged_chain_refused(void **state)
{
    static const char bad[] = "-----BEGIN CERTIFICATE-----\nMIIB!!not base64!!\n"
                              "-----END CERTIFICATE-----\n";
    static const char end_line[] = "-----END CERTIFICATE-----\n";
    const char *end = strstr(ec_leaf.chain_pem, end_line);
    assert_non_null(end);
    size_t leaf_len = (size_t)(end - ec_leaf.chain_pem) + strlen(end_line);
    size_t n = strlen(ec_leaf.chain_pem);
    char *pem = calloc(1, n + sizeof bad + 16);
    assert_non_null(pem);
    memcpy(pem, ec_leaf.chain_pem, leaf_len);
    strcat(pem, bad); /* the leaf, then a damaged intermediate */
    kms_tls_options o = {0};
    assert_null(kms_tls_server_new_with_key(&o, pem, strlen(pem), ec_leaf.pkey));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    memcpy(pem, ec_leaf.chain_pem, n + 1);
    strcat(pem, "\n# the end\n");
    kms_tls_server *srv = kms_tls_server_new_with_key(&o, pem, strlen(pem), ec_leaf.pkey);
    assert_non_null(srv);
    kms_tls_server_free(srv);
    free(pem);
}

/* A renewal: the new certificate and key for new handshakes, the open connection keeps going. */
static void reload_from_memory(void **state)
{
    kms_tls_server *srv = hsm_server(&ec_leaf, NULL);
    SSL_CTX *cctx = client_ctx(0, NULL);
    SSL *old_c = kms_tls_client_ssl_new(cctx, "server.test");
    SSL *old_s = kms_tls_server_ssl_new(srv);
    assert_int_equal(kms_test_tls_handshake(old_c, old_s, NULL), 0);
    assert_int_equal(kms_tls_server_reload_with_key(srv, rsa_leaf.chain_pem,
                                                    strlen(rsa_leaf.chain_pem), rsa_leaf.pkey),
                     0);
    long serial = 0;
    assert_int_equal(connect_once(srv, cctx, NULL, NULL, NULL, &serial, NULL), 0);
    assert_int_equal(serial, rsa_leaf.serial);
    kms_test_tls_exchange(old_c, old_s);
    /* A failed reload (key of another certificate) leaves the current context. */
    assert_int_equal(kms_tls_server_reload_with_key(srv, ec_leaf.chain_pem,
                                                    strlen(ec_leaf.chain_pem), rsa_leaf.pkey),
                     -1);
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    assert_int_equal(kms_tls_server_reload(srv, NULL, NULL), 0);
    assert_int_equal(connect_once(srv, cctx, NULL, NULL, NULL, &serial, NULL), 0);
    assert_int_equal(serial, rsa_leaf.serial);
    SSL_free(old_c);
    SSL_free(old_s);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
}

/* Threads making handshakes on one HSM-held key (the key store's session pool under load) while
 * the main thread reloads between the P-256 and the RSA key. */
typedef struct worker {
    kms_tls_server *srv;
    SSL_CTX *cctx;
    int failures;
} worker;

static void *handshaker(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 15; i++) {
        SSL *c = kms_tls_client_ssl_new(w->cctx, "server.test");
        SSL *s = kms_tls_server_ssl_new(w->srv);
        long serial = 0;
        if (c == NULL || s == NULL || kms_test_tls_handshake(c, s, NULL) != 0) {
            w->failures++;
        } else {
            serial = ASN1_INTEGER_get(X509_get0_serialNumber(SSL_get0_peer_certificate(c)));
            w->failures += serial != ec_leaf.serial && serial != rsa_leaf.serial;
        }
        SSL_free(c);
        SSL_free(s);
    }
    return NULL;
}

static void concurrent_handshakes_and_reloads(void **state)
{
    kms_tls_server *srv = hsm_server(&ec_leaf, NULL);
    SSL_CTX *cctx = client_ctx(0, NULL);
    worker w[3];
    pthread_t t[3];
    uint64_t before = kms_tls_hsm_sign_count();
    for (int i = 0; i < 3; i++) {
        w[i] = (worker){srv, cctx, 0};
        assert_int_equal(pthread_create(&t[i], NULL, handshaker, &w[i]), 0);
    }
    for (int i = 0; i < 10; i++) {
        const hsm_leaf *l = i % 2 == 0 ? &rsa_leaf : &ec_leaf;
        assert_int_equal(
            kms_tls_server_reload_with_key(srv, l->chain_pem, strlen(l->chain_pem), l->pkey), 0);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(kms_tls_hsm_sign_count() - before, 45);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
}

/* A key the caller holds as PKCS#8 DER (an exportable managed certificate's) serves too, with
 * no HSM signature. */
static void pkcs8_key_from_memory(void **state)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
    unsigned char *der = NULL;
    int n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    assert_true(n > 0);
    EVP_PKEY *key = kms_tls_pkey_from_pkcs8(der, (size_t)n);
    assert_non_null(key);
    X509 *cert = make_cert(k, "server.test", 23, false);
    char *pem = pem_of(cert, ca_cert);
    kms_tls_options o = {0};
    kms_tls_server *srv = kms_tls_server_new_with_key(&o, pem, strlen(pem), key);
    assert_non_null(srv);
    SSL_CTX *cctx = client_ctx(0, NULL);
    uint64_t signs = 0;
    long serial = 0;
    assert_int_equal(connect_once(srv, cctx, NULL, NULL, &signs, &serial, NULL), 0);
    assert_int_equal(signs, 0);
    assert_int_equal(serial, 23);
    assert_null(kms_tls_pkey_from_pkcs8(der, 5));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
    free(pem);
    X509_free(cert);
    EVP_PKEY_free(key);
    OPENSSL_clear_free(der, (size_t)n);
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(p256_in_the_hsm),
        cmocka_unit_test(p521_in_the_hsm),
        cmocka_unit_test(rsa2048_in_the_hsm),
        cmocka_unit_test(unsignable_scheme_refused),
        cmocka_unit_test(signatures_verify),
        cmocka_unit_test(csr_signed_in_the_hsm),
        cmocka_unit_test(key_answers_like_its_public_half),
        cmocka_unit_test(private_key_not_exportable),
        cmocka_unit_test(token_says_sensitive),
        cmocka_unit_test(reference_checked),
        cmocka_unit_test(key_must_match_certificate),
        cmocka_unit_test(damaged_chain_refused),
        cmocka_unit_test(reload_from_memory),
        cmocka_unit_test(concurrent_handshakes_and_reloads),
        cmocka_unit_test(pkcs8_key_from_memory),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
