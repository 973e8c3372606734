/* GetKeyLastUsage (KMS API reference): the last successful cryptographic operation with a key,
 * from the audit trail: every such operation has a record there, written before its answer, so
 * the trail's index is the one place that knows (the per-version usage counts count
 * encryptions, not when or by which request). */
#include <string.h>

#include "service/audit_trail.h"
#include "service/ops.h"

static int key_by_id(kms_request *rq, json_t *req, kms_key_record *rec, char arn[KMS_ARN_MAX])
{
    const char *key_id = NULL;
    KMS_GUARD(kms_request_string(req, "KeyId", true, 1, 2048, &key_id));
    /* "Alias names are not supported." */
    KMS_ENSURE(
        strncmp(key_id, "alias/", 6) != 0 && strstr(key_id, ":alias/") == NULL, KMS_ERR_VALIDATION,
        "GetKeyLastUsage takes a key ID or key ARN; alias names are not supported (%s)", key_id);
    rq->key_ref = key_id;
    KMS_GUARD(kms_keystore_resolve(&rq->client->keystore, key_id, false, rec));
    kms_keystore_key_arn(&rq->client->keystore, rec->key_id, arn);
    if (kms_gate_authorize_key(rq, "kms:GetKeyLastUsage", rec, arn) != 0) {
        kms_key_record_clean_up(rec);
        return -1;
    }
    return 0;
}

int kms_ops_keys_last_usage(kms_request *rq, json_t *req, json_t **resp)
{
    char arn[KMS_ARN_MAX];
    kms_key_record rec;
    kms_trail_trust t;
    json_t *use = NULL;
    int64_t start = 0;
    memset(&rec, 0, sizeof rec);
    KMS_GUARD(key_by_id(rq, req, &rec, arn));
    int r = kms_audit_trail_trust_load(rq->client, &t);
    if (r == 0) {
        r = kms_audit_key_last_use(t.dir, &t.trust, arn, &use, &start);
        kms_audit_trail_trust_clean_up(&t);
    }
    if (r == 0) {
        /* "The date from which KMS began recording cryptographic activity for this key, or the
         * date the KMS key was created, whichever is later." */
        int64_t tracking = start > rec.creation_date ? start : rec.creation_date;
        /* No KeyLastUsage member when the key was not used since tracking began. */
        *resp = json_pack("{s:s, s:I, s:I, s:O?}", "KeyId", rec.key_id, "TrackingStartDate",
                          (json_int_t)tracking, "KeyCreationDate", (json_int_t)rec.creation_date,
                          "KeyLastUsage", use);
        r = *resp != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    json_decref(use);
    kms_key_record_clean_up(&rec);
    return r;
}
