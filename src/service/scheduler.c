/* The scheduler: everything that falls due with time or use, carried out as the service
 * (kms.h "The scheduler"). Each action is one request through the gate
 * (kms_gate_begin_service) and one AwsServiceEvent record; the store's conditional updates make
 * it idempotent, so schedulers may run side by side and a second run finds nothing to redo. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki/acm.h"
#include "remote/remote.h"
#include "service/acm_service.h"
#include "service/audit_trail.h"
#include "service/gate.h"
#include "service/scheduler.h"
#include "util/util.h"

typedef struct due_item {
    kms_due_kind kind;
    char key_id[37];
    int64_t due;
} due_item;

typedef struct due_list {
    due_item *items;
    size_t n, cap;
} due_list;

static int collect(void *arg, kms_due_kind kind, const char *key_id, int64_t due)
{
    due_list *l = arg;
    /* One action per key and run: a key both due by age and by usage rotates once, and a key
     * whose crashed rotation is resumed is not rotated again in the same run. */
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].key_id, key_id) == 0) {
            return 0;
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        due_item *more = realloc(l->items, cap * sizeof *more);
        KMS_ENSURE(more != NULL, KMS_ERR_INTERNAL, "out of memory");
        l->items = more;
        l->cap = cap;
    }
    due_item *it = &l->items[l->n++];
    it->kind = kind;
    snprintf(it->key_id, sizeof it->key_id, "%s", key_id);
    it->due = due;
    return 0;
}

static const char *reason_of(kms_due_kind kind)
{
    switch (kind) {
    case KMS_DUE_ROTATION:
        return "SCHEDULE";
    case KMS_DUE_USAGE:
        return "USAGE";
    case KMS_DUE_ABANDONED:
        return "RESUMED";
    default:
        return "DELETION";
    }
}

/* One rotation, as the service. 0 done, 1 nothing to do (another scheduler did it), -1 error. */
static int rotate(kms_client *c, const due_item *it, int64_t now, uint32_t *version,
                  const char **type)
{
    kms_key_rotation rot;
    KMS_GUARD(kms_keystore_rotation_get(&c->keystore, it->key_id, &rot));
    kms_rotation_claim cl = {
        .version = kms_rotation_next_version(&rot),
        .type = "AUTOMATIC",
        .now = now,
        .stale_before = now - KMS_ROTATION_STALE_SECONDS,
    };
    if (it->kind == KMS_DUE_ROTATION) {
        cl.due_before = now;
    } else if (it->kind == KMS_DUE_USAGE) {
        cl.usage_limit = c->cfg.rotation_usage_limit;
    } else {
        /* A crashed rotation is finished as what it was: an on-demand one stays on demand. */
        if (rot.claim == 0 || rot.claim_date >= cl.stale_before) {
            return 1; /* finished or taken over by another scheduler meanwhile */
        }
        cl.type = strcmp(rot.claim_type, "ON_DEMAND") == 0 ? "ON_DEMAND" : "AUTOMATIC";
    }
    *version = cl.version;
    *type = cl.type;
    return kms_keystore_rotate(&c->keystore, it->key_id, &cl);
}

json_t *kms_scheduler_rotate_key_event(const char *key_id, const char *key_arn,
                                       const char *rotation_type, uint32_t version)
{
    char previous[65], current[65];
    kms_audit_trail_material_id(key_arn, version > 1 ? version - 1 : version, previous);
    kms_audit_trail_material_id(key_arn, version, current);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "rotationType", rotation_type, "keyOrigin",
                     "AWS_KMS", "previousKeyMaterialId", previous, "currentKeyMaterialId", current,
                     "keyId", key_id);
}

static int act(kms_client *c, const due_item *it, int64_t now, json_t *report,
               json_int_t *already_done)
{
    kms_request rq;
    char arn[KMS_ARN_MAX];
    char when[32];
    bool deletion = it->kind == KMS_DUE_DELETION;
    const char *type = "AUTOMATIC";
    uint32_t version = 0;
    kms_keystore_key_arn(&c->keystore, it->key_id, arn);
    int r = kms_gate_begin_service(&rq, c, deletion ? "DeleteKey" : "RotateKey");
    if (r == 0) {
        r = kms_gate_authorize_service(&rq, deletion ? "kms:DeleteKey" : "kms:RotateKey", arn);
    }
    if (r == 0) {
        r = deletion ? kms_keystore_destroy(&c->keystore, it->key_id, now)
                     : rotate(c, it, now, &version, &type);
    }
    if (r == 1 ||
        (r != 0 && deletion &&
         (kms_last_error() == KMS_ERR_NOT_FOUND || kms_last_error() == KMS_ERR_INVALID_STATE))) {
        /* Done meanwhile by another scheduler, or no longer due (a deletion cancelled since the
         * list was read): nothing happened. */
        rq.nothing_done = true;
        kms_error_clear();
        (*already_done)++;
        return kms_gate_end(&rq, 0);
    }
    kms_time_iso8601(it->due, when);
    json_t *item =
        deletion
            ? json_pack("{s:s, s:s, s:s}", "KeyId", it->key_id, "KeyArn", arn, "DeletionDate", when)
            : json_pack("{s:s, s:s, s:I, s:s, s:s}", "KeyId", it->key_id, "KeyArn", arn, "Version",
                        (json_int_t)version, "RotationType", type, "Reason", reason_of(it->kind));
    if (r == 0) {
        /* CloudTrail's RotateKey / DeleteKey service events: the key is the record's resource,
         * what was done its serviceEventDetails (DeleteKey: the key id, as AWS writes it). */
        rq.service_details = deletion
                                 ? json_pack("{s:s}", "keyId", it->key_id)
                                 : kms_scheduler_rotate_key_event(it->key_id, arn, type, version);
    }
    r = kms_gate_end(&rq, r);
    if (r == 0) {
        KMS_ENSURE(json_array_append_new(
                       json_object_get(report, deletion ? "Deletions" : "Rotations"), item) == 0,
                   KMS_ERR_INTERNAL, "out of memory");
        return 0;
    }
    json_decref(item);
    json_t *err = json_pack("{s:s, s:s, s:s, s:s}", "KeyId", it->key_id, "Action",
                            deletion ? "DeleteKey" : "RotateKey", "ErrorCode",
                            kms_error_name(kms_last_error()), "Message", kms_last_error_message());
    KMS_ENSURE(json_array_append_new(json_object_get(report, "Errors"), err) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

/* A seal that fails is listed under Errors (Action SealAuditLog, no KeyId), as a failed action
 * is: the run goes on. */
static int seal_audit_log(kms_client *client, json_t *report, bool *sealed)
{
    if (kms_audit_trail_seal(client, true, sealed) == 0) {
        return 0;
    }
    *sealed = false;
    json_t *err = json_pack("{s:s, s:s, s:s}", "Action", "SealAuditLog", "ErrorCode",
                            kms_error_name(kms_last_error()), "Message", kms_last_error_message());
    KMS_ENSURE(json_array_append_new(json_object_get(report, "Errors"), err) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

/* ---- Managed certificates: renewal and expiry warnings --------------------------------------- */

/* A certificate of some account (the scheduler acts on every account's). */
typedef struct acm_ref {
    char cert_id[37];
    char account_id[13];
} acm_ref;

/* The PRIVATE, ELIGIBLE, ISSUED certificates of every account whose renewal is due by `now`
 * (all of them with now 0), and the earliest renewal date of the others. */
typedef struct acm_due {
    int64_t now;
    acm_ref *ids;
    size_t count, cap;
    int64_t next;
} acm_due;

static int acm_collect(void *arg, const kms_acm_cert *c)
{
    acm_due *d = arg;
    if (strcmp(c->type, "PRIVATE") != 0 || strcmp(c->renewal_eligibility, "ELIGIBLE") != 0 ||
        strcmp(c->status, "ISSUED") != 0) {
        return 0;
    }
    int64_t at = kms_acm_renew_at(c);
    if (at > d->now) {
        d->next = d->next == 0 || at < d->next ? at : d->next;
        return 0;
    }
    KMS_GUARD(kms_array_reserve((void **)&d->ids, &d->cap, d->count, sizeof *d->ids));
    acm_ref *ref = &d->ids[d->count++];
    snprintf(ref->cert_id, sizeof ref->cert_id, "%s", c->cert_id);
    snprintf(ref->account_id, sizeof ref->account_id, "%s", c->account_id);
    return 0;
}

/* One managed renewal, as the service: an AwsServiceEvent RenewCertificate from
 * acm.amazonaws.com. A failure is recorded in the certificate's RenewalSummary (FAILED, with
 * the reason) and listed under Errors; the next run tries again. */
static int acm_renew_one(kms_client *c, const acm_ref *ref, int64_t now, json_t *report,
                         json_int_t *already_done)
{
    const char *cert_id = ref->cert_id;
    kms_keystore view; /* the certificate's own account */
    kms_request rq;
    kms_acm_cert old, cur;
    kms_key_record seal;
    char arn[KMS_ARN_MAX];
    memset(&old, 0, sizeof old);
    memset(&cur, 0, sizeof cur);
    memset(&seal, 0, sizeof seal);
    kms_pki_keystore_as(&c->keystore, ref->account_id, &view);
    kms_acm_arn(&view, cert_id, arn);
    int r = kms_gate_begin_service(&rq, c, "acm:RenewCertificate");
    if (r == 0) {
        r = kms_gate_authorize_service(&rq, "acm:RenewCertificate", arn);
    }
    if (r == 0) {
        r = kms_acm_get(&view, cert_id, &old);
    }
    if (r == 0 && kms_acm_renew_at(&old) > now) {
        r = 1; /* renewed meanwhile by another scheduler */
    }
    if (r == 0 && strcmp(old.key_storage, "SEALED") == 0) {
        r = kms_acm_service_seal_key(c, ref->account_id, &seal);
    }
    if (r == 0) {
        r = kms_acm_renew(&view, &old, strcmp(old.key_storage, "SEALED") == 0 ? &seal : NULL, now);
    }
    if (r != 0 && r != 1 && kms_last_error() == KMS_ERR_REQUEST_IN_PROGRESS) {
        r = 1;
    }
    if (r == 1) {
        rq.nothing_done = true;
        kms_error_clear();
        (*already_done)++;
        r = kms_gate_end(&rq, 0);
        goto out;
    }
    if (r == 0) {
        r = kms_acm_get(&view, cert_id, &cur);
    }
    if (r == 0) {
        char when[32];
        kms_time_iso8601(cur.not_after, when);
        rq.service_details = json_pack("{s:s, s:s, s:s, s:I, s:s}", "renewalType", "MANAGED",
                                       "previousSerial", old.serial, "serial", cur.serial,
                                       "generation", (json_int_t)cur.generation, "notAfter", when);
    }
    if (r != 0) {
        /* The reason stays in RenewalSummary; the run goes on. */
        kms_saved_error e;
        kms_error_save(&e);
        if (kms_acm_renewal_failed(&view, cert_id, e.message, now) != 0) {
            kms_error_clear();
        }
        (void)kms_error_restore(&e);
    }
    r = kms_gate_end(&rq, r);
    json_t *item =
        r == 0
            ? json_pack("{s:s, s:s, s:s, s:I}", "CertificateArn", arn, "PreviousSerial", old.serial,
                        "Serial", cur.serial, "Generation", (json_int_t)cur.generation)
            : json_pack("{s:s, s:s, s:s, s:s}", "CertificateArn", arn, "Action", "RenewCertificate",
                        "ErrorCode", kms_error_name(kms_last_error()), "Message",
                        kms_last_error_message());
    r = item != NULL &&
                json_array_append_new(
                    json_object_get(report, r == 0 ? "CertificateRenewals" : "Errors"), item) == 0
            ? 0
            : kms_raise(KMS_ERR_INTERNAL, "out of memory");
out:
    kms_key_record_clean_up(&seal);
    kms_acm_cert_clean_up(&old);
    kms_acm_cert_clean_up(&cur);
    return r;
}

static int acm_renewals(kms_client *c, int64_t now, json_t *report, json_int_t *already_done)
{
    acm_due d = {.now = now};
    int r = kms_acm_scheduler_list(&c->keystore, acm_collect, &d);
    for (size_t i = 0; r == 0 && i < d.count; i++) {
        r = acm_renew_one(c, &d.ids[i], now, report, already_done);
    }
    free(d.ids);
    return r;
}

/* The earliest managed renewal still to come (0: none). */
static int acm_next_due(kms_client *c, int64_t now, int64_t *when)
{
    acm_due d = {.now = now};
    int r = kms_acm_scheduler_list(&c->keystore, acm_collect, &d);
    free(d.ids);
    *when = r == 0 ? d.next : 0;
    return r;
}

typedef struct acm_warn_ctx {
    kms_client *client;
    int64_t now;
    json_t *report;
} acm_warn_ctx;

/* One AwsServiceEvent CertificateApproachingExpiration (acm.amazonaws.com) per certificate and
 * day: the day is claimed first, so that schedulers side by side warn once. */
static int acm_warn_one(void *arg, const char *arn, int64_t not_after, const char *source)
{
    acm_warn_ctx *w = arg;
    kms_request rq;
    char when[32];
    int claimed = kms_acm_warning_claim(&w->client->keystore, arn, w->now / 86400);
    if (claimed <= 0) {
        return claimed;
    }
    /* Days left, a part of a day counting as one (29 days and 23 hours: 30). */
    json_int_t days = (json_int_t)((not_after - w->now + 86399) / 86400);
    kms_time_iso8601(not_after, when);
    int r = kms_gate_begin_service(&rq, w->client, "acm:CertificateApproachingExpiration");
    if (r == 0) {
        r = kms_gate_authorize_service(&rq, "acm:CertificateApproachingExpiration", arn);
    }
    if (r == 0) {
        rq.service_details =
            json_pack("{s:s, s:I, s:s, s:s}", "certificateArn", arn, "daysToExpiry", days,
                      "notAfter", when, "issuedThrough", source);
    }
    r = kms_gate_end(&rq, r);
    json_t *item =
        r == 0 ? json_pack("{s:s, s:I, s:s}", "CertificateArn", arn, "DaysToExpiry", days,
                           "NotAfter", when)
               : json_pack("{s:s, s:s, s:s, s:s}", "CertificateArn", arn, "Action",
                           "CertificateApproachingExpiration", "ErrorCode",
                           kms_error_name(kms_last_error()), "Message", kms_last_error_message());
    KMS_ENSURE(item != NULL &&
                   json_array_append_new(
                       json_object_get(w->report, r == 0 ? "ExpiryWarnings" : "Errors"), item) == 0,
               KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

static int acm_warnings(kms_client *c, int64_t now, json_t *report)
{
    int64_t days =
        c->cfg.certificate_warning_days > 0 ? c->cfg.certificate_warning_days : KMS_ACM_WARN_DAYS;
    acm_warn_ctx w = {c, now, report};
    return kms_acm_expiring(&c->keystore, now, now + days * 86400, acm_warn_one, &w);
}

/* Managed renewals, then expiry warnings (a renewed certificate warns no more). */
static int acm_work(kms_client *c, int64_t now, json_t *report, json_int_t *already_done)
{
    KMS_ENSURE(json_object_set_new(report, "CertificateRenewals", json_array()) == 0 &&
                   json_object_set_new(report, "ExpiryWarnings", json_array()) == 0,
               KMS_ERR_INTERNAL, "out of memory");
    KMS_GUARD(acm_renewals(c, now, report, already_done));
    return acm_warnings(c, now, report);
}

int kms_scheduler_next_due(kms_client *client, int64_t *when)
{
    kms_error_clear();
    KMS_ENSURE(client != NULL && when != NULL, KMS_ERR_VALIDATION, "no client");
    KMS_GUARD(kms_remote_local_only(client->remote, "the scheduler"));
    int64_t now = kms_now(), cert = 0;
    KMS_GUARD(kms_keystore_next_due(&client->keystore, now, when));
    KMS_GUARD(acm_next_due(client, now, &cert));
    if (cert != 0 && (*when == 0 || cert < *when)) {
        *when = cert;
    }
    return 0;
}

int kms_scheduler_run(kms_client *client, char **report_json)
{
    kms_error_clear();
    KMS_ENSURE(client != NULL && report_json != NULL, KMS_ERR_VALIDATION, "no client");
    *report_json = NULL;
    KMS_GUARD(kms_remote_local_only(client->remote, "the scheduler"));
    int64_t now = kms_now();
    char iso[32];
    due_list due = {0};
    kms_time_iso8601(now, iso);
    json_int_t already_done = 0;
    json_t *report =
        json_pack("{s:s, s:[], s:[], s:[]}", "Time", iso, "Rotations", "Deletions", "Errors");
    KMS_ENSURE(report != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = kms_keystore_due_list(&client->keystore, now, client->cfg.rotation_usage_limit,
                                  now - KMS_ROTATION_STALE_SECONDS, collect, &due);
    for (size_t i = 0; r == 0 && i < due.n; i++) {
        r = act(client, &due.items[i], now, report, &already_done);
    }
    if (r == 0) {
        r = kms_scheduler_pca_run(client, now, report);
    }
    if (r == 0) {
        r = acm_work(client, now, report, &already_done);
    }
    int64_t next = 0, cert_next = 0;
    if (r == 0) {
        r = kms_keystore_next_due(&client->keystore, now, &next);
    }
    if (r == 0) {
        r = acm_next_due(client, now, &cert_next);
    }
    if (r == 0 && cert_next != 0 && (next == 0 || cert_next < next)) {
        next = cert_next;
    }
    /* The trail's open segment, signed once digest_period has passed since the newest digest,
     * even when no command wrote since (a command leaves the segment open). */
    bool sealed = false;
    if (r == 0) {
        r = seal_audit_log(client, report, &sealed);
    }
    if (r == 0) {
        kms_time_iso8601(next, iso);
        if (json_object_set_new(report, "AlreadyDone", json_integer(already_done)) != 0 ||
            json_object_set_new(report, "AuditLogSealed", json_boolean(sealed)) != 0 ||
            json_object_set_new(report, "NextDueDate", next > 0 ? json_string(iso) : json_null()) !=
                0) {
            r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    if (r == 0) {
        *report_json = json_dumps(report, JSON_COMPACT);
        r = *report_json != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    free(due.items);
    json_decref(report);
    return r;
}
