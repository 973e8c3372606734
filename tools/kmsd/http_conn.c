/* TLS connections: each is counted from the bevcb to the SSL's release (an ex_data free
 * callback), has a deadline for its next request (see http.c), and is answered by reply. */
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

static int conn_index = -1;

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp);

int kmsd_conn_init(void)
{
    if (conn_index < 0) {
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
    }
    return conn_index >= 0 ? 0 : -1;
}

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

struct bufferevent *kmsd_conn_tls_bev(struct event_base *base, void *arg)
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

/* ---- Plain-HTTP connections -------------------------------------------------------------------
 * No SSL to hang the conn on, and evhttp 2.1 tells nothing when it frees a connection: the conn
 * holds a reference to the bufferevent, whose event callback evhttp sets for the connection's
 * life (evhttp_error_cb) and bufferevent_free clears; the worker's sweep then releases it (and
 * with that last reference the descriptor is closed). */

static bool plain_freed(const conn *c)
{
    bufferevent_event_cb eventcb = NULL;
    void *arg = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, &eventcb, &arg);
    return eventcb == NULL && arg == NULL;
}

static void plain_cut(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    evutil_socket_t sock = bufferevent_getfd(c->bev);
    if (sock >= 0) {
        shutdown(sock, SHUT_RDWR); /* evhttp sees the end and frees the connection */
    }
}

static void plain_release(worker *w, conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->plain = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    atomic_fetch_sub(&c->s->connections, 1);
    event_free(c->deadline);
    bufferevent_decref(c->bev);
    free(c);
}

struct bufferevent *kmsd_conn_plain_bev(struct event_base *base, void *arg)
{
    worker *w = arg;
    kmsd_server *s = w->s;
    conn *c = calloc(1, sizeof *c);
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct event *deadline = c != NULL ? evtimer_new(base, plain_cut, c) : NULL;
    if (c == NULL || bev == NULL || deadline == NULL) {
        fprintf(stderr, "kmsd: cannot make a plain-HTTP connection\n");
        if (deadline != NULL) {
            event_free(deadline);
        }
        if (bev != NULL) {
            bufferevent_free(bev);
        }
        free(c);
        return NULL;
    }
    bufferevent_incref(bev);
    c->s = s;
    c->bev = bev;
    c->idle = true;
    c->deadline = deadline;
    c->next = w->plain;
    if (w->plain != NULL) {
        w->plain->prev = c;
    }
    w->plain = c;
    long n = atomic_fetch_add(&s->connections, 1) + 1;
    /* Over the limit, or draining: shut at once (evhttp sets the descriptor before the loop
     * runs again). */
    bool refuse = n > s->cfg->max_connections || atomic_load(&s->draining);
    conn_deadline(c, refuse ? 0 : s->cfg->header_timeout_seconds + s->cfg->body_timeout_seconds);
    return bev;
}

conn *kmsd_conn_plain_of(worker *w, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    for (conn *c = w->plain; c != NULL && bev != NULL; c = c->next) {
        if (c->bev == bev) {
            return c;
        }
    }
    return NULL;
}

void kmsd_conn_plain_sweep(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    bool draining = atomic_load(&w->s->draining);
    conn *next = NULL;
    for (conn *c = w->plain; c != NULL; c = next) {
        next = c->next;
        evutil_socket_t sock = bufferevent_getfd(c->bev);
        if (plain_freed(c)) {
            plain_release(w, c);
        } else if (draining && c->idle && sock >= 0) {
            shutdown(sock, SHUT_RDWR);
        }
    }
}

void kmsd_conn_plain_free_all(worker *w)
{
    while (w->plain != NULL) {
        plain_release(w, w->plain);
    }
}

conn *kmsd_conn_of(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl != NULL ? SSL_get_ex_data(ssl, conn_index) : NULL;
}

void kmsd_conn_request_done(struct evhttp_request *req, void *arg)
{
    conn *c = arg;
    c->idle = true;
    const kmsd_config *cfg = c->s->cfg;
    conn_deadline(c, cfg->idle_timeout_seconds + cfg->header_timeout_seconds +
                         cfg->body_timeout_seconds);
}

/* ---- Responses --------------------------------------------------------------------------------
 */

void kmsd_conn_reply(struct evhttp_request *req, int status, const char *content_type,
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
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    evhttp_send_reply(req, status, reason, buf);
    evbuffer_free(buf);
    /* evhttp leaves the head and the body in separate chains of the connection's output, and
     * bufferevent_openssl makes one SSL_write, so one TLS record and one send(), of each chain.
     * The bytes are written when the loop next finds the socket writable: made one chain now,
     * they leave as one record in one segment (the body is copied once, at most 3 MiB). */
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (bev != NULL) {
        (void)evbuffer_pullup(bufferevent_get_output(bev), -1);
    }
}

bool kmsd_conn_refuse_ambiguous(struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyval *h;
    int lengths = 0;
    for (h = in->tqh_first; h != NULL; h = h->next.tqe_next) {
        if (evutil_ascii_strcasecmp(h->key, "Content-Length") == 0) {
            lengths++;
        }
    }
    if (lengths <= 1) {
        return false;
    }
    /* evhttp took the first; a proxy in front may have taken another, and what evhttp would read
     * next as a pipelined request is then another's body: answer, close, read nothing more. */
    static const char msg[] = "more than one Content-Length\n";
    kmsd_conn_reply(req, 400, "text/plain", msg, sizeof msg - 1, NULL, true);
    return true;
}

double kmsd_conn_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
