/* kms_call over the wire: one signed AWS JSON 1.1 POST per attempt, retried in the standard
 * retry mode, the server's {"__type", "message"} turned back into the library's error. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "remote/remote_internal.h"
#include "service/request.h"
#include "util/util.h"

#define JSON_CONTENT_TYPE "application/x-amz-json-1.1"
#define QUERY_CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"

/* Signs and sends one attempt of body: to target (AWS JSON 1.1), or with no target (the query
 * protocol). */
static int attempt(struct kms_remote *r, const char *target, const char *service, const char *body,
                   kms_http_exchange *x)
{
    int rc = -1;
    char amz_date[17];
    char *authz = NULL;
    char *lines[6] = {NULL};
    time_t now = (time_t)kms_now();
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
    const char *content_type = target != NULL ? JSON_CONTENT_TYPE : QUERY_CONTENT_TYPE;
    kms_sigv4_header signed_headers[5] = {
        {"host", r->host},
        {"x-amz-date", amz_date},
        {"content-type", content_type},
    };
    size_t n_signed = 3;
    if (target != NULL) {
        signed_headers[n_signed++] = (kms_sigv4_header){"x-amz-target", target};
    }
    if (r->session_token != NULL) {
        signed_headers[n_signed++] = (kms_sigv4_header){"x-amz-security-token", r->session_token};
    }
    kms_sigv4_request req = {
        .method = "POST",
        .path = "/",
        .query = "",
        .headers = signed_headers,
        .n_headers = n_signed,
        .body = (const uint8_t *)body,
        .body_len = strlen(body),
        .normalize_path = 1,
    };
    if ((rc = kms_remote_authorization(&req, r->access_key_id, r->secret, amz_date, r->region,
                                       service, &authz)) != 0) {
        goto out;
    }
    lines[0] = kms_strdup_printf("X-Amz-Date: %s", amz_date);
    lines[1] = target != NULL ? kms_strdup_printf("X-Amz-Target: %s", target)
                              : strdup("X-Amz-Target:"); /* none: curl sends no such header */
    lines[2] = kms_strdup_printf("Content-Type: %s", content_type);
    lines[3] = kms_strdup_printf("Authorization: %s", authz);
    if (r->session_token != NULL) {
        lines[4] = kms_strdup_printf("X-Amz-Security-Token: %s", r->session_token);
    }
    if (lines[0] == NULL || lines[1] == NULL || lines[2] == NULL || lines[3] == NULL ||
        (r->session_token != NULL && lines[4] == NULL)) {
        rc = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    x->method = "POST";
    x->path = "/";
    x->headers = (const char *const *)lines;
    x->body = body;
    x->body_len = req.body_len;
    kms_buf_clean_up(&x->response);
    kms_buf_init(&x->response, true);
    rc = kms_remote_http_perform(r, x);
out:
    x->headers = NULL;
    for (size_t i = 0; i < 5; i++) {
        if (lines[i] != NULL) {
            sodium_memzero(lines[i], strlen(lines[i]));
        }
        free(lines[i]);
    }
    free(authz);
    return rc;
}

/* The AWS error of a response: __type (or code) without "namespace#", else x-amzn-ErrorType;
 * the message. json is the parsed body or NULL. */
static void error_of(const kms_http_exchange *x, const json_t *json, char *name, size_t name_size,
                     const char **message)
{
    const char *type = json_string_value(json_object_get(json, "__type"));
    type = type != NULL ? type : json_string_value(json_object_get(json, "code"));
    type = type != NULL ? type : (x->error_type[0] ? x->error_type : NULL);
    const char *hash = type != NULL ? strrchr(type, '#') : NULL;
    snprintf(name, name_size, "%s", hash != NULL ? hash + 1 : type != NULL ? type : "");
    name[strcspn(name, ":")] = '\0';
    *message = json_string_value(json_object_get(json, "message"));
    *message = *message != NULL ? *message : json_string_value(json_object_get(json, "Message"));
}

/* Raises the error a response carried. */
static int raise_response(const struct kms_remote *r, const kms_http_exchange *x,
                          const char *operation, const char *name, const char *message)
{
    if (name[0] == '\0') {
        return kms_raise(KMS_ERR_INTERNAL,
                         "%s: the server at %s answered HTTP %ld without an AWS error (request %s)",
                         operation, r->endpoint, x->status,
                         x->request_id[0] ? x->request_id : "without id");
    }
    kms_error code = kms_error_from_name(name);
    if (code == KMS_ERR__COUNT) {
        return kms_raise(KMS_ERR_INTERNAL, "%s: the server answered %s: %s", operation, name,
                         message != NULL ? message : "(no message)");
    }
    return kms_raise(code, "%s", message != NULL ? message : name);
}

int kms_remote_call(struct kms_remote *r, const char *operation, const char *request_json,
                    char **response_json)
{
    int rc = -1;
    char target[160], service[32], name[128], query_message[512];
    const char *message = NULL;
    const char *body = request_json != NULL ? request_json : "{}";
    char *form = NULL;
    bool query = kms_remote_query_op(operation);
    kms_http_exchange x;
    json_t *json = NULL;
    int cost = 0;
    int n = 1;
    *response_json = NULL;
    kms_error_clear();
    if (query) {
        snprintf(service, sizeof service, "sts");
        KMS_GUARD(kms_remote_query_body(operation, request_json, &form));
        body = form;
    } else {
        KMS_GUARD(kms_remote_target(operation, target, sizeof target, service, sizeof service));
    }
    kms_remote_exchange_init(&x);
    for (;; n++) {
        if (attempt(r, query ? NULL : target, service, body, &x) != 0) {
            goto out;
        }
        json_decref(json);
        json = x.failure == KMS_TRANSPORT_OK && x.response.len > 0
                   ? json_loadb((const char *)x.response.data, x.response.len, 0, NULL)
                   : NULL;
        name[0] = '\0';
        message = NULL;
        if (x.failure == KMS_TRANSPORT_OK && (x.status < 200 || x.status >= 300)) {
            error_of(&x, json, name, sizeof name, &message);
            if (query && kms_remote_query_error(x.response.data, x.response.len, name, sizeof name,
                                                query_message, sizeof query_message) == 0) {
                message = query_message;
            }
        }
        kms_retry_class c = kms_remote_retry_classify(x.failure, x.status, name);
        bool done = x.failure == KMS_TRANSPORT_OK && x.status >= 200 && x.status < 300;
        if (done || c == KMS_RETRY_NONE || n >= r->max_attempts) {
            break;
        }
        pthread_mutex_lock(&r->lock);
        bool granted = kms_remote_retry_quota_acquire(&r->quota, c, &cost);
        pthread_mutex_unlock(&r->lock);
        if (!granted) {
            break;
        }
        kms_remote_retry_wait(n);
        kms_request_json_wipe(json);
    }
    if (x.failure != KMS_TRANSPORT_OK) {
        kms_raise(KMS_ERR_NETWORK, "%s: cannot reach the KMS server at %s (%d attempt%s): %s",
                  operation, r->endpoint, n, n == 1 ? "" : "s", x.reason);
        goto out;
    }
    if (x.status < 200 || x.status >= 300) {
        raise_response(r, &x, operation, name, message);
        goto out;
    }
    pthread_mutex_lock(&r->lock);
    kms_remote_retry_quota_release(&r->quota, cost);
    pthread_mutex_unlock(&r->lock);
    if (query) {
        if (kms_remote_query_response(operation, x.response.data, x.response.len, response_json) !=
            0) {
            goto out;
        }
    } else {
        *response_json = x.response.len > 0 ? strndup((const char *)x.response.data, x.response.len)
                                            : strdup("{}");
    }
    if (*response_json == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    rc = 0;
out:
    kms_request_json_wipe(json);
    json_decref(json);
    kms_remote_exchange_clean_up(&x);
    if (form != NULL) {
        sodium_memzero(form, strlen(form));
        free(form);
    }
    sodium_memzero(query_message, sizeof query_message);
    return rc;
}
