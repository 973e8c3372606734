/* Revocation for relying parties through libkms, as kmsd will call it (test_ocsp.sh): opens the
 * home with kms_client_open and writes what kms_ocsp_respond or kms_crl_get answers to OUT.
 *
 *   ocsp_respond HOME ocsp REQUEST_DER OUT    the DER OCSPResponse to that request
 *   ocsp_respond HOME crl CA_ID OUT           the CA's published CRL
 *
 * On failure prints {"__type": NAME, "message": TEXT} to stderr and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"
#include "kms/server.h"

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = calloc(1, 1 << 20);
    *len = f != NULL && buf != NULL ? fread(buf, 1, 1 << 20, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[2], "ocsp") != 0 && strcmp(argv[2], "crl") != 0)) {
        fprintf(stderr, "usage: ocsp_respond HOME ocsp REQUEST_DER OUT | HOME crl CA_ID OUT\n");
        return 2;
    }
    kms_client_options o = {.home = argv[1]};
    kms_client *client = kms_client_open(&o);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int r = -1;
    if (client != NULL && strcmp(argv[2], "ocsp") == 0) {
        size_t len = 0;
        uint8_t *req = read_all(argv[3], &len);
        r = req != NULL ? kms_ocsp_respond(client, req, len, &out, &out_len) : -1;
        free(req);
    } else if (client != NULL) {
        r = kms_crl_get(client, argv[3], &out, &out_len);
    }
    if (r != 0) {
        fprintf(stderr, "{\"__type\": \"%s\", \"message\": \"%s\"}\n",
                kms_error_name(kms_last_error()), kms_last_error_message());
        kms_client_free(client);
        return 1;
    }
    FILE *f = fopen(argv[4], "wb");
    int rc = f != NULL && fwrite(out, 1, out_len, f) == out_len ? 0 : 1;
    if (f != NULL && fclose(f) != 0) {
        rc = 1;
    }
    kms_buffer_free(out);
    kms_client_free(client);
    return rc;
}
