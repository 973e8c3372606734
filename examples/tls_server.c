/* A TLS server with libkms's TLS helper: it answers "hello over TLS" to every client, then closes.
 *
 *   tls_server [OPTIONS] PORT CERT_CHAIN KEY       certificate and key from PEM files
 *   tls_server [OPTIONS] -A CERT_ARN PORT          a managed certificate of the KMS home
 *
 *   -m         the "modern" profile (TLS 1.3 only); default: Mozilla's "intermediate"
 *   -a ALPN    protocols to accept, comma-separated ("h2,http/1.1")
 *   -c FILE    mutual TLS: require a client certificate signed by a CA in FILE
 *   -r FILE    and check it against the CRLs in FILE
 *   -A ARN     serve the managed certificate ARN (kmsctl acm request-certificate): its key stays
 *              in the HSM if the certificate keeps it there; a renewal (kmsctl acm
 *              renew-certificate, or the scheduler's) reaches the next client, no restart
 *   -t KEY     session ticket keys from the HMAC_256 CMK KEY (id, ARN or alias)
 *   -H HOME    the KMS home for -A and -t (default: $KMS_HOME, else ~/.kms)
 *
 * It listens on 127.0.0.1:PORT and prints "listening on PORT" once ready. SIGHUP reloads the
 * certificate, key and CRL files: new connections get the new certificate, nothing is dropped.
 *
 * Build: cc tls_server.c $(pkg-config --cflags --libs libkms openssl) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "kms/tls.h"

static volatile sig_atomic_t reload_wanted;

static void on_sighup(int sig)
{
    (void)sig;
    reload_wanted = 1;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0) {
        perror("listen");
        exit(1);
    }
    return fd;
}

/* One client: handshake, greeting, close_notify. */
static void serve(kms_tls_server *server, int fd)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL *ssl = kms_tls_server_ssl_new(server);
    if (ssl == NULL) {
        fprintf(stderr, "tls_server: %s\n", kms_last_error_message());
        return;
    }
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
        fprintf(stderr, "tls_server: handshake refused: %s\n",
                ERR_reason_error_string(ERR_peek_error()));
        ERR_clear_error();
        SSL_free(ssl);
        return;
    }
    kms_tls_peer peer;
    if (kms_tls_peer_get(ssl, &peer) == 0) {
        fprintf(stderr, "tls_server: client %s\n", peer.subject);
        kms_tls_peer_clean_up(&peer);
    }
    static const char hello[] = "hello over TLS\n";
    if (SSL_write(ssl, hello, (int)strlen(hello)) > 0 && SSL_shutdown(ssl) == 0) {
        /* Wait for the client's close_notify (or its close), so its request is read and the
         * close does not reset the connection under the greeting. */
        char buf[4096];
        while (SSL_read(ssl, buf, sizeof buf) > 0) {
        }
    }
    ERR_clear_error();
    SSL_free(ssl);
}

int main(int argc, char **argv)
{
    kms_tls_options opts = {0};
    kms_client_options home = {0};
    int c;
    while ((c = getopt(argc, argv, "ma:c:r:A:t:H:")) != -1) {
        switch (c) {
        case 'm':
            opts.profile = KMS_TLS_MODERN;
            break;
        case 'a':
            opts.alpn = optarg;
            break;
        case 'c':
            opts.ca_file = optarg;
            opts.client_auth = KMS_TLS_CLIENT_AUTH_REQUIRE;
            break;
        case 'r':
            opts.crl_file = optarg;
            break;
        case 'A':
            opts.certificate_arn = optarg;
            break;
        case 't':
            opts.ticket_key_id = optarg;
            break;
        case 'H':
            home.home = optarg;
            break;
        default:
            return 2;
        }
    }
    if (argc - optind != (opts.certificate_arn != NULL ? 1 : 3)) {
        fprintf(stderr, "usage: tls_server [-m] [-a ALPN] [-c CLIENT_CA [-r CRL]] [-t CMK] "
                        "[-H HOME] PORT CERT KEY\n"
                        "       tls_server [...] -A CERTIFICATE_ARN PORT\n");
        return 2;
    }
    if (opts.certificate_arn == NULL) {
        opts.cert_chain_file = argv[optind + 1];
        opts.key_file = argv[optind + 2];
    }
    if (opts.certificate_arn != NULL || opts.ticket_key_id != NULL) {
        opts.client = kms_client_open(&home);
        if (opts.client == NULL) {
            fprintf(stderr, "tls_server: %s: %s\n", kms_error_name(kms_last_error()),
                    kms_last_error_message());
            return 1;
        }
    }
    kms_tls_server *server = kms_tls_server_new(&opts);
    if (server == NULL) {
        fprintf(stderr, "tls_server: %s: %s\n", kms_error_name(kms_last_error()),
                kms_last_error_message());
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_sighup}; /* no SA_RESTART: accept returns EINTR */
    sigaction(SIGHUP, &sa, NULL);
    int lfd = listen_on(atoi(argv[optind]));
    printf("listening on %s\n", argv[optind]);
    fflush(stdout);
    for (;;) {
        if (reload_wanted) {
            reload_wanted = 0;
            if (kms_tls_server_reload(server, NULL, NULL) != 0) {
                fprintf(stderr, "tls_server: reload failed, keeping the old certificate: %s\n",
                        kms_last_error_message());
            } else {
                fprintf(stderr, "tls_server: reloaded\n");
            }
        }
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            continue; /* EINTR (SIGHUP), or a client that left */
        }
        serve(server, fd);
        close(fd);
    }
}
