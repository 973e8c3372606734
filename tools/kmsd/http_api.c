/* The HTTPS side: /health and /metrics on the event loop, the API on the call threads. */
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

/* The call threads: how many, how many are running a call, how many calls wait. */
static void pool_metrics(kmsd_server *s)
{
    char err[128];
    size_t queued = 0;
    int busy = 0;
    kmsd_pool_stats(s->pool, &queued, &busy);
    (void)kmsd_metrics_set(s->metrics, KMSD_METRIC_GAUGE, "kmsd_call_threads",
                           "Call threads (server.call_threads).", NULL, NULL,
                           (double)s->cfg->call_threads, err, sizeof err);
    (void)kmsd_metrics_set(s->metrics, KMSD_METRIC_GAUGE, "kmsd_call_threads_busy",
                           "Call threads running a request.", NULL, NULL, (double)busy, err,
                           sizeof err);
    (void)kmsd_metrics_set(s->metrics, KMSD_METRIC_GAUGE, "kmsd_call_queue_depth",
                           "Requests waiting for a call thread.", NULL, NULL, (double)queued, err,
                           sizeof err);
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
    kmsd_conn_reply(req, 200, "application/json", text, strlen(text), NULL, false);
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
        kmsd_conn_reply(req, 403, "application/json", denied, sizeof denied - 1, NULL, false);
        return;
    }
    throttle_metrics(s);
    pool_metrics(s);
    char *extra = kmsd_status_metrics(s->client, s->cfg, atomic_load(&s->connections), NULL);
    char *text = NULL;
    if (extra == NULL || kmsd_metrics_render(s->metrics, extra, &text) != 0) {
        free(extra);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    kmsd_conn_reply(req, 200, "text/plain; version=0.0.4", text, strlen(text), NULL, false);
    free(extra);
    free(text);
}

/* ---- The API, through the call threads ---------------------------------------------------------
 * The event loop copies what the handler needs into a job (headers, path and query, the body's
 * buffer, the connection's facts) and queues it; a call thread runs kmsd_handle (which blocks on
 * the audit log's fsync and the HSM) and posts the job back to the loop with event_base_once
 * (libevent is made thread-aware in kmsd_server_new), after the authentication slow-down's delay
 * when there is one; the loop writes the answer (evhttp is only touched on its own thread).
 * A client that vanishes meanwhile: evhttp 2.1 detaches a request whose connection fails after
 * it was handed over (evhttp_connection_incoming_fail, EOF or error) instead of freeing it, and
 * frees it when it is answered, so req stays valid until the job comes back. Every job is on
 * the server's list until answered, so one whose answer was never written (the drain's time was
 * up) is answered and freed by kmsd_api_jobs_flush. */
struct api_job {
    kmsd_server *s;
    struct evhttp_request *req;
    struct event_base *base;
    api_job *prev, *next; /* s->jobs, under s->jobs_lock */
    kms_http_header headers[MAX_REQUEST_HEADERS];
    size_t n_headers;
    char *strings; /* the headers' names and values, the path, the query */
    char *path;
    char *query;
    struct evbuffer *body;
    char ip[INET6_ADDRSTRLEN + 8];
    const char *tls_version;  /* static (OpenSSL's) */
    const char *cipher_suite; /* static */
    double received;
    kmsd_http_response resp;
    bool failed; /* kmsd_handle made no response */
};

static void job_free(api_job *j)
{
    if (j == NULL) {
        return;
    }
    kmsd_response_clean_up(&j->resp);
    if (j->body != NULL) {
        evbuffer_free(j->body);
    }
    free(j->strings);
    free(j);
}

static void job_unlink(api_job *j)
{
    kmsd_server *s = j->s;
    pthread_mutex_lock(&s->jobs_lock);
    if (j->prev != NULL) {
        j->prev->next = j->next;
    } else if (s->jobs == j) {
        s->jobs = j->next;
    }
    if (j->next != NULL) {
        j->next->prev = j->prev;
    }
    j->prev = j->next = NULL;
    pthread_mutex_unlock(&s->jobs_lock);
}

static void job_answer(api_job *j)
{
    if (j->failed) {
        evhttp_send_error(j->req, 500, NULL);
        return;
    }
    bool close = j->resp.close || atomic_load(&j->s->draining);
    kmsd_conn_reply(j->req, j->resp.status, j->resp.content_type, j->resp.body, j->resp.body_len,
                    j->resp.request_id, close);
}

/* On the connection's event loop: the call thread's answer. */
static void job_deliver(evutil_socket_t fd, short what, void *arg)
{
    api_job *j = arg;
    job_unlink(j);
    job_answer(j);
    job_free(j);
}

void kmsd_api_run(void *arg)
{
    api_job *j = arg;
    kmsd_server *s = j->s;
    size_t len = evbuffer_get_length(j->body);
    const uint8_t *body = len > 0 ? evbuffer_pullup(j->body, -1) : (const uint8_t *)"";
    kmsd_http_request hr = {
        .method = "POST",
        .path = j->path,
        .query = j->query,
        .headers = j->headers,
        .header_count = j->n_headers,
        .body = body,
        .body_len = len,
        .source_ip = j->ip,
        .tls_version = j->tls_version,
        .cipher_suite = j->cipher_suite,
    };
    double delay = 0;
    if (body == NULL || kmsd_handle(&s->handler, &hr, &j->resp) != 0) {
        j->failed = true;
    } else {
        double now = kmsd_conn_monotonic();
        kmsd_metrics_observe(s->metrics, j->resp.operation[0] != '\0' ? j->resp.operation : "Other",
                             j->resp.outcome != NULL ? j->resp.outcome : "Other",
                             now - j->received);
        /* Only a failure is held back: a correct request from the same address (a NAT, a
         * load balancer, loopback) is not slowed by another client's wrong secret. */
        if (j->resp.auth_failed) {
            kmsd_throttle_auth_failed(s->throttle, j->ip, now);
            delay = kmsd_throttle_auth_delay(s->throttle, j->ip, now);
        }
    }
    /* The slow-down holds the answer back on the loop's timer, not this thread. */
    struct timeval tv = {0, 0};
    if (delay > 0) {
        tv.tv_sec = (time_t)delay;
        tv.tv_usec = (suseconds_t)((delay - (double)(time_t)delay) * 1e6);
    }
    if (event_base_once(j->base, -1, EV_TIMEOUT, job_deliver, j, &tv) != 0) {
        /* Out of memory: the job stays on the list, answered at exit; the connection's drain
         * or the client's timeout ends it. */
        fprintf(stderr, "kmsd: cannot post an answer to its event loop\n");
    }
}

void kmsd_api_jobs_flush(kmsd_server *s)
{
    for (;;) {
        pthread_mutex_lock(&s->jobs_lock);
        api_job *j = s->jobs;
        pthread_mutex_unlock(&s->jobs_lock);
        if (j == NULL) {
            return;
        }
        job_unlink(j);
        kmsd_response_clean_up(&j->resp);
        j->failed = false;
        j->failed =
            kmsd_error_response(&j->resp, 503, "ServiceUnavailable", "kmsd is stopping") != 0;
        job_answer(j);
        job_free(j);
    }
}

/* The request's headers, path and query copied into one allocation. */
static int job_copy(api_job *j, struct evhttp_request *req, const char *path, const char *query)
{
    size_t size = strlen(path) + 1 + (query != NULL ? strlen(query) + 1 : 0);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    for (struct evkeyval *kv = in->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        if (j->n_headers == MAX_REQUEST_HEADERS) {
            return 1;
        }
        size += strlen(kv->key) + strlen(kv->value) + 2;
        j->n_headers++;
    }
    char *p = malloc(size);
    if (p == NULL) {
        return -1;
    }
    j->strings = p;
    size_t i = 0;
    for (struct evkeyval *kv = in->tqh_first; kv != NULL; kv = kv->next.tqe_next, i++) {
        size_t kl = strlen(kv->key) + 1;
        size_t vl = strlen(kv->value) + 1;
        j->headers[i].name = memcpy(p, kv->key, kl);
        p += kl;
        j->headers[i].value = memcpy(p, kv->value, vl);
        p += vl;
    }
    j->path = memcpy(p, path, strlen(path) + 1);
    p += strlen(path) + 1;
    j->query = query != NULL ? memcpy(p, query, strlen(query) + 1) : NULL;
    return 0;
}

static void serve_api(kmsd_server *s, struct evhttp_request *req, const char *ip, conn *c)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    api_job *j = calloc(1, sizeof *j);
    if (j == NULL || evcon == NULL) {
        free(j);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    j->s = s;
    j->req = req;
    j->base = evhttp_connection_get_base(evcon);
    j->received = kmsd_conn_monotonic();
    snprintf(j->ip, sizeof j->ip, "%s", ip);
    SSL *ssl = c != NULL ? c->ssl : NULL;
    const SSL_CIPHER *cipher = ssl != NULL ? SSL_get_current_cipher(ssl) : NULL;
    j->tls_version = ssl != NULL ? SSL_get_version(ssl) : NULL;
    j->cipher_suite = cipher != NULL ? SSL_CIPHER_standard_name(cipher) : NULL;
    int copied = job_copy(j, req, path != NULL && path[0] != '\0' ? path : "/", query);
    if (copied > 0) {
        static const char many[] =
            "{\"__type\":\"ValidationException\",\"message\":\"too many headers\"}";
        kmsd_conn_reply(req, 400, "application/x-amz-json-1.1", many, sizeof many - 1, NULL, true);
        job_free(j);
        return;
    }
    /* The body's chains move to the job's buffer (no copy); the call thread pulls it up. */
    if (copied < 0 || (j->body = evbuffer_new()) == NULL ||
        evbuffer_add_buffer(j->body, evhttp_request_get_input_buffer(req)) != 0) {
        job_free(j);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    pthread_mutex_lock(&s->jobs_lock);
    j->next = s->jobs;
    if (s->jobs != NULL) {
        s->jobs->prev = j;
    }
    s->jobs = j;
    pthread_mutex_unlock(&s->jobs_lock);
    if (kmsd_pool_submit(s->pool, j) != 0) {
        /* Every call thread busy and the queue full: the server is overloaded. AWS answers
         * ThrottlingException, which the SDKs retry with backoff (and adaptive mode slows). */
        job_unlink(j);
        j->failed =
            kmsd_error_response(&j->resp, 400, "ThrottlingException",
                                "kmsd: every call thread is busy and the call queue is full; "
                                "retry with backoff") != 0;
        j->resp.operation[0] = '\0';
        kmsd_metrics_observe(s->metrics, "Other", "ThrottlingException", 0);
        job_answer(j);
        job_free(j);
    }
}

void kmsd_api_https_cb(struct evhttp_request *req, void *arg)
{
    kmsd_server *s = arg;
    char ip[INET6_ADDRSTRLEN + 8];
    conn *c = kmsd_conn_of(req);
    if (c == NULL) {
        /* tls_bev could not make a TLS connection and evhttp read plaintext: never serve it. */
        evhttp_send_error(req, 503, "TLS unavailable");
        return;
    }
    c->idle = false;
    event_del(c->deadline); /* while it is served; request_done sets the next */
    evhttp_request_set_on_complete_cb(req, kmsd_conn_request_done, c);
    if (kmsd_conn_refuse_ambiguous(req)) {
        return;
    }
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
