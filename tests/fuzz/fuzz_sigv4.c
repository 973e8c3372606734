/* Fuzzes the SigV4 verifier (src/sigv4): the input's first line is an Authorization header
 * value, the rest a request ("METHOD TARGET", "Name:value" lines, a blank line, a body). The
 * parser answers 0 or IncompleteSignatureException, and a parsed header rebuilt from its parts
 * parses to the same parts; the canonicaliser answers 0 or InvalidSignatureException, with a
 * canonical path of unreserved characters, '/' and %XX only; the verifier answers one of the two
 * signature errors (or 0), never anything else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "kms/kms.h"
#include "sigv4/sigv4.h"
#include "util/error.h"

#define MAX_HEADERS 16
#define FUZZ_NOW 1440938160 /* 2015-08-30T12:36:00Z, the suite's time */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_auth(const char *value, kms_sigv4_auth *auth, int *parsed)
{
    char rebuilt[KMS_SIGV4_AUTH_MAX + 512];
    kms_sigv4_auth again;
    *parsed = kms_sigv4_parse_authorization(value, auth) == 0;
    if (!*parsed) {
        FUZZ_CHECK(kms_last_error() == KMS_ERR_INCOMPLETE_SIGNATURE);
        FUZZ_CHECK(auth->access_key_id[0] == '\0' && auth->signed_headers[0] == '\0');
        return;
    }
    snprintf(rebuilt, sizeof rebuilt,
             "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
             "Signature=%s",
             auth->access_key_id, auth->date, auth->region, auth->service, auth->signed_headers,
             auth->signature);
    FUZZ_CHECK(kms_sigv4_parse_authorization(rebuilt, &again) == 0);
    FUZZ_CHECK(memcmp(auth, &again, sizeof again) == 0);
}

static void check_path_line(const char *canonical)
{
    const char *p = strchr(canonical, '\n');
    FUZZ_CHECK(p != NULL && p[1] == '/');
    for (p++; *p != '\n'; p++) {
        FUZZ_CHECK(*p != '\0');
        FUZZ_CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/%",
                          *p) != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    kms_sigv4_header headers[MAX_HEADERS];
    size_t n_headers = 0;
    kms_sigv4_auth auth;
    int parsed = 0;
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    char *line = text;
    char *eol = strchr(line, '\n');
    if (eol != NULL) {
        *eol = '\0';
    }
    check_auth(line, &auth, &parsed);
    if (eol == NULL) {
        free(text);
        return 0;
    }

    /* The request line: METHOD TARGET (target split at '?'). */
    line = eol + 1;
    eol = strchr(line, '\n');
    if (eol != NULL) {
        *eol = '\0';
    }
    char *target = strchr(line, ' ');
    if (target != NULL) {
        *target++ = '\0';
    } else {
        target = line + strlen(line);
    }
    char *query = strchr(target, '?');
    if (query != NULL) {
        *query++ = '\0';
    }
    const char *method = line;
    const char *body = "";
    while (eol != NULL) {
        line = eol + 1;
        eol = strchr(line, '\n');
        if (eol != NULL) {
            *eol = '\0';
        }
        if (line[0] == '\0') {
            body = eol != NULL ? eol + 1 : "";
            break;
        }
        char *colon = strchr(line, ':');
        if (colon != NULL && n_headers < MAX_HEADERS) {
            *colon = '\0';
            headers[n_headers].name = line;
            headers[n_headers].value = colon + 1;
            n_headers++;
        }
    }

    const char *signed_headers = parsed ? auth.signed_headers : "host;x-amz-date";
    for (int normalize = 0; normalize < 2; normalize++) {
        kms_sigv4_request req = {.method = method,
                                 .path = target,
                                 .query = query,
                                 .headers = headers,
                                 .n_headers = n_headers,
                                 .body = (const uint8_t *)body,
                                 .body_len = strlen(body),
                                 .normalize_path = normalize};
        char *canonical = NULL;
        if (kms_sigv4_canonical_request(&req, signed_headers, &canonical) != 0) {
            FUZZ_CHECK(kms_last_error() == KMS_ERR_BAD_SIGNATURE);
            FUZZ_CHECK(canonical == NULL);
        } else {
            char *sts = NULL;
            check_path_line(canonical);
            FUZZ_CHECK(kms_sigv4_string_to_sign("20150830T123600Z",
                                                "20150830/us-east-1/service/aws4_request",
                                                canonical, &sts) == 0);
            free(sts);
            free(canonical);
        }
        if (parsed) {
            int rc = kms_sigv4_verify(&req, &auth, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                      FUZZ_NOW, "us-east-1", "service");
            FUZZ_CHECK(rc == 0 || kms_last_error() == KMS_ERR_BAD_SIGNATURE ||
                       kms_last_error() == KMS_ERR_INCOMPLETE_SIGNATURE);
        }
    }
    free(text);
    return 0;
}
