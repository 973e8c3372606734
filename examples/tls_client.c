/* A TLS client with libkms's TLS helper: connects, verifies the server's certificate and name,
 * and prints what the server says.
 *
 *   tls_client [-a ALPN] [-c CERT -k KEY] HOST PORT [CA_FILE]
 *
 * CA_FILE: the CAs to trust (default: the system trust store). -c/-k: a client certificate for
 * mutual TLS. The negotiated version, suite and ALPN protocol go to stderr.
 *
 * Build: cc tls_client.c $(pkg-config --cflags --libs libkms openssl) */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "kms/tls.h"

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

int main(int argc, char **argv)
{
    kms_tls_options opts = {0};
    int c;
    while ((c = getopt(argc, argv, "a:c:k:")) != -1) {
        switch (c) {
        case 'a':
            opts.alpn = optarg;
            break;
        case 'c':
            opts.cert_chain_file = optarg;
            break;
        case 'k':
            opts.key_file = optarg;
            break;
        default:
            return 2;
        }
    }
    if (argc - optind < 2 || argc - optind > 3) {
        fprintf(stderr, "usage: tls_client [-a ALPN] [-c CERT -k KEY] HOST PORT [CA_FILE]\n");
        return 2;
    }
    const char *host = argv[optind];
    opts.ca_file = argv[optind + 2]; /* NULL when absent: the system trust store */
    SSL_CTX *ctx = kms_tls_client_ctx_new(&opts);
    if (ctx == NULL) {
        fprintf(stderr, "tls_client: %s\n", kms_last_error_message());
        return 1;
    }
    int rc = 1;
    int fd = connect_to(host, argv[optind + 1]);
    SSL *ssl = kms_tls_client_ssl_new(ctx, host);
    if (fd < 0 || ssl == NULL) {
        fprintf(stderr, "tls_client: cannot connect to %s\n", host);
        goto out;
    }
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
        long v = SSL_get_verify_result(ssl);
        fprintf(stderr, "tls_client: handshake failed: %s\n",
                v != X509_V_OK ? X509_verify_cert_error_string(v)
                               : ERR_reason_error_string(ERR_peek_error()));
        goto out;
    }
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    BIGNUM *serial =
        ASN1_INTEGER_to_BN(X509_get0_serialNumber(SSL_get0_peer_certificate(ssl)), NULL);
    char *hex = serial ? BN_bn2hex(serial) : NULL;
    fprintf(stderr, "tls_client: %s %s alpn=%.*s serial=%s\n", SSL_get_version(ssl),
            SSL_get_cipher_name(ssl), (int)alpn_len, alpn ? (const char *)alpn : "",
            hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(serial);
    char buf[4096];
    int n;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) {
        fwrite(buf, 1, (size_t)n, stdout);
    }
    SSL_shutdown(ssl);
    rc = 0;
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}
