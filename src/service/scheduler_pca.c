/* The scheduler's work for the private CA (issue 16): each CA's CRL reissued once half of its
 * validity has passed (kms_pki_crl_due), and a DELETED CA whose restore window has ended
 * deleted for good, its HSM key destroyed (kms_pki_ca_purge). Each action is one request
 * through the gate as the service and one AwsServiceEvent record from acm-pca.amazonaws.com:
 * GenerateCRL (as AWS Private CA records its CRLs) and DeleteCertificateAuthority (with
 * serviceEventDetails {permanentDeletion: true}). */
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"
#include "service/audit_trail.h"
#include "service/gate.h"
#include "service/scheduler.h"
#include "util/util.h"

typedef struct pca_item {
    kms_pki_ca ca; /* owned */
    bool purge;    /* else: reissue the CRL */
} pca_item;

typedef struct pca_due {
    kms_client *client;
    int64_t now;
    json_t *report;
    pca_item *items;
    size_t n, cap;
} pca_due;

/* A CA whose CRL could not be looked at, under the report's Errors (Action GenerateCRL). */
static int due_failed(pca_due *d, const kms_pki_ca *ca)
{
    kms_keystore view;
    char arn[KMS_ARN_MAX];
    kms_pki_keystore_as(&d->client->keystore, ca->account_id, &view);
    kms_pki_ca_arn(&view, ca->ca_id, arn);
    json_t *item = json_pack("{s:s, s:s, s:s, s:s}", "CertificateAuthorityArn", arn, "Action",
                             "GenerateCRL", "ErrorCode", kms_error_name(kms_last_error()),
                             "Message", kms_last_error_message());
    kms_error_clear();
    KMS_ENSURE(item != NULL &&
                   json_array_append_new(json_object_get(d->report, "Errors"), item) == 0,
               KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

static int pca_collect(void *arg, const kms_pki_ca *ca)
{
    pca_due *d = arg;
    bool purge = strcmp(ca->status, "DELETED") == 0 || strcmp(ca->status, "PURGING") == 0;
    bool due = purge;
    int64_t next = 0;
    if (!purge && kms_pki_crl_due(ca, d->client->home, d->now, &due, &next) != 0) {
        /* This CA alone: its error listed, its CRL reissued (which replaces a file that cannot
         * be read), and the run goes on for every other CA. */
        KMS_GUARD(due_failed(d, ca));
        due = true;
    }
    if (!due) {
        return 0;
    }
    KMS_GUARD(kms_array_reserve((void **)&d->items, &d->cap, d->n, sizeof *d->items));
    pca_item *it = &d->items[d->n];
    memset(it, 0, sizeof *it);
    it->purge = purge;
    it->ca = *ca;
    /* The list's row is cleaned up after the callback: keep copies of what it owns. */
    it->ca.configuration = ca->configuration ? strdup(ca->configuration) : NULL;
    it->ca.revocation = ca->revocation ? strdup(ca->revocation) : NULL;
    it->ca.certificate = NULL;
    it->ca.chain = NULL;
    it->ca.chain_len = 0;
    it->ca.public_key = NULL;
    it->ca.public_key_len = 0;
    d->n++;
    KMS_ENSURE(it->ca.configuration != NULL && it->ca.revocation != NULL, KMS_ERR_INTERNAL,
               "out of memory");
    if (ca->certificate != NULL) {
        it->ca.certificate = malloc(ca->certificate_len);
        KMS_ENSURE(it->ca.certificate != NULL, KMS_ERR_INTERNAL, "out of memory");
        memcpy(it->ca.certificate, ca->certificate, ca->certificate_len);
    }
    return 0;
}

/* One action as the service; the report lists it under CrlsReissued or
 * CertificateAuthoritiesDeleted, or its failure under Errors. */
static int pca_act(kms_client *c, pca_item *it, int64_t now, json_t *report)
{
    kms_request rq;
    kms_keystore view;
    char arn[KMS_ARN_MAX];
    const char *op = it->purge ? "acm-pca:DeleteCertificateAuthority" : "acm-pca:GenerateCRL";
    kms_pki_keystore_as(&c->keystore, it->ca.account_id, &view);
    kms_pki_ca_arn(&view, it->ca.ca_id, arn);
    int r = kms_gate_begin_service(&rq, c, op);
    if (r == 0) {
        r = kms_gate_authorize_service(&rq, op, arn);
    }
    if (r == 0) {
        r = it->purge ? kms_pki_ca_purge(&view, it->ca.ca_id, now)
                      : kms_pki_crl_publish(&view, &it->ca, c->home, now);
    }
    if (r == 1) {
        /* Restored or purged meanwhile: nothing happened, no record. */
        rq.nothing_done = true;
        kms_error_clear();
        return kms_gate_end(&rq, 0);
    }
    if (r == 0 && it->purge) {
        rq.service_details = json_pack("{s:b}", "permanentDeletion", 1);
    }
    r = kms_gate_end(&rq, r);
    json_t *item =
        r == 0
            ? json_pack("{s:s, s:s}", "CertificateAuthorityArn", arn, "Account", it->ca.account_id)
            : json_pack("{s:s, s:s, s:s, s:s}", "CertificateAuthorityArn", arn, "Action",
                        op + strlen("acm-pca:"), "ErrorCode", kms_error_name(kms_last_error()),
                        "Message", kms_last_error_message());
    const char *list = r != 0      ? "Errors"
                       : it->purge ? "CertificateAuthoritiesDeleted"
                                   : "CrlsReissued";
    KMS_ENSURE(item != NULL && json_array_append_new(json_object_get(report, list), item) == 0,
               KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

int kms_scheduler_pca_run(kms_client *client, int64_t now, json_t *report)
{
    int r = -1;
    pca_due d = {client, now, report, NULL, 0, 0};
    if (json_object_set_new(report, "CrlsReissued", json_array()) != 0 ||
        json_object_set_new(report, "CertificateAuthoritiesDeleted", json_array()) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_pki_scheduler_list(&client->keystore, now, pca_collect, &d) != 0) {
        goto out;
    }
    for (size_t i = 0; i < d.n; i++) {
        if (pca_act(client, &d.items[i], now, report) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    for (size_t i = 0; i < d.n; i++) {
        kms_pki_ca_clean_up(&d.items[i].ca);
    }
    free(d.items);
    return r;
}
