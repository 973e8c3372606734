/* Servers of managed certificates (tls_managed.c): kms_tls_server_new hands them options with a
 * certificate_arn; the server calls the refresh before each new connection. */
#ifndef KMS_TLS_TLS_MANAGED_H
#define KMS_TLS_TLS_MANAGED_H

#include <stdint.h>

#include <stdbool.h>

#include "kms/tls.h"

typedef struct kms_tls_managed kms_tls_managed;

/* Watches a server's CA of the manager (opts->ca_arn): its CRL file is looked at once a second
 * and a new one reloads the server (kms_tls_server_reload). NULL with an error raised. */
kms_tls_managed *kms_tls_managed_crl_watch_new(const kms_tls_options *opts)
    __attribute__((warn_unused_result));
/* A server of opts->certificate_arn, its key and chain from opts->client's certificate manager;
 * its InUseBy gets opts->in_use_by until kms_tls_server_free. */
kms_tls_server *kms_tls_managed_server_new(const kms_tls_options *opts)
    __attribute__((warn_unused_result));
/* Reloads the server when the certificate was renewed or reimported since (looked at once a
 * second at most); never fails: on any error the current certificate stays. */
void kms_tls_managed_refresh(kms_tls_server *server, kms_tls_managed *mg);
/* How long until the next look, in ms (tests): 1 s, doubled after each failed reload. */
int64_t kms_tls_managed_interval_ms(const kms_tls_managed *mg);
/* The generation served (tests). */
int64_t kms_tls_managed_generation(const kms_tls_managed *mg);
/* Removes the InUseBy entry and frees. */
void kms_tls_managed_free(kms_tls_managed *mg);

/* ---- CAs of the manager (tls_manager_ca.c) ---------------------------------------------------
 * Makes ca_arn's certificate ctx's only trust anchor (partial chains allowed: a subordinate CA
 * anchors by itself); a server also sends it as the acceptable client CA and checks clients
 * against the CRL the CA publishes (ValidationException when it publishes CRLs and none reads). */
int kms_tls_manager_ca_install(kms_client *client, const char *ca_arn, SSL_CTX *ctx, bool server)
    __attribute__((warn_unused_result));
/* HOME/crl/CA_ID.crl (malloc'd) if the CA publishes CRLs, else NULL. */
int kms_tls_manager_crl_path(kms_client *client, const char *ca_arn, char **path)
    __attribute__((warn_unused_result));

#endif
