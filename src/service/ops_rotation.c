/* Key rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus,
 * RotateKeyOnDemand, ListKeyRotations (AWS KMS API Reference). The versions themselves are the
 * key store's (keystore.h "Rotation, usage and deletion"); the scheduler carries out the
 * automatic rotations (scheduler.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/audit_trail.h"
#include "service/ops.h"
#include "service/scheduler.h"
#include "util/util.h"

#define DAY (24 * 60 * 60)
#define PERIOD_MIN 90
#define PERIOD_MAX 2560
#define PERIOD_DEFAULT 365

/* The key of a rotation request: a key id or key ARN (AWS takes no alias here), authorised,
 * of a kind that rotates. */
static int rotation_key(kms_request *rq, json_t *req, const char *action, kms_key_record *rec,
                        char arn[KMS_ARN_MAX])
{
    const char *key_id = NULL;
    kms_keystore *ks = &rq->client->keystore;
    KMS_GUARD(kms_request_string(req, "KeyId", true, 1, 2048, &key_id));
    rq->key_ref = key_id;
    KMS_GUARD(kms_keystore_resolve(ks, key_id, false, rec));
    kms_keystore_key_arn(ks, rec->key_id, arn);
    if (kms_gate_authorize_key(rq, action, rec, arn) != 0 ||
        kms_keystore_check_rotatable(ks, rec) != 0) {
        kms_key_record_clean_up(rec);
        return -1;
    }
    return 0;
}

/* Enable, Disable and RotateKeyOnDemand need the key Enabled, as AWS. */
static int check_enabled(const kms_key_record *rec, const char *arn)
{
    KMS_ENSURE(strcmp(rec->key_state, "Disabled") != 0, KMS_ERR_DISABLED,
               "%s is disabled. Enable it with `kmsctl enable-key --key-id %s` first.", arn,
               rec->key_id);
    KMS_ENSURE(strcmp(rec->key_state, "Enabled") == 0, KMS_ERR_INVALID_STATE, "%s is %s.", arn,
               rec->key_state);
    return 0;
}

int kms_ops_rotation_enable(kms_request *rq, json_t *req, json_t **resp)
{
    (void)resp;
    kms_key_record rec;
    kms_key_rotation rot;
    char arn[KMS_ARN_MAX];
    long long days = PERIOD_DEFAULT;
    KMS_GUARD(kms_request_int(req, "RotationPeriodInDays", false, PERIOD_MIN, PERIOD_MAX,
                              PERIOD_DEFAULT, &days));
    KMS_GUARD(rotation_key(rq, req, "kms:EnableKeyRotation", &rec, arn));
    int r = check_enabled(&rec, arn);
    if (r == 0) {
        r = kms_keystore_rotation_get(&rq->client->keystore, rec.key_id, &rot);
    }
    if (r == 0) {
        /* AWS: a new period counts from the last rotation date when rotation was on already
         * (the next date moves by the difference), from now when it is turned on. */
        int64_t next = rot.period_days > 0
                           ? rot.next_rotation + ((int64_t)days - rot.period_days) * DAY
                           : kms_now() + (int64_t)days * DAY;
        r = kms_keystore_rotation_set(&rq->client->keystore, rec.key_id, (int)days, next);
    }
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_rotation_disable(kms_request *rq, json_t *req, json_t **resp)
{
    (void)resp;
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    KMS_GUARD(rotation_key(rq, req, "kms:DisableKeyRotation", &rec, arn));
    int r = check_enabled(&rec, arn);
    if (r == 0) {
        r = kms_keystore_rotation_set(&rq->client->keystore, rec.key_id, 0, 0);
    }
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_rotation_get_status(kms_request *rq, json_t *req, json_t **resp)
{
    kms_key_record rec;
    kms_key_rotation rot;
    char arn[KMS_ARN_MAX];
    KMS_GUARD(rotation_key(rq, req, "kms:GetKeyRotationStatus", &rec, arn));
    int r = kms_keystore_rotation_get(&rq->client->keystore, rec.key_id, &rot);
    /* AWS: while a key is pending deletion its rotation status is false (and comes back if the
     * deletion is cancelled); a disabled key keeps its status but is not rotated. */
    bool on = r == 0 && rot.period_days > 0 && strcmp(rec.key_state, "PendingDeletion") != 0;
    if (r == 0) {
        *resp = json_pack("{s:b, s:s}", "KeyRotationEnabled", on, "KeyId", arn);
        r = *resp != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    if (r == 0 && on &&
        (json_object_set_new(*resp, "RotationPeriodInDays", json_integer(rot.period_days)) != 0 ||
         json_object_set_new(*resp, "NextRotationDate", json_integer(rot.next_rotation)) != 0)) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    if (r == 0 && rot.claim != 0 && strcmp(rot.claim_type, "ON_DEMAND") == 0 &&
        json_object_set_new(*resp, "OnDemandRotationStartDate", json_integer(rot.claim_date)) !=
            0) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    kms_key_record_clean_up(&rec);
    return r;
}

int kms_ops_rotation_rotate_on_demand(kms_request *rq, json_t *req, json_t **resp)
{
    kms_key_record rec;
    kms_key_rotation rot;
    char arn[KMS_ARN_MAX];
    KMS_GUARD(rotation_key(rq, req, "kms:RotateKeyOnDemand", &rec, arn));
    int64_t now = kms_now();
    kms_rotation_claim cl = {
        .type = "ON_DEMAND",
        .now = now,
        .stale_before = now - KMS_ROTATION_STALE_SECONDS,
    };
    int r = check_enabled(&rec, arn);
    if (r == 0) {
        r = kms_keystore_rotation_get(&rq->client->keystore, rec.key_id, &rot);
    }
    if (r == 0) {
        cl.version = kms_rotation_next_version(&rot);
        r = kms_keystore_rotate(&rq->client->keystore, rec.key_id, &cl);
    }
    if (r == 1) {
        /* Not claimed: say why, from the state now. */
        r = kms_keystore_rotation_get(&rq->client->keystore, rec.key_id, &rot);
        if (r == 0 && rot.on_demand_count >= KMS_ROTATION_ON_DEMAND_MAX) {
            r = kms_raise(KMS_ERR_LIMIT_EXCEEDED,
                          "%s has been rotated on demand %u times, the most allowed; turn on "
                          "automatic rotation with `kmsctl enable-key-rotation` instead",
                          arn, rot.on_demand_count);
        } else if (r == 0) {
            r = kms_raise(KMS_ERR_CONFLICT,
                          "a rotation of %s is already in progress (or just finished); check "
                          "`kmsctl list-key-rotations --key-id %s` and try again",
                          arn, rec.key_id);
        }
    }
    if (r == 0) {
        /* AWS records the new material as a RotateKey service event of its own, after the
         * call. */
        rq->then_event = "RotateKey";
        rq->then_details = kms_scheduler_rotate_key_event(rec.key_id, arn, "ON_DEMAND", cl.version);
        *resp = json_pack("{s:s}", "KeyId", rec.key_id);
        r = *resp != NULL && rq->then_details != NULL
                ? 0
                : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    kms_key_record_clean_up(&rec);
    return r;
}

typedef struct rotation_walk {
    json_t *list;
    const char *key_id, *arn;
    uint32_t last; /* the last version listed: the next page's marker */
} rotation_walk;

static int list_rotation_cb(void *arg, uint32_t version, int64_t date, const char *type)
{
    rotation_walk *w = arg;
    /* AWS KMS API reference, RotationsListEntry: KeyMaterialId names the material the rotation
     * made (audit_trail.c "Key material ids"). */
    char material[65];
    kms_audit_trail_material_id(w->arn, version, material);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "KeyId", w->key_id, "KeyMaterialId", material,
                          "RotationDate", (json_int_t)date, "RotationType", type);
    KMS_ENSURE(o != NULL && json_array_append_new(w->list, o) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    w->last = version;
    return 0;
}

int kms_ops_rotation_list(kms_request *rq, json_t *req, json_t **resp)
{
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    long long limit = 100;
    const char *marker = NULL;
    unsigned long after = 0;
    bool truncated = false;
    KMS_GUARD(kms_request_int(req, "Limit", false, 1, 1000, 100, &limit));
    KMS_GUARD(kms_request_string(req, "Marker", false, 1, 320, &marker));
    if (marker != NULL) {
        char *end = NULL;
        after = strtoul(marker, &end, 10);
        KMS_ENSURE(*end == '\0' && after >= 1 && after < UINT32_MAX, KMS_ERR_INVALID_MARKER,
                   "the Marker '%s' was not returned by ListKeyRotations", marker);
    }
    KMS_GUARD(rotation_key(rq, req, "kms:ListKeyRotations", &rec, arn));
    rotation_walk w = {json_array(), rec.key_id, arn, 0};
    int r = w.list != NULL
                ? kms_keystore_rotation_list(&rq->client->keystore, rec.key_id, (uint32_t)after,
                                             (size_t)limit, list_rotation_cb, &w, &truncated)
                : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    if (r == 0) {
        *resp = json_pack("{s:O, s:b}", "Rotations", w.list, "Truncated", truncated);
        r = *resp != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    if (r == 0 && truncated) {
        char next[16];
        snprintf(next, sizeof next, "%u", w.last);
        if (json_object_set_new(*resp, "NextMarker", json_string(next)) != 0) {
            r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    json_decref(w.list);
    kms_key_record_clean_up(&rec);
    return r;
}
