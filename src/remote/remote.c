/* The remote client: opening a connection to a KMS server (endpoint, CA bundle, credentials,
 * region) and kms_call over AWS JSON 1.1 with SigV4, retried in the standard retry mode. */
#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "remote/remote_internal.h"
#include "service/credentials.h"
#include "util/secmem.h"
#include "util/util.h"

#define DEFAULT_USER_AGENT "libkms/0.1.0"
#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_ATTEMPTS 3
#define MAX_ATTEMPTS 10

/* ---- Opening ------------------------------------------------------------------------------ */

/* endpoint_url: https://HOST[:PORT][/], nothing else. Sets r->endpoint and r->host. */
static int endpoint_parse(struct kms_remote *r, const char *url)
{
    int rc = -1;
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *user = NULL,
         *fragment = NULL;
    KMS_ENSURE(url != NULL && url[0] != '\0', KMS_ERR_VALIDATION,
               "no endpoint URL: give https://HOST:PORT of the KMS server");
    CURLU *u = curl_url();
    KMS_ENSURE(u != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        kms_raise(KMS_ERR_VALIDATION, "the endpoint URL '%s' is not a URL: give https://HOST:PORT",
                  url);
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
    (void)curl_url_get(u, CURLUPART_PATH, &path, 0);
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    (void)curl_url_get(u, CURLUPART_USER, &user, 0);
    (void)curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
    if (strcmp(scheme, "https") != 0) {
        kms_raise(KMS_ERR_VALIDATION,
                  "the endpoint URL '%s' is not https://: a KMS server is reached over TLS only",
                  url);
        goto out;
    }
    if ((path != NULL && strcmp(path, "/") != 0 && path[0] != '\0') || query != NULL ||
        user != NULL || fragment != NULL) {
        kms_raise(KMS_ERR_VALIDATION,
                  "the endpoint URL '%s' has a path, query or user: give https://HOST:PORT", url);
        goto out;
    }
    r->host = port != NULL ? kms_strdup_printf("%s:%s", host, port) : strdup(host);
    r->endpoint = r->host != NULL ? kms_strdup_printf("https://%s", r->host) : NULL;
    if (r->endpoint == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(user);
    curl_free(fragment);
    curl_url_cleanup(u);
    return rc;
}

/* The credentials file when none is named: the home's, else the AWS CLI's. malloc'd. */
static char *default_credentials_file(void)
{
    char *home_file = kms_path_join(kms_home_default(), "credentials");
    if (home_file != NULL && kms_path_exists(home_file)) {
        return home_file;
    }
    free(home_file);
    const char *env = getenv("AWS_SHARED_CREDENTIALS_FILE");
    if (env != NULL && env[0] != '\0') {
        return strdup(env);
    }
    const char *home = getenv("HOME");
    return kms_strdup_printf("%s/.aws/credentials", home != NULL ? home : ".");
}

static char *secret_copy(const char *s)
{
    size_t n = strlen(s);
    char *p = kms_secure_alloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n + 1);
    }
    return p;
}

/* kms.h: the three given; else an explicit profile; else the environment (KMS_, then AWS_);
 * else the profile of KMS_PROFILE / AWS_PROFILE or "default". As the aws CLI: an explicit
 * profile wins over the environment, the environment over the default profile. */
static int credentials_resolve(const kms_remote_options *o, kms_credentials *c)
{
    int r = -1;
    char *file = NULL;
    bool found = false;
    memset(c, 0, sizeof *c);
    if (o->access_key_id != NULL) {
        KMS_ENSURE(o->access_key_id[0] != '\0' &&
                       strlen(o->access_key_id) < sizeof c->access_key_id &&
                       o->secret_access_key != NULL && o->secret_access_key[0] != '\0',
                   KMS_ERR_UNRECOGNIZED_CLIENT,
                   "an access key id needs its secret access key (and is at most %zu characters)",
                   sizeof c->access_key_id - 1);
        snprintf(c->access_key_id, sizeof c->access_key_id, "%s", o->access_key_id);
        c->secret_access_key = secret_copy(o->secret_access_key);
        c->session_token = o->session_token != NULL ? secret_copy(o->session_token) : NULL;
        if (c->secret_access_key == NULL ||
            (o->session_token != NULL && c->session_token == NULL)) {
            kms_credentials_clean_up(c);
            return -1;
        }
        return 0;
    }
    if (o->profile == NULL) {
        KMS_GUARD(kms_credentials_load_env(c, &found));
        if (found) {
            return 0;
        }
    }
    const char *profile = o->profile;
    profile = profile != NULL ? profile : getenv("KMS_PROFILE");
    profile = profile != NULL ? profile : getenv("AWS_PROFILE");
    profile = profile != NULL && profile[0] != '\0' ? profile : "default";
    file = o->credentials_file != NULL ? strdup(o->credentials_file) : default_credentials_file();
    if (file == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (!kms_path_exists(file)) {
        kms_raise(KMS_ERR_UNRECOGNIZED_CLIENT,
                  "no credentials to sign with: set KMS_ACCESS_KEY_ID and KMS_SECRET_ACCESS_KEY, "
                  "or write profile '%s' to %s (the format `aws configure` writes)",
                  profile, file);
        goto out;
    }
    r = kms_credentials_load_path(file, profile, c);
out:
    free(file);
    return r;
}

/* The region of the SigV4 scope when neither the options nor the environment give one: the
 * server's, from GET /health ({"Status": "ok", "Region": "..."}). */
static int region_from_server(struct kms_remote *r)
{
    int rc = -1;
    kms_http_exchange x;
    json_t *o = NULL;
    int n = 1;
    kms_remote_exchange_init(&x);
    x.method = "GET";
    x.path = "/health";
    /* Retried as a call is (without the quota: one request at open). */
    for (;; n++) {
        kms_buf_clean_up(&x.response);
        kms_buf_init(&x.response, true);
        if (kms_remote_http_perform(r, &x) != 0) {
            goto out;
        }
        kms_retry_class c = kms_remote_retry_classify(x.failure, x.status, NULL);
        if (c == KMS_RETRY_NONE || n >= r->max_attempts) {
            break;
        }
        kms_remote_retry_wait(n);
    }
    if (x.failure != KMS_TRANSPORT_OK) {
        kms_raise(KMS_ERR_NETWORK, "cannot reach the KMS server at %s (%d attempt%s): %s",
                  r->endpoint, n, n == 1 ? "" : "s", x.reason);
        goto out;
    }
    o = x.status == 200 ? json_loadb((const char *)x.response.data, x.response.len, 0, NULL) : NULL;
    const char *region = json_string_value(json_object_get(o, "Region"));
    if (region == NULL || region[0] == '\0' || strlen(region) >= sizeof r->region ||
        region[strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-")] != '\0') {
        kms_raise(KMS_ERR_NETWORK,
                  "%s/health did not say the server's region (HTTP %ld): give the region "
                  "(AWS_REGION) or check that %s is a KMS server",
                  r->endpoint, x.status, r->endpoint);
        goto out;
    }
    snprintf(r->region, sizeof r->region, "%s", region);
    rc = 0;
out:
    json_decref(o);
    kms_remote_exchange_clean_up(&x);
    return rc;
}

static int region_resolve(struct kms_remote *r, const char *given)
{
    const char *region = given;
    region = region != NULL && region[0] != '\0' ? region : getenv("AWS_REGION");
    region = region != NULL && region[0] != '\0' ? region : getenv("AWS_DEFAULT_REGION");
    if (region == NULL || region[0] == '\0') {
        return region_from_server(r);
    }
    KMS_ENSURE(strlen(region) < sizeof r->region, KMS_ERR_VALIDATION, "the region '%s' is too long",
               region);
    snprintf(r->region, sizeof r->region, "%s", region);
    return 0;
}

struct kms_remote *kms_remote_open(const kms_remote_options *opts)
{
    struct kms_remote *r = NULL;
    kms_credentials creds;
    memset(&creds, 0, sizeof creds);
    if (opts == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "no remote options");
        return NULL;
    }
    if (kms_util_init() != 0 || kms_remote_http_init() != 0) {
        return NULL;
    }
    if ((r = calloc(1, sizeof *r)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    kms_remote_retry_quota_init(&r->quota);
    r->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : DEFAULT_ATTEMPTS;
    r->max_attempts = r->max_attempts > MAX_ATTEMPTS ? MAX_ATTEMPTS : r->max_attempts;
    r->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    r->user_agent = strndup(opts->user_agent ? opts->user_agent : DEFAULT_USER_AGENT, 256);
    if (r->user_agent == NULL || endpoint_parse(r, opts->endpoint_url) != 0) {
        goto fail;
    }
    if (opts->ca_bundle != NULL) {
        if (access(opts->ca_bundle, R_OK) != 0) {
            kms_raise(KMS_ERR_VALIDATION, "cannot read the CA bundle %s", opts->ca_bundle);
            goto fail;
        }
        if ((r->ca_bundle = strdup(opts->ca_bundle)) == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto fail;
        }
    }
    if (credentials_resolve(opts, &creds) != 0) {
        goto fail;
    }
    snprintf(r->access_key_id, sizeof r->access_key_id, "%s", creds.access_key_id);
    r->secret = creds.secret_access_key;
    r->session_token = creds.session_token;
    if (region_resolve(r, opts->region) != 0) {
        goto fail;
    }
    return r;
fail:
    kms_remote_free(r);
    return NULL;
}

void kms_remote_free(struct kms_remote *r)
{
    if (r == NULL) {
        return;
    }
    kms_remote_http_pool_clean_up(r);
    pthread_mutex_destroy(&r->lock);
    if (r->secret != NULL) {
        kms_secure_free(r->secret);
    }
    if (r->session_token != NULL) {
        kms_secure_free(r->session_token);
    }
    free(r->endpoint);
    free(r->host);
    free(r->ca_bundle);
    free(r->user_agent);
    sodium_memzero(r, sizeof *r);
    free(r);
}

const char *kms_remote_region(const struct kms_remote *r)
{
    return r->region;
}

int kms_remote_local_only(const struct kms_remote *r, const char *what)
{
    KMS_ENSURE(r == NULL, KMS_ERR_UNSUPPORTED_OPERATION,
               "%s needs the KMS home itself: run it on the server's machine (with --home), not "
               "through %s",
               what, r->endpoint);
    return 0;
}
