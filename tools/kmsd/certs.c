/* The first start: without a server certificate in config.json, kmsd makes, through the
 * certificate manager and as the server's profile (every step audited like any call):
 *   - a ROOT CA "KMS local CA" (EC P-256), its key in the HSM;
 *   - a certificate for localhost with the names 127.0.0.1, ::1 and the host name (our
 *     RequestCertificate's extension: IP addresses and single-label names for private
 *     certificates), its key in the HSM;
 * then saves both ARNs into config.json's "server" section and the CA's certificate into
 * HOME/kmsd-ca.pem, and prints how to trust it. HOME/kmsd.lock (flock) serialises this, so two
 * kmsd started together on a fresh home make one CA: the second reads what the first saved. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "kmsd.h"

/* kms_call with a request built by json_pack; the response parsed (NULL on failure, printed). */
static json_t *call(kms_client *client, const char *op, json_t *req)
{
    char *text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    char *resp = NULL;
    json_t *out = NULL;
    json_decref(req);
    if (text == NULL) {
        fprintf(stderr, "kmsd: out of memory\n");
        return NULL;
    }
    if (kms_call(client, op, text, &resp) != 0) {
        fprintf(stderr, "kmsd: %s: {\"__type\": \"%s\", \"message\": \"%s\"}\n", op,
                kms_error_name(kms_last_error()), kms_last_error_message());
    } else if ((out = json_loads(resp, 0, NULL)) == NULL) {
        fprintf(stderr, "kmsd: %s: the response is not JSON\n", op);
    }
    free(text);
    kms_string_free(resp);
    return out;
}

static int write_ca_pem(kms_client *client, const char *home, const char *ca_arn)
{
    int r = -1;
    char path[4096];
    json_t *resp = call(client, "acm-pca:GetCertificateAuthorityCertificate",
                        json_pack("{s:s}", "CertificateAuthorityArn", ca_arn));
    const char *pem = json_string_value(json_object_get(resp, "Certificate"));
    snprintf(path, sizeof path, "%s/kmsd-ca.pem", home);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = NULL;
    if (pem == NULL) {
        goto out;
    }
    f = fopen(tmp, "w");
    if (f == NULL || fputs(pem, f) < 0 || (pem[strlen(pem) - 1] != '\n' && fputc('\n', f) < 0) ||
        fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "kmsd: cannot write %s: %s\n", path, strerror(errno));
        f = NULL;
        unlink(tmp);
        goto out;
    }
    f = NULL;
    printf("kmsd: the server's certificate is issued by the local CA in %s. Trust it:\n"
           "  aws --ca-bundle %s ...\n"
           "  export AWS_CA_BUNDLE=%s\n"
           "  curl --cacert %s ...\n",
           path, path, path, path);
    fflush(stdout);
    r = 0;
out:
    if (f != NULL) {
        fclose(f);
    }
    json_decref(resp);
    return r;
}

static int make_ca(kms_client *client, char **ca_arn)
{
    json_t *resp =
        call(client, "acm-pca:CreateCertificateAuthority",
             json_pack("{s:s, s:{s:s, s:s, s:{s:s}}, s:s}", "CertificateAuthorityType", "ROOT",
                       "CertificateAuthorityConfiguration", "KeyAlgorithm", "EC_prime256v1",
                       "SigningAlgorithm", "SHA256WITHECDSA", "Subject", "CommonName",
                       "KMS local CA", "IdempotencyToken", "kmsd-local-ca"));
    const char *arn = json_string_value(json_object_get(resp, "CertificateAuthorityArn"));
    *ca_arn = arn != NULL ? strdup(arn) : NULL;
    json_decref(resp);
    if (*ca_arn == NULL) {
        return -1;
    }
    /* A ROOT CA of this manager is ACTIVE from its creation (its self-signed certificate made
     * with it), so AWS's GetCertificateAuthorityCsr / IssueCertificate / Import dance is not
     * needed; say so if that ever changes. */
    resp = call(client, "acm-pca:DescribeCertificateAuthority",
                json_pack("{s:s}", "CertificateAuthorityArn", *ca_arn));
    const char *status =
        json_string_value(json_object_get(json_object_get(resp, "CertificateAuthority"), "Status"));
    int r = status != NULL && strcmp(status, "ACTIVE") == 0 ? 0 : -1;
    if (r != 0) {
        fprintf(stderr, "kmsd: the local CA %s is %s, not ACTIVE\n", *ca_arn,
                status ? status : "unknown");
    }
    json_decref(resp);
    return r;
}

static json_t *request_names(bool with_host)
{
    char host[256] = "";
    json_t *sans = json_pack("[ss]", "127.0.0.1", "::1");
    if (sans != NULL && with_host && gethostname(host, sizeof host - 1) == 0 && host[0] != '\0' &&
        strcmp(host, "localhost") != 0) {
        if (json_array_append_new(sans, json_string(host)) != 0) {
            json_decref(sans);
            return NULL;
        }
    }
    return sans;
}

static int make_certificate(kms_client *client, const char *ca_arn, char **cert_arn)
{
    *cert_arn = NULL;
    json_t *resp = NULL;
    /* A host name that is not a valid DNS name (an underscore...) is left out, not fatal. */
    for (int with_host = 1; with_host >= 0 && resp == NULL; with_host--) {
        resp = call(client, "acm:RequestCertificate",
                    json_pack("{s:s, s:o, s:s, s:s, s:s}", "DomainName", "localhost",
                              "SubjectAlternativeNames", request_names(with_host), "KeyAlgorithm",
                              "EC_prime256v1", "CertificateAuthorityArn", ca_arn,
                              "IdempotencyToken", with_host ? "kmsdserver" : "kmsdlocal"));
    }
    const char *arn = json_string_value(json_object_get(resp, "CertificateArn"));
    *cert_arn = arn != NULL ? strdup(arn) : NULL;
    json_decref(resp);
    if (*cert_arn == NULL) {
        return -1;
    }
    /* Wait until it is ISSUED (this manager issues at once; a minute at most). */
    for (int i = 0; i < 600; i++) {
        resp = call(client, "acm:DescribeCertificate",
                    json_pack("{s:s}", "CertificateArn", *cert_arn));
        const char *status =
            json_string_value(json_object_get(json_object_get(resp, "Certificate"), "Status"));
        bool issued = status != NULL && strcmp(status, "ISSUED") == 0;
        bool pending = status != NULL && strcmp(status, "PENDING_VALIDATION") == 0;
        json_decref(resp);
        if (issued) {
            return 0;
        }
        if (!pending) {
            fprintf(stderr, "kmsd: the server certificate %s is %s\n", *cert_arn,
                    status ? status : "unreadable");
            break;
        }
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    free(*cert_arn);
    *cert_arn = NULL;
    return -1;
}

int kmsd_certs_ensure(kms_client *client, const char *home, kmsd_config *cfg)
{
    int r = -1;
    char lock_path[4096];
    char pem_path[4096];
    char *ca_arn = NULL;
    char *cert_arn = NULL;
    kmsd_config now;
    memset(&now, 0, sizeof now);
    snprintf(lock_path, sizeof lock_path, "%s/kmsd.lock", home);
    snprintf(pem_path, sizeof pem_path, "%s/kmsd-ca.pem", home);
    if (cfg->certificate_arn != NULL) {
        if (cfg->ca_arn != NULL && access(pem_path, F_OK) != 0) {
            return write_ca_pem(client, home, cfg->ca_arn);
        }
        return 0;
    }
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        fprintf(stderr, "kmsd: cannot lock %s: %s\n", lock_path, strerror(errno));
        goto out;
    }
    /* Another kmsd may have finished while this one waited. */
    if (kmsd_config_load(home, &now) != 0) {
        goto out;
    }
    if (now.certificate_arn != NULL) {
        ca_arn = now.ca_arn != NULL ? strdup(now.ca_arn) : NULL;
        cert_arn = strdup(now.certificate_arn);
    } else {
        fprintf(stderr, "kmsd: first start: making the local CA and the server's certificate\n");
        if (make_ca(client, &ca_arn) != 0 || make_certificate(client, ca_arn, &cert_arn) != 0 ||
            kmsd_config_save_certificate(home, cert_arn, ca_arn) != 0 ||
            write_ca_pem(client, home, ca_arn) != 0) {
            goto out;
        }
    }
    free(cfg->certificate_arn);
    free(cfg->ca_arn);
    cfg->certificate_arn = cert_arn;
    cfg->ca_arn = ca_arn;
    cert_arn = NULL;
    ca_arn = NULL;
    r = 0;
out:
    if (fd >= 0) {
        close(fd); /* releases the lock */
    }
    kmsd_config_clean_up(&now);
    free(ca_arn);
    free(cert_arn);
    return r;
}
