/* Fuzzes IssueCertificate's ApiPassthrough reader (pki_passthrough.c) on the input as JSON, under
 * every *_APIPassthrough template and one base template:
 *  - it answers 0, ValidationException or InvalidArgsException, nothing else;
 *  - a base template takes no ApiPassthrough: never 0 for a JSON object;
 *  - on success, what it read goes into a certificate that OpenSSL encodes and reads back with
 *    the same extensions (or is refused with InvalidArgsException for a repeated extension). */
#include <jansson.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "pki/pki_internal.h"
#include "util/util.h"

static const char *const templates[] = {
    "arn:aws:acm-pca:::template/EndEntityCertificate_APIPassthrough/V1",
    "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0_APIPassthrough/V1",
    "arn:aws:acm-pca:::template/CodeSigningCertificate/V1",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(kms_util_init() == 0);
    return 0;
}

static void encode(const kms_pki_passthrough *pt, const kms_pki_template *t)
{
    X509 *x = X509_new();
    FUZZ_CHECK(x != NULL);
    if (kms_pki_passthrough_add(pt, t, x) != 0) {
        FUZZ_CHECK(kms_last_error() == KMS_ERR_INVALID_ARGS ||
                   kms_last_error() == KMS_ERR_INTERNAL);
        X509_free(x);
        return;
    }
    unsigned char *der = NULL;
    int n = i2d_X509_EXTENSIONS((STACK_OF(X509_EXTENSION) *)X509_get0_extensions(x), &der);
    if (X509_get_ext_count(x) > 0) {
        FUZZ_CHECK(n > 0);
        const unsigned char *p = der;
        STACK_OF(X509_EXTENSION) *back = d2i_X509_EXTENSIONS(NULL, &p, n);
        FUZZ_CHECK(back != NULL && sk_X509_EXTENSION_num(back) == X509_get_ext_count(x));
        sk_X509_EXTENSION_pop_free(back, X509_EXTENSION_free);
    }
    OPENSSL_free(der);
    X509_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *api = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (api == NULL) {
        return 0;
    }
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++) {
        const kms_pki_template *t = NULL;
        kms_pki_passthrough pt;
        FUZZ_CHECK(kms_pki_template_find(templates[i], &t) == 0);
        if (kms_pki_passthrough_read(api, t, &pt) != 0) {
            kms_error e = kms_last_error();
            FUZZ_CHECK(e == KMS_ERR_VALIDATION || e == KMS_ERR_INVALID_ARGS);
            continue;
        }
        FUZZ_CHECK(t->api_passthrough || json_is_null(api));
        encode(&pt, t);
        kms_pki_passthrough_clean_up(&pt);
    }
    json_decref(api);
    return 0;
}
