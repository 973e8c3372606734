/* Fuzzes ImportCertificate's reader (kms_acm_import_parse, acm_keys.c): the input is the
 * certificate, its private key and the chain, separated by lines "%%". It answers 0 or
 * ValidationException, nothing else; on success the key it keeps is PKCS#8 that reads back and
 * matches the certificate, and the chain it keeps holds PEM certificates only. */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "pki/acm.h"
#include "util/util.h"

/* The seeds' certificates are valid from December 2026 to 2036; this is January 2027. */
#define FUZZ_NOW 1800000000

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(kms_util_init() == 0);
    return 0;
}

/* The next part of [*p, end) up to a "\n%%\n" (or the end). */
static void part(const uint8_t **p, const uint8_t *end, const uint8_t **out, size_t *len)
{
    const uint8_t *sep = memmem(*p, (size_t)(end - *p), "\n%%\n", 4);
    *out = *p;
    *len = (size_t)((sep != NULL ? sep : end) - *p);
    *p = sep != NULL ? sep + 4 : end;
}

static void check_chain(const uint8_t *chain, size_t len)
{
    BIO *b = BIO_new_mem_buf(chain, (int)len);
    X509 *x = NULL;
    int n = 0;
    FUZZ_CHECK(b != NULL);
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        X509_free(x);
        n++;
    }
    FUZZ_CHECK(n > 0);
    BIO_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data;
    const uint8_t *end = data + size;
    kms_acm_import_params ip = {.now = FUZZ_NOW};
    part(&p, end, &ip.certificate, &ip.certificate_len);
    part(&p, end, &ip.private_key, &ip.private_key_len);
    part(&p, end, &ip.chain, &ip.chain_len);
    kms_acm_cert c;
    kms_buf pkcs8;
    memset(&c, 0, sizeof c);
    kms_buf_init(&pkcs8, true);
    if (kms_acm_import_parse(&ip, &c, &pkcs8) != 0) {
        if (kms_last_error() != KMS_ERR_VALIDATION) {
            fprintf(stderr, "%s: %s\n", kms_error_name(kms_last_error()), kms_last_error_message());
        }
        FUZZ_CHECK(kms_last_error() == KMS_ERR_VALIDATION);
    } else {
        const unsigned char *q = pkcs8.data;
        EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &q, (long)pkcs8.len);
        FUZZ_CHECK(k != NULL);
        q = c.certificate;
        X509 *x = d2i_X509(NULL, &q, (long)c.certificate_len);
        FUZZ_CHECK(x != NULL && X509_check_private_key(x, k) == 1);
        FUZZ_CHECK(c.key_algorithm[0] != '\0' && c.not_before <= FUZZ_NOW &&
                   FUZZ_NOW < c.not_after);
        if (c.chain != NULL) {
            check_chain(c.chain, c.chain_len);
        }
        X509_free(x);
        EVP_PKEY_free(k);
    }
    kms_buf_clean_up(&pkcs8);
    kms_acm_cert_clean_up(&c);
    return 0;
}
