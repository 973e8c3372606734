/* SigV4 on the client side: the Authorization header of a request, through the same canonical
 * request, string to sign and signature as the verifier (src/sigv4), and the AWS JSON 1.1
 * target of each operation. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/remote.h"
#include "util/util.h"

#define MAX_SIGNED 64

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "a;b;c": the lowercase names of req's headers, sorted, each once. */
static int signed_headers(const kms_sigv4_request *req, char *out, size_t out_size)
{
    char names[MAX_SIGNED][128];
    const char *sorted[MAX_SIGNED];
    size_t n = req->n_headers, used = 0;
    out[0] = '\0';
    KMS_ENSURE(n > 0 && n <= MAX_SIGNED, KMS_ERR_VALIDATION, "%zu headers to sign: 1 to %d", n,
               MAX_SIGNED);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(req->headers[i].name);
        KMS_ENSURE(len > 0 && len < sizeof names[i], KMS_ERR_VALIDATION,
                   "a header name to sign is empty or too long");
        for (size_t j = 0; j <= len; j++) {
            names[i][j] = (char)tolower((unsigned char)req->headers[i].name[j]);
        }
        sorted[i] = names[i];
    }
    qsort(sorted, n, sizeof sorted[0], name_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0) {
            continue;
        }
        int k = snprintf(out + used, out_size - used, "%s%s", used ? ";" : "", sorted[i]);
        KMS_ENSURE(k > 0 && (size_t)k < out_size - used, KMS_ERR_VALIDATION,
                   "the headers to sign are too long");
        used += (size_t)k;
    }
    return 0;
}

int kms_remote_authorization(const kms_sigv4_request *req, const char *access_key_id,
                             const char *secret, const char *amz_date, const char *region,
                             const char *service, char **authorization)
{
    int r = -1;
    char names[KMS_SIGV4_SIGNED_HEADERS_MAX + 1];
    char scope[8 + 1 + 2 * KMS_SIGV4_SCOPE_PART_MAX + 16];
    char sig[65] = "";
    char *canonical = NULL;
    char *sts = NULL;
    *authorization = NULL;
    KMS_ENSURE(strlen(amz_date) == 16 && strlen(region) <= KMS_SIGV4_SCOPE_PART_MAX &&
                   strlen(service) <= KMS_SIGV4_SCOPE_PART_MAX,
               KMS_ERR_VALIDATION, "a bad date, region or service to sign with");
    KMS_GUARD(signed_headers(req, names, sizeof names));
    snprintf(scope, sizeof scope, "%.8s/%s/%s/aws4_request", amz_date, region, service);
    char date[9];
    snprintf(date, sizeof date, "%.8s", amz_date);
    if ((r = kms_sigv4_canonical_request(req, names, &canonical)) != 0) {
        goto out;
    }
    if ((r = kms_sigv4_string_to_sign(amz_date, scope, canonical, &sts)) != 0) {
        goto out;
    }
    if ((r = kms_sigv4_sign(secret, date, region, service, sts, sig)) != 0) {
        goto out;
    }
    *authorization =
        kms_strdup_printf(KMS_SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                          access_key_id, scope, names, sig);
    r = *authorization != NULL ? 0 : -1;
out:
    free(canonical);
    free(sts);
    return r;
}

static const struct {
    const char *prefix; /* "acm:" */
    const char *target; /* "CertificateManager." */
    const char *service;
} json_services[] = {
    {"acm:", "CertificateManager.", "acm"},
    {"acm-pca:", "ACMPrivateCA.", "acm-pca"},
    {"cloudtrail:", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.", "cloudtrail"},
};

static const char *const query_services[] = {"iam:", "sts:", "organizations:"};

int kms_remote_target(const char *operation, char *target, size_t target_size, char *service,
                      size_t service_size)
{
    const char *name = operation;
    const char *prefix = "TrentService.";
    const char *svc = "kms";
    target[0] = '\0';
    service[0] = '\0';
    KMS_ENSURE(operation != NULL && operation[0] != '\0', KMS_ERR_UNKNOWN_OPERATION,
               "no operation named");
    for (size_t i = 0; i < sizeof query_services / sizeof query_services[0]; i++) {
        KMS_ENSURE(strncmp(operation, query_services[i], strlen(query_services[i])) != 0,
                   KMS_ERR_UNSUPPORTED_OPERATION,
                   "%s is not available over --endpoint-url yet: the %.*s API speaks AWS's query "
                   "protocol, which the remote client speaks only for sts:GetCallerIdentity, "
                   "sts:AssumeRole and sts:GetSessionToken; run it on the server's machine with "
                   "--home",
                   operation, (int)strlen(query_services[i]) - 1, query_services[i]);
    }
    const char *colon = strchr(operation, ':');
    if (colon != NULL) {
        prefix = NULL;
        for (size_t i = 0; i < sizeof json_services / sizeof json_services[0]; i++) {
            if (strncmp(operation, json_services[i].prefix, strlen(json_services[i].prefix)) == 0) {
                prefix = json_services[i].target;
                svc = json_services[i].service;
                name = colon + 1;
            }
        }
        KMS_ENSURE(prefix != NULL, KMS_ERR_UNKNOWN_OPERATION, "unknown operation '%s'", operation);
    }
    for (const char *p = name; *p != '\0'; p++) {
        KMS_ENSURE(isalnum((unsigned char)*p), KMS_ERR_UNKNOWN_OPERATION, "unknown operation '%s'",
                   operation);
    }
    KMS_ENSURE(name[0] != '\0' && strlen(prefix) + strlen(name) < target_size &&
                   strlen(svc) < service_size,
               KMS_ERR_UNKNOWN_OPERATION, "unknown operation '%s'", operation);
    snprintf(target, target_size, "%s%s", prefix, name);
    snprintf(service, service_size, "%s", svc);
    return 0;
}
