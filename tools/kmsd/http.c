/* Serving with libevent's evhttp (2.1): one worker thread per core, each with its own event_base
 * and evhttp accepting on the same listening sockets (each a dup of the socket the main thread
 * bound), TLS through bufferevent_openssl with SSLs from the TLS helper (so a renewed managed
 * certificate is served from the next connection on).
 *
 * Limits, and how evhttp 2.1 is made to keep them:
 *   - headers 16 KiB and the body max_body_bytes (evhttp answers 413 and closes);
 *   - evhttp's own timeout (body_timeout_seconds) is an inactivity timeout, which a client sending
 *     a byte a second never trips; so each TLS connection also has a deadline: a request must
 *     arrive whole (headers and body: evhttp 2.1 does not tell when the headers are complete)
 *     within header_timeout_seconds + body_timeout_seconds of the connection, or of the previous
 *     response plus idle_timeout_seconds, else its socket is shut down;
 *   - connections are counted from the bevcb to the SSL's release (an ex_data free callback);
 *     past max_connections a new one is shut down at once, before its handshake;
 *   - after an error that leaves the stream undefined (bad request line, oversized, timeout)
 *     evhttp answers with Connection: close, or just closes.
 * The plain-HTTP listener serves only GET /crl/ID.crl and OCSP (GET and POST /ocsp). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
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
#define MAX_REQUEST_HEADERS 128

typedef struct worker worker;
typedef struct conn conn;

struct kmsd_server {
    kms_client *client;
    const char *home;
    kmsd_config *cfg;
    kms_tls_server *tls;
    kms_tls_server *retired[16]; /* replaced on SIGHUP, freed at exit (others may hold them) */
    size_t n_retired;
    pthread_mutex_t lock; /* tls, cfg's reloadable parts, the request counts */
    int fds[KMSD_MAX_LISTEN];
    size_t n_fds;
    int http_fd;
    worker *workers;
    int n_workers;
    struct event_base *main_base;
    atomic_long connections;
    atomic_int draining;
    kmsd_handler handler;
    kmsd_throttle *throttle;
    kmsd_metrics *metrics;
    conn *conns;
    pthread_t scheduler;
    bool scheduler_started;
    pthread_mutex_t sched_lock;
    pthread_cond_t sched_cond;
    bool stopping;
};

struct worker {
    kmsd_server *s;
    struct event_base *base;
    struct evhttp *https;
    struct evhttp *http;
    struct evhttp_bound_socket *bound[KMSD_MAX_LISTEN + 1];
    size_t n_bound;
    pthread_t thread;
};

/* Per TLS connection, hung on its SSL (freed with it). */
struct conn {
    kmsd_server *s;
    struct event *deadline;
    SSL *ssl;
    bool idle;                /* no request under way: none yet, or its last response was written */
    struct conn *prev, *next; /* the server's list, under its lock */
};

static int conn_index = -1;

/* ---- Connections ------------------------------------------------------------------------------
 */

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    conn *c = ptr;
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->s->lock);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    pthread_mutex_unlock(&c->s->lock);
    atomic_fetch_sub(&c->s->connections, 1);
    if (c->deadline != NULL) {
        event_free(c->deadline);
    }
    free(c);
}

static void conn_cut(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    int sock = SSL_get_fd(c->ssl);
    if (sock >= 0) {
        shutdown(sock, SHUT_RDWR); /* evhttp sees the end and frees the connection */
    }
}

static void conn_deadline(conn *c, int seconds)
{
    struct timeval tv = {seconds, 0};
    event_add(c->deadline, &tv);
}

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    kmsd_server *s = arg;
    SSL *ssl = NULL;
    pthread_mutex_lock(&s->lock);
    ssl = kms_tls_server_ssl_new(s->tls);
    pthread_mutex_unlock(&s->lock);
    conn *c = calloc(1, sizeof *c);
    if (ssl == NULL || c == NULL) {
        fprintf(stderr, "kmsd: cannot make a TLS connection: %s\n", kms_last_error_message());
        SSL_free(ssl);
        free(c);
        return NULL; /* evhttp then reads plaintext, which a TLS client's hello is not */
    }
    c->s = s;
    c->ssl = ssl;
    c->idle = true;
    c->deadline = evtimer_new(base, conn_cut, c);
    if (c->deadline == NULL || SSL_set_ex_data(ssl, conn_index, c) != 1) {
        if (c->deadline != NULL) {
            event_free(c->deadline);
        }
        free(c);
        SSL_free(ssl);
        return NULL;
    }
    long n = atomic_fetch_add(&s->connections, 1) + 1;
    pthread_mutex_lock(&s->lock);
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    pthread_mutex_unlock(&s->lock);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        SSL_free(ssl); /* and so c */
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    /* Over the limit, or draining: shut at once, before any handshake work. */
    bool refuse = n > s->cfg->max_connections || atomic_load(&s->draining);
    conn_deadline(c, refuse ? 0 : s->cfg->header_timeout_seconds + s->cfg->body_timeout_seconds);
    return bev;
}

static conn *conn_of(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl != NULL ? SSL_get_ex_data(ssl, conn_index) : NULL;
}

static void request_done(struct evhttp_request *req, void *arg)
{
    conn *c = arg;
    c->idle = true;
    const kmsd_config *cfg = c->s->cfg;
    conn_deadline(c, cfg->idle_timeout_seconds + cfg->header_timeout_seconds +
                         cfg->body_timeout_seconds);
}

/* ---- Responses --------------------------------------------------------------------------------
 */

static void reply(struct evhttp_request *req, int status, const char *content_type,
                  const void *body, size_t len, const char *request_id, bool close)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *buf = evbuffer_new();
    if (buf == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(buf, body, len);
    evhttp_add_header(out, "Content-Type", content_type);
    if (request_id != NULL && request_id[0] != '\0') {
        evhttp_add_header(out, "x-amzn-RequestId", request_id);
    }
    if (close) {
        evhttp_add_header(out, "Connection", "close");
    }
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 403 ? "Forbidden"
                         : status == 404 ? "Not Found"
                         : status == 413 ? "Payload Too Large"
                         : status == 503 ? "Service Unavailable"
                                         : "Internal Server Error";
    evhttp_send_reply(req, status, reason, buf);
    evbuffer_free(buf);
}

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An answer held back by the authentication slow-down (throttle.h), sent from a timer so that the
 * worker goes on serving others meanwhile. evhttp keeps a request whose connection closed in the
 * meantime until it is answered (and then frees it), so req stays valid. */
typedef struct delayed {
    struct evhttp_request *req;
    kmsd_http_response resp;
    bool close;
} delayed;

static void delayed_reply(evutil_socket_t fd, short what, void *arg)
{
    delayed *d = arg;
    reply(d->req, d->resp.status, d->resp.content_type, d->resp.body, d->resp.body_len,
          d->resp.request_id, d->close);
    kmsd_response_clean_up(&d->resp);
    free(d);
}

/* The throttle's limits and counts as metrics series (every limit in config.json is visible). */
static void throttle_metrics(kmsd_server *s)
{
    json_t *limits = NULL;
    char err[128];
    const char *name;
    json_t *q;
    if (kmsd_throttle_limits(s->throttle, &limits) != 0) {
        return;
    }
    json_object_foreach(json_object_get(limits, "Quotas"), name, q)
    {
        (void)kmsd_metrics_set(s->metrics, KMSD_METRIC_GAUGE, "kmsd_throttle_limit",
                               "Requests per second a throttle bucket allows.", "quota", name,
                               json_number_value(json_object_get(q, "Limit")), err, sizeof err);
        (void)kmsd_metrics_set(s->metrics, KMSD_METRIC_COUNTER, "kmsd_throttled_requests_total",
                               "Requests refused with ThrottlingException.", "quota", name,
                               json_number_value(json_object_get(q, "Throttled")), err, sizeof err);
    }
    json_t *af = json_object_get(limits, "AuthFailures");
    (void)kmsd_metrics_set(s->metrics, KMSD_METRIC_GAUGE, "kmsd_auth_failure_addresses",
                           "Source addresses with recent authentication failures.", NULL, NULL,
                           json_number_value(json_object_get(af, "Addresses")), err, sizeof err);
    (void)kmsd_metrics_set(s->metrics, KMSD_METRIC_COUNTER, "kmsd_auth_delayed_total",
                           "Answers delayed after repeated authentication failures.", NULL, NULL,
                           json_number_value(json_object_get(af, "Delayed")), err, sizeof err);
    json_decref(limits);
}

/* ---- The HTTPS side ---------------------------------------------------------------------------
 */

static const char *peer_ip(struct evhttp_request *req, char *buf, size_t size)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
    snprintf(buf, size, "%s", addr != NULL ? addr : "");
    if (strncmp(buf, "::ffff:", 7) == 0 && strchr(buf + 7, '.') != NULL) {
        memmove(buf, buf + 7, strlen(buf + 7) + 1); /* an IPv4 client of an IPv6 socket */
    }
    return buf;
}

static void serve_health(kmsd_server *s, struct evhttp_request *req)
{
    const char *region = kms_client_region(s->client);
    json_t *j = json_pack("{s:s, s:s}", "Status", "ok", "Region", region ? region : "");
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    reply(req, 200, "application/json", text, strlen(text), NULL, false);
    free(text);
}

static void serve_metrics(kmsd_server *s, struct evhttp_request *req, const char *ip)
{
    pthread_mutex_lock(&s->lock);
    bool allowed = kmsd_config_metrics_allowed(s->cfg, ip);
    pthread_mutex_unlock(&s->lock);
    if (!allowed) {
        static const char denied[] = "{\"__type\":\"AccessDeniedException\",\"message\":\"/metrics "
                                     "is not open to this address\"}";
        reply(req, 403, "application/json", denied, sizeof denied - 1, NULL, false);
        return;
    }
    throttle_metrics(s);
    char *extra = kmsd_status_metrics(s->client, s->cfg, atomic_load(&s->connections), NULL);
    char *text = NULL;
    if (extra == NULL || kmsd_metrics_render(s->metrics, extra, &text) != 0) {
        free(extra);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    reply(req, 200, "text/plain; version=0.0.4", text, strlen(text), NULL, false);
    free(extra);
    free(text);
}

static void serve_api(kmsd_server *s, struct evhttp_request *req, const char *ip, conn *c)
{
    kms_http_header headers[MAX_REQUEST_HEADERS];
    size_t n = 0;
    for (struct evkeyval *kv = evhttp_request_get_input_headers(req)->tqh_first; kv != NULL;
         kv = kv->next.tqe_next) {
        if (n == MAX_REQUEST_HEADERS) {
            static const char many[] =
                "{\"__type\":\"ValidationException\",\"message\":\"too many headers\"}";
            reply(req, 400, "application/x-amz-json-1.1", many, sizeof many - 1, NULL, true);
            return;
        }
        headers[n].name = kv->key;
        headers[n].value = kv->value;
        n++;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const uint8_t *body = len > 0 ? evbuffer_pullup(in, (ev_ssize_t)len) : (const uint8_t *)"";
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *method = evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "GET";
    SSL *ssl = c != NULL ? c->ssl : NULL;
    const SSL_CIPHER *cipher = ssl != NULL ? SSL_get_current_cipher(ssl) : NULL;
    kmsd_http_request hr = {
        .method = method,
        .path = path != NULL && path[0] != '\0' ? path : "/",
        .query = uri != NULL ? evhttp_uri_get_query(uri) : NULL,
        .headers = headers,
        .header_count = n,
        .body = body,
        .body_len = len,
        .source_ip = ip,
        .tls_version = ssl != NULL ? SSL_get_version(ssl) : NULL,
        .cipher_suite = cipher != NULL ? SSL_CIPHER_standard_name(cipher) : NULL,
    };
    kmsd_http_response resp;
    double start = monotonic();
    if (body == NULL || kmsd_handle(&s->handler, &hr, &resp) != 0) {
        evhttp_send_error(req, 500, NULL);
        kmsd_response_clean_up(&resp);
        return;
    }
    double now = monotonic();
    kmsd_metrics_observe(s->metrics, resp.operation[0] != '\0' ? resp.operation : "Other",
                         resp.outcome != NULL ? resp.outcome : "Other", now - start);
    if (resp.auth_failed) {
        kmsd_throttle_auth_failed(s->throttle, ip, now);
    }
    bool close = resp.close || atomic_load(&s->draining);
    double delay = kmsd_throttle_auth_delay(s->throttle, ip, now);
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    delayed *d = delay > 0 && evcon != NULL ? malloc(sizeof *d) : NULL;
    if (d != NULL) {
        struct timeval tv = {(time_t)delay, (suseconds_t)((delay - (double)(time_t)delay) * 1e6)};
        d->req = req;
        d->resp = resp;
        d->close = close;
        if (event_base_once(evhttp_connection_get_base(evcon), -1, EV_TIMEOUT, delayed_reply, d,
                            &tv) == 0) {
            return; /* d owns the response now */
        }
        free(d);
    }
    reply(req, resp.status, resp.content_type, resp.body, resp.body_len, resp.request_id, close);
    kmsd_response_clean_up(&resp);
}

static void https_cb(struct evhttp_request *req, void *arg)
{
    kmsd_server *s = arg;
    char ip[INET6_ADDRSTRLEN + 8];
    conn *c = conn_of(req);
    if (c == NULL) {
        /* tls_bev could not make a TLS connection and evhttp read plaintext: never serve it. */
        evhttp_send_error(req, 503, "TLS unavailable");
        return;
    }
    c->idle = false;
    event_del(c->deadline); /* while it is served; request_done sets the next */
    evhttp_request_set_on_complete_cb(req, request_done, c);
    peer_ip(req, ip, sizeof ip);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : "";
    bool get = evhttp_request_get_command(req) == EVHTTP_REQ_GET;
    if (get && path != NULL && strcmp(path, "/health") == 0) {
        serve_health(s, req);
    } else if (get && path != NULL && strcmp(path, "/metrics") == 0) {
        serve_metrics(s, req, ip);
    } else {
        serve_api(s, req, ip, c);
    }
}

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
    reply(req, 200, "application/pkix-crl", der, len, NULL, false);
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
    reply(req, 200, "application/ocsp-response", out, out_len, NULL, false);
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

static void http_cb(struct evhttp_request *req, void *arg)
{
    kmsd_server *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (path == NULL) {
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

/* ---- Listening ------------------------------------------------------------------------------- */

/* "ADDR:PORT", "[V6]:PORT": a bound, listening, non-blocking socket, or -1. */
static int listen_on(const char *spec)
{
    char host[256];
    const char *port = strrchr(spec, ':');
    const char *h = spec;
    size_t hl = port != NULL ? (size_t)(port - spec) : 0;
    if (port == NULL || hl == 0 || hl >= sizeof host) {
        fprintf(stderr, "kmsd: %s is not ADDR:PORT\n", spec);
        return -1;
    }
    if (h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int e = getaddrinfo(host, port + 1, &hints, &ai);
    if (e != 0) {
        fprintf(stderr, "kmsd: %s: %s\n", spec, gai_strerror(e));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        /* Accepted sockets inherit it: without it, a response written in two pieces waits
         * for the client's delayed ACK (40 ms a request). */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "kmsd: cannot listen on %s: %s\n", spec, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static struct evhttp *http_new(kmsd_server *s, struct event_base *base,
                               void (*cb)(struct evhttp_request *, void *))
{
    struct evhttp *http = evhttp_new(base);
    if (http == NULL) {
        return NULL;
    }
    struct timeval tv = {s->cfg->body_timeout_seconds, 0};
    evhttp_set_timeout_tv(http, &tv);
    evhttp_set_max_headers_size(http, MAX_HEADERS_SIZE);
    evhttp_set_max_body_size(http, (ev_ssize_t)s->cfg->max_body_bytes);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(http, cb, s);
    return http;
}

static int bind_dup(worker *w, struct evhttp *http, int fd)
{
    int copy = dup(fd);
    struct evconnlistener *l =
        copy >= 0 ? evconnlistener_new(w->base, NULL, NULL,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, copy)
                  : NULL;
    if (l == NULL) {
        if (copy >= 0) {
            close(copy);
        }
        return -1;
    }
    struct evhttp_bound_socket *b = evhttp_bind_listener(http, l);
    if (b == NULL) {
        evconnlistener_free(l);
        return -1;
    }
    w->bound[w->n_bound++] = b;
    return 0;
}

static int worker_init(kmsd_server *s, worker *w)
{
    w->s = s;
    w->base = event_base_new();
    if (w->base == NULL || (w->https = http_new(s, w->base, https_cb)) == NULL) {
        return -1;
    }
    evhttp_set_bevcb(w->https, tls_bev, s);
    for (size_t i = 0; i < s->n_fds; i++) {
        if (bind_dup(w, w->https, s->fds[i]) != 0) {
            return -1;
        }
    }
    if (s->http_fd >= 0) {
        if ((w->http = http_new(s, w->base, http_cb)) == NULL ||
            bind_dup(w, w->http, s->http_fd) != 0) {
            return -1;
        }
    }
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* In the worker's thread (event_base_once): no new connection from now on. */
static void worker_stop_accepting(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    for (size_t i = 0; i < w->n_bound; i++) {
        struct evconnlistener *l = evhttp_bound_socket_get_listener(w->bound[i]);
        evconnlistener_disable(l);
    }
}

static void worker_exit(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    event_base_loopbreak(w->base);
}

/* ---- The scheduler thread -------------------------------------------------------------------
 * Runs what is due (kms_scheduler_next_due), and at least every minute for certificate renewals
 * and CRLs; the claims in the store keep several processes' schedulers from acting twice. */
static void *scheduler_main(void *arg)
{
    kmsd_server *s = arg;
    pthread_mutex_lock(&s->sched_lock);
    while (!s->stopping) {
        pthread_mutex_unlock(&s->sched_lock);
        char *report = NULL;
        if (kms_scheduler_run(s->client, &report) != 0) {
            fprintf(stderr, "kmsd: scheduler: %s\n", kms_last_error_message());
        }
        kms_string_free(report);
        int64_t due = 0;
        time_t now = time(NULL);
        time_t wake = now + 60;
        if (kms_scheduler_next_due(s->client, &due) == 0 && due > 0 && due < wake) {
            wake = due > now ? (time_t)due : now + 1;
        }
        pthread_mutex_lock(&s->sched_lock);
        struct timespec ts = {wake, 0};
        while (!s->stopping && time(NULL) < wake) {
            pthread_cond_timedwait(&s->sched_cond, &s->sched_lock, &ts);
        }
    }
    pthread_mutex_unlock(&s->sched_lock);
    return NULL;
}

/* ---- Signals ---------------------------------------------------------------------------------
 */

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    kmsd_server *s = arg;
    kmsd_config fresh;
    if (kmsd_config_load(s->home, &fresh) != 0) {
        fprintf(stderr, "kmsd: SIGHUP: config.json not reloaded, the current settings stay\n");
        return;
    }
    /* The certificate: a renewal or reimport of the same certificate is served by the TLS
     * helper within a second of it, without this signal (kms_tls_server_reload would only rebuild
     * the context from the material it holds); another certificate_arn gets a new server. The
     * replaced one is kept until exit, as other workers may be making connections from it. */
    kms_tls_server *tls = NULL;
    const char *arn = fresh.certificate_arn;
    bool other = arn != NULL && strcmp(arn, s->cfg->certificate_arn) != 0;
    if (other && s->n_retired < sizeof s->retired / sizeof s->retired[0]) {
        kms_tls_options o = {.client = s->client, .certificate_arn = arn};
        tls = kms_tls_server_new(&o);
        if (tls == NULL) {
            fprintf(stderr, "kmsd: SIGHUP: the certificate %s cannot be served: %s\n", arn,
                    kms_last_error_message());
        }
    }
    pthread_mutex_lock(&s->lock);
    if (tls != NULL) {
        s->retired[s->n_retired++] = s->tls;
        s->tls = tls;
        char *t = s->cfg->certificate_arn;
        s->cfg->certificate_arn = fresh.certificate_arn;
        fresh.certificate_arn = t;
    }
    /* What can change while running: who may read /metrics (the rest needs a restart). */
    for (size_t i = 0; i < KMSD_MAX_METRICS_ALLOW; i++) {
        char *t = s->cfg->metrics_allow[i];
        s->cfg->metrics_allow[i] = fresh.metrics_allow[i];
        fresh.metrics_allow[i] = t;
    }
    size_t n = s->cfg->n_metrics_allow;
    s->cfg->n_metrics_allow = fresh.n_metrics_allow;
    fresh.n_metrics_allow = n;
    pthread_mutex_unlock(&s->lock);
    kmsd_config_clean_up(&fresh);
    fprintf(stderr, "kmsd: SIGHUP: configuration and certificate reloaded\n");
}

static void drain_tick(evutil_socket_t fd, short what, void *arg);

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    kmsd_server *s = arg;
    if (atomic_exchange(&s->draining, 1)) {
        return;
    }
    fprintf(stderr,
            "kmsd: stopping: no new connections, in-flight requests finish (%d s at most)\n",
            s->cfg->drain_seconds);
    struct timeval zero = {0, 0};
    for (int i = 0; i < s->n_workers; i++) {
        event_base_once(s->workers[i].base, -1, EV_TIMEOUT, worker_stop_accepting, &s->workers[i],
                        &zero);
    }
    drain_tick(-1, 0, s);
}

/* Every 100 ms while draining: idle connections are shut; when none is left, or the time is up,
 * the workers and the main loop stop. */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    kmsd_server *s = arg;
    static int ticks = 0;
    pthread_mutex_lock(&s->lock);
    for (conn *c = s->conns; c != NULL; c = c->next) {
        int sock = c->idle ? SSL_get_fd(c->ssl) : -1;
        if (sock >= 0) {
            shutdown(sock, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (atomic_load(&s->connections) == 0 || ticks++ >= s->cfg->drain_seconds * 10) {
        struct timeval zero = {0, 0};
        for (int i = 0; i < s->n_workers; i++) {
            event_base_once(s->workers[i].base, -1, EV_TIMEOUT, worker_exit, &s->workers[i], &zero);
        }
        event_base_loopbreak(s->main_base);
        return;
    }
    struct timeval tv = {0, 100000};
    event_base_once(s->main_base, -1, EV_TIMEOUT, drain_tick, s, &tv);
}

/* ---- The server ------------------------------------------------------------------------------
 */

/* One descriptor per connection: the soft limit raised to the hard one, and max_connections
 * kept below it (with room for the home's files and the HSM), so that the limit is what refuses
 * a connection, never a failing accept(). */
static void raise_fd_limit(kmsd_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 256 &&
        (rlim_t)cfg->max_connections > rl.rlim_cur - 256) {
        cfg->max_connections = (int)(rl.rlim_cur - 256);
        fprintf(stderr,
                "kmsd: max_connections lowered to %d by the open-files limit (%llu; raise it: "
                "ulimit -n, LimitNOFILE=)\n",
                cfg->max_connections, (unsigned long long)rl.rlim_cur);
    }
}

kmsd_server *kmsd_server_new(kms_client *client, const char *home, kmsd_config *cfg)
{
    kmsd_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->client = client;
    s->home = home;
    s->cfg = cfg;
    s->http_fd = -1;
    s->handler.client = client;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->sched_lock, NULL);
    pthread_cond_init(&s->sched_cond, NULL);
    raise_fd_limit(cfg);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        goto fail;
    }
    if (conn_index < 0) {
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
    }
    char err[256] = "";
    if ((s->throttle = kmsd_throttle_new(cfg->throttle, err, sizeof err)) == NULL ||
        (s->metrics = kmsd_metrics_new(kms_operations(), err, sizeof err)) == NULL) {
        fprintf(stderr, "kmsd: config.json: server.throttle: %s\n", err);
        goto fail;
    }
    s->handler.admit = kmsd_throttle_admit_fn;
    s->handler.admit_arg = s->throttle;
    kms_tls_options o = {.client = client, .certificate_arn = cfg->certificate_arn};
    if ((s->tls = kms_tls_server_new(&o)) == NULL) {
        fprintf(stderr, "kmsd: cannot serve the certificate %s: %s\n", cfg->certificate_arn,
                kms_last_error_message());
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_listen; i++) {
        if ((s->fds[s->n_fds] = listen_on(cfg->listen[i])) < 0) {
            goto fail;
        }
        s->n_fds++;
    }
    if (cfg->http_listen != NULL && strcmp(cfg->http_listen, "off") != 0 &&
        (s->http_fd = listen_on(cfg->http_listen)) < 0) {
        goto fail;
    }
    s->n_workers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s->n_workers < 1) {
        s->n_workers = 1;
    }
    s->workers = calloc((size_t)s->n_workers, sizeof *s->workers);
    if (s->workers == NULL || (s->main_base = event_base_new()) == NULL) {
        goto fail;
    }
    for (int i = 0; i < s->n_workers; i++) {
        if (worker_init(s, &s->workers[i]) != 0) {
            fprintf(stderr, "kmsd: cannot set up worker %d\n", i);
            goto fail;
        }
    }
    return s;
fail:
    kmsd_server_free(s);
    return NULL;
}

int kmsd_server_run(kmsd_server *s)
{
    struct event *hup = evsignal_new(s->main_base, SIGHUP, on_hup, s);
    struct event *term = evsignal_new(s->main_base, SIGTERM, on_term, s);
    struct event *intr = evsignal_new(s->main_base, SIGINT, on_term, s);
    int r = -1;
    int started = 0;
    if (hup == NULL || term == NULL || intr == NULL || event_add(hup, NULL) != 0 ||
        event_add(term, NULL) != 0 || event_add(intr, NULL) != 0) {
        goto out;
    }
    for (; started < s->n_workers; started++) {
        if (pthread_create(&s->workers[started].thread, NULL, worker_main, &s->workers[started]) !=
            0) {
            goto out;
        }
    }
    if (!s->cfg->no_scheduler) {
        s->scheduler_started = pthread_create(&s->scheduler, NULL, scheduler_main, s) == 0;
    }
    for (size_t i = 0; i < s->cfg->n_listen; i++) {
        printf("kmsd: listening on https://%s\n", s->cfg->listen[i]);
    }
    if (s->http_fd >= 0) {
        printf("kmsd: listening on http://%s (CRL and OCSP only)\n", s->cfg->http_listen);
    }
    fflush(stdout);
    event_base_loop(s->main_base, EVLOOP_NO_EXIT_ON_EMPTY);
    r = 0;
out:
    if (r != 0) {
        atomic_store(&s->draining, 1);
        struct timeval zero = {0, 0};
        for (int i = 0; i < started; i++) {
            event_base_once(s->workers[i].base, -1, EV_TIMEOUT, worker_exit, &s->workers[i], &zero);
        }
    }
    for (int i = 0; i < started; i++) {
        pthread_join(s->workers[i].thread, NULL);
    }
    if (s->scheduler_started) {
        pthread_mutex_lock(&s->sched_lock);
        s->stopping = true;
        pthread_cond_broadcast(&s->sched_cond);
        pthread_mutex_unlock(&s->sched_lock);
        pthread_join(s->scheduler, NULL);
        s->scheduler_started = false;
    }
    if (hup != NULL) {
        event_free(hup);
    }
    if (term != NULL) {
        event_free(term);
    }
    if (intr != NULL) {
        event_free(intr);
    }
    return r;
}

void kmsd_server_free(kmsd_server *s)
{
    if (s == NULL) {
        return;
    }
    for (int i = 0; s->workers != NULL && i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        if (w->https != NULL) {
            evhttp_free(w->https); /* frees its connections, so their SSLs and conns */
        }
        if (w->http != NULL) {
            evhttp_free(w->http);
        }
        if (w->base != NULL) {
            event_base_free(w->base);
        }
    }
    free(s->workers);
    if (s->main_base != NULL) {
        event_base_free(s->main_base);
    }
    for (size_t i = 0; i < s->n_fds; i++) {
        close(s->fds[i]);
    }
    if (s->http_fd >= 0) {
        close(s->http_fd);
    }
    kms_tls_server_free(s->tls);
    for (size_t i = 0; i < s->n_retired; i++) {
        kms_tls_server_free(s->retired[i]);
    }
    kmsd_throttle_free(s->throttle);
    kmsd_metrics_free(s->metrics);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->sched_lock);
    pthread_cond_destroy(&s->sched_cond);
    free(s);
}
