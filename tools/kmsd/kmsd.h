/* kmsd: the KMS as an HTTPS server for one home. A front end like kmsctl: it reaches the home only
 * through include/kms (kms.h, server.h, tls.h).
 *
 *   main.c     options, start, signals (SIGHUP reload, SIGTERM drain), the scheduler thread
 *   config.c   the "server" section of HOME/config.json, then the command line over it
 *   certs.c    the first start: a local root CA and the server's certificate, keys in the HSM
 *   handler.c  one request of the API, independent of the HTTP library (fuzzed as is):
 *              routing by X-Amz-Target / Content-Type, kms_call_network, AWS's error shapes
 *   http.c     libevent: one worker per core, listening, signals, drain (http.h lists the
 *              rest: http_conn.c connections, http_api.c the HTTPS side, http_plain.c CRL and
 *              OCSP, pool.c the call threads that run kms_call_network off the event loops)
 *   status.c   /metrics text: kmsd's gauges, the library's figures, certificate expiry */
#ifndef KMSD_H
#define KMSD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/kms.h"
#include "kms/server.h"

#define KMSD_MAX_LISTEN 8
#define KMSD_MAX_METRICS_ALLOW 16

/* The "server" section of config.json, with the command line applied. */
typedef struct kmsd_config {
    char *listen[KMSD_MAX_LISTEN]; /* "ADDR:PORT" ("[::1]:8443" for IPv6) */
    size_t n_listen;
    char *http_listen; /* NULL or "off": no plain-HTTP listener */
    char *profile;     /* the server's own profile (its certificate); NULL: "default" */
    int workers;       /* 0: one per core */
    int call_threads;  /* threads running kms_call_network off the event loops (pool.h) */
    int max_connections;
    bool max_connections_set; /* given in config.json: not lowered by the memory bound */
    int header_timeout_seconds;
    int body_timeout_seconds;
    int idle_timeout_seconds;
    size_t max_body_bytes;
    int drain_seconds;
    char *certificate_arn;
    char *ca_arn;
    char *metrics_allow[KMSD_MAX_METRICS_ALLOW]; /* CIDRs */
    size_t n_metrics_allow;
    bool no_scheduler;
    json_t *throttle; /* the "throttle" object (throttle.h), or NULL for its defaults */
} kmsd_config;

/* Defaults, then config.json's "server" object (unknown members are refused, so a typo is not
 * silently ignored). The command line is applied afterwards by main.c. */
int kmsd_config_load(const char *home, kmsd_config *cfg) __attribute__((warn_unused_result));
void kmsd_config_clean_up(kmsd_config *cfg);
/* Writes certificate_arn and ca_arn into config.json's "server" object (atomically: a temporary
 * file renamed over it, mode 0600), keeping every other member. */
int kmsd_config_save_certificate(const char *home, const char *certificate_arn, const char *ca_arn)
    __attribute__((warn_unused_result));
/* Whether addr (text) falls in one of the CIDRs. */
bool kmsd_config_metrics_allowed(const kmsd_config *cfg, const char *addr);

/* ---- One API request, as the handler sees it ---------------------------------------------- */
typedef struct kmsd_http_request {
    const char *method;
    const char *path;  /* without the query */
    const char *query; /* NULL when none */
    const kms_http_header *headers;
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
    const char *source_ip;
    const char *tls_version; /* NULL: plain HTTP */
    const char *cipher_suite;
} kmsd_http_request;

typedef struct kmsd_http_response {
    int status;
    const char *content_type; /* static */
    char *body;               /* malloc'd (free with kmsd_response_clean_up) */
    size_t body_len;
    char request_id[37]; /* x-amzn-RequestId; "" for none */
    bool close;          /* Connection: close after this response */
    char operation[96];  /* for metrics: kms_call's name, "" when none was decoded */
    const char *outcome; /* "Success" or the error name (static) */
    bool auth_failed;    /* the signature was refused (for the throttle's slow-down) */
} kmsd_http_response;

typedef struct kmsd_handler {
    kms_client *client;
    kms_admit_fn admit; /* the throttle; NULL: every authenticated request is admitted */
    void *admit_arg;
} kmsd_handler;

/* Answers one request of the API (POST /): always fills *resp (an error becomes AWS's error
 * response); returns 0, or -1 only when no response could be made (out of memory). */
int kmsd_handle(const kmsd_handler *h, const kmsd_http_request *req, kmsd_http_response *resp)
    __attribute__((warn_unused_result));
void kmsd_response_clean_up(kmsd_http_response *resp);
/* AWS's HTTP status for an error name (400 for most client errors, 5xx for the service's). */
int kmsd_error_status(const char *error_name);
/* {"__type": name, "message": message} with status and a fresh request id when none is set. */
int kmsd_error_response(kmsd_http_response *resp, int status, const char *name, const char *message)
    __attribute__((warn_unused_result));

/* ---- The first start ------------------------------------------------------------------------ */
/* When cfg has no certificate_arn: the local CA and the server certificate (see certs.c), saved
 * into config.json and cfg; HOME/kmsd-ca.pem written. Serialised by a lock file in the home, so
 * two kmsd started at once make one CA. */
int kmsd_certs_ensure(kms_client *client, const char *home, kmsd_config *cfg)
    __attribute__((warn_unused_result));

/* ---- Serving --------------------------------------------------------------------------------- */
typedef struct kmsd_server kmsd_server;
kmsd_server *kmsd_server_new(kms_client *client, const char *home, kmsd_config *cfg);
/* Runs until SIGTERM/SIGINT (then drains, bounded by drain_seconds); SIGHUP reloads. */
int kmsd_server_run(kmsd_server *s) __attribute__((warn_unused_result));
void kmsd_server_free(kmsd_server *s);

/* /metrics text (malloc'd) */
char *kmsd_status_metrics(kms_client *client, const kmsd_config *cfg, long connections,
                          const char *requests_text);

#endif
