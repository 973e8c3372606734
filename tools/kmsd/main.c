/* kmsd --home H [--listen ADDR:PORT]... [--http-listen ADDR:PORT|off] [--profile P] [--workers N]
 *      [--call-threads N] [--no-scheduler] [--help]
 * Settings come from config.json's "server" section (config.c); the flags override them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmsd.h"

static const char usage[] =
    "usage: kmsd --home DIR [--listen ADDR:PORT]... [--http-listen ADDR:PORT|off]\n"
    "            [--profile NAME] [--workers N] [--call-threads N] [--no-scheduler] [--help]\n"
    "\n"
    "Serves the KMS home DIR over HTTPS with AWS's wire protocols (the aws CLI and the AWS SDKs\n"
    "work against it with --endpoint-url), and CRLs and OCSP over plain HTTP.\n"
    "  --listen ADDR:PORT       HTTPS (default 127.0.0.1:8443; repeat for more)\n"
    "  --http-listen ADDR:PORT  plain HTTP for CRLs and OCSP (default 127.0.0.1:8080; off)\n"
    "  --profile NAME           the server's own profile, for its certificate (default)\n"
    "  --workers N              event loops (default: one per core)\n"
    "  --call-threads N         threads running the requests' calls, 1 to 1024 (default 64)\n"
    "  --no-scheduler           do not run rotations, deletions, renewals and CRLs here\n"
    "Settings: config.json's \"server\" object (see the README). SIGHUP reloads the\n"
    "configuration and the certificate; SIGTERM stops after in-flight requests.\n"
    "\n"
    "Example:\n"
    "  kmsd --home ~/.kms --listen 0.0.0.0:8443\n"
    "  aws --endpoint-url https://127.0.0.1:8443 --ca-bundle ~/.kms/kmsd-ca.pem kms list-keys\n";

static int set(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
    return *dst != NULL ? 0 : -1;
}

typedef struct cli {
    const char *home;
    const char *listen[KMSD_MAX_LISTEN];
    size_t n_listen;
    const char *http_listen;
    const char *profile;
    int workers;
    int call_threads;
    bool no_scheduler;
} cli;

/* 0 parsed, 1 --help, -1 usage error */
static int parse(int argc, char **argv, cli *c)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},
        {"listen", required_argument, NULL, 'l'},
        {"http-listen", required_argument, NULL, 't'},
        {"profile", required_argument, NULL, 'p'},
        {"workers", required_argument, NULL, 'w'},
        {"call-threads", required_argument, NULL, 'c'},
        {"no-scheduler", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    memset(c, 0, sizeof *c);
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'H':
            c->home = optarg;
            break;
        case 'l':
            if (c->n_listen == KMSD_MAX_LISTEN) {
                fprintf(stderr, "kmsd: at most %d --listen\n", KMSD_MAX_LISTEN);
                return -1;
            }
            c->listen[c->n_listen++] = optarg;
            break;
        case 't':
            c->http_listen = optarg;
            break;
        case 'p':
            c->profile = optarg;
            break;
        case 'w':
            c->workers = atoi(optarg);
            if (c->workers < 1 || c->workers > 256) {
                fprintf(stderr, "kmsd: --workers takes 1 to 256\n");
                return -1;
            }
            break;
        case 'c':
            c->call_threads = atoi(optarg);
            if (c->call_threads < 1 || c->call_threads > 1024) {
                fprintf(stderr, "kmsd: --call-threads takes 1 to 1024\n");
                return -1;
            }
            break;
        case 'n':
            c->no_scheduler = true;
            break;
        case 'h':
            return 1;
        default:
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "kmsd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (c->home == NULL) {
        c->home = kms_home_default();
    }
    return 0;
}

static int apply(const cli *c, kmsd_config *cfg)
{
    if (c->n_listen > 0) {
        for (size_t i = 0; i < KMSD_MAX_LISTEN; i++) {
            free(cfg->listen[i]);
            cfg->listen[i] = NULL;
        }
        for (size_t i = 0; i < c->n_listen; i++) {
            if (set(&cfg->listen[i], c->listen[i]) != 0) {
                return -1;
            }
        }
        cfg->n_listen = c->n_listen;
    }
    if ((c->http_listen != NULL && set(&cfg->http_listen, c->http_listen) != 0) ||
        (c->profile != NULL && set(&cfg->profile, c->profile) != 0)) {
        return -1;
    }
    if (c->workers > 0) {
        cfg->workers = c->workers;
    }
    if (c->call_threads > 0) {
        cfg->call_threads = c->call_threads;
    }
    cfg->no_scheduler = c->no_scheduler;
    return 0;
}

int main(int argc, char **argv)
{
    cli c;
    kmsd_config cfg;
    kms_client *client = NULL;
    kmsd_server *server = NULL;
    int rc = 1;
    memset(&cfg, 0, sizeof cfg);
    int p = parse(argc, argv, &c);
    if (p != 0) {
        fputs(usage, p > 0 ? stdout : stderr);
        return p > 0 ? 0 : 2;
    }
    if (kmsd_config_load(c.home, &cfg) != 0 || apply(&c, &cfg) != 0) {
        goto out;
    }
    kms_client_options o = {.home = c.home, .profile = cfg.profile, .user_agent = "kmsd/0.1.0"};
    if ((client = kms_client_open(&o)) == NULL) {
        fprintf(stderr, "kmsd: {\"__type\": \"%s\", \"message\": \"%s\"}\n",
                kms_error_name(kms_last_error()), kms_last_error_message());
        goto out;
    }
    if (kmsd_certs_ensure(client, c.home, &cfg) != 0 ||
        (server = kmsd_server_new(client, c.home, &cfg)) == NULL || kmsd_server_run(server) != 0) {
        goto out;
    }
    /* Every request finished: seal what the trail holds, so validate-logs covers it now. */
    char *sealed = NULL;
    if (kms_audit_seal_now(client, &sealed) != 0) {
        fprintf(stderr, "kmsd: sealing the audit trail: %s\n", kms_last_error_message());
        goto out;
    }
    kms_string_free(sealed);
    fprintf(stderr, "kmsd: stopped, audit trail sealed\n");
    rc = 0;
out:
    kmsd_server_free(server);
    kms_client_free(client);
    kmsd_config_clean_up(&cfg);
    return rc;
}
