/* Shared by the files of src/remote: the connection and one HTTP exchange. */
#ifndef KMS_REMOTE_INTERNAL_H
#define KMS_REMOTE_INTERNAL_H

#include <pthread.h>

#include "remote/remote.h"
#include "util/buf.h"

/* Longest response body accepted (a LookupEvents page is far smaller). */
#define KMS_REMOTE_BODY_MAX (16 * 1024 * 1024)

struct kms_remote {
    char *endpoint;  /* "https://HOST[:PORT]" without a trailing '/' */
    char *host;      /* the Host header, as signed: "HOST" or "HOST:PORT" */
    char *ca_bundle; /* NULL: the system's CAs */
    char *user_agent;
    char region[KMS_SIGV4_SCOPE_PART_MAX + 1];
    char access_key_id[32];
    char *secret;        /* locked memory */
    char *session_token; /* locked memory, or NULL */
    int max_attempts;
    long timeout_ms;
    pthread_mutex_t lock; /* the pool and the quota */
    void **idle;          /* CURL easy handles not in use, each keeping its connection */
    size_t n_idle, cap_idle;
    kms_retry_quota quota;
};

/* One HTTP request and what came back. */
typedef struct kms_http_exchange {
    const char *method;         /* "GET" or "POST" */
    const char *path;           /* "/" or "/health" */
    const char *const *headers; /* "Name: value" lines besides Host and User-Agent, NULL-ended */
    const char *body;
    size_t body_len;
    /* out */
    kms_transport_failure failure;
    long status;
    kms_buf response; /* locked memory: responses carry plaintexts and data keys */
    char request_id[80];
    char error_type[128]; /* x-amzn-ErrorType, without its ":url" part */
    char reason[384];     /* the transport failure in curl's words */
} kms_http_exchange;

void kms_remote_exchange_init(kms_http_exchange *x);
void kms_remote_exchange_clean_up(kms_http_exchange *x); /* wipes the response */
/* One attempt: 0 when it ran (x->failure says whether a response came), -1 when it could not
 * be started (out of memory). */
int kms_remote_http_perform(struct kms_remote *r, kms_http_exchange *x)
    __attribute__((warn_unused_result));
/* ---- STS over the query protocol (remote_query.c) ---- */
/* operation is one the query protocol carries here: sts:GetCallerIdentity, sts:AssumeRole,
 * sts:GetSessionToken. */
bool kms_remote_query_op(const char *operation);
/* The form body (malloc'd) of kms_call's request: Action, Version, then the members. */
int kms_remote_query_body(const char *operation, const char *request_json, char **body)
    __attribute__((warn_unused_result));
/* The <ActionResponse> of a success as kms_call's response JSON (malloc'd). */
int kms_remote_query_response(const char *operation, const uint8_t *xml, size_t n,
                              char **response_json) __attribute__((warn_unused_result));
/* Code and Message of an <ErrorResponse>: 0, or -1 (nothing raised, code and message left as
 * they were: a JSON error body may have filled them) when it is not one. */
int kms_remote_query_error(const uint8_t *xml, size_t n, char *code, size_t code_size,
                           char *message, size_t message_size);

/* Releases the pooled handles (at kms_remote_free). */
void kms_remote_http_pool_clean_up(struct kms_remote *r);
/* curl_global_init, once per process. */
int kms_remote_http_init(void) __attribute__((warn_unused_result));

#endif
