/* TlsServer (see tls_bench.h). */
#include "tls_bench.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "kms/tls.h"
#include "service/client.h"
#include "tls/tls_hsm.h"
#include "tls/tls_server.h"
#include "tls/tls_ticket.h"

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    int ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate for pub (CN=localhost) signed by ca_key (self-signed when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *pub, EVP_PKEY *ca_key, X509 *issuer)
{
    X509 *cert = X509_new();
    if (cert == NULL) {
        return NULL;
    }
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), issuer == NULL ? 1 : 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(
        name, "CN", MBSTRING_ASC,
        (const unsigned char *)(issuer == NULL ? "kmsbench CA" : "localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, issuer == NULL ? name : X509_get_subject_name(issuer));
    X509_set_pubkey(cert, pub);
    int r = issuer == NULL ? add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE")
                           : add_ext(cert, issuer, NID_subject_alt_name, "DNS:localhost");
    if (r != 0 || X509_sign(cert, ca_key, EVP_sha256()) <= 0) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* The leaf (for the HSM key's public half) and the CA, as PEM in memory (malloc'd). */
static char *chain_pem(EVP_PKEY *pub, size_t *len)
{
    char *out = NULL;
    EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    X509 *ca = ca_key != NULL ? make_cert(ca_key, ca_key, NULL) : NULL;
    X509 *leaf = ca != NULL ? make_cert(pub, ca_key, ca) : NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    if (leaf != NULL && bio != NULL && PEM_write_bio_X509(bio, leaf) == 1 &&
        PEM_write_bio_X509(bio, ca) == 1) {
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (out = malloc((size_t)n)) != NULL) {
            memcpy(out, data, (size_t)n);
            *len = (size_t)n;
        }
    }
    BIO_free(bio);
    X509_free(leaf);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return out;
}

static char *create_hmac_key(kms_client *client)
{
    char *resp = NULL;
    char *id = NULL;
    if (kms_call(client, "CreateKey",
                 "{\"Description\":\"kmsbench TLS tickets\",\"KeySpec\":\"HMAC_256\","
                 "\"KeyUsage\":\"GENERATE_VERIFY_MAC\"}",
                 &resp) != 0) {
        return NULL;
    }
    json_t *j = json_loads(resp, 0, NULL);
    const char *s = json_string_value(json_object_get(json_object_get(j, "KeyMetadata"), "KeyId"));
    if (s != NULL) {
        id = strdup(s);
    }
    json_decref(j);
    kms_string_free(resp);
    return id;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0) {
        perror("kmsbench: listen");
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* One connection: handshake, then read until the client closes. 1 full, 2 resumed, 0 failed. */
static int serve(kms_tls_server *server, int fd)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL *ssl = kms_tls_server_ssl_new(server);
    int r = 0;
    if (ssl == NULL) {
        return 0;
    }
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        r = SSL_session_reused(ssl) ? 2 : 1;
        /* As `openssl s_server` serves s_time: read until the client's close_notify (or its
         * close), then answer it. */
        char buf[4096];
        while (SSL_read(ssl, buf, sizeof buf) > 0) {
        }
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
    return r;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(kms_tls_server *server, int lfd, double seconds, const char *key_name)
{
    long full = 0, resumed = 0, failed = 0;
    uint64_t signs0 = kms_tls_hsm_sign_count();
    uint64_t derivations0 = kms_tls_ticket_derivations();
    double start = now();
    printf("{\"Operation\": \"TlsServer\", \"Listening\": true}\n");
    fflush(stdout);
    while (!stop && now() - start < seconds) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0) {
            continue;
        }
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        int r = serve(server, fd);
        close(fd);
        full += r == 1;
        resumed += r == 2;
        failed += r == 0;
    }
    printf("{\"Operation\": \"TlsServer\", \"Key\": \"ECC_NIST_P256 in the HSM (acm:%s)\", "
           "\"Seconds\": %.1f, \"FullHandshakes\": %ld, \"ResumedHandshakes\": %ld, "
           "\"Failed\": %ld, \"HsmSignatures\": %llu, \"TicketKeyDerivations\": %llu}\n",
           key_name, now() - start, full, resumed, failed,
           (unsigned long long)(kms_tls_hsm_sign_count() - signs0),
           (unsigned long long)(kms_tls_ticket_derivations() - derivations0));
    return 0;
}

int tls_bench_serve(kms_client *client, int port, double seconds)
{
    const kms_keystore *ks = &client->keystore;
    char key_name[64];
    uint8_t *spki = NULL;
    size_t spki_len = 0, pem_len = 0;
    EVP_PKEY *pkey = NULL;
    char *pem = NULL, *cmk = NULL;
    kms_tls_server *server = NULL;
    int lfd = -1, r = -1;
    snprintf(key_name, sizeof key_name, "kmsbench-tls-%ld-%d", (long)time(NULL), (int)getpid());
    if (kms_keystore_cert_key_create(ks, key_name, "ECC_NIST_P256", &spki, &spki_len) != 0) {
        goto out;
    }
    if ((pkey = kms_tls_hsm_pkey_new(ks, key_name, "ECC_NIST_P256", spki, spki_len)) == NULL ||
        (cmk = create_hmac_key(client)) == NULL) {
        goto out;
    }
    const uint8_t *p = spki;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
    pem = pub != NULL ? chain_pem(pub, &pem_len) : NULL;
    EVP_PKEY_free(pub);
    if (pem == NULL) {
        fprintf(stderr, "kmsbench: cannot make the certificate\n");
        goto out;
    }
    kms_tls_options opts = {.client = client, .ticket_key_id = cmk};
    if ((server = kms_tls_server_new_with_key(&opts, pem, pem_len, pkey)) == NULL ||
        (lfd = listen_on(port)) < 0) {
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_stop};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    r = run(server, lfd, seconds, key_name);
out:
    if (r != 0 && kms_last_error() != KMS_OK) {
        fprintf(stderr, "kmsbench: TlsServer: %s\n", kms_last_error_message());
    }
    if (lfd >= 0) {
        close(lfd);
    }
    kms_tls_server_free(server);
    EVP_PKEY_free(pkey);
    if (spki != NULL && kms_keystore_cert_key_destroy(ks, key_name) != 0) {
        fprintf(stderr, "kmsbench: %s\n", kms_last_error_message());
    }
    free(spki);
    free(pem);
    free(cmk);
    return r;
}

/* ---- TlsSign ---------------------------------------------------------------------------------*/
typedef int (*sign_fn)(void *arg);

typedef struct sign_arg {
    const kms_keystore *ks;
    const char *key_name;
    EVP_PKEY *pkey;
    OSSL_LIB_CTX *libctx;
} sign_arg;

static const unsigned char transcript[] = "a TLS 1.3 CertificateVerify content of some length";

/* The key store's own call: what every design pays (PKCS#11 C_SignInit + C_Sign in SoftHSM). */
static int sign_raw(void *varg)
{
    const sign_arg *a = varg;
    unsigned char digest[32] = {1};
    uint8_t *sig = NULL;
    size_t n = 0;
    int r = kms_keystore_cert_key_sign_digest(a->ks, a->key_name, "ECC_NIST_P256", "ECDSA_SHA_256",
                                              digest, sizeof digest, &sig, &n);
    free(sig);
    return r;
}

/* As libssl signs: EVP_DigestSignInit_ex + EVP_DigestSign (one shot). */
static int sign_evp(void *varg)
{
    const sign_arg *a = varg;
    unsigned char sig[128];
    size_t n = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL &&
             EVP_DigestSignInit_ex(md, NULL, "SHA256", a->libctx, NULL, a->pkey, NULL) == 1 &&
             EVP_DigestSign(md, sig, &n, transcript, sizeof transcript) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

static int sign_rate(const char *what, sign_fn fn, void *arg, double seconds)
{
    long n = 0;
    double start = now();
    double elapsed = 0;
    while ((elapsed = now() - start) < seconds) {
        if (fn(arg) != 0) {
            fprintf(stderr, "kmsbench: TlsSign %s failed: %s\n", what, kms_last_error_message());
            ERR_print_errors_fp(stderr);
            return -1;
        }
        n++;
    }
    printf("{\"Operation\": \"TlsSign\", \"Path\": \"%s\", \"Threads\": 1, "
           "\"Seconds\": %.1f, \"Signatures\": %ld, \"PerSecond\": %.0f}\n",
           what, elapsed, n, (double)n / elapsed);
    fflush(stdout);
    return 0;
}

int tls_bench_sign(kms_client *client, double seconds)
{
    const kms_keystore *ks = &client->keystore;
    char key_name[64];
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    EVP_PKEY *hsm = NULL;
    EVP_PKEY *file_key = EVP_EC_gen("P-256");
    int r = -1;
    snprintf(key_name, sizeof key_name, "kmsbench-sign-%ld-%d", (long)time(NULL), (int)getpid());
    if (file_key == NULL ||
        kms_keystore_cert_key_create(ks, key_name, "ECC_NIST_P256", &spki, &spki_len) != 0 ||
        (hsm = kms_tls_hsm_pkey_new(ks, key_name, "ECC_NIST_P256", spki, spki_len)) == NULL) {
        fprintf(stderr, "kmsbench: TlsSign: %s\n", kms_last_error_message());
        goto out;
    }
    sign_arg raw = {ks, key_name, NULL, NULL};
    sign_arg provider = {ks, key_name, hsm, kms_tls_hsm_libctx()};
    sign_arg file = {NULL, NULL, file_key, NULL};
    /* In turns, three rounds, so that a busy machine weighs on each path alike. */
    for (int round = 0; round < 3; round++) {
        if (sign_rate("kms_keystore_cert_key_sign_digest (HSM, no OpenSSL)", sign_raw, &raw,
                      seconds / 3) != 0 ||
            sign_rate("EVP_DigestSign, kms-hsm provider (HSM)", sign_evp, &provider, seconds / 3) !=
                0 ||
            sign_rate("EVP_DigestSign, default provider (key in memory)", sign_evp, &file,
                      seconds / 3) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    EVP_PKEY_free(hsm);
    EVP_PKEY_free(file_key);
    if (spki != NULL && kms_keystore_cert_key_destroy(ks, key_name) != 0) {
        fprintf(stderr, "kmsbench: %s\n", kms_last_error_message());
    }
    free(spki);
    return r;
}
