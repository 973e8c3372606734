/* The verified peer of a TLS connection: its subject and subjectAltNames. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "tls/tls_ctx.h"
#include "util/error.h"
#include "util/util.h"

void kms_tls_peer_clean_up(kms_tls_peer *peer)
{
    if (peer == NULL) {
        return;
    }
    free(peer->subject);
    for (size_t i = 0; i < peer->n_sans; i++) {
        free(peer->sans[i]);
    }
    free(peer->sans);
    memset(peer, 0, sizeof *peer);
}

static char *subject_rfc2253(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio == NULL) {
        return NULL;
    }
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        out = n >= 0 ? strndup(data ? data : "", (size_t)n) : NULL;
    }
    BIO_free(bio);
    return out;
}

/* An IA5String SAN as text; NULL for one with an embedded NUL (a name that would read as
 * another: "good.example\0.evil"). */
static char *ia5_text(const char *prefix, const ASN1_IA5STRING *s)
{
    int n = ASN1_STRING_length(s);
    const unsigned char *p = ASN1_STRING_get0_data(s);
    if (n < 0 || memchr(p, '\0', (size_t)n) != NULL) {
        return NULL;
    }
    return kms_strdup_printf("%s:%.*s", prefix, n, (const char *)p);
}

static char *ip_text(const ASN1_OCTET_STRING *s)
{
    char buf[INET6_ADDRSTRLEN];
    int n = ASN1_STRING_length(s);
    int af = n == 4 ? AF_INET : n == 16 ? AF_INET6 : -1;
    if (af < 0 || inet_ntop(af, ASN1_STRING_get0_data(s), buf, sizeof buf) == NULL) {
        return NULL;
    }
    return kms_strdup_printf("IP:%s", buf);
}

/* The DNS, IP, URI and email entries; other kinds (directory names, other names) are left out. */
static int collect_sans(X509 *cert, kms_tls_peer *peer)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (names == NULL) {
        return 0;
    }
    int r = -1;
    int count = sk_GENERAL_NAME_num(names);
    peer->sans = calloc(count > 0 ? (size_t)count : 1, sizeof *peer->sans);
    if (peer->sans == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (int i = 0; i < count; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        char *text = NULL;
        switch (gn->type) {
        case GEN_DNS:
            text = ia5_text("DNS", gn->d.dNSName);
            break;
        case GEN_URI:
            text = ia5_text("URI", gn->d.uniformResourceIdentifier);
            break;
        case GEN_EMAIL:
            text = ia5_text("email", gn->d.rfc822Name);
            break;
        case GEN_IPADD:
            text = ip_text(gn->d.iPAddress);
            break;
        default:
            break;
        }
        if (text != NULL) {
            peer->sans[peer->n_sans++] = text;
        }
    }
    r = 0;
out:
    GENERAL_NAMES_free(names);
    return r;
}

int kms_tls_peer_get(const SSL *ssl, kms_tls_peer *peer)
{
    kms_error_clear();
    KMS_ENSURE(peer != NULL, KMS_ERR_VALIDATION, "no peer to fill");
    memset(peer, 0, sizeof *peer);
    KMS_ENSURE(ssl != NULL && SSL_is_init_finished(ssl), KMS_ERR_INVALID_STATE,
               "the TLS handshake is not done");
    X509 *cert = SSL_get0_peer_certificate(ssl);
    KMS_ENSURE(cert != NULL, KMS_ERR_NOT_FOUND, "the peer sent no certificate");
    long v = SSL_get_verify_result(ssl);
    KMS_ENSURE(v == X509_V_OK, KMS_ERR_ACCESS_DENIED, "the peer's certificate did not verify: %s",
               X509_verify_cert_error_string(v));
    int r = -1;
    if ((peer->subject = subject_rfc2253(cert)) == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "reading the peer's subject");
        goto out;
    }
    if ((r = collect_sans(cert, peer)) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        kms_tls_peer_clean_up(peer);
    }
    return r;
}
