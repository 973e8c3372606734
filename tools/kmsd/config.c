/* The "server" section of HOME/config.json (the library reads its own members and ignores this
 * one). Every member is optional:
 *   listen                 "ADDR:PORT" or a list of them        ["127.0.0.1:8443"]
 *   http_listen            plain HTTP for CRLs and OCSP, "off"  "127.0.0.1:8080"
 *   workers                event loops (threads)                one per core
 *   call_threads           threads running the calls, 1..1024   64
 *   max_connections        open connections, all workers        65536 (at most the open-files
 *                                                               limit less 256; unless set,
 *                                                               at most a quarter of physical
 *                                                               memory / max_body_bytes)
 *   header_timeout_seconds a request's line and headers         10
 *   body_timeout_seconds   its body, and writing the response   30
 *   idle_timeout_seconds   a kept-alive connection, unused      60
 *   max_body_bytes         a request body                       3145728
 *   drain_seconds          SIGTERM: in-flight requests finish   10
 *   certificate_arn, ca_arn   the server's certificate and its CA (written at the first start)
 *   profile                the server's own profile             "default"
 *   throttle               the throttle's quotas (throttle.c)
 *   metrics_allow          CIDRs allowed GET /metrics           ["127.0.0.0/8", "::1/128"]
 * Why 64 call threads: a call blocks on the audit log's fsync (group commit: the records of
 * the calls in flight share one fsync, so the calls in flight bound the batch) and on the HSM,
 * not on a core; in-process throughput levels off between 16 and 64 threads, and 64 lets 64
 * connections each have a call in flight. A thread costs its stack. Up to 16 requests per call
 * thread wait in the queue; past that a request is answered ThrottlingException at once.
 * Why 3 MiB of body: AWS KMS's largest request member is a 32 KiB key policy, but ACM's
 * ImportCertificate and ACM PCA's ImportCertificateAuthorityCertificate take a CertificateChain of
 * up to 2,097,152 bytes (their API references), which is 2.7 MiB in the JSON body's base64.
 * Memory: every connection may buffer a whole body of max_body_bytes, unauthenticated, until its
 * deadline (header + body timeouts), so max_connections x max_body_bytes is what clients can make
 * kmsd hold; the default max_connections is therefore also bounded so that it fits in a quarter of
 * the physical memory (logged at start). Set max_connections explicitly to choose otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kmsd.h"

static char *path_in(const char *home, const char *name)
{
    size_t n = strlen(home) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL) {
        snprintf(p, n, "%s/%s", home, name);
    }
    return p;
}

static int set_string(char **dst, const char *src)
{
    free(*dst);
    *dst = src != NULL ? strdup(src) : NULL;
    if (src != NULL && *dst == NULL) {
        fprintf(stderr, "kmsd: out of memory\n");
        return -1;
    }
    return 0;
}

static int defaults(kmsd_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_connections = 65536;
    cfg->header_timeout_seconds = 10;
    cfg->body_timeout_seconds = 30;
    cfg->idle_timeout_seconds = 60;
    cfg->max_body_bytes = 3145728;
    cfg->drain_seconds = 10;
    cfg->call_threads = 64;
    if (set_string(&cfg->http_listen, "127.0.0.1:8080") != 0 ||
        set_string(&cfg->metrics_allow[0], "127.0.0.0/8") != 0 ||
        set_string(&cfg->metrics_allow[1], "::1/128") != 0) {
        return -1;
    }
    cfg->n_metrics_allow = 2;
    return 0;
}

static int int_member(json_t *v, const char *name, int min, int max, int *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        fprintf(stderr, "kmsd: config.json: server.%s must be an integer from %d to %d\n", name,
                min, max);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static int string_list(json_t *v, const char *name, char **out, size_t max, size_t *n)
{
    json_t *one = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
    size_t i;
    json_t *item;
    int r = -1;
    if (!json_is_array(one) || json_array_size(one) == 0 || json_array_size(one) > max) {
        fprintf(stderr, "kmsd: config.json: server.%s must be a string or a list of 1 to %zu\n",
                name, max);
        goto out;
    }
    for (i = 0; i < *n; i++) {
        free(out[i]);
        out[i] = NULL;
    }
    *n = 0;
    json_array_foreach(one, i, item)
    {
        if (!json_is_string(item) || set_string(&out[i], json_string_value(item)) != 0) {
            fprintf(stderr, "kmsd: config.json: server.%s must hold strings\n", name);
            goto out;
        }
        *n = i + 1;
    }
    r = 0;
out:
    json_decref(one);
    return r;
}

static int member(kmsd_config *cfg, const char *name, json_t *v)
{
    static const struct {
        const char *name;
        size_t offset;
        int min, max;
    } ints[] = {
        {"workers", offsetof(kmsd_config, workers), 0, 256},
        {"call_threads", offsetof(kmsd_config, call_threads), 1, 1024},
        {"max_connections", offsetof(kmsd_config, max_connections), 1, 1000000},
        {"header_timeout_seconds", offsetof(kmsd_config, header_timeout_seconds), 1, 3600},
        {"body_timeout_seconds", offsetof(kmsd_config, body_timeout_seconds), 1, 3600},
        {"idle_timeout_seconds", offsetof(kmsd_config, idle_timeout_seconds), 1, 86400},
        {"drain_seconds", offsetof(kmsd_config, drain_seconds), 0, 3600},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (strcmp(name, ints[i].name) == 0) {
            return int_member(v, name, ints[i].min, ints[i].max,
                              (int *)((char *)cfg + ints[i].offset));
        }
    }
    if (strcmp(name, "max_body_bytes") == 0) {
        int n = 0;
        if (int_member(v, name, 1024, 64 << 20, &n) != 0) {
            return -1;
        }
        cfg->max_body_bytes = (size_t)n;
        return 0;
    }
    if (strcmp(name, "listen") == 0) {
        return string_list(v, name, cfg->listen, KMSD_MAX_LISTEN, &cfg->n_listen);
    }
    if (strcmp(name, "metrics_allow") == 0) {
        return string_list(v, name, cfg->metrics_allow, KMSD_MAX_METRICS_ALLOW,
                           &cfg->n_metrics_allow);
    }
    char **strings[] = {&cfg->http_listen, &cfg->certificate_arn, &cfg->ca_arn, &cfg->profile};
    const char *names[] = {"http_listen", "certificate_arn", "ca_arn", "profile"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0) {
            if (!json_is_string(v)) {
                fprintf(stderr, "kmsd: config.json: server.%s must be a string\n", name);
                return -1;
            }
            return set_string(strings[i], json_string_value(v));
        }
    }
    if (strcmp(name, "throttle") == 0 && json_is_object(v)) {
        json_decref(cfg->throttle);
        cfg->throttle = json_incref(v); /* throttle.c reads it */
        return 0;
    }
    fprintf(stderr, "kmsd: config.json: server.%s is not a setting of kmsd\n", name);
    return -1;
}

static json_t *config_read(const char *home)
{
    char *path = path_in(home, "config.json");
    json_error_t jerr;
    json_t *root = path != NULL ? json_load_file(path, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (root == NULL || !json_is_object(root)) {
        fprintf(stderr, "kmsd: %s: %s\n", path ? path : home,
                root == NULL ? jerr.text : "not a JSON object");
        json_decref(root);
        root = NULL;
    }
    free(path);
    return root;
}

int kmsd_config_load(const char *home, kmsd_config *cfg)
{
    int r = -1;
    json_t *root = NULL;
    const char *name;
    json_t *v;
    if (defaults(cfg) != 0 || (root = config_read(home)) == NULL) {
        goto out;
    }
    json_t *server = json_object_get(root, "server");
    if (server != NULL && !json_is_object(server)) {
        fprintf(stderr, "kmsd: config.json: \"server\" must be an object\n");
        goto out;
    }
    json_object_foreach(server, name, v)
    {
        if (member(cfg, name, v) != 0) {
            goto out;
        }
    }
    cfg->max_connections_set = json_object_get(server, "max_connections") != NULL;
    if (cfg->n_listen == 0) {
        if (set_string(&cfg->listen[0], "127.0.0.1:8443") != 0) {
            goto out;
        }
        cfg->n_listen = 1;
    }
    r = 0;
out:
    json_decref(root);
    if (r != 0) {
        kmsd_config_clean_up(cfg);
    }
    return r;
}

void kmsd_config_clean_up(kmsd_config *cfg)
{
    for (size_t i = 0; i < KMSD_MAX_LISTEN; i++) {
        free(cfg->listen[i]);
    }
    for (size_t i = 0; i < KMSD_MAX_METRICS_ALLOW; i++) {
        free(cfg->metrics_allow[i]);
    }
    free(cfg->http_listen);
    free(cfg->profile);
    free(cfg->certificate_arn);
    free(cfg->ca_arn);
    json_decref(cfg->throttle);
    memset(cfg, 0, sizeof *cfg);
}

int kmsd_config_save_certificate(const char *home, const char *certificate_arn, const char *ca_arn)
{
    int r = -1;
    int fd = -1;
    char *path = path_in(home, "config.json");
    char *tmp = path_in(home, "config.json.kmsd-tmp");
    char *text = NULL;
    json_t *root = config_read(home);
    json_t *server = NULL;
    if (path == NULL || tmp == NULL || root == NULL) {
        goto out;
    }
    server = json_object_get(root, "server");
    if (server == NULL) {
        server = json_object();
        if (server == NULL || json_object_set_new(root, "server", server) != 0) {
            goto out;
        }
    }
    if (json_object_set_new(server, "certificate_arn", json_string(certificate_arn)) != 0 ||
        json_object_set_new(server, "ca_arn", json_string(ca_arn)) != 0 ||
        (text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
        fprintf(stderr, "kmsd: out of memory\n");
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
        fsync(fd) != 0 || close(fd) != 0) {
        fprintf(stderr, "kmsd: cannot write %s: %s\n", tmp, strerror(errno));
        fd = -1;
        unlink(tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "kmsd: cannot replace %s: %s\n", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    r = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    free(text);
    json_decref(root);
    free(path);
    free(tmp);
    return r;
}

/* addr in "NET/BITS" (IPv4 or IPv6, of the same family) */
static bool cidr_match(const char *cidr, const char *addr)
{
    char net[64];
    unsigned char a[16], n[16];
    int bits = -1;
    const char *slash = strchr(cidr, '/');
    size_t len = slash != NULL ? (size_t)(slash - cidr) : strlen(cidr);
    if (len >= sizeof net) {
        return false;
    }
    memcpy(net, cidr, len);
    net[len] = '\0';
    int family = strchr(net, ':') != NULL ? AF_INET6 : AF_INET;
    int max = family == AF_INET6 ? 128 : 32;
    bits = slash != NULL ? atoi(slash + 1) : max;
    if (bits < 0 || bits > max || inet_pton(family, net, n) != 1 ||
        inet_pton(family, addr, a) != 1) {
        return false;
    }
    for (int i = 0; i < bits; i++) {
        unsigned char m = (unsigned char)(0x80 >> (i % 8));
        if ((a[i / 8] & m) != (n[i / 8] & m)) {
            return false;
        }
    }
    return true;
}

bool kmsd_config_metrics_allowed(const kmsd_config *cfg, const char *addr)
{
    for (size_t i = 0; i < cfg->n_metrics_allow; i++) {
        if (cidr_match(cfg->metrics_allow[i], addr)) {
            return true;
        }
    }
    return false;
}
