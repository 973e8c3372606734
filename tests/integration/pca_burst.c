/* IssueCertificate per second in one process (scripts/bench-pca.sh): kms_call
 * "acm-pca:IssueCertificate" through the gate (authorisation, the HSM signature, the record
 * of the certificate, the durable audit record) COUNT times on THREADS threads, against
 * OpenSSL signing the same certificate COUNT times with the same kind of key loaded from a PEM
 * file (X509_sign: what `openssl x509 -req` does per certificate, without its process start).
 * Prints one JSON line.
 *
 *   pca_burst HOME CA_ARN CSR_PEM SIGNING_ALGORITHM CA_KEY_PEM CA_CERT_PEM COUNT THREADS */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kms/kms.h"

static kms_client *client;
static char *request;
static long per_thread;
static long failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *issue(void *arg)
{
    (void)arg;
    for (long i = 0; i < per_thread; i++) {
        char *resp = NULL;
        if (kms_call(client, "acm-pca:IssueCertificate", request, &resp) != 0) {
            pthread_mutex_lock(&lock);
            if (failures++ == 0) {
                fprintf(stderr, "pca_burst: %s\n", kms_last_error_message());
            }
            pthread_mutex_unlock(&lock);
        }
        kms_string_free(resp);
    }
    return NULL;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 65536);
    size_t n = f != NULL && buf != NULL ? fread(buf, 1, 65535, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    if (n == 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The baseline: count certificates from the CSR signed with the file key. */
static double openssl_rate(const char *csr_path, const char *key_path, const char *cert_path,
                           long count)
{
    FILE *fk = fopen(key_path, "r"), *fc = fopen(cert_path, "r"), *fr = fopen(csr_path, "r");
    EVP_PKEY *key = fk ? PEM_read_PrivateKey(fk, NULL, NULL, NULL) : NULL;
    X509 *ca = fc ? PEM_read_X509(fc, NULL, NULL, NULL) : NULL;
    X509_REQ *req = fr ? PEM_read_X509_REQ(fr, NULL, NULL, NULL) : NULL;
    double rate = 0;
    if (key != NULL && ca != NULL && req != NULL) {
        double t0 = seconds();
        for (long i = 0; i < count; i++) {
            X509 *x = X509_new();
            X509V3_CTX ctx;
            X509_set_version(x, X509_VERSION_3);
            ASN1_INTEGER_set(X509_get_serialNumber(x), i + 1);
            X509_set_subject_name(x, X509_REQ_get_subject_name(req));
            X509_set_issuer_name(x, X509_get_subject_name(ca));
            X509_set_pubkey(x, X509_REQ_get0_pubkey(req));
            X509_gmtime_adj(X509_getm_notBefore(x), 0);
            X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
            X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
            X509_EXTENSION *e =
                X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:FALSE");
            X509_add_ext(x, e, -1);
            X509_EXTENSION_free(e);
            e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,digitalSignature");
            X509_add_ext(x, e, -1);
            X509_EXTENSION_free(e);
            /* X509_verify of the result, as the key store's road checks its signature too. */
            if (X509_sign(x, key, EVP_sha256()) <= 0 || X509_verify(x, key) != 1) {
                fprintf(stderr, "pca_burst: openssl signing failed\n");
            }
            X509_free(x);
        }
        rate = (double)count / (seconds() - t0);
    }
    EVP_PKEY_free(key);
    X509_free(ca);
    X509_REQ_free(req);
    if (fk) {
        fclose(fk);
    }
    if (fc) {
        fclose(fc);
    }
    if (fr) {
        fclose(fr);
    }
    return rate;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: pca_burst HOME CA_ARN CSR_PEM SIGNING_ALGORITHM CA_KEY_PEM "
                        "CA_CERT_PEM COUNT THREADS\n");
        return 2;
    }
    long count = atol(argv[7]);
    int threads = atoi(argv[8]);
    if (count < 1 || threads < 1 || threads > 64) {
        fprintf(stderr, "pca_burst: COUNT >= 1, THREADS 1 to 64\n");
        return 2;
    }
    kms_client_options o = {.home = argv[1], .user_agent = "pca_burst"};
    client = kms_client_open(&o);
    char *csr = read_all(argv[3]);
    if (client == NULL || csr == NULL) {
        fprintf(stderr, "pca_burst: %s\n", client == NULL ? kms_last_error_message() : argv[3]);
        return 1;
    }
    /* The CSR as AWS's Csr blob: base64 of its PEM. */
    char *b64 = NULL;
    BIO *bio = BIO_new(BIO_s_mem()), *enc = BIO_new(BIO_f_base64());
    BIO_set_flags(enc, BIO_FLAGS_BASE64_NO_NL);
    BIO_push(enc, bio);
    BIO_write(enc, csr, (int)strlen(csr));
    (void)BIO_flush(enc);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    b64 = strndup(data, (size_t)n);
    BIO_free_all(enc);
    size_t size = strlen(b64) + strlen(argv[2]) + 512;
    request = malloc(size);
    snprintf(request, size,
             "{\"CertificateAuthorityArn\": \"%s\", \"Csr\": \"%s\", \"SigningAlgorithm\": "
             "\"%s\", \"Validity\": {\"Value\": 30, \"Type\": \"DAYS\"}, \"TemplateArn\": "
             "\"arn:aws:acm-pca:::template/EndEntityServerAuthCertificate/V1\"}",
             argv[2], b64, argv[4]);
    per_thread = (count + threads - 1) / threads;
    pthread_t th[64];
    double t0 = seconds();
    for (int i = 0; i < threads; i++) {
        pthread_create(&th[i], NULL, issue, NULL);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
    }
    double kms_rate = (double)(per_thread * threads - failures) / (seconds() - t0);
    double ossl_rate = openssl_rate(argv[3], argv[5], argv[6], count);
    printf("{\"in_process_issue_certificate_per_s\": %.1f, \"threads\": %d, \"failures\": %ld, "
           "\"in_process_openssl_x509_sign_per_s\": %.1f}\n",
           kms_rate, threads, failures, ossl_rate);
    kms_client_free(client);
    free(request);
    free(b64);
    free(csr);
    return failures == 0 ? 0 : 1;
}
