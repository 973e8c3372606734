/* The plain-HTTP listener: revocation for relying parties (CRLs and OCSP). */
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kms/tls.h"
#include "kmsd.h"
#include "metrics.h"
#include "throttle.h"

#define MAX_HEADERS_SIZE 16384

#include "http.h"

/* ---- The plain-HTTP side: revocation for relying parties ------------------------------------ */

static void serve_crl(kmsd_server *s, struct evhttp_request *req, const char *name)
{
    char id[64];
    size_t n = strlen(name);
    if (n < 5 || n - 4 >= sizeof id || strcmp(name + n - 4, ".crl") != 0) {
        evhttp_send_error(req, 404, NULL);
        return;
    }
    memcpy(id, name, n - 4);
    id[n - 4] = '\0';
    uint8_t *der = NULL;
    size_t len = 0;
    if (kms_crl_get(s->client, id, &der, &len) != 0) {
        evhttp_send_error(req, 404, NULL);
        return;
    }
    kmsd_conn_reply(req, 200, "application/pkix-crl", der, len, NULL, false);
    kms_buffer_free(der);
}

static void serve_ocsp(kmsd_server *s, struct evhttp_request *req, const uint8_t *der, size_t len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (kms_ocsp_respond(s->client, der, len, &out, &out_len) != 0) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    kmsd_conn_reply(req, 200, "application/ocsp-response", out, out_len, NULL, false);
    kms_buffer_free(out);
}

/* RFC 6960 A.1: GET {url}/{url-encoding of base64 encoding of the DER OCSPRequest} */
static void serve_ocsp_get(kmsd_server *s, struct evhttp_request *req, const char *encoded)
{
    char *b64 = evhttp_uridecode(encoded, 0, NULL);
    size_t n = b64 != NULL ? strlen(b64) : 0;
    uint8_t *der = malloc(n / 4 * 3 + 3);
    int len = der != NULL && n > 0 && n % 4 == 0
                  ? EVP_DecodeBlock(der, (unsigned char *)b64, (int)n)
                  : -1;
    if (len < 0) {
        evhttp_send_error(req, 400, NULL);
    } else {
        /* EVP_DecodeBlock counts the padding's zero bytes; DER ignores what follows. */
        serve_ocsp(s, req, der, (size_t)len);
    }
    free(der);
    free(b64);
}

void kmsd_plain_http_cb(struct evhttp_request *req, void *arg)
{
    worker *w = arg;
    kmsd_server *s = w->s;
    conn *c = kmsd_conn_plain_of(w, req);
    if (c != NULL) {
        c->idle = false;
        event_del(c->deadline); /* while it is served; request_done sets the next */
        evhttp_request_set_on_complete_cb(req, kmsd_conn_request_done, c);
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (kmsd_conn_refuse_ambiguous(req)) {
        return;
    } else if (path == NULL) {
        evhttp_send_error(req, 404, NULL);
    } else if (cmd == EVHTTP_REQ_GET && strncmp(path, "/crl/", 5) == 0) {
        serve_crl(s, req, path + 5);
    } else if (cmd == EVHTTP_REQ_GET && strncmp(path, "/ocsp/", 6) == 0) {
        serve_ocsp_get(s, req, path + 6);
    } else if (cmd == EVHTTP_REQ_POST && strcmp(path, "/ocsp") == 0) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        const uint8_t *der = len > 0 ? evbuffer_pullup(in, (ev_ssize_t)len) : NULL;
        serve_ocsp(s, req, der != NULL ? der : (const uint8_t *)"", len);
    } else {
        evhttp_send_error(req, 404, NULL);
    }
}
