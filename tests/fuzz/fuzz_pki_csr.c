/* Fuzzes the parsers of src/pki that take what a caller sends, on the same input:
 *
 *  1. kms_pki_csr_check (IssueCertificate's CSR checks: PEM or DER, signature, key, requested
 *     extensions) under each template: it answers 0, MalformedCSRException or
 *     InvalidArgsException, and an input over the size limit is always MalformedCSRException.
 *  2. kms_pki_pem on the input as a DER certificate: on success the PEM reads back to the same
 *     certificate (the same DER as OpenSSL's own parse of the input).
 *  3. kms_pki_arn_parse on the input as text, as a CA ARN and as a certificate ARN: on success
 *     the ARN rebuilt from what it parsed (for the account it names) is the input, byte for
 *     byte. */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "pki/pki.h"
#include "util/util.h"

static const char *const templates[] = {
    "arn:aws:acm-pca:::template/EndEntityCertificate/V1",
    "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(kms_util_init() == 0);
    return 0;
}

static void check_csr(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++) {
        if (kms_pki_csr_check(data, size, templates[i]) == 0) {
            FUZZ_CHECK(size <= KMS_PKI_CSR_MAX);
            continue;
        }
        kms_error e = kms_last_error();
        FUZZ_CHECK(e == KMS_ERR_MALFORMED_CSR || e == KMS_ERR_INVALID_ARGS);
        FUZZ_CHECK(size <= KMS_PKI_CSR_MAX || e == KMS_ERR_MALFORMED_CSR);
    }
}

static void check_pem(const uint8_t *data, size_t size)
{
    char *pem = NULL;
    if (kms_pki_pem(data, size, &pem) != 0) {
        FUZZ_CHECK(pem == NULL && kms_last_error() == KMS_ERR_INTERNAL);
        return;
    }
    const uint8_t *p = data;
    X509 *direct = d2i_X509(NULL, &p, (long)size);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *back = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    FUZZ_CHECK(direct != NULL && back != NULL);
    unsigned char *a = NULL, *b = NULL;
    int na = i2d_X509(direct, &a), nb = i2d_X509(back, &b);
    FUZZ_CHECK(na > 0 && na == nb && memcmp(a, b, (size_t)na) == 0);
    OPENSSL_free(a);
    OPENSSL_free(b);
    X509_free(back);
    X509_free(direct);
    BIO_free(bio);
    free(pem);
}

static void check_arn(const uint8_t *data, size_t size)
{
    kms_keystore ks = {.region = "eu-west-3", .account_id = "111122223333"};
    char *text = malloc(size + 1);
    char ca_id[37], serial[KMS_PKI_SERIAL_MAX], rebuilt[KMS_ARN_MAX];
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    /* Any account's ARN parses (its CA is then not found for another account): rebuilt as
     * that account sees it. */
    static const char prefix[] = "arn:aws:acm-pca:eu-west-3:";
    char account[13] = "";
    kms_keystore view;
    if (size > sizeof prefix + 12) {
        memcpy(account, text + sizeof prefix - 1, 12);
    }
    kms_pki_keystore_as(&ks, account, &view);
    if (kms_pki_arn_parse(&ks, text, ca_id, NULL) == 0) {
        kms_pki_ca_arn(&view, ca_id, rebuilt);
        FUZZ_CHECK(strcmp(rebuilt, text) == 0);
    } else {
        FUZZ_CHECK(kms_last_error() == KMS_ERR_INVALID_ARN);
    }
    if (kms_pki_arn_parse(&ks, text, ca_id, serial) == 0) {
        kms_pki_cert_arn(&view, ca_id, serial, rebuilt);
        FUZZ_CHECK(strcmp(rebuilt, text) == 0);
        FUZZ_CHECK(strlen(serial) >= 1 && strlen(serial) < KMS_PKI_SERIAL_MAX);
    } else {
        FUZZ_CHECK(kms_last_error() == KMS_ERR_INVALID_ARN);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_csr(data, size);
    check_pem(data, size);
    check_arn(data, size);
    return 0;
}
