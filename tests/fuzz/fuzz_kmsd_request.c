/* Fuzzes kmsd's request path from bytes to the dispatcher: kmsd_handle (tools/kmsd/handler.c:
 * routing by X-Amz-Target and Content-Type, the JSON body, kms_call_network with its SigV4 check
 * and the gate, AWS's response and error shapes) against a real home made once. The input is
 *   METHOD\nPATH[?QUERY]\nName: value\n...\n\nBODY
 * When the first byte is odd, the request is also signed (SigV4, host and x-amz-date, for the
 * service its X-Amz-Target names) with the home's default credentials, so that the fuzzer gets
 * past authentication to the dispatcher, the gate and the operations with what it makes of the
 * body. Every request must get a well-formed answer: a status AWS uses, a JSON body (the
 * response, or {"__type", "message"}), and a request id. */
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fuzz_common.h"
#include "kmsd.h"
#include "sigv4/sigv4.h"
#include "util/error.h"

#define MAX_HEADERS 64

static char dir[64];
static kms_client *client;
static char access_key[64];
static char secret[128];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* The client is not freed at exit: its HSM sessions may still be in use by the library's threads
 * there (softhsm crashed when freed from atexit); it stays reachable, so it is no leak. */
static void cleanup(void)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char home[128];
    snprintf(dir, sizeof dir, "/tmp/fuzz_kmsd.XXXXXX");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    atexit(cleanup);
    snprintf(home, sizeof home, "%s/home", dir);
    FUZZ_CHECK(kms_home_init(home, NULL) == 0);
    kms_client_options o = {.home = home};
    client = kms_client_open(&o);
    FUZZ_CHECK(client != NULL);
    char path[160], line[256];
    snprintf(path, sizeof path, "%s/credentials", home);
    FILE *f = fopen(path, "r");
    FUZZ_CHECK(f != NULL);
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "aws_access_key_id = ", 20) == 0 && access_key[0] == '\0') {
            snprintf(access_key, sizeof access_key, "%s", line + 20);
        } else if (strncmp(line, "aws_secret_access_key = ", 24) == 0 && secret[0] == '\0') {
            snprintf(secret, sizeof secret, "%s", line + 24);
        }
    }
    fclose(f);
    FUZZ_CHECK(access_key[0] != '\0' && secret[0] != '\0');
    return 0;
}

/* The SigV4 service of the target header, as the credential scope must name it. */
static const char *service_of(const kms_http_header *headers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(headers[i].name, "X-Amz-Target") != 0) {
            continue;
        }
        const char *t = headers[i].value;
        return strncmp(t, "CertificateManager.", 19) == 0        ? "acm"
               : strncmp(t, "ACMPrivateCA.", 13) == 0            ? "acm-pca"
               : strncmp(t, "com.amazonaws.cloudtrail", 24) == 0 ? "cloudtrail"
                                                                 : "kms";
    }
    return "kms";
}

/* Adds Host, X-Amz-Date and Authorization (into headers, strings in the caller's buffers). */
static void sign(const char *method, const char *path, const char *query, kms_http_header *headers,
                 size_t *n, const uint8_t *body, size_t body_len, char amz_date[17],
                 char authorization[512])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm);
    headers[(*n)++] = (kms_http_header){"Host", "127.0.0.1:8443"};
    headers[(*n)++] = (kms_http_header){"X-Amz-Date", amz_date};
    kms_sigv4_request r = {.method = method,
                           .path = path,
                           .query = query,
                           .headers = (const kms_sigv4_header *)headers,
                           .n_headers = *n,
                           .body = body,
                           .body_len = body_len,
                           .normalize_path = 1};
    char date[9], scope[128], sig[65];
    char *canonical = NULL, *sts = NULL;
    const char *service = service_of(headers, *n);
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    snprintf(scope, sizeof scope, "%s/us-east-1/%s/aws4_request", date, service);
    if (kms_sigv4_canonical_request(&r, "host;x-amz-date", &canonical) == 0 &&
        kms_sigv4_string_to_sign(amz_date, scope, canonical, &sts) == 0 &&
        kms_sigv4_sign(secret, date, "us-east-1", service, sts, sig) == 0) {
        snprintf(authorization, 512,
                 "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=host;x-amz-date, "
                 "Signature=%s",
                 access_key, scope, sig);
        headers[(*n)++] = (kms_http_header){"Authorization", authorization};
    }
    kms_error_clear();
    free(canonical);
    free(sts);
}

/* The next line of [*p, end) as a NUL-terminated copy (in out's storage), or NULL at the end. */
static char *next_line(const char **p, const char *end, char **storage)
{
    if (*p >= end) {
        return NULL;
    }
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *line = *storage;
    memcpy(line, *p, n);
    line[n] = '\0';
    *storage += n + 1;
    *p += n + (nl != NULL ? 1 : 0);
    return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *storage = malloc(size + 8);
    char *cursor = storage;
    const char *p = (const char *)data;
    const char *end = p + size;
    kms_http_header headers[MAX_HEADERS + 3];
    size_t n = 0;
    char amz_date[17], authorization[512];
    bool signing = size > 0 && (data[0] & 1) != 0;
    FUZZ_CHECK(storage != NULL);
    if (size > 0) {
        p++; /* the first byte only chooses */
    }
    char *method = next_line(&p, end, &cursor);
    char *path = next_line(&p, end, &cursor);
    char *query = path != NULL ? strchr(path, '?') : NULL;
    if (query != NULL) {
        *query++ = '\0';
    }
    char *line;
    while (n < MAX_HEADERS && (line = next_line(&p, end, &cursor)) != NULL && line[0] != '\0') {
        char *colon = strchr(line, ':');
        if (colon == NULL) {
            continue;
        }
        *colon = '\0';
        headers[n].name = line;
        headers[n].value = colon[1] == ' ' ? colon + 2 : colon + 1;
        n++;
    }
    method = method != NULL ? method : "POST";
    path = path != NULL && path[0] == '/' ? path : "/";
    if (signing) {
        sign(method, path, query, headers, &n, (const uint8_t *)p, (size_t)(end - p), amz_date,
             authorization);
    }
    kmsd_http_request req = {
        .method = method,
        .path = path,
        .query = query,
        .headers = headers,
        .header_count = n,
        .body = (const uint8_t *)p,
        .body_len = (size_t)(end - p),
        .source_ip = "192.0.2.1",
        .tls_version = "TLSv1.3",
        .cipher_suite = "TLS_AES_128_GCM_SHA256",
    };
    kmsd_handler h = {.client = client};
    kmsd_http_response resp;
    FUZZ_CHECK(kmsd_handle(&h, &req, &resp) == 0);
    FUZZ_CHECK(resp.status == 200 || resp.status == 400 || resp.status == 403 ||
               resp.status == 404 || resp.status == 500 || resp.status == 503);
    FUZZ_CHECK(resp.body != NULL && resp.body_len == strlen(resp.body));
    FUZZ_CHECK(strlen(resp.request_id) == 36);
    if (strcmp(resp.content_type, "text/xml") == 0) {
        /* The query protocol: an STS answer or ErrorResponse naming the same request id. */
        FUZZ_CHECK(resp.body[0] == '<' && strstr(resp.body, resp.request_id) != NULL);
        FUZZ_CHECK((resp.status == 200) == (strstr(resp.body, "<ErrorResponse") == NULL));
        kmsd_response_clean_up(&resp);
        free(storage);
        return 0;
    }
    FUZZ_CHECK(resp.status != 403);
    json_t *j = json_loads(resp.body, 0, NULL);
    FUZZ_CHECK(json_is_object(j));
    if (resp.status != 200) {
        FUZZ_CHECK(json_is_string(json_object_get(j, "__type")));
        FUZZ_CHECK(json_is_string(json_object_get(j, "message")));
    }
    json_decref(j);
    kmsd_response_clean_up(&resp);
    free(storage);
    return 0;
}
