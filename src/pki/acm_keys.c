/* Keys of managed certificates that are not in the HSM (acm.h): sealed under a data key of a KMS
 * key, opened for ExportCertificate (encrypted PKCS#8 PEM) and the TLS helper; and
 * ImportCertificate, whose key is sealed the same way. */
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "pki/acm_internal.h"
#include "util/secmem.h"
#include "util/util.h"

#define SEAL_VERSION 0x01
#define DATA_KEY_LEN crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
/* ACM's caps: a private key of at most 5 KB (5,120 bytes: an RSA 4096 PKCS#8 PEM is about
 * 3.3 KB), a certificate and a chain. */
#define KEY_MAX 5120
#define CERT_MAX 32768
#define CHAIN_MAX (2 * 1024 * 1024)

/* ---- Sealing ------------------------------------------------------------------------------- */

int kms_acm_seal(const kms_keystore *ks, const kms_key_record *rec, const char *arn,
                 const uint8_t *pkcs8, size_t len, uint8_t **blob, size_t *blob_len)
{
    int r = -1;
    kms_buf wrapped, out;
    kms_context_entry entry = {"aws:acm:arn", arn};
    kms_encryption_context ctx = {&entry, 1};
    uint8_t *dk = kms_secure_alloc(DATA_KEY_LEN);
    uint8_t nonce[NONCE_LEN];
    *blob = NULL;
    *blob_len = 0;
    kms_buf_init(&wrapped, false);
    kms_buf_init(&out, false);
    if (dk == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    randombytes_buf(dk, DATA_KEY_LEN);
    randombytes_buf(nonce, sizeof nonce);
    if (kms_keystore_seal(ks, rec, dk, DATA_KEY_LEN, &ctx, &wrapped) != 0 ||
        kms_buf_append_u8(&out, SEAL_VERSION) != 0 ||
        kms_buf_append_be16_bytes(&out, wrapped.data, wrapped.len) != 0 ||
        kms_buf_append(&out, nonce, sizeof nonce) != 0 ||
        kms_buf_reserve(&out, len + TAG_LEN) != 0) {
        goto out;
    }
    unsigned long long ct_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out.data + out.len, &ct_len, pkcs8, len,
                                               (const uint8_t *)arn, strlen(arn), NULL, nonce, dk);
    out.len += (size_t)ct_len;
    *blob = out.data;
    *blob_len = out.len;
    out.data = NULL;
    r = 0;
out:
    kms_secure_free(dk);
    kms_buf_clean_up(&wrapped);
    kms_buf_clean_up(&out);
    return r;
}

int kms_acm_key_open(const kms_keystore *ks, const kms_acm_cert *c, kms_buf *pkcs8)
{
    int r = -1;
    char arn[KMS_ARN_MAX];
    kms_reader rd;
    uint8_t version = 0;
    const uint8_t *wrapped = NULL, *nonce = NULL;
    size_t wrapped_len = 0;
    kms_blob blob;
    kms_key_record rec;
    kms_buf dk;
    memset(&rec, 0, sizeof rec);
    kms_buf_init(&dk, true);
    /* Bound to the row's own account and id: a blob of another certificate, or of the same id
     * under another account, does not open. */
    kms_keystore view;
    kms_pki_keystore_as(ks, c->account_id, &view);
    kms_acm_arn(&view, c->cert_id, arn);
    kms_context_entry entry = {"aws:acm:arn", arn};
    kms_encryption_context ctx = {&entry, 1};
    KMS_ENSURE(c->sealed_key != NULL, KMS_ERR_VALIDATION,
               "The private key of certificate %s is held in the HSM and cannot leave it", arn);
    kms_reader_init(&rd, c->sealed_key, c->sealed_key_len);
    if (kms_reader_u8(&rd, &version) != 0 || version != SEAL_VERSION ||
        kms_reader_be16_bytes(&rd, &wrapped, &wrapped_len) != 0 || wrapped == NULL ||
        kms_reader_bytes(&rd, NONCE_LEN, &nonce) != 0 || rd.left < TAG_LEN) {
        kms_raise(KMS_ERR_INTERNAL, "the sealed key of certificate %s is damaged", arn);
        goto out;
    }
    if (kms_blob_parse(wrapped, wrapped_len, &blob) != 0 ||
        kms_keystore_key_get(ks, blob.key_id, &rec) != 0 ||
        kms_keystore_open(ks, &rec, &blob, &ctx, &dk) != 0) {
        goto out;
    }
    if (dk.len != DATA_KEY_LEN || kms_buf_reserve(pkcs8, rd.left - TAG_LEN) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "the sealed key of certificate %s is damaged", arn);
        goto out;
    }
    unsigned long long pt_len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pkcs8->data + pkcs8->len, &pt_len, NULL, rd.p,
                                                   rd.left, (const uint8_t *)arn, strlen(arn),
                                                   nonce, dk.data) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "the sealed key of certificate %s does not authenticate", arn);
        goto out;
    }
    pkcs8->len += (size_t)pt_len;
    r = 0;
out:
    kms_key_record_clean_up(&rec);
    kms_buf_clean_up(&dk);
    return r;
}

int kms_acm_pkcs8(EVP_PKEY *key, kms_buf *out)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    int len = p8 != NULL ? i2d_PKCS8_PRIV_KEY_INFO(p8, NULL) : -1;
    int r = -1;
    if (len > 0 && kms_buf_reserve(out, (size_t)len) == 0) {
        unsigned char *p = out->data + out->len;
        if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) == len) {
            out->len += (size_t)len;
            r = 0;
        }
    }
    PKCS8_PRIV_KEY_INFO_free(p8);
    return r == 0 ? 0 : kms_raise(KMS_ERR_INTERNAL, "cannot encode the private key");
}

/* PKCS#8 DER (as sealed) -> EVP_PKEY. */
static EVP_PKEY *pkcs8_key(const kms_buf *der)
{
    const unsigned char *p = der->data;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der->len);
    EVP_PKEY *k = p8 != NULL ? EVP_PKCS82PKEY(p8) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8);
    return k;
}

/* ---- Export -------------------------------------------------------------------------------- */

int kms_acm_export_key(const kms_keystore *ks, const kms_acm_cert *c, const uint8_t *passphrase,
                       size_t passphrase_len, char **pem)
{
    int r = -1;
    kms_buf der;
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;
    char *data = NULL;
    *pem = NULL;
    kms_buf_init(&der, true);
    /* ACM's ExportCertificate: a passphrase of 4 to 128 bytes, any ASCII character except #, $
     * and % (printable ones here: a control character or NUL could not be typed to open it). */
    KMS_ENSURE(passphrase_len >= 4 && passphrase_len <= 128, KMS_ERR_VALIDATION,
               "1 validation error detected: Value at 'passphrase' failed to satisfy constraint: "
               "Member must have length between 4 and 128");
    for (size_t i = 0; i < passphrase_len; i++) {
        uint8_t ch = passphrase[i];
        KMS_ENSURE(ch >= 0x20 && ch <= 0x7e && ch != '#' && ch != '$' && ch != '%',
                   KMS_ERR_VALIDATION,
                   "The passphrase may hold printable ASCII characters except #, $ and %% only");
    }
    if (kms_acm_key_open(ks, c, &der) != 0) {
        goto out;
    }
    key = pkcs8_key(&der);
    bio = BIO_new(BIO_s_secmem());
    /* RFC 8018 PBES2 with AES-256-CBC (OpenSSL's PBKDF2 with HMAC-SHA256), as ACM exports. */
    if (key == NULL || bio == NULL ||
        PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), (const char *)passphrase,
                                      (int)passphrase_len, NULL, NULL) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot encrypt the private key");
        goto out;
    }
    long n = BIO_get_mem_data(bio, &data);
    *pem = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (*pem == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(*pem, data, (size_t)n);
    (*pem)[n] = '\0';
    r = 0;
out:
    BIO_free(bio);
    EVP_PKEY_free(key);
    kms_buf_clean_up(&der);
    return r;
}

/* ---- Import -------------------------------------------------------------------------------- */

/* Never a prompt for a passphrase: an encrypted key is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static bool is_pem(const uint8_t *p, size_t n)
{
    return n > 10 && memmem(p, n, "-----BEGIN", 10) != NULL;
}

static X509 *cert_parse(const uint8_t *p, size_t n)
{
    if (!is_pem(p, n)) {
        return d2i_X509(NULL, &(const unsigned char *){p}, (long)n);
    }
    BIO *b = BIO_new_mem_buf(p, (int)n);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    return x;
}

static EVP_PKEY *key_parse(const uint8_t *p, size_t n)
{
    if (!is_pem(p, n)) {
        return d2i_AutoPrivateKey(NULL, &(const unsigned char *){p}, (long)n);
    }
    BIO *b = BIO_new_mem_buf(p, (int)n);
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    return k;
}

/* The chain: PEM certificates only (a private key or anything else among them is refused, never
 * stored), the first the issuer of the leaf and each the issuer of the one before (ACM's "the
 * certificate chain is not valid"). What is kept is the certificates re-encoded, nothing else
 * of the text given: *out (malloc'd). */
static int chain_build(const uint8_t *p, size_t n, X509 *leaf, uint8_t **out, size_t *out_len)
{
    int r = -1, count = 0;
    BIO *in = BIO_new_mem_buf(p, (int)n);
    BIO *keep = BIO_new(BIO_s_mem());
    X509 *prev = leaf, *x = NULL;
    char *name = NULL, *header = NULL, *data = NULL;
    unsigned char *der = NULL;
    long len = 0;
    *out = NULL;
    *out_len = 0;
    if (in == NULL || keep == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    while (PEM_read_bio(in, &name, &header, &der, &len) == 1) {
        bool cert = strcmp(name, "CERTIFICATE") == 0;
        const unsigned char *q = der;
        x = cert ? d2i_X509(NULL, &q, len) : NULL;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(der, (size_t)len); /* a key given by mistake is wiped */
        name = header = NULL;
        der = NULL;
        if (x == NULL) {
            kms_raise(KMS_ERR_VALIDATION, "CertificateChain must hold PEM-encoded certificates "
                                          "only");
            goto out;
        }
        if (X509_check_issued(x, prev) != X509_V_OK) {
            kms_raise(KMS_ERR_VALIDATION,
                      "The certificate chain is not valid: certificate %d of CertificateChain "
                      "did not issue the certificate before it (give the chain issuer first, up "
                      "to the root)",
                      count + 1);
            goto out;
        }
        if (PEM_write_bio_X509(keep, x) != 1) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        X509_free(prev == leaf ? NULL : prev);
        prev = x;
        x = NULL;
        count++;
    }
    long kept = BIO_get_mem_data(keep, &data);
    if (count == 0 || kept <= 0) {
        kms_raise(KMS_ERR_VALIDATION, "CertificateChain must hold PEM-encoded certificates");
        goto out;
    }
    *out = malloc((size_t)kept);
    if (*out == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(*out, data, (size_t)kept);
    *out_len = (size_t)kept;
    r = 0;
out:
    X509_free(x);
    X509_free(prev == leaf ? NULL : prev);
    BIO_free(in);
    BIO_free(keep);
    ERR_clear_error();
    return r;
}

static int64_t asn1_seconds(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    return t != NULL && ASN1_TIME_to_tm(t, &tm) == 1 ? (int64_t)timegm(&tm) : 0;
}

int kms_acm_cert_fill(X509 *x, kms_acm_cert *c)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    /* RFC 5280 4.1.2.2: a positive integer of at most 20 octets. */
    if (hex != NULL && (BN_is_negative(bn) || strlen(hex) >= sizeof c->serial)) {
        OPENSSL_free(hex);
        BN_free(bn);
        OPENSSL_free(der);
        return kms_raise(KMS_ERR_VALIDATION, "The certificate's serial number must be a positive "
                                             "integer of at most 20 octets (RFC 5280)");
    }
    bool ok = len > 0 && hex != NULL;
    if (ok) {
        for (size_t i = 0; hex[i] != '\0'; i++) {
            c->serial[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
        }
        c->serial[strlen(hex)] = '\0';
        free(c->certificate);
        c->certificate = malloc((size_t)len);
        ok = c->certificate != NULL;
    }
    if (ok) {
        memcpy(c->certificate, der, (size_t)len);
        c->certificate_len = (size_t)len;
        c->not_before = asn1_seconds(X509_get0_notBefore(x));
        c->not_after = asn1_seconds(X509_get0_notAfter(x));
    }
    OPENSSL_free(hex);
    BN_free(bn);
    OPENSSL_free(der);
    KMS_ENSURE(ok, KMS_ERR_INTERNAL, "cannot read the certificate");
    return 0;
}

/* ACM's KeyAlgorithm of an imported key: RSA_1024..4096, EC_prime256v1/secp384r1/secp521r1. */
static int key_algorithm(EVP_PKEY *k, char out[24])
{
    char curve[32] = "";
    int bits = EVP_PKEY_get_bits(k);
    if (EVP_PKEY_is_a(k, "RSA") && (bits == 1024 || bits == 2048 || bits == 3072 || bits == 4096)) {
        snprintf(out, 24, "RSA_%d", bits);
        return 0;
    }
    if (EVP_PKEY_is_a(k, "EC") &&
        EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof curve, NULL) == 1) {
        const char *name = strcmp(curve, "prime256v1") == 0  ? "EC_prime256v1"
                           : strcmp(curve, "secp384r1") == 0 ? "EC_secp384r1"
                           : strcmp(curve, "secp521r1") == 0 ? "EC_secp521r1"
                                                             : NULL;
        if (name != NULL) {
            snprintf(out, 24, "%s", name);
            return 0;
        }
    }
    return kms_raise(KMS_ERR_VALIDATION,
                     "The private key is of an algorithm ACM does not import: use RSA 1024 to "
                     "4096 bits or an EC key on P-256, P-384 or P-521");
}

/* DomainName (the subject's CN, else the first DNS name) and SubjectAlternativeNames. */
static int names_fill(X509 *x, kms_acm_cert *c)
{
    json_t *sans = json_array();
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    char cn[254] = "";
    KMS_ENSURE(sans != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) < 0) {
        cn[0] = '\0';
    }
    int bad = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            /* A dNSName is IA5String: ASCII, no NUL inside (else the name is not the one
             * shown). */
            const char *s = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
            int n = ASN1_STRING_length(g->d.dNSName);
            json_t *name = n > 0 && (int)strnlen(s, (size_t)n) == n ? json_string(s) : NULL;
            if (name == NULL) {
                GENERAL_NAMES_free(gens);
                json_decref(sans);
                return kms_raise(KMS_ERR_VALIDATION, "The certificate's subjectAltName holds a "
                                                     "DNS name that is not ASCII text");
            }
            bad |= json_array_append_new(sans, name);
        }
    }
    GENERAL_NAMES_free(gens);
    const char *first = json_string_value(json_array_get(sans, 0));
    snprintf(c->domain_name, sizeof c->domain_name, "%s",
             cn[0] != '\0' ? cn : (first != NULL ? first : ""));
    if (!bad && json_array_size(sans) == 0 && cn[0] != '\0') {
        json_t *name = json_string(cn);
        if (name == NULL) {
            json_decref(sans);
            return kms_raise(KMS_ERR_VALIDATION, "The certificate's CommonName is not UTF-8 text");
        }
        bad = json_array_append_new(sans, name);
    }
    c->sans = bad ? NULL : json_dumps(sans, JSON_COMPACT);
    json_decref(sans);
    KMS_ENSURE(c->sans != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

int kms_acm_import_parse(const kms_acm_import_params *p, kms_acm_cert *c, kms_buf *pkcs8)
{
    int r = -1;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    KMS_ENSURE(p->certificate_len <= CERT_MAX && p->private_key_len <= KEY_MAX &&
                   p->chain_len <= CHAIN_MAX,
               KMS_ERR_VALIDATION,
               "Certificate is at most 32 KB, PrivateKey 5 KB (5,120 bytes) and CertificateChain "
               "2 MB");
    x = cert_parse(p->certificate, p->certificate_len);
    if (x == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "Could not parse the certificate: give it as PEM or DER");
        goto out;
    }
    key = key_parse(p->private_key, p->private_key_len);
    if (key == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "Could not parse the private key: give it unencrypted, as "
                                      "PEM or DER");
        goto out;
    }
    if (X509_check_private_key(x, key) != 1) {
        kms_raise(KMS_ERR_VALIDATION, "The private key does not match the public key in the "
                                      "certificate");
        goto out;
    }
    if (key_algorithm(key, c->key_algorithm) != 0 || names_fill(x, c) != 0 ||
        kms_acm_cert_fill(x, c) != 0 || kms_acm_pkcs8(key, pkcs8) != 0) {
        goto out;
    }
    if (c->not_after <= p->now) {
        kms_raise(KMS_ERR_VALIDATION, "The certificate has expired");
        goto out;
    }
    /* ACM's prerequisites: an X.509 version 3 certificate with an Issuer, valid now. */
    if (c->not_before > p->now) {
        kms_raise(KMS_ERR_VALIDATION, "The certificate is not valid yet: the current time must be "
                                      "between its NotBefore and NotAfter");
        goto out;
    }
    if (X509_get_version(x) != X509_VERSION_3 ||
        X509_NAME_entry_count(X509_get_issuer_name(x)) == 0) {
        kms_raise(KMS_ERR_VALIDATION, "The certificate must be an X.509 version 3 certificate "
                                      "with an Issuer");
        goto out;
    }
    if (p->chain != NULL && p->chain_len > 0) {
        free(c->chain);
        c->chain = NULL;
        if (chain_build(p->chain, p->chain_len, x, &c->chain, &c->chain_len) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_free(x);
    return r;
}

/* Parses and checks everything before anything is written, then seals the key. */
static int import_build(const kms_keystore *ks, const kms_acm_import_params *p, kms_acm_cert *c,
                        kms_buf *pkcs8)
{
    char arn[KMS_ARN_MAX];
    KMS_GUARD(kms_acm_import_parse(p, c, pkcs8));
    kms_acm_arn(ks, c->cert_id, arn);
    return kms_acm_seal(ks, p->seal_with, arn, pkcs8->data, pkcs8->len, &c->sealed_key,
                        &c->sealed_key_len);
}

int kms_acm_import(const kms_keystore *ks, const kms_acm_cert *existing,
                   const kms_acm_import_params *p, kms_acm_cert *out)
{
    int r = -1;
    kms_buf pkcs8;
    memset(out, 0, sizeof *out);
    kms_buf_init(&pkcs8, true);
    if (existing != NULL && strcmp(existing->type, "IMPORTED") != 0) {
        return kms_raise(KMS_ERR_VALIDATION,
                         "Certificate %s was issued by ACM: only imported certificates can be "
                         "reimported",
                         existing->cert_id);
    }
    if (existing != NULL) {
        snprintf(out->cert_id, sizeof out->cert_id, "%s", existing->cert_id);
        out->generation = existing->generation + 1;
        out->created_at = existing->created_at;
    } else if (kms_uuid_new(out->cert_id) != 0) {
        goto out;
    } else {
        out->generation = 1;
        out->created_at = p->now;
    }
    snprintf(out->account_id, sizeof out->account_id, "%s", ks->account_id);
    snprintf(out->key_storage, sizeof out->key_storage, "SEALED");
    snprintf(out->status, sizeof out->status, "ISSUED");
    snprintf(out->type, sizeof out->type, "IMPORTED");
    snprintf(out->renewal_eligibility, sizeof out->renewal_eligibility, "INELIGIBLE");
    out->imported_at = p->now;
    if (import_build(ks, p, out, &pkcs8) != 0) {
        goto out;
    }
    if (existing != NULL ? kms_acm_db_replace(ks, out) : kms_acm_db_insert(ks, out, NULL)) {
        goto out;
    }
    r = 0;
out:
    kms_buf_clean_up(&pkcs8);
    if (r != 0) {
        kms_acm_cert_clean_up(out);
    }
    return r;
}
