/* Fuzzes kmsd's request path from bytes to the dispatcher: kmsd_handle (tools/kmsd/handler.c:
 * routing by X-Amz-Target and Content-Type, the JSON body, kms_call_network with its SigV4 check
 * and the gate, AWS's response and error shapes) against a real home made once. The input is
 *   METHOD\nPATH[?QUERY]\nName: value\n...\n\nBODY
 * Every request must get a well-formed answer: a status AWS uses, a JSON body (the response, or
 * {"__type", "message"}), and a request id. */
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "kmsd.h"

#define MAX_HEADERS 64

static char dir[64];
static kms_client *client;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void cleanup(void)
{
    kms_client_free(client);
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
    return 0;
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
    kms_http_header headers[MAX_HEADERS];
    size_t n = 0;
    FUZZ_CHECK(storage != NULL);
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
    kmsd_http_request req = {
        .method = method != NULL ? method : "POST",
        .path = path != NULL ? path : "/",
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
    FUZZ_CHECK(resp.status == 200 || resp.status == 400 || resp.status == 404 ||
               resp.status == 500 || resp.status == 503);
    FUZZ_CHECK(resp.body != NULL && resp.body_len == strlen(resp.body));
    FUZZ_CHECK(strlen(resp.request_id) == 36);
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
