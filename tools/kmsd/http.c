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
 *   - a request with more than one Content-Length gets 400 and Connection: close;
 *   - out of descriptors, a listener pauses for a second (logged once), and libevent's own
 *     messages are rate-limited, so that a full descriptor table is no busy loop of warnings.
 * The plain-HTTP listener serves only GET /crl/ID.crl and OCSP (GET and POST /ocsp); its
 * connections are counted and have the same deadlines (http_conn.c). */
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

#include "http.h"

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

/* Out of descriptors, libevent's listener stays readable and would log each failed accept()
 * in a busy loop: the listener pauses for a second instead, logged once per episode (errors
 * less than 10 s apart). While draining, a listener so resumed only accepts connections that
 * the bevcbs shut at once. */
static void listener_resume(evutil_socket_t fd, short what, void *arg)
{
    evconnlistener_enable(arg);
}

static void listener_error(struct evconnlistener *l, void *arg)
{
    static atomic_long last_ms = -100000;
    int e = EVUTIL_SOCKET_ERROR();
    if (e != EMFILE && e != ENFILE) {
        return;
    }
    long now_ms = (long)(kmsd_conn_monotonic() * 1000);
    if (now_ms - atomic_exchange(&last_ms, now_ms) > 10000) {
        fprintf(stderr,
                "kmsd: out of file descriptors (%s): a listener pauses for a second (raise the "
                "open-files limit, or lower max_connections)\n",
                strerror(e));
    }
    evconnlistener_disable(l);
    struct timeval second = {1, 0};
    if (event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT, listener_resume, l, &second) !=
        0) {
        evconnlistener_enable(l); /* rather than never again */
    }
}

/* libevent's own messages, at most 5 a second (a loop of them must not fill the disk). */
static void libevent_log(int severity, const char *msg)
{
    static atomic_long second = 0;
    static atomic_int count = 0;
    long now = (long)time(NULL);
    if (atomic_exchange(&second, now) != now) {
        atomic_store(&count, 0);
    }
    if (atomic_fetch_add(&count, 1) < 5) {
        fprintf(stderr, "kmsd: libevent (%d): %s\n", severity, msg);
    }
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
    evconnlistener_set_error_cb(l, listener_error);
    w->bound[w->n_bound++] = b;
    return 0;
}

static int worker_init(kmsd_server *s, worker *w)
{
    w->s = s;
    w->base = event_base_new();
    if (w->base == NULL || (w->https = http_new(s, w->base, kmsd_api_https_cb)) == NULL) {
        return -1;
    }
    evhttp_set_bevcb(w->https, kmsd_conn_tls_bev, s);
    for (size_t i = 0; i < s->n_fds; i++) {
        if (bind_dup(w, w->https, s->fds[i]) != 0) {
            return -1;
        }
    }
    if (s->http_fd >= 0) {
        if ((w->http = http_new(s, w->base, kmsd_plain_http_cb)) == NULL) {
            return -1;
        }
        evhttp_set_gencb(w->http, kmsd_plain_http_cb, w);
        evhttp_set_bevcb(w->http, kmsd_conn_plain_bev, w);
        struct timeval quarter = {0, 250000};
        if ((w->sweep = event_new(w->base, -1, EV_PERSIST, kmsd_conn_plain_sweep, w)) == NULL ||
            event_add(w->sweep, &quarter) != 0 || bind_dup(w, w->http, s->http_fd) != 0) {
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

/* Every connection may buffer a body of max_body_bytes: unless max_connections is set, it is
 * kept so that all of them fit in a quarter of the physical memory. */
static void bound_by_memory(kmsd_config *cfg)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);
    if (cfg->max_connections_set || pages <= 0 || page <= 0 || cfg->max_body_bytes == 0) {
        return;
    }
    unsigned long long bound =
        (unsigned long long)pages * (unsigned long long)page / 4 / cfg->max_body_bytes;
    if (bound < 1) {
        bound = 1;
    }
    if (bound < (unsigned long long)cfg->max_connections) {
        cfg->max_connections = (int)bound;
        fprintf(stderr,
                "kmsd: max_connections lowered to %d by the memory bound (a quarter of %llu MiB "
                "/ max_body_bytes %zu; set max_connections to choose otherwise)\n",
                cfg->max_connections, (unsigned long long)pages * (unsigned long long)page >> 20,
                cfg->max_body_bytes);
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
    pthread_mutex_init(&s->jobs_lock, NULL);
    pthread_cond_init(&s->sched_cond, NULL);
    event_set_log_callback(libevent_log);
    bound_by_memory(cfg);
    raise_fd_limit(cfg);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        goto fail;
    }
    if (kmsd_conn_init() != 0) {
        goto fail;
    }
    char err[256] = "";
    if ((s->throttle = kmsd_throttle_new(cfg->throttle, err, sizeof err)) == NULL ||
        (s->metrics = kmsd_metrics_new(kms_operations(), err, sizeof err)) == NULL) {
        fprintf(stderr, "kmsd: config.json: server.throttle: %s\n", err);
        goto fail;
    }
    s->handler.admit = kmsd_throttle_admit_fn;
    s->handler.admit_arg = s->throttle;
    /* Up to 16 calls wait per call thread before a request is refused (ThrottlingException). */
    if ((s->pool = kmsd_pool_new(cfg->call_threads, (size_t)cfg->call_threads * 16,
                                 kmsd_api_run)) == NULL) {
        fprintf(stderr, "kmsd: cannot start %d call threads\n", cfg->call_threads);
        goto fail;
    }
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
    /* The calls under way finish (their answers can no longer be written: the drain's time was
     * up), the waiting ones are not run; every job left is answered and freed. */
    kmsd_pool_free(s->pool);
    s->pool = NULL;
    kmsd_api_jobs_flush(s);
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
    kmsd_pool_free(s->pool);
    kmsd_api_jobs_flush(s);
    for (int i = 0; s->workers != NULL && i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        if (w->https != NULL) {
            evhttp_free(w->https); /* frees its connections, so their SSLs and conns */
        }
        if (w->http != NULL) {
            evhttp_free(w->http);
        }
        kmsd_conn_plain_free_all(w);
        if (w->sweep != NULL) {
            event_free(w->sweep);
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
    pthread_mutex_destroy(&s->jobs_lock);
    pthread_cond_destroy(&s->sched_cond);
    free(s);
}
