/* What the parts of the server share (private to tools/kmsd):
 *   http.c         listening, the workers (one event loop each), signals, the server's life
 *   http_conn.c    TLS connections: counting, deadlines, writing a response
 *   http_api.c     the HTTPS side: /health, /metrics, and the API through the call threads
 *   http_plain.c   the plain-HTTP side: CRLs and OCSP
 *   pool.c         the call threads */
#ifndef KMSD_HTTP_H
#define KMSD_HTTP_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "kms/tls.h"
#include "kmsd.h"
#include "metrics.h"
#include "pool.h"
#include "throttle.h"

#define MAX_HEADERS_SIZE 16384
#define MAX_REQUEST_HEADERS 128

typedef struct worker worker;
typedef struct conn conn;
typedef struct api_job api_job;

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
    kmsd_pool *pool; /* the call threads */
    pthread_mutex_t jobs_lock;
    api_job *jobs; /* handed to the call threads, not yet answered */
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
    conn *plain;         /* the plain-HTTP connections (this worker's thread only) */
    struct event *sweep; /* releases the plain connections evhttp has freed */
};

/* Per TLS connection, hung on its SSL (freed with it); per plain-HTTP connection, on its
 * worker's list, holding a reference to its bufferevent (released once evhttp freed it). */
struct conn {
    kmsd_server *s;
    struct event *deadline;
    SSL *ssl;                 /* TLS */
    struct bufferevent *bev;  /* plain HTTP */
    bool idle;                /* no request under way: none yet, or its last response was written */
    struct conn *prev, *next; /* the server's list, under its lock */
};

/* http_conn.c */
int kmsd_conn_init(void);
struct bufferevent *kmsd_conn_tls_bev(struct event_base *base, void *arg);
/* The plain listener's bevcb (arg: its worker): counted, with a deadline, as kmsd_conn_tls_bev. */
struct bufferevent *kmsd_conn_plain_bev(struct event_base *base, void *arg);
/* The plain connection serving req, or NULL. */
conn *kmsd_conn_plain_of(worker *w, struct evhttp_request *req);
/* The worker's timer (every 250 ms): releases the plain connections evhttp freed and, while
 * draining, shuts the idle ones. */
void kmsd_conn_plain_sweep(evutil_socket_t fd, short what, void *arg);
/* At exit, after evhttp_free: releases every plain connection of w. */
void kmsd_conn_plain_free_all(worker *w);
conn *kmsd_conn_of(struct evhttp_request *req);
void kmsd_conn_request_done(struct evhttp_request *req, void *arg);
void kmsd_conn_reply(struct evhttp_request *req, int status, const char *content_type,
                     const void *body, size_t len, const char *request_id, bool close);
/* A request whose framing is ambiguous (more than one Content-Length header, which evhttp 2.1
 * accepts, taking the first): answered 400 with Connection: close, and true; else false. Called
 * by both listeners before routing. */
bool kmsd_conn_refuse_ambiguous(struct evhttp_request *req);
double kmsd_conn_monotonic(void);

/* http_api.c */
void kmsd_api_https_cb(struct evhttp_request *req, void *arg);
void kmsd_api_run(void *arg); /* a call thread's job */
/* After the workers and the call threads are stopped: answers (503) and frees every job whose
 * answer was not written. */
void kmsd_api_jobs_flush(kmsd_server *s);

/* http_plain.c */
void kmsd_plain_http_cb(struct evhttp_request *req, void *arg);

#endif
