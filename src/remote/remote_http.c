/* HTTPS with libcurl: a pool of easy handles (one per request in flight, each keeping its
 * connection alive for the next request), TLS 1.2 or later, the peer always verified. */
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "remote/remote_internal.h"
#include "util/util.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int kms_remote_http_init(void)
{
    pthread_once(&global_once, global_init);
    KMS_ENSURE(global_rc == CURLE_OK, KMS_ERR_INTERNAL, "libcurl could not start: %s",
               curl_easy_strerror(global_rc));
    return 0;
}

void kms_remote_exchange_init(kms_http_exchange *x)
{
    memset(x, 0, sizeof *x);
    kms_buf_init(&x->response, true);
}

void kms_remote_exchange_clean_up(kms_http_exchange *x)
{
    kms_buf_clean_up(&x->response);
}

/* A handle from the pool, or a new one set up for this endpoint. */
static CURL *handle_take(struct kms_remote *r)
{
    CURL *h = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->n_idle > 0) {
        h = r->idle[--r->n_idle];
    }
    pthread_mutex_unlock(&r->lock);
    if (h != NULL) {
        return h;
    }
    h = curl_easy_init();
    if (h == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    /* Set once for the handle's life: HTTPS only, TLS 1.2 or later, the peer and its name
     * verified against ca_bundle (else the system's CAs); no signals (threads). */
    if (curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
        (r->ca_bundle != NULL && curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_bundle) != CURLE_OK) ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, r->user_agent) != CURLE_OK) {
        curl_easy_cleanup(h);
        kms_raise(KMS_ERR_INTERNAL, "libcurl lacks HTTPS with TLS 1.2");
        return NULL;
    }
    return h;
}

/* Back to the pool with its connection; a handle the pool cannot hold is closed. */
static void handle_give_back(struct kms_remote *r, CURL *h)
{
    bool kept = false;
    pthread_mutex_lock(&r->lock);
    if (r->n_idle < r->cap_idle ||
        kms_array_reserve((void **)&r->idle, &r->cap_idle, r->n_idle, sizeof r->idle[0]) == 0) {
        r->idle[r->n_idle++] = h;
        kept = true;
    }
    pthread_mutex_unlock(&r->lock);
    if (!kept) {
        kms_error_clear();
        curl_easy_cleanup(h);
    }
}

void kms_remote_http_pool_clean_up(struct kms_remote *r)
{
    for (size_t i = 0; i < r->n_idle; i++) {
        curl_easy_cleanup(r->idle[i]);
    }
    free(r->idle);
    r->idle = NULL;
    r->n_idle = r->cap_idle = 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    kms_http_exchange *x = arg;
    size_t len = size * n;
    if (x->response.len + len > KMS_REMOTE_BODY_MAX ||
        kms_buf_append(&x->response, (const uint8_t *)p, len) != 0) {
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    return len;
}

/* Copies the value of header line p (len bytes) into out if it is named name. */
static void header_value(const char *p, size_t len, const char *name, char *out, size_t out_size)
{
    size_t nlen = strlen(name);
    if (len <= nlen + 1 || strncasecmp(p, name, nlen) != 0 || p[nlen] != ':') {
        return;
    }
    const char *v = p + nlen + 1;
    const char *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) {
        end--;
    }
    snprintf(out, out_size, "%.*s", (int)(end - v), v);
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    kms_http_exchange *x = arg;
    size_t len = size * n;
    header_value(p, len, "x-amzn-RequestId", x->request_id, sizeof x->request_id);
    header_value(p, len, "x-amzn-ErrorType", x->error_type, sizeof x->error_type);
    x->error_type[strcspn(x->error_type, ":")] = '\0';
    return len;
}

static kms_transport_failure failure_of(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return KMS_TRANSPORT_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return KMS_TRANSPORT_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return KMS_TRANSPORT_CONNECT;
    default:
        /* TLS verification, a bad CA file, a refused protocol: trying again cannot help. */
        return KMS_TRANSPORT_FATAL;
    }
}

int kms_remote_http_perform(struct kms_remote *r, kms_http_exchange *x)
{
    int rc = -1;
    struct curl_slist *list = NULL, *next = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    char *url = NULL;
    char *host = NULL;
    CURL *h = handle_take(r);
    if (h == NULL) {
        return -1;
    }
    url = kms_strdup_printf("%s%s", r->endpoint, x->path);
    host = kms_strdup_printf("Host: %s", r->host);
    if (url == NULL || host == NULL) {
        goto out;
    }
    /* Host as signed; no "Expect: 100-continue" round trip before a body. */
    const char *fixed[] = {host, "Expect:"};
    for (size_t i = 0; i < 2; i++) {
        if ((next = curl_slist_append(list, fixed[i])) == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        list = next;
    }
    for (size_t i = 0; x->headers != NULL && x->headers[i] != NULL; i++) {
        if ((next = curl_slist_append(list, x->headers[i])) == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        list = next;
    }
    bool post = strcmp(x->method, "POST") == 0;
    if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, list) != CURLE_OK ||
        (post ? curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)x->body_len) != CURLE_OK ||
                    curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body ? x->body : "") != CURLE_OK
              : curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) != CURLE_OK) ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERDATA, x) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms) != CURLE_OK) {
        kms_raise(KMS_ERR_INTERNAL, "libcurl refused a request option");
        goto out;
    }
    x->status = 0;
    x->request_id[0] = x->error_type[0] = x->reason[0] = '\0';
    CURLcode crc = curl_easy_perform(h);
    x->failure = failure_of(crc);
    if (crc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
    } else {
        /* A server whose certificate is not trusted is mostly a missing or wrong CA bundle. */
        bool untrusted = crc == CURLE_PEER_FAILED_VERIFICATION;
        snprintf(x->reason, sizeof x->reason, "%s%s%s%s%s", curl_easy_strerror(crc),
                 errbuf[0] ? " (" : "", errbuf, errbuf[0] ? ")" : "",
                 untrusted ? "; trust the server's CA with --ca-bundle FILE (kmsd writes it to "
                             "its home as kmsd-ca.pem)"
                           : "");
    }
    rc = 0;
out:
    /* The handle keeps no pointer into this call's memory past it. */
    if (curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL) != CURLE_OK) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    if (h != NULL) {
        handle_give_back(r, h);
    }
    /* The lines hold the session token and the signature. */
    for (struct curl_slist *l = list; l != NULL; l = l->next) {
        sodium_memzero(l->data, strlen(l->data));
    }
    curl_slist_free_all(list);
    free(url);
    free(host);
    return rc;
}
